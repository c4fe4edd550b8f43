//! The trackers that are facts rather than probes: a file's integer (keepalived's track_file)
//! and whether a process runs (track_process). Both poll (every [`FILE_EVERY`] /
//! [`PROC_EVERY`]) on the blocking pool, report at the start and on each change.
use std::{collections::HashSet, path::PathBuf, time::Duration};

use tokio::sync::mpsc::UnboundedSender;

use super::Report;

pub const FILE_EVERY: Duration = Duration::from_secs(1);
pub const PROC_EVERY: Duration = Duration::from_secs(1);

/// The integer a tracked file holds: its first word, an optionally signed decimal. `None`:
/// the file is missing, unreadable or holds something else.
pub fn parse_value(text: &str) -> Option<i64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Watches `path`: reports its integer ([`Report::Value`]) at the start and on each change;
/// while it is missing or holds no integer, [`Report::State`] `up: false` (the core counts 0),
/// with one warning per bad spell.
pub async fn file(tracker: usize, path: PathBuf, every: Duration, tx: UnboundedSender<Report>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What was reported last: Some(value), or None for "unreadable".
    let mut last: Option<Option<i64>> = None;
    let mut warned = false;
    loop {
        tick.tick().await;
        let read = tokio::fs::read_to_string(&path).await;
        let value = match &read {
            Ok(t) => parse_value(t),
            Err(_) => None,
        };
        match (value, &read) {
            (Some(_), _) => warned = false,
            (None, _) if warned => {}
            (None, Ok(t)) => {
                warned = true;
                log::warn!(
                    "track file {}: {:?} is not an integer; counting 0 (write one integer, \
                     e.g. `echo 10 > {}`)",
                    path.display(),
                    t.chars().take(40).collect::<String>(),
                    path.display()
                );
            }
            (None, Err(e)) => {
                warned = true;
                log::warn!(
                    "track file {}: {e}; counting 0 until it holds an integer",
                    path.display()
                );
            }
        }
        if last != Some(value) {
            last = Some(value);
            let r = match value {
                Some(value) => Report::Value { tracker, value },
                None => Report::State { tracker, up: false },
            };
            if tx.send(r).is_err() {
                return;
            }
        }
    }
}

/// The names of the running processes (`/proc/<pid>/comm`, at most 15 bytes: longer names
/// are compared by their first 15).
pub fn running() -> HashSet<String> {
    let mut out = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            out.insert(comm.trim_end_matches('\n').to_owned());
        }
    }
    out
}

/// The kernel's `comm` of a program named `name`.
fn comm_of(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Watches the processes `procs` (tracker, name): one /proc scan per `every` for all of
/// them; reports each one's presence at the start and on each change.
pub async fn processes(procs: Vec<(usize, String)>, every: Duration, tx: UnboundedSender<Report>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Vec<Option<bool>> = vec![None; procs.len()];
    loop {
        tick.tick().await;
        let Ok(now) = tokio::task::spawn_blocking(running).await else {
            return;
        };
        for (k, (tracker, name)) in procs.iter().enumerate() {
            let up = now.contains(comm_of(name));
            if last[k] != Some(up) {
                last[k] = Some(up);
                if tx
                    .send(Report::State {
                        tracker: *tracker,
                        up,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn values() {
        assert_eq!(parse_value("10\n"), Some(10));
        assert_eq!(parse_value("  -3 trailing"), Some(-3));
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("x"), None);
        assert_eq!(comm_of("a-very-long-process-name"), "a-very-long-pro");
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Report>) -> Report {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a report within 5 s")
            .unwrap()
    }

    #[tokio::test]
    async fn file_reports_changes_and_down_for_missing_or_garbage() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("prio");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t = tokio::spawn(file(7, p.clone(), Duration::from_millis(20), tx));
        assert_eq!(
            next(&mut rx).await,
            Report::State {
                tracker: 7,
                up: false
            }
        );
        std::fs::write(&p, "25\n").unwrap();
        assert_eq!(
            next(&mut rx).await,
            Report::Value {
                tracker: 7,
                value: 25
            }
        );
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(
            next(&mut rx).await,
            Report::State {
                tracker: 7,
                up: false
            }
        );
        std::fs::write(&p, "0").unwrap();
        assert_eq!(
            next(&mut rx).await,
            Report::Value {
                tracker: 7,
                value: 0
            }
        );
        std::fs::write(&p, "-4").unwrap();
        assert_eq!(
            next(&mut rx).await,
            Report::Value {
                tracker: 7,
                value: -4
            }
        );
        t.abort();
    }

    #[tokio::test]
    async fn process_presence() {
        // A program of a name no other process has: a copy of sleep.
        let d = tempfile::tempdir().unwrap();
        let name = format!("vt-{}", std::process::id());
        let bin = d.path().join(&name);
        std::fs::copy("/bin/sleep", &bin).unwrap();
        let mut child = std::process::Command::new(&bin).arg("30").spawn().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t = tokio::spawn(processes(
            vec![(1, name.clone()), (2, "no-such-proc-xyz".into())],
            Duration::from_millis(20),
            tx,
        ));
        let mut got = vec![next(&mut rx).await, next(&mut rx).await];
        got.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(
            got,
            vec![
                Report::State {
                    tracker: 1,
                    up: true
                },
                Report::State {
                    tracker: 2,
                    up: false
                }
            ]
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            next(&mut rx).await,
            Report::State {
                tracker: 1,
                up: false
            }
        );
        t.abort();
    }
}
