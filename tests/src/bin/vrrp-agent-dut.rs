//! The agent under test (identical to `vrrp-agent`).
fn main() -> std::process::ExitCode {
    vrrp_agent::cli::main()
}
