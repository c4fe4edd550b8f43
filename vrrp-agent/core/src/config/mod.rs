//! The configuration model, plain data with its validation (pure: no files, no flags).
//!
//! - [`keys`]: every key declared once ([`INSTANCE_KEYS`], [`GLOBAL_KEYS`]: name, type, range,
//!   default, doc, flag), and the inputs generated from them ([`InstanceInput`],
//!   [`GlobalInput`]) with the setters front-ends call (`set_str` for text, `set` for a native
//!   value).
//! - [`instance`]: [`InstanceInput::build`] → [`InstanceSpec`], every rule and default.
//! - [`global`]: [`GlobalInput::build`] → [`GlobalSettings`].
//! - [`value`]: the checks shared by keys of one type, and [`FieldError`].
//!
//! The front-ends (the agent's TOML reader and its `run` flags; keepalived.conf next) set
//! values by key name and call `build`; errors are a [`FieldError`] naming the key, and the
//! front-end adds where it was (`FILE:LINE: instance[0].priority: ...`, `--priority: ...`).
//!
//! **Adding a key** is one entry in the table of [`keys`] (see there), plus its
//! [`InstanceSpec`] field and the line of `build` that fills it.
use std::{fmt, net::IpAddr, time::Duration};

use crate::{
    fsm::{self, Version},
    wire::{Auth, ChecksumOpts},
};

pub mod check;
pub mod global;
pub mod group;
pub mod instance;
pub mod keys;
pub mod track;
pub mod value;

pub use check::{parse_command, CheckKind, CheckSpec, DEFAULT_CHECK_INTERVAL, DEFAULT_STATUS};
pub use global::{failsafe, metrics_addr, realtime_priority, GlobalSettings};
pub use group::{check_model, NotifySpec, SyncGroupSpec, Table};
pub use keys::{
    flag_of, CheckInput, DefaultValue, Flag, GlobalInput, InstanceInput, Key, Kind, Range, Scope,
    SyncGroupInput, CHECK_KEYS, GLOBAL_KEYS, INSTANCE_KEYS, SYNC_GROUP_KEYS,
};
pub use track::{effective_priority, parse_track, TrackSpec, TrackTarget, MAX_WEIGHT, MIN_WEIGHT};
pub use value::{ferr, int_in, parse_ip, parse_vip, seconds, FieldError, Value};

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
    /// Tracked targets with their weights ([`track`]).
    pub track: Vec<TrackSpec>,
    pub notify: NotifySpec,
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

    /// The priority this instance would advertise with every tracker in its initial state
    /// (every tracker starts down, a file's value 0: see [`track`]), and whether it would be in
    /// FAULT (a weight-0 tracker down).
    pub fn initial_priority(&self) -> (u8, bool) {
        let mut adjust = 0i64;
        let mut fault = false;
        for t in &self.track {
            match (&t.target, t.weight) {
                // A file's value starts at 0: no effect.
                (TrackTarget::File(_), _) => {}
                (_, 0) => fault = true,
                (_, w) if w < 0 => adjust += i64::from(w),
                _ => {}
            }
        }
        (effective_priority(self.priority, adjust), fault)
    }

    /// One line for `check-config` and the startup log.
    pub fn describe(&self) -> String {
        let secs = |d: Duration| format!("{}s", d.as_secs_f64());
        format!(
            "instance {}: interface={} vrid={} family={} version={} priority={} advert_int={}s \
             vips={} preempt={} preempt_delay={} accept_mode={} lower_prio_no_advert={} \
             unicast_src_ip={} \
             unicast_peers={} auth={} garp_master_delay={} garp_master_repeat={} \
             garp_master_refresh={} garp_interval={} v3_checksum_as_v2={} failsafe_timeout={}\
             {}{}",
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
            if self.track.is_empty() {
                String::new()
            } else {
                let (p, fault) = self.initial_priority();
                format!(
                    " track={} priority_now={}",
                    self.track
                        .iter()
                        .map(|t| format!("{}:{}", t.target, t.weight))
                        .collect::<Vec<_>>()
                        .join(","),
                    if fault {
                        format!("{p} (FAULT until every weight-0 tracker is up)")
                    } else {
                        p.to_string()
                    }
                )
            },
            if self.notify.is_empty() {
                String::new()
            } else {
                format!(" {}", self.notify.describe())
            },
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
    /// `[global] control_group`: the group allowed on the control socket besides root.
    pub control_group: Option<String>,
    /// `[global] metrics_addr`: where Prometheus metrics are served.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub instances: Vec<InstanceSpec>,
    /// `[[check]]`s, in the order written.
    pub checks: Vec<CheckSpec>,
    /// `[[sync_group]]`s, in the order written.
    pub sync_groups: Vec<SyncGroupSpec>,
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
