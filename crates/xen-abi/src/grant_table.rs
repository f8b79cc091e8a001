//! `public/grant_table.h`: grant entries (v1), `grant_table_op(cmd, uop,
//! count)` sub-ops and their per-element structs, `GTF_*` / `GNTMAP_*` /
//! `GNTCOPY_*` flags and `GNTST_*` status codes. Arm 4.17 supports grant
//! table v1 only, so the v2 entry formats are not modelled.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::{DomId, GuestHandle, XenPfn};

/// `grant_ref_t`.
pub type GrantRef = u32;
/// `grant_handle_t`: returned by `map_grant_ref`, presented to unmap.
pub type GrantHandle = u32;
/// `grant_status_t` (v2 status frames).
pub type GrantStatus = u16;

/// A v1 grant entry (8 bytes; 512 per 4 KiB frame). The granter writes
/// `frame` and `domid`, then (after a write barrier) `flags`.
#[doc(alias = "grant_entry_v1")]
#[doc(alias = "grant_entry_v1_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain being granted access.
    pub domid: DomId,
    /// The granted frame (granter's GFN), or the transfer destination.
    pub frame: u32,
}
layout!(GrantEntryV1, 8, 4; flags @ 0, domid @ 2, frame @ 4);

/// Grant references below this are reserved for the toolstack.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// Reserved ref: the console ring page.
pub const GNTTAB_RESERVED_CONSOLE: GrantRef = 0;
/// Reserved ref: the xenstore ring page.
pub const GNTTAB_RESERVED_XENSTORE: GrantRef = 1;

// `grant_entry_v1.flags` (GTF_*): type in bits 1:0.
pub const GTF_invalid: u16 = 0;
pub const GTF_permit_access: u16 = 1;
pub const GTF_accept_transfer: u16 = 2;
/// v2 only.
pub const GTF_transitive: u16 = 3;
pub const GTF_type_mask: u16 = 3;
pub const _GTF_readonly: u16 = 2;
/// Grantee may only map/copy read-only.
pub const GTF_readonly: u16 = 1 << _GTF_readonly;
pub const _GTF_reading: u16 = 3;
/// Set by Xen while the grant is in use for reading.
pub const GTF_reading: u16 = 1 << _GTF_reading;
pub const _GTF_writing: u16 = 4;
/// Set by Xen while the grant is in use for writing.
pub const GTF_writing: u16 = 1 << _GTF_writing;
pub const _GTF_PWT: u16 = 5;
pub const GTF_PWT: u16 = 1 << _GTF_PWT;
pub const _GTF_PCD: u16 = 6;
pub const GTF_PCD: u16 = 1 << _GTF_PCD;
pub const _GTF_PAT: u16 = 7;
pub const GTF_PAT: u16 = 1 << _GTF_PAT;
pub const _GTF_sub_page: u16 = 8;
/// v2 only.
pub const GTF_sub_page: u16 = 1 << _GTF_sub_page;
// For `GTF_accept_transfer` entries.
pub const _GTF_transfer_committed: u16 = 2;
pub const GTF_transfer_committed: u16 = 1 << _GTF_transfer_committed;
pub const _GTF_transfer_completed: u16 = 3;
pub const GTF_transfer_completed: u16 = 1 << _GTF_transfer_completed;

pub const GNTTABOP_map_grant_ref: u32 = 0;
pub const GNTTABOP_unmap_grant_ref: u32 = 1;
pub const GNTTABOP_setup_table: u32 = 2;
pub const GNTTABOP_dump_table: u32 = 3;
pub const GNTTABOP_transfer: u32 = 4;
pub const GNTTABOP_copy: u32 = 5;
pub const GNTTABOP_query_size: u32 = 6;
pub const GNTTABOP_unmap_and_replace: u32 = 7;
pub const GNTTABOP_set_version: u32 = 8;
pub const GNTTABOP_get_status_frames: u32 = 9;
pub const GNTTABOP_get_version: u32 = 10;
pub const GNTTABOP_swap_grant_ref: u32 = 11;
pub const GNTTABOP_cache_flush: u32 = 12;

// `gnttab_map_grant_ref.flags` (GNTMAP_*).
pub const _GNTMAP_device_map: u32 = 0;
pub const GNTMAP_device_map: u32 = 1 << _GNTMAP_device_map;
pub const _GNTMAP_host_map: u32 = 1;
pub const GNTMAP_host_map: u32 = 1 << _GNTMAP_host_map;
pub const _GNTMAP_readonly: u32 = 2;
pub const GNTMAP_readonly: u32 = 1 << _GNTMAP_readonly;
pub const _GNTMAP_application_map: u32 = 3;
pub const GNTMAP_application_map: u32 = 1 << _GNTMAP_application_map;
pub const _GNTMAP_contains_pte: u32 = 4;
pub const GNTMAP_contains_pte: u32 = 1 << _GNTMAP_contains_pte;
pub const _GNTMAP_guest_avail0: u32 = 16;
pub const GNTMAP_guest_avail_mask: u32 = !0 << _GNTMAP_guest_avail0;

// Per-element `status` (GNTST_*).
pub const GNTST_okay: i16 = 0;
pub const GNTST_general_error: i16 = -1;
pub const GNTST_bad_domain: i16 = -2;
pub const GNTST_bad_gntref: i16 = -3;
pub const GNTST_bad_handle: i16 = -4;
pub const GNTST_bad_virt_addr: i16 = -5;
pub const GNTST_bad_dev_addr: i16 = -6;
pub const GNTST_no_device_space: i16 = -7;
pub const GNTST_permission_denied: i16 = -8;
pub const GNTST_bad_page: i16 = -9;
pub const GNTST_bad_copy_arg: i16 = -10;
pub const GNTST_address_too_big: i16 = -11;
pub const GNTST_eagain: i16 = -12;
pub const GNTST_no_space: i16 = -13;

/// `GNTTABOP_map_grant_ref`: map a foreign granted frame.
#[doc(alias = "gnttab_map_grant_ref")]
#[doc(alias = "gnttab_map_grant_ref_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabMapGrantRef {
    /// IN: where to map (Arm: a page-aligned IPA of the caller, with `GNTMAP_host_map`).
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: grant reference in `dom`'s table (C name `ref`).
    #[doc(alias = "ref")]
    pub ref_: GrantRef,
    /// IN: the granting domain.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for unmapping.
    pub handle: GrantHandle,
    /// OUT: bus address of the frame (Arm: its machine address).
    pub dev_bus_addr: u64,
}
layout!(GnttabMapGrantRef, 32, 8; host_addr @ 0, flags @ 8, ref_ @ 12, dom @ 16, status @ 18,
        handle @ 20, dev_bus_addr @ 24);

/// `GNTTABOP_unmap_grant_ref`.
#[doc(alias = "gnttab_unmap_grant_ref")]
#[doc(alias = "gnttab_unmap_grant_ref_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabUnmapGrantRef {
    /// IN.
    pub host_addr: u64,
    /// IN.
    pub dev_bus_addr: u64,
    /// IN.
    pub handle: GrantHandle,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad0: u16,
}
layout!(GnttabUnmapGrantRef, 24, 8; host_addr @ 0, dev_bus_addr @ 8, handle @ 16, status @ 20);

/// `GNTTABOP_setup_table` (non-translated guests: list the table's frames).
#[doc(alias = "gnttab_setup_table")]
#[doc(alias = "gnttab_setup_table_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSetupTable {
    /// IN.
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// IN.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad1: [u8; 6],
    /// OUT: handle to `xen_pfn_t[nr_frames]`.
    pub frame_list: GuestHandle,
}
layout!(GnttabSetupTable, 24, 8; dom @ 0, nr_frames @ 4, status @ 8, frame_list @ 16);

/// `GNTTABOP_dump_table` (debug).
#[doc(alias = "gnttab_dump_table")]
#[doc(alias = "gnttab_dump_table_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabDumpTable {
    /// IN.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
}
layout!(GnttabDumpTable, 4, 2; dom @ 0, status @ 2);

/// `GNTTABOP_transfer`.
#[doc(alias = "gnttab_transfer")]
#[doc(alias = "gnttab_transfer_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabTransfer {
    /// IN.
    pub mfn: XenPfn,
    /// IN.
    pub domid: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// IN (C name `ref`).
    #[doc(alias = "ref")]
    pub ref_: GrantRef,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad1: [u8; 6],
}
layout!(GnttabTransfer, 24, 8; mfn @ 0, domid @ 8, ref_ @ 12, status @ 16);

// `gnttab_copy.flags`.
pub const _GNTCOPY_source_gref: u16 = 0;
/// `source.u` is a grant ref (else a GFN of the caller).
pub const GNTCOPY_source_gref: u16 = 1 << _GNTCOPY_source_gref;
pub const _GNTCOPY_dest_gref: u16 = 1;
/// `dest.u` is a grant ref (else a GFN of the caller).
pub const GNTCOPY_dest_gref: u16 = 1 << _GNTCOPY_dest_gref;

/// The union `gnttab_copy_ptr.u` (8 bytes): `grant_ref_t ref` or
/// `xen_pfn_t gmfn`, both at offset 0.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCopyPtrU(pub u64);
layout!(GnttabCopyPtrU, 8, 8);

impl GnttabCopyPtrU {
    /// `u.gmfn`.
    pub const fn gmfn(self) -> XenPfn {
        self.0
    }
    /// `u.ref` (the first 4 bytes).
    pub const fn gref(self) -> GrantRef {
        let words: [u32; 2] = zerocopy::transmute!(self.0);
        words[0]
    }
    /// The union holding `gmfn`.
    pub const fn from_gmfn(gmfn: XenPfn) -> Self {
        Self(gmfn)
    }
    /// The union holding `ref` (remaining bytes zero).
    pub const fn from_gref(gref: GrantRef) -> Self {
        Self(zerocopy::transmute!([gref, 0u32]))
    }
}

/// One side of a `gnttab_copy`.
#[doc(alias = "gnttab_copy_ptr")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCopyPtr {
    /// IN: grant ref or GFN, per `GNTCOPY_*_gref`.
    pub u: GnttabCopyPtrU,
    /// IN: owner of the page.
    pub domid: DomId,
    /// IN: byte offset in the page.
    pub offset: u16,
    /// Implicit C padding.
    pub _pad0: u32,
}
layout!(GnttabCopyPtr, 16, 8; u @ 0, domid @ 8, offset @ 10);

/// `GNTTABOP_copy`: copy bytes between (granted) pages without mapping them.
#[doc(alias = "gnttab_copy")]
#[doc(alias = "gnttab_copy_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCopy {
    /// IN.
    pub source: GnttabCopyPtr,
    /// IN.
    pub dest: GnttabCopyPtr,
    /// IN: bytes to copy (`offset + len` must stay within the page).
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad0: u16,
}
layout!(GnttabCopy, 40, 8; source @ 0, source.domid @ 8, source.offset @ 10, dest @ 16,
        dest.domid @ 24, len @ 32, flags @ 34, status @ 36);

/// `GNTTABOP_query_size`.
#[doc(alias = "gnttab_query_size")]
#[doc(alias = "gnttab_query_size_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabQuerySize {
    /// IN.
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// OUT: current size in frames.
    pub nr_frames: u32,
    /// OUT: maximum size in frames.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad1: u16,
}
layout!(GnttabQuerySize, 16, 4; dom @ 0, nr_frames @ 4, max_nr_frames @ 8, status @ 12);

/// `GNTTABOP_unmap_and_replace`.
#[doc(alias = "gnttab_unmap_and_replace")]
#[doc(alias = "gnttab_unmap_and_replace_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabUnmapAndReplace {
    /// IN.
    pub host_addr: u64,
    /// IN.
    pub new_addr: u64,
    /// IN.
    pub handle: GrantHandle,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad0: u16,
}
layout!(GnttabUnmapAndReplace, 24, 8; host_addr @ 0, new_addr @ 8, handle @ 16, status @ 20);

/// `GNTTABOP_set_version` (the hypercall `count` must be 1).
#[doc(alias = "gnttab_set_version")]
#[doc(alias = "gnttab_set_version_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSetVersion {
    /// IN/OUT: requested version; the version in force is written back.
    pub version: u32,
}
layout!(GnttabSetVersion, 4, 4; version @ 0);

/// `GNTTABOP_get_status_frames` (v2).
#[doc(alias = "gnttab_get_status_frames")]
#[doc(alias = "gnttab_get_status_frames_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabGetStatusFrames {
    /// IN.
    pub nr_frames: u32,
    /// IN.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle to `uint64_t[nr_frames]`.
    pub frame_list: GuestHandle,
}
layout!(GnttabGetStatusFrames, 16, 8; nr_frames @ 0, dom @ 4, status @ 6, frame_list @ 8);

/// `GNTTABOP_get_version`.
#[doc(alias = "gnttab_get_version")]
#[doc(alias = "gnttab_get_version_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabGetVersion {
    /// IN.
    pub dom: DomId,
    pub pad: u16,
    /// OUT.
    pub version: u32,
}
layout!(GnttabGetVersion, 8, 4; dom @ 0, pad @ 2, version @ 4);

/// `GNTTABOP_swap_grant_ref`.
#[doc(alias = "gnttab_swap_grant_ref")]
#[doc(alias = "gnttab_swap_grant_ref_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSwapGrantRef {
    /// IN.
    pub ref_a: GrantRef,
    /// IN.
    pub ref_b: GrantRef,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Implicit C padding.
    pub _pad0: u16,
}
layout!(GnttabSwapGrantRef, 12, 4; ref_a @ 0, ref_b @ 4, status @ 8);

// `gnttab_cache_flush.op`.
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `a` is a grant ref (else `a.dev_bus_addr`).
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

/// The union `gnttab_cache_flush.a` (8 bytes): `uint64_t dev_bus_addr` or
/// `grant_ref_t ref`, both at offset 0.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCacheFlushA(pub u64);
layout!(GnttabCacheFlushA, 8, 8);

impl GnttabCacheFlushA {
    /// `a.dev_bus_addr`.
    pub const fn dev_bus_addr(self) -> u64 {
        self.0
    }
    /// `a.ref` (the first 4 bytes).
    pub const fn gref(self) -> GrantRef {
        let words: [u32; 2] = zerocopy::transmute!(self.0);
        words[0]
    }
    /// The union holding `dev_bus_addr`.
    pub const fn from_dev_bus_addr(addr: u64) -> Self {
        Self(addr)
    }
    /// The union holding `ref` (remaining bytes zero).
    pub const fn from_gref(gref: GrantRef) -> Self {
        Self(zerocopy::transmute!([gref, 0u32]))
    }
}

/// `GNTTABOP_cache_flush`: clean/invalidate part of a (foreign) page.
#[doc(alias = "gnttab_cache_flush")]
#[doc(alias = "gnttab_cache_flush_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCacheFlush {
    /// IN: address or grant ref, per `GNTTAB_CACHE_SOURCE_GREF`.
    pub a: GnttabCacheFlushA,
    /// IN: byte offset in the page.
    pub offset: u16,
    /// IN: bytes to flush.
    pub length: u16,
    /// IN: `GNTTAB_CACHE_*`.
    pub op: u32,
}
layout!(GnttabCacheFlush, 16, 8; a @ 0, offset @ 8, length @ 10, op @ 12);
