//! The few process system calls that need `unsafe` (`poll` and daemonising). Linux's Xen
//! device files are [`xen_sys`]'s.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

pub use xen_sys::{ctx, errno, Evtchn, Gntdev, Privcmd, XenbusBackend, EVTCHN, GNTDEV, PRIVCMD, XENBUS_BACKEND};

// ---------------------------------------------------------------------------------------
// poll and process control.

pub use libc::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

#[derive(Clone, Copy, Debug)]
pub struct PollFd {
    pub fd: RawFd,
    pub events: i16,
    pub revents: i16,
}

impl PollFd {
    pub fn new(fd: RawFd, events: i16) -> Self {
        Self { fd, events, revents: 0 }
    }
}

/// `poll(2)`; `timeout_ms < 0` waits forever. EINTR counts as "nothing ready".
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    let mut raw: Vec<libc::pollfd> =
        fds.iter().map(|f| libc::pollfd { fd: f.fd, events: f.events, revents: 0 }).collect();
    // SAFETY: `raw` is a valid array of `raw.len()` pollfds for the duration of the call.
    let n = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
    }
    for (f, r) in fds.iter_mut().zip(&raw) {
        f.revents = r.revents;
    }
    Ok(n as usize)
}

/// `fork(2)`: `Some(pid)` in the parent, `None` in the child. Only call while the process
/// has a single thread.
pub fn fork() -> io::Result<Option<i32>> {
    // SAFETY: the caller runs single-threaded, so the child's copy of the address space is
    // consistent (no lock is held by another thread).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no memory is involved.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `to` (0, 1 or 2) refer to `from`'s open file.
pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: no memory is involved; `to` is a standard descriptor this process owns.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn getpid() -> i32 {
    // SAFETY: no memory is involved.
    unsafe { libc::getpid() }
}
