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
use std::{
    io,
    net::IpAddr,
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd},
};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        tc::{self, NlOptions, SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
        LinkOrder, ProgramError, ProgramFd, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf, EbpfError, EbpfLoader,
};
use vrrp_common::{
    vrid_slot, AdvertEvent, Counter, IfaceConfig, RouterState, VipEntry, ROUTER_ACCEPT,
    ROUTER_OWNED,
};

use crate::rtnl::{
    self, BpfFilter, IfaceFacts, NlError, TC_PARENT_EGRESS, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE,
    XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST,
};

/// The XDP object built by `build.rs` from the `vrrp-ebpf` crate.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp"));

/// Name of the XDP program inside the object (and in the kernel).
pub const PROGRAM: &str = "vrrp_xdp";

/// Name of the TC egress classifier inside the object (also the name of its netlink filter).
pub const EGRESS_PROGRAM: &str = "vrrp_tc_egress";

/// How the egress classifier is attached (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressMode {
    /// A netlink `bpf` filter on the `clsact` qdisc: outlives the agent (the fail-safe).
    Netlink,
    /// A TCX bpf_link, detached when the agent's fd closes: the fallback where `clsact` is
    /// missing.
    Tcx,
}

/// Where the egress classifier is attached.
#[derive(Debug)]
struct EgressAttachment {
    iface: String,
    ifindex: u32,
    link: EgressLink,
}

#[derive(Debug)]
enum EgressLink {
    Tcx(SchedClassifierLinkId),
    /// Our filter, as the kernel listed it.
    Filter(BpfFilter),
}

impl EgressAttachment {
    fn mode(&self) -> EgressMode {
        match self.link {
            EgressLink::Tcx(_) => EgressMode::Tcx,
            EgressLink::Filter(_) => EgressMode::Netlink,
        }
    }
}

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
}

/// Where the program is attached.
#[derive(Debug)]
pub struct Attachment {
    pub iface: String,
    pub ifindex: u32,
    pub mode: XdpMode,
}

/// The `XDP_FLAGS_*` mode flag of `mode`.
fn mode_flag(mode: XdpMode) -> u32 {
    match mode {
        XdpMode::Skb => XDP_FLAGS_SKB_MODE,
        XdpMode::Hardware => XDP_FLAGS_HW_MODE,
        _ => XDP_FLAGS_DRV_MODE,
    }
}

fn mode_of_flag(flag: u32) -> XdpMode {
    match flag {
        XDP_FLAGS_SKB_MODE => XdpMode::Skb,
        XDP_FLAGS_HW_MODE => XdpMode::Hardware,
        _ => XdpMode::Driver,
    }
}

/// How `ip link` names an XDP mode (`ip link set dev IF <name> off` detaches it).
fn ip_link_mode(flag: u32) -> &'static str {
    match flag {
        XDP_FLAGS_SKB_MODE => "xdpgeneric",
        XDP_FLAGS_HW_MODE => "xdpoffload",
        _ => "xdpdrv",
    }
}

fn mode_name(flag: u32) -> &'static str {
    match flag {
        XDP_FLAGS_SKB_MODE => "generic",
        XDP_FLAGS_HW_MODE => "offload",
        _ => "native",
    }
}

/// The lock that makes one agent per interface (see the module docs): a listening abstract Unix
/// socket, closed with the process.
#[derive(Debug)]
struct IfaceLock(#[allow(dead_code)] OwnedFd);

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

    fn take(iface: &str, ifindex: u32) -> Result<IfaceLock> {
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
        Ok(IfaceLock(sock))
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

/// The name of loaded program `id`, as the kernel knows it.
fn prog_name(id: u32) -> Option<String> {
    aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == id)
        .map(|p| p.name_as_str().unwrap_or("?").to_owned())
}

/// An fd of loaded program `id`.
fn prog_fd(id: u32) -> Result<ProgramFd> {
    let info = aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == id)
        .ok_or_else(|| anyhow!("XDP program {id} is gone"))?;
    Ok(info.fd()?)
}

/// The id of the XDP bpf_link that holds program `id`, if one does.
fn xdp_link_of(id: u32) -> Option<u32> {
    aya::programs::loaded_links().flatten().find_map(|l| {
        (l.program_id() == id && matches!(l.link_type(), Ok(aya::programs::links::LinkType::Xdp)))
            .then(|| l.id())
    })
}

/// What attach does with the interface's current XDP programs.
enum XdpPlan {
    /// Nothing attached.
    Fresh,
    /// Ours (left by a dead agent) in the wanted mode: replace it atomically.
    Replace { flag: u32, id: u32, old: ProgramFd },
    /// Ours, in other modes: detach them, then attach.
    Switch(Vec<(u32, u32, ProgramFd)>),
}

/// Counter totals summed over all CPUs, in [`Counter::ALL`] order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub Vec<u64>);

impl Counters {
    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c as usize).copied().unwrap_or(0)
    }

    /// Sum of the outcome counters; equals `Frames` when the program is consistent.
    pub fn outcomes(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_outcome())
            .map(|c| self.get(*c))
            .sum()
    }

    /// Sum of the egress outcome counters; equals `EgressFrames` when the classifier is
    /// consistent.
    pub fn egress_outcomes(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_egress_outcome())
            .map(|c| self.get(*c))
            .sum()
    }

    /// `name=value` pairs of the non-zero counters (all of them if every one is zero).
    pub fn summary(&self) -> String {
        let nz: Vec<String> = Counter::ALL
            .iter()
            .filter(|c| self.get(**c) != 0)
            .map(|c| format!("{}={}", c.name(), self.get(*c)))
            .collect();
        if nz.is_empty() {
            "frames=0".into()
        } else {
            nz.join(" ")
        }
    }
}

impl FastPath {
    /// Loads the program and its maps into the kernel (not attached yet).
    pub fn load() -> Result<Self> {
        if EBPF_OBJECT.is_empty() {
            bail!(
                "this vrrp-agent was built with AYA_BUILD_SKIP=1 and has no XDP program: \
                 rebuild with `cargo xtask build`"
            );
        }
        raise_memlock_limit();
        let mut ebpf = EbpfLoader::new()
            .load(EBPF_OBJECT)
            .map_err(explain_load_error)?;
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load()
            .map_err(|e| explain_program_error(e, "loading"))?;
        egress_program(&mut ebpf)?.load().map_err(|e| match e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } if io_error.raw_os_error() != Some(libc::EPERM) => anyhow!(
                "the kernel verifier rejected the TC egress classifier ({io_error}); this is a \
                 bug in vrrp-agent. Verifier log:\n{verifier_log}"
            ),
            e => explain_program_error(e, "loading"),
        })?;
        Ok(Self {
            ebpf,
            attached: None,
            egress: None,
            failsafe_gap: None,
            lock: None,
            owned: Default::default(),
        })
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

    /// Looks at the XDP programs on the interface; refuses one that is not ours, or ours held
    /// by a bpf_link.
    fn plan_xdp(&self, facts: &IfaceFacts) -> Result<XdpPlan> {
        let iface = &facts.name;
        let attached = facts.xdp.attached();
        let mut ours = Vec::new();
        for (flag, id) in attached {
            let name = prog_name(id).unwrap_or_else(|| "?".to_owned());
            if name != PROGRAM {
                bail!(
                    "{iface} already has an XDP program that is not vrrp-agent's: '{name}' (id \
                     {id}, {} mode); remove it (`ip link set dev {iface} {} off`) or use another \
                     interface",
                    mode_name(flag),
                    ip_link_mode(flag)
                );
            }
            if let Some(link) = xdp_link_of(id) {
                bail!(
                    "{iface}: XDP program '{name}' (id {id}) is held by bpf_link {link} (left by \
                     an older vrrp-agent, whose pin is under /sys/fs/bpf/vrrp-agent, or by a \
                     running one), which netlink cannot replace: stop that agent or remove its \
                     pin (`bpftool link show id {link}`), then start again"
                );
            }
            ours.push((flag, id, prog_fd(id)?));
        }
        Ok(match ours.len() {
            0 => XdpPlan::Fresh,
            _ => XdpPlan::Switch(ours),
        })
    }

    fn attach_xdp(
        &mut self,
        facts: &IfaceFacts,
        choice: ModeChoice,
        plan: XdpPlan,
    ) -> Result<XdpMode> {
        let iface = facts.name.as_str();
        let driver = if facts.is_veth() {
            Some("veth".to_owned())
        } else {
            driver_name(iface)
        };
        let (wanted, why) = choose_mode(choice, driver.as_deref());
        let plan = match plan {
            XdpPlan::Switch(mut v) if v.len() == 1 && v[0].0 == mode_flag(wanted) => {
                let (flag, id, old) = v.pop().expect("one");
                XdpPlan::Replace { flag, id, old }
            }
            p => p,
        };
        let fd = program(&mut self.ebpf)?.fd()?.as_fd().as_raw_fd();
        let mode = match plan {
            XdpPlan::Fresh => self.attach_xdp_fresh(facts, choice, wanted, why, driver)?,
            XdpPlan::Replace { flag, id, old } => {
                rtnl::xdp_set(
                    facts.index,
                    fd,
                    flag | XDP_FLAGS_REPLACE,
                    Some(old.as_fd().as_raw_fd()),
                )
                .map_err(|e| explain_xdp_error(&e, iface, flag))?;
                log::info!(
                    "{iface}: took over the fast path an earlier vrrp-agent left (XDP program \
                     {id} replaced in place, {} mode)",
                    mode_name(flag)
                );
                mode_of_flag(flag)
            }
            XdpPlan::Switch(old) => {
                for (flag, id, old) in &old {
                    match rtnl::xdp_set(
                        facts.index,
                        -1,
                        flag | XDP_FLAGS_REPLACE,
                        Some(old.as_fd().as_raw_fd()),
                    ) {
                        Ok(()) => log::info!(
                            "{iface}: removed the fast path an earlier vrrp-agent left in {} mode \
                             (XDP program {id}); attaching in {} mode",
                            mode_name(*flag),
                            mode_name(mode_flag(wanted))
                        ),
                        Err(e) => return Err(explain_xdp_error(&e, iface, *flag)),
                    }
                }
                self.attach_xdp_fresh(facts, choice, wanted, why, driver)?
            }
        };
        self.attached = Some(Attachment {
            iface: iface.to_owned(),
            ifindex: facts.index,
            mode,
        });
        Ok(mode)
    }

    fn attach_xdp_fresh(
        &mut self,
        facts: &IfaceFacts,
        choice: ModeChoice,
        wanted: XdpMode,
        why: Option<&str>,
        driver: Option<String>,
    ) -> Result<XdpMode> {
        let iface = facts.name.as_str();
        let fd = program(&mut self.ebpf)?.fd()?.as_fd().as_raw_fd();
        let set = |mode: XdpMode| {
            rtnl::xdp_set(
                facts.index,
                fd,
                mode_flag(mode) | XDP_FLAGS_UPDATE_IF_NOEXIST,
                None,
            )
        };
        match (wanted, why) {
            (XdpMode::Skb, Some(why)) => {
                log::info!("{iface}: attaching XDP in generic (skb) mode: {why}");
                set(XdpMode::Skb).map_err(|e| explain_xdp_error(&e, iface, XDP_FLAGS_SKB_MODE))?;
                Ok(XdpMode::Skb)
            }
            (mode, _) => match set(mode) {
                Ok(()) => Ok(mode),
                Err(e)
                    if choice == ModeChoice::Auto
                        && !matches!(e.errno, libc::EBUSY | libc::EEXIST | libc::EPERM) =>
                {
                    log::warn!(
                        "{iface}: driver {} refused native XDP ({e}); using generic (skb) mode, \
                         which is slower",
                        driver.as_deref().unwrap_or("?")
                    );
                    set(XdpMode::Skb)
                        .map_err(|e| explain_xdp_error(&e, iface, XDP_FLAGS_SKB_MODE))?;
                    Ok(XdpMode::Skb)
                }
                Err(e) => Err(explain_xdp_error(&e, iface, mode_flag(mode))),
            },
        }
    }

    /// Attaches the egress classifier to `iface` as a netlink filter on `clsact` (it outlives
    /// the agent), taking over a filter a dead agent left; where that is impossible, as a TCX
    /// link, and [`FastPath::failsafe_gap`] says why. Replaces an earlier attachment of this
    /// `FastPath`.
    pub fn attach_egress(&mut self, iface: &str) -> Result<EgressMode> {
        match self.attach_egress_with(iface, EgressMode::Netlink) {
            Ok(m) => {
                self.failsafe_gap = None;
                Ok(m)
            }
            Err(netlink_err) => {
                let m = self
                    .attach_egress_with(iface, EgressMode::Tcx)
                    .map_err(|e| {
                        anyhow!(
                            "attaching the egress classifier to {iface}: as a netlink filter: \
                         {netlink_err:#}; as a TCX link: {e:#}"
                        )
                    })?;
                self.failsafe_gap = Some(format!(
                    "the egress classifier could not be attached as a netlink filter on clsact \
                     ({netlink_err:#}), so it is a TCX link that dies with the agent: a killed \
                     agent's kernel may announce its VIPs from the real MAC"
                ));
                Ok(m)
            }
        }
    }

    /// Attaches the egress classifier to `iface` in `mode` (tests use it to exercise each
    /// path). Replaces an earlier attachment of this `FastPath`.
    pub fn attach_egress_with(&mut self, iface: &str, mode: EgressMode) -> Result<EgressMode> {
        self.detach_egress()?;
        let ifindex = ifindex(iface)?;
        let link = match mode {
            EgressMode::Tcx => {
                let id = egress_program(&mut self.ebpf)?
                    .attach_with_options(
                        iface,
                        TcAttachType::Egress,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    )
                    .with_context(|| format!("attaching a TCX egress link to {iface}"))?;
                EgressLink::Tcx(id)
            }
            EgressMode::Netlink => EgressLink::Filter(self.attach_egress_filter(iface, ifindex)?),
        };
        self.egress = Some(EgressAttachment {
            iface: iface.to_owned(),
            ifindex,
            link,
        });
        Ok(mode)
    }

    /// The netlink path: `clsact` (added if missing), then our filter in place of one a dead
    /// agent left (make-before-break: the kernel swaps the program at the same priority and
    /// handle), or a new one; then any further leftovers of ours are removed.
    fn attach_egress_filter(&mut self, iface: &str, ifindex: u32) -> Result<BpfFilter> {
        match tc::qdisc_add_clsact(iface) {
            Ok(()) => log::debug!("{iface}: added a clsact qdisc"),
            Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(anyhow!(e).context("adding a clsact qdisc")),
        }
        // EEXIST also comes from an `ingress` qdisc in clsact's place, and a filter for the
        // egress parent would then land on its ingress block.
        match rtnl::ingress_qdisc_kind(ifindex) {
            Ok(Some(k)) if k == "clsact" => {}
            Ok(Some(k)) => bail!(
                "{iface} has an '{k}' qdisc where clsact goes (`tc qdisc del dev {iface} {k}` \
                 removes it)"
            ),
            Ok(None) => bail!("{iface} has no clsact qdisc after adding one"),
            Err(e) => bail!("listing the qdiscs of {iface}: {e}"),
        }
        let ours = egress_program(&mut self.ebpf)?.info()?.id();
        let is_vrrp = |f: &BpfFilter| f.name.as_deref() == Some(EGRESS_PROGRAM);
        let before: Vec<BpfFilter> = rtnl::bpf_filters(ifindex, TC_PARENT_EGRESS)
            .map_err(|e| anyhow!("listing the egress filters of {iface}: {e}"))?
            .into_iter()
            .filter(|f| is_vrrp(f) && f.prog_id != Some(ours))
            .collect();
        let prog = egress_program(&mut self.ebpf)?;
        let mut replaced = None;
        if let Some(old) = before.first() {
            let link = SchedClassifierLink::attached(
                iface,
                TcAttachType::Egress,
                old.prio,
                tc::TcHandle::from(old.handle),
                None,
            )?;
            match prog.attach_to_link(link) {
                Ok(id) => {
                    replaced = Some(old.clone());
                    // We manage the filter's life ourselves (detach checks it is still ours).
                    std::mem::forget(prog.take_link(id)?);
                }
                Err(e) => log::debug!(
                    "{iface}: could not replace the egress filter left by an earlier agent in \
                     place ({e}); adding ours first"
                ),
            }
        }
        if replaced.is_none() {
            let id = prog
                .attach_with_options(
                    iface,
                    TcAttachType::Egress,
                    TcAttachOptions::Netlink(NlOptions::default()),
                )
                .context("adding the egress filter")?;
            std::mem::forget(prog.take_link(id)?);
        }
        let after = rtnl::bpf_filters(ifindex, TC_PARENT_EGRESS)
            .map_err(|e| anyhow!("listing the egress filters of {iface}: {e}"))?;
        let mine = after
            .iter()
            .find(|f| f.prog_id == Some(ours))
            .cloned()
            .ok_or_else(|| anyhow!("{iface}: our egress filter is not listed after attaching"))?;
        let mut removed = 0;
        for f in after
            .iter()
            .filter(|f| is_vrrp(f) && f.prog_id != Some(ours))
        {
            match rtnl::del_filter(ifindex, TC_PARENT_EGRESS, f) {
                Ok(()) => removed += 1,
                Err(e) => log::warn!(
                    "{iface}: could not remove the egress filter an earlier agent left (pref {} \
                     handle {:#x}): {e}",
                    f.prio,
                    f.handle
                ),
            }
        }
        if replaced.is_some() || removed > 0 {
            log::info!(
                "{iface}: took over the egress filter an earlier vrrp-agent left ({})",
                match (replaced.is_some(), removed) {
                    (true, 0) => "replaced in place".to_owned(),
                    (true, n) => format!("replaced in place, {n} more removed"),
                    (false, n) => format!("ours added first, then {n} removed"),
                }
            );
        }
        Ok(mine)
    }

    /// How the egress classifier is attached, if it is.
    pub fn egress_mode(&self) -> Option<EgressMode> {
        self.egress.as_ref().map(EgressAttachment::mode)
    }

    /// Detaches the egress classifier (synchronously), if it is still ours. No error if it was
    /// not attached.
    pub fn detach_egress(&mut self) -> Result<()> {
        let Some(e) = self.egress.take() else {
            return Ok(());
        };
        match e.link {
            EgressLink::Tcx(id) => egress_program(&mut self.ebpf)?
                .detach(id)
                .with_context(|| format!("{}: detaching the egress classifier", e.iface)),
            EgressLink::Filter(f) => {
                let ours = egress_program(&mut self.ebpf)?.info()?.id();
                let still = match rtnl::bpf_filters(e.ifindex, TC_PARENT_EGRESS) {
                    Ok(now) => now
                        .into_iter()
                        .find(|n| n.prio == f.prio && n.handle == f.handle),
                    Err(err) if err.errno == libc::ENODEV => return Ok(()),
                    Err(err) => bail!("{}: listing the egress filters: {err}", e.iface),
                };
                match still {
                    Some(n) if n.prog_id == Some(ours) => {
                        match rtnl::del_filter(e.ifindex, TC_PARENT_EGRESS, &n) {
                            Ok(()) => Ok(()),
                            Err(err) if matches!(err.errno, libc::ENOENT | libc::ENODEV) => Ok(()),
                            Err(err) => {
                                bail!("{}: removing the egress filter: {err}", e.iface)
                            }
                        }
                    }
                    Some(_) => {
                        log::info!(
                            "{}: the egress filter was taken over by another agent; leaving it",
                            e.iface
                        );
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
        }
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

    fn detach_xdp(&mut self) -> Result<()> {
        let Some(a) = self.attached.take() else {
            return Ok(());
        };
        let fd = program(&mut self.ebpf)?.fd()?.as_fd().as_raw_fd();
        let flag = mode_flag(a.mode);
        match rtnl::xdp_set(a.ifindex, -1, flag | XDP_FLAGS_REPLACE, Some(fd)) {
            Ok(()) => Ok(()),
            // Not ours any more: replaced by another agent.
            Err(e) if e.errno == libc::EEXIST => {
                log::info!(
                    "{}: the XDP program was taken over by another agent; leaving it",
                    a.iface
                );
                Ok(())
            }
            // The device is gone (its namespace deleted), and the program with it.
            Err(e) if e.errno == libc::ENODEV => Ok(()),
            Err(e) => Err(anyhow!("{}: detaching XDP: {e}", a.iface)),
        }
    }

    /// Marks a virtual router's adverts as ours (handed to user space) or not.
    pub fn set_vrid(&mut self, family: u8, vrid: u8, on: bool) -> Result<()> {
        let mut map: Array<&mut MapData, u32> = Array::try_from(self.map_mut("VRIDS")?)?;
        map.set(vrid_slot(family, vrid), u32::from(on), 0)
            .context("writing the VRIDS map")?;
        Ok(())
    }

    /// Marks a virtual router as owned (Master: answer ARP/NS for its VIPs with the VMAC, accept
    /// VMAC frames) or not, whether it accepts packets addressed to its VIPs (Accept_Mode), and
    /// the fail-safe bound after which a silent agent's ownership lapses in the kernel
    /// (`stale_after` zero: no bound).
    pub fn set_router(
        &mut self,
        family: u8,
        vrid: u8,
        owned: bool,
        accept: bool,
        stale_after: std::time::Duration,
    ) -> Result<()> {
        let mut map: Array<&mut MapData, RouterState> = Array::try_from(self.map_mut("ROUTERS")?)?;
        let state = RouterState {
            flags: if owned { ROUTER_OWNED } else { 0 } | if accept { ROUTER_ACCEPT } else { 0 },
            _pad: 0,
            stale_after_ns: u64::try_from(stale_after.as_nanos()).unwrap_or(u64::MAX),
        };
        map.set(vrid_slot(family, vrid), state, 0)
            .context("writing the ROUTERS map")?;
        if owned {
            self.owned.insert(vrid_slot(family, vrid));
        } else {
            self.owned.remove(&vrid_slot(family, vrid));
        }
        Ok(())
    }

    /// Adds a virtual address of virtual router `vrid` (its family is the address's).
    pub fn add_vip(&mut self, vip: IpAddr, vrid: u8) -> Result<()> {
        let entry = VipEntry {
            vrid,
            ..Default::default()
        };
        match vip {
            IpAddr::V4(a) => {
                let mut m: HashMap<&mut MapData, [u8; 4], VipEntry> =
                    HashMap::try_from(self.map_mut("VIPS_V4")?)?;
                m.insert(a.octets(), entry, 0)
            }
            IpAddr::V6(a) => {
                let mut m: HashMap<&mut MapData, [u8; 16], VipEntry> =
                    HashMap::try_from(self.map_mut("VIPS_V6")?)?;
                m.insert(a.octets(), entry, 0)
            }
        }
        .with_context(|| format!("adding VIP {vip} to the fast path"))
    }

    /// Removes a virtual address (no error if it was not there).
    pub fn remove_vip(&mut self, vip: IpAddr) -> Result<()> {
        let r = match vip {
            IpAddr::V4(a) => {
                let mut m: HashMap<&mut MapData, [u8; 4], VipEntry> =
                    HashMap::try_from(self.map_mut("VIPS_V4")?)?;
                m.remove(&a.octets())
            }
            IpAddr::V6(a) => {
                let mut m: HashMap<&mut MapData, [u8; 16], VipEntry> =
                    HashMap::try_from(self.map_mut("VIPS_V6")?)?;
                m.remove(&a.octets())
            }
        };
        match r {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("removing VIP {vip} from the fast path"))),
        }
    }

    /// Tells the fast path the agent is alive, at `now_ns` on CLOCK_MONOTONIC
    /// ([`crate::clock::monotonic_ns`]).
    pub fn heartbeat(&mut self, now_ns: u64) -> Result<()> {
        let mut map: Array<&mut MapData, u64> = Array::try_from(self.map_mut("HEARTBEAT")?)?;
        map.set(0, now_ns, 0).context("writing the HEARTBEAT map")?;
        Ok(())
    }

    /// Sets the attached interface's own MAC (the rewrite target for owned-VMAC frames).
    pub fn set_iface_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        let mut map: Array<&mut MapData, IfaceConfig> = Array::try_from(self.map_mut("IFACE")?)?;
        map.set(0, IfaceConfig { mac, _pad: [0; 2] }, 0)
            .context("writing the IFACE map")?;
        Ok(())
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("the XDP object has no {name} map"))
    }

    /// Reads the per-CPU counters and sums them.
    pub fn counters(&self) -> Result<Counters> {
        let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("COUNTERS")
                .ok_or_else(|| anyhow!("the XDP object has no COUNTERS map"))?,
        )?;
        let mut out = Vec::with_capacity(Counter::ALL.len());
        for c in Counter::ALL {
            let v = map
                .get(&(c as u32), 0)
                .with_context(|| format!("reading counter {}", c.name()))?;
            out.push(v.iter().sum());
        }
        Ok(Counters(out))
    }

    /// Reads one per-CPU counter and sums it (one map lookup: cheap enough for a periodic
    /// check).
    pub fn counter(&self, c: Counter) -> Result<u64> {
        let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("COUNTERS")
                .ok_or_else(|| anyhow!("the XDP object has no COUNTERS map"))?,
        )?;
        let v = map
            .get(&(c as u32), 0)
            .with_context(|| format!("reading counter {}", c.name()))?;
        Ok(v.iter().sum())
    }

    /// Takes the advert ring buffer (once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or_else(|| anyhow!("the EVENTS ring buffer was already taken"))?;
        Ok(RingBuf::try_from(map)?)
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

/// Reads one [`AdvertEvent`] out of a ring-buffer record.
pub fn parse_event(bytes: &[u8]) -> Option<AdvertEvent> {
    bytemuck::try_pod_read_unaligned(bytes.get(..std::mem::size_of::<AdvertEvent>())?).ok()
}

/// Picks the attach mode. Returns the mode and, when it is generic by policy, why.
///
/// veth (what containers and Kubernetes pods use): native-mode XDP_TX on a veth is silently
/// dropped unless the peer end also runs an XDP program (measured on these machines), and the
/// fast path answers ARP/NS with XDP_TX. Generic mode works regardless of the peer, so `auto`
/// uses it on veth.
pub fn choose_mode(choice: ModeChoice, driver: Option<&str>) -> (XdpMode, Option<&'static str>) {
    match choice {
        ModeChoice::Native => (XdpMode::Driver, None),
        ModeChoice::Generic => (XdpMode::Skb, Some("requested with --xdp-mode generic")),
        ModeChoice::Auto if driver == Some("veth") => (
            XdpMode::Skb,
            Some(
                "driver is veth, where native XDP_TX is lost unless the peer also runs XDP \
                 (force with --xdp-mode native)",
            ),
        ),
        ModeChoice::Auto => (XdpMode::Driver, None),
    }
}

/// The index of interface `iface` in the calling thread's network namespace (from netlink).
pub fn ifindex(iface: &str) -> Result<u32> {
    Ok(rtnl::iface_facts(iface)?.index)
}

/// The interface's driver name as `ethtool -i` reports it, if the driver answers.
pub fn driver_name(iface: &str) -> Option<String> {
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        version: [u8; 32],
        fw_version: [u8; 32],
        bus_info: [u8; 32],
        erom_version: [u8; 32],
        reserved2: [u8; 12],
        n_priv_flags: u32,
        n_stats: u32,
        testinfo_len: u32,
        eedump_len: u32,
        regdump_len: u32,
    }
    const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    if iface.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: plain-old-data structs, zero is a valid value.
    let mut info: DrvInfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(iface.bytes()) {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
    // SAFETY: a datagram socket used only for the ioctl, closed by OwnedFd.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return None;
    }
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock) };
    // SAFETY: ifr points at a valid ifreq whose data points at a valid ethtool_drvinfo.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut ifr) };
    if rc < 0 {
        return None;
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
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

fn explain_program_error(e: ProgramError, what: &str) -> anyhow::Error {
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
        ProgramError::UnknownInterface { name } => {
            anyhow!("no such interface '{name}' (list them with `ip link`)")
        }
        _ => match io_errno(&e) {
            Some(libc::EPERM | libc::EACCES) => {
                anyhow!("permission denied attaching XDP to {what}: {PERMISSION_HINT}")
            }
            Some(libc::EBUSY | libc::EEXIST) => anyhow!(
                "{what} already has an XDP program attached (see `ip link show {what}`); \
                 remove it or use another interface"
            ),
            Some(libc::EOPNOTSUPP) => anyhow!(
                "the driver of {what} does not support this XDP mode ({e}); try --xdp-mode generic"
            ),
            _ => anyhow!(e).context(format!("XDP on {what}")),
        },
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn explain_xdp_error(e: &NlError, iface: &str, flag: u32) -> anyhow::Error {
    match e.errno {
        libc::EPERM | libc::EACCES => {
            anyhow!("permission denied attaching XDP to {iface}: {PERMISSION_HINT} ({e})")
        }
        libc::EBUSY | libc::EEXIST => anyhow!(
            "{iface}: another XDP program was attached meanwhile ({e}); see `ip link show \
             {iface}`, remove it or use another interface"
        ),
        libc::EOPNOTSUPP => anyhow!(
            "the driver of {iface} does not support {} XDP ({e}); try --xdp-mode generic",
            mode_name(flag)
        ),
        _ => anyhow!("attaching XDP to {iface} in {} mode: {e}", mode_name(flag)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mode_is_generic_on_veth_only() {
        assert_eq!(choose_mode(ModeChoice::Auto, Some("veth")).0, XdpMode::Skb);
        assert_eq!(
            choose_mode(ModeChoice::Auto, Some("ixgbe")).0,
            XdpMode::Driver
        );
        assert_eq!(choose_mode(ModeChoice::Auto, None).0, XdpMode::Driver);
        assert_eq!(
            choose_mode(ModeChoice::Native, Some("veth")).0,
            XdpMode::Driver
        );
        assert_eq!(choose_mode(ModeChoice::Generic, None).0, XdpMode::Skb);
    }

    #[test]
    fn counters_summary_and_outcomes() {
        let mut c = Counters(vec![0; Counter::ALL.len()]);
        assert_eq!(c.summary(), "frames=0");
        c.0[Counter::Frames as usize] = 3;
        c.0[Counter::VrrpToUser as usize] = 2;
        c.0[Counter::ArpSeen as usize] = 1;
        c.0[Counter::VlanTagged as usize] = 1;
        assert_eq!(c.outcomes(), 3);
        assert_eq!(
            c.summary(),
            "frames=3 arp_seen=1 vrrp_to_user=2 vlan_tagged=1"
        );
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = ifindex("nosuchif0").unwrap_err().to_string();
        assert!(e.contains("no such interface 'nosuchif0'"), "{e}");
    }
}
