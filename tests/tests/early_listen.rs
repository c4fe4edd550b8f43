//! Cold start listening while the fast path loads (issue 10, `vrrp-agent/src/early_rx.rs`).
//!
//! The agent's test hook `VRRP_AGENT_TEST_LOAD_DELAY_MS` makes the load window (packet sockets
//! listening, nothing attached) far longer than a Master_Down_Interval, so that what the agent
//! heard during it is all that can keep it Backup at the attach:
//!
//! - a live master (priority 200, adverts every 10 ms) and a starting r2 (100) whose load takes
//!   600 ms (≈ 17 × its Master_Down_Interval of 36 ms): r2 stays BACKUP (no `-> MASTER`, no
//!   advert and no ARP reply for the VIP from it on the wire), reports the master's adverts heard
//!   during the load, and its core counted them: its accepted adverts fall short of the master's
//!   adverts on its link since it was spawned by at most the start before it listened (dropping
//!   what the sockets heard misses the ~60 adverts of the load window and fails here);
//! - alone, the agent claims only once its fast path is attached (its first advert after the
//!   load delay, `XDP attached` logged before `-> MASTER`), and, when the load is shorter than
//!   the Master_Down_Interval (1 s adverts: 3.61 s), not before Master_Down_Interval after it
//!   was spawned.
//!
//! Namespaces are removed on drop, also when an assertion fails.
use std::{path::Path, time::Duration};

use vrrp_integration_tests::{
    lab::{
        instance_name, tail, tshark_fields, vip_cidr, vmac4, vr_args, Lab, Vr, VrKind, BACKUP,
        IFACE, INIT, MASTER, VIP4,
    },
    prober::realtime_ns,
    Proc,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const VRID: u8 = 73;
const T: Duration = Duration::from_secs(10);
/// The load window of the tests that lengthen it.
const LOAD_DELAY_MS: u64 = 600;

/// Starts the agent on router `n` (priority, adverts every `advert_int` s) with its fast path
/// loaded `delay_ms` late (`None`: the test hook unset), debug logs of the start; returns once
/// it attached.
fn start(lab: &Lab, n: usize, priority: u8, advert_int: &str, delay_ms: Option<u64>) -> Vr {
    let node = lab.r(n);
    let mut cmd =
        vrrp_integration_tests::lab::Launch::IpNetnsExec.command(&node.ns, Path::new(BIN));
    cmd.args(["run", "--iface", &node.iface])
        .args(vr_args(VRID, priority, &vip_cidr(false), advert_int))
        .env("RUST_LOG", "info,vrrp_agent::supervisor=debug");
    match delay_ms {
        Some(ms) => cmd.env("VRRP_AGENT_TEST_LOAD_DELAY_MS", ms.to_string()),
        None => cmd.env_remove("VRRP_AGENT_TEST_LOAD_DELAY_MS"),
    };
    let mut proc = Proc::spawn(cmd, &format!("vrrp-agent on {}", node.name))
        .unwrap_or_else(|e| panic!("{e:#}"));
    proc.wait_for_line(Duration::from_secs(15) + T, |l| {
        l.contains(&format!("XDP attached to {IFACE}"))
    })
    .unwrap_or_else(|e| panic!("starting the agent on r{n}: {e:#}"));
    Vr {
        proc,
        kind: VrKind::Agent,
        instance: instance_name(VRID, false),
        node: node.name.clone(),
    }
}

/// How many adverts the agent says it heard while its fast path loaded (`None`: it did not
/// listen, the start fell back to plain Startup).
fn heard_while_loading(out: &str) -> Option<u64> {
    let l = out
        .lines()
        .find(|l| l.contains("advert(s) heard while the fast path loaded"))?;
    let before = &l[..l.find(" advert(s) heard")?];
    before.rsplit(' ').next()?.parse().ok()
}

/// The span the agent listened for (ms, to when it read its sockets) and the receive times of
/// the first and last advert heard, in ms after it began listening.
fn heard_span(out: &str) -> Option<(f64, f64, f64)> {
    let l = out
        .lines()
        .find(|l| l.contains("advert(s) heard while the fast path loaded"))?;
    let listened = l.split("listening since ").nth(1)?.split(' ').next()?;
    let span = l.split("(received ").nth(1)?;
    let mut w = span.split(' ');
    let first = w.next()?;
    let last = w.nth(1)?;
    Some((
        listened.parse().ok()?,
        first.parse().ok()?,
        last.parse().ok()?,
    ))
}

/// The instance's accepted adverts from its stop summary (`instance X: rx accepted=N ...`).
fn accepted(out: &str, instance: &str) -> Option<u64> {
    let prefix = format!("instance {instance}: rx accepted=");
    let l = out.lines().find(|l| l.contains(&prefix))?;
    let rest = &l[l.find(&prefix)? + prefix.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Receive times (realtime ns) of the frames of `pcap` matching `filter`.
fn times(pcap: &Path, filter: &str) -> Vec<u64> {
    tshark_fields(pcap, filter, &["frame.time_epoch"])
        .unwrap_or_else(|e| panic!("{e:#}"))
        .iter()
        .map(|f| (f[0].parse::<f64>().expect("frame.time_epoch") * 1e9) as u64)
        .collect()
}

#[track_caller]
fn line_index(out: &str, needle: &str) -> usize {
    out.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", tail(out, 40)))
}

#[test]
fn a_master_heard_while_the_fast_path_loads_keeps_the_start_backup() {
    let lab = Lab::for_test("earlyrx", 2);
    let mut r1 = start(&lab, 1, 200, "0.01", None);
    r1.wait_state(MASTER, T).unwrap_or_else(|e| panic!("{e:#}"));

    let dir = tempfile::tempdir().unwrap();
    // What r2 sends, and what reaches r2 (r1's adverts), on r2's bridge port.
    let sent = lab
        .capture_sent(2, "vrrp or arp", &dir.path().join("sent.pcap"))
        .unwrap();
    let r2_port = lab.r(2).port.clone();
    let to_r2 = lab
        .capture(
            &r2_port,
            Some("out"),
            "vrrp",
            &dir.path().join("to_r2.pcap"),
        )
        .unwrap();
    // The client asks for the VIP (ARP) every 5 ms throughout: r1 answers, r2 must not.
    let p = lab.client_prober(Duration::from_millis(5)).unwrap();
    let t_spawn = realtime_ns();
    let mut r2 = start(&lab, 2, 100, "0.01", Some(LOAD_DELAY_MS));
    r2.wait_state(BACKUP, T).unwrap_or_else(|e| panic!("{e:#}"));
    // Well past its Master_Down_Interval (36 ms) after the attach: a missed master shows now.
    std::thread::sleep(Duration::from_millis(500));
    let t_stop = realtime_ns();
    let code = r2
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = r2.proc.output();
    assert_eq!(code, Some(0), "r2 exit code:\n{}", tail(&out, 40));
    let trace = p.finish().unwrap();
    let sent = sent.stop().unwrap();
    let to_r2 = to_r2.stop().unwrap();

    // INIT: the stop.
    assert_eq!(
        r2.transitions(),
        vec![BACKUP.to_owned(), INIT.to_owned()],
        "r2 left BACKUP although r1 (priority 200) was master all along:\n{}",
        tail(&out, 40)
    );
    let from_r2 = tshark_fields(&sent, "vrrp", &["frame.number"]).unwrap();
    assert!(
        from_r2.is_empty(),
        "r2 sent {} advert(s) although r1 was master",
        from_r2.len()
    );
    let replies = tshark_fields(
        &sent,
        &format!("arp.opcode == 2 && arp.src.proto_ipv4 == {VIP4}"),
        &["frame.number"],
    )
    .unwrap();
    assert!(
        replies.is_empty(),
        "r2 answered {} ARP request(s) for the VIP as a backup",
        replies.len()
    );
    let r1_mac = vrrp_integration_tests::prober::parse_mac(&lab.r(1).mac).unwrap();
    let vmac = vrrp_integration_tests::prober::parse_mac(&vmac4(VRID)).unwrap();
    let answered = trace.arp_macs(t_spawn, t_stop);
    assert!(
        !answered.is_empty() && answered.iter().all(|m| *m == r1_mac || *m == vmac),
        "the client's ARP requests for the VIP while r2 started were answered by {:?}, not by \
         r1 alone",
        answered
            .iter()
            .map(vrrp_integration_tests::prober::fmt_mac)
            .collect::<Vec<_>>()
    );

    // What it heard during the load: ~60 adverts (10 ms apart for 600 ms).
    let heard = heard_while_loading(&out).unwrap_or_else(|| {
        panic!(
            "r2 did not listen while its fast path loaded (fell back to Startup):\n{}",
            tail(&out, 40)
        )
    });
    let window = LOAD_DELAY_MS / 10;
    assert!(
        heard >= window / 2,
        "r2 heard {heard} advert(s) during a {LOAD_DELAY_MS} ms load with r1 advertising every \
         10 ms:\n{}",
        tail(&out, 40)
    );
    // Received while it listened, by the kernel's clock turned into the agent's: from the start
    // of the window (r1 advertises every 10 ms) to its end (the load delay at least).
    let (listened, first, last) = heard_span(&out)
        .unwrap_or_else(|| panic!("no receive times in r2's log:\n{}", tail(&out, 40)));
    let half = (LOAD_DELAY_MS / 2) as f64;
    assert!(
        (-10.0..=half).contains(&first) && (half..=listened).contains(&last) && first <= last,
        "r2's adverts heard while loading are stamped {first:+.2} to {last:+.2} ms after it began \
         listening, which lasted {listened:.2} ms (load delayed {LOAD_DELAY_MS} ms): receive \
         times mis-converted:\n{}",
        tail(&out, 40)
    );
    // ... and its core counted them: every advert of r1 on r2's link since r2 was spawned, but
    // those before its sockets listened (process start: a few ms, bounded here by half the
    // load window; dropping what was heard during the load misses the whole window).
    let r1_ip = lab.r(1).ip4;
    let on_link = times(&to_r2, &format!("vrrp && ip.src == {r1_ip}"))
        .into_iter()
        .filter(|t| (t_spawn..t_stop).contains(t))
        .count() as u64;
    let got = accepted(&out, &r2.instance)
        .unwrap_or_else(|| panic!("no rx summary in r2's log:\n{}", tail(&out, 40)));
    println!(
        "r2: {heard} advert(s) heard while loading, {got} accepted in all, {on_link} of r1's on \
         its link between its spawn and its stop; ARP for the VIP answered by {} MAC(s), r1's",
        answered.len()
    );
    assert!(
        got + window / 2 >= on_link,
        "r2's core accepted {got} adverts, r1 sent {on_link} to it between r2's spawn and its \
         stop: the adverts heard while the fast path loaded did not reach the core:\n{}",
        tail(&out, 40)
    );
}

/// r1 alone on the LAN (priority 100, adverts every `advert_int` s, the load delayed by
/// `delay` ms): it listened and heard nothing, went BACKUP then MASTER only after its fast path
/// was attached. Returns when its first advert left, in ms after its spawn.
fn alone(tag: &str, advert_int: &str, delay: Option<u64>) -> f64 {
    let lab = Lab::for_test(tag, 1);
    let dir = tempfile::tempdir().unwrap();
    let sent = lab
        .capture_sent(1, "vrrp", &dir.path().join("sent.pcap"))
        .unwrap();
    let t_spawn = realtime_ns();
    let mut r1 = start(&lab, 1, 100, advert_int, delay);
    r1.wait_state(MASTER, T).unwrap_or_else(|e| panic!("{e:#}"));
    std::thread::sleep(Duration::from_millis(50));
    let out = r1.proc.output();
    let sent = sent.stop().unwrap();

    assert_eq!(
        r1.transitions(),
        vec![BACKUP.to_owned(), MASTER.to_owned()],
        "{}",
        tail(&out, 40)
    );
    assert_eq!(
        heard_while_loading(&out),
        Some(0),
        "alone on the LAN, r1 should have listened and heard nothing:\n{}",
        tail(&out, 40)
    );
    assert!(
        line_index(&out, &format!("XDP attached to {IFACE}"))
            < line_index(&out, "BACKUP -> MASTER"),
        "r1 claimed before its fast path was attached:\n{}",
        tail(&out, 40)
    );
    let first = *times(&sent, "vrrp")
        .first()
        .unwrap_or_else(|| panic!("no advert from r1 on the wire:\n{}", tail(&out, 40)));
    (first.saturating_sub(t_spawn)) as f64 / 1e6
}

#[test]
fn alone_it_claims_only_after_its_fast_path_is_attached() {
    // Master_Down_Interval 36 ms, load window 600 ms: the attach comes far later.
    let after_ms = alone("earlyrx-alone", "0.01", Some(LOAD_DELAY_MS));
    println!("r1: first advert {after_ms:.1} ms after its spawn (load delayed {LOAD_DELAY_MS} ms)");
    assert!(
        after_ms >= LOAD_DELAY_MS as f64,
        "r1's first advert left {after_ms:.1} ms after its spawn, before its fast path (loaded \
         {LOAD_DELAY_MS} ms late) was attached"
    );
}

#[test]
fn alone_it_claims_master_down_interval_after_it_began_listening() {
    // 1 s adverts, priority 100: Master_Down_Interval = 3 s + (256 - 100) / 256 s, far longer
    // than the load: the claim waits for it, counted from when the sockets listened.
    let mdi_ms = 3000.0 + (256.0 - 100.0) * 1000.0 / 256.0;
    let after_ms = alone("earlyrx-mdi", "1", None);
    println!(
        "r1: first advert {after_ms:.1} ms after its spawn (Master_Down_Interval {mdi_ms:.1} ms)"
    );
    // The sockets listened after the spawn, so the claim is at least this late.
    assert!(
        after_ms >= mdi_ms,
        "r1 claimed {after_ms:.1} ms after its spawn, before a Master_Down_Interval \
         ({mdi_ms:.1} ms) of silence"
    );
}
