//! dom0/xenstored (the `xenstored` daemon and `xenstore` client) and the initramfs of the
//! `xenstored_dom0` test (testing/init-xenstored.sh), with Linux's Xen device drivers.

use std::path::Path;

use anyhow::{Context, Result};

use crate::debian::Kernel;
use crate::dom0test::MODULES;
use crate::initramfs::Initramfs;
use crate::tools::Tools;

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

/// Writes the initramfs: busybox, the Xen modules of `kernel`, `xenstored` and `xenstore`
/// (from [`crate::tools::build`]) in /bin, INIT.
pub fn write_initramfs(busybox: &Path, kernel: &Kernel, tools: &Tools, out: &Path) -> Result<()> {
    let mut rd = Initramfs::busybox_root(busybox, INIT)?;
    let names: Vec<String> = MODULES.iter().map(|m| (*m).to_owned()).collect();
    rd.add_modules(kernel, &names)?;
    for bin in [tools.xenstored(), tools.xenstore()] {
        let data = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
        let name = bin.file_name().expect("binary paths have a name").to_string_lossy();
        rd.file(&format!("bin/{name}"), 0o755, data);
    }
    rd.write_gz(out)
}
