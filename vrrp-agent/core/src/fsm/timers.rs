//! Time and the RFC timer formulas.
//!
//! The state machine never reads a clock: the caller passes an [`Instant`] (nanoseconds on a
//! monotonic clock, e.g. `CLOCK_MONOTONIC` / `bpf_ktime_get_ns`). Spans are
//! [`core::time::Duration`]. VRRPv3 speaks centiseconds; the formulas below are evaluated exactly
//! in nanoseconds rather than truncated to whole centiseconds (truncation would make
//! `Skew_Time` zero for every priority at a 1 cs interval and defeat its purpose of staggering
//! backups; 1 cs × 10⁷ ns / 256 has no rounding at all in practice: `10⁷·k / 256` is exact to
//! ±0.5 ns).
use core::ops::{Add, Sub};
use core::time::Duration;

use super::config::Version;

/// A point on the caller's monotonic clock, in nanoseconds. Only differences are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// An instant `ns` nanoseconds after the clock's origin.
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time (never panics).
    pub fn saturating_add(self, d: Duration) -> Instant {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(add))
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::ZERO`].
    fn sub(self, d: Duration) -> Instant {
        let sub = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(sub))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Nanoseconds in one centisecond.
pub const NS_PER_CS: u64 = 10_000_000;

/// A span of `cs` centiseconds.
pub const fn centis(cs: u16) -> Duration {
    Duration::from_nanos(cs as u64 * NS_PER_CS)
}

/// `Skew_Time`.
///
/// * v3 (RFC 9568 §6.1): `((256 − Priority) × Master_Adver_Interval) / 256`, with
///   `Master_Adver_Interval` in centiseconds (`master_adver_int_cs`).
/// * v2 (RFC 3768 §6.1): `(256 − Priority) / 256` seconds, independent of the interval.
pub fn skew_time(version: Version, priority: u8, master_adver_int_cs: u16) -> Duration {
    let weight = 256 - u64::from(priority);
    match version {
        Version::V3 => {
            Duration::from_nanos(weight * u64::from(master_adver_int_cs) * NS_PER_CS / 256)
        }
        Version::V2 => Duration::from_nanos(weight * 1_000_000_000 / 256),
    }
}

/// `Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time` (v3), or
/// `3 × Advertisement_Interval + Skew_Time` (v2; pass the local interval in centiseconds).
pub fn master_down_interval(version: Version, priority: u8, master_adver_int_cs: u16) -> Duration {
    centis(master_adver_int_cs) * 3 + skew_time(version, priority, master_adver_int_cs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_skew_and_master_down_at_one_second() {
        // prio 100, 100 cs: skew = 156 * 100 / 256 cs = 60.9375 cs = 609.375 ms
        assert_eq!(
            skew_time(Version::V3, 100, 100),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, 100),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn v3_skew_scales_with_interval_v2_does_not() {
        assert_eq!(
            skew_time(Version::V3, 100, 200),
            skew_time(Version::V3, 100, 100) * 2
        );
        assert_eq!(
            skew_time(Version::V2, 100, 200),
            skew_time(Version::V2, 100, 100)
        );
        // v2: (256-254)/256 s = 7.8125 ms
        assert_eq!(
            skew_time(Version::V2, 254, 300),
            Duration::from_nanos(7_812_500)
        );
        assert_eq!(
            master_down_interval(Version::V2, 254, 300),
            Duration::from_nanos(9_007_812_500)
        );
    }

    #[test]
    fn higher_priority_has_shorter_skew() {
        for p in 1..255u8 {
            assert!(skew_time(Version::V3, p + 1, 1) < skew_time(Version::V3, p, 1));
        }
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_nanos(u64::MAX - 1);
        assert_eq!((t + Duration::from_secs(1)).as_nanos(), u64::MAX);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
    }
}
