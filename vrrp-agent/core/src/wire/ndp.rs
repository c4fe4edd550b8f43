//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Solicitation and (unsolicited) Neighbor
//! Advertisement with the link-layer address option. The agent sends unsolicited NAs on becoming
//! Master (RFC 9568 §6.4.1 / §7.4); the XDP program answers NS for the VIPs with the solicited form.
//!
//! Frame layout (untagged; an 802.1Q tag moves every offset from 12 on by 4):
//!
//! ```text
//! off len field
//!  0   6  Ethernet dst     unsolicited NA: 33:33:00:00:00:01; solicited NA: the asker's MAC;
//!                          NS: 33:33:ff + last 3 bytes of the target (solicited-node group)
//!  6   6  Ethernet src     the VMAC 00:00:5e:00:02:VRID
//! 12   2  ethertype 0x86dd
//! 14  40  IPv6 header      version 6, traffic class 0, flow 0, payload length 32,
//!                          next header 58 (ICMPv6), hop limit 255,
//!                          src = the VIP (NA) | our address or :: (NS),
//!                          dst = ff02::1 (unsolicited NA) | asker (solicited NA) |
//!                                ff02::1:ffXX:XXXX (NS)
//! 54   1  ICMPv6 type      135 NS, 136 NA
//! 55   1  code 0
//! 56   2  ICMPv6 checksum  over the IPv6 pseudo-header (next header 58) + the 32 bytes
//! 58   4  NA: flags R(0x80) S(0x40) O(0x20) in byte 58, rest reserved 0; NS: reserved 0
//! 62  16  target address   the VIP
//! 78   1  option type      2 target link-layer address (NA) | 1 source link-layer address (NS)
//! 79   1  option length 1  (8 bytes)
//! 80   6  link-layer address  the VMAC (NA) | sender's MAC (NS)
//! 86      end
//! ```
//!
//! Unsolicited NA: Override set, Solicited clear, Router as configured (set when the virtual
//! router is a router: RFC 9568 §7.4 / keepalived leaves it clear by default, as the captures show).

use core::net::{IpAddr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetProtocol, Icmpv6Packet, Icmpv6Repr, IpProtocol, NdiscNeighborFlags, NdiscRepr,
    RawHardwareAddress, IPV6_HEADER_LEN,
};

use super::frame::{emit_ip_header, multicast_mac, EthHeader, FrameError, MacAddr, RxFrame};
use super::vrrp::{EmitError, IpPair};

/// NDP hop limit (RFC 4861 §7.1.1 / §7.1.2: anything else is dropped).
pub const NDP_HOP_LIMIT: u8 = 255;
/// All-nodes multicast, destination of unsolicited NAs.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ICMPv6 length of an NS/NA with one link-layer address option.
pub const NDP_LEN: usize = 32;
const ICMPV6: u8 = 58;

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A Neighbor Solicitation or Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdpMessage {
    NeighborSolicit {
        target: Ipv6Addr,
        /// Source link-layer address option (absent in DAD probes from ::).
        source_lladdr: Option<MacAddr>,
    },
    NeighborAdvert {
        router: bool,
        solicited: bool,
        override_: bool,
        target: Ipv6Addr,
        /// Target link-layer address option.
        target_lladdr: Option<MacAddr>,
    },
}

impl NdpMessage {
    fn to_smol(self) -> NdiscRepr<'static> {
        match self {
            NdpMessage::NeighborSolicit {
                target,
                source_lladdr,
            } => NdiscRepr::NeighborSolicit {
                target_addr: target,
                lladdr: source_lladdr.map(RawHardwareAddress::from),
            },
            NdpMessage::NeighborAdvert {
                router,
                solicited,
                override_,
                target,
                target_lladdr,
            } => {
                let mut flags = NdiscNeighborFlags::empty();
                flags.set(NdiscNeighborFlags::ROUTER, router);
                flags.set(NdiscNeighborFlags::SOLICITED, solicited);
                flags.set(NdiscNeighborFlags::OVERRIDE, override_);
                NdiscRepr::NeighborAdvert {
                    flags,
                    target_addr: target,
                    lladdr: target_lladdr.map(RawHardwareAddress::from),
                }
            }
        }
    }

    fn target(&self) -> Ipv6Addr {
        match *self {
            NdpMessage::NeighborSolicit { target, .. }
            | NdpMessage::NeighborAdvert { target, .. } => target,
        }
    }
}

fn mac_of(raw: Option<RawHardwareAddress>) -> Result<Option<MacAddr>, FrameError> {
    match raw {
        None => Ok(None),
        Some(raw) => {
            let b = raw.as_bytes();
            let arr: [u8; 6] = b.try_into().map_err(|_| FrameError::NdpBadLinkLayerAddr)?;
            Ok(Some(MacAddr(arr)))
        }
    }
}

/// An NS/NA in IPv6 in an Ethernet frame. Hop limit is always 255 (parse refuses others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NdpFrame {
    pub eth_dst: MacAddr,
    pub eth_src: MacAddr,
    pub vlan: Option<u16>,
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    pub msg: NdpMessage,
}

impl NdpFrame {
    /// Unsolicited NA for `vip` at `mac` (the VMAC): to ff02::1, Override set, Solicited clear.
    pub fn unsolicited_na(mac: MacAddr, vip: Ipv6Addr, router: bool) -> NdpFrame {
        NdpFrame {
            eth_dst: MacAddr([0x33, 0x33, 0, 0, 0, 1]),
            eth_src: mac,
            vlan: None,
            src_ip: vip,
            dst_ip: ALL_NODES,
            msg: NdpMessage::NeighborAdvert {
                router,
                solicited: false,
                override_: true,
                target: vip,
                target_lladdr: Some(mac),
            },
        }
    }

    /// The NA answering the solicitation `ns` for one of our addresses at `mac`: to the asker
    /// with Solicited and Override set, or — if the asker is `::` (DAD) — to ff02::1 with
    /// Solicited clear (RFC 4861 §7.2.4).
    pub fn answer(ns: &NdpFrame, mac: MacAddr, router: bool) -> NdpFrame {
        let target = ns.msg.target();
        let dad = ns.src_ip.is_unspecified();
        NdpFrame {
            eth_dst: if dad {
                MacAddr([0x33, 0x33, 0, 0, 0, 1])
            } else {
                ns.eth_src
            },
            eth_src: mac,
            vlan: ns.vlan,
            src_ip: target,
            dst_ip: if dad { ALL_NODES } else { ns.src_ip },
            msg: NdpMessage::NeighborAdvert {
                router,
                solicited: !dad,
                override_: true,
                target,
                target_lladdr: Some(mac),
            },
        }
    }

    /// A multicast NS for `target` from `src_ip` / `mac`, to the solicited-node group.
    pub fn solicit(mac: MacAddr, src_ip: Ipv6Addr, target: Ipv6Addr) -> NdpFrame {
        let dst = solicited_node(target);
        NdpFrame {
            eth_dst: multicast_mac(IpAddr::V6(dst)).unwrap_or(MacAddr([0xff; 6])),
            eth_src: mac,
            vlan: None,
            src_ip,
            dst_ip: dst,
            msg: NdpMessage::NeighborSolicit {
                target,
                source_lladdr: (!src_ip.is_unspecified()).then_some(mac),
            },
        }
    }

    fn eth_header(&self) -> EthHeader {
        EthHeader {
            dst: self.eth_dst,
            src: self.eth_src,
            vlan: self.vlan,
            ethertype: u16::from(EthernetProtocol::Ipv6),
        }
    }

    fn icmp(&self) -> Icmpv6Repr<'static> {
        Icmpv6Repr::Ndisc(self.msg.to_smol())
    }

    pub fn buffer_len(&self) -> usize {
        self.eth_header().header_len() + IPV6_HEADER_LEN + self.icmp().buffer_len()
    }

    /// Write the frame (ICMPv6 checksum included) into `buf[..buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let need = self.buffer_len();
        let icmp = self.icmp();
        let l3 = self.eth_header().emit_frame(buf, need)?;
        let ip = IpPair::new(self.src_ip, self.dst_ip);
        let hl = emit_ip_header(l3, &ip, ICMPV6, NDP_HOP_LIMIT, 0, icmp.buffer_len())?;
        let mut pkt = Icmpv6Packet::new_unchecked(&mut l3[hl..]);
        icmp.emit(
            &self.src_ip,
            &self.dst_ip,
            &mut pkt,
            &ChecksumCapabilities::default(),
        );
        Ok(need)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        // Exactly buffer_len() long, the only failure of emit (addresses are both IPv6).
        let _ = self.emit(&mut buf);
        buf
    }

    /// Parse an NS/NA frame, checking the RFC 4861 §7.1 rules that concern us: hop limit 255,
    /// ICMPv6 checksum, code 0, target not multicast, no Solicited flag towards a multicast
    /// destination.
    pub fn parse(frame: &[u8]) -> Result<NdpFrame, FrameError> {
        let rx = RxFrame::parse(frame)?;
        let (IpAddr::V6(src_ip), IpAddr::V6(dst_ip)) = (rx.src_ip, rx.dst_ip) else {
            return Err(FrameError::UnexpectedEtherType(rx.eth.ethertype));
        };
        if rx.protocol != u8::from(IpProtocol::Icmpv6) {
            return Err(FrameError::UnexpectedProtocol(rx.protocol));
        }
        let pkt = Icmpv6Packet::new_checked(rx.payload).map_err(|_| FrameError::Icmpv6Malformed)?;
        let repr = Icmpv6Repr::parse(&src_ip, &dst_ip, &pkt, &ChecksumCapabilities::default())
            .map_err(|_| FrameError::Icmpv6Malformed)?;
        let msg = match repr {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            }) => NdpMessage::NeighborSolicit {
                target: target_addr,
                source_lladdr: mac_of(lladdr)?,
            },
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            }) => NdpMessage::NeighborAdvert {
                router: flags.contains(NdiscNeighborFlags::ROUTER),
                solicited: flags.contains(NdiscNeighborFlags::SOLICITED),
                override_: flags.contains(NdiscNeighborFlags::OVERRIDE),
                target: target_addr,
                target_lladdr: mac_of(lladdr)?,
            },
            _ => return Err(FrameError::NotNeighborDiscovery),
        };
        if rx.hop_limit != NDP_HOP_LIMIT {
            return Err(FrameError::NdpHopLimit(rx.hop_limit));
        }
        if msg.target().is_multicast() {
            return Err(FrameError::NdpMulticastTarget);
        }
        // A multicast source is never valid; the NA answering such an NS would itself be a
        // solicited NA to a multicast address.
        if src_ip.is_multicast() {
            return Err(FrameError::NdpMulticastSource);
        }
        if let NdpMessage::NeighborAdvert {
            solicited: true, ..
        } = msg
        {
            if dst_ip.is_multicast() {
                return Err(FrameError::NdpSolicitedToMulticast);
            }
        }
        Ok(NdpFrame {
            eth_dst: rx.eth.dst,
            eth_src: rx.eth.src,
            vlan: rx.eth.vlan,
            src_ip,
            dst_ip,
            msg,
        })
    }
}
