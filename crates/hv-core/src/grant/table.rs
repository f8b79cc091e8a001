//! One domain's grant table: the shared v1 entries (in hypervisor-owned
//! frames the guest maps with `add_to_physmap(grant_table, idx)`) and the
//! hypervisor's private "active" shadow of every entry that is pinned by a
//! mapping or an in-flight copy.

use alloc::vec::Vec;

use xen_abi::errno::Errno;
use xen_abi::grant_table::{
    GNTST_bad_gntref, GNTST_general_error, GNTST_okay, GTF_permit_access, GTF_reading,
    GTF_readonly, GTF_sub_page, GTF_type_mask, GTF_writing, GnttabQuerySize, GrantRef,
};
use xen_abi::xen::DomId;

use super::{
    ENTRIES_PER_FRAME, ENTRY_BYTES, INITIAL_FRAMES, INVALID_GFN, MAX_FRAMES_LIMIT, PIN_LIMIT,
    SET_STATUS_ATTEMPTS,
};
use crate::guest::GuestMemory;

/// The storage behind a grant table's shared frames, supplied by the binary.
///
/// Addresses given to the [`GuestMemory`] methods are byte offsets into the
/// table: frame `i` covers `[i * 4096, (i + 1) * 4096)`. The guest maps the
/// same pages into its stage-2 and races with us, so the atomic methods must
/// be real atomics on those pages. Offsets at or beyond the frames that exist
/// must fail (they never happen unless there is a bug).
pub trait TableFrames: GuestMemory {
    /// Make frames `[0, nr)` exist; the new ones zero-filled. Called only
    /// with `nr` larger than any earlier call. On failure nothing changes.
    fn grow(&mut self, nr: u32) -> Result<(), OutOfMemory>;
}

/// [`TableFrames::grow`] could not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// The shadow of a pinned entry. Pins count host mappings and in-flight
/// copies alike (as Xen's `hst*` pin counts do).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Active {
    /// Writable pins (writable maps, copies into the page).
    pub(crate) writers: u8,
    /// Read-only pins.
    pub(crate) readers: u8,
    /// The grantee all current pins belong to.
    pub(crate) domid: DomId,
    /// The granter's GFN captured at the first pin.
    pub(crate) gfn: u64,
    /// Host physical address of `gfn`, once a mapping resolved it.
    pub(crate) pa: Option<u64>,
}

impl Active {
    pub(crate) fn pinned(&self) -> bool {
        self.writers != 0 || self.readers != 0
    }
}

/// What a pin hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub(crate) gfn: u64,
    pub(crate) pa: Option<u64>,
}

/// Public view of an entry's pin state (for tests, debugging, dumps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinState {
    pub writers: u8,
    pub readers: u8,
    pub grantee: DomId,
    pub gfn: u64,
}

/// A domain's grant table (v1 only, as Xen on Arm).
pub struct GrantTable<F> {
    owner: DomId,
    frames: F,
    nr_frames: u32,
    max_frames: u32,
    /// Where the guest has mapped each frame (`INVALID_GFN`: nowhere).
    frame_gfns: Vec<u64>,
    active: Vec<Active>,
}

impl<F: TableFrames> GrantTable<F> {
    /// A table for domain `owner` with [`INITIAL_FRAMES`] frame(s), growable
    /// to `max_frames` (Xen's default: [`super::DEFAULT_MAX_FRAMES`]).
    /// `-EINVAL` for a limit below the initial size or above
    /// [`MAX_FRAMES_LIMIT`]; `-ENOMEM` if the first frame cannot be had.
    pub fn new(owner: DomId, frames: F, max_frames: u32) -> Result<Self, Errno> {
        if !(INITIAL_FRAMES..=MAX_FRAMES_LIMIT).contains(&max_frames) {
            return Err(Errno::EINVAL);
        }
        let mut t = GrantTable {
            owner,
            frames,
            nr_frames: 0,
            max_frames,
            frame_gfns: Vec::new(),
            active: Vec::new(),
        };
        t.grow_to(INITIAL_FRAMES).map_err(|_| Errno::ENOMEM)?;
        Ok(t)
    }

    /// The domain whose table this is.
    pub fn owner(&self) -> DomId {
        self.owner
    }

    /// The frame storage (e.g. to find frame `i`'s host address).
    pub fn frames(&self) -> &F {
        &self.frames
    }

    pub fn nr_frames(&self) -> u32 {
        self.nr_frames
    }

    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Number of valid grant references (`nr_frames * 512`).
    pub fn nr_entries(&self) -> u32 {
        self.nr_frames * ENTRIES_PER_FRAME
    }

    /// Grow to at least `nr` frames. Fails (changing nothing) beyond the
    /// limit or when memory runs out.
    pub fn grow_to(&mut self, nr: u32) -> Result<(), OutOfMemory> {
        if nr <= self.nr_frames {
            return Ok(());
        }
        if nr > self.max_frames {
            return Err(OutOfMemory);
        }
        let entries = (nr * ENTRIES_PER_FRAME) as usize;
        self.active
            .try_reserve(entries - self.active.len())
            .map_err(|_| OutOfMemory)?;
        self.frame_gfns
            .try_reserve(nr as usize - self.frame_gfns.len())
            .map_err(|_| OutOfMemory)?;
        self.frames.grow(nr)?;
        self.active.resize(entries, Active::default());
        self.frame_gfns.resize(nr as usize, INVALID_GFN);
        self.nr_frames = nr;
        Ok(())
    }

    /// `GNTTABOP_query_size` for this table (the binary resolves `op.dom`,
    /// `DOMID_SELF` included, and sets `GNTST_bad_domain` /
    /// `GNTST_permission_denied` itself).
    pub fn query_size(&self, op: &mut GnttabQuerySize) {
        op.nr_frames = self.nr_frames;
        op.max_nr_frames = self.max_frames;
        op.status = GNTST_okay;
    }

    /// `GNTTABOP_setup_table`: grow to `nr_frames`. Returns the status; on
    /// `GNTST_okay` the binary writes [`Self::frame_gfn`]`(i)` for
    /// `i < nr_frames` to `frame_list` (`GNTST_bad_virt_addr` on a fault).
    pub fn setup_table(&mut self, nr_frames: u32) -> i16 {
        if nr_frames > self.max_frames || self.grow_to(nr_frames).is_err() {
            return GNTST_general_error;
        }
        GNTST_okay
    }

    /// The GFN where frame `idx` is mapped in the owner's stage-2, or
    /// [`INVALID_GFN`] (what a translated guest sees from `setup_table`).
    pub fn frame_gfn(&self, idx: u32) -> u64 {
        self.frame_gfns
            .get(idx as usize)
            .copied()
            .unwrap_or(INVALID_GFN)
    }

    /// `add_to_physmap(XENMAPSPACE_grant_table, idx, gfn)`: grow the table if
    /// `idx` is beyond its size, record that frame `idx` now lives at `gfn`,
    /// and return the GFN it was mapped at before (if any).
    ///
    /// The binary then removes the old stage-2 entry (if `Some`), and puts
    /// the host page of frame `idx` at `gfn` (read-write, Normal WB). If that
    /// fails it must call [`Self::frame_unmapped`]`(gfn)`.
    /// `-EINVAL` if `idx` is at or beyond the limit or the table cannot grow
    /// (Xen's answer in both cases; this includes status-frame indices with
    /// `XENMAPIDX_grant_table_status`, which v1 does not have).
    pub fn map_frame(&mut self, idx: u64, gfn: u64) -> Result<Option<u64>, Errno> {
        let idx = u32::try_from(idx).map_err(|_| Errno::EINVAL)?;
        let nr = idx.checked_add(1).ok_or(Errno::EINVAL)?;
        self.grow_to(nr).map_err(|_| Errno::EINVAL)?;
        // A stage-2 slot holds one page: a different frame at the same GFN
        // is replaced.
        for g in self.frame_gfns.iter_mut() {
            if *g == gfn {
                *g = INVALID_GFN;
            }
        }
        let old = core::mem::replace(&mut self.frame_gfns[idx as usize], gfn);
        Ok((old != INVALID_GFN && old != gfn).then_some(old))
    }

    /// The owner's stage-2 no longer maps a table frame at `gfn` (it was
    /// replaced or removed by another memory op).
    pub fn frame_unmapped(&mut self, gfn: u64) {
        for g in self.frame_gfns.iter_mut() {
            if *g == gfn {
                *g = INVALID_GFN;
            }
        }
    }

    /// Which table frame, if any, is mapped at `gfn` (so `remove_from_physmap`
    /// and friends can recognise it).
    pub fn frame_at_gfn(&self, gfn: u64) -> Option<u32> {
        if gfn == INVALID_GFN {
            return None;
        }
        self.frame_gfns
            .iter()
            .position(|&g| g == gfn)
            .map(|i| i as u32)
    }

    /// The grant table version in force: always 1.
    pub fn version(&self) -> u32 {
        1
    }

    /// `GNTTABOP_set_version` (Arm 4.17, `GNTTAB_MAX_VERSION` 1): 1 is
    /// accepted (a no-op), 2 gives `-ENOSYS`, anything else `-EINVAL`. In
    /// every case the binary writes [`Self::version`] back to `op.version`.
    pub fn set_version(&mut self, requested: u32) -> Result<(), Errno> {
        match requested {
            1 => Ok(()),
            2 => Err(Errno::ENOSYS),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The raw entry `gref` as the guest last wrote it (no atomicity).
    pub fn read_entry(&self, gref: GrantRef) -> Option<xen_abi::grant_table::GrantEntryV1> {
        if gref >= self.nr_entries() {
            return None;
        }
        let raw = self.frames.read_u64(u64::from(gref) * ENTRY_BYTES).ok()?;
        Some(xen_abi::grant_table::GrantEntryV1 {
            flags: raw as u16,
            domid: (raw >> 16) as u16,
            frame: (raw >> 32) as u32,
        })
    }

    /// Pin state of `gref`, if pinned.
    pub fn pin_state(&self, gref: GrantRef) -> Option<PinState> {
        let a = self.active.get(gref as usize)?;
        a.pinned().then_some(PinState {
            writers: a.writers,
            readers: a.readers,
            grantee: a.domid,
            gfn: a.gfn,
        })
    }

    /// Number of pinned entries (a dying domain's table should reach 0
    /// once every mapper has let go).
    pub fn pinned_count(&self) -> usize {
        self.active.iter().filter(|a| a.pinned()).count()
    }

    /// Whether `grantee` holds a mapping of a frame of this table's owner
    /// whose host page is `pa` (`cache_flush` on a foreign page needs one).
    pub fn is_mapped_by(&self, grantee: DomId, pa: u64) -> bool {
        let page = pa & !0xfff;
        self.active
            .iter()
            .any(|a| a.pinned() && a.domid == grantee && a.pa == Some(page))
    }

    pub(crate) fn set_pa(&mut self, gref: GrantRef, pa: u64) {
        self.active[gref as usize].pa = Some(pa);
    }

    /// Take a pin on `gref` for `grantee`: validate the entry and set
    /// `GTF_reading` (and `GTF_writing` unless `readonly`) in it when this
    /// pin needs more access than the existing ones. `mapping` additionally
    /// rejects `GTF_sub_page` (as Xen does for maps but not copies).
    pub(crate) fn pin(
        &mut self,
        gref: GrantRef,
        grantee: DomId,
        readonly: bool,
        mapping: bool,
    ) -> Result<Pinned, i16> {
        if gref >= self.nr_entries() {
            return Err(GNTST_bad_gntref);
        }
        let act = self.active[gref as usize];
        if act.pinned()
            && (act.domid != grantee || act.writers >= PIN_LIMIT || act.readers >= PIN_LIMIT)
        {
            return Err(GNTST_general_error);
        }
        if !act.pinned() || (!readonly && act.writers == 0) {
            self.set_status(gref, act.pinned(), readonly, mapping, grantee)?;
            if !act.pinned() {
                let frame = self
                    .frames
                    .read_u32(u64::from(gref) * ENTRY_BYTES + 4)
                    .map_err(|_| GNTST_general_error);
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        self.clear_flags(
                            gref,
                            GTF_reading | if readonly { 0 } else { GTF_writing },
                        );
                        return Err(e);
                    }
                };
                self.active[gref as usize] = Active {
                    writers: 0,
                    readers: 0,
                    domid: grantee,
                    gfn: u64::from(frame),
                    pa: None,
                };
            }
        }
        let a = &mut self.active[gref as usize];
        if readonly {
            a.readers += 1;
        } else {
            a.writers += 1;
        }
        Ok(Pinned {
            gfn: a.gfn,
            pa: a.pa,
        })
    }

    /// Drop a pin taken by [`Self::pin`] and clear `GTF_writing` /
    /// `GTF_reading` when no pin needs them any more.
    pub(crate) fn unpin(&mut self, gref: GrantRef, readonly: bool) {
        let Some(a) = self.active.get_mut(gref as usize) else {
            return;
        };
        if readonly {
            a.readers = a.readers.saturating_sub(1);
        } else {
            a.writers = a.writers.saturating_sub(1);
        }
        let mut clear = 0;
        if !readonly && a.writers == 0 {
            clear |= GTF_writing;
        }
        if !a.pinned() {
            clear |= GTF_reading;
            a.pa = None;
        }
        if clear != 0 {
            self.clear_flags(gref, clear);
        }
    }

    /// Atomically clear flag bits of entry `gref` (the guest may be writing
    /// the same word).
    fn clear_flags(&self, gref: GrantRef, bits: u16) {
        // Table frames are our own pages: this cannot fault unless there
        // is a bug, and there is nothing better to do then than carry on.
        let _ = self
            .frames
            .fetch_and_u64(u64::from(gref) * ENTRY_BYTES, !u64::from(bits));
    }

    /// Xen's `_set_status_v1`: compare-and-swap the `(flags, domid)` word,
    /// retrying a bounded number of times because the granter may keep
    /// changing it.
    fn set_status(
        &self,
        gref: GrantRef,
        pinned: bool,
        readonly: bool,
        mapping: bool,
        grantee: DomId,
    ) -> Result<(), i16> {
        let addr = u64::from(gref) * ENTRY_BYTES;
        let mask = GTF_type_mask | if mapping { GTF_sub_page } else { 0 };
        let mut cur = self
            .frames
            .read_u32(addr)
            .map_err(|_| GNTST_general_error)?;
        for _ in 0..SET_STATUS_ATTEMPTS {
            let flags = cur as u16;
            let domid = (cur >> 16) as u16;
            if !pinned && (flags & mask != GTF_permit_access || domid != grantee) {
                return Err(GNTST_general_error);
            }
            let mut new = flags | GTF_reading;
            if !readonly {
                if flags & GTF_readonly != 0 {
                    return Err(GNTST_general_error);
                }
                new |= GTF_writing;
            }
            let new_raw = (cur & 0xffff_0000) | u32::from(new);
            let found = self
                .frames
                .cmpxchg_u32(addr, cur, new_raw)
                .map_err(|_| GNTST_general_error)?;
            if found == cur {
                return Ok(());
            }
            cur = found;
        }
        Err(GNTST_general_error)
    }
}
