//! Notify scripts end to end (issue 9): an agent on r1 run from a configuration file with
//! `notify`, `notify_master`, `notify_backup` and `notify_stop` commands; a recording script
//! appends its arguments and the `VRRP_*` environment to a file. r2 (a higher priority) takes
//! over; SIGTERM stops r1.
//!
//! What is asserted: the calls of an instance run one at a time, in the order of the state
//! changes (MASTER, then BACKUP, then STOP), the state's own command before `notify`, also when
//! the changes come faster than the (sleeping) script finishes; a hanging script is killed with
//! its children at the timeout and the next call still runs; the agent waits for the STOP calls
//! before it exits.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use vrrp_integration_tests::{
    lab::{tail, Lab, LabAgent, Vr, VrKind, BACKUP, IFACE, MASTER, PREFIX4, VIP4},
    wait_until, Proc,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const VRID: u8 = 51;
const T: Duration = Duration::from_secs(10);
/// The agent's timeout of one notify call (`notify_script::NOTIFY_TIMEOUT`).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// The recording script: `rec.sh SLEEP [ARGS...]` appends `start SEQ ARGS | ENV...`, sleeps,
/// then appends `end SEQ ARGS`.
fn write_rec(dir: &Path, log: &Path) -> PathBuf {
    let p = dir.join("rec.sh");
    let body = format!(
        "#!/bin/sh\nd=$1; shift\n\
         echo \"start $VRRP_SEQ $* | $VRRP_INSTANCE $VRRP_STATE $VRRP_PREVIOUS_STATE \
         $VRRP_REASON $VRRP_PRIORITY $VRRP_IFACE $VRRP_VRID\" >> {log}\n\
         sleep $d\n\
         echo \"end $VRRP_SEQ $*\" >> {log}\n",
        log = log.display()
    );
    write_exec(&p, &body);
    p
}

fn write_exec(p: &Path, body: &str) {
    std::fs::write(p, body).unwrap();
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Starts `vrrp-agent run --config FILE` on r1 (instance `web`, priority 100, adverts every
/// 0.1 s) with the notify keys `notify_toml`; returns once it attached.
fn start_r1(lab: &Lab, dir: &Path, notify_toml: &str) -> Vr {
    let conf = dir.join("r1.toml");
    std::fs::write(
        &conf,
        format!(
            "[[instance]]\nname = \"web\"\ninterface = \"{IFACE}\"\nvrid = {VRID}\n\
             priority = 100\nadvert_int = 0.1\nvips = [\"{VIP4}/{PREFIX4}\"]\n{notify_toml}"
        ),
    )
    .unwrap();
    let node = lab.r(1);
    let mut cmd = node.ns.cmd(BIN);
    cmd.arg("run")
        .arg("--config")
        .arg(&conf)
        .env("RUST_LOG", "info");
    let mut proc = Proc::spawn(cmd, "vrrp-agent on r1").unwrap();
    proc.wait_for_line(Duration::from_secs(15), |l| {
        l.contains(&format!("XDP attached to {IFACE}"))
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    Vr {
        proc,
        kind: VrKind::Agent,
        instance: "web".into(),
        node: "r1".into(),
    }
}

fn read(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

/// SIGTERM; the exit code must be 0.
#[track_caller]
fn stop(vr: &mut Vr) -> String {
    let code = vr
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = vr.proc.output();
    assert_eq!(code, Some(0), "agent exit code:\n{}", tail(&out, 30));
    out
}

/// The calls in the record: (seq, args, env) of each `start` line, checking that every start is
/// followed by its own end before the next start (one call at a time).
fn calls(lines: &[String]) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    let mut it = lines.iter();
    while let Some(start) = it.next() {
        let rest = start
            .strip_prefix("start ")
            .unwrap_or_else(|| panic!("expected a start line, got {start:?} in {lines:#?}"));
        let (head, env) = rest.split_once(" | ").expect("start line has env");
        let (seq, args) = head.split_once(' ').unwrap_or((head, ""));
        let end = it
            .next()
            .unwrap_or_else(|| panic!("no end after {start:?}: {lines:#?}"));
        assert_eq!(
            end,
            &format!("end {seq} {args}"),
            "a call started before the one before it ended: {lines:#?}"
        );
        out.push((seq.parse().unwrap(), args.to_owned(), env.to_owned()));
    }
    out
}

#[test]
fn master_backup_stop_in_order_with_a_slow_script() {
    let lab = Lab::for_test("ntfy-ord", 2);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let rec = write_rec(dir.path(), &log);
    let rec = rec.display();
    // `notify` sleeps 0.5 s: the first BACKUP call is still running when the instance becomes
    // MASTER (Master_Down_Interval ≈ 0.36 s), and the BACKUP call after the takeover when the
    // agent is stopped.
    let mut r1 = start_r1(
        &lab,
        dir.path(),
        &format!(
            "notify = \"{rec} 0.5\"\nnotify_master = \"{rec} 0 master-hook\"\n\
             notify_stop = \"{rec} 0 stop-hook\"\n"
        ),
    );
    wait(&mut r1, MASTER);
    let mut r2 = LabAgent::new(BIN, VRID, "0.1").start(&lab, 2, 200, false);
    wait(&mut r2, MASTER);
    wait(&mut r1, BACKUP);
    // The STOP change comes while the BACKUP call (0.5 s) has not finished.
    let before_stop = read(&log);
    let out = stop(&mut r1);
    let second_backup_ended = before_stop
        .iter()
        .filter(|l| l.starts_with("end ") && l.ends_with("INSTANCE web BACKUP 100"))
        .count()
        >= 2;
    assert!(
        !second_backup_ended,
        "the BACKUP call had finished before the stop, so nothing overlapped: {before_stop:#?}"
    );
    // The agent waited for the STOP calls: all of them are complete now.
    let lines = read(&log);
    let calls = calls(&lines);
    let args: Vec<&str> = calls.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        args,
        [
            "INSTANCE web BACKUP 100",
            "master-hook",
            "INSTANCE web MASTER 100",
            "INSTANCE web BACKUP 100",
            "stop-hook",
            "INSTANCE web STOP 100",
        ],
        "agent log:\n{}",
        tail(&out, 40)
    );
    let seqs: Vec<u64> = calls.iter().map(|c| c.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "not in seq order: {seqs:?}"
    );
    assert_eq!(
        calls[2].2, "web MASTER BACKUP master_no_response 100 eth0 51",
        "the environment of the MASTER call"
    );
    assert_eq!(calls[3].2.split(' ').nth(2), Some(MASTER), "{:?}", calls[3]);
    assert_eq!(
        calls[5].2.split(' ').nth(3),
        Some("shutdown"),
        "{:?}",
        calls[5]
    );
    stop(&mut r2);
}

#[test]
fn a_hanging_script_is_killed_at_the_timeout_and_the_next_call_runs() {
    let lab = Lab::for_test("ntfy-hang", 1);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let rec = write_rec(dir.path(), &log);
    let pidfile = dir.path().join("sleep.pid");
    let hang = dir.path().join("hang.sh");
    // The hanging call leaves a child of its own (in its process group).
    write_exec(
        &hang,
        &format!(
            "#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n",
            pidfile.display()
        ),
    );
    let mut r1 = start_r1(
        &lab,
        dir.path(),
        &format!(
            "notify_backup = \"{}\"\nnotify = \"{} 0\"\n",
            hang.display(),
            rec.display()
        ),
    );
    wait(&mut r1, MASTER);
    let sleeper: i32 = wait_until("the hanging script's child", T, || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .unwrap();
    // Nothing of the later calls ran while the first one hangs.
    assert!(
        read(&log).is_empty(),
        "a call ran before the hanging one ended: {:?}",
        read(&log)
    );
    // Killed at the timeout, then the queued calls run in order.
    let lines = wait_until(
        "the calls after the hanging one",
        NOTIFY_TIMEOUT + T,
        || {
            let l = read(&log);
            (l.len() >= 4).then_some(l)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", tail(&r1.proc.output(), 30)));
    let args: Vec<String> = calls(&lines).into_iter().map(|c| c.1).collect();
    assert_eq!(
        args,
        ["INSTANCE web BACKUP 100", "INSTANCE web MASTER 100"],
        "{lines:#?}"
    );
    let out = r1.proc.output();
    assert!(
        out.contains("notify_backup") && out.contains("killed its process group"),
        "no timeout line:\n{}",
        tail(&out, 30)
    );
    // Its child died with it (a zombie waiting for init counts as dead).
    let stat = format!("/proc/{sleeper}/stat");
    wait_until(
        "the hanging script's child to die",
        T,
        || match std::fs::read_to_string(&stat) {
            Err(_) => Some(()),
            Ok(s) => s
                .rsplit(')')
                .next()
                .filter(|r| r.trim_start().starts_with('Z'))
                .map(drop),
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    stop(&mut r1);
    let lines = read(&log);
    assert_eq!(calls(&lines).last().unwrap().1, "INSTANCE web STOP 100");
}
