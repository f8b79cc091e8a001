//! Options, as C xenconsoled's (`tools/console/daemon/main.c`), plus `--log-file`.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: xenconsoled [-h] [-V] [-v] [-i] [--log=none|guest|hv|all] [--log-dir=DIR]
                   [--pid-file=PATH] [-t, --timestamp=none|guest|hv|all]
                   [-o, --overflow-data=discard|keep] [--replace-escape] [--log-file=FILE]

  -i, --interactive       stay in the foreground (else daemonize and write the pid file)
  --log=WHAT              guest: each guest's console to DIR/guest-NAME.log; hv: the
                          hypervisor's console to DIR/hypervisor.log; all: both (none)
  --log-dir=DIR           where the logs go (/var/log/xen/console)
  --pid-file=PATH         the daemon's pid (/var/run/xen/xenconsoled.pid)
  -t, --timestamp=WHAT    prefix log lines with the time (UTC) for guest, hv, all or none
  -o, --overflow-data=    discard (default): output nobody reads from a console's pty is
                          dropped past the console's limit; keep: up to 4 MiB is kept
  --replace-escape        write ESC as `.` in the logs
  --log-file=FILE         xenconsoled's own messages (default when daemonized:
                          /var/log/xen/xenconsoled.log; stderr in the foreground)
  -v, --verbose           more messages
  -V, --version
  -h, --help

Signals: SIGHUP reopens the log files (after rotation).";

/// Xen's `XEN_LOG_DIR "/console"`.
pub const DEFAULT_LOG_DIR: &str = "/var/log/xen/console";
/// Xen's `XEN_RUN_DIR "/xenconsoled.pid"`.
pub const DEFAULT_PID_FILE: &str = "/var/run/xen/xenconsoled.pid";
/// Where the daemon's own messages go once it is in the background.
pub const DEFAULT_LOG_FILE: &str = "/var/log/xen/xenconsoled.log";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opts {
    pub help: bool,
    pub version: bool,
    pub verbose: bool,
    pub interactive: bool,
    pub log_guest: bool,
    pub log_hv: bool,
    pub log_dir: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub time_guest: bool,
    pub time_hv: bool,
    pub discard_overflow: bool,
    pub replace_escape: bool,
    pub log_file: Option<PathBuf>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            help: false,
            version: false,
            verbose: false,
            interactive: false,
            log_guest: false,
            log_hv: false,
            log_dir: DEFAULT_LOG_DIR.into(),
            pid_file: None,
            time_guest: false,
            time_hv: false,
            discard_overflow: true,
            replace_escape: false,
            log_file: None,
        }
    }
}

/// `none|guest|hv|all` as (guest, hv).
fn which(name: &str, v: &str) -> Result<(bool, bool), String> {
    match v {
        "none" => Ok((false, false)),
        "guest" => Ok((true, false)),
        "hv" => Ok((false, true)),
        "all" => Ok((true, true)),
        _ => Err(format!("{name}: expected none, guest, hv or all, not `{v}`")),
    }
}

impl Opts {
    /// Parses the arguments after argv[0].
    pub fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
                _ => (a.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "-h" | "--help" => o.help = true,
                "-V" | "--version" => o.version = true,
                "-v" | "--verbose" => o.verbose = true,
                "-i" | "--interactive" => o.interactive = true,
                "--log" => (o.log_guest, o.log_hv) = which(name, &value()?)?,
                "--log-dir" => o.log_dir = value()?.into(),
                "--pid-file" => o.pid_file = Some(value()?.into()),
                "-t" | "--timestamp" => (o.time_guest, o.time_hv) = which(name, &value()?)?,
                "-o" | "--overflow-data" => {
                    o.discard_overflow = match value()?.as_str() {
                        "discard" => true,
                        "keep" => false,
                        v => return Err(format!("{name}: expected discard or keep, not `{v}`")),
                    }
                }
                "--replace-escape" => o.replace_escape = true,
                "--log-file" => o.log_file = Some(value()?.into()),
                _ => return Err(format!("unknown option `{a}` (see --help)")),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parse() {
        let o = Opts::parse(&[]).unwrap();
        assert_eq!(o, Opts::default());
        assert_eq!(o.log_dir, PathBuf::from("/var/log/xen/console"));
        let o =
            Opts::parse(&args("-i --log=all --log-dir /tmp/c -t guest --pid-file=/run/x.pid -o keep --replace-escape"))
                .unwrap();
        assert!(o.interactive && o.log_guest && o.log_hv && o.time_guest && !o.time_hv);
        assert!(!o.discard_overflow && o.replace_escape);
        assert_eq!(o.log_dir, PathBuf::from("/tmp/c"));
        assert_eq!(o.pid_file, Some(PathBuf::from("/run/x.pid")));
        let o = Opts::parse(&args("--interactive --log guest --timestamp=all")).unwrap();
        assert!(o.log_guest && !o.log_hv && o.time_hv && o.time_guest);
        let o = Opts::parse(&args("--log=hv")).unwrap();
        assert!(!o.log_guest && o.log_hv);
        for bad in ["--log=some", "--log", "-x", "-o maybe", "--log-dir"] {
            assert!(Opts::parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
