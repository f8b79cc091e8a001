//! `cargo xtask`: the single entry point to build, run, test and benchmark Ferrovisor.
//!
//! Progress goes to stderr as `[xtask] ...` lines; stdout carries only results
//! (the image path for `image`, test lines and the summary for `test`, the table for `bench`).

mod args;
mod attack;
mod bench;
mod console;
mod debian;
mod debtools;
mod dom0test;
mod domu;
mod io;
mod fuzz;
mod image;
mod initramfs;
mod qemu;
mod setup;
mod steps;
mod tests;
mod toolstack;
mod tools;
mod xltest;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use args::Args;
use debian::Flavour;
use qemu::{Hypervisor, Vm};

/// Prints a progress line on stderr.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("[xtask] {}", format_args!($($arg)*)) };
}
pub(crate) use say;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup                 install missing apt packages / rustup targets (idempotent)
  fetch                 download + extract the Debian arm64 kernels, busybox, Xen
  image                 build hv (release) and write target/ferrovisor.bin; prints its path last
  tools                 build the static dom0 tools (xl, xenstored, xenstore, xenconsoled) for
                        aarch64-unknown-linux-musl; prints their directory last
  run                   boot an interactive dom0 busybox shell ('poweroff -f' quits); with our
                        toolstack started and /etc/xen/demo.cfg: `xl create -c /etc/xen/demo.cfg`
      --hypervisor ferrovisor|xen|native   (default ferrovisor)
      --kernel cloud|generic               (default cloud)
      --smp N (4)  --dom0-vcpus N (2; all with --no-tools)  --mem MiB (2048)
      --cpu a57|a53|a72 (a57)  --icount
      --module NAME         insert NAME.ko (+ its depends) and load it at boot; repeatable
      --no-tools            leave out our toolstack (xl, xenstored, xenstore, xenconsoled), the
                            Xen modules and the demo domU
      --toolstack ours|debian   dom0's toolstack: ours (default) or Xen 4.17's from Debian
      --append ARGS         extra dom0 kernel arguments
  test [FILTER]         host unit tests, then the QEMU tests whose name contains FILTER
      --hypervisor ferrovisor|xen|native   (default ferrovisor)
      --toolstack ours|debian              dom0's toolstack in the domu test (default ours)
                        tests: boot_smp1 boot_smp2 boot_smp4 boot_generic_smp2 xen_dom0_abi
                               xenstored_dom0 xl_dom0 domu attack io ...
  fuzz TARGET|all       libFuzzer on a parser of untrusted input (fuzz/), crashes to fuzz/artifacts/
      --time SECS (60)  --jobs N (1)   `fuzz --list` names the targets
  bench boot            native vs Xen 4.17 vs Ferrovisor boot/CPU medians
      --runs N (5)  --icount (adds -icount shift=0 and uses -smp 1)
  bench abi             Xen 4.17 vs Ferrovisor from dom0: null hypercall, event channel
                        round trip, grant map+unmap (testing/xen-dom0-test --bench)
      --runs N (5)
  bench domu            Xen 4.17 + Debian's xl vs Ferrovisor + our xl: xl create to the domU's
                        /init, xl destroy, hypervisor memory per domU
      --runs N (3)
  bench io              Xen 4.17 vs Ferrovisor (our toolstack): a domU's PV disk against dom0's own
                        access to the same image, and dom0<->domU TCP over the bridge
      --runs N (3)

env: FERROVISOR_CACHE (default ~/.cache/ferrovisor) holds the Debian downloads.
     FERROVISOR_CHURN (default 20): create/destroy cycles of the `attack` test's churn step.";

fn main() -> ExitCode {
    match run(Args::from_env()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("[xtask] error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut args: Args) -> Result<ExitCode> {
    let Some(cmd) = args.next_positional() else {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    match cmd.as_str() {
        "setup" => {
            args.finish()?;
            setup::ensure()?;
        }
        "fetch" => {
            args.finish()?;
            setup::ensure()?;
            debian::Artifacts::fetch()?;
        }
        "image" => {
            args.finish()?;
            let path = image::build()?;
            println!("{}", path.display());
        }
        "tools" => {
            args.finish()?;
            setup::ensure()?;
            tools::command()?;
        }
        "run" => return interactive(args),
        "test" => {
            let hv = args.value("--hypervisor")?.map_or(Ok(Hypervisor::Ferrovisor), |s| s.parse())?;
            let toolstack = args.value("--toolstack")?.map_or(Ok(domu::Toolstack::Ours), |s| s.parse())?;
            let filter = args.next_positional();
            args.finish()?;
            return tests::run(hv, filter.as_deref(), toolstack);
        }
        "fuzz" => fuzz::command(args)?,
        "bench" => {
            // Options first: their values must not be taken for the positional.
            let runs: Option<usize> = args.value("--runs")?.map(|s| s.parse()).transpose().context("--runs")?;
            let icount = args.flag("--icount");
            match args.next_positional().as_deref() {
                Some("boot") => {
                    args.finish()?;
                    bench::boot(runs.unwrap_or(5), icount)?;
                }
                Some("abi") => {
                    args.finish()?;
                    if icount {
                        bail!("bench abi does not take --icount");
                    }
                    bench::abi(runs.unwrap_or(5))?;
                }
                Some("domu") => {
                    args.finish()?;
                    if icount {
                        bail!("bench domu does not take --icount");
                    }
                    bench::domu(runs.unwrap_or(3))?;
                }
                Some("io") => {
                    args.finish()?;
                    if icount {
                        bail!("bench io does not take --icount");
                    }
                    bench::io(runs.unwrap_or(3))?;
                }
                other => bail!("unknown bench `{}`; available: boot, abi, domu, io", other.unwrap_or_default()),
            }
        }
        "help" | "-h" | "--help" => println!("{USAGE}"),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask run`: QEMU on the terminal with an interactive dom0 shell; by default with our
/// toolstack started (xencommons) and a demo domU ready in /etc/xen/demo.cfg.
fn interactive(mut args: Args) -> Result<ExitCode> {
    let hv: Hypervisor = args.value("--hypervisor")?.map_or(Ok(Hypervisor::Ferrovisor), |s| s.parse())?;
    let flavour: Flavour = args.value("--kernel")?.map_or(Ok(Flavour::Cloud), |s| s.parse())?;
    let smp = args.value("--smp")?.map_or(Ok(4), |s| s.parse()).context("--smp")?;
    let dom0_vcpus: Option<u32> = args.value("--dom0-vcpus")?.map(|s| s.parse()).transpose().context("--dom0-vcpus")?;
    let mem_mib = args.value("--mem")?.map_or(Ok(2048), |s| s.parse()).context("--mem")?;
    let cpu = args.value("--cpu")?.map_or("cortex-a57".into(), |c| {
        if c.starts_with("cortex-") { c } else { format!("cortex-{c}") }
    });
    let icount = args.flag("--icount");
    let modules = args.values("--module")?;
    let append = args.value("--append")?;
    let no_tools = args.flag("--no-tools");
    let toolstack = args.value("--toolstack")?.map_or(Ok(domu::Toolstack::Ours), |s| s.parse())?;
    args.finish()?;
    // With the toolstack, dom0 leaves CPUs to the domUs (Ferrovisor gives every vCPU a pCPU of
    // its own, docs/domains.md); without it, dom0 has them all unless told otherwise.
    let dom0_vcpus = if no_tools { dom0_vcpus } else { Some(dom0_vcpus.unwrap_or(2)) };
    if let Some(n) = dom0_vcpus.filter(|&n| n >= smp && !no_tools && hv != Hypervisor::Native) {
        say!("note: dom0 takes all {smp} CPUs (--dom0-vcpus {n}): a domU's vCPUs wait for a free pCPU on Ferrovisor");
    }

    setup::ensure()?;
    let art = debian::Artifacts::fetch()?;
    let kernel = art.kernel(flavour);
    let initrd = work_dir()?.join("run-initrd.gz");
    let order = if no_tools {
        let mut rd = initramfs::Initramfs::busybox_root(&art.busybox, initramfs::SHELL_INIT)?;
        let order = rd.add_modules(kernel, &modules)?;
        rd.write_gz(&initrd)?;
        order
    } else {
        // Our toolstack in dom0, as under Xen: the Xen device modules, xl, xenstored and
        // xenconsoled (started by xencommons), the xenstore client, and a demo domU
        // (/etc/xen/demo.cfg: the same kernel, a busybox shell on its console).
        let tools = match toolstack {
            domu::Toolstack::Ours => Some(tools::build()?),
            domu::Toolstack::Debian => None,
        };
        domu::write_dom0_initramfs(&art, kernel, domu::Mode::Demo, toolstack, tools.as_ref(), &modules, &initrd)?
    };
    if !order.is_empty() {
        say!("modules loaded at boot: {}", order.join(" "));
    }

    let vm = Vm {
        host: hv.prepare(&art)?,
        cpu,
        smp,
        mem_mib,
        icount,
        kernel: kernel.image.clone(),
        initrd,
        extra_args: append,
        hv_args: dom0_vcpus.map(|n| format!("dom0_max_vcpus={n}")),
        fv_console: qemu::FERROVISOR_DOM0_CONSOLE,
    };
    if !no_tools && hv != Hypervisor::Native {
        say!("in dom0: `xl create -c /etc/xen/demo.cfg` starts a domU on its console (Ctrl-] detaches)");
    }
    let mut cmd = vm.command();
    say!("{}", qemu::display(&cmd));
    let status = cmd.status().context("starting qemu-system-aarch64")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The workspace root (the parent of xtask/).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace")
}

/// Cargo's target directory, honouring CARGO_TARGET_DIR.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { workspace_root().join(p) })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Scratch space for generated initramfs images and console logs: `target/xtask/`.
fn work_dir() -> Result<PathBuf> {
    let dir = target_dir().join("xtask");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs `cmd`, failing with its rendering when it exits non-zero.
fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {}", qemu::display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", qemu::display(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout, failing when it exits non-zero.
fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {}", qemu::display(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            qemu::display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
