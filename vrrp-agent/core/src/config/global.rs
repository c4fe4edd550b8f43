//! The `[global]` settings: [`GlobalInput::build`] and the rules of its keys.
use std::time::Duration;

use super::{
    keys::{global_key, GlobalInput},
    value::{ferr, seconds, FieldError},
    XdpMode, DEFAULT_REALTIME_PRIORITY, MAX_REALTIME_PRIORITY,
};

/// The validated `[global]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalSettings {
    pub xdp_mode: XdpMode,
    /// `failsafe_timeout` of every instance that sets none.
    pub failsafe_timeout: Option<Duration>,
    pub require_failsafe: bool,
    pub realtime_priority: u8,
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
        Ok(GlobalSettings {
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
