//! Start of day: the arm64 `Image` header xl's loader wants, the entry points of vCPU 0
//! (from the toolstack, x0 = DTB) and of the other vCPUs (PSCI CPU_ON, x0 = context id),
//! and the EL1 vector table.
//!
//! The guest runs at EL1h with the MMU off (VA == IPA, all data accesses Device memory: the
//! target's `+strict-align` keeps the compiler from emitting unaligned accesses).
//!
//! Exceptions: a synchronous exception while the vCPU's [`crate::rt::FaultRec`] has a
//! recovery address is recorded (ESR, FAR, ELR) and resumed at that address: that is how a
//! case survives an injected abort or UNDEFINED. Any other synchronous exception, FIQ or
//! SError is reported by `rust_unexpected`, which crashes the domain. IRQs go to
//! `rust_irq` (only vCPU 1 unmasks them, to count SGIs).

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset: RAM base + 2 MiB
    .quad   __image_end - _start    // image_size, .bss and stacks included
    .quad   0x2                     // flags: little endian, 4 KiB pages
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

primary_entry:
    mov     x19, x0                 // DTB
    ldr     x1, =attack_vectors
    msr     vbar_el1, x1
    isb
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  ldr     x1, =STACK0
    add     x1, x1, #{stack}
    mov     sp, x1
    mov     x0, x19
    bl      rust_main
3:  wfi
    b       3b

    // vCPU 1 (PSCI CPU_ON): note whether any of x1..x29 came non-zero (a previous
    // owner's registers), then run on its own stack.
    .global secondary_entry
secondary_entry:
    orr     x30, x1, x2
    orr     x30, x30, x3
    orr     x30, x30, x4
    orr     x30, x30, x5
    orr     x30, x30, x6
    orr     x30, x30, x7
    orr     x30, x30, x8
    orr     x30, x30, x9
    orr     x30, x30, x10
    orr     x30, x30, x11
    orr     x30, x30, x12
    orr     x30, x30, x13
    orr     x30, x30, x14
    orr     x30, x30, x15
    orr     x30, x30, x16
    orr     x30, x30, x17
    orr     x30, x30, x18
    orr     x30, x30, x19
    orr     x30, x30, x20
    orr     x30, x30, x21
    orr     x30, x30, x22
    orr     x30, x30, x23
    orr     x30, x30, x24
    orr     x30, x30, x25
    orr     x30, x30, x26
    orr     x30, x30, x27
    orr     x30, x30, x28
    orr     x30, x30, x29
    mov     x1, x30
    ldr     x2, =attack_vectors
    msr     vbar_el1, x2
    isb
    ldr     x2, =STACK1
    add     x2, x2, #{stack}
    mov     sp, x2
    bl      rust_secondary
4:  wfi
    b       4b

    // A vCPU started at a place that does nothing: spins with everything masked.
    .global park_entry
park_entry:
    msr     daifset, #0xf
5:  b       5b
    .ltorg

    .section .text.vectors, "ax"
    .balign 0x800
    .global attack_vectors
attack_vectors:
    // Current EL with SP_EL0: not used (we run EL1h).
    .balign 0x80
    mov     x0, #0
    b       vec_unexpected
    .balign 0x80
    mov     x0, #1
    b       vec_unexpected
    .balign 0x80
    mov     x0, #2
    b       vec_unexpected
    .balign 0x80
    mov     x0, #3
    b       vec_unexpected
    // Current EL with SP_ELx.
    .balign 0x80
    b       vec_sync
    .balign 0x80
    b       vec_irq
    .balign 0x80
    mov     x0, #6
    b       vec_unexpected
    .balign 0x80
    mov     x0, #7
    b       vec_unexpected
    // Lower EL (never: no EL0 code).
    .balign 0x80
    mov     x0, #8
    b       vec_unexpected
    .balign 0x80
    mov     x0, #9
    b       vec_unexpected
    .balign 0x80
    mov     x0, #10
    b       vec_unexpected
    .balign 0x80
    mov     x0, #11
    b       vec_unexpected
    .balign 0x80
    mov     x0, #12
    b       vec_unexpected
    .balign 0x80
    mov     x0, #13
    b       vec_unexpected
    .balign 0x80
    mov     x0, #14
    b       vec_unexpected
    .balign 0x80
    mov     x0, #15
    b       vec_unexpected

vec_sync:
    sub     sp, sp, #32
    stp     x0, x1, [sp]
    stp     x2, x3, [sp, #16]
    ldr     x0, =FAULTS
    mrs     x2, mpidr_el1
    and     x2, x2, #0xf
    lsl     x2, x2, #6              // 64-byte records
    add     x0, x0, x2
    ldr     x1, [x0]                // recover
    cbz     x1, 6f
    mrs     x2, esr_el1
    str     x2, [x0, #16]
    mrs     x2, far_el1
    str     x2, [x0, #24]
    mrs     x2, elr_el1
    str     x2, [x0, #32]
    ldr     x2, [x0, #8]
    add     x2, x2, #1
    str     x2, [x0, #8]            // count
    str     xzr, [x0]               // one recovery per arming
    msr     elr_el1, x1
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp]
    add     sp, sp, #32
    eret
6:  ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp]
    add     sp, sp, #32
    mov     x0, #4
    b       vec_unexpected

vec_irq:
    // rust_irq may use every caller-saved register (x0-x18, x30).
    sub     sp, sp, #176
    stp     x0, x1, [sp]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    bl      rust_irq
    ldr     x30, [sp, #160]
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp]
    add     sp, sp, #176
    eret

vec_unexpected:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      rust_unexpected
7:  wfi
    b       7b
    .ltorg
"#,
    stack = const crate::rt::STACK_SIZE,
);

extern "C" {
    fn secondary_entry();
    fn park_entry();
    static __image_start: u8;
    static __image_end: u8;
}

/// Where PSCI CPU_ON should start vCPU 1.
pub fn secondary_entry_addr() -> u64 {
    secondary_entry as *const () as usize as u64
}

/// An entry point that only spins with interrupts masked.
pub fn park_entry_addr() -> u64 {
    park_entry as *const () as usize as u64
}

/// The image as loaded: [start, end), .bss and stacks included.
pub fn image_range() -> (u64, u64) {
    (core::ptr::addr_of!(__image_start) as u64, core::ptr::addr_of!(__image_end) as u64)
}
