//! Project tasks: `cargo xtask <command>`.
//!
//! Every command that builds runs `setup` first, so the README's two commands work on a machine
//! that has only rustup's stable toolchain and apt.
mod image;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "vrrp-agent project tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the build and tests need (idempotent): Debian's rustc-web with the prebuilt
    /// BPF core, bpf-linker on LLVM 22, the rustup path toolchain that ties them together, the
    /// programs every namespace lab runs (iproute2, iputils-ping, procps, util-linux, mount) and
    /// (with --test-peers) keepalived, tshark and tcpdump.
    Setup {
        /// Also install the real peers and tools of the tests and the side-by-side benchmarks
        /// (keepalived, tshark, tcpdump).
        #[arg(long)]
        test_peers: bool,
    },
    /// Build the agent (and its XDP program).
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build and run `vrrp-agent run ARGS...` (e.g. `cargo xtask run -- --iface eth0 --vrid 51`).
    Run {
        #[arg(long)]
        release: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build and run every test (unit, XDP test-run, network-namespace integration).
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks. `cargo xtask bench all [--quick] [--publish]` (the suite and
    /// target/bench/report.md), `cargo xtask bench arp [--seconds S]`,
    /// `cargo xtask bench cpu [--vrids 1,50,255]`, `cargo xtask bench soak [--minutes N]`,
    /// `cargo xtask bench latency [--count N]`, `cargo xtask bench failover [--runs N]`,
    /// `cargo xtask bench health [--runs N]`, `cargo xtask bench restart [--runs N]`,
    /// `cargo xtask bench starvation [--runs N] [--duration S] [--nice 0,-10] [--peer agent,keepalived]`.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
    /// Build the container image of deploy/container/Containerfile with podman (installed from
    /// Debian if missing) and check it (`--version`, `check-config`, no network). Without a
    /// reachable registry the bases are local: a Debian rootfs from the apt mirror (mmdebstrap),
    /// and rustup's stable Rust on it for the builder. Takes minutes; not part of `test`.
    Image {
        /// Name of the image.
        #[arg(long, default_value = "localhost/vrrp-agent:latest")]
        tag: String,
        /// Debian mirror for the local base rootfs.
        #[arg(long, default_value = "http://deb.debian.org/debian")]
        mirror: String,
        /// Make the local base images again.
        #[arg(long)]
        rebuild_bases: bool,
        /// Use the local bases without trying the registry.
        #[arg(long)]
        local_bases: bool,
    },
    /// Live demo in network namespaces: two agents, a client pinging the VIP, the master's link
    /// cut, the client-visible gap measured. Touches no real interface; cleans up (also on Ctrl-C).
    Demo {
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Every bench of the suite in sequence (`SUITE`: under 20 minutes on 2 cores), then
    /// target/bench/report.md (a table per bench against keepalived, with ratios, and the plots).
    All {
        /// Also copy report.md and the plots into docs/bench/ (the README's figures).
        #[arg(long)]
        publish: bool,
        /// Small settings (a minute or two per bench): proves the suite runs, figures are rough.
        #[arg(long)]
        quick: bool,
        /// Only these benches (comma-separated names of the suite).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Service death → VIP on the backup: the built-in HTTP check against keepalived's
    /// vrrp_script running curl, side by side (min / p50 / max), and the CPU of 100 checks each.
    Health {
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
    /// ARP requests and IPv6 NS for the VIP blasted from the client namespace (AF_PACKET TX
    /// ring): replies/s and softirq CPU per reply of the XDP responder (generic, native) against
    /// the kernel answering and nobody answering.
    Arp {
        /// Seconds per mode and family.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Sender threads.
        #[arg(long, default_value_t = 1)]
        senders: u32,
        /// Modes, comma-separated: none, kernel, generic, native.
        #[arg(long, default_value = "none,kernel,generic,native")]
        modes: String,
        /// ARP only.
        #[arg(long)]
        no_v6: bool,
    },
    /// Kernel receive time → user-space receipt latency of adverts through the ring buffer.
    Latency {
        /// Adverts to send.
        #[arg(long, default_value_t = 10_000)]
        count: u32,
        /// Gap between adverts in microseconds.
        #[arg(long, default_value_t = 200)]
        gap_us: u64,
    },
    /// Failover, hard link cut and graceful stop: the client-visible gap (from a client
    /// namespace) and the takeover on the wire (excess over Master_Down_Interval), vrrp-agent
    /// and keepalived interleaved; min / p50 / p99 / max over the runs.
    Failover {
        #[arg(long, default_value_t = 50)]
        runs: u32,
        /// What runs on both routers, comma-separated, interleaved run by run: `agent`
        /// (vrrp-agent), `keepalived` (the baseline).
        #[arg(long, default_value = "agent,keepalived")]
        peer: String,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// One line per run.
        #[arg(long)]
        verbose: bool,
    },
    /// Flaps under 1 % random loss on the switch ports (nftables on the bridge) with 10 ms
    /// adverts, for `--minutes`; must be 0. JSON in target/bench/soak.json.
    Soak {
        #[arg(long, default_value_t = 1.0)]
        minutes: f64,
        /// Percent of the frames the switch drops at random.
        #[arg(long, default_value_t = 1)]
        loss: u32,
    },
    /// CPU (every thread, /proc), RSS and advert-interval accuracy of a master and a backup at
    /// 1, 50 and 255 VRIDs, vrrp-agent and keepalived interleaved; ratios, JSON in
    /// target/bench/cpu.json.
    Cpu {
        /// Counts of VRIDs, comma-separated.
        #[arg(long, default_value = "1,50,255")]
        vrids: String,
        /// Seconds of the CPU window.
        #[arg(long, default_value_t = 10)]
        window: u64,
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Implementations, comma-separated: agent, keepalived, keepalived-xdp (keepalived with
        /// a pass-everything XDP program on its routers, the receive path the agent's pair pays).
        #[arg(long, default_value = "agent,keepalived,keepalived-xdp")]
        peer: String,
    },
    /// Mutation fuzzing (not part of `test`): advert/ARP/NDP codecs, the TOML and keepalived.conf
    /// front-ends, the XDP program under BPF_PROG_TEST_RUN; execs/s and totals per target,
    /// target/bench/fuzz.json, failing inputs under target/bench/fuzz/.
    Fuzz {
        /// Executions per target.
        #[arg(long, default_value_t = 10_000_000)]
        execs: u64,
        /// advert|arp|ndp|toml|keepalived|xdp|all (comma-separated).
        #[arg(long, default_value = "all")]
        target: String,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Stop each target after this many seconds (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_secs: u64,
    },
    /// Start → first advert on the wire: vrrp-agent's hitless resume (SIGUSR2, start again),
    /// its cold start and keepalived's; min / p50 / max over the runs.
    Restart {
        #[arg(long, default_value_t = 20)]
        runs: u32,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
    },
    /// False failovers under CPU starvation: vrrp-agent and keepalived side by side, one busy
    /// thread per CPU at each nice level; role changes per router and r1's advert gaps on the
    /// wire per run, a summary table, JSON in target/bench/starvation.json.
    Starvation {
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// Seconds of CPU hogs per run.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Nice levels of the CPU hogs, comma-separated.
        #[arg(long, default_value = "0,-10", allow_hyphen_values = true)]
        nice: String,
        /// Implementations, comma-separated: agent, keepalived, agent-normal (vrrp-agent with
        /// --realtime-priority 0).
        #[arg(long, default_value = "agent,keepalived")]
        peer: String,
        /// Advertisement interval, seconds.
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Extra argument for both agents (repeat), e.g. `--agent-arg=--realtime-priority=0`.
        #[arg(long = "agent-arg", allow_hyphen_values = true)]
        agent_args: Vec<String>,
        /// Keep every run's capture and router logs (target/bench/starvation.pcaps/), not only
        /// those of runs with role changes.
        #[arg(long)]
        keep: bool,
        /// Busy threads per CPU (default 1; more gives heavier contention).
        #[arg(long, default_value_t = 1)]
        hogs_per_cpu: u32,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.cmd {
        Cmd::Setup { test_peers } => {
            let t = Instant::now();
            setup::run(&root, test_peers)?;
            eprintln!("setup: done in {:.1} s", t.elapsed().as_secs_f64());
        }
        Cmd::Build { release } => {
            setup::run(&root, false)?;
            build(&root, release)?;
        }
        Cmd::Run { release, args } => {
            setup::run(&root, false)?;
            build(&root, release)?;
            let bin = root
                .join("target")
                .join(if release { "release" } else { "debug" })
                .join("vrrp-agent");
            let status = Command::new(&bin)
                .arg("run")
                .args(&args)
                .status()
                .with_context(|| format!("running {}", bin.display()))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Test { args } => {
            setup::run(&root, true)?;
            cargo(&root)
                .arg("test") // default-members: everything but the BPF-only vrrp-ebpf
                .args(&args)
                .status_ok("cargo test")?;
        }
        Cmd::Image {
            tag,
            mirror,
            rebuild_bases,
            local_bases,
        } => image::run(
            &root,
            &image::Opts {
                tag,
                mirror,
                rebuild_bases,
                local_bases,
            },
        )?,
        Cmd::Demo { advert_int } => {
            setup::run(&root, false)?;
            lab(&root, &["demo", "--advert-int", &advert_int], "demo")?;
        }
        Cmd::Bench { which } => {
            setup::run(
                &root,
                matches!(
                    which,
                    Bench::All { .. }
                        | Bench::Arp { .. }
                        | Bench::Failover { .. }
                        | Bench::Starvation { .. }
                        | Bench::Health { .. }
                        | Bench::Restart { .. }
                        | Bench::Soak { .. }
                        | Bench::Cpu { .. }
                ),
            )?;
            match which {
                Bench::All {
                    publish,
                    quick,
                    only,
                } => bench_all(&root, publish, quick, &only)?,
                Bench::Arp {
                    seconds,
                    senders,
                    modes,
                    no_v6,
                } => {
                    let (seconds, senders) = (seconds.to_string(), senders.to_string());
                    let mut args = vec![
                        "bench-arp",
                        "--seconds",
                        &seconds,
                        "--senders",
                        &senders,
                        "--modes",
                        &modes,
                    ];
                    if no_v6 {
                        args.push("--no-v6");
                    }
                    lab(&root, &args, "arp benchmark")?;
                }
                Bench::Fuzz {
                    execs,
                    target,
                    seed,
                    max_secs,
                } => {
                    let out = target_dir(&root).join("bench");
                    let (execs, seed, max_secs) =
                        (execs.to_string(), seed.to_string(), max_secs.to_string());
                    let out = out.to_string_lossy().into_owned();
                    let args = [
                        "bench-fuzz",
                        "--execs",
                        &execs,
                        "--target",
                        &target,
                        "--seed",
                        &seed,
                        "--max-secs",
                        &max_secs,
                        "--out",
                        &out,
                    ];
                    lab(&root, &args, "fuzz benchmark")?;
                }
                Bench::Health {
                    runs,
                    interval,
                    fall,
                    advert_int,
                    ka_interval,
                    cpu_window,
                } => {
                    let (runs, fall, ka, win) = (
                        runs.to_string(),
                        fall.to_string(),
                        ka_interval.to_string(),
                        cpu_window.to_string(),
                    );
                    let args = [
                        "bench-health",
                        "--runs",
                        &runs,
                        "--interval",
                        &interval,
                        "--fall",
                        &fall,
                        "--advert-int",
                        &advert_int,
                        "--ka-interval",
                        &ka,
                        "--cpu-window",
                        &win,
                    ];
                    lab(&root, &args, "health benchmark")?;
                }
                Bench::Soak { minutes, loss } => {
                    let json = target_dir(&root).join("bench").join("soak-runs.json");
                    let (minutes, loss) = (minutes.to_string(), loss.to_string());
                    let json = json.to_string_lossy().into_owned();
                    let args = [
                        "bench-soak",
                        "--minutes",
                        &minutes,
                        "--loss",
                        &loss,
                        "--json",
                        &json,
                    ];
                    lab(&root, &args, "soak benchmark")?;
                }
                Bench::Cpu {
                    vrids,
                    window,
                    runs,
                    advert_int,
                    peer,
                } => {
                    setup::ensure_packages(&["tcpdump"])?;
                    let json = target_dir(&root).join("bench").join("cpu-runs.json");
                    let json = json.to_string_lossy().into_owned();
                    let (window, runs) = (window.to_string(), runs.to_string());
                    let args = [
                        "bench-cpu",
                        "--vrids",
                        &vrids,
                        "--window",
                        &window,
                        "--runs",
                        &runs,
                        "--advert-int",
                        &advert_int,
                        "--peer",
                        &peer,
                        "--json",
                        &json,
                    ];
                    lab(&root, &args, "cpu benchmark")?;
                }
                Bench::Restart { runs, advert_int } => {
                    let runs = runs.to_string();
                    let args = [
                        "bench-restart",
                        "--runs",
                        &runs,
                        "--advert-int",
                        &advert_int,
                    ];
                    lab(&root, &args, "restart benchmark")?;
                }
                Bench::Failover {
                    runs,
                    peer,
                    advert_int,
                    verbose,
                } => {
                    let runs = runs.to_string();
                    let mut args = vec![
                        "bench-failover",
                        "--runs",
                        &runs,
                        "--peer",
                        &peer,
                        "--advert-int",
                        &advert_int,
                    ];
                    if verbose {
                        args.push("--verbose");
                    }
                    lab(&root, &args, "failover benchmark")?;
                }
                Bench::Starvation {
                    runs,
                    duration,
                    nice,
                    peer,
                    advert_int,
                    agent_args,
                    keep,
                    hogs_per_cpu,
                } => {
                    setup::ensure_packages(&["tcpdump"])?;
                    let json = target_dir(&root).join("bench").join("starvation-runs.json");
                    let (runs, duration) = (runs.to_string(), duration.to_string());
                    let nice = format!("--nice={nice}");
                    let json = json.to_string_lossy().into_owned();
                    let mut args = vec![
                        "bench-starvation",
                        "--runs",
                        &runs,
                        "--duration",
                        &duration,
                        &nice,
                        "--peer",
                        &peer,
                        "--advert-int",
                        &advert_int,
                        "--json",
                        &json,
                    ];
                    let agent_args: Vec<String> = agent_args
                        .iter()
                        .map(|a| format!("--agent-arg={a}"))
                        .collect();
                    args.extend(agent_args.iter().map(String::as_str));
                    if keep {
                        args.push("--keep");
                    }
                    let hogs = format!("--hogs-per-cpu={hogs_per_cpu}");
                    args.push(&hogs);
                    lab(&root, &args, "starvation benchmark")?;
                }
                Bench::Latency { count, gap_us } => {
                    cargo(&root)
                        .args([
                            "run",
                            "--release",
                            "-p",
                            "vrrp-integration-tests",
                            "--bin",
                            "vrrp-lab",
                            "--",
                            "bench-latency",
                            "--count",
                            &count.to_string(),
                            "--gap-us",
                            &gap_us.to_string(),
                        ])
                        .status_ok("latency benchmark")?;
                }
            }
        }
    }
    Ok(())
}

// ---- `bench all` ------------------------------------------------------------------------------

/// The suite: (report name, `vrrp-lab` arguments, the same with small settings for `--quick`).
/// Each bench writes target/bench/<name>.json (and .svg) through the lab's report module; adding
/// one is one line here. Budget on this 2-core machine (the sum must stay under 20 minutes):
/// failover ~7 min, restart ~2, health ~3, starvation ~3, arp ~1.
const SUITE: &[(&str, &[&str], &[&str])] = &[
    (
        "failover",
        &["bench-failover", "--runs", "50"],
        &["bench-failover", "--runs", "3"],
    ),
    (
        "restart",
        &["bench-restart", "--runs", "50"],
        &["bench-restart", "--runs", "3"],
    ),
    (
        "health",
        &["bench-health", "--runs", "20", "--cpu-window", "10"],
        &["bench-health", "--runs", "2", "--cpu-window", "3"],
    ),
    (
        "starvation",
        &["bench-starvation", "--runs", "2", "--duration", "20"],
        &[
            "bench-starvation",
            "--runs",
            "1",
            "--duration",
            "5",
            "--nice=0",
        ],
    ),
    (
        "arp",
        &["bench-arp", "--seconds", "5"],
        &["bench-arp", "--seconds", "2"],
    ),
    (
        "cpu",
        &["bench-cpu", "--runs", "2", "--window", "10"],
        &[
            "bench-cpu",
            "--runs",
            "1",
            "--window",
            "3",
            "--vrids",
            "1,50",
        ],
    ),
    (
        "soak",
        &["bench-soak", "--minutes", "2"],
        &["bench-soak", "--minutes", "0.5"],
    ),
];

fn bench_all(root: &Path, publish: bool, quick: bool, only: &[String]) -> Result<()> {
    if let Some(bad) = only.iter().find(|n| !SUITE.iter().any(|(s, ..)| s == n)) {
        let names: Vec<&str> = SUITE.iter().map(|(n, ..)| *n).collect();
        bail!(
            "--only {bad}: no such bench (the suite: {})",
            names.join(", ")
        );
    }
    setup::ensure_packages(&["tcpdump"])?;
    let t = Instant::now();
    let mut failed = Vec::new();
    let mut names = Vec::new();
    for (name, full, small) in SUITE {
        if !only.is_empty() && !only.iter().any(|n| n == name) {
            continue;
        }
        names.push(*name);
        let args = if quick { small } else { full };
        let t1 = Instant::now();
        eprintln!("bench all: {name}: vrrp-lab {}", args.join(" "));
        if let Err(e) = lab(root, args, name) {
            eprintln!("bench all: {name}: {e:#}");
            failed.push(*name);
        }
        eprintln!(
            "bench all: {name} took {:.0} s ({:.0} s so far)",
            t1.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
    let mut args = vec!["bench-report"];
    args.extend(names.iter().copied());
    lab(root, &args, "report")?;
    let dir = target_dir(root).join("bench");
    if publish {
        let docs = root.join("docs").join("bench");
        std::fs::create_dir_all(&docs)?;
        let mut files = vec!["report.md".to_owned()];
        files.extend(names.iter().map(|n| format!("{n}.svg")));
        for f in files {
            if dir.join(&f).exists() {
                std::fs::copy(dir.join(&f), docs.join(&f))
                    .with_context(|| format!("copying {f} to {docs:?}"))?;
            }
        }
        eprintln!(
            "bench all: published report.md and the plots to {}",
            docs.display()
        );
    }
    eprintln!(
        "bench all: {} benches in {:.1} min; report {}",
        names.len(),
        t.elapsed().as_secs_f64() / 60.0,
        dir.join("report.md").display()
    );
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Builds the lab tool and the agent it runs (release), then runs `vrrp-lab ARGS...` with
/// Ctrl-C left to it (it tears its namespaces down before exiting). The benches write their
/// reports to `$VRRP_BENCH_DIR` = target/bench.
fn lab(root: &Path, args: &[&str], what: &str) -> Result<()> {
    let t = Instant::now();
    cargo(root)
        .args([
            "build",
            "--release",
            "-p",
            "vrrp-integration-tests",
            "--bins",
        ])
        .status_ok("cargo build")?;
    eprintln!("build: done in {:.1} s", t.elapsed().as_secs_f64());
    let bin = target_dir(root).join("release").join("vrrp-lab");
    let mut child = Command::new(&bin)
        .args(args)
        .env("VRRP_BENCH_DIR", target_dir(root).join("bench"))
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    // The terminal's Ctrl-C reaches the lab tool too; this process waits for its clean-up
    // instead of returning to the shell while namespaces are still being removed.
    // SAFETY: setting a signal disposition to SIG_IGN after the child was spawned.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let status = child.wait()?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `<root>/target`).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

fn build(root: &Path, release: bool) -> Result<()> {
    let t = Instant::now();
    let mut c = cargo(root);
    c.args(["build", "-p", "vrrp-agent"]);
    if release {
        c.arg("--release");
    }
    c.status_ok("cargo build")?;
    eprintln!("build: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root);
    c
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) trait StatusOk {
    fn status_ok(&mut self, what: &str) -> Result<()>;
}

impl StatusOk for Command {
    fn status_ok(&mut self, what: &str) -> Result<()> {
        let status = self
            .status()
            .with_context(|| format!("{what}: could not start {:?}", self.get_program()))?;
        if !status.success() {
            bail!("{what} failed ({status})");
        }
        Ok(())
    }
}
