//! Receive rules against a hostile or misconfigured LAN (issue 7 item 6), through the sans-IO
//! core on a simulated clock: adverts from our own addresses, from addresses no router sends
//! from, to a unicast address without configured peers, to another multicast group, and IPv6
//! adverts from a non-link-local source are dropped and counted (one `RxError` each) and move
//! no state; both families alike. An address-list mismatch is accepted, counted and logged at
//! WARN naming the peer; a new master is logged at INFO with its address, priority and the
//! previous master; both lines (notifications, rendered by the agent's `notify_log`) are
//! rate-limited per peer on the core's clock.
use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use vrrp_core::{
    config::{InstanceInput, InstanceSpec},
    fsm::{Instant, State},
    node::{LogLimit, PreviousMaster, LOG_EVERY, LOG_PEERS},
    wire::{MacAddr, VrrpRepr},
    Command, Notification, Received,
};

mod driver_support;
use driver_support::{rx, v4, Sim, MS};

type Driver = Sim;

/// The lines about other routers' adverts the edge would log at WARN (address list differs) or
/// INFO (new master) for instance `name`, as data.
fn about_peers(d: &Sim, name: &str) -> Vec<Notification> {
    d.notes()
        .into_iter()
        .filter(|n| match n {
            Notification::AddrListDiffers { name: n, .. }
            | Notification::NewMaster { name: n, .. } => n == name,
            _ => false,
        })
        .collect()
}

// ------------------------------------------------------------------ helpers

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn spec(name: &str, vrid: i64, priority: i64, vips: &[&str], peers: &[&str]) -> InstanceSpec {
    InstanceInput {
        name: Some(name.into()),
        interface: Some("eth0".into()),
        vrid: Some(vrid),
        priority: Some(priority),
        vips: vips.iter().map(|s| s.to_string()).collect(),
        unicast_peers: peers.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
    .build(None)
    .unwrap()
}

/// A started core with one instance on an interface whose addresses are `addrs` (the first is
/// the advert source).
fn started_with(s: InstanceSpec, addrs: &[IpAddr]) -> Driver {
    let mut d = Sim::new(vec![s], addrs);
    d.startup(Instant::ZERO);
    d
}

/// A started core with one instance whose advert source is `primary`, the interface's only
/// address.
fn started(s: InstanceSpec, primary: IpAddr) -> Driver {
    started_with(s, &[primary])
}

/// The same, Master (its Master_Down_Timer ran out); returns when.
fn master(s: InstanceSpec, primary: IpAddr) -> (Driver, Instant) {
    master_with(s, &[primary])
}

/// The same on an interface with `addrs`.
fn master_with(s: InstanceSpec, addrs: &[IpAddr]) -> (Driver, Instant) {
    let mut d = started_with(s, addrs);
    let t = d.next_wakeup().unwrap();
    d.on_timers(t);
    assert_eq!(d.instances()[0].state, State::Master);
    (d, t)
}

/// Every advert here has a 1 s interval.
fn advert(vrid: u8, priority: u8, addrs: &[IpAddr]) -> VrrpRepr {
    driver_support::advert(vrid, priority, 100, addrs)
}

/// The adverts here come from a host's MAC, not from a virtual router MAC (only logs show it).
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x66];

/// A ring-buffer event: `repr` from `src` to `dst` (checksum over that pair), received at
/// `t_ns`.
fn event_to(repr: VrrpRepr, src: IpAddr, dst: IpAddr, t_ns: u64) -> Received {
    Received {
        src_mac: MacAddr(HOST_MAC),
        ..driver_support::event_to(repr, src, dst, t_ns)
    }
}

/// To the VRRP group of the family.
fn event(repr: VrrpRepr, src: IpAddr, t_ns: u64) -> Received {
    Received {
        src_mac: MacAddr(HOST_MAC),
        ..driver_support::event(repr, src, t_ns)
    }
}

/// Feeds every event to a Master at priority 100 and checks that it stays Master, claims and
/// releases nothing and that the drops are counted under `counter`.
#[track_caller]
fn master_ignores(d: &mut Driver, events: &[Received], counter: &str) {
    let before = d.instances()[0].rx.get(counter);
    for ev in events {
        let cmds = rx(d, ev);
        assert!(
            cmds.iter()
                .all(|c| !matches!(c, Command::Release { .. } | Command::Claim { .. })),
            "{cmds:?}"
        );
        assert_eq!(d.instances()[0].state, State::Master);
    }
    assert_eq!(
        d.instances()[0].rx.get(counter) - before,
        events.len() as u64,
        "{}",
        d.instances()[0].rx.summary()
    );
}

// ------------------------------------------------------------------ drops

#[test]
fn adverts_from_our_own_addresses_are_dropped_but_not_from_a_vip() {
    // The interface's addresses at startup, a leftover VIP among them.
    let (mut d, t) = master_with(
        spec("own", 7, 100, &["10.0.0.100/24"], &[]),
        &[v4(1), v4(5), v4(100), ip("fe80::1")],
    );
    let t = t.as_nanos();
    let spoofs: Vec<_> = [v4(1), v4(5)]
        .iter()
        .enumerate()
        .map(|(k, src)| event(advert(7, 254, &[v4(100)]), *src, t + k as u64 * MS))
        .collect();
    master_ignores(&mut d, &spoofs, "own_address");
    // The address owner sends from the VIP: a real advert, and it wins.
    rx(
        &mut d,
        &event(advert(7, 255, &[v4(100)]), v4(100), t + 10 * MS),
    );
    assert_eq!(d.instances()[0].state, State::Backup);
    assert_eq!(d.instances()[0].master.map(|m| m.0), Some(v4(100)));
}

#[test]
fn own_advert_source_is_ours_without_the_interface_list() {
    // The core knows the instance's own advert source.
    let (mut d, t) = master(spec("own2", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    let ev = event(advert(7, 254, &[v4(100)]), v4(1), t.as_nanos() + MS);
    master_ignores(&mut d, &[ev], "own_address");
    let (mut d6, t) = master(spec("own6", 7, 100, &["fe80::100/64"], &[]), ip("fe80::1"));
    let ev = event(
        advert(7, 254, &[ip("fe80::100")]),
        ip("fe80::1"),
        t.as_nanos() + MS,
    );
    master_ignores(&mut d6, &[ev], "own_address");
}

#[test]
fn adverts_from_addresses_no_router_sends_from_are_dropped() {
    let (mut d, t) = master(spec("bad4", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    let t = t.as_nanos();
    let srcs = [
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
        "224.0.0.5",
        "127.0.0.1",
    ];
    let evs: Vec<_> = srcs
        .iter()
        .map(|s| event(advert(7, 254, &[v4(100)]), ip(s), t + MS))
        .collect();
    master_ignores(&mut d, &evs, "invalid_source");

    let vip6 = ip("fe80::100");
    let (mut d, t) = master(spec("bad6", 7, 100, &["fe80::100/64"], &[]), ip("fe80::1"));
    let evs: Vec<_> = ["::", "::1", "ff02::1"]
        .iter()
        .map(|s| event(advert(7, 254, &[vip6]), ip(s), t.as_nanos() + MS))
        .collect();
    master_ignores(&mut d, &evs, "invalid_source");
}

#[test]
fn unicast_destination_needs_configured_peers_in_both_families() {
    // No peers: an advert to our own unicast address is dropped, IPv4 and IPv6 alike.
    let (mut d, t) = master(spec("uc4", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    let ev = event_to(advert(7, 254, &[v4(100)]), v4(2), v4(1), t.as_nanos() + MS);
    master_ignores(&mut d, &[ev], "unicast_without_peers");
    let (mut d, t) = master(spec("uc6", 7, 100, &["fe80::100/64"], &[]), ip("fe80::1"));
    let ev = event_to(
        advert(7, 254, &[ip("fe80::100")]),
        ip("fe80::2"),
        ip("fe80::1"),
        t.as_nanos() + MS,
    );
    master_ignores(&mut d, &[ev], "unicast_without_peers");

    // With peers: accepted from a peer (it wins), dropped from anyone else. A peer may send
    // from a global IPv6 address (keepalived's unicast mode), to our global address; our own
    // adverts still leave from the link-local address.
    for (name, src, me, peer, other, vip) in [
        (
            "ucp4",
            "10.0.0.1",
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "10.0.0.100",
        ),
        (
            "ucp6",
            "fe80::1",
            "2001:db8::1",
            "2001:db8::2",
            "2001:db8::3",
            "fe80::100",
        ),
    ] {
        let (mut d, t) = master(spec(name, 7, 100, &[vip], &[peer]), ip(src));
        let t = t.as_nanos();
        let ev = event_to(advert(7, 254, &[ip(vip)]), ip(other), ip(me), t + MS);
        master_ignores(&mut d, &[ev], "unknown_peer");
        rx(
            &mut d,
            &event_to(advert(7, 254, &[ip(vip)]), ip(peer), ip(me), t + 2 * MS),
        );
        assert_eq!(d.instances()[0].state, State::Backup, "{name}");
        assert_eq!(d.instances()[0].master.map(|m| m.0), Some(ip(peer)));
    }
}

#[test]
fn other_multicast_groups_and_broadcast_are_dropped() {
    let (mut d, t) = master(spec("grp4", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    let evs: Vec<_> = ["224.0.0.5", "239.1.1.1", "255.255.255.255"]
        .iter()
        .map(|dst| {
            event_to(
                advert(7, 254, &[v4(100)]),
                v4(2),
                ip(dst),
                t.as_nanos() + MS,
            )
        })
        .collect();
    master_ignores(&mut d, &evs, "not_vrrp_group");
    let (mut d, t) = master(spec("grp6", 7, 100, &["fe80::100/64"], &[]), ip("fe80::1"));
    let ev = event_to(
        advert(7, 254, &[ip("fe80::100")]),
        ip("fe80::2"),
        ip("ff02::1"),
        t.as_nanos() + MS,
    );
    master_ignores(&mut d, &[ev], "not_vrrp_group");
}

#[test]
fn ipv6_adverts_from_a_non_link_local_source_are_dropped_without_peers() {
    let vip = ip("fe80::100");
    let (mut d, t) = master(spec("gl6", 7, 100, &["fe80::100/64"], &[]), ip("fe80::1"));
    let ev = event(advert(7, 254, &[vip]), ip("2001:db8::2"), t.as_nanos() + MS);
    master_ignores(&mut d, &[ev], "ipv6_source_not_link_local");
    // A link-local source is a real advert.
    rx(
        &mut d,
        &event(advert(7, 254, &[vip]), ip("fe80::2"), t.as_nanos() + 2 * MS),
    );
    assert_eq!(d.instances()[0].state, State::Backup);
}

// ------------------------------------------------------------------ logs

#[test]
fn address_list_mismatch_is_counted_and_logged_per_peer_rate_limited() {
    let mut d = started(spec("mism", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    let theirs = [v4(100), v4(101)];
    // One advert per second from 10.0.0.2 for 150 s, and one from 10.0.0.3 at 30 s.
    for s in 1..=150u64 {
        rx(
            &mut d,
            &event(advert(7, 200, &theirs), v4(2), s * 1000 * MS),
        );
        if s == 30 {
            rx(
                &mut d,
                &event(advert(7, 200, &theirs), v4(3), s * 1000 * MS),
            );
        }
    }
    let i = &d.instances()[0];
    assert_eq!(i.rx.accepted, 151, "accepted (RFC 9568 §7.1)");
    assert_eq!(i.rx.addr_list_differs, 151);
    assert!(i.rx.summary().contains("addr_list_differs=151"));
    // The WARN lines: address list differs.
    let warns: Vec<_> = about_peers(&d, "mism")
        .into_iter()
        .filter(|n| matches!(n, Notification::AddrListDiffers { .. }))
        .collect();
    let from = |peer: IpAddr| -> Vec<(u8, Vec<IpAddr>, Vec<IpAddr>, u64)> {
        warns
            .iter()
            .filter_map(|n| match n {
                Notification::AddrListDiffers {
                    src,
                    priority,
                    theirs,
                    ours,
                    left_out,
                    ..
                } if *src == peer => Some((*priority, theirs.clone(), ours.clone(), *left_out)),
                _ => None,
            })
            .collect()
    };
    let (from2, from3) = (from(v4(2)), from(v4(3)));
    // 10.0.0.2: at 1 s, 61 s (59 left out), 121 s (59 left out).
    assert_eq!(from2.len(), 3, "{warns:#?}");
    assert_eq!(from2[0], (200, theirs.to_vec(), vec![v4(100)], 0));
    assert_eq!(from2[1].3, 59);
    assert_eq!(from2[2].3, 59);
    assert_eq!(from3.len(), 1, "{warns:#?}");
    assert_eq!(warns.len(), 4, "{warns:#?}");
}

#[test]
fn a_new_master_is_logged_with_address_priority_and_previous_rate_limited() {
    let mut d = started(spec("newm", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    let vip = [v4(100)];
    rx(&mut d, &event(advert(7, 200, &vip), v4(2), 100 * MS));
    rx(&mut d, &event(advert(7, 200, &vip), v4(2), 200 * MS));
    // A rogue (or misconfigured) router and the real master take turns every 100 ms for 10 s.
    let mut t = 300 * MS;
    for k in 0..100u64 {
        let (src, prio) = if k % 2 == 0 {
            (v4(66), 250)
        } else {
            (v4(2), 200)
        };
        rx(&mut d, &event(advert(7, prio, &vip), src, t));
        t += 100 * MS;
    }
    assert_eq!(d.instances()[0].state, State::Backup);
    let new_masters = |d: &Sim, name: &str| -> Vec<(IpAddr, u8, PreviousMaster, u64)> {
        about_peers(d, name)
            .into_iter()
            .filter_map(|n| match n {
                Notification::NewMaster {
                    master,
                    priority,
                    previous,
                    left_out,
                    ..
                } => Some((master, priority, previous, left_out)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        new_masters(&d, "newm"),
        [
            (v4(2), 200, PreviousMaster::FirstSeen, 0),
            (v4(66), 250, PreviousMaster::Addr(v4(2)), 0),
        ],
        "one line per peer within a minute"
    );
    // A minute later (the master fell silent meanwhile, so this router took over) the next
    // change is logged again, with what was left out.
    t += LOG_EVERY.as_nanos() as u64;
    d.on_timers(Instant::from_nanos(t - 1000 * MS));
    assert_eq!(d.instances()[0].state, State::Master);
    rx(&mut d, &event(advert(7, 250, &vip), v4(66), t));
    assert_eq!(
        new_masters(&d, "newm").pop().unwrap(),
        (v4(66), 250, PreviousMaster::ThisRouter, 49)
    );
    // Becoming Backup from Master names this router as the previous master.
    let (mut m, t0) = master(spec("newm2", 7, 100, &["10.0.0.100/24"], &[]), v4(1));
    rx(
        &mut m,
        &event(advert(7, 200, &vip), v4(2), t0.as_nanos() + MS),
    );
    assert_eq!(
        new_masters(&m, "newm2"),
        [(v4(2), 200, PreviousMaster::ThisRouter, 0)]
    );
}

#[test]
fn log_limit_bounds_lines_per_peer_and_in_total() {
    let mut l = LogLimit::default();
    let t0 = Instant::from_nanos(5 * MS);
    assert_eq!(l.admit(v4(2), t0), Some(0));
    assert_eq!(l.admit(v4(2), t0 + Duration::from_secs(1)), None);
    assert_eq!(
        l.admit(v4(2), t0 + LOG_EVERY - Duration::from_nanos(1)),
        None
    );
    assert_eq!(l.admit(v4(2), t0 + LOG_EVERY), Some(2));
    // A host spraying spoofed sources: 10 000 distinct peers within a minute get at most
    // LOG_PEERS + 1 lines.
    let mut l = LogLimit::default();
    let lines = (0..10_000u32)
        .filter(|k| {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k));
            l.admit(a, t0 + Duration::from_millis(u64::from(*k)))
                .is_some()
        })
        .count();
    assert_eq!(lines, LOG_PEERS + 1);
    // A minute on, the peers whose lines were all logged make room again.
    let later = t0 + LOG_EVERY + Duration::from_secs(20);
    assert_eq!(l.admit(v4(250), later), Some(0));
}
