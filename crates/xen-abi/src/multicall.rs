//! `multicall(list, nr_calls)` entries (`multicall_entry`, from `public/xen.h`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::XenUlong;

/// One call of a multicall batch (64 bytes).
#[doc(alias = "multicall_entry")]
#[doc(alias = "multicall_entry_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct MulticallEntry {
    /// IN: hypercall number (`HYPERVISOR_*`).
    pub op: XenUlong,
    /// OUT: the call's return value.
    pub result: XenUlong,
    /// IN: the call's arguments.
    pub args: [XenUlong; 6],
}
layout!(MulticallEntry, 64, 8; op @ 0, result @ 8, args @ 16);
