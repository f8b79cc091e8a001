//! Host tests: guests are played the way Linux drives grant tables
//! (`drivers/xen/grant-table.c` v1 ops, gntdev/gntalloc, blkback/netback).

use core::cell::Cell;
use std::collections::BTreeMap;
use std::vec::Vec;

use xen_abi::errno::Errno;
use xen_abi::grant_table::*;
use xen_abi::xen::{DomId, DOMID_SELF};

use super::*;
use crate::guest::fake::FakeRam;
use crate::guest::{GuestFault, GuestMemory};

// ---------------------------------------------------------------------------
// Test doubles

/// Table frames backed by a growable FakeRam at offset 0, optionally with a
/// hostile guest that changes the entry word before each of our CASes.
struct Frames {
    ram: FakeRam,
    fail_grow: Cell<bool>,
    /// CASes still to sabotage.
    hostile: Cell<u32>,
    cas_calls: Cell<u32>,
}

impl Frames {
    fn new() -> Self {
        Frames {
            ram: FakeRam::new(0, 0),
            fail_grow: Cell::new(false),
            hostile: Cell::new(0),
            cas_calls: Cell::new(0),
        }
    }
}

impl GuestMemory for Frames {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.ram.read(ipa, buf)
    }
    fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
        self.ram.write(ipa, buf)
    }
    fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
        self.cas_calls.set(self.cas_calls.get() + 1);
        if self.hostile.get() > 0 {
            self.hostile.set(self.hostile.get() - 1);
            // The granter flips GTF_PAT behind our back.
            let cur = self.ram.read_u32(ipa)?;
            self.ram.write_u32(ipa, cur ^ u32::from(GTF_PAT))?;
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

const RAM_BASE: u64 = 0x4000_0000;
const RAM_PAGES: u64 = 16;
const RAM_GFN: u64 = RAM_BASE >> 12;

struct Dom {
    id: DomId,
    ram: FakeRam,
    gs: GrantState<Frames>,
}

fn dom(id: DomId) -> Dom {
    dom_with(id, GrantLimits::default())
}

fn dom_with(id: DomId, limits: GrantLimits) -> Dom {
    Dom {
        id,
        ram: FakeRam::new(RAM_BASE, (RAM_PAGES * 4096) as usize),
        gs: GrantState::new(id, Frames::new(), limits).unwrap(),
    }
}

/// Host PA of a domain's RAM page (fake).
fn pa_of(dom: DomId, gfn: u64) -> u64 {
    ((u64::from(dom) + 1) << 36) | (gfn << 12)
}

/// A mapper's stage-2 plus what it knows about every domain's RAM.
#[derive(Default)]
struct Stage2 {
    maps: BTreeMap<u64, (u64, bool)>,
    fail_map: bool,
    resolves: u32,
    /// Apply the default policy (SILO); most tests map between two domUs
    /// to exercise the grant logic alone, with no policy.
    silo: bool,
}

impl GrantMapper for Stage2 {
    fn granter_frame(&mut self, granter: DomId, gfn: u64, _ro: bool) -> Result<u64, i16> {
        self.resolves += 1;
        if (RAM_GFN..RAM_GFN + RAM_PAGES).contains(&gfn) {
            Ok(pa_of(granter, gfn))
        } else {
            Err(GNTST_bad_page)
        }
    }
    fn map_host(&mut self, host_gfn: u64, pa: u64, readonly: bool) -> Result<(), i16> {
        if self.fail_map || self.maps.contains_key(&host_gfn) {
            return Err(GNTST_general_error);
        }
        self.maps.insert(host_gfn, (pa, readonly));
        Ok(())
    }
    fn unmap_host(&mut self, host_gfn: u64, pa: u64) -> Result<(), i16> {
        match self.maps.get(&host_gfn) {
            Some(&(p, _)) if p == pa => {
                self.maps.remove(&host_gfn);
                Ok(())
            }
            _ => Err(GNTST_general_error),
        }
    }
    fn may_map(&self, mapper: DomId, granter: DomId) -> bool {
        !self.silo || hv_core_silo(mapper, mapper, granter)
    }
}

fn hv_core_silo(current: DomId, a: DomId, b: DomId) -> bool {
    crate::xsm::silo_allows(current, a, b)
}

// --- the guest side, as Linux does it --------------------------------------

/// `gnttab_grant_foreign_access_ref` (v1): frame and domid, barrier, flags.
fn grant(t: &GrantTable<Frames>, gref: u32, to: DomId, gfn: u64, readonly: bool) {
    let a = u64::from(gref) * 8;
    let f = t.frames();
    f.write_u32(a + 4, gfn as u32).unwrap();
    f.write(a + 2, &to.to_le_bytes()).unwrap();
    let flags = GTF_permit_access | if readonly { GTF_readonly } else { 0 };
    f.write(a, &flags.to_le_bytes()).unwrap();
}

/// `gnttab_end_foreign_access_ref` (v1): clear flags only if not in use.
fn end_access(t: &GrantTable<Frames>, gref: u32) -> bool {
    let a = u64::from(gref) * 8;
    let f = t.frames();
    let mut cur = f.read_u32(a).unwrap();
    loop {
        if cur as u16 & (GTF_reading | GTF_writing) != 0 {
            return false;
        }
        let found = f.cmpxchg_u32(a, cur, cur & 0xffff_0000).unwrap();
        if found == cur {
            return true;
        }
        cur = found;
    }
}

fn flags(t: &GrantTable<Frames>, gref: u32) -> u16 {
    t.read_entry(gref).unwrap().flags
}

fn set_flags(t: &GrantTable<Frames>, gref: u32, flags: u16) {
    t.frames()
        .write(u64::from(gref) * 8, &flags.to_le_bytes())
        .unwrap();
}

fn map_op(granter: DomId, gref: u32, host_gfn: u64, readonly: bool) -> GnttabMapGrantRef {
    GnttabMapGrantRef {
        host_addr: host_gfn << 12,
        flags: GNTMAP_host_map | if readonly { GNTMAP_readonly } else { 0 },
        ref_: gref,
        dom: granter,
        ..Default::default()
    }
}

/// Map across two distinct domains.
fn map(m: &mut Dom, g: &mut Dom, s2: &mut Stage2, op: &mut GnttabMapGrantRef) -> i16 {
    map_grant_ref(m.id, &mut m.gs.maptrack, Some(&mut g.gs.table), op, s2);
    op.status
}

fn unmap(m: &mut Dom, g: &mut Dom, s2: &mut Stage2, handle: u32, host_gfn: u64) -> i16 {
    let mut op = GnttabUnmapGrantRef {
        host_addr: host_gfn << 12,
        handle,
        ..Default::default()
    };
    unmap_grant_ref(&mut m.gs.maptrack, Some(&mut g.gs.table), &mut op, s2);
    op.status
}

const HOST: u64 = 0x9_0000; // mapper GFNs for foreign pages (ballooned-out area)

// ---------------------------------------------------------------------------
// Map / unmap

#[test]
fn grant_map_unmap_round_trip_like_linux() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 8, 1, RAM_GFN + 3, false);
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access);

    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_okay);
    assert_eq!(op.handle, 0);
    assert_eq!(op.dev_bus_addr, pa_of(2, RAM_GFN + 3));
    assert_eq!(s2.maps.get(&HOST), Some(&(pa_of(2, RAM_GFN + 3), false)));
    assert_eq!(
        flags(&d2.gs.table, 8),
        GTF_permit_access | GTF_reading | GTF_writing
    );
    assert_eq!(d1.gs.maptrack.target(0), HandleTarget::Granter(2));
    let e = d2.gs.table.read_entry(8).unwrap();
    assert_eq!((e.domid, e.frame), (1, (RAM_GFN + 3) as u32));

    // The granter cannot revoke while mapped.
    assert!(!end_access(&d2.gs.table, 8));

    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, op.handle, HOST),
        GNTST_okay
    );
    assert!(s2.maps.is_empty());
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access);
    assert_eq!(d2.gs.table.pinned_count(), 0);
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    assert!(end_access(&d2.gs.table, 8));
    assert_eq!(flags(&d2.gs.table, 8), 0);

    // Revoked: a new map fails and leaves the entry alone.
    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_general_error);
    assert_eq!(flags(&d2.gs.table, 8), 0);
    assert_eq!(d1.gs.maptrack.in_use(), 0);
}

#[test]
fn readonly_grants_and_readonly_maps() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 10, 1, RAM_GFN, true);

    let mut op = map_op(2, 10, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_general_error);
    assert_eq!(flags(&d2.gs.table, 10), GTF_permit_access | GTF_readonly);
    assert_eq!(d1.gs.maptrack.in_use(), 0);

    let mut op = map_op(2, 10, HOST, true);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_okay);
    assert_eq!(s2.maps[&HOST], (pa_of(2, RAM_GFN), true));
    assert_eq!(
        flags(&d2.gs.table, 10),
        GTF_permit_access | GTF_readonly | GTF_reading
    );
    // A writable map on top of a read-only pin is still refused.
    let mut op2 = map_op(2, 10, HOST + 1, false);
    assert_eq!(
        map(&mut d1, &mut d2, &mut s2, &mut op2),
        GNTST_general_error
    );
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, op.handle, HOST),
        GNTST_okay
    );
    assert_eq!(flags(&d2.gs.table, 10), GTF_permit_access | GTF_readonly);

    // Read-only map of a writable grant, then a writable one on top.
    grant(&d2.gs.table, 11, 1, RAM_GFN + 1, false);
    let mut ro = map_op(2, 11, HOST, true);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut ro), GNTST_okay);
    assert_eq!(flags(&d2.gs.table, 11), GTF_permit_access | GTF_reading);
    let mut rw = map_op(2, 11, HOST + 1, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut rw), GNTST_okay);
    assert_eq!(
        flags(&d2.gs.table, 11),
        GTF_permit_access | GTF_reading | GTF_writing
    );
    let st = d2.gs.table.pin_state(11).unwrap();
    assert_eq!((st.readers, st.writers, st.grantee), (1, 1, 1));
    // Both mappings resolved the page once.
    assert_eq!(s2.resolves, 2);
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, rw.handle, HOST + 1),
        GNTST_okay
    );
    assert_eq!(flags(&d2.gs.table, 11), GTF_permit_access | GTF_reading);
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, ro.handle, HOST),
        GNTST_okay
    );
    assert_eq!(flags(&d2.gs.table, 11), GTF_permit_access);
}

#[test]
fn wrong_domid_type_and_subpage() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 9, 3, RAM_GFN, false);
    let mut op = map_op(2, 9, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_general_error);
    assert_eq!(flags(&d2.gs.table, 9), GTF_permit_access);

    for bad in [
        GTF_invalid,
        GTF_accept_transfer,
        GTF_transitive,
        GTF_permit_access | GTF_sub_page,
    ] {
        grant(&d2.gs.table, 9, 1, RAM_GFN, false);
        set_flags(&d2.gs.table, 9, bad);
        let mut op = map_op(2, 9, HOST, true);
        assert_eq!(
            map(&mut d1, &mut d2, &mut s2, &mut op),
            GNTST_general_error,
            "{bad:#x}"
        );
        assert_eq!(flags(&d2.gs.table, 9), bad);
    }
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    assert!(s2.maps.is_empty());

    // Once pinned by dom1, dom3 cannot pin it even if the granter
    // retargets the entry.
    let mut d3 = dom(3);
    let mut s3 = Stage2::default();
    grant(&d2.gs.table, 12, 1, RAM_GFN, false);
    let mut op = map_op(2, 12, HOST, true);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_okay);
    d2.gs
        .table
        .frames()
        .write(12 * 8 + 2, &3u16.to_le_bytes())
        .unwrap();
    let mut op3 = map_op(2, 12, HOST, true);
    assert_eq!(
        map(&mut d3, &mut d2, &mut s3, &mut op3),
        GNTST_general_error
    );
}

#[test]
fn bad_flags_domains_and_refs() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 8, 1, RAM_GFN, false);
    let cases = [
        (0, GNTST_bad_gntref),
        (GNTMAP_readonly, GNTST_bad_gntref),
        (GNTMAP_device_map, GNTST_general_error),
        (GNTMAP_device_map | GNTMAP_host_map, GNTST_general_error),
        (GNTMAP_host_map | GNTMAP_contains_pte, GNTST_general_error),
        (
            GNTMAP_host_map | GNTMAP_application_map,
            GNTST_general_error,
        ),
        (GNTMAP_host_map | (5 << _GNTMAP_guest_avail0), GNTST_okay),
    ];
    for (f, want) in cases {
        let mut op = map_op(2, 8, HOST, false);
        op.flags = f;
        assert_eq!(
            map(&mut d1, &mut d2, &mut s2, &mut op),
            want,
            "flags {f:#x}"
        );
        if want == GNTST_okay {
            assert_eq!(
                unmap(&mut d1, &mut d2, &mut s2, op.handle, HOST),
                GNTST_okay
            );
        }
    }
    // No such granter, or a table that is not op.dom's.
    let mut op = map_op(7, 8, HOST, false);
    map_grant_ref::<Frames, _>(1, &mut d1.gs.maptrack, None, &mut op, &mut s2);
    assert_eq!(op.status, GNTST_bad_domain);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_bad_domain);
    let mut op = map_op(DOMID_SELF, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_bad_domain);

    // Refs beyond the table.
    for r in [512, 513, 4096, u32::MAX] {
        let mut op = map_op(2, r, HOST, false);
        assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_bad_gntref);
    }
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    // After growing, 513 is a real (ungranted) entry.
    d2.gs.table.map_frame(1, 0x10_0000).unwrap();
    let mut op = map_op(2, 513, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_general_error);
    grant(&d2.gs.table, 1023, 1, RAM_GFN, false);
    let mut op = map_op(2, 1023, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_okay);
}

#[test]
fn backend_failures_undo_everything() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    // Granted frame is not the granter's RAM.
    grant(&d2.gs.table, 8, 1, 0x12345, false);
    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_bad_page);
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access);
    assert_eq!(d2.gs.table.pinned_count(), 0);
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    // Stage-2 insertion fails.
    grant(&d2.gs.table, 8, 1, RAM_GFN, false);
    s2.fail_map = true;
    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_general_error);
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access);
    assert_eq!(d2.gs.table.pinned_count(), 0);
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    // Second writable map fails while a read-only one stays: writing goes.
    s2.fail_map = false;
    let mut ro = map_op(2, 8, HOST, true);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut ro), GNTST_okay);
    s2.fail_map = true;
    let mut rw = map_op(2, 8, HOST + 1, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut rw), GNTST_general_error);
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access | GTF_reading);
}

#[test]
fn handles_reuse_double_unmap_and_checks() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 8, 1, RAM_GFN, false);
    grant(&d2.gs.table, 9, 1, RAM_GFN + 1, false);
    let mut a = map_op(2, 8, HOST, false);
    let mut b = map_op(2, 9, HOST + 1, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut a), GNTST_okay);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut b), GNTST_okay);
    assert_eq!((a.handle, b.handle), (0, 1));

    // Wrong host_addr / dev_bus_addr: refused, mapping intact.
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, a.handle, HOST + 7),
        GNTST_general_error
    );
    let mut op = GnttabUnmapGrantRef {
        host_addr: HOST << 12,
        dev_bus_addr: 0xdead_0000,
        handle: a.handle,
        ..Default::default()
    };
    unmap_grant_ref(
        &mut d1.gs.maptrack,
        Some(&mut d2.gs.table),
        &mut op,
        &mut s2,
    );
    assert_eq!(op.status, GNTST_general_error);
    // host_addr 0: nothing unmapped, success (Xen on Arm).
    assert_eq!(unmap(&mut d1, &mut d2, &mut s2, a.handle, 0), GNTST_okay);
    assert_eq!(d1.gs.maptrack.in_use(), 2);
    assert!(s2.maps.contains_key(&HOST));
    // The right dev_bus_addr and an unaligned host_addr in the right page.
    let mut op = GnttabUnmapGrantRef {
        host_addr: (HOST << 12) | 0x123,
        dev_bus_addr: a.dev_bus_addr,
        handle: a.handle,
        ..Default::default()
    };
    unmap_grant_ref(
        &mut d1.gs.maptrack,
        Some(&mut d2.gs.table),
        &mut op,
        &mut s2,
    );
    assert_eq!(op.status, GNTST_okay);

    // Double unmap and nonsense handles.
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, a.handle, HOST),
        GNTST_bad_handle
    );
    assert_eq!(unmap(&mut d1, &mut d2, &mut s2, 2, HOST), GNTST_bad_handle);
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, u32::MAX, HOST),
        GNTST_bad_handle
    );

    // The freed handle is reused.
    let mut c = map_op(2, 8, HOST, true);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut c), GNTST_okay);
    assert_eq!(c.handle, a.handle);

    // A table of the wrong domain (race while re-locking) / no table.
    let mut d3 = dom(3);
    let mut op = GnttabUnmapGrantRef {
        host_addr: (HOST + 1) << 12,
        handle: b.handle,
        ..Default::default()
    };
    unmap_grant_ref(
        &mut d1.gs.maptrack,
        Some(&mut d3.gs.table),
        &mut op,
        &mut s2,
    );
    assert_eq!(op.status, GNTST_bad_handle);
    unmap_grant_ref::<Frames, _>(&mut d1.gs.maptrack, None, &mut op, &mut s2);
    assert_eq!(op.status, GNTST_general_error);
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, b.handle, HOST + 1),
        GNTST_okay
    );
    assert_eq!(unmap(&mut d1, &mut d2, &mut s2, c.handle, HOST), GNTST_okay);
    assert_eq!(d2.gs.table.pinned_count(), 0);
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access);
    assert_eq!(flags(&d2.gs.table, 9), GTF_permit_access);
}

#[test]
fn maptrack_limit_and_pin_limit() {
    let mut d1 = dom_with(
        1,
        GrantLimits {
            max_frames: 4,
            max_maptrack: 2,
        },
    );
    let mut d2 = dom(2);
    let mut s2 = Stage2::default();
    for r in 8..11 {
        grant(&d2.gs.table, r, 1, RAM_GFN, false);
    }
    let mut a = map_op(2, 8, HOST, false);
    let mut b = map_op(2, 9, HOST + 1, false);
    let mut c = map_op(2, 10, HOST + 2, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut a), GNTST_okay);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut b), GNTST_okay);
    assert_eq!(
        map(&mut d1, &mut d2, &mut s2, &mut c),
        GNTST_no_device_space
    );
    assert_eq!(flags(&d2.gs.table, 10), GTF_permit_access);
    assert_eq!(unmap(&mut d1, &mut d2, &mut s2, a.handle, HOST), GNTST_okay);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut c), GNTST_okay);

    // 128 pins of one kind, then Xen's overflow guard.
    let mut d3 = dom(3);
    let mut s3 = Stage2::default();
    grant(&d2.gs.table, 20, 3, RAM_GFN, false);
    for i in 0..128 {
        let mut op = map_op(2, 20, HOST + i, true);
        assert_eq!(map(&mut d3, &mut d2, &mut s3, &mut op), GNTST_okay);
    }
    let mut op = map_op(2, 20, HOST + 200, true);
    assert_eq!(map(&mut d3, &mut d2, &mut s3, &mut op), GNTST_general_error);
    let mut op = map_op(2, 20, HOST + 200, false);
    assert_eq!(map(&mut d3, &mut d2, &mut s3, &mut op), GNTST_general_error);
    assert_eq!(d2.gs.table.pin_state(20).unwrap().readers, 128);
    for h in 0..128 {
        assert_eq!(
            unmap(&mut d3, &mut d2, &mut s3, h, HOST + u64::from(h)),
            GNTST_okay
        );
    }
    assert_eq!(flags(&d2.gs.table, 20), GTF_permit_access);
}

#[test]
fn loopback_gntalloc_then_gntdev() {
    let mut d0 = dom(0);
    let mut s2 = Stage2::default();
    grant(&d0.gs.table, 100, 0, RAM_GFN + 5, false);
    let (mt, table) = d0.gs.split();
    let mut op = map_op(0, 100, HOST, false);
    map_grant_ref(0, mt, Some(&mut *table), &mut op, &mut s2);
    assert_eq!(op.status, GNTST_okay);
    assert_eq!(op.dev_bus_addr, pa_of(0, RAM_GFN + 5));
    assert_eq!(
        flags(table, 100),
        GTF_permit_access | GTF_reading | GTF_writing
    );
    assert_eq!(mt.target(op.handle), HandleTarget::Granter(0));
    let mut u = GnttabUnmapGrantRef {
        host_addr: HOST << 12,
        handle: op.handle,
        ..Default::default()
    };
    unmap_grant_ref(mt, Some(&mut *table), &mut u, &mut s2);
    assert_eq!(u.status, GNTST_okay);
    assert_eq!(flags(table, 100), GTF_permit_access);
    assert!(end_access(table, 100));
}

#[test]
fn hostile_granter_bounded_retries() {
    let (mut d1, mut d2) = (dom(1), dom(2));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 8, 1, RAM_GFN, false);

    d2.gs.table.frames().hostile.set(u32::MAX);
    d2.gs.table.frames().cas_calls.set(0);
    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_general_error);
    assert_eq!(d2.gs.table.frames().cas_calls.get(), SET_STATUS_ATTEMPTS);
    assert_eq!(d2.gs.table.pinned_count(), 0);
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    assert_eq!(flags(&d2.gs.table, 8) & (GTF_reading | GTF_writing), 0);

    // A granter that only briefly races is tolerated, and its own bits kept.
    d2.gs.table.frames().hostile.set(SET_STATUS_ATTEMPTS - 2); // odd: PAT ends flipped
    let before = flags(&d2.gs.table, 8);
    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_okay);
    let after = flags(&d2.gs.table, 8);
    assert_eq!(after & !(GTF_reading | GTF_writing), before ^ GTF_PAT);
    assert_eq!(
        after & (GTF_reading | GTF_writing),
        GTF_reading | GTF_writing
    );

    // The granter scribbling over a pinned entry (even zeroing it) cannot
    // break unmap; our clear only touches our bits.
    set_flags(&d2.gs.table, 8, GTF_PCD | GTF_writing);
    assert_eq!(
        unmap(&mut d1, &mut d2, &mut s2, op.handle, HOST),
        GNTST_okay
    );
    assert_eq!(flags(&d2.gs.table, 8), GTF_PCD);

    // Copies give up the same way.
    let mut w = World::new(&[1, 2]);
    grant(w.table(2), 8, 1, RAM_GFN, false);
    w.table(2).frames().hostile.set(u32::MAX);
    let mut c = copy_gref_to_gfn(2, 8, 0, RAM_GFN, 0, 16);
    grant_copy(&mut w, 1, &mut c);
    assert_eq!(c.status, GNTST_general_error);
}

// ---------------------------------------------------------------------------
// Table size, frames, versions

#[test]
fn table_growth_and_limits() {
    let mut d = dom_with(
        2,
        GrantLimits {
            max_frames: 8,
            max_maptrack: 16,
        },
    );
    let t = &mut d.gs.table;
    let mut q = GnttabQuerySize::default();
    t.query_size(&mut q);
    assert_eq!((q.nr_frames, q.max_nr_frames, q.status), (1, 8, GNTST_okay));
    assert_eq!(t.nr_entries(), 512);
    assert_eq!(t.frame_gfn(0), INVALID_GFN);

    // Linux maps frames 0.. at the DT grant region; asking for idx >= size grows.
    assert_eq!(t.map_frame(0, 0x38_000), Ok(None));
    assert_eq!(t.map_frame(3, 0x38_003), Ok(None));
    assert_eq!(t.nr_frames(), 4);
    assert_eq!(t.frame_gfn(3), 0x38_003);
    assert_eq!(t.frame_gfn(1), INVALID_GFN);
    assert_eq!(t.frame_at_gfn(0x38_003), Some(3));
    // Remapping a frame elsewhere hands back the old GFN to unmap.
    assert_eq!(t.map_frame(0, 0x39_000), Ok(Some(0x38_000)));
    // Another frame at the same GFN displaces the first.
    assert_eq!(t.map_frame(1, 0x39_000), Ok(None));
    assert_eq!(t.frame_gfn(0), INVALID_GFN);
    t.frame_unmapped(0x39_000);
    assert_eq!(t.frame_gfn(1), INVALID_GFN);

    assert_eq!(t.map_frame(8, 1), Err(Errno::EINVAL));
    assert_eq!(t.map_frame(1 << 31, 1), Err(Errno::EINVAL)); // status frame idx
    assert_eq!(t.map_frame(u64::MAX, 1), Err(Errno::EINVAL));
    assert_eq!(t.map_frame(7, 0x38_007), Ok(None));
    assert_eq!(t.nr_frames(), 8);

    assert_eq!(t.setup_table(9), GNTST_general_error);
    assert_eq!(t.setup_table(2), GNTST_okay);
    assert_eq!(t.nr_frames(), 8);

    // Out of memory: nothing changes.
    let mut d = dom(3);
    let t = &mut d.gs.table;
    t.frames().fail_grow.set(true);
    assert_eq!(t.map_frame(5, 1), Err(Errno::EINVAL));
    assert_eq!(t.setup_table(3), GNTST_general_error);
    assert_eq!((t.nr_frames(), t.nr_entries()), (1, 512));
    assert_eq!(t.frame_gfn(0), INVALID_GFN);
    t.frames().fail_grow.set(false);
    assert_eq!(t.setup_table(4), GNTST_okay);
    assert_eq!(t.map_frame(63, 1), Ok(None));
    assert_eq!(t.map_frame(64, 1), Err(Errno::EINVAL));
    assert_eq!(t.nr_entries(), 64 * 512);

    let frames_fail = Frames::new();
    frames_fail.fail_grow.set(true);
    assert!(matches!(
        GrantTable::new(5, frames_fail, 4),
        Err(Errno::ENOMEM)
    ));
    assert!(matches!(
        GrantTable::new(5, Frames::new(), 0),
        Err(Errno::EINVAL)
    ));
}

#[test]
fn versions() {
    let mut d = dom(1);
    let t = &mut d.gs.table;
    assert_eq!(t.version(), 1);
    assert_eq!(t.set_version(1), Ok(()));
    assert_eq!(t.set_version(2), Err(Errno::ENOSYS));
    assert_eq!(t.set_version(0), Err(Errno::EINVAL));
    assert_eq!(t.set_version(3), Err(Errno::EINVAL));
    assert_eq!(t.version(), 1);
}

// ---------------------------------------------------------------------------
// Teardown

#[test]
fn teardown_mapper_dies() {
    let (mut d1, mut d2, mut d3) = (dom(1), dom(2), dom(3));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 8, 1, RAM_GFN, false);
    grant(&d2.gs.table, 9, 1, RAM_GFN + 1, true);
    grant(&d3.gs.table, 8, 1, RAM_GFN, false);
    grant(&d1.gs.table, 8, 1, RAM_GFN, false);
    let mut ops = [
        map_op(2, 8, HOST, false),
        map_op(2, 9, HOST + 1, true),
        map_op(3, 8, HOST + 2, true),
    ];
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut ops[0]), GNTST_okay);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut ops[1]), GNTST_okay);
    assert_eq!(map(&mut d1, &mut d3, &mut s2, &mut ops[2]), GNTST_okay);
    let (mt, t) = d1.gs.split();
    let mut lo = map_op(1, 8, HOST + 3, false);
    map_grant_ref(1, mt, Some(&mut *t), &mut lo, &mut s2);
    assert_eq!(lo.status, GNTST_okay);
    assert_eq!(d1.gs.maptrack.granters(), vec![1, 2, 3]);
    assert_eq!(d1.gs.maptrack.iter().count(), 4);

    // dom1 dies.
    let r2 = release_mappings_of(&mut d1.gs.maptrack, &mut d2.gs.table);
    let r3 = release_mappings_of(&mut d1.gs.maptrack, &mut d3.gs.table);
    let (mt, t) = d1.gs.split();
    let r1 = release_mappings_of(mt, t);
    let mut gfns: Vec<u64> = r1
        .iter()
        .chain(&r2)
        .chain(&r3)
        .map(|(_, m)| m.host_gfn)
        .collect();
    gfns.sort();
    assert_eq!(gfns, vec![HOST, HOST + 1, HOST + 2, HOST + 3]);
    assert!(r2.iter().all(|(_, m)| m.granter == 2));
    assert_eq!(d1.gs.maptrack.in_use(), 0);
    for t in [&d1.gs.table, &d2.gs.table, &d3.gs.table] {
        assert_eq!(t.pinned_count(), 0);
        assert_eq!(flags(t, 8), GTF_permit_access);
    }
    assert_eq!(flags(&d2.gs.table, 9), GTF_permit_access | GTF_readonly);
}

#[test]
fn teardown_granter_dies() {
    let (mut d1, mut d2, mut d3) = (dom(1), dom(2), dom(3));
    let mut s2 = Stage2::default();
    grant(&d2.gs.table, 8, 1, RAM_GFN, false);
    grant(&d3.gs.table, 8, 1, RAM_GFN, false);
    let mut a = map_op(2, 8, HOST, false);
    let mut b = map_op(3, 8, HOST + 1, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut a), GNTST_okay);
    assert_eq!(map(&mut d1, &mut d3, &mut s2, &mut b), GNTST_okay);

    // dom2 dies: every other domain's maptrack gives up dom2's grants.
    let gone = d1.gs.maptrack.revoke_granter(2);
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].0, gone[0].1.host_gfn, gone[0].1.pa),
        (a.handle, HOST, pa_of(2, RAM_GFN))
    );
    for (_, m) in &gone {
        s2.unmap_host(m.host_gfn, m.pa).unwrap(); // what the binary does
    }
    drop(d2);
    assert_eq!(d1.gs.maptrack.target(a.handle), HandleTarget::Orphaned);
    assert_eq!(d1.gs.maptrack.orphans().count(), 1);
    assert_eq!(d1.gs.maptrack.granters(), vec![3]);
    // The guest's own unmap later succeeds without a table.
    let mut u = GnttabUnmapGrantRef {
        host_addr: HOST << 12,
        handle: a.handle,
        ..Default::default()
    };
    unmap_grant_ref::<Frames, _>(&mut d1.gs.maptrack, None, &mut u, &mut s2);
    assert_eq!(u.status, GNTST_okay);
    assert_eq!(d1.gs.maptrack.target(a.handle), HandleTarget::Invalid);
    assert_eq!(d1.gs.maptrack.in_use(), 1);
    assert_eq!(
        unmap(&mut d1, &mut d3, &mut s2, b.handle, HOST + 1),
        GNTST_okay
    );
    assert!(s2.maps.is_empty());
}

// ---------------------------------------------------------------------------
// Copy

struct World {
    doms: BTreeMap<DomId, Dom>,
    /// As `Stage2::silo`.
    silo: bool,
}

impl World {
    fn new(ids: &[DomId]) -> Self {
        World {
            doms: ids.iter().map(|&i| (i, dom(i))).collect(),
            silo: false,
        }
    }
    fn table(&self, d: DomId) -> &GrantTable<Frames> {
        &self.doms[&d].gs.table
    }
    fn ram(&self, d: DomId) -> &FakeRam {
        &self.doms[&d].ram
    }
}

impl CopyEnv for World {
    type Frames = Frames;
    fn with_table<R>(
        &mut self,
        dom: DomId,
        f: impl FnOnce(&mut GrantTable<Frames>) -> R,
    ) -> Option<R> {
        self.doms.get_mut(&dom).map(|d| f(&mut d.gs.table))
    }
    fn copy(
        &mut self,
        sd: DomId,
        src: u64,
        dd: DomId,
        dst: u64,
        len: usize,
    ) -> Result<(), GuestFault> {
        // Pins must be held while bytes move.
        bounce_copy(&self.doms[&sd].ram, src, &self.doms[&dd].ram, dst, len)
    }
    fn may_copy(&self, caller: DomId, src: DomId, dst: DomId) -> bool {
        !self.silo || hv_core_silo(caller, src, dst)
    }
}

fn ptr_gref(dom: DomId, gref: u32, off: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: GnttabCopyPtrU::from_gref(gref),
        domid: dom,
        offset: off,
        ..Default::default()
    }
}

fn ptr_gfn(gfn: u64, off: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: GnttabCopyPtrU::from_gmfn(gfn),
        domid: DOMID_SELF,
        offset: off,
        ..Default::default()
    }
}

fn copy_gref_to_gfn(g: DomId, gref: u32, soff: u16, gfn: u64, doff: u16, len: u16) -> GnttabCopy {
    GnttabCopy {
        source: ptr_gref(g, gref, soff),
        dest: ptr_gfn(gfn, doff),
        len,
        flags: GNTCOPY_source_gref,
        ..Default::default()
    }
}

fn copy_gfn_to_gref(gfn: u64, soff: u16, g: DomId, gref: u32, doff: u16, len: u16) -> GnttabCopy {
    GnttabCopy {
        source: ptr_gfn(gfn, soff),
        dest: ptr_gref(g, gref, doff),
        len,
        flags: GNTCOPY_dest_gref,
        ..Default::default()
    }
}

fn fill(ram: &FakeRam, ipa: u64, len: usize, seed: u8) {
    let v: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
    ram.write(ipa, &v).unwrap();
}

fn bytes(ram: &FakeRam, ipa: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    ram.read(ipa, &mut v).unwrap();
    v
}

#[test]
fn copy_both_directions_like_netback() {
    let mut w = World::new(&[0, 1]);
    // netfront (dom1) grants an rx page writable and a tx page read-only.
    grant(w.table(1), 8, 0, RAM_GFN + 2, true); // tx: backend reads
    grant(w.table(1), 9, 0, RAM_GFN + 3, false); // rx: backend writes
    fill(w.ram(1), (RAM_GFN + 2) << 12, 4096, 7);

    // tx: dom0 copies from the grant into its own page.
    let mut op = copy_gref_to_gfn(1, 8, 100, RAM_GFN + 5, 200, 1000);
    grant_copy(&mut w, 0, &mut op);
    assert_eq!(op.status, GNTST_okay);
    assert_eq!(
        bytes(w.ram(0), ((RAM_GFN + 5) << 12) + 200, 1000),
        bytes(w.ram(1), ((RAM_GFN + 2) << 12) + 100, 1000)
    );
    assert_eq!(flags(w.table(1), 8), GTF_permit_access | GTF_readonly);

    // rx: dom0 copies into the guest's writable grant.
    fill(w.ram(0), (RAM_GFN + 6) << 12, 4096, 99);
    let mut op = copy_gfn_to_gref(RAM_GFN + 6, 0, 1, 9, 96, 4000);
    grant_copy(&mut w, 0, &mut op);
    assert_eq!(op.status, GNTST_okay);
    assert_eq!(
        bytes(w.ram(1), ((RAM_GFN + 3) << 12) + 96, 4000),
        bytes(w.ram(0), (RAM_GFN + 6) << 12, 4000)
    );
    assert_eq!(flags(w.table(1), 9), GTF_permit_access);

    // gref to gref, both foreign, full page.
    let mut w3 = World::new(&[0, 1, 2]);
    grant(w3.table(1), 8, 0, RAM_GFN, true);
    grant(w3.table(2), 8, 0, RAM_GFN + 1, false);
    fill(w3.ram(1), RAM_GFN << 12, 4096, 3);
    let mut op = GnttabCopy {
        source: ptr_gref(1, 8, 0),
        dest: ptr_gref(2, 8, 0),
        len: 4096,
        flags: GNTCOPY_source_gref | GNTCOPY_dest_gref,
        ..Default::default()
    };
    grant_copy(&mut w3, 0, &mut op);
    assert_eq!(op.status, GNTST_okay);
    assert_eq!(
        bytes(w3.ram(2), (RAM_GFN + 1) << 12, 4096),
        bytes(w3.ram(1), RAM_GFN << 12, 4096)
    );
    // Zero-length copies are fine.
    op.len = 0;
    grant_copy(&mut w3, 0, &mut op);
    assert_eq!(op.status, GNTST_okay);
}

#[test]
fn copy_errors() {
    let mut w = World::new(&[0, 1]);
    grant(w.table(1), 8, 0, RAM_GFN + 2, true);
    grant(w.table(1), 9, 0, RAM_GFN + 3, false);
    grant(w.table(1), 10, 0, 0x77777, false); // not RAM
    let check = |w: &mut World, mut op: GnttabCopy, want: i16| {
        grant_copy(w, 0, &mut op);
        assert_eq!(op.status, want, "{op:?}");
        for r in 8..11 {
            assert_eq!(
                flags(w.table(1), r) & (GTF_reading | GTF_writing),
                0,
                "ref {r} left busy"
            );
        }
        assert_eq!(w.table(1).pinned_count(), 0);
    };
    // Over-long spans, either side.
    check(
        &mut w,
        copy_gref_to_gfn(1, 8, 4000, RAM_GFN, 0, 97),
        GNTST_bad_copy_arg,
    );
    check(
        &mut w,
        copy_gref_to_gfn(1, 8, 0, RAM_GFN, 4095, 2),
        GNTST_bad_copy_arg,
    );
    check(
        &mut w,
        copy_gfn_to_gref(RAM_GFN, 0, 1, 9, 1, 4096),
        GNTST_bad_copy_arg,
    );
    check(
        &mut w,
        copy_gref_to_gfn(1, 8, 0, RAM_GFN, 0, u16::MAX),
        GNTST_bad_copy_arg,
    );
    // Writing into a read-only grant.
    check(
        &mut w,
        copy_gfn_to_gref(RAM_GFN, 0, 1, 8, 0, 16),
        GNTST_general_error,
    );
    // Grant not for the caller / bad ref / unknown domain / not RAM.
    grant(w.table(1), 11, 5, RAM_GFN, false);
    check(
        &mut w,
        copy_gref_to_gfn(1, 11, 0, RAM_GFN, 0, 16),
        GNTST_general_error,
    );
    check(
        &mut w,
        copy_gref_to_gfn(1, 512, 0, RAM_GFN, 0, 16),
        GNTST_bad_gntref,
    );
    check(
        &mut w,
        copy_gref_to_gfn(4, 8, 0, RAM_GFN, 0, 16),
        GNTST_bad_domain,
    );
    check(
        &mut w,
        copy_gref_to_gfn(1, 10, 0, RAM_GFN, 0, 16),
        GNTST_bad_page,
    );
    check(
        &mut w,
        copy_gref_to_gfn(1, 8, 0, 0x1, 0, 16),
        GNTST_bad_page,
    );
    check(
        &mut w,
        copy_gref_to_gfn(1, 8, 0, u64::MAX, 0, 16),
        GNTST_bad_page,
    );
    // A frame side must say DOMID_SELF, even with the caller's own id.
    let mut op = copy_gref_to_gfn(1, 8, 0, RAM_GFN, 0, 16);
    op.dest.domid = 0;
    check(&mut w, op, GNTST_permission_denied);
    // Destination failure releases the source pin.
    let mut op = copy_gref_to_gfn(1, 8, 0, RAM_GFN, 0, 16);
    op.dest = ptr_gref(1, 8, 0);
    op.flags |= GNTCOPY_dest_gref;
    check(&mut w, op, GNTST_general_error);
    // Sub-page bit does not stop a v1 copy (Xen checks it for maps only).
    set_flags(w.table(1), 9, GTF_permit_access | GTF_sub_page);
    check(
        &mut w,
        copy_gfn_to_gref(RAM_GFN, 0, 1, 9, 0, 16),
        GNTST_okay,
    );
}

#[test]
fn copy_overlapping_same_page() {
    let mut w = World::new(&[1]);
    let page = (RAM_GFN + 4) << 12;
    fill(w.ram(1), page, 4096, 0);
    let orig = bytes(w.ram(1), page, 4096);
    // gfn → gfn, same page, overlapping forwards: memmove semantics.
    let mut op = GnttabCopy {
        source: ptr_gfn(RAM_GFN + 4, 0),
        dest: ptr_gfn(RAM_GFN + 4, 10),
        len: 100,
        ..Default::default()
    };
    grant_copy(&mut w, 1, &mut op);
    assert_eq!(op.status, GNTST_okay);
    assert_eq!(bytes(w.ram(1), page + 10, 100), orig[..100].to_vec());

    // Loopback through the same writable gref on both sides (DOMID_SELF).
    grant(w.table(1), 8, 1, RAM_GFN + 4, false);
    let before = bytes(w.ram(1), page, 4096);
    let mut op = GnttabCopy {
        source: ptr_gref(DOMID_SELF, 8, 50),
        dest: ptr_gref(1, 8, 0),
        len: 200,
        flags: GNTCOPY_source_gref | GNTCOPY_dest_gref,
        ..Default::default()
    };
    grant_copy(&mut w, 1, &mut op);
    assert_eq!(op.status, GNTST_okay);
    assert_eq!(bytes(w.ram(1), page, 200), before[50..250].to_vec());
    assert_eq!(flags(w.table(1), 8), GTF_permit_access);
}

#[test]
fn copy_while_mapped_keeps_bits() {
    let mut w = World::new(&[0, 1]);
    grant(w.table(1), 8, 0, RAM_GFN, false);
    let mut s2 = Stage2::default();
    let mut d0 = w.doms.remove(&0).unwrap();
    let mut d1 = w.doms.remove(&1).unwrap();
    let mut op = map_op(1, 8, HOST, true);
    assert_eq!(map(&mut d0, &mut d1, &mut s2, &mut op), GNTST_okay);
    w.doms.insert(0, d0);
    w.doms.insert(1, d1);
    // A copy into the same grant raises writing, then drops only writing.
    let mut c = copy_gfn_to_gref(RAM_GFN, 0, 1, 8, 0, 64);
    grant_copy(&mut w, 0, &mut c);
    assert_eq!(c.status, GNTST_okay);
    assert_eq!(flags(w.table(1), 8), GTF_permit_access | GTF_reading);
    assert_eq!(w.table(1).pin_state(8).unwrap().readers, 1);
    // A copy from someone else while dom0 holds the pin is refused.
    let mut w2 = w;
    w2.doms.insert(3, dom(3));
    let mut c = copy_gref_to_gfn(1, 8, 0, RAM_GFN, 0, 64);
    grant_copy(&mut w2, 3, &mut c);
    assert_eq!(c.status, GNTST_general_error);
    assert!(w2.table(1).is_mapped_by(0, pa_of(1, RAM_GFN) + 0x10));
    assert!(!w2.table(1).is_mapped_by(3, pa_of(1, RAM_GFN)));
}

// ---------------------------------------------------------------------------
// cache_flush

#[test]
fn cache_flush_validation() {
    let f = |off: u16, len: u16, op: u32| GnttabCacheFlush {
        a: GnttabCacheFlushA::from_dev_bus_addr(0x8000_1000),
        offset: off,
        length: len,
        op,
    };
    assert_eq!(
        cache_flush_check(&GnttabCacheFlush::default()),
        Ok(CacheFlush::Nothing)
    );
    assert_eq!(cache_flush_check(&f(0, 64, 0)), Ok(CacheFlush::Nothing));
    assert_eq!(
        cache_flush_check(&f(0, 0, GNTTAB_CACHE_CLEAN)),
        Ok(CacheFlush::Nothing)
    );
    assert_eq!(cache_flush_check(&f(4096, 0, 0)), Err(Errno::EINVAL));
    assert_eq!(cache_flush_check(&f(0, 4097, 1)), Err(Errno::EINVAL));
    assert_eq!(cache_flush_check(&f(4000, 97, 1)), Err(Errno::EINVAL));
    assert_eq!(cache_flush_check(&f(0, 8, 4)), Err(Errno::EINVAL));
    assert_eq!(
        cache_flush_check(&f(0, 8, GNTTAB_CACHE_SOURCE_GREF | 1)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        cache_flush_check(&f(16, 4080, GNTTAB_CACHE_CLEAN | GNTTAB_CACHE_INVAL)),
        Ok(CacheFlush::Flush {
            dev_bus_addr: 0x8000_1000,
            offset: 16,
            length: 4080,
            clean: true,
            invalidate: true
        })
    );
}

// ---------------------------------------------------------------------------
// Random operation sequences

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_operations_keep_invariants() {
    for seed in 1..=20u64 {
        random_run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    }
}

fn random_run(seed: u64) {
    let mut rng = XorShift(seed);
    let ids: [DomId; 3] = [0, 1, 2];
    let mut doms: Vec<Dom> = ids
        .iter()
        .map(|&i| {
            dom_with(
                i,
                GrantLimits {
                    max_frames: 2,
                    max_maptrack: 24,
                },
            )
        })
        .collect();
    let mut s2s: Vec<Stage2> = ids.iter().map(|_| Stage2::default()).collect();
    // (mapper index, handle, host gfn)
    let mut live: Vec<(usize, u32, u64)> = Vec::new();
    let mut next_host = HOST;
    let (mut maps_ok, mut copies_ok) = (0, 0);

    for _ in 0..3000 {
        let g = rng.below(3) as usize;
        let m = rng.below(3) as usize;
        let gref = rng.below(20) as u32 + 8;
        match rng.below(10) {
            // Grant (Linux only reuses refs it has ended; a hostile guest
            // just writes whatever it likes).
            0 | 1 => {
                let to = ids[rng.below(3) as usize];
                let gfn = if rng.below(8) == 0 {
                    0x55
                } else {
                    RAM_GFN + rng.below(RAM_PAGES)
                };
                if rng.below(4) == 0
                    || flags(&doms[g].gs.table, gref) & (GTF_reading | GTF_writing) == 0
                {
                    grant(&doms[g].gs.table, gref, to, gfn, rng.below(3) == 0);
                }
            }
            2 => {
                end_access(&doms[g].gs.table, gref);
            }
            3 => {
                let raw = rng.next() as u16;
                if rng.below(4) == 0 {
                    set_flags(&doms[g].gs.table, gref, raw);
                }
            }
            4..=6 => {
                let ro = rng.below(2) == 0;
                let host = next_host;
                next_host += 1;
                let mut op = map_op(ids[g], gref, host, ro);
                let st = if g == m {
                    let (mt, t) = doms[m].gs.split();
                    map_grant_ref(ids[m], mt, Some(t), &mut op, &mut s2s[m]);
                    op.status
                } else {
                    let (a, b) = two(&mut doms, m, g);
                    map(a, b, &mut s2s[m], &mut op)
                };
                if st == GNTST_okay {
                    let e = doms[g].gs.table.read_entry(gref).unwrap();
                    assert_ne!(e.flags & GTF_reading, 0);
                    if !ro {
                        assert_ne!(e.flags & GTF_writing, 0);
                    }
                    live.push((m, op.handle, host));
                    maps_ok += 1;
                } else {
                    assert!(
                        [GNTST_general_error, GNTST_bad_page, GNTST_no_device_space].contains(&st),
                        "unexpected {st}"
                    );
                }
            }
            7 | 8 if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let (m, h, host) = live.swap_remove(i);
                let HandleTarget::Granter(gd) = doms[m].gs.maptrack.target(h) else {
                    panic!("lost handle")
                };
                let gi = gd as usize;
                let mut op = GnttabUnmapGrantRef {
                    host_addr: host << 12,
                    handle: h,
                    ..Default::default()
                };
                if gi == m {
                    let (mt, t) = doms[m].gs.split();
                    unmap_grant_ref(mt, Some(t), &mut op, &mut s2s[m]);
                } else {
                    let (a, b) = two(&mut doms, m, gi);
                    unmap_grant_ref(
                        &mut a.gs.maptrack,
                        Some(&mut b.gs.table),
                        &mut op,
                        &mut s2s[m],
                    );
                }
                assert_eq!(op.status, GNTST_okay);
                // Stale handle now.
                let mut again = op;
                if gi == m {
                    let (mt, t) = doms[m].gs.split();
                    unmap_grant_ref(mt, Some(t), &mut again, &mut s2s[m]);
                } else {
                    let (a, b) = two(&mut doms, m, gi);
                    unmap_grant_ref(
                        &mut a.gs.maptrack,
                        Some(&mut b.gs.table),
                        &mut again,
                        &mut s2s[m],
                    );
                }
                assert_ne!(again.status, GNTST_okay);
            }
            _ => {
                // A copy by `m` between a gref of `g` and its own page.
                let mut w = World {
                    doms: BTreeMap::new(),
                    silo: false,
                };
                let taken: Vec<Dom> = std::mem::take(&mut doms);
                for d in taken {
                    w.doms.insert(d.id, d);
                }
                let mut op = if rng.below(2) == 0 {
                    copy_gref_to_gfn(
                        ids[g],
                        gref,
                        rng.below(4096) as u16,
                        RAM_GFN,
                        rng.below(4096) as u16,
                        rng.below(300) as u16,
                    )
                } else {
                    copy_gfn_to_gref(
                        RAM_GFN + 1,
                        rng.below(4096) as u16,
                        ids[g],
                        gref,
                        rng.below(4096) as u16,
                        rng.below(300) as u16,
                    )
                };
                grant_copy(&mut w, ids[m], &mut op);
                copies_ok += usize::from(op.status == GNTST_okay);
                doms = w.doms.into_values().collect();
            }
        }
        check_invariants(&doms, &live);
    }

    assert!(
        maps_ok > 50 && copies_ok > 5,
        "weak run: {maps_ok} maps, {copies_ok} copies"
    );

    // Tear everything down: every pin goes, every stage-2 entry goes.
    for m in 0..3 {
        for gd in doms[m].gs.maptrack.granters() {
            let gi = gd as usize;
            let released = if gi == m {
                let (mt, t) = doms[m].gs.split();
                release_mappings_of(mt, t)
            } else {
                let (a, b) = two(&mut doms, m, gi);
                release_mappings_of(&mut a.gs.maptrack, &mut b.gs.table)
            };
            for (_, mp) in released {
                s2s[m].unmap_host(mp.host_gfn, mp.pa).unwrap();
            }
        }
        assert!(s2s[m].maps.is_empty());
    }
    for d in &doms {
        assert_eq!(d.gs.table.pinned_count(), 0);
        assert_eq!(d.gs.maptrack.in_use(), 0);
    }
}

/// Two distinct `&mut` into the domain vector.
fn two(doms: &mut [Dom], a: usize, b: usize) -> (&mut Dom, &mut Dom) {
    assert_ne!(a, b);
    if a < b {
        let (l, r) = doms.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = doms.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

/// Pins equal the live mappings, and a pinned entry shows the bits it needs
/// unless the granter scribbled on it (it may; only our pins count).
fn check_invariants(doms: &[Dom], live: &[(usize, u32, u64)]) {
    let mut expect: BTreeMap<(DomId, u32), (u8, u8, DomId)> = BTreeMap::new();
    for d in doms {
        for (_, m) in d.gs.maptrack.iter() {
            let e = expect.entry((m.granter, m.gref)).or_insert((0, 0, d.id));
            assert_eq!(e.2, d.id, "two grantees pin one entry");
            if m.readonly {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
    }
    assert_eq!(
        live.len(),
        expect
            .values()
            .map(|e| usize::from(e.0) + usize::from(e.1))
            .sum::<usize>()
    );
    for d in doms {
        assert_eq!(
            d.gs.table.pinned_count(),
            expect.keys().filter(|k| k.0 == d.id).count()
        );
        for (&(g, r), &(w, rd, grantee)) in &expect {
            if g == d.id {
                let st = d.gs.table.pin_state(r).unwrap();
                assert_eq!((st.writers, st.readers, st.grantee), (w, rd, grantee));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Policy (SILO, the default of `GrantMapper::may_map` / `CopyEnv::may_copy`)

#[test]
fn silo_refuses_grants_between_domus() {
    let (mut d0, mut d1, mut d2) = (dom(0), dom(1), dom(2));
    let mut s2 = Stage2 {
        silo: true,
        ..Default::default()
    };
    // d2 grants to d1, correctly: still refused, and nothing is taken.
    grant(&d2.gs.table, 8, 1, RAM_GFN + 3, false);
    let mut op = map_op(2, 8, HOST, false);
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_permission_denied);
    assert_eq!(flags(&d2.gs.table, 8), GTF_permit_access);
    assert!(s2.maps.is_empty() && s2.resolves == 0);
    // Bad flags are found before the policy.
    let mut op = map_op(2, 8, HOST, false);
    op.flags = 0;
    assert_eq!(map(&mut d1, &mut d2, &mut s2, &mut op), GNTST_bad_gntref);
    // d1 ↔ dom0 both ways is fine.
    grant(&d0.gs.table, 9, 1, RAM_GFN + 4, false);
    let mut op = map_op(0, 9, HOST + 1, false);
    assert_eq!(map(&mut d1, &mut d0, &mut s2, &mut op), GNTST_okay);
    grant(&d1.gs.table, 10, 0, RAM_GFN + 5, false);
    let mut s2b = Stage2 {
        silo: true,
        ..Default::default()
    };
    let mut op = map_op(1, 10, HOST, false);
    assert_eq!(map(&mut d0, &mut d1, &mut s2b, &mut op), GNTST_okay);
}

#[test]
fn silo_refuses_copies_between_domus() {
    let mut w = World::new(&[0, 1, 2]);
    w.silo = true;
    grant(w.table(2), 8, 1, RAM_GFN + 3, false);
    grant(w.table(0), 8, 1, RAM_GFN + 3, false);
    // d1 copying from d2's grant into itself, or from itself into it: refused.
    let mut c = copy_gref_to_gfn(2, 8, 0, RAM_GFN, 0, 64);
    grant_copy(&mut w, 1, &mut c);
    assert_eq!(c.status, GNTST_permission_denied);
    assert_eq!(flags(w.table(2), 8), GTF_permit_access);
    let mut c = copy_gfn_to_gref(RAM_GFN, 0, 2, 8, 0, 64);
    grant_copy(&mut w, 1, &mut c);
    assert_eq!(c.status, GNTST_permission_denied);
    // A domain that does not exist is still bad_domain (looked up first).
    let mut c = copy_gref_to_gfn(7, 8, 0, RAM_GFN, 0, 64);
    grant_copy(&mut w, 1, &mut c);
    assert_eq!(c.status, GNTST_bad_domain);
    // With dom0: allowed.
    let mut c = copy_gref_to_gfn(0, 8, 0, RAM_GFN, 0, 64);
    grant_copy(&mut w, 1, &mut c);
    assert_eq!(c.status, GNTST_okay);
    // dom0 may copy between two domUs.
    grant(w.table(2), 9, 0, RAM_GFN + 4, false);
    grant(w.table(1), 9, 0, RAM_GFN + 4, false);
    let mut c = GnttabCopy {
        source: ptr_gref(2, 9, 0),
        dest: ptr_gref(1, 9, 0),
        len: 64,
        flags: GNTCOPY_source_gref | GNTCOPY_dest_gref,
        ..Default::default()
    };
    grant_copy(&mut w, 0, &mut c);
    assert_eq!(c.status, GNTST_okay);
}
