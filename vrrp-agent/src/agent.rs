//! The agent's event loops (I/O edge).
//!
//! - Monitor mode ([`run`], `vrrp-agent run --iface IF --vrid N` without a VIP): attach the fast
//!   path, log every advert of the watched VRIDs at INFO, stop cleanly on SIGINT/SIGTERM.
//! - Election mode ([`run_election`]): per interface one [`FastPath`], one
//!   [`crate::driver::Driver`] (the sans-IO translation of events and actions, N virtual routers)
//!   and the executor here, which only carries out the driver's commands: send frames, program
//!   the fast-path maps, add/remove VIPs with rtnetlink, write the fail-safe heartbeat. It
//!   reports what each claim and release did back to the driver, and feeds it the kernel's
//!   notifications about the VIPs (added or removed by something else).
use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    time::Duration,
};

use anyhow::{anyhow, Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
};
use vrrp_common::{AdvertEvent, Counter, EVENT_FLAG_TRUNCATED, FAMILY_IPV6};
use vrrp_core::Family;

use crate::{
    config::XdpMode,
    config::{AgentConfig, InstanceSpec, Vip},
    driver::{Command, Driver, IfaceEnv, Report},
    fastpath::{parse_event, FastPath},
    fsm,
    netlink::{self, AddrEvent},
    overflow::OverflowReport,
    timer::DeadlineTimer,
    tx::Tx,
    wire::{ChecksumOpts, IpPair, MacAddr, VrrpPacket, VrrpRepr},
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

/// Registers the advert ring buffer with the tokio reactor.
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

/// Reads the ring-buffer overflow counter if it is due and logs the rate-limited warning.
/// `last`: the final read at a stop (whatever the period), then the unreported rest is logged.
fn check_overflow(
    fp: &FastPath,
    iface: &str,
    report: &mut OverflowReport,
    now: fsm::Instant,
    last: bool,
) {
    if !last && !report.due(now) {
        return;
    }
    match fp.counter(Counter::RingbufFull) {
        Ok(total) => {
            if let Some(lost) = report.observe(total, now) {
                log::warn!("{}", crate::overflow::warning(iface, lost));
            }
        }
        Err(e) => log::debug!("{iface}: {e:#}"),
    }
    if let Some(n) = last.then(|| report.flush()).flatten() {
        log::warn!(
            "interface {iface}: {n} more VRRP adverts lost to a full ring buffer since the last warning"
        );
    }
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

// ---------------------------------------------------------------------------------------------
// Election mode.

/// Now on the agent's clock, as the state machine's instant.
fn now() -> fsm::Instant {
    fsm::Instant::from_nanos(crate::clock::monotonic_ns())
}

/// The I/O side of one interface: carries out [`Command`]s.
struct Executor {
    iface: String,
    ifindex: u32,
    fp: FastPath,
    tx: Tx,
    nl: rtnetlink::Handle,
    /// Per instance: the fast-path fail-safe bound, and whether the VIPs are real addresses of
    /// the interface (priority 255: never added or removed).
    info: Vec<InstInfo>,
}

struct InstInfo {
    name: String,
    family: u8,
    vrid: u8,
    vips: Vec<Vip>,
    stale_after: Duration,
    owner: bool,
}

impl Executor {
    fn beat(&mut self) {
        if let Err(e) = self.fp.heartbeat(crate::clock::monotonic_ns()) {
            log::error!("{}: fail-safe heartbeat: {e:#}", self.iface);
        }
    }

    /// Carries out `cmds` in order and reports what every claim and release did to the driver,
    /// whose answer (e.g. to a failed claim) goes in front of what is left, and when each advert
    /// actually left (the Adver_Timer restarts from the send).
    async fn exec(&mut self, driver: &mut Driver, cmds: Vec<Command>) {
        let mut queue = VecDeque::from(cmds);
        while let Some(c) = queue.pop_front() {
            let (instance, report) = match c {
                Command::SendFrame {
                    instance,
                    frame,
                    advert,
                } => {
                    match self.tx.send_frame(&frame) {
                        Ok(_) if advert => driver.advert_sent(instance, now()),
                        Ok(_) => {}
                        Err(e) => log::warn!(
                            "instance {}: sending a frame on {}: {e}",
                            self.info[instance].name,
                            self.iface
                        ),
                    }
                    continue;
                }
                Command::SendIp {
                    instance,
                    dst,
                    packet,
                } => {
                    match self.tx.send_ip(dst, &packet) {
                        Ok(_) => driver.advert_sent(instance, now()),
                        Err(e) => log::warn!(
                            "instance {}: sending an advert to {dst}: {e}",
                            self.info[instance].name
                        ),
                    }
                    continue;
                }
                Command::Claim { instance, accept } => {
                    (instance, self.claim(instance, accept).await)
                }
                Command::Release { instance } => (instance, self.release(instance).await),
                Command::AddVip { instance, vip } => {
                    let r = match netlink::add_vip(&self.nl, self.ifindex, vip).await {
                        Ok(added) => Report::VipAdded {
                            vip,
                            was_present: !added,
                        },
                        Err(e) => Report::ClaimFailed(format!("{e:#}")),
                    };
                    (instance, r)
                }
                Command::RemoveVip { instance, vip } => {
                    let r = match netlink::del_vip(&self.nl, self.ifindex, vip).await {
                        Ok(removed) => Report::VipRemoved {
                            vip,
                            was_present: removed,
                        },
                        Err(e) => Report::ReleaseFailed(format!("{e:#}")),
                    };
                    (instance, r)
                }
            };
            driver.report(instance, report, now(), &mut queue);
        }
    }

    /// Fast path first (the XDP program answers ARP/NS with the VMAC from now on), then the
    /// addresses (the kernel accepts traffic for them). Stops at the first failure.
    async fn claim(&mut self, i: usize, accept: bool) -> Report {
        self.beat();
        let inf = &self.info[i];
        if let Err(e) = self
            .fp
            .set_router(inf.family, inf.vrid, true, accept, inf.stale_after)
        {
            return Report::ClaimFailed(format!("claiming in the fast path: {e:#}"));
        }
        if inf.owner {
            return Report::Claimed;
        }
        for vip in &inf.vips {
            if let Err(e) = netlink::add_vip(&self.nl, self.ifindex, *vip).await {
                return Report::ClaimFailed(format!("{e:#}"));
            }
        }
        Report::Claimed
    }

    /// The addresses first, then the fast path (no more ARP/NS answers, VMAC frames no longer
    /// taken). Every step is tried; the failures are reported together.
    async fn release(&mut self, i: usize) -> Report {
        let inf = &self.info[i];
        let mut errors = Vec::new();
        // Addresses first: once they are gone the kernel can neither answer for a VIP nor send
        // from it with the interface's own MAC; only then does the fast path stop answering
        // ARP/NS with the VMAC (it drops requests for VIPs it does not own).
        if !inf.owner {
            for vip in &inf.vips {
                if let Err(e) = netlink::del_vip(&self.nl, self.ifindex, *vip).await {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        if let Err(e) = self
            .fp
            .set_router(inf.family, inf.vrid, false, false, inf.stale_after)
        {
            errors.push(format!("releasing in the fast path: {e:#}"));
        }
        if errors.is_empty() {
            Report::Released
        } else {
            Report::ReleaseFailed(errors.join("; "))
        }
    }

    /// Adds (or removes) every instance's VMAC to (from) the interface's unicast filter.
    async fn uc_filter(&self, add: bool) {
        for inf in &self.info {
            let mac = vrrp_common::vmac(inf.family, inf.vrid);
            let r = if add {
                netlink::uc_filter_add(&self.nl, self.ifindex, mac).await
            } else {
                netlink::uc_filter_del(&self.nl, self.ifindex, mac).await
            };
            if let Err(e) = r {
                log::warn!("instance {} on {}: {e:#}", inf.name, self.iface);
            }
        }
    }

    /// Clears everything this agent put in the maps.
    fn clear_maps(&mut self) {
        for inf in &self.info {
            let r = self
                .fp
                .set_router(inf.family, inf.vrid, false, false, Duration::ZERO)
                .and_then(|()| inf.vips.iter().try_for_each(|v| self.fp.remove_vip(v.addr)))
                .and_then(|()| self.fp.set_vrid(inf.family, inf.vrid, false));
            if let Err(e) = r {
                log::warn!("instance {}: clearing the fast-path maps: {e:#}", inf.name);
            }
        }
    }
}

/// One interface in election mode, set up and attached.
struct IfaceRun {
    driver: Driver,
    ex: Executor,
    /// IFF_RUNNING of the interface, updated by the link monitor.
    link: watch::Receiver<bool>,
    link_tx: watch::Sender<bool>,
    /// Address notifications of the VIPs, from the address monitor.
    addr_rx: mpsc::UnboundedReceiver<AddrEvent>,
    addr_tx: mpsc::UnboundedSender<AddrEvent>,
    ring: AsyncFd<RingBuf<MapData>>,
}

impl IfaceRun {
    async fn setup(
        iface: &str,
        specs: Vec<InstanceSpec>,
        mode: XdpMode,
        require_failsafe: bool,
        nl: rtnetlink::Handle,
    ) -> Result<IfaceRun> {
        // From netlink, in our own network namespace (never /sys, which may show another one).
        let facts = crate::rtnl::iface_facts(iface)?;
        let ifindex = facts.index;
        let mac = MacAddr(facts.mac()?);
        let addrs = netlink::addresses(&nl, ifindex)
            .await
            .with_context(|| format!("reading the addresses of {iface}"))?;
        let all_vips: Vec<IpAddr> = specs
            .iter()
            .flat_map(|s| s.vips.iter().map(|v| v.addr))
            .collect();
        let env = IfaceEnv {
            name: iface.to_owned(),
            mac,
            addrs: addrs.clone(),
        };
        let mut primaries = Vec::new();
        for s in &specs {
            let p = env.primary_for(s, &all_vips).map_err(|e| anyhow!(e))?;
            let cfg = s.fsm_config(p);
            if s.priority == 255 {
                cfg.validate_ownership(&addrs)
                    .with_context(|| format!("instance {}", s.name))?;
            } else if let Some(v) = s.vips.iter().find(|v| addrs.contains(&v.addr)) {
                log::info!(
                    "instance {}: {} is already on {iface} (left over by an earlier run?); \
                     it is removed until this router becomes master",
                    s.name,
                    v.addr
                );
            }
            primaries.push(p);
        }
        let mut driver = Driver::new(iface, specs.clone(), &primaries).map_err(|e| anyhow!(e))?;
        driver.set_local_addrs(&addrs);
        let info: Vec<InstInfo> = driver
            .instances()
            .iter()
            .map(|i| InstInfo {
                name: i.spec.name.clone(),
                family: i.spec.family_tag(),
                vrid: i.spec.vrid,
                vips: i.spec.vips.clone(),
                stale_after: i.stale_after,
                owner: i.spec.priority == 255,
            })
            .collect();

        let mut fp = FastPath::load()?;
        fp.set_iface_mac(mac.0)?;
        fp.heartbeat(crate::clock::monotonic_ns())?;
        for inf in &info {
            fp.set_vrid(inf.family, inf.vrid, true)?;
            fp.set_router(inf.family, inf.vrid, false, false, inf.stale_after)?;
            for v in &inf.vips {
                fp.add_vip(v.addr, inf.vrid)?;
            }
        }
        let used = fp.attach_with(iface, mode, require_failsafe)?;
        let bounds = driver
            .instances()
            .iter()
            .map(|i| format!("{} {:?}", i.spec.name, i.stale_after))
            .collect::<Vec<_>>()
            .join(", ");
        match fp.failsafe_gap() {
            None => log::info!(
                "{iface}: fail-safe holds: XDP and the egress classifier are attached via netlink \
                 and outlive the agent; if it dies, this node stops answering for its VIPs after \
                 the fail-safe bound ({bounds})"
            ),
            Some(gap) => log::warn!(
                "{iface}: fail-safe incomplete: {gap} (require_failsafe = true or \
                 --require-failsafe makes this an error)"
            ),
        }
        log::info!(
            "XDP attached to {iface} ({used:?} mode); instances: {}",
            driver
                .instances()
                .iter()
                .zip(&primaries)
                .map(|(i, p)| format!(
                    "{} (vrid {} priority {} from {p}, fail-safe {:?})",
                    i.spec.name, i.spec.vrid, i.spec.priority, i.stale_after
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let ring = register(fp.take_events()?)?;
        let tx = Tx::open(iface, ifindex)?;
        let running = crate::rtnl::iface_facts(iface).map_or(true, |f| f.running);
        let (link_tx, link) = watch::channel(running);
        let (addr_tx, addr_rx) = mpsc::unbounded_channel();
        Ok(IfaceRun {
            link,
            link_tx,
            addr_rx,
            addr_tx,
            driver,
            ex: Executor {
                iface: iface.to_owned(),
                ifindex,
                fp,
                tx,
                nl,
                info,
            },
            ring,
        })
    }

    /// The event loop of one interface, until `stop` changes; then the clean stop.
    async fn run(self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let IfaceRun {
            mut driver,
            mut ex,
            mut ring,
            mut link,
            link_tx: _link_tx,
            mut addr_rx,
            addr_tx: _addr_tx,
        } = self;
        let mut link_up = *link.borrow_and_update();
        if !link_up {
            log::info!("interface {}: link down", ex.iface);
            let cmds = driver.link(false, now());
            ex.exec(&mut driver, cmds).await;
        }
        ex.uc_filter(true).await;
        let cmds = driver.startup(now());
        ex.exec(&mut driver, cmds).await;
        let mut hb = tokio::time::interval(driver.heartbeat_period());
        hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut timer = DeadlineTimer::new()?;
        let mut overflow = OverflowReport::new();
        loop {
            ex.beat();
            check_overflow(&ex.fp, &ex.iface, &mut overflow, now(), false);
            timer.set(driver.next_wakeup().map(fsm::Instant::as_nanos))?;
            let armed = timer.deadline().is_some();
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                g = ring.readable_mut() => feed(&mut driver, &mut ex, take_ready(g?)).await,
                r = timer.expired(), if armed => {
                    r?;
                    // Adverts that arrived before the timer ran out count first.
                    let cmds = driver.expire(now(), drain_ready(ring.get_mut()));
                    ex.exec(&mut driver, cmds).await;
                }
                Some(ev) = addr_rx.recv() => {
                    let cmds = match ev {
                        AddrEvent::Changed { addr, present } => driver.address_changed(addr, present),
                        AddrEvent::Resync => match netlink::addresses(&ex.nl, ex.ifindex).await {
                            Ok(addrs) => driver.addresses_now(&addrs),
                            Err(e) => {
                                log::warn!("interface {}: reading the addresses: {e:#}", ex.iface);
                                Vec::new()
                            }
                        },
                    };
                    ex.exec(&mut driver, cmds).await;
                }
                _ = hb.tick() => {}
                r = link.changed() => {
                    // The sender lives as long as this loop (`_link_tx`), so `r` is Ok.
                    let up = r.is_ok() && *link.borrow_and_update();
                    if up != link_up {
                        link_up = up;
                        log::info!("interface {}: link {}", ex.iface, if up { "up" } else { "down" });
                        let cmds = driver.link(up, now());
                        ex.exec(&mut driver, cmds).await;
                    }
                }
            }
        }
        // Clean stop: priority-0 adverts from masters, then release (maps, VIPs).
        feed(&mut driver, &mut ex, drain_ready(ring.get_mut())).await;
        let cmds = driver.shutdown(now());
        ex.exec(&mut driver, cmds).await;
        // Graceful handover: keep the VIPs until the new master announces itself (bounded by
        // the driver's deadline; the extra second is only a backstop).
        let backstop = tokio::time::Instant::now()
            + driver.next_wakeup().map_or(Duration::ZERO, |w| {
                Duration::from_nanos(w.as_nanos().saturating_sub(crate::clock::monotonic_ns()))
            })
            + Duration::from_secs(1);
        while driver.handing_over() {
            ex.beat();
            timer.set(driver.next_wakeup().map(fsm::Instant::as_nanos))?;
            let armed = timer.deadline().is_some();
            tokio::select! {
                biased;
                g = ring.readable_mut() => feed(&mut driver, &mut ex, take_ready(g?)).await,
                r = timer.expired(), if armed => {
                    r?;
                    // Adverts that arrived before the timer ran out count first.
                    let cmds = driver.expire(now(), drain_ready(ring.get_mut()));
                    ex.exec(&mut driver, cmds).await;
                }
                _ = tokio::time::sleep_until(backstop) => {
                    let cmds = driver.end_handovers();
                    ex.exec(&mut driver, cmds).await;
                }
            }
        }
        check_overflow(&ex.fp, &ex.iface, &mut overflow, now(), true);
        ex.clear_maps();
        ex.uc_filter(false).await;
        let counters = ex.fp.counters();
        ex.fp.detach()?;
        for i in driver.instances() {
            log::info!("instance {}: rx {}", i.spec.name, i.rx.summary());
            log::info!("instance {}: vips {}", i.spec.name, i.vip_stats.summary());
        }
        if driver.unmatched != Default::default() {
            log::info!(
                "interface {}: unmatched rx {}",
                ex.iface,
                driver.unmatched.summary()
            );
        }
        log::info!(
            "XDP detached from {}; counters: {}",
            ex.iface,
            counters?.summary()
        );
        Ok(())
    }
}

/// Everything the ring holds now that it is readable; clears the readiness.
fn take_ready(
    mut g: tokio::io::unix::AsyncFdReadyMutGuard<'_, RingBuf<MapData>>,
) -> Vec<AdvertEvent> {
    let events = drain_ready(g.get_inner_mut());
    g.clear_ready();
    events
}

/// Hands adverts to the driver, one by one, and carries out what it says.
async fn feed(driver: &mut Driver, ex: &mut Executor, events: Vec<AdvertEvent>) {
    for ev in events {
        let cmds = driver.on_event(&ev, now());
        ex.exec(driver, cmds).await;
    }
}

/// Everything the ring holds right now, without waiting.
fn drain_ready(ring: &mut RingBuf<MapData>) -> Vec<AdvertEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if let Some(ev) = parse_event(&item) {
            out.push(ev);
        }
    }
    out
}

/// `vrrp-agent run` with virtual routers (`--vip` or `--config`): elect, own the VIPs, stop
/// cleanly on SIGINT/SIGTERM.
pub async fn run_election(cfg: AgentConfig) -> Result<()> {
    let nl = netlink::connect()?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    for i in &cfg.instances {
        log::debug!("{}", i.describe());
    }
    // Set every interface up first: a mistake in the second must not leave the first running.
    let mut runs = Vec::new();
    for (iface, idx) in cfg.by_interface() {
        let specs = idx.iter().map(|i| cfg.instances[*i].clone()).collect();
        runs.push(
            IfaceRun::setup(
                &iface,
                specs,
                cfg.xdp_mode,
                cfg.require_failsafe,
                nl.clone(),
            )
            .await?,
        );
    }
    let monitored = runs
        .iter()
        .map(|r| (r.ex.ifindex, r.link_tx.clone()))
        .collect();
    netlink::spawn_link_monitor(monitored)?;
    // Before any instance starts (and claims): no address change of ours goes unseen.
    let addr_watch = runs
        .iter()
        .map(|r| {
            let vips = r.ex.info.iter().flat_map(|i| i.vips.iter().map(|v| v.addr));
            (r.ex.ifindex, (vips.collect(), r.addr_tx.clone()))
        })
        .collect();
    netlink::spawn_addr_monitor(addr_watch)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let all = futures::future::join_all(runs.into_iter().map(|r| r.run(stop_rx.clone())));
    tokio::pin!(all);
    let results = tokio::select! {
        r = &mut all => r,
        _ = sigint.recv() => { log::info!("SIGINT: stopping"); let _ = stop_tx.send(true); all.await }
        _ = sigterm.recv() => { log::info!("SIGTERM: stopping"); let _ = stop_tx.send(true); all.await }
    };
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(())
}
