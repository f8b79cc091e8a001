//! Our dom0 toolstack as static aarch64 musl binaries (`cargo xtask tools`): `xl` (dom0/xl),
//! `xenstored` and the `xenstore` client (dom0/xenstored), `xenconsoled` (dom0/xenconsoled),
//! plus the `xencommons` start script, and how they are laid out in a dom0 initramfs.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::initramfs::Initramfs;
use crate::{output_of, run_checked, say, target_dir, workspace_root};

pub const TARGET: &str = "aarch64-unknown-linux-musl";

/// The workspace packages built by [`build`], and the binaries each one provides.
const PACKAGES: &[(&str, &[&str])] =
    &[("xl", &["xl"]), ("xenstored", &["xenstored", "xenstore"]), ("xenconsoled", &["xenconsoled"])];

/// The start script of the dom0 daemons (xenstored, xenconsoled), relative to the workspace
/// root. dom0 initramfs images carry it as [`XENCOMMONS_DOM0`].
pub const XENCOMMONS: &str = "dom0/xenconsoled/xencommons";
/// Where the dom0 initramfs images hold it (run as `/etc/init.d/xencommons start`).
pub const XENCOMMONS_DOM0: &str = "etc/init.d/xencommons";

/// The `xenstore-*` names our `xenstore` client answers to (it dispatches on argv[0]).
const XENSTORE_LINKS: &[&str] = &["read", "write", "ls", "list", "rm", "exists", "watch", "chmod"];

/// The directory holding the built binaries.
#[derive(Clone)]
pub struct Tools {
    pub dir: PathBuf,
}

impl Tools {
    pub fn xl(&self) -> PathBuf {
        self.dir.join("xl")
    }
    pub fn xenstored(&self) -> PathBuf {
        self.dir.join("xenstored")
    }
    pub fn xenstore(&self) -> PathBuf {
        self.dir.join("xenstore")
    }
    pub fn xenconsoled(&self) -> PathBuf {
        self.dir.join("xenconsoled")
    }

    /// Adds the binaries as a dom0 has them: `xl`, `xenstored`, `xenconsoled` in /usr/sbin,
    /// `xenstore` (and its `xenstore-*` links) in /usr/bin, and xencommons.
    pub fn install(&self, rd: &mut Initramfs) -> Result<()> {
        for (path, bin) in [
            ("usr/sbin/xl", self.xl()),
            ("usr/sbin/xenstored", self.xenstored()),
            ("usr/sbin/xenconsoled", self.xenconsoled()),
            ("usr/bin/xenstore", self.xenstore()),
        ] {
            rd.file(path, 0o755, std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?);
        }
        for l in XENSTORE_LINKS {
            rd.symlink(&format!("usr/bin/xenstore-{l}"), "xenstore");
        }
        rd.file(XENCOMMONS_DOM0, 0o755, xencommons()?);
        Ok(())
    }
}

/// The xencommons script's contents.
pub fn xencommons() -> Result<Vec<u8>> {
    let path = workspace_root().join(XENCOMMONS);
    std::fs::read(&path).with_context(|| {
        format!("reading the xencommons start script {} (it comes with dom0/xenconsoled)", path.display())
    })
}

/// Builds the static aarch64 binaries with one cargo invocation; returns their directory.
/// Fails with a clear message when a package is not (yet) a workspace member.
pub fn build() -> Result<Tools> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let meta = output_of(
        Command::new(&cargo).args(["metadata", "--no-deps", "--format-version", "1"]).current_dir(workspace_root()),
    )
    .context("cargo metadata")?;
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !meta.contains(&format!("\"name\":\"{p}\"")))
        .collect();
    if !missing.is_empty() {
        bail!(
            "workspace package(s) {} missing: the dom0 tools are xl (dom0/xl), xenstored (dom0/xenstored) and \
             xenconsoled (dom0/xenconsoled), each a member of the root Cargo.toml",
            missing.join(", ")
        );
    }
    let mut cmd = Command::new(&cargo);
    cmd.arg("build");
    for (p, _) in PACKAGES {
        cmd.args(["-p", p]);
    }
    cmd.args(["--release", "--target", TARGET]).current_dir(workspace_root());
    say!("cargo build -p xl -p xenstored -p xenconsoled --release --target {TARGET}");
    run_checked(&mut cmd)?;
    let dir = target_dir().join(TARGET).join("release");
    for bin in PACKAGES.iter().flat_map(|(_, bins)| bins.iter()) {
        let path = dir.join(bin);
        if !path.is_file() {
            bail!("cargo built no {} (is `{bin}` a [[bin]] of its package?)", path.display());
        }
    }
    say!("dom0 tools in {}: {}", dir.display(), PACKAGES.iter().flat_map(|(_, b)| b.iter().copied()).collect::<Vec<_>>().join(" "));
    Ok(Tools { dir })
}

/// `cargo xtask tools`: builds, then prints the directory last (stdout).
pub fn command() -> Result<()> {
    let tools = build()?;
    println!("{}", tools.dir.display());
    Ok(())
}
