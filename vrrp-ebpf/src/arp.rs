//! ARP responder: requests for a VIP of an owned router are answered in place with the VMAC
//! (`XDP_TX`); requests for a VIP of a router not owned (or owned with a stale heartbeat) are
//! dropped, never left to the kernel (see `main.rs`, "Not ours" and "Fail-safe"). A request for a
//! VIP from a group (multicast/broadcast) hardware address is dropped whatever the router's state
//! (`Counter::GroupSenderDropped` says why).
use aya_ebpf::programs::XdpContext;
use vrrp_common::{vmac, Counter, FAMILY_IPV4};

use crate::{
    owner::{owner, Owner},
    parse::{eq4, is_group, ptr_at_mut, sub, ARP_LEN},
    DROP, PASS, TX, VIPS_V4,
};

/// ARP at `l3`: answer requests for owned VIPs in place (see `vrrp_agent::wire::arp` for the
/// layout).
#[inline(always)]
pub fn arp(ctx: &XdpContext, l3: usize) -> (u32, Counter) {
    let Some(p) = ptr_at_mut::<[u8; ARP_LEN]>(ctx, l3) else {
        return (PASS, Counter::MalformedL3);
    };
    // SAFETY: in bounds (ptr_at_mut).
    let req = unsafe { *p };
    // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4, oper 1 (request).
    if u32::from_be_bytes(sub(&req, 0)) != 0x0001_0800
        || u32::from_be_bytes(sub(&req, 4)) != 0x0604_0001
    {
        return (PASS, Counter::ArpSeen);
    }
    let sha: [u8; 6] = sub(&req, 8);
    let spa: [u8; 4] = sub(&req, 14);
    let tpa: [u8; 4] = sub(&req, 24);
    // SAFETY: plain lookup; the value is copied out at once.
    let Some(vrid) = (unsafe { VIPS_V4.get(&tpa) }).map(|v| v.vrid) else {
        return (PASS, Counter::ArpSeen);
    };
    if eq4(spa, tpa) {
        return (PASS, Counter::ArpFromVip);
    }
    let Some(eth) = ptr_at_mut::<[u8; 12]>(ctx, 0) else {
        return (PASS, Counter::MalformedL2);
    };
    // SAFETY: in bounds (ptr_at_mut).
    let requester: [u8; 6] = sub(&unsafe { *eth }, 6);
    // The answer goes to the Ethernet source and names the sender hardware address: neither
    // may be a group address (an ARP probe, sender IP 0.0.0.0, has a unicast one and is
    // answered). Dropped, not passed: the kernel would answer it.
    if is_group(sha) || is_group(requester) {
        return (DROP, Counter::GroupSenderDropped);
    }
    match owner(FAMILY_IPV4, vrid) {
        // Not ours to answer, and not the kernel's either: it may still have the VIP configured
        // (release in progress, a crashed agent) and would answer with the real MAC.
        Owner::NotOwned => (DROP, Counter::ArpVipNotOwned),
        Owner::Stale => (DROP, Counter::VipStaleDropped),
        Owner::Fresh { .. } => {
            let mac = vmac(FAMILY_IPV4, vrid);
            let mut e = [0u8; 12];
            e[..6].copy_from_slice(&requester);
            e[6..].copy_from_slice(&mac);
            let mut r = req;
            r[7] = 2; // oper: reply
            r[8..14].copy_from_slice(&mac);
            r[14..18].copy_from_slice(&tpa);
            r[18..24].copy_from_slice(&sha);
            r[24..28].copy_from_slice(&spa);
            // SAFETY: both in bounds (ptr_at_mut), alignment 1.
            unsafe {
                eth.write(e);
                p.write(r);
            }
            (TX, Counter::ArpReplied)
        }
    }
}
