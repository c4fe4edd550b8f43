//! The XDP fast path, seen from user space: load the program, attach it to an interface, program
//! its maps, read its counters and its advert ring buffer.
//!
//! This is an I/O edge: it talks to the kernel and nothing in here knows VRRP's rules.
use std::{ffi::CString, io, net::IpAddr, os::fd::AsRawFd as _};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{ProgramError, Xdp, XdpMode},
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

/// How to attach the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Native (driver) mode, except on drivers where it is known not to work for us (veth: see
    /// [`choose_mode`]); if the driver refuses native mode, fall back to generic with a warning.
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
}

/// Where the program is attached.
#[derive(Debug)]
pub struct Attachment {
    pub iface: String,
    pub ifindex: u32,
    pub mode: XdpMode,
    link: aya::programs::xdp::XdpLinkId,
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
        Ok(Self {
            ebpf,
            attached: None,
        })
    }

    /// The XDP program (for attaching, or for `BPF_PROG_TEST_RUN` in tests).
    pub fn program(&mut self) -> Result<&mut Xdp> {
        program(&mut self.ebpf)
    }

    pub fn ebpf(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Attaches to `iface` in the mode `choice` asks for; returns the mode used.
    pub fn attach(&mut self, iface: &str, choice: ModeChoice) -> Result<XdpMode> {
        let ifindex = ifindex(iface)?;
        let driver = driver_name(iface);
        let prog = program(&mut self.ebpf)?;
        let (mode, link) = match choose_mode(choice, driver.as_deref()) {
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
        self.attached = Some(Attachment {
            iface: iface.to_owned(),
            ifindex,
            mode,
            link,
        });
        Ok(mode)
    }

    pub fn attachment(&self) -> Option<&Attachment> {
        self.attached.as_ref()
    }

    /// Detaches the program (also happens when the `FastPath` is dropped or the process dies:
    /// the attachment is a bpf_link owned by this process).
    pub fn detach(&mut self) -> Result<()> {
        if let Some(a) = self.attached.take() {
            program(&mut self.ebpf)?
                .detach(a.link)
                .with_context(|| format!("detaching XDP from {}", a.iface))?;
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
