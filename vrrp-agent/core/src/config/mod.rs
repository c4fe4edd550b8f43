//! The configuration model, plain data with its validation (pure: no files, no flags). The
//! front-ends (the TOML reader and the `run` flags of the agent) turn what they read into an
//! [`InstanceInput`] and call [`InstanceInput::build`]; the rules and the defaults exist here
//! only. Errors are a [`FieldError`] naming the key; the front-end adds where it was
//! (`FILE:LINE: instance[0].priority: ...`, `--priority: ...`).
use std::{fmt, net::IpAddr, time::Duration};

use crate::{
    fsm::{self, ConfigError, Version},
    wire::{Auth, ChecksumOpts},
};

/// Longest interface name the kernel takes (IFNAMSIZ, with its NUL).
pub const IFNAMSIZ: usize = 16;
/// Highest `SCHED_RR` priority (`realtime_priority`).
pub const MAX_REALTIME_PRIORITY: u8 = 99;
/// Default `realtime_priority`: above normal processes, below the kernel's threaded IRQs (50).
pub const DEFAULT_REALTIME_PRIORITY: u8 = 10;

/// How to attach the XDP program (`[global] xdp_mode`, `--xdp-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic if the driver refuses it; generic on veth,
    /// where native XDP_TX is lost unless the peer also runs XDP.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

impl XdpMode {
    /// The values, as written in the file and on the command line.
    pub const NAMES: [&'static str; 3] = ["auto", "native", "generic"];

    pub fn parse(s: &str) -> Option<XdpMode> {
        match s {
            "auto" => Some(XdpMode::Auto),
            "native" => Some(XdpMode::Native),
            "generic" => Some(XdpMode::Generic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

impl std::str::FromStr for XdpMode {
    type Err = String;

    fn from_str(s: &str) -> Result<XdpMode, String> {
        XdpMode::parse(s).ok_or_else(|| format!("{s:?} is not one of auto, native, generic"))
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// keepalived's defaults.
pub const DEFAULT_PRIORITY: u8 = 100;
pub const DEFAULT_GARP_MASTER_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_GARP_MASTER_REPEAT: u32 = 5;

/// A virtual address with the prefix length it is added to the interface with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Gratuitous ARP / unsolicited NA after becoming Master (keepalived's `garp_master_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpConfig {
    /// A second burst this long after the transition (zero: none).
    pub master_delay: Duration,
    /// Packets per VIP in each burst.
    pub master_repeat: u32,
    /// Re-send a burst this often while Master (zero: never).
    pub master_refresh: Duration,
    /// Gap between two packets of a burst (`garp_interval` for IPv4, `gna_interval` for IPv6).
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_delay: DEFAULT_GARP_MASTER_DELAY,
            master_repeat: DEFAULT_GARP_MASTER_REPEAT,
            master_refresh: Duration::ZERO,
            interval: Duration::ZERO,
        }
    }
}

/// One validated virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub version: Version,
    pub advert_int_cs: u16,
    pub vips: Vec<Vip>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    /// keepalived `lower_prio_no_advert`: as master, do not answer lower-priority adverts.
    pub lower_prio_no_advert: bool,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub auth: Auth,
    pub garp: GarpConfig,
    pub checksum: ChecksumOpts,
    /// Fail-safe bound for the XDP fast path; `None`: the Master_Down_Interval.
    pub failsafe_timeout: Option<Duration>,
}

impl InstanceSpec {
    pub fn family(&self) -> fsm::Family {
        fsm::Family::of(self.vips[0].addr)
    }

    /// `vrrp_common::FAMILY_IPV4` / `FAMILY_IPV6`.
    pub fn family_tag(&self) -> u8 {
        match self.family() {
            fsm::Family::V4 => vrrp_common::FAMILY_IPV4,
            fsm::Family::V6 => vrrp_common::FAMILY_IPV6,
        }
    }

    pub fn wire_family(&self) -> crate::wire::Family {
        crate::wire::Family::of(self.vips[0].addr)
    }

    /// The state-machine configuration, with `primary` as the advert source.
    pub fn fsm_config(&self, primary: IpAddr) -> fsm::Config {
        fsm::Config {
            vrid: self.vrid,
            priority: self.priority,
            version: self.version,
            advert_interval_cs: self.advert_int_cs,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            accept_mode: self.accept_mode,
            lower_prio_no_advert: self.lower_prio_no_advert,
            primary_addr: primary,
            vips: self.vips.iter().map(|v| v.addr).collect(),
        }
    }

    /// One line for `check-config` and the startup log.
    pub fn describe(&self) -> String {
        let secs = |d: Duration| format!("{}s", d.as_secs_f64());
        format!(
            "instance {}: interface={} vrid={} family={} version={} priority={} advert_int={}s \
             vips={} preempt={} preempt_delay={} accept_mode={} lower_prio_no_advert={} \
             unicast_src_ip={} \
             unicast_peers={} auth={} garp_master_delay={} garp_master_repeat={} \
             garp_master_refresh={} garp_interval={} v3_checksum_as_v2={} failsafe_timeout={}",
            self.name,
            self.interface,
            self.vrid,
            match self.family() {
                fsm::Family::V4 => "ipv4",
                fsm::Family::V6 => "ipv6",
            },
            match self.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
            self.priority,
            f64::from(self.advert_int_cs) / 100.0,
            join(&self.vips),
            self.preempt,
            secs(self.preempt_delay),
            self.accept_mode,
            self.lower_prio_no_advert,
            self.unicast_src_ip
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            if self.unicast_peers.is_empty() {
                "-".into()
            } else {
                join(&self.unicast_peers)
            },
            match self.auth {
                Auth::None => "none",
                Auth::Simple(_) => "pass",
            },
            secs(self.garp.master_delay),
            self.garp.master_repeat,
            secs(self.garp.master_refresh),
            secs(self.garp.interval),
            self.checksum.v3_checksum_as_v2,
            self.failsafe_timeout
                .map(secs)
                .unwrap_or_else(|| "master_down_interval".into()),
        )
    }
}

fn join<T: fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub xdp_mode: XdpMode,
    /// `[global] require_failsafe`: refuse to start where the fail-safe would not outlive the
    /// agent (see `fastpath`).
    pub require_failsafe: bool,
    /// `SCHED_RR` priority of the agent's threads, 0 = normal scheduling ([`crate::sched`]).
    pub realtime_priority: u8,
    pub instances: Vec<InstanceSpec>,
}

impl AgentConfig {
    /// Interfaces in first-use order, each with the indices of its instances.
    pub fn by_interface(&self) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, inst) in self.instances.iter().enumerate() {
            match out.iter_mut().find(|(n, _)| *n == inst.interface) {
                Some((_, v)) => v.push(i),
                None => out.push((inst.interface.clone(), vec![i])),
            }
        }
        out
    }
}

/// Settings of one instance before validation, from the file or the flags. Numbers are wide so
/// that out-of-range values are reported as such, not as type errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceInput {
    pub name: Option<String>,
    pub interface: Option<String>,
    pub vrid: Option<i64>,
    pub priority: Option<i64>,
    pub advert_int: Option<f64>,
    pub version: Option<i64>,
    pub vips: Vec<String>,
    pub preempt: Option<bool>,
    pub preempt_delay: Option<f64>,
    pub accept_mode: Option<bool>,
    pub lower_prio_no_advert: Option<bool>,
    pub unicast_src_ip: Option<String>,
    pub unicast_peers: Vec<String>,
    pub auth_pass: Option<String>,
    pub garp_master_delay: Option<f64>,
    pub garp_master_repeat: Option<i64>,
    pub garp_master_refresh: Option<f64>,
    pub garp_interval: Option<f64>,
    pub gna_interval: Option<f64>,
    pub v3_checksum_as_v2: Option<bool>,
    pub failsafe_timeout: Option<f64>,
}

/// A problem with one setting: the key (TOML spelling, `vips[1]` for an element) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub key: String,
    pub msg: String,
}

pub fn ferr(key: impl Into<String>, msg: impl Into<String>) -> FieldError {
    FieldError {
        key: key.into(),
        msg: msg.into(),
    }
}

pub fn int_in(key: &str, v: i64, lo: i64, hi: i64) -> Result<i64, FieldError> {
    if v < lo || v > hi {
        return Err(ferr(key, format!("{v} is out of range {lo}-{hi}")));
    }
    Ok(v)
}

pub fn seconds(key: &str, v: f64, max: f64) -> Result<Duration, FieldError> {
    if !v.is_finite() || v < 0.0 {
        return Err(ferr(key, format!("{v} is not a number of seconds >= 0")));
    }
    if v > max {
        return Err(ferr(
            key,
            format!("{v} s is more than the maximum of {max} s"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `10.0.0.1/24`, `2001:db8::1/64`, or a bare address (/32, /128).
pub fn parse_vip(key: &str, s: &str) -> Result<Vip, FieldError> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.trim().parse().map_err(|_| {
        ferr(
            key,
            format!("{s:?} is not an IP address with an optional /prefix"),
        )
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => match p.trim().parse::<u8>() {
            Ok(n) if n >= 1 && n <= max => n,
            _ => {
                return Err(ferr(
                    key,
                    format!("{s:?}: prefix length {p:?} is out of range 1-{max}"),
                ))
            }
        },
    };
    Ok(Vip { addr, prefix })
}

pub fn parse_ip(key: &str, s: &str) -> Result<IpAddr, FieldError> {
    s.trim()
        .parse()
        .map_err(|_| ferr(key, format!("{s:?} is not an IP address")))
}

impl InstanceInput {
    /// Validates and fills in defaults. `global_failsafe` is `[global].failsafe_timeout`.
    pub fn build(&self, global_failsafe: Option<Duration>) -> Result<InstanceSpec, FieldError> {
        let interface = self
            .interface
            .clone()
            .ok_or_else(|| ferr("interface", "missing (the interface to run on)"))?;
        if interface.is_empty() || interface.len() >= IFNAMSIZ || interface.contains('/') {
            return Err(ferr(
                "interface",
                format!("{interface:?} is not a valid interface name"),
            ));
        }
        let vrid = int_in(
            "vrid",
            self.vrid.ok_or_else(|| ferr("vrid", "missing (1-255)"))?,
            1,
            255,
        )? as u8;
        let priority = match self.priority {
            Some(p) => int_in("priority", p, 1, 255)? as u8,
            None => DEFAULT_PRIORITY,
        };
        let version = match self.version {
            None | Some(3) => Version::V3,
            Some(2) => Version::V2,
            Some(v) => return Err(ferr("version", format!("{v} is not 2 or 3"))),
        };
        let advert_int_cs = match self.advert_int {
            None => 100,
            Some(s) => {
                let max = match version {
                    Version::V3 => 40.95,
                    Version::V2 => 255.0,
                };
                if !s.is_finite() || !(0.01..=max).contains(&s) {
                    return Err(ferr(
                        "advert_int",
                        format!("{s} s is out of range 0.01-{max} s"),
                    ));
                }
                let cs = (s * 100.0).round();
                if (cs - s * 100.0).abs() > 1e-6 {
                    return Err(ferr(
                        "advert_int",
                        format!("{s} s is not a whole number of centiseconds"),
                    ));
                }
                cs as u16
            }
        };
        if self.vips.is_empty() {
            return Err(ferr(
                "vips",
                "missing: at least one virtual address (e.g. \"10.0.0.100/24\")",
            ));
        }
        let vips = self
            .vips
            .iter()
            .enumerate()
            .map(|(i, s)| parse_vip(&format!("vips[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?;
        let family = fsm::Family::of(vips[0].addr);
        if let Some((i, v)) = vips
            .iter()
            .enumerate()
            .find(|(_, v)| fsm::Family::of(v.addr) != family)
        {
            return Err(ferr(
                format!("vips[{i}]"),
                format!(
                    "{v} is not of the family of {} (IPv4 and IPv6 are separate virtual routers: \
                     use two instances)",
                    vips[0]
                ),
            ));
        }
        let preempt_delay = match self.preempt_delay {
            Some(s) => seconds("preempt_delay", s, fsm::MAX_PREEMPT_DELAY.as_secs_f64())?,
            None => Duration::ZERO,
        };
        let unicast_src_ip = match &self.unicast_src_ip {
            Some(s) => {
                let a = parse_ip("unicast_src_ip", s)?;
                if fsm::Family::of(a) != family {
                    return Err(ferr(
                        "unicast_src_ip",
                        format!("{a} is not of the VIPs' address family"),
                    ));
                }
                Some(a)
            }
            None => None,
        };
        let mut unicast_peers = Vec::new();
        for (i, s) in self.unicast_peers.iter().enumerate() {
            let key = format!("unicast_peers[{i}]");
            let a = parse_ip(&key, s)?;
            if fsm::Family::of(a) != family {
                return Err(ferr(key, format!("{a} is not of the VIPs' address family")));
            }
            if a.is_multicast() || a.is_unspecified() {
                return Err(ferr(key, format!("{a} is not a unicast address")));
            }
            if unicast_peers.contains(&a) {
                return Err(ferr(key, format!("{a} is listed twice")));
            }
            unicast_peers.push(a);
        }
        let auth = match &self.auth_pass {
            None => Auth::None,
            Some(_) if version == Version::V3 => {
                return Err(ferr(
                    "auth_pass",
                    "VRRPv3 has no authentication (RFC 9568 §9); use version = 2 or remove it",
                ))
            }
            Some(p) => Auth::simple(p.as_bytes()).ok_or_else(|| {
                ferr(
                    "auth_pass",
                    format!("{} bytes, at most 8 fit (auth_type PASS)", p.len()),
                )
            })?,
        };
        let day = 86_400.0;
        let mut garp = GarpConfig::default();
        if let Some(s) = self.garp_master_delay {
            garp.master_delay = seconds("garp_master_delay", s, day)?;
        }
        if let Some(n) = self.garp_master_repeat {
            garp.master_repeat = int_in("garp_master_repeat", n, 1, 255)? as u32;
        }
        if let Some(s) = self.garp_master_refresh {
            garp.master_refresh = seconds("garp_master_refresh", s, day)?;
        }
        match family {
            fsm::Family::V4 => {
                if self.gna_interval.is_some() {
                    return Err(ferr(
                        "gna_interval",
                        "is for IPv6 instances (use garp_interval)",
                    ));
                }
                if let Some(s) = self.garp_interval {
                    garp.interval = seconds("garp_interval", s, 60.0)?;
                }
            }
            fsm::Family::V6 => {
                if self.garp_interval.is_some() {
                    return Err(ferr(
                        "garp_interval",
                        "is for IPv4 instances (use gna_interval)",
                    ));
                }
                if let Some(s) = self.gna_interval {
                    garp.interval = seconds("gna_interval", s, 60.0)?;
                }
            }
        }
        let failsafe_timeout = match self.failsafe_timeout {
            Some(s) => Some(failsafe("failsafe_timeout", s)?),
            None => global_failsafe,
        };
        let name = match &self.name {
            Some(n) if n.is_empty() || n.chars().any(|c| c.is_whitespace()) => {
                return Err(ferr(
                    "name",
                    format!("{n:?}: a name is one word without spaces"),
                ))
            }
            Some(n) => n.clone(),
            None => match family {
                fsm::Family::V4 => format!("vrid{vrid}"),
                fsm::Family::V6 => format!("vrid{vrid}-v6"),
            },
        };
        let spec = InstanceSpec {
            name,
            interface,
            vrid,
            priority,
            version,
            advert_int_cs,
            vips,
            preempt: self.preempt.unwrap_or(true),
            preempt_delay,
            accept_mode: self.accept_mode.unwrap_or(true),
            lower_prio_no_advert: self.lower_prio_no_advert.unwrap_or(false),
            unicast_src_ip,
            unicast_peers,
            auth,
            garp,
            checksum: ChecksumOpts {
                v3_checksum_as_v2: self.v3_checksum_as_v2.unwrap_or(false),
            },
            failsafe_timeout,
        };
        // The state machine's own rules; the primary address is only known at run time, so a
        // stand-in of the right kind is used unless unicast_src_ip gives it.
        let primary = spec.unicast_src_ip.unwrap_or(match family {
            fsm::Family::V4 => IpAddr::from([192, 0, 2, 1]),
            fsm::Family::V6 => IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, 1]),
        });
        spec.fsm_config(primary)
            .validate()
            .map_err(|e| ferr(key_of(&e, &self.vips, &spec), e.to_string()))?;
        Ok(spec)
    }
}

/// `realtime_priority` (`--realtime-priority`): 0 (off) or a `SCHED_RR` priority.
pub fn realtime_priority(key: &str, v: i64) -> Result<u8, FieldError> {
    match u8::try_from(v) {
        Ok(p) if p <= MAX_REALTIME_PRIORITY => Ok(p),
        _ => Err(ferr(
            key,
            format!(
                "{v} is out of range 0-{} (0 = normal scheduling)",
                MAX_REALTIME_PRIORITY
            ),
        )),
    }
}

pub fn failsafe(key: &str, s: f64) -> Result<Duration, FieldError> {
    let d = seconds(key, s, 3600.0)?;
    if d < Duration::from_millis(4) {
        return Err(ferr(
            key,
            format!(
                "{s} s is below the minimum of 0.004 s (the heartbeat runs every 1 ms at best)"
            ),
        ));
    }
    Ok(d)
}

/// The key a state-machine config error is about.
fn key_of(e: &ConfigError, vips: &[String], spec: &InstanceSpec) -> String {
    let vip_key = |a: &IpAddr| {
        spec.vips
            .iter()
            .position(|v| v.addr == *a)
            .filter(|i| *i < vips.len())
            .map(|i| format!("vips[{i}]"))
            .unwrap_or_else(|| "vips".into())
    };
    match e {
        ConfigError::InvalidVrid => "vrid".into(),
        ConfigError::InvalidPriority => "priority".into(),
        ConfigError::InvalidAdvertInterval { .. }
        | ConfigError::V2IntervalNotWholeSeconds { .. } => "advert_int".into(),
        ConfigError::V2RequiresIpv4 => "version".into(),
        ConfigError::InvalidPrimaryAddress(_) | ConfigError::Ipv6PrimaryNotLinkLocal(_) => {
            "unicast_src_ip".into()
        }
        ConfigError::PreemptDelayTooLong(_) => "preempt_delay".into(),
        ConfigError::DuplicateVip(a) => {
            // The second occurrence.
            spec.vips
                .iter()
                .enumerate()
                .filter(|(_, v)| v.addr == *a)
                .nth(1)
                .map(|(i, _)| format!("vips[{i}]"))
                .unwrap_or_else(|| "vips".into())
        }
        ConfigError::VipFamilyMismatch(a)
        | ConfigError::InvalidVip(a)
        | ConfigError::OwnerDoesNotOwnVip(a) => vip_key(a),
        ConfigError::OwnedVipNeedsPriority255 { vip, .. } => vip_key(vip),
        ConfigError::NoVips | ConfigError::TooManyVips(_) => "vips".into(),
    }
}

/// Checks across instances, in this order for each instance against the earlier ones: one
/// (interface, family, VRID) per instance; a VIP in one instance only (on any interface: both
/// instances would become master with it); unique names. The VRID comes before the name because
/// two instances with the same VRID and default names also share a name, and the VRID is the
/// mistake.
pub fn cross_check(specs: &[InstanceSpec]) -> Result<(), (usize, FieldError)> {
    for (i, s) in specs.iter().enumerate() {
        let earlier = &specs[..i];
        if let Some(t) = earlier
            .iter()
            .find(|t| t.interface == s.interface && t.vrid == s.vrid && t.family() == s.family())
        {
            return Err((
                i,
                ferr(
                    "vrid",
                    format!(
                        "VRID {} on {} ({:?}) is already instance {}",
                        s.vrid,
                        s.interface,
                        s.family(),
                        t.name
                    ),
                ),
            ));
        }
        for (k, v) in s.vips.iter().enumerate() {
            if let Some(t) = earlier
                .iter()
                .find(|t| t.vips.iter().any(|w| w.addr == v.addr))
            {
                return Err((
                    i,
                    ferr(
                        format!("vips[{k}]"),
                        format!("{} is already a VIP of instance {}", v.addr, t.name),
                    ),
                ));
            }
        }
        if earlier.iter().any(|t| t.name == s.name) {
            let default = match s.family() {
                fsm::Family::V4 => format!("vrid{}", s.vrid),
                fsm::Family::V6 => format!("vrid{}-v6", s.vrid),
            };
            let hint = if s.name == default {
                format!(
                    " (the default name of VRID {}: give the instances distinct names)",
                    s.vrid
                )
            } else {
                String::new()
            };
            return Err((i, ferr("name", format!("{:?} is used twice{hint}", s.name))));
        }
    }
    Ok(())
}
