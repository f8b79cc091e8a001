//! The toolstack's hypercalls: sysctl and domctl (Xen 4.17 interface
//! version 0x15), for the privileged domain only; what exists answers as
//! Xen does.

#![allow(non_upper_case_globals)] // Xen's constant names, matched as patterns

use super::hypercall::{Ctx, R};
use crate::domain::{self, Domain, Power, NO_PCPU};
use core::sync::atomic::Ordering;
use hv_arm::s1walk;
use xen_abi::domctl::*;
use xen_abi::sysctl::*;
use xen_abi::errno::*;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes};

/// Host memory facts for physinfo, fixed at boot.
pub struct MemInfo {
    pub total_pages: u64,
    pub max_mfn: u64,
    pub nr_cpus: u32,
    pub cpu_khz: u32,
}

pub static MEMINFO: spin::Once<MemInfo> = spin::Once::new();

/// What `getdomaininfo` says about `dom`.
fn domaininfo(dom: &Domain) -> XenDomctlGetdomaininfo {
    let mut i = XenDomctlGetdomaininfo::new_zeroed();
    let online = dom.vcpus.iter().filter(|v| *v.power.lock() != Power::Off).count() as u32;
    let life = &dom.life;
    i.domain = dom.id;
    // As Xen on Arm: every guest is "hvm" with hardware paging.
    let mut flags = XEN_DOMINF_hvm_guest | XEN_DOMINF_hap;
    if life.dying.load(Ordering::Acquire) {
        flags |= XEN_DOMINF_dying;
    }
    if let Some(r) = life.shutdown_reason() {
        flags |= XEN_DOMINF_shutdown | (r & XEN_DOMINF_shutdownmask) << XEN_DOMINF_shutdownshift;
    }
    if life.paused.load(Ordering::Acquire) != 0 {
        flags |= XEN_DOMINF_paused;
    } else if online > 0 && life.runnable() {
        flags |= XEN_DOMINF_running;
    } else {
        flags |= XEN_DOMINF_blocked;
    }
    i.flags = flags;
    i.tot_pages = dom.tot_pages();
    i.max_pages = if dom.is_hardware() { i.tot_pages } else { dom.max_pages.load(Ordering::Acquire) };
    i.shared_info_frame = dom.xen.shared_info_gfn.load(Ordering::Acquire);
    i.cpu_time = crate::domain::system_time_ns(dom).saturating_mul(online as u64);
    i.nr_online_vcpus = online;
    i.max_vcpu_id = dom.vcpus.len().saturating_sub(1) as u32;
    i.handle = *dom.handle.lock();
    i.gpaddr_bits = 40;
    i.arch_config.gic_version = XEN_DOMCTL_CONFIG_GIC_V3;
    i.arch_config.nr_spis = dom.vgic.lock().nr_spis();
    i
}

/// The physical CPU a vCPU runs on (dom0: its own index).
fn vcpu_cpu(dom: &Domain, v: usize) -> Option<usize> {
    if dom.is_hardware() {
        return Some(v);
    }
    let p = dom.vcpu(v)?.pcpu.load(Ordering::Acquire);
    (p != NO_PCPU).then_some(p)
}

/// Fill an `xenctl_bitmap` {bitmap handle, nr_bits} with the CPUs below
/// `nr_cpus` for which `set` holds (at most 128 CPUs: the caller's bits
/// beyond are left alone).
fn write_cpumap(ctx: &Ctx, buf: u64, nr_bits: u32, nr_cpus: usize, set: impl Fn(usize) -> bool) -> Result<(), i32> {
    let mut map = [0u8; 16];
    let bytes = (nr_bits as usize).div_ceil(8).min(map.len());
    for c in (0..nr_cpus.min(bytes * 8)).filter(|&c| set(c)) {
        map[c / 8] |= 1 << (c % 8);
    }
    s1walk::copy_to_guest(&ctx.regs, &ctx.mem(), buf, &map[..bytes]).map_err(|_| EFAULT)
}

fn payload<T: FromBytes>(op: &XenDomctl) -> Result<T, i32> {
    T::read_from_prefix(op.u.as_bytes()).map(|(t, _)| t).map_err(|_| EINVAL)
}

fn set_payload<T: IntoBytes + Immutable>(op: &mut XenDomctl, v: &T) {
    op.u = [0; 16];
    op.u.as_mut_bytes()[..core::mem::size_of::<T>()].copy_from_slice(v.as_bytes());
}

pub fn domctl(ctx: &Ctx, arg: u64) -> R {
    // Xen's order: the argument, its interface version, the domain it
    // names (by exact id; not for createdomain/getdomaininfo), then the
    // privilege check.
    let mut op: XenDomctl = ctx.read(arg)?;
    if op.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
        return Err(EACCES);
    }
    if !ctx.privileged() {
        if op.cmd != XEN_DOMCTL_createdomain && op.cmd != XEN_DOMCTL_getdomaininfo && domain::get_any(op.domain).is_none() {
            return Err(ESRCH);
        }
        return Err(EPERM);
    }
    match op.cmd {
        XEN_DOMCTL_createdomain => {
            let mut cfg: XenDomctlCreatedomain = payload(&op)?;
            crate::domu::sanitise(&mut cfg)?;
            let want = if op.domain == 0 || op.domain as usize >= domain::MAX_DOMAINS { 0 } else { op.domain };
            let id = domain::reserve_id(want).ok_or(if want != 0 { EEXIST } else { ENOMEM })?;
            let d = crate::domu::create(id, &cfg)?;
            domain::insert(d).map_err(|_| EEXIST)?;
            crate::log!(Info, "d{}: created ({} vCPUs)", id, cfg.max_vcpus);
            op.domain = id;
            set_payload(&mut op, &cfg);
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_DOMCTL_getdomaininfo => {
            // As Xen: the first domain whose id is at least the one asked for.
            let dom = domain::list(op.domain).into_iter().next().ok_or(ESRCH)?;
            op.domain = dom.id;
            set_payload(&mut op, &domaininfo(&dom));
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_DOMCTL_destroydomain => {
            crate::domu::destroy(op.domain)?;
            Ok(0)
        }
        _ => domctl_on(ctx, arg, op),
    }
}

/// Domctls on one existing domain.
fn domctl_on(ctx: &Ctx, arg: u64, mut op: XenDomctl) -> R {
    let dom = domain::get(op.domain).ok_or(ESRCH)?;
    match op.cmd {
        XEN_DOMCTL_pausedomain => {
            if dom.is_hardware() {
                return Err(EINVAL);
            }
            dom.life.paused.fetch_add(1, Ordering::AcqRel);
            crate::run::kick_domain(&dom);
            Ok(0)
        }
        XEN_DOMCTL_unpausedomain => {
            if dom.is_hardware() {
                return Err(EINVAL);
            }
            dom.life.paused.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1)).map_err(|_| EINVAL)?;
            crate::run::kick_domain(&dom);
            crate::run::wake_idle();
            Ok(0)
        }
        XEN_DOMCTL_max_mem => {
            let m: XenDomctlMaxMem = payload(&op)?;
            if dom.is_hardware() {
                return Err(EINVAL);
            }
            dom.max_pages.store(m.max_memkb / 4, Ordering::Release);
            Ok(0)
        }
        XEN_DOMCTL_setvcpucontext => {
            let c: XenDomctlVcpucontext = payload(&op)?;
            set_vcpu_context(ctx, &dom, c.vcpu as usize, c.ctxt)
        }
        XEN_DOMCTL_cacheflush => {
            let c: XenDomctlCacheflush = payload(&op)?;
            if c.nr_pfns > 1 << 18 {
                return Err(EINVAL);
            }
            let end = c.start_pfn.checked_add(c.nr_pfns).ok_or(EINVAL)?;
            for gfn in c.start_pfn..end {
                ctx.spend(1)?;
                let pa = dom.owned.lock().lookup(gfn);
                if let Some(pa) = pa {
                    crate::hw::cache::clean_to_poc(pa as usize, 4096);
                }
            }
            crate::hw::cache::invalidate_icache();
            Ok(0)
        }
        XEN_DOMCTL_getvcpuinfo => {
            // {vcpu u32 IN; online, blocked, running u8; cpu_time u64 @8; cpu u32 @16}
            let vcpu = op.u[0] as u32 as usize;
            let v = dom.vcpus.get(vcpu).ok_or(EINVAL)?;
            let on = *v.power.lock() != Power::Off;
            let running = on && vcpu_cpu(&dom, vcpu).is_some() && dom.life.runnable();
            op.u[0] = vcpu as u64 | (on as u64) << 32 | ((on && !running) as u64) << 40 | (running as u64) << 48;
            op.u[1] = if on { crate::domain::system_time_ns(&dom) } else { 0 };
            op.u[2] = vcpu_cpu(&dom, vcpu).unwrap_or(0) as u64;
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_DOMCTL_getvcpuaffinity => {
            // {vcpu u32, flags u32, hard {bitmap u64, nr_bits u32} @8, soft {..} @24}
            let vcpu = op.u[0] as u32 as usize;
            dom.vcpus.get(vcpu).ok_or(EINVAL)?;
            let flags = (op.u[0] >> 32) as u32;
            if flags & (XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT) == 0 {
                return Err(EINVAL);
            }
            let nr_cpus = MEMINFO.get().map(|m| m.nr_cpus).unwrap_or(1) as usize;
            // Hard: dom0's vCPUs are pinned; a domU vCPU may use any free CPU.
            let pinned = dom.is_hardware();
            for (i, want) in [(1usize, XEN_VCPUAFFINITY_HARD), (3, XEN_VCPUAFFINITY_SOFT)] {
                if flags & want == 0 {
                    continue;
                }
                write_cpumap(ctx, op.u[i], op.u[i + 1] as u32, nr_cpus, |c| want == XEN_VCPUAFFINITY_SOFT || !pinned || c == vcpu)?;
            }
            ctx.write(arg, &op).map(|_| 0)
        }
        // vCPUs are fixed at createdomain (Xen 4.17 keeps this call for
        // old toolstacks: it may not ask for more).
        XEN_DOMCTL_max_vcpus => {
            let max = op.u[0] as u32 as usize;
            if max > dom.vcpus.len() {
                return Err(EINVAL);
            }
            Ok(0)
        }
        // Placement is the null scheduler's: accepted and left as is.
        XEN_DOMCTL_setvcpuaffinity => {
            dom.vcpus.get(op.u[0] as u32 as usize).ok_or(EINVAL)?;
            Ok(0)
        }
        XEN_DOMCTL_setnodeaffinity => Ok(0),
        // AArch64 guests only.
        XEN_DOMCTL_set_address_size => match op.u[0] as u32 {
            64 => Ok(0),
            _ => Err(EINVAL),
        },
        // Stage-2 tables come from the hypervisor heap, not a per-domain pool.
        XEN_DOMCTL_set_paging_mempool_size => Ok(0),
        XEN_DOMCTL_get_paging_mempool_size => {
            op.u[0] = 0;
            ctx.write(arg, &op).map(|_| 0)
        }
        _ => {
            crate::glog!(Info, "d{}: domctl {} not implemented", ctx.dom.id, op.cmd);
            Err(ENOSYS)
        }
    }
}

/// XEN_DOMCTL_setvcpucontext: the registers an offline vCPU starts with;
/// `VGCF_online` makes it start once the domain runs.
fn set_vcpu_context(ctx: &Ctx, dom: &Domain, vcpu: usize, handle: u64) -> R {
    use xen_abi::arch_arm::*;
    if dom.is_hardware() {
        return Err(EINVAL);
    }
    let v = dom.vcpus.get(vcpu).ok_or(EINVAL)?;
    let c: VcpuGuestContext = ctx.read(handle)?;
    let r = &c.user_regs;
    // AArch64 EL1t/EL1h only.
    let mode = r.cpsr & 0x1f;
    if mode != 0x4 && mode != 0x5 {
        return Err(EINVAL);
    }
    let mut p = v.power.lock();
    if *p != Power::Off {
        return Err(EEXIST);
    }
    *v.boot.lock() = Some(crate::domain::BootRegs {
        x: r.x,
        cpsr: r.cpsr,
        sctlr: c.sctlr,
        ttbr0: c.ttbr0,
        ttbr1: c.ttbr1,
        tcr: c.ttbcr,
        sp_el1: r.sp_el1,
    });
    if c.flags & VGCF_online != 0 {
        *p = Power::Starting { entry: r.pc64, ctx: r.x[0] };
        drop(p);
        crate::run::wake_idle();
    }
    Ok(0)
}

pub fn sysctl(ctx: &Ctx, arg: u64) -> R {
    // Xen's order: the argument, its interface version, then the privilege check.
    let mut op: XenSysctl = ctx.read(arg)?;
    if op.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
        return Err(EACCES);
    }
    if !ctx.privileged() {
        return Err(EPERM);
    }
    match op.cmd {
        XEN_SYSCTL_physinfo => {
            let m = MEMINFO.get().ok_or(EINVAL)?;
            let mut p = XenSysctlPhysinfo::new_zeroed();
            // As Xen on Arm reports the topology: one core per "socket".
            p.threads_per_core = 1;
            p.cores_per_socket = 1;
            p.capabilities = XEN_SYSCTL_PHYSCAP_hvm | XEN_SYSCTL_PHYSCAP_hap | XEN_SYSCTL_PHYSCAP_gnttab_v1;
            p.nr_cpus = m.nr_cpus;
            p.max_cpu_id = m.nr_cpus.saturating_sub(1);
            p.nr_nodes = 1;
            p.cpu_khz = m.cpu_khz;
            p.total_pages = m.total_pages;
            p.free_pages = domain::FRAMES.get().map(|f| f.lock().free_pages()).unwrap_or(0);
            p.max_mfn = m.max_mfn;
            op.u = [0; 16];
            op.u.as_mut_bytes()[..core::mem::size_of::<XenSysctlPhysinfo>()].copy_from_slice(p.as_bytes());
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_cpupool_op => {
            // {op u32, cpupool_id u32, sched_id u32, domid u32, cpu u32,
            //  n_dom u32, cpumap {bitmap u64 @24, nr_bits u32 @32}}.
            // One pool, 0, holding every CPU (Xen's default).
            let sub = op.u[0] as u32;
            let pool = (op.u[0] >> 32) as u32;
            let nr_cpus = MEMINFO.get().map(|m| m.nr_cpus).unwrap_or(1) as usize;
            let fill_all = match sub {
                XEN_SYSCTL_CPUPOOL_OP_INFO if pool == 0 => true,
                XEN_SYSCTL_CPUPOOL_OP_INFO => return Err(ENOENT),
                XEN_SYSCTL_CPUPOOL_OP_FREEINFO => false,
                _ => return Err(ENOSYS),
            };
            if fill_all {
                op.u[1] = XEN_SCHEDULER_NULL as u64; // sched_id; domid 0
                op.u[2] = (domain::list(0).len() as u64) << 32; // cpu 0, n_dom
            }
            write_cpumap(ctx, op.u[3], op.u[4] as u32, nr_cpus, |_| fill_all)?;
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_numainfo => {
            // {num_nodes u32; meminfo handle @8; distance handle @16}: one
            // node holding all memory, as Xen without NUMA reports it.
            let (n, meminfo, distance) = (op.u[0] as u32, op.u[1], op.u[2]);
            if n >= 1 && meminfo != 0 {
                let m = MEMINFO.get().ok_or(EINVAL)?;
                let free = domain::FRAMES.get().map(|f| f.lock().free_pages()).unwrap_or(0);
                ctx.write(meminfo, &[m.total_pages * 4096, free * 4096])?;
            }
            if n >= 1 && distance != 0 {
                ctx.write(distance, &10u32)?;
            }
            op.u[0] = (op.u[0] & !0xffff_ffff) | 1;
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_cputopoinfo => {
            // {num_cpus u32; cputopo handle @8} of {core, socket, node u32}.
            let nr = MEMINFO.get().map(|m| m.nr_cpus).unwrap_or(1);
            let (n, buf) = (op.u[0] as u32, op.u[1]);
            if buf != 0 {
                for c in 0..n.min(nr) {
                    ctx.write(buf.wrapping_add(c as u64 * 12), &[0u32, c, 0])?;
                }
            }
            op.u[0] = (op.u[0] & !0xffff_ffff) | nr as u64;
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_sched_id => {
            op.u[0] = XEN_SCHEDULER_NULL as u64; // vCPUs pinned 1:1, as Xen's null scheduler
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_getdomaininfolist => {
            let l = XenSysctlGetdomaininfolist::read_from_prefix(op.u.as_bytes()).map_err(|_| EINVAL)?.0;
            let mut n = 0u32;
            let size = core::mem::size_of::<XenDomctlGetdomaininfo>() as u64;
            for d in domain::list(l.first_domain).iter().take(l.max_domains.min(domain::MAX_DOMAINS as u32) as usize) {
                ctx.write(l.buffer.wrapping_add(n as u64 * size), &domaininfo(d))?;
                n += 1;
            }
            // num_domains is the u32 at byte 16 of the payload.
            op.u[2] = (op.u[2] & !0xffff_ffff) | n as u64;
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_readconsole => {
            // {clear u8, incremental u8, pad u16, index u32, buffer u64, count u32}
            let clear = op.u[0] & 0xff != 0;
            let incremental = (op.u[0] >> 8) & 0xff != 0;
            let index = (op.u[0] >> 32) as u32;
            let (buf, count) = (op.u[1], op.u[2] as u32);
            // In chunks through a stack buffer: no heap allocation sized by the guest.
            let mut tmp = [0u8; 512];
            let (mut done, mut next) = (0usize, index);
            let mut incr = incremental;
            while done < count as usize {
                ctx.spend(1)?;
                let want = (count as usize - done).min(tmp.len());
                let (n, nx) = crate::console::read_ring(next, incr, false, &mut tmp[..want]);
                s1walk::copy_to_guest(&ctx.regs, &ctx.mem(), buf.wrapping_add(done as u64), &tmp[..n]).map_err(|_| EFAULT)?;
                done += n;
                next = nx;
                incr = true;
                if n < want {
                    break;
                }
            }
            if clear {
                crate::console::read_ring(next, true, true, &mut []);
            }
            op.u[0] = (op.u[0] & 0xffff_ffff) | ((next as u64) << 32);
            op.u[2] = (op.u[2] & !0xffff_ffff) | done as u64;
            ctx.write(arg, &op).map(|_| 0)
        }
        _ => {
            crate::glog!(Info, "sysctl {} not implemented", op.cmd);
            Err(ENOSYS)
        }
    }
}
