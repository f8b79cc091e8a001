//! Grant tables v1 driven by random operation sequences: three domains
//! grant, revoke and scribble on their own table frames (racing every
//! compare-and-swap if the fuzzer wants), map and unmap each other's and
//! their own grants, copy through grants, grow and map table frames, run
//! out of memory, and die. After every step:
//! - the pins recorded in every table equal the live mappings in every
//!   maptrack (per entry: writers, readers, one grantee);
//! - each mapper's stage-2 holds exactly its live mappings;
//! - table frames sit at distinct GFNs and `frame_at_gfn` agrees;
//! and at the end tearing everything down leaves no pin and no mapping.
#![no_main]

use std::cell::Cell;
use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use hv_core::grant::*;
use hv_core::guest::fake::FakeRam;
use hv_core::guest::{GuestFault, GuestMemory};
use libfuzzer_sys::fuzz_target;
use xen_abi::grant_table::*;
use xen_abi::xen::{DomId, DOMID_SELF};

const RAM_BASE: u64 = 0x4000_0000;
const RAM_PAGES: u64 = 8;
const RAM_GFN: u64 = RAM_BASE >> 12;
const HOST_GFN: u64 = 0x9_0000;

/// Table frames: a growable FakeRam at offset 0; the granter may flip bits
/// of the entry under each of our CASes; growing may fail.
struct Frames {
    ram: FakeRam,
    fail_grow: Cell<bool>,
    flip: Cell<u32>,
}

impl GuestMemory for Frames {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.ram.read(ipa, buf)
    }
    fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
        self.ram.write(ipa, buf)
    }
    fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
        let f = self.flip.get();
        if f != 0 {
            let cur = self.ram.read_u32(ipa)?;
            self.ram.write_u32(ipa, cur ^ f)?;
        }
        self.ram.cmpxchg_u32(ipa, old, new)
    }
    fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault> {
        self.ram.fetch_or_u64(ipa, bits)
    }
    fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault> {
        self.ram.fetch_and_u64(ipa, mask)
    }
}

impl TableFrames for Frames {
    fn grow(&mut self, nr: u32) -> Result<(), OutOfMemory> {
        if self.fail_grow.get() {
            return Err(OutOfMemory);
        }
        self.ram.bytes.borrow_mut().resize(nr as usize * 4096, 0);
        Ok(())
    }
}

struct Dom {
    ram: FakeRam,
    gs: GrantState<Frames>,
    /// This domain's stage-2 as a mapper: host_gfn -> (pa, readonly).
    s2: BTreeMap<u64, (u64, bool)>,
    fail_map: bool,
}

fn new_dom(id: DomId, limits: GrantLimits) -> Dom {
    let frames = Frames { ram: FakeRam::new(0, 0), fail_grow: Cell::new(false), flip: Cell::new(0) };
    Dom {
        ram: FakeRam::new(RAM_BASE, (RAM_PAGES * 4096) as usize),
        gs: GrantState::new(id, frames, limits).unwrap(),
        s2: BTreeMap::new(),
        fail_map: false,
    }
}

fn pa_of(dom: DomId, gfn: u64) -> u64 {
    ((u64::from(dom) + 1) << 36) | (gfn << 12)
}

/// The mapper's side of a map/unmap: what it knows about RAM, its stage-2.
struct Mapper<'a> {
    s2: &'a mut BTreeMap<u64, (u64, bool)>,
    fail_map: bool,
}

impl GrantMapper for Mapper<'_> {
    fn granter_frame(&mut self, granter: DomId, gfn: u64, _ro: bool) -> Result<u64, i16> {
        if (RAM_GFN..RAM_GFN + RAM_PAGES).contains(&gfn) {
            Ok(pa_of(granter, gfn))
        } else {
            Err(GNTST_bad_page)
        }
    }
    fn map_host(&mut self, host_gfn: u64, pa: u64, readonly: bool) -> Result<(), i16> {
        if self.fail_map || self.s2.contains_key(&host_gfn) {
            return Err(GNTST_general_error);
        }
        self.s2.insert(host_gfn, (pa, readonly));
        Ok(())
    }
    fn unmap_host(&mut self, host_gfn: u64, pa: u64) -> Result<(), i16> {
        match self.s2.get(&host_gfn) {
            Some(&(p, _)) if p == pa => {
                self.s2.remove(&host_gfn);
                Ok(())
            }
            _ => Err(GNTST_general_error),
        }
    }
}

struct World {
    doms: BTreeMap<DomId, Dom>,
}

impl CopyEnv for World {
    type Frames = Frames;
    fn with_table<R>(&mut self, dom: DomId, f: impl FnOnce(&mut GrantTable<Frames>) -> R) -> Option<R> {
        self.doms.get_mut(&dom).map(|d| f(&mut d.gs.table))
    }
    fn copy(&mut self, sd: DomId, src: u64, dd: DomId, dst: u64, len: usize) -> Result<(), GuestFault> {
        let s = &self.doms.get(&sd).ok_or(GuestFault::Unmapped(src))?.ram;
        let d = &self.doms.get(&dd).ok_or(GuestFault::Unmapped(dst))?.ram;
        bounce_copy(s, src, d, dst, len)
    }
}

impl World {
    /// Run `f` with the mapper's maptrack and stage-2 and the granter's table
    /// (the two may be the same domain).
    fn pair<R>(
        &mut self,
        mapper: DomId,
        granter: Option<DomId>,
        f: impl FnOnce(&mut Maptrack, Option<&mut GrantTable<Frames>>, &mut Mapper<'_>) -> R,
    ) -> R {
        match granter {
            Some(g) if g == mapper => {
                let d = self.doms.get_mut(&mapper).unwrap();
                let (mt, t) = d.gs.split();
                let mut m = Mapper { s2: &mut d.s2, fail_map: d.fail_map };
                f(mt, Some(t), &mut m)
            }
            Some(g) if self.doms.contains_key(&g) => {
                let mut a = self.doms.remove(&mapper).unwrap();
                let b = self.doms.get_mut(&g).unwrap();
                let mut m = Mapper { s2: &mut a.s2, fail_map: a.fail_map };
                let r = f(&mut a.gs.maptrack, Some(&mut b.gs.table), &mut m);
                self.doms.insert(mapper, a);
                r
            }
            _ => {
                let a = self.doms.get_mut(&mapper).unwrap();
                let mut m = Mapper { s2: &mut a.s2, fail_map: a.fail_map };
                f(&mut a.gs.maptrack, None, &mut m)
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The granter fills entry `gref` (Linux's order: frame, domid, flags).
    Grant { g: u8, gref: u16, to: u8, page: u8, readonly: bool },
    /// gnttab_end_foreign_access_ref: clear flags unless in use.
    EndAccess { g: u8, gref: u16 },
    /// The granter writes anything into an entry.
    Scribble { g: u8, gref: u16, raw: u64 },
    Map { m: u8, g: u8, gref: u16, host: u8, flags: u32, dom_self: bool },
    Unmap { m: u8, pick: u16, wrong_addr: bool, dev_bus_addr: Option<u64> },
    /// Unmap a handle that may be anything.
    UnmapRaw { m: u8, handle: u32, host: u8 },
    Copy { m: u8, g: u8, gref: u16, to_gref: bool, soff: u16, doff: u16, len: u16, self_gfn: u8, both: bool },
    CopyRaw { m: u8, src: [u64; 2], dst: [u64; 2], len: u16, flags: u16 },
    SetupTable { g: u8, nr: u8 },
    MapFrame { g: u8, idx: u16, gfn: u8 },
    FrameUnmapped { g: u8, gfn: u8 },
    SetVersion { g: u8, v: u32 },
    FailGrow { g: u8, on: bool },
    FailMap { m: u8, on: bool },
    Flip { g: u8, bits: u32 },
    /// The mapper gives up every mapping of one granter (force unmap).
    Release { m: u8, g: u8 },
    /// Domain `d` dies and is re-created with the same id.
    Die { d: u8 },
    CacheFlush { raw: [u64; 2] },
}

const IDS: [DomId; 3] = [0, 1, 2];

fn dom_id(x: u8) -> DomId {
    IDS[usize::from(x) % IDS.len()]
}

fn gref(g: u16) -> u32 {
    match g {
        0xFFF0.. => u32::MAX - u32::from(g - 0xFFF0),
        0x8000.. => u32::from(g),
        _ => u32::from(g % 40),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((mf, mm)) = <(u8, u8)>::arbitrary(&mut u) else { return };
    let limits = GrantLimits { max_frames: 1 + u32::from(mf % 3), max_maptrack: 1 + u32::from(mm % 32) };
    if ferrovisor_fuzz::debug() {
        eprintln!("{limits:?}");
    }
    let mut w = World { doms: IDS.iter().map(|&i| (i, new_dom(i, limits))).collect() };
    // (mapper, handle, host_gfn) of mappings we made and believe live.
    let mut live: Vec<(DomId, u32, u64)> = Vec::new();
    let mut steps = 0;
    while !u.is_empty() && steps < 300 {
        steps += 1;
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if ferrovisor_fuzz::debug() {
            eprintln!("{op:?}");
        }
        step(&mut w, &mut live, op);
        check(&w, &live);
    }
    teardown(&mut w);
});

fn step(w: &mut World, live: &mut Vec<(DomId, u32, u64)>, op: Op) {
    match op {
        Op::Grant { g, gref: r, to, page, readonly } => {
            let t = &w.doms[&dom_id(g)].gs.table;
            let off = u64::from(gref(r)) * 8;
            let gfn = if page < 200 { RAM_GFN + u64::from(page) % RAM_PAGES } else { u64::from(page) };
            let to = if to == 255 { DOMID_SELF } else { dom_id(to) };
            let _ = t.frames().write_u32(off + 4, gfn as u32);
            let _ = t.frames().write(off + 2, &to.to_le_bytes());
            let flags = GTF_permit_access | if readonly { GTF_readonly } else { 0 };
            let _ = t.frames().write(off, &flags.to_le_bytes());
        }
        Op::EndAccess { g, gref: r } => {
            let t = &w.doms[&dom_id(g)].gs.table;
            let off = u64::from(gref(r)) * 8;
            if let Ok(cur) = t.frames().read_u32(off) {
                if cur as u16 & (GTF_reading | GTF_writing) == 0 {
                    let _ = t.frames().cmpxchg_u32(off, cur, cur & 0xffff_0000);
                }
            }
        }
        Op::Scribble { g, gref: r, raw } => {
            let t = &w.doms[&dom_id(g)].gs.table;
            let _ = t.frames().write_u64(u64::from(gref(r)) * 8, raw);
        }
        Op::Map { m, g, gref: r, host, flags, dom_self } => {
            let (m, g) = (dom_id(m), dom_id(g));
            let host_gfn = HOST_GFN + u64::from(host % 64);
            let flags = if flags & 0x100 != 0 { flags } else { GNTMAP_host_map | (flags & GNTMAP_readonly) };
            let mut op = GnttabMapGrantRef {
                host_addr: host_gfn << 12 | u64::from(host >> 6),
                flags,
                ref_: gref(r),
                dom: if dom_self { DOMID_SELF } else { g },
                ..Default::default()
            };
            let granter = (!dom_self).then_some(g);
            // The bits are set when a pin needs more than the existing ones
            // (the granter may have scribbled them away since: its problem).
            let before = w.doms[&g].gs.table.pin_state(gref(r));
            w.pair(m, granter, |mt, t, b| map_grant_ref(m, mt, t, &mut op, b));
            if op.status == GNTST_okay {
                assert!(!dom_self, "DOMID_SELF names no granter here");
                let mt = &w.doms[&m].gs.maptrack;
                let mp = *mt.get(op.handle).expect("handle of a fresh mapping");
                assert_eq!((mp.granter, mp.gref, mp.host_gfn, mp.pa), (g, gref(r), host_gfn, op.dev_bus_addr));
                assert_eq!(mp.readonly, flags & GNTMAP_readonly != 0);
                let e = w.doms[&g].gs.table.read_entry(gref(r)).unwrap();
                if before.is_none() {
                    assert_ne!(e.flags & GTF_reading, 0, "mapped entry without GTF_reading");
                }
                if !mp.readonly && before.is_none_or(|b| b.writers == 0) {
                    assert_ne!(e.flags & GTF_writing, 0, "writable map without GTF_writing");
                }
                assert!(live.iter().all(|l| (l.0, l.1) != (m, op.handle)), "handle handed out twice");
                live.push((m, op.handle, host_gfn));
            }
        }
        Op::Unmap { m, pick, wrong_addr, dev_bus_addr } => {
            let m = dom_id(m);
            let mine: Vec<usize> = (0..live.len()).filter(|&i| live[i].0 == m).collect();
            if mine.is_empty() {
                return;
            }
            let idx = mine[usize::from(pick) % mine.len()];
            let (_, h, host_gfn) = live[idx];
            let target = w.doms[&m].gs.maptrack.target(h);
            let granter = match target {
                HandleTarget::Granter(g) => Some(g),
                HandleTarget::Orphaned => None,
                HandleTarget::Invalid => panic!("live handle {h} of dom{m} invalid"),
            };
            let pa = w.doms[&m].gs.maptrack.get(h).map(|mp| mp.pa);
            let host_addr = if wrong_addr { (host_gfn + 1) << 12 } else { host_gfn << 12 };
            let mut op = GnttabUnmapGrantRef {
                host_addr,
                dev_bus_addr: dev_bus_addr.unwrap_or(0),
                handle: h,
                ..Default::default()
            };
            w.pair(m, granter, |mt, t, b| unmap_grant_ref(mt, t, &mut op, b));
            let right = !wrong_addr && dev_bus_addr.is_none_or(|a| a == 0 || Some(a) == pa);
            if right {
                assert_eq!(op.status, GNTST_okay, "unmap of a live handle failed");
            }
            if op.status == GNTST_okay {
                assert!(right || granter.is_none(), "unmap with wrong arguments succeeded");
                live.swap_remove(idx);
                assert_eq!(w.doms[&m].gs.maptrack.target(h), HandleTarget::Invalid);
            }
        }
        Op::UnmapRaw { m, handle, host } => {
            let m = dom_id(m);
            let handle = if handle & 0x8000_0000 != 0 { handle } else { handle % 40 };
            // Only handles we do not track: the tracked ones go through Unmap.
            if live.iter().any(|l| (l.0, l.1) == (m, handle)) {
                return;
            }
            let mut op = GnttabUnmapGrantRef {
                host_addr: (HOST_GFN + u64::from(host % 64)) << 12,
                handle,
                ..Default::default()
            };
            let granter = match w.doms[&m].gs.maptrack.target(handle) {
                HandleTarget::Granter(g) => Some(g),
                _ => None,
            };
            w.pair(m, granter, |mt, t, b| unmap_grant_ref(mt, t, &mut op, b));
            assert_ne!(op.status, GNTST_okay, "unmap of an untracked handle {handle} succeeded");
        }
        Op::Copy { m, g, gref: r, to_gref, soff, doff, len, self_gfn, both } => {
            let (m, g) = (dom_id(m), dom_id(g));
            let gptr = GnttabCopyPtr {
                u: GnttabCopyPtrU::from_gref(gref(r)),
                domid: if g == m && self_gfn & 1 != 0 { DOMID_SELF } else { g },
                offset: soff % 4200,
                ..Default::default()
            };
            let fptr = GnttabCopyPtr {
                u: GnttabCopyPtrU::from_gmfn(RAM_GFN + u64::from(self_gfn) % (RAM_PAGES + 2)),
                domid: DOMID_SELF,
                offset: doff % 4200,
                ..Default::default()
            };
            let (source, dest, flags) = match (to_gref, both) {
                (_, true) => (gptr, gptr, GNTCOPY_source_gref | GNTCOPY_dest_gref),
                (false, _) => (gptr, fptr, GNTCOPY_source_gref),
                (true, _) => (fptr, gptr, GNTCOPY_dest_gref),
            };
            let mut op = GnttabCopy { source, dest, len: len % 4200, flags, ..Default::default() };
            grant_copy(w, m, &mut op);
        }
        Op::CopyRaw { m, src, dst, len, flags } => {
            let ptr = |r: [u64; 2]| GnttabCopyPtr {
                u: GnttabCopyPtrU(r[0]),
                domid: r[1] as u16,
                offset: (r[1] >> 16) as u16,
                _pad0: (r[1] >> 32) as u32,
            };
            let mut op = GnttabCopy { source: ptr(src), dest: ptr(dst), len, flags, ..Default::default() };
            grant_copy(w, dom_id(m), &mut op);
        }
        Op::SetupTable { g, nr } => {
            let t = &mut w.doms.get_mut(&dom_id(g)).unwrap().gs.table;
            let before = t.nr_frames();
            let st = t.setup_table(u32::from(nr % 8));
            if st == GNTST_okay {
                assert!(t.nr_frames() >= u32::from(nr % 8));
            } else {
                assert_eq!(t.nr_frames(), before);
            }
            let mut q = GnttabQuerySize::default();
            t.query_size(&mut q);
            assert_eq!((q.nr_frames, q.max_nr_frames), (t.nr_frames(), t.max_frames()));
            assert!(t.nr_frames() <= t.max_frames());
        }
        Op::MapFrame { g, idx, gfn } => {
            let t = &mut w.doms.get_mut(&dom_id(g)).unwrap().gs.table;
            let idx = if idx & 0x8000 != 0 { u64::from(idx) << 20 } else { u64::from(idx % 6) };
            let gfn = if gfn == 255 { INVALID_GFN } else { 0x8_0000 + u64::from(gfn % 8) };
            if let Ok(old) = t.map_frame(idx, gfn) {
                assert_eq!(t.frame_gfn(idx as u32), gfn);
                assert_ne!(old, Some(gfn));
            }
        }
        Op::FrameUnmapped { g, gfn } => {
            let t = &mut w.doms.get_mut(&dom_id(g)).unwrap().gs.table;
            let gfn = if gfn == 255 { INVALID_GFN } else { 0x8_0000 + u64::from(gfn % 8) };
            t.frame_unmapped(gfn);
            assert_eq!(t.frame_at_gfn(gfn), None);
        }
        Op::SetVersion { g, v } => {
            let t = &mut w.doms.get_mut(&dom_id(g)).unwrap().gs.table;
            assert_eq!(t.set_version(v).is_ok(), v == 1);
            assert_eq!(t.version(), 1);
        }
        Op::FailGrow { g, on } => w.doms[&dom_id(g)].gs.table.frames().fail_grow.set(on),
        Op::FailMap { m, on } => w.doms.get_mut(&dom_id(m)).unwrap().fail_map = on,
        Op::Flip { g, bits } => w.doms[&dom_id(g)].gs.table.frames().flip.set(bits),
        Op::Release { m, g } => {
            let (m, g) = (dom_id(m), dom_id(g));
            let released = w.pair(m, Some(g), |mt, t, _| release_mappings_of(mt, t.unwrap()));
            let d = w.doms.get_mut(&m).unwrap();
            for (h, mp) in released {
                assert_eq!(mp.granter, g);
                assert_eq!(d.s2.remove(&mp.host_gfn), Some((mp.pa, mp.readonly)), "released mapping not in stage-2");
                let before = live.len();
                live.retain(|l| (l.0, l.1) != (m, h));
                assert_eq!(live.len() + 1, before, "released handle {h} was not live");
            }
        }
        Op::Die { d } => {
            let d = dom_id(d);
            // (1) As a mapper: release what it holds of every granter.
            let granters = w.doms[&d].gs.maptrack.granters();
            for g in granters {
                let released = w.pair(d, Some(g), |mt, t, _| release_mappings_of(mt, t.unwrap()));
                for (h, mp) in released {
                    w.doms.get_mut(&d).unwrap().s2.remove(&mp.host_gfn);
                    live.retain(|l| (l.0, l.1) != (d, h));
                }
            }
            // Orphans it still held go with it.
            live.retain(|l| l.0 != d);
            // (2) As a granter: every other mapper loses its mappings now.
            for (&m, dm) in w.doms.iter_mut() {
                if m == d {
                    continue;
                }
                for (h, mp) in dm.gs.maptrack.revoke_granter(d) {
                    assert_eq!(dm.s2.remove(&mp.host_gfn), Some((mp.pa, mp.readonly)), "revoked mapping not in stage-2");
                    assert_eq!(dm.gs.maptrack.target(h), HandleTarget::Orphaned);
                }
            }
            // (3) A new domain with the same id.
            let limits = GrantLimits {
                max_frames: w.doms[&d].gs.table.max_frames(),
                max_maptrack: w.doms[&d].gs.maptrack.max_entries(),
            };
            w.doms.insert(d, new_dom(d, limits));
        }
        Op::CacheFlush { raw } => {
            let op = GnttabCacheFlush {
                a: GnttabCacheFlushA(raw[0]),
                offset: raw[1] as u16,
                length: (raw[1] >> 16) as u16,
                op: (raw[1] >> 32) as u32,
            };
            if let Ok(CacheFlush::Flush { offset, length, .. }) = cache_flush_check(&op) {
                assert!(u32::from(offset) + u32::from(length) <= 4096);
            }
            let _ = check_map_flags(raw[0] as u32);
        }
    }
}

/// Pins equal the live mappings; stage-2s equal the live mappings; table
/// frames at distinct GFNs.
fn check(w: &World, live: &[(DomId, u32, u64)]) {
    let mut expect: BTreeMap<(DomId, u32), (u8, u8, DomId)> = BTreeMap::new();
    let mut nr_live = 0;
    for (&id, d) in &w.doms {
        let mut s2 = BTreeMap::new();
        for (h, m) in d.gs.maptrack.iter() {
            nr_live += 1;
            assert!(live.contains(&(id, h, m.host_gfn)), "dom{id} handle {h} not made by us");
            let e = expect.entry((m.granter, m.gref)).or_insert((0, 0, id));
            assert_eq!(e.2, id, "two grantees pin dom{} gref {}", m.granter, m.gref);
            if m.readonly {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
            s2.insert(m.host_gfn, (m.pa, m.readonly));
        }
        assert_eq!(s2, d.s2, "dom{id}'s stage-2 differs from its live mappings");
        let orphans = d.gs.maptrack.orphans().count();
        assert_eq!(d.gs.maptrack.in_use() as usize, d.gs.maptrack.iter().count() + orphans);
        let t = &d.gs.table;
        for i in 0..t.nr_frames() {
            let g = t.frame_gfn(i);
            if g != INVALID_GFN {
                assert_eq!(t.frame_at_gfn(g), Some(i), "dom{id} frame {i} at gfn {g:#x}");
            }
        }
    }
    assert_eq!(nr_live, live.iter().filter(|l| matches!(w.doms[&l.0].gs.maptrack.target(l.1), HandleTarget::Granter(_))).count());
    for (&id, d) in &w.doms {
        let t = &d.gs.table;
        assert_eq!(t.pinned_count(), expect.keys().filter(|k| k.0 == id).count(), "dom{id} pinned count");
        for (&(g, r), &(wr, rd, grantee)) in &expect {
            if g == id {
                let st = t.pin_state(r).expect("mapped entry not pinned");
                assert_eq!((st.writers, st.readers, st.grantee), (wr, rd, grantee), "dom{g} gref {r}");
            }
        }
    }
}

/// Every mapper lets go of everything: no pin and no stage-2 entry remains.
fn teardown(w: &mut World) {
    for m in IDS {
        for g in w.doms[&m].gs.maptrack.granters() {
            let released = w.pair(m, Some(g), |mt, t, _| release_mappings_of(mt, t.unwrap()));
            let d = w.doms.get_mut(&m).unwrap();
            for (_, mp) in released {
                assert!(d.s2.remove(&mp.host_gfn).is_some());
            }
        }
        let orphans: Vec<u32> = w.doms[&m].gs.maptrack.orphans().map(|(h, _)| h).collect();
        for h in orphans {
            let mut op = GnttabUnmapGrantRef { host_addr: 0x1000, handle: h, ..Default::default() };
            w.pair(m, None, |mt, t, b| unmap_grant_ref(mt, t, &mut op, b));
            assert_eq!(op.status, GNTST_okay, "unmap of an orphan");
        }
    }
    for (&id, d) in &w.doms {
        assert!(d.s2.is_empty(), "dom{id} stage-2 not empty");
        assert_eq!(d.gs.table.pinned_count(), 0, "dom{id} still pinned");
        assert_eq!(d.gs.maptrack.in_use(), 0, "dom{id} maptrack in use");
    }
}
