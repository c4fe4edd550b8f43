//! The configuration model's key table: every declared key reaches the model through the
//! generic setters, its example is valid and has an effect, its declared default is the built
//! default, and the setters' errors name the key.
use std::collections::BTreeSet;

use vrrp_core::config::{
    flag_of, DefaultValue, Flag, GlobalInput, InstanceInput, InstanceSpec, Kind, Value,
    GLOBAL_KEYS, INSTANCE_KEYS,
};

/// A minimal valid instance, with `with` set on top (each `(key, text)` through `set_str`; a
/// list key given here replaces the base's list).
fn input(with: &[(&str, &str)]) -> InstanceInput {
    let mut i = InstanceInput::default();
    let mut base = vec![
        ("interface", "eth0"),
        ("vrid", "7"),
        ("vips", "10.0.0.1/24"),
    ];
    base.retain(|(k, _)| !with.iter().any(|(w, _)| w == k));
    for (k, v) in base.iter().chain(with) {
        i.set_str(k, v).unwrap_or_else(|e| panic!("{k} = {v}: {e}"));
    }
    i
}

fn build(with: &[(&str, &str)]) -> InstanceSpec {
    input(with)
        .build(None)
        .unwrap_or_else(|e| panic!("{with:?}: {e}"))
}

#[test]
fn every_instance_key_example_is_valid_and_has_an_effect() {
    assert!(INSTANCE_KEYS.len() >= 21);
    for k in INSTANCE_KEYS {
        assert!(!k.example.is_empty(), "{}: no example", k.name);
        let context: Vec<(&str, &str)> = k.example_with.to_vec();
        let without = build(&context);
        let mut with = context.clone();
        with.push((k.name, k.example));
        let spec = build(&with);
        assert_ne!(
            spec, without,
            "{} = {}: no effect on the instance",
            k.name, k.example
        );
        // Set through `set_str`, the field is set.
        assert!(input(&with).is_set(k.name), "{}", k.name);
    }
}

#[test]
fn declared_defaults_are_the_built_defaults() {
    for k in INSTANCE_KEYS {
        let DefaultValue::Value(d) = k.default else {
            continue;
        };
        let context: Vec<(&str, &str)> = k.example_with.to_vec();
        let mut with = context.clone();
        with.push((k.name, d));
        assert_eq!(
            build(&with),
            build(&context),
            "{}: the declared default {d} is not the default",
            k.name
        );
    }
    let none = GlobalInput::default().build().unwrap();
    for k in GLOBAL_KEYS {
        let DefaultValue::Value(d) = k.default else {
            continue;
        };
        let mut g = GlobalInput::default();
        g.set_str(k.name, d).unwrap();
        assert_eq!(g.build().unwrap(), none, "global {}", k.name);
    }
}

#[test]
fn every_global_key_example_is_valid_and_has_an_effect() {
    let none = GlobalInput::default().build().unwrap();
    for k in GLOBAL_KEYS {
        let mut g = GlobalInput::default();
        g.set_str(k.name, k.example)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(g.is_set(k.name));
        assert_ne!(g.build().unwrap(), none, "global {}: no effect", k.name);
    }
}

#[test]
fn declarations_are_consistent() {
    let mut flags = BTreeSet::new();
    let mut names = BTreeSet::new();
    for k in INSTANCE_KEYS {
        assert!(names.insert(k.name), "{} declared twice", k.name);
        assert!(flags.insert(k.flag_name()), "{} shares a flag", k.name);
        assert_eq!(flag_of(k.name), k.flag_name());
        assert!(!k.doc.is_empty() && !k.doc.contains('\n'), "{}", k.name);
        assert!(k.help().starts_with(k.doc) || k.help().contains(k.doc));
        // A flag without a value sets the value its example shows (so the example can be given
        // on the command line), and only booleans have one.
        if let Some(v) = k.switch_value() {
            assert_eq!(k.kind, Kind::Bool, "{}", k.name);
            assert_eq!(v, k.example, "{}", k.name);
        }
        for (w, _) in k.example_with {
            assert!(INSTANCE_KEYS.iter().any(|x| x.name == *w), "{w}");
        }
    }
    assert_eq!(flag_of("interface"), "--iface");
    assert_eq!(flag_of("vips[3]"), "--vip");
    assert_eq!(flag_of("unicast_peers[0]"), "--unicast-peer");
    assert_eq!(flag_of("version"), "--version");
    assert_eq!(flag_of("preempt"), "--no-preempt");
    assert_eq!(flag_of("advert_int"), "--advert-int");
    let preempt = INSTANCE_KEYS.iter().find(|k| k.name == "preempt").unwrap();
    assert_eq!(preempt.flag, Flag::Off("no-preempt"));
}

#[test]
fn set_str_parses_by_the_declared_type() {
    let mut i = InstanceInput::default();
    i.set_str("priority", "150").unwrap();
    assert_eq!(i.priority, Some(150));
    i.set_str("advert_int", "0.25").unwrap();
    assert_eq!(i.advert_int, Some(0.25));
    i.set_str("preempt", "false").unwrap();
    assert_eq!(i.preempt, Some(false));
    i.set_str("vips", "10.0.0.1/24").unwrap();
    i.set_str("vips", "10.0.0.2/24").unwrap();
    assert_eq!(i.vips, ["10.0.0.1/24", "10.0.0.2/24"], "a list appends");
    let e = i.set_str("priority", "high").unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.msg.as_str()),
        ("priority", "\"high\" is not an integer")
    );
    assert_eq!(
        i.set_str("vrid", "1.5").unwrap_err().msg,
        "1.5 is not a whole number"
    );
    assert_eq!(
        i.set_str("accept_mode", "maybe").unwrap_err().msg,
        "\"maybe\" is not true or false"
    );
    // A range is checked when the instance is built, naming the key.
    i.set_str("interface", "eth0").unwrap();
    i.set_str("vrid", "7").unwrap();
    i.set_str("priority", "300").unwrap();
    let e = i.build(None).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.msg.as_str()),
        ("priority", "300 is out of range 1-255")
    );
}

#[test]
fn native_values_are_type_checked() {
    let mut i = InstanceInput::default();
    assert_eq!(
        i.set("vrid", Value::Text("seven".into())).unwrap_err().msg,
        "invalid type: string \"seven\", expected an integer"
    );
    assert_eq!(
        i.set_bool("advert_int", true).unwrap_err().msg,
        "invalid type: boolean `true`, expected a number (seconds)"
    );
    assert_eq!(
        i.set_float("priority", 1.5).unwrap_err().msg,
        "1.5 is not a whole number"
    );
    i.set_int("advert_int", 2).unwrap();
    assert_eq!(i.advert_int, Some(2.0), "an integer is a number of seconds");
    // A list replaces; a wrong element names its index.
    i.set_list("vips", vec!["10.0.0.1".into(), "10.0.0.2".into()])
        .unwrap();
    i.set_list("vips", vec!["10.0.0.3".into()]).unwrap();
    assert_eq!(i.vips, ["10.0.0.3"]);
    let e = i
        .set(
            "vips",
            Value::List(vec![Value::Text("10.0.0.1".into()), Value::Int(1)]),
        )
        .unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.msg.as_str()),
        ("vips[1]", "invalid type: integer `1`, expected a string")
    );
    assert_eq!(i.vips, ["10.0.0.3"], "a refused list leaves the old one");
    assert_eq!(
        i.set("vips", Value::Text("10.0.0.1".into()))
            .unwrap_err()
            .msg,
        "invalid type: string \"10.0.0.1\", expected a sequence"
    );
}

#[test]
fn unknown_keys_name_the_close_ones() {
    let mut i = InstanceInput::default();
    let e = i.set_str("prio", "5").unwrap_err();
    assert_eq!(e.key, "prio");
    assert_eq!(e.msg, "unknown field `prio` (did you mean `priority`?)");
    assert_eq!(
        i.set_str("advert_interval", "1").unwrap_err().msg,
        "unknown field `advert_interval` (did you mean `advert_int`?)"
    );
    assert_eq!(
        i.set_str("vip", "10.0.0.1").unwrap_err().msg,
        "unknown field `vip` (did you mean `vips`?)"
    );
    let far = i.set_bool("zzz", true).unwrap_err().msg;
    assert!(
        far.starts_with("unknown field `zzz`, expected one of `name`, `interface`"),
        "{far}"
    );
    // The global table is a table of its own.
    assert!(GlobalInput::default().set_str("priority", "1").is_err());
    assert!(InstanceInput::default()
        .set_str("xdp_mode", "auto")
        .is_err());
}

// ---- issue 9: checks, tracking, notify, sync groups ----

use vrrp_core::config::{
    check_model, CheckInput, CheckKind, CheckSpec, NotifySpec, SyncGroupInput, SyncGroupSpec,
    Table, TrackSpec, TrackTarget,
};

fn check(with: &[(&str, &str)]) -> Result<CheckSpec, String> {
    let mut c = CheckInput::default();
    for (k, v) in with {
        c.set_str(k, v).map_err(|e| e.to_string())?;
    }
    c.build().map_err(|e| e.to_string())
}

#[test]
fn a_check_has_exactly_one_probe_and_its_defaults() {
    let c = check(&[("name", "web"), ("http", "http://127.0.0.1:8080/healthz")]).unwrap();
    assert_eq!(c.interval, std::time::Duration::from_secs(1));
    assert_eq!(c.timeout, c.interval, "timeout defaults to the interval");
    assert_eq!((c.rise, c.fall), (1, 1));
    let CheckKind::Http {
        status, tls_verify, ..
    } = c.kind
    else {
        panic!("{:?}", c.kind)
    };
    assert_eq!(status, [(200, 399)]);
    assert!(tls_verify);
    assert_eq!(
        check(&[("name", "x")]).unwrap_err(),
        ": no probe: give exactly one of script, icmp, tcp, http, https"
    );
    assert_eq!(
        check(&[("name", "x"), ("icmp", "10.0.0.1"), ("tcp", "10.0.0.1:80")]).unwrap_err(),
        "tcp: one probe per check: icmp and tcp are given (write one [[check]] each)"
    );
    assert_eq!(
        check(&[("http", "http://a/")]).unwrap_err(),
        "name: missing (the check's name)"
    );
    let every = [
        ("script", "/usr/local/bin/check-web --quick"),
        ("icmp", "2001:db8::1"),
        ("tcp", "[2001:db8::5]:5432"),
        ("http", "http://127.0.0.1/"),
        ("https", "https://127.0.0.1:8443/healthz"),
    ];
    for (k, v) in every {
        let c = check(&[("name", "c"), (k, v)]).unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(c.kind.key(), k);
    }
}

#[test]
fn check_errors_are_one_line_naming_the_key() {
    let base = [("name", "c"), ("http", "http://127.0.0.1/")];
    let with = |extra: &[(&str, &str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        check(&v).unwrap_err()
    };
    assert_eq!(
        with(&[("interval", "0.1"), ("timeout", "0.2")]),
        "timeout: 0.2 s is longer than the interval (0.1 s): a probe must end before the next \
         one starts"
    );
    assert_eq!(with(&[("rise", "0")]), "rise: 0 is out of range 1-1000000");
    assert_eq!(
        with(&[("fall", "-1")]),
        "fall: -1 is out of range 1-1000000"
    );
    assert_eq!(
        with(&[("interval", "0")]),
        "interval: 0 s is out of range 0.01-86400 s"
    );
    assert_eq!(
        with(&[("status", "99")]),
        "status[0]: \"99\" is not a status code (100-599) or a range FROM-TO of them"
    );
    assert_eq!(
        with(&[("status", "399-200")]),
        "status[0]: \"399-200\": the range is empty (399 > 200)"
    );
    assert_eq!(
        with(&[("user", "nobody")]),
        "user: is for script checks, not http"
    );
    assert_eq!(
        with(&[("tls_verify", "false")]),
        "tls_verify: is for https checks, not http"
    );
    let tcp = |extra: (&str, &str)| check(&[("name", "c"), ("tcp", "10.0.0.1:80"), extra]);
    assert_eq!(
        tcp(("status", "200")).unwrap_err(),
        "status: is for http/https checks, not tcp"
    );
    assert_eq!(
        tcp(("body_contains", "ok")).unwrap_err(),
        "body_contains: is for http/https checks, not tcp"
    );
    assert_eq!(
        check(&[("name", "c"), ("script", "check.sh")]).unwrap_err(),
        "script: \"check.sh\" is not an absolute path (commands run without a shell or PATH: \
         write /usr/local/bin/check.sh, say)"
    );
    assert_eq!(
        check(&[("name", "c"), ("tcp", "10.0.0.1")]).unwrap_err(),
        "tcp: \"10.0.0.1\" is not ADDR:PORT (IPv6: [ADDR]:PORT)"
    );
    assert_eq!(
        check(&[("name", "c"), ("https", "http://x/")]).unwrap_err(),
        "https: \"http://x/\" is not a https://HOST[:PORT]/PATH URL"
    );
    assert_eq!(
        check(&[("name", "c"), ("icmp", "nowhere")]).unwrap_err(),
        "icmp: \"nowhere\" is not an IP address"
    );
    // A status list of codes and ranges; one string is one status.
    let mut c = CheckInput::default();
    c.set_str("name", "c").unwrap();
    c.set_str("https", "https://h/").unwrap();
    c.set(
        "status",
        Value::List(vec![Value::Int(200), Value::Text("300-302".into())]),
    )
    .unwrap();
    let CheckKind::Http { status, .. } = c.build().unwrap().kind else {
        panic!()
    };
    assert_eq!(status, [(200, 200), (300, 302)]);
    c.set("status", Value::Text("204".into())).unwrap();
    assert_eq!(c.status, ["204"]);
}

#[test]
fn track_entries_parse_from_text_and_tables() {
    let spec = build(&[
        ("track", "check=web weight=-120"),
        ("track", "interface=eth1 weight=-50"),
        ("track", "file=/run/vrrp/prio"),
        ("track", "process=nginx"),
    ]);
    assert_eq!(
        spec.track,
        [
            TrackSpec {
                target: TrackTarget::Check("web".into()),
                weight: -120
            },
            TrackSpec {
                target: TrackTarget::Interface("eth1".into()),
                weight: -50
            },
            TrackSpec {
                target: TrackTarget::File("/run/vrrp/prio".into()),
                weight: 1
            },
            TrackSpec {
                target: TrackTarget::Process("nginx".into()),
                weight: 0
            },
        ],
        "a file's weight defaults to 1, the others' to 0"
    );
    let mut i = input(&[]);
    i.set(
        "track",
        Value::List(vec![Value::Table(vec![
            ("check".into(), Value::Text("web".into())),
            ("weight".into(), Value::Int(-10)),
        ])]),
    )
    .unwrap();
    assert_eq!(i.track, ["check=web weight=-10"]);
    let err = |v: Value| {
        let e = InstanceInput::default()
            .set("track", Value::List(vec![v]))
            .unwrap_err();
        format!("{}: {}", e.key, e.msg)
    };
    let table = |f: &[(&str, Value)]| {
        Value::Table(f.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    };
    assert_eq!(
        err(table(&[
            ("check", Value::Text("web".into())),
            ("weight", Value::Int(300))
        ])),
        "track[0].weight: 300 is out of range -254-254"
    );
    assert_eq!(
        err(table(&[("weight", Value::Int(-3))])),
        "track[0]: no target: give one of `check`, `interface`, `file`, `process`"
    );
    assert_eq!(
        err(table(&[
            ("check", Value::Text("a".into())),
            ("interface", Value::Text("eth1".into()))
        ])),
        "track[0].interface: one target per entry: this one already tracks check a (write two \
         entries)"
    );
    assert_eq!(
        err(table(&[("chek", Value::Text("a".into()))])),
        "track[0].chek: unknown field `chek` (did you mean `check`?)"
    );
    assert_eq!(
        err(table(&[("file", Value::Text("prio".into()))])),
        "track[0].file: \"prio\" is not an absolute path (write /run/vrrp/prio, say)"
    );
    assert_eq!(
        err(table(&[
            ("check", Value::Text("a".into())),
            ("weight", Value::Text("-3".into()))
        ])),
        "track[0].weight: invalid type: string \"-3\", expected an integer"
    );
}

#[test]
fn notify_commands_are_absolute() {
    let spec = build(&[
        ("notify", "/usr/local/bin/notify --all"),
        ("notify_master", "/bin/true"),
    ]);
    assert_eq!(
        spec.notify,
        NotifySpec {
            notify: Some("/usr/local/bin/notify --all".into()),
            master: Some("/bin/true".into()),
            ..NotifySpec::default()
        }
    );
    let e = input(&[("notify_fault", "logger fault")])
        .build(None)
        .unwrap_err();
    assert_eq!(e.key, "notify_fault");
    assert!(
        e.msg.starts_with("\"logger\" is not an absolute path"),
        "{}",
        e.msg
    );
}

fn group(name: &str, members: &[&str]) -> SyncGroupSpec {
    let mut g = SyncGroupInput::default();
    g.set_str("name", name).unwrap();
    for m in members {
        g.set_str("instances", m).unwrap();
    }
    g.build().unwrap()
}

#[test]
fn the_model_rules_across_tables() {
    let web = build(&[("name", "web"), ("track", "check=web-health weight=-10")]);
    let db = build(&[("name", "db"), ("vrid", "8"), ("vips", "10.0.0.2/24")]);
    let web_check = check(&[("name", "web-health"), ("tcp", "10.0.0.1:80")]).unwrap();
    let instances = [web.clone(), db.clone()];
    assert_eq!(
        check_model(&instances, std::slice::from_ref(&web_check), &[]),
        Ok(())
    );
    let (t, i, e) = check_model(&instances, &[], &[]).unwrap_err();
    assert_eq!((t, i), (Table::Instance, 0));
    assert_eq!(
        e.to_string(),
        "track[0].check: no [[check]] is named \"web-health\" (there are none)"
    );
    let other = check(&[("name", "web-helth"), ("tcp", "10.0.0.1:80")]).unwrap();
    let (_, _, e) = check_model(&instances, &[other], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "track[0].check: no [[check]] is named \"web-health\" (did you mean `web-helth`?)"
    );
    let (t, i, e) =
        check_model(&instances, &[web_check.clone(), web_check.clone()], &[]).unwrap_err();
    assert_eq!(
        (t, i, e.to_string()),
        (Table::Check, 1, "name: \"web-health\" is used twice".into())
    );
    let twice = build(&[
        ("name", "x"),
        ("track", "interface=eth1"),
        ("track", "interface=eth1 weight=-5"),
    ]);
    let (_, _, e) = check_model(&[twice], &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), "track[1]: interface eth1 is tracked twice");
    // Groups: members exist, one group per instance.
    let checks = [web_check];
    assert_eq!(
        check_model(&instances, &checks, &[group("g1", &["web", "db"])]),
        Ok(())
    );
    let (t, i, e) = check_model(&instances, &checks, &[group("g1", &["web", "dbx"])]).unwrap_err();
    assert_eq!((t, i), (Table::SyncGroup, 0));
    assert_eq!(
        e.to_string(),
        "instances[1]: no instance is named \"dbx\" (the instances are web, db)"
    );
    let (_, i, e) = check_model(
        &instances,
        &checks,
        &[group("g1", &["web"]), group("g2", &["db", "web"])],
    )
    .unwrap_err();
    assert_eq!(i, 1);
    assert_eq!(
        e.to_string(),
        "instances[1]: instance web is already in sync group g1 (an instance is in at most one \
         group)"
    );
    let mut g = SyncGroupInput::default();
    g.set_str("name", "g").unwrap();
    assert_eq!(
        g.build().unwrap_err().to_string(),
        "instances: missing: the names of the instances that move together"
    );
    g.set_list("instances", vec!["a".into(), "a".into()])
        .unwrap();
    assert_eq!(
        g.build().unwrap_err().to_string(),
        "instances[1]: \"a\" is listed twice"
    );
    g.set_list("instances", vec!["a".into()]).unwrap();
    g.set_str("notify_master", "to-master").unwrap();
    assert!(g
        .build()
        .unwrap_err()
        .to_string()
        .starts_with("notify_master: \"to-master\" is not an absolute path"));
}

#[test]
fn initial_priority_assumes_every_tracker_down() {
    let s = build(&[
        ("priority", "150"),
        ("track", "interface=eth1 weight=-50"),
        ("track", "interface=eth2 weight=20"),
        ("track", "file=/run/p weight=3"),
    ]);
    assert_eq!(s.initial_priority(), (100, false));
    let s = build(&[("priority", "20"), ("track", "interface=eth1 weight=-50")]);
    assert_eq!(s.initial_priority(), (1, false), "clamped to 1");
    let s = build(&[("priority", "150"), ("track", "process=nginx")]);
    assert_eq!(s.initial_priority(), (150, true), "weight 0 down: FAULT");
    assert!(
        s.describe()
            .contains("track=process nginx:0 priority_now=150 (FAULT"),
        "{}",
        s.describe()
    );
}
