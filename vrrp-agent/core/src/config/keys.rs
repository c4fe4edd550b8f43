//! The key table: every configuration key, declared once.
//!
//! Each entry of [`INSTANCE_KEYS`] / [`GLOBAL_KEYS`] below is one key: its name (keepalived's
//! word where it has one), type, range, default, one-line doc, the `run` flag that sets it, and
//! an example value. The macro generates from the same entries the field of the "values before
//! validation" struct ([`InstanceInput`], [`GlobalInput`]) and the setters every front-end uses
//! (`set_str` for text, `set` for a native value). The TOML reader walks a file against the
//! table, the `run` flags are generated from it, and the keepalived.conf front-end of the next
//! issue calls `set_str`.
//!
//! **Adding a key**: add one entry here (the field type is `Option<bool>`, `Option<i64>`,
//! `Option<f64>` (seconds), `Option<String>` (string, address, CIDR) or `Vec<String>` (a list));
//! then turn it into its [`InstanceSpec`](super::InstanceSpec) field in
//! [`InstanceInput::build`] (with its rule if it has one beyond the declared range), and add a
//! line to README's configuration example (a test checks every key is there). The TOML file,
//! the flags, their help and the tests that every key reaches the model follow from the entry.
use super::value::{self, FieldError, Scalar, Slot, Value};

/// The type of a key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    /// A number of seconds (TOML: an integer or a float).
    Seconds,
    Str,
    /// An IP address.
    Addr,
    /// An IP address with an optional `/prefix`.
    Cidr,
    /// A list (TOML: an array; flags: repeat the flag).
    List(&'static Kind),
    /// One tracked target: TOML an inline table (`{ check = "web", weight = -120 }`), text
    /// `check=web weight=-120` (the same keys as words; what flags and `set_str` take).
    Track,
    /// An HTTP status code or an inclusive range of them: TOML `200` or `"200-399"`.
    Status,
}

/// Allowed values, checked by `build` (and shown in help).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    Any,
    /// Inclusive.
    Int(i64, i64),
    /// 0 to this many seconds.
    Secs(f64),
    /// A rule of its own in `build`, described here.
    Rule(&'static str),
}

/// The value a key has when it is not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// The key must be set.
    Required,
    /// This value, written as `set_str` takes it (tests check it is the built default).
    Value(&'static str),
    /// Derived from other settings, described.
    Text(&'static str),
}

/// How the `run` command line sets a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// `--key-with-dashes VALUE` (a list: the flag repeats).
    Value,
    /// `--NAME VALUE`.
    Named(&'static str),
    /// `--key-with-dashes`, no value: sets `true`.
    On,
    /// `--NAME`, no value: sets `false`.
    Off(&'static str),
}

/// Where a key is written: `[global]`, each `[[instance]]`, `[[check]]` or `[[sync_group]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Instance,
    Check,
    SyncGroup,
}

/// One configuration key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key {
    pub name: &'static str,
    pub scope: Scope,
    pub kind: Kind,
    pub range: Range,
    pub default: DefaultValue,
    /// One line.
    pub doc: &'static str,
    pub flag: Flag,
    /// The flag's value placeholder when the type's (`N`, `SECONDS`, `IP`, ...) does not say it.
    pub value_name: Option<&'static str>,
    /// A valid value (set alone on a minimal instance) that differs from the default.
    pub example: &'static str,
    /// Other keys the example needs (e.g. `auth_pass` needs `version = 2`).
    pub example_with: &'static [(&'static str, &'static str)],
}

impl Key {
    const BASE: Key = Key {
        name: "",
        scope: Scope::Instance,
        kind: Kind::Str,
        range: Range::Any,
        default: DefaultValue::Required,
        doc: "",
        flag: Flag::Value,
        value_name: None,
        example: "",
        example_with: &[],
    };

    /// The `run` flag, with its dashes: `--priority`, `--iface`, `--no-preempt`.
    pub fn flag_name(&self) -> String {
        match self.flag {
            Flag::Value | Flag::On => format!("--{}", self.name.replace('_', "-")),
            Flag::Named(n) | Flag::Off(n) => format!("--{n}"),
        }
    }

    /// For a flag without a value: the value it sets.
    pub fn switch_value(&self) -> Option<&'static str> {
        match self.flag {
            Flag::On => Some("true"),
            Flag::Off(_) => Some("false"),
            Flag::Value | Flag::Named(_) => None,
        }
    }

    /// The placeholder of the flag's value.
    pub fn value_placeholder(&self) -> &'static str {
        if let Some(v) = self.value_name {
            return v;
        }
        match self.kind {
            Kind::Bool => "true|false",
            Kind::Int => "N",
            Kind::Seconds => "SECONDS",
            Kind::Str => "TEXT",
            Kind::Addr | Kind::List(Kind::Addr) => "IP",
            Kind::Cidr | Kind::List(Kind::Cidr) => "CIDR",
            Kind::Track | Kind::List(Kind::Track) => "KIND=TARGET weight=N",
            Kind::Status | Kind::List(Kind::Status) => "CODE|FROM-TO",
            Kind::List(_) => "VALUE",
        }
    }

    /// The range as help shows it (`1-255`), if it has one.
    pub fn range_text(&self) -> Option<String> {
        match self.range {
            Range::Any => None,
            Range::Int(lo, hi) => Some(format!("{lo}-{hi}")),
            Range::Secs(max) => Some(format!("0-{max} s")),
            Range::Rule(r) => Some(r.to_string()),
        }
    }

    /// The default as help shows it.
    pub fn default_text(&self) -> String {
        match self.default {
            DefaultValue::Required => "required".into(),
            DefaultValue::Value(v) => v.into(),
            DefaultValue::Text(t) => t.into(),
        }
    }

    /// The doc, range and default in one line: a flag's help (a flag that turns a key off
    /// says so).
    pub fn help(&self) -> String {
        let mut h = match self.flag {
            Flag::Off(_) => format!("Turns off: {}", self.doc),
            _ => self.doc.to_string(),
        };
        let mut extra = Vec::new();
        if let Some(r) = self.range_text() {
            extra.push(r);
        }
        if self.default != DefaultValue::Required {
            extra.push(format!("default: {}", self.default_text()));
        }
        if matches!(self.kind, Kind::List(_)) {
            extra.push("repeat for several".into());
        }
        if !extra.is_empty() {
            h.push_str(&format!(" [{}]", extra.join("; ")));
        }
        h
    }
}

/// The declaration of `name` in `table`, or an error naming the close keys.
pub fn lookup(table: &'static [Key], name: &str) -> Result<&'static Key, FieldError> {
    table.iter().find(|k| k.name == name).ok_or_else(|| {
        value::ferr(
            name,
            unknown(name, table.iter().map(|k| k.name).collect::<Vec<_>>()),
        )
    })
}

/// "unknown field `prio` (did you mean `priority`?)", or the list of keys when none is close.
pub fn unknown(name: &str, candidates: Vec<&str>) -> String {
    let scored: Vec<(usize, &str)> = candidates
        .iter()
        .filter_map(|c| closeness(name, c).map(|s| (s, *c)))
        .collect();
    let best = scored.iter().map(|(s, _)| *s).min();
    let close: Vec<&str> = scored
        .iter()
        .filter(|(s, _)| Some(*s) == best)
        .map(|(_, c)| *c)
        .collect();
    let quoted = |v: &[&str], sep: &str| {
        v.iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    if close.is_empty() {
        format!(
            "unknown field `{name}`, expected one of {}",
            quoted(&candidates, ", ")
        )
    } else {
        format!(
            "unknown field `{name}` (did you mean {}?)",
            quoted(&close, " or ")
        )
    }
}

/// How close a mistyped key is to a declared one (lower is closer), if it is close at all: a
/// prefix either way, then a few typos, then a part of the name.
fn closeness(a: &str, b: &str) -> Option<usize> {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    if a.len() >= 3 && (b.starts_with(&a) || a.starts_with(&b)) {
        return Some(0);
    }
    let d = edit_distance(&a, &b);
    if d <= (b.len() / 4).max(1) {
        return Some(d);
    }
    if a.len() >= 3 && (b.contains(&a) || a.contains(&b)) {
        return Some(b.len());
    }
    None
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The `run` flag a key is set with, for errors about flags (`vips[2]` → `--vip`).
pub fn flag_of(key: &str) -> String {
    let base = key.split('[').next().unwrap_or(key);
    INSTANCE_KEYS
        .iter()
        .chain(GLOBAL_KEYS)
        .find(|k| k.name == base)
        .map(Key::flag_name)
        .unwrap_or_else(|| format!("--{}", base.replace('_', "-")))
}

/// Sets one key from text (`set_str`).
fn set_text(slot: &mut dyn Slot, k: &Key, text: &str) -> Result<(), FieldError> {
    let s: Scalar = value::scalar_from_text(k.name, k.kind, text)?;
    value::put(slot, k, s)
}

/// Declares keys: the table, the input struct with a field per key, and its setters.
macro_rules! declare_keys {
    (
        $(#[$meta:meta])*
        pub struct $input:ident, table $table:ident, scope $scope:ident {
            $( $field:ident : $ty:ty = $doc:literal { $($k:ident : $v:expr),* $(,)? } )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $input {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        #[doc = concat!("The keys of [`", stringify!($input), "`], in the order of the struct.")]
        pub static $table: &[Key] = &[
            $( Key {
                name: stringify!($field),
                scope: Scope::$scope,
                doc: $doc,
                $($k: $v,)*
                ..Key::BASE
            }, )*
        ];

        impl $input {
            /// The keys this input takes.
            pub fn keys() -> &'static [Key] {
                $table
            }

            fn slot_mut(&mut self, name: &str) -> Option<&mut dyn Slot> {
                match name {
                    $( stringify!($field) => Some(&mut self.$field), )*
                    _ => None,
                }
            }

            fn slot(&self, name: &str) -> Option<&dyn Slot> {
                match name {
                    $( stringify!($field) => Some(&self.$field), )*
                    _ => None,
                }
            }

            /// Sets `key` from text, parsed by its declared type (`"150"`, `"0.5"`, `"true"`,
            /// `"10.0.0.1/24"`); a list key takes one element per call and appends it. An
            /// unknown key is an error naming the close ones.
            pub fn set_str(&mut self, key: &str, text: &str) -> Result<(), FieldError> {
                let k = lookup($table, key)?;
                let slot = self.slot_mut(k.name).expect("every declared key has a field");
                set_text(slot, k, text)
            }

            /// Sets `key` from a native value (a TOML integer, float, bool, string, array):
            /// a type error says what was expected; a list replaces the whole list.
            pub fn set(&mut self, key: &str, v: Value) -> Result<(), FieldError> {
                let k = lookup($table, key)?;
                let slot = self.slot_mut(k.name).expect("every declared key has a field");
                value::set_value(slot, k, v)
            }

            pub fn set_bool(&mut self, key: &str, v: bool) -> Result<(), FieldError> {
                self.set(key, Value::Bool(v))
            }

            pub fn set_int(&mut self, key: &str, v: i64) -> Result<(), FieldError> {
                self.set(key, Value::Int(v))
            }

            pub fn set_float(&mut self, key: &str, v: f64) -> Result<(), FieldError> {
                self.set(key, Value::Float(v))
            }

            pub fn set_list(&mut self, key: &str, v: Vec<String>) -> Result<(), FieldError> {
                self.set(key, Value::List(v.into_iter().map(Value::Text).collect()))
            }

            /// Whether `key` was set (a list: has an element).
            pub fn is_set(&self, key: &str) -> bool {
                self.slot(key).is_some_and(|s| s.is_set())
            }
        }
    };
}

declare_keys! {
    /// Settings of one instance before validation, one field per key of [`INSTANCE_KEYS`],
    /// filled by a front-end (TOML file, `run` flags) with the setters. Numbers are wide so that
    /// out-of-range values are reported as such, not as type errors.
    pub struct InstanceInput, table INSTANCE_KEYS, scope Instance {
        name: Option<String> = "Instance name in logs, one word" {
            default: DefaultValue::Text("vrid<N> (IPv4), vrid<N>-v6 (IPv6)"),
            value_name: Some("NAME"),
            example: "web",
        }
        interface: Option<String> = "Interface to run on (e.g. eth0)" {
            flag: Flag::Named("iface"),
            value_name: Some("IFACE"),
            example: "eth1",
        }
        vrid: Option<i64> = "Virtual router ID" {
            kind: Kind::Int,
            range: Range::Int(1, 255),
            example: "42",
        }
        priority: Option<i64> = "Priority (255 = the address owner: the VIPs are this host's own addresses)" {
            kind: Kind::Int,
            range: Range::Int(1, 255),
            default: DefaultValue::Value("100"),
            example: "150",
        }
        advert_int: Option<f64> = "Advertisement interval in seconds" {
            kind: Kind::Seconds,
            range: Range::Rule("0.01-40.95 s in steps of 0.01 (v3), 1-255 whole seconds (v2)"),
            default: DefaultValue::Value("1"),
            example: "0.5",
        }
        version: Option<i64> = "VRRP version: 3 (RFC 9568) or 2 (RFC 3768, IPv4 only)" {
            kind: Kind::Int,
            range: Range::Rule("3 | 2"),
            default: DefaultValue::Value("3"),
            value_name: Some("2|3"),
            example: "2",
        }
        vips: Vec<String> = "Virtual addresses with their prefix length (no prefix: /32, /128); one family per instance" {
            kind: Kind::List(&Kind::Cidr),
            flag: Flag::Named("vip"),
            example: "10.0.0.100/24",
        }
        preempt: Option<bool> = "Preempt a lower-priority master" {
            kind: Kind::Bool,
            default: DefaultValue::Value("true"),
            flag: Flag::Off("no-preempt"),
            example: "false",
        }
        preempt_delay: Option<f64> = "Seconds to tolerate a lower-priority master after startup before preempting" {
            kind: Kind::Seconds,
            range: Range::Secs(crate::fsm::MAX_PREEMPT_DELAY.as_secs_f64()),
            default: DefaultValue::Value("0"),
            example: "2.5",
        }
        accept_mode: Option<bool> = "As master, accept packets addressed to the VIPs (keepalived without vrrp_strict)" {
            kind: Kind::Bool,
            default: DefaultValue::Value("true"),
            example: "false",
        }
        lower_prio_no_advert: Option<bool> = "As master, do not answer a lower-priority advert with an advert (answers are at most one per advert interval either way)" {
            kind: Kind::Bool,
            default: DefaultValue::Value("false"),
            flag: Flag::On,
            example: "true",
        }
        unicast_src_ip: Option<String> = "Source address of adverts" {
            kind: Kind::Addr,
            default: DefaultValue::Text("the interface's first IPv4 / link-local IPv6 address"),
            example: "10.0.0.2",
        }
        unicast_peers: Vec<String> = "Send adverts to these peers instead of multicast" {
            kind: Kind::List(&Kind::Addr),
            default: DefaultValue::Text("none: multicast"),
            flag: Flag::Named("unicast-peer"),
            example: "10.0.0.3",
        }
        auth_pass: Option<String> = "VRRPv2 simple password (auth_type PASS), at most 8 bytes" {
            default: DefaultValue::Text("none"),
            value_name: Some("PW"),
            example: "secret",
            example_with: &[("version", "2")],
        }
        garp_master_delay: Option<f64> = "Seconds after becoming master for the second GARP/NA burst (0 = none)" {
            kind: Kind::Seconds,
            range: Range::Secs(86_400.0),
            default: DefaultValue::Value("5"),
            example: "1",
        }
        garp_master_repeat: Option<i64> = "GARPs/NAs per VIP in a burst" {
            kind: Kind::Int,
            range: Range::Int(1, 255),
            default: DefaultValue::Value("5"),
            example: "3",
        }
        garp_master_refresh: Option<f64> = "Re-send a burst this often while master, in seconds (0 = never)" {
            kind: Kind::Seconds,
            range: Range::Secs(86_400.0),
            default: DefaultValue::Value("0"),
            example: "60",
        }
        garp_interval: Option<f64> = "Seconds between gratuitous ARPs of a burst (IPv4)" {
            kind: Kind::Seconds,
            range: Range::Secs(60.0),
            default: DefaultValue::Value("0"),
            example: "0.001",
        }
        gna_interval: Option<f64> = "Seconds between unsolicited NAs of a burst (IPv6)" {
            kind: Kind::Seconds,
            range: Range::Secs(60.0),
            default: DefaultValue::Value("0"),
            example: "0.002",
            example_with: &[("vips", "fe80::100/64")],
        }
        v3_checksum_as_v2: Option<bool> = "VRRPv3 over IPv4: checksum without the pseudo-header (keepalived's v3_checksum_as_v2)" {
            kind: Kind::Bool,
            default: DefaultValue::Value("false"),
            flag: Flag::On,
            example: "true",
        }
        failsafe_timeout: Option<f64> = "Fail-safe: seconds of agent silence after which the XDP program stops answering for the VIPs" {
            kind: Kind::Seconds,
            range: Range::Rule("0.004-3600 s"),
            default: DefaultValue::Text("[global] failsafe_timeout, else the Master_Down_Interval"),
            example: "0.2",
        }
        track: Vec<String> = "Tracked targets with weights: check, interface, file or process (weight 0 = FAULT while down)" {
            kind: Kind::List(&Kind::Track),
            range: Range::Rule("weight -254-254; one of check=NAME, interface=IFACE, file=PATH, process=NAME"),
            default: DefaultValue::Text("none"),
            example: "interface=eth1 weight=-50",
        }
        notify: Option<String> = "Command run at every state change: PROGRAM [ARGS] + INSTANCE <name> <STATE> <priority>" {
            range: Range::Rule("an absolute path, then arguments (no shell)"),
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/notify",
        }
        notify_master: Option<String> = "Command run on becoming MASTER" {
            range: Range::Rule("an absolute path, then arguments (no shell)"),
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/to-master",
        }
        notify_backup: Option<String> = "Command run on becoming BACKUP" {
            range: Range::Rule("an absolute path, then arguments (no shell)"),
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/to-backup",
        }
        notify_fault: Option<String> = "Command run on entering FAULT" {
            range: Range::Rule("an absolute path, then arguments (no shell)"),
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/to-fault",
        }
        notify_stop: Option<String> = "Command run when the instance stops" {
            range: Range::Rule("an absolute path, then arguments (no shell)"),
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/on-stop",
        }
    }
}

declare_keys! {
    /// The `[global]` settings before validation, one field per key of [`GLOBAL_KEYS`].
    pub struct GlobalInput, table GLOBAL_KEYS, scope Global {
        xdp_mode: Option<String> = "How to attach the XDP program" {
            range: Range::Rule("auto | native | generic"),
            default: DefaultValue::Value("auto"),
            value_name: Some("auto|native|generic"),
            example: "generic",
        }
        failsafe_timeout: Option<f64> = "Fail-safe timeout of every instance that sets none" {
            kind: Kind::Seconds,
            range: Range::Rule("0.004-3600 s"),
            default: DefaultValue::Text("each instance's Master_Down_Interval"),
            example: "0.5",
        }
        require_failsafe: Option<bool> = "Refuse to start where the fail-safe cannot outlive the agent" {
            kind: Kind::Bool,
            default: DefaultValue::Value("false"),
            flag: Flag::On,
            example: "true",
        }
        realtime_priority: Option<i64> = "SCHED_RR priority of the agent's threads, 0 = normal scheduling" {
            kind: Kind::Int,
            range: Range::Rule("0-99"),
            default: DefaultValue::Value("10"),
            value_name: Some("N"),
            example: "20",
        }
        control_group: Option<String> = "Group (name or number) allowed to use the control socket besides root" {
            default: DefaultValue::Text("none (root only)"),
            value_name: Some("GROUP"),
            example: "vrrp",
        }
        metrics_addr: Option<String> = "Serve Prometheus metrics over HTTP on ADDR:PORT (/metrics)" {
            default: DefaultValue::Text("none (no metrics server)"),
            value_name: Some("ADDR:PORT"),
            example: "127.0.0.1:9650",
        }
    }
}

declare_keys! {
    /// One `[[check]]` before validation, one field per key of [`CHECK_KEYS`]. Exactly one of
    /// `script`, `icmp`, `tcp`, `http`, `https` says what is probed.
    pub struct CheckInput, table CHECK_KEYS, scope Check {
        name: Option<String> = "Check name, one word (what `track = [{ check = NAME }]` refers to)" {
            value_name: Some("NAME"),
            example: "web",
        }
        script: Option<String> = "Run a program: exit status 0 = up (an absolute path, then arguments; no shell)" {
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/check-web --quick",
        }
        icmp: Option<String> = "Ping this address (IPv4 or IPv6)" {
            kind: Kind::Addr,
            default: DefaultValue::Text("none"),
            example: "10.0.0.1",
        }
        tcp: Option<String> = "Connect to ADDR:PORT (IPv6: [ADDR]:PORT)" {
            default: DefaultValue::Text("none"),
            value_name: Some("ADDR:PORT"),
            example: "10.0.0.5:5432",
        }
        http: Option<String> = "GET this http:// URL" {
            default: DefaultValue::Text("none"),
            value_name: Some("URL"),
            example: "http://127.0.0.1:8080/healthz",
        }
        https: Option<String> = "GET this https:// URL" {
            default: DefaultValue::Text("none"),
            value_name: Some("URL"),
            example: "https://127.0.0.1:8443/healthz",
        }
        interval: Option<f64> = "Seconds between two probes" {
            kind: Kind::Seconds,
            range: Range::Rule("0.01-86400 s"),
            default: DefaultValue::Value("1"),
            example: "0.1",
        }
        timeout: Option<f64> = "Seconds a probe may take (a script is killed with its process group then)" {
            kind: Kind::Seconds,
            range: Range::Rule("0.001 s up to the interval"),
            default: DefaultValue::Text("the interval"),
            example: "0.5",
        }
        rise: Option<i64> = "Consecutive successes to become up (a check starts down)" {
            kind: Kind::Int,
            range: Range::Int(1, 1_000_000),
            default: DefaultValue::Value("1"),
            example: "2",
        }
        fall: Option<i64> = "Consecutive failures to become down" {
            kind: Kind::Int,
            range: Range::Int(1, 1_000_000),
            default: DefaultValue::Value("1"),
            example: "3",
        }
        status: Vec<String> = "HTTP(S): status codes that count as up, each a code or a range" {
            kind: Kind::List(&Kind::Status),
            range: Range::Rule("100-599"),
            default: DefaultValue::Value("200-399"),
            example: "204",
        }
        body_contains: Option<String> = "HTTP(S): the body must contain this text" {
            default: DefaultValue::Text("none"),
            example: "ok",
        }
        host: Option<String> = "HTTP(S): Host header and TLS server name" {
            default: DefaultValue::Text("the URL's host"),
            example: "example.org",
        }
        tls_verify: Option<bool> = "HTTPS: verify the server's certificate" {
            kind: Kind::Bool,
            default: DefaultValue::Value("true"),
            example: "false",
        }
        user: Option<String> = "Script: run as this user" {
            default: DefaultValue::Text("the agent's user"),
            example: "nobody",
        }
    }
}

declare_keys! {
    /// One `[[sync_group]]` before validation, one field per key of [`SYNC_GROUP_KEYS`].
    pub struct SyncGroupInput, table SYNC_GROUP_KEYS, scope SyncGroup {
        name: Option<String> = "Group name, one word" {
            value_name: Some("NAME"),
            example: "g1",
        }
        instances: Vec<String> = "The instances that move together (by name; each in at most one group)" {
            kind: Kind::List(&Kind::Str),
            example: "web",
        }
        notify: Option<String> = "Command run at every group state change: PROGRAM [ARGS] + GROUP <name> <STATE> <priority>" {
            range: Range::Rule("an absolute path, then arguments (no shell)"),
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/notify",
        }
        notify_master: Option<String> = "Command run when the group becomes MASTER" {
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/to-master",
        }
        notify_backup: Option<String> = "Command run when the group becomes BACKUP" {
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/to-backup",
        }
        notify_fault: Option<String> = "Command run when the group enters FAULT" {
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/to-fault",
        }
        notify_stop: Option<String> = "Command run when the group stops" {
            default: DefaultValue::Text("none"),
            value_name: Some("CMD"),
            example: "/usr/local/bin/on-stop",
        }
    }
}

/// The declaration of a `[[check]]` key.
pub(crate) fn check_key(name: &str) -> &'static Key {
    CHECK_KEYS
        .iter()
        .find(|k| k.name == name)
        .expect("declared check key")
}

/// The declaration of an instance key (a name the model itself uses: a missing one is a bug).
pub(crate) fn instance_key(name: &str) -> &'static Key {
    INSTANCE_KEYS
        .iter()
        .find(|k| k.name == name)
        .expect("declared instance key")
}

/// The declaration of a global key.
pub(crate) fn global_key(name: &str) -> &'static Key {
    GLOBAL_KEYS
        .iter()
        .find(|k| k.name == name)
        .expect("declared global key")
}
