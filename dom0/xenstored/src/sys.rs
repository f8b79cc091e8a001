//! Every system call that needs `unsafe`, with safe wrappers: Linux's Xen device files
//! (`/dev/xen/{xenbus_backend,evtchn,gntdev,privcmd}`), the shared ring page mapping
//! (a [`SharedPage`] with atomic index accesses), `poll` and the few process calls of
//! daemonising. The rest of the crate is safe code.
//!
//! ioctl argument structs mirror `include/uapi/xen/{evtchn,gntdev,privcmd}.h` and
//! `include/xen/xenbus_dev.h` (LP64 layouts). Request numbers are
//! `_IOC(_IOC_NONE, type, nr, sizeof(arg))`, derived from the Rust struct's size so that a
//! struct and its request cannot disagree; `tests` pins them.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use xenstore::ring::SharedPage;

pub const XENBUS_BACKEND: &str = "/dev/xen/xenbus_backend";
pub const EVTCHN: &str = "/dev/xen/evtchn";
pub const GNTDEV: &str = "/dev/xen/gntdev";
pub const PRIVCMD: &str = "/dev/xen/privcmd";

/// Xen's page size (the ring page; also arm64 Debian's kernel page size).
pub const XEN_PAGE_SIZE: usize = 4096;

/// `_IOC(_IOC_NONE, ty, nr, size)`, generic encoding (arm64, x86).
const fn ioc_none(ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < 1 << 14);
    ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// An ioctl argument struct and its request.
///
/// # Safety
/// `Self` must have exactly the layout of the C struct that request (`TYPE`, `NR`) takes a
/// pointer to; the kernel reads and writes at most `size_of::<Self>()` bytes through it.
unsafe trait IoctlArg: Sized {
    const TYPE: u8;
    const NR: u8;
    const REQUEST: u32 = ioc_none(Self::TYPE, Self::NR, size_of::<Self>());
}

fn ioctl<A: IoctlArg>(file: &File, arg: &mut A) -> io::Result<i32> {
    // SAFETY: `IoctlArg` guarantees that `A::REQUEST` takes a pointer to a struct laid out
    // as `A`; `arg` is live and exclusively borrowed for the whole call.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), A::REQUEST as libc::Ioctl, arg as *mut A) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Wraps an error with what was being done; the errno stays readable with [`errno`].
pub fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| match e.raw_os_error() {
        Some(n) => io::Error::new(e.kind(), Errno { errno: n, msg: format!("{what}: {e}") }),
        None => io::Error::new(e.kind(), format!("{what}: {e}")),
    }
}

#[derive(Debug)]
struct Errno {
    errno: i32,
    msg: String,
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Errno {}

/// The errno behind `e`, also through [`ctx`].
pub fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| e.get_ref()?.downcast_ref::<Errno>().map(|c| c.errno))
}

pub fn open_dev(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(ctx(format_args!("open {path}")))
}

// ---------------------------------------------------------------------------------------
// /dev/xen/xenbus_backend: dom0's own xenstore ring (the page Linux allocated for XS_LOCAL).

/// `IOCTL_XENBUS_BACKEND_EVTCHN`: `_IOC(_IOC_NONE, 'B', 0, 0)`; returns the port.
const IOCTL_XENBUS_BACKEND_EVTCHN: u32 = ioc_none(b'B', 0, 0);

pub struct XenbusBackend(File);

impl XenbusBackend {
    pub fn open() -> io::Result<Self> {
        open_dev(XENBUS_BACKEND).map(Self)
    }

    /// The unbound port Linux allocated for xenstored (remote domain 0).
    pub fn evtchn(&self) -> io::Result<u32> {
        // SAFETY: this request takes no argument (the kernel ignores the third one).
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), IOCTL_XENBUS_BACKEND_EVTCHN as libc::Ioctl, 0usize) };
        if r < 0 {
            return Err(ctx("IOCTL_XENBUS_BACKEND_EVTCHN")(io::Error::last_os_error()));
        }
        Ok(r as u32)
    }

    /// Maps the ring page.
    pub fn map(&self) -> io::Result<Page> {
        Page::map(&self.0, 0).map_err(ctx(format_args!("mmap of {XENBUS_BACKEND}")))
    }
}

// ---------------------------------------------------------------------------------------
// /dev/xen/evtchn

#[repr(C)]
struct BindInterdomain {
    remote_domain: u32,
    remote_port: u32,
}
// SAFETY: `struct ioctl_evtchn_bind_interdomain { unsigned int remote_domain, remote_port; }`, 'E' 1.
unsafe impl IoctlArg for BindInterdomain {
    const TYPE: u8 = b'E';
    const NR: u8 = 1;
}

#[repr(C)]
struct Unbind {
    port: u32,
}
// SAFETY: `struct ioctl_evtchn_unbind { unsigned int port; }`, 'E' 3.
unsafe impl IoctlArg for Unbind {
    const TYPE: u8 = b'E';
    const NR: u8 = 3;
}

#[repr(C)]
struct Notify {
    port: u32,
}
// SAFETY: `struct ioctl_evtchn_notify { unsigned int port; }`, 'E' 4.
unsafe impl IoctlArg for Notify {
    const TYPE: u8 = b'E';
    const NR: u8 = 4;
}

/// One open of `/dev/xen/evtchn`: reading it yields the local ports that fired (each then
/// masked until written back).
pub struct Evtchn(File);

impl Evtchn {
    pub fn open() -> io::Result<Self> {
        open_dev(EVTCHN).map(Self)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// A local port connected to `remote`'s `port`.
    pub fn bind_interdomain(&self, remote: u16, port: u32) -> io::Result<u32> {
        let r = ioctl(&self.0, &mut BindInterdomain { remote_domain: remote.into(), remote_port: port })
            .map_err(ctx(format_args!("IOCTL_EVTCHN_BIND_INTERDOMAIN(remote_domain {remote}, remote_port {port})")))?;
        Ok(r as u32)
    }

    pub fn unbind(&self, port: u32) -> io::Result<()> {
        ioctl(&self.0, &mut Unbind { port }).map(drop).map_err(ctx(format_args!("IOCTL_EVTCHN_UNBIND({port})")))
    }

    pub fn notify(&self, port: u32) -> io::Result<()> {
        ioctl(&self.0, &mut Notify { port }).map(drop).map_err(ctx(format_args!("IOCTL_EVTCHN_NOTIFY({port})")))
    }

    /// The pending ports (nonblocking: empty when none).
    pub fn pending(&self) -> io::Result<Vec<u32>> {
        let mut buf = [0u32; 64];
        // SAFETY: `buf` is writable for exactly the length passed.
        let r = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), size_of::<[u32; 64]>()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(Vec::new()),
                _ => Err(ctx("read /dev/xen/evtchn")(e)),
            };
        }
        Ok(buf[..r as usize / size_of::<u32>()].to_vec())
    }

    /// Re-enables delivery on `ports`.
    pub fn unmask(&self, ports: &[u32]) -> io::Result<()> {
        let len = std::mem::size_of_val(ports);
        // SAFETY: `ports` is readable for `len` bytes.
        let r = unsafe { libc::write(self.0.as_raw_fd(), ports.as_ptr().cast(), len) };
        if r < 0 {
            return Err(ctx("write /dev/xen/evtchn (unmask)")(io::Error::last_os_error()));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// /dev/xen/gntdev and /dev/xen/privcmd: guests' ring pages.

#[repr(C)]
struct GntdevGrantRef {
    domid: u32,
    r#ref: u32,
}

#[repr(C)]
struct MapGrantRef {
    count: u32,
    pad: u32,
    index: u64,
    refs: [GntdevGrantRef; 1],
}
// SAFETY: `struct ioctl_gntdev_map_grant_ref` with count 1 (24 bytes); 'G' 0.
unsafe impl IoctlArg for MapGrantRef {
    const TYPE: u8 = b'G';
    const NR: u8 = 0;
}

#[repr(C)]
struct UnmapGrantRef {
    index: u64,
    count: u32,
    pad: u32,
}
// SAFETY: `struct ioctl_gntdev_unmap_grant_ref { __u64 index; __u32 count, pad; }`, 'G' 1.
unsafe impl IoctlArg for UnmapGrantRef {
    const TYPE: u8 = b'G';
    const NR: u8 = 1;
}

pub struct Gntdev(File);

impl Gntdev {
    pub fn open() -> io::Result<Self> {
        open_dev(GNTDEV).map(Self)
    }

    /// Maps grant `gref` of `domid` read-write; returns the page and its gntdev index
    /// (for [`Gntdev::unmap`] after the page is dropped).
    pub fn map(&self, domid: u16, gref: u32) -> io::Result<(Page, u64)> {
        let mut m = MapGrantRef { count: 1, pad: 0, index: 0, refs: [GntdevGrantRef { domid: domid.into(), r#ref: gref }] };
        ioctl(&self.0, &mut m).map_err(ctx(format_args!("IOCTL_GNTDEV_MAP_GRANT_REF(domid {domid}, ref {gref})")))?;
        match Page::map(&self.0, m.index) {
            Ok(page) => Ok((page, m.index)),
            Err(e) => {
                let _ = self.unmap(m.index);
                Err(ctx(format_args!("mmap of grant {gref} of domain {domid} (gntdev)"))(e))
            }
        }
    }

    /// Forgets the grant at `index`; its [`Page`] must be dropped first.
    pub fn unmap(&self, index: u64) -> io::Result<()> {
        ioctl(&self.0, &mut UnmapGrantRef { index, count: 1, pad: 0 })
            .map(drop)
            .map_err(ctx(format_args!("IOCTL_GNTDEV_UNMAP_GRANT_REF(index {index:#x})")))
    }
}

/// `struct privcmd_mmapbatch_v2 { unsigned int num; domid_t dom; __u64 addr;
/// const xen_pfn_t *arr; int *err; }`.
#[repr(C)]
struct MmapBatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: *const u64,
    err: *mut i32,
}
// SAFETY: the layout of `struct privcmd_mmapbatch_v2` (32 bytes); IOCTL_PRIVCMD_MMAPBATCH_V2 = 'P' 4.
unsafe impl IoctlArg for MmapBatchV2 {
    const TYPE: u8 = b'P';
    const NR: u8 = 4;
}

pub struct Privcmd(File);

impl Privcmd {
    pub fn open() -> io::Result<Self> {
        open_dev(PRIVCMD).map(Self)
    }

    /// Foreign-maps `gfn` of `domid` (what libxenforeignmemory does).
    pub fn map_foreign(&self, domid: u16, gfn: u64) -> io::Result<Page> {
        let page = Page::map(&self.0, 0).map_err(ctx("mmap of /dev/xen/privcmd"))?;
        let gfns = [gfn];
        let mut errs = [0i32];
        let mut b = MmapBatchV2 {
            num: 1,
            dom: domid,
            addr: page.ptr.as_ptr() as u64,
            arr: gfns.as_ptr(),
            err: errs.as_mut_ptr(),
        };
        ioctl(&self.0, &mut b).map_err(ctx(format_args!("IOCTL_PRIVCMD_MMAPBATCH_V2(domain {domid}, gfn {gfn:#x})")))?;
        if errs[0] != 0 {
            let e = io::Error::from_raw_os_error(-errs[0]);
            return Err(ctx(format_args!("IOCTL_PRIVCMD_MMAPBATCH_V2(domain {domid}, gfn {gfn:#x}) page error"))(e));
        }
        Ok(page)
    }
}

// ---------------------------------------------------------------------------------------
// The shared page.

/// A shared read-write mapping of one 4 KiB page of a device file; unmapped on drop.
///
/// The other side (a kernel or guest) writes it concurrently, so it is never turned into a
/// Rust reference: indices are accessed as atomics, data bytes with volatile accesses, and
/// out-of-range accesses are ignored as [`SharedPage`] requires.
#[derive(Debug)]
pub struct Page {
    ptr: NonNull<u8>,
    len: usize,
}

impl Page {
    fn map(file: &File, offset: u64) -> io::Result<Self> {
        let len = XEN_PAGE_SIZE;
        let off = libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh shared mapping at an address of the kernel's choosing: it aliases
        // no Rust object.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), off)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?, len })
    }

    /// The aligned `u32` at `offset`, if it lies inside the page.
    fn atomic(&self, offset: usize) -> Option<&AtomicU32> {
        if !offset.is_multiple_of(4) || offset.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: in bounds and 4-byte aligned (the mapping is page aligned); the page stays
        // mapped while `self` lives; every access to these 4 bytes by this process is
        // atomic, and the other side only ever does single aligned 32-bit accesses too.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) })
    }
}

// SAFETY: the mapping is plain memory owned by this value; nothing is thread-local.
unsafe impl Send for Page {}

impl SharedPage for Page {
    fn load_u32(&self, offset: usize) -> u32 {
        self.atomic(offset).map_or(0, |a| a.load(Ordering::Acquire))
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        if let Some(a) = self.atomic(offset) {
            a.store(value, Ordering::Release);
        }
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        match offset.checked_add(buf.len()) {
            Some(end) if end <= self.len => {
                for (i, b) in buf.iter_mut().enumerate() {
                    // SAFETY: `offset + i < len`: inside the live mapping. Volatile: the page
                    // is shared with another writer.
                    *b = unsafe { self.ptr.as_ptr().add(offset + i).read_volatile() };
                }
            }
            _ => buf.fill(0),
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        if offset.checked_add(data.len()).is_some_and(|end| end <= self.len) {
            for (i, &b) in data.iter().enumerate() {
                // SAFETY: `offset + i < len`: inside the live, writable mapping.
                unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(b) };
            }
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: mapped by `Page::map` with this length, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers as Linux's headers compute them on arm64 (and x86-64).
    #[test]
    fn request_numbers() {
        assert_eq!(IOCTL_XENBUS_BACKEND_EVTCHN, 0x4200);
        assert_eq!(BindInterdomain::REQUEST, 0x0008_4501);
        assert_eq!(Unbind::REQUEST, 0x0004_4503);
        assert_eq!(Notify::REQUEST, 0x0004_4504);
        assert_eq!(MapGrantRef::REQUEST, 0x0018_4700);
        assert_eq!(UnmapGrantRef::REQUEST, 0x0010_4701);
        assert_eq!(MmapBatchV2::REQUEST, 0x0020_5004);
    }
}
