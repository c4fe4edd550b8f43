//! Shared by `core_driver.rs` and `hostile_rx.rs`: adverts for the sans-IO core as the edge
//! hands them over ([`Received`]), and [`Sim`], a core on one interface `eth0` with the calls the
//! tests make: each feeds one event and drains what the core says, commands returned and
//! notifications kept for [`Sim::notes`].
#![allow(dead_code)]

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use vrrp_core::{
    config::InstanceSpec,
    fsm::Instant,
    node::{InstanceSnapshot, RxStats},
    wire::{self, AdvertFrame, Auth, ChecksumOpts, MacAddr, RxFrame, VrrpRepr},
    Command, Core, Event, IfaceEnv, IfaceId, InstanceId, Notification, Received, Report,
};

pub const MS: u64 = 1_000_000;

/// 10.0.0.`d`.
pub fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
}

/// A VRRPv3 advert without authentication.
pub fn advert(vrid: u8, priority: u8, interval_cs: u16, addrs: &[IpAddr]) -> VrrpRepr {
    VrrpRepr {
        version: wire::Version::V3,
        vrid,
        priority,
        max_advert_int: interval_cs,
        auth: Auth::None,
        addrs: addrs.to_vec(),
    }
}

/// What the edge makes of `frame` received at `t_ns`: its Ethernet source, IP addresses and
/// hop limit, and the VRRP message.
pub fn event_of(frame: &AdvertFrame, t_ns: u64) -> Received {
    let bytes = frame.to_bytes(ChecksumOpts::default()).unwrap();
    let rx = RxFrame::parse(&bytes).unwrap();
    Received {
        rx_time: Instant::from_nanos(t_ns),
        src_mac: rx.eth.src,
        src_ip: rx.src_ip,
        dst_ip: rx.dst_ip,
        hop_limit: rx.hop_limit,
        vlan: None,
        payload: rx.payload.to_vec(),
    }
}

/// An advert carrying `repr` from `src` to the VRRP group of its family (from the virtual
/// router MAC), received at `t_ns`.
pub fn event(repr: VrrpRepr, src: IpAddr, t_ns: u64) -> Received {
    event_of(&AdvertFrame::multicast(repr, src), t_ns)
}

/// The same to `dst` (the checksum is over `src` and `dst`).
pub fn event_to(repr: VrrpRepr, src: IpAddr, dst: IpAddr, t_ns: u64) -> Received {
    let mut f = AdvertFrame::multicast(repr, src);
    f.ip.dst = dst;
    event_of(&f, t_ns)
}

/// Hands `ev` to the core when it arrives (handled at its receive time).
pub fn rx(d: &mut Sim, ev: &Received) -> Vec<Command> {
    d.on_event(ev, ev.rx_time)
}

/// A core on one interface `eth0` (MAC 02:00:00:00:00:01) with the given addresses.
pub struct Sim {
    pub core: Core,
    /// The notifications drained so far, in order ([`Sim::notes`] adds the queued ones).
    pub seen: Vec<Notification>,
}

pub const ETH0: IfaceId = IfaceId(0);

impl Sim {
    pub fn new(specs: Vec<InstanceSpec>, addrs: &[IpAddr]) -> Sim {
        Sim::try_new(specs, addrs).expect("core")
    }

    pub fn try_new(specs: Vec<InstanceSpec>, addrs: &[IpAddr]) -> Result<Sim, String> {
        let env = IfaceEnv {
            name: "eth0".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            addrs: addrs.to_vec(),
        };
        Ok(Sim {
            core: Core::new(specs, vec![env])?,
            seen: Vec::new(),
        })
    }

    /// Every notification so far, in order (queued ones included).
    pub fn notes(&self) -> Vec<Notification> {
        let queued = self.core.queued().filter_map(Command::notification);
        self.seen.iter().chain(queued).cloned().collect()
    }

    /// Drains the core: the commands (notifications are kept for [`Sim::notes`]).
    pub fn drain(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        while let Some(c) = self.core.poll_command() {
            match c {
                Command::Notify(n) => self.seen.push(n),
                c => out.push(c),
            }
        }
        out
    }

    /// Feeds `ev` at `now` and drains the core.
    pub fn step(&mut self, ev: Event, now: Instant) -> Vec<Command> {
        self.drain();
        self.core.handle(ev, now);
        self.drain()
    }

    /// Feeds `ev` at `now` and leaves the commands queued in the core (for [`Sim::execute`]);
    /// returns a copy of them (notifications left out).
    pub fn queue(&mut self, ev: Event, now: Instant) -> Vec<Command> {
        self.drain();
        self.core.handle(ev, now);
        self.queued()
    }

    /// Carries out the queued commands as the edge does: in order, reporting what `outcome`
    /// says each command did (`None`: nothing to report, e.g. a frame) before polling the next
    /// one. Returns the commands carried out, in order (notifications are kept for [`Sim::notes`]).
    pub fn execute(
        &mut self,
        now: Instant,
        mut outcome: impl FnMut(&Command) -> Option<Report>,
    ) -> Vec<Command> {
        let mut done = Vec::new();
        while let Some(c) = self.core.poll_command() {
            let c = match c {
                Command::Notify(n) => {
                    self.seen.push(n);
                    continue;
                }
                c => c,
            };
            let report = outcome(&c);
            let instance = c.instance().unwrap();
            done.push(c);
            if let Some(report) = report {
                self.core.handle(Event::Report { instance, report }, now);
            }
        }
        done
    }

    pub fn startup(&mut self, now: Instant) -> Vec<Command> {
        self.queue(Event::Startup, now)
    }

    pub fn on_timers(&mut self, now: Instant) -> Vec<Command> {
        self.queue(Event::Timer, now)
    }

    /// A timer expired at `now`: first the adverts that were waiting (with their receive
    /// times), then the timers.
    pub fn expire(
        &mut self,
        now: Instant,
        pending: impl IntoIterator<Item = Received>,
    ) -> Vec<Command> {
        self.drain();
        for rx in pending {
            self.core.handle(Event::Advert { iface: ETH0, rx }, now);
        }
        self.core.handle(Event::Timer, now);
        self.queued()
    }

    /// A copy of the queued commands (notifications left out).
    fn queued(&self) -> Vec<Command> {
        self.core
            .queued()
            .filter(|c| c.notification().is_none())
            .cloned()
            .collect()
    }

    pub fn on_event(&mut self, rx: &Received, now: Instant) -> Vec<Command> {
        self.queue(
            Event::Advert {
                iface: ETH0,
                rx: rx.clone(),
            },
            now,
        )
    }

    pub fn link(&mut self, up: bool, now: Instant) -> Vec<Command> {
        self.queue(Event::Link { iface: ETH0, up }, now)
    }

    pub fn shutdown(&mut self, now: Instant) -> Vec<Command> {
        self.queue(Event::Shutdown, now)
    }

    pub fn end_handovers(&mut self) -> Vec<Command> {
        self.queue(Event::EndHandovers, Instant::ZERO)
    }

    pub fn address_changed(&mut self, addr: IpAddr, present: bool) -> Vec<Command> {
        self.queue(
            Event::AddressChanged {
                iface: ETH0,
                addr,
                present,
            },
            Instant::ZERO,
        )
    }

    pub fn addresses_now(&mut self, addrs: &[IpAddr]) -> Vec<Command> {
        self.queue(
            Event::AddressesNow {
                iface: ETH0,
                addrs: addrs.to_vec(),
            },
            Instant::ZERO,
        )
    }

    pub fn advert_sent(&mut self, instance: usize, at: Instant) {
        let out = self.step(
            Event::AdvertSent {
                instance: InstanceId(instance),
                at,
            },
            at,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    pub fn next_wakeup(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    pub fn handing_over(&self) -> bool {
        self.core.handing_over()
    }

    pub fn heartbeat_period(&self) -> Duration {
        self.core.heartbeat_period()
    }

    /// The instances as a status page sees them.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        self.core.snapshot().instances
    }

    /// Adverts of `eth0` that matched no instance.
    pub fn unmatched(&self) -> RxStats {
        self.core.snapshot().ifaces[0].unmatched.clone()
    }
}
