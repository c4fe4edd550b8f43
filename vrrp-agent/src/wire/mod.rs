//! Packet codecs, sans-IO (issue 3).
pub mod checksum;
pub mod vrrp;

pub use vrrp::{
    Auth, ChecksumOpts, EmitError, Family, IpPair, Version, VrrpError, VrrpPacket, VrrpRepr,
};
