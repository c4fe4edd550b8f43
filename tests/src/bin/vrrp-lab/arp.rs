//! `vrrp-lab bench-arp`: ARP requests (and IPv6 Neighbor Solicitations) for the VIP blasted from
//! the client namespace, answered by vrrp-agent's XDP responder (generic and native XDP) or by
//! the kernel (agent stopped, the VIP plainly configured), and by nobody (the baseline: the
//! same chain, requests dropped by the kernel of r1).
//!
//! The lab is the demo's with one router: client ─ veth ─ bridge ─ veth ─ r1. The sender is an
//! AF_PACKET socket (qdisc bypassed), one per sender thread, in the client namespace. On a veth a frame that r1's native XDP program bounces
//! (XDP_TX) is only delivered if the peer end (the bridge port `p-r1`) runs an XDP program, so
//! every mode runs the agent's own XDP program there without any VIP: it passes every frame.
//! The chain is the same in every mode.
//!
//! Per mode and family, over `seconds`: requests that reached r1 (its eth0 rx counter), replies
//! that reached the client (its eth0 rx counter), and the softirq CPU time of all CPUs
//! (/proc/stat). softirq ns per reply is the cost of the whole chain (both veth pairs, the
//! bridge, the client's own receive); its difference to the baseline's softirq ns per request
//! is what answering costs: the responder's part.
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_agent::{config::XdpMode, fastpath::FastPath};
use vrrp_integration_tests::{
    lab::{instance_name, sibling_agent_bin, vip_cidr, vr_args, Lab, Node, MASTER, VIP4, VIP6},
    packet_socket,
    prober::parse_mac,
    require_root, set_sockopt, Netns,
};

use crate::{
    failover::{check_interrupted, install_interrupt_handler, sleep},
    report::Report,
};

const VRID: u8 = 51;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Nobody answers (no VIP anywhere): the chain's cost per request.
    None,
    /// The kernel of r1 answers (the VIP configured on its eth0, no agent).
    Kernel,
    /// vrrp-agent master on r1, XDP in generic (skb) mode.
    Generic,
    /// vrrp-agent master on r1, XDP in native (driver) mode.
    Native,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::None => "nobody answers",
            Mode::Kernel => "kernel",
            Mode::Generic => "XDP generic",
            Mode::Native => "XDP native",
        }
    }
}

pub struct Opts {
    pub seconds: u64,
    pub senders: u32,
    pub modes: Vec<Mode>,
    pub v6: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Measured {
    secs: f64,
    sent: u64,
    requests: u64,
    replies: u64,
    softirq_ns: u64,
}

impl Measured {
    /// What was sent and answered, and the softirq time, in one line.
    fn counts(&self) -> String {
        format!(
            "sent {} ({:.0}/s), requests at r1 {}, replies {} ({:.0}/s), softirq {:.0} ms",
            self.sent,
            self.sent as f64 / self.secs,
            self.requests,
            self.replies,
            self.replies_per_s(),
            self.softirq_ns as f64 / 1e6,
        )
    }

    fn replies_per_s(&self) -> f64 {
        self.replies as f64 / self.secs
    }
    fn softirq_per_reply(&self) -> Option<f64> {
        (self.replies > 0).then(|| self.softirq_ns as f64 / self.replies as f64)
    }
    fn softirq_per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.softirq_ns as f64 / self.requests as f64)
    }
}

/// Sum over the CPUs of /proc/stat's softirq column, ns.
fn softirq_ns() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0u64;
    for l in stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
    {
        // cpuN user nice system idle iowait irq softirq ...
        ticks += l
            .split_whitespace()
            .nth(7)
            .and_then(|v| v.parse::<u64>().ok())
            .context("/proc/stat: no softirq column")?;
    }
    Ok(ticks * 1_000_000_000 / hz)
}

/// rx packets of `iface` in `ns` (`ip -s -j link`).
fn rx_packets(ns: &Netns, iface: &str) -> Result<u64> {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", iface])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .with_context(|| format!("no rx counter for {iface}"))
}

fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

/// A Neighbor Solicitation for `target` to its solicited-node group, with the sender's link-layer
/// address option.
fn neighbor_solicitation(mac: [u8; 6], ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let dst = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut icmp = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&mac);
    // Checksum over the pseudo-header and the message.
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&ip.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(&icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    icmp[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let d = dst.octets();
    let mut f = vec![0x33, 0x33, d[12], d[13], d[14], d[15]];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&d);
    f.extend_from_slice(&icmp);
    f
}

/// Sends `frame` as fast as the TX rings take it, from `senders` threads in `ns`, until `stop`.
fn blast(
    ns: &Netns,
    iface: &str,
    frame: &[u8],
    senders: u32,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Result<()> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..senders)
            .map(|_| {
                s.spawn(|| {
                    ns.run_in(|| {
                        // netring's TX ring (`Injector`) sent a first ring of 1024 frames and
                        // then never got a slot back on this kernel; until that is understood
                        // the sender is a plain AF_PACKET socket with the qdisc bypassed.
                        let fd = packet_socket(iface, 0)?; // protocol 0: receives nothing
                        set_sockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)
                            .context("PACKET_QDISC_BYPASS")?;
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..256 {
                                // SAFETY: `frame` is valid for its length; fd is a bound packet socket.
                                let r = unsafe {
                                    libc::send(
                                        fd.as_raw_fd(),
                                        frame.as_ptr().cast(),
                                        frame.len(),
                                        0,
                                    )
                                };
                                if r > 0 {
                                    n += 1;
                                }
                            }
                        }
                        sent.fetch_add(n, Ordering::Relaxed);
                        Ok(())
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().expect("sender thread")?;
        }
        Ok(())
    })
}

/// The agent's XDP program, no VIP, attached natively on `iface` of `ns` (it passes every frame):
/// what lets r1's native XDP_TX reach the bridge. Held until `release` is dropped.
fn peer_xdp(ns: &Netns, iface: &str) -> Result<std::sync::mpsc::Sender<()>> {
    pass_xdp(ns, iface, XdpMode::Native)
}

/// The agent's XDP program, no VIP, attached in `mode` on `iface` of `ns`: it passes every
/// frame. Held until the returned sender is dropped. (Also bench cpu's `keepalived+xdp`.)
pub fn pass_xdp(ns: &Netns, iface: &str, mode: XdpMode) -> Result<std::sync::mpsc::Sender<()>> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
    let (ns_path, iface) = (ns.path(), iface.to_owned());
    std::thread::spawn(move || {
        let r = (|| -> Result<FastPath> {
            Netns::enter_path(&ns_path)?;
            let mut fp = FastPath::load()?;
            fp.attach(&iface, mode)
                .with_context(|| format!("{mode:?} XDP on {iface}"))?;
            Ok(fp)
        })();
        match r {
            Ok(fp) => {
                let _ = ready_tx.send(Ok(()));
                let _ = rx.recv();
                drop(fp);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .context("peer XDP program: no answer")??;
    Ok(tx)
}

fn one(mode: Mode, v6: bool, o: &Opts, agent_bin: &std::path::Path, tag: &str) -> Result<Measured> {
    let lab = Lab::new(tag, 1)?;
    let _peer = peer_xdp(&lab.switch, &lab.r(1).port)?;
    let r1: &Node = lab.r(1);
    let vip = vip_cidr(v6);
    let mut _agent = None;
    match mode {
        Mode::None => {}
        Mode::Kernel => {
            r1.ns
                .ip(&["addr", "add", &vip, "dev", &r1.iface, "nodad"])?;
        }
        Mode::Generic | Mode::Native => {
            let mut args = vr_args(VRID, 200, &vip, "1");
            args.extend([
                "--xdp-mode".to_owned(),
                if mode == Mode::Native {
                    "native"
                } else {
                    "generic"
                }
                .to_owned(),
            ]);
            let mut vr = lab.agent(1, agent_bin, &args, &instance_name(VRID, v6))?;
            vr.wait_state(MASTER, Duration::from_secs(15))?;
            _agent = Some(vr);
        }
    }
    // The client must reach r1 at all (and for IPv6, DAD must be over).
    sleep(Duration::from_millis(if v6 { 2500 } else { 300 }))?;
    let c = &lab.client;
    let mac = parse_mac(&c.mac).context("client MAC")?;
    let frame = if v6 {
        neighbor_solicitation(mac, c.ip6, VIP6)
    } else {
        arp_request(mac, c.ip4, VIP4)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = AtomicU64::new(0);
    let (req0, rep0) = (rx_packets(&r1.ns, &r1.iface)?, rx_packets(&c.ns, &c.iface)?);
    let irq0 = softirq_ns()?;
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let h = s.spawn(|| blast(&c.ns, &c.iface, &frame, o.senders, &stop, &sent));
        let r = sleep(Duration::from_secs(o.seconds));
        stop.store(true, Ordering::Relaxed);
        h.join().expect("blast thread")?;
        r
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let irq1 = softirq_ns()?;
    let (req1, rep1) = (rx_packets(&r1.ns, &r1.iface)?, rx_packets(&c.ns, &c.iface)?);
    Ok(Measured {
        secs,
        sent: sent.load(Ordering::Relaxed),
        requests: req1 - req0,
        replies: rep1 - rep0,
        softirq_ns: irq1 - irq0,
    })
}

pub fn bench(o: Opts) -> Result<()> {
    require_root();
    install_interrupt_handler();
    let agent = sibling_agent_bin()?;
    let fams: &[bool] = if o.v6 { &[false, true] } else { &[false] };
    let mut res: Vec<(bool, Mode, Measured)> = Vec::new();
    for &v6 in fams {
        for (i, &mode) in o.modes.iter().enumerate() {
            check_interrupted()?;
            let m = one(mode, v6, &o, &agent, &format!("ba{i}{}", u8::from(v6)))
                .with_context(|| format!("{} ({})", mode.label(), fam(v6)))?;
            println!(
                "  {:<4} {:<15} {}: {} ns/reply, {} ns/request",
                fam(v6),
                mode.label(),
                m.counts(),
                m.softirq_per_reply()
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or("–".into()),
                m.softirq_per_request()
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or("–".into()),
            );
            res.push((v6, mode, m));
        }
    }
    let modes: Vec<&str> = o
        .modes
        .iter()
        .map(|m| match m {
            Mode::None => "none",
            Mode::Kernel => "kernel",
            Mode::Generic => "generic",
            Mode::Native => "native",
        })
        .collect();
    let mut rep = Report::new(
        "arp",
        &format!(
            "ARP requests{} for the VIP blasted from the client ({} AF_PACKET sender(s), qdisc bypassed, {} s per mode) \
             through veth ─ bridge ─ veth to r1; vrrp-agent's XDP responder against the kernel answering; \
             softirq CPU of all CPUs (/proc/stat)",
            if o.v6 { " and IPv6 NS" } else { "" },
            o.senders,
            o.seconds
        ),
        &format!(
            "cargo xtask bench arp --seconds {} --senders {} --modes {}{}",
            o.seconds,
            o.senders,
            modes.join(","),
            if o.v6 { "" } else { " --no-v6" }
        ),
    );
    let get = |v6: bool, mode: Mode| res.iter().find(|r| r.0 == v6 && r.1 == mode).map(|r| r.2);
    for &v6 in fams {
        let base = get(v6, Mode::None).and_then(|m| m.softirq_per_request());
        let k = get(v6, Mode::Kernel);
        for xdp in [Mode::Generic, Mode::Native] {
            let Some(a) = get(v6, xdp) else { continue };
            let f = fam(v6);
            let x = xdp.label();
            rep.row(
                &format!("{f}: replies/s, {x} vs kernel"),
                Some(a.replies_per_s()),
                k.map(|k| k.replies_per_s()),
                "/s",
            );
            rep.row(
                &format!("{f}: softirq ns per reply (whole chain), {x} vs kernel"),
                a.softirq_per_reply(),
                k.and_then(|k| k.softirq_per_reply()),
                "ns",
            );
            if let Some(b) = base {
                rep.row(
                    &format!("{f}: answering's softirq ns per request over nobody answering, {x} vs kernel"),
                    a.softirq_per_request().map(|x| x - b),
                    k.and_then(|k| k.softirq_per_request()).map(|x| x - b),
                    "ns",
                );
            }
        }
    }
    for (v6, mode, m) in &res {
        rep.note(format!(
            "{} {}: {} over {:.1} s",
            fam(*v6),
            mode.label(),
            m.counts(),
            m.secs
        ));
    }
    rep.note(
        "the agent's responder is the ratio's `vrrp-agent` column; `keepalived` stands for the kernel \
         answering (keepalived leaves ARP to the kernel)",
    );
    rep.emit()?;
    if res
        .iter()
        .any(|(_, m, x)| *m != Mode::None && x.replies == 0)
    {
        bail!("a responder sent no replies");
    }
    Ok(())
}

fn fam(v6: bool) -> &'static str {
    if v6 {
        "NS"
    } else {
        "ARP"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_checksum_verifies() {
        let f = neighbor_solicitation([2, 0, 0, 0, 0, 1], "fe80::1".parse().unwrap(), VIP6);
        // Sum of pseudo-header + message, checksum included, is 0xffff.
        let ip = &f[14..54];
        let icmp = &f[54..];
        let mut sum: u32 = 0;
        for b in [
            &ip[8..24],
            &ip[24..40],
            &(icmp.len() as u32).to_be_bytes()[..],
            &[0, 0, 0, 58][..],
            icmp,
        ] {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 1, 0]);
    }
}
