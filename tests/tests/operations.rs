//! Operations (issue 10): `vrrp-agent status` on the control socket and Prometheus `/metrics`,
//! on r1 (priority 200, master) and r2 (100, backup) of a namespace LAN, before and after a
//! failover. Each router's agent has its own control socket (its namespace's
//! [`Netns::control_socket`], passed as `--control-socket`) and serves metrics on its own
//! address.
use std::time::Duration;

use serde_json::Value;
use vrrp_integration_tests::{
    lab::{Lab, LabAgent, Vr, BACKUP, MASTER, PREFIX4, VIP4},
    wait_until, Netns, Proc,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const VRID: u8 = 61;
const PORT: u16 = 9650;
const T: Duration = Duration::from_secs(10);

/// `vrrp-agent status ARGS` in `ns` (its own control socket).
fn status(ns: &Netns, args: &[&str]) -> std::process::Output {
    ns.cmd(BIN)
        .arg("status")
        .args(args)
        .arg("--control-socket")
        .arg(ns.control_socket())
        .output()
        .expect("running vrrp-agent status")
}

/// The first instance of `status --json` in `ns`.
fn status_json(ns: &Netns) -> Value {
    let out = status(ns, &["--json"]);
    assert!(
        out.status.success(),
        "status --json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json prints JSON");
    let list = v["instances"].as_array().expect("instances");
    assert_eq!(list.len(), 1, "{v}");
    list[0].clone()
}

/// `GET /metrics` of the agent of router `n` (curl inside its namespace).
fn scrape(lab: &Lab, n: usize) -> String {
    let node = lab.r(n);
    let out = node
        .ns
        .cmd("curl")
        .args(["-sS", "--fail", "--max-time", "5"])
        .arg(format!("http://{}:{PORT}/metrics", node.ip4))
        .output()
        .expect("curl (installed by cargo xtask setup --test-peers)");
    assert!(
        out.status.success(),
        "scraping r{n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 metrics")
}

/// The value of the series `name{labels}` (labels exactly as rendered).
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    let head = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&head))
        .unwrap_or_else(|| panic!("no {head} in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

fn inst_labels() -> String {
    format!(r#"instance="vrid{VRID}",interface="eth0",vrid="{VRID}",family="IPv4""#)
}

fn start(lab: &Lab, n: usize, prio: u8) -> Vr {
    let node = lab.r(n);
    let sock = node.ns.control_socket().display().to_string();
    let addr = format!("{}:{PORT}", node.ip4);
    let extra = [
        "--control-socket",
        sock.as_str(),
        "--metrics-addr",
        addr.as_str(),
    ];
    LabAgent {
        extra: &extra,
        ..LabAgent::new(BIN, VRID, "0.1")
    }
    .start(lab, n, prio, false)
}

#[test]
fn status_and_metrics_follow_a_failover() {
    let lab = Lab::for_test("ops", 2);
    // No agent yet: one clear line.
    let out = status(&lab.r(1).ns, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is vrrp-agent running? no socket at") && err.lines().count() == 1,
        "{err}"
    );

    let mut r1 = start(&lab, 1, 200);
    let mut r2 = start(&lab, 2, 100);
    r1.wait_state(MASTER, T).unwrap();
    r2.wait_state(BACKUP, T).unwrap();
    // A few adverts in flight.
    std::thread::sleep(Duration::from_millis(500));

    let m = status_json(&lab.r(1).ns);
    let b = status_json(&lab.r(2).ns);
    assert_eq!(m["state"], "MASTER", "{m}");
    assert_eq!(b["state"], "BACKUP", "{b}");
    assert_eq!(m["vrid"], VRID);
    assert_eq!(m["base_priority"], 200);
    assert_eq!(m["effective_priority"], 200);
    assert_eq!(m["master_address"], Value::Null, "{m}");
    assert_eq!(b["master_address"], lab.r(1).ip4.to_string(), "{b}");
    assert_eq!(b["master_priority"], 200, "{b}");
    assert!(m["adverts_sent"].as_u64().unwrap() >= 3, "{m}");
    assert!(b["adverts_received"].as_u64().unwrap() >= 3, "{b}");
    assert_eq!(b["adverts_sent"], 0, "{b}");
    assert_eq!(m["last_transition"]["to"], "MASTER", "{m}");
    assert_eq!(b["last_transition"]["reason"], "startup", "{b}");
    let peers = b["peers"].as_array().unwrap();
    assert!(
        peers
            .iter()
            .any(|p| p["address"] == lab.r(1).ip4.to_string() && p["priority"] == 200),
        "{b}"
    );
    assert!(m["garp_sent"].as_u64().unwrap() >= 1, "{m}");

    // The table: a header and one line.
    let out = status(&lab.r(2).ns, &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    println!("status on r2:\n{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[1].contains("BACKUP") && lines[1].contains(&lab.r(1).ip4.to_string()));

    // A second agent on the same control socket is refused with one line.
    let out = lab
        .r(1)
        .ns
        .cmd(BIN)
        .args([
            "run",
            "--iface",
            "eth0",
            "--vrid",
            "62",
            "--vip",
            "10.210.0.62/24",
        ])
        .arg("--control-socket")
        .arg(lab.r(1).ns.control_socket())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("is served by a running vrrp-agent"), "{err}");

    let l = inst_labels();
    let before2 = scrape(&lab, 2);
    assert_eq!(metric(&scrape(&lab, 1), "vrrp_instance_state", &l), 2.0);
    assert_eq!(metric(&before2, "vrrp_instance_state", &l), 1.0);
    assert_eq!(
        metric(&before2, "vrrp_instance_became_master_total", &l),
        0.0
    );
    assert!(metric(&before2, "vrrp_instance_adverts_received_total", &l) >= 3.0);
    assert!(
        metric(
            &before2,
            "vrrp_xdp_packets_total",
            r#"interface="eth0",outcome="vrrp_to_user""#
        ) >= 3.0,
        "{before2}"
    );

    // Failover: r1 stops (priority 0), r2 takes over.
    r1.stop(libc::SIGTERM, T).unwrap();
    r2.wait_state(MASTER, T).unwrap();
    let after2 = scrape(&lab, 2);
    println!("/metrics on r2 after the failover:\n{after2}");
    assert_eq!(metric(&after2, "vrrp_instance_state", &l), 2.0);
    assert_eq!(
        metric(&after2, "vrrp_instance_became_master_total", &l),
        1.0
    );
    assert_eq!(
        metric(&after2, "vrrp_instance_released_master_total", &l),
        0.0
    );
    assert!(
        metric(&after2, "vrrp_instance_adverts_sent_total", &l) >= 1.0,
        "{after2}"
    );
    let s = status_json(&lab.r(2).ns);
    assert_eq!(s["state"], "MASTER");
    assert_eq!(s["last_transition"]["from"], "BACKUP");
    assert_eq!(s["last_transition"]["reason"], "priority_zero", "{s}");
    assert_eq!(s["transitions"], 2);
    // The stopped agent removed its socket.
    assert!(!lab.r(1).ns.control_socket().exists());
}

/// Waits (bounded) until `vrrp_check_results_total{check="svc",result=RESULT}` reaches `at_least`; returns the other
/// result's count at that scrape.
fn wait_results(lab: &Lab, result: &str, at_least: f64) -> f64 {
    let other = if result == "success" {
        "failure"
    } else {
        "success"
    };
    wait_until(
        &format!("vrrp_check_results_total{{result=\"{result}\"}} >= {at_least}"),
        T,
        || {
            let text = scrape(lab, 1);
            let l = |r: &str| {
                metric(
                    &text,
                    "vrrp_check_results_total",
                    &format!(r#"check="svc",result="{r}""#),
                )
            };
            (l(result) >= at_least).then(|| l(other))
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A python3 TCP listener on r1's address, `port` (accepts and closes); returns once it
/// accepts.
fn tcp_listener(lab: &Lab, port: u16) -> Proc {
    let ip = lab.r(1).ip4;
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{ip}', {port}))\n\
         s.listen(128)\n\
         print('listening', flush=True)\n\
         while True:\n    c, _ = s.accept()\n    c.close()\n"
    );
    let mut cmd = lab.r(1).ns.cmd("python3");
    cmd.args(["-c", &script]);
    let mut p = Proc::spawn(cmd, "python3 TCP listener on r1").expect("python3");
    p.wait_for_line(T, |l| l.contains("listening"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    p
}

/// `vrrp_check_results_total` counts each probe of a TCP check by its result: failures while
/// nothing listens, successes once a listener is up, failures again (and no more successes)
/// once it is gone.
#[test]
fn check_results_count_successes_and_failures() {
    let lab = Lab::for_test("opsck", 1);
    let ip = lab.r(1).ip4;
    let toml = format!(
        "[global]\nmetrics_addr = \"{ip}:{PORT}\"\n\n\
         [[check]]\nname = \"svc\"\ntcp = \"{ip}:7201\"\ninterval = 0.1\n\n\
         [[instance]]\nname = \"vr\"\ninterface = \"eth0\"\nvrid = {VRID}\npriority = 200\n\
         advert_int = 0.1\nvips = [\"{VIP4}/{PREFIX4}\"]\n\
         track = [{{ check = \"svc\", weight = -50 }}]\n"
    );
    let sock = lab.r(1).ns.control_socket().display().to_string();
    let mut r1 = lab
        .agent_config_env(
            1,
            std::path::Path::new(BIN),
            &toml,
            "vr",
            &[("VRRP_AGENT_CONTROL_SOCKET", Some(&sock))],
        )
        .unwrap_or_else(|e| panic!("r1: {e:#}"));
    r1.wait_state(MASTER, T).unwrap();

    // Nothing listens: failures only.
    assert_eq!(
        wait_results(&lab, "failure", 3.0),
        0.0,
        "a success without a listener"
    );

    // A listener: successes.
    let mut listener = tcp_listener(&lab, 7201);
    let failures = wait_results(&lab, "success", 3.0);

    // Gone again: failures move on, successes stop.
    listener.stop(libc::SIGKILL, T).unwrap();
    let successes = wait_results(&lab, "failure", failures + 3.0);
    let s_then = wait_results(&lab, "failure", failures + 6.0);
    assert_eq!(s_then, successes, "a success after the listener stopped");
    println!(
        "{}",
        scrape(&lab, 1)
            .lines()
            .filter(|l| l.starts_with("vrrp_check_results"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
