//! The hypercall interface under the backend, as libxencall gives it to
//! libxc: buffers the hypervisor may access, and `hypercall(op, args)`.
//!
//! [`check`] pins down which memory each hypercall this backend issues may
//! touch; the real implementation ([`super::sys::Privcmd`]) refuses any call
//! whose pointers (direct or embedded in a `sysctl`/`domctl`) are not inside
//! its own buffers, which is what makes its `hypercall` safe to call.

#![allow(non_upper_case_globals)]

use xen_abi::domctl::*;
use xen_abi::errno::EFAULT;
use xen_abi::memory::{XENMEM_get_sharing_freed_pages, XENMEM_get_sharing_shared_pages};
use xen_abi::sysctl::*;
use xen_abi::version::*;
use xen_abi::xen::{
    HYPERVISOR_domctl, HYPERVISOR_memory_op, HYPERVISOR_sysctl, HYPERVISOR_xen_version,
};

/// A positive errno value (Xen's and Linux's agree on Arm).
pub type Errno = i32;

/// A hypercall buffer of one [`Xencall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf(pub(crate) usize);

/// Hypercalls and the memory they use.
pub trait Xencall {
    /// A fresh, zero-filled buffer of at least `len` bytes.
    fn alloc(&mut self, len: usize) -> Result<Buf, Errno>;
    /// Releases a buffer.
    fn free(&mut self, b: Buf);
    /// The address the hypervisor sees for the buffer's first byte.
    fn addr(&self, b: Buf) -> u64;
    /// The buffer's contents.
    fn bytes(&self, b: Buf) -> &[u8];
    /// The buffer's contents, writable.
    fn bytes_mut(&mut self, b: Buf) -> &mut [u8];
    /// Issues hypercall `op`; every pointer it carries must lie in this
    /// object's buffers ([`check`]). Returns the non-negative result, or the
    /// errno of a negative one.
    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> Result<i64, Errno>;
}

/// Read access to a [`Xencall`]'s buffers by address.
pub trait Mem {
    /// The `len` bytes at `addr`, if they lie inside one buffer.
    fn get(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

fn need(mem: &dyn Mem, addr: u64, len: usize) -> Result<&[u8], Errno> {
    mem.get(addr, len).ok_or(EFAULT)
}

/// A `xenctl_bitmap` at `off` of `s`: its bytes must be in a buffer.
fn bitmap(mem: &dyn Mem, s: &[u8], off: usize) -> Result<(), Errno> {
    let nr_bits = u32_at(s, off + 8) as usize;
    need(mem, u64_at(s, off), nr_bits.div_ceil(8)).map(drop)
}

/// Whether hypercall `op(args)` is one this backend issues, with every
/// pointer it carries inside `mem`; `Err(EFAULT)` otherwise.
pub fn check(op: u64, args: &[u64; 5], mem: &dyn Mem) -> Result<(), Errno> {
    match op {
        HYPERVISOR_xen_version => {
            let len = match u32::try_from(args[0]).map_err(|_| EFAULT)? {
                XENVER_version | XENVER_pagesize => return Ok(()),
                XENVER_extraversion => 16,
                XENVER_compile_info => 144,
                XENVER_capabilities | XENVER_commandline => 1024,
                XENVER_changeset => 64,
                XENVER_platform_parameters | XENVER_get_features => 8,
                XENVER_guest_handle => 16,
                XENVER_build_id => {
                    let hdr = need(mem, args[1], 4)?;
                    4 + u32_at(hdr, 0) as usize
                }
                _ => return Err(EFAULT),
            };
            need(mem, args[1], len).map(drop)
        }
        HYPERVISOR_memory_op => match u32::try_from(args[0]).map_err(|_| EFAULT)? {
            XENMEM_get_sharing_freed_pages | XENMEM_get_sharing_shared_pages if args[1] == 0 => {
                Ok(())
            }
            _ => Err(EFAULT),
        },
        HYPERVISOR_sysctl => {
            let s = need(mem, args[0], 136)?;
            let u = 8;
            match u32_at(s, 0) {
                XEN_SYSCTL_physinfo | XEN_SYSCTL_sched_id => Ok(()),
                XEN_SYSCTL_readconsole => {
                    need(mem, u64_at(s, u + 8), u32_at(s, u + 16) as usize).map(drop)
                }
                XEN_SYSCTL_getdomaininfolist => {
                    let n = u32_at(s, u + 4) as usize;
                    let len = n
                        .checked_mul(size_of::<XenDomctlGetdomaininfo>())
                        .ok_or(EFAULT)?;
                    need(mem, u64_at(s, u + 8), len).map(drop)
                }
                XEN_SYSCTL_cpupool_op => bitmap(mem, s, u + 24),
                _ => Err(EFAULT),
            }
        }
        HYPERVISOR_domctl => {
            let d = need(mem, args[0], 144)?;
            let u = 16;
            match u32_at(d, 0) {
                XEN_DOMCTL_getdomaininfo | XEN_DOMCTL_getvcpuinfo => Ok(()),
                XEN_DOMCTL_getvcpuaffinity => {
                    let flags = u32_at(d, u + 4);
                    if flags & XEN_VCPUAFFINITY_HARD != 0 {
                        bitmap(mem, d, u + 8)?;
                    }
                    if flags & XEN_VCPUAFFINITY_SOFT != 0 {
                        bitmap(mem, d, u + 24)?;
                    }
                    Ok(())
                }
                _ => Err(EFAULT),
            }
        }
        _ => Err(EFAULT),
    }
}
