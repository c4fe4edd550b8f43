//! The VRRP advertisement: version 3 (RFC 9568 §5) for IPv4 and IPv6, version 2 (RFC 3768 §5)
//! for IPv4.
//!
//! No published crate speaks VRRP, so this one is written here in smoltcp's style: a checked
//! view [`VrrpPacket`] over a byte buffer and a plain [`VrrpRepr`], with
//! [`VrrpRepr::parse`] / [`VrrpRepr::emit`] symmetric.
//!
//! ```text
//! v3 (RFC 9568 §5.1)                      v2 (RFC 3768 §5.1)
//! off  field                              off  field
//!  0   version(4 bits) | type(4 bits)      0   version(4 bits) | type(4 bits)
//!  1   Virtual Rtr ID                      1   Virtual Rtr ID
//!  2   Priority                            2   Priority
//!  3   Count IPvX Addrs                    3   Count IP Addrs
//!  4   rsvd(4 bits) | Max Adver Int(12)    4   Auth Type
//!      (big-endian, centiseconds)          5   Adver Int (seconds)
//!  6   Checksum (16)                       6   Checksum (16)
//!  8   Count x IPv4 (4) or IPv6 (16)       8   Count x IPv4 (4)
//!                                          8+4n Authentication Data (8 bytes)
//! ```
//!
//! The interval is kept in one unit for both versions: [`VrrpRepr::max_advert_int`] is in
//! centiseconds. A v2 packet's Adver Int of `s` seconds parses to `s * 100`; emitting v2 needs a
//! whole number of seconds (a multiple of 100, at most 255 s) and is refused otherwise.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use crate::vocab::IPPROTO_VRRP;
pub use crate::vocab::{Family, Version};

/// Length of the fixed VRRP header (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the v2 Authentication Data trailer.
pub const V2_AUTH_LEN: usize = 8;
/// The only packet type defined: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Largest v3 Max Adver Int (12 bits), in centiseconds.
pub const V3_MAX_ADVERT_INT: u16 = 0x0fff;

mod field {
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v3: reserved nibble + 12-bit Max Adver Int; v2: Auth Type, Adver Int.
    pub const INTERVAL: core::ops::Range<usize> = 4..6;
    pub const CHECKSUM: core::ops::Range<usize> = 6..8;
}

/// v2 authentication (RFC 3768 §5.3.6; RFC 2338 for type 1). v3 has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0. On v2 the 8 Authentication Data bytes are sent as zero and ignored on receipt.
    None,
    /// Type 1: an up to 8-byte clear-text password, zero padded (keepalived's `auth_type PASS`).
    Simple([u8; 8]),
}

impl Auth {
    /// `Auth::Simple` from a password, zero-padded; `None` if longer than 8 bytes.
    pub fn simple(password: &[u8]) -> Option<Auth> {
        if password.len() > 8 {
            return None;
        }
        let mut data = [0u8; 8];
        data[..password.len()].copy_from_slice(password);
        Some(Auth::Simple(data))
    }

    /// The v2 Auth Type value.
    pub fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Simple(_) => 1,
        }
    }
}

/// The IP addresses around a VRRP message: the v3 checksum covers them (pseudo-header) and the
/// address family decides the address-list layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPair {
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl IpPair {
    pub fn new(src: impl Into<IpAddr>, dst: impl Into<IpAddr>) -> IpPair {
        IpPair {
            src: src.into(),
            dst: dst.into(),
        }
    }

    /// The family, or `None` if `src` and `dst` are of different families.
    pub fn family(&self) -> Option<Family> {
        let f = Family::of(self.src);
        (f == Family::of(self.dst)).then_some(f)
    }
}

/// Checksum interoperability options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChecksumOpts {
    /// keepalived's `v3_checksum_as_v2`: for v3 over IPv4, emit the checksum over the VRRP
    /// message only (no pseudo-header), and on parse accept either form.
    /// Has no effect on IPv6 or on v2.
    pub v3_checksum_as_v2: bool,
}

/// Why a VRRP message did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    #[error("VRRP message of {len} bytes is shorter than the {HEADER_LEN}-byte header")]
    Truncated { len: usize },
    #[error("unknown VRRP version {0} (only 2 and 3 exist)")]
    UnknownVersion(u8),
    #[error("VRRP packet type {0} is not ADVERTISEMENT (1)")]
    BadType(u8),
    #[error("IP source and destination are of different address families")]
    MixedFamily,
    #[error("VRRP version 2 is IPv4 only but arrived over IPv6")]
    V2OverIpv6,
    #[error("VRRP length {got} does not match {count} addresses (expected {expected} bytes)")]
    LengthMismatch {
        count: u8,
        expected: usize,
        got: usize,
    },
    #[error("VRRP checksum 0x{got:04x} is wrong (expected 0x{expected:04x})")]
    BadChecksum { got: u16, expected: u16 },
    #[error("VRRP v2 auth type 2 (IP Authentication Header) is not supported")]
    AuthIpAh,
    #[error("unknown VRRP v2 auth type {0}")]
    UnknownAuthType(u8),
}

/// Why a [`VrrpRepr`] could not be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of {have} bytes is too small, {need} needed")]
    BufferTooSmall { need: usize, have: usize },
    #[error("IP source and destination are of different address families")]
    MixedFamily,
    #[error("virtual address {0} is not of the IP header's address family")]
    AddressFamily(IpAddr),
    #[error("VRRP version 2 is IPv4 only")]
    V2OverIpv6,
    #[error("{0} addresses do not fit the 8-bit count")]
    TooManyAddresses(usize),
    #[error("advert interval of {centis} cs cannot be expressed in VRRP {version:?}")]
    IntervalOutOfRange { centis: u16, version: Version },
    #[error("VRRP v3 carries no authentication")]
    AuthOnV3,
}

/// A read/write view of a VRRP message in a buffer (smoltcp style). Accessors on a buffer that
/// passed [`VrrpPacket::new_checked`] never panic.
#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wrap without checking; accessors may panic if the buffer is shorter than [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> VrrpPacket<T> {
        VrrpPacket { buffer }
    }

    /// Wrap, checking that the fixed header is there.
    pub fn new_checked(buffer: T) -> Result<VrrpPacket<T>, VrrpError> {
        let p = VrrpPacket::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), VrrpError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(VrrpError::Truncated { len })
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Whole message length (the buffer is the message: IP gave its exact length).
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v3: the 12-bit Max Adver Int in centiseconds (reserved bits masked off).
    pub fn v3_max_advert_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::INTERVAL];
        u16::from_be_bytes([b[0], b[1]]) & V3_MAX_ADVERT_INT
    }

    /// v3: the 4 reserved bits (must be sent as 0, ignored on receipt).
    pub fn v3_reserved(&self) -> u8 {
        self.buffer.as_ref()[field::INTERVAL.start] >> 4
    }

    /// v2: Auth Type.
    pub fn v2_auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::INTERVAL.start]
    }

    /// v2: Adver Int in seconds.
    pub fn v2_advert_int(&self) -> u8 {
        self.buffer.as_ref()[field::INTERVAL.start + 1]
    }

    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Everything after the fixed header: the address list (and the v2 auth data).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Does the checksum verify? `ip` supplies the v3 pseudo-header.
    pub fn verify_checksum(&self, ip: &IpPair, opts: ChecksumOpts) -> bool {
        let data = self.buffer.as_ref();
        if self.version() == 3 {
            let Some(acc) = checksum::pseudo_header(ip.src, ip.dst, IPPROTO_VRRP, data.len())
            else {
                return false;
            };
            if checksum::finish(checksum::accumulate(acc, data)) == 0 {
                return true;
            }
            opts.v3_checksum_as_v2
                && ip.family() == Some(Family::V4)
                && checksum::checksum(data) == 0
        } else {
            checksum::checksum(data) == 0
        }
    }

    /// The checksum this message should carry (computed with the field taken as zero).
    pub fn expected_checksum(&self, ip: &IpPair, opts: ChecksumOpts) -> u16 {
        let data = self.buffer.as_ref();
        let mut acc = 0;
        if self.version() == 3 && !(opts.v3_checksum_as_v2 && ip.family() == Some(Family::V4)) {
            if let Some(ph) = checksum::pseudo_header(ip.src, ip.dst, IPPROTO_VRRP, data.len()) {
                acc = ph;
            }
        }
        acc = checksum::accumulate(acc, &data[..field::CHECKSUM.start]);
        acc = checksum::accumulate(acc, &data[field::CHECKSUM.end..]);
        checksum::finish(acc)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    pub fn set_vrid(&mut self, v: u8) {
        self.buffer.as_mut()[field::VRID] = v;
    }

    pub fn set_priority(&mut self, v: u8) {
        self.buffer.as_mut()[field::PRIORITY] = v;
    }

    pub fn set_count(&mut self, v: u8) {
        self.buffer.as_mut()[field::COUNT] = v;
    }

    /// v3: writes the 12-bit interval with the reserved bits zero.
    pub fn set_v3_max_advert_int(&mut self, centis: u16) {
        self.buffer.as_mut()[field::INTERVAL]
            .copy_from_slice(&(centis & V3_MAX_ADVERT_INT).to_be_bytes());
    }

    pub fn set_v2_auth_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::INTERVAL.start] = v;
    }

    pub fn set_v2_advert_int(&mut self, secs: u8) {
        self.buffer.as_mut()[field::INTERVAL.start + 1] = secs;
    }

    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Compute and store the checksum.
    pub fn fill_checksum(&mut self, ip: &IpPair, opts: ChecksumOpts) {
        let c = self.expected_checksum(ip, opts);
        self.set_checksum(c);
    }
}

/// A parsed VRRP advertisement (type 1 is the only type, so it is not stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VrrpRepr {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds (v3: 12 bits, 0..=4095; v2: seconds × 100).
    pub max_advert_int: u16,
    /// v2 only; always [`Auth::None`] for v3.
    pub auth: Auth,
    /// The virtual addresses, all of the IP header's family, in packet order.
    pub addrs: Vec<IpAddr>,
}

impl VrrpRepr {
    /// Parse and verify (checksum included) a VRRP message. `packet` must span exactly the IP
    /// payload; `ip` is the enclosing header's source and destination.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &VrrpPacket<&T>,
        ip: &IpPair,
        opts: ChecksumOpts,
    ) -> Result<VrrpRepr, VrrpError> {
        packet.check_len()?;
        let version = match packet.version() {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(VrrpError::UnknownVersion(v)),
        };
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(VrrpError::BadType(packet.msg_type()));
        }
        let family = ip.family().ok_or(VrrpError::MixedFamily)?;
        if version == Version::V2 && family == Family::V6 {
            return Err(VrrpError::V2OverIpv6);
        }
        let count = packet.count();
        let addrs_len = usize::from(count) * family.addr_len();
        let expected = HEADER_LEN
            + addrs_len
            + if version == Version::V2 {
                V2_AUTH_LEN
            } else {
                0
            };
        if packet.len() != expected {
            return Err(VrrpError::LengthMismatch {
                count,
                expected,
                got: packet.len(),
            });
        }
        if !packet.verify_checksum(ip, opts) {
            return Err(VrrpError::BadChecksum {
                got: packet.checksum(),
                expected: packet.expected_checksum(ip, ChecksumOpts::default()),
            });
        }
        let payload = packet.payload();
        let (list, auth_data) = payload.split_at(addrs_len.min(payload.len()));
        let addrs = match family {
            Family::V4 => list
                .chunks_exact(4)
                .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
                .collect(),
            Family::V6 => list
                .chunks_exact(16)
                .map(|c| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                })
                .collect(),
        };
        let (max_advert_int, auth) = match version {
            Version::V3 => (packet.v3_max_advert_int(), Auth::None),
            Version::V2 => {
                let auth = match packet.v2_auth_type() {
                    0 => Auth::None,
                    1 => {
                        let mut data = [0u8; 8];
                        // Length was checked above: exactly 8 bytes of auth data remain.
                        if auth_data.len() == 8 {
                            data.copy_from_slice(auth_data);
                        }
                        Auth::Simple(data)
                    }
                    2 => return Err(VrrpError::AuthIpAh),
                    t => return Err(VrrpError::UnknownAuthType(t)),
                };
                (u16::from(packet.v2_advert_int()) * 100, auth)
            }
        };
        Ok(VrrpRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_advert_int,
            auth,
            addrs,
        })
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .addrs
                .iter()
                .map(|a| Family::of(*a).addr_len())
                .sum::<usize>()
            + if self.version == Version::V2 {
                V2_AUTH_LEN
            } else {
                0
            }
    }

    /// Check that this repr can be emitted inside an IP header with addresses `ip`.
    pub fn check_emit(&self, ip: &IpPair) -> Result<(), EmitError> {
        let family = ip.family().ok_or(EmitError::MixedFamily)?;
        if let Some(bad) = self.addrs.iter().find(|a| Family::of(**a) != family) {
            return Err(EmitError::AddressFamily(*bad));
        }
        if self.addrs.len() > usize::from(u8::MAX) {
            return Err(EmitError::TooManyAddresses(self.addrs.len()));
        }
        let bad_interval = EmitError::IntervalOutOfRange {
            centis: self.max_advert_int,
            version: self.version,
        };
        match self.version {
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EmitError::AuthOnV3);
                }
                if self.max_advert_int > V3_MAX_ADVERT_INT {
                    return Err(bad_interval);
                }
            }
            Version::V2 => {
                if family == Family::V6 {
                    return Err(EmitError::V2OverIpv6);
                }
                // Whole seconds only (`is_multiple_of` needs Rust 1.87; MSRV is 1.85).
                if self.max_advert_int / 100 * 100 != self.max_advert_int
                    || self.max_advert_int / 100 > 255
                {
                    return Err(bad_interval);
                }
            }
        }
        Ok(())
    }

    /// Write the message (checksum included) into `packet`, whose buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes long (the checksum covers the whole buffer; any
    /// other length is refused with [`EmitError::BufferTooSmall`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut VrrpPacket<T>,
        ip: &IpPair,
        opts: ChecksumOpts,
    ) -> Result<(), EmitError> {
        self.check_emit(ip)?;
        let need = self.buffer_len();
        let have = packet.len();
        if have != need {
            return Err(EmitError::BufferTooSmall { need, have });
        }
        packet.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        // check_emit bounded the count to 255.
        packet.set_count(self.addrs.len() as u8);
        match self.version {
            Version::V3 => packet.set_v3_max_advert_int(self.max_advert_int),
            Version::V2 => {
                packet.set_v2_auth_type(self.auth.type_number());
                packet.set_v2_advert_int((self.max_advert_int / 100) as u8);
            }
        }
        packet.set_checksum(0);
        let payload = packet.payload_mut();
        let mut off = 0;
        for a in &self.addrs {
            match a {
                IpAddr::V4(v4) => {
                    payload[off..off + 4].copy_from_slice(&v4.octets());
                    off += 4;
                }
                IpAddr::V6(v6) => {
                    payload[off..off + 16].copy_from_slice(&v6.octets());
                    off += 16;
                }
            }
        }
        if self.version == Version::V2 {
            let data = match self.auth {
                Auth::None => [0u8; 8],
                Auth::Simple(d) => d,
            };
            payload[off..off + V2_AUTH_LEN].copy_from_slice(&data);
        }
        packet.fill_checksum(ip, opts);
        Ok(())
    }

    /// Emit into a fresh `Vec`.
    pub fn to_bytes(&self, ip: &IpPair, opts: ChecksumOpts) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut VrrpPacket::new_unchecked(&mut buf[..]), ip, opts)?;
        Ok(buf)
    }

    /// Parse a byte slice (convenience over [`VrrpPacket::new_checked`] + [`parse`](Self::parse)).
    pub fn from_bytes(
        bytes: &[u8],
        ip: &IpPair,
        opts: ChecksumOpts,
    ) -> Result<VrrpRepr, VrrpError> {
        VrrpRepr::parse(&VrrpPacket::new_checked(bytes)?, ip, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn v4pair() -> IpPair {
        IpPair::new(Ipv4Addr::new(10, 250, 0, 1), Ipv4Addr::new(224, 0, 0, 18))
    }

    fn v6pair() -> IpPair {
        IpPair::new(
            "fe80::aff:fefa:1".parse::<Ipv6Addr>().unwrap(),
            "ff02::12".parse::<Ipv6Addr>().unwrap(),
        )
    }

    // VRRP payloads cut from the captures in tests/fixtures (keepalived), checked against tshark.
    const KA_V2_PASS: &str = "2133960101018fbd0afa00647062736563726574";
    const KA_V3_V4: &str = "313396010064417f0afa0064";
    const KA_V3_V6: &str = "3133960100642ffdfd000250000000000000000000000100";

    #[test]
    fn parse_keepalived_v2_pass() {
        let bytes = hex(KA_V2_PASS);
        let r = VrrpRepr::from_bytes(&bytes, &v4pair(), ChecksumOpts::default()).unwrap();
        assert_eq!(
            r,
            VrrpRepr {
                version: Version::V2,
                vrid: 51,
                priority: 150,
                max_advert_int: 100,
                auth: Auth::simple(b"pbsecret").unwrap(),
                addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 250, 0, 100))],
            }
        );
        assert_eq!(
            VrrpPacket::new_checked(&bytes[..]).unwrap().checksum(),
            0x8fbd
        );
    }

    #[test]
    fn parse_keepalived_v3_ipv4_and_ipv6() {
        let r = VrrpRepr::from_bytes(&hex(KA_V3_V4), &v4pair(), ChecksumOpts::default()).unwrap();
        assert_eq!(
            (r.version, r.vrid, r.priority, r.max_advert_int),
            (Version::V3, 51, 150, 100)
        );
        assert_eq!(r.addrs, vec![IpAddr::V4(Ipv4Addr::new(10, 250, 0, 100))]);
        let r = VrrpRepr::from_bytes(&hex(KA_V3_V6), &v6pair(), ChecksumOpts::default()).unwrap();
        assert_eq!(r.addrs, vec!["fd00:250::100".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn emit_reproduces_captured_bytes() {
        for (h, ip) in [
            (KA_V2_PASS, v4pair()),
            (KA_V3_V4, v4pair()),
            (KA_V3_V6, v6pair()),
        ] {
            let bytes = hex(h);
            let r = VrrpRepr::from_bytes(&bytes, &ip, ChecksumOpts::default()).unwrap();
            assert_eq!(
                r.to_bytes(&ip, ChecksumOpts::default()).unwrap(),
                bytes,
                "{h}"
            );
        }
    }

    #[test]
    fn v3_checksum_covers_pseudo_header() {
        let bytes = hex(KA_V3_V4);
        let other_src = IpPair::new(Ipv4Addr::new(10, 250, 0, 2), Ipv4Addr::new(224, 0, 0, 18));
        assert!(matches!(
            VrrpRepr::from_bytes(&bytes, &other_src, ChecksumOpts::default()),
            Err(VrrpError::BadChecksum { got: 0x417f, .. })
        ));
    }

    #[test]
    fn v3_checksum_as_v2_interop() {
        let ip = v4pair();
        let repr = VrrpRepr::from_bytes(&hex(KA_V3_V4), &ip, ChecksumOpts::default()).unwrap();
        let as_v2 = ChecksumOpts {
            v3_checksum_as_v2: true,
        };
        let bytes = repr.to_bytes(&ip, as_v2).unwrap();
        // Over the message only: the plain checksum of the bytes is zero...
        assert_eq!(checksum::checksum(&bytes), 0);
        assert_ne!(bytes, hex(KA_V3_V4));
        // ...refused by a strict receiver, accepted with the option (which also accepts RFC form).
        assert!(matches!(
            VrrpRepr::from_bytes(&bytes, &ip, ChecksumOpts::default()),
            Err(VrrpError::BadChecksum { .. })
        ));
        assert_eq!(VrrpRepr::from_bytes(&bytes, &ip, as_v2).unwrap(), repr);
        assert_eq!(
            VrrpRepr::from_bytes(&hex(KA_V3_V4), &ip, as_v2).unwrap(),
            repr
        );
        // The option does not touch IPv6.
        let r6 = VrrpRepr::from_bytes(&hex(KA_V3_V6), &v6pair(), as_v2).unwrap();
        assert_eq!(r6.to_bytes(&v6pair(), as_v2).unwrap(), hex(KA_V3_V6));
    }

    #[test]
    fn v3_reserved_bits_ignored_on_receive_zero_on_send() {
        let ip = v4pair();
        let mut bytes = hex(KA_V3_V4);
        bytes[4] |= 0xf0;
        let mut p = VrrpPacket::new_unchecked(&mut bytes[..]);
        p.fill_checksum(&ip, ChecksumOpts::default());
        let r = VrrpRepr::from_bytes(&bytes, &ip, ChecksumOpts::default()).unwrap();
        assert_eq!(r.max_advert_int, 100);
        assert_eq!(r.to_bytes(&ip, ChecksumOpts::default()).unwrap()[4] >> 4, 0);
    }

    #[test]
    fn parse_errors() {
        let ip = v4pair();
        let o = ChecksumOpts::default();
        let good = hex(KA_V3_V4);
        let refill = |mut b: Vec<u8>| {
            VrrpPacket::new_unchecked(&mut b[..]).fill_checksum(&ip, o);
            b
        };
        assert_eq!(
            VrrpRepr::from_bytes(&good[..7], &ip, o),
            Err(VrrpError::Truncated { len: 7 })
        );
        let mut b = good.clone();
        b[0] = 0x41;
        assert_eq!(
            VrrpRepr::from_bytes(&refill(b), &ip, o),
            Err(VrrpError::UnknownVersion(4))
        );
        let mut b = good.clone();
        b[0] = 0x32;
        assert_eq!(
            VrrpRepr::from_bytes(&refill(b), &ip, o),
            Err(VrrpError::BadType(2))
        );
        let mut b = good.clone();
        b[3] = 2;
        assert_eq!(
            VrrpRepr::from_bytes(&refill(b), &ip, o),
            Err(VrrpError::LengthMismatch {
                count: 2,
                expected: 16,
                got: 12
            })
        );
        let mut b = good.clone();
        b[2] = 151;
        assert!(matches!(
            VrrpRepr::from_bytes(&b, &ip, o),
            Err(VrrpError::BadChecksum { .. })
        ));
        let mixed = IpPair::new(
            Ipv4Addr::new(10, 0, 0, 1),
            "ff02::12".parse::<Ipv6Addr>().unwrap(),
        );
        assert_eq!(
            VrrpRepr::from_bytes(&good, &mixed, o),
            Err(VrrpError::MixedFamily)
        );
        // v2 over IPv6; v2 auth type 2 and 3.
        let v2 = hex(KA_V2_PASS);
        assert_eq!(
            VrrpRepr::from_bytes(&v2, &v6pair(), o),
            Err(VrrpError::V2OverIpv6)
        );
        let mut b = v2.clone();
        b[4] = 2;
        assert_eq!(
            VrrpRepr::from_bytes(&refill(b), &ip, o),
            Err(VrrpError::AuthIpAh)
        );
        let mut b = v2.clone();
        b[4] = 3;
        assert_eq!(
            VrrpRepr::from_bytes(&refill(b), &ip, o),
            Err(VrrpError::UnknownAuthType(3))
        );
    }

    #[test]
    fn emit_errors() {
        let ip = v4pair();
        let o = ChecksumOpts::default();
        let base = VrrpRepr {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            max_advert_int: 100,
            auth: Auth::None,
            addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
        };
        let r = VrrpRepr {
            max_advert_int: 4096,
            ..base.clone()
        };
        assert!(matches!(
            r.to_bytes(&ip, o),
            Err(EmitError::IntervalOutOfRange { .. })
        ));
        let r = VrrpRepr {
            auth: Auth::simple(b"x").unwrap(),
            ..base.clone()
        };
        assert_eq!(r.to_bytes(&ip, o), Err(EmitError::AuthOnV3));
        let r = VrrpRepr {
            version: Version::V2,
            max_advert_int: 150,
            ..base.clone()
        };
        assert!(matches!(
            r.to_bytes(&ip, o),
            Err(EmitError::IntervalOutOfRange { .. })
        ));
        let r = VrrpRepr {
            version: Version::V2,
            ..base.clone()
        };
        assert_eq!(
            r.to_bytes(&v6pair(), o),
            Err(EmitError::AddressFamily(base.addrs[0]))
        );
        let r = VrrpRepr {
            addrs: vec![base.addrs[0]; 256],
            ..base.clone()
        };
        assert_eq!(r.to_bytes(&ip, o), Err(EmitError::TooManyAddresses(256)));
        let mut short = [0u8; 8];
        assert_eq!(
            base.emit(&mut VrrpPacket::new_unchecked(&mut short[..]), &ip, o),
            Err(EmitError::BufferTooSmall { need: 12, have: 8 })
        );
        assert!(Auth::simple(b"123456789").is_none());
    }

    fn arb_repr_for(family: Family) -> impl Strategy<Value = (VrrpRepr, IpPair)> {
        let v2_allowed = family == Family::V4;
        let addr = match family {
            Family::V4 => any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())).boxed(),
            Family::V6 => any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into())).boxed(),
        };
        let pair = (addr.clone(), addr.clone()).prop_map(|(s, d)| IpPair { src: s, dst: d });
        (
            any::<bool>(),
            any::<u8>(),
            any::<u8>(),
            0u16..=4095,
            0u16..=255,
            proptest::option::of(any::<[u8; 8]>()),
            proptest::collection::vec(addr, 0..20),
            pair,
        )
            .prop_map(move |(v2, vrid, priority, int3, int2, pw, addrs, ip)| {
                let v2 = v2 && v2_allowed;
                let repr = if v2 {
                    VrrpRepr {
                        version: Version::V2,
                        vrid,
                        priority,
                        max_advert_int: int2 * 100,
                        auth: pw.map_or(Auth::None, Auth::Simple),
                        addrs,
                    }
                } else {
                    VrrpRepr {
                        version: Version::V3,
                        vrid,
                        priority,
                        max_advert_int: int3,
                        auth: Auth::None,
                        addrs,
                    }
                };
                (repr, ip)
            })
    }

    proptest! {
        #[test]
        fn roundtrip_v4((repr, ip) in arb_repr_for(Family::V4), as_v2 in any::<bool>()) {
            let o = ChecksumOpts { v3_checksum_as_v2: as_v2 };
            let bytes = repr.to_bytes(&ip, o).unwrap();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(VrrpRepr::from_bytes(&bytes, &ip, o).unwrap(), repr);
        }

        #[test]
        fn roundtrip_v6((repr, ip) in arb_repr_for(Family::V6)) {
            let o = ChecksumOpts::default();
            let bytes = repr.to_bytes(&ip, o).unwrap();
            prop_assert_eq!(VrrpRepr::from_bytes(&bytes, &ip, o).unwrap(), repr);
        }

        #[test]
        fn any_single_bit_flip_is_detected((repr, ip) in arb_repr_for(Family::V4), bit in any::<usize>()) {
            let o = ChecksumOpts::default();
            let mut bytes = repr.to_bytes(&ip, o).unwrap();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            // A flipped bit always breaks some check (checksum at least); it may never panic.
            prop_assert!(VrrpRepr::from_bytes(&bytes, &ip, o).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                       v6 in any::<bool>(), as_v2 in any::<bool>()) {
            let ip = if v6 { v6pair() } else { v4pair() };
            let _ = VrrpRepr::from_bytes(&bytes, &ip, ChecksumOpts { v3_checksum_as_v2: as_v2 });
        }
    }
}
