//! Sync groups (keepalived's vrrp_sync_group): the member instances move together.
//!
//! - **FAULT**: while a member has a fault of its own (link down, tracked fault, failed
//!   claim), every other member is in FAULT too ([`Input::SyncFault`], [`Reason::SyncGroup`]);
//!   when the last such fault clears, they all apply the Startup rules again.
//! - **Leaving MASTER**: when a member goes from MASTER to BACKUP (a higher-priority advert,
//!   e.g. a preemption after its priority dropped), every other member that is MASTER gives up
//!   too ([`Input::Resign`]: a priority-0 advert, so that the other router takes over after its
//!   Skew_Time, release, BACKUP).
//! - **Becoming MASTER together**: a BACKUP member whose Master_Down_Timer ran out becomes
//!   MASTER only when every other member would too (it is MASTER, or a BACKUP whose
//!   Master_Down_Timer ran out as well); until then it waits, still BACKUP, without a timer of
//!   its own (an advert that restarts its timer ends the wait). So a group never ends up split
//!   between MASTER and BACKUP by preemption, and does not thrash (keepalived prefers BACKUP
//!   the same way).
//!
//! The group's state is the state its members moved to: FAULT while any member is in FAULT,
//! else the state all members share (a group between two states keeps its last one); each
//! change is one [`Notification::GroupStateChanged`].
use super::{Command, Core, InstanceId, Notification};
use crate::{
    config::SyncGroupSpec,
    fsm::{Input, Instant, Reason, State},
};

/// One sync group.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub spec: SyncGroupSpec,
    pub members: Vec<usize>,
    pub state: State,
}

/// The groups of `specs`, with each instance's group (by instance name).
pub(super) fn build(
    specs: &[SyncGroupSpec],
    names: &[String],
) -> Result<(Vec<Group>, Vec<Option<usize>>), String> {
    let mut of = vec![None; names.len()];
    let mut groups = Vec::new();
    for (g, spec) in specs.iter().enumerate() {
        let mut members = Vec::new();
        for m in &spec.instances {
            let i = names
                .iter()
                .position(|n| n == m)
                .ok_or_else(|| format!("sync group {}: no instance is named {m:?}", spec.name))?;
            if let Some(h) = of[i] {
                let other: &SyncGroupSpec = &specs[h];
                return Err(format!(
                    "sync group {}: instance {m} is already in sync group {}",
                    spec.name, other.name
                ));
            }
            of[i] = Some(g);
            members.push(i);
        }
        groups.push(Group {
            spec: spec.clone(),
            members,
            state: State::Initialize,
        });
    }
    Ok((groups, of))
}

impl Core {
    /// Whether grouped instance `i`, a BACKUP whose timer ran out, may become MASTER now:
    /// every other member is MASTER or would become it.
    fn group_allows_master(&self, i: usize, now: Instant) -> bool {
        let Some(g) = self.instances[i].group else {
            return true;
        };
        self.groups[g]
            .members
            .iter()
            .filter(|m| **m != i)
            .all(|m| self.wants_master(*m, now))
    }

    /// MASTER, or a BACKUP whose Master_Down_Timer ran out.
    fn wants_master(&self, m: usize, now: Instant) -> bool {
        let vr = &self.instances[m].vr;
        match vr.state() {
            State::Master => true,
            State::Backup => vr.next_deadline().is_some_and(|d| d <= now),
            _ => false,
        }
    }

    /// Delivers an expired timer to instance `i`, unless it is a grouped BACKUP that must wait
    /// for the rest of its group (then it waits: [`Core::sync_groups`] fires it later).
    pub(super) fn fire_timer(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &self.instances[i];
        if inst.group.is_some()
            && inst.vr.state() == State::Backup
            && !self.group_allows_master(i, now)
        {
            self.instances[i].group_wait = true;
            return;
        }
        self.instances[i].group_wait = false;
        self.feed(i, Input::Timer, now, None, out);
    }

    /// After every event: pass faults on, make masters follow a member that left MASTER, let
    /// waiting members become MASTER together, and report group state changes.
    pub(super) fn sync_groups(&mut self, now: Instant, out: &mut Vec<Command>) {
        if self.groups.is_empty() {
            return;
        }
        // Bounded: each round either changes a member's state or stops; a group of n members
        // settles in a few rounds.
        for _ in 0..8 {
            let mut changed = false;
            for g in 0..self.groups.len() {
                changed |= self.sync_group(g, now, out);
            }
            if !changed {
                break;
            }
        }
        for g in 0..self.groups.len() {
            let group = &self.groups[g];
            let states: Vec<State> = group
                .members
                .iter()
                .map(|m| self.instances[*m].vr.state())
                .collect();
            let to = if states.contains(&State::Fault) {
                State::Fault
            } else if states.iter().all(|s| *s == states[0]) {
                states[0]
            } else {
                group.state
            };
            if to != group.state {
                self.seq += 1;
                let from = group.state;
                self.groups[g].state = to;
                out.push(Command::Notify(Notification::GroupStateChanged {
                    seq: self.seq,
                    group: self.groups[g].spec.name.clone(),
                    from,
                    to,
                }));
            }
        }
    }

    /// One round for group `g`; true if a member was moved.
    fn sync_group(&mut self, g: usize, now: Instant, out: &mut Vec<Command>) -> bool {
        let members = self.groups[g].members.clone();
        let mut changed = false;
        // A member that left MASTER for BACKUP by itself: the other masters give up.
        let left: Vec<usize> = members
            .iter()
            .copied()
            .filter(|m| std::mem::take(&mut self.instances[*m].left_master))
            .collect();
        if !left.is_empty() {
            for m in &members {
                if !left.contains(m) && self.instances[*m].vr.state() == State::Master {
                    self.feed(*m, Input::Resign, now, None, out);
                    changed = true;
                }
            }
        }
        // Faults.
        for m in &members {
            let others_fault = members
                .iter()
                .any(|o| o != m && self.instances[*o].vr.own_fault());
            if others_fault != self.instances[*m].sync_fault {
                self.instances[*m].sync_fault = others_fault;
                self.feed(*m, Input::SyncFault { on: others_fault }, now, None, out);
                changed = true;
            }
        }
        // Waiting members: the wait ends when their timer was restarted, or when the whole
        // group wants MASTER.
        for m in &members {
            let inst = &self.instances[*m];
            if !inst.group_wait {
                continue;
            }
            if inst.vr.state() != State::Backup || inst.vr.next_deadline().is_none_or(|d| d > now) {
                self.instances[*m].group_wait = false;
            } else if self.group_allows_master(*m, now) {
                self.fire_timer(*m, now, out);
                changed = true;
            }
        }
        changed
    }

    /// Notes a state change of instance `i` that its group must follow.
    pub(super) fn note_group_change(&mut self, i: usize, from: State, to: State, reason: Reason) {
        if self.instances[i].group.is_some()
            && from == State::Master
            && to == State::Backup
            && reason != Reason::SyncGroup
        {
            self.instances[i].left_master = true;
        }
    }

    /// The sync groups' states, for the snapshot.
    pub(super) fn group_members(&self, g: usize) -> Vec<InstanceId> {
        self.groups[g]
            .members
            .iter()
            .map(|m| InstanceId(*m))
            .collect()
    }
}
