//! The fast path of vrrp-agent: an XDP program (`vrrp_xdp`) and a TC egress classifier
//! (`vrrp_tc_egress`) sharing one set of maps.
//!
//! This file holds the maps, the two entry points and the dispatch; each feature has its own
//! file:
//!
//! * [`advert`]: VRRP (IP protocol 112) over IPv4/IPv6 for a virtual router configured in
//!   `VRIDS` → the `EVENTS` ring buffer, with its kernel receive time, and consumed. A
//!   *routine* advert (the same as the last one of its router, which we do not own, marked
//!   `VRID_QUIET`) is queued without waking the agent (`LAST_ADVERTS`, `Counter::VrrpQuiet`).
//! * [`arp`]: ARP requests for an owned VIP answered in place with the VMAC (`XDP_TX`).
//! * [`nd`]: Neighbor Solicitations for an owned IPv6 VIP turned in place into the Neighbor
//!   Advertisement `vrrp_agent::wire::NdpFrame::answer(ns, vmac, true)` would build (`XDP_TX`).
//! * [`vmac`]: VMAC acceptance (before classification, not an outcome): a frame addressed to the
//!   VMAC of a router we own gets the interface's own MAC as destination, so the kernel takes it.
//! * [`accept_mode`]: other IP packets addressed to a VIP of an owned router without
//!   `ROUTER_ACCEPT` are dropped.
//! * [`egress`]: what the kernel itself sends *from* an owned VIP leaves with the VMAC; ARP/ND
//!   from a VIP not owned with a fresh heartbeat is dropped.
//! * [`owner`]: ownership and the fail-safe, asked by every feature; [`parse`]: the bounded
//!   parsing helpers (headers, VLAN); [`counter`]: the per-CPU outcome counter.
//!
//! Every frame goes through a bounded parser (Ethernet, one optional 802.1Q/802.1ad tag, IPv4,
//! IPv6 or ARP) and ends in exactly one outcome; every frame bumps `Frames` (egress:
//! `EgressFrames`) and exactly one outcome counter (see `vrrp_common::Counter`).
//!
//! * **Not ours**: ARP requests / NS for a VIP (in `VIPS_V4` / `VIPS_V6`) of a router we do not
//!   own are dropped. A VIP in the maps is never the kernel's to answer: between the agent giving
//!   a router up and removing its VIPs from the interface (and whenever a crash leaves them
//!   there) the kernel would answer with the interface's real MAC and pull clients off the VMAC.
//! * **Fail-safe**: a router is only "owned" while the agent's heartbeat is fresh
//!   ([`owner::owner`]). ARP requests / NS for the VIPs of an owned router whose heartbeat went
//!   stale are dropped: the agent is gone (SIGKILL), the VIP may still be configured on the
//!   interface, and the kernel would otherwise answer with the interface's real MAC — the dead
//!   node would keep claiming the VIP.
//!
//! Everything else is passed untouched. Nothing here can abort: a frame too short for what it
//! claims to be is passed and counted. Verifier notes: see [`parse`].
#![no_std]
#![no_main]

mod accept_mode;
mod advert;
mod arp;
mod counter;
mod egress;
mod nd;
mod owner;
mod parse;
mod vmac;

use aya_ebpf::{
    bindings::{xdp_action, BPF_F_MMAPABLE, TC_ACT_OK, TC_ACT_SHOT},
    macros::{classifier, map, xdp},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use vrrp_common::{
    Counter, IfaceConfig, LastAdvert, RouterState, VipEntry, EVENTS_RING_BYTES, FAMILY_IPV4,
    FAMILY_IPV6, IPPROTO_VRRP, MAX_VIPS, VRID_SLOTS,
};

use crate::{
    accept_mode::accept_mode,
    advert::{to_user, VrrpFrame},
    counter::count,
    nd::neighbor_solicit,
    parse::{
        l2, load_bytes, sub, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMPV6_NS, IPPROTO_ICMPV6,
        IPV4_MIN_HLEN, IPV6_HLEN,
    },
};

// Maps (vrrp-common holds their layouts: the ABI with user space).

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

/// Non-zero at `vrid_slot(family, vrid)`: adverts of that virtual router go to user space
/// (`VRID_ON`; with `VRID_QUIET`, routine ones without a wake-up).
#[map]
static VRIDS: Array<u32> = Array::with_max_entries(VRID_SLOTS, 0);

/// Per CPU, at `vrid_slot(family, vrid)`: the last advert of that virtual router handed to user
/// space from this CPU (see `vrrp_common::LastAdvert` and [`advert`]). Per CPU: no lock, no
/// race; the first advert on each CPU wakes the agent, which is harmless.
#[map]
static LAST_ADVERTS: PerCpuArray<LastAdvert> = PerCpuArray::with_max_entries(VRID_SLOTS, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

/// Per virtual router: owned or not, fail-safe bound (see `RouterState`).
#[map]
static ROUTERS: Array<RouterState> = Array::with_max_entries(VRID_SLOTS, 0);

/// IPv4 VIPs (key: address bytes in network order).
#[map]
static VIPS_V4: HashMap<[u8; 4], VipEntry> = HashMap::with_max_entries(MAX_VIPS, 0);

/// IPv6 VIPs (key: address bytes).
#[map]
static VIPS_V6: HashMap<[u8; 16], VipEntry> = HashMap::with_max_entries(MAX_VIPS, 0);

/// `[0]`: the agent's last heartbeat, CLOCK_MONOTONIC ns (same clock as bpf_ktime_get_ns).
/// Memory-mappable (`BPF_F_MMAPABLE`): the agent writes it with a store into its mapping, not a
/// `bpf()` syscall per wake-up (CPU floor, issue 11).
#[map]
static HEARTBEAT: Array<u64> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// `[0]`: the attached interface's own MAC.
#[map]
static IFACE: Array<IfaceConfig> = Array::with_max_entries(1, 0);

const PASS: u32 = xdp_action::XDP_PASS;
const DROP: u32 = xdp_action::XDP_DROP;
const TX: u32 = xdp_action::XDP_TX;

/// ICMPv6 types of Neighbor Discovery (RS, RA, NS, NA, Redirect): never subject to Accept_Mode.
const ICMPV6_ND_FIRST: u8 = 133;
const ICMPV6_ND_LAST: u8 = 137;

// Entry points.

#[xdp]
pub fn vrrp_xdp(ctx: XdpContext) -> u32 {
    let (action, outcome) = classify(&ctx);
    count(Counter::Frames);
    count(outcome);
    action
}

#[classifier]
pub fn vrrp_tc_egress(ctx: TcContext) -> i32 {
    let outcome = egress::egress(&ctx);
    count(Counter::EgressFrames);
    count(outcome);
    match outcome {
        Counter::EgressNeighDroppedNotOwned | Counter::EgressNeighDroppedStale => {
            TC_ACT_SHOT as i32
        }
        _ => TC_ACT_OK as i32,
    }
}

// XDP dispatch: which feature a frame belongs to.

#[inline(always)]
fn classify(ctx: &XdpContext) -> (u32, Counter) {
    let Some(l2) = l2(ctx) else {
        return (PASS, Counter::MalformedL2);
    };

    vmac::accept_vmac(ctx);

    let frame = match l2.ethertype {
        ETH_P_ARP => return arp::arp(ctx, l2.l3),
        ETH_P_IP => match ipv4(ctx, l2.l3) {
            Ok(f) => f,
            Err(r) => return r,
        },
        ETH_P_IPV6 => match ipv6(ctx, l2.l3) {
            Ok(f) => f,
            Err(r) => return r,
        },
        _ => return (PASS, Counter::PassNotIp),
    };
    to_user(ctx, frame, l2.vlan)
}

/// IPv4: a VRRP message to look at (Ok), or the verdict (Err).
#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> Result<VrrpFrame, (u32, Counter)> {
    let Some(hdr) = load_bytes::<IPV4_MIN_HLEN>(ctx, l3) else {
        return Err((PASS, Counter::MalformedL3));
    };
    if hdr[0] >> 4 != 4 {
        return Err((PASS, Counter::MalformedL3));
    }
    let ihl = ((hdr[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if ihl < IPV4_MIN_HLEN || total_len < ihl {
        return Err((PASS, Counter::MalformedL3));
    }
    let dst: [u8; 4] = sub(&hdr, 16);
    if hdr[9] != IPPROTO_VRRP {
        // SAFETY: plain lookup; the value is copied out at once.
        return Err(match (unsafe { VIPS_V4.get(&dst) }).map(|v| v.vrid) {
            Some(vrid) => accept_mode(FAMILY_IPV4, vrid),
            None => (PASS, Counter::PassIpOther),
        });
    }
    // More-fragments flag or a non-zero fragment offset.
    if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
        return Err((PASS, Counter::VrrpFragment));
    }
    let mut src_ip = [0u8; 16];
    let mut dst_ip = [0u8; 16];
    src_ip[..4].copy_from_slice(&hdr[12..16]);
    dst_ip[..4].copy_from_slice(&dst);
    Ok(VrrpFrame {
        family: FAMILY_IPV4,
        ttl: hdr[8],
        vrrp_off: l3 + ihl,
        payload_len: (total_len - ihl) as u16,
        src_ip,
        dst_ip,
    })
}

/// IPv6: a VRRP message to look at (Ok), or the verdict (Err).
#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize) -> Result<VrrpFrame, (u32, Counter)> {
    let Some(hdr) = load_bytes::<IPV6_HLEN>(ctx, l3) else {
        return Err((PASS, Counter::MalformedL3));
    };
    if hdr[0] >> 4 != 6 {
        return Err((PASS, Counter::MalformedL3));
    }
    let next = hdr[6];
    let dst_ip: [u8; 16] = sub(&hdr, 24);
    // VRRP is carried directly after the fixed header; anything else (including extension
    // headers) is not ours.
    if next == IPPROTO_VRRP {
        return Ok(VrrpFrame {
            family: FAMILY_IPV6,
            ttl: hdr[7],
            vrrp_off: l3 + IPV6_HLEN,
            payload_len: u16::from_be_bytes([hdr[4], hdr[5]]),
            src_ip: sub(&hdr, 8),
            dst_ip,
        });
    }
    if next == IPPROTO_ICMPV6 {
        let Some(icmp_type) = load_bytes::<2>(ctx, l3 + IPV6_HLEN).map(|t| t[0]) else {
            return Err((PASS, Counter::MalformedL3));
        };
        if icmp_type == ICMPV6_NS {
            return Err(neighbor_solicit(ctx, l3, &hdr));
        }
        if (ICMPV6_ND_FIRST..=ICMPV6_ND_LAST).contains(&icmp_type) {
            return Err((PASS, Counter::PassIpOther));
        }
    }
    // SAFETY: plain lookup; the value is copied out at once.
    Err(match (unsafe { VIPS_V6.get(&dst_ip) }).map(|v| v.vrid) {
        Some(vrid) => accept_mode(FAMILY_IPV6, vrid),
        None => (PASS, Counter::PassIpOther),
    })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
