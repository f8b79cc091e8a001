//! Runs a closure in a forked child with a deadline, so that a crash (SIGBUS on a bad grant
//! mapping), a panic or a hang in one check cannot take the others down with it.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Runs `f` in a child process and returns its result, or why there is none: the child died
/// (signal, panic) or did not answer within `timeout` (it is then killed).
pub fn run(timeout: Duration, f: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    let (rd, wr) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // Buffered output would be written twice, once by each process.
    flush();
    // SAFETY: the process is single-threaded, so the child may run arbitrary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(rd);
        let msg = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(Ok(s)) => format!("O{s}"),
            Ok(Err(s)) => format!("E{s}"),
            Err(_) => "Epanicked".to_owned(),
        };
        write_all(&wr, msg.as_bytes());
        flush();
        // SAFETY: ends the child without running the parent's atexit handlers twice.
        unsafe { libc::_exit(0) };
    }
    drop(wr);
    let mut file = std::fs::File::from(rd);
    let result = collect(&mut file, timeout);
    let status = reap(pid, result.is_none());
    match result {
        Some(msg) if msg.starts_with('O') => Ok(msg[1..].to_owned()),
        Some(msg) if msg.starts_with('E') => Err(msg[1..].to_owned()),
        Some(_) => Err(format!("no result from the child ({status})")),
        None => Err(format!("timed out after {} s ({status})", timeout.as_secs())),
    }
}

pub fn flush() {
    use std::io::Write;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is readable for its length.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Reads the child's message until EOF (the child exited); None on timeout.
fn collect(file: &mut std::fs::File, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut pfd = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Some(String::new());
        }
        if n == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(String::from_utf8_lossy(&out).into_owned()),
        }
    }
}

/// Waits for the child (killing it first when `kill`), never for more than a few seconds:
/// a child stuck in the kernel may be unkillable. Describes how it ended.
fn reap(pid: libc::pid_t, kill: bool) -> String {
    if kill {
        // SAFETY: `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                format!("child killed by signal {sig}{}", signal_name(sig))
            } else {
                format!("child exited with {}", libc::WEXITSTATUS(status))
            };
        }
        if r < 0 || Instant::now() >= deadline {
            return "child not reaped (stuck in the kernel?)".to_owned();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGILL => " (SIGILL)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_crashes_and_hangs_are_reported() {
        assert_eq!(run(Duration::from_secs(10), || Ok("fine".into())), Ok("fine".into()));
        assert_eq!(run(Duration::from_secs(10), || Err("broken".into())), Err("broken".into()));
        let crash = run(Duration::from_secs(10), || {
            // SAFETY: abort has no preconditions; it ends the child only.
            unsafe { libc::abort() }
        });
        assert!(crash.as_ref().is_err_and(|e| e.contains("SIGABRT")), "{crash:?}");
        let start = Instant::now();
        let hang = run(Duration::from_secs(1), || {
            std::thread::sleep(Duration::from_secs(30));
            Ok(String::new())
        });
        assert!(hang.as_ref().is_err_and(|e| e.contains("timed out") && e.contains("SIGKILL")), "{hang:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
