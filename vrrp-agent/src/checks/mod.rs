//! Health checks and trackers (I/O edge): what the instances track, watched here and reported
//! to the supervisor's loop through one channel, which hands each report to the core as an
//! event. The core does the rest (rise/fall counting, weights, FAULT).
//!
//! - A check ([`Probe`]: ICMP, TCP, HTTP(S), script) is one task: every `interval` one probe,
//!   bounded by `timeout`, one [`Report::Check`] per probe. The built-in checks are async (no
//!   process per probe); a script runs in its own process group, killed whole at the timeout.
//! - `interface` (carrier), `process` (running) and `file` (an integer) are watched by
//!   [`crate::netlink::spawn_iface_tracker`], [`track::processes`] and [`track::file`]; they
//!   report the fact at the start and each change.
//!
//! Everything runs on the agent's runtime and never blocks it (the /proc scan and file reads
//! run on the blocking pool). [`Trackers::stop`] ends every task; a script still running is
//! killed with its group.
pub mod http;
pub mod icmp;
pub mod script;
pub mod tcp;
pub mod track;

use std::{collections::HashMap, net::IpAddr, net::SocketAddr, path::PathBuf, time::Duration};

use tokio::{sync::mpsc::UnboundedSender, task::JoinSet};

pub use http::HttpSpec;

/// What a tracker reports; `tracker` is the core's tracker index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// One probe of a check.
    Check { tracker: usize, ok: bool },
    /// An interface's carrier or a process's presence, at the start and on each change.
    State { tracker: usize, up: bool },
    /// A tracked file's integer, at the start and on each change.
    Value { tracker: usize, value: i64 },
}

/// What one probe does.
#[derive(Clone, Debug)]
pub enum Probe {
    Script {
        command: String,
        user: Option<String>,
    },
    Icmp(IpAddr),
    Tcp(SocketAddr),
    Http(HttpSpec),
}

/// One thing to watch.
#[derive(Clone, Debug)]
pub enum Watch {
    Check {
        name: String,
        probe: Probe,
        interval: Duration,
        timeout: Duration,
        /// Failures in a row that make the core call it down (for the one log line naming why).
        fall: u32,
    },
    Interface(String),
    File(PathBuf),
    Process(String),
}

/// The running trackers.
pub struct Trackers {
    tasks: JoinSet<()>,
    /// The ICMP sockets (their receive tasks live as long as these).
    _icmp: icmp::Sockets,
}

impl Trackers {
    /// Starts a task for every check and the watchers of the other trackers, in the current
    /// runtime; `(id, w)` reports as tracker `id`.
    pub async fn start(
        watch: Vec<(usize, Watch)>,
        tx: UnboundedSender<Report>,
    ) -> anyhow::Result<Self> {
        let mut tasks = JoinSet::new();
        let mut icmp = icmp::Sockets::default();
        let mut ifaces = HashMap::new();
        let mut procs = Vec::new();
        let n_checks = watch
            .iter()
            .filter(|(_, w)| matches!(w, Watch::Check { .. }))
            .count()
            .max(1);
        let mut k = 0u32;
        for (id, w) in watch {
            match w {
                Watch::Check {
                    name,
                    probe,
                    interval,
                    timeout,
                    fall,
                } => {
                    // Spread the first probes over one interval, so that many checks of the
                    // same interval do not all fire at once.
                    let offset = interval.mul_f64(f64::from(k) / n_checks as f64);
                    k += 1;
                    let runner = match probe {
                        Probe::Icmp(target) => {
                            let ident = (std::process::id() as u16) ^ (id as u16).rotate_left(8);
                            match icmp.pinger(target, ident).await {
                                Ok(p) => Runner::Icmp(p),
                                Err(e) => Runner::Broken(e),
                            }
                        }
                        Probe::Tcp(a) => Runner::Tcp(a),
                        Probe::Http(s) => Runner::Http(http::Http::new(s)),
                        Probe::Script { command, user } => {
                            match script::Script::new(&command, user.as_deref()) {
                                Ok(s) => Runner::Script(s),
                                Err(e) => Runner::Broken(e),
                            }
                        }
                    };
                    let check = Check {
                        id,
                        name,
                        runner,
                        interval,
                        timeout,
                        fall,
                    };
                    tasks.spawn(check.run(offset, tx.clone()));
                }
                Watch::Interface(name) => {
                    ifaces.insert(name, id);
                }
                Watch::File(path) => {
                    tasks.spawn(track::file(id, path, track::FILE_EVERY, tx.clone()));
                }
                Watch::Process(name) => procs.push((id, name)),
            }
        }
        if !procs.is_empty() {
            tasks.spawn(track::processes(procs, track::PROC_EVERY, tx.clone()));
        }
        if !ifaces.is_empty() {
            crate::netlink::spawn_iface_tracker(ifaces, tx, &mut tasks)?;
        }
        Ok(Self { tasks, _icmp: icmp })
    }

    /// Ends every tracker (a script still running is killed with its group) and waits for
    /// them.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// How a check probes.
enum Runner {
    Icmp(icmp::Icmp),
    Tcp(SocketAddr),
    Http(http::Http),
    Script(script::Script),
    /// Cannot run (e.g. no such user): every probe fails with this reason.
    Broken(String),
}

impl Runner {
    async fn probe(&mut self, timeout: Duration) -> Result<(), String> {
        match self {
            Runner::Icmp(p) => p.probe(timeout).await,
            Runner::Tcp(a) => tcp::probe(*a, timeout).await,
            Runner::Http(h) => h.probe(timeout).await,
            Runner::Script(s) => s.probe(timeout).await,
            Runner::Broken(e) => Err(e.clone()),
        }
    }
}

struct Check {
    id: usize,
    name: String,
    runner: Runner,
    interval: Duration,
    timeout: Duration,
    fall: u32,
}

impl Check {
    /// Probes every `interval` (the next one starts no earlier than the end of the last),
    /// reports each outcome, until the receiver is gone or the task is aborted.
    async fn run(mut self, offset: Duration, tx: UnboundedSender<Report>) {
        tokio::time::sleep(offset).await;
        let mut tick = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        // The last failure reason logged, so that a check failing the same way says it once.
        let mut said: Option<String> = None;
        loop {
            tick.tick().await;
            let r = self.runner.probe(self.timeout).await;
            let ok = r.is_ok();
            match r {
                Ok(()) => {
                    failures = 0;
                    said = None;
                }
                Err(why) => {
                    failures = failures.saturating_add(1);
                    log::debug!("check {}: {why}", self.name);
                    if failures >= self.fall.max(1) && said.as_deref() != Some(why.as_str()) {
                        log::warn!("check {}: failing: {why}", self.name);
                        said = Some(why);
                    }
                }
            }
            if tx
                .send(Report::Check {
                    tracker: self.id,
                    ok,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn check(probe: Probe, interval_ms: u64) -> Watch {
        Watch::Check {
            name: "t".into(),
            probe,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(interval_ms),
            fall: 1,
        }
    }

    /// One report per probe, every interval, as tracker index; stop ends the tasks.
    #[tokio::test]
    async fn checks_report_per_probe_and_stop() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = l.local_addr().unwrap();
        let down = {
            let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l2.local_addr().unwrap()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t = Trackers::start(
            vec![
                (0, check(Probe::Tcp(up), 50)),
                (1, check(Probe::Tcp(down), 50)),
            ],
            tx,
        )
        .await
        .unwrap();
        let start = tokio::time::Instant::now();
        let mut seen = [0u32; 2];
        while seen.iter().any(|&n| n < 4) {
            let r = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a report within 5 s")
                .unwrap();
            match r {
                Report::Check { tracker: 0, ok } => {
                    assert!(ok);
                    seen[0] += 1
                }
                Report::Check { tracker: 1, ok } => {
                    assert!(!ok);
                    seen[1] += 1
                }
                other => panic!("{other:?}"),
            }
        }
        // 4 probes at 50 ms take about 150 ms (plus the spread); not a speed bound, a sanity one.
        assert!(
            start.elapsed() >= Duration::from_millis(140),
            "{:?}",
            start.elapsed()
        );
        t.stop().await;
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err(), "a report after stop");
    }

    /// A check that cannot run (unknown user) fails every probe instead of stopping.
    #[tokio::test]
    async fn broken_check_fails() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _t = Trackers::start(
            vec![(
                0,
                check(
                    Probe::Script {
                        command: "true".into(),
                        user: Some("no-such-user-here".into()),
                    },
                    20,
                ),
            )],
            tx,
        )
        .await
        .unwrap();
        for _ in 0..3 {
            assert_eq!(
                rx.recv().await.unwrap(),
                Report::Check {
                    tracker: 0,
                    ok: false
                }
            );
        }
    }
}
