//! `public/domctl.h` (toolstack only, `feature = "tools"`): the `domctl`
//! hypercall header, command numbers, and the layouts the toolstack needs
//! first. Also `xen_arch_domainconfig` from `public/arch-arm.h`.
//!
//! Xen rejects a `xen_domctl` whose `interface_version` differs from
//! `XEN_DOMCTL_INTERFACE_VERSION` with `-EACCES`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::{DomId, GuestHandle, XenDomainHandle, XenPfn};

pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// The `domctl` hypercall argument (144 bytes). Read/write the payload with
/// zerocopy, e.g. `XenDomctlGetdomaininfo::read_from_prefix(d.u.as_bytes())`.
#[doc(alias = "xen_domctl")]
#[doc(alias = "xen_domctl_t")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenDomctl {
    /// IN: `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// IN: `XEN_DOMCTL_INTERFACE_VERSION`.
    pub interface_version: u32,
    /// IN (IN/OUT for `createdomain`): target domain.
    pub domain: DomId,
    pub _pad: [u16; 3],
    /// IN/OUT: the per-command union (`u.createdomain`, ..., `u.pad[128]`),
    /// 8-aligned.
    pub u: [u64; 16],
}
layout!(XenDomctl, 144, 8; cmd @ 0, interface_version @ 4, domain @ 8, _pad @ 10, u @ 16);

pub const XEN_DOMCTL_createdomain: u32 = 1;
pub const XEN_DOMCTL_destroydomain: u32 = 2;
pub const XEN_DOMCTL_pausedomain: u32 = 3;
pub const XEN_DOMCTL_unpausedomain: u32 = 4;
pub const XEN_DOMCTL_getdomaininfo: u32 = 5;
pub const XEN_DOMCTL_setvcpuaffinity: u32 = 9;
pub const XEN_DOMCTL_shadow_op: u32 = 10;
pub const XEN_DOMCTL_max_mem: u32 = 11;
pub const XEN_DOMCTL_setvcpucontext: u32 = 12;
pub const XEN_DOMCTL_getvcpucontext: u32 = 13;
pub const XEN_DOMCTL_getvcpuinfo: u32 = 14;
pub const XEN_DOMCTL_max_vcpus: u32 = 15;
pub const XEN_DOMCTL_scheduler_op: u32 = 16;
pub const XEN_DOMCTL_setdomainhandle: u32 = 17;
pub const XEN_DOMCTL_setdebugging: u32 = 18;
pub const XEN_DOMCTL_irq_permission: u32 = 19;
pub const XEN_DOMCTL_iomem_permission: u32 = 20;
pub const XEN_DOMCTL_ioport_permission: u32 = 21;
pub const XEN_DOMCTL_hypercall_init: u32 = 22;
/// Hypervisor-internal (`#ifdef __XEN__`).
pub const XEN_DOMCTL_soft_reset_cont: u32 = 23;
pub const XEN_DOMCTL_settimeoffset: u32 = 24;
pub const XEN_DOMCTL_getvcpuaffinity: u32 = 25;
/// Obsolete (PPC only).
pub const XEN_DOMCTL_real_mode_area: u32 = 26;
pub const XEN_DOMCTL_resumedomain: u32 = 27;
pub const XEN_DOMCTL_sendtrigger: u32 = 28;
pub const XEN_DOMCTL_subscribe: u32 = 29;
pub const XEN_DOMCTL_gethvmcontext: u32 = 33;
pub const XEN_DOMCTL_sethvmcontext: u32 = 34;
pub const XEN_DOMCTL_set_address_size: u32 = 35;
pub const XEN_DOMCTL_get_address_size: u32 = 36;
pub const XEN_DOMCTL_assign_device: u32 = 37;
pub const XEN_DOMCTL_bind_pt_irq: u32 = 38;
pub const XEN_DOMCTL_memory_mapping: u32 = 39;
pub const XEN_DOMCTL_ioport_mapping: u32 = 40;
pub const XEN_DOMCTL_set_ext_vcpucontext: u32 = 42;
pub const XEN_DOMCTL_get_ext_vcpucontext: u32 = 43;
/// Obsolete (IA64 only).
pub const XEN_DOMCTL_set_opt_feature: u32 = 44;
pub const XEN_DOMCTL_test_assign_device: u32 = 45;
pub const XEN_DOMCTL_set_target: u32 = 46;
pub const XEN_DOMCTL_deassign_device: u32 = 47;
pub const XEN_DOMCTL_unbind_pt_irq: u32 = 48;
pub const XEN_DOMCTL_get_device_group: u32 = 50;
pub const XEN_DOMCTL_debug_op: u32 = 54;
pub const XEN_DOMCTL_gethvmcontext_partial: u32 = 55;
pub const XEN_DOMCTL_vm_event_op: u32 = 56;
pub const XEN_DOMCTL_mem_sharing_op: u32 = 57;
pub const XEN_DOMCTL_gettscinfo: u32 = 59;
pub const XEN_DOMCTL_settscinfo: u32 = 60;
pub const XEN_DOMCTL_getpageframeinfo3: u32 = 61;
pub const XEN_DOMCTL_setvcpuextstate: u32 = 62;
pub const XEN_DOMCTL_getvcpuextstate: u32 = 63;
pub const XEN_DOMCTL_set_access_required: u32 = 64;
pub const XEN_DOMCTL_audit_p2m: u32 = 65;
pub const XEN_DOMCTL_set_virq_handler: u32 = 66;
pub const XEN_DOMCTL_set_broken_page_p2m: u32 = 67;
pub const XEN_DOMCTL_setnodeaffinity: u32 = 68;
pub const XEN_DOMCTL_getnodeaffinity: u32 = 69;
pub const XEN_DOMCTL_cacheflush: u32 = 71;
pub const XEN_DOMCTL_get_vcpu_msrs: u32 = 72;
pub const XEN_DOMCTL_set_vcpu_msrs: u32 = 73;
pub const XEN_DOMCTL_setvnumainfo: u32 = 74;
pub const XEN_DOMCTL_psr_cmt_op: u32 = 75;
pub const XEN_DOMCTL_monitor_op: u32 = 77;
pub const XEN_DOMCTL_psr_alloc: u32 = 78;
pub const XEN_DOMCTL_soft_reset: u32 = 79;
pub const XEN_DOMCTL_vuart_op: u32 = 81;
pub const XEN_DOMCTL_get_cpu_policy: u32 = 82;
pub const XEN_DOMCTL_set_cpu_policy: u32 = 83;
pub const XEN_DOMCTL_vmtrace_op: u32 = 84;
pub const XEN_DOMCTL_get_paging_mempool_size: u32 = 85;
pub const XEN_DOMCTL_set_paging_mempool_size: u32 = 86;
pub const XEN_DOMCTL_gdbsx_guestmemio: u32 = 1000;
pub const XEN_DOMCTL_gdbsx_pausevcpu: u32 = 1001;
pub const XEN_DOMCTL_gdbsx_unpausevcpu: u32 = 1002;
pub const XEN_DOMCTL_gdbsx_domstatus: u32 = 1003;

// `xen_arch_domainconfig.gic_version`.
pub const XEN_DOMCTL_CONFIG_GIC_NATIVE: u8 = 0;
pub const XEN_DOMCTL_CONFIG_GIC_V2: u8 = 1;
pub const XEN_DOMCTL_CONFIG_GIC_V3: u8 = 2;
// `xen_arch_domainconfig.tee_type`.
pub const XEN_DOMCTL_CONFIG_TEE_NONE: u16 = 0;
pub const XEN_DOMCTL_CONFIG_TEE_OPTEE: u16 = 1;

/// Arm part of `createdomain` / `getdomaininfo` (`public/arch-arm.h`, 12 bytes).
#[doc(alias = "xen_arch_domainconfig")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenArchDomainconfig {
    /// IN/OUT: `XEN_DOMCTL_CONFIG_GIC_*` (NATIVE is replaced by the actual version).
    pub gic_version: u8,
    /// Implicit C padding.
    pub _pad0: u8,
    /// IN: `XEN_DOMCTL_CONFIG_TEE_*`.
    pub tee_type: u16,
    /// IN: number of SPIs of the virtual GIC.
    pub nr_spis: u32,
    /// OUT: the DT timer's `clock-frequency` (0 = absent).
    pub clock_frequency: u32,
}
layout!(XenArchDomainconfig, 12, 4; gic_version @ 0, tee_type @ 2, nr_spis @ 4,
        clock_frequency @ 8);

// `xen_domctl_createdomain.flags`.
pub const _XEN_DOMCTL_CDF_hvm: u32 = 0;
/// HVM guest (required on Arm).
pub const XEN_DOMCTL_CDF_hvm: u32 = 1 << _XEN_DOMCTL_CDF_hvm;
pub const _XEN_DOMCTL_CDF_hap: u32 = 1;
/// Hardware-assisted paging (required on Arm).
pub const XEN_DOMCTL_CDF_hap: u32 = 1 << _XEN_DOMCTL_CDF_hap;
pub const _XEN_DOMCTL_CDF_s3_integrity: u32 = 2;
pub const XEN_DOMCTL_CDF_s3_integrity: u32 = 1 << _XEN_DOMCTL_CDF_s3_integrity;
pub const _XEN_DOMCTL_CDF_oos_off: u32 = 3;
pub const XEN_DOMCTL_CDF_oos_off: u32 = 1 << _XEN_DOMCTL_CDF_oos_off;
pub const _XEN_DOMCTL_CDF_xs_domain: u32 = 4;
/// The domain is a xenstore domain.
pub const XEN_DOMCTL_CDF_xs_domain: u32 = 1 << _XEN_DOMCTL_CDF_xs_domain;
pub const _XEN_DOMCTL_CDF_iommu: u32 = 5;
/// The domain may use the IOMMU.
pub const XEN_DOMCTL_CDF_iommu: u32 = 1 << _XEN_DOMCTL_CDF_iommu;
pub const _XEN_DOMCTL_CDF_nested_virt: u32 = 6;
pub const XEN_DOMCTL_CDF_nested_virt: u32 = 1 << _XEN_DOMCTL_CDF_nested_virt;
pub const XEN_DOMCTL_CDF_vpmu: u32 = 1 << 7;
pub const XEN_DOMCTL_CDF_MAX: u32 = XEN_DOMCTL_CDF_vpmu;

// `xen_domctl_createdomain.iommu_opts`.
pub const _XEN_DOMCTL_IOMMU_no_sharept: u32 = 0;
pub const XEN_DOMCTL_IOMMU_no_sharept: u32 = 1 << _XEN_DOMCTL_IOMMU_no_sharept;
pub const XEN_DOMCTL_IOMMU_MAX: u32 = XEN_DOMCTL_IOMMU_no_sharept;

/// `xen_domctl_createdomain.grant_opts`: grant table version in the low 4 bits.
pub const XEN_DOMCTL_GRANT_version_mask: u32 = 0xf;

/// `XEN_DOMCTL_createdomain` payload (68 bytes). `xen_domctl.domain` is
/// IN/OUT: 0 or `>= DOMID_FIRST_RESERVED` auto-allocates an id.
#[doc(alias = "xen_domctl_createdomain")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlCreatedomain {
    /// IN: XSM security id.
    pub ssidref: u32,
    /// IN: UUID.
    pub handle: XenDomainHandle,
    /// IN: `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    /// IN: `XEN_DOMCTL_IOMMU_*`.
    pub iommu_opts: u32,
    /// IN.
    pub max_vcpus: u32,
    /// IN.
    pub max_evtchn_port: u32,
    /// IN: < 0 = hypervisor default.
    pub max_grant_frames: i32,
    /// IN: < 0 = hypervisor default.
    pub max_maptrack_frames: i32,
    /// IN: `XEN_DOMCTL_GRANT_version_mask` bits = max grant version.
    pub grant_opts: u32,
    /// IN: per-vCPU vmtrace buffer size in bytes (0 = disabled).
    pub vmtrace_size: u32,
    /// IN: CPU pool (0 or an existing pool).
    pub cpupool_id: u32,
    /// IN/OUT.
    pub arch: XenArchDomainconfig,
}
layout!(XenDomctlCreatedomain, 68, 4; ssidref @ 0, handle @ 4, flags @ 20, iommu_opts @ 24,
        max_vcpus @ 28, max_evtchn_port @ 32, max_grant_frames @ 36, max_maptrack_frames @ 40,
        grant_opts @ 44, vmtrace_size @ 48, cpupool_id @ 52, arch @ 56);

// `xen_domctl_getdomaininfo.flags`.
pub const _XEN_DOMINF_dying: u32 = 0;
/// Scheduled to die.
pub const XEN_DOMINF_dying: u32 = 1 << _XEN_DOMINF_dying;
pub const _XEN_DOMINF_hvm_guest: u32 = 1;
pub const XEN_DOMINF_hvm_guest: u32 = 1 << _XEN_DOMINF_hvm_guest;
pub const _XEN_DOMINF_shutdown: u32 = 2;
/// The guest has shut down (reason in `XEN_DOMINF_shutdownmask << shift`).
pub const XEN_DOMINF_shutdown: u32 = 1 << _XEN_DOMINF_shutdown;
pub const _XEN_DOMINF_paused: u32 = 3;
/// Paused by control software.
pub const XEN_DOMINF_paused: u32 = 1 << _XEN_DOMINF_paused;
pub const _XEN_DOMINF_blocked: u32 = 4;
/// Blocked pending an event.
pub const XEN_DOMINF_blocked: u32 = 1 << _XEN_DOMINF_blocked;
pub const _XEN_DOMINF_running: u32 = 5;
/// Currently running.
pub const XEN_DOMINF_running: u32 = 1 << _XEN_DOMINF_running;
pub const _XEN_DOMINF_debugged: u32 = 6;
pub const XEN_DOMINF_debugged: u32 = 1 << _XEN_DOMINF_debugged;
pub const _XEN_DOMINF_xs_domain: u32 = 7;
pub const XEN_DOMINF_xs_domain: u32 = 1 << _XEN_DOMINF_xs_domain;
pub const _XEN_DOMINF_hap: u32 = 8;
pub const XEN_DOMINF_hap: u32 = 1 << _XEN_DOMINF_hap;
/// Mask of the guest-supplied shutdown code, after shifting by
/// `XEN_DOMINF_shutdownshift`.
pub const XEN_DOMINF_shutdownmask: u32 = 255;
pub const XEN_DOMINF_shutdownshift: u32 = 16;

/// `getdomaininfo.max_vcpu_id` of a domain without vCPUs.
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// `XEN_DOMCTL_getdomaininfo` payload (120 bytes; also the element of
/// `XEN_SYSCTL_getdomaininfolist`). All fields OUT.
#[doc(alias = "xen_domctl_getdomaininfo")]
#[doc(alias = "xen_domctl_getdomaininfo_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlGetdomaininfo {
    /// OUT: also echoed in `xen_domctl.domain`.
    pub domain: DomId,
    pub pad1: u16,
    /// OUT: `XEN_DOMINF_*`.
    pub flags: u32,
    /// OUT.
    pub tot_pages: u64,
    /// OUT.
    pub max_pages: u64,
    /// OUT.
    pub outstanding_pages: u64,
    /// OUT.
    pub shr_pages: u64,
    /// OUT.
    pub paged_pages: u64,
    /// OUT: GMFN of the shared-info page.
    pub shared_info_frame: u64,
    /// OUT: ns of CPU time used.
    pub cpu_time: u64,
    /// OUT: vCPUs currently online.
    pub nr_online_vcpus: u32,
    /// OUT: highest vCPU id in use (`XEN_INVALID_MAX_VCPU_ID` if none).
    pub max_vcpu_id: u32,
    /// OUT.
    pub ssidref: u32,
    /// OUT: UUID.
    pub handle: XenDomainHandle,
    /// OUT.
    pub cpupool: u32,
    /// OUT: guest physical address size in bits.
    pub gpaddr_bits: u8,
    pub pad2: [u8; 7],
    /// OUT.
    pub arch_config: XenArchDomainconfig,
    /// Implicit C tail padding (to 8-byte alignment).
    pub _pad3: u32,
}
layout!(XenDomctlGetdomaininfo, 120, 8; domain @ 0, flags @ 4, tot_pages @ 8, max_pages @ 16,
        outstanding_pages @ 24, shr_pages @ 32, paged_pages @ 40, shared_info_frame @ 48,
        cpu_time @ 56, nr_online_vcpus @ 64, max_vcpu_id @ 68, ssidref @ 72, handle @ 76,
        cpupool @ 92, gpaddr_bits @ 96, pad2 @ 97, arch_config @ 104);

/// `XEN_DOMCTL_max_mem` payload.
#[doc(alias = "xen_domctl_max_mem")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlMaxMem {
    /// IN: memory limit in KiB.
    pub max_memkb: u64,
}
layout!(XenDomctlMaxMem, 8, 8; max_memkb @ 0);

/// `XEN_DOMCTL_max_vcpus` payload.
#[doc(alias = "xen_domctl_max_vcpus")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlMaxVcpus {
    /// IN: maximum number of vCPUs.
    pub max: u32,
}
layout!(XenDomctlMaxVcpus, 4, 4; max @ 0);

/// `XEN_DOMCTL_cacheflush` payload.
#[doc(alias = "xen_domctl_cacheflush")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlCacheflush {
    /// IN: first GFN to clean and invalidate.
    pub start_pfn: XenPfn,
    /// IN: number of pages.
    pub nr_pfns: XenPfn,
}
layout!(XenDomctlCacheflush, 16, 8; start_pfn @ 0, nr_pfns @ 8);

/// `XEN_DOMCTL_{set,get}vcpucontext` payload (16 bytes).
#[doc(alias = "xen_domctl_vcpucontext")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenDomctlVcpucontext {
    /// IN: vCPU id.
    pub vcpu: u32,
    /// Implicit C padding.
    pub _pad0: u32,
    /// IN/OUT: handle to a `vcpu_guest_context` (`arch_arm::VcpuGuestContext`);
    /// `set` with a null handle resets the vCPU.
    pub ctxt: GuestHandle,
}
layout!(XenDomctlVcpucontext, 16, 8; vcpu @ 0, ctxt @ 8);

// Scheduler ids (`XEN_SYSCTL_sched_id`, `XEN_DOMCTL_scheduler_op`).
pub const XEN_SCHEDULER_CREDIT: u32 = 5;
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
pub const XEN_SCHEDULER_ARINC653: u32 = 7;
pub const XEN_SCHEDULER_RTDS: u32 = 8;
pub const XEN_SCHEDULER_NULL: u32 = 9;

// `xen_domctl_vcpuaffinity.flags`: which maps (each an `xenctl_bitmap`
// {bitmap handle u64, nr_bits u32}) the call reads or fills.
pub const XEN_VCPUAFFINITY_HARD: u32 = 1 << 0;
pub const XEN_VCPUAFFINITY_SOFT: u32 = 1 << 1;
pub const XEN_VCPUAFFINITY_FORCE: u32 = 1 << 2;
