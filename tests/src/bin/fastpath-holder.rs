//! Test helper: attaches the XDP fast path to an interface (in the current network namespace),
//! owns one IPv4 VIP and keeps the heartbeat fresh until killed. Prints `attached xdp_prog=<id>
//! egress=<mode>` once ready. Used by `tests/tests/xdp_responder.rs` and `tc_egress.rs` to show
//! what a SIGKILLed agent leaves behind.
use std::{net::IpAddr, time::Duration};

use anyhow::{Context as _, Result};
use clap::Parser;
use vrrp_agent::{clock::monotonic_ns, config::XdpMode, fastpath::FastPath};
use vrrp_common::FAMILY_IPV4;
use vrrp_integration_tests::prober::parse_mac;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    iface: String,
    /// The interface's own MAC, aa:bb:cc:dd:ee:ff.
    #[arg(long)]
    mac: String,
    #[arg(long)]
    vip: IpAddr,
    #[arg(long)]
    vrid: u8,
    /// Fail-safe bound.
    #[arg(long, default_value_t = 300)]
    stale_ms: u64,
    /// Heartbeat period.
    #[arg(long, default_value_t = 20)]
    beat_ms: u64,
    /// XDP attach mode.
    #[arg(long, default_value = "auto")]
    xdp_mode: XdpMode,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mac = parse_mac(&args.mac).context("--mac")?;
    let mut fp = FastPath::load()?;
    fp.set_iface_mac(mac)?;
    fp.attach(&args.iface, args.xdp_mode)?;
    fp.add_vip(args.vip, args.vrid)?;
    fp.set_router(
        FAMILY_IPV4,
        args.vrid,
        true,
        false,
        Duration::from_millis(args.stale_ms),
    )?;
    fp.heartbeat(monotonic_ns())?;
    let prog = fp.program()?.info()?.id();
    println!(
        "attached xdp_prog={prog} egress={:?}",
        fp.egress_mode().context("no egress classifier")?
    );
    loop {
        std::thread::sleep(Duration::from_millis(args.beat_ms));
        fp.heartbeat(monotonic_ns())?;
    }
}
