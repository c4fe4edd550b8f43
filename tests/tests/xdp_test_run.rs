//! The XDP program under the kernel's BPF_PROG_TEST_RUN: crafted frames in, action, ring-buffer
//! events and counters out. Frames are built with the agent's own wire codec, so these tests
//! also pin down that what the agent emits is what the fast path classifies.
//!
//! Needs root (CAP_BPF). Each test loads its own copy of the program, so maps are not shared.
mod common;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use common::*;
use vrrp_agent::{
    clock::monotonic_ns,
    fastpath::FastPath,
    wire::{
        AdvertFrame, ArpFrame, ArpRepr, Auth, ChecksumOpts, Family, MacAddr, NdpFrame, NdpMessage,
        Version, VrrpRepr,
    },
};
use vrrp_common::{
    vmac, Counter, EVENT_FLAG_TRUNCATED, EVENT_FLAG_VLAN, FAMILY_IPV4, FAMILY_IPV6, VRID_ON,
    VRID_QUIET, VRRP_PAYLOAD_MAX,
};

fn v4_advert(vrid: u8, priority: u8, addrs: usize) -> VrrpRepr {
    VrrpRepr {
        version: Version::V3,
        vrid,
        priority,
        max_advert_int: 100,
        auth: Auth::None,
        addrs: (0..addrs)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1)))
            .collect(),
    }
}

const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SRC6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fn v4_frame(vrid: u8, priority: u8) -> Vec<u8> {
    AdvertFrame::multicast(v4_advert(vrid, priority, 1), IpAddr::V4(SRC4))
        .to_bytes(ChecksumOpts::default())
        .unwrap()
}

fn v6_frame(vrid: u8) -> Vec<u8> {
    let vrrp = VrrpRepr {
        version: Version::V3,
        vrid,
        priority: 200,
        max_advert_int: 10,
        auth: Auth::None,
        addrs: vec![IpAddr::V6("2001:db8::100".parse().unwrap())],
    };
    AdvertFrame::multicast(vrrp, IpAddr::V6(SRC6))
        .to_bytes(ChecksumOpts::default())
        .unwrap()
}

/// The VRRP message inside a frame built by `AdvertFrame` (no VLAN tag).
fn vrrp_bytes(frame: &[u8], ip_hlen: usize) -> &[u8] {
    &frame[14 + ip_hlen..]
}

#[test]
fn configured_vrid_v4_goes_to_user_space_with_its_metadata() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    let frame = v4_frame(51, 150);
    let before = monotonic_ns();
    assert_eq!(h.run(&frame), XDP_DROP, "our advert is consumed");
    let after = monotonic_ns();
    let ev = h.events();
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert!(
        (before..=after).contains(&e.rx_time_ns),
        "rx time {} not within [{before}, {after}]",
        e.rx_time_ns
    );
    assert_eq!(e.family, FAMILY_IPV4);
    assert_eq!(e.ttl, 255);
    assert_eq!(e.src_mac, [0x00, 0x00, 0x5e, 0x00, 0x01, 51]);
    assert_eq!(&e.src_ip[..4], &SRC4.octets());
    assert_eq!(&e.dst_ip[..4], &[224, 0, 0, 18]);
    assert_eq!(e.flags, 0);
    let vrrp = vrrp_bytes(&frame, 20);
    assert_eq!(e.payload_len as usize, vrrp.len());
    assert_eq!(e.captured_len as usize, vrrp.len());
    assert_eq!(&e.payload[..vrrp.len()], vrrp);
    assert_eq!(h.counter(Counter::VrrpToUser), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn other_vrid_passes_untouched() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    assert_eq!(h.run(&v4_frame(52, 100)), XDP_PASS);
    assert!(h.events().is_empty());
    assert_eq!(h.counter(Counter::VrrpOtherVrid), 1);
    assert_eq!(h.counter(Counter::VrrpToUser), 0);
    h.assert_outcomes_add_up();
}

#[test]
fn vrid_is_per_family() {
    // VRID 7 configured for IPv4 only: an IPv6 advert for VRID 7 is someone else's.
    let mut h = Harness::new(&[(FAMILY_IPV4, 7)]);
    assert_eq!(h.run(&v6_frame(7)), XDP_PASS);
    assert!(h.events().is_empty());
    assert_eq!(h.counter(Counter::VrrpOtherVrid), 1);
}

#[test]
fn ipv6_advert_goes_to_user_space() {
    let mut h = Harness::new(&[(FAMILY_IPV6, 7)]);
    let frame = v6_frame(7);
    assert_eq!(h.run(&frame), XDP_DROP);
    let ev = h.events();
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e.family, FAMILY_IPV6);
    assert_eq!(e.ttl, 255);
    assert_eq!(e.src_mac, [0x00, 0x00, 0x5e, 0x00, 0x02, 7]);
    assert_eq!(e.src_ip, SRC6.octets());
    assert_eq!(e.dst_ip, "ff02::12".parse::<Ipv6Addr>().unwrap().octets());
    let vrrp = vrrp_bytes(&frame, 40);
    assert_eq!(e.payload_len as usize, vrrp.len());
    assert_eq!(&e.payload[..e.captured_len as usize], vrrp);
    h.assert_outcomes_add_up();
}

#[test]
fn vlan_tagged_advert_is_seen_with_its_vid() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    let mut f = AdvertFrame::multicast(v4_advert(51, 100, 2), IpAddr::V4(SRC4));
    f.vlan = Some(0x2000 | 42); // PCP 1, VID 42
    let frame = f.to_bytes(ChecksumOpts::default()).unwrap();
    assert_eq!(
        frame[12..14],
        [0x81, 0x00],
        "the codec emitted an 802.1Q tag"
    );
    assert_eq!(h.run(&frame), XDP_DROP);
    let ev = h.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].flags & EVENT_FLAG_VLAN, EVENT_FLAG_VLAN);
    assert_eq!(ev[0].vlan_id, 42);
    assert_eq!(
        &ev[0].payload[..ev[0].captured_len as usize],
        &frame[18 + 20..]
    );
    assert_eq!(h.counter(Counter::VlanTagged), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn truncated_at_every_byte_boundary_passes_and_is_counted() {
    let mut tagged = AdvertFrame::multicast(v4_advert(51, 100, 1), IpAddr::V4(SRC4));
    tagged.vlan = Some(5);
    let frames = [
        ("ipv4", v4_frame(51, 100)),
        ("ipv6", v6_frame(51)),
        ("vlan", tagged.to_bytes(ChecksumOpts::default()).unwrap()),
    ];
    let mut h = Harness::new(&[(FAMILY_IPV4, 51), (FAMILY_IPV6, 51)]);
    let mut runs = 0u64;
    for (what, frame) in &frames {
        // The kernel's test-run refuses frames shorter than an Ethernet header itself.
        for len in 14..frame.len() {
            let action = h.run(&frame[..len]);
            runs += 1;
            assert_eq!(action, XDP_PASS, "{what} cut at {len} bytes must pass");
            assert!(h.events().is_empty(), "{what} cut at {len}: no event");
        }
        // And the whole frame is still ours.
        assert_eq!(h.run(frame), XDP_DROP, "{what} whole");
        runs += 1;
        assert_eq!(h.events().len(), 1);
    }
    let malformed = h.counter(Counter::MalformedL2)
        + h.counter(Counter::MalformedL3)
        + h.counter(Counter::MalformedVrrp);
    assert_eq!(malformed, runs - 3, "every cut frame counted as malformed");
    assert!(
        h.counter(Counter::MalformedL2) > 0,
        "cut VLAN headers are L2-malformed"
    );
    assert!(h.counter(Counter::MalformedL3) > 0);
    assert_eq!(h.counter(Counter::Frames), runs);
    h.assert_outcomes_add_up();
}

#[test]
fn non_vrrp_traffic_passes_and_is_classified() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    // ARP (a gratuitous ARP from the codec).
    let arp = ArpFrame::gratuitous(
        MacAddr::from_bytes(&[2, 0, 0, 0, 0, 1]),
        Ipv4Addr::new(10, 0, 0, 100),
    )
    .to_bytes();
    assert_eq!(h.run(&arp), XDP_PASS);
    // LLDP: not IP.
    let mut lldp = vec![0u8; 60];
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(h.run(&lldp), XDP_PASS);
    // IPv4 UDP: rewrite the protocol of a VRRP frame (checksum irrelevant to the fast path).
    let mut udp = v4_frame(51, 100);
    udp[14 + 9] = 17;
    assert_eq!(h.run(&udp), XDP_PASS);
    // A VRRP fragment (more-fragments set).
    let mut frag = v4_frame(51, 100);
    frag[14 + 6] |= 0x20;
    assert_eq!(h.run(&frag), XDP_PASS);
    // Bad IP version nibble.
    let mut badver = v4_frame(51, 100);
    badver[14] = 0x55;
    assert_eq!(h.run(&badver), XDP_PASS);
    assert!(h.events().is_empty());
    assert_eq!(h.counter(Counter::ArpSeen), 1);
    assert_eq!(h.counter(Counter::PassNotIp), 1);
    assert_eq!(h.counter(Counter::PassIpOther), 1);
    assert_eq!(h.counter(Counter::VrrpFragment), 1);
    assert_eq!(h.counter(Counter::MalformedL3), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn trailing_ethernet_padding_is_not_part_of_the_message() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    let frame = v4_frame(51, 100);
    let vrrp_len = frame.len() - 34;
    let mut padded = frame.clone();
    padded.resize(frame.len() + 10, 0);
    assert_eq!(h.run(&padded), XDP_DROP);
    let ev = h.events();
    assert_eq!(ev[0].payload_len as usize, vrrp_len);
    assert_eq!(ev[0].captured_len as usize, vrrp_len);
}

#[test]
fn oversized_advert_is_delivered_truncated_and_flagged() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 9)]);
    // 100 IPv4 addresses: 8 + 400 bytes, more than the event carries.
    let frame = AdvertFrame::multicast(v4_advert(9, 100, 100), IpAddr::V4(SRC4))
        .to_bytes(ChecksumOpts::default())
        .unwrap();
    assert_eq!(h.run(&frame), XDP_DROP);
    let ev = h.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].payload_len, 408);
    assert_eq!(ev[0].captured_len as usize, VRRP_PAYLOAD_MAX);
    assert_eq!(ev[0].flags & EVENT_FLAG_TRUNCATED, EVENT_FLAG_TRUNCATED);
    assert_eq!(
        &ev[0].payload[..VRRP_PAYLOAD_MAX],
        &frame[34..34 + VRRP_PAYLOAD_MAX]
    );
    assert_eq!(h.counter(Counter::VrrpTruncatedCapture), 1);
}

#[test]
fn full_ring_buffer_passes_and_counts() {
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    let frame = v4_frame(51, 100);
    // Nobody drains the ring while the kernel runs the program 2000 times: it fills up.
    h.run_repeat(&frame, 2000);
    let full = h.counter(Counter::RingbufFull);
    let to_user = h.counter(Counter::VrrpToUser);
    assert!(full > 0, "ring buffer never reported full");
    assert_eq!(full + to_user, 2000);
    assert_eq!(h.events().len() as u64, to_user);
    // Once drained there is room again.
    assert_eq!(h.run(&frame), XDP_DROP);
    assert_eq!(h.events().len(), 1);
    h.assert_outcomes_add_up();
    // The kernel only counts an overflow; the agent reads the counter and logs a rate-limited
    // summary. No per-frame log channel: the object has no aya-log ring.
    let maps: Vec<String> = h.fp.ebpf().maps().map(|(n, _)| n.to_owned()).collect();
    assert!(
        !maps.iter().any(|n| n == "AYA_LOGS"),
        "the XDP object still has an aya-log channel (per-frame log lines): maps {maps:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// VIP ownership: ARP / NS responder, VMAC acceptance, Accept_Mode, fail-safe.

const VRID: u8 = 51;
const IFACE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const BOUND: Duration = Duration::from_secs(1);

/// A harness owning VIP4 (VRID, IPv4) and VIP6 (VRID, IPv6), heartbeat fresh, bound 1 s.
fn owner_harness(accept: bool) -> Harness {
    let mut h = Harness::new(&[(FAMILY_IPV4, VRID), (FAMILY_IPV6, VRID)]);
    h.fp.add_vip(IpAddr::V4(VIP4), VRID).unwrap();
    h.fp.add_vip(IpAddr::V6(VIP6), VRID).unwrap();
    h.fp.set_iface_mac(IFACE_MAC).unwrap();
    h.own(FAMILY_IPV4, VRID, accept, BOUND);
    h.own(FAMILY_IPV6, VRID, accept, BOUND);
    h
}

fn vmac4() -> MacAddr {
    let m = vrrp_agent::wire::vmac(Family::V4, VRID);
    assert_eq!(
        m.0,
        vmac(FAMILY_IPV4, VRID),
        "codec and ABI agree on the VMAC"
    );
    m
}

fn vmac6() -> MacAddr {
    let m = vrrp_agent::wire::vmac(Family::V6, VRID);
    assert_eq!(
        m.0,
        vmac(FAMILY_IPV6, VRID),
        "codec and ABI agree on the VMAC"
    );
    m
}

/// Makes the heartbeat older than the bound.
fn go_stale(h: &mut Harness) {
    h.fp.heartbeat(monotonic_ns() - 2 * BOUND.as_nanos() as u64)
        .unwrap();
}

#[test]
fn arp_request_for_owned_vip_is_answered_with_the_vmac() {
    let mut h = owner_harness(false);
    let (req, bytes) = arp_request(VIP4, None);
    let (action, out) = h.run_out(&bytes);
    assert_eq!(action, XDP_TX);
    let expected = ArpFrame::reply_to(&req, vmac4()).to_bytes();
    assert_eq!(out.len(), bytes.len(), "answered in place, padding kept");
    assert_eq!(
        &out[..expected.len()],
        &expected[..],
        "reply == codec's reply_to"
    );
    let parsed = ArpFrame::parse(&out).unwrap();
    assert_eq!(parsed.eth_dst, REQ_MAC);
    assert_eq!(parsed.arp.sender_mac, vmac4());
    assert_eq!(parsed.arp.sender_ip, VIP4);
    assert_eq!(parsed.arp.target_ip, REQ4);
    assert_eq!(h.counter(Counter::ArpReplied), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn vlan_tagged_arp_request_is_answered_with_its_tag() {
    let mut h = owner_harness(false);
    let (req, bytes) = arp_request(VIP4, Some(0x2000 | 42));
    assert_eq!(bytes[12..14], [0x81, 0x00]);
    let (action, out) = h.run_out(&bytes);
    assert_eq!(action, XDP_TX);
    let expected = ArpFrame::reply_to(&req, vmac4()).to_bytes();
    assert_eq!(expected.len(), 46);
    assert_eq!(&out[..46], &expected[..]);
    assert_eq!(h.counter(Counter::ArpReplied), 1);
    assert_eq!(h.counter(Counter::VlanTagged), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn arp_for_a_vip_we_do_not_own_is_dropped() {
    // A VIP in the maps is never the kernel's to answer (it may still have it configured, and
    // would answer with the real MAC): a request for the VIP of a router we do not own is
    // dropped, not passed.
    let mut h = owner_harness(false);
    let other = Ipv4Addr::new(10, 0, 0, 101);
    h.fp.add_vip(IpAddr::V4(other), 52).unwrap();
    let (_, b) = arp_request(other, None);
    assert_eq!(h.run_out(&b), (XDP_DROP, b.clone()));
    let (_, b) = arp_request(other, Some(7));
    assert_eq!(h.run(&b), XDP_DROP, "VLAN-tagged too");
    assert_eq!(h.counter(Counter::ArpVipNotOwned), 2);
    assert_eq!(h.counter(Counter::ArpReplied), 0);
    h.assert_outcomes_add_up();
}

#[test]
fn arp_that_is_not_ours_to_answer_passes_untouched() {
    let mut h = owner_harness(false);
    // Not a VIP at all.
    let (_, b) = arp_request(Ipv4Addr::new(10, 0, 0, 200), None);
    assert_eq!(h.run_out(&b), (XDP_PASS, b.clone()));
    // A reply about the VIP (someone else's answer).
    let mut reply = ArpFrame::reply_to(&arp_request(VIP4, None).0, REQ_MAC);
    reply.arp.op = vrrp_agent::wire::ArpOp::Reply;
    let b = reply.to_bytes();
    assert_eq!(h.run_out(&b), (XDP_PASS, b.clone()));
    assert_eq!(h.counter(Counter::ArpSeen), 2);
    // A peer's gratuitous ARP for the VIP (sender IP == VIP): never answered.
    let b = ArpFrame::gratuitous(MacAddr([2, 0, 0, 0, 0, 0x77]), VIP4).to_bytes();
    assert_eq!(h.run_out(&b), (XDP_PASS, b.clone()));
    assert_eq!(h.counter(Counter::ArpFromVip), 1);
    // Not Ethernet/IPv4 (htype 6).
    let (_, mut b) = arp_request(VIP4, None);
    b[15] = 6;
    assert_eq!(h.run_out(&b), (XDP_PASS, b.clone()));
    assert_eq!(h.counter(Counter::ArpSeen), 3);
    // Truncated ARP.
    let (_, b) = arp_request(VIP4, None);
    assert_eq!(h.run(&b[..40]), XDP_PASS);
    assert_eq!(h.counter(Counter::MalformedL3), 1);
    assert_eq!(h.counter(Counter::ArpReplied), 0);
    h.assert_outcomes_add_up();
}

#[test]
fn router_given_up_stops_answering() {
    let mut h = owner_harness(false);
    let (_, b) = arp_request(VIP4, None);
    assert_eq!(h.run(&b), XDP_TX);
    h.fp.set_router(FAMILY_IPV4, VRID, false, false, BOUND)
        .unwrap();
    // Given up but the VIP still in the maps (release in progress): dropped, so the kernel,
    // which may still have the VIP, does not answer with the real MAC.
    assert_eq!(h.run_out(&b), (XDP_DROP, b.clone()));
    h.fp.remove_vip(IpAddr::V4(VIP4)).unwrap();
    // No longer a VIP: an ordinary ARP request, the kernel's business.
    assert_eq!(h.run_out(&b), (XDP_PASS, b.clone()));
    assert_eq!(h.counter(Counter::ArpReplied), 1);
    assert_eq!(h.counter(Counter::ArpVipNotOwned), 1);
    assert_eq!(h.counter(Counter::ArpSeen), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn stale_heartbeat_drops_arp_and_a_fresh_one_answers_again() {
    let mut h = owner_harness(false);
    let (_, b) = arp_request(VIP4, None);
    go_stale(&mut h);
    assert_eq!(
        h.run(&b),
        XDP_DROP,
        "stale: dropped, not passed to the kernel"
    );
    assert_eq!(h.counter(Counter::VipStaleDropped), 1);
    h.beat();
    assert_eq!(h.run(&b), XDP_TX, "fresh again: answered");
    // A heartbeat from the future is not fresh.
    h.fp.heartbeat(monotonic_ns() + 10 * BOUND.as_nanos() as u64)
        .unwrap();
    assert_eq!(h.run(&b), XDP_DROP);
    // No bound: the heartbeat does not matter.
    h.fp.set_router(FAMILY_IPV4, VRID, true, false, Duration::ZERO)
        .unwrap();
    h.fp.heartbeat(1).unwrap();
    assert_eq!(h.run(&b), XDP_TX);
    assert_eq!(h.counter(Counter::VipStaleDropped), 2);
    assert_eq!(h.counter(Counter::ArpReplied), 2);
    h.assert_outcomes_add_up();
}

#[test]
fn stale_bound_is_honoured_in_real_time() {
    let mut h = owner_harness(false);
    h.own(FAMILY_IPV4, VRID, false, Duration::from_millis(200));
    let (_, b) = arp_request(VIP4, None);
    assert_eq!(h.run(&b), XDP_TX);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(h.run(&b), XDP_TX, "within the bound");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        h.run(&b),
        XDP_DROP,
        "250 ms after the last heartbeat, bound 200 ms"
    );
}

/// Checks an NS → NA run against `NdpFrame::answer(ns, vmac, true)`, byte for byte.
fn assert_answered(h: &mut Harness, ns_bytes: &[u8]) -> NdpFrame {
    let ns = NdpFrame::parse(ns_bytes).expect("the test NS parses");
    let (action, out) = h.run_out(ns_bytes);
    assert_eq!(action, XDP_TX);
    let expected = NdpFrame::answer(&ns, vmac6(), true).to_bytes();
    assert_eq!(
        out, expected,
        "NA == codec's NdpFrame::answer (length included)"
    );
    NdpFrame::parse(&out).expect("our NA parses, checksum included")
}

#[test]
fn neighbor_solicitation_for_owned_vip_is_answered_with_the_vmac() {
    let mut h = owner_harness(false);
    let na = assert_answered(&mut h, &neighbor_solicit(REQ6, VIP6, None));
    assert_eq!(na.eth_dst, REQ_MAC);
    assert_eq!(na.eth_src, vmac6());
    assert_eq!(na.src_ip, VIP6);
    assert_eq!(na.dst_ip, REQ6);
    assert_eq!(
        na.msg,
        NdpMessage::NeighborAdvert {
            router: true,
            solicited: true,
            override_: true,
            target: VIP6,
            target_lladdr: Some(vmac6()),
        }
    );
    assert_eq!(h.counter(Counter::NsReplied), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn dad_probe_is_answered_to_all_nodes_and_the_frame_grows() {
    let mut h = owner_harness(false);
    let ns = neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, None);
    assert_eq!(ns.len(), 78, "DAD NS: no source link-layer option");
    let na = assert_answered(&mut h, &ns);
    assert_eq!(na.eth_dst, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    assert_eq!(na.dst_ip, "ff02::1".parse::<Ipv6Addr>().unwrap());
    assert!(matches!(
        na.msg,
        NdpMessage::NeighborAdvert {
            solicited: false,
            override_: true,
            router: true,
            ..
        }
    ));
    // Linux's DAD probes carry a nonce option (RFC 7527): same length as the NA.
    let with_nonce = with_ndp_option(&ns, 14, &[1, 2, 3, 4, 5, 6]);
    assert_eq!(with_nonce.len(), 86);
    assert_answered(&mut h, &with_nonce);
    assert_eq!(h.counter(Counter::NsReplied), 2);
    h.assert_outcomes_add_up();
}

#[test]
fn ns_with_longer_options_or_a_vlan_tag_is_answered_exactly() {
    let mut h = owner_harness(false);
    // Source link-layer option plus a 16-byte unknown option: the frame shrinks.
    let ns = neighbor_solicit(REQ6, VIP6, None);
    let long = with_ndp_option(&ns, 200, &[0xab; 14]);
    assert_eq!(long.len(), 86 + 16);
    assert_answered(&mut h, &long);
    // Trailing bytes after the IPv6 packet are not part of the answer either.
    let mut padded = ns.clone();
    padded.extend_from_slice(&[0xee; 6]);
    let (action, out) = h.run_out(&padded);
    assert_eq!(action, XDP_TX);
    assert_eq!(out.len(), 86);
    // Tagged.
    let tagged = neighbor_solicit(REQ6, VIP6, Some(0x3000 | 7));
    assert_eq!(tagged[12..14], [0x81, 0x00]);
    assert_eq!(assert_answered(&mut h, &tagged).vlan, Some(0x3000 | 7));
    let dad_tagged = neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, Some(7));
    assert_answered(&mut h, &dad_tagged);
    assert_eq!(h.counter(Counter::NsReplied), 4);
    h.assert_outcomes_add_up();
}

#[test]
fn ns_not_ours_invalid_or_stale() {
    let mut h = owner_harness(false);
    let ns = neighbor_solicit(REQ6, VIP6, None);
    // Hop limit not 255 (RFC 4861 §7.1.1): not answered, left to the kernel (which drops it).
    let mut bad = ns.clone();
    bad[14 + 7] = 64;
    assert_eq!(h.run_out(&bad), (XDP_PASS, bad.clone()));
    // Code not 0.
    let mut bad = ns.clone();
    bad[14 + 41] = 1;
    assert_eq!(h.run(&bad), XDP_PASS);
    // DAD probe not to a solicited-node group.
    let mut bad = neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, None);
    bad[14 + 24..14 + 40].copy_from_slice(&VIP6.octets());
    assert_eq!(h.run(&bad), XDP_PASS);
    // IPv6 payload length beyond the frame.
    let mut bad = ns.clone();
    bad[14 + 5] = 200;
    assert_eq!(h.run(&bad), XDP_PASS);
    assert_eq!(h.counter(Counter::NsInvalid), 4);
    // Another target.
    let other = neighbor_solicit(REQ6, "2001:db8::200".parse().unwrap(), None);
    assert_eq!(h.run_out(&other), (XDP_PASS, other.clone()));
    assert_eq!(h.counter(Counter::PassIpOther), 1);
    // Stale: dropped.
    go_stale(&mut h);
    assert_eq!(h.run(&ns), XDP_DROP);
    assert_eq!(h.counter(Counter::VipStaleDropped), 1);
    // Not owned: dropped (never left to the kernel), fresh heartbeat or not.
    h.fp.set_router(FAMILY_IPV6, VRID, false, false, BOUND)
        .unwrap();
    assert_eq!(h.run_out(&ns), (XDP_DROP, ns.clone()));
    h.beat();
    assert_eq!(h.run(&ns), XDP_DROP);
    let dad = neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, None);
    assert_eq!(h.run(&dad), XDP_DROP, "a DAD probe for the VIP too");
    assert_eq!(h.counter(Counter::NsVipNotOwned), 3);
    // Removed from the maps: passed.
    h.fp.remove_vip(IpAddr::V6(VIP6)).unwrap();
    assert_eq!(h.run_out(&ns), (XDP_PASS, ns.clone()));
    assert_eq!(h.counter(Counter::NsReplied), 0);
    h.assert_outcomes_add_up();
}

#[test]
fn ns_from_a_multicast_source_is_not_answered() {
    // RFC 4861 §7.1.1 / RFC 4291 §2.7: an NS never comes from a multicast address (the codec
    // refuses it, `FrameError::NdpMulticastSource`); answering would send the NA to a group.
    let mut h = owner_harness(false);
    for src in ["ff02::1", "ff02::1:ff00:100", "ff05::2"] {
        let ns = neighbor_solicit(src.parse().unwrap(), VIP6, None);
        assert_eq!(h.run_out(&ns), (XDP_PASS, ns.clone()), "from {src}");
    }
    assert_eq!(h.counter(Counter::NsInvalid), 3);
    assert_eq!(h.counter(Counter::NsReplied), 0);
    h.assert_outcomes_add_up();
}

/// An ARP request for `target` from sender `sha` / `spa` in a frame from `eth_src`, padded to 60.
fn arp_request_from(eth_src: [u8; 6], sha: [u8; 6], spa: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut b = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: MacAddr(eth_src),
        vlan: None,
        arp: ArpRepr::request(MacAddr(sha), spa, target),
    }
    .to_bytes();
    b.resize(60, 0);
    b
}

const BROADCAST: [u8; 6] = [0xff; 6];
const MCAST4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
const MCAST6: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];

#[test]
fn arp_from_a_group_sender_mac_is_dropped_whatever_the_state() {
    // A station's address is never a group address; the answer would go to (or name) a group.
    // Linux (6.18) answers such a request itself, so it is dropped, not passed.
    let mut h = owner_harness(false);
    let req = REQ_MAC.0;
    let cases = [
        ("broadcast sender", req, BROADCAST),
        ("multicast sender", req, MCAST4),
        ("broadcast Ethernet source", BROADCAST, req),
        ("multicast Ethernet source", MCAST4, req),
        ("group probe sender", req, BROADCAST),
    ];
    for (i, (what, eth_src, sha)) in cases.iter().enumerate() {
        let spa = if i == 4 { Ipv4Addr::UNSPECIFIED } else { REQ4 };
        let b = arp_request_from(*eth_src, *sha, spa, VIP4);
        assert_eq!(h.run_out(&b), (XDP_DROP, b.clone()), "{what}");
    }
    assert_eq!(h.counter(Counter::GroupSenderDropped), 5);
    // Not owned, or stale: still this outcome (dropped either way).
    let b = arp_request_from(req, BROADCAST, REQ4, VIP4);
    go_stale(&mut h);
    assert_eq!(h.run(&b), XDP_DROP);
    h.fp.set_router(FAMILY_IPV4, VRID, false, false, BOUND)
        .unwrap();
    h.beat();
    assert_eq!(h.run(&b), XDP_DROP);
    assert_eq!(h.counter(Counter::GroupSenderDropped), 7);
    // Not a VIP of ours: passed, not our business.
    let other = arp_request_from(req, BROADCAST, REQ4, Ipv4Addr::new(10, 0, 0, 200));
    assert_eq!(h.run_out(&other), (XDP_PASS, other.clone()));
    assert_eq!(h.counter(Counter::ArpSeen), 1);
    assert_eq!(h.counter(Counter::ArpReplied), 0);
    h.assert_outcomes_add_up();
}

#[test]
fn arp_probe_from_a_unicast_sender_is_still_answered() {
    // RFC 5227: sender IP 0.0.0.0, unicast sender MAC; the answer goes to the prober.
    let mut h = owner_harness(false);
    let req = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: REQ_MAC,
        vlan: None,
        arp: ArpRepr::request(REQ_MAC, Ipv4Addr::UNSPECIFIED, VIP4),
    };
    let mut bytes = req.to_bytes();
    bytes.resize(60, 0);
    let (action, out) = h.run_out(&bytes);
    assert_eq!(action, XDP_TX);
    let mut expected = ArpFrame::reply_to(&req, vmac4()).to_bytes();
    expected.resize(60, 0);
    assert_eq!(out, expected);
    assert_eq!(h.counter(Counter::ArpReplied), 1);
    assert_eq!(h.counter(Counter::GroupSenderDropped), 0);
    h.assert_outcomes_add_up();
}

/// An NS for VIP6 from REQ6 whose source link-layer address option holds `slla`, in a frame
/// from REQ_MAC.
fn ns_with_slla(slla: [u8; 6]) -> Vec<u8> {
    let mut b = NdpFrame::solicit(MacAddr(slla), REQ6, VIP6).to_bytes();
    b[6..12].copy_from_slice(&REQ_MAC.0);
    assert_eq!(b[14 + 64..14 + 72], [[1, 1].as_slice(), &slla].concat()[..]);
    b
}

#[test]
fn ns_from_a_group_sender_mac_is_dropped() {
    let mut h = owner_harness(false);
    // Ethernet source a group address (with and without a source link-layer option).
    for src in [MCAST6, BROADCAST] {
        let mut b = neighbor_solicit(REQ6, VIP6, None);
        b[6..12].copy_from_slice(&src);
        assert_eq!(h.run_out(&b), (XDP_DROP, b.clone()), "from {src:02x?}");
        let mut dad = neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, None);
        dad[6..12].copy_from_slice(&src);
        assert_eq!(
            h.run_out(&dad),
            (XDP_DROP, dad.clone()),
            "DAD from {src:02x?}"
        );
    }
    // Source link-layer address option a group address, first option or behind another one.
    for slla in [MCAST6, BROADCAST] {
        let b = ns_with_slla(slla);
        assert_eq!(h.run_out(&b), (XDP_DROP, b.clone()), "slla {slla:02x?}");
    }
    let nonce_then_group = with_ndp_option(
        &with_ndp_option(&neighbor_solicit(REQ6, VIP6, None), 14, &[1, 2, 3, 4, 5, 6]),
        1,
        &MCAST6,
    );
    assert_eq!(h.run(&nonce_then_group), XDP_DROP);
    assert_eq!(h.counter(Counter::GroupSenderDropped), 7);
    assert_eq!(h.counter(Counter::NsReplied), 0);
    // A unicast one is answered.
    assert_answered(&mut h, &ns_with_slla([0x02, 0, 0, 0, 0, 0x42]));
    h.assert_outcomes_add_up();
}

#[test]
fn ns_with_invalid_options_is_not_answered() {
    // RFC 4861 §7.1.1: every option longer than 0, and no source link-layer address option in
    // a DAD probe. Passed (the kernel drops it), as for the other validation failures.
    let mut h = owner_harness(false);
    let ns = neighbor_solicit(REQ6, VIP6, None);
    let mut zero = ns.clone();
    zero[14 + 64 + 1] = 0;
    assert_eq!(
        h.run_out(&zero),
        (XDP_PASS, zero.clone()),
        "zero-length option"
    );
    let mut zero2 = with_ndp_option(&ns, 200, &[0; 6]);
    zero2[14 + 72 + 1] = 0;
    assert_eq!(h.run(&zero2), XDP_PASS, "zero-length second option");
    let mut long = ns.clone();
    long[14 + 64 + 1] = 2;
    assert_eq!(h.run(&long), XDP_PASS, "option beyond the message");
    let dad = neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, None);
    let dad_slla = with_ndp_option(&dad, 1, &REQ_MAC.0);
    assert_eq!(
        h.run(&dad_slla),
        XDP_PASS,
        "DAD with a source link-layer option"
    );
    assert_eq!(h.counter(Counter::NsInvalid), 4);
    assert_eq!(h.counter(Counter::NsReplied), 0);
    h.assert_outcomes_add_up();
}

/// An IPv4 UDP packet (checksums irrelevant to the fast path) from REQ4 to `dst`, Ethernet
/// destination `eth_dst`.
fn udp4(eth_dst: [u8; 6], dst: Ipv4Addr) -> Vec<u8> {
    let mut f = v4_frame(VRID, 100);
    f[0..6].copy_from_slice(&eth_dst);
    f[6..12].copy_from_slice(&REQ_MAC.0);
    f[14 + 9] = 17;
    f[14 + 16..14 + 20].copy_from_slice(&dst.octets());
    f
}

/// An ICMPv6 message of `icmp_type` from SRC6 to `dst`, Ethernet destination `eth_dst`.
fn icmp6(eth_dst: [u8; 6], dst: Ipv6Addr, icmp_type: u8) -> Vec<u8> {
    let mut f = v6_frame(VRID);
    f[0..6].copy_from_slice(&eth_dst);
    f[14 + 6] = 58;
    f[14 + 24..14 + 40].copy_from_slice(&dst.octets());
    f[14 + 40] = icmp_type;
    f
}

#[test]
fn frames_to_an_owned_vmac_are_rewritten_to_the_interface_mac() {
    let mut h = owner_harness(true);
    let other = Ipv4Addr::new(10, 0, 0, 50);
    let f = udp4(vmac(FAMILY_IPV4, VRID), other);
    let (action, out) = h.run_out(&f);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out[0..6], IFACE_MAC, "destination rewritten");
    assert_eq!(out[6..], f[6..], "nothing else touched");
    assert_eq!(h.counter(Counter::VmacRewritten), 1);
    assert_eq!(
        h.counter(Counter::PassIpOther),
        1,
        "outcome stays the IP one"
    );
    // IPv6 VMAC.
    let f6 = icmp6(vmac(FAMILY_IPV6, VRID), "2001:db8::7".parse().unwrap(), 128);
    let (action, out) = h.run_out(&f6);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out[0..6], IFACE_MAC);
    assert_eq!(h.counter(Counter::VmacRewritten), 2);
    // The IPv4 VMAC of an IPv6-only router is not ours: VRID 52 exists for IPv6 only.
    h.own(FAMILY_IPV6, 52, true, BOUND);
    let f = udp4(vmac(FAMILY_IPV4, 52), other);
    assert_eq!(h.run_out(&f), (XDP_PASS, f.clone()));
    assert_eq!(h.counter(Counter::VmacNotOwned), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn vmac_frames_are_left_alone_when_not_owned_stale_or_without_iface_mac() {
    let mut h = owner_harness(true);
    let f = udp4(vmac(FAMILY_IPV4, VRID), Ipv4Addr::new(10, 0, 0, 50));
    go_stale(&mut h);
    assert_eq!(h.run_out(&f), (XDP_PASS, f.clone()), "stale: untouched");
    h.fp.set_router(FAMILY_IPV4, VRID, false, false, BOUND)
        .unwrap();
    h.beat();
    assert_eq!(h.run_out(&f), (XDP_PASS, f.clone()), "not owned: untouched");
    assert_eq!(h.counter(Counter::VmacNotOwned), 2);
    assert_eq!(h.counter(Counter::VmacRewritten), 0);
    // Owned, but no interface MAC configured.
    let mut h = Harness::new(&[]);
    h.own(FAMILY_IPV4, VRID, true, BOUND);
    assert_eq!(h.run_out(&f), (XDP_PASS, f.clone()));
    assert_eq!(h.counter(Counter::VmacNoIfaceMac), 1);
    h.assert_outcomes_add_up();
}

#[test]
fn accept_mode_off_drops_ip_to_the_vip_but_not_arp_or_nd() {
    let mut h = owner_harness(false);
    let to_vip = udp4(IFACE_MAC, VIP4);
    assert_eq!(h.run(&to_vip), XDP_DROP);
    let echo6 = icmp6(IFACE_MAC, VIP6, 128);
    assert_eq!(h.run(&echo6), XDP_DROP);
    assert_eq!(h.counter(Counter::VipNotAccepted), 2);
    // Through the VMAC too.
    assert_eq!(h.run(&udp4(vmac(FAMILY_IPV4, VRID), VIP4)), XDP_DROP);
    // Neighbor Discovery to the VIP is never subject to Accept_Mode.
    for t in 133..=137u8 {
        if t != 135 {
            assert_eq!(h.run(&icmp6(IFACE_MAC, VIP6, t)), XDP_PASS, "ICMPv6 {t}");
        }
    }
    assert_eq!(h.run(&neighbor_solicit(REQ6, VIP6, None)), XDP_TX);
    assert_eq!(h.run(&arp_request(VIP4, None).1), XDP_TX);
    // Not to a VIP.
    assert_eq!(
        h.run(&udp4(IFACE_MAC, Ipv4Addr::new(10, 0, 0, 9))),
        XDP_PASS
    );
    assert_eq!(h.counter(Counter::VipNotAccepted), 3);
    // Stale: treated as not owned, passed.
    go_stale(&mut h);
    assert_eq!(h.run(&to_vip), XDP_PASS);
    assert_eq!(h.counter(Counter::VipNotAccepted), 3);
    h.assert_outcomes_add_up();
}

#[test]
fn accept_mode_on_passes_ip_to_the_vip() {
    let mut h = owner_harness(true);
    assert_eq!(h.run(&udp4(IFACE_MAC, VIP4)), XDP_PASS);
    assert_eq!(h.run(&icmp6(IFACE_MAC, VIP6, 128)), XDP_PASS);
    assert_eq!(h.counter(Counter::VipAccepted), 2);
    assert_eq!(h.counter(Counter::VipNotAccepted), 0);
    h.assert_outcomes_add_up();
}

#[test]
fn responder_frames_cut_at_every_length_never_tx() {
    let mut h = owner_harness(false);
    let frames = [
        ("arp", arp_request(VIP4, None).1),
        ("arp vlan", arp_request(VIP4, Some(3)).1),
        ("ns", neighbor_solicit(REQ6, VIP6, None)),
        ("dad", neighbor_solicit(Ipv6Addr::UNSPECIFIED, VIP6, None)),
    ];
    for (what, f) in &frames {
        // ARP frames carry padding past byte 42/46: only cuts inside the ARP packet matter.
        let end = if what.starts_with("arp") {
            if what.ends_with("vlan") {
                46
            } else {
                42
            }
        } else {
            f.len()
        };
        for len in 14..end {
            assert_eq!(h.run(&f[..len]), XDP_PASS, "{what} cut at {len}");
        }
        assert_eq!(h.run(f), XDP_TX, "{what} whole");
    }
    h.assert_outcomes_add_up();
}

#[test]
fn verifier_statistics() {
    let mut fp = FastPath::load().expect("load");
    let info = fp.program().unwrap().info().unwrap();
    check_verifier_statistics("vrrp_xdp", &info);
}

#[test]
fn arp_reply_parses_back_to_the_requested_mapping() {
    // The reply's ARP body, read with the codec, maps the VIP to the VMAC for the requester.
    let mut h = owner_harness(false);
    let (_, b) = arp_request(VIP4, None);
    let (_, out) = h.run_out(&b);
    let arp = ArpRepr::parse(&out[14..]).unwrap();
    assert_eq!(
        arp,
        ArpRepr::reply_to(&ArpRepr::request(REQ_MAC, REQ4, VIP4), vmac4())
    );
}

// ---------------------------------------------------------------------------------------------
// Wake-ups: a routine advert goes into the ring without waking the agent.

/// Pins the calling thread to the CPU it runs on: `LAST_ADVERTS` is per CPU, and every test run
/// must see the same slot.
fn pin_to_this_cpu() {
    // SAFETY: plain libc calls on a local cpu_set_t.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(
            cpu >= 0,
            "sched_getcpu: {}",
            std::io::Error::last_os_error()
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// An edge-triggered epoll on the ring buffer: it reports the ring only when the kernel woke its
/// waiters (a record submitted without a wake-up adds data but no event).
struct WakeWatch(std::os::fd::OwnedFd);

impl WakeWatch {
    fn new(ring: &impl std::os::fd::AsRawFd) -> Self {
        use std::os::fd::FromRawFd as _;
        // SAFETY: plain epoll calls; the fd is owned by the returned value.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            assert!(ep >= 0, "epoll_create1");
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: 0,
            };
            assert_eq!(
                libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ring.as_raw_fd(), &mut ev),
                0,
                "epoll_ctl: {}",
                std::io::Error::last_os_error()
            );
            Self(std::os::fd::OwnedFd::from_raw_fd(ep))
        }
    }

    /// Whether the ring's waiters were woken within `ms` (the kernel wakes them from an
    /// irq_work, just after the program ran).
    fn woke(&self, ms: i32) -> bool {
        use std::os::fd::AsRawFd as _;
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: one event into a local.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), &mut ev, 1, ms) };
        assert!(n >= 0, "epoll_wait: {}", std::io::Error::last_os_error());
        n == 1
    }
}

/// A harness for VRID 51 (IPv4) marked as election mode marks it: routine adverts quiet.
fn quiet_harness() -> Harness {
    let mut h = Harness::new(&[]);
    h.fp.set_vrid_flags(FAMILY_IPV4, 51, VRID_ON | VRID_QUIET)
        .unwrap();
    h
}

#[test]
fn a_repeated_advert_is_queued_quietly_and_a_changed_one_wakes() {
    pin_to_this_cpu();
    let mut h = quiet_harness();
    let w = WakeWatch::new(&h.events);
    let other_sender = |prio| {
        AdvertFrame::multicast(
            v4_advert(51, prio, 1),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
        )
        .to_bytes(ChecksumOpts::default())
        .unwrap()
    };
    // (frame, quiet?) in order; every advert reaches the ring either way.
    let steps: [(&str, Vec<u8>, bool); 10] = [
        ("first advert", v4_frame(51, 100), false),
        ("the same again", v4_frame(51, 100), true),
        ("and again", v4_frame(51, 100), true),
        ("another priority", v4_frame(51, 101), false),
        ("the same again", v4_frame(51, 101), true),
        (
            "another address list",
            {
                let r = v4_advert(51, 101, 2);
                AdvertFrame::multicast(r, IpAddr::V4(SRC4))
                    .to_bytes(ChecksumOpts::default())
                    .unwrap()
            },
            false,
        ),
        ("another sender", other_sender(101), false),
        ("the same again", other_sender(101), true),
        ("priority 0", other_sender(0), false),
        ("priority 0 again", other_sender(0), false),
    ];
    let mut quiet = 0;
    for (what, frame, routine) in &steps {
        assert_eq!(h.run(frame), XDP_DROP, "{what}");
        quiet += u64::from(*routine);
        assert_eq!(h.counter(Counter::VrrpQuiet), quiet, "{what}: quiet count");
        // A routine advert must not wake the reader; any other must (waited for long enough
        // to see the kernel's deferred wake-up).
        assert_eq!(
            w.woke(if *routine { 200 } else { 2000 }),
            !routine,
            "{what}: woke"
        );
        let ev = h.events();
        assert_eq!(ev.len(), 1, "{what}: the advert is in the ring either way");
        assert_eq!(
            &ev[0].payload[1..3],
            &frame[14 + 20 + 1..14 + 20 + 3],
            "{what}"
        );
    }
    // A changed advert behind a routine one nobody read yet still wakes the reader (the
    // kernel's default, adaptive notification would only wake a reader that has caught up).
    assert_eq!(h.run(&other_sender(101)), XDP_DROP);
    assert!(w.woke(2000), "after priority 0: woke");
    assert_eq!(h.events().len(), 1);
    assert_eq!(h.run(&other_sender(101)), XDP_DROP);
    assert!(!w.woke(200), "routine, left unread: woke");
    assert_eq!(h.run(&other_sender(102)), XDP_DROP);
    assert!(
        w.woke(2000),
        "changed, behind an unread routine advert: woke"
    );
    assert_eq!(h.events().len(), 2);
    quiet += 1;
    assert_eq!(h.counter(Counter::VrrpQuiet), quiet);
    // Master: every advert wakes, even one equal to the last.
    h.own(FAMILY_IPV4, 51, false, BOUND);
    for i in 0..2 {
        assert_eq!(h.run(&other_sender(101)), XDP_DROP);
        assert!(w.woke(2000), "owned router, advert {i}: woke");
        assert_eq!(h.events().len(), 1);
    }
    assert_eq!(
        h.counter(Counter::VrrpQuiet),
        quiet,
        "nothing quiet while owned"
    );
    assert_eq!(h.counter(Counter::VrrpToUser), steps.len() as u64 + 5);
    h.assert_outcomes_add_up();
}

#[test]
fn without_vrid_quiet_every_advert_wakes_the_reader() {
    // Monitor mode (`set_vrid`): it logs each advert as it comes, nothing drains the ring later.
    pin_to_this_cpu();
    let mut h = Harness::new(&[(FAMILY_IPV4, 51)]);
    let w = WakeWatch::new(&h.events);
    for i in 0..3 {
        assert_eq!(h.run(&v4_frame(51, 100)), XDP_DROP);
        assert!(w.woke(2000), "advert {i}: woke");
        assert_eq!(h.events().len(), 1);
    }
    assert_eq!(h.counter(Counter::VrrpQuiet), 0);
}

#[test]
fn a_filling_ring_wakes_the_reader_even_for_routine_adverts() {
    pin_to_this_cpu();
    let mut h = quiet_harness();
    let w = WakeWatch::new(&h.events);
    let frame = v4_frame(51, 100);
    assert_eq!(h.run(&frame), XDP_DROP);
    assert!(w.woke(2000));
    h.events();
    // 400 routine adverts undrained: 130 KB, more than the quarter of the ring after which
    // an advert wakes the reader all the same.
    h.run_repeat(&frame, 400);
    let quiet = h.counter(Counter::VrrpQuiet);
    assert!(quiet > 0 && quiet < 400, "quiet {quiet} of 400");
    assert!(w.woke(2000), "a quarter-full ring wakes the reader");
    assert_eq!(h.events().len(), 400);
    assert_eq!(h.counter(Counter::RingbufFull), 0);
    h.assert_outcomes_add_up();
}
