//! NS/NA responder: a Neighbor Solicitation for a VIP of an owned router is turned in place into
//! the Neighbor Advertisement `vrrp_agent::wire::NdpFrame::answer(ns, vmac, true)` would build
//! (`XDP_TX`); an NS for a VIP of a router not owned (or owned with a stale heartbeat) is
//! dropped, never left to the kernel. An NS for a VIP from a group (multicast/broadcast)
//! hardware address — Ethernet source or source link-layer address option — is dropped whatever
//! the router's state (`Counter::GroupSenderDropped` says why).
use aya_ebpf::{
    helpers::{bpf_csum_diff, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use vrrp_common::{vmac, Counter, FAMILY_IPV6};

use crate::{
    owner::{owner, Owner},
    parse::{
        is_group, is_zero16, load_bytes, ptr_at_mut, sub, ICMPV6_NA, IPPROTO_ICMPV6, IPV6_HLEN,
        ND_OPT_TARGET_LLADDR, NS_MIN_LEN,
    },
    DROP, PASS, TX, VIPS_V6,
};

/// The NA we send: type, code, checksum, flags + reserved, target, one target link-layer
/// address option (type 2, length 1, the VMAC).
const NA_LEN: usize = 32;
const ND_HOP_LIMIT: u8 = 255;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_SOURCE_LLADDR: u8 = 1;
/// Options of an NS looked at (a Linux NS has at most two: source link-layer address and a DAD
/// nonce); any further ones are not inspected.
const NS_OPTS_MAX: usize = 4;

/// What the options of an NS say, as far as [`NS_OPTS_MAX`] of them are read.
enum NsOpts {
    Fine,
    /// RFC 4861 §7.1.1: an option of length 0, options not filling the message, or a source
    /// link-layer address option in a DAD probe.
    Invalid,
    /// A source link-layer address option holding a group address.
    GroupSender,
}

/// Walks the options of an NS, `start..end` bytes into the frame (the IPv6 payload, checked to
/// lie inside the frame), read with `bpf_xdp_load_bytes` (any offset, nothing for the verifier
/// to track).
#[inline(always)]
fn ns_options(ctx: &XdpContext, start: usize, end: usize, dad: bool) -> NsOpts {
    let mut off = start;
    for _ in 0..NS_OPTS_MAX {
        if off >= end {
            return NsOpts::Fine;
        }
        let mut opt = [0u8; 8];
        // SAFETY: ctx.ctx is the program's context; the buffer is a stack array of 8 bytes.
        if off + 8 > end
            || unsafe { bpf_xdp_load_bytes(ctx.ctx, off as u32, opt.as_mut_ptr().cast(), 8) } != 0
        {
            return NsOpts::Invalid;
        }
        let len = opt[1] as usize * 8;
        if len == 0 || off + len > end {
            return NsOpts::Invalid;
        }
        if opt[0] == ND_OPT_SOURCE_LLADDR {
            if dad {
                return NsOpts::Invalid;
            }
            if is_group(sub(&opt, 2)) {
                return NsOpts::GroupSender;
            }
        }
        off += len;
    }
    NsOpts::Fine
}

/// A Neighbor Solicitation (`hdr`: its IPv6 header at `l3`): answer it for an owned VIP by
/// turning the frame into the Neighbor Advertisement `NdpFrame::answer(ns, vmac, true)` builds
/// (see `vrrp_agent::wire::ndp` for the layout), resized to exactly that length.
#[inline(always)]
pub fn neighbor_solicit(ctx: &XdpContext, l3: usize, hdr: &[u8; IPV6_HLEN]) -> (u32, Counter) {
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
        // The source of an NS is never multicast (RFC 4861 §7.1.1, RFC 4291 §2.7): the NA
        // would go to a group.
        || src[0] == 0xff
    {
        return (PASS, Counter::NsInvalid);
    }
    // Read with the helper: a packet pointer here would reuse a bounds check LLVM deems done
    // earlier, which the verifier no longer has.
    let mut requester = [0u8; 6];
    // SAFETY: ctx.ctx is the program's context; the buffer is a stack array of 6 bytes.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, 6, requester.as_mut_ptr().cast(), 6) } != 0 {
        return (PASS, Counter::MalformedL2);
    }
    // The NA goes to the Ethernet source; neither it nor the sender's link-layer address may
    // be a group address. Dropped, not passed: the kernel would answer it.
    if is_group(requester) {
        return (DROP, Counter::GroupSenderDropped);
    }
    let opts_start = l3 + IPV6_HLEN + NS_MIN_LEN;
    match ns_options(ctx, opts_start, l3 + IPV6_HLEN + payload_len, dad) {
        NsOpts::Fine => {}
        NsOpts::Invalid => return (PASS, Counter::NsInvalid),
        NsOpts::GroupSender => return (DROP, Counter::GroupSenderDropped),
    }
    match owner(FAMILY_IPV6, vrid) {
        // As for ARP: never leave a VIP's NS to the kernel.
        Owner::NotOwned => return (DROP, Counter::NsVipNotOwned),
        Owner::Stale => return (DROP, Counter::VipStaleDropped),
        Owner::Fresh { .. } => {}
    }
    let mac = vmac(FAMILY_IPV6, vrid);

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
