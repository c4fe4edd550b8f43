//! VMAC acceptance: a frame addressed to the VMAC of a virtual router we own (fresh heartbeat)
//! gets its Ethernet destination rewritten to the interface's own MAC (`IFACE[0]`), so the
//! kernel takes it as PACKET_HOST; then it is classified like any other frame. This runs before
//! classification and is not an outcome (it has counters of its own).
//!
//! Why rewrite rather than add the VMAC to the NIC's unicast address list: the kernel classifies
//! a frame as PACKET_HOST only if its destination is `dev->dev_addr`; a secondary unicast
//! address (`dev_uc_add`, `bridge fdb add ... self`) only makes the NIC *receive* it, after
//! which the stack still sees PACKET_OTHERHOST and drops it (that is why keepalived uses a
//! macvlan with the VMAC as its own address). Rewriting here needs no extra device, follows
//! ownership and the fail-safe atomically with the ARP/NS answers (one map, one heartbeat), and
//! stops the moment the router is no longer owned or the agent is gone.
//!
//! On a NIC that filters unicast in hardware the frame must still get *to* XDP: there the VMAC
//! has to be in the NIC's unicast filter as well — user space's job while it owns the router
//! (`bridge fdb add VMAC dev IF self permanent`, i.e. RTM_NEWNEIGH AF_BRIDGE NTF_SELF, which
//! ends in `dev_uc_add`; or promiscuous mode). veth, bridge ports and promiscuous devices see
//! every frame and need nothing.
use aya_ebpf::programs::XdpContext;
use vrrp_common::{Counter, FAMILY_IPV4, FAMILY_IPV6};

use crate::{
    counter::count,
    owner::{owner, Owner},
    parse::{is_zero6, ptr_at_mut, sub},
    IFACE,
};

/// Rewrites the destination of a frame to the VMAC of an owned router to the interface's MAC.
#[inline(always)]
pub fn accept_vmac(ctx: &XdpContext) {
    let Some(dst) = ptr_at_mut::<[u8; 6]>(ctx, 0) else {
        return;
    };
    // SAFETY: in bounds (ptr_at_mut).
    let d = unsafe { *dst };
    if u32::from_be_bytes(sub(&d, 0)) != 0x0000_5e00 {
        return;
    }
    let family = match d[4] {
        1 => FAMILY_IPV4,
        2 => FAMILY_IPV6,
        _ => return,
    };
    match owner(family, d[5]) {
        Owner::Fresh { .. } => {
            let mac = match IFACE.get(0) {
                Some(c) => c.mac,
                None => [0; 6],
            };
            if is_zero6(mac) {
                count(Counter::VmacNoIfaceMac);
                return;
            }
            // SAFETY: in bounds (ptr_at_mut); [u8; 6] has alignment 1.
            unsafe { dst.write(mac) };
            count(Counter::VmacRewritten);
        }
        _ => count(Counter::VmacNotOwned),
    }
}
