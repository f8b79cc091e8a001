//! A fake hypervisor behind [`Xencall`] for host tests: buffers at made-up
//! addresses, and the hypercalls the backend issues answered from plain
//! data the way Xen 4.17 answers them. Every call first passes
//! [`check`], as with the real privcmd.

#![allow(non_upper_case_globals)]

use xen_abi::domctl::*;
use xen_abi::errno::*;
use xen_abi::memory::{XENMEM_get_sharing_freed_pages, XENMEM_get_sharing_shared_pages};
use xen_abi::sysctl::*;
use xen_abi::version::*;
use xen_abi::xen::{
    HYPERVISOR_domctl, HYPERVISOR_memory_op, HYPERVISOR_sysctl, HYPERVISOR_xen_version,
};
use zerocopy::{FromBytes, IntoBytes};

use super::abi::*;
use super::xc::{get, put};
use super::xencall::{check, Buf, Errno, Mem, Xencall};

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
        match op {
            HYPERVISOR_xen_version => self.xen_version(args[0] as u32, args[1]),
            HYPERVISOR_sysctl => self.sysctl(args[0]),
            HYPERVISOR_domctl => self.domctl(args[0]),
            HYPERVISOR_memory_op => {
                let cmd = args[0] as u32;
                self.log.push((op, cmd));
                assert!(
                    cmd == XENMEM_get_sharing_freed_pages || cmd == XENMEM_get_sharing_shared_pages
                );
                self.sharing.map_or(Ok(0), Err)
            }
            _ => Err(ENOSYS),
        }
    }
}
