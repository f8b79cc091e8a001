//! Grant tables, version 1, as Xen 4.17 on Arm implements them
//! (`xen/common/grant_table.c`; facts in xen-arm-abi.md §2.4.4, §3.5).
//!
//! Per domain there are two independent pieces of state:
//!
//! - a [`GrantTable`]: the v1 entries the domain writes to offer its pages
//!   (in hypervisor-owned frames reached through [`TableFrames`], which the
//!   guest maps with `add_to_physmap(grant_table, idx)` → [`GrantTable::map_frame`]),
//!   plus the private pin counts of entries in use;
//! - a [`Maptrack`]: the foreign grants the domain itself has mapped, indexed
//!   by the handles it got back.
//!
//! [`GrantState`] holds both; a binary keeps one per domain behind one lock.
//!
//! # What the binary does
//!
//! - Hypercall plumbing: read/write the op arrays through the caller's
//!   stage-1 (guest VAs), `count` checks (`setup_table`, `query_size` need
//!   `count == 1`, else `-EINVAL`), preemption, domain lookup and XSM-like
//!   permission checks (`setup_table`/`query_size`/`get_version` of another
//!   domain only for a privileged caller: `GNTST_permission_denied`, or
//!   `-ESRCH` for `get_version` of a missing domain).
//! - Stage-2: it implements [`GrantMapper`] (resolve a granter's GFN to a
//!   host page, insert / remove the mapper's entry) and removes the entries
//!   returned by [`Maptrack::revoke_granter`] and [`release_mappings_of`]
//!   at teardown; and it maps table frames where [`GrantTable::map_frame`]
//!   says (removing the old GFN it returns).
//! - Grant copy: it implements [`CopyEnv`].
//!
//! # Locking
//!
//! Each domain's [`GrantState`] sits behind one lock. An operation touching
//! two domains (map, unmap, mapper teardown) locks both **in ascending
//! domid order**; when they are the same domain (loopback: dom0 mapping a
//! grant it made with gntalloc) it locks once and uses [`GrantState::split`]
//! to get the maptrack and the table as two disjoint `&mut`. Unmap first
//! reads [`Maptrack::target`] under the mapper's lock to learn the granter,
//! then (re)takes both locks in order; [`unmap_grant_ref`] re-checks the
//! handle, so a race yields `GNTST_bad_handle`, not corruption. A copy takes
//! one table lock at a time (in [`CopyEnv::with_table`]) and holds none
//! while bytes move. Stage-2 locks nest inside grant locks. The guest
//! races with all of this on its table frames; only atomic accesses touch
//! the `(flags, domid)` word.
//!
//! # Teardown
//!
//! When domain D dies: (1) for each granter G in D's
//! [`Maptrack::granters`], lock D and G and call [`release_mappings_of`]
//! (unpins in G, frees D's handles); (2) for every other domain M, call
//! `M.maptrack.`[`revoke_granter`](Maptrack::revoke_granter)`(D)` and remove
//! the returned stage-2 entries from M, flushing M's TLBs, before D's pages
//! are reused. Unlike Xen (which keeps the granter's pages alive until every
//! mapper unmaps), mappings of a dead granter are torn down at once; the
//! mapper's later unmap of such a handle still succeeds.
//!
//! # Deviations from Xen worth knowing
//!
//! - Only v1; transitive and sub-page grants do not exist.
//! - A full maptrack gives `GNTST_no_device_space` (what Xen returns), not
//!   `GNTST_no_space`.
//! - In a copy, a source/destination frame that is not RAM is reported
//!   after the argument checks (Xen: while claiming the frame), so an
//!   element with both faults gets `GNTST_bad_copy_arg` instead of
//!   `GNTST_bad_page`.

mod copy;
mod map;
mod maptrack;
mod table;
#[cfg(test)]
mod tests;

pub use copy::{bounce_copy, cache_flush_check, grant_copy, CacheFlush, CopyEnv};
pub use map::{check_map_flags, map_grant_ref, release_mappings_of, unmap_grant_ref, GrantMapper};
pub use maptrack::{HandleTarget, Mapping, Maptrack};
pub use table::{GrantTable, OutOfMemory, PinState, TableFrames};

use xen_abi::errno::Errno;
use xen_abi::xen::DomId;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;
/// Bytes per v1 entry.
pub const ENTRY_BYTES: u64 = 8;
/// v1 entries per 4 KiB frame.
pub const ENTRIES_PER_FRAME: u32 = PAGE_SIZE / ENTRY_BYTES as u32;
/// Frames a new table starts with (Arm `INITIAL_NR_GRANT_FRAMES`).
pub const INITIAL_FRAMES: u32 = 1;
/// Xen's default `gnttab_max_frames`.
pub const DEFAULT_MAX_FRAMES: u32 = 64;
/// Upper bound we accept for a table's limit (keeps entry counts in u32).
pub const MAX_FRAMES_LIMIT: u32 = 1 << 16;
/// Maptrack entries per Xen maptrack frame (16-byte `grant_mapping`).
pub const MAPTRACK_PER_FRAME: u32 = 256;
/// Xen's default `gnttab_max_maptrack_frames` (1024) in entries.
pub const DEFAULT_MAX_MAPTRACK: u32 = 1024 * MAPTRACK_PER_FRAME;
/// "Not mapped" GFN (`INVALID_GFN`), what `setup_table` reports for a
/// frame a translated guest has not mapped.
pub const INVALID_GFN: u64 = u64::MAX;
/// Compare-and-swap attempts on a grant entry before giving up with
/// `GNTST_general_error` ("Shared grant entry is unstable").
pub const SET_STATUS_ATTEMPTS: u32 = 5;
/// A pin count at this value refuses further pins (Xen's 0x80 check).
pub(crate) const PIN_LIMIT: u8 = 0x80;

/// Per-domain limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantLimits {
    /// Grant table frames the domain may grow to.
    pub max_frames: u32,
    /// Simultaneous mappings the domain may hold.
    pub max_maptrack: u32,
}

impl Default for GrantLimits {
    fn default() -> Self {
        GrantLimits {
            max_frames: DEFAULT_MAX_FRAMES,
            max_maptrack: DEFAULT_MAX_MAPTRACK,
        }
    }
}

/// All grant state of one domain.
pub struct GrantState<F> {
    pub table: GrantTable<F>,
    pub maptrack: Maptrack,
}

impl<F: TableFrames> GrantState<F> {
    pub fn new(owner: DomId, frames: F, limits: GrantLimits) -> Result<Self, Errno> {
        Ok(GrantState {
            table: GrantTable::new(owner, frames, limits.max_frames)?,
            maptrack: Maptrack::new(limits.max_maptrack),
        })
    }

    /// The maptrack and the table as two `&mut`, for loopback operations.
    pub fn split(&mut self) -> (&mut Maptrack, &mut GrantTable<F>) {
        (&mut self.maptrack, &mut self.table)
    }
}
