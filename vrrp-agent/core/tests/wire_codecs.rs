//! Frame-level codecs (advert frames, ARP, NDP) and receive validation, through the public API.
#![allow(clippy::cloned_ref_to_slice_refs)]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vrrp_core::wire::checksum;
use vrrp_core::wire::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}
fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

// Whole frames from the captures in tests/fixtures.
/// FRR v3 IPv4 advert (VMAC source, DF set): vrrpv3 frr frame 1.
const FRR_V3: &str =
    "01005e00001200005e000133080045c0002068bc4000ff7026e40afa0001e0000012313396010064417f0afa0064";
/// keepalived v3 IPv6 advert: vrrpv3_ipv6 frame 1.
const KA_V3_V6: &str = "33330000001202000afa000186dd6c0951b7001870fffe8000000000000000000afffefa0001ff0200000000000000000000000000123133960100642ffdfd000250000000000000000000000100";
/// keepalived unsolicited NA: vrrpv3_ipv6 frame 2.
const KA_NA: &str = "33330000000102000afa000186dd6000000000203afffd000250000000000000000000000100ff0200000000000000000000000000018800490320000000fd000250000000000000000000000100020102000afa0001";
/// FRR gratuitous ARP: frr_vrrpv3_ipv4 frame 2.
const FRR_GARP: &str =
    "ffffffffffff00005e0001330806000108000604000100005e0001330afa0064ffffffffffff0afa0064";

fn v3_repr() -> VrrpRepr {
    VrrpRepr {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        max_advert_int: 100,
        auth: Auth::None,
        addrs: vec![v4("10.250.0.100")],
    }
}

// ---------------------------------------------------------------- advert frames

#[test]
fn advert_frame_parses_frr_capture() {
    let f = AdvertFrame::parse(&hex(FRR_V3), ChecksumOpts::default()).unwrap();
    assert_eq!(f.eth_src, vmac(Family::V4, 51));
    assert_eq!(f.eth_dst, MacAddr([0x01, 0x00, 0x5e, 0, 0, 0x12]));
    assert_eq!(
        f.ip,
        IpPair::new(Ipv4Addr::new(10, 250, 0, 1), VRRP_GROUP_V4)
    );
    assert_eq!((f.hop_limit, f.tos), (255, 0xc0));
    assert_eq!(f.vrrp.priority, 150);
}

#[test]
fn advert_frame_ipv6_emit_matches_capture_except_flow_label() {
    let bytes = hex(KA_V3_V6);
    let f = AdvertFrame::parse(&bytes, ChecksumOpts::default()).unwrap();
    assert_eq!(f.vrrp.addrs, vec![v6("fd00:250::100")]);
    assert_eq!(f.ip.dst, IpAddr::V6(VRRP_GROUP_V6));
    let mut ours = f.to_bytes(ChecksumOpts::default()).unwrap();
    // keepalived sets a flow label (low nibble of byte 15, bytes 16-17); we send 0.
    // Everything else, traffic class 0xc0 included (0x6c 0x0_), is equal.
    assert_eq!(&ours[14..18], &[0x6c, 0, 0, 0]);
    assert_ne!(&bytes[15..18], &[0, 0, 0]);
    ours[15..18].copy_from_slice(&bytes[15..18]);
    assert_eq!(ours, bytes);
}

#[test]
fn multicast_advert_layout() {
    let f = AdvertFrame::multicast(v3_repr(), v4("10.250.0.2"));
    let b = f.to_bytes(ChecksumOpts::default()).unwrap();
    assert_eq!(b.len(), 14 + 20 + 12);
    assert_eq!(&b[0..6], &[0x01, 0x00, 0x5e, 0, 0, 0x12]);
    assert_eq!(&b[6..12], &[0, 0, 0x5e, 0, 1, 51]);
    assert_eq!(&b[12..14], &[0x08, 0x00]);
    assert_eq!(b[14], 0x45);
    assert_eq!(b[15], 0xc0, "DSCP CS6");
    assert_eq!(b[22], 255, "TTL");
    assert_eq!(b[23], 112, "protocol");
    assert_eq!(checksum::checksum(&b[14..34]), 0, "IPv4 header checksum");
    assert_eq!(&b[30..34], &[224, 0, 0, 18]);
    // The VRRP part equals what the captured FRR frame carries for the same fields.
    let frr = AdvertFrame::parse(&hex(FRR_V3), ChecksumOpts::default()).unwrap();
    let mut same = frr.clone();
    same.ip.src = v4("10.250.0.2");
    same.vrrp.priority = 100;
    assert_eq!(
        &b[34..],
        &same
            .vrrp
            .to_bytes(&same.ip, ChecksumOpts::default())
            .unwrap()[..]
    );

    let f6 = AdvertFrame::multicast(
        VrrpRepr {
            addrs: vec![v6("2001:db8::1")],
            ..v3_repr()
        },
        v6("fe80::1"),
    );
    let b6 = f6.to_bytes(ChecksumOpts::default()).unwrap();
    assert_eq!(&b6[0..6], &[0x33, 0x33, 0, 0, 0, 0x12]);
    assert_eq!(&b6[6..12], &[0, 0, 0x5e, 0, 2, 51]);
    assert_eq!(&b6[12..14], &[0x86, 0xdd]);
    assert_eq!(b6[14] >> 4, 6);
    assert_eq!(
        ((b6[14] & 0x0f) << 4) | (b6[15] >> 4),
        0xc0,
        "traffic class"
    );
    assert_eq!((b6[20], b6[21]), (112, 255), "next header, hop limit");
}

#[test]
fn unicast_advert_and_vlan_tag() {
    let peer_mac = MacAddr([2, 0, 0, 0, 0, 9]);
    let mut f = AdvertFrame::unicast(v3_repr(), v4("10.0.0.1"), v4("10.0.0.9"), peer_mac);
    f.vlan = Some(100);
    let b = f.to_bytes(ChecksumOpts::default()).unwrap();
    assert_eq!(&b[12..16], &[0x81, 0x00, 0x00, 100]);
    assert_eq!(&b[16..18], &[0x08, 0x00]);
    let back = AdvertFrame::parse(&b, ChecksumOpts::default()).unwrap();
    assert_eq!(back, f);
    assert_eq!(back.eth_dst, peer_mac);
}

#[test]
fn ethernet_padding_is_ignored() {
    let mut b = hex(FRR_V3);
    b.resize(60, 0xee);
    assert!(AdvertFrame::parse(&b, ChecksumOpts::default()).is_ok());
    let mut a = hex(FRR_GARP);
    a.resize(60, 0xee);
    assert!(ArpFrame::parse(&a).is_ok());
}

#[test]
fn frame_errors() {
    let o = ChecksumOpts::default();
    let good = hex(FRR_V3);
    assert!(matches!(
        AdvertFrame::parse(&good[..10], o),
        Err(FrameError::EthernetTruncated { .. })
    ));
    assert!(matches!(
        AdvertFrame::parse(&good[..30], o),
        Err(FrameError::Ipv4Malformed)
    ));
    let mut b = good.clone();
    b[22] = 254; // TTL changed, header checksum not updated
    assert_eq!(AdvertFrame::parse(&b, o), Err(FrameError::Ipv4BadChecksum));
    let mut b = good.clone();
    b[12] = 0x88;
    b[13] = 0xb5;
    assert_eq!(
        AdvertFrame::parse(&b, o),
        Err(FrameError::UnexpectedEtherType(0x88b5))
    );
    // A fragment: set MF and fix the header checksum.
    let mut b = good.clone();
    b[20] |= 0x20;
    refill_ipv4(&mut b, 14);
    assert_eq!(AdvertFrame::parse(&b, o), Err(FrameError::Ipv4Fragment));
    // QinQ.
    let mut b = good[..12].to_vec();
    b.extend_from_slice(&[0x81, 0, 0, 1, 0x81, 0, 0, 2]);
    b.extend_from_slice(&good[12..]);
    assert_eq!(AdvertFrame::parse(&b, o), Err(FrameError::StackedVlan));
    // Not VRRP.
    let mut b = good.clone();
    b[23] = 17;
    refill_ipv4(&mut b, 14);
    assert_eq!(
        AdvertFrame::parse(&b, o),
        Err(FrameError::UnexpectedProtocol(17))
    );
    // VRRP errors are wrapped.
    let mut b = good.clone();
    b[36] = 1;
    assert!(matches!(
        AdvertFrame::parse(&b, o),
        Err(FrameError::Vrrp(VrrpError::BadChecksum { .. }))
    ));
}

fn refill_ipv4(frame: &mut [u8], off: usize) {
    frame[off + 10] = 0;
    frame[off + 11] = 0;
    let c = checksum::checksum(&frame[off..off + 20]);
    frame[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
}

// ---------------------------------------------------------------- ARP

#[test]
fn arp_parses_frr_garp() {
    let f = ArpFrame::parse(&hex(FRR_GARP)).unwrap();
    assert_eq!(f.eth_dst, MacAddr([0xff; 6]));
    assert_eq!(f.arp.op, ArpOp::Request);
    assert_eq!(f.arp.sender_mac, vmac(Family::V4, 51));
    assert_eq!(f.arp.sender_ip, Ipv4Addr::new(10, 250, 0, 100));
    assert!(f.arp.is_gratuitous());
    // FRR (like keepalived) puts ff:ff:.. in the target MAC; we emit zero (RFC 5227), else equal.
    let ours = ArpFrame::gratuitous(vmac(Family::V4, 51), Ipv4Addr::new(10, 250, 0, 100));
    let mut expected = hex(FRR_GARP);
    expected[32..38].fill(0);
    assert_eq!(ours.to_bytes(), expected);
}

#[test]
fn arp_reply_layout() {
    let asker = MacAddr([2, 0, 0, 0, 0, 7]);
    let req = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: asker,
        vlan: None,
        arp: ArpRepr::request(
            asker,
            Ipv4Addr::new(10, 0, 0, 7),
            Ipv4Addr::new(10, 0, 0, 100),
        ),
    };
    let vm = vmac(Family::V4, 7);
    let rep = ArpFrame::reply_to(&ArpFrame::parse(&req.to_bytes()).unwrap(), vm);
    let b = rep.to_bytes();
    assert_eq!(b.len(), 42);
    assert_eq!(&b[0..6], &asker.0);
    assert_eq!(&b[6..12], &vm.0);
    assert_eq!(&b[12..14], &[0x08, 0x06]);
    assert_eq!(&b[14..22], &[0, 1, 8, 0, 6, 4, 0, 2]);
    assert_eq!(&b[22..28], &vm.0);
    assert_eq!(&b[28..32], &[10, 0, 0, 100]);
    assert_eq!(&b[32..38], &asker.0);
    assert_eq!(&b[38..42], &[10, 0, 0, 7]);
}

#[test]
fn arp_errors() {
    let mut b = hex(FRR_GARP);
    b[21] = 9;
    assert_eq!(ArpFrame::parse(&b), Err(FrameError::ArpUnknownOperation(9)));
    let mut b = hex(FRR_GARP);
    b[18] = 8; // hlen 8
    assert_eq!(ArpFrame::parse(&b), Err(FrameError::ArpMalformed));
    assert_eq!(
        ArpFrame::parse(&hex(FRR_GARP)[..40]),
        Err(FrameError::ArpMalformed)
    );
    assert!(matches!(
        ArpFrame::parse(&hex(FRR_V3)),
        Err(FrameError::UnexpectedEtherType(0x0800))
    ));
}

// ---------------------------------------------------------------- NDP

#[test]
fn ndp_unsolicited_na_matches_keepalived_capture() {
    let bytes = hex(KA_NA);
    let f = NdpFrame::parse(&bytes).unwrap();
    let mac = MacAddr([0x02, 0x00, 0x0a, 0xfa, 0x00, 0x01]);
    let vip: Ipv6Addr = "fd00:250::100".parse().unwrap();
    assert_eq!(f, NdpFrame::unsolicited_na(mac, vip, false));
    assert_eq!(NdpFrame::unsolicited_na(mac, vip, false).to_bytes(), bytes);
}

#[test]
fn ndp_na_layout_and_router_flag() {
    let vm = vmac(Family::V6, 3);
    let vip: Ipv6Addr = "2001:db8::3".parse().unwrap();
    let b = NdpFrame::unsolicited_na(vm, vip, true).to_bytes();
    assert_eq!(b.len(), 86);
    assert_eq!(&b[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!((b[20], b[21]), (58, 255), "next header, hop limit");
    assert_eq!(&b[38..54], &ndp::ALL_NODES.octets());
    assert_eq!((b[54], b[55]), (136, 0));
    assert_eq!(b[58], 0x80 | 0x20, "Router + Override, not Solicited");
    assert_eq!(&b[62..78], &vip.octets());
    assert_eq!(&b[78..80], &[2, 1]);
    assert_eq!(&b[80..86], &vm.0);
    // ICMPv6 checksum over the pseudo-header verifies.
    let mut acc = checksum::pseudo_header_v6(vip, ndp::ALL_NODES, 58, 32);
    acc = checksum::accumulate(acc, &b[54..86]);
    assert_eq!(checksum::finish(acc), 0);
}

#[test]
fn ndp_solicit_and_answer() {
    let asker = MacAddr([2, 0, 0, 0, 0, 5]);
    let asker_ip: Ipv6Addr = "fe80::5".parse().unwrap();
    let vip: Ipv6Addr = "2001:db8::abcd:1234".parse().unwrap();
    let ns = NdpFrame::solicit(asker, asker_ip, vip);
    assert_eq!(ns.dst_ip, "ff02::1:ffcd:1234".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ns.eth_dst, MacAddr([0x33, 0x33, 0xff, 0xcd, 0x12, 0x34]));
    let b = ns.to_bytes();
    assert_eq!(
        (b[54], b[78], b[79]),
        (135, 1, 1),
        "NS with source lladdr option"
    );
    let parsed = NdpFrame::parse(&b).unwrap();
    assert_eq!(parsed, ns);
    let vm = vmac(Family::V6, 9);
    let na = NdpFrame::answer(&parsed, vm, false);
    assert_eq!((na.eth_dst, na.dst_ip, na.src_ip), (asker, asker_ip, vip));
    let nb = na.to_bytes();
    assert_eq!(nb[58], 0x40 | 0x20, "Solicited + Override");
    assert_eq!(NdpFrame::parse(&nb).unwrap(), na);
    // DAD probe from :: gets the all-nodes form.
    let dad = NdpFrame::solicit(asker, Ipv6Addr::UNSPECIFIED, vip);
    let na = NdpFrame::answer(&NdpFrame::parse(&dad.to_bytes()).unwrap(), vm, false);
    assert_eq!(na.dst_ip, ndp::ALL_NODES);
    assert!(matches!(
        na.msg,
        NdpMessage::NeighborAdvert {
            solicited: false,
            ..
        }
    ));
}

#[test]
fn ndp_errors() {
    let good = hex(KA_NA);
    let mut b = good.clone();
    b[21] = 64; // hop limit (not covered by the ICMPv6 checksum)
    assert_eq!(NdpFrame::parse(&b), Err(FrameError::NdpHopLimit(64)));
    let mut b = good.clone();
    b[70] ^= 1; // target address
    assert_eq!(
        NdpFrame::parse(&b),
        Err(FrameError::Icmpv6Malformed),
        "bad checksum"
    );
    // Solicited NA to ff02::1.
    let mut f = NdpFrame::parse(&good).unwrap();
    if let NdpMessage::NeighborAdvert { solicited, .. } = &mut f.msg {
        *solicited = true;
    }
    assert_eq!(
        NdpFrame::parse(&f.to_bytes()),
        Err(FrameError::NdpSolicitedToMulticast)
    );
    // Multicast target.
    let mut f = NdpFrame::parse(&good).unwrap();
    if let NdpMessage::NeighborAdvert { target, .. } = &mut f.msg {
        *target = "ff02::1".parse().unwrap();
    }
    assert_eq!(
        NdpFrame::parse(&f.to_bytes()),
        Err(FrameError::NdpMulticastTarget)
    );
    // Multicast source (found by `cargo xtask bench fuzz --target ndp`: an NS from ff01:db8::2
    // parsed, and the NA answering it was a solicited NA to a multicast address, which parse
    // itself refuses).
    let ns = NdpFrame::solicit(
        MacAddr([2, 0, 0, 0, 0, 0xaa]),
        "ff01:db8::2".parse().unwrap(),
        "2001:db8::100".parse().unwrap(),
    );
    assert_eq!(
        NdpFrame::parse(&ns.to_bytes()),
        Err(FrameError::NdpMulticastSource)
    );
    // An echo request is not NDP.
    let mut b = good.clone();
    b[54] = 128;
    let mut acc =
        checksum::pseudo_header_v6("fd00:250::100".parse().unwrap(), ndp::ALL_NODES, 58, 32);
    b[56] = 0;
    b[57] = 0;
    acc = checksum::accumulate(acc, &b[54..86]);
    let c = checksum::finish(acc);
    b[56..58].copy_from_slice(&c.to_be_bytes());
    assert_eq!(NdpFrame::parse(&b), Err(FrameError::NotNeighborDiscovery));
}

// ---------------------------------------------------------------- validation

fn cfg_v3() -> InstanceCfg {
    InstanceCfg {
        vrid: 51,
        family: Family::V4,
        version: Version::V3,
        priority: 100,
        advert_int: 100,
        auth: Auth::None,
        addrs: vec![v4("10.250.0.100")],
        checksum: ChecksumOpts::default(),
        unicast_peers: vec![],
        local_addrs: vec![],
    }
}

fn cfg_v2() -> InstanceCfg {
    InstanceCfg {
        version: Version::V2,
        auth: Auth::simple(b"pbsecret").unwrap(),
        ..cfg_v3()
    }
}

fn frame_for(cfg: &InstanceCfg, prio: u8) -> AdvertFrame {
    AdvertFrame::multicast(
        VrrpRepr {
            version: cfg.version,
            vrid: cfg.vrid,
            priority: prio,
            max_advert_int: cfg.advert_int,
            auth: cfg.auth,
            addrs: cfg.addrs.clone(),
        },
        v4("10.250.0.1"),
    )
}

fn check(frame: &AdvertFrame, cfgs: &[InstanceCfg]) -> Result<Valid, RxError> {
    validate_bytes(&frame.to_bytes(ChecksumOpts::default()).unwrap(), cfgs)
}

#[test]
fn validate_accepts_good_adverts() {
    let v = check(&frame_for(&cfg_v3(), 150), &[cfg_v3()]).unwrap();
    assert_eq!(
        (v.instance, v.vrrp.priority, v.addr_mismatch),
        (0, 150, false)
    );
    assert_eq!(v.src_ip, v4("10.250.0.1"));
    let v = check(&frame_for(&cfg_v2(), 150), &[cfg_v3(), cfg_v2()]);
    // Same VRID and family twice: the first entry (v3) wins and the v2 packet is refused.
    assert_eq!(
        v.unwrap_err(),
        RxError::VersionMismatch {
            got: Version::V2,
            want: Version::V3
        }
    );
    let v = check(&frame_for(&cfg_v2(), 150), &[cfg_v2()]).unwrap();
    assert_eq!(v.vrrp.auth, Auth::simple(b"pbsecret").unwrap());
}

#[test]
fn validate_every_failure_variant() {
    let v3 = cfg_v3();
    let v2 = cfg_v2();
    let o = ChecksumOpts::default();
    let mut seen = [false; RxError::COUNT];
    let mut expect = |bytes: &[u8], cfgs: &[InstanceCfg], want: fn(&RxError) -> bool| {
        let e = validate_bytes(bytes, cfgs).expect_err("must be refused");
        assert!(want(&e), "unexpected {e:?}");
        seen[e.as_index()] = true;
    };
    let good = frame_for(&v3, 150);
    let good_b = good.to_bytes(o).unwrap();

    expect(&good_b[..20], &[v3.clone()], |e| {
        matches!(e, RxError::MalformedFrame(_))
    });
    let mut b = good_b.clone();
    b[23] = 17;
    refill_ipv4(&mut b, 14);
    expect(&b, &[v3.clone()], |e| *e == RxError::NotVrrp(17));
    let f = AdvertFrame {
        hop_limit: 254,
        ..good.clone()
    };
    expect(&f.to_bytes(o).unwrap(), &[v3.clone()], |e| {
        *e == RxError::TtlNot255(254)
    });
    // Too short: IP payload of 4 bytes.
    let mut b = good_b[..38].to_vec();
    b[16..18].copy_from_slice(&24u16.to_be_bytes());
    refill_ipv4(&mut b, 14);
    expect(&b, &[v3.clone()], |e| *e == RxError::TooShort(4));
    let mut b = good_b.clone();
    b[34] = 0x41;
    expect(&b, &[v3.clone()], |e| *e == RxError::UnknownVersion(4));
    expect(
        &frame_for(&v2, 150).to_bytes(o).unwrap(),
        &[v3.clone()],
        |e| {
            *e == RxError::VersionMismatch {
                got: Version::V2,
                want: Version::V3,
            }
        },
    );
    let mut b = good_b.clone();
    b[34] = 0x32;
    fix_vrrp(&mut b, o);
    expect(&b, &[v3.clone()], |e| *e == RxError::BadType(2));
    // v2 over IPv6.
    let mut b6 = AdvertFrame::multicast(
        VrrpRepr {
            addrs: vec![v6("2001:db8::1")],
            ..good.vrrp.clone()
        },
        v6("fe80::1"),
    )
    .to_bytes(o)
    .unwrap();
    b6[54] = 0x21;
    expect(&b6, &[v3.clone()], |e| *e == RxError::V2OverIpv6);
    let mut b = good_b.clone();
    b[37] = 2;
    fix_vrrp(&mut b, o);
    expect(&b, &[v3.clone()], |e| {
        matches!(
            e,
            RxError::LengthMismatch {
                expected: 16,
                got: 12
            }
        )
    });
    let mut b = good_b.clone();
    b[36] ^= 1;
    expect(&b, &[v3.clone()], |e| {
        matches!(e, RxError::BadChecksum { .. })
    });
    let v2f = frame_for(&v2, 150);
    let mut b = v2f.to_bytes(o).unwrap();
    b[38] = 2;
    fix_vrrp(&mut b, o);
    expect(&b, &[v2.clone()], |e| *e == RxError::AuthIpAh);
    b[38] = 7;
    fix_vrrp(&mut b, o);
    expect(&b, &[v2.clone()], |e| *e == RxError::UnknownAuthType(7));
    expect(
        &good_b,
        &[InstanceCfg {
            vrid: 52,
            ..v3.clone()
        }],
        |e| *e == RxError::VridNotConfigured(51),
    );
    expect(
        &good_b,
        &[InstanceCfg {
            family: Family::V6,
            ..v3.clone()
        }],
        |e| {
            *e == RxError::AddressFamilyMismatch {
                vrid: 51,
                got: Family::V4,
            }
        },
    );
    let peers = InstanceCfg {
        unicast_peers: vec![v4("10.250.0.3")],
        ..v3.clone()
    };
    expect(&good_b, &[peers], |e| {
        *e == RxError::UnknownPeer(v4("10.250.0.1"))
    });
    expect(
        &good_b,
        &[InstanceCfg {
            priority: 255,
            ..v3.clone()
        }],
        |e| *e == RxError::LocalIsOwner,
    );
    let none = InstanceCfg {
        auth: Auth::None,
        ..v2.clone()
    };
    expect(&v2f.to_bytes(o).unwrap(), &[none], |e| {
        *e == RxError::AuthTypeMismatch { got: 1, want: 0 }
    });
    let other_pw = InstanceCfg {
        auth: Auth::simple(b"other").unwrap(),
        ..v2.clone()
    };
    expect(&v2f.to_bytes(o).unwrap(), &[other_pw], |e| {
        *e == RxError::AuthMismatch
    });
    let other_addrs = InstanceCfg {
        addrs: vec![v4("10.250.0.101")],
        ..v2.clone()
    };
    expect(&v2f.to_bytes(o).unwrap(), &[other_addrs], |e| {
        *e == RxError::AddrListMismatch
    });
    let slow = InstanceCfg {
        advert_int: 300,
        ..v2.clone()
    };
    expect(&v2f.to_bytes(o).unwrap(), &[slow], |e| {
        *e == RxError::AdvertIntervalMismatch {
            got: 100,
            want: 300,
        }
    });
    // Issue 7 items 5 and 6.
    let mut b = good_b.clone();
    b[38] = 0;
    b[39] = 0;
    fix_vrrp(&mut b, o);
    expect(&b, &[v3.clone()], |e| *e == RxError::ZeroAdvertInterval);
    let empty = AdvertFrame {
        vrrp: VrrpRepr {
            addrs: vec![],
            ..good.vrrp.clone()
        },
        ..good.clone()
    };
    expect(&empty.to_bytes(o).unwrap(), &[v3.clone()], |e| {
        *e == RxError::ZeroAddressCount
    });
    let from = |src: &str| {
        let mut f = good.clone();
        f.ip.src = v4(src);
        f.to_bytes(o).unwrap()
    };
    expect(&from("0.0.0.0"), &[v3.clone()], |e| {
        *e == RxError::InvalidSource(v4("0.0.0.0"))
    });
    let ours = InstanceCfg {
        local_addrs: vec![v4("10.250.0.7"), v4("10.250.0.1")],
        ..v3.clone()
    };
    expect(&good_b, &[ours], |e| {
        *e == RxError::OwnAddress(v4("10.250.0.1"))
    });
    let to = |dst: &str| {
        let mut f = good.clone();
        f.ip.dst = v4(dst);
        f.to_bytes(o).unwrap()
    };
    expect(&to("224.0.0.5"), &[v3.clone()], |e| {
        *e == RxError::NotVrrpGroup(v4("224.0.0.5"))
    });
    expect(&to("10.250.0.2"), &[v3.clone()], |e| {
        *e == RxError::UnicastWithoutPeers(v4("10.250.0.2"))
    });
    let v6cfg = InstanceCfg {
        family: Family::V6,
        addrs: vec![v6("fe80::100")],
        ..v3.clone()
    };
    let global6 = AdvertFrame::multicast(
        VrrpRepr {
            addrs: vec![v6("fe80::100")],
            ..good.vrrp.clone()
        },
        v6("2001:db8::5"),
    );
    expect(&global6.to_bytes(o).unwrap(), &[v6cfg], |e| {
        *e == RxError::Ipv6SourceNotLinkLocal(v6("2001:db8::5"))
    });

    let missed: Vec<_> = (0..RxError::COUNT)
        .filter(|i| !seen[*i])
        .map(|i| RxError::NAMES[i])
        .collect();
    assert!(missed.is_empty(), "variants never triggered: {missed:?}");
}

fn fix_vrrp(frame: &mut [u8], o: ChecksumOpts) {
    let rx = RxFrame::parse(frame).unwrap();
    let ip = rx.ip();
    let off = frame.len() - rx.payload.len();
    VrrpPacket::new_unchecked(&mut frame[off..]).fill_checksum(&ip, o);
}

/// Issue 7 item 6: the source and destination rules, the same for both families.
#[test]
fn validate_source_and_destination_rules_in_both_families() {
    let o = ChecksumOpts::default();
    for (me, peer, other, vip, group, other_group, global) in [
        (
            "10.250.0.2",
            "10.250.0.1",
            "10.250.0.3",
            "10.250.0.100",
            "224.0.0.18",
            "224.0.0.5",
            None,
        ),
        (
            "fe80::2",
            "fe80::1",
            "fe80::3",
            "fe80::100",
            "ff02::12",
            "ff02::1",
            Some("2001:db8::1"),
        ),
    ] {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cfg = InstanceCfg {
            family: Family::of(ip(me)),
            addrs: vec![ip(vip)],
            local_addrs: vec![ip(me)],
            ..cfg_v3()
        };
        let frame = |src: &str, dst: &str, prio: u8| {
            let mut f = AdvertFrame::multicast(
                VrrpRepr {
                    addrs: vec![ip(vip)],
                    ..frame_for(&cfg_v3(), prio).vrrp
                },
                ip(src),
            );
            f.ip.dst = ip(dst);
            f.to_bytes(o).unwrap()
        };
        let check = |b: &[u8], c: &InstanceCfg| validate_bytes(b, std::slice::from_ref(c));
        // A peer to the group: accepted. The owner sending from the VIP: accepted.
        assert!(check(&frame(peer, group, 150), &cfg).is_ok());
        assert!(check(&frame(vip, group, 255), &cfg).is_ok());
        // Our own address.
        assert_eq!(
            check(&frame(me, group, 150), &cfg),
            Err(RxError::OwnAddress(ip(me)))
        );
        // Unspecified, multicast, loopback, broadcast.
        let bad: &[&str] = if cfg.family == Family::V4 {
            &["0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1"]
        } else {
            &["::", "ff02::1", "::1"]
        };
        for src in bad {
            assert_eq!(
                check(&frame(src, group, 150), &cfg),
                Err(RxError::InvalidSource(ip(src))),
                "{src}"
            );
        }
        // Another group.
        assert_eq!(
            check(&frame(peer, other_group, 150), &cfg),
            Err(RxError::NotVrrpGroup(ip(other_group)))
        );
        // Unicast to us: only with peers configured, and only from one of them.
        assert_eq!(
            check(&frame(peer, me, 150), &cfg),
            Err(RxError::UnicastWithoutPeers(ip(me)))
        );
        let peers = InstanceCfg {
            unicast_peers: vec![ip(peer)],
            ..cfg.clone()
        };
        assert!(check(&frame(peer, me, 150), &peers).is_ok());
        assert!(check(&frame(peer, group, 150), &peers).is_ok());
        assert_eq!(
            check(&frame(other, me, 150), &peers),
            Err(RxError::UnknownPeer(ip(other)))
        );
        // IPv6 from a global address: only from a configured peer.
        if let Some(g) = global {
            assert_eq!(
                check(&frame(g, group, 150), &cfg),
                Err(RxError::Ipv6SourceNotLinkLocal(ip(g)))
            );
            let global_peer = InstanceCfg {
                unicast_peers: vec![ip(g)],
                ..cfg.clone()
            };
            assert!(check(&frame(g, "2001:db8::2", 150), &global_peer).is_ok());
        }
    }
}

/// Issue 7 item 5: Max Adver Int 0 is invalid (v3), and so is Adver Int 0 (v2).
#[test]
fn validate_refuses_a_zero_advert_interval() {
    let o = ChecksumOpts::default();
    for cfg in [cfg_v3(), cfg_v2()] {
        let mut b = frame_for(&cfg, 254).to_bytes(o).unwrap();
        assert!(validate_bytes(&b, &[cfg.clone()]).is_ok());
        if cfg.version == Version::V3 {
            b[38] = 0;
        }
        b[39] = 0;
        fix_vrrp(&mut b, o);
        assert_eq!(
            validate_bytes(&b, &[cfg.clone()]),
            Err(RxError::ZeroAdvertInterval)
        );
    }
    // The smallest valid interval, 1 cs, is fine.
    let mut b = frame_for(&cfg_v3(), 254).to_bytes(o).unwrap();
    b[38] = 0;
    b[39] = 1;
    fix_vrrp(&mut b, o);
    assert_eq!(
        validate_bytes(&b, &[cfg_v3()]).unwrap().vrrp.max_advert_int,
        1
    );
}

#[test]
fn validate_address_list_mismatch_is_reported_not_dropped() {
    // v3: accepted with the flag.
    let cfg = InstanceCfg {
        addrs: vec![v4("10.250.0.100"), v4("10.250.0.101")],
        ..cfg_v3()
    };
    let v = check(&frame_for(&cfg_v3(), 150), &[cfg.clone()]).unwrap();
    assert!(v.addr_mismatch);
    // Order does not matter.
    let mut f = frame_for(&cfg, 150);
    f.vrrp.addrs.reverse();
    assert!(!check(&f, &[cfg]).unwrap().addr_mismatch);
    // v2 from the owner: accepted with the flag (RFC 3768 §7.1).
    let cfg2 = InstanceCfg {
        addrs: vec![v4("10.9.9.9")],
        ..cfg_v2()
    };
    let v = check(&frame_for(&cfg_v2(), 255), &[cfg2]).unwrap();
    assert!(v.addr_mismatch);
}

#[test]
fn validate_v3_checksum_as_v2_per_instance() {
    let strict = cfg_v3();
    let lax = InstanceCfg {
        checksum: ChecksumOpts {
            v3_checksum_as_v2: true,
        },
        ..cfg_v3()
    };
    let b = frame_for(&strict, 150)
        .to_bytes(ChecksumOpts {
            v3_checksum_as_v2: true,
        })
        .unwrap();
    assert!(matches!(
        validate_bytes(&b, &[strict]),
        Err(RxError::BadChecksum { .. })
    ));
    assert!(validate_bytes(&b, &[lax]).is_ok());
}

#[test]
fn rx_error_names_are_unique_and_indexed() {
    let mut names = RxError::NAMES.to_vec();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), RxError::COUNT);
    assert_eq!(RxError::LocalIsOwner.name(), "local_is_owner");
    // Appended after the first 20, which keep their indices.
    assert_eq!(RxError::NAMES[19], "advert_interval_mismatch");
    assert_eq!(RxError::ZeroAdvertInterval.as_index(), 20);
    assert_eq!(
        RxError::Ipv6SourceNotLinkLocal(v6("2001:db8::1")).name(),
        "ipv6_source_not_link_local"
    );
    assert_eq!(
        RxError::TtlNot255(1).to_string(),
        "TTL / hop limit 1 is not 255"
    );
}

// ---------------------------------------------------------------- properties

/// Recompute the VRRP or ICMPv6 checksum of a (possibly mutated) frame, if its headers parse.
fn refix_l4_checksum(b: &mut [u8]) {
    let Ok(rx) = RxFrame::parse(b) else { return };
    let off = rx.payload.as_ptr() as usize - b.as_ptr() as usize;
    let (len, ip, proto) = (rx.payload.len(), rx.ip(), rx.protocol);
    let l4 = &mut b[off..off + len];
    match proto {
        112 => {
            if let Ok(mut p) = VrrpPacket::new_checked(&mut *l4) {
                p.fill_checksum(&ip, ChecksumOpts::default());
            }
        }
        58 if len >= 4 => {
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (ip.src, ip.dst) {
                l4[2] = 0;
                l4[3] = 0;
                let acc =
                    checksum::accumulate(checksum::pseudo_header_v6(s, d, 58, len as u32), l4);
                let c = checksum::finish(acc);
                l4[2..4].copy_from_slice(&c.to_be_bytes());
            }
        }
        _ => {}
    }
}

#[test]
fn ndp_option_length_zero_is_refused() {
    let mut b = hex(KA_NA);
    b[79] = 0;
    refix_l4_checksum(&mut b);
    assert_eq!(NdpFrame::parse(&b), Err(FrameError::Icmpv6Malformed));
    // An unknown option after the link-layer one is skipped.
    let mut f = hex(KA_NA);
    f.extend_from_slice(&[99, 1, 0, 0, 0, 0, 0, 0]);
    f[18..20].copy_from_slice(&40u16.to_be_bytes());
    refix_l4_checksum(&mut f);
    assert!(NdpFrame::parse(&f).is_ok());
}

fn arb_mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}
fn arb_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}
fn arb_vlan() -> impl Strategy<Value = Option<u16>> {
    proptest::option::of(any::<u16>())
}

fn arb_advert_frame() -> impl Strategy<Value = AdvertFrame> {
    let v4a = any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into()));
    let v6a = any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into()));
    let fam = any::<bool>();
    (
        (fam, arb_mac(), arb_mac(), arb_vlan()),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u16..=4095,
        proptest::option::of(any::<[u8; 8]>()),
        any::<bool>(),
        proptest::collection::vec((v4a.clone(), v6a.clone()), 0..8),
        (v4a, v6a, any::<[u8; 4]>(), any::<[u8; 16]>()),
    )
        .prop_map(
            |(
                (is6, dst, src, vlan),
                hop,
                tos,
                vrid,
                prio,
                int,
                pw,
                v2,
                addrs,
                (s4, s6, d4, d6),
            )| {
                let (ip, addrs) = if is6 {
                    (
                        IpPair {
                            src: s6,
                            dst: IpAddr::V6(d6.into()),
                        },
                        addrs.iter().map(|a| a.1).collect(),
                    )
                } else {
                    (
                        IpPair {
                            src: s4,
                            dst: IpAddr::V4(d4.into()),
                        },
                        addrs.iter().map(|a| a.0).collect(),
                    )
                };
                let v2 = v2 && !is6;
                let vrrp = if v2 {
                    VrrpRepr {
                        version: Version::V2,
                        vrid,
                        priority: prio,
                        max_advert_int: (int % 256) * 100,
                        auth: pw.map_or(Auth::None, Auth::Simple),
                        addrs,
                    }
                } else {
                    VrrpRepr {
                        version: Version::V3,
                        vrid,
                        priority: prio,
                        max_advert_int: int,
                        auth: Auth::None,
                        addrs,
                    }
                };
                AdvertFrame {
                    eth_dst: dst,
                    eth_src: src,
                    vlan,
                    ip,
                    hop_limit: hop,
                    tos,
                    vrrp,
                }
            },
        )
}

fn arb_ndp() -> impl Strategy<Value = NdpFrame> {
    (
        arb_mac(),
        arb_mac(),
        arb_vlan(),
        arb_v6(),
        arb_v6(),
        arb_v6(),
        proptest::option::of(arb_mac()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(d, s, vlan, src, dst, target, ll, is_na, r, sol, ovr)| {
            // Keep within what parse accepts (RFC 4861): unicast target and source, no S to
            // multicast.
            let src = if src.is_multicast() {
                Ipv6Addr::LOCALHOST
            } else {
                src
            };
            let target = if target.is_multicast() {
                Ipv6Addr::LOCALHOST
            } else {
                target
            };
            let msg = if is_na {
                NdpMessage::NeighborAdvert {
                    router: r,
                    solicited: sol && !dst.is_multicast(),
                    override_: ovr,
                    target,
                    target_lladdr: ll,
                }
            } else {
                NdpMessage::NeighborSolicit {
                    target,
                    source_lladdr: ll,
                }
            };
            NdpFrame {
                eth_dst: d,
                eth_src: s,
                vlan,
                src_ip: src,
                dst_ip: dst,
                msg,
            }
        })
}

proptest! {
    #[test]
    fn advert_frame_roundtrip(f in arb_advert_frame(), as_v2 in any::<bool>()) {
        let o = ChecksumOpts { v3_checksum_as_v2: as_v2 };
        let b = f.to_bytes(o).unwrap();
        prop_assert_eq!(b.len(), f.buffer_len());
        prop_assert_eq!(AdvertFrame::parse(&b, o).unwrap(), f);
    }

    #[test]
    fn arp_roundtrip(d in arb_mac(), s in arb_mac(), vlan in arb_vlan(), reply in any::<bool>(),
                     sm in arb_mac(), si in any::<[u8; 4]>(), tm in arb_mac(), ti in any::<[u8; 4]>()) {
        let f = ArpFrame { eth_dst: d, eth_src: s, vlan,
            arp: ArpRepr { op: if reply { ArpOp::Reply } else { ArpOp::Request },
                           sender_mac: sm, sender_ip: si.into(), target_mac: tm, target_ip: ti.into() } };
        prop_assert_eq!(ArpFrame::parse(&f.to_bytes()).unwrap(), f);
    }

    #[test]
    fn ndp_roundtrip(f in arb_ndp()) {
        let b = f.to_bytes();
        prop_assert_eq!(b.len(), f.buffer_len());
        prop_assert_eq!(NdpFrame::parse(&b).unwrap(), f);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let cfgs = [cfg_v3(), cfg_v2()];
        let _ = RxFrame::parse(&bytes);
        let _ = AdvertFrame::parse(&bytes, ChecksumOpts::default());
        let _ = AdvertFrame::parse(&bytes, ChecksumOpts { v3_checksum_as_v2: true });
        let _ = ArpFrame::parse(&bytes);
        let _ = ArpRepr::parse(&bytes);
        let _ = NdpFrame::parse(&bytes);
        let _ = validate_bytes(&bytes, &cfgs);
        let _ = EthHeader::parse(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_mutated_valid_frames(f in arb_advert_frame(), n in arb_ndp(),
                                                   idx in any::<usize>(), val in any::<u8>(), cut in any::<usize>()) {
        // Random bytes rarely get past the Ethernet/IP headers; mutate valid frames instead.
        for mut b in [f.to_bytes(ChecksumOpts::default()).unwrap(), n.to_bytes(),
                      ArpFrame::gratuitous(MacAddr([2; 6]), Ipv4Addr::new(10, 0, 0, 1)).to_bytes()] {
            let i = idx % b.len();
            b[i] = val;
            b.truncate(cut % (b.len() + 1));
            let _ = AdvertFrame::parse(&b, ChecksumOpts::default());
            let _ = ArpFrame::parse(&b);
            let _ = NdpFrame::parse(&b);
            let _ = validate_bytes(&b, &[cfg_v3(), cfg_v2()]);
            // Again with the VRRP / ICMPv6 checksum fixed up, so the mutation reaches the
            // code behind the checksum check (address lists, auth, NDP options).
            refix_l4_checksum(&mut b);
            let _ = AdvertFrame::parse(&b, ChecksumOpts::default());
            let _ = NdpFrame::parse(&b);
            let _ = validate_bytes(&b, &[cfg_v3(), cfg_v2()]);
        }
    }
}
