//! The toolstack's hypercalls: sysctl and domctl (Xen 4.17 interface
//! version 0x15), for the privileged domain only. Today there is one
//! domain, dom0; what exists answers as Xen does.

#![allow(non_upper_case_globals)] // Xen's constant names, matched as patterns

use super::hypercall::{Ctx, R};
use crate::domain::{Domain, Power, DOM0};
use hv_arm::s1walk;
use xen_abi::domctl::*;
use xen_abi::sysctl::*;
use xen_abi::errno::*;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Host memory facts for physinfo, fixed at boot.
pub struct MemInfo {
    pub total_pages: u64,
    /// Pages no domain or the hypervisor uses.
    pub free_pages: u64,
    pub max_mfn: u64,
    pub nr_cpus: u32,
    pub cpu_khz: u32,
}

pub static MEMINFO: spin::Once<MemInfo> = spin::Once::new();

/// What `getdomaininfo` says about `dom`.
fn domaininfo(dom: &Domain) -> XenDomctlGetdomaininfo {
    let mut i = XenDomctlGetdomaininfo::new_zeroed();
    let online = dom.vcpus.iter().filter(|v| *v.power.lock() == Power::On).count() as u32;
    let pages: u64 = dom.ram.iter().map(|r| r.size / 4096).sum();
    i.domain = dom.id;
    // As Xen on Arm: every guest is "hvm" with hardware paging; a pinned
    // vCPU is always running.
    i.flags = XEN_DOMINF_hvm_guest | XEN_DOMINF_hap | if online > 0 { XEN_DOMINF_running } else { 0 };
    i.tot_pages = pages;
    i.max_pages = pages;
    i.shared_info_frame = dom.xen.shared_info_gfn.load(core::sync::atomic::Ordering::Acquire);
    i.cpu_time = crate::domain::system_time_ns(dom).saturating_mul(online as u64);
    i.nr_online_vcpus = online;
    i.max_vcpu_id = dom.vcpus.len().saturating_sub(1) as u32;
    i.gpaddr_bits = 40;
    i.arch_config.gic_version = XEN_DOMCTL_CONFIG_GIC_V3;
    i.arch_config.nr_spis = dom.vgic.lock().nr_spis();
    i
}

fn find(domid: u16) -> Option<&'static Domain> {
    DOM0.get().filter(|d| d.id == domid)
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

pub fn domctl(ctx: &Ctx, arg: u64) -> R {
    if !ctx.privileged() {
        return Err(EPERM);
    }
    let mut op: XenDomctl = ctx.read(arg)?;
    if op.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
        return Err(EACCES);
    }
    let dom = find(op.domain).ok_or(ESRCH)?;
    match op.cmd {
        XEN_DOMCTL_getdomaininfo => {
            let info = domaininfo(dom);
            op.u = [0; 16];
            op.u.as_mut_bytes()[..core::mem::size_of::<XenDomctlGetdomaininfo>()].copy_from_slice(info.as_bytes());
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_DOMCTL_getvcpuinfo => {
            // {vcpu u32 IN; online, blocked, running u8; cpu_time u64 @8; cpu u32 @16}
            let vcpu = op.u[0] as u32 as usize;
            let v = dom.vcpus.get(vcpu).ok_or(EINVAL)?;
            let on = *v.power.lock() == Power::On;
            op.u[0] = vcpu as u64 | (on as u64) << 32 | (on as u64) << 48;
            op.u[1] = if on { crate::domain::system_time_ns(dom) } else { 0 };
            op.u[2] = vcpu as u64; // vCPU n runs on physical CPU n
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
            // Hard: the one physical CPU the vCPU is pinned to; soft: all.
            for (i, want) in [(1usize, XEN_VCPUAFFINITY_HARD), (3, XEN_VCPUAFFINITY_SOFT)] {
                if flags & want == 0 {
                    continue;
                }
                write_cpumap(ctx, op.u[i], op.u[i + 1] as u32, nr_cpus, |c| want == XEN_VCPUAFFINITY_SOFT || c == vcpu)?;
            }
            ctx.write(arg, &op).map(|_| 0)
        }
        _ => Err(ENOSYS),
    }
}

pub fn sysctl(ctx: &Ctx, arg: u64) -> R {
    if !ctx.privileged() {
        return Err(EPERM);
    }
    let mut op: XenSysctl = ctx.read(arg)?;
    if op.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
        return Err(EACCES);
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
            p.free_pages = m.free_pages;
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
                op.u[2] = 1 << 32; // cpu 0, n_dom 1
            }
            write_cpumap(ctx, op.u[3], op.u[4] as u32, nr_cpus, |_| fill_all)?;
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_sched_id => {
            op.u[0] = XEN_SCHEDULER_NULL as u64; // vCPUs pinned 1:1, as Xen's null scheduler
            ctx.write(arg, &op).map(|_| 0)
        }
        XEN_SYSCTL_getdomaininfolist => {
            let l = XenSysctlGetdomaininfolist::read_from_prefix(op.u.as_bytes()).map_err(|_| EINVAL)?.0;
            let mut n = 0u32;
            if let Some(d) = DOM0.get() {
                if l.first_domain <= d.id && l.max_domains > 0 {
                    ctx.write(l.buffer, &domaininfo(d))?;
                    n = 1;
                }
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
        _ => Err(ENOSYS),
    }
}
