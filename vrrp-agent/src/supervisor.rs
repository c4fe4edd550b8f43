//! Election mode (`vrrp-agent run` with `--vip` or `--config`): one loop over one
//! [`vrrp_core::Core`] for every interface. The loop only waits and carries out: it hands the
//! core what happened (adverts from each interface's ring buffer, timer expiries, link and
//! address changes, signals) and does what the core's commands say, through the [`Port`] of the
//! instance's interface; notifications go to the sinks ([`crate::notify_log`]).
//!
//! Adverts and wake-ups (CPU floor, issue 11): the XDP program queues a *routine* advert (the
//! same as the last one of a router we do not own) without waking the agent
//! (`vrrp-ebpf/src/advert.rs`), so nothing here may depend on a wake-up per advert. Whatever
//! wakes the loop (a ring, a timer, the heartbeat, netlink, a check, a signal, the control
//! socket), every ring is drained into the core before anything else is handed to it, and a
//! timer's expiry is judged only after that ([`Edge::expire`]); the core runs the
//! Master_Down_Timer from each advert's kernel receive time, so an advert read late counts as
//! of when it arrived. A Backup thus wakes about once per Master_Down_Interval (plus the
//! heartbeat's wake-ups), not once per advert; an advert that may need an answer now (another
//! sender, another priority, priority 0, any advert while we are Master) still wakes it at once.
//!
//! A stop (SIGINT/SIGTERM) sets `stopping`: the core gets [`Event::Shutdown`] and the loop goes
//! on, without link and address events, while a departing master hands over (bounded by the
//! core's deadline plus a one-second backstop), then cleans up.
//!
//! Hitless restart (SIGUSR2): the agent exits at once, without priority-0 adverts or releases,
//! leaving its VIPs on the interfaces and the fast path attached with its routers owned. The
//! next start reads what it left ([`crate::fastpath::leftover`]) and an instance whose router is
//! owned with a fresh heartbeat and whose VIPs are all on the interface resumes as Master
//! ([`Event::Resume`]). The fast path answers for the VIPs in between only until the heartbeat
//! is older than twice the fail-safe bound (by default Master_Down_Interval; the exit doubles
//! it for the restart): the restart must come within it, and within the peers'
//! Master_Down_Interval for no role change.
use std::{net::IpAddr, path::PathBuf, task::Poll, time::Duration};

use anyhow::{anyhow, Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};
use vrrp_common::AdvertEvent;
use vrrp_core::{
    config::{CheckKind, TrackTarget},
    fsm,
    wire::MacAddr,
    Command, Core, Event, IfaceEnv, IfaceId, InstanceId, Model, TrackerId, TrackerInfo,
};

use crate::{
    checks::{self, HttpSpec, Probe, Trackers, Watch},
    config::{AgentConfig, XdpMode},
    control,
    fastpath::FastPath,
    netlink::{self, AddrEvent, NetEvent},
    notify_log::{fan_out, LogSink, Sink},
    notify_script::{EventStream, NotifySink},
    overflow::OverflowReport,
    port::{decode, drain_ready, register, InstInfo, Port},
    timer::DeadlineTimer,
    tx::Tx,
};

/// The `VRIDS` value of an instance's virtual router: its adverts come to us, and routine ones
/// without a wake-up (every wake-up drains the rings first, see the module docs).
const VRID_ELECTION: u32 = vrrp_common::VRID_ON | vrrp_common::VRID_QUIET;

/// Records in a quarter of the advert ring (each record: the event and the ring's 8-byte header).
const RING_QUARTER_RECORDS: usize =
    vrrp_common::EVENTS_RING_BYTES as usize / 4 / (std::mem::size_of::<AdvertEvent>() + 8);

/// Now on the agent's clock, as the core's instant.
fn now() -> fsm::Instant {
    fsm::Instant::from_nanos(crate::clock::monotonic_ns())
}

/// The core and everything that carries out its commands.
struct Edge {
    core: Core,
    ports: Vec<Port>,
    sinks: Vec<Box<dyn Sink>>,
    /// Health-check results per tracker (`Some` for a check), for the metrics.
    checks: Vec<Option<control::CheckCount>>,
    /// The VIPs the address monitor watches (a reload changes them: [`set_addr_watch`]).
    addr_watch: netlink::AddrWatch,
}

// --- control socket and metrics (crate::control, crate::metrics) ---
impl Edge {
    /// Counts a check result the edge hands to the core.
    fn count_check(&mut self, r: &checks::Report) {
        if let checks::Report::Check { tracker, ok } = r {
            if let Some(Some(c)) = self.checks.get_mut(*tracker) {
                *if *ok { &mut c.success } else { &mut c.failure } += 1;
            }
        }
    }

    /// Answers a question of the control socket or the metrics server.
    fn answer(&self, req: control::Request) {
        match req {
            control::Request::Status(reply) => {
                let _ = reply.send(control::StatusData {
                    snapshot: self.core.snapshot(),
                    now: now(),
                    fastpath: self
                        .ports
                        .iter()
                        .map(|p| (p.iface.clone(), p.fp.counters().ok()))
                        .collect(),
                    checks: self.checks.iter().flatten().cloned().collect(),
                });
            }
            // The loop answers it itself (it needs the configuration source).
            control::Request::Reload(reply) => {
                let _ = reply.send(Err("reload is answered by the loop".into()));
            }
        }
    }
}
// --- end control socket and metrics ---

impl Edge {
    fn port(&mut self, id: InstanceId) -> &mut Port {
        let f = self
            .core
            .iface_of(id)
            .expect("a command for a known instance");
        &mut self.ports[f.0]
    }

    fn name(&self, id: InstanceId) -> String {
        self.core
            .spec(id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// Hands `ev` to the core and carries out what it says.
    async fn handle(&mut self, ev: Event) {
        self.core.handle(ev, now());
        self.exec().await;
    }

    /// Carries out the core's commands in order. What every claim and release did is reported
    /// before the next command is polled (the core's answer, e.g. to a failed claim, goes in
    /// front of what is left), and when each advert actually left (the Adver_Timer restarts
    /// from the send).
    async fn exec(&mut self) {
        while let Some(c) = self.core.poll_command() {
            self.run(c).await;
        }
    }

    /// Carries out one command of the core.
    async fn run(&mut self, c: Command) {
        if let Some(d) = crate::step_hook::delay() {
            if let Some((id, kind, step)) = crate::step_hook::step_of(&c) {
                crate::step_hook::step(kind, step, &self.name(id), d).await;
            }
        }
        {
            let (instance, report) = match c {
                Command::Notify(n) => {
                    fan_out(&mut self.sinks, &n);
                    return;
                }
                Command::SendFrame {
                    instance,
                    frame,
                    advert,
                } => {
                    let p = self.port(instance);
                    match p.tx.send_frame(&frame) {
                        Ok(_) if advert => self.advert_sent(instance),
                        Ok(_) => {}
                        Err(e) => {
                            let iface = p.iface.clone();
                            log::warn!(
                                "instance {}: sending a frame on {iface}: {e}",
                                self.name(instance)
                            );
                            if advert {
                                self.advert_not_sent(instance, &e);
                            }
                        }
                    }
                    return;
                }
                Command::SendIp {
                    instance,
                    dst,
                    packet,
                } => {
                    match self.port(instance).tx.send_ip(dst, &packet) {
                        Ok(_) => self.advert_sent(instance),
                        Err(e) => {
                            log::warn!(
                                "instance {}: sending an advert to {dst}: {e}",
                                self.name(instance)
                            );
                            self.advert_not_sent(instance, &e);
                        }
                    }
                    return;
                }
                Command::Claim { instance, accept } => {
                    let first = self.half_advert(instance);
                    (instance, self.port(instance).claim(instance, accept, first))
                }
                Command::AddVips { instance } => {
                    (instance, self.port(instance).add_vips(instance).await)
                }
                Command::Release { instance } => {
                    (instance, self.port(instance).release(instance).await)
                }
                Command::AddVip { instance, vip } => {
                    (instance, self.port(instance).add_vip(vip).await)
                }
                Command::RemoveVip { instance, vip } => {
                    (instance, self.port(instance).remove_vip(vip).await)
                }
            };
            self.core.handle(Event::Report { instance, report }, now());
        }
    }

    /// Half instance `id`'s advert interval: the fail-safe bound of a claim until its first
    /// advert ([`Port::claim`]) and of a stop's handover.
    fn half_advert(&self, id: InstanceId) -> Duration {
        self.core.spec(id).map_or(Duration::from_millis(500), |s| {
            Duration::from_millis(u64::from(s.advert_int_cs) * 5)
        })
    }

    fn advert_sent(&mut self, instance: InstanceId) {
        self.port(instance).advert_left(instance);
        let at = now();
        self.core.handle(Event::AdvertSent { instance, at }, at);
    }

    /// An advert did not leave: if only for the moment (the kernel had no room), the core
    /// sends it again shortly.
    fn advert_not_sent(&mut self, instance: InstanceId, e: &std::io::Error) {
        if crate::tx::no_room_for_now(e) {
            let at = now();
            self.core.handle(Event::AdvertNotSent { instance, at }, at);
        }
    }

    /// Hands adverts of interface `f` to the core, one by one, carrying out what it says after
    /// each.
    async fn feed(&mut self, f: usize, events: Vec<AdvertEvent>) {
        self.drained(f, events.len());
        for ev in events {
            let rx = decode(&ev);
            self.handle(Event::Advert {
                iface: IfaceId(f),
                rx,
            })
            .await;
        }
    }

    /// A timer ran out: the adverts waiting in every ring buffer count first (with their
    /// receive times), then the timers.
    async fn expire(&mut self, rings: &mut [AsyncFd<RingBuf<MapData>>]) {
        let t = now();
        for (f, ring) in rings.iter_mut().enumerate() {
            let events = drain_ready(ring.get_mut());
            self.drained(f, events.len());
            for ev in events {
                let rx = decode(&ev);
                self.core.handle(
                    Event::Advert {
                        iface: IfaceId(f),
                        rx,
                    },
                    t,
                );
            }
        }
        self.core.handle(Event::Timer, t);
        self.exec().await;
    }

    /// Every advert queued in every ring now, handed in (routine adverts are queued without a
    /// wake-up: every wake-up hands them in before anything else, see the module docs).
    async fn feed_all(&mut self, rings: &mut [AsyncFd<RingBuf<MapData>>]) {
        for (f, ring) in rings.iter_mut().enumerate() {
            let events = drain_ready(ring.get_mut());
            self.feed(f, events).await;
        }
    }

    /// `n` records were drained from interface `f`'s ring at once: that many means the ring was
    /// at least a quarter full (the XDP program then wakes us for every advert), so adverts
    /// may have been lost; the overflow counter is read at its next due time even if nothing
    /// else wakes the loop.
    fn drained(&mut self, f: usize, n: usize) {
        if n >= RING_QUARTER_RECORDS {
            if let Some(p) = self.ports.get_mut(f) {
                p.overflow.suspect();
            }
        }
    }

    fn beat(&mut self) {
        for p in &mut self.ports {
            p.beat();
        }
    }
}

/// Waits until a ring has data and takes everything it holds (clearing its readiness).
async fn ring_ready(
    rings: &mut [AsyncFd<RingBuf<MapData>>],
) -> std::io::Result<(usize, Vec<AdvertEvent>)> {
    std::future::poll_fn(|cx| {
        for (f, ring) in rings.iter_mut().enumerate() {
            match ring.poll_read_ready_mut(cx) {
                Poll::Ready(Ok(mut g)) => {
                    let events = drain_ready(g.get_inner_mut());
                    g.clear_ready();
                    return Poll::Ready(Ok((f, events)));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

// ---- hitless restart (SIGUSR2) and start-up timing ----

/// Start-up timestamps for the debug log: what each step of a start costs.
struct Stopwatch {
    start: u64,
    last: u64,
}

impl Stopwatch {
    fn new() -> Self {
        let t = crate::clock::monotonic_ns();
        Stopwatch { start: t, last: t }
    }

    fn mark(&mut self, what: &str) {
        let t = crate::clock::monotonic_ns();
        log::debug!(
            "startup: {what}: {:.2} ms (at {:.2} ms)",
            (t - self.last) as f64 / 1e6,
            (t - self.start) as f64 / 1e6
        );
        self.last = t;
    }
}

/// What [`resume_early`] left for the edge: the notifications (for the sinks, not built yet)
/// and the commands that need a port.
struct Early {
    notes: Vec<vrrp_core::Notification>,
    deferred: Vec<Command>,
}

/// Resumes the instances `resume` (the previous run left them Master: router owned with a fresh
/// heartbeat, VIPs on the interface) and sends their first adverts and GARPs at once, through
/// transmit sockets opened here (kept in `txs` for the ports). Their claim is reported done:
/// everything it would set up is in place, and this run's fast path is attached with their
/// routers owned. Anything else the core asks (a release, for a faulted instance) waits for
/// the ports.
fn resume_early(
    core: &mut Core,
    resume: &[InstanceId],
    envs: &[IfaceEnv],
    ifindexes: &[u32],
    txs: &mut [Option<Tx>],
) -> Result<Early> {
    let mut early = Early {
        notes: Vec::new(),
        deferred: Vec::new(),
    };
    for &instance in resume {
        core.handle(Event::Resume { instance }, now());
    }
    while let Some(c) = core.poll_command() {
        let (instance, sent) = match c {
            Command::Notify(n) => {
                early.notes.push(n);
                continue;
            }
            Command::Claim { instance, .. } | Command::AddVips { instance } => {
                core.handle(
                    Event::Report {
                        instance,
                        report: vrrp_core::Report::Claimed,
                    },
                    now(),
                );
                continue;
            }
            Command::SendFrame {
                instance,
                ref frame,
                advert,
            } => {
                let f = core.iface_of(instance).expect("a known instance").0;
                if txs[f].is_none() {
                    txs[f] = Some(Tx::open(&envs[f].name, ifindexes[f])?);
                }
                let tx = txs[f].as_mut().expect("opened");
                (instance, tx.send_frame(frame).map(|_| advert))
            }
            Command::SendIp {
                instance,
                dst,
                ref packet,
            } => {
                let f = core.iface_of(instance).expect("a known instance").0;
                if txs[f].is_none() {
                    txs[f] = Some(Tx::open(&envs[f].name, ifindexes[f])?);
                }
                let tx = txs[f].as_mut().expect("opened");
                (instance, tx.send_ip(dst, packet).map(|_| true))
            }
            c => {
                early.deferred.push(c);
                continue;
            }
        };
        match sent {
            Ok(true) => {
                let at = now();
                core.handle(Event::AdvertSent { instance, at }, at);
            }
            Ok(false) => {}
            Err(e) => log::warn!("resuming: sending a frame: {e:#}"),
        }
    }
    Ok(early)
}

/// What the previous run left in the fast path attached to one interface, for the routers of
/// its instances (`idx` into the configuration): the facts [`Core::resume_decision`] decides
/// from. An unreadable one counts as nothing left (a cold start).
fn left_over(
    cfg: &AgentConfig,
    idx: &[usize],
    facts: &crate::rtnl::IfaceFacts,
) -> crate::fastpath::Leftover {
    let slots: Vec<u32> = idx
        .iter()
        .map(|i| &cfg.instances[*i])
        .map(|s| vrrp_common::vrid_slot(s.family_tag(), s.vrid))
        .collect();
    crate::fastpath::leftover(facts, &slots, crate::clock::monotonic_ns()).unwrap_or_else(|e| {
        log::warn!(
            "{}: reading what the previous run left in the fast path: {e:#}; starting cold",
            facts.name
        );
        Default::default()
    })
}

/// Cold start: the adverts every interface heard while the fast path loaded
/// ([`crate::early_rx`]), oldest first with their interface, and since when all listened;
/// `None` (start the timers now) if one interface could not listen or missed a frame.
/// `attached[f]`: when interface `f`'s fast path was attached; what its socket heard from then
/// on is left out (the ring has it: the core would count it twice).
fn heard_while_loading(
    early: Vec<Result<crate::early_rx::EarlyRx, ()>>,
    attached: &[fsm::Instant],
) -> Option<(fsm::Instant, Vec<(usize, vrrp_core::Received)>)> {
    let mut since = fsm::Instant::ZERO;
    let mut heard = Vec::new();
    for (f, e) in early.into_iter().enumerate() {
        let e = e.ok()?;
        since = since.max(e.since);
        match e.drain() {
            Ok(rx) => heard.extend(
                rx.into_iter()
                    .filter(|r| attached.get(f).is_none_or(|&a| r.rx_time < a))
                    .map(|r| (f, r)),
            ),
            Err(err) => {
                log::debug!("startup: listening while the fast path loaded: {err:#}");
                return None;
            }
        }
    }
    heard.sort_by_key(|(_, r)| r.rx_time);
    // Receive times relative to `since` (tests check them against the listening window).
    let rel = |r: &vrrp_core::Received| {
        (r.rx_time.as_nanos() as i128 - since.as_nanos() as i128) as f64 / 1e6
    };
    let span = match (heard.first(), heard.last()) {
        (Some((_, a)), Some((_, b))) => {
            format!(" (received {:+.2} to {:+.2} ms after)", rel(a), rel(b))
        }
        _ => String::new(),
    };
    log::debug!(
        "startup: listening since {:.2} ms ago: {} advert(s) heard while the fast path \
         loaded{span}",
        (now().as_nanos().saturating_sub(since.as_nanos())) as f64 / 1e6,
        heard.len()
    );
    Some((since, heard))
}

/// Test hook, read only at start: `VRRP_AGENT_TEST_LOAD_DELAY_MS=N` delays loading the fast
/// path by N ms (at most 10 s), so that a namespace test can make the cold start's load window
/// (the sockets of [`crate::early_rx`] listening, nothing attached) far longer than a
/// Master_Down_Interval. Not for production: a warning says it is set.
const TEST_LOAD_DELAY_ENV: &str = "VRRP_AGENT_TEST_LOAD_DELAY_MS";

fn test_load_delay() -> Option<Duration> {
    let v = std::env::var(TEST_LOAD_DELAY_ENV).ok()?;
    match v.trim().parse::<u64>() {
        Ok(ms) if ms <= 10_000 => {
            log::warn!(
                "{TEST_LOAD_DELAY_ENV}={ms}: loading the fast path {ms} ms late (a test hook; \
                 unset it outside tests)"
            );
            Some(Duration::from_millis(ms))
        }
        _ => {
            log::warn!(
                "{TEST_LOAD_DELAY_ENV}={v:?} ignored: a test hook taking 0 to 10000 (ms); unset it"
            );
            None
        }
    }
}

/// SIGUSR2: exits for a hitless restart. No priority-0 advert, no release: the VIPs stay on
/// the interfaces, the fast path stays attached with its routers owned and a fresh heartbeat,
/// so it answers for the VIPs until twice the fail-safe bound; the next start resumes if it
/// comes within that.
async fn leave_for_restart(mut edge: Edge, trackers: Option<Trackers>) -> Result<()> {
    edge.beat();
    let snap = edge.core.snapshot();
    let mut masters = Vec::new();
    for i in snap
        .instances
        .iter()
        .filter(|i| i.state == fsm::State::Master)
    {
        // The restart gets the fail-safe bound once more: the old program keeps answering for
        // the VIPs until the heartbeat is twice the bound old (the next start reads the same
        // bound to decide whether to resume, and sets the configured one again).
        let accept = edge
            .core
            .spec(i.id)
            .is_some_and(|s| s.accept_mode || s.priority == 255);
        let p = edge.port(i.id);
        let r = p.fp.set_router(
            i.family.tag(),
            i.vrid,
            true,
            accept,
            i.failsafe_bound.saturating_mul(2),
        );
        if let Err(e) = r {
            log::warn!("instance {}: extending the fail-safe bound: {e:#}", i.name);
        }
        masters.push(format!(
            "{} ({:?})",
            i.name,
            i.failsafe_bound.saturating_mul(2)
        ));
    }
    log::info!(
        "SIGUSR2: exiting for a hitless restart, leaving the VIPs and the fast path in place; \
         start again within the fail-safe bound to resume: {}",
        if masters.is_empty() {
            "no instance is master".to_owned()
        } else {
            masters.join(", ")
        }
    );
    if let Some(t) = trackers {
        t.stop().await;
    }
    for p in edge.ports.drain(..) {
        p.fp.leave_attached();
    }
    Ok(())
}

/// Attaches the fast path of one interface, with its instances' maps filled in; the routers of
/// `resumed` instances are owned from the start (the previous run left them so: the new
/// program answers for their VIPs as the old one did).
#[allow(clippy::too_many_arguments)]
fn attach(
    iface: &str,
    mac: MacAddr,
    info: &[InstInfo],
    core: &Core,
    f: IfaceId,
    mode: XdpMode,
    require_failsafe: bool,
    resumed: &[InstanceId],
) -> Result<FastPath> {
    // Loaded, filled, verified and attached with the steps overlapped (see
    // FastPath::load_and_attach); the maps are filled before any program runs.
    let (fp, used, t) = FastPath::load_and_attach(iface, mode, require_failsafe, |fp| {
        fp.set_iface_mac(mac.0)?;
        fp.heartbeat(crate::clock::monotonic_ns())?;
        for inf in info {
            fp.set_vrid_flags(inf.family, inf.vrid, VRID_ELECTION)?;
            let accept = core
                .spec(inf.id)
                .is_some_and(|s| s.accept_mode || s.priority == 255);
            let owned = resumed.contains(&inf.id);
            fp.set_router(
                inf.family,
                inf.vrid,
                owned,
                owned && accept,
                inf.stale_after,
            )?;
            for v in &inf.vips {
                fp.add_vip(v.addr, inf.vrid)?;
            }
        }
        Ok(())
    })?;
    let ms = |ns: u64| ns as f64 / 1e6;
    log::debug!(
        "startup: {iface}: object and maps: {:.2} ms; maps filled, lock, XDP plan: {:.2} ms; \
         then egress verified {:.2} ms + attached {:.2} ms, alongside XDP verified {:.2} ms; \
         XDP attached: {:.2} ms",
        ms(t.maps),
        ms(t.lock),
        ms(t.egress_verified),
        ms(t.egress_attached),
        ms(t.xdp_verified),
        ms(t.xdp_attached)
    );
    let snap = core.snapshot();
    let mine: Vec<_> = snap.instances.iter().filter(|i| i.iface == f).collect();
    let bounds = mine
        .iter()
        .map(|i| format!("{} {:?}", i.name, i.failsafe_bound))
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
        mine.iter()
            .map(|i| format!(
                "{} (vrid {} priority {} from {}, fail-safe {:?})",
                i.name, i.vrid, i.priority, i.primary, i.failsafe_bound
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(fp)
}

/// `vrrp-agent run` with virtual routers (`--vip` or `--config`): elect, own the VIPs, stop
/// cleanly on SIGINT/SIGTERM.
pub async fn run_election(cfg: AgentConfig) -> Result<()> {
    run_election_with(cfg, None).await
}

/// [`run_election`], also writing the JSON event stream to `event_stream` (`--event-stream`).
pub async fn run_election_with(cfg: AgentConfig, event_stream: Option<PathBuf>) -> Result<()> {
    run_election_ctl(cfg, event_stream, control::DEFAULT_SOCKET.into(), None).await
}

/// [`run_election_with`], serving the control socket at `control_socket` and reloading
/// `source` on SIGHUP ([`Edge::reload`]).
pub async fn run_election_ctl(
    cfg: AgentConfig,
    event_stream: Option<PathBuf>,
    control_socket: PathBuf,
    source: Option<ConfigSource>,
) -> Result<()> {
    let mut sw = Stopwatch::new();
    let nl = netlink::connect()?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigusr2 = signal(SignalKind::user_defined2()).context("installing SIGUSR2 handler")?;
    sw.mark("netlink socket, signal handlers");
    for i in &cfg.instances {
        log::debug!("{}", i.describe());
    }
    // The interfaces in first-use order: IfaceId(k) is the k-th.
    let groups = cfg.by_interface();
    let mut envs = Vec::new();
    let mut ifindexes = Vec::new();
    // Hitless restart: the instances (configuration order = InstanceId) the previous run left
    // Master.
    let mut left = Vec::new();
    let mut resume_ids = Vec::new();
    let mut listening = Vec::new();
    for (iface, idx) in &groups {
        // From netlink, in our own network namespace (never /sys, which may show another one).
        let facts = crate::rtnl::iface_facts(iface)?;
        // Cold start: listen for adverts from now on, while the fast path loads.
        listening.push(crate::early_rx::EarlyRx::open(facts.index).map_err(|e| {
            log::debug!("startup: {iface}: not listening while the fast path loads: {e:#}")
        }));
        let mac = MacAddr(facts.mac()?);
        let addrs = netlink::addresses(&nl, facts.index)
            .await
            .with_context(|| format!("reading the addresses of {iface}"))?;
        sw.mark("interface facts, addresses");
        left.push(left_over(&cfg, idx, &facts));
        sw.mark("previous run's maps");
        ifindexes.push(facts.index);
        envs.push(IfaceEnv {
            name: iface.clone(),
            mac,
            addrs,
        });
    }
    let mut core = Core::with_model(Model::from(&cfg), envs.clone()).map_err(|e| anyhow!(e))?;
    sw.mark("core");
    // Resumed: the core decides from what the previous run left (a SIGUSR2 exit doubles the
    // bound this configuration gives; a killed agent's routers, or another configuration's,
    // start cold).
    for i in &core.snapshot().instances {
        let iface = &envs[i.iface.0].name;
        let facts = vrrp_core::ResumeFacts {
            left: left[i.iface.0].router(i.family.tag(), i.vrid),
            addrs: &envs[i.iface.0].addrs,
        };
        let decision = core.resume_decision(i.id, &facts);
        if let Some(vrrp_core::ResumeDecision::Cold(why)) = decision {
            if left[i.iface.0].attached {
                log::debug!("instance {}: starting cold: {why}", i.name);
            }
        }
        if decision == Some(vrrp_core::ResumeDecision::Resume) {
            log::info!(
                "instance {}: resuming as master: the previous run left its VIPs on {iface} \
                 and its router owned in the fast path (hitless restart)",
                i.name
            );
            resume_ids.push(i.id);
        } else if i.priority != 255 {
            if let Some(v) = i
                .vips
                .iter()
                .find(|v| envs[i.iface.0].addrs.contains(&v.addr))
            {
                log::info!(
                    "instance {}: {} is already on {iface} (left over by an earlier run?); \
                     it is removed until this router becomes master",
                    i.name,
                    v.addr
                );
            }
        }
    }
    // Hitless restart: the resumed instances' first adverts leave before this run loads its
    // fast path (the one the previous run left still answers for their VIPs).
    let mut txs: Vec<Option<Tx>> = envs.iter().map(|_| None).collect();
    let early = resume_early(&mut core, &resume_ids, &envs, &ifindexes, &mut txs)?;
    if !resume_ids.is_empty() {
        sw.mark("resumed: first adverts sent");
    }
    // Control socket and metrics: bound before anything is attached (a taken socket or
    // address is an error at start-up); served once the loop runs.
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<control::Request>(16);
    let _control = control::serve(
        &control_socket,
        cfg.control_group.as_deref(),
        ctl_tx.clone(),
    )?;
    let _metrics = match cfg.metrics_addr {
        Some(a) => Some(crate::metrics::serve(a, ctl_tx.clone()).await?),
        None => None,
    };
    drop(ctl_tx);
    let check_counts = core
        .trackers()
        .iter()
        .map(|t| match &t.target {
            TrackTarget::Check(name) => Some(control::CheckCount {
                check: name.clone(),
                ..Default::default()
            }),
            _ => None,
        })
        .collect();
    // Test hook: a wait before each claim and release step (see [`crate::step_hook`]).
    crate::step_hook::init();
    // Test hook: a longer load window (see [`test_load_delay`]).
    if let Some(d) = test_load_delay() {
        tokio::time::sleep(d).await;
        sw.mark("test hook: load delayed");
    }
    // Set every interface up first: a mistake in the second must not leave the first running.
    let snap = core.snapshot();
    let mut ports = Vec::new();
    let mut rings = Vec::new();
    let mut attached = Vec::new();
    for (f, env) in envs.iter().enumerate() {
        let info: Vec<InstInfo> = snap
            .instances
            .iter()
            .filter(|i| i.iface == IfaceId(f))
            .map(|i| InstInfo {
                id: i.id,
                name: i.name.clone(),
                family: i.family.tag(),
                vrid: i.vrid,
                vips: i.vips.clone(),
                stale_after: i.failsafe_bound,
                owner: i.priority == 255,
            })
            .collect();
        let mut fp = attach(
            &env.name,
            env.mac,
            &info,
            &core,
            IfaceId(f),
            cfg.xdp_mode,
            cfg.require_failsafe,
            &resume_ids,
        )?;
        attached.push(now());
        sw.mark("fast path loaded and attached");
        rings.push(register(fp.take_events()?)?);
        let tx = match txs[f].take() {
            Some(tx) => tx,
            None => Tx::open(&env.name, ifindexes[f])?,
        };
        let running = crate::rtnl::iface_facts(&env.name).map_or(true, |f| f.running);
        ports.push(Port {
            iface: env.name.clone(),
            ifindex: ifindexes[f],
            fp,
            tx,
            nl: nl.clone(),
            info,
            overflow: OverflowReport::new(),
            link_up: running,
            unannounced: Vec::new(),
        });
        sw.mark("ring, transmit sockets");
    }
    let (net_tx, mut net_rx) = mpsc::unbounded_channel();
    netlink::spawn_link_monitor(
        ports.iter().map(|p| (p.ifindex, p.link_up)).collect(),
        net_tx.clone(),
    )?;
    // Before any instance starts (and claims): no address change of ours goes unseen.
    let addr_watch = netlink::AddrWatch::default();
    set_addr_watch(&addr_watch, &ports);
    netlink::spawn_addr_monitor(addr_watch.clone(), net_tx)?;
    // The trackers' reports come through one channel; `_trk_keep` keeps it open when there
    // are none, so that its branch of the loop just waits.
    let (trk_tx, mut trk_rx) = mpsc::unbounded_channel();
    let _trk_keep = trk_tx.clone();
    let mut trackers = Some(
        Trackers::start(
            core.trackers()
                .iter()
                .map(|t| (t.id.0, watch_of(t)))
                .collect(),
            trk_tx,
        )
        .await
        .context("starting the trackers")?,
    );
    let scripts = NotifySink::from_config(&cfg);
    let mut drain = scripts.drain();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(LogSink), Box::new(scripts)];
    sinks.extend(event_stream.map(|p| Box::new(EventStream::open(p)) as Box<dyn Sink>));
    let mut edge = Edge {
        core,
        ports,
        sinks,
        checks: check_counts,
        addr_watch,
    };
    for f in 0..edge.ports.len() {
        if !edge.ports[f].link_up {
            log::info!("interface {}: link down", edge.ports[f].iface);
            edge.handle(Event::Link {
                iface: IfaceId(f),
                up: false,
            })
            .await;
        }
        edge.ports[f].uc_filter(true).await;
    }
    sw.mark("monitors, trackers, unicast filter");
    for n in &early.notes {
        fan_out(&mut edge.sinks, n);
    }
    for c in early.deferred {
        edge.run(c).await;
    }
    edge.exec().await;
    // Cold start: the Master_Down_Timers run from when every interface listened, and what was
    // heard while the fast path loaded counts first (see crate::early_rx).
    match heard_while_loading(listening, &attached) {
        Some((since, heard)) => {
            edge.handle(Event::StartupListening { since }).await;
            for (f, rx) in heard {
                edge.handle(Event::Advert {
                    iface: IfaceId(f),
                    rx,
                })
                .await;
            }
        }
        None => edge.handle(Event::Startup).await,
    }
    sw.mark("started (first adverts sent)");
    // RSS (issue 11): loading the fast path (the kernel's BTF, the object's relocations) left
    // megabytes of freed heap; hand it back.
    trim_heap();
    sd_notify(&[sd_notify::NotifyState::Ready]); // systemd (issue 10)

    // The running loop. The heartbeat rides on the loop's wake-ups (issue 11, CPU floor).
    let mut hb = vrrp_core::Heartbeat::new(edge.core.heartbeat_period());
    let mut timer = DeadlineTimer::new()?;
    let mut stopping = false;
    let mut hitless = false;
    // The last resort of a handover at a stop.
    let mut backstop: Option<tokio::time::Instant> = None;
    loop {
        if (stopping && !edge.core.handing_over()) || hitless {
            break;
        }
        let t = now();
        if hb.due(t) {
            edge.beat();
            hb.wrote(t);
        }
        if !stopping {
            for p in &mut edge.ports {
                p.check_overflow(t, false);
            }
        }
        // The core's next deadline, or the heartbeat's when no wake-up comes before it. The
        // heartbeat only matters while a router is owned (the fast path never finds a router
        // it does not own stale; a claim writes it first): a node owning none, a Backup, does
        // not wake for it, so it wakes about once per Master_Down_Interval.
        let core_due = edge.core.poll_timeout();
        let hb_due = edge
            .ports
            .iter()
            .any(|p| p.fp.owns_any())
            .then(|| hb.deadline());
        // A suspected ring overflow is read (and reported) within a second.
        let overflow_due = edge.ports.iter().filter_map(|p| p.overflow.wake_at()).min();
        // CPU floor (issue 11): adverts due within ADVERT_SLACK share one wake-up.
        let wake = [edge.core.poll_wakeup(), hb_due, overflow_due]
            .into_iter()
            .flatten()
            .min();
        timer.set(wake.map(|w| w.as_nanos()))?;
        let stop = tokio::select! {
            biased;
            _ = sigint.recv(), if !stopping => Some("SIGINT"),
            _ = sigterm.recv(), if !stopping => Some("SIGTERM"),
            _ = sigusr2.recv(), if !stopping => {
                hitless = true;
                None
            }
            r = ring_ready(&mut rings) => {
                let (f, events) = r?;
                edge.feed(f, events).await;
                // Routine adverts queued without a wake-up on the other interfaces.
                edge.feed_all(&mut rings).await;
                None
            }
            r = timer.expired() => {
                r?;
                if core_due.is_some_and(|d| d <= now()) {
                    // Adverts that arrived before the timer ran out count first.
                    edge.expire(&mut rings).await;
                } else {
                    // Only the heartbeat's wake-up (written at the top of the loop): the core
                    // has nothing due; what the rings hold goes in now all the same.
                    edge.feed_all(&mut rings).await;
                }
                None
            }
            Some(ev) = net_rx.recv(), if !stopping => {
                edge.feed_all(&mut rings).await;
                on_net_event(&mut edge, ev).await;
                None
            }
            Some(r) = trk_rx.recv(), if !stopping => {
                edge.feed_all(&mut rings).await;
                edge.count_check(&r);
                edge.handle(tracker_event(r)).await;
                None
            }
            _ = sighup.recv(), if !stopping => {
                // ---- reload (issue 10) ----
                edge.feed_all(&mut rings).await;
                let _ = edge.reload_source(source.as_ref(), "SIGHUP").await;
                None
            }
            Some(req) = ctl_rx.recv() => {
                // The status and the metrics count every advert received so far.
                edge.feed_all(&mut rings).await;
                match req {
                    // reload (issue 10): `vrrp-agent reload`
                    control::Request::Reload(reply) => {
                        let r = edge.reload_source(source.as_ref(), "reload").await;
                        let _ = reply.send(r);
                    }
                    req => edge.answer(req),
                }
                None
            }
            _ = sleep_until(backstop), if backstop.is_some() => {
                edge.feed_all(&mut rings).await;
                edge.handle(Event::EndHandovers).await;
                backstop = None;
                None
            }
        };
        if let Some(sig) = stop {
            log::info!("{sig}: stopping");
            sd_notify(&[sd_notify::NotifyState::Stopping]); // systemd (issue 10)
            stopping = true;
            // Clean stop: priority-0 adverts from masters, then release (maps, VIPs).
            edge.feed_all(&mut rings).await;
            // The handover: a new master claims within its Skew_Time of our priority-0
            // advert, so killed from then on (before the release), our claim must lapse
            // within half an advert interval, not the whole fail-safe bound; the heartbeat
            // follows at an eighth of the shortest one. Shortened before the advert leaves:
            // killed between the two, the whole bound would overlap the new master.
            if let Some(d) = crate::step_hook::delay() {
                for p in &edge.ports {
                    for i in &p.info {
                        crate::step_hook::step("handover", "failsafe", &i.name, d).await;
                    }
                }
            }
            let bounds: Vec<Vec<(InstanceId, Duration)>> = edge
                .ports
                .iter()
                .map(|p| {
                    p.info
                        .iter()
                        .map(|i| (i.id, edge.half_advert(i.id)))
                        .collect()
                })
                .collect();
            for (p, b) in edge.ports.iter_mut().zip(&bounds) {
                p.handover_failsafe(|id| {
                    b.iter()
                        .find(|(i, _)| *i == id)
                        .map_or(Duration::ZERO, |(_, d)| *d)
                });
            }
            let shortest = bounds.iter().flatten().map(|(_, d)| *d).min();
            if let Some(d) = shortest {
                hb = vrrp_core::Heartbeat::new((d / 4).max(Duration::from_millis(1)));
            }
            edge.handle(Event::Shutdown).await;
            // The checks end here (a script still running is killed with its group).
            if let Some(t) = trackers.take() {
                t.stop().await;
            }
            // Graceful handover: keep the VIPs until the new master announces itself (bounded
            // by the core's deadline; the extra second is only a backstop).
            backstop = Some(
                tokio::time::Instant::now()
                    + edge.core.poll_timeout().map_or(Duration::ZERO, |w| {
                        Duration::from_nanos(
                            w.as_nanos().saturating_sub(crate::clock::monotonic_ns()),
                        )
                    })
                    + Duration::from_secs(1),
            );
        }
    }
    if hitless {
        return leave_for_restart(edge, trackers).await;
    }
    // The STOP notify calls run while the fast path is taken down; waited for below.
    let drain_by = tokio::time::Instant::now() + crate::notify_script::STOP_DRAIN;
    let snap = edge.core.snapshot();
    for (f, p) in edge.ports.iter_mut().enumerate() {
        p.check_overflow(now(), true);
        p.clear_maps();
        p.uc_filter(false).await;
        let counters = p.fp.counters();
        p.fp.detach()?;
        for i in snap.instances.iter().filter(|i| i.iface == IfaceId(f)) {
            log::info!("instance {}: rx {}", i.name, i.rx.summary());
            log::info!("instance {}: vips {}", i.name, i.vip_stats.summary());
        }
        if snap.ifaces[f].unmatched != Default::default() {
            log::info!(
                "interface {}: unmatched rx {}",
                p.iface,
                snap.ifaces[f].unmatched.summary()
            );
        }
        log::info!(
            "XDP detached from {}; counters: {}",
            p.iface,
            counters?.summary()
        );
    }
    drain.finish(drain_by).await;
    Ok(())
}

/// What the checks edge must watch for a tracker of the core.
fn watch_of(t: &TrackerInfo) -> Watch {
    match (&t.target, &t.check) {
        (TrackTarget::Check(_), Some(c)) => Watch::Check {
            name: c.name.clone(),
            probe: match &c.kind {
                CheckKind::Script { command, user } => Probe::Script {
                    command: command.clone(),
                    user: user.clone(),
                },
                CheckKind::Icmp { target } => Probe::Icmp(*target),
                CheckKind::Tcp { target } => Probe::Tcp(*target),
                CheckKind::Http {
                    url,
                    tls,
                    status,
                    body_contains,
                    host,
                    tls_verify,
                } => Probe::Http(HttpSpec {
                    url: url.clone(),
                    tls: *tls,
                    status: status.clone(),
                    body_contains: body_contains.clone(),
                    host: host.clone(),
                    tls_verify: *tls_verify,
                }),
            },
            interval: c.interval,
            timeout: c.timeout,
            fall: c.fall,
        },
        (TrackTarget::Check(name), None) => Watch::Check {
            // The core resolves every tracked check; this is only the fail-safe answer.
            name: name.clone(),
            probe: Probe::Script {
                command: String::new(),
                user: None,
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            fall: 1,
        },
        (TrackTarget::Interface(n), _) => Watch::Interface(n.clone()),
        (TrackTarget::File(p), _) => Watch::File(p.into()),
        (TrackTarget::Process(n), _) => Watch::Process(n.clone()),
    }
}

/// A tracker's report as the core's event.
fn tracker_event(r: checks::Report) -> Event {
    match r {
        checks::Report::Check { tracker, ok } => Event::CheckResult {
            tracker: TrackerId(tracker),
            ok,
        },
        checks::Report::State { tracker, up } => Event::TrackerState {
            tracker: TrackerId(tracker),
            up,
        },
        checks::Report::Value { tracker, value } => Event::TrackerValue {
            tracker: TrackerId(tracker),
            value,
        },
    }
}

/// Sleeps until `at` (forever without one).
/// Returns the heap's free memory to the kernel (glibc keeps what start-up freed).
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A link or address change of one of the ports.
async fn on_net_event(edge: &mut Edge, ev: NetEvent) {
    let ifindex = match ev {
        NetEvent::Link { ifindex, .. } | NetEvent::Addr { ifindex, .. } => ifindex,
    };
    let Some(f) = edge.ports.iter().position(|p| p.ifindex == ifindex) else {
        return;
    };
    let iface = IfaceId(f);
    match ev {
        NetEvent::Link { running: up, .. } => {
            let p = &mut edge.ports[f];
            if up != p.link_up {
                p.link_up = up;
                log::info!(
                    "interface {}: link {}",
                    p.iface,
                    if up { "up" } else { "down" }
                );
                edge.handle(Event::Link { iface, up }).await;
            }
        }
        NetEvent::Addr {
            ev: AddrEvent::Changed { addr, present },
            ..
        } => {
            edge.handle(Event::AddressChanged {
                iface,
                addr,
                present,
            })
            .await
        }
        NetEvent::Addr {
            ev: AddrEvent::Resync,
            ..
        } => {
            let p = &edge.ports[f];
            match netlink::addresses(&p.nl, p.ifindex).await {
                Ok(addrs) => edge.handle(Event::AddressesNow { iface, addrs }).await,
                Err(e) => log::warn!("interface {}: reading the addresses: {e:#}", p.iface),
            }
        }
    }
}

// ---- reload (issue 10): SIGHUP / `vrrp-agent reload` ----

/// Where the running configuration came from, read again at a reload.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    Toml(PathBuf),
    Keepalived(PathBuf),
}

impl ConfigSource {
    /// Reads and validates the file like at start; an error is one line (file:line for TOML).
    pub fn load(&self) -> Result<AgentConfig, String> {
        match self {
            ConfigSource::Toml(p) => crate::config::load(p).map_err(|e| e.to_string()),
            ConfigSource::Keepalived(p) => {
                let (cfg, warnings) = crate::keepalived_conf::load(p)?;
                for w in warnings {
                    log::warn!("reload: {w}");
                }
                Ok(cfg)
            }
        }
    }
}

/// What a reload did (the reply of `vrrp-agent reload`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

/// The address monitor's watch set: every VIP of every instance of each port.
fn set_addr_watch(watch: &netlink::AddrWatch, ports: &[Port]) {
    let set = ports
        .iter()
        .map(|p| {
            let vips = p.info.iter().flat_map(|i| i.vips.iter().map(|v| v.addr));
            (p.ifindex, vips.collect::<Vec<IpAddr>>())
        })
        .collect();
    match watch.write() {
        Ok(mut w) => *w = set,
        Err(p) => *p.into_inner() = set,
    }
}

impl std::fmt::Display for ReloadSummary {
    /// `added -; removed vr2; changed vr1; unchanged vr3`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::notify_log::reload_summary(
            &self.added,
            &self.removed,
            &self.changed,
            &self.unchanged,
        ))
    }
}

/// Tells systemd (`Type=notify`) about a state change: `READY=1` once every instance has
/// started and after each reload, `RELOADING=1` before one, `STOPPING=1` at a stop. Nothing
/// without `$NOTIFY_SOCKET`; a failure is only logged (it never stops the agent).
fn sd_notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("systemd notify ({states:?}): {e}");
    }
}

impl Edge {
    /// A reload asked for by `why` (SIGHUP or `vrrp-agent reload`): reads `src` again and
    /// applies it, bracketed by systemd's `RELOADING=1` and `READY=1`.
    async fn reload_source(
        &mut self,
        src: Option<&ConfigSource>,
        why: &str,
    ) -> Result<ReloadSummary, String> {
        let Some(src) = src else {
            let e = "no configuration file to reload (run with --config or --keepalived-conf)";
            log::warn!("{why}: {e}");
            return Err(e.into());
        };
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(t) => sd_notify(&[sd_notify::NotifyState::Reloading, t]),
            Err(_) => sd_notify(&[sd_notify::NotifyState::Reloading]),
        }
        let r = self.reload_from(src).await;
        sd_notify(&[sd_notify::NotifyState::Ready]);
        r
    }

    /// Reads `src` again and applies it ([`Edge::reload`]); the outcome is logged (one line
    /// on an error: the old configuration keeps running).
    async fn reload_from(&mut self, src: &ConfigSource) -> Result<ReloadSummary, String> {
        let r = match src.load() {
            Ok(cfg) => self.reload(cfg).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            log::error!("reload failed, the running configuration is kept: {e}");
        }
        r
    }

    /// Applies a new configuration without a flap ([`vrrp_core::Core::reload`]): the fast path
    /// of new instances and the new VIPs go in before the core's commands are carried out, what
    /// removed instances and dropped VIPs left in it after.
    pub async fn reload(&mut self, new: AgentConfig) -> Result<ReloadSummary, String> {
        let mut envs = Vec::new();
        for p in &self.ports {
            let addrs = netlink::addresses(&p.nl, p.ifindex)
                .await
                .map_err(|e| format!("reading the addresses of {}: {e:#}", p.iface))?;
            // The core places instances by name and addresses; the MAC is not used again.
            let mac = crate::rtnl::iface_facts(&p.iface)
                .and_then(|f| f.mac())
                .map(MacAddr)
                .unwrap_or(MacAddr([0; 6]));
            envs.push(IfaceEnv {
                name: p.iface.clone(),
                mac,
                addrs,
            });
        }
        let plan = self.core.reload(Model::from(&new), envs, now())?;
        let snap = self.core.snapshot();
        let info_of = |id: InstanceId| {
            snap.instances
                .iter()
                .find(|i| i.id == id)
                .map(|i| InstInfo {
                    id: i.id,
                    name: i.name.clone(),
                    family: i.family.tag(),
                    vrid: i.vrid,
                    vips: i.vips.clone(),
                    stale_after: i.failsafe_bound,
                    owner: i.priority == 255,
                })
        };
        // Before: the maps of new instances, new VIPs in the VIP map.
        for id in &plan.added {
            let Some(inf) = info_of(*id) else { continue };
            let f = self.core.iface_of(*id).map_or(0, |f| f.0);
            let p = &mut self.ports[f];
            let r =
                p.fp.set_vrid_flags(inf.family, inf.vrid, VRID_ELECTION)
                    .and_then(|()| {
                        p.fp.set_router(inf.family, inf.vrid, false, false, inf.stale_after)
                    })
                    .and_then(|()| {
                        inf.vips
                            .iter()
                            .try_for_each(|v| p.fp.add_vip(v.addr, inf.vrid))
                    });
            if let Err(e) = r {
                log::warn!("instance {}: setting up the fast path: {e:#}", inf.name);
            }
            let mac = vrrp_common::vmac(inf.family, inf.vrid);
            if let Err(e) = netlink::uc_filter_add(&p.nl, p.ifindex, mac).await {
                log::warn!("instance {} on {}: {e:#}", inf.name, p.iface);
            }
            p.info.push(inf);
        }
        for id in &plan.changed {
            let Some(new_inf) = info_of(*id) else {
                continue;
            };
            let f = self.core.iface_of(*id).map_or(0, |f| f.0);
            let p = &mut self.ports[f];
            for (_, v) in plan.vips_added.iter().filter(|(i, _)| i == id) {
                if let Err(e) = p.fp.add_vip(v.addr, new_inf.vrid) {
                    log::warn!("instance {}: fast-path VIP {v}: {e:#}", new_inf.name);
                }
            }
            if let Some(inf) = p.info.iter_mut().find(|i| i.id == *id) {
                *inf = new_inf;
            }
        }
        // The VIP guard watches the new VIPs before they are claimed.
        set_addr_watch(&self.addr_watch, &self.ports);
        self.exec().await;
        // After: what removed instances and dropped VIPs left in the fast path.
        for (id, v) in &plan.vips_removed {
            let f = self.core.iface_of(*id).map_or(0, |f| f.0);
            if let Err(e) = self.ports[f].fp.remove_vip(v.addr) {
                log::warn!("fast-path VIP {v}: {e:#}");
            }
        }
        for id in &plan.removed {
            let f = self.core.iface_of(*id).map_or(0, |f| f.0);
            let p = &mut self.ports[f];
            let Some(k) = p.info.iter().position(|i| i.id == *id) else {
                continue;
            };
            let inf = p.info.remove(k);
            let r =
                p.fp.set_router(inf.family, inf.vrid, false, false, Duration::ZERO)
                    .and_then(|()| inf.vips.iter().try_for_each(|v| p.fp.remove_vip(v.addr)))
                    .and_then(|()| p.fp.set_vrid(inf.family, inf.vrid, false));
            if let Err(e) = r {
                log::warn!("instance {}: clearing the fast-path maps: {e:#}", inf.name);
            }
            let mac = vrrp_common::vmac(inf.family, inf.vrid);
            if let Err(e) = netlink::uc_filter_del(&p.nl, p.ifindex, mac).await {
                log::warn!("instance {} on {}: {e:#}", inf.name, p.iface);
            }
        }
        set_addr_watch(&self.addr_watch, &self.ports);
        let name = |id: &InstanceId| {
            self.core
                .spec(*id)
                .map(|s| s.name.clone())
                .unwrap_or_default()
        };
        Ok(ReloadSummary {
            added: plan.added.iter().map(name).collect(),
            removed: plan.removed.iter().map(name).collect(),
            changed: plan.changed.iter().map(name).collect(),
            unchanged: plan.unchanged.iter().map(name).collect(),
        })
    }
}

#[cfg(test)]
mod reload_tests {
    use super::*;

    #[test]
    fn summary_reads_like_the_log_line() {
        let s = ReloadSummary {
            added: vec![],
            removed: vec!["vr2".into()],
            changed: vec!["vr1".into()],
            unchanged: vec!["vr3".into(), "vr4".into()],
        };
        assert_eq!(
            s.to_string(),
            "added -; removed vr2; changed vr1; unchanged vr3,vr4"
        );
    }

    /// Run by `sd_notify_sends_each_state` in a child process with `NOTIFY_SOCKET` set (the
    /// environment is the process's: no other test sees it).
    #[test]
    #[ignore = "run in a child process by sd_notify_sends_each_state"]
    fn sd_notify_child() {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return;
        }
        sd_notify(&[sd_notify::NotifyState::Ready]);
        sd_notify(&[
            sd_notify::NotifyState::Reloading,
            sd_notify::NotifyState::monotonic_usec_now().unwrap(),
        ]);
        sd_notify(&[sd_notify::NotifyState::Stopping]);
    }

    #[test]
    fn sd_notify_sends_each_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let before = crate::clock::monotonic_ns() / 1000;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "supervisor::reload_tests::sd_notify_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env("NOTIFY_SOCKET", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let after = crate::clock::monotonic_ns() / 1000;
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..3 {
            let n = sock.recv(&mut buf).expect("a notification");
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(got[0], "READY=1\n");
        let lines: Vec<&str> = got[1].lines().collect();
        assert_eq!(lines[0], "RELOADING=1", "{got:?}");
        let usec: u64 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .expect("MONOTONIC_USEC")
            .parse()
            .unwrap();
        assert!(before <= usec && usec <= after, "{before} {usec} {after}");
        assert_eq!(got[2], "STOPPING=1\n");
    }
}
