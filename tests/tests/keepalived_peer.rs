//! The agent against a real peer: keepalived (Debian's package) in one network namespace sends
//! VRRP adverts over a veth; the agent, attached with XDP in the other namespace, must report
//! them with the right version, VRID, priority, interval, addresses and source, then detach
//! cleanly on SIGTERM.
//!
//! Namespaces are unique per test and removed on drop, also when an assertion fails.
use std::time::Duration;

use vrrp_integration_tests::{keepalived, require_root, veth, Netns, Proc};

struct Lab {
    agent: Proc,
    _ka: Proc,
    agent_ns: Netns,
    ka_ns: Netns,
}

/// A keepalived peer in its own namespace (keepalived sends from the interface's own MAC unless
/// `use_vmac` is set, so adverts are checked against ka0's MAC) and the agent watching `vrid` on the other end.
fn lab(tag: &str, ka_conf: &str, vrid: u8) -> Lab {
    require_root();
    let agent_ns = Netns::new(&format!("{tag}-ag")).unwrap();
    let ka_ns = Netns::new(&format!("{tag}-ka")).unwrap();
    veth(
        &agent_ns,
        "ag0",
        &["10.201.0.1/24"],
        &ka_ns,
        "ka0",
        &["10.201.0.2/24"],
    )
    .unwrap();
    let mut cmd = agent_ns.cmd(env!("CARGO_BIN_EXE_vrrp-agent-dut"));
    cmd.args(["run", "--iface", "ag0", "--vrid", &vrid.to_string()])
        .env("RUST_LOG", "info");
    let mut agent = Proc::spawn(cmd, "vrrp-agent").unwrap();
    agent
        .wait_for_line(Duration::from_secs(10), |l| {
            l.contains("XDP attached to ag0")
        })
        .unwrap();
    let ka = keepalived(&ka_ns, ka_conf).unwrap();
    Lab {
        agent,
        _ka: ka,
        agent_ns,
        ka_ns,
    }
}

impl Lab {
    /// Waits until `n` advert lines containing every one of `fields` were logged.
    fn expect_adverts(&mut self, n: usize, fields: &[&str], timeout: Duration) {
        let peer_mac = format!("mac={}", self.ka_ns.mac("ka0").unwrap());
        self.agent
            .wait_for_output(timeout, |out| {
                let matching = out
                    .lines()
                    .filter(|l| {
                        l.contains(" advert ")
                            && l.contains(&peer_mac)
                            && fields.iter().all(|f| l.contains(f))
                    })
                    .count();
                (matching >= n).then_some(())
            })
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            !self.agent.output().contains("invalid ("),
            "an advert from keepalived did not decode:\n{}",
            self.agent.output()
        );
    }

    /// SIGTERM → clean exit, counters printed, XDP detached.
    fn stop_and_check(mut self) {
        let code = self
            .agent
            .stop(libc::SIGTERM, Duration::from_secs(10))
            .unwrap();
        let out = self.agent.output();
        assert_eq!(code, Some(0), "agent exit code; output:\n{out}");
        let counters = out
            .lines()
            .find(|l| l.contains("XDP detached from ag0; counters:"))
            .unwrap_or_else(|| panic!("no counters line:\n{out}"));
        let to_user: u64 = counters
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("vrrp_to_user="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no vrrp_to_user in {counters}"));
        let logged = out.lines().filter(|l| l.contains(" advert ")).count() as u64;
        assert!(
            to_user >= logged && logged > 0,
            "{counters} vs {logged} logged"
        );
        let link = self.agent_ns.ip(&["link", "show", "dev", "ag0"]).unwrap();
        let link = String::from_utf8_lossy(&link.stdout);
        assert!(
            !link.contains("xdp"),
            "XDP still attached after exit: {link}"
        );
    }
}

#[test]
fn keepalived_v3_ipv4_adverts_reach_the_agent() {
    let conf = r#"
global_defs {
    router_id ka_peer
    vrrp_version 3
}
vrrp_instance V4 {
    state BACKUP
    interface ka0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    virtual_ipaddress {
        10.201.0.100/24
    }
}
"#;
    let mut lab = lab("ka3v4", conf, 51);
    lab.expect_adverts(
        5,
        &[
            "version=3",
            "vrid=51",
            "priority=150",
            "interval_cs=10",
            "addrs=10.201.0.100 ",
            "src=10.201.0.2 ",
            "dst=224.0.0.18 ",
            "ttl=255",
        ],
        Duration::from_secs(15),
    );
    lab.stop_and_check();
}

#[test]
fn keepalived_v2_pass_auth_adverts_reach_the_agent() {
    let conf = r#"
global_defs {
    router_id ka_peer
    vrrp_version 2
}
vrrp_instance V2 {
    state MASTER
    interface ka0
    virtual_router_id 12
    priority 201
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        10.201.0.12/24
        10.201.0.13/24
    }
}
"#;
    let mut lab = lab("ka2", conf, 12);
    lab.expect_adverts(
        2,
        &[
            "version=2",
            "vrid=12",
            "priority=201",
            "interval_cs=100",
            "addrs=10.201.0.12,10.201.0.13 ",
            "src=10.201.0.2 ",
        ],
        Duration::from_secs(15),
    );
    lab.stop_and_check();
}

#[test]
fn keepalived_v3_ipv6_adverts_reach_the_agent() {
    let conf = r#"
global_defs {
    router_id ka_peer
    vrrp_version 3
}
vrrp_instance V6 {
    state MASTER
    interface ka0
    virtual_router_id 61
    priority 120
    advert_int 0.2
    virtual_ipaddress {
        2001:db8:201::100/64
    }
}
"#;
    let mut lab = lab("ka3v6", conf, 61);
    lab.expect_adverts(
        3,
        &[
            "version=3",
            "vrid=61",
            "priority=120",
            "interval_cs=20",
            "addrs=2001:db8:201::100 ",
            "src=fe80::",
            "dst=ff02::12 ",
            "ttl=255",
        ],
        Duration::from_secs(15),
    );
    lab.stop_and_check();
}
