//! Physical address ranges and the choice of dom0's 1:1 RAM region.
//!
//! All arithmetic is overflow-checked: ranges come from the boot device tree,
//! which is untrusted input.

use alloc::vec::Vec;

/// 4 GiB: dom0 prefers RAM that ends at or below this (32-bit DMA, swiotlb-xen).
pub const FOUR_GIB: u64 = 1 << 32;

/// A half-open physical range `[start, start + size)`.
///
/// A range may touch the top of the address space (`start + size == 2^64`);
/// use [`Range::last`] (inclusive) rather than [`Range::end`] when that matters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub start: u64,
    pub size: u64,
}

impl Range {
    pub const fn new(start: u64, size: u64) -> Self {
        Range { start, size }
    }

    /// `[start, end)`; `None` if `end < start`.
    pub fn from_bounds(start: u64, end: u64) -> Option<Self> {
        Some(Range {
            start,
            size: end.checked_sub(start)?,
        })
    }

    pub const fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Exclusive end; `None` if it does not fit in a u64 (the range reaches 2^64 or beyond).
    pub fn end(&self) -> Option<u64> {
        self.start.checked_add(self.size)
    }

    /// Inclusive last address; `None` for an empty range or one that extends past 2^64.
    pub fn last(&self) -> Option<u64> {
        if self.size == 0 {
            return None;
        }
        self.start.checked_add(self.size - 1)
    }

    /// Whether the range is non-empty and fits in the 64-bit address space.
    pub fn is_valid(&self) -> bool {
        self.last().is_some()
    }

    /// Inclusive last address, clamped to `u64::MAX` for ranges that run past
    /// the top. Used for conservative overlap tests on untrusted ranges.
    fn last_saturating(&self) -> Option<u64> {
        if self.size == 0 {
            None
        } else {
            Some(self.start.saturating_add(self.size - 1))
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        match self.last_saturating() {
            Some(last) => self.start <= addr && addr <= last,
            None => false,
        }
    }

    /// Whether `other` lies entirely inside `self` (an empty `other` never does).
    pub fn contains_range(&self, other: &Range) -> bool {
        match (self.last(), other.last()) {
            (Some(a), Some(b)) => self.start <= other.start && b <= a,
            _ => false,
        }
    }

    /// Whether the two ranges share at least one byte. Ranges running past
    /// 2^64 are treated as ending at `u64::MAX` (conservative).
    pub fn overlaps(&self, other: &Range) -> bool {
        match (self.last_saturating(), other.last_saturating()) {
            (Some(a), Some(b)) => self.start <= b && other.start <= a,
            _ => false,
        }
    }

    /// Smallest range aligned to `align` (a power of two) that covers `self`.
    /// `None` if empty, `align` is not a power of two, or the result overflows.
    pub fn align_out(&self, align: u64) -> Option<Range> {
        if !align.is_power_of_two() {
            return None;
        }
        let last = self.last()?;
        let start = self.start & !(align - 1);
        let last = last | (align - 1);
        // `last - start + 1` cannot overflow unless the range spans all 2^64 bytes.
        let size = (last - start).checked_add(1)?;
        Some(Range { start, size })
    }
}

/// Sort ranges and merge overlapping or adjacent ones. Empty and invalid
/// (wrapping) ranges are dropped.
pub fn merge_ranges(ranges: &mut Vec<Range>) {
    ranges.retain(Range::is_valid);
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges.iter() {
        if let Some(prev) = out.last_mut() {
            // Both are valid, so `last()` is Some.
            let prev_last = prev.last().unwrap_or(u64::MAX);
            let adjacent = prev_last.checked_add(1).is_none_or(|n| r.start <= n);
            if adjacent {
                let r_last = r.last().unwrap_or(u64::MAX);
                if r_last > prev_last {
                    // (r_last - prev.start) < 2^64 - 1 unless it spans everything.
                    match (r_last - prev.start).checked_add(1) {
                        Some(size) => prev.size = size,
                        None => prev.size = u64::MAX, // degenerate: clamp
                    }
                }
                continue;
            }
        }
        out.push(*r);
    }
    *ranges = out;
}

/// `ranges` minus every byte covered by `holes`. The result is sorted and merged.
pub fn subtract_ranges(ranges: &[Range], holes: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    for r in ranges {
        let Some(last) = r.last() else { continue };
        for (s, e) in free_intervals(r.start, last, holes) {
            out.push(Range {
                start: s,
                size: e - s + 1,
            });
        }
    }
    merge_ranges(&mut out);
    out
}

/// Inclusive sub-intervals of `[start, last]` not covered by any of `holes`.
fn free_intervals(start: u64, last: u64, holes: &[Range]) -> Vec<(u64, u64)> {
    let mut hs: Vec<(u64, u64)> = holes
        .iter()
        .filter_map(|h| Some((h.start, h.last_saturating()?)))
        .filter(|&(hs, he)| hs <= last && he >= start)
        .collect();
    hs.sort_unstable();
    let mut out = Vec::new();
    let mut cur = Some(start);
    for (hs, he) in hs {
        let Some(c) = cur else { break };
        if hs > c {
            out.push((c, hs - 1));
        }
        if he >= last {
            cur = None;
        } else if he >= c {
            cur = Some(he + 1);
        }
    }
    if let Some(c) = cur {
        out.push((c, last));
    }
    out
}

/// Highest `align`-aligned base in the inclusive interval `[s, e]` such that
/// `[base, base + size)` fits in it.
fn highest_fit(s: u64, e: u64, size: u64, align: u64) -> Option<u64> {
    // size >= 1; the block's last byte must be <= e, so base <= e - (size - 1).
    let max_base = e.checked_sub(size - 1)?;
    let base = max_base & !(align - 1);
    (base >= s).then_some(base)
}

/// Pick the physical base for a 1:1 dom0 RAM block of `size` bytes.
///
/// Returns the highest `align`-aligned base such that the block lies entirely
/// inside one bank of `ram` and overlaps none of `reserved`, preferring blocks
/// that end at or below 4 GiB; if none fits there, any fitting block.
/// `None` if `size` is 0, `align` is not a power of two, or nothing fits.
pub fn pick_region(ram: &[Range], reserved: &[Range], size: u64, align: u64) -> Option<u64> {
    if size == 0 || !align.is_power_of_two() {
        return None;
    }
    let mut best_low: Option<u64> = None;
    let mut best_any: Option<u64> = None;
    for bank in ram {
        // Banks that wrap past 2^64 are malformed: ignore them.
        let Some(last) = bank.last() else { continue };
        for (s, e) in free_intervals(bank.start, last, reserved) {
            if let Some(b) = highest_fit(s, e, size, align) {
                best_any = best_any.max(Some(b));
            }
            if s < FOUR_GIB {
                let e_low = e.min(FOUR_GIB - 1);
                if let Some(b) = highest_fit(s, e_low, size, align) {
                    best_low = best_low.max(Some(b));
                }
            }
        }
    }
    best_low.or(best_any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn range_helpers() {
        let r = Range::new(0x1000, 0x1000);
        assert_eq!(r.end(), Some(0x2000));
        assert_eq!(r.last(), Some(0x1fff));
        assert!(r.contains(0x1000) && r.contains(0x1fff) && !r.contains(0x2000));
        assert!(r.overlaps(&Range::new(0x1fff, 1)));
        assert!(!r.overlaps(&Range::new(0x2000, 1)));
        assert!(!r.overlaps(&Range::new(0x1000, 0)));
        assert!(r.contains_range(&Range::new(0x1800, 0x800)));
        assert!(!r.contains_range(&Range::new(0x1800, 0x801)));
        let top = Range::new(u64::MAX - 0xfff, 0x1000);
        assert_eq!(top.end(), None);
        assert_eq!(top.last(), Some(u64::MAX));
        assert!(top.is_valid());
        assert!(!Range::new(u64::MAX, 2).is_valid());
        assert!(Range::new(u64::MAX, 2).overlaps(&Range::new(u64::MAX, 1)));
        assert_eq!(
            Range::new(0x1234, 0x10).align_out(0x1000),
            Some(Range::new(0x1000, 0x1000))
        );
        assert_eq!(
            Range::new(0x1ff0, 0x20).align_out(0x1000),
            Some(Range::new(0x1000, 0x2000))
        );
        assert_eq!(Range::new(0x1000, 0).align_out(0x1000), None);
        assert_eq!(Range::new(0, 1).align_out(3), None);
        assert_eq!(Range::from_bounds(5, 4), None);
    }

    #[test]
    fn merge_and_subtract() {
        let mut v = vec![
            Range::new(0x3000, 0x1000),
            Range::new(0x1000, 0x1000),
            Range::new(0x2000, 0x1000),
            Range::new(0x2400, 0x200),
            Range::new(0x9000, 0),
            Range::new(u64::MAX, 5),
        ];
        merge_ranges(&mut v);
        assert_eq!(v, vec![Range::new(0x1000, 0x3000)]);
        let s = subtract_ranges(
            &[Range::new(0, 0x10000)],
            &[Range::new(0x1000, 0x1000), Range::new(0xf000, 0x5000)],
        );
        assert_eq!(s, vec![Range::new(0, 0x1000), Range::new(0x2000, 0xd000)]);
        let s = subtract_ranges(&[Range::new(0, 0x1000)], &[Range::new(0, u64::MAX)]);
        assert!(s.is_empty());
    }

    #[test]
    fn picks_highest_below_4g() {
        let ram = [Range::new(0x4000_0000, 2 * GIB)];
        assert_eq!(
            pick_region(&ram, &[], 512 * MIB, 2 * MIB),
            Some(0xa000_0000)
        );
    }

    #[test]
    fn prefers_low_bank_then_high() {
        let ram = [
            Range::new(0x8_0000_0000, 8 * GIB),
            Range::new(0x4000_0000, GIB),
        ];
        assert_eq!(
            pick_region(&ram, &[], 512 * MIB, 2 * MIB),
            Some(0x6000_0000)
        );
        // Too big for the low bank: falls back to the highest fit anywhere.
        assert_eq!(
            pick_region(&ram, &[], 2 * GIB, 2 * MIB),
            Some(0x9_8000_0000)
        );
    }

    #[test]
    fn bank_straddling_4g_uses_part_below() {
        let ram = [Range::new(0xc000_0000, 4 * GIB)];
        assert_eq!(
            pick_region(&ram, &[], 256 * MIB, 2 * MIB),
            Some(0xf000_0000)
        );
        // 2 GiB does not fit below 4 GiB: highest base overall.
        assert_eq!(
            pick_region(&ram, &[], 2 * GIB, 2 * MIB),
            Some(0x1_4000_0000)
        );
    }

    #[test]
    fn avoids_reserved() {
        let ram = [Range::new(0x4000_0000, GIB)];
        let resv = [
            Range::new(0x7fe0_0000, 0x1000),
            Range::new(0x6000_0000, 0x10_0000),
        ];
        // Top free interval is 0x6010_0000..0x7fe0_0000 (~509 MiB): 256 MiB fits below the reservation.
        assert_eq!(
            pick_region(&ram, &resv, 256 * MIB, 2 * MIB),
            Some(0x6fe0_0000)
        );
        // 0x2000_0000 does not fit above 0x6010_0000 nor below 0x6000_0000... 0x4000_0000 + 512M = 0x6000_0000 fits exactly.
        assert_eq!(
            pick_region(&ram, &resv, 512 * MIB, 2 * MIB),
            Some(0x4000_0000)
        );
        assert_eq!(pick_region(&ram, &resv, 513 * MIB, 2 * MIB), None);
    }

    #[test]
    fn alignment_and_bad_args() {
        let ram = [Range::new(0x4000_1000, 0x1000_0000)];
        // Highest 2 MiB-aligned base with 16 MiB fitting below 0x5000_1000.
        assert_eq!(pick_region(&ram, &[], 16 * MIB, 2 * MIB), Some(0x4f00_0000));
        assert_eq!(pick_region(&ram, &[], 0, 2 * MIB), None);
        assert_eq!(pick_region(&ram, &[], MIB, 3), None);
        assert_eq!(pick_region(&ram, &[], MIB, 0), None);
        assert_eq!(pick_region(&ram, &[], 0x1000_0001, 1), None);
        assert_eq!(pick_region(&[], &[], MIB, 1), None);
    }

    #[test]
    fn overflow_safe() {
        let ram = [
            Range::new(u64::MAX - 0xfff, 0x1000),
            Range::new(u64::MAX, u64::MAX),
            Range::new(0, 0),
        ];
        assert_eq!(
            pick_region(&ram, &[], 0x1000, 0x1000),
            Some(u64::MAX - 0xfff)
        );
        assert_eq!(
            pick_region(&ram, &[Range::new(u64::MAX - 5, 100)], 0x1000, 0x1000),
            None
        );
        assert_eq!(pick_region(&ram, &[], u64::MAX, 1), None);
        let all = [Range::new(0, u64::MAX)];
        assert_eq!(pick_region(&all, &[], u64::MAX, 1), Some(0));
        assert_eq!(pick_region(&all, &[], 1 << 63, 1 << 63), Some(0));
    }
}
