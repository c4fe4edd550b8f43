//! The agent's log output (`--log-format text|json`), on env_logger (`RUST_LOG` still filters).
//!
//! - `text` (default): env_logger's own format, unchanged (`[TS LEVEL target] msg`; tests
//!   and operators read these lines). Under systemd (stderr is the journal: `JOURNAL_STREAM`
//!   names it), each line starts with its syslog priority `<N>` (the sd-daemon convention
//!   journald understands) and carries no timestamp (journald adds its own): `<6>[INFO  target] msg`.
//! - `json`: one object per line, `{"ts","level","target","msg"}`; a state-change line also
//!   carries `instance`, `from`, `to`, `reason` (or `group`, `from`, `to`). No `<N>` prefix:
//!   every line is plain JSON for a log shipper.
use std::io::Write;

use log::Level;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The syslog priority of a level (sd-daemon.h `SD_ERR` .. `SD_DEBUG`).
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// True when stderr is the journal stream systemd gave us: `JOURNAL_STREAM` is `DEV:INODE` of
/// that stream (sd_journal_stream_fd(3)); a child whose stderr was redirected elsewhere but
/// inherited the variable does not match.
pub fn stderr_is_journal() -> bool {
    use std::os::{fd::AsFd, unix::fs::MetadataExt};
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
    else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The JSON object of one record (without the newline), keys in the order `ts`, `level`,
/// `target`, `msg`, then the state-change fields.
pub fn json_line(ts: &str, level: Level, target: &str, msg: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut line = format!(
        "{{\"ts\":{},\"level\":{},\"target\":{},\"msg\":{}",
        q(ts),
        q(level.as_str()),
        q(target),
        q(msg)
    );
    for (k, v) in state_fields(msg) {
        line += &format!(",{}:{}", q(k), q(&v));
    }
    line.push('}');
    line
}

/// The fields of a state-change line (`instance NAME: state FROM -> TO (REASON)`, `sync group
/// NAME: state FROM -> TO`), the texts notify_log renders.
fn state_fields(msg: &str) -> Vec<(&'static str, String)> {
    let (who, key) = if let Some(r) = msg.strip_prefix("instance ") {
        (r, "instance")
    } else if let Some(r) = msg.strip_prefix("sync group ") {
        (r, "group")
    } else {
        return vec![];
    };
    let Some((name, rest)) = who.split_once(": state ") else {
        return vec![];
    };
    let Some((from, rest)) = rest.split_once(" -> ") else {
        return vec![];
    };
    let (to, reason) = match rest.split_once(" (") {
        Some((to, r)) => (to, r.strip_suffix(')')),
        None => (rest, None),
    };
    if to.contains(' ') || from.contains(' ') {
        return vec![];
    }
    let mut v = vec![
        (key, name.to_string()),
        ("from", from.to_string()),
        ("to", to.to_string()),
    ];
    if let Some(r) = reason {
        v.push(("reason", r.to_string()));
    }
    v
}

/// Installs the logger (default filter `info`, `RUST_LOG` overrides).
pub fn init(format: LogFormat) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Json => {
            b.format(|buf, r| {
                let ts = buf.timestamp_micros().to_string();
                let line = json_line(&ts, r.level(), r.target(), &r.args().to_string());
                writeln!(buf, "{line}")
            });
        }
        LogFormat::Text if stderr_is_journal() => {
            b.format(|buf, r| {
                writeln!(
                    buf,
                    "<{}>[{:<5} {}] {}",
                    syslog_priority(r.level()),
                    r.level(),
                    r.target(),
                    r.args()
                )
            });
        }
        LogFormat::Text => {}
    }
    b.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_the_state_change_fields() {
        let l = json_line(
            "2026-01-01T00:00:00.000000Z",
            Level::Info,
            "vrrp_agent::notify_log",
            "instance web: state BACKUP -> MASTER (master_down)",
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "vrrp_agent::notify_log");
        assert_eq!(
            v["msg"],
            "instance web: state BACKUP -> MASTER (master_down)"
        );
        assert_eq!(v["instance"], "web");
        assert_eq!(v["from"], "BACKUP");
        assert_eq!(v["to"], "MASTER");
        assert_eq!(v["reason"], "master_down");
        let g: serde_json::Value = serde_json::from_str(&json_line(
            "t",
            Level::Warn,
            "x",
            "sync group g: state MASTER -> FAULT",
        ))
        .unwrap();
        assert_eq!((&g["group"], &g["to"]), (&"g".into(), &"FAULT".into()));
        assert!(g.get("reason").is_none());
        // Anything else: the four fields only; quotes and newlines stay inside the string.
        let o: serde_json::Value =
            serde_json::from_str(&json_line("t", Level::Error, "x", "a \"b\"\nc")).unwrap();
        assert_eq!(o.as_object().unwrap().len(), 4);
        assert_eq!(o["msg"], "a \"b\"\nc");
        assert!(!json_line("t", Level::Error, "x", "a\nb").contains('\n'));
    }

    #[test]
    fn syslog_priorities_follow_sd_daemon() {
        assert_eq!(
            [
                Level::Error,
                Level::Warn,
                Level::Info,
                Level::Debug,
                Level::Trace
            ]
            .map(syslog_priority),
            [3, 4, 6, 7, 7]
        );
    }
}
