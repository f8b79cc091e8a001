//! `cargo xtask bench boot`: native Linux, Xen 4.17 and Ferrovisor boot the same kernel and
//! initramfs (testing/init-test.sh), alternating run by run so that host noise spreads evenly.
//!
//! `cargo xtask bench abi`: Xen 4.17 and Ferrovisor, alternating likewise, each boot running
//! testing/xen-dom0-test --bench in dom0 (console hvc0 under both).
//!
//! `cargo xtask bench domu`: Xen 4.17 with Debian's xl and Ferrovisor with ours create one domU
//! per boot (testing/init-domu.sh in bench mode).
//!
//! `cargo xtask bench io`: a domU's PV disk and network against dom0's own (testing/init-io.sh
//! in bench mode), Xen 4.17 and Ferrovisor with our toolstack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Result};

use crate::console::Console;
use crate::debian::Artifacts;
use crate::dom0test::{self, Mode, METRICS};
use crate::domu::{self, Toolstack, DOMU_MEM_MIB};
use crate::initramfs::{Initramfs, TEST_INIT};
use crate::qemu::{Dom0Console, Host, Hypervisor, Vm, FERROVISOR_DOM0_CONSOLE};
use crate::tests::field;
use crate::{say, setup, tools, work_dir};

/// One boot: host seconds from QEMU launch to FV-INIT, dom0 uptime there, CPU-bound jobs' dom0 time.
struct Sample {
    wall_to_init: f64,
    uptime_at_init: f64,
    jobs: f64,
}

/// A table row: its name and what it reads from a sample.
type Metric = (&'static str, fn(&Sample) -> f64);

struct Column {
    hv: Hypervisor,
    host: Host,
    samples: Vec<Sample>,
    /// Set once a run failed: the column is not run again.
    failed: bool,
}

pub fn boot(runs: usize, icount: bool) -> Result<()> {
    ensure!(runs > 0, "--runs must be at least 1");
    setup::ensure()?;
    let art = Artifacts::fetch()?;
    let dir = work_dir()?;
    let initrd = dir.join("test-initrd.gz");
    Initramfs::busybox_root(&art.busybox, TEST_INIT)?.write_gz(&initrd)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    // Xen 4.17 hangs in SMP bring-up under icount with -smp 2: icount runs use one vCPU everywhere.
    let smp = if icount { 1 } else { 2 };

    let mut columns = Vec::new();
    for hv in Hypervisor::ALL {
        match hv.prepare(&art) {
            Ok(host) => columns.push(Column { hv, host, samples: Vec::new(), failed: false }),
            Err(e) => say!("{} left out: {e:#}", hv.name()),
        }
    }
    for run in 1..=runs {
        for col in columns.iter_mut().filter(|c| !c.failed) {
            let vm = Vm { icount, fv_console: FERROVISOR_DOM0_CONSOLE, ..bench_vm(&art, &col.host, smp, &initrd) };
            let log = dir.join("logs").join(format!("bench-{}-{run}.log", col.hv.name()));
            match boot_once(&vm, &log, measure)? {
                Ok(s) => {
                    say!(
                        "{} run {run}: wall to init {:.2} s, uptime at init {:.2} s, jobs {:.2} s",
                        col.hv.name(),
                        s.wall_to_init,
                        s.uptime_at_init,
                        s.jobs
                    );
                    col.samples.push(s);
                }
                Err(e) => {
                    say!("{} run {run} failed: {e:#} (console: {}); not running it again", col.hv.name(), log.display());
                    col.failed = true;
                }
            }
        }
    }

    println!(
        "boot benchmark: kernel {}, -smp {smp}, -m 2048, icount {}, medians of {runs} run(s)",
        art.cloud.release,
        if icount { "shift=0" } else { "off" }
    );
    let col = |hv| columns.iter().find(|c| c.hv == hv && !c.samples.is_empty());
    let (native, xen, fv) = (col(Hypervisor::Native), col(Hypervisor::Xen), col(Hypervisor::Ferrovisor));
    println!(
        "{:<28} {:>9} {:>9} {:>11} {:>10} {:>9} {:>10}",
        "metric", "native", "xen-4.17", "ferrovisor", "xen/native", "fv/native", "fv/xen"
    );
    let metrics: [Metric; 3] = [
        ("host wall to FV-INIT (s)", |s| s.wall_to_init),
        ("dom0 uptime at /init (s)", |s| s.uptime_at_init),
        ("CPU-bound jobs in dom0 (s)", |s| s.jobs),
    ];
    for (name, get) in metrics {
        let m = |c: Option<&Column>| c.map(|c| median(c.samples.iter().map(get).collect()));
        row(name, m(native), m(xen), m(fv));
    }
    let size = |c: Option<&Column>| {
        c.and_then(|c| c.host.image()).and_then(|p| p.metadata().ok()).map(|m| m.len() as f64 / 1024.0)
    };
    row("hypervisor image (KiB)", None, size(xen), size(fv));
    Ok(())
}

fn measure(console: &mut Console) -> Result<Sample> {
    const TIMEOUT: Duration = Duration::from_secs(120);
    let (uptime, at) = console.expect("FV-INIT uptime=", TIMEOUT)?;
    let (jobs, _) = console.expect("FV-JOBS ", TIMEOUT)?;
    console.expect("FV-DONE", TIMEOUT)?;
    let status = console.wait_exit(Duration::from_secs(30))?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(Sample { wall_to_init: at.as_secs_f64(), uptime_at_init: field(&uptime, 0)?, jobs: field(&jobs, 1)? })
}

fn row(name: &str, native: Option<f64>, xen: Option<f64>, fv: Option<f64>) {
    let val = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    println!(
        "{name:<28} {:>9} {:>9} {:>11} {:>10} {:>9} {:>10}",
        val(native),
        val(xen),
        val(fv),
        ratio(xen, native),
        ratio(fv, native),
        ratio(fv, xen)
    );
}

/// The benchmarks' machine: `host` on a cortex-a57 with 2 GiB, booting the cloud kernel with
/// `initrd` (dom0 on hvc0).
fn bench_vm(art: &Artifacts, host: &Host, smp: u32, initrd: &Path) -> Vm {
    Vm {
        host: host.clone(),
        cpu: "cortex-a57".into(),
        smp,
        mem_mib: 2048,
        icount: false,
        kernel: art.cloud.image.clone(),
        initrd: initrd.to_path_buf(),
        extra_args: None,
        hv_args: None,
        fv_console: Dom0Console::Hvc,
    }
}

/// Boots `vm` once: `measure` reads its console, which is then saved to `log`. The outer error:
/// QEMU did not start or the log was not written; the inner one is `measure`'s.
fn boot_once<T>(vm: &Vm, log: &Path, measure: impl FnOnce(&mut Console) -> Result<T>) -> Result<Result<T>> {
    let mut console = Console::spawn(vm.command())?;
    let result = measure(&mut console);
    console.finish(log)?;
    Ok(result)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One hypervisor's column of `bench abi`: per-metric samples (one per run) and failures.
struct AbiColumn {
    hv: Hypervisor,
    host: Host,
    samples: BTreeMap<&'static str, Vec<f64>>,
    /// The first failure of each metric (or of the whole run, under "boot").
    failures: BTreeMap<String, String>,
    /// Set once a run produced nothing: the column is not run again.
    dead: bool,
}

pub fn abi(runs: usize) -> Result<()> {
    ensure!(runs > 0, "--runs must be at least 1");
    setup::ensure()?;
    let art = Artifacts::fetch()?;
    let dir = work_dir()?;
    let initrd = dir.join("bench-abi-initrd.gz");
    dom0test::write_initramfs(&art.busybox, &art.cloud, &dom0test::build()?, Mode::Bench, &initrd)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    const SMP: u32 = 2;

    let mut columns = Vec::new();
    for hv in [Hypervisor::Xen, Hypervisor::Ferrovisor] {
        match hv.prepare(&art) {
            Ok(host) => columns.push(AbiColumn {
                hv,
                host,
                samples: BTreeMap::new(),
                failures: BTreeMap::new(),
                dead: false,
            }),
            Err(e) => say!("{} left out: {e:#}", hv.name()),
        }
    }
    for run in 1..=runs {
        for col in columns.iter_mut().filter(|c| !c.dead) {
            let vm = bench_vm(&art, &col.host, SMP, &initrd);
            let log = dir.join("logs").join(format!("bench-abi-{}-{run}.log", col.hv.name()));
            let (values, fails) = match boot_once(&vm, &log, measure_abi)? {
                Ok(r) => r,
                Err(e) => (Vec::new(), vec![("boot".to_owned(), format!("{e:#}"))]),
            };
            say!(
                "{} run {run}: {}{} (console: {})",
                col.hv.name(),
                values.iter().map(|(m, v)| format!("{m}={v}")).collect::<Vec<_>>().join(" "),
                fails.iter().map(|(m, e)| format!(" FAILED {m}: {e}")).collect::<String>(),
                log.display()
            );
            if values.is_empty() {
                say!("{}: no result in run {run}; not running it again", col.hv.name());
                col.dead = true;
            }
            for (metric, v) in values {
                col.samples.entry(metric).or_default().push(v);
            }
            for (metric, e) in fails {
                col.failures.entry(metric).or_insert(e);
            }
        }
    }

    println!(
        "xen abi benchmark (dom0 xen-dom0-test --bench): kernel {}, -smp {SMP}, -m 2048, dom0 console=hvc0, \
         medians of {runs} run(s), each the median of 9 batches",
        art.cloud.release
    );
    println!("{:<26} {:>10} {:>11} {:>8}", "metric", "xen-4.17", "ferrovisor", "fv/xen");
    let col = |hv| columns.iter().find(|c| c.hv == hv);
    let (xen, fv) = (col(Hypervisor::Xen), col(Hypervisor::Ferrovisor));
    for &(metric, label) in METRICS {
        let m = |c: Option<&AbiColumn>| c.and_then(|c| c.samples.get(metric)).map(|s| median(s.clone()));
        let (x, f) = (m(xen), m(fv));
        let cell = |c: Option<&AbiColumn>, v: Option<f64>| match (c, v) {
            (_, Some(v)) if v >= 100.0 => format!("{v:.0}"),
            (_, Some(v)) => format!("{v:.1}"),
            (None, None) => "-".into(),
            (Some(_), None) => "failed".into(),
        };
        let ratio = match (f, x) {
            (Some(f), Some(x)) if x > 0.0 => format!("{:.2}x", f / x),
            _ => "-".into(),
        };
        println!("{label:<26} {:>10} {:>11} {ratio:>8}", cell(xen, x), cell(fv, f));
    }
    for c in &columns {
        for (metric, e) in &c.failures {
            println!("  {} {metric}: {e}", c.hv.name());
        }
    }
    Ok(())
}

/// One boot of `bench abi`: the XB-RESULT values and XB-FAIL reasons, in order.
#[allow(clippy::type_complexity)]
fn measure_abi(console: &mut Console) -> Result<(Vec<(&'static str, f64)>, Vec<(String, String)>)> {
    const TO_INIT: Duration = Duration::from_secs(120);
    const TO_LINE: Duration = Duration::from_secs(120);
    console.expect("FV-INIT uptime=", TO_INIT)?;
    let (mut values, mut fails) = (Vec::new(), Vec::new());
    loop {
        let (line, _) = console.expect("XB-", TO_LINE)?;
        if line.starts_with("DONE") {
            break;
        } else if let Some(rest) = line.strip_prefix("RESULT ") {
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let Some(&(metric, _)) = METRICS.iter().find(|(m, _)| *m == name) else {
                bail!("unknown metric in `XB-{line}`");
            };
            values.push((metric, field(value, 0)?));
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            fails.push((name.to_owned(), reason.to_owned()));
        } else {
            bail!("unparsed line `XB-{line}`");
        }
    }
    let status = console.wait_exit(Duration::from_secs(30))?;
    ensure!(status.success(), "QEMU exited with {status} after XB-DONE");
    Ok((values, fails))
}

/// A `bench domu` table row: its name, what it reads from a sample, whether it is a whole number.
type DomuMetric = (&'static str, fn(&domu::BenchSample) -> f64, bool);

/// One column of `bench domu` (a hypervisor with its dom0 toolstack) or `bench io`.
struct Col<S> {
    label: &'static str,
    hv: Hypervisor,
    host: Host,
    initrd: PathBuf,
    samples: Vec<S>,
    /// The first failure: the column is not run again.
    failure: Option<String>,
}

impl<S> Col<S> {
    fn new(label: &'static str, hv: Hypervisor, host: Host, initrd: PathBuf) -> Self {
        Col { label, hv, host, initrd, samples: Vec::new(), failure: None }
    }

    /// Run `run` of the column: boots `vm` (console saved to `log`), `measure` reads a sample,
    /// `describe` says it; a failure ends the column.
    fn run(&mut self, run: usize, vm: &Vm, log: &Path, measure: fn(&mut Console) -> Result<S>, describe: impl Fn(&S) -> String) -> Result<()> {
        match boot_once(vm, log, measure)? {
            Ok(s) => {
                say!("{} run {run}: {}", self.label, describe(&s));
                self.samples.push(s);
            }
            Err(e) => {
                say!("{} run {run} failed: {e:#} (console: {}); not running it again", self.label, log.display());
                self.failure = Some(format!("run {run}: {e:#} (console: {})", log.display()));
            }
        }
        Ok(())
    }
}

/// The failures of `cols`, one line each.
fn print_failures<S>(cols: &[Col<S>]) {
    for c in cols {
        if let Some(e) = &c.failure {
            println!("  {}: {e}", c.label);
        }
    }
}

/// `cargo xtask bench domu`: Xen 4.17 with Debian's own xl and Ferrovisor with ours, under the
/// same QEMU line, alternating run by run. Each boot creates one domU (128 MiB, 1 vCPU, the same
/// kernel, testing/domu-init.sh) from testing/init-domu.sh, times it to the domU's /init and
/// destroys it (xtask/src/domu.rs reads the markers).
pub fn domu(runs: usize) -> Result<()> {
    ensure!(runs > 0, "--runs must be at least 1");
    setup::ensure()?;
    let art = Artifacts::fetch()?;
    let dir = work_dir()?;
    std::fs::create_dir_all(dir.join("logs"))?;
    // dom0 on pCPU 0, the domU on pCPU 1: one host thread per vCPU.
    const SMP: u32 = 2;
    const DOM0_VCPUS: u32 = 1;

    let mut columns = Vec::new();
    for (label, hv, toolstack) in
        [("xen-4.17+xl", Hypervisor::Xen, Toolstack::Debian), ("ferrovisor", Hypervisor::Ferrovisor, Toolstack::Ours)]
    {
        let initrd = dir.join(format!("bench-domu-{}-initrd.gz", toolstack.name()));
        let ready = hv.prepare(&art).and_then(|host| {
            let tools = match toolstack {
                Toolstack::Ours => Some(tools::build()?),
                Toolstack::Debian => None,
            };
            domu::write_dom0_initramfs(&art, &art.cloud, domu::Mode::Bench, toolstack, tools.as_ref(), &[], &initrd)?;
            Ok(host)
        });
        match ready {
            Ok(host) => columns.push(Col::new(label, hv, host, initrd)),
            Err(e) => say!("{label} left out: {e:#}"),
        }
    }
    for run in 1..=runs {
        for col in columns.iter_mut().filter(|c| c.failure.is_none()) {
            let vm = Vm { hv_args: Some(format!("dom0_max_vcpus={DOM0_VCPUS}")), ..bench_vm(&art, &col.host, SMP, &col.initrd) };
            let log = dir.join("logs").join(format!("bench-domu-{}-{run}.log", col.hv.name()));
            col.run(run, &vm, &log, domu::measure, |s| {
                format!(
                    "xl create {:.2} s, create to domU init {:.2} s (host {:.2} s), domU uptime {:.2} s, \
                     xl destroy {:.2} s, overhead {:.0} KiB",
                    s.xl_create, s.create_to_init, s.create_to_init_wall, s.domu_uptime, s.xl_destroy, s.overhead_kib
                )
            })?;
        }
    }

    println!(
        "domU benchmark: kernel {} for dom0 and the domU ({DOMU_MEM_MIB} MiB, 1 vCPU), -smp {SMP}, -m 2048, \
         dom0_max_vcpus={DOM0_VCPUS}, medians of {runs} run(s); dom0 times from its /proc/uptime",
        art.cloud.release
    );
    println!("{:<38} {:>12} {:>11} {:>8}", "metric", "xen-4.17+xl", "ferrovisor", "fv/xen");
    let col = |hv| columns.iter().find(|c| c.hv == hv);
    let (xen, fv) = (col(Hypervisor::Xen), col(Hypervisor::Ferrovisor));
    let metrics: [DomuMetric; 6] = [
        ("xl create returns (s)", |s| s.xl_create, false),
        ("xl create to domU /init (s)", |s| s.create_to_init, false),
        ("xl create to domU /init, host (s)", |s| s.create_to_init_wall, false),
        ("domU uptime at its /init (s)", |s| s.domu_uptime, false),
        ("xl destroy (s)", |s| s.xl_destroy, false),
        ("hypervisor memory per domU (KiB)", |s| s.overhead_kib, true),
    ];
    for (name, get, integer) in metrics {
        let m = |c: Option<&Col<domu::BenchSample>>| c.filter(|c| !c.samples.is_empty()).map(|c| median(c.samples.iter().map(get).collect()));
        let cell = |c: Option<&Col<domu::BenchSample>>, v: Option<f64>| match (c, v) {
            (_, Some(v)) if integer => format!("{v:.0}"),
            (_, Some(v)) => format!("{v:.2}"),
            (None, None) => "-".into(),
            (Some(_), None) => "failed".into(),
        };
        let (x, f) = (m(xen), m(fv));
        let ratio = match (f, x) {
            (Some(f), Some(x)) if x > 0.0 => format!("{:.2}x", f / x),
            _ => "-".into(),
        };
        println!("{name:<38} {:>12} {:>11} {ratio:>8}", cell(xen, x), cell(fv, f));
    }
    println!("  (memory: xl info free_memory before the create minus at the domU's /init, minus its {DOMU_MEM_MIB} MiB; MiB resolution)");
    print_failures(&columns);
    Ok(())
}

/// `cargo xtask bench io`: Xen 4.17 and Ferrovisor, both with our toolstack, one boot per run
/// each (testing/init-io.sh in bench mode): a disk measured from dom0 directly (a loop device
/// over an image in RAM) and from a domU through blkfront/blkback on that loop device, and TCP
/// between dom0 and the domU over the bridge, both ways.
pub fn io(runs: usize) -> Result<()> {
    ensure!(runs > 0, "--runs must be at least 1");
    setup::ensure()?;
    let art = Artifacts::fetch()?;
    let dir = work_dir()?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let io_dir = dir.join("bench-io");
    std::fs::create_dir_all(&io_dir)?;
    const SMP: u32 = 2;
    const DOM0_VCPUS: u32 = 1;
    let tool = dom0test::build()?;
    let t = tools::build()?;
    let imgs = crate::io::images(&art.busybox, &io_dir, Some(&tool))?;
    let initrd = dir.join("bench-io-initrd.gz");
    crate::io::write_dom0_initramfs(&art, &t, &imgs, crate::io::Mode::Bench, Some(&tool), &initrd)?;

    let mut cols: Vec<Col<crate::io::BenchSample>> = Vec::new();
    for hv in [Hypervisor::Xen, Hypervisor::Ferrovisor] {
        match hv.prepare(&art) {
            Ok(host) => cols.push(Col::new(hv.name(), hv, host, initrd.clone())),
            Err(e) => say!("{} left out: {e:#}", hv.name()),
        }
    }
    for run in 1..=runs {
        for col in cols.iter_mut().filter(|c| c.failure.is_none()) {
            let vm = Vm { hv_args: Some(format!("dom0_max_vcpus={DOM0_VCPUS}")), ..bench_vm(&art, &col.host, SMP, &col.initrd) };
            let log = dir.join("logs").join(format!("bench-io-{}-{run}.log", col.hv.name()));
            col.run(run, &vm, &log, crate::io::measure, |s| {
                s.figures.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            })?;
        }
    }

    println!(
        "io benchmark: kernel {} for dom0 and the domU (128 MiB, 1 vCPU), -smp {SMP}, -m 2048, dom0_max_vcpus={DOM0_VCPUS}, \
         our toolstack under both; medians of {runs} run(s). Disk: a 96 MiB image in dom0's RAM on a loop device, \
         O_DIRECT, 64 MiB sequential in 1 MiB requests, 4 KiB random reads for 3 s; TCP: 32 MiB over HTTP (busybox)",
        art.cloud.release
    );
    let names: Vec<String> = cols.iter().flat_map(|c| c.samples.first()).flat_map(|s| s.figures.iter().map(|f| f.0.clone())).fold(
        Vec::new(),
        |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        },
    );
    let med = |c: &Col<crate::io::BenchSample>, name: &str| -> Option<f64> {
        let v: Vec<f64> = c.samples.iter().flat_map(|s| s.figures.iter().filter(|f| f.0 == name).map(|f| f.1)).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let col = |hv| cols.iter().find(|c| c.hv == hv);
    println!("{:<28} {:>10} {:>11} {:>8} {:>14}", "metric (higher is better)", "xen-4.17", "ferrovisor", "fv/xen", "domU/dom0 fv");
    for name in &names {
        let x = col(Hypervisor::Xen).and_then(|c| med(c, name));
        let f = col(Hypervisor::Ferrovisor).and_then(|c| med(c, name));
        let cell = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let ratio = match (f, x) {
            (Some(f), Some(x)) if x > 0.0 => format!("{:.2}x", f / x),
            _ => "-".into(),
        };
        // The domU's disk against dom0's own, on Ferrovisor.
        let vs_dom0 = name
            .strip_prefix("domu_")
            .and_then(|m| Some((f?, col(Hypervisor::Ferrovisor).and_then(|c| med(c, &format!("dom0_{m}")))?)))
            .filter(|(_, d)| *d > 0.0)
            .map_or("".into(), |(f, d)| format!("{:.2}x", f / d));
        println!("{name:<28} {:>10} {:>11} {ratio:>8} {vs_dom0:>14}", cell(x), cell(f));
    }
    print_failures(&cols);
    Ok(())
}
