//! EL2 exception vectors and the guest register frame.
//!
//! Every exception from a guest saves x0-x30, ELR_EL2 and SPSR_EL2 in a
//! `Frame` at the top of this CPU's EL2 stack, calls `trap_entry`, restores
//! the (possibly modified) frame and returns with `eret`. EL1 system
//! registers are not switched: each physical CPU runs exactly one vCPU.

use core::arch::global_asm;

/// Saved guest registers. Layout is fixed by the assembly below.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pad: u64,
}

impl Frame {
    pub const ZERO: Frame = Frame { x: [0; 31], elr: 0, spsr: 0, pad: 0 };
}

pub const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE == 272);

impl Frame {
    /// Register `n` as an instruction operand sees it (31 = XZR).
    pub fn reg(&self, n: u8) -> u64 {
        if n < 31 {
            self.x[n as usize]
        } else {
            0
        }
    }

    /// Write register `n`; writes to XZR (31) are discarded.
    pub fn set_reg(&mut self, n: u8, v: u64) {
        if n < 31 {
            self.x[n as usize] = v;
        }
    }
}

/// Which vector an exception came through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u64)]
pub enum Kind {
    El2Sync = 4,
    El2Irq = 5,
    El2Fiq = 6,
    El2SError = 7,
    LowerSync = 8,
    LowerIrq = 9,
    LowerFiq = 10,
    LowerSError = 11,
    /// Synchronous exception from AArch32 EL0 (interrupts from it are `LowerIrq`).
    Lower32 = 12,
    El2Sp0 = 0,
}

global_asm!(
    r#"
.macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       trap_common
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global hv_vectors
hv_vectors:
    VENTRY 0
    VENTRY 0
    VENTRY 0
    VENTRY 0
    VENTRY 4
    VENTRY 5
    VENTRY 6
    VENTRY 7
    VENTRY 8
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12
    VENTRY 9
    VENTRY 10
    VENTRY 11

trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x30, x2, [sp, #240]
    str     x3, [sp, #256]
    mov     x1, x0
    mov     x0, sp
    bl      trap_entry
trap_restore:
    ldp     x30, x2, [sp, #240]
    ldr     x3, [sp, #256]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #{frame}
    eret

// enter_guest(src: *const Frame, stack_top: usize) -> !
    .global enter_guest
enter_guest:
    sub     sp, x1, #{frame}
    mov     x2, sp
    mov     x3, #({frame} / 16)
1:  ldp     x4, x5, [x0], #16
    stp     x4, x5, [x2], #16
    subs    x3, x3, #1
    b.ne    1b
    b       trap_restore
"#,
    frame = const FRAME_SIZE,
);

extern "C" {
    static hv_vectors: u8;
    fn enter_guest(src: *const Frame, stack_top: usize) -> !;
}

/// Install the vectors on this CPU.
pub fn install() {
    let v = core::ptr::addr_of!(hv_vectors) as u64;
    // SAFETY: `hv_vectors` is a valid 2 KiB-aligned EL2 vector table.
    unsafe { crate::hw::sysreg::vbar_el2::write(v) };
    crate::hw::sysreg::isb();
}

/// Run the guest from `frame`, abandoning the current EL2 call stack.
pub fn run(frame: &Frame, stack_top: usize) -> ! {
    // SAFETY: `stack_top` is this CPU's own stack top; the frame is copied
    // before anything else uses the stack, and EL1 state was set up by the
    // caller for the vCPU this CPU owns.
    unsafe { enter_guest(frame as *const Frame, stack_top) }
}

#[no_mangle]
extern "C" fn trap_entry(frame: &mut Frame, kind: u64) {
    let kind = match kind {
        4 => Kind::El2Sync,
        5 => Kind::El2Irq,
        6 => Kind::El2Fiq,
        7 => Kind::El2SError,
        8 => Kind::LowerSync,
        9 => Kind::LowerIrq,
        10 => Kind::LowerFiq,
        11 => Kind::LowerSError,
        12 => Kind::Lower32,
        _ => Kind::El2Sp0,
    };
    crate::exit::handle(frame, kind);
}
