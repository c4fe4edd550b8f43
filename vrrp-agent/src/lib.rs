//! vrrp-agent: a VRRP (RFC 9568 / RFC 3768) failover agent with an XDP fast path.
//!
//! The crate is split along the sans-IO line:
//! - [`wire`]: packet codecs (VRRP v2/v3, ARP, NDP, the IP/Ethernet rules for adverts). Bytes in,
//!   structs out, and back. No I/O.
//! - [`fsm`]: the RFC 9568 §6 state machine, `(event, now) -> actions`. No clocks, no sockets.
//! - the decisions (one `Core` for every interface) live in `vrrp_core::node`.
//! - everything here is I/O at the edges: the supervisor loop ([`supervisor`]), a [`port`] per
//!   interface (XDP program, ring buffer, raw tx, VIPs), the log rendered from the core's
//!   notifications ([`notify_log`]).
pub mod agent;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod early_rx;
pub mod fastpath;
pub mod keepalived_conf;
pub mod logfmt;
pub mod metrics;
pub mod netlink;
pub mod notify_log;
pub mod notify_script;
pub mod overflow;
pub mod port;
pub mod rtnl;
pub mod sched;
pub mod step_hook;
pub mod supervisor;
pub mod timer;
pub mod tx;

// The protocol lives in the core crate; these paths stay for the agent's own modules.
pub use vrrp_core::{fsm, wire};
