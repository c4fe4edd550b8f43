//! `vrrp-lab bench-cpu`: what a virtual router costs at rest, vrrp-agent and keepalived side by
//! side, interleaved. Per run and per count of VRIDs, one lab per implementation: r1 (priority
//! 200) is master of every VRID, r2 (priority 100) backup, VRRPv3 adverts every `advert_int`.
//! Measured:
//! - CPU over a window from /proc: every thread's `sum_exec_runtime` (`task/*/schedstat`, ns)
//!   and utime+stime (`stat`, clock ticks); keepalived's VRRP child and its parent apart, summed;
//! - RSS (`VmRSS`; keepalived's child + parent);
//! - after the CPU window (so tcpdump costs nothing in it), the master's advert intervals per
//!   VRID from a capture of its bridge port (kernel timestamps): p50/p99/max over every VRID,
//!   and the worst VRID's p99.
use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use vrrp_integration_tests::{
    lab::{keepalived_conf, sibling_agent_bin, Lab, Vr, BACKUP, IFACE, MASTER},
    percentile, require_root,
};

use vrrp_agent::config::XdpMode;

use crate::{
    arp::pass_xdp,
    failover::{check_interrupted, install_interrupt_handler, sleep},
    starvation::vrrp_pid,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    Agent,
    Keepalived,
    /// keepalived with the agent's XDP program (no VIP: it passes every frame) on both routers'
    /// interfaces in generic mode. An advert's path through veth and bridge into the receiver's
    /// generic XDP program runs in the sender's context, so the agent's master pays for its
    /// backup's XDP and keepalived's does not: this variant pays the same, the fair comparison.
    KeepalivedXdp,
}

fn peer_name(p: Peer) -> &'static str {
    match p {
        Peer::Agent => "vrrp-agent",
        Peer::Keepalived => "keepalived",
        Peer::KeepalivedXdp => "keepalived+xdp",
    }
}

pub struct Opts {
    pub vrids: Vec<u16>,
    pub window: u64,
    pub runs: u32,
    pub advert_int: String,
    pub capture: u64,
    pub peers: Vec<Peer>,
    pub json: PathBuf,
}

/// CPU and memory of one process (all its threads) over the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcCost {
    /// sum_exec_runtime of every thread, % of one CPU.
    pub cpu_pct: f64,
    /// utime + stime of every thread (clock ticks), % of one CPU.
    pub ticks_pct: f64,
    pub threads: usize,
    pub rss_kb: u64,
}

/// One router of one lab.
#[derive(Clone, Debug, Serialize)]
pub struct RouterCost {
    pub role: &'static str,
    /// The process that runs VRRP (the agent; keepalived's VRRP child).
    pub vrrp: ProcCost,
    /// keepalived's parent (none for the agent).
    pub parent: Option<ProcCost>,
    /// vrrp + parent, % of one CPU.
    pub cpu_pct: f64,
    pub ticks_pct: f64,
    pub rss_kb: u64,
}

/// Advert intervals of the master, ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Intervals {
    /// Adverts in the capture.
    pub adverts: usize,
    /// Frames r1 sent while the capture ran: its bridge port's receive counter (adverts, and
    /// ARP if any). The capture holds fewer only if tcpdump lost some (`capture_dropped`).
    pub sent: u64,
    /// Frames tcpdump's socket dropped (its `dropped by kernel` line): on the wire, not in the
    /// file. Gaps around them are the capture's, not the master's.
    pub capture_dropped: u64,
    pub vrids_seen: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The largest per-VRID p99.
    pub worst_vrid_p99_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub peer: Peer,
    pub vrids: u16,
    pub run: u32,
    pub window_s: f64,
    pub master: RouterCost,
    pub backup: RouterCost,
    pub intervals: Intervals,
    /// Role changes of any VRID on either router from the start of the window to the end of
    /// the capture (0 on a quiet machine).
    pub role_changes: usize,
    /// Transitions at start-up beyond the expected ones (r1 INIT -> BACKUP -> MASTER, r2
    /// INIT -> BACKUP), before the window: r2 took a VRID over as it started.
    pub startup_role_changes: usize,
    /// The VRIDs with role changes (start-up or window).
    pub vrids_changed: Vec<u16>,
}

/// Every run (target/bench/cpu-runs.json; the report's figures are in cpu.json).
#[derive(Serialize)]
pub struct Runs {
    pub command: String,
    pub advert_int: String,
    pub results: Vec<RunResult>,
    pub failures: Vec<String>,
}

// ---- /proc ----

/// (sum_exec_runtime ns, utime+stime ticks, threads) of every thread of `pid`.
fn proc_times(pid: i32) -> (u64, u64, usize) {
    let (mut ns, mut ticks, mut n) = (0, 0, 0);
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0, 0);
    };
    for t in tasks.flatten() {
        n += 1;
        if let Ok(s) = fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(stat) = fs::read_to_string(t.path().join("stat")) {
            if let Some((_, rest)) = stat.rsplit_once(") ") {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // After the comm: state(0) ppid(1) ... utime(11) stime(12).
                ticks += f
                    .get(11..=12)
                    .unwrap_or(&[])
                    .iter()
                    .map(|x| x.parse::<u64>().unwrap_or(0))
                    .sum::<u64>();
            }
        }
    }
    (ns, ticks, n)
}

fn vm_rss_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The processes of a router: the VRRP one, and keepalived's parent.
fn pids(vr: &Vr) -> Result<(i32, Option<i32>)> {
    let own = vr.proc.child.id() as i32;
    let vrrp = vrrp_pid(vr).with_context(|| format!("no VRRP pid of {}", vr.node))?;
    Ok((vrrp, (vrrp != own).then_some(own)))
}

/// Samples of every process at the start of the window.
struct Sample(Vec<(i32, (u64, u64, usize))>);

fn sample(ps: &[i32]) -> Sample {
    Sample(ps.iter().map(|&p| (p, proc_times(p))).collect())
}

fn cost(pid: i32, a: &Sample, b: &Sample, dt: f64, hz: f64) -> ProcCost {
    let get = |s: &Sample| s.0.iter().find(|(p, _)| *p == pid).map(|x| x.1);
    let (Some(a), Some(b)) = (get(a), get(b)) else {
        return ProcCost::default();
    };
    ProcCost {
        cpu_pct: b.0.saturating_sub(a.0) as f64 / 1e9 / dt * 100.0,
        ticks_pct: b.1.saturating_sub(a.1) as f64 / hz / dt * 100.0,
        threads: b.2,
        rss_kb: vm_rss_kb(pid),
    }
}

fn router_cost(
    role: &'static str,
    (vrrp, parent): (i32, Option<i32>),
    a: &Sample,
    b: &Sample,
    dt: f64,
    hz: f64,
) -> RouterCost {
    let v = cost(vrrp, a, b, dt, hz);
    let p = parent.map(|p| cost(p, a, b, dt, hz));
    let pc = p.clone().unwrap_or_default();
    RouterCost {
        role,
        cpu_pct: v.cpu_pct + pc.cpu_pct,
        ticks_pct: v.ticks_pct + pc.ticks_pct,
        rss_kb: v.rss_kb + pc.rss_kb,
        vrrp: v,
        parent: p,
    }
}

// ---- the capture ----

/// Advert intervals per VRID of the adverts in `pcap` (Ethernet, IPv4, VRRP).
fn intervals(pcap: &Path) -> Result<Intervals> {
    let f = fs::File::open(pcap).with_context(|| format!("opening {pcap:?}"))?;
    let mut reader = pcap_file::pcap::PcapReader::new(f).context("reading the pcap header")?;
    let mut by_vrid: Vec<Vec<u64>> = vec![Vec::new(); 256];
    let mut adverts = 0;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.context("reading a pcap record")?;
        let d = &pkt.data;
        if d.len() < 14 + 20 + 2 || d[12..14] != [0x08, 0x00] || d[14 + 9] != 112 {
            continue;
        }
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let Some(&vrid) = d.get(14 + ihl + 1) else {
            continue;
        };
        adverts += 1;
        by_vrid[usize::from(vrid)].push(pkt.timestamp.as_nanos() as u64);
    }
    let mut all = Vec::new();
    let mut worst = 0u64;
    let mut seen = 0;
    for ts in &mut by_vrid {
        if ts.len() < 2 {
            continue;
        }
        seen += 1;
        ts.sort_unstable();
        let mut gaps: Vec<u64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        worst = worst.max(percentile(&gaps, 99.0));
        all.extend(gaps);
    }
    all.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(Intervals {
        adverts,
        vrids_seen: seen,
        p50_ms: ms(percentile(&all, 50.0)),
        p99_ms: ms(percentile(&all, 99.0)),
        max_ms: ms(all.last().copied().unwrap_or(0)),
        worst_vrid_p99_ms: ms(worst),
        ..Intervals::default()
    })
}

// ---- one lab ----

fn name(vrid: u16) -> String {
    format!("V{vrid}")
}

fn vip(vrid: u16) -> String {
    format!("10.220.{}.{}/16", vrid / 256, vrid % 256)
}

/// The agent's file: one instance per VRID. `garp_master_delay = 0` as keepalived's file has
/// (`vrrp_garp_master_delay 0`): otherwise the agent's master sends a second GARP burst (one
/// per VIP and repeat, 250 at 50 VRIDs) 5 s after it became master, inside the window, and
/// keepalived's does not.
fn agent_toml(n: u16, priority: u8, advert_int: &str) -> String {
    (1..=n)
        .map(|v| {
            format!(
                "[[instance]]\nname = \"{}\"\ninterface = \"{IFACE}\"\nvrid = {v}\n\
                 priority = {priority}\nadvert_int = {advert_int}\nvips = [\"{}\"]\n\
                 garp_master_delay = 0\n",
                name(v),
                vip(v)
            )
        })
        .collect()
}

/// keepalived's file: the lab's one-instance file for VRID 1, then the same instance block for
/// every other VRID.
fn ka_conf(n: u16, priority: u8, advert_int: &str) -> String {
    let mut s = keepalived_conf(&name(1), 1, priority, advert_int, &[&vip(1)], "");
    for v in 2..=n {
        let one = keepalived_conf(&name(v), v as u8, priority, advert_int, &[&vip(v)], "");
        if let Some(i) = one.find("vrrp_instance") {
            s += &one[i..];
        }
    }
    s
}

fn start(lab: &Lab, peer: Peer, r: usize, n: u16, prio: u8, advert_int: &str) -> Result<Vr> {
    match peer {
        Peer::Agent => lab.agent_config(
            r,
            &sibling_agent_bin()?,
            &agent_toml(n, prio, advert_int),
            &name(1),
        ),
        Peer::Keepalived | Peer::KeepalivedXdp => {
            lab.keepalived(r, &ka_conf(n, prio, advert_int), &name(1))
        }
    }
}

/// Transitions logged so far per VRID 1..=`n` (index 0 is VRID 1).
fn transitions_per_vrid(vr: &mut Vr, n: u16) -> Vec<usize> {
    let keep = std::mem::take(&mut vr.instance);
    let out = (1..=n)
        .map(|v| {
            vr.instance = name(v);
            vr.transitions().len()
        })
        .collect();
    vr.instance = keep;
    out
}

/// Frames received by `port` of the switch (what the router on it sent).
fn port_rx_packets(lab: &Lab, port: &str) -> Result<u64> {
    let out = lab.switch.ip(&["-j", "-s", "link", "show", "dev", port])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing `ip -j -s link show dev {port}`"))?;
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .with_context(|| format!("no rx packet count for {port}: {v}"))
}

/// Bytes kept per frame of the master's capture (Ethernet, IPv4 and the VRRP header fit).
/// tcpdump's whole-frame slots (64 KiB each on a veth in immediate mode, see
/// `Lab::capture_snaplen`) left about 31 in its 2 MiB ring; the master of 50 VRIDs sends 50
/// adverts in one wake-up, so the tail of most bursts was lost. (A 64 MiB ring instead, 128 MiB
/// of kernel memory, coincided with r2 taking over every VRID as the capture started, 2 of 2.)
const CAPTURE_SNAPLEN: u32 = 128;

/// Waits until VRID 1 and VRID `n` are in `state`.
fn settled(vr: &mut Vr, n: u16, state: &str) -> Result<()> {
    for v in [1, n] {
        vr.instance = name(v);
        vr.wait_state(state, Duration::from_secs(20))
            .with_context(|| format!("{} {} to {state}", vr.node, name(v)))?;
    }
    vr.instance = name(1);
    Ok(())
}

/// [`CAPTURE_SNAPLEN`]; `VRRP_LAB_CAPTURE_SNAPLEN=0` keeps whole frames (to compare).
fn capture_snaplen() -> Option<u32> {
    match std::env::var("VRRP_LAB_CAPTURE_SNAPLEN") {
        Ok(v) => v.parse().ok().filter(|&b| b > 0),
        Err(_) => Some(CAPTURE_SNAPLEN),
    }
}

fn one_run(peer: Peer, n: u16, run: u32, o: &Opts) -> Result<RunResult> {
    let lab = Lab::new(&format!("bcpu{run}"), 2)?;
    // Held to the end of the run (dropping a sender detaches its program).
    let mut _xdp = Vec::new();
    if peer == Peer::KeepalivedXdp {
        for r in 1..=2 {
            let node = lab.r(r);
            _xdp.push(pass_xdp(&node.ns, &node.iface, XdpMode::Generic)?);
        }
    }
    let mut r1 = start(&lab, peer, 1, n, 200, &o.advert_int)?;
    settled(&mut r1, n, MASTER)?;
    let mut r2 = start(&lab, peer, 2, n, 100, &o.advert_int)?;
    settled(&mut r2, n, BACKUP)?;
    // Start-up work (loading, GARP bursts) out of the window.
    sleep(Duration::from_secs(2))?;
    check_interrupted()?;
    let (p1, p2) = (pids(&r1)?, pids(&r2)?);
    let all: Vec<i32> = [p1.0, p2.0].into_iter().chain(p1.1).chain(p2.1).collect();
    // SAFETY: no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // Transitions so far (start-up), per VRID.
    let (s1, s2) = (
        transitions_per_vrid(&mut r1, n),
        transitions_per_vrid(&mut r2, n),
    );
    let t0 = Instant::now();
    let a = sample(&all);
    sleep(Duration::from_secs(o.window))?;
    let b = sample(&all);
    let dt = t0.elapsed().as_secs_f64();
    let master = router_cost("master", p1, &a, &b, dt, hz);
    let backup = router_cost("backup", p2, &a, &b, dt, hz);
    for vr in [&mut r1, &mut r2] {
        if vr.proc.child.try_wait()?.is_some() {
            bail!(
                "{} exited during the window:\n{}",
                vr.node,
                vr.proc.output()
            );
        }
    }
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("r1.pcap");
    let cap = lab.capture_sent_snaplen(1, "ip proto 112", &pcap, capture_snaplen())?;
    let rx0 = port_rx_packets(&lab, &lab.r(1).port)?;
    sleep(Duration::from_secs(o.capture))?;
    let rx1 = port_rx_packets(&lab, &lab.r(1).port)?;
    let (file, capture_dropped) = cap.stop_counted()?;
    let mut iv = intervals(&file)?;
    iv.sent = rx1.saturating_sub(rx0);
    iv.capture_dropped = capture_dropped;
    // Role changes of every VRID (a starved peer flaps; its figures then include the flapping,
    // and the row says so): at start-up, past r1 INIT -> BACKUP -> MASTER and r2 INIT ->
    // BACKUP; then from the window's start to the capture's end.
    let (e1, e2) = (
        transitions_per_vrid(&mut r1, n),
        transitions_per_vrid(&mut r2, n),
    );
    let mut startup_role_changes = 0;
    let mut role_changes = 0;
    let mut vrids_changed = Vec::new();
    for k in 0..usize::from(n) {
        let up = s1[k].saturating_sub(2) + s2[k].saturating_sub(1);
        let window = e1[k].saturating_sub(s1[k]) + e2[k].saturating_sub(s2[k]);
        startup_role_changes += up;
        role_changes += window;
        if up + window > 0 {
            vrids_changed.push(k as u16 + 1);
        }
    }
    if !vrids_changed.is_empty() {
        // Kept for a closer look: both routers' logs.
        let keep = o.json.with_extension("logs");
        fs::create_dir_all(&keep).with_context(|| format!("creating {keep:?}"))?;
        for (r, vr) in [(1, &r1), (2, &r2)] {
            let f = keep.join(format!(
                "{}-{n}vrids-run{run}.r{r}.log",
                peer_name(peer).replace('+', "-")
            ));
            fs::write(&f, vr.proc.output()).with_context(|| format!("writing {f:?}"))?;
        }
    }
    Ok(RunResult {
        peer,
        vrids: n,
        run,
        window_s: dt,
        master,
        backup,
        intervals: iv,
        role_changes,
        startup_role_changes,
        vrids_changed,
    })
}

// ---- the report ----

fn median(v: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = v.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[(v.len() - 1) / 2])
}

fn print_run(r: &RunResult) {
    println!(
        "  {:<10} {:>3} VRIDs run {}: master {:.2} % ({:.2} % ticks, {} threads) {:.1} MB, backup {:.2} % ({:.2} % ticks) {:.1} MB; \
         adverts p50 {:.2} p99 {:.2} max {:.2} ms (worst VRID p99 {:.2}, {} VRIDs, {} adverts of {} frames sent, {} dropped by the capture){}{}",
        peer_name(r.peer),
        r.vrids,
        r.run,
        r.master.cpu_pct,
        r.master.ticks_pct,
        r.master.vrrp.threads + r.master.parent.as_ref().map_or(0, |p| p.threads),
        r.master.rss_kb as f64 / 1024.0,
        r.backup.cpu_pct,
        r.backup.ticks_pct,
        r.backup.rss_kb as f64 / 1024.0,
        r.intervals.p50_ms,
        r.intervals.p99_ms,
        r.intervals.max_ms,
        r.intervals.worst_vrid_p99_ms,
        r.intervals.vrids_seen,
        r.intervals.adverts,
        r.intervals.sent,
        r.intervals.capture_dropped,
        if r.startup_role_changes > 0 {
            format!("; {} role changes at start-up", r.startup_role_changes)
        } else {
            String::new()
        },
        if r.role_changes > 0 {
            format!("; {} ROLE CHANGES in the window", r.role_changes)
        } else {
            String::new()
        },
    );
    if !r.vrids_changed.is_empty() {
        println!("    VRIDs with role changes: {:?}", r.vrids_changed);
    }
}

/// Median over runs of (CPU %, RSS MB, advert p99 ms) of `peer` at `n` VRIDs in `role`.
fn pick(results: &[RunResult], peer: Peer, n: u16, role: &str) -> Option<(f64, f64, f64)> {
    let rs: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.peer == peer && r.vrids == n)
        .collect();
    let rc = |r: &&RunResult| {
        if role == "master" {
            r.master.clone()
        } else {
            r.backup.clone()
        }
    };
    Some((
        median(rs.iter().map(|r| rc(r).cpu_pct))?,
        median(rs.iter().map(|r| rc(r).rss_kb as f64 / 1024.0))?,
        median(rs.iter().map(|r| r.intervals.p99_ms))?,
    ))
}

/// The report (target/bench/cpu.json, .svg, and a section of report.md): per count of VRIDs
/// and role, the agent's CPU against keepalived's as it runs (`keepalived`) and with the same
/// receive path as the agent's pair (`keepalived+xdp`), RSS, and the master's advert p99.
fn report(results: &[RunResult], failures: &[String], o: &Opts) -> crate::report::Report {
    let mut rep = crate::report::Report::new(
        "cpu",
        &format!(
            "CPU (every thread, % of one core; keepalived child + parent) and RSS at rest, r1 master \
             and r2 backup of every VRID, VRRPv3 every {} s, {} s windows, median of {} run(s)",
            o.advert_int, o.window, o.runs
        ),
        &reproduce(o),
    );
    let fair = o.peers.contains(&Peer::KeepalivedXdp);
    for &n in &o.vrids {
        for role in ["master", "backup"] {
            let a = pick(results, Peer::Agent, n, role);
            let k = pick(results, Peer::Keepalived, n, role);
            let kx = pick(results, Peer::KeepalivedXdp, n, role);
            rep.row(
                &format!("{n} VRIDs, {role}: CPU"),
                a.map(|x| x.0),
                k.map(|x| x.0),
                "%",
            );
            if fair {
                rep.row(
                    &format!("{n} VRIDs, {role}: CPU against keepalived+xdp (fair)"),
                    a.map(|x| x.0),
                    kx.map(|x| x.0),
                    "%",
                );
            }
            rep.row(
                &format!("{n} VRIDs, {role}: RSS"),
                a.map(|x| x.1),
                k.map(|x| x.1),
                "MB",
            );
        }
        rep.row(
            &format!("{n} VRIDs: master's advert interval p99"),
            pick(results, Peer::Agent, n, "master").map(|x| x.2),
            pick(results, Peer::Keepalived, n, "master").map(|x| x.2),
            "ms",
        );
    }
    rep.note(
        "CPU is every thread's sum_exec_runtime; the softirq work of an advert's path through \
         veth and bridge into the receiver's generic XDP program is charged to the sender. \
         `keepalived` rows: keepalived as it runs (no XDP anywhere on its pair); `keepalived+xdp` \
         rows: the agent's XDP program (passing every frame) on both of its routers, the same \
         receive path the agent's pair has.",
    );
    for r in results.iter().filter(|r| r.role_changes > 0) {
        rep.note(format!(
            "{} {} VRIDs run {}: {} role changes in the window (VRIDs {:?})",
            peer_name(r.peer),
            r.vrids,
            r.run,
            r.role_changes,
            r.vrids_changed
        ));
    }
    for r in results.iter().filter(|r| r.intervals.capture_dropped > 0) {
        rep.note(format!(
            "{} {} VRIDs run {}: the capture dropped {} of {} frames; its advert intervals \
             include those gaps",
            peer_name(r.peer),
            r.vrids,
            r.run,
            r.intervals.capture_dropped,
            r.intervals.sent
        ));
    }
    for f in failures {
        rep.note(f.clone());
    }
    rep
}

fn reproduce(o: &Opts) -> String {
    format!(
        "cargo xtask bench cpu --vrids {} --window {} --runs {}{}",
        o.vrids
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
        o.window,
        o.runs,
        if o.advert_int == "0.01" {
            String::new()
        } else {
            format!(" --advert-int {}", o.advert_int)
        }
    )
}

pub fn bench(o: Opts) -> Result<()> {
    require_root();
    install_interrupt_handler();
    if let Some(v) = o.vrids.iter().find(|v| !(1..=255).contains(*v)) {
        bail!("--vrids: {v} is not a count of VRIDs from 1 to 255");
    }
    let started = Instant::now();
    println!(
        "cpu benchmark: r1 priority 200 (master of every VRID), r2 priority 100 (backup), VRRPv3 every {} s; \
         CPU over {} s from /proc (every thread; keepalived child + parent), then {} s of capture",
        o.advert_int, o.window, o.capture
    );
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for run in 1..=o.runs {
        for &n in &o.vrids {
            for &peer in &o.peers {
                check_interrupted()?;
                match one_run(peer, n, run, &o) {
                    Ok(r) => {
                        print_run(&r);
                        results.push(r);
                    }
                    Err(e) => {
                        check_interrupted()?;
                        let msg = format!("{} {n} VRIDs run {run}: {e:#}", peer_name(peer));
                        eprintln!("FAILED: {msg}");
                        failures.push(msg);
                    }
                }
            }
        }
    }
    println!("  {:.0} s", started.elapsed().as_secs_f64());
    let rep = report(&results, &failures, &o);
    let report = Runs {
        command: reproduce(&o),
        advert_int: o.advert_int.clone(),
        results,
        failures,
    };
    if let Some(d) = o.json.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(&o.json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {:?}", o.json))?;
    println!("  per-run results: {}", o.json.display());
    rep.emit()?;
    if report.results.is_empty() {
        bail!("no run succeeded");
    }
    Ok(())
}
