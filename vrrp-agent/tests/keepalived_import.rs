//! The keepalived.conf front-end: every fixture (configs in the shapes users write) imports,
//! its TOML is accepted by the TOML front-end and by `check-config`, keepalived itself accepts
//! the fixture (`keepalived -t`), unsupported keywords are reported at their `file:line`, and
//! syntax errors name `file:line`.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use vrrp_agent::{
    cli::{parse_from, Cmd, RunMode},
    config::{self, AgentConfig},
    keepalived_conf::{self, Imported},
    wire::Auth,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived")
}

/// The top-level fixtures (conf.d/ holds what include-main.conf includes).
fn fixture_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    assert!(v.len() >= 8, "fixtures missing: {v:?}");
    v
}

fn import(name: &str) -> Imported {
    let p = fixtures().join(name);
    keepalived_conf::import(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn build(name: &str) -> (AgentConfig, Imported) {
    let imp = import(name);
    let cfg = imp.build().unwrap_or_else(|e| panic!("{name}: {e}"));
    (cfg, imp)
}

/// The 1-based line of the first line of `file` containing `needle`.
fn line_of(file: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(file).expect("read fixture");
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()))
        + 1
}

fn warnings(imp: &Imported) -> Vec<String> {
    imp.warnings.iter().map(|w| w.to_string()).collect()
}

/// A configuration written to a temporary directory.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn import_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "k.conf", text);
    match keepalived_conf::import(&p) {
        Err(e) => e
            .to_string()
            .replace(&dir.path().display().to_string(), "DIR"),
        Ok(imp) => match imp.build() {
            Err(e) => e.replace(&dir.path().display().to_string(), "DIR"),
            Ok(c) => panic!("accepted: {c:?}"),
        },
    }
}

const MINIMAL: &str = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    \
                       priority 100\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n";

#[test]
fn every_fixture_imports_and_its_toml_is_the_same_configuration() {
    for f in fixture_files() {
        let imp = keepalived_conf::import(&f).unwrap_or_else(|e| panic!("{e}"));
        let cfg = imp
            .build()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!cfg.instances.is_empty(), "{}", f.display());
        let text = imp.to_toml();
        let again = config::parse_str(&text, Path::new("imported.toml")).unwrap_or_else(|e| {
            panic!("{}: the printed TOML is refused: {e}\n{text}", f.display())
        });
        assert_eq!(again, cfg, "{}", f.display());
        // Every warning is one line naming a file and a line.
        for w in warnings(&imp) {
            assert!(!w.contains('\n'), "{w}");
            let loc = w.split(": ").next().unwrap();
            let (file, line) = loc.rsplit_once(':').unwrap_or_else(|| panic!("{w}"));
            assert!(Path::new(file).exists(), "{w}");
            assert!(line.parse::<usize>().unwrap() > 0, "{w}");
        }
    }
}

#[test]
fn import_command_prints_toml_that_check_config_accepts() {
    let bin = env!("CARGO_BIN_EXE_vrrp-agent");
    let dir = tempfile::tempdir().unwrap();
    for f in fixture_files() {
        let out = Command::new(bin)
            .arg("import-keepalived")
            .arg(&f)
            .output()
            .expect("run vrrp-agent");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", f.display());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout,
            import(f.file_name().unwrap().to_str().unwrap()).to_toml()
        );
        for l in stderr.lines() {
            assert!(l.starts_with("warning: "), "{}: {l}", f.display());
        }
        let toml = dir.path().join("imported.toml");
        std::fs::write(&toml, &stdout).unwrap();
        let check = Command::new(bin)
            .arg("check-config")
            .arg(&toml)
            .output()
            .expect("run vrrp-agent");
        assert!(
            check.status.success(),
            "{}: check-config refused the import: {}\n{stdout}",
            f.display(),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn import_command_error_is_one_line_with_file_and_line_and_no_toml() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "k.conf",
        &MINIMAL.replace("priority 100", "priority 300"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
        .arg("import-keepalived")
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}:4: vrrp_instance VI_1: priority: 300 is out of range 1-255",
            p.display()
        )
    );
}

/// keepalived itself accepts every fixture: they are real keepalived configurations. Run in a
/// private mount and network namespace (`unshare`): the interfaces they name exist there
/// (veth pairs), and the scripts they run exist in a tmpfs over /etc/keepalived; both vanish
/// with the namespace.
#[test]
fn keepalived_accepts_every_fixture() {
    let found = Command::new("keepalived").arg("--version").output();
    assert!(
        found.is_ok(),
        "keepalived is not installed: run `cargo xtask setup --test-peers`"
    );
    assert!(
        Path::new("/etc/keepalived").is_dir(),
        "/etc/keepalived is missing (the keepalived package makes it)"
    );
    let setup = "set -e; mount -t tmpfs -o mode=755 none /etc/keepalived; \
        for s in check_apiserver check_nginx check_haproxy notify; do \
          printf '#!/bin/sh\\nexit 0\\n' > /etc/keepalived/$s.sh; chmod 755 /etc/keepalived/$s.sh; \
        done; echo 0 > /etc/keepalived/priority; \
        ip link add eth0 type veth peer name eth0p; ip link add eth1 type veth peer name eth1p; \
        set +e; timeout 30 keepalived -t -f \"$1\" 2>&1; echo \"rc=$?\"";
    for f in fixture_files() {
        let out = Command::new("unshare")
            .args(["--mount", "--net", "sh", "-c", setup, "sh"])
            .arg(&f)
            .output()
            .expect("run unshare (util-linux)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.trim_end().ends_with("rc=0") && text.lines().count() == 1,
            "keepalived -t {}: {}{}",
            f.display(),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn unsupported_keywords_are_reported_at_their_line() {
    let f = fixtures().join("nginx-notify.conf");
    let w = warnings(&import("nginx-notify.conf"));
    let at = |needle: &str, msg: &str| {
        let want = format!("{}:{}: {msg}", f.display(), line_of(&f, needle));
        assert!(w.contains(&want), "missing {want:?} in {w:#?}");
    };
    at("smtp_alert", "smtp_alert: not supported (ignored)");
    at(
        "notification_email {",
        "notification_email: mail is not supported (ignored); use notify scripts",
    );
    at(
        "smtp_server",
        "smtp_server: mail is not supported (ignored); use notify scripts",
    );
    at(
        "label eth0:vip",
        "172.16.10.10/24 label: not supported (ignored)",
    );

    // The LVS side: one warning per virtual_server block, nothing about what is inside.
    let f = fixtures().join("lvs.conf");
    let w = warnings(&import("lvs.conf"));
    let lvs: Vec<&String> = w.iter().filter(|l| l.contains("LVS")).collect();
    assert_eq!(lvs.len(), 1, "{w:#?}");
    assert!(lvs[0].starts_with(&format!(
        "{}:{}: virtual_server: ",
        f.display(),
        line_of(&f, "virtual_server 192.168.80.10 80")
    )));
    assert!(
        !w.iter()
            .any(|l| l.contains("real_server") || l.contains("lb_algo")),
        "{w:#?}"
    );

    let f = fixtures().join("sync-group.conf");
    let w = warnings(&import("sync-group.conf"));
    let want = format!(
        "{}:{}: virtual_ipaddress_excluded: not supported (ignored)",
        f.display(),
        line_of(&f, "virtual_ipaddress_excluded")
    );
    assert!(w.iter().any(|l| l.starts_with(&want)), "{want} in {w:#?}");

    let f = fixtures().join("unicast.conf");
    let w = warnings(&import("unicast.conf"));
    let want = format!(
        "{}:{}: quorum: not supported (ignored)",
        f.display(),
        line_of(&f, "quorum")
    );
    assert!(w.contains(&want), "{want} in {w:#?}");
}

#[test]
fn state_is_a_hint_and_warned() {
    let f = fixtures().join("pair-master.conf");
    let w = warnings(&import("pair-master.conf"));
    let want = format!(
        "{}:{}: state MASTER: a start hint only, not used: the election decides (priority 150)",
        f.display(),
        line_of(&f, "state MASTER")
    );
    assert!(w.contains(&want), "{w:#?}");
}

#[test]
fn master_backup_pair_with_pass_auth() {
    let (m, _) = build("pair-master.conf");
    let (b, _) = build("pair-backup.conf");
    let (m, b) = (&m.instances[0], &b.instances[0]);
    assert_eq!(
        (m.name.as_str(), m.interface.as_str(), m.vrid),
        ("VI_1", "eth0", 51)
    );
    assert_eq!((m.priority, b.priority), (150, 100));
    // keepalived's default version is 2, and PASS authentication is a v2 thing.
    assert_eq!(m.version, vrrp_agent::fsm::Version::V2);
    assert_eq!(m.auth, Auth::Simple(*b"s3cret\0\0"));
    assert_eq!(m.auth, b.auth);
    assert_eq!(m.advert_int_cs, 100);
    assert_eq!(m.vips[0].to_string(), "192.168.50.100/24");
    assert_eq!(m.vips, b.vips);
}

#[test]
fn unicast_peers_version_3_and_preempt_delay() {
    let (c, _) = build("unicast.conf");
    let i = &c.instances[0];
    assert_eq!(i.version, vrrp_agent::fsm::Version::V3);
    assert_eq!(i.advert_int_cs, 10);
    assert_eq!(i.unicast_src_ip, Some("10.0.1.11".parse().unwrap()));
    assert_eq!(
        i.unicast_peers,
        vec![
            "10.0.1.12".parse::<std::net::IpAddr>().unwrap(),
            "10.0.1.13".parse().unwrap()
        ]
    );
    assert_eq!(i.preempt_delay, std::time::Duration::from_secs(10));
    assert!(i.accept_mode);
}

#[test]
fn include_follows_globs_relative_to_the_including_file() {
    let (c, imp) = build("include-main.conf");
    assert_eq!(c.instances.len(), 1);
    assert_eq!(c.instances[0].name, "LB");
    // Warnings name the included file.
    let inc = fixtures().join("conf.d/20-instance.conf");
    assert!(
        warnings(&imp)
            .iter()
            .any(|w| w.starts_with(&format!("{}:2: state BACKUP", inc.display()))),
        "{:#?}",
        warnings(&imp)
    );
}

#[test]
fn mapping_decisions() {
    // state MASTER without priority: the address owner, as in keepalived.
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "k.conf",
        &MINIMAL.replace("priority 100", "state MASTER"),
    );
    let c = keepalived_conf::load(&p).unwrap().0;
    assert_eq!(c.instances[0].priority, 255);
    // nopreempt (with state BACKUP), vrrp_strict, a long password cut to 8 bytes, advert_int
    // rounded for v2, garp defaults from global_defs, mcast_src_ip.
    let p = write(
        dir.path(),
        "k2.conf",
        "global_defs {\n vrrp_strict\n vrrp_garp_master_delay 2\n}\n\
         vrrp_instance A {\n state BACKUP\n nopreempt\n interface eth0\n virtual_router_id 9\n \
         advert_int 1.6\n mcast_src_ip 10.0.0.2\n authentication {\n  auth_type PASS\n  \
         auth_pass 123456789\n }\n virtual_ipaddress {\n  10.0.0.100/24 dev eth0 scope global\n }\n}\n",
    );
    let (c, w) = keepalived_conf::load(&p).unwrap();
    let i = &c.instances[0];
    assert!(!i.preempt);
    assert!(!i.accept_mode);
    assert_eq!(i.auth, Auth::Simple(*b"12345678"));
    assert_eq!(i.advert_int_cs, 200);
    assert_eq!(i.garp.master_delay, std::time::Duration::from_secs(2));
    assert_eq!(i.unicast_src_ip, Some("10.0.0.2".parse().unwrap()));
    let w: Vec<String> = w.iter().map(|d| d.to_string()).collect();
    assert!(
        w.iter()
            .any(|l| l.contains(":14: auth_pass: longer than 8 bytes")),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|l| l.contains(":10: advert_int 1.6: VRRPv2")),
        "{w:#?}"
    );

    // nopreempt with state MASTER: keepalived clears it, so does the import.
    let p = write(
        dir.path(),
        "k3.conf",
        &MINIMAL.replace("priority 100", "priority 100\n state MASTER\n nopreempt"),
    );
    let (c, w) = keepalived_conf::load(&p).unwrap();
    assert!(c.instances[0].preempt);
    assert!(w
        .iter()
        .any(|d| d.msg.starts_with("nopreempt: keepalived ignores it")));

    // IPv6 VIPs: version 3.
    let p = write(
        dir.path(),
        "k4.conf",
        &MINIMAL.replace("10.0.0.100/24", "fe80::100/64"),
    );
    let c = keepalived_conf::load(&p).unwrap().0;
    assert_eq!(c.instances[0].version, vrrp_agent::fsm::Version::V3);
}

#[test]
fn errors_name_the_keepalived_line() {
    assert_eq!(
        import_err(&MINIMAL.replace("priority 100", "priority 300")),
        "DIR/k.conf:4: vrrp_instance VI_1: priority: 300 is out of range 1-255"
    );
    assert_eq!(
        import_err(&MINIMAL.replace("10.0.0.100/24", "10.0.0.100/24 dev eth1")),
        "DIR/k.conf:6: virtual_ipaddress 10.0.0.100/24 dev eth1: VIPs live on the instance's \
         interface (eth0); run a vrrp_instance on eth1 for it, or drop `dev`"
    );
    assert_eq!(
        import_err(&MINIMAL.replace("virtual_router_id 51", "virtual_router_id x")),
        "DIR/k.conf:3: virtual_router_id: \"x\" is not an integer"
    );
    assert!(import_err(&MINIMAL.replace(
        "priority 100",
        "priority 100\n authentication {\n auth_type AH\n }"
    ))
    .starts_with("DIR/k.conf:6: auth_type AH is not supported"));
    assert!(import_err(
        &MINIMAL.replace("priority 100", "priority 100\n track_script {\n nope\n }")
    )
    .starts_with("DIR/k.conf:6: track_script nope: no vrrp_script nope"));
}

#[test]
fn syntax_errors_name_file_and_line() {
    assert_eq!(
        import_err("global_defs {\n router_id a\n\nvrrp_instance X {\n}\n"),
        "DIR/k.conf:1: this `{` is never closed (a `}` is missing)"
    );
    assert_eq!(
        import_err("global_defs {\n}\n}\n"),
        "DIR/k.conf:3: `}` without a matching `{`"
    );
    assert!(import_err("vrrp_script a {\n script \"/bin/x\n}\n")
        .starts_with("DIR/k.conf:2: unterminated quoted string"));
    // An error in an included file names that file.
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "main.conf", "# main\ninclude sub/*.conf\n");
    write(
        dir.path(),
        "sub/a.conf",
        "vrrp_instance A {\n  interface eth0\n  }\n }\n",
    );
    let e = keepalived_conf::import(&main).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}/sub/a.conf:4: `}}` without a matching `{{`",
            dir.path().display()
        )
    );
    // Cycles are refused, at the include that closes them.
    let a = write(dir.path(), "cyc/a.conf", "include b.conf\n");
    write(dir.path(), "cyc/b.conf", "\ninclude a.conf\n");
    let e = keepalived_conf::import(&a).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}/cyc/b.conf:2: include ", dir.path().display()))
            && e.contains("includes itself"),
        "{e}"
    );
    // An include that matches nothing is a warning.
    let p = write(
        dir.path(),
        "none.conf",
        &format!("include nothing/*.conf\n{MINIMAL}"),
    );
    let imp = keepalived_conf::import(&p).unwrap();
    assert!(warnings(&imp)
        .iter()
        .any(|w| w.ends_with(":1: include nothing/*.conf: no file matches (nothing included)")));
}

#[test]
fn run_takes_a_keepalived_conf() {
    let f = fixtures().join("pair-backup.conf");
    let cli = parse_from([
        "vrrp-agent",
        "run",
        "--keepalived-conf",
        f.to_str().unwrap(),
    ])
    .unwrap();
    let Cmd::Run(args) = cli.cmd else {
        panic!("not run")
    };
    match args.resolve().unwrap() {
        RunMode::Election(c) => assert_eq!(c, build("pair-backup.conf").0),
        other => panic!("{other:?}"),
    }
    // Not with --config or instance flags.
    for extra in [["--config", "x.toml"], ["--priority", "5"]] {
        let mut v = vec!["vrrp-agent", "run", "--keepalived-conf", "k.conf"];
        v.extend(extra);
        assert!(parse_from(v).is_err());
    }
}

#[test]
fn kubeadm_check_script_with_weight() {
    use vrrp_agent::config::{CheckKind, TrackSpec, TrackTarget};
    let (c, _) = build("kubeadm-apiserver.conf");
    assert_eq!(c.checks.len(), 1);
    let k = &c.checks[0];
    assert_eq!(k.name, "check_apiserver");
    assert_eq!(
        k.kind,
        CheckKind::Script {
            command: "/etc/keepalived/check_apiserver.sh".into(),
            user: Some("root".into()),
        }
    );
    assert_eq!((k.interval.as_secs(), k.fall, k.rise), (3, 10, 2));
    assert_eq!(
        c.instances[0].track,
        vec![TrackSpec {
            target: TrackTarget::Check("check_apiserver".into()),
            weight: -2
        }]
    );
}

#[test]
fn nginx_check_override_weight_and_notify_scripts() {
    use vrrp_agent::config::{TrackSpec, TrackTarget};
    let (c, _) = build("nginx-notify.conf");
    let i = &c.instances[0];
    assert!(!i.preempt);
    // The instance's weight overrides the script's.
    assert_eq!(
        i.track,
        vec![TrackSpec {
            target: TrackTarget::Check("chk_nginx".into()),
            weight: -30
        }]
    );
    assert_eq!(c.checks[0].timeout, std::time::Duration::from_secs(1));
    assert_eq!(
        i.notify.master.as_deref(),
        Some("/etc/keepalived/notify.sh master")
    );
    assert_eq!(
        i.notify.backup.as_deref(),
        Some("/etc/keepalived/notify.sh backup")
    );
    assert_eq!(
        i.notify.fault.as_deref(),
        Some("/etc/keepalived/notify.sh fault")
    );
    assert_eq!(
        i.notify.notify.as_deref(),
        Some("/etc/keepalived/notify.sh")
    );
    assert_eq!(i.garp.master_delay, std::time::Duration::from_secs(2));
}

#[test]
fn sync_group_and_tracked_interfaces() {
    use vrrp_agent::config::{TrackSpec, TrackTarget};
    let (c, _) = build("sync-group.conf");
    assert_eq!(c.sync_groups.len(), 1);
    let g = &c.sync_groups[0];
    assert_eq!(g.name, "FW");
    assert_eq!(g.instances, ["OUTSIDE", "INSIDE"]);
    assert_eq!(
        g.notify.master.as_deref(),
        Some("/etc/keepalived/notify.sh")
    );
    assert_eq!(g.notify.fault.as_deref(), Some("/etc/keepalived/notify.sh"));
    assert_eq!(
        c.instances[0].track,
        vec![TrackSpec {
            target: TrackTarget::Interface("eth1".into()),
            weight: 0
        }]
    );
    assert_eq!(c.instances[0].advert_int_cs, 50);
    // A weight in a sync group member is dropped (keepalived ignores it there), with a warning.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(fixtures().join("sync-group.conf"))
        .unwrap()
        .replace("        eth1\n", "        eth1 weight -50\n");
    let p = write(dir.path(), "k.conf", &src);
    let (c, w) = keepalived_conf::load(&p).unwrap();
    assert_eq!(c.instances[0].track[0].weight, 0);
    assert!(
        w.iter()
            .any(|d| d.msg.starts_with("weight -50: keepalived ignores")),
        "{w:?}"
    );
}

#[test]
fn track_file_and_process() {
    use vrrp_agent::config::{TrackSpec, TrackTarget};
    let (c, _) = build("unicast.conf");
    assert_eq!(
        c.instances[0].track,
        vec![
            TrackSpec {
                target: TrackTarget::File("/etc/keepalived/priority".into()),
                weight: 1
            },
            TrackSpec {
                target: TrackTarget::Process("haproxy".into()),
                weight: 0
            },
        ]
    );
}

#[test]
fn a_model_error_in_a_check_names_the_keepalived_line() {
    let src = format!(
        "vrrp_script chk {{\n  script \"/bin/true\"\n  interval 2\n  rise 0\n}}\n{}",
        MINIMAL.replace("priority 100", "priority 100\n track_script {\n  chk\n }")
    );
    let e = import_err(&src);
    assert!(
        e.starts_with("DIR/k.conf:4: vrrp_script chk: rise: "),
        "{e}"
    );
}

/// Found by `cargo xtask bench fuzz --target keepalived`: a block name or router_id holding a
/// control character (here DEL and NUL) went raw into the TOML comments, which TOML refuses,
/// so the imported TOML did not parse.
#[test]
fn control_characters_in_names_still_give_toml_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let text = "global_defs {\n    router_id edge\u{7f}1\n}\n".to_string()
        + &MINIMAL.replace("VI_1", "VI\u{7f}_1\u{0}");
    let p = write(dir.path(), "k.conf", &text);
    let imp = keepalived_conf::import(&p).expect("imports");
    let toml_text = imp.to_toml();
    if let Err(e) = toml_text.parse::<toml::Table>() {
        panic!("imported TOML does not parse: {e}\n{toml_text}");
    }
    assert!(
        toml_text.contains("# vrrp_instance VI\\u{7f}_1\\u{0}"),
        "the comment names the block with the control characters escaped:\n{toml_text}"
    );
}
