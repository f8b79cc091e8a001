//! The tests whose dom0 /init reports one step after another (`domu`, `attack`, `io`): the
//! shell helpers their scripts share (testing/lib-dom0.sh, installed as
//! [`DOM0_LIB_PATH`]) and the checker of their markers:
//!
//! ```text
//! FV-INIT uptime=S
//! # diagnostic lines                  (before a FAIL)
//! <PREFIX>OK <step> [details]  |  <PREFIX>FAIL <step> <why>     one per step, in order
//! <PREFIX>DONE pass=N fail=M
//! ```
//!
//! then QEMU exits cleanly (dom0 powers off).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::console::Console;
use crate::initramfs::Initramfs;
use crate::say;

/// The helpers testing/init-domu.sh, init-attack.sh and init-io.sh source.
pub const DOM0_LIB: &str = include_str!("../../testing/lib-dom0.sh");
/// Where they find it in dom0.
pub const DOM0_LIB_PATH: &str = "/etc/ferrovisor/lib.sh";

/// Diagnostic lines kept for the first failed step that has some.
const DIAG: usize = 60;

/// [`Initramfs::busybox_root`] with `init` as /init and the shared helpers at [`DOM0_LIB_PATH`].
pub fn dom0_root(busybox: &Path, init: &str) -> Result<Initramfs> {
    let mut rd = Initramfs::busybox_root(busybox, init)?;
    rd.file(DOM0_LIB_PATH.trim_start_matches('/'), 0o644, DOM0_LIB.as_bytes().to_vec());
    Ok(rd)
}

/// A test's step markers.
pub struct Steps<'a> {
    /// The test's name, at the start of its progress lines.
    pub test: &'a str,
    /// The script's marker prefix (its `MARK`), e.g. `DOMU-TEST-`.
    pub prefix: &'a str,
    /// The script, for messages.
    pub script: &'a str,
    /// The steps in the script's order, each with how long it may take after the previous
    /// marker (the script bounds every wait itself; these are the backstop).
    pub steps: &'a [(&'a str, u64)],
}

/// What the steps said, up to the DONE marker.
pub struct Outcome<'a> {
    steps: &'a Steps<'a>,
    passed: Vec<&'a str>,
    /// `step: why`, the first one with its diagnostics on the following lines.
    failures: Vec<String>,
}

impl<'a> Steps<'a> {
    /// Reads FV-INIT, every step's marker and the DONE marker. `on_step(step, lines)` sees
    /// the console lines since the previous step's marker, this one's last; an error from it
    /// fails a step the script passed.
    pub fn run(&'a self, console: &mut Console, mut on_step: impl FnMut(&str, &[String]) -> Result<()>) -> Result<Outcome<'a>> {
        let (uptime, wall) = console.expect("FV-INIT uptime=", Duration::from_secs(180))?;
        say!("dom0 /init after {:.1} s host time (dom0 uptime {uptime} s)", wall.as_secs_f64());
        let mut o = Outcome { steps: self, passed: Vec::new(), failures: Vec::new() };
        // Only the first failure's diagnostics go into the error: later ones often follow from
        // it (they are all in the console log).
        let mut diag_shown = false;
        for &(step, secs) in self.steps {
            let mark = console.mark();
            let (line, at) = console
                .expect(self.prefix, Duration::from_secs(secs))
                .with_context(|| format!("waiting for step `{step}` ({})", o.so_far()))?;
            let (verdict, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            ensure!(
                name == step,
                "expected step `{step}`, got `{}{line}` (the steps and {} out of sync?)",
                self.prefix,
                self.script
            );
            let lines: Vec<String> = console.since(mark).iter().map(|l| l.to_string()).collect();
            let checked = on_step(step, &lines);
            let t = at.as_secs_f64();
            let test = self.test;
            match (verdict, checked) {
                ("OK", Ok(())) => {
                    say!("{test} [{t:6.1} s] {step}: ok {detail}");
                    o.passed.push(step);
                }
                ("OK", Err(e)) => {
                    say!("{test} [{t:6.1} s] {step}: FAILED {e:#}");
                    o.failures.push(format!("{step}: {e:#}"));
                }
                ("FAIL", _) => {
                    say!("{test} [{t:6.1} s] {step}: FAILED {detail}");
                    let diag: Vec<String> =
                        lines.iter().filter(|l| l.starts_with("# ")).take(DIAG).map(|l| format!("      {l}")).collect();
                    if diag.is_empty() || diag_shown {
                        o.failures.push(format!("{step}: {detail}"));
                    } else {
                        diag_shown = true;
                        o.failures.push(format!("{step}: {detail}\n{}", diag.join("\n")));
                    }
                }
                _ => bail!("unparsed marker `{}{line}`", self.prefix),
            }
        }
        let done = format!("{}DONE", self.prefix);
        let (counts, _) = console.expect(&done, Duration::from_secs(60))?;
        say!("{}: {done} {counts}", self.test);
        Ok(o)
    }
}

impl Outcome<'_> {
    fn so_far(&self) -> String {
        format!(
            "passed: {}; failed: {}",
            if self.passed.is_empty() { "none".into() } else { self.passed.join(" ") },
            if self.failures.is_empty() {
                "none".into()
            } else {
                self.failures.iter().map(|f| f.lines().next().unwrap_or_default()).collect::<Vec<_>>().join("; ")
            }
        )
    }

    /// Waits for QEMU to exit, then: every step passed, no `problems` (the test's own
    /// findings besides the steps, named `what`), and QEMU exited cleanly.
    pub fn finish(self, console: &mut Console, what: &str, problems: &[String]) -> Result<()> {
        let status = console.wait_exit(Duration::from_secs(60));
        ensure!(
            self.failures.is_empty() && problems.is_empty(),
            "{} of {} steps failed (passed: {}){}:\n    {}",
            self.failures.len(),
            self.steps.steps.len(),
            if self.passed.is_empty() { "none".into() } else { self.passed.join(" ") },
            if problems.is_empty() { String::new() } else { format!(", {} {what}", problems.len()) },
            self.failures.iter().chain(problems).cloned().collect::<Vec<_>>().join("\n    ")
        );
        let status = status?;
        ensure!(status.success(), "QEMU exited with {status} after {}DONE", self.steps.prefix);
        Ok(())
    }
}

/// Asserts that the script `name` (text `script`) names `steps` in this order: each as a word
/// (` step ` or ` step` ending a line) or opening a quoted string (`"step ` or `"step"`).
#[cfg(test)]
pub fn assert_steps_in_order<'s>(name: &str, script: &str, steps: impl IntoIterator<Item = &'s str>) {
    let mut at = 0;
    for step in steps {
        let found = [format!(" {step} "), format!("\"{step} "), format!(" {step}\n"), format!("\"{step}\"")]
            .iter()
            .filter_map(|p| script[at..].find(p.as_str()))
            .min()
            .unwrap_or_else(|| panic!("step {step} not found in order in {name}"));
        at += found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts that source the helpers, with their marker prefix.
    const SCRIPTS: &[(&str, &str, &str)] = &[
        ("testing/init-domu.sh", crate::domu::DOM0_INIT, crate::domu::STEPS_PREFIX),
        ("testing/init-attack.sh", crate::attack::DOM0_INIT, crate::attack::STEPS_PREFIX),
        ("testing/init-io.sh", crate::io::DOM0_INIT, crate::io::STEPS_PREFIX),
    ];

    #[test]
    fn scripts_source_the_helpers_and_mark_with_their_prefix() {
        let first_steps = [crate::domu::STEPS[0].0, crate::attack::steps(0)[0].0, crate::io::STEPS[0].0];
        for ((name, text, prefix), first) in SCRIPTS.iter().zip(first_steps) {
            let source = text.find(&format!("\n. {DOM0_LIB_PATH}\n")).unwrap_or_else(|| panic!("{name} does not source {DOM0_LIB_PATH}"));
            let mark = text.find(&format!("\nMARK={prefix}\n")).unwrap_or_else(|| panic!("{name} does not set MARK={prefix}"));
            let boot = text.find("\ndom0_boot\n").unwrap_or_else(|| panic!("{name} does not call dom0_boot"));
            assert!(source < mark && mark < boot, "{name}: source the helpers, set MARK, then dom0_boot");
            // The first step starts the toolstack (and blocks the others without Xen).
            assert!(text.contains(&format!("\nstep_toolstack {first}\n")), "{name}: step_toolstack {first}");
            assert!(text.contains("\nsteps_done\n"), "{name}: no steps_done");
        }
    }

    /// A console that prints `text` and exits.
    fn console(text: &str) -> Console {
        let mut cmd = std::process::Command::new("printf");
        cmd.arg("%s").arg(text);
        Console::spawn(cmd).unwrap()
    }

    const T: Steps = Steps { test: "t", prefix: "T-TEST-", script: "t.sh", steps: &[("a", 5), ("b", 5)] };

    #[test]
    fn every_step_passes() {
        let mut c = console("FV-INIT uptime=1.0\nT-TEST-OK a one\nT-TEST-OK b\nT-TEST-DONE pass=2 fail=0\n");
        let mut seen = Vec::new();
        let o = T.run(&mut c, |step, lines| {
            seen.push((step.to_owned(), lines.len()));
            Ok(())
        });
        o.unwrap().finish(&mut c, "problems", &[]).unwrap();
        assert_eq!(seen, [("a".to_owned(), 1), ("b".to_owned(), 1)]);
    }

    #[test]
    fn failures_hook_errors_problems_and_order() {
        // A FAIL with its diagnostics.
        let mut c = console("FV-INIT uptime=1.0\n# why a\nT-TEST-FAIL a broke\nT-TEST-OK b\nT-TEST-DONE pass=1 fail=1\n");
        let e = T.run(&mut c, |_, _| Ok(())).unwrap().finish(&mut c, "problems", &[]).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("1 of 2 steps failed (passed: b)") && e.contains("a: broke") && e.contains("# why a"), "{e}");
        // The hook fails a step the script passed; problems fail the test.
        let mut c = console("FV-INIT uptime=1.0\nT-TEST-OK a\nT-TEST-OK b\nT-TEST-DONE pass=2 fail=0\n");
        let o = T.run(&mut c, |step, _| if step == "b" { anyhow::bail!("not so") } else { Ok(()) }).unwrap();
        let e = format!("{:#}", o.finish(&mut c, "case problem(s)", &["case 1".into()]).unwrap_err());
        assert!(e.contains("1 of 2 steps failed (passed: a), 1 case problem(s)") && e.contains("b: not so") && e.contains("case 1"), "{e}");
        // Steps out of order.
        let mut c = console("FV-INIT uptime=1.0\nT-TEST-OK b\n");
        let e = format!("{:#}", T.run(&mut c, |_, _| Ok(())).err().unwrap());
        assert!(e.contains("expected step `a`, got `T-TEST-OK b`"), "{e}");
    }

    #[test]
    fn the_helpers_only_define() {
        // Sourcing runs nothing: every top-level line is a comment, an assignment or part of a
        // function definition (from `name() {` to a `}` line, or a one-line `name() { ...; }`).
        let mut in_fn = false;
        for l in DOM0_LIB.lines() {
            if in_fn {
                in_fn = l != "}";
            } else if l.is_empty() || l.starts_with('#') {
            } else if let Some((name, body)) = l.split_once("() {") {
                assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{l}");
                in_fn = !body.trim_end().ends_with('}');
            } else {
                let (var, _) = l.split_once('=').unwrap_or_else(|| panic!("lib-dom0.sh runs `{l}`"));
                assert!(var.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_lowercase() || c == '_'), "{l}");
            }
        }
        assert!(!in_fn);
    }

    #[test]
    fn markers_use_the_prefix() {
        // The scripts' step markers all come from lib-dom0.sh's ok, bad, blocked, step_toolstack
        // and steps_done, with the script's MARK.
        for (name, text, prefix) in SCRIPTS {
            for marker in ["OK ", "FAIL ", "DONE "] {
                let own = format!("{prefix}{marker}");
                assert!(text.lines().all(|l| l.starts_with('#') || !l.contains(&own)), "{name} writes {own} itself");
            }
        }
        for marker in ["${MARK}OK ", "${MARK}FAIL ", "${MARK}DONE "] {
            assert!(DOM0_LIB.contains(marker), "{marker}");
        }
    }
}
