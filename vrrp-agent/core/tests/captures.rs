//! Decode every packet of every capture in `tests/fixtures/` with this crate's codecs and compare
//! field by field with tshark's decode of the same capture (`*.decode.txt`: the decodes shipped
//! with the vectors, covering a few frames each; `*.full.decode.txt`: `tshark -r X.pcap -V` of
//! every frame, committed beside them). Two independent decoders must agree on every field we
//! decode, and every checksum must verify with ours and be reported Good by tshark.
mod wire_support;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;
use vrrp_core::wire::*;
use wire_support::{compare, our_fields, parse_tshark, FrameDecode};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn pcaps() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    v
}

fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    assert_eq!(r.header().datalink, DataLink::ETHERNET, "{path:?}");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(
            p.data.len() as u32,
            p.orig_len,
            "{path:?}: truncated capture"
        );
        out.push(p.data.into_owned());
    }
    out
}

fn decodes(pcap: &Path, suffix: &str) -> BTreeMap<usize, FrameDecode> {
    let txt = pcap.with_extension(suffix);
    let text = std::fs::read_to_string(&txt).unwrap_or_else(|e| panic!("{txt:?}: {e}"));
    parse_tshark(&text)
        .into_iter()
        .map(|d| (d.number, d))
        .collect()
}

/// Keys tshark must have printed for a frame of each kind, so a decode text that lost its
/// fields cannot pass silently.
fn required(ours: &wire_support::Fields) -> &'static [&'static str] {
    if ours.contains_key("vrrp.vrid") {
        &[
            "eth.src",
            "ip.src",
            "ip.ttl",
            "vrrp.version",
            "vrrp.vrid",
            "vrrp.priority",
            "vrrp.count",
            "vrrp.adver_int",
            "vrrp.checksum",
            "vrrp.checksum_status",
            "vrrp.addr",
        ]
    } else if ours.contains_key("arp.opcode") {
        &[
            "eth.src",
            "arp.opcode",
            "arp.sender_mac",
            "arp.sender_ip",
            "arp.target_mac",
            "arp.target_ip",
        ]
    } else {
        &[
            "eth.src",
            "ip.src",
            "icmpv6.type",
            "icmpv6.checksum",
            "icmpv6.checksum_status",
            "icmpv6.target",
            "icmpv6.lladdr",
        ]
    }
}

#[test]
fn every_captured_packet_matches_tshark() {
    let pcaps = pcaps();
    assert_eq!(pcaps.len(), 6, "expected the six capture vectors");
    let mut total = 0;
    let mut compared_short = 0;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for pcap in &pcaps {
        let frames = read_frames(pcap);
        assert!(!frames.is_empty());
        let full = decodes(pcap, "full.decode.txt");
        let short = decodes(pcap, "decode.txt");
        assert!(
            !short.is_empty(),
            "{pcap:?}: no frames in the shipped decode"
        );
        assert_eq!(
            full.len(),
            frames.len(),
            "{pcap:?}: full decode must cover every frame"
        );
        for (i, frame) in frames.iter().enumerate() {
            let n = i + 1;
            total += 1;
            let ours = match our_fields(frame) {
                Ok(f) => f,
                Err(e) => {
                    failures.push(format!("{pcap:?} frame {n}: our decoder failed: {e}"));
                    continue;
                }
            };
            let kind = if ours.contains_key("vrrp.vrid") {
                if ours["vrrp.version"][0] == "2" {
                    "vrrp v2"
                } else if ours["ip.src"][0].contains(':') {
                    "vrrp v3 ipv6"
                } else {
                    "vrrp v3 ipv4"
                }
            } else if ours.contains_key("arp.opcode") {
                "arp"
            } else {
                "ndp"
            };
            *kinds.entry(kind).or_default() += 1;
            let mut against = vec![("full", full.get(&n))];
            if let Some(d) = short.get(&n) {
                compared_short += 1;
                against.push(("shipped", Some(d)));
            }
            for (which, d) in against {
                let Some(d) = d else {
                    failures.push(format!("{pcap:?} frame {n}: not in the {which} decode"));
                    continue;
                };
                for k in required(&ours) {
                    if !d.fields.contains_key(k) {
                        failures.push(format!("{pcap:?} frame {n}: {which} decode lacks {k}"));
                    }
                }
                if d.text.contains("Malformed") || d.text.contains("[Checksum Status: Bad]") {
                    failures.push(format!("{pcap:?} frame {n}: tshark flags it ({which})"));
                }
                if let Err(diff) = compare(&d.fields, &ours) {
                    failures.push(format!("{pcap:?} frame {n} vs {which} decode:\n{diff}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{total} frames decoded and compared ({compared_short} also against the shipped decodes): {kinds:?}");
    assert_eq!(total, 94);
    assert_eq!(compared_short, 13);
    for k in ["vrrp v2", "vrrp v3 ipv4", "vrrp v3 ipv6", "arp", "ndp"] {
        assert!(
            kinds.get(k).copied().unwrap_or(0) > 0,
            "no {k} frame in the captures"
        );
    }
}

/// The captured adverts also pass receive validation for a matching configuration, and the
/// backup/owner relationships recorded in them hold.
#[test]
fn captured_adverts_validate() {
    let cfg = |version, family, auth| InstanceCfg {
        vrid: 51,
        family,
        version,
        priority: 100,
        advert_int: 100,
        auth,
        addrs: vec![],
        checksum: ChecksumOpts::default(),
        unicast_peers: vec![],
        local_addrs: vec![],
    };
    let v2 = InstanceCfg {
        addrs: vec!["10.250.0.100".parse().unwrap()],
        ..cfg(Version::V2, Family::V4, Auth::simple(b"pbsecret").unwrap())
    };
    let v3 = InstanceCfg {
        addrs: vec!["10.250.0.100".parse().unwrap()],
        ..cfg(Version::V3, Family::V4, Auth::None)
    };
    let v3_6 = InstanceCfg {
        addrs: vec!["fd00:250::100".parse().unwrap()],
        ..cfg(Version::V3, Family::V6, Auth::None)
    };
    let mut adverts = 0;
    for pcap in pcaps() {
        for frame in read_frames(&pcap) {
            let Ok(rx) = RxFrame::parse(&frame) else {
                continue;
            };
            if rx.protocol != 112 {
                continue;
            }
            adverts += 1;
            let name = pcap.file_name().unwrap().to_string_lossy().to_string();
            let cfgs = [v2.clone(), v3.clone(), v3_6.clone()];
            let v2_first = [v2.clone(), v3_6.clone()];
            let list: &[InstanceCfg] = if name.starts_with("vrrpv2") {
                &v2_first
            } else {
                &cfgs[1..]
            };
            let v = validate(&rx, list).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!v.addr_mismatch, "{name}");
            // A wrong password is caught on the v2 capture.
            if name.starts_with("vrrpv2") {
                let wrong = InstanceCfg {
                    auth: Auth::simple(b"nope").unwrap(),
                    ..v2.clone()
                };
                assert_eq!(validate(&rx, &[wrong]), Err(RxError::AuthMismatch));
            }
        }
    }
    // 7 + 7 + 8 + 8 + 8 + 8 adverts in the six captures.
    assert_eq!(adverts, 46);
}
