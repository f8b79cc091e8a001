//! Host physical frame allocator for domain RAM.
//!
//! One bitmap per managed region, one bit per 4 KiB frame (1 = free), so any
//! frame of an allocated block may be freed on its own (order 0) and a block
//! may be freed by pieces. Blocks of `2^order` frames are aligned to
//! `2^order` frames in the *physical* address space. Each order keeps a
//! next-fit cursor, so sequential allocations of one order touch O(1) words.
//! Frames are handed out as they are: zeroing is the caller's job.

use alloc::vec;
use alloc::vec::Vec;

use crate::mem::{merge_ranges, Range};

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Largest supported block: 2^18 frames (1 GiB).
pub const MAX_ORDER: u32 = 18;

/// Why `free` refused a block. The allocator is unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// `order > MAX_ORDER`.
    BadOrder,
    /// `pa` is not aligned to `2^order` frames.
    Unaligned,
    /// The block is not entirely inside one managed region.
    NotManaged,
    /// Some frame of the block is already free (double free).
    NotAllocated,
}

/// A maximal run of managed frames `[base, end)` (pfns).
///
/// Invariants: word `w` of `bits` covers pfns `(word0 + w) * 64 ..+ 64`; bits
/// of pfns outside `[base, end)` are 0 forever; `free` = number of set bits.
#[derive(Debug)]
struct Region {
    base: u64,
    end: u64,
    word0: u64,
    bits: Vec<u64>,
    free: u64,
}

impl Region {
    fn new(base: u64, end: u64) -> Region {
        let word0 = base / 64;
        let nwords = (end.div_ceil(64) - word0) as usize;
        let mut bits = vec![u64::MAX; nwords];
        bits[0] &= !((1u64 << (base % 64)) - 1);
        if !end.is_multiple_of(64) {
            bits[nwords - 1] &= (1u64 << (end % 64)) - 1;
        }
        Region {
            base,
            end,
            word0,
            bits,
            free: end - base,
        }
    }

    /// First block of `2^order` free frames whose first word index is in
    /// `[from, to)`: `(word index, bit)`. Blocks never straddle a word for
    /// `order < 6` and are whole aligned words for `order >= 6`.
    fn find(&self, order: u32, from: usize, to: usize) -> Option<(usize, u32)> {
        if order < 6 {
            let (run, align) = (1u32 << order, aligned_bits(order));
            (from..to.min(self.bits.len())).find_map(|w| {
                // Bit i of `r` set iff bits i..i+run are all set.
                let mut r = self.bits[w];
                let mut s = 1;
                while s < run {
                    r &= r >> s;
                    s <<= 1;
                }
                let r = r & align;
                (r != 0).then(|| (w, r.trailing_zeros()))
            })
        } else {
            let n = 1u64 << (order - 6);
            // Candidate w: (word0 + w) % n == 0.
            let next = |w: u64| ((self.word0 + w).next_multiple_of(n) - self.word0) as usize;
            let mut w = next(from as u64);
            while w < to && w + n as usize <= self.bits.len() {
                match self.bits[w..w + n as usize]
                    .iter()
                    .position(|&x| x != u64::MAX)
                {
                    None => return Some((w, 0)),
                    Some(j) => w = next((w + j + 1) as u64),
                }
            }
            None
        }
    }

    /// Set (`free`) or clear the bits of the block at pfn `pfn`.
    fn mark(&mut self, pfn: u64, order: u32, free: bool) {
        let idx = pfn - self.word0 * 64;
        let (w, b) = ((idx / 64) as usize, idx % 64);
        let nw = if order < 6 { 1 } else { 1usize << (order - 6) };
        let mask = block_mask(order) << b;
        for x in &mut self.bits[w..w + nw] {
            if free {
                *x |= mask
            } else {
                *x &= !mask
            }
        }
        let n = 1u64 << order;
        if free {
            self.free += n
        } else {
            self.free -= n
        }
    }

    /// Whether every frame of the block at `pfn` is allocated.
    fn all_allocated(&self, pfn: u64, order: u32) -> bool {
        let idx = pfn - self.word0 * 64;
        let (w, b) = ((idx / 64) as usize, idx % 64);
        let nw = if order < 6 { 1 } else { 1usize << (order - 6) };
        let mask = block_mask(order) << b;
        self.bits[w..w + nw].iter().all(|x| x & mask == 0)
    }
}

/// Bits of one word covered by a block of `order` (all of it for `order >= 6`).
fn block_mask(order: u32) -> u64 {
    if order >= 6 {
        u64::MAX
    } else {
        (1u64 << (1u32 << order)) - 1
    }
}

/// Bit positions where a block of `order < 6` may start.
fn aligned_bits(order: u32) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < 64 {
        m |= 1 << i;
        i += 1 << order;
    }
    m
}

/// Allocator over a fixed set of physical ranges.
#[derive(Debug)]
pub struct FrameAllocator {
    /// Sorted, disjoint, non-adjacent, non-empty.
    regions: Vec<Region>,
    free: u64,
    total: u64,
    /// Per order: (region, word) where the next search starts.
    cursor: [(usize, usize); MAX_ORDER as usize + 1],
}

impl FrameAllocator {
    /// Manages the whole pages inside `free` (byte ranges; overlapping or
    /// adjacent ranges are merged, partial pages at the edges are dropped).
    /// Every managed frame starts free.
    pub fn new(free: &[Range]) -> FrameAllocator {
        let mut ranges: Vec<Range> = free.to_vec();
        merge_ranges(&mut ranges);
        let regions: Vec<Region> = ranges
            .iter()
            .filter_map(|r| {
                let base = r.start.checked_next_multiple_of(PAGE_SIZE)? >> PAGE_SHIFT;
                let end = r.start.saturating_add(r.size) >> PAGE_SHIFT;
                (base < end).then(|| Region::new(base, end))
            })
            .collect();
        let total = regions.iter().map(|r| r.free).sum();
        FrameAllocator {
            regions,
            free: total,
            total,
            cursor: [(0, 0); MAX_ORDER as usize + 1],
        }
    }

    /// Physical address of `2^order` contiguous free frames aligned to
    /// `2^order` frames, now allocated; `None` if there is no such block.
    pub fn alloc(&mut self, order: u32) -> Option<u64> {
        if order > MAX_ORDER || self.free < 1 << order || self.regions.is_empty() {
            return None;
        }
        let nr = self.regions.len();
        let (r0, w0) = self.cursor[order as usize];
        let r0 = r0.min(nr - 1);
        // Next fit: [cursor, end of region r0), the following regions, then
        // region r0 again from its start up to the cursor.
        for step in 0..=nr {
            let ri = (r0 + step) % nr;
            let region = &self.regions[ri];
            if region.free < 1 << order {
                continue;
            }
            let (from, to) = match step {
                0 => (w0, region.bits.len()),
                s if s == nr => (0, w0),
                _ => (0, region.bits.len()),
            };
            if let Some((w, bit)) = region.find(order, from, to) {
                let pfn = (region.word0 + w as u64) * 64 + u64::from(bit);
                self.regions[ri].mark(pfn, order, false);
                self.free -= 1 << order;
                // Small orders may find more room in the same word.
                let next = if order < 6 { w } else { w + (1 << (order - 6)) };
                self.cursor[order as usize] = (ri, next);
                return Some(pfn << PAGE_SHIFT);
            }
        }
        None
    }

    /// Returns the block of `2^order` frames at `pa` (or any aligned piece of
    /// an allocated block) to the pool.
    pub fn free(&mut self, pa: u64, order: u32) -> Result<(), FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::BadOrder);
        }
        if pa & ((PAGE_SIZE << order) - 1) != 0 {
            return Err(FrameError::Unaligned);
        }
        let pfn = pa >> PAGE_SHIFT;
        let ri = self.region_of(pfn).ok_or(FrameError::NotManaged)?;
        let region = &mut self.regions[ri];
        if pfn + (1 << order) > region.end {
            return Err(FrameError::NotManaged);
        }
        if !region.all_allocated(pfn, order) {
            return Err(FrameError::NotAllocated);
        }
        region.mark(pfn, order, true);
        self.free += 1 << order;
        Ok(())
    }

    /// Free frames.
    pub fn free_pages(&self) -> u64 {
        self.free
    }

    /// Managed frames, free or not.
    pub fn total_pages(&self) -> u64 {
        self.total
    }

    /// Whether `pa` lies in a managed frame (free or allocated).
    pub fn contains(&self, pa: u64) -> bool {
        self.region_of(pa >> PAGE_SHIFT).is_some()
    }

    fn region_of(&self, pfn: u64) -> Option<usize> {
        let i = self
            .regions
            .partition_point(|r| r.base <= pfn)
            .checked_sub(1)?;
        (pfn < self.regions[i].end).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const MIB: u64 = 1 << 20;

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    #[test]
    fn new_aligns_inwards_and_merges() {
        let fa = FrameAllocator::new(&[
            Range::new(0x1000_0800, 0x3000), // pages 0x10001, 0x10002
            Range::new(0x1000_3000, 0x1000), // adjacent: merged
            Range::new(0x2000_0000, 0xfff),  // no whole page
            Range::new(0x3000_0000, 0),
        ]);
        assert_eq!(fa.total_pages(), 3);
        assert_eq!(fa.free_pages(), 3);
        assert!(!fa.contains(0x1000_0000));
        assert!(fa.contains(0x1000_1000) && fa.contains(0x1000_3fff));
        assert!(!fa.contains(0x1000_4000) && !fa.contains(0x2000_0000));
        assert_eq!(FrameAllocator::new(&[]).total_pages(), 0);
        assert_eq!(
            FrameAllocator::new(&[Range::new(u64::MAX - 0x2fff, 0x3000)]).total_pages(),
            2
        );
    }

    #[test]
    fn exhaustion_and_refill_order0() {
        let mut fa = FrameAllocator::new(&[Range::new(0x4000_3000, 200 * PAGE_SIZE)]);
        let mut got = BTreeSet::new();
        while let Some(pa) = fa.alloc(0) {
            assert!(fa.contains(pa) && pa % PAGE_SIZE == 0);
            assert!(got.insert(pa));
        }
        assert_eq!(got.len(), 200);
        assert_eq!(fa.free_pages(), 0);
        assert_eq!(fa.alloc(0), None);
        for pa in got {
            fa.free(pa, 0).unwrap();
        }
        assert_eq!(fa.free_pages(), 200);
    }

    #[test]
    fn order9_alignment() {
        // [0x4000_1000, 0x4080_1000): aligned 2 MiB blocks at 0x402, 0x404, 0x406.
        let mut fa = FrameAllocator::new(&[Range::new(0x4000_1000, 8 * MIB)]);
        let mut blocks = Vec::new();
        while let Some(pa) = fa.alloc(9) {
            assert_eq!(pa % (2 * MIB), 0);
            blocks.push(pa);
        }
        blocks.sort();
        assert_eq!(blocks, [0x4020_0000, 0x4040_0000, 0x4060_0000]);
        assert_eq!(fa.free_pages(), 2048 - 3 * 512);
        // The unaligned head and tail are still usable as small frames.
        assert!(fa.alloc(0).is_some());
        let pa = fa.alloc(3).unwrap();
        assert_eq!(pa % (8 * PAGE_SIZE), 0);
    }

    #[test]
    fn free_rejects_bad_blocks() {
        let mut fa = FrameAllocator::new(&[Range::new(0x4000_0000, 4 * MIB)]);
        let pa = fa.alloc(9).unwrap();
        let free = fa.free_pages();
        assert_eq!(fa.free(pa + PAGE_SIZE, 9), Err(FrameError::Unaligned));
        assert_eq!(fa.free(pa, MAX_ORDER + 1), Err(FrameError::BadOrder));
        assert_eq!(fa.free(0x1000_0000, 0), Err(FrameError::NotManaged));
        assert_eq!(fa.free(0x4000_0000, 11), Err(FrameError::NotManaged)); // runs past the end
        assert_eq!(fa.free(!0xfff, 0), Err(FrameError::NotManaged));
        let other = if pa == 0x4000_0000 {
            0x4020_0000
        } else {
            0x4000_0000
        };
        assert_eq!(fa.free(other, 0), Err(FrameError::NotAllocated));
        assert_eq!(fa.free_pages(), free);
        // Freeing by pieces: one page, then the rest of the block is a double free.
        fa.free(pa + 5 * PAGE_SIZE, 0).unwrap();
        assert_eq!(
            fa.free(pa + 5 * PAGE_SIZE, 0),
            Err(FrameError::NotAllocated)
        );
        assert_eq!(fa.free(pa, 9), Err(FrameError::NotAllocated));
        for i in (0..512).filter(|&i| i != 5) {
            fa.free(pa + i * PAGE_SIZE, 0).unwrap();
        }
        assert_eq!(fa.free_pages(), fa.total_pages());
        assert_eq!(fa.free(pa, 9), Err(FrameError::NotAllocated));
    }

    #[test]
    fn mixed_orders_across_regions_never_overlap() {
        let mut fa = FrameAllocator::new(&[
            Range::new(0x4000_0000, 3 * MIB),
            Range::new(0x8010_0000, 5 * MIB),
        ]);
        let total = fa.total_pages();
        let mut used = BTreeSet::new();
        let mut blocks = Vec::new();
        for order in [0, 9, 0, 4, 9, 6, 0, 9, 9, 1] {
            if let Some(pa) = fa.alloc(order) {
                assert_eq!(pa % (PAGE_SIZE << order), 0);
                for p in 0..1u64 << order {
                    assert!(used.insert(pa / PAGE_SIZE + p));
                }
                blocks.push((pa, order));
            }
        }
        assert_eq!(fa.free_pages(), total - used.len() as u64);
        // Aligned 2 MiB blocks: 0x4000_0000 (broken by the first order-0
        // frame), 0x8020_0000 and 0x8040_0000.
        assert_eq!(blocks.iter().filter(|b| b.1 == 9).count(), 2);
        for (pa, order) in blocks {
            fa.free(pa, order).unwrap();
        }
        assert_eq!(fa.free_pages(), total);
    }

    #[test]
    fn random_alloc_free_returns_to_start() {
        let mut fa = FrameAllocator::new(&[
            Range::new(0x4000_0000, 16 * MIB + 0x5000),
            Range::new(0x5000_2000, 7 * MIB),
            Range::new(0x9000_0000, 64 * PAGE_SIZE),
        ]);
        let total = fa.total_pages();
        let mut live: BTreeMap<u64, u32> = BTreeMap::new(); // pa -> order
        let mut owner: BTreeSet<u64> = BTreeSet::new(); // allocated pfns
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let r = xorshift(&mut s);
            if !r.is_multiple_of(3) || live.is_empty() {
                let order = [0, 0, 0, 9, 9, 2, 6][(r >> 8) as usize % 7];
                if let Some(pa) = fa.alloc(order) {
                    assert_eq!(pa % (PAGE_SIZE << order), 0);
                    assert!(fa.contains(pa));
                    for p in 0..1u64 << order {
                        assert!(owner.insert(pa / PAGE_SIZE + p), "overlap at {pa:#x}");
                    }
                    live.insert(pa, order);
                }
            } else {
                let k = *live.keys().nth((r >> 8) as usize % live.len()).unwrap();
                let order = live.remove(&k).unwrap();
                fa.free(k, order).unwrap();
                assert_eq!(fa.free(k, order), Err(FrameError::NotAllocated));
                for p in 0..1u64 << order {
                    owner.remove(&(k / PAGE_SIZE + p));
                }
            }
            assert_eq!(fa.free_pages(), total - owner.len() as u64);
        }
        for (pa, order) in live {
            fa.free(pa, order).unwrap();
        }
        assert_eq!(fa.free_pages(), total);
        // Everything is allocatable again, as 2 MiB blocks where possible.
        let mut n = 0;
        while fa.alloc(9).is_some() {
            n += 1;
        }
        assert_eq!(n, 8 + 2);
    }

    #[test]
    fn many_order9_allocations_of_4gib() {
        let mut fa = FrameAllocator::new(&[Range::new(0x1_0000_0000, 4 << 30)]);
        for _ in 0..2048 {
            assert!(fa.alloc(9).is_some());
        }
        assert_eq!(fa.alloc(9), None);
        assert_eq!(fa.alloc(0), None);
    }
}
