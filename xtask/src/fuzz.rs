//! `cargo xtask fuzz`: coverage-guided fuzzing (libFuzzer) of every parser of
//! untrusted input, on the host, with the one stable toolchain.
//!
//! The targets live in `fuzz/` (its own cargo workspace, so `cargo test` at
//! the root never builds it). They are built here rather than by cargo-fuzz:
//! stable rustc accepts the SanitizerCoverage instrumentation libFuzzer needs
//! as plain codegen options (`-Cpasses=sancov-module` plus `-Cllvm-args`),
//! and `libfuzzer-sys` compiles libFuzzer itself with the system C++
//! compiler. No nightly, no AddressSanitizer (the code under test is safe
//! Rust; panics, overflow checks and debug assertions are the oracles).
//!
//! Inputs: `fuzz/corpus/<target>/` holds the committed seeds and every input
//! that once crashed a target (replayed at the start of each run, so they
//! are regression tests too); new interesting inputs go to the machine-local
//! `target/fuzz/corpus/<target>/`. Crashes land in `fuzz/artifacts/<target>/`
//! (git-ignored).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::args::Args;
use crate::{output_of, say, target_dir, workspace_root};

/// (target, what it fuzzes, libFuzzer `-max_len`).
pub const TARGETS: &[(&str, &str, usize)] = &[
    ("dt_reader", "host DTB reader, BootInfo::parse, build_dom0_dtb, dom0_passthrough", 16384),
    ("cmdline", "Xen command line and its option parsers", 4096),
    ("evtchn_ops", "event channels: random EVTCHNOPs over two domains, hostile guest memory", 4096),
    ("grant_ops", "grant tables: map/unmap/copy/grow/die over three domains, hostile granters", 4096),
    ("vgic_mmio", "vGICv3 MMIO, injection, SGIs, flush/run/sync cycles", 4096),
    ("s1walk", "guest stage-1 walks and guest-VA copies over guest-built tables", 4096),
    ("stage2", "stage-2 map/unmap/translate against a shadow model, out-of-memory", 4096),
    ("esr_mmio", "ESR_EL2, MMIO access (and post-indexed LDR/STR) and PSCI/SMCCC decoding", 4096),
    ("xenstore_wire", "xenstore decoder on random chunks, request parsing, ring", 8192),
    ("xenstore_server", "xenstore request engine: several domains, perms, transactions", 8192),
    ("xlcfg", "xl.cfg parser and DomainConfig::from_config (disk and vif specs included)", 8192),
];

/// Seconds per target in `cargo xtask test` (override: FERROVISOR_FUZZ_SECS, 0 skips).
const SMOKE_SECS: u64 = 10;

const USAGE: &str = "usage: cargo xtask fuzz TARGET|all [--time SECS (60)] [--jobs N (1)]
       cargo xtask fuzz --list";

/// The coverage instrumentation libFuzzer needs, as stable rustc options.
const RUSTFLAGS: &[&str] = &[
    "--cfg",
    "fuzzing",
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// `cargo xtask fuzz ...`.
pub fn command(mut args: Args) -> Result<()> {
    if args.flag("--list") {
        args.finish()?;
        for (name, what, _) in TARGETS {
            println!("{name:16} {what}");
        }
        return Ok(());
    }
    let secs: u64 = args.value("--time")?.map_or(Ok(60), |s| s.parse()).context("--time")?;
    let jobs: u32 = args.value("--jobs")?.map_or(Ok(1), |s| s.parse()).context("--jobs")?;
    let Some(which) = args.next_positional() else {
        bail!("{USAGE}");
    };
    args.finish()?;
    let targets: Vec<&str> = if which == "all" {
        TARGETS.iter().map(|t| t.0).collect()
    } else if TARGETS.iter().any(|t| t.0 == which) {
        vec![which.as_str()]
    } else {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
        bail!("unknown fuzz target `{which}`; targets: {}", names.join(" "));
    };
    let bins = build()?;
    let mut failed = Vec::new();
    for t in targets {
        say!("fuzzing {t} for {secs} s{}", if jobs > 1 { format!(" with {jobs} jobs") } else { String::new() });
        match run(&bins, t, secs, jobs, None, false) {
            Ok(r) => println!("fuzz {t} ... ok ({})", r.summary()),
            Err(e) => {
                println!("fuzz {t} ... FAILED\n{e:#}");
                failed.push(t);
            }
        }
    }
    if !failed.is_empty() {
        bail!("crashes in {}", failed.join(", "));
    }
    Ok(())
}

/// The short run of every target that `cargo xtask test` makes after the
/// host unit tests: the committed corpus (seeds and regressions) replayed,
/// then fresh exploration from a fixed seed and an empty scratch corpus, so
/// every machine (CI's included) runs the same inputs, as far as its speed
/// allows in the time given.
pub fn smoke() -> Result<()> {
    let secs = match std::env::var("FERROVISOR_FUZZ_SECS") {
        Ok(s) => s.parse().context("FERROVISOR_FUZZ_SECS")?,
        Err(_) => SMOKE_SECS,
    };
    if secs == 0 {
        say!("fuzz smoke run skipped (FERROVISOR_FUZZ_SECS=0)");
        return Ok(());
    }
    say!("fuzz smoke run: {} targets, {secs} s each", TARGETS.len());
    let bins = build()?;
    let mut failed = Vec::new();
    for (t, _, _) in TARGETS {
        match run(&bins, t, secs, 1, Some(1), true) {
            Ok(r) => println!("fuzz {t} ... ok ({})", r.summary()),
            Err(e) => {
                println!("fuzz {t} ... FAILED\n{e:#}");
                failed.push(*t);
            }
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets crashed: {}", failed.join(", "));
    }
    Ok(())
}

fn host_triple() -> Result<String> {
    let v = output_of(Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())).arg("-vV"))?;
    v.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
        .context("no host triple in `rustc -vV`")
}

/// libfuzzer-sys compiles libFuzzer (C++): make sure a C++ compiler exists.
fn ensure_cxx() -> Result<()> {
    let have = |bin: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(bin).is_file())
    };
    if std::env::var_os("CXX").is_some() || have("c++") || have("g++") || have("clang++") {
        return Ok(());
    }
    say!("apt-get install g++ (libFuzzer is C++)");
    crate::run_checked(Command::new("apt-get").args(["install", "-y", "-q", "--no-install-recommends", "g++"]))
        .context("installing g++ (run as root, or set CXX)")
}

/// Builds every target with coverage instrumentation; returns the binaries' directory.
fn build() -> Result<PathBuf> {
    ensure_cxx()?;
    let host = host_triple()?;
    let target = target_dir().join("fuzz");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    say!("building fuzz targets (release, SanitizerCoverage, {host})");
    let start = Instant::now();
    let status = Command::new(cargo)
        .args(["build", "--release", "--bins", "--target", &host, "--manifest-path"])
        .arg(fuzz_dir().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        // `--target` keeps these flags off build scripts and proc macros.
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .current_dir(fuzz_dir())
        .status()
        .context("starting cargo build for fuzz/")?;
    if !status.success() {
        bail!("building the fuzz targets failed ({status})");
    }
    say!("fuzz targets built in {:.0} s", start.elapsed().as_secs_f64());
    Ok(target.join(host).join("release"))
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

struct RunResult {
    secs: f64,
    runs: Option<u64>,
    cov: Option<String>,
}

impl RunResult {
    fn summary(&self) -> String {
        let mut s = format!("{:.1} s", self.secs);
        if let Some(r) = self.runs {
            s.push_str(&format!(", {r} runs"));
        }
        if let Some(c) = &self.cov {
            s.push_str(&format!(", {c}"));
        }
        s
    }
}

/// Runs one target for `secs` seconds; an error carries the crash report.
/// `scratch`: start from an empty working corpus (else the machine-local one
/// that earlier runs grew).
fn run(bins: &Path, name: &str, secs: u64, jobs: u32, seed: Option<u32>, scratch: bool) -> Result<RunResult> {
    let max_len = TARGETS.iter().find(|t| t.0 == name).map_or(4096, |t| t.2);
    let work = target_dir().join("fuzz").join(if scratch { "scratch" } else { "corpus" }).join(name);
    if scratch && work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let seeds = fuzz_dir().join("corpus").join(name);
    let artifacts = fuzz_dir().join("artifacts").join(name);
    let logs = target_dir().join("fuzz").join("logs");
    for d in [&work, &seeds, &artifacts, &logs] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let log = logs.join(format!("{name}.log"));
    let mut cmd = Command::new(bins.join(name));
    cmd.arg(format!("-max_total_time={secs}"))
        .arg(format!("-max_len={max_len}"))
        .arg("-timeout=20")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    if let Some(s) = seed {
        cmd.arg(format!("-seed={s}"));
    }
    if jobs > 1 {
        cmd.arg(format!("-fork={jobs}"));
    }
    // New inputs go to the first directory (machine-local); the second holds the committed seeds.
    cmd.arg(&work).arg(&seeds);
    let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdout(file.try_clone()?).stderr(file).stdin(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("starting {}", bins.join(name).display()))?;
    let secs_taken = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        let artifact = text.lines().find_map(|l| l.split("Test unit written to ").nth(1)).map(str::trim);
        // The panic message (not libFuzzer's backtrace), else the log's end.
        let lines: Vec<&str> = text.lines().collect();
        let shown: Vec<&str> = match lines.iter().position(|l| l.contains(" panicked at ")) {
            Some(i) => lines[i..].iter().take_while(|l| !l.starts_with("stack backtrace:")).take(12).copied().collect(),
            None => lines.iter().rev().take(20).rev().copied().collect(),
        };
        let tail: String = shown.iter().map(|l| format!("    | {l}\n")).collect();
        let mut msg = format!("  {name} failed ({status}) after {secs_taken:.1} s\n{tail}  full log: {}", log.display());
        if let Some(a) = artifact {
            msg.push_str(&format!(
                "\n  crashing input: {a}\n  reproduce: FUZZ_DEBUG=1 {} {a}\n  once fixed, keep it: copy it into {}/ and add a #[test] in the crate",
                bins.join(name).display(),
                seeds.display()
            ));
        }
        bail!(msg);
    }
    // The last status line: `#RUNS<tab or colon> ... cov: N ft: N ...` (also in -fork mode).
    let status_line = text.lines().rev().find(|l| l.starts_with('#') && l.contains("cov: "));
    let runs = text
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .or_else(|| status_line.and_then(|l| l[1..].split(|c: char| !c.is_ascii_digit()).next()))
        .and_then(|v| v.trim().parse().ok());
    let cov = status_line
        .and_then(|l| l.find("cov: ").map(|i| l[i..].split_whitespace().take(4).collect::<Vec<_>>().join(" ")));
    Ok(RunResult { secs: secs_taken, runs, cov })
}
