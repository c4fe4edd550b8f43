//! Process scheduling (I/O edge): the agent runs under a real-time policy so that CPU-bound
//! work on the host cannot delay its adverts or its timers.
//!
//! Under CPU hogs at nice −10 a nice-0 agent waited up to 96 ms for a CPU: its adverts left that
//! late and its backups took over from a healthy master (`cargo xtask bench starvation`). A
//! real-time task runs ahead of every normal task whatever its nice level, so the agent is
//! called as soon as its timerfd or the advert ring wakes it.
//!
//! [`apply`] runs before the tokio runtime is built, so every thread inherits the policy:
//! - `SCHED_RR` at [`DEFAULT_REALTIME_PRIORITY`] (configurable, 0 = off). Round-robin rather
//!   than FIFO: two agents (or keepalived) at the same priority share a CPU instead of one
//!   running until it blocks.
//! - `RLIMIT_RTTIME` as a runaway guard: a thread that runs [`RTTIME_LIMIT`] at real-time
//!   priority without blocking is a bug that would starve the host's normal tasks; it gets
//!   SIGXCPU, logs one line and exits, and the fail-safe and the backups take over.
//! - `mlockall` (`MCL_ONFAULT`: each page once touched), so that no page fault (text paged out
//!   under memory pressure) stalls the event loop; only where the locked memory is not
//!   capped by `RLIMIT_MEMLOCK` (root or CAP_IPC_LOCK, or an unlimited limit), since a capped
//!   `MCL_FUTURE` would make later allocations fail instead.
//!
//! What cannot be set is reported in one line and the agent runs on without it.
use std::io;

/// Default real-time priority (`SCHED_RR`, 1-99). Above every normal task; below the kernel's
/// threaded interrupt handlers (`SCHED_FIFO` 50), which on PREEMPT_RT kernels or with
/// `threadirqs` carry the network receive path that brings the adverts, and far below the
/// kernel's per-CPU watchdog and migration threads (99). keepalived's `vrrp_rt_priority` is
/// the same knob (it has no default there).
pub use vrrp_core::config::DEFAULT_REALTIME_PRIORITY;

/// Highest `SCHED_RR` priority.
pub use vrrp_core::config::MAX_REALTIME_PRIORITY;

/// CPU time a real-time thread may use without blocking before SIGXCPU. The event loop blocks
/// in epoll between events and handles each in microseconds; the longest legitimate burst is
/// loading the XDP program (the verifier runs in the bpf() call, a few ms here), so this only
/// catches a thread that spins.
pub const RTTIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_NICE: u32 = 23;

/// Whether the calling thread has `cap` in its effective set (from /proc/thread-self/status).
fn has_cap(cap: u32) -> bool {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
            u64::from_str_radix(hex, 16).ok()
        })
        .is_some_and(|eff| eff & (1 << cap) != 0)
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<libc::rlimit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    (unsafe { libc::getrlimit(resource, &mut r) } == 0).then_some(r)
}

extern "C" fn on_sigxcpu(_: libc::c_int) {
    const MSG: &[u8] = b"error: a thread of vrrp-agent ran 500 ms at real-time priority without \
blocking (a bug: please report it); exiting so that the fail-safe and the backups take over\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(70);
    }
}

/// What [`apply`] did, for the startup log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The policy in force: `SCHED_RR priority N`, or why not.
    pub policy: Result<u8, String>,
    /// Whether the memory is locked, or why not.
    pub locked: Result<(), String>,
}

/// Puts the calling thread (and so every thread it creates later) under `SCHED_RR` at
/// `priority` (0: leaves the scheduling alone), with the runaway guard and locked memory.
/// Call it before any other thread exists.
pub fn apply(priority: u8) -> Option<Outcome> {
    if priority == 0 {
        return None;
    }
    let policy = set_rr(priority);
    let locked = if policy.is_ok() {
        lock_memory()
    } else {
        Err("not real-time".into())
    };
    Some(Outcome { policy, locked })
}

fn set_rr(priority: u8) -> Result<u8, String> {
    // The guard first: no moment at real-time priority without it. A lower hard limit set by
    // whoever started us is kept (raising it would need CAP_SYS_RESOURCE).
    let us = RTTIME_LIMIT.as_micros() as libc::rlim_t;
    let hard = rlimit(libc::RLIMIT_RTTIME).map_or(2 * us, |r| r.rlim_max.min(2 * us));
    let lim = libc::rlimit {
        rlim_cur: us.min(hard),
        rlim_max: hard,
    };
    // SAFETY: plain syscalls; the handler only calls async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGXCPU,
            on_sigxcpu as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        if libc::setrlimit(libc::RLIMIT_RTTIME, &lim) != 0 {
            return Err(format!(
                "setting RLIMIT_RTTIME: {}",
                io::Error::last_os_error()
            ));
        }
    }
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: valid parameter; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } == 0 {
        return Ok(priority);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EPERM) {
        return Err(format!("sched_setscheduler(SCHED_RR, {priority}): {e}"));
    }
    let rtprio = rlimit(libc::RLIMIT_RTPRIO).map_or(0, |r| r.rlim_cur);
    Err(
        if has_cap(CAP_SYS_NICE) || rtprio >= libc::rlim_t::from(priority) {
            // Allowed by capability or rlimit, refused anyway: the cgroup (CONFIG_RT_GROUP_SCHED)
            // or a container's user namespace.
            "permission denied although CAP_SYS_NICE/RLIMIT_RTPRIO allow it: the cgroup has no \
         real-time budget (give it one with cpu.rt_runtime_us, or run in the root cpu cgroup) or \
         a container's user namespace forbids it"
                .to_owned()
        } else {
            format!(
            "permission denied: grant CAP_SYS_NICE, or allow it with RLIMIT_RTPRIO >= {priority} \
             (systemd: LimitRTPRIO={priority})"
        )
        },
    )
}

fn lock_memory() -> Result<(), String> {
    let unlimited = rlimit(libc::RLIMIT_MEMLOCK).is_some_and(|r| r.rlim_cur == libc::RLIM_INFINITY);
    if !unlimited && !has_cap(CAP_IPC_LOCK) {
        return Err("RLIMIT_MEMLOCK caps it: grant CAP_IPC_LOCK, or set \
                    LimitMEMLOCK=infinity (systemd)"
            .into());
    }
    // MCL_ONFAULT (RSS, issue 11): a page is locked once it is touched, not when it is mapped.
    // Without it the whole binary (10 MB of text, most of it command-line, config and HTTP
    // code the loop never runs), every thread stack and every heap reservation were made
    // resident: 16-19 MB. What the agent has run (start-up, the loop, sending and receiving,
    // a master's claim) stays locked; code not run yet (a backup's first takeover) is read
    // from the page cache on first use (minor faults, microseconds each).
    // SAFETY: plain syscall.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) } != 0 {
        return Err(format!("mlockall: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// The startup log: one INFO line when all is in place, one WARN line naming what is missing.
pub fn log(priority: u8, outcome: &Option<Outcome>) {
    let Some(o) = outcome else {
        log::info!("scheduling: normal (realtime_priority = 0)");
        return;
    };
    match (&o.policy, &o.locked) {
        (Ok(p), Ok(())) => log::info!(
            "scheduling: SCHED_RR priority {p}, memory locked, RLIMIT_RTTIME {} ms",
            RTTIME_LIMIT.as_millis()
        ),
        (Ok(p), Err(why)) => log::warn!(
            "scheduling: SCHED_RR priority {p}, but memory not locked ({why}): a page fault can \
             still delay adverts"
        ),
        (Err(why), _) => log::warn!(
            "scheduling: cannot run at real-time priority {priority} ({why}); running at normal \
             priority, so CPU-bound processes can delay adverts and cause false failovers \
             (realtime_priority = 0 silences this)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_leaves_scheduling_alone() {
        assert_eq!(apply(0), None);
        // SAFETY: plain query of the calling thread.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }
}
