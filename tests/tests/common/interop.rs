//! The interop scenarios shared by the keepalived and FRR tests (interop_keepalived.rs,
//! interop_frr.rs): our agent and one peer implementation on one LAN, both ways round, over
//! IPv4 or IPv6. A [`Peer`] says how to start the peer and what its log must not say; the
//! scenario steps (election, link cut, return with preempt, graceful stop) and their checks
//! live here once. Every frame our agent's router sends is captured on its bridge port and
//! must decode in `tshark -V` with no "Malformed" and no error-level expert info, VRRP
//! checksums good, version 3.
#![allow(dead_code)]

use std::{path::Path, time::Duration};

use vrrp_integration_tests::{
    lab::{
        pcap_summary, tail, tshark_fields, vip, vmac4, vmac6, Capture, Lab, LabAgent, Launch, Vr,
        BACKUP, MASTER, VIP4, VIP6,
    },
    prober::{fmt_mac, ns_query, parse_mac},
    run, wait_until,
};

/// Bound of every wait of a scenario.
pub const T: Duration = Duration::from_secs(10);

/// The other VRRP implementation of a scenario, on the same VRID as our agent.
pub struct Peer<'a> {
    /// How the messages name it (`keepalived`, `FRR`).
    pub name: &'a str,
    /// The lab's VIP of which family both sides run.
    pub v6: bool,
    /// The VRID of both sides.
    pub vrid: u8,
    /// Starts the peer on router `n` at a priority, with preempt, adverts every 100 ms.
    pub start: &'a dyn Fn(&Lab, usize, u8) -> Vr,
    /// Checks the peer's log after our graceful stop: it took our priority-0 advert and did
    /// not complain about any of ours.
    pub check_log: &'a dyn Fn(&Lab, &Vr),
}

/// Our agent on `vrid`: the lab's VIP of the scenario's family, VRRPv3, adverts every 100 ms.
pub const fn agent(vrid: u8) -> LabAgent<'static> {
    LabAgent {
        bin: env!("CARGO_BIN_EXE_vrrp-agent-dut"),
        vrid,
        advert_int: "0.1",
        extra: &["--version", "3"],
        launch: Launch::IpNetnsExec,
    }
}

#[track_caller]
pub fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

impl Peer<'_> {
    fn start(&self, lab: &Lab, n: usize, priority: u8) -> Vr {
        (self.start)(lab, n, priority)
    }

    fn ping_ok(&self, lab: &Lab, what: &str) {
        assert!(
            lab.client_ping_until(vip(self.v6), T),
            "client cannot ping the VIP {} {what}",
            vip(self.v6)
        );
    }

    /// The MACs the client's ARP (IPv4) or Neighbor Solicitation (IPv6) for the VIP gets back,
    /// lower case, distinct.
    fn client_asks(&self, lab: &Lab) -> Vec<String> {
        if !self.v6 {
            return lab.client_arp(VIP4, 5).unwrap();
        }
        let c = &lab.client;
        let mac = parse_mac(&c.mac).unwrap();
        let (ip6, iface) = (c.ip6, c.iface.clone());
        c.ns.run_in(move || ns_query(&iface, ip6, mac, VIP6, 5, Duration::from_millis(20)))
            .unwrap()
            .iter()
            .map(fmt_mac)
            .collect()
    }

    /// Only the virtual MAC of the family answers for the VIP.
    #[track_caller]
    fn assert_vmac_answers(&self, lab: &Lab, what: &str) {
        let vmac = if self.v6 {
            vmac6(self.vrid)
        } else {
            vmac4(self.vrid)
        };
        assert_eq!(
            self.client_asks(lab),
            vec![vmac],
            "who answers for the VIP {what}"
        );
    }
}

/// A two-router lab (`tag` in its namespaces names) and a capture of what router `ours` sends,
/// into a directory that lives as long as the returned one.
fn lab_capturing(tag: &str, ours: usize) -> (Lab, tempfile::TempDir, Capture) {
    let lab = Lab::for_test(tag, 2);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(ours, "", &dir.path().join("ours.pcap"))
        .unwrap();
    (lab, dir, cap)
}

/// Our agent Master (priority 200) on r1, the peer Backup (100) on r2: election, our link cut
/// (the peer takes over) and back (we preempt), then our graceful stop (our priority-0 advert,
/// the peer takes over). `tag` names the lab's namespaces.
pub fn agent_master_peer_backup(tag: &str, peer: &Peer) {
    let (lab, _dir, cap) = lab_capturing(tag, 1);
    let mut ours = agent(peer.vrid).start(&lab, 1, 200, peer.v6);
    let mut other = peer.start(&lab, 2, 100);
    wait(&mut ours, MASTER);
    wait(&mut other, BACKUP);
    // Stable: this sleep is the test's subject (neither may move during it), not a wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ours.transitions(),
        vec![BACKUP.to_owned(), MASTER.to_owned()],
        "{}",
        tail(&ours.proc.output(), 20)
    );
    assert_eq!(
        other.state().as_deref(),
        Some(BACKUP),
        "{} must stay Backup under our master (priority 200):\n{}",
        peer.name,
        tail(&other.proc.output(), 30)
    );
    peer.assert_vmac_answers(&lab, "under our master");
    peer.ping_ok(&lab, "through our master");

    // Link cut: the peer takes over; back, we preempt (priority 200 > 100) and it steps down.
    lab.cut(1).unwrap();
    wait(&mut other, MASTER);
    peer.ping_ok(&lab, &format!("through {} after our link cut", peer.name));
    lab.restore(1).unwrap();
    wait(&mut ours, MASTER);
    wait(&mut other, BACKUP);
    peer.ping_ok(&lab, "through our master again");
    peer.assert_vmac_answers(&lab, "under our master again");

    // Graceful stop: our priority-0 advert, the peer takes over.
    let code = ours.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&ours.proc.output(), 20));
    wait(&mut other, MASTER);
    peer.ping_ok(&lab, &format!("through {} after our stop", peer.name));
    let pcap = cap.stop().unwrap();
    assert!(
        !tshark_fields(&pcap, "vrrp.prio == 0", &["frame.number"])
            .unwrap()
            .is_empty(),
        "no priority-0 advert from our agent on stop"
    );
    check_decodes(&pcap);
    (peer.check_log)(&lab, &other);
}

/// The peer Master (priority 200) on r1, our agent Backup (100) on r2: election, the peer's
/// link cut (we take over) and back (it preempts, we step down), then the peer's stop (we take
/// over).
pub fn peer_master_agent_backup(tag: &str, peer: &Peer) {
    let (lab, _dir, cap) = lab_capturing(tag, 2);
    let mut other = peer.start(&lab, 1, 200);
    wait(&mut other, MASTER);
    let mut ours = agent(peer.vrid).start(&lab, 2, 100, peer.v6);
    wait(&mut ours, BACKUP);
    // Stable: this sleep is the test's subject (we must stay BACKUP during it), not a wait.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(other.state().as_deref(), Some(MASTER));
    assert_eq!(
        ours.transitions(),
        vec![BACKUP.to_owned()],
        "our agent must stay BACKUP under {} (priority 200):\n{}",
        peer.name,
        tail(&ours.proc.output(), 20)
    );
    peer.ping_ok(&lab, &format!("through {}", peer.name));

    // Link cut: we take over and answer ARP / NS with the VMAC.
    lab.cut(1).unwrap();
    wait(&mut ours, MASTER);
    peer.ping_ok(
        &lab,
        &format!("through our agent after {}'s link cut", peer.name),
    );
    peer.assert_vmac_answers(&lab, "under our agent after the peer's link cut");
    // The peer comes back with the higher priority and preempts; we step down.
    lab.restore(1).unwrap();
    wait(&mut other, MASTER);
    wait(&mut ours, BACKUP);
    peer.ping_ok(&lab, &format!("through {} again", peer.name));

    // The peer stops: we take over.
    let _ = other.stop(libc::SIGTERM, T);
    wait(&mut ours, MASTER);
    peer.ping_ok(
        &lab,
        &format!("through our agent after {} stopped", peer.name),
    );
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

/// Every frame in `pcap` (what our agent's router sent) decodes cleanly, its VRRP adverts are
/// VRRPv3 with good checksums; returns how many adverts it holds.
pub fn check_decodes(pcap: &Path) -> usize {
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
