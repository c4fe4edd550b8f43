//! The control socket: a Unix stream socket (default [`DEFAULT_SOCKET`]) on which the running
//! agent answers one JSON request per line with one JSON reply per line, and the client side of
//! `vrrp-agent status`.
//!
//! Protocol: `{"cmd":"status"}` → `{"instances":[...]}` ([`status_json`]);
//! `{"cmd":"reload"}` → `{"ok":true,"summary":"added -; removed vr2; changed vr1; unchanged
//! vr3"}` or `{"ok":false,"error":"FILE:LINE: ..."}` (the old configuration keeps running);
//! anything else → `{"error":"..."}`.
//!
//! The supervisor's loop stays the only owner of the core: each connection is a task that
//! reads its request (bounded in size and time) and asks the loop through a channel
//! ([`Request`]); the loop answers from [`vrrp_core::Core::snapshot`] between two events.
//!
//! Access: the directory is created 0755, the socket is 0660, owned by the agent's user (root)
//! and, with `[global] control_group`, by that group. A socket file left by a dead agent is
//! replaced; one another agent still serves is refused.
use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::{FileTypeExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Map, Value};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};
use vrrp_core::{
    fsm,
    node::{reason_name, state_name, InstanceSnapshot, Snapshot},
    wire::RxError,
};

use crate::fastpath::Counters;

/// Where the agent serves its control socket unless `--control-socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/vrrp-agent/vrrp-agent.sock";

/// The longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client may take to send its request, and the loop to answer it.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A question for the supervisor's loop.
#[derive(Debug)]
pub enum Request {
    /// Everything `status` and `/metrics` show.
    Status(oneshot::Sender<StatusData>),
    /// Read the configuration file again and apply it (`vrrp-agent reload`).
    Reload(oneshot::Sender<Result<crate::supervisor::ReloadSummary, String>>),
}

/// Results of the health checks the edge handed to the core, per check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckCount {
    pub check: String,
    pub success: u64,
    pub failure: u64,
}

/// The loop's answer to [`Request::Status`].
#[derive(Debug, Clone)]
pub struct StatusData {
    pub snapshot: Snapshot,
    /// The core's clock when the snapshot was taken.
    pub now: fsm::Instant,
    /// Each interface's fast-path counters (`None`: the maps could not be read).
    pub fastpath: Vec<(String, Option<Counters>)>,
    pub checks: Vec<CheckCount>,
}

/// Asks the loop for its status.
pub async fn ask_status(tx: &mpsc::Sender<Request>) -> Result<StatusData> {
    let (otx, orx) = oneshot::channel();
    tx.send(Request::Status(otx))
        .await
        .map_err(|_| anyhow!("the agent is stopping"))?;
    match tokio::time::timeout(IO_TIMEOUT, orx).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(_)) => bail!("the agent is stopping"),
        Err(_) => bail!("the agent did not answer within {IO_TIMEOUT:?}"),
    }
}

/// How long the loop may take to answer a reload (it reads the file and the interfaces'
/// addresses, and carries out the core's commands).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the loop to reload its configuration file; the reply of `{"cmd":"reload"}`.
pub async fn ask_reload(tx: &mpsc::Sender<Request>) -> Value {
    let (otx, orx) = oneshot::channel();
    let r = match tx.send(Request::Reload(otx)).await {
        Err(_) => Err("the agent is stopping".to_string()),
        Ok(()) => match tokio::time::timeout(RELOAD_TIMEOUT, orx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the agent is stopping".to_string()),
            Err(_) => Err(format!(
                "the agent did not finish the reload within {RELOAD_TIMEOUT:?}; see its log"
            )),
        },
    };
    match r {
        Ok(s) => json!({ "ok": true, "summary": s.to_string() }),
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

/// Seconds as a JSON number.
fn secs(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

/// How long before `now` the core instant `at` was.
fn ago(now: fsm::Instant, at: fsm::Instant) -> Duration {
    Duration::from_nanos(now.as_nanos().saturating_sub(at.as_nanos()))
}

/// One instance as JSON. Passwords are not in the snapshot, so they cannot be here.
fn instance_json(i: &InstanceSnapshot, now: fsm::Instant, unix_now: SystemTime) -> Value {
    let rx_errors: Map<String, Value> = RxError::NAMES
        .iter()
        .zip(i.rx.errors.iter())
        .map(|(n, c)| (n.to_string(), json!(c)))
        .collect();
    let last_transition = i.last_transition.map(|t| {
        let back = ago(now, t.at);
        let at = unix_now
            .checked_sub(back)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        json!({
            "time": at.as_secs_f64(),
            "seconds_ago": back.as_secs_f64(),
            "from": state_name(t.from),
            "to": state_name(t.to),
            "reason": reason_name(t.reason),
        })
    });
    json!({
        "name": i.name,
        "interface": i.iface_name,
        "vrid": i.vrid,
        "family": i.family.name(),
        "version": i.version.number(),
        "state": state_name(i.state),
        "base_priority": i.priority,
        "effective_priority": i.effective_priority,
        "master_address": i.master.map(|(a, _)| a.to_string()),
        "master_priority": i.master.map(|(_, p)| p),
        "advert_interval": f64::from(i.advert_interval_cs) / 100.0,
        "master_advert_interval": f64::from(i.master_adver_interval_cs) / 100.0,
        "master_down_interval": secs(i.master_down_interval),
        "skew_time": secs(i.skew_time),
        "vips": i.vips.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        "vips_held": i.vips_held,
        "primary_address": i.primary.to_string(),
        "sync_group": i.sync_group,
        "last_transition": last_transition,
        "transitions": i.counters.transitions,
        "became_master": i.counters.became_master,
        "released_master": i.counters.left_master,
        "adverts_received": i.rx.accepted,
        "adverts_sent": i.counters.adverts_sent,
        "advert_send_errors": i.counters.advert_send_errors,
        "rx_errors": rx_errors,
        "garp_sent": i.counters.garp_sent,
        "trackers": i.trackers.iter().map(|t| json!({
            "target": t.target.to_string(),
            "weight": t.weight,
            "up": t.up,
            "value": t.value,
        })).collect::<Vec<_>>(),
        "peers": i.peers.iter().map(|p| json!({
            "address": p.addr.to_string(),
            "priority": p.priority,
            "advert_interval": f64::from(p.interval_cs) / 100.0,
            "last_seen": ago(now, p.last_seen).as_secs_f64(),
            "adverts": p.adverts,
        })).collect::<Vec<_>>(),
    })
}

/// The reply to `{"cmd":"status"}`: `{"instances":[...]}`.
pub fn status_json(d: &StatusData, unix_now: SystemTime) -> Value {
    json!({
        "instances": d
            .snapshot
            .instances
            .iter()
            .map(|i| instance_json(i, d.now, unix_now))
            .collect::<Vec<_>>(),
    })
}

/// The reply to one request line.
async fn reply(line: &str, tx: &mpsc::Sender<Request>) -> Value {
    let req: Value = match serde_json::from_str(line.trim()) {
        Ok(v) => v,
        Err(e) => return json!({ "error": format!("not a JSON request: {e}") }),
    };
    match req.get("cmd").and_then(Value::as_str) {
        Some("status") => match ask_status(tx).await {
            Ok(d) => status_json(&d, SystemTime::now()),
            Err(e) => json!({ "error": e.to_string() }),
        },
        Some("reload") => ask_reload(tx).await,
        Some(other) => {
            json!({ "error": format!("unknown command {other:?} (known: status, reload)") })
        }
        None => json!({ "error": "no \"cmd\" in the request (e.g. {\"cmd\":\"status\"})" }),
    }
}

/// One connection: one request line, one reply line.
async fn serve_one(stream: UnixStream, tx: mpsc::Sender<Request>) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd.take(MAX_REQUEST));
    let mut line = String::new();
    let answer = match tokio::time::timeout(IO_TIMEOUT, rd.read_line(&mut line)).await {
        Ok(Ok(_)) if line.ends_with('\n') => reply(&line, &tx).await,
        Ok(Ok(_)) => json!({ "error": "the request must be one line ending in a newline" }),
        Ok(Err(e)) => json!({ "error": format!("reading the request: {e}") }),
        Err(_) => json!({ "error": "no request line within 5 s" }),
    };
    let mut text = answer.to_string();
    text.push('\n');
    let _ = tokio::time::timeout(IO_TIMEOUT, wr.write_all(text.as_bytes())).await;
}

/// The served socket; its file is removed when this is dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The group id of `group` (a name or a number).
fn group_id(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).map_err(|_| anyhow!("bad group name"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getgrnam_r writes only into `grp` and `buf` (whose length is given) and sets
    // `out` to null or to `&grp`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        );
        if rc != 0 || out.is_null() {
            bail!("[global] control_group {group:?}: no such group (give a group name or number)");
        }
        Ok(grp.gr_gid)
    }
}

/// Removes a socket file no agent serves any more; refuses a live one (and anything that is
/// not a socket).
fn clear_stale(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!(
            "control socket {}: the path exists and is not a socket; remove it or give \
             --control-socket PATH",
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!(
            "control socket {} is served by a running vrrp-agent; stop it first or give this \
             one its own --control-socket PATH",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            log::info!(
                "control socket {}: removing the stale socket of an earlier run",
                path.display()
            );
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("control socket {}", path.display())),
    }
}

/// Binds the control socket at `path` (0660, group `group` if given) and serves it: each
/// request is handed to the loop through `tx`.
pub fn serve(path: &Path, group: Option<&str>, tx: mpsc::Sender<Request>) -> Result<ControlSocket> {
    let gid = group.map(group_id).transpose()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the directory {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("setting the mode of {}", dir.display()))?;
        }
    }
    clear_stale(path)?;
    // No moment at which others may connect: the socket is created 0660 (umask 0117).
    // SAFETY: umask only changes the process's file mode mask; it is restored at once.
    let old = unsafe { libc::umask(0o117) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener =
        bound.with_context(|| format!("binding the control socket {}", path.display()))?;
    // From here on, an error removes the socket file.
    let mut owned = ControlSocket {
        path: path.to_path_buf(),
        task: None,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("giving {} to group {gid}", path.display()))?;
    }
    owned.task = Some(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    tokio::spawn(serve_one(s, tx.clone()));
                }
                Err(e) => {
                    log::warn!("control socket: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }));
    Ok(owned)
}

/// The client: sends `request` to the agent at `path` and returns its reply; errors are one
/// line naming what to do.
pub fn request(path: &Path, request: &Value) -> Result<Value, String> {
    let v = request_raw(path, request)?;
    match v.get("error").and_then(Value::as_str) {
        Some(e) => Err(format!("vrrp-agent: {e}")),
        None => Ok(v),
    }
}

fn connect(path: &Path) -> Result<std::os::unix::net::UnixStream, String> {
    let p = path.display();
    std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("is vrrp-agent running? no socket at {p} (or give --control-socket PATH)")
        }
        std::io::ErrorKind::ConnectionRefused => {
            format!("is vrrp-agent running? nobody listens on {p} (a stale socket)")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on {p}: run as root or as a member of [global] control_group"
        ),
        _ => format!("connecting to {p}: {e}"),
    })
}

/// [`request`], returning an `{"error": ...}` reply as it is (only what kept the request
/// from being answered is an `Err`).
pub fn request_raw(path: &Path, request: &Value) -> Result<Value, String> {
    let p = path.display();
    let mut s = connect(path)?;
    let io = |e: std::io::Error| format!("talking to vrrp-agent on {p}: {e}");
    s.set_read_timeout(Some(RELOAD_TIMEOUT + IO_TIMEOUT))
        .map_err(io)?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let mut line = request.to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).map_err(io)?;
    serde_json::from_str::<Value>(&reply)
        .map_err(|e| format!("vrrp-agent on {p} gave an unreadable reply: {e}"))
}

/// `status` without `--json`: one line per instance.
pub fn status_table(v: &Value) -> String {
    let s = |x: &Value| match x {
        Value::Null => "-".to_string(),
        Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    let mut rows = vec![[
        "INSTANCE",
        "INTERFACE",
        "VRID",
        "FAMILY",
        "STATE",
        "PRIO",
        "MASTER",
        "VIPS",
        "LAST TRANSITION",
    ]
    .map(String::from)];
    for i in v["instances"].as_array().into_iter().flatten() {
        let prio = if i["base_priority"] == i["effective_priority"] {
            s(&i["base_priority"])
        } else {
            format!("{}/{}", s(&i["effective_priority"]), s(&i["base_priority"]))
        };
        let master = match (&i["master_address"], &i["state"]) {
            (Value::String(a), _) => format!("{a} ({})", s(&i["master_priority"])),
            (_, Value::String(st)) if st == "MASTER" => "self".into(),
            _ => "-".into(),
        };
        let vips = i["vips"]
            .as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let last = match &i["last_transition"] {
            Value::Object(t) => format!(
                "{}s ago {}->{} ({})",
                t.get("seconds_ago")
                    .and_then(Value::as_f64)
                    .map_or("?".into(), |a| format!("{a:.0}")),
                s(&t["from"]),
                s(&t["to"]),
                s(&t["reason"])
            ),
            _ => "-".into(),
        };
        rows.push([
            s(&i["name"]),
            s(&i["interface"]),
            s(&i["vrid"]),
            s(&i["family"]),
            s(&i["state"]),
            prio,
            master,
            vips,
            last,
        ]);
    }
    let mut width = [0usize; 9];
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_core::{config::InstanceInput, Core, IfaceEnv};

    fn data(toml_auth: bool) -> StatusData {
        let mut input = InstanceInput::default();
        input.set_str("interface", "eth9").unwrap();
        input.set_int("vrid", 7).unwrap();
        input.set_str("vips", "10.9.0.100/24").unwrap();
        input.set_int("priority", 150).unwrap();
        if toml_auth {
            input.set_int("version", 2).unwrap();
            input.set_str("auth_pass", "s3cr3tpw").unwrap();
        }
        let spec = input.build(None).unwrap();
        let env = IfaceEnv {
            name: "eth9".into(),
            mac: vrrp_core::wire::MacAddr([2, 0, 0, 0, 0, 1]),
            addrs: vec!["10.9.0.1".parse().unwrap()],
        };
        let mut core = Core::new(vec![spec], vec![env]).unwrap();
        let t0 = fsm::Instant::from_nanos(1_000_000_000);
        core.handle(vrrp_core::Event::Startup, t0);
        while core.poll_command().is_some() {}
        StatusData {
            snapshot: core.snapshot(),
            now: fsm::Instant::from_nanos(3_500_000_000),
            fastpath: Vec::new(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn status_json_has_every_field_and_no_password() {
        let unix = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v = status_json(&data(true), unix);
        let text = v.to_string();
        assert!(!text.contains("s3cr3tpw"), "password leaked: {text}");
        assert!(!text.to_lowercase().contains("pass"), "{text}");
        let i = &v["instances"][0];
        for k in [
            "name",
            "interface",
            "vrid",
            "family",
            "version",
            "state",
            "base_priority",
            "effective_priority",
            "master_address",
            "master_priority",
            "advert_interval",
            "master_advert_interval",
            "master_down_interval",
            "skew_time",
            "vips",
            "last_transition",
            "transitions",
            "adverts_received",
            "adverts_sent",
            "advert_send_errors",
            "rx_errors",
            "garp_sent",
            "trackers",
            "peers",
        ] {
            assert!(i.get(k).is_some(), "no {k} in {i}");
        }
        assert_eq!(i["name"], "vrid7");
        assert_eq!(i["interface"], "eth9");
        assert_eq!(i["vrid"], 7);
        assert_eq!(i["family"], "IPv4");
        assert_eq!(i["version"], 2);
        assert_eq!(i["state"], "BACKUP");
        assert_eq!(i["base_priority"], 150);
        assert_eq!(i["advert_interval"], 1.0);
        assert_eq!(i["vips"], json!(["10.9.0.100/24"]));
        assert_eq!(i["master_address"], Value::Null);
        let t = &i["last_transition"];
        assert_eq!(t["from"], "INIT");
        assert_eq!(t["to"], "BACKUP");
        assert_eq!(t["reason"], "startup");
        assert_eq!(t["seconds_ago"], 2.5);
        assert_eq!(t["time"], 999_997.5);
        assert_eq!(i["transitions"], 1);
        assert_eq!(i["rx_errors"]["ttl_not_255"], 0);
        assert_eq!(
            i["rx_errors"].as_object().unwrap().len(),
            RxError::COUNT,
            "every receive error reason"
        );
        let md = i["master_down_interval"].as_f64().unwrap();
        assert!(md > 3.0 && md < 3.5, "{md}");
    }

    /// `{"cmd":"reload"}` over a real socket, answered by a stand-in for the loop.
    #[tokio::test]
    async fn reload_replies_with_the_summary_or_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (tx, mut rx) = mpsc::channel(4);
        let _sock = serve(&path, None, tx).unwrap();
        tokio::spawn(async move {
            let mut n = 0;
            while let Some(req) = rx.recv().await {
                if let Request::Reload(reply) = req {
                    n += 1;
                    let _ = reply.send(if n == 1 {
                        Ok(crate::supervisor::ReloadSummary {
                            removed: vec!["vr2".into()],
                            changed: vec!["vr1".into()],
                            unchanged: vec!["vr3".into()],
                            ..Default::default()
                        })
                    } else {
                        Err("/etc/x.toml:7: vrid: expected 1-255".into())
                    });
                }
            }
        });
        let ask = |p: PathBuf| {
            tokio::task::spawn_blocking(move || request_raw(&p, &json!({"cmd": "reload"})))
        };
        let ok = ask(path.clone()).await.unwrap().unwrap();
        assert_eq!(
            ok,
            json!({"ok": true, "summary": "added -; removed vr2; changed vr1; unchanged vr3"})
        );
        let bad = ask(path.clone()).await.unwrap().unwrap();
        assert_eq!(
            bad,
            json!({"ok": false, "error": "/etc/x.toml:7: vrid: expected 1-255"})
        );
    }

    #[test]
    fn table_has_one_line_per_instance() {
        let v = status_json(&data(false), SystemTime::now());
        let t = status_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("INSTANCE"), "{t}");
        assert!(
            lines[1].contains("vrid7") && lines[1].contains("BACKUP"),
            "{t}"
        );
        assert!(lines[1].contains("2s ago INIT->BACKUP (startup)"), "{t}");
    }
}
