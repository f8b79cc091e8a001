//! The `attack` test: dom0 (testing/init-attack.sh) runs the bare-metal attack guest
//! (testing/attack-guest) beside a victim domU (testing/victim-init.sh with
//! `xen-dom0-test --victim`), then its kill modes, then a create/destroy churn, and reports
//! each step as `ATTACK-TEST-OK|FAIL <step>`; the guest's own result lines come through as
//! `ATTACK-LINE ATTACK <n> <name> <result> expect=<expected> <OK|BAD>`.
//!
//! Every case must be OK, or BAD and listed in [`KNOWN_FAILURES`] (a hypervisor bug or a
//! difference from Xen 4.17 that is reported and waiting for a fix; the test stays green and
//! says so). A listed case that passes is reported too, so the table can shrink.
//!
//! dom0's layout (besides our toolstack, as in xtask/src/domu.rs):
//!
//! ```text
//! /var/lib/ferrovisor/vmlinuz               the victim's kernel (dom0's Debian Image)
//! /var/lib/ferrovisor/victim-initrd.gz      busybox, testing/victim-init.sh, xen-dom0-test
//! /var/lib/ferrovisor/attack-guest.Image    the attack guest (arm64 Image)
//! /usr/bin/xen-dom0-test                    --free-pages: the hypervisor's exact free pages
//! /etc/xen/victim.cfg                       (the attack guests' cfgs are written at run time)
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, ensure, Context, Result};
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::Endianness;

use crate::console::Console;
use crate::debian::Artifacts;
use crate::initramfs::Initramfs;
use crate::steps::{dom0_root, Steps};
use crate::{dom0test, run_checked, say, target_dir, tools, workspace_root};

/// dom0's /init.
pub const DOM0_INIT: &str = include_str!("../../testing/init-attack.sh");
/// The victim domU's /init.
pub const VICTIM_INIT: &str = include_str!("../../testing/victim-init.sh");

const GUEST_TARGET: &str = "aarch64-unknown-none-softfloat";
/// The guest's link address: RAM base (0x4000_0000) + the header's text_offset (2 MiB).
const GUEST_BASE: u64 = 0x4020_0000;

/// The QEMU machine: as the `domu` test's (dom0 on one pCPU); the victim (1 vCPU) and the
/// attack guest (2 vCPUs) take the other three.
pub const TEST_SMP: u32 = 4;

/// Create/destroy cycles of the churn step; `FERROVISOR_CHURN` overrides it (e.g. 200).
pub const CHURN_DEFAULT: u32 = 20;

/// Fewest numbered cases the main run must report.
const MIN_CASES: usize = 50;

/// Cases whose BAD result on Ferrovisor is known: (case name, why). Each is a hypervisor bug
/// or a difference from Xen 4.17 (checked with `--hypervisor xen`), reported to the lead;
/// remove the entry once it is fixed (the test then says the case passes).
pub const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// Cases seen failing once but not reproducible (yet): a BAD result is reported, not fatal.
pub const INTERMITTENT: &[(&str, &str)] = &[];

/// The steps testing/init-attack.sh reports, in order, each with how long it may take after
/// the previous marker (see [`Steps::steps`]).
pub(crate) fn steps(churn: u32) -> Vec<(&'static str, u64)> {
    vec![
        ("xencommons", 120),
        ("create_victim", 180),
        ("victim_alive", 300),
        ("attack_run", 420),
        ("attack_gone", 120),
        ("kill_masked_spin", 240),
        ("kill_abort_loop", 240),
        ("kill_wfi", 240),
        ("kill_crash", 240),
        ("dom0_responsive", 60),
        ("victim_intact", 90),
        ("destroy_victim", 150),
        ("memory", 120),
        ("churn", 120 + 60 * churn as u64),
        ("memory_final", 120),
    ]
}

/// The churn count for this run.
pub fn churn() -> u32 {
    std::env::var("FERROVISOR_CHURN").ok().and_then(|v| v.parse().ok()).unwrap_or(CHURN_DEFAULT)
}

/// Pages Xen 4.17 may keep after the victim (a Linux domU) is gone: its free page count is
/// 7 short then, with or without the attack guests (which, like the churn, leave it exact).
const XEN_MEM_SLACK: u32 = 16;

/// dom0's extra kernel arguments; `xen`: the hypervisor is Xen 4.17 (free pages within
/// [`XEN_MEM_SLACK`] after the victim; exact on Ferrovisor).
pub fn dom0_args(xen: bool) -> String {
    format!("fv_churn={} fv_mem_slack={}", churn(), if xen { XEN_MEM_SLACK } else { 0 })
}

/// Builds the attack guest and writes it as a flat arm64 Image; returns its path.
pub fn build_guest() -> Result<PathBuf> {
    say!("cargo build -p attack-guest --release --target {GUEST_TARGET}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo)
            .args(["build", "-p", "attack-guest", "--release", "--target", GUEST_TARGET])
            .current_dir(workspace_root()),
    )?;
    let elf_path = target_dir().join(GUEST_TARGET).join("release/attack-guest");
    let elf = std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let image = flat_image(&elf).with_context(|| format!("converting {} to an Image", elf_path.display()))?;
    let out = target_dir().join("attack-guest.Image");
    std::fs::write(&out, &image).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// The PT_LOAD segments' file contents laid out from [`GUEST_BASE`] (as `objcopy -O binary`,
/// and as xtask/src/image.rs does for the hypervisor); checks the arm64 Image header.
fn flat_image(elf: &[u8]) -> Result<Vec<u8>> {
    let file = ElfFile64::<Endianness>::parse(elf)?;
    let endian = file.endian();
    let mut bin = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let data = ph.data(endian, elf).map_err(|()| anyhow!("PT_LOAD segment outside the file"))?;
        let at = ph.p_paddr(endian).checked_sub(GUEST_BASE).ok_or_else(|| anyhow!("segment below {GUEST_BASE:#x}"))?;
        ensure!(at < 16 << 20, "segment at {:#x}: check testing/attack-guest/linker.ld", ph.p_paddr(endian));
        let end = at as usize + data.len();
        if bin.len() < end {
            bin.resize(end, 0);
        }
        bin[at as usize..end].copy_from_slice(data);
    }
    ensure!(bin.len() >= 64 && &bin[0x38..0x3c] == b"ARM\x64", "no arm64 Image header at the start");
    Ok(bin)
}

/// Writes dom0's initramfs: busybox, testing/init-attack.sh, the Xen modules, our toolstack,
/// xen-dom0-test, the victim's kernel and initramfs, the attack guest, victim.cfg.
pub fn write_dom0_initramfs(art: &Artifacts, tools: &tools::Tools, out: &Path) -> Result<()> {
    let guest = build_guest()?;
    let prog = dom0test::build()?;
    let mut rd = dom0_root(&art.busybox, DOM0_INIT)?;
    tools.install(&mut rd)?;
    let modules: Vec<String> = dom0test::MODULES.iter().map(|m| m.to_string()).collect();
    rd.add_modules(&art.cloud, &modules)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let prog_data = read(&prog)?;
    rd.file("usr/bin/xen-dom0-test", 0o755, prog_data.clone());
    rd.file("var/lib/ferrovisor/vmlinuz", 0o644, read(&art.cloud.image)?);
    rd.file("var/lib/ferrovisor/attack-guest.Image", 0o644, read(&guest)?);
    let mut victim = Initramfs::busybox_root(&art.busybox, VICTIM_INIT)?;
    victim.file("bin/xen-dom0-test", 0o755, prog_data);
    rd.file("var/lib/ferrovisor/victim-initrd.gz", 0o644, victim.to_gz()?);
    rd.file("etc/xen/victim.cfg", 0o644, VICTIM_CFG.as_bytes().to_vec());
    rd.write_gz(out)
}

const VICTIM_CFG: &str = "\
# Written by cargo xtask (xtask/src/attack.rs): the attack test's victim (testing/victim-init.sh).
name = \"victim\"
memory = 128
vcpus = 1
kernel = \"/var/lib/ferrovisor/vmlinuz\"
ramdisk = \"/var/lib/ferrovisor/victim-initrd.gz\"
extra = \"console=hvc0 victim_mib=16\"
on_poweroff = \"destroy\"
on_reboot = \"destroy\"
on_crash = \"destroy\"
";

/// One `ATTACK <n> <name> ...` line of a guest.
#[derive(Debug, PartialEq)]
struct CaseLine {
    n: u32,
    name: String,
    result: String,
    expect: String,
    ok: bool,
}

/// Parses `ATTACK <n> <name> <result> expect=<e> <OK|BAD>` (None for other ATTACK lines).
fn parse_case(line: &str) -> Option<CaseLine> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 6 || f[0] != "ATTACK" {
        return None;
    }
    Some(CaseLine {
        n: f[1].parse().ok()?,
        name: f[2].to_owned(),
        result: f[3].to_owned(),
        expect: f[4].strip_prefix("expect=")?.to_owned(),
        ok: match f[5] {
            "OK" => true,
            "BAD" => false,
            _ => return None,
        },
    })
}

fn known(name: &str) -> Option<&'static str> {
    KNOWN_FAILURES.iter().chain(INTERMITTENT).find(|(n, _)| *n == name).map(|(_, why)| *why)
}

fn intermittent(name: &str) -> bool {
    INTERMITTENT.iter().any(|(n, _)| *n == name)
}

/// What the guests' lines say: problems (unknown BAD results, missing cases, crashes of the
/// guest itself) and a summary. `tables`: apply [`KNOWN_FAILURES`] and [`INTERMITTENT`]
/// (they describe Ferrovisor; under Xen 4.17 every case must pass).
fn judge(lines: &[String], tables: bool) -> (Vec<String>, String) {
    let known = |n: &str| if tables { known(n) } else { None };
    let mut problems = Vec::new();
    let (mut ok, mut known_bad, mut fixed) = (Vec::new(), Vec::new(), Vec::new());
    let mut declared = None;
    let mut main_cases = 0;
    let mut deaths = Vec::new();
    for l in lines {
        if let Some(rest) = l.strip_prefix("ATTACK-BEGIN mode=main cases=") {
            declared = rest.split_whitespace().next().and_then(|n| n.parse::<usize>().ok());
        } else if l.starts_with("ATTACK-UNEXPECTED") || l.starts_with("ATTACK-PANIC") || l.starts_with("ATTACK-UNKNOWN") {
            problems.push(format!("guest: {l}"));
        } else if l.ends_with("EXPECT-DEATH") {
            deaths.push(l.split_whitespace().nth(2).unwrap_or("?").to_owned());
        } else if let Some(c) = parse_case(l) {
            if c.n < 900 {
                main_cases += 1;
            }
            match (c.ok, known(&c.name)) {
                (true, None) => ok.push(c.name),
                (true, Some(_)) if intermittent(&c.name) => ok.push(c.name),
                (true, Some(_)) => fixed.push(c.name),
                (false, Some(_)) => known_bad.push(format!("{} {} (expected {})", c.name, c.result, c.expect)),
                (false, None) => problems.push(format!("case {} {}: got {}, expected {}", c.n, c.name, c.result, c.expect)),
            }
        }
    }
    match declared {
        None => problems.push("no ATTACK-BEGIN of the main run".into()),
        Some(d) if d != main_cases => problems.push(format!("the main run declared {d} cases but reported {main_cases}")),
        Some(_) => {}
    }
    if main_cases < MIN_CASES {
        problems.push(format!("only {main_cases} cases in the main run (at least {MIN_CASES})"));
    }
    let mut s = String::new();
    let _ = write!(s, "{} cases ok, {} known failures", ok.len(), known_bad.len());
    if !deaths.is_empty() {
        let _ = write!(s, ", kill cases {}", deaths.join(" "));
    }
    for k in &known_bad {
        let _ = write!(s, "\n      known failure: {k} -- {}", known(k.split(' ').next().unwrap_or("")).unwrap_or(""));
    }
    for f in &fixed {
        let _ = write!(s, "\n      now passing, remove from KNOWN_FAILURES: {f}");
    }
    (problems, s)
}

/// testing/init-attack.sh's `MARK`.
pub const STEPS_PREFIX: &str = "ATTACK-TEST-";

/// Checks testing/init-attack.sh's markers and the guests' case lines; `ferrovisor`: the
/// known-failure tables apply.
pub fn check(console: &mut Console, ferrovisor: bool) -> Result<()> {
    let list = steps(churn());
    let steps = Steps { test: "attack", prefix: STEPS_PREFIX, script: "testing/init-attack.sh", steps: &list };
    let mut guest_lines: Vec<String> = Vec::new();
    let outcome = steps.run(console, |_, lines| {
        guest_lines.extend(lines.iter().filter_map(|l| l.split_once("ATTACK-LINE ").map(|(_, r)| r.trim().to_owned())));
        Ok(())
    })?;
    let (problems, summary) = judge(&guest_lines, ferrovisor);
    say!("attack: {summary}");
    outcome.finish(console, "case problem(s)", &problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_reports_every_step_in_order() {
        // The kill steps are named in a loop over KILLS (kill_steps_match_the_script).
        let list = steps(1);
        let named = list.iter().map(|s| s.0).filter(|s| !s.starts_with("kill_"));
        crate::steps::assert_steps_in_order("testing/init-attack.sh", DOM0_INIT, named);
    }

    #[test]
    fn kill_steps_match_the_script() {
        let kills = DOM0_INIT.lines().find_map(|l| l.strip_prefix("KILLS=")).unwrap().trim_matches('"');
        let from_steps: Vec<String> =
            steps(1).iter().filter_map(|(s, _)| s.strip_prefix("kill_")).map(|s| s.replace('_', "-")).collect();
        assert_eq!(kills.split(' ').collect::<Vec<_>>(), from_steps);
    }

    #[test]
    fn case_lines() {
        let c = parse_case("ATTACK 12 ver_bad_cmd -38 expect=-38 OK").unwrap();
        assert_eq!((c.n, c.name.as_str(), c.result.as_str(), c.expect.as_str(), c.ok), (12, "ver_bad_cmd", "-38", "-38", true));
        assert!(parse_case("ATTACK 901 kill_masked_spin EXPECT-DEATH").is_none());
        assert!(parse_case("ATTACK-DONE ok=1 bad=0").is_none());
    }

    #[test]
    fn judging() {
        let mut lines = vec![format!("ATTACK-BEGIN mode=main cases={MIN_CASES} victim=1")];
        for i in 0..MIN_CASES {
            lines.push(format!("ATTACK {} c{i} 0 expect=0 OK", i + 1));
        }
        assert!(judge(&lines, true).0.is_empty());
        lines.push("ATTACK 3 extra -1 expect=0 BAD".into());
        let (p, _) = judge(&lines, true);
        assert_eq!(p.len(), 2, "{p:?}"); // the BAD case, and the count no longer matches
        assert!(judge(&["ATTACK-UNEXPECTED vcpu=0".to_string()], true).0.iter().any(|p| p.contains("UNEXPECTED")));
    }

    #[test]
    fn image_header() {
        assert!(flat_image(b"not an elf").is_err());
    }
}
