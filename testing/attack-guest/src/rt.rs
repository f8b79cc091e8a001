//! The guest's runtime: stacks, per-vCPU fault records and the `probe!` macro that runs one
//! instruction which may fault, volatile memory access, the counter, barriers.

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

/// Bytes of stack per vCPU.
pub const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
pub struct Stack(pub [u8; STACK_SIZE]);

#[no_mangle]
pub static mut STACK0: Stack = Stack([0; STACK_SIZE]);
#[no_mangle]
pub static mut STACK1: Stack = Stack([0; STACK_SIZE]);

/// What the sync vector records (layout used by the assembly in boot.rs: 64 bytes).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct FaultRec {
    /// Where to resume after an exception; 0: none expected.
    pub recover: u64,
    /// Exceptions taken so far.
    pub count: u64,
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
    _pad: [u64; 3],
}

/// Indexed by MPIDR_EL1.Aff0 & 0xf (vCPU id).
#[no_mangle]
pub static mut FAULTS: [FaultRec; 16] = [FaultRec { recover: 0, count: 0, esr: 0, far: 0, elr: 0, _pad: [0; 3] }; 16];

pub fn vcpu_id() -> usize {
    let m: u64;
    // SAFETY: reading MPIDR_EL1 has no side effect.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) m, options(nomem, nostack)) };
    (m & 0xf) as usize
}

/// This vCPU's fault record.
pub fn fault_rec() -> *mut FaultRec {
    // SAFETY: only the address is taken; each vCPU uses its own slot.
    unsafe { addr_of_mut!(FAULTS[vcpu_id()]) }
}

/// How an instruction run under `probe!` ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    None,
    Undef,
    DataAbort,
    InstrAbort,
    Other(u32),
}

/// How a probed instruction ended (the syndrome, FAR and ELR stay in the fault record).
#[derive(Clone, Copy)]
pub struct Probe {
    pub trap: Trap,
    pub val: u64,
}

impl Probe {
    pub fn faulted(&self) -> bool {
        self.trap != Trap::None
    }

    /// `undef`, `abort`, `pabort`, `exc0xNN`, or `ok`.
    pub fn word(&self) -> &'static str {
        match self.trap {
            Trap::None => "ok",
            Trap::Undef => "undef",
            Trap::DataAbort => "abort",
            Trap::InstrAbort => "pabort",
            Trap::Other(_) => "exception",
        }
    }
}

/// Exceptions this vCPU has taken so far.
pub fn fault_count() -> u64 {
    // SAFETY: the vCPU's own record, read volatile (the vector writes it).
    unsafe { read_volatile(addr_of!((*fault_rec()).count)) }
}

/// The outcome of a probe, given the fault count before it and the value it produced.
pub fn finish(before: u64, val: u64) -> Probe {
    let r = fault_rec();
    // SAFETY: the vCPU's own record, read volatile.
    let (count, esr) = unsafe { (read_volatile(addr_of!((*r).count)), read_volatile(addr_of!((*r).esr))) };
    // SAFETY: as above; disarm in case nothing faulted.
    unsafe { write_volatile(addr_of_mut!((*r).recover), 0) };
    if count == before {
        return Probe { trap: Trap::None, val };
    }
    let ec = ((esr >> 26) & 0x3f) as u32;
    let trap = match ec {
        0x00 => Trap::Undef,
        0x24 | 0x25 => Trap::DataAbort,
        0x20 | 0x21 => Trap::InstrAbort,
        e => Trap::Other(e),
    };
    Probe { trap, val }
}

/// Runs one instruction (an asm template using `{v}` as a 64-bit in/out value register and
/// any extra operands) with this vCPU's fault record armed: an exception is recorded and
/// execution resumes right after the instruction. Evaluates to a [`Probe`]. The macro exists
/// to splice instructions into one `asm!`, so its unsafe block has to take them.
#[macro_export]
macro_rules! probe {
    ($insn:literal, $v:expr $(, $($rest:tt)*)?) => {{
        let rec = $crate::rt::fault_rec();
        let before = $crate::rt::fault_count();
        let mut val: u64 = $v;
        #[allow(clippy::macro_metavars_in_unsafe)]
        // SAFETY: the instruction runs with the vCPU's fault record armed (the sync vector
        // resumes at label 2 with every register as it was); the caller vouches for what the
        // instruction itself does to memory.
        unsafe {
            core::arch::asm!(
                "adr {tmp}, 2f",
                "str {tmp}, [{rec}]",
                $insn,
                "// {v}",
                "2:",
                rec = in(reg) rec,
                tmp = out(reg) _,
                v = inout(reg) val,
                $($($rest)*)?
            );
        }
        $crate::rt::finish(before, val)
    }};
}

pub fn read32(addr: u64) -> Probe {
    probe!("ldr {v:w}, [{a}]", 0, a = in(reg) addr, options(nostack))
}

pub fn read64(addr: u64) -> Probe {
    probe!("ldr {v}, [{a}]", 0, a = in(reg) addr, options(nostack))
}

pub fn write32(addr: u64, value: u32) -> Probe {
    probe!("str {v:w}, [{a}]", value as u64, a = in(reg) addr, options(nostack))
}

pub fn write64(addr: u64, value: u64) -> Probe {
    probe!("str {v}, [{a}]", value, a = in(reg) addr, options(nostack))
}

pub fn write8(addr: u64, value: u8) -> Probe {
    probe!("strb {v:w}, [{a}]", value as u64, a = in(reg) addr, options(nostack))
}

/// Branches to `addr` (expects an instruction abort there).
pub fn exec(addr: u64) -> Probe {
    probe!("blr {v}", addr, out("x30") _, options(nostack))
}

/// Plain volatile accessors for memory known to be ours.
pub fn rd32(addr: u64) -> u32 {
    // SAFETY: the callers pass addresses of the guest's own RAM or mapped pages.
    unsafe { read_volatile(addr as *const u32) }
}
pub fn wr32(addr: u64, v: u32) {
    // SAFETY: as for `rd32`.
    unsafe { write_volatile(addr as *mut u32, v) }
}
pub fn rd64(addr: u64) -> u64 {
    // SAFETY: as for `rd32`.
    unsafe { read_volatile(addr as *const u64) }
}
pub fn wr64(addr: u64, v: u64) {
    // SAFETY: as for `rd32`.
    unsafe { write_volatile(addr as *mut u64, v) }
}
pub fn wr16(addr: u64, v: u16) {
    // SAFETY: as for `rd32`.
    unsafe { write_volatile(addr as *mut u16, v) }
}
pub fn rd8(addr: u64) -> u8 {
    // SAFETY: as for `rd32`.
    unsafe { read_volatile(addr as *const u8) }
}
pub fn wr8(addr: u64, v: u8) {
    // SAFETY: as for `rd32`.
    unsafe { write_volatile(addr as *mut u8, v) }
}

/// Fills `len` bytes (a multiple of 8) at `addr` with `f(i)` per u64.
pub fn fill64(addr: u64, len: u64, f: impl Fn(u64) -> u64) {
    let mut i = 0;
    while i < len / 8 {
        wr64(addr + i * 8, f(i));
        i += 1;
    }
}

/// Whether every u64 of `len` bytes at `addr` is `f(i)`.
pub fn check64(addr: u64, len: u64, f: impl Fn(u64) -> u64) -> bool {
    let mut i = 0;
    while i < len / 8 {
        if rd64(addr + i * 8) != f(i) {
            return false;
        }
        i += 1;
    }
    true
}

pub fn dsb() {
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", "isb", options(nostack)) };
}

/// The virtual counter and its frequency.
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: CNTVCT_EL0 is readable at EL1.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn freq() -> u64 {
    let v: u64;
    // SAFETY: CNTFRQ_EL0 is readable at EL1.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v.max(1)
}

/// Counter ticks in `ms` milliseconds.
pub fn ms(ms: u64) -> u64 {
    freq() * ms / 1000
}

/// Spins until `f` holds or `timeout_ms` passed; returns whether it held.
pub fn wait_for(timeout_ms: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = now() + ms(timeout_ms);
    loop {
        if f() {
            return true;
        }
        if now() > end {
            return false;
        }
        core::hint::spin_loop();
    }
}
