//! vrrp-agent: a VRRP (RFC 9568 / RFC 3768) failover agent with an XDP fast path.
//!
//! The crate is split along the sans-IO line:
//! - [`wire`]: packet codecs (VRRP v2/v3, ARP, NDP, the IP/Ethernet rules for adverts). Bytes in,
//!   structs out, and back. No I/O.
//! - [`fsm`]: the RFC 9568 §6 state machine, `(event, now) -> actions`. No clocks, no sockets.
//! - everything else is I/O at the edges: loading and attaching the XDP program, reading its
//!   ring buffer and counters.
pub mod agent;
pub mod cli;
pub mod clock;
pub mod config;
pub mod driver;
pub mod fastpath;
pub mod netlink;
pub mod overflow;
pub mod rtnl;
pub mod sched;
pub mod timer;
pub mod tx;

// The protocol lives in the core crate; these paths stay for the agent's own modules.
pub use vrrp_core::{fsm, wire};
