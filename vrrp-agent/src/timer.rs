//! The event loop's timer (I/O edge): a CLOCK_MONOTONIC `timerfd` armed at an absolute
//! deadline and registered with tokio.
//!
//! tokio's own timer wheel has millisecond granularity (a sleep ends on the next tick after
//! its deadline, up to 1 ms late). VRRP timers at 10 ms advert intervals have sub-millisecond
//! Skew_Times, and every late millisecond of a Master_Down_Timer is a millisecond of failover,
//! so deadlines go to the kernel as they are: absolute nanoseconds on the same clock as the
//! state machine's `Instant` and the XDP program's receive times.
use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

use anyhow::{Context as _, Result};
use tokio::io::{unix::AsyncFd, Interest};

/// Wake-ups later than this are logged at debug level.
const LATE_NS: u64 = 1_000_000;

pub struct DeadlineTimer {
    fd: AsyncFd<OwnedFd>,
    armed: Option<u64>,
}

impl DeadlineTimer {
    pub fn new() -> Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("timerfd_create");
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the fd, so it stays open and the same for its whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
            .context("registering the timerfd with tokio")?;
        Ok(DeadlineTimer { fd, armed: None })
    }

    /// Arms the timer at `at_ns` (CLOCK_MONOTONIC ns; a past deadline fires at once), or
    /// disarms it with `None`. A no-op when the deadline did not change.
    pub fn set(&mut self, at_ns: Option<u64>) -> Result<()> {
        if at_ns == self.armed {
            return Ok(());
        }
        // it_value zero disarms; an absolute deadline of 0 would too, so use 1 ns instead.
        let ns = at_ns.map_or(0, |t| t.max(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid fd and pointers.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("timerfd_settime");
        }
        self.armed = at_ns;
        Ok(())
    }

    /// The armed deadline, if any.
    pub fn deadline(&self) -> Option<u64> {
        self.armed
    }

    /// Waits until the armed deadline passes (forever when disarmed), then disarms.
    pub async fn expired(&mut self) -> Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // SAFETY: valid fd and an 8-byte buffer, as timerfd reads require.
            let n = unsafe {
                libc::read(
                    guard.get_ref().get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n == 8 {
                // The read emptied the timerfd (one-shot, re-armed only by `set`): without
                // this, the next poll would find the readiness still set and pay a read that
                // returns EAGAIN (a syscall per wake-up). An expiry after the read sets it
                // again (tokio clears only the readiness it handed out).
                guard.clear_ready();
                if let Some(at) = self.armed.take() {
                    let late = crate::clock::monotonic_ns().saturating_sub(at);
                    if late > LATE_NS {
                        // The process waited for a CPU (see crate::sched).
                        log::debug!("timer fired {} µs after its deadline", late / 1000);
                    }
                }
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if n < 0 && err.kind() != io::ErrorKind::WouldBlock {
                return Err(err).context("reading the timerfd");
            }
            // Re-armed since it became readable: nothing expired yet.
            guard.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::monotonic_ns;

    #[tokio::test]
    async fn fires_at_the_deadline_not_before() {
        let mut t = DeadlineTimer::new().unwrap();
        let at = monotonic_ns() + 3_000_000;
        t.set(Some(at)).unwrap();
        assert_eq!(t.deadline(), Some(at));
        t.expired().await.unwrap();
        assert!(monotonic_ns() >= at);
        assert_eq!(t.deadline(), None);
    }

    #[tokio::test]
    async fn a_past_deadline_fires_at_once_and_rearming_moves_it() {
        let mut t = DeadlineTimer::new().unwrap();
        t.set(Some(monotonic_ns() + 10_000_000_000)).unwrap();
        let past = monotonic_ns().saturating_sub(1_000_000);
        t.set(Some(past)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), t.expired())
            .await
            .expect("a past deadline fires at once")
            .unwrap();
    }

    #[tokio::test]
    async fn disarmed_timer_does_not_fire() {
        let mut t = DeadlineTimer::new().unwrap();
        t.set(Some(monotonic_ns() + 2_000_000)).unwrap();
        t.set(None).unwrap();
        let r = tokio::time::timeout(std::time::Duration::from_millis(20), t.expired()).await;
        assert!(r.is_err(), "a disarmed timer must not fire");
    }
}
