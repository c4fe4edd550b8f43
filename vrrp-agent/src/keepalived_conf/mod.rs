//! The keepalived.conf front-end of the configuration model, written from keepalived's
//! documented format and behaviour (keepalived is GPL; none of its code or text is here).
//!
//! - [`parse`]: the syntax: words, `{ }` blocks, quoted strings, `#`/`!` comments, `include`
//!   with globs (relative to the including file, at most [`parse::MAX_INCLUDE_DEPTH`] deep,
//!   cycles refused); every statement carries its `file:line`.
//! - [`map`]: keepalived keywords onto the model's keys: the TOML names of `[global]`,
//!   `[[check]]`, `[[instance]]` and `[[sync_group]]`. A keyword vrrp-agent does not support is
//!   one warning `file:line: keyword: not supported (ignored)`; `virtual_server` blocks (the
//!   LVS side) one warning each.
//!
//! The result is TOML with the model's key names ([`Imported::to_toml`], what
//! `vrrp-agent import-keepalived` prints), and [`Imported::build`] builds the model from that
//! very text with the TOML front-end ([`crate::config::parse_str`]), so a keepalived.conf runs
//! exactly as its printed translation would, with every rule of the model applied once. An
//! error of the model is reported at the keepalived line the key came from.
//!
//! Decisions where keepalived and vrrp-agent differ:
//! - `state` is a start hint in keepalived; here the election decides (a warning says so). As
//!   in keepalived, `state MASTER` without a `priority` is the address owner (255).
//! - keepalived's default VRRP version is 2 (`vrrp_version` in `global_defs` or `version` in the
//!   instance change it); IPv6 instances are version 3. The import writes `version` always.
//! - `virtual_ipaddress ... dev IF` with IF other than the instance's interface is an error:
//!   vrrp-agent adds a VIP on the interface it answers on; silently moving it would be wrong.
//!   `label`, `brd` and a `scope` other than global are warned and ignored.
//! - `auth_pass` longer than 8 bytes is cut to 8 (what keepalived sends); `auth_type AH` is an
//!   error; authentication with VRRPv3 is ignored with a warning, as keepalived does.
//! - `vrrp_strict` becomes `accept_mode = false` where an instance has no `accept`.
//! - A `vrrp_script` no instance tracks is left out (keepalived does not run it either).
//! - `script_user` is the `user` of every check that names none; `enable_script_security` is
//!   what vrrp-agent always does.
//! - Scripts and notify commands run without a shell (split on blanks): a command with quotes,
//!   pipes or redirections is warned about.
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use crate::config::{self, AgentConfig};

pub mod map;
pub mod parse;

pub use map::{Model, Section};
pub use parse::{Diag, Loc};

/// A keepalived configuration read and mapped onto the model (not yet validated).
#[derive(Debug, Clone)]
pub struct Imported {
    pub file: PathBuf,
    pub model: Model,
    /// One line each: `file:line: keyword: ...`.
    pub warnings: Vec<Diag>,
}

/// Reads `path` (and its includes) and maps it; an error is one `file:line: ...`.
pub fn import(path: &Path) -> Result<Imported, Diag> {
    let mut warnings = Vec::new();
    let nodes = parse::read(path, &mut warnings)?;
    let model = map::map(&nodes, &mut warnings)?;
    Ok(Imported {
        file: path.to_path_buf(),
        model,
        warnings,
    })
}

/// [`import`] on text already in memory (`path` names it in diagnostics).
pub fn import_str(src: &str, path: &Path) -> Result<Imported, Diag> {
    let mut warnings = Vec::new();
    let nodes = parse::read_str(src, path, &mut warnings)?;
    let model = map::map(&nodes, &mut warnings)?;
    Ok(Imported {
        file: path.to_path_buf(),
        model,
        warnings,
    })
}

/// Reads, maps and builds: what `run --keepalived-conf` runs. The warnings come back too.
pub fn load(path: &Path) -> Result<(AgentConfig, Vec<Diag>), String> {
    let imp = import(path).map_err(|e| e.to_string())?;
    let cfg = imp.build()?;
    Ok((cfg, imp.warnings))
}

/// The TOML tables in the order they are printed, with their TOML name.
fn tables(m: &Model) -> impl Iterator<Item = (&'static str, usize, &Section)> {
    m.global
        .iter()
        .map(|s| ("global", 0, s))
        .chain(m.checks.iter().enumerate().map(|(i, s)| ("check", i, s)))
        .chain(
            m.instances
                .iter()
                .enumerate()
                .map(|(i, s)| ("instance", i, s)),
        )
        .chain(
            m.sync_groups
                .iter()
                .enumerate()
                .map(|(i, s)| ("sync_group", i, s)),
        )
}

/// Text for a TOML comment: control characters (which TOML refuses in comments, and which a
/// keepalived block name or path may hold) written as `\u{..}` escapes.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => c.to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

impl Imported {
    /// The configuration as TOML with the model's key names (each table after a comment
    /// naming the keepalived block and line it came from).
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# vrrp-agent configuration, imported from {} by `vrrp-agent import-keepalived`\n",
            comment(&self.file.display().to_string())
        );
        for n in &self.model.notes {
            let _ = writeln!(out, "# keepalived {}", comment(&n.to_string()));
        }
        for (name, _, s) in tables(&self.model) {
            let _ = writeln!(out, "\n# {}", comment(&format!("{} ({})", s.title, s.loc)));
            if name == "global" {
                let _ = writeln!(out, "[global]");
            } else {
                let _ = writeln!(out, "[[{name}]]");
            }
            for e in &s.entries {
                let _ = writeln!(out, "{} = {}", e.key, e.value);
            }
        }
        out
    }

    /// Where the key of a model error (`instance[0].priority`, `check[1].interval`,
    /// `instance[0].track[2].weight`) was written: the keepalived line and block.
    pub fn origin(&self, key: &str) -> Option<(&Loc, &str)> {
        let (head, rest) = key.split_once('.').unwrap_or((key, ""));
        let (table, index) = match head.split_once('[') {
            Some((t, i)) => (t, i.trim_end_matches(']').parse::<usize>().ok()?),
            None => (head, 0),
        };
        let (_, _, s) = tables(&self.model).find(|(n, i, _)| *n == table && *i == index)?;
        let field = rest.split('.').next().unwrap_or("");
        let (name, elem) = match field.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (field, None),
        };
        let loc = s
            .entries
            .iter()
            .find(|e| e.key == name)
            .map(|e| elem.and_then(|i| e.elem_locs.get(i)).unwrap_or(&e.loc))
            .unwrap_or(&s.loc);
        Some((loc, s.title.as_str()))
    }

    /// Builds the model from [`Self::to_toml`] with the TOML front-end; an error names the
    /// keepalived line: `k.conf:12: vrrp_instance VI_1: priority: 300 is out of range 1-255`.
    pub fn build(&self) -> Result<AgentConfig, String> {
        let text = self.to_toml();
        config::parse_str(&text, &self.file).map_err(|e| match self.origin(&e.key) {
            Some((loc, title)) => {
                let field = e.key.split_once('.').map(|(_, f)| f).unwrap_or("");
                if field.is_empty() {
                    format!("{loc}: {title}: {}", e.msg)
                } else {
                    format!("{loc}: {title}: {field}: {}", e.msg)
                }
            }
            None => format!("{}: {}", self.file.display(), e.msg),
        })
    }
}
