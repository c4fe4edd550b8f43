//! A configuration reload without a flap ([`Core::reload`]).
//!
//! Instances are matched by (interface, family, VRID):
//! - **unchanged** (the same spec): not touched at all: no command, no notification, timers
//!   and adverts go on as before;
//! - **changed**: the new settings are taken live ([`crate::fsm::VirtualRouter::reconfigure`]):
//!   a new configured priority or new tracking weights through the trackers' evaluation
//!   ([`crate::fsm::Input::PriorityChanged`], tracked fault); a master's VIPs in place: the new
//!   ones added ([`Command::AddVip`]) and announced (GARP/NA), then the dropped ones removed
//!   ([`Command::RemoveVip`]); a master's accept mode by claiming again;
//! - **removed**: RFC 9568 Shutdown (a master sends priority 0 and releases), then the
//!   instance leaves the core (its id is never reused);
//! - **added**: built like at start and started (Startup rules; in FAULT if its link is down).
//!
//! What cannot be taken live is refused before anything changes, with one line naming it: a new
//! interface (the edge would have to attach a fast path), another version, ownership (priority
//! 255) or advert source of an instance, other checks or tracked targets, other sync groups.
use std::net::IpAddr;

use super::{track, Command, Core, IfaceEnv, Instance, InstanceId, Model, Notification};
use crate::{
    config::{InstanceSpec, Vip},
    fsm::{Input, Instant, State, VirtualRouter},
};

/// What a reload did, for the edge: the instances by id. The edge prepares the fast path of
/// `added` instances and the new VIPs of `changed` ones *before* it carries out the queued
/// commands (a claim or a GARP needs them), and clears what `removed` instances and dropped
/// VIPs left in it *after*.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub added: Vec<InstanceId>,
    pub removed: Vec<InstanceId>,
    pub changed: Vec<InstanceId>,
    pub unchanged: Vec<InstanceId>,
    /// VIPs of changed instances that are new (fast-path map: add before).
    pub vips_added: Vec<(InstanceId, Vip)>,
    /// VIPs of changed instances that are gone (fast-path map: remove after).
    pub vips_removed: Vec<(InstanceId, Vip)>,
}

/// One instance of the new model, placed.
struct Placed {
    spec: InstanceSpec,
    f: usize,
    primary: IpAddr,
    /// Receive validation's "ours": the primary and the interface's other non-VIP addresses.
    local: Vec<IpAddr>,
    /// The running instance with the same (interface, family, VRID).
    old: Option<usize>,
}

fn key(s: &InstanceSpec) -> (&str, crate::fsm::Family, u8) {
    (s.interface.as_str(), s.family(), s.vrid)
}

impl Core {
    /// Applies a new model at `now` (see the module documentation). `ifaces`: the interfaces'
    /// addresses now, for the running interfaces (any order; others are ignored). On an error
    /// nothing has changed and the old configuration keeps running. On success the commands
    /// are queued ([`Core::poll_command`]); a [`Notification::Reloaded`] comes last.
    pub fn reload(
        &mut self,
        model: Model,
        ifaces: Vec<IfaceEnv>,
        now: Instant,
    ) -> Result<ReloadPlan, String> {
        if self.stopping {
            return Err("the agent is stopping".into());
        }
        let Model {
            instances: specs,
            checks,
            sync_groups,
        } = model;
        // Trackers: the same targets and checks (their state carries over).
        let (trackers, tracks) = track::build(&specs, &checks)?;
        let old_infos: Vec<_> = self.trackers.iter().map(|t| &t.info).collect();
        let new_infos: Vec<_> = trackers.iter().map(|t| &t.info).collect();
        if old_infos != new_infos {
            return Err(
                "reload cannot change the checks or tracked targets yet; restart the agent to \
                 apply them"
                    .into(),
            );
        }
        let old_groups: Vec<_> = self.groups.iter().map(|g| &g.spec).collect();
        if old_groups.len() != sync_groups.len()
            || old_groups.iter().zip(&sync_groups).any(|(a, b)| *a != b)
        {
            return Err(
                "reload cannot change sync groups yet; restart the agent to apply them".into(),
            );
        }
        // Place every new instance, validating it like at start.
        let mut placed = Vec::new();
        for spec in &specs {
            let f = self
                .ifaces
                .iter()
                .position(|i| i.name == spec.interface)
                .ok_or_else(|| {
                    format!(
                        "instance {}: interface {} is not in use by the running agent; reload \
                         cannot attach a new interface, restart the agent to add it",
                        spec.name, spec.interface
                    )
                })?;
            let env = ifaces
                .iter()
                .find(|e| e.name == spec.interface)
                .ok_or_else(|| {
                    format!("interface {}: its addresses were not given", spec.interface)
                })?;
            let all_vips: Vec<IpAddr> = specs
                .iter()
                .filter(|s| s.interface == env.name)
                .flat_map(|s| s.vips.iter().map(|v| v.addr))
                .collect();
            let primary = env.primary_for(spec, &all_vips)?;
            let cfg = spec.fsm_config(primary);
            if spec.priority == 255 {
                cfg.validate_ownership(&env.addrs)
                    .map_err(|e| format!("instance {}: {e}", spec.name))?;
            }
            cfg.validate()
                .map_err(|e| format!("instance {}: {e}", spec.name))?;
            let old = self
                .instances
                .iter()
                .position(|i| !i.retired && key(&i.spec) == key(spec));
            if let Some(o) = old {
                let inst = &self.instances[o];
                let what = if inst.spec.version != spec.version {
                    Some("its VRRP version")
                } else if (inst.spec.priority == 255) != (spec.priority == 255) {
                    Some("whether it is the address owner (priority 255)")
                } else if inst.vr.config().primary_addr != primary {
                    Some("its advert source address")
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(format!(
                        "instance {}: reload cannot change {what}; remove the instance in one \
                         reload and add it back in the next, or restart the agent",
                        spec.name
                    ));
                }
            }
            let mut local = vec![primary];
            for a in &env.addrs {
                if !all_vips.contains(a) && !local.contains(a) {
                    local.push(*a);
                }
            }
            placed.push(Placed {
                spec: spec.clone(),
                f,
                primary,
                local,
                old,
            });
        }
        // Sync group members are running instances (same groups, same names): map them.
        let mut group_members = Vec::new();
        for g in &self.groups {
            let mut m = Vec::new();
            for name in &g.spec.instances {
                let k = placed
                    .iter()
                    .position(|p| &p.spec.name == name)
                    .ok_or_else(|| {
                        format!("sync group {}: no instance is named {name:?}", g.spec.name)
                    })?;
                let Some(o) = placed[k].old else {
                    return Err(format!(
                        "sync group {}: reload cannot add instance {name} to a sync group; \
                         restart the agent",
                        g.spec.name
                    ));
                };
                m.push(o);
            }
            group_members.push(m);
        }
        // Validated: apply.
        let mut plan = ReloadPlan::default();
        let mut out = Vec::new();
        // Removed instances first: their priority-0 adverts go out before anything else.
        let kept: Vec<usize> = placed.iter().filter_map(|p| p.old).collect();
        for i in 0..self.instances.len() {
            if self.instances[i].retired || kept.contains(&i) {
                continue;
            }
            self.retire(i, now, &mut out);
            plan.removed.push(InstanceId(i));
        }
        for (g, m) in group_members.into_iter().enumerate() {
            self.groups[g].members = m;
        }
        for (p, t) in placed.into_iter().zip(tracks) {
            match p.old {
                Some(o) if self.instances[o].spec == p.spec => {
                    self.instances[o].tracks = t;
                    plan.unchanged.push(InstanceId(o));
                }
                Some(o) => {
                    self.change(o, p, t, now, &mut plan, &mut out)?;
                    plan.changed.push(InstanceId(o));
                }
                None => {
                    let id = self.add(p, t, now, &mut out)?;
                    plan.added.push(id);
                }
            }
        }
        let names = |ids: &[InstanceId]| -> Vec<String> {
            ids.iter()
                .map(|i| self.instances[i.0].spec.name.clone())
                .collect()
        };
        out.push(Command::Notify(Notification::Reloaded {
            added: names(&plan.added),
            removed: names(&plan.removed),
            changed: names(&plan.changed),
            unchanged: names(&plan.unchanged),
        }));
        self.sync_groups(now, &mut out);
        self.queue.extend(out);
        Ok(plan)
    }

    /// Instance `i` leaves: Shutdown (a master sends priority 0 and releases), then it is off
    /// its interface and out of the trackers and the snapshot.
    fn retire(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        self.feed(i, Input::Shutdown, now, None, out);
        let inst = &mut self.instances[i];
        inst.retired = true;
        inst.garp = None;
        inst.claim_retry.at = None;
        inst.release_retry.at = None;
        inst.handover_until = None;
        inst.tracks.clear();
        inst.group = None;
        let f = inst.iface.0;
        let iface = &mut self.ifaces[f];
        if let Some(k) = iface.members.iter().position(|m| m.0 == i) {
            iface.members.remove(k);
            iface.rx_cfgs.remove(k);
        }
    }

    /// Instance `o` takes the settings of `p` live.
    fn change(
        &mut self,
        o: usize,
        p: Placed,
        tracks: Vec<(super::TrackerId, i32)>,
        now: Instant,
        plan: &mut ReloadPlan,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let id = InstanceId(o);
        let inst = &mut self.instances[o];
        let old_vips = inst.spec.vips.clone();
        let new_vips = p.spec.vips.clone();
        let accept_changed = inst.spec.accept_mode != p.spec.accept_mode;
        inst.vr
            .reconfigure(p.spec.fsm_config(p.primary))
            .map_err(|e| format!("instance {}: {e}", p.spec.name))?;
        inst.stale_after = p
            .spec
            .failsafe_timeout
            .unwrap_or_else(|| inst.vr.master_down_interval());
        let added: Vec<Vip> = new_vips
            .iter()
            .filter(|v| !old_vips.iter().any(|o| o.addr == v.addr))
            .copied()
            .collect();
        let dropped: Vec<Vip> = old_vips
            .iter()
            .filter(|v| !new_vips.iter().any(|n| n.addr == v.addr))
            .copied()
            .collect();
        inst.spec = p.spec;
        inst.tracks = tracks;
        let rx = super::rx_cfg(&inst.spec, p.local);
        if let Some(k) = self.ifaces[p.f].members.iter().position(|m| *m == id) {
            self.ifaces[p.f].rx_cfgs[k] = rx;
        }
        plan.vips_added.extend(added.iter().map(|v| (id, *v)));
        plan.vips_removed.extend(dropped.iter().map(|v| (id, *v)));
        let inst = &mut self.instances[o];
        let owner = inst.spec.priority == 255;
        if inst.vr.state() == State::Master && !owner {
            if accept_changed {
                out.push(Command::Claim {
                    instance: id,
                    accept: inst.vr.accepts_vip_traffic(),
                });
            }
            for v in &added {
                inst.reload_vips.push(v.addr);
                out.push(Command::AddVip {
                    instance: id,
                    vip: *v,
                });
            }
        }
        if inst.vr.state() == State::Master {
            let idx: Vec<usize> = inst
                .spec
                .vips
                .iter()
                .enumerate()
                .filter(|(_, v)| added.iter().any(|a| a.addr == v.addr))
                .map(|(k, _)| k)
                .collect();
            self.garp_reload(o, now, &idx, out);
            let inst = &mut self.instances[o];
            if !owner {
                for v in &dropped {
                    inst.reload_vips.push(v.addr);
                    out.push(Command::RemoveVip {
                        instance: id,
                        vip: *v,
                    });
                }
            }
        }
        // A new configured priority or new weights: through the trackers' evaluation.
        self.retrack(o, now, out);
        Ok(())
    }

    /// A new instance, built like at start, then started.
    fn add(
        &mut self,
        p: Placed,
        tracks: Vec<(super::TrackerId, i32)>,
        now: Instant,
        out: &mut Vec<Command>,
    ) -> Result<InstanceId, String> {
        let i = self.instances.len();
        let id = InstanceId(i);
        let mut vr = VirtualRouter::new(p.spec.fsm_config(p.primary))
            .map_err(|e| format!("instance {}: {e}", p.spec.name))?;
        let (priority, track_fault) = track::evaluate(p.spec.priority, &tracks, &self.trackers);
        if p.spec.priority != 255 {
            vr.handle(Input::PriorityChanged { priority }, now);
        }
        if track_fault {
            vr.handle(Input::TrackFault { on: true }, now);
        }
        let stale_after = p
            .spec
            .failsafe_timeout
            .unwrap_or_else(|| vr.master_down_interval());
        let local = p.local;
        let mut inst = Instance::new(p.spec, super::IfaceId(p.f), vr, stale_after);
        inst.tracks = tracks;
        inst.track_fault = track_fault;
        let rx = super::rx_cfg(&inst.spec, local);
        self.instances.push(inst);
        let iface = &mut self.ifaces[p.f];
        iface.members.push(id);
        iface.rx_cfgs.push(rx);
        if !iface.link_up {
            self.feed(i, Input::LinkDown, now, None, out);
        }
        self.feed(i, Input::Startup, now, None, out);
        Ok(id)
    }
}
