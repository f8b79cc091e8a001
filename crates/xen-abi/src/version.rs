//! `public/version.h` (`xen_version` hypercall sub-ops and their buffers) and
//! `public/features.h` (`XENFEAT_*` bit numbers for `XENVER_get_features`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::XenUlong;

/// Returns `(major << 16) | minor` in x0; the argument is NULL.
pub const XENVER_version: u32 = 0;
/// OUT: [`XenExtraversion`].
pub const XENVER_extraversion: u32 = 1;
/// OUT: [`XenCompileInfo`].
pub const XENVER_compile_info: u32 = 2;
/// OUT: [`XenCapabilitiesInfo`].
pub const XENVER_capabilities: u32 = 3;
/// OUT: [`XenChangesetInfo`].
pub const XENVER_changeset: u32 = 4;
/// OUT: [`XenPlatformParameters`].
pub const XENVER_platform_parameters: u32 = 5;
/// IN/OUT: [`XenFeatureInfo`].
pub const XENVER_get_features: u32 = 6;
/// Returns the page size in x0; the argument must be NULL.
pub const XENVER_pagesize: u32 = 7;
/// OUT: the domain handle ([`crate::xen::XenDomainHandle`], 16 bytes).
pub const XENVER_guest_handle: u32 = 8;
/// OUT: [`XenCommandline`].
pub const XENVER_commandline: u32 = 9;
/// IN/OUT: [`XenBuildId`] followed by its buffer.
pub const XENVER_build_id: u32 = 10;

/// `xen_extraversion_t`: NUL-terminated version suffix (e.g. `".0"`).
#[doc(alias = "xen_extraversion_t")]
pub type XenExtraversion = [u8; 16];
pub const XEN_EXTRAVERSION_LEN: usize = 16;

/// `xen_capabilities_info_t`: space-separated capability strings.
#[doc(alias = "xen_capabilities_info_t")]
pub type XenCapabilitiesInfo = [u8; 1024];
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;

/// `xen_changeset_info_t`.
#[doc(alias = "xen_changeset_info_t")]
pub type XenChangesetInfo = [u8; 64];
pub const XEN_CHANGESET_INFO_LEN: usize = 64;

/// `xen_commandline_t`: the hypervisor's command line.
#[doc(alias = "xen_commandline_t")]
pub type XenCommandline = [u8; 1024];

/// OUT buffer of `XENVER_compile_info` (144 bytes, NUL-terminated strings).
#[doc(alias = "xen_compile_info")]
#[doc(alias = "xen_compile_info_t")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenCompileInfo {
    pub compiler: [u8; 64],
    pub compile_by: [u8; 16],
    pub compile_domain: [u8; 32],
    pub compile_date: [u8; 32],
}
layout!(XenCompileInfo, 144, 1; compiler @ 0, compile_by @ 64, compile_domain @ 80,
        compile_date @ 112);

/// OUT buffer of `XENVER_platform_parameters`.
#[doc(alias = "xen_platform_parameters")]
#[doc(alias = "xen_platform_parameters_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenPlatformParameters {
    /// OUT: start of the hypervisor's virtual area in the guest (unused on Arm).
    pub virt_start: XenUlong,
}
layout!(XenPlatformParameters, 8, 8; virt_start @ 0);

/// Argument of `XENVER_get_features`.
#[doc(alias = "xen_feature_info")]
#[doc(alias = "xen_feature_info_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit feature submap (only 0 < `XENFEAT_NR_SUBMAPS`).
    pub submap_idx: u32,
    /// OUT: 32-bit submap: bit `n` = `XENFEAT_*` number `32 * submap_idx + n`.
    pub submap: u32,
}
layout!(XenFeatureInfo, 8, 4; submap_idx @ 0, submap @ 4);

/// Header of the `XENVER_build_id` buffer; `len` bytes of `buf` follow at
/// offset 4 (flexible array).
#[doc(alias = "xen_build_id")]
#[doc(alias = "xen_build_id_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenBuildId {
    /// IN: size of the buffer after this header; OUT: length of the build id.
    pub len: u32,
}
layout!(XenBuildId, 4, 4; len @ 0);

// `public/features.h`: bit numbers in the `XENVER_get_features` submaps.
pub const XENFEAT_writable_page_tables: u32 = 0;
pub const XENFEAT_writable_descriptor_tables: u32 = 1;
pub const XENFEAT_auto_translated_physmap: u32 = 2;
pub const XENFEAT_supervisor_mode_kernel: u32 = 3;
pub const XENFEAT_pae_pgdir_above_4gb: u32 = 4;
pub const XENFEAT_mmu_pt_update_preserve_ad: u32 = 5;
pub const XENFEAT_highmem_assist: u32 = 6;
pub const XENFEAT_gnttab_map_avail_bits: u32 = 7;
pub const XENFEAT_hvm_callback_vector: u32 = 8;
pub const XENFEAT_hvm_safe_pvclock: u32 = 9;
pub const XENFEAT_hvm_pirqs: u32 = 10;
/// The domain is the hardware domain (dom0).
pub const XENFEAT_dom0: u32 = 11;
pub const XENFEAT_memory_op_vnode_supported: u32 = 13;
/// `HVC #0` / `SMC #0` follow SMCCC.
pub const XENFEAT_ARM_SMCCC_supported: u32 = 14;
pub const XENFEAT_linux_rsdp_unrestricted: u32 = 15;
/// The guest's memory is not 1:1 mapped (IPA != PA).
pub const XENFEAT_not_direct_mapped: u32 = 16;
/// The guest's memory is 1:1 mapped (IPA == PA).
pub const XENFEAT_direct_mapped: u32 = 17;
pub const XENFEAT_NR_SUBMAPS: u32 = 1;
