//! Cache maintenance for memory handed to a guest that starts with its MMU
//! and caches off.

const LINE: usize = 64;

/// Clean `[start, start + len)` to the point of coherency.
pub fn clean_to_poc(start: usize, len: usize) {
    let end = start.saturating_add(len);
    let mut a = start & !(LINE - 1);
    while a < end {
        // SAFETY: cleaning a line has no effect on memory contents.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += LINE;
    }
    // SAFETY: barrier only.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Invalidate all instruction caches (inner shareable).
pub fn invalidate_icache() {
    // SAFETY: invalidating the I-cache has no effect on memory contents.
    unsafe { core::arch::asm!("ic ialluis", "dsb ish", "isb", options(nostack, preserves_flags)) };
}

/// Invalidate all stage-1 and stage-2 EL1 TLB entries for the current VMID.
pub fn flush_guest_tlb() {
    // SAFETY: TLB maintenance has no effect on memory contents.
    unsafe { core::arch::asm!("dsb ishst", "tlbi vmalls12e1is", "dsb ish", "isb", options(nostack, preserves_flags)) };
}
