//! `cargo xtask bench restart`: start → first advert on the wire, for a hitless resume of
//! vrrp-agent (SIGUSR2, start again), a cold start of vrrp-agent and a cold start of keepalived.
//!
//! One lab with one router (r1, priority 200, VRRPv3, no peer: a cold start goes BACKUP and
//! becomes master after Master_Down_Interval, as it would on an idle LAN). tcpdump on r1's
//! bridge port records every advert r1 sends; per run the time just before the process is
//! spawned (CLOCK_REALTIME, the clock of the capture's timestamps) is matched with the first
//! advert of priority > 0 after it.
use std::{path::Path, time::Duration};

use crate::report::{summary, Report};
use anyhow::{bail, Context as _, Result};
use vrrp_integration_tests::{
    lab::{
        instance_name, keepalived_conf, sibling_agent_bin, tail, tshark_fields, vip_cidr, vr_args,
        Lab, Vr, MASTER,
    },
    percentile,
    prober::realtime_ns,
    require_root,
};

use crate::failover::{check_interrupted, install_interrupt_handler, sleep};

const VRID: u8 = 71;
const T: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Resume,
    AgentCold,
    KeepalivedCold,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Resume => "vrrp-agent hitless resume",
            Mode::AgentCold => "vrrp-agent cold start",
            Mode::KeepalivedCold => "keepalived cold start",
        }
    }
}

/// Waits for `vr` to exit (polling every millisecond: the restart's clock runs).
fn stop_fast(vr: &mut Vr, sig: i32) -> Result<()> {
    // SAFETY: plain signal send to our child.
    unsafe { libc::kill(vr.proc.child.id() as i32, sig) };
    let end = std::time::Instant::now() + T;
    while std::time::Instant::now() < end {
        if let Some(s) = vr.proc.child.try_wait()? {
            if s.code() != Some(0) {
                bail!("exit {s}:\n{}", tail(&vr.proc.output(), 20));
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("did not exit within {T:?} of signal {sig}")
}

fn start(lab: &Lab, mode: Mode, agent: &Path, advert_int: &str) -> Result<Vr> {
    match mode {
        Mode::KeepalivedCold => lab.keepalived(
            1,
            &keepalived_conf("V4", VRID, 200, advert_int, &[&vip_cidr(false)], ""),
            "V4",
        ),
        _ => lab.agent(
            1,
            agent,
            &vr_args(VRID, 200, &vip_cidr(false), advert_int),
            &instance_name(VRID, false),
        ),
    }
}

/// `runs` starts in `mode`; the spawn times, and how many agent starts did not resume.
fn series(
    lab: &Lab,
    mode: Mode,
    runs: u32,
    agent: &Path,
    advert_int: &str,
) -> Result<(Vec<u64>, u32)> {
    let mut spawns = Vec::new();
    let mut not_resumed = 0;
    let mut vr = None;
    if mode == Mode::Resume {
        let mut v = start(lab, mode, agent, advert_int)?;
        v.wait_state(MASTER, T)?;
        vr = Some(v);
    }
    for _ in 0..runs {
        check_interrupted()?;
        sleep(Duration::from_millis(100))?;
        if let Some(mut v) = vr.take() {
            stop_fast(&mut v, libc::SIGUSR2).context("SIGUSR2")?;
        }
        let t0 = realtime_ns();
        let mut v = start(lab, mode, agent, advert_int)?;
        v.wait_state(MASTER, T)?;
        if mode == Mode::Resume && !v.proc.output().contains("(resumed)") {
            not_resumed += 1;
        }
        spawns.push(t0);
        if mode == Mode::Resume {
            vr = Some(v);
        } else {
            // Graceful stop (its priority-0 advert is not counted), then the next cold start.
            sleep(Duration::from_millis(100))?;
            stop_fast(&mut v, libc::SIGTERM).context("SIGTERM")?;
        }
    }
    if let Some(mut v) = vr {
        stop_fast(&mut v, libc::SIGTERM)?;
    }
    Ok((spawns, not_resumed))
}

/// Start → first advert (priority > 0) of every run, ms.
fn latencies(adverts: &[u64], spawns: &[u64]) -> Vec<f64> {
    spawns
        .iter()
        .filter_map(|&t0| {
            adverts
                .iter()
                .find(|&&a| a > t0)
                .map(|&a| (a - t0) as f64 / 1e6)
        })
        .collect()
}

fn row(label: &str, v: &[f64]) {
    if v.is_empty() {
        println!("  {label:<28} (no run)");
        return;
    }
    let mut us: Vec<u64> = v.iter().map(|x| (x * 1000.0).round() as u64).collect();
    us.sort_unstable();
    let ms = |x: u64| x as f64 / 1000.0;
    println!(
        "  {label:<28} {:>7.1} {:>7.1} {:>7.1}   ({} runs)",
        ms(us[0]),
        ms(percentile(&us, 50.0)),
        ms(*us.last().unwrap()),
        us.len()
    );
}

pub fn bench(runs: u32, advert_int: &str) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let agent = sibling_agent_bin()?;
    let lab = Lab::new("brs", 1)?;
    let dir = tempfile::tempdir()?;
    let pcap = dir.path().join("r1.pcap");
    let cap = lab.capture_sent(1, "ip proto 112", &pcap)?;
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    for mode in [Mode::Resume, Mode::AgentCold, Mode::KeepalivedCold] {
        let r =
            series(&lab, mode, runs, &agent, advert_int).with_context(|| mode.label().to_owned());
        results.push((mode, r));
    }
    sleep(Duration::from_millis(200))?;
    let pcap = cap.stop()?;
    let adverts: Vec<u64> = tshark_fields(&pcap, "vrrp.prio > 0", &["frame.time_epoch"])?
        .iter()
        .filter_map(|f| f.first()?.parse::<f64>().ok())
        .map(|s| (s * 1e9) as u64)
        .collect();
    println!(
        "restart benchmark: r1 alone (priority 200), VRRPv3, advert_int {advert_int} s, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!("  start → first advert on the wire, ms   min     p50     max");
    let mut failed = false;
    let mut lat: Vec<(Mode, Vec<f64>)> = Vec::new();
    for (mode, r) in &results {
        match r {
            Ok((spawns, not_resumed)) => {
                let v = latencies(&adverts, spawns);
                row(mode.label(), &v);
                lat.push((*mode, v));
                if *not_resumed > 0 {
                    println!("    {not_resumed} start(s) did not resume (cold start instead)");
                }
            }
            Err(e) => {
                failed = true;
                println!("  {:<28} FAILED: {e:#}", mode.label());
            }
        }
    }
    println!("  target: hitless resume ≤ 20 ms; cold start ≤ keepalived's");
    let mut rep = Report::new(
        "restart",
        &format!(
            "start → first advert on the wire, r1 alone (priority 200), VRRPv3 every {advert_int} s, \
             {runs} runs per mode; the hitless resume's ratio is against keepalived's cold start"
        ),
        &format!(
            "cargo xtask bench restart --runs {runs}{}",
            if advert_int == "0.01" {
                String::new()
            } else {
                format!(" --advert-int {advert_int}")
            }
        ),
    );
    let of = |m: Mode| {
        lat.iter()
            .find(|(x, _)| *x == m)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let ka = of(Mode::KeepalivedCold);
    for (mode, what) in [
        (Mode::AgentCold, "cold start"),
        (
            Mode::Resume,
            "hitless resume (agent) vs cold start (keepalived)",
        ),
    ] {
        let (a, k) = (summary(&of(mode)), summary(&ka));
        for (i, q) in [(0, "min"), (1, "p50"), (3, "max")] {
            rep.row(
                &format!("{what}, {q}"),
                a.map(|s| s[i]),
                k.map(|s| s[i]),
                "ms",
            );
        }
    }
    for (mode, v) in &lat {
        rep.series(mode.label(), "ms", v);
    }
    rep.emit()?;
    if failed {
        bail!("a series failed");
    }
    Ok(())
}
