//! Health checks and tracking end to end (issue 9): agents on r1/r2 of a namespace LAN (see
//! `vrrp_integration_tests::lab`) run from a TOML file; r1 (priority 200) tracks a service in
//! its own namespace, r2 (100) tracks nothing. A tracker going down lowers r1's priority by its
//! weight, below r2's, and the VIP moves; back up, r1 preempts.
//!
//! The services are real: python3's http.server, a python3 TCP listener, the client behind a
//! link that is cut, a script that hangs. Waits are bounded; namespaces and processes are
//! removed on drop, also when an assertion fails. Speed lives in `cargo xtask bench health`.
use std::{
    net::{IpAddr, SocketAddr, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    time::Duration,
};

use vrrp_integration_tests::{
    lab::{tail, tshark_fields, Lab, Vr, BACKUP, FAULT, MASTER, PREFIX4, VIP4},
    wait_until, Proc,
};

const VRID: u8 = 51;
const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
/// The instance name in every file.
const NAME: &str = "vr";
const T: Duration = Duration::from_secs(15);

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

/// One instance on eth0 with the lab's VIP, adverts every 0.1 s; `track` is the instance's
/// `track = [...]` (empty: none) and `checks` the `[[check]]` tables before it.
fn config(priority: u8, checks: &str, track: &str) -> String {
    let track = if track.is_empty() {
        String::new()
    } else {
        format!("track = [ {track} ]\n")
    };
    format!(
        r#"{checks}
[[instance]]
name = "{NAME}"
interface = "eth0"
vrid = {VRID}
priority = {priority}
advert_int = 0.1
vips = ["{VIP4}/{PREFIX4}"]
{track}"#
    )
}

/// r1 at priority 200 with `checks` and `track`, r2 at 100 with nothing; waits until r1 is
/// MASTER (its trackers came up) and r2 BACKUP.
fn pair(lab: &Lab, checks: &str, track: &str) -> (Vr, Vr) {
    let mut r1 = lab
        .agent_config(1, Path::new(BIN), &config(200, checks, track), NAME)
        .unwrap_or_else(|e| panic!("r1: {e:#}"));
    let mut r2 = lab
        .agent_config(2, Path::new(BIN), &config(100, "", ""), NAME)
        .unwrap_or_else(|e| panic!("r2: {e:#}"));
    wait(&mut r1, MASTER);
    wait(&mut r2, BACKUP);
    (r1, r2)
}

/// r2 takes over from r1 (the VIP is on r2's eth0, not on r1's).
#[track_caller]
fn moved_to_r2(lab: &Lab, r1: &mut Vr, r2: &mut Vr) {
    wait(r2, MASTER);
    wait(r1, BACKUP);
    wait_vip(lab, 2, true);
    wait_vip(lab, 1, false);
}

/// r1 takes the VIP back (preempt).
#[track_caller]
fn back_to_r1(lab: &Lab, r1: &mut Vr, r2: &mut Vr) {
    wait(r1, MASTER);
    wait(r2, BACKUP);
    wait_vip(lab, 1, true);
    wait_vip(lab, 2, false);
}

fn has_vip(lab: &Lab, n: usize) -> bool {
    let out = lab
        .r(n)
        .ns
        .ip(&["-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP4}/"))
}

#[track_caller]
fn wait_vip(lab: &Lab, n: usize, present: bool) {
    wait_until(
        &format!(
            "the VIP {} on r{n}",
            if present { "present" } else { "absent" }
        ),
        T,
        || (has_vip(lab, n) == present).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// Waits (bounded) until something accepts TCP connections on `addr` in router `n`'s namespace.
fn wait_listening(lab: &Lab, n: usize, addr: SocketAddr) {
    wait_until(&format!("a listener on {addr} in r{n}"), T, || {
        lab.r(n)
            .ns
            .run_in(|| Ok(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()))
            .unwrap()
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// python3's http.server on r1's address, port 8080, serving an empty directory.
fn http_server(lab: &Lab) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lab.r(1).ns.cmd("python3");
    cmd.args(["-m", "http.server", "8080", "--bind"])
        .arg(lab.r(1).ip4.to_string())
        .arg("--directory")
        .arg(dir.path());
    let p = Proc::spawn_in(dir, cmd, "python3 -m http.server on r1").unwrap();
    wait_listening(lab, 1, SocketAddr::new(IpAddr::V4(lab.r(1).ip4), 8080));
    p
}

/// A python3 TCP listener on r1's address, `port`: accepts and closes.
fn tcp_server(lab: &Lab, port: u16) -> Proc {
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{}', {port}))\n\
         s.listen(128)\n\
         while True:\n    c, _ = s.accept()\n    c.close()\n",
        lab.r(1).ip4
    );
    let mut cmd = lab.r(1).ns.cmd("python3");
    cmd.args(["-c", &script]);
    let p = Proc::spawn(cmd, &format!("python3 TCP listener :{port} on r1")).unwrap();
    wait_listening(lab, 1, SocketAddr::new(IpAddr::V4(lab.r(1).ip4), port));
    p
}

#[test]
fn http_check_moves_the_vip_with_the_service() {
    let lab = Lab::for_test("hc-http", 2);
    let mut server = http_server(&lab);
    let checks = format!(
        "[[check]]\nname = \"web\"\nhttp = \"http://{}:8080/\"\ninterval = 0.1\ntimeout = 0.1\n\
         rise = 2\nfall = 2\nstatus = \"200-299\"\n",
        lab.r(1).ip4
    );
    let (mut r1, mut r2) = pair(&lab, &checks, r#"{ check = "web", weight = -120 }"#);
    wait_vip(&lab, 1, true);
    server.stop(libc::SIGKILL, T).unwrap();
    moved_to_r2(&lab, &mut r1, &mut r2);
    let _server = http_server(&lab);
    back_to_r1(&lab, &mut r1, &mut r2);
}

#[test]
fn http_check_status_and_body_are_checked() {
    // The server answers 404 for a missing file: a check that wants 200-299 never comes up, so
    // r1 (200 - 120 = 80) stays below r2 (100).
    let lab = Lab::for_test("hc-404", 2);
    let _server = http_server(&lab);
    let checks = format!(
        "[[check]]\nname = \"web\"\nhttp = \"http://{}:8080/missing\"\ninterval = 0.1\n\
         status = [200]\n",
        lab.r(1).ip4
    );
    let mut r1 = lab
        .agent_config(
            1,
            Path::new(BIN),
            &config(200, &checks, r#"{ check = "web", weight = -120 }"#),
            NAME,
        )
        .unwrap();
    let mut r2 = lab
        .agent_config(2, Path::new(BIN), &config(100, "", ""), NAME)
        .unwrap();
    wait(&mut r2, MASTER);
    wait(&mut r1, BACKUP);
    r1.proc
        .wait_for_line(T, |l| {
            l.contains("check web: failing:") && l.contains("404")
        })
        .unwrap();
    // Many probes later r1 is still BACKUP (this wait is the subject: nothing may change).
    let before = r1.transitions().len();
    std::thread::sleep(Duration::from_millis(1000));
    let after = r1.transitions();
    assert_eq!(after.len(), before, "{}", tail(&r1.proc.output(), 20));
    assert_eq!(after.last().map(String::as_str), Some(BACKUP));
}

#[test]
fn tcp_check_moves_the_vip_with_the_service() {
    let lab = Lab::for_test("hc-tcp", 2);
    let mut server = tcp_server(&lab, 5432);
    let checks = format!(
        "[[check]]\nname = \"db\"\ntcp = \"{}:5432\"\ninterval = 0.1\nfall = 2\n",
        lab.r(1).ip4
    );
    let (mut r1, mut r2) = pair(&lab, &checks, r#"{ check = "db", weight = -120 }"#);
    server.stop(libc::SIGKILL, T).unwrap();
    moved_to_r2(&lab, &mut r1, &mut r2);
    let _server = tcp_server(&lab, 5432);
    back_to_r1(&lab, &mut r1, &mut r2);
}

/// r1 pings the client; cutting the client's link moves the VIP, restoring it moves it back.
fn icmp_check(tag: &str, target: IpAddr) {
    let lab = Lab::for_test(tag, 2);
    let checks = format!(
        "[[check]]\nname = \"gw\"\nicmp = \"{target}\"\ninterval = 0.1\ntimeout = 0.1\nfall = 3\n"
    );
    let (mut r1, mut r2) = pair(&lab, &checks, r#"{ check = "gw", weight = -120 }"#);
    let port = lab.client.port.clone();
    lab.switch.ip(&["link", "set", &port, "down"]).unwrap();
    moved_to_r2(&lab, &mut r1, &mut r2);
    lab.switch.ip(&["link", "set", &port, "up"]).unwrap();
    back_to_r1(&lab, &mut r1, &mut r2);
}

#[test]
fn icmp_check_v4_target_behind_a_cut_link() {
    icmp_check(
        "hc-icmp4",
        IpAddr::V4(std::net::Ipv4Addr::new(10, 210, 0, 10)),
    );
}

#[test]
fn icmp_check_v6_target_behind_a_cut_link() {
    icmp_check("hc-icmp6", "fd00:210::10".parse().unwrap());
}

/// Processes whose command line is exactly `cmdline` (NUL-separated in /proc), with their
/// state letter.
fn processes(cmdline: &str) -> Vec<(u32, char)> {
    let want: Vec<u8> = cmdline
        .split(' ')
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want) {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, r)| r.chars().next())
                .unwrap_or('?');
            out.push((pid, state));
        }
    }
    out
}

/// The agent's children in state Z (not reaped).
fn zombie_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|x| x.parse::<u32>().ok()));
        if state == Some("Z") && ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

#[test]
fn hanging_script_is_killed_at_its_timeout_and_counts_as_a_failure() {
    let lab = Lab::for_test("hc-hang", 2);
    // A sleep of a length no other process uses, so that it can be found (and counted) even
    // after it was orphaned.
    let secs = format!("99.{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hang.sh");
    std::fs::write(&script, format!("#!/bin/sh\nsleep {secs}\nexit 0\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let checks = format!(
        "[[check]]\nname = \"hang\"\nscript = \"{}\"\ninterval = 0.5\ntimeout = 0.3\n",
        script.display()
    );
    let mut r1 = lab
        .agent_config(
            1,
            Path::new(BIN),
            &config(200, &checks, r#"{ check = "hang", weight = -120 }"#),
            NAME,
        )
        .unwrap();
    let mut r2 = lab
        .agent_config(2, Path::new(BIN), &config(100, "", ""), NAME)
        .unwrap();
    // The script never finishes: every probe is a failure, r1 stays at 80 < 100.
    wait(&mut r2, MASTER);
    wait(&mut r1, BACKUP);
    let sleep = format!("sleep {secs}");
    // The script runs (we see its sleep), then is killed at the timeout: over 3 s (6 probes)
    // there is never more than one sleep (one probe's), and it is gone between probes.
    let before = r1.transitions().len();
    let mut max = 0;
    let mut seen_running = false;
    let mut seen_gone_after = false;
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < end {
        let n = processes(&sleep).len();
        max = max.max(n);
        seen_running |= n > 0;
        seen_gone_after |= seen_running && n == 0;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen_running, "the script's sleep was never seen running");
    assert!(seen_gone_after, "the script's sleep never went away");
    assert!(
        max <= 1,
        "{max} sleeps at once: killed scripts left their children"
    );
    assert_eq!(
        r1.transitions().len(),
        before,
        "r1 moved while its check hung:\n{}",
        tail(&r1.proc.output(), 20)
    );
    let out = r1.proc.output();
    assert!(
        out.contains("check hang: failing:") && out.contains("did not finish within 300ms"),
        "no timeout line:\n{}",
        tail(&out, 20)
    );
    // Everything the agent started was reaped (bounded wait: the last kill may be in flight).
    let pid = r1.proc.child.id();
    wait_until("no zombie child of the agent", T, || {
        zombie_children(pid).is_empty().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}: {:?}", zombie_children(pid)));
    // A clean stop kills a script still running: no sleep is left.
    let code = r1.stop(libc::SIGTERM, T).unwrap();
    assert_eq!(code, Some(0), "{}", tail(&r1.proc.output(), 20));
    wait_until("no sleep of the script left", T, || {
        processes(&sleep).is_empty().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}: {:?}", processes(&sleep)));
}

/// The priorities r1's adverts carried, in order, without repeats.
fn advertised(pcap: &Path) -> Vec<u32> {
    let rows = tshark_fields(pcap, "vrrp", &["vrrp.prio"]).unwrap_or_else(|e| panic!("{e:#}"));
    let mut out: Vec<u32> = Vec::new();
    for r in rows {
        let p: u32 = r[0].parse().unwrap();
        if out.last() != Some(&p) {
            out.push(p);
        }
    }
    out
}

#[test]
fn two_trackers_down_add_up() {
    // Two TCP services, weight -60 each: one down leaves r1 at 140 (still above r2's 100),
    // both down put it at 80 and the VIP moves.
    let lab = Lab::for_test("hc-sum", 2);
    let mut a = tcp_server(&lab, 7001);
    let mut b = tcp_server(&lab, 7002);
    let ip = lab.r(1).ip4;
    let checks = format!(
        "[[check]]\nname = \"a\"\ntcp = \"{ip}:7001\"\ninterval = 0.1\n\
         [[check]]\nname = \"b\"\ntcp = \"{ip}:7002\"\ninterval = 0.1\n"
    );
    let (mut r1, mut r2) = pair(
        &lab,
        &checks,
        r#"{ check = "a", weight = -60 }, { check = "b", weight = -60 }"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let cap = lab
        .capture_sent(1, "ip proto 112", &dir.path().join("r1.pcap"))
        .unwrap();
    cap.wait_frames("vrrp.prio == 200", 3, T).unwrap();
    a.stop(libc::SIGKILL, T).unwrap();
    cap.wait_frames("vrrp.prio == 140", 3, T).unwrap();
    assert_eq!(
        r1.state().as_deref(),
        Some(MASTER),
        "one tracker down moved the VIP"
    );
    b.stop(libc::SIGKILL, T).unwrap();
    moved_to_r2(&lab, &mut r1, &mut r2);
    let pcap = cap.stop().unwrap();
    let prios = advertised(&pcap);
    // 200 with both up, 140 with one down; with both down r1 is BACKUP (it may send one
    // advert at 80 before r2's reaches it).
    assert!(
        prios.starts_with(&[200, 140]) && prios.iter().all(|p| [200, 140, 80].contains(p)),
        "r1 advertised {prios:?}"
    );
}

#[test]
fn weight_zero_tracker_down_is_fault() {
    // r1 tracks the carrier of another interface of its own (trk0, a veth whose peer trk1 is
    // in the same namespace) with weight 0: the peer down takes trk0's carrier, r1 goes FAULT
    // and r2 takes the VIP; the peer up again, r1 takes it back.
    let lab = Lab::for_test("hc-fault", 2);
    let ns = &lab.r(1).ns;
    ns.ip(&[
        "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
    ])
    .unwrap();
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    ns.ip(&["link", "set", "trk1", "up"]).unwrap();
    let (mut r1, mut r2) = pair(&lab, "", r#"{ interface = "trk0", weight = 0 }"#);
    ns.ip(&["link", "set", "trk1", "down"]).unwrap();
    wait(&mut r1, FAULT);
    wait(&mut r2, MASTER);
    wait_vip(&lab, 1, false);
    ns.ip(&["link", "set", "trk1", "up"]).unwrap();
    back_to_r1(&lab, &mut r1, &mut r2);
}

/// A self-signed certificate for r1's address (`openssl req -x509`, P-256, subjectAltName
/// IP:r1) in `dir`: `(cert.pem, key.pem)`.
fn self_signed_cert(lab: &Lab, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ip = lab.r(1).ip4;
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=vrrp-agent test",
            "-addext",
            &format!("subjectAltName=IP:{ip}"),
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl (the CLI) is needed: `cargo xtask setup --test-peers`: {e}")
        });
    assert!(
        out.status.success(),
        "openssl req -x509 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// python3's http.server wrapped in TLS with `cert`/`key`, on r1's address, port 8443.
fn https_server(lab: &Lab, cert: &Path, key: &Path) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "import http.server, ssl\n\
         srv = http.server.ThreadingHTTPServer(('{ip}', 8443), http.server.SimpleHTTPRequestHandler)\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain('{cert}', '{key}')\n\
         srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
         srv.serve_forever()\n",
        ip = lab.r(1).ip4,
        cert = cert.display(),
        key = key.display(),
    );
    let mut cmd = lab.r(1).ns.cmd("python3");
    cmd.args(["-c", &script]).current_dir(dir.path());
    let p = Proc::spawn_in(dir, cmd, "python3 HTTPS server on r1").unwrap();
    wait_listening(lab, 1, SocketAddr::new(IpAddr::V4(lab.r(1).ip4), 8443));
    p
}

fn https_check(lab: &Lab, tls_verify: bool) -> String {
    format!(
        "[[check]]\nname = \"web\"\nhttps = \"https://{}:8443/\"\ninterval = 0.1\n\
         timeout = 0.1\nrise = 2\nfall = 2\nstatus = \"200-299\"\ntls_verify = {tls_verify}\n",
        lab.r(1).ip4
    )
}

#[test]
fn https_check_moves_the_vip_with_a_real_tls_server() {
    let lab = Lab::for_test("hc-https", 2);
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(&lab, certs.path());
    let mut server = https_server(&lab, &cert, &key);
    let (mut r1, mut r2) = pair(
        &lab,
        &https_check(&lab, false),
        r#"{ check = "web", weight = -120 }"#,
    );
    wait_vip(&lab, 1, true);
    server.stop(libc::SIGKILL, T).unwrap();
    moved_to_r2(&lab, &mut r1, &mut r2);
    let _server = https_server(&lab, &cert, &key);
    back_to_r1(&lab, &mut r1, &mut r2);
}

#[test]
fn https_check_with_tls_verify_refuses_a_self_signed_cert() {
    // The same server as above, but the check verifies the certificate: it never comes up
    // (r1 stays at 200 - 120 = 80 < 100), and its failure line names the certificate problem.
    let lab = Lab::for_test("hc-tlsv", 2);
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(&lab, certs.path());
    let _server = https_server(&lab, &cert, &key);
    let mut r1 = lab
        .agent_config(
            1,
            Path::new(BIN),
            &config(
                200,
                &https_check(&lab, true),
                r#"{ check = "web", weight = -120 }"#,
            ),
            NAME,
        )
        .unwrap();
    let mut r2 = lab
        .agent_config(2, Path::new(BIN), &config(100, "", ""), NAME)
        .unwrap();
    wait(&mut r2, MASTER);
    wait(&mut r1, BACKUP);
    let line = r1
        .proc
        .wait_for_line(T, |l| l.contains("check web: failing:"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    // rustls' words; with `openssl req -x509`'s defaults the certificate is a CA used as
    // the server's own, which webpki refuses before it looks for an issuer.
    assert!(
        line.contains("invalid peer certificate"),
        "the failure does not name the certificate: {line}"
    );
    // The check never came up, and r1 never left BACKUP.
    let out = r1.proc.output();
    assert!(
        !out.contains("tracker check web: up")
            && r1.transitions().last().map(String::as_str) == Some(BACKUP),
        "the check came up or r1 moved:\n{}",
        tail(&out, 20)
    );
}
