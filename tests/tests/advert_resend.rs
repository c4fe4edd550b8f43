//! An advert the kernel has no room for is sent again at once, not an interval later.
//!
//! A full device queue or backlog makes `sendto` fail with `ENOBUFS`; three adverts lost in a
//! row are a takeover by the backup. Here nftables (family `netdev`, hook `egress` on the
//! master's interface, in its namespace) drops three of every four VRRP frames the master
//! sends, which `sendto` reports as `ENOBUFS`. Without resends the backup would hear one
//! advert in four (a 400 ms gap, longer than its 361 ms Master_Down_Interval) and take over
//! again and again; with them it hears one about every interval and stays Backup.
//!
//! Namespaces are unique per test and removed on drop (with the nftables table), also when an
//! assertion fails.
use std::time::Duration;

use vrrp_integration_tests::lab::{nft, tail, Lab, LabAgent, Vr, BACKUP, MASTER};

const AGENT: LabAgent = LabAgent {
    bin: env!("CARGO_BIN_EXE_vrrp-agent-dut"),
    vrid: 57,
    advert_int: "0.1",
    extra: &[],
    launch: vrrp_integration_tests::lab::Launch::IpNetnsExec,
};
const T: Duration = Duration::from_secs(10);

/// Drops three of every four VRRP frames leaving r1's eth0 (before the device: `sendto`
/// fails with `ENOBUFS`).
const LOSSY_EGRESS: &str = "table netdev resend {
    chain egress {
        type filter hook egress device \"eth0\" priority 0; policy accept;
        ip protocol 112 numgen inc mod 4 != 0 counter drop
    }
}
";

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

/// Packets the rule dropped (its counter).
fn dropped(ns: &vrrp_integration_tests::Netns) -> u64 {
    let out = ns
        .cmd("nft")
        .args(["list", "table", "netdev", "resend"])
        .output()
        .expect("nft list");
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text
        .split("counter packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok());
    n.unwrap_or_else(|| panic!("no counter in:\n{text}"))
}

#[test]
fn adverts_the_kernel_refuses_are_sent_again_and_the_backup_stays() {
    let lab = Lab::for_test("rs4", 2);
    let mut r1 = AGENT.start(&lab, 1, 200, false);
    wait(&mut r1, MASTER);
    let mut r2 = AGENT.start(&lab, 2, 100, false);
    wait(&mut r2, BACKUP);
    r2.proc
        .wait_for_line(T, |l| {
            l.contains("new master") && l.contains("(priority 200")
        })
        .unwrap_or_else(|e| panic!("r2 never heard r1: {e:#}"));
    let (r1_before, r2_before) = (r1.transitions(), r2.transitions());

    nft(&lab.r(1).ns, LOSSY_EGRESS).unwrap();
    // The subject: 30 advert intervals of a master whose sends fail three times in four.
    std::thread::sleep(Duration::from_secs(3));
    let drops = dropped(&lab.r(1).ns);
    nft(&lab.r(1).ns, "delete table netdev resend\n").unwrap();

    let refused = r1
        .proc
        .output()
        .lines()
        .filter(|l| l.contains("No buffer space available"))
        .count();
    println!("egress dropped {drops} adverts; r1 logged {refused} refused sends");
    assert!(
        drops >= 20,
        "the egress rule dropped only {drops} adverts in 3 s: the loss did not happen"
    );
    assert!(
        refused as u64 >= drops,
        "r1 logged {refused} refused sends for {drops} drops: sendto did not report them:\n{}",
        tail(&r1.proc.output(), 20)
    );
    assert_eq!(
        r2.transitions(),
        r2_before,
        "r2 took over while r1 was alive: the refused adverts were not sent again in time:\n{}",
        tail(&r2.proc.output(), 20)
    );
    assert_eq!(
        r1.transitions(),
        r1_before,
        "{}",
        tail(&r1.proc.output(), 20)
    );
}
