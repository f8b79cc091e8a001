//! The few process system calls that need `unsafe` (`poll` and daemonising), and the ring
//! page as [`xenstore`]'s [`SharedPage`]. Linux's Xen device files are [`xen_sys`]'s.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

use xenstore::ring::SharedPage;

pub use xen_sys::{ctx, errno, Evtchn, Gntdev, Privcmd, XenbusBackend, EVTCHN, GNTDEV, PRIVCMD, XENBUS_BACKEND};

/// A shared ring page (dom0's own, a guest's grant or foreign mapping) as a [`SharedPage`]:
/// indices are accessed as atomics, data bytes with volatile accesses, and out-of-range
/// accesses are ignored.
#[derive(Debug)]
pub struct Page(pub xen_sys::Page);

impl SharedPage for Page {
    fn load_u32(&self, offset: usize) -> u32 {
        self.0.load_u32(offset)
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        self.0.store_u32(offset, value);
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        self.0.read_bytes(offset, buf);
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        self.0.write_bytes(offset, data);
    }
}

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
