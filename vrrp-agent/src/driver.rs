//! The sans-IO driver of one interface: turns ring-buffer events and timer expiries into state
//! machine inputs, and the state machines' actions into I/O [`Command`]s (whole frames to send,
//! VIPs to claim or release). It owns the N [`VirtualRouter`]s of the interface and the
//! gratuitous ARP / unsolicited NA schedules; it reads no clock and touches no socket, so it is
//! unit-tested on a simulated clock. The executor (`agent`) only does what the commands say.
//!
//! Time: two clocks' worth of times, both on CLOCK_MONOTONIC.
//! - `now`, given with every call, is when the driver handles the input, so when the frames it
//!   returns are sent. A Master's Adver_Timer runs from there (and from the time the executor
//!   reports an advert actually left, [`Driver::advert_sent`]): RFC 9568 §6.4.3 resets it after
//!   each send, so a late advert never makes the next one early.
//! - An advert's receive time is the kernel's (`AdvertEvent::rx_time_ns`, from
//!   `bpf_ktime_get_ns`), not the time the agent got round to reading it. A Backup's
//!   Master_Down_Timer runs from it, so a late wake-up of the Backup never makes the master
//!   look late: an advert received before the deadline resets it even if read late. A Backup
//!   that only gets to act after its deadline reads the adverts that arrived meanwhile first:
//!   one from a live master means no takeover (taking over to step down at once would be a
//!   false failover), see [`Driver::on_event`].
//!
//! Inputs are fed in receive order: before an advert received at `t`, timers due before `t`
//! fire (handled at `now`); and when a timer expires, the executor first drains the ring buffer
//! and hands the pending adverts to [`Driver::expire`], which feeds them before the timer —
//! otherwise a Master_Down_Timer would fire while the advert that resets it sits unread.
//!
//! Logs about other routers are rate-limited per peer on the driver's clock ([`LogLimit`]): an
//! advert whose address list differs from ours (WARN) and a new master (INFO).
//!
//! Claims are inputs too. The executor reports what each [`Command::Claim`] / `Release` /
//! `AddVip` / `RemoveVip` did with [`Driver::report`], in the same batch, so the state machine
//! never stays Master without its VIPs: a failed claim puts the instance in FAULT (priority-0
//! advert, release) and retries it after a backoff ([`CLAIM_RETRY_MIN`] doubling to
//! [`CLAIM_RETRY_MAX`]). The kernel's address notifications come in through
//! [`Driver::address_changed`]: a VIP removed behind our back while we hold it is put back, a VIP
//! added behind our back while we do not is removed, and both are counted ([`VipStats`]).
use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use vrrp_common::{AdvertEvent, FAMILY_IPV6};

use crate::{
    config::{InstanceSpec, Vip},
    fsm::{self, Action, Input, Instant, Reason, State, VirtualRouter},
    wire::{
        self, vmac, AdvertFrame, ArpFrame, InstanceCfg, MacAddr, NdpFrame, RxError, RxParts, Valid,
        VrrpRepr,
    },
};

/// What the executor must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send a whole Ethernet frame on the interface (AF_PACKET): multicast adverts, gratuitous
    /// ARP, unsolicited NA. `advert`: the frame is an advert, whose send time the executor
    /// reports with [`Driver::advert_sent`].
    SendFrame {
        instance: usize,
        frame: Vec<u8>,
        advert: bool,
    },
    /// Send an IP packet (header included) to a unicast peer through the kernel's IP stack,
    /// which resolves the peer's MAC (raw socket, IPPROTO_RAW). Always an advert (its send time
    /// is reported with [`Driver::advert_sent`]).
    SendIp {
        instance: usize,
        dst: IpAddr,
        packet: Vec<u8>,
    },
    /// Become the owner of the instance's VIPs: fast path first (`set_router(owned=true)`),
    /// then the addresses on the interface.
    Claim { instance: usize, accept: bool },
    /// Let the VIPs go: the addresses first, then the fast path (`set_router(owned=false)`).
    Release { instance: usize },
    /// Put one VIP back on the interface: something else removed it while we hold it.
    AddVip { instance: usize, vip: Vip },
    /// Take one VIP off the interface: something else added it while we do not hold it.
    RemoveVip { instance: usize, vip: Vip },
}

impl Command {
    /// The instance the command is for.
    pub fn instance(&self) -> usize {
        match self {
            Command::SendFrame { instance, .. }
            | Command::SendIp { instance, .. }
            | Command::Claim { instance, .. }
            | Command::Release { instance }
            | Command::AddVip { instance, .. }
            | Command::RemoveVip { instance, .. } => *instance,
        }
    }
}

/// What carrying out a command did, reported back with [`Driver::report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// [`Command::Claim`] worked: the fast path owns the VMAC and the VIPs are on the interface.
    Claimed,
    /// [`Command::Claim`] or [`Command::AddVip`] failed (what failed, for the log).
    ClaimFailed(String),
    /// [`Command::Release`] worked.
    Released,
    /// [`Command::Release`] or [`Command::RemoveVip`] failed.
    ReleaseFailed(String),
    /// [`Command::AddVip`] worked; `was_present`: the kernel had the address already (the
    /// notification was about an earlier change of our own).
    VipAdded { vip: Vip, was_present: bool },
    /// [`Command::RemoveVip`] worked; `was_present`: the address was really there.
    VipRemoved { vip: Vip, was_present: bool },
}

/// First wait before retrying a failed claim; it doubles with every failure in a row.
pub const CLAIM_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait before retrying a failed claim.
pub const CLAIM_RETRY_MAX: Duration = Duration::from_secs(30);
/// A claim that worked and held this long before the next failure starts the backoff afresh.
pub const CLAIM_HELD_RESET: Duration = Duration::from_secs(60);
/// A failed release is retried this many times, after 1, 2, 4, 8 and 16 s.
pub const RELEASE_RETRIES: u32 = 5;
/// First wait before retrying a failed release.
pub const RELEASE_RETRY_FIRST: Duration = Duration::from_secs(1);

/// Per-instance counts of what happened to the VIPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipStats {
    /// Claims (or re-adds) that failed.
    pub claim_failures: u64,
    /// Releases (or removals) that failed.
    pub release_failures: u64,
    /// VIPs removed behind our back while we held them, and put back.
    pub vips_readded: u64,
    /// VIPs added behind our back while we did not hold them, and removed.
    pub vips_removed: u64,
}

impl VipStats {
    /// `claim_failures=N release_failures=N vips_readded=N vips_removed=N`.
    pub fn summary(&self) -> String {
        format!(
            "claim_failures={} release_failures={} vips_readded={} vips_removed={}",
            self.claim_failures, self.release_failures, self.vips_readded, self.vips_removed
        )
    }
}

/// Retry schedule after failed claims.
#[derive(Debug, Clone, Default)]
struct ClaimRetry {
    /// The wait before the next retry (zero: [`CLAIM_RETRY_MIN`]).
    backoff: Duration,
    /// When the pending retry is due (the instance is in FAULT until then).
    at: Option<Instant>,
    /// When the last claim worked.
    last_ok: Option<Instant>,
}

/// Retry schedule after failed releases.
#[derive(Debug, Clone, Default)]
struct ReleaseRetry {
    /// Failures in a row.
    failures: u32,
    at: Option<Instant>,
}

/// What the driver needs to know about the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceEnv {
    pub name: String,
    pub mac: MacAddr,
    /// Addresses configured on the interface (VIPs excluded by the caller or not: the primary
    /// address is chosen among the non-VIP ones).
    pub addrs: Vec<IpAddr>,
}

impl IfaceEnv {
    /// The advert source of an instance: `unicast_src_ip`, else the interface's first IPv4
    /// address that is no VIP / its first IPv6 link-local address. An address owner (priority
    /// 255) sends from its own addresses, which are its VIPs, so they are candidates for it.
    ///
    /// The ownership rules come first, so that the error names the real mistake: an owner whose
    /// VIP is not on the interface, or a non-owner whose VIP is the interface's only address of
    /// its family (its own address, not a virtual one). A non-owner's VIP next to another
    /// address is taken for a leftover of an earlier run and removed at startup.
    pub fn primary_for(&self, spec: &InstanceSpec, all_vips: &[IpAddr]) -> Result<IpAddr, String> {
        let mine: Vec<IpAddr> = spec.vips.iter().map(|v| v.addr).collect();
        let owner = spec.priority == 255;
        if owner {
            if let Some(v) = mine.iter().find(|v| !self.addrs.contains(v)) {
                return Err(format!(
                    "instance {}: {} (on {})",
                    spec.name,
                    fsm::ConfigError::OwnerDoesNotOwnVip(*v),
                    self.name
                ));
            }
        }
        if let Some(a) = spec.unicast_src_ip {
            return Ok(a);
        }
        let candidate = |a: &&IpAddr| !all_vips.contains(a) || (owner && mine.contains(a));
        let found = match spec.family() {
            fsm::Family::V4 => self.addrs.iter().filter(candidate).find(|a| a.is_ipv4()),
            fsm::Family::V6 => self.addrs.iter().filter(candidate).find(|a| match a {
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
                _ => false,
            }),
        };
        if let Some(a) = found {
            return Ok(*a);
        }
        if let Some(v) = mine.iter().find(|v| self.addrs.contains(v)) {
            return Err(format!(
                "instance {}: {} (on {})",
                spec.name,
                fsm::ConfigError::OwnedVipNeedsPriority255 {
                    vip: *v,
                    priority: spec.priority
                },
                self.name
            ));
        }
        Err(match spec.family() {
            fsm::Family::V4 => format!(
                "instance {}: {} has no IPv4 address to send adverts from; add one or set \
                 unicast_src_ip",
                spec.name, self.name
            ),
            fsm::Family::V6 => format!(
                "instance {}: {} has no IPv6 link-local address to send adverts from",
                spec.name, self.name
            ),
        })
    }
}

/// Receive statistics of an instance (or of the interface for adverts no instance matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxStats {
    pub accepted: u64,
    /// Accepted v3 adverts whose address list differs from ours (RFC 9568 §7.1: accepted,
    /// logged); included in `accepted`.
    pub addr_list_differs: u64,
    /// Per [`RxError::as_index`].
    pub errors: [u64; RxError::COUNT],
}

impl Default for RxStats {
    fn default() -> Self {
        RxStats {
            accepted: 0,
            addr_list_differs: 0,
            errors: [0; RxError::COUNT],
        }
    }
}

impl RxStats {
    pub fn count(&mut self, e: &RxError) -> u64 {
        let c = &mut self.errors[e.as_index()];
        *c += 1;
        *c
    }

    pub fn get(&self, name: &str) -> u64 {
        RxError::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.errors[i])
            .unwrap_or(0)
    }

    /// `accepted=N [addr_list_differs=N] name=count...` (non-zero counts only).
    pub fn summary(&self) -> String {
        let mut s = format!("accepted={}", self.accepted);
        if self.addr_list_differs > 0 {
            s.push_str(&format!(" addr_list_differs={}", self.addr_list_differs));
        }
        for (i, n) in self.errors.iter().enumerate() {
            if *n > 0 {
                s.push_str(&format!(" {}={n}", RxError::NAMES[i]));
            }
        }
        s
    }
}

/// How often a rate-limited log line repeats for one peer.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Peers a [`LogLimit`] follows one by one; beyond that, new peers share one budget.
pub const LOG_PEERS: usize = 32;

/// The rate limit of one kind of log line about other routers, per peer: the first line at
/// once, then at most one per [`LOG_EVERY`], which says how many were left out since the last
/// one. Decided on the driver's clock, so it is tested on a simulated one. At most
/// [`LOG_PEERS`] peers are followed; once that many have logged within the last
/// [`LOG_EVERY`], any further peer shares one more budget, so a host spraying spoofed source
/// addresses cannot flood the log either (at most `LOG_PEERS + 1` lines per [`LOG_EVERY`]).
#[derive(Debug, Clone, Default)]
pub struct LogLimit {
    /// (peer, `None` = the shared budget; when it last logged; lines left out since).
    entries: Vec<(Option<IpAddr>, Instant, u64)>,
}

impl LogLimit {
    /// Whether a line about `peer` may be logged at `now`: `Some(n)`, `n` lines having been
    /// left out since the previous one; `None`: leave this one out (it is counted).
    pub fn admit(&mut self, peer: IpAddr, now: Instant) -> Option<u64> {
        let pos = self.entries.iter().position(|e| e.0 == Some(peer));
        let pos = match pos {
            Some(p) => p,
            None => {
                // Room, or an entry with nothing left out whose window is over (forgetting it
                // loses nothing), or the shared budget.
                let free = self
                    .entries
                    .iter()
                    .position(|e| e.0.is_some() && e.2 == 0 && now >= e.1 + LOG_EVERY);
                if self.entries.len() < LOG_PEERS || free.is_some() {
                    let fresh = (Some(peer), now, 0);
                    match free {
                        Some(p) => self.entries[p] = fresh,
                        None => self.entries.push(fresh),
                    }
                    return Some(0);
                }
                match self.entries.iter().position(|e| e.0.is_none()) {
                    Some(p) => p,
                    None => {
                        self.entries.push((None, now, 0));
                        return Some(0);
                    }
                }
            }
        };
        let e = &mut self.entries[pos];
        if now >= e.1 + LOG_EVERY {
            let left_out = e.2;
            e.1 = now;
            e.2 = 0;
            Some(left_out)
        } else {
            e.2 += 1;
            None
        }
    }
}

/// ` [N more since the last line]`, or nothing.
fn left_out_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" [{n} more since the last line]")
    }
}

fn join_addrs(a: &[IpAddr]) -> String {
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// GARP / NA schedule of an instance while it is Master.
#[derive(Debug, Clone, Default)]
struct GarpRun {
    /// Packets still to send: (when, index into the VIPs), in time order.
    queue: std::collections::VecDeque<(Instant, usize)>,
    /// Start of the next burst (the garp_master_delay one, then refreshes).
    next_burst: Option<Instant>,
}

/// One virtual router with its I/O-side settings.
pub struct Instance {
    pub spec: InstanceSpec,
    pub vr: VirtualRouter,
    /// Fail-safe bound written to the fast path with ownership.
    pub stale_after: Duration,
    pub rx: RxStats,
    garp: Option<GarpRun>,
    vmac: MacAddr,
    /// Graceful handover in progress: the priority-0 advert went out, the VIPs are still ours
    /// until another router's advert shows it took over, or until this deadline.
    handover_until: Option<Instant>,
    pub vip_stats: VipStats,
    claim_retry: ClaimRetry,
    release_retry: ReleaseRetry,
    /// Rate limits of the WARN line for an advert whose address list differs from ours, and of
    /// the INFO line for a new master.
    log_addr_list: LogLimit,
    log_new_master: LogLimit,
}

impl Instance {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether the VIPs are ours: Master, or a departing master in its handover.
    pub fn holds_vips(&self) -> bool {
        self.vr.state() == State::Master || self.handover_until.is_some()
    }

    /// When the pending retry of a failed claim is due.
    pub fn claim_retry_at(&self) -> Option<Instant> {
        self.claim_retry.at
    }

    /// When the pending retry of a failed release is due.
    pub fn release_retry_at(&self) -> Option<Instant> {
        self.release_retry.at
    }

    /// `ip addr del VIP dev IF` for every VIP (what an operator can do by hand).
    fn del_hint(&self, iface: &str) -> String {
        self.spec
            .vips
            .iter()
            .map(|v| format!("`ip addr del {v} dev {iface}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// All virtual routers of one interface.
pub struct Driver {
    iface: String,
    instances: Vec<Instance>,
    rx_cfgs: Vec<InstanceCfg>,
    /// Adverts that matched no instance (their VRID/family is not configured here).
    pub unmatched: RxStats,
    /// Log adverts at DEBUG.
    pub log_adverts: bool,
    /// After [`Driver::shutdown`]: failed releases are not retried any more.
    stopping: bool,
}

/// `INIT`, `BACKUP`, `MASTER`, `FAULT` (the log contract).
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// snake_case reason (the log contract).
pub fn reason_name(r: Reason) -> &'static str {
    match r {
        Reason::Startup => "startup",
        Reason::AddressOwner => "address_owner",
        Reason::Shutdown => "shutdown",
        Reason::MasterNoResponse => "master_no_response",
        Reason::MasterPriorityZero => "priority_zero",
        Reason::Preempted => "preempted",
        Reason::HigherPriorityAdvert => "higher_priority",
        Reason::Fault => "fault",
        Reason::ClaimFailed => "claim_failed",
        Reason::FaultCleared => "fault_cleared",
    }
}

fn wire_version(v: fsm::Version) -> wire::Version {
    match v {
        fsm::Version::V2 => wire::Version::V2,
        fsm::Version::V3 => wire::Version::V3,
    }
}

fn fsm_version(v: wire::Version) -> fsm::Version {
    match v {
        wire::Version::V2 => fsm::Version::V2,
        wire::Version::V3 => fsm::Version::V3,
    }
}

/// Addresses of an [`AdvertEvent`].
pub fn event_ips(ev: &AdvertEvent) -> (IpAddr, IpAddr) {
    let ip = |b: &[u8; 16]| {
        if ev.family == FAMILY_IPV6 {
            IpAddr::V6(Ipv6Addr::from(*b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
    };
    (ip(&ev.src_ip), ip(&ev.dst_ip))
}

/// The captured VRRP bytes of an event.
pub fn event_payload(ev: &AdvertEvent) -> &[u8] {
    let n = (ev.captured_len as usize).min(ev.payload.len());
    &ev.payload[..n]
}

impl Driver {
    /// Builds the state machines. `primaries[i]` is the advert source of `specs[i]`.
    pub fn new(
        iface: &str,
        specs: Vec<InstanceSpec>,
        primaries: &[IpAddr],
    ) -> Result<Driver, String> {
        let mut instances = Vec::new();
        let mut rx_cfgs = Vec::new();
        for (spec, primary) in specs.into_iter().zip(primaries) {
            let vr = VirtualRouter::new(spec.fsm_config(*primary))
                .map_err(|e| format!("instance {}: {e}", spec.name))?;
            let stale_after = spec
                .failsafe_timeout
                .unwrap_or_else(|| vr.master_down_interval());
            rx_cfgs.push(InstanceCfg {
                vrid: spec.vrid,
                family: spec.wire_family(),
                version: wire_version(spec.version),
                priority: spec.priority,
                advert_int: spec.advert_int_cs,
                auth: spec.auth,
                addrs: spec.vips.iter().map(|v| v.addr).collect(),
                checksum: spec.checksum,
                unicast_peers: spec.unicast_peers.clone(),
                local_addrs: vec![*primary],
            });
            instances.push(Instance {
                vmac: vmac(spec.wire_family(), spec.vrid),
                spec,
                vr,
                stale_after,
                rx: RxStats::default(),
                garp: None,
                handover_until: None,
                vip_stats: VipStats::default(),
                claim_retry: ClaimRetry::default(),
                release_retry: ReleaseRetry::default(),
                log_addr_list: LogLimit::default(),
                log_new_master: LogLimit::default(),
            });
        }
        Ok(Driver {
            iface: iface.to_owned(),
            instances,
            rx_cfgs,
            unmatched: RxStats::default(),
            log_adverts: true,
            stopping: false,
        })
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// The addresses of the interface at startup: with each instance's advert source they are
    /// "ours", and an advert from one of them is dropped (a spoof or a loop). VIPs of this
    /// interface's instances are left out, as an address owner sends from its VIP.
    pub fn set_local_addrs(&mut self, addrs: &[IpAddr]) {
        let vips: Vec<IpAddr> = self
            .instances
            .iter()
            .flat_map(|i| i.spec.vips.iter().map(|v| v.addr))
            .collect();
        for (cfg, inst) in self.rx_cfgs.iter_mut().zip(&self.instances) {
            let mut local = vec![inst.vr.config().primary_addr];
            for a in addrs {
                if !vips.contains(a) && !local.contains(a) {
                    local.push(*a);
                }
            }
            cfg.local_addrs = local;
        }
    }

    /// The advert of instance `instance` that the last commands carried actually left at `at`
    /// (the executor reports it right after the send): a Master's Adver_Timer restarts from
    /// there, never earlier, so a send delayed after `now` (the executor was preempted, other
    /// commands went first) does not make the next advert early.
    pub fn advert_sent(&mut self, instance: usize, at: Instant) {
        if instance < self.instances.len() {
            let mut out = Vec::new();
            self.feed(instance, Input::AdvertSent, at, &mut out);
            debug_assert!(out.is_empty(), "{out:?}");
        }
    }

    /// Heartbeat period for the fast-path fail-safe: a quarter of the smallest stale bound,
    /// at least 1 ms.
    pub fn heartbeat_period(&self) -> Duration {
        self.instances
            .iter()
            .map(|i| i.stale_after / 4)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1))
    }

    /// When the driver next needs [`Driver::on_timers`]: the earliest state-machine deadline
    /// or GARP packet.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.instances
            .iter()
            .flat_map(|i| {
                let g = i.garp.as_ref().and_then(|g| {
                    let q = g.queue.front().map(|(t, _)| *t);
                    match (q, g.next_burst) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                });
                [
                    i.vr.next_deadline(),
                    g,
                    i.handover_until,
                    i.claim_retry.at,
                    i.release_retry.at,
                ]
            })
            .flatten()
            .min()
    }

    /// Startup of every instance.
    pub fn startup(&mut self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            self.feed(i, Input::Startup, now, &mut out);
        }
        out
    }

    /// Shutdown of every instance (RFC 9568 §6.4.3: masters send priority 0).
    ///
    /// Graceful handover, make-before-break: a departing master does not release its VIPs
    /// with the priority-0 advert. It keeps answering ARP/NS and forwarding until another
    /// router's advert shows that router has taken over (a backup does so Skew_Time after the
    /// priority-0 advert), then releases; if none does within the instance's
    /// Master_Down_Interval, it releases anyway. Traffic in flight during the Skew_Time is
    /// therefore delivered instead of black-holed. The executor keeps running the event loop
    /// while [`Driver::handing_over`] is true.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Command> {
        self.stopping = true;
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            let was_master = self.instances[i].vr.state() == State::Master;
            let mut cmds = Vec::new();
            self.feed(i, Input::Shutdown, now, &mut cmds);
            self.instances[i].garp = None;
            self.instances[i].claim_retry.at = None;
            let inst = &mut self.instances[i];
            let owner = inst.spec.priority == 255;
            if was_master && !owner {
                let before = cmds.len();
                cmds.retain(|c| !matches!(c, Command::Release { .. }));
                if cmds.len() != before {
                    inst.handover_until = Some(now + inst.vr.master_down_interval());
                }
            }
            out.extend(cmds);
        }
        out
    }

    /// True while a departing master still holds its VIPs (see [`Driver::shutdown`]).
    pub fn handing_over(&self) -> bool {
        self.instances.iter().any(|i| i.handover_until.is_some())
    }

    /// Ends every handover now (the executor's last resort).
    pub fn end_handovers(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if self.instances[i].handover_until.take().is_some() {
                out.push(Command::Release { instance: i });
            }
        }
        out
    }

    /// Link state of the interface changed.
    pub fn link(&mut self, up: bool, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            let input = if up { Input::LinkUp } else { Input::LinkDown };
            self.feed(i, input, now, &mut out);
        }
        out
    }

    /// A timer expired at `now`: first the adverts that were waiting in the ring buffer (with
    /// their receive times), then the timers.
    pub fn expire(
        &mut self,
        now: Instant,
        pending: impl IntoIterator<Item = AdvertEvent>,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        for ev in pending {
            out.extend(self.on_event(&ev, now));
        }
        out.extend(self.on_timers(now));
        out
    }

    /// Fires everything due at or before `now`.
    pub fn on_timers(&mut self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            self.retries_due(i, now, &mut out);
            if self.instances[i]
                .vr
                .next_deadline()
                .is_some_and(|d| d <= now)
            {
                self.feed(i, Input::Timer, now, &mut out);
            }
            self.garp_due(i, now, &mut out);
            let inst = &mut self.instances[i];
            if inst.handover_until.is_some_and(|d| d <= now) {
                inst.handover_until = None;
                log::info!(
                    "instance {}: no router took over within {:?}; releasing the VIPs",
                    inst.spec.name,
                    inst.vr.master_down_interval()
                );
                out.push(Command::Release { instance: i });
            }
        }
        out
    }

    /// Due claim / release retries of instance `i`.
    fn retries_due(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        if inst.claim_retry.at.is_some_and(|t| t <= now) {
            inst.claim_retry.at = None;
            log::info!(
                "instance {}: retrying to take the VIPs (the Startup rules apply again)",
                inst.spec.name
            );
            self.feed(i, Input::ClaimFault { on: false }, now, out);
        }
        let inst = &mut self.instances[i];
        if inst.release_retry.at.is_some_and(|t| t <= now) {
            inst.release_retry.at = None;
            if !inst.holds_vips() {
                out.push(Command::Release { instance: i });
            }
        }
    }

    /// What carrying out a command of instance `i` did. `pending`: the commands of the batch
    /// not carried out yet. A failed claim drops the rest of the instance's commands there (its
    /// advert and GARPs assumed the claim worked) and puts the answer in front: FAULT, with a
    /// priority-0 advert if it was Master (a backup takes over after Skew_Time), and a release of
    /// whatever part of the claim did work.
    pub fn report(
        &mut self,
        i: usize,
        report: Report,
        now: Instant,
        pending: &mut VecDeque<Command>,
    ) {
        let iface = self.iface.clone();
        let inst = &mut self.instances[i];
        match report {
            Report::Claimed => {
                inst.claim_retry.last_ok = Some(now);
                inst.release_retry = ReleaseRetry::default();
            }
            Report::ClaimFailed(what) => self.claim_failed(i, &what, now, pending),
            Report::Released => inst.release_retry = ReleaseRetry::default(),
            Report::ReleaseFailed(what) => {
                inst.vip_stats.release_failures += 1;
                if inst.holds_vips() {
                    // Claimed again since: nothing to release any more.
                    return;
                }
                let hint = inst.del_hint(&iface);
                let r = &mut inst.release_retry;
                r.failures += 1;
                if self.stopping {
                    r.at = None;
                    log::warn!(
                        "instance {}: releasing the VIPs at the stop failed: {what}. Remove them \
                         by hand: {hint}",
                        inst.spec.name,
                    );
                } else if r.failures <= RELEASE_RETRIES {
                    let wait = RELEASE_RETRY_FIRST * (1 << (r.failures - 1));
                    r.at = Some(now + wait);
                    log::warn!(
                        "instance {}: releasing the VIPs failed: {what}; retry {} of \
                         {RELEASE_RETRIES} in {wait:?}. If it keeps failing, remove them by hand: {}",
                        inst.spec.name,
                        r.failures,
                        hint
                    );
                } else {
                    r.at = None;
                    log::warn!(
                        "instance {}: releasing the VIPs failed: {what}; gave up after \
                         {RELEASE_RETRIES} retries. Remove them by hand: {hint}",
                        inst.spec.name,
                    );
                }
            }
            Report::VipAdded { vip, was_present } => {
                if was_present {
                    log::debug!(
                        "instance {}: {vip} is on {iface} already (a notification of our own change)",
                        inst.spec.name
                    );
                } else {
                    inst.vip_stats.vips_readded += 1;
                    log::warn!(
                        "instance {}: VIP {vip} was removed from {iface} by something else while \
                         this router is master (NetworkManager, systemd-networkd, a DHCP client, \
                         `ip addr del`?); added it back ({} so far). Make that tool leave {} alone.",
                        inst.spec.name,
                        inst.vip_stats.vips_readded,
                        vip.addr
                    );
                }
            }
            Report::VipRemoved { vip, was_present } => {
                if was_present {
                    inst.vip_stats.vips_removed += 1;
                    log::warn!(
                        "instance {}: VIP {vip} was added to {iface} by something else while this \
                         router is {}; removed it, only the master may hold it ({} so far). Make \
                         that tool leave {} alone.",
                        inst.spec.name,
                        state_name(inst.vr.state()),
                        inst.vip_stats.vips_removed,
                        vip.addr
                    );
                } else {
                    log::debug!(
                        "instance {}: {vip} is not on {iface} (a notification of our own change)",
                        inst.spec.name
                    );
                }
            }
        }
    }

    fn claim_failed(
        &mut self,
        i: usize,
        what: &str,
        now: Instant,
        pending: &mut VecDeque<Command>,
    ) {
        pending.retain(|c| c.instance() != i);
        let iface = self.iface.clone();
        let inst = &mut self.instances[i];
        inst.vip_stats.claim_failures += 1;
        let mut out = Vec::new();
        if inst.handover_until.take().is_some() {
            // A departing master could not put a VIP back: the handover ends here.
            log::warn!(
                "instance {}: taking a VIP back failed during the handover: {what}; releasing",
                inst.spec.name
            );
        } else if inst.claim_retry.at.is_none() {
            let r = &mut inst.claim_retry;
            if r.last_ok
                .take()
                .is_some_and(|t| now.saturating_duration_since(t) >= CLAIM_HELD_RESET)
            {
                r.backoff = Duration::ZERO;
            }
            let wait = r.backoff.max(CLAIM_RETRY_MIN);
            r.backoff = (wait * 2).min(CLAIM_RETRY_MAX);
            r.at = Some(now + wait);
            log::warn!(
                "instance {}: taking the VIPs on {iface} failed: {what}. Going to FAULT so that a \
                 backup takes over; retrying in {wait:?}. Check that the agent may change \
                 addresses (CAP_NET_ADMIN) and what else manages {iface}.",
                inst.spec.name
            );
            self.feed(i, Input::ClaimFault { on: true }, now, &mut out);
        }
        // Undo whatever part of the claim did work (idempotent).
        if !out.iter().any(|c| matches!(c, Command::Release { .. })) {
            self.instances[i].garp = None;
            out.push(Command::Release { instance: i });
        }
        for c in out.into_iter().rev() {
            pending.push_front(c);
        }
    }

    /// The kernel added (`present`) or removed `addr` on the interface (RTM_NEWADDR /
    /// RTM_DELADDR). A VIP of an instance that holds its VIPs and was removed is put back
    /// ([`Command::AddVip`]); a VIP of an instance that does not hold them and was added is
    /// removed ([`Command::RemoveVip`]): with the address the kernel would accept traffic for
    /// the VIP and send from it while another router is master. The counts and warnings follow
    /// from what the commands find ([`Report::VipAdded`] / [`Report::VipRemoved`]), so a
    /// notification of our own earlier change (release, then claim again before it is read)
    /// costs one idempotent request and is not counted. Address owners (priority 255) are left
    /// alone: their VIPs are the interface's own addresses.
    pub fn address_changed(&mut self, addr: IpAddr, present: bool) -> Vec<Command> {
        let mut out = Vec::new();
        for (i, inst) in self.instances.iter().enumerate() {
            if inst.spec.priority == 255
                || inst.vr.state() == State::Initialize && !inst.holds_vips()
            {
                continue;
            }
            for vip in inst.spec.vips.iter().filter(|v| v.addr == addr) {
                match (inst.holds_vips(), present) {
                    (true, false) => out.push(Command::AddVip {
                        instance: i,
                        vip: *vip,
                    }),
                    (false, true) => out.push(Command::RemoveVip {
                        instance: i,
                        vip: *vip,
                    }),
                    _ => {}
                }
            }
        }
        out
    }

    /// After lost address notifications: the addresses on the interface now; the same rules
    /// as [`Driver::address_changed`] for every VIP.
    pub fn addresses_now(&mut self, addrs: &[IpAddr]) -> Vec<Command> {
        let vips: Vec<IpAddr> = self
            .instances
            .iter()
            .flat_map(|i| i.spec.vips.iter().map(|v| v.addr))
            .collect();
        vips.into_iter()
            .flat_map(|v| self.address_changed(v, addrs.contains(&v)))
            .collect()
    }

    /// One advert from the ring buffer, handled at `now` (received at its `rx_time_ns`).
    ///
    /// Receive order: timers that ran out before the advert arrived fire first (what they send
    /// leaves now), with one exception. A backup whose Master_Down_Timer ran out before this
    /// advert arrived, but which only gets to act now (it was not scheduled at the deadline, or
    /// its host stalled and the kernel stamped the advert late), reads the advert first: it is
    /// what the backup knows when it acts. If the advert restarts the timer (the master is
    /// alive), there is no takeover; taking over only to step down at once would be a false
    /// failover. If it does not (priority 0, or a lower priority that preempt discards), the
    /// timer fires as before.
    pub fn on_event(&mut self, ev: &AdvertEvent, now: Instant) -> Vec<Command> {
        let at = Instant::from_nanos(ev.rx_time_ns);
        // Nothing is handled before it happened.
        let now = now.max(at);
        let (src_ip, dst_ip) = event_ips(ev);
        let parts = RxParts {
            src_mac: MacAddr(ev.src_mac),
            src_ip,
            dst_ip,
            hop_limit: ev.ttl,
            vlan: (ev.flags & vrrp_common::EVENT_FLAG_VLAN != 0).then_some(ev.vlan_id),
            payload: event_payload(ev),
        };
        let valid = wire::validate_parts(&parts, &self.rx_cfgs);
        let mut deferred = None;
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            if self.instances[i].vr.next_deadline().is_some_and(|d| d < at) {
                let backup_reads_first = matches!(&valid, Ok(v) if v.instance == i)
                    && self.instances[i].vr.state() == State::Backup;
                if backup_reads_first {
                    deferred = Some(i);
                } else {
                    self.feed(i, Input::Timer, now, &mut out);
                }
            }
            self.garp_due(i, at, &mut out);
        }
        match valid {
            Ok(valid) => self.on_valid(valid, at, now, &mut out),
            Err(e) => self.count_error(&parts, &e),
        }
        if let Some(i) = deferred {
            if self.instances[i].vr.next_deadline().is_some_and(|d| d < at) {
                self.feed(i, Input::Timer, now, &mut out);
            }
        }
        out
    }

    fn count_error(&mut self, rx: &RxParts<'_>, e: &RxError) {
        let family = wire::Family::of(rx.src_ip);
        let vrid = rx.payload.get(1).copied();
        let idx = self
            .rx_cfgs
            .iter()
            .position(|c| Some(c.vrid) == vrid && c.family == family);
        let (who, stats) = match idx {
            Some(i) => (
                format!("instance {}", self.instances[i].spec.name),
                &mut self.instances[i].rx,
            ),
            None => (format!("interface {}", self.iface), &mut self.unmatched),
        };
        let n = stats.count(e);
        if n == 1 {
            log::warn!(
                "{who}: dropped advert from {} ({}): {e} [first {}; later ones are logged at debug]",
                rx.src_ip,
                rx.src_mac,
                e.name()
            );
        } else {
            log::debug!(
                "{who}: dropped advert from {} ({}): {e} [{} #{n}]",
                rx.src_ip,
                rx.src_mac,
                e.name()
            );
        }
    }

    fn on_valid(&mut self, v: Valid, at: Instant, now: Instant, out: &mut Vec<Command>) {
        let i = v.instance;
        let inst = &mut self.instances[i];
        inst.rx.accepted += 1;
        if v.addr_mismatch {
            inst.rx.addr_list_differs += 1;
            if let Some(left_out) = inst.log_addr_list.admit(v.src_ip, now) {
                log::warn!(
                    "instance {}: advert from {} (priority {}) lists {}, we have {}; accepted \
                     (RFC 9568 §7.1), check the configuration of both{}",
                    inst.spec.name,
                    v.src_ip,
                    v.vrrp.priority,
                    join_addrs(&v.vrrp.addrs),
                    join_addrs(&self.rx_cfgs[i].addrs),
                    left_out_note(left_out)
                );
            }
        }
        if self.log_adverts {
            log::debug!(
                "instance {}: advert version={} vrid={} priority={} interval_cs={} src={} mac={}{}",
                inst.spec.name,
                v.vrrp.version.number(),
                v.vrrp.vrid,
                v.vrrp.priority,
                v.vrrp.max_advert_int,
                v.src_ip,
                v.src_mac,
                if v.addr_mismatch {
                    " (address list differs from ours)"
                } else {
                    ""
                }
            );
        }
        if inst.handover_until.is_some()
            && v.vrrp.priority > 0
            && v.src_ip != inst.vr.config().primary_addr
        {
            inst.handover_until = None;
            log::info!(
                "instance {}: {} took over; releasing the VIPs",
                inst.spec.name,
                v.src_ip
            );
            out.push(Command::Release { instance: i });
        }
        let adv = fsm::RxAdvert {
            version: fsm_version(v.vrrp.version),
            vrid: v.vrrp.vrid,
            priority: v.vrrp.priority,
            max_adver_int_cs: v.vrrp.max_advert_int,
            src: v.src_ip,
            addrs: v.vrrp.addrs,
            rx_time: Some(at),
        };
        let (before, was) = (inst.vr.master_addr(), inst.vr.state());
        self.feed(i, Input::Advert(adv), now, out);
        let inst = &mut self.instances[i];
        let after = inst.vr.master_addr();
        if after.is_some() && after != before {
            if let Some(left_out) = inst.log_new_master.admit(v.src_ip, now) {
                let previous = match before {
                    Some(b) => format!("was {b}"),
                    None if was == State::Master => "was this router".into(),
                    None => "first seen".into(),
                };
                log::info!(
                    "instance {}: new master {} (priority {}, {}){}",
                    inst.spec.name,
                    v.src_ip,
                    v.vrrp.priority,
                    previous,
                    left_out_note(left_out)
                );
            }
        }
    }

    /// Feeds one input to instance `i` and translates its actions.
    ///
    /// One reordering against the state machine's action order: on becoming Master the
    /// `Claim` (fast path owns the VMAC, VIPs on the interface) goes out *before* the advert.
    /// The advert is the first frame from the VMAC, which moves the switches' forwarding entry
    /// to us; traffic for the VIP follows at once and must find the VIP already here. GARP/NA
    /// still follow the advert.
    fn feed(&mut self, i: usize, input: Input, now: Instant, out: &mut Vec<Command>) {
        let actions = self.instances[i].vr.handle(input, now);
        let batch_start = out.len();
        for a in actions {
            match a {
                Action::SendAdvert {
                    priority,
                    interval_cs,
                } => self.advert(i, priority, interval_cs, out),
                Action::BecomeMaster { accept } => {
                    out.insert(
                        batch_start,
                        Command::Claim {
                            instance: i,
                            accept,
                        },
                    );
                    self.garp_start(i, now, out);
                }
                Action::Release => {
                    self.instances[i].garp = None;
                    out.push(Command::Release { instance: i });
                }
                Action::StateChanged { from, to, reason } => log::info!(
                    "instance {}: state {} -> {} ({})",
                    self.instances[i].spec.name,
                    state_name(from),
                    state_name(to),
                    reason_name(reason)
                ),
                Action::ArmTimer { .. } | Action::CancelTimer => {}
            }
        }
    }

    /// The advert frame(s) of instance `i`: one multicast frame, or one IP packet per unicast
    /// peer (and then no multicast).
    fn advert(&self, i: usize, priority: u8, interval_cs: u16, out: &mut Vec<Command>) {
        let inst = &self.instances[i];
        let repr = VrrpRepr {
            version: wire_version(inst.spec.version),
            vrid: inst.spec.vrid,
            priority,
            max_advert_int: interval_cs,
            auth: inst.spec.auth,
            addrs: inst.spec.vips.iter().map(|v| v.addr).collect(),
        };
        let src = inst.vr.config().primary_addr;
        if inst.spec.unicast_peers.is_empty() {
            match AdvertFrame::multicast(repr, src).to_bytes(inst.spec.checksum) {
                Ok(frame) => out.push(Command::SendFrame {
                    instance: i,
                    frame,
                    advert: true,
                }),
                Err(e) => log::error!("instance {}: cannot build an advert: {e}", inst.spec.name),
            }
        } else {
            for peer in &inst.spec.unicast_peers {
                // The Ethernet header is dropped: the kernel routes the IP packet and resolves
                // the next hop's MAC.
                let f = AdvertFrame::unicast(repr.clone(), src, *peer, MacAddr([0; 6]));
                match f.to_bytes(inst.spec.checksum) {
                    Ok(frame) => out.push(Command::SendIp {
                        instance: i,
                        dst: *peer,
                        packet: frame[wire::frame::ETH_HEADER_LEN..].to_vec(),
                    }),
                    Err(e) => {
                        log::error!("instance {}: cannot build an advert: {e}", inst.spec.name)
                    }
                }
            }
        }
    }

    fn burst(
        inst: &Instance,
        start: Instant,
        q: &mut std::collections::VecDeque<(Instant, usize)>,
    ) {
        let n = inst.spec.vips.len();
        let mut k = 0u32;
        for _ in 0..inst.spec.garp.master_repeat {
            for v in 0..n {
                q.push_back((start + inst.spec.garp.interval * k, v));
                k += 1;
            }
        }
    }

    fn garp_start(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        let mut run = GarpRun::default();
        Self::burst(inst, now, &mut run.queue);
        let g = inst.spec.garp;
        run.next_burst = if !g.master_delay.is_zero() {
            Some(now + g.master_delay)
        } else if !g.master_refresh.is_zero() {
            Some(now + g.master_refresh)
        } else {
            None
        };
        inst.garp = Some(run);
        self.garp_due(i, now, out);
    }

    fn garp_due(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        let Some(mut run) = inst.garp.take() else {
            return;
        };
        loop {
            if let Some(at) = run.next_burst.filter(|at| *at <= now) {
                // Bursts are queued behind what is left of the previous one.
                let start = run.queue.back().map(|(t, _)| (*t).max(at)).unwrap_or(at);
                Self::burst(inst, start, &mut run.queue);
                let r = inst.spec.garp.master_refresh;
                run.next_burst = (!r.is_zero()).then(|| at + r);
                continue;
            }
            match run.queue.front() {
                Some((at, v)) if *at <= now => {
                    let vip = inst.spec.vips[*v].addr;
                    run.queue.pop_front();
                    let frame = match vip {
                        IpAddr::V4(a) => ArpFrame::gratuitous(inst.vmac, a).to_bytes(),
                        IpAddr::V6(a) => NdpFrame::unsolicited_na(inst.vmac, a, true).to_bytes(),
                    };
                    out.push(Command::SendFrame {
                        instance: i,
                        frame,
                        advert: false,
                    });
                }
                _ => break,
            }
        }
        inst.garp = Some(run);
    }
}
