//! The sans-IO driver on a simulated clock: ring-buffer events → state machine inputs (with
//! their kernel receive times), actions → commands (frames, claim/release), the drain-before-
//! timer ordering, the GARP/NA schedule from the garp_master_* settings, unicast peers, v2
//! interval conversion, per-instance receive error counts and the heartbeat period.
use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use vrrp_agent::{
    config::{InstanceInput, InstanceSpec},
    driver::{event_payload, Command, Driver, RxStats},
    fsm::{Instant, State},
    wire::{
        self, AdvertFrame, ArpFrame, Auth, ChecksumOpts, MacAddr, NdpFrame, RxFrame, VrrpPacket,
        VrrpRepr,
    },
};
use vrrp_common::{AdvertEvent, FAMILY_IPV4, FAMILY_IPV6};

const MS: u64 = 1_000_000;

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
}

fn input(vrid: i64, priority: i64, vips: &[&str]) -> InstanceInput {
    InstanceInput {
        interface: Some("eth0".into()),
        vrid: Some(vrid),
        priority: Some(priority),
        vips: vips.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn spec(i: InstanceInput) -> InstanceSpec {
    i.build(None).expect("valid instance")
}

fn driver(specs: Vec<InstanceSpec>, primaries: &[IpAddr]) -> Driver {
    Driver::new("eth0", specs, primaries).expect("driver")
}

/// A ring-buffer event carrying `repr` from `src` (to the VRRP group), received at `t_ns`.
fn event(repr: VrrpRepr, src: IpAddr, t_ns: u64) -> AdvertEvent {
    let frame = AdvertFrame::multicast(repr, src)
        .to_bytes(ChecksumOpts::default())
        .unwrap();
    let rx = RxFrame::parse(&frame).unwrap();
    let mut ev: AdvertEvent = bytemuck::Zeroable::zeroed();
    ev.rx_time_ns = t_ns;
    ev.ifindex = 2;
    ev.payload_len = rx.payload.len() as u16;
    ev.captured_len = rx.payload.len() as u16;
    ev.src_mac = rx.eth.src.0;
    ev.ttl = rx.hop_limit;
    match (rx.src_ip, rx.dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ev.family = FAMILY_IPV4;
            ev.src_ip[..4].copy_from_slice(&s.octets());
            ev.dst_ip[..4].copy_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ev.family = FAMILY_IPV6;
            ev.src_ip = s.octets();
            ev.dst_ip = d.octets();
        }
        _ => unreachable!(),
    }
    ev.payload[..rx.payload.len()].copy_from_slice(rx.payload);
    ev
}

fn advert(vrid: u8, priority: u8, interval_cs: u16, addrs: &[IpAddr]) -> VrrpRepr {
    VrrpRepr {
        version: wire::Version::V3,
        vrid,
        priority,
        max_advert_int: interval_cs,
        auth: Auth::None,
        addrs: addrs.to_vec(),
    }
}

/// The VRRP message inside a sent advert frame.
fn sent_advert(cmd: &Command) -> VrrpRepr {
    let Command::SendFrame { frame, .. } = cmd else {
        panic!("not a frame: {cmd:?}")
    };
    AdvertFrame::parse(frame, ChecksumOpts::default())
        .unwrap_or_else(|e| panic!("not an advert ({e}): {cmd:?}"))
        .vrrp
}

fn is_garp(cmd: &Command) -> bool {
    matches!(cmd, Command::SendFrame { frame, .. } if ArpFrame::parse(frame).is_ok() || NdpFrame::parse(frame).is_ok())
}

fn claims(cmds: &[Command]) -> usize {
    cmds.iter()
        .filter(|c| matches!(c, Command::Claim { .. }))
        .count()
}

/// Runs the driver's own timers from `from` to `until` (as the executor would), collecting
/// (time, command) pairs.
fn run_until(d: &mut Driver, until: Instant) -> Vec<(Instant, Command)> {
    let mut out = Vec::new();
    while let Some(t) = d.next_wakeup() {
        if t > until {
            break;
        }
        for c in d.on_timers(t) {
            out.push((t, c));
        }
    }
    out
}

#[test]
fn startup_non_owner_goes_backup_and_releases_leftovers() {
    let mut d = driver(vec![spec(input(7, 100, &["10.0.0.100/24"]))], &[v4(1)]);
    let cmds = d.startup(Instant::from_nanos(1000 * MS));
    assert_eq!(cmds, vec![Command::Release { instance: 0 }]);
    assert_eq!(d.instances()[0].vr.state(), State::Backup);
    // Master_Down_Interval at 1 s, priority 100: 3 s + 609.375 ms.
    assert_eq!(
        d.next_wakeup(),
        Some(Instant::from_nanos(1000 * MS + 3_609_375_000))
    );
}

#[test]
fn owner_claims_at_startup_claim_first_then_advert_then_garp() {
    let mut d = driver(vec![spec(input(7, 255, &["10.0.0.1/24"]))], &[v4(1)]);
    let cmds = d.startup(Instant::ZERO);
    assert_eq!(
        cmds[0],
        Command::Claim {
            instance: 0,
            accept: true
        }
    );
    assert_eq!(sent_advert(&cmds[1]).priority, 255);
    assert_eq!(cmds[2..].len(), 5, "garp_master_repeat default 5");
    assert!(cmds[2..].iter().all(is_garp));
}

#[test]
fn master_down_timer_makes_master_claim_before_advert_then_garps() {
    let (mut d, at) = backup();
    let cmds = d.expire(at, []);
    assert_eq!(d.instances()[0].vr.state(), State::Master);
    // The VIPs are ours before the advert moves the switch's VMAC entry to us.
    assert_eq!(
        cmds[0],
        Command::Claim {
            instance: 0,
            accept: true
        },
        "accept_mode defaults to true"
    );
    let a = sent_advert(&cmds[1]);
    assert_eq!((a.vrid, a.priority, a.max_advert_int), (7, 100, 100));
    assert_eq!(a.addrs, vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))]);
    // Source MAC = VMAC, TTL 255, CS6.
    let Command::SendFrame { frame, .. } = &cmds[1] else {
        panic!()
    };
    let f = AdvertFrame::parse(frame, ChecksumOpts::default()).unwrap();
    assert_eq!(f.eth_src, MacAddr([0, 0, 0x5e, 0, 1, 7]));
    assert_eq!((f.hop_limit, f.tos), (255, 0xc0));
    assert_eq!(f.ip.src, v4(1));
    let garps: Vec<_> = cmds[2..]
        .iter()
        .map(|c| match c {
            Command::SendFrame { frame, .. } => ArpFrame::parse(frame).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(garps.len(), 5);
    for g in garps {
        assert_eq!(g.eth_src, MacAddr([0, 0, 0x5e, 0, 1, 7]));
        assert!(g.arp.is_gratuitous());
    }
}

#[test]
fn advert_time_is_the_kernel_receive_time() {
    let (mut d, _) = backup();
    let rx = 500 * MS;
    let cmds = d.on_event(&event(advert(7, 200, 100, &[v4(100)]), v4(2), rx));
    assert!(cmds.is_empty());
    assert_eq!(d.instances()[0].rx.accepted, 1);
    assert_eq!(
        d.next_wakeup(),
        Some(Instant::from_nanos(rx + 3_609_375_000)),
        "Master_Down_Timer restarts at the receive time, not at the time it is read"
    );
}

#[test]
fn drain_before_timer_advert_pending_at_expiry_prevents_takeover() {
    let (mut d, deadline) = backup();
    // The master's advert arrived 1 ms before the deadline but the agent woke 5 ms late.
    let ev = event(
        advert(7, 200, 100, &[v4(100)]),
        v4(2),
        deadline.as_nanos() - MS,
    );
    let cmds = d.expire(deadline + Duration::from_millis(5), [ev]);
    assert_eq!(claims(&cmds), 0, "{cmds:?}");
    assert_eq!(d.instances()[0].vr.state(), State::Backup);

    // The same late wake-up without draining first would have taken over.
    let (mut d2, _) = backup();
    let cmds = d2.on_timers(deadline + Duration::from_millis(5));
    assert_eq!(claims(&cmds), 1);
}

#[test]
fn late_backup_reads_a_master_advert_that_arrived_after_its_deadline_no_takeover() {
    // The master's advert arrived 1 ms after the Master_Down deadline; the backup gets to act
    // only 2 ms after it (it was not scheduled, or its host stalled and the kernel stamped the
    // advert late). It knows the master is alive: taking over only to step down at once would
    // be a false failover (issue 7 item 10).
    let (mut d, deadline) = backup();
    let rx = deadline.as_nanos() + MS;
    let ev = event(advert(7, 200, 100, &[v4(100)]), v4(2), rx);
    let cmds = d.expire(deadline + Duration::from_millis(2), [ev]);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(d.instances()[0].vr.state(), State::Backup);
    assert_eq!(
        d.next_wakeup(),
        Some(Instant::from_nanos(rx + 3_609_375_000)),
        "Master_Down_Timer restarts at the advert's receive time"
    );
    // The same on the ring path (the agent woke for the advert, not for the timer).
    let (mut d, deadline) = backup();
    let cmds = d.on_event(&event(
        advert(7, 200, 100, &[v4(100)]),
        v4(2),
        deadline.as_nanos() + MS,
    ));
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(d.instances()[0].vr.state(), State::Backup);
}

#[test]
fn late_backup_takes_over_when_the_late_advert_does_not_keep_the_master() {
    // A lower-priority master: preempt discards its adverts, so the overdue timer fires.
    let (mut d, deadline) = backup();
    let ev = event(
        advert(7, 50, 100, &[v4(100)]),
        v4(2),
        deadline.as_nanos() + MS,
    );
    let cmds = d.expire(deadline + Duration::from_millis(2), [ev]);
    assert_eq!(claims(&cmds), 1, "{cmds:?}");
    assert_eq!(d.instances()[0].vr.state(), State::Master);
    // Priority 0 (the master is leaving): take over Skew_Time after that advert.
    let (mut d, deadline) = backup();
    let rx = deadline.as_nanos() + MS;
    let cmds = d.expire(
        deadline + Duration::from_millis(2),
        [event(advert(7, 0, 100, &[v4(100)]), v4(2), rx)],
    );
    assert_eq!(claims(&cmds), 0, "{cmds:?}");
    let skew = Instant::from_nanos(rx + 609_375_000);
    assert_eq!(d.next_wakeup(), Some(skew));
    assert_eq!(claims(&d.on_timers(skew)), 1);
}

#[test]
fn late_master_still_sends_its_overdue_advert_first() {
    let (mut d, deadline) = backup();
    d.expire(deadline, []);
    assert_eq!(d.instances()[0].vr.state(), State::Master);
    let due = d.next_wakeup().unwrap();
    // A lower-priority advert received 1 ms after our advert was due: ours goes out first
    // (Adver_Timer), then the answer to the lower-priority one.
    let cmds = d.on_event(&event(
        advert(7, 50, 100, &[v4(100)]),
        v4(2),
        due.as_nanos() + MS,
    ));
    let adverts: Vec<u8> = cmds
        .iter()
        .filter(|c| !is_garp(c))
        .map(|c| sent_advert(c).priority)
        .collect();
    assert!(!adverts.is_empty(), "{cmds:?}");
    assert_eq!(adverts[0], 100);
    assert_eq!(d.instances()[0].vr.state(), State::Master);
}

#[test]
fn garp_schedule_follows_garp_master_settings() {
    let mut i = input(7, 100, &["10.0.0.100/24", "10.0.0.101/24"]);
    i.garp_master_repeat = Some(3);
    i.garp_interval = Some(0.01);
    i.garp_master_delay = Some(1.0);
    i.garp_master_refresh = Some(2.0);
    i.advert_int = Some(10.0); // keep adverts out of the way
    let mut d = driver(vec![spec(i)], &[v4(1)]);
    d.startup(Instant::ZERO);
    let t0 = d.next_wakeup().unwrap();
    let first = d.on_timers(t0);
    assert_eq!(claims(&first), 1);
    // Burst 1 starts at t0: 3 rounds × 2 VIPs, 10 ms apart → one packet now, 5 later.
    assert_eq!(first.iter().filter(|c| is_garp(c)).count(), 1);
    let rest = run_until(&mut d, t0 + Duration::from_millis(5500));
    let garp_times: Vec<u64> = rest
        .iter()
        .filter(|(_, c)| is_garp(c))
        .map(|(t, _)| (*t - t0).as_millis() as u64)
        .collect();
    assert_eq!(
        garp_times,
        [
            10, 20, 30, 40, 50, // rest of burst 1
            1000, 1010, 1020, 1030, 1040, 1050, // garp_master_delay burst
            3000, 3010, 3020, 3030, 3040, 3050, // refresh
            5000, 5010, 5020, 5030, 5040, 5050, // refresh
        ]
    );
    // VIPs alternate within a round.
    let targets: Vec<Ipv4Addr> = rest
        .iter()
        .filter(|(_, c)| is_garp(c))
        .take(3)
        .map(|(_, c)| match c {
            Command::SendFrame { frame, .. } => ArpFrame::parse(frame).unwrap().arp.target_ip,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        targets,
        [
            Ipv4Addr::new(10, 0, 0, 101),
            Ipv4Addr::new(10, 0, 0, 100),
            Ipv4Addr::new(10, 0, 0, 101)
        ]
    );
}

#[test]
fn garp_defaults_burst_now_and_after_five_seconds_no_refresh() {
    let (mut d, t0) = backup();
    assert_eq!(d.on_timers(t0).iter().filter(|c| is_garp(c)).count(), 5);
    let rest = run_until(&mut d, t0 + Duration::from_secs(30));
    let garp_times: Vec<u64> = rest
        .iter()
        .filter(|(_, c)| is_garp(c))
        .map(|(t, _)| (*t - t0).as_millis() as u64)
        .collect();
    assert_eq!(garp_times, [5000; 5]);
}

#[test]
fn release_cancels_the_garp_schedule() {
    let (mut d, t0) = backup();
    d.on_timers(t0);
    let cmds = d.on_event(&event(
        advert(7, 200, 100, &[v4(100)]),
        v4(2),
        t0.as_nanos() + 100 * MS,
    ));
    assert_eq!(cmds, vec![Command::Release { instance: 0 }]);
    // Only the Master_Down_Timer remains, no garp_master_delay burst.
    let rest = run_until(&mut d, t0 + Duration::from_millis(3000));
    assert!(rest.iter().all(|(_, c)| !is_garp(c)), "{rest:?}");
}

#[test]
fn ipv6_instance_sends_unsolicited_na_with_vmac() {
    let mut d = driver(
        vec![spec(input(9, 255, &["fe80::100/64", "2001:db8::100/64"]))],
        &["fe80::1".parse().unwrap()],
    );
    assert_eq!(d.instances()[0].spec.name, "vrid9-v6");
    let cmds = d.startup(Instant::ZERO);
    let a = sent_advert(&cmds[1]);
    assert_eq!(a.addrs.len(), 2);
    let nas: Vec<NdpFrame> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::SendFrame { frame, .. } => NdpFrame::parse(frame).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(nas.len(), 10, "5 per VIP");
    assert!(nas
        .iter()
        .all(|n| n.eth_src == MacAddr([0, 0, 0x5e, 0, 2, 9])));
}

/// One instance (VRID 7, priority 100, VIP 10.0.0.100, 1 s adverts) started at 0 as Backup,
/// with its Master_Down_Timer deadline.
fn backup() -> (Driver, Instant) {
    let mut d = driver(vec![spec(input(7, 100, &["10.0.0.100/24"]))], &[v4(1)]);
    d.startup(Instant::ZERO);
    let deadline = d.next_wakeup().unwrap();
    (d, deadline)
}

/// The same instance as Master, at `t0` (its Master_Down_Timer ran out).
fn master() -> (Driver, Instant) {
    let (mut d, t0) = backup();
    d.on_timers(t0);
    assert_eq!(d.instances()[0].vr.state(), State::Master);
    (d, t0)
}

#[test]
fn shutdown_of_a_master_sends_priority_zero_and_keeps_the_vips_for_the_handover() {
    let (mut d, t0) = master();
    let stop = t0 + Duration::from_millis(10);
    let cmds = d.shutdown(stop);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(sent_advert(&cmds[0]).priority, 0);
    assert!(d.handing_over());
    // Only the handover deadline is left: Master_Down_Interval = 3 s + 156/256 s.
    assert_eq!(
        d.next_wakeup(),
        Some(stop + Duration::from_nanos(3_609_375_000)),
        "no GARP left after shutdown, only the handover deadline"
    );
}

#[test]
fn handover_ends_when_the_new_master_advertises() {
    let (mut d, t0) = master();
    let stop = t0 + Duration::from_millis(10);
    d.shutdown(stop);
    // Another router's priority-0 advert does not end it.
    assert!(d
        .on_event(&event(
            advert(7, 0, 100, &[v4(100)]),
            v4(3),
            stop.as_nanos() + MS
        ))
        .is_empty());
    assert!(d.handing_over());
    // The backup's first advert as master, Skew_Time later.
    let t = stop.as_nanos() + 609 * MS;
    let cmds = d.on_event(&event(advert(7, 100, 100, &[v4(100)]), v4(2), t));
    assert_eq!(cmds, vec![Command::Release { instance: 0 }]);
    assert!(!d.handing_over());
    assert_eq!(d.next_wakeup(), None);
    // And no second release later.
    assert!(d.on_timers(Instant::from_nanos(t + 10_000 * MS)).is_empty());
}

#[test]
fn handover_gives_up_after_master_down_interval_without_a_new_master() {
    let (mut d, t0) = master();
    let stop = t0 + Duration::from_millis(10);
    d.shutdown(stop);
    let deadline = d.next_wakeup().unwrap();
    assert!(d.on_timers(deadline - Duration::from_nanos(1)).is_empty());
    assert_eq!(
        d.on_timers(deadline),
        vec![Command::Release { instance: 0 }]
    );
    assert!(!d.handing_over());
}

#[test]
fn shutdown_of_a_backup_needs_no_handover() {
    let (mut d, _) = backup();
    let cmds = d.shutdown(Instant::from_nanos(5 * MS));
    assert!(!d.handing_over());
    assert!(
        cmds.iter().all(|c| !matches!(c, Command::SendFrame { .. })),
        "{cmds:?}"
    );
}

#[test]
fn end_handovers_releases_what_is_still_held() {
    let (mut d, t0) = master();
    d.shutdown(t0 + Duration::from_millis(10));
    assert_eq!(d.end_handovers(), vec![Command::Release { instance: 0 }]);
    assert!(d.end_handovers().is_empty());
}

#[test]
fn unicast_peers_get_one_ip_packet_each_and_no_multicast() {
    let mut i = input(7, 255, &["10.0.0.1/24"]);
    i.unicast_peers = vec!["10.0.0.2".into(), "10.0.1.3".into()];
    i.garp_master_repeat = Some(1);
    let mut d = driver(vec![spec(i)], &[v4(1)]);
    let cmds = d.startup(Instant::ZERO);
    let ip: Vec<(IpAddr, &Vec<u8>)> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::SendIp { dst, packet, .. } => Some((*dst, packet)),
            _ => None,
        })
        .collect();
    assert_eq!(ip.len(), 2);
    for (dst, pkt) in ip {
        // A whole IPv4 packet: TTL 255, protocol 112, to the peer, valid VRRP.
        assert_eq!(pkt[0] >> 4, 4);
        assert_eq!((pkt[8], pkt[9]), (255, 112));
        assert_eq!(
            &pkt[16..20],
            &match dst {
                IpAddr::V4(a) => a.octets(),
                _ => unreachable!(),
            }
        );
        let vrrp = &pkt[20..];
        let repr = VrrpRepr::parse(
            &VrrpPacket::new_checked(vrrp).unwrap(),
            &wire::IpPair::new(v4(1), dst),
            ChecksumOpts::default(),
        )
        .unwrap();
        assert_eq!(repr.priority, 255);
    }
    // The only frames are the gratuitous ARP(s).
    assert!(cmds
        .iter()
        .filter(|c| matches!(c, Command::SendFrame { .. }))
        .all(is_garp));
}

#[test]
fn v2_interval_is_seconds_on_the_wire_and_password_is_sent() {
    let mut i = input(7, 255, &["10.0.0.1/24"]);
    i.version = Some(2);
    i.advert_int = Some(2.0);
    i.auth_pass = Some("secret".into());
    let s = spec(i);
    assert_eq!(s.advert_int_cs, 200);
    let mut d = driver(vec![s], &[v4(1)]);
    let cmds = d.startup(Instant::ZERO);
    let Command::SendFrame { frame, .. } = &cmds[1] else {
        panic!("{cmds:?}")
    };
    let rx = RxFrame::parse(frame).unwrap();
    let p = VrrpPacket::new_checked(rx.payload).unwrap();
    assert_eq!(p.version(), 2);
    assert_eq!(p.v2_advert_int(), 2, "2 s on the wire");
    assert_eq!(p.v2_auth_type(), 1);
    assert_eq!(&rx.payload[rx.payload.len() - 8..], b"secret\0\0");
    // Master's Adver_Timer is 2 s.
    assert_eq!(d.next_wakeup(), Some(Instant::from_nanos(2_000 * MS)));
}

#[test]
fn v2_backup_accepts_matching_interval_and_counts_mismatch() {
    let mut i = input(7, 100, &["10.0.0.100/24"]);
    i.version = Some(2);
    let mut d = driver(vec![spec(i)], &[v4(1)]);
    d.startup(Instant::ZERO);
    let mut a = advert(7, 200, 100, &[v4(100)]);
    a.version = wire::Version::V2;
    d.on_event(&event(a.clone(), v4(2), MS));
    assert_eq!(d.instances()[0].rx.accepted, 1);
    a.max_advert_int = 300;
    d.on_event(&event(a, v4(2), 2 * MS));
    assert_eq!(
        d.instances()[0].rx.get("advert_interval_mismatch"),
        1,
        "{}",
        d.instances()[0].rx.summary()
    );
}

#[test]
fn receive_errors_are_counted_per_instance() {
    let mut d = driver(
        vec![
            spec(input(7, 100, &["10.0.0.100/24"])),
            spec(input(8, 100, &["10.0.0.200/24"])),
        ],
        &[v4(1), v4(1)],
    );
    d.startup(Instant::ZERO);
    let mut ev = event(advert(8, 200, 100, &[v4(200)]), v4(2), MS);
    ev.ttl = 64;
    d.on_event(&ev);
    d.on_event(&ev);
    let mut bad = event(advert(7, 200, 100, &[v4(100)]), v4(2), 2 * MS);
    bad.payload[6] ^= 0xff; // checksum
    d.on_event(&bad);
    let mut trunc = event(advert(7, 200, 100, &[v4(100)]), v4(2), 3 * MS);
    trunc.captured_len -= 2;
    d.on_event(&trunc);
    let other = event(advert(9, 200, 100, &[v4(100)]), v4(2), 4 * MS);
    d.on_event(&other);
    assert_eq!(d.instances()[1].rx.get("ttl_not_255"), 2);
    assert_eq!(d.instances()[0].rx.get("bad_checksum"), 1);
    assert_eq!(d.instances()[0].rx.get("length_mismatch"), 1);
    assert_eq!(d.unmatched.get("vrid_not_configured"), 1);
    assert_eq!(d.instances()[1].rx.summary(), "accepted=0 ttl_not_255=2");
    assert_eq!(RxStats::default().summary(), "accepted=0");
    // The valid part of the truncated capture is what the event says.
    assert_eq!(event_payload(&trunc).len(), trunc.captured_len as usize);
}

#[test]
fn unicast_mode_drops_adverts_from_unknown_sources() {
    let mut i = input(7, 100, &["10.0.0.100/24"]);
    i.unicast_peers = vec!["10.0.0.2".into()];
    let mut d = driver(vec![spec(i)], &[v4(1)]);
    d.startup(Instant::ZERO);
    d.on_event(&event(advert(7, 200, 100, &[v4(100)]), v4(3), MS));
    assert_eq!(d.instances()[0].rx.get("unknown_peer"), 1);
    d.on_event(&event(advert(7, 200, 100, &[v4(100)]), v4(2), MS));
    assert_eq!(d.instances()[0].rx.accepted, 1);
}

#[test]
fn heartbeat_period_is_a_quarter_of_the_smallest_stale_bound() {
    let mut fast = input(7, 100, &["10.0.0.100/24"]);
    fast.advert_int = Some(0.01);
    let slow = input(8, 100, &["10.0.0.200/24"]);
    let d = driver(vec![spec(fast), spec(slow)], &[v4(1), v4(1)]);
    // 10 ms adverts, priority 100: 30 ms + 6.09375 ms.
    assert_eq!(
        d.instances()[0].stale_after,
        Duration::from_nanos(36_093_750)
    );
    assert_eq!(d.heartbeat_period(), Duration::from_nanos(36_093_750 / 4));

    let mut tiny = input(7, 100, &["10.0.0.100/24"]);
    tiny.failsafe_timeout = Some(0.002);
    assert!(tiny.build(None).is_err(), "below 4 ms");
    tiny.failsafe_timeout = Some(0.004);
    let d = driver(vec![spec(tiny)], &[v4(1)]);
    assert_eq!(d.instances()[0].stale_after, Duration::from_millis(4));
    assert_eq!(d.heartbeat_period(), Duration::from_millis(1));
}

#[test]
fn priority_zero_from_master_takes_over_after_skew_time() {
    let (mut d, _) = backup();
    let t = 100 * MS;
    d.on_event(&event(advert(7, 0, 100, &[v4(100)]), v4(2), t));
    // Skew_Time = 156/256 × 1 s.
    assert_eq!(d.next_wakeup(), Some(Instant::from_nanos(t + 609_375_000)));
}

#[test]
fn link_down_releases_without_advert_and_link_up_restarts() {
    let (mut d, t0) = backup();
    d.on_timers(t0);
    let cmds = d.link(false, t0 + Duration::from_millis(5));
    assert_eq!(cmds, vec![Command::Release { instance: 0 }]);
    assert_eq!(d.instances()[0].vr.state(), State::Fault);
    assert_eq!(d.next_wakeup(), None, "no timers, no GARP in Fault");
    let cmds = d.link(true, t0 + Duration::from_millis(10));
    assert_eq!(cmds, vec![Command::Release { instance: 0 }]);
    assert_eq!(d.instances()[0].vr.state(), State::Backup);
}
