//! `public/memory.h`: `memory_op(cmd, arg)` sub-ops and argument structs.
//!
//! Xen takes the op from the low 6 bits of `cmd` and uses the bits above as
//! the restart extent of a continuation (`MEMOP_EXTENT_SHIFT` = 6 in Xen's
//! internal `xen/hypercall.h`, not in the public header).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::{DomId, GuestHandle, XenPfn, XenUlong};

pub const XENMEM_increase_reservation: u32 = 0;
pub const XENMEM_decrease_reservation: u32 = 1;
pub const XENMEM_maximum_ram_page: u32 = 2;
pub const XENMEM_current_reservation: u32 = 3;
pub const XENMEM_maximum_reservation: u32 = 4;
pub const XENMEM_machphys_mfn_list: u32 = 5;
pub const XENMEM_populate_physmap: u32 = 6;
pub const XENMEM_add_to_physmap: u32 = 7;
pub const XENMEM_memory_map: u32 = 9;
pub const XENMEM_machine_memory_map: u32 = 10;
pub const XENMEM_exchange: u32 = 11;
pub const XENMEM_machphys_mapping: u32 = 12;
pub const XENMEM_set_memory_map: u32 = 13;
pub const XENMEM_maximum_gpfn: u32 = 14;
pub const XENMEM_remove_from_physmap: u32 = 15;
pub const XENMEM_set_pod_target: u32 = 16;
pub const XENMEM_get_pod_target: u32 = 17;
/// Tools only.
pub const XENMEM_get_sharing_freed_pages: u32 = 18;
/// Tools only.
pub const XENMEM_get_sharing_shared_pages: u32 = 19;
/// Tools only.
pub const XENMEM_paging_op: u32 = 20;
/// Tools only.
pub const XENMEM_access_op: u32 = 21;
/// Tools only.
pub const XENMEM_sharing_op: u32 = 22;
pub const XENMEM_add_to_physmap_batch: u32 = 23;
/// Tools only.
pub const XENMEM_claim_pages: u32 = 24;
pub const XENMEM_machphys_compat_mfn_list: u32 = 25;
pub const XENMEM_get_vnumainfo: u32 = 26;
/// Tools only.
pub const XENMEM_reserved_device_memory_map: u32 = 27;
pub const XENMEM_acquire_resource: u32 = 28;

// `xen_memory_reservation.mem_flags`: bits 7:0 = address bits (0 = any),
// bits 15:8 = NUMA node + 1 (0 = any), plus:
pub const XENMEMF_populate_on_demand: u32 = 1 << 16;
pub const XENMEMF_exact_node_request: u32 = 1 << 17;
pub const XENMEMF_vnode: u32 = 1 << 18;

/// Argument of `XENMEM_{increase,decrease}_reservation` and
/// `XENMEM_populate_physmap`. The hypercall returns the number of extents
/// completed.
#[doc(alias = "xen_memory_reservation")]
#[doc(alias = "xen_memory_reservation_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryReservation {
    /// Handle to `xen_pfn_t[nr_extents]`: `increase_reservation` OUT (MFNs);
    /// `decrease_reservation` IN (GFNs to free); `populate_physmap` IN (GFNs
    /// to populate) / OUT.
    pub extent_start: GuestHandle,
    /// IN: number of extents.
    pub nr_extents: XenUlong,
    /// IN: each extent is `2^extent_order` pages.
    pub extent_order: u32,
    /// IN: `XENMEMF_*`.
    pub mem_flags: u32,
    /// IN: target domain (usually `DOMID_SELF`).
    pub domid: DomId,
    /// Implicit C padding.
    pub _pad0: [u8; 6],
}
layout!(XenMemoryReservation, 32, 8; extent_start @ 0, nr_extents @ 8, extent_order @ 16,
        mem_flags @ 20, domid @ 24);

// `xen_add_to_physmap.space` (u32) / `xen_add_to_physmap_batch.space` (u16).
pub const XENMAPSPACE_shared_info: u32 = 0;
pub const XENMAPSPACE_grant_table: u32 = 1;
pub const XENMAPSPACE_gmfn: u32 = 2;
pub const XENMAPSPACE_gmfn_range: u32 = 3;
/// `add_to_physmap_batch` only.
pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
/// `add_to_physmap_batch` only (hardware domain).
pub const XENMAPSPACE_dev_mmio: u32 = 5;

/// In `xen_add_to_physmap.idx` with `XENMAPSPACE_grant_table`: select a
/// (v2) status frame instead of a shared frame.
pub const XENMAPIDX_grant_table_status: XenUlong = 0x8000_0000;

/// Argument of `XENMEM_add_to_physmap`.
#[doc(alias = "xen_add_to_physmap")]
#[doc(alias = "xen_add_to_physmap_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenAddToPhysmap {
    /// IN: domain whose physmap is changed.
    pub domid: DomId,
    /// IN: number of pages (`XENMAPSPACE_gmfn_range` only).
    pub size: u16,
    /// IN: `XENMAPSPACE_*`.
    pub space: u32,
    /// IN: index into the source space (e.g. grant frame number).
    pub idx: XenUlong,
    /// IN: GFN where the source page is mapped.
    pub gpfn: XenPfn,
}
layout!(XenAddToPhysmap, 24, 8; domid @ 0, size @ 2, space @ 4, idx @ 8, gpfn @ 16);

/// Argument of `XENMEM_add_to_physmap_batch`.
#[doc(alias = "xen_add_to_physmap_batch")]
#[doc(alias = "xen_add_to_physmap_batch_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenAddToPhysmapBatch {
    /// IN: domain whose physmap is changed.
    pub domid: DomId,
    /// IN: `XENMAPSPACE_*` (16-bit here).
    pub space: u16,
    /// IN: number of entries in the three arrays.
    pub size: u16,
    /// IN: C `u.foreign_domid` (union with `u.res0`): the source domain for
    /// `XENMAPSPACE_gmfn_foreign`, else must be 0.
    pub foreign_domid: DomId,
    /// IN: handle to `xen_ulong_t[size]`: indexes into the source space.
    pub idxs: GuestHandle,
    /// IN: handle to `xen_pfn_t[size]`: GFNs to map them at.
    pub gpfns: GuestHandle,
    /// OUT: handle to `int[size]`: per-entry result (0 or `-errno`).
    pub errs: GuestHandle,
}
layout!(XenAddToPhysmapBatch, 32, 8; domid @ 0, space @ 2, size @ 4, foreign_domid @ 6,
        idxs @ 8, gpfns @ 16, errs @ 24);

/// Argument of `XENMEM_remove_from_physmap`.
#[doc(alias = "xen_remove_from_physmap")]
#[doc(alias = "xen_remove_from_physmap_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenRemoveFromPhysmap {
    /// IN: domain whose physmap is changed.
    pub domid: DomId,
    /// Implicit C padding.
    pub _pad0: [u8; 6],
    /// IN: GFN to unmap.
    pub gpfn: XenPfn,
}
layout!(XenRemoveFromPhysmap, 16, 8; domid @ 0, gpfn @ 8);

/// Argument of `XENMEM_memory_map` / `XENMEM_machine_memory_map` (x86 only).
#[doc(alias = "xen_memory_map")]
#[doc(alias = "xen_memory_map_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryMap {
    /// IN: entries available in `buffer`; OUT: entries written.
    pub nr_entries: u32,
    /// Implicit C padding.
    pub _pad0: u32,
    /// OUT: handle to an e820-style array.
    pub buffer: GuestHandle,
}
layout!(XenMemoryMap, 16, 8; nr_entries @ 0, buffer @ 8);

// `xen_mem_acquire_resource.type`.
pub const XENMEM_resource_ioreq_server: u16 = 0;
pub const XENMEM_resource_grant_table: u16 = 1;
pub const XENMEM_resource_vmtrace_buf: u16 = 2;
// `xen_mem_acquire_resource.id` for `XENMEM_resource_grant_table`.
pub const XENMEM_resource_grant_table_id_shared: u32 = 0;
pub const XENMEM_resource_grant_table_id_status: u32 = 1;
/// `frame` for `XENMEM_resource_ioreq_server`: the buffered ioreq page
/// (synchronous ioreq page `n` is frame `1 + n`).
pub const XENMEM_resource_ioreq_server_frame_bufioreq: u64 = 0;

/// Argument of `XENMEM_acquire_resource`.
#[doc(alias = "xen_mem_acquire_resource")]
#[doc(alias = "xen_mem_acquire_resource_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemAcquireResource {
    /// IN: domain owning the resource.
    pub domid: DomId,
    /// IN: `XENMEM_resource_*` (C name `type`).
    #[doc(alias = "type")]
    pub type_: u16,
    /// IN: type-specific id (e.g. `XENMEM_resource_grant_table_id_*`).
    pub id: u32,
    /// IN/OUT: number of frames to map; with 0 and a NULL `frame_list` the
    /// resource's size is returned here.
    pub nr_frames: u32,
    /// IN: must be zero.
    pub pad: u32,
    /// IN: first frame of the resource to map.
    pub frame: u64,
    /// IN/OUT: handle to `xen_pfn_t[nr_frames]`: for translated (HVM/Arm)
    /// callers IN = GFNs to map the frames at; for PV callers OUT = MFNs.
    pub frame_list: GuestHandle,
}
layout!(XenMemAcquireResource, 32, 8; domid @ 0, type_ @ 2, id @ 4, nr_frames @ 8, pad @ 12,
        frame @ 16, frame_list @ 24);
