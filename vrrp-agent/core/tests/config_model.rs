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
