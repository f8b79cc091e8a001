//! Calls into the platform firmware's PSCI (SMC conduit on QEMU virt with
//! virtualization=on).

/// SMC with up to three arguments; returns x0.
fn smc(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: u64;
    // SAFETY: PSCI calls follow SMCCC: x0-x3 in/out, x4-x17 may be clobbered.
    unsafe {
        core::arch::asm!("smc #0",
            inout("x0") fid as u64 => r, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _, options(nostack));
    }
    r as i64
}

/// Start physical CPU `mpidr` at `entry` with x0 = `ctx`.
pub fn cpu_on(mpidr: u64, entry: u64, ctx: u64) -> i64 {
    smc(0xC400_0003, mpidr, entry, ctx)
}

pub fn system_off() -> ! {
    smc(0x8400_0008, 0, 0, 0);
    loop {
        super::sysreg::wfi();
    }
}

pub fn system_reset() -> ! {
    smc(0x8400_0009, 0, 0, 0);
    loop {
        super::sysreg::wfi();
    }
}
