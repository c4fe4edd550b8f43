//! Receive validation of VRRP adverts: RFC 9568 §7.1 (v3) and RFC 3768 §7.1 (v2).
//!
//! [`validate()`] takes a parsed frame ([`validate_parts()`] the parts of one that the XDP
//! program's ring-buffer event carries; `validate` calls it, so the rules exist once) and the
//! virtual routers configured on the receiving interface and either accepts the advert ([`Valid`]) or names exactly one reason
//! ([`RxError`]) — each reason is a distinct variant with a stable counter index
//! ([`RxError::as_index`], [`RxError::name`]).
//!
//! Checks, in this order (the first failing one is reported):
//!
//! | # | check                                                      | error                     | source |
//! |---|------------------------------------------------------------|---------------------------|--------|
//! | 1 | Ethernet/IP headers parse, IPv4 header checksum, no fragment | `MalformedFrame`        | |
//! | 2 | IP protocol / next header is 112                           | `NotVrrp`                 | |
//! | 3 | TTL / hop limit is 255                                     | `TtlNot255`               | 9568 §7.1, 3768 §7.1 |
//! | 4 | at least the 8-byte VRRP header                            | `TooShort`                | 9568 §7.1 |
//! | 5 | version is 2 or 3                                          | `UnknownVersion`          | 9568 §7.1 |
//! | 6 | version is the instance's (v3 drops v2 and vice versa)      | `VersionMismatch`         | 9568 §7.1, §8.4 |
//! | 7 | type is ADVERTISEMENT                                      | `BadType`                 | 9568 §5.2.2 |
//! | 8 | v2 is IPv4 only                                            | `V2OverIpv6`              | 3768 |
//! | 9 | length matches Count (complete packet)                      | `LengthMismatch`          | 9568 §7.1 |
//! |10 | checksum (instance's `v3_checksum_as_v2` honoured)          | `BadChecksum`             | 9568 §7.1 |
//! |11 | v2 auth type is 0 or 1 (2 = IP AH refused)                  | `AuthIpAh`, `UnknownAuthType` | 3768 §5.3.6 |
//! |12 | Max Adver Int (v2: Adver Int) is not 0                      | `ZeroAdvertInterval`      | 9568 §5.2.7: a 0 interval makes Master_Down_Interval 0, so one such advert per Skew_Time flaps every router |
//! |13 | Count IPvX Addrs is not 0                                   | `ZeroAddressCount`        | 9568 §5.2.5, erratum 8299 |
//! |14 | VRID configured on this interface ...                       | `VridNotConfigured`       | 9568 §7.1 |
//! |15 | ... for this address family                                 | `AddressFamilyMismatch`   | 9568 §1 (families independent) |
//! |16 | source is a unicast address: not 0.0.0.0/8, 255.255.255.255, ::, multicast or loopback | `InvalidSource` | 9568 §5.1.1.1, §5.1.2.1 (the sender's primary / link-local address) |
//! |17 | source is not one of ours (the instance's advert source, the interface's addresses at startup; a VIP is never "ours": the owner sends from it) | `OwnAddress` | a spoof or a looped-back copy |
//! |18 | destination is the VRRP group (224.0.0.18 / ff02::12), or a unicast address when unicast peers are configured | `NotVrrpGroup`, `UnicastWithoutPeers` | 9568 §5.1.1.2, §5.1.2.2; keepalived `unicast_peer` |
//! |19 | source is a configured unicast peer (if any are configured) | `UnknownPeer`             | keepalived `unicast_peer` |
//! |20 | IPv6 source is link-local, unless it is a configured unicast peer | `Ipv6SourceNotLinkLocal` | 9568 §5.1.2.1; keepalived's unicast mode may use global addresses |
//! |21 | the local router is not the address owner (priority 255)    | `LocalIsOwner`            | 9568 §7.1 |
//! |22 | v2 auth type equals the configured one                      | `AuthTypeMismatch`        | 3768 §7.1 |
//! |23 | v2 simple password equals the configured one                | `AuthMismatch`            | RFC 2338 §7.1 |
//! |24 | address list equals the configured one (as a set)           | v3: accepted, `Valid::addr_mismatch` (the driver counts and logs it); v2: accepted with the flag only from the owner (priority 255), else `AddrListMismatch` | 9568 §7.1 (MAY, SHOULD log), 3768 §7.1 |
//! |25 | v2 Adver Int equals the configured one                      | `AdvertIntervalMismatch`  | 3768 §7.1 |
//!
//! Both families are handled alike: the XDP program hands every VRRP packet of a configured VRID
//! to user space whatever its addresses, and the rules above decide.

use core::net::IpAddr;

use super::checksum::IPPROTO_VRRP;
use super::frame::{vrrp_group, FrameError, MacAddr, RxFrame, VRRP_TTL};
use super::vrrp::{
    Auth, ChecksumOpts, Family, IpPair, Version, VrrpError, VrrpPacket, VrrpRepr, HEADER_LEN,
};

/// What receive validation needs to know about one configured virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceCfg {
    pub vrid: u8,
    pub family: Family,
    pub version: Version,
    /// Local priority; 255 means this router owns the addresses.
    pub priority: u8,
    /// Configured advert interval in centiseconds (v2 must match it exactly).
    pub advert_int: u16,
    /// v2 authentication; must be [`Auth::None`] for v3.
    pub auth: Auth,
    /// The configured virtual addresses.
    pub addrs: Vec<IpAddr>,
    pub checksum: ChecksumOpts,
    /// Unicast peers; empty = multicast mode, any source accepted.
    pub unicast_peers: Vec<IpAddr>,
    /// This router's own addresses: the instance's advert source and the interface's addresses
    /// at startup, VIPs excluded (an address owner legitimately sends from a VIP). An advert
    /// from one of them is a spoof or a loop (check 17).
    pub local_addrs: Vec<IpAddr>,
}

/// An accepted advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    /// Index of the matching entry in the `instances` slice.
    pub instance: usize,
    pub src_mac: MacAddr,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub vlan: Option<u16>,
    pub vrrp: VrrpRepr,
    /// The advertised address list differs from the configured one (to be logged/counted).
    pub addr_mismatch: bool,
}

/// Why a received advert was dropped. One variant per counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RxError {
    #[error("malformed frame: {0}")]
    MalformedFrame(FrameError),
    #[error("IP protocol {0} is not VRRP (112)")]
    NotVrrp(u8),
    #[error("TTL / hop limit {0} is not 255")]
    TtlNot255(u8),
    #[error("VRRP message of {0} bytes is shorter than the 8-byte header")]
    TooShort(usize),
    #[error("unknown VRRP version {0}")]
    UnknownVersion(u8),
    #[error("VRRP version {got:?} received by a {want:?} virtual router")]
    VersionMismatch { got: Version, want: Version },
    #[error("VRRP type {0} is not ADVERTISEMENT")]
    BadType(u8),
    #[error("VRRP v2 received over IPv6")]
    V2OverIpv6,
    #[error("VRRP length {got} does not match the address count (expected {expected})")]
    LengthMismatch { expected: usize, got: usize },
    #[error("VRRP checksum 0x{got:04x} is wrong (expected 0x{expected:04x})")]
    BadChecksum { got: u16, expected: u16 },
    #[error("VRRP v2 auth type 2 (IP AH) is not supported")]
    AuthIpAh,
    #[error("unknown VRRP v2 auth type {0}")]
    UnknownAuthType(u8),
    #[error("VRID {0} is not configured on this interface")]
    VridNotConfigured(u8),
    #[error("VRID {vrid} is configured only for the other address family (got {got:?})")]
    AddressFamilyMismatch { vrid: u8, got: Family },
    #[error("advert from {0}, which is not a configured unicast peer")]
    UnknownPeer(IpAddr),
    #[error("local router is the address owner (priority 255); advert discarded")]
    LocalIsOwner,
    #[error("VRRP v2 auth type {got} differs from the configured {want}")]
    AuthTypeMismatch { got: u8, want: u8 },
    #[error("VRRP v2 authentication password mismatch")]
    AuthMismatch,
    #[error("VRRP v2 address list differs from the configured one (sender is not the owner)")]
    AddrListMismatch,
    #[error("VRRP v2 advert interval {got} cs differs from the configured {want} cs")]
    AdvertIntervalMismatch { got: u16, want: u16 },
    #[error("advert interval 0 is invalid (it would make Master_Down_Interval 0)")]
    ZeroAdvertInterval,
    #[error("advert lists no address (Count IPvX Addrs 0)")]
    ZeroAddressCount,
    #[error("source {0} is not a unicast address")]
    InvalidSource(IpAddr),
    #[error("source {0} is an address of this router (spoofed or looped back)")]
    OwnAddress(IpAddr),
    #[error("destination {0} is neither the VRRP group nor a unicast address")]
    NotVrrpGroup(IpAddr),
    #[error("advert sent to unicast {0}, but no unicast peers are configured")]
    UnicastWithoutPeers(IpAddr),
    #[error("IPv6 source {0} is not link-local and not a configured unicast peer")]
    Ipv6SourceNotLinkLocal(IpAddr),
}

impl RxError {
    /// Number of variants (size of a counter array).
    pub const COUNT: usize = 27;

    /// Counter names, indexed by [`as_index`](Self::as_index). Stable: append only.
    pub const NAMES: [&'static str; Self::COUNT] = [
        "malformed_frame",
        "not_vrrp",
        "ttl_not_255",
        "too_short",
        "unknown_version",
        "version_mismatch",
        "bad_type",
        "v2_over_ipv6",
        "length_mismatch",
        "bad_checksum",
        "auth_ip_ah",
        "unknown_auth_type",
        "vrid_not_configured",
        "address_family_mismatch",
        "unknown_peer",
        "local_is_owner",
        "auth_type_mismatch",
        "auth_mismatch",
        "addr_list_mismatch",
        "advert_interval_mismatch",
        "zero_advert_interval",
        "zero_address_count",
        "invalid_source",
        "own_address",
        "not_vrrp_group",
        "unicast_without_peers",
        "ipv6_source_not_link_local",
    ];

    /// Stable counter index in `0..COUNT`.
    pub fn as_index(&self) -> usize {
        match self {
            RxError::MalformedFrame(_) => 0,
            RxError::NotVrrp(_) => 1,
            RxError::TtlNot255(_) => 2,
            RxError::TooShort(_) => 3,
            RxError::UnknownVersion(_) => 4,
            RxError::VersionMismatch { .. } => 5,
            RxError::BadType(_) => 6,
            RxError::V2OverIpv6 => 7,
            RxError::LengthMismatch { .. } => 8,
            RxError::BadChecksum { .. } => 9,
            RxError::AuthIpAh => 10,
            RxError::UnknownAuthType(_) => 11,
            RxError::VridNotConfigured(_) => 12,
            RxError::AddressFamilyMismatch { .. } => 13,
            RxError::UnknownPeer(_) => 14,
            RxError::LocalIsOwner => 15,
            RxError::AuthTypeMismatch { .. } => 16,
            RxError::AuthMismatch => 17,
            RxError::AddrListMismatch => 18,
            RxError::AdvertIntervalMismatch { .. } => 19,
            RxError::ZeroAdvertInterval => 20,
            RxError::ZeroAddressCount => 21,
            RxError::InvalidSource(_) => 22,
            RxError::OwnAddress(_) => 23,
            RxError::NotVrrpGroup(_) => 24,
            RxError::UnicastWithoutPeers(_) => 25,
            RxError::Ipv6SourceNotLinkLocal(_) => 26,
        }
    }

    /// Stable counter name (snake_case).
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.as_index()]
    }
}

impl From<VrrpError> for RxError {
    fn from(e: VrrpError) -> RxError {
        match e {
            VrrpError::Truncated { len } => RxError::TooShort(len),
            VrrpError::UnknownVersion(v) => RxError::UnknownVersion(v),
            VrrpError::BadType(t) => RxError::BadType(t),
            // RxFrame never yields mixed families; keep the mapping total anyway.
            VrrpError::MixedFamily => RxError::MalformedFrame(FrameError::Vrrp(e)),
            VrrpError::V2OverIpv6 => RxError::V2OverIpv6,
            VrrpError::LengthMismatch { expected, got, .. } => {
                RxError::LengthMismatch { expected, got }
            }
            VrrpError::BadChecksum { got, expected } => RxError::BadChecksum { got, expected },
            VrrpError::AuthIpAh => RxError::AuthIpAh,
            VrrpError::UnknownAuthType(t) => RxError::UnknownAuthType(t),
        }
    }
}

/// A unicast address a router can send from: not unspecified (0.0.0.0/8, ::), broadcast,
/// multicast or loopback.
fn is_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            v4.octets()[0] != 0 && !v4.is_broadcast() && !v4.is_multicast() && !v4.is_loopback()
        }
        IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast() && !v6.is_loopback(),
    }
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// Validate raw frame bytes (convenience: [`RxFrame::parse`] then [`validate()`]).
pub fn validate_bytes(frame: &[u8], instances: &[InstanceCfg]) -> Result<Valid, RxError> {
    let rx = RxFrame::parse(frame).map_err(RxError::MalformedFrame)?;
    validate(&rx, instances)
}

/// A received advert as its parts, without a frame: what the XDP program hands to user space
/// through the ring buffer (`vrrp_common::AdvertEvent`), which has already checked the Ethernet
/// and IP headers and that the IP protocol is VRRP. [`validate_parts`] applies checks 3-25.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxParts<'a> {
    pub src_mac: MacAddr,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub hop_limit: u8,
    /// 802.1Q VLAN ID, if the frame was tagged.
    pub vlan: Option<u16>,
    /// The VRRP message (the IP payload). A capture shorter than the message fails the length
    /// check (`LengthMismatch`).
    pub payload: &'a [u8],
}

impl<'a> From<&RxFrame<'a>> for RxParts<'a> {
    fn from(rx: &RxFrame<'a>) -> RxParts<'a> {
        RxParts {
            src_mac: rx.eth.src,
            src_ip: rx.src_ip,
            dst_ip: rx.dst_ip,
            hop_limit: rx.hop_limit,
            vlan: rx.eth.vlan,
            payload: rx.payload,
        }
    }
}

/// Validate a received advert against the virtual routers configured on its interface.
pub fn validate(rx: &RxFrame<'_>, instances: &[InstanceCfg]) -> Result<Valid, RxError> {
    if rx.protocol != IPPROTO_VRRP {
        return Err(RxError::NotVrrp(rx.protocol));
    }
    validate_parts(&RxParts::from(rx), instances)
}

/// Validate an advert given as its parts (checks 3-25 of the table above; the caller has
/// established that it is a VRRP packet, e.g. the XDP program). [`validate()`] calls this after
/// parsing the frame, so both paths apply the same rules.
pub fn validate_parts(rx: &RxParts<'_>, instances: &[InstanceCfg]) -> Result<Valid, RxError> {
    if rx.hop_limit != VRRP_TTL {
        return Err(RxError::TtlNot255(rx.hop_limit));
    }
    let pkt = VrrpPacket::new_checked(rx.payload)?;
    let version = match pkt.version() {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(RxError::UnknownVersion(v)),
    };
    let family = Family::of(rx.src_ip);
    let vrid = pkt.vrid();
    let found = instances
        .iter()
        .position(|c| c.vrid == vrid && c.family == family);
    let cfg = found.map(|i| &instances[i]);
    if let Some(cfg) = cfg {
        if cfg.version != version {
            return Err(RxError::VersionMismatch {
                got: version,
                want: cfg.version,
            });
        }
    }
    let opts = cfg.map(|c| c.checksum).unwrap_or_default();
    let ip = IpPair::new(rx.src_ip, rx.dst_ip);
    let vrrp = VrrpRepr::parse(&pkt, &ip, opts)?;
    if vrrp.max_advert_int == 0 {
        return Err(RxError::ZeroAdvertInterval);
    }
    if vrrp.addrs.is_empty() {
        return Err(RxError::ZeroAddressCount);
    }
    let (index, cfg) = match (found, cfg) {
        (Some(i), Some(c)) => (i, c),
        _ => {
            return Err(if instances.iter().any(|c| c.vrid == vrid) {
                RxError::AddressFamilyMismatch { vrid, got: family }
            } else {
                RxError::VridNotConfigured(vrid)
            })
        }
    };
    if !is_unicast(rx.src_ip) {
        return Err(RxError::InvalidSource(rx.src_ip));
    }
    if cfg.local_addrs.contains(&rx.src_ip) {
        return Err(RxError::OwnAddress(rx.src_ip));
    }
    if rx.dst_ip != vrrp_group(family) {
        if !is_unicast(rx.dst_ip) {
            return Err(RxError::NotVrrpGroup(rx.dst_ip));
        }
        if cfg.unicast_peers.is_empty() {
            return Err(RxError::UnicastWithoutPeers(rx.dst_ip));
        }
    }
    if !cfg.unicast_peers.is_empty() && !cfg.unicast_peers.contains(&rx.src_ip) {
        return Err(RxError::UnknownPeer(rx.src_ip));
    }
    if let IpAddr::V6(v6) = rx.src_ip {
        // A configured peer passed check 19; anything else must be link-local.
        if cfg.unicast_peers.is_empty() && (v6.segments()[0] & 0xffc0) != 0xfe80 {
            return Err(RxError::Ipv6SourceNotLinkLocal(rx.src_ip));
        }
    }
    if cfg.priority == 255 {
        return Err(RxError::LocalIsOwner);
    }
    let addr_mismatch = !same_set(&vrrp.addrs, &cfg.addrs);
    if version == Version::V2 {
        if vrrp.auth.type_number() != cfg.auth.type_number() {
            return Err(RxError::AuthTypeMismatch {
                got: vrrp.auth.type_number(),
                want: cfg.auth.type_number(),
            });
        }
        if vrrp.auth != cfg.auth {
            return Err(RxError::AuthMismatch);
        }
        if addr_mismatch && vrrp.priority != 255 {
            return Err(RxError::AddrListMismatch);
        }
        if vrrp.max_advert_int != cfg.advert_int {
            return Err(RxError::AdvertIntervalMismatch {
                got: vrrp.max_advert_int,
                want: cfg.advert_int,
            });
        }
    }
    debug_assert!(rx.payload.len() >= HEADER_LEN);
    Ok(Valid {
        instance: index,
        src_mac: rx.src_mac,
        src_ip: rx.src_ip,
        dst_ip: rx.dst_ip,
        vlan: rx.vlan,
        vrrp,
        addr_mismatch,
    })
}
