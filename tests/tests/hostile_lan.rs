//! A hostile LAN (issue 7 items 5-7): agents on r1 (priority 200, master) and r2 (100, backup)
//! of the namespace lab, and the client namespace as a spoofing host that sends adverts it
//! crafts with the project's own codec (`vrrp_agent::wire`) through an AF_PACKET socket.
//!
//! - A flood of priority-254 adverts with Max Adver Int 0 moves no state on either router.
//! - Adverts from the master's own address, from 0.0.0.0 / ::, to the master's unicast address
//!   (no unicast peers configured) or, for IPv6, from a global source do not demote the master,
//!   in both families.
//! - Under a 1 kpps flood of lower-priority adverts, the master's adverts on the wire (a
//!   tcpdump capture of its bridge port) never come three within one advert interval, and with
//!   `--lower-prio-no-advert` never two.
//!
//! Every test also checks, from the counters the agent prints when it stops, that the spoofed
//! adverts did reach it and were dropped for the expected reason (so none of these can pass
//! because the frames got lost). Bounds are protocol facts with generous slack for a loaded
//! 2-core machine, not timings.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use vrrp_agent::wire::{
    self, AdvertFrame, Auth, ChecksumOpts, IpPair, MacAddr, RxFrame, VrrpPacket, VrrpRepr,
};
use vrrp_integration_tests::{
    lab::{tail, tshark_fields, Lab, LabAgent, Node, Vr, BACKUP, MASTER, VIP4, VIP6},
    prober::parse_mac,
    send_frames,
};

const VRID: u8 = 51;
/// Advert interval (s) of the routers.
const ADV: &str = "0.1";
/// The agent on r1/r2 (the lab's VIP).
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), VRID, ADV);
const ADV_INTERVAL: Duration = Duration::from_millis(100);
const T: Duration = Duration::from_secs(10);

/// r1 (priority 200, `r1_extra` arguments) MASTER, r2 (100) BACKUP.
fn elect(lab: &Lab, v6: bool, r1_extra: &[&str]) -> (Vr, Vr) {
    let mut r1 = LabAgent {
        extra: r1_extra,
        ..AGENT
    }
    .start(lab, 1, 200, v6);
    let mut r2 = AGENT.start(lab, 2, 100, v6);
    r1.wait_state(MASTER, T).unwrap_or_else(|e| panic!("{e:#}"));
    r2.wait_state(BACKUP, T).unwrap_or_else(|e| panic!("{e:#}"));
    (r1, r2)
}

/// The IPv6 link-local address of a node's interface.
fn link_local(node: &Node) -> Ipv6Addr {
    let out = node
        .ns
        .ip(&[
            "-6",
            "-br",
            "addr",
            "show",
            "dev",
            &node.iface,
            "scope",
            "link",
        ])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.split('/').next()?.parse::<Ipv6Addr>().ok())
        .unwrap_or_else(|| panic!("{}: no link-local address in {text:?}", node.name))
}

fn mac(node: &Node) -> MacAddr {
    MacAddr(parse_mac(&node.mac).unwrap())
}

/// A VRRPv3 advert for the lab's VRID from the client's MAC: `src` → `dst` (the VRRP group when
/// `None`), with `priority` and Max Adver Int `interval_cs` (0 included, which the codec refuses
/// to emit: the field is patched and the checksum fixed with the codec's helper).
fn spoof_frame(
    lab: &Lab,
    src: IpAddr,
    dst: Option<(IpAddr, MacAddr)>,
    priority: u8,
    interval_cs: u16,
) -> Vec<u8> {
    let vip = match src {
        IpAddr::V4(_) => IpAddr::V4(VIP4),
        IpAddr::V6(_) => IpAddr::V6(VIP6),
    };
    let repr = VrrpRepr {
        version: wire::Version::V3,
        vrid: VRID,
        priority,
        max_advert_int: interval_cs.max(1),
        auth: Auth::None,
        addrs: vec![vip],
    };
    let mut f = match dst {
        None => AdvertFrame::multicast(repr, src),
        Some((ip, mac)) => AdvertFrame::unicast(repr, src, ip, mac),
    };
    f.eth_src = mac(&lab.client);
    let mut frame = f.to_bytes(ChecksumOpts::default()).unwrap();
    if interval_cs == 0 {
        let rx = RxFrame::parse(&frame).unwrap();
        let ip: IpPair = rx.ip();
        let off = frame.len() - rx.payload.len();
        let mut p = VrrpPacket::new_unchecked(&mut frame[off..]);
        p.set_v3_max_advert_int(0);
        p.fill_checksum(&ip, ChecksumOpts::default());
    }
    frame
}

/// The client sends `frame` `count` times, `gap` apart, on its interface.
fn spoof(lab: &Lab, frame: &[u8], count: u32, gap: Duration) {
    let c = &lab.client;
    let sent =
        c.ns.run_in(|| send_frames(&c.iface, frame, count, gap))
            .unwrap_or_else(|e| panic!("spoofing from the client: {e:#}"));
    assert_eq!(sent, count);
}

/// Clean stop; the instance's receive counters from its `instance NAME: rx accepted=N ...` line.
fn stop_rx(vr: &mut Vr) -> HashMap<String, u64> {
    let code = vr
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = vr.proc.output();
    assert_eq!(code, Some(0), "agent exit code:\n{}", tail(&out, 30));
    let prefix = format!("instance {}: rx ", vr.instance);
    let line = out
        .lines()
        .rev()
        .find_map(|l| Some(&l[l.find(&prefix)? + prefix.len()..]))
        .unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", tail(&out, 20)));
    line.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// `counters[name]` is at least `min` (the spoofed adverts reached the agent and were counted).
#[track_caller]
/// Asserts that `vr` logged no transition beyond `before`.
fn unmoved(vr: &Vr, before: &[String]) {
    assert_eq!(
        vr.transitions(),
        before,
        "{} moved:\n{}",
        vr.node,
        tail(&vr.proc.output(), 20)
    );
}

fn at_least(who: &str, counters: &HashMap<String, u64>, name: &str, min: u64) {
    let n = counters.get(name).copied().unwrap_or(0);
    assert!(
        n >= min,
        "{who}: {name}={n}, expected >= {min}; counters {counters:?}"
    );
}

#[test]
fn interval_zero_flood_moves_no_state() {
    let lab = Lab::for_test("hzero", 2);
    let (mut r1, mut r2) = elect(&lab, false, &[]);
    let (t1, t2) = (r1.transitions(), r2.transitions());
    // What one host did to every router: priority 254, Max Adver Int 0; here every 20 ms for
    // 2.5 s.
    let src = IpAddr::V4(lab.client.ip4);
    let frame = spoof_frame(&lab, src, None, 254, 0);
    let sent = 125;
    spoof(&lab, &frame, sent, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(300));
    unmoved(&r1, &t1);
    unmoved(&r2, &t2);
    let (c1, c2) = (stop_rx(&mut r1), stop_rx(&mut r2));
    at_least("r1", &c1, "zero_advert_interval", u64::from(sent) / 2);
    at_least("r2", &c2, "zero_advert_interval", u64::from(sent) / 2);
}

/// Spoofs from the master's own address, from the unspecified address, to the master's
/// unicast address without peers configured (and, for IPv6, from a global address): none
/// demotes r1, and each is counted under its own name.
fn spoofed_adverts_do_not_demote_the_master(v6: bool) {
    let lab = Lab::for_test(if v6 { "hspoof6" } else { "hspoof4" }, 2);
    let (mut r1, mut r2) = elect(&lab, v6, &[]);
    let (t1, t2) = (r1.transitions(), r2.transitions());
    let r1_mac = mac(lab.r(1));
    let (r1_src, unspecified, client, r1_unicast) = if v6 {
        let r1_ll = IpAddr::V6(link_local(lab.r(1)));
        (
            r1_ll,
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(link_local(&lab.client)),
            r1_ll,
        )
    } else {
        let r1_ip = IpAddr::V4(lab.r(1).ip4);
        (
            r1_ip,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(lab.client.ip4),
            r1_ip,
        )
    };
    let mut cases = vec![
        ("own_address", spoof_frame(&lab, r1_src, None, 254, 10)),
        (
            "invalid_source",
            spoof_frame(&lab, unspecified, None, 254, 10),
        ),
        (
            "unicast_without_peers",
            spoof_frame(&lab, client, Some((r1_unicast, r1_mac)), 254, 10),
        ),
    ];
    if v6 {
        let global = IpAddr::V6(lab.client.ip6);
        cases.push((
            "ipv6_source_not_link_local",
            spoof_frame(&lab, global, None, 254, 10),
        ));
    }
    let sent = 50;
    for (name, frame) in &cases {
        spoof(&lab, frame, sent, Duration::from_millis(20));
        assert_eq!(
            r1.state().as_deref(),
            Some(MASTER),
            "{name}: r1 demoted:\n{}",
            tail(&r1.proc.output(), 20)
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    unmoved(&r1, &t1);
    unmoved(&r2, &t2);
    let c1 = stop_rx(&mut r1);
    stop_rx(&mut r2);
    for (name, _) in &cases {
        at_least("r1", &c1, name, u64::from(sent) / 2);
    }
}

#[test]
fn spoofed_adverts_do_not_demote_the_master_v4() {
    spoofed_adverts_do_not_demote_the_master(false);
}

#[test]
fn spoofed_adverts_do_not_demote_the_master_v6() {
    spoofed_adverts_do_not_demote_the_master(true);
}

/// A 1 kpps flood of priority-50 adverts from the client while r1 is master. Returns the
/// wire times of r1's adverts during the flood and r1's receive counters.
fn flood_and_capture(r1_extra: &[&str], tag: &str) -> (Vec<Duration>, HashMap<String, u64>) {
    let lab = Lab::for_test(tag, 2);
    let (mut r1, mut r2) = elect(&lab, false, r1_extra);
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "vrrp", &dir.path().join("r1.pcap"))
        .unwrap();
    let frame = spoof_frame(&lab, IpAddr::V4(lab.client.ip4), None, 50, 10);
    let sent = 2000;
    spoof(&lab, &frame, sent, Duration::from_millis(1));
    let pcap = cap.stop().unwrap();
    assert_eq!(r1.state().as_deref(), Some(MASTER));
    assert_eq!(r2.state().as_deref(), Some(BACKUP));
    let c1 = stop_rx(&mut r1);
    stop_rx(&mut r2);
    // The flood reached r1 and was accepted (a valid lower-priority advert).
    at_least("r1", &c1, "accepted", u64::from(sent) / 2);
    let times: Vec<Duration> =
        tshark_fields(&pcap, "vrrp && ip.src == 10.210.0.1", &["frame.time_epoch"])
            .unwrap()
            .iter()
            .map(|f| Duration::from_secs_f64(f[0].parse().unwrap()))
            .collect();
    (times, c1)
}

/// The smallest span of `k + 1` consecutive adverts.
fn min_span(times: &[Duration], k: usize) -> Duration {
    times
        .windows(k + 1)
        .map(|w| w[k].saturating_sub(w[0]))
        .min()
        .unwrap_or(Duration::MAX)
}

/// Wire timestamps jitter a little on a loaded machine; every bound below keeps 20 % of an
/// interval of slack (an unbounded master answers each of the 1000 adverts a second, 1 ms
/// apart).
const SLACK: Duration = Duration::from_millis(20);

#[test]
fn lower_priority_flood_gets_at_most_two_adverts_per_interval() {
    let (times, _) = flood_and_capture(&[], "hflood");
    // At least the regular adverts of the ~2 s the flood lasts.
    assert!(times.len() >= 10, "{} adverts from r1", times.len());
    let span = min_span(&times, 2);
    println!(
        "{} adverts from r1 during the flood; the closest three within {span:?}",
        times.len()
    );
    assert!(
        span + SLACK >= ADV_INTERVAL,
        "three adverts from r1 within {span:?} (advert interval {ADV_INTERVAL:?}); {} adverts",
        times.len()
    );
}

#[test]
fn lower_priority_flood_with_lower_prio_no_advert_gets_one_advert_per_interval() {
    let (times, _) = flood_and_capture(&["--lower-prio-no-advert"], "hquiet");
    assert!(times.len() >= 10, "{} adverts from r1", times.len());
    let gap = min_span(&times, 1);
    println!(
        "{} adverts from r1 during the flood; the closest two {gap:?} apart",
        times.len()
    );
    assert!(
        gap + SLACK >= ADV_INTERVAL,
        "two adverts from r1 {gap:?} apart (advert interval {ADV_INTERVAL:?})"
    );
}
