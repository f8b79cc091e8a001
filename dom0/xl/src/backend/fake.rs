//! A fake hypervisor behind [`Xencall`] for host tests: buffers at made-up
//! addresses, and the hypercalls the backend issues answered from plain
//! data the way Xen 4.17 answers them. Every call first passes
//! [`check`], as with the real privcmd.

#![allow(non_upper_case_globals)]

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use xen_abi::arch_arm::*;
use xen_abi::domctl::*;
use xen_abi::errno::*;
use xen_abi::event_channel::{EVTCHNOP_alloc_unbound, EvtchnAllocUnbound};
use xen_abi::hvm_op::{HVMOP_set_param, XenHvmParam};
use xen_abi::io::xs_wire::XS_WATCH_EVENT;
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
use xsproto::{Message, Server};
use zerocopy::{FromBytes, IntoBytes};

use super::abi::*;
use super::xc::{get, put};
use super::xencall::{check, Buf, Errno, GuestMem, Mem, Xencall};
use super::xenstore::{decode, watch_event, Tx, Xs, XsError};
use super::{ConsoleSession, FileInfo, FileKind, Host, MonitorSpec, Pump};
use crate::format::NodeInfo;

/// One vCPU of a fake domain.
#[derive(Clone, Debug, Default)]
pub struct FakeVcpu {
    pub online: bool,
    pub running: bool,
    pub blocked: bool,
    pub cpu: u32,
    pub time: u64,
    /// Hard affinity: bit n = pCPU n.
    pub hard: u64,
}

/// One fake domain.
#[derive(Clone, Debug, Default)]
pub struct FakeDomain {
    pub info: XenDomctlGetdomaininfo,
    pub vcpus: Vec<FakeVcpu>,
    /// `pausedomain` count (the domain runs at 0).
    pub pauses: u32,
    /// `max_mem` in KiB (0: none set).
    pub max_kb: u64,
    /// HVM params set.
    pub params: BTreeMap<u32, u64>,
    /// Ports allocated, in order.
    pub ports: Vec<u32>,
    /// vCPU 0's context, once set.
    pub vcpu0: Option<VcpuGuestContext>,
    /// What `createdomain` got.
    pub created: Option<XenDomctlCreatedomain>,
    /// Which creation made it (1 = the first `createdomain`; 0 = given).
    pub generation: u32,
    /// Hypercalls made when it was last unpaused to running.
    pub started_at: Option<usize>,
    /// `set_address_size` (0: never set).
    pub address_size: u32,
    /// `set_paging_mempool_size` in bytes.
    pub pool_bytes: u64,
    /// `max_vcpus` allocated the vCPUs.
    pub vcpus_allocated: bool,
}

/// Something that happens to a domain on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeEvent {
    /// `SCHEDOP_shutdown` from the guest with this reason.
    Shutdown(u32),
    /// Destroyed by someone else (another toolstack).
    Vanish,
}

/// What fails, once: the `n`th call (from 0) of (op, cmd) answers `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fail {
    pub op: u64,
    pub cmd: u32,
    pub nth: usize,
    pub errno: Errno,
}

#[derive(Default)]
pub struct FakeXen {
    pub bufs: Vec<Option<(u64, Vec<u8>)>>,
    pub next_addr: u64,
    pub domains: Vec<FakeDomain>,
    pub phys: XenSysctlPhysinfo,
    pub sched: u32,
    pub version: u32,
    pub extra: &'static str,
    pub caps: &'static str,
    pub cmdline: &'static str,
    pub build_id: Vec<u8>,
    /// memory_op sharing fails with this errno (else answers 0).
    pub sharing: Option<Errno>,
    /// CPUs in no pool.
    pub free_cpus: u64,
    /// The console ring (never wraps here) and its consumer index.
    pub ring: Vec<u8>,
    pub ring_c: u32,
    /// Every hypercall seen: (op, sub-op/cmd).
    pub log: Vec<(u64, u32)>,
    /// Largest `max_domains` a getdomaininfolist asked for.
    pub max_list: u32,
    /// Populated guest frames: (domid, gfn) -> contents.
    pub guest: BTreeMap<(u16, u64), Vec<u8>>,
    /// Every `populate_physmap`: (domid, order, extents asked, first gfn).
    pub populated: Vec<(u16, u32, usize, u64)>,
    /// Frames of every foreign mapping batch.
    pub map_batches: Vec<usize>,
    /// Every `cacheflush`: (domid, start, count).
    pub flushed: Vec<(u16, u64, u64)>,
    /// Every foreign write: (domid, first gfn, bytes).
    pub writes: Vec<(u16, u64, usize)>,
    /// The GIC version `createdomain` reports (0 = V3).
    pub gic: u8,
    /// `destroydomain` answers EAGAIN this many times first.
    pub destroy_eagain: u32,
    /// Failures to inject.
    pub fail: Vec<Fail>,
    /// (hypercalls after it started, generation, event): what a domain
    /// does on its own once running.
    pub script: Vec<(usize, u32, FakeEvent)>,
    /// `createdomain`s so far.
    pub generations: u32,
    /// Frame 0 of each domain's grant table, as written by xl.
    pub grants: BTreeMap<u16, Vec<u8>>,
}

impl FakeXen {
    fn mem(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        self.bufs.iter_mut().flatten().find_map(|(a, v)| {
            let off = usize::try_from(addr.checked_sub(*a)?).ok()?;
            v.get_mut(off..off.checked_add(len)?)
        })
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.mem(addr, data.len())
            .ok_or(EFAULT)?
            .copy_from_slice(data);
        Ok(())
    }

    fn read<T: FromBytes>(&mut self, addr: u64) -> Result<T, Errno> {
        let b = self.mem(addr, size_of::<T>()).ok_or(EFAULT)?;
        Ok(T::read_from_bytes(b).expect("size"))
    }

    fn bitmap(&mut self, m: XenctlBitmap, bits: u64) -> Result<(), Errno> {
        let n = (m.nr_bits as usize).div_ceil(8);
        let b: Vec<u8> = (0..n)
            .map(|i| if i < 8 { (bits >> (8 * i)) as u8 } else { 0 })
            .collect();
        self.write(m.bitmap, &b)
    }

    fn domain(&self, id: u16) -> Result<&FakeDomain, Errno> {
        self.domains
            .iter()
            .find(|d| d.info.domain == id)
            .ok_or(ESRCH)
    }

    fn domain_mut(&mut self, id: u16) -> Result<&mut FakeDomain, Errno> {
        self.domains
            .iter_mut()
            .find(|d| d.info.domain == id)
            .ok_or(ESRCH)
    }

    /// The injected failure for this call, if any.
    fn injected(&mut self, op: u64, cmd: u32) -> Result<(), Errno> {
        let nth = self.log.iter().filter(|&&l| l == (op, cmd)).count() - 1;
        match self
            .fail
            .iter()
            .find(|f| f.op == op && f.cmd == cmd && f.nth == nth)
        {
            Some(f) => Err(f.errno),
            None => Ok(()),
        }
    }

    /// Applies scripted events that are due.
    fn run_script(&mut self) {
        let now = self.log.len();
        let due = |e: &(usize, u32, FakeEvent), doms: &[FakeDomain]| {
            doms.iter()
                .any(|d| d.generation == e.1 && d.started_at.is_some_and(|s| now >= s + e.0))
        };
        let (fire, keep): (Vec<_>, Vec<_>) =
            self.script.iter().partition(|e| due(e, &self.domains));
        self.script = keep;
        for (_, gen, ev) in fire {
            let i = self
                .domains
                .iter()
                .position(|d| d.generation == gen)
                .expect("due");
            let d = &mut self.domains[i];
            match ev {
                FakeEvent::Shutdown(r) => {
                    d.info.flags &= !(XEN_DOMINF_running | XEN_DOMINF_blocked);
                    d.info.flags |= XEN_DOMINF_shutdown | (r << XEN_DOMINF_shutdownshift);
                }
                FakeEvent::Vanish => {
                    let id = d.info.domain;
                    self.domains.remove(i);
                    self.guest.retain(|k, _| k.0 != id);
                }
            }
        }
    }

    fn create(&mut self, d: &mut XenDomctl) -> Result<(), Errno> {
        let c: XenDomctlCreatedomain = get(&d.u);
        let free = |i: u16| self.domains.iter().all(|d| d.info.domain != i);
        // As Ferrovisor: the lowest free id, or the one asked for.
        let id = if d.domain == 0 {
            (1u16..).find(|&i| free(i)).expect("a free id")
        } else if free(d.domain) {
            d.domain
        } else {
            return Err(EEXIST);
        };
        let info = XenDomctlGetdomaininfo {
            domain: id,
            flags: XEN_DOMINF_paused | XEN_DOMINF_hvm_guest | XEN_DOMINF_hap,
            max_vcpu_id: c.max_vcpus - 1,
            handle: c.handle,
            ..Default::default()
        };
        let vcpus = (0..c.max_vcpus)
            .map(|i| FakeVcpu {
                cpu: i,
                hard: 1 << i,
                ..Default::default()
            })
            .collect();
        let mut out = c;
        out.arch.gic_version = if self.gic == 0 {
            XEN_DOMCTL_CONFIG_GIC_V3
        } else {
            self.gic
        };
        self.generations += 1;
        self.domains.push(FakeDomain {
            info,
            vcpus,
            pauses: 1,
            created: Some(c),
            generation: self.generations,
            ..Default::default()
        });
        self.domains.sort_by_key(|d| d.info.domain);
        d.domain = id;
        put(&mut d.u, &out);
        Ok(())
    }

    /// `domctl`s that change a domain.
    fn control(&mut self, d: &XenDomctl) -> Result<(), Errno> {
        let eagain = self.destroy_eagain > 0;
        if d.cmd == XEN_DOMCTL_destroydomain {
            self.domain(d.domain)?;
            if eagain {
                self.destroy_eagain -= 1;
                return Err(EAGAIN);
            }
            self.domains.retain(|x| x.info.domain != d.domain);
            self.guest.retain(|k, _| k.0 != d.domain);
            return Ok(());
        }
        if d.cmd == XEN_DOMCTL_cacheflush {
            let c: XenDomctlCacheflush = get(&d.u);
            self.flushed.push((d.domain, c.start_pfn, c.nr_pfns));
            return self.domain(d.domain).map(drop);
        }
        if d.cmd == XEN_DOMCTL_setvcpucontext {
            let c: XenDomctlVcpucontext = get(&d.u);
            let ctx: VcpuGuestContext = self.read(c.ctxt)?;
            let dom = self.domain_mut(d.domain)?;
            // As Xen 4.17: no vCPU before max_vcpus; AArch64 state only in
            // an AArch64 domain.
            if !dom.vcpus_allocated || dom.address_size != 64 {
                return Err(EINVAL);
            }
            dom.vcpu0 = Some(ctx);
            if ctx.flags & VGCF_online != 0 {
                dom.vcpus[c.vcpu as usize].online = true;
                dom.info.nr_online_vcpus += 1;
            }
            return Ok(());
        }
        let calls = self.log.len();
        let dom = self.domain_mut(d.domain)?;
        match d.cmd {
            XEN_DOMCTL_max_mem => dom.max_kb = get::<XenDomctlMaxMem>(&d.u).max_memkb,
            // As Xen 4.17: must match createdomain's.
            XEN_DOMCTL_max_vcpus if get::<u32>(&d.u) as usize != dom.vcpus.len() => {
                return Err(EINVAL)
            }
            XEN_DOMCTL_max_vcpus => dom.vcpus_allocated = true,
            // As Xen: only before the domain has memory.
            XEN_DOMCTL_set_address_size | XEN_DOMCTL_set_paging_mempool_size
                if dom.info.tot_pages > 0 =>
            {
                return Err(EBUSY)
            }
            XEN_DOMCTL_set_address_size => dom.address_size = get::<u32>(&d.u),
            XEN_DOMCTL_set_paging_mempool_size => dom.pool_bytes = get::<u64>(&d.u),
            XEN_DOMCTL_pausedomain => dom.pauses += 1,
            XEN_DOMCTL_unpausedomain => dom.pauses = dom.pauses.checked_sub(1).ok_or(EINVAL)?,
            _ => return Err(ENOSYS),
        }
        if dom.pauses > 0 {
            dom.info.flags = (dom.info.flags & !XEN_DOMINF_running) | XEN_DOMINF_paused;
        } else {
            dom.info.flags &= !XEN_DOMINF_paused;
            if dom.info.flags & XEN_DOMINF_shutdown == 0 {
                dom.info.flags |= XEN_DOMINF_running;
            }
            if d.cmd == XEN_DOMCTL_unpausedomain {
                dom.started_at = Some(calls);
            }
        }
        Ok(())
    }

    /// `populate_physmap` as Xen: allowed windows only, partial success
    /// past `max_mem`.
    fn populate(&mut self, arg: u64) -> Result<i64, Errno> {
        let r: XenMemoryReservation = self.read(arg)?;
        let n = r.nr_extents as usize;
        let starts: Vec<u64> = (0..n)
            .map(|i| self.read::<u64>(r.extent_start + 8 * i as u64))
            .collect::<Result<_, _>>()?;
        self.populated.push((
            r.domid,
            r.extent_order,
            n,
            starts.first().copied().unwrap_or(0),
        ));
        let ram = (GUEST_RAM0_BASE >> 12)..((GUEST_RAM0_BASE + GUEST_RAM0_SIZE) >> 12);
        let magic = (GUEST_MAGIC_BASE >> 12)..((GUEST_MAGIC_BASE + GUEST_MAGIC_SIZE) >> 12);
        let pages = 1u64 << r.extent_order;
        for (done, &g) in starts.iter().enumerate() {
            let inside = |w: &std::ops::Range<u64>| w.contains(&g) && w.contains(&(g + pages - 1));
            if !inside(&ram) && !inside(&magic) {
                return if done == 0 {
                    Err(EINVAL)
                } else {
                    Ok(done as i64)
                };
            }
            let dom = self.domain_mut(r.domid)?;
            if dom.max_kb > 0 && (dom.info.tot_pages + pages) * 4 > dom.max_kb {
                return Ok(done as i64);
            }
            dom.info.tot_pages += pages;
            for p in g..g + pages {
                // Empty = all zeros (allocated when first written).
                self.guest.insert((r.domid, p), Vec::new());
            }
        }
        Ok(n as i64)
    }

    fn alloc_unbound(&mut self, arg: u64) -> Result<i64, Errno> {
        let mut a: EvtchnAllocUnbound = self.read(arg)?;
        let dom = self.domain_mut(a.dom)?;
        a.port = dom.ports.len() as u32 + 1;
        dom.ports.push(a.port);
        self.write(arg, a.as_bytes())?;
        Ok(0)
    }

    fn set_param(&mut self, arg: u64) -> Result<i64, Errno> {
        let p: XenHvmParam = self.read(arg)?;
        self.domain_mut(p.domid)?.params.insert(p.index, p.value);
        Ok(0)
    }

    fn remote_shutdown(&mut self, arg: u64) -> Result<i64, Errno> {
        let s: SchedRemoteShutdown = self.read(arg)?;
        let d = self.domain_mut(s.domain_id)?;
        d.info.flags &= !XEN_DOMINF_running;
        d.info.flags |= XEN_DOMINF_shutdown | (s.reason << XEN_DOMINF_shutdownshift);
        Ok(0)
    }

    fn sysctl(&mut self, arg: u64) -> Result<i64, Errno> {
        let mut s: XenSysctl = self.read(arg)?;
        self.log.push((HYPERVISOR_sysctl, s.cmd));
        if s.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
            return Err(EACCES);
        }
        match s.cmd {
            XEN_SYSCTL_physinfo => put(&mut s.u, &self.phys),
            XEN_SYSCTL_sched_id => put(
                &mut s.u,
                &XenSysctlSchedId {
                    sched_id: self.sched,
                },
            ),
            XEN_SYSCTL_getdomaininfolist => {
                let mut l: XenSysctlGetdomaininfolist = get(&s.u);
                self.max_list = self.max_list.max(l.max_domains);
                let list: Vec<_> = self
                    .domains
                    .iter()
                    .filter(|d| d.info.domain >= l.first_domain)
                    .take(l.max_domains as usize)
                    .map(|d| d.info)
                    .collect();
                for (i, d) in list.iter().enumerate() {
                    self.write(l.buffer + (i * 120) as u64, d.as_bytes())?;
                }
                l.num_domains = list.len() as u32;
                put(&mut s.u, &l);
            }
            XEN_SYSCTL_cpupool_op => {
                let op: XenSysctlCpupoolOp = get(&s.u);
                if op.op != XEN_SYSCTL_CPUPOOL_OP_FREEINFO {
                    return Err(ENOSYS);
                }
                self.bitmap(op.cpumap, self.free_cpus)?;
            }
            XEN_SYSCTL_readconsole => {
                // Xen's read_console_ring without wrap-around.
                let mut r: XenSysctlReadconsole = get(&s.u);
                let p = self.ring.len() as u32;
                let mut c = self.ring_c;
                if r.incremental != 0 && c < r.index && r.index <= p {
                    c = r.index;
                }
                let n = (p - c).min(r.count);
                let chunk = self.ring[c as usize..(c + n) as usize].to_vec();
                self.write(r.buffer, &chunk)?;
                c += n;
                if r.clear != 0 {
                    self.ring_c = c;
                }
                r.count = n;
                r.index = c;
                put(&mut s.u, &r);
            }
            _ => return Err(ENOSYS),
        }
        self.write(arg, s.as_bytes())?;
        Ok(0)
    }

    fn domctl(&mut self, arg: u64) -> Result<i64, Errno> {
        let mut d: XenDomctl = self.read(arg)?;
        self.log.push((HYPERVISOR_domctl, d.cmd));
        if d.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
            return Err(EACCES);
        }
        self.injected(HYPERVISOR_domctl, d.cmd)?;
        match d.cmd {
            XEN_DOMCTL_createdomain => {
                self.create(&mut d)?;
                self.write(arg, d.as_bytes())?;
                return Ok(0);
            }
            XEN_DOMCTL_max_mem
            | XEN_DOMCTL_max_vcpus
            | XEN_DOMCTL_set_address_size
            | XEN_DOMCTL_set_paging_mempool_size
            | XEN_DOMCTL_pausedomain
            | XEN_DOMCTL_unpausedomain
            | XEN_DOMCTL_destroydomain
            | XEN_DOMCTL_cacheflush
            | XEN_DOMCTL_setvcpucontext => return self.control(&d).map(|()| 0),
            _ => {}
        }
        let dom = self.domain(d.domain)?.clone();
        match d.cmd {
            XEN_DOMCTL_getdomaininfo => put(&mut d.u, &dom.info),
            XEN_DOMCTL_getvcpuinfo => {
                let mut i: XenDomctlGetvcpuinfo = get(&d.u);
                let v = dom.vcpus.get(i.vcpu as usize).ok_or(EINVAL)?;
                i.online = v.online.into();
                i.running = v.running.into();
                i.blocked = v.blocked.into();
                i.cpu = v.cpu;
                i.cpu_time = v.time;
                put(&mut d.u, &i);
            }
            XEN_DOMCTL_getvcpuaffinity => {
                let a: XenDomctlVcpuaffinity = get(&d.u);
                let v = dom.vcpus.get(a.vcpu as usize).ok_or(EINVAL)?;
                let all = (1u64 << (self.phys.max_cpu_id + 1)) - 1;
                if a.flags & XEN_VCPUAFFINITY_HARD != 0 {
                    self.bitmap(a.cpumap_hard, v.hard)?;
                }
                if a.flags & XEN_VCPUAFFINITY_SOFT != 0 {
                    self.bitmap(a.cpumap_soft, all)?;
                }
            }
            _ => return Err(ENOSYS),
        }
        self.write(arg, d.as_bytes())?;
        Ok(0)
    }

    fn xen_version(&mut self, cmd: u32, arg: u64) -> Result<i64, Errno> {
        self.log.push((HYPERVISOR_xen_version, cmd));
        let fixed = |s: &str, len: usize| {
            let mut b = vec![0u8; len];
            b[..s.len()].copy_from_slice(s.as_bytes());
            b
        };
        let data = match cmd {
            XENVER_version => return Ok(i64::from(self.version)),
            XENVER_pagesize => return Ok(4096),
            XENVER_extraversion => fixed(self.extra, 16),
            XENVER_compile_info => {
                let mut b = fixed("gcc (Debian 12.2.0-14) 12.2.0", 64);
                b.extend(fixed("pkg-xen-devel", 16));
                b.extend(fixed("lists.alioth.debian.org", 32));
                b.extend(fixed("Mon Jan  1 00:00:00 UTC 2024", 32));
                b
            }
            XENVER_capabilities => fixed(self.caps, 1024),
            XENVER_changeset => fixed("", 64),
            XENVER_platform_parameters => 0x20_0000u64.to_le_bytes().to_vec(),
            XENVER_commandline => fixed(self.cmdline, 1024),
            XENVER_build_id => {
                let cap: u32 = self.read(arg)?;
                if (cap as usize) < self.build_id.len() {
                    return Err(ENOBUFS);
                }
                let id = self.build_id.clone();
                self.write(arg + 4, &id)?;
                return Ok(id.len() as i64);
            }
            _ => return Err(ENOSYS),
        };
        self.write(arg, &data)?;
        Ok(0)
    }
}

impl Mem for FakeXen {
    fn get(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.bufs.iter().flatten().find_map(|(a, v)| {
            let off = usize::try_from(addr.checked_sub(*a)?).ok()?;
            v.get(off..off.checked_add(len)?)
        })
    }
}

impl Xencall for FakeXen {
    fn alloc(&mut self, len: usize) -> Result<Buf, Errno> {
        let pages = len.max(1).div_ceil(4096);
        let addr = 0x4000_0000 + self.next_addr;
        // A guard page between buffers.
        self.next_addr += (pages as u64 + 1) * 4096;
        self.bufs.push(Some((addr, vec![0; pages * 4096])));
        Ok(Buf(self.bufs.len() - 1))
    }
    fn free(&mut self, b: Buf) {
        self.bufs[b.0] = None;
    }
    fn addr(&self, b: Buf) -> u64 {
        self.bufs[b.0].as_ref().expect("live").0
    }
    fn bytes(&self, b: Buf) -> &[u8] {
        &self.bufs[b.0].as_ref().expect("live").1
    }
    fn bytes_mut(&mut self, b: Buf) -> &mut [u8] {
        &mut self.bufs[b.0].as_mut().expect("live").1
    }
    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> Result<i64, Errno> {
        check(op, &args, self).unwrap_or_else(|e| panic!("check refused op {op} {args:x?}: {e}"));
        self.run_script();
        match op {
            HYPERVISOR_xen_version => self.xen_version(args[0] as u32, args[1]),
            HYPERVISOR_sysctl => self.sysctl(args[0]),
            HYPERVISOR_domctl => self.domctl(args[0]),
            HYPERVISOR_memory_op => {
                let cmd = args[0] as u32;
                self.log.push((op, cmd));
                self.injected(op, cmd)?;
                if cmd == XENMEM_populate_physmap {
                    return self.populate(args[1]);
                }
                assert!(
                    cmd == XENMEM_get_sharing_freed_pages || cmd == XENMEM_get_sharing_shared_pages
                );
                self.sharing.map_or(Ok(0), Err)
            }
            HYPERVISOR_event_channel_op | HYPERVISOR_hvm_op | HYPERVISOR_sched_op => {
                let cmd = args[0] as u32;
                self.log.push((op, cmd));
                self.injected(op, cmd)?;
                match (op, cmd) {
                    (HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound) => {
                        self.alloc_unbound(args[1])
                    }
                    (HYPERVISOR_hvm_op, HVMOP_set_param) => self.set_param(args[1]),
                    (HYPERVISOR_sched_op, SCHEDOP_remote_shutdown) => self.remote_shutdown(args[1]),
                    _ => Err(ENOSYS),
                }
            }
            _ => Err(ENOSYS),
        }
    }
}

/// Mapping a frame that is not populated fails, as with privcmd.
impl GuestMem for FakeXen {
    fn write_guest(&mut self, domid: u32, gfn: u64, data: &[u8]) -> Result<(), Errno> {
        let domid = domid as u16;
        self.writes.push((domid, gfn, data.len()));
        for (i, chunk) in data.chunks(4096 * xen_sys::FOREIGN_BATCH_MAX).enumerate() {
            let first = gfn + (i * xen_sys::FOREIGN_BATCH_MAX) as u64;
            let pages = chunk.len().div_ceil(4096);
            self.map_batches.push(pages);
            for p in 0..pages {
                if !self.guest.contains_key(&(domid, first + p as u64)) {
                    return Err(EINVAL);
                }
            }
            for (p, bytes) in chunk.chunks(4096).enumerate() {
                let page = self
                    .guest
                    .get_mut(&(domid, first + p as u64))
                    .expect("checked");
                page.resize(4096, 0);
                page[..bytes.len()].copy_from_slice(bytes);
            }
        }
        Ok(())
    }

    fn write_grant_table(&mut self, domid: u32, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let id = domid as u16;
        self.domain(id)?;
        let f = self.grants.entry(id).or_insert_with(|| vec![0; 4096]);
        f[offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }
}

impl FakeXen {
    /// What `write_grant_table` wrote, per domain.
    pub fn grant_frame(&self, domid: u16) -> Option<&Vec<u8>> {
        self.grants.get(&domid)
    }

    /// `len` bytes of `domid`'s memory at guest physical `addr`.
    pub fn peek(&self, domid: u16, addr: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| {
                let a = addr + i;
                let page = self.guest.get(&(domid, a >> 12));
                page.map_or(0xee, |p| p.get((a & 0xfff) as usize).copied().unwrap_or(0))
            })
            .collect()
    }
}

/// Connection ids of the fake xenstore: dom0's tools, and guest N at
/// `GUEST_CONN + N`.
const TOOLS_CONN: u64 = 1;
const GUEST_CONN: u64 = 1000;

/// xenstored in memory (the `xenstore` crate's engine), or none at all.
pub struct FakeXs {
    pub server: Server,
    pub unreachable: bool,
    pub events: VecDeque<(String, String)>,
    /// Every request: (type, tx, first string of the payload).
    pub log: Vec<(u32, Tx, String)>,
    req_id: u32,
}

impl FakeXs {
    pub fn new() -> FakeXs {
        FakeXs {
            server: Server::default(),
            unreachable: false,
            events: VecDeque::new(),
            log: Vec::new(),
            req_id: 0,
        }
    }

    /// A request from guest `domid`'s own connection.
    pub fn as_guest(&mut self, domid: u16, ty: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let msg = Message::new(ty, 1, 0, payload.to_vec());
        let out = self
            .server
            .handle(GUEST_CONN + u64::from(domid), domid, &msg);
        self.route(out, GUEST_CONN + u64::from(domid))
    }

    fn route(&mut self, out: Vec<(u64, Message)>, conn: u64) -> Result<Vec<u8>, XsError> {
        let mut reply = None;
        for (c, m) in out {
            if c == TOOLS_CONN && m.ty == XS_WATCH_EVENT {
                self.events.push_back(watch_event(&m));
            } else if c == conn && m.ty != XS_WATCH_EVENT {
                reply = Some(decode(&m));
            }
        }
        reply.expect("a reply")
    }
}

impl Xs for FakeXs {
    fn request(&mut self, ty: u32, tx: Tx, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        let first = payload.split(|&b| b == 0).next().unwrap_or_default();
        self.log
            .push((ty, tx, String::from_utf8_lossy(first).into_owned()));
        if self.unreachable {
            return Err(XsError::Unreachable);
        }
        self.req_id += 1;
        let msg = Message::new(ty, self.req_id, tx, payload.to_vec());
        let out = self.server.handle(TOOLS_CONN, 0, &msg);
        self.route(out, TOOLS_CONN)
    }

    fn wait_watch(&mut self, _timeout: Duration) -> Result<Option<(String, String)>, XsError> {
        if self.unreachable {
            return Err(XsError::Unreachable);
        }
        Ok(self.events.pop_front())
    }
}

/// A console whose steps are scripted; it ends with Escape.
pub struct FakeConsole {
    pub steps: VecDeque<Pump>,
}

impl ConsoleSession for FakeConsole {
    fn pump(&mut self, _timeout: Duration) -> std::io::Result<Pump> {
        Ok(self.steps.pop_front().unwrap_or(Pump::Escape))
    }
    fn reopen(&mut self, _tty: &str) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a guest does while xl sleeps.
pub type OnSleep = Box<dyn FnMut(&mut FakeXs, Duration)>;

/// Linux's xen-blkback and xen-netback as xenstore shows them, for
/// [`FakeHost::on_sleep`]: a new backend (state 1) goes to InitWait (2),
/// one told to close (5) closes (6) (its frontend, if any, went along).
pub fn fake_kernel(xs: &mut FakeXs, _: Duration) {
    for kind in ["vbd", "vif"] {
        let base = format!("/local/domain/0/backend/{kind}");
        for dom in xs.directory(0, &base).unwrap_or_default() {
            for dev in xs
                .directory(0, &format!("{base}/{dom}"))
                .unwrap_or_default()
            {
                let st = format!("{base}/{dom}/{dev}/state");
                let _ = match xs.read(0, &st).as_deref() {
                    Ok("1") => xs.write(0, &st, "2"),
                    Ok("5") => xs.write(0, &st, "6"),
                    _ => Ok(()),
                };
            }
        }
    }
}

/// A network interface of the fake host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeNetif {
    pub mtu: u32,
    pub bridge: bool,
    pub up: bool,
    /// The bridge it is a port of.
    pub master: Option<String>,
}

/// The fake host: a clock that moves only when xl sleeps, files in memory,
/// the in-memory xenstore, and a record of what xl printed and started.
pub struct FakeHost {
    pub xs: FakeXs,
    pub clock: Duration,
    pub files: BTreeMap<String, Vec<u8>>,
    /// What went to stderr.
    pub err: String,
    pub monitors: Vec<MonitorSpec>,
    pub consoles: Vec<String>,
    pub console_steps: Vec<Pump>,
    pub on_sleep: Option<OnSleep>,
    pub slept: Duration,
    /// The domid history: (seconds, domid).
    pub history: Vec<(u64, u32)>,
    /// `stat` answers beyond `files` (which are regular files).
    pub stats: BTreeMap<String, FileInfo>,
    /// Bound loop devices: number -> (file, read-only).
    pub loops: BTreeMap<u32, (String, bool)>,
    /// `loop_detach` answers EBUSY this many times first.
    pub loop_busy: u32,
    /// Network interfaces (netback's `vifD.N` exist while their backend
    /// is between InitWait and Closing, and are added here once touched).
    pub netifs: BTreeMap<String, FakeNetif>,
    /// Every hotplug lock taken.
    pub locks: Vec<String>,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        FakeHost {
            xs: FakeXs::new(),
            clock: Duration::from_secs(1_700_000_000),
            files: BTreeMap::new(),
            err: String::new(),
            monitors: Vec::new(),
            consoles: Vec::new(),
            console_steps: Vec::new(),
            on_sleep: None,
            slept: Duration::ZERO,
            history: Vec::new(),
            stats: BTreeMap::new(),
            loops: BTreeMap::new(),
            loop_busy: 0,
            netifs: BTreeMap::new(),
            locks: Vec::new(),
        }
    }

    /// A bridge (`brctl addbr`).
    pub fn add_bridge(&mut self, name: &str, mtu: u32) {
        let b = FakeNetif {
            mtu,
            bridge: true,
            up: true,
            master: None,
        };
        self.netifs.insert(name.into(), b);
    }

    /// A block device node.
    pub fn add_blockdev(&mut self, path: &str, major: u32, minor: u32) {
        let i = FileInfo {
            kind: FileKind::Block,
            dev: 5,
            ino: 1000 + u64::from(minor),
            rdev: (major, minor),
            mode: 0o660,
        };
        self.stats.insert(path.into(), i);
    }

    /// Whether netback would have made interface `name` by now.
    fn netback_has(&mut self, name: &str) -> bool {
        let Some((d, n)) = name.strip_prefix("vif").and_then(|r| r.split_once('.')) else {
            return false;
        };
        let st = format!("/local/domain/0/backend/vif/{d}/{n}/state");
        matches!(self.xs.read(0, &st).as_deref(), Ok("2" | "3" | "4" | "5"))
    }

    fn netif(&mut self, name: &str) -> std::io::Result<&mut FakeNetif> {
        if !self.netifs.contains_key(name) && self.netback_has(name) {
            let v = FakeNetif {
                mtu: 1500,
                bridge: false,
                up: false,
                master: None,
            };
            self.netifs.insert(name.into(), v);
        }
        self.netifs
            .get_mut(name)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV))
    }
}

impl Host for FakeHost {
    fn uname(&mut self) -> Option<NodeInfo> {
        Some(NodeInfo {
            host: "(none)".into(),
            release: "6.1.0-18-cloud-arm64".into(),
            version: "#1 SMP Debian 6.1.76-1 (2024-02-01)".into(),
            machine: "aarch64".into(),
        })
    }
    fn dom0_uptime(&mut self) -> Option<u64> {
        Some(3723)
    }
    fn clock(&mut self) -> Duration {
        self.clock
    }
    fn xs(&mut self) -> &mut dyn Xs {
        &mut self.xs
    }
    fn read_file(&mut self, path: &str) -> std::io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))
    }
    fn random(&mut self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8)
                .wrapping_mul(37)
                .wrapping_add(self.monitors.len() as u8);
        }
    }
    fn sleep(&mut self, d: Duration) {
        self.clock += d;
        self.slept += d;
        if let Some(f) = self.on_sleep.as_mut() {
            f(&mut self.xs, d);
        }
    }
    fn eprint(&mut self, msg: &str) {
        self.err.push_str(msg);
    }
    fn spawn_monitor(&mut self, m: &MonitorSpec) -> Result<u32, String> {
        self.monitors.push(m.clone());
        Ok(4242)
    }
    fn open_console(&mut self, tty: &str) -> std::io::Result<Box<dyn ConsoleSession>> {
        self.consoles.push(tty.to_string());
        let steps = std::mem::take(&mut self.console_steps).into();
        Ok(Box::new(FakeConsole { steps }))
    }
    fn pid(&mut self) -> u32 {
        777
    }
    fn recent_domids(&mut self) -> Vec<u32> {
        let now = self.clock.as_secs();
        self.history
            .iter()
            .filter(|&&(t, _)| now - t < 60)
            .map(|e| e.1)
            .collect()
    }
    fn mark_domid_recent(&mut self, domid: u32) {
        let now = self.clock.as_secs();
        self.history.push((now, domid));
    }
    fn stat(&mut self, path: &str) -> std::io::Result<FileInfo> {
        if let Some(i) = self.stats.get(path) {
            return Ok(*i);
        }
        if let Some(n) = path.strip_prefix("/dev/loop").and_then(|n| n.parse().ok()) {
            if self.loops.contains_key(&n) {
                let mut i = FileInfo {
                    kind: FileKind::Block,
                    dev: 5,
                    ino: 500 + u64::from(n),
                    rdev: (7, n),
                    mode: 0o660,
                };
                i.rdev = (7, n);
                return Ok(i);
            }
        }
        if !self.files.contains_key(path) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        }
        // An inode number of its own (FNV-1a of the path).
        let ino = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
            (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
        });
        Ok(FileInfo {
            kind: FileKind::Regular,
            dev: 0x801,
            ino,
            rdev: (0, 0),
            mode: 0o644,
        })
    }
    fn loop_attach(&mut self, file: &str, read_only: bool) -> std::io::Result<String> {
        if self.stat(file)?.kind != FileKind::Regular {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let n = (0u32..)
            .find(|n| !self.loops.contains_key(n))
            .expect("free");
        self.loops.insert(n, (file.to_string(), read_only));
        Ok(format!("/dev/loop{n}"))
    }
    fn loop_detach(&mut self, dev: &str) -> std::io::Result<()> {
        let n: u32 = dev
            .strip_prefix("/dev/loop")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))?;
        if self.loop_busy > 0 {
            self.loop_busy -= 1;
            return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
        }
        self.loops.remove(&n);
        Ok(())
    }
    fn netif_exists(&mut self, name: &str) -> bool {
        self.netif(name).is_ok()
    }
    fn netif_mtu(&mut self, name: &str) -> std::io::Result<u32> {
        Ok(self.netif(name)?.mtu)
    }
    fn netif_up(&mut self, name: &str, mtu: Option<u32>) -> std::io::Result<()> {
        let i = self.netif(name)?;
        if let Some(m) = mtu {
            i.mtu = m;
        }
        i.up = true;
        Ok(())
    }
    fn bridge_add(&mut self, bridge: &str, name: &str) -> std::io::Result<()> {
        if !self.netif(bridge)?.bridge {
            return Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        let i = self.netif(name)?;
        if i.master.is_some() {
            return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
        }
        i.master = Some(bridge.to_string());
        Ok(())
    }
    fn lock(&mut self, name: &str, _limit: Duration) -> Option<Box<dyn std::any::Any>> {
        self.locks.push(name.to_string());
        Some(Box::new(()))
    }
    fn bridge_remove(&mut self, bridge: &str, name: &str) -> std::io::Result<()> {
        let i = self.netif(name)?;
        if i.master.as_deref() != Some(bridge) {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        i.master = None;
        Ok(())
    }
}
