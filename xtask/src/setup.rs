//! `cargo xtask setup`: install the BPF toolchain (and the test peers), idempotently.
//!
//! Facts this rests on (see README "Build"): rustup has no `rust-src` here, so the XDP program is
//! compiled by Debian's `rustc-web` with its prebuilt BPF `core`, and linked by `bpf-linker`
//! built against Debian's LLVM 22. aya-build runs `rustup run <toolchain> cargo build ...`, so
//! the pieces are tied together as a rustup *path toolchain* in `<repo>/.toolchain/bpf/bin`:
//! - `rustc`: Debian's rustc, with `RUSTC_BOOTSTRAP=1` only for BPF-target compiles (aya-ebpf
//!   uses `#![feature]`; setting it globally would make aya-build pass `-Z build-std`);
//! - `cargo`: rustup's stable cargo with `RUSTC` pointing at that wrapper (aya-build strips
//!   `RUSTC`) and the toolchain on `PATH` so that bpf-linker is found;
//! - `bpf-linker`: a link to the cached build.
use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};

use crate::StatusOk as _;

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";

/// Packages the BPF build needs.
const BUILD_PACKAGES: &[&str] = &[
    "rustc-web",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "libffi-dev",
];

/// What every namespace lab runs (the demo, the benchmarks and the tests): iproute2 (`ip`,
/// `tc`), iputils-ping (`ping`), procps (`sysctl`), util-linux (`nsenter`, `unshare`) and mount
/// (`mount`: the fail-safe tests' launchers). Small and usually present; always installed.
const LAB_PACKAGES: &[&str] = &["iproute2", "iputils-ping", "procps", "util-linux", "mount"];

/// Real peers and tools of the tests and the side-by-side benchmarks: keepalived (peer), tshark
/// (decoding), tcpdump (captures), python3 (the services the health-check tests watch), curl
/// (the keepalived vrrp_script of `cargo xtask bench health` and of tests/tests/keepalived_conf.rs),
/// openssl (the self-signed certificate of the HTTPS check tests), systemd (`systemd-analyze
/// verify` on deploy/systemd/vrrp-agent.service in tests/tests/deploy.rs), frr (FRR's vrrpd, the
/// second peer of tests/tests/interop_frr.rs), nftables (the partition test's advert drop and the
/// loss of `cargo xtask bench soak`, on the lab's bridge: this kernel has no netem).
const TEST_PACKAGES: &[&str] = &[
    "keepalived",
    "frr",
    "nftables",
    "tshark",
    "tcpdump",
    "python3",
    "curl",
    "openssl",
    "systemd",
];

pub fn run(root: &Path, test_peers: bool) -> Result<()> {
    let mut wanted: Vec<&str> = [BUILD_PACKAGES, LAB_PACKAGES].concat();
    if test_peers {
        wanted.extend_from_slice(TEST_PACKAGES);
    }
    apt_install_missing(&wanted)?;
    let linker = bpf_linker()?;
    write_path_toolchain(root, &linker)?;
    Ok(())
}

/// Installs `pkgs` (Debian packages) that are missing; for tools only a benchmark runs.
pub fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    apt_install_missing(pkgs)
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt_install_missing(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "setup needs these Debian packages: {0}\n  run as root, or install them first: sudo apt-get install -y --no-install-recommends {0}",
            missing.join(" ")
        );
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if install() {
        return Ok(());
    }
    // Fresh machines have no package lists yet.
    Command::new("apt-get")
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status_ok("apt-get update")?;
    if !install() {
        bail!(
            "apt-get could not install: {} (see its output above)",
            missing.join(" ")
        );
    }
    Ok(())
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("vrrp-agent")
}

/// Returns the path of a bpf-linker built against LLVM 22, building it once into a cache that
/// outlives fresh clones of the repository.
fn bpf_linker() -> Result<PathBuf> {
    let root = cache_dir().join(format!("bpf-linker-{BPF_LINKER_VERSION}-llvm22"));
    let bin = root.join("bin/bpf-linker");
    if bin.exists() {
        return Ok(bin);
    }
    if !Path::new(LLVM_PREFIX).join("bin/llvm-config").exists() {
        bail!("{LLVM_PREFIX}/bin/llvm-config is missing: the llvm-22-dev package did not install");
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)..."
    );
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--no-default-features",
            "--features",
            "llvm-22",
            "--root",
        ])
        .arg(&root)
        // /usr/bin/llvm-config belongs to an older LLVM.
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .env_remove("RUSTC")
        .status_ok("cargo install bpf-linker")?;
    if !bin.exists() {
        bail!("bpf-linker was built but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Where rustup's stable cargo lives (the wrapper must exec it directly: the rustup proxy would
/// resolve back to the path toolchain and loop).
fn real_cargo() -> Result<PathBuf> {
    let out = Command::new("rustup")
        .args(["which", "cargo"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .context("running `rustup which cargo`: is rustup installed?")?;
    if !out.status.success() {
        bail!(
            "`rustup which cargo` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn write_path_toolchain(root: &Path, linker: &Path) -> Result<()> {
    if !Path::new(DEBIAN_RUSTC).exists() {
        bail!("{DEBIAN_RUSTC} is missing: the rustc-web package did not install");
    }
    let bin = root.join(".toolchain/bpf/bin");
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let rustc = format!(
        "#!/bin/sh\n\
         # Written by `cargo xtask setup`. Debian's rustc ships a prebuilt BPF core; aya-ebpf needs\n\
         # #![feature], allowed only for BPF-target compiles.\n\
         for a in \"$@\"; do\n  case \"$a\" in bpfel-unknown-none|bpfeb-unknown-none|--target=bpf*) export RUSTC_BOOTSTRAP=1 ;; esac\ndone\n\
         exec {DEBIAN_RUSTC} \"$@\"\n"
    );
    let cargo = format!(
        "#!/bin/sh\n\
         # Written by `cargo xtask setup`: rustup's stable cargo driving the wrapper rustc.\n\
         export RUSTC=\"{dir}/rustc\"\n\
         export PATH=\"{dir}:$PATH\"\n\
         unset RUSTC_WORKSPACE_WRAPPER RUSTC_WRAPPER\n\
         exec \"{cargo}\" \"$@\"\n",
        dir = bin.display(),
        cargo = real_cargo()?.display()
    );
    write_if_changed(&bin.join("rustc"), &rustc, 0o755)?;
    write_if_changed(&bin.join("cargo"), &cargo, 0o755)?;
    let link = bin.join("bpf-linker");
    if fs::read_link(&link).ok().as_deref() != Some(linker) {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(linker, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(())
}

fn write_if_changed(path: &Path, content: &str, mode: u32) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(content) {
        fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut perm = fs::metadata(path)?.permissions();
    if perm.mode() & 0o777 != mode {
        perm.set_mode(mode);
        fs::set_permissions(path, perm)?;
    }
    Ok(())
}
