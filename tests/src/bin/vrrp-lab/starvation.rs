//! `vrrp-lab bench-starvation`: false failovers under CPU starvation, vrrp-agent and keepalived
//! side by side.
//!
//! Per run: a fresh lab (r1 priority 200 = master, r2 priority 100 = backup, VRRPv3, one VIP),
//! the two routers converge, tcpdump starts on r1's bridge port (switch namespace, both
//! directions), then one busy thread per CPU (pinned, at the given nice level) runs for the
//! run's duration. Afterwards:
//! - role changes per router after convergence, from the logs (vrrp-agent `instance X: state A
//!   -> B`, keepalived `(X) Entering ... STATE`); r1 never fails, so every r2 `MASTER` is a false
//!   failover;
//! - the gaps between r1's adverts on the wire (pcap timestamps; max, p99, how many exceed
//!   Master_Down_Interval);
//! - for every takeover (r2's first advert after silence): how long the wire had been silent of
//!   r1's adverts before it. Longer than Master_Down_Interval: the master starved (its adverts
//!   left late, the backup acted by the protocol). Shorter: the backup acted on a stale view.
//!
//! The hogs are threads of this process (pinned, nice set per thread): stopped when a run
//! ends, on failure and on Ctrl-C, after a bound, and with this process.
use std::{
    collections::BTreeMap,
    fs,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use vrrp_integration_tests::{
    lab::{
        instance_name, keepalived_conf, sibling_agent_bin, vip_cidr, vr_args, Lab, Vr, VrKind,
        BACKUP, MASTER,
    },
    percentile,
    prober::realtime_ns,
    require_root,
};

use crate::failover::{check_interrupted, install_interrupt_handler, read_adverts, sleep, Wire};

/// What runs on both routers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// vrrp-agent as configured by default (real-time scheduling).
    Agent,
    /// vrrp-agent with `--realtime-priority 0` (normal scheduling), for a before/after
    /// comparison in one invocation.
    AgentNormal,
    /// keepalived with its defaults (normal scheduling).
    Keepalived,
}

const VRID: u8 = 51;
const R1_PRIO: u8 = 200;
const R2_PRIO: u8 = 100;

pub struct Opts {
    pub runs: u32,
    pub duration: Duration,
    pub nices: Vec<i32>,
    pub peers: Vec<Peer>,
    pub advert_int: String,
    pub json: PathBuf,
    /// Extra arguments for both agents (e.g. `--realtime-priority 0` to measure without the
    /// real-time policy).
    pub agent_args: Vec<String>,
    /// Keep every run's capture and logs (not only those with role changes).
    pub keep: bool,
    /// Busy threads per CPU (1: the setup; more: heavier contention).
    pub hogs_per_cpu: u32,
}

fn peer_name(p: Peer) -> &'static str {
    match p {
        Peer::Agent => "vrrp-agent",
        Peer::AgentNormal => "vrrp-agent (rt 0)",
        Peer::Keepalived => "keepalived",
    }
}

/// The `&'static str` [`peer_name`] equal to `name` (the key of a summary cell).
fn peer_name_of(name: &str) -> &'static str {
    [Peer::Agent, Peer::AgentNormal, Peer::Keepalived]
        .into_iter()
        .map(peer_name)
        .find(|n| *n == name)
        .unwrap_or("")
}

fn peer_arg(p: Peer) -> &'static str {
    match p {
        Peer::Agent => "agent",
        Peer::AgentNormal => "agent-normal",
        Peer::Keepalived => "keepalived",
    }
}

// ---------------------------------------------------------------------------------------------
// CPU hogs.

/// Pins the calling thread to `cpu` and gives it `nice` (Linux: per thread).
fn hog_setup(cpu: usize, nice: i32) -> Result<()> {
    // SAFETY: plain syscalls on the calling thread; a zeroed cpu_set_t is an empty set and
    // CPU_SET stays within it (cpu < CPU_SETSIZE).
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("CPU hog: setpriority({nice})"));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("CPU hog: pinning to CPU {cpu}"));
        }
    }
    Ok(())
}

/// One busy thread per online CPU, pinned, at the given nice level; stopped on drop (so also on
/// failure and Ctrl-C), after a bound, and with this process.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(nice: i32, per_cpu: u32, max: Duration) -> Result<Self> {
        // SAFETY: plain sysconf call.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        let mut hogs = Hogs {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let n = cpus * per_cpu.max(1) as usize;
        for k in 0..n {
            let cpu = k % cpus;
            let stop = hogs.stop.clone();
            let ready = ready_tx.clone();
            hogs.threads.push(std::thread::spawn(move || {
                let ok = hog_setup(cpu, nice);
                let go = ok.is_ok();
                let _ = ready.send(ok);
                let end = Instant::now() + max;
                let mut x = 1u64;
                while go && !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                        );
                    }
                }
            }));
        }
        for _ in 0..n {
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .context("a CPU hog did not start")??;
        }
        Ok(hogs)
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hypervisor steal time.

/// CPU time the hypervisor took from this VM's CPUs, from /proc/stat (`steal`, in clock
/// ticks): a stolen CPU runs nothing, whatever its priority. The kernel accounts a stolen
/// stretch on the tick after the CPU gets back, so a jump between two samples is one burst that
/// ended near the later sample.
#[derive(Clone, Debug, Serialize)]
struct StealBurst {
    /// CLOCK_REALTIME ns of the sample that saw it.
    #[serde(skip)]
    seen_ns: u64,
    /// Seconds after the hogs started.
    at_s: f64,
    cpu: usize,
    ms: f64,
}

/// Per-CPU steal counters (ticks), `cpuN` lines of /proc/stat.
fn steal_ticks() -> Vec<u64> {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .nth(8)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

/// Samples steal every 2 ms on a thread at SCHED_FIFO 1 (below the agents' default 10, above
/// the hogs) until dropped.
struct StealSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<StealBurst>>>,
}

impl StealSampler {
    fn start(t0: u64, max: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let param = libc::sched_param { sched_priority: 1 };
            // SAFETY: plain syscall on the calling thread; on failure it samples less exactly.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            // SAFETY: plain sysconf call.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
            let mut prev = steal_ticks();
            let mut bursts = Vec::new();
            let end = Instant::now() + max;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(2));
                let now = steal_ticks();
                let t = realtime_ns();
                for (cpu, (a, b)) in prev.iter().zip(&now).enumerate() {
                    if b > a {
                        bursts.push(StealBurst {
                            seen_ns: t,
                            at_s: t.saturating_sub(t0) as f64 / 1e9,
                            cpu,
                            ms: (b - a) as f64 * 1000.0 / hz,
                        });
                    }
                }
                prev = now;
            }
            bursts
        });
        StealSampler {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<StealBurst> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for StealSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The capture.

// ---------------------------------------------------------------------------------------------
// One run.

#[derive(Clone, Debug, Serialize)]
struct Takeover {
    /// r2's first advert as master, seconds after the hogs started.
    at_s: f64,
    /// Time from r1's last advert on the wire to r2's first advert as master, ms.
    wire_silent_ms: f64,
    /// The gap between r1's adverts that explains the takeover: longer than
    /// Master_Down_Interval, and r2's advert left at most 100 ms after that interval ran out
    /// (r2 decides before its advert leaves: claiming the VIP and its own scheduling come in
    /// between). ms; `None`: no such gap.
    cause_gap_ms: Option<f64>,
    /// From the moment r2 could first have decided (that gap's start + Master_Down_Interval) to
    /// its first advert, ms.
    lag_ms: Option<f64>,
    /// `master starved` (such a gap exists: the master's adverts left late) or `stale view`
    /// (none: r2 acted while r1's adverts were on the wire).
    cause: &'static str,
    /// Hypervisor steal seen during that gap (plus 10 ms: it is accounted on the next tick),
    /// ms, summed over the CPUs.
    steal_ms: f64,
    /// CLOCK_REALTIME ns of that gap (start, end), for matching steal bursts.
    #[serde(skip)]
    gap_ns: Option<(u64, u64)>,
}

/// How late r2's first advert as master may leave after the moment it could first have decided
/// (claiming the VIP and its own scheduling come in between); a wire gap that allowed a
/// decision earlier than this does not explain the takeover.
const DECISION_LAG_NS: u64 = 100_000_000;

/// The takeovers in `wire`: r2 adverts after at least `mdi_ms` of r2 silence (a backup sends
/// nothing), from `t0` on.
fn takeovers(wire: &Wire, t0: u64, mdi_ms: f64) -> Vec<Takeover> {
    let mdi_ns = (mdi_ms * 1e6) as u64;
    let mut out = Vec::new();
    let mut prev_r2: Option<u64> = None;
    for &t in &wire.r2 {
        let new_episode = prev_r2.is_none_or(|p| t.saturating_sub(p) >= mdi_ns);
        prev_r2 = Some(t);
        if !new_episode || t < t0 {
            continue;
        }
        let last_r1 = wire.r1.iter().copied().filter(|&x| x <= t).max();
        let silent_ms = last_r1.map_or(f64::INFINITY, |l| (t - l) as f64 / 1e6);
        // r1's gaps (the one still open at r2's advert included) that ran past
        // Master_Down_Interval at a moment r2 could have acted on and still sent at `t`.
        let from = t.saturating_sub(DECISION_LAG_NS + mdi_ns);
        let mut times: Vec<u64> = wire
            .r1
            .iter()
            .copied()
            .filter(|&x| x >= from && x <= t)
            .collect();
        times.insert(
            0,
            wire.r1
                .iter()
                .copied()
                .filter(|&x| x < from)
                .max()
                .unwrap_or(from),
        );
        times.push(t);
        let cause_gap = times
            .windows(2)
            .rfind(|w| {
                let expiry = w[0] + mdi_ns;
                w[1] - w[0] > mdi_ns && expiry <= t && expiry + DECISION_LAG_NS >= t
            })
            .map(|w| (w[0], w[1]));
        out.push(Takeover {
            at_s: t.saturating_sub(t0) as f64 / 1e9,
            wire_silent_ms: silent_ms,
            cause_gap_ms: cause_gap.map(|(a, b)| (b - a) as f64 / 1e6),
            lag_ms: cause_gap.map(|(a, _)| (t - (a + mdi_ns)) as f64 / 1e6),
            cause: if cause_gap.is_some() {
                "master starved"
            } else {
                "stale view"
            },
            steal_ms: 0.0,
            gap_ns: cause_gap,
        });
    }
    out
}

#[derive(Clone, Debug, Serialize)]
struct RunResult {
    implementation: &'static str,
    nice: i32,
    run: u32,
    duration_s: f64,
    /// States entered after convergence, per router.
    r1_transitions: Vec<String>,
    r2_transitions: Vec<String>,
    role_changes_r1: usize,
    role_changes_r2: usize,
    false_failovers: usize,
    r1_adverts: usize,
    max_gap_ms: f64,
    p99_gap_ms: f64,
    gaps_over_mdi: usize,
    mdi_ms: f64,
    takeovers: Vec<Takeover>,
    /// Hypervisor steal during the run, ms summed over the CPUs, and its bursts.
    steal_ms: f64,
    steal_bursts: Vec<StealBurst>,
    /// The largest gap between r1's adverts, and the steal seen during it, ms.
    max_gap_steal_ms: f64,
    /// The capture of r1's bridge port, kept when a router changed roles or with `--keep` (with
    /// both routers' logs next to it, `.r1.log` / `.r2.log`).
    pcap: Option<PathBuf>,
    /// Scheduling policy of the routers' VRRP processes (all threads), as read from /proc.
    sched_r1: String,
    sched_r2: String,
    /// Gaps between r1's adverts, µs (for the summary's pooled percentiles).
    #[serde(skip)]
    gaps_us: Vec<u64>,
}

fn start_router(
    lab: &Lab,
    n: usize,
    prio: u8,
    peer: Peer,
    o: &Opts,
    agent: &Option<PathBuf>,
) -> Result<Vr> {
    let vip = vip_cidr(false);
    match peer {
        Peer::Agent | Peer::AgentNormal => {
            let mut args = vr_args(VRID, prio, &vip, &o.advert_int);
            if peer == Peer::AgentNormal {
                args.extend(["--realtime-priority".to_owned(), "0".to_owned()]);
            }
            args.extend(o.agent_args.iter().cloned());
            lab.agent(
                n,
                agent.as_ref().expect("agent binary"),
                &args,
                &instance_name(VRID, false),
            )
        }
        Peer::Keepalived => lab.keepalived(
            n,
            &keepalived_conf("V4", VRID, prio, &o.advert_int, &[&vip], ""),
            "V4",
        ),
    }
}

/// The pid of the process that runs VRRP: the agent itself (`ip netns exec` execs it), or
/// keepalived's VRRP child.
pub(crate) fn vrrp_pid(vr: &Vr) -> Option<i32> {
    match vr.kind {
        // FRR: `sh -c '... exec vrrpd'`.
        VrKind::Agent | VrKind::Frr => Some(vr.proc.child.id() as i32),
        VrKind::Keepalived => {
            let dir = vr.proc.log.parent()?;
            fs::read_to_string(dir.join("vrrp.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        }
    }
}

/// `SCHED_FIFO 10`, `normal nice 0`, ... for every thread of `pid` (distinct values, joined).
fn sched_of(pid: Option<i32>) -> String {
    let Some(pid) = pid else {
        return "?".into();
    };
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return "?".into();
    };
    let mut seen = std::collections::BTreeSet::new();
    for t in tasks.flatten() {
        let Ok(stat) = fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces): state is field 3.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // field n (1-based) is f[n - 3]: nice 19, rt_priority 40, policy 41.
        let (Some(nice), Some(rtp), Some(pol)) = (f.get(16), f.get(37), f.get(38)) else {
            continue;
        };
        seen.insert(match *pol {
            "1" => format!("SCHED_FIFO {rtp}"),
            "2" => format!("SCHED_RR {rtp}"),
            "0" => format!("normal nice {nice}"),
            p => format!("policy {p}"),
        });
    }
    if seen.is_empty() {
        "?".into()
    } else {
        seen.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// Master_Down_Interval of r2 (RFC 9568: 3 × interval + (256 − priority) × interval / 256), ms.
fn mdi_ms(advert_int: &str) -> Result<f64> {
    let i: f64 = advert_int
        .parse()
        .with_context(|| format!("--advert-int {advert_int}"))?;
    let i_ms = i * 1000.0;
    Ok(3.0 * i_ms + f64::from(256 - u32::from(R2_PRIO)) * i_ms / 256.0)
}

fn one_run(
    peer: Peer,
    nice: i32,
    run: u32,
    o: &Opts,
    agent: &Option<PathBuf>,
) -> Result<RunResult> {
    let lab = Lab::new(&format!("sv{run}"), 2)?;
    let mut r1 = start_router(&lab, 1, R1_PRIO, peer, o, agent)?;
    r1.wait_state(MASTER, Duration::from_secs(10))?;
    let mut r2 = start_router(&lab, 2, R2_PRIO, peer, o, agent)?;
    r2.wait_state(BACKUP, Duration::from_secs(10))?;
    sleep(Duration::from_millis(300))?;
    check_interrupted()?;
    if r1.state().as_deref() != Some(MASTER) || r2.state().as_deref() != Some(BACKUP) {
        bail!(
            "no stable start: r1 {:?}, r2 {:?}",
            r1.transitions(),
            r2.transitions()
        );
    }
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("r1-port.pcap");
    let cap = lab.capture(&lab.r(1).port, None, "ip proto 112", &pcap)?;
    // Adverts before the hogs start, so that a gap across the start is measured whole.
    sleep(Duration::from_millis(200))?;
    let n1 = r1.transitions().len();
    let n2 = r2.transitions().len();

    let t0 = realtime_ns();
    let sampler = StealSampler::start(t0, o.duration + Duration::from_secs(30));
    let hogs = Hogs::start(nice, o.hogs_per_cpu, o.duration + Duration::from_secs(30))?;
    let window = sleep(o.duration);
    let sched_r1 = sched_of(vrrp_pid(&r1));
    let sched_r2 = sched_of(vrrp_pid(&r2));
    drop(hogs);
    let t1 = realtime_ns();
    let steal = sampler.finish();
    window?;
    sleep(Duration::from_millis(100))?;
    let file = cap.stop()?;
    let tr1: Vec<String> = r1.transitions().split_off(n1);
    let tr2: Vec<String> = r2.transitions().split_off(n2);
    let logs = [r1.proc.output(), r2.proc.output()];
    drop((r1, r2));

    let wire = read_adverts(&file, lab.r(1).ip4, lab.r(2).ip4)?;
    let pcap_kept = if tr1.is_empty() && tr2.is_empty() && !o.keep {
        None
    } else {
        // Kept for a closer look (tshark -r FILE).
        let dir = o.json.with_extension("pcaps");
        fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
        let dst = dir.join(format!("{}-nice{nice}-run{run}.pcap", peer_arg(peer)));
        fs::copy(&file, &dst).with_context(|| format!("copying the capture to {dst:?}"))?;
        for (i, log) in logs.iter().enumerate() {
            let f = dst.with_extension(format!("r{}.log", i + 1));
            fs::write(&f, log).with_context(|| format!("writing {f:?}"))?;
        }
        Some(dst)
    };
    let mdi = mdi_ms(&o.advert_int)?;
    // r1's adverts while the hogs ran, with the last one before they started (a gap across the
    // start is theirs too).
    let before = wire.r1.iter().copied().filter(|&t| t < t0).max();
    let in_window: Vec<u64> = before
        .into_iter()
        .chain(wire.r1.iter().copied().filter(|&t| t >= t0 && t <= t1))
        .collect();
    if in_window.len() < 2 {
        bail!("r1 sent {} adverts during the run", in_window.len());
    }
    let mut gaps_us: Vec<u64> = in_window
        .windows(2)
        .map(|w| (w[1].saturating_sub(w[0])) / 1000)
        .collect();
    let gaps_over_mdi = gaps_us.iter().filter(|&&g| g as f64 / 1000.0 > mdi).count();
    // Steal seen from the start of a gap to 10 ms (one tick or so) after its end.
    let steal_in = |a: u64, b: u64| -> f64 {
        steal
            .iter()
            .filter(|x| x.seen_ns > a && x.seen_ns <= b + 10_000_000)
            .map(|x| x.ms)
            .fold(0.0, |a, b| a + b)
    };
    let mut takeovers = takeovers(&wire, t0, mdi);
    for t in &mut takeovers {
        if let Some((a, b)) = t.gap_ns {
            t.steal_ms = steal_in(a, b);
        }
    }
    let max_gap_steal_ms = in_window
        .windows(2)
        .max_by_key(|w| w[1] - w[0])
        .map_or(0.0, |w| steal_in(w[0], w[1]));
    let false_failovers = tr2.iter().filter(|s| *s == MASTER).count();
    let mut sorted = gaps_us.clone();
    sorted.sort_unstable();
    let res = RunResult {
        implementation: peer_name(peer),
        nice,
        run,
        duration_s: (t1 - t0) as f64 / 1e9,
        role_changes_r1: tr1.len(),
        role_changes_r2: tr2.len(),
        r1_transitions: tr1,
        r2_transitions: tr2,
        false_failovers,
        r1_adverts: in_window.len(),
        max_gap_ms: *sorted.last().unwrap_or(&0) as f64 / 1000.0,
        p99_gap_ms: percentile(&sorted, 99.0) as f64 / 1000.0,
        gaps_over_mdi,
        mdi_ms: mdi,
        takeovers,
        steal_ms: steal.iter().map(|b| b.ms).fold(0.0, |a, b| a + b),
        steal_bursts: steal,
        max_gap_steal_ms,
        pcap: pcap_kept,
        sched_r1,
        sched_r2,
        gaps_us: std::mem::take(&mut gaps_us),
    };
    Ok(res)
}

fn print_run(r: &RunResult) {
    println!(
        "nice {:>3} run {:>2} {:<17}: role changes r1 {} r2 {}{}; r1 adverts {}, wire gap max {:.1} ms p99 {:.1} ms, {} over MDI {:.1} ms; hypervisor steal {:.0} ms ({:.0} ms during the max gap); sched r1 [{}] r2 [{}]",
        r.nice,
        r.run,
        r.implementation,
        r.role_changes_r1,
        r.role_changes_r2,
        if r.r2_transitions.is_empty() && r.r1_transitions.is_empty() {
            String::new()
        } else {
            format!(" (r1 {:?}, r2 {:?})", r.r1_transitions, r.r2_transitions)
        },
        r.r1_adverts,
        r.max_gap_ms,
        r.p99_gap_ms,
        r.gaps_over_mdi,
        r.mdi_ms,
        r.steal_ms,
        r.max_gap_steal_ms,
        r.sched_r1,
        r.sched_r2,
    );
    for t in &r.takeovers {
        println!(
            "    takeover at +{:.3} s: r1 silent for {:.1} ms before r2's first advert; {} -> {}",
            t.at_s,
            t.wire_silent_ms,
            match (t.cause_gap_ms, t.lag_ms) {
                (Some(g), Some(l)) => format!(
                    "r1 gap of {g:.1} ms ({:.0} ms hypervisor steal in it), r2's advert {l:.1} ms after it passed the MDI",
                    t.steal_ms
                ),
                _ => "no r1 gap over the MDI within 100 ms before".to_owned(),
            },
            t.cause
        );
    }
}

#[derive(Serialize)]
struct Report<'a> {
    command: String,
    advert_int: &'a str,
    runs: &'a [RunResult],
    failures: &'a [String],
}

pub fn bench(o: Opts) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let agent = if o.peers.iter().any(|p| *p != Peer::Keepalived) {
        Some(sibling_agent_bin()?)
    } else {
        None
    };
    let mdi = mdi_ms(&o.advert_int)?;
    let started = Instant::now();
    let mut results: Vec<RunResult> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    println!(
        "starvation benchmark: r1 priority {R1_PRIO} (master), r2 priority {R2_PRIO}, VRRPv3 every {} s (r2's Master_Down_Interval {mdi:.1} ms); \
         {} busy thread(s) per CPU for {} s per run",
        o.advert_int,
        o.hogs_per_cpu,
        o.duration.as_secs_f64()
    );
    for &nice in &o.nices {
        for run in 1..=o.runs {
            for &peer in &o.peers {
                check_interrupted()?;
                match one_run(peer, nice, run, &o, &agent) {
                    Ok(r) => {
                        print_run(&r);
                        results.push(r);
                    }
                    Err(e) => {
                        check_interrupted()?;
                        let msg = format!("nice {nice} run {run} {}: {e:#}", peer_name(peer));
                        eprintln!("FAILED: {msg}");
                        failures.push(msg);
                    }
                }
            }
        }
    }
    let command = reproduce(&o);
    println!(
        "\nsummary ({:.0} s; wire gaps = between r1's adverts on its bridge port; MDI {mdi:.1} ms)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {:<17} {:>4} {:>5} {:>15} {:>12} {:>12} {:>12} {:>11}",
        "impl",
        "nice",
        "runs",
        "false-failover",
        "role changes",
        "max gap ms",
        "p99 gap ms",
        "gaps > MDI"
    );
    let mut cells: BTreeMap<(i32, &str), Vec<&RunResult>> = BTreeMap::new();
    for r in &results {
        cells
            .entry((-r.nice, r.implementation))
            .or_default()
            .push(r);
    }
    for ((neg_nice, imp), rs) in &cells {
        let mut all: Vec<u64> = rs.iter().flat_map(|r| r.gaps_us.iter().copied()).collect();
        all.sort_unstable();
        let starved: usize = rs
            .iter()
            .flat_map(|r| &r.takeovers)
            .filter(|t| t.cause == "master starved")
            .count();
        let stale: usize = rs
            .iter()
            .flat_map(|r| &r.takeovers)
            .filter(|t| t.cause == "stale view")
            .count();
        println!(
            "  {:<17} {:>4} {:>5} {:>15} {:>12} {:>12.1} {:>12.1} {:>11}{}",
            imp,
            -neg_nice,
            rs.len(),
            rs.iter().filter(|r| r.false_failovers > 0).count(),
            rs.iter()
                .map(|r| r.role_changes_r1 + r.role_changes_r2)
                .sum::<usize>(),
            *all.last().unwrap_or(&0) as f64 / 1000.0,
            percentile(&all, 99.0) as f64 / 1000.0,
            rs.iter().map(|r| r.gaps_over_mdi).sum::<usize>(),
            if starved + stale > 0 {
                let stolen = rs
                    .iter()
                    .flat_map(|r| &r.takeovers)
                    .filter(|t| t.steal_ms >= 10.0)
                    .count();
                format!(
                    "   takeovers: {starved} master starved ({stolen} with >= 10 ms hypervisor steal in the gap), {stale} stale view"
                )
            } else {
                String::new()
            }
        );
    }
    for f in &failures {
        println!("  {f}");
    }
    if let Some(dir) = o.json.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {dir:?}"))?;
    }
    let report = Report {
        command: command.clone(),
        advert_int: &o.advert_int,
        runs: &results,
        failures: &failures,
    };
    fs::write(&o.json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {:?}", o.json))?;
    println!("  per-run results: {}", o.json.display());
    println!("  reproduce: {command}");
    let mut rep = crate::report::Report::new(
        "starvation",
        &format!(
            "false failovers under CPU starvation: {} busy thread(s) per CPU, {} run(s) of {} s per \
             implementation and nice level, VRRPv3 every {} s; wire gaps between r1's adverts",
            o.hogs_per_cpu,
            o.runs,
            o.duration.as_secs(),
            o.advert_int
        ),
        &command,
    );
    let cell = |nice: i32, imp: &str| cells.get(&(-nice, peer_name_of(imp)));
    for &nice in &o.nices {
        let (a, k) = (cell(nice, "vrrp-agent"), cell(nice, "keepalived"));
        type Fig = fn(&[&RunResult]) -> f64;
        let figs: [(&str, &str, Fig); 5] = [
            ("runs with a false failover", "", |rs| {
                rs.iter().filter(|r| r.false_failovers > 0).count() as f64
            }),
            ("role changes", "", |rs| {
                rs.iter()
                    .map(|r| r.role_changes_r1 + r.role_changes_r2)
                    .sum::<usize>() as f64
            }),
            ("max wire gap", "ms", |rs| {
                rs.iter()
                    .flat_map(|r| r.gaps_us.iter().copied())
                    .max()
                    .unwrap_or(0) as f64
                    / 1000.0
            }),
            ("p99 wire gap", "ms", |rs| {
                let mut all: Vec<u64> = rs.iter().flat_map(|r| r.gaps_us.iter().copied()).collect();
                all.sort_unstable();
                percentile(&all, 99.0) as f64 / 1000.0
            }),
            ("wire gaps > MDI", "", |rs| {
                rs.iter().map(|r| r.gaps_over_mdi).sum::<usize>() as f64
            }),
        ];
        for (what, unit, f) in figs {
            rep.row(
                &format!("hogs at nice {nice}: {what}"),
                a.map(|rs| f(rs)),
                k.map(|rs| f(rs)),
                unit,
            );
        }
    }
    for f in &failures {
        rep.note(f.clone());
    }
    rep.emit()?;
    if results.is_empty() {
        bail!("no run succeeded");
    }
    Ok(())
}

fn reproduce(o: &Opts) -> String {
    let mut s = format!(
        "cargo xtask bench starvation --runs {} --duration {} --nice {} --peer {}",
        o.runs,
        o.duration.as_secs(),
        o.nices
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        o.peers
            .iter()
            .map(|p| peer_arg(*p))
            .collect::<Vec<_>>()
            .join(","),
    );
    if o.advert_int != "0.01" {
        s.push_str(&format!(" --advert-int {}", o.advert_int));
    }
    for a in &o.agent_args {
        s.push_str(&format!(" --agent-arg={a}"));
    }
    if o.keep {
        s.push_str(" --keep");
    }
    if o.hogs_per_cpu != 1 {
        s.push_str(&format!(" --hogs-per-cpu {}", o.hogs_per_cpu));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const MDI: f64 = 36.09375;

    /// r1 every 10 ms from 0 to `until` ms, except in the `(from, to)` ms holes.
    fn r1(until: u64, holes: &[(u64, u64)]) -> Vec<u64> {
        (0..=until / 10)
            .map(|i| i * 10)
            .filter(|t| !holes.iter().any(|&(a, b)| *t > a && *t < b))
            .map(|t| 1_000 * MS + t * MS)
            .collect()
    }

    #[test]
    fn takeover_after_a_long_master_gap_is_master_starved() {
        // r1 silent from 500 to 550 ms (50 ms > MDI); r2's advert 5 ms after MDI ran out.
        let wire = Wire {
            r1: r1(1000, &[(500, 550)]),
            r2: vec![1_000 * MS + 541 * MS, 1_000 * MS + 551 * MS],
        };
        let t = takeovers(&wire, 1_000 * MS, MDI);
        assert_eq!(t.len(), 1, "one episode: {t:?}");
        assert_eq!(t[0].cause, "master starved");
        assert!((t[0].cause_gap_ms.unwrap() - 41.0).abs() < 1e-6, "{t:?}");
        // r2 left late: r1 resumed before it (its decision was made on the earlier silence).
        let wire = Wire {
            r1: r1(1000, &[(500, 550)]),
            r2: vec![1_000 * MS + 603 * MS],
        };
        let t = takeovers(&wire, 1_000 * MS, MDI);
        assert_eq!(t[0].cause, "master starved", "{t:?}");
        assert!((t[0].lag_ms.unwrap() - (603.0 - 500.0 - MDI)).abs() < 1e-6);
    }

    #[test]
    fn takeover_without_a_master_gap_is_a_stale_view() {
        // r1 never pauses longer than 10 ms.
        let wire = Wire {
            r1: r1(1000, &[]),
            r2: vec![1_000 * MS + 503 * MS],
        };
        assert_eq!(takeovers(&wire, 1_000 * MS, MDI)[0].cause, "stale view");
        // A long gap too long before r2's advert does not explain it.
        let wire = Wire {
            r1: r1(1000, &[(100, 150)]),
            r2: vec![1_000 * MS + 503 * MS],
        };
        let t = takeovers(&wire, 1_000 * MS, MDI);
        assert_eq!(t[0].cause, "stale view", "{t:?}");
        assert_eq!(t[0].cause_gap_ms, None);
    }

    #[test]
    fn r2_adverts_as_master_are_one_episode_until_it_falls_silent() {
        let wire = Wire {
            r1: r1(1000, &[(100, 150), (600, 650)]),
            r2: [140, 150, 160, 640, 650]
                .map(|t| 1_000 * MS + t * MS)
                .to_vec(),
        };
        let t = takeovers(&wire, 1_000 * MS, MDI);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t.iter().all(|t| t.cause == "master starved"));
    }
}
