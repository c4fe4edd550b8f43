//! Live reload (issue 10): `vrrp-agent reload` on the control socket of r1 (priority 200,
//! master) with r2 (100, backup) on a namespace LAN, each agent run from its own TOML file.
//! - a VIP added to the master's file appears on r1, answers ARP with the VMAC, no instance
//!   of either router changes state and the client's ping (every 2 ms) loses nothing; the VIP
//!   guard covers it (removed behind the agent's back, it is put back);
//! - a broken file is refused with `FILE:LINE: ...` and the old configuration keeps running;
//! - a removed instance hands over with a priority-0 advert and r2 takes its VIP.
use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;
use vrrp_integration_tests::{
    lab::{tail, tshark_fields, vmac4, Lab, Vr, VrKind, BACKUP, MASTER, PREFIX4, VIP4},
    prober::realtime_ns,
    Netns, Proc,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const T: Duration = Duration::from_secs(10);
/// The VIP a reload adds to vr1.
const VIP_NEW: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 102);
/// vr2's VIP.
const VIP2: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 101);
const VRID1: u8 = 71;
const VRID2: u8 = 72;

/// `[[instance]]` vr1 (VIPs `vips`) at `priority`, and vr2 with it if `with_vr2`.
fn toml(priority: u8, vips: &[Ipv4Addr], with_vr2: bool) -> String {
    let vips: Vec<String> = vips.iter().map(|v| format!("\"{v}/{PREFIX4}\"")).collect();
    let mut s = format!(
        "[[instance]]\nname = \"vr1\"\ninterface = \"eth0\"\nvrid = {VRID1}\n\
         priority = {priority}\nadvert_int = 0.1\nvips = [{}]\n",
        vips.join(", ")
    );
    if with_vr2 {
        s.push_str(&format!(
            "\n[[instance]]\nname = \"vr2\"\ninterface = \"eth0\"\nvrid = {VRID2}\n\
             priority = {priority}\nadvert_int = 0.1\nvips = [\"{VIP2}/{PREFIX4}\"]\n"
        ));
    }
    s
}

/// An agent of router `n` run from a file this test rewrites.
struct Agent {
    vr: Vr,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(lab: &Lab, n: usize, config: &str) -> Agent {
    start_env(lab, n, config, None)
}

/// [`start`] with `NOTIFY_SOCKET` set to `notify` (systemd's notification socket).
fn start_env(lab: &Lab, n: usize, config: &str, notify: Option<&std::path::Path>) -> Agent {
    let node = lab.r(n);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vrrp-agent.toml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = node.ns.cmd(BIN);
    cmd.arg("run")
        .arg("--config")
        .arg(&file)
        .arg("--control-socket")
        .arg(node.ns.control_socket())
        .env("RUST_LOG", "info");
    match notify {
        Some(p) => cmd.env("NOTIFY_SOCKET", p),
        None => cmd.env_remove("NOTIFY_SOCKET"),
    };
    let mut proc = Proc::spawn(cmd, &format!("vrrp-agent on {}", node.name)).unwrap();
    proc.wait_for_line(T, |l| l.contains("XDP attached to eth0"))
        .unwrap();
    Agent {
        vr: Vr {
            proc,
            kind: VrKind::Agent,
            instance: "vr1".into(),
            node: node.name.clone(),
        },
        file,
        _dir: dir,
    }
}

/// `vrrp-agent reload` in `ns`, on its control socket.
fn reload(ns: &Netns) -> std::process::Output {
    ns.cmd(BIN)
        .arg("reload")
        .arg("--control-socket")
        .arg(ns.control_socket())
        .output()
        .expect("running vrrp-agent reload")
}

/// Every state line (`instance X: state A -> B`) of an agent's log so far.
fn state_lines(a: &Agent) -> Vec<String> {
    a.vr.proc
        .output()
        .lines()
        .filter(|l| l.contains("instance ") && l.contains(": state "))
        .map(String::from)
        .collect()
}

/// The addresses on eth0 of router `n`.
fn has_addr(lab: &Lab, n: usize, ip: Ipv4Addr) -> bool {
    let out = lab
        .r(n)
        .ns
        .ip(&["-o", "addr", "show", "dev", "eth0"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {ip}/"))
}

fn wait_addr(lab: &Lab, n: usize, ip: Ipv4Addr, present: bool) {
    let deadline = Instant::now() + T;
    while has_addr(lab, n, ip) != present {
        assert!(
            Instant::now() < deadline,
            "r{n}: {ip} {} within {T:?}",
            if present { "not added" } else { "not removed" }
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// vr1's entry of `status --json` in `ns`.
fn status_vr1(ns: &Netns) -> Value {
    let out = ns
        .cmd(BIN)
        .args(["status", "--json", "--control-socket"])
        .arg(ns.control_socket())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "vr1")
        .cloned()
        .expect("vr1 in status")
}

fn elect(lab: &Lab, with_vr2: bool) -> (Agent, Agent) {
    let mut r1 = start(lab, 1, &toml(200, &[VIP4], with_vr2));
    let mut r2 = start(lab, 2, &toml(100, &[VIP4], with_vr2));
    r1.vr.wait_state(MASTER, T).unwrap();
    r2.vr.wait_state(BACKUP, T).unwrap();
    (r1, r2)
}

#[test]
fn reload_adds_a_vip_without_a_flap_or_a_lost_ping() {
    let lab = Lab::for_test("rlvip", 2);
    let (r1, r2) = elect(&lab, false);
    let p = lab.client_prober(Duration::from_millis(2)).unwrap();
    p.wait_replies(50, T).unwrap();
    let (before1, before2) = (state_lines(&r1), state_lines(&r2));

    std::fs::write(&r1.file, toml(200, &[VIP4, VIP_NEW], false)).unwrap();
    let t_reload = realtime_ns();
    let out = reload(&lab.r(1).ns);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        said.trim(),
        "reloaded: added -; removed -; changed vr1; unchanged -"
    );
    wait_addr(&lab, 1, VIP_NEW, true);
    assert_eq!(
        lab.client_arp(VIP_NEW, 10).unwrap(),
        vec![vmac4(VRID1)],
        "the new VIP must answer ARP with the VMAC"
    );
    // Traffic to the first VIP goes on: as many replies again, then a look at the trace.
    let n = p
        .live
        .icmp_replies
        .load(std::sync::atomic::Ordering::Relaxed);
    p.wait_replies(n + 200, T).unwrap();
    // Ten adverts' time for a late flap to show.
    std::thread::sleep(Duration::from_secs(1));
    let end = realtime_ns();
    let trace = p.finish().unwrap();
    let lost = trace.icmp_sent - trace.icmp.len() as u64;
    let g = trace.icmp_gap(t_reload, end).expect("echo replies");
    println!(
        "reload: {} echo requests, {lost} unanswered, longest gap across the reload {:.1} ms",
        trace.icmp_sent,
        g.ms()
    );
    // The last request may still be in flight when the prober stops.
    assert!(lost <= 1, "the client lost {lost} pings across the reload");
    assert_eq!(
        state_lines(&r1),
        before1,
        "r1 changed state:\n{}",
        tail(&r1.vr.proc.output(), 30)
    );
    assert_eq!(
        state_lines(&r2),
        before2,
        "r2 changed state:\n{}",
        tail(&r2.vr.proc.output(), 30)
    );
    assert!(has_addr(&lab, 1, VIP4) && !has_addr(&lab, 2, VIP_NEW));
    assert!(
        r1.vr.proc.output().contains(&format!(
            "instance vr1: reload added {VIP_NEW}/{PREFIX4} on eth0"
        )),
        "{}",
        tail(&r1.vr.proc.output(), 20)
    );
    // The VIP guard covers the VIP the reload added: removed behind the agent's back, it is
    // put back.
    let mut r1 = r1;
    lab.r(1)
        .ns
        .ip(&[
            "addr",
            "del",
            &format!("{VIP_NEW}/{PREFIX4}"),
            "dev",
            "eth0",
        ])
        .unwrap();
    r1.vr
        .proc
        .wait_for_line(T, |l| {
            l.contains("WARN")
                && l.contains(&format!("VIP {VIP_NEW}/{PREFIX4} was removed from eth0"))
        })
        .unwrap();
    wait_addr(&lab, 1, VIP_NEW, true);
    assert_eq!(state_lines(&r1), before1);
}

#[test]
fn reload_of_a_broken_file_keeps_the_running_configuration() {
    let lab = Lab::for_test("rlbad", 2);
    // r1 under a stand-in for systemd: its notifications on a datagram socket of ours (a
    // path: reachable from r1's namespace).
    let dir = tempfile::tempdir().unwrap();
    let nsock = dir.path().join("notify");
    let sd = std::os::unix::net::UnixDatagram::bind(&nsock).unwrap();
    sd.set_read_timeout(Some(T)).unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = sd.recv(&mut buf).expect("a systemd notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut r1 = start_env(&lab, 1, &toml(200, &[VIP4], false), Some(&nsock));
    let mut r2 = start(&lab, 2, &toml(100, &[VIP4], false));
    r1.vr.wait_state(MASTER, T).unwrap();
    r2.vr.wait_state(BACKUP, T).unwrap();
    assert_eq!(next(), "READY=1\n");
    let before = (state_lines(&r1), state_lines(&r2));
    let good = std::fs::read_to_string(&r1.file).unwrap();
    // Line 4: a VRID out of range.
    std::fs::write(
        &r1.file,
        good.replace(&format!("vrid = {VRID1}"), "vrid = 300"),
    )
    .unwrap();
    let sent = status_vr1(&lab.r(1).ns)["adverts_sent"].as_u64().unwrap();
    let out = reload(&lab.r(1).ns);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let n = next();
    assert!(n.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{n:?}");
    assert_eq!(next(), "READY=1\n", "READY again after a refused reload");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let want = format!("{}:4:", r1.file.display());
    assert!(
        err.contains("reload failed, the running configuration is kept") && err.contains(&want),
        "{err}"
    );
    // The raw reply over the socket: ok false, the same error.
    let v = vrrp_agent::control::request_raw(
        &lab.r(1).ns.control_socket(),
        &serde_json::json!({"cmd": "reload"}),
    );
    // (the test process is in the root namespace, but the socket is a file: reachable)
    let v = v.unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with(&want), "{v}");
    // Still MASTER, adverts go on, the old VIP stays; no state line anywhere.
    std::thread::sleep(Duration::from_millis(500));
    let s = status_vr1(&lab.r(1).ns);
    assert_eq!(s["state"], "MASTER", "{s}");
    assert_eq!(s["vrid"], VRID1, "{s}");
    assert!(
        s["adverts_sent"].as_u64().unwrap() >= sent + 3,
        "{s} (before {sent})"
    );
    assert!(has_addr(&lab, 1, VIP4));
    assert_eq!((state_lines(&r1), state_lines(&r2)), before);
    assert!(r1
        .vr
        .proc
        .output()
        .contains("reload failed, the running configuration is kept"));
    // (the direct request above was a reload too)
    assert!(next().starts_with("RELOADING=1\n"));
    assert_eq!(next(), "READY=1\n");
    r1.vr.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(next(), "STOPPING=1\n");
}

#[test]
fn reload_removing_an_instance_hands_it_over_with_priority_zero() {
    let lab = Lab::for_test("rlrm", 2);
    let (mut r1, r2) = elect(&lab, true);
    r1.vr
        .proc
        .wait_for_line(T, |l| l.contains("instance vr2: state BACKUP -> MASTER"))
        .unwrap();
    let mut r2 = r2;
    r2.vr
        .proc
        .wait_for_line(T, |l| l.contains("instance vr2: state INIT -> BACKUP"))
        .unwrap();
    wait_addr(&lab, 1, VIP2, true);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "ip proto 112", &dir.path().join("r1.pcap"))
        .unwrap();
    let before1 = state_lines(&r1).len();

    std::fs::write(&r1.file, toml(200, &[VIP4], false)).unwrap();
    let out = reload(&lab.r(1).ns);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "reloaded: added -; removed vr2; changed -; unchanged vr1"
    );
    r2.vr
        .proc
        .wait_for_line(T, |l| l.contains("instance vr2: state BACKUP -> MASTER"))
        .unwrap();
    wait_addr(&lab, 2, VIP2, true);
    wait_addr(&lab, 1, VIP2, false);
    let pcap = cap.stop().unwrap();
    let zero = tshark_fields(
        &pcap,
        &format!("vrrp.virt_rtr_id == {VRID2} && vrrp.prio == 0"),
        &["frame.number"],
    )
    .unwrap();
    assert!(!zero.is_empty(), "no priority-0 advert for vr2 from r1");
    assert!(
        lab.client_ping_until(IpAddr::V4(VIP2), T),
        "VIP2 unreachable after the handover"
    );
    // vr1 did not move: r1 logged nothing after the reload but vr2's own lines.
    let after: Vec<String> = state_lines(&r1).split_off(before1);
    assert!(
        after.iter().all(|l| l.contains("instance vr2:")),
        "{after:?}"
    );
    assert_eq!(r1.vr.state().as_deref(), Some(MASTER));
}
