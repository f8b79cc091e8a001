//! dom0/xenstored (the `xenstored` daemon and `xenstore` client) and the initramfs of the
//! `xenstored_dom0` test (testing/init-xenstored.sh), with Linux's Xen device drivers.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::debian::Kernel;
use crate::dom0test::MODULES;
use crate::initramfs::Initramfs;
use crate::{run_checked, say, target_dir, workspace_root};

const TARGET: &str = "aarch64-unknown-linux-musl";

/// /init of the xenstored test.
pub const INIT: &str = include_str!("../../testing/init-xenstored.sh");

/// The checks testing/init-xenstored.sh runs: the test wants an `XS-OK` line for each.
pub const CHECKS: &[&str] = &[
    "start",
    "dom0_nodes",
    "kernel_ring",
    "kernel_xenbus_up",
    "write_read",
    "write_read_kernel",
    "argv0",
    "ls",
    "rm",
    "perms",
    "perms_inherit",
    "perms_bad",
    "watch",
    "watch_kernel",
    "transaction",
    "transaction_kernel",
    "introduce_bad_domain",
    "still_serving",
];

/// Builds the static aarch64 binaries; returns the paths of `xenstored` and `xenstore`.
pub fn build() -> Result<[PathBuf; 2]> {
    say!("cargo build -p xenstored --release --target {TARGET}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "-p", "xenstored", "--release", "--target", TARGET])
            .current_dir(workspace_root()),
    )?;
    let dir = target_dir().join(TARGET).join("release");
    Ok([dir.join("xenstored"), dir.join("xenstore")])
}

/// Writes the initramfs: busybox, the Xen modules of `kernel`, both binaries, INIT.
pub fn write_initramfs(busybox: &Path, kernel: &Kernel, bins: &[PathBuf; 2], out: &Path) -> Result<()> {
    let mut rd = Initramfs::busybox_root(busybox, INIT)?;
    let names: Vec<String> = MODULES.iter().map(|m| (*m).to_owned()).collect();
    rd.add_modules(kernel, &names)?;
    for bin in bins {
        let data = std::fs::read(bin).with_context(|| format!("reading {}", bin.display()))?;
        let name = bin.file_name().expect("binary paths have a name").to_string_lossy();
        rd.file(&format!("bin/{name}"), 0o755, data);
    }
    rd.write_gz(out)
}
