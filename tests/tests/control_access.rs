//! Who may use the control socket (issue 10): only root or the members of `[global]
//! control_group`. The agent runs on r1 of a namespace LAN from a file with `control_group` set
//! to a group number no account has (so the test needs no system group); `vrrp-agent status` is
//! then run as `nobody` (uid/gid 65534) through `setpriv`, once without supplementary groups and
//! once with that group as one. Both runs use the agent's own socket, whose path is readable by
//! everyone (`/tmp/vrrp-agent-tests/`), so only the socket's owner, group and mode decide.
use std::{os::unix::fs::MetadataExt as _, path::Path, time::Duration};

use vrrp_integration_tests::lab::{Lab, MASTER, PREFIX4, VIP4};

const BIN: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
const T: Duration = Duration::from_secs(10);
/// A group number for `control_group` that no account on a test machine has.
const GID: u32 = 64_321;
const NOBODY: &str = "65534";

/// `vrrp-agent status --json` on `sock` as uid/gid 65534 with the supplementary groups `groups`
/// (none: cleared), inside `lab`'s r1.
fn status_as_nobody(lab: &Lab, sock: &Path, groups: Option<u32>) -> std::process::Output {
    let mut c = lab.r(1).ns.cmd("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY]);
    match groups {
        Some(g) => c.arg(format!("--groups={g}")),
        None => c.arg("--clear-groups"),
    };
    c.arg(BIN)
        .args(["status", "--json", "--control-socket"])
        .arg(sock)
        .output()
        .expect("setpriv (util-linux, installed by cargo xtask setup)")
}

#[test]
fn control_socket_admits_root_and_the_control_group_only() {
    let lab = Lab::for_test("ctl", 1);
    let sock = lab.r(1).ns.control_socket();
    let toml = format!(
        "[global]\ncontrol_group = \"{GID}\"\n\n\
         [[instance]]\nname = \"vr\"\ninterface = \"eth0\"\nvrid = 71\npriority = 200\n\
         advert_int = 0.1\nvips = [\"{VIP4}/{PREFIX4}\"]\n"
    );
    let sock_s = sock.display().to_string();
    let mut r1 = lab
        .agent_config_env(
            1,
            Path::new(BIN),
            &toml,
            "vr",
            &[("VRRP_AGENT_CONTROL_SOCKET", Some(&sock_s))],
        )
        .unwrap_or_else(|e| panic!("r1: {e:#}"));
    r1.wait_state(MASTER, T).unwrap();

    // The socket: root's, the control group's, 0660.
    let md = std::fs::metadata(&sock).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o777),
        (0, GID, 0o660),
        "owner, group and mode of {}",
        sock.display()
    );

    // Root connects.
    let out = lab
        .r(1)
        .ns
        .cmd(BIN)
        .args(["status", "--json", "--control-socket"])
        .arg(&sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "root: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Neither root nor in the group: one clear line, a non-zero exit, nothing on stdout.
    let out = status_as_nobody(&lab, &sock, None);
    let err = String::from_utf8_lossy(&out.stderr);
    println!("nobody, no groups: {err}");
    assert!(!out.status.success(), "a non-member connected: {err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("permission denied on {}", sock.display()))
            && err.contains("run as root or as a member of [global] control_group"),
        "{err}"
    );

    // A member of the control group (not root) gets the status.
    let out = status_as_nobody(&lab, &sock, Some(GID));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a member was refused: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["instances"][0]["state"], "MASTER", "{v}");
}
