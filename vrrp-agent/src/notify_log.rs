//! The one place that turns the core's [`Notification`]s into log lines, and the fan-out point
//! every consumer of notifications hooks into ([`Sink`], [`fan_out`]): notify scripts, metrics
//! and status join the log sink here.
//!
//! The texts are a contract: integration tests and users read them (`instance X: state BACKUP
//! -> MASTER (master_no_response)`, `new master ...`, `dropped advert ...`).
use std::net::IpAddr;

use log::Level;
use vrrp_core::{
    config::Vip,
    node::{reason_name, state_name, PreviousMaster, ReleaseOutcome},
    Notification,
};

/// Something that consumes the core's notifications.
pub trait Sink {
    fn notify(&mut self, n: &Notification);
}

/// Hands `n` to every sink, in order.
pub fn fan_out(sinks: &mut [Box<dyn Sink>], n: &Notification) {
    for s in sinks {
        s.notify(n);
    }
}

/// The log: every notification as one line at its level.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

impl Sink for LogSink {
    fn notify(&mut self, n: &Notification) {
        let level = level(n);
        if log::log_enabled!(level) {
            log::log!(level, "{}", render(n));
        }
    }
}

/// The level a notification is logged at.
pub fn level(n: &Notification) -> Level {
    match n {
        Notification::StateChanged(_)
        | Notification::NewMaster { .. }
        | Notification::HandoverTakenOver { .. }
        | Notification::HandoverTimedOut { .. }
        | Notification::RetryingClaim { .. } => Level::Info,
        Notification::AdvertDropped { count, .. } => {
            if *count == 1 {
                Level::Warn
            } else {
                Level::Debug
            }
        }
        Notification::AddrListDiffers { .. }
        | Notification::HandoverClaimFailed { .. }
        | Notification::ClaimFailed { .. }
        | Notification::ReleaseFailed { .. }
        | Notification::VipReadded { .. }
        | Notification::VipRemoved { .. } => Level::Warn,
        Notification::AdvertReceived { .. }
        | Notification::VipWasPresent { .. }
        | Notification::VipWasAbsent { .. } => Level::Debug,
        Notification::AdvertBuildFailed { .. } => Level::Error,
        Notification::TrackerChanged { .. }
        | Notification::PriorityChanged { .. }
        | Notification::GroupStateChanged { .. }
        | Notification::Reloaded { .. }
        | Notification::ReloadVip { .. } => Level::Info,
    }
}

/// ` [N more since the last line]`, or nothing.
fn left_out_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" [{n} more since the last line]")
    }
}

fn join_addrs(a: &[IpAddr]) -> String {
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `ip addr del VIP dev IF` for every VIP (what an operator can do by hand).
fn del_hint(vips: &[Vip], iface: &str) -> String {
    vips.iter()
        .map(|v| format!("`ip addr del {v} dev {iface}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The log line of a notification.
pub fn render(n: &Notification) -> String {
    match n {
        Notification::StateChanged(c) => format!(
            "instance {}: state {} -> {} ({})",
            c.name,
            state_name(c.from),
            state_name(c.to),
            reason_name(c.reason)
        ),
        Notification::AdvertDropped {
            iface,
            instance,
            src_ip,
            src_mac,
            error,
            count,
        } => {
            let who = match instance {
                Some((_, name)) => format!("instance {name}"),
                None => format!("interface {iface}"),
            };
            if *count == 1 {
                format!(
                    "{who}: dropped advert from {src_ip} ({src_mac}): {error} [first {}; later \
                     ones are logged at debug]",
                    error.name()
                )
            } else {
                format!(
                    "{who}: dropped advert from {src_ip} ({src_mac}): {error} [{} #{count}]",
                    error.name()
                )
            }
        }
        Notification::AdvertReceived {
            name,
            version,
            vrid,
            priority,
            interval_cs,
            src,
            src_mac,
            addr_list_differs,
            ..
        } => format!(
            "instance {name}: advert version={} vrid={vrid} priority={priority} \
             interval_cs={interval_cs} src={src} mac={src_mac}{}",
            version.number(),
            if *addr_list_differs {
                " (address list differs from ours)"
            } else {
                ""
            }
        ),
        Notification::AddrListDiffers {
            name,
            src,
            priority,
            theirs,
            ours,
            left_out,
            ..
        } => format!(
            "instance {name}: advert from {src} (priority {priority}) lists {}, we have {}; \
             accepted (RFC 9568 §7.1), check the configuration of both{}",
            join_addrs(theirs),
            join_addrs(ours),
            left_out_note(*left_out)
        ),
        Notification::NewMaster {
            name,
            master,
            priority,
            previous,
            left_out,
            ..
        } => {
            let previous = match previous {
                PreviousMaster::Addr(b) => format!("was {b}"),
                PreviousMaster::ThisRouter => "was this router".into(),
                PreviousMaster::FirstSeen => "first seen".into(),
            };
            format!(
                "instance {name}: new master {master} (priority {priority}, {previous}){}",
                left_out_note(*left_out)
            )
        }
        Notification::HandoverTakenOver { name, by, .. } => {
            format!("instance {name}: {by} took over; releasing the VIPs")
        }
        Notification::HandoverTimedOut { name, after, .. } => {
            format!("instance {name}: no router took over within {after:?}; releasing the VIPs")
        }
        Notification::HandoverClaimFailed { name, what, .. } => format!(
            "instance {name}: taking a VIP back failed during the handover: {what}; releasing"
        ),
        Notification::ClaimFailed {
            name,
            iface,
            what,
            retry_in,
            ..
        } => format!(
            "instance {name}: taking the VIPs on {iface} failed: {what}. Going to FAULT so that a \
             backup takes over; retrying in {retry_in:?}. Check that the agent may change \
             addresses (CAP_NET_ADMIN) and what else manages {iface}."
        ),
        Notification::RetryingClaim { name, .. } => {
            format!("instance {name}: retrying to take the VIPs (the Startup rules apply again)")
        }
        Notification::ReleaseFailed {
            name,
            iface,
            vips,
            what,
            outcome,
            ..
        } => {
            let hint = del_hint(vips, iface);
            match outcome {
                ReleaseOutcome::AtStop => format!(
                    "instance {name}: releasing the VIPs at the stop failed: {what}. Remove them \
                     by hand: {hint}"
                ),
                ReleaseOutcome::Retry { attempt, of, wait } => format!(
                    "instance {name}: releasing the VIPs failed: {what}; retry {attempt} of \
                     {of} in {wait:?}. If it keeps failing, remove them by hand: {hint}"
                ),
                ReleaseOutcome::GaveUp { retries } => format!(
                    "instance {name}: releasing the VIPs failed: {what}; gave up after \
                     {retries} retries. Remove them by hand: {hint}"
                ),
            }
        }
        Notification::VipReadded {
            name,
            iface,
            vip,
            count,
            ..
        } => format!(
            "instance {name}: VIP {vip} was removed from {iface} by something else while \
             this router is master (NetworkManager, systemd-networkd, a DHCP client, \
             `ip addr del`?); added it back ({count} so far). Make that tool leave {} alone.",
            vip.addr
        ),
        Notification::VipRemoved {
            name,
            iface,
            vip,
            state,
            count,
            ..
        } => format!(
            "instance {name}: VIP {vip} was added to {iface} by something else while this \
             router is {}; removed it, only the master may hold it ({count} so far). Make \
             that tool leave {} alone.",
            state_name(*state),
            vip.addr
        ),
        Notification::VipWasPresent {
            name, iface, vip, ..
        } => format!(
            "instance {name}: {vip} is on {iface} already (a notification of our own change)"
        ),
        Notification::VipWasAbsent {
            name, iface, vip, ..
        } => format!("instance {name}: {vip} is not on {iface} (a notification of our own change)"),
        Notification::AdvertBuildFailed { name, error, .. } => {
            format!("instance {name}: cannot build an advert: {error}")
        }
        Notification::TrackerChanged { target, up, .. } => {
            format!("tracker {target}: {}", if *up { "up" } else { "down" })
        }
        Notification::PriorityChanged { name, from, to, .. } => {
            format!("instance {name}: priority {from} -> {to}")
        }
        Notification::GroupStateChanged {
            group, from, to, ..
        } => format!(
            "sync group {group}: state {} -> {}",
            state_name(*from),
            state_name(*to)
        ),
        Notification::Reloaded {
            added,
            removed,
            changed,
            unchanged,
        } => format!(
            "reload: {}",
            reload_summary(added, removed, changed, unchanged)
        ),
        Notification::ReloadVip {
            name,
            iface,
            vip,
            added,
            ..
        } => format!(
            "instance {name}: reload {} {vip} {} {iface}",
            if *added { "added" } else { "removed" },
            if *added { "on" } else { "from" }
        ),
    }
}

/// `added -; removed vr2; changed vr1; unchanged vr3`: what a reload did (the log line and the
/// reply to `vrrp-agent reload`).
pub fn reload_summary(
    added: &[String],
    removed: &[String],
    changed: &[String],
    unchanged: &[String],
) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    format!(
        "added {}; removed {}; changed {}; unchanged {}",
        list(added),
        list(removed),
        list(changed),
        list(unchanged)
    )
}
