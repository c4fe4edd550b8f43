//! The fast path's ARP responder on a real link: two namespaces joined by a veth, the program
//! attached in A (generic mode: what `auto` picks on veth), requests written from B with an
//! AF_PACKET socket and the replies read back there.
//!
//! * The VIP is not configured on A's interface, so only XDP can answer: a reply carrying the
//!   VMAC and a moving `arp_replied` counter show the fast path did it, not the kernel.
//! * SIGKILL: a helper process attaches, owns the VIP and heartbeats; it is SIGKILLed with the VIP
//!   configured on A's interface (as a killed agent leaves it). The pinned program survives it and,
//!   once the heartbeat is stale, drops the requests — the kernel does not answer with the real
//!   MAC. Removing the pin (the next agent's takeover, then a clean detach) hands ARP back to the
//!   kernel, which then answers: the control that shows the test can fail.
//!
//! Needs root. Namespaces and pins are removed even when a test fails.
use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use vrrp_agent::{
    clock::monotonic_ns,
    fastpath::{self, FastPath, ModeChoice},
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

/// Removes a pin directory when dropped (the test failed before a clean detach).
struct PinGuard(Option<PathBuf>);

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(&p);
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Sends `count` ARP requests for `VIP` from `iface` (MAC `mac`), `gap` apart, and returns every
/// ARP reply for us received until `settle` after the last one. Bounded in time.
fn probe(
    iface: &str,
    mac: MacAddr,
    count: u32,
    gap: Duration,
    settle: Duration,
) -> Result<Vec<ArpFrame>> {
    let sock = packet_socket(iface, ETH_P_ARP)?;
    let req = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: mac,
        vlan: None,
        arp: ArpRepr::request(mac, B_IP, VIP),
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
    ns.ip(&["link", "show", "dev", iface])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("xdp"))
        .unwrap_or(false)
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
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let mut guard = PinGuard(None);

    let (counters, replies) = std::thread::scope(|s| -> Result<_> {
        let owner = s.spawn(|| -> Result<_> {
            Netns::enter_path(&a_path)?;
            let mut fp = FastPath::load()?;
            fp.set_iface_mac(a_mac.0)?;
            let mode = fp.attach("a0", ModeChoice::Auto)?;
            assert_eq!(
                mode,
                aya::programs::XdpMode::Skb,
                "auto picks generic on veth"
            );
            fp.add_vip(IpAddr::V4(VIP), VRID)?;
            fp.set_router(FAMILY_IPV4, VRID, true, false, Duration::from_millis(300))?;
            fp.heartbeat(monotonic_ns())?;
            let pin = fp.pin_dir().context("pinned")?.to_owned();
            assert!(pin.is_dir(), "{pin:?}");
            let _ = tx.send(pin.clone());
            while !stop.load(Ordering::Relaxed) {
                fp.heartbeat(monotonic_ns())?;
                std::thread::sleep(Duration::from_millis(20));
            }
            let c = fp.counters()?;
            fp.detach()?;
            assert!(!pin.exists(), "clean detach removes the pin {pin:?}");
            Ok(c)
        });
        let pin = rx.recv_timeout(Duration::from_secs(10));
        let replies = match pin {
            Ok(pin) => {
                guard.0 = Some(pin);
                let r = s
                    .spawn(|| -> Result<_> {
                        Netns::enter_path(&b_path)?;
                        probe(
                            "b0",
                            b_mac,
                            5,
                            Duration::from_millis(30),
                            Duration::from_millis(100),
                        )
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

#[test]
fn after_sigkill_the_pinned_program_drops_arp_for_the_vip() -> Result<()> {
    require_root();
    // The helper runs under `ip netns exec`, whose private /sys hides /sys/fs/bpf: pins go to
    // the shared bpffs mounted here, in the test's mount namespace.
    fastpath::mount_shared_pin_root()?;
    let (a, b, a_mac, b_mac) = lab("xk")?;
    let stale = Duration::from_millis(300);
    let mut cmd = a.cmd(env!("CARGO_BIN_EXE_fastpath-holder"));
    cmd.args(["--iface", "a0", "--mac", &fmt_mac(&a_mac.0)])
        .args(["--vip", &VIP.to_string(), "--vrid", &VRID.to_string()])
        .args([
            "--stale-ms",
            &stale.as_millis().to_string(),
            "--beat-ms",
            "20",
        ]);
    let mut holder = Proc::spawn(cmd, "fastpath-holder")?;
    let line = holder.wait_for_line(Duration::from_secs(20), |l| l.starts_with("attached pin="))?;
    let pin = PathBuf::from(line.trim_start_matches("attached pin=").trim());
    let mut guard = PinGuard(Some(pin.clone()));
    assert!(
        pin.starts_with(fastpath::SHARED_PIN_ROOT),
        "pinned in the shared bpffs: {pin:?}"
    );

    let b_path = b.path();
    let run_probe = |count: u32| -> Result<Vec<ArpFrame>> {
        let p = b_path.clone();
        std::thread::spawn(move || {
            Netns::enter_path(&p)?;
            probe(
                "b0",
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

    // What a killed agent leaves: the VIP on the interface.
    a.ip(&["addr", "add", &format!("{VIP}/24"), "dev", "a0"])?;
    holder.stop(libc::SIGKILL, Duration::from_secs(5))?;
    assert!(has_xdp(&a, "a0"), "the pinned program outlives the agent");
    assert!(pin.join("link-skb").exists(), "pin still there: {pin:?}");

    std::thread::sleep(stale + Duration::from_millis(150));
    let dead = run_probe(10)?;
    assert!(
        dead.is_empty(),
        "a dead agent's node must not answer ARP for the VIP (stale heartbeat), got {} replies, \
         first from {}",
        dead.len(),
        dead[0].arp.sender_mac
    );

    // The next agent takes the pinned attachment over (program replaced in place), then stops
    // cleanly: pin removed, program detached.
    let a_path = a.path();
    let pin_seen = std::thread::spawn(move || -> Result<PathBuf> {
        Netns::enter_path(&a_path)?;
        let mut fp = FastPath::load()?;
        fp.attach("a0", ModeChoice::Auto)?;
        let dir = fp.pin_dir().context("pinned")?.to_owned();
        fp.detach()?;
        Ok(dir)
    })
    .join()
    .expect("takeover thread")?;
    assert_eq!(pin_seen, pin, "took over the same pin");
    assert!(!pin.exists(), "clean detach removed the pin dir");
    guard.0 = None;
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
fn a_second_attach_takes_over_and_the_first_detach_leaves_it_alone() -> Result<()> {
    // Two loads in a row on the same interface, same process: the second attach takes over the
    // first's pin (BPF_LINK_UPDATE) instead of failing with EBUSY; the first's detach afterwards
    // must not detach the second.
    require_root();
    let (a, _b, _, _) = lab("xt")?;
    let a_path = a.path();
    std::thread::spawn(move || -> Result<()> {
        Netns::enter_path(&a_path)?;
        let mut first = FastPath::load()?;
        first.attach("a0", ModeChoice::Auto)?;
        let pin = first.pin_dir().context("pinned")?.to_owned();
        let _guard = PinGuard(Some(pin.clone()));
        let mut second = FastPath::load()?;
        second.attach("a0", ModeChoice::Auto)?;
        assert_eq!(second.pin_dir(), Some(pin.as_path()));
        // The first stops cleanly: the pin is the second's now, so it stays, and so does the
        // attachment.
        drop(first);
        assert!(
            pin.join("link-skb").exists(),
            "the second's pin survives the first's detach"
        );
        let second_prog = second.program()?.info()?.id();
        let pinned = aya::programs::links::PinnedLink::from_pin(pin.join("link-skb"))?;
        let prog_of_link = aya::programs::links::FdLink::from(pinned)
            .info()?
            .program_id();
        assert_eq!(
            prog_of_link, second_prog,
            "the pinned link runs the new program"
        );
        second.detach()?;
        if pin.exists() {
            bail!("pin left behind: {pin:?}");
        }
        Ok(())
    })
    .join()
    .expect("thread")?;
    assert!(wait_until(Duration::from_secs(2), || !has_xdp(&a, "a0")));
    Ok(())
}
