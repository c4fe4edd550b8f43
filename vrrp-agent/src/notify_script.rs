//! Notify scripts: the [`Sink`] that runs the user's programs on state changes, keepalived's
//! calling convention, ordered per instance and never blocking the election.
//!
//! For each [`Notification::StateChanged`] of an instance with notify commands, in this order:
//! - the state's own command (`notify_master`, `notify_backup`, `notify_fault`, or `notify_stop`
//!   when the instance went to INIT at the stop), run as written;
//! - the generic `notify`, with `INSTANCE <name> <STATE> <priority>` appended (`STATE` one of
//!   `MASTER`, `BACKUP`, `FAULT`, `STOP`).
//!
//! A sync group's [`Notification::GroupStateChanged`] runs the group's commands the same way,
//! `notify` with `GROUP <name> <STATE>` appended.
//!
//! Every call gets the agent's environment plus `VRRP_INSTANCE` (or `VRRP_GROUP`),
//! `VRRP_STATE`, `VRRP_PREVIOUS_STATE`, `VRRP_REASON`, `VRRP_SEQ` and, for instances,
//! `VRRP_PRIORITY`, `VRRP_IFACE`, `VRRP_VRID`. A command is split on whitespace, no shell; its
//! program must be an absolute path (else one warning and the call is skipped).
//!
//! Ordering and isolation: each instance (and each group) has a queue and a task ([`Dispatcher`]);
//! its calls run one after the other in the core's `seq` order: a later state's call starts only
//! when the earlier one has exited or was killed at [`NOTIFY_TIMEOUT`]. Different instances run
//! in parallel. The election loop only queues. Every call runs in its own process group; at the
//! timeout the whole group is killed (SIGKILL) and the call reaped. Output goes to the log at
//! debug; a non-zero exit is one warning. At the stop, the supervisor waits for the queued calls
//! (the STOP ones) at most [`STOP_DRAIN`] ([`Drain`]).
use std::{
    collections::HashMap, future::Future, path::Path, process::Stdio, sync::Arc, time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    sync::{mpsc, watch},
};
pub use vrrp_core::config::NotifySpec;
use vrrp_core::{
    fsm::State,
    node::{reason_name, state_name, StateChange},
    Notification,
};

use crate::notify_log::Sink;

/// How long one notify call may run before its process group is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the agent waits at the stop for the queued calls (the STOP ones) before it exits.
pub const STOP_DRAIN: Duration = Duration::from_secs(2);

/// One program run: what, with which environment, and for whom (log lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `instance web` or `sync group g1`, as log lines name it.
    pub who: String,
    /// The key the command came from: `notify`, `notify_master`, ...
    pub key: &'static str,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Added to the agent's environment.
    pub env: Vec<(&'static str, String)>,
    /// The core's sequence number of the change.
    pub seq: u64,
}

/// The word a notify script gets for a state: the state's name, `STOP` for INIT (an instance
/// only goes back to INIT when the agent stops).
pub fn state_word(s: State) -> &'static str {
    match s {
        State::Initialize => "STOP",
        s => state_name(s),
    }
}

/// The state's own command of `spec` for entering `to`, with its key.
fn state_command(spec: &NotifySpec, to: State) -> Option<(&'static str, &str)> {
    let (key, cmd) = match to {
        State::Master => ("notify_master", &spec.master),
        State::Backup => ("notify_backup", &spec.backup),
        State::Fault => ("notify_fault", &spec.fault),
        State::Initialize => ("notify_stop", &spec.stop),
    };
    cmd.as_deref().map(|c| (key, c))
}

fn split(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_owned).collect()
}

/// The calls for entering `to`, in the order they run: the state's own command, then `notify`
/// with `tail` appended. Empty commands are left out.
fn calls(
    spec: &NotifySpec,
    who: String,
    to: State,
    seq: u64,
    tail: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> Vec<Call> {
    let mut out = Vec::new();
    if let Some((key, cmd)) = state_command(spec, to) {
        out.push(Call {
            who: who.clone(),
            key,
            argv: split(cmd),
            env: env.clone(),
            seq,
        });
    }
    if let Some(cmd) = &spec.notify {
        let mut argv = split(cmd);
        argv.extend(tail);
        out.push(Call {
            who,
            key: "notify",
            argv,
            env,
            seq,
        });
    }
    out.retain(|c| !c.argv.is_empty());
    out
}

/// The calls of an instance's state change.
pub fn instance_calls(spec: &NotifySpec, c: &StateChange) -> Vec<Call> {
    let state = state_word(c.to);
    let env = vec![
        ("VRRP_INSTANCE", c.name.clone()),
        ("VRRP_STATE", state.to_owned()),
        ("VRRP_PREVIOUS_STATE", state_name(c.from).to_owned()),
        ("VRRP_REASON", reason_name(c.reason).to_owned()),
        ("VRRP_PRIORITY", c.priority.to_string()),
        ("VRRP_SEQ", c.seq.to_string()),
        ("VRRP_IFACE", c.iface.clone()),
        ("VRRP_VRID", c.vrid.to_string()),
    ];
    let tail = vec![
        "INSTANCE".to_owned(),
        c.name.clone(),
        state.to_owned(),
        c.priority.to_string(),
    ];
    calls(spec, format!("instance {}", c.name), c.to, c.seq, tail, env)
}

/// The calls of a sync group's state change.
pub fn group_calls(spec: &NotifySpec, seq: u64, group: &str, from: State, to: State) -> Vec<Call> {
    let state = state_word(to);
    let env = vec![
        ("VRRP_GROUP", group.to_owned()),
        ("VRRP_STATE", state.to_owned()),
        ("VRRP_PREVIOUS_STATE", state_name(from).to_owned()),
        ("VRRP_REASON", "sync_group".to_owned()),
        ("VRRP_SEQ", seq.to_string()),
    ];
    let tail = vec!["GROUP".to_owned(), group.to_owned(), state.to_owned()];
    calls(spec, format!("sync group {group}"), to, seq, tail, env)
}

/// Runs one call to its end (bounded by `timeout`).
pub trait Runner: Send + Sync + 'static {
    fn run(&self, call: Call, timeout: Duration) -> impl Future<Output = ()> + Send;
}

/// The queues: one per instance or group (created on first use), each drained by its own task,
/// strictly in the order the calls were submitted.
pub struct Dispatcher<R: Runner> {
    runner: Arc<R>,
    timeout: Duration,
    queues: HashMap<String, mpsc::UnboundedSender<Vec<Call>>>,
    /// Submitted batches not finished yet.
    pending: Arc<watch::Sender<usize>>,
}

impl<R: Runner> Dispatcher<R> {
    pub fn new(runner: R, timeout: Duration) -> Self {
        Self {
            runner: Arc::new(runner),
            timeout,
            queues: HashMap::new(),
            pending: Arc::new(watch::channel(0).0),
        }
    }

    /// Queues `calls` (one state change) behind everything queued for `queue` before. Never
    /// waits. Must be called inside a tokio runtime.
    pub fn submit(&mut self, queue: &str, calls: Vec<Call>) {
        if calls.is_empty() {
            return;
        }
        let tx = self
            .queues
            .entry(queue.to_owned())
            .or_insert_with(|| spawn_worker(self.runner.clone(), self.timeout, &self.pending));
        self.pending.send_modify(|n| *n += 1);
        if tx.send(calls).is_err() {
            // The worker is gone (only when the runtime is): nothing will run it.
            self.pending.send_modify(|n| *n -= 1);
        }
    }

    /// A handle to wait for the queues to empty.
    pub fn drain(&self) -> Drain {
        Drain(self.pending.subscribe())
    }
}

fn spawn_worker<R: Runner>(
    runner: Arc<R>,
    timeout: Duration,
    pending: &Arc<watch::Sender<usize>>,
) -> mpsc::UnboundedSender<Vec<Call>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Call>>();
    let pending = pending.clone();
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            for call in batch {
                runner.run(call, timeout).await;
            }
            pending.send_modify(|n| *n -= 1);
        }
    });
    tx
}

/// Waits for the queued notify calls.
#[derive(Clone, Debug)]
pub struct Drain(watch::Receiver<usize>);

impl Drain {
    /// Calls queued or running now.
    pub fn pending(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until every queued call has finished, at most `limit`; true if they all did.
    pub async fn wait(&mut self, limit: Duration) -> bool {
        // An error: every worker and the dispatcher are gone, so nothing is pending.
        tokio::time::timeout(limit, self.0.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }

    /// At the stop: waits for the queued calls until `deadline`; what is still running then is
    /// killed when the agent exits (one line says so).
    pub async fn finish(&mut self, deadline: tokio::time::Instant) {
        let limit = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.wait(limit).await {
            log::warn!(
                "{} notify call(s) still queued or running {STOP_DRAIN:?} after the stop; \
                 killed at exit",
                self.pending()
            );
        }
    }
}

/// Runs calls as processes: own process group, no stdin, output to the log at debug, killed
/// with its whole group at the timeout.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessRunner;

/// Kills a process group when dropped unless disarmed: a call dropped while running (the agent
/// exits) leaves nothing behind.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) on a process group we created; the leader is our unreaped child,
            // so the id cannot have been reused.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Logs each line of a script's output at debug.
fn log_lines(
    r: impl AsyncRead + Unpin + Send + 'static,
    prefix: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            log::debug!("{prefix}: {l}");
        }
    })
}

impl Runner for ProcessRunner {
    async fn run(&self, call: Call, timeout: Duration) {
        let Call {
            who,
            key,
            argv,
            env,
            seq,
        } = call;
        let program = &argv[0];
        if !Path::new(program).is_absolute() {
            log::warn!(
                "{who}: {key} `{program}` not run: the program must be an absolute path \
                 (e.g. /usr/local/bin/{program})"
            );
            return;
        }
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&argv[1..])
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls between fork and exec. A realtime agent
        // (`realtime_priority`) must not hand SCHED_RR to the scripts.
        unsafe {
            cmd.pre_exec(|| {
                let param = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                log::warn!("{who}: {key} `{program}` could not start: {e}");
                return;
            }
        };
        let mut group = GroupKill(child.id().map(|p| p as i32));
        let prefix = format!("{who}: {key} (seq {seq})");
        let readers: Vec<_> = [
            child.stdout.take().map(|o| log_lines(o, prefix.clone())),
            child.stderr.take().map(|e| log_lines(e, prefix.clone())),
        ]
        .into_iter()
        .flatten()
        .collect();
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                group.0 = None;
                if !status.success() {
                    log::warn!("{who}: {key} `{program}` (seq {seq}) {status}");
                }
            }
            Ok(Err(e)) => log::warn!("{who}: {key} `{program}` (seq {seq}): waiting: {e}"),
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                group.0 = None;
                log::warn!(
                    "{who}: {key} `{program}` (seq {seq}) still running after {timeout:?}; \
                     killed its process group"
                );
            }
        }
        // Output still held open by something the script left running is not waited for.
        for r in readers {
            let abort = r.abort_handle();
            if tokio::time::timeout(Duration::from_millis(100), r)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// The notify-script sink: looks up the commands of the instance or group that changed and
/// queues its calls.
pub struct NotifySink<R: Runner = ProcessRunner> {
    instances: HashMap<String, NotifySpec>,
    groups: HashMap<String, NotifySpec>,
    dispatcher: Dispatcher<R>,
}

impl NotifySink<ProcessRunner> {
    /// The commands of every instance and sync group of `cfg`, run as processes with
    /// [`NOTIFY_TIMEOUT`].
    pub fn from_config(cfg: &crate::config::AgentConfig) -> Self {
        Self::new(
            cfg.instances
                .iter()
                .map(|i| (i.name.clone(), i.notify.clone())),
            cfg.sync_groups
                .iter()
                .map(|g| (g.name.clone(), g.notify.clone())),
            NOTIFY_TIMEOUT,
        )
    }

    /// `instances`, `groups`: (name, commands); those without commands are left out.
    pub fn new(
        instances: impl IntoIterator<Item = (String, NotifySpec)>,
        groups: impl IntoIterator<Item = (String, NotifySpec)>,
        timeout: Duration,
    ) -> Self {
        Self::with_runner(instances, groups, ProcessRunner, timeout)
    }
}

impl<R: Runner> NotifySink<R> {
    pub fn with_runner(
        instances: impl IntoIterator<Item = (String, NotifySpec)>,
        groups: impl IntoIterator<Item = (String, NotifySpec)>,
        runner: R,
        timeout: Duration,
    ) -> Self {
        let keep = |(n, s): (String, NotifySpec)| (!s.is_empty()).then_some((n, s));
        Self {
            instances: instances.into_iter().filter_map(keep).collect(),
            groups: groups.into_iter().filter_map(keep).collect(),
            dispatcher: Dispatcher::new(runner, timeout),
        }
    }

    /// True when no instance or group has a command (the sink need not be installed).
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.groups.is_empty()
    }

    pub fn drain(&self) -> Drain {
        self.dispatcher.drain()
    }
}

impl<R: Runner> Sink for NotifySink<R> {
    fn notify(&mut self, n: &Notification) {
        match n {
            Notification::StateChanged(c) => {
                if let Some(spec) = self.instances.get(&c.name) {
                    let calls = instance_calls(spec, c);
                    self.dispatcher
                        .submit(&format!("INSTANCE {}", c.name), calls);
                }
            }
            Notification::GroupStateChanged {
                seq,
                group,
                from,
                to,
            } => {
                if let Some(spec) = self.groups.get(group) {
                    let calls = group_calls(spec, *seq, group, *from, *to);
                    self.dispatcher.submit(&format!("GROUP {group}"), calls);
                }
            }
            _ => {}
        }
    }
}

/// How many lines may wait for a slow (or absent) reader of the event stream before new ones
/// are dropped (counted in a warning).
pub const EVENT_BACKLOG: usize = 1024;

/// The JSON line of a notification for the event stream, if it is one the stream carries:
/// state changes of instances and sync groups, effective-priority and tracker changes.
pub fn event_json(n: &Notification) -> Option<String> {
    let v = match n {
        Notification::StateChanged(c) => serde_json::json!({
            "seq": c.seq,
            "type": "instance",
            "name": c.name,
            "state": state_word(c.to),
            "previous": state_name(c.from),
            "reason": reason_name(c.reason),
            "priority": c.priority,
            "iface": c.iface,
            "vrid": c.vrid,
            "master": c.master.map(|(a, _)| a.to_string()),
        }),
        Notification::GroupStateChanged {
            seq,
            group,
            from,
            to,
        } => serde_json::json!({
            "seq": seq,
            "type": "group",
            "name": group,
            "state": state_word(*to),
            "previous": state_name(*from),
        }),
        Notification::PriorityChanged { name, from, to, .. } => serde_json::json!({
            "type": "priority",
            "name": name,
            "priority": to,
            "previous": from,
        }),
        Notification::TrackerChanged { target, up, .. } => serde_json::json!({
            "type": "tracker",
            "kind": target.kind(),
            "name": target.name(),
            "up": up,
        }),
        _ => return None,
    };
    Some(v.to_string())
}

/// The JSON event stream (keepalived's notify_fifo role): one JSON object per line ([`event_json`]), appended to
/// a file or written into a FIFO. A thread of its own does the writing (opening a FIFO waits
/// for its reader; a reader that goes away is waited for again), so the election never waits;
/// at most [`EVENT_BACKLOG`] lines wait, later ones are dropped with a warning.
pub struct EventStream {
    tx: std::sync::mpsc::SyncSender<String>,
    path: std::path::PathBuf,
    dropped: u64,
}

impl EventStream {
    pub fn open(path: std::path::PathBuf) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(EVENT_BACKLOG);
        let p = path.clone();
        std::thread::Builder::new()
            .name("event-stream".into())
            .spawn(move || write_events(&p, rx))
            .expect("spawning the event-stream thread");
        Self {
            tx,
            path,
            dropped: 0,
        }
    }
}

fn write_events(path: &Path, rx: std::sync::mpsc::Receiver<String>) {
    use std::io::Write as _;
    let mut out: Option<std::fs::File> = None;
    let mut warned = false;
    while let Ok(line) = rx.recv() {
        // One retry: a FIFO whose reader left is opened again (waiting for the next reader).
        for _ in 0..2 {
            let f = match out.as_mut() {
                Some(f) => f,
                None => match std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                {
                    Ok(f) => out.insert(f),
                    Err(e) => {
                        if !warned {
                            log::warn!(
                                "event stream {}: cannot open: {e}; events are dropped until \
                                 it can be",
                                path.display()
                            );
                            warned = true;
                        }
                        break;
                    }
                },
            };
            match f.write_all(format!("{line}\n").as_bytes()) {
                Ok(()) => {
                    warned = false;
                    break;
                }
                Err(e) => {
                    log::debug!("event stream {}: {e}; reopening", path.display());
                    out = None;
                }
            }
        }
    }
}

impl Sink for EventStream {
    fn notify(&mut self, n: &Notification) {
        let Some(line) = event_json(n) else { return };
        if self.tx.try_send(line).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                log::warn!(
                    "event stream {}: no reader keeps up; {} event(s) dropped so far",
                    self.path.display(),
                    self.dropped
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant;
    use vrrp_core::{fsm::Reason, node::InstanceId, Family};

    use super::*;

    fn change(name: &str, seq: u64, from: State, to: State) -> StateChange {
        StateChange {
            seq,
            instance: InstanceId(0),
            name: name.to_owned(),
            iface: "eth0".to_owned(),
            vrid: 51,
            family: Family::V4,
            from,
            to,
            reason: Reason::Startup,
            priority: 150,
            master: None,
        }
    }

    fn spec_all() -> NotifySpec {
        NotifySpec {
            notify: Some("/bin/n  a".into()),
            master: Some("/bin/m x y".into()),
            backup: Some("/bin/b".into()),
            fault: Some("/bin/f".into()),
            stop: Some("/bin/s".into()),
        }
    }

    #[test]
    fn keepalived_calling_convention_and_environment() {
        let c = change("web", 7, State::Backup, State::Master);
        let calls = instance_calls(&spec_all(), &c);
        let argv: Vec<_> = calls.iter().map(|c| c.argv.join(" ")).collect();
        assert_eq!(argv, ["/bin/m x y", "/bin/n a INSTANCE web MASTER 150"]);
        assert_eq!(calls[0].key, "notify_master");
        let env: HashMap<_, _> = calls[1].env.iter().cloned().collect();
        assert_eq!(env["VRRP_INSTANCE"], "web");
        assert_eq!(env["VRRP_STATE"], "MASTER");
        assert_eq!(env["VRRP_PREVIOUS_STATE"], "BACKUP");
        assert_eq!(env["VRRP_REASON"], "startup");
        assert_eq!(env["VRRP_PRIORITY"], "150");
        assert_eq!(env["VRRP_SEQ"], "7");
        assert_eq!(env["VRRP_IFACE"], "eth0");
        assert_eq!(env["VRRP_VRID"], "51");
        // INIT at the stop is STOP; each state picks its own command.
        let stop = instance_calls(
            &spec_all(),
            &change("web", 8, State::Master, State::Initialize),
        );
        assert_eq!(stop[0].argv, ["/bin/s"]);
        assert_eq!(stop[1].argv[4], "STOP");
        assert_eq!(
            instance_calls(&spec_all(), &change("web", 9, State::Master, State::Fault))[0].argv,
            ["/bin/f"]
        );
        // Only notify: one call; nothing configured: none.
        let only = NotifySpec {
            notify: Some("/bin/n".into()),
            ..Default::default()
        };
        assert_eq!(instance_calls(&only, &c).len(), 1);
        assert!(instance_calls(&NotifySpec::default(), &c).is_empty());
        let g = group_calls(&spec_all(), 3, "g1", State::Master, State::Backup);
        assert_eq!(g[0].argv, ["/bin/b"]);
        assert_eq!(g[1].argv, ["/bin/n", "a", "GROUP", "g1", "BACKUP"]);
        assert!(g[1].env.contains(&("VRRP_GROUP", "g1".into())));
    }

    /// (who, seq, started, ended)
    type Run = (String, u64, Instant, Instant);

    /// Records when each call started and ended; each takes `took` (simulated clock).
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<Run>>>,
        took: HashMap<u64, Duration>,
    }

    impl Runner for Fake {
        async fn run(&self, call: Call, timeout: Duration) {
            let start = Instant::now();
            let took = self.took.get(&call.seq).copied().unwrap_or_default();
            tokio::time::sleep(took.min(timeout)).await;
            self.log
                .lock()
                .unwrap()
                .push((call.who, call.seq, start, Instant::now()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn per_instance_order_across_slow_and_timed_out_calls_instances_in_parallel() {
        let fake = Fake {
            took: [
                (1, Duration::from_millis(500)),
                (2, Duration::from_secs(60)), // past the timeout
                (3, Duration::ZERO),
                (4, Duration::from_millis(300)),
                (5, Duration::from_millis(100)),
            ]
            .into(),
            ..Default::default()
        };
        let log = fake.log.clone();
        let spec = NotifySpec {
            notify: Some("/bin/n".into()),
            ..Default::default()
        };
        let mut sink = NotifySink::with_runner(
            [("a".into(), spec.clone()), ("b".into(), spec)],
            [],
            fake,
            Duration::from_secs(10),
        );
        let mut drain = sink.drain();
        let t0 = Instant::now();
        // a: MASTER (slow), BACKUP (hangs), STOP; b: MASTER, BACKUP, all queued at once.
        for (name, seq, from, to) in [
            ("a", 1, State::Initialize, State::Master),
            ("b", 4, State::Initialize, State::Master),
            ("a", 2, State::Master, State::Backup),
            ("b", 5, State::Master, State::Backup),
            ("a", 3, State::Backup, State::Initialize),
        ] {
            sink.notify(&Notification::StateChanged(change(name, seq, from, to)));
        }
        assert_eq!(drain.pending(), 5);
        assert!(drain.wait(Duration::from_secs(30)).await);
        let log = log.lock().unwrap().clone();
        let of = |who: &str| -> Vec<_> {
            log.iter()
                .filter(|e| e.0 == format!("instance {who}"))
                .cloned()
                .collect()
        };
        let (a, b) = (of("a"), of("b"));
        assert_eq!(a.iter().map(|e| e.1).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(b.iter().map(|e| e.1).collect::<Vec<_>>(), [4, 5]);
        for w in a.windows(2).chain(b.windows(2)) {
            assert!(
                w[1].2 >= w[0].3,
                "a call started before the one before ended: {w:?}"
            );
        }
        // The hanging call ended at the timeout, and the next one ran.
        assert_eq!(a[1].3 - a[1].2, Duration::from_secs(10));
        assert_eq!(a[2].2 - t0, Duration::from_millis(10_500));
        // b did not wait for a.
        assert_eq!(b[1].3 - t0, Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_is_bounded() {
        let fake = Fake {
            took: [(1, Duration::from_secs(5))].into(),
            ..Default::default()
        };
        let mut sink = NotifySink::with_runner(
            [("a".into(), spec_all())],
            [],
            fake,
            Duration::from_secs(10),
        );
        let mut drain = sink.drain();
        assert!(drain.wait(Duration::from_millis(1)).await, "nothing queued");
        sink.notify(&Notification::StateChanged(change(
            "a",
            1,
            State::Master,
            State::Initialize,
        )));
        // Other instances and notifications are ignored.
        sink.notify(&Notification::StateChanged(change(
            "zz",
            2,
            State::Master,
            State::Initialize,
        )));
        assert_eq!(drain.pending(), 1);
        assert!(!drain.wait(STOP_DRAIN).await);
        assert!(drain.wait(Duration::from_secs(10)).await);
    }

    #[test]
    fn event_stream_writes_one_json_object_per_state_change() {
        let dir = std::env::temp_dir().join(format!("notify-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let mut es = EventStream::open(path.clone());
        let mut c = change("web", 4, State::Master, State::Initialize);
        c.master = Some(("10.0.0.2".parse().unwrap(), 200));
        es.notify(&Notification::StateChanged(c));
        es.notify(&Notification::StateChanged(change(
            "db",
            5,
            State::Backup,
            State::Master,
        )));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let lines = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
                break text.lines().map(str::to_owned).collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(lines.len(), 2, "{lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["seq"], 4);
        assert_eq!(v["type"], "instance");
        assert_eq!(v["name"], "web");
        assert_eq!(v["state"], "STOP");
        assert_eq!(v["previous"], "MASTER");
        assert_eq!(v["reason"], "startup");
        assert_eq!(v["priority"], 150);
        assert_eq!(v["iface"], "eth0");
        assert_eq!(v["vrid"], 51);
        assert_eq!(v["master"], "10.0.0.2");
        let v: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            (v["name"].as_str(), v["master"].is_null()),
            (Some("db"), true)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn group_changes_run_the_group_commands_in_order() {
        let fake = Fake {
            took: [(1, Duration::from_millis(500))].into(),
            ..Default::default()
        };
        let log = fake.log.clone();
        let mut sink = NotifySink::with_runner(
            [],
            [("g1".into(), spec_all())],
            fake,
            Duration::from_secs(10),
        );
        let mut drain = sink.drain();
        for (seq, from, to) in [
            (1, State::Backup, State::Master),
            (2, State::Master, State::Backup),
        ] {
            sink.notify(&Notification::GroupStateChanged {
                seq,
                group: "g1".into(),
                from,
                to,
            });
        }
        // Not a group of this sink.
        sink.notify(&Notification::GroupStateChanged {
            seq: 3,
            group: "g2".into(),
            from: State::Master,
            to: State::Backup,
        });
        assert!(drain.wait(Duration::from_secs(30)).await);
        let log = log.lock().unwrap().clone();
        // Each change: its own command, then notify.
        assert_eq!(
            log.iter().map(|e| (e.0.as_str(), e.1)).collect::<Vec<_>>(),
            [
                ("sync group g1", 1),
                ("sync group g1", 1),
                ("sync group g1", 2),
                ("sync group g1", 2)
            ]
        );
        assert!(log.windows(2).all(|w| w[1].2 >= w[0].3), "{log:?}");
    }

    #[test]
    fn event_json_of_groups_priorities_and_trackers() {
        let g = event_json(&Notification::GroupStateChanged {
            seq: 9,
            group: "g1".into(),
            from: State::Master,
            to: State::Fault,
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&g).unwrap();
        assert_eq!(
            (
                v["type"].as_str(),
                v["name"].as_str(),
                v["state"].as_str(),
                v["seq"].as_u64()
            ),
            (Some("group"), Some("g1"), Some("FAULT"), Some(9))
        );
        let p = event_json(&Notification::PriorityChanged {
            instance: InstanceId(0),
            name: "web".into(),
            from: 150,
            to: 30,
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(
            (v["priority"].as_u64(), v["previous"].as_u64()),
            (Some(30), Some(150))
        );
        let t = event_json(&Notification::TrackerChanged {
            tracker: vrrp_core::node::TrackerId(0),
            target: vrrp_core::config::TrackTarget::Check("web".into()),
            up: false,
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["name"].as_str(), v["up"].as_bool()),
            (Some("check"), Some("web"), Some(false))
        );
    }

    fn call(argv: &[&str]) -> Call {
        Call {
            who: "instance t".into(),
            key: "notify",
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("VRRP_SEQ", "1".into())],
            seq: 1,
        }
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks existence.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    #[tokio::test]
    async fn a_hanging_script_and_its_children_are_killed_at_the_timeout() {
        let dir = std::env::temp_dir().join(format!("notify-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        let script = dir.join("hang.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsleep 30 &\necho $! > {}\necho started\nwait\n",
                pidfile.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let t = std::time::Instant::now();
        ProcessRunner
            .run(
                call(&[script.to_str().unwrap()]),
                Duration::from_millis(300),
            )
            .await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild (reparented, reaped by init) is gone within a bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(child) && !is_zombie(child) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !alive(child) || is_zombie(child),
            "the script's child {child} survived the timeout"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn relative_programs_are_refused_and_failures_do_not_panic() {
        // Neither may panic or hang; the refusal runs nothing.
        ProcessRunner
            .run(call(&["true"]), Duration::from_secs(5))
            .await;
        ProcessRunner
            .run(call(&["/nonexistent/prog"]), Duration::from_secs(5))
            .await;
        ProcessRunner
            .run(call(&["/bin/false"]), Duration::from_secs(5))
            .await;
    }
}
