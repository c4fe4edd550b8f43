//! `cargo xtask image`: build the container image of deploy/container/Containerfile with podman,
//! also on a machine that cannot reach a container registry, and check the result.
//!
//! 1. podman (and runc, mmdebstrap) from Debian, through the setup helpers.
//! 2. The base images: the Containerfile's defaults (`rust:1-bookworm`, `debian:bookworm-slim`)
//!    if they are here or can be pulled; otherwise local ones: a clean Debian bookworm rootfs
//!    made by mmdebstrap from the apt mirror, imported with `podman import`
//!    (`localhost/vrrp-agent-base:bookworm`, the runtime base), and on it what `rust:1-bookworm`
//!    is, a C toolchain and rustup's stable Rust (deploy/container/builder-base.Containerfile,
//!    `localhost/vrrp-agent-builder-base:bookworm`). Both are kept for the next run
//!    (`--rebuild-bases` makes them again).
//! 3. `podman build` of the Containerfile with `--build-arg BUILDER=... --build-arg BASE=...`.
//! 4. The image checked: `vrrp-agent --version` and `check-config` on a sample file, each in a
//!    container without network (`--network none`), and its size.
//!
//! What this machine needed (and any like it): the build's RUN steps share the host's network
//! namespace (`--network host`: podman creates no bridge or interface on the host); a local CA
//! (a TLS-intercepting egress proxy, under /usr/local/share/ca-certificates) is passed to them
//! read-only as /etc/ssl/certs (not copied into the image); on a cgroup v1 (hybrid) host runc
//! with the cgroupfs manager is used (crun refuses hybrid hierarchies); and the containers'
//! rlimits are set to the current hard limits, since raising them needs CAP_SYS_RESOURCE.
use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

use crate::{setup, StatusOk as _};

const DEFAULT_BUILDER: &str = "docker.io/library/rust:1-bookworm";
const DEFAULT_BASE: &str = "docker.io/library/debian:bookworm-slim";
const LOCAL_BASE: &str = "localhost/vrrp-agent-base:bookworm";
const LOCAL_BUILDER: &str = "localhost/vrrp-agent-builder-base:bookworm";
const SUITE: &str = "bookworm";

pub struct Opts {
    pub tag: String,
    pub mirror: String,
    pub rebuild_bases: bool,
    pub local_bases: bool,
}

/// podman with the global options this host needs.
fn podman(global: &[String]) -> Command {
    let mut c = Command::new("podman");
    c.args(global);
    c
}

fn step(what: &str, t: Instant) {
    eprintln!("image: {what}: {:.1} s", t.elapsed().as_secs_f64());
}

pub fn run(root: &Path, o: &Opts) -> Result<()> {
    let t0 = Instant::now();
    setup::ensure_packages(&["podman", "runc", "mmdebstrap", "ca-certificates"])?;

    // Host quirks (see the module comment).
    let cgroups = Command::new("podman")
        .args(["info", "--format", "{{.Host.CgroupsVersion}}"])
        .output()
        .context("podman info")?;
    let mut global: Vec<String> = Vec::new();
    if String::from_utf8_lossy(&cgroups.stdout).trim() == "v1" {
        global.extend(["--runtime", "runc", "--cgroup-manager", "cgroupfs"].map(String::from));
    }
    let mut run_opts: Vec<String> = Vec::new();
    for (name, res, cap) in [
        ("nofile", libc::RLIMIT_NOFILE, u64::MAX),
        // podman's default (4194304) and even the hard limit itself were refused here; a
        // container needs far fewer processes.
        ("nproc", libc::RLIMIT_NPROC, 16_384),
    ] {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into `l`, a valid rlimit.
        if unsafe { libc::getrlimit(res, &mut l) } == 0 && l.rlim_max != libc::RLIM_INFINITY {
            let v = l.rlim_max.min(cap);
            run_opts.push(format!("--ulimit={name}={v}:{v}"));
        }
    }
    let mut build_opts = run_opts.clone();
    build_opts.push("--network=host".into());
    let local_ca = std::fs::read_dir("/usr/local/share/ca-certificates")
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "crt"))
        })
        .unwrap_or(false);
    if local_ca {
        eprintln!("image: a local CA is installed: the build's RUN steps see the host's /etc/ssl/certs (read-only)");
        build_opts.push("--volume=/etc/ssl/certs:/etc/ssl/certs:ro".into());
    }
    step("podman ready", t0);

    // Base images.
    let exists = |img: &str| {
        podman(&global)
            .args(["image", "exists", img])
            .status()
            .is_ok_and(|s| s.success())
    };
    let pulled = |img: &str| {
        exists(img)
            || podman(&global)
                .args(["pull", "--quiet", img])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    };
    let (builder, base) = if !o.local_bases && pulled(DEFAULT_BUILDER) && pulled(DEFAULT_BASE) {
        (DEFAULT_BUILDER, DEFAULT_BASE)
    } else {
        if !o.local_bases {
            eprintln!("image: the registry images cannot be pulled: using local bases built from a Debian rootfs ({})", o.mirror);
        }
        if o.rebuild_bases || !exists(LOCAL_BASE) {
            let t = Instant::now();
            local_base(&global, &o.mirror)?;
            step(&format!("{LOCAL_BASE} (mmdebstrap + podman import)"), t);
        }
        if o.rebuild_bases || !exists(LOCAL_BUILDER) {
            let t = Instant::now();
            podman(&global)
                .arg("build")
                .args(&build_opts)
                .args(["--build-arg", &format!("BASE={LOCAL_BASE}")])
                .arg("-f")
                .arg(root.join("deploy/container/builder-base.Containerfile"))
                .args(["-t", LOCAL_BUILDER])
                .arg(root.join("deploy/container"))
                .status_ok("podman build of the builder base")?;
            step(&format!("{LOCAL_BUILDER} (rustup stable on it)"), t);
        }
        (LOCAL_BUILDER, LOCAL_BASE)
    };

    // The image.
    let t = Instant::now();
    podman(&global)
        .arg("build")
        .args(&build_opts)
        .args(["--build-arg", &format!("BUILDER={builder}")])
        .args(["--build-arg", &format!("BASE={base}")])
        .arg("-f")
        .arg(root.join("deploy/container/Containerfile"))
        .args(["-t", &o.tag])
        .arg(root)
        .status_ok("podman build of deploy/container/Containerfile")?;
    step(
        &format!("{} built (builder {builder}, runtime {base})", o.tag),
        t,
    );

    // Checks, without network.
    let out = podman(&global)
        .args(["run", "--rm", "--network=none"])
        .args(&run_opts)
        .arg(&o.tag)
        .arg("--version")
        .output()
        .context("podman run")?;
    if !out.status.success() {
        bail!(
            "vrrp-agent --version in the image failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprintln!(
        "image: vrrp-agent --version: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    let dir = std::env::temp_dir().join(format!("vrrp-agent-image-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("vrrp-agent.toml"),
        "[[instance]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\n\
         priority = ${VRRP_PRIORITY:-100}\nvips = [\"10.0.0.100/24\"]\n",
    )?;
    let out = podman(&global)
        .args(["run", "--rm", "--network=none", "-e", "VRRP_PRIORITY=150"])
        .args(&run_opts)
        .arg(format!("--volume={}:/etc/vrrp-agent:ro", dir.display()))
        .arg(&o.tag)
        .args(["check-config", "/etc/vrrp-agent/vrrp-agent.toml"])
        .output()
        .context("podman run")?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!(
            "vrrp-agent check-config in the image failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprintln!(
        "image: vrrp-agent check-config (VRRP_PRIORITY=150):\n{}",
        String::from_utf8_lossy(&out.stdout).trim_end()
    );
    let size = podman(&global)
        .args(["image", "inspect", "--format", "{{.Size}}", &o.tag])
        .output()
        .context("podman image inspect")?;
    let bytes: f64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    eprintln!(
        "image: {} is {:.1} MB; done in {:.0} s",
        o.tag,
        bytes / 1e6,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A minimal Debian rootfs (mmdebstrap, no docs, man pages or locales) imported as
/// [`LOCAL_BASE`].
fn local_base(global: &[String], mirror: &str) -> Result<()> {
    let security = mirror
        .trim_end_matches('/')
        .replace("/debian", "/debian-security");
    let mut mm = Command::new("mmdebstrap")
        .args([
            "--variant=minbase",
            "--include=ca-certificates",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--dpkgopt=path-include=/usr/share/locale/locale.alias",
            SUITE,
            "-",
        ])
        .arg(format!("deb {mirror} {SUITE} main"))
        .arg(format!("deb {mirror} {SUITE}-updates main"))
        .arg(format!("deb {security} {SUITE}-security main"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting mmdebstrap")?;
    let tar = mm.stdout.take().expect("piped");
    let imported = podman(global)
        .args(["import", "--change", "CMD [\"/bin/bash\"]", "-", LOCAL_BASE])
        .stdin(tar)
        .stdout(Stdio::null())
        .status()
        .context("podman import")?;
    let made = mm.wait()?;
    if !made.success() {
        bail!("mmdebstrap failed ({made}; see its output above)");
    }
    if !imported.success() {
        bail!("podman import of the rootfs failed ({imported})");
    }
    Ok(())
}
