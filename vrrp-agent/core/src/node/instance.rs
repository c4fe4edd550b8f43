//! One virtual router with its I/O-side state, and what the core needs to know about an
//! interface to place instances on it.
use std::{net::IpAddr, time::Duration};

use super::{
    claims::{ClaimRetry, ReleaseRetry},
    event::IfaceId,
    garp::GarpRun,
    snapshot::Transition,
    stats::{InstanceCounters, LogLimit, Peers, RxStats, VipStats},
};
use crate::{
    config::InstanceSpec,
    fsm::{self, Instant, State, VirtualRouter},
    wire::MacAddr,
};

/// What the core needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceEnv {
    pub name: String,
    pub mac: MacAddr,
    /// Addresses configured on the interface (VIPs included or not: the primary address is
    /// chosen among the non-VIP ones).
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

/// One virtual router with its I/O-side settings.
#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub spec: InstanceSpec,
    pub iface: IfaceId,
    pub vr: VirtualRouter,
    /// Fail-safe bound written to the fast path with ownership.
    pub stale_after: Duration,
    pub rx: RxStats,
    pub garp: Option<GarpRun>,
    /// Graceful handover in progress: the priority-0 advert went out, the VIPs are still ours
    /// until another router's advert shows it took over, or until this deadline.
    pub handover_until: Option<Instant>,
    pub vip_stats: VipStats,
    pub claim_retry: ClaimRetry,
    pub release_retry: ReleaseRetry,
    /// Rate limits of the line for an advert whose address list differs from ours, and of the
    /// line for a new master.
    pub log_addr_list: LogLimit,
    pub log_new_master: LogLimit,
    /// The priority of the last advert from the master (`vr.master_addr()`).
    pub master_priority: Option<u8>,
    pub last_transition: Option<Transition>,
    pub counters: InstanceCounters,
    /// The other routers heard on this VRID.
    pub peers: Peers,
    /// The trackers of this instance with their weights.
    pub tracks: Vec<(super::TrackerId, i32)>,
    /// The tracked fault last given to the state machine.
    pub track_fault: bool,
    /// The sync group (an index in the core's groups).
    pub group: Option<usize>,
    /// The sync fault last given to the state machine.
    pub sync_fault: bool,
    /// A BACKUP whose timer ran out, waiting for its sync group to become MASTER together.
    pub group_wait: bool,
    /// Left MASTER for BACKUP by itself since the sync groups last looked.
    pub left_master: bool,
    /// Removed by a reload: no longer on its interface, in the snapshot or the trackers; its
    /// id is never reused ([`super::Core::reload`]).
    pub retired: bool,
    /// VIPs a reload adds or removes on the interface ([`super::Command::AddVip`] /
    /// `RemoveVip`) whose reports are not the VIP guard's.
    pub reload_vips: Vec<IpAddr>,
}

impl Instance {
    pub fn new(
        spec: InstanceSpec,
        iface: IfaceId,
        vr: VirtualRouter,
        stale_after: Duration,
    ) -> Self {
        Instance {
            spec,
            iface,
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
            master_priority: None,
            last_transition: None,
            counters: InstanceCounters::default(),
            peers: Peers::default(),
            tracks: Vec::new(),
            track_fault: false,
            group: None,
            sync_fault: false,
            group_wait: false,
            left_master: false,
            retired: false,
            reload_vips: Vec::new(),
        }
    }

    /// Whether the VIPs are ours: Master, or a departing master in its handover.
    pub fn holds_vips(&self) -> bool {
        self.vr.state() == State::Master || self.handover_until.is_some()
    }

    /// Every time this instance needs the timer.
    pub fn wakeups(&self) -> impl Iterator<Item = Instant> {
        let g = self.garp.as_ref().and_then(GarpRun::next);
        [
            // A member waiting for its sync group has no timer of its own.
            self.vr.next_deadline().filter(|_| !self.group_wait),
            g,
            self.handover_until,
            self.claim_retry.at,
            self.release_retry.at,
        ]
        .into_iter()
        .flatten()
    }
}
