//! [`Snapshot`]: everything a status page needs, as plain data.
use std::{net::IpAddr, time::Duration};

use super::{Core, IfaceId, InstanceCounters, InstanceId, Peer, RxStats, TrackerId, VipStats};
use crate::{
    config::{TrackTarget, Vip},
    fsm::{Instant, Reason, State},
    Family, Version,
};

/// The last state change of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Its [`super::StateChange::seq`].
    pub seq: u64,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    /// When the core handled it.
    pub at: Instant,
}

/// One virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshot {
    pub id: InstanceId,
    pub name: String,
    pub iface: IfaceId,
    pub iface_name: String,
    pub vrid: u8,
    pub family: Family,
    pub version: Version,
    pub state: State,
    /// The configured priority.
    pub priority: u8,
    /// The priority in effect (what we advertise as Master).
    pub effective_priority: u8,
    /// Our Advertisement_Interval (centiseconds).
    pub advert_interval_cs: u16,
    /// Master_Adver_Interval (centiseconds): learned from the master in v3 Backup.
    pub master_adver_interval_cs: u16,
    /// The other router we take for master (address, priority of its last advert); `None` when
    /// none is known (and when we are Master).
    pub master: Option<(IpAddr, u8)>,
    pub vips: Vec<Vip>,
    /// Whether the VIPs are ours: Master, or a departing master in its handover.
    pub vips_held: bool,
    /// The advert source.
    pub primary: IpAddr,
    pub last_transition: Option<Transition>,
    /// The state machine's next deadline (Adver_Timer in Master, Master_Down_Timer in Backup).
    pub next_deadline: Option<Instant>,
    /// Master_Down_Interval and Skew_Time now (RFC 9568 §6.1; from Master_Adver_Interval).
    pub master_down_interval: Duration,
    pub skew_time: Duration,
    /// The fast path's fail-safe bound.
    pub failsafe_bound: Duration,
    pub rx: RxStats,
    pub vip_stats: VipStats,
    /// Transitions, adverts and GARP/NA sent.
    pub counters: InstanceCounters,
    /// The other routers heard on this VRID (at most [`super::MAX_PEERS`]), by address.
    pub peers: Vec<Peer>,
    /// When the pending retry of a failed claim is due.
    pub claim_retry_at: Option<Instant>,
    /// When the pending retry of a failed release is due.
    pub release_retry_at: Option<Instant>,
    /// When a departing master's handover ends at the latest.
    pub handover_until: Option<Instant>,
    /// What this instance tracks, in configuration order.
    pub trackers: Vec<TrackerSnapshot>,
    /// Whether a weight-0 tracker (or a file) holds this instance in FAULT.
    pub track_fault: bool,
    /// The sync group this instance is in.
    pub sync_group: Option<String>,
    /// A BACKUP whose Master_Down_Timer ran out, waiting for the rest of its sync group.
    pub group_wait: bool,
}

/// One tracker of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerSnapshot {
    pub id: TrackerId,
    pub target: TrackTarget,
    /// This instance's weight for it.
    pub weight: i32,
    /// A check: after its rise/fall count; an interface/process: as reported; a file: read.
    pub up: bool,
    /// A file's integer (0 for the others, and for a file not read).
    pub value: i64,
}

/// One sync group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub name: String,
    /// The state its members moved to (FAULT while one is in FAULT).
    pub state: State,
    pub members: Vec<InstanceId>,
}

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSnapshot {
    pub id: IfaceId,
    pub name: String,
    pub link_up: bool,
    /// Adverts that matched no instance of the interface.
    pub unmatched: RxStats,
    pub instances: Vec<InstanceId>,
}

/// The whole core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub instances: Vec<InstanceSnapshot>,
    pub ifaces: Vec<IfaceSnapshot>,
    pub groups: Vec<GroupSnapshot>,
    /// The sequence number of the last state change, of an instance or a group (0: none yet).
    pub last_seq: u64,
}

impl Core {
    /// Everything a status page needs.
    pub fn snapshot(&self) -> Snapshot {
        let instances = self
            .instances
            .iter()
            .enumerate()
            .filter(|(_, inst)| !inst.retired)
            .map(|(i, inst)| {
                let master = inst
                    .vr
                    .master_addr()
                    .zip(inst.master_priority)
                    .filter(|_| inst.vr.state() != State::Master);
                InstanceSnapshot {
                    id: InstanceId(i),
                    name: inst.spec.name.clone(),
                    iface: inst.iface,
                    iface_name: self.ifaces[inst.iface.0].name.clone(),
                    vrid: inst.spec.vrid,
                    family: inst.spec.family(),
                    version: inst.spec.version,
                    state: inst.vr.state(),
                    priority: inst.spec.priority,
                    effective_priority: inst.vr.priority(),
                    advert_interval_cs: inst.spec.advert_int_cs,
                    master_adver_interval_cs: inst.vr.master_adver_interval_cs(),
                    master,
                    vips: inst.spec.vips.clone(),
                    vips_held: inst.holds_vips(),
                    primary: inst.vr.config().primary_addr,
                    last_transition: inst.last_transition,
                    next_deadline: inst.vr.next_deadline(),
                    master_down_interval: inst.vr.master_down_interval(),
                    skew_time: inst.vr.skew_time(),
                    failsafe_bound: inst.stale_after,
                    rx: inst.rx.clone(),
                    vip_stats: inst.vip_stats.clone(),
                    counters: inst.counters.clone(),
                    peers: inst.peers.list(),
                    claim_retry_at: inst.claim_retry.at,
                    release_retry_at: inst.release_retry.at,
                    handover_until: inst.handover_until,
                    trackers: inst
                        .tracks
                        .iter()
                        .map(|(id, weight)| {
                            let t = &self.trackers[id.0];
                            TrackerSnapshot {
                                id: *id,
                                target: t.info.target.clone(),
                                weight: *weight,
                                up: t.up,
                                value: t.value,
                            }
                        })
                        .collect(),
                    track_fault: inst.track_fault,
                    sync_group: inst.group.map(|g| self.groups[g].spec.name.clone()),
                    group_wait: inst.group_wait,
                }
            })
            .collect();
        let ifaces = self
            .ifaces
            .iter()
            .enumerate()
            .map(|(f, iface)| IfaceSnapshot {
                id: IfaceId(f),
                name: iface.name.clone(),
                link_up: iface.link_up,
                unmatched: iface.unmatched.clone(),
                instances: iface.members.clone(),
            })
            .collect();
        let groups = (0..self.groups.len())
            .map(|g| GroupSnapshot {
                name: self.groups[g].spec.name.clone(),
                state: self.groups[g].state,
                members: self.group_members(g),
            })
            .collect();
        Snapshot {
            instances,
            ifaces,
            groups,
            last_seq: self.seq,
        }
    }
}
