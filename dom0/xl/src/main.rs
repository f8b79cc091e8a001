//! `xl`: the Xen-compatible toolstack command.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;

use xl::backend::process::MONITOR_ARG;
use xl::backend::{sys::Privcmd, Backend, SystemHost};
use xl::config::Config;
use xl::domain::DomainConfig;
use xl::run::run;

/// As libxencall's `xencall_open`; the error is reported by the commands
/// that need the hypervisor.
fn open_privcmd() -> Result<Privcmd, String> {
    Privcmd::open().map_err(|e| {
        let e = e.to_string();
        let e = e.split(" (os error").next().unwrap_or_default().to_string();
        format!("xencall: error: Could not obtain handle on privileged command interface: {e}")
    })
}

/// `xl __monitor <domid> <source>`, config text on stdin, output to the
/// domain's log: what `xl create` leaves behind for each domain (see
/// `backend::process`).
fn monitor(args: &[String]) -> ExitCode {
    let _ = xen_sys::setsid();
    let (Some(domid), Some(source)) = (args.first().and_then(|d| d.parse().ok()), args.get(1))
    else {
        eprintln!("xl {MONITOR_ARG}: usage: xl {MONITOR_ARG} <domid> <config source>");
        return ExitCode::from(2);
    };
    let mut text = Vec::new();
    if std::io::stdin().read_to_end(&mut text).is_err() {
        eprintln!("xl {MONITOR_ARG}: cannot read the config");
        return ExitCode::from(1);
    }
    let cfg = match Config::parse(source, &text)
        .map_err(|e| e.to_string())
        .and_then(|c| DomainConfig::from_config(&c).map_err(|e| e.to_string()))
    {
        Ok(r) => r.config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut hv = Backend::new(open_privcmd(), SystemHost::default());
    ExitCode::from((hv.monitor(domid, &cfg) & 0xff) as u8)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if argv.first().map(String::as_str) == Some(MONITOR_ARG) {
        return monitor(&argv[1..]);
    }
    let (stdout, stderr, code) = match xl::cli::parse(&argv) {
        Ok(inv) => {
            let mut hv = Backend::new(open_privcmd(), SystemHost::default());
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
