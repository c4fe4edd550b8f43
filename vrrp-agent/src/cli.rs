//! The command line of `vrrp-agent` (the binary is a one-line `main` around [`main`]).
//!
//! - `vrrp-agent run --iface IF --vrid N [--vrid N]... [--family v4|v6|both]`: monitor mode,
//!   logs every advert of those VRIDs at INFO, claims nothing.
//! - `vrrp-agent run --iface IF --vrid N --vip CIDR [--vip CIDR]... [instance flags]`: one
//!   virtual router (election mode).
//! - `vrrp-agent run --config FILE`: the virtual routers of a TOML file ([`crate::config`]).
//! - `vrrp-agent check-config FILE`: parse and validate a file, print its instances.
use std::{path::PathBuf, process::ExitCode};

use crate::{
    agent::{self, RunConfig},
    config::XdpMode,
    config::{self, AgentConfig, InstanceInput},
    sched,
};
use clap::{Parser, Subcommand};
use vrrp_core::Family;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "VRRP (RFC 9568 / RFC 3768) failover agent with an XDP fast path"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Cmd {
    /// Attach the XDP fast path to an interface and run the virtual router(s).
    Run(RunArgs),
    /// Parse and validate a configuration file and print its instances.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// TOML configuration with one or more [[instance]] (instead of the flags below).
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "iface", "vrids", "family", "name", "priority", "vips", "advert_int", "vrrp_version", "no_preempt", "preempt_delay", "accept_mode", "lower_prio_no_advert", "unicast_peers", "unicast_src_ip", "auth_pass", "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_interval", "gna_interval", "v3_checksum_as_v2", "failsafe_timeout"
    ])]
    pub config: Option<PathBuf>,
    /// Interface to run on (e.g. eth0).
    #[arg(long, short = 'i', required_unless_present = "config")]
    pub iface: Option<String>,
    /// Virtual router ID (1-255). Without --vip: watch only (repeat for several).
    #[arg(long = "vrid", value_parser = clap::value_parser!(u8).range(1..=255))]
    pub vrids: Vec<u8>,
    /// Monitor mode: address families whose adverts are shown.
    #[arg(long, value_name = "v4|v6|both", value_parser = parse_families)]
    pub family: Option<Families>,
    /// XDP attach mode (overrides [global] xdp_mode of --config).
    #[arg(long, value_name = "auto|native|generic", value_parser = parse_xdp_mode)]
    pub xdp_mode: Option<XdpMode>,
    /// Refuse to start where the fail-safe would not outlive the agent (no clsact qdisc for the
    /// egress classifier); same as [global] require_failsafe = true.
    #[arg(long)]
    pub require_failsafe: bool,
    /// Real-time (SCHED_RR) priority of the agent, 1-99; 0 = normal scheduling (default 10;
    /// overrides [global] realtime_priority of --config).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub realtime_priority: Option<i64>,
    /// Instance name in logs (default vrid<N>, vrid<N>-v6 for IPv6).
    #[arg(long)]
    pub name: Option<String>,
    /// Priority 1-255 (default 100; 255 = the VIPs are this host's own addresses).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// A virtual address with its prefix length, e.g. 10.0.0.100/24; repeat for several (one
    /// family per instance).
    #[arg(long = "vip", value_name = "CIDR")]
    pub vips: Vec<String>,
    /// Advertisement interval in seconds (default 1; VRRPv3 resolution 0.01).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub advert_int: Option<f64>,
    /// VRRP version, 3 (RFC 9568, default) or 2 (RFC 3768).
    #[arg(long = "version", id = "vrrp_version", value_name = "2|3")]
    pub vrrp_version: Option<i64>,
    /// Do not preempt a lower-priority master.
    #[arg(long)]
    pub no_preempt: bool,
    /// Seconds to tolerate a lower-priority master after startup before preempting.
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub preempt_delay: Option<f64>,
    /// Accept packets addressed to the VIPs when master (default true).
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub accept_mode: Option<bool>,
    /// As master, do not answer a lower-priority advert with an advert (keepalived's
    /// lower_prio_no_advert; answers are at most one per advert interval either way).
    #[arg(long)]
    pub lower_prio_no_advert: bool,
    /// Send adverts to this peer instead of multicast; repeat for several.
    #[arg(long = "unicast-peer", value_name = "IP")]
    pub unicast_peers: Vec<String>,
    /// Source address of adverts (default: the interface's first IPv4 / link-local IPv6).
    #[arg(long, value_name = "IP")]
    pub unicast_src_ip: Option<String>,
    /// VRRPv2 simple password (auth_type PASS), at most 8 bytes.
    #[arg(long, value_name = "PW")]
    pub auth_pass: Option<String>,
    /// Seconds after becoming master for the second GARP/NA burst (default 5; 0 = none).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub garp_master_delay: Option<f64>,
    /// GARPs/NAs per VIP in a burst (default 5).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub garp_master_repeat: Option<i64>,
    /// Re-send a burst every S seconds while master (default 0 = never).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub garp_master_refresh: Option<f64>,
    /// Seconds between gratuitous ARPs of a burst (IPv4, default 0).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub garp_interval: Option<f64>,
    /// Seconds between unsolicited NAs of a burst (IPv6, default 0).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub gna_interval: Option<f64>,
    /// VRRPv3 over IPv4: checksum without the pseudo-header (keepalived's v3_checksum_as_v2).
    #[arg(long)]
    pub v3_checksum_as_v2: bool,
    /// Fail-safe: seconds of agent silence after which the XDP program stops answering for the
    /// VIPs (default: the Master_Down_Interval).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub failsafe_timeout: Option<f64>,
}

/// `--family`: the address families watched in monitor mode.
#[derive(Clone, Debug)]
pub struct Families(pub Vec<Family>);

fn parse_families(s: &str) -> Result<Families, String> {
    match s {
        "v4" => Ok(Families(vec![Family::V4])),
        "v6" => Ok(Families(vec![Family::V6])),
        "both" => Ok(Families(vec![Family::V4, Family::V6])),
        _ => Err(format!("{s:?} is not one of v4, v6, both")),
    }
}

fn parse_xdp_mode(s: &str) -> Result<XdpMode, String> {
    XdpMode::parse(s).ok_or_else(|| format!("{s:?} is not one of auto, native, generic"))
}

/// What `run` was asked to do.
#[derive(Debug)]
pub enum RunMode {
    /// Watch adverts only.
    Monitor(RunConfig),
    /// Run virtual routers.
    Election(AgentConfig),
}

impl RunArgs {
    /// Whether any flag that only makes sense for a virtual router (not for watching) was given.
    fn election_flag(&self) -> Option<&'static str> {
        [
            (self.name.is_some(), "--name"),
            (self.priority.is_some(), "--priority"),
            (self.advert_int.is_some(), "--advert-int"),
            (self.vrrp_version.is_some(), "--version"),
            (self.no_preempt, "--no-preempt"),
            (self.preempt_delay.is_some(), "--preempt-delay"),
            (self.accept_mode.is_some(), "--accept-mode"),
            (self.lower_prio_no_advert, "--lower-prio-no-advert"),
            (!self.unicast_peers.is_empty(), "--unicast-peer"),
            (self.unicast_src_ip.is_some(), "--unicast-src-ip"),
            (self.auth_pass.is_some(), "--auth-pass"),
            (self.garp_master_delay.is_some(), "--garp-master-delay"),
            (self.garp_master_repeat.is_some(), "--garp-master-repeat"),
            (self.garp_master_refresh.is_some(), "--garp-master-refresh"),
            (self.garp_interval.is_some(), "--garp-interval"),
            (self.gna_interval.is_some(), "--gna-interval"),
            (self.v3_checksum_as_v2, "--v3-checksum-as-v2"),
            (self.failsafe_timeout.is_some(), "--failsafe-timeout"),
            (self.require_failsafe, "--require-failsafe"),
        ]
        .into_iter()
        .find(|(on, _)| *on)
        .map(|(_, f)| f)
    }

    /// Turns the flags into what to run; errors are one line.
    pub fn resolve(self) -> Result<RunMode, String> {
        let realtime = self
            .realtime_priority
            .map(|v| config::realtime_priority("realtime_priority", v))
            .transpose()
            .map_err(|e| format!("{}: {}", config::flag_of(&e.key), e.msg))?;
        if let Some(path) = &self.config {
            let mut cfg = config::load(path).map_err(|e| e.to_string())?;
            if let Some(m) = self.xdp_mode {
                cfg.xdp_mode = m;
            }
            cfg.require_failsafe |= self.require_failsafe;
            if let Some(p) = realtime {
                cfg.realtime_priority = p;
            }
            return Ok(RunMode::Election(cfg));
        }
        let realtime = realtime.unwrap_or(crate::sched::DEFAULT_REALTIME_PRIORITY);
        let iface = self.iface.clone().unwrap_or_default();
        if self.vips.is_empty() {
            if let Some(flag) = self.election_flag() {
                return Err(format!(
                    "{flag} configures a virtual router, which needs --vip CIDR (without --vip, \
                     run only watches adverts)"
                ));
            }
            if self.vrids.is_empty() {
                return Err("no virtual router to run: give --vrid N (1-255)".into());
            }
            return Ok(RunMode::Monitor(RunConfig {
                iface,
                vrids: self.vrids,
                families: self
                    .family
                    .map(|f| f.0)
                    .unwrap_or_else(|| vec![Family::V4, Family::V6]),
                xdp_mode: self.xdp_mode.unwrap_or(XdpMode::Auto),
                realtime_priority: realtime,
            }));
        }
        if self.family.is_some() {
            return Err(
                "--family is for watching adverts; a virtual router's family is its VIPs'".into(),
            );
        }
        let vrid = match self.vrids.as_slice() {
            [] => return Err("--vip needs --vrid N (1-255)".into()),
            [v] => *v,
            _ => {
                return Err(
                    "one --vrid with --vip (several virtual routers: use --config FILE)".into(),
                )
            }
        };
        let input = InstanceInput {
            name: self.name,
            interface: Some(iface),
            vrid: Some(i64::from(vrid)),
            priority: self.priority,
            advert_int: self.advert_int,
            version: self.vrrp_version,
            vips: self.vips,
            preempt: self.no_preempt.then_some(false),
            preempt_delay: self.preempt_delay,
            accept_mode: self.accept_mode,
            lower_prio_no_advert: self.lower_prio_no_advert.then_some(true),
            unicast_src_ip: self.unicast_src_ip,
            unicast_peers: self.unicast_peers,
            auth_pass: self.auth_pass,
            garp_master_delay: self.garp_master_delay,
            garp_master_repeat: self.garp_master_repeat,
            garp_master_refresh: self.garp_master_refresh,
            garp_interval: self.garp_interval,
            gna_interval: self.gna_interval,
            v3_checksum_as_v2: self.v3_checksum_as_v2.then_some(true),
            failsafe_timeout: self.failsafe_timeout,
        };
        let spec = input
            .build(None)
            .map_err(|e| format!("{}: {}", config::flag_of(&e.key), e.msg))?;
        Ok(RunMode::Election(AgentConfig {
            xdp_mode: self.xdp_mode.unwrap_or(XdpMode::Auto),
            require_failsafe: self.require_failsafe,
            realtime_priority: realtime,
            instances: vec![spec],
        }))
    }
}

/// Parses `args` (the first is the program name); clap errors are reduced to their first line.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// A clap error as one line (`error: ...`): its first paragraph, without usage and tips.
pub fn one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let para: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if para.is_empty() {
        "error: invalid command line".into()
    } else {
        para.join(" ")
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Parses the command line, runs it, and turns errors into one `error: ...` line.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.cmd {
        Cmd::CheckConfig { file } => {
            return match config::load(&file) {
                Ok(cfg) => {
                    println!(
                        "{}: {} instance(s), xdp_mode {:?}, realtime_priority {}",
                        file.display(),
                        cfg.instances.len(),
                        cfg.xdp_mode,
                        cfg.realtime_priority
                    );
                    for i in &cfg.instances {
                        println!("{}", i.describe());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::Run(a) => match a.resolve() {
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            Ok(mode) => {
                // Before the runtime exists: every thread it creates inherits the policy.
                let prio = match &mode {
                    RunMode::Monitor(c) => c.realtime_priority,
                    RunMode::Election(c) => c.realtime_priority,
                };
                sched::log(prio, &sched::apply(prio));
                match mode {
                    RunMode::Monitor(cfg) => runtime().and_then(|rt| rt.block_on(agent::run(cfg))),
                    RunMode::Election(cfg) => {
                        runtime().and_then(|rt| rt.block_on(agent::run_election(cfg)))
                    }
                }
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
