//! The TC egress classifier (`vrrp_tc_egress`): frames the router's own kernel sends from an
//! owned VIP leave with the VMAC (Ethernet source, NDP link-layer address options, ARP sender
//! MAC); ARP / ND from a VIP not owned with a fresh heartbeat are dropped.
//!
//! First under BPF_PROG_TEST_RUN (the rewritten frame is checked with the agent's codec, which
//! verifies the ICMPv6 checksum, and with tshark), then end to end in two network namespaces:
//! the kernel's own Neighbor Solicitation from the VIP, as the neighbour sees it; a killed
//! owner's filter (a netlink filter on clsact, it outlives the process) dropping the kernel's
//! ARP from the VIP, then replaced in place by the next agent; the TCX fallback without clsact.
mod common;

use std::{
    io::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use common::*;
use vrrp_agent::{
    clock::monotonic_ns,
    config::XdpMode,
    fastpath::{EgressMode, FastPath},
    rtnl,
    wire::{checksum, ArpFrame, ArpOp, ArpRepr, MacAddr, NdpFrame, NdpMessage},
};
use vrrp_common::{vmac, Counter, FAMILY_IPV4, FAMILY_IPV6};
use vrrp_integration_tests::{
    kernel::{self, Feature},
    packet_socket,
    prober::{fmt_mac, parse_mac},
    recv_frame, require_root, run, veth, wait_until, Netns, Proc,
};

const VRID: u8 = 51;
const IFACE_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const BOUND: Duration = Duration::from_secs(1);

fn vmac4() -> MacAddr {
    MacAddr(vmac(FAMILY_IPV4, VRID))
}

fn vmac6() -> MacAddr {
    MacAddr(vmac(FAMILY_IPV6, VRID))
}

/// A harness owning VIP4 and VIP6 (VRID), heartbeat fresh, bound 1 s, interface MAC IFACE_MAC.
fn egress_harness() -> Harness {
    let mut h = Harness::new(&[]);
    h.fp.add_vip(IpAddr::V4(VIP4), VRID).unwrap();
    h.fp.add_vip(IpAddr::V6(VIP6), VRID).unwrap();
    h.fp.set_iface_mac(IFACE_MAC.0).unwrap();
    h.own(FAMILY_IPV4, VRID, false, BOUND);
    h.own(FAMILY_IPV6, VRID, false, BOUND);
    h
}

fn go_stale(h: &mut Harness) {
    h.fp.heartbeat(monotonic_ns() - 2 * BOUND.as_nanos() as u64)
        .unwrap();
}

/// The NS the kernel sends from the VIP to resolve REQ6: Ethernet source and SLLAO = IFACE_MAC.
fn ns_from(mac: MacAddr, src: Ipv6Addr) -> NdpFrame {
    NdpFrame::solicit(mac, src, REQ6)
}

/// The kernel's ARP request for REQ4 from `src` (Ethernet source and sender MAC = IFACE_MAC).
fn arp_from(src: Ipv4Addr) -> ArpFrame {
    ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: IFACE_MAC,
        vlan: None,
        arp: ArpRepr::request(IFACE_MAC, src, REQ4),
    }
}

/// What the kernel sends from the VIPs with the interface MAC: an NS, a UDP packet, an ARP
/// request.
fn frames_from_the_vips() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        ns_from(IFACE_MAC, VIP6).to_bytes(),
        udp4_from(IFACE_MAC, VIP4),
        arp_from(VIP4).to_bytes(),
    )
}

/// An IPv4 UDP packet from `src` (Ethernet source `eth_src`) to REQ4.
fn udp4_from(eth_src: MacAddr, src: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8];
    f[0..6].copy_from_slice(&REQ_MAC.0);
    f[6..12].copy_from_slice(&eth_src.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip.copy_from_slice(&[
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&REQ4.octets());
    f[34..42].copy_from_slice(&[0x03, 0xe8, 0x07, 0xd0, 0, 8, 0, 0]);
    f
}

/// An ICMPv6 message of `icmp_type` (8 bytes, then `opts`) from `src` to `dst`, hop limit 255,
/// with a valid checksum.
fn icmp6_from(
    eth_dst: [u8; 6],
    eth_src: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp_type: u8,
    opts: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src.0);
    f.extend_from_slice(&[0x86, 0xdd]);
    let plen = (8 + opts.len()) as u16;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&plen.to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[icmp_type, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(opts);
    let acc = checksum::pseudo_header_v6(src, dst, 58, u32::from(plen));
    let sum = checksum::finish(checksum::accumulate(acc, &f[54..]));
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// True when the ICMPv6 checksum of an untagged frame is valid.
fn icmp6_checksum_ok(f: &[u8]) -> bool {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    let acc = checksum::pseudo_header_v6(src, dst, 58, (f.len() - 54) as u32);
    checksum::finish(checksum::accumulate(acc, &f[54..])) == 0
}

fn sllao(mac: MacAddr) -> [u8; 8] {
    let mut o = [1, 1, 0, 0, 0, 0, 0, 0];
    o[2..].copy_from_slice(&mac.0);
    o
}

/// Writes `frames` to a pcap file and returns what tshark says about each, one line per frame:
/// `eth.src<TAB>icmpv6.checksum.status<TAB>icmpv6.opt.linkaddr`.
fn tshark(frames: &[&[u8]]) -> Vec<String> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    for f in frames {
        for v in [0u32, 0, f.len() as u32, f.len() as u32] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend_from_slice(f);
    }
    file.write_all(&pcap).unwrap();
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file.path())
        .args([
            "-T",
            "fields",
            "-e",
            "eth.src",
            "-e",
            "icmpv6.checksum.status",
            "-e",
            "icmpv6.opt.linkaddr",
        ])
        .output()
        .expect("tshark is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// BPF_PROG_TEST_RUN

#[test]
fn ns_from_an_owned_vip_leaves_with_the_vmac_and_a_valid_checksum() {
    let mut h = egress_harness();
    let ns = ns_from(IFACE_MAC, VIP6);
    let (verdict, out) = h.run_egress(&ns.to_bytes());
    assert_eq!(verdict, TC_ACT_OK);
    let parsed = NdpFrame::parse(&out).expect("the rewritten NS parses (ICMPv6 checksum valid)");
    assert_eq!(parsed.eth_src, vmac6(), "Ethernet source");
    assert_eq!(
        parsed.msg,
        NdpMessage::NeighborSolicit {
            target: REQ6,
            source_lladdr: Some(vmac6())
        },
        "SLLAO"
    );
    assert_eq!(
        out,
        ns_from(vmac6(), VIP6).to_bytes(),
        "byte for byte what the codec builds with the VMAC"
    );
    assert_eq!(h.counter(Counter::EgressNdRewritten), 1);
    h.assert_egress_outcomes_add_up();
    assert_eq!(
        h.counter(Counter::Frames),
        0,
        "egress frames are not XDP frames"
    );
    h.assert_outcomes_add_up();
}

#[test]
fn na_and_rs_from_an_owned_vip_are_rewritten_too_and_tshark_agrees() {
    let mut h = egress_harness();
    // The kernel's NA for the VIP (TLLAO = interface MAC).
    let asked = NdpFrame::solicit(REQ_MAC, REQ6, VIP6);
    let na = NdpFrame::answer(&asked, IFACE_MAC, false);
    let (verdict, na_out) = h.run_egress(&na.to_bytes());
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(na_out, NdpFrame::answer(&asked, vmac6(), false).to_bytes());
    NdpFrame::parse(&na_out).expect("NA checksum valid");
    // A Router Solicitation from the VIP with an SLLAO (the codec has no RS: checked by hand).
    let rs = icmp6_from(
        [0x33, 0x33, 0, 0, 0, 2],
        IFACE_MAC,
        VIP6,
        "ff02::2".parse().unwrap(),
        133,
        &sllao(IFACE_MAC),
    );
    assert!(icmp6_checksum_ok(&rs));
    let (verdict, rs_out) = h.run_egress(&rs);
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(rs_out[6..12], vmac6().0);
    assert_eq!(rs_out[64..70], vmac6().0, "SLLAO");
    assert!(icmp6_checksum_ok(&rs_out), "RS checksum updated");
    assert_eq!(h.counter(Counter::EgressNdRewritten), 2);
    // NS through tshark as well: checksum status 1 (good), link-layer address the VMAC.
    let (_, ns_out) = h.run_egress(&ns_from(IFACE_MAC, VIP6).to_bytes());
    let want = format!("{}\t1\t{}", fmt_mac(&vmac6().0), fmt_mac(&vmac6().0));
    for (what, line) in ["ns", "na", "rs"]
        .iter()
        .zip(tshark(&[&ns_out, &na_out, &rs_out]))
    {
        assert_eq!(line, want, "tshark on the rewritten {what}");
    }
    // And tshark flags the original with a corrupted checksum as bad (the check can fail).
    let mut bad = ns_out.clone();
    bad[57] ^= 1;
    let line = &tshark(&[&bad])[0];
    assert!(line.contains("\t0\t"), "tshark sees a bad checksum: {line}");
    h.assert_egress_outcomes_add_up();
}

#[test]
fn vlan_tagged_ns_and_an_option_that_is_not_the_interface_mac() {
    let mut h = egress_harness();
    let mut ns = ns_from(IFACE_MAC, VIP6);
    ns.vlan = Some(42);
    let (_, out) = h.run_egress(&ns.to_bytes());
    let parsed = NdpFrame::parse(&out).expect("tagged NS parses");
    assert_eq!(parsed.vlan, Some(42));
    assert_eq!(parsed.eth_src, vmac6());
    assert_eq!(
        parsed.msg,
        NdpMessage::NeighborSolicit {
            target: REQ6,
            source_lladdr: Some(vmac6())
        }
    );
    assert_eq!(h.counter(Counter::EgressNdRewritten), 1);
    // An SLLAO that is some other MAC: left alone (Ethernet source still rewritten).
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    let mut ns = ns_from(IFACE_MAC, VIP6);
    ns.msg = NdpMessage::NeighborSolicit {
        target: REQ6,
        source_lladdr: Some(other),
    };
    let (_, out) = h.run_egress(&ns.to_bytes());
    let parsed = NdpFrame::parse(&out).unwrap();
    assert_eq!(parsed.eth_src, vmac6());
    assert_eq!(
        parsed.msg,
        NdpMessage::NeighborSolicit {
            target: REQ6,
            source_lladdr: Some(other)
        }
    );
    assert_eq!(h.counter(Counter::EgressIpRewritten), 1);
    assert_eq!(h.counter(Counter::EgressNdNoLladdr), 1);
    // With IFACE unset, the frame's own Ethernet source is the interface MAC.
    let mut h = Harness::new(&[]);
    h.fp.add_vip(IpAddr::V6(VIP6), VRID).unwrap();
    h.own(FAMILY_IPV6, VRID, false, BOUND);
    let (_, out) = h.run_egress(&ns_from(IFACE_MAC, VIP6).to_bytes());
    assert_eq!(out, ns_from(vmac6(), VIP6).to_bytes());
    h.assert_egress_outcomes_add_up();
}

#[test]
fn ipv4_and_ipv6_packets_from_an_owned_vip_get_the_vmac_as_ethernet_source() {
    let mut h = egress_harness();
    let f = udp4_from(IFACE_MAC, VIP4);
    let (verdict, out) = h.run_egress(&f);
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(out[6..12], vmac4().0, "IPv4 VMAC");
    assert_eq!(out[..6], f[..6]);
    assert_eq!(out[12..], f[12..], "nothing else touched");
    // ICMPv6 echo reply from the IPv6 VIP.
    let f = icmp6_from(REQ_MAC.0, IFACE_MAC, VIP6, REQ6, 129, &[]);
    let (_, out) = h.run_egress(&f);
    assert_eq!(out[6..12], vmac6().0, "IPv6 VMAC");
    assert_eq!(out[12..], f[12..]);
    assert_eq!(h.counter(Counter::EgressIpRewritten), 2);
    h.assert_egress_outcomes_add_up();
}

#[test]
fn arp_from_an_owned_vip_gets_the_vmac_as_ethernet_source_and_sender() {
    let mut h = egress_harness();
    // The kernel's own ARP request from the VIP (arp_announce not set).
    let req = arp_from(VIP4);
    let (verdict, out) = h.run_egress(&req.to_bytes());
    assert_eq!(verdict, TC_ACT_OK);
    let want = ArpFrame {
        eth_src: vmac4(),
        arp: ArpRepr::request(vmac4(), VIP4, REQ4),
        ..req
    };
    assert_eq!(out, want.to_bytes());
    // A reply from the VIP, VLAN-tagged.
    let reply = ArpFrame {
        eth_dst: REQ_MAC,
        eth_src: IFACE_MAC,
        vlan: Some(7),
        arp: ArpRepr::reply_to(&ArpRepr::request(REQ_MAC, REQ4, VIP4), IFACE_MAC),
    };
    let (_, out) = h.run_egress(&reply.to_bytes());
    let parsed = ArpFrame::parse(&out).unwrap();
    assert_eq!(parsed.eth_src, vmac4());
    assert_eq!(parsed.vlan, Some(7));
    assert_eq!(parsed.arp.op, ArpOp::Reply);
    assert_eq!(parsed.arp.sender_mac, vmac4());
    assert_eq!(parsed.arp.target_mac, REQ_MAC);
    assert_eq!(h.counter(Counter::EgressArpRewritten), 2);
    h.assert_egress_outcomes_add_up();
}

#[test]
fn not_from_a_vip_or_ip_from_a_vip_not_owned_or_stale_is_left_unchanged() {
    let mut h = egress_harness();
    let (_, udp, _) = frames_from_the_vips();
    let udp6 = icmp6_from(REQ_MAC.0, IFACE_MAC, VIP6, REQ6, 129, &[]);
    // Source not a VIP.
    for f in [
        ns_from(IFACE_MAC, "2001:db8::7".parse().unwrap()).to_bytes(),
        udp4_from(IFACE_MAC, Ipv4Addr::new(10, 0, 0, 7)),
        arp_from(Ipv4Addr::new(10, 0, 0, 7)).to_bytes(),
    ] {
        assert_eq!(h.run_egress(&f), (TC_ACT_OK, f.clone()));
    }
    assert_eq!(h.counter(Counter::EgressSrcNotVip), 3);
    // Stale heartbeat: IP packets (not ARP / ND) from the VIPs go out as they are.
    go_stale(&mut h);
    for f in [&udp, &udp6] {
        assert_eq!(h.run_egress(f), (TC_ACT_OK, f.clone()), "stale");
    }
    assert_eq!(h.counter(Counter::EgressVipStale), 2);
    // Not owned (fresh heartbeat).
    h.fp.set_router(FAMILY_IPV4, VRID, false, false, BOUND)
        .unwrap();
    h.fp.set_router(FAMILY_IPV6, VRID, false, false, BOUND)
        .unwrap();
    h.beat();
    for f in [&udp, &udp6] {
        assert_eq!(h.run_egress(f), (TC_ACT_OK, f.clone()), "not owned");
    }
    assert_eq!(h.counter(Counter::EgressVipNotOwned), 2);
    // Not IP: LLDP.
    let mut lldp = vec![0u8; 60];
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(h.run_egress(&lldp), (TC_ACT_OK, lldp.clone()));
    assert_eq!(h.counter(Counter::EgressNotIp), 1);
    for c in [
        Counter::EgressIpRewritten,
        Counter::EgressNdRewritten,
        Counter::EgressArpRewritten,
        Counter::EgressRewriteFailed,
        Counter::EgressNeighDroppedNotOwned,
        Counter::EgressNeighDroppedStale,
    ] {
        assert_eq!(h.counter(c), 0, "{}", c.name());
    }
    h.assert_egress_outcomes_add_up();
}

/// The kernel's NA for the VIP (answering REQ6): source the VIP, target the VIP, TLLAO the
/// interface MAC.
fn na_for_the_vip() -> Vec<u8> {
    let asked = NdpFrame::solicit(REQ_MAC, REQ6, VIP6);
    NdpFrame::answer(&asked, IFACE_MAC, false).to_bytes()
}

/// An NA whose target is the VIP, sent from another (link-local) address.
fn na_about_the_vip_from_link_local() -> Vec<u8> {
    let mut body = VIP6.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&IFACE_MAC.0);
    let mut na = icmp6_from(
        REQ_MAC.0,
        IFACE_MAC,
        "fe80::1".parse().unwrap(),
        "fe80::2".parse().unwrap(),
        136,
        &body,
    );
    // Flags (byte 4 of the message): Solicited + Override; the checksum covers them.
    na[58] = 0x60;
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let dst: Ipv6Addr = "fe80::2".parse().unwrap();
    na[56..58].copy_from_slice(&[0, 0]);
    let acc = checksum::pseudo_header_v6(src, dst, 58, (na.len() - 54) as u32);
    let sum = checksum::finish(checksum::accumulate(acc, &na[54..]));
    na[56..58].copy_from_slice(&sum.to_be_bytes());
    assert!(icmp6_checksum_ok(&na));
    na
}

/// The kernel's ARP / NS / NA / RS from (or, NA: about) the VIPs, with the interface MAC.
fn neighbour_frames_from_the_vips() -> Vec<(&'static str, Vec<u8>)> {
    let (ns, _, arp) = frames_from_the_vips();
    let arp_reply = ArpFrame {
        eth_dst: REQ_MAC,
        eth_src: IFACE_MAC,
        vlan: None,
        arp: ArpRepr::reply_to(&ArpRepr::request(REQ_MAC, REQ4, VIP4), IFACE_MAC),
    }
    .to_bytes();
    let rs = icmp6_from(
        [0x33, 0x33, 0, 0, 0, 2],
        IFACE_MAC,
        VIP6,
        "ff02::2".parse().unwrap(),
        133,
        &sllao(IFACE_MAC),
    );
    vec![
        ("arp request", arp),
        ("arp reply", arp_reply),
        ("ns", ns.clone()),
        ("ns tagged", tagged(&ns)),
        ("na", na_for_the_vip()),
        (
            "na about the vip from a link-local address",
            na_about_the_vip_from_link_local(),
        ),
        ("rs", rs),
    ]
}

#[test]
fn arp_and_nd_from_a_vip_not_owned_or_stale_are_dropped() {
    // The fail-safe's egress half: a killed Master leaves the VIPs configured, and the kernel's
    // own ARP / ND from them would teach the LAN the real MAC.
    let mut h = egress_harness();
    let frames = neighbour_frames_from_the_vips();
    go_stale(&mut h);
    for (what, f) in &frames {
        assert_eq!(h.run_egress(f).0, TC_ACT_SHOT, "stale: {what}");
    }
    assert_eq!(
        h.counter(Counter::EgressNeighDroppedStale),
        frames.len() as u64
    );
    h.fp.set_router(FAMILY_IPV4, VRID, false, false, BOUND)
        .unwrap();
    h.fp.set_router(FAMILY_IPV6, VRID, false, false, BOUND)
        .unwrap();
    h.beat();
    for (what, f) in &frames {
        assert_eq!(h.run_egress(f).0, TC_ACT_SHOT, "not owned: {what}");
    }
    assert_eq!(
        h.counter(Counter::EgressNeighDroppedNotOwned),
        frames.len() as u64
    );
    // The same frames from / about an address that is not a VIP go out.
    let mut other = egress_harness();
    go_stale(&mut other);
    for f in [
        arp_from(Ipv4Addr::new(10, 0, 0, 7)).to_bytes(),
        ns_from(IFACE_MAC, "2001:db8::7".parse().unwrap()).to_bytes(),
    ] {
        assert_eq!(other.run_egress(&f), (TC_ACT_OK, f.clone()));
    }
    h.assert_egress_outcomes_add_up();
    other.assert_egress_outcomes_add_up();
}

#[test]
fn arp_and_nd_from_an_owned_fresh_vip_still_go_out_rewritten() {
    // The control of the test above: owned and fresh, none of those frames is dropped.
    let mut h = egress_harness();
    let frames = neighbour_frames_from_the_vips();
    for (what, f) in &frames {
        let (verdict, out) = h.run_egress(f);
        assert_eq!(verdict, TC_ACT_OK, "{what}");
        assert_ne!(&out, f, "{what} rewritten");
    }
    // An NA about the VIP from a link-local source: Ethernet source and TLLAO to the VMAC,
    // checksum still valid.
    let (_, out) = h.run_egress(&na_about_the_vip_from_link_local());
    assert_eq!(out[6..12], vmac6().0);
    assert_eq!(out[80..86], vmac6().0, "TLLAO");
    assert!(icmp6_checksum_ok(&out));
    assert_eq!(h.counter(Counter::EgressNeighDroppedNotOwned), 0);
    assert_eq!(h.counter(Counter::EgressNeighDroppedStale), 0);
    h.assert_egress_outcomes_add_up();
}

/// `f` with an 802.1Q tag (VID 3) inserted after the Ethernet addresses.
fn tagged(f: &[u8]) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00, 0x00, 0x03]);
    t.extend_from_slice(&f[12..]);
    t
}

#[test]
fn frames_cut_at_every_length_pass_and_are_counted() {
    let mut h = egress_harness();
    let (ns, udp, arp) = frames_from_the_vips();
    // The kernel's test run refuses an untagged IPv4/IPv6 frame shorter than its IP header
    // (EINVAL); behind a VLAN tag it does not look, so the tagged copies reach every cut.
    let frames = [
        ("ns", ns.clone(), 14 + 40),
        ("udp4", udp.clone(), 14 + 20),
        ("arp", arp.clone(), 15),
        ("ns tagged", tagged(&ns), 15),
        ("udp4 tagged", tagged(&udp), 15),
        ("arp tagged", tagged(&arp), 15),
    ];
    for (what, f, min) in &frames {
        for len in 15..f.len() {
            match test_run_out(h.fp.egress_program().unwrap(), &f[..len]) {
                Ok((r, _)) => {
                    assert_eq!(r.return_value, TC_ACT_OK, "{what} cut at {len}");
                    assert_eq!(r.data_size_out as usize, len, "{what} cut at {len}");
                }
                Err(e) => assert!(len < *min, "{what} cut at {len}: {e}"),
            }
        }
    }
    let c = h.fp.counters().unwrap();
    // Tagged cuts inside the tag / the IPv4 / IPv6 / ARP header.
    assert!(
        c.get(Counter::EgressMalformed) >= 2 + 40 + 20 + 28,
        "{}",
        c.summary()
    );
    // A whole IPv4 header with another version.
    let mut v6in4 = udp.clone();
    v6in4[14] = 0x65;
    assert_eq!(h.run_egress(&v6in4), (TC_ACT_OK, v6in4.clone()));
    h.assert_egress_outcomes_add_up();
}

#[test]
fn egress_verifier_statistics() {
    require_root();
    let mut fp = FastPath::load().expect("load");
    let info = fp.egress_program().unwrap().info().unwrap();
    check_verifier_statistics("vrrp_tc_egress", &info);
}

// ---------------------------------------------------------------------------------------------
// Namespaces

const A_IP: &str = "fd00:210::1";
const B_IP: &str = "fd00:210::2";
const VIP: &str = "fd00:210::a";

/// What B saw while A pinged B from the VIP: every frame B received whose IPv6 source is the
/// VIP, and whether the ping succeeded.
fn ping_from_vip(a: &Netns, b: &Netns) -> Result<(Vec<Vec<u8>>, bool)> {
    let _ = a.ip(&["-6", "neigh", "flush", "dev", "a0"]);
    let _ = b.ip(&["-6", "neigh", "flush", "dev", "b0"]);
    let vip: Ipv6Addr = VIP.parse()?;
    let b_path = b.path();
    let ready = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<_> {
        let cap = s.spawn(|| -> Result<Vec<Vec<u8>>> {
            Netns::enter_path(&b_path)?;
            let sock = packet_socket("b0", libc::ETH_P_ALL as u16)?;
            ready.store(true, Ordering::SeqCst);
            let mut frames = Vec::new();
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(10);
            // Until told to stop *and* the socket's queue is empty (a receive timed out), so
            // that every frame the ping caused is read; bounded by the deadline.
            while Instant::now() < deadline {
                let Some(f) = recv_frame(&sock, &mut buf) else {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                };
                if f.len() >= 54 && f[12..14] == [0x86, 0xdd] && f[22..38] == vip.octets() {
                    frames.push(f.to_vec());
                }
            }
            Ok(frames)
        });
        wait_until("the capture socket on b0", Duration::from_secs(10), || {
            (ready.load(Ordering::SeqCst) || cap.is_finished()).then_some(())
        })?;
        let ping = a
            .cmd("ping")
            .args(["-6", "-c", "2", "-i", "0.2", "-W", "2", "-I", VIP, B_IP])
            .output();
        done.store(true, Ordering::SeqCst);
        let frames = cap.join().expect("capture thread")?;
        Ok((frames, ping.map(|o| o.status.success()).unwrap_or(false)))
    })
}

/// The lladdr B's kernel has for the VIP.
fn b_neigh(b: &Netns) -> Result<String> {
    let out = b.ip(&["-6", "neigh", "show", VIP, "dev", "b0"])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The NS (from the VIP, for B) among `frames`, parsed.
fn the_ns(frames: &[Vec<u8>]) -> Result<NdpFrame> {
    let b_ip: Ipv6Addr = B_IP.parse()?;
    frames
        .iter()
        .filter_map(|f| NdpFrame::parse(f).ok())
        .find(|f| matches!(f.msg, NdpMessage::NeighborSolicit { target, .. } if target == b_ip))
        .context("no Neighbor Solicitation from the VIP reached B")
}

fn lab(tag: &str) -> Result<(Netns, Netns, MacAddr)> {
    require_root();
    let a = Netns::new(&format!("{tag}a"))?;
    let b = Netns::new(&format!("{tag}b"))?;
    veth(
        &a,
        "a0",
        &[&format!("{A_IP}/64")],
        &b,
        "b0",
        &[&format!("{B_IP}/64")],
    )?;
    a.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{VIP}/64"),
        "dev",
        "a0",
        "nodad",
    ])?;
    let mac = parse_mac(&a.mac("a0")?)?;
    Ok((a, b, MacAddr(mac)))
}

#[test]
fn the_kernels_ns_from_an_owned_vip_reaches_the_neighbour_with_the_vmac() -> Result<()> {
    let (a, b, a_mac) = lab("te")?;
    let vip: Ipv6Addr = VIP.parse()?;
    let want = vmac6();

    // Control, no fast path: the kernel's NS from the VIP carries the real MAC, and B's entry
    // for the VIP becomes the real MAC — the leak.
    let (frames, _) = ping_from_vip(&a, &b)?;
    let ns = the_ns(&frames)?;
    assert_eq!(ns.eth_src, a_mac, "control: the kernel sends its real MAC");
    assert!(
        b_neigh(&b)?.contains(&fmt_mac(&a_mac.0)),
        "control: {}",
        b_neigh(&b)?
    );

    let a_path = a.path();
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<Result<EgressMode>>();
    let (counters, seen, neigh, ping_ok) = std::thread::scope(|s| -> Result<_> {
        let owner = s.spawn(|| -> Result<_> {
            Netns::enter_path(&a_path)?;
            let mut fp = FastPath::load()?;
            // Ready (the mode reported) once attached *and* the router is owned with a fresh
            // heartbeat: the main thread waits for this, not for a fixed time.
            let ready = (|| -> Result<EgressMode> {
                fp.set_iface_mac(a_mac.0)?;
                fp.attach("a0", XdpMode::Auto)?;
                fp.add_vip(IpAddr::V6(vip), VRID)?;
                fp.set_vrid(FAMILY_IPV6, VRID, true)?;
                fp.heartbeat(monotonic_ns())?;
                fp.set_router(FAMILY_IPV6, VRID, true, true, Duration::from_millis(300))?;
                Ok(fp.egress_mode().expect("egress attached"))
            })();
            let failed = ready.is_err();
            let _ = tx.send(ready);
            if failed {
                // The error went to the main thread, which reports it.
                return Ok(Default::default());
            }
            while !stop.load(Ordering::Relaxed) {
                fp.heartbeat(monotonic_ns())?;
                // The agent's heartbeat period (the bound is 300 ms), not a wait.
                std::thread::sleep(Duration::from_millis(20));
            }
            let c = fp.counters()?;
            fp.detach()?;
            Ok(c)
        });
        let run = || -> Result<_> {
            let mode = rx.recv_timeout(Duration::from_secs(10))??;
            assert_eq!(
                mode,
                EgressMode::Netlink,
                "a netlink filter on clsact, which outlives the agent"
            );
            assert_eq!(netlink_filters(&a, "a0")?, 1, "one egress filter");
            let (frames, ok) = ping_from_vip(&a, &b)?;
            Ok((frames, b_neigh(&b)?, ok))
        };
        let r = run();
        stop.store(true, Ordering::Relaxed);
        let c = owner.join().expect("owner thread")?;
        let (frames, neigh, ok) = r?;
        Ok((c, frames, neigh, ok))
    })?;

    let ns = the_ns(&seen)?;
    assert_eq!(ns.eth_src, want, "NS Ethernet source is the VMAC");
    assert_eq!(
        ns.msg,
        NdpMessage::NeighborSolicit {
            target: B_IP.parse()?,
            source_lladdr: Some(want)
        },
        "SLLAO is the VMAC (and the checksum is valid: NdpFrame::parse checked it)"
    );
    for f in &seen {
        assert_ne!(
            f[6..12],
            a_mac.0,
            "no frame from the VIP left with the real MAC: {f:02x?}"
        );
    }
    assert!(
        neigh.contains(&fmt_mac(&want.0)),
        "B's neighbour entry for the VIP is the VMAC: {neigh:?}"
    );
    assert!(
        ping_ok,
        "ping from the VIP works (B answers to the VMAC, XDP accepts it)"
    );
    assert!(
        counters.get(Counter::EgressNdRewritten) >= 1,
        "{}",
        counters.summary()
    );
    assert!(
        counters.get(Counter::EgressIpRewritten) >= 1,
        "{}",
        counters.summary()
    );
    assert_eq!(
        counters.egress_outcomes(),
        counters.get(Counter::EgressFrames),
        "{}",
        counters.summary()
    );
    assert_eq!(
        netlink_filters(&a, "a0")?,
        0,
        "detach removed the classifier"
    );
    Ok(())
}

/// The ARP frames from `VIP4_NS` that reach B while A pings B from it (A's neighbour cache
/// flushed first, so A's kernel ARPs from the VIP).
fn arp_from_vip(a: &Netns, b: &Netns) -> Result<Vec<ArpFrame>> {
    let _ = a.ip(&["-4", "neigh", "flush", "dev", "a0"]);
    let b_path = b.path();
    let ready = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<_> {
        let cap = s.spawn(|| -> Result<Vec<ArpFrame>> {
            Netns::enter_path(&b_path)?;
            let sock = packet_socket("b0", 0x0806)?;
            ready.store(true, Ordering::SeqCst);
            let mut frames = Vec::new();
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(10);
            // Until told to stop *and* the socket's queue is empty (a receive timed out), so
            // that every frame the ping caused is read; bounded by the deadline.
            while Instant::now() < deadline {
                let Some(f) = recv_frame(&sock, &mut buf) else {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                };
                if let Ok(f) = ArpFrame::parse(f) {
                    if f.arp.sender_ip == VIP4_NS {
                        frames.push(f);
                    }
                }
            }
            Ok(frames)
        });
        wait_until("the capture socket on b0", Duration::from_secs(10), || {
            (ready.load(Ordering::SeqCst) || cap.is_finished()).then_some(())
        })?;
        let _ = a
            .cmd("ping")
            .args(["-c", "2", "-i", "0.2", "-W", "1", "-I"])
            .arg(VIP4_NS.to_string())
            .arg("10.0.0.2")
            .output();
        done.store(true, Ordering::SeqCst);
        cap.join().expect("capture thread")
    })
}

/// The VIP the fast-path holder owns in the namespace tests.
const VIP4_NS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// The egress filters of ours on `iface` in `ns` (from netlink).
fn our_filters(ns: &Netns, iface: &str) -> Result<Vec<rtnl::BpfFilter>> {
    let iface = iface.to_owned();
    ns.run_in(move || {
        let idx = rtnl::iface_facts(&iface)?.index;
        Ok(rtnl::bpf_filters(idx, rtnl::TC_PARENT_EGRESS)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .into_iter()
            .filter(|f| f.name.as_deref() == Some("vrrp_tc_egress"))
            .collect())
    })
}

#[test]
fn a_killed_agents_egress_filter_stays_drops_arp_from_the_vip_and_is_replaced_in_place(
) -> Result<()> {
    let (a, b, a_mac) = lab("tk")?;
    a.ip(&["addr", "add", "10.0.0.1/24", "dev", "a0"])?;
    b.ip(&["addr", "add", "10.0.0.2/24", "dev", "b0"])?;
    let stale = Duration::from_millis(300);
    let mut holder = {
        let mut cmd = a.cmd(env!("CARGO_BIN_EXE_fastpath-holder"));
        cmd.args(["--iface", "a0", "--mac", &fmt_mac(&a_mac.0)])
            .args(["--vip", &VIP4_NS.to_string(), "--vrid", &VRID.to_string()])
            .args(["--stale-ms", &stale.as_millis().to_string()]);
        Proc::spawn(cmd, "fastpath-holder")?
    };
    holder.wait_for_line(Duration::from_secs(20), |l| l.starts_with("attached "))?;
    assert!(
        holder.output().contains("egress=Netlink"),
        "{}",
        holder.output()
    );
    let before = our_filters(&a, "a0")?;
    assert_eq!(before.len(), 1, "the holder's filter: {before:?}");
    // The VIP on the interface (the Master's state, and what a killed one leaves).
    a.ip(&["addr", "add", &format!("{VIP4_NS}/24"), "dev", "a0"])?;
    let alive = arp_from_vip(&a, &b)?;
    assert!(!alive.is_empty(), "A's kernel ARPs from the VIP");
    for f in &alive {
        assert_eq!(f.eth_src, vmac4(), "owned: Ethernet source rewritten");
        assert_eq!(f.arp.sender_mac, vmac4(), "owned: sender MAC rewritten");
    }

    holder.stop(libc::SIGKILL, Duration::from_secs(5))?;
    // The heartbeat goes stale with time alone (nothing left to observe but the clock): this
    // sleep past the bound is the test's subject, and what follows asserts what it changed.
    std::thread::sleep(stale + Duration::from_millis(150));
    assert_eq!(
        our_filters(&a, "a0")?,
        before,
        "the netlink filter outlives the agent"
    );
    let dead = arp_from_vip(&a, &b)?;
    assert!(
        dead.is_empty(),
        "a dead agent's kernel must not ARP from the VIP (stale heartbeat): {dead:?}"
    );

    // The next agent replaces the filter in place (same priority and handle, its program), and
    // removes it on a clean stop.
    let (mine, seen) = a.run_in(|| -> Result<_> {
        let mut fp = FastPath::load()?;
        fp.attach("a0", XdpMode::Auto)?;
        assert_eq!(fp.egress_mode(), Some(EgressMode::Netlink));
        assert_eq!(fp.failsafe_gap(), None);
        let mine = fp.egress_program()?.info()?.id();
        let idx = rtnl::iface_facts("a0")?.index;
        let seen =
            rtnl::bpf_filters(idx, rtnl::TC_PARENT_EGRESS).map_err(|e| anyhow::anyhow!("{e}"))?;
        fp.detach()?;
        Ok((mine, seen))
    })?;
    assert_eq!(seen.len(), 1, "replaced, not stacked: {seen:?}");
    assert_eq!(
        (seen[0].prio, seen[0].handle, seen[0].prog_id),
        (before[0].prio, before[0].handle, Some(mine)),
        "same priority and handle, the new program"
    );
    assert_eq!(our_filters(&a, "a0")?, vec![], "clean detach removed it");
    // Control: without the classifier, the kernel's ARP from the VIP carries the real MAC.
    let kernel = arp_from_vip(&a, &b)?;
    assert!(!kernel.is_empty(), "control: the kernel ARPs from the VIP");
    assert!(
        kernel.iter().all(|f| f.arp.sender_mac == a_mac),
        "{kernel:?}"
    );
    Ok(())
}

#[test]
fn without_clsact_the_classifier_falls_back_to_tcx_and_require_failsafe_refuses() -> Result<()> {
    require_root();
    if kernel::lacks(
        Feature::Tcx,
        "without_clsact_the_classifier_falls_back_to_tcx_and_require_failsafe_refuses",
    ) {
        return Ok(());
    }
    // An ingress qdisc takes clsact's place: no egress filter can be added, as on a kernel
    // without sch_clsact.
    let (a, _b, _) = lab("tf")?;
    run(a.cmd("tc").args(["qdisc", "add", "dev", "a0", "ingress"]))?;
    a.run_in(|| -> Result<()> {
        let mut fp = FastPath::load()?;
        fp.attach("a0", XdpMode::Auto)?;
        assert_eq!(fp.egress_mode(), Some(EgressMode::Tcx));
        let gap = fp.failsafe_gap().expect("the gap is reported").to_owned();
        assert!(gap.contains("TCX link that dies with the agent"), "{gap}");
        assert!(
            gap.contains("has an 'ingress' qdisc where clsact goes"),
            "{gap}"
        );
        // Nothing of ours landed on the ingress qdisc's block.
        let idx = rtnl::iface_facts("a0")?.index;
        let on_ingress = rtnl::bpf_filters(idx, 0xffff_fff2).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(on_ingress, vec![], "no filter of ours on ingress");
        fp.detach()?;
        let mut fp = FastPath::load()?;
        let e = fp
            .attach_with("a0", XdpMode::Auto, true)
            .expect_err("require_failsafe refuses")
            .to_string();
        assert!(
            e.starts_with("a0: fail-safe incomplete: ") && !e.contains('\n'),
            "one line: {e}"
        );
        assert_eq!(fp.egress_mode(), None);
        assert_eq!(rtnl::iface_facts("a0")?.xdp.skb, None, "nothing attached");
        Ok(())
    })?;
    Ok(())
}

fn netlink_filters(ns: &Netns, iface: &str) -> Result<usize> {
    let out = ns
        .cmd("tc")
        .args(["filter", "show", "dev", iface, "egress"])
        .output()?;
    if !out.status.success() {
        bail!("tc filter show: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("vrrp_tc_egress"))
        .count())
}

#[test]
fn a_filter_left_behind_is_replaced_not_stacked_and_detach_removes_it() -> Result<()> {
    let (a, _b, _) = lab("tn")?;
    a.run_in(|| -> Result<()> {
        let mut first = FastPath::load()?;
        first.attach_egress_with("a0", EgressMode::Netlink)?;
        // What a killed agent leaves: a netlink filter nobody will remove.
        std::mem::forget(first);
        Ok(())
    })?;
    assert_eq!(netlink_filters(&a, "a0")?, 1, "the leftover filter");
    a.run_in(|| -> Result<()> {
        let mut fp = FastPath::load()?;
        assert_eq!(
            fp.attach_egress_with("a0", EgressMode::Netlink)?,
            EgressMode::Netlink
        );
        Ok(())
    })
    .map(|_| ())?;
    // The FastPath was dropped at the end of the closure: detached.
    assert_eq!(netlink_filters(&a, "a0")?, 0, "dropped FastPath detached");
    a.run_in(|| -> Result<()> {
        let mut fp = FastPath::load()?;
        fp.attach_egress_with("a0", EgressMode::Netlink)?;
        std::mem::forget(fp);
        Ok(())
    })?;
    let mid = netlink_filters(&a, "a0")?;
    a.run_in(|| -> Result<()> {
        let mut fp = FastPath::load()?;
        fp.attach_egress_with("a0", EgressMode::Netlink)?;
        // Count while attached: the leftover was replaced, not stacked.
        let out = Command::new("tc")
            .args(["filter", "show", "dev", "a0", "egress"])
            .output()?;
        let n = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("vrrp_tc_egress"))
            .count();
        assert_eq!(n, 1, "replaced, not stacked");
        fp.detach()?;
        Ok(())
    })?;
    assert_eq!(mid, 1);
    assert_eq!(netlink_filters(&a, "a0")?, 0, "detach removed it");
    Ok(())
}
