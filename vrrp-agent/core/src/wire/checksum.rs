//! The Internet checksum (RFC 1071) and the IPv4 / IPv6 pseudo-headers VRRP v3 sums over.
//!
//! smoltcp has the same routine but keeps it crate-private (`smoltcp::wire::ip::checksum` is
//! not exported), so the ~20 lines live here.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number / IPv6 next header of VRRP.
pub use crate::vocab::IPPROTO_VRRP;

/// Add `data` to a running 32-bit one's complement accumulator, big-endian 16-bit words,
/// an odd trailing byte padded with zero (RFC 1071 §4.1).
pub fn accumulate(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        // Fold early so the accumulator can never overflow, whatever the input length.
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// Fold the accumulator to 16 bits and take the one's complement: the value to put in a
/// checksum field (computed with that field zeroed), or 0 when verifying a correct packet.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Checksum of `data` alone (VRRP v2; v3 with keepalived's `v3_checksum_as_v2`).
pub fn checksum(data: &[u8]) -> u16 {
    finish(accumulate(0, data))
}

/// Accumulator seeded with the IPv4 pseudo-header (RFC 768 / RFC 9568 §5.2.8):
/// src(4) dst(4) zero(1) protocol(1) upper-layer length(2).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc = accumulate(acc, &[0, proto]);
    accumulate(acc, &len.to_be_bytes())
}

/// Accumulator seeded with the IPv6 pseudo-header (RFC 8200 §8.1):
/// src(16) dst(16) upper-layer length(4) zero(3) next header(1).
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc = accumulate(acc, &len.to_be_bytes());
    accumulate(acc, &[0, 0, 0, next_header])
}

/// Pseudo-header accumulator for either family; `None` when `src` and `dst` differ in family.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Option<u32> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(pseudo_header_v4(s, d, proto, u16::try_from(len).ok()?))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Some(pseudo_header_v6(s, d, proto, u32::try_from(len).ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: the one's complement sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(accumulate(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn ipv4_header_checksum_from_capture() {
        // IPv4 header of frame 1 of vrrpv2_pass_auth.pcap; tshark reports 0xcf97.
        let mut hdr = [
            0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0x00, 0x00, 10, 250, 0, 1,
            224, 0, 0, 18,
        ];
        assert_eq!(checksum(&hdr), 0xcf97);
        hdr[10..12].copy_from_slice(&0xcf97u16.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }

    #[test]
    fn long_input_does_not_overflow() {
        let data = vec![0xffu8; 1 << 20];
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn mixed_families_have_no_pseudo_header() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(pseudo_header(v4, v6, IPPROTO_VRRP, 8).is_none());
        assert!(pseudo_header(v6, v6, IPPROTO_VRRP, 8).is_some());
    }
}
