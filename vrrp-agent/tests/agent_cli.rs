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

/// The single declaration: every instance key of the model's table is accepted by the TOML
/// reader and by the flags, and both give the same instance as the model's `set_str` (and one
/// that differs from the instance without the key, so the key reached the model).
#[test]
fn every_instance_key_is_a_file_key_and_a_flag_with_the_same_meaning() {
    use vrrp_agent::config::{InstanceInput, Kind, INSTANCE_KEYS};
    let settings = |k: &vrrp_agent::config::Key| {
        let mut s: Vec<(&str, &str)> = vec![
            ("interface", "eth0"),
            ("vrid", "7"),
            ("vips", "10.0.0.1/24"),
        ];
        for (w, v) in k.example_with.iter().chain([&(k.name, k.example)]) {
            s.retain(|(x, _)| x != w);
            s.push((w, v));
        }
        s
    };
    let key = |name: &str| INSTANCE_KEYS.iter().find(|k| k.name == name).unwrap();
    let toml = |s: &[(&str, &str)]| {
        let mut t = String::from("[[instance]]\n");
        for (name, v) in s {
            let lit = match key(name).kind {
                Kind::Bool | Kind::Int | Kind::Seconds => v.to_string(),
                Kind::Str | Kind::Addr | Kind::Cidr | Kind::Track | Kind::Status => {
                    format!("{v:?}")
                }
                Kind::List(_) => format!("[{v:?}]"),
            };
            t.push_str(&format!("{name} = {lit}\n"));
        }
        t
    };
    let flags = |s: &[(&str, &str)]| {
        let mut v = Vec::new();
        for (name, text) in s {
            let k = key(name);
            v.push(k.flag_name());
            match k.switch_value() {
                Some(set) => assert_eq!(set, *text, "{name}"),
                None => v.push(text.to_string()),
            }
        }
        v
    };
    let from_flags = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match resolve(&args) {
            Ok(RunMode::Election(c)) => c.instances[0].clone(),
            other => panic!("{args:?}: {other:?}"),
        }
    };
    let from_file = |src: &str| {
        vrrp_agent::config::parse_str(src, std::path::Path::new("k.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{src}"))
            .instances[0]
            .clone()
    };
    let plain = from_file(&toml(&[
        ("interface", "eth0"),
        ("vrid", "7"),
        ("vips", "10.0.0.1/24"),
    ]));
    for k in INSTANCE_KEYS {
        let s = settings(k);
        let mut model = InstanceInput::default();
        for (name, v) in &s {
            model.set_str(name, v).unwrap();
        }
        let model = model.build(None).unwrap();
        let file = from_file(&toml(&s));
        let cmd = from_flags(&flags(&s));
        assert_eq!(file, model, "{}: the file differs from the model", k.name);
        assert_eq!(cmd, model, "{}: the flags differ from the model", k.name);
        if k.example_with.is_empty() {
            assert_ne!(file, plain, "{}: no effect", k.name);
        }
    }
}

/// `run --help` lists the flag of every instance key with the key's doc.
#[test]
fn run_help_lists_every_instance_flag_with_its_doc() {
    use clap::CommandFactory;
    let mut cmd = vrrp_agent::cli::Cli::command();
    let help = cmd
        .find_subcommand_mut("run")
        .expect("run")
        .render_long_help()
        .to_string();
    for k in vrrp_agent::config::INSTANCE_KEYS {
        let flag = k.flag_name();
        let line = help
            .lines()
            .position(|l| {
                l.trim_start()
                    .split([' ', ','])
                    .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
            })
            .unwrap_or_else(|| panic!("{flag} not in run --help:\n{help}"));
        // The doc follows the flag (long help: on the next lines).
        let text: String = help
            .lines()
            .skip(line)
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        let words: String = k.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&words), "{flag}: {:?} not in {text:?}", k.doc);
    }
}

/// Every instance flag conflicts with --config (from the table, not from a list).
#[test]
fn every_instance_flag_conflicts_with_config() {
    for k in vrrp_agent::cli::InstanceFlags::keys() {
        let flag = k.flag_name();
        let mut args = vec!["--config", "a.toml", flag.as_str()];
        if k.switch_value().is_none() {
            args.push(k.example);
        }
        let e = clap_error(&args);
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{flag}: {}",
            one_line(&e)
        );
    }
}
