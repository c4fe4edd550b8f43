//! Validation of one instance: [`InstanceInput::build`] turns the values a front-end set into an
//! [`InstanceSpec`], with the defaults and every rule (the declared ranges of the key table, and
//! the rules between keys).
use std::{net::IpAddr, time::Duration};

use super::track::parse_track;
use super::{
    global::failsafe,
    keys::{instance_key, InstanceInput},
    value::{checked_int, checked_secs, ferr, parse_ip, parse_vip, FieldError},
    GarpConfig, InstanceSpec, NotifySpec, DEFAULT_PRIORITY, IFNAMSIZ,
};
use crate::{
    fsm::{self, ConfigError, Version},
    wire::{Auth, ChecksumOpts},
};

impl InstanceInput {
    /// Validates and fills in defaults. `global_failsafe` is `[global].failsafe_timeout`.
    pub fn build(&self, global_failsafe: Option<Duration>) -> Result<InstanceSpec, FieldError> {
        let k = instance_key;
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
        let vrid = checked_int(
            k("vrid"),
            self.vrid.ok_or_else(|| ferr("vrid", "missing (1-255)"))?,
        )? as u8;
        let priority = match self.priority {
            Some(p) => checked_int(k("priority"), p)? as u8,
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
            Some(s) => checked_secs(k("preempt_delay"), s)?,
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
        let mut garp = GarpConfig::default();
        if let Some(s) = self.garp_master_delay {
            garp.master_delay = checked_secs(k("garp_master_delay"), s)?;
        }
        if let Some(n) = self.garp_master_repeat {
            garp.master_repeat = checked_int(k("garp_master_repeat"), n)? as u32;
        }
        if let Some(s) = self.garp_master_refresh {
            garp.master_refresh = checked_secs(k("garp_master_refresh"), s)?;
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
                    garp.interval = checked_secs(k("garp_interval"), s)?;
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
                    garp.interval = checked_secs(k("gna_interval"), s)?;
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
            track: self
                .track
                .iter()
                .enumerate()
                .map(|(i, t)| parse_track(&format!("track[{i}]"), t))
                .collect::<Result<_, _>>()?,
            notify: NotifySpec::from_keys([
                &self.notify,
                &self.notify_master,
                &self.notify_backup,
                &self.notify_fault,
                &self.notify_stop,
            ])?,
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
