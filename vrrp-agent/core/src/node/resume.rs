//! Hitless restart: whether an instance resumes as Master at start-up (the previous run exited on
//! SIGUSR2, leaving its VIPs on the interface and its fast path attached with the router owned),
//! decided from what the edge observed in the kernel. Pure: facts in, a [`ResumeDecision`] out.
//!
//! The rules, in the order they are checked (the first that fails is the reason given):
//! 1. an address owner (priority 255) never resumes: it starts as Master anyway;
//! 2. a fast path of ours must be attached to the interface, its maps readable;
//! 3. it must hold the instance's router owned;
//! 4. its heartbeat must be fresh: not older than the bound it holds for the router (0 = never
//!    stale), or it already stopped answering for the VIPs;
//! 5. that bound must be twice this configuration's fail-safe bound: only a SIGUSR2 exit doubles
//!    it, so a killed agent's routers, or another configuration's, start cold;
//! 6. every VIP of the instance must be on the interface.
use std::{net::IpAddr, time::Duration};

/// What the previous run's fast path, still attached to the interface, holds for one router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeftRouter {
    /// The router is marked owned (the previous run was its Master and did not release).
    pub owned: bool,
    /// The fail-safe bound it holds for the router (`stale_after`; zero = never stale).
    pub bound: Duration,
    /// How old its heartbeat is, now.
    pub heartbeat_age: Duration,
}

/// The kernel facts the edge gathers for one instance at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeFacts<'a> {
    /// The router as the previous run's fast path holds it: `None` when no fast path of ours is
    /// attached to the interface.
    pub left: Option<LeftRouter>,
    /// The addresses on the interface.
    pub addrs: &'a [IpAddr],
}

/// Why an instance starts cold instead of resuming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Priority 255: an address owner starts as Master anyway.
    AddressOwner,
    /// No fast path of ours is attached to the interface (a first start, or after SIGTERM).
    NoFastPath,
    /// The previous run left the router not owned (it was not Master, or released).
    NotOwned,
    /// The heartbeat is older than the bound the fast path holds (it stopped answering).
    HeartbeatStale { age: Duration, bound: Duration },
    /// The bound left is not twice this configuration's: not a SIGUSR2 exit of this
    /// configuration (a killed agent, or another configuration).
    BoundMismatch { left: Duration, expected: Duration },
    /// A VIP is not on the interface.
    VipMissing(IpAddr),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::AddressOwner => write!(f, "address owner (priority 255)"),
            Refusal::NoFastPath => write!(f, "no fast path of a previous run is attached"),
            Refusal::NotOwned => write!(f, "the previous run left its router not owned"),
            Refusal::HeartbeatStale { age, bound } => {
                write!(
                    f,
                    "the previous run's heartbeat is {age:?} old (bound {bound:?})"
                )
            }
            Refusal::BoundMismatch { left, expected } => write!(
                f,
                "the previous run left a fail-safe bound of {left:?}, not {expected:?} \
                 (not a SIGUSR2 exit of this configuration)"
            ),
            Refusal::VipMissing(a) => write!(f, "{a} is not on the interface"),
        }
    }
}

/// Resume as Master, or start cold (and why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeDecision {
    Resume,
    Cold(Refusal),
}

/// Decides whether an instance of priority `priority` with the VIPs `vips` and the fail-safe
/// bound `failsafe_bound` (this configuration's) resumes, from `facts` (see the module docs for
/// the rules).
pub fn decide_resume(
    priority: u8,
    vips: &[IpAddr],
    failsafe_bound: Duration,
    facts: &ResumeFacts<'_>,
) -> ResumeDecision {
    use ResumeDecision::Cold;
    if priority == 255 {
        return Cold(Refusal::AddressOwner);
    }
    let Some(left) = facts.left else {
        return Cold(Refusal::NoFastPath);
    };
    if !left.owned {
        return Cold(Refusal::NotOwned);
    }
    if !left.bound.is_zero() && left.heartbeat_age > left.bound {
        return Cold(Refusal::HeartbeatStale {
            age: left.heartbeat_age,
            bound: left.bound,
        });
    }
    let expected = failsafe_bound.saturating_mul(2);
    if left.bound != expected {
        return Cold(Refusal::BoundMismatch {
            left: left.bound,
            expected,
        });
    }
    if let Some(v) = vips.iter().find(|v| !facts.addrs.contains(v)) {
        return Cold(Refusal::VipMissing(*v));
    }
    ResumeDecision::Resume
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn left(owned: bool, bound_ms: u64, age_ms: u64) -> Option<LeftRouter> {
        Some(LeftRouter {
            owned,
            bound: MS * bound_ms as u32,
            heartbeat_age: MS * age_ms as u32,
        })
    }

    /// Instance: priority 200, VIPs .10 and .11, bound 36 ms (a SIGUSR2 exit leaves 72 ms).
    fn decide(priority: u8, left: Option<LeftRouter>, addrs: &[&str]) -> ResumeDecision {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
        decide_resume(
            priority,
            &[ip("10.0.0.10"), ip("10.0.0.11")],
            MS * 36,
            &ResumeFacts {
                left,
                addrs: &addrs,
            },
        )
    }

    const ALL: &[&str] = &["10.0.0.1", "10.0.0.10", "10.0.0.11"];

    #[test]
    fn resumes_after_a_sigusr2_exit_of_this_configuration() {
        assert_eq!(decide(200, left(true, 72, 5), ALL), ResumeDecision::Resume);
        // At exactly the bound the fast path still answers.
        assert_eq!(decide(200, left(true, 72, 72), ALL), ResumeDecision::Resume);
    }

    #[test]
    fn an_address_owner_never_resumes() {
        assert_eq!(
            decide(255, left(true, 72, 5), ALL),
            ResumeDecision::Cold(Refusal::AddressOwner)
        );
    }

    #[test]
    fn no_fast_path_left_is_a_cold_start() {
        assert_eq!(
            decide(200, None, ALL),
            ResumeDecision::Cold(Refusal::NoFastPath)
        );
    }

    #[test]
    fn a_router_left_not_owned_is_a_cold_start() {
        assert_eq!(
            decide(200, left(false, 72, 5), ALL),
            ResumeDecision::Cold(Refusal::NotOwned)
        );
    }

    #[test]
    fn a_stale_heartbeat_is_a_cold_start() {
        assert_eq!(
            decide(200, left(true, 72, 73), ALL),
            ResumeDecision::Cold(Refusal::HeartbeatStale {
                age: MS * 73,
                bound: MS * 72
            })
        );
    }

    #[test]
    fn a_zero_bound_never_goes_stale_but_is_no_sigusr2_exit() {
        // Zero: the fast path never stops answering, but only a doubled bound means SIGUSR2.
        assert_eq!(
            decide(200, left(true, 0, 10_000), ALL),
            ResumeDecision::Cold(Refusal::BoundMismatch {
                left: Duration::ZERO,
                expected: MS * 72
            })
        );
    }

    #[test]
    fn a_bound_not_doubled_is_a_killed_agent_or_another_configuration() {
        // SIGKILL: the configured bound, not doubled.
        assert_eq!(
            decide(200, left(true, 36, 5), ALL),
            ResumeDecision::Cold(Refusal::BoundMismatch {
                left: MS * 36,
                expected: MS * 72
            })
        );
        // Another configuration's doubled bound.
        assert_eq!(
            decide(200, left(true, 200, 5), ALL),
            ResumeDecision::Cold(Refusal::BoundMismatch {
                left: MS * 200,
                expected: MS * 72
            })
        );
    }

    #[test]
    fn a_missing_vip_is_a_cold_start() {
        assert_eq!(
            decide(200, left(true, 72, 5), &["10.0.0.1", "10.0.0.10"]),
            ResumeDecision::Cold(Refusal::VipMissing(ip("10.0.0.11")))
        );
        assert_eq!(
            decide(200, left(true, 72, 5), &[]),
            ResumeDecision::Cold(Refusal::VipMissing(ip("10.0.0.10")))
        );
    }

    #[test]
    fn the_first_failing_rule_is_the_reason() {
        // Stale and not doubled and a VIP missing: the heartbeat is checked first.
        assert_eq!(
            decide(200, left(true, 36, 40), &[]),
            ResumeDecision::Cold(Refusal::HeartbeatStale {
                age: MS * 40,
                bound: MS * 36
            })
        );
        // Not owned beats everything after it.
        assert_eq!(
            decide(200, left(false, 36, 40), &[]),
            ResumeDecision::Cold(Refusal::NotOwned)
        );
    }

    #[test]
    fn refusals_render_one_line() {
        for r in [
            Refusal::AddressOwner,
            Refusal::NoFastPath,
            Refusal::NotOwned,
            Refusal::HeartbeatStale { age: MS, bound: MS },
            Refusal::BoundMismatch {
                left: MS,
                expected: MS,
            },
            Refusal::VipMissing(ip("10.0.0.10")),
        ] {
            let s = r.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        }
    }
}
