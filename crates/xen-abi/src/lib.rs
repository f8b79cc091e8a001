//! The Xen 4.17 public ABI as seen by an arm64 guest: hypercall numbers,
//! constants and `#[repr(C)]` layouts, mirroring `xen/include/public`.
//! Data only: no logic, no unsafe.
//!
//! Conventions:
//! - One module per public header, named after it (`event_channel` ↔
//!   `public/event_channel.h`). `console_io`, `multicall` and `vm_assist`
//!   carry the parts of `xen.h` with those names; `hvm_op` / `hvm_params`
//!   mirror `public/hvm/hvm_op.h` / `public/hvm/params.h`.
//! - Constants keep Xen's exact spelling after the module path
//!   (`event_channel::EVTCHNOP_send`); only `__HYPERVISOR_*` loses its leading
//!   underscores (`xen::HYPERVISOR_memory_op`).
//! - Structs are CamelCase with `#[doc(alias = "<C name>")]`. Every struct is
//!   `#[repr(C)]` with the C compiler's implicit padding spelled out as `_padN`
//!   fields (zero on input), so deriving zerocopy's `IntoBytes` proves there is
//!   no hidden padding. Field docs say IN/OUT where Xen's header does.
//! - Layouts are the arm64 (AAPCS64, little-endian, LP64) ones: guest handles,
//!   `xen_pfn_t` and `xen_ulong_t` are `u64`, 8 bytes and 8-aligned. Pointers
//!   and handles are guest *virtual* addresses of the calling vCPU.
//! - Every struct's size, alignment and key offsets are checked at compile time
//!   (`layout!`), with values taken from the 4.17 headers compiled for arm64.
//! - C unions are modelled as a carrier of the union's size and alignment plus
//!   `const fn` accessors for each member, or, for the 128-byte payload unions
//!   (`platform_op`, `domctl`, `sysctl`), as raw words to be read with
//!   zerocopy (`XenpfSettime64::read_from_prefix(op.u.as_bytes())`).
#![no_std]
#![forbid(unsafe_code)]
#![allow(non_upper_case_globals)]

/// Compile-time layout check: `layout!(Type, size, align; field @ offset, ...)`.
macro_rules! layout {
    ($t:ty, $size:expr, $align:expr $(; $($($f:ident).+ @ $off:expr),* $(,)?)?) => {
        const _: () = assert!(::core::mem::size_of::<$t>() == $size);
        const _: () = assert!(::core::mem::align_of::<$t>() == $align);
        $($(const _: () = assert!(::core::mem::offset_of!($t, $($f).+) == $off);)*)?
    };
}

pub mod arch_arm;
pub mod console_io;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hvm_op;
pub mod hvm_params;
pub mod io;
pub mod memory;
pub mod multicall;
pub mod physdev;
pub mod platform;
pub mod sched;
pub mod vcpu;
pub mod version;
pub mod vm_assist;
pub mod xen;

#[cfg(feature = "tools")]
pub mod domctl;
#[cfg(feature = "tools")]
pub mod sysctl;

#[cfg(test)]
mod tests;
