//! ARP for Ethernet/IPv4 (RFC 826, gratuitous form per RFC 5227 §3): the GARP the agent sends on
//! becoming Master, and the request/reply layout the XDP program answers for the VIPs.
//!
//! Frame layout (untagged; with an 802.1Q tag every offset from 12 on moves by 4):
//!
//! ```text
//! off len field
//!  0   6  Ethernet dst       GARP: ff:ff:ff:ff:ff:ff; reply: the requester's MAC
//!  6   6  Ethernet src       the VMAC 00:00:5e:00:01:VRID
//! 12   2  ethertype 0x0806
//! 14   2  htype 1 (Ethernet)
//! 16   2  ptype 0x0800 (IPv4)
//! 18   1  hlen 6
//! 19   1  plen 4
//! 20   2  oper               1 request (GARP), 2 reply
//! 22   6  sender MAC (sha)   the VMAC
//! 28   4  sender IP  (spa)   the VIP
//! 32   6  target MAC (tha)   GARP: 00:00:00:00:00:00; reply: requester's sha
//! 38   4  target IP  (tpa)   GARP: the VIP again; reply: requester's spa
//! 42      end (the NIC pads to 60 bytes; padding is ignored on receipt)
//! ```
//!
//! Answering a request (what the XDP program does in place): swap Ethernet src/dst with dst :=
//! request's src and src := VMAC; oper := 2; tha/tpa := request's sha/spa; sha := VMAC;
//! spa := the requested VIP (request's tpa).

use core::net::Ipv4Addr;

use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr as SmolArp, EthernetProtocol};

use super::frame::{EthHeader, FrameError, MacAddr, BROADCAST};
use super::vrrp::EmitError;

/// Length of the ARP packet for Ethernet/IPv4.
pub const ARP_LEN: usize = 28;

/// ARP opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Gratuitous ARP, request form (RFC 5227 §3): sender = target = `ip`, target MAC zero.
    pub fn gratuitous(mac: MacAddr, ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr([0; 6]),
            target_ip: ip,
        }
    }

    /// A request for `target_ip`.
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Request,
            sender_mac,
            sender_ip,
            target_mac: MacAddr([0; 6]),
            target_ip,
        }
    }

    /// The reply to `request` saying its target IP is at `mac`.
    pub fn reply_to(request: &ArpRepr, mac: MacAddr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Reply,
            sender_mac: mac,
            sender_ip: request.target_ip,
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        }
    }

    /// Sender and target protocol address equal: an announcement (GARP), request or reply form.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    /// Parse the 28-byte ARP packet (trailing bytes ignored).
    pub fn parse(bytes: &[u8]) -> Result<ArpRepr, FrameError> {
        let p = ArpPacket::new_checked(bytes).map_err(|_| FrameError::ArpMalformed)?;
        match SmolArp::parse(&p).map_err(|_| FrameError::ArpMalformed)? {
            SmolArp::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => {
                let op = match operation {
                    ArpOperation::Request => ArpOp::Request,
                    ArpOperation::Reply => ArpOp::Reply,
                    ArpOperation::Unknown(n) => return Err(FrameError::ArpUnknownOperation(n)),
                };
                Ok(ArpRepr {
                    op,
                    sender_mac: source_hardware_addr,
                    sender_ip: source_protocol_addr,
                    target_mac: target_hardware_addr,
                    target_ip: target_protocol_addr,
                })
            }
            #[allow(unreachable_patterns)]
            _ => Err(FrameError::ArpMalformed),
        }
    }

    /// Write the 28-byte packet into `buf[..ARP_LEN]`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        if buf.len() < ARP_LEN {
            return Err(EmitError::BufferTooSmall {
                need: ARP_LEN,
                have: buf.len(),
            });
        }
        let repr = SmolArp::EthernetIpv4 {
            operation: match self.op {
                ArpOp::Request => ArpOperation::Request,
                ArpOp::Reply => ArpOperation::Reply,
            },
            source_hardware_addr: self.sender_mac,
            source_protocol_addr: self.sender_ip,
            target_hardware_addr: self.target_mac,
            target_protocol_addr: self.target_ip,
        };
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..ARP_LEN]));
        Ok(())
    }
}

/// An ARP packet in an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpFrame {
    pub eth_dst: MacAddr,
    pub eth_src: MacAddr,
    pub vlan: Option<u16>,
    pub arp: ArpRepr,
}

impl ArpFrame {
    /// Broadcast gratuitous ARP from `mac` (the VMAC) for `vip`.
    pub fn gratuitous(mac: MacAddr, vip: Ipv4Addr) -> ArpFrame {
        ArpFrame {
            eth_dst: BROADCAST,
            eth_src: mac,
            vlan: None,
            arp: ArpRepr::gratuitous(mac, vip),
        }
    }

    /// The unicast reply to a request frame: "`request.arp.target_ip` is at `mac`".
    pub fn reply_to(request: &ArpFrame, mac: MacAddr) -> ArpFrame {
        ArpFrame {
            eth_dst: request.eth_src,
            eth_src: mac,
            vlan: request.vlan,
            arp: ArpRepr::reply_to(&request.arp, mac),
        }
    }

    fn eth_header(&self) -> EthHeader {
        EthHeader {
            dst: self.eth_dst,
            src: self.eth_src,
            vlan: self.vlan,
            ethertype: u16::from(EthernetProtocol::Arp),
        }
    }

    pub fn buffer_len(&self) -> usize {
        self.eth_header().header_len() + ARP_LEN
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let need = self.buffer_len();
        let l3 = self.eth_header().emit_frame(buf, need)?;
        self.arp.emit(l3)?;
        Ok(need)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        // The buffer is exactly buffer_len() long, the only failure of emit.
        let _ = self.emit(&mut buf);
        buf
    }

    pub fn parse(frame: &[u8]) -> Result<ArpFrame, FrameError> {
        let (eth, rest) = EthHeader::parse(frame)?;
        if eth.ethertype != u16::from(EthernetProtocol::Arp) {
            return Err(FrameError::UnexpectedEtherType(eth.ethertype));
        }
        Ok(ArpFrame {
            eth_dst: eth.dst,
            eth_src: eth.src,
            vlan: eth.vlan,
            arp: ArpRepr::parse(rest)?,
        })
    }
}
