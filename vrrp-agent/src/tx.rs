//! Sending (I/O edge): whole Ethernet frames on an AF_PACKET socket bound to the interface, and
//! unicast adverts as whole IP packets on a raw IP socket.
//!
//! - AF_PACKET / SOCK_RAW, protocol 0 (it receives nothing; adverts come from the XDP ring):
//!   multicast adverts, gratuitous ARP and unsolicited NA leave exactly as the codecs built them,
//!   source MAC = the VMAC, so switches learn where the VMAC lives. The socket also joins the
//!   link-layer VRRP groups 01:00:5e:00:00:12 / 33:33:00:00:00:12 (PACKET_ADD_MEMBERSHIP,
//!   PACKET_MR_MULTICAST) so that a physical NIC's multicast filter passes adverts up to XDP.
//! - Unicast peers (keepalived `unicast_peer`): a raw IP socket with IPPROTO_RAW (header
//!   included, IPv4 and IPv6), bound to the interface. The kernel's IP stack routes the packet and
//!   its neighbour subsystem resolves the peer's (or the gateway's) MAC, queueing the packet while
//!   it resolves, so peers need not be on-link and no stale MAC can be used; doing it over
//!   AF_PACKET would mean re-implementing neighbour resolution and its failure modes. The cost is
//!   that these adverts carry the interface's MAC, as keepalived's unicast adverts do; the VMAC is
//!   still taught to switches by the gratuitous ARPs / NAs.
use std::{
    io,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{Context as _, Result};

use crate::wire::MacAddr;

/// `socket(2)` (close-on-exec, non-blocking) wrapped in an `OwnedFd` (also for
/// [`crate::early_rx`]).
pub(crate) fn socket(domain: i32, ty: i32, proto: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned by the OwnedFd from here on.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(2)` with a typed value (also for [`crate::early_rx`]).
pub(crate) fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points at a valid T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A send that failed only because the kernel had no room for the frame at that moment (a full
/// device queue, backlog or socket buffer): worth sending again shortly.
pub fn no_room_for_now(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOBUFS | libc::EAGAIN | libc::ENOMEM)
    )
}

/// The sockets of one interface.
pub struct Tx {
    iface: String,
    ifindex: u32,
    packet: OwnedFd,
    ip4: Option<OwnedFd>,
    ip6: Option<OwnedFd>,
}

impl Tx {
    /// Opens the AF_PACKET socket on `ifindex` and joins the VRRP link-layer groups.
    pub fn open(iface: &str, ifindex: u32) -> Result<Tx> {
        let packet = socket(libc::AF_PACKET, libc::SOCK_RAW, 0).with_context(|| {
            format!("opening an AF_PACKET socket for {iface} (needs CAP_NET_RAW)")
        })?;
        // SAFETY: zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = 0;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: valid sockaddr_ll and its size.
        let rc = unsafe {
            libc::bind(
                packet.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("binding the AF_PACKET socket to {iface}"));
        }
        let tx = Tx {
            iface: iface.to_owned(),
            ifindex,
            packet,
            ip4: None,
            ip6: None,
        };
        for group in [
            MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]),
            MacAddr([0x33, 0x33, 0x00, 0x00, 0x00, 0x12]),
        ] {
            tx.join(group)
                .with_context(|| format!("joining link-layer group {group} on {iface}"))?;
        }
        Ok(tx)
    }

    fn join(&self, group: MacAddr) -> io::Result<()> {
        // SAFETY: zero is a valid packet_mreq.
        let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mr.mr_ifindex = self.ifindex as i32;
        mr.mr_type = libc::PACKET_MR_MULTICAST as u16;
        mr.mr_alen = 6;
        mr.mr_address[..6].copy_from_slice(&group.0);
        setsockopt(
            &self.packet,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mr,
        )
    }

    /// Sends a whole Ethernet frame.
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6.min(frame.len())]);
        // SAFETY: valid buffer and address.
        let n = unsafe {
            libc::sendto(
                self.packet.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn ip_socket(&mut self, v6: bool) -> io::Result<&OwnedFd> {
        let slot = if v6 { &mut self.ip6 } else { &mut self.ip4 };
        if slot.is_none() {
            let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
            // IPPROTO_RAW: header included (IPv6 too, Linux >= 4.5), receives nothing.
            let fd = socket(domain, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
            let name = self.iface.as_bytes();
            // SAFETY: name points at `name.len()` valid bytes.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    name.as_ptr().cast(),
                    name.len() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            *slot = Some(fd);
        }
        Ok(slot.as_ref().expect("just set"))
    }

    /// Sends an IP packet (header included) to `dst`.
    pub fn send_ip(&mut self, dst: IpAddr, packet: &[u8]) -> io::Result<()> {
        let ifindex = self.ifindex;
        let fd = self.ip_socket(dst.is_ipv6())?.as_raw_fd();
        let n = match dst {
            IpAddr::V4(a) => {
                // SAFETY: zero is a valid sockaddr_in.
                let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sa.sin_family = libc::AF_INET as u16;
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
                // SAFETY: valid buffer and address.
                unsafe {
                    libc::sendto(
                        fd,
                        packet.as_ptr().cast(),
                        packet.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                }
            }
            IpAddr::V6(a) => {
                // SAFETY: zero is a valid sockaddr_in6.
                let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as u16;
                sa.sin6_addr.s6_addr = a.octets();
                sa.sin6_scope_id = ifindex;
                // SAFETY: valid buffer and address.
                unsafe {
                    libc::sendto(
                        fd,
                        packet.as_ptr().cast(),
                        packet.len(),
                        0,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    )
                }
            }
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
