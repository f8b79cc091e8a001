//! `xl`: the Xen-compatible toolstack command.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use xl::backend::{sys::Privcmd, Backend, SystemHost};
use xl::run::run;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (stdout, stderr, code) = match xl::cli::parse(&argv) {
        Ok(inv) => {
            // As libxencall's xencall_open; the error is reported by the
            // commands that need the hypervisor.
            let xc = Privcmd::open().map_err(|e| {
                let e = e.to_string();
                let e = e.split(" (os error").next().unwrap_or_default().to_string();
                format!(
                    "xencall: error: Could not obtain handle on privileged command interface: {e}"
                )
            });
            let mut hv = Backend::new(xc, SystemHost::default());
            let out = run(&inv, &mut hv, &|p| std::fs::read(p));
            (out.stdout, out.stderr, out.code)
        }
        Err(e) => (e.stdout, e.stderr, e.code),
    };
    // Errors first, then the help text xl prints after them.
    let _ = std::io::stderr().write_all(stderr.as_bytes());
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    ExitCode::from((code & 0xff) as u8)
}
