//! `public/xen.h` and `public/arch-arm.h`: hypercall numbers, special domain
//! ids, the basic scalar types, and the shared-info page layout
//! (`shared_info`, `vcpu_info`, `vcpu_time_info`).
//!
//! On arm64 a hypercall is `HVC #XEN_HYPERCALL_TAG` with the number in x16,
//! arguments in x0..x4 and the result (`>= 0` or `-errno`) in x0.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `domid_t`.
pub type DomId = u16;
/// `xen_pfn_t` (arm: `uint64_t`); a guest frame number when the caller is translated.
pub type XenPfn = u64;
/// `xen_ulong_t` (arm: `uint64_t`).
pub type XenUlong = u64;
/// `XEN_GUEST_HANDLE(...)` inside a struct (arm: 8 bytes, 8-aligned): a guest
/// virtual address.
pub type GuestHandle = u64;
/// `xen_domain_handle_t`: the domain's UUID.
pub type XenDomainHandle = [u8; 16];

/// Immediate of the `HVC` instruction that makes a Xen hypercall (`HVC #0xEA1`).
pub const XEN_HYPERCALL_TAG: u16 = 0xEA1;

// Hypercall numbers (`__HYPERVISOR_*`), passed in x16 (a full 64-bit register).
pub const HYPERVISOR_set_trap_table: u64 = 0;
pub const HYPERVISOR_mmu_update: u64 = 1;
pub const HYPERVISOR_set_gdt: u64 = 2;
pub const HYPERVISOR_stack_switch: u64 = 3;
pub const HYPERVISOR_set_callbacks: u64 = 4;
pub const HYPERVISOR_fpu_taskswitch: u64 = 5;
/// Compat since 0x00030101.
pub const HYPERVISOR_sched_op_compat: u64 = 6;
pub const HYPERVISOR_platform_op: u64 = 7;
pub const HYPERVISOR_set_debugreg: u64 = 8;
pub const HYPERVISOR_get_debugreg: u64 = 9;
pub const HYPERVISOR_update_descriptor: u64 = 10;
pub const HYPERVISOR_memory_op: u64 = 12;
pub const HYPERVISOR_multicall: u64 = 13;
pub const HYPERVISOR_update_va_mapping: u64 = 14;
pub const HYPERVISOR_set_timer_op: u64 = 15;
/// Compat since 0x00030202.
pub const HYPERVISOR_event_channel_op_compat: u64 = 16;
pub const HYPERVISOR_xen_version: u64 = 17;
pub const HYPERVISOR_console_io: u64 = 18;
/// Compat since 0x00030202.
pub const HYPERVISOR_physdev_op_compat: u64 = 19;
pub const HYPERVISOR_grant_table_op: u64 = 20;
pub const HYPERVISOR_vm_assist: u64 = 21;
pub const HYPERVISOR_update_va_mapping_otherdomain: u64 = 22;
/// x86 only.
pub const HYPERVISOR_iret: u64 = 23;
pub const HYPERVISOR_vcpu_op: u64 = 24;
/// x86/64 only.
pub const HYPERVISOR_set_segment_base: u64 = 25;
pub const HYPERVISOR_mmuext_op: u64 = 26;
pub const HYPERVISOR_xsm_op: u64 = 27;
pub const HYPERVISOR_nmi_op: u64 = 28;
pub const HYPERVISOR_sched_op: u64 = 29;
pub const HYPERVISOR_callback_op: u64 = 30;
pub const HYPERVISOR_xenoprof_op: u64 = 31;
pub const HYPERVISOR_event_channel_op: u64 = 32;
pub const HYPERVISOR_physdev_op: u64 = 33;
pub const HYPERVISOR_hvm_op: u64 = 34;
pub const HYPERVISOR_sysctl: u64 = 35;
pub const HYPERVISOR_domctl: u64 = 36;
pub const HYPERVISOR_kexec_op: u64 = 37;
pub const HYPERVISOR_tmem_op: u64 = 38;
pub const HYPERVISOR_argo_op: u64 = 39;
pub const HYPERVISOR_xenpmu_op: u64 = 40;
pub const HYPERVISOR_dm_op: u64 = 41;
pub const HYPERVISOR_hypfs_op: u64 = 42;
pub const HYPERVISOR_arch_0: u64 = 48;
pub const HYPERVISOR_arch_1: u64 = 49;
pub const HYPERVISOR_arch_2: u64 = 50;
pub const HYPERVISOR_arch_3: u64 = 51;
pub const HYPERVISOR_arch_4: u64 = 52;
pub const HYPERVISOR_arch_5: u64 = 53;
pub const HYPERVISOR_arch_6: u64 = 54;
pub const HYPERVISOR_arch_7: u64 = 55;

// Special domain ids (`domid_t`).
/// First reserved id; real domains are `0 .. DOMID_FIRST_RESERVED`.
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// The calling domain.
pub const DOMID_SELF: DomId = 0x7FF0;
pub const DOMID_IO: DomId = 0x7FF1;
pub const DOMID_XEN: DomId = 0x7FF2;
pub const DOMID_COW: DomId = 0x7FF3;
pub const DOMID_INVALID: DomId = 0x7FF4;
pub const DOMID_IDLE: DomId = 0x7FFF;
pub const DOMID_MASK: DomId = 0x7FFF;

/// `XEN_LEGACY_MAX_VCPUS` (arm): only vCPU0 has a `vcpu_info` slot in `shared_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 1;

/// `vcpu_time_info.flags`: TSC is stable across vCPUs.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `vcpu_time_info.flags`: the guest was stopped.
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// Per-vCPU pvclock data (32 bytes). Xen on Arm never updates it.
#[doc(alias = "vcpu_time_info")]
#[doc(alias = "vcpu_time_info_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuTimeInfo {
    /// Seqlock-style version: odd while an update is in progress.
    pub version: u32,
    pub pad0: u32,
    /// Counter value at the last update.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*`.
    pub flags: u8,
    pub pad1: [u8; 2],
}
layout!(VcpuTimeInfo, 32, 8; version @ 0, tsc_timestamp @ 8, system_time @ 16,
        tsc_to_system_mul @ 24, tsc_shift @ 28, flags @ 29);

/// `arch_vcpu_info` (arm: empty).
#[doc(alias = "arch_vcpu_info")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ArchVcpuInfo {}
layout!(ArchVcpuInfo, 0, 1);

/// `arch_shared_info` (arm: empty).
#[doc(alias = "arch_shared_info")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ArchSharedInfo {}
layout!(ArchSharedInfo, 0, 1);

/// Per-vCPU event/upcall state (arm: 48 bytes, 8-aligned; must not cross a
/// page once registered with `VCPUOP_register_vcpu_info`).
#[doc(alias = "vcpu_info")]
#[doc(alias = "vcpu_info_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuInfo {
    /// Written non-zero by Xen when an upcall is pending; cleared by the guest.
    pub evtchn_upcall_pending: u8,
    /// `pad0` on Arm (`evtchn_upcall_mask` exists only with
    /// `XEN_HAVE_PV_UPCALL_MASK`, i.e. x86).
    pub pad0: u8,
    /// Implicit C padding.
    pub _pad1: [u8; 6],
    /// 2-level selector: bit `i` = word `i` of `shared_info.evtchn_pending` may
    /// have pending, unmasked ports.
    pub evtchn_pending_sel: XenUlong,
    pub arch: ArchVcpuInfo,
    pub time: VcpuTimeInfo,
}
layout!(VcpuInfo, 48, 8; evtchn_upcall_pending @ 0, pad0 @ 1, evtchn_pending_sel @ 8,
        arch @ 16, time @ 16);

/// The shared-info page (arm: 1088 bytes used), mapped by the guest with
/// `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`.
#[doc(alias = "shared_info")]
#[doc(alias = "shared_info_t")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SharedInfo {
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// 2-level PENDING bits, one per port (4096); set by Xen, cleared by the guest.
    pub evtchn_pending: [XenUlong; 64],
    /// 2-level MASK bits; only the guest writes them.
    pub evtchn_mask: [XenUlong; 64],
    /// Wallclock version counter (odd = update in progress).
    pub wc_version: u32,
    /// Wallclock seconds (low 32 bits) since the epoch at guest start.
    pub wc_sec: u32,
    pub wc_nsec: u32,
    /// Wallclock seconds, high 32 bits (all arches but i386).
    pub wc_sec_hi: u32,
    pub arch: ArchSharedInfo,
}
layout!(SharedInfo, 1088, 8; vcpu_info @ 0, evtchn_pending @ 48, evtchn_mask @ 560,
        wc_version @ 1072, wc_sec @ 1076, wc_nsec @ 1080, wc_sec_hi @ 1084, arch @ 1088);
