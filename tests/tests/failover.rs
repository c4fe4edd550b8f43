//! Failover end to end (issue 4): agents on routers r1/r2 of a namespace LAN (see
//! `vrrp_integration_tests::lab`), a client that ARPs, pings and resolves the VIP.
//!
//! Behaviour is asserted with generous time bounds; measured times are printed (run with
//! `--nocapture` to see them). Speed targets live in `cargo xtask bench failover`.
//! Namespaces are unique per test and removed on drop, also when an assertion fails.
use std::{
    net::IpAddr,
    path::Path,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use vrrp_integration_tests::{
    lab::{
        pcap_summary, tail, tshark_fields, vmac4, vmac6, Capture, Lab, LabAgent, Vr, BACKUP,
        MASTER, VIP4, VIP6,
    },
    prober::realtime_ns,
};

const VRID: u8 = 51;
/// Advert interval of most tests (s): Master_Down_Interval = 3 × 0.1 + Skew_Time ≈ 0.36 s.
const ADV: &str = "0.1";
/// The agent on r1/r2 (the lab's VIP; `advert_int` and `extra` vary per test).
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), VRID, ADV);
/// Fast-path counter of ARP requests answered in XDP (vrrp-common `Counter::name()`).
const ARP_REPLIED: &str = "arp_replied";
/// Fast-path counter of neighbour solicitations answered in XDP.
const NS_REPLIED: &str = "ns_replied";
const T: Duration = Duration::from_secs(10);
/// Unsolicited NAs per VIP a new Master sends at once (the default `garp_master_repeat`).
const NA_BURST: usize = 5;

#[track_caller]
fn wait(vr: &mut Vr, state: &str, timeout: Duration) -> Duration {
    vr.wait_state(state, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// r1 (priority 200) MASTER, r2 (100) BACKUP.
fn elect(lab: &Lab, v6: bool, adv: &str) -> (Vr, Vr) {
    let agent = LabAgent {
        advert_int: adv,
        ..AGENT
    };
    let mut r1 = agent.start(lab, 1, 200, v6);
    let mut r2 = agent.start(lab, 2, 100, v6);
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    (r1, r2)
}

/// Clean stop; the fast-path counter `name` from the detach line.
fn stop_counter(vr: &mut Vr, name: &str) -> u64 {
    let code = vr
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = vr.proc.output();
    assert_eq!(
        code,
        Some(0),
        "agent exit code; output:\n{}",
        tail(&out, 30)
    );
    vr.counter(name).unwrap_or_else(|| {
        panic!(
            "no {name}= in the detach counters line:\n{}",
            tail(&out, 10)
        )
    })
}

fn pcap_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Captures what router `n` sends (matching `filter`) into `r<n>.pcap` in `dir`.
fn capture(lab: &Lab, dir: &tempfile::TempDir, n: usize, filter: &str) -> Capture {
    lab.capture_sent(n, filter, &dir.path().join(format!("r{n}.pcap")))
        .unwrap()
}

fn frames(pcap: &Path, filter: &str) -> usize {
    tshark_fields(pcap, filter, &["frame.number"])
        .unwrap_or_else(|e| panic!("{e:#}"))
        .len()
}

#[test]
fn election_by_priority_vmac_arp_from_xdp_and_icmp_through_master() {
    let lab = Lab::for_test("elect", 2);
    let (mut r1, r2) = elect(&lab, false, ADV);
    // Stable: a few Master_Down_Intervals later nothing changed. This sleep is the test's
    // subject (nothing may happen during it), not a wait for something.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        r1.state().as_deref(),
        Some(MASTER),
        "{:?}",
        r1.transitions()
    );
    assert!(
        !r2.transitions().iter().any(|s| s == MASTER),
        "the lower priority went MASTER: {:?}",
        r2.transitions()
    );

    let dir = pcap_dir();
    let cap1 = capture(&lab, &dir, 1, "arp or icmp");
    let cap2 = capture(&lab, &dir, 2, "arp or icmp");
    let macs = lab.client_arp(VIP4, 10).unwrap();
    assert_eq!(
        macs,
        vec![vmac4(VRID)],
        "ARP for the VIP must be answered with the VMAC only (r1 eth0 is {}, r2 eth0 is {})",
        lab.r(1).mac,
        lab.r(2).mac
    );
    // A client the master has not resolved yet: its echo replies need an ARP of its own, which
    // must not teach the client the master's real MAC for the VIP.
    lab.r(1).ns.ip(&["neigh", "flush", "dev", "eth0"]).unwrap();
    assert!(
        lab.client_ping(IpAddr::V4(VIP4), 5),
        "client cannot ping the VIP"
    );
    let neigh = lab.client_neigh(IpAddr::V4(VIP4)).unwrap();
    let p1 = cap1.stop().unwrap();
    let p2 = cap2.stop().unwrap();
    let (mac, state) = neigh.expect("client has a neighbour entry for the VIP");
    assert_eq!(
        mac,
        vmac4(VRID),
        "the client's neighbour entry for the VIP ({state}) is not the VMAC (r1 eth0 is {}); ARP from r1:\n{}",
        lab.r(1).mac,
        pcap_summary(&p1, "arp")
    );
    let vip_arp = format!("arp.opcode == 2 && arp.src.proto_ipv4 == {VIP4}");
    let echo = format!("icmp.type == 0 && ip.src == {VIP4}");
    assert!(
        frames(&p1, &vip_arp) >= 1,
        "no ARP reply for the VIP from r1"
    );
    assert_eq!(
        frames(&p2, &vip_arp),
        0,
        "the backup r2 answered ARP for the VIP"
    );
    assert!(
        frames(&p1, &echo) >= 1,
        "echo replies did not come from the master r1"
    );
    assert_eq!(
        frames(&p2, &echo),
        0,
        "the backup r2 answered echo requests to the VIP"
    );

    let answered = stop_counter(&mut r1, ARP_REPLIED);
    println!("r1 {ARP_REPLIED}={answered}");
    assert!(
        answered >= 1,
        "the XDP program did not answer the ARP requests"
    );
}

#[test]
fn master_link_cut_backup_takes_over_and_traffic_resumes() {
    let lab = Lab::for_test("cut", 2);
    let (mut r1, mut r2) = elect(&lab, false, ADV);
    let p = lab.client_prober(Duration::from_millis(2)).unwrap();
    p.wait_replies(20, T).unwrap();
    let t_cut = realtime_ns();
    let t = Instant::now();
    lab.cut(1).unwrap();
    let took = wait(&mut r2, MASTER, T);
    p.wait_reply_after(realtime_ns(), T)
        .expect("client traffic did not resume after the takeover");
    // And keeps flowing: as many replies again as before the cut.
    let resumed = p.live.icmp_replies.load(Ordering::Relaxed);
    p.wait_replies(resumed + 20, T)
        .expect("client traffic did not keep flowing after the takeover");
    let end = realtime_ns();
    println!(
        "link cut: r2 MASTER logged after {} ms (Master_Down_Interval ≈ 361 ms)",
        took.as_millis()
    );
    let trace = p.finish().unwrap();
    let g = trace.icmp_gap(t_cut, end).expect("echo replies resumed");
    println!("link cut: client-visible ICMP gap {:.1} ms", g.ms());
    assert!(t.elapsed() < T);
    assert!(g.ms() < 5000.0, "gap {} ms", g.ms());

    // r1's link comes back: it preempts (priority 200 > 100).
    lab.restore(1).unwrap();
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    assert!(
        lab.client_ping_until(IpAddr::V4(VIP4), T),
        "no ping after r1 came back"
    );
}

#[test]
fn graceful_stop_priority_zero_takeover_in_about_skew_time() {
    let lab = Lab::for_test("grace", 2);
    // 1 s adverts make the difference visible: Skew_Time(100) ≈ 0.61 s, Master_Down ≈ 3.61 s.
    let (mut r1, mut r2) = elect(&lab, false, "1");
    let dir = pcap_dir();
    let cap = capture(&lab, &dir, 1, "vrrp");
    r1.signal(libc::SIGTERM);
    let took = wait(&mut r2, MASTER, T);
    println!(
        "graceful stop: r2 MASTER {} ms after SIGTERM to r1 (Skew_Time ≈ 609 ms, Master_Down_Interval ≈ 3609 ms)",
        took.as_millis()
    );
    let code = r1.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&r1.proc.output(), 20));
    let pcap = cap.stop().unwrap();
    assert!(
        frames(&pcap, "vrrp.prio == 0") >= 1,
        "no priority-0 advert from r1 on stop; r1 sent:\n{}",
        pcap_summary(&pcap, "")
    );
    assert!(
        took < Duration::from_millis(2500),
        "takeover took {took:?}: not the priority-0 path (Master_Down_Interval is 3.6 s)"
    );
    assert!(
        lab.client_ping_until(IpAddr::V4(VIP4), T),
        "no ping through r2"
    );
    let out = r1.proc.output();
    assert!(
        out.contains("XDP detached from eth0"),
        "no detach line: {}",
        tail(&out, 10)
    );
}

#[test]
fn higher_priority_returns_and_preempts() {
    let lab = Lab::for_test("preempt", 2);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r2, MASTER, T);
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    let took = wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    println!("preempt: r1 MASTER {} ms after start", took.as_millis());
    assert!(lab.client_ping_until(IpAddr::V4(VIP4), T));
}

#[test]
fn no_preempt_keeps_the_lower_priority_master() {
    let lab = Lab::for_test("nopre", 2);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r2, MASTER, T);
    let mut r1 = LabAgent {
        extra: &["--no-preempt"],
        ..AGENT
    }
    .start(&lab, 1, 200, false);
    wait(&mut r1, BACKUP, T);
    // Many Master_Down_Intervals (0.32 s for priority 200). This sleep is the test's subject
    // (r1 must not preempt during it), not a wait for something.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        r1.transitions(),
        vec![BACKUP.to_owned()],
        "r1 with --no-preempt"
    );
    assert_eq!(
        r2.state().as_deref(),
        Some(MASTER),
        "{:?}",
        r2.transitions()
    );
    assert!(
        !r2.transitions()
            .iter()
            .skip_while(|s| *s != MASTER)
            .any(|s| s == BACKUP),
        "r2 stepped down: {:?}",
        r2.transitions()
    );
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);
}

#[test]
fn preempt_delay_is_honoured() {
    let lab = Lab::for_test("pdelay", 2);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r2, MASTER, T);
    let started = Instant::now();
    let mut r1 = LabAgent {
        extra: &["--preempt-delay", "2"],
        ..AGENT
    }
    .start(&lab, 1, 200, false);
    wait(&mut r1, BACKUP, T);
    let took = started.elapsed() + wait(&mut r1, MASTER, Duration::from_secs(15));
    wait(&mut r2, BACKUP, T);
    println!(
        "preempt_delay 2 s: r1 MASTER {} ms after its start",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_millis(1900),
        "r1 preempted after {took:?}, before its 2 s preempt_delay"
    );
}

#[test]
fn master_sigkill_dead_node_stops_answering_arp_backup_owns_vip() {
    let lab = Lab::for_test("kill", 2);
    let (mut r1, mut r2) = elect(&lab, false, ADV);
    assert_eq!(lab.client_arp(VIP4, 3).unwrap(), vec![vmac4(VRID)]);
    r1.signal(libc::SIGKILL);
    let _ = r1.stop(libc::SIGKILL, T);
    let killed = Instant::now();
    wait(&mut r2, MASTER, T);
    // Fail-safe bound: r1's Master_Down_Interval (3 × 0.1 + 0.022 s) + a generous margin. The
    // sleep is the test's subject: the dead node's kernel state only changes with time (its
    // heartbeat going stale), and what it does after the bound is what is asserted.
    let bound = Duration::from_millis(322) + Duration::from_millis(1000);
    if let Some(rest) = bound.checked_sub(killed.elapsed()) {
        std::thread::sleep(rest);
    }
    let dir = pcap_dir();
    let cap1 = capture(&lab, &dir, 1, "arp or icmp");
    let cap2 = capture(&lab, &dir, 2, "arp");
    let macs = lab.client_arp(VIP4, 20).unwrap();
    assert!(lab.client_ping(IpAddr::V4(VIP4), 5), "no ping through r2");
    let p1 = cap1.stop().unwrap();
    let p2 = cap2.stop().unwrap();
    let vip_arp = format!("arp.opcode == 2 && arp.src.proto_ipv4 == {VIP4}");
    let from_dead = tshark_fields(&p1, &vip_arp, &["arp.src.hw_mac"]).unwrap();
    assert!(
        from_dead.is_empty(),
        "the SIGKILLed r1 still answers ARP for the VIP ({} replies, sender {:?}) {:?} after the kill",
        from_dead.len(),
        from_dead.first(),
        killed.elapsed()
    );
    let echo = format!("icmp.type == 0 && ip.src == {VIP4}");
    assert_eq!(
        frames(&p1, &echo),
        0,
        "the SIGKILLed r1 still answers pings to the VIP"
    );
    assert!(
        frames(&p2, &vip_arp) >= 1,
        "r2 (MASTER) does not answer ARP for the VIP"
    );
    assert_eq!(macs, vec![vmac4(VRID)]);
}

#[test]
fn ipv6_ns_answered_with_vmac_and_unsolicited_na_on_takeover() {
    let lab = Lab::for_test("v6", 2);
    let (mut r1, mut r2) = elect(&lab, true, ADV);
    // A fresh client the master has not resolved yet (see the IPv4 test).
    lab.client_neigh_flush(IpAddr::V6(VIP6)).unwrap();
    lab.r(1).ns.ip(&["neigh", "flush", "dev", "eth0"]).unwrap();
    let dir = pcap_dir();
    let cap1 = capture(&lab, &dir, 1, "icmp6");
    assert!(
        lab.client_ping_until(IpAddr::V6(VIP6), T),
        "client cannot ping the IPv6 VIP"
    );
    let neigh = lab.client_neigh(IpAddr::V6(VIP6)).unwrap();
    let p1 = cap1.stop().unwrap();
    let (mac, state) = neigh.expect("client has a neighbour entry for the IPv6 VIP");
    assert_eq!(
        mac,
        vmac6(VRID),
        "the client's neighbour entry for the IPv6 VIP ({state}) is not the VMAC (r1 eth0 is {}); NDP from r1:\n{}",
        lab.r(1).mac,
        pcap_summary(&p1, "")
    );
    let na_vmac = tshark_fields(
        &p1,
        &format!("icmpv6.type == 136 && icmpv6.nd.na.target_address == {VIP6}"),
        &["icmpv6.opt.linkaddr"],
    )
    .unwrap();
    assert!(
        !na_vmac.is_empty()
            && na_vmac
                .iter()
                .all(|f| f[0].eq_ignore_ascii_case(&vmac6(VRID))),
        "NAs for the VIP from r1 must carry the VMAC: {na_vmac:?}"
    );

    let dir = pcap_dir();
    let cap = capture(&lab, &dir, 2, "icmp6");
    let t_cut = Instant::now();
    lab.cut(1).unwrap();
    wait(&mut r2, MASTER, T);
    // The takeover's burst of unsolicited NAs (garp_master_repeat, default 5) is out.
    let na_filter = format!("icmpv6.type == 136 && icmpv6.nd.na.target_address == {VIP6}");
    cap.wait_frames(&na_filter, NA_BURST, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let pcap = cap.stop().unwrap();
    let na = tshark_fields(
        &pcap,
        &na_filter,
        &[
            "icmpv6.nd.na.flag.s",
            "icmpv6.nd.na.flag.o",
            "icmpv6.opt.linkaddr",
            "ipv6.dst",
        ],
    )
    .unwrap();
    println!(
        "unsolicited NAs from r2 within {:?} of the cut: {na:?}",
        t_cut.elapsed()
    );
    assert!(
        !na.is_empty(),
        "no unsolicited NA for the VIP from r2 on takeover"
    );
    assert!(
        na.iter().all(|f| f[0] == "0" || f[0] == "False"),
        "an unsolicited NA must not have the Solicited flag: {na:?}"
    );
    assert!(
        na.iter().any(|f| f
            .get(2)
            .is_some_and(|m| m.eq_ignore_ascii_case(&vmac6(VRID)))),
        "the NA's target link-layer address should be the VMAC {}: {na:?}",
        vmac6(VRID)
    );
    assert!(
        lab.client_ping_until(IpAddr::V6(VIP6), T),
        "no ping6 through r2"
    );

    // r1 answered the client's NS in XDP.
    lab.restore(1).unwrap();
    let ns_replied = stop_counter(&mut r1, NS_REPLIED);
    println!("r1 {NS_REPLIED}={ns_replied}");
    assert!(ns_replied >= 1, "the XDP program did not answer the NS");
}
