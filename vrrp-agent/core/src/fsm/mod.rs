//! RFC 9568 (VRRPv3) / RFC 3768 (VRRPv2) state machine, sans-IO.
//!
//! One [`VirtualRouter`] per configured virtual router. The event loop feeds it [`Input`]s with
//! the current [`Instant`] and applies the returned [`Action`]s; it never reads a clock, opens a
//! socket or sleeps. Adverts arrive already parsed and validated as [`RxAdvert`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use vrrp_core::fsm::{Action, Config, Input, Instant, State, VirtualRouter};
//!
//! let ip = |d| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d));
//! let mut vr = VirtualRouter::new(Config::new(7, 100, ip(2), vec![ip(254)])).unwrap();
//! let acts = vr.handle(Input::Startup, Instant::ZERO);
//! assert_eq!(vr.state(), State::Backup);
//! // Nobody advertises: the Master_Down_Timer (3 × 1 s + 609.375 ms) runs out.
//! let Some(Action::ArmTimer { at }) = acts.last().cloned() else { panic!() };
//! let acts = vr.handle(Input::Timer, at);
//! assert_eq!(vr.state(), State::Master);
//! assert!(acts.contains(&Action::BecomeMaster { accept: false }));
//! ```
mod config;
mod machine;
pub mod timers;

pub use config::{Config, ConfigError, Family, Version, MAX_PREEMPT_DELAY};
pub use machine::{
    Action, Input, Reason, RxAdvert, State, VirtualRouter, SEND_RETRIES, SEND_RETRY_DELAY,
};
pub use timers::{centis, master_down_interval, skew_time, Instant};
