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
//! Between the claim steps: the agent's test hook `VRRP_AGENT_TEST_STEP_DELAY_MS` (see
//! `vrrp-agent/src/step_hook.rs`) logs a line before each step of a claim or release and waits
//! [`STEP_DELAY_MS`] before carrying it out; one run per step kills the agent right after that
//! step's line, i.e. between it and the step before (the takeover: before the map claim, the
//! first advert, the GARPs, the addresses, the `-> MASTER` notification; the stop's handover:
//! before the priority-0 advert, and in the release before the addresses go, before the map is
//! released). Each run checks the kill landed in
//! its gap (the next step's line never came), then the same two bounds.
//!
//! Every run also checks that before the kill (takeover: before r2 starts) the live Master
//! answered every request (at most two rounds in a row without an answer).
//!
//! A window of the measure is one probe interval (a run of rounds is timed from its first
//! request to the first request after it). Namespaces are removed on drop, also on failure.
use std::time::{Duration, Instant};

use std::path::Path;

use vrrp_integration_tests::{
    lab::{
        instance_name, tail, vip_cidr, vr_args, Lab, LabAgent, Launch, Vr, VrKind, BACKUP, MASTER,
    },
    prober::{realtime_ns, Trace},
    Proc,
};

const ADVERT_MS: u64 = 100;
const PROBE: Duration = Duration::from_millis(5);
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), 55, "0.1");
const T: Duration = Duration::from_secs(10);
const RUNS: usize = 3;
/// The test hook's wait before each step: long enough for the test to kill the agent in it,
/// short against the fail-safe bound (the heartbeat is not written while the loop waits).
const STEP_DELAY_MS: u64 = 30;
/// A takeover's steps in order (the hook's names).
const TAKEOVER_STEPS: [&str; 5] = ["claim", "advert", "garp", "add_vips", "notify"];
/// A stop's handover steps in order (the hook's kind and name): the priority-0 advert, then
/// (once the new Master's advert came) the release.
const HANDOVER_STEPS: [(&str, &str); 4] = [
    ("handover", "failsafe"),
    ("handover", "advert"),
    ("release", "del_vips"),
    ("release", "unclaim"),
];

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

/// Before the kill: a live Master answers every request (a late reply may leave one round
/// empty, so a run of two is allowed; a fast path whose ownership lapses between heartbeats
/// leaves runs of tens of ms).
fn steady(what: &str, trace: &Trace, to: u64) {
    let (_, none, picture) = worst(trace, trace.start_ns, to);
    let most = 2.0 * PROBE.as_secs_f64() * 1e3;
    assert!(
        none <= most,
        "{what}: the live Master left requests unanswered for {none:.1} ms (> {most:.0} ms) \
         before the kill; owners per request: {picture}"
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

/// A lab with r1 (priority 100) Master alone and the client's prober running: a few
/// heartbeat periods of r1 alone have passed by the time returned (for `steady`).
fn r1_alone(tag: &str) -> (Lab, Vr, vrrp_integration_tests::prober::Prober, u64) {
    let lab = Lab::for_test(tag, 2);
    let mut r1 = AGENT.start(&lab, 1, 100, false);
    wait(&mut r1, MASTER);
    let prober = lab.client_prober(PROBE).unwrap();
    prober.wait_replies(5, T).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let alone_until = realtime_ns();
    (lab, r1, prober, alone_until)
}

#[test]
fn kill_during_takeover() {
    let mut rng = fastrand::Rng::with_seed(seed());
    for run in 0..RUNS {
        let (lab, mut r1, prober, alone_until) = r1_alone("kt");
        let mut r2 = AGENT.start(&lab, 2, 200, false);
        let delay = Duration::from_micros(rng.u64(0..4000));
        wait_line(&r2, "-> MASTER");
        std::thread::sleep(delay);
        let kill_ns = realtime_ns();
        r2.signal(libc::SIGKILL);
        let _ = r2.proc.child.wait();
        println!("run {run}: r2 killed {delay:?} after its takeover");
        after_takeover_kill(
            &format!("takeover run {run}"),
            &mut r1,
            prober,
            alone_until,
            kill_ns,
        );
    }
}

/// After r2 (priority 200) was killed in its takeover from r1 (100) at `kill_ns`: r1 ends
/// Master (again, or it never heard r2), r1 alone answered every request until `alone_until`,
/// and the two bounds hold around the kill (r2's fail-safe bound: its own
/// Master_Down_Interval, the default).
fn after_takeover_kill(
    what: &str,
    r1: &mut Vr,
    prober: vrrp_integration_tests::prober::Prober,
    alone_until: u64,
    kill_ns: u64,
) {
    wait(r1, MASTER);
    std::thread::sleep(Duration::from_millis(1000));
    let trace = prober.finish().unwrap();
    println!("{what}: r1 {:?}", r1.transitions());
    steady(what, &trace, alone_until);
    check(
        what,
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
        println!("run {run}: r1 killed {delay:?} after SIGTERM");
        after_handover_kill(&format!("handover run {run}"), &mut r2, prober, from);
    }
}

/// After r1 (priority 200) was killed in its stop's handover to r2 (100), SIGTERMed at `from`:
/// r2 ends Master (its only transition), r1 answered every request until `from`, and the two
/// bounds hold around the stop.
fn after_handover_kill(
    what: &str,
    r2: &mut Vr,
    prober: vrrp_integration_tests::prober::Prober,
    from: u64,
) {
    wait(r2, MASTER);
    std::thread::sleep(Duration::from_millis(1000));
    let trace = prober.finish().unwrap();
    steady(what, &trace, from);
    check(what, &trace, from - 500_000_000, mdi_ms(200), mdi_ms(100));
    assert_eq!(
        r2.transitions(),
        vec![BACKUP.to_owned(), MASTER.to_owned()],
        "{}",
        tail(&r2.proc.output(), 20)
    );
}

/// [`LabAgent::start`] with the step hook set.
fn start_hooked(lab: &Lab, n: usize, priority: u8) -> Vr {
    let node = lab.r(n);
    let mut cmd = Launch::IpNetnsExec.command(&node.ns, Path::new(AGENT.bin));
    cmd.args(["run", "--iface", &node.iface])
        .args(vr_args(
            AGENT.vrid,
            priority,
            &vip_cidr(false),
            AGENT.advert_int,
        ))
        .env("RUST_LOG", "info")
        .env("VRRP_AGENT_TEST_STEP_DELAY_MS", STEP_DELAY_MS.to_string());
    let mut proc = Proc::spawn(cmd, &format!("vrrp-agent on {}", node.name))
        .unwrap_or_else(|e| panic!("{e:#}"));
    proc.wait_for_line(T, |l| {
        l.contains(&format!("XDP attached to {}", node.iface))
    })
    .unwrap_or_else(|e| panic!("starting the agent on r{n}: {e:#}"));
    assert!(
        proc.output().contains(&format!(
            "VRRP_AGENT_TEST_STEP_DELAY_MS={STEP_DELAY_MS}: every claim, handover and release step"
        )),
        "the agent did not take the step hook:\n{}",
        tail(&proc.output(), 20)
    );
    Vr {
        proc,
        kind: VrKind::Agent,
        instance: instance_name(AGENT.vrid, false),
        node: node.name.clone(),
    }
}

/// The hook's line for `step` of a `kind` (claim/release) of the lab's instance.
fn step_line(kind: &str, step: &str) -> String {
    format!(
        "test hook: {kind} step {step} for instance {}",
        instance_name(AGENT.vrid, false)
    )
}

/// Waits (bounded) for `line` in the agent's log after byte `from`, then SIGKILLs it and checks
/// that the kill landed before the step after (`next`: its line) was begun.
fn kill_at(vr: &mut Vr, from: usize, line: &str, next: &str) -> u64 {
    let deadline = Instant::now() + T;
    while !vr.proc.output()[from..].contains(line) {
        assert!(
            Instant::now() < deadline,
            "no `{line}` from {}:\n{}",
            vr.node,
            tail(&vr.proc.output(), 20)
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let kill_ns = realtime_ns();
    vr.signal(libc::SIGKILL);
    let _ = vr.proc.child.wait();
    let out = vr.proc.output();
    let after = &out[from..][out[from..].find(line).expect("seen") + line.len()..];
    assert!(
        !after.contains(next),
        "the kill came after `{next}`, not in the gap before it:\n{}",
        tail(&out, 20)
    );
    kill_ns
}

#[test]
fn kill_between_takeover_steps() {
    for (k, step) in TAKEOVER_STEPS.iter().enumerate() {
        let (lab, mut r1, prober, alone_until) = r1_alone("ks");
        let mut r2 = start_hooked(&lab, 2, 200);
        // The step after: the next one's line, or the notification itself after the last.
        let next = match TAKEOVER_STEPS.get(k + 1) {
            Some(n) => step_line("claim", n),
            None => "-> MASTER".to_owned(),
        };
        let kill_ns = kill_at(&mut r2, 0, &step_line("claim", step), &next);
        after_takeover_kill(
            &format!("takeover, killed before {step}"),
            &mut r1,
            prober,
            alone_until,
            kill_ns,
        );
    }
}

#[test]
fn kill_between_handover_steps() {
    for (k, (kind, step)) in HANDOVER_STEPS.iter().enumerate() {
        let lab = Lab::for_test("kr", 2);
        let mut r1 = start_hooked(&lab, 1, 200);
        wait(&mut r1, MASTER);
        let mut r2 = AGENT.start(&lab, 2, 100, false);
        wait(&mut r2, BACKUP);
        let prober = lab.client_prober(PROBE).unwrap();
        prober.wait_replies(5, T).unwrap();
        // Only the handover's release counts (a start releases too).
        let from_byte = r1.proc.output().len();
        let from = realtime_ns();
        r1.signal(libc::SIGTERM);
        let next = match HANDOVER_STEPS.get(k + 1) {
            Some((kind, n)) => step_line(kind, n),
            // After the release the stop logs its counters.
            None => format!("instance {}: rx ", instance_name(AGENT.vrid, false)),
        };
        kill_at(&mut r1, from_byte, &step_line(kind, step), &next);
        println!("r1 killed before its {kind} step {step}");
        after_handover_kill(
            &format!("handover, killed before {step}"),
            &mut r2,
            prober,
            from,
        );
    }
}
