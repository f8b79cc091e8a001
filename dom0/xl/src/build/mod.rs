//! The pure parts of building a domU (what libxenguest and libxl compute
//! before and while they issue hypercalls), testable without a hypervisor:
//!
//! * [`image`]: the arm64 `Image` header
//! * [`layout`]: where RAM, kernel, ramdisk and device tree go, and the
//!   `populate_physmap` extents
//! * [`dtb`]: the guest's device tree (libxl_arm.c's nodes)
//! * [`xsents`]: the xenstore entries libxl writes for a new domain

pub mod dtb;
pub mod image;
pub mod layout;
pub mod xsents;

/// Xen's page size and shift on Arm.
pub const PAGE_SIZE: u64 = 4096;
/// `XC_PAGE_SHIFT`.
pub const PAGE_SHIFT: u32 = 12;
/// 2 MiB: the alignment of the ramdisk and device tree, and the superpage
/// size of `populate_physmap` extents of order 9.
pub const MIB2: u64 = 2 << 20;

/// `x` rounded up to a multiple of `align` (a power of two).
pub fn align_up(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    Some(x.checked_add(align - 1)? & !(align - 1))
}
