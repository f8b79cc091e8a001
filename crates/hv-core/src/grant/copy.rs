//! `GNTTABOP_copy` and `GNTTABOP_cache_flush`.

use alloc::vec;

use xen_abi::errno::Errno;
use xen_abi::grant_table::{
    GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTST_bad_copy_arg, GNTST_bad_domain, GNTST_bad_page,
    GNTST_general_error, GNTST_okay, GNTST_permission_denied, GnttabCacheFlush, GnttabCopy,
    GnttabCopyPtr, GrantRef, GNTTAB_CACHE_CLEAN, GNTTAB_CACHE_INVAL,
};
use xen_abi::xen::{DomId, DOMID_SELF};

use super::table::{GrantTable, TableFrames};
use super::{PAGE_SHIFT, PAGE_SIZE};
use crate::guest::{GuestFault, GuestMemory};

/// The domains a copy touches, as the binary sees them. The copy pins grant
/// entries in short critical sections (`with_table`) and moves the bytes
/// with no grant lock held, as Xen does: the pins keep the grants in place.
/// The binary must keep every domain it hands out alive (not freed) for
/// the duration of [`grant_copy`].
pub trait CopyEnv {
    type Frames: TableFrames;

    /// Lock domain `dom`'s grant table and run `f` on it; `None` if there is
    /// no such domain. `dom` is a real id (`DOMID_SELF` already resolved).
    /// [`grant_copy`] asks about any domain the guest names only to see that
    /// it exists, and claims grants only once [`Self::may_copy`] allows the
    /// copy.
    fn with_table<R>(
        &mut self,
        dom: DomId,
        f: impl FnOnce(&mut GrantTable<Self::Frames>) -> R,
    ) -> Option<R>;

    /// Copy `len` bytes from `src_dom`'s IPA `src` to `dst_dom`'s IPA `dst`
    /// through their [`GuestMemory`] (RAM they own only). Source and
    /// destination may overlap (same page of the same domain): copy as if
    /// through a buffer. [`bounce_copy`] does this for two `GuestMemory`s.
    fn copy(
        &mut self,
        src_dom: DomId,
        src: u64,
        dst_dom: DomId,
        dst: u64,
        len: usize,
    ) -> Result<(), GuestFault>;

    /// Whether `caller` may copy from domain `src` to domain `dst` (Xen's
    /// `xsm_grant_copy(src, dst)`); refused → `GNTST_permission_denied`.
    /// The default is Xen on Arm's default policy, SILO ([`crate::xsm`]):
    /// no copy between two different unprivileged domains.
    fn may_copy(&self, caller: DomId, src: DomId, dst: DomId) -> bool {
        crate::xsm::silo_allows(caller, src, dst)
    }
}

/// Copy through a heap buffer, so overlapping spans behave like `memmove`.
pub fn bounce_copy(
    src_mem: &dyn GuestMemory,
    src: u64,
    dst_mem: &dyn GuestMemory,
    dst: u64,
    len: usize,
) -> Result<(), GuestFault> {
    let mut buf = vec![0u8; len];
    src_mem.read(src, &mut buf)?;
    dst_mem.write(dst, &buf)
}

#[derive(Clone, Copy)]
enum Side {
    /// `(granter, ref)`.
    Gref(DomId, GrantRef),
    /// A GFN of the caller.
    Gfn(u64),
}

/// Xen's `gnttab_copy_lock_domain`: a frame side must say `DOMID_SELF`;
/// a grant side names the granter (`DOMID_SELF` meaning the caller).
impl Side {
    /// The domain whose memory this side reaches.
    fn dom(&self, caller: DomId) -> DomId {
        match *self {
            Side::Gref(d, _) => d,
            Side::Gfn(_) => caller,
        }
    }
}

fn side<E: CopyEnv>(
    env: &mut E,
    caller: DomId,
    p: &GnttabCopyPtr,
    is_gref: bool,
) -> Result<Side, i16> {
    if !is_gref {
        return if p.domid == DOMID_SELF {
            Ok(Side::Gfn(p.u.gmfn()))
        } else {
            Err(GNTST_permission_denied)
        };
    }
    let dom = if p.domid == DOMID_SELF {
        caller
    } else {
        p.domid
    };
    env.with_table(dom, |_| ()).ok_or(GNTST_bad_domain)?;
    Ok(Side::Gref(dom, p.u.gref()))
}

/// A side after claiming: `(domain, gfn, pin to drop)`.
type Claimed = (DomId, u64, Option<(DomId, GrantRef)>);

fn claim<E: CopyEnv>(env: &mut E, caller: DomId, s: Side, readonly: bool) -> Result<Claimed, i16> {
    match s {
        Side::Gfn(gfn) => Ok((caller, gfn, None)),
        Side::Gref(dom, gref) => {
            let pinned = env
                .with_table(dom, |t| t.pin(gref, caller, readonly, false))
                .ok_or(GNTST_bad_domain)??;
            Ok((dom, pinned.gfn, Some((dom, gref))))
        }
    }
}

fn release<E: CopyEnv>(env: &mut E, c: &Claimed, readonly: bool) {
    if let Some((dom, gref)) = c.2 {
        // If the domain vanished meanwhile its table went with it.
        let _ = env.with_table(dom, |t| t.unpin(gref, readonly));
    }
}

fn ipa(gfn: u64, offset: u16) -> Result<u64, i16> {
    gfn.checked_mul(1 << PAGE_SHIFT)
        .and_then(|a| a.checked_add(u64::from(offset)))
        .ok_or(GNTST_bad_page)
}

/// One `gnttab_copy` element issued by domain `caller`; sets `op.status`.
///
/// The source side is pinned read-only (`GTF_reading`), the destination
/// writable (`GTF_reading | GTF_writing`) for the duration of the copy, and
/// the bits go back to what the remaining pins need afterwards. Status
/// order as Xen: permission/domain checks (source, then destination), then
/// the policy between source and destination domains
/// (`GNTST_permission_denied`, [`CopyEnv::may_copy`]), then
/// the grant checks (source, then destination), then `offset + len ≤ 4096`
/// (`GNTST_bad_copy_arg`). A frame that is not the domain's RAM is
/// `GNTST_bad_page` (found when copying, i.e. after the argument checks,
/// where Xen finds it while claiming).
pub fn grant_copy<E: CopyEnv>(env: &mut E, caller: DomId, op: &mut GnttabCopy) {
    op.status = match copy_inner(env, caller, op) {
        Ok(()) => GNTST_okay,
        Err(st) => st,
    };
}

fn copy_inner<E: CopyEnv>(env: &mut E, caller: DomId, op: &GnttabCopy) -> Result<(), i16> {
    let src = side(env, caller, &op.source, op.flags & GNTCOPY_source_gref != 0)?;
    let dst = side(env, caller, &op.dest, op.flags & GNTCOPY_dest_gref != 0)?;
    // Xen's xsm_grant_copy(source, dest).
    if !env.may_copy(caller, src.dom(caller), dst.dom(caller)) {
        return Err(GNTST_permission_denied);
    }
    let s = claim(env, caller, src, true)?;
    let d = match claim(env, caller, dst, false) {
        Ok(d) => d,
        Err(st) => {
            release(env, &s, true);
            return Err(st);
        }
    };
    let rc = copy_claimed(env, op, &s, &d);
    release(env, &d, false);
    release(env, &s, true);
    rc
}

fn copy_claimed<E: CopyEnv>(
    env: &mut E,
    op: &GnttabCopy,
    s: &Claimed,
    d: &Claimed,
) -> Result<(), i16> {
    let len = u32::from(op.len);
    if u32::from(op.source.offset) + len > PAGE_SIZE || u32::from(op.dest.offset) + len > PAGE_SIZE
    {
        return Err(GNTST_bad_copy_arg);
    }
    let src = ipa(s.1, op.source.offset)?;
    let dst = ipa(d.1, op.dest.offset)?;
    env.copy(s.0, src, d.0, dst, len as usize)
        .map_err(|f| match f {
            GuestFault::Unmapped(_) => GNTST_bad_page,
            GuestFault::ReadOnly(_) | GuestFault::Misaligned(_) => GNTST_general_error,
        })
}

/// What a `gnttab_cache_flush` element asks for, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheFlush {
    /// Nothing to do (the probe Linux makes: `op == 0` or `length == 0`).
    Nothing,
    /// Clean and/or invalidate `[offset, offset + length)` of the host page
    /// at `dev_bus_addr`. The binary finds the page's owner: not a domain's
    /// page → `-EPERM`; not a valid frame → `-EINVAL`; owned by another
    /// domain → allowed only if [`GrantTable::is_mapped_by`]`(caller, ..)`
    /// on the owner's table, else `-EINVAL`.
    Flush {
        dev_bus_addr: u64,
        offset: u16,
        length: u16,
        clean: bool,
        invalidate: bool,
    },
}

/// Validate one `gnttab_cache_flush` element as Xen does.
pub fn cache_flush_check(op: &GnttabCacheFlush) -> Result<CacheFlush, Errno> {
    let (off, len) = (u32::from(op.offset), u32::from(op.length));
    if off >= PAGE_SIZE
        || len > PAGE_SIZE
        || off + len > PAGE_SIZE
        || op.op & !(GNTTAB_CACHE_INVAL | GNTTAB_CACHE_CLEAN) != 0
    {
        // `GNTTAB_CACHE_SOURCE_GREF` lands here too, as in Xen.
        return Err(Errno::EINVAL);
    }
    if len == 0 || op.op == 0 {
        return Ok(CacheFlush::Nothing);
    }
    Ok(CacheFlush::Flush {
        dev_bus_addr: op.a.dev_bus_addr(),
        offset: op.offset,
        length: op.length,
        clean: op.op & GNTTAB_CACHE_CLEAN != 0,
        invalidate: op.op & GNTTAB_CACHE_INVAL != 0,
    })
}
