//! The Xen 4.17 public ABI as seen by an arm64 guest: hypercall numbers,
//! constants and `#[repr(C)]` layouts, mirroring `xen/include/public`.
//! Data only: no logic, no unsafe.
#![no_std]
#![forbid(unsafe_code)]
