//! One sans-IO [`Core`] for every interface and virtual router: it turns received adverts,
//! timer expiries, link and address changes and the outcome of its own commands into state
//! machine inputs, and the state machines' actions into [`Command`]s (whole frames to send, VIPs
//! to claim or release) and [`Notification`]s (every state change, every noteworthy decision).
//! It owns the [`VirtualRouter`]s and the gratuitous ARP / unsolicited NA schedules; it reads no
//! clock, touches no socket and logs nothing, so it is tested on a simulated clock. The edge
//! (`vrrp-agent`) carries out the commands and renders the notifications.
//!
//! In the style of quinn-proto: [`Core::handle`] an [`Event`] at `now`, then drain
//! [`Core::poll_command`] in order (reporting what each claim or release did with
//! [`Event::Report`] before polling the next one), and wake at [`Core::poll_timeout`] with
//! [`Event::Timer`]. [`Core::snapshot`] is everything a status page needs.
//!
//! Time: two clocks' worth of times, both on CLOCK_MONOTONIC.
//! - `now`, given with every event, is when the core handles it, so when the frames it
//!   returns are sent. A Master's Adver_Timer runs from there (and from the time the edge
//!   reports an advert actually left, [`Event::AdvertSent`]): RFC 9568 §6.4.3 resets it after
//!   each send, so a late advert never makes the next one early.
//! - An advert's receive time is the kernel's ([`Received::rx_time`]), not the time the agent
//!   got round to reading it. A Backup's Master_Down_Timer runs from it, so a late wake-up of the
//!   Backup never makes the master look late: an advert received before the deadline resets it
//!   even if read late. A Backup that only gets to act after its deadline reads the adverts that
//!   arrived meanwhile first: one from a live master means no takeover (taking over to step down
//!   at once would be a false failover), see [`Event::Advert`].
//!
//! Inputs are fed in receive order: before an advert received at `t`, the timers of its
//! interface's instances due before `t` fire (handled at `now`); and when a timer expires, the
//! edge first drains the ring buffer and hands the pending adverts in as [`Event::Advert`]s
//! before the [`Event::Timer`] — otherwise a Master_Down_Timer would fire while the advert that
//! resets it sits unread.
//!
//! Lines about other routers are rate-limited per peer on the core's clock ([`LogLimit`]): an
//! advert whose address list differs from ours and a new master.
//!
//! Claims are inputs too. The edge reports what each [`Command::Claim`] / `Release` / `AddVip` /
//! `RemoveVip` did with [`Event::Report`] before it polls the next command, so the state machine
//! never stays Master without its VIPs: a failed claim drops the instance's commands still
//! queued, puts the instance in FAULT (priority-0 advert, release) and retries it after a backoff
//! ([`CLAIM_RETRY_MIN`] doubling to [`CLAIM_RETRY_MAX`]). The kernel's address notifications come
//! in as [`Event::AddressChanged`]: a VIP removed behind our back while we hold it is put back, a
//! VIP added behind our back while we do not is removed, and both are counted ([`VipStats`]).
use std::{collections::VecDeque, net::IpAddr, time::Duration};

use crate::{
    config::{AgentConfig, CheckSpec, InstanceSpec, SyncGroupSpec},
    fsm::{Action, Input, Instant, Reason, State, VirtualRouter},
    wire::{self, vmac, AdvertFrame, InstanceCfg, MacAddr, RxError, RxParts, Valid, VrrpRepr},
};

mod claims;
mod event;
mod garp;
mod heartbeat;
mod instance;
mod reload;
mod resume;
mod snapshot;
mod stats;
mod sync_group;
mod track;

pub use claims::{
    CLAIM_HELD_RESET, CLAIM_RETRY_MAX, CLAIM_RETRY_MIN, RELEASE_RETRIES, RELEASE_RETRY_FIRST,
};
pub use event::{
    Command, Event, IfaceId, InstanceId, Notification, PreviousMaster, Received, ReleaseOutcome,
    Report, StateChange, TrackerId, TrackerInfo,
};
pub use heartbeat::Heartbeat;
pub use instance::IfaceEnv;
use instance::Instance;
pub use reload::ReloadPlan;
pub use resume::{decide_resume, LeftRouter, Refusal, ResumeDecision, ResumeFacts};
pub use snapshot::{
    GroupSnapshot, IfaceSnapshot, InstanceSnapshot, Snapshot, TrackerSnapshot, Transition,
};
pub use stats::{
    InstanceCounters, LogLimit, Peer, Peers, RxStats, VipStats, LOG_EVERY, LOG_PEERS, MAX_PEERS,
};

/// How late a Master's advert may go out so that it shares a wake-up with others
/// ([`Core::poll_wakeup`]).
pub const ADVERT_SLACK: Duration = Duration::from_micros(250);

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
        Reason::SyncGroup => "sync_group",
        Reason::Resumed => "resumed",
    }
}

/// One interface: its instances and what receive validation needs about them.
#[derive(Debug, Clone)]
struct Iface {
    name: String,
    /// The instances on this interface, in configuration order.
    members: Vec<InstanceId>,
    /// Receive validation's view of `members` (same order).
    rx_cfgs: Vec<InstanceCfg>,
    /// Adverts that matched no instance (their VRID/family is not configured here).
    unmatched: RxStats,
    link_up: bool,
}

/// What the core runs: the instances, the checks they track, the sync groups
/// ([`Core::with_model`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub instances: Vec<InstanceSpec>,
    pub checks: Vec<CheckSpec>,
    pub sync_groups: Vec<SyncGroupSpec>,
}

impl From<&AgentConfig> for Model {
    fn from(c: &AgentConfig) -> Model {
        Model {
            instances: c.instances.clone(),
            checks: c.checks.clone(),
            sync_groups: c.sync_groups.clone(),
        }
    }
}

/// Every virtual router of every interface. See the module documentation.
#[derive(Debug, Clone)]
pub struct Core {
    ifaces: Vec<Iface>,
    instances: Vec<Instance>,
    /// One per distinct tracked target ([`track`]).
    trackers: Vec<track::Tracker>,
    /// The same, as the edge sees them ([`Core::trackers`]).
    tracker_infos: Vec<TrackerInfo>,
    /// Sync groups ([`sync_group`]).
    groups: Vec<sync_group::Group>,
    /// Commands not polled yet.
    queue: VecDeque<Command>,
    /// Sequence number of the last state change.
    seq: u64,
    /// Report every accepted advert ([`Notification::AdvertReceived`]).
    log_adverts: bool,
    /// After [`Event::Shutdown`]: failed releases are not retried any more.
    stopping: bool,
}

impl Core {
    /// Builds the state machines. Each instance is bound to the interface its spec names; its
    /// advert source is chosen by [`IfaceEnv::primary_for`]. The interfaces' addresses are
    /// "ours" (an advert from one is dropped: a spoof or a loop), except VIPs (an address owner
    /// sends from its VIP).
    ///
    /// No trackers and no sync groups: see [`Core::with_model`].
    pub fn new(specs: Vec<InstanceSpec>, ifaces: Vec<IfaceEnv>) -> Result<Core, String> {
        Core::with_model(
            Model {
                instances: specs,
                ..Model::default()
            },
            ifaces,
        )
    }

    /// [`Core::new`] with the checks the instances track and the sync groups: the trackers
    /// ([`Core::trackers`], one per distinct target) start down, so an instance starts with
    /// the priority that gives (and in FAULT if it has a weight-0 tracker); see [`track`] and
    /// [`sync_group`]. A tracked check or a group member that does not exist is an error
    /// (`config::check_model` reports it first, with the key).
    pub fn with_model(model: Model, ifaces: Vec<IfaceEnv>) -> Result<Core, String> {
        let Model {
            instances: specs,
            checks,
            sync_groups,
        } = model;
        let (trackers, tracks) = track::build(&specs, &checks)?;
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let (groups, group_of) = sync_group::build(&sync_groups, &names)?;
        let mut out_ifaces: Vec<Iface> = ifaces
            .iter()
            .map(|e| Iface {
                name: e.name.clone(),
                members: Vec::new(),
                rx_cfgs: Vec::new(),
                unmatched: RxStats::default(),
                link_up: true,
            })
            .collect();
        let mut placed = Vec::new();
        for spec in &specs {
            let f = ifaces
                .iter()
                .position(|e| e.name == spec.interface)
                .ok_or_else(|| {
                    format!(
                        "instance {}: interface {} was not given to the core",
                        spec.name, spec.interface
                    )
                })?;
            let env = &ifaces[f];
            let all_vips: Vec<IpAddr> = specs
                .iter()
                .filter(|s| s.interface == env.name)
                .flat_map(|s| s.vips.iter().map(|v| v.addr))
                .collect();
            let primary = env.primary_for(spec, &all_vips)?;
            if spec.priority == 255 {
                spec.fsm_config(primary)
                    .validate_ownership(&env.addrs)
                    .map_err(|e| format!("instance {}: {e}", spec.name))?;
            }
            placed.push((f, primary, all_vips));
        }
        let mut instances = Vec::new();
        for (id, (spec, (f, primary, all_vips))) in specs.into_iter().zip(placed).enumerate() {
            let mut vr = VirtualRouter::new(spec.fsm_config(primary))
                .map_err(|e| format!("instance {}: {e}", spec.name))?;
            // The trackers' initial state, before Startup (nothing to notify: Initialize).
            let (priority, track_fault) = track::evaluate(spec.priority, &tracks[id], &trackers);
            if spec.priority != 255 {
                vr.handle(Input::PriorityChanged { priority }, Instant::ZERO);
            }
            if track_fault {
                vr.handle(Input::TrackFault { on: true }, Instant::ZERO);
            }
            let stale_after = spec
                .failsafe_timeout
                .unwrap_or_else(|| vr.master_down_interval());
            let mut local = vec![primary];
            for a in &ifaces[f].addrs {
                if !all_vips.contains(a) && !local.contains(a) {
                    local.push(*a);
                }
            }
            let iface = &mut out_ifaces[f];
            iface.members.push(InstanceId(id));
            iface.rx_cfgs.push(rx_cfg(&spec, local));
            let mut inst = Instance::new(spec, IfaceId(f), vr, stale_after);
            inst.tracks = tracks[id].clone();
            inst.track_fault = track_fault;
            inst.group = group_of[id];
            instances.push(inst);
        }
        Ok(Core {
            ifaces: out_ifaces,
            instances,
            tracker_infos: trackers.iter().map(|t| t.info.clone()).collect(),
            trackers,
            groups,
            queue: VecDeque::new(),
            seq: 0,
            log_adverts: true,
            stopping: false,
        })
    }

    /// Whether every accepted advert is reported ([`Notification::AdvertReceived`]; on by
    /// default).
    pub fn set_log_adverts(&mut self, on: bool) {
        self.log_adverts = on;
    }

    /// Handles one event at `now`; what to do next comes out of [`Core::poll_command`].
    ///
    /// The answer to an [`Event::Report`] goes in front of the commands still queued (a failed
    /// claim first drops the instance's queued commands: its advert and GARPs assumed the claim
    /// worked); every other event's commands go behind them.
    pub fn handle(&mut self, ev: Event, now: Instant) {
        let mut out = Vec::new();
        match ev {
            Event::Startup => {
                for i in 0..self.instances.len() {
                    self.feed(i, Input::Startup, now, None, &mut out);
                }
            }
            Event::StartupListening { since } => {
                let at = since.min(now);
                for i in 0..self.instances.len() {
                    self.feed(i, Input::Startup, at, None, &mut out);
                }
            }
            Event::Resume { instance } => {
                if instance.0 < self.instances.len() {
                    self.feed(instance.0, Input::Resume, now, None, &mut out);
                }
            }
            Event::Advert { iface, rx } => {
                if iface.0 < self.ifaces.len() {
                    self.on_advert(iface.0, &rx, now, &mut out);
                }
            }
            Event::Timer => self.on_timers(now, &mut out),
            Event::Link { iface, up } => {
                if let Some(f) = self.ifaces.get_mut(iface.0) {
                    f.link_up = up;
                    let input = if up { Input::LinkUp } else { Input::LinkDown };
                    for i in self.members(iface.0) {
                        self.feed(i, input.clone(), now, None, &mut out);
                    }
                }
            }
            Event::AdvertSent { instance, at } => {
                if instance.0 < self.instances.len() {
                    self.instances[instance.0].counters.adverts_sent += 1;
                    self.feed(instance.0, Input::AdvertSent, at, None, &mut out);
                    debug_assert!(out.is_empty(), "{out:?}");
                }
            }
            Event::AdvertNotSent { instance, at } => {
                if instance.0 < self.instances.len() {
                    self.instances[instance.0].counters.advert_send_errors += 1;
                    self.feed(instance.0, Input::AdvertNotSent, at, None, &mut out);
                    debug_assert!(out.is_empty(), "{out:?}");
                }
            }
            Event::Report { instance, report } => {
                if instance.0 < self.instances.len() {
                    self.report(instance.0, report, now, &mut out);
                }
                self.sync_groups(now, &mut out);
                for c in out.into_iter().rev() {
                    self.queue.push_front(c);
                }
                return;
            }
            Event::AddressChanged {
                iface,
                addr,
                present,
            } => {
                if iface.0 < self.ifaces.len() {
                    self.address_changed(iface.0, addr, present, &mut out);
                }
            }
            Event::AddressesNow { iface, addrs } => {
                if iface.0 < self.ifaces.len() {
                    self.addresses_now(iface.0, &addrs, &mut out);
                }
            }
            Event::Shutdown => self.shutdown(now, &mut out),
            Event::EndHandovers => {
                for (i, inst) in self.instances.iter_mut().enumerate() {
                    if inst.handover_until.take().is_some() {
                        out.push(Command::Release {
                            instance: InstanceId(i),
                        });
                    }
                }
            }
            Event::CheckResult { tracker, ok } => {
                self.on_tracker(tracker, track::TrackerChange::Probe(ok), now, &mut out)
            }
            Event::TrackerState { tracker, up } => {
                self.on_tracker(tracker, track::TrackerChange::State(up), now, &mut out)
            }
            Event::TrackerValue { tracker, value } => {
                self.on_tracker(tracker, track::TrackerChange::Value(value), now, &mut out)
            }
        }
        self.sync_groups(now, &mut out);
        self.queue.extend(out);
    }

    /// The next thing to do, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.queue.pop_front()
    }

    /// The commands not polled yet, in order (what [`Core::poll_command`] will return).
    pub fn queued(&self) -> impl Iterator<Item = &Command> {
        self.queue.iter()
    }

    /// When the core next needs [`Event::Timer`]: the earliest state-machine deadline, GARP
    /// packet, handover end or retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.instances.iter().flat_map(Instance::wakeups).min()
    }

    // ---- CPU floor (issue 11, wt-rss): adverts due close together share one wake-up ----

    /// When the edge should wake for [`Event::Timer`]: [`Core::poll_timeout`], except that the
    /// earliest Master's Adver_Timer waits for the other Adver_Timers due within
    /// [`ADVERT_SLACK`] of it (at most 1/40 of its advert interval): that wake-up sends them
    /// together, so many VRIDs cost a few wake-ups per interval instead of one per advert. An
    /// advert with no other due that close is not delayed; every other timer
    /// (Master_Down_Timer, GARP, handover, retries) keeps its exact deadline.
    pub fn poll_wakeup(&self) -> Option<Instant> {
        let advert = |inst: &Instance| {
            (inst.vr.state() == State::Master && !inst.group_wait)
                .then(|| inst.vr.next_deadline())
                .flatten()
        };
        let mut exact: Option<Instant> = None;
        let mut first: Option<(Instant, Duration)> = None;
        for inst in &self.instances {
            let a = advert(inst);
            for w in inst.wakeups() {
                if Some(w) == a {
                    let slack = ADVERT_SLACK
                        .min(Duration::from_millis(u64::from(inst.spec.advert_int_cs) * 10) / 40);
                    if first.is_none_or(|(f, _)| w < f) {
                        first = Some((w, slack));
                    }
                } else if exact.is_none_or(|e| w < e) {
                    exact = Some(w);
                }
            }
        }
        let Some((first, slack)) = first else {
            return exact;
        };
        let until = first.saturating_add(slack);
        let cluster_end = self
            .instances
            .iter()
            .filter_map(advert)
            .filter(|&a| a <= until)
            .max()
            .unwrap_or(first);
        Some(exact.map_or(cluster_end, |e| e.min(cluster_end)))
    }

    // ---- end CPU floor ----

    /// True while a departing master still holds its VIPs (see [`Event::Shutdown`]).
    pub fn handing_over(&self) -> bool {
        self.instances.iter().any(|i| i.handover_until.is_some())
    }

    /// Heartbeat period for the fast-path fail-safe: a quarter of the smallest fail-safe bound,
    /// at least 1 ms.
    pub fn heartbeat_period(&self) -> Duration {
        self.instances
            .iter()
            .map(|i| i.stale_after / 4)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1))
    }

    /// The configuration of an instance.
    pub fn spec(&self, id: InstanceId) -> Option<&InstanceSpec> {
        self.instances.get(id.0).map(|i| &i.spec)
    }

    /// Hitless restart: whether instance `id` resumes as Master at start-up, given what the
    /// edge observed in the kernel ([`decide_resume`] with this instance's priority, VIPs and
    /// fail-safe bound). `None` for an unknown instance.
    pub fn resume_decision(
        &self,
        id: InstanceId,
        facts: &ResumeFacts<'_>,
    ) -> Option<ResumeDecision> {
        let i = self.instances.get(id.0)?;
        let vips: Vec<_> = i.spec.vips.iter().map(|v| v.addr).collect();
        Some(decide_resume(i.spec.priority, &vips, i.stale_after, facts))
    }

    /// The interface an instance runs on.
    pub fn iface_of(&self, id: InstanceId) -> Option<IfaceId> {
        self.instances.get(id.0).map(|i| i.iface)
    }

    /// The instances of an interface, in configuration order.
    pub fn instances_of(&self, iface: IfaceId) -> &[InstanceId] {
        self.ifaces
            .get(iface.0)
            .map_or(&[][..], |f| f.members.as_slice())
    }

    fn members(&self, f: usize) -> Vec<usize> {
        self.ifaces[f].members.iter().map(|i| i.0).collect()
    }

    /// Shutdown of every instance (RFC 9568 §6.4.3: masters send priority 0).
    ///
    /// Graceful handover, make-before-break: a departing master does not release its VIPs
    /// with the priority-0 advert. It keeps answering ARP/NS and forwarding until another
    /// router's advert shows that router has taken over (a backup does so Skew_Time after the
    /// priority-0 advert), then releases; if none does within the instance's
    /// Master_Down_Interval, it releases anyway. Traffic in flight during the Skew_Time is
    /// therefore delivered instead of black-holed. The edge keeps handing in events while
    /// [`Core::handing_over`] is true.
    fn shutdown(&mut self, now: Instant, out: &mut Vec<Command>) {
        self.stopping = true;
        for i in 0..self.instances.len() {
            let was_master = self.instances[i].vr.state() == State::Master;
            let mut cmds = Vec::new();
            self.feed(i, Input::Shutdown, now, None, &mut cmds);
            let inst = &mut self.instances[i];
            inst.garp = None;
            inst.claim_retry.at = None;
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
    }

    /// Fires everything due at or before `now`.
    fn on_timers(&mut self, now: Instant, out: &mut Vec<Command>) {
        for i in 0..self.instances.len() {
            self.retries_due(i, now, out);
            if self.instances[i]
                .vr
                .next_deadline()
                .is_some_and(|d| d <= now)
            {
                self.fire_timer(i, now, out);
            }
            self.garp_due(i, now, out);
            let inst = &mut self.instances[i];
            if inst.handover_until.is_some_and(|d| d <= now) {
                inst.handover_until = None;
                out.push(Command::Notify(Notification::HandoverTimedOut {
                    instance: InstanceId(i),
                    name: inst.spec.name.clone(),
                    after: inst.vr.master_down_interval(),
                }));
                out.push(Command::Release {
                    instance: InstanceId(i),
                });
            }
        }
    }

    /// One advert received on interface `f`, handled at `now` (received at its `rx_time`).
    ///
    /// Receive order: the interface's timers that ran out before the advert arrived fire first
    /// (what they send leaves now), with one exception. A backup whose Master_Down_Timer ran
    /// out before this advert arrived, but which only gets to act now (it was not scheduled at
    /// the deadline, or its host stalled and the kernel stamped the advert late), reads the
    /// advert first: it is what the backup knows when it acts. If the advert restarts the timer
    /// (the master is alive), there is no takeover; taking over only to step down at once
    /// would be a false failover. If it does not (priority 0, or a lower priority that preempt
    /// discards), the timer fires as before.
    fn on_advert(&mut self, f: usize, rx: &Received, now: Instant, out: &mut Vec<Command>) {
        let at = rx.rx_time;
        // Nothing is handled before it happened.
        let now = now.max(at);
        let parts = RxParts {
            src_mac: rx.src_mac,
            src_ip: rx.src_ip,
            dst_ip: rx.dst_ip,
            hop_limit: rx.hop_limit,
            vlan: rx.vlan,
            payload: &rx.payload,
        };
        let valid = wire::validate_parts(&parts, &self.ifaces[f].rx_cfgs);
        let mut deferred = None;
        for (k, i) in self.members(f).into_iter().enumerate() {
            if self.instances[i].vr.next_deadline().is_some_and(|d| d < at) {
                let backup_reads_first = matches!(&valid, Ok(v) if v.instance == k)
                    && self.instances[i].vr.state() == State::Backup;
                if backup_reads_first {
                    deferred = Some(i);
                } else {
                    self.fire_timer(i, now, out);
                }
            }
            self.garp_due(i, at, out);
        }
        match valid {
            Ok(valid) => self.on_valid(f, valid, at, now, out),
            Err(e) => self.count_error(f, &parts, e, out),
        }
        if let Some(i) = deferred {
            if self.instances[i].vr.next_deadline().is_some_and(|d| d < at) {
                self.fire_timer(i, now, out);
            }
        }
    }

    fn count_error(&mut self, f: usize, rx: &RxParts<'_>, e: RxError, out: &mut Vec<Command>) {
        let family = wire::Family::of(rx.src_ip);
        let vrid = rx.payload.get(1).copied();
        let iface = &mut self.ifaces[f];
        let k = iface
            .rx_cfgs
            .iter()
            .position(|c| Some(c.vrid) == vrid && c.family == family);
        let (instance, count) = match k {
            Some(k) => {
                let id = iface.members[k];
                let inst = &mut self.instances[id.0];
                (Some((id, inst.spec.name.clone())), inst.rx.count(&e))
            }
            None => (None, iface.unmatched.count(&e)),
        };
        out.push(Command::Notify(Notification::AdvertDropped {
            iface: iface.name.clone(),
            instance,
            src_ip: rx.src_ip,
            src_mac: rx.src_mac,
            error: e,
            count,
        }));
    }

    fn on_valid(&mut self, f: usize, v: Valid, at: Instant, now: Instant, out: &mut Vec<Command>) {
        let i = self.ifaces[f].members[v.instance].0;
        let id = InstanceId(i);
        let inst = &mut self.instances[i];
        inst.rx.accepted += 1;
        inst.peers
            .heard(v.src_ip, v.vrrp.priority, v.vrrp.max_advert_int, at);
        if v.addr_mismatch {
            inst.rx.addr_list_differs += 1;
            if let Some(left_out) = inst.log_addr_list.admit(v.src_ip, now) {
                out.push(Command::Notify(Notification::AddrListDiffers {
                    instance: id,
                    name: inst.spec.name.clone(),
                    src: v.src_ip,
                    priority: v.vrrp.priority,
                    theirs: v.vrrp.addrs.clone(),
                    ours: self.ifaces[f].rx_cfgs[v.instance].addrs.clone(),
                    left_out,
                }));
            }
        }
        if self.log_adverts {
            out.push(Command::Notify(Notification::AdvertReceived {
                instance: id,
                name: inst.spec.name.clone(),
                version: v.vrrp.version,
                vrid: v.vrrp.vrid,
                priority: v.vrrp.priority,
                interval_cs: v.vrrp.max_advert_int,
                src: v.src_ip,
                src_mac: v.src_mac,
                addr_list_differs: v.addr_mismatch,
            }));
        }
        if inst.handover_until.is_some()
            && v.vrrp.priority > 0
            && v.src_ip != inst.vr.config().primary_addr
        {
            inst.handover_until = None;
            out.push(Command::Notify(Notification::HandoverTakenOver {
                instance: id,
                name: inst.spec.name.clone(),
                by: v.src_ip,
            }));
            out.push(Command::Release { instance: id });
        }
        let priority = v.vrrp.priority;
        let adv = crate::fsm::RxAdvert {
            version: v.vrrp.version,
            vrid: v.vrrp.vrid,
            priority,
            max_adver_int_cs: v.vrrp.max_advert_int,
            src: v.src_ip,
            addrs: v.vrrp.addrs,
            rx_time: Some(at),
        };
        let (before, was) = (inst.vr.master_addr(), inst.vr.state());
        self.feed(i, Input::Advert(adv), now, Some((v.src_ip, priority)), out);
        let inst = &mut self.instances[i];
        let after = inst.vr.master_addr();
        if after == Some(v.src_ip) {
            inst.master_priority = Some(priority);
        }
        if after.is_some() && after != before {
            if let Some(left_out) = inst.log_new_master.admit(v.src_ip, now) {
                let previous = match before {
                    Some(b) => PreviousMaster::Addr(b),
                    None if was == State::Master => PreviousMaster::ThisRouter,
                    None => PreviousMaster::FirstSeen,
                };
                out.push(Command::Notify(Notification::NewMaster {
                    instance: id,
                    name: inst.spec.name.clone(),
                    master: v.src_ip,
                    priority,
                    previous,
                    left_out,
                }));
            }
        }
    }

    /// Feeds one input to instance `i` and translates its actions. `cause`: the advert
    /// (source, priority) the input is, if it is one.
    ///
    /// Reorderings against the state machine's action order. On becoming Master nothing slower
    /// than a map update stands before the advert: the `Claim` (the fast path owns the VMAC; a
    /// map update) goes out *before* it, so the XDP program answers ARP/NS for the VIPs with the
    /// VMAC as soon as the advert (the first frame from the VMAC) moves the switches' forwarding
    /// entry to us. GARP/NA follow the advert; then `AddVips` (the addresses: netlink, which can
    /// wait milliseconds for the kernel's rtnl lock); then the state change is notified (the
    /// edge writes the log line synchronously and starts notify scripts), so a reader of that
    /// notification finds the VIPs on the interface. Every other state change is notified
    /// first: it is decided before anything is carried out. The retry after a failed claim
    /// adds the addresses right after the `Claim`, before the advert: a peer has taken over
    /// by then, and an advert from a claim that fails again would preempt it for nothing. A
    /// failed claim or address add
    /// (FAULT) is told after the MASTER it ends ([`Core::report`] keeps the order).
    fn feed(
        &mut self,
        i: usize,
        input: Input,
        now: Instant,
        cause: Option<(IpAddr, u8)>,
        out: &mut Vec<Command>,
    ) {
        let actions = self.instances[i].vr.handle(input, now);
        let id = InstanceId(i);
        let mut cmds = Vec::new();
        for a in actions {
            match a {
                Action::SendAdvert {
                    priority,
                    interval_cs,
                } => {
                    self.advert(i, priority, interval_cs, &mut cmds);
                    // A Master's answer to a lower-priority (non-zero) advert: another router
                    // thinks it is Master; announce the VIPs again after the advert.
                    let answer = matches!(cause, Some((_, p)) if p > 0)
                        && self.instances[i].vr.state() == State::Master;
                    if answer {
                        self.garp_answer(i, now, &mut cmds);
                    }
                }
                Action::BecomeMaster { accept } => {
                    cmds.insert(
                        0,
                        Command::Claim {
                            instance: id,
                            accept,
                        },
                    );
                    self.garp_start(i, now, &mut cmds);
                    // An address owner's VIPs are the interface's own addresses. A retry
                    // after a failed claim adds them before its advert (see `ClaimRetry`).
                    if self.instances[i].spec.priority != 255 {
                        let add = Command::AddVips { instance: id };
                        if self.instances[i].claim_retry.last_failed {
                            cmds.insert(1, add);
                        } else {
                            cmds.push(add);
                        }
                    }
                }
                Action::Release => {
                    self.instances[i].garp = None;
                    cmds.push(Command::Release { instance: id });
                }
                Action::StateChanged { from, to, reason } => {
                    self.note_group_change(i, from, to, reason);
                    self.seq += 1;
                    let inst = &mut self.instances[i];
                    inst.last_transition = Some(Transition {
                        seq: self.seq,
                        from,
                        to,
                        reason,
                        at: now,
                    });
                    if to == State::Master {
                        inst.master_priority = None;
                        inst.counters.became_master += 1;
                    }
                    if from == State::Master {
                        inst.counters.left_master += 1;
                    }
                    inst.counters.transitions += 1;
                    // Becoming Master is told after the takeover's commands (see above).
                    let told = if to == State::Master {
                        &mut cmds
                    } else {
                        &mut *out
                    };
                    told.push(Command::Notify(Notification::StateChanged(StateChange {
                        seq: self.seq,
                        instance: id,
                        name: inst.spec.name.clone(),
                        iface: self.ifaces[inst.iface.0].name.clone(),
                        vrid: inst.spec.vrid,
                        family: inst.spec.family(),
                        from,
                        to,
                        reason,
                        priority: inst.vr.priority(),
                        master: cause,
                    })));
                }
                Action::ArmTimer { .. } | Action::CancelTimer => {}
            }
        }
        out.extend(cmds);
    }

    /// The advert frame(s) of instance `i`: one multicast frame, or one IP packet per unicast
    /// peer (and then no multicast).
    fn advert(&self, i: usize, priority: u8, interval_cs: u16, out: &mut Vec<Command>) {
        let inst = &self.instances[i];
        let id = InstanceId(i);
        let repr = VrrpRepr {
            version: inst.spec.version,
            vrid: inst.spec.vrid,
            priority,
            max_advert_int: interval_cs,
            auth: inst.spec.auth,
            addrs: inst.spec.vips.iter().map(|v| v.addr).collect(),
        };
        let src = inst.vr.config().primary_addr;
        let failed = |e: wire::EmitError| {
            Command::Notify(Notification::AdvertBuildFailed {
                instance: id,
                name: inst.spec.name.clone(),
                error: e.to_string(),
            })
        };
        if inst.spec.unicast_peers.is_empty() {
            match AdvertFrame::multicast(repr, src).to_bytes(inst.spec.checksum) {
                Ok(frame) => out.push(Command::SendFrame {
                    instance: id,
                    frame,
                    advert: true,
                }),
                Err(e) => out.push(failed(e)),
            }
        } else {
            for peer in &inst.spec.unicast_peers {
                // The Ethernet header is dropped: the kernel routes the IP packet and resolves
                // the next hop's MAC.
                let f = AdvertFrame::unicast(repr.clone(), src, *peer, MacAddr([0; 6]));
                match f.to_bytes(inst.spec.checksum) {
                    Ok(frame) => out.push(Command::SendIp {
                        instance: id,
                        dst: *peer,
                        packet: frame[wire::frame::ETH_HEADER_LEN..].to_vec(),
                    }),
                    Err(e) => out.push(failed(e)),
                }
            }
        }
    }

    /// The VMAC of instance `i`.
    fn vmac(&self, i: usize) -> MacAddr {
        let s = &self.instances[i].spec;
        vmac(s.wire_family(), s.vrid)
    }
}

/// Receive validation's view of an instance (at start and at a reload).
fn rx_cfg(spec: &InstanceSpec, local_addrs: Vec<IpAddr>) -> InstanceCfg {
    InstanceCfg {
        vrid: spec.vrid,
        family: spec.wire_family(),
        version: spec.version,
        priority: spec.priority,
        advert_int: spec.advert_int_cs,
        auth: spec.auth,
        addrs: spec.vips.iter().map(|v| v.addr).collect(),
        checksum: spec.checksum,
        unicast_peers: spec.unicast_peers.clone(),
        local_addrs,
    }
}
