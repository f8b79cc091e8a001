//! The `sysctl` / `domctl` payloads this backend needs that `xen-abi` does not
//! carry yet, from Xen 4.17's `public/sysctl.h` and `public/domctl.h` (arm64
//! layouts, implicit padding spelled out so `IntoBytes` derives).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! layout {
    ($t:ty, $size:expr, $align:expr; $($f:ident @ $off:expr),* $(,)?) => {
        const _: () = assert!(::core::mem::size_of::<$t>() == $size);
        const _: () = assert!(::core::mem::align_of::<$t>() == $align);
        $(const _: () = assert!(::core::mem::offset_of!($t, $f) == $off);)*
    };
}

/// `struct xenctl_bitmap` (16 bytes): a guest handle to `nr_bits` bits.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenctlBitmap {
    /// Guest handle of the bytes.
    pub bitmap: u64,
    /// Bits in the map (the buffer holds `nr_bits.div_ceil(8)` bytes).
    pub nr_bits: u32,
    /// Implicit C tail padding.
    pub _pad: u32,
}
layout!(XenctlBitmap, 16, 8; bitmap @ 0, nr_bits @ 8);

/// `struct xen_sysctl_readconsole` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenSysctlReadconsole {
    /// IN: clear the ring after reading.
    pub clear: u8,
    /// IN: start at `index` (else at the oldest character).
    pub incremental: u8,
    /// Padding.
    pub pad0: u8,
    /// Padding.
    pub pad1: u8,
    /// IN/OUT: ring index to start at / where reading stopped.
    pub index: u32,
    /// IN: handle of the `count`-byte buffer.
    pub buffer: u64,
    /// IN: buffer size; OUT: bytes written.
    pub count: u32,
    /// Implicit C tail padding.
    pub _pad: u32,
}
layout!(XenSysctlReadconsole, 24, 8; clear @ 0, incremental @ 1, index @ 4, buffer @ 8, count @ 16);

/// `struct xen_sysctl_sched_id`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenSysctlSchedId {
    /// OUT: `XEN_SCHEDULER_*`.
    pub sched_id: u32,
}
layout!(XenSysctlSchedId, 4, 4; sched_id @ 0);

/// `struct xen_sysctl_cpupool_op` (40 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenSysctlCpupoolOp {
    /// IN: `XEN_SYSCTL_CPUPOOL_OP_*`.
    pub op: u32,
    /// IN/OUT.
    pub cpupool_id: u32,
    /// OUT (INFO).
    pub sched_id: u32,
    /// IN (MOVEDOMAIN).
    pub domid: u32,
    /// IN (ADDCPU/RMCPU).
    pub cpu: u32,
    /// OUT (INFO): domains in the pool.
    pub n_dom: u32,
    /// OUT (INFO, FREEINFO).
    pub cpumap: XenctlBitmap,
}
layout!(XenSysctlCpupoolOp, 40, 8; op @ 0, cpupool_id @ 4, sched_id @ 8, domid @ 12, cpu @ 16,
        n_dom @ 20, cpumap @ 24);

/// `struct xen_domctl_getvcpuinfo` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlGetvcpuinfo {
    /// IN.
    pub vcpu: u32,
    /// OUT.
    pub online: u8,
    /// OUT.
    pub blocked: u8,
    /// OUT.
    pub running: u8,
    /// Implicit C padding.
    pub _pad0: u8,
    /// OUT: ns of CPU time used.
    pub cpu_time: u64,
    /// OUT: physical CPU it is on.
    pub cpu: u32,
    /// Implicit C tail padding.
    pub _pad1: u32,
}
layout!(XenDomctlGetvcpuinfo, 24, 8; vcpu @ 0, online @ 4, blocked @ 5, running @ 6, cpu_time @ 8,
        cpu @ 16);

/// `struct xen_domctl_vcpuaffinity` (40 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlVcpuaffinity {
    /// IN.
    pub vcpu: u32,
    /// IN: `XEN_VCPUAFFINITY_*`: which maps to read.
    pub flags: u32,
    /// OUT (with HARD).
    pub cpumap_hard: XenctlBitmap,
    /// OUT (with SOFT).
    pub cpumap_soft: XenctlBitmap,
}
layout!(XenDomctlVcpuaffinity, 40, 8; vcpu @ 0, flags @ 4, cpumap_hard @ 8, cpumap_soft @ 24);
