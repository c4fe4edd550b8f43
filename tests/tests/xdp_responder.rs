//! The fast path's ARP responder on a real link: two namespaces joined by a veth, the program
//! attached in A (generic mode: what `auto` picks on veth), requests written from B with an
//! AF_PACKET socket and the replies read back there.
//!
//! * The VIP is not configured on A's interface, so only XDP can answer: a reply carrying the
//!   VMAC and a moving `arp_replied` counter show the fast path did it, not the kernel.
//! * SIGKILL: a helper process (started with `ip netns exec`, like the lab's agents) attaches,
//!   owns the VIP and heartbeats; it is SIGKILLed with the VIP configured on A's interface (as a
//!   killed agent leaves it). The program, attached through netlink, belongs to the interface and
//!   survives it — no bpffs, no pin — and once the heartbeat is stale drops the requests: the
//!   kernel does not answer with the real MAC. The next agent replaces the program in place, and
//!   its clean detach hands ARP back to the kernel, which then answers: the control that shows
//!   the test can fail.
//! * One agent per interface: a second `FastPath` on an interface a live one holds is refused
//!   with one line naming the holder's pid, and leaves the first alone.
//!
//! Needs root. Namespaces are removed even when a test fails; nothing is mounted.
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_agent::{
    clock::monotonic_ns,
    config::XdpMode,
    fastpath::FastPath,
    rtnl,
    wire::{ArpFrame, ArpOp, ArpRepr, MacAddr},
};
use vrrp_common::{vmac, Counter, FAMILY_IPV4};
use vrrp_integration_tests::{
    packet_socket,
    prober::{fmt_mac, parse_mac},
    recv_frame, require_root, send_frames, veth, Netns, Proc,
};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VRID: u8 = 51;
const ETH_P_ARP: u16 = 0x0806;

/// Sends `count` ARP requests for `VIP` from `iface` (MAC `mac`; ARP sender hardware address
/// `sha`), `gap` apart, and returns every ARP reply for us received until `settle` after the
/// last one. Bounded in time.
fn probe(
    iface: &str,
    mac: MacAddr,
    sha: MacAddr,
    count: u32,
    gap: Duration,
    settle: Duration,
) -> Result<Vec<ArpFrame>> {
    let sock = packet_socket(iface, ETH_P_ARP)?;
    let req = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: mac,
        vlan: None,
        arp: ArpRepr::request(sha, B_IP, VIP),
    };
    let mut frame = req.to_bytes();
    frame.resize(60, 0);
    let mut replies = Vec::new();
    let mut buf = [0u8; 2048];
    let mut collect = |until: Instant, replies: &mut Vec<ArpFrame>| {
        while Instant::now() < until {
            let Some(f) = recv_frame(&sock, &mut buf) else {
                continue;
            };
            if let Ok(f) = ArpFrame::parse(f) {
                if f.arp.op == ArpOp::Reply && f.eth_dst == mac && f.arp.sender_ip == VIP {
                    replies.push(f);
                }
            }
        }
    };
    for _ in 0..count {
        send_frames(iface, &frame, 1, Duration::ZERO)?;
        collect(Instant::now() + gap, &mut replies);
    }
    collect(Instant::now() + settle, &mut replies);
    Ok(replies)
}

fn has_xdp(ns: &Netns, iface: &str) -> bool {
    xdp_prog(ns, iface).is_some()
}

/// The id of the generic-mode XDP program on `iface` in `ns` (from netlink), if any.
fn xdp_prog(ns: &Netns, iface: &str) -> Option<u32> {
    let iface = iface.to_owned();
    ns.run_in(move || Ok(rtnl::iface_facts(&iface)?.xdp.skb))
        .ok()
        .flatten()
}

/// Attaches `fp` to `iface` right after this process released the interface's lock. A process
/// another test thread is spawning at that moment may still hold a copy of the lock's fd
/// between its fork and its exec (where CLOEXEC closes it): retried for up to 2 s.
fn attach_once_free(fp: &mut FastPath, iface: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fp.attach(iface, XdpMode::Auto) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline && e.to_string().contains("already run") => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn program_loaded(id: u32) -> bool {
    aya::programs::loaded_programs()
        .flatten()
        .any(|p| p.id() == id)
}

/// Two namespaces, a veth between them: `a0` (10.0.0.1/24) in A, `b0` (10.0.0.2/24) in B.
fn lab(tag: &str) -> Result<(Netns, Netns, MacAddr, MacAddr)> {
    let a = Netns::new(&format!("{tag}a"))?;
    let b = Netns::new(&format!("{tag}b"))?;
    veth(&a, "a0", &["10.0.0.1/24"], &b, "b0", &["10.0.0.2/24"])?;
    let a_mac = MacAddr(parse_mac(&a.mac("a0")?)?);
    let b_mac = MacAddr(parse_mac(&b.mac("b0")?)?);
    Ok((a, b, a_mac, b_mac))
}

#[test]
fn xdp_answers_arp_for_an_owned_vip_the_kernel_does_not_have() -> Result<()> {
    require_root();
    let (a, b, a_mac, b_mac) = lab("xr")?;
    let (a_path, b_path) = (a.path(), b.path());
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<()>();

    let (counters, (replies, group_replies)) = std::thread::scope(|s| -> Result<_> {
        let owner = s.spawn(|| -> Result<_> {
            Netns::enter_path(&a_path)?;
            let mut fp = FastPath::load()?;
            fp.set_iface_mac(a_mac.0)?;
            let mode = fp.attach("a0", XdpMode::Auto)?;
            assert_eq!(
                mode,
                aya::programs::XdpMode::Skb,
                "auto picks generic on veth"
            );
            fp.add_vip(IpAddr::V4(VIP), VRID)?;
            fp.set_router(FAMILY_IPV4, VRID, true, false, Duration::from_millis(300))?;
            fp.heartbeat(monotonic_ns())?;
            let _ = tx.send(());
            while !stop.load(Ordering::Relaxed) {
                fp.heartbeat(monotonic_ns())?;
                std::thread::sleep(Duration::from_millis(20));
            }
            let c = fp.counters()?;
            fp.detach()?;
            Ok(c)
        });
        let attached = rx.recv_timeout(Duration::from_secs(10));
        let replies = match attached {
            Ok(()) => {
                let r = s
                    .spawn(|| -> Result<_> {
                        Netns::enter_path(&b_path)?;
                        let gap = Duration::from_millis(30);
                        let settle = Duration::from_millis(100);
                        let r = probe("b0", b_mac, b_mac, 5, gap, settle)?;
                        // A broadcast sender hardware address: never answered.
                        let g = probe("b0", b_mac, MacAddr([0xff; 6]), 3, gap, settle)?;
                        Ok((r, g))
                    })
                    .join()
                    .expect("prober");
                // The kernel's own ARP, from B, learns the VMAC too.
                let _ = b
                    .cmd("ping")
                    .args(["-c", "1", "-W", "1", &VIP.to_string()])
                    .output();
                r
            }
            Err(_) => Err(anyhow::anyhow!("the owner thread did not attach")),
        };
        stop.store(true, Ordering::Relaxed);
        let counters = owner.join().expect("owner thread")?;
        Ok((counters, replies?))
    })?;

    assert!(
        replies.len() >= 4,
        "expected a reply to (almost) each of 5 requests, got {}",
        replies.len()
    );
    assert!(
        group_replies.is_empty(),
        "a request from a broadcast sender MAC was answered: {group_replies:?}"
    );
    assert_eq!(
        counters.get(Counter::GroupSenderDropped),
        3,
        "{}",
        counters.summary()
    );
    let want = MacAddr(vmac(FAMILY_IPV4, VRID));
    for r in &replies {
        assert_eq!(r.eth_src, want, "Ethernet source is the VMAC");
        assert_eq!(r.arp.sender_mac, want, "VIP is at the VMAC");
        assert_eq!(r.arp.target_mac, b_mac);
        assert_eq!(r.arp.target_ip, B_IP);
    }
    assert!(
        counters.get(Counter::ArpReplied) >= replies.len() as u64,
        "arp_replied moved: {}",
        counters.summary()
    );
    let neigh = b.ip(&["neigh", "show", &VIP.to_string(), "dev", "b0"])?;
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(
        neigh.contains(&fmt_mac(&want.0)),
        "B's kernel resolved the VIP to the VMAC: {neigh:?}"
    );
    assert!(!has_xdp(&a, "a0"), "detached");
    Ok(())
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Starts the fast-path holder on `a0` in `a` (through `ip netns exec`, like the lab's agents);
/// returns it with the id of the XDP program it attached.
fn holder(a: &Netns, a_mac: MacAddr, stale: Duration) -> Result<(Proc, u32)> {
    holder_in(a, a_mac, stale, "auto")
}

/// [`holder`] with `--xdp-mode MODE`.
fn holder_in(a: &Netns, a_mac: MacAddr, stale: Duration, mode: &str) -> Result<(Proc, u32)> {
    let mut cmd = a.cmd(env!("CARGO_BIN_EXE_fastpath-holder"));
    cmd.args([
        "--iface",
        "a0",
        "--mac",
        &fmt_mac(&a_mac.0),
        "--xdp-mode",
        mode,
    ])
    .args(["--vip", &VIP.to_string(), "--vrid", &VRID.to_string()])
    .args([
        "--stale-ms",
        &stale.as_millis().to_string(),
        "--beat-ms",
        "20",
    ]);
    let mut holder = Proc::spawn(cmd, "fastpath-holder")?;
    let line = holder.wait_for_line(Duration::from_secs(20), |l| l.starts_with("attached "))?;
    let prog = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("xdp_prog="))
        .context("no xdp_prog= in the holder's line")?
        .parse()?;
    Ok((holder, prog))
}

#[test]
fn after_sigkill_the_attached_program_drops_arp_for_the_vip_and_is_taken_over() -> Result<()> {
    require_root();
    let (a, b, a_mac, b_mac) = lab("xk")?;
    let stale = Duration::from_millis(300);
    let (mut holder, old_prog) = holder(&a, a_mac, stale)?;
    assert_eq!(xdp_prog(&a, "a0"), Some(old_prog), "the holder's program");

    let b_path = b.path();
    let run_probe = |count: u32| -> Result<Vec<ArpFrame>> {
        let p = b_path.clone();
        std::thread::spawn(move || {
            Netns::enter_path(&p)?;
            probe(
                "b0",
                b_mac,
                b_mac,
                count,
                Duration::from_millis(30),
                Duration::from_millis(100),
            )
        })
        .join()
        .expect("prober")
    };
    let alive = run_probe(3)?;
    assert!(!alive.is_empty(), "the holder's fast path answers");
    assert!(alive
        .iter()
        .all(|r| r.arp.sender_mac.0 == vmac(FAMILY_IPV4, VRID)));

    // While the holder lives, nobody else may take the interface.
    let refused = a.run_in(|| {
        let mut fp = FastPath::load()?;
        Ok(fp
            .attach("a0", XdpMode::Auto)
            .map(drop)
            .map_err(|e| e.to_string()))
    })?;
    assert_eq!(
        refused,
        Err(format!(
            "a0 is already run by vrrp-agent (pid {}); stop it first, or put both virtual \
             routers in one configuration",
            holder.child.id()
        ))
    );
    assert_eq!(
        xdp_prog(&a, "a0"),
        Some(old_prog),
        "the refused attach left it alone"
    );

    // What a killed agent leaves: the VIP on the interface.
    a.ip(&["addr", "add", &format!("{VIP}/24"), "dev", "a0"])?;
    holder.stop(libc::SIGKILL, Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        xdp_prog(&a, "a0"),
        Some(old_prog),
        "the program attached through netlink outlives the agent (no pin, no bpffs)"
    );

    std::thread::sleep(stale + Duration::from_millis(150));
    let dead = run_probe(10)?;
    assert!(
        dead.is_empty(),
        "a dead agent's node must not answer ARP for the VIP (stale heartbeat), got {} replies, \
         first from {}",
        dead.len(),
        dead[0].arp.sender_mac
    );

    // The next agent takes the attachment over: the program is replaced in place (the old one,
    // no longer referenced, is freed); then it stops cleanly and detaches.
    let (new_prog, seen) = a.run_in(|| -> Result<_> {
        let mut fp = FastPath::load()?;
        fp.attach("a0", XdpMode::Auto)?;
        let new_prog = fp.program()?.info()?.id();
        let seen = rtnl::iface_facts("a0")?.xdp.skb;
        fp.detach()?;
        Ok((new_prog, seen))
    })?;
    assert_eq!(seen, Some(new_prog), "the new program replaced the old one");
    assert!(
        wait_until(Duration::from_secs(2), || !program_loaded(old_prog)),
        "the dead agent's program is released once replaced"
    );
    assert!(
        wait_until(Duration::from_secs(2), || !has_xdp(&a, "a0")),
        "detached"
    );

    // Control: without the fast path, the kernel answers for the configured VIP with the real
    // MAC — which is what the fail-safe prevented above.
    let kernel = run_probe(3)?;
    assert!(
        !kernel.is_empty(),
        "the kernel answers once the program is gone"
    );
    assert!(kernel.iter().all(|r| r.arp.sender_mac == a_mac));
    Ok(())
}

#[test]
fn a_second_fastpath_on_a_live_ones_interface_is_refused() -> Result<()> {
    // Same process, same interface: the second attach is refused before it touches anything
    // (the lock is per interface and per network namespace, held by the first); the first keeps
    // its program. Once the first detaches, the interface is free again. The lock is per network
    // namespace: B's interface, with the same ifindex in its own namespace, is not locked by it.
    require_root();
    let (a, b, _, _) = lab("xt")?;
    let (a_path, b_path) = (a.path(), b.path());
    std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            Netns::enter_path(&a_path)?;
            let mut first = FastPath::load()?;
            first.attach("a0", XdpMode::Auto)?;
            let first_prog = first.program()?.info()?.id();
            let a_index = rtnl::iface_facts("a0")?.index;
            let other = std::thread::spawn({
                let b_path = b_path.clone();
                move || -> Result<u32> {
                    Netns::enter_path(&b_path)?;
                    let b_index = rtnl::iface_facts("b0")?.index;
                    let mut fp = FastPath::load()?;
                    fp.attach("b0", XdpMode::Auto)?;
                    fp.detach()?;
                    Ok(b_index)
                }
            })
            .join()
            .expect("thread in B")?;
            assert_eq!(
                other, a_index,
                "same ifindex in both namespaces (else the per-namespace check proves nothing)"
            );
            let mut second = FastPath::load()?;
            let e = second
                .attach("a0", XdpMode::Auto)
                .expect_err("a second FastPath on a0 must be refused")
                .to_string();
            assert_eq!(
                e,
                format!(
                    "a0 is already run by vrrp-agent (pid {}); stop it first, or put both virtual \
                 routers in one configuration",
                    std::process::id()
                )
            );
            assert_eq!(
                rtnl::iface_facts("a0")?.xdp.skb,
                Some(first_prog),
                "the first's program is untouched"
            );
            assert!(second.attachment().is_none());
            first.detach()?;
            assert_eq!(rtnl::iface_facts("a0")?.xdp.skb, None, "detached");
            // Free again.
            attach_once_free(&mut second, "a0")?;
            let second_prog = second.program()?.info()?.id();
            assert_eq!(rtnl::iface_facts("a0")?.xdp.skb, Some(second_prog));
            second.detach()?;
            if rtnl::iface_facts("a0")?.xdp.skb.is_some() {
                bail!("second left its program attached");
            }
            Ok(())
        })
        .join()
        .expect("thread in A")
    })?;
    assert!(wait_until(Duration::from_secs(2), || !has_xdp(&a, "a0")));
    Ok(())
}

/// Loads a minimal XDP program (`return XDP_PASS`) named `name` with a raw `BPF_PROG_LOAD`: a
/// program that is not vrrp-agent's.
fn load_foreign_xdp(name: &str) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    // mov64 r0, 2 (XDP_PASS); exit
    let insns: [u8; 16] = [0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let license = c"GPL";
    // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level,
    // log_size, log_buf, kern_version, prog_flags, prog_name[16] (offset 48), ...
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&6u32.to_ne_bytes()); // BPF_PROG_TYPE_XDP
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..48 + name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: a valid bpf_attr of the size given; the pointers outlive the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 5, attr.as_mut_ptr(), attr.len()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("BPF_PROG_LOAD");
    }
    // SAFETY: a fresh fd.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

#[test]
fn a_foreign_xdp_program_is_refused_with_one_line_and_left_alone() -> Result<()> {
    require_root();
    let (a, _b, _, _) = lab("xf")?;
    a.run_in(|| -> Result<()> {
        use std::os::fd::AsRawFd as _;
        let other = load_foreign_xdp("other_xdp")?;
        let idx = rtnl::iface_facts("a0")?.index;
        rtnl::xdp_set(
            idx,
            other.as_raw_fd(),
            rtnl::XDP_FLAGS_SKB_MODE | rtnl::XDP_FLAGS_UPDATE_IF_NOEXIST,
            None,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = rtnl::iface_facts("a0")?.xdp.skb.context("attached")?;
        let mut fp = FastPath::load()?;
        let e = fp
            .attach("a0", XdpMode::Auto)
            .expect_err("a foreign program must not be replaced")
            .to_string();
        assert_eq!(
            e,
            format!(
                "a0 already has an XDP program that is not vrrp-agent's: 'other_xdp' (id {id}, \
                 generic mode); remove it (`ip link set dev a0 xdpgeneric off`) or use another \
                 interface"
            )
        );
        assert_eq!(rtnl::iface_facts("a0")?.xdp.skb, Some(id), "left alone");
        assert_eq!(
            rtnl::bpf_filters(idx, rtnl::TC_PARENT_EGRESS).map_err(|e| anyhow::anyhow!("{e}"))?,
            vec![],
            "no egress filter of ours added"
        );
        // The interface's lock was released with the refusal.
        drop(fp);
        rtnl::xdp_set(idx, -1, rtnl::XDP_FLAGS_SKB_MODE, None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut fp = FastPath::load()?;
        attach_once_free(&mut fp, "a0")?;
        fp.detach()?;
        Ok(())
    })
}

#[test]
fn our_program_held_by_a_bpf_link_is_refused_with_one_line() -> Result<()> {
    // What an older vrrp-agent (which pinned a bpf_link) leaves: netlink cannot replace it.
    require_root();
    let (a, _b, _, _) = lab("xl")?;
    a.run_in(|| -> Result<()> {
        let idx = rtnl::iface_facts("a0")?.index;
        let mut old = FastPath::load()?;
        old.program()?
            .attach_to_if_index(idx, aya::programs::XdpMode::Skb)
            .context("bpf_link attach")?;
        let id = old.program()?.info()?.id();
        let mut fp = FastPath::load()?;
        let e = fp
            .attach("a0", XdpMode::Auto)
            .expect_err("a bpf_link attachment cannot be replaced")
            .to_string();
        assert!(
            e.starts_with(&format!(
                "a0: XDP program 'vrrp_xdp' (id {id}) is held by bpf_link "
            )) && e.contains("stop that agent or remove its pin")
                && !e.contains('\n'),
            "{e}"
        );
        assert_eq!(rtnl::iface_facts("a0")?.xdp.skb, Some(id), "left alone");
        Ok(())
    })
}

#[test]
fn a_killed_agents_program_in_another_mode_gives_way_to_one_in_the_wanted_mode() -> Result<()> {
    require_root();
    let (a, _b, a_mac, _) = lab("xm")?;
    // Native mode on a veth (auto would pick generic there).
    let (mut holder, old) = holder_in(&a, a_mac, Duration::from_millis(300), "native")?;
    let facts = a.run_in(|| rtnl::iface_facts("a0"))?;
    assert_eq!((facts.xdp.drv, facts.xdp.skb), (Some(old), None));
    holder.stop(libc::SIGKILL, Duration::from_secs(5))?;
    let (new, facts) = a.run_in(|| -> Result<_> {
        let mut fp = FastPath::load()?;
        let mode = fp.attach("a0", XdpMode::Auto)?;
        assert_eq!(mode, aya::programs::XdpMode::Skb);
        let new = fp.program()?.info()?.id();
        let facts = rtnl::iface_facts("a0")?;
        fp.detach()?;
        Ok((new, facts))
    })?;
    assert_eq!(
        (facts.xdp.drv, facts.xdp.skb),
        (None, Some(new)),
        "the old native program removed, ours in generic mode"
    );
    assert!(wait_until(Duration::from_secs(2), || !has_xdp(&a, "a0")));
    assert_eq!(
        a.run_in(|| rtnl::iface_facts("a0"))?.xdp,
        rtnl::XdpState::default()
    );
    Ok(())
}

#[test]
fn dropped_while_owning_it_stays_attached_and_after_a_release_it_detaches() -> Result<()> {
    // An agent leaving on an error while Master (its VIPs possibly still configured) must leave
    // the fail-safe in place, as SIGKILL does; after a clean release, dropping detaches.
    require_root();
    let (a, _b, _, _) = lab("xd")?;
    a.run_in(|| -> Result<()> {
        let idx = rtnl::iface_facts("a0")?.index;
        let mut fp = FastPath::load()?;
        attach_once_free(&mut fp, "a0")?;
        fp.add_vip(IpAddr::V4(VIP), VRID)?;
        fp.set_router(FAMILY_IPV4, VRID, true, false, Duration::from_millis(300))?;
        let owning = fp.program()?.info()?.id();
        drop(fp);
        assert_eq!(
            rtnl::iface_facts("a0")?.xdp.skb,
            Some(owning),
            "left attached"
        );
        let filters =
            rtnl::bpf_filters(idx, rtnl::TC_PARENT_EGRESS).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(filters.len(), 1, "egress left attached: {filters:?}");
        // The next one takes it over, releases, and is dropped: detached.
        let mut fp = FastPath::load()?;
        attach_once_free(&mut fp, "a0")?;
        fp.set_router(FAMILY_IPV4, VRID, true, false, Duration::from_millis(300))?;
        fp.set_router(FAMILY_IPV4, VRID, false, false, Duration::from_millis(300))?;
        drop(fp);
        assert_eq!(rtnl::iface_facts("a0")?.xdp.skb, None, "detached");
        assert_eq!(
            rtnl::bpf_filters(idx, rtnl::TC_PARENT_EGRESS).map_err(|e| anyhow::anyhow!("{e}"))?,
            vec![],
            "egress detached"
        );
        Ok(())
    })
}
