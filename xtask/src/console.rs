//! A QEMU process whose console is read line by line by a reader thread, so that the
//! caller can wait for marker lines with deadlines. Dropping a `Console` kills QEMU.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A console line with the host time since QEMU was launched when it arrived.
struct Line {
    at: Duration,
    text: String,
}

pub struct Console {
    child: Child,
    lines: Receiver<Line>,
    /// Every line received so far (stdout and stderr, in arrival order).
    log: Vec<Line>,
}

impl Console {
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().context("starting qemu-system-aarch64")?;
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        // The channel disconnects once QEMU closed both streams (it exited or was killed).
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for raw in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                    let text = String::from_utf8_lossy(&raw).replace('\r', "");
                    if tx.send(Line { at: start.elapsed(), text }).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self { child, lines, log: Vec::new() })
    }

    /// Waits up to `timeout` for a line containing `marker`; returns the text after the
    /// marker and the line's arrival time.
    pub fn expect(&mut self, marker: &str, timeout: Duration) -> Result<(String, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(wait) {
                Ok(line) => {
                    let found = line.text.find(marker).map(|i| line.text[i + marker.len()..].trim().to_owned());
                    let at = line.at;
                    self.log.push(line);
                    if let Some(rest) = found {
                        return Ok((rest, at));
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!("timed out after {timeout:?} waiting for `{marker}`"),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!("QEMU exited ({status}) before `{marker}`");
                }
            }
        }
    }

    /// How many lines have been consumed so far (a position for [`Console::since`]).
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    /// The text of the lines consumed after `mark`.
    pub fn since(&self, mark: usize) -> Vec<&str> {
        self.log[mark.min(self.log.len())..].iter().map(|l| l.text.as_str()).collect()
    }

    /// Waits up to `timeout` for QEMU to exit, collecting its remaining output.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.log.push(line),
                Err(RecvTimeoutError::Timeout) => bail!("QEMU still running {timeout:?} after the last marker"),
                Err(RecvTimeoutError::Disconnected) => return Ok(self.child.wait()?),
            }
        }
    }

    /// Kills QEMU (if still running), drains what it wrote, saves the whole console to
    /// `path` and returns its lines, each prefixed with its host time since launch.
    pub fn finish(mut self, path: &Path) -> Result<Vec<String>> {
        self.kill();
        // QEMU is gone, so the readers reach EOF promptly; the timeout only guards against
        // a grandchild holding the pipes open.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.log.push(line);
        }
        let log: Vec<String> =
            self.log.iter().map(|l| format!("[{:8.3}] {}", l.at.as_secs_f64(), l.text)).collect();
        std::fs::write(path, log.iter().map(|l| format!("{l}\n")).collect::<String>())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(log)
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.kill();
    }
}
