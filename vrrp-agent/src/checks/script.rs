//! Script check: the command (program and arguments, split on whitespace, no shell) exits 0
//! within the timeout. The child runs in a process group of its own, at normal scheduling (not
//! the agent's real-time policy), with no stdin/stdout/stderr, optionally as `user`. At the
//! timeout, and whenever the probe is dropped (the agent stops), the whole group gets SIGKILL
//! and the child is reaped: nothing it started is left behind.
//!
//! Script security (as keepalived's `enable_script_security`): a program that a user other than
//! root could change (the file, or a directory on its path, owned by another user or writable
//! by group or others; a sticky directory such as /tmp protects a root-owned file) is refused
//! and the check fails, with one line saying how to fix it.
use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

/// A script check's command, resolved once.
#[derive(Clone, Debug)]
pub struct Script {
    pub program: String,
    pub args: Vec<String>,
    /// (uid, gid) to run as.
    pub user: Option<(u32, u32)>,
}

impl Script {
    /// Parses `command` and looks `user` up. Errors are one line for the user.
    pub fn new(command: &str, user: Option<&str>) -> Result<Self, String> {
        let mut words = command.split_whitespace().map(str::to_owned);
        let program = words.next().ok_or("the script command is empty")?;
        let user = match user {
            None => None,
            Some(u) => Some(lookup_user(u)?),
        };
        Ok(Self {
            program,
            args: words.collect(),
            user,
        })
    }

    /// One probe: `Ok(())` if the command exited 0 within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let path = resolve(&self.program)?;
        secure(&path)?;
        let mut cmd = Command::new(&path);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // The agent runs SCHED_RR; a check script must not.
                let p = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_OTHER, &p);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("running {}: {e}", path.display()))?;
        let mut group = Group(Some(child));
        let status = tokio::time::timeout(timeout, group.child().wait()).await;
        match status {
            Ok(Ok(s)) if s.success() => {
                group.0 = None;
                Ok(())
            }
            Ok(Ok(s)) => {
                // The leader exited; what it left running in its group goes with it.
                group.kill_group();
                group.0 = None;
                Err(format!("{} exited with {s}", path.display()))
            }
            Ok(Err(e)) => Err(format!("waiting for {}: {e}", path.display())),
            Err(_) => {
                group.reap().await;
                Err(format!(
                    "{} did not finish within {timeout:?}; killed (its process group)",
                    path.display()
                ))
            }
        }
    }
}

/// A running child that is the leader of its process group: dropping it kills the group.
struct Group(Option<Child>);

impl Group {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running child")
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.0.as_ref().and_then(Child::id) {
            // SAFETY: a signal to the group we created (pgid = the leader's pid); the leader is
            // not reaped yet, so the id cannot have been reused.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
    }

    /// SIGKILL to the group, then waits for the leader (bounded; SIGKILL is not ignorable,
    /// but a process in uninterruptible sleep dies only when the kernel lets it).
    async fn reap(&mut self) {
        self.kill_group();
        if let Some(mut c) = self.0.take() {
            if tokio::time::timeout(Duration::from_secs(1), c.wait())
                .await
                .is_err()
            {
                log::warn!("a check script's process did not die within 1 s of SIGKILL");
                // Dropped with kill_on_drop: tokio reaps it when it finally exits.
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Dropped while running (the probe was cancelled): kill the group; tokio reaps the
        // leader (kill_on_drop), init the rest.
        if self
            .0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
        {
            self.kill_group();
        }
    }
}

/// The program's path: as given if it has a `/`, else the first executable match on `PATH`.
fn resolve(program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
        .ok_or_else(|| format!("{program}: not found on PATH (give the full path)"))
}

/// Refuses a program that anyone but root could change: the file and every directory above it
/// must be owned by root and not writable by group or others (a sticky directory protects a
/// root-owned file, as /tmp does).
pub fn secure(path: &Path) -> Result<(), String> {
    let file = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    if !m.is_file() {
        return Err(format!("{}: not a regular file", file.display()));
    }
    let fix = |p: &Path, why: &str| {
        format!(
            "refusing to run {}: {} {why}; make it owned by root and not writable by group or \
             others (chown root {p}; chmod go-w {p})",
            file.display(),
            p.display(),
            p = p.display()
        )
    };
    if m.uid() != 0 {
        return Err(fix(&file, &format!("is owned by uid {}", m.uid())));
    }
    if m.mode() & 0o022 != 0 {
        return Err(fix(&file, "is writable by group or others"));
    }
    let mut dir = file.parent();
    while let Some(d) = dir {
        let dm = std::fs::metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        let sticky = dm.mode() & 0o1000 != 0;
        if dm.uid() != 0 {
            return Err(fix(d, &format!("is owned by uid {}", dm.uid())));
        }
        if dm.mode() & 0o022 != 0 && !sticky {
            return Err(fix(d, "is writable by group or others"));
        }
        dir = d.parent();
    }
    Ok(())
}

/// (uid, gid) of a user name (or a numeric uid).
fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let c = std::ffi::CString::new(name).map_err(|_| format!("user {name:?}: invalid name"))?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid buffers; getpwnam_r fills `pw` (pointing into `buf`) or leaves `out` null.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() {
        return Ok((pw.pw_uid, pw.pw_gid));
    }
    if let Ok(uid) = name.parse::<u32>() {
        return Ok((uid, uid));
    }
    Err(format!(
        "no user {name:?} (see `getent passwd {name}`; give an existing user)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A root-owned 0700 directory with an executable `check` script of `body`.
    fn script(body: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("check");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        (d, p)
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn exit_code_decides_and_args_are_passed() {
        let (_d, p) = script("exit \"$1\"");
        Script::new(&format!("{} 0", p.display()), None)
            .unwrap()
            .probe(T)
            .await
            .unwrap();
        let e = Script::new(&format!("{} 3", p.display()), None)
            .unwrap()
            .probe(T)
            .await
            .unwrap_err();
        assert!(e.contains("exit status: 3"), "{e}");
        Script::new("true", None).unwrap().probe(T).await.unwrap();
        Script::new("false", None)
            .unwrap()
            .probe(T)
            .await
            .unwrap_err();
    }

    /// A hanging script is killed at its timeout with everything it started, and reaped.
    #[tokio::test]
    async fn hanging_script_is_killed_with_its_group() {
        let (d, p) = script("sleep 100 & echo $! > \"$0.pid\"; sleep 100");
        let t = std::time::Instant::now();
        let e = Script::new(&p.display().to_string(), None)
            .unwrap()
            .probe(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let pid: i32 = std::fs::read_to_string(d.path().join("check.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep (reparented) dies with the group; wait for the kernel (bounded).
        let gone = (0..200).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            if alive {
                std::thread::sleep(Duration::from_millis(10));
            }
            !alive
        });
        assert!(gone, "the script's background child {pid} survived");
    }

    #[test]
    fn refuses_scripts_others_can_change() {
        let (d, p) = script("exit 0");
        secure(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = secure(&p).unwrap_err();
        assert!(
            e.contains("writable by group or others") && e.contains("chmod go-w"),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = secure(&p).unwrap_err();
        assert!(e.contains(&d.path().display().to_string()), "{e}");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let e = secure(&p).unwrap_err();
        assert!(e.contains("owned by uid 65534"), "{e}");
    }

    #[tokio::test]
    async fn runs_as_user() {
        let (d, p) = script("id -u > \"$0.uid\"");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = d.path().join("check.uid");
        std::fs::write(&out, "").unwrap();
        std::os::unix::fs::chown(&out, Some(65534), None).unwrap();
        Script::new(&p.display().to_string(), Some("nobody"))
            .unwrap()
            .probe(T)
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "65534");
        assert!(Script::new("true", Some("no-such-user-here")).is_err());
    }
}
