//! The one vocabulary every part of the core (and the agent) speaks: address family and
//! protocol version. The kernel ABI's tags and the VMAC rule live in `vrrp-common`; these types
//! convert to them and never redefine them.
use std::net::IpAddr;

pub use vrrp_common::IPPROTO_VRRP;

/// Address family of a virtual router (RFC 9568: IPv4 and IPv6 instances are independent; all
/// the addresses of one share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Bytes per address in the VRRP address list.
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The kernel ABI's tag (`vrrp_common::FAMILY_IPV4` / `FAMILY_IPV6`).
    pub fn tag(self) -> u8 {
        match self {
            Family::V4 => vrrp_common::FAMILY_IPV4,
            Family::V6 => vrrp_common::FAMILY_IPV6,
        }
    }

    /// The family of a kernel ABI tag.
    pub fn from_tag(tag: u8) -> Option<Family> {
        match tag {
            vrrp_common::FAMILY_IPV4 => Some(Family::V4),
            vrrp_common::FAMILY_IPV6 => Some(Family::V6),
            _ => None,
        }
    }

    /// `IPv4` / `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// VRRP protocol version run by a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in whole seconds, optional simple password, no interval
    /// learning.
    V2,
    /// RFC 9568: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The value of the 4-bit version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}
