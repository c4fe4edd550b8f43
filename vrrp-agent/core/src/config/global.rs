//! The `[global]` settings: [`GlobalInput::build`] and the rules of its keys.
use std::{net::SocketAddr, time::Duration};

use super::{
    keys::{global_key, GlobalInput},
    value::{ferr, seconds, FieldError},
    XdpMode, DEFAULT_REALTIME_PRIORITY, MAX_REALTIME_PRIORITY,
};

/// The validated `[global]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    pub xdp_mode: XdpMode,
    /// `failsafe_timeout` of every instance that sets none.
    pub failsafe_timeout: Option<Duration>,
    pub require_failsafe: bool,
    pub realtime_priority: u8,
    /// `control_group`: the group the control socket is chowned to.
    pub control_group: Option<String>,
    /// `metrics_addr`: where `/metrics` is served.
    pub metrics_addr: Option<SocketAddr>,
}

impl GlobalInput {
    /// Validates and fills in defaults.
    pub fn build(&self) -> Result<GlobalSettings, FieldError> {
        let xdp_mode = match &self.xdp_mode {
            None => XdpMode::Auto,
            Some(m) => XdpMode::parse(m).ok_or_else(|| {
                ferr(
                    global_key("xdp_mode").name,
                    format!("{m:?} is not one of \"auto\", \"native\", \"generic\""),
                )
            })?,
        };
        let failsafe_timeout = self
            .failsafe_timeout
            .map(|s| failsafe("failsafe_timeout", s))
            .transpose()?;
        let realtime = match self.realtime_priority {
            Some(v) => realtime_priority("realtime_priority", v)?,
            None => DEFAULT_REALTIME_PRIORITY,
        };
        let control_group = match &self.control_group {
            Some(g) if g.is_empty() || g.contains(|c: char| c.is_whitespace() || c == ':') => {
                return Err(ferr(
                    global_key("control_group").name,
                    format!("{g:?} is not a group name or number"),
                ))
            }
            g => g.clone(),
        };
        let metrics_addr = self
            .metrics_addr
            .as_deref()
            .map(|a| metrics_addr("metrics_addr", a))
            .transpose()?;
        Ok(GlobalSettings {
            control_group,
            metrics_addr,
            xdp_mode,
            failsafe_timeout,
            require_failsafe: self.require_failsafe.unwrap_or(false),
            realtime_priority: realtime,
        })
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

/// `metrics_addr` (`--metrics-addr`): `ADDR:PORT`, IPv6 as `[ADDR]:PORT`.
pub fn metrics_addr(key: &str, text: &str) -> Result<SocketAddr, FieldError> {
    text.parse().map_err(|_| {
        ferr(
            key,
            format!("{text:?} is not ADDR:PORT (e.g. 127.0.0.1:9650, [::1]:9650)"),
        )
    })
}
