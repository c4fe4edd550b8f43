//! Notify commands ([`NotifySpec`]) and sync groups (`[[sync_group]]`:
//! [`SyncGroupInput::build`] → [`SyncGroupSpec`]), and the rules across the whole model
//! ([`check_model`]: tracked checks exist, group members exist, one group per instance).
use super::{
    check::{one_word, parse_command},
    keys::SyncGroupInput,
    track::TrackTarget,
    value::{ferr, FieldError},
    CheckSpec, InstanceSpec,
};

/// The notify commands of an instance or a sync group, each a command line (an absolute
/// program path, then arguments split on whitespace; no shell). `notify` runs at every state
/// change (with `INSTANCE|GROUP <name> <STATE> <priority>` appended, as keepalived calls it);
/// the others on entering their state (`stop`: when the agent stops the instance).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySpec {
    pub notify: Option<String>,
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
}

impl NotifySpec {
    /// From the five keys' values (`notify`, `notify_master`, ... in that order), each checked.
    pub fn from_keys(values: [&Option<String>; 5]) -> Result<NotifySpec, FieldError> {
        const KEYS: [&str; 5] = [
            "notify",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
        ];
        let mut out: [Option<String>; 5] = Default::default();
        for (i, v) in values.iter().enumerate() {
            if let Some(s) = v {
                out[i] = Some(parse_command(KEYS[i], s)?);
            }
        }
        let [notify, master, backup, fault, stop] = out;
        Ok(NotifySpec {
            notify,
            master,
            backup,
            fault,
            stop,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == NotifySpec::default()
    }

    /// `notify=... notify_master=...` for `check-config` (empty when none).
    pub fn describe(&self) -> String {
        [
            ("notify", &self.notify),
            ("notify_master", &self.master),
            ("notify_backup", &self.backup),
            ("notify_fault", &self.fault),
            ("notify_stop", &self.stop),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v:?}")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// One validated sync group: its member instances move together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupSpec {
    pub name: String,
    /// Instance names, in the order written.
    pub instances: Vec<String>,
    pub notify: NotifySpec,
}

impl SyncGroupSpec {
    /// One line for `check-config`.
    pub fn describe(&self) -> String {
        let n = self.notify.describe();
        format!(
            "sync_group {}: instances={}{}{}",
            self.name,
            self.instances.join(","),
            if n.is_empty() { "" } else { " " },
            n
        )
    }
}

impl SyncGroupInput {
    /// Validates (members are checked against the instances by [`check_model`]).
    pub fn build(&self) -> Result<SyncGroupSpec, FieldError> {
        let name = one_word("name", "group", &self.name)?;
        if self.instances.is_empty() {
            return Err(ferr(
                "instances",
                "missing: the names of the instances that move together",
            ));
        }
        for (i, n) in self.instances.iter().enumerate() {
            if self.instances[..i].contains(n) {
                return Err(ferr(
                    format!("instances[{i}]"),
                    format!("{n:?} is listed twice"),
                ));
            }
        }
        let notify = NotifySpec::from_keys([
            &self.notify,
            &self.notify_master,
            &self.notify_backup,
            &self.notify_fault,
            &self.notify_stop,
        ])?;
        Ok(SyncGroupSpec {
            name,
            instances: self.instances.clone(),
            notify,
        })
    }
}

/// Which table a [`check_model`] error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Instance,
    Check,
    SyncGroup,
}

impl Table {
    /// `instance`, `check`, `sync_group` (as written in TOML).
    pub fn name(self) -> &'static str {
        match self {
            Table::Instance => "instance",
            Table::Check => "check",
            Table::SyncGroup => "sync_group",
        }
    }
}

/// The rules across tables: check names unique; a tracked check exists (the error names close
/// ones); a target tracked once per instance; group names unique, members exist, an instance in
/// at most one group. The error: the table, the index in it, and the field.
pub fn check_model(
    instances: &[InstanceSpec],
    checks: &[CheckSpec],
    groups: &[SyncGroupSpec],
) -> Result<(), (Table, usize, FieldError)> {
    for (i, c) in checks.iter().enumerate() {
        if checks[..i].iter().any(|d| d.name == c.name) {
            return Err((
                Table::Check,
                i,
                ferr("name", format!("{:?} is used twice", c.name)),
            ));
        }
    }
    for (i, inst) in instances.iter().enumerate() {
        for (t, tr) in inst.track.iter().enumerate() {
            if inst.track[..t].iter().any(|u| u.target == tr.target) {
                return Err((
                    Table::Instance,
                    i,
                    ferr(
                        format!("track[{t}]"),
                        format!("{} is tracked twice", tr.target),
                    ),
                ));
            }
            if let TrackTarget::Check(name) = &tr.target {
                if !checks.iter().any(|c| &c.name == name) {
                    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
                    let msg = if names.is_empty() {
                        format!("no [[check]] is named {name:?} (there are none)")
                    } else {
                        let u = super::keys::unknown(name, names);
                        // "unknown field `x` (did you mean `y`?)" → about a check.
                        let hint = u
                            .split_once(" (")
                            .map(|(_, h)| format!(" ({h}"))
                            .or_else(|| {
                                u.split_once(", expected ")
                                    .map(|(_, l)| format!(", the checks are {l}"))
                            })
                            .unwrap_or_default();
                        format!("no [[check]] is named {name:?}{hint}")
                    };
                    return Err((Table::Instance, i, ferr(format!("track[{t}].check"), msg)));
                }
            }
        }
    }
    for (g, grp) in groups.iter().enumerate() {
        if groups[..g].iter().any(|h| h.name == grp.name) {
            return Err((
                Table::SyncGroup,
                g,
                ferr("name", format!("{:?} is used twice", grp.name)),
            ));
        }
        for (m, name) in grp.instances.iter().enumerate() {
            let key = format!("instances[{m}]");
            if !instances.iter().any(|i| &i.name == name) {
                let names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
                return Err((
                    Table::SyncGroup,
                    g,
                    ferr(
                        key,
                        format!(
                            "no instance is named {name:?} (the instances are {})",
                            names.join(", ")
                        ),
                    ),
                ));
            }
            if let Some(h) = groups[..g].iter().find(|h| h.instances.contains(name)) {
                return Err((
                    Table::SyncGroup,
                    g,
                    ferr(
                        key,
                        format!(
                            "instance {name} is already in sync group {} (an instance is in at \
                             most one group)",
                            h.name
                        ),
                    ),
                ));
            }
        }
    }
    Ok(())
}
