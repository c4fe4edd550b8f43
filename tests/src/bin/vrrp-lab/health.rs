//! `vrrp-lab bench-health`: service death → VIP on the backup, vrrp-agent's built-in HTTP
//! check against keepalived's `vrrp_script` running curl, side by side in the same lab (runs
//! interleaved); then the CPU time of 100 HTTP checks (agent) against 100 curl scripts
//! (keepalived) over a fixed window.
use std::{
    net::{IpAddr, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_integration_tests::{
    lab::{sibling_agent_bin, Lab, Vr, BACKUP, IFACE, MASTER, PREFIX4, VIP4},
    percentile, require_root, wait_until, Proc,
};

use crate::failover::{check_interrupted, install_interrupt_handler, sleep};
use crate::report::{summary, Report};

const VRID: u8 = 51;
const NAME: &str = "vr";
const T: Duration = Duration::from_secs(20);
const PORT: u16 = 8080;

pub struct Opts {
    pub runs: u32,
    /// The agent's check interval, seconds.
    pub interval: String,
    pub fall: u32,
    /// Advert interval of both implementations, seconds.
    pub advert_int: String,
    /// keepalived's vrrp_script interval, seconds (1: its smallest).
    pub ka_interval: u32,
    /// Seconds of the CPU window.
    pub cpu_window: u64,
}

/// python3's http.server on router 1's address.
fn http_server(lab: &Lab) -> Result<Proc> {
    let dir = tempfile::tempdir()?;
    let mut cmd = lab.r(1).ns.cmd("python3");
    cmd.args(["-m", "http.server", &PORT.to_string(), "--bind"])
        .arg(lab.r(1).ip4.to_string())
        .arg("--directory")
        .arg(dir.path());
    let p = Proc::spawn_in(dir, cmd, "python3 -m http.server on r1")?;
    let addr = SocketAddr::new(IpAddr::V4(lab.r(1).ip4), PORT);
    wait_until("the HTTP server", T, || {
        lab.r(1)
            .ns
            .run_in(|| Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()))
            .ok()?
            .then_some(())
    })?;
    Ok(p)
}

fn url(lab: &Lab) -> String {
    format!("http://{}:{PORT}/", lab.r(1).ip4)
}

/// The agent's file: `n_checks` HTTP checks (weight -120 for one, -1 each for many).
fn agent_toml(lab: &Lab, o: &Opts, priority: u8, n_checks: usize) -> String {
    let mut s = String::new();
    let mut track = Vec::new();
    let weight = if n_checks == 1 { -120 } else { -1 };
    for i in 0..n_checks {
        s += &format!(
            "[[check]]\nname = \"web{i}\"\nhttp = \"{}\"\ninterval = {}\nfall = {}\n",
            url(lab),
            o.interval,
            o.fall
        );
        track.push(format!("{{ check = \"web{i}\", weight = {weight} }}"));
    }
    let track = if n_checks == 0 {
        String::new()
    } else {
        format!("track = [ {} ]\n", track.join(", "))
    };
    s + &format!(
        "[[instance]]\nname = \"{NAME}\"\ninterface = \"{IFACE}\"\nvrid = {VRID}\n\
         priority = {priority}\nadvert_int = {}\nvips = [\"{VIP4}/{PREFIX4}\"]\n{track}",
        o.advert_int
    )
}

/// keepalived's file: `n_scripts` vrrp_scripts running curl (weight -120 for one, -1 each for
/// many).
fn keepalived_conf(lab: &Lab, o: &Opts, priority: u8, n_scripts: usize) -> String {
    let weight = if n_scripts == 1 { -120 } else { -1 };
    let mut scripts = String::new();
    let mut track = String::new();
    for i in 0..n_scripts {
        scripts += &format!(
            "vrrp_script chk{i} {{\n    script \"/usr/bin/curl -sf -o /dev/null --max-time 1 {}\"\n    \
             interval {}\n    timeout 1\n    fall {}\n    rise 1\n    weight {weight}\n}}\n",
            url(lab),
            o.ka_interval,
            o.fall
        );
        track += &format!("        chk{i}\n");
    }
    let track = if n_scripts == 0 {
        String::new()
    } else {
        format!("    track_script {{\n{track}    }}\n")
    };
    format!(
        "global_defs {{\n    router_id {NAME}_{priority}\n    vrrp_version 3\n    \
         vrrp_garp_master_delay 0\n    script_user root\n    enable_script_security\n}}\n\
         {scripts}vrrp_instance {NAME} {{\n    state BACKUP\n    interface {IFACE}\n    \
         virtual_router_id {VRID}\n    priority {priority}\n    advert_int {}\n{track}    \
         virtual_ipaddress {{\n        {VIP4}/{PREFIX4}\n    }}\n}}\n",
        o.advert_int
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Agent,
    Keepalived,
}

fn start(lab: &Lab, peer: Peer, n: usize, o: &Opts, priority: u8, checks: usize) -> Result<Vr> {
    match peer {
        Peer::Agent => lab.agent_config(
            n,
            &sibling_agent_bin()?,
            &agent_toml(lab, o, priority, checks),
            NAME,
        ),
        Peer::Keepalived => lab.keepalived(n, &keepalived_conf(lab, o, priority, checks), NAME),
    }
}

/// One run: r1 (200, tracking the HTTP server) master, r2 (100) backup; the server killed;
/// the time until r2 logs MASTER.
fn one_run(peer: Peer, o: &Opts) -> Result<Duration> {
    let lab = Lab::new("bh", 2)?;
    let mut server = http_server(&lab)?;
    let mut r1 = start(&lab, peer, 1, o, 200, 1)?;
    let mut r2 = start(&lab, peer, 2, o, 100, 0)?;
    r1.wait_state(MASTER, T)?;
    r2.wait_state(BACKUP, T)?;
    // Settled: r1 has been master for a while.
    sleep(Duration::from_millis(500))?;
    check_interrupted()?;
    server.stop(libc::SIGKILL, T)?;
    let took = r2.wait_state(MASTER, T)?;
    Ok(took)
}

/// utime + stime + cutime + cstime (clock ticks) of `pid` and its descendants.
fn cpu_ticks(pid: u32) -> u64 {
    let mut total = 0;
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        total += f[11..=14]
            .iter()
            .map(|x| x.parse::<i64>().unwrap_or(0).max(0) as u64)
            .sum::<u64>();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                    stack.extend(c.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
                }
            }
        }
    }
    total
}

/// CPU seconds per second of `peer` on r1 with 100 checks, over `window`.
fn cpu(peer: Peer, o: &Opts) -> Result<f64> {
    let lab = Lab::new("bhc", 1)?;
    let _server = http_server(&lab)?;
    let mut r1 = start(&lab, peer, 1, o, 200, 100)?;
    r1.wait_state(MASTER, T)?;
    sleep(Duration::from_secs(3))?;
    let pid = r1.proc.child.id();
    // SAFETY: no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    sleep(Duration::from_secs(o.cpu_window))?;
    let c1 = cpu_ticks(pid);
    let dt = t0.elapsed().as_secs_f64();
    if r1.proc.child.try_wait()?.is_some() {
        bail!(
            "{peer:?} exited during the CPU window:\n{}",
            r1.proc.output()
        );
    }
    Ok((c1.saturating_sub(c0)) as f64 / hz / dt)
}

fn ms(d: u64) -> f64 {
    d as f64 / 1e6
}

pub fn bench(o: Opts) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let mut agent = Vec::new();
    let mut ka = Vec::new();
    for run in 1..=o.runs {
        for peer in [Peer::Agent, Peer::Keepalived] {
            check_interrupted()?;
            let d = one_run(peer, &o).with_context(|| format!("run {run} ({peer:?})"))?;
            let v = if peer == Peer::Agent {
                &mut agent
            } else {
                &mut ka
            };
            v.push(d.as_nanos() as u64);
        }
        eprintln!(
            "run {run}/{}: agent {:.0} ms, keepalived {:.0} ms",
            o.runs,
            ms(*agent.last().unwrap()),
            ms(*ka.last().unwrap())
        );
    }
    agent.sort_unstable();
    ka.sort_unstable();
    println!(
        "service death (HTTP server on the master SIGKILLed) -> backup logs MASTER, {} runs, adverts {} s",
        o.runs, o.advert_int
    );
    println!("                                              min      p50      max");
    for (what, v) in [
        (
            format!(
                "vrrp-agent http check (interval {} s, fall {})",
                o.interval, o.fall
            ),
            &agent,
        ),
        (
            format!(
                "keepalived 2.2 vrrp_script curl (interval {} s, fall {})",
                o.ka_interval, o.fall
            ),
            &ka,
        ),
    ] {
        println!(
            "  {what:<44} {:>6.0} ms {:>6.0} ms {:>6.0} ms",
            ms(v[0]),
            ms(percentile(v, 50.0)),
            ms(*v.last().unwrap())
        );
    }
    let a = cpu(Peer::Agent, &o)?;
    let k = cpu(Peer::Keepalived, &o)?;
    let per = |cpu: f64, interval: f64| cpu / (100.0 / interval) * 1e6;
    let ai: f64 = o.interval.parse().unwrap_or(0.1);
    let ki = f64::from(o.ka_interval);
    println!(
        "CPU over {} s with 100 checks on one router (utime+stime, children included):",
        o.cpu_window
    );
    println!(
        "  vrrp-agent: 100 HTTP checks every {} s: {:.1} % of a CPU ({:.0} µs per probe)",
        o.interval,
        a * 100.0,
        per(a, ai)
    );
    println!(
        "  keepalived: 100 curl scripts every {} s: {:.1} % of a CPU ({:.0} µs per probe)",
        o.ka_interval,
        k * 100.0,
        per(k, ki)
    );
    let mut rep = Report::new(
        "health",
        &format!(
            "service death (HTTP server on the master SIGKILLed) → backup MASTER, {} runs interleaved, \
             adverts {} s; vrrp-agent HTTP check every {} s against keepalived vrrp_script curl every {} s, fall {}",
            o.runs, o.advert_int, o.interval, o.ka_interval, o.fall
        ),
        &format!(
            "cargo xtask bench health --runs {} --interval {} --fall {} --advert-int {} --ka-interval {} --cpu-window {}",
            o.runs, o.interval, o.fall, o.advert_int, o.ka_interval, o.cpu_window
        ),
    );
    let (va, vk): (Vec<f64>, Vec<f64>) = (
        agent.iter().map(|&d| ms(d)).collect(),
        ka.iter().map(|&d| ms(d)).collect(),
    );
    let (sa, sk) = (summary(&va), summary(&vk));
    for (i, q) in [(0, "min"), (1, "p50"), (3, "max")] {
        rep.row(
            &format!("service death → VIP on the backup, {q}"),
            sa.map(|s| s[i]),
            sk.map(|s| s[i]),
            "ms",
        );
    }
    rep.row(
        "CPU of 100 checks",
        Some(a * 100.0),
        Some(k * 100.0),
        "% of a CPU",
    );
    rep.row("CPU per probe", Some(per(a, ai)), Some(per(k, ki)), "µs");
    rep.series("vrrp-agent, HTTP check", "ms", &va);
    rep.series("keepalived, vrrp_script curl", "ms", &vk);
    rep.emit()?;
    Ok(())
}
