//! Building the hardware domain from the boot modules, as Xen does: RAM of
//! `dom0_mem` mapped 1:1 (IPA == PA), the kernel at its bank's base +
//! text_offset, initrd and DTB 128 MiB above it, a device tree derived from
//! the host's, every other device passed through, GIC and console emulated.

use crate::domain::{Domain, Power, Vcpu, Window};
use crate::hw::{phys, sysreg};
use crate::platform::HeapTables;
use alloc::vec::Vec;
use hv_arm::stage2::{self, Access, MemType, Stage2};
use hv_arm::vgic::{Vgic, VgicConfig};
use hv_arm::vpl011::Vpl011;
use hv_core::bootinfo::BootInfo;
use hv_core::mem::{pick_region, Range};
use spin::Mutex;

const MIB: u64 = 1 << 20;
const DEFAULT_DOM0_MEM: u64 = 512 * MIB;
const GICR_FRAME: u64 = 0x20000;

/// Why dom0 could not be built (printed with `{:?}` on the way to a panic).
#[derive(Debug)]
#[allow(dead_code)] // fields are read by Debug only
pub enum BuildError {
    NoKernel,
    NoMemory(u64),
    BadKernel(&'static str),
    Dt(hv_core::dt::DtError),
    Stage2(stage2::Stage2Error),
    NoGic,
}

/// The arm64 Image header fields the loader needs.
struct ImageHeader {
    text_offset: u64,
    image_size: u64,
}

fn parse_image(k: &[u8]) -> Result<ImageHeader, BuildError> {
    if k.len() < 64 {
        return Err(BuildError::BadKernel("shorter than the Image header"));
    }
    if k[0] == 0x1f && k[1] == 0x8b {
        return Err(BuildError::BadKernel("gzip-compressed Image is not supported yet"));
    }
    if &k[0x38..0x3c] != b"ARM\x64" {
        return Err(BuildError::BadKernel("no arm64 Image magic"));
    }
    let le = |o: usize| u64::from_le_bytes(k[o..o + 8].try_into().unwrap_or([0; 8]));
    let (text_offset, image_size) = (le(8), le(16));
    // image_size 0: an old kernel; text_offset is then 0x80000 by convention.
    let (text_offset, image_size) = if image_size == 0 { (0x80000, k.len() as u64) } else { (text_offset, image_size) };
    if text_offset % 4096 != 0 || text_offset >= 2 * MIB * 16 {
        return Err(BuildError::BadKernel("bad text_offset"));
    }
    Ok(ImageHeader { text_offset, image_size: image_size.max(k.len() as u64) })
}

/// Round up to a power-of-two `a`, saturating at the top of the address space.
fn align_up(v: u64, a: u64) -> u64 {
    v.saturating_add(a - 1) & !(a - 1)
}

pub fn build(bi: &BootInfo, host_dtb: &[u8], dtb_pa: u64, nr_pcpus: usize) -> Result<Domain, BuildError> {
    let kernel = bi.kernel().ok_or(BuildError::NoKernel)?.range;
    // SAFETY: the module lies in RAM the bootloader loaded and that is
    // reserved from dom0's allocation below; nothing writes it during boot.
    let kbytes = unsafe { phys::slice(kernel.start, kernel.size as usize) };
    let hdr = parse_image(kbytes)?;

    // --- memory: one 1:1 bank, 2 MiB aligned, clear of everything in use.
    let cmd = &bi.cmdline;
    let size = align_up(cmd.dom0_mem.map(|m| m.resolve(DEFAULT_DOM0_MEM)).unwrap_or(DEFAULT_DOM0_MEM), 2 * MIB);
    if cmd.dom0_mem.is_none() {
        crate::log!(Warning, "dom0_mem not set: giving dom0 {} MiB", size / MIB);
    }
    let (img_start, img_end) = crate::boot::image_range();
    let mut reserved: Vec<Range> = Vec::new();
    reserved.push(Range::new(img_start & !(2 * MIB - 1), img_end - (img_start & !(2 * MIB - 1))));
    reserved.push(Range::new(dtb_pa, host_dtb.len() as u64));
    reserved.extend(bi.reserved.iter().copied());
    let ramdisk = bi.ramdisk().map(|m| m.range);

    // Prefer a bank that starts where the bootloader already put the
    // kernel (so it runs in place, and an initrd inside the bank stays
    // too); else any free bank, and copy.
    let in_place = in_place_bank(bi, &reserved, kernel, ramdisk, hdr.text_offset, hdr.image_size, size);
    let base = match in_place {
        Some(b) => b,
        None => {
            reserved.extend(bi.modules.iter().map(|m| m.range));
            pick_region(&bi.ram, &reserved, size, 2 * MIB).ok_or(BuildError::NoMemory(size))?
        }
    };
    let bank = Range::new(base, size);
    crate::log!(Info, "dom0: {} MiB of RAM at {:#x} (1:1){}", size / MIB, base, if in_place.is_some() { ", kernel in place" } else { "" });

    // --- kernel at base + text_offset; initrd and DTB above it.
    let kaddr = base + hdr.text_offset;
    let kend = kaddr.checked_add(hdr.image_size).filter(|e| *e <= base + size).ok_or(BuildError::NoMemory(hdr.image_size))?;
    let initrd_in_place = in_place.is_some() && ramdisk.is_some_and(|r| bank.contains_range(&r));
    let mut next = align_up(kend, 2 * MIB).max(base + 128 * MIB);
    let initrd = match ramdisk {
        Some(r) if initrd_in_place => {
            next = align_up(kend.max(r.start + r.size), 2 * MIB);
            Some(r)
        }
        Some(r) => {
            let at = next;
            next = at.checked_add(r.size).filter(|e| *e <= base + size).map(|e| align_up(e, 2 * MIB)).ok_or(BuildError::NoMemory(r.size))?;
            Some(Range::new(at, r.size))
        }
        None => None,
    };
    let nr_vcpus = cmd
        .dom0_max_vcpus
        .map(|v| v.resolve(nr_pcpus as u32, nr_pcpus as u32))
        .unwrap_or(nr_pcpus as u32)
        .clamp(1, nr_pcpus as u32) as usize;
    let gic = bi.gic.as_ref().ok_or(BuildError::NoGic)?;
    let uart = bi.uart.as_ref();
    let grant_window = Range::new(img_start, crate::xen::MAX_GRANT_FRAMES as u64 * 4096);
    let hide: Vec<&str> = Vec::new();
    let dt_cfg = hv_core::dt::Dom0DtConfig {
        host_dtb,
        mem_banks: core::slice::from_ref(&bank),
        nr_vcpus: nr_vcpus as u32,
        bootargs: bi.dom0_cmdline,
        initrd,
        gicr_size: nr_vcpus as u64 * GICR_FRAME,
        hide_paths: &hide,
        // As Xen: the grant-table window is host address space dom0 can
        // never own (the hypervisor image), the upcall the lowest free PPI.
        hypervisor: Some(hv_core::dt::HypervisorNode {
            grant_table: grant_window,
            extended: Vec::new(),
            evtchn_ppi_intid: crate::xen::EVTCHN_PPI,
        }),
    };
    let dtb = hv_core::dt::build_dom0_dtb(&dt_cfg).map_err(BuildError::Dt)?;
    let dtb_at = next;
    if dtb_at + dtb.len() as u64 > base + size {
        return Err(BuildError::NoMemory(dtb.len() as u64));
    }

    // SAFETY: [base, base + size) is RAM reserved for dom0 (disjoint from
    // the hypervisor and the host DTB; modules inside it are used in place,
    // and copies land clear of them), and dom0 has not started yet.
    unsafe {
        if in_place.is_none() {
            phys::copy_to(kaddr, kbytes);
        }
        if let (Some(dst), Some(src), false) = (initrd, ramdisk, initrd_in_place) {
            phys::copy_to(dst.start, phys::slice(src.start, src.size as usize));
        }
        phys::copy_to(dtb_at, &dtb);
    }
    crate::hw::cache::invalidate_icache();
    crate::log!(Info, "dom0: kernel {:#x}-{:#x}, initrd {:?}, dtb {:#x} ({} bytes), {} vCPUs",
        kaddr, kend, initrd.map(|r| (r.start, r.start + r.size)), dtb_at, dtb.len(), nr_vcpus);

    // --- stage-2: RAM, then every pass-through device; GIC and UART trap.
    let mut tables = HeapTables;
    let mut s2 = Stage2::new(&mut tables).map_err(BuildError::Stage2)?;
    s2.map(&mut tables, base, base, size, MemType::Normal, Access::ReadWrite).map_err(BuildError::Stage2)?;
    // Never pass through host RAM (a DT `reg` could name hypervisor memory)
    // or the hypervisor's UART (dom0 sees an emulated one at its address).
    let mut exclude: Vec<Range> = bi.ram.clone();
    if let Some(u) = uart {
        exclude.push(Range::new(u.base & !0xfff, 0x1000));
    }
    let pt = hv_core::dt::dom0_passthrough(&dtb, &exclude).map_err(BuildError::Dt)?;
    for r in &pt.mmio {
        s2.map(&mut tables, r.start, r.start, r.size, MemType::Device, Access::ReadWrite).map_err(BuildError::Stage2)?;
    }

    // --- vGIC with the host's SPI count; dom0's SPIs and the timer are HW-mapped.
    let lines = crate::hw::gicv3::lines();
    let nr_spis = (lines.saturating_sub(32) / 32 * 32).min(960);
    let vaff: Vec<u64> = (0..nr_vcpus).map(|i| hv_core::dt::vcpuid_to_vaffinity(i as u32)).collect();
    let mut vgic = Vgic::new(VgicConfig { nr_vcpus, nr_spis, vcpu_mpidr: vaff.clone() });
    vgic.map_hw(crate::irq::VTIMER_PPI, crate::irq::VTIMER_PPI);
    vgic.map_hw(crate::irq::PTIMER_PPI, crate::irq::PTIMER_PPI);
    let uart_intid = uart.and_then(|u| u.irq).filter(|i| i.is_spi()).map(|i| i.intid).unwrap_or(0);
    for &(intid, edge) in &pt.spis {
        if intid != uart_intid && intid < 32 + nr_spis {
            vgic.map_hw(intid, intid);
            crate::hw::gicv3::set_spi_edge(intid, edge);
        }
    }

    let vcpus = (0..nr_vcpus)
        .map(|i| Vcpu::new(i, vaff[i], if i == 0 { Power::Starting { entry: kaddr, ctx: dtb_at } } else { Power::Off }))
        .collect();
    let parange = (sysreg::id_aa64mmfr0_el1::read() & 0xf) as u8;
    let xen = crate::xen::XenDom::new(0, nr_vcpus, grant_window, 4095).ok_or(BuildError::NoMemory(4096))?;
    Ok(Domain {
        id: 0,
        vcpus,
        vgic: Mutex::new(vgic),
        gicd: Window { base: gic.dist.start, size: 0x10000 },
        gicr: Window { base: gic.redist[0].start, size: nr_vcpus as u64 * GICR_FRAME },
        vuart: Mutex::new(Vpl011::new()),
        uart: Window { base: uart.map(|u| u.base & !0xfff).unwrap_or(u64::MAX), size: 0x1000 },
        uart_intid,
        evtchn_ppi: crate::xen::EVTCHN_PPI,
        vmid: 1,
        vttbr: stage2::vttbr_el2(s2.root_pa(), 1),
        vtcr: stage2::vtcr_el2(parange),
        cntvoff: sysreg::cntpct_el0::read(),
        s2: Mutex::new(s2),
        ram: alloc::vec![bank],
        owned: Mutex::new(hv_core::p2m::OwnedMap::new()),
        max_pages: core::sync::atomic::AtomicU64::new(size / 4096),
        foreign: Mutex::new(alloc::collections::BTreeMap::new()),
        mapped_by_others: core::sync::atomic::AtomicUsize::new(0),
        pins: Mutex::new(alloc::collections::BTreeMap::new()),
        life: crate::domain::Life::new(0),
        hvm_params: Mutex::new([0; crate::domain::HVM_NR_PARAMS]),
        handle: Mutex::new([0; 16]),
        xen,
    })
}

/// The bank base that leaves the kernel module where it is (base =
/// module - text_offset, 2 MiB aligned), if that bank of `size` bytes is
/// RAM clear of `reserved`, and any ramdisk is either inside it (and clear
/// of the kernel's image_size) or wholly outside.
fn in_place_bank(bi: &BootInfo, reserved: &[Range], kernel: Range, ramdisk: Option<Range>, text_offset: u64, image_size: u64, size: u64) -> Option<u64> {
    let base = kernel.start.checked_sub(text_offset)?;
    if base % (2 * MIB) != 0 || text_offset.saturating_add(image_size) > size {
        return None;
    }
    let bank = Range::new(base, size);
    if !bi.ram.iter().any(|r| r.contains_range(&bank)) || reserved.iter().any(|r| r.overlaps(&bank)) {
        return None;
    }
    let kimg = Range::new(kernel.start, image_size);
    for m in &bi.modules {
        let r = m.range;
        let ok = r == kernel || !r.overlaps(&bank) || (Some(r) == ramdisk && bank.contains_range(&r) && !r.overlaps(&kimg));
        if !ok {
            return None;
        }
    }
    Some(base)
}
