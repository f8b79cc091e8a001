//! Software walker for a guest's stage-1 (EL1&0) translation tables.
//!
//! Xen hypercall arguments from an arm64 guest are guest *virtual* addresses:
//! kernel linear-map and vmalloc addresses (TTBR1), or EL0 buffers passed
//! through privcmd (TTBR0). [`translate`] turns one VA into an IPA the way the
//! vCPU's own MMU would (Arm ARM D8, VMSAv8-64, 4K/16K/64K granules, 48-bit
//! output addresses at most); [`for_each_page`], [`copy_from_guest`] and
//! [`copy_to_guest`] apply it to buffers, page by page.
//!
//! Everything the walk reads is guest controlled. Descriptors are read one
//! at a time through [`GuestMemory::read_u64`] (so only RAM of the domain,
//! as its stage 2 allows, is ever read), the walk makes at most one read per
//! lookup level (≤ 4: a table that points at itself just ends at level 3),
//! and no descriptor value, configuration or address can make it panic.
//!
//! What the walk does *not* model, on purpose:
//! * TLBs: the tables are read as they are in memory now. A guest that has
//!   not yet issued its TLBI may see its own stale mapping while we use the
//!   new one; both are outcomes it must already tolerate from other CPUs.
//! * 52-bit formats (TCR.DS = 1, IPS = 52 with the 64K granule's `OA[51:48]`
//!   fields): `DS` is [`WalkError::BadConfig`], IPS = 52 is treated as 48
//!   and descriptors that use `OA[51:48]` get [`WalkError::AddressSize`].
//!   52-bit *virtual* addresses with the 64K granule (TxSZ = 12) do work.
//! * Execute permissions, memory attributes, the contiguous hint, PAN
//!   (hypercalls are serviced with EL1 privilege, like Xen's `AT S12E1R/W`;
//!   [`Translation::user`] tells the caller whether EL0 could also access).
//!
//! Hardware-managed flags (TCR.HA / TCR.HD, FEAT_HAFDBS — Linux enables them
//! when the CPU has them) are emulated as the hardware would for the access:
//! AF is set, and a writable-clean page (DBM = 1, `AP[2]` = 1) is made dirty by
//! clearing `AP[2]` before it is reported writable. Both updates are a 32-bit
//! compare-and-swap on the descriptor's low word (AF and `AP[2]` live there);
//! a lost race restarts the walk (bounded). See [`translate`].

use hv_core::guest::{GuestFault, GuestMemory};

/// The vCPU's stage-1 configuration, as read from its EL1 system registers
/// (with `HCR_EL2.DC = 1`, pass `sctlr_el1` with `M` clear).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S1Regs {
    pub sctlr_el1: u64,
    pub tcr_el1: u64,
    pub ttbr0_el1: u64,
    pub ttbr1_el1: u64,
}

/// Why a VA did not translate (the stage-1 fault the guest would have taken,
/// or a failure to read its tables). For a hypercall all of these are
/// `-EFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// No valid descriptor at `level` (also: VA outside both ranges, or the
    /// range's walks disabled by EPDx, both reported at level 0).
    Translation { level: u8 },
    /// AF = 0 in the leaf descriptor and TCR.HA = 0.
    AccessFlag,
    /// A write to a mapping that is read-only at EL1.
    Permission,
    /// A table or output address beyond TCR.IPS, or a 52-bit format.
    AddressSize,
    /// Reading (or updating) a descriptor failed at stage 2.
    Guest(GuestFault),
    /// TCR_EL1 selects something this walker does not implement or the
    /// architecture reserves (granule encoding, TxSZ out of range, DS, IPS).
    BadConfig,
}

impl From<GuestFault> for WalkError {
    fn from(f: GuestFault) -> Self {
        WalkError::Guest(f)
    }
}

/// A successful translation of one VA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The IPA of the byte at the VA (page offset included).
    pub ipa: u64,
    /// An EL1 write through this mapping is allowed as the descriptor stands
    /// now. A writable-clean (DBM) page is `false` unless the walk was done
    /// with `write = true` (which marked it dirty).
    pub writable: bool,
    /// EL0 may access the mapping (`AP[1]`, `APTable[0]` and TCR.E0PDx). With
    /// the MMU off, `true`.
    pub user: bool,
}

/// Longest buffer [`for_each_page`] and the copies accept.
pub const MAX_ACCESS_LEN: usize = 1 << 20;

/// Granularity at which [`for_each_page`] splits buffers.
pub const PIECE_SIZE: usize = 4096;

/// Why a buffer access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError<E> {
    /// `len` > [`MAX_ACCESS_LEN`].
    TooLong,
    /// The buffer wraps around the top of the VA space.
    Wrap,
    /// The VA of a piece (its first byte) did not translate.
    Walk { va: u64, err: WalkError },
    /// The callback (or the guest memory access of a copy) failed.
    Callback(E),
}

const SCTLR_M: u64 = 1 << 0;
const SCTLR_EE: u64 = 1 << 25;

const TCR_EPD0: u64 = 1 << 7;
const TCR_EPD1: u64 = 1 << 23;
const TCR_TBI0: u64 = 1 << 37;
const TCR_TBI1: u64 = 1 << 38;
const TCR_HA: u64 = 1 << 39;
const TCR_HD: u64 = 1 << 40;
const TCR_HPD0: u64 = 1 << 41;
const TCR_HPD1: u64 = 1 << 42;
const TCR_E0PD0: u64 = 1 << 55;
const TCR_E0PD1: u64 = 1 << 56;
const TCR_DS: u64 = 1 << 59;

const D_VALID: u64 = 1 << 0;
const D_TABLE: u64 = 1 << 1; // table (levels 0-2) or page (level 3)
const D_AP1: u64 = 1 << 6; // EL0 access
const D_AP2: u64 = 1 << 7; // read-only
const D_AF: u64 = 1 << 10;
const D_DBM: u64 = 1 << 51;
const D_APTABLE0: u64 = 1 << 61; // no EL0 access below
const D_APTABLE1: u64 = 1 << 62; // no write below
/// `OA[51:48]` in 64K-granule descriptors and TTBR `BADDR[5:2]` under 52-bit PA.
const D_OA52_64K: u64 = 0xf << 12;
const TTBR_OA52_64K: u64 = 0xf << 2;

/// Output address bits this walker understands (IPS is capped here).
const MAX_PA_BITS: u32 = 48;

/// How many times a walk is restarted when the guest changes a descriptor
/// between our read and our AF/dirty update.
const MAX_ATTEMPTS: u32 = 4;

/// Bits `[hi:lo]` set.
const fn bits(hi: u32, lo: u32) -> u64 {
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

/// One of the two VA ranges, resolved from TCR_EL1 and a VA.
struct Range {
    /// log2 of the granule: 12, 14 or 16.
    shift: u32,
    /// Input address size: 64 - TxSZ.
    va_bits: u32,
    ttbr: u64,
    hpd: bool,
    e0pd: bool,
}

/// Output address size from TCR_EL1.IPS, and whether 52 bits were asked for.
fn pa_bits(tcr: u64) -> Result<(u32, bool), WalkError> {
    Ok(match (tcr >> 32) & 7 {
        0 => (32, false),
        1 => (36, false),
        2 => (40, false),
        3 => (42, false),
        4 => (44, false),
        5 => (48, false),
        6 => (MAX_PA_BITS, true),
        _ => return Err(WalkError::BadConfig),
    })
}

fn select_range(regs: &S1Regs, va: u64) -> Result<Range, WalkError> {
    let tcr = regs.tcr_el1;
    // VA[55] selects the range whether or not the top byte is ignored.
    let upper = va & (1 << 55) != 0;
    let (txsz, tbi, epd, shift, ttbr, hpd, e0pd) = if upper {
        let shift = match (tcr >> 30) & 3 {
            1 => 14,
            2 => 12,
            3 => 16,
            _ => return Err(WalkError::BadConfig),
        };
        (
            ((tcr >> 16) & 0x3f) as u32,
            tcr & TCR_TBI1 != 0,
            tcr & TCR_EPD1 != 0,
            shift,
            regs.ttbr1_el1,
            tcr & TCR_HPD1 != 0,
            tcr & TCR_E0PD1 != 0,
        )
    } else {
        let shift = match (tcr >> 14) & 3 {
            0 => 12,
            1 => 16,
            2 => 14,
            _ => return Err(WalkError::BadConfig),
        };
        (
            (tcr & 0x3f) as u32,
            tcr & TCR_TBI0 != 0,
            tcr & TCR_EPD0 != 0,
            shift,
            regs.ttbr0_el1,
            tcr & TCR_HPD0 != 0,
            tcr & TCR_E0PD0 != 0,
        )
    };
    // DS changes the 4K/16K descriptor formats (52-bit); it has no effect
    // with the 64K granule.
    if tcr & TCR_DS != 0 && shift != 16 {
        return Err(WalkError::BadConfig);
    }
    // TxSZ limits: 16 (12 with 64K and FEAT_LVA) up to the FEAT_TTST maxima.
    let (min, max) = if shift == 16 { (12, 47) } else { (16, 48) };
    if txsz < min || txsz > max {
        return Err(WalkError::BadConfig);
    }
    let va_bits = 64 - txsz;
    // Bits [top:va_bits] must all equal VA[55] (top = 55 with TBI).
    let top = if tbi { 55 } else { 63 };
    let field = va & bits(top, va_bits);
    let want = if upper { bits(top, va_bits) } else { 0 };
    if field != want || epd {
        return Err(WalkError::Translation { level: 0 });
    }
    Ok(Range {
        shift,
        va_bits,
        ttbr,
        hpd,
        e0pd,
    })
}

fn block_allowed(shift: u32, level: u32) -> bool {
    match shift {
        12 => level == 1 || level == 2, // 1 GiB, 2 MiB
        14 => level == 2,               // 32 MiB (level 1 needs DS)
        _ => level == 2,                // 512 MiB (level 1 needs 52-bit PA)
    }
}

fn read_desc(mem: &impl GuestMemory, addr: u64, be: bool) -> Result<u64, WalkError> {
    let d = mem.read_u64(addr)?;
    Ok(if be { d.swap_bytes() } else { d })
}

/// Outcome of one walk attempt.
enum Step {
    Done(Result<Translation, WalkError>),
    /// The descriptor changed under an update; walk again, or fail with this
    /// error once out of attempts.
    Retry(WalkError),
}

/// Translates `va` with the EL1&0 stage-1 regime described by `regs`, for an
/// EL1 read (`write = false`) or write (`write = true`).
///
/// Faults are reported in the architecture's priority order (translation /
/// address size, then access flag, then permission). Nothing is written to
/// guest memory unless the translation succeeds and TCR.HA/HD call for an
/// AF or dirty-state update: then the leaf descriptor's low word is updated
/// with `cmpxchg_u32`. Setting AF that way is always benign (the valid bit
/// is in the compared word). For the dirty update the high word (DBM, OA) is
/// re-read afterwards and, if the guest changed it meanwhile (e.g. cleared
/// DBM to write-protect for fork), `AP[2]` is put back and the walk restarts;
/// an interleaving window of a few instructions remains in which another
/// guest CPU could fill its TLB from the briefly-writable descriptor.
pub fn translate(
    regs: &S1Regs,
    mem: &impl GuestMemory,
    va: u64,
    write: bool,
) -> Result<Translation, WalkError> {
    let mut last = WalkError::Permission;
    for _ in 0..MAX_ATTEMPTS {
        match walk_once(regs, mem, va, write) {
            Step::Done(r) => return r,
            Step::Retry(e) => last = e,
        }
    }
    Err(last)
}

fn walk_once(regs: &S1Regs, mem: &impl GuestMemory, va: u64, write: bool) -> Step {
    if regs.sctlr_el1 & SCTLR_M == 0 {
        // Flat: IPA = VA, anything above the largest PA faults.
        return Step::Done(if va >> MAX_PA_BITS != 0 {
            Err(WalkError::AddressSize)
        } else {
            Ok(Translation {
                ipa: va,
                writable: true,
                user: true,
            })
        });
    }
    walk_tables(regs, mem, va, write).unwrap_or_else(|e| Step::Done(Err(e)))
}

fn walk_tables(
    regs: &S1Regs,
    mem: &impl GuestMemory,
    va: u64,
    write: bool,
) -> Result<Step, WalkError> {
    let tcr = regs.tcr_el1;
    let be = regs.sctlr_el1 & SCTLR_EE != 0;
    let (pa_bits, pa52) = pa_bits(tcr)?;
    let range = select_range(regs, va)?;
    let shift = range.shift;
    let stride = shift - 3;
    // Levels needed to resolve va_bits - shift bits, stride bits per level;
    // va_bits - shift is in 1..=36, so 1..=4 levels.
    let nlevels = (range.va_bits - shift).div_ceil(stride);
    let start = 4 - nlevels;
    let mut lvl_shift = shift + (nlevels - 1) * stride;
    let mut idx_bits = range.va_bits - lvl_shift; // 1..=stride

    // TTBR: ASID in [63:48], BADDR in [47:1], CnP in [0]. BADDR is aligned
    // to the start table's size (at least 64 bytes); lower bits are RES0
    // and ignored here.
    let align = core::cmp::max(idx_bits + 3, 6);
    if pa52 && shift == 16 && range.ttbr & TTBR_OA52_64K != 0 {
        return Err(WalkError::AddressSize);
    }
    let mut table = range.ttbr & bits(47, align);
    if table >> pa_bits != 0 {
        return Err(WalkError::AddressSize);
    }

    let mut no_write = false;
    let mut no_el0 = false;
    // One read per level, at most four; `level` only increases.
    for level in start..=3 {
        let idx = (va >> lvl_shift) & bits(idx_bits - 1, 0);
        let daddr = table + idx * 8; // table < 2^48, idx * 8 < 2^14
        let desc = read_desc(mem, daddr, be)?;
        if desc & D_VALID == 0 {
            return Err(WalkError::Translation { level: level as u8 });
        }
        let typ = desc & D_TABLE != 0;
        if level < 3 && typ {
            if !range.hpd {
                no_write |= desc & D_APTABLE1 != 0;
                no_el0 |= desc & D_APTABLE0 != 0;
            }
            if pa52 && shift == 16 && desc & D_OA52_64K != 0 {
                return Err(WalkError::AddressSize);
            }
            let next = desc & bits(47, shift);
            if next >> pa_bits != 0 {
                return Err(WalkError::AddressSize);
            }
            table = next;
            lvl_shift -= stride;
            idx_bits = stride;
            continue;
        }
        // Level 3 with type 0b01 is reserved; blocks only at some levels.
        if (level == 3 && !typ) || (level < 3 && !block_allowed(shift, level)) {
            return Err(WalkError::Translation { level: level as u8 });
        }
        return leaf(
            mem, regs, &range, daddr, desc, lvl_shift, va, write, no_write, no_el0, pa_bits, pa52,
            be,
        );
    }
    // Unreachable in practice: level 3 always returns above.
    Err(WalkError::Translation { level: 3 })
}

#[allow(clippy::too_many_arguments)]
fn leaf(
    mem: &impl GuestMemory,
    regs: &S1Regs,
    range: &Range,
    daddr: u64,
    desc: u64,
    lvl_shift: u32,
    va: u64,
    write: bool,
    no_write: bool,
    no_el0: bool,
    pa_bits: u32,
    pa52: bool,
    be: bool,
) -> Result<Step, WalkError> {
    let tcr = regs.tcr_el1;
    if pa52 && range.shift == 16 && desc & D_OA52_64K != 0 {
        return Err(WalkError::AddressSize);
    }
    let oa = desc & bits(47, lvl_shift);
    if oa >> pa_bits != 0 {
        return Err(WalkError::AddressSize);
    }
    let ipa = oa | (va & bits(lvl_shift - 1, 0));

    let ha = tcr & TCR_HA != 0;
    // Hardware dirty management needs HA as well.
    let hd = ha && tcr & TCR_HD != 0;
    let af = desc & D_AF != 0;
    let ro = desc & D_AP2 != 0;
    let writable_now = !ro && !no_write;
    let clean = ro && hd && desc & D_DBM != 0 && !no_write;
    let user = desc & D_AP1 != 0 && !no_el0 && !range.e0pd;

    if !af && !ha {
        return Err(WalkError::AccessFlag);
    }
    if write && !writable_now && !clean {
        return Err(WalkError::Permission);
    }
    let set = if af { 0 } else { D_AF };
    let clear = if write && !writable_now { D_AP2 } else { 0 };
    if set | clear != 0 {
        if let Some(e) = update_low(mem, daddr, desc, set, clear, be)? {
            return Ok(Step::Retry(e));
        }
    }
    Ok(Step::Done(Ok(Translation {
        ipa,
        writable: writable_now || write,
        user,
    })))
}

/// Sets `set` and clears `clear` (both within bits `[31:0]`) in the descriptor
/// at `daddr`, which we read as `desc`. `Ok(Some(e))`: it changed, retry.
fn update_low(
    mem: &impl GuestMemory,
    daddr: u64,
    desc: u64,
    set: u64,
    clear: u64,
    be: bool,
) -> Result<Option<WalkError>, WalkError> {
    let lost = if clear != 0 {
        WalkError::Permission
    } else {
        WalkError::AccessFlag
    };
    let lo = desc as u32;
    let new_lo = (lo | set as u32) & !(clear as u32);
    // cmpxchg_u32 works on the little-endian word at the address; with
    // big-endian tables the low word is the second one, byte-swapped.
    let (addr, old_m, new_m) = if be {
        (daddr + 4, lo.swap_bytes(), new_lo.swap_bytes())
    } else {
        (daddr, lo, new_lo)
    };
    if mem.cmpxchg_u32(addr, old_m, new_m)? != old_m {
        return Ok(Some(lost));
    }
    if clear != 0 {
        let now = read_desc(mem, daddr, be)?;
        if now >> 32 != desc >> 32 {
            // The high half (DBM, OA) changed before our CAS: undo the
            // write permission we may have granted, then walk again.
            let ro_m = if be {
                (new_lo | D_AP2 as u32).swap_bytes()
            } else {
                new_lo | D_AP2 as u32
            };
            mem.cmpxchg_u32(addr, new_m, ro_m)?;
            return Ok(Some(lost));
        }
    }
    Ok(None)
}

/// Splits the guest buffer `[va, va + len)` at 4 KiB VA boundaries,
/// translates each piece (`write` as for [`translate`]) and calls
/// `f(ipa, len_in_page, offset_in_buf)` for it, in order.
///
/// Streaming: a piece is handed to `f` before the next one is translated,
/// so on failure `f` may already have run for earlier pieces. `len == 0`
/// translates nothing and succeeds. `len` is capped at [`MAX_ACCESS_LEN`];
/// a buffer whose last byte would wrap past 2^64 fails with `Wrap`.
pub fn for_each_page<M: GuestMemory, E>(
    regs: &S1Regs,
    mem: &M,
    va: u64,
    len: usize,
    write: bool,
    mut f: impl FnMut(u64, usize, usize) -> Result<(), E>,
) -> Result<(), AccessError<E>> {
    if len > MAX_ACCESS_LEN {
        return Err(AccessError::TooLong);
    }
    if len == 0 {
        return Ok(());
    }
    va.checked_add(len as u64 - 1).ok_or(AccessError::Wrap)?;
    let mut done = 0usize;
    while done < len {
        let cur = va + done as u64; // ≤ va + len - 1, checked above
        let room = PIECE_SIZE - (cur as usize & (PIECE_SIZE - 1));
        let n = core::cmp::min(room, len - done);
        let t =
            translate(regs, mem, cur, write).map_err(|err| AccessError::Walk { va: cur, err })?;
        f(t.ipa, n, done).map_err(AccessError::Callback)?;
        done += n;
    }
    Ok(())
}

/// Copies `buf.len()` bytes from guest VA `va` into `buf` (EL1 read
/// permission). On error `buf` holds an unspecified mix of guest bytes.
pub fn copy_from_guest<M: GuestMemory>(
    regs: &S1Regs,
    mem: &M,
    va: u64,
    buf: &mut [u8],
) -> Result<(), AccessError<GuestFault>> {
    let len = buf.len();
    for_each_page(regs, mem, va, len, false, |ipa, n, off| {
        mem.read(ipa, &mut buf[off..off + n])
    })
}

/// Copies `buf` to guest VA `va` (EL1 write permission).
///
/// Every piece is translated for write before any byte is written, so a
/// buffer that is unmapped or read-only anywhere is refused with the guest
/// untouched (except AF / dirty updates the hardware would also have made).
/// Partial writes remain possible, as with Xen's `copy_to_guest`, if another
/// vCPU changes the tables between the two passes or the IPA of a later
/// piece is refused at stage 2.
pub fn copy_to_guest<M: GuestMemory>(
    regs: &S1Regs,
    mem: &M,
    va: u64,
    buf: &[u8],
) -> Result<(), AccessError<GuestFault>> {
    let len = buf.len();
    for_each_page(regs, mem, va, len, true, |_, _, _| Ok::<(), GuestFault>(()))?;
    for_each_page(regs, mem, va, len, true, |ipa, n, off| {
        mem.write(ipa, &buf[off..off + n])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use hv_core::guest::fake::FakeRam;

    const RAM: u64 = 0x4000_0000;
    const RAM_LEN: usize = 32 << 20;

    // TCR_EL1 encodings.
    const TG0_4K: u64 = 0 << 14;
    const TG0_64K: u64 = 1 << 14;
    const TG0_16K: u64 = 2 << 14;
    const TG1_16K: u64 = 1 << 30;
    const TG1_4K: u64 = 2 << 30;
    const TG1_64K: u64 = 3 << 30;
    const IPS_40: u64 = 2 << 32;
    const IPS_48: u64 = 5 << 32;
    const IPS_52: u64 = 6 << 32;

    /// Linux arm64, 4K pages, 48-bit VA: T0SZ = T1SZ = 16.
    const TCR_LINUX_4K: u64 = 16 | (16 << 16) | TG0_4K | TG1_4K | IPS_48;

    /// Kernel RW page (AP = 00), AF set.
    const KRW: u64 = D_AF | 3;
    /// User RW page (AP = 01).
    const URW: u64 = D_AF | D_AP1 | 3;
    /// Kernel RO page (AP = 10).
    const KRO: u64 = D_AF | D_AP2 | 3;
    /// User RO page (AP = 11).
    const URO: u64 = D_AF | D_AP2 | D_AP1 | 3;

    /// Counts descriptor reads and CAS calls.
    struct Counting<'a> {
        ram: &'a FakeRam,
        reads: Cell<usize>,
        cas: Cell<usize>,
    }

    impl<'a> Counting<'a> {
        fn new(ram: &'a FakeRam) -> Self {
            Counting {
                ram,
                reads: Cell::new(0),
                cas: Cell::new(0),
            }
        }
    }

    impl GuestMemory for Counting<'_> {
        fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
            self.reads.set(self.reads.get() + 1);
            self.ram.read(ipa, buf)
        }
        fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
            self.ram.write(ipa, buf)
        }
        fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
            self.cas.set(self.cas.get() + 1);
            self.ram.cmpxchg_u32(ipa, old, new)
        }
        fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault> {
            self.ram.fetch_or_u64(ipa, bits)
        }
        fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault> {
            self.ram.fetch_and_u64(ipa, mask)
        }
    }

    /// Builds tables in a FakeRam the way an OS would. Tables are allocated
    /// one granule each from the bottom of RAM; data IPAs used by the tests
    /// are in the top half.
    struct Builder {
        ram: FakeRam,
        next: Cell<u64>,
        shift: u32,
        be: bool,
    }

    impl Builder {
        fn new(shift: u32) -> Self {
            Builder {
                ram: FakeRam::new(RAM, RAM_LEN),
                next: Cell::new(RAM),
                shift,
                be: false,
            }
        }

        fn alloc(&self) -> u64 {
            let a = self.next.get();
            self.next.set(a + (1 << self.shift));
            assert!(a + (1 << self.shift) <= RAM + RAM_LEN as u64 / 2);
            a
        }

        fn rd(&self, a: u64) -> u64 {
            let d = self.ram.read_u64(a).unwrap();
            if self.be {
                d.swap_bytes()
            } else {
                d
            }
        }

        fn wr(&self, a: u64, d: u64) {
            self.ram
                .write_u64(a, if self.be { d.swap_bytes() } else { d })
                .unwrap();
        }

        /// Address of the descriptor for `va` at `level`, creating tables
        /// (plain `0b11` descriptors) on the way.
        fn slot(&self, root: u64, va_bits: u32, va: u64, level: u32) -> u64 {
            let stride = self.shift - 3;
            let n = (va_bits - self.shift).div_ceil(stride);
            let start = 4 - n;
            let mut table = root;
            for l in start..=level {
                let s = self.shift + (3 - l) * stride;
                let ib = if l == start { va_bits - s } else { stride };
                let a = table + ((va >> s) & ((1 << ib) - 1)) * 8;
                if l == level {
                    return a;
                }
                let d = self.rd(a);
                if d & 3 == 3 {
                    table = d & bits(47, self.shift);
                } else {
                    let t = self.alloc();
                    self.wr(a, t | 3);
                    table = t;
                }
            }
            unreachable!()
        }

        /// Maps `va` → `oa` with a leaf at `level` (`attrs` includes the
        /// type bits: 3 for pages, 1 for blocks).
        fn map(&self, root: u64, va_bits: u32, va: u64, level: u32, oa: u64, attrs: u64) {
            let a = self.slot(root, va_bits, va, level);
            self.wr(a, oa | attrs);
        }
    }

    /// Linux-like 4K/48-bit setup: kernel map in TTBR1, user map in TTBR0.
    fn linux4k() -> (Builder, S1Regs) {
        let b = Builder::new(12);
        let t0 = b.alloc();
        let t1 = b.alloc();
        let regs = S1Regs {
            sctlr_el1: SCTLR_M,
            tcr_el1: TCR_LINUX_4K,
            // ASIDs and CnP must be ignored.
            ttbr0_el1: (0x42u64 << 48) | t0 | 1,
            ttbr1_el1: (0x7u64 << 48) | t1,
        };
        (b, regs)
    }

    fn t0(regs: &S1Regs) -> u64 {
        regs.ttbr0_el1 & bits(47, 12)
    }
    fn t1(regs: &S1Regs) -> u64 {
        regs.ttbr1_el1 & bits(47, 12)
    }

    const KVA: u64 = 0xffff_8000_0010_0000;
    const UVA: u64 = 0x0000_aaaa_dead_0000;
    const DATA: u64 = RAM + (RAM_LEN as u64 / 2);

    #[test]
    fn pages_kernel_and_user() {
        let (b, regs) = linux4k();
        b.map(t1(&regs), 48, KVA, 3, DATA, KRW);
        b.map(t0(&regs), 48, UVA, 3, DATA + 0x5000, URW);
        let m = Counting::new(&b.ram);
        let t = translate(&regs, &m, KVA + 0x123, false).unwrap();
        assert_eq!(
            t,
            Translation {
                ipa: DATA + 0x123,
                writable: true,
                user: false
            }
        );
        assert_eq!(m.reads.get(), 4);
        let t = translate(&regs, &m, UVA + 0xfff, true).unwrap();
        assert_eq!(
            t,
            Translation {
                ipa: DATA + 0x5fff,
                writable: true,
                user: true
            }
        );
        // Neighbouring page is not mapped: level 3 translation fault.
        assert_eq!(
            translate(&regs, &m, KVA + 0x1000, false),
            Err(WalkError::Translation { level: 3 })
        );
        // Nothing at level 0 for this half of TTBR1.
        assert_eq!(
            translate(&regs, &m, 0xffff_0000_0000_0000, false),
            Err(WalkError::Translation { level: 0 })
        );
        assert_eq!(m.cas.get(), 0);
    }

    #[test]
    fn blocks_4k() {
        let (b, regs) = linux4k();
        // 2 MiB block at level 2, 1 GiB block at level 1.
        b.map(
            t1(&regs),
            48,
            0xffff_8000_4000_0000,
            2,
            0x8020_0000,
            D_AF | 1,
        );
        b.map(
            t1(&regs),
            48,
            0xffff_8001_0000_0000,
            1,
            0xc000_0000,
            D_AF | 1,
        );
        let m = Counting::new(&b.ram);
        let t = translate(&regs, &m, 0xffff_8000_401f_fff8, true).unwrap();
        assert_eq!(t.ipa, 0x803f_fff8);
        assert_eq!(m.reads.get(), 3);
        let t = translate(&regs, &m, 0xffff_8001_3fff_0001, false).unwrap();
        assert_eq!(t.ipa, 0xffff_0001);
        // Low bits of a block's OA field are RES0: ignored.
        let a = b.slot(t1(&regs), 48, 0xffff_8000_4000_0000, 2);
        b.wr(a, 0x8020_0000 | 0x1f_f000 | D_AF | 1);
        assert_eq!(
            translate(&regs, &b.ram, 0xffff_8000_4000_0010, false)
                .unwrap()
                .ipa,
            0x8020_0010
        );
        // Level-0 block (needs DS) and level-3 type 0b01 are invalid.
        let a = b.slot(t0(&regs), 48, 0, 0);
        b.wr(a, D_AF | 1); // OA 0
        assert_eq!(
            translate(&regs, &b.ram, 0x1000, false),
            Err(WalkError::Translation { level: 0 })
        );
        b.map(t1(&regs), 48, KVA, 3, DATA, D_AF | 1);
        assert_eq!(
            translate(&regs, &b.ram, KVA, false),
            Err(WalkError::Translation { level: 3 })
        );
    }

    #[test]
    fn granule_16k_three_levels() {
        let b = Builder::new(14);
        let root = b.alloc();
        // 47-bit VA: T1SZ = 17, start level 1 (2048-entry table).
        let regs = S1Regs {
            sctlr_el1: SCTLR_M,
            tcr_el1: (17 << 16) | TG1_16K | 17 | TG0_16K | IPS_48,
            ttbr0_el1: 0,
            ttbr1_el1: root,
        };
        let va = 0xffff_8000_1234_4000u64;
        b.map(root, 47, va, 3, DATA + 0x8000, KRW);
        let m = Counting::new(&b.ram);
        assert_eq!(
            translate(&regs, &m, va + 0x3ffc, false).unwrap().ipa,
            DATA + 0xbffc
        );
        assert_eq!(m.reads.get(), 3);
        // 32 MiB block at level 2.
        let bva = 0xffff_8000_4000_0000u64;
        b.map(root, 47, bva, 2, 0x1_0200_0000, D_AF | 1);
        assert_eq!(
            translate(&regs, &b.ram, bva + 0x1ff_fff0, false)
                .unwrap()
                .ipa,
            0x1_03ff_fff0
        );
        // Level-1 block is reserved without DS.
        b.map(root, 47, 0xffff_c000_0000_0000, 1, 0, D_AF | 1);
        assert_eq!(
            translate(&regs, &b.ram, 0xffff_c000_0000_0000, false),
            Err(WalkError::Translation { level: 1 })
        );
        // 48-bit with 16K: four levels, level 0 has two entries.
        let root0 = b.alloc();
        let regs48 = S1Regs {
            tcr_el1: (16 << 16) | TG1_16K | TG0_16K | 16 | IPS_48,
            ttbr1_el1: root0,
            ..regs
        };
        b.map(root0, 48, 0xffff_ffff_ffff_c000, 3, DATA, KRO);
        let m = Counting::new(&b.ram);
        assert_eq!(
            translate(&regs48, &m, 0xffff_ffff_ffff_c001, false)
                .unwrap()
                .ipa,
            DATA + 1
        );
        assert_eq!(m.reads.get(), 4);
    }

    #[test]
    fn granule_64k_two_and_three_levels() {
        let b = Builder::new(16);
        let root = b.alloc();
        // 42-bit VA: T0SZ = 22, two levels starting at 2 (8192 entries).
        let regs = S1Regs {
            sctlr_el1: SCTLR_M,
            tcr_el1: 22 | TG0_64K | (22 << 16) | TG1_64K | IPS_48,
            ttbr0_el1: root,
            ttbr1_el1: 0,
        };
        let va = 0x0000_0123_4567_0000u64;
        b.map(root, 42, va, 3, DATA + 0x10000, URW);
        let m = Counting::new(&b.ram);
        assert_eq!(
            translate(&regs, &m, va + 0xfffe, true).unwrap().ipa,
            DATA + 0x1fffe
        );
        assert_eq!(m.reads.get(), 2);
        // 512 MiB block at level 2.
        b.map(root, 42, 0x0000_0200_0000_0000, 2, 0x2000_0000, D_AF | 1);
        assert_eq!(
            translate(&regs, &b.ram, 0x0000_0200_1fff_ffff, false)
                .unwrap()
                .ipa,
            0x3fff_ffff
        );
        // 48-bit: three levels starting at 1 (64-entry table, 512-byte aligned).
        let root1 = b.alloc() + 0x200;
        let regs48 = S1Regs {
            tcr_el1: 16 | TG0_64K | IPS_48,
            ttbr0_el1: root1,
            ..regs
        };
        b.map(root1, 48, 0x0000_ffff_0001_0000, 3, DATA, URO);
        let m = Counting::new(&b.ram);
        let t = translate(&regs48, &m, 0x0000_ffff_0001_0042, false).unwrap();
        assert_eq!(
            t,
            Translation {
                ipa: DATA + 0x42,
                writable: false,
                user: true
            }
        );
        assert_eq!(m.reads.get(), 3);
        // Level-1 block (4 TiB) needs 52-bit PA: translation fault.
        b.map(root1, 48, 0x0000_0400_0000_0000, 1, 0, D_AF | 1);
        assert_eq!(
            translate(&regs48, &b.ram, 0x0000_0400_0000_0000, false),
            Err(WalkError::Translation { level: 1 })
        );
        // 52-bit VA (T0SZ = 12, FEAT_LVA): level 1 has 1024 entries.
        let root52 = b.alloc();
        let regs52 = S1Regs {
            tcr_el1: 12 | TG0_64K | IPS_48,
            ttbr0_el1: root52,
            ..regs
        };
        b.map(root52, 52, 0x000f_ffff_fff0_0000, 3, DATA, URW);
        assert_eq!(
            translate(&regs52, &b.ram, 0x000f_ffff_fff0_0008, false)
                .unwrap()
                .ipa,
            DATA + 8
        );
    }

    #[test]
    fn mmu_off_is_flat() {
        let b = Builder::new(12);
        let regs = S1Regs {
            sctlr_el1: 0,
            tcr_el1: 0x1234,
            ttbr0_el1: 0,
            ttbr1_el1: 0,
        };
        let m = Counting::new(&b.ram);
        let t = translate(&regs, &m, 0x4000_1234, true).unwrap();
        assert_eq!(
            t,
            Translation {
                ipa: 0x4000_1234,
                writable: true,
                user: true
            }
        );
        assert_eq!(m.reads.get(), 0);
        assert_eq!(
            translate(&regs, &m, 1 << 48, false),
            Err(WalkError::AddressSize)
        );
        let mut buf = [0u8; 3];
        b.ram.write(RAM + 0xffe, &[1, 2, 3]).unwrap();
        copy_from_guest(&regs, &b.ram, RAM + 0xffe, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3]);
    }

    #[test]
    fn access_flag() {
        let (b, mut regs) = linux4k();
        b.map(t1(&regs), 48, KVA, 3, DATA, KRW & !D_AF);
        let m = Counting::new(&b.ram);
        assert_eq!(translate(&regs, &m, KVA, false), Err(WalkError::AccessFlag));
        assert_eq!(m.cas.get(), 0);
        // Hardware AF management: the walk sets AF, as the MMU would.
        regs.tcr_el1 |= TCR_HA;
        assert_eq!(translate(&regs, &m, KVA, false).unwrap().ipa, DATA);
        let a = b.slot(t1(&regs), 48, KVA, 3);
        assert_eq!(b.rd(a), DATA | KRW);
        assert_eq!(m.cas.get(), 1);
        // Already set: no further update.
        translate(&regs, &m, KVA, false).unwrap();
        assert_eq!(m.cas.get(), 1);
        // AF fault has priority over permission.
        regs.tcr_el1 &= !TCR_HA;
        b.wr(a, DATA | (KRO & !D_AF));
        assert_eq!(translate(&regs, &m, KVA, true), Err(WalkError::AccessFlag));
    }

    #[test]
    fn permissions() {
        let (b, mut regs) = linux4k();
        b.map(t1(&regs), 48, KVA, 3, DATA, KRO);
        b.map(t0(&regs), 48, UVA, 3, DATA, URO);
        let t = translate(&regs, &b.ram, KVA, false).unwrap();
        assert_eq!(
            t,
            Translation {
                ipa: DATA,
                writable: false,
                user: false
            }
        );
        assert_eq!(
            translate(&regs, &b.ram, KVA, true),
            Err(WalkError::Permission)
        );
        let t = translate(&regs, &b.ram, UVA, false).unwrap();
        assert_eq!(
            t,
            Translation {
                ipa: DATA,
                writable: false,
                user: true
            }
        );
        assert_eq!(
            translate(&regs, &b.ram, UVA, true),
            Err(WalkError::Permission)
        );

        // APTable on the level-1 table descriptor of a user RW page.
        let u2 = UVA + 0x1000;
        b.map(t0(&regs), 48, u2, 3, DATA, URW);
        assert!(translate(&regs, &b.ram, u2, true).unwrap().user);
        let a = b.slot(t0(&regs), 48, u2, 1);
        let d = b.rd(a);
        b.wr(a, d | D_APTABLE1);
        assert_eq!(
            translate(&regs, &b.ram, u2, true),
            Err(WalkError::Permission)
        );
        let t = translate(&regs, &b.ram, u2, false).unwrap();
        assert!(!t.writable && t.user);
        b.wr(a, d | D_APTABLE0);
        let t = translate(&regs, &b.ram, u2, true).unwrap();
        assert!(t.writable && !t.user);
        // HPD0: APTable ignored.
        b.wr(a, d | D_APTABLE0 | D_APTABLE1);
        regs.tcr_el1 |= TCR_HPD0;
        let t = translate(&regs, &b.ram, u2, true).unwrap();
        assert!(t.writable && t.user);
        // E0PD0: EL0 may not use the TTBR0 range.
        regs.tcr_el1 |= TCR_E0PD0;
        assert!(!translate(&regs, &b.ram, u2, false).unwrap().user);
    }

    #[test]
    fn dirty_bit_management() {
        let (b, mut regs) = linux4k();
        // Linux PAGE_SHARED, clean: PTE_RDONLY (AP[2]) + PTE_WRITE (DBM).
        b.map(t0(&regs), 48, UVA, 3, DATA, URO | D_DBM);
        let a = b.slot(t0(&regs), 48, UVA, 3);
        // HD = 0: DBM is just a software bit.
        assert_eq!(
            translate(&regs, &b.ram, UVA, true),
            Err(WalkError::Permission)
        );
        regs.tcr_el1 |= TCR_HA | TCR_HD;
        // Reads don't dirty it and report it not (yet) writable.
        let t = translate(&regs, &b.ram, UVA, false).unwrap();
        assert!(!t.writable);
        assert_eq!(b.rd(a), DATA | URO | D_DBM);
        // A write marks it dirty (clears AP[2]) like the MMU would.
        let t = translate(&regs, &b.ram, UVA, true).unwrap();
        assert!(t.writable && t.user);
        assert_eq!(b.rd(a), DATA | (URO & !D_AP2) | D_DBM);
        // APTable write-deny still wins over DBM.
        b.wr(a, DATA | URO | D_DBM);
        let a1 = b.slot(t0(&regs), 48, UVA, 2);
        let d1 = b.rd(a1);
        b.wr(a1, d1 | D_APTABLE1);
        assert_eq!(
            translate(&regs, &b.ram, UVA, true),
            Err(WalkError::Permission)
        );
        assert_eq!(b.rd(a), DATA | URO | D_DBM);
    }

    /// A guest that changes the descriptor's high word (clears DBM) whenever
    /// we CAS its low word: our dirty update must be undone.
    #[test]
    fn dirty_update_race_is_undone() {
        struct Racy<'a> {
            ram: &'a FakeRam,
            slot: u64,
        }
        impl GuestMemory for Racy<'_> {
            fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
                self.ram.read(ipa, buf)
            }
            fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
                self.ram.write(ipa, buf)
            }
            fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
                if ipa == self.slot && new & D_AP2 as u32 == 0 {
                    // Guest write-protects (fork) just before our CAS.
                    let d = self.ram.read_u64(ipa)?;
                    self.ram.write_u64(ipa, d & !D_DBM)?;
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
        let (b, mut regs) = linux4k();
        regs.tcr_el1 |= TCR_HA | TCR_HD;
        b.map(t0(&regs), 48, UVA, 3, DATA, URO | D_DBM);
        let a = b.slot(t0(&regs), 48, UVA, 3);
        let m = Racy {
            ram: &b.ram,
            slot: a,
        };
        assert_eq!(translate(&regs, &m, UVA, true), Err(WalkError::Permission));
        // Read-only again, DBM gone: truly write-protected.
        assert_eq!(b.rd(a), DATA | URO);
    }

    #[test]
    fn epd_disables_walks() {
        let (b, mut regs) = linux4k();
        b.map(t0(&regs), 48, UVA, 3, DATA, URW);
        b.map(t1(&regs), 48, KVA, 3, DATA, KRW);
        regs.tcr_el1 |= TCR_EPD0;
        assert_eq!(
            translate(&regs, &b.ram, UVA, false),
            Err(WalkError::Translation { level: 0 })
        );
        assert!(translate(&regs, &b.ram, KVA, false).is_ok());
        regs.tcr_el1 ^= TCR_EPD0 | TCR_EPD1;
        assert!(translate(&regs, &b.ram, UVA, false).is_ok());
        assert_eq!(
            translate(&regs, &b.ram, KVA, false),
            Err(WalkError::Translation { level: 0 })
        );
    }

    #[test]
    fn top_byte_ignore_and_holes() {
        let (b, mut regs) = linux4k();
        b.map(t0(&regs), 48, UVA, 3, DATA, URW);
        b.map(t1(&regs), 48, KVA, 3, DATA + 0x1000, KRW);
        let tagged_u = UVA | (0x5a << 56);
        let tagged_k = KVA & !(0xff << 56) | (0xf2 << 56); // VA[55] still 1
        assert_eq!(
            translate(&regs, &b.ram, tagged_u, false),
            Err(WalkError::Translation { level: 0 })
        );
        regs.tcr_el1 |= TCR_TBI0;
        assert_eq!(
            translate(&regs, &b.ram, tagged_u + 7, false).unwrap().ipa,
            DATA + 7
        );
        // TBI0 doesn't apply to the TTBR1 range.
        assert_eq!(
            translate(&regs, &b.ram, tagged_k, false),
            Err(WalkError::Translation { level: 0 })
        );
        regs.tcr_el1 |= TCR_TBI1;
        assert_eq!(
            translate(&regs, &b.ram, tagged_k, false).unwrap().ipa,
            DATA + 0x1000
        );

        // Holes between the two ranges, whatever the top byte.
        for va in [
            1u64 << 48,
            0x0000_ffff_ffff_ffff + 1,
            0x007f_ffff_ffff_ffff,
            0x0080_0000_0000_0000,
            0xfffe_ffff_ffff_ffff,
            0xff7f_0000_0000_0000,
            0x3301_0000_0000_0000,
        ] {
            assert_eq!(
                translate(&regs, &b.ram, va, false),
                Err(WalkError::Translation { level: 0 }),
                "{va:#x}"
            );
        }
        // Smaller T0SZ range (39-bit VA, 3 levels for 4K).
        regs.tcr_el1 = (regs.tcr_el1 & !0x3f) | 25;
        assert_eq!(
            translate(&regs, &b.ram, 1 << 39, false),
            Err(WalkError::Translation { level: 0 })
        );
    }

    #[test]
    fn address_size_and_bad_config() {
        let (b, mut regs) = linux4k();
        b.map(t1(&regs), 48, KVA, 3, 0x100_0000_0000, KRW); // 2^40
        assert_eq!(
            translate(&regs, &b.ram, KVA, false).unwrap().ipa,
            0x100_0000_0000
        );
        regs.tcr_el1 = (regs.tcr_el1 & !(7 << 32)) | IPS_40;
        assert_eq!(
            translate(&regs, &b.ram, KVA, false),
            Err(WalkError::AddressSize)
        );
        // IPS = 52 with 4K: treated as 48.
        regs.tcr_el1 = (regs.tcr_el1 & !(7 << 32)) | IPS_52;
        assert!(translate(&regs, &b.ram, KVA, false).is_ok());
        // A table address above IPS.
        let a = b.slot(t1(&regs), 48, KVA, 1);
        let d = b.rd(a);
        b.wr(a, d | (1 << 45));
        regs.tcr_el1 = (regs.tcr_el1 & !(7 << 32)) | IPS_40;
        assert_eq!(
            translate(&regs, &b.ram, KVA, false),
            Err(WalkError::AddressSize)
        );
        // TTBR above IPS.
        let mut r2 = regs;
        r2.ttbr0_el1 |= 1 << 44;
        assert_eq!(
            translate(&r2, &b.ram, UVA, false),
            Err(WalkError::AddressSize)
        );

        let bad = |tcr: u64| S1Regs {
            tcr_el1: tcr,
            ..regs
        };
        for tcr in [
            TCR_LINUX_4K | (7 << 32),    // reserved IPS
            TCR_LINUX_4K | TCR_DS,       // 52-bit formats
            (TCR_LINUX_4K & !0x3f) | 15, // T0SZ too small
            (TCR_LINUX_4K & !0x3f) | 49, // T0SZ too large
            TCR_LINUX_4K | (3 << 14),    // reserved TG0
        ] {
            assert_eq!(
                translate(&bad(tcr), &b.ram, UVA, false),
                Err(WalkError::BadConfig),
                "{tcr:#x}"
            );
        }
        // Reserved TG1 only affects the TTBR1 range.
        let r = bad(TCR_LINUX_4K & !(3 << 30));
        assert_eq!(translate(&r, &b.ram, KVA, false), Err(WalkError::BadConfig));
        assert_eq!(
            translate(&r, &b.ram, UVA, false),
            Err(WalkError::Translation { level: 0 })
        );
    }

    #[test]
    fn ips52_with_64k_oa_high_bits() {
        let b = Builder::new(16);
        let root = b.alloc();
        let mut regs = S1Regs {
            sctlr_el1: SCTLR_M,
            tcr_el1: 22 | TG0_64K | IPS_52,
            ttbr0_el1: root,
            ttbr1_el1: 0,
        };
        b.map(root, 42, 0x10000, 3, DATA, URW);
        assert!(translate(&regs, &b.ram, 0x10000, false).is_ok());
        let a = b.slot(root, 42, 0x10000, 3);
        b.wr(a, DATA | URW | (1 << 12)); // OA[48]
        assert_eq!(
            translate(&regs, &b.ram, 0x10000, false),
            Err(WalkError::AddressSize)
        );
        // Under IPS = 48 those bits are RES0: ignored.
        regs.tcr_el1 = 22 | TG0_64K | IPS_48;
        assert_eq!(translate(&regs, &b.ram, 0x10000, false).unwrap().ipa, DATA);
    }

    #[test]
    fn guest_faults_from_bad_pointers() {
        let (b, mut regs) = linux4k();
        b.map(t1(&regs), 48, KVA, 2, 0, 0); // creates the tables
        let a = b.slot(t1(&regs), 48, KVA, 2);
        // Next-level table outside RAM.
        b.wr(a, 0x1_0000_0000 | 3);
        assert_eq!(
            translate(&regs, &b.ram, KVA, false),
            Err(WalkError::Guest(GuestFault::Unmapped(0x1_0000_0800)))
        );
        // TTBR outside RAM.
        regs.ttbr0_el1 = 0x1000;
        assert_eq!(
            translate(&regs, &b.ram, 0x80_0000_0000, false),
            Err(WalkError::Guest(GuestFault::Unmapped(0x1008)))
        );
        // Translating to an IPA outside RAM is fine; accessing it is not.
        b.wr(a, 0x2000_0000 | D_AF | 1);
        assert_eq!(
            translate(&regs, &b.ram, KVA, false).unwrap().ipa,
            0x2010_0000
        );
        let mut buf = [0u8; 4];
        assert_eq!(
            copy_from_guest(&regs, &b.ram, KVA, &mut buf),
            Err(AccessError::Callback(GuestFault::Unmapped(0x2010_0000)))
        );
        // AF update on a table we can read but that the memory refuses to CAS
        // reports the guest fault.
        struct NoCas<'a>(&'a FakeRam);
        impl GuestMemory for NoCas<'_> {
            fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
                self.0.read(ipa, buf)
            }
            fn write(&self, _: u64, _: &[u8]) -> Result<(), GuestFault> {
                unreachable!()
            }
            fn cmpxchg_u32(&self, ipa: u64, _: u32, _: u32) -> Result<u32, GuestFault> {
                Err(GuestFault::ReadOnly(ipa))
            }
            fn fetch_or_u64(&self, _: u64, _: u64) -> Result<u64, GuestFault> {
                unreachable!()
            }
            fn fetch_and_u64(&self, _: u64, _: u64) -> Result<u64, GuestFault> {
                unreachable!()
            }
        }
        regs.tcr_el1 |= TCR_HA;
        b.wr(a, 0x2000_0000 | 1);
        assert_eq!(
            translate(&regs, &NoCas(&b.ram), KVA, false),
            Err(WalkError::Guest(GuestFault::ReadOnly(a)))
        );
    }

    #[test]
    fn self_referencing_tables_terminate() {
        let (b, regs) = linux4k();
        let root = t1(&regs);
        // Every entry of the root table points at the root table itself.
        for i in 0..512 {
            b.wr(root + i * 8, root | D_AF | 3);
        }
        let m = Counting::new(&b.ram);
        // Four reads, then the level-3 "page" is the table itself (the
        // classic recursive mapping: legal, and what the MMU would do).
        let t = translate(&regs, &m, KVA + 0x18, true).unwrap();
        assert_eq!(t.ipa, root + 0x18);
        assert_eq!(m.reads.get(), 4);
        // A table pointing back at an earlier level, with block bits at
        // level 0: faults without looping.
        b.wr(root + 256 * 8, root | D_AF | 1);
        assert_eq!(
            translate(&regs, &m, 0xffff_8000_0000_0000, false),
            Err(WalkError::Translation { level: 0 })
        );
    }

    /// Random descriptors everywhere: never panic, never more than four
    /// descriptor reads, never more than MAX_ATTEMPTS CAS rounds.
    #[test]
    fn hostile_tables_fuzz() {
        let b = Builder::new(12);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // 64 KiB of RAM filled with descriptors pointing mostly inside it.
        for i in 0..(64 * 1024 / 8) {
            let r = rnd();
            let d = match r % 4 {
                0 => r,
                1 => (RAM + (r >> 20) % 0x10000) | (r & 0xfff) | (r & bits(63, 50)),
                _ => ((RAM + (r >> 20) % 0x10000) & !0xfff) | (r & 0xfff) | 3,
            };
            b.wr(RAM + i * 8, d);
        }
        for _ in 0..20_000 {
            let r = rnd();
            let tg0 = (r >> 14) & 3;
            let tcr = (rnd() & !(0x3f | (0x3f << 16) | (3 << 14)))
                | (12 + r % 40)
                | ((12 + (r >> 8) % 40) << 16)
                | (tg0.min(2) << 14);
            let regs = S1Regs {
                sctlr_el1: rnd() | SCTLR_M,
                tcr_el1: tcr,
                ttbr0_el1: (RAM + (r >> 32) % 0x10000) | (r & bits(63, 48)),
                ttbr1_el1: RAM + (r >> 40) % 0x10000,
            };
            let m = Counting::new(&b.ram);
            let va = rnd();
            let _ = translate(&regs, &m, va, r & 1 != 0);
            // Per attempt: ≤ 4 walk reads + 1 verification read.
            assert!(
                m.reads.get() <= (MAX_ATTEMPTS as usize) * 5,
                "{}",
                m.reads.get()
            );
            assert!(m.cas.get() <= (MAX_ATTEMPTS as usize) * 2);
        }
    }

    #[test]
    fn big_endian_tables() {
        let mut b = Builder::new(12);
        b.be = true;
        let root = b.alloc();
        let regs = S1Regs {
            sctlr_el1: SCTLR_M | SCTLR_EE,
            tcr_el1: TCR_LINUX_4K | TCR_HA | TCR_HD,
            ttbr0_el1: 0,
            ttbr1_el1: root,
        };
        b.map(root, 48, KVA, 3, DATA, (KRO & !D_AF) | D_DBM);
        let t = translate(&regs, &b.ram, KVA + 5, true).unwrap();
        assert_eq!(t.ipa, DATA + 5);
        let a = b.slot(root, 48, KVA, 3);
        assert_eq!(b.rd(a), DATA | KRW | D_DBM);
    }

    /// User pages 0, 1 (RW, discontiguous IPAs), 2 (unmapped), 3 (RW),
    /// 4 (RO).
    fn straddle() -> (Builder, S1Regs) {
        let (b, regs) = linux4k();
        b.map(t0(&regs), 48, UVA, 3, DATA + 0x3000, URW);
        b.map(t0(&regs), 48, UVA + 0x1000, 3, DATA + 0x1000, URW);
        b.map(t0(&regs), 48, UVA + 0x3000, 3, DATA + 0x2000, URW);
        b.map(t0(&regs), 48, UVA + 0x4000, 3, DATA + 0x4000, URO);
        (b, regs)
    }

    #[test]
    fn for_each_page_splits() {
        let (b, regs) = straddle();
        let mut pieces = alloc::vec::Vec::new();
        for_each_page(&regs, &b.ram, UVA + 0xff0, 0x1010, false, |ipa, n, off| {
            pieces.push((ipa, n, off));
            Ok::<(), ()>(())
        })
        .unwrap();
        // The last 0x10 bytes are in the third page, which is unmapped.
        assert_eq!(
            pieces,
            [(DATA + 0x3ff0, 0x10, 0), (DATA + 0x1000, 0x1000, 0x10)]
        );
        pieces.clear();
        let r = for_each_page(&regs, &b.ram, UVA + 0xff0, 0x1020, false, |ipa, n, off| {
            pieces.push((ipa, n, off));
            Ok::<(), ()>(())
        });
        assert_eq!(
            r,
            Err(AccessError::Walk {
                va: UVA + 0x2000,
                err: WalkError::Translation { level: 3 }
            })
        );
        assert_eq!(pieces.len(), 2);
        // Callback errors stop the walk.
        let mut calls = 0;
        let r = for_each_page(&regs, &b.ram, UVA, 0x2000, false, |_, _, _| {
            calls += 1;
            Err("stop")
        });
        assert_eq!((r, calls), (Err(AccessError::Callback("stop")), 1));
        // Length zero: nothing translated (even at an unmapped VA).
        let r = for_each_page(&regs, &b.ram, 0xdead, 0, true, |_, _, _| Err("called"));
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn lengths_are_bounded_and_do_not_wrap() {
        let (b, regs) = straddle();
        let never = |_: u64, _: usize, _: usize| -> Result<(), ()> { panic!("called") };
        assert_eq!(
            for_each_page(&regs, &b.ram, UVA, MAX_ACCESS_LEN + 1, false, never),
            Err(AccessError::TooLong)
        );
        assert_eq!(
            for_each_page(&regs, &b.ram, UVA, usize::MAX, false, never),
            Err(AccessError::TooLong)
        );
        assert_eq!(
            for_each_page(&regs, &b.ram, u64::MAX - 10, 12, false, never),
            Err(AccessError::Wrap)
        );
        // Exactly reaching the top of the VA space is not a wrap.
        let r = for_each_page(&regs, &b.ram, u64::MAX - 10, 11, false, never);
        assert_eq!(
            r,
            Err(AccessError::Walk {
                va: u64::MAX - 10,
                err: WalkError::Translation { level: 0 }
            })
        );
        // The maximum length is accepted (and fails on the first hole).
        let mut n = 0;
        let r = for_each_page(&regs, &b.ram, UVA, MAX_ACCESS_LEN, false, |_, l, _| {
            n += l;
            Ok::<(), ()>(())
        });
        assert_eq!(
            r,
            Err(AccessError::Walk {
                va: UVA + 0x2000,
                err: WalkError::Translation { level: 3 }
            })
        );
        assert_eq!(n, 0x2000);
    }

    #[test]
    fn copies_across_pages() {
        let (b, regs) = straddle();
        let data: alloc::vec::Vec<u8> = (0..0x1800u32).map(|i| i as u8 ^ (i >> 8) as u8).collect();
        copy_to_guest(&regs, &b.ram, UVA + 0x800, &data).unwrap();
        // Landed in the two (discontiguous) IPA pages.
        let mut p = [0u8; 0x800];
        b.ram.read(DATA + 0x3800, &mut p).unwrap();
        assert_eq!(&p[..], &data[..0x800]);
        let mut back = alloc::vec![0u8; data.len()];
        copy_from_guest(&regs, &b.ram, UVA + 0x800, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn copy_to_guest_is_all_or_nothing_on_walk_failure() {
        let (b, regs) = straddle();
        let before: alloc::vec::Vec<u8> = b.ram.bytes.borrow().clone();
        // Second page unmapped.
        let r = copy_to_guest(&regs, &b.ram, UVA + 0x1ff0, &[0xaa; 0x20]);
        assert_eq!(
            r,
            Err(AccessError::Walk {
                va: UVA + 0x2000,
                err: WalkError::Translation { level: 3 }
            })
        );
        // Second page read-only.
        let r = copy_to_guest(&regs, &b.ram, UVA + 0x3ff0, &[0xaa; 0x20]);
        assert_eq!(
            r,
            Err(AccessError::Walk {
                va: UVA + 0x4000,
                err: WalkError::Permission
            })
        );
        assert!(*b.ram.bytes.borrow() == before, "guest memory modified");
        // Reading across into the read-only page is fine.
        let mut buf = [0u8; 0x20];
        copy_from_guest(&regs, &b.ram, UVA + 0x3ff0, &mut buf).unwrap();
        // A streaming for_each_page with write = true would have handed the
        // first piece out before failing; copy_to_guest checked first.
        let mut first = 0;
        let r = for_each_page(&regs, &b.ram, UVA + 0x3ff0, 0x20, true, |_, _, _| {
            first += 1;
            Ok::<(), ()>(())
        });
        assert!(r.is_err() && first == 1);
    }
}
