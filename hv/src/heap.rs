//! The hypervisor heap: a fixed region in .bss behind a locked first-fit
//! allocator. Holds stage-2 tables, device-tree buffers and domain state.

use linked_list_allocator::LockedHeap;

const HEAP_SIZE: usize = 32 << 20;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hand the heap region to the allocator. Called once, on the boot CPU.
pub fn init() {
    let start = core::ptr::addr_of_mut!(HEAP_SPACE) as *mut u8;
    // SAFETY: the region is a static used for nothing else, and `init` runs once.
    unsafe { HEAP.lock().init(start, HEAP_SIZE) };
}

/// Bytes currently free in the heap.
pub fn free_bytes() -> usize {
    HEAP.lock().free()
}
