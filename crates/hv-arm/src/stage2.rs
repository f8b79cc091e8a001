//! VMSAv8-64 stage-2 translation tables: 4 KiB granule, 40-bit IPA space
//! (`VTCR_EL2.T0SZ = 24`), walks starting at level 1 with two concatenated
//! level-1 tables (an 8 KiB, 8 KiB-aligned root of 1024 entries).
//!
//! | level | IPA bits | entry covers | leaf kind |
//! |---|---|---|---|
//! | 1 | 39:30 | 1 GiB | block |
//! | 2 | 29:21 | 2 MiB | block |
//! | 3 | 20:12 | 4 KiB | page |
//!
//! The tables live in memory the binary owns; this module reaches them only
//! through [`TableMemory`]. Changes to live entries follow break-before-make:
//! a valid entry is first overwritten with an invalid one, then
//! [`TableMemory::tlb_invalidate`] runs, then the new entry is written; page
//! tables that fall out of use are handed back with [`TableMemory::free`] only
//! after that invalidation.

/// Translation granule / page size.
pub const PAGE_SIZE: u64 = 4096;
/// Size of the IPA space (T0SZ = 24).
pub const IPA_BITS: u32 = 40;
/// First IPA that cannot be mapped.
pub const IPA_LIMIT: u64 = 1 << IPA_BITS;
/// First output (host physical) address that cannot be mapped: 48-bit
/// descriptors. The real limit is the CPU's PARange; addresses above it fault.
pub const PA_LIMIT: u64 = 1 << 48;
/// Pages in the concatenated root table.
pub const ROOT_PAGES: usize = 2;
/// Entries in the concatenated root table.
pub const ROOT_ENTRIES: usize = 1024;
/// Entries in a level-2 or level-3 table.
pub const TABLE_ENTRIES: usize = 512;
/// Size covered by a level-1 block.
pub const L1_BLOCK: u64 = 1 << 30;
/// Size covered by a level-2 block.
pub const L2_BLOCK: u64 = 1 << 21;

const DESC_VALID: u64 = 1 << 0;
const DESC_TABLE: u64 = 1 << 1; // table (L1/L2) or page (L3)
const OA_MASK: u64 = 0x0000_FFFF_FFFF_F000;
const MEMATTR_SHIFT: u32 = 2;
const MEMATTR_NORMAL_WB: u64 = 0b1111;
const MEMATTR_DEVICE_NGNRE: u64 = 0b0001;
const S2AP_SHIFT: u32 = 6;
const S2AP_RO: u64 = 0b01;
const S2AP_RW: u64 = 0b11;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
/// XN\[1:0\] = 0b10: execute-never at EL1 and EL0 (also the plain `XN` bit
/// 54 when FEAT_XNX is absent).
const XN: u64 = 0b10 << 53;
/// Leaf attribute bits copied into the children of a split block:
/// upper attributes 63:51 and lower attributes 11:2.
const LEAF_ATTR_MASK: u64 = 0xFFF8_0000_0000_0FFC;

/// Memory holding the translation tables, implemented by the binary.
///
/// Entries are 64-bit little-endian descriptors at `table_pa + 8 * index`.
/// `index` is below 512, except for the root table where it is below 1024
/// (two concatenated pages). Writes must be single 64-bit stores to memory
/// mapped Normal Inner/Outer write-back, Inner Shareable (the walker is then
/// coherent, per [`vtcr_el2`]'s IRGN0/ORGN0/SH0).
pub trait TableMemory {
    /// `n` contiguous zeroed 4 KiB pages aligned to `n * 4` KiB; returns PA.
    fn alloc_zeroed(&mut self, pages: usize) -> Option<u64>;
    /// Read entry `index` of the table at `table_pa`.
    fn read_entry(&self, table_pa: u64, index: usize) -> u64;
    /// Write entry `index` of the table at `table_pa`.
    fn write_entry(&mut self, table_pa: u64, index: usize, value: u64);
    /// Give back pages obtained from [`TableMemory::alloc_zeroed`].
    fn free(&mut self, pa: u64, pages: usize) {
        let _ = (pa, pages);
    }
    /// Break-before-make hook: a valid entry mapping `[ipa, ipa + size)` has
    /// just been replaced by an invalid one. Before returning, the binary must
    /// make the write visible and drop cached translations for that range
    /// (`DSB ISHST; TLBI IPAS2E1IS` per page or one `TLBI VMALLS12E1IS`;
    /// `DSB ISH`; `TLBI VMALLE1IS; DSB ISH` for combined stage-1+2 entries).
    /// TLBI acts on the VMID in `VTTBR_EL2`, so load this VM's value first (or
    /// do nothing while the VM has never run and flush before its first entry).
    fn tlb_invalidate(&mut self, ipa: u64, size: u64) {
        let _ = (ipa, size);
    }
}

/// Stage-2 memory type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Normal, Inner/Outer write-back, Inner Shareable, executable.
    Normal,
    /// Device-nGnRE, execute-never.
    Device,
}

/// Stage-2 access permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: guest writes take a stage-2 permission fault.
    ReadOnly,
}

/// Why a stage-2 operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage2Error {
    /// IPA, PA or size not a multiple of 4 KiB.
    Unaligned,
    /// Range beyond the IPA space (2^40) or output space (2^48), or wrapping.
    OutOfRange,
    /// [`TableMemory::alloc_zeroed`] failed. The range may be partially
    /// (re)mapped; every entry is either old or new, never torn.
    OutOfMemory,
    /// The allocator returned a misaligned or out-of-range address.
    BadAllocation,
}

/// `Stage2::root` of a regime without tables (never a table address: those
/// are 8 KiB aligned).
const NO_ROOT: u64 = u64::MAX;

/// A stage-2 translation regime for one VM.
#[derive(Debug)]
pub struct Stage2 {
    root: u64,
}

#[derive(Clone, Copy)]
enum Entry {
    Invalid,
    Table(u64),
    Leaf(u64),
}

#[inline]
const fn shift(level: u32) -> u32 {
    12 + 9 * (3 - level)
}

#[inline]
const fn index(level: u32, ipa: u64) -> usize {
    let mask = if level == 1 { 0x3FF } else { 0x1FF };
    ((ipa >> shift(level)) & mask) as usize
}

#[inline]
const fn classify(desc: u64, level: u32) -> Entry {
    if desc & DESC_VALID == 0 {
        Entry::Invalid
    } else if level < 3 {
        if desc & DESC_TABLE != 0 {
            Entry::Table(desc & OA_MASK)
        } else {
            Entry::Leaf(desc)
        }
    } else if desc & DESC_TABLE != 0 {
        Entry::Leaf(desc)
    } else {
        // 0b01 at level 3 is reserved: treated as invalid by the walker.
        Entry::Invalid
    }
}

#[inline]
const fn leaf_type_bits(level: u32) -> u64 {
    if level == 3 {
        DESC_VALID | DESC_TABLE
    } else {
        DESC_VALID
    }
}

const fn leaf_attrs(ty: MemType, access: Access) -> u64 {
    let ap = match access {
        Access::ReadWrite => S2AP_RW,
        Access::ReadOnly => S2AP_RO,
    };
    let (attr, xn) = match ty {
        MemType::Normal => (MEMATTR_NORMAL_WB, 0),
        MemType::Device => (MEMATTR_DEVICE_NGNRE, XN),
    };
    (attr << MEMATTR_SHIFT) | (ap << S2AP_SHIFT) | SH_INNER | AF | xn
}

fn alloc_table(mem: &mut impl TableMemory, pages: usize) -> Result<u64, Stage2Error> {
    let pa = mem.alloc_zeroed(pages).ok_or(Stage2Error::OutOfMemory)?;
    let align = PAGE_SIZE * pages as u64;
    if !pa.is_multiple_of(align) || pa.checked_add(align).is_none_or(|end| end > PA_LIMIT) {
        mem.free(pa, pages);
        return Err(Stage2Error::BadAllocation);
    }
    Ok(pa)
}

/// Hand back the table at `table` (of `level`) and every table below it.
/// Recursion depth is at most two.
fn free_subtree(mem: &mut impl TableMemory, table: u64, level: u32) {
    if level < 3 {
        for i in 0..TABLE_ENTRIES {
            if let Entry::Table(t) = classify(mem.read_entry(table, i), level) {
                free_subtree(mem, t, level + 1);
            }
        }
    }
    mem.free(table, 1);
}

/// Write `new` over entry `idx` of `table` (covering `[base, base + size)` at
/// `level`), using break-before-make when the old entry was valid, and
/// releasing any table the old entry pointed to.
#[allow(clippy::too_many_arguments)]
fn replace(
    mem: &mut impl TableMemory,
    table: u64,
    idx: usize,
    level: u32,
    base: u64,
    size: u64,
    old: u64,
    new: u64,
) {
    let kind = classify(old, level);
    if let Entry::Invalid = kind {
        mem.write_entry(table, idx, new);
        return;
    }
    if old == new {
        return;
    }
    mem.write_entry(table, idx, 0);
    mem.tlb_invalidate(base, size);
    if new != 0 {
        mem.write_entry(table, idx, new);
    }
    if let Entry::Table(t) = kind {
        free_subtree(mem, t, level + 1);
    }
}

/// Build a table of `level + 1` entries reproducing the block `desc` of `level`.
fn split_block(mem: &mut impl TableMemory, desc: u64, level: u32) -> Result<u64, Stage2Error> {
    let t = alloc_table(mem, 1)?;
    let child_level = level + 1;
    let child_size = 1u64 << shift(child_level);
    let base = desc & OA_MASK & !((1u64 << shift(level)) - 1);
    let attrs = (desc & LEAF_ATTR_MASK) | leaf_type_bits(child_level);
    for i in 0..TABLE_ENTRIES {
        mem.write_entry(t, i, attrs | (base + i as u64 * child_size));
    }
    Ok(t)
}

fn check_range(ipa: u64, size: u64) -> Result<u64, Stage2Error> {
    if !ipa.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(Stage2Error::Unaligned);
    }
    match ipa.checked_add(size) {
        Some(end) if end <= IPA_LIMIT => Ok(end),
        _ => Err(Stage2Error::OutOfRange),
    }
}

impl Stage2 {
    /// Allocate an empty root (two zeroed, 8 KiB-aligned pages).
    pub fn new(mem: &mut impl TableMemory) -> Result<Stage2, Stage2Error> {
        let root = alloc_table(mem, ROOT_PAGES)?;
        Ok(Stage2 { root })
    }

    /// Physical address of the root table, for [`vttbr_el2`].
    pub fn root_pa(&self) -> u64 {
        self.root
    }

    /// Map `[ipa, ipa + size)` to `[pa, pa + size)`. Uses 1 GiB and 2 MiB
    /// blocks wherever IPA, PA and remaining size allow, 4 KiB pages
    /// elsewhere. Existing mappings in the range are replaced (blocks that
    /// straddle the range boundary are split, the rest of the block keeps its
    /// old mapping). `size == 0` is a no-op.
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        ipa: u64,
        pa: u64,
        size: u64,
        ty: MemType,
        access: Access,
    ) -> Result<(), Stage2Error> {
        let end = check_range(ipa, size)?;
        if !pa.is_multiple_of(PAGE_SIZE) {
            return Err(Stage2Error::Unaligned);
        }
        match pa.checked_add(size) {
            Some(pa_end) if pa_end <= PA_LIMIT => {}
            _ => return Err(Stage2Error::OutOfRange),
        }
        let attrs = leaf_attrs(ty, access);
        let mut cur = ipa;
        while cur < end {
            let step = self.map_step(mem, cur, pa + (cur - ipa), end - cur, attrs)?;
            cur += step;
        }
        Ok(())
    }

    /// Map the largest possible leaf at `ipa`; returns the size it covers.
    fn map_step(
        &mut self,
        mem: &mut impl TableMemory,
        ipa: u64,
        pa: u64,
        remaining: u64,
        attrs: u64,
    ) -> Result<u64, Stage2Error> {
        let mut table = self.root;
        let mut level = 1;
        loop {
            let bsize = 1u64 << shift(level);
            let idx = index(level, ipa);
            let old = mem.read_entry(table, idx);
            let base = ipa & !(bsize - 1);
            if level == 3
                || (ipa.is_multiple_of(bsize) && pa.is_multiple_of(bsize) && remaining >= bsize)
            {
                let new = attrs | (pa & OA_MASK) | leaf_type_bits(level);
                replace(mem, table, idx, level, base, bsize, old, new);
                return Ok(bsize);
            }
            table = match classify(old, level) {
                Entry::Table(t) => t,
                Entry::Invalid => {
                    let t = alloc_table(mem, 1)?;
                    mem.write_entry(table, idx, t | DESC_VALID | DESC_TABLE);
                    t
                }
                Entry::Leaf(desc) => {
                    let t = split_block(mem, desc, level)?;
                    replace(
                        mem,
                        table,
                        idx,
                        level,
                        base,
                        bsize,
                        old,
                        t | DESC_VALID | DESC_TABLE,
                    );
                    t
                }
            };
            level += 1;
        }
    }

    /// Remove every mapping in `[ipa, ipa + size)`, splitting blocks that
    /// straddle the boundaries. Unmapped holes are fine; tables wholly inside
    /// the range are freed. `size == 0` is a no-op.
    pub fn unmap(
        &mut self,
        mem: &mut impl TableMemory,
        ipa: u64,
        size: u64,
    ) -> Result<(), Stage2Error> {
        let end = check_range(ipa, size)?;
        let mut cur = ipa;
        while cur < end {
            cur = self.unmap_step(mem, cur, end)?;
        }
        Ok(())
    }

    /// Unmap from `cur` as far as one entry allows; returns the next IPA
    /// (always greater than `cur`).
    fn unmap_step(
        &mut self,
        mem: &mut impl TableMemory,
        cur: u64,
        end: u64,
    ) -> Result<u64, Stage2Error> {
        let mut table = self.root;
        let mut level = 1;
        loop {
            let bsize = 1u64 << shift(level);
            let idx = index(level, cur);
            let old = mem.read_entry(table, idx);
            let base = cur & !(bsize - 1);
            let entry_end = base + bsize;
            let covers = cur == base && end >= entry_end;
            match classify(old, level) {
                Entry::Invalid => return Ok(entry_end.min(end)),
                Entry::Table(_) | Entry::Leaf(_) if covers => {
                    replace(mem, table, idx, level, base, bsize, old, 0);
                    return Ok(entry_end);
                }
                Entry::Table(t) => table = t,
                Entry::Leaf(desc) => {
                    // Only reachable at levels 1 and 2: at level 3 a
                    // page-aligned range always covers the whole entry.
                    let t = split_block(mem, desc, level)?;
                    replace(
                        mem,
                        table,
                        idx,
                        level,
                        base,
                        bsize,
                        old,
                        t | DESC_VALID | DESC_TABLE,
                    );
                    table = t;
                }
            }
            level += 1;
        }
    }

    /// Look up `ipa`: output address (with page offset), type and access.
    /// `None` when unmapped or outside the IPA space.
    pub fn translate(&self, mem: &impl TableMemory, ipa: u64) -> Option<(u64, MemType, Access)> {
        if ipa >= IPA_LIMIT {
            return None;
        }
        let mut table = self.root;
        let mut level = 1;
        loop {
            let bsize = 1u64 << shift(level);
            match classify(mem.read_entry(table, index(level, ipa)), level) {
                Entry::Invalid => return None,
                Entry::Table(t) if level < 3 => table = t,
                Entry::Table(_) => return None,
                Entry::Leaf(desc) => {
                    let pa = (desc & OA_MASK & !(bsize - 1)) | (ipa & (bsize - 1));
                    let attr = (desc >> MEMATTR_SHIFT) & 0xF;
                    let ty = if attr >> 2 == 0 {
                        MemType::Device
                    } else {
                        MemType::Normal
                    };
                    let access = match (desc >> S2AP_SHIFT) & 0b11 {
                        S2AP_RW => Access::ReadWrite,
                        S2AP_RO => Access::ReadOnly,
                        _ => return None,
                    };
                    return Some((pa, ty, access));
                }
            }
            level += 1;
        }
    }

    /// A regime with no tables at all (what a destroyed one is replaced by).
    /// Only [`Stage2::destroy`] may be called on it.
    pub const fn empty() -> Stage2 {
        Stage2 { root: NO_ROOT }
    }

    /// Free every table, including the root. The caller must have stopped the
    /// VM and invalidated its VMID's TLB entries first.
    pub fn destroy(self, mem: &mut impl TableMemory) {
        if self.root == NO_ROOT {
            return;
        }
        for i in 0..ROOT_ENTRIES {
            if let Entry::Table(t) = classify(mem.read_entry(self.root, i), 1) {
                free_subtree(mem, t, 2);
            }
        }
        mem.free(self.root, ROOT_PAGES);
    }
}

/// `VTCR_EL2` for these tables: T0SZ = 24, SL0 = 1 (start at level 1),
/// IRGN0/ORGN0 = write-back write-allocate, SH0 = Inner Shareable, TG0 = 4 KiB,
/// PS from `ID_AA64MMFR0_EL1.PARange` clamped to 40..=48 bits, VS = 0 (8-bit
/// VMID), RES1 bit 31.
pub const fn vtcr_el2(parange: u8) -> u64 {
    let ps = match parange & 0xF {
        0..=2 => 2, // at least 40 bits, as T0SZ = 24 requires
        p @ 3..=5 => p as u64,
        _ => 5, // 52-bit (or reserved): descriptors here are 48-bit
    };
    let t0sz = 64 - IPA_BITS as u64;
    let sl0 = 1 << 6;
    let irgn0 = 0b01 << 8;
    let orgn0 = 0b01 << 10;
    let sh0 = 0b11 << 12;
    let tg0 = 0b00 << 14;
    (1 << 31) | (ps << 16) | tg0 | sh0 | orgn0 | irgn0 | sl0 | t0sz
}

/// Largest VMID usable with [`vtcr_el2`] (VS = 0: 8-bit VMIDs).
pub const MAX_VMID: u16 = 0xFF;

/// `VTTBR_EL2`: VMID in bits 55:48 (masked to 8 bits, see [`MAX_VMID`]) and
/// the root table address (BADDR, bits 47:1; CnP = 0).
pub const fn vttbr_el2(root_pa: u64, vmid: u16) -> u64 {
    (((vmid & MAX_VMID) as u64) << 48) | (root_pa & 0x0000_FFFF_FFFF_FFFE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::vec::Vec;

    /// Fake table memory: pages in a HashMap, bump allocator, fault injection.
    struct FakeMem {
        pages: HashMap<u64, Vec<u64>>,
        next: u64,
        live: HashSet<u64>,
        fail_after: Option<usize>,
        invalidations: Vec<(u64, u64)>,
        /// (table, index) pairs written while valid entries were live there
        /// without an invalidation in between (break-before-make violations).
        bbm_violations: usize,
        pending_break: HashSet<(u64, usize)>,
    }

    impl FakeMem {
        fn new() -> Self {
            FakeMem {
                pages: HashMap::new(),
                next: 0x8000_0000,
                live: HashSet::new(),
                fail_after: None,
                invalidations: Vec::new(),
                bbm_violations: 0,
                pending_break: HashSet::new(),
            }
        }
        fn live_pages(&self) -> usize {
            self.live.len()
        }
        fn slot(&self, table_pa: u64, index: usize) -> (u64, usize) {
            (table_pa + (index as u64 / 512) * PAGE_SIZE, index % 512)
        }
    }

    impl TableMemory for FakeMem {
        fn alloc_zeroed(&mut self, pages: usize) -> Option<u64> {
            if let Some(n) = self.fail_after.as_mut() {
                if *n == 0 {
                    return None;
                }
                *n -= 1;
            }
            let align = PAGE_SIZE * pages as u64;
            let pa = self.next.next_multiple_of(align);
            self.next = pa + align;
            for i in 0..pages as u64 {
                let p = pa + i * PAGE_SIZE;
                self.pages.insert(p, vec![0; 512]);
                self.live.insert(p);
            }
            Some(pa)
        }
        fn read_entry(&self, table_pa: u64, index: usize) -> u64 {
            let (p, i) = self.slot(table_pa, index);
            assert!(self.live.contains(&p), "read of freed/unknown page {p:#x}");
            self.pages[&p][i]
        }
        fn write_entry(&mut self, table_pa: u64, index: usize, value: u64) {
            let (p, i) = self.slot(table_pa, index);
            assert!(self.live.contains(&p), "write to freed/unknown page {p:#x}");
            let old = self.pages[&p][i];
            if old & 1 != 0 && value & 1 != 0 {
                self.bbm_violations += 1;
            }
            if old & 1 != 0 && value & 1 == 0 {
                self.pending_break.insert((p, i));
            }
            if value & 1 != 0 && self.pending_break.contains(&(p, i)) {
                // Valid written after a break: must have been invalidated.
                self.bbm_violations += 1;
            }
            self.pages.get_mut(&p).unwrap()[i] = value;
        }
        fn free(&mut self, pa: u64, pages: usize) {
            for i in 0..pages as u64 {
                assert!(self.live.remove(&(pa + i * PAGE_SIZE)), "double free");
            }
        }
        fn tlb_invalidate(&mut self, ipa: u64, size: u64) {
            self.invalidations.push((ipa, size));
            self.pending_break.clear();
        }
    }

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn level_of(mem: &FakeMem, s: &Stage2, ipa: u64) -> Option<u32> {
        let mut table = s.root_pa();
        for level in 1..=3 {
            match classify(mem.read_entry(table, index(level, ipa)), level) {
                Entry::Invalid => return None,
                Entry::Table(t) => table = t,
                Entry::Leaf(_) => return Some(level),
            }
        }
        None
    }

    fn raw_leaf(mem: &FakeMem, s: &Stage2, ipa: u64) -> u64 {
        let mut table = s.root_pa();
        for level in 1..=3 {
            let d = mem.read_entry(table, index(level, ipa));
            match classify(d, level) {
                Entry::Table(t) => table = t,
                _ => return d,
            }
        }
        0
    }

    /// Fuzz regression (stage2 smoke run): a root table at physical
    /// address 0 is a real root, freed by `destroy`; only `empty()` has none.
    #[test]
    fn root_at_address_zero_is_freed() {
        let mut m = FakeMem::new();
        m.next = 0;
        let s2 = Stage2::new(&mut m).unwrap();
        assert_eq!(s2.root_pa(), 0);
        s2.destroy(&mut m);
        assert_eq!(m.live_pages(), 0);
        Stage2::empty().destroy(&mut m);
        assert_eq!(m.live_pages(), 0);
    }

    #[test]
    fn new_root() {
        let mut mem = FakeMem::new();
        let s = Stage2::new(&mut mem).unwrap();
        assert_eq!(s.root_pa() % 8192, 0);
        assert_eq!(mem.live_pages(), 2);
        assert_eq!(s.translate(&mem, 0), None);
        assert_eq!(s.translate(&mem, IPA_LIMIT - 1), None);
        assert_eq!(s.translate(&mem, IPA_LIMIT), None);
        assert_eq!(s.translate(&mem, u64::MAX), None);
    }

    #[test]
    fn map_pages_and_translate() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        s.map(
            &mut mem,
            0x0900_0000,
            0x0900_0000,
            0x1000,
            MemType::Device,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(
            s.translate(&mem, 0x0900_0123),
            Some((0x0900_0123, MemType::Device, Access::ReadWrite))
        );
        assert_eq!(s.translate(&mem, 0x0900_1000), None);
        assert_eq!(s.translate(&mem, 0x08FF_F000), None);
        assert_eq!(level_of(&mem, &s, 0x0900_0000), Some(3));
        let d = raw_leaf(&mem, &s, 0x0900_0000);
        assert_eq!(d & 0b11, 0b11);
        assert_eq!((d >> 2) & 0xF, 0b0001);
        assert_eq!((d >> 6) & 0b11, 0b11);
        assert_eq!((d >> 8) & 0b11, 0b11);
        assert_ne!(d & AF, 0);
        assert_eq!((d >> 53) & 0b11, 0b10);
        assert_eq!(d & OA_MASK, 0x0900_0000);
        assert_eq!(mem.bbm_violations, 0);
    }

    #[test]
    fn blocks_used_when_aligned() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        // 1 GiB + 2 MiB + 4 KiB, all aligned: one L1 block, one L2 block, one page.
        let size = GIB + 2 * MIB + 0x1000;
        s.map(
            &mut mem,
            GIB,
            0x4_0000_0000,
            size,
            MemType::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(level_of(&mem, &s, GIB), Some(1));
        assert_eq!(level_of(&mem, &s, 2 * GIB), Some(2));
        assert_eq!(level_of(&mem, &s, 2 * GIB + 2 * MIB), Some(3));
        assert_eq!(s.translate(&mem, 2 * GIB + 2 * MIB + 0x1000), None);
        // Root + one L2 + one L3 table.
        assert_eq!(mem.live_pages(), 4);
        let d = raw_leaf(&mem, &s, GIB);
        assert_eq!(d & 0b11, 0b01);
        assert_eq!((d >> 2) & 0xF, 0b1111);
        assert_eq!((d >> 53) & 0b11, 0);
        for off in [0, 0x1234, GIB - 1, GIB, GIB + 2 * MIB + 0xFFF] {
            assert_eq!(
                s.translate(&mem, GIB + off),
                Some((0x4_0000_0000 + off, MemType::Normal, Access::ReadWrite))
            );
        }
    }

    #[test]
    fn misaligned_pa_uses_pages() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        // IPA 2 MiB aligned but PA only 4 KiB aligned: no blocks.
        s.map(
            &mut mem,
            4 * MIB,
            0x1000,
            4 * MIB,
            MemType::Normal,
            Access::ReadOnly,
        )
        .unwrap();
        assert_eq!(level_of(&mem, &s, 4 * MIB), Some(3));
        assert_eq!(level_of(&mem, &s, 8 * MIB - 0x1000), Some(3));
        assert_eq!(
            s.translate(&mem, 6 * MIB + 0x10),
            Some((0x1000 + 2 * MIB + 0x10, MemType::Normal, Access::ReadOnly))
        );
        let d = raw_leaf(&mem, &s, 4 * MIB);
        assert_eq!((d >> 6) & 0b11, 0b01);
    }

    #[test]
    fn split_block_on_remap_preserves_rest() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        s.map(
            &mut mem,
            0,
            0x4000_0000,
            GIB,
            MemType::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(level_of(&mem, &s, 0), Some(1));
        // Replace one page in the middle with a read-only page elsewhere.
        let page = 0x1234_5000;
        s.map(
            &mut mem,
            page,
            0x9_0000_0000,
            0x1000,
            MemType::Normal,
            Access::ReadOnly,
        )
        .unwrap();
        assert_eq!(level_of(&mem, &s, page), Some(3));
        assert_eq!(
            s.translate(&mem, page + 8),
            Some((0x9_0000_0008, MemType::Normal, Access::ReadOnly))
        );
        // Neighbours and the rest of the 1 GiB keep the old mapping.
        for ipa in [
            0u64,
            page - 0x1000,
            page + 0x1000,
            0x1220_0000,
            0x1240_0000,
            GIB - 0x1000,
        ] {
            assert_eq!(
                s.translate(&mem, ipa),
                Some((0x4000_0000 + ipa, MemType::Normal, Access::ReadWrite)),
                "ipa {ipa:#x}"
            );
        }
        // Other 2 MiB regions remain 2 MiB blocks.
        assert_eq!(level_of(&mem, &s, 0), Some(2));
        assert_eq!(level_of(&mem, &s, page + 0x1000), Some(3));
        assert_eq!(mem.bbm_violations, 0);
        assert!(mem.invalidations.contains(&(0, GIB)));
        assert!(mem.invalidations.contains(&(0x1220_0000, 2 * MIB)));
        assert!(mem.invalidations.contains(&(page, 0x1000)));
    }

    #[test]
    fn remap_block_over_tables_frees_them() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        // Page-granular mapping of a whole GiB region in two places.
        s.map(
            &mut mem,
            GIB,
            0x1000,
            4 * MIB,
            MemType::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(mem.live_pages(), 2 + 1 + 2);
        // Remap the whole GiB with one block: L2 table and two L3 tables go.
        s.map(
            &mut mem,
            GIB,
            0x8000_0000,
            GIB,
            MemType::Device,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(mem.live_pages(), 2);
        assert_eq!(level_of(&mem, &s, GIB), Some(1));
        assert_eq!(
            s.translate(&mem, GIB + 3 * MIB),
            Some((0x8000_0000 + 3 * MIB, MemType::Device, Access::ReadWrite))
        );
        assert_eq!(mem.bbm_violations, 0);
        // Identical remap is a no-op (no invalidation).
        let n = mem.invalidations.len();
        s.map(
            &mut mem,
            GIB,
            0x8000_0000,
            GIB,
            MemType::Device,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(mem.invalidations.len(), n);
    }

    #[test]
    fn unmap_splits_and_frees() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        s.map(&mut mem, 0, 0, 2 * GIB, MemType::Normal, Access::ReadWrite)
            .unwrap();
        assert_eq!(mem.live_pages(), 2);
        // Unmap a page-granular hole straddling a 2 MiB boundary.
        let hole = 2 * MIB - 0x2000;
        s.unmap(&mut mem, hole, 0x4000).unwrap();
        for ipa in [hole, hole + 0x1000, hole + 0x2000, hole + 0x3FFF] {
            assert_eq!(s.translate(&mem, ipa), None, "{ipa:#x}");
        }
        for ipa in [
            0,
            hole - 1,
            hole + 0x4000,
            4 * MIB,
            GIB - 1,
            GIB,
            2 * GIB - 1,
        ] {
            assert_eq!(
                s.translate(&mem, ipa),
                Some((ipa, MemType::Normal, Access::ReadWrite))
            );
        }
        assert_eq!(level_of(&mem, &s, GIB), Some(1));
        assert_eq!(mem.bbm_violations, 0);
        // Unmapping the rest of the first GiB frees its tables.
        s.unmap(&mut mem, 0, GIB).unwrap();
        assert_eq!(mem.live_pages(), 2);
        assert_eq!(s.translate(&mem, 0), None);
        assert_eq!(
            s.translate(&mem, GIB),
            Some((GIB, MemType::Normal, Access::ReadWrite))
        );
        // Unmapping nothing-mapped ranges is fine, as is the whole space.
        s.unmap(&mut mem, 3 * GIB, 0x1000).unwrap();
        s.unmap(&mut mem, 0, IPA_LIMIT).unwrap();
        assert_eq!(s.translate(&mem, GIB), None);
        assert_eq!(mem.live_pages(), 2);
        assert_eq!(mem.bbm_violations, 0);
    }

    #[test]
    fn boundaries() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        // Last page and last GiB of the IPA space; top of the PA space.
        s.map(
            &mut mem,
            IPA_LIMIT - GIB,
            PA_LIMIT - GIB,
            GIB,
            MemType::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(
            s.translate(&mem, IPA_LIMIT - 1),
            Some((PA_LIMIT - 1, MemType::Normal, Access::ReadWrite))
        );
        assert_eq!(level_of(&mem, &s, IPA_LIMIT - 1), Some(1));
        // Second root page (index >= 512) is used for IPA >= 512 GiB.
        assert!(index(1, IPA_LIMIT - 1) == 1023);
        s.unmap(&mut mem, IPA_LIMIT - 0x1000, 0x1000).unwrap();
        assert_eq!(s.translate(&mem, IPA_LIMIT - 1), None);
        assert!(s.translate(&mem, IPA_LIMIT - 0x1001).is_some());
        // Zero sizes are no-ops.
        s.map(&mut mem, 0, 0, 0, MemType::Normal, Access::ReadWrite)
            .unwrap();
        s.unmap(&mut mem, 0, 0).unwrap();
        s.unmap(&mut mem, IPA_LIMIT, 0).unwrap();
    }

    #[test]
    fn bad_inputs() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        let n = (MemType::Normal, Access::ReadWrite);
        let cases: [(u64, u64, u64, Stage2Error); 9] = [
            (0x800, 0, 0x1000, Stage2Error::Unaligned),
            (0, 0x800, 0x1000, Stage2Error::Unaligned),
            (0, 0, 0x800, Stage2Error::Unaligned),
            (IPA_LIMIT, 0, 0x1000, Stage2Error::OutOfRange),
            (IPA_LIMIT - 0x1000, 0, 0x2000, Stage2Error::OutOfRange),
            (0, PA_LIMIT - 0x1000, 0x2000, Stage2Error::OutOfRange),
            (0, PA_LIMIT, 0x1000, Stage2Error::OutOfRange),
            (0xFFFF_FFFF_FFFF_F000, 0, 0x2000, Stage2Error::OutOfRange),
            (0, 0xFFFF_FFFF_FFFF_F000, 0x2000, Stage2Error::OutOfRange),
        ];
        for (ipa, pa, size, err) in cases {
            assert_eq!(
                s.map(&mut mem, ipa, pa, size, n.0, n.1),
                Err(err),
                "{ipa:#x} {pa:#x} {size:#x}"
            );
        }
        assert_eq!(s.unmap(&mut mem, 0x10, 0x1000), Err(Stage2Error::Unaligned));
        assert_eq!(s.unmap(&mut mem, 0, 0x10), Err(Stage2Error::Unaligned));
        assert_eq!(
            s.unmap(&mut mem, !0xFFF, 0x1000),
            Err(Stage2Error::OutOfRange)
        );
        assert_eq!(
            s.unmap(&mut mem, 0, IPA_LIMIT + 0x1000),
            Err(Stage2Error::OutOfRange)
        );
        // Nothing was mapped or allocated.
        assert_eq!(mem.live_pages(), 2);
    }

    #[test]
    fn out_of_memory() {
        let mut mem = FakeMem::new();
        mem.fail_after = Some(0);
        assert_eq!(Stage2::new(&mut mem).err(), Some(Stage2Error::OutOfMemory));
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        s.map(&mut mem, 0, 0, 2 * MIB, MemType::Normal, Access::ReadWrite)
            .unwrap();
        mem.fail_after = Some(0);
        // Needs an L3 table: fails, old block intact.
        assert_eq!(
            s.map(
                &mut mem,
                0x1000,
                0x5000,
                0x1000,
                MemType::Normal,
                Access::ReadWrite
            ),
            Err(Stage2Error::OutOfMemory)
        );
        assert_eq!(
            s.unmap(&mut mem, 0x1000, 0x1000),
            Err(Stage2Error::OutOfMemory)
        );
        assert_eq!(
            s.translate(&mem, 0x1000),
            Some((0x1000, MemType::Normal, Access::ReadWrite))
        );
        // Block-sized operations need no allocation.
        s.map(
            &mut mem,
            0,
            0x20_0000,
            2 * MIB,
            MemType::Device,
            Access::ReadOnly,
        )
        .unwrap();
        assert_eq!(
            s.translate(&mem, 0x10),
            Some((0x20_0010, MemType::Device, Access::ReadOnly))
        );
    }

    #[test]
    fn bad_allocator() {
        struct Misaligned(FakeMem);
        impl TableMemory for Misaligned {
            fn alloc_zeroed(&mut self, pages: usize) -> Option<u64> {
                // Aligned to 4 KiB only, never to 8 KiB.
                let pa = self.0.alloc_zeroed(pages + 1)?;
                Some(if pa & PAGE_SIZE == 0 {
                    pa + PAGE_SIZE
                } else {
                    pa
                })
            }
            fn read_entry(&self, t: u64, i: usize) -> u64 {
                self.0.read_entry(t, i)
            }
            fn write_entry(&mut self, t: u64, i: usize, v: u64) {
                self.0.write_entry(t, i, v)
            }
        }
        let mut m = Misaligned(FakeMem::new());
        assert_eq!(Stage2::new(&mut m).err(), Some(Stage2Error::BadAllocation));
    }

    #[test]
    fn destroy_frees_everything() {
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        s.map(
            &mut mem,
            0x1000,
            0x1000,
            3 * GIB,
            MemType::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        s.map(
            &mut mem,
            600 * GIB + 0x5000,
            0x1000,
            0x1000,
            MemType::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert!(mem.live_pages() > 2);
        s.destroy(&mut mem);
        assert_eq!(mem.live_pages(), 0);
    }

    #[test]
    fn randomized_against_model() {
        // Compare with a page-granular model over a 16 MiB window.
        let mut mem = FakeMem::new();
        let mut s = Stage2::new(&mut mem).unwrap();
        let base = 3 * GIB - 8 * MIB;
        let pages = (16 * MIB / PAGE_SIZE) as usize;
        let mut model: Vec<Option<(u64, MemType, Access)>> = vec![None; pages];
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..300 {
            let start = rnd(pages as u64);
            let long = rnd(4) == 0;
            let len = 1 + rnd(if long {
                pages as u64 - start
            } else {
                1200.min(pages as u64 - start)
            });
            let ipa = base + start * PAGE_SIZE;
            let size = len * PAGE_SIZE;
            if rnd(3) == 0 {
                s.unmap(&mut mem, ipa, size).unwrap();
                for p in start..start + len {
                    model[p as usize] = None;
                }
            } else {
                // PA sometimes 2 MiB-congruent with the IPA to exercise blocks.
                let pa = if rnd(2) == 0 {
                    ipa + 0x10_0000_0000
                } else {
                    rnd(1 << 20) * PAGE_SIZE
                };
                let ty = if rnd(2) == 0 {
                    MemType::Normal
                } else {
                    MemType::Device
                };
                let ac = if rnd(2) == 0 {
                    Access::ReadWrite
                } else {
                    Access::ReadOnly
                };
                s.map(&mut mem, ipa, pa, size, ty, ac).unwrap();
                for (i, p) in (start..start + len).enumerate() {
                    model[p as usize] = Some((pa + i as u64 * PAGE_SIZE, ty, ac));
                }
            }
        }
        for (p, want) in model.iter().enumerate() {
            let ipa = base + p as u64 * PAGE_SIZE;
            assert_eq!(
                s.translate(&mem, ipa + 0x18),
                want.map(|(pa, t, a)| (pa + 0x18, t, a))
            );
        }
        assert_eq!(mem.bbm_violations, 0);
        s.unmap(&mut mem, 0, IPA_LIMIT).unwrap();
        assert_eq!(mem.live_pages(), 2);
    }

    #[test]
    fn registers() {
        // Cortex-A57 on QEMU: PARange = 4 (44 bits).
        let v = vtcr_el2(4);
        assert_eq!(v & 0x3F, 24);
        assert_eq!((v >> 6) & 3, 1);
        assert_eq!((v >> 8) & 3, 1);
        assert_eq!((v >> 10) & 3, 1);
        assert_eq!((v >> 12) & 3, 3);
        assert_eq!((v >> 14) & 3, 0);
        assert_eq!((v >> 16) & 7, 4);
        assert_eq!((v >> 19) & 1, 0);
        assert_ne!(v & (1 << 31), 0);
        assert_eq!(v, 0x8004_3558);
        assert_eq!((vtcr_el2(0) >> 16) & 7, 2);
        assert_eq!((vtcr_el2(1) >> 16) & 7, 2);
        assert_eq!((vtcr_el2(5) >> 16) & 7, 5);
        assert_eq!((vtcr_el2(6) >> 16) & 7, 5);
        assert_eq!((vtcr_el2(0xFF) >> 16) & 7, 5);
        assert_eq!(vttbr_el2(0x4008_2000, 3), (3 << 48) | 0x4008_2000);
        assert_eq!(vttbr_el2(0x4008_2001, 0x1FF), (0xFF << 48) | 0x4008_2000);
    }
}
