//! Test hook, read only at start: `VRRP_AGENT_TEST_STEP_DELAY_MS=N` makes the agent log one
//! line before each step of a claim or a release and then wait N ms (at most 10 s) before
//! carrying it out, so that a namespace test can SIGKILL it right after a chosen step's line,
//! i.e. deterministically between two steps (`tests/tests/kill_master.rs`).
//!
//! The steps, in the order the core gives them:
//! - a takeover: `claim` (the fast path's map), `advert` (the first advert), `garp` (each
//!   gratuitous ARP / unsolicited NA frame of the first burst), `add_vips` (the addresses),
//!   `notify` (the state change: the `-> MASTER` log line);
//! - a stop's handover: `failsafe` (the fail-safe bound shortened to half an advert interval,
//!   logged for every instance), `advert` (the priority-0 advert, after the `MASTER -> INIT`
//!   line);
//! - a release ([`crate::port::Port::release`]): `del_vips` (the addresses), `unclaim` (the map).
//!
//! The lines: `test hook: claim step <step> for instance <name>`, `test hook: handover step
//! <step> for instance <name>` and `test hook: release step <step> for instance <name>`. Unset (the normal case) it costs one load of a cell written
//! once at start per command. Not for production: a warning says it is set.
use std::{
    sync::{Mutex, OnceLock},
    time::Duration,
};

use vrrp_core::{
    fsm::{Reason, State},
    Command, InstanceId, Notification,
};

const ENV: &str = "VRRP_AGENT_TEST_STEP_DELAY_MS";

static DELAY: OnceLock<Option<Duration>> = OnceLock::new();
/// The instances between their `Claim` and their state change to Master.
static CLAIMING: Mutex<Vec<InstanceId>> = Mutex::new(Vec::new());
/// The Masters stopping whose priority-0 advert has not been sent yet.
static HANDING: Mutex<Vec<InstanceId>> = Mutex::new(Vec::new());

/// Reads the variable (once; later calls change nothing) and warns when it is set.
pub fn init() {
    DELAY.get_or_init(|| {
        let v = std::env::var(ENV).ok()?;
        match v.trim().parse::<u64>() {
            Ok(ms) if ms <= 10_000 => {
                log::warn!(
                    "{ENV}={ms}: every claim, handover and release step waits {ms} ms (a test hook; \
                     unset it outside tests)"
                );
                Some(Duration::from_millis(ms))
            }
            _ => {
                log::warn!("{ENV}={v:?} ignored: a test hook taking 0 to 10000 (ms); unset it");
                None
            }
        }
    });
}

/// The delay, when the hook is set.
pub fn delay() -> Option<Duration> {
    *DELAY.get()?
}

/// Logs the step and waits.
pub async fn step(kind: &str, step: &str, instance: &str, d: Duration) {
    log::info!("test hook: {kind} step {step} for instance {instance}");
    tokio::time::sleep(d).await;
}

/// The takeover or handover step command `c` is, if it is one: (instance, `claim` or
/// `handover`, step). A `Release` logs its own steps.
pub fn step_of(c: &Command) -> Option<(InstanceId, &'static str, &'static str)> {
    if let Some(step) = handover_step(c) {
        return Some(step);
    }
    claim_step(c).map(|(id, step)| (id, "claim", step))
}

fn handover_step(c: &Command) -> Option<(InstanceId, &'static str, &'static str)> {
    let mut handing = HANDING.lock().unwrap_or_else(|e| e.into_inner());
    match c {
        Command::Notify(Notification::StateChanged(s))
            if s.from == State::Master && s.reason == Reason::Shutdown =>
        {
            handing.push(s.instance);
            None
        }
        Command::SendFrame {
            instance,
            advert: true,
            ..
        }
        | Command::SendIp { instance, .. }
            if handing.contains(instance) =>
        {
            handing.retain(|i| i != instance);
            Some((*instance, "handover", "advert"))
        }
        _ => None,
    }
}

fn claim_step(c: &Command) -> Option<(InstanceId, &'static str)> {
    let mut claiming = CLAIMING.lock().unwrap_or_else(|e| e.into_inner());
    let during = |id: &InstanceId| claiming.contains(id);
    let step = match c {
        Command::Claim { instance, .. } => {
            claiming.push(*instance);
            return Some((*instance, "claim"));
        }
        Command::SendFrame {
            instance, advert, ..
        } if during(instance) => (*instance, if *advert { "advert" } else { "garp" }),
        Command::SendIp { instance, .. } if during(instance) => (*instance, "advert"),
        Command::AddVips { instance } if during(instance) => (*instance, "add_vips"),
        Command::Notify(Notification::StateChanged(s)) if during(&s.instance) => {
            claiming.retain(|i| *i != s.instance);
            (s.instance, "notify")
        }
        _ => return None,
    };
    Some(step)
}

#[cfg(test)]
mod tests {
    use vrrp_core::{Family, StateChange};

    use super::*;

    fn change(id: usize, from: State, to: State, reason: Reason) -> Command {
        Command::Notify(Notification::StateChanged(StateChange {
            seq: 1,
            instance: InstanceId(id),
            name: format!("vr{id}"),
            iface: "eth0".to_owned(),
            vrid: 51,
            family: Family::V4,
            from,
            to,
            reason,
            priority: 150,
            master: None,
        }))
    }

    fn frame(id: usize, advert: bool) -> Command {
        Command::SendFrame {
            instance: InstanceId(id),
            frame: Vec::new(),
            advert,
        }
    }

    /// A takeover's and a stop's commands in the core's order are the hook's steps; routine
    /// adverts and another instance's commands are not.
    #[test]
    fn steps_of_a_takeover_and_a_handover() {
        // Instance 7 only (the statics are shared by the tests of this process).
        let id = InstanceId(7);
        let steps = |cmds: Vec<Command>| -> Vec<Option<(&str, &str)>> {
            cmds.iter()
                .map(|c| {
                    step_of(c).map(|(i, kind, step)| {
                        assert_eq!(i, id);
                        (kind, step)
                    })
                })
                .collect()
        };
        assert_eq!(
            steps(vec![
                frame(7, true),
                Command::Claim {
                    instance: id,
                    accept: false
                },
                frame(7, true),
                frame(7, false),
                frame(7, false),
                Command::AddVips { instance: id },
                change(7, State::Backup, State::Master, Reason::MasterNoResponse),
                frame(7, true),
                frame(7, false),
                change(7, State::Master, State::Initialize, Reason::Shutdown),
                frame(7, true),
                frame(7, true),
                Command::Release { instance: id },
            ]),
            vec![
                None,
                Some(("claim", "claim")),
                Some(("claim", "advert")),
                Some(("claim", "garp")),
                Some(("claim", "garp")),
                Some(("claim", "add_vips")),
                Some(("claim", "notify")),
                None,
                None,
                None,
                Some(("handover", "advert")),
                None,
                None,
            ]
        );
    }
}
