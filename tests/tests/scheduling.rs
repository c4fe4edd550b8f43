//! The agent runs at real-time priority by default (`vrrp_agent::sched`): every thread of a
//! running agent is SCHED_RR at the configured priority, its memory is locked, and
//! `--realtime-priority 0` leaves it at normal scheduling (why: `cargo xtask bench starvation`);
//! and a backup that does not run for a while does not take over from a healthy master.
use std::{fs, time::Duration};

use vrrp_integration_tests::lab::{Lab, LabAgent, Vr, BACKUP, MASTER};

/// The agent on r1 (and r2): VRID 51, the lab's IPv4 VIP, adverts every 100 ms.
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), 51, "0.1");

/// (policy, rt_priority) of every thread of `pid`, from /proc/PID/task/*/stat.
fn thread_policies(pid: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for t in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let stat = fs::read_to_string(t.path().join("stat")).unwrap();
        // Fields after "(comm) ": field n (1-based) is f[n - 3]; rt_priority 40, policy 41.
        let rest = stat.rsplit_once(") ").unwrap().1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        out.push((f[38].parse().unwrap(), f[37].parse().unwrap()));
    }
    out
}

fn vm_lck_kb(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

fn start(lab: &Lab, extra: &[&str]) -> Vr {
    let mut vr = LabAgent { extra, ..AGENT }.start(lab, 1, 150, false);
    vr.wait_state(MASTER, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}"));
    vr
}

#[test]
fn agent_threads_run_sched_rr_with_locked_memory_by_default() {
    let lab = Lab::for_test("sched", 1);
    let vr = start(&lab, &[]);
    let pid = vr.proc.child.id();
    let policies = thread_policies(pid);
    assert!(!policies.is_empty());
    assert!(
        policies.iter().all(|&p| p == (libc::SCHED_RR as u32, 10)),
        "every thread SCHED_RR 10: {policies:?}\n{}",
        vr.proc.output()
    );
    assert!(vm_lck_kb(pid) > 0, "memory not locked");
    let out = vr.proc.output();
    assert!(
        out.contains("scheduling: SCHED_RR priority 10, memory locked, RLIMIT_RTTIME 500 ms"),
        "{out}"
    );
}

#[test]
fn realtime_priority_0_leaves_normal_scheduling() {
    let lab = Lab::for_test("sched0", 1);
    let vr = start(&lab, &["--realtime-priority", "0"]);
    let pid = vr.proc.child.id();
    let policies = thread_policies(pid);
    assert!(
        policies.iter().all(|&p| p == (libc::SCHED_OTHER as u32, 0)),
        "{policies:?}"
    );
    assert_eq!(vm_lck_kb(pid), 0);
    assert!(vr
        .proc
        .output()
        .contains("scheduling: normal (realtime_priority = 0)"));
}

/// A backup that does not run at all for far longer than Master_Down_Interval (SIGSTOP) must
/// not take over from a healthy master when it runs again: the adverts it missed carry their
/// kernel receive times (issue 7 item 10: the backup's decision must not depend on its own
/// scheduling lag).
#[test]
fn backup_stopped_longer_than_master_down_interval_does_not_take_over() {
    let lab = Lab::for_test("sched-stop", 2);
    let agent = LabAgent {
        advert_int: "0.01",
        ..AGENT
    };
    let mut r1 = agent.start(&lab, 1, 200, false);
    r1.wait_state(MASTER, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut r2 = agent.start(&lab, 2, 100, false);
    r2.wait_state(BACKUP, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let before = r2.transitions().len();
    for _ in 0..5 {
        // 200 ms stopped: more than five Master_Down_Intervals (36 ms) at 10 ms adverts.
        r2.signal(libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(200));
        r2.signal(libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = r2.transitions();
    assert_eq!(
        after[before..].to_vec(),
        Vec::<String>::new(),
        "the backup changed state after being stopped:\n{}",
        r2.proc.output()
    );
    assert_eq!(r1.state().as_deref(), Some(MASTER));
}
