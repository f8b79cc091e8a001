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

/// Invalidate the stage-2 translations of `[ipa, ipa + size)` for the
/// current VMID on all CPUs, then the combined stage-1+2 entries (tagged by
/// VA, so all of them). A range of more than 64 pages flushes everything.
pub fn invalidate_ipa_range(ipa: u64, size: u64) {
    const PAGE: u64 = 4096;
    let pages = size.div_ceil(PAGE);
    if pages > 64 {
        flush_guest_tlb();
        return;
    }
    // SAFETY: TLB maintenance has no effect on memory contents.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
    for i in 0..pages {
        let a = (ipa + i * PAGE) >> 12;
        // SAFETY: as above.
        unsafe { core::arch::asm!("tlbi ipas2e1is, {}", in(reg) a, options(nostack, preserves_flags)) };
    }
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ish", "tlbi vmalle1is", "dsb ish", "isb", options(nostack, preserves_flags)) };
}
