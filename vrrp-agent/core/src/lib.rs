//! vrrp-core: the protocol and its decisions, sans-IO.
//!
//! Nothing in this crate opens a socket, reads a clock, logs, sleeps or touches the kernel; the
//! compiler holds it to that: `unsafe` is forbidden and no I/O crate (tokio, aya, libc, nix,
//! socket2, log, tracing, netlink) is in its dependency tree. Time comes in as an argument,
//! packets come in as bytes, and everything the outside world must do goes out as data.
//!
//! - [`wire`]: packet codecs (VRRP v2/v3, ARP, NDP, the Ethernet/IP framing of adverts) and
//!   receive validation.
//! - [`fsm`]: the RFC 9568 §6 state machine of one virtual router.
//! - [`node`]: the [`Core`], which drives every interface's virtual routers: events in,
//!   commands and notifications out.
//! - [`config`]: the configuration model and its validation.
//! - [`Family`], [`Version`]: the one vocabulary, shared with the kernel ABI (`vrrp-common`).
#![forbid(unsafe_code)]

pub mod config;
pub mod fsm;
pub mod node;
mod vocab;
pub mod wire;

pub use node::{decide_resume, LeftRouter, Refusal, ResumeDecision, ResumeFacts};
pub use node::{
    Command, Core, Event, Heartbeat, IfaceEnv, IfaceId, InstanceId, Model, Notification, Received,
    ReloadPlan, Report, Snapshot, StateChange, TrackerId, TrackerInfo,
};
pub use vocab::{Family, Version, IPPROTO_VRRP};
