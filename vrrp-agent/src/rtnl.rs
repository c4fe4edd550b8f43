//! Synchronous rtnetlink requests (I/O edge) for the fast path's attachment and the facts of an
//! interface: the interface's index, MAC, IFF_RUNNING, kind and current XDP programs; attaching,
//! replacing and detaching XDP through `IFLA_XDP`; listing and removing tc `bpf` filters.
//!
//! Everything is asked of the kernel over a netlink socket opened by the calling thread, so it
//! answers for the network namespace that thread is in, however the process was started — never
//! from `/sys/class/net`, which shows the namespace `/sys` was mounted in (the host's, under a
//! setns-only launcher such as `nsenter --net` or systemd's `NetworkNamespacePath=`).
//!
//! These run where no tokio runtime may be (in `Drop`, on plain test threads) and take
//! microseconds, so they are blocking calls; the messages are `netlink-packet-route`'s (the crate
//! rtnetlink is built on), sent on a `netlink-sys` socket.
use std::{fmt, io};

use rtnetlink::{
    packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST},
    packet_route::{
        link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp},
        tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcMessage, TcOption},
        RouteNetlinkMessage,
    },
    sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr},
};

/// `XDP_FLAGS_UPDATE_IF_NOEXIST`: fail (EBUSY) if a program is attached in that mode.
pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
/// `XDP_FLAGS_SKB_MODE`: generic XDP.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native (driver) XDP.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `XDP_FLAGS_HW_MODE`: offloaded XDP.
pub const XDP_FLAGS_HW_MODE: u32 = 1 << 3;
/// `XDP_FLAGS_REPLACE`: act only if the attached program is `IFLA_XDP_EXPECTED_FD` (EEXIST
/// otherwise).
pub const XDP_FLAGS_REPLACE: u32 = 1 << 4;

/// The parent of a `clsact` qdisc's egress filters (`TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)`).
pub const TC_PARENT_EGRESS: u32 = 0xffff_fff3;

const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Bound on the datagrams read for one request (a dump of every filter of one interface is a
/// handful).
const MAX_DATAGRAMS: usize = 10_000;

/// A refused netlink request: the errno and the kernel's own explanation (extended ACK), if it
/// gave one ("XDP program already attached", ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: i32,
    pub msg: Option<String>,
}

impl NlError {
    fn io(e: io::Error) -> Self {
        NlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            msg: None,
        }
    }

    fn other(msg: String) -> Self {
        NlError {
            errno: libc::EIO,
            msg: Some(msg),
        }
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        if let Some(m) = &self.msg {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NlError {}

/// One rtnetlink socket, in the calling thread's network namespace.
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> Result<Self, NlError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NlError::io)?;
        sock.bind_auto().map_err(NlError::io)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(NlError::io)?;
        // Errors carry the request's header only, plus the kernel's message.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends `msg` (with `NLM_F_REQUEST | NLM_F_ACK | flags`) and returns the replies, up to the
    /// ACK (or, for a dump, `NLMSG_DONE`).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(NlError::io)?;

        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 64 * 1024];
        for _ in 0..MAX_DATAGRAMS {
            let n = self.sock.recv(&mut &mut rbuf[..], 0).map_err(NlError::io)?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(rbuf[off..off + 4].try_into().expect("4 bytes"));
                let len = len as usize;
                if len < 16 || off + len > n {
                    return Err(NlError::other(format!(
                        "truncated netlink reply ({len} bytes)"
                    )));
                }
                let raw = &rbuf[off..off + len];
                off += (len + 3) & !3;
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw)
                    .map_err(|e| NlError::other(format!("undecodable netlink reply: {e}")))?;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        let Some(code) = e.code else {
                            return Ok(out); // the ACK
                        };
                        return Err(NlError {
                            errno: -code.get(),
                            msg: ext_ack_msg(msg.header.flags, &e.header),
                        });
                    }
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
        Err(NlError::other(format!(
            "no end of the netlink reply after {MAX_DATAGRAMS} datagrams"
        )))
    }
}

/// The kernel's message in an error's extended-ACK attributes. `payload` is what follows the
/// error code: the request's header (or the whole request unless capped), then the attributes.
fn ext_ack_msg(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < 16 {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes(payload[..4].try_into().ok()?) as usize
    };
    let mut tlvs = payload.get((skip + 3) & !3..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let s = &tlvs[4..len];
            let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
            return Some(String::from_utf8_lossy(&s[..end]).into_owned());
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// The XDP programs attached to an interface, by mode (program ids).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpState {
    pub drv: Option<u32>,
    pub skb: Option<u32>,
    pub hw: Option<u32>,
}

impl XdpState {
    /// `(mode flag, program id)` of every attached program.
    pub fn attached(&self) -> Vec<(u32, u32)> {
        [
            (XDP_FLAGS_DRV_MODE, self.drv),
            (XDP_FLAGS_SKB_MODE, self.skb),
            (XDP_FLAGS_HW_MODE, self.hw),
        ]
        .into_iter()
        .filter_map(|(m, id)| Some((m, id?)))
        .collect()
    }
}

/// What the kernel says about an interface, in the calling thread's network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceFacts {
    pub name: String,
    pub index: u32,
    /// `IFLA_ADDRESS` (6 bytes on Ethernet).
    pub address: Vec<u8>,
    /// IFF_RUNNING: operationally up (operstate `up`, or `unknown` for drivers that do not
    /// report it).
    pub running: bool,
    /// `IFLA_INFO_KIND` (`veth`, `bridge`, ...); `None` for plain hardware devices.
    pub kind: Option<String>,
    pub xdp: XdpState,
}

impl IfaceFacts {
    /// The interface's Ethernet address.
    pub fn mac(&self) -> anyhow::Result<[u8; 6]> {
        <[u8; 6]>::try_from(self.address.as_slice()).map_err(|_| {
            anyhow::anyhow!(
                "{} has no Ethernet address (link-layer address {}); VRRP needs an Ethernet \
                 interface",
                self.name,
                if self.address.is_empty() {
                    "none".to_owned()
                } else {
                    self.address
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":")
                }
            )
        })
    }

    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }
}

/// The facts of interface `name` (RTM_GETLINK by name). A missing interface is the one-line
/// error "no such interface 'X' (list them with `ip link`)".
pub fn iface_facts(name: &str) -> anyhow::Result<IfaceFacts> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        anyhow::bail!("no such interface '{name}' (list them with `ip link`)");
    }
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    let replies = Rtnl::open()
        .and_then(|mut nl| nl.request(RouteNetlinkMessage::GetLink(msg), 0))
        .map_err(|e| match e.errno {
            libc::ENODEV | libc::EINVAL => {
                anyhow::anyhow!("no such interface '{name}' (list them with `ip link`)")
            }
            _ => anyhow::anyhow!("asking the kernel about interface '{name}': {e}"),
        })?;
    replies
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(facts_of(name, l)),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no such interface '{name}' (list them with `ip link`)"))
}

fn facts_of(name: &str, l: LinkMessage) -> IfaceFacts {
    let mut f = IfaceFacts {
        name: name.to_owned(),
        index: l.header.index,
        address: Vec::new(),
        running: l.header.flags.contains(LinkFlags::Running),
        kind: None,
        xdp: XdpState::default(),
    };
    for a in l.attributes {
        match a {
            LinkAttribute::Address(a) => f.address = a,
            LinkAttribute::IfName(n) => f.name = n,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        f.kind = Some(match k {
                            InfoKind::Veth => "veth".to_owned(),
                            k => k.to_string(),
                        });
                    }
                }
            }
            LinkAttribute::Xdp(xdp) => {
                for x in xdp {
                    match x {
                        LinkXdp::DrvProgId(id) if id != 0 => f.xdp.drv = Some(id),
                        LinkXdp::SkbProgId(id) if id != 0 => f.xdp.skb = Some(id),
                        LinkXdp::HwProgId(id) if id != 0 => f.xdp.hw = Some(id),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// `IFLA_XDP` on interface `ifindex`: attaches program `fd` (-1: detaches) with `flags` (a mode
/// flag, plus `XDP_FLAGS_UPDATE_IF_NOEXIST` or `XDP_FLAGS_REPLACE`); with `expected`, the kernel
/// acts only if that program (an fd of it) is the one attached (EEXIST otherwise).
///
/// A program attached this way belongs to the device, not to the process: it stays attached
/// (with its maps) until it is detached or replaced, or the device goes away.
pub fn xdp_set(ifindex: u32, fd: i32, flags: u32, expected: Option<i32>) -> Result<(), NlError> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let mut xdp = vec![LinkXdp::Fd(fd), LinkXdp::Flags(flags)];
    if let Some(e) = expected {
        xdp.push(LinkXdp::ExpectedFd(e as u32));
    }
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    Rtnl::open()?
        .request(RouteNetlinkMessage::SetLink(msg), 0)
        .map(drop)
}

/// A tc `bpf` filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfFilter {
    pub prio: u16,
    /// The filter's protocol as the kernel holds it (network byte order in the low 16 bits of
    /// `tcm_info`).
    pub protocol: u16,
    pub handle: u32,
    /// `TCA_BPF_NAME`, as the attacher gave it.
    pub name: Option<String>,
    pub prog_id: Option<u32>,
}

/// The `bpf` filters under `parent` (e.g. [`TC_PARENT_EGRESS`]) of interface `ifindex`. No
/// qdisc there: no filters.
pub fn bpf_filters(ifindex: u32, parent: u32) -> Result<Vec<BpfFilter>, NlError> {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = TcHandle::from(parent);
    let replies =
        match Rtnl::open()?.request(RouteNetlinkMessage::GetTrafficFilter(msg), NLM_F_DUMP) {
            Ok(r) => r,
            Err(e) if matches!(e.errno, libc::EINVAL | libc::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
    let mut out = Vec::new();
    for m in replies {
        let RouteNetlinkMessage::NewTrafficFilter(m) = m else {
            continue;
        };
        if m.header.index != ifindex as i32 || u32::from(m.header.parent) != parent {
            continue;
        }
        let handle = u32::from(m.header.handle);
        let mut f = BpfFilter {
            prio: (m.header.info >> 16) as u16,
            protocol: m.header.info as u16,
            handle,
            name: None,
            prog_id: None,
        };
        let mut bpf = false;
        for a in m.attributes {
            match a {
                TcAttribute::Kind(k) => bpf = k == "bpf",
                TcAttribute::Options(opts) => {
                    for o in opts {
                        match o {
                            TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => f.name = Some(n),
                            TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => f.prog_id = Some(id),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // handle 0 is the priority's own entry (the classifier instance), not a filter.
        if bpf && handle != 0 {
            out.push(f);
        }
    }
    Ok(out)
}

/// The kind of the qdisc at `ffff:` of interface `ifindex` (`clsact` or `ingress`), if there is
/// one. The two exclude each other, and filters for `clsact`'s egress parent land on an
/// `ingress` qdisc's (only) block: what is there must be checked before attaching.
pub fn ingress_qdisc_kind(ifindex: u32) -> Result<Option<String>, NlError> {
    const TC_H_INGRESS: u32 = 0xffff_fff1;
    let msg = TcMessage::with_index(ifindex as i32);
    let replies =
        Rtnl::open()?.request(RouteNetlinkMessage::GetQueueDiscipline(msg), NLM_F_DUMP)?;
    Ok(replies.into_iter().find_map(|m| match m {
        RouteNetlinkMessage::NewQueueDiscipline(m)
            if m.header.index == ifindex as i32 && u32::from(m.header.parent) == TC_H_INGRESS =>
        {
            m.attributes.into_iter().find_map(|a| match a {
                TcAttribute::Kind(k) => Some(k),
                _ => None,
            })
        }
        _ => None,
    }))
}

/// Removes filter (`prio`, `protocol`, `handle`) under `parent` of interface `ifindex`.
pub fn del_filter(ifindex: u32, parent: u32, f: &BpfFilter) -> Result<(), NlError> {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = TcHandle::from(parent);
    msg.header.handle = TcHandle::from(f.handle);
    msg.header.info = (u32::from(f.prio) << 16) | u32::from(f.protocol);
    Rtnl::open()?
        .request(RouteNetlinkMessage::DelTrafficFilter(msg), 0)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_facts_come_from_netlink() {
        let f = iface_facts("lo").unwrap();
        assert_eq!(f.index, 1);
        assert_eq!(f.address, vec![0; 6]);
        assert_eq!(f.kind, None);
    }

    #[test]
    fn a_missing_interface_is_one_clear_line() {
        for name in ["nosuchif0", "", "a-name-far-too-long-for-linux"] {
            let e = iface_facts(name).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("no such interface '{name}' (list them with `ip link`)")
            );
        }
    }

    #[test]
    fn ext_ack_message_is_read_from_capped_errors() {
        // 16 bytes of request header, then NLMSGERR_ATTR_MSG "no".
        let mut p = vec![0u8; 16];
        p.extend_from_slice(&7u16.to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(b"no\0\0");
        assert_eq!(
            ext_ack_msg(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).as_deref(),
            Some("no")
        );
        assert_eq!(ext_ack_msg(NLM_F_CAPPED, &p), None);
    }
}
