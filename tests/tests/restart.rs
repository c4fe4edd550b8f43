//! Hitless restart (issue 10): r1 (priority 200) is master, r2 (100) backup, adverts every
//! second; the client pings the VIP every 2 ms (and ARPs for it, [`Prober`]).
//!
//! - SIGUSR2 makes r1 exit leaving its VIP and fast path in place; started again with the same
//!   configuration it resumes as master (`INIT -> MASTER (resumed)`), without a priority-0
//!   advert and without removing the VIP: r2 logs no transition and the client loses no ping.
//! - SIGTERM of the resumed master still hands over (priority 0): r2 becomes master.
//!
//! Namespaces are removed on drop, also when an assertion fails.
use std::time::Duration;

use vrrp_integration_tests::{
    lab::{tail, Lab, LabAgent, Vr, BACKUP, MASTER},
    prober::realtime_ns,
};

const VRID: u8 = 61;
/// Master_Down_Interval = 3 × 1 s + Skew_Time ≈ 3.6 s: the restart must come well within it
/// (and within the fail-safe bound, by default the same).
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), VRID, "1");
const T: Duration = Duration::from_secs(10);

#[track_caller]
fn wait(vr: &mut Vr, state: &str, timeout: Duration) {
    vr.wait_state(state, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn sigusr2_restart_resumes_master_without_a_role_change_or_a_lost_ping() {
    let lab = Lab::for_test("hitless", 2);
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    let p = lab.client_prober(Duration::from_millis(2)).unwrap();
    p.wait_replies(50, T).unwrap();

    let t_sig = realtime_ns();
    let code = r1
        .stop(libc::SIGUSR2, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = r1.proc.output();
    assert_eq!(code, Some(0), "r1 exit code; output:\n{}", tail(&out, 30));
    assert!(
        out.contains("SIGUSR2: exiting for a hitless restart"),
        "r1 did not log its hitless exit:\n{}",
        tail(&out, 20)
    );
    assert!(
        !out.contains("MASTER -> "),
        "r1 left MASTER at SIGUSR2 (a handover, not a hitless exit):\n{}",
        tail(&out, 20)
    );
    drop(r1);

    let mut r1 = AGENT.start(&lab, 1, 200, false);
    wait(&mut r1, MASTER, T);
    let out = r1.proc.output();
    assert!(
        out.contains("INIT -> MASTER (resumed)"),
        "the restarted r1 did not resume as master:\n{}",
        tail(&out, 30)
    );
    assert!(
        !out.contains("BACKUP"),
        "the restarted r1 went through BACKUP:\n{}",
        tail(&out, 30)
    );
    // Past the peers' Master_Down_Interval since the exit: a missed advert would show now.
    std::thread::sleep(Duration::from_secs(4));
    let resumed = p
        .live
        .icmp_replies
        .load(std::sync::atomic::Ordering::Relaxed);
    p.wait_replies(resumed + 50, T)
        .expect("client traffic did not keep flowing after the restart");
    let end = realtime_ns();
    let trace = p.finish().unwrap();
    let gap = trace.icmp_gap(t_sig, end).map_or(0.0, |g| g.ms());
    let lost = trace.icmp_sent.saturating_sub(trace.icmp.len() as u64);
    println!(
        "hitless restart: {} echo requests, {} replies, {lost} lost, longest gap {gap:.1} ms",
        trace.icmp_sent,
        trace.icmp.len()
    );
    assert_eq!(
        r2.transitions(),
        vec![BACKUP.to_owned()],
        "the backup r2 saw a role change during the hitless restart:\n{}",
        tail(&r2.proc.output(), 30)
    );
    // At most the one echo request in flight when the prober stopped.
    assert!(
        lost <= 1,
        "the client lost {lost} of {} pings across the hitless restart (longest gap {gap:.1} ms)",
        trace.icmp_sent
    );

    // SIGTERM keeps the graceful handover: priority 0, r2 takes over at once.
    let code = r1
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(code, Some(0), "{}", tail(&r1.proc.output(), 30));
    wait(&mut r2, MASTER, T);
    let out = r2.proc.output();
    assert!(
        out.contains("BACKUP -> MASTER (priority_zero)"),
        "r2 did not take over on r1's priority-0 advert:\n{}",
        tail(&out, 30)
    );
}
