//! Kernel feature probes, as aya's integration tests have: a test that needs a kernel feature
//! asks for it first and, where the kernel lacks it, is skipped with a printed reason. Only a
//! *missing kernel feature* is a skip: a missing tool, missing privileges or a probe that fails
//! for any other reason still fails the test.
//!
//! A feature is probed by trying it (a read-only operation that only a kernel with the feature
//! accepts), not by the version number, which distribution backports make unreliable; the
//! version is printed with the reason.
use aya::programs::{ProgramError, SchedClassifier, TcAttachType};

/// A kernel feature a test may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// TCX: BPF links on the tc hooks (`BPF_TCX_INGRESS` / `BPF_TCX_EGRESS`), Linux 6.6.
    Tcx,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Tcx => "TCX (BPF links on tc hooks, Linux 6.6)",
        }
    }
}

/// The running kernel's release (`uname -r`).
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// `Ok(())` if the kernel has `feature`, `Err(why)` if it lacks it. Panics (the test fails) when
/// the probe itself fails for another reason, e.g. missing privileges.
pub fn probe(feature: Feature) -> Result<(), String> {
    match feature {
        // A TCX query of `lo` (present in every network namespace): a kernel without TCX does
        // not know the attach type and answers EINVAL. Nothing is attached.
        Feature::Tcx => match SchedClassifier::query_tcx("lo", TcAttachType::Egress) {
            Ok(_) => Ok(()),
            Err(ProgramError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EINVAL) =>
            {
                Err(format!(
                    "kernel {} lacks {}: a TCX query of lo's egress hook is refused ({})",
                    release(),
                    feature.name(),
                    e.io_error
                ))
            }
            Err(e) => panic!("probing for {}: {e}", feature.name()),
        },
    }
}

/// `true` when the kernel lacks `feature`, after printing `skipped: <test>: <reason>` (the
/// caller then returns, and the test counts as skipped).
#[must_use]
pub fn lacks(feature: Feature, test: &str) -> bool {
    match probe(feature) {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipped: {test}: {why}");
            true
        }
    }
}
