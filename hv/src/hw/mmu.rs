//! The EL2 stage-1 identity map: 39-bit VA == PA in 1 GiB blocks. The first
//! GiB (MMIO on the virt machine) and everything from 256 GiB up (high MMIO)
//! is Device-nGnRnE; 1..256 GiB (RAM) is Normal write-back, inner shareable.

use super::sysreg::{self, isb};

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut EL2_L1: Table = Table([0; 512]);

const ATTR_DEVICE: u64 = 0; // MAIR index 0
const ATTR_NORMAL: u64 = 1; // MAIR index 1
const MAIR: u64 = 0x00 | (0xff << 8);
const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const XN: u64 = 1 << 54;

/// Fill the table. Runs on the boot CPU with the MMU off, before any other CPU starts.
pub fn build() {
    let mut t = [0u64; 512];
    for (i, e) in t.iter_mut().enumerate() {
        let pa = (i as u64) << 30;
        *e = if (1..256).contains(&i) {
            pa | BLOCK | AF | SH_INNER | (ATTR_NORMAL << 2)
        } else {
            pa | BLOCK | AF | XN | (ATTR_DEVICE << 2)
        };
    }
    // SAFETY: single CPU, MMU off, nothing else references the table yet.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(EL2_L1), Table(t)) };
}

/// Turn on the EL2 MMU and caches on this CPU with the identity map.
pub fn enable() {
    let parange = sysreg::id_aa64mmfr0_el1::read() & 0xf;
    let ps = parange.min(5); // TCR_EL2.PS: up to 48 bits
    // T0SZ=25 (39-bit VA, walk starts at level 1), IRGN0/ORGN0 WBWA,
    // SH0 inner, TG0 4K, PS, RES1 bits 31 and 23.
    let tcr = 25 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (ps << 16) | (1 << 31) | (1 << 23);
    let ttbr = core::ptr::addr_of!(EL2_L1) as u64;
    // SAFETY: the table identity-maps all RAM and MMIO the hypervisor
    // touches with the attributes above, so enabling translation changes no
    // address the running code uses; TLBs are invalidated first.
    unsafe {
        core::arch::asm!("tlbi alle2", "dsb sy", options(nostack));
        sysreg::mair_el2::write(MAIR);
        sysreg::tcr_el2::write(tcr);
        sysreg::ttbr0_el2::write(ttbr);
        isb();
        // RES1 bits | M | C | SA | I
        let sctlr = 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12);
        sysreg::sctlr_el2::write(sctlr);
        isb();
    }
}
