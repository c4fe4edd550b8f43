//! Shared by the XDP test suites: a loaded fast path under BPF_PROG_TEST_RUN, and the frames the
//! responder tests send.
#![allow(dead_code)]

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use aya::{
    maps::{MapData, RingBuf},
    programs::{ProgramError, ProgramInfo},
    TestRun, TestRunOptions, TestRunResult,
};
use vrrp_agent::{
    clock::monotonic_ns,
    fastpath::{parse_event, FastPath},
    wire::{checksum, ArpFrame, ArpRepr, MacAddr, NdpFrame},
};
use vrrp_common::{AdvertEvent, Counter};
use vrrp_integration_tests::require_root;

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;

/// The fast path loaded (not attached), its ring buffer taken.
pub struct Harness {
    pub fp: FastPath,
    pub events: RingBuf<MapData>,
}

impl Harness {
    pub fn new(vrids: &[(u8, u8)]) -> Self {
        require_root();
        let mut fp = FastPath::load().expect("load XDP program");
        for &(family, vrid) in vrids {
            fp.set_vrid(family, vrid, true).unwrap();
        }
        let events = fp.take_events().unwrap();
        Harness { fp, events }
    }

    pub fn run(&mut self, frame: &[u8]) -> u32 {
        self.run_repeat(frame, 1)
    }

    pub fn run_repeat(&mut self, frame: &[u8], repeat: u32) -> u32 {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..Default::default()
        };
        self.fp
            .program()
            .unwrap()
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN")
            .return_value
    }

    /// Runs the program once; returns its action and the frame as it left the program.
    pub fn run_out(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let (r, out) = test_run_out(self.fp.program().unwrap(), frame).expect("BPF_PROG_TEST_RUN");
        (r.return_value, out)
    }

    /// Runs the TC egress classifier once; returns its verdict and the frame as it left it.
    pub fn run_egress(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let (r, out) = test_run_out(self.fp.egress_program().unwrap(), frame)
            .expect("BPF_PROG_TEST_RUN (classifier)");
        (r.return_value, out)
    }

    pub fn assert_egress_outcomes_add_up(&self) {
        let c = self.fp.counters().unwrap();
        assert_eq!(
            c.egress_outcomes(),
            c.get(Counter::EgressFrames),
            "every egress frame must bump exactly one egress outcome counter: {}",
            c.summary()
        );
    }

    pub fn events(&mut self) -> Vec<AdvertEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            out.push(parse_event(&item).expect("event record has the AdvertEvent size"));
        }
        out
    }

    pub fn counter(&self, c: Counter) -> u64 {
        self.fp.counters().unwrap().get(c)
    }

    pub fn assert_outcomes_add_up(&self) {
        let c = self.fp.counters().unwrap();
        assert_eq!(
            c.outcomes(),
            c.get(Counter::Frames),
            "every frame must bump exactly one outcome counter: {}",
            c.summary()
        );
    }

    /// Marks (`family`, `vrid`) owned with a fail-safe bound of `stale_after` and a heartbeat
    /// written now.
    pub fn own(&mut self, family: u8, vrid: u8, accept: bool, stale_after: Duration) {
        self.fp
            .set_router(family, vrid, true, accept, stale_after)
            .unwrap();
        self.beat();
    }

    pub fn beat(&mut self) {
        self.fp.heartbeat(monotonic_ns()).unwrap();
    }
}

/// Runs `prog` once on `frame` with room for the frame it hands back: the test run's result and
/// that frame (cut to `data_size_out`).
pub fn test_run_out<P>(prog: &P, frame: &[u8]) -> Result<(TestRunResult, Vec<u8>), ProgramError>
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    let mut out = vec![0u8; 4096];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let r = prog.test_run(opts)?;
    out.truncate(r.data_size_out as usize);
    Ok((r, out))
}

/// Prints how many instructions the verifier processed for the program `name` and checks that
/// it stays under the verifier's complexity limit.
pub fn check_verifier_statistics(name: &str, info: &ProgramInfo) {
    let verified = info.verified_instruction_count();
    eprintln!(
        "{name}: {} instructions verified (verifier insns processed)",
        verified.map_or("?".into(), |n| n.to_string())
    );
    if let Some(n) = verified {
        assert!(n < 1_000_000, "verifier complexity limit is 1M: {n}");
    }
}

/// The requester in the responder tests.
pub const REQ_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0xaa]);
pub const REQ4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const REQ6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
pub const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

/// A broadcast ARP request from `REQ_MAC`/`REQ4` for `target`, padded to the 60-byte minimum
/// as it is on the wire.
pub fn arp_request(target: Ipv4Addr, vlan: Option<u16>) -> (ArpFrame, Vec<u8>) {
    let f = ArpFrame {
        eth_dst: MacAddr([0xff; 6]),
        eth_src: REQ_MAC,
        vlan,
        arp: ArpRepr::request(REQ_MAC, REQ4, target),
    };
    let mut bytes = f.to_bytes();
    bytes.resize(bytes.len().max(60), 0);
    (f, bytes)
}

/// A Neighbor Solicitation for `target` from `REQ_MAC` and `src` (`::` for DAD: no source
/// link-layer option then), to the solicited-node group.
pub fn neighbor_solicit(src: Ipv6Addr, target: Ipv6Addr, vlan: Option<u16>) -> Vec<u8> {
    let mut f = NdpFrame::solicit(REQ_MAC, src, target);
    f.vlan = vlan;
    f.to_bytes()
}

/// Appends an NDP option (type, then the body padded to a multiple of 8 with its length byte)
/// to an untagged NS frame and fixes the IPv6 payload length and the ICMPv6 checksum.
pub fn with_ndp_option(ns: &[u8], opt_type: u8, body: &[u8]) -> Vec<u8> {
    let mut f = ns.to_vec();
    let units = (2 + body.len()).div_ceil(8);
    let mut opt = vec![0u8; units * 8];
    opt[0] = opt_type;
    opt[1] = units as u8;
    opt[2..2 + body.len()].copy_from_slice(body);
    f.extend_from_slice(&opt);
    let l3 = 14;
    let plen = (f.len() - l3 - 40) as u16;
    f[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[l3 + 8..l3 + 24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[l3 + 24..l3 + 40]).unwrap());
    f[l3 + 42..l3 + 44].copy_from_slice(&[0, 0]);
    let acc = checksum::pseudo_header_v6(src, dst, 58, u32::from(plen));
    let sum = checksum::finish(checksum::accumulate(acc, &f[l3 + 40..]));
    f[l3 + 42..l3 + 44].copy_from_slice(&sum.to_be_bytes());
    f
}
