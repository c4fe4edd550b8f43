//! One named test per RFC 9568 §6.4 rule (RFC 3768 §6.4 where v2 differs), plus timers,
//! preempt_delay, Accept_Mode, Fault, defensive filtering and config validation. Every test
//! runs on a simulated clock (`Instant` values chosen by the test).
//!
//! | Rule (RFC 9568 unless noted)                                             | Test |
//! |---------------------------------------------------------------------------|------|
//! | §6.4.1 Startup, Priority = 255: send advert, GARP/NA, Adver_Timer, Master | `rule_6_4_1_owner_goes_master_at_startup` |
//! | §6.4.1 Startup, else: Master_Adver_Interval := Advertisement_Interval, Master_Down_Timer := Master_Down_Interval, Backup | `rule_6_4_1_non_owner_goes_backup_with_master_down_interval` |
//! | §6.4.1 only Startup leaves Initialize (adverts / timers ignored)           | `rule_6_4_1_initialize_ignores_adverts_and_timers` |
//! | §6.4.2 Shutdown: cancel Master_Down_Timer, Initialize                     | `rule_6_4_2_backup_shutdown_cancels_timer` |
//! | §6.4.2 Master_Down_Timer fires: send advert, GARP/NA, Adver_Timer, Master | `rule_6_4_2_master_down_timer_fires_becomes_master` |
//! | §6.4.2 advert priority 0: Master_Down_Timer := Skew_Time                  | `rule_6_4_2_backup_priority_zero_sets_skew_time` |
//! | §6.4.2 a Backup's timers run from the advert's receive time (`RxAdvert::rx_time`), not from when it is handled | `backup_timers_run_from_the_receive_time` |
//! | §6.4.2 Preempt_Mode false or priority ≥ local: learn interval, recompute, reset Master_Down_Timer | `rule_6_4_2_backup_higher_priority_resets_master_down_timer`, `rule_6_4_2_backup_equal_priority_resets_timer_without_tie_break`, `rule_6_4_2_backup_learns_master_adver_interval`, `rule_6_4_2_backup_preempt_off_accepts_lower_priority` |
//! | §6.4.2 else (preempt, lower priority): discard                            | `rule_6_4_2_backup_lower_priority_discarded_then_preempts` |
//! | §6.4.3 Shutdown: cancel Adver_Timer, send priority 0, Initialize          | `rule_6_4_3_master_shutdown_sends_priority_zero` |
//! | §6.4.3 Adver_Timer fires: send advert, reset Adver_Timer                  | `rule_6_4_3_adver_timer_fires_sends_and_rearms` |
//! | §6.4.3 Adver_Timer restarts after each send: from the time the timer is handled, and from the time the I/O layer reports the advert left (`Input::AdvertSent`, only ever later) | `rule_6_4_3_adver_timer_runs_from_the_send_not_the_due_time`, `advert_sent_restarts_adver_timer_from_the_actual_send` |
//! | an advert the kernel had no room for (`Input::AdvertNotSent`) is sent again 1 ms later (a quarter interval if shorter), at most 3 times in a row | `advert_not_sent_is_sent_again_soon_a_bounded_number_of_times` |
//! | §6.4.3 advert priority 0: send advert, reset Adver_Timer (at most once per Advertisement_Interval) | `rule_6_4_3_master_priority_zero_advertises_at_once`, `priority_zero_flood_is_answered_once_per_interval` |
//! | §6.4.3 higher priority: cancel Adver_Timer, learn interval, Master_Down_Timer, Backup | `rule_6_4_3_master_higher_priority_goes_backup` |
//! | §6.4.3 equal priority, larger primary address (unsigned, network order): Backup | `rule_6_4_3_master_equal_priority_larger_address_goes_backup`, `rule_6_4_3_address_compare_is_unsigned_network_order_v4`, `rule_6_4_3_address_compare_is_unsigned_network_order_v6` |
//! | §6.4.3 else (lower, or equal from smaller address): discard, send advert at once and reset Adver_Timer (a send); at most one such answer per Advertisement_Interval, so a flood never makes more than two adverts per interval | `rule_6_4_3_master_lower_priority_discards_and_reasserts`, `rule_6_4_3_master_equal_priority_smaller_address_stays`, `reassertion_is_bounded_to_one_per_interval_whatever_the_flood` |
//! | keepalived lower_prio_no_advert: a Master only discards lower-priority adverts (priority 0 is still answered) | `lower_prio_no_advert_discards_without_answering` |
//! | RFC 3768 §6.4.3 v2 lower priority: discard only                           | `rfc3768_6_4_3_v2_master_lower_priority_only_discards` |
//! | RFC 3768 §6.1 v2 timers: skew (256−p)/256 s, 3 × Advertisement_Interval + skew, no learning | `rfc3768_v2_timer_formulas`, `rfc3768_v2_backup_does_not_learn_interval` |
//! | §6.1 v3 Skew_Time / Master_Down_Interval                                 | `rule_6_1_v3_timer_formulas_over_priorities_and_intervals` |
//! | keepalived preempt_delay                                                  | `preempt_delay_tolerates_lower_master_after_startup`, `preempt_delay_restarts_after_seeing_higher_master`, `preempt_delay_does_not_slow_failover`, `preempt_delay_restarts_after_fault` |
//! | §6.1 Accept_Mode                                                          | `accept_mode_non_owner_master_accepts`, `accept_mode_off_non_owner_master_does_not_accept`, `accept_mode_owner_always_accepts` |
//! | Fault state                                                               | `fault_link_down_in_master_releases_without_advert`, `fault_tracked_in_master_sends_priority_zero`, `fault_claim_failed_in_master_sends_priority_zero_and_releases`, `fault_ignores_adverts_and_timers`, `fault_clear_restarts_startup_rules`, `fault_before_startup`, `fault_shutdown_goes_initialize` |
//! | other VRID / version / family ignored                                     | `other_vrid_advert_ignored_in_every_state`, `mismatched_version_or_family_ignored` |
//! | effective priority change                                                 | `priority_change_in_master_advertises_now`, `priority_change_in_backup_changes_skew` |
//! | timer plumbing                                                            | `early_timer_is_noop`, `arm_timer_always_matches_next_deadline` |
//! | config validation                                                         | `config_*` |
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use vrrp_core::fsm::{
    centis, Action, Config, ConfigError, Input, Instant, Reason, RxAdvert, State, Version,
    VirtualRouter,
};

const VRID: u8 = 7;

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
}

fn vip() -> IpAddr {
    ip(254)
}

fn cfg(priority: u8, me: u8) -> Config {
    Config::new(VRID, priority, ip(me), vec![vip()])
}

fn at_ms(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn adv(priority: u8, from: u8, interval_cs: u16) -> Input {
    Input::Advert(RxAdvert {
        version: Version::V3,
        vrid: VRID,
        priority,
        max_adver_int_cs: interval_cs,
        src: ip(from),
        addrs: vec![vip()],
        rx_time: None,
    })
}

/// The timer the actions armed, if they armed one.
fn armed(acts: &[Action]) -> Option<Instant> {
    acts.iter().rev().find_map(|a| match a {
        Action::ArmTimer { at } => Some(*at),
        _ => None,
    })
}

fn sent(acts: &[Action]) -> Vec<u8> {
    acts.iter()
        .filter_map(|a| match a {
            Action::SendAdvert { priority, .. } => Some(*priority),
            _ => None,
        })
        .collect()
}

fn changed(acts: &[Action]) -> Option<(State, State, Reason)> {
    acts.iter().find_map(|a| match a {
        Action::StateChanged { from, to, reason } => Some((*from, *to, *reason)),
        _ => None,
    })
}

/// RFC 9568 §6.1 formula, written out independently of the crate (nanoseconds).
fn mdi_ns(priority: u64, interval_cs: u64) -> u64 {
    3 * interval_cs * 10_000_000 + (256 - priority) * interval_cs * 10_000_000 / 256
}

fn skew_ns(priority: u64, interval_cs: u64) -> u64 {
    (256 - priority) * interval_cs * 10_000_000 / 256
}

fn started(c: Config, now: Instant) -> VirtualRouter {
    let mut vr = VirtualRouter::new(c).unwrap();
    vr.handle(Input::Startup, now);
    vr
}

/// A router that has become Master through its Master_Down_Timer at the returned time.
fn master(c: Config) -> (VirtualRouter, Instant) {
    let mut vr = started(c, Instant::ZERO);
    let t = vr.next_deadline().unwrap();
    vr.handle(Input::Timer, t);
    assert_eq!(vr.state(), State::Master);
    (vr, t)
}

// ---------------------------------------------------------------- §6.4.1 Initialize

#[test]
fn rule_6_4_1_owner_goes_master_at_startup() {
    let mut c = cfg(255, 1);
    c.vips = vec![ip(1)];
    c.advert_interval_cs = 37;
    let mut vr = VirtualRouter::new(c).unwrap();
    let acts = vr.handle(Input::Startup, at_ms(5));
    assert_eq!(vr.state(), State::Master);
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                priority: 255,
                interval_cs: 37
            },
            Action::BecomeMaster { accept: true },
            Action::StateChanged {
                from: State::Initialize,
                to: State::Master,
                reason: Reason::AddressOwner
            },
            Action::ArmTimer { at: at_ms(5 + 370) },
        ]
    );
}

#[test]
fn rule_6_4_1_non_owner_goes_backup_with_master_down_interval() {
    for (prio, interval) in [(100u8, 100u16), (254, 1), (1, 4095), (200, 7)] {
        let mut c = cfg(prio, 1);
        c.advert_interval_cs = interval;
        let mut vr = VirtualRouter::new(c).unwrap();
        let acts = vr.handle(Input::Startup, at_ms(10));
        assert_eq!(vr.state(), State::Backup);
        assert!(sent(&acts).is_empty(), "a backup does not advertise");
        assert!(!acts
            .iter()
            .any(|a| matches!(a, Action::BecomeMaster { .. })));
        assert_eq!(vr.master_adver_interval_cs(), interval);
        assert_eq!(
            armed(&acts),
            Some(Instant::from_nanos(
                10_000_000 + mdi_ns(prio as u64, interval as u64)
            ))
        );
        assert_eq!(
            changed(&acts),
            Some((State::Initialize, State::Backup, Reason::Startup))
        );
    }
}

#[test]
fn rule_6_4_1_initialize_ignores_adverts_and_timers() {
    let mut vr = VirtualRouter::new(cfg(100, 1)).unwrap();
    assert!(vr.handle(adv(200, 2, 100), at_ms(1)).is_empty());
    assert!(vr.handle(adv(0, 2, 100), at_ms(2)).is_empty());
    assert!(vr.handle(Input::Timer, at_ms(10_000)).is_empty());
    assert_eq!(vr.state(), State::Initialize);
    assert_eq!(vr.next_deadline(), None);
}

// ---------------------------------------------------------------- §6.4.2 Backup

#[test]
fn rule_6_4_2_backup_shutdown_cancels_timer() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    let acts = vr.handle(Input::Shutdown, at_ms(50));
    assert_eq!(vr.state(), State::Initialize);
    assert_eq!(vr.next_deadline(), None);
    assert!(sent(&acts).is_empty(), "a backup sends nothing on shutdown");
    assert_eq!(acts.last(), Some(&Action::CancelTimer));
    assert_eq!(
        changed(&acts),
        Some((State::Backup, State::Initialize, Reason::Shutdown))
    );
}

#[test]
fn rule_6_4_2_master_down_timer_fires_becomes_master() {
    let mut c = cfg(100, 1);
    c.advert_interval_cs = 20;
    let mut vr = started(c, Instant::ZERO);
    let due = vr.next_deadline().unwrap();
    assert_eq!(due.as_nanos(), mdi_ns(100, 20));
    let acts = vr.handle(Input::Timer, due);
    assert_eq!(vr.state(), State::Master);
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                priority: 100,
                interval_cs: 20
            },
            Action::BecomeMaster { accept: false },
            Action::StateChanged {
                from: State::Backup,
                to: State::Master,
                reason: Reason::MasterNoResponse
            },
            Action::ArmTimer {
                at: due + centis(20)
            },
        ]
    );
}

#[test]
fn rule_6_4_2_backup_priority_zero_sets_skew_time() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    vr.handle(adv(200, 2, 50), at_ms(100)); // learn 50 cs from the master
    let acts = vr.handle(adv(0, 2, 50), at_ms(200));
    assert_eq!(vr.state(), State::Backup);
    let due = armed(&acts).expect("timer re-armed");
    assert_eq!(due.as_nanos(), 200_000_000 + skew_ns(100, 50));
    let acts = vr.handle(Input::Timer, due);
    assert_eq!(
        changed(&acts),
        Some((State::Backup, State::Master, Reason::MasterPriorityZero))
    );
}

#[test]
fn rule_6_4_2_backup_higher_priority_resets_master_down_timer() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    let acts = vr.handle(adv(150, 2, 100), at_ms(2000));
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        2_000_000_000 + mdi_ns(100, 100)
    );
    // The old deadline passes without effect.
    assert!(vr
        .handle(Input::Timer, Instant::from_nanos(mdi_ns(100, 100)))
        .is_empty());
    assert_eq!(vr.state(), State::Backup);
    assert_eq!(vr.master_addr(), Some(ip(2)));
}

#[test]
fn rule_6_4_2_backup_equal_priority_resets_timer_without_tie_break() {
    // Backup has the larger address, but Backup never tie-breaks: ≥ local is enough.
    let mut vr = started(cfg(100, 9), Instant::ZERO);
    let acts = vr.handle(adv(100, 2, 100), at_ms(1000));
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        1_000_000_000 + mdi_ns(100, 100)
    );
    assert_eq!(vr.state(), State::Backup);
}

#[test]
fn rule_6_4_2_backup_learns_master_adver_interval() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    assert_eq!(vr.master_adver_interval_cs(), 100);
    let acts = vr.handle(adv(200, 2, 25), at_ms(10));
    assert_eq!(vr.master_adver_interval_cs(), 25);
    assert_eq!(vr.skew_time(), Duration::from_nanos(skew_ns(100, 25)));
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        10_000_000 + mdi_ns(100, 25)
    );
    // and again when the master changes its interval
    vr.handle(adv(200, 2, 300), at_ms(20));
    assert_eq!(vr.master_adver_interval_cs(), 300);
    assert_eq!(
        vr.next_deadline().unwrap().as_nanos(),
        20_000_000 + mdi_ns(100, 300)
    );
}

#[test]
fn rule_6_4_2_backup_preempt_off_accepts_lower_priority() {
    let mut c = cfg(200, 1);
    c.preempt = false;
    let mut vr = started(c, Instant::ZERO);
    let mut now = Duration::ZERO;
    for _ in 0..20 {
        now += Duration::from_secs(1);
        let acts = vr.handle(adv(50, 2, 100), Instant::ZERO + now);
        assert_eq!(
            armed(&acts).unwrap().as_nanos(),
            now.as_nanos() as u64 + mdi_ns(200, 100)
        );
        vr.handle(Input::Timer, Instant::ZERO + now); // not due: no effect
    }
    assert_eq!(vr.state(), State::Backup);
}

#[test]
fn rule_6_4_2_backup_lower_priority_discarded_then_preempts() {
    let mut vr = started(cfg(200, 1), Instant::ZERO);
    let first = vr.next_deadline().unwrap();
    // A lower-priority master keeps advertising (with a different interval): discarded,
    // neither the timer nor Master_Adver_Interval move.
    for s in 1..=3u64 {
        let acts = vr.handle(adv(100, 2, 50), at_ms(s * 1000));
        assert!(acts.is_empty(), "{acts:?}");
        assert_eq!(vr.next_deadline(), Some(first));
        assert_eq!(vr.master_adver_interval_cs(), 100);
    }
    let acts = vr.handle(Input::Timer, first);
    assert_eq!(vr.state(), State::Master);
    assert_eq!(
        changed(&acts),
        Some((State::Backup, State::Master, Reason::Preempted))
    );
}

// ---------------------------------------------------------------- §6.4.3 Master

#[test]
fn rule_6_4_3_master_shutdown_sends_priority_zero() {
    let (mut vr, t) = master(cfg(100, 1));
    let acts = vr.handle(Input::Shutdown, t + Duration::from_millis(3));
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                priority: 0,
                interval_cs: 100
            },
            Action::Release,
            Action::StateChanged {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            },
            Action::CancelTimer,
        ]
    );
    assert_eq!(vr.next_deadline(), None);
    // nothing more happens
    assert!(vr.handle(Input::Timer, t + centis(100)).is_empty());
}

#[test]
fn rule_6_4_3_adver_timer_fires_sends_and_rearms() {
    let mut c = cfg(100, 1);
    c.advert_interval_cs = 3;
    let (mut vr, t) = master(c);
    let mut due = vr.next_deadline().unwrap();
    assert_eq!(due, t + centis(3));
    for _ in 0..5 {
        let acts = vr.handle(Input::Timer, due);
        assert_eq!(
            acts,
            vec![
                Action::SendAdvert {
                    priority: 100,
                    interval_cs: 3
                },
                Action::ArmTimer {
                    at: due + centis(3)
                }
            ]
        );
        due = due + centis(3);
    }
}

#[test]
fn rule_6_4_3_master_priority_zero_advertises_at_once() {
    let (mut vr, t) = master(cfg(100, 1));
    let now = t + Duration::from_millis(400);
    let acts = vr.handle(adv(0, 2, 100), now);
    assert_eq!(sent(&acts), vec![100]);
    assert_eq!(armed(&acts), Some(now + centis(100)));
    assert_eq!(vr.state(), State::Master);
}

#[test]
fn rule_6_4_3_master_higher_priority_goes_backup() {
    let (mut vr, t) = master(cfg(100, 1));
    let now = t + Duration::from_millis(10);
    let acts = vr.handle(adv(101, 2, 40), now);
    assert_eq!(vr.state(), State::Backup);
    assert!(sent(&acts).is_empty());
    assert!(acts.contains(&Action::Release));
    assert_eq!(
        changed(&acts),
        Some((State::Master, State::Backup, Reason::HigherPriorityAdvert))
    );
    assert_eq!(vr.master_adver_interval_cs(), 40);
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        now.as_nanos() + mdi_ns(100, 40)
    );
}

#[test]
fn rule_6_4_3_master_equal_priority_larger_address_goes_backup() {
    let (mut vr, t) = master(cfg(100, 5));
    let acts = vr.handle(adv(100, 6, 100), t);
    assert_eq!(vr.state(), State::Backup);
    assert_eq!(
        changed(&acts),
        Some((State::Master, State::Backup, Reason::HigherPriorityAdvert))
    );
}

#[test]
fn rule_6_4_3_master_equal_priority_smaller_address_stays() {
    let (mut vr, t) = master(cfg(100, 5));
    let now = t + Duration::from_millis(1);
    let acts = vr.handle(adv(100, 4, 100), now);
    assert_eq!(vr.state(), State::Master);
    assert_eq!(sent(&acts), vec![100], "re-asserts Master");
    assert_eq!(vr.next_deadline(), Some(now + centis(100)), "a send");
}

#[test]
fn rule_6_4_3_address_compare_is_unsigned_network_order_v4() {
    // 10.0.0.128 > 10.0.0.127 and 200.0.0.1 > 10.0.0.200 (a signed or host-order compare errs)
    for (mine, theirs) in [
        ([10, 0, 0, 127], [10, 0, 0, 128]),
        ([10, 0, 0, 200], [200, 0, 0, 1]),
        ([1, 2, 3, 255], [1, 2, 4, 0]),
    ] {
        let me = IpAddr::V4(Ipv4Addr::from(mine));
        let them = IpAddr::V4(Ipv4Addr::from(theirs));
        // larger sender wins
        let (mut vr, t) = master(Config::new(VRID, 100, me, vec![vip()]));
        let mut a = RxAdvert {
            version: Version::V3,
            vrid: VRID,
            priority: 100,
            max_adver_int_cs: 100,
            src: them,
            addrs: vec![vip()],
            rx_time: None,
        };
        vr.handle(Input::Advert(a.clone()), t);
        assert_eq!(vr.state(), State::Backup, "{them} > {me}");
        // smaller sender loses
        let (mut vr, t) = master(Config::new(VRID, 100, them, vec![vip()]));
        a.src = me;
        vr.handle(Input::Advert(a), t);
        assert_eq!(vr.state(), State::Master, "{me} < {them}");
    }
}

#[test]
fn rule_6_4_3_address_compare_is_unsigned_network_order_v6() {
    let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
    let (me, them) = (v6("fe80::7f"), v6("fe80::80"));
    let vips = vec![v6("fe80::1:1"), v6("2001:db8::1")];
    let (mut vr, t) = master(Config::new(VRID, 100, me, vips.clone()));
    let a = RxAdvert {
        version: Version::V3,
        vrid: VRID,
        priority: 100,
        max_adver_int_cs: 100,
        src: them,
        addrs: vips.clone(),
        rx_time: None,
    };
    vr.handle(Input::Advert(a.clone()), t);
    assert_eq!(vr.state(), State::Backup);
    let (mut vr, t) = master(Config::new(VRID, 100, them, vips));
    vr.handle(Input::Advert(RxAdvert { src: me, ..a }), t);
    assert_eq!(vr.state(), State::Master);
}

#[test]
fn rule_6_4_3_master_lower_priority_discards_and_reasserts() {
    let (mut vr, t) = master(cfg(100, 1));
    let now = t + Duration::from_millis(7);
    let acts = vr.handle(adv(99, 2, 10), now);
    // The answer is a send, and Adver_Timer restarts after each send (§6.4.3): the next
    // advert follows one Advertisement_Interval after this one, not earlier.
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                priority: 100,
                interval_cs: 100
            },
            Action::ArmTimer {
                at: now + centis(100)
            }
        ]
    );
    assert_eq!(vr.state(), State::Master);
    assert_eq!(vr.master_adver_interval_cs(), 100, "advert discarded");
}

/// Issue 7 item 7: a master answered every lower-priority advert (a 30 kpps spoof became
/// 60 kpps). Now at most one answer per Advertisement_Interval, and since an answer restarts
/// Adver_Timer, at most two adverts in any interval whatever the flood rate.
#[test]
fn reassertion_is_bounded_to_one_per_interval_whatever_the_flood() {
    let mut c = cfg(200, 1);
    c.advert_interval_cs = 1;
    let (mut vr, t0) = master(c);
    let interval = centis(1);
    let mut sends = vec![t0];
    let mut t = t0;
    // 1 kpps of priority-100 adverts for 1 s, the Adver_Timer handled whenever due.
    for _ in 0..1000 {
        t = t + Duration::from_millis(1);
        if vr.next_deadline().is_some_and(|d| d <= t)
            && !sent(&vr.handle(Input::Timer, t)).is_empty()
        {
            sends.push(t);
        }
        let acts = vr.handle(adv(100, 2, 1), t);
        if !sent(&acts).is_empty() {
            sends.push(t);
        }
        assert_eq!(vr.state(), State::Master);
    }
    let answers = sends.len();
    for w in sends.windows(3) {
        assert!(
            w[2] - w[0] >= interval,
            "three adverts within one interval: {w:?}"
        );
    }
    // Without the bound there would be ~1000 answers; with it at most two per interval.
    assert!(answers <= 2 * 100 + 2, "{answers} adverts in 100 intervals");
    assert!(answers >= 100, "{answers}: still at least one per interval");
}

#[test]
fn lower_prio_no_advert_discards_without_answering() {
    let mut c = cfg(200, 1);
    c.lower_prio_no_advert = true;
    let (mut vr, t) = master(c);
    let due = vr.next_deadline();
    for k in 1..=50u64 {
        assert!(vr
            .handle(adv(100, 2, 100), t + Duration::from_millis(k))
            .is_empty());
        assert!(vr
            .handle(adv(200, 0, 100), t + Duration::from_millis(k))
            .is_empty());
    }
    assert_eq!(vr.next_deadline(), due, "no send, no timer change");
    assert_eq!(vr.state(), State::Master);
    // A departing master's priority 0 is still answered, and higher priority still wins.
    assert_eq!(
        sent(&vr.handle(adv(0, 2, 100), t + Duration::from_millis(60))),
        vec![200]
    );
    vr.handle(adv(201, 2, 100), t + Duration::from_millis(70));
    assert_eq!(vr.state(), State::Backup);
}

#[test]
fn priority_zero_flood_is_answered_once_per_interval() {
    let (mut vr, t) = master(cfg(100, 1));
    let mut answers = 0;
    for k in 0..100u64 {
        let acts = vr.handle(adv(0, 2, 100), t + Duration::from_millis(10 * k));
        answers += sent(&acts).len();
    }
    // 100 adverts over 1 s (one Advertisement_Interval): one answer.
    assert_eq!(answers, 1);
    let acts = vr.handle(adv(0, 2, 100), t + Duration::from_millis(1000));
    assert_eq!(sent(&acts), vec![100], "the next interval");
}

#[test]
fn rule_6_4_3_adver_timer_runs_from_the_send_not_the_due_time() {
    let mut c = cfg(100, 1);
    c.advert_interval_cs = 1;
    let (mut vr, t) = master(c);
    let due = vr.next_deadline().unwrap();
    assert_eq!(due, t + Duration::from_millis(10));
    // Handled 2 ms late: the advert leaves at 12 ms, the next one is due at 22 ms.
    let late = due + Duration::from_millis(2);
    let acts = vr.handle(Input::Timer, late);
    assert_eq!(sent(&acts), vec![100]);
    assert_eq!(armed(&acts), Some(late + Duration::from_millis(10)));
}

#[test]
fn advert_sent_restarts_adver_timer_from_the_actual_send() {
    let mut c = cfg(100, 1);
    c.advert_interval_cs = 1;
    let (mut vr, t) = master(c);
    let due = vr.next_deadline().unwrap();
    vr.handle(Input::Timer, due);
    assert_eq!(vr.next_deadline(), Some(due + Duration::from_millis(10)));
    // The I/O layer was preempted: the advert left 1.5 ms after it was handled.
    let left = due + Duration::from_micros(1500);
    let acts = vr.handle(Input::AdvertSent, left);
    assert_eq!(
        acts,
        vec![Action::ArmTimer {
            at: left + Duration::from_millis(10)
        }]
    );
    // A report of an earlier send never moves it back.
    assert!(vr.handle(Input::AdvertSent, due).is_empty());
    assert_eq!(vr.next_deadline(), Some(left + Duration::from_millis(10)));
    // Outside Master it means nothing.
    let mut b = started(cfg(100, 1), Instant::ZERO);
    let d = b.next_deadline();
    assert!(b.handle(Input::AdvertSent, at_ms(5)).is_empty());
    assert_eq!(b.next_deadline(), d);
    let _ = t;
}

#[test]
fn advert_not_sent_is_sent_again_soon_a_bounded_number_of_times() {
    let mut c = cfg(100, 1);
    c.advert_interval_cs = 1;
    let (mut vr, _) = master(c);
    let mut due = vr.next_deadline().unwrap();
    // Three failures in a row: each is followed by a resend 1 ms later, not 10 ms later.
    for _ in 0..vrrp_core::fsm::SEND_RETRIES {
        let acts = vr.handle(Input::Timer, due);
        assert_eq!(sent(&acts), vec![100]);
        let failed = due + Duration::from_micros(20);
        let acts = vr.handle(Input::AdvertNotSent, failed);
        let retry = failed + Duration::from_millis(1);
        assert_eq!(acts, vec![Action::ArmTimer { at: retry }]);
        due = retry;
    }
    // The fourth failure in a row waits a whole interval: a queue that stays full is not
    // hammered.
    let acts = vr.handle(Input::Timer, due);
    assert_eq!(sent(&acts), vec![100]);
    assert!(vr.handle(Input::AdvertNotSent, due).is_empty());
    assert_eq!(vr.next_deadline(), Some(due + Duration::from_millis(10)));
    // An advert that leaves starts the count again.
    let due = vr.next_deadline().unwrap();
    vr.handle(Input::Timer, due);
    assert!(vr.handle(Input::AdvertSent, due).is_empty());
    let due = vr.next_deadline().unwrap();
    vr.handle(Input::Timer, due);
    let acts = vr.handle(Input::AdvertNotSent, due);
    assert_eq!(
        acts,
        vec![Action::ArmTimer {
            at: due + Duration::from_millis(1)
        }]
    );

    // Outside Master it means nothing.
    let mut b = started(cfg(100, 1), Instant::ZERO);
    let d = b.next_deadline();
    assert!(b.handle(Input::AdvertNotSent, at_ms(5)).is_empty());
    assert_eq!(b.next_deadline(), d);
}

#[test]
fn backup_timers_run_from_the_receive_time() {
    let rx = at_ms(2000);
    let late = at_ms(2050);
    let with_rx = |priority: u8| {
        Input::Advert(RxAdvert {
            version: Version::V3,
            vrid: VRID,
            priority,
            max_adver_int_cs: 100,
            src: ip(2),
            addrs: vec![vip()],
            rx_time: Some(rx),
        })
    };
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    let acts = vr.handle(with_rx(150), late);
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        rx.as_nanos() + mdi_ns(100, 100),
        "Master_Down_Timer from the receive time, not from when it was read"
    );
    let acts = vr.handle(with_rx(0), late);
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        rx.as_nanos() + skew_ns(100, 100),
        "priority 0: Skew_Time from the receive time"
    );
    // A Master that hears a higher priority: its Master_Down_Timer runs from the receive
    // time too.
    let (mut m, t) = master(cfg(100, 1));
    let rx2 = t + Duration::from_millis(100);
    let acts = m.handle(
        Input::Advert(RxAdvert {
            version: Version::V3,
            vrid: VRID,
            priority: 150,
            max_adver_int_cs: 100,
            src: ip(2),
            addrs: vec![vip()],
            rx_time: Some(rx2),
        }),
        rx2 + Duration::from_millis(30),
    );
    assert_eq!(m.state(), State::Backup);
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        rx2.as_nanos() + mdi_ns(100, 100)
    );
}

#[test]
fn rfc3768_6_4_3_v2_master_lower_priority_only_discards() {
    let mut c = cfg(100, 1);
    c.version = Version::V2;
    let (mut vr, t) = master(c);
    let mut a = RxAdvert {
        version: Version::V2,
        vrid: VRID,
        priority: 99,
        max_adver_int_cs: 100,
        src: ip(2),
        addrs: vec![vip()],
        rx_time: None,
    };
    assert!(vr.handle(Input::Advert(a.clone()), t).is_empty());
    assert_eq!(vr.state(), State::Master);
    // and the v2 tie-break still applies
    a.priority = 100;
    a.src = ip(3);
    vr.handle(Input::Advert(a), t);
    assert_eq!(vr.state(), State::Backup);
}

// ---------------------------------------------------------------- timers

#[test]
fn rule_6_1_v3_timer_formulas_over_priorities_and_intervals() {
    for prio in [1u8, 2, 50, 100, 128, 200, 253, 254] {
        for interval in [1u16, 2, 3, 10, 100, 255, 1000, 4095] {
            let mut c = cfg(prio, 1);
            c.advert_interval_cs = interval;
            let mut vr = VirtualRouter::new(c).unwrap();
            let acts = vr.handle(Input::Startup, Instant::ZERO);
            assert_eq!(
                armed(&acts).unwrap().as_nanos(),
                mdi_ns(prio as u64, interval as u64),
                "prio {prio} interval {interval}"
            );
            assert_eq!(
                vr.skew_time().as_nanos() as u64,
                skew_ns(prio as u64, interval as u64)
            );
        }
    }
}

fn v2_advert(priority: u8, from: u8, interval_s: u16) -> Input {
    Input::Advert(RxAdvert {
        version: Version::V2,
        vrid: VRID,
        priority,
        max_adver_int_cs: interval_s * 100,
        src: ip(from),
        addrs: vec![vip()],
        rx_time: None,
    })
}

#[test]
fn rfc3768_v2_timer_formulas() {
    for prio in [1u8, 100, 254] {
        for secs in [1u16, 2, 3, 255] {
            let mut c = cfg(prio, 1);
            c.version = Version::V2;
            c.advert_interval_cs = secs * 100;
            let mut vr = VirtualRouter::new(c).unwrap();
            let acts = vr.handle(Input::Startup, Instant::ZERO);
            // skew = (256 - prio)/256 s, whatever the interval
            let skew = (256 - prio as u64) * 1_000_000_000 / 256;
            assert_eq!(vr.skew_time().as_nanos() as u64, skew);
            assert_eq!(
                armed(&acts).unwrap().as_nanos(),
                3 * secs as u64 * 1_000_000_000 + skew
            );
            // priority 0 → Skew_Time
            let acts = vr.handle(v2_advert(0, 2, secs), at_ms(1));
            assert_eq!(armed(&acts).unwrap().as_nanos(), 1_000_000 + skew);
        }
    }
}

#[test]
fn rfc3768_v2_backup_does_not_learn_interval() {
    let mut c = cfg(100, 1);
    c.version = Version::V2;
    c.advert_interval_cs = 200;
    let mut vr = started(c, Instant::ZERO);
    // The wire layer would drop a mismatched v2 interval; even if not, nothing is learned.
    let acts = vr.handle(v2_advert(200, 2, 1), at_ms(1000));
    assert_eq!(vr.master_adver_interval_cs(), 200);
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        1_000_000_000 + 6_000_000_000 + 156 * 1_000_000_000 / 256
    );
}

#[test]
fn early_timer_is_noop() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    let due = vr.next_deadline().unwrap();
    assert!(vr
        .handle(Input::Timer, Instant::from_nanos(due.as_nanos() - 1))
        .is_empty());
    assert_eq!(vr.state(), State::Backup);
    vr.handle(Input::Timer, due);
    assert_eq!(vr.state(), State::Master);
}

#[test]
fn arm_timer_always_matches_next_deadline() {
    let mut vr = VirtualRouter::new(cfg(100, 5)).unwrap();
    let inputs = [
        Input::Startup,
        adv(200, 9, 10),
        adv(0, 9, 10),
        Input::Timer,
        adv(50, 2, 10),
        Input::PriorityChanged { priority: 120 },
        Input::TrackFault { on: true },
        Input::TrackFault { on: false },
        Input::LinkDown,
        Input::LinkUp,
        Input::Shutdown,
    ];
    let mut timer = None;
    let mut now = Instant::ZERO;
    for inp in inputs {
        now = now + Duration::from_secs(5);
        for a in vr.handle(inp, now) {
            match a {
                Action::ArmTimer { at } => timer = Some(at),
                Action::CancelTimer => timer = None,
                _ => {}
            }
        }
        assert_eq!(timer, vr.next_deadline());
    }
}

// ---------------------------------------------------------------- preempt_delay

fn with_delay(priority: u8, delay_s: u64) -> Config {
    let mut c = cfg(priority, 1);
    c.preempt_delay = Duration::from_secs(delay_s);
    c
}

#[test]
fn preempt_delay_tolerates_lower_master_after_startup() {
    // Backup 200 with a 10 s delay; a priority-100 master advertises every second.
    let mut vr = started(with_delay(200, 10), Instant::ZERO);
    assert_eq!(vr.preempt_delay_until(), Some(at_ms(10_000)));
    let mut became_master = None;
    for step in 1..=4000u64 {
        let now = at_ms(step * 10);
        if let Some(due) = vr.next_deadline().filter(|d| *d <= now) {
            let acts = vr.handle(Input::Timer, due);
            if vr.state() == State::Master && became_master.is_none() {
                became_master = Some((due, acts));
            }
        }
        if step % 100 == 0 && vr.state() == State::Backup {
            vr.handle(adv(100, 2, 100), now);
        }
    }
    let (t, acts) = became_master.expect("preempts eventually");
    // Adverts are accepted up to (not including) 10 s; the last accepted one is at 9 s, so the
    // timer runs out at 9 s + Master_Down_Interval.
    assert_eq!(
        t.as_nanos() as u128,
        (9_000_000_000 + mdi_ns(200, 100)) as u128
    );
    assert_eq!(
        changed(&acts),
        Some((State::Backup, State::Master, Reason::Preempted))
    );
}

#[test]
fn preempt_delay_restarts_after_seeing_higher_master() {
    let mut vr = started(with_delay(200, 10), Instant::ZERO);
    vr.handle(adv(250, 3, 100), at_ms(1000)); // a higher master: the delay stops
    assert_eq!(vr.preempt_delay_until(), None);
    // a lower master appears at 20 s: the delay restarts from there
    vr.handle(adv(100, 2, 100), at_ms(20_000));
    assert_eq!(vr.preempt_delay_until(), Some(at_ms(30_000)));
    let d = vr.next_deadline();
    vr.handle(adv(100, 2, 100), at_ms(29_999));
    assert_ne!(
        vr.next_deadline(),
        d,
        "still tolerated before the delay ends"
    );
    let d = vr.next_deadline();
    vr.handle(adv(100, 2, 100), at_ms(30_000));
    assert_eq!(vr.next_deadline(), d, "discarded once the delay is over");
}

#[test]
fn preempt_delay_does_not_slow_failover() {
    // A silent network: the delay only concerns live lower-priority masters.
    let mut vr = started(with_delay(200, 300), Instant::ZERO);
    assert_eq!(vr.next_deadline().unwrap().as_nanos(), mdi_ns(200, 100));
    vr.handle(Input::Timer, vr.next_deadline().unwrap());
    assert_eq!(vr.state(), State::Master);
}

#[test]
fn preempt_delay_restarts_after_fault() {
    let mut vr = started(with_delay(200, 10), Instant::ZERO);
    vr.handle(Input::LinkDown, at_ms(50_000));
    vr.handle(Input::LinkUp, at_ms(60_000));
    assert_eq!(vr.state(), State::Backup);
    assert_eq!(vr.preempt_delay_until(), Some(at_ms(70_000)));
}

#[test]
fn preempt_off_ignores_preempt_delay() {
    let mut c = with_delay(200, 1);
    c.preempt = false;
    let mut vr = started(c, Instant::ZERO);
    for s in 1..100u64 {
        vr.handle(adv(100, 2, 100), at_ms(s * 1000));
        vr.handle(Input::Timer, at_ms(s * 1000));
    }
    assert_eq!(vr.state(), State::Backup);
}

// ---------------------------------------------------------------- Accept_Mode

#[test]
fn accept_mode_non_owner_master_accepts() {
    let mut c = cfg(100, 1);
    c.accept_mode = true;
    let mut vr = started(c, Instant::ZERO);
    assert!(!vr.accepts_vip_traffic(), "a backup never accepts");
    let acts = vr.handle(Input::Timer, vr.next_deadline().unwrap());
    assert!(acts.contains(&Action::BecomeMaster { accept: true }));
    assert!(vr.accepts_vip_traffic());
}

#[test]
fn accept_mode_off_non_owner_master_does_not_accept() {
    let (vr, _) = master(cfg(100, 1));
    assert!(!vr.accepts_vip_traffic());
}

#[test]
fn accept_mode_owner_always_accepts() {
    let mut c = cfg(255, 1);
    c.vips = vec![ip(1)];
    c.accept_mode = false;
    let mut vr = VirtualRouter::new(c).unwrap();
    let acts = vr.handle(Input::Startup, Instant::ZERO);
    assert!(acts.contains(&Action::BecomeMaster { accept: true }));
    assert!(vr.accepts_vip_traffic());
}

// ---------------------------------------------------------------- Fault

#[test]
fn fault_link_down_in_master_releases_without_advert() {
    let (mut vr, t) = master(cfg(100, 1));
    let acts = vr.handle(Input::LinkDown, t);
    assert_eq!(
        acts,
        vec![
            Action::Release,
            Action::StateChanged {
                from: State::Master,
                to: State::Fault,
                reason: Reason::Fault
            },
            Action::CancelTimer
        ]
    );
    assert!(!vr.accepts_vip_traffic());
}

#[test]
fn fault_tracked_in_master_sends_priority_zero() {
    let (mut vr, t) = master(cfg(100, 1));
    let acts = vr.handle(Input::TrackFault { on: true }, t);
    assert_eq!(sent(&acts), vec![0]);
    assert!(acts.contains(&Action::Release));
    assert_eq!(vr.state(), State::Fault);
}

#[test]
fn fault_claim_failed_in_master_sends_priority_zero_and_releases() {
    let (mut vr, t) = master(cfg(100, 1));
    let acts = vr.handle(Input::ClaimFault { on: true }, t);
    assert_eq!(
        acts,
        vec![
            Action::SendAdvert {
                priority: 0,
                interval_cs: 100
            },
            Action::Release,
            Action::StateChanged {
                from: State::Master,
                to: State::Fault,
                reason: Reason::ClaimFailed
            },
            Action::CancelTimer
        ]
    );
    // With the link down too, the retry alone does not clear the fault.
    vr.handle(Input::LinkDown, t);
    assert!(vr.handle(Input::ClaimFault { on: false }, t).is_empty());
    assert_eq!(vr.state(), State::Fault);
    let acts = vr.handle(Input::LinkUp, t + Duration::from_secs(1));
    assert_eq!(
        changed(&acts),
        Some((State::Fault, State::Backup, Reason::FaultCleared))
    );
    // The retry of a Fault entered by a claim failure alone: Startup rules again.
    let (mut vr, t) = master(cfg(100, 1));
    vr.handle(Input::ClaimFault { on: true }, t);
    let acts = vr.handle(Input::ClaimFault { on: false }, t + Duration::from_secs(1));
    assert_eq!(
        changed(&acts),
        Some((State::Fault, State::Backup, Reason::FaultCleared))
    );
}

#[test]
fn fault_ignores_adverts_and_timers() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    let acts = vr.handle(Input::LinkDown, at_ms(1));
    assert_eq!(
        changed(&acts),
        Some((State::Backup, State::Fault, Reason::Fault))
    );
    for inp in [
        adv(200, 2, 100),
        adv(0, 2, 100),
        adv(1, 2, 100),
        Input::Timer,
    ] {
        assert!(vr.handle(inp, at_ms(100_000)).is_empty());
    }
    assert_eq!(vr.next_deadline(), None);
    assert_eq!(vr.state(), State::Fault);
    // both conditions must clear
    vr.handle(Input::TrackFault { on: true }, at_ms(2));
    vr.handle(Input::LinkUp, at_ms(3));
    assert_eq!(vr.state(), State::Fault);
}

#[test]
fn fault_clear_restarts_startup_rules() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    vr.handle(Input::TrackFault { on: true }, at_ms(1));
    let acts = vr.handle(Input::TrackFault { on: false }, at_ms(1000));
    assert_eq!(
        changed(&acts),
        Some((State::Fault, State::Backup, Reason::FaultCleared))
    );
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        1_000_000_000 + mdi_ns(100, 100)
    );
    // the owner goes straight back to Master
    let mut c = cfg(255, 1);
    c.vips = vec![ip(1)];
    let mut vr = started(c, Instant::ZERO);
    vr.handle(Input::LinkDown, at_ms(1));
    let acts = vr.handle(Input::LinkUp, at_ms(2));
    assert_eq!(vr.state(), State::Master);
    assert_eq!(sent(&acts), vec![255]);
}

#[test]
fn fault_before_startup() {
    let mut vr = VirtualRouter::new(cfg(100, 1)).unwrap();
    assert!(vr.handle(Input::LinkDown, at_ms(1)).is_empty());
    let acts = vr.handle(Input::Startup, at_ms(2));
    assert_eq!(vr.state(), State::Fault);
    assert_eq!(
        changed(&acts),
        Some((State::Initialize, State::Fault, Reason::Fault))
    );
    vr.handle(Input::LinkUp, at_ms(3));
    assert_eq!(vr.state(), State::Backup);
}

#[test]
fn fault_shutdown_goes_initialize() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    vr.handle(Input::LinkDown, at_ms(1));
    let acts = vr.handle(Input::Shutdown, at_ms(2));
    assert_eq!(vr.state(), State::Initialize);
    assert!(sent(&acts).is_empty());
    // a later link-up does not start it again
    assert!(vr.handle(Input::LinkUp, at_ms(3)).is_empty());
    assert_eq!(vr.state(), State::Initialize);
}

// ---------------------------------------------------------------- defensive filtering

#[test]
fn other_vrid_advert_ignored_in_every_state() {
    let other = |priority| {
        Input::Advert(RxAdvert {
            version: Version::V3,
            vrid: VRID + 1,
            priority,
            max_adver_int_cs: 1,
            src: ip(200),
            addrs: vec![vip()],
            rx_time: None,
        })
    };
    let (m, _) = master(cfg(100, 1));
    let b = started(cfg(100, 1), Instant::ZERO);
    let i = VirtualRouter::new(cfg(100, 1)).unwrap();
    for mut vr in [m, b, i] {
        let (state, deadline, mai) = (
            vr.state(),
            vr.next_deadline(),
            vr.master_adver_interval_cs(),
        );
        for p in [0u8, 1, 99, 100, 101, 255] {
            assert!(vr.handle(other(p), at_ms(1)).is_empty());
        }
        assert_eq!(
            (state, deadline, mai),
            (
                vr.state(),
                vr.next_deadline(),
                vr.master_adver_interval_cs()
            )
        );
    }
}

#[test]
fn mismatched_version_or_family_ignored() {
    let (mut vr, t) = master(cfg(100, 1));
    let base = RxAdvert {
        version: Version::V2,
        vrid: VRID,
        priority: 200,
        max_adver_int_cs: 100,
        src: ip(2),
        addrs: vec![vip()],
        rx_time: None,
    };
    assert!(vr.handle(Input::Advert(base.clone()), t).is_empty());
    let v6 = RxAdvert {
        version: Version::V3,
        src: IpAddr::V6("fe80::9".parse().unwrap()),
        ..base
    };
    assert!(vr.handle(Input::Advert(v6), t).is_empty());
    assert_eq!(vr.state(), State::Master);
}

// ---------------------------------------------------------------- priority changes

#[test]
fn priority_change_in_master_advertises_now() {
    let (mut vr, t) = master(cfg(100, 1));
    let now = t + Duration::from_millis(300);
    let acts = vr.handle(Input::PriorityChanged { priority: 60 }, now);
    assert_eq!(sent(&acts), vec![60]);
    assert_eq!(armed(&acts), Some(now + centis(100)));
    // a 90 now outranks us
    vr.handle(adv(90, 2, 100), now);
    assert_eq!(vr.state(), State::Backup);
    // priority 0 is not a valid effective priority
    assert!(vr
        .handle(Input::PriorityChanged { priority: 0 }, now)
        .is_empty());
    assert_eq!(vr.priority(), 60);
    // only the configured owner may run at 255
    vr.handle(Input::PriorityChanged { priority: 255 }, now);
    assert_eq!(vr.priority(), 254);
}

#[test]
fn priority_change_in_backup_changes_skew() {
    let mut vr = started(cfg(100, 1), Instant::ZERO);
    vr.handle(Input::PriorityChanged { priority: 200 }, at_ms(1));
    let acts = vr.handle(adv(250, 2, 100), at_ms(2));
    assert_eq!(
        armed(&acts).unwrap().as_nanos(),
        2_000_000 + mdi_ns(200, 100)
    );
    // and it now preempts a 150 master
    let d = vr.next_deadline();
    vr.handle(adv(150, 3, 100), at_ms(3));
    assert_eq!(vr.next_deadline(), d);
}

// ---------------------------------------------------------------- config validation

#[test]
fn config_defaults_are_rfc_defaults() {
    let c = cfg(100, 1);
    assert_eq!(c.version, Version::V3);
    assert_eq!(c.advert_interval_cs, 100);
    assert!(c.preempt);
    assert!(!c.accept_mode);
    assert_eq!(c.preempt_delay, Duration::ZERO);
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn config_rejects_bad_values() {
    let check = |f: &dyn Fn(&mut Config), want: ConfigError| {
        let mut c = cfg(100, 1);
        f(&mut c);
        assert_eq!(c.validate(), Err(want.clone()));
        assert_eq!(VirtualRouter::new(c).unwrap_err(), want);
    };
    check(&|c| c.vrid = 0, ConfigError::InvalidVrid);
    check(&|c| c.priority = 0, ConfigError::InvalidPriority);
    check(
        &|c| c.advert_interval_cs = 0,
        ConfigError::InvalidAdvertInterval { cs: 0 },
    );
    check(
        &|c| c.advert_interval_cs = 4096,
        ConfigError::InvalidAdvertInterval { cs: 4096 },
    );
    check(
        &|c| {
            c.version = Version::V2;
            c.advert_interval_cs = 150
        },
        ConfigError::V2IntervalNotWholeSeconds { cs: 150 },
    );
    check(
        &|c| {
            c.version = Version::V2;
            c.advert_interval_cs = 25600
        },
        ConfigError::V2IntervalNotWholeSeconds { cs: 25600 },
    );
    check(&|c| c.vips.clear(), ConfigError::NoVips);
    check(&|c| c.vips.push(vip()), ConfigError::DuplicateVip(vip()));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    check(&|c| c.vips.push(v6), ConfigError::VipFamilyMismatch(v6));
    check(
        &|c| c.primary_addr = IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ConfigError::InvalidPrimaryAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    );
    check(
        &|c| {
            c.primary_addr = v6;
            c.vips = vec![v6]
        },
        ConfigError::Ipv6PrimaryNotLinkLocal(v6),
    );
    check(
        &|c| {
            c.version = Version::V2;
            c.primary_addr = "fe80::1".parse().unwrap();
            c.vips = vec![v6]
        },
        ConfigError::V2RequiresIpv4,
    );
    check(
        &|c| c.preempt_delay = Duration::from_secs(1001),
        ConfigError::PreemptDelayTooLong(Duration::from_secs(1001)),
    );
}

#[test]
fn config_owner_must_own_the_vips() {
    let mut c = cfg(255, 1);
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(
        c.validate_ownership(&[ip(1)]),
        Err(ConfigError::OwnerDoesNotOwnVip(vip()))
    );
    assert_eq!(c.validate_ownership(&[ip(1), vip()]), Ok(()));
    c.priority = 254;
    assert_eq!(
        c.validate_ownership(&[ip(1), vip()]),
        Err(ConfigError::OwnedVipNeedsPriority255 {
            vip: vip(),
            priority: 254
        })
    );
    assert_eq!(c.validate_ownership(&[ip(1)]), Ok(()));
}
