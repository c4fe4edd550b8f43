//! The XDP fast path of vrrp-agent.
//!
//! Every frame goes through a bounded parser (Ethernet, one optional 802.1Q/802.1ad tag, IPv4,
//! IPv6 or ARP) and ends in exactly one outcome; every frame bumps `Frames` and exactly one
//! outcome counter (see `vrrp_common::Counter`):
//!
//! * **VMAC acceptance** (before classification, not an outcome): a frame addressed to the VMAC
//!   of a virtual router we own (fresh heartbeat) gets its Ethernet destination rewritten to the
//!   interface's own MAC (`IFACE[0]`), so the kernel takes it as PACKET_HOST; then it is
//!   classified like any other frame. See [`accept_vmac`] for why rewrite.
//! * **VRRP** (IP protocol 112) for a virtual router configured in `VRIDS` is copied into the
//!   `EVENTS` ring buffer with its kernel receive time and consumed.
//! * **ARP** requests for an owned VIP are answered in place with the VMAC (`XDP_TX`).
//! * **Neighbor Solicitations** for an owned IPv6 VIP are turned in place into the Neighbor
//!   Advertisement `vrrp_agent::wire::NdpFrame::answer(ns, vmac, true)` would build (`XDP_TX`).
//! * **Accept_Mode**: other IP packets addressed to a VIP of an owned router without
//!   `ROUTER_ACCEPT` are dropped.
//! * **Not ours**: ARP requests / NS for a VIP (in `VIPS_V4` / `VIPS_V6`) of a router we do not
//!   own are dropped. A VIP in the maps is never the kernel's to answer: between the agent giving
//!   a router up and removing its VIPs from the interface (and whenever a crash leaves them
//!   there) the kernel would answer with the interface's real MAC and pull clients off the VMAC.
//! * **Fail-safe**: a router is only "owned" while the agent's heartbeat is fresh
//!   ([`owner`]). ARP requests / NS for the VIPs of an owned router whose heartbeat went stale
//!   are dropped: the agent is gone (SIGKILL), the VIP may still be configured on the interface,
//!   and the kernel would otherwise answer with the interface's real MAC — the dead node would
//!   keep claiming the VIP.
//!
//! The TC egress classifier in [`egress`] (same maps) makes what the kernel itself sends *from*
//! an owned VIP leave with the VMAC.
//!
//! Everything else is passed untouched. Nothing here can abort: a frame too short for what it
//! claims to be is passed and counted.
//!
//! Verifier notes: the program reads and writes the frame only through [`ptr_at`] /
//! [`ptr_at_mut`], with fixed-size chunks of at least 2 bytes (LLVM rewrites a 1-byte
//! `p + 1 > end` check into `p >= end`, which the verifier cannot use), fixed headers are read
//! before any variable-length check (a check implied by a later one gets optimised away), arrays
//! are compared word by word (no `memcmp`), and nothing indexes a slice with a run-time index
//! (no `panic_bounds_check`).
#![no_std]
#![no_main]

use core::{mem, ptr::addr_of_mut};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_csum_diff, bpf_ktime_get_ns, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len},
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};

mod egress;
use vrrp_common::{
    vmac, vrid_slot, AdvertEvent, Counter, IfaceConfig, RouterState, VipEntry, EVENTS_RING_BYTES,
    EVENT_FLAG_TRUNCATED, EVENT_FLAG_VLAN, FAMILY_IPV4, FAMILY_IPV6, IPPROTO_VRRP, MAX_VIPS,
    ROUTER_ACCEPT, ROUTER_OWNED, VRID_SLOTS, VRRP_PAYLOAD_MAX,
};

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

/// Non-zero at `vrid_slot(family, vrid)`: adverts of that virtual router go to user space.
#[map]
static VRIDS: Array<u32> = Array::with_max_entries(VRID_SLOTS, 0);

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
#[map]
static HEARTBEAT: Array<u64> = Array::with_max_entries(1, 0);

/// `[0]`: the attached interface's own MAC.
#[map]
static IFACE: Array<IfaceConfig> = Array::with_max_entries(1, 0);

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
/// Fixed part of a VRRP message (v2 and v3): version/type, VRID, priority, count, 2 bytes of
/// interval (v3) or auth type + interval (v2), checksum.
const VRRP_HLEN: usize = 8;
/// ARP for Ethernet/IPv4.
const ARP_LEN: usize = 28;
const IPPROTO_ICMPV6: u8 = 58;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
/// ICMPv6 types of Neighbor Discovery (RS, RA, NS, NA, Redirect): never subject to Accept_Mode.
const ICMPV6_ND_FIRST: u8 = 133;
const ICMPV6_ND_LAST: u8 = 137;
/// Fixed part of an NS: type, code, checksum, reserved, target.
const NS_MIN_LEN: usize = 24;
/// The NA we send: type, code, checksum, flags + reserved, target, one target link-layer
/// address option (type 2, length 1, the VMAC).
const NA_LEN: usize = 32;
const ND_HOP_LIMIT: u8 = 255;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LLADDR: u8 = 2;

const PASS: u32 = xdp_action::XDP_PASS;
const DROP: u32 = xdp_action::XDP_DROP;
const TX: u32 = xdp_action::XDP_TX;

#[xdp]
pub fn vrrp_xdp(ctx: XdpContext) -> u32 {
    let (action, outcome) = classify(&ctx);
    count(Counter::Frames);
    count(outcome);
    action
}

#[inline(always)]
fn count(c: Counter) {
    if let Some(p) = COUNTERS.get_ptr_mut(c as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *p += 1 };
    }
}

/// Pointer to a `T` at `off` bytes into the frame, if the whole `T` lies inside it.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    ptr_at_mut(ctx, off).map(|p| p as *const T)
}

/// Writable pointer to a `T` at `off` bytes into the frame, if the whole `T` lies inside it.
#[inline(always)]
fn ptr_at_mut<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

#[inline(always)]
fn load_be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    // SAFETY: ptr_at checked the bounds; the read is unaligned-safe.
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
fn load_bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    // SAFETY: ptr_at checked the bounds; [u8; N] has alignment 1.
    ptr_at::<[u8; N]>(ctx, off).map(|p| unsafe { *p })
}

/// `N` bytes of `a` from `off` (constant offsets only: the range check folds away).
#[inline(always)]
fn sub<const M: usize, const N: usize>(a: &[u8; M], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&a[off..off + N]);
    out
}

#[inline(always)]
fn eq4(a: [u8; 4], b: [u8; 4]) -> bool {
    u32::from_ne_bytes(a) == u32::from_ne_bytes(b)
}

#[inline(always)]
fn is_zero16(a: &[u8; 16]) -> bool {
    (u64::from_ne_bytes(sub(a, 0)) | u64::from_ne_bytes(sub(a, 8))) == 0
}

#[inline(always)]
fn is_zero6(a: [u8; 6]) -> bool {
    (u32::from_ne_bytes(sub(&a, 0)) | u16::from_ne_bytes(sub(&a, 4)) as u32) == 0
}

/// What the fast path may do for a virtual router right now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Not Master (or no such router). ARP/NS for its VIPs are dropped.
    NotOwned,
    /// Master, but the agent's heartbeat is older than the router's fail-safe bound: the agent is
    /// gone or stuck. Treated as not owned (ARP/NS for its VIPs dropped).
    Stale,
    /// Master and the agent is alive; `accept`: Accept_Mode.
    Fresh { accept: bool },
}

/// Ownership of virtual router (`family`, `vrid`), fail-safe included: fresh means
/// `bpf_ktime_get_ns() - HEARTBEAT[0] <= stale_after_ns`, or `stale_after_ns == 0` (no bound).
/// A heartbeat from the future (the subtraction wraps) counts as stale.
#[inline(always)]
fn owner(family: u8, vrid: u8) -> Owner {
    let Some(r) = ROUTERS.get(vrid_slot(family, vrid)) else {
        return Owner::NotOwned;
    };
    let flags = r.flags;
    let stale_after = r.stale_after_ns;
    if flags & ROUTER_OWNED == 0 {
        return Owner::NotOwned;
    }
    let accept = flags & ROUTER_ACCEPT != 0;
    if stale_after == 0 {
        return Owner::Fresh { accept };
    }
    let Some(hb) = HEARTBEAT.get(0) else {
        return Owner::Stale;
    };
    // Heartbeat first, clock second: a heartbeat written just before we read it is never "in
    // the future" of `now`.
    let hb = *hb;
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(hb) <= stale_after {
        Owner::Fresh { accept }
    } else {
        Owner::Stale
    }
}

/// VMAC acceptance: a frame addressed to the VMAC of a router we own gets its destination
/// rewritten to the interface's own MAC.
///
/// Why rewrite rather than add the VMAC to the NIC's unicast address list: the kernel classifies
/// a frame as PACKET_HOST only if its destination is `dev->dev_addr`; a secondary unicast
/// address (`dev_uc_add`, `bridge fdb add ... self`) only makes the NIC *receive* it, after
/// which the stack still sees PACKET_OTHERHOST and drops it (that is why keepalived uses a
/// macvlan with the VMAC as its own address). Rewriting here needs no extra device, follows
/// ownership and the fail-safe atomically with the ARP/NS answers (one map, one heartbeat), and
/// stops the moment the router is no longer owned or the agent is gone.
///
/// On a NIC that filters unicast in hardware the frame must still get *to* XDP: there the VMAC
/// has to be in the NIC's unicast filter as well — user space's job while it owns the router
/// (`bridge fdb add VMAC dev IF self permanent`, i.e. RTM_NEWNEIGH AF_BRIDGE NTF_SELF, which
/// ends in `dev_uc_add`; or promiscuous mode). veth, bridge ports and promiscuous devices see
/// every frame and need nothing.
#[inline(always)]
fn accept_vmac(ctx: &XdpContext) {
    let Some(dst) = ptr_at_mut::<[u8; 6]>(ctx, 0) else {
        return;
    };
    // SAFETY: in bounds (ptr_at_mut).
    let d = unsafe { *dst };
    if u32::from_be_bytes(sub(&d, 0)) != 0x0000_5e00 {
        return;
    }
    let family = match d[4] {
        1 => FAMILY_IPV4,
        2 => FAMILY_IPV6,
        _ => return,
    };
    match owner(family, d[5]) {
        Owner::Fresh { .. } => {
            let mac = match IFACE.get(0) {
                Some(c) => c.mac,
                None => [0; 6],
            };
            if is_zero6(mac) {
                count(Counter::VmacNoIfaceMac);
                return;
            }
            // SAFETY: in bounds (ptr_at_mut); [u8; 6] has alignment 1.
            unsafe { dst.write(mac) };
            count(Counter::VmacRewritten);
        }
        _ => count(Counter::VmacNotOwned),
    }
}

/// What the IP layer told us about a VRRP message.
struct VrrpFrame {
    family: u8,
    ttl: u8,
    vrrp_off: usize,
    payload_len: u16,
    src_ip: [u8; 16],
    dst_ip: [u8; 16],
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> (u32, Counter) {
    let Some(mut ethertype) = load_be16(ctx, 12) else {
        return (PASS, Counter::MalformedL2);
    };
    if ctx.data() + ETH_HLEN > ctx.data_end() {
        return (PASS, Counter::MalformedL2);
    }
    let mut l3 = ETH_HLEN;
    let mut vlan: Option<u16> = None;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let (Some(tci), Some(inner)) = (load_be16(ctx, 14), load_be16(ctx, 16)) else {
            return (PASS, Counter::MalformedL2);
        };
        count(Counter::VlanTagged);
        vlan = Some(tci & 0x0fff);
        ethertype = inner;
        l3 += VLAN_HLEN;
    }

    accept_vmac(ctx);

    let frame = match ethertype {
        ETH_P_ARP => return arp(ctx, l3),
        ETH_P_IP => match ipv4(ctx, l3) {
            Ok(f) => f,
            Err(r) => return r,
        },
        ETH_P_IPV6 => match ipv6(ctx, l3) {
            Ok(f) => f,
            Err(r) => return r,
        },
        _ => return (PASS, Counter::PassNotIp),
    };
    to_user(ctx, frame, vlan)
}

/// ARP: answer requests for owned VIPs in place (see `vrrp_agent::wire::arp` for the layout).
#[inline(always)]
fn arp(ctx: &XdpContext, l3: usize) -> (u32, Counter) {
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
    match owner(FAMILY_IPV4, vrid) {
        // Not ours to answer, and not the kernel's either: it may still have the VIP configured
        // (release in progress, a crashed agent) and would answer with the real MAC.
        Owner::NotOwned => (DROP, Counter::ArpVipNotOwned),
        Owner::Stale => (DROP, Counter::VipStaleDropped),
        Owner::Fresh { .. } => {
            let mac = vmac(FAMILY_IPV4, vrid);
            let Some(eth) = ptr_at_mut::<[u8; 12]>(ctx, 0) else {
                return (PASS, Counter::MalformedL2);
            };
            // SAFETY: in bounds (ptr_at_mut).
            let requester: [u8; 6] = sub(&unsafe { *eth }, 6);
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

/// Accept_Mode for an IP packet addressed to a VIP of router (`family`, `vrid`).
#[inline(always)]
fn accept_mode(family: u8, vrid: u8) -> (u32, Counter) {
    match owner(family, vrid) {
        Owner::Fresh { accept: true } => (PASS, Counter::VipAccepted),
        Owner::Fresh { accept: false } => (DROP, Counter::VipNotAccepted),
        _ => (PASS, Counter::PassIpOther),
    }
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

/// A Neighbor Solicitation (`hdr`: its IPv6 header at `l3`): answer it for an owned VIP by
/// turning the frame into the Neighbor Advertisement `NdpFrame::answer(ns, vmac, true)` builds
/// (see `vrrp_agent::wire::ndp` for the layout), resized to exactly that length.
#[inline(always)]
fn neighbor_solicit(ctx: &XdpContext, l3: usize, hdr: &[u8; IPV6_HLEN]) -> (u32, Counter) {
    let Some(ns) = load_bytes::<NS_MIN_LEN>(ctx, l3 + IPV6_HLEN) else {
        return (PASS, Counter::MalformedL3);
    };
    let target: [u8; 16] = sub(&ns, 8);
    // SAFETY: plain lookup; the value is copied out at once.
    let Some(vrid) = (unsafe { VIPS_V6.get(&target) }).map(|v| v.vrid) else {
        return (PASS, Counter::PassIpOther);
    };
    let src: [u8; 16] = sub(hdr, 8);
    let dst: [u8; 16] = sub(hdr, 24);
    let payload_len = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    let dad = is_zero16(&src);
    // RFC 4861 §7.1.1 (the checksum is left to the kernel: we answer what it would answer).
    // A DAD probe must go to a solicited-node group, ff02::1:ff00:0/104.
    let to_solicited_node = u64::from_be_bytes(sub(&dst, 0)) == 0xff02_0000_0000_0000
        && u32::from_be_bytes(sub(&dst, 8)) == 1
        && dst[12] == 0xff;
    if hdr[7] != ND_HOP_LIMIT
        || ns[1] != 0
        || payload_len < NS_MIN_LEN
        || ctx.data() + l3 + IPV6_HLEN + payload_len > ctx.data_end()
        || (dad && !to_solicited_node)
    {
        return (PASS, Counter::NsInvalid);
    }
    match owner(FAMILY_IPV6, vrid) {
        // As for ARP: never leave a VIP's NS to the kernel.
        Owner::NotOwned => return (DROP, Counter::NsVipNotOwned),
        Owner::Stale => return (DROP, Counter::VipStaleDropped),
        Owner::Fresh { .. } => {}
    }
    let mac = vmac(FAMILY_IPV6, vrid);
    let requester: [u8; 6] = match load_bytes::<6>(ctx, 6) {
        Some(m) => m,
        None => return (PASS, Counter::MalformedL2),
    };

    // Resize the frame to exactly the NA (an NS with no option — DAD — is 8 bytes shorter,
    // one with a nonce or several options longer). Called even for a zero delta so that every
    // packet pointer below is derived after the call.
    // SAFETY: ctx.ctx is the program's context.
    let len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) } as i64;
    let delta = (l3 + IPV6_HLEN + NA_LEN) as i64 - len;
    // SAFETY: as above.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        return (PASS, Counter::NaResizeFailed);
    }

    let (Some(eth), Some(ip)) = (
        ptr_at_mut::<[u8; 12]>(ctx, 0),
        ptr_at_mut::<[u8; IPV6_HLEN + NA_LEN]>(ctx, l3),
    ) else {
        // Cannot happen: the frame was just sized to hold both. The frame is now cut short, so
        // dropping it is all that is left.
        return (DROP, Counter::NaResizeFailed);
    };
    let mut e = [0u8; 12];
    if dad {
        e[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    } else {
        e[..6].copy_from_slice(&requester);
    }
    e[6..].copy_from_slice(&mac);

    let mut na = [0u8; IPV6_HLEN + NA_LEN];
    // Version 6, traffic class 0, flow label 0; payload length; ICMPv6; hop limit 255.
    na[0] = 0x60;
    na[4..6].copy_from_slice(&(NA_LEN as u16).to_be_bytes());
    na[6] = IPPROTO_ICMPV6;
    na[7] = ND_HOP_LIMIT;
    na[8..24].copy_from_slice(&target);
    if dad {
        // ff02::1, all nodes.
        na[24] = 0xff;
        na[25] = 0x02;
        na[39] = 0x01;
    } else {
        na[24..40].copy_from_slice(&src);
    }
    let m = IPV6_HLEN;
    na[m] = ICMPV6_NA;
    // na[m + 1] code 0, na[m + 2..m + 4] checksum (below).
    na[m + 4] = NA_FLAG_ROUTER | NA_FLAG_OVERRIDE | if dad { 0 } else { NA_FLAG_SOLICITED };
    na[m + 8..m + 24].copy_from_slice(&target);
    na[m + 24] = ND_OPT_TARGET_LLADDR;
    na[m + 25] = 1;
    na[m + 26..m + 32].copy_from_slice(&mac);

    // SAFETY: both in bounds (ptr_at_mut), alignment 1.
    unsafe {
        eth.write(e);
        ip.write(na);
    }
    // ICMPv6 checksum: pseudo-header (src, dst, upper-layer length 32, next header 58) + the
    // message. src, dst and the message are contiguous in the frame (bytes 8..72 of the IPv6
    // packet); the length and next header words come from the stack.
    let mut tail: [u8; 8] = [0, 0, 0, NA_LEN as u8, 0, 0, 0, IPPROTO_ICMPV6];
    // SAFETY: both regions are readable for the sizes given (packet checked above, stack array),
    // sizes are multiples of 4.
    let sum = unsafe {
        let s = bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            (ip as *mut u8).add(8).cast(),
            (IPV6_HLEN - 8 + NA_LEN) as u32,
            0,
        );
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            tail.as_mut_ptr().cast(),
            tail.len() as u32,
            s as u32,
        )
    };
    let csum = !fold(sum as u64);
    // SAFETY: in bounds (ptr_at_mut above); the checksum is stored in the byte order it was
    // summed in.
    unsafe {
        (ip as *mut u8)
            .add(IPV6_HLEN + 2)
            .cast::<[u8; 2]>()
            .write(csum.to_ne_bytes())
    };
    (TX, Counter::NsReplied)
}

/// Folds a one's-complement partial sum to 16 bits.
#[inline(always)]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Hands a VRRP message of a configured virtual router to user space.
#[inline(always)]
fn to_user(ctx: &XdpContext, frame: VrrpFrame, vlan: Option<u16>) -> (u32, Counter) {
    // The fixed VRRP header must be there before we look at the VRID (read first: a check
    // implied by a later, variable-length one would be optimised away and the verifier could
    // not follow), and the IP header's length must fit in the frame (trailing Ethernet padding
    // is fine).
    let Some(vrrp_hdr) = load_bytes::<VRRP_HLEN>(ctx, frame.vrrp_off) else {
        return (PASS, Counter::MalformedVrrp);
    };
    if (frame.payload_len as usize) < VRRP_HLEN {
        return (PASS, Counter::MalformedVrrp);
    }
    if ctx.data() + frame.vrrp_off + frame.payload_len as usize > ctx.data_end() {
        return (PASS, Counter::MalformedL3);
    }
    let vrid = vrrp_hdr[1];
    match VRIDS.get(vrid_slot(frame.family, vrid)) {
        Some(v) if *v != 0 => {}
        _ => return (PASS, Counter::VrrpOtherVrid),
    }

    // A full ring is only counted: the agent reads the counter and logs a rate-limited
    // summary (a log line per frame here would turn an advert flood into a log flood).
    let Some(mut entry) = EVENTS.reserve::<AdvertEvent>(0) else {
        return (PASS, Counter::RingbufFull);
    };
    let ev = entry.as_mut_ptr();
    let captured = copy_payload(ctx, frame.vrrp_off, frame.payload_len as usize, ev);
    let mut flags = 0u8;
    if vlan.is_some() {
        flags |= EVENT_FLAG_VLAN;
    }
    if captured < frame.payload_len as usize {
        flags |= EVENT_FLAG_TRUNCATED;
        count(Counter::VrrpTruncatedCapture);
    }
    // SAFETY: `ev` points at reserved ring-buffer memory sized for an AdvertEvent; every field
    // is written through a raw pointer (no reference to uninitialised memory is created).
    unsafe {
        addr_of_mut!((*ev).rx_time_ns).write(bpf_ktime_get_ns());
        addr_of_mut!((*ev).ifindex).write((*ctx.ctx).ingress_ifindex);
        addr_of_mut!((*ev).payload_len).write(frame.payload_len);
        addr_of_mut!((*ev).captured_len).write(captured as u16);
        addr_of_mut!((*ev).src_mac).write(load_bytes::<6>(ctx, 6).unwrap_or([0; 6]));
        addr_of_mut!((*ev).family).write(frame.family);
        addr_of_mut!((*ev).ttl).write(frame.ttl);
        addr_of_mut!((*ev).vlan_id).write(vlan.unwrap_or(0));
        addr_of_mut!((*ev).flags).write(flags);
        addr_of_mut!((*ev)._pad0).write(0);
        addr_of_mut!((*ev)._pad1).write(0);
        addr_of_mut!((*ev).src_ip).write(frame.src_ip);
        addr_of_mut!((*ev).dst_ip).write(frame.dst_ip);
    }
    entry.submit(0);
    (DROP, Counter::VrrpToUser)
}

/// Copies up to `min(len, VRRP_PAYLOAD_MAX)` bytes of the VRRP message into the event, stopping
/// at the end of the frame, and returns how many bytes were copied.
///
/// The copy goes in 4-byte words: every well-formed VRRP message is a multiple of 4 bytes long
/// (8-byte header, 4- or 16-byte addresses, v2's 8-byte password), so a valid message is always
/// captured whole. (Word loads also keep the bounds check in a form the verifier understands:
/// LLVM rewrites a 1-byte `p + 1 > end` into `p >= end`, which the verifier cannot use.)
#[inline(always)]
fn copy_payload(ctx: &XdpContext, off: usize, len: usize, ev: *mut AdvertEvent) -> usize {
    let mut i = 0usize;
    while i < VRRP_PAYLOAD_MAX {
        if i + 4 > len {
            break;
        }
        let Some(w) = load_bytes::<4>(ctx, off + i) else {
            break;
        };
        // SAFETY: i + 4 <= VRRP_PAYLOAD_MAX, so the word lies inside the reserved event's payload.
        unsafe {
            (ev as *mut u8)
                .add(mem::offset_of!(AdvertEvent, payload) + i)
                .cast::<[u8; 4]>()
                .write_unaligned(w)
        };
        i += 4;
    }
    i
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
