//! Per physical CPU facts. TPIDR_EL2 holds the CPU index.

use crate::boot::MAX_CPUS;
use crate::hw::sysreg;
use core::sync::atomic::{AtomicU64, Ordering};

static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Record this CPU's index and MPIDR. Called once per CPU on its own stack.
pub fn init(cpu: usize) {
    // SAFETY: TPIDR_EL2 is the hypervisor's own scratch register.
    unsafe { sysreg::tpidr_el2::write(cpu as u64) };
    MPIDR[cpu].store(sysreg::mpidr_el1::read() & 0xff_00ff_ffff, Ordering::Release);
}

/// Index of the calling CPU.
#[inline]
pub fn this_cpu() -> usize {
    sysreg::tpidr_el2::read() as usize
}

/// MPIDR of an online CPU.
pub fn mpidr(cpu: usize) -> Option<u64> {
    let v = MPIDR.get(cpu)?.load(Ordering::Acquire);
    (v != u64::MAX).then_some(v)
}
