//! The agent's event loop (I/O edge): attach the fast path, read adverts from the ring buffer
//! with tokio, log them, stop cleanly on SIGINT/SIGTERM.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
};
use vrrp_common::{AdvertEvent, EVENT_FLAG_TRUNCATED, FAMILY_IPV6};

use crate::{
    fastpath::{parse_event, Family, FastPath, ModeChoice},
    wire::{ChecksumOpts, IpPair, VrrpPacket, VrrpRepr},
};

/// What `vrrp-agent run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub iface: String,
    pub vrids: Vec<u8>,
    pub family: Family,
    pub xdp_mode: ModeChoice,
}

/// A received advert as the agent sees it: the kernel's metadata plus the VRRP bytes.
#[derive(Clone, Debug)]
pub struct RxAdvert {
    pub event: AdvertEvent,
}

impl RxAdvert {
    pub fn src_ip(&self) -> IpAddr {
        ip_from(self.event.family, &self.event.src_ip)
    }

    pub fn dst_ip(&self) -> IpAddr {
        ip_from(self.event.family, &self.event.dst_ip)
    }

    /// The captured VRRP message.
    pub fn payload(&self) -> &[u8] {
        let n = (self.event.captured_len as usize).min(self.event.payload.len());
        &self.event.payload[..n]
    }

    pub fn truncated(&self) -> bool {
        self.event.flags & EVENT_FLAG_TRUNCATED != 0
    }
}

fn ip_from(family: u8, b: &[u8; 16]) -> IpAddr {
    if family == FAMILY_IPV6 {
        IpAddr::V6(Ipv6Addr::from(*b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// Registers a ring buffer (the advert ring or aya-log's) with the tokio reactor.
pub fn register<T: AsRawFd>(inner: T) -> Result<AsyncFd<T>> {
    // SAFETY: the fd belongs to `inner`, which the AsyncFd owns, so it stays open and the same
    // for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
        .context("registering a BPF ring buffer with tokio")
}

/// Waits until the advert ring has data, then hands every queued advert to `f`.
pub async fn drain_adverts(
    ring: &mut AsyncFd<RingBuf<MapData>>,
    mut f: impl FnMut(RxAdvert),
) -> Result<usize> {
    let mut guard = ring.readable_mut().await?;
    let mut n = 0;
    while let Some(item) = guard.get_inner_mut().next() {
        if let Some(event) = parse_event(&item) {
            n += 1;
            f(RxAdvert { event });
        }
    }
    guard.clear_ready();
    Ok(n)
}

/// `vrrp-agent run`: attach, report adverts, detach on SIGINT/SIGTERM.
pub async fn run(cfg: RunConfig) -> Result<()> {
    let mut fp = FastPath::load()?;
    for &vrid in &cfg.vrids {
        for &fam in cfg.family.tags() {
            fp.set_vrid(fam, vrid, true)?;
        }
    }
    let mode = fp.attach(&cfg.iface, cfg.xdp_mode)?;
    log::info!(
        "XDP attached to {} ({mode:?} mode); watching VRID(s) {:?}",
        cfg.iface,
        cfg.vrids
    );
    let mut logger = match aya_log::EbpfLogger::init(fp.ebpf()) {
        Ok(l) => Some(register(l)?),
        Err(e) => {
            log::debug!("no eBPF log channel: {e}");
            None
        }
    };
    let mut ring = register(fp.take_events()?)?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;

    loop {
        tokio::select! {
            r = drain_adverts(&mut ring, |a| log::info!("{}", describe(&a))) => { r?; }
            g = async { logger.as_mut().unwrap().readable_mut().await }, if logger.is_some() => {
                let mut g = g?;
                g.get_inner_mut().flush();
                g.clear_ready();
            }
            _ = sigint.recv() => { log::info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { log::info!("SIGTERM: stopping"); break; }
        }
    }
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
pub fn describe(a: &RxAdvert) -> String {
    let mac = a.event.src_mac;
    let latency_us =
        crate::clock::monotonic_ns().saturating_sub(a.event.rx_time_ns) as f64 / 1000.0;
    let vrrp = describe_vrrp(a);
    format!(
        "advert {vrrp} src={} dst={} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ttl={} ifindex={}{}{} rx_to_user_us={latency_us:.1}",
        a.src_ip(),
        a.dst_ip(),
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        a.event.ttl,
        a.event.ifindex,
        if a.event.flags & vrrp_common::EVENT_FLAG_VLAN != 0 {
            format!(" vlan={}", a.event.vlan_id)
        } else {
            String::new()
        },
        if a.truncated() { " truncated" } else { "" },
    )
}

/// The VRRP fields of an advert for the log line (checksum verified by the codec).
fn describe_vrrp(a: &RxAdvert) -> String {
    let ip = IpPair::new(a.src_ip(), a.dst_ip());
    let parsed = VrrpPacket::new_checked(a.payload())
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
