//! Claims and releases as inputs: what carrying out a claim or release did ([`Report`]), the
//! FAULT and backoff after a failed claim, the bounded retries of a failed release, and the VIP
//! guard (a VIP removed behind our back while we hold it is put back, one added while we do not
//! is removed).
use std::{net::IpAddr, time::Duration};

use super::{Command, Core, InstanceId, Notification, ReleaseOutcome, Report};
use crate::fsm::{Input, Instant, State};

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

/// Retry schedule after failed claims.
#[derive(Debug, Clone, Default)]
pub(super) struct ClaimRetry {
    /// The wait before the next retry (zero: [`CLAIM_RETRY_MIN`]).
    pub backoff: Duration,
    /// When the pending retry is due (the instance is in FAULT until then).
    pub at: Option<Instant>,
    /// When the last claim worked.
    pub last_ok: Option<Instant>,
    /// The last claim failed and none has worked since: the retry puts the addresses on the
    /// interface before its first advert, so a peer that took over is not preempted by a claim
    /// that fails again (nobody waits for this one: there is a Master).
    pub last_failed: bool,
}

/// Retry schedule after failed releases.
#[derive(Debug, Clone, Default)]
pub(super) struct ReleaseRetry {
    /// Failures in a row.
    pub failures: u32,
    pub at: Option<Instant>,
}

impl Core {
    /// Due claim / release retries of instance `i`.
    pub(super) fn retries_due(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        if inst.claim_retry.at.is_some_and(|t| t <= now) {
            inst.claim_retry.at = None;
            out.push(Command::Notify(Notification::RetryingClaim {
                instance: InstanceId(i),
                name: inst.spec.name.clone(),
            }));
            self.feed(i, Input::ClaimFault { on: false }, now, None, out);
        }
        let inst = &mut self.instances[i];
        if inst.release_retry.at.is_some_and(|t| t <= now) {
            inst.release_retry.at = None;
            if !inst.holds_vips() {
                out.push(Command::Release {
                    instance: InstanceId(i),
                });
            }
        }
    }

    /// What carrying out a command of instance `i` did. A failed claim drops the rest of the
    /// instance's queued commands (its advert and GARPs assumed the claim worked); the answer
    /// (`out`) goes in front of the queue: FAULT, with a priority-0 advert if it was Master (a
    /// backup takes over after Skew_Time), and a release of whatever part of the claim did work.
    pub(super) fn report(
        &mut self,
        i: usize,
        report: Report,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        let id = InstanceId(i);
        let iface = self.ifaces[self.instances[i].iface.0].name.clone();
        let inst = &mut self.instances[i];
        let name = inst.spec.name.clone();
        match report {
            Report::Claimed => {
                inst.claim_retry.last_ok = Some(now);
                inst.claim_retry.last_failed = false;
                inst.release_retry = ReleaseRetry::default();
            }
            Report::ClaimFailed(what) => self.claim_failed(i, what, now, out),
            Report::Released => inst.release_retry = ReleaseRetry::default(),
            Report::ReleaseFailed(what) => {
                inst.vip_stats.release_failures += 1;
                if inst.holds_vips() {
                    // Claimed again since: nothing to release any more.
                    return;
                }
                let r = &mut inst.release_retry;
                r.failures += 1;
                let outcome = if self.stopping || inst.retired {
                    r.at = None;
                    ReleaseOutcome::AtStop
                } else if r.failures <= RELEASE_RETRIES {
                    let wait = RELEASE_RETRY_FIRST * (1 << (r.failures - 1));
                    r.at = Some(now + wait);
                    ReleaseOutcome::Retry {
                        attempt: r.failures,
                        of: RELEASE_RETRIES,
                        wait,
                    }
                } else {
                    r.at = None;
                    ReleaseOutcome::GaveUp {
                        retries: RELEASE_RETRIES,
                    }
                };
                out.push(Command::Notify(Notification::ReleaseFailed {
                    instance: id,
                    name,
                    iface,
                    vips: inst.spec.vips.clone(),
                    what,
                    outcome,
                }));
            }
            Report::VipAdded { vip, was_present } => {
                if let Some(k) = inst.reload_vips.iter().position(|a| *a == vip.addr) {
                    inst.reload_vips.swap_remove(k);
                    out.push(Command::Notify(Notification::ReloadVip {
                        instance: id,
                        name,
                        iface,
                        vip,
                        added: true,
                    }));
                    return;
                }
                let n = if was_present {
                    Notification::VipWasPresent {
                        instance: id,
                        name,
                        iface,
                        vip,
                    }
                } else {
                    inst.vip_stats.vips_readded += 1;
                    Notification::VipReadded {
                        instance: id,
                        name,
                        iface,
                        vip,
                        count: inst.vip_stats.vips_readded,
                    }
                };
                out.push(Command::Notify(n));
            }
            Report::VipRemoved { vip, was_present } => {
                if let Some(k) = inst.reload_vips.iter().position(|a| *a == vip.addr) {
                    inst.reload_vips.swap_remove(k);
                    out.push(Command::Notify(Notification::ReloadVip {
                        instance: id,
                        name,
                        iface,
                        vip,
                        added: false,
                    }));
                    return;
                }
                let n = if was_present {
                    inst.vip_stats.vips_removed += 1;
                    Notification::VipRemoved {
                        instance: id,
                        name,
                        iface,
                        vip,
                        state: inst.vr.state(),
                        count: inst.vip_stats.vips_removed,
                    }
                } else {
                    Notification::VipWasAbsent {
                        instance: id,
                        name,
                        iface,
                        vip,
                    }
                };
                out.push(Command::Notify(n));
            }
        }
    }

    fn claim_failed(&mut self, i: usize, what: String, now: Instant, out: &mut Vec<Command>) {
        let id = InstanceId(i);
        // The state change to MASTER is queued behind the takeover's commands: it is told
        // first, then the FAULT that ends it (one order for every reader of the sequence).
        let mut told = Vec::new();
        self.queue.retain(|c| match c {
            Command::Notify(Notification::StateChanged(s)) if s.instance == id => {
                told.push(c.clone());
                false
            }
            c => c.instance() != Some(id),
        });
        out.extend(told);
        let iface = self.ifaces[self.instances[i].iface.0].name.clone();
        let inst = &mut self.instances[i];
        inst.vip_stats.claim_failures += 1;
        inst.claim_retry.last_failed = true;
        let mut cmds = Vec::new();
        if inst.handover_until.take().is_some() {
            // A departing master could not put a VIP back: the handover ends here.
            out.push(Command::Notify(Notification::HandoverClaimFailed {
                instance: id,
                name: inst.spec.name.clone(),
                what,
            }));
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
            out.push(Command::Notify(Notification::ClaimFailed {
                instance: id,
                name: inst.spec.name.clone(),
                iface,
                what,
                retry_in: wait,
            }));
            self.feed(i, Input::ClaimFault { on: true }, now, None, &mut cmds);
        }
        // Undo whatever part of the claim did work (idempotent).
        if !cmds.iter().any(|c| matches!(c, Command::Release { .. })) {
            self.instances[i].garp = None;
            cmds.push(Command::Release { instance: id });
        }
        out.extend(cmds);
    }

    /// The kernel added (`present`) or removed `addr` on interface `f` (RTM_NEWADDR /
    /// RTM_DELADDR). A VIP of an instance that holds its VIPs and was removed is put back
    /// ([`Command::AddVip`]); a VIP of an instance that does not hold them and was added is
    /// removed ([`Command::RemoveVip`]): with the address the kernel would accept traffic for
    /// the VIP and send from it while another router is master. The counts and warnings follow
    /// from what the commands find ([`Report::VipAdded`] / [`Report::VipRemoved`]), so a
    /// notification of our own earlier change (release, then claim again before it is read)
    /// costs one idempotent request and is not counted. Address owners (priority 255) are left
    /// alone: their VIPs are the interface's own addresses.
    pub(super) fn address_changed(
        &mut self,
        f: usize,
        addr: IpAddr,
        present: bool,
        out: &mut Vec<Command>,
    ) {
        for &id in &self.ifaces[f].members {
            let inst = &self.instances[id.0];
            if inst.spec.priority == 255
                || inst.vr.state() == State::Initialize && !inst.holds_vips()
            {
                continue;
            }
            for vip in inst.spec.vips.iter().filter(|v| v.addr == addr) {
                match (inst.holds_vips(), present) {
                    (true, false) => out.push(Command::AddVip {
                        instance: id,
                        vip: *vip,
                    }),
                    (false, true) => out.push(Command::RemoveVip {
                        instance: id,
                        vip: *vip,
                    }),
                    _ => {}
                }
            }
        }
    }

    /// After lost address notifications: the addresses on interface `f` now; the same rules as
    /// [`Core::address_changed`] for every VIP.
    pub(super) fn addresses_now(&mut self, f: usize, addrs: &[IpAddr], out: &mut Vec<Command>) {
        let vips: Vec<IpAddr> = self.ifaces[f]
            .members
            .iter()
            .flat_map(|id| self.instances[id.0].spec.vips.iter().map(|v| v.addr))
            .collect();
        for v in vips {
            self.address_changed(f, v, addrs.contains(&v), out);
        }
    }
}
