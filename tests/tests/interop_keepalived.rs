//! Interop with keepalived (Debian's package) on one LAN, VRRPv3 IPv4, both ways round: our
//! agent master with keepalived backup, and the reverse; election and failover (link cut,
//! graceful stop, return) both ways. The scenarios are common/interop.rs's; this file says how
//! keepalived starts and what its log must not say.
//!
//! Namespaces are unique per test and removed on drop, also when an assertion fails.
#[path = "common/interop.rs"]
mod interop;

use interop::Peer;
use vrrp_integration_tests::lab::{keepalived_conf, tail, vip_cidr, Lab, Vr};

const VRID: u8 = 52;
fn keepalived(lab: &Lab, n: usize, prio: u8) -> Vr {
    let vip = vip_cidr(false);
    lab.keepalived(
        n,
        &keepalived_conf("KA", VRID, prio, "0.1", &[&vip], ""),
        "KA",
    )
    .unwrap_or_else(|e| panic!("starting keepalived on r{n}: {e:#}"))
}

/// keepalived did not call any of our adverts invalid or a checksum bad.
fn check_log(_: &Lab, ka: &Vr) {
    let out = ka.proc.output();
    assert!(
        !out.contains("received an invalid") && !out.contains("checksum"),
        "keepalived complained about our adverts:\n{}",
        tail(&out, 30)
    );
}

const KEEPALIVED: Peer = Peer {
    name: "keepalived",
    v6: false,
    vrid: VRID,
    start: &keepalived,
    check_log: &check_log,
};

#[test]
fn agent_master_keepalived_backup() {
    interop::agent_master_peer_backup("ia", &KEEPALIVED);
}

#[test]
fn keepalived_master_agent_backup() {
    interop::peer_master_agent_backup("ib", &KEEPALIVED);
}
