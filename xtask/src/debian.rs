//! Debian arm64 artifacts (kernels, busybox, Xen), resolved through apt at the
//! candidate version (never pinned), downloaded with `apt-get download` and
//! extracted with `dpkg -x` into a cache outside the tree:
//!
//! ```text
//! $FERROVISOR_CACHE (default ~/.cache/ferrovisor)
//!   debs/<pkg>_<version>_arm64.deb      as apt-get download names them (':' -> %3a)
//!   x/<pkg>_<version>_arm64/            dpkg -x of that .deb; present only when complete
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};

use crate::{output_of, run_checked, say};

const ARCH: &str = "arm64";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavour {
    /// linux-image-cloud-arm64: small, fast to boot, the default.
    Cloud,
    /// linux-image-arm64: the generic Debian kernel.
    Generic,
}

impl Flavour {
    fn meta_package(self) -> &'static str {
        match self {
            Flavour::Cloud => "linux-image-cloud-arm64",
            Flavour::Generic => "linux-image-arm64",
        }
    }
}

impl FromStr for Flavour {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cloud" => Ok(Flavour::Cloud),
            "generic" => Ok(Flavour::Generic),
            _ => bail!("unknown kernel flavour {s:?} (cloud|generic)"),
        }
    }
}

pub struct Kernel {
    /// `uname -r`, e.g. 6.1.0-56-cloud-arm64.
    pub release: String,
    /// boot/vmlinuz-<release>: an uncompressed arm64 Image.
    pub image: PathBuf,
    /// lib/modules/<release>.
    pub modules: PathBuf,
}

pub struct Artifacts {
    pub cloud: Kernel,
    pub generic: Kernel,
    /// Static arm64 busybox.
    pub busybox: PathBuf,
    /// Xen 4.17's EFI/Image-format hypervisor binary.
    pub xen: PathBuf,
}

impl Artifacts {
    /// Resolves, downloads (when the .deb is absent) and extracts (when not yet extracted) everything.
    pub fn fetch() -> Result<Self> {
        let cache = cache_dir()?;
        let kernel = |flavour: Flavour| -> Result<Kernel> {
            let pkg = kernel_package(flavour.meta_package())?;
            let release = pkg.strip_prefix("linux-image-").expect("matched by kernel_package").to_owned();
            let root = extract(&cache, &pkg)?;
            Ok(Kernel {
                image: existing(root.join("boot").join(format!("vmlinuz-{release}")))?,
                modules: existing(root.join("lib/modules").join(&release))?,
                release,
            })
        };
        Ok(Self {
            cloud: kernel(Flavour::Cloud)?,
            generic: kernel(Flavour::Generic)?,
            busybox: existing(extract(&cache, "busybox-static")?.join("bin/busybox"))?,
            xen: existing(extract(&cache, "xen-hypervisor-4.17-arm64")?.join("boot/xen-4.17-arm64"))?,
        })
    }

    pub fn kernel(&self, flavour: Flavour) -> &Kernel {
        match flavour {
            Flavour::Cloud => &self.cloud,
            Flavour::Generic => &self.generic,
        }
    }
}

pub fn cache_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("FERROVISOR_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME unset")?).join(".cache/ferrovisor"),
    };
    for sub in ["debs", "x"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    Ok(dir)
}

/// The versioned kernel package a meta package depends on (its candidate version).
fn kernel_package(meta: &str) -> Result<String> {
    let deps = output_of(Command::new("apt-cache").args(["depends", &format!("{meta}:{ARCH}")]))?;
    let pkg = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|d| d.starts_with("linux-image-"))
        .ok_or_else(|| anyhow!("{meta}:{ARCH} depends on no linux-image-* package"))?;
    let pkg = pkg.strip_suffix(&format!(":{ARCH}")).unwrap_or(pkg);
    say!("{meta} -> {pkg}");
    Ok(pkg.to_owned())
}

/// Downloads and extracts `pkg` at its candidate version; returns the extracted root.
pub fn extract(cache: &Path, pkg: &str) -> Result<PathBuf> {
    let policy = output_of(Command::new("apt-cache").args(["policy", &format!("{pkg}:{ARCH}")]))?;
    let version = policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: "))
        .filter(|v| *v != "(none)")
        .ok_or_else(|| anyhow!("no candidate for {pkg}:{ARCH}; run `cargo xtask setup` (apt-get update)"))?;
    say!("{pkg}:{ARCH} {version}");
    let stem = format!("{pkg}_{}_{ARCH}", version.replace(':', "%3a"));
    let deb = cache.join("debs").join(format!("{stem}.deb"));
    if !deb.exists() {
        say!("apt-get download {pkg}:{ARCH}={version}");
        run_checked(
            Command::new("apt-get")
                .args(["download", "-q", "-o", "APT::Sandbox::User=root", &format!("{pkg}:{ARCH}={version}")])
                .current_dir(cache.join("debs")),
        )?;
        existing(deb.clone()).context("apt-get download named the .deb unexpectedly")?;
    }
    // Invariant: x/<stem> exists only once dpkg -x completed (extract aside, then rename).
    let root = cache.join("x").join(&stem);
    if !root.exists() {
        say!("dpkg -x {}", deb.display());
        let tmp = cache.join("x").join(format!(".{stem}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        run_checked(Command::new("dpkg").arg("-x").arg(&deb).arg(&tmp))?;
        std::fs::rename(&tmp, &root)?;
    }
    Ok(root)
}

fn existing(p: PathBuf) -> Result<PathBuf> {
    if !p.exists() {
        bail!("{} missing", p.display());
    }
    Ok(p)
}
