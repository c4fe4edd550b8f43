//! Interop with keepalived (Debian's package) on one LAN, VRRPv3, both ways round: our agent
//! master with keepalived backup, and the reverse; election and failover (link cut, graceful
//! stop, return) both ways. Every frame our agent sends is captured on its bridge port and must
//! decode in `tshark -V` with no "Malformed" and no error-level expert info, VRRP checksums good.
//!
//! Namespaces are unique per test and removed on drop, also when an assertion fails.
use std::{net::IpAddr, path::Path, time::Duration};

use vrrp_integration_tests::{
    lab::{
        keepalived_conf, pcap_summary, tail, tshark_fields, vip_cidr, vmac4, Lab, LabAgent, Launch,
        Vr, BACKUP, MASTER, VIP4,
    },
    run, wait_until,
};

const VRID: u8 = 52;
/// Our agent (the lab's IPv4 VIP, VRRPv3, adverts every 100 ms).
const AGENT: LabAgent = LabAgent {
    bin: env!("CARGO_BIN_EXE_vrrp-agent-dut"),
    vrid: VRID,
    advert_int: "0.1",
    extra: &["--version", "3"],
    launch: Launch::IpNetnsExec,
};
const T: Duration = Duration::from_secs(10);

fn keepalived(lab: &Lab, n: usize, prio: u8) -> Vr {
    let vip = vip_cidr(false);
    lab.keepalived(
        n,
        &keepalived_conf("KA", VRID, prio, "0.1", &[&vip], ""),
        "KA",
    )
    .unwrap_or_else(|e| panic!("starting keepalived on r{n}: {e:#}"))
}

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

fn ping_ok(lab: &Lab, what: &str) {
    assert!(
        lab.client_ping_until(IpAddr::V4(VIP4), T),
        "client cannot ping the VIP {what}"
    );
}

/// Every frame in `pcap` (what our agent's router sent) decodes cleanly; returns how many VRRP
/// adverts it holds.
fn check_decodes(pcap: &Path) -> usize {
    let total = tshark_fields(pcap, "frame", &["frame.number"])
        .unwrap()
        .len();
    assert!(total > 0, "nothing captured from our router");
    let bad = tshark_fields(
        pcap,
        "_ws.malformed || _ws.expert.severity == \"Error\"",
        &["frame.number", "_ws.col.Info"],
    )
    .unwrap();
    assert!(
        bad.is_empty(),
        "frames from our router that tshark calls malformed or errors: {bad:?}\n{}",
        pcap_summary(pcap, "")
    );
    let verbose = run(std::process::Command::new("tshark")
        .args(["-n", "-V", "-r"])
        .arg(pcap))
    .unwrap();
    let text = String::from_utf8_lossy(&verbose.stdout);
    assert!(
        !text.contains("Malformed"),
        "tshark -V reports a malformed frame:\n{}",
        tail(&text, 60)
    );
    let vrrp = tshark_fields(
        pcap,
        "vrrp",
        &["vrrp.checksum.status", "vrrp.version", "vrrp.prio"],
    )
    .unwrap();
    assert!(!vrrp.is_empty(), "no VRRP advert from our router");
    for f in &vrrp {
        assert_eq!(f[0], "1", "VRRP checksum status (1 = good) of {f:?}");
        assert_eq!(f[1], "3", "VRRP version of {f:?}");
    }
    println!(
        "{total} frames from our router decode cleanly ({} VRRP adverts, checksums good)",
        vrrp.len()
    );
    vrrp.len()
}

#[test]
fn agent_master_keepalived_backup() {
    let lab = Lab::for_test("ia", 2);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "", &dir.path().join("ours.pcap"))
        .unwrap();
    let mut ours = AGENT.start(&lab, 1, 200, false);
    let mut ka = keepalived(&lab, 2, 100);
    wait(&mut ours, MASTER);
    wait(&mut ka, BACKUP);
    // Stable: this sleep is the test's subject (neither may move during it), not a wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ours.state().as_deref(), Some(MASTER));
    assert_eq!(
        ka.state().as_deref(),
        Some(BACKUP),
        "{}",
        tail(&ka.proc.output(), 20)
    );
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);
    ping_ok(&lab, "through our master");

    // Failover: our link is cut, keepalived takes over; back, we preempt.
    lab.cut(1).unwrap();
    wait(&mut ka, MASTER);
    ping_ok(&lab, "through keepalived after our link cut");
    lab.restore(1).unwrap();
    wait(&mut ours, MASTER);
    wait(&mut ka, BACKUP);
    ping_ok(&lab, "through our master again");

    // Graceful stop: priority 0, keepalived takes over.
    let code = ours.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&ours.proc.output(), 20));
    wait(&mut ka, MASTER);
    ping_ok(&lab, "through keepalived after our stop");
    let pcap = cap.stop().unwrap();
    assert!(
        !tshark_fields(&pcap, "vrrp.prio == 0", &["frame.number"])
            .unwrap()
            .is_empty(),
        "no priority-0 advert from our agent on stop"
    );
    check_decodes(&pcap);
    assert!(
        !ka.proc.output().contains("received an invalid") && !ka.proc.output().contains("checksum"),
        "keepalived complained about our adverts:\n{}",
        tail(&ka.proc.output(), 30)
    );
}

#[test]
fn keepalived_master_agent_backup() {
    let lab = Lab::for_test("ib", 2);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(2, "", &dir.path().join("ours.pcap"))
        .unwrap();
    let mut ka = keepalived(&lab, 1, 200);
    wait(&mut ka, MASTER);
    let mut ours = AGENT.start(&lab, 2, 100, false);
    wait(&mut ours, BACKUP);
    // Stable: this sleep is the test's subject (we must stay BACKUP during it), not a wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ka.state().as_deref(), Some(MASTER));
    assert_eq!(
        ours.transitions(),
        vec![BACKUP.to_owned()],
        "our agent must stay BACKUP under keepalived (priority 200):\n{}",
        tail(&ours.proc.output(), 20)
    );
    ping_ok(&lab, "through keepalived");

    // Failover: keepalived's link is cut, we take over and answer ARP with the VMAC.
    lab.cut(1).unwrap();
    wait(&mut ours, MASTER);
    ping_ok(&lab, "through our agent after keepalived's link cut");
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);
    // keepalived comes back with the higher priority and preempts; we step down.
    lab.restore(1).unwrap();
    wait(&mut ka, MASTER);
    wait(&mut ours, BACKUP);
    ping_ok(&lab, "through keepalived again");

    // keepalived stops (priority 0): we take over.
    let _ = ka.stop(libc::SIGTERM, T);
    wait(&mut ours, MASTER);
    ping_ok(&lab, "through our agent after keepalived stopped");
    // Adverts of ours as the new Master (priority 100) are in the capture for check_decodes.
    let earlier = wait_until("a readable capture", T, || {
        cap.count("vrrp.prio == 100").ok()
    })
    .unwrap();
    cap.wait_frames("vrrp.prio == 100", earlier + 3, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let code = ours.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&ours.proc.output(), 20));
    let pcap = cap.stop().unwrap();
    check_decodes(&pcap);
}
