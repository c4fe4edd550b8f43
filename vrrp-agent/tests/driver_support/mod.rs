//! Shared by `agent_driver.rs` and `hostile_rx.rs`: adverts for the sans-IO driver as the XDP
//! program hands them over (ring-buffer events), and how the tests feed them in.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use vrrp_agent::{
    driver::{Command, Driver},
    fsm::Instant,
    wire::{self, AdvertFrame, Auth, ChecksumOpts, RxFrame, VrrpRepr},
};
use vrrp_common::{AdvertEvent, FAMILY_IPV4, FAMILY_IPV6};

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

/// The ring-buffer event the XDP program makes of `frame` received at `t_ns` on ifindex 2: its
/// Ethernet source, IP addresses and hop limit, and the VRRP message.
pub fn event_of(frame: &AdvertFrame, t_ns: u64) -> AdvertEvent {
    let bytes = frame.to_bytes(ChecksumOpts::default()).unwrap();
    let rx = RxFrame::parse(&bytes).unwrap();
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

/// A ring-buffer event carrying `repr` from `src` to the VRRP group of its family (from the
/// virtual router MAC), received at `t_ns`.
pub fn event(repr: VrrpRepr, src: IpAddr, t_ns: u64) -> AdvertEvent {
    event_of(&AdvertFrame::multicast(repr, src), t_ns)
}

/// The same to `dst` (the checksum is over `src` and `dst`).
pub fn event_to(repr: VrrpRepr, src: IpAddr, dst: IpAddr, t_ns: u64) -> AdvertEvent {
    let mut f = AdvertFrame::multicast(repr, src);
    f.ip.dst = dst;
    event_of(&f, t_ns)
}

/// Hands `ev` to the driver when it arrives (handled at its receive time).
pub fn rx(d: &mut Driver, ev: &AdvertEvent) -> Vec<Command> {
    d.on_event(ev, Instant::from_nanos(ev.rx_time_ns))
}
