//! A keepalived.conf-driven pair end to end (issue 9): r1 and r2 of the lab (see
//! `vrrp_integration_tests::lab`) run `vrrp-agent run --keepalived-conf FILE` with files in the
//! shape keepalived users write: a master/backup pair with PASS authentication and keepalived's
//! default VRRP version (2, so whole-second adverts), and on r1 a `vrrp_script` that fetches a
//! page of python3's http.server with `curl -sf`, tracked with a weight (-60) bigger than the
//! priority gap (150 vs 100).
//!
//! Asserted: r1 becomes MASTER once its check is up (vrrp-agent's checks start down, unlike
//! keepalived's scripts), its adverts are VRRPv2 with the PASS password; killing the server
//! moves the VIP to r2, restarting it brings it back (preempt). And `import-keepalived` on the
//! same file prints TOML that `check-config` accepts (the tracked script and the PASS
//! authentication included).
//!
//! Waits are bounded; namespaces and processes are removed on drop, also when an assertion
//! fails.
use std::{
    net::{IpAddr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use vrrp_integration_tests::{
    lab::{tail, Lab, Vr, VrKind, BACKUP, IFACE, MASTER, PREFIX4, VIP4},
    run, wait_until, Proc,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const VRID: u8 = 51;
const NAME: &str = "VI_1";
const PASS: &str = "s3cret";
/// VRRPv2 adverts every second: a takeover by Master_Down_Interval takes about 3.6 s, plus the
/// check's interval; this bound leaves room for a loaded machine.
const T: Duration = Duration::from_secs(25);

/// keepalived.conf of one router: `state`/`priority`, and `script` (a `vrrp_script` block and
/// its `track_script`, empty: none).
fn keepalived_conf(router: &str, state: &str, priority: u8, check: Option<&Path>) -> String {
    let (script, track) = match check {
        Some(p) => (
            format!(
                "vrrp_script chk_web {{\n    script \"{}\"\n    interval 1\n    timeout 1\n    \
                 weight -60\n    fall 1\n    rise 1\n}}\n\n",
                p.display()
            ),
            "    track_script {\n        chk_web\n    }\n",
        ),
        None => (String::new(), ""),
    };
    format!(
        "! Configuration File for keepalived\n\
         global_defs {{\n    router_id {router}\n}}\n\n\
         {script}\
         vrrp_instance {NAME} {{\n    state {state}\n    interface {IFACE}\n    \
         virtual_router_id {VRID}\n    priority {priority}\n    advert_int 1\n    \
         authentication {{\n        auth_type PASS\n        auth_pass {PASS}\n    }}\n    \
         virtual_ipaddress {{\n        {VIP4}/{PREFIX4} dev {IFACE}\n    }}\n\
         {track}}}\n"
    )
}

/// Fails the test unless `prog --version` runs (a missing tool fails, it does not skip).
fn require_tool(prog: &str) {
    let ok = Command::new(prog)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{prog} is needed by this test: install it (`cargo xtask setup --test-peers`)"
    );
}

/// Starts `vrrp-agent run --keepalived-conf FILE` on router `n` and waits until it attached.
fn agent(lab: &Lab, n: usize, conf: &Path) -> Vr {
    let node = lab.r(n);
    let mut cmd = node.ns.cmd(BIN);
    cmd.arg("run")
        .arg("--keepalived-conf")
        .arg(conf)
        .env("RUST_LOG", "info");
    let what = format!("vrrp-agent --keepalived-conf on {}", node.name);
    let mut proc = Proc::spawn(cmd, &what).unwrap_or_else(|e| panic!("{e:#}"));
    proc.wait_for_line(Duration::from_secs(15), |l| {
        l.contains(&format!("XDP attached to {IFACE}"))
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    Vr {
        proc,
        kind: VrKind::Agent,
        instance: NAME.into(),
        node: node.name.clone(),
    }
}

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

fn has_vip(lab: &Lab, n: usize) -> bool {
    let out = lab
        .r(n)
        .ns
        .ip(&["-4", "addr", "show", "dev", IFACE])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {VIP4}/"))
}

/// Waits (bounded) until the VIP is on router `on`'s interface and not on the other's.
#[track_caller]
fn wait_vip_on(lab: &Lab, on: usize) {
    let other = 3 - on;
    wait_until(&format!("the VIP on r{on} only"), T, || {
        (has_vip(lab, on) && !has_vip(lab, other)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// python3's http.server on r1's address, port 8080; returns once it accepts connections.
fn http_server(lab: &Lab) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lab.r(1).ns.cmd("python3");
    cmd.args(["-m", "http.server", "8080", "--bind"])
        .arg(lab.r(1).ip4.to_string())
        .arg("--directory")
        .arg(dir.path());
    let p = Proc::spawn_in(dir, cmd, "python3 -m http.server on r1").unwrap();
    let addr = SocketAddr::new(IpAddr::V4(lab.r(1).ip4), 8080);
    wait_until("http.server listening on r1", T, || {
        lab.r(1)
            .ns
            .run_in(|| Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()))
            .unwrap()
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    p
}

/// Writes `body` to `path`, mode 0755.
fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

struct Files {
    _dir: tempfile::TempDir,
    r1: PathBuf,
    r2: PathBuf,
}

/// r1's and r2's keepalived.conf and r1's check script in a fresh directory.
fn files(lab: &Lab) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let check = dir.path().join("check_web.sh");
    write_exec(
        &check,
        &format!(
            "#!/bin/sh\nexec curl -sf -o /dev/null --max-time 1 http://{}:8080/\n",
            lab.r(1).ip4
        ),
    );
    let r1 = dir.path().join("r1-keepalived.conf");
    let r2 = dir.path().join("r2-keepalived.conf");
    std::fs::write(&r1, keepalived_conf("r1", "MASTER", 150, Some(&check))).unwrap();
    std::fs::write(&r2, keepalived_conf("r2", "BACKUP", 100, None)).unwrap();
    Files { _dir: dir, r1, r2 }
}

#[test]
fn keepalived_conf_pair_fails_over_on_a_killed_service() {
    require_tool("curl");
    require_tool("tshark");
    let lab = Lab::for_test("ka-conf", 2);
    let f = files(&lab);
    let mut server = http_server(&lab);
    let mut r1 = agent(&lab, 1, &f.r1);
    let mut r2 = agent(&lab, 2, &f.r2);
    // The check comes up (rise 1), r1 (150) wins over r2 (100).
    wait(&mut r1, MASTER);
    wait(&mut r2, BACKUP);
    wait_vip_on(&lab, 1);
    // r1 advertises as the file says: VRRPv2, PASS authentication with the password.
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "ip proto 112", &dir.path().join("r1.pcap"))
        .unwrap();
    cap.wait_frames(
        &format!(
            "vrrp.version == 2 && vrrp.virt_rtr_id == {VRID} && vrrp.prio == 150 && \
             vrrp.auth_type == 1 && vrrp.auth_string == \"{PASS}\""
        ),
        2,
        T,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    drop(cap);
    // The service dies: the check fails, r1 drops to 90 < 100, r2 takes the VIP.
    server.stop(libc::SIGKILL, T).unwrap();
    wait(&mut r2, MASTER);
    wait(&mut r1, BACKUP);
    wait_vip_on(&lab, 2);
    let out = r1.proc.output();
    assert!(
        out.contains("check chk_web: failing:") && out.contains("priority 150 -> 90"),
        "r1 did not log the check failing and its priority dropping:\n{}",
        tail(&out, 30)
    );
    // The service back: r1 preempts.
    let _server = http_server(&lab);
    wait(&mut r1, MASTER);
    wait(&mut r2, BACKUP);
    wait_vip_on(&lab, 1);
}

#[test]
fn import_keepalived_prints_toml_that_check_config_accepts() {
    let lab = Lab::for_test("ka-imp", 1);
    let f = files(&lab);
    let ns = &lab.r(1).ns;
    let out = run(ns.cmd(BIN).arg("import-keepalived").arg(&f.r1))
        .unwrap_or_else(|e| panic!("import-keepalived: {e:#}"));
    let toml = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("imported.toml");
    std::fs::write(&file, &toml).unwrap();
    let checked = ns.cmd(BIN).arg("check-config").arg(&file).output().unwrap();
    // Accepted, with the script tracked at its weight and the PASS authentication kept.
    let shown = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success()
            && shown.contains("track=check chk_web:-60")
            && shown.contains("auth=pass"),
        "check-config refused the imported TOML or lost part of it:\n{toml}\n{shown}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}
