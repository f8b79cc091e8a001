//! Raw access to physical memory through the EL2 identity map, for loading
//! boot modules into a domain before it first runs.

/// Read-only view of physical memory.
///
/// # Safety
/// `[pa, pa + len)` must be RAM covered by the identity map that nothing
/// writes while the slice lives (e.g. a boot module or the boot DTB).
pub unsafe fn slice(pa: u64, len: usize) -> &'static [u8] {
    // SAFETY: forwarded from this function's contract.
    unsafe { core::slice::from_raw_parts(pa as *const u8, len) }
}

/// Copy `src` to physical address `dst` and clean it to the point of
/// coherency (the guest starts with caches off).
///
/// # Safety
/// `[dst, dst + src.len())` must be RAM owned by a domain that is not
/// running, disjoint from `src` and from hypervisor memory.
pub unsafe fn copy_to(dst: u64, src: &[u8]) {
    // SAFETY: forwarded from this function's contract.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
    super::cache::clean_to_poc(dst as usize, src.len());
}

/// Zero `len` bytes of host RAM at `pa`.
///
/// # Safety
/// `[pa, pa + len)` must be RAM in the identity map that nothing else uses.
pub unsafe fn zero(pa: u64, len: usize) {
    // SAFETY: the caller guarantees the range is unused RAM.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, len) };
}
