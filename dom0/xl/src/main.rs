//! `xl`: the Xen-compatible toolstack command.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use xl::run::{run, NoHypervisor};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (stdout, stderr, code) = match xl::cli::parse(&argv) {
        Ok(inv) => {
            let out = run(&inv, &mut NoHypervisor, &|p| std::fs::read(p));
            (out.stdout, out.stderr, out.code)
        }
        Err(e) => (e.stdout, e.stderr, e.code),
    };
    // Errors first, then the help text xl prints after them.
    let _ = std::io::stderr().write_all(stderr.as_bytes());
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    ExitCode::from((code & 0xff) as u8)
}
