//! The process side of `xl create` and `xl console`: starting the
//! per-domain monitor as a detached child, and relaying a console pty to the
//! local terminal (what Xen's `xenconsole` client does).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{ConsoleSession, MonitorSpec, Pump};

/// Where monitors log (`XEN_LOG_DIR`).
pub const LOG_DIR: &str = "/var/log/xen";
/// The hidden first argument that makes `xl` a domain's monitor:
/// `xl __monitor <domid> <config source>`, the config text on stdin.
pub const MONITOR_ARG: &str = "__monitor";
/// `ESCAPE_CHARACTER` of xenconsole: Ctrl-].
pub const ESCAPE: u8 = 0x1d;

/// The monitor's log file of domain `name`.
pub fn log_path(name: &str) -> String {
    format!("{LOG_DIR}/xl-{name}.log")
}

/// Starts `xl __monitor` for `m` with its output appended to the domain's
/// log, and hands it the config text on stdin. The child makes itself a
/// session leader (`setsid`), so it outlives this command and its terminal.
pub fn spawn_monitor(m: &MonitorSpec) -> Result<u32, String> {
    let what = |e: io::Error| format!("cannot start the monitor of domain {}: {e}", m.domid);
    std::fs::create_dir_all(LOG_DIR).map_err(what)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&m.name))
        .map_err(what)?;
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut child = Command::new(exe)
        .arg0("xl")
        .args([MONITOR_ARG, &m.domid.to_string(), &m.source])
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(what)?)
        .stderr(log)
        .spawn()
        .map_err(what)?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(&m.text).map_err(what)?;
    Ok(child.id())
}

/// libxl's domid history file.
pub const DOMID_HISTORY: &str = "/var/run/xen/domid-history";
/// Seconds a destroyed domain's id stays unused (`LIBXL_DOMID_REUSE_TIMEOUT`,
/// overridden by the environment variable of that name as in libxl).
pub const DOMID_REUSE_SECS: u64 = 60;

/// The domids destroyed recently: `<seconds> <domid>` lines, the seconds
/// on dom0's monotonic clock (`/proc/uptime`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomidHistory {
    /// (when, domid), only those still recent.
    pub entries: Vec<(u64, u32)>,
}

fn reuse_secs() -> u64 {
    std::env::var("LIBXL_DOMID_REUSE_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DOMID_REUSE_SECS)
}

impl DomidHistory {
    /// Parses `text`, keeping the entries younger than `timeout` at `now`.
    pub fn parse(text: &str, now: u64, timeout: u64) -> DomidHistory {
        let entries = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .filter(|&(t, _): &(u64, u32)| t <= now && now - t < timeout)
            .collect();
        DomidHistory { entries }
    }

    /// The file's recent entries.
    pub fn load(now: u64) -> DomidHistory {
        let text = std::fs::read_to_string(DOMID_HISTORY).unwrap_or_default();
        DomidHistory::parse(&text, now, reuse_secs())
    }

    /// Adds an entry.
    pub fn add(&mut self, now: u64, domid: u32) {
        self.entries.push((now, domid));
    }

    /// The recent ids.
    pub fn ids(&self) -> Vec<u32> {
        self.entries.iter().map(|e| e.1).collect()
    }

    /// The file's text.
    pub fn text(&self) -> String {
        self.entries
            .iter()
            .map(|(t, d)| format!("{t} {d}\n"))
            .collect()
    }

    /// Writes the file (replaced whole, as libxl does through `.new`).
    pub fn save(&self) -> io::Result<()> {
        let dir = std::path::Path::new(DOMID_HISTORY)
            .parent()
            .expect("a directory");
        std::fs::create_dir_all(dir)?;
        let new = format!("{DOMID_HISTORY}.new");
        std::fs::write(&new, self.text())?;
        std::fs::rename(new, DOMID_HISTORY)
    }
}

enum Event {
    Stdin(Vec<u8>),
    StdinEof,
    /// Bytes from the pty of this generation.
    Pty(u32, Vec<u8>),
    /// The pty of this generation hung up.
    PtyGone(u32),
}

fn read_into(mut r: impl Read, len: usize, mut send: impl FnMut(Option<Vec<u8>>) -> bool) {
    let mut buf = vec![0u8; len];
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                send(None);
                return;
            }
            Ok(n) => {
                if !send(Some(buf[..n].to_vec())) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                send(None);
                return;
            }
        }
    }
}

/// Where the escape character ends a chunk of input: on a raw terminal
/// only a lone keystroke counts (as xenconsole: a 1-byte read), in piped
/// input any occurrence.
pub fn escape_at(d: &[u8], raw: bool) -> Option<usize> {
    if raw {
        (d == [ESCAPE]).then_some(0)
    } else {
        d.iter().position(|&b| b == ESCAPE)
    }
}

/// The real console: reader threads for stdin and the pty feed one channel.
pub struct TermConsole {
    pty: File,
    gen: u32,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
    /// The local terminal's settings while it is raw (restored on drop).
    saved: Option<xen_sys::TermSettings>,
}

fn open_pty(tty: &str) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(tty)?;
    // As xenconsole: the pty carries bytes, not lines (failure is harmless).
    let _ = xen_sys::set_raw(f.as_raw_fd());
    Ok(f)
}

impl TermConsole {
    /// Opens `tty` and starts relaying.
    pub fn open(tty: &str) -> io::Result<TermConsole> {
        let pty = open_pty(tty)?;
        let (tx, rx) = mpsc::channel();
        let stdin_tx = tx.clone();
        std::thread::spawn(move || {
            // Up to 60 bytes at a time, as xenconsole (a lone Ctrl-] is a 1-byte read).
            read_into(io::stdin().lock(), 60, |d| {
                let ev = d.map_or(Event::StdinEof, Event::Stdin);
                stdin_tx.send(ev).is_ok()
            })
        });
        let saved = if xen_sys::isatty(0) {
            xen_sys::set_raw(0).ok()
        } else {
            None
        };
        let mut c = TermConsole {
            pty,
            gen: 0,
            tx,
            rx,
            saved,
        };
        c.start_pty_reader()?;
        Ok(c)
    }

    fn start_pty_reader(&mut self) -> io::Result<()> {
        let r = self.pty.try_clone()?;
        let (tx, gen) = (self.tx.clone(), self.gen);
        std::thread::spawn(move || {
            read_into(r, 512, |d| {
                let ev = d.map_or(Event::PtyGone(gen), |d| Event::Pty(gen, d));
                tx.send(ev).is_ok()
            })
        });
        Ok(())
    }

    /// Forwards stdin bytes to the pty, up to the escape character if they
    /// hold it (then `Escape`).
    fn forward_stdin(&mut self, d: &[u8]) -> Pump {
        let cut = escape_at(d, self.saved.is_some());
        let send = &d[..cut.unwrap_or(d.len())];
        if !send.is_empty() && self.pty.write_all(send).is_err() {
            return Pump::PtyGone;
        }
        if cut.is_some() {
            Pump::Escape
        } else {
            Pump::Data
        }
    }
}

impl ConsoleSession for TermConsole {
    fn pump(&mut self, timeout: Duration) -> io::Result<Pump> {
        let ev = match self.rx.recv_timeout(timeout) {
            Ok(ev) => ev,
            Err(_) => return Ok(Pump::Idle),
        };
        Ok(match ev {
            Event::Stdin(d) => self.forward_stdin(&d),
            // Without input the relay goes on: the guest may still print.
            Event::StdinEof => Pump::Data,
            Event::Pty(g, d) if g == self.gen => {
                let mut out = io::stdout().lock();
                out.write_all(&d)?;
                out.flush()?;
                Pump::Data
            }
            Event::PtyGone(g) if g == self.gen => Pump::PtyGone,
            Event::Pty(..) | Event::PtyGone(_) => Pump::Data,
        })
    }

    fn reopen(&mut self, tty: &str) -> io::Result<()> {
        self.pty = open_pty(tty)?;
        self.gen += 1;
        self.start_pty_reader()
    }
}

impl Drop for TermConsole {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = xen_sys::restore_terminal(0, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_data_then_eof() {
        let mut got = Vec::new();
        read_into(&b"abcdef"[..], 4, |d| {
            got.push(d);
            true
        });
        assert_eq!(
            got,
            vec![Some(b"abcd".to_vec()), Some(b"ef".to_vec()), None]
        );
        assert_eq!(log_path("vm"), "/var/log/xen/xl-vm.log");
    }

    #[test]
    fn domid_history() {
        let h = DomidHistory::parse("100 3\n150 4\ngarbage\n161 5\n", 161, 60);
        assert_eq!(h.ids(), [4, 5], "100 is a minute old");
        let mut h = h;
        h.add(170, 3);
        assert_eq!(h.text(), "150 4\n161 5\n170 3\n");
        assert!(DomidHistory::parse("200 1\n", 100, 60).ids().is_empty());
    }

    #[test]
    fn escape_character() {
        assert_eq!(escape_at(&[0x1d], true), Some(0));
        assert_eq!(escape_at(b"ab\x1d", true), None, "pasted, not typed");
        assert_eq!(escape_at(b"ab\x1dcd", false), Some(2));
        assert_eq!(escape_at(b"abc", false), None);
    }
}
