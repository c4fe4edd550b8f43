//! Bounded parsing helpers shared by every feature: header constants, frame access that the
//! verifier can follow, and fixed-size array helpers.
//!
//! Verifier notes: XDP features read and write the frame only through [`ptr_at`] /
//! [`ptr_at_mut`], with fixed-size chunks of at least 2 bytes (LLVM rewrites a 1-byte
//! `p + 1 > end` check into `p >= end`, which the verifier cannot use), fixed headers are read
//! before any variable-length check (a check implied by a later one gets optimised away), arrays
//! are compared word by word (no `memcmp`), and nothing indexes a slice with a run-time index
//! (no `panic_bounds_check`).
use core::mem;

use aya_ebpf::programs::XdpContext;
use vrrp_common::Counter;

use crate::counter::count;

pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const IPV4_MIN_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
/// ARP for Ethernet/IPv4.
pub const ARP_LEN: usize = 28;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const ICMPV6_NS: u8 = 135;
pub const ICMPV6_NA: u8 = 136;
/// Fixed part of an NS (and of an NA): type, code, checksum, reserved / flags, target.
pub const NS_MIN_LEN: usize = 24;
pub const ND_OPT_TARGET_LLADDR: u8 = 2;

/// Whether `ethertype` is an 802.1Q / 802.1ad tag (one tag is parsed, in XDP and egress alike).
#[inline(always)]
pub fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// Pointer to a `T` at `off` bytes into the frame, if the whole `T` lies inside it.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    ptr_at_mut(ctx, off).map(|p| p as *const T)
}

/// Writable pointer to a `T` at `off` bytes into the frame, if the whole `T` lies inside it.
#[inline(always)]
pub fn ptr_at_mut<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

#[inline(always)]
pub fn load_be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    // SAFETY: ptr_at checked the bounds; the read is unaligned-safe.
    ptr_at::<[u8; 2]>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
pub fn load_bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    // SAFETY: ptr_at checked the bounds; [u8; N] has alignment 1.
    ptr_at::<[u8; N]>(ctx, off).map(|p| unsafe { *p })
}

/// `N` bytes of `a` from `off` (constant offsets only: the range check folds away).
#[inline(always)]
pub fn sub<const M: usize, const N: usize>(a: &[u8; M], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&a[off..off + N]);
    out
}

#[inline(always)]
pub fn eq4(a: [u8; 4], b: [u8; 4]) -> bool {
    u32::from_ne_bytes(a) == u32::from_ne_bytes(b)
}

#[inline(always)]
pub fn is_zero16(a: &[u8; 16]) -> bool {
    (u64::from_ne_bytes(sub(a, 0)) | u64::from_ne_bytes(sub(a, 8))) == 0
}

#[inline(always)]
pub fn is_zero6(a: [u8; 6]) -> bool {
    (u32::from_ne_bytes(sub(&a, 0)) | u16::from_ne_bytes(sub(&a, 4)) as u32) == 0
}

/// A group (multicast or broadcast) MAC address: the I/G bit, the low bit of the first byte.
/// A station's own (source) address never has it.
#[inline(always)]
pub fn is_group(mac: [u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// The link layer of an XDP frame.
pub struct L2 {
    /// The ethertype after the tag, if there is one.
    pub ethertype: u16,
    /// Where the network header starts.
    pub l3: usize,
    /// The VLAN id of the tag, if there is one.
    pub vlan: Option<u16>,
}

/// Ethernet header and one optional 802.1Q / 802.1ad tag (counted as `VlanTagged`); `None`: the
/// frame is too short for what it claims (`MalformedL2`).
#[inline(always)]
pub fn l2(ctx: &XdpContext) -> Option<L2> {
    let mut ethertype = load_be16(ctx, 12)?;
    if ctx.data() + ETH_HLEN > ctx.data_end() {
        return None;
    }
    let mut l3 = ETH_HLEN;
    let mut vlan: Option<u16> = None;
    if is_vlan(ethertype) {
        let (Some(tci), Some(inner)) = (load_be16(ctx, 14), load_be16(ctx, 16)) else {
            return None;
        };
        count(Counter::VlanTagged);
        vlan = Some(tci & 0x0fff);
        ethertype = inner;
        l3 += VLAN_HLEN;
    }
    Some(L2 {
        ethertype,
        l3,
        vlan,
    })
}
