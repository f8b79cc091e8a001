//! Volatile access to device registers the hypervisor owns.

/// A device register window. Only `hw` builds one, from a range the host
/// device tree describes and the EL2 identity map covers as Device memory.
#[derive(Clone, Copy)]
pub struct Mmio {
    base: usize,
    size: usize,
}

impl Mmio {
    /// # Safety
    /// `[base, base + size)` must be a device register window mapped as
    /// Device memory at EL2 and owned by the hypervisor (not given to a guest).
    pub const unsafe fn new(base: usize, size: usize) -> Mmio {
        Mmio { base, size }
    }

    #[inline]
    pub fn read32(&self, off: usize) -> u32 {
        assert!(off + 4 <= self.size && off % 4 == 0);
        // SAFETY: in bounds of a window `new`'s contract makes valid.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u32) }
    }

    #[inline]
    pub fn write32(&self, off: usize, v: u32) {
        assert!(off + 4 <= self.size && off % 4 == 0);
        // SAFETY: in bounds of a window `new`'s contract makes valid.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, v) }
    }

    #[inline]
    pub fn read64(&self, off: usize) -> u64 {
        assert!(off + 8 <= self.size && off % 8 == 0);
        // SAFETY: in bounds of a window `new`'s contract makes valid.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u64) }
    }

    #[inline]
    pub fn write64(&self, off: usize, v: u64) {
        assert!(off + 8 <= self.size && off % 8 == 0);
        // SAFETY: in bounds of a window `new`'s contract makes valid.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u64, v) }
    }
}
