//! `--log-format` and journald priorities, on the agent binary: `run` logs its scheduling line
//! before it finds that the interface does not exist (in a fresh network namespace, so nothing
//! can touch the machine's interfaces). The default text line is env_logger's format, unchanged.
use std::{os::unix::fs::MetadataExt, process::Command};

/// Runs `vrrp-agent ARGS run --iface nope0 --vrid 5` in a new network namespace with stderr
/// into a file; `journal`: `JOURNAL_STREAM` set to that file (`true`) or to another inode.
fn stderr_of(args: &[&str], journal: Option<bool>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let file = std::fs::File::create(&path).unwrap();
    let m = file.metadata().unwrap();
    let mut c = Command::new("unshare");
    c.arg("--net")
        .arg(env!("CARGO_BIN_EXE_vrrp-agent"))
        .args(args)
        .args(["run", "--iface", "nope0", "--vrid", "5"])
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stderr(file);
    match journal {
        Some(true) => c.env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino())),
        Some(false) => c.env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino() + 1)),
        None => &mut c,
    };
    let st = c.status().expect("unshare (util-linux) runs");
    assert!(!st.success(), "nope0 does not exist");
    std::fs::read_to_string(&path).unwrap()
}

fn sched_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.contains("scheduling:"))
        .unwrap_or_else(|| panic!("no scheduling line in:\n{out}"))
}

#[test]
fn text_is_env_loggers_format_by_default() {
    let out = stderr_of(&[], None);
    let l = sched_line(&out);
    // `[2026-11-30T23:01:07Z INFO  vrrp_agent::sched] scheduling: ...`
    let (ts, rest) = l[1..].split_once(' ').unwrap();
    assert!(
        l.starts_with('[') && ts.len() == 20 && ts.ends_with('Z'),
        "{l}"
    );
    assert!(
        rest.starts_with("INFO  vrrp_agent::sched] scheduling: "),
        "{l}"
    );
    // A JOURNAL_STREAM that is not our stderr changes nothing.
    let l2 = stderr_of(&[], Some(false));
    assert!(sched_line(&l2).starts_with("[20"), "{l2}");
}

#[test]
fn under_journald_lines_carry_syslog_priorities_and_no_timestamp() {
    let out = stderr_of(&[], Some(true));
    let l = sched_line(&out);
    assert!(
        l.starts_with("<6>[INFO  vrrp_agent::sched] scheduling: "),
        "{l}"
    );
}

#[test]
fn json_is_one_object_per_line() {
    for args in [&["--log-format", "json"][..], &["--log-format=json"][..]] {
        let out = stderr_of(args, Some(true));
        let l = sched_line(&out);
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "vrrp_agent::sched");
        assert!(
            v["msg"].as_str().unwrap().starts_with("scheduling: "),
            "{l}"
        );
        assert!(v["ts"].as_str().unwrap().ends_with('Z'), "{l}");
        assert!(l.starts_with("{\"ts\":"), "{l}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
        .args(["--log-format", "xml", "check-config", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("xml") && err.contains("text") && err.contains("json"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
