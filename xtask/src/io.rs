//! PV disks and networks of domUs: the ext4 images the domUs boot from, their initramfs,
//! dom0's initramfs for the `io` test (testing/init-io.sh) and its checks, and the host's
//! `e2fsck` of the disk a domU was destroyed in the middle of writing.
//!
//! The images are made on the host with `mke2fs -d` (e2fsprogs), no root or loop device needed:
//!
//! ```text
//! root.img   ext4: /bin/busybox, /sbin/init = testing/io-root-init.sh, /sbin/{poweroff,reboot}
//! ro.img     ext4: /hello = "ro-disk"        (vm1's read-only xvdb)
//! extra.img  ext4: /hello = "hotplug-disk"   (hot-plugged as xvdc)
//! vda.img    root.img's contents on a bigger disk: QEMU's virtio disk, dom0's /dev/vda, vm3's root
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::console::Console;
use crate::debian::{Artifacts, Kernel};
use crate::initramfs::Initramfs;
use crate::steps::{self, Steps};
use crate::{dom0test, run_checked, say, tools};

/// dom0's /init of the test.
pub const DOM0_INIT: &str = include_str!("../../testing/init-io.sh");
/// /init of the domUs' initramfs: frontends loaded, root from xvda.
pub const DOMU_INITRD_INIT: &str = include_str!("../../testing/io-domu-init.sh");
/// /sbin/init on the root images.
pub const ROOT_INIT: &str = include_str!("../../testing/io-root-init.sh");

/// The backends and what they need in dom0 (besides dom0test::MODULES).
pub const DOM0_MODULES: &[&str] = &["xen-blkback", "xen-netback", "loop", "bridge", "virtio_mmio", "virtio_blk"];
/// The frontends in the domUs' initramfs.
pub const DOMU_MODULES: &[&str] = &["xen-blkfront", "xen-netfront"];

/// Where dom0 keeps the domU kernel, initramfs and images.
pub const DIR: &str = "/var/lib/ferrovisor";
const ROOT_MIB: u32 = 32;
const SMALL_MIB: u32 = 4;
const VDA_MIB: u32 = 64;

/// The QEMU machine: dom0 on one pCPU, vm1 and vm2 (then vm3) on others.
pub const TEST_SMP: u32 = 4;

/// One domU's xl.cfg for the test.
fn cfg(name: &str, extra: &str, disks: &[&str], vifs: &[&str]) -> String {
    let list = |v: &[&str]| v.iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(", ");
    let mut s = format!(
        "# Written by cargo xtask (xtask/src/io.rs); fv_*: see testing/io-root-init.sh.\n\
         name = \"{name}\"\nmemory = 128\nvcpus = 1\nkernel = \"{DIR}/vmlinuz\"\nramdisk = \"{DIR}/io-initrd.gz\"\n\
         extra = \"console=hvc0 hostname={name} {extra}\"\non_poweroff = \"destroy\"\non_reboot = \"destroy\"\n\
         on_crash = \"destroy\"\n"
    );
    if !disks.is_empty() {
        s += &format!("disk = [ {} ]\n", list(disks));
    }
    if !vifs.is_empty() {
        s += &format!("vif = [ {} ]\n", list(vifs));
    }
    s
}

/// The test's domUs (testing/init-io.sh names them). vm1's disks use both of xl's disk-spec
/// syntaxes (positional, then keywords).
fn test_cfgs() -> Vec<(&'static str, String)> {
    vec![
        (
            "vm1",
            cfg(
                "vm1",
                "fv_ip=192.0.2.2 fv_get=192.0.2.1",
                &[&format!("{DIR}/vm1.img,raw,xvda,rw"), &format!("vdev=xvdb,access=ro,target={DIR}/ro.img")],
                &["mac=00:16:3e:00:00:02,bridge=xenbr0"],
            ),
        ),
        ("vm2", cfg("vm2", "fv_ip=192.0.2.3 fv_get=192.0.2.2", &[&format!("phy:{DIR}/vm2.img,xvda,w")], &["bridge=xenbr0"])),
        ("vm3", cfg("vm3", "fv_io=writer", &["/dev/vda,raw,xvda,w"], &[])),
        ("bad", cfg("bad", "", &[&format!("{DIR}/missing.img,raw,xvda,w")], &[])),
    ]
}

/// The `bench io` domU: root and the measured disk on dom0's scratch tmpfs (testing/init-io.sh).
fn bench_cfg() -> String {
    cfg(
        "bench",
        "fv_io=bench fv_ip=192.0.2.2 fv_get=192.0.2.1",
        &["/bench/root.img,raw,xvda,rw", "/bench/disk.img,raw,xvdb,rw"],
        &["bridge=xenbr0"],
    )
}

/// The demo domU of `cargo xtask run`: root on its own image, a vif on xenbr0, a shell.
pub fn demo_cfg() -> String {
    cfg("demo", "fv_io=shell fv_ip=192.0.2.2", &[&format!("{DIR}/demo.img,raw,xvda,rw")], &["bridge=xenbr0"])
}

/// A directory tree to put on an ext4 image.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn new(dir: PathBuf) -> Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Tree { dir })
    }

    fn file(&self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap_or(&self.dir))?;
        std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    fn dirs(&self, dirs: &[&str]) -> Result<()> {
        for d in dirs {
            std::fs::create_dir_all(self.dir.join(d))?;
        }
        Ok(())
    }

    /// `mke2fs -t ext4 -d` of the tree into `out` (`mib` MiB, replaced if there).
    fn ext4(&self, out: &Path, mib: u32, label: &str) -> Result<()> {
        let _ = std::fs::remove_file(out);
        let mut cmd = Command::new(mke2fs());
        cmd.args(["-q", "-F", "-t", "ext4", "-L", label, "-E", "root_owner=0:0", "-d"])
            .arg(&self.dir)
            .arg(out)
            .arg(format!("{mib}M"));
        run_checked(&mut cmd).with_context(|| format!("mke2fs of {}", out.display()))
    }
}

/// An e2fsprogs command by full path where it is (/sbin is not on every user's PATH).
fn sbin(name: &'static str) -> String {
    ["/usr/sbin", "/sbin"].iter().map(|d| format!("{d}/{name}")).find(|p| Path::new(p).exists()).unwrap_or_else(|| name.into())
}

fn mke2fs() -> String {
    sbin("mke2fs")
}

fn e2fsck() -> String {
    sbin("e2fsck")
}

/// The root filesystem tree: busybox, the init, poweroff/reboot that sync and force, and
/// `tool` (testing/xen-dom0-test, for `bench io`) as /bin/xen-dom0-test if given.
fn root_tree(busybox: &Path, dir: PathBuf, tool: Option<&Path>) -> Result<Tree> {
    let t = Tree::new(dir)?;
    if let Some(tool) = tool {
        t.file("bin/xen-dom0-test", 0o755, &std::fs::read(tool).with_context(|| format!("reading {}", tool.display()))?)?;
    }
    t.file("bin/busybox", 0o755, &std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?)?;
    std::os::unix::fs::symlink("busybox", t.dir.join("bin/sh"))?;
    t.file("sbin/init", 0o755, ROOT_INIT.as_bytes())?;
    t.file("sbin/poweroff", 0o755, b"#!/bin/sh\nsync\nexec /bin/busybox poweroff -f\n")?;
    t.file("sbin/reboot", 0o755, b"#!/bin/sh\nsync\nexec /bin/busybox reboot -f\n")?;
    t.dirs(&["proc", "sys", "dev", "tmp", "mnt", "var/fv", "data", "etc", "root"])?;
    Ok(t)
}

/// The images, built in `dir`: root.img, ro.img, extra.img (vda.img by [`vda_image`]).
pub struct Images {
    pub root: PathBuf,
    pub ro: PathBuf,
    pub extra: PathBuf,
}

pub fn images(busybox: &Path, dir: &Path, tool: Option<&Path>) -> Result<Images> {
    say!("ext4 images for the domUs ({})", mke2fs());
    let root = dir.join("root.img");
    root_tree(busybox, dir.join("root-tree"), tool)?.ext4(&root, ROOT_MIB, "fv-root")?;
    let small = |name: &str, hello: &str| -> Result<PathBuf> {
        let t = Tree::new(dir.join(format!("{name}-tree")))?;
        t.file("hello", 0o644, hello.as_bytes())?;
        let p = dir.join(format!("{name}.img"));
        t.ext4(&p, SMALL_MIB, name)?;
        Ok(p)
    };
    Ok(Images { root, ro: small("ro", "ro-disk")?, extra: small("extra", "hotplug-disk")? })
}

/// A fresh root image for the virtio disk (vm3's root).
pub fn vda_image(busybox: &Path, dir: &Path) -> Result<PathBuf> {
    let p = dir.join("vda.img");
    root_tree(busybox, dir.join("vda-tree"), None)?.ext4(&p, VDA_MIB, "fv-vda")?;
    Ok(p)
}

/// QEMU arguments giving dom0 `img` as a virtio-mmio disk (/dev/vda).
pub fn virtio_disk_args(img: &Path) -> Vec<String> {
    let f = img.display().to_string().replace(',', ",,");
    vec![
        "-drive".into(),
        format!("file={f},format=raw,if=none,id=vd0,cache=unsafe"),
        "-device".into(),
        "virtio-blk-device,drive=vd0".into(),
    ]
}

/// The domUs' initramfs: busybox, the frontends, testing/io-domu-init.sh.
pub fn domu_initramfs(busybox: &Path, kernel: &Kernel) -> Result<Vec<u8>> {
    let mut rd = Initramfs::busybox_root(busybox, DOMU_INITRD_INIT)?;
    rd.add_modules(kernel, &DOMU_MODULES.iter().map(|m| m.to_string()).collect::<Vec<_>>())?;
    rd.to_gz()
}

/// Adds to a dom0 initramfs what PV devices need: the domU kernel, initramfs and images
/// under [`DIR`], and `cfgs` in /etc/xen. The caller adds [`DOM0_MODULES`].
pub fn add_domu_files(rd: &mut Initramfs, art: &Artifacts, kernel: &Kernel, imgs: &Images, cfgs: &[(&str, String)]) -> Result<()> {
    let d = DIR.trim_start_matches('/');
    let image = std::fs::read(&kernel.image).with_context(|| format!("reading {}", kernel.image.display()))?;
    rd.file(&format!("{d}/vmlinuz"), 0o644, image);
    rd.file(&format!("{d}/io-initrd.gz"), 0o644, domu_initramfs(&art.busybox, kernel)?);
    for (name, p) in [("root.img", &imgs.root), ("ro.img", &imgs.ro), ("extra.img", &imgs.extra)] {
        rd.file(&format!("{d}/{name}"), 0o644, std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    for (name, text) in cfgs {
        rd.file(&format!("etc/xen/{name}.cfg"), 0o644, text.clone().into_bytes());
    }
    Ok(())
}

/// What testing/init-io.sh does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// The `io` test (IO-TEST-* markers).
    Test,
    /// `cargo xtask bench io`: `bench_tool` in dom0 and (in the images) in the domU.
    Bench,
}

/// Writes the test's (or the benchmark's) dom0 initramfs to `out`. `bench_tool` is
/// testing/xen-dom0-test, needed for [`Mode::Bench`] (and then in `imgs`' root image too).
pub fn write_dom0_initramfs(art: &Artifacts, t: &tools::Tools, imgs: &Images, mode: Mode, bench_tool: Option<&Path>, out: &Path) -> Result<()> {
    let mut rd = steps::dom0_root(&art.busybox, DOM0_INIT)?;
    t.install(&mut rd)?;
    if let Some(tool) = bench_tool {
        rd.file("usr/bin/xen-dom0-test", 0o755, std::fs::read(tool).with_context(|| format!("reading {}", tool.display()))?);
    }
    let mode_name = match mode {
        Mode::Test => "test",
        Mode::Bench => "bench",
    };
    rd.file("etc/ferrovisor/io.env", 0o644, format!("FV_MODE={mode_name}\n").into_bytes());
    let modules: Vec<String> = dom0test::MODULES.iter().chain(DOM0_MODULES).map(|m| m.to_string()).collect();
    let order = rd.add_modules(&art.cloud, &modules)?;
    say!("io: dom0 modules {}", order.join(" "));
    let cfgs = match mode {
        Mode::Test => test_cfgs(),
        Mode::Bench => vec![("bench", bench_cfg())],
    };
    add_domu_files(&mut rd, art, &art.cloud, imgs, &cfgs)?;
    rd.write_gz(out)
}

/// The test's steps in testing/init-io.sh's order, each with how long it may take after the
/// previous marker (see [`Steps::steps`]).
pub const STEPS: &[(&str, u64)] = &[
    ("xencommons", 120),
    ("bridge", 60),
    ("missing_image", 150),
    ("create_vm1", 180),
    ("root_vm1", 180),
    ("ro_vm1", 150),
    ("net_vm1", 150),
    ("dom0_to_vm1", 150),
    ("create_vm2", 180),
    ("vm2_to_vm1", 180),
    ("isolation", 120),
    ("block_attach", 180),
    ("block_detach", 180),
    ("network_attach", 180),
    ("network_detach", 180),
    ("destroy_vm2", 150),
    ("destroy_vm1", 150),
    ("cleanup", 90),
    ("recreate_vm1", 180),
    ("persist", 180),
    ("destroy_vm1_again", 150),
    ("create_vm3", 180),
    ("writing_vm3", 180),
    ("destroy_vm3", 150),
    ("memory", 120),
];

/// testing/init-io.sh's `MARK`.
pub const STEPS_PREFIX: &str = "IO-TEST-";

/// Checks testing/init-io.sh's markers: every step must pass, then QEMU exits cleanly.
pub fn check(console: &mut Console) -> Result<()> {
    let steps = Steps { test: "io", prefix: STEPS_PREFIX, script: "testing/init-io.sh", steps: STEPS };
    steps.run(console, |_, _| Ok(()))?.finish(console, "problems", &[])
}

/// After QEMU: the disk vm3 was destroyed while writing must be consistent once its journal is
/// replayed (`e2fsck -E journal_only`, then a forced read-only check `e2fsck -fn`).
pub fn fsck(vda: &Path) -> Result<()> {
    let copy = vda.with_extension("fsck.img");
    std::fs::copy(vda, &copy).with_context(|| format!("copying {}", vda.display()))?;
    let replay = Command::new(e2fsck()).args(["-y", "-E", "journal_only"]).arg(&copy).output()?;
    // 0: clean, 1: journal replayed/fixed.
    ensure!(
        matches!(replay.status.code(), Some(0 | 1)),
        "e2fsck -E journal_only {}: {}\n{}",
        copy.display(),
        replay.status,
        String::from_utf8_lossy(&replay.stdout)
    );
    let out = Command::new(e2fsck()).args(["-f", "-n"]).arg(&copy).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "e2fsck -fn of vm3's disk after the destroy: {}\n{text}", out.status);
    say!("io: e2fsck -fn of vm3's disk: clean ({})", text.lines().last().unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_reports_every_step_in_order() {
        steps::assert_steps_in_order("testing/init-io.sh", DOM0_INIT, STEPS.iter().map(|s| s.0));
    }

    #[test]
    fn cfgs_name_their_guest_and_the_script_uses_them() {
        for (name, text) in test_cfgs() {
            assert!(text.contains(&format!("name = \"{name}\"")));
            assert!(DOM0_INIT.contains(&format!("/etc/xen/{name}.cfg")) || DOM0_INIT.contains(&format!(" {name} ")), "{name}");
        }
        assert!(demo_cfg().contains("demo.img"));
    }
}

/// One `bench io` boot: the figures testing/init-io.sh printed.
#[derive(Clone, Debug, Default)]
pub struct BenchSample {
    /// (metric, value) in the order printed.
    pub figures: Vec<(String, f64)>,
}

/// Reads one bench boot's IO-BENCH-* lines.
pub fn measure(console: &mut Console) -> Result<BenchSample> {
    console.expect("FV-INIT uptime=", Duration::from_secs(180))?;
    let mut s = BenchSample::default();
    let mut add = |prefix: &str, rest: &str| -> Result<()> {
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=').with_context(|| format!("unparsed figure {kv:?}"))?;
            s.figures.push((format!("{prefix}{k}"), v.parse().with_context(|| format!("figure {kv:?}"))?));
        }
        Ok(())
    };
    loop {
        let (line, _) = console.expect("IO-BENCH-", Duration::from_secs(600))?;
        let (what, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match what {
            "DOM0" => add("dom0_", rest)?,
            "DOMU" => add("domu_", rest)?,
            "NET" => add("", rest)?,
            "DONE" => break,
            "FAIL" => bail!("IO-BENCH-FAIL {rest}"),
            _ => bail!("unparsed IO-BENCH-{line}"),
        }
    }
    console.wait_exit(Duration::from_secs(60))?;
    Ok(s)
}
