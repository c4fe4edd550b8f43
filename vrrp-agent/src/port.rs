//! The I/O of one interface: its fast path (XDP program, maps, advert ring buffer), its raw
//! transmit sockets and its VIPs (rtnetlink). A [`Port`] carries out the core's commands for the
//! instances of its interface and reports what claims and releases did; it decides nothing.
//!
//! [`decode`] is the one place that turns the kernel ABI's [`AdvertEvent`] into the core's
//! [`Received`].
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    time::Duration,
};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::io::{unix::AsyncFd, Interest};
use vrrp_common::{AdvertEvent, Counter, EVENT_FLAG_VLAN, FAMILY_IPV6};
use vrrp_core::{fsm, wire::MacAddr, InstanceId, Received, Report};

use crate::{
    config::Vip,
    fastpath::{parse_event, FastPath},
    netlink,
    overflow::OverflowReport,
    tx::Tx,
};

/// The core's view of a ring-buffer event: addresses by family, the captured bytes (at most
/// `captured_len`), the VLAN tag if the frame had one.
pub fn decode(ev: &AdvertEvent) -> Received {
    let ip = |b: &[u8; 16]| {
        if ev.family == FAMILY_IPV6 {
            IpAddr::V6(Ipv6Addr::from(*b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
    };
    let n = (ev.captured_len as usize).min(ev.payload.len());
    Received {
        rx_time: fsm::Instant::from_nanos(ev.rx_time_ns),
        src_mac: MacAddr(ev.src_mac),
        src_ip: ip(&ev.src_ip),
        dst_ip: ip(&ev.dst_ip),
        hop_limit: ev.ttl,
        vlan: (ev.flags & EVENT_FLAG_VLAN != 0).then_some(ev.vlan_id),
        payload: ev.payload[..n].to_vec(),
    }
}

/// Registers the advert ring buffer with the tokio reactor.
pub fn register<T: AsRawFd>(inner: T) -> Result<AsyncFd<T>> {
    // SAFETY: the fd belongs to `inner`, which the AsyncFd owns, so it stays open and the same
    // for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
        .context("registering a BPF ring buffer with tokio")
}

/// Everything the ring holds right now, without waiting.
pub fn drain_ready(ring: &mut RingBuf<MapData>) -> Vec<AdvertEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if let Some(ev) = parse_event(&item) {
            out.push(ev);
        }
    }
    out
}

/// What a port needs to know about one of its instances to carry out commands.
pub struct InstInfo {
    pub id: InstanceId,
    pub name: String,
    pub family: u8,
    pub vrid: u8,
    pub vips: Vec<Vip>,
    /// The fast-path fail-safe bound.
    pub stale_after: Duration,
    /// Priority 255: the VIPs are the interface's own addresses, never added or removed.
    pub owner: bool,
}

/// One interface in election mode, set up and attached.
pub struct Port {
    pub iface: String,
    pub ifindex: u32,
    pub fp: FastPath,
    pub tx: Tx,
    pub nl: rtnetlink::Handle,
    pub info: Vec<InstInfo>,
    pub overflow: OverflowReport,
    /// IFF_RUNNING as last reported to the core.
    pub link_up: bool,
    /// Instances claimed with the short bound whose first advert has not left yet
    /// ([`Port::claim`], [`Port::advert_left`]).
    pub unannounced: Vec<InstanceId>,
}

fn inst(info: &[InstInfo], id: InstanceId) -> &InstInfo {
    info.iter()
        .find(|i| i.id == id)
        .expect("a command for an instance of this port")
}

impl Port {
    /// Writes the fail-safe heartbeat.
    pub fn beat(&mut self) {
        if let Err(e) = self.fp.heartbeat(crate::clock::monotonic_ns()) {
            log::error!("{}: fail-safe heartbeat: {e:#}", self.iface);
        }
    }

    /// A stop's handover begins: the fail-safe bound of every owned router becomes `bound`
    /// (with a heartbeat now); see [`FastPath::set_stale_after`].
    pub fn handover_failsafe(&mut self, bound: impl Fn(InstanceId) -> Duration) {
        self.beat();
        for inf in &self.info {
            if let Err(e) = self.fp.set_stale_after(inf.family, inf.vrid, bound(inf.id)) {
                log::warn!(
                    "{}: shortening the fail-safe for the handover: {e:#}",
                    self.iface
                );
            }
        }
    }

    /// Reads the ring-buffer overflow counter if it is due and logs the rate-limited warning.
    /// `last`: the final read at a stop (whatever the period), then the unreported rest is
    /// logged.
    pub fn check_overflow(&mut self, now: fsm::Instant, last: bool) {
        check_overflow(&self.fp, &self.iface, &mut self.overflow, now, last);
    }

    /// The fast path only (the XDP program answers ARP/NS with the VMAC from now on): map
    /// updates, nothing that waits on the kernel's rtnl lock. The addresses follow with
    /// [`Port::add_vips`], after the first advert. A fresh claim (the
    /// router was not owned) gets the fail-safe bound `first` (half an advert interval) until
    /// its first advert left ([`Port::advert_left`]), then the configured one: killed between
    /// the claim and that advert, the old Master never heard of us and still answers for the
    /// VIPs, so our answers must lapse within an advert interval, not the whole bound.
    pub fn claim(&mut self, id: InstanceId, accept: bool, first: Duration) -> Report {
        self.beat();
        let inf = inst(&self.info, id);
        let short = !self.fp.owns(inf.family, inf.vrid)
            && !inf.stale_after.is_zero()
            && first < inf.stale_after;
        let bound = if short { first } else { inf.stale_after };
        if let Err(e) = self
            .fp
            .set_router(inf.family, inf.vrid, true, accept, bound)
        {
            return Report::ClaimFailed(format!("claiming in the fast path: {e:#}"));
        }
        if short && !self.unannounced.contains(&id) {
            self.unannounced.push(id);
        }
        Report::Claimed
    }

    /// An advert of instance `id` left: a claim's short fail-safe bound becomes the
    /// configured one.
    pub fn advert_left(&mut self, id: InstanceId) {
        if self.unannounced.is_empty() {
            return;
        }
        let Some(k) = self.unannounced.iter().position(|i| *i == id) else {
            return;
        };
        self.unannounced.swap_remove(k);
        let inf = inst(&self.info, id);
        if let Err(e) = self
            .fp
            .set_stale_after(inf.family, inf.vrid, inf.stale_after)
        {
            log::warn!("instance {}: setting the fail-safe bound: {e:#}", inf.name);
        }
    }

    /// The addresses on the interface (the kernel accepts traffic for them). Stops at the first
    /// failure.
    pub async fn add_vips(&mut self, id: InstanceId) -> Report {
        let inf = inst(&self.info, id);
        if inf.owner {
            return Report::Claimed;
        }
        for vip in &inf.vips {
            if let Err(e) = netlink::add_vip(&self.nl, self.ifindex, *vip).await {
                return Report::ClaimFailed(format!("{e:#}"));
            }
        }
        Report::Claimed
    }

    /// The addresses first, then the fast path (no more ARP/NS answers, VMAC frames no longer
    /// taken). Every step is tried; the failures are reported together.
    pub async fn release(&mut self, id: InstanceId) -> Report {
        let inf = inst(&self.info, id);
        let mut errors = Vec::new();
        let hook = crate::step_hook::delay();
        if let Some(d) = hook {
            crate::step_hook::step("release", "del_vips", &inf.name, d).await;
        }
        // Addresses first: once they are gone the kernel can neither answer for a VIP nor send
        // from it with the interface's own MAC; only then does the fast path stop answering
        // ARP/NS with the VMAC (it drops requests for VIPs it does not own).
        if !inf.owner {
            for vip in &inf.vips {
                if let Err(e) = netlink::del_vip(&self.nl, self.ifindex, *vip).await {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        if let Some(d) = hook {
            crate::step_hook::step("release", "unclaim", &inf.name, d).await;
        }
        self.unannounced.retain(|i| *i != id);
        if let Err(e) = self
            .fp
            .set_router(inf.family, inf.vrid, false, false, inf.stale_after)
        {
            errors.push(format!("releasing in the fast path: {e:#}"));
        }
        if errors.is_empty() {
            Report::Released
        } else {
            Report::ReleaseFailed(errors.join("; "))
        }
    }

    /// Puts one VIP back.
    pub async fn add_vip(&mut self, vip: Vip) -> Report {
        match netlink::add_vip(&self.nl, self.ifindex, vip).await {
            Ok(added) => Report::VipAdded {
                vip,
                was_present: !added,
            },
            Err(e) => Report::ClaimFailed(format!("{e:#}")),
        }
    }

    /// Takes one VIP off.
    pub async fn remove_vip(&mut self, vip: Vip) -> Report {
        match netlink::del_vip(&self.nl, self.ifindex, vip).await {
            Ok(removed) => Report::VipRemoved {
                vip,
                was_present: removed,
            },
            Err(e) => Report::ReleaseFailed(format!("{e:#}")),
        }
    }

    /// Adds (or removes) every instance's VMAC to (from) the interface's unicast filter.
    pub async fn uc_filter(&self, add: bool) {
        for inf in &self.info {
            let mac = vrrp_common::vmac(inf.family, inf.vrid);
            let r = if add {
                netlink::uc_filter_add(&self.nl, self.ifindex, mac).await
            } else {
                netlink::uc_filter_del(&self.nl, self.ifindex, mac).await
            };
            if let Err(e) = r {
                log::warn!("instance {} on {}: {e:#}", inf.name, self.iface);
            }
        }
    }

    /// Clears everything this agent put in the maps.
    pub fn clear_maps(&mut self) {
        for inf in &self.info {
            let r = self
                .fp
                .set_router(inf.family, inf.vrid, false, false, Duration::ZERO)
                .and_then(|()| inf.vips.iter().try_for_each(|v| self.fp.remove_vip(v.addr)))
                .and_then(|()| self.fp.set_vrid(inf.family, inf.vrid, false));
            if let Err(e) = r {
                log::warn!("instance {}: clearing the fast-path maps: {e:#}", inf.name);
            }
        }
    }
}

/// Reads the ring-buffer overflow counter if it is due and logs the rate-limited warning.
/// `last`: the final read at a stop (whatever the period), then the unreported rest is logged.
pub fn check_overflow(
    fp: &FastPath,
    iface: &str,
    report: &mut OverflowReport,
    now: fsm::Instant,
    last: bool,
) {
    if !last && !report.due(now) {
        return;
    }
    match fp.counter(Counter::RingbufFull) {
        Ok(total) => {
            if let Some(lost) = report.observe(total, now) {
                log::warn!("{}", crate::overflow::warning(iface, lost));
            }
        }
        Err(e) => log::debug!("{iface}: {e:#}"),
    }
    if let Some(n) = last.then(|| report.flush()).flatten() {
        log::warn!(
            "interface {iface}: {n} more VRRP adverts lost to a full ring buffer since the last warning"
        );
    }
}
