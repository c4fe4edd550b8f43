//! The XDP fast path, seen from user space: load the program, attach it to an interface, program
//! its maps, read its counters and its advert ring buffer.
//!
//! This is an I/O edge: it talks to the kernel and nothing in here knows VRRP's rules.
//!
//! # The attachment outlives the agent
//!
//! [`FastPath::attach`] attaches through a bpf_link and **pins** it in bpffs at
//! `<pin root>/vrrp-agent/<netns inode>/<ifindex>/link-<mode>` ([`pin_dir_for`]). The program, and
//! through it its maps, live as long as the pin: an agent killed with SIGKILL leaves the program
//! running with its last state — routers still marked owned and a heartbeat that goes stale —
//! so the fail-safe takes over (ARP/NS for the VIPs dropped, VMAC frames no longer accepted)
//! instead of the kernel answering ARP for a still-configured VIP with the real MAC. A clean
//! [`FastPath::detach`] (also on drop) removes the pin and detaches.
//!
//! The next [`FastPath::attach`] on the same interface takes over: it opens the pinned link and
//! atomically replaces its program with the new one (`BPF_LINK_UPDATE`), so the interface is
//! never without the fast path (no window in which the kernel answers ARP itself). The old
//! program and maps are released with that. When the pinned link cannot be updated (it was
//! attached in another mode, or its device is gone), the pin is removed — detaching the old
//! program — and the program is attached afresh.
//!
//! The pin root is `/run/vrrp-agent/bpffs` when a bpffs is mounted there, else `/sys/fs/bpf`
//! (mounted if it is not). `ip netns exec` gives its command a private mount namespace with a
//! fresh `/sys`: a bpffs mounted there dies with the agent, and the pin with it. Labs that start
//! agents that way call [`mount_shared_pin_root`] first, in the parent's mount namespace.
//!
//! # The egress classifier dies with the agent
//!
//! [`FastPath::attach`] also attaches the TC egress classifier ([`EGRESS_PROGRAM`]: frames the
//! kernel sends from an owned VIP leave with the VMAC) to the interface's egress. On Linux ≥ 6.6
//! it is a TCX bpf_link held only by the agent's fd, **not pinned**: it is detached when the
//! agent closes it ([`FastPath::detach`]) or dies, SIGKILL included, so a killed agent never
//! leaves one behind and the next agent's attaches on a clean hook — nothing stacks. It need not
//! outlive the agent: with the agent gone the heartbeat goes stale and the classifier would not
//! rewrite anything anyway. On older kernels (no TCX) it is a netlink `bpf` filter on a `clsact`
//! qdisc (added if missing, left in place afterwards); such a filter does outlive a killed agent,
//! so before attaching, a filter of the same name on the interface's egress is removed first
//! (replaced, not stacked).
use std::{
    ffi::CString,
    io,
    net::IpAddr,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        links::{FdLink, PinnedLink},
        tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions},
        xdp::{XdpLink, XdpLinkId},
        LinkOrder, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf, EbpfError, EbpfLoader,
};
use vrrp_common::{
    vrid_slot, AdvertEvent, Counter, IfaceConfig, RouterState, VipEntry, FAMILY_IPV4, FAMILY_IPV6,
    ROUTER_ACCEPT, ROUTER_OWNED,
};

/// The XDP object built by `build.rs` from the `vrrp-ebpf` crate.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp"));

/// Name of the XDP program inside the object.
pub const PROGRAM: &str = "vrrp_xdp";

/// Name of the TC egress classifier inside the object (also the name of its netlink filter).
pub const EGRESS_PROGRAM: &str = "vrrp_tc_egress";

/// How the egress classifier is attached (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressMode {
    /// A TCX bpf_link (Linux ≥ 6.6), detached when the agent's fd closes.
    Tcx,
    /// A netlink `bpf` filter on the `clsact` qdisc (older kernels).
    Netlink,
}

/// Where the egress classifier is attached.
#[derive(Debug)]
struct EgressAttachment {
    iface: String,
    mode: EgressMode,
    link: SchedClassifierLinkId,
}

/// How to attach the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Native (driver) mode, falling back to generic if the driver refuses it; generic on veth,
    /// where native XDP_TX is lost unless the peer also runs XDP.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

/// Which address families an instance listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    V4,
    V6,
    Both,
}

impl Family {
    pub fn tags(self) -> &'static [u8] {
        match self {
            Family::V4 => &[FAMILY_IPV4],
            Family::V6 => &[FAMILY_IPV6],
            Family::Both => &[FAMILY_IPV4, FAMILY_IPV6],
        }
    }
}

/// The loaded (and possibly attached) XDP program with its maps.
pub struct FastPath {
    ebpf: Ebpf,
    attached: Option<Attachment>,
    egress: Option<EgressAttachment>,
}

/// Where the program is attached.
#[derive(Debug)]
pub struct Attachment {
    pub iface: String,
    pub ifindex: u32,
    pub mode: XdpMode,
    /// The bpf_link, also pinned at `pin`.
    link: FdLink,
    pin: PathBuf,
}

impl Attachment {
    /// Where the link is pinned.
    pub fn pin_path(&self) -> &Path {
        &self.pin
    }
}

/// A bpffs mounted here is preferred to `/sys/fs/bpf` as the pin root (see the module docs).
pub const SHARED_PIN_ROOT: &str = "/run/vrrp-agent/bpffs";
/// The usual bpffs mount point.
pub const SYS_PIN_ROOT: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: u32 = 0xcafe_4a11;

fn is_bpffs(path: &str) -> bool {
    let Ok(c) = CString::new(path) else {
        return false;
    };
    // SAFETY: zeroed statfs is valid; valid path and out pointer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as u32 == BPF_FS_MAGIC }
}

fn mount_bpffs(path: &str) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {path}"))?;
    let target = CString::new(path)?;
    // SAFETY: valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("mounting a bpf filesystem at {path}"));
    }
    Ok(())
}

/// The directory all of vrrp-agent's pins go under: `/run/vrrp-agent/bpffs/vrrp-agent` if a
/// bpffs is mounted at [`SHARED_PIN_ROOT`], else `/sys/fs/bpf/vrrp-agent` (mounting bpffs at
/// `/sys/fs/bpf` if needed).
pub fn pin_root() -> Result<PathBuf> {
    if is_bpffs(SHARED_PIN_ROOT) {
        return Ok(Path::new(SHARED_PIN_ROOT).join("vrrp-agent"));
    }
    if !is_bpffs(SYS_PIN_ROOT) {
        mount_bpffs(SYS_PIN_ROOT)?;
        log::info!("mounted a bpf filesystem at {SYS_PIN_ROOT}");
    }
    Ok(Path::new(SYS_PIN_ROOT).join("vrrp-agent"))
}

/// Mounts a bpffs at [`SHARED_PIN_ROOT`] (once) and returns it. For test labs and wrappers that
/// start agents with `ip netns exec` (whose private `/sys` hides `/sys/fs/bpf`): call it in the
/// parent, before starting them, so their pins land in a bpffs that outlives them.
pub fn mount_shared_pin_root() -> Result<PathBuf> {
    if !is_bpffs(SHARED_PIN_ROOT) {
        mount_bpffs(SHARED_PIN_ROOT)?;
    }
    Ok(PathBuf::from(SHARED_PIN_ROOT))
}

/// Inode of the calling thread's network namespace (unique while the namespace exists).
pub fn netns_inode() -> Result<u64> {
    Ok(std::fs::metadata("/proc/thread-self/ns/net")
        .context("reading /proc/thread-self/ns/net")?
        .ino())
}

/// Where the pin of the attachment to `iface` (in the calling thread's network namespace) lives:
/// `<pin root>/<netns inode>/<ifindex>`.
pub fn pin_dir_for(iface: &str) -> Result<PathBuf> {
    Ok(pin_root()?
        .join(netns_inode()?.to_string())
        .join(ifindex(iface)?.to_string()))
}

fn mode_tag(mode: XdpMode) -> &'static str {
    match mode {
        XdpMode::Skb => "skb",
        XdpMode::Driver => "drv",
        XdpMode::Hardware => "hw",
        _ => "default",
    }
}

const LINK_PREFIX: &str = "link-";

/// The (link type, XDP ifindex, program id) of the bpf_link pinned at `path`. The ifindex is 0
/// once the link's device is gone (its namespace deleted): the link is then defunct.
fn pinned_link_info(path: &Path) -> io::Result<(u32, u32, u32)> {
    use std::os::unix::ffi::OsStrExt as _;
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // union bpf_attr, BPF_OBJ_GET: pathname, bpf_fd, file_flags (+ path_fd); zero-padded.
    let mut attr = [0u64; 16];
    attr[0] = cpath.as_ptr() as u64;
    // SAFETY: attr is a valid, zeroed bpf_attr of sufficient size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd the kernel just gave us.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // struct bpf_link_info: type, id, prog_id, then (8-aligned, offset 16) the per-type union;
    // for XDP its first field is the ifindex.
    let mut info = [0u32; 32];
    let mut attr = [0u64; 16];
    attr[0] = (fd.as_raw_fd() as u32 as u64) | ((std::mem::size_of_val(&info) as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    // SAFETY: attr points at a valid info buffer of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((info[0], info[4], info[2]))
}

/// An exclusive `flock` on the pin root, held while a process changes the pin tree (creates or
/// removes directories, pins or unpins), so that concurrent agents never remove a directory
/// another one is about to pin into. Released on drop.
struct PinTreeLock(#[allow(dead_code)] std::fs::File);

impl PinTreeLock {
    fn acquire() -> Result<PinTreeLock> {
        let root = pin_root()?;
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let dir =
            std::fs::File::open(&root).with_context(|| format!("opening {}", root.display()))?;
        // SAFETY: valid fd; flock has no memory-safety preconditions.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("locking {}", root.display()));
        }
        Ok(PinTreeLock(dir))
    }
}

/// Removes the pins (under the pin root) of XDP links whose device is gone — left by agents
/// that were killed in a network namespace that was then deleted; each holds a program and its
/// maps. Best effort; returns how many were removed. [`FastPath::attach`] calls it.
pub fn reap_defunct_pins() -> usize {
    const BPF_LINK_TYPE_XDP: u32 = 6;
    let Ok(root) = pin_root() else {
        return 0;
    };
    let mut removed = 0;
    let Ok(netns_dirs) = std::fs::read_dir(&root) else {
        return 0;
    };
    for ns_dir in netns_dirs.flatten() {
        let Ok(if_dirs) = std::fs::read_dir(ns_dir.path()) else {
            continue;
        };
        for if_dir in if_dirs.flatten() {
            let Ok(pins) = std::fs::read_dir(if_dir.path()) else {
                continue;
            };
            for pin in pins.flatten() {
                if !pin.file_name().to_string_lossy().starts_with(LINK_PREFIX) {
                    continue;
                }
                if let Ok((BPF_LINK_TYPE_XDP, 0, _)) = pinned_link_info(&pin.path()) {
                    if std::fs::remove_file(pin.path()).is_ok() {
                        log::debug!("removed defunct pin {}", pin.path().display());
                        removed += 1;
                    }
                }
            }
            let _ = std::fs::remove_dir(if_dir.path());
        }
        let _ = std::fs::remove_dir(ns_dir.path());
    }
    removed
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

    /// Attaches XDP to `iface` in the mode `choice` asks for and pins the attachment (see the
    /// module docs), then the egress classifier ([`FastPath::attach_egress`]); returns the XDP
    /// mode used. A pinned XDP attachment left by an earlier agent on the same interface is taken
    /// over.
    pub fn attach(&mut self, iface: &str, choice: ModeChoice) -> Result<XdpMode> {
        let mode = self.attach_xdp(iface, choice)?;
        let egress = self.attach_egress(iface)?;
        log::debug!("{iface}: egress classifier attached ({egress:?})");
        Ok(mode)
    }

    /// Attaches the egress classifier to `iface`: a TCX link where the kernel has them (≥ 6.6),
    /// else a netlink filter (see the module docs). Replaces an earlier attachment of this
    /// `FastPath`.
    pub fn attach_egress(&mut self, iface: &str) -> Result<EgressMode> {
        self.detach_egress()?;
        let prog = egress_program(&mut self.ebpf)?;
        match prog.attach_with_options(
            iface,
            TcAttachType::Egress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        ) {
            Ok(link) => {
                self.egress = Some(EgressAttachment {
                    iface: iface.to_owned(),
                    mode: EgressMode::Tcx,
                    link,
                });
                Ok(EgressMode::Tcx)
            }
            Err(e) => {
                log::info!(
                    "{iface}: no TCX egress link ({e}; Linux < 6.6?): using a netlink filter on \
                     clsact"
                );
                self.attach_egress_with(iface, EgressMode::Netlink)
            }
        }
    }

    /// Attaches the egress classifier to `iface` in `mode` (tests use it to exercise the netlink
    /// path on kernels that have TCX). Replaces an earlier attachment of this `FastPath`.
    pub fn attach_egress_with(&mut self, iface: &str, mode: EgressMode) -> Result<EgressMode> {
        if mode == EgressMode::Tcx {
            return self.attach_egress(iface).and_then(|m| {
                if m == EgressMode::Tcx {
                    Ok(m)
                } else {
                    bail!("{iface}: the kernel has no TCX links")
                }
            });
        }
        self.detach_egress()?;
        match tc::qdisc_add_clsact(iface) {
            Ok(()) => log::debug!("{iface}: added a clsact qdisc"),
            Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => {
                return Err(anyhow!(e).context(format!("adding a clsact qdisc to {iface}")));
            }
        }
        // A netlink filter outlives the agent that added it: replace one left by a killed agent
        // instead of stacking ours behind it.
        match tc::qdisc_detach_program(iface, TcAttachType::Egress, EGRESS_PROGRAM) {
            Ok(()) => log::info!("{iface}: removed an egress filter left by an earlier agent"),
            Err(tc::TcError::IoError(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("{iface}: could not look for stale egress filters: {e}"),
        }
        let prog = egress_program(&mut self.ebpf)?;
        let link = prog
            .attach_with_options(
                iface,
                TcAttachType::Egress,
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .with_context(|| format!("attaching the egress classifier to {iface}"))?;
        self.egress = Some(EgressAttachment {
            iface: iface.to_owned(),
            mode: EgressMode::Netlink,
            link,
        });
        Ok(EgressMode::Netlink)
    }

    /// How the egress classifier is attached, if it is.
    pub fn egress_mode(&self) -> Option<EgressMode> {
        self.egress.as_ref().map(|e| e.mode)
    }

    /// Detaches the egress classifier (synchronously). No error if it was not attached.
    pub fn detach_egress(&mut self) -> Result<()> {
        let Some(e) = self.egress.take() else {
            return Ok(());
        };
        egress_program(&mut self.ebpf)?
            .detach(e.link)
            .with_context(|| format!("{}: detaching the egress classifier", e.iface))
    }

    fn attach_xdp(&mut self, iface: &str, choice: ModeChoice) -> Result<XdpMode> {
        // Serialised with every other agent's pin-tree changes: another agent's
        // reap_defunct_pins() or detach removes empty directories, and could remove ours between
        // create_dir_all and the pin (BPF_OBJ_PIN then fails with ENOENT; seen with parallel
        // agents).
        let _lock = PinTreeLock::acquire()?;
        self.attach_xdp_locked(iface, choice)
    }

    fn attach_xdp_locked(&mut self, iface: &str, choice: ModeChoice) -> Result<XdpMode> {
        let ifindex = ifindex(iface)?;
        let driver = driver_name(iface);
        let dir = pin_dir_for(iface)?;
        reap_defunct_pins();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (wanted, why) = choose_mode(choice, driver.as_deref());

        if let Some(mode) = self.take_over(iface, &dir, wanted)? {
            return Ok(mode);
        }

        let prog = program(&mut self.ebpf)?;
        let (mode, link) = match (wanted, why) {
            (XdpMode::Skb, Some(why)) => {
                log::info!("{iface}: attaching XDP in generic (skb) mode: {why}");
                let link = prog
                    .attach_to_if_index(ifindex, XdpMode::Skb)
                    .map_err(|e| explain_program_error(e, iface))?;
                (XdpMode::Skb, link)
            }
            (mode, _) => match prog.attach_to_if_index(ifindex, mode) {
                Ok(link) => (mode, link),
                Err(e) if choice == ModeChoice::Auto => {
                    log::warn!(
                        "{iface}: driver {} refused native XDP ({e}); using generic (skb) mode, \
                         which is slower",
                        driver.as_deref().unwrap_or("?")
                    );
                    let link = prog
                        .attach_to_if_index(ifindex, XdpMode::Skb)
                        .map_err(|e| explain_program_error(e, iface))?;
                    (XdpMode::Skb, link)
                }
                Err(e) => return Err(explain_program_error(e, iface)),
            },
        };
        let (link, pin) = self.pin(iface, &dir, mode, link)?;
        self.attached = Some(Attachment {
            iface: iface.to_owned(),
            ifindex,
            mode,
            link,
            pin,
        });
        Ok(mode)
    }

    /// Pins a fresh attachment as `<dir>/link-<mode>`.
    fn pin(
        &mut self,
        iface: &str,
        dir: &Path,
        mode: XdpMode,
        id: XdpLinkId,
    ) -> Result<(FdLink, PathBuf)> {
        let prog = program(&mut self.ebpf)?;
        let link = prog.take_link(id)?;
        // Only a netlink attachment (kernels without XDP bpf_links) is not an fd link; dropping
        // it here detaches it.
        let fd = FdLink::try_from(link).map_err(|e| {
            anyhow!(
                "{iface}: the kernel attached XDP without a bpf_link ({e}; Linux < 5.9?): \
                 vrrp-agent needs one to pin the attachment"
            )
        })?;
        let path = dir.join(format!("{LINK_PREFIX}{}", mode_tag(mode)));
        match fd.pin(&path) {
            Ok(pinned) => Ok((pinned.into(), path)),
            Err(e) => Err(anyhow!(e).context(format!(
                "pinning the XDP link of {iface} at {} (the fast path would not survive the \
                 agent)",
                path.display()
            ))),
        }
    }

    /// Takes over a pinned attachment left in `dir` by an earlier agent: replaces its program
    /// atomically if it was attached in `wanted` mode; otherwise removes it (which detaches the
    /// old program). Returns the mode when taken over.
    fn take_over(&mut self, iface: &str, dir: &Path, wanted: XdpMode) -> Result<Option<XdpMode>> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(None);
        };
        let mut found = None;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(tag) = name.strip_prefix(LINK_PREFIX) {
                let old = match PinnedLink::from_pin(entry.path()) {
                    Ok(p) => FdLink::from(p),
                    Err(e) => {
                        log::warn!(
                            "{}: unusable pin ({e}); removing it",
                            entry.path().display()
                        );
                        let _ = std::fs::remove_file(entry.path());
                        continue;
                    }
                };
                if tag == mode_tag(wanted) && found.is_none() {
                    found = Some((entry.path(), old));
                } else {
                    log::info!(
                        "{iface}: removing the fast path pinned by an earlier agent in {tag} mode"
                    );
                    let _ = std::fs::remove_file(entry.path());
                    drop(old);
                }
            }
        }
        let Some((path, old)) = found else {
            return Ok(None);
        };
        let ifindex = ifindex(iface)?;
        let prog = program(&mut self.ebpf)?;
        let replaced = XdpLink::try_from(old)
            .map_err(|e| anyhow!(e))
            .and_then(|l| prog.attach_to_link(l).map_err(|e| anyhow!(e)))
            .and_then(|id| Ok(FdLink::try_from(prog.take_link(id)?)?));
        match replaced {
            Ok(link) => {
                log::info!(
                    "{iface}: took over the fast path pinned by an earlier agent (program \
                     replaced in place)"
                );
                self.attached = Some(Attachment {
                    iface: iface.to_owned(),
                    ifindex,
                    mode: wanted,
                    link,
                    pin: path,
                });
                Ok(Some(wanted))
            }
            Err(e) => {
                log::warn!(
                    "{iface}: could not take over the pinned fast path ({e:#}); removing it and \
                     attaching afresh"
                );
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    pub fn attachment(&self) -> Option<&Attachment> {
        self.attached.as_ref()
    }

    /// The pin directory of the current attachment (`<pin root>/<netns inode>/<ifindex>`).
    pub fn pin_dir(&self) -> Option<&Path> {
        self.attached.as_ref()?.pin.parent()
    }

    /// Detaches the program: removes the pin and closes the link (synchronously: when this
    /// returns the interface has no XDP program of ours). Also done when the `FastPath` is
    /// dropped — but not when the process is killed: then the pinned program stays, see the
    /// module docs.
    pub fn detach(&mut self) -> Result<()> {
        // The egress classifier first; a failure there (its device gone) must not keep XDP
        // attached.
        let egress = self.detach_egress();
        self.detach_xdp()?;
        egress
    }

    fn detach_xdp(&mut self) -> Result<()> {
        let _lock = PinTreeLock::acquire()?;
        self.detach_xdp_locked()
    }

    fn detach_xdp_locked(&mut self) -> Result<()> {
        let Some(a) = self.attached.take() else {
            return Ok(());
        };
        let Attachment { link, pin, .. } = a;
        // Another FastPath (a newer agent) may have taken the pinned link over: then the pin is
        // theirs, and closing our fd leaves their attachment alone.
        let ours = program(&mut self.ebpf)?.info()?.id();
        if let Ok((_, _, prog)) = pinned_link_info(&pin) {
            if prog != ours {
                log::info!(
                    "{}: the fast path was taken over by another agent; leaving its pin",
                    a.iface
                );
                return Ok(());
            }
        }
        // Unpin first: the pin's reference is dropped asynchronously, our fd's synchronously
        // when it is the last one.
        match std::fs::remove_file(&pin) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("unpinning {}", pin.display())),
        }
        drop(link);
        // Remove <ifindex> and <netns inode> when empty (an error: someone else's pins).
        if let Some(dir) = pin.parent() {
            if std::fs::remove_dir(dir).is_ok() {
                if let Some(ns_dir) = dir.parent() {
                    let _ = std::fs::remove_dir(ns_dir);
                }
            }
        }
        Ok(())
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

impl Drop for FastPath {
    fn drop(&mut self) {
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

pub fn ifindex(iface: &str) -> Result<u32> {
    let name = CString::new(iface).map_err(|_| anyhow!("interface name {iface:?} contains NUL"))?;
    // SAFETY: valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        bail!("no such interface '{iface}' (list them with `ip link`)");
    }
    Ok(idx)
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
