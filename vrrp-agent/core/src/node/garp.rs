//! Gratuitous ARP / unsolicited NA while Master, on the `garp_master_*` schedule: a burst at the
//! transition, one more `garp_master_delay` later, then one every `garp_master_refresh`.
use std::{collections::VecDeque, net::IpAddr};

use super::{instance::Instance, Command, Core, InstanceId};
use crate::{
    fsm::Instant,
    wire::{ArpFrame, NdpFrame},
};

/// GARP / NA schedule of an instance while it is Master.
#[derive(Debug, Clone, Default)]
pub(super) struct GarpRun {
    /// Packets still to send: (when, index into the VIPs), in time order.
    queue: VecDeque<(Instant, usize)>,
    /// Start of the next burst (the garp_master_delay one, then refreshes).
    next_burst: Option<Instant>,
}

impl GarpRun {
    /// When the next packet or burst is due.
    pub fn next(&self) -> Option<Instant> {
        let q = self.queue.front().map(|(t, _)| *t);
        match (q, self.next_burst) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn burst(inst: &Instance, start: Instant, q: &mut VecDeque<(Instant, usize)>) {
    let n = inst.spec.vips.len();
    let mut k = 0u32;
    for _ in 0..inst.spec.garp.master_repeat {
        for v in 0..n {
            q.push_back((start + inst.spec.garp.interval * k, v));
            k += 1;
        }
    }
}

impl Core {
    pub(super) fn garp_start(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        let mut run = GarpRun::default();
        burst(inst, now, &mut run.queue);
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

    /// A reload changed the VIPs of Master instance `i`: the packets still queued point into
    /// the old list, so the queue restarts with a burst for the new VIPs `idx` only (indices
    /// into the new list); the schedule of later bursts is kept.
    pub(super) fn garp_reload(
        &mut self,
        i: usize,
        now: Instant,
        idx: &[usize],
        out: &mut Vec<Command>,
    ) {
        let inst = &mut self.instances[i];
        let mut run = inst.garp.take().unwrap_or_default();
        run.queue.clear();
        let mut k = 0u32;
        for _ in 0..inst.spec.garp.master_repeat {
            for v in idx {
                run.queue.push_back((now + inst.spec.garp.interval * k, *v));
                k += 1;
            }
        }
        inst.garp = Some(run);
        self.garp_due(i, now, out);
    }

    /// Master instance `i` answered another Master's lower-priority advert (two Masters
    /// resolving, e.g. after a partition healed): one more burst now, so that hosts and
    /// switches that followed the other Master come back (keepalived users miss it: its
    /// #166, #1528). Not while a burst is still being sent (bounded like the answer itself,
    /// at most one per advert interval); the `garp_master_*` schedule is kept.
    pub(super) fn garp_answer(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let inst = &mut self.instances[i];
        let Some(mut run) = inst.garp.take() else {
            return;
        };
        if run.queue.is_empty() {
            burst(inst, now, &mut run.queue);
        }
        inst.garp = Some(run);
        self.garp_due(i, now, out);
    }

    pub(super) fn garp_due(&mut self, i: usize, now: Instant, out: &mut Vec<Command>) {
        let vmac = self.vmac(i);
        let inst = &mut self.instances[i];
        let Some(mut run) = inst.garp.take() else {
            return;
        };
        loop {
            if let Some(at) = run.next_burst.filter(|at| *at <= now) {
                // Bursts are queued behind what is left of the previous one.
                let start = run.queue.back().map(|(t, _)| (*t).max(at)).unwrap_or(at);
                burst(inst, start, &mut run.queue);
                let r = inst.spec.garp.master_refresh;
                run.next_burst = (!r.is_zero()).then(|| at + r);
                continue;
            }
            match run.queue.front() {
                Some((at, v)) if *at <= now => {
                    let vip = inst.spec.vips[*v].addr;
                    run.queue.pop_front();
                    let frame = match vip {
                        IpAddr::V4(a) => ArpFrame::gratuitous(vmac, a).to_bytes(),
                        IpAddr::V6(a) => NdpFrame::unsolicited_na(vmac, a, true).to_bytes(),
                    };
                    inst.counters.garp_sent += 1;
                    out.push(Command::SendFrame {
                        instance: InstanceId(i),
                        frame,
                        advert: false,
                    });
                }
                _ => break,
            }
        }
        inst.garp = Some(run);
    }
}
