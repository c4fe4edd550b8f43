//! Per-virtual-router configuration and its validation.
use core::time::Duration;
use std::net::IpAddr;

pub use crate::vocab::{Family, Version};

/// keepalived's upper bound for `preempt_delay` (seconds).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// Configuration of one virtual router. Build with [`Config::new`] and adjust the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Virtual Router Identifier, 1..=255.
    pub vrid: u8,
    /// Configured priority, 1..=255; 255 means "address owner" (RFC 9568 §6.1).
    pub priority: u8,
    pub version: Version,
    /// `Advertisement_Interval` in centiseconds. v3: 1..=4095. v2: whole seconds only
    /// (a multiple of 100, 100..=25500).
    pub advert_interval_cs: u16,
    /// `Preempt_Mode` (default true).
    pub preempt: bool,
    /// keepalived `preempt_delay`: after startup (or after leaving Fault), and after first seeing
    /// a lower-priority master, a backup keeps accepting that lower-priority master for this long
    /// before it preempts. Zero disables it. Ignored when `preempt` is false.
    pub preempt_delay: Duration,
    /// `Accept_Mode` (RFC 9568 §6.1): a non-owner master accepts packets addressed to the VIPs.
    pub accept_mode: bool,
    /// keepalived `lower_prio_no_advert`: a master does not answer a lower-priority advert with
    /// an advert of its own (RFC 9568 §6.4.3 says it does; off by default, as in keepalived
    /// without `vrrp_strict`). Either way the answers are bounded to one per
    /// `Advertisement_Interval`.
    pub lower_prio_no_advert: bool,
    /// Primary address of the interface: the source of our adverts and the tie-break key
    /// (IPv4 primary address; IPv6 link-local address).
    pub primary_addr: IpAddr,
    /// The virtual addresses (for IPv6, the first should be the link-local VIP).
    pub vips: Vec<IpAddr>,
}

impl Config {
    /// A v3 config with the RFC defaults: 1 s (100 cs) interval, preempt on, no preempt delay,
    /// accept mode off, lower-priority adverts answered.
    pub fn new(vrid: u8, priority: u8, primary_addr: IpAddr, vips: Vec<IpAddr>) -> Config {
        Config {
            vrid,
            priority,
            version: Version::V3,
            advert_interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            lower_prio_no_advert: false,
            primary_addr,
            vips,
        }
    }

    /// The address family (that of `primary_addr`).
    pub fn family(&self) -> Family {
        Family::of(self.primary_addr)
    }

    /// Whether this router is configured as the address owner (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Checks everything that can be checked from the config alone. [`super::VirtualRouter::new`]
    /// calls this. Use [`Config::validate_ownership`] as well once the interface's own addresses
    /// are known.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::InvalidVrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::InvalidPriority);
        }
        match self.version {
            Version::V3 => {
                if self.advert_interval_cs == 0 || self.advert_interval_cs > 4095 {
                    return Err(ConfigError::InvalidAdvertInterval {
                        cs: self.advert_interval_cs,
                    });
                }
            }
            Version::V2 => {
                let cs = self.advert_interval_cs;
                // `is_multiple_of` is newer than the workspace MSRV (1.85).
                #[allow(clippy::manual_is_multiple_of)]
                if cs == 0 || cs % 100 != 0 || cs / 100 > 255 {
                    return Err(ConfigError::V2IntervalNotWholeSeconds { cs });
                }
                if self.family() != Family::V4 {
                    return Err(ConfigError::V2RequiresIpv4);
                }
            }
        }
        match self.primary_addr {
            IpAddr::V4(a) if a.is_unspecified() || a.is_multicast() || a.is_broadcast() => {
                return Err(ConfigError::InvalidPrimaryAddress(self.primary_addr))
            }
            IpAddr::V6(a) if (a.segments()[0] & 0xffc0) != 0xfe80 => {
                return Err(ConfigError::Ipv6PrimaryNotLinkLocal(self.primary_addr))
            }
            _ => {}
        }
        if self.vips.is_empty() {
            return Err(ConfigError::NoVips);
        }
        if self.vips.len() > 255 {
            return Err(ConfigError::TooManyVips(self.vips.len()));
        }
        for (i, vip) in self.vips.iter().enumerate() {
            if Family::of(*vip) != self.family() {
                return Err(ConfigError::VipFamilyMismatch(*vip));
            }
            if vip.is_unspecified() || vip.is_multicast() {
                return Err(ConfigError::InvalidVip(*vip));
            }
            if self.vips[..i].contains(vip) {
                return Err(ConfigError::DuplicateVip(*vip));
            }
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelayTooLong(self.preempt_delay));
        }
        Ok(())
    }

    /// RFC 9568 §6.1: the router that owns the VIPs (has them as real interface addresses)
    /// must run priority 255, and only it may. `interface_addrs` are the addresses configured on
    /// the interface.
    pub fn validate_ownership(&self, interface_addrs: &[IpAddr]) -> Result<(), ConfigError> {
        if self.is_owner() {
            if let Some(vip) = self.vips.iter().find(|v| !interface_addrs.contains(v)) {
                return Err(ConfigError::OwnerDoesNotOwnVip(*vip));
            }
        } else if let Some(vip) = self.vips.iter().find(|v| interface_addrs.contains(v)) {
            return Err(ConfigError::OwnedVipNeedsPriority255 {
                vip: *vip,
                priority: self.priority,
            });
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("VRID 0 is invalid (1..=255)")]
    InvalidVrid,
    #[error("priority 0 is reserved for a master that is giving up; configure 1..=255")]
    InvalidPriority,
    #[error("advert interval {cs} cs is invalid (VRRPv3: 1..=4095 centiseconds)")]
    InvalidAdvertInterval { cs: u16 },
    #[error("advert interval {cs} cs is invalid for VRRPv2 (whole seconds, 1..=255 s)")]
    V2IntervalNotWholeSeconds { cs: u16 },
    #[error("VRRPv2 (RFC 3768) is IPv4 only")]
    V2RequiresIpv4,
    #[error("primary address {0} cannot source adverts")]
    InvalidPrimaryAddress(IpAddr),
    #[error("IPv6 primary address {0} must be link-local (RFC 9568 §7.2)")]
    Ipv6PrimaryNotLinkLocal(IpAddr),
    #[error("a virtual router needs at least one virtual address")]
    NoVips,
    #[error("{0} virtual addresses, at most 255 fit in an advert")]
    TooManyVips(usize),
    #[error("virtual address {0} is not of the primary address's family")]
    VipFamilyMismatch(IpAddr),
    #[error("virtual address {0} is not a unicast address")]
    InvalidVip(IpAddr),
    #[error("virtual address {0} is listed twice")]
    DuplicateVip(IpAddr),
    #[error("preempt_delay {0:?} exceeds 1000 s")]
    PreemptDelayTooLong(Duration),
    #[error("priority 255 (address owner) but {0} is not an address of the interface")]
    OwnerDoesNotOwnVip(IpAddr),
    #[error("{vip} is an address of the interface, so this router owns it: use priority 255 (the address owner), not {priority}, or a VIP that is not an address of the interface")]
    OwnedVipNeedsPriority255 { vip: IpAddr, priority: u8 },
}
