//! Console log files: `DIR/guest-NAME.log` per guest and `DIR/hypervisor.log`, appended to,
//! optionally with a `[YYYY-MM-DD HH:MM:SS] ` prefix per line (UTC) and ESC written as `.`,
//! as C xenconsoled's `write_with_timestamp` / `--replace-escape`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A log being appended to.
pub struct LogFile {
    out: Box<dyn Write>,
    path: PathBuf,
    timestamps: bool,
    replace_escape: bool,
    /// The next byte starts a line.
    needts: bool,
}

impl LogFile {
    /// Opens (creates, mode 0644) `path` for appending.
    pub fn open(path: &Path, timestamps: bool, replace_escape: bool) -> io::Result<LogFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let f: File = OpenOptions::new().create(true).append(true).mode(0o644).open(path)?;
        let mut l = LogFile::new(Box::new(f), path.to_owned(), timestamps, replace_escape);
        if timestamps {
            l.write(b"Logfile Opened\n")?;
        }
        Ok(l)
    }

    /// A log over any writer (tests).
    pub fn new(out: Box<dyn Write>, path: PathBuf, timestamps: bool, replace_escape: bool) -> LogFile {
        LogFile { out, path, timestamps, replace_escape, needts: true }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends guest or hypervisor output.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_at(data, SystemTime::now())
    }

    fn write_at(&mut self, data: &[u8], now: SystemTime) -> io::Result<()> {
        let mut buf = Vec::with_capacity(data.len() + 32);
        if !self.timestamps {
            buf.extend_from_slice(data);
        } else {
            let ts = timestamp(now);
            let mut rest = data;
            while !rest.is_empty() {
                let (line, nl) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..=i], true),
                    None => (rest, false),
                };
                if self.needts {
                    buf.extend_from_slice(ts.as_bytes());
                }
                buf.extend_from_slice(line);
                self.needts = nl;
                rest = &rest[line.len()..];
                // After a newline, the \r of a \n\r pair is dropped (C's behaviour).
                if nl {
                    let cr = rest.iter().take_while(|&&b| b == b'\r').count();
                    rest = &rest[cr..];
                }
            }
        }
        if self.replace_escape {
            for b in &mut buf {
                if *b == 0x1b {
                    *b = b'.';
                }
            }
        }
        self.out.write_all(&buf)?;
        self.out.flush()
    }
}

/// `[YYYY-MM-DD HH:MM:SS] ` in UTC.
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("[{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}] ", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `DIR/guest-NAME.log`: the domain's name (`/local/domain/N/name`, else its id) made safe
/// as one file name (no `/`, no NUL, not `.` or `..`, at most 200 bytes).
pub fn guest_log_path(dir: &Path, name: Option<&[u8]>, domid: u16) -> PathBuf {
    let mut s: String = name
        .map(|n| {
            String::from_utf8_lossy(n)
                .chars()
                .map(|c| if c == '/' || c == '\0' || c.is_control() { '_' } else { c })
                .collect()
        })
        .unwrap_or_default();
    while s.len() > 200 {
        s.pop();
    }
    if s.is_empty() || s == "." || s == ".." {
        s = domid.to_string();
    }
    dir.join(format!("guest-{s}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Sink(Rc<RefCell<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn timestamps_per_line() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(timestamp(t), "[2023-11-14 22:13:20] ");
        assert_eq!(timestamp(UNIX_EPOCH), "[1970-01-01 00:00:00] ");
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "[2000-02-29 00:00:00] ");
        let s = Sink::default();
        let mut l = LogFile::new(Box::new(s.clone()), "x".into(), true, false);
        l.write_at(b"ab\n\rcd", t).unwrap();
        l.write_at(b"ef\nx\x1b", t).unwrap();
        let ts = "[2023-11-14 22:13:20] ";
        assert_eq!(String::from_utf8(s.0.borrow().clone()).unwrap(), format!("{ts}ab\n{ts}cdef\n{ts}x\x1b"));
    }

    #[test]
    fn plain_and_escaped() {
        let s = Sink::default();
        let mut l = LogFile::new(Box::new(s.clone()), "x".into(), false, true);
        l.write(b"a\x1b[0mb\r\n").unwrap();
        assert_eq!(&s.0.borrow()[..], b"a.[0mb\r\n");
    }

    #[test]
    fn guest_log_names() {
        let d = Path::new("/var/log/xen/console");
        assert_eq!(guest_log_path(d, Some(b"web1"), 3), d.join("guest-web1.log"));
        assert_eq!(guest_log_path(d, Some(b"../../etc/x"), 3), d.join("guest-.._.._etc_x.log"));
        assert_eq!(guest_log_path(d, Some(b".."), 3), d.join("guest-3.log"));
        assert_eq!(guest_log_path(d, Some(b""), 4), d.join("guest-4.log"));
        assert_eq!(guest_log_path(d, None, 5), d.join("guest-5.log"));
        assert_eq!(guest_log_path(d, Some(b"a\nb"), 5), d.join("guest-a_b.log"));
    }
}
