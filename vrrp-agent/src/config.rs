//! Configuration of the virtual routers: a TOML file (`--config FILE`, several instances) or
//! the `run` flags (one instance). Both go through [`InstanceInput`] → [`InstanceSpec`], so the
//! rules and the defaults exist once; only the way an error names its place differs
//! (`FILE:LINE: instance[0].priority: ...` for the file, `--priority: ...` for the flags).
//!
//! Vocabulary follows keepalived where it has a word for the thing (`priority`, `advert_int`,
//! `preempt_delay`, `unicast_peer` → `unicast_peers`, `garp_master_*`, `auth_pass`,
//! `v3_checksum_as_v2`, `lower_prio_no_advert`).
//!
//! ```toml
//! [global]
//! xdp_mode = "auto"          # auto | native | generic
//! failsafe_timeout = 0.5     # seconds; default: each instance's Master_Down_Interval
//! require_failsafe = false   # true: refuse to start where the fail-safe cannot outlive the agent
//! realtime_priority = 10     # SCHED_RR priority 1-99 of the agent, 0 = normal scheduling
//!
//! [[instance]]
//! name = "web"               # default vrid<N> (IPv4) / vrid<N>-v6 (IPv6)
//! interface = "eth0"
//! vrid = 51
//! priority = 150             # 1-255, default 100 (255 = address owner)
//! advert_int = 0.01          # seconds, default 1 (v3: centisecond resolution; v2: whole s)
//! version = 3                # 3 | 2, default 3
//! vips = ["10.0.0.100/24"]   # one family per instance; no prefix = /32 or /128
//! preempt = true             # default true
//! preempt_delay = 0          # seconds, default 0
//! accept_mode = true         # default true (keepalived without vrrp_strict)
//! lower_prio_no_advert = false # default false: a master answers a lower-priority advert
//! unicast_src_ip = "10.0.0.2"
//! unicast_peers = ["10.0.0.3"]
//! auth_pass = "secret"       # v2 only, at most 8 bytes (auth_type PASS)
//! garp_master_delay = 5      # seconds, default 5 (0 = no second burst)
//! garp_master_repeat = 5     # packets per VIP per burst, default 5
//! garp_master_refresh = 0    # seconds, default 0 = no periodic refresh
//! garp_interval = 0          # seconds between gratuitous ARPs of a burst (IPv4), default 0
//! gna_interval = 0           # seconds between unsolicited NAs of a burst (IPv6), default 0
//! v3_checksum_as_v2 = false  # default false
//! failsafe_timeout = 0.2     # overrides [global]
//! ```
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

pub use vrrp_core::config::*;

/// A configuration error: where it is and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    pub file: PathBuf,
    /// 1-based; 0 when the file could not be read.
    pub line: usize,
    /// `instance[0].priority`, `global.xdp_mode`, or empty.
    pub key: String,
    pub msg: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigFileError {}

/// A number that TOML may write as an integer or a float (seconds).
#[derive(Debug, Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn f(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }
}

/// An integer setting; a float is kept so that the error says "1.5 is not a whole number".
#[derive(Debug, Clone, Copy)]
enum Int {
    I(i64),
    F(f64),
}

struct NumVisitor(&'static str);

impl serde::de::Visitor<'_> for NumVisitor {
    type Value = Num;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num::I(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(Num::I(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Num, E> {
        Ok(Num::F(v))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        d.deserialize_any(NumVisitor("a number (seconds)"))
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        Ok(match d.deserialize_any(NumVisitor("an integer"))? {
            Num::I(i) => Int::I(i),
            Num::F(f) => Int::F(f),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    global: Option<Spanned<RawGlobal>>,
    #[serde(default)]
    instance: Vec<Spanned<RawInstance>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    xdp_mode: Option<Spanned<String>>,
    failsafe_timeout: Option<Spanned<Num>>,
    require_failsafe: Option<Spanned<bool>>,
    realtime_priority: Option<Spanned<Int>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    name: Option<Spanned<String>>,
    interface: Option<Spanned<String>>,
    vrid: Option<Spanned<Int>>,
    priority: Option<Spanned<Int>>,
    advert_int: Option<Spanned<Num>>,
    version: Option<Spanned<Int>>,
    vips: Option<Spanned<Vec<Spanned<String>>>>,
    preempt: Option<Spanned<bool>>,
    preempt_delay: Option<Spanned<Num>>,
    accept_mode: Option<Spanned<bool>>,
    lower_prio_no_advert: Option<Spanned<bool>>,
    unicast_src_ip: Option<Spanned<String>>,
    unicast_peers: Option<Spanned<Vec<Spanned<String>>>>,
    auth_pass: Option<Spanned<String>>,
    garp_master_delay: Option<Spanned<Num>>,
    garp_master_repeat: Option<Spanned<Int>>,
    garp_master_refresh: Option<Spanned<Num>>,
    garp_interval: Option<Spanned<Num>>,
    gna_interval: Option<Spanned<Num>>,
    v3_checksum_as_v2: Option<Spanned<bool>>,
    failsafe_timeout: Option<Spanned<Num>>,
}

/// Byte offset → 1-based line.
fn line_at(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// For a toml parse error: the dotted key at `offset` (table header context + the key of the
/// line), e.g. `instance[1].priority`.
fn key_at(src: &str, offset: usize) -> String {
    let mut table = String::new();
    let mut instances = 0usize;
    let mut pos = 0usize;
    let mut key = String::new();
    for line in src.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("[[") {
            let name = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            if name == "instance" {
                table = format!("instance[{instances}]");
                instances += 1;
            } else {
                table = name.to_string();
            }
        } else if t.starts_with('[') {
            table = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .into();
        }
        if offset < pos + line.len() {
            if !t.starts_with('[') {
                if let Some((k, _)) = t.split_once('=') {
                    key = k.trim().trim_matches('"').to_string();
                }
            }
            break;
        }
        pos += line.len();
    }
    match (table.is_empty(), key.is_empty()) {
        (true, true) => String::new(),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

fn int_value(key: &str, v: Int) -> Result<i64, FieldError> {
    match v {
        Int::I(i) => Ok(i),
        Int::F(f) => Err(ferr(key, format!("{f} is not a whole number"))),
    }
}

/// Byte offset of every key of an instance ("" = the instance's table).
type KeyOffsets = HashMap<String, usize>;

/// Raw instance → input, plus the byte offset of every key (and of the table for "missing").
fn lower(
    raw: &RawInstance,
    table_offset: usize,
) -> Result<(InstanceInput, KeyOffsets), (String, usize, String)> {
    let mut at: HashMap<String, usize> = HashMap::new();
    at.insert(String::new(), table_offset);
    macro_rules! take {
        ($field:ident) => {
            raw.$field.as_ref().map(|s| {
                at.insert(stringify!($field).into(), s.span().start);
                s.get_ref().clone()
            })
        };
    }
    macro_rules! int {
        ($field:ident) => {
            match take!($field) {
                Some(v) => Some(
                    int_value(stringify!($field), v)
                        .map_err(|e| (e.key.clone(), at[stringify!($field)], e.msg))?,
                ),
                None => None,
            }
        };
    }
    macro_rules! list {
        ($field:ident) => {
            match &raw.$field {
                Some(l) => {
                    at.insert(stringify!($field).into(), l.span().start);
                    l.get_ref()
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            at.insert(format!("{}[{i}]", stringify!($field)), s.span().start);
                            s.get_ref().clone()
                        })
                        .collect()
                }
                None => Vec::new(),
            }
        };
    }
    let input = InstanceInput {
        name: take!(name),
        interface: take!(interface),
        vrid: int!(vrid),
        priority: int!(priority),
        advert_int: take!(advert_int).map(Num::f),
        version: int!(version),
        vips: list!(vips),
        preempt: take!(preempt),
        preempt_delay: take!(preempt_delay).map(Num::f),
        accept_mode: take!(accept_mode),
        lower_prio_no_advert: take!(lower_prio_no_advert),
        unicast_src_ip: take!(unicast_src_ip),
        unicast_peers: list!(unicast_peers),
        auth_pass: take!(auth_pass),
        garp_master_delay: take!(garp_master_delay).map(Num::f),
        garp_master_repeat: int!(garp_master_repeat),
        garp_master_refresh: take!(garp_master_refresh).map(Num::f),
        garp_interval: take!(garp_interval).map(Num::f),
        gna_interval: take!(gna_interval).map(Num::f),
        v3_checksum_as_v2: take!(v3_checksum_as_v2),
        failsafe_timeout: take!(failsafe_timeout).map(Num::f),
    };
    Ok((input, at))
}

/// Parses configuration text; `file` is only used in error messages.
pub fn parse_str(src: &str, file: &Path) -> Result<AgentConfig, ConfigFileError> {
    let err = |offset: Option<usize>, key: String, msg: String| ConfigFileError {
        file: file.to_path_buf(),
        line: offset.map(|o| line_at(src, o)).unwrap_or(0),
        key,
        msg,
    };
    let raw: RawFile = toml::from_str(src).map_err(|e| {
        let off = e.span().map(|s| s.start);
        let msg = e.message().trim().replace('\n', " ");
        err(off, off.map(|o| key_at(src, o)).unwrap_or_default(), msg)
    })?;
    let mut xdp_mode = XdpMode::Auto;
    let mut global_failsafe = None;
    let mut require_failsafe = false;
    let mut realtime = DEFAULT_REALTIME_PRIORITY;
    if let Some(g) = &raw.global {
        let g_ref = g.get_ref();
        if let Some(r) = &g_ref.require_failsafe {
            require_failsafe = *r.get_ref();
        }
        if let Some(m) = &g_ref.xdp_mode {
            xdp_mode = match XdpMode::parse(m.get_ref()) {
                Some(m) => m,
                None => {
                    let other = m.get_ref();
                    return Err(err(
                        Some(m.span().start),
                        "global.xdp_mode".into(),
                        format!("{other:?} is not one of \"auto\", \"native\", \"generic\""),
                    ));
                }
            };
        }
        if let Some(f) = &g_ref.failsafe_timeout {
            global_failsafe = Some(failsafe("failsafe_timeout", f.get_ref().f()).map_err(|e| {
                err(
                    Some(f.span().start),
                    "global.failsafe_timeout".into(),
                    e.msg,
                )
            })?);
        }
        if let Some(p) = &g_ref.realtime_priority {
            let key = "realtime_priority";
            realtime = int_value(key, *p.get_ref())
                .and_then(|v| realtime_priority(key, v))
                .map_err(|e| err(Some(p.span().start), format!("global.{key}"), e.msg))?;
        }
    }
    if raw.instance.is_empty() {
        return Err(err(
            None,
            String::new(),
            "no [[instance]]: configure at least one virtual router".into(),
        ));
    }
    let mut specs = Vec::new();
    let mut places = Vec::new();
    for (i, inst) in raw.instance.iter().enumerate() {
        let (input, at) = lower(inst.get_ref(), inst.span().start)
            .map_err(|(k, off, msg)| err(Some(off), format!("instance[{i}].{k}"), msg))?;
        let spec = input.build(global_failsafe).map_err(|e| {
            let base = e.key.split('[').next().unwrap_or("");
            let off = at
                .get(&e.key)
                .or_else(|| at.get(base))
                .copied()
                .unwrap_or(inst.span().start);
            err(Some(off), format!("instance[{i}].{}", e.key), e.msg)
        })?;
        specs.push(spec);
        places.push(at);
    }
    cross_check(&specs).map_err(|(i, e)| {
        let off = places[i].get(&e.key).or_else(|| places[i].get("")).copied();
        err(off, format!("instance[{i}].{}", e.key), e.msg)
    })?;
    Ok(AgentConfig {
        xdp_mode,
        require_failsafe,
        realtime_priority: realtime,
        instances: specs,
    })
}

/// Reads and parses a configuration file.
pub fn load(path: &Path) -> Result<AgentConfig, ConfigFileError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
        file: path.to_path_buf(),
        line: 0,
        key: String::new(),
        msg: format!("cannot read: {e}"),
    })?;
    parse_str(&src, path)
}

/// The `run` flag a key is set with (for errors about flags).
pub fn flag_of(key: &str) -> String {
    let base = key.split('[').next().unwrap_or(key);
    match base {
        "interface" => "--iface".into(),
        "vips" => "--vip".into(),
        "unicast_peers" => "--unicast-peer".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}
