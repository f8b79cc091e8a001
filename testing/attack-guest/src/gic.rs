//! The guest's GICv3 (Xen's guest layout) and its CPU interface registers.

use crate::probe;
use crate::rt::{self, Probe};
use xen_abi::arch_arm::{GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICR0_BASE, GUEST_GICV3_RDIST_STRIDE};

pub const GICD: u64 = GUEST_GICV3_GICD_BASE;
pub const GICD_CTLR: u64 = GICD;
pub const GICD_TYPER: u64 = GICD + 4;
pub const GICD_PIDR2: u64 = GICD + 0xffe8;

/// RD_base of vCPU `v`'s redistributor.
pub fn gicr(v: u64) -> u64 {
    GUEST_GICV3_GICR0_BASE + v * GUEST_GICV3_RDIST_STRIDE
}

/// SGI_base of vCPU `v`'s redistributor.
pub fn gicr_sgi(v: u64) -> u64 {
    gicr(v) + 0x1_0000
}

pub const GICR_IGROUPR0: u64 = 0x080;
pub const GICR_ISENABLER0: u64 = 0x100;
pub const GICR_ICENABLER0: u64 = 0x180;
pub const GICR_ICPENDR0: u64 = 0x280;
pub const GICR_ICACTIVER0: u64 = 0x380;
pub const GICR_IPRIORITYR: u64 = 0x400;

/// ICC_SGI1R_EL1 value: `intid` to the vCPUs in `list` (Aff0 bits) of cluster `aff1`.
pub fn sgi1r(intid: u64, list: u64, aff1: u64) -> u64 {
    (intid << 24) | (aff1 << 16) | (list & 0xffff)
}

pub fn write_sgi1r(v: u64) -> Probe {
    probe!("msr s3_0_c12_c11_5, {v}", v, options(nostack))
}

pub fn write_sgi0r(v: u64) -> Probe {
    probe!("msr s3_0_c12_c11_7, {v}", v, options(nostack))
}

pub fn write_asgi1r(v: u64) -> Probe {
    probe!("msr s3_0_c12_c11_6, {v}", v, options(nostack))
}

/// This vCPU's CPU interface: group 1 on, every priority unmasked.
pub fn cpu_if_on() {
    // SAFETY: ICC_PMR_EL1 and ICC_IGRPEN1_EL1 of this vCPU's (virtual) CPU interface.
    unsafe {
        core::arch::asm!(
            "msr s3_0_c4_c6_0, {pmr}",
            "msr s3_0_c12_c12_7, {one}",
            "isb",
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nostack),
        )
    };
}

/// Acknowledge the highest-priority pending interrupt (ICC_IAR1_EL1).
pub fn iar1() -> u64 {
    let v: u64;
    // SAFETY: reads this vCPU's CPU interface; acknowledging is what the caller wants.
    unsafe { core::arch::asm!("mrs {}, s3_0_c12_c12_0", out(reg) v, options(nostack)) };
    v
}

/// End (and deactivate, EOImode 0) interrupt `intid` (ICC_EOIR1_EL1).
pub fn eoir1(intid: u64) {
    // SAFETY: ends an interrupt this vCPU acknowledged.
    unsafe { core::arch::asm!("msr s3_0_c12_c12_1, {}", "isb", in(reg) intid, options(nostack)) };
}

/// Enables SGI/PPI `intid` on vCPU `v`'s redistributor, group 1, priority 0xa0.
pub fn enable_private(v: u64, intid: u64) {
    let sgi = gicr_sgi(v);
    let _ = rt::write32(sgi + GICR_IGROUPR0, 0xffff_ffff);
    let _ = rt::write8(sgi + GICR_IPRIORITYR + intid, 0xa0);
    let _ = rt::write32(sgi + GICR_ISENABLER0, 1 << intid);
}

/// The distributor on: affinity routing, group 1.
pub fn dist_on() {
    let _ = rt::write32(GICD_CTLR, 0x12);
}
