//! `console_io(cmd, count, buf)` sub-ops (`CONSOLEIO_*`, from `public/xen.h`).
//! `buf` is a guest virtual address of `count` bytes.

/// Write `count` bytes from `buf` to the hypervisor console.
pub const CONSOLEIO_write: u32 = 0;
/// Read up to `count` bytes of console input into `buf`; returns the count read.
pub const CONSOLEIO_read: u32 = 1;
