//! Values before validation: what a front-end hands the model ([`Value`]), where the model keeps
//! it ([`Slot`]), and the checks every key of one type shares (ranges, seconds, addresses).
use std::{fmt, net::IpAddr, time::Duration};

use super::{
    keys::{Key, Kind, Range},
    Vip,
};

/// A problem with one setting: the key (TOML spelling, `vips[1]` for an element) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub key: String,
    pub msg: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.msg)
    }
}

impl std::error::Error for FieldError {}

pub fn ferr(key: impl Into<String>, msg: impl Into<String>) -> FieldError {
    FieldError {
        key: key.into(),
        msg: msg.into(),
    }
}

/// A value as a front-end read it, with its native type (a TOML integer, a flag's text, ...).
/// [`Value::Other`] is something no key takes (a table, a date), named for the error.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
    /// A table (TOML: an inline table, as in `track = [{ check = "web", weight = -120 }]`),
    /// its keys in the order written.
    Table(Vec<(String, Value)>),
    Other(&'static str),
}

impl Value {
    /// As in "invalid type: string \"seven\", expected an integer".
    fn unexpected(&self) -> String {
        match self {
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Int(i) => format!("integer `{i}`"),
            Value::Float(f) => format!("floating point `{f}`"),
            Value::Text(s) => format!("string {s:?}"),
            Value::List(_) => "sequence".into(),
            Value::Table(_) => "map".into(),
            Value::Other(what) => (*what).into(),
        }
    }
}

/// What a key of this kind expects, for type errors.
pub(crate) fn expecting(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "a boolean",
        Kind::Int => "an integer",
        Kind::Seconds => "a number (seconds)",
        Kind::Str | Kind::Addr | Kind::Cidr => "a string",
        Kind::List(_) => "a sequence",
        Kind::Track => "a table like { check = \"web\", weight = -10 }",
        Kind::Status => "a status code or a string \"FROM-TO\"",
    }
}

fn wrong_type(key: &str, kind: Kind, v: &Value) -> FieldError {
    ferr(
        key,
        format!(
            "invalid type: {}, expected {}",
            v.unexpected(),
            expecting(kind)
        ),
    )
}

/// A scalar value after its type check: what a [`Slot`] stores.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Bool(bool),
    Int(i64),
    Secs(f64),
    Text(String),
}

/// Type-checks a native value against a scalar kind (`key` names it in errors).
fn scalar(key: &str, kind: Kind, v: Value) -> Result<Scalar, FieldError> {
    match (kind, v) {
        (Kind::Bool, Value::Bool(b)) => Ok(Scalar::Bool(b)),
        (Kind::Int, Value::Int(i)) => Ok(Scalar::Int(i)),
        (Kind::Int, Value::Float(f)) => Err(ferr(key, format!("{f} is not a whole number"))),
        (Kind::Seconds, Value::Int(i)) => Ok(Scalar::Secs(i as f64)),
        (Kind::Seconds, Value::Float(f)) => Ok(Scalar::Secs(f)),
        (Kind::Str | Kind::Addr | Kind::Cidr, Value::Text(s)) => Ok(Scalar::Text(s)),
        (Kind::Track, Value::Table(fields)) => {
            super::track::track_text(key, &fields).map(Scalar::Text)
        }
        (Kind::Track, Value::Text(s)) => {
            super::track::parse_track(key, &s)?;
            Ok(Scalar::Text(s))
        }
        (Kind::Status, Value::Int(i)) => Ok(Scalar::Text(i.to_string())),
        (Kind::Status, Value::Text(s)) => Ok(Scalar::Text(s)),
        (kind, v) => Err(wrong_type(key, kind, &v)),
    }
}

/// Parses text (a flag's value, a keepalived.conf word) by a scalar kind.
pub(crate) fn scalar_from_text(key: &str, kind: Kind, text: &str) -> Result<Scalar, FieldError> {
    let t = text.trim();
    match kind {
        Kind::Bool => match t {
            "true" => Ok(Scalar::Bool(true)),
            "false" => Ok(Scalar::Bool(false)),
            _ => Err(ferr(key, format!("{text:?} is not true or false"))),
        },
        Kind::Int => match t.parse::<i64>() {
            Ok(i) => Ok(Scalar::Int(i)),
            Err(_) => match t.parse::<f64>() {
                Ok(f) if f.is_finite() => Err(ferr(key, format!("{f} is not a whole number"))),
                _ => Err(ferr(key, format!("{text:?} is not an integer"))),
            },
        },
        Kind::Seconds => t
            .parse::<f64>()
            .map(Scalar::Secs)
            .map_err(|_| ferr(key, format!("{text:?} is not a number of seconds"))),
        Kind::Str | Kind::Addr | Kind::Cidr | Kind::Status => Ok(Scalar::Text(text.to_string())),
        Kind::Track => {
            super::track::parse_track(key, text)?;
            Ok(Scalar::Text(text.trim().to_string()))
        }
        Kind::List(elem) => scalar_from_text(key, *elem, text),
    }
}

/// Where an input keeps the value of one key. `Option<T>` for a scalar (`None`: not set, the
/// default applies), `Vec<String>` for a list.
pub(crate) trait Slot {
    /// Stores a checked scalar (a list appends it). `false`: the slot's type does not fit the
    /// key's declared kind (a mistake in the declaration, caught by the table's tests).
    fn put(&mut self, v: Scalar) -> bool;
    fn clear(&mut self);
    fn is_set(&self) -> bool;
}

impl Slot for Option<bool> {
    fn put(&mut self, v: Scalar) -> bool {
        match v {
            Scalar::Bool(b) => *self = Some(b),
            _ => return false,
        }
        true
    }
    fn clear(&mut self) {
        *self = None;
    }
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl Slot for Option<i64> {
    fn put(&mut self, v: Scalar) -> bool {
        match v {
            Scalar::Int(i) => *self = Some(i),
            _ => return false,
        }
        true
    }
    fn clear(&mut self) {
        *self = None;
    }
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl Slot for Option<f64> {
    fn put(&mut self, v: Scalar) -> bool {
        match v {
            Scalar::Secs(f) => *self = Some(f),
            _ => return false,
        }
        true
    }
    fn clear(&mut self) {
        *self = None;
    }
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl Slot for Option<String> {
    fn put(&mut self, v: Scalar) -> bool {
        match v {
            Scalar::Text(s) => *self = Some(s),
            _ => return false,
        }
        true
    }
    fn clear(&mut self) {
        *self = None;
    }
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl Slot for Vec<String> {
    fn put(&mut self, v: Scalar) -> bool {
        match v {
            Scalar::Text(s) => self.push(s),
            _ => return false,
        }
        true
    }
    fn clear(&mut self) {
        self.clear();
    }
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}

fn mismatch(key: &Key) -> FieldError {
    ferr(
        key.name,
        format!(
            "declared as {} but not stored as one (a mistake in the key table)",
            expecting(key.kind)
        ),
    )
}

/// [`Slot::put`] of a checked scalar, or the declaration mistake.
pub(crate) fn put(slot: &mut dyn Slot, key: &Key, v: Scalar) -> Result<(), FieldError> {
    if slot.put(v) {
        Ok(())
    } else {
        Err(mismatch(key))
    }
}

/// Sets `key` from a native value: a scalar replaces, a list replaces the whole list (each
/// element is type-checked and named `key[i]` in errors).
pub(crate) fn set_value(slot: &mut dyn Slot, key: &Key, v: Value) -> Result<(), FieldError> {
    match key.kind {
        Kind::List(elem) => {
            // A status list may be one status: `status = "200-399"`.
            let v = match (elem, v) {
                (Kind::Status, v @ (Value::Int(_) | Value::Text(_))) => Value::List(vec![v]),
                (_, v) => v,
            };
            let Value::List(items) = v else {
                return Err(wrong_type(key.name, key.kind, &v));
            };
            let mut checked = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                checked.push(scalar(&format!("{}[{i}]", key.name), *elem, item)?);
            }
            slot.clear();
            for s in checked {
                put(slot, key, s)?;
            }
            Ok(())
        }
        kind => {
            let s = scalar(key.name, kind, v)?;
            put(slot, key, s)
        }
    }
}

/// The declared integer range of `key`, checked.
pub(crate) fn checked_int(key: &Key, v: i64) -> Result<i64, FieldError> {
    match key.range {
        Range::Int(lo, hi) => int_in(key.name, v, lo, hi),
        _ => Ok(v),
    }
}

/// The declared maximum of a `seconds` key, checked.
pub(crate) fn checked_secs(key: &Key, v: f64) -> Result<Duration, FieldError> {
    match key.range {
        Range::Secs(max) => seconds(key.name, v, max),
        _ => seconds(key.name, v, f64::MAX),
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
