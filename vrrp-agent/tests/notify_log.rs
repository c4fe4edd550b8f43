//! The edge renders the core's notifications into the log lines users and the integration tests
//! read: the texts are a contract, checked here byte for byte. And the one decoder of the
//! kernel's ring-buffer events.
use std::{net::IpAddr, time::Duration};

use vrrp_agent::{
    notify_log::{level, render},
    port::decode,
};
use vrrp_common::{AdvertEvent, EVENT_FLAG_VLAN, FAMILY_IPV4};
use vrrp_core::{
    config::Vip,
    fsm::{Instant, Reason, State},
    node::{PreviousMaster, ReleaseOutcome},
    wire::{MacAddr, RxError},
    Family, InstanceId, Notification, StateChange,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip() -> Vip {
    Vip {
        addr: ip("10.0.0.100"),
        prefix: 24,
    }
}

const I: InstanceId = InstanceId(0);

#[test]
fn state_change_line() {
    let n = Notification::StateChanged(StateChange {
        seq: 3,
        instance: I,
        name: "vi1".into(),
        iface: "eth0".into(),
        vrid: 7,
        family: Family::V4,
        from: State::Backup,
        to: State::Master,
        reason: Reason::MasterNoResponse,
        priority: 100,
        master: None,
    });
    assert_eq!(
        render(&n),
        "instance vi1: state BACKUP -> MASTER (master_no_response)"
    );
    assert_eq!(level(&n), log::Level::Info);
}

#[test]
fn lines_about_other_routers() {
    let n = Notification::AddrListDiffers {
        instance: I,
        name: "mism".into(),
        src: ip("10.0.0.2"),
        priority: 200,
        theirs: vec![ip("10.0.0.100"), ip("10.0.0.101")],
        ours: vec![ip("10.0.0.100")],
        left_out: 0,
    };
    assert_eq!(
        render(&n),
        "instance mism: advert from 10.0.0.2 (priority 200) lists 10.0.0.100,10.0.0.101, we \
         have 10.0.0.100; accepted (RFC 9568 §7.1), check the configuration of both"
    );
    assert_eq!(level(&n), log::Level::Warn);
    let nm = |previous, left_out| Notification::NewMaster {
        instance: I,
        name: "newm".into(),
        master: ip("10.0.0.66"),
        priority: 250,
        previous,
        left_out,
    };
    assert_eq!(
        render(&nm(PreviousMaster::FirstSeen, 0)),
        "instance newm: new master 10.0.0.66 (priority 250, first seen)"
    );
    assert_eq!(
        render(&nm(PreviousMaster::Addr(ip("10.0.0.2")), 0)),
        "instance newm: new master 10.0.0.66 (priority 250, was 10.0.0.2)"
    );
    assert_eq!(
        render(&nm(PreviousMaster::ThisRouter, 49)),
        "instance newm: new master 10.0.0.66 (priority 250, was this router) [49 more since \
         the last line]"
    );
    let drop = |count| Notification::AdvertDropped {
        iface: "eth0".into(),
        instance: Some((I, "vi1".into())),
        src_ip: ip("10.0.0.2"),
        src_mac: MacAddr([2, 0, 0, 0, 0, 0x66]),
        error: RxError::TtlNot255(64),
        count,
    };
    let first = render(&drop(1));
    assert!(
        first.starts_with("instance vi1: dropped advert from 10.0.0.2 (02-00-00-00-00-66): ")
            && first.ends_with(" [first ttl_not_255; later ones are logged at debug]"),
        "{first}"
    );
    assert_eq!(level(&drop(1)), log::Level::Warn);
    assert!(render(&drop(2)).ends_with(" [ttl_not_255 #2]"));
    assert_eq!(level(&drop(2)), log::Level::Debug);
}

#[test]
fn vip_and_claim_lines() {
    let n = Notification::VipReadded {
        instance: I,
        name: "r1".into(),
        iface: "eth0".into(),
        vip: vip(),
        count: 1,
    };
    assert!(render(&n).starts_with("instance r1: VIP 10.0.0.100/24 was removed from eth0"));
    let n = Notification::ReleaseFailed {
        instance: I,
        name: "r1".into(),
        iface: "eth0".into(),
        vips: vec![vip()],
        what: "EBUSY".into(),
        outcome: ReleaseOutcome::Retry {
            attempt: 1,
            of: 5,
            wait: Duration::from_secs(1),
        },
    };
    assert_eq!(
        render(&n),
        "instance r1: releasing the VIPs failed: EBUSY; retry 1 of 5 in 1s. If it keeps failing, \
         remove them by hand: `ip addr del 10.0.0.100/24 dev eth0`"
    );
    let n = Notification::ClaimFailed {
        instance: I,
        name: "r1".into(),
        iface: "eth0".into(),
        what: "EPERM".into(),
        retry_in: Duration::from_secs(2),
    };
    assert_eq!(
        render(&n),
        "instance r1: taking the VIPs on eth0 failed: EPERM. Going to FAULT so that a backup \
         takes over; retrying in 2s. Check that the agent may change addresses (CAP_NET_ADMIN) \
         and what else manages eth0."
    );
}

#[test]
fn decode_takes_the_captured_bytes_the_addresses_and_the_vlan() {
    let mut ev: AdvertEvent = bytemuck::Zeroable::zeroed();
    ev.rx_time_ns = 42;
    ev.family = FAMILY_IPV4;
    ev.src_ip[..4].copy_from_slice(&[10, 0, 0, 2]);
    ev.dst_ip[..4].copy_from_slice(&[224, 0, 0, 18]);
    ev.src_mac = [0, 0, 0x5e, 0, 1, 7];
    ev.ttl = 255;
    ev.payload_len = 20;
    ev.captured_len = 12;
    ev.payload[..20].copy_from_slice(&[7; 20]);
    let rx = decode(&ev);
    assert_eq!(rx.rx_time, Instant::from_nanos(42));
    assert_eq!((rx.src_ip, rx.dst_ip), (ip("10.0.0.2"), ip("224.0.0.18")));
    assert_eq!(rx.src_mac, MacAddr([0, 0, 0x5e, 0, 1, 7]));
    assert_eq!(rx.hop_limit, 255);
    assert_eq!(rx.payload.len(), 12, "the captured part only");
    assert_eq!(rx.vlan, None);
    ev.flags |= EVENT_FLAG_VLAN;
    ev.vlan_id = 10;
    assert_eq!(decode(&ev).vlan, Some(10));
}
