//! Interop with FRR's vrrpd (Debian's `frr` package) on one LAN, VRRPv3 over IPv4 and over
//! IPv6, both ways round: our agent master with FRR backup, and the reverse; election, link
//! cut, return with preempt and graceful stop, both ways. FRR runs its own `zebra` + `vrrpd` in
//! the router's namespace and owns the virtual MAC through a macvlan ([`Lab::frr`]; for IPv6
//! one with a random link-local, FRR's advert source). The scenarios are common/interop.rs's;
//! this file says how FRR starts and what its log must show: it took our priority-0 advert and
//! complained about none of ours.
//!
//! Namespaces are unique per test and removed on drop, also when an assertion fails. FRR
//! missing fails the test (`cargo xtask setup --test-peers` installs it).
#[path = "common/interop.rs"]
mod interop;

use interop::Peer;
use vrrp_integration_tests::lab::{tail, FrrVr, Lab, Vr};

const VRID: u8 = 53;
fn frr(lab: &Lab, n: usize, priority: u8, v6: bool) -> Vr {
    let conf = FrrVr {
        vrid: VRID,
        priority,
        advert_ms: 100,
        preempt: true,
        v6,
    };
    lab.frr(n, &conf)
        .unwrap_or_else(|e| panic!("starting FRR vrrpd on r{n}: {e:#}"))
}

/// The source address of our adverts from r1: its IPv4 address, or the link-local of its
/// interface for IPv6.
fn our_source(lab: &Lab, v6: bool) -> String {
    let r1 = lab.r(1);
    if !v6 {
        return r1.ip4.to_string();
    }
    let out = r1
        .ns
        .ip(&[
            "-6", "-br", "addr", "show", "dev", &r1.iface, "scope", "link",
        ])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| {
            w.strip_prefix("fe80:")
                .map(|_| w.split('/').next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no link-local on r1's {}: {text}", r1.iface))
}

/// FRR (with `debug vrrp`) logs every advert it accepts, our priority-0 one included; any
/// other line about a checksum, a discard or a malformed packet is a complaint. Its own view
/// (`show vrrp VRID json`, after our stop): Master of the family, our adverts received and our
/// interval learnt; for IPv6 its source the macvlan's own link-local, not the VMAC's EUI-64
/// one; the other family never started.
fn check_log(lab: &Lab, fr: &Vr, v6: bool) {
    let view = fr.frr_show(VRID).unwrap_or_else(|e| panic!("{e:#}"));
    let (fam, other) = if v6 { ("v6", "v4") } else { ("v4", "v6") };
    let f = &view[fam];
    assert_eq!(f["status"], "Master", "FRR's view: {view:#}");
    assert!(
        f["stats"]["adverRx"].as_u64().is_some_and(|n| n > 0),
        "FRR received none of our adverts: {view:#}"
    );
    assert_eq!(f["masterAdverInterval"], 100, "FRR's view: {view:#}");
    assert_eq!(view[other]["status"], "Initialize", "FRR's view: {view:#}");
    if v6 {
        let primary = f["primaryAddress"].as_str().unwrap_or("");
        let eui64 = format!("fe80::200:5eff:fe00:2{VRID:02x}");
        assert!(
            primary.starts_with("fe80:") && primary != eui64,
            "FRR's IPv6 advert source must be the macvlan's random link-local: {view:#}"
        );
    }
    let out = fr.proc.output();
    let accepted = format!(
        "Received VRRP Advertisement from {}: version 3",
        our_source(lab, v6)
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

const FRR4: Peer = Peer {
    name: "FRR",
    v6: false,
    vrid: VRID,
    start: &|lab, n, prio| frr(lab, n, prio, false),
    check_log: &|lab, fr| check_log(lab, fr, false),
};

const FRR6: Peer = Peer {
    name: "FRR",
    v6: true,
    vrid: VRID,
    start: &|lab, n, prio| frr(lab, n, prio, true),
    check_log: &|lab, fr| check_log(lab, fr, true),
};

#[test]
fn agent_master_frr_backup() {
    interop::agent_master_peer_backup("fa", &FRR4);
}

#[test]
fn frr_master_agent_backup() {
    interop::peer_master_agent_backup("fb", &FRR4);
}

#[test]
fn agent_master_frr_backup_ipv6() {
    interop::agent_master_peer_backup("fa6", &FRR6);
}

#[test]
fn frr_master_agent_backup_ipv6() {
    interop::peer_master_agent_backup("fb6", &FRR6);
}
