//! The TOML configuration: defaults, keepalived vocabulary, and error messages that name the
//! file, the line and the key.
use std::collections::BTreeMap;
use std::{net::IpAddr, path::Path, time::Duration};

use vrrp_agent::{
    config::XdpMode,
    config::{self, parse_str, ConfigFileError, InstanceInput, InstanceSpec, Vip},
    fsm::{Family, Version},
    wire::{Auth, MacAddr},
};
use vrrp_core::IfaceEnv;

fn parse(src: &str) -> Result<config::AgentConfig, ConfigFileError> {
    parse_str(src, Path::new("config.toml"))
}

fn err(src: &str) -> String {
    parse(src).expect_err("should be refused").to_string()
}

const FULL: &str = r#"
[global]
xdp_mode = "generic"
failsafe_timeout = 0.5

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
advert_int = 0.01
vips = ["10.0.0.100/24", "10.0.0.101"]
preempt = false
preempt_delay = 2.5
accept_mode = false
unicast_src_ip = "10.0.0.2"
unicast_peers = ["10.0.0.3", "10.0.1.4"]
garp_master_delay = 1
garp_master_repeat = 3
garp_master_refresh = 60
garp_interval = 0.001
v3_checksum_as_v2 = true
failsafe_timeout = 0.1

[[instance]]
interface = "eth0"
vrid = 51
vips = ["fe80::100/64", "2001:db8::100/64"]
gna_interval = 0.002

[[instance]]
interface = "eth1"
vrid = 9
version = 2
advert_int = 3
auth_pass = "secret"
vips = ["192.0.2.9/24"]
"#;

#[test]
fn full_example_parses_with_keepalived_meanings() {
    let cfg = parse(FULL).unwrap();
    assert_eq!(cfg.xdp_mode, XdpMode::Generic);
    assert_eq!(cfg.instances.len(), 3);
    let web = &cfg.instances[0];
    assert_eq!(web.name, "web");
    assert_eq!((web.vrid, web.priority, web.advert_int_cs), (51, 150, 1));
    assert_eq!(web.version, Version::V3);
    assert_eq!(
        web.vips,
        vec![
            Vip {
                addr: "10.0.0.100".parse().unwrap(),
                prefix: 24
            },
            Vip {
                addr: "10.0.0.101".parse().unwrap(),
                prefix: 32
            }
        ]
    );
    assert!(!web.preempt && !web.accept_mode);
    assert_eq!(web.preempt_delay, Duration::from_millis(2500));
    assert_eq!(web.unicast_src_ip, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(web.unicast_peers.len(), 2);
    assert_eq!(web.garp.master_delay, Duration::from_secs(1));
    assert_eq!(web.garp.master_repeat, 3);
    assert_eq!(web.garp.master_refresh, Duration::from_secs(60));
    assert_eq!(web.garp.interval, Duration::from_millis(1));
    assert!(web.checksum.v3_checksum_as_v2);
    assert_eq!(web.failsafe_timeout, Some(Duration::from_millis(100)));

    let v6 = &cfg.instances[1];
    assert_eq!(v6.name, "vrid51-v6", "default name of an IPv6 instance");
    assert_eq!(v6.family(), Family::V6);
    assert_eq!(v6.garp.interval, Duration::from_millis(2));
    assert_eq!(
        v6.failsafe_timeout,
        Some(Duration::from_millis(500)),
        "from [global]"
    );

    let v2 = &cfg.instances[2];
    assert_eq!(v2.name, "vrid9");
    assert_eq!(v2.version, Version::V2);
    assert_eq!(v2.advert_int_cs, 300, "v2: seconds × 100");
    assert_eq!(v2.auth, Auth::simple(b"secret").unwrap());

    let by_if = cfg.by_interface();
    assert_eq!(by_if[0], ("eth0".to_string(), vec![0, 1]));
    assert_eq!(by_if[1], ("eth1".to_string(), vec![2]));
}

#[test]
fn defaults_are_keepalived_s() {
    let cfg = parse(
        r#"
[[instance]]
interface = "eth0"
vrid = 7
vips = ["10.0.0.100/24"]
"#,
    )
    .unwrap();
    assert_eq!(cfg.xdp_mode, XdpMode::Auto);
    let i = &cfg.instances[0];
    assert_eq!(i.name, "vrid7");
    assert_eq!(i.priority, 100);
    assert_eq!(i.advert_int_cs, 100);
    assert_eq!(i.version, Version::V3);
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert!(i.accept_mode, "keepalived without vrrp_strict");
    assert_eq!(i.garp.master_delay, Duration::from_secs(5));
    assert_eq!(i.garp.master_repeat, 5);
    assert_eq!(i.garp.master_refresh, Duration::ZERO);
    assert_eq!(i.garp.interval, Duration::ZERO);
    assert_eq!(i.failsafe_timeout, None);
    assert!(i.unicast_peers.is_empty());
    assert_eq!(i.auth, Auth::None);
}

#[test]
fn out_of_range_priority_names_file_line_and_key() {
    let src = r#"[global]
xdp_mode = "auto"

[[instance]]
interface = "eth0"
vrid = 7
priority = 300
vips = ["10.0.0.100/24"]
"#;
    assert_eq!(
        err(src),
        "config.toml:7: instance[0].priority: 300 is out of range 1-255"
    );
}

#[test]
fn error_in_second_instance_names_its_index() {
    let src = r#"
[[instance]]
interface = "eth0"
vrid = 7
vips = ["10.0.0.100/24"]

[[instance]]
interface = "eth0"
vrid = 256
vips = ["10.0.0.200/24"]
"#;
    assert_eq!(
        err(src),
        "config.toml:9: instance[1].vrid: 256 is out of range 1-255"
    );
}

#[test]
fn unknown_key_is_an_error_with_line_and_key() {
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\nprio = 5\n";
    let e = err(src);
    assert!(
        e.starts_with("config.toml:5: instance[0].prio: unknown field `prio`"),
        "{e}"
    );
    let e = err("[global]\nmode = 1\n");
    assert!(
        e.starts_with("config.toml:2: global.mode: unknown field `mode`"),
        "{e}"
    );
    let e = err("[globals]\n");
    assert!(e.starts_with("config.toml:1: "), "{e}");
    assert!(e.contains("unknown field `globals`"), "{e}");
}

#[test]
fn wrong_type_names_line_and_key() {
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = \"seven\"\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        err(src),
        "config.toml:3: instance[0].vrid: invalid type: string \"seven\", expected an integer"
    );
    let src =
        "[[instance]]\ninterface = \"eth0\"\nvrid = 7\npriority = 1.5\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        err(src),
        "config.toml:4: instance[0].priority: 1.5 is not a whole number"
    );
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nadvert_int = \"1s\"\nvips = [\"10.0.0.1/24\"]\n";
    assert!(err(src).starts_with("config.toml:4: instance[0].advert_int: invalid type"));
}

#[test]
fn toml_syntax_error_has_a_line() {
    let e = err("[[instance]]\ninterface = \"eth0\"\nvrid = = 7\n");
    assert!(e.starts_with("config.toml:3: instance[0].vrid: "), "{e}");
}

#[test]
fn missing_keys_point_at_the_instance() {
    let src = "\n\n[[instance]]\ninterface = \"eth0\"\nvips = [\"10.0.0.1/24\"]\n";
    let e = err(src);
    assert!(e.starts_with("config.toml:"), "{e}");
    assert!(e.contains(": instance[0].vrid: missing"), "{e}");
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 3\n";
    assert!(err(src).contains("instance[0].vips: missing"));
    assert_eq!(
        err("[global]\nxdp_mode = \"auto\"\n"),
        "config.toml: no [[instance]]: configure at least one virtual router"
    );
}

#[test]
fn vip_errors_name_the_element() {
    let src = r#"[[instance]]
interface = "eth0"
vrid = 7
vips = [
  "10.0.0.100/24",
  "2001:db8::1/64",
]
"#;
    let e = err(src);
    assert!(
        e.starts_with("config.toml:6: instance[0].vips[1]: 2001:db8::1/64 is not of the family"),
        "{e}"
    );
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.100/33\"]\n";
    assert!(err(src)
        .starts_with("config.toml:4: instance[0].vips[0]: \"10.0.0.100/33\": prefix length"));
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.100\", \"10.0.0.100/24\"]\n";
    assert_eq!(
        err(src),
        "config.toml:4: instance[0].vips[1]: virtual address 10.0.0.100 is listed twice"
    );
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"224.0.0.1\"]\n";
    assert!(err(src).contains("instance[0].vips[0]: virtual address 224.0.0.1 is not a unicast"));
}

#[test]
fn version_2_rules() {
    let base = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        err(&format!("{base}version = 2\nadvert_int = 0.5\n")),
        "config.toml:6: instance[0].advert_int: advert interval 50 cs is invalid for VRRPv2 \
         (whole seconds, 1..=255 s)"
    );
    assert!(err(&format!("{base}auth_pass = \"x\"\n"))
        .starts_with("config.toml:5: instance[0].auth_pass: VRRPv3 has no authentication"));
    assert_eq!(
        err(&format!("{base}version = 2\nauth_pass = \"123456789\"\n")),
        "config.toml:6: instance[0].auth_pass: 9 bytes, at most 8 fit (auth_type PASS)"
    );
    assert_eq!(
        err(&format!("{base}version = 4\n")),
        "config.toml:5: instance[0].version: 4 is not 2 or 3"
    );
    let v6 = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"fe80::1/64\"]\nversion = 2\n";
    assert_eq!(
        err(v6),
        "config.toml:5: instance[0].version: VRRPv2 (RFC 3768) is IPv4 only"
    );
}

#[test]
fn interval_and_durations_are_checked() {
    let base = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        err(&format!("{base}advert_int = 41\n")),
        "config.toml:5: instance[0].advert_int: 41 s is out of range 0.01-40.95 s"
    );
    assert_eq!(
        err(&format!("{base}advert_int = 0.015\n")),
        "config.toml:5: instance[0].advert_int: 0.015 s is not a whole number of centiseconds"
    );
    assert_eq!(
        err(&format!("{base}preempt_delay = 1001\n")),
        "config.toml:5: instance[0].preempt_delay: 1001 s is more than the maximum of 1000 s"
    );
    assert_eq!(
        err(&format!("{base}garp_master_repeat = 0\n")),
        "config.toml:5: instance[0].garp_master_repeat: 0 is out of range 1-255"
    );
    assert!(err(&format!("{base}gna_interval = 0.1\n"))
        .starts_with("config.toml:5: instance[0].gna_interval: is for IPv6"));
    assert!(err(&format!("{base}garp_master_delay = -1\n"))
        .starts_with("config.toml:5: instance[0].garp_master_delay: -1 is not"));
    assert!(err("[global]\nfailsafe_timeout = 0.001\n")
        .starts_with("config.toml:2: global.failsafe_timeout: 0.001 s is below the minimum"));
    assert_eq!(
        err("[global]\nxdp_mode = \"fast\"\n"),
        "config.toml:2: global.xdp_mode: \"fast\" is not one of \"auto\", \"native\", \"generic\""
    );
}

#[test]
fn unicast_settings_are_checked() {
    let base = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        err(&format!(
            "{base}unicast_peers = [\"10.0.0.2\", \"fe80::2\"]\n"
        )),
        "config.toml:5: instance[0].unicast_peers[1]: fe80::2 is not of the VIPs' address family"
    );
    assert_eq!(
        err(&format!("{base}unicast_src_ip = \"nope\"\n")),
        "config.toml:5: instance[0].unicast_src_ip: \"nope\" is not an IP address"
    );
    assert_eq!(
        err(&format!(
            "{base}unicast_peers = [\"10.0.0.2\", \"10.0.0.2\"]\n"
        )),
        "config.toml:5: instance[0].unicast_peers[1]: 10.0.0.2 is listed twice"
    );
}

#[test]
fn instances_must_be_distinct() {
    let one = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\n";
    let named_b = one
        .replace("vrid = 7", "vrid = 7\nname = \"b\"")
        .replace("10.0.0.1/24", "10.0.0.2/24");
    let e = err(&format!("{one}{named_b}"));
    assert_eq!(
        e,
        "config.toml:7: instance[1].vrid: VRID 7 on eth0 (V4) is already instance vrid7"
    );
    // Same VRID for IPv6, or on another interface: separate virtual routers.
    let v6 = one.replace("10.0.0.1/24", "fe80::1/64");
    assert!(parse(&format!("{one}{v6}")).is_ok());
    let other_if = one
        .replace("eth0", "eth1")
        .replace("vrid = 7", "vrid = 7\nname = \"x\"")
        .replace("10.0.0.1/24", "10.0.1.1/24");
    assert!(parse(&format!("{one}{other_if}")).is_ok());
}

/// Issue 7 item 8c: two instances with the same VRID (and so the same default name) are a
/// duplicate VRID, not a duplicate name.
#[test]
fn duplicate_vrid_with_default_names_is_reported_as_a_vrid() {
    let one = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\n";
    let two = one.replace("10.0.0.1/24", "10.0.0.2/24");
    assert_eq!(
        err(&format!("{one}{two}")),
        "config.toml:7: instance[1].vrid: VRID 7 on eth0 (V4) is already instance vrid7"
    );
    // The same default name on two interfaces is a name clash, and says where it comes from.
    let other_if = two.replace("eth0", "eth1");
    assert_eq!(
        err(&format!("{one}{other_if}")),
        "config.toml:5: instance[1].name: \"vrid7\" is used twice (the default name of VRID 7: \
         give the instances distinct names)"
    );
    // An explicit name used twice.
    let named = |vrid: u8, vip: &str| {
        format!(
            "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = {vrid}\nvips = [\"{vip}\"]\n"
        )
    };
    assert_eq!(
        err(&format!("{}{}", named(7, "10.0.0.1"), named(8, "10.0.0.2"))),
        "config.toml:7: instance[1].name: \"web\" is used twice"
    );
}

/// Issue 7 item 8a: one VIP in two instances (on any interface) would make both master with
/// it.
#[test]
fn the_same_vip_in_two_instances_is_an_error_naming_both() {
    let web = "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 7\n\
               vips = [\"10.0.0.100/24\"]\n";
    let db = "[[instance]]\nname = \"db\"\ninterface = \"eth1\"\nvrid = 8\n\
              vips = [\"10.0.0.5/24\", \"10.0.0.100/24\"]\n";
    assert_eq!(
        err(&format!("{web}{db}")),
        "config.toml:10: instance[1].vips[1]: 10.0.0.100 is already a VIP of instance web"
    );
    // The same interface, another VRID: the same.
    let db0 = db.replace("eth1", "eth0");
    assert_eq!(
        err(&format!("{web}{db0}")),
        "config.toml:10: instance[1].vips[1]: 10.0.0.100 is already a VIP of instance web"
    );
    // The prefix does not matter, the address does.
    let db32 = db.replace("10.0.0.100/24", "10.0.0.100");
    assert!(err(&format!("{web}{db32}")).contains("10.0.0.100 is already a VIP of instance web"));
    // IPv6 too.
    let v6 = |name: &str, vrid: u8| {
        format!(
            "[[instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
             vips = [\"fe80::1/64\", \"2001:db8::1/64\"]\n"
        )
    };
    assert_eq!(
        err(&format!("{}{}", v6("a", 1), v6("b", 2))),
        "config.toml:10: instance[1].vips[0]: fe80::1 is already a VIP of instance a"
    );
}

#[test]
fn lower_prio_no_advert_defaults_to_false_and_is_read() {
    let base = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\n";
    let cfg = parse(base).unwrap();
    assert!(!cfg.instances[0].lower_prio_no_advert);
    assert!(
        !cfg.instances[0]
            .fsm_config("10.0.0.2".parse().unwrap())
            .lower_prio_no_advert
    );
    let cfg = parse(&format!("{base}lower_prio_no_advert = true\n")).unwrap();
    assert!(cfg.instances[0].lower_prio_no_advert);
    assert!(
        cfg.instances[0]
            .fsm_config("10.0.0.2".parse().unwrap())
            .lower_prio_no_advert
    );
    assert!(cfg.instances[0]
        .describe()
        .contains("lower_prio_no_advert=true"));
    assert_eq!(
        err(&format!("{base}lower_prio_no_advert = 1\n")),
        "config.toml:5: instance[0].lower_prio_no_advert: invalid type: integer `1`, expected a boolean"
    );
}

/// Issue 7 item 8b: the interface's own address as the VIP of a non-owner names the real
/// mistake (the router owns that address), not "no IPv4 address"; and an owner sends from its
/// own address even though it is a VIP.
#[test]
fn primary_address_choice_names_ownership_mistakes() {
    let spec = |priority: i64, vips: &[&str]| {
        InstanceInput {
            name: Some("web".into()),
            interface: Some("eth0".into()),
            vrid: Some(7),
            priority: Some(priority),
            vips: vips.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
        .build(None)
        .unwrap()
    };
    let env = |addrs: &[&str]| IfaceEnv {
        name: "eth0".into(),
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    };
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let primary = |e: &IfaceEnv, s: &InstanceSpec| {
        let vips: Vec<IpAddr> = s.vips.iter().map(|v| v.addr).collect();
        e.primary_for(s, &vips)
    };
    // The VIP is eth0's only IPv4 address, priority 100.
    let s = spec(100, &["10.0.0.1/24"]);
    let e = primary(&env(&["10.0.0.1", "fe80::1"]), &s).unwrap_err();
    assert_eq!(
        e,
        "instance web: 10.0.0.1 is an address of the interface, so this router owns it: use \
         priority 255 (the address owner), not 100, or a VIP that is not an address of the \
         interface (on eth0)"
    );
    // The same for IPv6: the link-local VIP is the interface's only link-local address.
    let s6 = spec(100, &["fe80::1/64"]);
    let e = primary(&env(&["10.0.0.1", "fe80::1"]), &s6).unwrap_err();
    assert!(
        e.starts_with(
            "instance web: fe80::1 is an address of the interface, so this router owns it"
        ),
        "{e}"
    );
    // The owner (priority 255) sends from it.
    let owner = spec(255, &["10.0.0.1/24"]);
    assert_eq!(primary(&env(&["10.0.0.1"]), &owner), Ok(ip("10.0.0.1")));
    // ... but from its first real address when it has one before the VIP.
    assert_eq!(
        primary(&env(&["10.0.0.2", "10.0.0.1"]), &owner),
        Ok(ip("10.0.0.2"))
    );
    // An owner whose VIP is not on the interface: that is the error, not "no IPv4 address".
    assert_eq!(
        primary(&env(&["fe80::1"]), &owner).unwrap_err(),
        "instance web: priority 255 (address owner) but 10.0.0.1 is not an address of the \
         interface (on eth0)"
    );
    // A VIP next to the router's own address: a leftover of an earlier run, not an error.
    assert_eq!(
        primary(&env(&["10.0.0.2", "10.0.0.1"]), &s),
        Ok(ip("10.0.0.2"))
    );
    // No address at all.
    assert_eq!(
        primary(&env(&["fe80::1"]), &s).unwrap_err(),
        "instance web: eth0 has no IPv4 address to send adverts from; add one or set \
         unicast_src_ip"
    );
}

#[test]
fn missing_file_is_one_clear_line() {
    let e = config::load(Path::new("/nonexistent/vrrp.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/vrrp.toml: cannot read:"),
        "{e}"
    );
}

#[test]
fn instance_input_errors_map_to_flags() {
    let e = InstanceInput {
        interface: Some("eth0".into()),
        vrid: Some(7),
        priority: Some(0),
        vips: vec!["10.0.0.1/24".into()],
        ..Default::default()
    }
    .build(None)
    .unwrap_err();
    assert_eq!(e.key, "priority");
    assert_eq!(config::flag_of(&e.key), "--priority");
    assert_eq!(config::flag_of("vips[2]"), "--vip");
    assert_eq!(config::flag_of("unicast_peers[0]"), "--unicast-peer");
    assert_eq!(config::flag_of("interface"), "--iface");
    assert_eq!(config::flag_of("garp_master_delay"), "--garp-master-delay");
}

#[test]
fn check_config_description_lists_every_setting() {
    let cfg = parse(FULL).unwrap();
    let d = cfg.instances[0].describe();
    for needle in [
        "instance web:",
        "interface=eth0",
        "vrid=51",
        "priority=150",
        "advert_int=0.01s",
        "vips=10.0.0.100/24,10.0.0.101/32",
        "unicast_peers=10.0.0.3,10.0.1.4",
        "garp_master_repeat=3",
        "failsafe_timeout=0.1s",
    ] {
        assert!(d.contains(needle), "{needle} not in {d}");
    }
    let _: IpAddr = cfg.instances[0].vips[0].addr;
}

#[test]
fn realtime_priority_defaults_to_10_and_0_turns_it_off() {
    let one = "[[instance]]\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(parse(one).unwrap().realtime_priority, 10);
    for (v, want) in [(0, 0), (1, 1), (99, 99)] {
        let src = format!("[global]\nrealtime_priority = {v}\n{one}");
        assert_eq!(parse(&src).unwrap().realtime_priority, want);
    }
    assert_eq!(
        err(&format!("[global]\nrealtime_priority = 100\n{one}")),
        "config.toml:2: global.realtime_priority: 100 is out of range 0-99 (0 = normal scheduling)"
    );
    assert_eq!(
        err(&format!("[global]\nrealtime_priority = -1\n{one}")),
        "config.toml:2: global.realtime_priority: -1 is out of range 0-99 (0 = normal scheduling)"
    );
    assert_eq!(
        err(&format!("[global]\nrealtime_priority = 1.5\n{one}")),
        "config.toml:2: global.realtime_priority: 1.5 is not a whole number"
    );
}

/// The keys written in a TOML example block, by table (`global`, `instance`, `check`,
/// `sync_group`).
fn documented_keys(block: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in block.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            table = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            out.entry(table.clone())
                .or_default()
                .push(k.trim().to_string());
        }
    }
    out
}

fn assert_documents_every_key(what: &str, block: &str) {
    let documented = documented_keys(block);
    for (table, keys) in [
        ("global", config::GLOBAL_KEYS),
        ("instance", config::INSTANCE_KEYS),
        ("check", config::CHECK_KEYS),
        ("sync_group", config::SYNC_GROUP_KEYS),
    ] {
        let written = documented.get(table).cloned().unwrap_or_default();
        for k in keys {
            assert!(
                written.iter().any(|d| d == k.name),
                "{what}: {table} key {} is not in the example",
                k.name
            );
        }
        // And nothing that is not a key.
        for d in &written {
            assert!(
                keys.iter().any(|k| k.name == d),
                "{what}: {d} is not a {table} key"
            );
        }
    }
    for t in documented.keys() {
        assert!(
            ["global", "instance", "check", "sync_group"].contains(&t.as_str()),
            "{what}: keys outside a table or in [{t}]"
        );
    }
}

/// The docs cannot drift from the key table: README's configuration example and the TOML
/// reader's module doc list every key, and only keys.
#[test]
fn readme_and_module_doc_list_every_key() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme
        .find("## Configuration")
        .expect("README: ## Configuration")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    assert_documents_every_key("README.md", block);

    let module = include_str!("../src/config.rs");
    let doc: String = module
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    let start = doc
        .find("```toml\n")
        .expect("a toml block in the module doc")
        + 8;
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    assert_documents_every_key("src/config.rs", block);
}

/// Every `[global]` key of the table is read from the file.
#[test]
fn every_global_key_is_read_from_the_file() {
    let one = "[[instance]]\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1/24\"]\n";
    let plain = parse(one).unwrap();
    for k in config::GLOBAL_KEYS {
        let lit = match k.kind {
            config::Kind::Str => format!("{:?}", k.example),
            _ => k.example.to_string(),
        };
        let cfg = parse(&format!("[global]\n{} = {lit}\n{one}", k.name))
            .unwrap_or_else(|e| panic!("{}: {e}", k.name));
        assert_ne!(cfg, plain, "global {}: no effect", k.name);
    }
}

#[test]
fn unknown_keys_in_a_file_name_the_close_ones() {
    let src = "[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\"]\nadvert_interval = 1\n";
    assert_eq!(
        err(src),
        "config.toml:5: instance[0].advert_interval: unknown field `advert_interval` (did you \
         mean `advert_int`?)"
    );
    assert_eq!(
        err("[instances]\n"),
        "config.toml:1: unknown field `instances` (did you mean `instance`?)"
    );
    assert_eq!(
        err("[global]\nxdp_mode = 1\n"),
        "config.toml:2: global.xdp_mode: invalid type: integer `1`, expected a string"
    );
    assert_eq!(
        err("[[instance]]\ninterface = \"eth0\"\nvrid = 7\nvips = [\"10.0.0.1/24\", 5]\n"),
        "config.toml:4: instance[0].vips[1]: invalid type: integer `5`, expected a string"
    );
    assert_eq!(
        err("[instance]\ninterface = \"eth0\"\n"),
        "config.toml:1: instance: write each virtual router as [[instance]]"
    );
}

// ---- issue 9: [[check]], track, notify, [[sync_group]] ----

const TRACKED: &str = r#"[[check]]
name = "web"
http = "http://127.0.0.1:8080/healthz"
interval = 0.1
timeout = 0.05
rise = 2
fall = 2
status = [200, "300-302"]

[[check]]
name = "db"
tcp = "10.0.0.5:5432"

[[instance]]
name = "web"
interface = "eth0"
vrid = 1
priority = 150
vips = ["10.0.0.100/24"]
track = [{ check = "web", weight = -120 }, { interface = "eth1", weight = -50 },
         { file = "/run/vrrp/prio", weight = 1 }, { process = "nginx" }]
notify = "/usr/local/bin/notify"
notify_master = "/usr/local/bin/to-master now"

[[instance]]
name = "db"
interface = "eth0"
vrid = 2
vips = ["10.0.0.101/24"]
track = [{ check = "db", weight = -30 }]

[[sync_group]]
name = "g1"
instances = ["web", "db"]
notify_fault = "/usr/local/bin/group-fault"
"#;

#[test]
fn checks_tracking_notify_and_sync_groups_are_read() {
    let cfg = parse(TRACKED).unwrap();
    assert_eq!(cfg.checks.len(), 2);
    let web = &cfg.checks[0];
    assert_eq!(web.name, "web");
    assert_eq!(
        (web.interval, web.timeout, web.rise, web.fall),
        (Duration::from_millis(100), Duration::from_millis(50), 2, 2)
    );
    match &web.kind {
        config::CheckKind::Http { status, tls, .. } => {
            assert_eq!(status, &[(200, 200), (300, 302)]);
            assert!(!tls);
        }
        k => panic!("{k:?}"),
    }
    let t: Vec<String> = cfg.instances[0]
        .track
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(
        t,
        [
            "check=web weight=-120",
            "interface=eth1 weight=-50",
            "file=/run/vrrp/prio weight=1",
            "process=nginx weight=0"
        ]
    );
    assert_eq!(
        cfg.instances[0].notify.master.as_deref(),
        Some("/usr/local/bin/to-master now")
    );
    assert_eq!(cfg.sync_groups[0].instances, ["web", "db"]);
    assert_eq!(
        cfg.sync_groups[0].notify.fault.as_deref(),
        Some("/usr/local/bin/group-fault")
    );
    // check-config: the trackers and the priority advertised now (every tracker down: -120,
    // -50; weight 0 down: FAULT).
    let d = cfg.instances[0].describe();
    assert!(
        d.contains(
            "track=check web:-120,interface eth1:-50,file /run/vrrp/prio:1,process nginx:0 \
             priority_now=1 (FAULT until every weight-0 tracker is up)"
        ),
        "{d}"
    );
    assert!(cfg.instances[1].describe().contains("priority_now=70"));
    assert_eq!(
        cfg.checks[1].describe(),
        "check db: tcp=10.0.0.5:5432 interval=1s timeout=1s rise=1 fall=1"
    );
}

#[test]
fn check_and_group_errors_name_file_line_and_key() {
    let one =
        "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        err(&format!(
            "{one}[[check]]\nname = \"c\"\nhttp = \"http://a/\"\ninterval = 0.1\ntimeout = 0.2\n"
        )),
        "config.toml:10: check[0].timeout: 0.2 s is longer than the interval (0.1 s): a probe \
         must end before the next one starts"
    );
    assert_eq!(
        err(&format!("{one}[[check]]\nname = \"c\"\n")),
        "config.toml:6: check[0]: no probe: give exactly one of script, icmp, tcp, http, https"
    );
    assert_eq!(
        err(&format!(
            "{one}[[check]]\nname = \"c\"\ntcp = \"10.0.0.1:1\"\nrise = 0\n"
        )),
        "config.toml:9: check[0].rise: 0 is out of range 1-1000000"
    );
    assert_eq!(
        err(&format!(
            "{one}[[check]]\nname = \"c\"\ntcp = \"10.0.0.1:1\"\nintervall = 1\n"
        )),
        "config.toml:9: check[0].intervall: unknown field `intervall` (did you mean `interval`?)"
    );
    assert_eq!(
        err(&format!(
            "{one}track = [{{ check = \"web\", weight = -1 }}]\n"
        )),
        "config.toml:6: instance[0].track[0].check: no [[check]] is named \"web\" (there are none)"
    );
    assert_eq!(
        err(&format!(
            "{one}track = [{{ check = \"web\", weight = -300 }}]\n"
        )),
        "config.toml:6: instance[0].track[0].weight: -300 is out of range -254-254"
    );
    assert_eq!(
        err(&format!(
            "{one}track = [\n  {{ interface = \"eth1\" }},\n  {{ interfce = \"eth2\" }},\n]\n"
        )),
        "config.toml:8: instance[0].track[1].interfce: unknown field `interfce` (did you mean \
         `interface`?)"
    );
    assert_eq!(
        err(&format!("{one}notify_stop = \"stop.sh\"\n")),
        "config.toml:6: instance[0].notify_stop: \"stop.sh\" is not an absolute path (commands \
         run without a shell or PATH: write /usr/local/bin/stop.sh, say)"
    );
    assert_eq!(
        err(&format!(
            "{one}[[sync_group]]\nname = \"g\"\ninstances = [\"web\", \"wbe\"]\n"
        )),
        "config.toml:8: sync_group[0].instances[1]: no instance is named \"wbe\" (the instances \
         are web)"
    );
    assert_eq!(
        err(&format!(
            "{one}[[sync_group]]\nname = \"g\"\ninstances = [\"web\"]\n[[sync_group]]\nname = \"h\"\ninstances = [\"web\"]\n"
        )),
        "config.toml:11: sync_group[1].instances[0]: instance web is already in sync group g (an \
         instance is in at most one group)"
    );
    assert_eq!(
        err(&format!("{one}[sync_group]\nname = \"g\"\n")),
        "config.toml:6: sync_group: write each one as [[sync_group]]"
    );
}

// ---- ${ENV} substitution -------------------------------------------------------------------

fn parse_env(src: &str, env: &[(&str, &str)]) -> Result<config::AgentConfig, ConfigFileError> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config::parse_str_with_env(src, Path::new("config.toml"), |n| env.get(n).cloned())
}

const ENV_CONF: &str = r#"
[[instance]]
name = "${VRRP_NAME:-web}"
interface = "${VRRP_IFACE}"
vrid = 51
priority = ${VRRP_PRIORITY}   # ${NOT_EXPANDED_IN_COMMENTS}
vips = ["${VRRP_VIP:-10.0.0.100/24}"]
notify = "/usr/local/bin/notify --cost $$5 '${VRRP_IFACE}'"
"#;

#[test]
fn env_variables_fill_numbers_strings_and_defaults() {
    let c = parse_env(
        ENV_CONF,
        &[("VRRP_PRIORITY", "150"), ("VRRP_IFACE", "eth1")],
    )
    .unwrap();
    let i = &c.instances[0];
    assert_eq!(i.priority, 150);
    assert_eq!(i.interface, "eth1");
    assert_eq!(i.name, "web", "default used when unset");
    assert_eq!(i.vips[0].addr, "10.0.0.100".parse::<IpAddr>().unwrap());
    assert_eq!(
        i.notify.notify.as_deref(),
        Some("/usr/local/bin/notify --cost $5 'eth1'"),
        "$$ is one $, and a variable inside a string is expanded"
    );
    // A set variable wins over the default; an empty default is allowed.
    let c = parse_env(
        &ENV_CONF.replace("${VRRP_VIP:-10.0.0.100/24}", "${VRRP_VIP:-}"),
        &[
            ("VRRP_PRIORITY", "99"),
            ("VRRP_IFACE", "eth1"),
            ("VRRP_NAME", "db"),
            ("VRRP_VIP", "10.0.0.7/24"),
        ],
    )
    .unwrap();
    assert_eq!(c.instances[0].name, "db");
    assert_eq!(c.instances[0].priority, 99);
    assert_eq!(
        c.instances[0].vips[0].addr,
        "10.0.0.7".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn an_unset_env_variable_is_one_clear_error_at_its_line() {
    let e = parse_env(ENV_CONF, &[("VRRP_IFACE", "eth1")])
        .expect_err("VRRP_PRIORITY is unset")
        .to_string();
    assert_eq!(
        e,
        "config.toml:6: ${VRRP_PRIORITY} is not set (export it or give a default: \
         ${VRRP_PRIORITY:-value})"
    );
    let e = parse_env("[[instance]]\nvrid = ${BAD-NAME}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config.toml:2: ${BAD-NAME}: not a variable name"),
        "{e}"
    );
    let e = parse_env("[[instance]]\nvrid = ${VRID\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config.toml:2: unterminated ${"), "{e}");
}

#[test]
fn env_values_cannot_inject_toml_and_keep_line_numbers() {
    // A non-number in a number position goes in as a string: a type error at its line, never
    // a new key.
    let e = parse_env(
        ENV_CONF,
        &[("VRRP_PRIORITY", "1\nvrid = 7"), ("VRRP_IFACE", "eth1")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("config.toml:6: instance[0].priority"), "{e}");
    // Quotes and backslashes inside a string value stay inside the string.
    let c = parse_env(
        ENV_CONF,
        &[("VRRP_PRIORITY", "100"), ("VRRP_IFACE", r#"e"t\h"#)],
    )
    .unwrap();
    assert_eq!(c.instances[0].interface, r#"e"t\h"#);
    // An error after a substitution still names the line as written.
    let e = parse_env(
        "[[instance]]\ninterface = \"${I}\"\nvrid = 51\npriority = ${P}\nvips = [\"10.0.0.1\"]\nbogus = 1\n",
        &[("I", "eth0"), ("P", "100")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("config.toml:6: instance[0].bogus"), "{e}");
    // Literal strings are literal.
    let c = parse_env(
        "[[instance]]\ninterface = 'eth${X}'\nvrid = 51\nvips = [\"10.0.0.1\"]\n",
        &[],
    );
    assert_eq!(c.unwrap().instances[0].interface, "eth${X}");
}

#[test]
fn check_config_expands_the_process_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vrrp-agent.toml");
    std::fs::write(
        &file,
        "[[instance]]\ninterface = \"eth0\"\nvrid = 51\npriority = ${VRRP_PRIORITY}\nvips = [\"10.0.0.1/24\"]\n",
    )
    .unwrap();
    let run = |prio: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_vrrp-agent"));
        c.arg("check-config").arg(&file).env_remove("VRRP_PRIORITY");
        if let Some(p) = prio {
            c.env("VRRP_PRIORITY", p);
        }
        c.output().unwrap()
    };
    let ok = run(Some("173"));
    let out =
        String::from_utf8_lossy(&ok.stdout).to_string() + &String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{out}");
    assert!(
        out.contains("173"),
        "check-config shows the priority from the environment: {out}"
    );
    let bad = run(None);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains(":4: ${VRRP_PRIORITY} is not set (export it or give a default: ${VRRP_PRIORITY:-value})"),
        "{err}"
    );
}
