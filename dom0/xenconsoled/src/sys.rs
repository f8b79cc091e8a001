//! The system calls xenconsoled needs beyond [`xen_sys`] and `xenstored::sys`: ptys, the
//! SIGHUP flag, the pid-file lock.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// A pty pair: the master (nonblocking) for xenconsoled, the slave kept open (raw mode) so
/// that the master never reports a hang-up while no client has the console open, as C
/// xenconsoled does.
pub struct Pty {
    pub master: File,
    _slave: File,
    /// The slave's path (`/dev/pts/N`), written to `console/tty`.
    pub path: String,
}

fn check(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(r)
}

impl Pty {
    /// `posix_openpt`, `grantpt`, `unlockpt`, `ptsname_r`, the slave opened and made raw,
    /// the master made nonblocking.
    pub fn open() -> io::Result<Pty> {
        // SAFETY: no memory is involved; the result is a new descriptor or -1.
        let m = check(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) }, "posix_openpt")?;
        // SAFETY: `m` is a descriptor just returned to us and owned by nothing else.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        // SAFETY: plain calls on the master's descriptor; no memory is involved.
        check(unsafe { libc::grantpt(m) }, "grantpt")?;
        // SAFETY: as above.
        check(unsafe { libc::unlockpt(m) }, "unlockpt")?;
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `name` is writable for its whole length, which is what we pass.
        let r = unsafe { libc::ptsname_r(m, name.as_mut_ptr(), name.len()) };
        if r != 0 {
            return Err(io::Error::new(
                io::Error::from_raw_os_error(r).kind(),
                format!("ptsname_r: {}", io::Error::from_raw_os_error(r)),
            ));
        }
        // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(name.as_ptr()) };
        // SAFETY: `path` is a valid NUL-terminated string for the call.
        let s = check(
            unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) },
            "open pty slave",
        )?;
        // SAFETY: `s` was just returned to us and is owned by nothing else.
        let slave = unsafe { OwnedFd::from_raw_fd(s) };
        make_raw(s)?;
        set_nonblocking(m)?;
        Ok(Pty { master: File::from(master), _slave: File::from(slave), path: path.to_string_lossy().into_owned() })
    }
}

/// `cfmakeraw` on a terminal.
fn make_raw(fd: RawFd) -> io::Result<()> {
    // SAFETY: termios is plain C data; all-zero is a valid value, overwritten by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable termios for the call.
    check(unsafe { libc::tcgetattr(fd, &mut t) }, "tcgetattr")?;
    // SAFETY: `t` is a valid termios.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: `t` is a valid termios for the call.
    check(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) }, "tcsetattr")?;
    Ok(())
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: no memory is involved.
    let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "fcntl(F_GETFL)")?;
    // SAFETY: no memory is involved.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }, "fcntl(F_SETFL)")?;
    Ok(())
}

static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hup(_: libc::c_int) {
    HUP.store(true, Ordering::Relaxed);
}

/// Makes SIGHUP set a flag ([`take_hup`]) and interrupt `poll`.
pub fn catch_sighup() -> io::Result<()> {
    // SAFETY: sigaction is plain C data; all-zero is a valid (empty) value.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_hup as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `sa.sa_mask` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is a valid sigaction; the handler only stores to an atomic, which is
    // async-signal-safe.
    check(unsafe { libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut()) }, "sigaction(SIGHUP)")?;
    Ok(())
}

/// Whether SIGHUP arrived since the last call.
pub fn take_hup() -> bool {
    HUP.swap(false, Ordering::Relaxed)
}

/// Takes an exclusive lock on the open pid file (`lockf(F_TLOCK)`): fails if another
/// xenconsoled holds it. The lock lasts as long as `f` stays open.
pub fn lock_file(f: &File) -> io::Result<()> {
    // SAFETY: no memory is involved.
    check(unsafe { libc::lockf(f.as_raw_fd(), libc::F_TLOCK, 0) }, "lockf")?;
    Ok(())
}

/// Raises the descriptor limit to what many domains need (C xenconsoled's
/// `increase_fd_limit`: 4 per domain plus 1000); failure is not fatal.
pub fn raise_fd_limit(want: u64) {
    // SAFETY: rlimit is plain C data.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < want {
        let new = libc::rlimit { rlim_cur: want, rlim_max: want.max(lim.rlim_max) };
        // SAFETY: `new` is a valid rlimit for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            let soft = libc::rlimit { rlim_cur: lim.rlim_max.min(want), rlim_max: lim.rlim_max };
            // SAFETY: as above.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A real pty on the host: what the daemon writes to the master, a console client
    /// reads from the slave, and back; the master never blocks.
    #[test]
    fn pty_round_trip() {
        let Ok(mut p) = Pty::open() else {
            eprintln!("no ptys here: skipped");
            return;
        };
        assert!(p.path.starts_with("/dev/pts/"), "{}", p.path);
        let mut client = std::fs::OpenOptions::new().read(true).write(true).open(&p.path).unwrap();
        p.master.write_all(b"guest says hi\n").unwrap();
        let mut buf = [0u8; 64];
        let n = client.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"guest says hi\n");
        client.write_all(b"ls\r").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let n = p.master.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ls\r");
        // Nothing to read: WouldBlock, not a hang.
        assert_eq!(p.master.read(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // Nobody reading: writes stop with WouldBlock once the pty is full.
        drop(client);
        let chunk = [b'x'; 4096];
        let mut blocked = false;
        for _ in 0..1024 {
            match p.master.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(blocked);
    }
}
