//! When the agent writes the fast-path fail-safe heartbeat (issue 11, the CPU floor).
//!
//! The heartbeat rides on wake-ups the agent has anyway (adverts sent and received, timers):
//! at a wake-up it is written if it is at least one period old. Only when no other wake-up
//! comes does the agent wake up for it, two periods after the last write (half the fail-safe
//! bound, as the period is a quarter of it). Before, a fixed timer of one period woke the agent
//! between its adverts and every wake-up wrote the map: at 10 ms adverts that doubled the
//! wake-ups of a master and more than doubled a backup's.
use core::time::Duration;

use crate::fsm::Instant;

/// The heartbeat's schedule: the caller reports writes, asks whether one is due at a wake-up,
/// and arms its timer no later than [`Heartbeat::deadline`].
#[derive(Debug, Clone)]
pub struct Heartbeat {
    period: Duration,
    last: Option<Instant>,
}

impl Heartbeat {
    /// `period`: [`super::Core::heartbeat_period`].
    pub fn new(period: Duration) -> Self {
        Self { period, last: None }
    }

    /// At a wake-up at `now`: is a write due (never written, or at least one period old)?
    pub fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|l| now.saturating_duration_since(l) >= self.period)
    }

    /// A write happened at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// The latest wake-up that keeps the heartbeat fresh: two periods after the last write
    /// (at once if none was written).
    pub fn deadline(&self) -> Instant {
        self.last
            .map_or(Instant::ZERO, |l| l.saturating_add(self.period * 2))
    }
}
