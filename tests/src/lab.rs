//! A failover lab in network namespaces: one LAN (a Linux bridge inside a "switch" namespace),
//! routers `r1`, `r2` (optionally `r3`) and a client `c`.
//!
//! ```text
//!            switch namespace: br0 (STP off, multicast snooping off)
//!        p-r1        p-r2        p-r3        p-c          <- bridge ports (switch side)
//!         |           |           |           |
//!   r1:eth0     r2:eth0     r3:eth0      c:eth0           <- one namespace each
//!   10.210.0.1  10.210.0.2  10.210.0.3   10.210.0.10      VIP 10.210.0.100
//!   fd00:210::1 fd00:210::2 fd00:210::3  fd00:210::10     VIP fd00:210::100
//! ```
//!
//! Every namespace is a [`Netns`] (unique name, removed with its processes on drop, also when a
//! test panics); nothing is created in the root namespace. A "link cut" sets the router's bridge
//! port down on the switch side, so the router loses carrier as with a pulled cable.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::{keepalived, veth, Netns, Proc};

pub const VIP4: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 100);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x210, 0, 0, 0, 0, 0, 0x100);
pub const PREFIX4: u8 = 24;
pub const PREFIX6: u8 = 64;
/// Interface name inside every router and the client.
pub const IFACE: &str = "eth0";

/// The IPv4 VRRP virtual MAC 00:00:5e:00:01:VRID (lower case, as `ip` prints it).
pub fn vmac4(vrid: u8) -> String {
    format!("00:00:5e:00:01:{vrid:02x}")
}

/// The IPv6 VRRP virtual MAC 00:00:5e:00:02:VRID.
pub fn vmac6(vrid: u8) -> String {
    format!("00:00:5e:00:02:{vrid:02x}")
}

/// How an agent is started in a router's namespace (see [`Lab::agent_with`]): the ways a user
/// can, each of which the fail-safe must survive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// `ip netns exec NS BIN ...`: the network namespace plus a private mount namespace with a
    /// fresh `/sys` (of that namespace) and no bpffs at `/sys/fs/bpf`. The lab's default.
    IpNetnsExec,
    /// `nsenter --net=/run/netns/NS -- BIN ...`: the network namespace only; the mount namespace
    /// and `/sys` stay the host's (where `/sys/class/net/eth0` is the host's eth0), as under
    /// systemd's `NetworkNamespacePath=`.
    NsenterNet,
    /// A container: `unshare --mount --pid --fork --mount-proc` (its own PID and mount
    /// namespaces), then `nsenter --net` and a fresh sysfs on `/sys`. `host_bpffs: None`: a
    /// private bpffs on `/sys/fs/bpf` (dies with the container); `Some(dir)`: `dir` (a bpffs the
    /// test mounted, standing for the host's) bind-mounted there, as a pod that mounts the
    /// host's `/sys/fs/bpf`. SIGKILL to the process kills the container (`--kill-child`).
    Container { host_bpffs: Option<PathBuf> },
}

impl Launch {
    /// The command that runs `bin` in `ns` this way (arguments to be appended).
    pub fn command(&self, ns: &Netns, bin: &Path) -> std::process::Command {
        let net = format!("--net={}", ns.path().display());
        let mut c = self.command_bare(ns, bin, &net);
        c.env(crate::CONTROL_SOCKET_ENV, ns.control_socket());
        c
    }

    fn command_bare(&self, ns: &Netns, bin: &Path, net: &str) -> std::process::Command {
        match self {
            Launch::IpNetnsExec => ns.cmd(bin),
            Launch::NsenterNet => {
                let mut c = std::process::Command::new("nsenter");
                c.arg(net).arg("--").arg(bin);
                c
            }
            Launch::Container { host_bpffs } => {
                let bpffs = match host_bpffs {
                    None => "mount -t bpf bpf /sys/fs/bpf".to_owned(),
                    Some(dir) => format!("mount --bind '{}' /sys/fs/bpf", dir.display()),
                };
                let mut c = std::process::Command::new("unshare");
                c.args([
                    "--mount",
                    "--propagation",
                    "private",
                    "--pid",
                    "--fork",
                    "--kill-child=SIGKILL",
                    "--mount-proc",
                    "--",
                    "nsenter",
                    net,
                    "--",
                    "sh",
                    "-c",
                    &format!("set -e; mount -t sysfs sysfs /sys; {bpffs}; exec \"$@\""),
                    "sh",
                ])
                .arg(bin);
                c
            }
        }
    }
}

/// A bpffs mounted on a temporary directory of the test's own (unmounted and removed on drop,
/// also when the test fails): what a host's `/sys/fs/bpf` is to a container.
pub struct BpffsMount {
    dir: Option<tempfile::TempDir>,
}

impl BpffsMount {
    pub fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        crate::run(
            std::process::Command::new("mount")
                .args(["-t", "bpf", "bpf"])
                .arg(dir.path()),
        )?;
        Ok(Self { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("mounted").path()
    }
}

impl Drop for BpffsMount {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
                .expect("no NUL in a temp path");
            // SAFETY: a valid path; MNT_DETACH also when something still holds it.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            drop(dir);
        }
    }
}

/// One host on the LAN.
#[derive(Debug)]
pub struct Node {
    /// `r1`, `r2`, `r3` or `c`.
    pub name: String,
    pub ns: Netns,
    /// Interface inside the node's namespace (always [`IFACE`]).
    pub iface: String,
    /// Its bridge port in the switch namespace (`p-<name>`).
    pub port: String,
    pub ip4: Ipv4Addr,
    pub ip6: Ipv6Addr,
    /// MAC of [`Node::iface`], lower case.
    pub mac: String,
}

impl Node {
    /// Operational state of the node's interface (`UP`, `DOWN`, `LOWERLAYERDOWN`...).
    pub fn operstate(&self) -> Result<String> {
        let out = self.ns.ip(&["-br", "link", "show", "dev", &self.iface])?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.split_whitespace().nth(1).unwrap_or("").to_owned())
    }

    /// Waits (bounded) until the interface is operationally up.
    pub fn wait_oper_up(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.operstate()?;
            if state == "UP" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: {} is {state}, not UP, after {timeout:?}",
                    self.name,
                    self.iface
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The lab: switch, routers, client. Dropping it removes every namespace (and so every process
/// started in them); drop [`Proc`]s first if their logs are still wanted.
#[derive(Debug)]
pub struct Lab {
    pub switch: Netns,
    pub routers: Vec<Node>,
    pub client: Node,
}

impl Lab {
    /// Builds the lab with `n_routers` routers (1..=3). `tag` goes into the namespace names.
    pub fn new(tag: &str, n_routers: usize) -> Result<Self> {
        if !(1..=3).contains(&n_routers) {
            bail!("the lab has 1 to 3 routers, not {n_routers}");
        }
        let switch = Netns::new(&format!("{tag}-sw"))?;
        switch.ip(&["link", "add", "br0", "type", "bridge", "stp_state", "0"])?;
        switch.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        let mut hosts: Vec<(String, u8)> = (1..=n_routers)
            .map(|i| (format!("r{i}"), i as u8))
            .collect();
        hosts.push(("c".to_owned(), 10));
        let mut nodes = Vec::new();
        for (name, host) in hosts {
            let ns = Netns::new(&format!("{tag}-{name}"))?;
            let ip4 = Ipv4Addr::new(10, 210, 0, host);
            let ip6 = Ipv6Addr::new(0xfd00, 0x210, 0, 0, 0, 0, 0, u16::from(host));
            let port = format!("p-{name}");
            veth(
                &ns,
                IFACE,
                &[&format!("{ip4}/{PREFIX4}"), &format!("{ip6}/{PREFIX6}")],
                &switch,
                &port,
                &[],
            )?;
            switch.ip(&["link", "set", &port, "master", "br0"])?;
            let mac = ns.mac(IFACE)?.to_lowercase();
            nodes.push(Node {
                name,
                ns,
                iface: IFACE.to_owned(),
                port,
                ip4,
                ip6,
                mac,
            });
        }
        let client = nodes.pop().expect("client node");
        let lab = Self {
            switch,
            routers: nodes,
            client,
        };
        // Carrier and operstate change asynchronously (linkwatch): hand over a lab whose links
        // are all up, so that nothing starts in a transient link-down.
        for node in lab.routers.iter().chain([&lab.client]) {
            node.wait_oper_up(Duration::from_secs(5))?;
        }
        Ok(lab)
    }

    /// [`Lab::new`] for a test: fails unless run as root ([`crate::require_root`]), panics with
    /// the reason when the lab cannot be built.
    pub fn for_test(tag: &str, n_routers: usize) -> Self {
        crate::require_root();
        Self::new(tag, n_routers).unwrap_or_else(|e| panic!("lab: {e:#}"))
    }

    /// Router `n`, 1-based (`r(1)` is r1).
    pub fn r(&self, n: usize) -> &Node {
        &self.routers[n - 1]
    }

    /// Starts `bin run --iface eth0 ARGS...` on router `n` with `RUST_LOG=info` and waits
    /// (bounded) until it logs `XDP attached to eth0`. `instance` is the instance name its state
    /// lines use (`vrid<N>` / `vrid<N>-v6` by default). Started with `ip netns exec`, as
    /// [`Lab::agent_with`] and [`Launch::IpNetnsExec`].
    pub fn agent(
        &self,
        n: usize,
        bin: &Path,
        args: &[impl AsRef<std::ffi::OsStr>],
        instance: &str,
    ) -> Result<Vr> {
        self.agent_with(n, bin, args, instance, &Launch::IpNetnsExec)
    }

    /// [`Lab::agent`], started the way `launch` says.
    pub fn agent_with(
        &self,
        n: usize,
        bin: &Path,
        args: &[impl AsRef<std::ffi::OsStr>],
        instance: &str,
        launch: &Launch,
    ) -> Result<Vr> {
        let node = self.r(n);
        let mut cmd = launch.command(&node.ns, bin);
        // VRRP_LAB_AGENT_LOG: another filter for a bench's diagnosis (e.g. the timer's
        // late wake-ups, `info,vrrp_agent::timer=debug`); the state lines stay at info.
        let filter = std::env::var("VRRP_LAB_AGENT_LOG").unwrap_or_else(|_| "info".into());
        cmd.args(["run", "--iface", &node.iface])
            .args(args)
            .env("RUST_LOG", filter);
        let mut proc = Proc::spawn(cmd, &format!("vrrp-agent on {}", node.name))?;
        proc.wait_for_line(Duration::from_secs(15), |l| {
            l.contains(&format!("XDP attached to {}", node.iface))
        })?;
        Ok(Vr {
            proc,
            kind: VrKind::Agent,
            instance: instance.to_owned(),
            node: node.name.clone(),
        })
    }

    /// Starts `bin run --config FILE` on router `n` (FILE holds `toml`, kept with the process)
    /// with `RUST_LOG=info` and waits (bounded) until it logs `XDP attached to eth0`.
    /// `instance` is the name its state lines use.
    pub fn agent_config(&self, n: usize, bin: &Path, toml: &str, instance: &str) -> Result<Vr> {
        self.agent_config_env(n, bin, toml, instance, &[])
    }

    /// [`Lab::agent_config`] with environment variables set (`Some`) or removed (`None`) for
    /// the agent (the file's `${NAME}`).
    pub fn agent_config_env(
        &self,
        n: usize,
        bin: &Path,
        toml: &str,
        instance: &str,
        env: &[(&str, Option<&str>)],
    ) -> Result<Vr> {
        let node = self.r(n);
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("vrrp-agent.toml");
        std::fs::write(&file, toml)?;
        let mut cmd = node.ns.cmd(bin);
        cmd.arg("run")
            .arg("--config")
            .arg(&file)
            // As in `agent_with`: VRRP_LAB_AGENT_LOG sets another filter for a diagnosis.
            .env(
                "RUST_LOG",
                std::env::var("VRRP_LAB_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            );
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut proc = Proc::spawn_in(dir, cmd, &format!("vrrp-agent on {}", node.name))?;
        proc.wait_for_line(Duration::from_secs(15), |l| {
            l.contains(&format!("XDP attached to {}", node.iface))
        })?;
        Ok(Vr {
            proc,
            kind: VrKind::Agent,
            instance: instance.to_owned(),
            node: node.name.clone(),
        })
    }

    /// Starts keepalived on router `n` with `config`; `instance` is its `vrrp_instance` name.
    pub fn keepalived(&self, n: usize, config: &str, instance: &str) -> Result<Vr> {
        let node = self.r(n);
        Ok(Vr {
            proc: keepalived(&node.ns, config)?,
            kind: VrKind::Keepalived,
            instance: instance.to_owned(),
            node: node.name.clone(),
        })
    }

    /// Starts FRR's `vrrpd` (with the `zebra` it needs) on router `n` for one IPv4 or IPv6
    /// virtual router ([`FrrVr::v6`]); returns once `vrrpd` has taken it out of Initialize. FRR
    /// owns the virtual MAC through a macvlan on `eth0` (`vrrp4-<vrid>` or `vrrp6-<vrid>`, the
    /// VMAC of the family as its address, the VIP on it), which zebra holds `protodown` while
    /// FRR is not Master. An IPv6 macvlan gets a random link-local (`addrgenmode random`): FRR
    /// sends its IPv6 adverts from it, and the EUI-64 one of the VMAC would be the same on
    /// every router. Both daemons run in the router's namespace with their pid files, vty and
    /// zserv sockets in a directory of the process's own (no `/var/run/frr`), so several FRRs
    /// run side by side; they log to the output.
    pub fn frr(&self, n: usize, conf: &FrrVr) -> Result<Vr> {
        let node = self.r(n);
        for bin in [FRR_ZEBRA, FRR_VRRPD] {
            if !Path::new(bin).exists() {
                bail!("{bin} is missing: install FRR with `cargo xtask setup --test-peers`");
            }
        }
        // The VIP sits on the macvlan also while FRR is Backup (protodown keeps it
        // operationally down, which leaves the address local): with Linux's default
        // `arp_ignore=0`, eth0 would answer ARP for it with its own MAC. FRR's hosts answer
        // only for addresses of the interface asked (`arp_ignore=1`). (IPv6 answers a
        // solicitation only for an address of the interface it came in on.)
        for conf_dir in ["all", "default", IFACE] {
            node.ns
                .sysctl(&format!("net.ipv4.conf.{conf_dir}.arp_ignore"), "1")?;
        }
        let (mv, vmac) = if conf.v6 {
            (format!("vrrp6-{}", conf.vrid), vmac6(conf.vrid))
        } else {
            (format!("vrrp4-{}", conf.vrid), vmac4(conf.vrid))
        };
        node.ns.ip(&[
            "link",
            "add",
            &mv,
            "link",
            &node.iface,
            "type",
            "macvlan",
            "mode",
            "bridge",
        ])?;
        node.ns.ip(&["link", "set", "dev", &mv, "address", &vmac])?;
        if conf.v6 {
            // (Not at `link add`: a new link has no IPv6 state to set it on yet.)
            node.ns
                .ip(&["link", "set", "dev", &mv, "addrgenmode", "random"])?;
        }
        let vip = vip_cidr(conf.v6);
        let mut addr = vec!["addr", "add", &vip, "dev", &mv];
        if conf.v6 {
            // No duplicate address detection: the VIP is on every FRR router's macvlan (only
            // the Master's is up), and a tentative VIP would not answer for a second.
            addr.push("nodad");
        }
        node.ns.ip(&addr)?;
        node.ns.ip(&["link", "set", "dev", &mv, "up"])?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("frr.conf"), conf.conf())?;
        // The daemons drop to the `frr` user, which must reach its sockets and pid files.
        crate::run(
            std::process::Command::new("chown")
                .args(["-R", "frr:frr"])
                .arg(dir.path()),
        )?;
        crate::run(
            std::process::Command::new("chmod")
                .args(["755"])
                .arg(dir.path()),
        )?;
        let d = dir.path().display().to_string();
        let common = format!("-u frr -g frr -z {d}/zserv.api --vty_socket {d} --log stdout");
        let script = format!(
            "{FRR_ZEBRA} {common} -i {d}/zebra.pid -f /dev/null & \
             exec {FRR_VRRPD} {common} -i {d}/vrrpd.pid -f {d}/frr.conf"
        );
        let mut cmd = node.ns.cmd("sh");
        cmd.args(["-c", &script]);
        let mut proc = Proc::spawn_in(dir, cmd, &format!("FRR vrrpd on {}", node.name))?;
        let started = format!("[VRID {}] [{}] Initialize -> ", conf.vrid, conf.family());
        proc.wait_for_line(Duration::from_secs(15), |l| l.contains(&started))?;
        Ok(Vr {
            proc,
            kind: VrKind::Frr,
            instance: format!("{}/{}", conf.vrid, conf.family()),
            node: node.name.clone(),
        })
    }

    /// Link cut: router `n`'s bridge port goes down (the router sees its carrier drop).
    pub fn cut(&self, n: usize) -> Result<()> {
        self.switch
            .ip(&["link", "set", &self.r(n).port, "down"])
            .map(drop)
    }

    /// Undoes [`Lab::cut`].
    pub fn restore(&self, n: usize) -> Result<()> {
        self.switch
            .ip(&["link", "set", &self.r(n).port, "up"])
            .map(drop)
    }

    /// Loads the nftables `script` (`nft -f -`) in the switch namespace: filtering on the
    /// bridge (family `bridge`), e.g. a partition or random loss on the switch ports. The
    /// tables go with the namespace.
    pub fn switch_nft(&self, script: &str) -> Result<()> {
        nft(&self.switch, script)
    }

    /// The client's neighbour entry for `ip`: `(lladdr, state)`, or `None` without an lladdr.
    pub fn client_neigh(&self, ip: IpAddr) -> Result<Option<(String, String)>> {
        let out =
            self.client
                .ns
                .ip(&["neigh", "show", &ip.to_string(), "dev", &self.client.iface])?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(parse_neigh(&text))
    }

    /// Flushes the client's neighbour entry for `ip` (so the next packet resolves afresh).
    pub fn client_neigh_flush(&self, ip: IpAddr) -> Result<()> {
        let res = self
            .client
            .ns
            .ip(&["neigh", "del", &ip.to_string(), "dev", &self.client.iface]);
        match res {
            // No entry to delete is fine.
            Err(_) if self.client_neigh(ip)?.is_none() => Ok(()),
            r => r.map(drop),
        }
    }

    /// `ping -c COUNT -i 0.05 -W 1 IP` from the client; true if at least one reply came back.
    pub fn client_ping(&self, ip: IpAddr, count: u32) -> bool {
        self.client
            .ns
            .cmd("ping")
            .args([
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.05",
                "-W",
                "1",
            ])
            .arg(ip.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// A prober on the client: an ICMP echo and an ARP request for the lab's IPv4 VIP every
    /// `interval`, for at most a minute.
    pub fn client_prober(&self, interval: Duration) -> Result<crate::prober::Prober> {
        let c = &self.client;
        crate::prober::Prober::start(
            &c.ns,
            crate::prober::ProberConfig {
                iface: c.iface.clone(),
                src: c.ip4,
                src_mac: crate::prober::parse_mac(&c.mac)?,
                vip: VIP4,
                interval,
                max_duration: Duration::from_secs(60),
            },
        )
    }

    /// The client sends `tries` ARP requests for `vip` (AF_PACKET, 20 ms apart) and returns the
    /// distinct sender MACs of the replies, lower case (empty: nobody answered).
    pub fn client_arp(&self, vip: Ipv4Addr, tries: u32) -> Result<Vec<String>> {
        let c = &self.client;
        let src_mac = crate::prober::parse_mac(&c.mac)?;
        let macs = c.ns.run_in(|| {
            crate::prober::arp_query(
                &c.iface,
                c.ip4,
                src_mac,
                vip,
                tries,
                Duration::from_millis(20),
            )
        })?;
        Ok(macs.iter().map(crate::prober::fmt_mac).collect())
    }

    /// Pings from the client until one reply comes back or `timeout` passes (bounded).
    pub fn client_ping_until(&self, ip: IpAddr, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.client_ping(ip, 1) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts tcpdump on `iface` of the switch namespace (a bridge port, or `br0`) writing a pcap
    /// to `file`, with an optional direction (`in`: frames the attached host sent) and a BPF
    /// `filter`; returns once tcpdump is listening.
    pub fn capture(
        &self,
        iface: &str,
        direction: Option<&str>,
        filter: &str,
        file: &Path,
    ) -> Result<Capture> {
        self.capture_snaplen(iface, direction, filter, file, None)
    }

    /// [`Lab::capture`] keeping the first `snaplen` bytes of each frame (default: all). With
    /// `--immediate-mode` libpcap uses a TPACKET_V2 ring of fixed-size slots, each sized for
    /// the snapshot length, at most the largest frame the interface hands up (64 KiB on a
    /// veth, which offloads): tcpdump's 2 MiB buffer then holds about 31 frames, and a longer
    /// burst while tcpdump is not running is lost (`dropped by kernel`). A short snapshot gives
    /// thousands of slots in the same buffer.
    pub fn capture_snaplen(
        &self,
        iface: &str,
        direction: Option<&str>,
        filter: &str,
        file: &Path,
        snaplen: Option<u32>,
    ) -> Result<Capture> {
        let mut cmd = self.switch.cmd("tcpdump");
        let snaplen = snaplen.unwrap_or(0).to_string();
        // `-Z root`: tcpdump would otherwise drop to its own user and fail to write into a
        // root-only temporary directory. `--immediate-mode`: otherwise frames wait in the
        // kernel ring for a block timeout and those still there at SIGINT are lost.
        cmd.args([
            "-n",
            "-U",
            "--immediate-mode",
            "-s",
            &snaplen,
            "-Z",
            "root",
            "-i",
            iface,
        ]);
        if let Some(d) = direction {
            cmd.args(["-Q", d]);
        }
        cmd.arg("-w").arg(file);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let mut proc = Proc::spawn(cmd, &format!("tcpdump on {iface}"))?;
        proc.wait_for_line(Duration::from_secs(10), |l| l.contains("listening on"))?;
        Ok(Capture {
            proc,
            file: file.to_owned(),
        })
    }

    /// [`Lab::capture`] of what router `n` sends (its bridge port, direction `in`).
    pub fn capture_sent(&self, n: usize, filter: &str, file: &Path) -> Result<Capture> {
        self.capture(&self.r(n).port, Some("in"), filter, file)
    }

    /// [`Lab::capture_sent`] keeping `snaplen` bytes per frame (see [`Lab::capture_snaplen`]).
    pub fn capture_sent_snaplen(
        &self,
        n: usize,
        filter: &str,
        file: &Path,
        snaplen: Option<u32>,
    ) -> Result<Capture> {
        self.capture_snaplen(&self.r(n).port, Some("in"), filter, file, snaplen)
    }
}

fn parse_neigh(text: &str) -> Option<(String, String)> {
    let line = text.lines().find(|l| l.contains("lladdr"))?;
    let mut words = line.split_whitespace();
    let mac = words.by_ref().skip_while(|w| *w != "lladdr").nth(1)?;
    let state = line.split_whitespace().last().unwrap_or("").to_owned();
    Some((mac.to_lowercase(), state))
}

/// A running capture; [`Capture::stop`] ends it and returns the pcap's path.
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

impl Capture {
    /// Stops tcpdump (SIGINT: it flushes) and returns the pcap path.
    pub fn stop(self) -> Result<PathBuf> {
        Ok(self.stop_counted()?.0)
    }

    /// [`Capture::stop`], with the frames the kernel dropped before tcpdump read them (its
    /// `N packets dropped by kernel` line: the socket's ring was full). Those frames were on
    /// the wire but are not in the file.
    pub fn stop_counted(mut self) -> Result<(PathBuf, u64)> {
        // Let frames in flight reach the capture.
        std::thread::sleep(Duration::from_millis(50));
        self.proc.stop(libc::SIGINT, Duration::from_secs(10))?;
        let out = self.proc.output();
        if !out.contains(" captured") || !self.file.exists() {
            bail!("capture to {:?} failed:\n{out}", self.file);
        }
        let dropped = out
            .lines()
            .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("no `dropped by kernel` line from tcpdump:\n{out}"))?;
        Ok((self.file.clone(), dropped))
    }

    /// How many frames the capture holds so far that match the tshark display `filter`.
    pub fn count(&self, filter: &str) -> Result<usize> {
        Ok(tshark_fields(&self.file, filter, &["frame.number"])?.len())
    }

    /// Waits (bounded) until the capture so far holds at least `n` frames matching the tshark
    /// display `filter`; returns how many it holds. tcpdump writes packet by packet (`-U`), so
    /// the file can be read while it runs; a read that meets a frame being written fails and is
    /// retried (the last failure is in the timeout's message).
    pub fn wait_frames(&self, filter: &str, n: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        loop {
            let have = match self.count(filter) {
                Ok(have) => have,
                Err(e) => {
                    last_err = Some(e);
                    0
                }
            };
            if have >= n {
                return Ok(have);
            }
            if Instant::now() >= deadline {
                let why = last_err
                    .map(|e| format!(" (last read: {e:#})"))
                    .unwrap_or_default();
                bail!(
                    "capture {:?}: {have} of {n} frames matching `{filter}` within \
                     {timeout:?}{why}",
                    self.file
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `tshark -r PCAP -Y FILTER -T fields -e FIELD...`: one vector of field values per matching
/// frame (bounded by tshark itself; pcaps are small).
pub fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = crate::run(&mut cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect())
}

/// One line per frame (`tshark -r PCAP [-Y FILTER]`), for failure messages.
pub fn pcap_summary(pcap: &Path, filter: &str) -> String {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap);
    if !filter.is_empty() {
        cmd.args(["-Y", filter]);
    }
    cmd.stdin(std::process::Stdio::null())
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                if o.status.success() {
                    String::new()
                } else {
                    format!(
                        "(tshark {}: {})",
                        o.status,
                        String::from_utf8_lossy(&o.stderr)
                    )
                }
            )
        })
        .unwrap_or_else(|e| format!("(tshark: {e})"))
}

/// What runs a virtual router on a lab router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrKind {
    /// Our agent (`vrrp-agent run`).
    Agent,
    /// keepalived.
    Keepalived,
    /// FRR's vrrpd ([`Lab::frr`]); its instance is `VRID/IPv4` or `VRID/IPv6`.
    Frr,
}

/// A VRRP implementation running on a lab router, with its state read from its log.
pub struct Vr {
    pub proc: Proc,
    pub kind: VrKind,
    /// Instance name as the state lines print it.
    pub instance: String,
    /// Router name (`r1`...).
    pub node: String,
}

/// VRRP states as the logs name them.
pub const MASTER: &str = "MASTER";
pub const BACKUP: &str = "BACKUP";
pub const FAULT: &str = "FAULT";
pub const INIT: &str = "INIT";

impl Vr {
    /// Every state this process entered, in order (from its log).
    pub fn transitions(&self) -> Vec<String> {
        let out = self.proc.output();
        match self.kind {
            VrKind::Agent => {
                let prefix = format!("instance {}: state ", self.instance);
                out.lines()
                    .filter_map(|l| {
                        let rest = &l[l.find(&prefix)? + prefix.len()..];
                        let to = rest.split("-> ").nth(1)?;
                        Some(to.split_whitespace().next()?.to_owned())
                    })
                    .collect()
            }
            VrKind::Keepalived => {
                let prefix = format!("({}) Entering ", self.instance);
                out.lines()
                    .filter_map(|l| {
                        let rest = &l[l.find(&prefix)? + prefix.len()..];
                        Some(rest.split_whitespace().next()?.to_owned())
                    })
                    .collect()
            }
            VrKind::Frr => {
                // `[VRID 52] [IPv4] Backup -> Master` (vrrpd with `debug vrrp`).
                let (vrid, family) = self
                    .instance
                    .split_once('/')
                    .unwrap_or((&self.instance, "IPv4"));
                let prefix = format!("[VRID {vrid}] [{family}] ");
                out.lines()
                    .filter_map(|l| {
                        let rest = &l[l.find(&prefix)? + prefix.len()..];
                        let to = rest.split(" -> ").nth(1)?.trim();
                        Some(
                            match to {
                                "Master" => MASTER,
                                "Backup" => BACKUP,
                                "Initialize" => INIT,
                                other => other,
                            }
                            .to_owned(),
                        )
                    })
                    .collect()
            }
        }
    }

    /// The current state, if one was logged.
    pub fn state(&self) -> Option<String> {
        self.transitions().pop()
    }

    /// Waits (bounded, polling every 2 ms) until the current state is `state`; returns the time
    /// it took to observe.
    pub fn wait_state(&mut self, state: &str, timeout: Duration) -> Result<Duration> {
        let t = Instant::now();
        let deadline = t + timeout;
        loop {
            if self.state().as_deref() == Some(state) {
                return Ok(t.elapsed());
            }
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                bail!(
                    "{} on {} exited ({status}) while waiting for {state}:\n{}",
                    self.kind_name(),
                    self.node,
                    self.proc.output()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} on {}: not {state} within {timeout:?} (transitions {:?}):\n{}",
                    self.kind_name(),
                    self.node,
                    self.transitions(),
                    tail(&self.proc.output(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits (bounded) until the `n`-th transition has been logged; returns the transitions.
    pub fn wait_transitions(&mut self, n: usize, timeout: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.transitions();
            if t.len() >= n {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} on {}: only {} of {n} transitions within {timeout:?}: {t:?}",
                    self.kind_name(),
                    self.node,
                    t.len()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            VrKind::Agent => "vrrp-agent",
            VrKind::Keepalived => "keepalived",
            VrKind::Frr => "FRR vrrpd",
        }
    }

    /// Sends `sig` without waiting.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain signal send to our child.
        unsafe { libc::kill(self.proc.child.id() as i32, sig) };
    }

    /// Sends `sig` and waits (bounded) for the exit; returns the exit code.
    pub fn stop(&mut self, sig: i32, timeout: Duration) -> Result<Option<i32>> {
        self.proc.stop(sig, timeout)
    }

    /// FRR's own view of its virtual router `vrid` ([`Lab::frr`]): `vtysh -c 'show vrrp VRID
    /// json'` over the daemons' vty socket directory, the one element of its array.
    pub fn frr_show(&self, vrid: u8) -> Result<serde_json::Value> {
        if self.kind != VrKind::Frr {
            bail!("{} on {} is not FRR", self.kind_name(), self.node);
        }
        let dir = self.proc.log.parent().context("FRR's directory")?;
        let out = crate::run(
            std::process::Command::new("vtysh")
                .arg("--vty_socket")
                .arg(dir)
                .args(["-c", &format!("show vrrp {vrid} json")]),
        )?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("vtysh: {}", String::from_utf8_lossy(&out.stdout)))?;
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .with_context(|| format!("vtysh shows no VRID {vrid}: {v}"))
    }

    /// The fast-path counters from the agent's `XDP detached from IF; counters: k=v ...` line
    /// (present after a clean stop).
    pub fn detach_counters(&self) -> Option<Vec<(String, u64)>> {
        parse_counters(&self.proc.output())
    }

    /// One counter from [`Vr::detach_counters`].
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.detach_counters()?
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }
}

/// Parses `... XDP detached from IF; counters: a=1 b=2 ...`.
pub fn parse_counters(out: &str) -> Option<Vec<(String, u64)>> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("XDP detached from"))?;
    let rest = &line[line.find("counters:")? + "counters:".len()..];
    Some(
        rest.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.trim_end_matches(',').parse().ok()?))
            })
            .collect(),
    )
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The arguments of one virtual router for [`Lab::agent`]: `--vrid VRID --priority PRIORITY --vip
/// VIP --advert-int ADVERT_INT` (`vip` in CIDR notation, `advert_int` in seconds).
pub fn vr_args(vrid: u8, priority: u8, vip: &str, advert_int: &str) -> Vec<String> {
    [
        "--vrid",
        &vrid.to_string(),
        "--priority",
        &priority.to_string(),
        "--vip",
        vip,
        "--advert-int",
        advert_int,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The lab's VIP of a family: [`VIP6`] when `v6`, else [`VIP4`].
pub fn vip(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(VIP6)
    } else {
        IpAddr::V4(VIP4)
    }
}

/// The lab's VIP of a family in CIDR notation (`--vip`): `VIP6/PREFIX6` when `v6`, else
/// `VIP4/PREFIX4`.
pub fn vip_cidr(v6: bool) -> String {
    if v6 {
        format!("{VIP6}/{PREFIX6}")
    } else {
        format!("{VIP4}/{PREFIX4}")
    }
}

/// The name the agent's state lines give the instance of `vrid` started with command-line
/// arguments: `vrid<N>`, or `vrid<N>-v6` for an IPv6 VIP.
pub fn instance_name(vrid: u8, v6: bool) -> String {
    if v6 {
        format!("vrid{vrid}-v6")
    } else {
        format!("vrid{vrid}")
    }
}

/// Our agent as a test file starts it on the lab's routers: one virtual router with the lab's
/// VIP. The fields are what a file keeps the same; [`LabAgent::start`] takes what differs from
/// one router to the next. Vary a field with struct update syntax:
/// `LabAgent { extra: &["--no-preempt"], ..AGENT }.start(&lab, 1, 200, false)`.
#[derive(Clone, Debug)]
pub struct LabAgent<'a> {
    /// The agent binary: `env!("CARGO_BIN_EXE_vrrp-agent-dut")` in a test.
    pub bin: &'a str,
    pub vrid: u8,
    /// `--advert-int`, seconds.
    pub advert_int: &'a str,
    /// Arguments after [`vr_args`].
    pub extra: &'a [&'a str],
    /// How it is started (see [`Lab::agent_with`]).
    pub launch: Launch,
}

impl<'a> LabAgent<'a> {
    /// `bin` for VRID `vrid` with adverts every `advert_int` s, no extra arguments, started with
    /// `ip netns exec`.
    pub const fn new(bin: &'a str, vrid: u8, advert_int: &'a str) -> Self {
        Self {
            bin,
            vrid,
            advert_int,
            extra: &[],
            launch: Launch::IpNetnsExec,
        }
    }

    /// Starts it on router `n` at `priority` with the lab's VIP of the family ([`vip_cidr`]),
    /// and returns once it attached ([`Lab::agent_with`]); its instance is
    /// [`instance_name`]`(vrid, v6)`. Panics with the reason when it does not start (for
    /// tests).
    pub fn start(&self, lab: &Lab, n: usize, priority: u8, v6: bool) -> Vr {
        let mut args = vr_args(self.vrid, priority, &vip_cidr(v6), self.advert_int);
        args.extend(self.extra.iter().map(|a| a.to_string()));
        lab.agent_with(
            n,
            Path::new(self.bin),
            &args,
            &instance_name(self.vrid, v6),
            &self.launch,
        )
        .unwrap_or_else(|e| panic!("starting the agent on r{n} ({:?}): {e:#}", self.launch))
    }
}

/// The keepalived configuration of one VRRPv3 instance named `name` on `eth0`.
pub fn keepalived_conf(
    name: &str,
    vrid: u8,
    priority: u8,
    advert_int: &str,
    vips: &[&str],
    extra: &str,
) -> String {
    let vips: String = vips.iter().map(|v| format!("        {v}\n")).collect();
    format!(
        r#"
global_defs {{
    router_id {name}_{priority}
    vrrp_version 3
    vrrp_garp_master_delay 0
}}
vrrp_instance {name} {{
    state BACKUP
    interface {IFACE}
    virtual_router_id {vrid}
    priority {priority}
    advert_int {advert_int}
{extra}
    virtual_ipaddress {{
{vips}    }}
}}
"#
    )
}

/// FRR's daemons as Debian installs them.
pub const FRR_ZEBRA: &str = "/usr/lib/frr/zebra";
pub const FRR_VRRPD: &str = "/usr/lib/frr/vrrpd";

/// One VRRPv3 virtual router of FRR's vrrpd on `eth0` with the lab's VIP of a family
/// ([`Lab::frr`]).
#[derive(Clone, Debug)]
pub struct FrrVr {
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in milliseconds (FRR: a multiple of 10).
    pub advert_ms: u32,
    pub preempt: bool,
    /// IPv6 (the lab's [`VIP6`]) instead of IPv4 ([`VIP4`]).
    pub v6: bool,
}

impl FrrVr {
    /// The address family as vrrpd's log lines name it (`IPv4`, `IPv6`).
    pub fn family(&self) -> &'static str {
        if self.v6 {
            "IPv6"
        } else {
            "IPv4"
        }
    }

    /// The `frr.conf` vrrpd reads (`debug vrrp` makes it log its state changes).
    pub fn conf(&self) -> String {
        let v = self.vrid;
        format!(
            "log stdout debugging\ndebug vrrp\ninterface {IFACE}\n vrrp {v} version 3\n \
             vrrp {v} priority {}\n vrrp {v} advertisement-interval {}\n {}vrrp {v} preempt\n \
             vrrp {v} {}\n",
            self.priority,
            self.advert_ms,
            if self.preempt { "" } else { "no " },
            if self.v6 {
                format!("ipv6 {VIP6}")
            } else {
                format!("ip {VIP4}")
            },
        )
    }
}

/// The agent binary next to the running executable (`vrrp-agent-dut`, else `vrrp-agent`), for
/// lab tools run outside `cargo test`.
pub fn sibling_agent_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("no parent of {exe:?}"))?;
    for name in ["vrrp-agent-dut", "vrrp-agent"] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(anyhow!(
        "no vrrp-agent-dut or vrrp-agent next to {exe:?}: build with `cargo build -p vrrp-integration-tests --bins`"
    ))
    .context("finding the agent binary")
}

/// Loads the nftables `script` (`nft -f -`) in namespace `ns`; the tables go with the
/// namespace.
pub fn nft(ns: &Netns, script: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = ns
        .cmd("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running nft (install nftables: `cargo xtask setup --test-peers`)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft -f - failed ({}): {}\n{script}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_neigh_and_counters() {
        assert_eq!(
            parse_neigh("10.210.0.100 dev eth0 lladdr 00:00:5E:00:01:33 REACHABLE\n"),
            Some(("00:00:5e:00:01:33".into(), "REACHABLE".into()))
        );
        assert_eq!(parse_neigh("10.210.0.100 dev eth0 FAILED\n"), None);
        let c = parse_counters("[x] XDP detached from eth0; counters: frames=10 arp_replied=3\n")
            .unwrap();
        assert_eq!(c[1], ("arp_replied".into(), 3));
        assert_eq!(vmac4(51), "00:00:5e:00:01:33");
        assert_eq!(vmac6(10), "00:00:5e:00:02:0a");
        assert_eq!(instance_name(51, false), "vrid51");
        assert_eq!(instance_name(51, true), "vrid51-v6");
        assert_eq!(vip_cidr(false), "10.210.0.100/24");
        assert_eq!(vip_cidr(true), "fd00:210::100/64");
    }
}
