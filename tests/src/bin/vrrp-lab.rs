//! Lab tools that need root and network namespaces: benchmarks (run through `cargo xtask bench`)
//! and the live demo (`cargo xtask demo`).
#[path = "vrrp-lab/arp.rs"]
mod arp;
#[path = "vrrp-lab/cpu.rs"]
mod cpu;
#[path = "vrrp-lab/failover.rs"]
mod failover;
#[path = "vrrp-lab/fuzz.rs"]
mod fuzz;
#[path = "vrrp-lab/health.rs"]
mod health;
#[path = "vrrp-lab/report.rs"]
mod report;
#[path = "vrrp-lab/restart.rs"]
mod restart;
#[path = "vrrp-lab/soak.rs"]
mod soak;
#[path = "vrrp-lab/starvation.rs"]
mod starvation;

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use vrrp_agent::{
    agent::{drain_adverts, register},
    clock::monotonic_ns,
    config::XdpMode,
    fastpath::FastPath,
    wire::{AdvertFrame, Auth, ChecksumOpts, Version, VrrpRepr},
};
use vrrp_common::{Counter, FAMILY_IPV4};
use vrrp_integration_tests::{percentile, require_root, send_frames, veth, Netns};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Kernel receive time (bpf_ktime_get_ns in XDP) → user-space receipt (CLOCK_MONOTONIC after
    /// the tokio ring-buffer wake-up) for adverts sent over a veth between two namespaces.
    BenchLatency {
        #[arg(long, default_value_t = 10_000)]
        count: u32,
        /// Gap between adverts, microseconds.
        #[arg(long, default_value_t = 200)]
        gap_us: u64,
    },
    /// Client-visible failover gap: per run, a fresh lab (r1 priority 200, r2 priority 100),
    /// (a) hard cut of r1's link, (b) graceful stop (SIGTERM) of r1, measured by the prober.
    BenchFailover {
        #[arg(long, default_value_t = 50)]
        runs: u32,
        /// What runs on both routers (comma-separated; interleaved run by run).
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [failover::Peer::Agent, failover::Peer::Keepalived])]
        peer: Vec<failover::Peer>,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Probe interval, microseconds (one echo + one ARP request each).
        #[arg(long, default_value_t = 1000)]
        probe_us: u64,
        /// Print one line per run.
        #[arg(long)]
        verbose: bool,
    },
    /// False failovers under CPU starvation: per run a fresh lab (r1 priority 200, r2 priority
    /// 100), one busy thread per CPU at each nice level, role changes and r1's advert gaps on
    /// the wire; implementations interleaved.
    BenchStarvation {
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// Seconds of CPU hogs per run.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Nice levels of the CPU hogs (comma-separated).
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true, default_values_t = [0, -10])]
        nice: Vec<i32>,
        /// Implementations (comma-separated), run one after the other within each round.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [starvation::Peer::Agent, starvation::Peer::Keepalived])]
        peer: Vec<starvation::Peer>,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Where the per-run results go (JSON; default: starvation-runs.json in the bench
        /// directory, next to the report starvation.json).
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Extra argument for both agents (repeat; e.g. `--agent-arg=--realtime-priority=0`).
        #[arg(long = "agent-arg", allow_hyphen_values = true)]
        agent_args: Vec<String>,
        /// Keep every run's capture and router logs next to the JSON (`<json>.pcaps/`), not only
        /// those of runs with role changes.
        #[arg(long)]
        keep: bool,
        /// Busy threads per CPU (default 1; more gives heavier contention).
        #[arg(long, default_value_t = 1)]
        hogs_per_cpu: u32,
    },
    /// Service death → VIP on the backup: vrrp-agent's HTTP check against keepalived's
    /// vrrp_script running curl (interleaved runs), then the CPU of 100 checks of each.
    BenchHealth {
        #[arg(long, default_value_t = 30)]
        runs: u32,
        /// The agent's check interval, seconds.
        #[arg(long, default_value = "0.1")]
        interval: String,
        #[arg(long, default_value_t = 2)]
        fall: u32,
        /// Advertisement interval of both, seconds.
        #[arg(long, default_value = "0.1")]
        advert_int: String,
        /// keepalived's vrrp_script interval, whole seconds (1 is its smallest).
        #[arg(long, default_value_t = 1)]
        ka_interval: u32,
        /// Seconds of the CPU window.
        #[arg(long, default_value_t = 10)]
        cpu_window: u64,
    },
    /// Flaps under random loss on the switch (nftables on the bridge): r1 and r2 with 10 ms
    /// adverts for `minutes`; 0 expected.
    BenchSoak {
        #[arg(long, default_value_t = 1.0)]
        minutes: f64,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Percent of the forwarded frames dropped at random.
        #[arg(long, default_value_t = 1)]
        loss: u32,
        /// Where the detailed result goes (JSON; default: soak-runs.json in the bench
        /// directory, next to the report soak.json).
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// CPU (every thread, from /proc), RSS and advert-interval accuracy of a master and a backup
    /// at 1, 50 and 255 VRIDs, vrrp-agent and keepalived interleaved, one lab each.
    BenchCpu {
        /// Counts of VRIDs (comma-separated), each a lab of its own.
        #[arg(long, value_delimiter = ',', default_values_t = [1u16, 50, 255])]
        vrids: Vec<u16>,
        /// Seconds of the CPU window.
        #[arg(long, default_value_t = 10)]
        window: u64,
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Seconds of capture (advert intervals) after the CPU window.
        #[arg(long, default_value_t = 3)]
        capture: u64,
        /// Implementations (comma-separated), one after the other for each count.
        /// `keepalived-xdp` is keepalived with the agent's XDP program (no VIP: it passes every
        /// frame, generic mode) on both routers' interfaces, so that its adverts pay the same
        /// receive path as the agent's: the fair comparison.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [cpu::Peer::Agent, cpu::Peer::Keepalived, cpu::Peer::KeepalivedXdp])]
        peer: Vec<cpu::Peer>,
        /// Where the per-run results go (JSON; default: cpu-runs.json in the bench directory,
        /// next to the report cpu.json).
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Start → first advert on the wire: vrrp-agent's hitless resume, its cold start,
    /// keepalived's cold start (one router, no peer).
    BenchRestart {
        #[arg(long, default_value_t = 20)]
        runs: u32,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
    },
    /// ARP requests (and NS) for the VIP blasted from the client: replies/s and softirq CPU of
    /// vrrp-agent's XDP responder (generic, native) against the kernel answering.
    BenchArp {
        /// Seconds per mode and family.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Sender threads (one AF_PACKET TX ring each).
        #[arg(long, default_value_t = 1)]
        senders: u32,
        /// Modes, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [arp::Mode::None, arp::Mode::Kernel, arp::Mode::Generic, arp::Mode::Native])]
        modes: Vec<arp::Mode>,
        /// ARP only (no IPv6 Neighbor Solicitations).
        #[arg(long)]
        no_v6: bool,
    },
    /// Joins the reports `<name>.json` of the benches NAMES (in the bench directory,
    /// `$VRRP_BENCH_DIR` or target/bench) into report.md there.
    BenchReport { names: Vec<String> },
    /// Mutation fuzzing of the wire codecs, the TOML and keepalived.conf front-ends and the
    /// XDP program under BPF_PROG_TEST_RUN (see vrrp-lab/fuzz.rs).
    BenchFuzz {
        /// Executions per target.
        #[arg(long, default_value_t = 10_000_000)]
        execs: u64,
        /// Targets (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [fuzz::Target::All])]
        target: Vec<fuzz::Target>,
        /// Random seed (the run is reproducible from it).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop each target after this many seconds (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_secs: u64,
        /// Where fuzz.json and failing inputs (fuzz/) go.
        #[arg(long, default_value = "target/bench")]
        out: std::path::PathBuf,
    },
    /// The live demo: lab, two agents, the client pinging the VIP, master link cut, gap.
    Demo {
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::BenchLatency { count, gap_us } => bench_latency(count, gap_us),
        Cmd::BenchFailover {
            runs,
            peer,
            advert_int,
            probe_us,
            verbose,
        } => failover::bench(runs, &peer, &advert_int, probe_us, verbose),
        Cmd::BenchStarvation {
            runs,
            duration,
            nice,
            peer,
            advert_int,
            json,
            agent_args,
            keep,
            hogs_per_cpu,
        } => starvation::bench(starvation::Opts {
            runs,
            duration: Duration::from_secs(duration),
            nices: nice,
            peers: peer,
            advert_int,
            json: json.unwrap_or_else(|| report::dir().join("starvation-runs.json")),
            agent_args,
            keep,
            hogs_per_cpu,
        }),
        Cmd::BenchHealth {
            runs,
            interval,
            fall,
            advert_int,
            ka_interval,
            cpu_window,
        } => health::bench(health::Opts {
            runs,
            interval,
            fall,
            advert_int,
            ka_interval,
            cpu_window,
        }),
        Cmd::BenchCpu {
            vrids,
            window,
            runs,
            advert_int,
            capture,
            peer,
            json,
        } => cpu::bench(cpu::Opts {
            vrids,
            window,
            runs,
            advert_int,
            capture,
            peers: peer,
            json: json.unwrap_or_else(|| report::dir().join("cpu-runs.json")),
        }),
        Cmd::BenchRestart { runs, advert_int } => restart::bench(runs, &advert_int),
        Cmd::BenchSoak {
            minutes,
            advert_int,
            loss,
            json,
        } => soak::bench(
            minutes,
            &advert_int,
            loss,
            &json.unwrap_or_else(|| report::dir().join("soak-runs.json")),
        ),
        Cmd::BenchArp {
            seconds,
            senders,
            modes,
            no_v6,
        } => arp::bench(arp::Opts {
            seconds,
            senders,
            modes,
            v6: !no_v6,
        }),
        Cmd::BenchReport { names } => {
            let path = report::write_markdown(&names)?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Cmd::BenchFuzz {
            execs,
            target,
            seed,
            max_secs,
            out,
        } => fuzz::bench(fuzz::Opts {
            execs,
            targets: target,
            seed,
            max_secs,
            out,
        }),
        Cmd::Demo { advert_int } => failover::demo(&advert_int),
    }
}

const VRID: u8 = 51;

fn bench_latency(count: u32, gap_us: u64) -> Result<()> {
    require_root();
    let rx_ns = Netns::new("lat-rx")?;
    let tx_ns = Netns::new("lat-tx")?;
    veth(
        &rx_ns,
        "rx0",
        &["10.200.0.1/24"],
        &tx_ns,
        "tx0",
        &["10.200.0.2/24"],
    )?;

    let advert = VrrpRepr {
        version: Version::V3,
        vrid: VRID,
        priority: 100,
        max_advert_int: 100,
        auth: Auth::None,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 200, 0, 100))],
    };
    let frame = AdvertFrame::multicast(advert, IpAddr::V4(Ipv4Addr::new(10, 200, 0, 2)))
        .to_bytes(ChecksumOpts::default())?;

    let budget = Duration::from_micros(gap_us * u64::from(count)) + Duration::from_secs(10);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<String>>();
    let rx_path = rx_ns.path();
    let rx = std::thread::spawn(move || -> Result<(Vec<u64>, Vec<u64>)> {
        let setup = || -> Result<FastPath> {
            Netns::enter_path(&rx_path)?;
            let mut fp = FastPath::load()?;
            fp.set_vrid(FAMILY_IPV4, VRID, true)?;
            fp.attach("rx0", XdpMode::Auto)?;
            Ok(fp)
        };
        let mut fp = match setup() {
            Ok(fp) => fp,
            Err(e) => {
                let msg = format!("{e:#}");
                let _ = ready_tx.send(Err(e));
                bail!(msg);
            }
        };
        let mode = format!("{:?}", fp.attachment().map(|a| a.mode));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let lat = rt.block_on(async {
            let mut ring = register(fp.take_events()?)?;
            let _ = ready_tx.send(Ok(mode));
            let mut lat = Vec::with_capacity(count as usize);
            let deadline = tokio::time::Instant::now() + budget;
            while lat.len() < count as usize {
                let r = tokio::time::timeout_at(
                    deadline,
                    drain_adverts(&mut ring, |a| {
                        lat.push(monotonic_ns().saturating_sub(a.rx_time_ns))
                    }),
                )
                .await;
                match r {
                    Ok(r) => {
                        r?;
                    }
                    Err(_) => break,
                }
            }
            anyhow::Ok(lat)
        })?;
        Ok((lat, fp.counters()?.0))
    });

    let mode = ready_rx
        .recv()
        .context("receiver thread died")?
        .context("setting up the receiver")?;
    let tx_path = tx_ns.path();
    let started = Instant::now();
    let sent = std::thread::spawn(move || -> Result<u32> {
        Netns::enter_path(&tx_path)?;
        send_frames("tx0", &frame, count, Duration::from_micros(gap_us))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    let send_time = started.elapsed();

    let (mut lat, counters) = rx
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    lat.sort_unstable();
    let got = lat.len();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!("XDP ring buffer → user space latency ({mode} XDP on veth, tokio current-thread)");
    println!(
        "  adverts sent {sent} in {:.2} s, received {got}; ringbuf_full={} vrrp_to_user={}",
        send_time.as_secs_f64(),
        counters.get(Counter::RingbufFull as usize).unwrap_or(&0),
        counters.get(Counter::VrrpToUser as usize).unwrap_or(&0),
    );
    if got == 0 {
        bail!("no advert reached user space");
    }
    println!(
        "  p50 {:.1} µs   p99 {:.1} µs   max {:.1} µs",
        us(percentile(&lat, 50.0)),
        us(percentile(&lat, 99.0)),
        us(*lat.last().unwrap_or(&0)),
    );
    println!("  reproduce: cargo xtask bench latency --count {count} --gap-us {gap_us}");
    if got < count as usize {
        bail!("only {got} of {count} adverts reached user space");
    }
    Ok(())
}
