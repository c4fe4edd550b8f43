//! The maps user space programs: which adverts go to user space (`VRIDS`), which routers are
//! owned (`ROUTERS`), their VIPs (`VIPS_V4`, `VIPS_V6`), the interface's MAC (`IFACE`) and the
//! agent's heartbeat (`HEARTBEAT`). Layouts are vrrp-common's (the kernel ABI).

use std::net::IpAddr;

use anyhow::{anyhow, Context as _, Result};
use aya::maps::{Array, HashMap, MapData};
use vrrp_common::{
    vrid_slot, IfaceConfig, RouterState, VipEntry, ROUTER_ACCEPT, ROUTER_OWNED, VRID_ON,
};

use super::FastPath;

/// The `HEARTBEAT` map's value memory mapped into the agent (the map is `BPF_F_MMAPABLE`): a
/// heartbeat is a store, not a `bpf()` syscall per wake-up (CPU floor, issue 11).
pub(super) struct MappedHeartbeat {
    ptr: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is owned by this value and only accessed through an atomic.
unsafe impl Send for MappedHeartbeat {}

impl MappedHeartbeat {
    /// Maps the `HEARTBEAT` map of `ebpf`; `None` when it cannot (a map without
    /// `BPF_F_MMAPABLE`, a kernel before 5.5): the heartbeat then goes through `bpf()`.
    pub(super) fn map(ebpf: &aya::Ebpf) -> Option<Self> {
        use std::os::fd::{AsFd as _, AsRawFd as _};
        let aya::maps::Map::Array(md) = ebpf.map("HEARTBEAT")? else {
            return None;
        };
        // SAFETY: no preconditions.
        let len = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        // SAFETY: a fresh shared mapping of the map's value area (one u64 at offset 0), owned
        // by the returned value and unmapped in its Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                md.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            log::debug!(
                "HEARTBEAT map not memory-mapped ({}): heartbeats go through bpf()",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(Self {
            ptr: std::ptr::NonNull::new(p.cast())?,
            len,
        })
    }

    fn store(&self, now_ns: u64) {
        // SAFETY: the mapping is live, page-aligned and holds element 0 (a u64) at offset 0.
        unsafe { self.ptr.as_ref() }.store(now_ns, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for MappedHeartbeat {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl FastPath {
    /// Marks a virtual router's adverts as ours (handed to user space, each one waking the
    /// reader) or not.
    pub fn set_vrid(&mut self, family: u8, vrid: u8, on: bool) -> Result<()> {
        self.set_vrid_flags(family, vrid, if on { VRID_ON } else { 0 })
    }

    /// Sets a virtual router's `VRIDS` value: 0 (not ours), [`VRID_ON`], or `VRID_ON |`
    /// [`VRID_QUIET`] (routine adverts queued without a wake-up: only for a reader that drains
    /// the ring whenever it wakes, before it judges any timer, as the supervisor does).
    pub fn set_vrid_flags(&mut self, family: u8, vrid: u8, flags: u32) -> Result<()> {
        let mut map: Array<&mut MapData, u32> = Array::try_from(self.map_mut("VRIDS")?)?;
        map.set(vrid_slot(family, vrid), flags, 0)
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

    /// Whether this agent marked virtual router (`family`, `vrid`) owned.
    pub fn owns(&self, family: u8, vrid: u8) -> bool {
        self.owned.contains(&vrid_slot(family, vrid))
    }

    /// Sets the fail-safe bound of a virtual router the fast path owns (a router not owned
    /// is left alone): a stopping agent shortens it for its handover, so that being killed
    /// before the release leaves the VIP answered twice for less than an advert interval.
    pub fn set_stale_after(
        &mut self,
        family: u8,
        vrid: u8,
        stale_after: std::time::Duration,
    ) -> Result<()> {
        let slot = vrid_slot(family, vrid);
        if !self.owned.contains(&slot) {
            return Ok(());
        }
        let mut map: Array<&mut MapData, RouterState> = Array::try_from(self.map_mut("ROUTERS")?)?;
        let mut state = map.get(&slot, 0).context("reading the ROUTERS map")?;
        state.stale_after_ns = u64::try_from(stale_after.as_nanos()).unwrap_or(u64::MAX);
        map.set(slot, state, 0).context("writing the ROUTERS map")?;
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
        if let Some(hb) = &self.heartbeat_mem {
            hb.store(now_ns);
            return Ok(());
        }
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
}

/// What an earlier run left in the maps of the XDP program attached to an interface (hitless
/// restart), as observed: for each router asked about, whether it is owned, the fail-safe bound
/// held for it and the heartbeat's age. Whether that means a resume is the core's decision
/// ([`vrrp_core::decide_resume`]).
#[derive(Debug, Default)]
pub struct Leftover {
    /// A vrrp-agent XDP program with readable maps is attached.
    pub attached: bool,
    /// `ROUTERS` slots asked about, as the program attached holds them.
    pub routers: std::collections::BTreeMap<u32, vrrp_core::LeftRouter>,
}

impl Leftover {
    /// Router (`family`, `vrid`) as the earlier run's fast path holds it; `None` when no
    /// fast path of ours is attached.
    pub fn router(&self, family: u8, vrid: u8) -> Option<vrrp_core::LeftRouter> {
        self.routers.get(&vrid_slot(family, vrid)).copied()
    }
}

/// Reads the `ROUTERS` and `HEARTBEAT` maps of the vrrp-agent XDP program attached to the
/// interface (`facts`, read before this run attaches its own), for the routers `slots`, with the
/// heartbeat's age at `now_ns`. Nothing attached, or a program that is not ours: nothing.
pub fn leftover(facts: &crate::rtnl::IfaceFacts, slots: &[u32], now_ns: u64) -> Result<Leftover> {
    use aya::maps::Map;
    let mut out = Leftover::default();
    let ids: Vec<u32> = facts.xdp.attached().into_iter().map(|(_, id)| id).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    for info in aya::programs::loaded_programs().flatten() {
        if !ids.contains(&info.id()) || info.name_as_str() != Some(super::PROGRAM) {
            continue;
        }
        let (mut routers, mut heartbeat) = (None, None);
        for mid in info.map_ids()?.unwrap_or_default() {
            let md = MapData::from_id(mid)?;
            match md.info()?.name_as_str() {
                Some("ROUTERS") => routers = Some(md),
                Some("HEARTBEAT") => heartbeat = Some(md),
                _ => {}
            }
        }
        let (Some(routers), Some(heartbeat)) = (routers, heartbeat) else {
            continue;
        };
        let routers: Array<MapData, RouterState> = Array::try_from(Map::Array(routers))?;
        let heartbeat: Array<MapData, u64> = Array::try_from(Map::Array(heartbeat))?;
        let hb = heartbeat
            .get(&0, 0)
            .context("reading the previous HEARTBEAT map")?;
        out.attached = true;
        for &slot in slots {
            let r = routers
                .get(&slot, 0)
                .context("reading the previous ROUTERS map")?;
            out.routers.insert(
                slot,
                vrrp_core::LeftRouter {
                    owned: r.flags & ROUTER_OWNED != 0,
                    bound: std::time::Duration::from_nanos(r.stale_after_ns),
                    // A heartbeat from the future counts as stale (fail-safe).
                    heartbeat_age: now_ns
                        .checked_sub(hb)
                        .map_or(std::time::Duration::MAX, std::time::Duration::from_nanos),
                },
            );
        }
    }
    Ok(out)
}
