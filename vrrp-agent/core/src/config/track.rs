//! Tracking: what an instance watches ([`TrackSpec`]) and the text form of one entry.
//!
//! An entry names one target and a weight: `{ check = "web", weight = -120 }` in TOML, the
//! same keys as words in text (`check=web weight=-120`, what `set_str` and `--track` take).
//! Keys: exactly one of `check` (a `[[check]]` by name), `interface` (another interface's
//! carrier), `file` (keepalived's track_file: an integer read from the file), `process`
//! (keepalived's track_process: a process by name, running or not); and `weight`
//! ([`MIN_WEIGHT`]..=[`MAX_WEIGHT`], default 0).
//!
//! What a weight does (the Core applies it):
//! - a negative weight is added to the priority while the target is down;
//! - a positive weight is added while it is up;
//! - weight 0: the instance is in FAULT while the target is down;
//! - a file: its value × weight is added (weight 0: a non-zero value is FAULT; a product of
//!   -254 or less is FAULT too, as keepalived does).
use std::fmt;

use super::value::{ferr, FieldError, Value};

/// The lowest weight.
pub const MIN_WEIGHT: i32 = -254;
/// The highest weight.
pub const MAX_WEIGHT: i32 = 254;

/// What an instance tracks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackTarget {
    /// A `[[check]]`, by name.
    Check(String),
    /// Another interface's carrier.
    Interface(String),
    /// An integer in a file (keepalived `track_file`).
    File(String),
    /// A process running or not (keepalived `track_process`), by name.
    Process(String),
}

impl TrackTarget {
    /// `check`, `interface`, `file`, `process`: the key it is written with.
    pub fn kind(&self) -> &'static str {
        match self {
            TrackTarget::Check(_) => "check",
            TrackTarget::Interface(_) => "interface",
            TrackTarget::File(_) => "file",
            TrackTarget::Process(_) => "process",
        }
    }

    /// The name, interface, path or process name.
    pub fn name(&self) -> &str {
        match self {
            TrackTarget::Check(n)
            | TrackTarget::Interface(n)
            | TrackTarget::File(n)
            | TrackTarget::Process(n) => n,
        }
    }
}

impl fmt::Display for TrackTarget {
    /// `check web`, `interface eth1`, `file /run/prio`, `process nginx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

/// One tracked target of an instance with its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    pub target: TrackTarget,
    pub weight: i32,
}

impl fmt::Display for TrackSpec {
    /// `check=web weight=-120` (the text form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={} weight={}",
            self.target.kind(),
            self.target.name(),
            self.weight
        )
    }
}

const TARGET_KEYS: [&str; 4] = ["check", "interface", "file", "process"];
const ALL_KEYS: [&str; 5] = ["check", "interface", "file", "process", "weight"];

/// Parses the text form `KIND=TARGET [weight=N]` (`key` names the entry in errors, e.g.
/// `track[0]`).
pub fn parse_track(key: &str, text: &str) -> Result<TrackSpec, FieldError> {
    let mut target: Option<TrackTarget> = None;
    let mut weight: Option<i32> = None;
    for word in text.split_whitespace() {
        let Some((k, v)) = word.split_once('=') else {
            return Err(ferr(
                key,
                format!("{word:?}: write KEY=VALUE (e.g. \"check=web weight=-10\")"),
            ));
        };
        let sub = format!("{key}.{k}");
        match k {
            "weight" => {
                if weight.is_some() {
                    return Err(ferr(sub, "given twice"));
                }
                let w: i64 = v
                    .parse()
                    .map_err(|_| ferr(&sub, format!("{v:?} is not an integer")))?;
                weight = Some(weight_in(&sub, w)?);
            }
            "check" | "interface" | "file" | "process" => {
                if let Some(t) = &target {
                    return Err(ferr(
                        sub,
                        format!(
                            "one target per entry: this one already tracks {t} (write two entries)"
                        ),
                    ));
                }
                if v.is_empty() {
                    return Err(ferr(sub, "empty"));
                }
                target = Some(target_of(&sub, k, v)?);
            }
            other => return Err(ferr(sub, super::keys::unknown(other, ALL_KEYS.to_vec()))),
        }
    }
    let target = target.ok_or_else(|| {
        ferr(
            key,
            format!(
                "no target: give one of {}",
                TARGET_KEYS
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let weight = weight.unwrap_or(if matches!(target, TrackTarget::File(_)) {
        1
    } else {
        0
    });
    Ok(TrackSpec { target, weight })
}

fn weight_in(key: &str, w: i64) -> Result<i32, FieldError> {
    if !(i64::from(MIN_WEIGHT)..=i64::from(MAX_WEIGHT)).contains(&w) {
        return Err(ferr(
            key,
            format!("{w} is out of range {MIN_WEIGHT}-{MAX_WEIGHT}"),
        ));
    }
    Ok(w as i32)
}

fn target_of(key: &str, kind: &str, v: &str) -> Result<TrackTarget, FieldError> {
    Ok(match kind {
        "check" => TrackTarget::Check(v.into()),
        "interface" => {
            if v.len() >= super::IFNAMSIZ || v.contains('/') {
                return Err(ferr(key, format!("{v:?} is not a valid interface name")));
            }
            TrackTarget::Interface(v.into())
        }
        "file" => {
            if !v.starts_with('/') {
                return Err(ferr(
                    key,
                    format!("{v:?} is not an absolute path (write /run/vrrp/prio, say)"),
                ));
            }
            TrackTarget::File(v.into())
        }
        _ => TrackTarget::Process(v.into()),
    })
}

/// The text form of an inline table (`key` = `track[0]`): each field type-checked, unknown
/// fields named.
pub(crate) fn track_text(key: &str, fields: &[(String, Value)]) -> Result<String, FieldError> {
    let mut words = Vec::new();
    for (k, v) in fields {
        let sub = format!("{key}.{k}");
        match (k.as_str(), v) {
            ("weight", Value::Int(i)) => {
                weight_in(&sub, *i)?;
                words.push(format!("weight={i}"));
            }
            ("weight", Value::Float(f)) => {
                return Err(ferr(sub, format!("{f} is not a whole number")))
            }
            ("weight", other) => {
                return Err(ferr(
                    sub,
                    format!("invalid type: {}, expected an integer", describe(other)),
                ))
            }
            (t, Value::Text(s)) if TARGET_KEYS.contains(&t) => {
                if s.is_empty() || s.chars().any(char::is_whitespace) || s.contains('=') {
                    return Err(ferr(
                        sub,
                        format!("{s:?}: a name without spaces or '=' is needed"),
                    ));
                }
                words.push(format!("{t}={s}"));
            }
            (t, other) if TARGET_KEYS.contains(&t) => {
                return Err(ferr(
                    sub,
                    format!("invalid type: {}, expected a string", describe(other)),
                ))
            }
            (other, _) => return Err(ferr(sub, super::keys::unknown(other, ALL_KEYS.to_vec()))),
        }
    }
    let text = words.join(" ");
    parse_track(key, &text)?;
    Ok(text)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Int(i) => format!("integer `{i}`"),
        Value::Float(f) => format!("floating point `{f}`"),
        Value::Text(s) => format!("string {s:?}"),
        Value::List(_) => "sequence".into(),
        Value::Table(_) => "map".into(),
        Value::Other(w) => (*w).into(),
    }
}

/// The effective priority of a non-owner: `base` + `adjust` (the sum of the weights in
/// effect), clamped to 1..=254. The address owner (255) is never adjusted.
pub fn effective_priority(base: u8, adjust: i64) -> u8 {
    if base == 255 {
        return 255;
    }
    (i64::from(base) + adjust).clamp(1, 254) as u8
}
