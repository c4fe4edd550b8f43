//! The Core's own promises: every state change leaves it exactly once, as one
//! `StateChanged` notification with an increasing sequence number; interfaces are independent;
//! `snapshot()` shows state, master, priorities, timers, counters and the peers heard.
use std::{net::IpAddr, time::Duration};

use vrrp_core::{
    config::{InstanceInput, InstanceSpec},
    fsm::{Instant, Reason, State},
    node::{InstanceCounters, Peer, MAX_PEERS},
    wire::MacAddr,
    Command, Core, Event, IfaceEnv, IfaceId, InstanceId, Notification, Report, StateChange,
};

mod driver_support;
use driver_support::{advert, event, v4, MS};

fn spec(name: &str, iface: &str, vrid: i64, priority: i64, vip: &str) -> InstanceSpec {
    InstanceInput {
        name: Some(name.into()),
        interface: Some(iface.into()),
        vrid: Some(vrid),
        priority: Some(priority),
        vips: vec![vip.into()],
        ..Default::default()
    }
    .build(None)
    .unwrap()
}

fn env(name: &str, addr: IpAddr) -> IfaceEnv {
    IfaceEnv {
        name: name.into(),
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        addrs: vec![addr],
    }
}

/// Handles `ev` and carries out every command (claims and releases work, adverts leave at
/// once); the notifications.
fn run(core: &mut Core, ev: Event, now: Instant) -> Vec<Notification> {
    core.handle(ev, now);
    let mut notes = Vec::new();
    while let Some(c) = core.poll_command() {
        let report = match &c {
            Command::Notify(n) => {
                notes.push(n.clone());
                None
            }
            Command::Claim { .. } => Some(Report::Claimed),
            Command::Release { .. } => Some(Report::Released),
            Command::SendFrame {
                instance,
                advert: true,
                ..
            }
            | Command::SendIp { instance, .. } => {
                core.handle(
                    Event::AdvertSent {
                        instance: *instance,
                        at: now,
                    },
                    now,
                );
                None
            }
            _ => None,
        };
        if let (Some(report), Some(instance)) = (report, c.instance()) {
            core.handle(Event::Report { instance, report }, now);
        }
    }
    notes
}

fn changes(notes: &[Notification]) -> Vec<StateChange> {
    notes
        .iter()
        .filter_map(|n| match n {
            Notification::StateChanged(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Two interfaces: `a` on eth0 (10.0.0.1), `b` on eth1 (10.0.1.1), both VRID 7, priority 100.
fn two_ifaces() -> Core {
    Core::new(
        vec![
            spec("a", "eth0", 7, 100, "10.0.0.100/24"),
            spec("b", "eth1", 7, 100, "10.0.1.100/24"),
        ],
        vec![env("eth0", v4(1)), env("eth1", "10.0.1.1".parse().unwrap())],
    )
    .unwrap()
}

#[test]
fn every_state_change_is_one_notification_with_an_increasing_seq() {
    let mut core = two_ifaces();
    let mut all = run(&mut core, Event::Startup, Instant::ZERO);
    let t = core.poll_timeout().unwrap();
    all.extend(run(&mut core, Event::Timer, t));
    // A higher-priority master on eth0 demotes `a`.
    let rx = event(
        advert(7, 200, 100, &[v4(100)]),
        v4(2),
        t.as_nanos() + 10 * MS,
    );
    all.extend(run(
        &mut core,
        Event::Advert {
            iface: IfaceId(0),
            rx,
        },
        t + std::time::Duration::from_millis(10),
    ));
    let c = changes(&all);
    let seen: Vec<_> = c.iter().map(|c| (c.name.as_str(), c.from, c.to)).collect();
    assert_eq!(
        seen,
        [
            ("a", State::Initialize, State::Backup),
            ("b", State::Initialize, State::Backup),
            ("a", State::Backup, State::Master),
            ("b", State::Backup, State::Master),
            ("a", State::Master, State::Backup),
        ]
    );
    assert_eq!(c.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let last = c.last().unwrap();
    assert_eq!(last.reason, Reason::HigherPriorityAdvert);
    assert_eq!(last.master, Some((v4(2), 200)), "the advert that caused it");
    assert_eq!(
        (last.iface.as_str(), last.vrid, last.priority),
        ("eth0", 7, 100)
    );
    assert_eq!(c[2].master, None, "a timer, not an advert");
    let snap = core.snapshot();
    assert_eq!(snap.last_seq, 5);
    assert_eq!(snap.instances[0].last_transition.unwrap().seq, 5);
    assert_eq!(snap.instances[1].last_transition.unwrap().seq, 4);
}

#[test]
fn an_advert_on_one_interface_does_not_touch_the_other() {
    let mut core = two_ifaces();
    run(&mut core, Event::Startup, Instant::ZERO);
    let before = core.snapshot().instances[1].clone();
    // The same VRID, the same family, the right addresses for `b` — but received on eth0.
    let rx = event(
        advert(7, 200, 100, &["10.0.1.100".parse().unwrap()]),
        "10.0.1.2".parse().unwrap(),
        500 * MS,
    );
    run(
        &mut core,
        Event::Advert {
            iface: IfaceId(0),
            rx,
        },
        Instant::from_nanos(500 * MS),
    );
    let snap = core.snapshot();
    assert_eq!(snap.instances[1], before, "b did not hear it");
    assert_eq!(
        snap.instances[0].rx.accepted, 1,
        "a did (address list differs)"
    );
    assert_eq!(snap.instances[0].rx.addr_list_differs, 1);
    // Link down on eth1 faults `b` only.
    let notes = run(
        &mut core,
        Event::Link {
            iface: IfaceId(1),
            up: false,
        },
        Instant::from_nanos(600 * MS),
    );
    let c = changes(&notes);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].instance, c[0].to), (InstanceId(1), State::Fault));
    let snap = core.snapshot();
    assert_eq!(snap.instances[0].state, State::Backup);
    assert!(!snap.ifaces[1].link_up && snap.ifaces[0].link_up);
}

#[test]
fn snapshot_shows_state_master_and_priorities() {
    let mut core = two_ifaces();
    run(&mut core, Event::Startup, Instant::ZERO);
    let rx = event(advert(7, 200, 50, &[v4(100)]), v4(2), 100 * MS);
    run(
        &mut core,
        Event::Advert {
            iface: IfaceId(0),
            rx,
        },
        Instant::from_nanos(100 * MS),
    );
    let a = &core.snapshot().instances[0];
    assert_eq!((a.name.as_str(), a.iface_name.as_str()), ("a", "eth0"));
    assert_eq!(a.state, State::Backup);
    assert_eq!(a.master, Some((v4(2), 200)));
    assert_eq!((a.priority, a.effective_priority), (100, 100));
    assert_eq!(a.advert_interval_cs, 100);
    assert_eq!(
        a.master_adver_interval_cs, 50,
        "learned from the master (v3)"
    );
    assert_eq!(a.primary, v4(1));
    assert!(!a.vips_held);
    assert_eq!(a.rx.accepted, 1);
    // RFC 9568 §6.1 from the learned 50 cs: Skew_Time = (256 - 100) × 0.5 s / 256,
    // Master_Down_Interval = 3 × 0.5 s + Skew_Time.
    assert_eq!(a.skew_time, Duration::from_nanos(304_687_500));
    assert_eq!(a.master_down_interval, Duration::from_nanos(1_804_687_500));
    assert_eq!(
        a.peers,
        vec![Peer {
            addr: v4(2),
            priority: 200,
            interval_cs: 50,
            last_seen: Instant::from_nanos(100 * MS),
            adverts: 1,
        }]
    );
    assert_eq!(
        a.counters,
        InstanceCounters {
            transitions: 1,
            ..Default::default()
        },
        "INIT -> BACKUP only"
    );
    // `b` became master when its timer ran out: it holds its VIPs, no other master.
    let t = core.snapshot().instances[1].next_deadline.unwrap();
    run(&mut core, Event::Timer, t);
    let b = &core.snapshot().instances[1];
    assert_eq!(b.state, State::Master);
    assert_eq!(b.master, None);
    assert!(b.vips_held);
    let tr = b.last_transition.unwrap();
    assert_eq!(
        (tr.to, tr.reason, tr.at),
        (State::Master, Reason::MasterNoResponse, t)
    );
    // One advert and the first GARP burst (garp_master_repeat 5 for one VIP) so far.
    assert_eq!(
        b.counters,
        InstanceCounters {
            transitions: 2,
            became_master: 1,
            left_master: 0,
            adverts_sent: 1,
            advert_send_errors: 0,
            garp_sent: 5,
        }
    );
    assert!(b.peers.is_empty());
}

#[test]
fn peers_are_bounded_and_the_least_recent_is_forgotten() {
    let mut core = two_ifaces();
    run(&mut core, Event::Startup, Instant::ZERO);
    // More sources than MAX_PEERS (a spoofing host): the list stays bounded, and the newest
    // sources are the ones kept.
    let n = MAX_PEERS as u64 + 8;
    for k in 0..n {
        let src: IpAddr = format!("10.0.0.{}", 10 + k).parse().unwrap();
        let at = (k + 1) * MS;
        let rx = event(advert(7, 200, 100, &[v4(100)]), src, at);
        run(
            &mut core,
            Event::Advert {
                iface: IfaceId(0),
                rx,
            },
            Instant::from_nanos(at),
        );
    }
    let peers = &core.snapshot().instances[0].peers;
    assert_eq!(peers.len(), MAX_PEERS);
    assert!(
        !peers
            .iter()
            .any(|p| p.addr == "10.0.0.10".parse::<IpAddr>().unwrap()),
        "the least recent is forgotten"
    );
    assert!(peers
        .iter()
        .any(|p| p.addr == format!("10.0.0.{}", 10 + n - 1).parse::<IpAddr>().unwrap()));
}

#[test]
fn an_instance_on_an_unknown_interface_is_refused() {
    let e = Core::new(
        vec![spec("c", "eth9", 7, 100, "10.0.0.100/24")],
        vec![env("eth0", v4(1))],
    )
    .unwrap_err();
    assert!(e.contains("instance c") && e.contains("eth9"), "{e}");
}

/// One tracker per distinct target across instances (what the edge watches), each instance's
/// trackers and each sync group's state in the snapshot, and a bad tracker id is ignored.
#[test]
fn trackers_are_shared_and_shown_in_the_snapshot() {
    use vrrp_core::{
        config::{CheckInput, SyncGroupInput, TrackTarget},
        Model, TrackerId,
    };
    let mut a = spec("a", "eth0", 1, 150, "192.0.2.100/24");
    let mut b = spec("b", "eth0", 2, 100, "192.0.2.101/24");
    let tr = |t: &str| vrrp_core::config::parse_track("track[0]", t).unwrap();
    a.track = vec![tr("check=web weight=-60"), tr("interface=eth1 weight=-10")];
    b.track = vec![tr("check=web weight=0")];
    let mut c = CheckInput::default();
    c.set_str("name", "web").unwrap();
    c.set_str("tcp", "192.0.2.9:80").unwrap();
    let mut g = SyncGroupInput::default();
    g.set_str("name", "g1").unwrap();
    g.set_list("instances", vec!["a".into(), "b".into()])
        .unwrap();
    let mut core = Core::with_model(
        Model {
            instances: vec![a, b],
            checks: vec![c.build().unwrap()],
            sync_groups: vec![g.build().unwrap()],
        },
        vec![env("eth0", v4(2))],
    )
    .unwrap();
    let t = core.trackers();
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[0].target, TrackTarget::Check("web".into()));
    assert_eq!(t[0].check.as_ref().map(|c| c.name.as_str()), Some("web"));
    assert_eq!(t[1].target, TrackTarget::Interface("eth1".into()));
    assert!(t[1].check.is_none());
    // Every tracker starts down: a at 150 - 60 - 10, b in FAULT (and a with it: one group).
    run(&mut core, Event::Startup, Instant::ZERO);
    let s = core.snapshot();
    assert_eq!(s.instances[0].effective_priority, 80);
    assert_eq!(s.instances[0].trackers.len(), 2);
    assert_eq!(s.instances[0].trackers[0].weight, -60);
    assert!(!s.instances[0].trackers[0].up);
    assert!(s.instances[1].track_fault);
    assert_eq!(s.instances[0].state, State::Fault);
    assert_eq!(s.instances[0].sync_group.as_deref(), Some("g1"));
    assert_eq!(s.groups[0].name, "g1");
    assert_eq!(s.groups[0].state, State::Fault);
    assert_eq!(s.groups[0].members, [InstanceId(0), InstanceId(1)]);
    // The check comes up: both leave FAULT, a at 140.
    let n = run(
        &mut core,
        Event::CheckResult {
            tracker: TrackerId(0),
            ok: true,
        },
        Instant::from_nanos(MS),
    );
    assert!(n
        .iter()
        .any(|n| matches!(n, Notification::TrackerChanged { up: true, .. })));
    assert!(n.iter().any(|n| matches!(
        n,
        Notification::GroupStateChanged {
            from: State::Fault,
            to: State::Backup,
            ..
        }
    )));
    let s = core.snapshot();
    assert_eq!(s.instances[0].effective_priority, 140);
    assert_eq!(s.instances[1].state, State::Backup);
    // Unknown trackers and a value for a non-file tracker change nothing.
    let before = core.snapshot();
    assert!(run(
        &mut core,
        Event::CheckResult {
            tracker: TrackerId(9),
            ok: false
        },
        Instant::from_nanos(2 * MS)
    )
    .is_empty());
    assert!(run(
        &mut core,
        Event::TrackerValue {
            tracker: TrackerId(1),
            value: 5
        },
        Instant::from_nanos(2 * MS)
    )
    .is_empty());
    assert_eq!(core.snapshot(), before);
}

/// One instance on eth0, priority 100, VRID 7, adverts every 1 s: Master_Down_Interval
/// = 3 s + (256 − 100)/256 s = 3609.375 ms.
fn one_backup() -> Core {
    Core::new(
        vec![spec("a", "eth0", 7, 100, "10.0.0.100/24")],
        vec![env("eth0", v4(1))],
    )
    .unwrap()
}

const MDI_NS: u64 = 3_609_375_000;

#[test]
fn startup_listening_runs_master_down_from_when_the_edge_began_listening() {
    let mut core = one_backup();
    // Listening since 1 s; the fast path took 2 s to load: the start is handled at 3 s.
    let since = Instant::from_nanos(1000 * MS);
    let c = changes(&run(
        &mut core,
        Event::StartupListening { since },
        Instant::from_nanos(3000 * MS),
    ));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].to, State::Backup);
    assert_eq!(
        core.poll_timeout(),
        Some(Instant::from_nanos(1000 * MS + MDI_NS)),
        "Master_Down_Timer from `since`, not from the start's handling"
    );
    // No advert heard: master at since + Master_Down_Interval.
    let c = changes(&run(
        &mut core,
        Event::Timer,
        Instant::from_nanos(1000 * MS + MDI_NS),
    ));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].to, State::Master);
}

#[test]
fn an_advert_heard_while_loading_keeps_a_startup_listening_backup() {
    let mut core = one_backup();
    let since = Instant::from_nanos(1000 * MS);
    // The start and the advert heard at 2 s are handled late, after since + MDI (4.6 s).
    let late = Instant::from_nanos(5000 * MS);
    run(&mut core, Event::StartupListening { since }, late);
    let rx = event(advert(7, 200, 100, &[v4(100)]), v4(2), 2000 * MS);
    let c = changes(&run(
        &mut core,
        Event::Advert {
            iface: IfaceId(0),
            rx,
        },
        late,
    ));
    assert!(c.is_empty(), "still Backup: {c:?}");
    assert_eq!(core.snapshot().instances[0].state, State::Backup);
    // The timer now runs from that advert (2 s + the master's 1 s interval × 3 + skew).
    assert_eq!(
        core.poll_timeout(),
        Some(Instant::from_nanos(2000 * MS + MDI_NS))
    );
}

#[test]
fn startup_listening_never_starts_in_the_future() {
    let mut core = one_backup();
    run(
        &mut core,
        Event::StartupListening {
            since: Instant::from_nanos(9000 * MS),
        },
        Instant::from_nanos(1000 * MS),
    );
    assert_eq!(
        core.poll_timeout(),
        Some(Instant::from_nanos(1000 * MS + MDI_NS))
    );
}

// ---- CPU floor (issue 11, wt-rss): poll_wakeup lets adverts due close together share a wake-up ----

/// A lone master's advert waits for nothing: `poll_wakeup` is its deadline.
#[test]
fn a_lone_advert_is_not_delayed() {
    let mut core = one_backup();
    run(&mut core, Event::Startup, Instant::ZERO);
    let mut t = core.poll_timeout().unwrap();
    run(&mut core, Event::Timer, t);
    assert_eq!(core.snapshot().instances[0].state, State::Master);
    for _ in 0..20 {
        assert_eq!(core.poll_wakeup(), core.poll_timeout());
        t = core.poll_timeout().unwrap();
        run(&mut core, Event::Timer, t);
    }
}

/// Two masters on eth0 (VRIDs 7 and 8, adverts every 1 s) whose adverts leave 100 µs apart:
/// waking at `poll_wakeup` sends both in one wake-up, never more than `ADVERT_SLACK` after the
/// first was due; a backup's Master_Down_Timer gets no slack.
#[test]
fn adverts_due_close_together_share_one_wake_up() {
    use vrrp_core::node::ADVERT_SLACK;
    let mut core = Core::new(
        vec![
            spec("a", "eth0", 7, 100, "10.0.0.100/24"),
            spec("b", "eth0", 8, 100, "10.0.0.101/24"),
        ],
        vec![env("eth0", v4(1))],
    )
    .unwrap();
    run(&mut core, Event::Startup, Instant::ZERO);
    // Backups: the wake-up is the exact Master_Down deadline.
    assert_eq!(core.poll_wakeup(), core.poll_timeout());
    assert_eq!(core.poll_timeout(), Some(Instant::from_nanos(MDI_NS)));
    let mut wakeups_with_adverts = Vec::new();
    for _ in 0..200 {
        let (Some(due), Some(wake)) = (core.poll_timeout(), core.poll_wakeup()) else {
            break;
        };
        if wake.as_nanos() > 10_000 * MS {
            break;
        }
        assert!(wake >= due, "woken before anything is due");
        assert!(
            wake.as_nanos() - due.as_nanos() <= ADVERT_SLACK.as_nanos() as u64,
            "an advert waits more than ADVERT_SLACK"
        );
        core.handle(Event::Timer, wake);
        let mut sent = Vec::new();
        while let Some(c) = core.poll_command() {
            let report = match &c {
                Command::Claim { .. } => Some(Report::Claimed),
                Command::Release { .. } => Some(Report::Released),
                Command::SendFrame {
                    instance,
                    advert: true,
                    ..
                } => {
                    // b's advert leaves 100 µs after a's.
                    let at = Instant::from_nanos(wake.as_nanos() + instance.0 as u64 * 100_000);
                    core.handle(
                        Event::AdvertSent {
                            instance: *instance,
                            at,
                        },
                        at,
                    );
                    sent.push(instance.0);
                    None
                }
                _ => None,
            };
            if let (Some(report), Some(instance)) = (report, c.instance()) {
                core.handle(Event::Report { instance, report }, wake);
            }
        }
        if !sent.is_empty() {
            wakeups_with_adverts.push(sent);
        }
    }
    // Both became master at once, then one advert of each per second, always together.
    assert!(wakeups_with_adverts.len() >= 6, "{wakeups_with_adverts:?}");
    for sent in &wakeups_with_adverts {
        assert_eq!(sent, &vec![0, 1], "{wakeups_with_adverts:?}");
    }
}
