//! The sans-IO driver of one interface: turns ring-buffer events and timer expiries into state
//! machine inputs, and the state machines' actions into I/O [`Command`]s (whole frames to send,
//! VIPs to claim or release). It owns the N [`VirtualRouter`]s of the interface and the
//! gratuitous ARP / unsolicited NA schedules; it reads no clock and touches no socket, so it is
//! unit-tested on a simulated clock. The executor (`agent`) only does what the commands say.
//!
//! Time: every input carries its own time on CLOCK_MONOTONIC. An advert's time is the kernel's
//! receive time (`AdvertEvent::rx_time_ns`, from `bpf_ktime_get_ns`), not the time the agent
//! got round to reading it, so a late wake-up of the agent does not make an advert look late.
//! Inputs are fed in time order: before an advert received at `t`, timers due before `t` fire
//! (at `t`); and when a timer expires, the executor first drains the ring buffer and hands the
//! pending adverts to [`Driver::expire`], which feeds them before the timer — otherwise a
//! Master_Down_Timer would fire while the advert that resets it sits unread.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use vrrp_common::{AdvertEvent, FAMILY_IPV6};

use crate::{
    config::InstanceSpec,
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
    /// ARP, unsolicited NA.
    SendFrame { instance: usize, frame: Vec<u8> },
    /// Send an IP packet (header included) to a unicast peer through the kernel's IP stack,
    /// which resolves the peer's MAC (raw socket, IPPROTO_RAW).
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
    /// address that is no VIP / its first IPv6 link-local address.
    pub fn primary_for(&self, spec: &InstanceSpec, all_vips: &[IpAddr]) -> Result<IpAddr, String> {
        if let Some(a) = spec.unicast_src_ip {
            return Ok(a);
        }
        let found = match spec.family() {
            fsm::Family::V4 => self
                .addrs
                .iter()
                .find(|a| a.is_ipv4() && !all_vips.contains(a)),
            fsm::Family::V6 => self.addrs.iter().find(|a| match a {
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 && !all_vips.contains(a),
                _ => false,
            }),
        };
        found.copied().ok_or_else(|| match spec.family() {
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
    /// Per [`RxError::as_index`].
    pub errors: [u64; RxError::COUNT],
}

impl Default for RxStats {
    fn default() -> Self {
        RxStats {
            accepted: 0,
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

    /// `accepted=N name=count...` (non-zero error counts only).
    pub fn summary(&self) -> String {
        let mut s = format!("accepted={}", self.accepted);
        for (i, n) in self.errors.iter().enumerate() {
            if *n > 0 {
                s.push_str(&format!(" {}={n}", RxError::NAMES[i]));
            }
        }
        s
    }
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
}

impl Instance {
    pub fn name(&self) -> &str {
        &self.spec.name
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
            });
            instances.push(Instance {
                vmac: vmac(spec.wire_family(), spec.vrid),
                spec,
                vr,
                stale_after,
                rx: RxStats::default(),
                garp: None,
                handover_until: None,
            });
        }
        Ok(Driver {
            iface: iface.to_owned(),
            instances,
            rx_cfgs,
            unmatched: RxStats::default(),
            log_adverts: true,
        })
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
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
                [i.vr.next_deadline(), g, i.handover_until]
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
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
            let was_master = self.instances[i].vr.state() == State::Master;
            let mut cmds = Vec::new();
            self.feed(i, Input::Shutdown, now, &mut cmds);
            self.instances[i].garp = None;
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
            out.extend(self.on_event(&ev));
        }
        out.extend(self.on_timers(now));
        out
    }

    /// Fires everything due at or before `now`.
    pub fn on_timers(&mut self, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        for i in 0..self.instances.len() {
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

    /// One advert from the ring buffer.
    ///
    /// Time order: timers that ran out before the advert arrived fire first, with one
    /// exception. A backup whose Master_Down_Timer ran out before this advert arrived, but
    /// which only gets to act now (it was not scheduled at the deadline, or its host stalled and
    /// the kernel stamped the advert late), reads the advert first: it is what the backup knows
    /// when it acts. If the advert restarts the timer (the master is alive), there is no
    /// takeover; taking over only to step down at once would be a false failover. If it does
    /// not (priority 0, or a lower priority that preempt discards), the timer fires as before.
    pub fn on_event(&mut self, ev: &AdvertEvent) -> Vec<Command> {
        let at = Instant::from_nanos(ev.rx_time_ns);
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
                    self.feed(i, Input::Timer, at, &mut out);
                }
            }
            self.garp_due(i, at, &mut out);
        }
        match valid {
            Ok(valid) => self.on_valid(valid, at, &mut out),
            Err(e) => self.count_error(&parts, &e),
        }
        if let Some(i) = deferred {
            if self.instances[i].vr.next_deadline().is_some_and(|d| d < at) {
                self.feed(i, Input::Timer, at, &mut out);
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

    fn on_valid(&mut self, v: Valid, at: Instant, out: &mut Vec<Command>) {
        let i = v.instance;
        let inst = &mut self.instances[i];
        inst.rx.accepted += 1;
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
        };
        self.feed(i, Input::Advert(adv), at, out);
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
                Ok(frame) => out.push(Command::SendFrame { instance: i, frame }),
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
                    out.push(Command::SendFrame { instance: i, frame });
                }
                _ => break,
            }
        }
        inst.garp = Some(run);
    }
}
