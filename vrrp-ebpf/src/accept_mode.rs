//! Accept_Mode (RFC 9568 §6.1): IP packets addressed to a VIP of an owned router that does not
//! accept them (no `ROUTER_ACCEPT`) are dropped; Neighbor Discovery and VRRP never get here.
use vrrp_common::Counter;

use crate::{
    owner::{owner, Owner},
    DROP, PASS,
};

/// Accept_Mode for an IP packet addressed to a VIP of router (`family`, `vrid`).
#[inline(always)]
pub fn accept_mode(family: u8, vrid: u8) -> (u32, Counter) {
    match owner(family, vrid) {
        Owner::Fresh { accept: true } => (PASS, Counter::VipAccepted),
        Owner::Fresh { accept: false } => (DROP, Counter::VipNotAccepted),
        _ => (PASS, Counter::PassIpOther),
    }
}
