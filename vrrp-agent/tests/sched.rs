//! The real-time policy (`vrrp_agent::sched`) in child processes of this test binary, so that
//! the test harness itself never runs at real-time priority. Needs root, as every agent test.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use vrrp_agent::sched;

/// Runs the ignored test `name` of this binary in a child with `VRRP_SCHED_CHILD` set; returns
/// its exit code and stderr (bounded: killed after 20 s).
fn child(name: &str) -> (Option<i32>, String) {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("VRRP_SCHED_CHILD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            break c.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

fn in_child() -> bool {
    std::env::var_os("VRRP_SCHED_CHILD").is_some()
}

#[test]
#[ignore = "run by runaway_thread_is_stopped_with_one_line in a child process"]
fn child_spins_at_real_time_priority() {
    if !in_child() {
        return;
    }
    let o = sched::apply(sched::DEFAULT_REALTIME_PRIORITY).unwrap();
    assert_eq!(o.policy, Ok(sched::DEFAULT_REALTIME_PRIORITY));
    // Spin without blocking, longer than the limit (bounded in case the guard fails).
    let end = Instant::now() + 4 * sched::RTTIME_LIMIT;
    let mut x = 0u64;
    while Instant::now() < end {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    eprintln!("still running after {:?}", 4 * sched::RTTIME_LIMIT);
}

#[test]
fn runaway_thread_is_stopped_with_one_line() {
    let (code, err) = child("child_spins_at_real_time_priority");
    assert_eq!(code, Some(70), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(
        lines[0].contains("ran 500 ms at real-time priority without blocking"),
        "{err}"
    );
}

#[test]
#[ignore = "run by policy_threads_and_memory_lock in a child process"]
fn child_applies_and_reports() {
    if !in_child() {
        return;
    }
    let o = sched::apply(20).unwrap();
    let t = std::thread::spawn(|| {
        // SAFETY: plain queries of the calling thread.
        unsafe {
            let mut p = libc::sched_param { sched_priority: 0 };
            libc::sched_getparam(0, &mut p);
            (libc::sched_getscheduler(0), p.sched_priority)
        }
    })
    .join()
    .unwrap();
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut rl) };
    let locked = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .unwrap()
        .to_owned();
    eprintln!(
        "outcome={o:?} thread={t:?} rttime={}/{} {locked}",
        rl.rlim_cur, rl.rlim_max
    );
}

#[test]
fn policy_threads_and_memory_lock() {
    let (code, err) = child("child_applies_and_reports");
    assert_eq!(code, Some(0), "stderr: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("outcome="))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("policy: Ok(20)"), "{line}");
    assert!(line.contains("locked: Ok(())"), "{line}");
    // A thread created afterwards inherits SCHED_RR 20.
    assert!(
        line.contains(&format!("thread=({}, 20)", libc::SCHED_RR)),
        "{line}"
    );
    assert!(line.contains("rttime=500000/1000000"), "{line}");
    let kb: u64 = line
        .rsplit("VmLck:")
        .next()
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert!(kb > 0, "memory not locked: {line}");
}

#[test]
#[ignore = "run by without_permission_the_reason_names_what_is_missing in a child process"]
fn child_without_privileges() {
    if !in_child() {
        return;
    }
    // Drop root (and with it every capability) for good, then ask.
    // SAFETY: plain syscalls on this process.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let o = sched::apply(sched::DEFAULT_REALTIME_PRIORITY);
    eprintln!("outcome={o:?}");
    // SAFETY: plain query.
    assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
}

#[test]
fn without_permission_the_reason_names_what_is_missing() {
    let (code, err) = child("child_without_privileges");
    assert_eq!(code, Some(0), "stderr: {err}");
    let line = err.lines().find(|l| l.starts_with("outcome=")).unwrap();
    assert!(
        line.contains("grant CAP_SYS_NICE, or allow it with RLIMIT_RTPRIO >= 10"),
        "{line}"
    );
}
