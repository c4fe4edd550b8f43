//! Sync groups end to end (issue 9): r1 (priority 200) and r2 (100) on the lab's LAN (see
//! `vrrp_integration_tests::lab`) each run two instances on eth0, `a` (VRID 51, VIP
//! 10.210.0.100) and `b` (VRID 52, VIP 10.210.0.101), from a TOML file. On r1, `a` tracks the
//! carrier of `trk0` with weight 0; `trk0` is a veth whose peer `trk1` is in r1's namespace
//! too, so setting `trk1` down takes `trk0`'s carrier (and puts `a` in FAULT) without touching
//! the LAN.
//!
//! With `a` and `b` in one `[[sync_group]]` (on both routers), `a` in FAULT takes `b` along:
//! both VIPs move to r2, and come back together when `trk1` is up again (preempt). The control
//! case, the same files without the group, moves only `a`'s VIP: `b` stays MASTER on r1 while
//! r2 watches its adverts, which shows that the group is what moves `b`.
//!
//! Where a VIP is, is read from the namespaces (`ip addr`), besides the state lines. Waits are
//! bounded; namespaces and processes are removed on drop, also when an assertion fails.
use std::{net::Ipv4Addr, path::Path, time::Duration};

use vrrp_integration_tests::{
    lab::{tail, Lab, Vr, BACKUP, FAULT, MASTER, PREFIX4, VIP4},
    wait_until,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const T: Duration = Duration::from_secs(15);
/// The two instances: name, VRID, VIP.
const A: (&str, u8, Ipv4Addr) = ("a", 51, VIP4);
const B: (&str, u8, Ipv4Addr) = ("b", 52, Ipv4Addr::new(10, 210, 0, 101));

/// The file of one router: instances `a` and `b` at `priority` with adverts every 0.1 s, `a`
/// tracking `track_a` (empty: nothing), and with `group` the sync group `g` of both.
fn config(priority: u8, track_a: &str, group: bool) -> String {
    let mut s = String::new();
    for (name, vrid, vip) in [A, B] {
        s += &format!(
            "[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
             priority = {priority}\nadvert_int = 0.1\nvips = [\"{vip}/{PREFIX4}\"]\n"
        );
        if name == A.0 && !track_a.is_empty() {
            s += &format!("track = [ {track_a} ]\n");
        }
        s += "\n";
    }
    if group {
        s += "[[sync_group]]\nname = \"g\"\ninstances = [\"a\", \"b\"]\n";
    }
    s
}

/// Waits (bounded) until `instance` of the agent `vr` is in `state`.
#[track_caller]
fn wait(vr: &mut Vr, instance: &str, state: &str) {
    vr.instance = instance.to_owned();
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

/// The states `instance` of `vr` entered, in order.
fn transitions(vr: &mut Vr, instance: &str) -> Vec<String> {
    vr.instance = instance.to_owned();
    vr.transitions()
}

fn has_vip(lab: &Lab, n: usize, vip: Ipv4Addr) -> bool {
    let out = lab
        .r(n)
        .ns
        .ip(&["-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {vip}/"))
}

/// Waits (bounded) until `vip` is on router `on`'s eth0 and not on the other router's.
#[track_caller]
fn wait_vip_on(lab: &Lab, vip: Ipv4Addr, on: usize) {
    let other = 3 - on;
    wait_until(&format!("{vip} on r{on} only"), T, || {
        (has_vip(lab, on, vip) && !has_vip(lab, other, vip)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// The lab with `trk0`/`trk1` in r1, and both agents running with both instances: r1 MASTER
/// of both, r2 BACKUP of both, each VIP on r1 only.
fn start(tag: &str, group: bool) -> (Lab, Vr, Vr) {
    let lab = Lab::for_test(tag, 2);
    let ns = &lab.r(1).ns;
    ns.ip(&[
        "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
    ])
    .unwrap();
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    ns.ip(&["link", "set", "trk1", "up"]).unwrap();
    let mut r1 = lab
        .agent_config(
            1,
            Path::new(BIN),
            &config(200, r#"{ interface = "trk0", weight = 0 }"#, group),
            A.0,
        )
        .unwrap_or_else(|e| panic!("r1: {e:#}"));
    let mut r2 = lab
        .agent_config(2, Path::new(BIN), &config(100, "", group), A.0)
        .unwrap_or_else(|e| panic!("r2: {e:#}"));
    for inst in [A.0, B.0] {
        wait(&mut r1, inst, MASTER);
        wait(&mut r2, inst, BACKUP);
    }
    wait_vip_on(&lab, A.2, 1);
    wait_vip_on(&lab, B.2, 1);
    (lab, r1, r2)
}

#[test]
fn tracked_interface_down_in_one_member_moves_both_vips() {
    let (lab, mut r1, mut r2) = start("sg-both", true);
    let ns = &lab.r(1).ns;
    ns.ip(&["link", "set", "trk1", "down"]).unwrap();
    // `a` goes FAULT on its tracker, `b` follows because of the group.
    wait(&mut r1, A.0, FAULT);
    wait(&mut r1, B.0, FAULT);
    wait(&mut r2, A.0, MASTER);
    wait(&mut r2, B.0, MASTER);
    wait_vip_on(&lab, A.2, 2);
    wait_vip_on(&lab, B.2, 2);
    let out = r1.proc.output();
    assert!(
        out.contains("instance b: state MASTER -> FAULT (sync_group)")
            && out.contains("sync group g: state MASTER -> FAULT"),
        "r1 has no sync-group line for b:\n{}",
        tail(&out, 30)
    );
    // The tracked interface back: r1 preempts with both instances, the VIPs come back.
    ns.ip(&["link", "set", "trk1", "up"]).unwrap();
    for inst in [A.0, B.0] {
        wait(&mut r1, inst, MASTER);
        wait(&mut r2, inst, BACKUP);
    }
    wait_vip_on(&lab, A.2, 1);
    wait_vip_on(&lab, B.2, 1);
}

#[test]
fn without_the_group_only_the_tracking_instance_moves() {
    let (lab, mut r1, mut r2) = start("sg-ctl", false);
    let b_r1 = transitions(&mut r1, B.0);
    let b_r2 = transitions(&mut r2, B.0);
    // r1's adverts for `b` from here on.
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "ip proto 112", &dir.path().join("r1.pcap"))
        .unwrap();
    lab.r(1).ns.ip(&["link", "set", "trk1", "down"]).unwrap();
    wait(&mut r1, A.0, FAULT);
    wait(&mut r2, A.0, MASTER);
    wait_vip_on(&lab, A.2, 2);
    // r1 goes on advertising `b` at 200 for over a second (more than three times r2's
    // Master_Down_Interval of about 0.36 s) after `a` moved: r2 had every chance to take `b`
    // over and did not, and r1 still holds its VIP.
    let before = cap
        .count("vrrp.virt_rtr_id == 52 && vrrp.prio == 200")
        .unwrap();
    cap.wait_frames("vrrp.virt_rtr_id == 52 && vrrp.prio == 200", before + 10, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        transitions(&mut r1, B.0),
        b_r1,
        "b moved on r1:\n{}",
        tail(&r1.proc.output(), 30)
    );
    assert_eq!(
        transitions(&mut r2, B.0),
        b_r2,
        "b moved on r2:\n{}",
        tail(&r2.proc.output(), 30)
    );
    wait_vip_on(&lab, B.2, 1);
    assert!(
        !r1.proc.output().contains("sync group"),
        "a sync-group line without a group:\n{}",
        tail(&r1.proc.output(), 30)
    );
}
