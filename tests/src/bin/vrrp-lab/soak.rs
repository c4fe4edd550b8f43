//! `cargo xtask bench soak --minutes N`: random loss on the switch and no flap allowed.
//!
//! One lab, r1 (priority 200) and r2 (100), VRRPv3 with 10 ms adverts. The switch drops a random
//! `loss` percent of every frame it forwards, on every bridge port: this kernel has no netem, so
//! an nftables rule of family `bridge` does it (`numgen random mod 100 < loss drop`, with
//! counters of what passed through and what was dropped). For `minutes`, every role change of
//! either router is a flap; the report (0 flaps expected) goes to target/bench/soak.json (the
//! details to soak-runs.json) and the command fails on a flap or when nothing was dropped (the
//! loss did not happen).
use std::{path::Path, time::Instant};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use vrrp_integration_tests::{
    lab::{instance_name, sibling_agent_bin, tail, vip_cidr, vr_args, Lab, BACKUP, MASTER},
    require_root,
};

use crate::failover::{check_interrupted, install_interrupt_handler, sleep};

const VRID: u8 = 73;
const T: std::time::Duration = std::time::Duration::from_secs(10);

/// What `bench soak` measured (target/bench/soak-runs.json).
#[derive(Debug, Serialize)]
pub struct SoakResult {
    pub minutes: f64,
    pub advert_int_s: String,
    pub loss_percent: u32,
    /// Frames the bridge forwarded (before the drop) and dropped.
    pub frames_seen: u64,
    pub frames_dropped: u64,
    /// Role changes after the start: r1 (should stay MASTER), r2 (should stay BACKUP).
    pub flaps_r1: usize,
    pub flaps_r2: usize,
    pub r1_transitions: Vec<String>,
    pub r2_transitions: Vec<String>,
}

fn loss_table(loss: u32) -> String {
    format!(
        "table bridge soak {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        counter
        numgen random mod 100 < {loss} counter drop
    }}
}}
"
    )
}

/// The two counters of the loss table: (all frames, dropped frames).
fn counters(lab: &Lab) -> Result<(u64, u64)> {
    let out = lab
        .switch
        .cmd("nft")
        .args(["list", "table", "bridge", "soak"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let packets: Vec<u64> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "packets");
            w.next()?;
            w.next()?.parse().ok()
        })
        .collect();
    match packets[..] {
        [seen, dropped] => Ok((seen, dropped)),
        _ => bail!("unexpected `nft list table bridge soak`:\n{text}"),
    }
}

pub fn bench(minutes: f64, advert_int: &str, loss: u32, json: &Path) -> Result<()> {
    require_root();
    install_interrupt_handler();
    if !(1..100).contains(&loss) {
        bail!("--loss is a percentage from 1 to 99, not {loss}");
    }
    let bin = sibling_agent_bin()?;
    let lab = Lab::new("soak", 2)?;
    let start = |n: usize, prio: u8| {
        lab.agent(
            n,
            &bin,
            &vr_args(VRID, prio, &vip_cidr(false), advert_int),
            &instance_name(VRID, false),
        )
    };
    let mut r1 = start(1, 200)?;
    r1.wait_state(MASTER, T)?;
    let mut r2 = start(2, 100)?;
    r2.wait_state(BACKUP, T)?;
    let (t1, t2) = (r1.transitions().len(), r2.transitions().len());
    lab.switch_nft(&loss_table(loss))?;
    println!(
        "soak: {minutes} min, {loss} % random loss on the switch, adverts every {advert_int} s"
    );
    let began = Instant::now();
    let total = std::time::Duration::from_secs_f64(minutes * 60.0);
    let mut next_report = 60.0;
    while began.elapsed() < total {
        check_interrupted()?;
        sleep(std::time::Duration::from_millis(500).min(total.saturating_sub(began.elapsed())))?;
        let s = began.elapsed().as_secs_f64();
        if s >= next_report {
            let (seen, dropped) = counters(&lab)?;
            println!(
                "  {:.0} min: flaps r1 {} r2 {}, {dropped} of {seen} frames dropped",
                s / 60.0,
                r1.transitions().len() - t1,
                r2.transitions().len() - t2
            );
            next_report += 60.0;
        }
    }
    let (seen, dropped) = counters(&lab)?;
    let result = SoakResult {
        minutes,
        advert_int_s: advert_int.to_owned(),
        loss_percent: loss,
        frames_seen: seen,
        frames_dropped: dropped,
        flaps_r1: r1.transitions().len() - t1,
        flaps_r2: r2.transitions().len() - t2,
        r1_transitions: r1.transitions(),
        r2_transitions: r2.transitions(),
    };
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(json, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("writing {json:?}"))?;
    println!(
        "soak: {} flaps (r1 {}, r2 {}); {dropped} of {seen} frames dropped ({:.2} %); {}",
        result.flaps_r1 + result.flaps_r2,
        result.flaps_r1,
        result.flaps_r2,
        100.0 * dropped as f64 / seen.max(1) as f64,
        json.display()
    );
    let mut rep = crate::report::Report::new(
        "soak",
        &format!(
            "loss soak: {minutes} min, {loss} % random loss on every switch port, VRRPv3 every \
             {advert_int} s, vrrp-agent r1 (200) and r2 (100); role changes (0 expected)"
        ),
        &format!("cargo xtask bench soak --minutes {minutes} --loss {loss}"),
    );
    rep.row(
        "flaps (role changes of r1 and r2)",
        Some((result.flaps_r1 + result.flaps_r2) as f64),
        None,
        "",
    );
    rep.row(
        "frames dropped by the switch",
        Some(100.0 * dropped as f64 / seen.max(1) as f64),
        None,
        "%",
    );
    rep.row("frames through the switch", Some(seen as f64), None, "");
    rep.note(format!("per-run results: {}", json.display()));
    rep.emit()?;
    if dropped == 0 {
        bail!("the switch dropped nothing: no loss was applied");
    }
    if result.flaps_r1 + result.flaps_r2 > 0 {
        bail!(
            "{} flaps under {loss} % loss (r1 {:?}, r2 {:?}):\nr1:\n{}\nr2:\n{}",
            result.flaps_r1 + result.flaps_r2,
            result.r1_transitions,
            result.r2_transitions,
            tail(&r1.proc.output(), 20),
            tail(&r2.proc.output(), 20)
        );
    }
    Ok(())
}
