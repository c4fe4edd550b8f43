//! The XDP fast path, seen from user space: load the program, attach it to an interface, program
//! its maps, read its counters and its advert ring buffer.
//!
//! This is an I/O edge: it talks to the kernel and nothing in here knows VRRP's rules.
//!
//! # The fail-safe outlives the agent, without any filesystem
//!
//! [`FastPath::attach`] attaches both programs with **netlink**, not with bpf_links:
//!
//! - the XDP program through `IFLA_XDP` on the interface ([`crate::rtnl::xdp_set`]);
//! - the TC egress classifier ([`EGRESS_PROGRAM`]: frames the kernel sends from an owned VIP
//!   leave with the VMAC, ARP/ND from a VIP not owned with a fresh heartbeat is dropped) as a
//!   `bpf` filter on the interface's `clsact` qdisc (added if missing, left in place).
//!
//! Both belong to the network device, not to the process: when the agent dies — SIGKILL, OOM,
//! however it was started (systemd, `ip netns exec`, `nsenter --net`, a container with or
//! without the host's `/sys/fs/bpf`) — they stay attached with their maps, the routers still
//! marked owned and a heartbeat that goes stale. Past the fail-safe bound the XDP program drops
//! ARP/NS for the VIPs (so the kernel, which still has them configured, cannot answer them with
//! the real MAC) and stops accepting VMAC frames, and the egress classifier drops the kernel's
//! own ARP / NS / NA / RS from the VIPs. Nothing is pinned and no bpffs is needed.
//!
//! The next [`FastPath::attach`] on the interface takes over what a dead agent left, without a
//! window in which the kernel answers for a VIP itself:
//!
//! - XDP: the program attached is found from netlink (its id, then its name `vrrp_xdp`) and
//!   replaced atomically (`XDP_FLAGS_REPLACE` with `IFLA_XDP_EXPECTED_FD` = the old program). If
//!   it was attached in another mode it is detached first, and the new one attached (one INFO
//!   line). A program that is not ours, or one held by a bpf_link (which netlink cannot
//!   replace), is refused with one line that names it and says how to remove it.
//! - egress: the old filter is replaced in place (same priority and handle, the kernel swaps
//!   the program under RCU); further leftovers of ours are removed afterwards.
//!
//! A clean [`FastPath::detach`] removes both, each only if it is still ours (XDP:
//! `XDP_FLAGS_REPLACE` with our program as the expected one; egress: the filter still runs our
//! program), synchronously. Dropping a `FastPath` does the same, unless a router is still owned
//! (the agent is leaving on an error, its VIPs possibly configured): then both stay attached, as
//! after SIGKILL.
//!
//! Where `clsact` is missing (a kernel without `sch_clsact`), the egress classifier falls back
//! to a TCX link, which dies with the agent: [`FastPath::failsafe_gap`] says why, and
//! [`FastPath::attach_with`] with `require_failsafe` makes that an error instead.
//!
//! # One agent per interface
//!
//! [`FastPath::attach`] first takes a lock that needs no filesystem and dies with the process: a
//! listening abstract Unix socket `@vrrp-agent/if/<ifindex>` (abstract sockets are per network
//! namespace, like interface indexes). A second agent (or a second `FastPath` in the same
//! process) on an interface a live one runs gets `EADDRINUSE`, connects to the socket, reads the
//! holder's pid with `SO_PEERCRED` and refuses with one line, before touching the attachment. A
//! SIGKILLed agent's socket is gone with it, so its attachment is taken over as above.

//! # Layout
//!
//! - this file: [`FastPath`] (load, the public API, detach, `Drop`) and the load errors;
//! - `attach`: XDP attach / replace / detach through netlink, the mode choice, attach errors;
//! - `loader`: aya's loader, without the kernel's BTF (the object needs none);
//! - `lock`: the abstract-socket lock, one agent per interface;
//! - `maps`: the maps user space writes (VRIDS, ROUTERS, VIPs, IFACE, HEARTBEAT);
//! - `events`: the advert ring buffer and the counters;
//! - `egress`: the TC egress classifier (netlink filter, TCX fallback).

mod attach;
mod egress;
mod events;
mod loader;
mod lock;
mod maps;

use std::io;

use anyhow::{anyhow, bail, Result};
use aya::{
    programs::{ProgramError, SchedClassifier, Xdp, XdpMode},
    Ebpf, EbpfError,
};

pub use attach::{choose_mode, driver_name, Attachment};
pub use egress::EgressMode;
pub use events::{parse_event, Counters};
pub use maps::{leftover, Leftover};

use crate::rtnl;
use egress::EgressAttachment;
use lock::IfaceLock;

/// The XDP object built by `build.rs` from the `vrrp-ebpf` crate.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp"));

/// Name of the XDP program inside the object (and in the kernel).
pub const PROGRAM: &str = "vrrp_xdp";

/// Name of the TC egress classifier inside the object (also the name of its netlink filter).
pub const EGRESS_PROGRAM: &str = "vrrp_tc_egress";

/// How to attach the program (the configuration's `xdp_mode`); `XdpMode` here is aya's.
use vrrp_core::config::XdpMode as ModeChoice;

/// The loaded (and possibly attached) XDP program with its maps.
pub struct FastPath {
    ebpf: Ebpf,
    attached: Option<Attachment>,
    egress: Option<EgressAttachment>,
    /// Why the egress classifier does not outlive the agent, when it does not.
    failsafe_gap: Option<String>,
    /// Held from attach to detach (see the module docs).
    lock: Option<IfaceLock>,
    /// `ROUTERS` slots currently marked owned ([`FastPath::set_router`]).
    owned: std::collections::BTreeSet<u32>,
    /// `HEARTBEAT` mapped into memory, when the kernel allows it ([`FastPath::heartbeat`]).
    heartbeat_mem: Option<maps::MappedHeartbeat>,
}

impl FastPath {
    /// Loads the program and its maps into the kernel (not attached yet).
    pub fn load() -> Result<Self> {
        let mut fp = Self::load_maps()?;
        let (xdp, egress) = programs(&mut fp.ebpf)?;
        // The kernel verifies the two programs in parallel (a privileged load takes no global
        // verifier lock): the egress classifier on a second thread, XDP on this one. The
        // verification is most of a cold start's load time.
        let (x, e) = std::thread::scope(|sc| {
            let e = sc.spawn(|| egress.load());
            let x = xdp.load();
            (x, e.join())
        });
        x.map_err(explain_program_error)?;
        e.map_err(|_| anyhow!("loading the TC egress classifier: its thread panicked"))?
            .map_err(explain_egress_error)?;
        Ok(fp)
    }

    /// The object parsed and its maps created; no program loaded yet.
    fn load_maps() -> Result<Self> {
        if EBPF_OBJECT.is_empty() {
            bail!(
                "this vrrp-agent was built with AYA_BUILD_SKIP=1 and has no XDP program: \
                 rebuild with `cargo xtask build`"
            );
        }
        raise_memlock_limit();
        let ebpf = loader::loader(EBPF_OBJECT)
            .load(EBPF_OBJECT)
            .map_err(explain_load_error)?;
        let heartbeat_mem = maps::MappedHeartbeat::map(&ebpf);
        Ok(Self {
            heartbeat_mem,
            ebpf,
            attached: None,
            egress: None,
            failsafe_gap: None,
            lock: None,
            owned: Default::default(),
        })
    }

    /// A cold start's [`FastPath::load`] then [`FastPath::attach_with`], overlapped: once the
    /// maps exist, `fill` programs them (before any program runs); then, under the interface's
    /// lock, the egress classifier is verified and attached on a second thread while the kernel
    /// verifies XDP on this one, and XDP is attached last. As with `attach_with`, nothing of
    /// this fast path stays attached if it fails. Returns the XDP mode used and how long the
    /// steps took.
    pub fn load_and_attach(
        iface: &str,
        choice: ModeChoice,
        require_failsafe: bool,
        fill: impl FnOnce(&mut FastPath) -> Result<()>,
    ) -> Result<(Self, XdpMode, StartTimes)> {
        let t0 = crate::clock::monotonic_ns();
        let mut fp = Self::load_maps()?;
        let t1 = crate::clock::monotonic_ns();
        fill(&mut fp)?;
        let lock = IfaceLock::take(iface, rtnl::iface_facts(iface)?.index)?;
        // What is attached, read under the lock.
        let facts = rtnl::iface_facts(iface)?;
        let plan = fp.plan_xdp(&facts)?;
        let t2 = crate::clock::monotonic_ns();
        let (xdp, egress) = programs(&mut fp.ebpf)?;
        let index = facts.index;
        let (x, e) = std::thread::scope(|sc| {
            let e = sc.spawn(move || {
                egress.load().map_err(explain_egress_error)?;
                let t = crate::clock::monotonic_ns();
                let r = egress::attach_any(egress, iface, index)?;
                Ok::<_, anyhow::Error>((r, t))
            });
            let x = xdp.load();
            (x, e.join())
        });
        let t3 = crate::clock::monotonic_ns();
        let e = e.map_err(|_| anyhow!("loading the TC egress classifier: its thread panicked"))?;
        // Attached or not, the egress classifier is detached again below if anything fails.
        let ((link, gap), egress_verified) = e?;
        let mode = fp.egress_attached(iface, index, link, gap);
        let mut times = StartTimes {
            maps: t1 - t0,
            lock: t2 - t1,
            egress_verified: egress_verified.saturating_sub(t2),
            egress_attached: t3.saturating_sub(egress_verified),
            xdp_verified: 0,
            xdp_attached: 0,
        };
        let r = x.map_err(explain_program_error).and_then(|()| {
            times.xdp_verified = crate::clock::monotonic_ns() - t2;
            if mode != EgressMode::Netlink && require_failsafe {
                let gap = fp.failsafe_gap.clone().unwrap_or_default();
                bail!(
                    "{iface}: fail-safe incomplete: {gap}; refusing to start because \
                     require_failsafe is set"
                );
            }
            let t = crate::clock::monotonic_ns();
            let m = fp.attach_xdp(&facts, choice, plan)?;
            times.xdp_attached = crate::clock::monotonic_ns() - t;
            Ok(m)
        });
        match r {
            Ok(m) => {
                fp.lock = Some(lock);
                Ok((fp, m, times))
            }
            Err(err) => {
                let _ = fp.detach_egress();
                Err(err)
            }
        }
    }

    /// The XDP program (for attaching, or for `BPF_PROG_TEST_RUN` in tests).
    pub fn program(&mut self) -> Result<&mut Xdp> {
        program(&mut self.ebpf)
    }

    /// The TC egress classifier (for `BPF_PROG_TEST_RUN` in tests).
    pub fn egress_program(&mut self) -> Result<&mut SchedClassifier> {
        egress_program(&mut self.ebpf)
    }

    pub fn ebpf(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// [`FastPath::attach_with`] that accepts an egress classifier that dies with the agent.
    pub fn attach(&mut self, iface: &str, choice: ModeChoice) -> Result<XdpMode> {
        self.attach_with(iface, choice, false)
    }

    /// Takes the interface's lock, then attaches the egress classifier and XDP (in the mode
    /// `choice` asks for), both through netlink, taking over what a dead agent left (see the
    /// module docs); returns the XDP mode used. With `require_failsafe`, an egress classifier that
    /// would not outlive the agent is an error.
    pub fn attach_with(
        &mut self,
        iface: &str,
        choice: ModeChoice,
        require_failsafe: bool,
    ) -> Result<XdpMode> {
        if let Some(a) = &self.attached {
            bail!("this fast path is already attached to {}", a.iface);
        }
        let lock = IfaceLock::take(iface, rtnl::iface_facts(iface)?.index)?;
        // What is attached, read under the lock.
        let facts = rtnl::iface_facts(iface)?;
        let plan = self.plan_xdp(&facts)?;
        let egress = self.attach_egress(iface)?;
        if egress != EgressMode::Netlink && require_failsafe {
            let gap = self.failsafe_gap.clone().unwrap_or_default();
            let _ = self.detach_egress();
            bail!(
                "{iface}: fail-safe incomplete: {gap}; refusing to start because require_failsafe \
                 is set"
            );
        }
        match self.attach_xdp(&facts, choice, plan) {
            Ok(mode) => {
                self.lock = Some(lock);
                Ok(mode)
            }
            Err(e) => {
                let _ = self.detach_egress();
                Err(e)
            }
        }
    }

    /// Why the fail-safe does not hold on the attached interface (the egress classifier dies
    /// with the agent), or `None` when it holds.
    pub fn failsafe_gap(&self) -> Option<&str> {
        self.failsafe_gap.as_deref()
    }

    pub fn attachment(&self) -> Option<&Attachment> {
        self.attached.as_ref()
    }

    /// Detaches both programs, each only if it is still ours (synchronously: when this returns,
    /// the interface runs no program of this `FastPath`), and releases the interface's lock. Also
    /// done when the `FastPath` is dropped — but not when the process is killed: then both stay,
    /// see the module docs.
    pub fn detach(&mut self) -> Result<()> {
        // The egress classifier first; a failure there (its device gone) must not keep XDP
        // attached.
        let egress = self.detach_egress();
        let xdp = self.detach_xdp();
        self.lock = None;
        xdp.and(egress)
    }
}

impl FastPath {
    /// Whether a router is marked owned ([`FastPath::set_router`]): only then does the
    /// heartbeat mean anything to the fast path (a router not owned is never stale).
    pub fn owns_any(&self) -> bool {
        !self.owned.is_empty()
    }

    /// Hitless restart (SIGUSR2): lets go of the program and its maps but leaves both attached
    /// (netlink; a TCX egress fallback dies with the agent), with whatever the maps say — the
    /// routers owned, the last heartbeat. The next start reads them ([`leftover`]) and resumes.
    pub fn leave_attached(mut self) {
        self.attached = None;
        self.egress = None;
        self.owned.clear();
    }
}

/// Dropped after a clean release (no router owned), the fast path is detached. Dropped while a
/// router is still owned — the agent is leaving on an error, its VIPs possibly still configured
/// — it is left attached, as after SIGKILL: the fail-safe takes over once the heartbeat is
/// stale, and the next start takes it over. [`FastPath::detach`] always detaches.
impl Drop for FastPath {
    fn drop(&mut self) {
        if let (Some(a), false) = (&self.attached, self.owned.is_empty()) {
            log::warn!(
                "{}: stopping with {} virtual router(s) still owned: leaving the fast path \
                 attached, so its fail-safe takes over (the next start takes it over)",
                a.iface,
                self.owned.len()
            );
            return;
        }
        if let Err(e) = self.detach() {
            log::warn!("{e:#}");
        }
    }
}

/// What each step of [`FastPath::load_and_attach`] took, ns (for the start-up's debug log).
#[derive(Clone, Copy, Debug, Default)]
pub struct StartTimes {
    /// The object parsed (and the kernel's BTF), the maps created.
    pub maps: u64,
    /// The maps filled, the interface's lock taken, its XDP attachment read.
    pub lock: u64,
    /// From then: the egress classifier verified (second thread).
    pub egress_verified: u64,
    /// ... then attached (second thread), until both threads were done.
    pub egress_attached: u64,
    /// From the lock: XDP verified (this thread).
    pub xdp_verified: u64,
    /// XDP attached.
    pub xdp_attached: u64,
}

/// Both programs, to load them on two threads.
fn programs(ebpf: &mut Ebpf) -> Result<(&mut Xdp, &mut SchedClassifier)> {
    let (mut xdp, mut egress) = (None, None);
    for (name, p) in ebpf.programs_mut() {
        match name {
            PROGRAM => xdp = Some(p),
            EGRESS_PROGRAM => egress = Some(p),
            _ => {}
        }
    }
    let xdp: &mut Xdp = xdp
        .ok_or_else(|| anyhow!("the XDP object has no program {PROGRAM}"))?
        .try_into()?;
    let egress: &mut SchedClassifier = egress
        .ok_or_else(|| anyhow!("the eBPF object has no program {EGRESS_PROGRAM}"))?
        .try_into()?;
    Ok((xdp, egress))
}

/// [`explain_program_error`] for the egress classifier.
fn explain_egress_error(e: ProgramError) -> anyhow::Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } if io_error.raw_os_error() != Some(libc::EPERM) => anyhow!(
            "the kernel verifier rejected the TC egress classifier ({io_error}); this is a \
             bug in vrrp-agent. Verifier log:\n{verifier_log}"
        ),
        e => explain_program_error(e),
    }
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    Ok(ebpf
        .program_mut(PROGRAM)
        .ok_or_else(|| anyhow!("the XDP object has no program {PROGRAM}"))?
        .try_into()?)
}

fn egress_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    Ok(ebpf
        .program_mut(EGRESS_PROGRAM)
        .ok_or_else(|| anyhow!("the eBPF object has no program {EGRESS_PROGRAM}"))?
        .try_into()?)
}

/// The index of interface `iface` in the calling thread's network namespace (from netlink).
pub fn ifindex(iface: &str) -> Result<u32> {
    Ok(rtnl::iface_facts(iface)?.index)
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; raise it where we may.
fn raise_memlock_limit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            io::Error::last_os_error()
        );
    }
}

const PERMISSION_HINT: &str = "run vrrp-agent as root, or grant it CAP_BPF, CAP_NET_ADMIN and \
     CAP_NET_RAW (Kubernetes: securityContext.capabilities.add, or privileged: true)";

fn io_errno(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        cur = err.source();
    }
    None
}

fn explain_load_error(e: EbpfError) -> anyhow::Error {
    match io_errno(&e) {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            anyhow!("permission denied loading the XDP program: {PERMISSION_HINT} ({e})")
        }
        Some(libc::EINVAL) | Some(libc::ENOSYS) => anyhow!(
            "the kernel refused the program's maps ({e}): vrrp-agent needs Linux 5.8 or newer \
             (BPF ring buffers); this kernel is {}",
            kernel_release()
        ),
        _ => anyhow!(e).context("loading the XDP object"),
    }
}

/// One line for a program the kernel did not load: missing privileges, or its verifier
/// rejected it. (Attaching goes through netlink; its errors are `attach::explain_xdp_error`'s.)
fn explain_program_error(e: ProgramError) -> anyhow::Error {
    match &e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            // The verifier itself answers EACCES for rejected memory accesses, so only EPERM
            // means missing privileges here.
            if io_error.raw_os_error() == Some(libc::EPERM) {
                anyhow!("permission denied loading the XDP program: {PERMISSION_HINT}")
            } else {
                anyhow!(
                    "the kernel verifier rejected the XDP program ({io_error}); this is a bug in \
                     vrrp-agent or a kernel older than 5.8 ({}). Verifier log:\n{verifier_log}",
                    kernel_release()
                )
            }
        }
        _ => match io_errno(&e) {
            Some(libc::EPERM | libc::EACCES) => {
                anyhow!("permission denied loading the XDP program: {PERMISSION_HINT}")
            }
            _ => anyhow!(e).context("loading the XDP program"),
        },
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = ifindex("nosuchif0").unwrap_err().to_string();
        assert!(e.contains("no such interface 'nosuchif0'"), "{e}");
    }
}
