//! The hypercall interface under the backend, as libxencall gives it to
//! libxc: buffers the hypervisor may access, and `hypercall(op, args)`.
//!
//! [`check`] pins down which memory each hypercall this backend issues may
//! touch; the real implementation ([`super::sys::Privcmd`]) refuses any call
//! whose pointers (direct or embedded in a `sysctl`/`domctl`) are not inside
//! its own buffers, which is what makes its `hypercall` safe to call.

#![allow(non_upper_case_globals)]

use xen_abi::arch_arm::VcpuGuestContext;
use xen_abi::domctl::*;
use xen_abi::errno::EFAULT;
use xen_abi::event_channel::{EVTCHNOP_alloc_unbound, EvtchnAllocUnbound};
use xen_abi::hvm_op::{HVMOP_set_param, XenHvmParam};
use xen_abi::memory::{
    XENMEM_get_sharing_freed_pages, XENMEM_get_sharing_shared_pages, XENMEM_populate_physmap,
    XenMemoryReservation,
};
use xen_abi::sched::{SCHEDOP_remote_shutdown, SchedRemoteShutdown};
use xen_abi::sysctl::*;
use xen_abi::version::*;
use xen_abi::xen::{
    HYPERVISOR_domctl, HYPERVISOR_event_channel_op, HYPERVISOR_hvm_op, HYPERVISOR_memory_op,
    HYPERVISOR_sched_op, HYPERVISOR_sysctl, HYPERVISOR_xen_version,
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

/// Writes into another domain's memory through foreign mappings (what
/// libxenforeignmemory does for libxenguest).
pub trait GuestMem {
    /// Copies `data` into `domid`'s memory from the start of frame `gfn` on,
    /// mapping at most [`xen_sys::FOREIGN_BATCH_MAX`] frames at a time. The
    /// frames must be populated.
    fn write_guest(&mut self, domid: u32, gfn: u64, data: &[u8]) -> Result<(), Errno>;

    /// Copies `data` to `offset` of frame 0 of `domid`'s (shared) grant
    /// table, mapped with `XENMEM_acquire_resource`.
    fn write_grant_table(&mut self, domid: u32, offset: usize, data: &[u8]) -> Result<(), Errno>;
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
            XENMEM_populate_physmap => {
                let r = need(mem, args[1], size_of::<XenMemoryReservation>())?;
                let n = usize::try_from(u64_at(r, 8)).map_err(|_| EFAULT)?;
                need(mem, u64_at(r, 0), n.checked_mul(8).ok_or(EFAULT)?).map(drop)
            }
            _ => Err(EFAULT),
        },
        HYPERVISOR_event_channel_op if args[0] == u64::from(EVTCHNOP_alloc_unbound) => {
            need(mem, args[1], size_of::<EvtchnAllocUnbound>()).map(drop)
        }
        HYPERVISOR_hvm_op if args[0] == u64::from(HVMOP_set_param) => {
            need(mem, args[1], size_of::<XenHvmParam>()).map(drop)
        }
        HYPERVISOR_sched_op if args[0] == u64::from(SCHEDOP_remote_shutdown) => {
            need(mem, args[1], size_of::<SchedRemoteShutdown>()).map(drop)
        }
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
                XEN_DOMCTL_getdomaininfo
                | XEN_DOMCTL_getvcpuinfo
                | XEN_DOMCTL_createdomain
                | XEN_DOMCTL_max_mem
                | XEN_DOMCTL_max_vcpus
                | XEN_DOMCTL_set_address_size
                | XEN_DOMCTL_set_paging_mempool_size
                | XEN_DOMCTL_pausedomain
                | XEN_DOMCTL_unpausedomain
                | XEN_DOMCTL_destroydomain
                | XEN_DOMCTL_cacheflush => Ok(()),
                XEN_DOMCTL_setvcpucontext => {
                    need(mem, u64_at(d, u + 8), size_of::<VcpuGuestContext>()).map(drop)
                }
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
