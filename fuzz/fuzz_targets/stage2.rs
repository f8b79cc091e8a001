//! Stage-2 tables under random map/unmap/translate sequences, with a table
//! memory that can run out (or hand back misaligned pages), checked against
//! a shadow model of what every IPA must translate to. Also checked:
//! break-before-make (a valid entry is never overwritten by another valid
//! entry without an invalid write and a TLB invalidation between), every
//! table reachable from the root was allocated and not freed, no table
//! leaks, no double free, and `destroy` frees everything.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use hv_arm::stage2::{Access, MemType, Stage2, Stage2Error, IPA_LIMIT, PAGE_SIZE, PA_LIMIT, TableMemory};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Mem {
    /// Allocated pages: PA -> 512 entries.
    pages: BTreeMap<u64, Box<[u64; 512]>>,
    next: u64,
    /// Allocations left before failing (None = unlimited).
    budget: Option<u32>,
    /// Hand out one misaligned root-sized allocation.
    misalign_once: bool,
    /// Slots set to invalid after holding a valid entry, awaiting a TLBI.
    pending_tlbi: BTreeSet<(u64, usize)>,
    frees: u32,
}

impl TableMemory for Mem {
    fn alloc_zeroed(&mut self, pages: usize) -> Option<u64> {
        if let Some(b) = self.budget.as_mut() {
            if *b == 0 {
                return None;
            }
            *b -= 1;
        }
        let align = pages as u64 * PAGE_SIZE;
        let mut pa = (self.next + align - 1) / align * align;
        if self.misalign_once {
            self.misalign_once = false;
            pa += if pages > 1 { PAGE_SIZE } else { PAGE_SIZE / 2 };
        }
        self.next = pa + align;
        for i in 0..pages as u64 {
            let old = self.pages.insert(pa + i * PAGE_SIZE, Box::new([0; 512]));
            assert!(old.is_none(), "allocator reuse");
        }
        Some(pa)
    }
    fn read_entry(&self, table_pa: u64, index: usize) -> u64 {
        assert!(index < 1024, "index {index}");
        let pa = table_pa + (index as u64 / 512) * PAGE_SIZE;
        let page = self.pages.get(&pa).unwrap_or_else(|| panic!("read of unallocated table {pa:#x}"));
        page[index % 512]
    }
    fn write_entry(&mut self, table_pa: u64, index: usize, value: u64) {
        assert!(index < 1024, "index {index}");
        let pa = table_pa + (index as u64 / 512) * PAGE_SIZE;
        let page = self.pages.get_mut(&pa).unwrap_or_else(|| panic!("write to unallocated table {pa:#x}"));
        let old = page[index % 512];
        if old & 1 != 0 && value & 1 != 0 && old != value {
            panic!("break-before-make violated at {pa:#x}[{index}]: {old:#x} -> {value:#x}");
        }
        if value & 1 != 0 {
            assert!(!self.pending_tlbi.contains(&(table_pa, index)), "valid entry written before the TLBI");
        }
        if old & 1 != 0 && value & 1 == 0 {
            self.pending_tlbi.insert((table_pa, index));
        }
        page[index % 512] = value;
    }
    fn free(&mut self, pa: u64, pages: usize) {
        self.frees += 1;
        for i in 0..pages as u64 {
            assert!(self.pages.remove(&(pa + i * PAGE_SIZE)).is_some(), "double/bogus free of {:#x}", pa + i * PAGE_SIZE);
        }
        self.pending_tlbi.retain(|&(t, _)| t < pa || t >= pa + pages as u64 * PAGE_SIZE);
    }
    fn tlb_invalidate(&mut self, ipa: u64, size: u64) {
        assert!(size.is_power_of_two() && ipa % size == 0, "TLBI {ipa:#x}+{size:#x}");
        self.pending_tlbi.clear();
    }
}

/// Shadow: non-overlapping intervals `start -> (end, pa, type, access)`.
#[derive(Default)]
struct Shadow(BTreeMap<u64, (u64, u64, MemType, Access)>);

impl Shadow {
    fn remove(&mut self, start: u64, end: u64) {
        let over: Vec<u64> = self.0.range(..end).filter(|(_, v)| v.0 > start).map(|(&k, _)| k).collect();
        for k in over {
            let (e, pa, ty, acc) = self.0.remove(&k).unwrap();
            if k < start {
                self.0.insert(k, (start, pa, ty, acc));
            }
            if e > end {
                self.0.insert(end, (e, pa + (end - k), ty, acc));
            }
        }
    }
    fn insert(&mut self, start: u64, end: u64, pa: u64, ty: MemType, acc: Access) {
        self.remove(start, end);
        self.0.insert(start, (end, pa, ty, acc));
    }
    fn lookup(&self, ipa: u64) -> Option<(u64, MemType, Access)> {
        let (&k, &(e, pa, ty, acc)) = self.0.range(..=ipa).next_back()?;
        (ipa < e).then_some((pa + (ipa - k), ty, acc))
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Map { ipa: u32, pages: u16, pa: u32, device: bool, ro: bool, big: u8 },
    Unmap { ipa: u32, pages: u16, big: u8 },
    Translate { ipa: u64 },
    Budget { n: Option<u8> },
    Misalign,
}

/// IPA/PA in pages, sometimes scaled to blocks so 2 MiB / 1 GiB leaves occur.
fn addr(x: u32, big: u8) -> u64 {
    match big % 4 {
        0 => u64::from(x % 0x4_0000) * PAGE_SIZE,
        1 => u64::from(x % 512) << 21,
        2 => u64::from(x % 1024) << 30,
        _ => u64::from(x) << 12 | u64::from(x & 7),
    }
}

fn size(pages: u16, big: u8) -> u64 {
    match big / 4 % 4 {
        0 => u64::from(pages % 600) * PAGE_SIZE,
        1 => u64::from(pages % 5) << 21,
        2 => u64::from(pages % 3) << 30,
        _ => u64::from(pages % 32) << 28,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut mem = Mem::default();
    let mut s2 = Stage2::new(&mut mem).unwrap();
    let mut shadow = Shadow::default();
    let mut probes: Vec<u64> = Vec::new();
    let mut steps = 0;
    while !u.is_empty() && steps < 100 {
        steps += 1;
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if ferrovisor_fuzz::debug() {
            eprintln!("{op:?}");
        }
        match op {
            Op::Map { ipa, pages, pa, device, ro, big } => {
                let (ipa, size, mut pa) = (addr(ipa, big), size(pages, big), addr(pa, big >> 4));
                // Keep big ranges mappable with 2 MiB blocks (cost, not coverage).
                if size > 16 << 20 {
                    pa = (pa & !0x1f_ffff) | (ipa & 0x1f_ffff);
                }
                let ty = if device { MemType::Device } else { MemType::Normal };
                let acc = if ro { Access::ReadOnly } else { Access::ReadWrite };
                let r = s2.map(&mut mem, ipa, pa, size, ty, acc);
                let valid = ipa % PAGE_SIZE == 0 && pa % PAGE_SIZE == 0 && size % PAGE_SIZE == 0;
                let in_range = ipa.checked_add(size).is_some_and(|e| e <= IPA_LIMIT)
                    && pa.checked_add(size).is_some_and(|e| e <= PA_LIMIT);
                match r {
                    Ok(()) => {
                        assert!(valid && in_range, "map({ipa:#x}, {pa:#x}, {size:#x}) accepted");
                        if size > 0 {
                            shadow.insert(ipa, ipa + size, pa, ty, acc);
                        }
                    }
                    Err(Stage2Error::Unaligned) => assert!(!valid),
                    Err(Stage2Error::OutOfRange) => assert!(!in_range),
                    Err(Stage2Error::OutOfMemory | Stage2Error::BadAllocation) => {
                        // Every page is old or new; then finishing the job must work.
                        for p in sample(ipa, size) {
                            let got = s2.translate(&mem, p);
                            let new = Some((pa + (p - ipa), ty, acc));
                            assert!(got == shadow.lookup(p) || got == new, "torn map at {p:#x}: {got:?}");
                        }
                        mem.budget = None;
                        mem.misalign_once = false;
                        s2.map(&mut mem, ipa, pa, size, ty, acc).expect("map retried with memory");
                        shadow.insert(ipa, ipa + size, pa, ty, acc);
                    }
                }
                probes.extend([ipa, ipa.wrapping_add(size), ipa.wrapping_add(size).wrapping_sub(PAGE_SIZE)]);
            }
            Op::Unmap { ipa, pages, big } => {
                let (ipa, size) = (addr(ipa, big), size(pages, big));
                match s2.unmap(&mut mem, ipa, size) {
                    Ok(()) => {
                        if size > 0 {
                            shadow.remove(ipa, ipa + size);
                        }
                    }
                    Err(Stage2Error::Unaligned | Stage2Error::OutOfRange) => {}
                    Err(Stage2Error::OutOfMemory | Stage2Error::BadAllocation) => {
                        for p in sample(ipa, size) {
                            let got = s2.translate(&mem, p);
                            assert!(got == shadow.lookup(p) || got.is_none(), "torn unmap at {p:#x}: {got:?}");
                        }
                        mem.budget = None;
                        mem.misalign_once = false;
                        s2.unmap(&mut mem, ipa, size).expect("unmap retried with memory");
                        shadow.remove(ipa, ipa + size);
                    }
                }
                probes.extend([ipa, ipa.wrapping_add(size), ipa.wrapping_sub(PAGE_SIZE)]);
            }
            Op::Translate { ipa } => probes.push(ipa % (IPA_LIMIT * 2)),
            Op::Budget { n } => mem.budget = n.map(|n| u32::from(n % 8)),
            Op::Misalign => mem.misalign_once = true,
        }
        // Check the shadow at interval edges and the probes.
        let mut pts: Vec<u64> = probes.clone();
        for (&k, &(e, ..)) in &shadow.0 {
            pts.extend([k, k + 0xfff, e - 1, e, k.wrapping_sub(1)]);
        }
        for p in pts {
            let got = s2.translate(&mem, p);
            let want = if p < IPA_LIMIT { shadow.lookup(p) } else { None };
            assert_eq!(got, want, "translate({p:#x})");
        }
        check_tables(&mem, &s2);
    }
    mem.budget = None;
    s2.destroy(&mut mem);
    assert!(mem.pages.is_empty(), "{} table pages leaked", mem.pages.len());
});

/// A few IPAs of a range: its pages at both ends and some in between.
fn sample(ipa: u64, size: u64) -> Vec<u64> {
    if size == 0 || ipa.checked_add(size).is_none_or(|e| e > IPA_LIMIT) || ipa % PAGE_SIZE != 0 {
        return Vec::new();
    }
    let pages = size / PAGE_SIZE;
    let mut v: Vec<u64> = (0..pages.min(8)).map(|i| ipa + i * PAGE_SIZE).collect();
    v.extend((0..8).map(|i| ipa + (pages - 1 - (pages - 1) * i / 8) * PAGE_SIZE));
    v
}

/// Tables reachable from the root are exactly the allocated pages.
fn check_tables(mem: &Mem, s2: &Stage2) {
    let mut reach = BTreeSet::new();
    reach.insert(s2.root_pa());
    reach.insert(s2.root_pa() + PAGE_SIZE);
    let mut todo: Vec<(u64, usize, u32)> = vec![(s2.root_pa(), 1024, 1)];
    while let Some((t, n, level)) = todo.pop() {
        for i in 0..n {
            let e = mem.read_entry(t, i);
            if e & 3 == 3 && level < 3 {
                let next = e & 0x0000_FFFF_FFFF_F000;
                assert!(mem.pages.contains_key(&next), "L{level} entry points at freed table {next:#x}");
                assert!(reach.insert(next), "table {next:#x} linked twice");
                todo.push((next, 512, level + 1));
            }
        }
    }
    let alloc: BTreeSet<u64> = mem.pages.keys().copied().collect();
    assert_eq!(alloc, reach, "allocated tables differ from reachable ones (leak)");
}
