//! Which host frames a domain owns, and at which guest frames.
//!
//! This is ownership bookkeeping only (what to give back to the
//! [`FrameAllocator`](crate::frames::FrameAllocator) when the domain dies or
//! returns memory); the stage-2 tables are kept elsewhere. Foreign and grant
//! mappings are not owned and never appear here.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::frames::{MAX_ORDER, PAGE_SIZE};

/// Why `insert` refused an extent. The map is unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2mError {
    /// `order > MAX_ORDER`.
    BadOrder,
    /// `gfn` or `pa` is not aligned to `2^order` pages.
    Unaligned,
    /// The extent runs past the top of the guest address space.
    OutOfRange,
    /// Some gfn of the extent is already owned.
    Overlap,
}

/// `pages` guest frames from the map key upward, backed by host frames from
/// `pa` upward.
///
/// Invariant: if `whole`, this is exactly one block as the allocator handed
/// it out (`pages` = 2^order, `pa` aligned to it); otherwise it is a piece of
/// a split block and is given back page by page (order 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    pa: u64,
    pages: u64,
    whole: bool,
}

/// Owned guest frames of one domain, as non-overlapping extents keyed by
/// their first gfn.
#[derive(Clone, Debug, Default)]
pub struct OwnedMap {
    extents: BTreeMap<u64, Extent>,
    /// Sum of `pages` over `extents`.
    pages: u64,
}

impl OwnedMap {
    pub fn new() -> OwnedMap {
        OwnedMap::default()
    }

    /// Records that the domain owns the `2^order` host frames at `pa`, mapped
    /// at `gfn..gfn + 2^order`.
    pub fn insert(&mut self, gfn: u64, pa: u64, order: u32) -> Result<(), P2mError> {
        if order > MAX_ORDER {
            return Err(P2mError::BadOrder);
        }
        let n = 1u64 << order;
        if !gfn.is_multiple_of(n) || !pa.is_multiple_of(PAGE_SIZE << order) {
            return Err(P2mError::Unaligned);
        }
        let end = gfn.checked_add(n).ok_or(P2mError::OutOfRange)?;
        // Extents are disjoint, so only the last one starting below `end`
        // can reach into `[gfn, end)`.
        if let Some((&k, e)) = self.extents.range(..end).next_back() {
            if k + e.pages > gfn {
                return Err(P2mError::Overlap);
            }
        }
        self.extents.insert(
            gfn,
            Extent {
                pa,
                pages: n,
                whole: true,
            },
        );
        self.pages += n;
        Ok(())
    }

    /// The extent holding `gfn`: (first gfn, extent).
    fn find(&self, gfn: u64) -> Option<(u64, Extent)> {
        let (&k, &e) = self.extents.range(..=gfn).next_back()?;
        (gfn - k < e.pages).then_some((k, e))
    }

    /// Host address of the page at `gfn`, if owned.
    pub fn lookup(&self, gfn: u64) -> Option<u64> {
        self.find(gfn).map(|(k, e)| e.pa + (gfn - k) * PAGE_SIZE)
    }

    /// Stops owning the page at `gfn` and returns its host address (to be
    /// freed as order 0). Splits its extent; the pieces become order-0 runs.
    pub fn remove_page(&mut self, gfn: u64) -> Option<u64> {
        let (k, e) = self.find(gfn)?;
        let i = gfn - k;
        self.extents.remove(&k);
        if i > 0 {
            self.extents.insert(
                k,
                Extent {
                    pa: e.pa,
                    pages: i,
                    whole: false,
                },
            );
        }
        if i + 1 < e.pages {
            let rest = Extent {
                pa: e.pa + (i + 1) * PAGE_SIZE,
                pages: e.pages - i - 1,
                whole: false,
            };
            self.extents.insert(gfn + 1, rest);
        }
        self.pages -= 1;
        Some(e.pa + i * PAGE_SIZE)
    }

    /// Owned pages.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// Empties the map and returns every owned frame as `(pa, order)` blocks
    /// the frame allocator accepts: whole extents at their insert order,
    /// pieces of split ones page by page.
    pub fn take_all(&mut self) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for e in core::mem::take(&mut self.extents).into_values() {
            if e.whole {
                out.push((e.pa, e.pages.trailing_zeros()));
            } else {
                out.extend((0..e.pages).map(|i| (e.pa + i * PAGE_SIZE, 0)));
            }
        }
        self.pages = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::FrameAllocator;
    use crate::mem::Range;

    const RAM: u64 = 0x40000; // GUEST_RAM0_BASE >> 12

    #[test]
    fn insert_lookup_across_extents() {
        let mut m = OwnedMap::new();
        m.insert(RAM, 0x8000_0000, 9).unwrap();
        m.insert(RAM + 512, 0x9020_0000, 9).unwrap();
        m.insert(RAM + 1024, 0x7000_3000, 0).unwrap();
        m.insert(0x39000, 0x7000_5000, 0).unwrap();
        assert_eq!(m.pages(), 1026);
        assert_eq!(m.lookup(RAM), Some(0x8000_0000));
        assert_eq!(m.lookup(RAM + 511), Some(0x8000_0000 + 511 * PAGE_SIZE));
        assert_eq!(m.lookup(RAM + 512), Some(0x9020_0000));
        assert_eq!(m.lookup(RAM + 1024), Some(0x7000_3000));
        assert_eq!(m.lookup(RAM + 1025), None);
        assert_eq!(m.lookup(RAM - 1), None);
        assert_eq!(m.lookup(0x39000), Some(0x7000_5000));
        assert_eq!(m.lookup(0x39001), None);
        assert_eq!(m.lookup(0), None);
    }

    #[test]
    fn insert_rejects_overlap_and_misalignment() {
        let mut m = OwnedMap::new();
        m.insert(RAM + 512, 0x8000_0000, 9).unwrap();
        assert_eq!(m.insert(RAM + 512, 0x9000_0000, 9), Err(P2mError::Overlap));
        assert_eq!(m.insert(RAM + 1023, 0x9000_0000, 0), Err(P2mError::Overlap));
        assert_eq!(m.insert(RAM + 600, 0x9000_0000, 0), Err(P2mError::Overlap));
        assert_eq!(m.insert(RAM, 0x9000_0000, 10), Err(P2mError::Overlap));
        assert_eq!(m.insert(RAM + 1, 0x9000_0000, 9), Err(P2mError::Unaligned));
        assert_eq!(m.insert(RAM, 0x9000_1000, 9), Err(P2mError::Unaligned));
        assert_eq!(
            m.insert(RAM, 0x9000_0000, MAX_ORDER + 1),
            Err(P2mError::BadOrder)
        );
        assert_eq!(m.insert(!511, 0x9000_0000, 9), Err(P2mError::OutOfRange));
        assert_eq!(m.pages(), 512);
        // Neighbours on both sides are fine.
        m.insert(RAM + 511, 0x9000_0000, 0).unwrap();
        m.insert(RAM + 1024, 0x9000_1000, 0).unwrap();
        assert_eq!(m.pages(), 514);
        // A removed page can be owned again.
        assert_eq!(
            m.remove_page(RAM + 700),
            Some(0x8000_0000 + 188 * PAGE_SIZE)
        );
        m.insert(RAM + 700, 0xa000_0000, 0).unwrap();
        assert_eq!(m.lookup(RAM + 700), Some(0xa000_0000));
        assert_eq!(m.pages(), 514);
    }

    #[test]
    fn split_first_middle_last() {
        for i in [0u64, 1, 100, 510, 511] {
            let mut m = OwnedMap::new();
            m.insert(RAM, 0x8000_0000, 9).unwrap();
            assert_eq!(m.remove_page(RAM + i), Some(0x8000_0000 + i * PAGE_SIZE));
            assert_eq!(m.remove_page(RAM + i), None);
            assert_eq!(m.pages(), 511);
            for j in 0..512 {
                let want = (j != i).then_some(0x8000_0000 + j * PAGE_SIZE);
                assert_eq!(m.lookup(RAM + j), want);
            }
            let runs = m.take_all();
            assert_eq!(runs.len(), 511);
            assert!(runs
                .iter()
                .all(|&(pa, o)| o == 0 && pa != 0x8000_0000 + i * PAGE_SIZE));
            assert!(m.is_empty() && m.lookup(RAM).is_none());
        }
    }

    #[test]
    fn remove_everything_page_by_page() {
        let mut m = OwnedMap::new();
        m.insert(RAM, 0x8000_0000, 9).unwrap();
        m.insert(RAM + 512, 0x8000_0000 + 512 * PAGE_SIZE, 3)
            .unwrap();
        for j in (0..520).rev().step_by(3).chain((0..520).step_by(1)) {
            m.remove_page(RAM + j);
        }
        assert_eq!(m.pages(), 0);
        assert!(m.take_all().is_empty());
    }

    #[test]
    fn take_all_frees_exactly_what_was_allocated() {
        let mut fa = FrameAllocator::new(&[Range::new(0x8000_0000, 64 << 20)]);
        let start = fa.free_pages();
        let mut m = OwnedMap::new();
        // 20 MiB of RAM in 2 MiB extents plus 4 magic pages, as for a domU.
        for k in 0..10 {
            m.insert(RAM + k * 512, fa.alloc(9).unwrap(), 9).unwrap();
        }
        for k in 0..4 {
            m.insert(0x39000 + k, fa.alloc(0).unwrap(), 0).unwrap();
        }
        assert_eq!(m.pages(), 5124);
        assert_eq!(fa.free_pages(), start - 5124);
        // Balloon out a few pages (freed at once), splitting two extents.
        for gfn in [RAM + 3, RAM + 4, RAM + 511, RAM + 2048, 0x39002] {
            fa.free(m.remove_page(gfn).unwrap(), 0).unwrap();
        }
        assert_eq!(m.pages(), 5119);
        assert_eq!(fa.free_pages(), start - 5119);
        let runs = m.take_all();
        assert_eq!(runs.iter().filter(|r| r.1 == 9).count(), 8);
        for (pa, order) in runs {
            fa.free(pa, order).unwrap();
        }
        assert_eq!(fa.free_pages(), start);
        assert_eq!(m.pages(), 0);
    }
}
