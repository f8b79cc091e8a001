//! `public/sysctl.h` (toolstack only, `feature = "tools"`): the `sysctl`
//! hypercall header, command numbers, and the layouts the toolstack needs
//! first.
//!
//! Xen rejects a `xen_sysctl` whose `interface_version` differs from
//! `XEN_SYSCTL_INTERFACE_VERSION` with `-EACCES`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::{DomId, GuestHandle};

pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// The `sysctl` hypercall argument (136 bytes). Read/write the payload with
/// zerocopy, e.g. `XenSysctlPhysinfo::read_from_prefix(s.u.as_bytes())`.
#[doc(alias = "xen_sysctl")]
#[doc(alias = "xen_sysctl_t")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenSysctl {
    /// IN: `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// IN: `XEN_SYSCTL_INTERFACE_VERSION`.
    pub interface_version: u32,
    /// IN/OUT: the per-command union (`u.physinfo`, ..., `u.pad[128]`), 8-aligned.
    pub u: [u64; 16],
}
layout!(XenSysctl, 136, 8; cmd @ 0, interface_version @ 4, u @ 8);

pub const XEN_SYSCTL_readconsole: u32 = 1;
pub const XEN_SYSCTL_tbuf_op: u32 = 2;
pub const XEN_SYSCTL_physinfo: u32 = 3;
pub const XEN_SYSCTL_sched_id: u32 = 4;
pub const XEN_SYSCTL_perfc_op: u32 = 5;
pub const XEN_SYSCTL_getdomaininfolist: u32 = 6;
pub const XEN_SYSCTL_debug_keys: u32 = 7;
pub const XEN_SYSCTL_getcpuinfo: u32 = 8;
pub const XEN_SYSCTL_availheap: u32 = 9;
pub const XEN_SYSCTL_get_pmstat: u32 = 10;
pub const XEN_SYSCTL_cpu_hotplug: u32 = 11;
pub const XEN_SYSCTL_pm_op: u32 = 12;
pub const XEN_SYSCTL_page_offline_op: u32 = 14;
pub const XEN_SYSCTL_lockprof_op: u32 = 15;
pub const XEN_SYSCTL_cputopoinfo: u32 = 16;
pub const XEN_SYSCTL_numainfo: u32 = 17;
pub const XEN_SYSCTL_cpupool_op: u32 = 18;
pub const XEN_SYSCTL_scheduler_op: u32 = 19;
pub const XEN_SYSCTL_coverage_op: u32 = 20;
pub const XEN_SYSCTL_psr_cmt_op: u32 = 21;
pub const XEN_SYSCTL_pcitopoinfo: u32 = 22;
pub const XEN_SYSCTL_psr_alloc: u32 = 23;
pub const XEN_SYSCTL_get_cpu_levelling_caps: u32 = 25;
pub const XEN_SYSCTL_get_cpu_featureset: u32 = 26;
pub const XEN_SYSCTL_livepatch_op: u32 = 27;
pub const XEN_SYSCTL_get_cpu_policy: u32 = 29;

// `xen_sysctl_physinfo.capabilities`.
pub const _XEN_SYSCTL_PHYSCAP_hvm: u32 = 0;
/// HVM guests supported.
pub const XEN_SYSCTL_PHYSCAP_hvm: u32 = 1 << _XEN_SYSCTL_PHYSCAP_hvm;
pub const _XEN_SYSCTL_PHYSCAP_pv: u32 = 1;
/// PV guests supported.
pub const XEN_SYSCTL_PHYSCAP_pv: u32 = 1 << _XEN_SYSCTL_PHYSCAP_pv;
pub const _XEN_SYSCTL_PHYSCAP_directio: u32 = 2;
/// Device passthrough (IOMMU) available.
pub const XEN_SYSCTL_PHYSCAP_directio: u32 = 1 << _XEN_SYSCTL_PHYSCAP_directio;
pub const _XEN_SYSCTL_PHYSCAP_hap: u32 = 3;
pub const XEN_SYSCTL_PHYSCAP_hap: u32 = 1 << _XEN_SYSCTL_PHYSCAP_hap;
pub const _XEN_SYSCTL_PHYSCAP_shadow: u32 = 4;
pub const XEN_SYSCTL_PHYSCAP_shadow: u32 = 1 << _XEN_SYSCTL_PHYSCAP_shadow;
pub const _XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share: u32 = 5;
pub const XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share: u32 = 1 << _XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share;
pub const XEN_SYSCTL_PHYSCAP_vmtrace: u32 = 1 << 6;
pub const XEN_SYSCTL_PHYSCAP_vpmu: u32 = 1 << 7;
pub const XEN_SYSCTL_PHYSCAP_gnttab_v1: u32 = 1 << 8;
pub const XEN_SYSCTL_PHYSCAP_gnttab_v2: u32 = 1 << 9;
pub const XEN_SYSCTL_PHYSCAP_MAX: u32 = XEN_SYSCTL_PHYSCAP_gnttab_v2;

/// `XEN_SYSCTL_physinfo` payload (112 bytes). All fields OUT.
#[doc(alias = "xen_sysctl_physinfo")]
#[doc(alias = "xen_sysctl_physinfo_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenSysctlPhysinfo {
    pub threads_per_core: u32,
    pub cores_per_socket: u32,
    /// CPUs currently online.
    pub nr_cpus: u32,
    /// Largest possible CPU id on this host.
    pub max_cpu_id: u32,
    /// NUMA nodes currently online.
    pub nr_nodes: u32,
    /// Largest possible node id on this host.
    pub max_node_id: u32,
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    /// Arch-specific capabilities (none defined for Arm in 4.17).
    pub arch_capabilities: u32,
    pub pad: u32,
    pub total_pages: u64,
    pub free_pages: u64,
    pub scrub_pages: u64,
    pub outstanding_pages: u64,
    /// Largest possible MFN on this host.
    pub max_mfn: u64,
    pub hw_cap: [u32; 8],
}
layout!(XenSysctlPhysinfo, 112, 8; threads_per_core @ 0, cores_per_socket @ 4, nr_cpus @ 8,
        max_cpu_id @ 12, nr_nodes @ 16, max_node_id @ 20, cpu_khz @ 24, capabilities @ 28,
        arch_capabilities @ 32, pad @ 36, total_pages @ 40, free_pages @ 48, scrub_pages @ 56,
        outstanding_pages @ 64, max_mfn @ 72, hw_cap @ 80);

/// `XEN_SYSCTL_getdomaininfolist` payload.
#[doc(alias = "xen_sysctl_getdomaininfolist")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenSysctlGetdomaininfolist {
    /// IN: first domain id to report.
    pub first_domain: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// IN: capacity of `buffer`.
    pub max_domains: u32,
    /// IN: handle to `xen_domctl_getdomaininfo_t[max_domains]` (filled OUT).
    pub buffer: GuestHandle,
    /// OUT: entries written.
    pub num_domains: u32,
    /// Implicit C tail padding.
    pub _pad1: u32,
}
layout!(XenSysctlGetdomaininfolist, 24, 8; first_domain @ 0, max_domains @ 4, buffer @ 8,
        num_domains @ 16);

// `xen_sysctl_cpupool_op.op` (payload: op, cpupool_id, sched_id, domid, cpu,
// n_dom as u32s, then an `xenctl_bitmap` cpumap at byte 24).
pub const XEN_SYSCTL_CPUPOOL_OP_CREATE: u32 = 1;
pub const XEN_SYSCTL_CPUPOOL_OP_DESTROY: u32 = 2;
pub const XEN_SYSCTL_CPUPOOL_OP_INFO: u32 = 3;
pub const XEN_SYSCTL_CPUPOOL_OP_ADDCPU: u32 = 4;
pub const XEN_SYSCTL_CPUPOOL_OP_RMCPU: u32 = 5;
pub const XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN: u32 = 6;
pub const XEN_SYSCTL_CPUPOOL_OP_FREEINFO: u32 = 7;
