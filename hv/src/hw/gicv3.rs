//! The physical GICv3: distributor set-up, per-CPU redistributor and CPU
//! interface, acknowledge / priority-drop / deactivate (EOImode = 1, so a
//! hardware-mapped virtual interrupt's guest EOI deactivates the physical
//! one), SGIs between physical CPUs, and pass-through SPI control.

use super::mmio::Mmio;
use super::sysreg::{self, isb};
use crate::boot::MAX_CPUS;
use core::sync::atomic::{AtomicUsize, Ordering};

const GICD_CTLR: usize = 0x0;
const GICD_TYPER: usize = 0x4;
const GICD_IGROUPR: usize = 0x80;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_ICPENDR: usize = 0x280;
const GICD_ICACTIVER: usize = 0x380;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ICFGR: usize = 0xc00;
const GICD_IROUTER: usize = 0x6000;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const GICR_FRAME: usize = 0x20000;
const SGI_BASE: usize = 0x10000;

/// Priority of every interrupt; all the same: the hypervisor never nests.
const PRIO: u32 = 0xa0;

/// INTIDs 1020..1023 are special (spurious).
pub const SPURIOUS: u32 = 1020;

pub struct Gic {
    gicd: Mmio,
    lines: u32,
}

static GICD_BASE: AtomicUsize = AtomicUsize::new(0);
static GICD_LINES: AtomicUsize = AtomicUsize::new(0);
static RD: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

fn gic() -> Gic {
    let base = GICD_BASE.load(Ordering::Acquire);
    // SAFETY: `init_dist` stored the host GICD base, which the identity map
    // covers as Device memory and which is never mapped into a guest.
    Gic { gicd: unsafe { Mmio::new(base, 0x10000) }, lines: GICD_LINES.load(Ordering::Relaxed) as u32 }
}

fn rd(cpu: usize) -> Mmio {
    let base = RD[cpu].load(Ordering::Acquire);
    // SAFETY: `init_cpu` stored this CPU's redistributor (two 64 KiB frames)
    // found in the host DT's GICR region, never mapped into a guest.
    unsafe { Mmio::new(base, GICR_FRAME) }
}

/// Number of interrupt lines the distributor implements (SGIs/PPIs included).
pub fn lines() -> u32 {
    GICD_LINES.load(Ordering::Relaxed) as u32
}

/// Distributor bring-up on the boot CPU: all SPIs group 1, disabled,
/// inactive, routed to `boot_mpidr`.
///
/// # Safety
/// `gicd` must be the host GICD base from the device tree.
pub unsafe fn init_dist(gicd: usize, boot_mpidr: u64) {
    GICD_BASE.store(gicd, Ordering::Release);
    // SAFETY: forwarded from this function's contract.
    let d = unsafe { Mmio::new(gicd, 0x10000) };
    d.write32(GICD_CTLR, 0);
    let lines = (((d.read32(GICD_TYPER) & 0x1f) + 1) * 32).min(1020);
    GICD_LINES.store(lines as usize, Ordering::Relaxed);
    for i in (32..lines).step_by(32) {
        let w = (i / 32) as usize * 4;
        d.write32(GICD_IGROUPR + w, !0);
        d.write32(GICD_ICENABLER + w, !0);
        d.write32(GICD_ICPENDR + w, !0);
        d.write32(GICD_ICACTIVER + w, !0);
    }
    for i in (32..lines).step_by(4) {
        d.write32(GICD_IPRIORITYR + i as usize, PRIO * 0x0101_0101);
    }
    for i in 32..lines {
        d.write64(GICD_IROUTER + 8 * i as usize, aff(boot_mpidr));
    }
    // ARE | EnableGrp1 (NS / single security state) | EnableGrp0
    d.write32(GICD_CTLR, (1 << 4) | (1 << 1) | 1);
}

/// MPIDR affinity in GICD_IROUTER / GICR_TYPER[63:32] layout.
fn aff(mpidr: u64) -> u64 {
    (mpidr & 0xff_ffff) | ((mpidr >> 32 & 0xff) << 32)
}

/// Per-CPU bring-up: find and wake this CPU's redistributor in the
/// `[gicr, gicr + size)` region, set up SGIs/PPIs and the CPU interface.
///
/// # Safety
/// `[gicr, gicr + size)` must be a host GICR region from the device tree.
pub unsafe fn init_cpu(cpu: usize, mpidr: u64, gicr: usize, size: usize) -> bool {
    let want = aff(mpidr) & 0xffff_ffff;
    let want = ((mpidr >> 32 & 0xff) << 24) | want;
    let mut off = 0;
    let mut found = None;
    while off + GICR_FRAME <= size {
        // SAFETY: inside the region this function's contract describes.
        let f = unsafe { Mmio::new(gicr + off, GICR_FRAME) };
        let typer = f.read64(GICR_TYPER);
        if typer >> 32 == want {
            found = Some(gicr + off);
            break;
        }
        if typer & (1 << 4) != 0 {
            break; // Last
        }
        off += GICR_FRAME;
    }
    let Some(base) = found else { return false };
    RD[cpu].store(base, Ordering::Release);
    let r = rd(cpu);
    // Wake: clear ProcessorSleep, wait for ChildrenAsleep to clear.
    r.write32(GICR_WAKER, r.read32(GICR_WAKER) & !(1 << 1));
    for _ in 0..1_000_000 {
        if r.read32(GICR_WAKER) & (1 << 2) == 0 {
            break;
        }
    }
    // SAFETY: the SGI frame follows the RD frame in the same redistributor.
    let s = unsafe { Mmio::new(base + SGI_BASE, 0x10000) };
    s.write32(GICD_IGROUPR, !0);
    s.write32(GICD_ICENABLER, !0);
    s.write32(GICD_ICPENDR, !0);
    s.write32(GICD_ICACTIVER, !0);
    for i in (0..32).step_by(4) {
        s.write32(GICD_IPRIORITYR + i, PRIO * 0x0101_0101);
    }
    // SAFETY: enabling the system-register interface (SRE) with lower-EL
    // access (Enable) and disabling FIQ/IRQ bypass; nothing else uses the
    // memory-mapped CPU interface. EOImode=1 splits priority drop and
    // deactivation, which hardware-mapped virtual interrupts rely on.
    unsafe {
        sysreg::icc_sre_el2::write(0xf);
        isb();
        sysreg::icc_pmr_el1::write(0xff);
        sysreg::icc_bpr1_el1::write(0);
        sysreg::icc_ctlr_el1::write(1 << 1);
        sysreg::icc_igrpen1_el1::write(1);
        isb();
    }
    true
}

/// Enable or disable SGI/PPI `intid` (< 32) on CPU `cpu`'s redistributor.
pub fn set_private_enabled(cpu: usize, intid: u32, on: bool) {
    let base = RD[cpu].load(Ordering::Acquire);
    if base == 0 || intid >= 32 {
        return;
    }
    // SAFETY: the SGI frame of a redistributor `init_cpu` found.
    let s = unsafe { Mmio::new(base + SGI_BASE, 0x10000) };
    s.write32(if on { GICD_ISENABLER } else { GICD_ICENABLER }, 1 << intid);
}

/// Clear the active state of SGI/PPI `intid` (< 32) on CPU `cpu` (a
/// hardware-mapped PPI a departing vCPU never deactivated).
pub fn clear_private_active(cpu: usize, intid: u32) {
    let base = RD[cpu].load(Ordering::Acquire);
    if base == 0 || intid >= 32 {
        return;
    }
    // SAFETY: the SGI frame of a redistributor `init_cpu` found.
    let s = unsafe { Mmio::new(base + SGI_BASE, 0x10000) };
    s.write32(GICD_ICACTIVER, 1 << intid);
}

/// Enable or disable SPI `intid`.
pub fn set_spi_enabled(intid: u32, on: bool) {
    let g = gic();
    if intid < 32 || intid >= g.lines {
        return;
    }
    let w = (intid / 32) as usize * 4;
    g.gicd.write32(if on { GICD_ISENABLER } else { GICD_ICENABLER } + w, 1 << (intid % 32));
}

/// Configure SPI `intid` as edge (true) or level triggered.
pub fn set_spi_edge(intid: u32, edge: bool) {
    let g = gic();
    if intid < 32 || intid >= g.lines {
        return;
    }
    let off = GICD_ICFGR + (intid / 16) as usize * 4;
    let shift = (intid % 16) * 2 + 1;
    let v = g.gicd.read32(off);
    g.gicd.write32(off, if edge { v | 1 << shift } else { v & !(1 << shift) });
}

/// Deactivate SPI `intid` through the distributor (a guest cleared the
/// active state of a pass-through interrupt it had not completed).
pub fn deactivate_spi(intid: u32) {
    let g = gic();
    if intid < 32 || intid >= g.lines {
        return;
    }
    g.gicd.write32(GICD_ICACTIVER + (intid / 32) as usize * 4, 1 << (intid % 32));
}

/// Route SPI `intid` to the physical CPU with `mpidr`.
pub fn route_spi(intid: u32, mpidr: u64) {
    let g = gic();
    if intid < 32 || intid >= g.lines {
        return;
    }
    g.gicd.write64(GICD_IROUTER + 8 * intid as usize, aff(mpidr));
}

/// Acknowledge the highest-priority pending group-1 interrupt.
#[inline]
pub fn ack() -> u32 {
    sysreg::icc_iar1_el1::read() as u32
}

/// Priority drop (EOImode = 1: the interrupt stays active).
#[inline]
pub fn eoi(iar: u32) {
    // SAFETY: `iar` came from `ack` on this CPU.
    unsafe { sysreg::icc_eoir1_el1::write(iar as u64) };
}

/// Deactivate an interrupt the hypervisor handled itself.
#[inline]
pub fn deactivate(iar: u32) {
    // SAFETY: `iar` came from `ack`, and no guest list register refers to it.
    unsafe { sysreg::icc_dir_el1::write(iar as u64) };
}

/// Send SGI `sgi` to the physical CPU with `mpidr`.
pub fn send_sgi(mpidr: u64, sgi: u32) {
    let aff0 = mpidr & 0xf;
    let v = (1u64 << aff0)
        | ((mpidr >> 8 & 0xff) << 16)
        | ((sgi as u64 & 0xf) << 24)
        | ((mpidr >> 16 & 0xff) << 32)
        | ((mpidr >> 32 & 0xff) << 48);
    // SAFETY: generating an SGI only raises an interrupt at another CPU's EL2.
    unsafe { sysreg::icc_sgi1r_el1::write(v) };
    isb();
}
