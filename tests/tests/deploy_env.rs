//! Per-node values from the environment (issue 10): both routers run the SAME file, whose
//! priority is `${VRRP_PRIORITY:-100}`. r1 (10.210.0.1) gets `VRRP_PRIORITY=200` from its
//! environment, r2 (10.210.0.2) has it unset and takes the default 100. With equal priorities
//! the higher address (r2) would win (RFC 9568 6.4.3), so r1 being MASTER — and the VIP on r1
//! only — shows that the priority came from r1's environment. Namespaces and processes are
//! removed on drop, also when an assertion fails; waits are bounded.
use std::{net::Ipv4Addr, path::Path, time::Duration};

use vrrp_integration_tests::{
    lab::{tail, Lab, BACKUP, MASTER, PREFIX4, VIP4},
    wait_until,
};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const T: Duration = Duration::from_secs(15);

const CONFIG: &str = r#"
[[instance]]
name = "web"
interface = "${VRRP_IFACE:-eth0}"
vrid = 51
priority = ${VRRP_PRIORITY:-100}
advert_int = 0.1
vips = ["${VRRP_VIP}"]
"#;

fn has_vip(lab: &Lab, n: usize, vip: Ipv4Addr) -> bool {
    let out = lab
        .r(n)
        .ns
        .ip(&["-4", "addr", "show", "dev", "eth0"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {vip}/"))
}

#[test]
fn priority_from_the_environment_decides_the_master() {
    let lab = Lab::for_test("denv", 2);
    let vip = format!("{VIP4}/{PREFIX4}");
    let mut r1 = lab
        .agent_config_env(
            1,
            Path::new(BIN),
            CONFIG,
            "web",
            &[
                ("VRRP_PRIORITY", Some("200")),
                ("VRRP_VIP", Some(&vip)),
                ("VRRP_IFACE", None),
            ],
        )
        .unwrap_or_else(|e| panic!("r1: {e:#}"));
    let mut r2 = lab
        .agent_config_env(
            2,
            Path::new(BIN),
            CONFIG,
            "web",
            &[
                ("VRRP_PRIORITY", None),
                ("VRRP_VIP", Some(&vip)),
                ("VRRP_IFACE", None),
            ],
        )
        .unwrap_or_else(|e| panic!("r2: {e:#}"));
    r1.wait_state(MASTER, T)
        .unwrap_or_else(|e| panic!("r1 (priority 200 from its environment): {e:#}"));
    r2.wait_state(BACKUP, T)
        .unwrap_or_else(|e| panic!("r2 (default priority 100): {e:#}"));
    wait_until("VIP on r1 only", T, || {
        (has_vip(&lab, 1, VIP4) && !has_vip(&lab, 2, VIP4)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    // Settled: r2 never became master after r1 took over.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        r1.state().as_deref(),
        Some(MASTER),
        "{}",
        tail(&r1.proc.output(), 20)
    );
    assert_eq!(
        r2.state().as_deref(),
        Some(BACKUP),
        "{}",
        tail(&r2.proc.output(), 20)
    );
}

#[test]
fn an_unset_variable_stops_the_agent_with_one_clear_line() {
    let lab = Lab::for_test("denv-unset", 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vrrp-agent.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let out = lab
        .r(1)
        .ns
        .cmd(BIN)
        .arg("run")
        .arg("--config")
        .arg(&file)
        .env_remove("VRRP_VIP")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without VRRP_VIP: {err}");
    assert!(
        err.contains(
            ":8: ${VRRP_VIP} is not set (export it or give a default: ${VRRP_VIP:-value})"
        ),
        "{err}"
    );
    assert!(!has_vip(&lab, 1, VIP4));
}
