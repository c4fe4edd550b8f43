//! The client-side failover prober.
//!
//! From the client's namespace it sends, every `interval` (1 ms by default), one ICMP echo
//! request to the IPv4 VIP through the kernel (a raw ICMP socket: routing, the neighbour cache
//! and so GARPs matter, as for a real client) and one ARP request for the VIP (an AF_PACKET
//! socket, broadcast). Replies are timestamped by the kernel on receipt (`SO_TIMESTAMPNS`,
//! CLOCK_REALTIME, read from the `recvmsg` control message) and recorded with, for ARP, the
//! sender MAC. [`Trace::gap`] then gives the client-visible gap around an event: the longest
//! interval between consecutive replies from the last reply before the event to the end of the
//! window.
use std::{
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::{send_to, set_sockopt, Netns};

/// CLOCK_REALTIME in ns (the clock of `SO_TIMESTAMPNS`): mark events with it.
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Clone, Debug)]
pub struct ProberConfig {
    /// Client interface (in the client namespace).
    pub iface: String,
    /// Client's own IPv4 address and MAC (ARP sender fields).
    pub src: Ipv4Addr,
    pub src_mac: [u8; 6],
    pub vip: Ipv4Addr,
    pub interval: Duration,
    /// Hard bound on the run, whatever happens.
    pub max_duration: Duration,
}

/// One ARP reply for the VIP.
#[derive(Clone, Copy, Debug)]
pub struct ArpReply {
    pub rx_ns: u64,
    /// ARP sender hardware address.
    pub mac: [u8; 6],
}

/// What the prober saw.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub start_ns: u64,
    pub end_ns: u64,
    pub icmp_sent: u64,
    pub arp_sent: u64,
    /// Kernel receive times of echo replies from the VIP (ours: matching id), in order.
    pub icmp: Vec<u64>,
    pub arp: Vec<ArpReply>,
    /// Send times of the ARP requests, in order.
    pub arp_tx: Vec<u64>,
}

/// The longest silence in a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    /// Reply before and after the silence (CLOCK_REALTIME ns).
    pub from_ns: u64,
    pub to_ns: u64,
}

impl Gap {
    pub fn ms(&self) -> f64 {
        (self.to_ns - self.from_ns) as f64 / 1e6
    }
}

/// Longest interval between consecutive `times` (sorted) from the last one at or before `event`
/// up to `end`. `None` if there was no reply before the event or none after it (traffic never
/// resumed within the window).
pub fn gap(times: &[u64], event: u64, end: u64) -> Option<Gap> {
    let first = times.iter().rposition(|&t| t <= event)?;
    let last = times.iter().rposition(|&t| t <= end)?;
    if last <= first {
        return None;
    }
    times[first..=last]
        .windows(2)
        .map(|w| Gap {
            from_ns: w[0],
            to_ns: w[1],
        })
        .max_by_key(|g| g.to_ns - g.from_ns)
}

impl Trace {
    /// Client-visible ICMP gap around `event` (see [`gap`]).
    pub fn icmp_gap(&self, event: u64, end: u64) -> Option<Gap> {
        gap(&self.icmp, event, end)
    }

    /// ARP gap around `event` (see [`gap`]).
    pub fn arp_gap(&self, event: u64, end: u64) -> Option<Gap> {
        let t: Vec<u64> = self.arp.iter().map(|a| a.rx_ns).collect();
        gap(&t, event, end)
    }

    /// When ARP replies for the VIP switched MAC after `event`: (old MAC, new MAC, time of the
    /// first reply with the new MAC). `None` if the MAC never changed (VRRP's VMAC is the same
    /// on every router).
    pub fn arp_mac_switch(&self, event: u64, end: u64) -> Option<([u8; 6], [u8; 6], u64)> {
        let before = self.arp.iter().rev().find(|a| a.rx_ns <= event)?.mac;
        self.arp
            .iter()
            .find(|a| a.rx_ns > event && a.rx_ns <= end && a.mac != before)
            .map(|a| (before, a.mac, a.rx_ns))
    }

    /// How many hosts answered each ARP request: `(send time, replies received before the next
    /// request)`, one per request but the last (whose window is open). With the VMAC every
    /// owner answers with the same MAC, so owners are counted, not told apart.
    pub fn arp_owners(&self) -> Vec<(u64, usize)> {
        self.arp_tx
            .windows(2)
            .map(|w| {
                let n = self
                    .arp
                    .iter()
                    .filter(|a| a.rx_ns >= w[0] && a.rx_ns < w[1])
                    .count();
                (w[0], n)
            })
            .collect()
    }

    /// Echo replies received in `[from, to]`.
    pub fn icmp_in(&self, from: u64, to: u64) -> usize {
        self.icmp.iter().filter(|&&t| t >= from && t <= to).count()
    }

    /// Distinct ARP sender MACs seen in `[from, to]`.
    pub fn arp_macs(&self, from: u64, to: u64) -> Vec<[u8; 6]> {
        let mut v: Vec<[u8; 6]> = Vec::new();
        for a in self.arp.iter().filter(|a| a.rx_ns >= from && a.rx_ns <= to) {
            if !v.contains(&a.mac) {
                v.push(a.mac);
            }
        }
        v
    }
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad MAC {s:?}"))?;
    v.try_into().map_err(|_| anyhow!("bad MAC {s:?}"))
}

/// Live counts, readable while the prober runs.
#[derive(Debug, Default)]
pub struct Live {
    pub icmp_replies: AtomicU64,
    pub arp_replies: AtomicU64,
    /// CLOCK_REALTIME of the last echo reply.
    pub last_icmp_ns: AtomicU64,
}

/// A prober running in its own thread inside the client namespace.
pub struct Prober {
    stop: Arc<AtomicBool>,
    pub live: Arc<Live>,
    handle: Option<JoinHandle<Result<Trace>>>,
}

impl Prober {
    /// Starts probing from inside `ns`.
    pub fn start(ns: &Netns, cfg: ProberConfig) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Live::default());
        let path: PathBuf = ns.path();
        let (s, l) = (stop.clone(), live.clone());
        let handle =
            std::thread::Builder::new()
                .name("prober".into())
                .spawn(move || -> Result<Trace> {
                    Netns::enter_path(&path)?;
                    probe_loop(&cfg, &s, &l)
                })?;
        Ok(Self {
            stop,
            live,
            handle: Some(handle),
        })
    }

    /// Waits (bounded) until `n` echo replies have come back.
    pub fn wait_replies(&self, n: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.live.icmp_replies.load(Ordering::Relaxed) < n {
            if Instant::now() >= deadline {
                bail!(
                    "prober: {} of {n} echo replies within {timeout:?}",
                    self.live.icmp_replies.load(Ordering::Relaxed)
                );
            }
            if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
                bail!("prober thread ended early");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits (bounded) until echo replies flow again: one newer than `since` (realtime ns).
    pub fn wait_reply_after(&self, since: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.live.last_icmp_ns.load(Ordering::Relaxed) <= since {
            if Instant::now() >= deadline {
                bail!("prober: no echo reply within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Stops probing and returns the trace.
    pub fn finish(mut self) -> Result<Trace> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow!("prober thread panicked"))?
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn socket(domain: i32, ty: i32, proto: i32) -> Result<OwnedFd> {
    // SAFETY: plain socket call; the fd is owned below.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket");
    }
    // SAFETY: fresh valid fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    set_sockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one).context("SO_TIMESTAMPNS")?;
    Ok(fd)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Receives one datagram without blocking: (length, kernel rx time, source address).
fn recv_ts(fd: &OwnedFd, buf: &mut [u8], name: &mut [u8]) -> Option<(usize, Option<u64>, usize)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: zeroed msghdr is valid; pointers set below stay valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = name.len() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg is fully initialised.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    let mut ts = None;
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let t: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                ts = Some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((n as usize, ts, msg.msg_namelen as usize))
}

fn probe_loop(cfg: &ProberConfig, stop: &AtomicBool, live: &Live) -> Result<Trace> {
    let ifindex = vrrp_agent::fastpath::ifindex(&cfg.iface)?;
    let icmp = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP).context("raw ICMP")?;
    let eth_p_arp = (libc::ETH_P_ARP as u16).to_be();
    let arp = socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(eth_p_arp)).context("AF_PACKET")?;
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = eth_p_arp;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: valid address and length.
    if unsafe {
        libc::bind(
            arp.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error()).context("bind AF_PACKET");
    }

    let mut arp_req = Vec::with_capacity(42);
    arp_req.extend_from_slice(&[0xff; 6]);
    arp_req.extend_from_slice(&cfg.src_mac);
    arp_req.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp_req.extend_from_slice(&cfg.src_mac);
    arp_req.extend_from_slice(&cfg.src.octets());
    arp_req.extend_from_slice(&[0; 6]);
    arp_req.extend_from_slice(&cfg.vip.octets());

    // SAFETY: zeroed sockaddr_in is valid.
    let mut dst: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    dst.sin_family = libc::AF_INET as u16;
    dst.sin_addr.s_addr = u32::from_ne_bytes(cfg.vip.octets());
    let ident = (std::process::id() as u16) ^ 0x5a5a;

    let mut trace = Trace {
        start_ns: realtime_ns(),
        ..Default::default()
    };
    let started = Instant::now();
    let mut next = started;
    let mut seq: u16 = 0;
    let mut buf = [0u8; 2048];
    let mut name = [0u8; 128];
    while !stop.load(Ordering::Relaxed) && started.elapsed() < cfg.max_duration {
        let now = Instant::now();
        if now >= next {
            seq = seq.wrapping_add(1);
            let mut echo = vec![8u8, 0, 0, 0];
            echo.extend_from_slice(&ident.to_be_bytes());
            echo.extend_from_slice(&seq.to_be_bytes());
            echo.extend_from_slice(&realtime_ns().to_be_bytes());
            let c = checksum(&echo);
            echo[2..4].copy_from_slice(&c.to_be_bytes());
            // Errors (no route, neighbour failed) are simply lost probes.
            if send_to(&icmp, &echo, &dst).is_ok() {
                trace.icmp_sent += 1;
            }
            if send_to(&arp, &arp_req, &sll).is_ok() {
                trace.arp_sent += 1;
                trace.arp_tx.push(realtime_ns());
            }
            next += cfg.interval;
            if next < now {
                // Fell behind (descheduled): do not burst to catch up.
                next = now + cfg.interval;
            }
        }
        // Drain both sockets.
        while let Some((n, ts, _)) = recv_ts(&icmp, &mut buf, &mut name) {
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if n < ihl + 8 {
                continue;
            }
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let m = &buf[ihl..n];
            if m[0] == 0 && src == cfg.vip && u16::from_be_bytes([m[4], m[5]]) == ident {
                let t = ts.unwrap_or_else(realtime_ns);
                trace.icmp.push(t);
                live.icmp_replies.fetch_add(1, Ordering::Relaxed);
                live.last_icmp_ns.store(t, Ordering::Relaxed);
            }
        }
        while let Some((n, ts, _)) = recv_ts(&arp, &mut buf, &mut name) {
            if n < 42 || buf[12..14] != [0x08, 0x06] || buf[20..22] != [0, 2] {
                continue;
            }
            if buf[28..32] != cfg.vip.octets() {
                continue;
            }
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&buf[22..28]);
            trace.arp.push(ArpReply {
                rx_ns: ts.unwrap_or_else(realtime_ns),
                mac,
            });
            live.arp_replies.fetch_add(1, Ordering::Relaxed);
        }
        // Sleep until the next send or a reply.
        let wait = next.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        let mut fds = [
            libc::pollfd {
                fd: icmp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: arp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: valid fds array and timeout.
        unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
    }
    trace.end_ns = realtime_ns();
    trace.icmp.sort_unstable();
    trace.arp.sort_by_key(|a| a.rx_ns);
    Ok(trace)
}

/// Sends up to `tries` ARP requests for `vip` from the calling thread's namespace, `gap` apart,
/// and returns the sender MACs of the replies (empty if none answered). Bounded by `tries`.
pub fn arp_query(
    iface: &str,
    src: Ipv4Addr,
    src_mac: [u8; 6],
    vip: Ipv4Addr,
    tries: u32,
    gap: Duration,
) -> Result<Vec<[u8; 6]>> {
    let cfg = ProberConfig {
        iface: iface.to_owned(),
        src,
        src_mac,
        vip,
        interval: gap,
        max_duration: gap * tries + Duration::from_millis(100),
    };
    let stop = AtomicBool::new(false);
    let live = Live::default();
    let trace = probe_loop(&cfg, &stop, &live)?;
    let mut macs: Vec<[u8; 6]> = Vec::new();
    for a in trace.arp {
        if !macs.contains(&a.mac) {
            macs.push(a.mac);
        }
    }
    Ok(macs)
}

/// Sends up to `tries` Neighbor Solicitations for `vip` from the calling thread's namespace
/// (source `src`, SLLAO `src_mac`), `gap` apart, and returns the link-layer addresses the
/// Neighbor Advertisements for `vip` carry (their target link-layer address option, else their
/// Ethernet source), distinct, in order (empty if none answered). Bounded by `tries`.
pub fn ns_query(
    iface: &str,
    src: std::net::Ipv6Addr,
    src_mac: [u8; 6],
    vip: std::net::Ipv6Addr,
    tries: u32,
    gap: Duration,
) -> Result<Vec<[u8; 6]>> {
    use vrrp_agent::wire::{MacAddr, NdpFrame, NdpMessage};
    let sock = crate::packet_socket(iface, 0x86dd)?;
    let ns = NdpFrame::solicit(MacAddr(src_mac), src, vip).to_bytes();
    let mut macs: Vec<[u8; 6]> = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..tries {
        crate::send_frames(iface, &ns, 1, Duration::ZERO)?;
        let until = Instant::now() + gap;
        while Instant::now() < until {
            let Some(f) = crate::recv_frame(&sock, &mut buf) else {
                continue;
            };
            let Ok(f) = NdpFrame::parse(f) else {
                continue;
            };
            if let NdpMessage::NeighborAdvert {
                target,
                target_lladdr,
                ..
            } = f.msg
            {
                let mac = target_lladdr.unwrap_or(f.eth_src).0;
                if target == vip && f.dst_ip == src && !macs.contains(&mac) {
                    macs.push(mac);
                }
            }
        }
    }
    Ok(macs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_is_longest_silence_from_last_reply_before_event() {
        let t = [0, 10, 20, 30, 80, 90, 100];
        let g = gap(&t, 35, 100).unwrap();
        assert_eq!((g.from_ns, g.to_ns), (30, 80));
        assert_eq!(
            gap(&t, 95, 100).unwrap().to_ns - gap(&t, 95, 100).unwrap().from_ns,
            10
        );
        assert_eq!(gap(&t, 100, 100), None, "nothing after the event");
        assert_eq!(gap(&[50, 60], 10, 100), None, "nothing before the event");
    }

    #[test]
    fn checksum_of_echo() {
        // RFC 1071 example words.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }
}
