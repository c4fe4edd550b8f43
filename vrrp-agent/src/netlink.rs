//! rtnetlink (I/O edge): the interface's addresses, adding and removing VIPs, address and link
//! notifications, and the VMACs in the interface's unicast filter.
use std::net::IpAddr;

use anyhow::{anyhow, Context as _, Result};
use futures::TryStreamExt as _;
use rtnetlink::{
    packet_route::{
        address::{AddressAttribute, AddressHeaderFlags, AddressMessage},
        neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState},
    },
    Handle,
};

use crate::config::Vip;

/// Opens an rtnetlink connection; its I/O task is spawned on the current runtime.
pub fn connect() -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().context("opening an rtnetlink socket")?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The addresses on interface `ifindex`, in the kernel's order (primary first).
pub async fn addresses(h: &Handle, ifindex: u32) -> Result<Vec<IpAddr>> {
    let mut s = h.address().get().set_link_index_filter(ifindex).execute();
    let mut out = Vec::new();
    while let Some(msg) = s.try_next().await.context("listing addresses")? {
        if msg.header.index != ifindex {
            continue;
        }
        let addr = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(a) => Some(*a),
            _ => None,
        });
        let addr = addr.or_else(|| {
            msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(a) => Some(*a),
                _ => None,
            })
        });
        // The kernel lists primary addresses before secondary ones.
        if let Some(a) = addr {
            out.push(a);
        }
    }
    Ok(out)
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Adds a VIP (IPv6: `nodad`, so it is usable at once). `Ok(true)`: added; `Ok(false)`: it was
/// there already.
pub async fn add_vip(h: &Handle, ifindex: u32, vip: Vip) -> Result<bool> {
    let mut req = h.address().add(ifindex, vip.addr, vip.prefix);
    if vip.addr.is_ipv6() {
        req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
    }
    match req.execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(anyhow!("adding VIP {vip}: {e}")),
    }
}

/// Removes a VIP. `Ok(true)`: removed; `Ok(false)`: it was not there.
pub async fn del_vip(h: &Handle, ifindex: u32, vip: Vip) -> Result<bool> {
    let mut msg = AddressMessage::default();
    msg.header.family = match vip.addr {
        IpAddr::V4(_) => rtnetlink::packet_route::AddressFamily::Inet,
        IpAddr::V6(_) => rtnetlink::packet_route::AddressFamily::Inet6,
    };
    msg.header.prefix_len = vip.prefix;
    msg.header.index = ifindex;
    msg.attributes.push(AddressAttribute::Local(vip.addr));
    if vip.addr.is_ipv6() {
        msg.attributes.push(AddressAttribute::Address(vip.addr));
    }
    match h.address().del(msg).execute().await {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                errno(&e),
                Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ESRCH)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(anyhow!("removing VIP {vip}: {e}")),
    }
}

/// A link or address notification of a watched interface, by ifindex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetEvent {
    /// The interface's IFF_RUNNING changed.
    Link { ifindex: u32, running: bool },
    /// An address of the interface changed (or notifications were lost).
    Addr { ifindex: u32, ev: AddrEvent },
}

/// Follows link state changes (RTNLGRP_LINK notifications) and reports each watched
/// interface's IFF_RUNNING when it changes. `watch`: ifindex → IFF_RUNNING now.
pub fn spawn_link_monitor(
    mut watch: std::collections::HashMap<u32, bool>,
    tx: tokio::sync::mpsc::UnboundedSender<NetEvent>,
) -> Result<()> {
    use futures::StreamExt as _;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::{link::LinkFlags, RouteNetlinkMessage};
    let (conn, _handle, mut messages) =
        rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])
            .context("subscribing to link notifications")?;
    tokio::spawn(conn);
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let (index, running) = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    (l.header.index, l.header.flags.contains(LinkFlags::Running))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    (l.header.index, false)
                }
                _ => continue,
            };
            if let Some(cur) = watch.get_mut(&index) {
                if *cur != running {
                    *cur = running;
                    let _ = tx.send(NetEvent::Link {
                        ifindex: index,
                        running,
                    });
                }
            }
        }
    });
    Ok(())
}

/// An address notification for a watched interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrEvent {
    /// RTM_NEWADDR (`present: true`) or RTM_DELADDR of a watched address.
    Changed { addr: IpAddr, present: bool },
    /// Notifications were lost (the socket's buffer overran): read the addresses again.
    Resync,
}

/// The addresses [`spawn_addr_monitor`] watches: ifindex → addresses. Shared with the
/// supervisor, which replaces an interface's list when a reload adds or drops VIPs.
pub type AddrWatch = std::sync::Arc<std::sync::RwLock<std::collections::HashMap<u32, Vec<IpAddr>>>>;

/// Follows address changes (RTNLGRP_IPV4_IFADDR / RTNLGRP_IPV6_IFADDR notifications) and
/// forwards those of the watched addresses of each watched interface to `tx`.
/// `watch`: ifindex → addresses, read at each notification. Subscribe before changing any
/// address, so that nothing is missed.
pub fn spawn_addr_monitor(
    watch: AddrWatch,
    tx: tokio::sync::mpsc::UnboundedSender<NetEvent>,
) -> Result<()> {
    use futures::StreamExt as _;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage;
    let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
        rtnetlink::MulticastGroup::Ipv4Ifaddr,
        rtnetlink::MulticastGroup::Ipv6Ifaddr,
    ])
    .context("subscribing to address notifications")?;
    tokio::spawn(conn);
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let (m, present) = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => (m, true),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => (m, false),
                NetlinkPayload::Overrun(_) => {
                    log::warn!("address notifications were lost; reading the addresses again");
                    let ifindexes: Vec<u32> = match watch.read() {
                        Ok(w) => w.keys().copied().collect(),
                        Err(p) => p.into_inner().keys().copied().collect(),
                    };
                    for ifindex in ifindexes {
                        let _ = tx.send(NetEvent::Addr {
                            ifindex,
                            ev: AddrEvent::Resync,
                        });
                    }
                    continue;
                }
                _ => continue,
            };
            let ifindex = m.header.index;
            let watched = |a: &IpAddr| {
                let w = match watch.read() {
                    Ok(w) => w,
                    Err(p) => p.into_inner(),
                };
                w.get(&ifindex).is_some_and(|addrs| addrs.contains(a))
            };
            if let Some(addr) = message_addr(&m).filter(watched) {
                let _ = tx.send(NetEvent::Addr {
                    ifindex,
                    ev: AddrEvent::Changed { addr, present },
                });
            }
        }
    });
    Ok(())
}

/// The address of an address message: IFA_LOCAL (IPv4; the peer's on point-to-point links is
/// IFA_ADDRESS), else IFA_ADDRESS (IPv6), as in [`addresses`].
fn message_addr(m: &AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(a) if local => Some(*a),
            AddressAttribute::Address(a) if !local => Some(*a),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

/// Puts a VMAC in the interface's unicast address filter (`bridge fdb add MAC dev IF self
/// permanent`). NICs that filter unicast in hardware drop frames to the VMAC before XDP sees
/// them; with the VMAC in the filter they arrive, and the XDP program rewrites them to the
/// interface's own MAC while the router is Master (see `vrrp-ebpf`: VMAC acceptance). Devices
/// without a unicast filter (veth) go promiscuous instead, which changes nothing for them.
/// Already present: fine.
pub async fn uc_filter_add(h: &Handle, ifindex: u32, mac: [u8; 6]) -> Result<()> {
    let req = h
        .neighbours()
        .add_bridge(ifindex, &mac)
        .flags(NeighbourFlags::Own);
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(anyhow!(
            "adding {} to the unicast filter: {e}",
            fmt_mac(mac)
        )),
    }
}

/// Takes a VMAC out of the unicast filter again. Not present: fine.
pub async fn uc_filter_del(h: &Handle, ifindex: u32, mac: [u8; 6]) -> Result<()> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = rtnetlink::packet_route::AddressFamily::Bridge;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    match h.neighbours().del(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::ENXIO)) => Ok(()),
        Err(e) => Err(anyhow!(
            "removing {} from the unicast filter: {e}",
            fmt_mac(mac)
        )),
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    crate::wire::MacAddr(m).to_string()
}

/// Watches the carrier (IFF_RUNNING) of interfaces by name, for `track = [{ interface = .. }]`
/// (`watch`: name → tracker): reports each one's state at the start and on each change as
/// [`crate::checks::Report::State`]. A missing interface is down; one that appears, is renamed
/// to the name or away from it, or goes away is followed. Subscribed before the first reading,
/// so no change in between is missed. The task is spawned into `tasks`.
pub fn spawn_iface_tracker(
    watch: std::collections::HashMap<String, usize>,
    tx: tokio::sync::mpsc::UnboundedSender<crate::checks::Report>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<()> {
    use futures::StreamExt as _;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::{
        link::{LinkAttribute, LinkFlags},
        RouteNetlinkMessage,
    };
    let (conn, _handle, mut messages) =
        rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])
            .context("subscribing to link notifications")?;
    tasks.spawn(conn);
    // name → (ifindex, running) as last reported.
    let mut state: std::collections::HashMap<String, (Option<u32>, bool)> = Default::default();
    let first = read_tracked(&watch, &mut state);
    for (name, &(_, up)) in &state {
        log::info!(
            "track interface {name}: {}",
            if up { "up" } else { "down (or missing)" }
        );
    }
    tasks.spawn(async move {
        let send = |changes: Vec<(usize, bool)>| {
            changes.into_iter().all(|(tracker, up)| {
                tx.send(crate::checks::Report::State { tracker, up })
                    .is_ok()
            })
        };
        if !send(first) {
            return;
        }
        while let Some((msg, _)) = messages.next().await {
            let (index, name, running) = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    let name = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    });
                    (
                        l.header.index,
                        name,
                        l.header.flags.contains(LinkFlags::Running),
                    )
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                    (l.header.index, None, false)
                }
                NetlinkPayload::Overrun(_) => {
                    log::warn!(
                        "link notifications were lost; reading the tracked interfaces again"
                    );
                    let changes = read_tracked(&watch, &mut state);
                    if !send(changes) {
                        return;
                    }
                    continue;
                }
                _ => continue,
            };
            let mut changes = Vec::new();
            // The interface that had this index under a tracked name: renamed away or gone.
            for (n, (idx, up)) in state.iter_mut() {
                if *idx == Some(index) && name.as_deref() != Some(n.as_str()) {
                    *idx = None;
                    if *up {
                        *up = false;
                        changes.push((watch[n], false));
                    }
                }
            }
            if let Some(n) = &name {
                if let Some((idx, up)) = state.get_mut(n) {
                    *idx = Some(index);
                    if *up != running {
                        *up = running;
                        changes.push((watch[n], running));
                    }
                }
            }
            if !send(changes) {
                return;
            }
        }
    });
    Ok(())
}

/// Reads the tracked interfaces now; returns the (tracker, running) that changed.
fn read_tracked(
    watch: &std::collections::HashMap<String, usize>,
    state: &mut std::collections::HashMap<String, (Option<u32>, bool)>,
) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for (name, &tracker) in watch {
        let now = match crate::rtnl::iface_facts(name) {
            Ok(f) => (Some(f.index), f.running),
            Err(_) => (None, false),
        };
        let before = state.insert(name.clone(), now);
        if before.map(|b| b.1) != Some(now.1) {
            out.push((tracker, now.1));
        }
    }
    out
}
