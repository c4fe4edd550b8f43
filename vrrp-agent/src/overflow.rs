//! Rate-limited reporting of advert ring-buffer overflows (sans-IO).
//!
//! When the ring buffer from the XDP program to the agent is full, the kernel side only bumps
//! `Counter::RingbufFull` and passes the advert to the stack (which drops it: nothing listens
//! for protocol 112). A log line per lost advert would turn an advert flood into a log flood, so
//! the agent reads the counter at most once per [`READ_EVERY`] and logs at most one line per
//! [`WARN_EVERY`] with how many adverts were lost since the previous line. Every decision takes
//! `now`; nothing here reads a clock.
use std::time::Duration;

use crate::fsm::Instant;

/// The counter is read at most this often.
pub const READ_EVERY: Duration = Duration::from_secs(1);
/// At most one warning per this period.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Lost adverts to report, with the time since the previous report (`None`: the first one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub adverts: u64,
    pub since_last: Option<Duration>,
}

/// The rate limiter for one interface's ring buffer.
#[derive(Debug, Clone, Default)]
pub struct OverflowReport {
    last_read: Option<Instant>,
    /// Counter total at the last read. It starts at zero: every agent loads its own program
    /// with its own maps, so nothing an earlier agent counted is seen, and whatever the kernel
    /// counts before the first read (an agent stopped or starved right after attaching) is
    /// reported too.
    last_total: u64,
    /// Lost since the last warning, not reported yet.
    unreported: u64,
    last_warn: Option<Instant>,
    /// A drain found the ring nearly full since the last read: adverts may have been lost, so
    /// the counter is read at the next [`OverflowReport::wake_at`] even if nothing else wakes
    /// the agent (routine adverts do not: a Backup may sleep a whole Master_Down_Interval).
    suspect: bool,
}

impl OverflowReport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the counter should be read at `now` (never read, or [`READ_EVERY`] passed).
    pub fn due(&self, now: Instant) -> bool {
        self.last_read
            .is_none_or(|t| now.saturating_duration_since(t) >= READ_EVERY)
    }

    /// A drain found the ring nearly full: read the counter at [`OverflowReport::wake_at`].
    pub fn suspect(&mut self) {
        self.suspect = true;
    }

    /// When the agent should wake to read the counter: only while a loss is suspected, as soon
    /// as a read is due ([`READ_EVERY`] after the last one).
    pub fn wake_at(&self) -> Option<Instant> {
        self.suspect.then(|| {
            self.last_read
                .map_or(Instant::ZERO, |t| t.saturating_add(READ_EVERY))
        })
    }

    /// The counter's total, read at `now`; a total below the previous one (counters reset)
    /// counts from zero. Returns what to report when a warning is due: something was lost and
    /// the last warning is at least [`WARN_EVERY`] old.
    pub fn observe(&mut self, total: u64, now: Instant) -> Option<Lost> {
        self.last_read = Some(now);
        self.suspect = false;
        let prev = std::mem::replace(&mut self.last_total, total);
        self.unreported += if total >= prev { total - prev } else { total };
        if self.unreported == 0 {
            return None;
        }
        let since_last = self.last_warn.map(|t| now.saturating_duration_since(t));
        if since_last.is_some_and(|d| d < WARN_EVERY) {
            return None;
        }
        self.last_warn = Some(now);
        Some(Lost {
            adverts: std::mem::take(&mut self.unreported),
            since_last,
        })
    }

    /// At a stop: what was lost and not reported yet.
    pub fn flush(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.unreported);
        (n > 0).then_some(n)
    }
}

/// The warning line for `iface`.
pub fn warning(iface: &str, lost: Lost) -> String {
    let since = match lost.since_last {
        Some(d) => format!("in the last {:.0} s", d.as_secs_f64()),
        None => "since start".to_owned(),
    };
    format!(
        "interface {iface}: {} VRRP adverts lost {since}: the ring buffer to the agent was full \
         (the agent could not keep up: most likely an advert flood on the link; find the sender \
         with `tcpdump -eni {iface} vrrp`). At most one such line per {} s.",
        lost.adverts,
        WARN_EVERY.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn reads_at_most_once_a_second() {
        let mut r = OverflowReport::new();
        assert!(r.due(at(0)));
        r.observe(0, at(0));
        assert!(!r.due(at(999)));
        assert!(r.due(at(1000)));
    }

    #[test]
    fn a_suspected_loss_asks_for_a_wake_up_at_the_next_read() {
        let mut r = OverflowReport::new();
        assert_eq!(
            r.wake_at(),
            None,
            "nothing suspected: no wake-up of its own"
        );
        r.observe(0, at(0));
        r.suspect();
        assert_eq!(r.wake_at(), Some(at(1000)));
        r.observe(7, at(1000));
        assert_eq!(r.wake_at(), None, "read: nothing suspected any more");
    }

    #[test]
    fn losses_before_the_first_read_are_reported() {
        // The agent was stopped (or starved) between attaching and its first read.
        let mut r = OverflowReport::new();
        assert_eq!(
            r.observe(5000, at(0)),
            Some(Lost {
                adverts: 5000,
                since_last: None
            })
        );
        assert_eq!(r.observe(5000, at(1000)), None, "nothing new");
    }

    #[test]
    fn a_flood_gives_one_line_per_ten_seconds_with_the_count() {
        let mut r = OverflowReport::new();
        r.observe(0, at(0));
        let mut total = 0;
        let mut lines = Vec::new();
        // 30 s of 3,400 lost adverts per second, read every second.
        for s in 1..=30u64 {
            total += 3400;
            if let Some(l) = r.observe(total, at(s * 1000)) {
                lines.push((s, l));
            }
        }
        let when: Vec<u64> = lines.iter().map(|(s, _)| *s).collect();
        assert_eq!(when, [1, 11, 21]);
        assert_eq!(lines[0].1.adverts, 3400);
        assert_eq!(lines[1].1.adverts, 34_000);
        assert_eq!(lines[1].1.since_last, Some(Duration::from_secs(10)));
        // Whatever was lost after the last line is reported at the stop.
        assert_eq!(r.flush(), Some(9 * 3400));
        assert_eq!(r.flush(), None);
        // Every lost advert is reported exactly once.
        assert_eq!(3400 + 34_000 + 34_000 + 9 * 3400, total);
    }

    #[test]
    fn quiet_periods_do_not_warn_and_a_later_loss_warns_at_once() {
        let mut r = OverflowReport::new();
        r.observe(0, at(0));
        assert!(r.observe(10, at(1000)).is_some());
        assert_eq!(r.observe(10, at(20_000)), None);
        let l = r.observe(12, at(60_000)).unwrap();
        assert_eq!(l.adverts, 2);
        assert_eq!(l.since_last, Some(Duration::from_secs(59)));
    }

    #[test]
    fn counter_reset_counts_from_zero() {
        let mut r = OverflowReport::new();
        assert_eq!(r.observe(100, at(0)).unwrap().adverts, 100);
        assert_eq!(r.observe(3, at(11_000)).unwrap().adverts, 3);
    }

    #[test]
    fn warning_names_the_interface_and_the_cause() {
        let w = warning(
            "eth0",
            Lost {
                adverts: 61373,
                since_last: Some(Duration::from_secs(10)),
            },
        );
        assert!(w.starts_with("interface eth0: 61373 VRRP adverts lost in the last 10 s"));
        assert!(w.contains("flood"), "{w}");
    }
}
