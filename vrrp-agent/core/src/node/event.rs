//! The core's vocabulary with the outside world: [`Event`]s in, [`Command`]s out (among them
//! [`Notification`]s, every state change and every noteworthy decision as data), and the
//! [`Report`]s with which the edge says what carrying out a command did.
//!
//! Plain data only: the core never sees a socket, a ring buffer or the kernel ABI (the edge
//! decodes the XDP program's events into [`Received`]).
use std::{net::IpAddr, time::Duration};

use crate::{
    config::{CheckSpec, TrackTarget, Vip},
    fsm::{Instant, Reason, State},
    wire::{MacAddr, RxError},
    Family, Version,
};

/// An interface of the [`crate::Core`]: the index of its [`crate::IfaceEnv`] in
/// [`crate::Core::new`]'s list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceId(pub usize);

/// A virtual router of the [`crate::Core`]: the index of its `InstanceSpec` in
/// [`crate::Core::new`]'s list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub usize);

/// A tracked target of the [`crate::Core`]: the index in [`crate::Core::trackers`]. One per
/// distinct target across all instances (two instances tracking `check = "web"` share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerId(pub usize);

/// What the edge must watch for a tracker, and how to report it: a check's probe outcomes
/// with [`Event::CheckResult`], an interface's carrier or a process's presence with
/// [`Event::TrackerState`], a file's integer with [`Event::TrackerValue`] (an unreadable file:
/// `TrackerState { up: false }`, counted as the value 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerInfo {
    pub id: TrackerId,
    pub target: TrackTarget,
    /// For [`TrackTarget::Check`]: the check to run.
    pub check: Option<CheckSpec>,
}

/// One received advert as the fast path captured it, decoded by the edge: the kernel's
/// metadata and the VRRP message (not yet validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The kernel's receive time (CLOCK_MONOTONIC, `bpf_ktime_get_ns`).
    pub rx_time: Instant,
    pub src_mac: MacAddr,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// IPv4 TTL / IPv6 hop limit.
    pub hop_limit: u8,
    /// The 802.1Q tag, if the frame had one.
    pub vlan: Option<u16>,
    /// The captured VRRP message.
    pub payload: Vec<u8>,
}

/// Something that happened, handed to [`crate::Core::handle`] with the time it is handled at.
///
/// More inputs arrive as new variants in the next issues (a configuration reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start every instance (RFC 9568 Startup).
    Startup,
    /// [`Event::Startup`] as of `since` (at most `now`): the edge has heard every advert on every
    /// interface since then (a cold start listening while its fast path loads), so a Backup's
    /// Master_Down_Timer runs from `since`. Every advert received since must be handed in right
    /// after it ([`Event::Advert`], oldest first), before any [`Event::Timer`]: one from a
    /// higher-priority master keeps the instance Backup as if the agent had run all along.
    StartupListening { since: Instant },
    /// Hitless restart: the previous run left this instance Master (its VIPs on the interface,
    /// its fast-path router owned), so it starts as Master at once (reason `resumed`: claim —
    /// which finds everything in place —, advert, GARP; no release, no VIP removed). Given
    /// before [`Event::Startup`], which then leaves it alone (Startup only moves instances
    /// still in INIT). A faulted instance (link down, tracked fault) starts as at Startup.
    Resume { instance: InstanceId },
    /// An advert received on `iface` (handled at `now`, received at `rx.rx_time`).
    Advert { iface: IfaceId, rx: Received },
    /// The time from [`crate::Core::poll_timeout`] was reached: everything due fires. Adverts
    /// that arrived before it must be handed in first ([`Event::Advert`]).
    Timer,
    /// The link of `iface` went up or down.
    Link { iface: IfaceId, up: bool },
    /// The advert of a [`Command::SendFrame`] (`advert: true`) or [`Command::SendIp`] left at
    /// `at`: a Master's Adver_Timer restarts from the send.
    AdvertSent { instance: InstanceId, at: Instant },
    /// The advert of a [`Command::SendFrame`] (`advert: true`) or [`Command::SendIp`] could
    /// not leave at `at` because the kernel had no room for it for the moment (`ENOBUFS`,
    /// `EAGAIN`, `ENOMEM`): a Master sends it again shortly (bounded; see
    /// [`crate::fsm::Input::AdvertNotSent`]). Other send errors are not reported.
    AdvertNotSent { instance: InstanceId, at: Instant },
    /// What carrying out a [`Command::Claim`], `Release`, `AddVip` or `RemoveVip` did, reported
    /// before the next command is polled.
    Report {
        instance: InstanceId,
        report: Report,
    },
    /// The kernel added (`present`) or removed `addr` on `iface`.
    AddressChanged {
        iface: IfaceId,
        addr: IpAddr,
        present: bool,
    },
    /// After lost address notifications: the addresses on `iface` now.
    AddressesNow { iface: IfaceId, addrs: Vec<IpAddr> },
    /// Stop every instance (RFC 9568 Shutdown; a departing master hands over, see
    /// [`crate::Core::handing_over`]).
    Shutdown,
    /// End every handover now (the edge's last resort at a stop).
    EndHandovers,
    /// One probe of a check tracker ended (`ok`: it succeeded). The core counts rise and fall:
    /// a check starts down and is up after `rise` successes in a row, down again after `fall`
    /// failures in a row.
    CheckResult { tracker: TrackerId, ok: bool },
    /// An interface tracker's carrier or a process tracker's presence, already debounced (a
    /// file tracker: whether the file could be read).
    TrackerState { tracker: TrackerId, up: bool },
    /// A file tracker's integer (the file was read).
    TrackerValue { tracker: TrackerId, value: i64 },
}

/// What carrying out a command did, reported back with [`Event::Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// [`Command::Claim`] worked (the fast path owns the VMAC), or [`Command::AddVips`] did (the
    /// VIPs are on the interface).
    Claimed,
    /// [`Command::Claim`], [`Command::AddVips`] or [`Command::AddVip`] failed (what failed, for
    /// the log).
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

/// What the edge must do, in order ([`crate::Core::poll_command`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send a whole Ethernet frame on the instance's interface (AF_PACKET): multicast adverts,
    /// gratuitous ARP, unsolicited NA. `advert`: the frame is an advert, whose send time the
    /// edge reports with [`Event::AdvertSent`].
    SendFrame {
        instance: InstanceId,
        frame: Vec<u8>,
        advert: bool,
    },
    /// Send an IP packet (header included) to a unicast peer through the kernel's IP stack,
    /// which resolves the peer's MAC (raw socket, IPPROTO_RAW). Always an advert (its send time
    /// is reported with [`Event::AdvertSent`]).
    SendIp {
        instance: InstanceId,
        dst: IpAddr,
        packet: Vec<u8>,
    },
    /// Become the owner of the instance's VIPs in the fast path (`set_router(owned=true)`, a
    /// map update: the XDP program answers ARP/NS for them with the VMAC from now on). On
    /// becoming Master it is the only step before the first advert; the addresses follow with
    /// [`Command::AddVips`]. Report the outcome.
    Claim { instance: InstanceId, accept: bool },
    /// Put the instance's VIPs on the interface (netlink, which waits for the kernel's rtnl
    /// lock): after a new Master's first advert and GARP burst, so the takeover never waits on
    /// it. Report the outcome ([`Report::Claimed`] / [`Report::ClaimFailed`]).
    AddVips { instance: InstanceId },
    /// Let the VIPs go: the addresses first, then the fast path (`set_router(owned=false)`).
    /// Report the outcome.
    Release { instance: InstanceId },
    /// Put one VIP back on the interface: something else removed it while we hold it.
    AddVip { instance: InstanceId, vip: Vip },
    /// Take one VIP off the interface: something else added it while we do not hold it.
    RemoveVip { instance: InstanceId, vip: Vip },
    /// Tell the world (log, notify scripts, metrics, status). Nothing to report back.
    Notify(Notification),
}

impl Command {
    /// The instance the command is for (`None`: a notification).
    pub fn instance(&self) -> Option<InstanceId> {
        match self {
            Command::SendFrame { instance, .. }
            | Command::SendIp { instance, .. }
            | Command::Claim { instance, .. }
            | Command::AddVips { instance }
            | Command::Release { instance }
            | Command::AddVip { instance, .. }
            | Command::RemoveVip { instance, .. } => Some(*instance),
            Command::Notify(_) => None,
        }
    }

    /// The notification, if this is one.
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            Command::Notify(n) => Some(n),
            _ => None,
        }
    }
}

/// One state change of one instance. Every change leaves the core exactly once, as
/// [`Notification::StateChanged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// Monotonic per [`crate::Core`], starting at 1.
    pub seq: u64,
    pub instance: InstanceId,
    pub name: String,
    pub iface: String,
    pub vrid: u8,
    pub family: Family,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    /// Our effective priority after the change.
    pub priority: u8,
    /// The advert (source, priority) that caused the change, when one did.
    pub master: Option<(IpAddr, u8)>,
}

/// Who had been master before a [`Notification::NewMaster`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousMaster {
    /// Another router, by its address.
    Addr(IpAddr),
    /// This router was master.
    ThisRouter,
    /// No master was known.
    FirstSeen,
}

/// What happened to a failed release ([`Notification::ReleaseFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Retry number `attempt` of `of`, after `wait`.
    Retry {
        attempt: u32,
        of: u32,
        wait: Duration,
    },
    /// No more retries after `retries` of them.
    GaveUp { retries: u32 },
    /// The agent is stopping: no retry.
    AtStop,
}

/// Everything the core has to say, as data. The edge renders them (log lines today; notify
/// scripts, metrics and status hook into the same stream). `name` is the instance's name and
/// `iface` the interface's, so that a notification reads on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// An instance changed state.
    StateChanged(StateChange),
    /// An advert failed validation and was dropped. `instance`: the instance whose VRID and
    /// family it carried (`None`: no instance of `iface` matches). `count`: how many such
    /// drops (this `error`) so far for that instance or interface; 1 is the first.
    AdvertDropped {
        iface: String,
        instance: Option<(InstanceId, String)>,
        src_ip: IpAddr,
        src_mac: MacAddr,
        error: RxError,
        count: u64,
    },
    /// An accepted advert (only when the core is told to report adverts).
    AdvertReceived {
        instance: InstanceId,
        name: String,
        version: Version,
        vrid: u8,
        priority: u8,
        interval_cs: u16,
        src: IpAddr,
        src_mac: MacAddr,
        addr_list_differs: bool,
    },
    /// An accepted v3 advert lists other addresses than ours (RFC 9568 §7.1; rate-limited
    /// per peer, `left_out` lines since the last one).
    AddrListDiffers {
        instance: InstanceId,
        name: String,
        src: IpAddr,
        priority: u8,
        theirs: Vec<IpAddr>,
        ours: Vec<IpAddr>,
        left_out: u64,
    },
    /// Another router became master (rate-limited per peer, `left_out` lines since the last).
    NewMaster {
        instance: InstanceId,
        name: String,
        master: IpAddr,
        priority: u8,
        previous: PreviousMaster,
        left_out: u64,
    },
    /// A departing master's handover ended: `by` advertised, the VIPs are released.
    HandoverTakenOver {
        instance: InstanceId,
        name: String,
        by: IpAddr,
    },
    /// A departing master's handover ended without a new master within `after`.
    HandoverTimedOut {
        instance: InstanceId,
        name: String,
        after: Duration,
    },
    /// Putting a VIP back during a handover failed; the handover ends.
    HandoverClaimFailed {
        instance: InstanceId,
        name: String,
        what: String,
    },
    /// Taking the VIPs failed: FAULT, retried after `retry_in`.
    ClaimFailed {
        instance: InstanceId,
        name: String,
        iface: String,
        what: String,
        retry_in: Duration,
    },
    /// The claim retry is due (the Startup rules apply again).
    RetryingClaim { instance: InstanceId, name: String },
    /// Releasing the VIPs failed; `vips` are what is left to remove by hand.
    ReleaseFailed {
        instance: InstanceId,
        name: String,
        iface: String,
        vips: Vec<Vip>,
        what: String,
        outcome: ReleaseOutcome,
    },
    /// A VIP removed behind our back was put back; `count` so far.
    VipReadded {
        instance: InstanceId,
        name: String,
        iface: String,
        vip: Vip,
        count: u64,
    },
    /// A VIP added behind our back was removed (we are `state`); `count` so far.
    VipRemoved {
        instance: InstanceId,
        name: String,
        iface: String,
        vip: Vip,
        state: State,
        count: u64,
    },
    /// Putting a VIP back found it there already: the notification was of our own change.
    VipWasPresent {
        instance: InstanceId,
        name: String,
        iface: String,
        vip: Vip,
    },
    /// Removing a VIP found it gone already: the notification was of our own change.
    VipWasAbsent {
        instance: InstanceId,
        name: String,
        iface: String,
        vip: Vip,
    },
    /// An advert could not be encoded (a configuration the codec refuses).
    AdvertBuildFailed {
        instance: InstanceId,
        name: String,
        error: String,
    },
    /// A tracker went up or down (a check after its rise/fall count).
    TrackerChanged {
        tracker: TrackerId,
        target: TrackTarget,
        up: bool,
    },
    /// An instance's effective priority changed (tracked weights).
    PriorityChanged {
        instance: InstanceId,
        name: String,
        from: u8,
        to: u8,
    },
    /// A configuration reload was applied ([`crate::Core::reload`]): the instances by name.
    /// `unchanged` ones were not touched at all.
    Reloaded {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
        unchanged: Vec<String>,
    },
    /// A reload added (`added`) or removed a VIP of a master on the interface.
    ReloadVip {
        instance: InstanceId,
        name: String,
        iface: String,
        vip: Vip,
        added: bool,
    },
    /// A sync group's state changed: all its members moved to `to` (FAULT: one member is in
    /// FAULT and the others follow). `seq` shares the counter of [`StateChange::seq`].
    GroupStateChanged {
        seq: u64,
        group: String,
        from: State,
        to: State,
    },
}
