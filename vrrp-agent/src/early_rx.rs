//! Cold start: hearing adverts while the fast path loads (I/O edge).
//!
//! Loading and verifying the XDP and TC programs and attaching them takes tens of milliseconds,
//! about as long as a Backup's Master_Down_Interval at 10 ms adverts. Rather than start the
//! Master_Down_Timer only once the fast path is attached, the agent listens from the first
//! moment on an AF_PACKET socket per interface ([`EarlyRx::open`]): a classic BPF filter keeps
//! IPv4 and IPv6 frames carrying protocol 112, the kernel stamps each (`SO_TIMESTAMPNS`), and
//! the socket joins the VRRP link-layer groups so a NIC's multicast filter passes them. Once the
//! fast path is attached (its ring buffer sees every advert from then on), the supervisor starts
//! the instances as of the time the sockets listened ([`vrrp_core::Event::StartupListening`])
//! and hands in every frame the sockets queued ([`EarlyRx::drain`]), oldest first: an advert of
//! a higher-priority master heard during the load keeps the instance Backup exactly as if the
//! agent had run all along.
//!
//! Fail-safe: if a socket could not be opened, the kernel dropped a frame on it (a full
//! receive buffer: counted by `PACKET_STATISTICS`), or a frame has no kernel receive time (the
//! kernel had not turned its receive stamps on yet and stamped it when read, after the attach:
//! it would look heard too late and every Master_Down_Timer would run out from the start of
//! listening), the start falls back to starting the
//! Master_Down_Timer when the fast path is attached, as without this. What a socket heard after
//! its interface's fast path was attached is left out (the ring has it); a frame seen by both
//! around the attach reaches the core twice, which only restarts the Backup's timer twice from
//! the same time.
use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, OwnedFd},
};

use anyhow::{bail, Context as _, Result};

use crate::tx::{setsockopt, socket};
use vrrp_core::{fsm, wire::MacAddr, Received};

/// Receive buffer asked for (`SO_RCVBUFFORCE`, else `SO_RCVBUF` up to the system's maximum).
const RCVBUF: i32 = 4 << 20;

/// The largest frame kept (an advert is far smaller; longer frames are truncated).
const FRAME_MAX: usize = 2048;

/// One interface's listening socket.
pub struct EarlyRx {
    /// `None` only once dropped (see the `Drop` impl).
    fd: Option<OwnedFd>,
    /// When the socket started listening (CLOCK_MONOTONIC).
    pub since: fsm::Instant,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC when it started (to notice a step of the wall clock).
    offset: i128,
}

/// Closing a packet socket waits for an RCU grace period (the kernel's `packet_release` calls
/// `synchronize_net`): 10 to 15 ms measured, and a cold start drains its sockets once the fast
/// path is attached, when the Master_Down_Timer has often expired already, so that wait would
/// delay its first advert. A short-lived thread closes the socket instead (inline if no thread
/// can be started).
impl Drop for EarlyRx {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            let _ = std::thread::Builder::new()
                .name("early-rx-close".into())
                .spawn(move || drop(fd));
        }
    }
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, ns (the receive stamps are on the first, the agent runs on
/// the second).
fn clock_offset() -> i128 {
    realtime_ns() as i128 - crate::clock::monotonic_ns() as i128
}

/// How far the wall clock may move against CLOCK_MONOTONIC while listening for `listened` ns
/// before the stamps are no longer trusted: 1 ms + 1 % of the time listened. Between the two
/// readings the move is taken as steady ([`to_monotonic`]): a wall clock kept in step by
/// frequent small corrections (some virtual machines drift by 0.5 %) is placed exactly; a
/// single step of up to that much misplaces the frames on one side of it by at most the step;
/// a larger step cannot be placed.
fn clock_step_max(listened: u64) -> i128 {
    1_000_000 + i128::from(listened / 100)
}

/// A CLOCK_REALTIME receive stamp `ts` on CLOCK_MONOTONIC, with the wall clock's offset
/// (CLOCK_REALTIME − CLOCK_MONOTONIC) `o1` at monotonic time `t1` and `o2` at `t2`, moving
/// steadily in between: solves `m = ts − o(m)` for `o(m) = o1 + (o2 − o1)(m − t1)/(t2 − t1)`.
fn to_monotonic(ts: u64, (t1, o1): (u64, i128), (t2, o2): (u64, i128)) -> u64 {
    let (ts, t1, t2) = (i128::from(ts), i128::from(t1), i128::from(t2));
    let (span, d) = (t2 - t1, o2 - o1);
    let m = if span <= 0 || span + d <= 0 {
        ts - o2
    } else {
        ((ts - o1) * span + d * t1) / (span + d)
    };
    m.max(0) as u64
}

/// The classic BPF filter: IPv4 with protocol 112 or IPv6 with next header 112, untagged or
/// behind one 802.1Q / 802.1ad tag (as the XDP program parses them), else nothing. (A tag the
/// NIC took off is not in the frame: the filter sees such a frame as untagged.)
fn filter() -> [libc::sock_filter; 18] {
    let s = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    use libc::{BPF_ABS, BPF_B, BPF_H, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET};
    // Jump offsets count from the next instruction.
    [
        s(BPF_LD | BPF_H | BPF_ABS, 0, 0, 12),       // 0: ethertype
        s(BPF_JMP | BPF_JEQ | BPF_K, 10, 0, 0x0800), // 1: IPv4 → 12
        s(BPF_JMP | BPF_JEQ | BPF_K, 11, 0, 0x86dd), // 2: IPv6 → 14
        s(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 0x8100),  // 3: 802.1Q → 5
        s(BPF_JMP | BPF_JEQ | BPF_K, 0, 12, 0x88a8), // 4: 802.1ad → 5, else → 17
        s(BPF_LD | BPF_H | BPF_ABS, 0, 0, 16),       // 5: ethertype after the tag
        s(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 0x0800),  // 6: IPv4 → 8
        s(BPF_JMP | BPF_JEQ | BPF_K, 2, 9, 0x86dd),  // 7: IPv6 → 10, else → 17
        s(BPF_LD | BPF_B | BPF_ABS, 0, 0, 18 + 9),   // 8: IPv4 protocol (tagged)
        s(BPF_JMP | BPF_JEQ | BPF_K, 6, 7, 112),     // 9: 112 → 16, else → 17
        s(BPF_LD | BPF_B | BPF_ABS, 0, 0, 18 + 6),   // 10: IPv6 next header (tagged)
        s(BPF_JMP | BPF_JEQ | BPF_K, 4, 5, 112),     // 11: 112 → 16, else → 17
        s(BPF_LD | BPF_B | BPF_ABS, 0, 0, 14 + 9),   // 12: IPv4 protocol
        s(BPF_JMP | BPF_JEQ | BPF_K, 2, 3, 112),     // 13: 112 → 16, else → 17
        s(BPF_LD | BPF_B | BPF_ABS, 0, 0, 14 + 6),   // 14: IPv6 next header
        s(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 112),     // 15: 112 → 16, else → 17
        s(BPF_RET | BPF_K, 0, 0, FRAME_MAX as u32),  // 16: keep
        s(BPF_RET | BPF_K, 0, 0, 0),                 // 17: drop
    ]
}

impl EarlyRx {
    /// Listens on `ifindex` from now: adverts only (the filter is in place before the socket is
    /// bound, so nothing else is ever queued).
    pub fn open(ifindex: u32) -> Result<EarlyRx> {
        let fd =
            socket(libc::AF_PACKET, libc::SOCK_RAW, 0).context("opening an AF_PACKET socket")?;
        let mut insns = filter();
        let prog = libc::sock_fprog {
            len: insns.len() as u16,
            filter: insns.as_mut_ptr(),
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .context("attaching the advert filter")?;
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF)
                .context("setting the receive buffer")?;
        }
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)
            .context("asking for receive timestamps")?;
        // SAFETY: zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: valid sockaddr_ll and its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("binding the AF_PACKET socket");
        }
        for group in [
            [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12],
            [0x33, 0x33, 0x00, 0x00, 0x00, 0x12],
        ] {
            // SAFETY: zero is a valid packet_mreq.
            let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mr.mr_ifindex = ifindex as i32;
            mr.mr_type = libc::PACKET_MR_MULTICAST as u16;
            mr.mr_alen = 6;
            mr.mr_address[..6].copy_from_slice(&group);
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr)
                .context("joining the VRRP link-layer groups")?;
        }
        // Only now: until the groups are joined, a NIC's multicast filter may drop adverts, and
        // `since` claims that every advert from then on is queued.
        let since = fsm::Instant::from_nanos(crate::clock::monotonic_ns());
        Ok(EarlyRx {
            fd: Some(fd),
            since,
            offset: clock_offset(),
        })
    }

    /// Every frame queued so far, decoded for the core, oldest first (receive times on
    /// CLOCK_MONOTONIC). An error if the kernel dropped any (the view is incomplete).
    pub fn drain(self) -> Result<Vec<Received>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; FRAME_MAX];
        // CLOCK_REALTIME (the stamps) → CLOCK_MONOTONIC, read once; a wall clock stepped while
        // listening (settimeofday, an NTP step) leaves stamps on either side of the step.
        let offset = clock_offset();
        let drained = crate::clock::monotonic_ns();
        let listened = drained.saturating_sub(self.since.as_nanos());
        if (offset - self.offset).abs() > clock_step_max(listened) {
            bail!(
                "the wall clock moved {:+.3} ms while listening (receive times cannot be placed)",
                (offset - self.offset) as f64 / 1e6
            );
        }
        // A frame without a kernel receive time is stamped when it is read (the kernel turns
        // its receive stamps on lazily, from a work queue, once a socket asks: on a busy host
        // that can take longer than the load). Such a stamp is after this moment and would
        // make the frame look heard after the attach, as if nothing had been heard.
        let reading = crate::clock::monotonic_ns();
        // Bounded: the socket was open for the load, its buffer is finite; the cap is a guard.
        for _ in 0..100_000 {
            let mut cmsg = [0u64; 16];
            // SAFETY: zero is a valid sockaddr_ll.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: zero is a valid msghdr; the pointers below are valid for the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cmsg);
            // SAFETY: msg points to valid buffers for the call.
            let n = unsafe { libc::recvmsg(self.raw_fd(), &mut msg, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    break;
                }
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("reading the AF_PACKET socket");
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue; // our own
            }
            let Some(ts) = timestamp(&msg) else {
                bail!("a frame without a receive timestamp");
            };
            let mono = to_monotonic(ts, (self.since.as_nanos(), self.offset), (drained, offset));
            if mono >= reading {
                bail!("a frame without a kernel receive time (stamped when read)");
            }
            if let Some(rx) = decode(&buf[..n as usize], fsm::Instant::from_nanos(mono)) {
                out.push(rx);
            }
        }
        let drops = self.drops()?;
        if drops > 0 {
            bail!("the kernel dropped {drops} frame(s) on it");
        }
        out.sort_by_key(|r| r.rx_time);
        Ok(out)
    }

    fn raw_fd(&self) -> libc::c_int {
        self.fd.as_ref().map_or(-1, |fd| fd.as_raw_fd())
    }

    /// Frames the kernel dropped on this socket (`PACKET_STATISTICS`).
    fn drops(&self) -> Result<u32> {
        // SAFETY: zero is a valid tpacket_stats.
        let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: st and len are valid for the call.
        let rc = unsafe {
            libc::getsockopt(
                self.raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("reading PACKET_STATISTICS");
        }
        Ok(st.tp_drops)
    }
}

fn realtime_ns() -> u64 {
    // SAFETY: zero is a valid timespec; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The `SCM_TIMESTAMPNS` of a received message (CLOCK_REALTIME, ns).
fn timestamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: msg was filled by recvmsg; the CMSG_* macros walk its control buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// A frame (Ethernet header on) as the core's view of an advert, as the XDP program reports it:
/// addresses, TTL / hop limit, the VLAN id of one 802.1Q / 802.1ad tag in the frame, the VRRP
/// message up to the IP header's length. `None` for a frame that is not one (too short, not
/// IPv4/IPv6 with 112).
pub fn decode(frame: &[u8], rx_time: fsm::Instant) -> Option<Received> {
    let src_mac = MacAddr(frame.get(6..12)?.try_into().ok()?);
    let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let mut ethertype = be16(12)?;
    let mut l3 = 14;
    let mut vlan = None;
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        vlan = Some(be16(14)? & 0x0fff);
        ethertype = be16(16)?;
        l3 = 18;
    }
    let ip = frame.get(l3..)?;
    let (src_ip, dst_ip, hop_limit, payload) = match ethertype {
        0x0800 => {
            if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 112 {
                return None;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ihl < 20 || total < ihl {
                return None;
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let end = total.min(ip.len());
            (
                IpAddr::V4(src),
                IpAddr::V4(dst),
                ip[8],
                ip.get(ihl..end)?.to_vec(),
            )
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 || ip[6] != 112 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?);
            let end = (40 + plen).min(ip.len());
            (
                IpAddr::V6(src),
                IpAddr::V6(dst),
                ip[7],
                ip[40..end].to_vec(),
            )
        }
        _ => return None,
    };
    let max = vrrp_common::VRRP_PAYLOAD_MAX;
    Some(Received {
        rx_time,
        src_mac,
        src_ip,
        dst_ip,
        hop_limit,
        vlan,
        payload: payload[..payload.len().min(max)].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_frame(proto: u8) -> Vec<u8> {
        let mut f = vec![
            0x01, 0x00, 0x5e, 0, 0, 0x12, 0, 0, 0x5e, 0, 1, 51, 0x08, 0x00,
        ];
        let payload = [0x31u8, 51, 200, 1, 0, 1, 0, 0, 10, 0, 0, 10];
        let total = 20 + payload.len();
        f.extend_from_slice(&[0x45, 0, 0, total as u8, 0, 0, 0, 0, 255, proto, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 224, 0, 0, 18]);
        f.extend_from_slice(&payload);
        f.extend_from_slice(&[0; 6]); // Ethernet padding, not part of the message
        f
    }

    #[test]
    fn receive_stamps_are_placed_on_the_monotonic_clock() {
        let ms = |x: u64| x * 1_000_000;
        // A steady offset: a plain subtraction.
        let o = 1_700_000_000_000_000_000i128;
        let at = |m: u64| (m as i128 + o) as u64;
        assert_eq!(
            to_monotonic(at(ms(150)), (ms(100), o), (ms(200), o)),
            ms(150)
        );
        // The wall clock gains 0.5 % on CLOCK_MONOTONIC (3 ms over 600 ms, refused by a fixed
        // 1 ms + 1000 ppm): each stamp is placed where it was taken, not 0-3 ms off.
        let (t1, t2) = (ms(1000), ms(1600));
        let off = |m: u64| o + (m - t1) as i128 / 200;
        for m in [t1, ms(1001), ms(1300), ms(1599), t2] {
            let ts = (m as i128 + off(m)) as u64;
            let got = to_monotonic(ts, (t1, off(t1)), (t2, off(t2)));
            assert!(got.abs_diff(m) <= 1, "{m}: {got}");
        }
        assert!((off(t2) - off(t1)).abs() <= clock_step_max(t2 - t1));
        // A step of the wall clock larger than 1 ms + 1 % is not placed at all.
        assert!(i128::from(ms(10)) > clock_step_max(ms(600)));
        // No time between the readings: the later offset.
        assert_eq!(to_monotonic(at(ms(5)), (ms(5), o - 7), (ms(5), o)), ms(5));
    }

    #[test]
    fn decodes_an_ipv4_advert_as_the_fast_path_reports_it() {
        let at = fsm::Instant::from_nanos(42);
        let r = decode(&v4_frame(112), at).expect("an advert");
        assert_eq!(r.rx_time, at);
        assert_eq!(r.src_mac, MacAddr([0, 0, 0x5e, 0, 1, 51]));
        assert_eq!(r.src_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.dst_ip, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!(r.hop_limit, 255);
        assert_eq!(r.payload.len(), 12, "cut at the IP total length");
        assert_eq!(r.payload[1], 51);
    }

    #[test]
    fn refuses_what_is_not_an_advert() {
        let at = fsm::Instant::from_nanos(0);
        assert!(decode(&v4_frame(6), at).is_none());
        assert!(decode(&v4_frame(112)[..20], at).is_none());
        assert!(decode(&[], at).is_none());
        let mut arp = v4_frame(112);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(decode(&arp, at).is_none());
    }

    /// The filter run on a frame (a small interpreter of the instructions it uses).
    fn run_filter(frame: &[u8]) -> u32 {
        let prog = filter();
        let (mut pc, mut a) = (0usize, 0u32);
        for _ in 0..prog.len() {
            let i = prog[pc];
            let k = i.k as usize;
            match u32::from(i.code) {
                c if c == libc::BPF_LD | libc::BPF_H | libc::BPF_ABS => {
                    let Some(b) = frame.get(k..k + 2) else {
                        return 0;
                    };
                    a = u32::from(u16::from_be_bytes([b[0], b[1]]));
                }
                c if c == libc::BPF_LD | libc::BPF_B | libc::BPF_ABS => {
                    let Some(b) = frame.get(k) else { return 0 };
                    a = u32::from(*b);
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("instruction {c:#x} not interpreted"),
            }
            pc += 1;
        }
        panic!("the filter ran off its end");
    }

    fn tagged(mut f: Vec<u8>, tpid: u16, vid: u16) -> Vec<u8> {
        let mut tag = tpid.to_be_bytes().to_vec();
        tag.extend_from_slice(&vid.to_be_bytes());
        f.splice(12..12, tag);
        f
    }

    #[test]
    fn the_filter_keeps_adverts_untagged_or_behind_one_tag_and_nothing_else() {
        let keep = FRAME_MAX as u32;
        assert_eq!(run_filter(&v4_frame(112)), keep);
        assert_eq!(run_filter(&v4_frame(6)), 0);
        assert_eq!(run_filter(&tagged(v4_frame(112), 0x8100, 7)), keep);
        assert_eq!(run_filter(&tagged(v4_frame(112), 0x88a8, 7)), keep);
        assert_eq!(run_filter(&tagged(v4_frame(17), 0x8100, 7)), 0);
        let mut arp = v4_frame(112);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run_filter(&arp), 0);
        assert_eq!(run_filter(&tagged(arp, 0x8100, 7)), 0);
        assert_eq!(run_filter(&v6_frame(112)), keep);
        assert_eq!(run_filter(&v6_frame(58)), 0);
        assert_eq!(run_filter(&tagged(v6_frame(112), 0x8100, 9)), keep);
        assert_eq!(run_filter(&tagged(v6_frame(58), 0x88a8, 9)), 0);
        assert_eq!(run_filter(&[]), 0);
    }

    #[test]
    fn decodes_a_tagged_advert_with_its_vlan_id() {
        let at = fsm::Instant::from_nanos(3);
        let r = decode(&tagged(v4_frame(112), 0x8100, 0x2007), at).expect("an advert");
        assert_eq!(r.vlan, Some(7));
        assert_eq!(r.src_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.payload.len(), 12);
        assert_eq!(decode(&v4_frame(112), at).unwrap().vlan, None);
        let r = decode(&tagged(v6_frame(112), 0x88a8, 9), at).expect("an advert");
        assert_eq!((r.vlan, r.hop_limit), (Some(9), 255));
        assert!(decode(&tagged(v4_frame(112), 0x8100, 7)[..17], at).is_none());
    }

    fn v6_frame(next: u8) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 0x12, 0, 0, 0x5e, 0, 2, 51, 0x86, 0xdd];
        let payload = [0x31u8, 51, 200, 1, 0, 1, 0, 0];
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, payload.len() as u8, next, 255]);
        let mut src = [0u8; 16];
        src[0] = 0xfe;
        src[1] = 0x80;
        src[15] = 1;
        let mut dst = [0u8; 16];
        dst[0] = 0xff;
        dst[1] = 0x02;
        dst[15] = 0x12;
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&payload);
        f
    }

    #[test]
    fn decodes_an_ipv6_advert() {
        let payload = [0x31u8, 51, 200, 1, 0, 1, 0, 0];
        let r = decode(&v6_frame(112), fsm::Instant::from_nanos(1)).expect("an advert");
        assert_eq!(r.dst_ip, "ff02::12".parse::<IpAddr>().unwrap());
        assert_eq!(r.payload, payload);
        assert_eq!(r.hop_limit, 255);
    }
}
