//! A Backup is not woken by every advert of a stable master (CPU floor, issue 11): the XDP
//! program queues a routine advert (the same as the last one) without waking the agent, which
//! reads it at its next wake-up, before any timer is judged. An advert that needs an answer now
//! still wakes it at once.
//!
//! Lab: the agent on r1 (VRID 51) and a master played by the client, which sends priority 254
//! adverts from its own address.
//!
//! First test (r1 priority 250, 1 s adverts, fail-safe bound 60 s so that not even a heartbeat
//! wake-up could come in between, were one scheduled):
//! - While the master is stable, r1 stays BACKUP for many Master_Down_Intervals (the adverts it
//!   was not woken for reset its Master_Down_Timer all the same: drain before the timer), and
//!   its fast path counts the adverts as quiet (`vrrp_quiet`).
//! - The master then falls silent and, half an interval after its last advert, sends priority 0:
//!   r1 must take over within its Skew_Time (23 ms) plus some slack. Were that advert queued
//!   without a wake-up, r1 would only read it at its next Master_Down deadline, at least half an
//!   interval later (its wake-ups then fall just after the master's advert slots).
//!
//! Second test (r1 priority 100, 100 ms adverts, defaults): r1 wakes once per three adverts,
//! counted from its threads' voluntary context switches (no timed assertion).
use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use vrrp_agent::wire::{self, AdvertFrame, Auth, ChecksumOpts, VrrpRepr};
use vrrp_integration_tests::{
    lab::{Lab, LabAgent, BACKUP, IFACE, MASTER, VIP4},
    send_frames,
};

const VRID: u8 = 51;
const PRIORITY: u8 = 250;
const INTERVAL: Duration = Duration::from_secs(1);
const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const T: Duration = Duration::from_secs(10);
/// How long the master stays stable once r1 is BACKUP: about three Master_Down_Intervals.
const STABLE: Duration = Duration::from_secs(9);

/// Voluntary context switches of every thread of process `pid`: each time one of its threads
/// went to sleep, so each wake-up of the agent's loop counts one.
fn sleeps(pid: u32) -> u64 {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task") {
        let status =
            std::fs::read_to_string(task.expect("task").path().join("status")).unwrap_or_default();
        n += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    n
}

fn advert(lab: &Lab, priority: u8) -> Vec<u8> {
    advert_every(lab, priority, 100)
}

fn advert_every(lab: &Lab, priority: u8, centis: u16) -> Vec<u8> {
    let repr = VrrpRepr {
        version: wire::Version::V3,
        vrid: VRID,
        priority,
        max_advert_int: centis,
        auth: Auth::None,
        addrs: vec![IpAddr::V4(VIP4)],
    };
    AdvertFrame::multicast(repr, IpAddr::V4(lab.client.ip4))
        .to_bytes(ChecksumOpts::default())
        .unwrap()
}

/// Skew_Time (RFC 9568 §6.1) of r1 for the master's interval.
fn skew_time() -> Duration {
    INTERVAL * (256 - u32::from(PRIORITY)) / 256
}

#[test]
fn a_backup_reads_routine_adverts_late_and_a_priority_0_at_once() {
    let lab = Lab::for_test("quiet", 1);
    let frame = advert(&lab, 254);
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let last_sent = Mutex::new(None::<Instant>);
    std::thread::scope(|s| {
        // The master: an advert every INTERVAL until told to stop (bounded: 60 adverts).
        let master = s.spawn(|| {
            lab.client.ns.run_in(|| {
                for _ in 0..60 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    send_frames(IFACE, &frame, 1, Duration::ZERO)?;
                    sent.fetch_add(1, Ordering::SeqCst);
                    *last_sent.lock().unwrap() = Some(Instant::now());
                    let next = Instant::now() + INTERVAL;
                    while Instant::now() < next && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Ok(())
            })
        });
        // The master is heard before r1 starts: r1 comes up BACKUP.
        let t0 = Instant::now();
        while sent.load(Ordering::SeqCst) == 0 && t0.elapsed() < T {
            std::thread::sleep(Duration::from_millis(5));
        }
        // 1 s adverts, heartbeat wake-ups every 30 s only.
        let agent = LabAgent {
            extra: &["--failsafe-timeout", "60"],
            ..LabAgent::new(BIN, VRID, "1")
        };
        let mut r1 = agent.start(&lab, 1, PRIORITY, false);
        let run = (|| {
            r1.wait_state(BACKUP, T)?;
            let from = sent.load(Ordering::SeqCst);
            std::thread::sleep(STABLE);
            let stable = sent.load(Ordering::SeqCst) - from;
            anyhow::ensure!(
                r1.transitions() == [BACKUP],
                "r1 left BACKUP under a stable master (transitions {:?})",
                r1.transitions()
            );
            stop.store(true, Ordering::SeqCst);
            Ok(stable)
        })();
        stop.store(true, Ordering::SeqCst);
        master
            .join()
            .expect("master thread")
            .unwrap_or_else(|e| panic!("master: {e:#}"));
        let stable = run.unwrap_or_else(|e| panic!("{e:#}\n{}", r1.proc.output()));

        // Priority 0 half an interval after the master's last advert.
        let last = last_sent.lock().unwrap().expect("the master sent");
        std::thread::sleep((last + INTERVAL / 2).saturating_duration_since(Instant::now()));
        let p0 = advert(&lab, 0);
        let sent_at = Instant::now();
        lab.client
            .ns
            .run_in(|| send_frames(IFACE, &p0, 1, Duration::ZERO))
            .unwrap_or_else(|e| panic!("priority 0: {e:#}"));
        r1.wait_state(MASTER, T)
            .unwrap_or_else(|e| panic!("no takeover after priority 0: {e:#}"));
        // From before the send (entering the client's namespace included): an upper bound.
        let took = sent_at.elapsed();
        let bound = skew_time() + Duration::from_millis(250);
        r1.stop(libc::SIGTERM, T).expect("r1 stops");
        let quiet = r1.counter("vrrp_quiet").unwrap_or(0);
        let to_user = r1.counter("vrrp_to_user").unwrap_or(0);
        eprintln!(
            "stable adverts {stable}, to user {to_user}, quiet {quiet}; takeover {took:?} after \
             priority 0 (bound {bound:?})"
        );
        assert!(
            took <= bound,
            "r1 took over {took:?} after the master's priority 0, more than its Skew_Time \
             {:?} + 250 ms: the advert did not wake it\n{}",
            skew_time(),
            r1.proc.output()
        );
        // Every advert of the stable phase but the first on each CPU was routine.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        assert!(
            quiet + cpus >= stable && quiet < to_user,
            "{quiet} quiet adverts of {to_user} handed up ({stable} in the stable phase, {cpus} \
             CPUs)\n{}",
            r1.proc.output()
        );
    });
}

/// With the default fail-safe bound and 100 ms adverts, a Backup under a stable master wakes
/// about once per Master_Down_Interval (every third advert here): not for every advert, and not
/// for the fail-safe heartbeat either (it owns no router). Counted, not timed: the wake-ups of
/// the agent's threads (voluntary context switches) over 40 adverts.
#[test]
fn a_backup_wakes_about_once_per_master_down_interval() {
    const ADVERTS: u32 = 60;
    let lab = Lab::for_test("quietw", 1);
    let frame = advert_every(&lab, 254, 10);
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        let master = s.spawn(|| {
            lab.client.ns.run_in(|| {
                // Bounded: the start, a second to settle, ADVERTS measured, and slack.
                for _ in 0..(ADVERTS + 200) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    send_frames(IFACE, &frame, 1, Duration::ZERO)?;
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(())
            })
        });
        let t0 = Instant::now();
        while sent.load(Ordering::SeqCst) == 0 && t0.elapsed() < T {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Priority 100: Skew_Time 61 ms, Master_Down_Interval 361 ms, so each wake-up finds
        // three adverts waiting even when the master's adverts come a little late.
        let mut r1 = LabAgent::new(BIN, VRID, "0.1").start(&lab, 1, 100, false);
        let run = (|| {
            r1.wait_state(BACKUP, T)?;
            std::thread::sleep(Duration::from_secs(1));
            let pid = r1.proc.child.id();
            let (s0, a0) = (sleeps(pid), sent.load(Ordering::SeqCst));
            let t = Instant::now();
            while sent.load(Ordering::SeqCst) < a0 + u64::from(ADVERTS) && t.elapsed() < T {
                std::thread::sleep(Duration::from_millis(10));
            }
            let (s1, a1) = (sleeps(pid), sent.load(Ordering::SeqCst));
            anyhow::ensure!(
                r1.transitions() == [BACKUP],
                "r1 left BACKUP under a stable master (transitions {:?})",
                r1.transitions()
            );
            Ok((s1 - s0, a1 - a0))
        })();
        stop.store(true, Ordering::SeqCst);
        master
            .join()
            .expect("master thread")
            .unwrap_or_else(|e| panic!("master: {e:#}"));
        let (wakes, adverts) = run.unwrap_or_else(|e| panic!("{e:#}\n{}", r1.proc.output()));
        eprintln!("{wakes} wake-ups of the agent for {adverts} adverts of a stable master");
        // Once per Master_Down_Interval is a third of the adverts (20 of 60 here); woken by
        // every advert it was 60, and with the heartbeat's wake-ups (every 180 ms) 36.
        assert!(
            wakes * 2 <= adverts,
            "{wakes} wake-ups for {adverts} adverts\n{}",
            r1.proc.output()
        );
    });
}
