//! `public/vcpu.h`: `vcpu_op(cmd, vcpuid, arg)` sub-ops and argument structs,
//! and the runstate area layout.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const VCPUOP_initialise: u32 = 0;
pub const VCPUOP_up: u32 = 1;
pub const VCPUOP_down: u32 = 2;
pub const VCPUOP_is_up: u32 = 3;
/// OUT: [`VcpuRunstateInfo`].
pub const VCPUOP_get_runstate_info: u32 = 4;
/// IN: [`VcpuRegisterRunstateMemoryArea`].
pub const VCPUOP_register_runstate_memory_area: u32 = 5;
/// IN: [`VcpuSetPeriodicTimer`].
pub const VCPUOP_set_periodic_timer: u32 = 6;
pub const VCPUOP_stop_periodic_timer: u32 = 7;
/// IN: [`VcpuSetSingleshotTimer`].
pub const VCPUOP_set_singleshot_timer: u32 = 8;
pub const VCPUOP_stop_singleshot_timer: u32 = 9;
/// IN: [`VcpuRegisterVcpuInfo`].
pub const VCPUOP_register_vcpu_info: u32 = 10;
pub const VCPUOP_send_nmi: u32 = 11;
/// OUT: [`VcpuGetPhysid`].
pub const VCPUOP_get_physid: u32 = 12;
/// IN: [`VcpuRegisterTimeMemoryArea`].
pub const VCPUOP_register_vcpu_time_memory_area: u32 = 13;

// `vcpu_runstate_info.state`.
/// Currently scheduled on a pCPU.
pub const RUNSTATE_running: i32 = 0;
/// Runnable, waiting for a pCPU.
pub const RUNSTATE_runnable: i32 = 1;
/// Blocked waiting for an event.
pub const RUNSTATE_blocked: i32 = 2;
/// Not runnable for another reason (down, paused).
pub const RUNSTATE_offline: i32 = 3;

/// Set in `state_entry_time` while Xen updates the area (if
/// `VMASST_TYPE_runstate_update_flag` is enabled).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// Per-vCPU runstate accounting (48 bytes).
#[doc(alias = "vcpu_runstate_info")]
#[doc(alias = "vcpu_runstate_info_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*`.
    pub state: i32,
    /// Implicit C padding.
    pub _pad0: u32,
    /// System time (ns) when `state` was entered (bit 63: `XEN_RUNSTATE_UPDATE`).
    pub state_entry_time: u64,
    /// Cumulative ns spent in each `RUNSTATE_*`.
    pub time: [u64; 4],
}
layout!(VcpuRunstateInfo, 48, 8; state @ 0, state_entry_time @ 8, time @ 16);

/// `VCPUOP_register_runstate_memory_area`.
#[doc(alias = "vcpu_register_runstate_memory_area")]
#[doc(alias = "vcpu_register_runstate_memory_area_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRegisterRunstateMemoryArea {
    /// IN: guest virtual address of a [`VcpuRunstateInfo`] (C union `addr`
    /// of handle `h`, pointer `v` and `uint64_t p`).
    pub addr: u64,
}
layout!(VcpuRegisterRunstateMemoryArea, 8, 8; addr @ 0);

/// `VCPUOP_set_periodic_timer`.
#[doc(alias = "vcpu_set_periodic_timer")]
#[doc(alias = "vcpu_set_periodic_timer_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuSetPeriodicTimer {
    /// IN.
    pub period_ns: u64,
}
layout!(VcpuSetPeriodicTimer, 8, 8; period_ns @ 0);

/// `vcpu_set_singleshot_timer.flags`: fail with `-ETIME` if the timeout is in
/// the past.
pub const _VCPU_SSHOTTMR_future: u32 = 0;
pub const VCPU_SSHOTTMR_future: u32 = 1 << _VCPU_SSHOTTMR_future;

/// `VCPUOP_set_singleshot_timer`.
#[doc(alias = "vcpu_set_singleshot_timer")]
#[doc(alias = "vcpu_set_singleshot_timer_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuSetSingleshotTimer {
    /// IN: absolute system time (ns).
    pub timeout_abs_ns: u64,
    /// IN: `VCPU_SSHOTTMR_*`.
    pub flags: u32,
    /// Implicit C padding.
    pub _pad0: u32,
}
layout!(VcpuSetSingleshotTimer, 16, 8; timeout_abs_ns @ 0, flags @ 8);

/// `VCPUOP_register_vcpu_info`: move the vCPU's `vcpu_info` into guest memory.
#[doc(alias = "vcpu_register_vcpu_info")]
#[doc(alias = "vcpu_register_vcpu_info_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRegisterVcpuInfo {
    /// IN: frame holding the `vcpu_info` (a GFN for translated guests).
    pub mfn: u64,
    /// IN: byte offset of the `vcpu_info` within that frame.
    pub offset: u32,
    /// IN: unused, must be zero.
    pub rsvd: u32,
}
layout!(VcpuRegisterVcpuInfo, 16, 8; mfn @ 0, offset @ 8, rsvd @ 12);

/// `VCPUOP_get_physid` (x86).
#[doc(alias = "vcpu_get_physid")]
#[doc(alias = "vcpu_get_physid_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuGetPhysid {
    /// OUT.
    pub phys_id: u64,
}
layout!(VcpuGetPhysid, 8, 8; phys_id @ 0);

/// `VCPUOP_register_vcpu_time_memory_area` (x86).
#[doc(alias = "vcpu_register_time_memory_area")]
#[doc(alias = "vcpu_register_time_memory_area_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuRegisterTimeMemoryArea {
    /// IN: guest virtual address of a `vcpu_time_info` (C union `addr`).
    pub addr: u64,
}
layout!(VcpuRegisterTimeMemoryArea, 8, 8; addr @ 0);
