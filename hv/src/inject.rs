//! Synchronous exceptions injected into a guest at EL1, as the architecture
//! would take them: ELR/SPSR/ESR/FAR_EL1 set, PC at the right VBAR_EL1 slot.

use crate::hw::sysreg;
use crate::trap::Frame;

const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_LOWER: u64 = 0x20;
const EC_IABT_CUR: u64 = 0x21;
const EC_DABT_LOWER: u64 = 0x24;
const EC_DABT_CUR: u64 = 0x25;
const IL: u64 = 1 << 25;
/// DFSC: synchronous external abort, not on a translation table walk.
const DFSC_SEA: u64 = 0x10;

fn take(frame: &mut Frame, esr: u64, far: Option<u64>) {
    let spsr = frame.spsr;
    let mode = spsr & 0x1f;
    // Vector slot: current EL with SP_EL0 (EL1t), with SP_ELx (EL1h), or lower EL AArch64.
    let offset = match mode {
        0b00100 => 0x000,
        0b00101 => 0x200,
        m if m & 0b10000 != 0 => 0x600, // lower EL, AArch32
        _ => 0x400,
    };
    // SAFETY: these EL1 registers belong to the vCPU running on this CPU;
    // writing them is what taking an exception at EL1 does.
    unsafe {
        sysreg::elr_el1::write(frame.elr);
        sysreg::spsr_el1::write(spsr);
        sysreg::esr_el1::write(esr);
        if let Some(far) = far {
            sysreg::far_el1::write(far);
        }
    }
    frame.elr = sysreg::vbar_el1::read().wrapping_add(offset);
    frame.spsr = 0x3c5;
}

fn from_el0(frame: &Frame) -> bool {
    frame.spsr & 0b10000 != 0 || frame.spsr & 0b1100 == 0
}

/// The instruction at ELR is UNDEFINED for the guest.
pub fn undef(frame: &mut Frame) {
    take(frame, (EC_UNKNOWN << 26) | IL, None);
}

/// A synchronous external data abort at virtual address `far`.
pub fn data_abort(frame: &mut Frame, far: u64) {
    let ec = if from_el0(frame) { EC_DABT_LOWER } else { EC_DABT_CUR };
    take(frame, (ec << 26) | IL | DFSC_SEA, Some(far));
}

/// A synchronous external instruction abort at virtual address `far`.
pub fn prefetch_abort(frame: &mut Frame, far: u64) {
    let ec = if from_el0(frame) { EC_IABT_LOWER } else { EC_IABT_CUR };
    take(frame, (ec << 26) | IL | DFSC_SEA, Some(far));
}
