//! The XDP program under the kernel's BPF_PROG_TEST_RUN: crafted frames in, action, ring-buffer
//! events and counters out. Frames are built with the agent's own wire codec, so these tests
//! also pin down that what the agent emits is what the fast path classifies.
//!
//! Needs root (CAP_BPF). Each test loads its own copy of the program, so maps are not shared.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::{
    maps::{MapData, RingBuf},
    TestRun as _, TestRunOptions,
};
use vrrp_agent::{
    clock::monotonic_ns,
    fastpath::{parse_event, FastPath},
    wire::{AdvertFrame, ArpFrame, Auth, ChecksumOpts, MacAddr, Version, VrrpRepr},
};
use vrrp_common::{
    AdvertEvent, Counter, EVENT_FLAG_TRUNCATED, EVENT_FLAG_VLAN, FAMILY_IPV4, FAMILY_IPV6,
    VRRP_PAYLOAD_MAX,
};
use vrrp_integration_tests::require_root;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

struct Harness {
    fp: FastPath,
    events: RingBuf<MapData>,
}

impl Harness {
    fn new(vrids: &[(u8, u8)]) -> Self {
        require_root();
        let mut fp = FastPath::load().expect("load XDP program");
        for &(family, vrid) in vrids {
            fp.set_vrid(family, vrid, true).unwrap();
        }
        let events = fp.take_events().unwrap();
        Harness { fp, events }
    }

    fn run(&mut self, frame: &[u8]) -> u32 {
        self.run_repeat(frame, 1)
    }

    fn run_repeat(&mut self, frame: &[u8], repeat: u32) -> u32 {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..Default::default()
        };
        self.fp
            .program()
            .unwrap()
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN")
            .return_value
    }

    fn events(&mut self) -> Vec<AdvertEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            out.push(parse_event(&item).expect("event record has the AdvertEvent size"));
        }
        out
    }

    fn counter(&self, c: Counter) -> u64 {
        self.fp.counters().unwrap().get(c)
    }

    fn assert_outcomes_add_up(&self) {
        let c = self.fp.counters().unwrap();
        assert_eq!(
            c.outcomes(),
            c.get(Counter::Frames),
            "every frame must bump exactly one outcome counter: {}",
            c.summary()
        );
    }
}

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
}
