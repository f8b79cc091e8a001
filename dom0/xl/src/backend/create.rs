//! The domain builder of `xl create`: docs/domains.md "Creating a domain",
//! steps 1 to 10, with the hypercalls libxl and libxenguest issue for an
//! arm64 PVH guest. Everything that can be checked before the domain exists
//! (kernel, ramdisk, memory layout, name) is; a failure after
//! `createdomain` destroys the half-built domain.
//!
//! Besides the documented steps, it makes the calls Xen 4.17 needs and
//! libxl makes (Ferrovisor accepts them): `max_vcpus` right after
//! `createdomain` (Xen allocates the vCPUs there), `set_address_size` 64
//! and `set_paging_mempool_size` before any memory (a new Arm domain is
//! AArch32 with a 16-page stage-2 pool until told otherwise), and the
//! seeding of grant entries 0 and 1 through `XENMEM_acquire_resource`
//! before xenstore learns of the domain (C xenstored maps the ring only by
//! grant). Like libxl, it avoids domain ids destroyed in the last minute.
//! The PV disks and vifs (`super::devices`) are added once xenstore knows
//! the domain, before it is unpaused; their images are checked first.

use xen_abi::arch_arm::*;
use xen_abi::domctl::*;
use xen_abi::hvm_params::*;
use xen_abi::version::XENVER_version;

use super::xc;
use super::xencall::{Errno, GuestMem, Xencall};
use super::xenstore::{Tx, Xs, XsError};
use super::{strerror, Backend, Host};
use crate::build::dtb::{self, DtbParams};
use crate::build::image;
use crate::build::layout::{self, extents, Layout, Plan, Region};
use crate::build::xsents::{self, NewDomain, XsOp, CONSOLE_GFN, STORE_GFN};
use crate::build::{PAGE_SHIFT, PAGE_SIZE};
use crate::domain::DomainConfig;
use crate::format::format_uuid;

/// `createdomain`'s `max_evtchn_port` (libxl's default `event_channels`).
pub const MAX_EVTCHN_PORT: u32 = 1023;
/// `createdomain`'s `max_grant_frames`.
pub const MAX_GRANT_FRAMES: i32 = 64;
/// `createdomain`'s `max_maptrack_frames`.
pub const MAX_MAPTRACK_FRAMES: i32 = 1024;
/// `createdomain`'s `grant_opts`: grant tables up to version 1 (Xen 4.17
/// refuses version 0; Arm has only v1).
pub const GRANT_OPTS: u32 = 1;
/// KiB `max_mem` allows above `maxmem` (`LIBXL_MAXMEM_CONSTANT`).
pub const MAXMEM_SLACK_KB: u64 = 1024;
/// libxl's `EXTRA_DEFAULT_PAGING_MEM_MB` on Arm.
pub const EXTRA_PAGING_MEM_MB: u64 = 128;

/// libxl's `shadow_memkb` for an Arm guest with HAP
/// (`libxl__get_required_paging_memory`): 1 MiB per vCPU, 4 KiB per MiB
/// of RAM, and 512 KiB for extended regions.
pub fn paging_memkb(max_memkb: u64, max_vcpus: u32) -> u64 {
    4 * (256 * u64::from(max_vcpus) + max_memkb / 1024 + EXTRA_PAGING_MEM_MB)
}

/// Extents per `populate_physmap` call.
pub const POPULATE_BATCH: usize = 512;
/// Frames per `cacheflush` domctl.
pub const FLUSH_CHUNK: u64 = 1024;
/// Tries of a xenstore transaction that keeps conflicting.
pub const XS_TRIES: usize = 16;
/// Bytes of `/chosen/rng-seed`.
pub const RNG_SEED_LEN: usize = 128;

/// The files and placement, read and checked before any hypercall.
struct Images {
    kernel: Vec<u8>,
    ramdisk: Option<Vec<u8>>,
    plan: Plan,
    /// The disks, checked against dom0.
    disks: Vec<super::devices::CheckedDisk>,
}

/// `libxl: error: Domain N:<what>: <strerror>`.
fn fail(domid: u32, what: impl std::fmt::Display, e: Errno) -> String {
    format!("libxl: error: Domain {domid}:{what}: {}", strerror(e))
}

fn xs_fail(domid: u32, what: &str, e: &XsError) -> String {
    format!("libxl: error: Domain {domid}:{what}: {e}")
}

/// A fresh random (version 4) UUID, as `libxl_uuid_generate`.
pub fn new_uuid(bytes: [u8; 16]) -> [u8; 16] {
    let mut u = bytes;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The `createdomain` payload for `cfg` (step 1).
pub fn create_config(cfg: &DomainConfig, handle: [u8; 16]) -> XenDomctlCreatedomain {
    XenDomctlCreatedomain {
        handle,
        flags: XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap,
        max_vcpus: cfg.max_vcpus,
        max_evtchn_port: MAX_EVTCHN_PORT,
        max_grant_frames: MAX_GRANT_FRAMES,
        max_maptrack_frames: MAX_MAPTRACK_FRAMES,
        grant_opts: GRANT_OPTS,
        arch: XenArchDomainconfig {
            gic_version: XEN_DOMCTL_CONFIG_GIC_NATIVE,
            nr_spis: 0,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// vCPU 0's boot state (step 8): Linux's arm64 boot protocol, x0 = DTB.
pub fn boot_context(entry: u64, dtb: u64) -> VcpuGuestContext {
    let mut c = VcpuGuestContext {
        flags: VGCF_online,
        sctlr: SCTLR_GUEST_INIT,
        ..Default::default()
    };
    c.user_regs.pc64 = entry;
    c.user_regs.x[0] = dtb;
    c.user_regs.cpsr = PSR_GUEST64_INIT.into();
    c
}

/// Grant entries 0 and 1 (`GNTTAB_RESERVED_CONSOLE`, `_XENSTORE`) as
/// libxenguest's `xc_dom_gnttab_seed` writes them: dom0 may map the console
/// and xenstore rings (C xenstored 4.17 maps the xenstore ring only so).
/// Each `grant_entry_v1` is {flags u16, domid u16, frame u32}.
pub fn reserved_grants() -> [u8; 16] {
    let mut g = [0u8; 16];
    for (i, gfn) in [CONSOLE_GFN, STORE_GFN].into_iter().enumerate() {
        let e = &mut g[i * 8..i * 8 + 8];
        e[0..2].copy_from_slice(&GTF_PERMIT_ACCESS.to_le_bytes());
        e[2..4].copy_from_slice(&0u16.to_le_bytes());
        e[4..8].copy_from_slice(&(gfn as u32).to_le_bytes());
    }
    g
}

/// `GTF_permit_access`.
const GTF_PERMIT_ACCESS: u16 = 1;

/// The magic pages: console, xenstore, and two libxl reserves.
fn magic() -> Region {
    Region {
        addr: GUEST_MAGIC_BASE,
        len: NR_MAGIC_PAGES * PAGE_SIZE,
    }
}

/// Applies `ops` in one transaction, retrying while it conflicts.
pub fn write_entries(xs: &mut dyn Xs, ops: &[XsOp]) -> Result<(), XsError> {
    in_transaction(xs, |xs, t| ops.iter().try_for_each(|op| apply(xs, t, op)))
}

/// Runs `f` in a transaction until the commit does not hit `EAGAIN`.
pub fn in_transaction(
    xs: &mut dyn Xs,
    mut f: impl FnMut(&mut dyn Xs, Tx) -> Result<(), XsError>,
) -> Result<(), XsError> {
    for _ in 0..XS_TRIES {
        let t = xs.transaction_start()?;
        if let Err(e) = f(xs, t) {
            let _ = xs.transaction_end(t, false);
            return Err(e);
        }
        match xs.transaction_end(t, true) {
            Err(e) if e.is("EAGAIN") => continue,
            r => return r,
        }
    }
    Err(XsError::Error("EAGAIN".into()))
}

/// One operation inside transaction `t`.
pub fn apply(xs: &mut dyn Xs, t: Tx, op: &XsOp) -> Result<(), XsError> {
    match op {
        XsOp::Rm(p) => xs.rm(t, p),
        XsOp::Mkdir(p, perms) => {
            xs.mkdir(t, p)?;
            xs.set_perms(t, p, perms)
        }
        XsOp::Write(p, v) => xs.write(t, p, v),
        XsOp::WritePerms(p, v, perms) => {
            xs.write(t, p, v)?;
            xs.set_perms(t, p, perms)
        }
    }
}

impl<X: Xencall + GuestMem, H: Host> Backend<X, H> {
    /// Builds `cfg` and starts it unless `paused`; returns its id. On
    /// failure returns xl's messages (the domain, if it was created, is
    /// destroyed).
    pub fn build(&mut self, cfg: &DomainConfig, paused: bool) -> Result<u32, String> {
        self.build_as(cfg, paused, None)
    }

    /// [`Backend::build`] with the UUID of the domain being restarted (a
    /// fresh one if `None`), as xl keeps it across reboots.
    pub fn build_as(
        &mut self,
        cfg: &DomainConfig,
        paused: bool,
        uuid: Option<[u8; 16]>,
    ) -> Result<u32, String> {
        let img = self.load_images(cfg)?;
        self.check_name(&cfg.name)?;
        let uuid = uuid.unwrap_or_else(|| {
            let mut raw = [0u8; 16];
            self.host.random(&mut raw);
            new_uuid(raw)
        });
        let (domid, created) = self.create_empty(cfg, uuid)?;
        match self.construct(domid, cfg, &img, &created, paused) {
            Ok(()) => Ok(domid),
            Err(e) => {
                let mut msg = e;
                if let Err(t) = self.teardown(domid) {
                    msg = format!("{msg}\n{t}");
                }
                Err(format!(
                    "{msg}\nlibxl: error: Domain {domid}:cannot build the domain; it was destroyed"
                ))
            }
        }
    }

    fn read_image(&mut self, what: &str, path: &str) -> Result<Vec<u8>, String> {
        self.host.read_file(path).map_err(|e| {
            let e = e.raw_os_error().map_or(e.to_string(), strerror);
            format!("libxl: error: cannot read {what} {path}: {e}")
        })
    }

    fn load_images(&mut self, cfg: &DomainConfig) -> Result<Images, String> {
        let Some(kpath) = cfg.kernel.as_deref() else {
            return Err(format!(
                "libxl: error: no kernel given for domain {}: set `kernel' in its config",
                cfg.name
            ));
        };
        let kernel = self.read_image("kernel", kpath)?;
        let header =
            image::parse(&kernel).map_err(|e| format!("libxl: error: kernel {kpath} {e}"))?;
        let ramdisk = match cfg.ramdisk.as_deref() {
            Some(p) => Some(self.read_image("ramdisk", p)?),
            None => None,
        };
        let layout_err = |e: layout::LayoutError| format!("libxl: error: domain {}: {e}", cfg.name);
        let ram = layout::ram(cfg.target_memkb).map_err(layout_err)?;
        let rd_len = ramdisk.as_ref().map(|r| r.len() as u64);
        let plan = layout::plan(ram, &header, kernel.len() as u64, rd_len).map_err(layout_err)?;
        let disks = self.check_disks(cfg)?;
        let img = Images {
            kernel,
            ramdisk,
            plan,
            disks,
        };
        // The device tree with a clock frequency is as large as it gets: if
        // that fits, the real one will.
        let probe = self.device_tree(cfg, &img, 1)?;
        img.plan.with_dtb(probe.len() as u64).map_err(layout_err)?;
        Ok(img)
    }

    /// libxl refuses a second domain of the same name.
    fn check_name(&mut self, name: &str) -> Result<(), String> {
        use crate::run::Hypervisor;
        let doms = self.list_domains().map_err(crate::run::HvError::message)?;
        if doms.iter().any(|d| d.name.as_deref() == Some(name)) {
            return Err(format!(
                "libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain with name \"{name}\" already exists."
            ));
        }
        Ok(())
    }

    /// Step 1: the empty, paused domain. It must have a GICv3: the device
    /// tree describes no other.
    fn create_empty(
        &mut self,
        cfg: &DomainConfig,
        uuid: [u8; 16],
    ) -> Result<(u32, XenDomctlCreatedomain), String> {
        let (domid, out) = self.fresh_domain(&create_config(cfg, uuid))?;
        if out.arch.gic_version != XEN_DOMCTL_CONFIG_GIC_V3 {
            let _ = self.teardown(domid);
            return Err(format!(
                "libxl: error: Domain {domid}:the hypervisor gave the domain GIC version {} \
                 (only GICv3 guests are supported); the domain was destroyed",
                out.arch.gic_version
            ));
        }
        Ok((domid, out))
    }

    /// `createdomain` letting the hypervisor pick the id (`domain = 0`);
    /// as libxl, an id destroyed less than a minute ago is not taken: that
    /// domain is destroyed again and the next ids are asked for by number.
    fn fresh_domain(
        &mut self,
        c: &XenDomctlCreatedomain,
    ) -> Result<(u32, XenDomctlCreatedomain), String> {
        let recent = self.host.recent_domids();
        let failed = |e| {
            format!(
                "libxl: error: libxl_create.c:708:libxl__domain_make: domain creation fail: {}",
                strerror(e)
            )
        };
        let x = self.xc().map_err(crate::run::HvError::message)?;
        let (domid, out) = xc::createdomain(x, 0, c).map_err(failed)?;
        if !recent.contains(&domid) {
            return Ok((domid, out));
        }
        xc::domctl_noarg(x, XEN_DOMCTL_destroydomain, domid).map_err(failed)?;
        let first_free = (domid + 1..u32::from(xen_abi::xen::DOMID_FIRST_RESERVED))
            .filter(|d| !recent.contains(d));
        for want in first_free {
            match xc::createdomain(x, want, c) {
                Err(xen_abi::errno::EEXIST) => continue,
                r => return r.map_err(failed),
            }
        }
        Err(failed(xen_abi::errno::ENOMEM))
    }

    /// Steps 2 to 10 on the new domain.
    fn construct(
        &mut self,
        domid: u32,
        cfg: &DomainConfig,
        img: &Images,
        created: &XenDomctlCreatedomain,
        paused: bool,
    ) -> Result<(), String> {
        let x = self.xc().map_err(crate::run::HvError::message)?;
        xc::max_vcpus(x, domid, cfg.max_vcpus)
            .map_err(|e| fail(domid, "Couldn't set max vcpu count", e))?;
        xc::max_mem(x, domid, cfg.max_memkb + MAXMEM_SLACK_KB)
            .map_err(|e| fail(domid, "Couldn't set max memory", e))?;
        self.arch_setup(domid, cfg)?;
        self.populate(domid, img.plan.ram)?;
        self.populate(domid, magic())?;
        let (console_port, store_port) = self.ports(domid)?;
        let layout = self.load(domid, cfg, img, created.arch.clock_frequency)?;
        self.flush(domid, &layout)?;
        let ctx = boot_context(layout.plan.kernel.addr, layout.dtb.addr);
        let x = self.xc().map_err(crate::run::HvError::message)?;
        xc::setvcpucontext(x, domid, 0, &ctx)
            .map_err(|e| fail(domid, "vcpu_arm64: SETVCPUCONTEXT failed", e))?;
        x.write_grant_table(domid, 0, &reserved_grants())
            .map_err(|e| {
                fail(
                    domid,
                    "xc_dom_gnttab_seed: failed to acquire the grant table",
                    e,
                )
            })?;
        self.announce(domid, cfg, &created.handle, console_port, store_port)?;
        self.attach_devices(domid, cfg, &img.disks)?;
        if !paused {
            let x = self.xc().map_err(crate::run::HvError::message)?;
            xc::domctl_noarg(x, XEN_DOMCTL_unpausedomain, domid)
                .map_err(|e| fail(domid, "Unpausing domain", e))?;
        }
        Ok(())
    }

    /// What Xen 4.17 needs before any memory (libxl and libxenguest do it
    /// at this point): the domain made AArch64, and its stage-2 table pool
    /// sized. Hypervisors without these calls (`ENOSYS`) do not need them.
    fn arch_setup(&mut self, domid: u32, cfg: &DomainConfig) -> Result<(), String> {
        let tolerate = |r: Result<(), Errno>| match r {
            Err(xen_abi::errno::ENOSYS) => Ok(()),
            r => r,
        };
        let x = self.xc().map_err(crate::run::HvError::message)?;
        tolerate(xc::set_address_size(x, domid, 64))
            .map_err(|e| fail(domid, "set_mode: guest xen-3.0-aarch64, address size 64", e))?;
        let kb = paging_memkb(cfg.max_memkb, cfg.max_vcpus);
        tolerate(xc::set_paging_mempool_size(x, domid, kb << 10)).map_err(|e| {
            fail(
                domid,
                format_args!("Failed to set paging mempool size to {kb}kB"),
                e,
            )
        })
    }

    /// Step 3: `region` populated, 2 MiB extents where aligned.
    fn populate(&mut self, domid: u32, region: Region) -> Result<(), String> {
        let x = self.xc().map_err(crate::run::HvError::message)?;
        for (order, starts) in extents(region.gfn(), region.pages()) {
            for batch in starts.chunks(POPULATE_BATCH) {
                let done = xc::populate_physmap(x, domid, order, batch).map_err(|e| {
                    fail(
                        domid,
                        format_args!("populate_physmap (gfn {:#x}, order {order})", batch[0]),
                        e,
                    )
                })?;
                if done < batch.len() {
                    return Err(format!(
                        "libxl: error: Domain {domid}:populate_physmap (gfn {:#x}, order {order}): \
                         only {done} of {} extents populated: Cannot allocate memory",
                        batch[0],
                        batch.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Steps 4 and 5: the console and xenstore ports, and the four HVM
    /// params that tell the guest where its rings are.
    fn ports(&mut self, domid: u32) -> Result<(u32, u32), String> {
        let x = self.xc().map_err(crate::run::HvError::message)?;
        let mut alloc = |what| {
            xc::evtchn_alloc_unbound(x, domid, 0)
                .map_err(|e| fail(domid, format_args!("alloc_unbound ({what})"), e))
        };
        let console = alloc("console")?;
        let store = alloc("xenstore")?;
        for (index, value) in [
            (HVM_PARAM_CONSOLE_PFN, CONSOLE_GFN),
            (HVM_PARAM_CONSOLE_EVTCHN, u64::from(console)),
            (HVM_PARAM_STORE_PFN, STORE_GFN),
            (HVM_PARAM_STORE_EVTCHN, u64::from(store)),
        ] {
            xc::hvm_set_param(x, domid, index, value)
                .map_err(|e| fail(domid, format_args!("HVMOP_set_param {index}"), e))?;
        }
        Ok((console, store))
    }

    /// The device tree for the placement in `img`.
    fn device_tree(
        &mut self,
        cfg: &DomainConfig,
        img: &Images,
        clock_frequency: u32,
    ) -> Result<Vec<u8>, String> {
        let x = self.xc().map_err(crate::run::HvError::message)?;
        let v = xc::version_noarg(x, XENVER_version).unwrap_or((4 << 16) | 17);
        let mut seed = [0u8; RNG_SEED_LEN];
        self.host.random(&mut seed);
        let initrd = img.plan.ramdisk.map(|r| (r.addr, r.end()));
        let p = DtbParams {
            xen_version: ((v >> 16) as u32, (v & 0xffff) as u32),
            vcpus: cfg.max_vcpus,
            ram: (img.plan.ram.addr, img.plan.ram.len),
            cmdline: cfg.cmdline.as_deref(),
            initrd,
            rng_seed: &seed,
            clock_frequency,
        };
        dtb::build(&p).map_err(|e| format!("libxl: error: FDT: {e}"))
    }

    /// Step 6: kernel, ramdisk, device tree and zeroed magic pages written
    /// through foreign mappings.
    fn load(
        &mut self,
        domid: u32,
        cfg: &DomainConfig,
        img: &Images,
        clock_frequency: u32,
    ) -> Result<Layout, String> {
        let blob = self.device_tree(cfg, img, clock_frequency)?;
        let layout = img
            .plan
            .with_dtb(blob.len() as u64)
            .map_err(|e| format!("libxl: error: Domain {domid}:{e}"))?;
        let mut writes: Vec<(&str, u64, &[u8])> =
            vec![("kernel", layout.plan.kernel.addr, &img.kernel)];
        if let (Some(r), Some(data)) = (layout.plan.ramdisk, img.ramdisk.as_deref()) {
            writes.push(("ramdisk", r.addr, data));
        }
        writes.push(("device tree", layout.dtb.addr, &blob));
        let zeros = vec![0u8; magic().len as usize];
        writes.push(("magic pages", GUEST_MAGIC_BASE, &zeros));
        let x = self.xc().map_err(crate::run::HvError::message)?;
        for (what, addr, data) in writes {
            if addr % PAGE_SIZE != 0 {
                return Err(format!(
                    "libxl: error: Domain {domid}:{what} at {addr:#x} is not page aligned"
                ));
            }
            x.write_guest(domid, addr >> PAGE_SHIFT, data)
                .map_err(|e| fail(domid, format_args!("loading the {what} at {addr:#x}"), e))?;
        }
        Ok(layout)
    }

    /// Step 7: clean what was written to the point of coherency.
    fn flush(&mut self, domid: u32, layout: &Layout) -> Result<(), String> {
        let x = self.xc().map_err(crate::run::HvError::message)?;
        let mut regions = layout.loaded();
        regions.push(magic());
        for r in regions.iter().filter(|r| r.len > 0) {
            let (first, end) = (r.gfn(), r.gfn() + r.pages());
            let mut pfn = first;
            while pfn < end {
                let n = FLUSH_CHUNK.min(end - pfn);
                xc::cacheflush(x, domid, pfn, n)
                    .map_err(|e| fail(domid, format_args!("cacheflush of gfn {pfn:#x}+{n}"), e))?;
                pfn += n;
            }
        }
        Ok(())
    }

    /// Step 9: the xenstore entries, then `XS_INTRODUCE`.
    fn announce(
        &mut self,
        domid: u32,
        cfg: &DomainConfig,
        handle: &[u8; 16],
        console_port: u32,
        store_port: u32,
    ) -> Result<(), String> {
        let t = self.host.clock();
        let d = NewDomain {
            domid,
            config: cfg,
            uuid: format_uuid(handle),
            console_port,
            store_port,
            start_time: format!("{}.{:02}", t.as_secs(), t.subsec_millis() / 10),
        };
        let ops = xsents::entries(&d);
        let xs = self.host.xs();
        write_entries(xs, &ops)
            .map_err(|e| xs_fail(domid, "writing the domain's xenstore entries", &e))?;
        xs.introduce(domid, STORE_GFN, store_port)
            .map_err(|e| xs_fail(domid, "xs_introduce_domain", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = new_uuid([0xff; 16]);
        assert_eq!(u[6] >> 4, 4);
        assert_eq!(u[8] >> 6, 2);
        assert_eq!(format_uuid(&u), "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    #[test]
    fn paging_pool_as_libxl() {
        // 1 vCPU, 128 MiB: 4 * (256 + 128 + 128) KiB.
        assert_eq!(paging_memkb(128 * 1024, 1), 2048);
        assert_eq!(paging_memkb(512 * 1024, 4), 4 * (1024 + 512 + 128));
    }

    #[test]
    fn grant_entries() {
        let g = reserved_grants();
        assert_eq!(g[..8], [1, 0, 0, 0, 0x00, 0x90, 0x03, 0]);
        assert_eq!(g[8..], [1, 0, 0, 0, 0x01, 0x90, 0x03, 0]);
    }

    #[test]
    fn boot_state() {
        let c = boot_context(0x4008_0000, 0x4260_0000);
        assert_eq!(c.flags, VGCF_online);
        assert_eq!(c.user_regs.pc64, 0x4008_0000);
        assert_eq!(c.user_regs.x[0], 0x4260_0000);
        assert_eq!(c.user_regs.x[1..4], [0, 0, 0]);
        assert_eq!(c.user_regs.cpsr, 0x1c5);
        assert_eq!(c.sctlr, 0x00c5_0078);
        assert_eq!((c.ttbr0, c.ttbr1, c.ttbcr), (0, 0, 0));
    }
}
