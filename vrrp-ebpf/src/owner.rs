//! Ownership of a virtual router as the fast path sees it, fail-safe included: a router is only
//! "owned" while the agent's heartbeat is fresh. Every feature (ARP, NS/NA, VMAC accept,
//! Accept_Mode, egress) asks [`owner`].
use aya_ebpf::helpers::bpf_ktime_get_ns;
use vrrp_common::{vrid_slot, ROUTER_ACCEPT, ROUTER_OWNED};

use crate::{HEARTBEAT, ROUTERS};

/// What the fast path may do for a virtual router right now.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Not Master (or no such router). ARP/NS for its VIPs are dropped.
    NotOwned,
    /// Master, but the agent's heartbeat is older than the router's fail-safe bound: the agent is
    /// gone or stuck. Treated as not owned (ARP/NS for its VIPs dropped).
    Stale,
    /// Master and the agent is alive; `accept`: Accept_Mode.
    Fresh { accept: bool },
}

/// Ownership of virtual router (`family`, `vrid`), fail-safe included: fresh means
/// `bpf_ktime_get_ns() - HEARTBEAT[0] <= stale_after_ns`, or `stale_after_ns == 0` (no bound).
/// A heartbeat from the future (the subtraction wraps) counts as stale.
#[inline(always)]
pub fn owner(family: u8, vrid: u8) -> Owner {
    let Some(r) = ROUTERS.get(vrid_slot(family, vrid)) else {
        return Owner::NotOwned;
    };
    let flags = r.flags;
    let stale_after = r.stale_after_ns;
    if flags & ROUTER_OWNED == 0 {
        return Owner::NotOwned;
    }
    let accept = flags & ROUTER_ACCEPT != 0;
    if stale_after == 0 {
        return Owner::Fresh { accept };
    }
    let Some(hb) = HEARTBEAT.get(0) else {
        return Owner::Stale;
    };
    // Heartbeat first, clock second: a heartbeat written just before we read it is never "in
    // the future" of `now`.
    let hb = *hb;
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(hb) <= stale_after {
        Owner::Fresh { accept }
    } else {
        Owner::Stale
    }
}
