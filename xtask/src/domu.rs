//! domUs: the domU initramfs (testing/domu-init.sh), the dom0 initramfs that creates domUs
//! (testing/init-domu.sh with the toolstack, the domU kernel and initramfs, and xl.cfg files),
//! and the checks of the `domu` test.
//!
//! dom0's layout:
//!
//! ```text
//! /etc/ferrovisor/domu.env          FV_MODE (test|bench|demo), FV_TOOLSTACK (ours|debian)
//! /etc/xen/<name>.cfg               the domUs (GUESTS, BENCH; the demo's from xtask/src/io.rs)
//! /var/lib/ferrovisor/vmlinuz       the domU kernel: the same Debian Image as dom0's
//! /var/lib/ferrovisor/domu-initrd.gz
//! /usr/sbin/{xl,xenstored,xenconsoled} /usr/bin/xenstore* /etc/init.d/xencommons   (ours)
//! Debian's xen-utils-4.17 & co. under /usr/lib/xen-4.17, /usr/sbin, ...             (debian)
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::console::Console;
use crate::debian::{Artifacts, Kernel};
use crate::initramfs::Initramfs;
use crate::steps::{self, Steps};
use crate::{debtools, dom0test, tools};

/// dom0's /init.
pub const DOM0_INIT: &str = include_str!("../../testing/init-domu.sh");
/// The domUs' /init.
pub const DOMU_INIT: &str = include_str!("../../testing/domu-init.sh");

/// Where dom0 keeps the domU kernel and initramfs.
const DOMU_KERNEL: &str = "/var/lib/ferrovisor/vmlinuz";
const DOMU_INITRD: &str = "/var/lib/ferrovisor/domu-initrd.gz";
/// Every domU's RAM (MiB).
pub const DOMU_MEM_MIB: u32 = 128;

/// The `domu` test's QEMU machine: dom0 keeps one vCPU (hence one pCPU under Ferrovisor's
/// null-scheduler-like placement), the domUs take up to three more.
pub const TEST_SMP: u32 = 4;
pub const TEST_DOM0_VCPUS: u32 = 1;
pub const TEST_HV_ARGS: &str = "dom0_max_vcpus=1";

/// What dom0's /init does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// The `domu` test: DOMU-TEST-* markers.
    Test,
    /// `cargo xtask bench domu`: one domU, DOMU-BENCH-* markers.
    Bench,
    /// `cargo xtask run`: xencommons started, /etc/xen/demo.cfg, a shell.
    Demo,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Bench => "bench",
            Mode::Demo => "demo",
        }
    }
}

/// Which toolstack dom0 runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Toolstack {
    /// dom0/xl, dom0/xenstored, dom0/xenconsoled (`cargo xtask tools`), started by xencommons.
    Ours,
    /// Debian's Xen 4.17 xl, xenstored, xen-init-dom0 and xenconsoled (xtask/src/debtools.rs).
    Debian,
}

impl Toolstack {
    pub fn name(self) -> &'static str {
        match self {
            Toolstack::Ours => "ours",
            Toolstack::Debian => "debian",
        }
    }
}

impl FromStr for Toolstack {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ours" => Ok(Toolstack::Ours),
            "debian" => Ok(Toolstack::Debian),
            _ => bail!("unknown toolstack {s:?} (ours|debian)"),
        }
    }
}

/// One domU's xl.cfg.
struct Guest {
    name: &'static str,
    vcpus: u32,
    /// testing/domu-init.sh's keys (and kernel options) after `console=hvc0 hostname=<name>`.
    args: &'static str,
    on_poweroff: &'static str,
    on_reboot: &'static str,
    on_crash: &'static str,
}

/// The domUs of the test (testing/init-domu.sh names them).
const GUESTS: &[Guest] = &[
    // Two side by side; domu1 powers itself off on a cue from dom0.
    Guest { name: "domu1", vcpus: 1, args: "fv_test=poweroff fv_wait=60", on_poweroff: "destroy", on_reboot: "restart", on_crash: "destroy" },
    Guest { name: "domu2", vcpus: 2, args: "fv_test=alive", on_poweroff: "destroy", on_reboot: "restart", on_crash: "destroy" },
    // Reboots at every boot: comes back with a new domid.
    Guest { name: "domu3", vcpus: 1, args: "fv_test=reboot", on_poweroff: "destroy", on_reboot: "restart", on_crash: "destroy" },
    // Keeps beating while domu5 panics (arm64 Linux then reboots: panic=-1, on_reboot=destroy).
    Guest { name: "domu4", vcpus: 1, args: "fv_test=alive", on_poweroff: "destroy", on_reboot: "restart", on_crash: "destroy" },
    Guest { name: "domu5", vcpus: 1, args: "fv_test=panic panic=-1", on_poweroff: "destroy", on_reboot: "destroy", on_crash: "destroy" },
];
const BENCH: Guest =
    Guest { name: "bench", vcpus: 1, args: "fv_test=alive", on_poweroff: "destroy", on_reboot: "destroy", on_crash: "destroy" };

fn xl_cfg(g: &Guest) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Written by cargo xtask (xtask/src/domu.rs); fv_test: see testing/domu-init.sh.");
    let _ = writeln!(s, "name = \"{}\"", g.name);
    let _ = writeln!(s, "memory = {DOMU_MEM_MIB}");
    let _ = writeln!(s, "vcpus = {}", g.vcpus);
    let _ = writeln!(s, "kernel = \"{DOMU_KERNEL}\"");
    let _ = writeln!(s, "ramdisk = \"{DOMU_INITRD}\"");
    let _ = writeln!(s, "extra = \"console=hvc0 hostname={} {}\"", g.name, g.args);
    let _ = writeln!(s, "on_poweroff = \"{}\"", g.on_poweroff);
    let _ = writeln!(s, "on_reboot = \"{}\"", g.on_reboot);
    let _ = writeln!(s, "on_crash = \"{}\"", g.on_crash);
    s
}

/// The domU initramfs: busybox and testing/domu-init.sh, nothing else.
pub fn domu_initramfs(busybox: &Path) -> Result<Vec<u8>> {
    Initramfs::busybox_root(busybox, DOMU_INIT)?.to_gz()
}

/// Writes dom0's initramfs to `out`: busybox, testing/init-domu.sh in `mode`, the Xen modules
/// of `kernel` (and `extra_modules`), `toolstack`, `kernel`'s Image and the domU initramfs as
/// the domUs' kernel and ramdisk, the xl.cfg files. `tools` must be given for `Toolstack::Ours`.
/// Returns the modules' load order.
pub fn write_dom0_initramfs(
    art: &Artifacts,
    kernel: &Kernel,
    mode: Mode,
    toolstack: Toolstack,
    tools: Option<&tools::Tools>,
    extra_modules: &[String],
    out: &Path,
) -> Result<Vec<String>> {
    let mut rd = steps::dom0_root(&art.busybox, DOM0_INIT)?;
    match toolstack {
        Toolstack::Ours => tools.ok_or_else(|| anyhow!("our toolstack needs `cargo xtask tools`"))?.install(&mut rd)?,
        Toolstack::Debian => debtools::add_toolstack(&mut rd)?,
    }
    let mut modules: Vec<String> = dom0test::MODULES.iter().map(|m| m.to_string()).collect();
    if mode == Mode::Demo {
        // The demo domU boots from its own disk with a network (xtask/src/io.rs).
        modules.extend(crate::io::DOM0_MODULES.iter().map(|m| m.to_string()));
    }
    modules.extend(extra_modules.iter().cloned());
    let order = rd.add_modules(kernel, &modules)?;
    rd.file(
        "etc/ferrovisor/domu.env",
        0o644,
        format!("FV_MODE={}\nFV_TOOLSTACK={}\n", mode.name(), toolstack.name()).into_bytes(),
    );
    let image = std::fs::read(&kernel.image).with_context(|| format!("reading {}", kernel.image.display()))?;
    rd.file(DOMU_KERNEL.trim_start_matches('/'), 0o644, image);
    rd.file(DOMU_INITRD.trim_start_matches('/'), 0o644, domu_initramfs(&art.busybox)?);
    let guests: Vec<&Guest> = match mode {
        Mode::Test => GUESTS.iter().collect(),
        Mode::Bench => vec![&BENCH],
        Mode::Demo => {
            let dir = crate::work_dir()?.join("demo");
            std::fs::create_dir_all(&dir)?;
            let imgs = crate::io::images(&art.busybox, &dir, None)?;
            crate::io::add_domu_files(&mut rd, art, kernel, &imgs, &[("demo", crate::io::demo_cfg())])?;
            vec![]
        }
    };
    for g in guests {
        rd.file(&format!("etc/xen/{}.cfg", g.name), 0o644, xl_cfg(g).into_bytes());
    }
    rd.write_gz(out)?;
    Ok(order)
}

/// The test's steps in the order testing/init-domu.sh reports them, each with how long it may
/// take after the previous marker (see [`Steps::steps`]).
pub const STEPS: &[(&str, u64)] = &[
    ("xencommons", 120),
    ("create_domu1", 180),
    ("create_domu2", 180),
    ("init_domu1", 240),
    ("init_domu2", 240),
    ("list", 90),
    ("poweroff_domu1", 180),
    ("destroy_domu2", 180),
    ("memory", 120),
    ("create_domu3", 180),
    ("reboot_domu3", 420),
    ("destroy_domu3", 150),
    ("create_domu4", 180),
    ("init_domu4", 240),
    ("create_domu5", 180),
    ("panic_domu5", 300),
    ("alive_domu4", 120),
    ("destroy_domu4", 180),
    ("memory_final", 120),
];

/// testing/init-domu.sh's `MARK`.
pub const STEPS_PREFIX: &str = "DOMU-TEST-";

/// Checks testing/init-domu.sh's test markers: every step must pass; `xl list` with domu1 and
/// domu2 must show both with 128 MiB and 1 and 2 vCPUs (and dom0 with `dom0_vcpus`).
pub fn check(console: &mut Console, dom0_vcpus: u32) -> Result<()> {
    let steps = Steps { test: "domu", prefix: STEPS_PREFIX, script: "testing/init-domu.sh", steps: STEPS };
    let outcome = steps.run(console, |step, lines| if step == "list" { check_list(lines, dom0_vcpus) } else { Ok(()) })?;
    outcome.finish(console, "problems", &[])
}

/// The `xl list` between DOMU-LIST-BEGIN and DOMU-LIST-END: Domain-0 with `dom0_vcpus`
/// vCPUs, domu1 and domu2 with 128 MiB and 1 and 2 vCPUs.
fn check_list(lines: &[String], dom0_vcpus: u32) -> Result<()> {
    let begin = lines.iter().position(|l| l.contains("DOMU-LIST-BEGIN")).ok_or_else(|| anyhow!("no DOMU-LIST-BEGIN"))?;
    let end = lines.iter().position(|l| l.contains("DOMU-LIST-END")).ok_or_else(|| anyhow!("no DOMU-LIST-END"))?;
    let body: Vec<&str> =
        lines[begin + 1..end].iter().map(String::as_str).filter(|l| !crate::xltest::noise(l)).collect();
    let row = |name: &str| -> Vec<&str> {
        body.iter().find(|l| l.split_whitespace().next() == Some(name)).map(|l| l.split_whitespace().collect()).unwrap_or_default()
    };
    for (name, mem, vcpus) in
        [("Domain-0", "512".to_string(), dom0_vcpus), ("domu1", DOMU_MEM_MIB.to_string(), 1), ("domu2", DOMU_MEM_MIB.to_string(), 2)]
    {
        let r = row(name);
        ensure!(
            r.len() == 6 && r[1].parse::<u32>().is_ok() && r[2] == mem && r[3] == vcpus.to_string(),
            "xl list: {name} row {r:?}, expected {mem} MiB and {vcpus} vCPU(s); xl list:\n      {}",
            body.join("\n      ")
        );
    }
    Ok(())
}

/// One `bench domu` boot: what testing/init-domu.sh measured in dom0, and the host time.
pub struct BenchSample {
    /// dom0 seconds for `xl create` to return.
    pub xl_create: f64,
    /// dom0 seconds from `xl create` until the domU's DOMU-INIT was in its console log.
    pub create_to_init: f64,
    /// Host seconds between dom0's DOMU-BENCH-CREATE and DOMU-BENCH-SEEN lines.
    pub create_to_init_wall: f64,
    /// The domU's uptime at its /init.
    pub domu_uptime: f64,
    /// dom0 seconds for `xl destroy`.
    pub xl_destroy: f64,
    /// Host memory the domU took beyond its RAM (xl info free_memory, MiB resolution), KiB.
    pub overhead_kib: f64,
}

/// Reads one bench boot's markers.
pub fn measure(console: &mut Console) -> Result<BenchSample> {
    console.expect("FV-INIT uptime=", Duration::from_secs(180))?;
    let (mut created, mut seen, mut result) = (None, None, None);
    loop {
        let (line, at) = console.expect("DOMU-BENCH-", Duration::from_secs(240))?;
        let (what, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match what {
            "CREATE" => created = Some(at),
            "SEEN" => seen = Some(at),
            "RESULT" => result = Some(rest.to_owned()),
            "FAIL" => bail!("dom0: {rest}"),
            "DONE" => break,
            _ => bail!("unparsed marker `DOMU-BENCH-{line}`"),
        }
    }
    let (Some(created), Some(seen), Some(kv)) = (created, seen, result) else {
        bail!("DOMU-BENCH-DONE without CREATE, SEEN and RESULT");
    };
    let get = |k: &str| -> Result<f64> {
        kv.split_whitespace()
            .find_map(|f| f.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no number for {k} in `{kv}`"))
    };
    let sample = BenchSample {
        xl_create: get("xl_create")?,
        create_to_init: get("create_to_init")?,
        create_to_init_wall: (seen - created).as_secs_f64(),
        domu_uptime: get("domu_uptime")?,
        xl_destroy: get("xl_destroy")?,
        overhead_kib: (get("free_before_mib")? - get("free_after_mib")? - get("memory_mib")?) * 1024.0,
    };
    let status = console.wait_exit(Duration::from_secs(30))?;
    ensure!(status.success(), "QEMU exited with {status} after DOMU-BENCH-DONE");
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_reports_every_step_in_order() {
        steps::assert_steps_in_order("testing/init-domu.sh", DOM0_INIT, STEPS.iter().map(|s| s.0));
    }

    #[test]
    fn cfgs_name_their_guest() {
        for g in GUESTS.iter().chain([&BENCH]) {
            let cfg = xl_cfg(g);
            assert!(cfg.contains(&format!("name = \"{}\"", g.name)));
            assert!(cfg.contains(&format!("hostname={} ", g.name)));
            assert!(DOM0_INIT.contains(g.name), "{} unused by testing/init-domu.sh", g.name);
        }
    }

    #[test]
    fn test_machine() {
        assert_eq!(TEST_HV_ARGS, format!("dom0_max_vcpus={TEST_DOM0_VCPUS}"));
        // dom0's vCPUs plus the most domU vCPUs alive at once (domu1 + domu2) fit the pCPUs.
        let busiest: u32 = GUESTS.iter().filter(|g| g.name == "domu1" || g.name == "domu2").map(|g| g.vcpus).sum();
        assert!(TEST_DOM0_VCPUS + busiest <= TEST_SMP);
    }

    #[test]
    fn list_rows() {
        let lines: Vec<String> = [
            "DOMU-LIST-BEGIN",
            "Name                                        ID   Mem VCPUs\tState\tTime(s)",
            "Domain-0                                     0   512     1     r-----      10.3",
            "(XEN) noise",
            "domu1                                        1   128     1     -b----       1.9",
            "domu2                                        2   128     2     -b----       2.0",
            "DOMU-LIST-END rc=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        check_list(&lines, 1).unwrap();
        assert!(check_list(&lines, 2).is_err());
    }
}
