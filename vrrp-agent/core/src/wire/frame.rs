//! Ethernet (+ optional 802.1Q tag) and IPv4/IPv6 framing of VRRP advertisements.
//!
//! Header parsing and emitting is smoltcp's `wire` module (see the module doc of [`super`]);
//! this file adds the VRRP rules on top.
//!
//! Advertisement frame as emitted (untagged; a tag inserts 4 bytes at offset 12):
//!
//! ```text
//! IPv4                                        IPv6
//! off len field                               off len field
//!  0   6  dst MAC 01:00:5e:00:00:12 | unicast   0   6  dst MAC 33:33:00:00:00:12 | unicast
//!  6   6  src MAC 00:00:5e:00:01:VRID           6   6  src MAC 00:00:5e:00:02:VRID
//! 12   2  ethertype 0x0800                     12   2  ethertype 0x86dd
//! 14  20  IPv4: ver/IHL 0x45, TOS 0xc0 (CS6),  14  40  IPv6: version 6, traffic class 0xc0,
//!         total len, id 0, DF, TTL 255,                flow 0, payload len, next header 112,
//!         proto 112, header checksum,                  hop limit 255,
//!         src = primary address,                       src = link-local address,
//!         dst = 224.0.0.18 | unicast peer              dst = ff02::12 | unicast peer
//! 34      VRRP message (see [`super::vrrp`])       54      VRRP message
//! ```
//!
//! Received frames may carry one 802.1Q tag, IPv4 options (skipped by IHL) and Ethernet padding
//! (ignored: the IP length bounds the payload). IPv4 fragments and IPv6 extension headers are
//! not reassembled/followed: VRRP adverts are never fragmented and carry no extension headers.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr,
};

use super::checksum::IPPROTO_VRRP;
use super::vrrp::{ChecksumOpts, EmitError, Family, IpPair, VrrpError, VrrpPacket, VrrpRepr};

/// A MAC address (smoltcp's type: `MacAddr([u8; 6])`, `Display` as `aa:bb:..`).
pub use smoltcp::wire::EthernetAddress as MacAddr;

/// IPv4 multicast group of VRRP (RFC 9568 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 9568 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit every advert is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// DSCP CS6 in the TOS / traffic class byte (what keepalived and FRR send).
pub const TOS_CS6: u8 = 0xc0;
/// Ethernet header length (untagged).
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;
/// TPID of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Broadcast MAC.
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

/// The virtual router MAC: `00:00:5e:00:01:VRID` (IPv4) / `00:00:5e:00:02:VRID` (IPv6),
/// RFC 9568 §7.3.
pub fn vmac(family: Family, vrid: u8) -> MacAddr {
    MacAddr(vrrp_common::vmac(family.tag(), vrid))
}

/// The Ethernet group address an IP multicast address maps to (RFC 1112 §6.4 / RFC 2464 §7).
/// `None` for a unicast address.
pub fn multicast_mac(ip: IpAddr) -> Option<MacAddr> {
    match ip {
        IpAddr::V4(v4) if v4.is_multicast() => {
            let o = v4.octets();
            Some(MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]))
        }
        IpAddr::V6(v6) if v6.is_multicast() => {
            let o = v6.octets();
            Some(MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]]))
        }
        _ => None,
    }
}

/// The VRRP multicast group of a family.
pub fn vrrp_group(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(VRRP_GROUP_V4),
        Family::V6 => IpAddr::V6(VRRP_GROUP_V6),
    }
}

/// Why a frame did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is too short for its Ethernet header")]
    EthernetTruncated { len: usize },
    #[error("more than one VLAN tag (QinQ) is not supported")]
    StackedVlan,
    #[error("ethertype 0x{0:04x} is not the one expected here")]
    UnexpectedEtherType(u16),
    #[error("malformed IPv4 header (bad version, header length or total length)")]
    Ipv4Malformed,
    #[error("IPv4 header checksum is wrong")]
    Ipv4BadChecksum,
    #[error("IPv4 fragment (VRRP is never fragmented)")]
    Ipv4Fragment,
    #[error("malformed IPv6 header (bad version or payload length)")]
    Ipv6Malformed,
    #[error("IP protocol / next header {0} is not the one expected here")]
    UnexpectedProtocol(u8),
    #[error("VRRP: {0}")]
    Vrrp(#[from] VrrpError),
    #[error("malformed ARP packet (not Ethernet/IPv4, or truncated)")]
    ArpMalformed,
    #[error("ARP operation {0} is neither request (1) nor reply (2)")]
    ArpUnknownOperation(u16),
    #[error("malformed ICMPv6 or bad ICMPv6 checksum")]
    Icmpv6Malformed,
    #[error("ICMPv6 message is not a Neighbor Solicitation or Advertisement")]
    NotNeighborDiscovery,
    #[error("NDP message with hop limit {0}, must be 255 (RFC 4861 §7.1)")]
    NdpHopLimit(u8),
    #[error("NDP target address is multicast (RFC 4861 §7.1)")]
    NdpMulticastTarget,
    #[error("solicited Neighbor Advertisement sent to a multicast address (RFC 4861 §7.1.2)")]
    NdpSolicitedToMulticast,
    #[error("NDP message from a multicast source address (RFC 4291 §2.7)")]
    NdpMulticastSource,
    #[error("link-layer address option is not 6 bytes long")]
    NdpBadLinkLayerAddr,
}

/// The Ethernet header of a received frame, tag stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthHeader {
    pub dst: MacAddr,
    pub src: MacAddr,
    /// The 802.1Q TCI (PCP, DEI, VID), if the frame was tagged.
    pub vlan: Option<u16>,
    /// The (inner) ethertype.
    pub ethertype: u16,
}

impl EthHeader {
    pub fn header_len(&self) -> usize {
        ETH_HEADER_LEN + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 }
    }

    /// Parse the Ethernet header (and at most one 802.1Q tag); returns the rest of the frame.
    pub fn parse(frame: &[u8]) -> Result<(EthHeader, &[u8]), FrameError> {
        let eth = EthernetFrame::new_checked(frame)
            .map_err(|_| FrameError::EthernetTruncated { len: frame.len() })?;
        let repr = EthernetRepr::parse(&eth)
            .map_err(|_| FrameError::EthernetTruncated { len: frame.len() })?;
        let mut ethertype = u16::from(repr.ethertype);
        let mut vlan = None;
        let mut rest = eth.payload();
        if ethertype == ETHERTYPE_VLAN {
            let [t0, t1, e0, e1, tail @ ..] = rest else {
                return Err(FrameError::EthernetTruncated { len: frame.len() });
            };
            vlan = Some(u16::from_be_bytes([*t0, *t1]));
            ethertype = u16::from_be_bytes([*e0, *e1]);
            rest = tail;
            if ethertype == ETHERTYPE_VLAN || ethertype == 0x88a8 {
                return Err(FrameError::StackedVlan);
            }
        }
        Ok((
            EthHeader {
                dst: repr.dst_addr,
                src: repr.src_addr,
                vlan,
                ethertype,
            },
            rest,
        ))
    }

    /// Write the header into the front of `buf` (which must be at least `header_len()` long).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..6].copy_from_slice(&self.dst.0);
        buf[6..12].copy_from_slice(&self.src.0);
        match self.vlan {
            None => buf[12..14].copy_from_slice(&self.ethertype.to_be_bytes()),
            Some(tci) => {
                buf[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                buf[14..16].copy_from_slice(&tci.to_be_bytes());
                buf[16..18].copy_from_slice(&self.ethertype.to_be_bytes());
            }
        }
    }

    /// Starts a frame of `need` bytes: checks that `buf` holds them, writes this header and
    /// returns the rest of the frame (`buf[header_len()..need]`) for the layer above.
    pub fn emit_frame<'b>(
        &self,
        buf: &'b mut [u8],
        need: usize,
    ) -> Result<&'b mut [u8], EmitError> {
        if buf.len() < need {
            return Err(EmitError::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        self.emit(buf);
        Ok(&mut buf[self.header_len()..need])
    }
}

/// An IPv4 or IPv6 packet inside an Ethernet frame, headers parsed, payload borrowed.
/// This is what receive validation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxFrame<'a> {
    pub eth: EthHeader,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub hop_limit: u8,
    /// IPv4 TOS or IPv6 traffic class (DSCP << 2 | ECN).
    pub tos: u8,
    /// IPv4 protocol or IPv6 next header.
    pub protocol: u8,
    /// The IP payload, exactly as long as the IP header says (padding cut off).
    pub payload: &'a [u8],
}

impl<'a> RxFrame<'a> {
    /// Parse Ethernet (+1 tag) and the IPv4 (header checksum verified, fragments refused) or
    /// IPv6 header.
    pub fn parse(frame: &'a [u8]) -> Result<RxFrame<'a>, FrameError> {
        let (eth, rest) = EthHeader::parse(frame)?;
        match EthernetProtocol::from(eth.ethertype) {
            EthernetProtocol::Ipv4 => {
                let p = Ipv4Packet::new_checked(rest).map_err(|_| FrameError::Ipv4Malformed)?;
                if p.version() != 4 {
                    return Err(FrameError::Ipv4Malformed);
                }
                if !p.verify_checksum() {
                    return Err(FrameError::Ipv4BadChecksum);
                }
                if p.more_frags() || p.frag_offset() != 0 {
                    return Err(FrameError::Ipv4Fragment);
                }
                let tos = (p.dscp() << 2) | p.ecn();
                Ok(RxFrame {
                    eth,
                    src_ip: IpAddr::V4(p.src_addr()),
                    dst_ip: IpAddr::V4(p.dst_addr()),
                    hop_limit: p.hop_limit(),
                    tos,
                    protocol: u8::from(p.next_header()),
                    payload: ipv4_payload(rest, &p),
                })
            }
            EthernetProtocol::Ipv6 => {
                let p = Ipv6Packet::new_checked(rest).map_err(|_| FrameError::Ipv6Malformed)?;
                if p.version() != 6 {
                    return Err(FrameError::Ipv6Malformed);
                }
                Ok(RxFrame {
                    eth,
                    src_ip: IpAddr::V6(p.src_addr()),
                    dst_ip: IpAddr::V6(p.dst_addr()),
                    hop_limit: p.hop_limit(),
                    tos: p.traffic_class(),
                    protocol: u8::from(p.next_header()),
                    payload: ipv6_payload(rest, &p),
                })
            }
            _ => Err(FrameError::UnexpectedEtherType(eth.ethertype)),
        }
    }

    pub fn ip(&self) -> IpPair {
        IpPair {
            src: self.src_ip,
            dst: self.dst_ip,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(self.src_ip)
    }
}

// smoltcp's `payload()` borrows from the packet view; these re-slice the original buffer
// (same bounds, already checked by `new_checked`) to keep the frame's lifetime.
fn ipv4_payload<'a>(buf: &'a [u8], p: &Ipv4Packet<&[u8]>) -> &'a [u8] {
    let start = usize::from(p.header_len());
    let end = usize::from(p.total_len());
    buf.get(start..end).unwrap_or(&[])
}

fn ipv6_payload<'a>(buf: &'a [u8], p: &Ipv6Packet<&[u8]>) -> &'a [u8] {
    let start = smoltcp::wire::IPV6_HEADER_LEN;
    let end = start + usize::from(p.payload_len());
    buf.get(start..end).unwrap_or(&[])
}

/// Write an IPv4 or IPv6 header for `payload_len` bytes of `protocol` into the front of `buf`;
/// returns the header length. TOS/traffic class and hop limit as given; IPv4 gets DF, id 0 and
/// its header checksum.
pub(crate) fn emit_ip_header(
    buf: &mut [u8],
    ip: &IpPair,
    protocol: u8,
    hop_limit: u8,
    tos: u8,
    payload_len: usize,
) -> Result<usize, EmitError> {
    match (ip.src, ip.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let repr = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::from(protocol),
                payload_len,
                hop_limit,
            };
            let need = repr.buffer_len() + payload_len;
            if need > usize::from(u16::MAX) || buf.len() < repr.buffer_len() {
                return Err(EmitError::BufferTooSmall {
                    need,
                    have: buf.len(),
                });
            }
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..repr.buffer_len()]);
            repr.emit(&mut p, &ChecksumCapabilities::ignored());
            p.set_dscp(tos >> 2);
            p.set_ecn(tos & 0x3);
            p.fill_checksum();
            Ok(repr.buffer_len())
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let repr = Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::from(protocol),
                payload_len,
                hop_limit,
            };
            if payload_len > usize::from(u16::MAX) || buf.len() < repr.buffer_len() {
                return Err(EmitError::BufferTooSmall {
                    need: repr.buffer_len() + payload_len,
                    have: buf.len(),
                });
            }
            let mut p = Ipv6Packet::new_unchecked(&mut buf[..repr.buffer_len()]);
            repr.emit(&mut p);
            p.set_traffic_class(tos);
            Ok(repr.buffer_len())
        }
        _ => Err(EmitError::MixedFamily),
    }
}

/// A whole VRRP advertisement frame: Ethernet + IP + VRRP. `parse` and `emit` are symmetric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertFrame {
    pub eth_dst: MacAddr,
    pub eth_src: MacAddr,
    /// 802.1Q TCI to tag the frame with (normally `None`: the kernel's VLAN device tags).
    pub vlan: Option<u16>,
    pub ip: IpPair,
    /// Always [`VRRP_TTL`] when sending; parse reports what arrived.
    pub hop_limit: u8,
    /// IPv4 TOS / IPv6 traffic class; [`TOS_CS6`] when sending.
    pub tos: u8,
    pub vrrp: VrrpRepr,
}

impl AdvertFrame {
    /// A multicast advert: source MAC = the VMAC of (family of `src_ip`, VRID), destination
    /// 224.0.0.18 / ff02::12 and its group MAC, TTL 255, CS6.
    pub fn multicast(vrrp: VrrpRepr, src_ip: IpAddr) -> AdvertFrame {
        let family = Family::of(src_ip);
        let dst = vrrp_group(family);
        AdvertFrame {
            // The group address is multicast by construction.
            eth_dst: multicast_mac(dst).unwrap_or(BROADCAST),
            eth_src: vmac(family, vrrp.vrid),
            vlan: None,
            ip: IpPair { src: src_ip, dst },
            hop_limit: VRRP_TTL,
            tos: TOS_CS6,
            vrrp,
        }
    }

    /// A unicast advert to `peer` (whose MAC the caller resolved).
    pub fn unicast(vrrp: VrrpRepr, src_ip: IpAddr, peer: IpAddr, peer_mac: MacAddr) -> AdvertFrame {
        let mut f = AdvertFrame::multicast(vrrp, src_ip);
        f.ip.dst = peer;
        f.eth_dst = peer_mac;
        f
    }

    pub fn family(&self) -> Family {
        Family::of(self.ip.src)
    }

    fn ip_header_len(&self) -> usize {
        match self.family() {
            Family::V4 => smoltcp::wire::IPV4_HEADER_LEN,
            Family::V6 => smoltcp::wire::IPV6_HEADER_LEN,
        }
    }

    fn eth_header(&self) -> EthHeader {
        let ethertype = match self.family() {
            Family::V4 => u16::from(EthernetProtocol::Ipv4),
            Family::V6 => u16::from(EthernetProtocol::Ipv6),
        };
        EthHeader {
            dst: self.eth_dst,
            src: self.eth_src,
            vlan: self.vlan,
            ethertype,
        }
    }

    /// Length of the emitted frame (no Ethernet padding is added; the NIC pads to 60 bytes).
    pub fn buffer_len(&self) -> usize {
        self.eth_header().header_len() + self.ip_header_len() + self.vrrp.buffer_len()
    }

    /// Write the frame into `buf[..self.buffer_len()]`; returns that length.
    pub fn emit(&self, buf: &mut [u8], opts: ChecksumOpts) -> Result<usize, EmitError> {
        self.vrrp.check_emit(&self.ip)?;
        let need = self.buffer_len();
        let l3 = self.eth_header().emit_frame(buf, need)?;
        let vrrp_len = self.vrrp.buffer_len();
        let hl = emit_ip_header(
            l3,
            &self.ip,
            IPPROTO_VRRP,
            self.hop_limit,
            self.tos,
            vrrp_len,
        )?;
        self.vrrp.emit(
            &mut VrrpPacket::new_unchecked(&mut l3[hl..]),
            &self.ip,
            opts,
        )?;
        Ok(need)
    }

    pub fn to_bytes(&self, opts: ChecksumOpts) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf, opts)?;
        Ok(buf)
    }

    /// Parse a whole advert frame, verifying the IPv4 header checksum and the VRRP checksum.
    /// No policy (TTL, VRID, ...) is applied here: that is [`super::validate::validate`].
    pub fn parse(frame: &[u8], opts: ChecksumOpts) -> Result<AdvertFrame, FrameError> {
        let rx = RxFrame::parse(frame)?;
        AdvertFrame::from_rx(&rx, opts)
    }

    /// Decode the VRRP payload of an already parsed frame.
    pub fn from_rx(rx: &RxFrame<'_>, opts: ChecksumOpts) -> Result<AdvertFrame, FrameError> {
        if rx.protocol != IPPROTO_VRRP {
            return Err(FrameError::UnexpectedProtocol(rx.protocol));
        }
        let ip = rx.ip();
        let vrrp = VrrpRepr::from_bytes(rx.payload, &ip, opts)?;
        Ok(AdvertFrame {
            eth_dst: rx.eth.dst,
            eth_src: rx.eth.src,
            vlan: rx.eth.vlan,
            ip,
            hop_limit: rx.hop_limit,
            tos: rx.tos,
            vrrp,
        })
    }
}
