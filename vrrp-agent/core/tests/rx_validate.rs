//! `validate_parts` (the ring-buffer entry point) and `validate` (whole frames) apply the same
//! rules: for every single-byte corruption of an advert frame past the Ethernet header, both
//! give the same verdict whenever the frame still parses.
use std::net::{IpAddr, Ipv4Addr};

use vrrp_core::wire::{
    validate, validate_parts, AdvertFrame, Auth, ChecksumOpts, Family, InstanceCfg, RxFrame,
    RxParts, Version, VrrpRepr,
};

#[test]
fn parts_and_frame_validation_agree() {
    let ip = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
    let repr = VrrpRepr {
        version: Version::V3,
        vrid: 7,
        priority: 200,
        max_advert_int: 100,
        auth: Auth::None,
        addrs: vec![ip(100)],
    };
    let cfg = [InstanceCfg {
        vrid: 7,
        family: Family::V4,
        version: Version::V3,
        priority: 100,
        advert_int: 100,
        auth: Auth::None,
        addrs: vec![ip(100)],
        checksum: ChecksumOpts::default(),
        unicast_peers: vec![],
        local_addrs: vec![],
    }];
    let frame = AdvertFrame::multicast(repr, ip(2))
        .to_bytes(ChecksumOpts::default())
        .unwrap();
    let mut compared = 0;
    for pos in 14..frame.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut f = frame.clone();
            f[pos] ^= x;
            let Ok(rx) = RxFrame::parse(&f) else { continue };
            if rx.protocol != 112 {
                continue;
            }
            let parts = RxParts::from(&rx);
            assert_eq!(
                validate(&rx, &cfg),
                validate_parts(&parts, &cfg),
                "byte {pos} ^ {x:#x}"
            );
            compared += 1;
        }
    }
    assert!(compared > 20, "{compared}");
    let rx = RxFrame::parse(&frame).unwrap();
    assert!(validate_parts(&RxParts::from(&rx), &cfg).is_ok());
}
