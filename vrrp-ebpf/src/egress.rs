//! The TC egress classifier (its entry point `vrrp_tc_egress` is in `main.rs`): what the
//! router's own kernel sends *from* a VIP of a router we own leaves with the VMAC, not the
//! interface's real MAC.
//!
//! Why: when the Master's kernel replies to a client it has not resolved yet, it sends a Neighbor
//! Solicitation from the VIP with its real MAC as Ethernet source and in the Source Link-Layer
//! Address option, and per RFC 4861 §7.2.3 the client overwrites its neighbour entry for the VIP
//! with that MAC — off the VMAC. IPv4 has `arp_announce=2` against the ARP equivalent, IPv6 has
//! nothing; keepalived puts the VIP on a macvlan carrying the VMAC (`use_vmac`). This does the
//! same without an extra device, following ownership and the fail-safe through the XDP program's
//! maps (`VIPS_V4`, `VIPS_V6`, `ROUTERS`, `HEARTBEAT`, `IFACE`).
//!
//! For a frame (Ethernet, one optional 802.1Q/802.1ad tag in the packet) whose IPv4 / IPv6 source
//! or ARP sender IP is a VIP (or, for a Neighbor Advertisement, whose target is one) of an owned
//! router with a fresh heartbeat ([`owner`]):
//!
//! * IPv4 / IPv6: the Ethernet source becomes the VMAC (`EgressIpRewritten`);
//! * ICMPv6 RS (133), NS (135), NA (136) directly after the IPv6 header: in addition every
//!   source / target link-layer address option (types 1 / 2, length 1) equal to the interface MAC
//!   (`IFACE[0]`, or the frame's own Ethernet source while `IFACE[0]` is unset) becomes the VMAC,
//!   and the ICMPv6 checksum is updated incrementally (`bpf_csum_diff` +
//!   `bpf_l4_csum_replace`, which also handles CHECKSUM_PARTIAL) (`EgressNdRewritten`);
//! * Ethernet/IPv4 ARP (requests and replies): Ethernet source and ARP sender MAC become the VMAC
//!   (`EgressArpRewritten`).
//!
//! ARP and ND (RS, NS, NA) from a VIP (NA: or about one) of a router that is **not** owned with a
//! fresh heartbeat are dropped (TC_ACT_SHOT; `EgressNeighDroppedNotOwned`,
//! `EgressNeighDroppedStale`): this is the egress half of the fail-safe. An agent killed while
//! Master leaves the VIPs configured, and the kernel's own ARP requests and neighbour
//! solicitations from them would teach the LAN VIP → real MAC while the new Master owns it. The
//! filter outlives the agent (see `vrrp_agent::fastpath`), so it keeps doing this once the
//! heartbeat is stale.
//!
//! Everything else goes out untouched (TC_ACT_OK); every frame bumps `EgressFrames` and exactly
//! one egress outcome counter.
//!
//! Verifier notes: the frame is read with `bpf_skb_load_bytes` into fixed-size stack arrays and
//! written with `bpf_skb_store_bytes` — no packet pointers, so no bounds checks for the verifier
//! to follow, non-linear skbs are handled, and a cloned skb (a packet tap) is un-cloned by the
//! helper before it is written. The option walk is bounded ([`MAX_ND_OPTIONS`]).
use aya_ebpf::{helpers::bpf_csum_diff, programs::TcContext};
use vrrp_common::{vmac, Counter, FAMILY_IPV4, FAMILY_IPV6};

use crate::{
    counter::count,
    owner::{owner, Owner},
    parse::{
        is_vlan, is_zero6, sub, ARP_LEN, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMPV6_NA,
        ICMPV6_NS, IPPROTO_ICMPV6, IPV4_MIN_HLEN, IPV6_HLEN, ND_OPT_TARGET_LLADDR, NS_MIN_LEN,
        VLAN_HLEN,
    },
    IFACE, VIPS_V4, VIPS_V6,
};

const ETH_SRC: usize = 6;
const ICMPV6_RS: u8 = 133;
/// Fixed part of a Router Solicitation: type, code, checksum, reserved.
const RS_MIN_LEN: usize = 8;
const ND_OPT_SOURCE_LLADDR: u8 = 1;
/// Options looked at per message. The kernel sends one link-layer address option (plus, for
/// DAD — never from a VIP — a nonce).
const MAX_ND_OPTIONS: usize = 4;

/// The outcome for one frame the kernel sends (`vrrp_tc_egress` in `main.rs` counts it and
/// turns it into the verdict).
#[inline(always)]
pub fn egress(ctx: &TcContext) -> Counter {
    let Ok(eth) = ctx.load::<[u8; ETH_HLEN]>(0) else {
        return Counter::EgressMalformed;
    };
    let mut ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    let mut l3 = ETH_HLEN;
    if is_vlan(ethertype) {
        let Ok(tag) = ctx.load::<[u8; VLAN_HLEN]>(ETH_HLEN) else {
            return Counter::EgressMalformed;
        };
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        l3 += VLAN_HLEN;
    }
    match ethertype {
        ETH_P_ARP => arp(ctx, l3),
        ETH_P_IP => ipv4(ctx, l3),
        ETH_P_IPV6 => ipv6(ctx, l3, sub(&eth, ETH_SRC)),
        _ => Counter::EgressNotIp,
    }
}

/// The VMAC to send with when router (`family`, `vrid`) is owned and fresh; else the outcome:
/// for ARP / ND (`neigh`) a drop, for other packets untouched.
#[inline(always)]
fn claim(family: u8, vrid: u8, neigh: bool) -> Result<[u8; 6], Counter> {
    match (owner(family, vrid), neigh) {
        (Owner::Fresh { .. }, _) => Ok(vmac(family, vrid)),
        (Owner::NotOwned, true) => Err(Counter::EgressNeighDroppedNotOwned),
        (Owner::Stale, true) => Err(Counter::EgressNeighDroppedStale),
        (Owner::NotOwned, false) => Err(Counter::EgressVipNotOwned),
        (Owner::Stale, false) => Err(Counter::EgressVipStale),
    }
}

#[inline(always)]
fn set_eth_src(ctx: &TcContext, mac: &[u8; 6]) -> bool {
    ctx.store(ETH_SRC, mac, 0).is_ok()
}

/// Ethernet/IPv4 ARP, any operation, from a VIP: Ethernet source and sender MAC to the VMAC
/// (owned, fresh), else dropped.
#[inline(always)]
fn arp(ctx: &TcContext, l3: usize) -> Counter {
    let Ok(a) = ctx.load::<[u8; ARP_LEN]>(l3) else {
        return Counter::EgressMalformed;
    };
    // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
    if u32::from_be_bytes(sub(&a, 0)) != 0x0001_0800 || u16::from_be_bytes(sub(&a, 4)) != 0x0604 {
        return Counter::EgressNotIp;
    }
    let spa: [u8; 4] = sub(&a, 14);
    // SAFETY: plain lookup; the value is copied out at once.
    let Some(vrid) = (unsafe { VIPS_V4.get(&spa) }).map(|v| v.vrid) else {
        return Counter::EgressSrcNotVip;
    };
    let mac = match claim(FAMILY_IPV4, vrid, true) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if !set_eth_src(ctx, &mac) || ctx.store(l3 + 8, &mac, 0).is_err() {
        return Counter::EgressRewriteFailed;
    }
    Counter::EgressArpRewritten
}

#[inline(always)]
fn ipv4(ctx: &TcContext, l3: usize) -> Counter {
    let Ok(hdr) = ctx.load::<[u8; IPV4_MIN_HLEN]>(l3) else {
        return Counter::EgressMalformed;
    };
    if hdr[0] >> 4 != 4 {
        return Counter::EgressMalformed;
    }
    let src: [u8; 4] = sub(&hdr, 12);
    // SAFETY: plain lookup; the value is copied out at once.
    let Some(vrid) = (unsafe { VIPS_V4.get(&src) }).map(|v| v.vrid) else {
        return Counter::EgressSrcNotVip;
    };
    let mac = match claim(FAMILY_IPV4, vrid, false) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if !set_eth_src(ctx, &mac) {
        return Counter::EgressRewriteFailed;
    }
    Counter::EgressIpRewritten
}

/// IPv6 from a VIP: Ethernet source to the VMAC, and for RS / NS / NA the link-layer address
/// options that carry the interface MAC (`eth_src`: the frame's Ethernet source as it came). An
/// NA whose target is a VIP counts as from it, whatever its source. ND of a router not owned
/// with a fresh heartbeat is dropped.
#[inline(always)]
fn ipv6(ctx: &TcContext, l3: usize, eth_src: [u8; 6]) -> Counter {
    let Ok(hdr) = ctx.load::<[u8; IPV6_HLEN]>(l3) else {
        return Counter::EgressMalformed;
    };
    if hdr[0] >> 4 != 6 {
        return Counter::EgressMalformed;
    }
    // Neighbor Discovery directly after the fixed header (the kernel never puts extension
    // headers in front of ND).
    let l4 = l3 + IPV6_HLEN;
    let nd = if hdr[6] == IPPROTO_ICMPV6 {
        match ctx.load::<[u8; 4]>(l4) {
            Ok(icmp) if matches!(icmp[0], ICMPV6_RS | ICMPV6_NS | ICMPV6_NA) => icmp[0],
            _ => 0,
        }
    } else {
        0
    };
    let src: [u8; 16] = sub(&hdr, 8);
    // SAFETY: plain lookup; the value is copied out at once.
    let vrid = match (unsafe { VIPS_V6.get(&src) }).map(|v| v.vrid) {
        Some(v) => v,
        None if nd == ICMPV6_NA => {
            // The target follows type, code, checksum and flags.
            let Ok(target) = ctx.load::<[u8; 16]>(l4 + 8) else {
                return Counter::EgressSrcNotVip;
            };
            // SAFETY: as above.
            match (unsafe { VIPS_V6.get(&target) }).map(|v| v.vrid) {
                Some(v) => v,
                None => return Counter::EgressSrcNotVip,
            }
        }
        None => return Counter::EgressSrcNotVip,
    };
    let mac = match claim(FAMILY_IPV6, vrid, nd != 0) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if !set_eth_src(ctx, &mac) {
        return Counter::EgressRewriteFailed;
    }
    let fixed = match nd {
        ICMPV6_RS => RS_MIN_LEN,
        ICMPV6_NS | ICMPV6_NA => NS_MIN_LEN,
        _ => return Counter::EgressIpRewritten,
    };
    let iface = match IFACE.get(0) {
        Some(c) if !is_zero6(c.mac) => c.mac,
        _ => eth_src,
    };
    let end = l4 + u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    match nd_options(ctx, l4, fixed, end, iface, mac) {
        Ok(true) => Counter::EgressNdRewritten,
        Ok(false) => {
            count(Counter::EgressNdNoLladdr);
            Counter::EgressIpRewritten
        }
        Err(()) => Counter::EgressRewriteFailed,
    }
}

/// Walks the options of the ND message at `l4` (its options start `fixed` bytes in, it ends at
/// `end`) and rewrites every source / target link-layer address option equal to `iface` to
/// `vmac`, updating the ICMPv6 checksum. Ok(whether one was rewritten).
#[inline(always)]
fn nd_options(
    ctx: &TcContext,
    l4: usize,
    fixed: usize,
    end: usize,
    iface: [u8; 6],
    vmac: [u8; 6],
) -> Result<bool, ()> {
    let mut rewritten = false;
    let mut off = l4 + fixed;
    for _ in 0..MAX_ND_OPTIONS {
        if off + 8 > end {
            break;
        }
        let Ok(mut old) = ctx.load::<[u8; 8]>(off) else {
            break;
        };
        let units = old[1] as usize;
        if units == 0 {
            // Invalid (RFC 4861 §4.6): the receiver drops the message; nothing more to walk.
            break;
        }
        let lladdr: [u8; 6] = sub(&old, 2);
        if (old[0] == ND_OPT_SOURCE_LLADDR || old[0] == ND_OPT_TARGET_LLADDR)
            && units == 1
            && u32::from_ne_bytes(sub(&lladdr, 0)) == u32::from_ne_bytes(sub(&iface, 0))
            && u16::from_ne_bytes(sub(&lladdr, 4)) == u16::from_ne_bytes(sub(&iface, 4))
        {
            let mut new = old;
            new[2..8].copy_from_slice(&vmac);
            // SAFETY: two initialised 8-byte stack buffers (sizes multiples of 4).
            let diff =
                unsafe { bpf_csum_diff(old.as_mut_ptr().cast(), 8, new.as_mut_ptr().cast(), 8, 0) };
            if diff < 0
                || ctx.store(off, &new, 0).is_err()
                || ctx
                    .l4_csum_replace(l4 + 2, 0, diff as u32 as u64, 0)
                    .is_err()
            {
                return Err(());
            }
            rewritten = true;
        }
        off += units * 8;
    }
    Ok(rewritten)
}
