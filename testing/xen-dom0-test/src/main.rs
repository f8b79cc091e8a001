//! xen-dom0-test: checks, from dom0, that the hypervisor honours the Xen 4.17 ABI that
//! Linux's own Xen drivers rely on, through the device files dom0's tools use
//! (`/sys/hypervisor`, `/proc/xen`, `/dev/xen/{privcmd,evtchn,gntalloc,gntdev}`).
//!
//! Output, one line each (parsed by `cargo xtask test` / `cargo xtask bench abi`):
//!
//! ```text
//! XT-OK <check>                 XB-RESULT <metric> <value>     (--bench)
//! XT-FAIL <check>: <reason>     XB-FAIL <metric>: <reason>
//! XT-DONE pass=<n> fail=<m>     XB-DONE
//! ```
//!
//! `--victim [MiB]` and `--free-pages` serve the `attack` test (src/attack.rs);
//! `--disk-bench DEV [MiB]` measures a block device for `bench io` (src/disk.rs).
//!
//! Lines starting with `# ` are details. Each check and benchmark runs in a forked child with
//! a deadline, so a crash or hang in one is reported and the next one still runs.
//! Exit status: 0 when everything passed, 1 otherwise, 2 on bad usage.

mod attack;
mod bench;
mod checks;
mod disk;
mod isolate;

use std::process::ExitCode;
use std::time::Duration;

/// Longest any check may take (a healthy one takes well under a second).
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest any benchmark may take (each runs about 1.5 s).
const BENCH_TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: xen-dom0-test [--bench] [NAME...] | --victim [MiB] | --free-pages | --disk-bench DEV [MiB]
  no option: run the ABI checks (or only those named): sysfs xenfs privcmd evtchn gnt
  --bench:   run the benchmarks (or only those named): null_syscall_ns null_hypercall_ns evtchn_rtt_ns
             grant_map_unmap_us";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--victim") => attack::victim(args.get(1).and_then(|m| m.parse().ok()).unwrap_or(16)),
        Some("--disk-bench") => {
            let Some(dev) = args.get(1) else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            return match disk::run(dev, args.get(2).and_then(|m| m.parse().ok()).unwrap_or(64)) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("IO-BENCH-FAIL {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("--free-pages") => {
            return match attack::free_pages() {
                Ok(n) => {
                    println!("FREE-PAGES {n}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xen-dom0-test --free-pages: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {}
    }
    let bench = args.first().is_some_and(|a| a == "--bench");
    if bench {
        args.remove(0);
    }
    if args.iter().any(|a| a.starts_with('-')) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let known: Vec<&str> = if bench {
        bench::BENCHES.iter().map(|b| b.0).collect()
    } else {
        checks::CHECKS.iter().map(|c| c.0).collect()
    };
    if let Some(bad) = args.iter().find(|a| !known.contains(&a.as_str())) {
        eprintln!("unknown name {bad:?}\n{USAGE}");
        return ExitCode::from(2);
    }
    let selected = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let ok = if bench { run_benches(selected) } else { run_checks(selected) };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_checks(selected: impl Fn(&str) -> bool) -> bool {
    let (mut pass, mut fail) = (0, 0);
    for &(name, check) in checks::CHECKS.iter().filter(|c| selected(c.0)) {
        match isolate::run(CHECK_TIMEOUT, || check().map(|()| String::new())) {
            Ok(_) => {
                pass += 1;
                println!("XT-OK {name}");
            }
            Err(reason) => {
                fail += 1;
                println!("XT-FAIL {name}: {}", one_line(&reason));
            }
        }
    }
    println!("XT-DONE pass={pass} fail={fail}");
    fail == 0
}

fn run_benches(selected: impl Fn(&str) -> bool) -> bool {
    let mut ok = true;
    for &(name, bench) in bench::BENCHES.iter().filter(|b| selected(b.0)) {
        match isolate::run(BENCH_TIMEOUT, bench) {
            Ok(value) => println!("XB-RESULT {name} {value}"),
            Err(reason) => {
                ok = false;
                println!("XB-FAIL {name}: {}", one_line(&reason));
            }
        }
    }
    println!("XB-DONE");
    ok
}

/// Results are one console line each.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " | ")
}
