//! The command line of `vrrp-agent` (the binary is a one-line `main` around [`main`]).
//!
//! - `vrrp-agent run --iface IF --vrid N [--vrid N]... [--family v4|v6|both]`: monitor mode,
//!   logs every advert of those VRIDs at INFO, claims nothing.
//! - `vrrp-agent run --iface IF --vrid N --vip CIDR [--vip CIDR]... [instance flags]`: one
//!   virtual router (election mode).
//! - `vrrp-agent run --config FILE`: the virtual routers of a TOML file ([`crate::config`]).
//! - `vrrp-agent run --keepalived-conf FILE`: the virtual routers of a keepalived.conf
//!   ([`crate::keepalived_conf`]), warnings on stderr.
//! - `vrrp-agent check-config FILE`: parse and validate a file, print its instances.
//! - `vrrp-agent import-keepalived FILE`: print a keepalived.conf as vrrp-agent TOML.
//! - `vrrp-agent status [--json]` / `vrrp-agent reload`: ask the running agent (control socket).
use std::{path::PathBuf, process::ExitCode, sync::OnceLock};

use crate::{
    agent::{self, RunConfig},
    config::XdpMode,
    config::{self, AgentConfig, FieldError, InstanceInput, Key, Kind},
    keepalived_conf, sched,
};
use clap::{Arg, ArgAction, ArgMatches, Command, Parser, Subcommand};
use vrrp_core::Family;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "VRRP (RFC 9568 / RFC 3768) failover agent with an XDP fast path"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
    /// Log lines as text (default; `<N>` syslog priorities under systemd) or one JSON object
    /// per line.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        value_name = "text|json"
    )]
    pub log_format: crate::logfmt::LogFormat,
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
    /// Print a keepalived.conf as vrrp-agent TOML (warnings about what is not supported on
    /// stderr, one line each).
    ImportKeepalived {
        /// The keepalived.conf (its includes are followed).
        file: PathBuf,
    },
    /// Show the running agent's virtual routers (from its control socket).
    Status {
        /// Print `{"instances": [...]}` (every field) instead of the table.
        #[arg(long)]
        json: bool,
        /// The running agent's control socket.
        #[arg(
            long,
            value_name = "PATH",
            env = "VRRP_AGENT_CONTROL_SOCKET",
            default_value = crate::control::DEFAULT_SOCKET
        )]
        control_socket: PathBuf,
    },
    /// Make the running agent read its configuration file again and apply it without a flap
    /// (same as SIGHUP); prints what changed, or the error (the old configuration keeps
    /// running).
    Reload {
        /// The running agent's control socket.
        #[arg(
            long,
            value_name = "PATH",
            env = "VRRP_AGENT_CONTROL_SOCKET",
            default_value = crate::control::DEFAULT_SOCKET
        )]
        control_socket: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// TOML configuration with one or more [[instance]] (instead of the flags below).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["iface", "vrids", "family"])]
    pub config: Option<PathBuf>,
    /// keepalived.conf to run from directly (its vrrp_instance, vrrp_script, vrrp_sync_group
    /// blocks; see `import-keepalived` for the equivalent TOML).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "iface", "vrids", "family"])]
    pub keepalived_conf: Option<PathBuf>,
    /// Interface to run on (e.g. eth0).
    #[arg(long, short = 'i', required_unless_present_any = ["config", "keepalived_conf"])]
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
    /// Write every state change as one JSON object per line to this file or FIFO (for
    /// programs; keepalived's notify_fifo role).
    #[arg(long, value_name = "PATH")]
    pub event_stream: Option<PathBuf>,
    /// Serve `vrrp-agent status` on this Unix socket.
    #[arg(
            long,
            value_name = "PATH",
            env = "VRRP_AGENT_CONTROL_SOCKET",
            default_value = crate::control::DEFAULT_SOCKET
        )]
    pub control_socket: PathBuf,
    /// Serve Prometheus metrics on http://ADDR:PORT/metrics (overrides [global] metrics_addr).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The flags of one virtual router, generated from the model's key table.
    #[command(flatten)]
    pub instance: InstanceFlags,
}

/// Keys whose flags are declared in [`RunArgs`] itself because monitor mode uses them too
/// (`--iface`, `--vrid`); every other instance key gets its flag from [`InstanceFlags`].
const MODE_KEYS: [&str; 2] = ["interface", "vrid"];

/// The instance flags of `run`, one per key of [`config::INSTANCE_KEYS`] (but [`MODE_KEYS`]):
/// name, value placeholder, help (the key's doc, range and default), and the conflict with
/// `--config` all come from the key's declaration. A key added to the table is a flag.
#[derive(Debug, Clone, Default)]
pub struct InstanceFlags {
    /// The flags given, in the table's order: the key and its texts (a switch gives the value
    /// it sets, `"true"` or `"false"`).
    pub given: Vec<(&'static Key, Vec<String>)>,
}

impl InstanceFlags {
    /// The keys that have a generated flag.
    pub fn keys() -> impl Iterator<Item = &'static Key> {
        config::INSTANCE_KEYS
            .iter()
            .filter(|k| !MODE_KEYS.contains(&k.name))
    }

    /// Whether the flag of `key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.given.iter().any(|(k, _)| k.name == key)
    }

    /// Sets every given flag on `input`; an error names the flag.
    pub fn apply(&self, input: &mut InstanceInput) -> Result<(), String> {
        for (k, texts) in &self.given {
            for t in texts {
                input.set_str(k.name, t).map_err(flag_error)?;
            }
        }
        Ok(())
    }
}

/// `--priority: 300 is out of range 1-255`.
fn flag_error(e: FieldError) -> String {
    format!("{}: {}", config::flag_of(&e.key), e.msg)
}

/// The long names of the flags (without `--`), in [`config::INSTANCE_KEYS`] order; built once
/// so that clap can borrow them for the life of the process.
fn long_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        config::INSTANCE_KEYS
            .iter()
            .map(|k| k.flag_name().trim_start_matches('-').to_string())
            .collect()
    })
}

/// The clap argument of one key.
fn arg_of(k: &'static Key) -> Arg {
    let i = config::INSTANCE_KEYS
        .iter()
        .position(|x| x.name == k.name)
        .expect("an instance key");
    let arg = Arg::new(k.name)
        .long(long_names()[i].as_str())
        .help(k.help())
        .conflicts_with_all(["config", "keepalived_conf"]);
    if k.switch_value().is_some() {
        return arg.action(ArgAction::SetTrue);
    }
    let numeric = matches!(k.kind, Kind::Int | Kind::Seconds);
    arg.value_name(k.value_placeholder())
        .action(if matches!(k.kind, Kind::List(_)) {
            ArgAction::Append
        } else {
            ArgAction::Set
        })
        .allow_negative_numbers(numeric)
        // The type is checked when parsing (a clap error, as for any flag); the ranges and
        // rules when the instance is built (an error naming the flag).
        .value_parser(move |s: &str| -> Result<String, String> {
            InstanceInput::default()
                .set_str(k.name, s)
                .map(|()| s.to_string())
                .map_err(|e| e.msg)
        })
}

impl clap::Args for InstanceFlags {
    fn augment_args(cmd: Command) -> Command {
        cmd.args(Self::keys().map(arg_of))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for InstanceFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = InstanceFlags::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for k in Self::keys() {
            let texts: Vec<String> = match k.switch_value() {
                Some(v) if m.get_flag(k.name) => vec![v.to_string()],
                Some(_) => continue,
                None => match m.get_many::<String>(k.name) {
                    Some(v) => v.cloned().collect(),
                    None => continue,
                },
            };
            self.given.retain(|(g, _)| g.name != k.name);
            self.given.push((k, texts));
        }
        let order = |k: &Key| config::INSTANCE_KEYS.iter().position(|x| x.name == k.name);
        self.given.sort_by_key(|(k, _)| order(k));
        Ok(())
    }
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

fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    config::metrics_addr("metrics_addr", s).map_err(|e| e.msg)
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
    /// The first flag given that only makes sense for a virtual router (not for watching):
    /// any instance flag of the table, or --require-failsafe.
    fn election_flag(&self) -> Option<String> {
        self.instance
            .given
            .first()
            .map(|(k, _)| k.flag_name())
            .or_else(|| {
                self.require_failsafe
                    .then(|| "--require-failsafe".to_string())
            })
            .or_else(|| self.event_stream.as_ref().map(|_| "--event-stream".into()))
            .or_else(|| self.metrics_addr.map(|_| "--metrics-addr".into()))
    }

    /// Turns the flags into what to run; errors are one line.
    pub fn resolve(self) -> Result<RunMode, String> {
        let realtime = self
            .realtime_priority
            .map(|v| config::realtime_priority("realtime_priority", v))
            .transpose()
            .map_err(flag_error)?;
        let file = match (&self.config, &self.keepalived_conf) {
            (Some(path), _) => Some(config::load(path).map_err(|e| e.to_string())?),
            (None, Some(path)) => {
                let (cfg, warnings) = keepalived_conf::load(path)?;
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                Some(cfg)
            }
            (None, None) => None,
        };
        if let Some(mut cfg) = file {
            if let Some(m) = self.xdp_mode {
                cfg.xdp_mode = m;
            }
            cfg.require_failsafe |= self.require_failsafe;
            if let Some(p) = realtime {
                cfg.realtime_priority = p;
            }
            if let Some(a) = self.metrics_addr {
                cfg.metrics_addr = Some(a);
            }
            return Ok(RunMode::Election(cfg));
        }
        let realtime = realtime.unwrap_or(crate::sched::DEFAULT_REALTIME_PRIORITY);
        let iface = self.iface.clone().unwrap_or_default();
        if !self.instance.has("vips") {
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
        let mut input = InstanceInput::default();
        input.set_str("interface", &iface).map_err(flag_error)?;
        input.set_int("vrid", i64::from(vrid)).map_err(flag_error)?;
        self.instance.apply(&mut input)?;
        let spec = input.build(None).map_err(flag_error)?;
        // No [[check]] on the command line: `--track check=NAME` needs --config.
        config::check_model(std::slice::from_ref(&spec), &[], &[]).map_err(|(_, _, e)| {
            format!(
                "{}: {} (checks are defined in a --config file)",
                config::flag_of(&e.key),
                e.msg
            )
        })?;
        Ok(RunMode::Election(AgentConfig {
            xdp_mode: self.xdp_mode.unwrap_or(XdpMode::Auto),
            require_failsafe: self.require_failsafe,
            realtime_priority: realtime,
            control_group: None,
            metrics_addr: self.metrics_addr,
            instances: vec![spec],
            checks: Vec::new(),
            sync_groups: Vec::new(),
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
    crate::logfmt::init(cli.log_format); // (deploy: --log-format)
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
                    for c in &cfg.checks {
                        println!("{}", c.describe());
                    }
                    for g in &cfg.sync_groups {
                        println!("{}", g.describe());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::ImportKeepalived { file } => return import_keepalived(&file),
        Cmd::Status {
            json,
            control_socket,
        } => return status(&control_socket, json),
        Cmd::Reload { control_socket } => return reload(&control_socket),
        Cmd::Run(a) => match (
            a.event_stream.clone(),
            a.control_socket.clone(),
            reload_source(&a),
            a.resolve(),
        ) {
            (_, _, _, Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            (events, socket, source, Ok(mode)) => {
                // Before the runtime exists: every thread it creates inherits the policy.
                let prio = match &mode {
                    RunMode::Monitor(c) => c.realtime_priority,
                    RunMode::Election(c) => c.realtime_priority,
                };
                sched::log(prio, &sched::apply(prio));
                match mode {
                    RunMode::Monitor(cfg) => runtime().and_then(|rt| rt.block_on(agent::run(cfg))),
                    RunMode::Election(cfg) => runtime().and_then(|rt| {
                        rt.block_on(agent::run_election_ctl(cfg, events, socket, source))
                    }),
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

/// `import-keepalived FILE`: the TOML on stdout, the warnings on stderr (one line each); an
/// error (syntax, or a value the model refuses) is one line naming the keepalived line, and
/// nothing is printed on stdout.
fn import_keepalived(file: &std::path::Path) -> ExitCode {
    let imported = match keepalived_conf::import(file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = imported.build() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    print!("{}", imported.to_toml());
    ExitCode::SUCCESS
}

/// `status [--json]`: asks the running agent; an error is one line.
fn status(socket: &std::path::Path, json: bool) -> ExitCode {
    match crate::control::request(socket, &serde_json::json!({ "cmd": "status" })) {
        Ok(v) if json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print!("{}", crate::control::status_table(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `reload`: asks the running agent; prints its summary, or the error in one line (exit 1).
fn reload(socket: &std::path::Path) -> ExitCode {
    match crate::control::request_raw(socket, &serde_json::json!({ "cmd": "reload" })) {
        Ok(v) if v["ok"] == serde_json::Value::Bool(true) => {
            println!("reloaded: {}", v["summary"].as_str().unwrap_or("-"));
            ExitCode::SUCCESS
        }
        Ok(v) => {
            let e = v["error"]
                .as_str()
                .map_or_else(|| v.to_string(), String::from);
            eprintln!("error: reload failed, the running configuration is kept: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The file SIGHUP reloads (reload, issue 10).
fn reload_source(a: &RunArgs) -> Option<crate::supervisor::ConfigSource> {
    use crate::supervisor::ConfigSource;
    match (&a.config, &a.keepalived_conf) {
        (Some(p), _) => Some(ConfigSource::Toml(p.clone())),
        (None, Some(p)) => Some(ConfigSource::Keepalived(p.clone())),
        (None, None) => None,
    }
}
