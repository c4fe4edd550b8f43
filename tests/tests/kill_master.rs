//! kill -9 of the master at random points of a takeover and of a handover, with the client's
//! ARP prober counting who answers for the VIP every 5 ms (every owner answers with the same
//! VMAC, so replies per request are counted):
//! - two owners never for longer than one advert interval;
//! - no owner never for longer than Master_Down_Interval plus the fail-safe bound.
//!
//! Takeover: r1 (priority 100) is Master, r2 (200) starts and preempts; r2 is killed at a random
//! point 0..4 ms after it logs `BACKUP -> MASTER` (its claim: VMAC, VIPs, advert, GARPs).
//! Handover: r1 (200) is Master over r2 (100) and stops gracefully (SIGTERM: priority 0, keeps
//! the VIPs until r2's first advert, then releases); r1 is killed at a random point 0..90 ms
//! after the SIGTERM (before, during or after the handover). The random points come from a
//! seed printed first: `KILL_SEED=N` repeats a run.
//!
//! A window of the measure is one probe interval (a run of rounds is timed from its first
//! request to the first request after it). Namespaces are removed on drop, also on failure.
use std::time::{Duration, Instant};

use vrrp_integration_tests::{
    lab::{tail, Lab, LabAgent, Vr, BACKUP, MASTER},
    prober::{realtime_ns, Trace},
};

const ADVERT_MS: u64 = 100;
const PROBE: Duration = Duration::from_millis(5);
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), 55, "0.1");
const T: Duration = Duration::from_secs(10);
const RUNS: usize = 3;

/// Master_Down_Interval (RFC 9568 §6.1) of a backup at `priority` with 100 ms adverts, in ms.
fn mdi_ms(priority: u8) -> f64 {
    3.0 * ADVERT_MS as f64 + (256.0 - f64::from(priority)) * ADVERT_MS as f64 / 256.0
}

fn seed() -> u64 {
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| realtime_ns() % 1_000_000);
    println!("KILL_SEED={seed}");
    seed
}

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

/// Longest runs (ms) of requests with two or more answers and with none, in `[from, to]`.
fn worst(trace: &Trace, from: u64, to: u64) -> (f64, f64, String) {
    let rounds: Vec<(u64, usize)> = trace
        .arp_owners()
        .into_iter()
        .filter(|(t, _)| (from..=to).contains(t))
        .collect();
    let (mut two, mut none) = (0u64, 0u64);
    let mut i = 0;
    while i < rounds.len() {
        let class = rounds[i].1.min(2);
        let mut j = i;
        while j < rounds.len() && rounds[j].1.min(2) == class {
            j += 1;
        }
        let end = rounds.get(j).map_or(rounds[j - 1].0, |r| r.0);
        let len = end - rounds[i].0;
        match class {
            0 => none = none.max(len),
            2 => two = two.max(len),
            _ => {}
        }
        i = j;
    }
    // A compact picture: one character per request (0, 1, 2 = owners).
    let picture: String = rounds
        .iter()
        .map(|(_, n)| char::from(b'0' + (*n).min(9) as u8))
        .collect();
    (two as f64 / 1e6, none as f64 / 1e6, picture)
}

fn check(what: &str, trace: &Trace, from: u64, fail_safe_ms: f64, mdi: f64) {
    let (two, none, picture) = worst(trace, from, trace.end_ns);
    println!("{what}: two owners at most {two:.1} ms, none at most {none:.1} ms\n  {picture}");
    assert!(
        two <= ADVERT_MS as f64,
        "{what}: two owners answered ARP for {two:.1} ms (> one advert interval, {ADVERT_MS} \
         ms); owners per request: {picture}"
    );
    assert!(
        none <= mdi + fail_safe_ms,
        "{what}: nobody answered ARP for {none:.1} ms (> Master_Down_Interval {mdi:.1} + \
         fail-safe bound {fail_safe_ms:.1} ms); owners per request: {picture}"
    );
}

/// Busy-polls (bounded) for `needle` in the agent's log.
fn wait_line(vr: &Vr, needle: &str) {
    let deadline = Instant::now() + T;
    while !vr.proc.output().contains(needle) {
        assert!(Instant::now() < deadline, "no `{needle}` from {}", vr.node);
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn kill_during_takeover() {
    let mut rng = fastrand::Rng::with_seed(seed());
    for run in 0..RUNS {
        let lab = Lab::for_test("kt", 2);
        let mut r1 = AGENT.start(&lab, 1, 100, false);
        wait(&mut r1, MASTER);
        let prober = lab.client_prober(PROBE).unwrap();
        prober.wait_replies(5, T).unwrap();
        let mut r2 = AGENT.start(&lab, 2, 200, false);
        let delay = Duration::from_micros(rng.u64(0..4000));
        wait_line(&r2, "-> MASTER");
        std::thread::sleep(delay);
        let kill_ns = realtime_ns();
        r2.signal(libc::SIGKILL);
        let _ = r2.proc.child.wait();
        // r1 ends Master (again, or it never heard r2).
        wait(&mut r1, MASTER);
        std::thread::sleep(Duration::from_millis(1000));
        let trace = prober.finish().unwrap();
        println!(
            "run {run}: r2 killed {delay:?} after its takeover; r1 {:?}",
            r1.transitions()
        );
        // r2's fail-safe bound: its own Master_Down_Interval (the default).
        check(
            &format!("takeover run {run}"),
            &trace,
            kill_ns - 2_000_000_000,
            mdi_ms(200),
            mdi_ms(100),
        );
        assert_eq!(
            r1.state().as_deref(),
            Some(MASTER),
            "{}",
            tail(&r1.proc.output(), 20)
        );
    }
}

#[test]
fn kill_during_handover() {
    let mut rng = fastrand::Rng::with_seed(seed());
    for run in 0..RUNS {
        let lab = Lab::for_test("kh", 2);
        let mut r1 = AGENT.start(&lab, 1, 200, false);
        wait(&mut r1, MASTER);
        let mut r2 = AGENT.start(&lab, 2, 100, false);
        wait(&mut r2, BACKUP);
        let prober = lab.client_prober(PROBE).unwrap();
        prober.wait_replies(5, T).unwrap();
        let delay = Duration::from_micros(rng.u64(0..90_000));
        let from = realtime_ns();
        r1.signal(libc::SIGTERM);
        std::thread::sleep(delay);
        r1.signal(libc::SIGKILL);
        let _ = r1.proc.child.wait();
        wait(&mut r2, MASTER);
        std::thread::sleep(Duration::from_millis(1000));
        let trace = prober.finish().unwrap();
        println!("run {run}: r1 killed {delay:?} after SIGTERM");
        check(
            &format!("handover run {run}"),
            &trace,
            from - 500_000_000,
            mdi_ms(200),
            mdi_ms(100),
        );
        assert_eq!(
            r2.transitions(),
            vec![BACKUP.to_owned(), MASTER.to_owned()],
            "{}",
            tail(&r2.proc.output(), 20)
        );
    }
}
