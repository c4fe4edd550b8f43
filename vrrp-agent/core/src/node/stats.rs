//! Counters and log rate limits of the core: what each instance (and each interface, for adverts
//! no instance matches) received and dropped, what happened to the VIPs, and how often a line
//! about another router may be said.
use std::{net::IpAddr, time::Duration};

use crate::{fsm::Instant, wire::RxError};

/// Per-instance counts of what happened to the VIPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipStats {
    /// Claims (or re-adds) that failed.
    pub claim_failures: u64,
    /// Releases (or removals) that failed.
    pub release_failures: u64,
    /// VIPs removed behind our back while we held them, and put back.
    pub vips_readded: u64,
    /// VIPs added behind our back while we did not hold them, and removed.
    pub vips_removed: u64,
}

impl VipStats {
    /// `claim_failures=N release_failures=N vips_readded=N vips_removed=N`.
    pub fn summary(&self) -> String {
        format!(
            "claim_failures={} release_failures={} vips_readded={} vips_removed={}",
            self.claim_failures, self.release_failures, self.vips_readded, self.vips_removed
        )
    }
}

/// Receive statistics of an instance (or of the interface for adverts no instance matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxStats {
    pub accepted: u64,
    /// Accepted v3 adverts whose address list differs from ours (RFC 9568 §7.1: accepted,
    /// logged); included in `accepted`.
    pub addr_list_differs: u64,
    /// Per [`RxError::as_index`].
    pub errors: [u64; RxError::COUNT],
}

impl Default for RxStats {
    fn default() -> Self {
        RxStats {
            accepted: 0,
            addr_list_differs: 0,
            errors: [0; RxError::COUNT],
        }
    }
}

impl RxStats {
    pub fn count(&mut self, e: &RxError) -> u64 {
        let c = &mut self.errors[e.as_index()];
        *c += 1;
        *c
    }

    pub fn get(&self, name: &str) -> u64 {
        RxError::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.errors[i])
            .unwrap_or(0)
    }

    /// `accepted=N [addr_list_differs=N] name=count...` (non-zero counts only).
    pub fn summary(&self) -> String {
        let mut s = format!("accepted={}", self.accepted);
        if self.addr_list_differs > 0 {
            s.push_str(&format!(" addr_list_differs={}", self.addr_list_differs));
        }
        for (i, n) in self.errors.iter().enumerate() {
            if *n > 0 {
                s.push_str(&format!(" {}={n}", RxError::NAMES[i]));
            }
        }
        s
    }
}

/// How often a rate-limited log line repeats for one peer.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Peers a [`LogLimit`] follows one by one; beyond that, new peers share one budget.
pub const LOG_PEERS: usize = 32;

/// The rate limit of one kind of log line about other routers, per peer: the first line at
/// once, then at most one per [`LOG_EVERY`], which says how many were left out since the last
/// one. Decided on the core's clock, so it is tested on a simulated one. At most
/// [`LOG_PEERS`] peers are followed; once that many have logged within the last
/// [`LOG_EVERY`], any further peer shares one more budget, so a host spraying spoofed source
/// addresses cannot flood the log either (at most `LOG_PEERS + 1` lines per [`LOG_EVERY`]).
#[derive(Debug, Clone, Default)]
pub struct LogLimit {
    /// (peer, `None` = the shared budget; when it last logged; lines left out since).
    entries: Vec<(Option<IpAddr>, Instant, u64)>,
}

impl LogLimit {
    /// Whether a line about `peer` may be logged at `now`: `Some(n)`, `n` lines having been
    /// left out since the previous one; `None`: leave this one out (it is counted).
    pub fn admit(&mut self, peer: IpAddr, now: Instant) -> Option<u64> {
        let pos = self.entries.iter().position(|e| e.0 == Some(peer));
        let pos = match pos {
            Some(p) => p,
            None => {
                // Room, or an entry with nothing left out whose window is over (forgetting it
                // loses nothing), or the shared budget.
                let free = self
                    .entries
                    .iter()
                    .position(|e| e.0.is_some() && e.2 == 0 && now >= e.1 + LOG_EVERY);
                if self.entries.len() < LOG_PEERS || free.is_some() {
                    let fresh = (Some(peer), now, 0);
                    match free {
                        Some(p) => self.entries[p] = fresh,
                        None => self.entries.push(fresh),
                    }
                    return Some(0);
                }
                match self.entries.iter().position(|e| e.0.is_none()) {
                    Some(p) => p,
                    None => {
                        self.entries.push((None, now, 0));
                        return Some(0);
                    }
                }
            }
        };
        let e = &mut self.entries[pos];
        if now >= e.1 + LOG_EVERY {
            let left_out = e.2;
            e.1 = now;
            e.2 = 0;
            Some(left_out)
        } else {
            e.2 += 1;
            None
        }
    }
}

/// What an instance did, counted since the core started (for status and metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceCounters {
    /// State changes.
    pub transitions: u64,
    /// Changes to Master.
    pub became_master: u64,
    /// Changes away from Master.
    pub left_master: u64,
    /// Adverts the edge reported sent ([`super::Event::AdvertSent`]), priority-0 ones included.
    pub adverts_sent: u64,
    /// Adverts that could not leave for the moment ([`super::Event::AdvertNotSent`]).
    pub advert_send_errors: u64,
    /// Gratuitous ARPs and unsolicited NAs handed to the edge.
    pub garp_sent: u64,
}

/// How many other routers an instance remembers ([`Peers`]).
pub const MAX_PEERS: usize = 32;

/// Another router heard on an instance's VRID: its last accepted advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: IpAddr,
    pub priority: u8,
    /// Advertisement interval it advertises (centiseconds).
    pub interval_cs: u16,
    /// Receive time of its last accepted advert.
    pub last_seen: Instant,
    /// Accepted adverts from it.
    pub adverts: u64,
}

/// The routers heard on an instance's VRID, at most [`MAX_PEERS`]: a new one replaces the one
/// heard least recently, so spoofed sources cannot grow it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers(Vec<Peer>);

impl Peers {
    /// An accepted advert from `addr`.
    pub fn heard(&mut self, addr: IpAddr, priority: u8, interval_cs: u16, at: Instant) {
        if let Some(p) = self.0.iter_mut().find(|p| p.addr == addr) {
            p.priority = priority;
            p.interval_cs = interval_cs;
            p.last_seen = p.last_seen.max(at);
            p.adverts += 1;
            return;
        }
        let fresh = Peer {
            addr,
            priority,
            interval_cs,
            last_seen: at,
            adverts: 1,
        };
        if self.0.len() < MAX_PEERS {
            self.0.push(fresh);
        } else if let Some(oldest) = self.0.iter_mut().min_by_key(|p| p.last_seen) {
            *oldest = fresh;
        }
    }

    /// The peers, by address.
    pub fn list(&self) -> Vec<Peer> {
        let mut v = self.0.clone();
        v.sort_by_key(|p| p.addr);
        v
    }
}
