//! Hypercalls (`HVC #0xEA1`, number in x16, arguments x0-x4, result x0; a debug Xen
//! clobbers x1-x4) and SMCCC calls (`HVC #0` / `SMC #0`).

use xen_abi::xen::*;
use zerocopy::{Immutable, IntoBytes};

/// A raw hypercall.
pub fn call(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let r: u64;
    // SAFETY: the hypervisor reads and writes only the guest memory the arguments name,
    // which the callers own (or deliberately point at memory that is not theirs to see the
    // call refused); no Rust reference to that memory is alive across the call except
    // through the raw pointers passed here.
    unsafe {
        core::arch::asm!(
            "hvc #0xea1",
            inout("x0") a0 => r,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            inout("x4") a4 => _,
            in("x16") nr,
            options(nostack),
        );
    }
    r as i64
}

pub fn ptr<T>(x: &mut T) -> u64 {
    x as *mut T as u64
}

pub fn cptr<T>(x: &T) -> u64 {
    x as *const T as u64
}

pub fn memory_op(cmd: u32, arg: u64) -> i64 {
    call(HYPERVISOR_memory_op, cmd as u64, arg, 0, 0, 0)
}

pub fn evtchn_op<T: IntoBytes + Immutable>(cmd: u32, arg: &mut T) -> i64 {
    call(HYPERVISOR_event_channel_op, cmd as u64, ptr(arg), 0, 0, 0)
}

pub fn grant_op(cmd: u32, uop: u64, count: u64) -> i64 {
    call(HYPERVISOR_grant_table_op, cmd as u64, uop, count, 0, 0)
}

pub fn sched_op(cmd: u32, arg: u64) -> i64 {
    call(HYPERVISOR_sched_op, cmd as u64, arg, 0, 0, 0)
}

pub fn hvm_op(cmd: u32, arg: u64) -> i64 {
    call(HYPERVISOR_hvm_op, cmd as u64, arg, 0, 0, 0)
}

pub fn xen_version(cmd: u32, arg: u64) -> i64 {
    call(HYPERVISOR_xen_version, cmd as u64, arg, 0, 0, 0)
}

/// `EVTCHNOP_send`.
pub fn send(port: u32) -> i64 {
    let mut s = xen_abi::event_channel::EvtchnSend { port };
    evtchn_op(xen_abi::event_channel::EVTCHNOP_send, &mut s)
}

/// `EVTCHNOP_close`.
pub fn close(port: u32) -> i64 {
    let mut c = xen_abi::event_channel::EvtchnClose { port };
    evtchn_op(xen_abi::event_channel::EVTCHNOP_close, &mut c)
}

/// `SCHEDOP_shutdown`.
pub fn shutdown(reason: u32) -> i64 {
    let s = xen_abi::sched::SchedShutdown { reason };
    sched_op(xen_abi::sched::SCHEDOP_shutdown, cptr(&s))
}

/// An SMCCC call through `HVC #0`: (x0, x1, x2, x3) after it.
pub fn smccc_hvc(a0: u64, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
    let (r0, r1, r2, r3): (u64, u64, u64, u64);
    // SAFETY: SMCCC calls touch no guest memory.
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inout("x0") a0 => r0,
            inout("x1") a1 => r1,
            inout("x2") a2 => r2,
            inout("x3") a3 => r3,
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// An SMCCC call through `SMC #0`.
pub fn smccc_smc(a0: u64, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
    let (r0, r1, r2, r3): (u64, u64, u64, u64);
    // SAFETY: SMCCC calls touch no guest memory.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") a0 => r0,
            inout("x1") a1 => r1,
            inout("x2") a2 => r2,
            inout("x3") a3 => r3,
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

pub const PSCI_VERSION: u64 = 0x8400_0000;
pub const PSCI_CPU_OFF: u64 = 0x8400_0002;
pub const PSCI_CPU_ON: u64 = 0xC400_0003;
pub const PSCI_AFFINITY_INFO: u64 = 0xC400_0004;
pub const PSCI_MIGRATE: u64 = 0xC400_0005;
pub const PSCI_FEATURES: u64 = 0x8400_000A;

/// PSCI CPU_ON through HVC: the return code (sign-extended from 32 bits as PSCI defines).
pub fn cpu_on(target: u64, entry: u64, ctx: u64) -> i64 {
    smccc_hvc(PSCI_CPU_ON, target, entry, ctx)[0] as i32 as i64
}
