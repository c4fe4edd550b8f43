//! One agent per interface: a listening abstract Unix socket `@vrrp-agent/if/<ifindex>`, which
//! needs no filesystem and dies with the process (see the module docs of [`crate::fastpath`]).

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use anyhow::{bail, Context as _, Result};

/// The lock that makes one agent per interface (see the module docs): a listening abstract Unix
/// socket, closed with the process.
#[derive(Debug)]
pub(super) struct IfaceLock {
    /// Held, never read: closing it (with the process) releases the lock.
    _listener: OwnedFd,
}

/// `sockaddr_un` of the abstract name `name` and its length.
fn abstract_addr(name: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // sun_path[0] stays NUL: the abstract namespace.
    for (d, s) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    (addr, len as libc::socklen_t)
}

fn unix_stream(extra: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket call; the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | extra,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl IfaceLock {
    /// The lock's abstract socket name for interface `ifindex`.
    fn name(ifindex: u32) -> String {
        format!("vrrp-agent/if/{ifindex}")
    }

    pub(super) fn take(iface: &str, ifindex: u32) -> Result<IfaceLock> {
        let name = Self::name(ifindex);
        let (addr, len) = abstract_addr(&name);
        let sock = unix_stream(0).context("creating the interface lock socket")?;
        // SAFETY: valid address of `len` bytes.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                let holder = match holder_pid(&name) {
                    Some(pid) => format!("pid {pid}"),
                    None => "its pid is not visible from here".to_owned(),
                };
                bail!(
                    "{iface} is already run by vrrp-agent ({holder}); stop it first, or put both \
                     virtual routers in one configuration"
                );
            }
            return Err(e).with_context(|| format!("taking the lock of {iface} (@{name})"));
        }
        // SAFETY: a bound socket.
        if unsafe { libc::listen(sock.as_raw_fd(), 1) } != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("taking the lock of {iface} (@{name})"));
        }
        Ok(IfaceLock { _listener: sock })
    }
}

/// The pid of the process listening on abstract socket `name` (`SO_PEERCRED` of a connection to
/// it; `None` if it cannot be told, e.g. the holder is in another PID namespace).
fn holder_pid(name: &str) -> Option<u32> {
    let (addr, len) = abstract_addr(name);
    // Non-blocking: the holder never accepts, so a full backlog must not hang us.
    let sock = unix_stream(libc::SOCK_NONBLOCK).ok()?;
    // SAFETY: valid address of `len` bytes.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero is a valid ucred; valid out pointers.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut clen = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut clen,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid as u32)
}
