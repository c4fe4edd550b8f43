//! Advert capture: a VRRP message (IP protocol 112, over IPv4 or IPv6) of a virtual router
//! configured in `VRIDS` is copied into the `EVENTS` ring buffer with its kernel receive time
//! and consumed (`XDP_DROP`); one of another virtual router is passed.
//!
//! # Wake-ups: only for adverts that may need an answer now
//!
//! Every advert goes into the ring, but only some wake the agent (CPU floor, issue 11). For a
//! virtual router marked `VRID_QUIET` in `VRIDS` (election mode; monitor mode logs every advert
//! as it comes and leaves it clear), a *routine* advert is submitted with `BPF_RB_NO_WAKEUP`: one equal to the last advert of its
//! virtual router this CPU handed up (`LAST_ADVERTS`: IP source address and the 8-byte fixed
//! VRRP header, whose checksum covers the address list), of a router we do not own
//! (`ROUTER_OWNED` clear), with a priority other than 0. It waits in the ring: the agent drains
//! every ring whenever it wakes, before the core judges any timer (its Master_Down_Timer
//! included), and the core runs that timer from each advert's kernel receive time, so a Backup
//! wakes about once per Master_Down_Interval instead of once per advert and decides exactly as
//! before. Everything else (a new sender, a changed priority, interval or address list,
//! priority 0 from a master stepping down, any advert while we are Master, the first advert on
//! each CPU, any advert once a quarter of the ring is waiting) is submitted with
//! `BPF_RB_FORCE_WAKEUP`: not the default flag, whose adaptive notification wakes only a
//! reader that has caught up, and with routine records unread before it the reader has not.
//! The VLAN tag and the source MAC are not compared: an advert equal in all else is read at the
//! next wake-up, in order, like any other.
use core::{mem, ptr::addr_of_mut};

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_ns,
    programs::XdpContext,
};
use vrrp_common::{
    vrid_slot, AdvertEvent, Counter, LastAdvert, EVENTS_RING_BYTES, EVENT_FLAG_TRUNCATED,
    EVENT_FLAG_VLAN, ROUTER_OWNED, VRID_QUIET, VRRP_PAYLOAD_MAX,
};

use crate::{counter::count, parse::load_bytes, DROP, EVENTS, LAST_ADVERTS, PASS, ROUTERS, VRIDS};

/// Fixed part of a VRRP message (v2 and v3): version/type, VRID, priority, count, 2 bytes of
/// interval (v3) or auth type + interval (v2), checksum.
const VRRP_HLEN: usize = 8;

/// A routine advert still wakes the agent once this much is waiting in the ring (a quarter of
/// it): the ring never fills with adverts nobody was woken for.
const QUIET_RING_BYTES: u64 = EVENTS_RING_BYTES as u64 / 4;

/// What the IP layer told us about a VRRP message.
pub struct VrrpFrame {
    pub family: u8,
    pub ttl: u8,
    pub vrrp_off: usize,
    pub payload_len: u16,
    pub src_ip: [u8; 16],
    pub dst_ip: [u8; 16],
}

/// Hands a VRRP message of a configured virtual router to user space.
#[inline(always)]
pub fn to_user(ctx: &XdpContext, frame: VrrpFrame, vlan: Option<u16>) -> (u32, Counter) {
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
    let slot = vrid_slot(frame.family, vrid);
    let quiet_ok = match VRIDS.get(slot) {
        Some(v) if *v != 0 => *v & VRID_QUIET != 0,
        _ => return (PASS, Counter::VrrpOtherVrid),
    };
    let seen = LastAdvert::new(&frame.src_ip, &vrrp_hdr);
    let routine = quiet_ok
        && vrrp_hdr[2] != 0
        && !ROUTERS
            .get(slot)
            .is_some_and(|r| r.flags & ROUTER_OWNED != 0)
        && LAST_ADVERTS.get(slot).is_some_and(|l| *l == seen)
        && EVENTS.query(BPF_RB_AVAIL_DATA as u64) < QUIET_RING_BYTES;

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
    if let Some(last) = LAST_ADVERTS.get_ptr_mut(slot) {
        // SAFETY: this CPU's slot; nothing else runs on this CPU meanwhile.
        unsafe { *last = seen };
    }
    if routine {
        count(Counter::VrrpQuiet);
        entry.submit(BPF_RB_NO_WAKEUP as u64);
    } else {
        entry.submit(BPF_RB_FORCE_WAKEUP as u64);
    }
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
