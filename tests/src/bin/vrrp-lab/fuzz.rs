//! `bench-fuzz`: mutation fuzzing, run as a bench (not part of `cargo xtask test`), of the
//! advert, ARP and NDP codecs (vrrp-core `wire`), the TOML and keepalived.conf front-ends, and
//! the XDP program (and the TC egress classifier) under BPF_PROG_TEST_RUN.
//!
//! No coverage feedback (no nightly sanitizers here): each target starts from a seed corpus
//! (the real captures, the keepalived fixtures, the README's configurations, codec-built
//! frames), applies 1–4 random byte-level edits per input (`rand`), re-fixes the checksums of
//! half the binary inputs so they reach past the checksum checks, and keeps a bounded pool of
//! accepted inputs to mutate further. Properties checked on every input:
//! - never a panic (caught per input; errors are values);
//! - codecs: parse → emit → parse gives the same frame for every accepted input, and the
//!   replies the responders build (ARP reply, NA) parse back;
//! - front-ends: every error renders as ONE line; keepalived.conf that imports gives TOML that
//!   parses;
//! - XDP: the maps rotate per batch through every router state ([`MapState`]: owned with a fresh
//!   heartbeat, owned with a stale one, not owned, a mix, nothing configured); every action is
//!   DROP, PASS or TX; after every batch, `Frames` equals the frames run,
//!   the outcome counters add up to `Frames`, XDP_TX equals `ArpReplied + NsReplied`, XDP_DROP
//!   the dropping outcomes (plus at most `NaResizeFailed`), and the ring buffer holds exactly
//!   `VrrpToUser` events; the same for the egress classifier (TC_ACT_SHOT equals the
//!   `EgressNeighDropped*` outcomes). The kernel's skb test-run refuses (EINVAL) an IPv4/IPv6
//!   frame shorter than its IP header, so those skip the classifier (`tc_not_run_short_ip`).
//!
//! A failing input is saved under `<out>/fuzz/<target>-<n>.bin` with its message in `.txt`.
use std::{
    cell::RefCell,
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use aya::{TestRun, TestRunOptions};
use rand::{rngs::SmallRng, RngExt, SeedableRng};
use serde::Serialize;
use vrrp_agent::{
    clock::monotonic_ns,
    config,
    fastpath::{parse_event, FastPath},
    keepalived_conf,
    wire::{
        checksum, validate_bytes, AdvertFrame, ArpFrame, ArpRepr, Auth, ChecksumOpts, EthHeader,
        Family, InstanceCfg, MacAddr, NdpFrame, NdpMessage, Version, VrrpRepr,
    },
};
use vrrp_common::{Counter, FAMILY_IPV4, FAMILY_IPV6, VRID_ON, VRID_QUIET};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Advert,
    Arp,
    Ndp,
    Toml,
    Keepalived,
    Xdp,
    All,
}

pub struct Opts {
    pub execs: u64,
    pub targets: Vec<Target>,
    pub seed: u64,
    /// Stop a target after this long even if `execs` are not done (0: no limit).
    pub max_secs: u64,
    /// `target/bench`: the JSON goes to `<out>/fuzz.json`, failing inputs to `<out>/fuzz/`.
    pub out: PathBuf,
}

/// One target's totals (coverage-free).
#[derive(Debug, Default, Serialize)]
pub struct TargetResult {
    pub target: String,
    pub execs: u64,
    pub secs: f64,
    pub execs_per_s: f64,
    /// Inputs the parser accepted (round-tripped) / refused with an error value.
    pub accepted: u64,
    pub rejected: u64,
    /// Inputs not run (keepalived: an include of an absolute path, which would read host files).
    pub skipped: u64,
    pub failures: u64,
    pub seeds: usize,
    /// Target-specific totals (XDP: per-action and per-counter totals).
    pub extra: BTreeMap<String, u64>,
    pub saved: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub execs_per_target: u64,
    pub targets: Vec<TargetResult>,
}

enum Verdict {
    Accepted,
    Rejected,
    Skipped,
}

thread_local! {
    static PANIC_MSG: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub fn bench(opts: Opts) -> Result<()> {
    let all = [
        Target::Advert,
        Target::Arp,
        Target::Ndp,
        Target::Toml,
        Target::Keepalived,
        Target::Xdp,
    ];
    let mut targets: Vec<Target> = if opts.targets.contains(&Target::All) {
        all.to_vec()
    } else {
        opts.targets.clone()
    };
    targets.dedup();
    let root = repo_root();
    let fail_dir = opts.out.join("fuzz");
    std::fs::create_dir_all(&fail_dir)
        .with_context(|| format!("creating {}", fail_dir.display()))?;
    // Panics are findings: record the message instead of printing it for each input.
    panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => (*s).to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        };
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        PANIC_MSG.with(|p| *p.borrow_mut() = Some(format!("panic: {msg}{at}")));
    }));

    let mut report = Report {
        seed: opts.seed,
        execs_per_target: opts.execs,
        targets: Vec::new(),
    };
    for (i, t) in targets.iter().enumerate() {
        let mut rng = SmallRng::seed_from_u64(opts.seed.wrapping_add(i as u64));
        let limit = (opts.max_secs > 0).then(|| Duration::from_secs(opts.max_secs));
        let r = match t {
            Target::Advert => {
                let seeds = frame_seeds(&root)?;
                let dict: &[&[u8]] = &[&[0x08, 0x00], &[0x86, 0xdd], &[0x81, 0x00], &[112]];
                let instances = instances();
                run_parser(
                    "advert",
                    seeds,
                    dict,
                    true,
                    opts.execs,
                    limit,
                    &mut rng,
                    &fail_dir,
                    |b| check_advert(b, &instances),
                )
            }
            Target::Arp => {
                let seeds = frame_seeds(&root)?;
                let dict: &[&[u8]] = &[&[0x08, 0x06], &[0, 1, 8, 0, 6, 4, 0, 1], &[0, 2]];
                run_parser(
                    "arp", seeds, dict, false, opts.execs, limit, &mut rng, &fail_dir, check_arp,
                )
            }
            Target::Ndp => {
                let seeds = frame_seeds(&root)?;
                let dict: &[&[u8]] = &[
                    &[0x86, 0xdd],
                    &[58],
                    &[135, 0],
                    &[136, 0],
                    &[1, 1],
                    &[2, 1],
                    &[255],
                ];
                run_parser(
                    "ndp", seeds, dict, true, opts.execs, limit, &mut rng, &fail_dir, check_ndp,
                )
            }
            Target::Toml => {
                let seeds = toml_seeds(&root)?;
                run_parser(
                    "toml", seeds, TOML_DICT, false, opts.execs, limit, &mut rng, &fail_dir,
                    check_toml,
                )
            }
            Target::Keepalived => {
                let seeds = keepalived_seeds(&root)?;
                run_parser(
                    "keepalived",
                    seeds,
                    KEEPALIVED_DICT,
                    false,
                    opts.execs,
                    limit,
                    &mut rng,
                    &fail_dir,
                    check_keepalived,
                )
            }
            Target::Xdp => fuzz_xdp(&root, opts.execs, limit, &mut rng, &fail_dir)?,
            Target::All => unreachable!("expanded above"),
        };
        println!(
            "fuzz {:<10} {:>11} execs in {:>7.1} s ({:>9.0} execs/s): accepted {}, rejected {}, skipped {}, failures {} (seeds {})",
            r.target, r.execs, r.secs, r.execs_per_s, r.accepted, r.rejected, r.skipped, r.failures, r.seeds
        );
        if !r.extra.is_empty() {
            let parts: Vec<String> = r.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("  {}", parts.join(" "));
        }
        for s in &r.saved {
            println!("  failing input saved: {s}");
        }
        report.targets.push(r);
    }
    let json = opts.out.join("fuzz.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    println!("wrote {}", json.display());
    let targets_arg: Vec<String> = targets
        .iter()
        .map(|t| format!("{t:?}").to_lowercase())
        .collect();
    println!(
        "reproduce: cargo xtask bench fuzz --execs {} --seed {} --target {}",
        opts.execs,
        opts.seed,
        targets_arg.join(",")
    );
    let failures: u64 = report.targets.iter().map(|t| t.failures).sum();
    if failures > 0 {
        bail!(
            "{failures} failing inputs (saved under {})",
            fail_dir.display()
        );
    }
    Ok(())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// The mutation loop (rand-driven byte edits; no coverage feedback).

const MAX_LEN: usize = 4096;
const POOL: usize = 1024;

/// 1–4 random edits: bit flip, byte set, insert, delete, truncate, splice from another seed,
/// dictionary token, copy within the input.
fn mutate(rng: &mut SmallRng, buf: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[&[u8]]) {
    for _ in 0..rng.random_range(1..=4u32) {
        let len = buf.len();
        let at = rng.random_range(0..=len);
        match rng.random_range(0..8u32) {
            0 if len > 0 => buf[at.min(len - 1)] ^= 1 << rng.random_range(0..8u32),
            1 if len > 0 => {
                buf[at.min(len - 1)] =
                    [0, 0xff, 0x7f, 0x80, 1, rng.random()][rng.random_range(0..6usize)]
            }
            2 => buf.insert(at, rng.random()),
            3 if len > 0 => {
                let end = (at + rng.random_range(1..=16usize)).min(len);
                buf.drain(at.min(end)..end);
            }
            4 => buf.truncate(at),
            5 => {
                let s = &seeds[rng.random_range(0..seeds.len())];
                if !s.is_empty() {
                    let a = rng.random_range(0..s.len());
                    let b = (a + rng.random_range(1..=64usize)).min(s.len());
                    buf.splice(at..at, s[a..b].iter().copied());
                }
            }
            6 if !dict.is_empty() => {
                let t = dict[rng.random_range(0..dict.len())];
                buf.splice(at..at, t.iter().copied());
            }
            7 if len > 1 => {
                let a = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - a).min(32));
                let piece = buf[a..a + n].to_vec();
                let to = rng.random_range(0..len);
                let end = (to + n).min(len);
                buf[to..end].copy_from_slice(&piece[..end - to]);
            }
            _ => {}
        }
    }
    buf.truncate(MAX_LEN);
}

#[allow(clippy::too_many_arguments)]
fn run_parser(
    name: &str,
    seeds: Vec<Vec<u8>>,
    dict: &[&[u8]],
    fix_sums: bool,
    execs: u64,
    limit: Option<Duration>,
    rng: &mut SmallRng,
    fail_dir: &Path,
    mut check: impl FnMut(&[u8]) -> Result<Verdict, String>,
) -> TargetResult {
    let mut r = TargetResult {
        target: name.to_string(),
        seeds: seeds.len(),
        ..Default::default()
    };
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    let start = Instant::now();
    let mut buf = Vec::with_capacity(MAX_LEN);
    while r.execs < execs {
        if r.execs & 4095 == 0 && limit.is_some_and(|l| start.elapsed() >= l) {
            break;
        }
        buf.clear();
        buf.extend_from_slice(&pool[rng.random_range(0..pool.len())]);
        // A few of the seeds unchanged too (they must pass).
        if r.execs >= seeds.len() as u64 {
            mutate(rng, &mut buf, &seeds, dict);
            if fix_sums && rng.random_bool(0.5) {
                fix_checksums(&mut buf);
            }
        } else {
            buf.clear();
            buf.extend_from_slice(&seeds[r.execs as usize]);
        }
        r.execs += 1;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(&buf))).unwrap_or_else(|_| {
            Err(PANIC_MSG
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "panic".into()))
        });
        match outcome {
            Ok(Verdict::Accepted) => {
                r.accepted += 1;
                // Keep some accepted inputs to mutate further (a bounded pool).
                if rng.random_range(0..64u32) == 0 {
                    if pool.len() < POOL {
                        pool.push(buf.clone());
                    } else {
                        let i = rng.random_range(seeds.len()..POOL);
                        pool[i] = buf.clone();
                    }
                }
            }
            Ok(Verdict::Rejected) => r.rejected += 1,
            Ok(Verdict::Skipped) => r.skipped += 1,
            Err(msg) => {
                r.failures += 1;
                if r.saved.len() < 20 {
                    r.saved
                        .push(save_failure(fail_dir, name, r.failures, &buf, &msg));
                }
            }
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    r.execs_per_s = r.execs as f64 / r.secs.max(1e-9);
    r
}

fn save_failure(dir: &Path, name: &str, n: u64, input: &[u8], msg: &str) -> String {
    let bin = dir.join(format!("{name}-{n}.bin"));
    let _ = std::fs::write(&bin, input);
    let _ = std::fs::write(bin.with_extension("txt"), format!("{msg}\n"));
    format!("{} ({msg})", bin.display())
}

/// Rewrites the IPv4 header checksum and the VRRP / ICMPv6 checksum of a (mutated) frame so it
/// gets past the checksum checks to the parsing behind them.
fn fix_checksums(f: &mut [u8]) {
    let Ok((eth, _)) = EthHeader::parse(f) else {
        return;
    };
    let l3 = eth.header_len();
    match eth.ethertype {
        0x0800 if f.len() >= l3 + 20 => {
            let ihl = usize::from(f[l3] & 0x0f) * 4;
            if ihl < 20 || f.len() < l3 + ihl {
                return;
            }
            f[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let s = checksum::checksum(&f[l3..l3 + ihl]);
            f[l3 + 10..l3 + 12].copy_from_slice(&s.to_be_bytes());
            let total = usize::from(u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]));
            let end = (l3 + total).min(f.len());
            let p = l3 + ihl;
            if f[l3 + 9] == 112 && end >= p + 8 {
                let src = Ipv4Addr::from(<[u8; 4]>::try_from(&f[l3 + 12..l3 + 16]).unwrap());
                let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&f[l3 + 16..l3 + 20]).unwrap());
                f[p + 6..p + 8].copy_from_slice(&[0, 0]);
                let acc = if f[p] >> 4 == 3 {
                    checksum::pseudo_header_v4(src, dst, 112, (end - p) as u16)
                } else {
                    0
                };
                let s = checksum::finish(checksum::accumulate(acc, &f[p..end]));
                f[p + 6..p + 8].copy_from_slice(&s.to_be_bytes());
            }
        }
        0x86dd if f.len() >= l3 + 40 => {
            let plen = usize::from(u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]));
            let p = l3 + 40;
            let end = (p + plen).min(f.len());
            let (nh, off) = match f[l3 + 6] {
                112 => (112, 6),
                58 => (58, 2),
                _ => return,
            };
            if end < p + off + 2 {
                return;
            }
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[l3 + 8..l3 + 24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[l3 + 24..l3 + 40]).unwrap());
            f[p + off..p + off + 2].copy_from_slice(&[0, 0]);
            let acc = checksum::pseudo_header_v6(src, dst, nh, (end - p) as u32);
            let s = checksum::finish(checksum::accumulate(acc, &f[p..end]));
            f[p + off..p + off + 2].copy_from_slice(&s.to_be_bytes());
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds.

/// Every frame of the real captures, plus codec-built adverts (v2, v3, IPv6, VLAN), ARP
/// requests/GARPs and NS/NA.
fn frame_seeds(root: &Path) -> Result<Vec<Vec<u8>>> {
    let mut seeds = Vec::new();
    let mut pcaps = Vec::new();
    for dir in [
        PathBuf::from("/work/shared/vectors"),
        root.join("vrrp-agent/core/tests/fixtures"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "pcap") {
                pcaps.push(e.path());
            }
        }
    }
    pcaps.sort();
    for p in &pcaps {
        let file = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        let mut rd = pcap_file::pcap::PcapReader::new(file)
            .with_context(|| format!("reading {}", p.display()))?;
        while let Some(pkt) = rd.next_packet() {
            let pkt = pkt.with_context(|| format!("reading {}", p.display()))?;
            if pkt.data.len() >= 14 {
                seeds.push(pkt.data.to_vec());
            }
        }
    }
    let v4 = |version, auth| VrrpRepr {
        version,
        vrid: 51,
        priority: 100,
        max_advert_int: 100,
        auth,
        addrs: vec![IpAddr::V4(VIP4), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101))],
    };
    let src4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut adverts = vec![
        AdvertFrame::multicast(v4(Version::V3, Auth::None), src4),
        AdvertFrame::multicast(v4(Version::V2, Auth::simple(b"secret").unwrap()), src4),
        AdvertFrame::multicast(
            VrrpRepr {
                version: Version::V3,
                vrid: 51,
                priority: 200,
                max_advert_int: 10,
                auth: Auth::None,
                addrs: vec![IpAddr::V6(VIP6)],
            },
            IpAddr::V6("fe80::2".parse().unwrap()),
        ),
    ];
    let mut tagged = adverts[0].clone();
    tagged.vlan = Some(42);
    adverts.push(tagged);
    for a in &adverts {
        seeds.push(a.to_bytes(ChecksumOpts::default())?);
    }
    let req = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: REQ_MAC,
        vlan: None,
        arp: ArpRepr::request(REQ_MAC, Ipv4Addr::new(10, 0, 0, 2), VIP4),
    };
    seeds.push(req.to_bytes());
    let mut tagged = req;
    tagged.vlan = Some(7);
    seeds.push(tagged.to_bytes());
    seeds.push(ArpFrame::gratuitous(MacAddr([0, 0, 0x5e, 0, 1, 51]), VIP4).to_bytes());
    // An ARP probe (RFC 5227: sender IP 0.0.0.0) and a request from a broadcast sender
    // hardware address (never answered).
    for (sha, spa) in [
        (REQ_MAC, Ipv4Addr::UNSPECIFIED),
        (MacAddr([0xff; 6]), Ipv4Addr::new(10, 0, 0, 2)),
    ] {
        let mut f = req;
        f.arp = ArpRepr::request(sha, spa, VIP4);
        seeds.push(f.to_bytes());
    }
    // An NS whose source link-layer address option is a multicast address.
    let mut ns = NdpFrame::solicit(
        MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        "2001:db8::2".parse().unwrap(),
        VIP6,
    )
    .to_bytes();
    ns[6..12].copy_from_slice(&REQ_MAC.0);
    seeds.push(ns);
    seeds.push(NdpFrame::solicit(REQ_MAC, "2001:db8::2".parse().unwrap(), VIP6).to_bytes());
    seeds.push(NdpFrame::solicit(REQ_MAC, Ipv6Addr::UNSPECIFIED, VIP6).to_bytes());
    seeds.push(NdpFrame::unsolicited_na(MacAddr([0, 0, 0x5e, 0, 2, 51]), VIP6, true).to_bytes());
    Ok(seeds)
}

/// The README's TOML configurations, the conformance scenarios, and the TOML the keepalived
/// fixtures import to.
fn toml_seeds(root: &Path) -> Result<Vec<Vec<u8>>> {
    let mut seeds = Vec::new();
    let readme = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let mut block: Option<String> = None;
    for line in readme.lines() {
        match (&mut block, line.trim_start()) {
            (None, "```toml") => block = Some(String::new()),
            (Some(b), "```") => {
                seeds.push(std::mem::take(b).into_bytes());
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    let conf = root.join("vrrp-agent/core/tests/conformance");
    for e in std::fs::read_dir(&conf).with_context(|| format!("reading {}", conf.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "toml") {
            seeds.push(std::fs::read(&p)?);
        }
    }
    for p in keepalived_files(root)? {
        if let Ok(imp) = keepalived_conf::import(&p) {
            seeds.push(imp.to_toml().into_bytes());
        }
    }
    if seeds.is_empty() {
        bail!("no TOML seeds found");
    }
    Ok(seeds)
}

fn keepalived_files(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("vrrp-agent/tests/fixtures/keepalived");
    let mut out = Vec::new();
    for sub in [dir.clone(), dir.join("conf.d")] {
        for e in std::fs::read_dir(&sub).with_context(|| format!("reading {}", sub.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "conf") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn keepalived_seeds(root: &Path) -> Result<Vec<Vec<u8>>> {
    keepalived_files(root)?
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

const TOML_DICT: &[&[u8]] = &[
    b"[[instance]]\n",
    b"[global]\n",
    b"[[check]]\n",
    b"[[sync_group]]\n",
    b" = ",
    b"\"",
    b"'''",
    b"\n",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"${FUZZ_ENV}",
    b"${",
    b"-1",
    b"4294967296",
    b"1e400",
    b"0.001",
    b"priority",
    b"vrid",
    b"interface",
    b"vips",
    b"advert_int",
    b"track",
    b"check=web weight=-120",
    b"10.0.0.1/24",
    b"fe80::1",
    b"2001:db8::1/64",
];

const KEEPALIVED_DICT: &[&[u8]] = &[
    b"vrrp_instance VI {\n",
    b"vrrp_script chk {\n",
    b"vrrp_sync_group G {\n",
    b"global_defs {\n",
    b"}\n",
    b"{",
    b"}",
    b"\"",
    b"#",
    b"!",
    b"\\\n",
    b"\n",
    b" ",
    b"include conf.d/*.conf\n",
    b"virtual_ipaddress {\n",
    b"track_script {\n",
    b"unicast_peer {\n",
    b"authentication {\n",
    b"priority ",
    b"weight -60",
    b"-1",
    b"4294967296",
    b"0.001",
    b"10.0.0.1/24 dev eth0 label eth0:1",
    b"fe80::1",
    b"@",
    b"$VAR",
];

// ---------------------------------------------------------------------------------------------
// Properties.

const REQ_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xaa]);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

/// The receive checks' instances: v3 IPv4, v2 IPv4 with a password, v3 IPv6, all VRID 51.
fn instances() -> Vec<InstanceCfg> {
    let base = InstanceCfg {
        vrid: 51,
        family: Family::V4,
        version: Version::V3,
        priority: 100,
        advert_int: 100,
        auth: Auth::None,
        addrs: vec![IpAddr::V4(VIP4)],
        checksum: ChecksumOpts::default(),
        unicast_peers: Vec::new(),
        local_addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
    };
    vec![
        base.clone(),
        InstanceCfg {
            version: Version::V2,
            auth: Auth::simple(b"secret").unwrap(),
            checksum: ChecksumOpts {
                v3_checksum_as_v2: true,
            },
            ..base.clone()
        },
        InstanceCfg {
            family: Family::V6,
            addrs: vec![IpAddr::V6(VIP6)],
            local_addrs: vec![IpAddr::V6("fe80::1".parse().unwrap())],
            ..base
        },
    ]
}

fn check_advert(b: &[u8], instances: &[InstanceCfg]) -> Result<Verdict, String> {
    let mut verdict = Verdict::Rejected;
    for opts in [
        ChecksumOpts::default(),
        ChecksumOpts {
            v3_checksum_as_v2: true,
        },
    ] {
        let Ok(f) = AdvertFrame::parse(b, opts) else {
            continue;
        };
        verdict = Verdict::Accepted;
        let bytes = f
            .to_bytes(opts)
            .map_err(|e| format!("accepted advert does not emit ({opts:?}): {e}"))?;
        let g = AdvertFrame::parse(&bytes, opts)
            .map_err(|e| format!("emitted advert does not parse ({opts:?}): {e}"))?;
        if g != f {
            return Err(format!("advert round trip differs: {f:?} -> {g:?}"));
        }
    }
    // The receive checks: errors are values too.
    let _ = validate_bytes(b, instances).map_err(|e| e.to_string());
    Ok(verdict)
}

fn check_arp(b: &[u8]) -> Result<Verdict, String> {
    let Ok(f) = ArpFrame::parse(b) else {
        return Ok(Verdict::Rejected);
    };
    let g =
        ArpFrame::parse(&f.to_bytes()).map_err(|e| format!("emitted ARP does not parse: {e}"))?;
    if g != f {
        return Err(format!("ARP round trip differs: {f:?} -> {g:?}"));
    }
    let reply = ArpFrame::reply_to(&f, MacAddr([0, 0, 0x5e, 0, 1, 51]));
    let back =
        ArpFrame::parse(&reply.to_bytes()).map_err(|e| format!("ARP reply does not parse: {e}"))?;
    if back != reply {
        return Err(format!(
            "ARP reply round trip differs: {reply:?} -> {back:?}"
        ));
    }
    Ok(Verdict::Accepted)
}

fn check_ndp(b: &[u8]) -> Result<Verdict, String> {
    let Ok(f) = NdpFrame::parse(b) else {
        return Ok(Verdict::Rejected);
    };
    let g =
        NdpFrame::parse(&f.to_bytes()).map_err(|e| format!("emitted NDP does not parse: {e}"))?;
    if g != f {
        return Err(format!("NDP round trip differs: {f:?} -> {g:?}"));
    }
    if matches!(f.msg, NdpMessage::NeighborSolicit { .. }) {
        let na = NdpFrame::answer(&f, MacAddr([0, 0, 0x5e, 0, 2, 51]), true);
        let back = NdpFrame::parse(&na.to_bytes())
            .map_err(|e| format!("NA answer does not parse: {e}"))?;
        if back != na {
            return Err(format!("NA answer round trip differs: {na:?} -> {back:?}"));
        }
    }
    Ok(Verdict::Accepted)
}

fn one_line(what: &str, msg: &str) -> Result<(), String> {
    if msg.trim().is_empty() || msg.contains('\n') {
        return Err(format!("{what} error is not one line: {msg:?}"));
    }
    Ok(())
}

fn check_toml(b: &[u8]) -> Result<Verdict, String> {
    let src = String::from_utf8_lossy(b);
    let env = |n: &str| (n == "FUZZ_ENV").then(|| "10.0.0.1".to_string());
    match config::parse_str_with_env(&src, Path::new("fuzz.toml"), env) {
        Ok(_) => Ok(Verdict::Accepted),
        Err(e) => {
            one_line("TOML", &e.to_string())?;
            Ok(Verdict::Rejected)
        }
    }
}

fn check_keepalived(b: &[u8]) -> Result<Verdict, String> {
    let src = String::from_utf8_lossy(b);
    // An include of an absolute or parent path would read the host's files (/dev/zero never
    // ends); relative includes resolve under a directory that does not exist.
    if src.lines().any(|l| {
        l.contains("include") && (l.contains('/') && (l.contains(" /") || l.contains("..")))
    }) {
        return Ok(Verdict::Skipped);
    }
    let imp = match keepalived_conf::import_str(&src, Path::new("/nonexistent-vrrp-fuzz/k.conf")) {
        Ok(imp) => imp,
        Err(e) => {
            one_line("keepalived.conf", &e.to_string())?;
            return Ok(Verdict::Rejected);
        }
    };
    for w in &imp.warnings {
        one_line("keepalived.conf warning", &w.to_string())?;
    }
    // `build` renders `to_toml` and parses it with the TOML front-end: when it builds, that
    // TOML parsed. Only a refused build needs the separate syntax check (rendering and parsing
    // the TOML twice per input was a fifth of this target's time).
    match imp.build() {
        Ok(_) => Ok(Verdict::Accepted),
        Err(e) => {
            one_line("keepalived.conf build", &e)?;
            let text = imp.to_toml();
            if let Err(e) = text.parse::<toml::Table>() {
                return Err(format!(
                    "imported keepalived.conf gives TOML that does not parse: {e}\n{text}"
                ));
            }
            Ok(Verdict::Rejected)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XDP under BPF_PROG_TEST_RUN.

const BATCH: usize = 2048;

/// VIPs of the fuzzed fast path: (address, VRID).
const FUZZ_VIPS: [(IpAddr, u8); 3] = [
    (IpAddr::V4(VIP4), 51),
    (IpAddr::V6(VIP6), 51),
    (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101)), 52),
];
/// The fuzzed routers: (family, VRID).
const FUZZ_ROUTERS: [(u8, u8); 3] = [(FAMILY_IPV4, 51), (FAMILY_IPV6, 51), (FAMILY_IPV4, 52)];
const IFACE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const LONG_BOUND: Duration = Duration::from_secs(3600);

/// What the maps hold while one batch runs: the fuzz rotates through all of them, one per
/// batch, so every router state the responder, Accept_Mode, VMAC acceptance and the egress
/// classifier distinguish is fuzzed (the counters must add up in each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MapState {
    /// VRIDs 51 (IPv4, IPv6) and 52 (IPv4) configured, their VIPs in the maps; IPv4 51 owned
    /// without Accept_Mode, IPv6 51 owned with it, 52 not owned; heartbeat fresh.
    OwnedFresh,
    /// As `OwnedFresh`, but every router owned and the heartbeat older than their bound.
    OwnedStale,
    /// As `OwnedFresh`, but no router owned.
    NotOwned,
    /// IPv4 51 owned with no bound (never stale) and Accept_Mode, IPv6 51 owned but stale
    /// (its own short bound), 52 owned fresh; IPv4 51 not in `VRIDS`; no interface MAC.
    Mixed,
    /// Nothing configured: no VRID, no VIP, no router owned, no interface MAC (as loaded).
    Unconfigured,
}

impl MapState {
    const ALL: [MapState; 5] = [
        MapState::OwnedFresh,
        MapState::OwnedStale,
        MapState::NotOwned,
        MapState::Mixed,
        MapState::Unconfigured,
    ];

    fn name(self) -> &'static str {
        match self {
            MapState::OwnedFresh => "owned_fresh",
            MapState::OwnedStale => "owned_stale",
            MapState::NotOwned => "not_owned",
            MapState::Mixed => "mixed",
            MapState::Unconfigured => "unconfigured",
        }
    }
}

struct Xdp {
    fp: FastPath,
    events: aya::maps::RingBuf<aya::maps::MapData>,
    drained: u64,
    /// Frames run through the XDP program / the TC egress classifier since loading.
    ran: u64,
    egress_ran: u64,
    /// Return values seen since loading: XDP actions (index 0..=4), TC verdicts (0..=7).
    actions: [u64; 5],
    verdicts: [u64; 8],
}

/// Whether the kernel's test-run takes `frame` for an skb program (the TC egress classifier):
/// it refuses (EINVAL) an IPv4 or IPv6 frame shorter than the fixed IP header its ethertype
/// announces. Such a frame never reaches egress (the kernel builds what it sends), so the
/// fuzzer leaves it out of the classifier's run instead of padding it into another frame.
fn skb_test_run_takes(frame: &[u8]) -> bool {
    match frame.get(12..14) {
        Some([0x08, 0x00]) => frame.len() >= 14 + 20,
        Some([0x86, 0xdd]) => frame.len() >= 14 + 40,
        Some(_) => true,
        None => false,
    }
}

impl Xdp {
    /// A freshly loaded program with its maps in `state`.
    fn new(state: MapState) -> Result<Xdp> {
        let mut fp = FastPath::load().context("loading the XDP program (needs root)")?;
        let events = fp.take_events()?;
        let mut x = Xdp {
            fp,
            events,
            drained: 0,
            ran: 0,
            egress_ran: 0,
            actions: [0; 5],
            verdicts: [0; 8],
        };
        x.set_state(state)?;
        Ok(x)
    }

    /// Writes every map entry the fuzz uses for `state` (whatever the previous state was), the
    /// heartbeat included.
    fn set_state(&mut self, state: MapState) -> Result<()> {
        use MapState::*;
        let fp = &mut self.fp;
        let configured = state != Unconfigured;
        // Routine adverts are queued without a wake-up (VRID_QUIET, as the agent's election
        // sets it) in every state but the first, so both ring paths are fuzzed.
        let quiet = if state == OwnedFresh { 0 } else { VRID_QUIET };
        for (fam, vrid) in FUZZ_ROUTERS {
            let on = configured && !(state == Mixed && (fam, vrid) == (FAMILY_IPV4, 51));
            fp.set_vrid_flags(fam, vrid, if on { VRID_ON | quiet } else { 0 })?;
        }
        for (vip, vrid) in FUZZ_VIPS {
            if configured {
                fp.add_vip(vip, vrid)?;
            } else {
                // Absent already after a fresh load: not an error.
                let _ = fp.remove_vip(vip);
            }
        }
        let mac = if matches!(state, Mixed | Unconfigured) {
            [0; 6]
        } else {
            IFACE_MAC
        };
        fp.set_iface_mac(mac)?;
        let short = Duration::from_millis(10);
        // (owned, accept, bound) per FUZZ_ROUTERS entry.
        let routers: [(bool, bool, Duration); 3] = match state {
            OwnedFresh => [
                (true, false, LONG_BOUND),
                (true, true, LONG_BOUND),
                (false, false, LONG_BOUND),
            ],
            OwnedStale => [
                (true, false, short),
                (true, true, short),
                (true, false, short),
            ],
            NotOwned | Unconfigured => [(false, false, LONG_BOUND); 3],
            Mixed => [
                (true, true, Duration::ZERO),
                (true, false, Duration::from_nanos(1)),
                (true, false, LONG_BOUND),
            ],
        };
        for ((fam, vrid), (owned, accept, bound)) in FUZZ_ROUTERS.into_iter().zip(routers) {
            fp.set_router(fam, vrid, owned, accept, bound)?;
        }
        let now = monotonic_ns();
        // Stale: a heartbeat a second old against a 10 ms bound.
        let hb = if state == OwnedStale {
            now.saturating_sub(1_000_000_000)
        } else {
            now
        };
        fp.heartbeat(hb)?;
        Ok(())
    }

    /// Runs one program on `frame`: its return value, or `None` when the frame is one the
    /// kernel's skb test-run refuses (see [`skb_test_run_takes`]).
    fn run(&mut self, frame: &[u8], egress: bool) -> Result<Option<u32>> {
        if egress && !skb_test_run_takes(frame) {
            return Ok(None);
        }
        let opts = TestRunOptions {
            data_in: Some(frame),
            ..Default::default()
        };
        let r = if egress {
            self.fp.egress_program()?.test_run(opts)
        } else {
            self.fp.program()?.test_run(opts)
        };
        let prog = if egress {
            "TC egress classifier"
        } else {
            "XDP program"
        };
        Ok(r.with_context(|| {
            format!(
                "BPF_PROG_TEST_RUN of the {prog} on a {}-byte frame {}",
                frame.len(),
                hex_head(frame)
            )
        })?
        .return_value)
        .map(|v| {
            if egress {
                self.egress_ran += 1;
                if let Some(n) = self.verdicts.get_mut(v as usize) {
                    *n += 1;
                }
            } else {
                self.ran += 1;
                if let Some(n) = self.actions.get_mut(v as usize) {
                    *n += 1;
                }
            }
            Some(v)
        })
    }

    fn drain(&mut self) -> Result<()> {
        while let Some(item) = self.events.next() {
            parse_event(&item).context("event record has the AdvertEvent size")?;
            self.drained += 1;
        }
        Ok(())
    }

    /// The counters add up for the frames run through each program since loading.
    fn check(&mut self) -> Result<(), String> {
        let (ran, egress_ran) = (self.ran, self.egress_ran);
        self.drain().map_err(|e| format!("{e:#}"))?;
        let c = self.fp.counters().map_err(|e| format!("{e:#}"))?;
        let s = c.summary();
        if c.get(Counter::Frames) != ran {
            return Err(format!(
                "Frames = {} after {ran} frames: {s}",
                c.get(Counter::Frames)
            ));
        }
        if c.outcomes() != ran {
            return Err(format!(
                "outcomes add up to {} after {ran} frames: {s}",
                c.outcomes()
            ));
        }
        if c.get(Counter::EgressFrames) != egress_ran {
            return Err(format!(
                "EgressFrames = {} after {egress_ran} frames: {s}",
                c.get(Counter::EgressFrames)
            ));
        }
        if c.egress_outcomes() != egress_ran {
            return Err(format!(
                "egress outcomes add up to {} after {egress_ran} frames: {s}",
                c.egress_outcomes()
            ));
        }
        // Each action is the one its outcome counters promise.
        let tx = c.get(Counter::ArpReplied) + c.get(Counter::NsReplied);
        if self.actions[3] != tx {
            return Err(format!(
                "{} XDP_TX for {tx} ArpReplied + NsReplied: {s}",
                self.actions[3]
            ));
        }
        let drops = [
            Counter::VrrpToUser,
            Counter::GroupSenderDropped,
            Counter::ArpVipNotOwned,
            Counter::NsVipNotOwned,
            Counter::VipStaleDropped,
            Counter::VipNotAccepted,
        ]
        .iter()
        .map(|k| c.get(*k))
        .sum::<u64>();
        // NaResizeFailed passes or (frame already cut) drops.
        let dropped = self.actions[1];
        if dropped < drops || dropped > drops + c.get(Counter::NaResizeFailed) {
            return Err(format!(
                "{dropped} XDP_DROP for {drops} dropping outcomes (+ up to NaResizeFailed): {s}"
            ));
        }
        let shot =
            c.get(Counter::EgressNeighDroppedNotOwned) + c.get(Counter::EgressNeighDroppedStale);
        if self.verdicts[2] != shot {
            return Err(format!(
                "{} TC_ACT_SHOT for {shot} EgressNeighDropped*: {s}",
                self.verdicts[2]
            ));
        }
        if self.drained != c.get(Counter::VrrpToUser) {
            return Err(format!(
                "{} events in the ring for VrrpToUser = {}: {s}",
                self.drained,
                c.get(Counter::VrrpToUser)
            ));
        }
        Ok(())
    }
}

/// The first bytes of a frame in hex, for error messages.
fn hex_head(frame: &[u8]) -> String {
    let n = frame.len().min(64);
    let hex: String = frame[..n].iter().map(|b| format!("{b:02x}")).collect();
    if frame.len() > n {
        format!("{hex}..")
    } else {
        hex
    }
}

fn fuzz_xdp(
    root: &Path,
    execs: u64,
    limit: Option<Duration>,
    rng: &mut SmallRng,
    fail_dir: &Path,
) -> Result<TargetResult> {
    let seeds = frame_seeds(root)?;
    let mut r = TargetResult {
        target: "xdp".into(),
        seeds: seeds.len(),
        ..Default::default()
    };
    let mut x = Xdp::new(MapState::OwnedFresh)?;
    let mut batches = [0u64; MapState::ALL.len()];
    let dict: &[&[u8]] = &[
        &[0x08, 0x00],
        &[0x86, 0xdd],
        &[0x08, 0x06],
        &[0x81, 0x00],
        &[112],
        &[58],
        &[135, 0],
    ];
    let start = Instant::now();
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut actions: BTreeMap<u32, u64> = BTreeMap::new();
    let mut egress_actions: BTreeMap<u32, u64> = BTreeMap::new();
    let mut tc_skipped = 0u64;
    while r.execs < execs && limit.is_none_or(|l| start.elapsed() < l) {
        batch.clear();
        let n = (execs - r.execs).min(BATCH as u64) as usize;
        for i in 0..n {
            let mut f = if r.execs + (i as u64) < seeds.len() as u64 {
                seeds[r.execs as usize + i].clone()
            } else {
                let mut f = seeds[rng.random_range(0..seeds.len())].clone();
                mutate(rng, &mut f, &seeds, dict);
                if rng.random_bool(0.5) {
                    fix_checksums(&mut f);
                }
                f
            };
            // The kernel's test-run refuses less than an Ethernet header, and more than fits
            // a page; frames on the wire are at most 1518 bytes (with a tag) anyway.
            if f.len() < 14 {
                f.resize(14, 0);
            }
            f.truncate(1518);
            batch.push(f);
        }
        let k = batches.iter().sum::<u64>() as usize % MapState::ALL.len();
        let state = MapState::ALL[k];
        batches[k] += 1;
        x.set_state(state)?;
        let mut bad: Option<(usize, String)> = None;
        for (i, f) in batch.iter().enumerate() {
            let a = x.run(f, false)?.context("XDP test-run takes every frame")?;
            *actions.entry(a).or_default() += 1;
            if !(1..=3).contains(&a) && bad.is_none() {
                bad = Some((i, format!("XDP action {a} (not DROP/PASS/TX)")));
            }
            match x.run(f, true)? {
                Some(e) => {
                    *egress_actions.entry(e).or_default() += 1;
                    if !matches!(e, 0 | 2) && bad.is_none() {
                        bad = Some((i, format!("TC egress verdict {e} (not OK/SHOT)")));
                    }
                }
                None => tc_skipped += 1,
            }
        }
        r.execs += batch.len() as u64;
        if let Some((i, msg)) = bad {
            r.failures += 1;
            let msg = format!("maps {}: {msg}", state.name());
            r.saved
                .push(save_failure(fail_dir, "xdp", r.failures, &batch[i], &msg));
        }
        if let Err(msg) = x.check() {
            // Find the frame: fresh program, one frame at a time.
            r.failures += 1;
            let mut y = Xdp::new(state)?;
            let mut culprit = None;
            for f in batch.iter() {
                y.run(f, false)?;
                y.run(f, true)?;
                if let Err(m) = y.check() {
                    culprit = Some((f.clone(), m));
                    break;
                }
            }
            let (input, m) = culprit.unwrap_or_else(|| (batch.concat(), msg.clone()));
            let m = format!("maps {}: {m}", state.name());
            r.saved
                .push(save_failure(fail_dir, "xdp", r.failures, &input, &m));
            // Carry on with a fresh program so later batches are checked from zero.
            x = Xdp::new(state)?;
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    r.execs_per_s = r.execs as f64 / r.secs.max(1e-9);
    let c = x.fp.counters()?;
    for (a, n) in actions {
        let name = match a {
            1 => "xdp_drop".to_string(),
            2 => "xdp_pass".to_string(),
            3 => "xdp_tx".to_string(),
            a => format!("xdp_action_{a}"),
        };
        r.extra.insert(name, n);
    }
    for (a, n) in egress_actions {
        r.extra.insert(format!("tc_verdict_{a}"), n);
    }
    for ctr in Counter::ALL.iter() {
        let v = c.get(*ctr);
        if v > 0 {
            r.extra.insert(format!("{ctr:?}"), v);
        }
    }
    r.extra.insert("ring_events".into(), x.drained);
    for (s, n) in MapState::ALL.iter().zip(batches) {
        r.extra.insert(format!("batches_{}", s.name()), n);
    }
    r.extra.insert("tc_not_run_short_ip".into(), tc_skipped);
    r.accepted = r.execs;
    Ok(r)
}
