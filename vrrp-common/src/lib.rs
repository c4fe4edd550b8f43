//! The kernel/user ABI of vrrp-agent: map layouts and ring-buffer events shared by the XDP
//! program (`vrrp-ebpf`) and the user-space agent (`vrrp-agent`).
//!
//! Only plain `#[repr(C)]` data lives here, laid out without implicit padding so that it can be
//! `bytemuck::Pod` on the user side. No protocol logic: parsing and validation of the VRRP
//! payload happen in user space (`vrrp_agent::wire`).
#![no_std]

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;

/// How many bytes of the VRRP message the XDP program copies into an [`AdvertEvent`].
///
/// 256 bytes hold a VRRPv3 IPv6 advert with 15 addresses, a v3 IPv4 advert with 62 addresses or
/// a v2 advert with 60 addresses and its password. A longer message is still delivered, with
/// [`AdvertEvent::captured_len`] < [`AdvertEvent::payload_len`], and user space refuses it
/// (its checksum cannot be verified) and counts it.
pub const VRRP_PAYLOAD_MAX: usize = 256;

/// Size of the advert ring buffer in bytes (a power of two and a multiple of the page size).
pub const EVENTS_RING_BYTES: u32 = 256 * 1024;

/// Slots in the `VRIDS` map: one per VRID for IPv4 followed by one per VRID for IPv6.
pub const VRID_SLOTS: u32 = 512;

/// `VRIDS` value bit: adverts of this virtual router go to user space (each one wakes the
/// reader unless [`VRID_QUIET`] is set too).
pub const VRID_ON: u32 = 1 << 0;
/// `VRIDS` value bit: a *routine* advert of this virtual router (see [`LastAdvert`]) may be
/// queued without waking the reader. Only for a reader that drains the ring whenever it wakes,
/// before it judges any timer (election mode); a reader that reports every advert as it comes
/// (monitor mode, the lab tools) leaves it clear.
pub const VRID_QUIET: u32 = 1 << 1;

/// Address family tags used in events and map keys.
pub const FAMILY_IPV4: u8 = 4;
pub const FAMILY_IPV6: u8 = 6;

/// Index into the `VRIDS` array for a (family, VRID) pair. A non-zero value at that index means
/// "adverts for this virtual router are consumed and handed to user space" ([`VRID_ON`],
/// [`VRID_QUIET`]).
#[inline(always)]
pub const fn vrid_slot(family: u8, vrid: u8) -> u32 {
    if family == FAMILY_IPV6 {
        256 + vrid as u32
    } else {
        vrid as u32
    }
}

/// The virtual router MAC address (RFC 9568 §7.3): 00:00:5e:00:01:VRID for an IPv4 virtual
/// router, 00:00:5e:00:02:VRID for an IPv6 one.
#[inline(always)]
pub const fn vmac(family: u8, vrid: u8) -> [u8; 6] {
    let kind = if family == FAMILY_IPV6 { 2 } else { 1 };
    [0x00, 0x00, 0x5e, 0x00, kind, vrid]
}

/// `AdvertEvent::flags`: the frame carried an 802.1Q / 802.1ad tag.
pub const EVENT_FLAG_VLAN: u8 = 1 << 0;
/// `AdvertEvent::flags`: the VRRP message was longer than [`VRRP_PAYLOAD_MAX`].
pub const EVENT_FLAG_TRUNCATED: u8 = 1 << 1;

/// One received VRRP advert, as handed from the XDP program to user space through the `EVENTS`
/// ring buffer. Multi-byte integers are in host byte order; addresses and payload are copied
/// verbatim from the wire (network byte order).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AdvertEvent {
    /// `bpf_ktime_get_ns()` when the XDP program saw the frame (CLOCK_MONOTONIC, ns).
    pub rx_time_ns: u64,
    /// Interface the frame arrived on.
    pub ifindex: u32,
    /// Length of the VRRP message according to the IP header (IPv4 total length − header
    /// length; IPv6 payload length).
    pub payload_len: u16,
    /// Bytes of the VRRP message copied into `payload`.
    pub captured_len: u16,
    /// Ethernet source address.
    pub src_mac: [u8; 6],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// 802.1Q VLAN ID (valid when `flags & EVENT_FLAG_VLAN`).
    pub vlan_id: u16,
    /// `EVENT_FLAG_*` bits.
    pub flags: u8,
    pub _pad0: u8,
    pub _pad1: u32,
    /// IP source address (IPv4 in the first 4 bytes, rest zero).
    pub src_ip: [u8; 16],
    /// IP destination address (IPv4 in the first 4 bytes, rest zero).
    pub dst_ip: [u8; 16],
    /// The VRRP message, `captured_len` bytes valid.
    pub payload: [u8; VRRP_PAYLOAD_MAX],
}

/// What the last advert of a virtual router the XDP program handed to user space looked like,
/// per CPU in the `LAST_ADVERTS` array at [`vrid_slot`]`(family, vrid)`: its IP source address
/// and the 8-byte fixed VRRP header (version/type, VRID, priority, count, interval / auth type,
/// checksum: the checksum changes with the address list, so an identical header means an
/// identical advert). An advert equal to it, of a router we do not own, with a priority other
/// than 0, is *routine*: it goes into the ring without a wake-up ([`Counter::VrrpQuiet`]).
/// Kept as words so the comparison is three loads, no `memcmp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastAdvert {
    /// The IP source address (16 bytes, IPv4 in the first 4), native-endian words.
    pub src: [u64; 2],
    /// The fixed VRRP header, a native-endian word.
    pub hdr: u64,
}

impl LastAdvert {
    #[inline(always)]
    pub fn new(src_ip: &[u8; 16], hdr: &[u8; 8]) -> Self {
        let w = |o: usize| {
            u64::from_ne_bytes([
                src_ip[o],
                src_ip[o + 1],
                src_ip[o + 2],
                src_ip[o + 3],
                src_ip[o + 4],
                src_ip[o + 5],
                src_ip[o + 6],
                src_ip[o + 7],
            ])
        };
        Self {
            src: [w(0), w(8)],
            hdr: u64::from_ne_bytes(*hdr),
        }
    }
}

/// Per-virtual-router state the fast path acts on, in the `ROUTERS` array at
/// [`vrid_slot`]`(family, vrid)`. Written by the agent when the state machine changes state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterState {
    /// `ROUTER_*` bits.
    pub flags: u32,
    pub _pad: u32,
    /// Fail-safe bound: when the agent's heartbeat (`HEARTBEAT[0]`) is older than this, the
    /// router is treated as not owned (no ARP/NS answers, no VMAC frames accepted) and requests
    /// for its VIPs are dropped so the kernel does not answer them either. 0 = no bound.
    pub stale_after_ns: u64,
}

/// `RouterState::flags`: we are Master: answer ARP/NS for the VIPs with the VMAC and accept
/// frames addressed to the VMAC.
pub const ROUTER_OWNED: u32 = 1 << 0;
/// `RouterState::flags`: Accept_Mode (RFC 9568 §6.1): an owned router also accepts IP packets
/// addressed to its VIPs. Without it, the fast path drops them (ARP/ND still answered).
pub const ROUTER_ACCEPT: u32 = 1 << 1;

/// A virtual address, value of the `VIPS_V4` (key: 4 address bytes, network order) and
/// `VIPS_V6` (key: 16 address bytes) hash maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VipEntry {
    /// Virtual router the address belongs to (with the map's family, gives the `ROUTERS` slot
    /// and the VMAC 00:00:5e:00:0{1,2}:vrid).
    pub vrid: u8,
    pub _pad: [u8; 3],
    pub _pad2: u32,
}

/// Most VIPs per family the fast path holds.
pub const MAX_VIPS: u32 = 1024;

/// The interface the program is attached to, `IFACE[0]`: its own MAC, which frames addressed
/// to an owned VMAC are rewritten to so the kernel takes them as PACKET_HOST.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceConfig {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Per-CPU counters kept by the XDP program and the TC egress classifier in the `COUNTERS`
/// array, indexed by this enum.
///
/// Every frame the XDP program sees increments [`Counter::Frames`] and exactly one *outcome*
/// counter (the ones for which [`Counter::is_outcome`] is true), so the outcomes always add up to
/// `Frames`. Likewise every frame the egress classifier sees increments
/// [`Counter::EgressFrames`] and exactly one egress outcome ([`Counter::is_egress_outcome`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Every frame the program saw.
    Frames = 0,
    /// Outcome: not IPv4, IPv6 or ARP; passed.
    PassNotIp,
    /// Outcome: IPv4/IPv6 but not VRRP; passed.
    PassIpOther,
    /// Outcome: an ARP frame that is not a request for one of our VIPs (a reply, another
    /// target, not Ethernet/IPv4); passed.
    ArpSeen,
    /// Outcome: VRRP for a configured VRID; handed to user space and consumed (XDP_DROP).
    VrrpToUser,
    /// Outcome: VRRP for a VRID not in `VRIDS`; passed untouched.
    VrrpOtherVrid,
    /// Outcome: VRRP for a configured VRID but the ring buffer was full; passed.
    RingbufFull,
    /// Outcome: VRRP in an IP fragment; passed.
    VrrpFragment,
    /// Outcome: frame shorter than its Ethernet / VLAN header; passed.
    MalformedL2,
    /// Outcome: IP header truncated or inconsistent (version, IHL, a length beyond the frame);
    /// passed.
    MalformedL3,
    /// Outcome: VRRP message shorter than its fixed header; passed.
    MalformedVrrp,
    /// Not an outcome: the frame had a VLAN tag.
    VlanTagged,
    /// Not an outcome: the VRRP message was longer than the event can carry.
    VrrpTruncatedCapture,
    /// Outcome: ARP request for a VIP of an owned, fresh router; answered with the VMAC
    /// (XDP_TX).
    ArpReplied,
    /// Outcome: ARP request for a VIP of a router we do not own (Backup, or Master on its way
    /// out); dropped (XDP_DROP) so the kernel, which may still have the VIP configured, does not
    /// answer it with the interface's real MAC.
    ArpVipNotOwned,
    /// Outcome: ARP request whose sender IP is the VIP itself (a peer's gratuitous ARP); passed,
    /// never answered.
    ArpFromVip,
    /// Outcome: Neighbor Solicitation for a VIP of an owned, fresh router; answered with a
    /// Neighbor Advertisement carrying the VMAC (XDP_TX).
    NsReplied,
    /// Outcome: Neighbor Solicitation for a VIP of a router we do not own; dropped (XDP_DROP),
    /// for the same reason as [`Counter::ArpVipNotOwned`].
    NsVipNotOwned,
    /// Outcome: Neighbor Solicitation for a VIP that fails RFC 4861 §7.1.1 validation (hop
    /// limit, code, length, DAD not to a solicited-node group, a multicast source); passed (the
    /// kernel drops it).
    NsInvalid,
    /// Outcome: the frame could not be resized into the Neighbor Advertisement
    /// (`bpf_xdp_adjust_tail` refused); passed.
    NaResizeFailed,
    /// Outcome: ARP request / Neighbor Solicitation for a VIP of a router we own but whose
    /// heartbeat is stale (fail-safe: the agent is gone); dropped so the kernel does not answer
    /// it either.
    VipStaleDropped,
    /// Outcome: IP packet addressed to a VIP of an owned router without Accept_Mode; dropped.
    VipNotAccepted,
    /// Outcome: IP packet addressed to a VIP of an owned router with Accept_Mode; passed.
    VipAccepted,
    /// Not an outcome: the Ethernet destination was an owned, fresh VMAC and was rewritten to the
    /// interface's MAC.
    VmacRewritten,
    /// Not an outcome: the Ethernet destination was a VMAC (00:00:5e:00:01:xx / 00:00:5e:00:02:xx)
    /// of a router we do not own or whose heartbeat is stale; left alone (the kernel drops it
    /// as PACKET_OTHERHOST).
    VmacNotOwned,
    /// Not an outcome: the Ethernet destination was an owned, fresh VMAC but `IFACE[0]` holds no
    /// MAC yet; left alone.
    VmacNoIfaceMac,

    // The TC egress classifier (`vrrp_tc_egress`) counts in the same array, in its own set:
    // every egress frame bumps `EgressFrames` and exactly one egress outcome (the counters for
    // which [`Counter::is_egress_outcome`] is true). None of these is an XDP outcome, so the
    // XDP invariant (outcomes == `Frames`) is unaffected.
    /// Egress, not an outcome: every frame the egress classifier saw.
    EgressFrames,
    /// Egress outcome: not IPv4, IPv6 or ARP; untouched.
    EgressNotIp,
    /// Egress outcome: shorter than the headers it claims (or an IP version mismatch);
    /// untouched.
    EgressMalformed,
    /// Egress outcome: IPv4 / IPv6 / ARP whose source address is not a VIP; untouched.
    EgressSrcNotVip,
    /// Egress outcome: an IP packet (not ARP / ND) whose source address is a VIP of a router we
    /// do not own; untouched.
    EgressVipNotOwned,
    /// Egress outcome: an IP packet (not ARP / ND) whose source address is a VIP of a router we
    /// own whose heartbeat is stale; untouched.
    EgressVipStale,
    /// Egress outcome: IP packet from a VIP of an owned, fresh router; Ethernet source rewritten
    /// to the VMAC (also Neighbor Discovery messages without a link-layer address option equal to
    /// the interface MAC).
    EgressIpRewritten,
    /// Egress outcome: NS / NA / RS from a VIP of an owned, fresh router; Ethernet source and the
    /// source/target link-layer address option rewritten to the VMAC, ICMPv6 checksum updated.
    EgressNdRewritten,
    /// Egress outcome: ARP (request or reply) whose sender IP is a VIP of an owned, fresh
    /// router; Ethernet source and ARP sender MAC rewritten to the VMAC.
    EgressArpRewritten,
    /// Egress outcome: a rewrite helper (`bpf_skb_store_bytes`, `bpf_l4_csum_replace`) failed;
    /// the frame is sent as far as it was rewritten.
    EgressRewriteFailed,
    /// Egress, not an outcome: a Neighbor Discovery message from an owned VIP with no
    /// link-layer address option equal to the interface MAC (left alone).
    EgressNdNoLladdr,
    /// Egress outcome: ARP whose sender IP is a VIP, or ND (RS / NS / NA) whose IPv6 source is
    /// a VIP (NA: or whose target is one), of a router we do not own; dropped, so the kernel
    /// cannot announce the VIP with the interface's real MAC.
    EgressNeighDroppedNotOwned,
    /// Egress outcome: the same for a router we own whose heartbeat is stale (the fail-safe:
    /// the agent is gone but the VIPs are still configured); dropped.
    EgressNeighDroppedStale,

    // Appended after the egress set (indexes are the map's ABI; new counters go last).
    /// Outcome: ARP request / Neighbor Solicitation for one of our VIPs from a group (multicast
    /// or broadcast) hardware address: the Ethernet source, the ARP sender hardware address or
    /// the NS source link-layer address option. Never answered, whatever the router's state:
    /// dropped (XDP_DROP). A station's address is never a group address (IEEE 802 I/G bit); an
    /// answer would go to a group (a flood or reflection), and RFC 1812 §3.3.2 forbids a router
    /// to believe a group link-layer address for a host. Dropped as FreeBSD's ARP input does
    /// ("is multicast"); not passed, since Linux (6.18, tried in namespaces) answers such a
    /// request itself.
    GroupSenderDropped,
    /// Not an outcome (XDP): a *routine* advert, also counted as [`Counter::VrrpToUser`]:
    /// equal to the last one this CPU handed up for its virtual router ([`LastAdvert`]), of a
    /// router we do not own, priority not 0. It went into the ring without waking the agent,
    /// which reads it at its next wake-up (at the latest its Master_Down_Timer), before any
    /// timer is judged.
    VrrpQuiet,
}

impl Counter {
    /// Number of counters (size of the `COUNTERS` array).
    pub const COUNT: u32 = 41;

    /// All counters in index order.
    pub const ALL: [Counter; Self::COUNT as usize] = [
        Counter::Frames,
        Counter::PassNotIp,
        Counter::PassIpOther,
        Counter::ArpSeen,
        Counter::VrrpToUser,
        Counter::VrrpOtherVrid,
        Counter::RingbufFull,
        Counter::VrrpFragment,
        Counter::MalformedL2,
        Counter::MalformedL3,
        Counter::MalformedVrrp,
        Counter::VlanTagged,
        Counter::VrrpTruncatedCapture,
        Counter::ArpReplied,
        Counter::ArpVipNotOwned,
        Counter::ArpFromVip,
        Counter::NsReplied,
        Counter::NsVipNotOwned,
        Counter::NsInvalid,
        Counter::NaResizeFailed,
        Counter::VipStaleDropped,
        Counter::VipNotAccepted,
        Counter::VipAccepted,
        Counter::VmacRewritten,
        Counter::VmacNotOwned,
        Counter::VmacNoIfaceMac,
        Counter::EgressFrames,
        Counter::EgressNotIp,
        Counter::EgressMalformed,
        Counter::EgressSrcNotVip,
        Counter::EgressVipNotOwned,
        Counter::EgressVipStale,
        Counter::EgressIpRewritten,
        Counter::EgressNdRewritten,
        Counter::EgressArpRewritten,
        Counter::EgressRewriteFailed,
        Counter::EgressNdNoLladdr,
        Counter::EgressNeighDroppedNotOwned,
        Counter::EgressNeighDroppedStale,
        Counter::GroupSenderDropped,
        Counter::VrrpQuiet,
    ];

    /// Stable snake_case name, used in logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Frames => "frames",
            Counter::PassNotIp => "pass_not_ip",
            Counter::PassIpOther => "pass_ip_other",
            Counter::ArpSeen => "arp_seen",
            Counter::VrrpToUser => "vrrp_to_user",
            Counter::VrrpOtherVrid => "vrrp_other_vrid",
            Counter::RingbufFull => "ringbuf_full",
            Counter::VrrpFragment => "vrrp_fragment",
            Counter::MalformedL2 => "malformed_l2",
            Counter::MalformedL3 => "malformed_l3",
            Counter::MalformedVrrp => "malformed_vrrp",
            Counter::VlanTagged => "vlan_tagged",
            Counter::VrrpTruncatedCapture => "vrrp_truncated_capture",
            Counter::ArpReplied => "arp_replied",
            Counter::ArpVipNotOwned => "arp_vip_not_owned",
            Counter::ArpFromVip => "arp_from_vip",
            Counter::NsReplied => "ns_replied",
            Counter::NsVipNotOwned => "ns_vip_not_owned",
            Counter::NsInvalid => "ns_invalid",
            Counter::NaResizeFailed => "na_resize_failed",
            Counter::VipStaleDropped => "vip_stale_dropped",
            Counter::VipNotAccepted => "vip_not_accepted",
            Counter::VipAccepted => "vip_accepted",
            Counter::VmacRewritten => "vmac_rewritten",
            Counter::VmacNotOwned => "vmac_not_owned",
            Counter::VmacNoIfaceMac => "vmac_no_iface_mac",
            Counter::EgressFrames => "egress_frames",
            Counter::EgressNotIp => "egress_not_ip",
            Counter::EgressMalformed => "egress_malformed",
            Counter::EgressSrcNotVip => "egress_src_not_vip",
            Counter::EgressVipNotOwned => "egress_vip_not_owned",
            Counter::EgressVipStale => "egress_vip_stale",
            Counter::EgressIpRewritten => "egress_ip_rewritten",
            Counter::EgressNdRewritten => "egress_nd_rewritten",
            Counter::EgressArpRewritten => "egress_arp_rewritten",
            Counter::EgressRewriteFailed => "egress_rewrite_failed",
            Counter::EgressNdNoLladdr => "egress_nd_no_lladdr",
            Counter::EgressNeighDroppedNotOwned => "egress_neigh_dropped_not_owned",
            Counter::EgressNeighDroppedStale => "egress_neigh_dropped_stale",
            Counter::GroupSenderDropped => "group_sender_dropped",
            Counter::VrrpQuiet => "vrrp_quiet",
        }
    }

    /// True for the counters of which every frame the XDP program sees increments exactly one.
    pub const fn is_outcome(self) -> bool {
        !self.is_egress()
            && !matches!(
                self,
                Counter::Frames
                    | Counter::VlanTagged
                    | Counter::VrrpTruncatedCapture
                    | Counter::VmacRewritten
                    | Counter::VmacNotOwned
                    | Counter::VmacNoIfaceMac
                    | Counter::VrrpQuiet
            )
    }

    /// True for the counters of the TC egress classifier (a contiguous range; counters
    /// appended after it are the XDP program's).
    pub const fn is_egress(self) -> bool {
        self as u32 >= Counter::EgressFrames as u32
            && self as u32 <= Counter::EgressNeighDroppedStale as u32
    }

    /// True for the counters of which every frame the egress classifier sees increments exactly
    /// one (they add up to [`Counter::EgressFrames`]).
    pub const fn is_egress_outcome(self) -> bool {
        self.is_egress() && !matches!(self, Counter::EgressFrames | Counter::EgressNdNoLladdr)
    }
}

#[cfg(feature = "user")]
mod user {
    use super::AdvertEvent;

    // SAFETY: AdvertEvent is repr(C), made only of integers and byte arrays, with no implicit
    // padding (checked by the size assertion below).
    unsafe impl aya::Pod for AdvertEvent {}
    unsafe impl bytemuck::Zeroable for AdvertEvent {}
    unsafe impl bytemuck::Pod for AdvertEvent {}

    // SAFETY: repr(C) integers/byte arrays without implicit padding (explicit _pad fields).
    unsafe impl aya::Pod for super::RouterState {}
    unsafe impl aya::Pod for super::VipEntry {}
    unsafe impl aya::Pod for super::IfaceConfig {}
    unsafe impl aya::Pod for super::LastAdvert {}
    const _: () = assert!(core::mem::size_of::<super::LastAdvert>() == 24);
    const _: () = assert!(core::mem::size_of::<super::RouterState>() == 16);
    const _: () = assert!(core::mem::size_of::<super::VipEntry>() == 8);
    const _: () = assert!(core::mem::size_of::<super::IfaceConfig>() == 8);

    const _: () = assert!(
        core::mem::size_of::<AdvertEvent>() == 64 + super::VRRP_PAYLOAD_MAX,
        "AdvertEvent must have no implicit padding"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_indices_match_all() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32, "{}", c.name());
        }
    }

    #[test]
    fn counter_names_are_unique() {
        for (i, a) in Counter::ALL.iter().enumerate() {
            for b in &Counter::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn outcome_sets_are_disjoint() {
        for c in Counter::ALL {
            assert!(!(c.is_outcome() && c.is_egress_outcome()), "{}", c.name());
            assert_eq!(
                c.is_egress(),
                c.name().starts_with("egress_"),
                "{}",
                c.name()
            );
        }
        assert!(!Counter::Frames.is_outcome() && !Counter::EgressFrames.is_egress_outcome());
        assert!(
            Counter::ArpVipNotOwned.is_outcome() && Counter::EgressSrcNotVip.is_egress_outcome()
        );
        assert!(
            Counter::GroupSenderDropped.is_outcome() && !Counter::GroupSenderDropped.is_egress()
        );
        // Appended after the egress set: an XDP counter, not an outcome.
        assert!(
            !Counter::VrrpQuiet.is_egress()
                && !Counter::VrrpQuiet.is_outcome()
                && !Counter::VrrpQuiet.is_egress_outcome()
        );
    }

    #[test]
    fn last_advert_tells_sender_and_header_apart() {
        let (a, h) = (
            [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0x31, 7, 200, 1, 0, 100, 0x12, 0x34],
        );
        assert_eq!(LastAdvert::new(&a, &h), LastAdvert::new(&a, &h));
        let mut b = a;
        b[15] = 1;
        assert_ne!(LastAdvert::new(&a, &h), LastAdvert::new(&b, &h));
        for i in 0..8 {
            let mut g = h;
            g[i] ^= 1;
            assert_ne!(LastAdvert::new(&a, &h), LastAdvert::new(&a, &g), "byte {i}");
        }
    }

    #[test]
    fn vrid_slots_do_not_collide() {
        assert_eq!(vrid_slot(FAMILY_IPV4, 255), 255);
        assert_eq!(vrid_slot(FAMILY_IPV6, 0), 256);
        assert!(vrid_slot(FAMILY_IPV6, 255) < VRID_SLOTS);
    }
}
