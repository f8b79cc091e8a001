//! Start of day: the arm64 `Image` header QEMU's `-kernel` recognises, the
//! primary and secondary entry points, per-CPU stacks and the EL2 MMU.
//!
//! Invariants on entry (Linux arm64 booting protocol, which QEMU follows):
//! EL2, MMU and D-cache off, x0 = physical address of the host DTB. Secondary
//! CPUs enter at `secondary_entry` through PSCI CPU_ON with x0 = CPU index.

use core::arch::global_asm;

/// Maximum physical CPUs the hypervisor brings up.
pub const MAX_CPUS: usize = 8;
/// Bytes of EL2 stack per physical CPU.
pub const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_CPUS]);

/// EL2 stacks; CPU n uses `STACKS.0[n]`, growing down from its end.
#[no_mangle]
pub static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset: loaded at RAM base + 2 MiB
    .quad   __image_end - _start    // image_size, including .bss
    .quad   0x2                     // flags: LE, 4 KiB pages, base close to RAM start
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

primary_entry:
    mov     x19, x0                 // host DTB
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    boot_hang
    adr     x1, _start              // must run where we are linked (no relocation)
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    boot_hang
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, #0
    bl      set_stack
    mov     x0, x19
    bl      primary_main
    b       boot_hang

    .global secondary_entry
secondary_entry:
    mov     x19, x0                 // CPU index (PSCI context_id)
    cmp     x19, #{max_cpus}
    b.hs    boot_hang
    bl      set_stack
    mov     x0, x19
    bl      secondary_main
    b       boot_hang

// sp = end of STACKS[x0]; clobbers x1, x2
set_stack:
    ldr     x1, =STACKS
    mov     x2, #{stack_size}
    madd    x1, x0, x2, x2
    ldr     x2, =STACKS
    add     sp, x1, x2
    ret

boot_hang:
    wfe
    b       boot_hang
    .ltorg
"#,
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
);

/// The top of CPU `cpu`'s EL2 stack.
pub fn stack_top(cpu: usize) -> usize {
    // Only the address is taken; the memory is not accessed here.
    let base = core::ptr::addr_of!(STACKS) as usize;
    base + (cpu + 1) * STACK_SIZE
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    fn secondary_entry();
}

/// Physical range occupied by the hypervisor image, .bss included.
pub fn image_range() -> (u64, u64) {
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    (start, end)
}

/// Physical address secondaries start at (identity-mapped).
pub fn secondary_entry_pa() -> u64 {
    secondary_entry as *const () as usize as u64
}
