//! `vrrp-lab bench-failover` and `vrrp-lab demo`: the failover lab measured from the client.
use std::{
    net::IpAddr,
    path::PathBuf,
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
    icmp_ms: f64,
    arp_ms: f64,
    /// Time from the event to the first ARP reply with a different MAC, if the MAC changed.
    mac_switch_ms: Option<f64>,
    /// That change, `old->new`.
    mac_switch: Option<String>,
}

fn measure(trace: &Trace, event: u64, end: u64, what: &str) -> Result<Measure> {
    let icmp = trace
        .icmp_gap(event, end)
        .with_context(|| format!("{what}: echo replies did not resume"))?;
    let arp = trace
        .arp_gap(event, end)
        .with_context(|| format!("{what}: ARP replies did not resume"))?;
    Ok(Measure {
        icmp_ms: icmp.ms(),
        arp_ms: arp.ms(),
        mac_switch_ms: trace
            .arp_mac_switch(event, end)
            .map(|(_, _, t)| (t.saturating_sub(event)) as f64 / 1e6),
        mac_switch: trace
            .arp_mac_switch(event, end)
            .map(|(a, b, _)| format!("{}->{}", fmt_mac(&a), fmt_mac(&b))),
    })
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

    // (a) hard cut.
    let t_cut = realtime_ns();
    lab.cut(1)?;
    r2.wait_state(MASTER, Duration::from_secs(5))
        .context("after r1's link cut")?;
    let end_cut = settle(&p, realtime_ns())?;

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
    let hard = measure(&trace, t_cut, end_cut, "hard cut")?;
    let graceful = measure(&trace, t_term, end_term, "graceful stop")?;
    drop((r1, r2));
    Ok((hard, graceful))
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

pub fn bench(runs: u32, peer: Peer, advert_int: &str, probe_us: u64, verbose: bool) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let agent = match peer {
        Peer::Agent => Some(sibling_agent_bin()?),
        Peer::Keepalived => None,
    };
    let mut hard = Vec::new();
    let mut graceful = Vec::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    for run in 1..=runs {
        check_interrupted()?;
        match one_run(run, peer, advert_int, probe_us, &agent) {
            Ok((h, g)) => {
                if verbose {
                    println!(
                        "run {run:>3}: hard cut {:6.1} ms (ARP {:6.1}{})   graceful {:6.1} ms (ARP {:6.1}{})",
                        h.icmp_ms,
                        h.arp_ms,
                        h.mac_switch_ms.map(|m| format!(", MAC switch +{m:.1} {}", h.mac_switch.clone().unwrap_or_default())).unwrap_or_default(),
                        g.icmp_ms,
                        g.arp_ms,
                        g.mac_switch_ms.map(|m| format!(", MAC switch +{m:.1} {}", g.mac_switch.clone().unwrap_or_default())).unwrap_or_default(),
                    );
                }
                hard.push(h);
                graceful.push(g);
            }
            Err(e) => {
                check_interrupted()?;
                eprintln!("run {run}: FAILED: {e:#}");
                failures.push(format!("run {run}: {e:#}"));
            }
        }
    }
    let who = match peer {
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
    };
    println!(
        "failover benchmark: {who} on r1 (priority 200) and r2 (priority 100), VRRPv3, advert_int {advert_int} s, \
         probe every {probe_us} µs (ICMP echo + ARP request), {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  runs {runs}, succeeded {}, failed {}",
        hard.len(),
        failures.len()
    );
    println!("  client-visible gap, ms         min     p50     p99     max");
    let col = |v: &[Measure], f: fn(&Measure) -> f64| v.iter().map(f).collect::<Vec<_>>();
    stats("hard cut, ICMP", &col(&hard, |m| m.icmp_ms));
    stats("hard cut, ARP", &col(&hard, |m| m.arp_ms));
    stats("graceful stop, ICMP", &col(&graceful, |m| m.icmp_ms));
    stats("graceful stop, ARP", &col(&graceful, |m| m.arp_ms));
    let sw: Vec<f64> = hard.iter().filter_map(|m| m.mac_switch_ms).collect();
    if !sw.is_empty() {
        stats("hard cut, ARP MAC switch at", &sw);
    }
    let sw: Vec<f64> = graceful.iter().filter_map(|m| m.mac_switch_ms).collect();
    if !sw.is_empty() {
        stats("graceful, ARP MAC switch at", &sw);
    }
    if peer == Peer::Agent {
        println!("  targets: hard cut p50 <= 30 ms, max <= 36 ms; graceful <= 5 ms (ICMP gap)");
        let over = |v: &[Measure], limit: f64| v.iter().filter(|m| m.icmp_ms > limit).count();
        println!(
            "  runs over target: hard cut > 36 ms: {}, graceful > 5 ms: {} (of {})",
            over(&hard, 36.0),
            over(&graceful, 5.0),
            hard.len()
        );
    }
    for f in &failures {
        println!("  {f}");
    }
    println!(
        "  reproduce: cargo xtask bench failover --runs {runs} --peer {}{}",
        match peer {
            Peer::Agent => "agent",
            Peer::Keepalived => "keepalived",
        },
        if advert_int == "0.01" {
            String::new()
        } else {
            format!(" --advert-int {advert_int}")
        }
    );
    if hard.is_empty() {
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
