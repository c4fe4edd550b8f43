//! The sans-IO core on a simulated clock: received adverts → state machine inputs (with
//! their kernel receive times), actions → commands (frames, claim/release), the drain-before-
//! timer ordering, the GARP/NA schedule from the garp_master_* settings, unicast peers, v2
//! interval conversion, per-instance receive error counts and the heartbeat period; claim
//! results fed back (FAULT and retry with backoff on a failed claim, bounded release retries) and
//! the VIP guard (a VIP removed behind our back while master is put back and counted).
use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use vrrp_core::{
    config::{InstanceInput, InstanceSpec, Vip},
    fsm::{Instant, Reason, State},
    node::{reason_name, RxStats, CLAIM_HELD_RESET, CLAIM_RETRY_MAX, RELEASE_RETRIES},
    wire::{
        self, AdvertFrame, ArpFrame, ChecksumOpts, MacAddr, NdpFrame, RxFrame, VrrpPacket, VrrpRepr,
    },
    Command, InstanceId, Notification, Received, Report,
};

mod driver_support;
use driver_support::{advert, event, rx, v4, Sim, MS};

type Driver = Sim;

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

/// A core on `eth0` whose addresses are `primaries` (the advert sources) and the address
/// owners' VIPs.
fn driver(specs: Vec<InstanceSpec>, primaries: &[IpAddr]) -> Driver {
    let mut addrs = primaries.to_vec();
    for s in specs.iter().filter(|s| s.priority == 255) {
        addrs.extend(s.vips.iter().map(|v| v.addr));
    }
    Sim::new(specs, &addrs)
}

/// The VRRP message inside a sent advert frame.
/// The priority of an advert command; `None` for any other command (GARPs included).
fn advert_priority(cmd: &Command) -> Option<u8> {
    let Command::SendFrame { frame, .. } = cmd else {
        return None;
    };
    AdvertFrame::parse(frame, ChecksumOpts::default())
        .ok()
        .map(|a| a.vrrp.priority)
}

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
    assert_eq!(
        cmds,
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
    assert_eq!(d.instances()[0].state, State::Backup);
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
            instance: InstanceId(0),
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
    assert_eq!(d.instances()[0].state, State::Master);
    // The VIPs are ours before the advert moves the switch's VMAC entry to us.
    assert_eq!(
        cmds[0],
        Command::Claim {
            instance: InstanceId(0),
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
    let garps: Vec<_> = cmds[2..7]
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
    // The addresses (netlink, which can wait for the rtnl lock) only after the advert and the
    // GARP burst: the takeover waits on nothing slower than the fast path's map update.
    assert_eq!(
        cmds[7..],
        [Command::AddVips {
            instance: InstanceId(0)
        }]
    );
}

#[test]
fn advert_time_is_the_kernel_receive_time() {
    let (mut d, _) = backup();
    let t_rx = 500 * MS;
    let cmds = rx(&mut d, &event(advert(7, 200, 100, &[v4(100)]), v4(2), t_rx));
    assert!(cmds.is_empty());
    assert_eq!(d.instances()[0].rx.accepted, 1);
    assert_eq!(
        d.next_wakeup(),
        Some(Instant::from_nanos(t_rx + 3_609_375_000)),
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
    assert_eq!(d.instances()[0].state, State::Backup);

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
    assert_eq!(d.instances()[0].state, State::Backup);
    assert_eq!(
        d.next_wakeup(),
        Some(Instant::from_nanos(rx + 3_609_375_000)),
        "Master_Down_Timer restarts at the advert's receive time"
    );
    // The same on the ring path (the agent woke for the advert, not for the timer).
    let (mut d, deadline) = backup();
    let cmds = d.on_event(
        &event(
            advert(7, 200, 100, &[v4(100)]),
            v4(2),
            deadline.as_nanos() + MS,
        ),
        deadline + Duration::from_millis(2),
    );
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(d.instances()[0].state, State::Backup);
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
    assert_eq!(d.instances()[0].state, State::Master);
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
    assert_eq!(d.instances()[0].state, State::Master);
    let due = d.next_wakeup().unwrap();
    // A lower-priority advert received 1 ms after our advert was due: ours goes out first
    // (Adver_Timer), then the answer to the lower-priority one.
    let cmds = d.on_event(
        &event(advert(7, 50, 100, &[v4(100)]), v4(2), due.as_nanos() + MS),
        due + Duration::from_millis(2),
    );
    let adverts: Vec<u8> = cmds
        .iter()
        .filter(|c| !is_garp(c))
        .map(|c| sent_advert(c).priority)
        .collect();
    assert!(!adverts.is_empty(), "{cmds:?}");
    assert_eq!(adverts[0], 100);
    assert_eq!(d.instances()[0].state, State::Master);
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
    let cmds = rx(
        &mut d,
        &event(
            advert(7, 200, 100, &[v4(100)]),
            v4(2),
            t0.as_nanos() + 100 * MS,
        ),
    );
    assert_eq!(
        cmds,
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
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
    assert_eq!(d.instances()[0].name, "vrid9-v6");
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
    assert_eq!(d.instances()[0].state, State::Master);
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
    assert!(rx(
        &mut d,
        &event(advert(7, 0, 100, &[v4(100)]), v4(3), stop.as_nanos() + MS)
    )
    .is_empty());
    assert!(d.handing_over());
    // The backup's first advert as master, Skew_Time later.
    let t = stop.as_nanos() + 609 * MS;
    let cmds = rx(&mut d, &event(advert(7, 100, 100, &[v4(100)]), v4(2), t));
    assert_eq!(
        cmds,
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
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
        vec![Command::Release {
            instance: InstanceId(0)
        }]
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
    assert_eq!(
        d.end_handovers(),
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
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
    rx(&mut d, &event(a.clone(), v4(2), MS));
    assert_eq!(d.instances()[0].rx.accepted, 1);
    a.max_advert_int = 300;
    rx(&mut d, &event(a, v4(2), 2 * MS));
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
    ev.hop_limit = 64;
    rx(&mut d, &ev);
    rx(&mut d, &ev);
    let mut bad = event(advert(7, 200, 100, &[v4(100)]), v4(2), 2 * MS);
    bad.payload[6] ^= 0xff; // checksum
    rx(&mut d, &bad);
    let mut trunc = event(advert(7, 200, 100, &[v4(100)]), v4(2), 3 * MS);
    trunc.payload.truncate(trunc.payload.len() - 2);
    rx(&mut d, &trunc);
    let other = event(advert(9, 200, 100, &[v4(100)]), v4(2), 4 * MS);
    rx(&mut d, &other);
    assert_eq!(d.instances()[1].rx.get("ttl_not_255"), 2);
    assert_eq!(d.instances()[0].rx.get("bad_checksum"), 1);
    assert_eq!(d.instances()[0].rx.get("length_mismatch"), 1);
    assert_eq!(d.unmatched().get("vrid_not_configured"), 1);
    assert_eq!(d.instances()[1].rx.summary(), "accepted=0 ttl_not_255=2");
    assert_eq!(RxStats::default().summary(), "accepted=0");
}

#[test]
fn unicast_mode_drops_adverts_from_unknown_sources() {
    let mut i = input(7, 100, &["10.0.0.100/24"]);
    i.unicast_peers = vec!["10.0.0.2".into()];
    let mut d = driver(vec![spec(i)], &[v4(1)]);
    d.startup(Instant::ZERO);
    rx(&mut d, &event(advert(7, 200, 100, &[v4(100)]), v4(3), MS));
    assert_eq!(d.instances()[0].rx.get("unknown_peer"), 1);
    rx(&mut d, &event(advert(7, 200, 100, &[v4(100)]), v4(2), MS));
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
        d.instances()[0].failsafe_bound,
        Duration::from_nanos(36_093_750)
    );
    assert_eq!(d.heartbeat_period(), Duration::from_nanos(36_093_750 / 4));

    let mut tiny = input(7, 100, &["10.0.0.100/24"]);
    tiny.failsafe_timeout = Some(0.002);
    assert!(tiny.build(None).is_err(), "below 4 ms");
    tiny.failsafe_timeout = Some(0.004);
    let d = driver(vec![spec(tiny)], &[v4(1)]);
    assert_eq!(d.instances()[0].failsafe_bound, Duration::from_millis(4));
    assert_eq!(d.heartbeat_period(), Duration::from_millis(1));
}

/// The heartbeat rides on other wake-ups: written at a wake-up once it is one period old, and
/// the agent wakes up for it only two periods after the last write.
#[test]
fn heartbeat_is_written_at_wakeups_one_period_old_and_forces_one_at_two() {
    let p = Duration::from_millis(9);
    let at = |ms: u64| vrrp_core::fsm::Instant::from_nanos(ms * 1_000_000);
    let mut hb = vrrp_core::Heartbeat::new(p);
    assert!(hb.due(at(5)), "never written");
    assert_eq!(hb.deadline(), at(0));
    hb.wrote(at(5));
    assert!(!hb.due(at(13)), "8 ms old");
    assert!(hb.due(at(14)), "one period old");
    assert_eq!(hb.deadline(), at(23), "two periods after the write");
    // Adverts every 10 ms: one write per wake-up, no wake-up of its own.
    for t in (15..100).step_by(10) {
        assert!(hb.due(at(t)));
        hb.wrote(at(t));
        assert!(hb.deadline() > at(t + 10));
    }
    // Wake-ups every 1 ms (many VRIDs): one write per period, not per wake-up.
    let mut writes = 0;
    for t in 100..200 {
        if hb.due(at(t)) {
            hb.wrote(at(t));
            writes += 1;
        }
    }
    assert_eq!(writes, 11, "at 104, 113, ..., 194 ms: every 9 ms");
}

#[test]
fn priority_zero_from_master_takes_over_after_skew_time() {
    let (mut d, _) = backup();
    let t = 100 * MS;
    rx(&mut d, &event(advert(7, 0, 100, &[v4(100)]), v4(2), t));
    // Skew_Time = 156/256 × 1 s.
    assert_eq!(d.next_wakeup(), Some(Instant::from_nanos(t + 609_375_000)));
}

#[test]
fn link_down_releases_without_advert_and_link_up_restarts() {
    let (mut d, t0) = backup();
    d.on_timers(t0);
    let cmds = d.link(false, t0 + Duration::from_millis(5));
    assert_eq!(
        cmds,
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
    assert_eq!(d.instances()[0].state, State::Fault);
    assert_eq!(d.next_wakeup(), None, "no timers, no GARP in Fault");
    let cmds = d.link(true, t0 + Duration::from_millis(10));
    assert_eq!(
        cmds,
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
    assert_eq!(d.instances()[0].state, State::Backup);
}

// ---------------------------------------------------------------------------------------------
// Claim results and the VIP guard: `Sim::execute` carries out the queued commands as the edge
// does, reporting what each one did before polling the next.

/// Every claim and release works.
fn ok(c: &Command) -> Option<Report> {
    match c {
        Command::Claim { .. } | Command::AddVips { .. } => Some(Report::Claimed),
        Command::Release { .. } => Some(Report::Released),
        _ => None,
    }
}

/// The fast path's claim works, the address add fails (the kernel refuses it), releases work.
fn vip_adds_fail(c: &Command) -> Option<Report> {
    match c {
        Command::AddVips { .. } => Some(Report::ClaimFailed(
            "adding VIP 10.0.0.100/24: Permission denied".into(),
        )),
        c => ok(c),
    }
}

/// Claims fail (as an address add refused by the kernel would), releases work.
fn claim_fails(c: &Command) -> Option<Report> {
    match c {
        Command::Claim { .. } => Some(Report::ClaimFailed(
            "adding VIP 10.0.0.100/24: Permission denied".into(),
        )),
        c => ok(c),
    }
}

fn vip100() -> Vip {
    Vip {
        addr: v4(100),
        prefix: 24,
    }
}

fn state(d: &Driver) -> State {
    d.instances()[0].state
}

/// Runs the driver (timers and the commands they give) until `until`, with `outcome` for every
/// command; returns the commands carried out with their times.
fn run_exec(
    d: &mut Driver,
    until: Instant,
    mut outcome: impl FnMut(&Command) -> Option<Report>,
) -> Vec<(Instant, Command)> {
    let mut out = Vec::new();
    while let Some(t) = d.next_wakeup() {
        if t > until {
            break;
        }
        d.on_timers(t);
        for c in d.execute(t, &mut outcome) {
            out.push((t, c));
        }
    }
    out
}

/// The backup that becomes master at `t0` and whose claim fails there.
fn failed_claim() -> (Driver, Instant, Vec<Command>) {
    let (mut d, t0) = backup();
    let cmds = d.on_timers(t0);
    assert_eq!(claims(&cmds), 1);
    let done = d.execute(t0, claim_fails);
    (d, t0, done)
}

#[test]
fn claim_failed_is_a_reason_with_a_snake_case_name() {
    assert_eq!(reason_name(Reason::ClaimFailed), "claim_failed");
}

#[test]
fn claim_failure_goes_fault_sends_priority_zero_and_releases_instead_of_the_advert() {
    let (d, t0, done) = failed_claim();
    assert_eq!(state(&d), State::Fault, "not MASTER without its VIPs");
    // The claim, then the driver's answer: a priority-0 advert (a backup takes over after
    // Skew_Time) and a release of whatever part of the claim worked. The priority-100 advert and
    // the GARPs queued behind the claim are not sent.
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(matches!(
        done[0],
        Command::Claim {
            instance: InstanceId(0),
            ..
        }
    ));
    assert_eq!(sent_advert(&done[1]).priority, 0);
    assert_eq!(
        done[2],
        Command::Release {
            instance: InstanceId(0)
        }
    );
    assert!(!done.iter().any(is_garp));
    only_the_retry_is_left(&d, t0);
}

/// One claim failure counted, its retry a second after `t0`, and nothing else to wake for (no
/// advert timer, no GARP in FAULT).
#[track_caller]
fn only_the_retry_is_left(d: &Driver, t0: Instant) {
    let inst = &d.instances()[0];
    assert_eq!(inst.vip_stats.claim_failures, 1);
    assert_eq!(inst.claim_retry_at, Some(t0 + Duration::from_secs(1)));
    assert_eq!(
        d.next_wakeup(),
        Some(t0 + Duration::from_secs(1)),
        "only the retry is left: no advert timer, no GARP in FAULT"
    );
}

#[test]
fn vip_add_failure_after_the_advert_goes_fault_and_drops_the_rest_of_the_garps() {
    let (mut d, t0) = backup();
    d.on_timers(t0);
    let done = d.execute(t0, vip_adds_fail);
    assert_eq!(state(&d), State::Fault, "not MASTER without its VIPs");
    // The fast path's claim, the advert and the first GARP burst went out before the address
    // add was tried; then the answer: a priority-0 advert and a release.
    assert!(matches!(done[0], Command::Claim { .. }));
    assert_eq!(sent_advert(&done[1]).priority, 100);
    let n = done.len();
    assert!(matches!(done[n - 3], Command::AddVips { .. }), "{done:?}");
    assert_eq!(sent_advert(&done[n - 2]).priority, 0);
    assert_eq!(
        done[n - 1],
        Command::Release {
            instance: InstanceId(0)
        }
    );
    // MASTER is told before the FAULT that ends it.
    let states: Vec<_> = d
        .notes()
        .into_iter()
        .filter_map(|n| match n {
            Notification::StateChanged(s) => Some((s.from, s.to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        states[states.len() - 2..],
        [
            (State::Backup, State::Master),
            (State::Master, State::Fault)
        ]
    );
    only_the_retry_is_left(&d, t0);
}

#[test]
fn claim_retry_after_the_backoff_goes_backup_then_master_claims_again() {
    let (mut d, t0, _) = failed_claim();
    let retry = t0 + Duration::from_secs(1);
    // Nothing happens before the backoff.
    assert!(d.on_timers(retry - Duration::from_nanos(1)).is_empty());
    assert_eq!(state(&d), State::Fault);
    // The Startup rules apply again: Backup (releasing leftovers), Master_Down_Interval later
    // Master with a claim, which works this time.
    let done = run_exec(&mut d, retry, ok);
    assert_eq!(state(&d), State::Backup);
    assert_eq!(
        done,
        vec![(
            retry,
            Command::Release {
                instance: InstanceId(0)
            }
        )]
    );
    let mdi = Duration::from_nanos(3_609_375_000);
    let done = run_exec(&mut d, retry + mdi, ok);
    assert_eq!(state(&d), State::Master);
    assert!(matches!(done[0], (t, Command::Claim { .. }) if t == retry + mdi));
    // A retry puts the addresses on before its advert (the takeover order is for a first claim).
    assert!(matches!(done[1], (_, Command::AddVips { .. })));
    assert_eq!(sent_advert(&done[2].1).priority, 100);
    assert_eq!(d.instances()[0].claim_retry_at, None);
}

#[test]
fn a_retry_whose_address_add_fails_again_sends_no_advert_at_its_priority() {
    // The first takeover: the advert goes out before the address add, which fails.
    let (mut d, t0) = backup();
    d.on_timers(t0);
    let first = d.execute(t0, vip_adds_fail);
    assert!(
        first.iter().any(|c| advert_priority(c) == Some(100)),
        "{first:?}"
    );
    assert_eq!(state(&d), State::Fault);
    // The retry (a peer holds the VIP by now) adds the addresses first; they fail again, so
    // the peer never sees a priority-100 advert that would preempt it for nothing.
    let mdi = Duration::from_nanos(3_609_375_000);
    let done = run_exec(&mut d, t0 + Duration::from_secs(1) + mdi, vip_adds_fail);
    assert!(done
        .iter()
        .any(|(_, c)| matches!(c, Command::AddVips { .. })));
    let prios: Vec<u8> = done
        .iter()
        .filter_map(|(_, c)| advert_priority(c))
        .collect();
    assert_eq!(prios, [0], "{done:?}");
    assert_eq!(state(&d), State::Fault);
}

#[test]
fn claim_retry_with_a_master_present_stays_backup() {
    let (mut d, t0, _) = failed_claim();
    let retry = t0 + Duration::from_secs(1);
    run_exec(&mut d, retry, ok);
    // Another router took over meanwhile and advertises with priority 200: no claim at all.
    let mut t = retry;
    for _ in 0..10 {
        t = t + Duration::from_secs(1);
        let cmds = rx(
            &mut d,
            &event(advert(7, 200, 100, &[v4(100)]), v4(2), t.as_nanos()),
        );
        assert!(cmds.is_empty(), "{cmds:?}");
        assert!(d.on_timers(t).is_empty());
    }
    assert_eq!(state(&d), State::Backup);
}

#[test]
fn claim_failures_in_a_row_double_the_backoff_up_to_the_maximum() {
    let (mut d, t0, _) = failed_claim();
    let mut waits = vec![d.instances()[0].claim_retry_at.unwrap() - t0];
    // The cause stays: every retry leads to a claim that fails again.
    for _ in 0..7 {
        let failed_at = {
            let mut failed_at = None;
            while let Some(t) = d.next_wakeup() {
                let cmds = d.on_timers(t);
                let had_claim = claims(&cmds) == 1;
                d.execute(t, claim_fails);
                if had_claim {
                    failed_at = Some(t);
                    break;
                }
            }
            failed_at.expect("a retry leads to a claim")
        };
        assert_eq!(state(&d), State::Fault);
        waits.push(d.instances()[0].claim_retry_at.unwrap() - failed_at);
    }
    let s = |n| Duration::from_secs(n);
    assert_eq!(waits, [s(1), s(2), s(4), s(8), s(16), s(30), s(30), s(30)]);
    assert_eq!(CLAIM_RETRY_MAX, s(30));
    assert_eq!(d.instances()[0].vip_stats.claim_failures, 8);
}

#[test]
fn a_claim_that_held_resets_the_backoff_a_short_one_does_not() {
    // Two failures in a row (retries after 1 s, 2 s), then the claim works.
    let (mut d, t_ok) = master_after_failures(2);
    // A failure 5 s after that success: the backoff keeps doubling.
    assert_eq!(
        fail_readd(&mut d, t_ok + Duration::from_secs(5)),
        Duration::from_secs(4)
    );
    // The same failure after the claim held for CLAIM_HELD_RESET: back to 1 s.
    let (mut d, t_ok) = master_after_failures(2);
    assert_eq!(
        fail_readd(&mut d, t_ok + CLAIM_HELD_RESET),
        Duration::from_secs(1)
    );
}

/// A master whose VIP disappears at `t` and cannot be put back: the wait before the retry.
fn fail_readd(d: &mut Driver, t: Instant) -> Duration {
    let cmds = d.address_changed(v4(100), false);
    assert_eq!(
        cmds,
        vec![Command::AddVip {
            instance: InstanceId(0),
            vip: vip100()
        }]
    );
    d.execute(t, |c| match c {
        Command::AddVip { .. } => Some(Report::ClaimFailed("adding VIP: Permission denied".into())),
        c => ok(c),
    });
    assert_eq!(state(d), State::Fault);
    d.instances()[0].claim_retry_at.unwrap() - t
}

/// A master whose claim failed `n` times in a row before it worked; the time it worked.
fn master_after_failures(n: usize) -> (Driver, Instant) {
    let (mut d, _, _) = failed_claim();
    let mut fails = 1;
    while let Some(t) = d.next_wakeup() {
        let cmds = d.on_timers(t);
        let had_claim = claims(&cmds) == 1;
        let outcome = if fails < n { claim_fails } else { ok };
        d.execute(t, outcome);
        if had_claim {
            if fails < n {
                fails += 1;
            } else {
                assert_eq!(state(&d), State::Master);
                return (d, t);
            }
        }
    }
    unreachable!()
}

#[test]
fn owner_claim_failure_goes_fault_and_the_retry_claims_again_at_once() {
    let mut d = driver(vec![spec(input(7, 255, &["10.0.0.1/24"]))], &[v4(1)]);
    d.startup(Instant::ZERO);
    let done = d.execute(Instant::ZERO, |c| match c {
        Command::Claim { .. } => Some(Report::ClaimFailed(
            "claiming in the fast path: EPERM".into(),
        )),
        c => ok(c),
    });
    assert_eq!(state(&d), State::Fault);
    assert_eq!(sent_advert(&done[1]).priority, 0);
    let t = Instant::from_nanos(1000 * MS);
    let done = run_exec(&mut d, t, ok);
    assert_eq!(state(&d), State::Master);
    assert!(matches!(done[0].1, Command::Claim { .. }));
    assert_eq!(sent_advert(&done[1].1).priority, 255);
}

#[test]
fn release_failure_keeps_the_state_and_is_retried_a_bounded_number_of_times() {
    let (mut d, t0) = master();
    // A higher-priority master appears: Backup, release — which fails.
    let t = t0 + Duration::from_millis(100);
    rx(
        &mut d,
        &event(advert(7, 200, 100, &[v4(100)]), v4(2), t.as_nanos()),
    );
    let fail = |c: &Command| match c {
        Command::Release { .. } => Some(Report::ReleaseFailed(
            "removing VIP 10.0.0.100/24: EBUSY".into(),
        )),
        c => ok(c),
    };
    d.execute(t, fail);
    assert_eq!(
        state(&d),
        State::Backup,
        "a failed release does not move state"
    );
    assert_eq!(
        d.instances()[0].release_retry_at,
        Some(t + Duration::from_secs(1))
    );
    // The master keeps advertising; the release is retried after 1, 2, 4, 8 and 16 s, then no more.
    let mut retries = Vec::new();
    let mut now = t;
    let end = t + Duration::from_secs(120);
    while now < end {
        now = now + Duration::from_millis(500);
        rx(
            &mut d,
            &event(advert(7, 200, 100, &[v4(100)]), v4(2), now.as_nanos()),
        );
        d.on_timers(now);
        for c in d.execute(now, fail) {
            if c == (Command::Release {
                instance: InstanceId(0),
            }) {
                retries.push(now - t);
            }
        }
    }
    let s = |n| Duration::from_secs(n);
    assert_eq!(retries, [s(1), s(3), s(7), s(15), s(31)]);
    assert_eq!(RELEASE_RETRIES, 5);
    assert_eq!(d.instances()[0].release_retry_at, None);
    assert_eq!(d.instances()[0].vip_stats.release_failures, 6);
    assert_eq!(state(&d), State::Backup);
}

/// A master that a higher-priority advert demoted 100 ms after it took over, whose release
/// failed (EBUSY); returns the driver and the time of that advert.
fn master_whose_release_failed() -> (Driver, Instant) {
    let (mut d, t0) = master();
    let t = t0 + Duration::from_millis(100);
    rx(
        &mut d,
        &event(advert(7, 200, 100, &[v4(100)]), v4(2), t.as_nanos()),
    );
    d.execute(t, |c| match c {
        Command::Release { .. } => Some(Report::ReleaseFailed("EBUSY".into())),
        c => ok(c),
    });
    (d, t)
}

#[test]
fn release_retry_stops_when_it_works_or_the_router_is_master_again() {
    let (mut d, t) = master_whose_release_failed();
    // The retry works.
    let r = t + Duration::from_secs(1);
    d.on_timers(r);
    let done = d.execute(r, ok);
    assert_eq!(
        done,
        vec![Command::Release {
            instance: InstanceId(0)
        }]
    );
    assert_eq!(d.instances()[0].release_retry_at, None);

    // A failed release, then Master again before the retry: nothing to release then.
    let (mut d, t) = master_whose_release_failed();
    let p0 = t + Duration::from_millis(200);
    rx(
        &mut d,
        &event(advert(7, 0, 100, &[v4(100)]), v4(2), p0.as_nanos()),
    );
    let done = run_exec(&mut d, t + Duration::from_secs(2), ok);
    assert_eq!(state(&d), State::Master);
    assert!(
        !done
            .iter()
            .any(|(_, c)| matches!(c, Command::Release { .. })),
        "{done:?}"
    );
}

#[test]
fn vip_removed_behind_our_back_while_master_is_added_back_at_once_and_counted() {
    let (mut d, t0) = master();
    let cmds = d.address_changed(v4(100), false);
    assert_eq!(
        cmds,
        vec![Command::AddVip {
            instance: InstanceId(0),
            vip: vip100()
        }]
    );
    d.execute(t0, |c| match c {
        Command::AddVip { vip, .. } => Some(Report::VipAdded {
            vip: *vip,
            was_present: false,
        }),
        c => ok(c),
    });
    assert_eq!(state(&d), State::Master, "no transition");
    assert_eq!(d.instances()[0].vip_stats.vips_readded, 1);
    // Other addresses and additions are none of its business.
    assert!(d.address_changed(v4(1), false).is_empty());
    assert!(d.address_changed(v4(100), true).is_empty());
}

#[test]
fn our_own_release_is_not_counted_even_when_its_notification_comes_after_a_new_claim() {
    let (mut d, t0) = master();
    // Backup: our release removes the VIP; its notification arrives while Backup: ignored.
    let t = t0 + Duration::from_millis(100);
    rx(
        &mut d,
        &event(advert(7, 200, 100, &[v4(100)]), v4(2), t.as_nanos()),
    );
    d.execute(t, ok);
    assert!(d.address_changed(v4(100), false).is_empty());
    // Release then claim again before the notification is read: the stale removal asks for an
    // idempotent add, which finds the VIP there, and nothing is counted.
    let p0 = t + Duration::from_millis(200);
    rx(
        &mut d,
        &event(advert(7, 0, 100, &[v4(100)]), v4(2), p0.as_nanos()),
    );
    run_exec(&mut d, p0 + Duration::from_secs(1), ok);
    assert_eq!(state(&d), State::Master);
    d.address_changed(v4(100), false);
    d.execute(p0, |c| match c {
        Command::AddVip { vip, .. } => Some(Report::VipAdded {
            vip: *vip,
            was_present: true,
        }),
        c => ok(c),
    });
    assert_eq!(d.instances()[0].vip_stats.vips_readded, 0);
    assert_eq!(state(&d), State::Master);
}

#[test]
fn vip_added_behind_our_back_while_backup_is_removed_and_counted() {
    let (mut d, _) = backup();
    let cmds = d.address_changed(v4(100), true);
    assert_eq!(
        cmds,
        vec![Command::RemoveVip {
            instance: InstanceId(0),
            vip: vip100()
        }]
    );
    let mut found = true;
    for _ in 0..2 {
        d.address_changed(v4(100), true);
        d.execute(Instant::ZERO, |c| match c {
            Command::RemoveVip { vip, .. } => Some(Report::VipRemoved {
                vip: *vip,
                was_present: std::mem::replace(&mut found, false),
            }),
            c => ok(c),
        });
    }
    // The second notification was stale (the VIP was gone already): counted once.
    assert_eq!(d.instances()[0].vip_stats.vips_removed, 1);
    assert_eq!(state(&d), State::Backup);
}

#[test]
fn readd_failure_is_a_claim_failure() {
    let (mut d, t0) = master();
    let t = t0 + Duration::from_millis(10);
    let wait = fail_readd(&mut d, t);
    assert_eq!(wait, Duration::from_secs(1));
    assert_eq!(d.instances()[0].vip_stats.claim_failures, 1);
    assert_eq!(d.instances()[0].vip_stats.vips_readded, 0);
}

#[test]
fn readd_failure_sends_priority_zero_and_releases() {
    let (mut d, t0) = master();
    d.address_changed(v4(100), false);
    let done = d.execute(t0, |c| match c {
        Command::AddVip { .. } => Some(Report::ClaimFailed("EACCES".into())),
        c => ok(c),
    });
    assert_eq!(done.len(), 3, "{done:?}");
    assert!(matches!(done[0], Command::AddVip { .. }));
    assert_eq!(sent_advert(&done[1]).priority, 0);
    assert_eq!(
        done[2],
        Command::Release {
            instance: InstanceId(0)
        }
    );
}

#[test]
fn address_owner_vips_are_not_guarded() {
    let mut d = driver(vec![spec(input(7, 255, &["10.0.0.1/24"]))], &[v4(1)]);
    d.startup(Instant::ZERO);
    d.execute(Instant::ZERO, ok);
    assert_eq!(state(&d), State::Master);
    assert!(d.address_changed(v4(1), false).is_empty());
}

#[test]
fn addresses_now_after_lost_notifications_applies_the_same_rules() {
    let (mut d, _) = master();
    assert_eq!(
        d.addresses_now(&[v4(1)]),
        vec![Command::AddVip {
            instance: InstanceId(0),
            vip: vip100()
        }]
    );
    assert!(d.addresses_now(&[v4(1), v4(100)]).is_empty());
    let (mut d, _) = backup();
    assert!(d.addresses_now(&[v4(1)]).is_empty());
    assert_eq!(
        d.addresses_now(&[v4(1), v4(100)]),
        vec![Command::RemoveVip {
            instance: InstanceId(0),
            vip: vip100()
        }]
    );
}

#[test]
fn release_failure_at_the_stop_is_not_retried() {
    let (mut d, t0) = master();
    let stop = t0 + Duration::from_millis(10);
    d.shutdown(stop);
    d.execute(stop, ok);
    d.end_handovers();
    d.execute(stop, |c| match c {
        Command::Release { .. } => Some(Report::ReleaseFailed("EBUSY".into())),
        c => ok(c),
    });
    assert_eq!(d.instances()[0].vip_stats.release_failures, 1);
    assert_eq!(d.instances()[0].release_retry_at, None);
    assert_eq!(d.next_wakeup(), None);
}
/// `ev` with its Max Adver Int set to `cs` (0 included, which the codec refuses to emit) and
/// its checksum fixed.
fn with_interval(mut ev: Received, cs: u16) -> Received {
    let (src, dst) = (ev.src_ip, ev.dst_ip);
    let mut p = VrrpPacket::new_unchecked(&mut ev.payload[..]);
    p.set_v3_max_advert_int(cs);
    p.fill_checksum(&wire::IpPair::new(src, dst), ChecksumOpts::default());
    ev
}

/// The adverts among `cmds` (multicast frames and unicast packets).
fn adverts(cmds: &[Command]) -> usize {
    cmds.iter()
        .filter(|c| {
            matches!(
                c,
                Command::SendFrame { advert: true, .. } | Command::SendIp { .. }
            )
        })
        .count()
}

/// Issue 7 item 5: one on-link host sending priority-254 adverts with Max Adver Int 0 every
/// 50 ms made every router flap (~100 transitions in 5 s). They are invalid now: neither the
/// master nor the backup (which keeps hearing its real master) moves.
#[test]
fn interval_zero_flood_moves_no_state() {
    let rogue = |t: u64| with_interval(event(advert(7, 254, 100, &[v4(100)]), v4(66), t), 0);
    // The master.
    let (mut m, t0) = master();
    let mut cmds = Vec::new();
    for k in 1..=100u64 {
        let t = t0.as_nanos() + k * 50 * MS;
        cmds.extend(m.expire(Instant::from_nanos(t), []));
        cmds.extend(rx(&mut m, &rogue(t)));
        assert_eq!(m.instances()[0].state, State::Master, "at {k}");
    }
    assert_eq!(claims(&cmds), 0);
    assert!(cmds.iter().all(|c| !matches!(c, Command::Release { .. })));
    assert_eq!(m.instances()[0].rx.get("zero_advert_interval"), 100);
    // The backup, hearing its master (priority 200, 1 s) and the flood.
    let (mut b, _) = backup();
    let mut cmds = Vec::new();
    for k in 1..=100u64 {
        let t = k * 50 * MS;
        if k % 20 == 0 {
            cmds.extend(rx(
                &mut b,
                &event(advert(7, 200, 100, &[v4(100)]), v4(2), t),
            ));
        }
        cmds.extend(b.expire(Instant::from_nanos(t), []));
        cmds.extend(rx(&mut b, &rogue(t + MS)));
        assert_eq!(b.instances()[0].state, State::Backup, "at {k}");
    }
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(b.instances()[0].rx.get("zero_advert_interval"), 100);
    assert_eq!(b.instances()[0].master.map(|m| m.0), Some(v4(2)));
}

/// Issue 7 item 7: every lower-priority advert was answered. Now at most one answer per
/// Advertisement_Interval; none with lower_prio_no_advert; v2 only discards.
#[test]
fn lower_priority_flood_gets_at_most_one_answer_per_interval() {
    let flood = |d: &mut Driver, t0: Instant, version: wire::Version| {
        let mut n = 0;
        // 100 adverts at priority 50 within one 1 s interval.
        for k in 0..100u64 {
            let mut a = advert(7, 50, 100, &[v4(100)]);
            a.version = version;
            if version == wire::Version::V2 {
                a.max_advert_int = 100;
            }
            let t = t0.as_nanos() + MS + k * 9 * MS;
            n += adverts(&rx(d, &event(a, v4(2), t)));
        }
        assert_eq!(d.instances()[0].state, State::Master);
        assert_eq!(d.instances()[0].rx.accepted, 100);
        n
    };
    let (mut d, t0) = master();
    assert_eq!(flood(&mut d, t0, wire::Version::V3), 1);

    let mut quiet = input(7, 100, &["10.0.0.100/24"]);
    quiet.lower_prio_no_advert = Some(true);
    let mut d = driver(vec![spec(quiet)], &[v4(1)]);
    d.startup(Instant::ZERO);
    let t0 = d.next_wakeup().unwrap();
    d.on_timers(t0);
    assert_eq!(flood(&mut d, t0, wire::Version::V3), 0);

    let mut v2 = input(7, 100, &["10.0.0.100/24"]);
    v2.version = Some(2);
    let mut d = driver(vec![spec(v2)], &[v4(1)]);
    d.startup(Instant::ZERO);
    let t0 = d.next_wakeup().unwrap();
    d.on_timers(t0);
    assert_eq!(flood(&mut d, t0, wire::Version::V2), 0);
}

/// An owner (VRID 7, 10 ms adverts, Master at 0) and a backup (VRID 8, 1 s) on one interface.
fn owner_and_backup() -> Driver {
    let mut owner = input(7, 255, &["10.0.0.1/24"]);
    owner.advert_int = Some(0.01);
    // The owner sends from its VIP 10.0.0.1, the backup from 10.0.0.3.
    let mut d = Sim::new(
        vec![spec(owner), spec(input(8, 100, &["10.0.0.200/24"]))],
        &[v4(1), v4(3)],
    );
    let cmds = d.startup(Instant::ZERO);
    assert_eq!(adverts(&cmds), 1);
    assert_eq!(d.instances()[0].state, State::Master);
    d
}

/// Issue 7 item 11: the Adver_Timer due at 10 ms is handled at 12 ms, with another instance's
/// advert (received at 11 ms) pending: the advert leaves at 12 ms, so the next one is due at
/// 22 ms, not at 21 ms (which the receive time of an unrelated advert used to give).
#[test]
fn late_adver_timer_next_advert_one_interval_after_the_send() {
    let mut d = owner_and_backup();
    assert_eq!(d.next_wakeup(), Some(Instant::from_nanos(10 * MS)));
    let pending = event(advert(8, 200, 100, &[v4(200)]), v4(2), 11 * MS);
    let cmds = d.expire(Instant::from_nanos(12 * MS), [pending]);
    assert_eq!(adverts(&cmds), 1);
    assert_eq!(
        d.instances()[0].next_deadline,
        Some(Instant::from_nanos(22 * MS))
    );
    // The executor reports that the advert only left at 13.5 ms: the next is due at 23.5 ms.
    d.advert_sent(0, Instant::from_nanos(13_500_000));
    assert_eq!(
        d.instances()[0].next_deadline,
        Some(Instant::from_nanos(23_500_000))
    );
    assert_eq!(d.next_wakeup(), Some(Instant::from_nanos(23_500_000)));
    // The backup instance followed its master's advert from the receive time.
    assert_eq!(d.instances()[1].master.map(|m| m.0), Some(v4(2)));
    assert_eq!(
        d.instances()[1].next_deadline,
        Some(Instant::from_nanos(11 * MS + 3_609_375_000))
    );
}

/// Issue 7 item 11, on a jittery executor: it wakes up to 3 ms late, finds adverts of the
/// other instance that arrived meanwhile, and its sends leave up to 2 ms after it handled them
/// (reported with `advert_sent`). The master's adverts never leave less than one
/// Advertisement_Interval apart.
#[test]
fn adverts_never_leave_less_than_one_interval_apart() {
    let mut d = owner_and_backup();
    let interval = 10 * MS;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut sends: Vec<u64> = vec![0];
    let mut clock = 0u64;
    let mut last_rx = 0u64;
    for _ in 0..2000 {
        let due = d.next_wakeup().unwrap().as_nanos();
        let now = due.max(clock) + rnd(3 * MS);
        // Adverts of VRID 8's master that arrived since the last look.
        let mut pending = Vec::new();
        while last_rx + 4 * MS < now {
            last_rx += 4 * MS + rnd(MS);
            pending.push(event(advert(8, 200, 100, &[v4(200)]), v4(2), last_rx));
        }
        let cmds = d.expire(Instant::from_nanos(now), pending);
        clock = now;
        for c in &cmds {
            if matches!(
                c,
                Command::SendFrame {
                    instance: InstanceId(0),
                    advert: true,
                    ..
                }
            ) {
                clock += rnd(2 * MS);
                sends.push(clock);
                d.advert_sent(0, Instant::from_nanos(clock));
            }
        }
    }
    assert!(sends.len() > 1000, "{}", sends.len());
    let min = sends.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        min >= interval,
        "two adverts {:.3} ms apart",
        min as f64 / 1e6
    );
    assert_eq!(d.instances()[1].state, State::Backup);
}

/// The backup's decision does not depend on when the agent reads an advert: one received
/// before the Master_Down deadline but handled 50 ms after it still resets the timer from its
/// receive time.
#[test]
fn advert_read_late_counts_from_its_receive_time() {
    let (mut d, deadline) = backup();
    let t_rx = deadline.as_nanos() - MS;
    let cmds = d.on_event(
        &event(advert(7, 200, 100, &[v4(100)]), v4(2), t_rx),
        deadline + Duration::from_millis(50),
    );
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(d.instances()[0].state, State::Backup);
    assert_eq!(
        d.next_wakeup(),
        Some(Instant::from_nanos(t_rx + 3_609_375_000))
    );
}
