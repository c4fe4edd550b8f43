//! Health checks (`[[check]]`): [`CheckInput::build`] → [`CheckSpec`], every rule and default.
//! The agent's checks edge runs them and feeds each probe's outcome to the Core, which counts
//! rise and fall.
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use super::{
    keys::{check_key, CheckInput},
    value::{checked_int, ferr, parse_ip, FieldError},
};

/// Default `interval`.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default HTTP(S) `status`: 200-399.
pub const DEFAULT_STATUS: (u16, u16) = (200, 399);

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A program (`command`: an absolute path, then arguments split on whitespace; no shell):
    /// exit status 0 is up.
    Script {
        command: String,
        user: Option<String>,
    },
    /// An ICMP echo to `target`.
    Icmp { target: IpAddr },
    /// A TCP connect to `target`.
    Tcp { target: SocketAddr },
    /// An HTTP(S) GET of `url` (`tls`: https): up when the status is in one of the inclusive
    /// `status` ranges and the body contains `body_contains`.
    Http {
        url: String,
        tls: bool,
        status: Vec<(u16, u16)>,
        body_contains: Option<String>,
        /// Host header and TLS server name, instead of the URL's host.
        host: Option<String>,
        tls_verify: bool,
    },
}

impl CheckKind {
    /// `script`, `icmp`, `tcp`, `http`, `https`.
    pub fn key(&self) -> &'static str {
        match self {
            CheckKind::Script { .. } => "script",
            CheckKind::Icmp { .. } => "icmp",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { tls: false, .. } => "http",
            CheckKind::Http { tls: true, .. } => "https",
        }
    }
}

/// One validated health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    /// At most `interval`.
    pub timeout: Duration,
    /// Consecutive successes to become up (a check starts down), at least 1.
    pub rise: u32,
    /// Consecutive failures to become down, at least 1.
    pub fall: u32,
}

impl CheckSpec {
    /// One line for `check-config`.
    pub fn describe(&self) -> String {
        let what = match &self.kind {
            CheckKind::Script { command, user } => format!(
                "script={command:?}{}",
                user.as_ref()
                    .map(|u| format!(" user={u}"))
                    .unwrap_or_default()
            ),
            CheckKind::Icmp { target } => format!("icmp={target}"),
            CheckKind::Tcp { target } => format!("tcp={target}"),
            CheckKind::Http {
                url,
                tls,
                status,
                body_contains,
                host,
                tls_verify,
            } => {
                let mut s = format!(
                    "{}={url} status={}",
                    if *tls { "https" } else { "http" },
                    status
                        .iter()
                        .map(|(a, b)| if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                );
                if let Some(b) = body_contains {
                    s.push_str(&format!(" body_contains={b:?}"));
                }
                if let Some(h) = host {
                    s.push_str(&format!(" host={h}"));
                }
                if *tls {
                    s.push_str(&format!(" tls_verify={tls_verify}"));
                }
                s
            }
        };
        format!(
            "check {}: {what} interval={}s timeout={}s rise={} fall={}",
            self.name,
            self.interval.as_secs_f64(),
            self.timeout.as_secs_f64(),
            self.rise,
            self.fall
        )
    }
}

/// A command line (`script`, `notify*`): an absolute program path, then arguments.
pub fn parse_command(key: &str, s: &str) -> Result<String, FieldError> {
    let Some(program) = s.split_whitespace().next() else {
        return Err(ferr(key, "empty: give the program's absolute path"));
    };
    if !program.starts_with('/') {
        return Err(ferr(
            key,
            format!(
                "{program:?} is not an absolute path (commands run without a shell or PATH: \
                 write /usr/local/bin/{program}, say)"
            ),
        ));
    }
    Ok(s.trim().to_string())
}

/// A one-word name (`name` of a check or group).
pub(crate) fn one_word(key: &str, what: &str, n: &Option<String>) -> Result<String, FieldError> {
    match n {
        None => Err(ferr(key, format!("missing (the {what}'s name)"))),
        Some(n) if n.is_empty() || n.chars().any(|c| c.is_whitespace()) => Err(ferr(
            key,
            format!("{n:?}: a name is one word without spaces"),
        )),
        Some(n) => Ok(n.clone()),
    }
}

fn secs(key: &str, v: f64, min: f64, max: f64) -> Result<Duration, FieldError> {
    if !v.is_finite() || v < min || v > max {
        return Err(ferr(key, format!("{v} s is out of range {min}-{max} s")));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `200`, `"200-399"`.
fn parse_status(key: &str, s: &str) -> Result<(u16, u16), FieldError> {
    let bad = || {
        ferr(
            key,
            format!("{s:?} is not a status code (100-599) or a range FROM-TO of them"),
        )
    };
    let code = |t: &str| match t.trim().parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(c),
        _ => Err(bad()),
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (code(a)?, code(b)?),
        None => {
            let c = code(s)?;
            (c, c)
        }
    };
    if a > b {
        return Err(ferr(key, format!("{s:?}: the range is empty ({a} > {b})")));
    }
    Ok((a, b))
}

impl CheckInput {
    /// Validates and fills in defaults.
    pub fn build(&self) -> Result<CheckSpec, FieldError> {
        let name = one_word("name", "check", &self.name)?;
        let given: Vec<&str> = [
            ("script", self.script.is_some()),
            ("icmp", self.icmp.is_some()),
            ("tcp", self.tcp.is_some()),
            ("http", self.http.is_some()),
            ("https", self.https.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
        let what = match given.as_slice() {
            [] => {
                return Err(ferr(
                    "",
                    "no probe: give exactly one of script, icmp, tcp, http, https",
                ))
            }
            [one] => *one,
            [_, second, ..] => {
                return Err(ferr(
                    *second,
                    format!(
                        "one probe per check: {} are given (write one [[check]] each)",
                        given.join(" and ")
                    ),
                ))
            }
        };
        let http = what == "http" || what == "https";
        for (k, set) in [
            ("status", !self.status.is_empty()),
            ("body_contains", self.body_contains.is_some()),
            ("host", self.host.is_some()),
            ("tls_verify", self.tls_verify.is_some()),
        ] {
            if set && !http {
                return Err(ferr(k, format!("is for http/https checks, not {what}")));
            }
        }
        if self.tls_verify.is_some() && what == "http" {
            return Err(ferr("tls_verify", "is for https checks, not http"));
        }
        if self.user.is_some() && what != "script" {
            return Err(ferr("user", format!("is for script checks, not {what}")));
        }
        let kind = match what {
            "script" => {
                let command = parse_command("script", self.script.as_deref().unwrap_or(""))?;
                if let Some(u) = &self.user {
                    if u.is_empty() || u.chars().any(|c| c.is_whitespace() || c == ':') {
                        return Err(ferr("user", format!("{u:?} is not a user name")));
                    }
                }
                CheckKind::Script {
                    command,
                    user: self.user.clone(),
                }
            }
            "icmp" => CheckKind::Icmp {
                target: parse_ip("icmp", self.icmp.as_deref().unwrap_or(""))?,
            },
            "tcp" => {
                let t = self.tcp.as_deref().unwrap_or("");
                let target: SocketAddr = t.trim().parse().map_err(|_| {
                    ferr("tcp", format!("{t:?} is not ADDR:PORT (IPv6: [ADDR]:PORT)"))
                })?;
                if target.port() == 0 {
                    return Err(ferr("tcp", format!("{t:?}: port 0")));
                }
                CheckKind::Tcp { target }
            }
            _ => {
                let tls = what == "https";
                let url = if tls { &self.https } else { &self.http }
                    .clone()
                    .unwrap_or_default();
                let scheme = if tls { "https://" } else { "http://" };
                let rest = url.strip_prefix(scheme).unwrap_or("");
                if rest.is_empty() || rest.starts_with('/') || url.contains(char::is_whitespace) {
                    return Err(ferr(
                        what,
                        format!("{url:?} is not a {scheme}HOST[:PORT]/PATH URL"),
                    ));
                }
                let status = if self.status.is_empty() {
                    vec![DEFAULT_STATUS]
                } else {
                    self.status
                        .iter()
                        .enumerate()
                        .map(|(i, s)| parse_status(&format!("status[{i}]"), s))
                        .collect::<Result<Vec<_>, _>>()?
                };
                if let Some(h) = &self.host {
                    if h.is_empty() || h.contains(char::is_whitespace) {
                        return Err(ferr("host", format!("{h:?} is not a host name")));
                    }
                }
                CheckKind::Http {
                    url,
                    tls,
                    status,
                    body_contains: self.body_contains.clone(),
                    host: self.host.clone(),
                    tls_verify: self.tls_verify.unwrap_or(true),
                }
            }
        };
        let interval = match self.interval {
            Some(v) => secs("interval", v, 0.01, 86_400.0)?,
            None => DEFAULT_CHECK_INTERVAL,
        };
        let timeout = match self.timeout {
            Some(v) => {
                let t = secs("timeout", v, 0.001, 86_400.0)?;
                if t > interval {
                    return Err(ferr(
                        "timeout",
                        format!(
                            "{v} s is longer than the interval ({} s): a probe must end before \
                             the next one starts",
                            interval.as_secs_f64()
                        ),
                    ));
                }
                t
            }
            None => interval,
        };
        let rise = match self.rise {
            Some(v) => checked_int(check_key("rise"), v)? as u32,
            None => 1,
        };
        let fall = match self.fall {
            Some(v) => checked_int(check_key("fall"), v)? as u32,
            None => 1,
        };
        Ok(CheckSpec {
            name,
            kind,
            interval,
            timeout,
            rise,
            fall,
        })
    }
}
