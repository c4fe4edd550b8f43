//! `vrrp-lab bench-failover` and `vrrp-lab demo`: the failover lab measured from the client.
use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_integration_tests::{
    lab::{
        instance_name, keepalived_conf, sibling_agent_bin, vip_cidr, vmac4, vr_args, Lab, Vr,
        BACKUP, MASTER, VIP4,
    },
    percentile,
    prober::{fmt_mac, realtime_ns, Prober, Trace},
    require_root,
};

use crate::report::{summary, Report};

const VRID: u8 = 51;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// vrrp-agent on both routers.
    Agent,
    /// keepalived on both routers (the baseline).
    Keepalived,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM set a flag that every step checks, so the lab is dropped (namespaces and
/// processes removed) instead of the process dying with it in place.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_interrupted()?;
        std::thread::sleep(Duration::from_millis(5).min(end - Instant::now()));
    }
    check_interrupted()
}

struct Routers {
    r1: Vr,
    r2: Vr,
}

fn start_routers(
    lab: &Lab,
    peer: Peer,
    advert_int: &str,
    agent: &Option<PathBuf>,
) -> Result<Routers> {
    let vip = vip_cidr(false);
    let start = |n: usize, prio: u8| -> Result<Vr> {
        match peer {
            Peer::Agent => lab.agent(
                n,
                agent.as_ref().expect("agent binary"),
                &vr_args(VRID, prio, &vip, advert_int),
                &instance_name(VRID, false),
            ),
            Peer::Keepalived => lab.keepalived(
                n,
                &keepalived_conf("V4", VRID, prio, advert_int, &[&vip], ""),
                "V4",
            ),
        }
    };
    let mut r1 = start(1, 200)?;
    let mut r2 = start(2, 100)?;
    r1.wait_state(MASTER, Duration::from_secs(10))?;
    r2.wait_state(BACKUP, Duration::from_secs(10))?;
    Ok(Routers { r1, r2 })
}

fn prober(lab: &Lab, probe_us: u64) -> Result<Prober> {
    lab.client_prober(Duration::from_micros(probe_us))
}

/// One measured event.
#[derive(Clone, Debug, Default)]
struct Measure {
    /// From the wire (a capture on r2's bridge port, kernel timestamps): r2's first advert
    /// after the event minus r1's last advert before it, ms.
    wire_ms: Option<f64>,
    icmp_ms: f64,
    arp_ms: f64,
    /// Time from the event to the first ARP reply with a different MAC, if the MAC changed.
    mac_switch_ms: Option<f64>,
    /// That change, `old->new`.
    mac_switch: Option<String>,
    /// r2's first two adverts after the event, apart by (ms): about one advert interval when
    /// r2 acted on time; far less when it acted late and its Adver_Timer caught up.
    second_advert_ms: Option<f64>,
    /// The latest wake-up of r2's timer (µs after its deadline) logged between the event and
    /// r2's MASTER line (the agent logs those over 1 ms with `vrrp_agent::timer=debug`).
    timer_late_us: Option<u64>,
}

fn measure(trace: &Trace, event: u64, end: u64, what: &str) -> Result<Measure> {
    let icmp = trace
        .icmp_gap(event, end)
        .with_context(|| format!("{what}: echo replies did not resume"))?;
    let arp = trace
        .arp_gap(event, end)
        .with_context(|| format!("{what}: ARP replies did not resume"))?;
    Ok(Measure {
        wire_ms: None,
        icmp_ms: icmp.ms(),
        arp_ms: arp.ms(),
        mac_switch_ms: trace
            .arp_mac_switch(event, end)
            .map(|(_, _, t)| (t.saturating_sub(event)) as f64 / 1e6),
        mac_switch: trace
            .arp_mac_switch(event, end)
            .map(|(a, b, _)| format!("{}->{}", fmt_mac(&a), fmt_mac(&b))),
        second_advert_ms: None,
        timer_late_us: None,
    })
}

/// The latest "timer fired N µs after its deadline" in `log` before its first MASTER line.
fn timer_late_us(log: &str) -> Option<u64> {
    log.lines()
        .take_while(|l| !l.contains("-> MASTER"))
        .filter_map(|l| {
            let rest = &l[l.find("timer fired ")? + "timer fired ".len()..];
            rest.split(' ').next()?.parse::<u64>().ok()
        })
        .max()
}

/// After a takeover: wait for echo replies again, then a settle window that the gap covers.
fn settle(p: &Prober, after: u64) -> Result<u64> {
    p.wait_reply_after(after, Duration::from_secs(5))?;
    sleep(Duration::from_millis(200))?;
    Ok(realtime_ns())
}

fn one_run(
    run: u32,
    peer: Peer,
    advert_int: &str,
    probe_us: u64,
    agent: &Option<PathBuf>,
) -> Result<(Measure, Measure)> {
    let lab = Lab::new(&format!("bf{run}"), 2)?;
    let Routers { mut r1, mut r2 } = start_routers(&lab, peer, advert_int, agent)?;
    let p = prober(&lab, probe_us)?;
    p.wait_replies(100, Duration::from_secs(5))?;
    check_interrupted()?;
    // Both routers' adverts as r2's port sees them (r1's forwarded to r2, r2's own).
    let dir = tempfile::tempdir()?;
    let cap = lab.capture(
        &lab.r(2).port,
        None,
        "ip proto 112",
        &dir.path().join("r2-port.pcap"),
    )?;

    // tcpdump says "listening on" before frames reach its file: without r1's adverts before
    // the cut the takeover cannot be timed. Wait (bounded) until a few are written.
    let pcap = dir.path().join("r2-port.pcap");
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::metadata(&pcap).map_or(0, |m| m.len()) < 24 + 3 * (16 + 54)
        && Instant::now() < deadline
    {
        sleep(Duration::from_millis(5))?;
    }

    // (a) hard cut.
    let log_mark = r2.proc.output().len();
    let t_cut = realtime_ns();
    lab.cut(1)?;
    r2.wait_state(MASTER, Duration::from_secs(5))
        .context("after r1's link cut")?;
    let end_cut = settle(&p, realtime_ns())?;
    let late = timer_late_us(r2.proc.output().get(log_mark..).unwrap_or(""));

    // Back to r1 as master.
    lab.restore(1)?;
    r1.wait_state(MASTER, Duration::from_secs(10))?;
    r2.wait_state(BACKUP, Duration::from_secs(10))
        .context("r2 did not step down after r1's link came back")?;
    sleep(Duration::from_millis(300))?;
    p.wait_reply_after(realtime_ns(), Duration::from_secs(5))
        .context("no echo replies after r1 took back over")?;

    // (b) graceful stop.
    let t_term = realtime_ns();
    r1.signal(libc::SIGTERM);
    r2.wait_state(MASTER, Duration::from_secs(5))
        .context("after SIGTERM to r1")?;
    let end_term = settle(&p, realtime_ns())?;
    let trace = p.finish()?;
    let mut hard = measure(&trace, t_cut, end_cut, "hard cut")?;
    let mut graceful = measure(&trace, t_term, end_term, "graceful stop")?;
    let wire = read_adverts(&cap.stop()?, lab.r(1).ip4, lab.r(2).ip4)?;
    hard.wire_ms = wire.takeover_ms(t_cut);
    if hard.wire_ms.is_none() {
        eprintln!(
            "run {run} {}: hard cut not timed on the wire: captured {} adverts of r1 before the \
             cut, {} of r2 after it",
            peer_arg(peer),
            wire.r1.iter().filter(|&&t| t < t_cut).count(),
            wire.r2.iter().filter(|&&t| t > t_cut).count(),
        );
    }
    hard.second_advert_ms = wire.second_advert_ms(t_cut);
    hard.timer_late_us = late;
    graceful.wire_ms = wire.takeover_ms(t_term);
    drop((r1, r2));
    Ok((hard, graceful))
}

/// Advert times (pcap kernel timestamps, CLOCK_REALTIME ns) per router.
#[derive(Default)]
pub(crate) struct Wire {
    pub r1: Vec<u64>,
    pub r2: Vec<u64>,
}

impl Wire {
    /// r2's first advert after `event` minus r1's last advert before that one, ms.
    fn second_advert_ms(&self, event: u64) -> Option<f64> {
        let mut after = self.r2.iter().filter(|&&t| t > event);
        let (a, b) = (*after.next()?, *after.next()?);
        Some((b - a) as f64 / 1e6)
    }

    fn takeover_ms(&self, event: u64) -> Option<f64> {
        let first = *self.r2.iter().find(|&&t| t > event)?;
        let last = *self.r1.iter().rev().find(|&&t| t < first)?;
        Some((first - last) as f64 / 1e6)
    }
}

/// The VRRP adverts (Ethernet II, IPv4, protocol 112) of r1 and r2 in a capture, by sender
/// (also the starvation bench's).
pub(crate) fn read_adverts(path: &Path, r1: Ipv4Addr, r2: Ipv4Addr) -> Result<Wire> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {path:?}"))?;
    let mut reader = pcap_file::pcap::PcapReader::new(f).context("reading the pcap header")?;
    let mut wire = Wire::default();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.context("reading a pcap record")?;
        let d = &pkt.data;
        // Ethernet II, IPv4, protocol 112 (VRRP).
        if d.len() < 14 + 20 || d[12..14] != [0x08, 0x00] || d[14 + 9] != 112 {
            continue;
        }
        let src = Ipv4Addr::new(d[26], d[27], d[28], d[29]);
        let t = pkt.timestamp.as_nanos() as u64;
        if src == r1 {
            wire.r1.push(t);
        } else if src == r2 {
            wire.r2.push(t);
        }
    }
    Ok(wire)
}

/// Master_Down_Interval of r2 (priority 100), ms.
fn mdi_ms(advert_int: &str) -> Result<f64> {
    let i: f64 = advert_int
        .parse()
        .with_context(|| format!("--advert-int {advert_int}"))?;
    Ok(3.0 * i * 1000.0 + 156.0 * i * 1000.0 / 256.0)
}

fn stats(label: &str, v: &[f64]) {
    if v.is_empty() {
        println!("  {label:<28} (no successful runs)");
        return;
    }
    // Percentiles on µs integers (nearest rank).
    let mut us: Vec<u64> = v.iter().map(|x| (x * 1000.0).round() as u64).collect();
    us.sort_unstable();
    let ms = |x: u64| x as f64 / 1000.0;
    println!(
        "  {label:<28} {:>7.1} {:>7.1} {:>7.1} {:>7.1}",
        ms(us[0]),
        ms(percentile(&us, 50.0)),
        ms(percentile(&us, 99.0)),
        ms(*us.last().unwrap()),
    );
}

fn peer_arg(p: Peer) -> &'static str {
    match p {
        Peer::Agent => "agent",
        Peer::Keepalived => "keepalived",
    }
}

fn peer_name(p: Peer) -> String {
    match p {
        Peer::Agent => "vrrp-agent".to_owned(),
        Peer::Keepalived => {
            let v = std::process::Command::new("keepalived")
                .arg("--version")
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default();
            if v.is_empty() {
                "keepalived".into()
            } else {
                v
            }
        }
    }
}

/// One implementation's results.
#[derive(Default)]
struct PeerRuns {
    hard: Vec<Measure>,
    graceful: Vec<Measure>,
    failures: Vec<String>,
}

/// `peers` run interleaved: run k of every peer, then run k + 1.
pub fn bench(
    runs: u32,
    peers: &[Peer],
    advert_int: &str,
    probe_us: u64,
    verbose: bool,
) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let mdi = mdi_ms(advert_int)?;
    let agent = if peers.contains(&Peer::Agent) {
        Some(sibling_agent_bin()?)
    } else {
        None
    };
    let mut res: Vec<PeerRuns> = peers.iter().map(|_| PeerRuns::default()).collect();
    let started = Instant::now();
    for run in 1..=runs {
        for (peer, out) in peers.iter().zip(res.iter_mut()) {
            check_interrupted()?;
            match one_run(run, *peer, advert_int, probe_us, &agent) {
                Ok((h, g)) => {
                    if verbose {
                        let w = |m: &Measure| {
                            m.wire_ms
                                .map(|x| format!(", wire {x:.2}"))
                                .unwrap_or_default()
                        };
                        let diag = format!(
                            "{}{}",
                            h.second_advert_ms
                                .map(|x| format!(", 1st->2nd advert {x:.2}"))
                                .unwrap_or_default(),
                            h.timer_late_us
                                .map(|x| format!(", timer late {x} µs"))
                                .unwrap_or_default()
                        );
                        println!(
                            "run {run:>3} {:<10}: hard cut {:6.1} ms (ARP {:6.1}{}{}{})   graceful {:6.1} ms (ARP {:6.1}{}{})",
                            peer_arg(*peer),
                            h.icmp_ms,
                            h.arp_ms,
                            w(&h),
                            diag,
                            h.mac_switch_ms.map(|m| format!(", MAC switch +{m:.1} {}", h.mac_switch.clone().unwrap_or_default())).unwrap_or_default(),
                            g.icmp_ms,
                            g.arp_ms,
                            w(&g),
                            g.mac_switch_ms.map(|m| format!(", MAC switch +{m:.1} {}", g.mac_switch.clone().unwrap_or_default())).unwrap_or_default(),
                        );
                    }
                    out.hard.push(h);
                    out.graceful.push(g);
                }
                Err(e) => {
                    check_interrupted()?;
                    eprintln!("run {run} {}: FAILED: {e:#}", peer_arg(*peer));
                    out.failures
                        .push(format!("run {run} {}: {e:#}", peer_arg(*peer)));
                }
            }
        }
    }
    fn col(v: &[Measure], f: fn(&Measure) -> f64) -> Vec<f64> {
        v.iter().map(f).collect()
    }
    fn wire(v: &[Measure]) -> Vec<f64> {
        v.iter().filter_map(|m| m.wire_ms).collect()
    }
    let excess = |v: &[Measure]| {
        v.iter()
            .filter_map(|m| m.wire_ms.map(|w| w - mdi))
            .collect::<Vec<_>>()
    };
    for (peer, r) in peers.iter().zip(&res) {
        let who = peer_name(*peer);
        println!(
            "failover benchmark: {who} on r1 (priority 200) and r2 (priority 100), VRRPv3, advert_int {advert_int} s, \
             probe every {probe_us} µs (ICMP echo + ARP request), {:.0} s in all",
            started.elapsed().as_secs_f64()
        );
        println!(
            "  runs {runs}, succeeded {}, failed {}",
            r.hard.len(),
            r.failures.len()
        );
        println!("  client-visible gap, ms         min     p50     p99     max");
        stats("hard cut, ICMP", &col(&r.hard, |m| m.icmp_ms));
        stats("hard cut, ARP", &col(&r.hard, |m| m.arp_ms));
        stats("graceful stop, ICMP", &col(&r.graceful, |m| m.icmp_ms));
        stats("graceful stop, ARP", &col(&r.graceful, |m| m.arp_ms));
        let sw: Vec<f64> = r.hard.iter().filter_map(|m| m.mac_switch_ms).collect();
        if !sw.is_empty() {
            stats("hard cut, ARP MAC switch at", &sw);
        }
        let sw: Vec<f64> = r.graceful.iter().filter_map(|m| m.mac_switch_ms).collect();
        if !sw.is_empty() {
            stats("graceful, ARP MAC switch at", &sw);
        }
        println!("  on the wire (r2's port), ms");
        stats("hard cut, excess over MDI", &excess(&r.hard));
        let second: Vec<f64> = r.hard.iter().filter_map(|m| m.second_advert_ms).collect();
        stats("hard cut, r2 1st -> 2nd advert", &second);
        // Late takeovers (excess over 1 ms): was r2's timer late, or did it act late after it?
        for m in r
            .hard
            .iter()
            .filter(|m| m.wire_ms.is_some_and(|w| w - mdi > 1.0))
        {
            println!(
                "  late takeover: excess {:.2} ms, 1st -> 2nd advert {}, timer wake-up {}",
                m.wire_ms.unwrap_or_default() - mdi,
                m.second_advert_ms
                    .map(|x| format!("{x:.2} ms"))
                    .unwrap_or_else(|| "?".into()),
                match (*peer, m.timer_late_us) {
                    (Peer::Keepalived, _) => "not logged".into(),
                    (_, Some(x)) => format!("{x} µs late"),
                    (_, None) => "on time (none logged over 1 ms)".into(),
                },
            );
        }
        stats("graceful, r1 last -> r2 first", &wire(&r.graceful));
        if *peer == Peer::Agent {
            println!("  targets: hard cut p50 <= 30 ms, max <= 36 ms; graceful <= 5 ms (ICMP gap)");
            let over = |v: &[Measure], limit: f64| v.iter().filter(|m| m.icmp_ms > limit).count();
            println!(
                "  runs over target: hard cut > 36 ms: {}, graceful > 5 ms: {} (of {})",
                over(&r.hard, 36.0),
                over(&r.graceful, 5.0),
                r.hard.len()
            );
        }
        for f in &r.failures {
            println!("  {f}");
        }
    }
    let peer_list: Vec<&str> = peers.iter().map(|p| peer_arg(*p)).collect();
    let command = format!(
        "cargo xtask bench failover --runs {runs} --peer {}{}",
        peer_list.join(","),
        if advert_int == "0.01" {
            String::new()
        } else {
            format!(" --advert-int {advert_int}")
        }
    );
    let mut rep = Report::new(
        "failover",
        &format!(
            "failover of r1 (priority 200) to r2 (priority 100), VRRPv3 every {advert_int} s, \
             client probing every {probe_us} µs; Master_Down_Interval {mdi:.1} ms"
        ),
        &command,
    );
    let get = |p: Peer| peers.iter().position(|x| *x == p).map(|i| &res[i]);
    let (a, k) = (get(Peer::Agent), get(Peer::Keepalived));
    let empty = PeerRuns::default();
    let (a, k) = (a.unwrap_or(&empty), k.unwrap_or(&empty));
    type Pick = fn(&PeerRuns) -> Vec<f64>;
    let figures: [(&str, &str, Pick); 4] = [
        ("hard cut, client gap", "ms", |r| {
            col(&r.hard, |m| m.icmp_ms)
        }),
        ("hard cut, excess over MDI (wire)", "ms", |r| {
            r.hard.iter().filter_map(|m| m.wire_ms).collect::<Vec<_>>()
        }),
        ("graceful stop, client gap", "ms", |r| {
            col(&r.graceful, |m| m.icmp_ms)
        }),
        (
            "graceful stop, r1 last → r2 first advert (wire)",
            "ms",
            |r| wire(&r.graceful),
        ),
    ];
    for (what, unit, pick) in figures {
        let (mut va, mut vk) = (pick(a), pick(k));
        if what.contains("excess") {
            for v in [&mut va, &mut vk] {
                v.iter_mut().for_each(|x| *x -= mdi);
            }
        }
        let quantiles: &[(usize, &str)] = if what.contains("excess") {
            &[(1, "p50"), (2, "p99"), (3, "max")]
        } else {
            &[(0, "min"), (1, "p50"), (2, "p99"), (3, "max")]
        };
        let (sa, sk) = (summary(&va), summary(&vk));
        for (i, q) in quantiles {
            rep.row(
                &format!("{what}, {q}"),
                sa.map(|s| s[*i]),
                sk.map(|s| s[*i]),
                unit,
            );
        }
        for (label, v) in [("vrrp-agent", &va), ("keepalived", &vk)] {
            if !v.is_empty() {
                rep.series(&format!("{label}, {what}"), unit, v);
            }
        }
    }
    for (peer, r) in peers.iter().zip(&res) {
        rep.note(format!(
            "{}: {} of {runs} runs succeeded",
            peer_name(*peer),
            r.hard.len()
        ));
        for f in &r.failures {
            rep.note(f.clone());
        }
    }
    rep.emit()?;
    if res.iter().all(|r| r.hard.is_empty()) {
        bail!("no run succeeded");
    }
    Ok(())
}

pub fn demo(advert_int: &str) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let agent = Some(sibling_agent_bin()?);
    let r = demo_inner(advert_int, &agent);
    match &r {
        Err(e) if INTERRUPTED.load(Ordering::SeqCst) => {
            let _ = e;
            println!("interrupted: lab namespaces and processes removed");
            Ok(())
        }
        _ => r,
    }
}

fn demo_inner(advert_int: &str, agent: &Option<PathBuf>) -> Result<()> {
    let lab = Lab::new("demo", 2)?;
    println!(
        "lab (network namespaces only): switch br0; r1 {} r2 {} client {}; VIP {VIP4} (VRID {VRID}, VMAC {})",
        lab.r(1).ip4,
        lab.r(2).ip4,
        lab.client.ip4,
        vmac4(VRID)
    );
    let t = Instant::now();
    let Routers { r1, mut r2 } = start_routers(&lab, Peer::Agent, advert_int, agent)?;
    println!(
        "agents: r1 priority 200 -> {}, r2 priority 100 -> {}   ({advert_int} s adverts, converged in {} ms)",
        r1.state().unwrap_or_default(),
        r2.state().unwrap_or_default(),
        t.elapsed().as_millis()
    );
    let p = prober(&lab, 1000)?;
    p.wait_replies(200, Duration::from_secs(5))
        .context("the client gets no echo replies from the VIP")?;
    let neigh = lab
        .client_neigh(IpAddr::V4(VIP4))?
        .map(|(m, _)| m)
        .unwrap_or_default();
    println!(
        "client: pinging {VIP4} every 1 ms: {} replies so far; its ARP entry: {VIP4} -> {neigh}",
        p.live.icmp_replies.load(Ordering::Relaxed)
    );
    check_interrupted()?;
    println!("failing the master: cutting r1's link (bridge port p-r1 down)");
    let t_cut = realtime_ns();
    let t = Instant::now();
    lab.cut(1)?;
    r2.wait_state(MASTER, Duration::from_secs(5))?;
    let took = t.elapsed();
    let end = settle(&p, realtime_ns())?;
    let trace = p.finish()?;
    let m = measure(&trace, t_cut, end, "link cut")?;
    println!(
        "r2 -> MASTER (logged {} ms after the cut)",
        took.as_millis()
    );
    println!(
        "client-visible gap: {:.1} ms (ICMP echo), {:.1} ms (ARP); {} echo replies in total",
        m.icmp_ms,
        m.arp_ms,
        trace.icmp.len()
    );
    let macs = trace.arp_macs(end.saturating_sub(100_000_000), end);
    println!(
        "master now: r2 (r1: {}); ARP for the VIP answered by {}",
        r1.state().unwrap_or_default(),
        macs.iter().map(fmt_mac).collect::<Vec<_>>().join(", ")
    );
    drop((r1, r2));
    drop(lab);
    println!("cleaned up: lab namespaces removed");
    Ok(())
}
