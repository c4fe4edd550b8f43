//! The XDP fast path of vrrp-agent.
//!
//! v0: classify every frame with a bounded parser (Ethernet, one optional 802.1Q/802.1ad tag,
//! IPv4 or IPv6, ARP). VRRP (IP protocol 112) for a virtual router configured in `VRIDS` is copied
//! into the `EVENTS` ring buffer with its kernel receive time and consumed; everything else is
//! passed untouched. Every frame bumps `Frames` and exactly one outcome counter.
//!
//! Nothing here can abort: a frame too short for what it claims to be is passed and counted.
#![no_std]
#![no_main]

use core::{mem, ptr::addr_of_mut};

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use aya_log_ebpf::warn;
use vrrp_common::{
    vrid_slot, AdvertEvent, Counter, IfaceConfig, RouterState, VipEntry, EVENTS_RING_BYTES,
    EVENT_FLAG_TRUNCATED, EVENT_FLAG_VLAN, FAMILY_IPV4, FAMILY_IPV6, IPPROTO_VRRP, MAX_VIPS,
    VRID_SLOTS, VRRP_PAYLOAD_MAX,
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
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
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
    let pass = xdp_action::XDP_PASS;
    let Some(mut ethertype) = load_be16(ctx, 12) else {
        return (pass, Counter::MalformedL2);
    };
    if ctx.data() + ETH_HLEN > ctx.data_end() {
        return (pass, Counter::MalformedL2);
    }
    let mut l3 = ETH_HLEN;
    let mut vlan: Option<u16> = None;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let (Some(tci), Some(inner)) = (load_be16(ctx, 14), load_be16(ctx, 16)) else {
            return (pass, Counter::MalformedL2);
        };
        count(Counter::VlanTagged);
        vlan = Some(tci & 0x0fff);
        ethertype = inner;
        l3 += VLAN_HLEN;
    }

    let frame = match ethertype {
        ETH_P_ARP => return (pass, Counter::ArpSeen),
        ETH_P_IP => match parse_ipv4(ctx, l3) {
            Ok(f) => f,
            Err(c) => return (pass, c),
        },
        ETH_P_IPV6 => match parse_ipv6(ctx, l3) {
            Ok(f) => f,
            Err(c) => return (pass, c),
        },
        _ => return (pass, Counter::PassNotIp),
    };

    // The fixed VRRP header must be there before we look at the VRID (read first: a check
    // implied by a later, variable-length one would be optimised away and the verifier could
    // not follow), and the IP header's length must fit in the frame (trailing Ethernet padding
    // is fine).
    let Some(vrrp_hdr) = load_bytes::<VRRP_HLEN>(ctx, frame.vrrp_off) else {
        return (pass, Counter::MalformedVrrp);
    };
    if (frame.payload_len as usize) < VRRP_HLEN {
        return (pass, Counter::MalformedVrrp);
    }
    if ctx.data() + frame.vrrp_off + frame.payload_len as usize > ctx.data_end() {
        return (pass, Counter::MalformedL3);
    }
    let vrid = vrrp_hdr[1];
    match VRIDS.get(vrid_slot(frame.family, vrid)) {
        Some(v) if *v != 0 => {}
        _ => return (pass, Counter::VrrpOtherVrid),
    }

    let Some(mut entry) = EVENTS.reserve::<AdvertEvent>(0) else {
        warn!(
            ctx,
            "ring buffer full: VRRP advert for VRID {} passed to the stack", vrid
        );
        return (pass, Counter::RingbufFull);
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
    (xdp_action::XDP_DROP, Counter::VrrpToUser)
}

#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, l3: usize) -> Result<VrrpFrame, Counter> {
    let Some(hdr) = load_bytes::<IPV4_MIN_HLEN>(ctx, l3) else {
        return Err(Counter::MalformedL3);
    };
    if hdr[0] >> 4 != 4 {
        return Err(Counter::MalformedL3);
    }
    let ihl = ((hdr[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if ihl < IPV4_MIN_HLEN || total_len < ihl {
        return Err(Counter::MalformedL3);
    }
    if hdr[9] != IPPROTO_VRRP {
        return Err(Counter::PassIpOther);
    }
    // More-fragments flag or a non-zero fragment offset.
    if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
        return Err(Counter::VrrpFragment);
    }
    let mut src_ip = [0u8; 16];
    let mut dst_ip = [0u8; 16];
    src_ip[..4].copy_from_slice(&hdr[12..16]);
    dst_ip[..4].copy_from_slice(&hdr[16..20]);
    Ok(VrrpFrame {
        family: FAMILY_IPV4,
        ttl: hdr[8],
        vrrp_off: l3 + ihl,
        payload_len: (total_len - ihl) as u16,
        src_ip,
        dst_ip,
    })
}

#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, l3: usize) -> Result<VrrpFrame, Counter> {
    let Some(hdr) = load_bytes::<8>(ctx, l3) else {
        return Err(Counter::MalformedL3);
    };
    if hdr[0] >> 4 != 6 {
        return Err(Counter::MalformedL3);
    }
    // VRRP is carried directly after the fixed header; anything else (including extension
    // headers) is not ours.
    if hdr[6] != IPPROTO_VRRP {
        return Err(Counter::PassIpOther);
    }
    let (Some(src_ip), Some(dst_ip)) = (
        load_bytes::<16>(ctx, l3 + 8),
        load_bytes::<16>(ctx, l3 + 24),
    ) else {
        return Err(Counter::MalformedL3);
    };
    Ok(VrrpFrame {
        family: FAMILY_IPV6,
        ttl: hdr[7],
        vrrp_off: l3 + IPV6_HLEN,
        payload_len: u16::from_be_bytes([hdr[4], hdr[5]]),
        src_ip,
        dst_ip,
    })
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
