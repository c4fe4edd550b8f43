//! An advert flood that fills the agent's ring buffer gives a handful of rate-limited WARN lines
//! with counts, not a line per lost advert (issue 7, item 7).
//!
//! Lab: one router r1 running the agent as BACKUP (VRID 51, priority 100) and the client. The
//! agent is stopped (SIGSTOP) so that nobody drains its ring, the client floods valid adverts of
//! VRID 51 (priority 200, so the agent stays BACKUP), the agent continues, and the client floods
//! again while it runs. The XDP program keeps running while the agent is stopped; every advert
//! that finds the ring full is counted in the kernel (`ringbuf_full`).
use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use vrrp_agent::wire::{self, AdvertFrame, Auth, ChecksumOpts, VrrpRepr};
use vrrp_integration_tests::{
    lab::{tail, Lab, LabAgent, BACKUP, IFACE, VIP4},
    send_frames,
};

const VRID: u8 = 51;
/// The agent on r1 (the lab's IPv4 VIP, 1 s adverts).
const AGENT: LabAgent = LabAgent::new(env!("CARGO_BIN_EXE_vrrp-agent-dut"), VRID, "1");
const T: Duration = Duration::from_secs(10);
/// Adverts per flood burst (the ring holds about two thousand).
const BURST: u32 = 20_000;

/// `interface eth0: N ...VRRP adverts lost...` lines and their counts.
fn lost_lines(out: &str) -> Vec<(String, u64)> {
    let prefix = format!("interface {IFACE}: ");
    out.lines()
        .filter(|l| l.contains("VRRP adverts lost"))
        .map(|l| {
            let rest = &l[l.find(&prefix).expect("interface named") + prefix.len()..];
            let n = rest
                .split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no count in {l:?}"));
            (l.to_owned(), n)
        })
        .collect()
}

#[test]
fn advert_flood_gives_a_few_counted_warnings_not_one_per_advert() {
    let lab = Lab::for_test("ovf", 1);
    let mut r1 = AGENT.start(&lab, 1, 100, false);
    r1.wait_state(BACKUP, T).unwrap_or_else(|e| panic!("{e:#}"));

    let repr = VrrpRepr {
        version: wire::Version::V3,
        vrid: VRID,
        priority: 200,
        max_advert_int: 100,
        auth: Auth::None,
        addrs: vec![IpAddr::V4(VIP4)],
    };
    let frame = AdvertFrame::multicast(repr, IpAddr::V4(lab.client.ip4))
        .to_bytes(ChecksumOpts::default())
        .unwrap();
    let flood = || {
        lab.client
            .ns
            .run_in(|| send_frames(IFACE, &frame, BURST, Duration::ZERO))
            .unwrap_or_else(|e| panic!("flood: {e:#}"))
    };

    // Nobody drains the ring while the agent is stopped.
    r1.signal(libc::SIGSTOP);
    let sent = flood();
    r1.signal(libc::SIGCONT);
    // The agent reads the counter at most once a second: the first warning comes within ~1 s.
    r1.proc
        .wait_for_line(T, |l| l.contains("VRRP adverts lost"))
        .unwrap_or_else(|e| panic!("no overflow warning: {e:#}"));
    // More while it runs (it may or may not keep up); within the 10 s rate limit.
    let t = Instant::now();
    let sent2 = flood();
    eprintln!(
        "flooded {sent} adverts while stopped, {sent2} while running ({:?})",
        t.elapsed()
    );

    let code = r1
        .stop(libc::SIGTERM, T)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = r1.proc.output();
    assert_eq!(code, Some(0), "{}", tail(&out, 30));
    let full = r1
        .counter("ringbuf_full")
        .unwrap_or_else(|| panic!("no ringbuf_full counter:\n{}", tail(&out, 10)));
    let lines = lost_lines(&out);
    eprintln!("ringbuf_full={full}; warnings:");
    for (l, _) in &lines {
        eprintln!("  {l}");
    }
    assert!(
        full >= 1000,
        "the flood did not fill the ring ({full} overflows):\n{}",
        tail(&out, 20)
    );
    // One line at the first read after the overflow, at most one more per 10 s, one at the stop.
    assert!(
        (1..=4).contains(&lines.len()),
        "{} overflow lines for {full} lost adverts:\n{}",
        lines.len(),
        tail(&out, 40)
    );
    assert_eq!(
        lines.iter().map(|(_, n)| n).sum::<u64>(),
        full,
        "the warnings account for every lost advert exactly once"
    );
    assert!(
        out.lines().count() < 100,
        "log lines per frame? {} lines:\n{}",
        out.lines().count(),
        tail(&out, 40)
    );
    assert_eq!(r1.transitions().first().map(String::as_str), Some(BACKUP));
    assert!(
        !r1.transitions().iter().any(|s| s == "MASTER"),
        "the flood of priority-200 adverts keeps it BACKUP: {:?}",
        r1.transitions()
    );
}
