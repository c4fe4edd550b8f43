//! Property tests: arbitrary input sequences never panic and keep the state machine's
//! invariants (see `check`).
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use proptest::prelude::*;
use vrrp_core::fsm::{
    centis, Action, Config, Input, Instant, RxAdvert, State, Version, VirtualRouter,
};

const VRID: u8 = 42;

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
}

#[derive(Debug, Clone)]
enum Op {
    Startup,
    Shutdown,
    Advert {
        priority: u8,
        from: u8,
        interval_cs: u16,
        other_vrid: bool,
    },
    /// Deliver the timer exactly when due (if armed).
    TimerWhenDue,
    /// A spurious timer wake-up at the current time.
    TimerNow,
    PriorityChanged(u8),
    LinkDown,
    LinkUp,
    TrackFault(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Startup),
        1 => Just(Op::Shutdown),
        8 => (any::<u8>(), 1u8..=6, 1u16..=4095, prop::bool::weighted(0.1)).prop_map(
            |(priority, from, interval_cs, other_vrid)| Op::Advert { priority, from, interval_cs, other_vrid }
        ),
        6 => Just(Op::TimerWhenDue),
        2 => Just(Op::TimerNow),
        1 => any::<u8>().prop_map(Op::PriorityChanged),
        1 => Just(Op::LinkDown),
        1 => Just(Op::LinkUp),
        1 => any::<bool>().prop_map(Op::TrackFault),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        1u8..=255,
        1u8..=6,
        any::<bool>(),
        1u16..=4095,
        1u16..=255,
        any::<bool>(),
        0u64..=5_000,
        any::<bool>(),
    )
        .prop_map(|(priority, me, v3, cs, secs, preempt, delay_ms, accept)| {
            let mut c = Config::new(VRID, priority, ip(me), vec![ip(100)]);
            if v3 {
                c.advert_interval_cs = cs;
            } else {
                c.version = Version::V2;
                c.advert_interval_cs = secs * 100;
            }
            c.preempt = preempt;
            c.preempt_delay = Duration::from_millis(delay_ms);
            c.accept_mode = accept;
            c
        })
}

/// What the I/O layer would believe after applying the actions so far.
#[derive(Default)]
struct Io {
    owns_vips: bool,
    timer: Option<Instant>,
}

fn check(
    vr: &VirtualRouter,
    before: State,
    acts: &[Action],
    io: &mut Io,
    now: Instant,
) -> Result<(), TestCaseError> {
    let cfg = vr.config();
    let mut transitions = 0;
    for a in acts {
        match a {
            Action::SendAdvert {
                priority,
                interval_cs,
            } => {
                prop_assert_eq!(*interval_cs, cfg.advert_interval_cs);
                if *priority == 0 {
                    prop_assert_eq!(before, State::Master, "priority 0 only when leaving Master");
                } else {
                    prop_assert_eq!(*priority, vr.priority());
                    prop_assert_eq!(vr.state(), State::Master, "only a master advertises");
                }
            }
            Action::BecomeMaster { accept } => {
                prop_assert_eq!(*accept, cfg.is_owner() || cfg.accept_mode);
                io.owns_vips = true;
            }
            Action::Release => io.owns_vips = false,
            Action::StateChanged { from, to, .. } => {
                transitions += 1;
                prop_assert_eq!(*from, before);
                prop_assert_eq!(*to, vr.state());
                prop_assert_ne!(from, to);
            }
            Action::ArmTimer { at } => {
                io.timer = Some(*at);
                match vr.state() {
                    State::Master => prop_assert_eq!(*at, now + centis(cfg.advert_interval_cs)),
                    State::Backup => prop_assert!(
                        *at == now + vr.master_down_interval() || *at == now + vr.skew_time(),
                        "backup timer is Master_Down_Interval or Skew_Time from now"
                    ),
                    s => prop_assert!(false, "timer armed in {:?}", s),
                }
            }
            Action::CancelTimer => io.timer = None,
        }
    }
    prop_assert!(transitions <= 1);
    if transitions == 0 {
        prop_assert_eq!(before, vr.state(), "silent state change");
    }
    // The I/O view matches the state machine.
    prop_assert_eq!(io.timer, vr.next_deadline());
    prop_assert_eq!(io.owns_vips, vr.state() == State::Master);
    match vr.state() {
        State::Master => {
            prop_assert!(
                vr.next_deadline().is_some(),
                "a Master has an adver deadline"
            );
            prop_assert!(!vr.is_faulted());
        }
        State::Backup => {
            prop_assert!(
                vr.next_deadline().is_some(),
                "a Backup has a master-down deadline"
            );
            prop_assert!(!vr.is_faulted());
        }
        State::Initialize | State::Fault => prop_assert_eq!(vr.next_deadline(), None),
    }
    if vr.accepts_vip_traffic() {
        prop_assert_eq!(vr.state(), State::Master);
    }
    prop_assert!(vr.priority() >= 1);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_keep_invariants(
        cfg in config(),
        ops in prop::collection::vec((op(), 0u64..3_000_000_000), 1..80),
    ) {
        let mut vr = VirtualRouter::new(cfg.clone()).unwrap();
        let mut io = Io::default();
        let mut now = Instant::ZERO;
        for (op, dt) in ops {
            now = now + Duration::from_nanos(dt);
            let input = match op {
                Op::Startup => Input::Startup,
                Op::Shutdown => Input::Shutdown,
                Op::Advert { priority, from, interval_cs, other_vrid } => Input::Advert(RxAdvert {
                    version: cfg.version,
                    vrid: if other_vrid { VRID ^ 1 } else { VRID },
                    priority,
                    max_adver_int_cs: if cfg.version == Version::V3 { interval_cs } else { cfg.advert_interval_cs },
                    src: ip(from),
                    addrs: vec![ip(100)],
                    rx_time: None,
                }),
                Op::TimerWhenDue => {
                    if let Some(d) = vr.next_deadline() {
                        now = now.max(d);
                    }
                    Input::Timer
                }
                Op::TimerNow => Input::Timer,
                Op::PriorityChanged(p) => Input::PriorityChanged { priority: p },
                Op::LinkDown => Input::LinkDown,
                Op::LinkUp => Input::LinkUp,
                Op::TrackFault(on) => Input::TrackFault { on },
            };
            let other_vrid = matches!(&input, Input::Advert(a) if a.vrid != VRID);
            let before = (vr.state(), vr.next_deadline(), vr.master_adver_interval_cs());
            let acts = vr.handle(input, now);
            if other_vrid {
                prop_assert!(acts.is_empty());
                prop_assert_eq!(before, (vr.state(), vr.next_deadline(), vr.master_adver_interval_cs()));
            }
            check(&vr, before.0, &acts, &mut io, now)?;
        }
    }

    /// Two routers wired back to back with instant delivery always end with exactly one
    /// master, the higher-priority one.
    #[test]
    fn two_routers_elect_the_right_master(p1 in 1u8..=254, p2 in 1u8..=254, cs in 1u16..=300, stagger in 0u64..5_000_000_000) {
        let mk = |p, me| {
            let mut c = Config::new(VRID, p, ip(me), vec![ip(100)]);
            c.advert_interval_cs = cs;
            VirtualRouter::new(c).unwrap()
        };
        let mut r = [mk(p1, 1), mk(p2, 2)];
        let mut pending: Vec<(usize, Input, Instant)> = vec![
            (0, Input::Startup, Instant::ZERO),
            (1, Input::Startup, Instant::from_nanos(stagger)),
        ];
        let end = Instant::from_nanos(stagger) + centis(cs) * 20;
        let mut now = Instant::ZERO;
        while now < end {
            // next event: pending input or earliest timer
            let timer = (0..2).filter_map(|i| r[i].next_deadline().map(|d| (d, i))).min();
            let input = pending.iter().enumerate().min_by_key(|(_, p)| p.2).map(|(k, p)| (p.2, k));
            let (i, inp) = match (timer, input) {
                (Some((d, i)), Some((t, _))) if d < t => { now = d; (i, Input::Timer) }
                (_, Some((t, k))) => { now = t; let (i, inp, _) = pending.remove(k); (i, inp) }
                (Some((d, i)), None) => { now = d; (i, Input::Timer) }
                (None, None) => break,
            };
            for a in r[i].handle(inp, now) {
                if let Action::SendAdvert { priority, interval_cs } = a {
                    pending.push((1 - i, Input::Advert(RxAdvert {
                        version: Version::V3, vrid: VRID, priority, max_adver_int_cs: interval_cs,
                        src: ip(i as u8 + 1), addrs: vec![ip(100)],
                        rx_time: None,
                    }), now));
                }
            }
        }
        let masters: Vec<usize> = (0..2).filter(|&i| r[i].state() == State::Master).collect();
        prop_assert_eq!(masters.len(), 1);
        if p1 != p2 {
            prop_assert_eq!(masters[0], if p2 > p1 { 1 } else { 0 });
        }
        // On a tie either may win: a Backup accepts an equal-priority master (RFC 9568 §6.4.2);
        // the address tie-break only settles two simultaneous masters (see tests/sim.rs).
    }
}
