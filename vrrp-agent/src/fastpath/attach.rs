//! XDP attach, replace and detach through netlink (`IFLA_XDP`), the mode choice (native or
//! generic) and the one-line explanations of attach errors (see the module docs of
//! [`crate::fastpath`] for the take-over rules).

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::{anyhow, bail, Result};
use aya::programs::{ProgramFd, XdpMode};

use super::{program, FastPath, ModeChoice, PERMISSION_HINT, PROGRAM};
use crate::rtnl::{
    self, IfaceFacts, NlError, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE, XDP_FLAGS_REPLACE,
    XDP_FLAGS_SKB_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST,
};

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
pub(super) enum XdpPlan {
    /// Nothing attached.
    Fresh,
    /// Ours (left by a dead agent) in the wanted mode: replace it atomically.
    Replace { flag: u32, id: u32, old: ProgramFd },
    /// Ours, in other modes: detach them, then attach.
    Switch(Vec<(u32, u32, ProgramFd)>),
}

impl FastPath {
    /// Looks at the XDP programs on the interface; refuses one that is not ours, or ours held
    /// by a bpf_link.
    pub(super) fn plan_xdp(&self, facts: &IfaceFacts) -> Result<XdpPlan> {
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

    pub(super) fn attach_xdp(
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

    pub(super) fn detach_xdp(&mut self) -> Result<()> {
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
}
