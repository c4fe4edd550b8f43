//! The core is sans-IO by construction: none of the crates that do I/O, read clocks or log may be
//! in its normal dependency tree. `#![forbid(unsafe_code)]` in `lib.rs` covers the rest (no FFI).

use std::process::Command;

/// Crates that would let the core touch the outside world.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "aya",
    "aya-obj",
    "libc",
    "nix",
    "socket2",
    "mio",
    "log",
    "tracing",
    "env_logger",
    "rtnetlink",
    "netlink-sys",
    "netlink-proto",
    "netlink-packet-core",
    "netlink-packet-route",
    "futures",
];

#[test]
fn no_io_crate_in_the_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "vrrp-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"vrrp-core"),
        "unexpected cargo tree output:\n{tree}"
    );
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|c| names.contains(c)).collect();
    assert!(
        found.is_empty(),
        "vrrp-core depends on {found:?}; the core must stay sans-IO:\n{tree}"
    );
}
