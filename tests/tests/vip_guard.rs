//! The VIPs are the master's, whatever else happens to the interface (issue 7, item 9).
//!
//! - A VIP removed behind the master's back (`ip addr del`, as NetworkManager, networkd or a
//!   DHCP client would) is put back at once, with a warning and a count; the master stays master
//!   and the client keeps reaching the VIP.
//! - A claim that fails makes the agent go FAULT (not MASTER without its VIP); the backup takes
//!   over; once the cause is gone the agent's retry takes the VIP back. The failure is made
//!   reliably with IPv6: `net.ipv6.conf.eth0.disable_ipv6=1` on the master removes every IPv6
//!   address of eth0, the VIP included (the agent sees the removal and re-adds), and the kernel
//!   refuses to add an IPv6 address while it is set (EACCES). The adverts are unaffected: they
//!   are read in XDP and sent on an AF_PACKET socket from the link-local address chosen at start.
//!   `disable_ipv6=0` removes the cause.
//!
//! Lab: `vrrp_integration_tests::lab`, r1 priority 200, r2 priority 100, adverts every 100 ms.
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use vrrp_integration_tests::lab::{
    tail, Lab, LabAgent, Node, Vr, BACKUP, FAULT, MASTER, PREFIX4, VIP4, VIP6,
};

/// The agent on r1/r2 (the lab's VIP), VRID 51, adverts every 100 ms.
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), 51, "0.1");
const T: Duration = Duration::from_secs(10);

#[track_caller]
fn wait(vr: &mut Vr, state: &str, timeout: Duration) {
    vr.wait_state(state, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// Whether `ip` is on the node's eth0.
fn has_addr(node: &Node, ip: IpAddr) -> bool {
    let out = node
        .ns
        .ip(&["-br", "addr", "show", "dev", &node.iface])
        .unwrap_or_else(|e| panic!("{e:#}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(ip.to_string().as_str()))
}

/// Polls (every 5 ms, bounded) until `ip` is on the node's eth0 (`present`) or not; the time
/// it took.
fn wait_addr(node: &Node, ip: IpAddr, present: bool, timeout: Duration) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if has_addr(node, ip) == present {
            return Some(t.elapsed());
        }
        if t.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Clean stop; the agent's `instance NAME: vips ...` counter `name`.
fn stop_vip_counter(vr: &mut Vr, name: &str) -> u64 {
    let code = vr
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = vr.proc.output();
    assert_eq!(code, Some(0), "exit code; output:\n{}", tail(&out, 30));
    let prefix = format!("instance {}: vips ", vr.instance);
    let line = out
        .lines()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", tail(&out, 20)));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

#[test]
fn vip_removed_behind_the_masters_back_is_put_back_and_counted() {
    let lab = Lab::for_test("vgdel", 2);
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    let vip = IpAddr::V4(VIP4);
    assert!(has_addr(lab.r(1), vip), "the master has no VIP");
    assert!(lab.client_ping_until(vip, T), "client cannot ping the VIP");

    // An operator (or NetworkManager, networkd, a DHCP client) removes it.
    lab.r(1)
        .ns
        .ip(&["addr", "del", &format!("{VIP4}/{PREFIX4}"), "dev", "eth0"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let back = wait_addr(lab.r(1), vip, true, Duration::from_secs(5));
    println!("VIP back on r1 after {back:?}");
    assert!(
        back.is_some(),
        "the VIP was not put back within 5 s:\n{}",
        tail(&r1.proc.output(), 20)
    );
    r1.proc
        .wait_for_line(T, |l| {
            l.contains("WARN")
                && l.contains(&format!("VIP {VIP4}/{PREFIX4} was removed from eth0"))
                && l.contains("something else")
        })
        .unwrap_or_else(|e| panic!("no warning: {e:#}"));
    assert!(lab.client_ping_until(vip, T), "client cannot ping the VIP");
    // No transition on either side: the master stayed master.
    assert_eq!(r1.transitions(), [BACKUP, MASTER]);
    assert_eq!(r2.transitions(), [BACKUP]);

    // Our own changes are neither put back nor counted: a release (link cut: r1 goes FAULT)
    // and a claim again (link back: r1 preempts r2).
    lab.cut(1).unwrap();
    wait(&mut r1, FAULT, T);
    wait(&mut r2, MASTER, T);
    assert!(
        wait_addr(lab.r(1), vip, false, T).is_some(),
        "r1 kept the VIP in FAULT"
    );
    lab.restore(1).unwrap();
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    assert!(wait_addr(lab.r(1), vip, true, T).is_some());
    std::thread::sleep(Duration::from_millis(500));
    let out = r1.proc.output();
    assert_eq!(
        out.matches("was removed from eth0 by something else")
            .count(),
        1,
        "{}",
        tail(&out, 30)
    );
    let n = stop_vip_counter(&mut r1, "vips_readded");
    assert_eq!(n, 1, "{}", tail(&r1.proc.output(), 20));
}

#[test]
fn vip_added_behind_a_backups_back_is_removed() {
    let lab = Lab::for_test("vgadd", 2);
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    let vip = IpAddr::V4(VIP4);
    lab.r(2)
        .ns
        .ip(&["addr", "add", &format!("{VIP4}/{PREFIX4}"), "dev", "eth0"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let gone = wait_addr(lab.r(2), vip, false, Duration::from_secs(5));
    println!("VIP gone from r2 after {gone:?}");
    assert!(
        gone.is_some(),
        "the backup kept a VIP added behind its back"
    );
    r2.proc
        .wait_for_line(T, |l| {
            l.contains("WARN") && l.contains("was added to eth0 by something else")
        })
        .unwrap_or_else(|e| panic!("no warning: {e:#}"));
    assert_eq!(r1.transitions(), [BACKUP, MASTER]);
    assert_eq!(r2.transitions(), [BACKUP]);
    assert!(has_addr(lab.r(1), vip));
    assert_eq!(stop_vip_counter(&mut r2, "vips_removed"), 1);
}

#[test]
fn claim_failure_goes_fault_backup_takes_over_and_the_retry_takes_the_vip_back() {
    let lab = Lab::for_test("vgfail", 2);
    let mut r1 = AGENT.start(&lab, 1, 200, true);
    let mut r2 = AGENT.start(&lab, 2, 100, true);
    wait(&mut r1, MASTER, T);
    wait(&mut r2, BACKUP, T);
    let vip = IpAddr::V6(VIP6);
    assert!(has_addr(lab.r(1), vip));

    // The cause: IPv6 off on r1's eth0. The VIP goes; putting it back fails.
    lab.r(1)
        .ns
        .sysctl("net.ipv6.conf.eth0.disable_ipv6", "1")
        .unwrap_or_else(|e| panic!("{e:#}"));
    wait(&mut r1, FAULT, T);
    wait(&mut r2, MASTER, T);
    let out = r1.proc.output();
    assert!(
        out.contains("state MASTER -> FAULT (claim_failed)"),
        "{}",
        tail(&out, 20)
    );
    assert!(
        out.lines()
            .any(|l| l.contains("WARN") && l.contains("taking the VIPs on eth0 failed")),
        "{}",
        tail(&out, 20)
    );
    // While the cause stays, r1 retries (1 s, then 2 s, ...) and fails again; it never holds
    // the VIP and r2 stays master throughout.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        assert!(!has_addr(lab.r(1), vip), "r1 holds the VIP while failing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let failures = r1.proc.output().matches("-> FAULT (claim_failed)").count();
    println!("claim failures while IPv6 was off: {failures}");
    assert!(
        failures >= 2,
        "no retry within 4 s:\n{}",
        tail(&r1.proc.output(), 30)
    );
    assert_eq!(r2.transitions(), [BACKUP, MASTER], "r2 stayed master");

    // The cause goes: the next retry (at most 8 s away by now) claims again, r1 preempts.
    lab.r(1)
        .ns
        .sysctl("net.ipv6.conf.eth0.disable_ipv6", "0")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let t = Instant::now();
    wait(&mut r1, MASTER, Duration::from_secs(20));
    wait(&mut r2, BACKUP, T);
    assert!(
        wait_addr(lab.r(1), vip, true, T).is_some(),
        "r1 is MASTER without its VIP"
    );
    println!("r1 master again {:?} after IPv6 came back", t.elapsed());
    // Stable: r1 keeps it.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(r1.state().as_deref(), Some(MASTER));
    assert!(
        lab.client_ping_until(vip, T),
        "client cannot ping the IPv6 VIP"
    );
    let n = stop_vip_counter(&mut r1, "claim_failures");
    assert!(n >= 2, "claim_failures={n}");
}
