//! `public/platform.h`: `platform_op(op)` (privileged). Arm 4.17 implements
//! only `XENPF_settime64`; the other command numbers are listed for
//! completeness.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Required value of `xen_platform_op.interface_version` (else `-EACCES`).
pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;

pub const XENPF_settime32: u32 = 17;
pub const XENPF_add_memtype: u32 = 31;
pub const XENPF_del_memtype: u32 = 32;
pub const XENPF_read_memtype: u32 = 33;
pub const XENPF_microcode_update: u32 = 35;
pub const XENPF_platform_quirk: u32 = 39;
pub const XENPF_get_cpu_version: u32 = 48;
pub const XENPF_efi_runtime_call: u32 = 49;
pub const XENPF_firmware_info: u32 = 50;
pub const XENPF_enter_acpi_sleep: u32 = 51;
pub const XENPF_change_freq: u32 = 52;
pub const XENPF_getidletime: u32 = 53;
pub const XENPF_set_processor_pminfo: u32 = 54;
pub const XENPF_get_cpuinfo: u32 = 55;
pub const XENPF_cpu_online: u32 = 56;
pub const XENPF_cpu_offline: u32 = 57;
pub const XENPF_cpu_hotadd: u32 = 58;
pub const XENPF_mem_hotadd: u32 = 59;
pub const XENPF_core_parking: u32 = 60;
pub const XENPF_resource_op: u32 = 61;
/// IN: [`XenpfSettime64`].
pub const XENPF_settime64: u32 = 62;
pub const XENPF_get_symbol: u32 = 63;
/// `XENPF_settime` for interface versions >= 0x00040600.
pub const XENPF_settime: u32 = XENPF_settime64;

/// Argument of every platform op (136 bytes): a header plus a 128-byte
/// payload union. Read the payload with zerocopy, e.g.
/// `XenpfSettime64::read_from_prefix(op.u.as_bytes())`.
#[doc(alias = "xen_platform_op")]
#[doc(alias = "xen_platform_op_t")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenPlatformOp {
    /// IN: `XENPF_*`.
    pub cmd: u32,
    /// IN: `XENPF_INTERFACE_VERSION`.
    pub interface_version: u32,
    /// IN/OUT: the per-command union (`u.settime64`, ..., `u.pad[128]`),
    /// 8-aligned.
    pub u: [u64; 16],
}
layout!(XenPlatformOp, 136, 8; cmd @ 0, interface_version @ 4, u @ 8);

/// `XENPF_settime64`: set the wallclock so that it reads `secs.nsecs` (since
/// the Unix epoch) when system time is `system_time`.
#[doc(alias = "xenpf_settime64")]
#[doc(alias = "xenpf_settime64_t")]
#[doc(alias = "xenpf_settime")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenpfSettime64 {
    /// IN.
    pub secs: u64,
    /// IN.
    pub nsecs: u32,
    /// IN: must be zero.
    pub mbz: u32,
    /// IN: hypervisor system time (ns) the values correspond to.
    pub system_time: u64,
}
layout!(XenpfSettime64, 24, 8; secs @ 0, nsecs @ 8, mbz @ 12, system_time @ 16);

/// `XENPF_settime32`.
#[doc(alias = "xenpf_settime32")]
#[doc(alias = "xenpf_settime32_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenpfSettime32 {
    /// IN.
    pub secs: u32,
    /// IN.
    pub nsecs: u32,
    /// IN.
    pub system_time: u64,
}
layout!(XenpfSettime32, 16, 8; secs @ 0, nsecs @ 4, system_time @ 8);
