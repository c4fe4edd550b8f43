//! Interop with FRR's vrrpd (Debian's `frr` package) on one LAN, VRRPv3 IPv4, both ways round:
//! our agent master with FRR backup, and the reverse; election, link cut, return with preempt
//! and graceful stop, both ways. FRR runs its own `zebra` + `vrrpd` in the router's namespace
//! and owns the virtual MAC through a macvlan ([`Lab::frr`]). Every VRRP frame our agent sends
//! is captured on its bridge port and must be VRRPv3 with a good checksum in tshark.
//!
//! Namespaces are unique per test and removed on drop, also when an assertion fails. FRR
//! missing fails the test (`cargo xtask setup --test-peers` installs it).
use std::{net::IpAddr, path::Path, time::Duration};

use vrrp_integration_tests::{
    lab::{
        pcap_summary, tail, tshark_fields, vmac4, FrrVr, Lab, LabAgent, Launch, Vr, BACKUP, MASTER,
        VIP4,
    },
    wait_until,
};

const VRID: u8 = 53;
/// Our agent (the lab's IPv4 VIP, VRRPv3, adverts every 100 ms).
const AGENT: LabAgent = LabAgent {
    bin: env!("CARGO_BIN_EXE_vrrp-agent-dut"),
    vrid: VRID,
    advert_int: "0.1",
    extra: &["--version", "3"],
    launch: Launch::IpNetnsExec,
};
const T: Duration = Duration::from_secs(10);

fn frr(lab: &Lab, n: usize, priority: u8) -> Vr {
    let conf = FrrVr {
        vrid: VRID,
        priority,
        advert_ms: 100,
        preempt: true,
    };
    lab.frr(n, &conf)
        .unwrap_or_else(|e| panic!("starting FRR vrrpd on r{n}: {e:#}"))
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

/// Our adverts in `pcap` are VRRPv3 with good checksums and no malformed frame; returns how
/// many there are.
fn check_adverts(pcap: &Path) -> usize {
    let bad = tshark_fields(pcap, "_ws.malformed", &["frame.number"]).unwrap();
    assert!(
        bad.is_empty(),
        "malformed frames from our router: {bad:?}\n{}",
        pcap_summary(pcap, "")
    );
    let vrrp = tshark_fields(pcap, "vrrp", &["vrrp.checksum.status", "vrrp.version"]).unwrap();
    assert!(!vrrp.is_empty(), "no VRRP advert from our router");
    for f in &vrrp {
        assert_eq!(f[0], "1", "VRRP checksum status (1 = good) of {f:?}");
        assert_eq!(f[1], "3", "VRRP version of {f:?}");
    }
    vrrp.len()
}

#[test]
fn agent_master_frr_backup() {
    let lab = Lab::for_test("fa", 2);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "", &dir.path().join("ours.pcap"))
        .unwrap();
    let mut ours = AGENT.start(&lab, 1, 200, false);
    wait(&mut ours, MASTER);
    let mut fr = frr(&lab, 2, 100);
    wait(&mut fr, BACKUP);
    // Stable: this sleep is the test's subject (neither may move during it), not a wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ours.transitions(),
        vec![BACKUP.to_owned(), MASTER.to_owned()],
        "{}",
        tail(&ours.proc.output(), 20)
    );
    assert_eq!(
        fr.state().as_deref(),
        Some(BACKUP),
        "FRR must stay Backup under our master (priority 200):\n{}",
        tail(&fr.proc.output(), 30)
    );
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);
    ping_ok(&lab, "through our master");

    // Link cut: FRR takes over; back, we preempt (priority 200 > 100) and FRR steps down.
    lab.cut(1).unwrap();
    wait(&mut fr, MASTER);
    ping_ok(&lab, "through FRR after our link cut");
    lab.restore(1).unwrap();
    wait(&mut ours, MASTER);
    wait(&mut fr, BACKUP);
    ping_ok(&lab, "through our master again");
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);

    // Graceful stop: our priority-0 advert, FRR takes over.
    let code = ours.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&ours.proc.output(), 20));
    wait(&mut fr, MASTER);
    ping_ok(&lab, "through FRR after our stop");
    let pcap = cap.stop().unwrap();
    assert!(
        !tshark_fields(&pcap, "vrrp.prio == 0", &["frame.number"])
            .unwrap()
            .is_empty(),
        "no priority-0 advert from our agent on stop"
    );
    let n = check_adverts(&pcap);
    println!("{n} VRRP adverts from our agent decode cleanly");
    // FRR (with `debug vrrp`) logs every advert it accepts, our priority-0 one included;
    // any other line about a checksum, a discard or a malformed packet is a complaint.
    let out = fr.proc.output();
    let accepted = format!(
        "Received VRRP Advertisement from {}: version 3",
        lab.r(1).ip4
    );
    assert!(
        out.lines()
            .any(|l| l.contains(&accepted) && l.contains("priority 0,")),
        "FRR did not accept our priority-0 advert:\n{}",
        tail(&out, 40)
    );
    let complaints: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("Received VRRP Advertisement"))
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("checksum") || l.contains("discard") || l.contains("malformed")
        })
        .collect();
    assert!(
        complaints.is_empty(),
        "FRR complained about our adverts:\n{}",
        complaints.join("\n")
    );
}

#[test]
fn frr_master_agent_backup() {
    let lab = Lab::for_test("fb", 2);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(2, "", &dir.path().join("ours.pcap"))
        .unwrap();
    let mut fr = frr(&lab, 1, 200);
    wait(&mut fr, MASTER);
    let mut ours = AGENT.start(&lab, 2, 100, false);
    wait(&mut ours, BACKUP);
    // Stable: this sleep is the test's subject (we must stay BACKUP during it), not a wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fr.state().as_deref(), Some(MASTER));
    assert_eq!(
        ours.transitions(),
        vec![BACKUP.to_owned()],
        "our agent must stay BACKUP under FRR (priority 200):\n{}",
        tail(&ours.proc.output(), 20)
    );
    ping_ok(&lab, "through FRR");

    // Link cut: we take over and answer ARP with the VMAC.
    lab.cut(1).unwrap();
    wait(&mut ours, MASTER);
    ping_ok(&lab, "through our agent after FRR's link cut");
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);
    // FRR comes back with the higher priority and preempts; we step down.
    lab.restore(1).unwrap();
    wait(&mut fr, MASTER);
    wait(&mut ours, BACKUP);
    ping_ok(&lab, "through FRR again");

    // FRR stops: we take over.
    let _ = fr.stop(libc::SIGTERM, T);
    wait(&mut ours, MASTER);
    ping_ok(&lab, "through our agent after FRR stopped");
    let earlier = wait_until("a readable capture", T, || {
        cap.count("vrrp.prio == 100").ok()
    })
    .unwrap();
    cap.wait_frames("vrrp.prio == 100", earlier + 3, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let code = ours.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&ours.proc.output(), 20));
    let pcap = cap.stop().unwrap();
    let n = check_adverts(&pcap);
    println!("{n} VRRP adverts from our agent decode cleanly");
}
