//! libxc's calls, as xl reaches them through libxl: each builds the
//! hypercall argument in a hypercall buffer (as libxc's bounce buffers do),
//! issues it, and decodes the result. Generic over [`Xencall`] so a fake
//! hypervisor can stand in on the host.

#![allow(non_upper_case_globals)]

use xen_abi::arch_arm::VcpuGuestContext;
use xen_abi::domctl::*;
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
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

use super::abi::*;
use super::xencall::{Buf, Errno, Xencall};

/// Runs `f` with fresh buffers of the given sizes, freeing them after.
fn with_bufs<X: Xencall + ?Sized, T>(
    x: &mut X,
    lens: &[usize],
    f: impl FnOnce(&mut X, &[Buf]) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut bufs = Vec::with_capacity(lens.len());
    for &len in lens {
        match x.alloc(len) {
            Ok(b) => bufs.push(b),
            Err(e) => {
                for b in bufs {
                    x.free(b);
                }
                return Err(e);
            }
        }
    }
    let r = f(x, &bufs);
    for b in bufs {
        x.free(b);
    }
    r
}

/// Copies `s` into `buf`, issues `op(buf)`, copies `buf` back into `s`.
fn call_struct<X: Xencall + ?Sized, S: IntoBytes + FromBytes + Immutable>(
    x: &mut X,
    buf: Buf,
    op: u64,
    s: &mut S,
) -> Result<i64, Errno> {
    let n = size_of::<S>();
    x.bytes_mut(buf)[..n].copy_from_slice(s.as_bytes());
    let addr = x.addr(buf);
    let r = x.hypercall(op, [addr, 0, 0, 0, 0]);
    s.as_mut_bytes().copy_from_slice(&x.bytes(buf)[..n]);
    r
}

/// Puts `payload` at the start of a 128-byte `u`.
pub fn put<T: IntoBytes + Immutable>(u: &mut [u64; 16], payload: &T) {
    let b = payload.as_bytes();
    u.as_mut_bytes()[..b.len()].copy_from_slice(b);
}

/// Reads a payload from the start of a 128-byte `u`.
pub fn get<T: FromBytes>(u: &[u64; 16]) -> T {
    T::read_from_prefix(u.as_bytes())
        .expect("payload fits in 128 bytes")
        .0
}

fn sysctl_op<T: IntoBytes + Immutable>(cmd: u32, payload: &T) -> XenSysctl {
    let mut s = XenSysctl {
        cmd,
        interface_version: XEN_SYSCTL_INTERFACE_VERSION,
        u: [0; 16],
    };
    put(&mut s.u, payload);
    s
}

fn domctl_op<T: IntoBytes + Immutable>(cmd: u32, domid: u32, payload: &T) -> XenDomctl {
    let mut d = XenDomctl {
        cmd,
        interface_version: XEN_DOMCTL_INTERFACE_VERSION,
        domain: domid as u16,
        _pad: [0; 3],
        u: [0; 16],
    };
    put(&mut d.u, payload);
    d
}

/// `do_sysctl`: `s` in a hypercall buffer, IN/OUT.
fn sysctl<X: Xencall + ?Sized>(x: &mut X, s: &mut XenSysctl) -> Result<i64, Errno> {
    with_bufs(x, &[size_of::<XenSysctl>()], |x, b| {
        call_struct(x, b[0], HYPERVISOR_sysctl, s)
    })
}

/// `do_domctl`: `d` in a hypercall buffer, IN/OUT.
fn domctl<X: Xencall + ?Sized>(x: &mut X, d: &mut XenDomctl) -> Result<i64, Errno> {
    with_bufs(x, &[size_of::<XenDomctl>()], |x, b| {
        call_struct(x, b[0], HYPERVISOR_domctl, d)
    })
}

/// `xc_version(cmd, NULL)` (`XENVER_version`, `XENVER_pagesize`).
pub fn version_noarg<X: Xencall + ?Sized>(x: &mut X, cmd: u32) -> Result<i64, Errno> {
    x.hypercall(HYPERVISOR_xen_version, [u64::from(cmd), 0, 0, 0, 0])
}

/// `xc_version(cmd, buf)` with a `len`-byte OUT buffer: the result and the bytes.
pub fn version_buf<X: Xencall + ?Sized>(
    x: &mut X,
    cmd: u32,
    len: usize,
) -> Result<(i64, Vec<u8>), Errno> {
    with_bufs(x, &[len], |x, b| {
        let addr = x.addr(b[0]);
        let r = x.hypercall(HYPERVISOR_xen_version, [u64::from(cmd), addr, 0, 0, 0])?;
        Ok((r, x.bytes(b[0])[..len].to_vec()))
    })
}

/// `xc_version(XENVER_build_id, {len = cap})`: the id's length and bytes.
pub fn build_id<X: Xencall + ?Sized>(x: &mut X, cap: u32) -> Result<Vec<u8>, Errno> {
    let len = 4 + cap as usize;
    with_bufs(x, &[len], |x, b| {
        x.bytes_mut(b[0])[..4].copy_from_slice(&cap.to_le_bytes());
        let addr = x.addr(b[0]);
        let r = x.hypercall(
            HYPERVISOR_xen_version,
            [u64::from(XENVER_build_id), addr, 0, 0, 0],
        )?;
        let n = (r as usize).min(cap as usize);
        Ok(x.bytes(b[0])[4..4 + n].to_vec())
    })
}

/// `XENMEM_get_sharing_freed_pages` / `_shared_pages` (`xc_sharing_*`).
pub fn sharing<X: Xencall + ?Sized>(x: &mut X, freed: bool) -> Result<i64, Errno> {
    let cmd = if freed {
        XENMEM_get_sharing_freed_pages
    } else {
        XENMEM_get_sharing_shared_pages
    };
    x.hypercall(HYPERVISOR_memory_op, [u64::from(cmd), 0, 0, 0, 0])
}

/// `xc_physinfo`.
pub fn physinfo<X: Xencall + ?Sized>(x: &mut X) -> Result<XenSysctlPhysinfo, Errno> {
    let mut s = sysctl_op(XEN_SYSCTL_physinfo, &XenSysctlPhysinfo::new_zeroed());
    sysctl(x, &mut s)?;
    Ok(get(&s.u))
}

/// `xc_sched_id`.
pub fn sched_id<X: Xencall + ?Sized>(x: &mut X) -> Result<u32, Errno> {
    let mut s = sysctl_op(XEN_SYSCTL_sched_id, &XenSysctlSchedId::default());
    sysctl(x, &mut s)?;
    Ok(get::<XenSysctlSchedId>(&s.u).sched_id)
}

/// `xc_domain_getinfolist(first, max)`: up to `max` domains from `first` on.
pub fn getdomaininfolist<X: Xencall + ?Sized>(
    x: &mut X,
    first: u32,
    max: u32,
) -> Result<Vec<XenDomctlGetdomaininfo>, Errno> {
    let elem = size_of::<XenDomctlGetdomaininfo>();
    with_bufs(x, &[max as usize * elem], |x, b| {
        let l = XenSysctlGetdomaininfolist {
            first_domain: first as u16,
            max_domains: max,
            buffer: x.addr(b[0]),
            ..Default::default()
        };
        let mut s = sysctl_op(XEN_SYSCTL_getdomaininfolist, &l);
        sysctl(x, &mut s)?;
        let n = get::<XenSysctlGetdomaininfolist>(&s.u).num_domains.min(max) as usize;
        let data = x.bytes(b[0]);
        Ok((0..n)
            .map(|i| {
                XenDomctlGetdomaininfo::read_from_bytes(&data[i * elem..(i + 1) * elem])
                    .expect("element size")
            })
            .collect())
    })
}

/// `xc_readconsolering(buffer[count], clear, incremental, &index)`: the bytes
/// read and the new index.
pub fn readconsole<X: Xencall + ?Sized>(
    x: &mut X,
    count: u32,
    clear: bool,
    incremental: bool,
    index: u32,
) -> Result<(Vec<u8>, u32), Errno> {
    with_bufs(x, &[count as usize], |x, b| {
        let r = XenSysctlReadconsole {
            clear: clear.into(),
            incremental: incremental.into(),
            index,
            buffer: x.addr(b[0]),
            count,
            ..Default::default()
        };
        let mut s = sysctl_op(XEN_SYSCTL_readconsole, &r);
        sysctl(x, &mut s)?;
        let out: XenSysctlReadconsole = get(&s.u);
        let n = out.count.min(count) as usize;
        Ok((x.bytes(b[0])[..n].to_vec(), out.index))
    })
}

/// `xc_cpupool_freeinfo`: the map of CPUs in no pool, `bytes` long.
pub fn cpupool_freeinfo<X: Xencall + ?Sized>(x: &mut X, bytes: usize) -> Result<Vec<u8>, Errno> {
    with_bufs(x, &[bytes], |x, b| {
        let op = XenSysctlCpupoolOp {
            op: XEN_SYSCTL_CPUPOOL_OP_FREEINFO,
            cpumap: XenctlBitmap {
                bitmap: x.addr(b[0]),
                nr_bits: (bytes * 8) as u32,
                _pad: 0,
            },
            ..Default::default()
        };
        let mut s = sysctl_op(XEN_SYSCTL_cpupool_op, &op);
        sysctl(x, &mut s)?;
        Ok(x.bytes(b[0])[..bytes].to_vec())
    })
}

/// `xc_vcpu_getinfo`.
pub fn getvcpuinfo<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    vcpu: u32,
) -> Result<XenDomctlGetvcpuinfo, Errno> {
    let mut d = domctl_op(
        XEN_DOMCTL_getvcpuinfo,
        domid,
        &XenDomctlGetvcpuinfo {
            vcpu,
            ..Default::default()
        },
    );
    domctl(x, &mut d)?;
    Ok(get(&d.u))
}

/// `xc_vcpu_getaffinity(HARD|SOFT)` with `bytes`-long maps: (hard, soft).
pub fn getvcpuaffinity<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    vcpu: u32,
    bytes: usize,
) -> Result<(Vec<u8>, Vec<u8>), Errno> {
    with_bufs(x, &[bytes, bytes], |x, b| {
        let nr_bits = (bytes * 8) as u32;
        let a = XenDomctlVcpuaffinity {
            vcpu,
            flags: XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT,
            cpumap_hard: XenctlBitmap {
                bitmap: x.addr(b[0]),
                nr_bits,
                _pad: 0,
            },
            cpumap_soft: XenctlBitmap {
                bitmap: x.addr(b[1]),
                nr_bits,
                _pad: 0,
            },
        };
        let mut d = domctl_op(XEN_DOMCTL_getvcpuaffinity, domid, &a);
        domctl(x, &mut d)?;
        Ok((
            x.bytes(b[0])[..bytes].to_vec(),
            x.bytes(b[1])[..bytes].to_vec(),
        ))
    })
}

/// `op(cmd, &s)`: `s` in a hypercall buffer, IN/OUT (memory, event
/// channel, HVM and scheduler ops take their argument this way).
fn call_arg<X: Xencall + ?Sized, S: IntoBytes + FromBytes + Immutable>(
    x: &mut X,
    op: u64,
    cmd: u32,
    s: &mut S,
) -> Result<i64, Errno> {
    with_bufs(x, &[size_of::<S>()], |x, b| {
        let n = size_of::<S>();
        x.bytes_mut(b[0])[..n].copy_from_slice(s.as_bytes());
        let addr = x.addr(b[0]);
        let r = x.hypercall(op, [u64::from(cmd), addr, 0, 0, 0]);
        s.as_mut_bytes().copy_from_slice(&x.bytes(b[0])[..n]);
        r
    })
}

/// A domctl without a payload (`pausedomain`, `unpausedomain`,
/// `destroydomain`).
pub fn domctl_noarg<X: Xencall + ?Sized>(x: &mut X, cmd: u32, domid: u32) -> Result<(), Errno> {
    let mut d = domctl_op(cmd, domid, &[0u64; 0]);
    domctl(x, &mut d).map(drop)
}

/// `xc_domain_create`: `want` 0 lets the hypervisor pick the id, another
/// asks for that one (`EEXIST` if taken). Returns the id and the
/// configuration as Xen completed it (`arch.gic_version`,
/// `arch.clock_frequency`).
pub fn createdomain<X: Xencall + ?Sized>(
    x: &mut X,
    want: u32,
    config: &XenDomctlCreatedomain,
) -> Result<(u32, XenDomctlCreatedomain), Errno> {
    let mut d = domctl_op(XEN_DOMCTL_createdomain, want, config);
    domctl(x, &mut d)?;
    Ok((u32::from(d.domain), get(&d.u)))
}

/// `xc_domain_max_vcpus`: Xen 4.17 allocates the vCPUs here (`max` must
/// be `createdomain`'s).
pub fn max_vcpus<X: Xencall + ?Sized>(x: &mut X, domid: u32, max: u32) -> Result<(), Errno> {
    let mut d = domctl_op(XEN_DOMCTL_max_vcpus, domid, &XenDomctlMaxVcpus { max });
    domctl(x, &mut d).map(drop)
}

/// `xc_domain_setmaxmem`.
pub fn max_mem<X: Xencall + ?Sized>(x: &mut X, domid: u32, max_memkb: u64) -> Result<(), Errno> {
    let mut d = domctl_op(XEN_DOMCTL_max_mem, domid, &XenDomctlMaxMem { max_memkb });
    domctl(x, &mut d).map(drop)
}

/// `XEN_DOMCTL_set_address_size` (libxenguest's `set_mode`): 64 for an
/// AArch64 guest. Xen makes a new Arm domain AArch32 until told.
pub fn set_address_size<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    bits: u32,
) -> Result<(), Errno> {
    let mut d = domctl_op(XEN_DOMCTL_set_address_size, domid, &bits);
    domctl(x, &mut d).map(drop)
}

/// `xc_set_paging_mempool_size`: bytes of Xen's stage-2 table pool.
pub fn set_paging_mempool_size<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    bytes: u64,
) -> Result<(), Errno> {
    let mut d = domctl_op(XEN_DOMCTL_set_paging_mempool_size, domid, &bytes);
    domctl(x, &mut d).map(drop)
}

/// `xc_domain_cacheflush`.
pub fn cacheflush<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    start_pfn: u64,
    nr_pfns: u64,
) -> Result<(), Errno> {
    let c = XenDomctlCacheflush { start_pfn, nr_pfns };
    let mut d = domctl_op(XEN_DOMCTL_cacheflush, domid, &c);
    domctl(x, &mut d).map(drop)
}

/// `xc_vcpu_setcontext`: the context in a second hypercall buffer.
pub fn setvcpucontext<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    vcpu: u32,
    ctxt: &VcpuGuestContext,
) -> Result<(), Errno> {
    let n = size_of::<VcpuGuestContext>();
    with_bufs(x, &[size_of::<XenDomctl>(), n], |x, b| {
        x.bytes_mut(b[1])[..n].copy_from_slice(ctxt.as_bytes());
        let c = XenDomctlVcpucontext {
            vcpu,
            _pad0: 0,
            ctxt: x.addr(b[1]),
        };
        let mut d = domctl_op(XEN_DOMCTL_setvcpucontext, domid, &c);
        call_struct(x, b[0], HYPERVISOR_domctl, &mut d).map(drop)
    })
}

/// `xc_domain_getinfolist(domid, 1)` for exactly `domid`: `None` if it does
/// not exist.
pub fn getdomaininfo<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
) -> Result<Option<XenDomctlGetdomaininfo>, Errno> {
    let l = getdomaininfolist(x, domid, 1)?;
    Ok(l.into_iter().find(|d| u32::from(d.domain) == domid))
}

/// `xc_domain_populate_physmap`: `order`-sized extents at `gfns` in
/// `domid`. Returns how many extents Xen populated (fewer than asked when
/// it ran out, as Xen reports a partial success).
pub fn populate_physmap<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    order: u32,
    gfns: &[u64],
) -> Result<usize, Errno> {
    let n = gfns.len();
    with_bufs(x, &[size_of::<XenMemoryReservation>(), n * 8], |x, b| {
        x.bytes_mut(b[1])[..n * 8].copy_from_slice(gfns.as_bytes());
        let r = XenMemoryReservation {
            extent_start: x.addr(b[1]),
            nr_extents: n as u64,
            extent_order: order,
            mem_flags: 0,
            domid: domid as u16,
            _pad0: [0; 6],
        };
        x.bytes_mut(b[0])[..size_of::<XenMemoryReservation>()].copy_from_slice(r.as_bytes());
        let addr = x.addr(b[0]);
        let done = x.hypercall(
            HYPERVISOR_memory_op,
            [u64::from(XENMEM_populate_physmap), addr, 0, 0, 0],
        )?;
        Ok(usize::try_from(done).unwrap_or(0).min(n))
    })
}

/// `xc_evtchn_alloc_unbound(dom, remote)`: the new port in `dom`.
pub fn evtchn_alloc_unbound<X: Xencall + ?Sized>(
    x: &mut X,
    dom: u32,
    remote: u32,
) -> Result<u32, Errno> {
    let mut a = EvtchnAllocUnbound {
        dom: dom as u16,
        remote_dom: remote as u16,
        port: 0,
    };
    call_arg(
        x,
        HYPERVISOR_event_channel_op,
        EVTCHNOP_alloc_unbound,
        &mut a,
    )?;
    Ok(a.port)
}

/// `xc_hvm_param_set`.
pub fn hvm_set_param<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    index: u32,
    value: u64,
) -> Result<(), Errno> {
    let mut p = XenHvmParam {
        domid: domid as u16,
        pad: 0,
        index,
        value,
    };
    call_arg(x, HYPERVISOR_hvm_op, HVMOP_set_param, &mut p).map(drop)
}

/// `xc_domain_shutdown`: `SCHEDOP_remote_shutdown`.
pub fn remote_shutdown<X: Xencall + ?Sized>(
    x: &mut X,
    domid: u32,
    reason: u32,
) -> Result<(), Errno> {
    let mut s = SchedRemoteShutdown {
        domain_id: domid as u16,
        _pad0: 0,
        reason,
    };
    call_arg(x, HYPERVISOR_sched_op, SCHEDOP_remote_shutdown, &mut s).map(drop)
}
