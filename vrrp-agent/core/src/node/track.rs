//! Tracking: the trackers (one per distinct target across all instances), their rise/fall
//! counting, and each instance's effective priority and tracked fault.
//!
//! Every tracker starts **down** (a file: unread, value 0): a check is up after `rise`
//! successes in a row (so a weight-0 check keeps its instance in FAULT until then, and a
//! negative weight is in effect until then), an interface or process tracker once the edge
//! reports it up. A check goes down after `fall` failures in a row. An instance's effective
//! priority is its base priority plus, clamped to 1..=254 (the owner, 255, is never adjusted):
//! - the weight of each negative-weight tracker that is down,
//! - the weight of each positive-weight tracker that is up,
//! - a file tracker's value × weight.
//!
//! A weight-0 tracker that is down puts the instance in FAULT (and a file whose value is
//! non-zero with weight 0, or whose value × weight is -254 or less).
use super::{
    event::{TrackerId, TrackerInfo},
    Command, Core, InstanceId, Notification,
};
use crate::{
    config::{effective_priority, CheckSpec, InstanceSpec, TrackTarget},
    fsm::{Input, Instant},
};

/// One tracker's state.
#[derive(Debug, Clone)]
pub(super) struct Tracker {
    pub info: TrackerInfo,
    pub up: bool,
    /// A file's integer (0 until read or while unreadable).
    pub value: i64,
    /// Consecutive probe outcomes against the current state (successes while down, failures
    /// while up).
    pub streak: u32,
}

impl Tracker {
    /// One probe's outcome; true when the tracker flipped.
    fn probe(&mut self, ok: bool) -> bool {
        let Some(check) = &self.info.check else {
            return false;
        };
        if ok == self.up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let need = if self.up { check.fall } else { check.rise };
        if self.streak >= need.max(1) {
            self.up = ok;
            self.streak = 0;
            true
        } else {
            false
        }
    }

    /// A file's value as it counts: 0 while unreadable.
    fn file_value(&self) -> i64 {
        if self.up {
            self.value
        } else {
            0
        }
    }
}

/// Each instance's (tracker, weight) list.
pub(super) type Tracks = Vec<Vec<(TrackerId, i32)>>;

/// The trackers of `specs` (one per distinct target, in first-use order) and each instance's
/// (tracker, weight) list.
pub(super) fn build(
    specs: &[InstanceSpec],
    checks: &[CheckSpec],
) -> Result<(Vec<Tracker>, Tracks), String> {
    let mut trackers: Vec<Tracker> = Vec::new();
    let mut per_instance = Vec::new();
    for spec in specs {
        let mut mine = Vec::new();
        for t in &spec.track {
            let id = match trackers.iter().position(|k| k.info.target == t.target) {
                Some(k) => TrackerId(k),
                None => {
                    let check = match &t.target {
                        TrackTarget::Check(name) => Some(
                            checks
                                .iter()
                                .find(|c| &c.name == name)
                                .cloned()
                                .ok_or_else(|| {
                                    format!("instance {}: no check is named {name:?}", spec.name)
                                })?,
                        ),
                        _ => None,
                    };
                    let id = TrackerId(trackers.len());
                    trackers.push(Tracker {
                        info: TrackerInfo {
                            id,
                            target: t.target.clone(),
                            check,
                        },
                        up: false,
                        value: 0,
                        streak: 0,
                    });
                    id
                }
            };
            mine.push((id, t.weight));
        }
        per_instance.push(mine);
    }
    Ok((trackers, per_instance))
}

/// The effective priority and the tracked fault of an instance with `base` priority and
/// `tracks`.
pub(super) fn evaluate(base: u8, tracks: &[(TrackerId, i32)], trackers: &[Tracker]) -> (u8, bool) {
    let mut adjust = 0i64;
    let mut fault = false;
    for (id, w) in tracks {
        let t = &trackers[id.0];
        let w64 = i64::from(*w);
        if matches!(t.info.target, TrackTarget::File(_)) {
            let v = t.file_value();
            let product = v.saturating_mul(w64);
            if (*w == 0 && v != 0) || product <= -254 {
                fault = true;
            } else {
                adjust = adjust.saturating_add(product);
            }
            continue;
        }
        match (*w, t.up) {
            (0, false) => fault = true,
            (w, false) if w < 0 => adjust += w64,
            (w, true) if w > 0 => adjust += w64,
            _ => {}
        }
    }
    (effective_priority(base, adjust), fault)
}

impl Core {
    /// What the edge must watch: one entry per distinct tracked target, by [`TrackerId`].
    pub fn trackers(&self) -> &[TrackerInfo] {
        &self.tracker_infos
    }

    /// A tracker event: update the tracker, then every instance that tracks it.
    pub(super) fn on_tracker(
        &mut self,
        id: TrackerId,
        change: TrackerChange,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        let Some(t) = self.trackers.get_mut(id.0) else {
            return;
        };
        let flipped = match change {
            TrackerChange::Probe(ok) => t.probe(ok),
            TrackerChange::State(up) => {
                // An interface/process/file state; a check takes probes only.
                if t.info.check.is_some() || t.up == up {
                    false
                } else {
                    t.up = up;
                    true
                }
            }
            TrackerChange::Value(v) => {
                if !matches!(t.info.target, TrackTarget::File(_)) {
                    return;
                }
                t.value = v;
                let flipped = !t.up;
                t.up = true;
                flipped
            }
        };
        if flipped {
            out.push(Command::Notify(Notification::TrackerChanged {
                tracker: id,
                target: t.info.target.clone(),
                up: t.up,
            }));
        }
        for i in 0..self.instances.len() {
            if self.instances[i].tracks.iter().any(|(k, _)| *k == id) {
                self.retrack(i, now, out);
            }
        }
    }

    /// Applies instance `i`'s trackers: its effective priority and its tracked fault. A fault
    /// coming on is applied before the priority (the master gives up with priority 0, not with
    /// a lowered priority first); a priority change before the fault clears (the Startup rules
    /// run with the new priority).
    pub(super) fn retrack(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &self.instances[i];
        let (priority, fault) = evaluate(inst.spec.priority, &inst.tracks, &self.trackers);
        if fault && !inst.track_fault {
            self.instances[i].track_fault = true;
            self.feed(i, Input::TrackFault { on: true }, now, None, out);
        }
        let inst = &self.instances[i];
        let from = inst.vr.priority();
        if priority != from && inst.spec.priority != 255 {
            let name = inst.spec.name.clone();
            let mut cmds = Vec::new();
            self.feed(i, Input::PriorityChanged { priority }, now, None, &mut cmds);
            let to = self.instances[i].vr.priority();
            if to != from {
                // Decided before it is carried out (a master's advert with the new priority).
                out.push(Command::Notify(Notification::PriorityChanged {
                    instance: InstanceId(i),
                    name,
                    from,
                    to,
                }));
            }
            out.extend(cmds);
        }
        if !fault && self.instances[i].track_fault {
            self.instances[i].track_fault = false;
            self.feed(i, Input::TrackFault { on: false }, now, None, out);
        }
    }
}

/// What a tracker event says.
#[derive(Debug, Clone, Copy)]
pub(super) enum TrackerChange {
    Probe(bool),
    State(bool),
    Value(i64),
}
