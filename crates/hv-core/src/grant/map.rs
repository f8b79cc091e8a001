//! `GNTTABOP_map_grant_ref` / `GNTTABOP_unmap_grant_ref` and teardown.

use alloc::vec::Vec;

use xen_abi::grant_table::{
    GNTMAP_application_map, GNTMAP_contains_pte, GNTMAP_device_map, GNTMAP_host_map,
    GNTMAP_readonly, GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_handle, GNTST_general_error,
    GNTST_no_device_space, GNTST_okay, GNTST_permission_denied, GnttabMapGrantRef, GnttabUnmapGrantRef, GrantHandle,
};
use xen_abi::xen::DomId;

use super::maptrack::{HandleTarget, Mapping, Maptrack};
use super::table::{GrantTable, TableFrames};
use super::PAGE_SHIFT;

/// What grant mapping needs from the rest of the hypervisor, for one
/// mapping domain. Each method runs while the caller holds both domains'
/// grant state; it may take the mapper's stage-2 lock (always after them).
pub trait GrantMapper {
    /// The host physical address of `granter`'s `gfn`, which must be
    /// ordinary RAM the granter owns (not MMIO, not a page it has itself
    /// mapped from someone else, not a grant-table frame). The error is the
    /// status the guest sees: Xen uses `GNTST_bad_page`.
    fn granter_frame(&mut self, granter: DomId, gfn: u64, readonly: bool) -> Result<u64, i16>;

    /// Put host page `pa` at the mapper's `host_gfn` (read-only if asked).
    /// Xen on Arm answers `GNTST_general_error` when that fails.
    fn map_host(&mut self, host_gfn: u64, pa: u64, readonly: bool) -> Result<(), i16>;

    /// Remove the mapper's `host_gfn → pa` entry (we have checked that this
    /// is the mapping the handle made). TLB maintenance is the binary's.
    fn unmap_host(&mut self, host_gfn: u64, pa: u64) -> Result<(), i16>;

    /// Whether `mapper` may map grants of `granter` at all (Xen's
    /// `xsm_grant_mapref`); refused → `GNTST_permission_denied`. The
    /// default is Xen on Arm's default policy, SILO ([`crate::xsm`]).
    fn may_map(&self, mapper: DomId, granter: DomId) -> bool {
        crate::xsm::silo_allows(mapper, mapper, granter)
    }
}

/// The flag checks Xen makes before it even looks the granter up; `Ok` only
/// for `GNTMAP_host_map [| GNTMAP_readonly]` (plus the guest-available bits,
/// which are ignored).
pub fn check_map_flags(flags: u32) -> Result<(), i16> {
    if flags & (GNTMAP_device_map | GNTMAP_host_map) == 0 {
        return Err(GNTST_bad_gntref);
    }
    // Arm guests are all translated ("paging_mode_external").
    if flags & (GNTMAP_device_map | GNTMAP_application_map | GNTMAP_contains_pte) != 0 {
        return Err(GNTST_general_error);
    }
    Ok(())
}

/// One `gnttab_map_grant_ref` element, issued by domain `mapper`.
///
/// `granter` is the grant state of `op.dom` looked up by exact id
/// (`DOMID_SELF` does not name a domain here: pass `None`, as for a
/// domain that does not exist, and the guest gets `GNTST_bad_domain`).
/// For a loopback map (`op.dom == mapper`) pass the mapper's own table
/// alongside its maptrack (see [`super::GrantState::split`]). A map the
/// policy refuses ([`GrantMapper::may_map`]) is `GNTST_permission_denied`,
/// after the flag checks and the domain lookup.
///
/// Fills `op.status`, and on success `op.handle` and `op.dev_bus_addr`.
pub fn map_grant_ref<F: TableFrames, B: GrantMapper + ?Sized>(
    mapper: DomId,
    maptrack: &mut Maptrack,
    granter: Option<&mut GrantTable<F>>,
    op: &mut GnttabMapGrantRef,
    backend: &mut B,
) {
    op.status = match map_inner(mapper, maptrack, granter, op, backend) {
        Ok((handle, pa)) => {
            op.handle = handle;
            op.dev_bus_addr = pa;
            GNTST_okay
        }
        Err(st) => st,
    };
}

fn map_inner<F: TableFrames, B: GrantMapper + ?Sized>(
    mapper: DomId,
    maptrack: &mut Maptrack,
    granter: Option<&mut GrantTable<F>>,
    op: &GnttabMapGrantRef,
    backend: &mut B,
) -> Result<(GrantHandle, u64), i16> {
    check_map_flags(op.flags)?;
    let table = match granter {
        Some(t) if t.owner() == op.dom => t,
        _ => return Err(GNTST_bad_domain),
    };
    // Xen's xsm_grant_mapref (SILO: no grant between two domUs).
    if !backend.may_map(mapper, op.dom) {
        return Err(GNTST_permission_denied);
    }
    let handle = maptrack.alloc().ok_or(GNTST_no_device_space)?;
    let readonly = op.flags & GNTMAP_readonly != 0;
    let undo = |table: &mut GrantTable<F>, maptrack: &mut Maptrack, pinned: bool| {
        if pinned {
            table.unpin(op.ref_, readonly);
        }
        maptrack.release(handle);
    };

    let pinned = match table.pin(op.ref_, mapper, readonly, true) {
        Ok(p) => p,
        Err(st) => {
            undo(table, maptrack, false);
            return Err(st);
        }
    };
    let pa = match pinned.pa {
        Some(pa) => pa,
        None => match backend.granter_frame(op.dom, pinned.gfn, readonly) {
            Ok(pa) => {
                table.set_pa(op.ref_, pa);
                pa
            }
            Err(st) => {
                undo(table, maptrack, true);
                return Err(st);
            }
        },
    };
    let host_gfn = op.host_addr >> PAGE_SHIFT;
    if let Err(st) = backend.map_host(host_gfn, pa, readonly) {
        undo(table, maptrack, true);
        return Err(st);
    }
    maptrack.set(
        handle,
        Mapping {
            granter: op.dom,
            gref: op.ref_,
            readonly,
            host_gfn,
            pa,
        },
    );
    Ok((handle, pa))
}

/// One `gnttab_unmap_grant_ref` element.
///
/// The binary first asks [`Maptrack::target`]`(op.handle)` which granter to
/// lock, then passes that granter's table (`None` for
/// [`HandleTarget::Invalid`] / [`HandleTarget::Orphaned`], or if the granter
/// has vanished). Everything is re-checked here, so a handle that changed
/// while the binary was taking locks in order gets `GNTST_bad_handle`.
///
/// As Xen on Arm: `host_addr == 0` (and `dev_bus_addr == 0`) unmaps nothing
/// and succeeds; a non-zero `dev_bus_addr` must match the mapping, and a
/// `host_addr` in another page than the mapping's is `GNTST_general_error`
/// (the p2m removal fails there).
pub fn unmap_grant_ref<F: TableFrames, B: GrantMapper + ?Sized>(
    maptrack: &mut Maptrack,
    granter: Option<&mut GrantTable<F>>,
    op: &mut GnttabUnmapGrantRef,
    backend: &mut B,
) {
    op.status = match unmap_inner(maptrack, granter, op, backend) {
        Ok(()) => GNTST_okay,
        Err(st) => st,
    };
}

fn unmap_inner<F: TableFrames, B: GrantMapper + ?Sized>(
    maptrack: &mut Maptrack,
    granter: Option<&mut GrantTable<F>>,
    op: &GnttabUnmapGrantRef,
    backend: &mut B,
) -> Result<(), i16> {
    match maptrack.target(op.handle) {
        HandleTarget::Invalid => return Err(GNTST_bad_handle),
        HandleTarget::Orphaned => {
            maptrack.release(op.handle);
            return Ok(());
        }
        HandleTarget::Granter(_) => {}
    }
    let m = *maptrack.get(op.handle).ok_or(GNTST_bad_handle)?;
    let table = match granter {
        Some(t) if t.owner() == m.granter => t,
        // Not the grant state of the handle's granter: the handle changed
        // under the caller, or the granter is gone without a revoke.
        Some(_) => return Err(GNTST_bad_handle),
        None => return Err(GNTST_general_error),
    };
    if op.dev_bus_addr != 0 && op.dev_bus_addr != m.pa {
        return Err(GNTST_general_error);
    }
    if op.host_addr == 0 {
        return Ok(());
    }
    if op.host_addr >> PAGE_SHIFT != m.host_gfn {
        return Err(GNTST_general_error);
    }
    backend.unmap_host(m.host_gfn, m.pa)?;
    table.unpin(m.gref, m.readonly);
    maptrack.release(op.handle);
    Ok(())
}

/// Drop every live mapping `maptrack` holds of `granter`'s grants: unpin
/// them (clearing `GTF_reading`/`GTF_writing` as the last pins go) and free
/// the handles. Returns the stage-2 entries `(host_gfn → pa)` the binary
/// must remove from the mapper.
///
/// Used when the *mapper* dies: for each of [`Maptrack::granters`] lock
/// that granter (in the usual order) and call this; orphaned handles need
/// nothing. Also usable to force-unmap a mapper's view of one granter.
pub fn release_mappings_of<F: TableFrames>(
    maptrack: &mut Maptrack,
    granter: &mut GrantTable<F>,
) -> Vec<(GrantHandle, Mapping)> {
    let owner = granter.owner();
    let victims: Vec<(GrantHandle, Mapping)> = maptrack
        .iter()
        .filter(|(_, m)| m.granter == owner)
        .map(|(h, m)| (h, *m))
        .collect();
    for (h, m) in &victims {
        granter.unpin(m.gref, m.readonly);
        maptrack.release(*h);
    }
    victims
}
