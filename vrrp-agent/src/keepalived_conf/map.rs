//! keepalived keywords → the model's keys (the TOML names of `[global]`, `[[check]]`,
//! `[[instance]]` and `[[sync_group]]`). Nothing here validates a value beyond reading it as
//! the key's type: the ranges and the rules between keys are the model's, applied when the
//! result is built like any TOML file.
use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use toml::Value as T;

use super::parse::{diag, Diag, Loc, Node};
use crate::config::{InstanceInput, Kind, INSTANCE_KEYS};

/// One key of a section, with where it was written (and, for a list, each element).
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: T,
    pub loc: Loc,
    pub elem_locs: Vec<Loc>,
}

/// One table of the result: `[global]` or one element of `[[check]]`, `[[instance]]`,
/// `[[sync_group]]`.
#[derive(Debug, Clone)]
pub struct Section {
    /// What it came from: `vrrp_instance VI_1`.
    pub title: String,
    pub loc: Loc,
    pub entries: Vec<Entry>,
}

impl Section {
    fn new(title: String, loc: &Loc) -> Section {
        Section {
            title,
            loc: loc.clone(),
            entries: Vec::new(),
        }
    }

    /// Sets `key` (a later keyword replaces an earlier one, as keepalived reads them).
    fn set(&mut self, key: &str, value: T, loc: &Loc) {
        self.entries.retain(|e| e.key != key);
        self.entries.push(Entry {
            key: key.into(),
            value,
            loc: loc.clone(),
            elem_locs: Vec::new(),
        });
    }

    /// Appends one element to the list `key`.
    fn push(&mut self, key: &str, value: T, loc: &Loc) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            if let T::Array(a) = &mut e.value {
                a.push(value);
                e.elem_locs.push(loc.clone());
                return;
            }
        }
        self.entries.push(Entry {
            key: key.into(),
            value: T::Array(vec![value]),
            loc: loc.clone(),
            elem_locs: vec![loc.clone()],
        });
    }

    fn get(&self, key: &str) -> Option<&T> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }
}

/// The model's tables read from a keepalived configuration.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Lines for the head of the TOML text (what has no key: `router_id`).
    pub notes: Vec<String>,
    pub global: Option<Section>,
    pub checks: Vec<Section>,
    pub instances: Vec<Section>,
    pub sync_groups: Vec<Section>,
}

/// What a keyword's warnings and errors say.
fn unsupported(n: &Node) -> String {
    format!("{}: not supported (ignored)", n.keyword)
}

/// keepalived's `<BOOL>`: on|off|true|false|yes|no, or nothing (on).
fn boolean(n: &Node) -> Result<bool, Diag> {
    match n.arg_texts().as_slice() {
        [] => Ok(true),
        [w] => match w.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            _ => Err(diag(
                &n.loc,
                format!(
                    "{}: {w:?} is not one of on, off, true, false, yes, no",
                    n.keyword
                ),
            )),
        },
        _ => Err(diag(
            &n.loc,
            format!("{}: takes at most one word", n.keyword),
        )),
    }
}

/// The one argument of `n`.
fn one(n: &Node) -> Result<&str, Diag> {
    match n.args.as_slice() {
        [w] => Ok(&w.text),
        [] => Err(diag(&n.loc, format!("{}: a value is missing", n.keyword))),
        _ => Err(diag(
            &n.loc,
            format!(
                "{}: expected one value, got {} ({})",
                n.keyword,
                n.args.len(),
                n.arg_texts().join(" ")
            ),
        )),
    }
}

/// The command line of a script keyword: every word after the keyword, joined with a blank
/// (keepalived reads `"a b" c` as the command `a b c`).
fn command(n: &Node, warnings: &mut Vec<Diag>) -> Result<String, Diag> {
    if n.args.is_empty() {
        return Err(diag(
            &n.loc,
            format!("{}: the command is missing", n.keyword),
        ));
    }
    let cmd = n.arg_texts().join(" ");
    if cmd
        .chars()
        .any(|c| matches!(c, '\'' | '|' | '&' | ';' | '>' | '<' | '`' | '$'))
    {
        warnings.push(diag(
            &n.loc,
            format!(
                "{}: {cmd:?} is run without a shell (split on blanks; quotes, pipes and \
                 redirections are passed as words): put it in a script file",
                n.keyword
            ),
        ));
    }
    Ok(cmd)
}

/// A number as a TOML value (an integer stays an integer).
fn number(n: &Node, text: &str) -> Result<T, Diag> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(T::Integer(i));
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(T::Float(f)),
        _ => Err(diag(
            &n.loc,
            format!("{}: {text:?} is not a number", n.keyword),
        )),
    }
}

fn integer(n: &Node, text: &str) -> Result<i64, Diag> {
    text.parse::<i64>()
        .map_err(|_| diag(&n.loc, format!("{}: {text:?} is not an integer", n.keyword)))
}

/// A value for the instance key `key`, read by its declared type (the model's reader: a bad
/// value is an error at the keyword's line).
fn instance_value(n: &Node, key: &str, text: &str) -> Result<T, Diag> {
    InstanceInput::default()
        .set_str(key, text)
        .map_err(|e| diag(&n.loc, format!("{}: {}", n.keyword, e.msg)))?;
    let k = INSTANCE_KEYS
        .iter()
        .find(|k| k.name == key)
        .expect("a declared key");
    Ok(match k.kind {
        Kind::Bool => T::Boolean(text == "true"),
        Kind::Int => T::Integer(text.trim().parse().expect("checked by set_str")),
        Kind::Seconds => number(n, text.trim())?,
        // (Only scalar keys and list elements are set through here.)
        Kind::Str | Kind::Addr | Kind::Cidr | Kind::List(_) | Kind::Track | Kind::Status => {
            T::String(text.to_string())
        }
    })
}

/// A `vrrp_script`, kept until an instance tracks it.
struct Script {
    section: Section,
    weight: i64,
    used: bool,
}

/// A `vrrp_track_file` / `vrrp_track_process`: what it watches and its default weight.
struct Watched {
    target: String,
    weight: i64,
}

/// `global_defs` settings that are defaults of every instance or check.
#[derive(Default)]
struct Defaults {
    /// Instance keys set by `vrrp_*` keywords of global_defs.
    instance: Vec<(String, T, Loc)>,
    /// `vrrp_version`.
    version: Option<i64>,
    /// `vrrp_strict`: no accept mode unless an instance asks for it.
    strict: bool,
    script_user: Option<String>,
}

/// Maps the statements of a configuration onto the model's tables.
pub fn map(nodes: &[Node], warnings: &mut Vec<Diag>) -> Result<Model, Diag> {
    let mut m = Model::default();
    let mut defaults = Defaults::default();
    let mut scripts: Vec<(String, Script)> = Vec::new();
    let mut files: HashMap<String, Watched> = HashMap::new();
    let mut processes: HashMap<String, Watched> = HashMap::new();
    // Definitions first: keepalived lets an instance name a script defined after it.
    for n in nodes {
        match n.keyword.as_str() {
            "global_defs" => global_defs(n, &mut m, &mut defaults, warnings)?,
            "vrrp_script" => {
                let (name, s) = vrrp_script(n, warnings)?;
                if scripts.iter().any(|(x, _)| *x == name) {
                    return Err(diag(&n.loc, format!("vrrp_script {name}: defined twice")));
                }
                scripts.push((name, s));
            }
            "vrrp_track_file" => {
                let (name, w) = watched(n, "file", 1, warnings)?;
                files.insert(name, w);
            }
            "vrrp_track_process" => {
                let (name, w) = watched(n, "process", 0, warnings)?;
                processes.insert(name, w);
            }
            _ => {}
        }
    }
    if let Some(user) = &defaults.script_user {
        for (_, s) in &mut scripts {
            if s.section.get("user").is_none() {
                let loc = s.section.loc.clone();
                s.section.set("user", T::String(user.clone()), &loc);
            }
        }
    }
    let mut names = HashSet::new();
    for n in nodes {
        match n.keyword.as_str() {
            "global_defs" | "vrrp_script" | "vrrp_track_file" | "vrrp_track_process" => {}
            "vrrp_instance" => {
                let mut tr = Trackables {
                    scripts: &mut scripts,
                    files: &files,
                    processes: &processes,
                };
                let s = vrrp_instance(n, &defaults, &mut tr, warnings)?;
                let name = s.title.clone();
                if !names.insert(name.clone()) {
                    return Err(diag(&n.loc, format!("{name}: defined twice")));
                }
                m.instances.push(s);
            }
            "vrrp_sync_group" => m.sync_groups.push(sync_group(n, warnings)?),
            "virtual_server" | "virtual_server_group" => warnings.push(diag(
                &n.loc,
                format!(
                    "{}: the LVS side of keepalived (virtual servers, real servers and their \
                     checks) is not supported (ignored); vrrp-agent moves the addresses only",
                    n.keyword
                ),
            )),
            _ => warnings.push(diag(&n.loc, unsupported(n))),
        }
    }
    for (name, s) in scripts {
        if s.used {
            m.checks.push(s.section);
        } else {
            warnings.push(diag(
                &s.section.loc,
                format!("vrrp_script {name}: no instance tracks it (left out)"),
            ));
        }
    }
    // keepalived ignores the weights of the trackers of sync group members (a member whose
    // tracker is down goes FAULT, and the group with it).
    for g in &m.sync_groups {
        let members: Vec<&str> = g
            .entries
            .iter()
            .filter(|e| e.key == "instances")
            .flat_map(|e| e.value.as_array().into_iter().flatten())
            .filter_map(|v| v.as_str())
            .collect();
        for i in m.instances.iter_mut() {
            let name = i.title.trim_start_matches("vrrp_instance ").to_string();
            if !members.contains(&name.as_str()) {
                continue;
            }
            let Some(e) = i.entries.iter_mut().find(|e| e.key == "track") else {
                continue;
            };
            let Some(a) = e.value.as_array_mut() else {
                continue;
            };
            for (t, loc) in a.iter_mut().zip(&e.elem_locs) {
                let Some(w) = t.get_mut("weight") else {
                    continue;
                };
                if *w != T::Integer(0) {
                    warnings.push(diag(
                        loc,
                        format!(
                            "weight {w}: keepalived ignores tracking weights in a sync group \
                             ({}); so does the import (weight 0: FAULT while down)",
                            g.title
                        ),
                    ));
                    *w = T::Integer(0);
                }
            }
        }
    }
    // Every sync group member must be an instance (the model says so too, but the name is
    // keepalived's here).
    for g in &m.sync_groups {
        if let Some(e) = g.entries.iter().find(|e| e.key == "instances") {
            if let T::Array(a) = &e.value {
                for (v, loc) in a.iter().zip(&e.elem_locs) {
                    let name = v.as_str().unwrap_or_default();
                    if !m
                        .instances
                        .iter()
                        .any(|i| i.title == format!("vrrp_instance {name}"))
                    {
                        return Err(diag(loc, format!("{}: no vrrp_instance {name}", g.title)));
                    }
                }
            }
        }
    }
    Ok(m)
}

fn global_defs(
    n: &Node,
    m: &mut Model,
    d: &mut Defaults,
    warnings: &mut Vec<Diag>,
) -> Result<(), Diag> {
    for c in n.block.as_deref().unwrap_or_default() {
        let k = c.keyword.as_str();
        match k {
            "router_id" => {
                let id = one(c)?;
                m.notes.push(format!("router_id {id} ({})", c.loc));
                warnings.push(diag(
                    &c.loc,
                    "router_id: vrrp-agent has no router id (kept as a comment; instance names \
                     identify the node in logs)",
                ));
            }
            "notification_email"
            | "notification_email_from"
            | "smtp_server"
            | "smtp_helo_name"
            | "smtp_connect_timeout"
            | "smtp_alert"
            | "smtp_alert_vrrp"
            | "smtp_alert_checker"
            | "email_faults" => warnings.push(diag(
                &c.loc,
                format!("{k}: mail is not supported (ignored); use notify scripts"),
            )),
            "vrrp_strict" => {
                d.strict = true;
                warnings.push(diag(
                    &c.loc,
                    "vrrp_strict: applied as accept_mode = false on every instance without \
                     `accept`; its firewall rules are not installed",
                ));
            }
            // vrrp-agent always refuses a check script writable by anyone but root.
            "enable_script_security" => {}
            "script_user" => {
                let a = c.arg_texts();
                match a.as_slice() {
                    [u] => d.script_user = Some(u.to_string()),
                    [u, _g] => {
                        d.script_user = Some(u.to_string());
                        warnings.push(diag(
                            &c.loc,
                            "script_user: the group is not supported (ignored): scripts run with \
                             the user's own group",
                        ));
                    }
                    _ => return Err(diag(&c.loc, "script_user: expected USER [GROUP]")),
                }
            }
            "vrrp_version" => {
                let v = integer(c, one(c)?)?;
                d.version = Some(v);
            }
            "vrrp_garp_master_delay"
            | "vrrp_garp_master_repeat"
            | "vrrp_garp_master_refresh"
            | "vrrp_garp_interval"
            | "vrrp_gna_interval"
            | "vrrp_lower_prio_no_advert" => {
                let key = k.trim_start_matches("vrrp_");
                let v = if key == "lower_prio_no_advert" {
                    T::Boolean(boolean(c)?)
                } else {
                    instance_value(c, key, one(c)?)?
                };
                d.instance.push((key.to_string(), v, c.loc.clone()));
            }
            "vrrp_rt_priority" => {
                let v = integer(c, one(c)?)?;
                let g = m
                    .global
                    .get_or_insert_with(|| Section::new("global_defs".into(), &n.loc));
                g.set("realtime_priority", T::Integer(v), &c.loc);
            }
            _ => warnings.push(diag(&c.loc, unsupported(c))),
        }
    }
    Ok(())
}

/// The name of a named block (`vrrp_instance NAME {`).
fn block_name(n: &Node) -> Result<(&str, &[Node]), Diag> {
    let name = match n.arg_texts().as_slice() {
        [name] => *name,
        _ => {
            return Err(diag(
                &n.loc,
                format!("{}: expected one name before `{{`", n.keyword),
            ))
        }
    };
    let Some(block) = n.block.as_deref() else {
        return Err(diag(
            &n.loc,
            format!("{} {name}: its `{{ ... }}` block is missing", n.keyword),
        ));
    };
    Ok((name, block))
}

fn vrrp_script(n: &Node, warnings: &mut Vec<Diag>) -> Result<(String, Script), Diag> {
    let (name, block) = block_name(n)?;
    let mut s = Section::new(format!("vrrp_script {name}"), &n.loc);
    s.set("name", T::String(name.into()), &n.loc);
    let mut weight = 0;
    let mut has_script = false;
    for c in block {
        match c.keyword.as_str() {
            "script" => {
                s.set("script", T::String(command(c, warnings)?), &c.loc);
                has_script = true;
            }
            "interval" | "timeout" => {
                let v = number(c, one(c)?)?;
                s.set(&c.keyword, v, &c.loc);
            }
            "rise" | "fall" => {
                let v = integer(c, one(c)?)?;
                s.set(&c.keyword, T::Integer(v), &c.loc);
            }
            "weight" => {
                let a = c.arg_texts();
                match a.as_slice() {
                    [w] => weight = integer(c, w)?,
                    [w, "reverse"] => {
                        weight = integer(c, w)?;
                        warnings.push(diag(
                            &c.loc,
                            "weight ... reverse: not supported (ignored: the weight applies as \
                             written)",
                        ));
                    }
                    _ => return Err(diag(&c.loc, "weight: expected a number")),
                }
            }
            // vrrp-agent's checks start down, which is what init_fail asks for.
            "init_fail" => {}
            "user" => {
                let a = c.arg_texts();
                match a.as_slice() {
                    [u] => s.set("user", T::String(u.to_string()), &c.loc),
                    [u, _] => {
                        s.set("user", T::String(u.to_string()), &c.loc);
                        warnings.push(diag(
                            &c.loc,
                            "user: the group is not supported (ignored): the script runs with the \
                             user's own group",
                        ));
                    }
                    _ => return Err(diag(&c.loc, "user: expected USER [GROUP]")),
                }
            }
            _ => warnings.push(diag(&c.loc, unsupported(c))),
        }
    }
    if !has_script {
        return Err(diag(
            &n.loc,
            format!("vrrp_script {name}: `script` is missing"),
        ));
    }
    Ok((
        name.to_string(),
        Script {
            section: s,
            weight,
            used: false,
        },
    ))
}

/// `vrrp_track_file` (`what` = "file") or `vrrp_track_process` ("process").
fn watched(
    n: &Node,
    what: &str,
    default_weight: i64,
    warnings: &mut Vec<Diag>,
) -> Result<(String, Watched), Diag> {
    let (name, block) = block_name(n)?;
    let mut target = None;
    let mut weight = default_weight;
    for c in block {
        match c.keyword.as_str() {
            k if k == what => target = Some(one(c)?.to_string()),
            "weight" => weight = integer(c, one(c)?)?,
            _ => warnings.push(diag(&c.loc, unsupported(c))),
        }
    }
    let target =
        target.ok_or_else(|| diag(&n.loc, format!("{} {name}: `{what}` is missing", n.keyword)))?;
    Ok((name.to_string(), Watched { target, weight }))
}

struct Trackables<'a> {
    scripts: &'a mut Vec<(String, Script)>,
    files: &'a HashMap<String, Watched>,
    processes: &'a HashMap<String, Watched>,
}

/// `NAME [weight W]` of a track_* block.
fn track_line(c: &Node, warnings: &mut Vec<Diag>) -> Result<Option<i64>, Diag> {
    let a = c.arg_texts();
    match a.as_slice() {
        [] => Ok(None),
        ["weight", w] => Ok(Some(integer(c, w)?)),
        ["weight", w, "reverse"] => {
            warnings.push(diag(
                &c.loc,
                "weight ... reverse: not supported (ignored: the weight applies as written)",
            ));
            Ok(Some(integer(c, w)?))
        }
        _ => Err(diag(
            &c.loc,
            format!("{} {}: expected NAME [weight N]", c.keyword, a.join(" ")),
        )),
    }
}

fn track(target: &str, name: &str, weight: i64) -> T {
    let mut t = toml::Table::new();
    t.insert(target.into(), T::String(name.into()));
    t.insert("weight".into(), T::Integer(weight));
    T::Table(t)
}

const NOTIFY: [&str; 5] = [
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
];

/// A notify keyword: `notify_master "CMD" [USER [GROUP]]`.
fn notify(c: &Node, s: &mut Section, warnings: &mut Vec<Diag>) -> Result<(), Diag> {
    let Some(first) = c.args.first() else {
        return Err(diag(
            &c.loc,
            format!("{}: the command is missing", c.keyword),
        ));
    };
    // Unquoted, the words after the command are its user and group.
    let cmd = if first.quoted || c.args.len() == 1 {
        if c.args.len() > 1 {
            warnings.push(diag(
                &c.loc,
                format!(
                    "{}: running as another user is not supported (ignored: the script runs as \
                     the agent's user)",
                    c.keyword
                ),
            ));
        }
        let only = Node {
            args: vec![first.clone()],
            ..c.clone()
        };
        command(&only, warnings)?
    } else {
        command(c, warnings)?
    };
    s.set(&c.keyword, T::String(cmd), &c.loc);
    Ok(())
}

fn vrrp_instance(
    n: &Node,
    d: &Defaults,
    tr: &mut Trackables<'_>,
    warnings: &mut Vec<Diag>,
) -> Result<Section, Diag> {
    let (name, block) = block_name(n)?;
    let mut s = Section::new(format!("vrrp_instance {name}"), &n.loc);
    s.set("name", T::String(name.into()), &n.loc);
    for (k, v, loc) in &d.instance {
        s.set(k, v.clone(), loc);
    }
    let mut state: Option<(String, Loc)> = None;
    let mut accept: Option<bool> = None;
    let mut auth: Option<(String, Loc)> = None;
    let mut native_ipv6: Option<Loc> = None;
    let mut interface: Option<String> = None;
    // `dev` of the VIPs, checked against the interface at the end.
    let mut devs: Vec<(String, String, Loc)> = Vec::new();
    for c in block {
        let k = c.keyword.as_str();
        let direct = |key: &str, s: &mut Section| -> Result<(), Diag> {
            let v = instance_value(c, key, one(c)?)?;
            s.set(key, v, &c.loc);
            Ok(())
        };
        match k {
            "state" => {
                let v = one(c)?.to_ascii_uppercase();
                if v != "MASTER" && v != "BACKUP" {
                    return Err(diag(
                        &c.loc,
                        format!("state: {v:?} is not MASTER or BACKUP"),
                    ));
                }
                state = Some((v, c.loc.clone()));
            }
            "interface" => {
                interface = Some(one(c)?.to_string());
                direct("interface", &mut s)?;
            }
            "virtual_router_id" => direct("vrid", &mut s)?,
            "priority"
            | "advert_int"
            | "preempt_delay"
            | "garp_master_delay"
            | "garp_master_repeat"
            | "garp_master_refresh"
            | "garp_interval"
            | "gna_interval"
            | "unicast_src_ip" => direct(k, &mut s)?,
            "mcast_src_ip" => direct("unicast_src_ip", &mut s)?,
            "version" => {
                let v = integer(c, one(c)?)?;
                s.set("version", T::Integer(v), &c.loc);
            }
            "nopreempt" => s.set("preempt", T::Boolean(false), &c.loc),
            "preempt" => s.set("preempt", T::Boolean(true), &c.loc),
            "accept" => accept = Some(true),
            "no_accept" => accept = Some(false),
            "lower_prio_no_advert" => {
                s.set("lower_prio_no_advert", T::Boolean(boolean(c)?), &c.loc)
            }
            "native_ipv6" => native_ipv6 = Some(c.loc.clone()),
            "authentication" => {
                for a in c.block.as_deref().unwrap_or_default() {
                    match a.keyword.as_str() {
                        "auth_type" => match one(a)?.to_ascii_uppercase().as_str() {
                            "PASS" => {}
                            "AH" => {
                                return Err(diag(
                                    &a.loc,
                                    "auth_type AH is not supported: use auth_type PASS, or no \
                                     authentication block",
                                ))
                            }
                            t => {
                                return Err(diag(
                                    &a.loc,
                                    format!("auth_type: {t:?} is not PASS or AH"),
                                ))
                            }
                        },
                        "auth_pass" => {
                            let mut p = one(a)?.to_string();
                            if p.len() > 8 {
                                // keepalived sends the first 8 bytes; so must its peers.
                                let cut = (0..=8).rev().find(|i| p.is_char_boundary(*i));
                                p.truncate(cut.unwrap_or(0));
                                warnings.push(diag(
                                    &a.loc,
                                    format!(
                                        "auth_pass: longer than 8 bytes, cut to {p:?} (what \
                                         keepalived sends too)"
                                    ),
                                ));
                            }
                            auth = Some((p, a.loc.clone()));
                        }
                        _ => warnings.push(diag(&a.loc, unsupported(a))),
                    }
                }
            }
            "virtual_ipaddress" => {
                for a in c.block.as_deref().unwrap_or_default() {
                    let addr = a.keyword.clone();
                    let v = instance_value(a, "vips", &addr)?;
                    s.push("vips", v, &a.loc);
                    let words = a.arg_texts();
                    let mut i = 0;
                    while i < words.len() {
                        let opt = words[i];
                        let val = words.get(i + 1).copied();
                        match (opt, val) {
                            ("dev", Some(dev)) => {
                                devs.push((addr.clone(), dev.into(), a.loc.clone()))
                            }
                            ("scope", Some("global")) => {}
                            (
                                "label" | "scope" | "brd" | "broadcast" | "preferred_lft"
                                | "track_group",
                                Some(_),
                            ) => warnings.push(diag(
                                &a.loc,
                                format!("{addr} {opt}: not supported (ignored)"),
                            )),
                            (
                                "no_track" | "home" | "-nodad" | "nodad" | "noprefixroute"
                                | "autojoin",
                                _,
                            ) => {
                                warnings.push(diag(
                                    &a.loc,
                                    format!("{addr} {opt}: not supported (ignored)"),
                                ));
                                i += 1;
                                continue;
                            }
                            _ => {
                                return Err(diag(
                                    &a.loc,
                                    format!("virtual_ipaddress {addr}: unexpected {opt:?}"),
                                ))
                            }
                        }
                        i += 2;
                    }
                }
            }
            "virtual_ipaddress_excluded" => warnings.push(diag(
                &c.loc,
                "virtual_ipaddress_excluded: not supported (ignored): these addresses are not \
                 moved; list them in virtual_ipaddress (they are then advertised) or in another \
                 vrrp_instance",
            )),
            "unicast_peer" => {
                for a in c.block.as_deref().unwrap_or_default() {
                    let v = instance_value(a, "unicast_peers", &a.keyword)?;
                    s.push("unicast_peers", v, &a.loc);
                    if !a.args.is_empty() {
                        warnings.push(diag(
                            &a.loc,
                            format!(
                                "{} {}: not supported (ignored)",
                                a.keyword,
                                a.arg_texts().join(" ")
                            ),
                        ));
                    }
                }
            }
            "track_interface" => {
                for a in c.block.as_deref().unwrap_or_default() {
                    let w = track_line(a, warnings)?.unwrap_or(0);
                    s.push("track", track("interface", &a.keyword, w), &a.loc);
                }
            }
            "track_script" => {
                for a in c.block.as_deref().unwrap_or_default() {
                    let w = track_line(a, warnings)?;
                    let Some((_, script)) = tr.scripts.iter_mut().find(|(x, _)| *x == a.keyword)
                    else {
                        return Err(diag(
                            &a.loc,
                            format!(
                                "track_script {}: no vrrp_script {} is defined",
                                a.keyword, a.keyword
                            ),
                        ));
                    };
                    script.used = true;
                    let w = w.unwrap_or(script.weight);
                    s.push("track", track("check", &a.keyword, w), &a.loc);
                }
            }
            "track_file" | "track_process" => {
                let (table, what) = if k == "track_file" {
                    (tr.files, "file")
                } else {
                    (tr.processes, "process")
                };
                for a in c.block.as_deref().unwrap_or_default() {
                    let w = track_line(a, warnings)?;
                    let Some(def) = table.get(&a.keyword) else {
                        return Err(diag(
                            &a.loc,
                            format!("{k} {}: no vrrp_{k} {} is defined", a.keyword, a.keyword),
                        ));
                    };
                    let w = w.unwrap_or(def.weight);
                    s.push("track", track(what, &def.target, w), &a.loc);
                }
            }
            k if NOTIFY.contains(&k) => notify(c, &mut s, warnings)?,
            "use_vmac" => warnings.push(diag(
                &c.loc,
                "use_vmac: not needed (ignored): the fast path answers for the VIPs with the \
                 virtual MAC on the interface itself",
            )),
            _ => warnings.push(diag(&c.loc, unsupported(c))),
        }
    }
    // The VIPs are added to the instance's interface: a `dev` elsewhere would put them on a
    // link this instance does not answer on.
    for (addr, dev, loc) in devs {
        if interface.as_deref() != Some(dev.as_str()) {
            return Err(diag(
                &loc,
                format!(
                    "virtual_ipaddress {addr} dev {dev}: VIPs live on the instance's interface ({}); \
                     run a vrrp_instance on {dev} for it, or drop `dev`",
                    interface.as_deref().unwrap_or("none set")
                ),
            ));
        }
    }
    // The version: the instance's, else global_defs' vrrp_version, else keepalived's default
    // (2); IPv6 has only VRRPv3.
    let v6 = matches!(s.get("vips"), Some(T::Array(a)) if a.first().and_then(|v| v.as_str())
        .and_then(|t| t.split('/').next()?.parse::<IpAddr>().ok()).is_some_and(|a| a.is_ipv6()));
    if s.get("version").is_none() {
        let v = d.version.unwrap_or(if v6 { 3 } else { 2 });
        let loc = n.loc.clone();
        s.set("version", T::Integer(v), &loc);
    }
    // keepalived rounds a VRRPv2 advert_int to whole seconds (at least 1), with a warning.
    if s.get("version") == Some(&T::Integer(2)) {
        if let Some(e) = s.entries.iter_mut().find(|e| e.key == "advert_int") {
            if let T::Float(f) = e.value {
                let r = f.round().max(1.0) as i64;
                warnings.push(diag(
                    &e.loc,
                    format!(
                        "advert_int {f}: VRRPv2 counts whole seconds: rounded to {r}, as keepalived \
                         does (sub-second adverts need vrrp_version 3 on every node)"
                    ),
                ));
                e.value = T::Integer(r);
            }
        }
    }
    if let Some(loc) = native_ipv6 {
        if !v6 {
            warnings.push(diag(
                &loc,
                "native_ipv6: not supported (ignored): the family follows the VIPs",
            ));
        }
    }
    if let Some((pass, loc)) = auth {
        if s.get("version") == Some(&T::Integer(3)) {
            warnings.push(diag(
                &loc,
                "authentication: VRRPv3 has none (ignored, as keepalived does)",
            ));
        } else {
            s.set("auth_pass", T::String(pass), &loc);
        }
    }
    match accept {
        Some(a) => s.set("accept_mode", T::Boolean(a), &n.loc),
        None if d.strict => s.set("accept_mode", T::Boolean(false), &n.loc),
        None => {}
    }
    // keepalived clears nopreempt with state MASTER, and preempt_delay without preemption.
    let nopreempt = s
        .entries
        .iter()
        .find(|e| e.key == "preempt" && e.value == T::Boolean(false));
    if let Some(np) = nopreempt.map(|e| e.loc.clone()) {
        if state.as_ref().is_some_and(|(st, _)| st == "MASTER") {
            warnings.push(diag(
                &np,
                "nopreempt: keepalived ignores it with state MASTER, and so does the import \
                 (use state BACKUP on every node)",
            ));
            s.entries.retain(|e| e.key != "preempt");
        } else if let Some(pd) = s.entries.iter().find(|e| e.key == "preempt_delay") {
            warnings.push(diag(
                &pd.loc,
                "preempt_delay: keepalived ignores it with nopreempt, and so does the import",
            ));
            s.entries.retain(|e| e.key != "preempt_delay");
        }
    }
    if let Some((st, loc)) = state {
        let prio = s.get("priority").and_then(T::as_integer);
        let text = match (st.as_str(), prio) {
            ("MASTER", None) => {
                s.set("priority", T::Integer(255), &loc);
                "state MASTER without a priority: keepalived runs it as the address owner \
                 (priority 255), and so does vrrp-agent"
                    .to_string()
            }
            (_, p) => format!(
                "state {st}: a start hint only, not used: the election decides (priority {})",
                p.unwrap_or(100)
            ),
        };
        warnings.push(diag(&loc, text));
    }
    Ok(s)
}

fn sync_group(n: &Node, warnings: &mut Vec<Diag>) -> Result<Section, Diag> {
    let (name, block) = block_name(n)?;
    let mut s = Section::new(format!("vrrp_sync_group {name}"), &n.loc);
    s.set("name", T::String(name.into()), &n.loc);
    let mut has_group = false;
    for c in block {
        match c.keyword.as_str() {
            "group" => {
                has_group = true;
                for a in c.block.as_deref().unwrap_or_default() {
                    for w in std::iter::once(a.keyword.as_str()).chain(a.arg_texts()) {
                        s.push("instances", T::String(w.into()), &a.loc);
                    }
                }
            }
            k if NOTIFY.contains(&k) => notify(c, &mut s, warnings)?,
            _ => warnings.push(diag(&c.loc, unsupported(c))),
        }
    }
    if !has_group {
        return Err(diag(
            &n.loc,
            format!("vrrp_sync_group {name}: `group {{ INSTANCE... }}` is missing"),
        ));
    }
    Ok(s)
}
