//! Partition and heal: two agents on one LAN stop hearing each other (the switch drops VRRP
//! from both routers' ports, nftables family `bridge`), so both become Master. When the
//! partition heals, exactly one Master is left within one advert interval of the heal (the
//! lower priority's last advert is no later than that), and the winner sends a gratuitous ARP
//! (IPv4) / unsolicited NA (IPv6) once the two Masters resolve, captured on the client's port
//! (keepalived users miss it: #166, #1528). IPv4 and IPv6.
//!
//! Namespaces are unique per test and removed on drop (with the nftables table), also when an
//! assertion fails.
use std::time::Duration;

use vrrp_integration_tests::{
    lab::{pcap_summary, tail, tshark_fields, vip, Lab, LabAgent, Vr, BACKUP, MASTER},
    prober::realtime_ns,
};

const ADVERT_MS: u64 = 100;
const AGENT: LabAgent = LabAgent {
    bin: env!("CARGO_BIN_EXE_vrrp-agent-dut"),
    vrid: 54,
    advert_int: "0.1",
    // No delayed second burst and no refresh: every GARP/NA after the heal is the answer to
    // the other Master.
    extra: &["--garp-master-delay", "0", "--garp-master-refresh", "0"],
    launch: vrrp_integration_tests::lab::Launch::IpNetnsExec,
};
const T: Duration = Duration::from_secs(10);

#[track_caller]
fn wait(vr: &mut Vr, state: &str) {
    vr.wait_state(state, T).unwrap_or_else(|e| panic!("{e:#}"));
}

/// Drops VRRP (IP protocol 112, both families) that routers r1 and r2 send, on the bridge.
const PARTITION: &str = "table bridge partition {
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname { \"p-r1\", \"p-r2\" } ip protocol 112 drop
        iifname { \"p-r1\", \"p-r2\" } ip6 nexthdr 112 drop
    }
}
";

/// Partition/heal cycles; at least one must have r2 heard after the heal.
const CYCLES: usize = 4;

fn times(pcap: &std::path::Path, filter: &str) -> Vec<u64> {
    tshark_fields(pcap, filter, &["frame.time_epoch"])
        .unwrap()
        .iter()
        .map(|f| (f[0].parse::<f64>().unwrap() * 1e9) as u64)
        .collect()
}

fn partition_heal(tag: &str, v6: bool) {
    let lab = Lab::for_test(tag, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut r1 = AGENT.start(&lab, 1, 200, v6);
    wait(&mut r1, MASTER);
    // r2 advertises 5 times as often: after a heal, one of its adverts as Master usually
    // reaches r1 before r1's next advert reaches it (else r1 never learns there were two
    // Masters and has nothing to answer; such a cycle checks only the one-Master bound).
    let mut r2 = LabAgent {
        advert_int: "0.02",
        ..AGENT
    }
    .start(&lab, 2, 100, v6);
    wait(&mut r2, BACKUP);
    // Until r2 hears r1 its Master_Down_Interval is from its own 20 ms interval (RFC 9568
    // 6.4.2), shorter than r1's 100 ms: r2 may take over once at its start. The cycles count
    // from r2 having heard r1, Backup.
    r2.proc
        .wait_for_line(T, |l| {
            l.contains("new master") && l.contains("(priority 200")
        })
        .unwrap_or_else(|e| panic!("r2 never heard r1: {e:#}"));
    wait(&mut r2, BACKUP);
    let base = r2.transitions().len();
    let (client_filter, r2_filter) = if v6 {
        ("icmp6", "ip6 proto 112")
    } else {
        ("arp", "ip proto 112")
    };
    let client_cap = lab
        .capture(
            &lab.client.port,
            Some("out"),
            client_filter,
            &dir.path().join("client.pcap"),
        )
        .unwrap();
    let r2_cap = lab
        .capture_sent(2, r2_filter, &dir.path().join("r2.pcap"))
        .unwrap();

    // (partition, heal) instants, CLOCK_REALTIME as the captures' timestamps.
    let mut cycles = Vec::new();
    for c in 0..CYCLES {
        let part_ns = realtime_ns();
        lab.switch_nft(PARTITION).unwrap();
        r2.wait_transitions(base + 1 + 2 * c, T).unwrap();
        wait(&mut r2, MASTER);
        assert_eq!(
            r1.state().as_deref(),
            Some(MASTER),
            "r1 left MASTER in the partition"
        );
        // Both stay Master while partitioned: this sleep is the subject (2 advert intervals
        // of split brain), not a wait.
        std::thread::sleep(Duration::from_millis(2 * ADVERT_MS));
        let heal_ns = realtime_ns();
        lab.switch_nft("delete table bridge partition\n").unwrap();
        r2.wait_transitions(base + 2 + 2 * c, T).unwrap();
        wait(&mut r2, BACKUP);
        // The winner's burst completes; the next partition starts after it.
        std::thread::sleep(Duration::from_millis(3 * ADVERT_MS));
        cycles.push((part_ns, heal_ns));
    }
    let end_ns = realtime_ns();
    let client_pcap = client_cap.stop().unwrap();
    let r2_pcap = r2_cap.stop().unwrap();

    // r1 never moved; r2 went Master and back once per cycle.
    assert_eq!(
        r1.transitions(),
        vec![BACKUP.to_owned(), MASTER.to_owned()],
        "the higher priority must stay Master through partitions and heals:\n{}",
        tail(&r1.proc.output(), 20)
    );
    let mut want = vec![BACKUP.to_owned()];
    for _ in 0..CYCLES {
        want.extend([MASTER.to_owned(), BACKUP.to_owned()]);
    }
    let seen = r2.transitions();
    assert_eq!(seen[base - 1..], want, "{}", tail(&r2.proc.output(), 30));

    let r2_adverts = times(&r2_pcap, "vrrp.prio == 100");
    let vip = vip(v6).to_string();
    let announce = if v6 {
        format!("icmpv6.type == 136 && icmpv6.nd.na.target_address == {vip}")
    } else {
        format!("arp.src.proto_ipv4 == {vip} && arp.dst.proto_ipv4 == {vip}")
    };
    let announcements = times(&client_pcap, &announce);
    let mut heard = 0;
    for (c, (_, heal)) in cycles.iter().enumerate() {
        let next = cycles.get(c + 1).map_or(end_ns, |(p, _)| *p);
        let after: Vec<u64> = r2_adverts
            .iter()
            .copied()
            .filter(|t| (*heal..next).contains(t))
            .collect();
        // Exactly one Master within one advert interval of the heal: r2's last advert as
        // Master went out no later than that.
        if let Some(last) = after.last() {
            let ms = (last - heal) as f64 / 1e6;
            assert!(
                *last <= heal + ADVERT_MS * 1_000_000,
                "cycle {c}: two Masters {ms:.1} ms after the heal (more than one advert \
                 interval, {ADVERT_MS} ms):\n{}",
                pcap_summary(&r2_pcap, "")
            );
        }
        // r1 heard r2 as Master: it must announce the VIP to the client after that.
        if let Some(first) = after.first() {
            heard += 1;
            let n = announcements
                .iter()
                .filter(|t| (*first..next).contains(t))
                .count();
            println!(
                "v6={v6} cycle {c}: r2 advertised {} times after the heal (last {:.1} ms \
                 after it); {n} announcements of {vip} followed",
                after.len(),
                (after.last().unwrap() - heal) as f64 / 1e6
            );
            assert!(
                n > 0,
                "cycle {c}: no gratuitous ARP / unsolicited NA for {vip} reached the client \
                 after the two Masters met:\n{}",
                pcap_summary(&client_pcap, "")
            );
        } else {
            println!("v6={v6} cycle {c}: r2 heard r1 first after the heal (no answer due)");
        }
    }
    assert!(
        heard > 0,
        "in none of {CYCLES} heals did r2 advertise as Master after the heal: the answer \
         was never exercised"
    );
}

#[test]
fn partition_heal_v4() {
    partition_heal("pa4", false);
}

#[test]
fn partition_heal_v6() {
    partition_heal("pa6", true);
}
