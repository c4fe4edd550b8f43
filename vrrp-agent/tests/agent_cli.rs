//! `vrrp-agent run` flags: monitor vs election mode, `--config` exclusive with instance flags
//! (a clap error), and one-line errors naming the flag.
use std::time::Duration;

use vrrp_agent::{
    cli::{one_line, parse_from, Cmd, RunArgs, RunMode},
    config::XdpMode,
    fsm::Version,
    wire::Auth,
};

fn run_args(args: &[&str]) -> RunArgs {
    let mut v = vec!["vrrp-agent", "run"];
    v.extend_from_slice(args);
    match parse_from(v)
        .unwrap_or_else(|e| panic!("{}", one_line(&e)))
        .cmd
    {
        Cmd::Run(a) => a,
        other => panic!("{other:?}"),
    }
}

fn resolve(args: &[&str]) -> Result<RunMode, String> {
    run_args(args).resolve()
}

fn clap_error(args: &[&str]) -> clap::Error {
    let mut v = vec!["vrrp-agent", "run"];
    v.extend_from_slice(args);
    parse_from(v).expect_err("clap should refuse")
}

#[test]
fn without_vip_run_is_monitor_mode() {
    match resolve(&["--iface", "eth0", "--vrid", "51", "--vrid", "52"]).unwrap() {
        RunMode::Monitor(c) => {
            assert_eq!(c.iface, "eth0");
            assert_eq!(c.vrids, vec![51, 52]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_instance_from_flags() {
    let m = resolve(&[
        "--iface",
        "eth0",
        "--vrid",
        "51",
        "--priority",
        "150",
        "--vip",
        "10.0.0.100/24",
        "--vip",
        "10.0.0.101/24",
        "--advert-int",
        "0.01",
        "--no-preempt",
        "--preempt-delay",
        "3",
        "--accept-mode",
        "false",
        "--unicast-peer",
        "10.0.0.3",
        "--garp-master-delay",
        "2",
        "--garp-master-repeat",
        "4",
        "--garp-master-refresh",
        "30",
        "--name",
        "web",
        "--xdp-mode",
        "generic",
    ])
    .unwrap();
    let RunMode::Election(cfg) = m else {
        panic!("{m:?}")
    };
    assert_eq!(cfg.xdp_mode, XdpMode::Generic);
    let i = &cfg.instances[0];
    assert_eq!(i.name, "web");
    assert_eq!(i.interface, "eth0");
    assert_eq!((i.vrid, i.priority, i.advert_int_cs), (51, 150, 1));
    assert_eq!(i.vips.len(), 2);
    assert!(!i.preempt && !i.accept_mode);
    assert_eq!(i.preempt_delay, Duration::from_secs(3));
    assert_eq!(
        i.unicast_peers,
        vec!["10.0.0.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(i.garp.master_delay, Duration::from_secs(2));
    assert_eq!(i.garp.master_repeat, 4);
    assert_eq!(i.garp.master_refresh, Duration::from_secs(30));
}

#[test]
fn v2_with_password_from_flags() {
    let RunMode::Election(cfg) = resolve(&[
        "--iface",
        "eth0",
        "--vrid",
        "5",
        "--vip",
        "10.0.0.5/24",
        "--version",
        "2",
        "--advert-int",
        "2",
        "--auth-pass",
        "pw",
    ])
    .unwrap() else {
        panic!()
    };
    let i = &cfg.instances[0];
    assert_eq!(i.version, Version::V2);
    assert_eq!(i.advert_int_cs, 200);
    assert_eq!(i.auth, Auth::simple(b"pw").unwrap());
    assert_eq!(i.name, "vrid5");
}

#[test]
fn lower_prio_no_advert_flag() {
    let one = |extra: &[&str]| {
        let mut v = vec!["--iface", "eth0", "--vrid", "5", "--vip", "10.0.0.5/24"];
        v.extend_from_slice(extra);
        let RunMode::Election(cfg) = resolve(&v).unwrap() else {
            panic!()
        };
        cfg.instances[0].lower_prio_no_advert
    };
    assert!(
        !one(&[]),
        "default false, as keepalived without vrrp_strict"
    );
    assert!(one(&["--lower-prio-no-advert"]));
    // It configures a virtual router: not without --vip, not with --config.
    assert_eq!(
        resolve(&["--iface", "eth0", "--vrid", "5", "--lower-prio-no-advert"]).unwrap_err(),
        "--lower-prio-no-advert configures a virtual router, which needs --vip CIDR (without \
         --vip, run only watches adverts)"
    );
    let e = clap_error(&["--config", "a.toml", "--lower-prio-no-advert"]);
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
}

#[test]
fn config_and_instance_flags_are_mutually_exclusive() {
    let e = clap_error(&["--config", "a.toml", "--vip", "10.0.0.1/24"]);
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    let line = one_line(&e);
    assert!(!line.contains('\n'));
    assert!(
        line.starts_with("error: the argument '--config <FILE>' cannot be used with")
            && line.contains("--vip"),
        "{line}"
    );
    for flag in [
        ["--iface", "eth0"],
        ["--vrid", "3"],
        ["--priority", "3"],
        ["--advert-int", "1"],
        ["--unicast-peer", "10.0.0.1"],
        ["--auth-pass", "x"],
        ["--name", "x"],
    ] {
        let e = clap_error(&["--config", "a.toml", flag[0], flag[1]]);
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{flag:?}"
        );
    }
    // --xdp-mode may override the file's.
    let a = run_args(&["--config", "a.toml", "--xdp-mode", "native"]);
    assert_eq!(a.xdp_mode, Some(XdpMode::Native));
}

#[test]
fn iface_is_required_without_config() {
    let e = clap_error(&["--vrid", "3"]);
    assert_eq!(
        one_line(&e),
        "error: the following required arguments were not provided: --iface <IFACE>"
    );
}

#[test]
fn flag_errors_are_one_line_naming_the_flag() {
    let e = |args: &[&str]| {
        let mut v = vec!["--iface", "eth0", "--vrid", "7"];
        v.extend_from_slice(args);
        resolve(&v).unwrap_err()
    };
    assert_eq!(
        e(&["--vip", "10.0.0.1/24", "--priority", "300"]),
        "--priority: 300 is out of range 1-255"
    );
    assert_eq!(
        e(&["--vip", "10.0.0.1/24", "--vip", "fe80::1"]),
        "--vip: fe80::1/128 is not of the family of 10.0.0.1/24 (IPv4 and IPv6 are separate \
         virtual routers: use two instances)"
    );
    assert_eq!(
        e(&["--vip", "10.0.0.1/24", "--advert-int", "0"]),
        "--advert-int: 0 s is out of range 0.01-40.95 s"
    );
    assert_eq!(
        e(&[
            "--vip",
            "10.0.0.1/24",
            "--version",
            "2",
            "--advert-int",
            "0.5"
        ]),
        "--advert-int: advert interval 50 cs is invalid for VRRPv2 (whole seconds, 1..=255 s)"
    );
    assert_eq!(
        e(&["--priority", "200"]),
        "--priority configures a virtual router, which needs --vip CIDR (without --vip, run \
         only watches adverts)"
    );
    assert_eq!(
        e(&["--vip", "10.0.0.1/24", "--vrid", "8"]),
        "one --vrid with --vip (several virtual routers: use --config FILE)"
    );
    assert_eq!(
        e(&["--vip", "10.0.0.1/24", "--family", "v6"]),
        "--family is for watching adverts; a virtual router's family is its VIPs'"
    );
    let c = clap_error(&["--iface", "eth0", "--vrid", "0"]);
    assert!(one_line(&c).starts_with("error: invalid value '0' for '--vrid <VRIDS>'"));
    let c = clap_error(&["--iface", "eth0", "--vrid", "1", "--accept-mode", "maybe"]);
    assert!(one_line(&c).starts_with("error: invalid value 'maybe' for '--accept-mode"));
}

#[test]
fn check_config_subcommand_parses() {
    let cli = parse_from(["vrrp-agent", "check-config", "x.toml"]).unwrap();
    assert!(matches!(cli.cmd, Cmd::CheckConfig { .. }));
}

#[test]
fn require_failsafe_from_the_flag_or_the_file() {
    let base = ["--iface", "eth0", "--vrid", "51", "--vip", "10.0.0.100/24"];
    let RunMode::Election(cfg) = resolve(&base).unwrap() else {
        panic!("election mode")
    };
    assert!(!cfg.require_failsafe, "off by default");
    let mut strict = base.to_vec();
    strict.push("--require-failsafe");
    let RunMode::Election(cfg) = resolve(&strict).unwrap() else {
        panic!("election mode")
    };
    assert!(cfg.require_failsafe);
    let src = "[global]\nrequire_failsafe = true\n\n[[instance]]\ninterface = \"eth0\"\nvrid = 51\nvips = [\"10.0.0.100/24\"]\n";
    let cfg = vrrp_agent::config::parse_str(src, std::path::Path::new("t.toml")).unwrap();
    assert!(cfg.require_failsafe, "[global] require_failsafe");
    let cfg = vrrp_agent::config::parse_str(
        &src.replace("require_failsafe = true", "require_failsafe = 1"),
        std::path::Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        cfg.starts_with("t.toml:2: global.require_failsafe:"),
        "{cfg}"
    );
    // Monitor mode claims nothing: the switch is for virtual routers.
    assert!(
        resolve(&["--iface", "eth0", "--vrid", "51", "--require-failsafe"])
            .unwrap_err()
            .starts_with("--require-failsafe configures a virtual router")
    );
}

#[test]
fn realtime_priority_flag_defaults_validates_and_overrides_the_file() {
    let election = |args: &[&str]| match resolve(args) {
        Ok(RunMode::Election(c)) => c.realtime_priority,
        other => panic!("{other:?}"),
    };
    let vr = ["--iface", "eth0", "--vrid", "7", "--vip", "10.0.0.1/24"];
    assert_eq!(election(&vr), 10);
    assert_eq!(
        election(&[&vr[..], &["--realtime-priority", "0"]].concat()),
        0
    );
    assert_eq!(
        election(&[&vr[..], &["--realtime-priority", "42"]].concat()),
        42
    );
    assert_eq!(
        resolve(&[&vr[..], &["--realtime-priority", "100"]].concat()).unwrap_err(),
        "--realtime-priority: 100 is out of range 0-99 (0 = normal scheduling)"
    );
    match resolve(&["--iface", "eth0", "--vrid", "7", "--realtime-priority", "5"]).unwrap() {
        RunMode::Monitor(c) => assert_eq!(c.realtime_priority, 5),
        other => panic!("{other:?}"),
    }
    // With --config the flag overrides [global] realtime_priority (it is not an instance flag).
    let dir = tempfile_dir();
    let file = dir.join("rt.toml");
    std::fs::write(
        &file,
        "[global]\nrealtime_priority = 20\n[[instance]]\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1/24\"]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(election(&["--config", f]), 20);
    assert_eq!(election(&["--config", f, "--realtime-priority", "0"]), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory under the system temp dir (removed by the caller).
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vrrp-agent-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
