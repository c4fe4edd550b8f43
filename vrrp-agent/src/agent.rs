//! The agent's entry points (I/O edge).
//!
//! - Monitor mode ([`run`], `vrrp-agent run --iface IF --vrid N` without a VIP): attach the fast
//!   path, log every advert of the watched VRIDs at INFO, stop cleanly on SIGINT/SIGTERM.
//! - Election mode ([`run_election`], in [`crate::supervisor`]): one loop over one
//!   [`vrrp_core::Core`] for every interface, a [`crate::port::Port`] per interface carrying out
//!   its commands.
use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
};
use vrrp_common::{AdvertEvent, EVENT_FLAG_TRUNCATED};
use vrrp_core::Family;

pub use crate::port::register;
pub use crate::supervisor::{run_election, run_election_reloadable, run_election_with};
use crate::{
    config::XdpMode,
    fastpath::{parse_event, FastPath},
    fsm,
    overflow::OverflowReport,
    port::{check_overflow, decode},
    wire::{ChecksumOpts, IpPair, VrrpPacket, VrrpRepr},
};

/// What `vrrp-agent run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub iface: String,
    pub vrids: Vec<u8>,
    /// Address families whose adverts are shown.
    pub families: Vec<Family>,
    pub xdp_mode: XdpMode,
    /// `SCHED_RR` priority, 0 = normal scheduling ([`crate::sched`]).
    pub realtime_priority: u8,
}

/// Waits until the advert ring has data, then hands every queued advert to `f`.
pub async fn drain_adverts(
    ring: &mut AsyncFd<RingBuf<MapData>>,
    mut f: impl FnMut(AdvertEvent),
) -> Result<usize> {
    let mut guard = ring.readable_mut().await?;
    let mut n = 0;
    while let Some(item) = guard.get_inner_mut().next() {
        if let Some(event) = parse_event(&item) {
            n += 1;
            f(event);
        }
    }
    guard.clear_ready();
    Ok(n)
}

/// `vrrp-agent run` in monitor mode: attach, report adverts, detach on SIGINT/SIGTERM.
pub async fn run(cfg: RunConfig) -> Result<()> {
    let mut fp = FastPath::load()?;
    for &vrid in &cfg.vrids {
        for fam in &cfg.families {
            fp.set_vrid(fam.tag(), vrid, true)?;
        }
    }
    let mode = fp.attach(&cfg.iface, cfg.xdp_mode)?;
    log::info!(
        "XDP attached to {} ({mode:?} mode); watching VRID(s) {:?}",
        cfg.iface,
        cfg.vrids
    );
    let mut ring = register(fp.take_events()?)?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut overflow = OverflowReport::new();
    check_overflow(&fp, &cfg.iface, &mut overflow, now(), false);
    let mut tick = tokio::time::interval(crate::overflow::READ_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            r = drain_adverts(&mut ring, |a| log::info!("{}", describe(&a))) => { r?; }
            _ = tick.tick() => check_overflow(&fp, &cfg.iface, &mut overflow, now(), false),
            _ = sigint.recv() => { log::info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { log::info!("SIGTERM: stopping"); break; }
        }
    }
    check_overflow(&fp, &cfg.iface, &mut overflow, now(), true);
    let counters = fp.counters()?;
    fp.detach()?;
    log::info!(
        "XDP detached from {}; counters: {}",
        cfg.iface,
        counters.summary()
    );
    Ok(())
}

/// One log line for a received advert.
pub fn describe(ev: &AdvertEvent) -> String {
    let rx = decode(ev);
    let latency_us = crate::clock::monotonic_ns().saturating_sub(ev.rx_time_ns) as f64 / 1000.0;
    let m = rx.src_mac.0;
    format!(
        "advert {} src={} dst={} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ttl={} ifindex={}{}{} rx_to_user_us={latency_us:.1}",
        describe_vrrp(&rx),
        rx.src_ip,
        rx.dst_ip,
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        rx.hop_limit,
        ev.ifindex,
        match rx.vlan {
            Some(v) => format!(" vlan={v}"),
            None => String::new(),
        },
        if ev.flags & EVENT_FLAG_TRUNCATED != 0 {
            " truncated"
        } else {
            ""
        },
    )
}

/// The VRRP fields of an advert for the log line (checksum verified by the codec).
fn describe_vrrp(rx: &vrrp_core::Received) -> String {
    let ip = IpPair::new(rx.src_ip, rx.dst_ip);
    let parsed = VrrpPacket::new_checked(&rx.payload[..])
        .and_then(|p| VrrpRepr::parse(&p, &ip, ChecksumOpts::default()));
    match parsed {
        Ok(r) => format!(
            "version={} vrid={} priority={} interval_cs={} addrs={}",
            r.version.number(),
            r.vrid,
            r.priority,
            r.max_advert_int,
            r.addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Err(e) => format!("invalid ({e})"),
    }
}

/// Now on the agent's clock, as the state machine's instant.
fn now() -> fsm::Instant {
    fsm::Instant::from_nanos(crate::clock::monotonic_ns())
}
