//! Linux's Xen device files, with safe wrappers: `/dev/xen/{evtchn,gntdev,gntalloc,privcmd,
//! xenbus_backend,hypercall}`, the shared pages they map ([`Page`]) and hypercall buffers
//! ([`HypercallBuf`]). This crate holds the dom0 programs' `unsafe` device code.
//!
//! ioctl argument structs mirror `include/uapi/xen/{evtchn,gntdev,gntalloc,privcmd}.h` and
//! `include/xen/xenbus_dev.h` (LP64 layouts). Request numbers are
//! `_IOC(_IOC_NONE, type, nr, sizeof(arg))`, derived from the Rust struct's size so that a
//! struct and its request cannot disagree; `tests` pins them.
#![deny(unsafe_op_in_unsafe_fn)]

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use xen_abi::version::{XenFeatureInfo, XENVER_get_features};
use xen_abi::xen::HYPERVISOR_xen_version;
pub use xen_abi::xen::DomId;

pub const XENBUS_BACKEND: &str = "/dev/xen/xenbus_backend";
pub const EVTCHN: &str = "/dev/xen/evtchn";
pub const GNTDEV: &str = "/dev/xen/gntdev";
pub const GNTALLOC: &str = "/dev/xen/gntalloc";
pub const PRIVCMD: &str = "/dev/xen/privcmd";
pub const HYPERCALL: &str = "/dev/xen/hypercall";

/// Xen's page size (ring pages; also arm64 Debian's kernel page size).
pub const XEN_PAGE_SIZE: usize = 4096;

/// `_IOC(_IOC_NONE, ty, nr, size)` with the generic encoding (arm64, x86):
/// dir in bits 30..31 (0 = none), size in 16..29, type in 8..15, number in 0..7.
const fn ioc_none(ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < 1 << 14);
    ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// An ioctl argument struct and the request it goes with.
///
/// # Safety
/// `Self` must have exactly the layout of the C struct the kernel reads and writes for
/// request (`TYPE`, `NR`), which must be one whose argument is a pointer to that struct.
unsafe trait IoctlArg: Sized {
    const TYPE: u8;
    const NR: u8;
    const REQUEST: u32 = ioc_none(Self::TYPE, Self::NR, size_of::<Self>());
}

/// Issues the ioctl of `A` on `file`; returns the ioctl's non-negative result.
fn ioctl<A: IoctlArg>(file: &File, arg: &mut A) -> io::Result<i32> {
    // SAFETY: `IoctlArg` guarantees that `A::REQUEST` takes a pointer to a struct laid out
    // as `A`; the kernel accesses at most `size_of::<A>()` bytes of `*arg`, which is a live,
    // exclusively borrowed value for the duration of the call.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), A::REQUEST as libc::Ioctl, arg as *mut A) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens a device file read-write, close-on-exec and nonblocking; errors name the path.
pub fn open_dev(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(ctx(format_args!("open {path}")))
}

/// Opens a device file read-write and close-on-exec only (blocking), with the bare error,
/// as libxencall does.
fn open_plain(path: &str) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(path)
}

/// An error with what was being done, keeping the errno for [`errno`].
#[derive(Debug)]
struct Context {
    errno: Option<i32>,
    msg: String,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Context {}

/// Wraps an error with what was being done; the errno stays readable with [`errno`].
pub fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), Context { errno: errno(&e), msg: format!("{what}: {e}") })
}

/// The errno behind `e`, also through [`ctx`].
pub fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| e.get_ref()?.downcast_ref::<Context>()?.errno)
}

/// The kernel's page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
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

    /// Maps the ring page (read-write).
    pub fn map(&self) -> io::Result<Page> {
        Page::map(&self.0, 0, XEN_PAGE_SIZE, true).map_err(ctx(format_args!("mmap of {XENBUS_BACKEND}")))
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
struct BindUnboundPort {
    remote_domain: u32,
}
// SAFETY: `struct ioctl_evtchn_bind_unbound_port { unsigned int remote_domain; }`, 'E' 2.
unsafe impl IoctlArg for BindUnboundPort {
    const TYPE: u8 = b'E';
    const NR: u8 = 2;
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
/// masked until written back with [`Evtchn::unmask`]).
pub struct Evtchn(File);

impl Evtchn {
    pub fn open() -> io::Result<Self> {
        open_dev(EVTCHN).map(Self)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// A fresh local port that `remote` may bind to; returns the local port.
    pub fn bind_unbound_port(&self, remote: DomId) -> io::Result<u32> {
        let r = ioctl(&self.0, &mut BindUnboundPort { remote_domain: remote.into() })
            .map_err(ctx(format_args!("IOCTL_EVTCHN_BIND_UNBOUND_PORT(remote_domain {remote})")))?;
        Ok(r as u32)
    }

    /// A fresh local port connected to `remote`'s `port`; returns the local port.
    pub fn bind_interdomain(&self, remote: DomId, port: u32) -> io::Result<u32> {
        let r = ioctl(&self.0, &mut BindInterdomain { remote_domain: remote.into(), remote_port: port })
            .map_err(ctx(format_args!("IOCTL_EVTCHN_BIND_INTERDOMAIN(remote_domain {remote}, remote_port {port})")))?;
        Ok(r as u32)
    }

    /// Sends an event on `port`'s channel (to its remote end).
    pub fn notify(&self, port: u32) -> io::Result<()> {
        ioctl(&self.0, &mut Notify { port }).map(drop).map_err(ctx(format_args!("IOCTL_EVTCHN_NOTIFY({port})")))
    }

    pub fn unbind(&self, port: u32) -> io::Result<()> {
        ioctl(&self.0, &mut Unbind { port }).map(drop).map_err(ctx(format_args!("IOCTL_EVTCHN_UNBIND({port})")))
    }

    /// One nonblocking read of the pending ports: `Ok(None)` when none (EAGAIN/EINTR).
    fn read_pending(&self) -> io::Result<Option<Vec<u32>>> {
        let mut buf = [0u32; 64];
        // SAFETY: `buf` is a writable buffer of exactly the length passed.
        let r = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), size_of::<[u32; 64]>()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(ctx("read /dev/xen/evtchn")(e)),
            };
        }
        Ok(Some(buf[..r as usize / size_of::<u32>()].to_vec()))
    }

    /// The pending ports (nonblocking: empty when none).
    pub fn pending(&self) -> io::Result<Vec<u32>> {
        Ok(self.read_pending()?.unwrap_or_default())
    }

    /// Waits up to `timeout` for events and returns the ports read (empty on timeout).
    /// Each port read stays masked until [`Self::unmask`].
    pub fn wait(&self, timeout: Duration) -> io::Result<Vec<u32>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut pfd = libc::pollfd { fd: self.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ctx("poll /dev/xen/evtchn")(e));
            }
            if n == 0 {
                return Ok(Vec::new());
            }
            match self.read_pending()? {
                Some(ports) => return Ok(ports),
                None if left.is_zero() => return Ok(Vec::new()),
                None => continue,
            }
        }
    }

    /// Re-enables delivery on `ports` (writes them back to the device).
    pub fn unmask(&self, ports: &[u32]) -> io::Result<()> {
        let len = std::mem::size_of_val(ports);
        // SAFETY: `ports` is a readable buffer of `len` bytes.
        let r = unsafe { libc::write(self.0.as_raw_fd(), ports.as_ptr().cast(), len) };
        if r < 0 {
            return Err(ctx("write /dev/xen/evtchn (unmask)")(io::Error::last_os_error()));
        }
        if r as usize != len {
            return Err(io::Error::other(format!("write /dev/xen/evtchn (unmask) took {r} of {len} bytes")));
        }
        Ok(())
    }

    /// Reads and unmasks whatever is pending within `timeout` (e.g. the event Xen raises on
    /// the local port when it binds an interdomain channel); returns the ports drained.
    pub fn drain(&self, timeout: Duration) -> io::Result<Vec<u32>> {
        let ports = self.wait(timeout)?;
        if !ports.is_empty() {
            self.unmask(&ports)?;
        }
        Ok(ports)
    }
}

// ---------------------------------------------------------------------------------------
// /dev/xen/gntalloc and /dev/xen/gntdev

pub const GNTALLOC_FLAG_WRITABLE: u16 = 1;

/// `struct ioctl_gntalloc_alloc_gref` for one page (`gref_ids[1]`).
#[repr(C)]
struct AllocGref {
    domid: u16,
    flags: u16,
    count: u32,
    index: u64,
    gref_ids: [u32; 1],
}
// SAFETY: layout of `struct ioctl_gntalloc_alloc_gref` with count 1 (24 bytes, 8-aligned,
// as C pads it); IOCTL_GNTALLOC_ALLOC_GREF = 'G' 5.
unsafe impl IoctlArg for AllocGref {
    const TYPE: u8 = b'G';
    const NR: u8 = 5;
}

#[repr(C)]
struct DeallocGref {
    index: u64,
    count: u32,
}
// SAFETY: `struct ioctl_gntalloc_dealloc_gref { __u64 index; __u32 count; }` (16 bytes), 'G' 6.
unsafe impl IoctlArg for DeallocGref {
    const TYPE: u8 = b'G';
    const NR: u8 = 6;
}

#[repr(C)]
struct GntdevGrantRef {
    domid: u32,
    r#ref: u32,
}

/// `struct ioctl_gntdev_map_grant_ref` for one grant (`refs[1]`).
#[repr(C)]
struct MapGrantRef {
    count: u32,
    pad: u32,
    index: u64,
    refs: [GntdevGrantRef; 1],
}
// SAFETY: layout of `struct ioctl_gntdev_map_grant_ref` with count 1 (24 bytes);
// IOCTL_GNTDEV_MAP_GRANT_REF = 'G' 0.
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

/// `/dev/xen/gntalloc`: pages of this domain granted to another.
pub struct Gntalloc(File);

/// One granted page: its mmap offset on the gntalloc fd and its grant reference.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    pub index: u64,
    pub gref: u32,
}

impl Gntalloc {
    pub fn open() -> io::Result<Self> {
        open_dev(GNTALLOC).map(Self)
    }

    /// Allocates one page and grants it to `domid`.
    pub fn alloc(&self, domid: DomId, writable: bool) -> io::Result<Grant> {
        let flags = if writable { GNTALLOC_FLAG_WRITABLE } else { 0 };
        let mut a = AllocGref { domid, flags, count: 1, index: 0, gref_ids: [0] };
        ioctl(&self.0, &mut a).map_err(ctx(format_args!("IOCTL_GNTALLOC_ALLOC_GREF(domid {domid}, 1 page)")))?;
        Ok(Grant { index: a.index, gref: a.gref_ids[0] })
    }

    pub fn dealloc(&self, grant: Grant) -> io::Result<()> {
        ioctl(&self.0, &mut DeallocGref { index: grant.index, count: 1 })
            .map(drop)
            .map_err(ctx(format_args!("IOCTL_GNTALLOC_DEALLOC_GREF(index {:#x})", grant.index)))
    }

    /// Maps the granted page (read-write, the kernel's page size).
    pub fn mmap(&self, grant: Grant) -> io::Result<Page> {
        Page::map(&self.0, grant.index, page_size(), true).map_err(ctx("mmap of /dev/xen/gntalloc"))
    }
}

/// `/dev/xen/gntdev`: maps other domains' grants.
pub struct Gntdev(File);

impl Gntdev {
    pub fn open() -> io::Result<Self> {
        open_dev(GNTDEV).map(Self)
    }

    /// Registers grant `gref` of `domid`; returns the mmap offset (the map happens at mmap).
    pub fn map_grant_ref(&self, domid: DomId, gref: u32) -> io::Result<u64> {
        let mut m = MapGrantRef { count: 1, pad: 0, index: 0, refs: [GntdevGrantRef { domid: domid.into(), r#ref: gref }] };
        ioctl(&self.0, &mut m).map_err(ctx(format_args!("IOCTL_GNTDEV_MAP_GRANT_REF(domid {domid}, ref {gref})")))?;
        Ok(m.index)
    }

    /// Forgets the grant at `index`; its mapping must be gone (munmap) first.
    pub fn unmap_grant_ref(&self, index: u64) -> io::Result<()> {
        ioctl(&self.0, &mut UnmapGrantRef { index, count: 1, pad: 0 })
            .map(drop)
            .map_err(ctx(format_args!("IOCTL_GNTDEV_UNMAP_GRANT_REF(index {index:#x})")))
    }

    /// Maps the grant registered at `index` (the kernel's page size): this is when gntdev
    /// asks Xen to map it.
    pub fn mmap(&self, index: u64, writable: bool) -> io::Result<Page> {
        let what = if writable { "read-write" } else { "read-only" };
        Page::map(&self.0, index, page_size(), writable).map_err(ctx(format_args!("{what} mmap of /dev/xen/gntdev")))
    }

    /// Registers and maps grant `gref` of `domid` read-write (one Xen page); returns the page
    /// and its gntdev index (for [`Gntdev::unmap_grant_ref`] after the page is dropped).
    pub fn map(&self, domid: DomId, gref: u32) -> io::Result<(Page, u64)> {
        let index = self.map_grant_ref(domid, gref)?;
        match Page::map(&self.0, index, XEN_PAGE_SIZE, true) {
            Ok(page) => Ok((page, index)),
            Err(e) => {
                let _ = self.unmap_grant_ref(index);
                Err(ctx(format_args!("mmap of grant {gref} of domain {domid} (gntdev)"))(e))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// /dev/xen/privcmd

/// `struct privcmd_hypercall { __u64 op; __u64 arg[5]; }`.
#[repr(C)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}
// SAFETY: `struct privcmd_hypercall { __u64 op; __u64 arg[5]; }`, IOCTL_PRIVCMD_HYPERCALL = 'P' 0.
unsafe impl IoctlArg for PrivcmdHypercall {
    const TYPE: u8 = b'P';
    const NR: u8 = 0;
}

/// `IOCTL_PRIVCMD_HYPERCALL`.
pub const IOCTL_PRIVCMD_HYPERCALL: u32 = PrivcmdHypercall::REQUEST;

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
    /// Opens `/dev/xen/privcmd` nonblocking; errors name the path.
    pub fn open() -> io::Result<Self> {
        open_dev(PRIVCMD).map(Self)
    }

    /// Opens `/dev/xen/privcmd` as libxencall does (close-on-exec only), with the bare error.
    pub fn open_plain() -> io::Result<Self> {
        open_plain(PRIVCMD).map(Self)
    }

    /// `IOCTL_PRIVCMD_HYPERCALL`; returns Xen's non-negative result (negative ones are the
    /// ioctl's errno).
    ///
    /// # Safety
    /// Every argument that the hypercall `op` interprets as a guest virtual address must
    /// point to memory of this process that is valid, mapped and writable for as much as the
    /// hypervisor may access for that call (it reads and writes it behind Rust's back), and
    /// that no live Rust reference borrows.
    pub unsafe fn hypercall(&self, op: u64, arg: [u64; 5]) -> io::Result<i64> {
        let mut hc = PrivcmdHypercall { op, arg };
        ioctl(&self.0, &mut hc).map(i64::from)
    }

    /// `xen_version(cmd, NULL)`: for the sub-ops that take no buffer (`XENVER_version`,
    /// `XENVER_pagesize`). Other sub-ops are rejected, since Xen would write through NULL.
    pub fn xen_version_noarg(&self, cmd: u32) -> io::Result<i64> {
        use xen_abi::version::{XENVER_pagesize, XENVER_version};
        assert!(cmd == XENVER_version || cmd == XENVER_pagesize, "xen_version sub-op {cmd} needs a buffer");
        // SAFETY: these sub-ops take a NULL argument and access no guest memory.
        unsafe { self.hypercall(HYPERVISOR_xen_version, [u64::from(cmd), 0, 0, 0, 0]) }
    }

    /// `xen_version(XENVER_get_features, &info)`: feature submap `idx`.
    pub fn get_features(&self, idx: u32) -> io::Result<u32> {
        // Boxed and written before the call: the page is mapped when Xen walks dom0's tables.
        let mut info = Box::new(XenFeatureInfo { submap_idx: idx, submap: 0xdead_beef });
        let ptr = &mut *info as *mut XenFeatureInfo as u64;
        // SAFETY: `info` is a live, writable, 8-byte `xen_feature_info` for the whole call,
        // which is all that XENVER_get_features reads and writes.
        let r = unsafe { self.hypercall(HYPERVISOR_xen_version, [u64::from(XENVER_get_features), ptr, 0, 0, 0]) }?;
        if r != 0 {
            return Err(io::Error::other(format!("XENVER_get_features returned {r}")));
        }
        Ok(info.submap)
    }

    /// Foreign-maps `gfn` of `domid` (what libxenforeignmemory does).
    pub fn map_foreign(&self, domid: DomId, gfn: u64) -> io::Result<Page> {
        let page = Page::map(&self.0, 0, XEN_PAGE_SIZE, true).map_err(ctx("mmap of /dev/xen/privcmd"))?;
        let gfns = [gfn];
        let mut errs = [0i32];
        let mut b = MmapBatchV2 { num: 1, dom: domid, addr: page.addr(), arr: gfns.as_ptr(), err: errs.as_mut_ptr() };
        ioctl(&self.0, &mut b).map_err(ctx(format_args!("IOCTL_PRIVCMD_MMAPBATCH_V2(domain {domid}, gfn {gfn:#x})")))?;
        if errs[0] != 0 {
            let e = io::Error::from_raw_os_error(-errs[0]);
            return Err(ctx(format_args!("IOCTL_PRIVCMD_MMAPBATCH_V2(domain {domid}, gfn {gfn:#x}) page error"))(e));
        }
        Ok(page)
    }
}

// ---------------------------------------------------------------------------------------
// Shared pages.

/// A shared mapping of page(s) of a device file; unmapped on drop.
///
/// The other side (a kernel, Xen or a guest) may access it concurrently, so it is never
/// turned into a Rust reference: `u32`s are accessed as atomics, bytes with volatile
/// accesses.
#[derive(Debug)]
pub struct Page {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

impl Page {
    fn map(file: &File, offset: u64, len: usize, writable: bool) -> io::Result<Self> {
        let off = libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
        // SAFETY: a fresh shared mapping at an address of the kernel's choosing: it aliases
        // no Rust object.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, file.as_raw_fd(), off) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Self { ptr, len, writable })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapping's user virtual address.
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// The byte at `i`; panics outside the mapping.
    pub fn read(&self, i: usize) -> u8 {
        assert!(i < self.len);
        // SAFETY: `i` is inside the live mapping; volatile because the page is shared.
        unsafe { self.ptr.as_ptr().add(i).read_volatile() }
    }

    /// Writes the byte at `i`; panics outside the mapping or if it is read-only.
    pub fn write(&self, i: usize, v: u8) {
        assert!(i < self.len && self.writable);
        // SAFETY: `i` is inside the live, writable mapping; volatile because the page is shared.
        unsafe { self.ptr.as_ptr().add(i).write_volatile(v) }
    }

    /// The aligned `u32` at `offset`, if it lies inside the mapping.
    fn atomic(&self, offset: usize) -> Option<&AtomicU32> {
        if !offset.is_multiple_of(4) || offset.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: in bounds and 4-byte aligned (the mapping is page aligned); the page stays
        // mapped while `self` lives; every access to these 4 bytes by this process is
        // atomic, and the other side only ever does single aligned 32-bit accesses too.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) })
    }

    /// The `u32` at `offset` (acquire); 0 if unaligned or outside the mapping.
    pub fn load_u32(&self, offset: usize) -> u32 {
        self.atomic(offset).map_or(0, |a| a.load(Ordering::Acquire))
    }

    /// Stores `value` at `offset` (release); ignored if unaligned, outside the mapping or
    /// the mapping is read-only.
    pub fn store_u32(&self, offset: usize, value: u32) {
        if !self.writable {
            return;
        }
        if let Some(a) = self.atomic(offset) {
            a.store(value, Ordering::Release);
        }
    }

    /// Copies bytes from `offset` into `buf` (volatile); zero-fills `buf` if the range is
    /// outside the mapping.
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
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

    /// Copies `data` to `offset` (volatile); ignored if the range is outside the mapping or
    /// the mapping is read-only.
    pub fn write_bytes(&self, offset: usize, data: &[u8]) {
        if self.writable && offset.checked_add(data.len()).is_some_and(|end| end <= self.len) {
            for (i, &b) in data.iter().enumerate() {
                // SAFETY: `offset + i < len`: inside the live, writable mapping.
                unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(b) };
            }
        }
    }

    /// Unmaps now, reporting failure (dropping unmaps too, silently).
    pub fn unmap(self) -> io::Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the mapping was created by `map` with this length and is unmapped once.
        let r = unsafe { libc::munmap(this.ptr.as_ptr().cast(), this.len) };
        if r != 0 {
            return Err(ctx("munmap")(io::Error::last_os_error()));
        }
        Ok(())
    }
}

// SAFETY: the mapping is plain memory owned by this value; nothing is thread-local.
unsafe impl Send for Page {}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `map` with this length and is unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// ---------------------------------------------------------------------------------------
// Hypercall buffers.

/// `/dev/xen/hypercall` (privcmd-buf): pages the kernel keeps resident for hypercalls.
pub struct HypercallDev(File);

impl HypercallDev {
    /// Opens `/dev/xen/hypercall` as libxencall does (close-on-exec only).
    pub fn open() -> io::Result<Self> {
        open_plain(HYPERCALL).map(Self)
    }
}

/// Whole pages of hypercall memory, as libxencall makes them; unmapped on drop.
///
/// mmap'd from `/dev/xen/hypercall` when given, else anonymous private pages, locked
/// (`MAP_LOCKED`), kept from children (`MADV_DONTFORK`); either way written once so each is
/// present and not a shared copy-on-write page when Xen walks dom0's page tables to reach it.
pub struct HypercallBuf {
    ptr: NonNull<u8>,
    len: usize,
}

impl HypercallBuf {
    /// At least `len` bytes (at least one page), zeroed.
    pub fn new(len: usize, dev: Option<&HypercallDev>) -> io::Result<Self> {
        let len = len.max(1).div_ceil(XEN_PAGE_SIZE) * XEN_PAGE_SIZE;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let p = match dev {
            // SAFETY: a fresh shared mapping of privcmd-buf at an address of the
            // kernel's choosing: it aliases no Rust object.
            Some(f) => unsafe { libc::mmap(std::ptr::null_mut(), len, rw, libc::MAP_SHARED, f.0.as_raw_fd(), 0) },
            None => {
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                // SAFETY: fresh anonymous mappings alias no Rust object.
                let p = unsafe { libc::mmap(std::ptr::null_mut(), len, rw, flags | libc::MAP_LOCKED, -1, 0) };
                if p == libc::MAP_FAILED {
                    // Over RLIMIT_MEMLOCK: unlocked pages (touched below) still work.
                    // SAFETY: as above.
                    unsafe { libc::mmap(std::ptr::null_mut(), len, rw, flags, -1, 0) }
                } else {
                    // SAFETY: advice on the mapping just made; no memory is accessed.
                    unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) };
                    p
                }
            }
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).expect("mmap does not return NULL on success");
        // SAFETY: `len` writable bytes were just mapped at `ptr`. Writing each
        // page makes it present (and private) before Xen looks for it.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, len) };
        Ok(Self { ptr, len })
    }

    /// The buffer's user virtual address (what Xen on Arm takes).
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped read-write at `ptr` for the life of `self`; Xen writes
        // them only during a hypercall, whose caller (`Privcmd::hypercall`'s contract)
        // guarantees no borrow of them is alive then.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HypercallBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers as Linux's headers compute them on arm64 (and x86-64).
    #[test]
    fn request_numbers() {
        assert_eq!(IOCTL_XENBUS_BACKEND_EVTCHN, 0x4200);
        assert_eq!(PrivcmdHypercall::REQUEST, 0x0030_5000);
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
        assert_eq!(MmapBatchV2::REQUEST, 0x0020_5004);
        assert_eq!(BindInterdomain::REQUEST, 0x0008_4501);
        assert_eq!(BindUnboundPort::REQUEST, 0x0004_4502);
        assert_eq!(Unbind::REQUEST, 0x0004_4503);
        assert_eq!(Notify::REQUEST, 0x0004_4504);
        assert_eq!(MapGrantRef::REQUEST, 0x0018_4700);
        assert_eq!(UnmapGrantRef::REQUEST, 0x0010_4701);
        assert_eq!(AllocGref::REQUEST, 0x0018_4705);
        assert_eq!(DeallocGref::REQUEST, 0x0010_4706);
    }

    /// Real buffers on the host: page-sized, zeroed, page aligned.
    #[test]
    fn hypercall_bufs() {
        let mut p = HypercallBuf::new(10, None).unwrap();
        assert_eq!(p.as_slice().len(), XEN_PAGE_SIZE);
        assert!(p.as_slice().iter().all(|&b| b == 0));
        assert_eq!(p.addr() as usize % XEN_PAGE_SIZE, 0);
        p.as_mut_slice()[5] = 7;
        assert_eq!(p.as_slice()[5], 7);
        let big = HypercallBuf::new(3 * XEN_PAGE_SIZE + 1, None).unwrap();
        assert_eq!(big.as_slice().len(), 4 * XEN_PAGE_SIZE);
    }
}

// ---------------------------------------------------------------------------------------
// Virtual IRQs, and the two sysctls dom0's daemons poll: xenstored's and xenconsoled's
// `xc_domain_getinfolist` and xenconsoled's `xc_readconsolering`.

#[repr(C)]
struct BindVirq {
    virq: u32,
}
// SAFETY: `struct ioctl_evtchn_bind_virq { unsigned int virq; }`, IOCTL_EVTCHN_BIND_VIRQ = 'E' 0.
unsafe impl IoctlArg for BindVirq {
    const TYPE: u8 = b'E';
    const NR: u8 = 0;
}

/// `IOCTL_EVTCHN_BIND_VIRQ`.
pub const IOCTL_EVTCHN_BIND_VIRQ: u32 = BindVirq::REQUEST;

impl Evtchn {
    /// Binds virtual IRQ `virq` (`VIRQ_DOM_EXC`, `VIRQ_CON_RING`, ...) to a fresh local port;
    /// returns the port. Its events then arrive like any other port's.
    pub fn bind_virq(&self, virq: u32) -> io::Result<u32> {
        let r = ioctl(&self.0, &mut BindVirq { virq }).map_err(ctx(format_args!("IOCTL_EVTCHN_BIND_VIRQ({virq})")))?;
        Ok(r as u32)
    }
}

/// Xen 4.17's `XEN_SYSCTL_INTERFACE_VERSION` (xen-abi's `sysctl` module has it under the
/// `tools` feature, which this crate does not enable; its users' tests pin the two together).
pub const SYSCTL_INTERFACE_VERSION: u32 = 0x15;
/// `XEN_SYSCTL_readconsole`.
pub const SYSCTL_READCONSOLE: u32 = 1;
/// `XEN_SYSCTL_getdomaininfolist`.
pub const SYSCTL_GETDOMAININFOLIST: u32 = 6;
/// Size of `struct xen_sysctl` (cmd, interface_version, 128-byte union at 8).
pub const SYSCTL_SIZE: usize = 136;
/// Size of `xen_domctl_getdomaininfo_t`, the element of `XEN_SYSCTL_getdomaininfolist`.
pub const DOMAININFO_SIZE: usize = 120;

/// Where a sysctl's data buffer starts in its hypercall buffer (after the `xen_sysctl`).
const SYSCTL_DATA: usize = 256;

impl Privcmd {
    /// Issues `xen_sysctl` `s` (136 bytes, its handle at union byte `handle_at` pointed at a
    /// fresh `data_len`-byte area) and returns the sysctl and the area as Xen left them.
    /// `data_len` must be all that the command may write through that handle.
    fn sysctl_with_buffer(
        &self,
        s: &[u8; SYSCTL_SIZE],
        handle_at: usize,
        data_len: usize,
        bufdev: Option<&HypercallDev>,
    ) -> io::Result<([u8; SYSCTL_SIZE], Vec<u8>)> {
        let mut buf = HypercallBuf::new(SYSCTL_DATA + data_len, bufdev)?;
        let base = buf.addr();
        {
            let b = buf.as_mut_slice();
            b[..SYSCTL_SIZE].copy_from_slice(s);
            b[8 + handle_at..8 + handle_at + 8].copy_from_slice(&(base + SYSCTL_DATA as u64).to_le_bytes());
        }
        // SAFETY: Xen reads and writes the 136-byte `xen_sysctl` at `base` and, through the
        // handle just set, at most `data_len` bytes at `base + SYSCTL_DATA` (the callers'
        // commands write no more than the count they pass, which is `data_len`); both lie in
        // `buf`, which is mapped, writable and not borrowed during the call.
        unsafe { self.hypercall(HYPERVISOR_SYSCTL, [base, 0, 0, 0, 0]) }?;
        let b = buf.as_slice();
        let mut out = [0u8; SYSCTL_SIZE];
        out.copy_from_slice(&b[..SYSCTL_SIZE]);
        Ok((out, b[SYSCTL_DATA..SYSCTL_DATA + data_len].to_vec()))
    }

    /// `XEN_SYSCTL_getdomaininfolist`: up to `max` domains with ids from `first` on, each as
    /// the raw `xen_domctl_getdomaininfo_t` (decode with xen-abi's `domctl` types). Hypercall
    /// buffers come from `bufdev` when given.
    pub fn getdomaininfolist(
        &self,
        first: DomId,
        max: u32,
        bufdev: Option<&HypercallDev>,
    ) -> io::Result<Vec<[u8; DOMAININFO_SIZE]>> {
        let len = max as usize * DOMAININFO_SIZE;
        let mut s = sysctl_header(SYSCTL_GETDOMAININFOLIST);
        s[8..10].copy_from_slice(&first.to_le_bytes());
        s[12..16].copy_from_slice(&max.to_le_bytes());
        let (s, data) = self
            .sysctl_with_buffer(&s, 8, len, bufdev)
            .map_err(ctx(format_args!("XEN_SYSCTL_getdomaininfolist(first {first}, max {max})")))?;
        let n = (u32_le(&s, 8 + 16).min(max)) as usize;
        Ok(data[..n * DOMAININFO_SIZE]
            .chunks_exact(DOMAININFO_SIZE)
            .map(|c| c.try_into().expect("chunks of DOMAININFO_SIZE"))
            .collect())
    }

    /// `XEN_SYSCTL_readconsole`: up to `count` bytes of the hypervisor's console ring, from
    /// ring index `index` if `incremental` (else from the oldest byte), clearing the ring if
    /// `clear`. Returns the bytes and the index to continue from.
    pub fn readconsole(
        &self,
        index: u32,
        incremental: bool,
        clear: bool,
        count: u32,
        bufdev: Option<&HypercallDev>,
    ) -> io::Result<(Vec<u8>, u32)> {
        let mut s = sysctl_header(SYSCTL_READCONSOLE);
        s[8] = clear.into();
        s[9] = incremental.into();
        s[12..16].copy_from_slice(&index.to_le_bytes());
        s[24..28].copy_from_slice(&count.to_le_bytes());
        let (s, mut data) = self
            .sysctl_with_buffer(&s, 8, count as usize, bufdev)
            .map_err(ctx("XEN_SYSCTL_readconsole"))?;
        data.truncate(u32_le(&s, 24).min(count) as usize);
        Ok((data, u32_le(&s, 12)))
    }
}

/// `HYPERVISOR_sysctl`.
const HYPERVISOR_SYSCTL: u64 = 35;

/// A zeroed `xen_sysctl` for `cmd`.
fn sysctl_header(cmd: u32) -> [u8; SYSCTL_SIZE] {
    let mut s = [0u8; SYSCTL_SIZE];
    s[..4].copy_from_slice(&cmd.to_le_bytes());
    s[4..8].copy_from_slice(&SYSCTL_INTERFACE_VERSION.to_le_bytes());
    s
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod virq_sysctl_tests {
    use super::*;

    #[test]
    fn request_numbers() {
        assert_eq!(IOCTL_EVTCHN_BIND_VIRQ, 0x0004_4500);
        assert_eq!(HYPERVISOR_SYSCTL, xen_abi::xen::HYPERVISOR_sysctl);
    }

    #[test]
    fn sysctl_header_layout() {
        let s = sysctl_header(SYSCTL_GETDOMAININFOLIST);
        assert_eq!(u32_le(&s, 0), 6);
        assert_eq!(u32_le(&s, 4), 0x15);
        assert!(s[8..].iter().all(|&b| b == 0));
    }
}

// ---------------------------------------------------------------------------------------
// Building a domain (the toolstack's `xl create`): foreign mappings of many pages at once,
// bulk copies into them, and the terminal and session calls of `xl console` and the
// per-domain monitor.

/// Most pages one [`Privcmd::map_foreign_batch`] maps (libxenforeignmemory maps in chunks
/// too; the caller loops).
pub const FOREIGN_BATCH_MAX: usize = 1024;

impl Privcmd {
    /// Foreign-maps `gfns` of `domid` (at most [`FOREIGN_BATCH_MAX`]) as one contiguous
    /// read-write mapping, page `i` of the mapping being `gfns[i]`: one
    /// `IOCTL_PRIVCMD_MMAPBATCH_V2`, which Linux turns into `XENMEM_add_to_physmap_batch`
    /// (`XENMAPSPACE_gmfn_foreign`). Unmapping (dropping the page) is
    /// `XENMEM_remove_from_physmap` for each page. Fails if any page failed to map.
    pub fn map_foreign_batch(&self, domid: DomId, gfns: &[u64]) -> io::Result<Page> {
        if gfns.is_empty() || gfns.len() > FOREIGN_BATCH_MAX {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let what = format_args!("IOCTL_PRIVCMD_MMAPBATCH_V2(domain {domid}, gfn {:#x}, {} pages)", gfns[0], gfns.len());
        let len = gfns.len() * XEN_PAGE_SIZE;
        let page = Page::map(&self.0, 0, len, true).map_err(ctx("mmap of /dev/xen/privcmd"))?;
        let mut errs = vec![0i32; gfns.len()];
        let mut b = MmapBatchV2 {
            num: gfns.len() as u32,
            dom: domid,
            addr: page.addr(),
            arr: gfns.as_ptr(),
            err: errs.as_mut_ptr(),
        };
        // The kernel reads `num` gfns from `arr` and writes `num` ints to `err`: both
        // vectors are that long and outlive the call.
        ioctl(&self.0, &mut b).map_err(ctx(&what))?;
        if let Some(e) = errs.iter().find(|&&e| e != 0) {
            return Err(ctx(format_args!("{what} page error"))(io::Error::from_raw_os_error(-e)));
        }
        Ok(page)
    }
}

/// `struct privcmd_mmap_resource { __u16 dom; __u32 type, id, idx; __u64 num, addr; }`.
#[repr(C)]
struct MmapResource {
    dom: u16,
    r#type: u32,
    id: u32,
    idx: u32,
    num: u64,
    addr: u64,
}
// SAFETY: the layout of `struct privcmd_mmap_resource` (32 bytes, C padding after `dom`);
// IOCTL_PRIVCMD_MMAP_RESOURCE = 'P' 7.
unsafe impl IoctlArg for MmapResource {
    const TYPE: u8 = b'P';
    const NR: u8 = 7;
}

/// `IOCTL_PRIVCMD_MMAP_RESOURCE`.
pub const IOCTL_PRIVCMD_MMAP_RESOURCE: u32 = MmapResource::REQUEST;

impl Privcmd {
    /// Maps frames `idx..idx + num` of resource (`type`, `id`) of `domid` read-write, as
    /// libxenforeignmemory's `map_resource` (one `IOCTL_PRIVCMD_MMAP_RESOURCE`, which Linux
    /// turns into `XENMEM_acquire_resource`), e.g. a domain's grant-table frames
    /// (`XENMEM_resource_grant_table`).
    pub fn map_resource(&self, domid: DomId, r#type: u32, id: u32, idx: u32, num: usize) -> io::Result<Page> {
        if num == 0 || num > FOREIGN_BATCH_MAX {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let page = Page::map(&self.0, 0, num * XEN_PAGE_SIZE, true).map_err(ctx("mmap of /dev/xen/privcmd"))?;
        let mut r = MmapResource { dom: domid, r#type, id, idx, num: num as u64, addr: page.addr() };
        ioctl(&self.0, &mut r).map_err(ctx(format_args!(
            "IOCTL_PRIVCMD_MMAP_RESOURCE(domain {domid}, type {type}, id {id}, frames {idx}+{num})"
        )))?;
        Ok(page)
    }
}

impl Page {
    /// Copies `data` to `offset` with plain (non-volatile) stores, for pages nobody else
    /// accesses meanwhile, such as a paused domain's memory being loaded by its builder.
    /// Ignored like [`Page::write_bytes`] if out of range or read-only.
    pub fn copy_in(&self, offset: usize, data: &[u8]) {
        if self.writable && offset.checked_add(data.len()).is_some_and(|end| end <= self.len) {
            // SAFETY: `offset..offset + data.len()` lies inside the live, writable mapping,
            // which no Rust reference borrows (accesses go through `&self` methods that
            // copy), and `data` cannot overlap it (it is not a slice of the mapping).
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len()) };
        }
    }
}

/// Whether `fd` is a terminal.
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// A terminal's saved settings, to give back to [`restore_terminal`].
#[derive(Clone, Copy)]
pub struct TermSettings(libc::termios);

/// Puts terminal `fd` in raw mode (`cfmakeraw`: no echo, no line editing, no signal keys,
/// 8-bit bytes) and returns its previous settings.
pub fn set_raw(fd: RawFd) -> io::Result<TermSettings> {
    // SAFETY: termios is plain C data; all-zero is a valid value to be overwritten.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `old` is a valid, writable termios for the call.
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut raw = old;
    // SAFETY: `raw` is a valid termios; cfmakeraw only edits it.
    unsafe { libc::cfmakeraw(&mut raw) };
    // SAFETY: `raw` is a valid termios, read by the call.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TermSettings(old))
}

/// Gives terminal `fd` back settings saved by [`set_raw`].
pub fn restore_terminal(fd: RawFd, saved: &TermSettings) -> io::Result<()> {
    // SAFETY: `saved.0` is a termios that tcgetattr filled, read by the call.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved.0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setsid(2)`: the calling process leaves its session and controlling terminal (fails if
/// it leads a process group, e.g. a shell's direct job; a spawned child does not).
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid has no memory-safety preconditions.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod build_tests {
    use super::*;

    #[test]
    fn resource_request() {
        assert_eq!(size_of::<MmapResource>(), 32);
        assert_eq!(IOCTL_PRIVCMD_MMAP_RESOURCE, 0x0020_5007);
    }

    #[test]
    fn batch_limits() {
        // No device needed to refuse these (and no ioctl is issued).
        if let Ok(p) = Privcmd::open() {
            assert!(p.map_foreign_batch(1, &[]).is_err());
            assert!(p.map_foreign_batch(1, &vec![0; FOREIGN_BATCH_MAX + 1]).is_err());
        }
    }

    #[test]
    fn terminals() {
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(!isatty(f.as_raw_fd()));
        assert!(set_raw(f.as_raw_fd()).is_err());
    }
}
