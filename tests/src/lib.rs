//! Test-lab helpers: network namespaces, veth links and processes that are always cleaned up.
//!
//! Every namespace is named `vrrpt-<tag>-<pid>-<n>` so that parallel tests never collide and a
//! later run can remove what a killed run left behind (namespaces whose pid is gone). Dropping a
//! [`Netns`] kills every process still inside it and deletes it, also when a test panics.
//! Nothing here touches the root namespace's interfaces: veth pairs are created directly inside
//! their namespaces.
use std::{
    fs,
    io::Write as _,
    os::fd::{AsRawFd, FromRawFd as _, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _, Result};

pub mod kernel;
pub mod lab;
pub mod prober;

pub const NS_PREFIX: &str = "vrrpt-";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Fails with a clear message unless we run as root (namespaces, XDP and raw sockets need it).
pub fn require_root() {
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests need root (network namespaces, XDP, raw sockets): run them with `cargo xtask test` as root"
    );
}

/// Polls `cond` (every 10 ms) until it returns `Some`, bounded by `timeout`; the error names
/// `what` was awaited. The way to wait for "until X" in a test, instead of a fixed sleep.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command to completion; error with its stderr if it fails.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> Result<Output> {
    run(Command::new("ip").args(args))
}

/// The environment variable of vrrp-agent's `--control-socket` (`run` and `status`).
pub const CONTROL_SOCKET_ENV: &str = "VRRP_AGENT_CONTROL_SOCKET";

/// A network namespace owned by this test; deleted (with its processes) on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Self> {
        reap_stale_namespaces();
        let name = format!(
            "{NS_PREFIX}{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        // No DAD delay on test links: IPv6 addresses are usable at once.
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
        Ok(ns)
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a)
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        run(self
            .cmd("sysctl")
            .args(["-q", "-w", &format!("{key}={value}")]))?;
        Ok(())
    }

    /// A command that runs inside this namespace (a vrrp-agent started or asked there uses
    /// this namespace's [`Netns::control_socket`]).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c.env(CONTROL_SOCKET_ENV, self.control_socket());
        c
    }

    /// The control socket of a vrrp-agent in this namespace: each namespace its own (the
    /// default path under /run is shared by every namespace of the host).
    pub fn control_socket(&self) -> PathBuf {
        std::env::temp_dir()
            .join("vrrp-agent-tests")
            .join(format!("{}.sock", self.name))
    }

    /// Path of the namespace's handle, for `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Moves the calling thread into this namespace.
    pub fn enter(&self) -> Result<()> {
        Self::enter_path(&self.path())
    }

    /// Moves the calling thread into the namespace at `path` (for threads that do not own the
    /// [`Netns`]).
    pub fn enter_path(path: &Path) -> Result<()> {
        let f = fs::File::open(path).with_context(|| format!("opening {path:?}"))?;
        // SAFETY: valid fd of a network namespace.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setns");
        }
        Ok(())
    }

    /// Runs `f` on a scoped thread that has entered this namespace (sockets it opens live here);
    /// the calling thread stays where it is.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                Self::enter_path(&path)?;
                f()
            })
            .join()
            .map_err(|_| anyhow!("thread in {} panicked", self.name))?
        })
    }

    /// Interface's MAC address, as text.
    pub fn mac(&self, iface: &str) -> Result<String> {
        let out = self.ip(&["-br", "link", "show", "dev", iface])?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .nth(2)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no MAC in {text:?}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_namespace_processes(&self.name);
        let _ = ip(&["netns", "del", &self.name]);
        let _ = fs::remove_file(self.control_socket());
    }
}

fn kill_namespace_processes(name: &str) {
    if let Ok(out) = ip(&["netns", "pids", name]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: plain signal send.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Deletes test namespaces left behind by runs that are no longer alive.
pub fn reap_stale_namespaces() {
    let Ok(out) = ip(&["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                kill_namespace_processes(name);
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
}

/// Creates a veth pair with one end in each namespace (never in the root namespace), brings
/// both up and gives them the addresses (CIDR notation), if any.
pub fn veth(
    a: &Netns,
    a_if: &str,
    a_addrs: &[&str],
    b: &Netns,
    b_if: &str,
    b_addrs: &[&str],
) -> Result<()> {
    ip(&[
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ])?;
    for (ns, ifname, addrs) in [(a, a_if, a_addrs), (b, b_if, b_addrs)] {
        for addr in addrs {
            ns.ip(&["addr", "add", addr, "dev", ifname])?;
        }
        ns.ip(&["link", "set", ifname, "up"])?;
    }
    Ok(())
}

/// A background process whose output goes to a file; killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
    what: String,
}

impl Proc {
    pub fn spawn(cmd: Command, what: &str) -> Result<Self> {
        Self::spawn_in(tempfile::tempdir()?, cmd, what)
    }

    /// Like [`Proc::spawn`], keeping `dir` (config files the process reads) alive with it.
    pub fn spawn_in(dir: tempfile::TempDir, mut cmd: Command, what: &str) -> Result<Self> {
        let log = dir.path().join("output.log");
        let f = fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("spawning {what}: {cmd:?}"))?;
        Ok(Self {
            child,
            log,
            _dir: dir,
            what: what.to_owned(),
        })
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until a line satisfying `pred` appears; returns it.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.wait_for_output(timeout, |out| {
            out.lines().find(|l| pred(l)).map(str::to_owned)
        })
    }

    /// Waits (bounded) until `f` finds what it wants in the whole output so far.
    pub fn wait_for_output<T>(
        &mut self,
        timeout: Duration,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(&self.output()) {
                return Ok(v);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) before the expected output:\n{}",
                    self.what,
                    self.output()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: expected output not seen within {timeout:?}:\n{}",
                    self.what,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal and waits (bounded) for exit; returns the exit code if any.
    pub fn stop(&mut self, sig: i32, timeout: Duration) -> Result<Option<i32>> {
        // SAFETY: plain signal send to our child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not exit within {timeout:?} of signal {sig}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts keepalived (VRRP only, foreground, logging to its output) in `ns` with `config`.
pub fn keepalived(ns: &Netns, config: &str) -> Result<Proc> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("keepalived.conf");
    fs::File::create(&conf)?.write_all(config.as_bytes())?;
    let mut cmd = ns.cmd("keepalived");
    cmd.args([
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--vrrp",
        "--no-syslog",
    ])
    .arg("--use-file")
    .arg(&conf)
    .arg("--pid")
    .arg(dir.path().join("ka.pid"))
    .arg("--vrrp_pid")
    .arg(dir.path().join("vrrp.pid"))
    .arg("--checkers_pid")
    .arg(dir.path().join("checkers.pid"));
    Proc::spawn_in(dir, cmd, "keepalived")
}

/// The `p`-th percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sends `frame` `count` times on `iface` (in the calling thread's namespace) through an
/// AF_PACKET socket, `gap` apart. Returns how many were sent.
pub fn send_frames(iface: &str, frame: &[u8], count: u32, gap: Duration) -> Result<u32> {
    let ifindex = vrrp_agent::fastpath::ifindex(iface)?;
    // SAFETY: plain socket call; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
    }
    // SAFETY: fd is a fresh, valid descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    let mut sent = 0;
    let mut next = Instant::now();
    for _ in 0..count {
        send_to(&sock, frame, &sll).context("sendto")?;
        sent += 1;
        next += gap;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(sent)
}

/// `sendto(fd, buf, 0, addr)`, `addr` a `sockaddr_*`.
pub(crate) fn send_to<A>(fd: &impl AsRawFd, buf: &[u8], addr: &A) -> std::io::Result<()> {
    // SAFETY: valid buffer and address for the duration of the call.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (addr as *const A).cast(),
            std::mem::size_of::<A>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `setsockopt(fd, level, name)` with `value` as the option.
pub fn set_sockopt<T>(fd: &impl AsRawFd, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    // SAFETY: valid option pointer and size for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// An AF_PACKET socket bound to `iface` (in the calling thread's namespace) receiving the frames
/// of EtherType `protocol` (`ETH_P_ALL`: every frame), with a 20 ms receive timeout.
pub fn packet_socket(iface: &str, protocol: u16) -> Result<OwnedFd> {
    let ifindex = vrrp_agent::fastpath::ifindex(iface)?;
    let proto = protocol.to_be();
    // SAFETY: plain socket call; the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
    }
    // SAFETY: fresh valid descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: valid address of the right size.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("bind AF_PACKET");
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 20_000,
    };
    let _ = set_sockopt(&sock, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv);
    Ok(sock)
}

/// One frame from `sock` into `buf` (blocking up to the socket's receive timeout); `None` on
/// timeout or error.
pub fn recv_frame<'a>(sock: &OwnedFd, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    // SAFETY: valid buffer; the address is not wanted.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    (n > 0).then(|| &buf[..n as usize])
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
