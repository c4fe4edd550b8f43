//! Packets we EMIT, read back by an independent decoder: written to a pcap and decoded with
//! `tshark -V` (IPv4 header checksum validation on). tshark must find nothing malformed, every
//! checksum Good, and the same field values as our own parsers. Fails when tshark is not
//! installed (`cargo xtask setup --test-peers` installs it): a test that cannot run must not
//! pass.
mod wire_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use vrrp_core::wire::*;
use wire_support::{compare, our_fields, parse_tshark};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn emitted_frames() -> Vec<(&'static str, Vec<u8>)> {
    let o = ChecksumOpts::default();
    let v3 = VrrpRepr {
        version: Version::V3,
        vrid: 7,
        priority: 200,
        max_advert_int: 100,
        auth: Auth::None,
        addrs: vec![ip("192.0.2.10"), ip("192.0.2.11")],
    };
    let v2 = VrrpRepr {
        version: Version::V2,
        auth: Auth::simple(b"secret").unwrap(),
        ..v3.clone()
    };
    let v3_6 = VrrpRepr {
        vrid: 8,
        addrs: vec![ip("2001:db8::10"), ip("fe80::10")],
        ..v3.clone()
    };
    let src4 = ip("192.0.2.1");
    let src6 = ip("fe80::1");
    let mut tagged = AdvertFrame::multicast(v3.clone(), src4);
    tagged.vlan = Some(100);
    let vm4 = vmac(Family::V4, 7);
    let vm6 = vmac(Family::V6, 8);
    let vip4 = Ipv4Addr::new(192, 0, 2, 10);
    let vip6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let asker = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    let arp_req = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: asker,
        vlan: None,
        arp: ArpRepr::request(asker, Ipv4Addr::new(192, 0, 2, 42), vip4),
    };
    let ns = NdpFrame::solicit(asker, "fe80::42".parse().unwrap(), vip6);
    vec![
        (
            "v2 PASS advert",
            AdvertFrame::multicast(v2.clone(), src4)
                .to_bytes(o)
                .unwrap(),
        ),
        (
            "v2 no-auth advert",
            AdvertFrame::multicast(
                VrrpRepr {
                    auth: Auth::None,
                    ..v2.clone()
                },
                src4,
            )
            .to_bytes(o)
            .unwrap(),
        ),
        (
            "v3 IPv4 advert",
            AdvertFrame::multicast(v3.clone(), src4)
                .to_bytes(o)
                .unwrap(),
        ),
        (
            "v3 IPv4 priority 0",
            AdvertFrame::multicast(
                VrrpRepr {
                    priority: 0,
                    ..v3.clone()
                },
                src4,
            )
            .to_bytes(o)
            .unwrap(),
        ),
        (
            "v3 IPv4 unicast",
            AdvertFrame::unicast(v3.clone(), src4, ip("192.0.2.2"), asker)
                .to_bytes(o)
                .unwrap(),
        ),
        ("v3 IPv4 802.1Q", tagged.to_bytes(o).unwrap()),
        (
            "v3 IPv6 advert",
            AdvertFrame::multicast(v3_6.clone(), src6)
                .to_bytes(o)
                .unwrap(),
        ),
        ("GARP", ArpFrame::gratuitous(vm4, vip4).to_bytes()),
        ("ARP request", arp_req.to_bytes()),
        ("ARP reply", ArpFrame::reply_to(&arp_req, vm4).to_bytes()),
        (
            "unsolicited NA",
            NdpFrame::unsolicited_na(vm6, vip6, false).to_bytes(),
        ),
        (
            "unsolicited NA, router",
            NdpFrame::unsolicited_na(vm6, vip6, true).to_bytes(),
        ),
        ("NS", ns.to_bytes()),
        ("solicited NA", NdpFrame::answer(&ns, vm6, true).to_bytes()),
    ]
}

#[test]
fn tshark_agrees_with_what_we_emit() {
    if let Err(e) = Command::new("tshark").arg("--version").output() {
        panic!(
            "tshark is needed to check what we emit and is not runnable ({e}): run `cargo xtask \
             setup --test-peers` (or apt-get install tshark)"
        );
    }
    let frames = emitted_frames();
    let path = std::env::temp_dir().join(format!("vrrp-wire-emitted-{}.pcap", std::process::id()));
    {
        let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
        for (i, (_, f)) in frames.iter().enumerate() {
            let ts = Duration::from_millis(i as u64);
            w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
                .unwrap();
        }
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-V", "-o", "ip.check_checksum:TRUE"])
        .output()
        .expect("running tshark");
    if std::env::var_os("KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let decodes = parse_tshark(&text);
    assert_eq!(decodes.len(), frames.len());
    let mut failures = Vec::new();
    for ((name, bytes), d) in frames.iter().zip(&decodes) {
        for bad in [
            "Malformed",
            "Expert Info (Error",
            "[Checksum Status: Bad]",
            "incorrect",
        ] {
            if d.text.contains(bad) {
                failures.push(format!("{name}: tshark says {bad:?}:\n{}", d.text));
            }
        }
        let ours = our_fields(bytes)
            .unwrap_or_else(|e| panic!("{name}: we cannot parse our own frame: {e}"));
        if ours.contains_key("vrrp.vrid") || ours.contains_key("icmpv6.type") {
            let st = d
                .fields
                .get("vrrp.checksum_status")
                .or(d.fields.get("icmpv6.checksum_status"));
            if st != Some(&vec!["Good".to_string()]) {
                failures.push(format!("{name}: checksum status {st:?}"));
            }
        }
        if ours.contains_key("ip.checksum")
            && d.fields.get("ip.checksum_status") != Some(&vec!["Good".to_string()])
        {
            failures.push(format!(
                "{name}: IPv4 header checksum status {:?}",
                d.fields.get("ip.checksum_status")
            ));
        }
        if let Err(diff) = compare(&d.fields, &ours) {
            failures.push(format!("{name}: tshark and we disagree:\n{diff}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} emitted frames decoded by tshark without complaint",
        frames.len()
    );
}
