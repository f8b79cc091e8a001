//! testing/xen-dom0-test, the dom0 Xen ABI checker and micro-benchmark, and the initramfs
//! that runs it (testing/init-xen-abi.sh) with Linux's Xen device drivers loaded.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::debian::Kernel;
use crate::initramfs::Initramfs;
use crate::{run_checked, say, target_dir, workspace_root};

const TARGET: &str = "aarch64-unknown-linux-musl";

/// /init of the ABI test and benchmark.
pub const INIT: &str = include_str!("../../testing/init-xen-abi.sh");

/// Linux's Xen device drivers (`=m` in Debian's 6.1 kernels, drivers/xen): /dev/xen/evtchn,
/// /dev/xen/gntdev, /dev/xen/gntalloc, /dev/xen/privcmd, and xenfs for /proc/xen.
pub const MODULES: &[&str] = &["xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs"];

/// The checks the program runs, in order: the test wants an `XT-OK` line for each.
pub const CHECKS: &[&str] = &["sysfs", "xenfs", "privcmd", "evtchn", "gnt"];

/// The benchmark metrics (`XB-RESULT <metric> <value>`), with their table labels. The syscall
/// is the baseline: dom0's kernel alone, no hypervisor involved.
pub const METRICS: &[(&str, &str)] = &[
    ("null_syscall_ns", "getppid syscall (ns)"),
    ("null_hypercall_ns", "null hypercall (ns)"),
    ("evtchn_rtt_ns", "evtchn round trip (ns)"),
    ("grant_map_unmap_us", "grant map+unmap (us)"),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// XT-* checks.
    Check,
    /// XB-* benchmarks (`--bench`).
    Bench,
}

/// Builds the static aarch64 binary; returns its path.
pub fn build() -> Result<PathBuf> {
    say!("cargo build -p xen-dom0-test --release --target {TARGET}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "-p", "xen-dom0-test", "--release", "--target", TARGET])
            .current_dir(workspace_root()),
    )?;
    Ok(target_dir().join(TARGET).join("release/xen-dom0-test"))
}

/// Writes the initramfs: busybox, the Xen modules of `kernel`, the program, INIT.
pub fn write_initramfs(busybox: &Path, kernel: &Kernel, program: &Path, mode: Mode, out: &Path) -> Result<()> {
    let mut rd = Initramfs::busybox_root(busybox, INIT)?;
    let names: Vec<String> = MODULES.iter().map(|m| (*m).to_owned()).collect();
    let order = rd.add_modules(kernel, &names)?;
    say!("xen modules for dom0 ({}): {}", kernel.release, order.join(" "));
    let data = std::fs::read(program).with_context(|| format!("reading {}", program.display()))?;
    rd.file("bin/xen-dom0-test", 0o755, data);
    let args = match mode {
        Mode::Check => "",
        Mode::Bench => "--bench",
    };
    rd.file("etc/xen-dom0-test.args", 0o644, format!("{args}\n").into_bytes());
    rd.write_gz(out)
}
