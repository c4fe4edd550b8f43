//! Shared by `captures.rs` and `wire_tshark.rs`: reduce a `tshark -V` decode and our own decode
//! of the same frame to the same flat `key -> values` map, so the two decoders can be compared.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use vrrp_core::wire::*;

pub type Fields = BTreeMap<&'static str, Vec<String>>;

/// One frame of a `tshark -V` decode.
#[derive(Debug)]
pub struct FrameDecode {
    pub number: usize,
    pub fields: Fields,
    pub text: String,
}

fn add(f: &mut Fields, k: &'static str, v: impl Into<String>) {
    f.entry(k).or_default().push(v.into());
}

/// The text inside the last `( )` of a line: tshark's resolved name is followed by the raw
/// value, e.g. `Sender MAC address: IETF-VRRP-VRID_33 (00:00:5e:00:01:33)`.
fn last_paren(s: &str) -> String {
    match (s.rfind('('), s.rfind(')')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_string(),
        _ => s.trim().to_string(),
    }
}

/// The first whitespace-separated token after `key` in `line`.
fn token_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(key)?;
    line[i + key.len()..].split_whitespace().next()
}

fn rest_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key).map(str::trim)
}

/// Split a `tshark -V` text into frames and pull out the fields this crate decodes.
pub fn parse_tshark(text: &str) -> Vec<FrameDecode> {
    let mut out: Vec<FrameDecode> = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Frame ") {
            let number = rest
                .split(':')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .expect("frame number");
            out.push(FrameDecode {
                number,
                fields: Fields::new(),
                text: String::new(),
            });
            section = "frame";
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        cur.text.push_str(line);
        cur.text.push('\n');
        if !line.starts_with(' ') && !line.is_empty() {
            section = if line.starts_with("Ethernet II") {
                "eth"
            } else if line.starts_with("802.1Q Virtual LAN") {
                "vlan"
            } else if line.starts_with("Internet Protocol Version 4") {
                "ip"
            } else if line.starts_with("Internet Protocol Version 6") {
                "ipv6"
            } else if line.starts_with("Virtual Router Redundancy Protocol") {
                "vrrp"
            } else if line.starts_with("Address Resolution Protocol") {
                "arp"
            } else if line.starts_with("Internet Control Message Protocol v6") {
                "icmpv6"
            } else {
                ""
            };
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        let f = &mut cur.fields;
        match section {
            "eth" if indent == 4 => {
                if let Some(r) = rest_after(t, "Source:") {
                    add(f, "eth.src", last_paren(r));
                } else if let Some(r) = rest_after(t, "Destination:") {
                    add(f, "eth.dst", last_paren(r));
                }
            }
            "vlan" if indent == 4 => {
                if let Some(id) = token_after(t, "= ID: ") {
                    add(f, "vlan.id", id);
                }
            }
            "ip" if indent == 4 => {
                if let Some(r) = rest_after(t, "Source Address:") {
                    add(f, "ip.src", r);
                } else if let Some(r) = rest_after(t, "Destination Address:") {
                    add(f, "ip.dst", r);
                } else if let Some(r) = rest_after(t, "Time to Live:") {
                    add(f, "ip.ttl", r);
                } else if let Some(r) = rest_after(t, "Protocol:") {
                    add(f, "ip.proto", last_paren(r));
                } else if let Some(r) = token_after(t, "Differentiated Services Field: ") {
                    add(f, "ip.tos", r);
                } else if let Some(r) = token_after(t, "Header Checksum: ") {
                    add(f, "ip.checksum", r);
                } else if let Some(r) = rest_after(t, "[Header checksum status:") {
                    add(f, "ip.checksum_status", r.trim_end_matches(']'));
                }
            }
            "ipv6" if indent == 4 => {
                if let Some(r) = rest_after(t, "Source Address:") {
                    add(f, "ip.src", r);
                } else if let Some(r) = rest_after(t, "Destination Address:") {
                    add(f, "ip.dst", r);
                } else if let Some(r) = rest_after(t, "Hop Limit:") {
                    add(f, "ip.ttl", r);
                } else if let Some(r) = rest_after(t, "Next Header:") {
                    add(f, "ip.proto", last_paren(r));
                } else if let Some(r) = token_after(t, "Traffic Class: ") {
                    add(f, "ip.tos", r);
                }
            }
            "vrrp" => {
                if let Some(v) = token_after(t, "= VRRP protocol version: ") {
                    add(f, "vrrp.version", v);
                } else if t.contains("= VRRP packet type: ") {
                    add(f, "vrrp.type", last_paren(t));
                } else if let Some(r) = rest_after(t, "Virtual Rtr ID:") {
                    add(f, "vrrp.vrid", r);
                } else if let Some(r) = token_after(t, "Priority: ") {
                    add(f, "vrrp.priority", r);
                } else if let Some(r) = rest_after(t, "Addr Count:") {
                    add(f, "vrrp.count", r);
                } else if let Some(r) = rest_after(t, "Auth Type:") {
                    add(f, "vrrp.auth_type", last_paren(r));
                } else if let Some(r) = token_after(t, "Adver Int: ") {
                    add(f, "vrrp.adver_int", r);
                } else if let Some(r) = token_after(t, "Checksum: ") {
                    add(f, "vrrp.checksum", r);
                } else if let Some(r) = rest_after(t, "[Checksum Status:") {
                    add(f, "vrrp.checksum_status", r.trim_end_matches(']'));
                } else if let Some(r) = rest_after(t, "IP Address:") {
                    add(f, "vrrp.addr", r);
                } else if let Some(r) = rest_after(t, "IPv6 Address:") {
                    add(f, "vrrp.addr", r);
                } else if let Some(r) = rest_after(t, "Authentication String:") {
                    add(f, "vrrp.auth_string", r);
                }
            }
            "arp" if indent == 4 => {
                if let Some(r) = rest_after(t, "Opcode:") {
                    add(f, "arp.opcode", last_paren(r));
                } else if let Some(r) = rest_after(t, "Sender MAC address:") {
                    add(f, "arp.sender_mac", last_paren(r));
                } else if let Some(r) = rest_after(t, "Sender IP address:") {
                    add(f, "arp.sender_ip", r);
                } else if let Some(r) = rest_after(t, "Target MAC address:") {
                    add(f, "arp.target_mac", last_paren(r));
                } else if let Some(r) = rest_after(t, "Target IP address:") {
                    add(f, "arp.target_ip", r);
                } else if let Some(r) = rest_after(t, "[Is gratuitous:") {
                    add(f, "arp.gratuitous", r.trim_end_matches(']'));
                }
            }
            "icmpv6" => {
                if indent == 4 {
                    if let Some(r) = rest_after(t, "Type:") {
                        add(f, "icmpv6.type", last_paren(r));
                    } else if let Some(r) = rest_after(t, "Code:") {
                        add(f, "icmpv6.code", r);
                    } else if let Some(r) = token_after(t, "Checksum: ") {
                        add(f, "icmpv6.checksum", r);
                    } else if let Some(r) = rest_after(t, "[Checksum Status:") {
                        add(f, "icmpv6.checksum_status", r.trim_end_matches(']'));
                    } else if let Some(r) = rest_after(t, "Target Address:") {
                        add(f, "icmpv6.target", r);
                    }
                } else if indent == 8 {
                    for (k, key) in [
                        ("= Router: ", "icmpv6.router"),
                        ("= Solicited: ", "icmpv6.solicited"),
                        ("= Override: ", "icmpv6.override"),
                    ] {
                        if let Some(i) = t.find(k) {
                            add(f, key, &t[i + k.len()..]);
                        }
                    }
                    if let Some(r) = rest_after(t, "Type:") {
                        add(f, "icmpv6.opt_type", last_paren(r));
                    } else if let Some(r) = rest_after(t, "Link-layer address:") {
                        add(f, "icmpv6.lladdr", last_paren(r));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// tshark's MAC format (smoltcp's `Display` uses dashes).
pub fn mac_str(m: MacAddr) -> String {
    m.0.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_str(a: IpAddr) -> String {
    a.to_string()
}

fn set(f: bool) -> &'static str {
    if f {
        "Set"
    } else {
        "Not set"
    }
}

/// Decode a frame with this crate's codecs into the same keys [`parse_tshark`] produces.
/// Every checksum is verified by the parsers (a bad one is an `Err`), so the status is "Good".
pub fn our_fields(frame: &[u8]) -> Result<Fields, String> {
    let mut f = Fields::new();
    let (eth, _) = EthHeader::parse(frame).map_err(|e| e.to_string())?;
    add(&mut f, "eth.src", mac_str(eth.src));
    add(&mut f, "eth.dst", mac_str(eth.dst));
    if let Some(tci) = eth.vlan {
        add(&mut f, "vlan.id", (tci & 0x0fff).to_string());
    }
    if eth.ethertype == 0x0806 {
        let a = ArpFrame::parse(frame).map_err(|e| e.to_string())?.arp;
        add(
            &mut f,
            "arp.opcode",
            match a.op {
                ArpOp::Request => "1",
                ArpOp::Reply => "2",
            },
        );
        add(&mut f, "arp.sender_mac", mac_str(a.sender_mac));
        add(&mut f, "arp.sender_ip", a.sender_ip.to_string());
        add(&mut f, "arp.target_mac", mac_str(a.target_mac));
        add(&mut f, "arp.target_ip", a.target_ip.to_string());
        // tshark marks a request or reply gratuitous when sender and target IP are equal.
        if a.is_gratuitous() {
            add(&mut f, "arp.gratuitous", "True");
        }
        return Ok(f);
    }
    let rx = RxFrame::parse(frame).map_err(|e| e.to_string())?;
    add(&mut f, "ip.src", ip_str(rx.src_ip));
    add(&mut f, "ip.dst", ip_str(rx.dst_ip));
    add(&mut f, "ip.ttl", rx.hop_limit.to_string());
    add(&mut f, "ip.proto", rx.protocol.to_string());
    add(&mut f, "ip.tos", format!("0x{:02x}", rx.tos));
    if rx.family() == Family::V4 {
        let off = eth.header_len();
        let c = u16::from_be_bytes([frame[off + 10], frame[off + 11]]);
        add(&mut f, "ip.checksum", format!("0x{c:04x}"));
    }
    match rx.protocol {
        112 => {
            let adv =
                AdvertFrame::from_rx(&rx, ChecksumOpts::default()).map_err(|e| e.to_string())?;
            let v = &adv.vrrp;
            let pkt = VrrpPacket::new_checked(rx.payload).map_err(|e| e.to_string())?;
            add(&mut f, "vrrp.version", v.version.number().to_string());
            add(&mut f, "vrrp.type", "1");
            add(&mut f, "vrrp.vrid", v.vrid.to_string());
            add(&mut f, "vrrp.priority", v.priority.to_string());
            add(&mut f, "vrrp.count", v.addrs.len().to_string());
            match v.version {
                Version::V3 => add(&mut f, "vrrp.adver_int", v.max_advert_int.to_string()),
                Version::V2 => {
                    add(&mut f, "vrrp.auth_type", v.auth.type_number().to_string());
                    add(
                        &mut f,
                        "vrrp.adver_int",
                        (v.max_advert_int / 100).to_string(),
                    );
                }
            }
            add(&mut f, "vrrp.checksum", format!("0x{:04x}", pkt.checksum()));
            add(&mut f, "vrrp.checksum_status", "Good");
            for a in &v.addrs {
                add(&mut f, "vrrp.addr", ip_str(*a));
            }
            if let Auth::Simple(pw) = v.auth {
                let end = pw.iter().position(|b| *b == 0).unwrap_or(pw.len());
                add(
                    &mut f,
                    "vrrp.auth_string",
                    String::from_utf8_lossy(&pw[..end]),
                );
            }
        }
        58 => {
            let n = NdpFrame::parse(frame).map_err(|e| e.to_string())?;
            let c = u16::from_be_bytes([rx.payload[2], rx.payload[3]]);
            add(&mut f, "icmpv6.code", "0");
            add(&mut f, "icmpv6.checksum", format!("0x{c:04x}"));
            add(&mut f, "icmpv6.checksum_status", "Good");
            match n.msg {
                NdpMessage::NeighborSolicit {
                    target,
                    source_lladdr,
                } => {
                    add(&mut f, "icmpv6.type", "135");
                    add(&mut f, "icmpv6.target", target.to_string());
                    if let Some(m) = source_lladdr {
                        add(&mut f, "icmpv6.opt_type", "1");
                        add(&mut f, "icmpv6.lladdr", mac_str(m));
                    }
                }
                NdpMessage::NeighborAdvert {
                    router,
                    solicited,
                    override_,
                    target,
                    target_lladdr,
                } => {
                    add(&mut f, "icmpv6.type", "136");
                    add(&mut f, "icmpv6.router", set(router));
                    add(&mut f, "icmpv6.solicited", set(solicited));
                    add(&mut f, "icmpv6.override", set(override_));
                    add(&mut f, "icmpv6.target", target.to_string());
                    if let Some(m) = target_lladdr {
                        add(&mut f, "icmpv6.opt_type", "2");
                        add(&mut f, "icmpv6.lladdr", mac_str(m));
                    }
                }
            }
        }
        p => return Err(format!("unexpected IP protocol {p}")),
    }
    Ok(f)
}

/// Compare tshark's fields with ours: the same keys with the same values. tshark's IPv4
/// header-checksum status (only present when validation is on) must be "Good"; ours verified it.
pub fn compare(theirs: &Fields, ours: &Fields) -> Result<(), String> {
    let mut theirs = theirs.clone();
    if let Some(st) = theirs.remove("ip.checksum_status") {
        if st.iter().any(|s| s != "Good" && s != "Unverified") {
            return Err(format!("tshark IPv4 header checksum status {st:?}"));
        }
    }
    if &theirs != ours {
        let mut diff = String::new();
        let keys: std::collections::BTreeSet<_> = theirs.keys().chain(ours.keys()).collect();
        for k in keys {
            let (a, b) = (theirs.get(k), ours.get(k));
            if a != b {
                diff.push_str(&format!("  {k}: tshark {a:?} ours {b:?}\n"));
            }
        }
        return Err(diff);
    }
    Ok(())
}
