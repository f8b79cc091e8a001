//! Linux's Xen device files, as dom0's own tools use them: `/dev/xen/privcmd`,
//! `/dev/xen/evtchn`, `/dev/xen/gntalloc` and `/dev/xen/gntdev`.
//!
//! The ioctl argument structs mirror `include/uapi/xen/{privcmd,evtchn,gntdev,gntalloc}.h`
//! (arm64 LP64 layouts). Every request number is `_IOC(_IOC_NONE, type, nr, sizeof(arg))`,
//! derived here from the Rust struct's size, so a struct and its request cannot disagree;
//! `tests` pins the resulting numbers.

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use xen_abi::version::{XenFeatureInfo, XENVER_get_features};
use xen_abi::xen::{DomId, HYPERVISOR_xen_version};

pub const PRIVCMD: &str = "/dev/xen/privcmd";
pub const EVTCHN: &str = "/dev/xen/evtchn";
pub const GNTALLOC: &str = "/dev/xen/gntalloc";
pub const GNTDEV: &str = "/dev/xen/gntdev";

/// `_IOC(_IOC_NONE, ty, nr, size)` with the generic (arm64) encoding:
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

fn open(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(ctx(format_args!("open {path}")))
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

/// Wraps an error with what was being done.
fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), Context { errno: errno(&e), msg: format!("{what}: {e}") })
}

/// The errno behind `e`, also through the context this module adds.
pub fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| e.get_ref()?.downcast_ref::<Context>()?.errno)
}

// ---------------------------------------------------------------------------------------
// privcmd

/// `struct privcmd_hypercall`.
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

pub struct Privcmd(File);

impl Privcmd {
    pub fn open() -> io::Result<Self> {
        open(PRIVCMD).map(Self)
    }

    /// # Safety
    /// Every argument that the hypercall `op` interprets as a guest virtual address must
    /// point to memory of this process that is valid, mapped and writable for as much as the
    /// hypervisor may access for that call (it reads and writes it behind Rust's back).
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
}

// ---------------------------------------------------------------------------------------
// evtchn

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

/// One open of `/dev/xen/evtchn`: a set of ports whose events it reads.
pub struct Evtchn(File);

impl Evtchn {
    pub fn open() -> io::Result<Self> {
        open(EVTCHN).map(Self)
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
            let mut buf = [0u32; 64];
            // SAFETY: `buf` is a writable buffer of exactly the length passed.
            let r = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), size_of::<[u32; 64]>()) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                    if left.is_zero() {
                        return Ok(Vec::new());
                    }
                    continue;
                }
                return Err(ctx("read /dev/xen/evtchn")(e));
            }
            let n = r as usize / size_of::<u32>();
            return Ok(buf[..n].to_vec());
        }
    }

    /// Re-enables delivery on `ports` (write them back to the device).
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
// gntalloc / gntdev

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
        open(GNTALLOC).map(Self)
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

    pub fn mmap(&self, grant: Grant) -> io::Result<Mapping> {
        Mapping::new(&self.0, grant.index, true).map_err(ctx("mmap of /dev/xen/gntalloc"))
    }
}

/// `/dev/xen/gntdev`: maps other domains' (here: dom0's own) grants.
pub struct Gntdev(File);

impl Gntdev {
    pub fn open() -> io::Result<Self> {
        open(GNTDEV).map(Self)
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

    /// Maps the grant registered at `index`: this is when gntdev asks Xen to map it.
    pub fn mmap(&self, index: u64, writable: bool) -> io::Result<Mapping> {
        let what = if writable { "read-write" } else { "read-only" };
        Mapping::new(&self.0, index, writable).map_err(ctx(format_args!("{what} mmap of /dev/xen/gntdev")))
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// A shared, read-write mapping of one page of a device file; unmapped on drop.
/// Accessed with volatile byte reads and writes only (another mapping aliases it).
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

impl Mapping {
    fn new(file: &File, offset: u64, writable: bool) -> io::Result<Self> {
        let len = page_size();
        let off = libc::off_t::try_from(offset).map_err(|_| io::Error::other("mmap offset out of range"))?;
        let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
        // SAFETY: a fresh shared mapping at an address of the kernel's choosing: it aliases
        // no Rust object.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, file.as_raw_fd(), off) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: NonNull::new(p.cast()).expect("mmap does not return NULL on success"), len, writable })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn read(&self, i: usize) -> u8 {
        assert!(i < self.len);
        // SAFETY: `i` is inside the live mapping; volatile because the page is shared.
        unsafe { self.ptr.as_ptr().add(i).read_volatile() }
    }

    pub fn write(&self, i: usize, v: u8) {
        assert!(i < self.len && self.writable);
        // SAFETY: `i` is inside the live, writable mapping; volatile because the page is shared.
        unsafe { self.ptr.as_ptr().add(i).write_volatile(v) }
    }

    /// Unmaps now, reporting failure (dropping unmaps too, silently).
    pub fn unmap(self) -> io::Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the mapping was created by `new` with this length and is unmapped once.
        let r = unsafe { libc::munmap(this.ptr.as_ptr().cast(), this.len) };
        if r != 0 {
            return Err(ctx("munmap")(io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `new` with this length and is unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers as Linux's headers compute them on arm64.
    #[test]
    fn request_numbers() {
        assert_eq!(PrivcmdHypercall::REQUEST, 0x0030_5000);
        assert_eq!(BindInterdomain::REQUEST, 0x0008_4501);
        assert_eq!(BindUnboundPort::REQUEST, 0x0004_4502);
        assert_eq!(Unbind::REQUEST, 0x0004_4503);
        assert_eq!(Notify::REQUEST, 0x0004_4504);
        assert_eq!(MapGrantRef::REQUEST, 0x0018_4700);
        assert_eq!(UnmapGrantRef::REQUEST, 0x0010_4701);
        assert_eq!(AllocGref::REQUEST, 0x0018_4705);
        assert_eq!(DeallocGref::REQUEST, 0x0010_4706);
    }
}
