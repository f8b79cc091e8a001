//! `cargo xtask test`: host unit tests, then QEMU boot tests of dom0 under a hypervisor.
//!
//! Each boot test runs testing/init-test.sh as dom0's /init and checks its FV-* markers,
//! each within its own deadline, then that QEMU exits with status 0 after `poweroff -f`.
//! The Xen ABI test runs testing/xen-dom0-test from testing/init-xen-abi.sh instead and
//! wants an `XT-OK` line for every check, `XT-DONE ... fail=0`, then the same clean exit.
//! The xenstored test starts dom0/xenstored from testing/init-xenstored.sh and wants the same
//! of its `XS-*` lines. The `domu` test runs testing/init-domu.sh: dom0 creates and manages
//! domUs and reports each step as a `DOMU-TEST-*` line (xtask/src/domu.rs).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};

use crate::console::Console;
use crate::debian::{Artifacts, Flavour};
use crate::dom0test::{self, Mode};
use crate::initramfs::{Initramfs, TEST_INIT};
use crate::qemu::{Dom0Console, Host, Hypervisor, Vm, FERROVISOR_DOM0_CONSOLE};
use crate::domu::{self, Toolstack};
use crate::{run_checked, say, setup, toolstack, tools, work_dir, workspace_root};

struct Case {
    name: &'static str,
    flavour: Flavour,
    smp: u32,
    kind: Kind,
    /// Extra dom0 kernel arguments.
    args: Option<&'static str>,
    /// Extra hypervisor arguments.
    hv_args: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// testing/init-test.sh: boot, CPUs, timer, SMP jobs (FV-* markers).
    Boot,
    /// testing/init-xen-abi.sh + xen-dom0-test: the Xen ABI through Linux's drivers (XT-* lines).
    XenAbi,
    /// testing/init-xenstored.sh: our xenstored serving dom0's kernel and tools (XS-* lines).
    Xenstored,
    /// Boot with dom0 on Ferrovisor's emulated PL011 (`console=ttyAMA0`); Ferrovisor only.
    BootPl011,
    /// /init exits: dom0's kernel panics, reboots (panic=-1), and the hypervisor ends the machine.
    Panic,
    /// Debian's Xen 4.17 toolstack (xenstored, xen-init-dom0, xenconsoled, xl) in dom0.
    DebianToolstack,
    /// testing/init-xl.sh: our dom0/xl's read-only commands (XL-* sections, xtask/src/xltest.rs).
    Xl,
    /// testing/init-domu.sh: dom0 creates, lists, powers off, destroys, reboots and crashes
    /// domUs (DOMU-TEST-* markers, xtask/src/domu.rs). Not on `native`.
    Domu,
    /// testing/init-attack.sh: the attack guest beside a victim domU, kill modes, churn
    /// (ATTACK-TEST-* markers, xtask/src/attack.rs). Our toolstack; not on `native`.
    Attack,
    /// testing/init-io.sh: domUs on PV disks and a bridged network, hotplug, persistence,
    /// a destroy mid-write checked by the host's e2fsck (IO-TEST-* markers, xtask/src/io.rs).
    /// Our toolstack; not on `native`.
    Io,
}

const CASES: &[Case] = &[
    Case { name: "boot_smp1", flavour: Flavour::Cloud, smp: 1, kind: Kind::Boot, args: None, hv_args: None },
    Case { name: "boot_smp2", flavour: Flavour::Cloud, smp: 2, kind: Kind::Boot, args: None, hv_args: None },
    Case { name: "boot_smp4", flavour: Flavour::Cloud, smp: 4, kind: Kind::Boot, args: None, hv_args: None },
    Case { name: "boot_generic_smp2", flavour: Flavour::Generic, smp: 2, kind: Kind::Boot, args: None, hv_args: None },
    Case { name: "boot_pl011_smp2", flavour: Flavour::Cloud, smp: 2, kind: Kind::BootPl011, args: None, hv_args: None },
    Case { name: "dom0_panic", flavour: Flavour::Cloud, smp: 2, kind: Kind::Panic, args: None, hv_args: None },
    Case { name: "debian_toolstack", flavour: Flavour::Cloud, smp: 2, kind: Kind::DebianToolstack, args: None, hv_args: None },
    Case { name: "xen_dom0_abi", flavour: Flavour::Cloud, smp: 2, kind: Kind::XenAbi, args: None, hv_args: None },
    // The same with 2-level event channels (Linux uses FIFO when offered).
    Case { name: "xen_dom0_abi_2l", flavour: Flavour::Cloud, smp: 2, kind: Kind::XenAbi, args: Some("xen.fifo_events=0"), hv_args: None },
    Case { name: "xenstored_dom0", flavour: Flavour::Cloud, smp: 2, kind: Kind::Xenstored, args: None, hv_args: None },
    Case { name: "xl_dom0", flavour: Flavour::Cloud, smp: 2, kind: Kind::Xl, args: None, hv_args: None },
    // dom0 on one pCPU, domUs on the other three (testing/init-domu.sh, xtask/src/domu.rs).
    Case { name: "domu", flavour: Flavour::Cloud, smp: domu::TEST_SMP, kind: Kind::Domu, args: None, hv_args: Some(domu::TEST_HV_ARGS) },
    // The same machine; dom0's fv_churn= comes from FERROVISOR_CHURN (xtask/src/attack.rs).
    Case { name: "attack", flavour: Flavour::Cloud, smp: crate::attack::TEST_SMP, kind: Kind::Attack, args: None, hv_args: Some(domu::TEST_HV_ARGS) },
    // The same machine, dom0 with a virtio disk (xtask/src/io.rs).
    Case { name: "io", flavour: Flavour::Cloud, smp: crate::io::TEST_SMP, kind: Kind::Io, args: None, hv_args: Some(domu::TEST_HV_ARGS) },
];

/// dom0's /init for the panic test: announce, then exit (the kernel panics).
const PANIC_INIT: &str = "#!/bin/sh\necho FV-PANIC-INIT\nexit 1\n";

const MEM_MIB: u32 = 2048;
const CPU: &str = "cortex-a57";

/// Per-marker deadlines, each counted from the previous marker. TCG is slow and noisy
/// (4 vCPUs share 2 host cores in CI), hence the generous values.
const TO_INIT: Duration = Duration::from_secs(120);
const TO_STEP: Duration = Duration::from_secs(60);
const TO_JOBS: Duration = Duration::from_secs(180);
const TO_EXIT: Duration = Duration::from_secs(30);
/// Between two XT-* lines (the program bounds each check to 30 s; the first line also waits
/// for the modules to load).
const TO_XT: Duration = Duration::from_secs(90);

/// `sleep 2` as measured by dom0's /proc/uptime must be within 5% of 2 s.
const SLEEP_RANGE: std::ops::RangeInclusive<f64> = 1.9..=2.1;

/// Console lines shown when a test fails.
const TAIL: usize = 40;

/// Runs the host unit tests (only without a filter), then the boot tests whose name contains
/// `filter`. `toolstack` is dom0's in the `domu` test.
pub fn run(hv: Hypervisor, filter: Option<&str>, toolstack: Toolstack) -> Result<ExitCode> {
    if filter.is_none() {
        say!("cargo test (host unit tests of the default workspace members)");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_checked(Command::new(cargo).arg("test").current_dir(workspace_root())).context("host unit tests")?;
        // A short libFuzzer run of every fuzz target (xtask/src/fuzz.rs).
        crate::fuzz::smoke().context("fuzz smoke run")?;
    }
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .filter(|c| c.kind != Kind::BootPl011 || matches!(hv, Hypervisor::Ferrovisor))
        .filter(|c| c.kind != Kind::Domu || !matches!(hv, Hypervisor::Native))
        .filter(|c| c.kind != Kind::Attack || !matches!(hv, Hypervisor::Native))
        .filter(|c| c.kind != Kind::Io || !matches!(hv, Hypervisor::Native))
        .collect();
    if cases.is_empty() {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        return Err(anyhow!("no boot test matches `{}`; tests: {}", filter.unwrap_or_default(), names.join(", ")));
    }

    setup::ensure()?;
    let art = Artifacts::fetch()?;
    let dir = work_dir()?;
    let boot_initrd = dir.join("test-initrd.gz");
    if cases.iter().any(|c| matches!(c.kind, Kind::Boot | Kind::BootPl011)) {
        Initramfs::busybox_root(&art.busybox, TEST_INIT)?.write_gz(&boot_initrd)?;
    }
    let debtools_initrd = dir.join("debian-toolstack-initrd.gz");
    let debtools_ready = if cases.iter().any(|c| c.kind == Kind::DebianToolstack) {
        crate::debtools::write_initramfs(&art, &debtools_initrd).map_err(|e| format!("Debian toolstack initramfs: {e:#}"))
    } else {
        Ok(())
    };
    let panic_initrd = dir.join("panic-initrd.gz");
    if cases.iter().any(|c| c.kind == Kind::Panic) {
        Initramfs::busybox_root(&art.busybox, PANIC_INIT)?.write_gz(&panic_initrd)?;
    }
    // The ABI initramfs carries the cloud kernel's modules (the only flavour it runs).
    let abi_initrd = dir.join("xen-abi-initrd.gz");
    let abi_ready = if cases.iter().any(|c| c.kind == Kind::XenAbi) {
        let built = dom0test::build().and_then(|prog| {
            dom0test::write_initramfs(&art.busybox, &art.cloud, &prog, Mode::Check, &abi_initrd)
        });
        built.map_err(|e| format!("xen-dom0-test initramfs: {e:#}"))
    } else {
        Ok(())
    };
    // Our dom0 tools (xl, xenstored, xenstore, xenconsoled), built once for every test that needs them.
    let needs_tools = cases.iter().any(|c| {
        matches!(c.kind, Kind::Xenstored | Kind::Xl | Kind::Attack | Kind::Io) || (c.kind == Kind::Domu && toolstack == Toolstack::Ours)
    });
    let tools = if needs_tools { tools::build().map_err(|e| format!("dom0 tools: {e:#}")) } else { Err(String::new()) };
    let xs_initrd = dir.join("xenstored-initrd.gz");
    let xs_ready = if cases.iter().any(|c| c.kind == Kind::Xenstored) {
        let built = tools.clone().and_then(|t| {
            toolstack::write_initramfs(&art.busybox, &art.cloud, &t, &xs_initrd).map_err(|e| format!("{e:#}"))
        });
        built.map_err(|e| format!("xenstored initramfs: {e}"))
    } else {
        Ok(())
    };
    let xl_initrd = dir.join("xl-initrd.gz");
    let xl_ready = if cases.iter().any(|c| c.kind == Kind::Xl) {
        let built = tools.clone().and_then(|t| {
            crate::xltest::write_initramfs(&art.busybox, &art.cloud, &t, &xl_initrd).map_err(|e| format!("{e:#}"))
        });
        built.map_err(|e| format!("xl initramfs: {e}"))
    } else {
        Ok(())
    };
    let domu_initrd = dir.join(format!("domu-{}-initrd.gz", toolstack.name()));
    let domu_ready = if cases.iter().any(|c| c.kind == Kind::Domu) {
        let t = match toolstack {
            Toolstack::Ours => tools.clone().map(Some),
            Toolstack::Debian => Ok(None),
        };
        let built = t.and_then(|t| {
            domu::write_dom0_initramfs(&art, &art.cloud, domu::Mode::Test, toolstack, t.as_ref(), &[], &domu_initrd)
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        });
        built.map_err(|e| format!("domu initramfs ({} toolstack): {e}", toolstack.name()))
    } else {
        Ok(())
    };
    let attack_initrd = dir.join("attack-initrd.gz");
    let attack_ready = if cases.iter().any(|c| c.kind == Kind::Attack) {
        let built = tools.clone().and_then(|t| {
            crate::attack::write_dom0_initramfs(&art, &t, &attack_initrd).map_err(|e| format!("{e:#}"))
        });
        built.map_err(|e| format!("attack initramfs: {e}"))
    } else {
        Ok(())
    };
    let io_dir = dir.join("io");
    let io_initrd = dir.join("io-initrd.gz");
    let io_ready = if cases.iter().any(|c| c.kind == Kind::Io) {
        let built = tools.clone().and_then(|t| {
            std::fs::create_dir_all(&io_dir)
                .map_err(anyhow::Error::from)
                .and_then(|_| crate::io::images(&art.busybox, &io_dir, None))
                .and_then(|imgs| crate::io::write_dom0_initramfs(&art, &t, &imgs, crate::io::Mode::Test, None, &io_initrd))
                .map_err(|e| format!("{e:#}"))
        });
        built.map_err(|e| format!("io initramfs: {e}"))
    } else {
        Ok(())
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    // A hypervisor that cannot be built fails every test, with the reason.
    let host = hv.prepare(&art).map_err(|e| format!("{e:#}"));

    say!("running {} boot test(s) under {}", cases.len(), hv.name());
    let (mut passed, mut failed) = (0, 0);
    for case in cases {
        let start = Instant::now();
        let log = logs.join(format!("{}-{}.log", hv.name(), case.name));
        let result = match (&host, case.kind) {
            (Err(e), _) => Err(format!("{} image: {e}", hv.name())),
            (Ok(host), Kind::Boot | Kind::BootPl011) => boot(case, host, &art, &boot_initrd, &log),
            (Ok(host), Kind::Panic) => boot(case, host, &art, &panic_initrd, &log),
            (Ok(host), Kind::DebianToolstack) => match &debtools_ready {
                Ok(()) => boot(case, host, &art, &debtools_initrd, &log),
                Err(e) => Err(e.clone()),
            },
            (Ok(host), Kind::XenAbi) => match &abi_ready {
                Ok(()) => boot(case, host, &art, &abi_initrd, &log),
                Err(e) => Err(e.clone()),
            },
            (Ok(host), Kind::Xenstored) => match &xs_ready {
                Ok(()) => boot(case, host, &art, &xs_initrd, &log),
                Err(e) => Err(e.clone()),
            },
            (Ok(host), Kind::Xl) => match &xl_ready {
                Ok(()) => boot(case, host, &art, &xl_initrd, &log),
                Err(e) => Err(e.clone()),
            },
            (Ok(host), Kind::Domu) => match &domu_ready {
                Ok(()) => boot(case, host, &art, &domu_initrd, &log),
                Err(e) => Err(e.clone()),
            },
            (Ok(host), Kind::Attack) => match &attack_ready {
                Ok(()) => boot(case, host, &art, &attack_initrd, &log),
                Err(e) => Err(e.clone()),
            },
            (Ok(host), Kind::Io) => match &io_ready {
                Ok(()) => boot_io(case, host, &art, &io_dir, &io_initrd, &log),
                Err(e) => Err(e.clone()),
            },
        };
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok ({secs:.1} s)", case.name);
            }
            Err(e) => {
                failed += 1;
                println!("test {} ... FAILED ({secs:.1} s)\n{e}", case.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The `io` test: a fresh virtio disk for dom0 (vm3's root), the boot, then the host's e2fsck
/// of that disk.
fn boot_io(case: &Case, host: &Host, art: &Artifacts, dir: &Path, initrd: &Path, log: &Path) -> Result<(), String> {
    let vda = crate::io::vda_image(&art.busybox, dir).map_err(|e| format!("{e:#}"))?;
    boot_with(case, host, art, initrd, log, &crate::io::virtio_disk_args(&vda))?;
    crate::io::fsck(&vda).map_err(|e| format!("  error: {e:#}"))
}

/// One boot test; the error carries the reason, the console tail and the log's path.
fn boot(case: &Case, host: &Host, art: &Artifacts, initrd: &Path, log: &Path) -> Result<(), String> {
    boot_with(case, host, art, initrd, log, &[])
}

/// [`boot`] with extra QEMU arguments.
fn boot_with(case: &Case, host: &Host, art: &Artifacts, initrd: &Path, log: &Path, qemu_args: &[String]) -> Result<(), String> {
    let vm = Vm {
        host: host.clone(),
        cpu: CPU.into(),
        smp: case.smp,
        mem_mib: MEM_MIB,
        icount: false,
        kernel: art.kernel(case.flavour).image.clone(),
        initrd: initrd.to_path_buf(),
        extra_args: if case.kind == Kind::Attack { Some(crate::attack::dom0_args(matches!(host, Host::Xen(_)))) } else { case.args.map(String::from) },
        hv_args: case.hv_args.map(String::from),
        fv_console: match case.kind {
            Kind::Boot | Kind::Panic => FERROVISOR_DOM0_CONSOLE,
            Kind::BootPl011 => Dom0Console::Pl011,
            Kind::XenAbi | Kind::DebianToolstack | Kind::Xenstored | Kind::Xl | Kind::Domu | Kind::Attack | Kind::Io => {
                Dom0Console::Hvc
            }
        },
    };
    let mut cmd = vm.command();
    cmd.args(qemu_args);
    let mut console = Console::spawn(cmd).map_err(|e| format!("{e:#}"))?;
    let result = match case.kind {
        Kind::Boot | Kind::BootPl011 => check(&mut console, case.smp),
        Kind::XenAbi => check_lines(&mut console, "XT", dom0test::CHECKS),
        Kind::Xenstored => check_lines(&mut console, "XS", toolstack::CHECKS),
        Kind::Panic => check_panic(&mut console),
        Kind::DebianToolstack => check_debian_toolstack(&mut console, case.smp),
        Kind::Xl => crate::xltest::check(&mut console, case.smp, MEM_MIB),
        Kind::Domu => domu::check(&mut console, domu::TEST_DOM0_VCPUS),
        Kind::Attack => crate::attack::check(&mut console, matches!(host, Host::Ferrovisor(_))),
        Kind::Io => crate::io::check(&mut console),
    };
    let lines = console.finish(log).map_err(|e| format!("{e:#}"))?;
    result.map_err(|e| {
        let tail: String = lines[lines.len().saturating_sub(TAIL)..].iter().map(|l| format!("    | {l}\n")).collect();
        format!("  error: {e:#}\n  last {TAIL} console lines:\n{tail}  full console: {}", log.display())
    })
}

/// Checks the markers of testing/init-test.sh in order.
fn check(console: &mut Console, smp: u32) -> Result<()> {
    let (uptime, wall) = console.expect("FV-INIT uptime=", TO_INIT)?;
    say!("dom0 /init after {:.1} s host time (dom0 uptime {uptime} s)", wall.as_secs_f64());

    let (nproc, _) = console.expect("FV-NPROC ", TO_STEP)?;
    let nproc: u32 = field(&nproc, 0)?;
    ensure!(nproc == smp, "dom0 sees {nproc} CPUs, expected {smp}");

    let (slept, _) = console.expect("FV-SLEEP ", TO_STEP)?;
    let slept: f64 = field(&slept, 0)?;
    ensure!(SLEEP_RANGE.contains(&slept), "`sleep 2` took {slept} s of dom0 uptime, expected {SLEEP_RANGE:?}");

    let (jobs, _) = console.expect("FV-JOBS ", TO_JOBS)?;
    let (done, secs): (u32, f64) = (field(&jobs, 0)?, field(&jobs, 1)?);
    ensure!(done == smp, "{done} of {smp} CPU-bound jobs finished");
    say!("{smp} CPU-bound job(s) took {secs} s of dom0 time");

    console.expect("FV-DONE", TO_STEP)?;
    let status = console.wait_exit(TO_EXIT)?;
    ensure!(status.success(), "QEMU exited with {status} after FV-DONE");
    Ok(())
}

/// dom0's kernel panics when /init exits; with panic=-1 it reboots at once, which the
/// hypervisor turns into the machine's end (as Xen does for its hardware domain).
fn check_panic(console: &mut Console) -> Result<()> {
    console.expect("FV-PANIC-INIT", TO_INIT)?;
    console.expect("Kernel panic - not syncing", TO_STEP)?;
    let status = console.wait_exit(TO_EXIT)?;
    ensure!(status.success(), "QEMU exited with {status} after dom0's panic");
    Ok(())
}

/// Debian's own toolstack must start and show dom0 as on Xen 4.17: the
/// daemons come up, `xl list` / `xl info` / `xl vcpu-list` / `xl uptime`
/// print dom0 with no libxl error, xenstore holds its name.
fn check_debian_toolstack(console: &mut Console, smp: u32) -> Result<()> {
    console.expect("FV-INIT uptime=", TO_INIT)?;
    for daemon in ["xenstored", "xen-init-dom0", "xenconsoled"] {
        let (line, _) = console.expect("TS-", TO_XT)?;
        ensure!(line == format!("OK {daemon}"), "expected TS-OK {daemon}, got TS-{line}");
    }
    let mut section = |name: &str| -> Result<Vec<String>> {
        console.expect(&format!("TS-BEGIN {name}"), TO_XT)?;
        let mark = console.mark();
        let (rc, _) = console.expect(&format!("TS-END {name}"), TO_XT)?;
        let lines: Vec<String> = console.since(mark).iter().map(|l| l.to_string()).collect();
        let body = &lines[..lines.len().saturating_sub(1)];
        ensure!(rc == "rc=0", "xl {name}: {rc}:\n    {}", body.join("\n    "));
        ensure!(!body.iter().any(|l| l.contains("libxl: error") || l.contains("TS-FAIL")), "xl {name}:\n    {}", body.join("\n    "));
        Ok(body.to_vec())
    };
    let list = section("list")?;
    ensure!(list.iter().any(|l| l.starts_with("Name") && l.contains("Mem VCPUs")), "xl list: no header in {list:?}");
    let dom0: Vec<&str> = list.iter().find(|l| l.starts_with("Domain-0")).map(|l| l.split_whitespace().collect()).unwrap_or_default();
    ensure!(dom0.len() == 6 && dom0[1] == "0" && dom0[2] == "512" && dom0[3] == smp.to_string() && dom0[4] == "r-----", "xl list: Domain-0 row {dom0:?}");
    let info = section("info")?;
    for (key, want) in [("nr_cpus", smp.to_string()), ("total_memory", MEM_MIB.to_string()), ("xen_major", "4".into()), ("xen_minor", "17".into())] {
        ensure!(info.iter().any(|l| l.split_once(':').is_some_and(|(k, v)| k.trim() == key && v.trim() == want)), "xl info: no `{key} : {want}`");
    }
    let vcpus = section("vcpu-list")?;
    let rows = vcpus.iter().filter(|l| l.starts_with("Domain-0")).count();
    ensure!(rows == smp as usize, "xl vcpu-list: {rows} Domain-0 rows, expected {smp}");
    let uptime = section("uptime")?;
    ensure!(uptime.iter().any(|l| l.starts_with("Domain-0")), "xl uptime: no Domain-0 in {uptime:?}");
    let name = section("xenstore")?;
    ensure!(name.iter().any(|l| l.trim() == "Domain-0"), "xenstore-read /local/domain/0/name: {name:?}");
    section("dmesg")?;
    console.expect("TS-DONE", TO_XT)?;
    let status = console.wait_exit(TO_EXIT)?;
    ensure!(status.success(), "QEMU exited with {status} after TS-DONE");
    Ok(())
}

/// Checks the `<p>-*` result lines: XT-* of testing/xen-dom0-test (via
/// testing/init-xen-abi.sh) or XS-* of testing/init-xenstored.sh.
fn check_lines(console: &mut Console, p: &str, checks: &[&str]) -> Result<()> {
    let (uptime, wall) = console.expect("FV-INIT uptime=", TO_INIT)?;
    say!("dom0 /init after {:.1} s host time (dom0 uptime {uptime} s)", wall.as_secs_f64());
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    let done = loop {
        let (line, _) = console.expect(&format!("{p}-"), TO_XT).with_context(|| {
            format!("after {p}-OK {:?}, {p}-FAIL {:?}", ok, failed.iter().map(|f: &String| f.split(':').next()).collect::<Vec<_>>())
        })?;
        if let Some(name) = line.strip_prefix("OK ") {
            ok.push(name.trim().to_owned());
        } else if let Some(reason) = line.strip_prefix("FAIL ") {
            failed.push(reason.to_owned());
        } else if let Some(counts) = line.strip_prefix("DONE") {
            break counts.trim().to_owned();
        } else {
            failed.push(format!("unparsed line `{p}-{line}`"));
        }
    };
    say!("{p}-OK {}; {p}-DONE {done}", ok.join(" "));
    ensure!(failed.is_empty(), "{} failed:\n    {p}-FAIL {}", failed.len(), failed.join(&format!("\n    {p}-FAIL ")));
    let missing: Vec<&str> = checks.iter().copied().filter(|c| !ok.iter().any(|o| o == c)).collect();
    ensure!(missing.is_empty(), "no {p}-OK for {missing:?} ({p}-DONE {done})");
    ensure!(done.split_whitespace().any(|f| f == "fail=0"), "{p}-DONE {done}: expected fail=0");
    let status = console.wait_exit(TO_EXIT)?;
    ensure!(status.success(), "QEMU exited with {status} after {p}-DONE");
    Ok(())
}

/// The `i`-th whitespace-separated field of a marker's payload.
pub fn field<T: FromStr>(payload: &str, i: usize) -> Result<T> {
    payload
        .split_whitespace()
        .nth(i)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| anyhow!("cannot parse field {i} of marker payload `{payload}`"))
}
