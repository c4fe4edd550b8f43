//! `vrrp-agent`: see `vrrp_agent::cli`.
fn main() -> std::process::ExitCode {
    vrrp_agent::cli::main()
}
