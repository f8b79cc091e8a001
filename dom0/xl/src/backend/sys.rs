//! The only `unsafe` code of xl: Linux's `/dev/xen/privcmd` hypercall ioctl,
//! the hypercall buffers it points Xen at, and `uname(2)`.
//!
//! Buffers are whole pages, as libxencall makes them: mmap'd from
//! `/dev/xen/hypercall` when the kernel has it (privcmd-buf: pages the kernel
//! keeps resident for hypercalls), else anonymous private pages, locked
//! (`MAP_LOCKED`), kept from children (`MADV_DONTFORK`) and written once so
//! each is present and not a shared copy-on-write page when Xen walks dom0's
//! page tables to reach it. Xen on Arm takes the user virtual address
//! directly (privcmd passes the ioctl's arguments through unchanged).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr::NonNull;

use super::xencall::{check, Buf, Errno, Mem, Xencall};
use crate::format::NodeInfo;

/// `IOCTL_PRIVCMD_HYPERCALL`: `_IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))`.
pub const IOCTL_PRIVCMD_HYPERCALL: u32 = (48 << 16) | ((b'P' as u32) << 8);

/// `struct privcmd_hypercall { __u64 op; __u64 arg[5]; }`.
#[repr(C)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}
const _: () = assert!(size_of::<PrivcmdHypercall>() == 48);

const PAGE: usize = 4096;

/// Whole pages of hypercall memory; unmapped on drop.
struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
}

impl PageBuf {
    fn new(len: usize, bufdev: Option<&File>) -> io::Result<Self> {
        let len = len.max(1).div_ceil(PAGE) * PAGE;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let p = match bufdev {
            // SAFETY: a fresh shared mapping of privcmd-buf at an address of the
            // kernel's choosing: it aliases no Rust object.
            Some(f) => unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    rw,
                    libc::MAP_SHARED,
                    f.as_raw_fd(),
                    0,
                )
            },
            None => {
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                // SAFETY: fresh anonymous mappings alias no Rust object.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        rw,
                        flags | libc::MAP_LOCKED,
                        -1,
                        0,
                    )
                };
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
        Ok(PageBuf { ptr, len })
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped read-write at `ptr` for the life of `self`;
        // Xen writes them only during `hypercall`, which takes `&mut Privcmd`,
        // so no borrow of them is alive then.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `/dev/xen/privcmd` and this process's hypercall buffers.
pub struct Privcmd {
    fd: File,
    bufdev: Option<File>,
    bufs: Vec<Option<PageBuf>>,
}

impl Privcmd {
    /// Opens `/dev/xen/privcmd` (and `/dev/xen/hypercall` if present), as
    /// libxencall's `xencall_open`.
    pub fn open() -> io::Result<Privcmd> {
        let open = |p: &str| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(p)
        };
        let fd = open("/dev/xen/privcmd")?;
        Ok(Privcmd {
            fd,
            bufdev: open("/dev/xen/hypercall").ok(),
            bufs: Vec::new(),
        })
    }

    fn buf(&self, b: Buf) -> &PageBuf {
        self.bufs[b.0].as_ref().expect("live buffer")
    }
}

impl Mem for Privcmd {
    fn get(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.bufs.iter().flatten().find_map(|p| {
            let off = usize::try_from(addr.checked_sub(p.ptr.as_ptr() as u64)?).ok()?;
            p.as_slice().get(off..off.checked_add(len)?)
        })
    }
}

impl Xencall for Privcmd {
    fn alloc(&mut self, len: usize) -> Result<Buf, Errno> {
        let p = PageBuf::new(len, self.bufdev.as_ref())
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        match self.bufs.iter().position(Option::is_none) {
            Some(i) => {
                self.bufs[i] = Some(p);
                Ok(Buf(i))
            }
            None => {
                self.bufs.push(Some(p));
                Ok(Buf(self.bufs.len() - 1))
            }
        }
    }

    fn free(&mut self, b: Buf) {
        self.bufs[b.0] = None;
    }

    fn addr(&self, b: Buf) -> u64 {
        self.buf(b).ptr.as_ptr() as u64
    }

    fn bytes(&self, b: Buf) -> &[u8] {
        self.buf(b).as_slice()
    }

    fn bytes_mut(&mut self, b: Buf) -> &mut [u8] {
        self.bufs[b.0].as_mut().expect("live buffer").as_mut_slice()
    }

    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> Result<i64, Errno> {
        check(op, &args, self)?;
        let mut hc = PrivcmdHypercall { op, arg: args };
        // SAFETY: `hc` is the 48-byte `struct privcmd_hypercall` the request
        // takes, live for the call. Xen accesses only what `check` has just
        // verified lies inside this object's mapped, writable buffers, which
        // no Rust reference borrows now (`&mut self`).
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                IOCTL_PRIVCMD_HYPERCALL as libc::Ioctl,
                &mut hc,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO))
        } else {
            Ok(i64::from(r))
        }
    }
}

/// `uname(2)`: dom0's node facts, as xl's `output_nodeinfo`.
pub fn uname() -> io::Result<NodeInfo> {
    // SAFETY: utsname is plain C data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the call.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    Ok(NodeInfo {
        host: s(&u.nodename),
        release: s(&u.release),
        version: s(&u.version),
        machine: s(&u.machine),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_number() {
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
    }

    /// Real buffers on the host: page-sized, zeroed, found by address.
    #[test]
    fn page_bufs() {
        let mut p = PageBuf::new(10, None).unwrap();
        assert_eq!(p.as_slice().len(), PAGE);
        assert!(p.as_slice().iter().all(|&b| b == 0));
        assert_eq!(p.ptr.as_ptr() as usize % PAGE, 0);
        p.as_mut_slice()[5] = 7;
        assert_eq!(p.as_slice()[5], 7);
        let big = PageBuf::new(3 * PAGE + 1, None).unwrap();
        assert_eq!(big.as_slice().len(), 4 * PAGE);
    }

    #[test]
    fn uname_works() {
        let n = uname().unwrap();
        assert!(!n.release.is_empty() && !n.machine.is_empty());
    }
}
