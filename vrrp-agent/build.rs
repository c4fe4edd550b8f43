//! Builds the XDP program (`vrrp-ebpf`) for `bpfel-unknown-none` with aya-build.
//!
//! The BPF toolchain (Debian's rustc-web + prebuilt BPF `core` + bpf-linker) is installed by
//! `cargo xtask setup` into a rustup *path toolchain*; `.cargo/config.toml` passes its absolute
//! path in `VRRP_BPF_TOOLCHAIN`. With `AYA_BUILD_SKIP=1` the eBPF build is skipped and an empty
//! object is written instead, so the sans-IO library can be built and unit-tested without the
//! BPF toolchain; the loader then refuses to start with a clear error.
use std::{env, fs, path::PathBuf};

use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=VRRP_BPF_TOOLCHAIN");
    // Without this, an object built once with AYA_BUILD_SKIP=1 (empty) would stay.
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let object = out_dir.join("vrrp");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:warning=AYA_BUILD_SKIP set: the agent is built without its XDP program");
        if fs::metadata(&object).is_err() {
            fs::write(&object, b"").context("writing placeholder eBPF object")?;
        }
        return Ok(());
    }
    let toolchain = env::var("VRRP_BPF_TOOLCHAIN").map_err(|_| {
        anyhow!("VRRP_BPF_TOOLCHAIN is not set: run `cargo xtask setup` (it installs the BPF toolchain) and build through `cargo xtask build`")
    })?;
    if !PathBuf::from(&toolchain).join("bin/bpf-linker").exists() {
        return Err(anyhow!(
            "the BPF toolchain at {toolchain} is missing bpf-linker: run `cargo xtask setup`"
        ));
    }
    let ebpf = Package {
        name: "vrrp-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../vrrp-ebpf"),
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::Custom(&toolchain))
}
