//! The command line of `vrrp-agent` (the binary is a one-line `main` around [`main`]).
use std::process::ExitCode;

use crate::{
    agent::{self, RunConfig},
    fastpath::{Family, ModeChoice},
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "VRRP (RFC 9568 / RFC 3768) failover agent with an XDP fast path"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attach the XDP fast path to an interface and run the virtual router(s).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Interface to run on (e.g. eth0).
    #[arg(long, short = 'i')]
    iface: String,
    /// Virtual router ID (1-255); repeat for several.
    #[arg(long = "vrid", value_parser = clap::value_parser!(u8).range(1..=255))]
    vrids: Vec<u8>,
    /// Address families whose adverts are handled.
    #[arg(long, value_enum, default_value_t = Family::Both)]
    family: Family,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = ModeChoice::Auto)]
    xdp_mode: ModeChoice,
}

/// Parses the command line, runs it, and turns errors into one `error: ...` line.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(a) => {
            if a.vrids.is_empty() {
                eprintln!("error: no virtual router to run: give --vrid N (1-255)");
                return ExitCode::from(2);
            }
            let cfg = RunConfig {
                iface: a.iface,
                vrids: a.vrids,
                family: a.family,
                xdp_mode: a.xdp_mode,
            };
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(agent::run(cfg)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
