//! The counter helper: every frame bumps `Frames` (`EgressFrames`) and exactly one outcome
//! counter of `vrrp_common::Counter`, per CPU (see the entry points in `main.rs`).
use vrrp_common::Counter;

use crate::COUNTERS;

#[inline(always)]
pub fn count(c: Counter) {
    if let Some(p) = COUNTERS.get_ptr_mut(c as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *p += 1 };
    }
}
