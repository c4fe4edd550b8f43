//! The deploy files (deploy/, issue 10): the systemd unit passes `systemd-analyze verify` and
//! has the fields operators rely on; the Kubernetes manifests parse and carry hostNetwork, the
//! capabilities, bpffs, a grace period above the handover, readiness from `status`, the config
//! from a ConfigMap and the per-node priority (the DaemonSet's start script is run with the
//! agent's `check-config` in place of `run`); the Containerfile's stages run the project's own
//! setup and build and start the agent under tini. Building the image needs a container
//! builder and registry access (see README "Deploy"); these tests check the file's steps.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_yaml_ng::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_vrrp-agent-dut");
/// What a SIGTERM handover may take at most, with room for notify_stop scripts: the stop
/// bounds must be above it.
const HANDOVER_S: u64 = 10;
const CAPS: [&str; 5] = ["BPF", "NET_ADMIN", "NET_RAW", "SYS_NICE", "IPC_LOCK"];

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(deploy(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---- systemd ---------------------------------------------------------------------------------

/// `systemd-analyze verify` on `unit` (a file): its stderr (empty when clean) and status.
fn verify(unit: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("systemd-analyze (Debian package systemd; `cargo xtask setup --test-peers`)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The unit's `Key=value` lines (a key written several times keeps every value).
fn unit_keys(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in unit.lines().map(str::trim) {
        if l.starts_with(['#', ';', '[']) || l.is_empty() {
            continue;
        }
        let (k, v) = l.split_once('=').expect("Key=value");
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    m
}

fn secs(v: &str) -> u64 {
    v.strip_suffix('s')
        .unwrap_or(v)
        .parse()
        .unwrap_or_else(|_| panic!("{v}: seconds"))
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = read("systemd/vrrp-agent.service");
    // verify checks that every Exec path is executable: the unit as installed, with the
    // agent's /usr/sbin path pointing at the built agent.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("vrrp-agent.service");
    std::fs::write(&copy, unit.replace("/usr/sbin/vrrp-agent", AGENT)).unwrap();
    let (ok, err) = verify(&copy);
    assert!(ok && err.trim().is_empty(), "systemd-analyze verify: {err}");
    // The check can fail: a bad value is reported (systemd only warns, on stderr).
    let broken = dir.path().join("broken.service");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&copy)
            .unwrap()
            .replace("Type=notify", "Type=notfy"),
    )
    .unwrap();
    let (_, err) = verify(&broken);
    assert!(err.contains("notfy"), "a broken unit passed: {err}");
}

#[test]
fn systemd_unit_has_the_operator_fields() {
    let k = unit_keys(&read("systemd/vrrp-agent.service"));
    let one = |key: &str| -> &str {
        let v = k.get(key).unwrap_or_else(|| panic!("no {key}="));
        assert_eq!(v.len(), 1, "{key} written {} times", v.len());
        &v[0]
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(
        one("ExecStartPre"),
        "/usr/sbin/vrrp-agent check-config /etc/vrrp-agent/vrrp-agent.toml"
    );
    assert_eq!(
        one("ExecStart"),
        "/usr/sbin/vrrp-agent run --config /etc/vrrp-agent/vrrp-agent.toml"
    );
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(one("Restart"), "on-failure");
    assert!(secs(one("TimeoutStopSec")) > HANDOVER_S);
    assert_eq!(one("RuntimeDirectory"), "vrrp-agent");
    assert_eq!(one("ProtectSystem"), "strict");
    for key in ["AmbientCapabilities", "CapabilityBoundingSet"] {
        let caps: Vec<&str> = one(key).split_whitespace().collect();
        for c in CAPS {
            assert!(
                caps.contains(&format!("CAP_{c}").as_str()),
                "{key} lacks CAP_{c}"
            );
        }
    }
    // What the hardening must not take away: bpf(2) and netlink/packet sockets, real time.
    let fams = one("RestrictAddressFamilies");
    for f in ["AF_NETLINK", "AF_PACKET", "AF_INET", "AF_INET6", "AF_UNIX"] {
        assert!(fams.contains(f), "RestrictAddressFamilies lacks {f}");
    }
    assert!(
        !k.contains_key("SystemCallFilter"),
        "a syscall filter must allow bpf(2)"
    );
    assert_eq!(one("RestrictRealtime"), "no");
    assert!(
        !k.contains_key("ProtectKernelTunables"),
        "it makes /sys/fs/bpf read-only"
    );
}

#[test]
fn systemd_units_commands_are_accepted_by_the_agent() {
    // ExecStartPre for real on a sample config; ExecStart's flags through the CLI parser.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vrrp-agent.toml");
    std::fs::write(
        &file,
        "[[instance]]\ninterface = \"eth0\"\nvrid = 51\npriority = ${VRRP_PRIORITY}\nvips = [\"192.0.2.1/24\"]\n",
    )
    .unwrap();
    let out = Command::new(AGENT)
        .arg("check-config")
        .arg(&file)
        .env("VRRP_PRIORITY", "120")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = unit_keys(&read("systemd/vrrp-agent.service"));
    for key in ["ExecStartPre", "ExecStart"] {
        let argv: Vec<String> = unit[key][0]
            .split_whitespace()
            .map(|a| a.replace("/usr/sbin/", ""))
            .collect();
        vrrp_agent::cli::parse_from(&argv).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

// ---- Kubernetes ------------------------------------------------------------------------------

fn docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
}

fn strs(v: &Value) -> Vec<&str> {
    list(v).iter().map(|e| e.as_str().unwrap()).collect()
}

/// The checks common to the DaemonSet's and the static pod's pod spec; the agent container.
fn check_pod_spec(spec: &Value) -> &Value {
    assert_eq!(spec["hostNetwork"], true);
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > HANDOVER_S, "terminationGracePeriodSeconds {grace}");
    let c = list(&spec["containers"])
        .iter()
        .find(|c| c["name"] == "vrrp-agent")
        .expect("a vrrp-agent container");
    let sc = &c["securityContext"];
    if sc["privileged"] != true {
        let add = strs(&sc["capabilities"]["add"]);
        for cap in CAPS {
            assert!(add.contains(&cap), "capabilities.add lacks {cap}");
        }
    }
    assert_eq!(
        strs(&c["readinessProbe"]["exec"]["command"]),
        ["/usr/sbin/vrrp-agent", "status"]
    );
    // /sys/fs/bpf from the host, at /sys/fs/bpf.
    let vols = list(&spec["volumes"]);
    let bpf = vols
        .iter()
        .find(|v| v["hostPath"]["path"] == "/sys/fs/bpf")
        .expect("a hostPath volume /sys/fs/bpf");
    let mounted = list(&c["volumeMounts"])
        .iter()
        .any(|m| m["name"] == bpf["name"] && m["mountPath"] == "/sys/fs/bpf");
    assert!(mounted, "bpffs not mounted at /sys/fs/bpf");
    c
}

#[test]
fn daemonset_has_the_fields_and_its_config_parses() {
    let d = docs("kubernetes/daemonset.yaml");
    let ds = kind(&d, "DaemonSet", "vrrp-agent");
    let spec = &ds["spec"]["template"]["spec"];
    let c = check_pod_spec(spec);
    // The config from a ConfigMap, mounted where the agent reads it.
    let cm_vol = list(&spec["volumes"])
        .iter()
        .find(|v| v["configMap"]["name"] == "vrrp-agent")
        .expect("a configMap volume vrrp-agent");
    let m = list(&c["volumeMounts"])
        .iter()
        .find(|m| m["name"] == cm_vol["name"])
        .unwrap();
    assert_eq!(m["mountPath"], "/etc/vrrp-agent/vrrp-agent.toml");
    let toml = kind(&d, "ConfigMap", "vrrp-agent")["data"]["vrrp-agent.toml"]
        .as_str()
        .unwrap();
    assert!(toml.contains("priority = ${VRRP_PRIORITY"), "{toml}");
    let cfg = vrrp_agent::config::parse_str_with_env(toml, Path::new("configmap"), |n| {
        (n == "VRRP_PRIORITY").then(|| "150".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.instances[0].priority, 150);
    // The node name from the downward API.
    let env = list(&c["env"]);
    assert!(env
        .iter()
        .any(|e| e["name"] == "VRRP_NODE"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"));
}

/// Runs the DaemonSet's start script as the pod would, with the priorities ConfigMap mounted
/// (its data as files) and the agent's `check-config` in place of `run`: the node's priority
/// reaches the agent; a node not listed takes the file's default; an explicit env wins.
#[test]
fn daemonset_start_script_gives_each_node_its_priority() {
    let d = docs("kubernetes/daemonset.yaml");
    let ds = kind(&d, "DaemonSet", "vrrp-agent");
    let c = &list(&ds["spec"]["template"]["spec"]["containers"])[0];
    let cmd = strs(&c["command"]);
    assert_eq!(cmd, ["/usr/bin/tini", "--", "/bin/sh", "-c"]);
    let script = list(&c["args"])[0].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prio_dir = dir.path().join("priorities");
    std::fs::create_dir(&prio_dir).unwrap();
    let data = kind(&d, "ConfigMap", "vrrp-agent-priorities")["data"]
        .as_mapping()
        .unwrap();
    for (node, prio) in data {
        std::fs::write(
            prio_dir.join(node.as_str().unwrap()),
            prio.as_str().unwrap(),
        )
        .unwrap();
    }
    let conf = dir.path().join("vrrp-agent.toml");
    std::fs::write(
        &conf,
        kind(&d, "ConfigMap", "vrrp-agent")["data"]["vrrp-agent.toml"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let exec = "exec /usr/sbin/vrrp-agent run --config /etc/vrrp-agent/vrrp-agent.toml";
    assert!(script.contains(exec), "{script}");
    let script = script
        .replace(
            exec,
            &format!("exec {AGENT} check-config {}", conf.display()),
        )
        .replace("/etc/vrrp-agent/priorities", prio_dir.to_str().unwrap());
    let run = |node: &str, prio: Option<&str>| {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(&script)
            .env("VRRP_NODE", node)
            .env_remove("VRRP_PRIORITY");
        if let Some(p) = prio {
            c.env("VRRP_PRIORITY", p);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.split_whitespace()
            .find_map(|w| w.strip_prefix("priority="))
            .unwrap_or_else(|| panic!("no priority= in {s}"))
            .to_string()
    };
    let (first, p) = data.iter().next().unwrap();
    assert_eq!(run(first.as_str().unwrap(), None), p.as_str().unwrap());
    assert_eq!(run("not-listed", None), "100");
    assert_eq!(run(first.as_str().unwrap(), Some("42")), "42");
}

#[test]
fn static_pod_has_the_fields() {
    let d = docs("kubernetes/static-pod.yaml");
    assert_eq!(d.len(), 1);
    let pod = kind(&d, "Pod", "vrrp-agent");
    assert_eq!(pod["metadata"]["namespace"], "kube-system");
    let c = check_pod_spec(&pod["spec"]);
    assert!(list(&c["env"]).iter().any(|e| e["name"] == "VRRP_PRIORITY"));
    let args = strs(&c["args"]);
    assert_eq!(args, ["run", "--config", "/etc/vrrp-agent/vrrp-agent.toml"]);
    vrrp_agent::cli::parse_from(std::iter::once("vrrp-agent").chain(args)).unwrap();
}

// ---- Containerfile ---------------------------------------------------------------------------

/// The instructions of a Containerfile: (INSTRUCTION, arguments), continuations joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in text.lines() {
        let t = l.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur += head;
            cur.push(' ');
            continue;
        }
        cur += t;
        let (i, a) = cur.split_once(' ').unwrap_or((&cur, ""));
        out.push((i.to_uppercase(), a.trim().to_string()));
        cur.clear();
    }
    out
}

/// `ins` with the `${NAME}` of each `FROM` replaced by the default of its `ARG NAME=default`
/// before the first `FROM` (what a build without `--build-arg` uses); those `ARG`s dropped.
fn with_default_args(ins: Vec<(String, String)>) -> Vec<(String, String)> {
    let first = ins.iter().position(|(i, _)| i == "FROM").expect("a FROM");
    let args: Vec<(String, String)> = ins[..first]
        .iter()
        .map(|(i, a)| {
            assert_eq!(i, "ARG", "only ARGs before the first FROM");
            let (k, v) = a.split_once('=').expect("ARG NAME=default");
            (format!("${{{k}}}"), v.to_string())
        })
        .collect();
    ins.into_iter()
        .skip(first)
        .map(|(i, mut a)| {
            if i == "FROM" {
                for (k, v) in &args {
                    a = a.replace(k, v);
                }
            }
            (i, a)
        })
        .collect()
}

#[test]
fn containerfile_builds_with_the_projects_own_steps() {
    let ins = with_default_args(instructions(&read("container/Containerfile")));
    let stages: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(stages.len(), 2, "builder + runtime");
    let (builder, runtime) = (&ins[stages[0]..stages[1]], &ins[stages[1]..]);
    assert!(builder[0].1.ends_with(" AS builder"), "{:?}", builder[0]);
    assert!(
        builder[0].1.contains("bookworm"),
        "the builder must be Debian bookworm (setup's packages)"
    );
    let runs: Vec<&str> = builder
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        runs.iter().any(|r| r.contains("cargo xtask setup")),
        "{runs:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains("cargo xtask build --release")),
        "{runs:?}"
    );
    // Every builder command is the project's own, apt-get update, or installing the result.
    for r in &runs {
        for step in r.split("&&").map(str::trim) {
            assert!(
                step.starts_with("cargo xtask ")
                    || step == "apt-get update"
                    || step.starts_with("install -D -m 0755 target/release/vrrp-agent "),
                "builder step not the project's own: {step}"
            );
        }
    }
    // Those are real xtask commands with these flags.
    for sub in [
        &["setup", "--help"][..],
        &["build", "--release", "--help"][..],
    ] {
        let out = Command::new(env!("CARGO"))
            .args(["xtask"])
            .args(sub)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo xtask {sub:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Runtime: small base, tini as PID 1 running the agent, the binary from the builder.
    assert_eq!(runtime[0].1, "docker.io/library/debian:bookworm-slim");
    let apt = runtime
        .iter()
        .find(|(i, a)| i == "RUN" && a.contains("apt-get install"))
        .expect("apt-get install in the runtime stage");
    assert!(apt.1.contains("tini") && apt.1.contains("rm -rf /var/lib/apt/lists"));
    assert!(runtime.iter().any(|(i, a)| i == "COPY"
        && a.starts_with("--from=builder ")
        && a.ends_with(" /usr/sbin/vrrp-agent")));
    let entry = runtime.iter().find(|(i, _)| i == "ENTRYPOINT").unwrap();
    let entry: Vec<String> = serde_json::from_str(&entry.1).unwrap();
    assert_eq!(entry, ["/usr/bin/tini", "--", "/usr/sbin/vrrp-agent"]);
    let cmd = runtime.iter().find(|(i, _)| i == "CMD").unwrap();
    let cmd: Vec<String> = serde_json::from_str(&cmd.1).unwrap();
    vrrp_agent::cli::parse_from(std::iter::once("vrrp-agent".to_string()).chain(cmd)).unwrap();
    // The build context leaves out the build outputs.
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.containerignore"))
            .unwrap();
    for p in ["target/", ".toolchain/"] {
        assert!(ignore.lines().any(|l| l == p), ".containerignore lacks {p}");
    }
}
