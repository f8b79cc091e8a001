//! `cargo xtask bench boot`: native Linux, Xen 4.17 and Ferrovisor boot the same kernel and
//! initramfs (testing/init-test.sh), alternating run by run so that host noise spreads evenly.

use std::time::Duration;

use anyhow::{ensure, Result};

use crate::console::Console;
use crate::debian::Artifacts;
use crate::initramfs::{Initramfs, TEST_INIT};
use crate::qemu::{Host, Hypervisor, Vm};
use crate::tests::field;
use crate::{say, setup, work_dir};

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
            let vm = Vm {
                host: col.host.clone(),
                cpu: "cortex-a57".into(),
                smp,
                mem_mib: 2048,
                icount,
                kernel: art.cloud.image.clone(),
                initrd: initrd.clone(),
                extra_args: None,
            };
            let log = dir.join("logs").join(format!("bench-{}-{run}.log", col.hv.name()));
            let mut console = Console::spawn(vm.command())?;
            let result = measure(&mut console);
            console.finish(&log)?;
            match result {
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
