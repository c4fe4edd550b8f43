//! Packet codecs, sans-IO (issue 3): bytes in, plain structs out, and back. No sockets, clocks
//! or async in here.
//!
//! Modelled on smoltcp's `wire` module: a checked view over a byte slice
//! ([`VrrpPacket`]) plus a plain `Repr` whose `parse` and `emit` are symmetric, and whose
//! `buffer_len()` says how many bytes `emit` writes. Parsing never panics; every failure is a
//! typed error.
//!
//! - [`vrrp`]: the VRRP v2 / v3 message, checksums ([`checksum`]).
//! - [`frame`]: Ethernet (+802.1Q) and IPv4/IPv6 framing of adverts ([`AdvertFrame`],
//!   [`RxFrame`]), VMAC and group addresses.
//! - [`arp`], [`ndp`]: gratuitous ARP / unsolicited NA that the agent sends, and the
//!   request/solicitation → reply layouts the XDP program implements (byte offsets in each
//!   module's doc).
//! - [`mod@validate`]: receive validation, RFC 9568 §7.1 / RFC 3768 §7.1, one counted reason per drop.
//!
//! ## Why smoltcp for the Ethernet / IPv4 / IPv6 / ARP / ICMPv6-NDP headers
//!
//! smoltcp (`default-features = false`, `proto-ipv4`, `proto-ipv6`, `medium-ethernet`) is
//! `no_std`, allocation-free and fuzzed, and its wire module is exactly the packet-view + `Repr`
//! design used here, so the VRRP codec written by hand composes with it directly. It has
//! complete `Repr`s for ARP and for NDP (`NdiscRepr` with the link-layer options and NA flags,
//! ICMPv6 checksum over the pseudo-header), which etherparse does not model as far (etherparse
//! leaves NDP options to the caller). Its cost: `medium-ethernet` drags in the socket layer, which
//! refuses to compile without one socket kind, so `socket-raw` is enabled and unused.
//! What smoltcp does not have is written here: VRRP itself, the Internet checksum routine (it
//! exists in smoltcp but is crate-private), and the 802.1Q tag (4 bytes).
pub mod arp;
pub mod checksum;
pub mod frame;
pub mod ndp;
pub mod validate;
pub mod vrrp;

pub use arp::{ArpFrame, ArpOp, ArpRepr};
pub use frame::{
    multicast_mac, vmac, vrrp_group, AdvertFrame, EthHeader, FrameError, MacAddr, RxFrame, TOS_CS6,
    VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TTL,
};
pub use ndp::{NdpFrame, NdpMessage};
pub use validate::{
    validate, validate_bytes, validate_parts, InstanceCfg, RxError, RxParts, Valid,
};
pub use vrrp::{
    Auth, ChecksumOpts, EmitError, Family, IpPair, Version, VrrpError, VrrpPacket, VrrpRepr,
};
