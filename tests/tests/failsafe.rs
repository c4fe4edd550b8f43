//! The fail-safe however the agent is started (issue 7), and one agent per interface.
//!
//! For each way a user can start the agent — `ip netns exec` (the lab's default), setns only
//! (`nsenter --net`, what systemd's `NetworkNamespacePath=` does: the host's mount namespace and
//! `/sys`, where this host has an `eth0` of its own), a container without the host's bpffs and a
//! container with a "host" bpffs bind-mounted in — r1 (priority 200) is elected master over r2,
//! SIGKILLed, and once past its fail-safe bound:
//!
//! - the client's ARP / NS for the VIP is answered by r2 only, with the VMAC;
//! - pings to the VIP go through r2, and r1 answers none;
//! - r1's kernel, which still has the VIP, sends from it (a service still bound to it): none of
//!   its ARP / NS from the VIP leaves r1, and the client's neighbour entry stays the VMAC.
//!
//! Before the kill, pings to the VIP go through r1 (a MAC read from the host's `/sys` would
//! make r1 drop them under `nsenter --net`). A second agent on a live agent's interface is
//! refused with one line and leaves the first running; `--require-failsafe` refuses to start
//! where the egress classifier cannot outlive the agent.
//!
//! Namespaces are removed on drop, and the one bpffs a test mounts is unmounted, also when an
//! assertion fails.
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use vrrp_integration_tests::{
    kernel::{self, Feature},
    lab::{
        pcap_summary, tail, tshark_fields, vip, vip_cidr, vmac4, vmac6, vr_args, BpffsMount,
        Capture, Lab, LabAgent, Launch, Vr, BACKUP, MASTER, VIP4, VIP6,
    },
    prober::{fmt_mac, ns_query, parse_mac},
    Proc,
};

const VRID: u8 = 51;
const ADV: &str = "0.1";
/// The agent on r1/r2 (the lab's VIP; r1's `launch` varies per test).
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), VRID, ADV);
const T: Duration = Duration::from_secs(10);
/// r1's fail-safe bound — its Master_Down_Interval at priority 200 and 0.1 s adverts,
/// 3 × 0.1 + (256 − 200) / 256 × 0.1 ≈ 0.322 s — plus a generous margin.
const PAST_BOUND: Duration = Duration::from_millis(322 + 1000);

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

fn capture(lab: &Lab, dir: &tempfile::TempDir, n: usize, filter: &str) -> Capture {
    lab.capture_sent(n, filter, &dir.path().join(format!("r{n}.pcap")))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn frames(pcap: &Path, filter: &str) -> usize {
    tshark_fields(pcap, filter, &["frame.number"])
        .unwrap_or_else(|e| panic!("{e:#}"))
        .len()
}

/// The MACs the client's ARP (IPv4) or NS (IPv6) for the VIP gets back, lower case.
fn client_asks(lab: &Lab, v6: bool, tries: u32) -> Vec<String> {
    if !v6 {
        return lab.client_arp(VIP4, tries).unwrap();
    }
    let c = &lab.client;
    let mac = parse_mac(&c.mac).unwrap();
    let ip6 = c.ip6;
    let iface = c.iface.clone();
    c.ns.run_in(move || ns_query(&iface, ip6, mac, VIP6, tries, Duration::from_millis(20)))
        .unwrap()
        .iter()
        .map(fmt_mac)
        .collect()
}

/// tshark filters: (echo replies from the VIP, ARP/ND from or about the VIP, answers for the
/// VIP with the VMAC).
fn filters(v6: bool) -> (String, String, String) {
    if v6 {
        (
            format!("icmpv6.type == 129 && ipv6.src == {VIP6}"),
            format!(
                "icmpv6.type >= 133 && icmpv6.type <= 136 && (ipv6.src == {VIP6} || \
                 icmpv6.nd.na.target_address == {VIP6})"
            ),
            format!(
                "icmpv6.type == 136 && icmpv6.nd.na.target_address == {VIP6} && \
                 icmpv6.opt.linkaddr == {}",
                vmac6(VRID)
            ),
        )
    } else {
        (
            format!("icmp.type == 0 && ip.src == {VIP4}"),
            format!("arp.src.proto_ipv4 == {VIP4}"),
            format!(
                "arp.opcode == 2 && arp.src.proto_ipv4 == {VIP4} && arp.src.hw_mac == {}",
                vmac4(VRID)
            ),
        )
    }
}

/// r1 (started `launch`) master over r2, SIGKILLed; the assertions of the module docs.
fn sigkill_master(tag: &str, launch: Launch, v6: bool) {
    let lab = Lab::for_test(tag, 2);
    let vmac = if v6 { vmac6(VRID) } else { vmac4(VRID) };
    let mut r1 = LabAgent {
        launch: launch.clone(),
        ..AGENT
    }
    .start(&lab, 1, 200, v6);
    let mut r2 = AGENT.start(&lab, 2, 100, v6);
    wait(&mut r1, MASTER);
    wait(&mut r2, BACKUP);
    let out = r1.proc.output();
    assert!(
        out.contains(
            "eth0: fail-safe holds: XDP and the egress classifier are attached via netlink"
        ),
        "r1 does not say the fail-safe holds:\n{}",
        tail(&out, 20)
    );
    let (echo, neigh_from_vip, vmac_answer) = filters(v6);

    // Before the kill: the VIP is reachable through r1.
    let dir = tempfile::tempdir().unwrap();
    let cap1 = capture(&lab, &dir, 1, "icmp or icmp6");
    let pinged = lab.client_ping(vip(v6), 5);
    let p1 = cap1.stop().unwrap();
    assert!(
        pinged && frames(&p1, &echo) >= 1,
        "before the kill, pings to the VIP must go through the master r1 ({launch:?}; r1 eth0 is \
         {}); r1 sent:\n{}",
        lab.r(1).mac,
        pcap_summary(&p1, "")
    );

    r1.signal(libc::SIGKILL);
    let _ = r1.stop(libc::SIGKILL, T);
    let killed = Instant::now();
    wait(&mut r2, MASTER);
    if let Some(rest) = PAST_BOUND.checked_sub(killed.elapsed()) {
        std::thread::sleep(rest);
    }

    let dir = tempfile::tempdir().unwrap();
    let cap1 = capture(&lab, &dir, 1, "arp or icmp or icmp6");
    let cap2 = capture(&lab, &dir, 2, "arp or icmp6");
    let macs = client_asks(&lab, v6, 20);
    let pinged = lab.client_ping(vip(v6), 5);
    // r1's kernel sends from the VIP, which is still on its interface.
    let r1n = lab.r(1);
    let _ = r1n.ns.ip(&["neigh", "flush", "dev", "eth0"]);
    let (fam, client_ip) = if v6 {
        ("-6", lab.client.ip6.to_string())
    } else {
        ("-4", lab.client.ip4.to_string())
    };
    let _ = r1n
        .ns
        .cmd("ping")
        .args([fam, "-n", "-q", "-c", "2", "-i", "0.2", "-w", "2", "-I"])
        .arg(vip(v6).to_string())
        .arg(&client_ip)
        .stdin(std::process::Stdio::null())
        .output();
    let neigh = lab.client_neigh(vip(v6)).unwrap();
    let p1 = cap1.stop().unwrap();
    let p2 = cap2.stop().unwrap();

    let leaked = frames(&p1, &neigh_from_vip);
    assert_eq!(
        leaked,
        0,
        "the SIGKILLed r1 ({launch:?}) sent {leaked} ARP/ND frames from or about the VIP {:?} \
         after the kill (its eth0 is {}):\n{}",
        killed.elapsed(),
        r1n.mac,
        pcap_summary(&p1, &neigh_from_vip)
    );
    assert_eq!(
        frames(&p1, &echo),
        0,
        "the SIGKILLed r1 answered pings to the VIP:\n{}",
        pcap_summary(&p1, &echo)
    );
    assert_eq!(
        macs,
        vec![vmac.clone()],
        "the client's queries for the VIP must be answered with the VMAC only (r1 eth0 is {})",
        r1n.mac
    );
    assert!(pinged, "no ping through r2 after the kill");
    assert!(
        frames(&p2, &vmac_answer) >= 1,
        "r2 (MASTER) did not answer for the VIP with the VMAC:\n{}",
        pcap_summary(&p2, "")
    );
    let (mac, state) = neigh.expect("the client has a neighbour entry for the VIP");
    assert_eq!(
        mac, vmac,
        "the client's neighbour entry for the VIP ({state}) left the VMAC"
    );
}

#[test]
fn sigkill_master_started_with_ip_netns_exec() {
    sigkill_master("fs-exec", Launch::IpNetnsExec, false);
}

#[test]
fn sigkill_master_started_setns_only_like_systemd() {
    sigkill_master("fs-nsenter", Launch::NsenterNet, false);
}

#[test]
fn sigkill_ipv6_master_started_setns_only() {
    sigkill_master("fs-nsenter6", Launch::NsenterNet, true);
}

#[test]
fn sigkill_master_in_a_container_without_the_hosts_bpffs() {
    sigkill_master("fs-ctr", Launch::Container { host_bpffs: None }, false);
}

#[test]
fn sigkill_master_in_a_container_with_a_host_bpffs() {
    let host = BpffsMount::new().unwrap_or_else(|e| panic!("mounting a bpffs: {e:#}"));
    let dir: PathBuf = host.path().to_owned();
    sigkill_master(
        "fs-ctrb",
        Launch::Container {
            host_bpffs: Some(dir),
        },
        false,
    );
    drop(host);
}

/// Runs `bin run --iface eth0 ARGS` on router `n` and waits (bounded) for it to exit; returns
/// its exit code and output.
fn run_to_exit(lab: &Lab, n: usize, args: &[&str]) -> (Option<i32>, String) {
    let node = lab.r(n);
    let mut cmd = Launch::IpNetnsExec.command(&node.ns, Path::new(AGENT.bin));
    cmd.args(["run", "--iface", &node.iface])
        .args(args)
        .env("RUST_LOG", "info");
    let mut p = Proc::spawn(cmd, "vrrp-agent").unwrap();
    let deadline = Instant::now() + T;
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            return (status.code(), p.output());
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not exit within {T:?}:\n{}",
            tail(&p.output(), 20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn error_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("error:")).collect()
}

#[test]
fn a_second_agent_on_a_live_agents_interface_refuses_and_the_first_keeps_running() {
    let lab = Lab::for_test("fs-two", 2);
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r1, MASTER);
    wait(&mut r2, BACKUP);
    let r1_prog = lab
        .r(1)
        .ns
        .run_in(|| Ok(vrrp_agent::rtnl::iface_facts("eth0")?.xdp.skb))
        .unwrap();
    assert!(r1_prog.is_some());

    // Another virtual router on the same interface, as a separate agent with a control socket
    // of its own (with the same one it is refused for the socket first: operations.rs).
    let own_socket = std::env::temp_dir().join(format!(
        "vrrp-agent-tests/fs-two-second-{}.sock",
        std::process::id()
    ));
    let mut args = vr_args(52, 150, "10.210.0.200/24", ADV);
    args.extend(["--control-socket".into(), own_socket.display().to_string()]);
    let (code, out) = run_to_exit(
        &lab,
        1,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let _ = std::fs::remove_file(&own_socket);
    assert_ne!(code, Some(0), "the second agent must fail:\n{out}");
    assert_eq!(
        error_lines(&out),
        vec![format!(
            "error: eth0 is already run by vrrp-agent (pid {}); stop it first, or put both \
             virtual routers in one configuration",
            r1.proc.child.id()
        )],
        "one clear line:\n{out}"
    );
    assert!(!out.contains("XDP attached"), "{out}");

    // The first runs on: its program, its adverts (r2 stays backup well past its
    // Master_Down_Interval of 0.36 s), the VIP through it.
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(&lab, &dir, 1, "vrrp");
    std::thread::sleep(Duration::from_millis(1500));
    let pcap = cap.stop().unwrap();
    assert!(
        frames(&pcap, &format!("vrrp.virt_rtr_id == {VRID}")) >= 10,
        "r1's adverts stopped:\n{}",
        pcap_summary(&pcap, "")
    );
    assert_eq!(
        lab.r(1)
            .ns
            .run_in(|| Ok(vrrp_agent::rtnl::iface_facts("eth0")?.xdp.skb))
            .unwrap(),
        r1_prog,
        "r1's XDP program was replaced"
    );
    assert_eq!(r1.transitions(), vec![BACKUP.to_owned(), MASTER.to_owned()]);
    assert_eq!(r2.transitions(), vec![BACKUP.to_owned()], "r2 took over");
    assert!(lab.client_ping(IpAddr::V4(VIP4), 3), "no ping through r1");
    assert_eq!(lab.client_arp(VIP4, 5).unwrap(), vec![vmac4(VRID)]);
    let code = r1.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&r1.proc.output(), 20));
}

#[test]
fn require_failsafe_refuses_to_start_where_the_egress_classifier_would_die_with_the_agent() {
    let lab = Lab::for_test("fs-req", 2);
    // An ingress qdisc where clsact goes: no egress filter can be added (as on a kernel without
    // sch_clsact), only a TCX link.
    vrrp_integration_tests::run(
        lab.r(1)
            .ns
            .cmd("tc")
            .args(["qdisc", "add", "dev", "eth0", "ingress"]),
    )
    .unwrap();
    let args = vr_args(VRID, 200, &vip_cidr(false), ADV);
    let mut strict: Vec<&str> = args.iter().map(String::as_str).collect();
    strict.push("--require-failsafe");
    let (code, out) = run_to_exit(&lab, 1, &strict);
    assert_ne!(code, Some(0), "{out}");
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "one line:\n{out}");
    assert!(
        errors[0].starts_with("error: eth0: fail-safe incomplete: ")
            && errors[0].ends_with("refusing to start because require_failsafe is set"),
        "{}",
        errors[0]
    );
    assert_eq!(
        lab.r(1)
            .ns
            .run_in(|| Ok(vrrp_agent::rtnl::iface_facts("eth0")?.xdp.skb))
            .unwrap(),
        None,
        "nothing left attached"
    );
    // Without the switch it runs on a TCX link (Linux >= 6.6), and says so in one line at start.
    if kernel::lacks(
        Feature::Tcx,
        "require_failsafe_refuses_to_start_where_the_egress_classifier_would_die_with_the_agent \
         (the part without the switch)",
    ) {
        return;
    }
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    wait(&mut r1, MASTER);
    let out = r1.proc.output();
    assert_eq!(
        out.matches("fail-safe incomplete").count(),
        1,
        "{}",
        tail(&out, 20)
    );
    assert!(!out.contains("fail-safe holds"), "{}", tail(&out, 20));
}
