//! The TOML front-end of the configuration model: a file (`--config FILE`, several
//! instances) is walked key by key against the key table of the model
//! ([`vrrp_core::config::keys`]): each key is set on an [`InstanceInput`] / [`GlobalInput`]
//! with its native TOML value, and the model's `build` validates. Nothing here is per key: a
//! key declared in the table is a key of the file. Errors name the file, the line and the key
//! (`FILE:LINE: instance[0].priority: ...`); the `run` flags ([`crate::cli`]) are the other
//! front-end onto the same model.
//!
//! Vocabulary follows keepalived where it has a word for the thing (`priority`, `advert_int`,
//! `preempt_delay`, `unicast_peer` → `unicast_peers`, `garp_master_*`, `auth_pass`,
//! `v3_checksum_as_v2`, `lower_prio_no_advert`). Every key (a test checks this list):
//!
//! ```toml
//! [global]
//! xdp_mode = "auto"          # auto | native | generic
//! failsafe_timeout = 0.5     # seconds; default: each instance's Master_Down_Interval
//! require_failsafe = false   # true: refuse to start where the fail-safe cannot outlive the agent
//! realtime_priority = 10     # SCHED_RR priority 1-99 of the agent, 0 = normal scheduling
//! control_group = "vrrp"      # group allowed on the control socket besides root
//! metrics_addr = "127.0.0.1:9650"  # Prometheus metrics on /metrics
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
//! track = [{ check = "web", weight = -120 }, { interface = "eth1", weight = -50 }]
//!                            # also { file = "/run/vrrp/prio", weight = 1 }, { process = "nginx" };
//!                            # weight -254..254, default 0 = FAULT while down (see "Tracking")
//! notify = "/usr/local/bin/notify"   # run as: notify INSTANCE <name> <STATE> <priority>
//! notify_master = "/usr/local/bin/to-master arg"   # absolute path + arguments, no shell
//! notify_backup = "/usr/local/bin/to-backup"
//! notify_fault = "/usr/local/bin/to-fault"
//! notify_stop = "/usr/local/bin/on-stop"
//!
//! [[check]]
//! name = "web"
//! http = "http://127.0.0.1:8080/healthz"   # exactly one of script, icmp, tcp, http, https
//! script = "/usr/local/bin/check-web --quick"  # (one of these per check, see below)
//! icmp = "10.0.0.1"
//! tcp = "10.0.0.5:5432"      # IPv6: "[2001:db8::5]:5432"
//! https = "https://127.0.0.1:8443/healthz"
//! interval = 0.1             # seconds, default 1
//! timeout = 0.05             # seconds, default and at most the interval
//! rise = 2                   # successes in a row to become up, default 1 (a check starts down)
//! fall = 2                   # failures in a row to become down, default 1
//! status = [200, 204]        # http(s): codes or "FROM-TO" ranges, default "200-399"
//! body_contains = "ok"       # http(s): the body must contain it
//! host = "example.org"       # http(s): Host header and TLS server name
//! tls_verify = true          # https: default true
//! user = "nobody"            # script: run as this user
//!
//! [[sync_group]]
//! name = "g1"
//! instances = ["web", "db"]  # move together: one in FAULT or leaving MASTER takes the others along
//! notify = "/usr/local/bin/notify"   # run as: notify GROUP <name> <STATE> <priority>
//! notify_master = "/usr/local/bin/group-master"
//! notify_backup = "/usr/local/bin/group-backup"
//! notify_fault = "/usr/local/bin/group-fault"
//! notify_stop = "/usr/local/bin/group-stop"
//! ```
use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use toml::{
    de::{DeTable, DeValue},
    Spanned,
};

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
    let mut counts: HashMap<String, usize> = HashMap::new();
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
            let n = counts.entry(name.to_string()).or_default();
            table = format!("{name}[{n}]");
            *n += 1;
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

/// Byte offset of every key of a table (`vips[1]` for an element; "" = the table itself).
type KeyOffsets = HashMap<String, usize>;

/// The document's keys in the order they are written.
fn in_order<'a, 'i>(
    t: &'a DeTable<'i>,
) -> Vec<(&'a Spanned<Cow<'i, str>>, &'a Spanned<DeValue<'i>>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// A TOML value as the model takes it.
fn native(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::Text(s.to_string()),
        DeValue::Integer(i) => Value::Int(
            // Beyond i64: still a number, reported as out of range.
            i64::from_str_radix(i.as_str(), i.radix()).unwrap_or(if i.as_str().starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            }),
        ),
        DeValue::Float(f) => Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(_) => Value::Other("datetime"),
        DeValue::Array(a) => Value::List(a.iter().map(|e| native(e.get_ref())).collect()),
        DeValue::Table(t) => Value::Table(
            in_order(t)
                .into_iter()
                .map(|(k, v)| (k.get_ref().to_string(), native(v.get_ref())))
                .collect(),
        ),
    }
}

/// Sets every key of one TOML table on an input through `set`; an error is (key, offset,
/// message).
fn walk(
    table: &Spanned<DeValue<'_>>,
    mut set: impl FnMut(&str, Value) -> Result<(), FieldError>,
) -> Result<KeyOffsets, (String, usize, String)> {
    let mut at = KeyOffsets::new();
    at.insert(String::new(), table.span().start);
    let DeValue::Table(t) = table.get_ref() else {
        return Err((
            String::new(),
            table.span().start,
            format!(
                "invalid type: {}, expected a table",
                table.get_ref().type_str()
            ),
        ));
    };
    for (k, v) in in_order(t) {
        let key = k.get_ref().as_ref();
        at.insert(key.to_string(), v.span().start);
        if let DeValue::Array(a) = v.get_ref() {
            for (i, e) in a.iter().enumerate() {
                at.insert(format!("{key}[{i}]"), e.span().start);
            }
        }
        set(key, native(v.get_ref())).map_err(|e| {
            // An unknown key is reported at the key, anything else at its value (or element).
            let off = if e.msg.starts_with("unknown field") && !e.key.contains('[') {
                k.span().start
            } else {
                offset_of(&at, &e.key).unwrap_or(v.span().start)
            };
            (e.key, off, e.msg)
        })?;
    }
    Ok(at)
}

/// Where the value of `key` is: the key itself, else its element (`track[0]` of
/// `track[0].weight`), else the whole key (`vips` of `vips[3]`).
fn offset_of(at: &KeyOffsets, key: &str) -> Option<usize> {
    let element = key.find(']').map(|e| &key[..=e]);
    let base = key.split(['[', '.']).next().unwrap_or("");
    at.get(key)
        .or_else(|| element.and_then(|e| at.get(e)))
        .or_else(|| at.get(base))
        .copied()
}

/// Reads every table of an array of tables (`[[check]]`) into an input through `set`.
#[allow(clippy::type_complexity)]
fn read_tables<I: Default>(
    what: &str,
    v: &Spanned<DeValue<'_>>,
    mut set: impl FnMut(&mut I, &str, Value) -> Result<(), FieldError>,
    err: &dyn Fn(Option<usize>, String, String) -> ConfigFileError,
) -> Result<Vec<(I, KeyOffsets)>, ConfigFileError> {
    let DeValue::Array(list) = v.get_ref() else {
        return Err(err(
            Some(v.span().start),
            what.into(),
            format!("write each one as [[{what}]]"),
        ));
    };
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let mut input = I::default();
        let at = walk(t, |key, val| set(&mut input, key, val)).map_err(|(key, off, msg)| {
            err(Some(off), dotted(&format!("{what}[{i}]"), &key), msg)
        })?;
        out.push((input, at));
    }
    Ok(out)
}

/// The error of a table's `build`, at its key.
fn at_key(
    err: &dyn Fn(Option<usize>, String, String) -> ConfigFileError,
    what: &str,
    i: usize,
    at: &KeyOffsets,
    e: FieldError,
) -> ConfigFileError {
    let off = offset_of(at, &e.key).or_else(|| at.get("").copied());
    err(off, dotted(&format!("{what}[{i}]"), &e.key), e.msg)
}

/// `${NAME}` / `${NAME:-default}` substitution in a configuration text, before TOML parsing
/// (one file for every node, per-node values from the environment). Expanded in bare value
/// positions and in basic strings (`"..."`, `"""..."""`); comments and literal strings
/// (`'...'`) are left as written; `$$` is one `$`. In a bare position a value that reads as a
/// TOML number or boolean goes in as is, anything else as a string; in a string it is escaped.
/// Values never add a line, so error lines still point into the file as written. An error is
/// (byte offset in `src`, message).
pub fn expand_env(
    src: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'_, str>, (usize, String)> {
    if !src.contains('$') {
        return Ok(Cow::Borrowed(src));
    }
    #[derive(PartialEq, Clone, Copy)]
    enum At {
        Bare,
        Comment,
        Basic,
        MlBasic,
        Literal,
        MlLiteral,
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut at = At::Bare;
    let mut i = 0;
    // Copies `src[i..i + n]` and moves on.
    macro_rules! copy {
        ($n:expr) => {{
            let n = ($n).min(b.len() - i);
            out.push_str(&src[i..i + n]);
            i += n;
        }};
    }
    while i < b.len() {
        let rest = &src[i..];
        match at {
            At::Comment => {
                if b[i] == b'\n' {
                    at = At::Bare;
                }
            }
            At::Literal if b[i] == b'\'' || b[i] == b'\n' => at = At::Bare,
            At::MlLiteral if rest.starts_with("'''") => {
                copy!(3);
                at = At::Bare;
                continue;
            }
            At::Literal | At::MlLiteral => {}
            At::Basic | At::MlBasic if b[i] == b'\\' => {
                // An escape: the escaped character is never a quote or `$` of ours.
                let n = rest.chars().nth(1).map_or(1, |c| 1 + c.len_utf8());
                copy!(n);
                continue;
            }
            At::Basic if b[i] == b'"' || b[i] == b'\n' => at = At::Bare,
            At::MlBasic if rest.starts_with("\"\"\"") => {
                copy!(3);
                at = At::Bare;
                continue;
            }
            At::Bare if b[i] == b'#' => at = At::Comment,
            At::Bare if rest.starts_with("\"\"\"") => {
                copy!(3);
                at = At::MlBasic;
                continue;
            }
            At::Bare if rest.starts_with("'''") => {
                copy!(3);
                at = At::MlLiteral;
                continue;
            }
            At::Bare if b[i] == b'"' => at = At::Basic,
            At::Bare if b[i] == b'\'' => at = At::Literal,
            At::Bare | At::Basic | At::MlBasic if b[i] == b'$' => {
                if rest.starts_with("$$") {
                    out.push('$');
                    i += 2;
                    continue;
                }
                if rest.starts_with("${") {
                    let Some(end) = rest.find('}').filter(|e| !rest[..*e].contains('\n')) else {
                        return Err((
                            i,
                            "unterminated ${ (write ${NAME} or ${NAME:-default}; $${ is a literal ${)"
                                .into(),
                        ));
                    };
                    let inner = &rest[2..end];
                    let (name, default) = match inner.split_once(":-") {
                        Some((n, d)) => (n, Some(d)),
                        None => (inner, None),
                    };
                    let valid = !name.is_empty()
                        && !name.starts_with(|c: char| c.is_ascii_digit())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err((
                            i,
                            format!(
                                "${{{inner}}}: not a variable name (letters, digits and _, \
                                 e.g. ${{VRRP_PRIORITY}}; $$ is a literal $)"
                            ),
                        ));
                    }
                    let value = match (lookup(name), default) {
                        (Some(v), _) => v,
                        (None, Some(d)) => d.to_string(),
                        (None, None) => {
                            return Err((
                                i,
                                format!(
                                    "${{{name}}} is not set (export it or give a default: \
                                     ${{{name}:-value}})"
                                ),
                            ))
                        }
                    };
                    if at == At::Bare && is_toml_scalar(&value) {
                        out.push_str(&value);
                    } else {
                        let quoted = toml_basic_escape(&value);
                        if at == At::Bare {
                            out.push('"');
                            out.push_str(&quoted);
                            out.push('"');
                        } else {
                            out.push_str(&quoted);
                        }
                    }
                    i += end + 1;
                    continue;
                }
            }
            At::Bare | At::Basic | At::MlBasic => {}
        }
        copy!(rest.chars().next().map_or(1, char::len_utf8));
    }
    Ok(Cow::Owned(out))
}

/// A number or boolean TOML reads as such, with nothing that could end or extend the value.
fn is_toml_scalar(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        && matches!(
            DeTable::parse(&format!("v = {v}"))
                .ok()
                .as_ref()
                .and_then(|t| t.get_ref().get("v"))
                .map(|v| v.get_ref()),
            Some(DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_))
        )
}

/// `v` as the inside of a TOML basic string.
fn toml_basic_escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => s.push_str(&format!("\\u{:04X}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

/// Parses configuration text (`${ENV}` expanded from the process environment, see
/// [`expand_env`]); `file` is only used in error messages.
pub fn parse_str(src: &str, file: &Path) -> Result<AgentConfig, ConfigFileError> {
    parse_str_with_env(src, file, |name| std::env::var(name).ok())
}

/// [`parse_str`] with the variables from `lookup`.
pub fn parse_str_with_env(
    src: &str,
    file: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<AgentConfig, ConfigFileError> {
    let src: &str = &match expand_env(src, lookup) {
        Ok(s) => s,
        Err((off, msg)) => {
            return Err(ConfigFileError {
                file: file.to_path_buf(),
                line: line_at(src, off),
                key: String::new(),
                msg,
            })
        }
    };
    let err = |offset: Option<usize>, key: String, msg: String| ConfigFileError {
        file: file.to_path_buf(),
        line: offset.map(|o| line_at(src, o)).unwrap_or(0),
        key,
        msg,
    };
    let doc = DeTable::parse(src).map_err(|e| {
        let off = e.span().map(|s| s.start);
        let msg = e.message().trim().replace('\n', " ");
        err(off, off.map(|o| key_at(src, o)).unwrap_or_default(), msg)
    })?;
    // Read every table first (types and unknown keys, in the order they are written), then
    // validate.
    let mut global = GlobalInput::default();
    let mut instances: Vec<(InstanceInput, KeyOffsets)> = Vec::new();
    let mut checks: Vec<(CheckInput, KeyOffsets)> = Vec::new();
    let mut groups: Vec<(SyncGroupInput, KeyOffsets)> = Vec::new();
    let mut global_at = KeyOffsets::new();
    for (k, v) in in_order(doc.get_ref()) {
        match k.get_ref().as_ref() {
            "global" => {
                global_at = walk(v, |key, val| global.set(key, val))
                    .map_err(|(key, off, msg)| err(Some(off), dotted("global", &key), msg))?;
            }
            "instance" => {
                instances = read_tables(
                    "instance",
                    v,
                    |i: &mut InstanceInput, k, val| i.set(k, val),
                    &err,
                )
                .map_err(|e| {
                    if e.msg == "write each one as [[instance]]" {
                        ConfigFileError {
                            msg: "write each virtual router as [[instance]]".into(),
                            ..e
                        }
                    } else {
                        e
                    }
                })?;
            }
            "check" => {
                checks = read_tables("check", v, |i: &mut CheckInput, k, val| i.set(k, val), &err)?;
            }
            "sync_group" => {
                groups = read_tables(
                    "sync_group",
                    v,
                    |i: &mut SyncGroupInput, k, val| i.set(k, val),
                    &err,
                )?;
            }
            other => {
                return Err(err(
                    Some(k.span().start),
                    String::new(),
                    keys::unknown(other, vec!["global", "instance", "check", "sync_group"]),
                ))
            }
        }
    }
    let g = global.build().map_err(|e| {
        let off = global_at.get(&e.key).or_else(|| global_at.get("")).copied();
        err(off, format!("global.{}", e.key), e.msg)
    })?;
    if instances.is_empty() {
        return Err(err(
            None,
            String::new(),
            "no [[instance]]: configure at least one virtual router".into(),
        ));
    }
    let mut specs = Vec::new();
    for (i, (input, at)) in instances.iter().enumerate() {
        let spec = input
            .build(g.failsafe_timeout)
            .map_err(|e| at_key(&err, "instance", i, at, e))?;
        specs.push(spec);
    }
    cross_check(&specs).map_err(|(i, e)| at_key(&err, "instance", i, &instances[i].1, e))?;
    let mut check_specs = Vec::new();
    for (i, (input, at)) in checks.iter().enumerate() {
        check_specs.push(input.build().map_err(|e| at_key(&err, "check", i, at, e))?);
    }
    let mut group_specs = Vec::new();
    for (i, (input, at)) in groups.iter().enumerate() {
        group_specs.push(
            input
                .build()
                .map_err(|e| at_key(&err, "sync_group", i, at, e))?,
        );
    }
    check_model(&specs, &check_specs, &group_specs).map_err(|(table, i, e)| {
        let at = match table {
            Table::Instance => &instances[i].1,
            Table::Check => &checks[i].1,
            Table::SyncGroup => &groups[i].1,
        };
        at_key(&err, table.name(), i, at, e)
    })?;
    Ok(AgentConfig {
        xdp_mode: g.xdp_mode,
        require_failsafe: g.require_failsafe,
        realtime_priority: g.realtime_priority,
        control_group: g.control_group,
        metrics_addr: g.metrics_addr,
        instances: specs,
        checks: check_specs,
        sync_groups: group_specs,
    })
}

/// `table.key`, or the table alone.
fn dotted(table: &str, key: &str) -> String {
    if key.is_empty() {
        table.to_string()
    } else {
        format!("{table}.{key}")
    }
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
