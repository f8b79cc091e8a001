//! Idempotent machine setup for a Debian host: every check is cheap and each
//! slow action (apt, rustup) runs only when its check fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::{output_of, run_checked, say};

/// (command that must be on PATH, Debian package providing it).
/// e2fsprogs builds the domUs' ext4 images (`mke2fs -d`) and checks them (`e2fsck`).
const HOST_TOOLS: &[(&str, &str)] = &[("qemu-system-aarch64", "qemu-system-arm"), ("mke2fs", "e2fsprogs")];

const RUST_TARGETS: &[&str] = &["aarch64-unknown-none-softfloat", "aarch64-unknown-linux-musl"];

pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = HOST_TOOLS.iter().filter(|(bin, _)| which(bin).is_none()).map(|&(_, pkg)| pkg).collect();
    let foreign = output_of(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    let add_arm64 = !foreign.split_whitespace().any(|a| a == "arm64");
    let native = output_of(Command::new("dpkg").arg("--print-architecture"))?;
    let update = add_arm64 || !has_lists("arm64") || (!missing.is_empty() && !has_lists(native.trim()));

    if !missing.is_empty() || update {
        require_root(&format!("apt setup (missing: {missing:?}, update lists: {update})"))?;
    }
    if add_arm64 {
        say!("dpkg --add-architecture arm64");
        run_checked(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
    }
    if update {
        say!("apt-get update (arm64 package lists missing)");
        run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    }
    if !missing.is_empty() {
        say!("apt-get install {}", missing.join(" "));
        run_checked(Command::new("apt-get").args(["install", "-y", "-q", "--no-install-recommends"]).args(&missing))?;
    }

    let installed = output_of(Command::new("rustup").args(["target", "list", "--installed"]))?;
    let targets: Vec<&str> = RUST_TARGETS.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if !targets.is_empty() {
        say!("rustup target add {}", targets.join(" "));
        run_checked(Command::new("rustup").args(["target", "add"]).args(&targets))?;
    }
    Ok(())
}

/// True when apt has downloaded a package index for `arch`.
fn has_lists(arch: &str) -> bool {
    let suffix = format!("binary-{arch}_Packages");
    std::fs::read_dir("/var/lib/apt/lists")
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(&suffix)))
        .unwrap_or(false)
}

fn require_root(what: &str) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
    if uid != Some("0") {
        bail!("{what} needs root; run `cargo xtask setup` as root once");
    }
    Ok(())
}

/// `bin` on PATH, or in /usr/sbin or /sbin (not on every user's PATH).
fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
