//! The RFC 9568 §6.4 state machine for one virtual router (v2 per RFC 3768 §6.4 where they
//! differ), plus keepalived's `preempt_delay` and a Fault state.
use core::time::Duration;
use std::net::IpAddr;

use super::config::{Config, ConfigError, Family, Version};
use super::timers::{centis, master_down_interval, skew_time, Instant};

/// Protocol state. `Fault` is not in the RFC: it is entered on link down, a tracked failure or a
/// failed claim of the VIPs; in it no adverts are sent, no VIP is owned and received adverts are
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

/// An already-parsed and validated advert (the wire layer drops invalid ones, RFC 9568 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxAdvert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v3: Max Advertise Interval in centiseconds. v2: the advert interval converted to
    /// centiseconds (seconds × 100); not used by the state machine (RFC 3768 has no learning).
    pub max_adver_int_cs: u16,
    /// Source address of the IP packet (the sender's primary address).
    pub src: IpAddr,
    pub addrs: Vec<IpAddr>,
    /// When the advert was received (the kernel's receive time), if known; `None`: at the `now`
    /// it is handled with. A Backup's Master_Down_Timer (and preempt_delay) runs from here, so
    /// an advert read late still counts from when it arrived; a Master's Adver_Timer runs from
    /// `now`, when its answer is sent.
    pub rx_time: Option<Instant>,
}

/// Something that happened to the virtual router. Time is passed beside it to
/// [`VirtualRouter::handle`]: the time the input is processed, which is when the adverts it
/// causes are sent (an advert's receive time travels in [`RxAdvert::rx_time`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// RFC Startup event.
    Startup,
    /// Startup after a hitless restart: an earlier run of this router exited as Master
    /// leaving its VIPs and fast path in place (the I/O layer found both). Initialize →
    /// Master at once ([`Reason::Resumed`]: advert, claim, Adver_Timer), unless a fault holds
    /// (then Fault, as at Startup, and Release: the VIPs left in place go). A no-op outside
    /// Initialize.
    Resume,
    /// RFC Shutdown event.
    Shutdown,
    /// An advert arrived for this interface.
    Advert(RxAdvert),
    /// The deadline from the last [`Action::ArmTimer`] (or [`VirtualRouter::next_deadline`]) was
    /// reached. Early or spurious wake-ups are harmless no-ops.
    Timer,
    /// The effective priority changed (e.g. tracked weights). 0 is ignored; a non-owner is
    /// capped at 254.
    PriorityChanged { priority: u8 },
    /// The interface lost carrier: enter Fault (no priority-0 advert can be sent).
    LinkDown,
    /// The interface is back.
    LinkUp,
    /// A tracked check (script, other interface) failed (`on: true`) or recovered.
    /// Fault holds while the link is down or a tracked fault is on.
    TrackFault { on: bool },
    /// Another member of this router's sync group is in FAULT (`on: true`), or no member is
    /// any more: like [`Input::TrackFault`], with [`Reason::SyncGroup`].
    SyncFault { on: bool },
    /// Another member of this router's sync group left Master for Backup: a Master gives up
    /// too (priority-0 advert, release, Backup with Master_Down_Timer, [`Reason::SyncGroup`]);
    /// a no-op in any other state.
    Resign,
    /// Taking the VIPs failed (`on: true`: an address or the fast path could not be set up), so
    /// this router must not be Master; `on: false` when the caller's retry is due. Like a
    /// tracked fault: a Master sends priority 0 (the link is up) and releases.
    ClaimFault { on: bool },
    /// The advert of the last [`Action::SendAdvert`] actually left at `now` (the I/O layer
    /// reports it; it can send later than the time it handled the input with, e.g. when it was
    /// preempted). A Master restarts its Adver_Timer from this send (RFC 9568 §6.4.3: reset
    /// after each send), so the next advert never leaves less than Advertisement_Interval
    /// after it. It only ever moves the timer later; in any other state it is a no-op.
    AdvertSent,
    /// The advert of the last [`Action::SendAdvert`] did not leave at `now`: the kernel had no
    /// room for it for the moment (a full device queue or backlog: `ENOBUFS`, `EAGAIN`). A
    /// Master sends it again [`SEND_RETRY_DELAY`] later instead of a whole
    /// Advertisement_Interval later, at most [`SEND_RETRIES`] times in a row (the count
    /// starts again after an advert leaves): three adverts lost in a row make the backups
    /// take over. In any other state it is a no-op.
    AdvertNotSent,
}

/// How long after a failed send ([`Input::AdvertNotSent`]) a Master sends its advert again
/// (or a quarter of the advert interval, if that is shorter).
pub const SEND_RETRY_DELAY: Duration = Duration::from_millis(1);
/// How many quick resends follow failed sends in a row before the Master waits a whole
/// Advertisement_Interval again.
pub const SEND_RETRIES: u8 = 3;

/// Why a state change happened (for notify scripts and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Startup of a non-owner: Initialize → Backup.
    Startup,
    /// Startup of the address owner (priority 255): Initialize → Master.
    AddressOwner,
    /// Shutdown event.
    Shutdown,
    /// Master_Down_Timer fired after the master fell silent.
    MasterNoResponse,
    /// Master_Down_Timer (set to Skew_Time) fired after the master sent priority 0.
    MasterPriorityZero,
    /// Master_Down_Timer fired while we were discarding a lower-priority master's adverts.
    Preempted,
    /// A master heard a higher-priority advert (or equal priority from a larger address).
    HigherPriorityAdvert,
    /// Link down or tracked fault.
    Fault,
    /// Taking the VIPs failed ([`Input::ClaimFault`]).
    ClaimFailed,
    /// Link up / tracked fault cleared / claim retry due: the Startup rules apply again.
    FaultCleared,
    /// A sync group member moved (another member's FAULT, or its leaving Master).
    SyncGroup,
    /// Startup after a hitless restart of a Master ([`Input::Resume`]).
    Resumed,
}

/// What the I/O layer must do. Plain data; apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority and interval (centiseconds; a v2 encoder divides
    /// by 100). Priority 0 means "master giving up".
    SendAdvert { priority: u8, interval_cs: u16 },
    /// Take over: add the VIPs, claim the VMAC, send gratuitous ARP / unsolicited NA.
    /// `accept`: accept packets addressed to the VIPs (owner or `Accept_Mode`); otherwise only
    /// forward for them (RFC 9568 §6.4.3).
    BecomeMaster { accept: bool },
    /// Let go: remove the VIPs, release the VMAC, stop answering ARP/ND for them. Idempotent;
    /// emitted on every exit from Master and on every entry into Backup.
    Release,
    /// For notify scripts / logging.
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    /// (Re)arm the single timer to fire at `at`; deliver [`Input::Timer`] then.
    ArmTimer { at: Instant },
    /// Disarm the timer.
    CancelTimer,
}

/// One virtual router's protocol state. Sans-IO: `handle(input, now) -> actions`.
#[derive(Debug, Clone)]
pub struct VirtualRouter {
    cfg: Config,
    state: State,
    /// Effective priority (starts at the configured one).
    priority: u8,
    /// `Master_Adver_Interval` (centiseconds).
    master_adver_int_cs: u16,
    /// Adver_Timer in Master, Master_Down_Timer in Backup, none otherwise.
    deadline: Option<Instant>,
    /// Between Startup and Shutdown.
    started: bool,
    link_down: bool,
    track_fault: bool,
    claim_fault: bool,
    sync_fault: bool,
    /// keepalived preempt_time: lower-priority masters are tolerated until then;
    /// `None` with a non-zero delay means "not started yet".
    preempt_until: Option<Instant>,
    /// Why a Master_Down_Timer expiry would make us master.
    down_reason: Reason,
    /// When a Master last answered another router's advert with one of its own (bounded to one
    /// per Advertisement_Interval).
    last_reassert: Option<Instant>,
    /// Source of the last advert we accepted as master's (for status output).
    master_addr: Option<IpAddr>,
    /// Quick resends since the last advert that left ([`Input::AdvertNotSent`]).
    send_retries: u8,
}

impl VirtualRouter {
    /// A router in Initialize. Fails if the config is invalid ([`Config::validate`]).
    pub fn new(cfg: Config) -> Result<VirtualRouter, ConfigError> {
        cfg.validate()?;
        Ok(VirtualRouter {
            priority: cfg.priority,
            master_adver_int_cs: cfg.advert_interval_cs,
            cfg,
            state: State::Initialize,
            deadline: None,
            started: false,
            link_down: false,
            track_fault: false,
            claim_fault: false,
            sync_fault: false,
            preempt_until: None,
            down_reason: Reason::MasterNoResponse,
            last_reassert: None,
            master_addr: None,
            send_retries: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A live reconfiguration (a reload): the new settings (interval, preempt, preempt delay,
    /// accept mode, lower_prio_no_advert, VIPs) take effect without a state change; the state,
    /// the timers and the effective priority are kept (a new configured priority comes in as
    /// [`Input::PriorityChanged`]). A Master advertises the new interval from its next advert.
    /// The VRID, version, primary address and ownership must not change (the caller checks).
    pub fn reconfigure(&mut self, cfg: Config) -> Result<(), ConfigError> {
        cfg.validate()?;
        if self.state == State::Master || self.cfg.version == Version::V2 {
            self.master_adver_int_cs = cfg.advert_interval_cs;
        }
        self.cfg = cfg;
        Ok(())
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// `Master_Adver_Interval` in centiseconds (learned from the master in v3 Backup).
    pub fn master_adver_interval_cs(&self) -> u16 {
        self.master_adver_int_cs
    }

    /// Current `Skew_Time` (from the effective priority and `Master_Adver_Interval`).
    pub fn skew_time(&self) -> Duration {
        skew_time(self.cfg.version, self.priority, self.master_adver_int_cs)
    }

    /// Current `Master_Down_Interval`.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(self.cfg.version, self.priority, self.master_adver_int_cs)
    }

    /// When [`Input::Timer`] must next be delivered (the same value as the last
    /// `ArmTimer`/`CancelTimer`).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the host should accept packets addressed to the VIPs right now.
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state == State::Master && (self.cfg.is_owner() || self.cfg.accept_mode)
    }

    /// Whether Fault conditions (link down, tracked fault, failed claim or a sync group
    /// member's fault) currently hold.
    pub fn is_faulted(&self) -> bool {
        self.own_fault() || self.sync_fault
    }

    /// Whether a Fault condition of this router's own holds (link down, tracked fault or failed
    /// claim): what a sync group passes on to its other members.
    pub fn own_fault(&self) -> bool {
        self.link_down || self.track_fault || self.claim_fault
    }

    /// Source address of the master we last accepted an advert from (Backup), if any.
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_addr
    }

    /// Until when a lower-priority master is tolerated (keepalived `preempt_delay`).
    pub fn preempt_delay_until(&self) -> Option<Instant> {
        self.preempt_until
    }

    /// Feeds one input at time `now` and returns what to do, in order. A timer change, if any,
    /// is the last action.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let before = self.deadline;
        let mut out = Vec::new();
        match input {
            Input::Startup => self.on_startup(now, &mut out),
            Input::Resume => self.on_resume(now, &mut out),
            Input::Shutdown => self.on_shutdown(&mut out),
            Input::Advert(adv) => self.on_advert(&adv, now, &mut out),
            Input::Timer => self.on_timer(now, &mut out),
            Input::PriorityChanged { priority } => self.on_priority(priority, now, &mut out),
            Input::LinkDown => {
                self.set_fault(Reason::Fault, now, &mut out, |vr| vr.link_down = true)
            }
            Input::LinkUp => {
                self.set_fault(Reason::Fault, now, &mut out, |vr| vr.link_down = false)
            }
            Input::TrackFault { on } => {
                self.set_fault(Reason::Fault, now, &mut out, |vr| vr.track_fault = on)
            }
            Input::ClaimFault { on } => {
                self.set_fault(Reason::ClaimFailed, now, &mut out, |vr| vr.claim_fault = on)
            }
            Input::SyncFault { on } => {
                self.set_fault(Reason::SyncGroup, now, &mut out, |vr| vr.sync_fault = on)
            }
            Input::Resign => self.on_resign(now, &mut out),
            Input::AdvertSent => self.on_sent(now),
            Input::AdvertNotSent => self.on_not_sent(now),
        }
        if self.deadline != before {
            out.push(match self.deadline {
                Some(at) => Action::ArmTimer { at },
                None => Action::CancelTimer,
            });
        }
        out
    }

    fn adver_interval(&self) -> Duration {
        centis(self.cfg.advert_interval_cs)
    }

    fn transition(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::StateChanged { from, to, reason });
    }

    fn send_advert(&self, priority: u8, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert {
            priority,
            interval_cs: self.cfg.advert_interval_cs,
        });
    }

    /// Send an advert, take over, arm Adver_Timer, become Master.
    /// (§6.4.1 (115)-(145) and §6.4.2 "Master_Down_Timer fires".)
    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.send_advert(self.priority, out);
        out.push(Action::BecomeMaster {
            accept: self.cfg.is_owner() || self.cfg.accept_mode,
        });
        self.deadline = Some(now + self.adver_interval());
        self.master_addr = None;
        self.transition(State::Master, reason, out);
    }

    /// The Startup rules of §6.4.1, also used when a Fault clears.
    fn start(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        if self.is_faulted() {
            self.deadline = None;
            self.transition(State::Fault, Reason::Fault, out);
        } else if self.priority == 255 {
            let reason = if reason == Reason::Startup {
                Reason::AddressOwner
            } else {
                reason
            };
            self.become_master(now, reason, out);
        } else {
            self.master_adver_int_cs = self.cfg.advert_interval_cs;
            self.deadline = Some(now + self.master_down_interval());
            self.down_reason = Reason::MasterNoResponse;
            self.master_addr = None;
            self.preempt_until = if self.cfg.preempt_delay.is_zero() {
                None
            } else {
                Some(now + self.cfg.preempt_delay)
            };
            out.push(Action::Release);
            self.transition(State::Backup, reason, out);
        }
    }

    fn on_startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.started = true;
        self.start(now, Reason::Startup, out);
    }

    fn on_resume(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.started = true;
        if self.is_faulted() {
            // The VIPs the previous run left must go: a faulted router is no Master.
            self.start(now, Reason::Startup, out);
            out.push(Action::Release);
        } else {
            self.become_master(now, Reason::Resumed, out);
        }
    }

    fn on_shutdown(&mut self, out: &mut Vec<Action>) {
        self.started = false;
        match self.state {
            State::Initialize => {}
            State::Master => {
                // §6.4.3: cancel Adver_Timer, send priority 0, go to Initialize.
                self.deadline = None;
                self.send_advert(0, out);
                out.push(Action::Release);
                self.transition(State::Initialize, Reason::Shutdown, out);
            }
            State::Backup | State::Fault => {
                // §6.4.2: cancel Master_Down_Timer, go to Initialize.
                self.deadline = None;
                self.transition(State::Initialize, Reason::Shutdown, out);
            }
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(at) = self.deadline else { return };
        if now < at {
            return;
        }
        match self.state {
            State::Master => {
                // §6.4.3: Adver_Timer fires: send, reset.
                self.send_advert(self.priority, out);
                self.deadline = Some(now + self.adver_interval());
            }
            State::Backup => {
                // §6.4.2: Master_Down_Timer fires.
                let reason = self.down_reason;
                self.become_master(now, reason, out);
            }
            State::Initialize | State::Fault => self.deadline = None,
        }
    }

    fn on_advert(&mut self, adv: &RxAdvert, now: Instant, out: &mut Vec<Action>) {
        // Defensive: the wire layer should already have dropped these.
        if adv.vrid != self.cfg.vrid
            || adv.version != self.cfg.version
            || Family::of(adv.src) != self.cfg.family()
        {
            return;
        }
        match self.state {
            State::Backup => self.backup_rx(adv, now),
            State::Master => self.master_rx(adv, now, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// An advert we sent left at `now`: Adver_Timer runs from there (never earlier).
    fn on_sent(&mut self, now: Instant) {
        self.send_retries = 0;
        if self.state != State::Master {
            return;
        }
        let next = now + self.adver_interval();
        if self.deadline.is_some_and(|d| d < next) {
            self.deadline = Some(next);
        }
    }

    /// An advert we sent could not leave at `now` (no room in the kernel): a Master sends again
    /// soon, a bounded number of times in a row ([`Input::AdvertNotSent`]).
    fn on_not_sent(&mut self, now: Instant) {
        if self.state != State::Master || self.send_retries >= SEND_RETRIES {
            return;
        }
        self.send_retries += 1;
        let retry = now + SEND_RETRY_DELAY.min(self.adver_interval() / 4);
        if self.deadline.is_none_or(|d| retry < d) {
            self.deadline = Some(retry);
        }
    }

    /// RFC 9568 §6.4.2 / RFC 3768 §6.4.2 "If an ADVERTISEMENT is received". Timers run from
    /// the advert's receive time: the decision does not depend on when we got round to it.
    fn backup_rx(&mut self, adv: &RxAdvert, now: Instant) {
        let now = adv.rx_time.unwrap_or(now);
        if adv.priority == 0 {
            self.deadline = Some(now + self.skew_time());
            self.down_reason = Reason::MasterPriorityZero;
            return;
        }
        let not_lower = adv.priority >= self.priority;
        let delay = self.cfg.preempt_delay;
        let delay_holds = !delay.is_zero() && self.preempt_until.is_none_or(|until| now < until);
        if !self.cfg.preempt || not_lower || delay_holds {
            if self.cfg.version == Version::V3 {
                self.master_adver_int_cs = adv.max_adver_int_cs;
            }
            self.deadline = Some(now + self.master_down_interval());
            self.down_reason = Reason::MasterNoResponse;
            self.master_addr = Some(adv.src);
            if !delay.is_zero() {
                if not_lower {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + delay);
                }
            }
        } else {
            // Discard: let Master_Down_Timer run out and preempt.
            self.down_reason = Reason::Preempted;
        }
    }

    /// RFC 9568 §6.4.3 / RFC 3768 §6.4.3 "If an ADVERTISEMENT is received".
    fn master_rx(&mut self, adv: &RxAdvert, now: Instant, out: &mut Vec<Action>) {
        if adv.priority == 0 {
            // Send an advert, reset Adver_Timer (bounded like every answer).
            self.reassert(now, out);
            return;
        }
        let higher = adv.priority > self.priority
            || (adv.priority == self.priority && addr_greater(&adv.src, &self.cfg.primary_addr));
        if higher {
            if self.cfg.version == Version::V3 {
                self.master_adver_int_cs = adv.max_adver_int_cs;
            } else {
                self.master_adver_int_cs = self.cfg.advert_interval_cs;
            }
            // Now a Backup: its Master_Down_Timer runs from the advert's receive time.
            let rx = adv.rx_time.unwrap_or(now);
            self.deadline = Some(rx + self.master_down_interval());
            self.down_reason = Reason::MasterNoResponse;
            self.master_addr = Some(adv.src);
            out.push(Action::Release);
            self.transition(State::Backup, Reason::HigherPriorityAdvert, out);
        } else if adv.src == self.cfg.primary_addr {
            // Our own address at our own priority: a looped-back copy or a duplicate address.
            // Neither side can win the tie-break; do not answer (it would only echo).
        } else if self.cfg.version == Version::V3 && !self.cfg.lower_prio_no_advert {
            // RFC 9568 §6.4.3: discard, and send an advert immediately to assert Master to the
            // sender and refresh learning bridges (keepalived's lower_prio_no_advert: discard
            // only).
            self.reassert(now, out);
        }
        // RFC 3768 §6.4.3: v2 only discards.
    }

    /// Answers another router's advert with one of ours, at most once per
    /// Advertisement_Interval: a flood of lower-priority (or priority-0) adverts must not
    /// become a flood of ours. The answer is a send, so Adver_Timer restarts from it (§6.4.3
    /// resets it after each send): a Master never sends more than two adverts per interval.
    fn reassert(&mut self, now: Instant, out: &mut Vec<Action>) {
        let interval = self.adver_interval();
        if self.last_reassert.is_some_and(|t| now < t + interval) {
            return;
        }
        self.last_reassert = Some(now);
        self.send_advert(self.priority, out);
        self.deadline = Some(now + interval);
    }

    /// A Master gives up while staying in the election (sync group): priority 0 so that a
    /// backup takes over after its Skew_Time, release, Backup.
    fn on_resign(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Master {
            return;
        }
        self.send_advert(0, out);
        out.push(Action::Release);
        self.master_adver_int_cs = self.cfg.advert_interval_cs;
        self.deadline = Some(now + self.master_down_interval());
        self.down_reason = Reason::MasterNoResponse;
        self.master_addr = None;
        self.transition(State::Backup, Reason::SyncGroup, out);
    }

    fn on_priority(&mut self, priority: u8, now: Instant, out: &mut Vec<Action>) {
        // 255 is reserved for the configured address owner (keepalived caps tracked
        // priorities of other routers at 254 the same way).
        let cap = if self.cfg.is_owner() { 255 } else { 254 };
        let priority = priority.min(cap);
        if priority == 0 || priority == self.priority {
            return;
        }
        self.priority = priority;
        if self.state == State::Master {
            // Tell the backups now rather than an interval later.
            self.send_advert(priority, out);
            self.deadline = Some(now + self.adver_interval());
        }
    }

    /// Changes a fault condition (`change`): enter Fault for `reason` when the first one comes
    /// on, apply the Startup rules again when the last one clears.
    fn set_fault(
        &mut self,
        reason: Reason,
        now: Instant,
        out: &mut Vec<Action>,
        change: impl FnOnce(&mut Self),
    ) {
        let was = self.is_faulted();
        change(self);
        let is = self.is_faulted();
        if !was && is {
            match self.state {
                State::Master => {
                    // With carrier we can still hand over quickly with priority 0.
                    if !self.link_down {
                        self.send_advert(0, out);
                    }
                    out.push(Action::Release);
                    self.deadline = None;
                    self.transition(State::Fault, reason, out);
                }
                State::Backup => {
                    self.deadline = None;
                    self.transition(State::Fault, reason, out);
                }
                State::Initialize | State::Fault => {}
            }
        } else if was && !is && self.state == State::Fault && self.started {
            self.start(now, Reason::FaultCleared, out);
        }
    }
}

/// Unsigned comparison of addresses in network byte order (RFC 9568 §6.4.3).
fn addr_greater(a: &IpAddr, b: &IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}
