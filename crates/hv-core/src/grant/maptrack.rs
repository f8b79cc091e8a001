//! The *mapping* domain's record of the foreign grants it has mapped; the
//! index of a record is the `grant_handle_t` the guest gets back.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use xen_abi::grant_table::{GrantHandle, GrantRef};
use xen_abi::xen::DomId;

/// One live mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The granting domain.
    pub granter: DomId,
    /// The reference in the granter's table.
    pub gref: GrantRef,
    /// Mapped read-only (`GNTMAP_readonly`).
    pub readonly: bool,
    /// The mapper's GFN where the page sits (`host_addr >> 12`).
    pub host_gfn: u64,
    /// Host physical address of the granted page (what the guest got as
    /// `dev_bus_addr`).
    pub pa: u64,
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Free,
    /// Handed out by `alloc`, not yet filled in.
    Reserved,
    Live(Mapping),
    /// The granter died and the binary already removed the stage-2 entry;
    /// the guest's eventual unmap just frees the handle.
    Orphan(Mapping),
}

/// What a handle currently refers to (so the binary knows which granter's
/// grant state to lock before calling [`super::unmap_grant_ref`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleTarget {
    /// Out of range or free: `GNTST_bad_handle`.
    Invalid,
    /// Revoked because the granter died: unmap needs no granter table.
    Orphaned,
    /// A live mapping of this granter's grant.
    Granter(DomId),
}

/// Maptrack of one domain.
pub struct Maptrack {
    slots: Vec<Slot>,
    /// Freed handles, reused oldest first (as Xen's free list, which keeps
    /// stale handles away from fresh mappings for as long as possible).
    free: VecDeque<u32>,
    max: u32,
    live: u32,
}

impl Maptrack {
    /// An empty maptrack with room for at most `max_entries` simultaneous
    /// mappings (Xen: `max_maptrack_frames * 256`; see
    /// [`super::DEFAULT_MAX_MAPTRACK`]).
    pub fn new(max_entries: u32) -> Self {
        Maptrack {
            slots: Vec::new(),
            free: VecDeque::new(),
            max: max_entries,
            live: 0,
        }
    }

    pub fn max_entries(&self) -> u32 {
        self.max
    }

    /// Number of handles in use (live and orphaned).
    pub fn in_use(&self) -> u32 {
        self.live
    }

    pub fn target(&self, handle: GrantHandle) -> HandleTarget {
        match self.slots.get(handle as usize) {
            Some(Slot::Live(m)) => HandleTarget::Granter(m.granter),
            Some(Slot::Orphan(_)) => HandleTarget::Orphaned,
            _ => HandleTarget::Invalid,
        }
    }

    /// The live mapping behind `handle`.
    pub fn get(&self, handle: GrantHandle) -> Option<&Mapping> {
        match self.slots.get(handle as usize) {
            Some(Slot::Live(m)) => Some(m),
            _ => None,
        }
    }

    /// All live mappings, by handle.
    pub fn iter(&self) -> impl Iterator<Item = (GrantHandle, &Mapping)> + '_ {
        self.slots.iter().enumerate().filter_map(|(h, s)| match s {
            Slot::Live(m) => Some((h as GrantHandle, m)),
            _ => None,
        })
    }

    /// Orphaned mappings (granter gone, stage-2 entry already removed),
    /// waiting for the guest to unmap them.
    pub fn orphans(&self) -> impl Iterator<Item = (GrantHandle, &Mapping)> + '_ {
        self.slots.iter().enumerate().filter_map(|(h, s)| match s {
            Slot::Orphan(m) => Some((h as GrantHandle, m)),
            _ => None,
        })
    }

    /// The distinct granters this domain has live mappings of, ascending.
    pub fn granters(&self) -> Vec<DomId> {
        let mut v: Vec<DomId> = self.iter().map(|(_, m)| m.granter).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Granter `granter` is dying: turn every live mapping of its grants into
    /// an orphan and return them. The binary must remove each
    /// `(host_gfn → pa)` from this (mapper) domain's stage-2 and flush its
    /// TLBs before the granter's pages are reused. The guest's later unmap
    /// of such a handle succeeds without touching stage-2 again.
    pub fn revoke_granter(&mut self, granter: DomId) -> Vec<(GrantHandle, Mapping)> {
        let mut out = Vec::new();
        for (h, s) in self.slots.iter_mut().enumerate() {
            if let Slot::Live(m) = *s {
                if m.granter == granter {
                    *s = Slot::Orphan(m);
                    out.push((h as GrantHandle, m));
                }
            }
        }
        out
    }

    /// Reserve a handle; `None` when the limit is reached or memory is out.
    pub(crate) fn alloc(&mut self) -> Option<GrantHandle> {
        let h = match self.free.pop_front() {
            Some(h) => h,
            None => {
                if self.slots.len() >= self.max as usize {
                    return None;
                }
                self.slots.try_reserve(1).ok()?;
                // Keep the free list able to hold every handle, so that
                // `release` never allocates.
                let want = self.slots.len() + 1 - self.free.len();
                self.free.try_reserve(want).ok()?;
                self.slots.push(Slot::Free);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[h as usize] = Slot::Reserved;
        self.live += 1;
        Some(h)
    }

    /// Fill a handle reserved by [`Self::alloc`].
    pub(crate) fn set(&mut self, handle: GrantHandle, m: Mapping) {
        self.slots[handle as usize] = Slot::Live(m);
    }

    /// Return a handle (reserved, live or orphaned) to the free list.
    pub(crate) fn release(&mut self, handle: GrantHandle) {
        if let Some(s) = self.slots.get_mut(handle as usize) {
            if matches!(s, Slot::Free) {
                return;
            }
            *s = Slot::Free;
            // Cannot fail: `alloc` reserved room for every slot.
            self.free.push_back(handle);
            self.live -= 1;
        }
    }
}
