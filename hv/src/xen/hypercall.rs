//! Xen hypercalls (`HVC #0xEA1`, number in x16, arguments x0-x4, result in
//! x0) as Xen 4.17 on Arm answers them. Pointer arguments are guest virtual
//! addresses of the calling vCPU, translated through its own stage-1 tables
//! and the domain's stage-2; anything that does not map is `-EFAULT`.

#![allow(non_upper_case_globals)] // Xen's constant names, matched as patterns

use alloc::vec::Vec;
use super::mem::DomMem;
use super::notify;
use crate::domain::{self, DomRef, Domain, ForeignMap};
use crate::hw::sysreg;
use crate::platform::Tables;
use crate::trap::Frame;
use hv_arm::s1walk::{self, S1Regs};
use hv_arm::stage2::{Access, MemType, TableMemory};
use hv_core::evtchn::{self, Peer};
use hv_core::grant::{self, CopyEnv, GrantMapper, GrantState, GrantTable};
use hv_core::guest::GuestFault;
use xen_abi::errno::*;
use xen_abi::event_channel::*;
use xen_abi::grant_table::*;
use xen_abi::memory::*;
use xen_abi::xen::*;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub(super) type R = Result<i64, i32>;

/// Xen's `INVALID_GFN` (`~0`).
const INVALID_GFN: u64 = u64::MAX;

/// Most elements one grant-table or memory call may carry (Xen preempts
/// long calls with continuations; we refuse absurd counts instead).
const MAX_BATCH: u64 = 1 << 16;
/// Work units (grant ops, extents, console chunks, multicall entries) one
/// trap may do in all, so a multicall cannot multiply the caps above.
const TRAP_BUDGET: u32 = 1 << 16;

/// Everything one hypercall needs about its caller.
pub struct Ctx<'a> {
    pub dom: &'a Domain,
    pub dref: &'a DomRef,
    pub vcpu: usize,
    pub(super) regs: S1Regs,
    budget: core::cell::Cell<u32>,
    /// Set by a call that stopped early and wants to be re-issued with
    /// these (x0, x1): Xen's hypercall continuation.
    cont: core::cell::Cell<Option<[u64; 2]>>,
}

impl<'a> Ctx<'a> {
    fn new(dref: &'a DomRef, vcpu: usize) -> Self {
        let dom: &'a Domain = dref;
        let regs = S1Regs {
            sctlr_el1: sysreg::sctlr_el1::read(),
            tcr_el1: sysreg::tcr_el1::read(),
            ttbr0_el1: sysreg::ttbr0_el1::read(),
            ttbr1_el1: sysreg::ttbr1_el1::read(),
        };
        Ctx { dom, dref, vcpu, regs, budget: core::cell::Cell::new(TRAP_BUDGET), cont: core::cell::Cell::new(None) }
    }

    /// Charge `n` work units to this trap; `-E2BIG` once it has done enough.
    pub(super) fn spend(&self, n: u32) -> Result<(), i32> {
        let left = self.budget.get().checked_sub(n).ok_or(E2BIG)?;
        self.budget.set(left);
        Ok(())
    }

    pub(super) fn mem(&self) -> DomMem<'a> {
        DomMem(self.dom)
    }

    pub(super) fn privileged(&self) -> bool {
        self.dom.id == 0
    }

    pub(super) fn read<T: FromBytes + IntoBytes + KnownLayout + Immutable>(&self, va: u64) -> Result<T, i32> {
        let mut v = T::new_zeroed();
        s1walk::copy_from_guest(&self.regs, &self.mem(), va, v.as_mut_bytes()).map_err(|_| EFAULT)?;
        Ok(v)
    }

    pub(super) fn write<T: IntoBytes + Immutable>(&self, va: u64, v: &T) -> Result<(), i32> {
        s1walk::copy_to_guest(&self.regs, &self.mem(), va, v.as_bytes()).map_err(|_| EFAULT)
    }

    fn read_bytes(&self, va: u64, buf: &mut [u8]) -> Result<(), i32> {
        s1walk::copy_from_guest(&self.regs, &self.mem(), va, buf).map_err(|_| EFAULT)
    }

    fn write_bytes(&self, va: u64, buf: &[u8]) -> Result<(), i32> {
        s1walk::copy_to_guest(&self.regs, &self.mem(), va, buf).map_err(|_| EFAULT)
    }

    /// The domain `dom` names, if this call may act on it: itself, or any
    /// live domain for the privileged domain. As Xen: a domain that does
    /// not exist is `-ESRCH` before any privilege check, else `-EPERM`.
    pub(super) fn target(&self, dom: u16) -> Result<DomRef, i32> {
        if dom == DOMID_SELF || dom == self.dom.id {
            return Ok(self.dref.clone());
        }
        let d = domain::get(dom).ok_or(ESRCH)?;
        if self.privileged() {
            Ok(d)
        } else {
            Err(EPERM)
        }
    }

    /// `dom` must name the caller (operations only offered on oneself).
    fn self_only(&self, dom: u16) -> Result<(), i32> {
        if dom == DOMID_SELF || dom == self.dom.id {
            Ok(())
        } else if domain::get(dom).is_none() {
            Err(ESRCH)
        } else if self.privileged() {
            Err(EOPNOTSUPP)
        } else {
            Err(EPERM)
        }
    }
}

/// Entry from the trap handler.
pub fn handle(dom: &DomRef, vcpu: usize, frame: &mut Frame) {
    let ctx = Ctx::new(dom, vcpu);
    let a = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]];
    let r = dispatch(&ctx, frame.x[16], a, true);
    match ctx.cont.get() {
        // Re-issue the HVC (x16 still holds the number) with the rest of
        // the work: the guest takes its interrupts in between.
        Some([x0, x1]) => {
            frame.x[0] = x0;
            frame.x[1] = x1;
            frame.elr -= 4;
        }
        None => frame.x[0] = r as u64,
    }
}

fn dispatch(ctx: &Ctx, nr: u64, a: [u64; 5], top: bool) -> i64 {
    let r: R = match nr {
        HYPERVISOR_xen_version => version(ctx, a[0], a[1]),
        HYPERVISOR_memory_op => memory_op(ctx, a[0], a[1]),
        HYPERVISOR_grant_table_op => grant_table_op(ctx, a[0], a[1], a[2]),
        HYPERVISOR_event_channel_op => event_channel_op(ctx, a[0], a[1]),
        HYPERVISOR_sched_op => sched_op(ctx, a[0], a[1]),
        HYPERVISOR_vcpu_op => vcpu_op(ctx, a[0], a[1], a[2]),
        HYPERVISOR_hvm_op => hvm_op(ctx, a[0], a[1]),
        HYPERVISOR_console_io => console_io(ctx, a[0], a[1], a[2]),
        HYPERVISOR_vm_assist => vm_assist(a[0] as u32, a[1] as u32),
        HYPERVISOR_platform_op => platform_op(ctx, a[0]),
        HYPERVISOR_multicall if top => multicall(ctx, a[0], a[1] as u32),
        // Xen: already in a multicall.
        HYPERVISOR_multicall => Err(EINVAL),
        // No PCI passthrough control, no XSM/FLASK: Xen answers these -ENOSYS too.
        HYPERVISOR_physdev_op | HYPERVISOR_xsm_op => Err(ENOSYS),
        HYPERVISOR_sysctl => super::control::sysctl(ctx, a[0]),
        HYPERVISOR_domctl => super::control::domctl(ctx, a[0]),
        _ => {
            unknown_once(ctx, nr);
            Err(ENOSYS)
        }
    };
    match r {
        Ok(v) => v,
        Err(e) => -(e as i64),
    }
}

fn unknown_once(ctx: &Ctx, nr: u64) {
    static SEEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let bit = 1u64 << (nr & 63);
    if SEEN.fetch_or(bit, core::sync::atomic::Ordering::Relaxed) & bit == 0 {
        crate::glog!(Warning, "d{}v{}: hypercall {} not implemented", ctx.dom.id, ctx.vcpu, nr);
    }
}

// ---------------------------------------------------------------------------
// xen_version

fn copy_str<const N: usize>(s: &str) -> [u8; N] {
    let mut b = [0u8; N];
    let n = s.len().min(N - 1);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    b
}

fn version(ctx: &Ctx, cmd: u64, arg: u64) -> R {
    use xen_abi::version::*;
    match cmd as u32 {
        XENVER_version => Ok(0x0004_0011),
        XENVER_extraversion => ctx.write(arg, &copy_str::<16>(".0")).map(|_| 0),
        XENVER_compile_info => {
            let ci = XenCompileInfo {
                compiler: copy_str("rustc"),
                compile_by: copy_str("ferrovisor"),
                compile_domain: copy_str("ferrovisor"),
                compile_date: copy_str(""),
            };
            ctx.write(arg, &ci).map(|_| 0)
        }
        XENVER_capabilities => ctx.write(arg, &copy_str::<1024>("xen-3.0-aarch64 ")).map(|_| 0),
        XENVER_changeset => ctx.write(arg, &copy_str::<64>(concat!("ferrovisor ", env!("CARGO_PKG_VERSION")))).map(|_| 0),
        XENVER_platform_parameters => ctx.write(arg, &0u64).map(|_| 0),
        XENVER_get_features => {
            let mut fi: XenFeatureInfo = ctx.read(arg)?;
            if fi.submap_idx != 0 {
                return Err(EINVAL);
            }
            let mut f = (1 << XENFEAT_writable_page_tables)
                | (1 << XENFEAT_auto_translated_physmap)
                | (1 << XENFEAT_memory_op_vnode_supported)
                | (1 << XENFEAT_ARM_SMCCC_supported);
            f |= if ctx.privileged() {
                (1 << XENFEAT_dom0) | (1 << XENFEAT_direct_mapped)
            } else {
                1 << XENFEAT_not_direct_mapped
            };
            fi.submap = f;
            ctx.write(arg, &fi).map(|_| 0)
        }
        // Only asks for a number: a buffer is a caller mistake.
        XENVER_pagesize => if arg == 0 { Ok(4096) } else { Err(EINVAL) },
        XENVER_guest_handle => ctx.write(arg, &[0u8; 16]).map(|_| 0),
        XENVER_commandline => {
            let s = if ctx.privileged() { crate::CMDLINE.get().map(|s| s.as_str()).unwrap_or("") } else { "<denied>" };
            ctx.write(arg, &copy_str::<1024>(s)).map(|_| 0)
        }
        XENVER_build_id => Err(61), // ENODATA: no build id
        _ => Err(ENOSYS),
    }
}

// ---------------------------------------------------------------------------
// memory_op

/// Whether `gfn` lies in one of the windows the domain's RAM lives in
/// (dom0: its bank; domU: Xen's guest RAM and magic-page windows).
fn in_ram_window(dom: &Domain, gfn: u64) -> bool {
    gfn.checked_mul(4096).is_some_and(|a| dom.ram.iter().any(|r| r.contains(a)))
}

/// Where a domain may have hypervisor, foreign or granted pages inserted:
/// its RAM windows (ballooned-out frames, as Linux uses) or its grant-table
/// window. This bounds the stage-2 tables a guest can make us allocate.
fn mappable(dom: &Domain, gfn: u64) -> bool {
    in_ram_window(dom, gfn) || gfn.checked_mul(4096).is_some_and(|a| dom.xen.grant_window.contains(a))
}

fn s2_map(dom: &Domain, gfn: u64, pa: u64, ro: bool) -> Result<(), i32> {
    if !mappable(dom, gfn) {
        return Err(EINVAL);
    }
    let ipa = gfn.checked_mul(4096).ok_or(EINVAL)?;
    let acc = if ro { Access::ReadOnly } else { Access::ReadWrite };
    // Replacing a valid entry invalidates the TLBs inside (break-before-
    // make, `Tables::tlb_invalidate`); filling a hole needs nothing.
    dom.s2.lock().map(&mut Tables::of(dom), ipa, pa, 4096, MemType::Normal, acc).map_err(|_| ENOMEM)
}

/// [`s2_unmap`] with the TLB invalidation of the page left to the caller
/// (which sets `stale` and must flush before the frame can go).
fn s2_unmap_deferred(dom: &Domain, gfn: u64, stale: &mut bool) -> Result<(), i32> {
    if !mappable(dom, gfn) {
        return Err(EINVAL);
    }
    let ipa = gfn.checked_mul(4096).ok_or(EINVAL)?;
    let mut t = DeferredTables { inner: Tables::of(dom), stale };
    dom.s2.lock().unmap(&mut t, ipa, 4096).map_err(|_| ENOMEM)
}

fn s2_unmap(dom: &Domain, gfn: u64) -> Result<(), i32> {
    if !mappable(dom, gfn) {
        return Err(EINVAL);
    }
    let ipa = gfn.checked_mul(4096).ok_or(EINVAL)?;
    dom.s2.lock().unmap(&mut Tables::of(dom), ipa, 4096).map_err(|_| ENOMEM)
}

/// Whether `gfn` is one of the domain's own RAM frames (dom0: in its bank,
/// where the frame is also its host frame; domU: populated and owned).
fn own_ram(dom: &Domain, gfn: u64) -> bool {
    if dom.is_hardware() {
        in_ram_window(dom, gfn)
    } else {
        dom.owned.lock().lookup(gfn).is_some()
    }
}

fn memory_op(ctx: &Ctx, cmd: u64, arg: u64) -> R {
    let op = (cmd & 0x3f) as u32;
    let start = cmd >> 6;
    match op {
        XENMEM_add_to_physmap => {
            if start > u16::MAX as u64 {
                return Err(EDOM);
            }
            let x: XenAddToPhysmap = ctx.read(arg)?;
            // Foreign mapping only through the batch call.
            if x.space == XENMAPSPACE_gmfn_foreign {
                return Err(ENOSYS);
            }
            let target = ctx.target(x.domid)?;
            atp_permission(ctx, &target, x.space)?;
            if x.gpfn == INVALID_GFN {
                return Err(EINVAL);
            }
            if x.space == XENMAPSPACE_gmfn_range {
                // Each page would be an XENMAPSPACE_gmfn one, which Arm does not offer.
                if (x.size as u64) < start {
                    return Err(EILSEQ);
                }
                if x.gpfn.checked_add(x.size as u64).is_none() || x.idx.checked_add(x.size as u64).is_none() {
                    return Err(EOVERFLOW);
                }
                return if x.size as u64 == start { Ok(0) } else { Err(ENOSYS) };
            }
            add_to_physmap(&target, x.space, x.idx, x.gpfn)
        }
        XENMEM_remove_from_physmap => {
            if start != 0 {
                return Err(EINVAL);
            }
            let x: XenRemoveFromPhysmap = ctx.read(arg)?;
            let target = ctx.target(x.domid)?;
            remove_from_physmap(&target, x.gpfn)
        }
        // As Xen: a reservation that cannot be read, is too large to encode
        // a continuation for, names a domain that does not exist or that
        // the caller may not touch is "start extents done", not an error.
        XENMEM_decrease_reservation | XENMEM_populate_physmap | XENMEM_increase_reservation => {
            let Ok(r) = ctx.read::<XenMemoryReservation>(arg) else { return Ok(start as i64) };
            if r.nr_extents > (u32::MAX >> 6) as u64 || start >= r.nr_extents {
                return Ok(start as i64);
            }
            let Ok(target) = ctx.target(r.domid) else { return Ok(start as i64) };
            reservation(ctx, &target, op, &r, start)
        }
        XENMEM_current_reservation => {
            let d: u16 = ctx.read(arg)?;
            Ok(ctx.target(d)?.tot_pages() as i64)
        }
        XENMEM_maximum_reservation => {
            let d: u16 = ctx.read(arg)?;
            Ok(ctx.target(d)?.max_pages.load(core::sync::atomic::Ordering::Acquire) as i64)
        }
        XENMEM_acquire_resource => acquire_resource(ctx, arg),
        XENMEM_claim_pages => {
            let r: XenMemoryReservation = ctx.read(arg)?;
            if !ctx.privileged() {
                return Err(EPERM);
            }
            let target = ctx.target(r.domid)?;
            if target.is_hardware() || r.extent_order != 0 {
                return Err(EINVAL);
            }
            // No claims are held: only check that the pages exist now.
            let free = domain::FRAMES.get().map(|f| f.lock().free_pages()).unwrap_or(0);
            if r.nr_extents > free { Err(ENOMEM) } else { Ok(0) }
        }
        XENMEM_maximum_gpfn => {
            let d: u16 = ctx.read(arg)?;
            let t = ctx.target(d)?;
            Ok(t.ram.iter().map(|r| (r.start + r.size) / 4096).max().unwrap_or(1) as i64 - 1)
        }
        // No page sharing yet: nothing freed or shared (Xen answers 0 too).
        XENMEM_get_sharing_freed_pages | XENMEM_get_sharing_shared_pages => Ok(0),
        XENMEM_maximum_ram_page => Ok(ctx.dom.ram.iter().map(|r| (r.start + r.size) / 4096).max().unwrap_or(0) as i64),
        XENMEM_add_to_physmap_batch => {
            if start > u16::MAX as u64 {
                return Err(EDOM);
            }
            let b: XenAddToPhysmapBatch = ctx.read(arg)?;
            let space = b.space as u32;
            if space == XENMAPSPACE_gmfn_range {
                return Err(EOPNOTSUPP);
            }
            let target = ctx.target(b.domid)?;
            atp_permission(ctx, &target, space)?;
            let size = b.size as u64;
            if size < start || (size == start && start != 0) {
                return Err(EILSEQ);
            }
            if space == XENMAPSPACE_dev_mmio && b.foreign_domid != 0 {
                return Err(EOPNOTSUPP); // u.res0
            }
            if target.id != ctx.dom.id {
                return Err(EOPNOTSUPP); // dom0 changing another domain's physmap: not offered
            }
            // Refusals are per entry (errs[i]); the call itself fails only
            // on unreadable arrays.
            for i in start..size {
                ctx.spend(1)?;
                let idx: u64 = ctx.read(b.idxs.wrapping_add(i * 8))?;
                let gpfn: u64 = ctx.read(b.gpfns.wrapping_add(i * 8))?;
                if gpfn == INVALID_GFN {
                    return Err(EINVAL);
                }
                let r = if space == XENMAPSPACE_gmfn_foreign {
                    foreign_one(ctx, &target, b.foreign_domid, idx, gpfn)
                } else {
                    add_to_physmap(&target, space, idx, gpfn).map(|_| ())
                };
                let e = match r {
                    Ok(()) => 0i32,
                    Err(e) => -e,
                };
                ctx.write(b.errs.wrapping_add(i * 4), &e)?;
            }
            Ok(0)
        }
        _ => {
            crate::glog!(Info, "d{}: memory_op {} not implemented", ctx.dom.id, op);
            Err(ENOSYS)
        }
    }
}

/// Xen's `xatp_permission_check`: MMIO only for the hardware domain into
/// itself; otherwise the caller must be the target or privileged (checked
/// by `Ctx::target` already).
fn atp_permission(ctx: &Ctx, target: &Domain, space: u32) -> Result<(), i32> {
    if space == XENMAPSPACE_dev_mmio && (!target.is_hardware() || target.id != ctx.dom.id) {
        return Err(EACCES);
    }
    Ok(())
}

/// One XENMAPSPACE_gmfn_foreign entry: `foreign`'s frame `idx` into
/// `target` at `gpfn`, with Xen's checks in Xen's order (`get_pg_owner`:
/// the caller's own numeric id names no page owner, `DOMID_SELF` names
/// the caller; mapping from oneself is `-EINVAL`; only the privileged
/// domain maps other domains' pages, `-EPERM`).
fn foreign_one(ctx: &Ctx, target: &DomRef, foreign: u16, idx: u64, gpfn: u64) -> Result<(), i32> {
    let owner = if foreign == DOMID_SELF {
        ctx.dref.clone()
    } else if foreign == ctx.dom.id {
        return Err(ESRCH);
    } else {
        domain::get(foreign).ok_or(ESRCH)?
    };
    if owner.id == target.id {
        return Err(EINVAL);
    }
    if !target.is_hardware() {
        return Err(EPERM);
    }
    map_foreign(target, &owner, idx, gpfn)
}

/// Map `owner`'s page at guest frame `idx` into `dom` at `gpfn`; the
/// mapping keeps `owner` (and so the page) alive until it is removed.
fn map_foreign(dom: &Domain, owner: &DomRef, idx: u64, gpfn: u64) -> Result<(), i32> {
    // The owner's RAM, or one of its grant-table frames (as Xen's toolstack
    // seeds the reserved entries).
    let owned = owner.owned.lock().lookup(idx);
    let (pa, fm) = match owned {
        Some(pa) => (pa, pin_owned(owner, idx, pa).ok_or(EINVAL)?),
        None => {
            let g = owner.xen.grant.lock();
            let f = g.table.frame_at_gfn(idx).ok_or(EINVAL)?;
            (*g.table.frames().pages.get(f as usize).ok_or(EINVAL)?, ForeignMap::new(owner.clone(), None))
        }
    };
    if !mappable(dom, gpfn) || (dom.is_hardware() && !in_ram_window(dom, gpfn)) {
        return Err(EINVAL);
    }
    let old = {
        let mut f = dom.foreign.lock();
        s2_map(dom, gpfn, pa, false)?;
        f.insert(gpfn, fm)
    };
    drop(old); // may free a dying domain: no locks held
    Ok(())
}

/// A reference to `owner`'s page `gfn` that pins it, if `gfn` still holds
/// `pa` (checked and pinned under the owner's `owned` lock, so the page
/// cannot be given back in between). dom0's pages never move: no pin.
fn pin_owned(owner: &DomRef, gfn: u64, pa: u64) -> Option<ForeignMap> {
    if owner.is_hardware() {
        return Some(ForeignMap::new(owner.clone(), None));
    }
    let owned = owner.owned.lock();
    (owned.lookup(gfn) == Some(pa)).then(|| ForeignMap::new(owner.clone(), Some(gfn)))
}

/// XENMEM_remove_from_physmap: a foreign page goes back to its owner, a
/// grant frame leaves the table window, a domU's own page is freed.
fn remove_from_physmap(dom: &Domain, gfn: u64) -> R {
    let foreign = {
        let mut f = dom.foreign.lock();
        let old = f.remove(&gfn);
        if old.is_some() {
            s2_unmap(dom, gfn)?;
        }
        old
    };
    if foreign.is_some() {
        drop(foreign); // may free a dying domain: no locks held
        return Ok(0);
    }
    // Nothing (or no RAM) at the frame: Xen finds no page to remove.
    if gfn.checked_mul(4096).is_none_or(|ipa| DomMem(dom).pa(ipa, false).is_err()) {
        return Err(ENOENT);
    }
    dom.xen.grant.lock().table.frame_unmapped(gfn);
    if !dom.is_hardware() && dom.owned.lock().lookup(gfn).is_some() {
        return release_page(dom, gfn).map(|_| 0);
    }
    s2_unmap(dom, gfn)?;
    Ok(0)
}

/// XENMEM_acquire_resource: the privileged domain maps another domain's
/// grant-table frames (how Xen's toolstack seeds the reserved entries).
fn acquire_resource(ctx: &Ctx, arg: u64) -> R {
    let mut a: XenMemAcquireResource = ctx.read(arg)?;
    if !ctx.privileged() {
        return Err(EPERM);
    }
    if a.type_ != XENMEM_resource_grant_table || a.id != XENMEM_resource_grant_table_id_shared {
        return Err(EOPNOTSUPP);
    }
    let owner = ctx.target(a.domid)?;
    if a.nr_frames == 0 {
        // Size query.
        a.nr_frames = super::MAX_GRANT_FRAMES;
        return ctx.write(arg, &a).map(|_| 0);
    }
    let end = a.frame.checked_add(a.nr_frames as u64).filter(|e| *e <= super::MAX_GRANT_FRAMES as u64).ok_or(EINVAL)?;
    if owner.id == ctx.dom.id {
        return Err(EINVAL);
    }
    for (i, f) in (a.frame..end).enumerate() {
        ctx.spend(1)?;
        let gfn: u64 = ctx.read(a.frame_list.wrapping_add(i as u64 * 8))?;
        let pa = {
            let mut g = owner.xen.grant.lock();
            if g.table.nr_frames() <= f as u32 && g.table.grow_to(f as u32 + 1).is_err() {
                return Err(ENOMEM);
            }
            *g.table.frames().pages.get(f as usize).ok_or(EINVAL)?
        };
        let dom = ctx.dom;
        if !in_ram_window(dom, gfn) {
            return Err(EINVAL);
        }
        let old = {
            let mut fm = dom.foreign.lock();
            s2_map(dom, gfn, pa, false)?;
            fm.insert(gfn, ForeignMap::new(owner.clone(), None))
        };
        drop(old);
    }
    Ok(0)
}

/// Give back a domU's own page at `gfn`: unmapped, then freed. A page
/// another domain maps stays (`-EBUSY`): freeing it would hand that
/// mapping someone else's memory later.
fn release_page(dom: &Domain, gfn: u64) -> Result<(), i32> {
    let ipa = gfn.checked_mul(4096).ok_or(EINVAL)?;
    let mut s2 = dom.s2.lock();
    let pa = {
        let mut owned = dom.owned.lock();
        if dom.pins.lock().contains_key(&gfn) {
            return Err(EBUSY);
        }
        owned.remove_page(gfn).ok_or(EINVAL)?
    };
    // The TLBs forget the page before anyone else can get it.
    let _ = s2.unmap(&mut Tables::of(dom), ipa, 4096);
    drop(s2);
    if let Some(f) = domain::FRAMES.get() {
        let _ = f.lock().free(pa, 0);
    }
    Ok(())
}

fn add_to_physmap(dom: &Domain, space: u32, idx: u64, gpfn: u64) -> R {
    match space {
        XENMAPSPACE_shared_info => {
            if idx != 0 {
                return Err(EINVAL);
            }
            s2_map(dom, gpfn, dom.xen.shared_info_pa, false)?;
            let old = dom.xen.shared_info_gfn.swap(gpfn, core::sync::atomic::Ordering::AcqRel);
            if old != 0 && old != gpfn {
                let _ = s2_unmap(dom, old);
            }
            let mem = DomMem(dom);
            let n = dom.xen.evtchn.lock().set_shared_info(&mem, gpfn * 4096).map_err(|e| e.get())?;
            // vCPU0's upcall lives in shared_info until it registers a vcpu_info.
            let _ = dom.xen.upcall_pa[0].compare_exchange(0, dom.xen.shared_info_pa, core::sync::atomic::Ordering::AcqRel, core::sync::atomic::Ordering::Acquire);
            if !dom.is_hardware() {
                domain_wallclock(dom);
            }
            notify(dom, n.local);
            Ok(0)
        }
        XENMAPSPACE_grant_table => {
            if idx & (XENMAPIDX_grant_table_status as u64) != 0 {
                return Err(EINVAL); // no v2 status frames on Arm
            }
            let mut g = dom.xen.grant.lock();
            let old = g.table.map_frame(idx, gpfn).map_err(|e| e.get())?;
            let pa = *g.table.frames().pages.get(idx as usize).ok_or(EINVAL)?;
            if let Some(old) = old {
                let _ = s2_unmap(dom, old);
            }
            if let Err(e) = s2_map(dom, gpfn, pa, false) {
                g.table.frame_unmapped(gpfn);
                return Err(e);
            }
            Ok(0)
        }
        // XENMAPSPACE_gmfn, dev_mmio (no ACPI dom0 here) and anything unknown.
        _ => Err(ENOSYS),
    }
}

fn reservation(ctx: &Ctx, target: &Domain, op: u32, r: &XenMemoryReservation, start: u64) -> R {
    if op == XENMEM_increase_reservation {
        return Ok(0);
    }
    if r.extent_order > 18 {
        return Ok(start as i64); // beyond any order offered: none done
    }
    if !target.is_hardware() {
        return guest_reservation(ctx, target, op, r, start);
    }
    let pages = 1u64 << r.extent_order;
    let mut done = start;
    while done < r.nr_extents {
        if ctx.spend(pages.min(512) as u32).is_err() {
            break; // the guest sees a short count and asks again
        }
        let gfn: u64 = match ctx.read(r.extent_start.wrapping_add(done * 8)) {
            Ok(g) => g,
            Err(_) => break,
        };
        if gfn.checked_add(pages).is_none() || !own_ram(target, gfn) || !own_ram(target, gfn + pages - 1) {
            break;
        }
        let ipa = gfn * 4096;
        let len = pages * 4096;
        // A foreign page mapped in the hole stays until removed.
        if target.foreign.lock().range(gfn..gfn + pages).next().is_some() {
            break;
        }
        let mut s2 = target.s2.lock();
        let ok = if op == XENMEM_decrease_reservation {
            s2.unmap(&mut Tables::of(target), ipa, len).is_ok()
        } else {
            // dom0 is 1:1: its own frame comes back at the same address.
            s2.map(&mut Tables::of(target), ipa, ipa, len, MemType::Normal, Access::ReadWrite).is_ok()
        };
        drop(s2);
        if !ok {
            break;
        }
        done += 1;
    }
    Ok(done as i64)
}

/// populate_physmap / decrease_reservation for a domU: host frames from
/// the free pool, order 0 or 9, within its RAM windows and `max_pages`.
fn guest_reservation(ctx: &Ctx, target: &Domain, op: u32, r: &XenMemoryReservation, start: u64) -> R {
    use core::sync::atomic::Ordering;
    if r.extent_order != 0 && r.extent_order != 9 {
        // Other sizes are never available: none done (toolstacks then try smaller).
        return Ok(start as i64);
    }
    let order = r.extent_order;
    let pages = 1u64 << order;
    let frames = domain::FRAMES.get().ok_or(ENOMEM)?;
    let mut done = start;
    while done < r.nr_extents {
        if ctx.spend(pages.min(512) as u32).is_err() {
            break;
        }
        let gfn: u64 = match ctx.read(r.extent_start.wrapping_add(done * 8)) {
            Ok(g) => g,
            Err(_) => break,
        };
        if gfn % pages != 0 || gfn.checked_add(pages).is_none() {
            break;
        }
        if op == XENMEM_decrease_reservation {
            if (gfn..gfn + pages).any(|g| !own_ram(target, g) || target.pins.lock().contains_key(&g)) {
                break;
            }
            for g in gfn..gfn + pages {
                let _ = release_page(target, g);
            }
            done += 1;
            continue;
        }
        // populate_physmap
        if !in_ram_window(target, gfn) || !in_ram_window(target, gfn + pages - 1) {
            break;
        }
        if target.tot_pages() + pages > target.max_pages.load(Ordering::Acquire) {
            break;
        }
        let Some(pa) = frames.lock().alloc(order) else { break };
        // SAFETY: the frames were just taken from the free pool: no domain
        // owns or maps them, and the EL2 identity map covers host RAM.
        unsafe { crate::hw::phys::zero(pa, (pages * 4096) as usize) };
        let mut s2 = target.s2.lock();
        let mut owned = target.owned.lock();
        if owned.insert(gfn, pa, order).is_err() {
            drop(owned);
            drop(s2);
            let _ = frames.lock().free(pa, order);
            break;
        }
        if s2.map(&mut Tables::of(target), gfn * 4096, pa, pages * 4096, MemType::Normal, Access::ReadWrite).is_err() {
            for g in gfn..gfn + pages {
                owned.remove_page(g);
            }
            drop(owned);
            drop(s2);
            let _ = frames.lock().free(pa, order);
            break;
        }
        drop(owned);
        drop(s2);
        done += 1;
    }
    if done < r.nr_extents {
        crate::glog!(Debug, "d{}: {} of d{}: {} of {} extents (order {})", ctx.dom.id,
            if op == XENMEM_decrease_reservation { "decrease_reservation" } else { "populate_physmap" },
            target.id, done, r.nr_extents, order);
    }
    Ok(done as i64)
}

/// A domU's wallclock: the host's wall time at its counter's zero.
fn domain_wallclock(dom: &Domain) {
    let Some(wall0) = super::wall_at_counter0() else { return };
    let freq = sysreg::cntfrq_el0::read().max(1) as u128;
    let off_ns = dom.cntvoff as u128 * 1_000_000_000 / freq;
    set_wallclock(dom, wall0 + off_ns);
}

// ---------------------------------------------------------------------------
// grant_table_op

/// Stage-2 side of grant mapping for a domain mapping grants of dom0 (itself).
/// Stage-2 side of grant mapping: `mapper` maps pages `granter` granted.
/// A page of another domain is recorded in the mapper's `foreign` map, so
/// the granter (and its memory) lives until the mapping goes.
struct Mapper<'a> {
    mapper: &'a Domain,
    granter: &'a Domain,
    owner: Option<DomRef>,
    /// The granter's frame `granter_frame` last resolved (pinned on map).
    granted_gfn: Option<u64>,
    /// Unmaps: where their TLB maintenance and released pins wait.
    batch: Option<&'a mut UnmapBatch>,
}

impl<'a> Mapper<'a> {
    fn local(dom: &'a Domain) -> Self {
        Mapper { mapper: dom, granter: dom, owner: None, granted_gfn: None, batch: None }
    }

    fn cross(mapper: &'a Domain, granter: &'a DomRef) -> Self {
        Mapper { mapper, granter, owner: Some(granter.clone()), granted_gfn: None, batch: None }
    }

    fn batched(mut self, batch: &'a mut UnmapBatch) -> Self {
        self.batch = Some(batch);
        self
    }
}

/// The unmaps of one `GNTTABOP_unmap_grant_ref` call, as Xen's
/// `gnttab_flush_tlb`: the caller's stage-2 TLB entries of unmapped pages
/// are invalidated once for up to [`UnmapBatch::MAX`] of them rather than
/// page by page, and what kept each foreign frame alive and pinned (its
/// `ForeignMap`) is dropped only after that flush, so no CPU can still reach
/// a frame through a stale entry once it may be freed or reused.
struct UnmapBatch {
    tables: Tables,
    /// A leaf was removed and its TLB entries may still be cached.
    stale: bool,
    released: Vec<ForeignMap>,
}

impl UnmapBatch {
    /// Unmaps between two flushes.
    const MAX: usize = 64;

    fn new(dom: &Domain) -> Self {
        UnmapBatch { tables: Tables::of(dom), stale: false, released: Vec::new() }
    }

    fn full(&self) -> bool {
        self.released.len() >= Self::MAX
    }

    /// Invalidate what is stale, then let the released frames go.
    fn flush(&mut self) {
        if core::mem::take(&mut self.stale) {
            self.tables.flush_all();
        }
        self.released.clear();
    }
}

impl Drop for UnmapBatch {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Stage-2 tables of the caller with the invalidation of removed 4 KiB
/// leaves left to an [`UnmapBatch`]; anything else (a block split, a table
/// freed) is invalidated at once, as break-before-make needs.
struct DeferredTables<'a> {
    inner: Tables,
    stale: &'a mut bool,
}

impl TableMemory for DeferredTables<'_> {
    fn alloc_zeroed(&mut self, pages: usize) -> Option<u64> {
        self.inner.alloc_zeroed(pages)
    }

    fn read_entry(&self, table_pa: u64, index: usize) -> u64 {
        self.inner.read_entry(table_pa, index)
    }

    fn write_entry(&mut self, table_pa: u64, index: usize, value: u64) {
        self.inner.write_entry(table_pa, index, value)
    }

    fn free(&mut self, pa: u64, pages: usize) {
        self.inner.free(pa, pages)
    }

    fn tlb_invalidate(&mut self, ipa: u64, size: u64) {
        if size == 4096 {
            *self.stale = true;
        } else {
            self.inner.tlb_invalidate(ipa, size)
        }
    }
}

impl GrantMapper for Mapper<'_> {
    fn granter_frame(&mut self, _granter: u16, gfn: u64, readonly: bool) -> Result<u64, i16> {
        // Only the granter's own RAM: never a page it maps from elsewhere.
        if !own_ram(self.granter, gfn) || self.granter.foreign.lock().contains_key(&gfn) {
            return Err(GNTST_bad_page);
        }
        self.granted_gfn = Some(gfn);
        DomMem(self.granter).pa(gfn * 4096, !readonly).map_err(|_| GNTST_bad_page)
    }

    fn map_host(&mut self, host_gfn: u64, pa: u64, readonly: bool) -> Result<(), i16> {
        let pin = match (&self.owner, self.granted_gfn) {
            (Some(o), Some(g)) => Some(pin_owned(o, g, pa).ok_or(GNTST_bad_page)?),
            _ => None,
        };
        let mut f = self.mapper.foreign.lock();
        if f.contains_key(&host_gfn) {
            return Err(GNTST_general_error); // a foreign page sits there
        }
        s2_map(self.mapper, host_gfn, pa, readonly).map_err(|_| GNTST_general_error)?;
        if let Some(p) = pin {
            f.insert(host_gfn, p);
        }
        Ok(())
    }

    fn unmap_host(&mut self, host_gfn: u64, _pa: u64) -> Result<(), i16> {
        let mut f = self.mapper.foreign.lock();
        match self.batch.as_deref_mut() {
            Some(b) => {
                s2_unmap_deferred(self.mapper, host_gfn, &mut b.stale).map_err(|_| GNTST_general_error)?;
                if self.owner.is_some() {
                    b.released.extend(f.remove(&host_gfn));
                }
            }
            None => {
                s2_unmap(self.mapper, host_gfn).map_err(|_| GNTST_general_error)?;
                if self.owner.is_some() {
                    f.remove(&host_gfn);
                }
            }
        }
        Ok(())
    }
}

/// Lock the grant state of `a` and `b` (distinct), lower domid first.
fn lock_pair<'a>(a: &'a Domain, b: &'a Domain) -> (spin::MutexGuard<'a, GrantState<super::mem::TablePages>>, spin::MutexGuard<'a, GrantState<super::mem::TablePages>>) {
    if a.id < b.id {
        let ga = a.xen.grant.lock();
        (ga, b.xen.grant.lock())
    } else {
        let gb = b.xen.grant.lock();
        (a.xen.grant.lock(), gb)
    }
}

fn map_one(dom: &Domain, op: &mut GnttabMapGrantRef) {
    let me = dom.id;
    if op.dom == me {
        let mut g = dom.xen.grant.lock();
        let (mt, table) = g.split();
        grant::map_grant_ref(me, mt, Some(table), op, &mut Mapper::local(dom));
        return;
    }
    match domain::get(op.dom).filter(|_| op.dom != DOMID_SELF) {
        None => {
            let mut g = dom.xen.grant.lock();
            grant::map_grant_ref::<super::mem::TablePages, _>(me, &mut g.maptrack, None, op, &mut Mapper::local(dom));
        }
        Some(granter) => {
            let (mut m, mut t) = lock_pair(dom, &granter);
            let mut b = Mapper::cross(dom, &granter);
            grant::map_grant_ref(me, &mut m.maptrack, Some(&mut t.table), op, &mut b);
        }
    }
}

fn unmap_one(dom: &Domain, op: &mut GnttabUnmapGrantRef, batch: &mut UnmapBatch) {
    let target = dom.xen.grant.lock().maptrack.target(op.handle);
    let granter = match target {
        grant::HandleTarget::Granter(id) if id != dom.id => domain::get_any(id),
        _ => None,
    };
    match granter {
        Some(g) => {
            let (mut m, mut t) = lock_pair(dom, &g);
            let mut b = Mapper::cross(dom, &g).batched(batch);
            grant::unmap_grant_ref(&mut m.maptrack, Some(&mut t.table), op, &mut b);
        }
        None => {
            let mut g = dom.xen.grant.lock();
            let (mt, table) = g.split();
            grant::unmap_grant_ref(mt, Some(table), op, &mut Mapper::local(dom).batched(batch));
        }
    }
    if batch.full() {
        batch.flush();
    }
}

/// The domains a grant copy touches: the caller and up to two others (a
/// source and a destination granter), held alive until the copy is done.
/// Any existing domain is found; hv-core's `grant_copy` applies Xen's
/// default policy on Arm (SILO, `hv_core::xsm`) before it claims a grant:
/// dom0 may copy with any domain, a domU only with dom0 and itself (or
/// between two grants of one domain).
struct Copier<'a> {
    me: &'a Domain,
    others: [Option<DomRef>; 2],
}

impl<'a> Copier<'a> {
    fn new(me: &'a Domain) -> Self {
        Copier { me, others: [None, None] }
    }

    /// `dom` if [`Self::dom`] already found it.
    fn cached(&self, dom: u16) -> Option<&Domain> {
        if dom == self.me.id {
            return Some(self.me);
        }
        self.others.iter().flatten().find(|d| d.id == dom).map(|d| &**d)
    }

    /// `dom` (the caller or another existing domain), looked up once per copy.
    fn dom(&mut self, dom: u16) -> Option<&Domain> {
        if dom == self.me.id {
            return Some(self.me);
        }
        let i = match self.others.iter().position(|o| o.as_ref().is_some_and(|d| d.id == dom)) {
            Some(i) => i,
            None => {
                let i = self.others.iter().position(Option::is_none)?;
                self.others[i] = Some(domain::get(dom)?);
                i
            }
        };
        self.others[i].as_deref()
    }
}

impl CopyEnv for Copier<'_> {
    type Frames = super::mem::TablePages;

    fn with_table<T>(&mut self, dom: u16, f: impl FnOnce(&mut GrantTable<Self::Frames>) -> T) -> Option<T> {
        self.dom(dom).map(|d| f(&mut d.xen.grant.lock().table))
    }

    fn copy(&mut self, src_dom: u16, src: u64, dst_dom: u16, dst: u64, len: usize) -> Result<(), GuestFault> {
        // Both sides were claimed through `with_table`, so both are cached.
        let s = self.cached(src_dom).ok_or(GuestFault::Unmapped(src))?;
        let d = self.cached(dst_dom).ok_or(GuestFault::Unmapped(dst))?;
        super::mem::copy_page_span(&DomMem(s), src, &DomMem(d), dst, len)
    }
}

/// Run `f` on each of the `count` elements of the guest array at `uop`,
/// in order, writing each back. The array is read and written back a chunk
/// (up to [`EACH_CHUNK`] bytes) at a time, so a batch costs one guest
/// page-table walk per page rather than two per element; a chunk that cannot
/// be read whole is done element by element, so an unreadable element ends
/// the call where Xen's would (`-EFAULT`, the ones before it done). An array
/// the guest may read but not write fails `-EFAULT` as on Xen, after the
/// whole chunk rather than its first element.
fn each<T: FromBytes + IntoBytes + KnownLayout + Immutable>(ctx: &Ctx, uop: u64, count: u64, mut f: impl FnMut(&mut T)) -> R {
    if count > MAX_BATCH {
        return Err(EINVAL);
    }
    let size = core::mem::size_of::<T>();
    let per = (EACH_CHUNK / size.max(1)).max(1) as u64;
    let mut buf = [0u8; EACH_CHUNK];
    let mut i = 0u64;
    while i < count {
        // Never more than the trap's budget still allows (-E2BIG after it).
        let n = per.min(count - i).min(u64::from(ctx.budget.get()));
        if n == 0 {
            return Err(E2BIG);
        }
        let va = uop.wrapping_add(i * size as u64);
        let bytes = &mut buf[..n as usize * size];
        if ctx.read_bytes(va, bytes).is_err() {
            for j in 0..n {
                ctx.spend(1)?;
                let va = uop.wrapping_add((i + j) * size as u64);
                let mut op: T = ctx.read(va)?;
                f(&mut op);
                ctx.write(va, &op)?;
            }
        } else {
            ctx.spend(n as u32)?;
            for el in bytes.chunks_exact_mut(size) {
                let Ok(mut op) = T::read_from_bytes(el) else {
                    return Err(EFAULT); // sizes match: unreachable
                };
                f(&mut op);
                el.copy_from_slice(op.as_bytes());
            }
            ctx.write_bytes(va, bytes)?;
        }
        i += n;
    }
    Ok(0)
}

/// Bytes of a guest array [`each`] handles per read and write-back.
const EACH_CHUNK: usize = 1024;

/// The domain a grant-table query or setup names, as a `GNTST_*` refusal:
/// `bad_domain` if it does not exist, `permission_denied` if the caller may
/// not act on it (Xen's `xsm_grant_setup` / `xsm_grant_query_size`).
fn gnt_target(ctx: &Ctx, dom: u16) -> Result<DomRef, i16> {
    ctx.target(dom).map_err(|e| if e == ESRCH { GNTST_bad_domain } else { GNTST_permission_denied })
}

/// GNTTABOP_setup_table (count 1): grow the table and list where its
/// frames are mapped; only `status` goes back into the argument.
fn setup_table(ctx: &Ctx, uop: u64) -> R {
    let mut op: GnttabSetupTable = ctx.read(uop)?;
    op.status = match gnt_target(ctx, op.dom) {
        Err(st) => st,
        Ok(t) => {
            let gfns = {
                let mut g = t.xen.grant.lock();
                let st = g.table.setup_table(op.nr_frames);
                if st != GNTST_okay {
                    Err(st)
                } else {
                    // nr_frames is within the table's limit now.
                    Ok((0..op.nr_frames).map(|i| g.table.frame_gfn(i)).collect::<alloc::vec::Vec<u64>>())
                }
            };
            match gfns {
                Err(st) => st,
                Ok(gfns) => {
                    let mut st = GNTST_okay;
                    for (i, gfn) in gfns.iter().enumerate() {
                        if ctx.write(op.frame_list.wrapping_add(i as u64 * 8), gfn).is_err() {
                            st = GNTST_bad_virt_addr;
                        }
                    }
                    st
                }
            }
        }
    };
    let off = core::mem::offset_of!(GnttabSetupTable, status) as u64;
    ctx.write(uop.wrapping_add(off), &op.status).map(|_| 0)
}

fn grant_table_op(ctx: &Ctx, cmd: u64, uop: u64, count: u64) -> R {
    let dom = ctx.dom;
    let me = dom.id;
    // As Xen: a 32-bit count that is negative as an int, then the opaque
    // bits above GNTTABOP_CMD_MASK (only cache_flush carries any).
    let count = count as u32;
    if (count as i32) < 0 {
        return Err(EINVAL);
    }
    let count = count as u64;
    let cmd = cmd as u32;
    let (opaque, cmd) = (cmd & !0xfff, cmd & 0xfff);
    if cmd != GNTTABOP_cache_flush && opaque != 0 {
        return Err(EINVAL);
    }
    match cmd {
        GNTTABOP_query_size => {
            if count != 1 {
                return Err(EINVAL);
            }
            each(ctx, uop, 1, |op: &mut GnttabQuerySize| match gnt_target(ctx, op.dom) {
                Ok(t) => t.xen.grant.lock().table.query_size(op),
                Err(st) => op.status = st,
            })
        }
        GNTTABOP_setup_table => {
            if count != 1 {
                return Err(EINVAL);
            }
            setup_table(ctx, uop)
        }
        GNTTABOP_set_version => {
            let mut v: GnttabSetVersion = ctx.read(uop)?;
            let r = dom.xen.grant.lock().table.set_version(v.version);
            v.version = 1;
            ctx.write(uop, &v)?;
            r.map(|_| 0).map_err(|e| e.get())
        }
        GNTTABOP_get_version => {
            let mut v: GnttabGetVersion = ctx.read(uop)?;
            ctx.target(v.dom)?;
            v.version = 1;
            ctx.write(uop, &v).map(|_| 0)
        }
        GNTTABOP_map_grant_ref => each(ctx, uop, count, |op: &mut GnttabMapGrantRef| map_one(dom, op)),
        GNTTABOP_unmap_grant_ref => {
            // Flushed every UnmapBatch::MAX unmaps and when dropped (also
            // when a bad element ends the call early).
            let mut batch = UnmapBatch::new(dom);
            each(ctx, uop, count, |op: &mut GnttabUnmapGrantRef| unmap_one(dom, op, &mut batch))
        }
        GNTTABOP_copy => each(ctx, uop, count, |op: &mut GnttabCopy| {
            grant::grant_copy(&mut Copier::new(dom), me, op);
        }),
        GNTTABOP_cache_flush => {
            if count > MAX_BATCH {
                return Err(EINVAL);
            }
            for i in 0..count {
                let op: GnttabCacheFlush = ctx.read(uop.wrapping_add(i * 16))?;
                grant::cache_flush_check(&op).map_err(|e| e.get())?;
            }
            Ok(0)
        }
        _ => Err(ENOSYS),
    }
}

// ---------------------------------------------------------------------------
// event_channel_op

fn ev_err(e: evtchn::Error) -> i32 {
    match e {
        evtchn::Error::Errno(e) => e.get(),
        evtchn::Error::NeedPeer(_) => ESRCH,
    }
}

/// Run `f` on `dom`'s event channels, with `peer`'s locked too when it is
/// another domain (the lower domid's lock first), then deliver the upcalls
/// it asks for in both.
fn with_evtchn<T>(
    dom: &Domain,
    peer: Option<&Domain>,
    f: impl FnOnce(&mut evtchn::EvtchnDomain, &DomMem, Peer<'_>) -> Result<(T, evtchn::Notify), evtchn::Error>,
) -> Result<T, evtchn::Error> {
    let mem = DomMem(dom);
    let (r, other) = match peer {
        Some(p) if p.id != dom.id => {
            let pmem = DomMem(p);
            let (mut a, mut b);
            if dom.id < p.id {
                a = dom.xen.evtchn.lock();
                b = p.xen.evtchn.lock();
            } else {
                b = p.xen.evtchn.lock();
                a = dom.xen.evtchn.lock();
            }
            (f(&mut a, &mem, Peer::Other(&mut b, &pmem)), Some(p))
        }
        _ => (f(&mut dom.xen.evtchn.lock(), &mem, Peer::None), None),
    };
    let (v, n) = r?;
    match other {
        Some(p) => {
            notify(dom, n.local);
            notify(p, n.peer);
        }
        None => notify(dom, n.local.union(n.peer)),
    }
    Ok(v)
}

/// An operation on a port of `dom` that may involve the domain at its
/// other end: tried with `dom` alone (loopback and local ports, the common
/// case, take one lock); when it names another domain, again with that one
/// locked too (retrying if the port was rebound meanwhile).
fn on_port<T>(
    dom: &Domain,
    mut f: impl FnMut(&mut evtchn::EvtchnDomain, &DomMem, Peer<'_>) -> Result<(T, evtchn::Notify), evtchn::Error>,
) -> Result<T, i32> {
    let mut peer_id = None;
    for _ in 0..3 {
        let peer = match peer_id {
            Some(id) => Some(domain::get_any(id).ok_or(ESRCH)?),
            None => None,
        };
        match with_evtchn(dom, peer.as_deref(), &mut f) {
            Err(evtchn::Error::NeedPeer(d)) => peer_id = Some(d),
            r => return r.map_err(ev_err),
        }
    }
    Err(EAGAIN)
}

/// Close every event channel of a dying domain (the other ends become unbound).
pub fn evtchn_teardown(dom: &Domain) {
    let mut peer: Option<DomRef> = None;
    for _ in 0..MAX_PEERS {
        let r = with_evtchn(dom, peer.as_deref(), |ev, mem, p| ev.reset(mem, p).map(|_| ((), evtchn::Notify::NONE)));
        match r {
            Err(evtchn::Error::NeedPeer(d)) => peer = domain::get_any(d),
            _ => return,
        }
    }
}

/// Most distinct domains a teardown visits.
const MAX_PEERS: usize = domain::MAX_DOMAINS + 1;

fn event_channel_op(ctx: &Ctx, cmd: u64, arg: u64) -> R {
    let dom = ctx.dom;
    let mem = ctx.mem();
    let none = evtchn::Notify::NONE;
    match cmd as u32 {
        EVTCHNOP_alloc_unbound => {
            let mut a: EvtchnAllocUnbound = ctx.read(arg)?;
            let target = ctx.target(a.dom)?;
            let tmem = DomMem(&target);
            let remote = if a.remote_dom == DOMID_SELF { dom.id } else { a.remote_dom };
            let remote_exists = remote == dom.id || remote == target.id || domain::get(remote).is_some();
            a.port = target.xen.evtchn.lock().alloc_unbound_checked(&tmem, dom.id, ctx.privileged(), a.remote_dom, remote_exists).map_err(|e| e.get())?;
            ctx.write(arg, &a).map(|_| 0)
        }
        EVTCHNOP_bind_interdomain => {
            let mut a: EvtchnBindInterdomain = ctx.read(arg)?;
            let peer = if a.remote_dom == DOMID_SELF || a.remote_dom == dom.id { None } else { Some(domain::get(a.remote_dom).ok_or(ESRCH)?) };
            let port = with_evtchn(dom, peer.as_deref(), |ev, mem, p| ev.bind_interdomain(mem, a.remote_dom, a.remote_port, p)).map_err(ev_err)?;
            a.local_port = port;
            ctx.write(arg, &a).map(|_| 0)
        }
        EVTCHNOP_bind_virq => {
            let mut a: EvtchnBindVirq = ctx.read(arg)?;
            a.port = dom.xen.evtchn.lock().bind_virq(&mem, a.virq, a.vcpu).map_err(|e| e.get())?;
            ctx.write(arg, &a).map(|_| 0)
        }
        EVTCHNOP_bind_ipi => {
            let mut a: EvtchnBindIpi = ctx.read(arg)?;
            a.port = dom.xen.evtchn.lock().bind_ipi(&mem, a.vcpu).map_err(|e| e.get())?;
            ctx.write(arg, &a).map(|_| 0)
        }
        EVTCHNOP_close => {
            let a: EvtchnClose = ctx.read(arg)?;
            on_port(dom, |ev, mem, p| ev.close(mem, a.port, p).map(|_| ((), none))).map(|_| 0)
        }
        EVTCHNOP_send => {
            let a: EvtchnSend = ctx.read(arg)?;
            on_port(dom, |ev, mem, p| ev.send(mem, a.port, p).map(|n| ((), n))).map(|_| 0)
        }
        EVTCHNOP_status => {
            let mut a: EvtchnStatus = ctx.read(arg)?;
            let target = ctx.target(a.dom)?;
            target.xen.evtchn.lock().status(a.port, dom.id, ctx.privileged()).map_err(|e| e.get())?.write_to(&mut a);
            ctx.write(arg, &a).map(|_| 0)
        }
        EVTCHNOP_bind_vcpu => {
            let a: EvtchnBindVcpu = ctx.read(arg)?;
            dom.xen.evtchn.lock().bind_vcpu(a.port, a.vcpu).map(|_| 0).map_err(|e| e.get())
        }
        EVTCHNOP_unmask => {
            let a: EvtchnUnmask = ctx.read(arg)?;
            let n = dom.xen.evtchn.lock().unmask(&mem, a.port).map_err(|e| e.get())?;
            notify(dom, n.local.union(n.peer));
            Ok(0)
        }
        EVTCHNOP_reset => {
            let a: EvtchnReset = ctx.read(arg)?;
            ctx.self_only(a.dom)?;
            evtchn_teardown(dom);
            Ok(0)
        }
        EVTCHNOP_init_control => {
            let mut a: EvtchnInitControl = ctx.read(arg)?;
            a.link_bits = dom.xen.evtchn.lock().init_control(&mem, a.control_gfn, a.offset, a.vcpu).map_err(|e| e.get())?;
            ctx.write(arg, &a).map(|_| 0)
        }
        EVTCHNOP_expand_array => {
            let a: EvtchnExpandArray = ctx.read(arg)?;
            let n = dom.xen.evtchn.lock().expand_array(&mem, a.array_gfn).map_err(|e| e.get())?;
            notify(dom, n.local.union(n.peer));
            Ok(0)
        }
        EVTCHNOP_set_priority => {
            let a: EvtchnSetPriority = ctx.read(arg)?;
            dom.xen.evtchn.lock().set_priority(a.port, a.priority).map(|_| 0).map_err(|e| e.get())
        }
        _ => Err(ENOSYS),
    }
}

// ---------------------------------------------------------------------------
// sched_op, vcpu_op, hvm_op, vm_assist, console_io, platform_op, multicall

fn sched_op(ctx: &Ctx, cmd: u64, arg: u64) -> R {
    use xen_abi::sched::*;
    match cmd as u32 {
        SCHEDOP_yield | SCHEDOP_block => Ok(0),
        SCHEDOP_shutdown => {
            let s: SchedShutdown = ctx.read(arg)?;
            crate::domain::shutdown(ctx.dom, s.reason);
            Ok(0)
        }
        SCHEDOP_shutdown_code => Ok(0),
        SCHEDOP_remote_shutdown => {
            let s: SchedRemoteShutdown = ctx.read(arg)?;
            // By exact id (DOMID_SELF names none), then the privilege check
            // (a domU may not even shut itself down this way).
            let target = domain::get(s.domain_id).ok_or(ESRCH)?;
            if !ctx.privileged() {
                return Err(EPERM);
            }
            crate::domain::shutdown(&target, s.reason);
            Ok(0)
        }
        // The caller re-checks its ports; returning at once is a spurious
        // wake-up, which poll allows. Blocking needs a scheduler.
        SCHEDOP_poll => {
            let p: SchedPoll = ctx.read(arg)?;
            if p.nr_ports > 128 {
                return Err(EINVAL);
            }
            Ok(0)
        }
        SCHEDOP_watchdog | SCHEDOP_pin_override => Err(ENOSYS),
        _ => Err(ENOSYS),
    }
}

fn vcpu_op(ctx: &Ctx, cmd: u64, vcpuid: u64, arg: u64) -> R {
    use xen_abi::vcpu::*;
    let dom = ctx.dom;
    if vcpuid as usize >= dom.vcpus.len() {
        return Err(ENOENT);
    }
    let v = vcpuid as usize;
    match cmd as u32 {
        VCPUOP_register_vcpu_info => {
            let r: VcpuRegisterVcpuInfo = ctx.read(arg)?;
            if r.offset as usize > 4096 - evtchn::VCPU_INFO_SIZE || r.offset % 8 != 0 {
                return Err(ENXIO);
            }
            if v != ctx.vcpu && *dom.vcpus[v].power.lock() != crate::domain::Power::Off {
                return Err(EINVAL);
            }
            let ipa = r.mfn.checked_mul(4096).ok_or(EINVAL)? + r.offset as u64;
            let mem = ctx.mem();
            let pa = mem.pa(ipa, true).map_err(|_| EINVAL)?;
            let n = dom.xen.evtchn.lock().register_vcpu_info(&mem, v as u32, ipa).map_err(|e| e.get())?;
            dom.xen.upcall_pa[v].store(pa, core::sync::atomic::Ordering::Release);
            notify(dom, n.local);
            Ok(0)
        }
        VCPUOP_register_runstate_memory_area => {
            let r: VcpuRegisterRunstateMemoryArea = ctx.read(arg)?;
            // Written once now (running since start); see docs: no
            // deschedule ever happens to a pinned dom0 vCPU.
            let mut info = VcpuRunstateInfo::new_zeroed();
            info.state = RUNSTATE_running;
            let now = crate::domain::system_time_ns(dom);
            info.state_entry_time = now;
            info.time[0] = now;
            let _ = ctx.write(r.addr, &info);
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

fn hvm_op(ctx: &Ctx, op: u64, arg: u64) -> R {
    use xen_abi::hvm_op::*;
    use xen_abi::hvm_params::*;
    if op as u32 != HVMOP_get_param && op as u32 != HVMOP_set_param {
        return Err(ENOSYS);
    }
    let mut p: XenHvmParam = ctx.read(arg)?;
    let target = ctx.target(p.domid)?;
    let idx = p.index as usize;
    if idx >= crate::domain::HVM_NR_PARAMS {
        return Err(EINVAL);
    }
    match op as u32 {
        HVMOP_get_param => {
            p.value = match p.index {
                HVM_PARAM_CALLBACK_IRQ => {
                    ((HVM_PARAM_CALLBACK_TYPE_PPI as u64) << 56)
                        | ((HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL as u64) << 8)
                        | target.evtchn_ppi as u64
                }
                HVM_PARAM_STORE_PFN | HVM_PARAM_STORE_EVTCHN | HVM_PARAM_CONSOLE_PFN | HVM_PARAM_CONSOLE_EVTCHN => target.hvm_params.lock()[idx],
                _ => return Err(EINVAL),
            };
            ctx.write(arg, &p).map(|_| 0)
        }
        // The toolstack sets up a domain's console and xenstore; a guest
        // may not move its own.
        HVMOP_set_param if ctx.privileged() && !target.is_hardware() => {
            target.hvm_params.lock()[idx] = p.value;
            Ok(0)
        }
        HVMOP_set_param => Err(EPERM),
        _ => Err(ENOSYS),
    }
}

/// The type first (`-EINVAL` unless one Arm offers), then the command.
fn vm_assist(cmd: u32, ty: u32) -> R {
    use xen_abi::vm_assist::*;
    if ty != VMASST_TYPE_runstate_update_flag as u32 {
        return Err(EINVAL);
    }
    if cmd == VMASST_CMD_enable as u32 || cmd == VMASST_CMD_disable as u32 {
        Ok(0)
    } else {
        Err(ENOSYS)
    }
}

fn console_io(ctx: &Ctx, cmd: u64, count: u64, buf: u64) -> R {
    use xen_abi::console_io::*;
    // Xen (release build, XSM dummy/SILO): only the console domain (dom0)
    // may use console_io at all, whatever the command.
    if !ctx.privileged() {
        return Err(EPERM);
    }
    let count = count as u32 as u64;
    match cmd as u32 {
        CONSOLEIO_write => {
            let mut done = 0u64;
            let mut chunk = [0u8; 128];
            while done < count {
                ctx.spend(1)?;
                let n = ((count - done) as usize).min(chunk.len());
                ctx.read_bytes(buf.wrapping_add(done), &mut chunk[..n])?;
                crate::console::guest_write(&chunk[..n]);
                done += n as u64;
                if done >= 1 << 20 {
                    break; // bounded per call
                }
            }
            Ok(0)
        }
        CONSOLEIO_read => {
            if count > i32::MAX as u64 {
                return Err(E2BIG);
            }
            let mut tmp = [0u8; 128];
            let n = {
                let mut q = ctx.dom.xen.console_in.lock();
                let n = (count as usize).min(tmp.len()).min(q.len());
                for b in tmp.iter_mut().take(n) {
                    *b = q.pop_front().unwrap_or(0);
                }
                n
            };
            s1walk::copy_to_guest(&ctx.regs, &ctx.mem(), buf, &tmp[..n]).map_err(|_| EFAULT)?;
            Ok(n as i64)
        }
        _ => Err(ENOSYS),
    }
}

fn platform_op(ctx: &Ctx, arg: u64) -> R {
    use xen_abi::platform::*;
    if !ctx.privileged() {
        return Err(EPERM);
    }
    let op: XenPlatformOp = ctx.read(arg)?;
    if op.interface_version != XENPF_INTERFACE_VERSION {
        return Err(EACCES);
    }
    match op.cmd {
        XENPF_settime64 => {
            // {secs u64, nsecs u32, mbz u32, system_time u64}: wall time at
            // the caller's system time `system_time`.
            let (secs, nsecs, sys) = (op.u[0], op.u[1] as u32, op.u[2]);
            if op.u[1] >> 32 != 0 || nsecs >= 1_000_000_000 {
                return Err(EINVAL);
            }
            let boot_ns = (secs as u128 * 1_000_000_000 + nsecs as u128).saturating_sub(sys as u128);
            set_wallclock(ctx.dom, boot_ns);
            let freq = sysreg::cntfrq_el0::read().max(1) as u128;
            super::set_wall_at_counter0(boot_ns.saturating_sub(ctx.dom.cntvoff as u128 * 1_000_000_000 / freq));
            Ok(0)
        }
        _ => Err(ENOSYS),
    }
}

/// Publish the wall time at the domain's start (its system time 0) in
/// shared_info, with the version odd while it changes.
fn set_wallclock(dom: &Domain, boot_ns: u128) {
    use core::sync::atomic::{fence, AtomicU32, Ordering};
    let base = dom.xen.shared_info_pa;
    let at = |off: u64| {
        // SAFETY: the shared_info page is the domain's hypervisor-owned page;
        // these are the 4-aligned wallclock words at 1072..1088.
        unsafe { AtomicU32::from_ptr((base + off) as *mut u32) }
    };
    let secs = (boot_ns / 1_000_000_000) as u64;
    let v = at(1072).load(Ordering::Relaxed);
    at(1072).store(v.wrapping_add(1) | 1, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    at(1076).store(secs as u32, Ordering::Relaxed);
    at(1080).store((boot_ns % 1_000_000_000) as u32, Ordering::Relaxed);
    at(1084).store((secs >> 32) as u32, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    at(1072).store((v | 1).wrapping_add(1), Ordering::Release);
}


/// Entries one trap runs before the multicall continues in a re-issued
/// call (as Xen preempts long multicalls).
const MULTICALL_CHUNK: u64 = 256;

fn multicall(ctx: &Ctx, list: u64, nr: u32) -> R {
    use xen_abi::multicall::MulticallEntry;
    let nr = nr as u64;
    for i in 0..nr {
        if i == MULTICALL_CHUNK || (i > 0 && ctx.budget.get() < TRAP_BUDGET / 2) {
            ctx.cont.set(Some([list.wrapping_add(i * 64), nr - i]));
            return Ok(0);
        }
        ctx.spend(1)?;
        let va = list.wrapping_add(i * 64);
        let mut e: MulticallEntry = ctx.read(va)?;
        let a = [e.args[0], e.args[1], e.args[2], e.args[3], e.args[4]];
        e.result = dispatch(ctx, e.op, a, false) as u64;
        ctx.write(va, &e)?;
    }
    Ok(0)
}
