//! The attacks, in the order they run. Each expectation is what Xen 4.17 answers (the
//! comment names the Xen function that decides); errno values print as negative numbers
//! (-1 EPERM, -2 ENOENT, -3 ESRCH, -6 ENXIO, -13 EACCES, -14 EFAULT, -17 EEXIST,
//! -22 EINVAL, -28 ENOSPC, -38 ENOSYS, -95 EOPNOTSUPP), grant statuses as `st=N`
//! (GNTST_*), traps as `undef` / `abort` / `pabort`.

#![allow(non_upper_case_globals)]

use crate::cpu1::{self, Mbox};
use crate::env::*;
use crate::gic;
use crate::hc::{self, call, cptr, ptr};
use crate::probe;
use crate::rt;
use crate::{boot, fmt};
use xen_abi::arch_arm::*;
use xen_abi::domctl::*;
use xen_abi::event_channel::*;
use xen_abi::grant_table::*;
use xen_abi::hvm_op::*;
use xen_abi::hvm_params::*;
use xen_abi::memory::*;
use xen_abi::sched::*;
use xen_abi::sysctl::*;
use xen_abi::vcpu::*;
use xen_abi::version::*;
use xen_abi::xen::*;
use zerocopy::FromZeros;

const PATTERN: u64 = 0x5a17_c0de_0bad_f00d;

fn pat(i: u64) -> u64 {
    PATTERN ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Fills scratch page `i` with the pattern; returns its address.
fn patterned(i: usize) -> u64 {
    let a = scratch(i);
    rt::fill64(a, 4096, pat);
    a
}

fn intact(a: u64) -> &'static str {
    if rt::check64(a, 4096, pat) {
        "intact"
    } else {
        "CHANGED"
    }
}

// ---------------------------------------------------------------------------------------
// Set-up and what the toolstack handed us

/// Every page of RAM the toolstack did not load must read as zero (Xen scrubs freed pages:
/// nothing of a previous owner, e.g. an earlier domain, may show).
fn ram_zeroed(e: &mut Env) -> Out {
    let skip = [e.image, e.dtb];
    let mut a = e.ram_base;
    while a < e.ram_end {
        if let Some(&(_, end)) = skip.iter().find(|&&(s, end)| a >= s && a < end) {
            a = (end + 4095) & !4095;
            continue;
        }
        let v = rt::rd64(a);
        if v != 0 {
            let leak = v == dirty(a);
            return Out::text(fmt!("dirty@{a:#x}={v:#x}{}", if leak { ",PREVIOUS-GUEST-DATA" } else { "" }));
        }
        a += 8;
    }
    Out::str("zero")
}

/// The pattern `dirty_ram` leaves at IPA `a`.
fn dirty(a: u64) -> u64 {
    0xd1d1_0000_0000_0000 | (a & 0xffff_ffff)
}

const DIRTY_START: u64 = 0x4100_0000;
const DIRTY_END: u64 = 0x4300_0000;

/// Leaves a recognisable pattern in 32 MiB of our RAM for the next guest's `ram_zeroed`,
/// and in this vCPU's debug registers for its `sysreg_prev_domain` (vCPU 1 wrote its own in
/// `sysreg_stale_after_restart`): the next domain's vCPU runs on one of our two pCPUs.
pub fn dirty_ram(e: &mut Env) -> Out {
    let _ = probe!("msr s2_0_c0_c0_4, {v}", cpu1::MAGIC_BVR, options(nostack));
    let _ = probe!("msr s2_0_c0_c0_6, {v}", cpu1::MAGIC_WVR, options(nostack));
    let end = DIRTY_END.min(e.ram_end);
    let mut a = DIRTY_START;
    while a < end {
        rt::wr64(a, dirty(a));
        a += 8;
    }
    Out::judged(fmt!("filled_{}MiB", (end.saturating_sub(DIRTY_START)) >> 20), true)
}

/// Map grant-table frame 0 where Linux puts it; the entries beyond the toolstack's two
/// reserved ones must be empty.
fn gnttab_map_clean(e: &mut Env) -> Out {
    let rc = add_to_physmap(DOMID_SELF, XENMAPSPACE_grant_table, 0, GUEST_GNTTAB_BASE >> 12);
    if rc != 0 {
        return Out::num(rc);
    }
    e.gnttab = GUEST_GNTTAB_BASE;
    let mut dirty = 0;
    for r in 2..512u64 {
        if rt::rd64(e.gnttab + r * 8) != 0 {
            dirty += 1;
        }
    }
    Out::text(fmt!("0,{}", if dirty == 0 { "clean" } else { "DIRTY" }))
}

fn shared_info_map(_: &mut Env) -> Out {
    let a = core::ptr::addr_of!(SHINFO) as u64;
    Out::num(add_to_physmap(DOMID_SELF, XENMAPSPACE_shared_info, 0, gfn(a)))
}

/// Our domid: the remote end Xen records for an unbound port allocated with DOMID_SELF.
fn own_domid(e: &mut Env) -> Out {
    let mut a = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    let rc = hc::evtchn_op(EVTCHNOP_alloc_unbound, &mut a);
    if rc != 0 {
        return Out::judged(fmt!("alloc={rc}"), false);
    }
    let mut s = EvtchnStatus::new_zeroed();
    s.dom = DOMID_SELF;
    s.port = a.port;
    let rc = hc::evtchn_op(EVTCHNOP_status, &mut s);
    hc::close(a.port);
    let id = s.u.unbound_dom();
    let ok = rc == 0 && s.status == EVTCHNSTAT_unbound && id != DOMID_SELF && id != 0 && id != e.victim;
    if ok {
        e.me = id;
    }
    Out::judged(fmt!("domid={id},status={}", s.status), ok)
}

// ---------------------------------------------------------------------------------------
// Hypercall numbers and HVC immediates (Xen: do_trap_hypercall, arm hypercall table)

fn hc_nr_64(_: &mut Env) -> Out {
    Out::num(call(64, 0, 0, 0, 0, 0))
}
fn hc_nr_max(_: &mut Env) -> Out {
    Out::num(call(u64::MAX, 0, 0, 0, 0, 0))
}
fn hc_nr_pv_only(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_mmu_update, HOLE, 1, 0, DOMID_SELF as u64, 0))
}
fn hc_nr_deprecated(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_event_channel_op_compat, HOLE, 0, 0, 0, 0))
}
fn hc_xsm_op(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_xsm_op, 0, HOLE, 0, 0, 0))
}
fn hvc_imm_1(_: &mut Env) -> Out {
    Out::str(probe!("hvc #1", 0, options(nostack)).word())
}
fn hvc_imm_ea2(_: &mut Env) -> Out {
    Out::str(probe!("hvc #0xea2", 0, options(nostack)).word())
}

// ---------------------------------------------------------------------------------------
// xen_version (common/kernel.c do_xen_version): buffers anywhere but our RAM fault

fn ver_bad_cmd(_: &mut Env) -> Out {
    Out::num(hc::xen_version(0x7fff, 0))
}
fn ver_buf_hole(_: &mut Env) -> Out {
    Out::num(hc::xen_version(XENVER_extraversion, HOLE))
}
fn ver_buf_mmio(_: &mut Env) -> Out {
    Out::num(hc::xen_version(XENVER_capabilities, gic::GICD))
}
fn ver_buf_straddles_ram_end(e: &mut Env) -> Out {
    Out::num(hc::xen_version(XENVER_capabilities, e.ram_end - 512))
}
fn ver_buf_upper_va(_: &mut Env) -> Out {
    Out::num(hc::xen_version(XENVER_extraversion, 0xffff_0000_4020_0000))
}
fn ver_buf_unaligned(_: &mut Env) -> Out {
    let a = scratch(0) + 3;
    let rc = hc::xen_version(XENVER_extraversion, a);
    Out::num(rc)
}
/// A domU gets "<denied>", not the hypervisor's command line.
fn ver_commandline_denied(_: &mut Env) -> Out {
    let a = scratch(0);
    rt::fill64(a, 2048, |_| 0x2a2a_2a2a_2a2a_2a2a);
    let rc = hc::xen_version(XENVER_commandline, a);
    let mut s = [0u8; 16];
    let mut n = 0;
    while n < 15 && rt::rd8(a + n as u64) != 0 {
        s[n] = rt::rd8(a + n as u64);
        n += 1;
    }
    Out::text(fmt!("{rc},{}", core::str::from_utf8(&s[..n]).unwrap_or("?")))
}
fn ver_pagesize_nonnull(_: &mut Env) -> Out {
    Out::num(hc::xen_version(XENVER_pagesize, scratch(0)))
}

// ---------------------------------------------------------------------------------------
// memory_op (common/memory.c do_memory_op; arch/arm/mm.c xenmem_add_to_physmap_one)

fn reservation(op: u32, domid: u16, list: u64, nr: u64, order: u32) -> i64 {
    let mut r = XenMemoryReservation::new_zeroed();
    r.extent_start = list;
    r.nr_extents = nr;
    r.extent_order = order;
    r.domid = domid;
    hc::memory_op(op, ptr(&mut r))
}

fn add_to_physmap(domid: u16, space: u32, idx: u64, gpfn: u64) -> i64 {
    let mut x = XenAddToPhysmap::new_zeroed();
    x.domid = domid;
    x.space = space;
    x.idx = idx;
    x.gpfn = gpfn;
    hc::memory_op(XENMEM_add_to_physmap, ptr(&mut x))
}

/// A one-entry gmfn_foreign batch into `domid` at `gpfn`: (rc, errs[0]).
fn batch(domid: u16, foreign: u16, idx: u64, gpfn: u64) -> (i64, i32) {
    let idxs = [idx];
    let gpfns = [gpfn];
    let mut errs = [0x7777i32];
    let mut b = XenAddToPhysmapBatch::new_zeroed();
    b.domid = domid;
    b.space = XENMAPSPACE_gmfn_foreign as u16;
    b.size = 1;
    b.foreign_domid = foreign;
    b.idxs = cptr(&idxs);
    b.gpfns = cptr(&gpfns);
    b.errs = ptr(&mut errs);
    let rc = hc::memory_op(XENMEM_add_to_physmap_batch, ptr(&mut b));
    (rc, errs[0])
}

/// One page of `list` at scratch 1 holding `gfn`.
fn one_gfn(g: u64) -> u64 {
    let l = scratch(1);
    rt::wr64(l, g);
    l
}

fn mem_bad_op(_: &mut Env) -> Out {
    Out::num(hc::memory_op(63, scratch(0)))
}
/// Xen: xsm_memory_adjust_reservation fails: "0 extents done".
fn mem_populate_dom0(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, 0, one_gfn(ABOVE_RAM_GFN), 1, 0))
}
fn mem_decrease_victim(e: &mut Env) -> Out {
    Out::num(reservation(XENMEM_decrease_reservation, e.victim, one_gfn(0x40000), 1, 0))
}
fn mem_populate_nonexistent(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, NO_DOMAIN, one_gfn(ABOVE_RAM_GFN), 1, 0))
}
fn mem_reservation_arg_hole(_: &mut Env) -> Out {
    Out::num(hc::memory_op(XENMEM_populate_physmap, HOLE))
}
fn mem_populate_order_10(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, DOMID_SELF, one_gfn(0x80000), 1, 10))
}
fn mem_populate_order_63(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, DOMID_SELF, one_gfn(0x80000), 1, 63))
}
fn mem_populate_gfn_beyond_ipa(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, DOMID_SELF, one_gfn(1 << 40), 1, 0))
}
fn mem_populate_nr_huge(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, DOMID_SELF, HOLE, 1 << 60, 0))
}
fn mem_populate_list_hole(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_populate_physmap, DOMID_SELF, HOLE, 1, 0))
}
/// Populate beyond our RAM until max_pages stops it: some pages (libxl's slack), all
/// zeroed; then give them back.
fn mem_populate_slack(_: &mut Env) -> Out {
    const BASE: u64 = 0x50000;
    const N: u64 = 512;
    let list = scratch(2);
    for i in 0..N {
        rt::wr64(list + i * 8, BASE + i);
    }
    let n = reservation(XENMEM_populate_physmap, DOMID_SELF, list, N, 0);
    let mut zero = true;
    for i in 0..n.max(0) as u64 {
        if !rt::check64((BASE + i) << 12, 4096, |_| 0) {
            zero = false;
        }
    }
    let back = reservation(XENMEM_decrease_reservation, DOMID_SELF, list, n.max(0) as u64, 0);
    let ok = n > 0 && (n as u64) < N && zero && back == n;
    Out::judged(fmt!("n={n},{},back={back}", if zero { "zeroed" } else { "NOT-ZEROED" }), ok)
}
fn mem_decrease_hole(_: &mut Env) -> Out {
    Out::num(reservation(XENMEM_decrease_reservation, DOMID_SELF, one_gfn(HOLE >> 12), 1, 0))
}
fn mem_current_reservation_dom0(_: &mut Env) -> Out {
    let d: u16 = 0;
    Out::num(hc::memory_op(XENMEM_current_reservation, cptr(&d)))
}
fn mem_current_reservation_nonexistent(_: &mut Env) -> Out {
    let d: u16 = NO_DOMAIN;
    Out::num(hc::memory_op(XENMEM_current_reservation, cptr(&d)))
}
fn mem_maximum_gpfn_victim(e: &mut Env) -> Out {
    let d: u16 = e.victim;
    Out::num(hc::memory_op(XENMEM_maximum_gpfn, cptr(&d)))
}
fn mem_atp_foreign_space(_: &mut Env) -> Out {
    Out::num(add_to_physmap(DOMID_SELF, XENMAPSPACE_gmfn_foreign, 0x40000, gfn(scratch(3))))
}
fn mem_atp_bad_space(_: &mut Env) -> Out {
    Out::num(add_to_physmap(DOMID_SELF, 99, 0, gfn(scratch(3))))
}
fn mem_atp_shared_info_idx1(_: &mut Env) -> Out {
    Out::num(add_to_physmap(DOMID_SELF, XENMAPSPACE_shared_info, 1, gfn(scratch(3))))
}
fn mem_atp_dom0(_: &mut Env) -> Out {
    Out::num(add_to_physmap(0, XENMAPSPACE_shared_info, 0, 0x40000))
}
fn mem_atp_nonexistent(_: &mut Env) -> Out {
    Out::num(add_to_physmap(NO_DOMAIN, XENMAPSPACE_shared_info, 0, 0x40000))
}
/// Foreign mapping from a domU: Xen reports the refusal per entry (xsm_map_gmfn_foreign)
/// and the page at gpfn stays ours.
fn foreign(foreign: u16, idx: u64) -> Out {
    let a = patterned(3);
    let (rc, err) = batch(DOMID_SELF, foreign, idx, gfn(a));
    Out::text(fmt!("rc={rc},err={err},{}", intact(a)))
}
fn mem_foreign_map_dom0(_: &mut Env) -> Out {
    foreign(0, 0x40000)
}
fn mem_foreign_map_victim(e: &mut Env) -> Out {
    foreign(e.victim, 0x40000)
}
fn mem_foreign_map_nonexistent(_: &mut Env) -> Out {
    foreign(NO_DOMAIN, 0x40000)
}
fn mem_foreign_map_self(_: &mut Env) -> Out {
    foreign(DOMID_SELF, gfn(scratch(4)))
}
fn mem_batch_into_victim(e: &mut Env) -> Out {
    let (rc, _) = batch(e.victim, DOMID_SELF, 0x40000, 0x40000);
    Out::num(rc)
}
fn remove_from_physmap(domid: u16, g: u64) -> i64 {
    let mut x = XenRemoveFromPhysmap::new_zeroed();
    x.domid = domid;
    x.gpfn = g;
    hc::memory_op(XENMEM_remove_from_physmap, ptr(&mut x))
}
fn mem_remove_victim_page(e: &mut Env) -> Out {
    Out::num(remove_from_physmap(e.victim, 0x40000))
}
fn mem_remove_dom0_page(_: &mut Env) -> Out {
    Out::num(remove_from_physmap(0, 0x40000))
}
fn mem_remove_unpopulated(_: &mut Env) -> Out {
    Out::num(remove_from_physmap(DOMID_SELF, 0x60000))
}
fn mem_claim_pages(e: &mut Env) -> Out {
    Out::num(reservation(XENMEM_claim_pages, e.me, 0, 16, 0))
}
fn mem_acquire_resource_victim(e: &mut Env) -> Out {
    let frames = [gfn(scratch(3))];
    let mut a = XenMemAcquireResource::new_zeroed();
    a.domid = e.victim;
    a.type_ = XENMEM_resource_grant_table;
    a.id = XENMEM_resource_grant_table_id_shared;
    a.nr_frames = 1;
    a.frame_list = cptr(&frames);
    Out::num(hc::memory_op(XENMEM_acquire_resource, ptr(&mut a)))
}

// ---------------------------------------------------------------------------------------
// grant_table_op (common/grant_table.c)

/// Writes grant entry `r` as Linux does: frame and domid first, then the flags.
fn set_grant(e: &Env, r: u64, flags: u16, domid: u16, frame: u32) {
    let a = e.gnttab + r * 8;
    if flags == 0 {
        rt::wr16(a, 0);
        rt::dsb();
    }
    rt::wr32(a + 4, frame);
    rt::wr16(a + 2, domid);
    rt::dsb();
    rt::wr16(a, flags);
    rt::dsb();
}

fn map_grant(dom: u16, r: u32, host: u64, flags: u32) -> GnttabMapGrantRef {
    let mut m = GnttabMapGrantRef::new_zeroed();
    m.host_addr = host;
    m.flags = flags;
    m.ref_ = r;
    m.dom = dom;
    m.status = 0x77;
    let rc = hc::grant_op(GNTTABOP_map_grant_ref, ptr(&mut m), 1);
    if rc != 0 {
        m.status = 1000 + rc as i16;
    }
    m
}

fn unmap_grant(host: u64, handle: u32) -> i16 {
    let mut u = GnttabUnmapGrantRef::new_zeroed();
    u.host_addr = host;
    u.handle = handle;
    u.status = 0x77;
    let rc = hc::grant_op(GNTTABOP_unmap_grant_ref, ptr(&mut u), 1);
    if rc != 0 {
        return 1000 + rc as i16;
    }
    u.status
}

fn gnt_bad_cmd(_: &mut Env) -> Out {
    Out::num(hc::grant_op(99, scratch(0), 1))
}
fn gnt_opaque_bits(_: &mut Env) -> Out {
    Out::num(hc::grant_op(GNTTABOP_map_grant_ref | (1 << 12), scratch(0), 1))
}
fn gnt_count_negative(_: &mut Env) -> Out {
    Out::num(hc::grant_op(GNTTABOP_map_grant_ref, scratch(0), 0x8000_0000))
}
fn gnt_map_uop_hole(_: &mut Env) -> Out {
    Out::num(hc::grant_op(GNTTABOP_map_grant_ref, HOLE, 1))
}
/// Map `dom`'s `r` over our patterned scratch page: refused, the page stays ours.
fn map_over_scratch(dom: u16, r: u32, flags: u32) -> Out {
    let a = patterned(3);
    let m = map_grant(dom, r, a, flags);
    if m.status == 0 {
        unmap_grant(a, m.handle);
    }
    Out::text(fmt!("st={},{}", m.status, intact(a)))
}
fn gnt_map_domid_self(_: &mut Env) -> Out {
    map_over_scratch(DOMID_SELF, 0, GNTMAP_host_map)
}
fn gnt_map_nonexistent(_: &mut Env) -> Out {
    map_over_scratch(NO_DOMAIN, 0, GNTMAP_host_map)
}
fn gnt_map_dom0_ref_oob(_: &mut Env) -> Out {
    map_over_scratch(0, 0xffff_fff0, GNTMAP_host_map)
}
fn gnt_map_dom0_ref0(_: &mut Env) -> Out {
    map_over_scratch(0, 0, GNTMAP_host_map)
}
/// The victim's console and xenstore pages are granted to dom0, not to us; and Xen on Arm's
/// default XSM module, SILO, refuses any grant operation between two domUs before looking
/// at the entry: GNTST_permission_denied (xsm/silo.c; also for the copies below).
fn gnt_map_victim_console(e: &mut Env) -> Out {
    map_over_scratch(e.victim, GNTTAB_RESERVED_CONSOLE, GNTMAP_host_map)
}
fn gnt_map_victim_xenstore(e: &mut Env) -> Out {
    map_over_scratch(e.victim, GNTTAB_RESERVED_XENSTORE, GNTMAP_host_map | GNTMAP_readonly)
}
fn gnt_map_no_flags(_: &mut Env) -> Out {
    map_over_scratch(0, 0, 0)
}
fn gnt_map_device_map(e: &mut Env) -> Out {
    map_over_scratch(e.victim, 0, GNTMAP_host_map | GNTMAP_device_map)
}
/// A grant of our own page to ourselves maps (Xen allows it), shows the page, and goes
/// away on unmap; a second unmap of the handle is refused.
fn gnt_map_self_grant(e: &mut Env) -> Out {
    if e.me == DOMID_SELF || e.gnttab == 0 {
        return Out::judged(fmt!("skipped"), false);
    }
    let src = patterned(4);
    const REF: u64 = 10;
    set_grant(e, REF, GTF_permit_access, e.me, gfn(src) as u32);
    let host = ABOVE_RAM_GFN << 12;
    let m = map_grant(e.me, REF as u32, host, GNTMAP_host_map);
    let same = m.status == 0 && rt::check64(host, 4096, pat);
    let un = if m.status == 0 { unmap_grant(host, m.handle) } else { 0x55 };
    let after = rt::read64(host).word();
    let again = if m.status == 0 { unmap_grant(host, m.handle) } else { 0x55 };
    set_grant(e, REF, 0, 0, 0);
    Out::text(fmt!("st={},{},unmap={un},{after},again={again}", m.status, if same { "same" } else { "DIFFERENT" }))
}
fn gnt_unmap_bad_handle(_: &mut Env) -> Out {
    Out::text(fmt!("st={}", unmap_grant(scratch(3), 0xffff_ffff)))
}
fn gnt_unmap_unused_handle(_: &mut Env) -> Out {
    Out::text(fmt!("st={}", unmap_grant(scratch(3), 5)))
}

fn copy(src: (u16, u64, u16), dst: (u16, u64, u16), len: u16, flags: u16) -> i16 {
    let mut c = GnttabCopy::new_zeroed();
    c.source.domid = src.0;
    c.source.u = GnttabCopyPtrU(src.1);
    c.source.offset = src.2;
    c.dest.domid = dst.0;
    c.dest.u = GnttabCopyPtrU(dst.1);
    c.dest.offset = dst.2;
    c.len = len;
    c.flags = flags;
    c.status = 0x77;
    let rc = hc::grant_op(GNTTABOP_copy, ptr(&mut c), 1);
    if rc != 0 {
        return 1000 + rc as i16;
    }
    c.status
}
fn gnt_copy_self_overlap(_: &mut Env) -> Out {
    let a = patterned(4);
    let g = gfn(a);
    Out::text(fmt!("st={}", copy((DOMID_SELF, g, 0), (DOMID_SELF, g, 1024), 2048, 0)))
}
fn gnt_copy_len_4097(_: &mut Env) -> Out {
    let g = gfn(scratch(4));
    Out::text(fmt!("st={}", copy((DOMID_SELF, g, 0), (DOMID_SELF, gfn(scratch(5)), 0), 4097, 0)))
}
fn gnt_copy_offset_overflow(_: &mut Env) -> Out {
    let g = gfn(scratch(4));
    Out::text(fmt!("st={}", copy((DOMID_SELF, g, 4000), (DOMID_SELF, gfn(scratch(5)), 0), 200, 0)))
}
/// Only DOMID_SELF may name a frame; other domains only through a grant reference.
fn gnt_copy_dom0_gmfn(_: &mut Env) -> Out {
    let a = patterned(3);
    let st = copy((0, 0x40000, 0), (DOMID_SELF, gfn(a), 0), 64, 0);
    Out::text(fmt!("st={st},{}", intact(a)))
}
fn gnt_copy_victim_gref0(e: &mut Env) -> Out {
    let a = patterned(3);
    let st = copy((e.victim, 0, 0), (DOMID_SELF, gfn(a), 0), 2048, GNTCOPY_source_gref);
    Out::text(fmt!("st={st},{}", intact(a)))
}
fn gnt_copy_nonexistent_gref(_: &mut Env) -> Out {
    let st = copy((NO_DOMAIN, 0, 0), (DOMID_SELF, gfn(scratch(5)), 0), 64, GNTCOPY_source_gref);
    Out::text(fmt!("st={st}"))
}
fn gnt_copy_src_hole_gmfn(_: &mut Env) -> Out {
    let st = copy((DOMID_SELF, HOLE >> 12, 0), (DOMID_SELF, gfn(scratch(5)), 0), 64, 0);
    Out::text(fmt!("st={st}"))
}
fn gnt_copy_dst_victim_gref0(e: &mut Env) -> Out {
    let a = patterned(3);
    let st = copy((DOMID_SELF, gfn(a), 0), (e.victim, 0, 0), 64, GNTCOPY_dest_gref);
    Out::text(fmt!("st={st}"))
}
fn setup_table(dom: u16, nr: u32, count: u64) -> (i64, i16) {
    let frames = [0u64; 4];
    let mut s = GnttabSetupTable::new_zeroed();
    s.dom = dom;
    s.nr_frames = nr;
    s.status = 0x77;
    s.frame_list = cptr(&frames);
    let rc = hc::grant_op(GNTTABOP_setup_table, ptr(&mut s), count);
    (rc, s.status)
}
fn gnt_setup_count2(_: &mut Env) -> Out {
    Out::num(setup_table(DOMID_SELF, 1, 2).0)
}
fn gnt_setup_victim(e: &mut Env) -> Out {
    let (rc, st) = setup_table(e.victim, 1, 1);
    Out::text(fmt!("rc={rc},st={st}"))
}
fn gnt_setup_too_many(_: &mut Env) -> Out {
    let (rc, st) = setup_table(DOMID_SELF, 1000, 1);
    Out::text(fmt!("rc={rc},st={st}"))
}
fn gnt_query_size_victim(e: &mut Env) -> Out {
    let mut q = GnttabQuerySize::new_zeroed();
    q.dom = e.victim;
    q.status = 0x77;
    let rc = hc::grant_op(GNTTABOP_query_size, ptr(&mut q), 1);
    Out::text(fmt!("rc={rc},st={},frames={}", q.status, q.nr_frames))
}
fn set_version(v: u32) -> i64 {
    let mut s = GnttabSetVersion { version: v };
    hc::grant_op(GNTTABOP_set_version, ptr(&mut s), 1)
}
fn gnt_set_version_2(_: &mut Env) -> Out {
    Out::num(set_version(2))
}
fn gnt_set_version_3(_: &mut Env) -> Out {
    Out::num(set_version(3))
}
fn gnt_atp_frame_huge(_: &mut Env) -> Out {
    Out::num(add_to_physmap(DOMID_SELF, XENMAPSPACE_grant_table, 1000, (GUEST_GNTTAB_BASE >> 12) + 100))
}
fn gnt_atp_status_frame(_: &mut Env) -> Out {
    Out::num(add_to_physmap(DOMID_SELF, XENMAPSPACE_grant_table, 1 << 31, (GUEST_GNTTAB_BASE >> 12) + 101))
}

// ---------------------------------------------------------------------------------------
// event_channel_op (common/event_channel.c)

fn alloc_unbound(dom: u16, remote: u16) -> (i64, u32) {
    let mut a = EvtchnAllocUnbound { dom, remote_dom: remote, port: 0 };
    let rc = hc::evtchn_op(EVTCHNOP_alloc_unbound, &mut a);
    (rc, a.port)
}
fn bind_interdomain(remote: u16, port: u32) -> (i64, u32) {
    let mut b = EvtchnBindInterdomain::new_zeroed();
    b.remote_dom = remote;
    b.remote_port = port;
    let rc = hc::evtchn_op(EVTCHNOP_bind_interdomain, &mut b);
    (rc, b.local_port)
}
fn bind_virq(virq: u32, vcpu: u32) -> (i64, u32) {
    let mut b = EvtchnBindVirq { virq, vcpu, port: 0 };
    let rc = hc::evtchn_op(EVTCHNOP_bind_virq, &mut b);
    (rc, b.port)
}
fn bind_ipi(vcpu: u32) -> (i64, u32) {
    let mut b = EvtchnBindIpi { vcpu, port: 0 };
    let rc = hc::evtchn_op(EVTCHNOP_bind_ipi, &mut b);
    (rc, b.port)
}

fn ev_bad_cmd(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_event_channel_op, 99, scratch(0), 0, 0, 0))
}
fn ev_send_oob(_: &mut Env) -> Out {
    Out::num(hc::send(0x7fff_ffff))
}
fn ev_send_port0(_: &mut Env) -> Out {
    Out::num(hc::send(0))
}
fn ev_send_closed(_: &mut Env) -> Out {
    let (rc, p) = alloc_unbound(DOMID_SELF, 0);
    if rc != 0 {
        return Out::judged(fmt!("alloc={rc}"), false);
    }
    hc::close(p);
    Out::num(hc::send(p))
}
fn ev_close_twice(_: &mut Env) -> Out {
    let (_, p) = alloc_unbound(DOMID_SELF, 0);
    let a = hc::close(p);
    let b = hc::close(p);
    Out::text(fmt!("{a},{b}"))
}
fn ev_close_port0(_: &mut Env) -> Out {
    Out::num(hc::close(0))
}
fn ev_alloc_unbound_dom0(_: &mut Env) -> Out {
    Out::num(alloc_unbound(0, DOMID_SELF).0)
}
fn ev_alloc_unbound_victim(e: &mut Env) -> Out {
    Out::num(alloc_unbound(e.victim, DOMID_SELF).0)
}
fn ev_alloc_unbound_nonexistent(_: &mut Env) -> Out {
    Out::num(alloc_unbound(NO_DOMAIN, DOMID_SELF).0)
}
/// A port of ours for the victim to bind: Xen on Arm's default XSM policy (SILO) refuses
/// any channel between two unprivileged domains (xsm/silo.c silo_evtchn_unbound).
fn ev_alloc_unbound_remote_victim(e: &mut Env) -> Out {
    let (rc, p) = alloc_unbound(DOMID_SELF, e.victim);
    if rc == 0 {
        hc::close(p);
    }
    Out::num(rc)
}
/// Bind to every low port of `dom`: none is unbound for us (they belong to dom0's daemons
/// or are bound already), so each is -EINVAL; any success is closed and reported.
fn bind_all(dom: u16) -> Out {
    let (mut einval, mut other, mut bound) = (0, 0, 0);
    for p in 1..64 {
        let (rc, l) = bind_interdomain(dom, p);
        match rc {
            0 => {
                bound += 1;
                hc::close(l);
            }
            -22 => einval += 1,
            _ => other += 1,
        }
    }
    Out::judged(fmt!("einval={einval},other={other},BOUND={bound}"), einval == 63)
}
fn ev_bind_dom0_ports(_: &mut Env) -> Out {
    bind_all(0)
}
fn ev_bind_victim_ports(e: &mut Env) -> Out {
    bind_all(e.victim)
}
fn ev_bind_nonexistent(_: &mut Env) -> Out {
    Out::num(bind_interdomain(NO_DOMAIN, 1).0)
}
fn ev_bind_oob_port(_: &mut Env) -> Out {
    Out::num(bind_interdomain(DOMID_SELF, 1 << 20).0)
}
/// A loopback channel: the unbound end binds once; a second bind is refused.
fn ev_double_bind(_: &mut Env) -> Out {
    let (_, p) = alloc_unbound(DOMID_SELF, DOMID_SELF);
    let (a, q) = bind_interdomain(DOMID_SELF, p);
    let (b, r) = bind_interdomain(DOMID_SELF, p);
    if b == 0 {
        hc::close(r);
    }
    hc::close(q);
    hc::close(p);
    Out::text(fmt!("{a},{b}"))
}
fn ev_bind_virq_oob(_: &mut Env) -> Out {
    Out::num(bind_virq(200, 0).0)
}
fn ev_bind_virq_global_vcpu1(_: &mut Env) -> Out {
    Out::num(bind_virq(VIRQ_DOM_EXC, 1).0)
}
fn ev_bind_virq_bad_vcpu(_: &mut Env) -> Out {
    Out::num(bind_virq(VIRQ_TIMER, 9).0)
}
fn ev_bind_virq_twice(_: &mut Env) -> Out {
    let (a, p) = bind_virq(VIRQ_DEBUG, 0);
    let (b, q) = bind_virq(VIRQ_DEBUG, 0);
    if b == 0 {
        hc::close(q);
    }
    hc::close(p);
    Out::text(fmt!("{a},{b}"))
}
fn ev_bind_ipi_bad_vcpu(_: &mut Env) -> Out {
    Out::num(bind_ipi(9).0)
}
fn ev_bind_vcpu_bad(_: &mut Env) -> Out {
    let (_, p) = bind_ipi(0);
    let mut b = EvtchnBindVcpu { port: p, vcpu: 9 };
    let rc = hc::evtchn_op(EVTCHNOP_bind_vcpu, &mut b);
    hc::close(p);
    Out::num(rc)
}
fn ev_unmask_oob(_: &mut Env) -> Out {
    let mut u = EvtchnUnmask { port: 0x7fff_ffff };
    Out::num(hc::evtchn_op(EVTCHNOP_unmask, &mut u))
}
fn status(dom: u16, port: u32) -> i64 {
    let mut s = EvtchnStatus::new_zeroed();
    s.dom = dom;
    s.port = port;
    hc::evtchn_op(EVTCHNOP_status, &mut s)
}
fn ev_status_dom0(_: &mut Env) -> Out {
    Out::num(status(0, 1))
}
fn ev_status_nonexistent(_: &mut Env) -> Out {
    Out::num(status(NO_DOMAIN, 1))
}
fn ev_status_unaligned_arg(_: &mut Env) -> Out {
    // The argument at an odd address: Xen copies bytes, it works.
    let (_, p) = alloc_unbound(DOMID_SELF, 0);
    let a = scratch(5) + 1;
    for i in 0..24 {
        rt::wr8(a + i, 0);
    }
    rt::wr8(a, 0xf0);
    rt::wr8(a + 1, 0x7f); // dom = DOMID_SELF
    rt::wr8(a + 4, p as u8);
    rt::wr8(a + 5, (p >> 8) as u8);
    let rc = call(HYPERVISOR_event_channel_op, EVTCHNOP_status as u64, a, 0, 0, 0);
    let st = rt::rd8(a + 8);
    hc::close(p);
    Out::text(fmt!("{rc},status={st}"))
}
fn reset(dom: u16) -> i64 {
    let mut r = EvtchnReset { dom };
    hc::evtchn_op(EVTCHNOP_reset, &mut r)
}
fn ev_reset_dom0(_: &mut Env) -> Out {
    Out::num(reset(0))
}
fn ev_reset_victim(e: &mut Env) -> Out {
    Out::num(reset(e.victim))
}
fn ev_set_priority_2l(_: &mut Env) -> Out {
    let mut s = EvtchnSetPriority { port: crate::console::port(), priority: 3 };
    Out::num(hc::evtchn_op(EVTCHNOP_set_priority, &mut s))
}
fn ev_expand_array_2l(_: &mut Env) -> Out {
    let mut x = EvtchnExpandArray { array_gfn: gfn(scratch(6)) };
    Out::num(hc::evtchn_op(EVTCHNOP_expand_array, &mut x))
}
fn init_control(g: u64, offset: u32, vcpu: u32) -> i64 {
    let mut c = EvtchnInitControl::new_zeroed();
    c.control_gfn = g;
    c.offset = offset;
    c.vcpu = vcpu;
    hc::evtchn_op(EVTCHNOP_init_control, &mut c)
}
fn ev_init_control_bad_offset(_: &mut Env) -> Out {
    Out::num(init_control(gfn(scratch(6)), 4093, 0))
}
fn ev_init_control_hole(_: &mut Env) -> Out {
    Out::num(init_control(HOLE >> 12, 0, 0))
}
/// Allocate until refused: the toolstack's max_evtchn_port (1023) bounds the ports.
fn ev_port_exhaustion(_: &mut Env) -> Out {
    let mut ports = [0u16; 4200];
    let (mut n, mut max, mut err) = (0usize, 0u32, 0i64);
    while n < ports.len() {
        let (rc, p) = alloc_unbound(DOMID_SELF, 0);
        if rc != 0 {
            err = rc;
            break;
        }
        ports[n] = p as u16;
        max = max.max(p);
        n += 1;
    }
    for &p in &ports[..n] {
        hc::close(p as u32);
    }
    Out::text(fmt!("max_port={max},err={err}"))
}
fn storm(port: u32, n: u32) -> Out {
    let mut bad = 0;
    let t = rt::now();
    for _ in 0..n {
        if hc::send(port) != 0 {
            bad += 1;
        }
    }
    let us = (rt::now() - t) * 1_000_000 / rt::freq();
    Out::judged(fmt!("sent={n},errors={bad},{}us", us), bad == 0)
}
fn ev_storm_loopback(_: &mut Env) -> Out {
    let (_, p) = alloc_unbound(DOMID_SELF, DOMID_SELF);
    let (rc, q) = bind_interdomain(DOMID_SELF, p);
    if rc != 0 {
        return Out::judged(fmt!("bind={rc}"), false);
    }
    let o = storm(q, 100_000);
    hc::close(q);
    hc::close(p);
    o
}
fn ev_storm_ipi(_: &mut Env) -> Out {
    let (rc, p) = bind_ipi(0);
    if rc != 0 {
        return Out::judged(fmt!("bind={rc}"), false);
    }
    let o = storm(p, 100_000);
    hc::close(p);
    o
}

// ---------------------------------------------------------------------------------------
// sched_op, vcpu_op, hvm_op, console_io, vm_assist, platform_op, physdev_op, domctl,
// sysctl, multicall

fn sched_bad_cmd(_: &mut Env) -> Out {
    Out::num(hc::sched_op(99, scratch(0)))
}
fn remote_shutdown(dom: u16) -> i64 {
    let s = SchedRemoteShutdown { domain_id: dom, _pad0: 0, reason: SHUTDOWN_poweroff };
    hc::sched_op(SCHEDOP_remote_shutdown, cptr(&s))
}
fn sched_remote_shutdown_victim(e: &mut Env) -> Out {
    Out::num(remote_shutdown(e.victim))
}
fn sched_remote_shutdown_dom0(_: &mut Env) -> Out {
    Out::num(remote_shutdown(0))
}
fn sched_remote_shutdown_nonexistent(_: &mut Env) -> Out {
    Out::num(remote_shutdown(NO_DOMAIN))
}
fn sched_poll_too_many(_: &mut Env) -> Out {
    let mut p = SchedPoll::new_zeroed();
    p.ports = scratch(0);
    p.nr_ports = 1000;
    Out::num(hc::sched_op(SCHEDOP_poll, ptr(&mut p)))
}
fn vcpu_info(vcpu: u64, g: u64, offset: u32) -> i64 {
    let mut r = VcpuRegisterVcpuInfo { mfn: g, offset, rsvd: 0 };
    call(HYPERVISOR_vcpu_op, VCPUOP_register_vcpu_info as u64, vcpu, ptr(&mut r), 0, 0)
}
fn vcpu_op_bad_vcpu(_: &mut Env) -> Out {
    Out::num(vcpu_info(9, gfn(scratch(7)), 0))
}
fn vcpu_op_bad_cmd(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_vcpu_op, 99, 0, scratch(0), 0, 0))
}
fn vcpu_info_register(_: &mut Env) -> Out {
    Out::num(vcpu_info(0, gfn(scratch(7)), 64))
}
fn vcpu_info_twice(_: &mut Env) -> Out {
    Out::num(vcpu_info(0, gfn(scratch(8)), 0))
}
fn vcpu_info_offset_oob(_: &mut Env) -> Out {
    Out::num(vcpu_info(0, gfn(scratch(8)), 4090))
}
fn vcpu_info_misaligned(_: &mut Env) -> Out {
    Out::num(vcpu_info(0, gfn(scratch(8)), 4))
}
fn vcpu_info_other_running(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    Out::num(vcpu_info(1, gfn(scratch(8)), 0))
}
fn hvm_param(op: u32, dom: u16, index: u32, value: u64) -> i64 {
    let mut p = XenHvmParam { domid: dom, pad: 0, index, value };
    hc::hvm_op(op, ptr(&mut p))
}
fn hvm_bad_op(_: &mut Env) -> Out {
    Out::num(hc::hvm_op(99, scratch(0)))
}
fn hvm_get_param_oob(_: &mut Env) -> Out {
    Out::num(hvm_param(HVMOP_get_param, DOMID_SELF, 1000, 0))
}
fn hvm_set_own_console_pfn(_: &mut Env) -> Out {
    Out::num(hvm_param(HVMOP_set_param, DOMID_SELF, HVM_PARAM_CONSOLE_PFN, 0x40000))
}
fn hvm_get_param_dom0(_: &mut Env) -> Out {
    Out::num(hvm_param(HVMOP_get_param, 0, HVM_PARAM_STORE_PFN, 0))
}
fn hvm_get_param_nonexistent(_: &mut Env) -> Out {
    Out::num(hvm_param(HVMOP_get_param, NO_DOMAIN, HVM_PARAM_STORE_PFN, 0))
}
fn hvm_set_param_victim(e: &mut Env) -> Out {
    Out::num(hvm_param(HVMOP_set_param, e.victim, HVM_PARAM_STORE_EVTCHN, 1))
}
fn console_write_domu(_: &mut Env) -> Out {
    let a = scratch(0);
    rt::wr8(a, b'!');
    Out::num(call(HYPERVISOR_console_io, 0, 1, a, 0, 0))
}
fn console_write_bad_ptr(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_console_io, 0, 64, HOLE, 0, 0))
}
fn console_bad_cmd(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_console_io, 99, 0, 0, 0, 0))
}
fn vm_assist_bad_type(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_vm_assist, 0, 1000, 0, 0, 0))
}
fn vm_assist_bad_cmd(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_vm_assist, 99, 5, 0, 0, 0))
}
fn platform_op_domu(_: &mut Env) -> Out {
    let mut op = [0u64; 16];
    op[0] = 61 | (0x0300_0001u64 << 32); // XENPF_settime64, XENPF_INTERFACE_VERSION
    Out::num(call(HYPERVISOR_platform_op, ptr(&mut op), 0, 0, 0, 0))
}
fn physdev_op(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_physdev_op, 0, scratch(0), 0, 0, 0))
}
fn domctl(cmd: u32, dom: u16, version: u32) -> i64 {
    let mut d = XenDomctl::new_zeroed();
    d.cmd = cmd;
    d.interface_version = version;
    d.domain = dom;
    call(HYPERVISOR_domctl, ptr(&mut d), 0, 0, 0, 0)
}
fn domctl_destroy_victim(e: &mut Env) -> Out {
    Out::num(domctl(XEN_DOMCTL_destroydomain, e.victim, XEN_DOMCTL_INTERFACE_VERSION))
}
fn domctl_pause_dom0(_: &mut Env) -> Out {
    Out::num(domctl(XEN_DOMCTL_pausedomain, 0, XEN_DOMCTL_INTERFACE_VERSION))
}
fn domctl_getdomaininfo_dom0(_: &mut Env) -> Out {
    Out::num(domctl(XEN_DOMCTL_getdomaininfo, 0, XEN_DOMCTL_INTERFACE_VERSION))
}
fn domctl_createdomain(_: &mut Env) -> Out {
    Out::num(domctl(XEN_DOMCTL_createdomain, 0, XEN_DOMCTL_INTERFACE_VERSION))
}
fn domctl_pause_nonexistent(_: &mut Env) -> Out {
    Out::num(domctl(XEN_DOMCTL_pausedomain, NO_DOMAIN, XEN_DOMCTL_INTERFACE_VERSION))
}
fn domctl_bad_version(e: &mut Env) -> Out {
    Out::num(domctl(XEN_DOMCTL_pausedomain, e.victim, 0x14))
}
fn sysctl(cmd: u32, version: u32) -> i64 {
    let mut s = XenSysctl::new_zeroed();
    s.cmd = cmd;
    s.interface_version = version;
    call(HYPERVISOR_sysctl, ptr(&mut s), 0, 0, 0, 0)
}
fn sysctl_physinfo(_: &mut Env) -> Out {
    Out::num(sysctl(XEN_SYSCTL_physinfo, XEN_SYSCTL_INTERFACE_VERSION))
}
fn sysctl_readconsole(_: &mut Env) -> Out {
    Out::num(sysctl(XEN_SYSCTL_readconsole, XEN_SYSCTL_INTERFACE_VERSION))
}
fn sysctl_bad_version(_: &mut Env) -> Out {
    Out::num(sysctl(XEN_SYSCTL_physinfo, 0x14))
}

/// `n` multicall entries at scratch 9..: entry i is `f(i)` = (op, args).
fn multicall(n: usize, f: impl Fn(usize) -> (u64, [u64; 3])) -> (i64, u64) {
    let base = scratch(9);
    for i in 0..n {
        let (op, a) = f(i);
        let e = base + i as u64 * 64;
        rt::wr64(e, op);
        rt::wr64(e + 8, 0x7777);
        for (j, v) in a.iter().enumerate() {
            rt::wr64(e + 16 + j as u64 * 8, *v);
        }
        for j in 3..6 {
            rt::wr64(e + 16 + j * 8, 0);
        }
    }
    let rc = call(HYPERVISOR_multicall, base, n as u64, 0, 0, 0);
    (rc, base)
}
fn multicall_nested(_: &mut Env) -> Out {
    let (rc, base) = multicall(1, |_| (HYPERVISOR_multicall, [scratch(10), 1, 0]));
    Out::text(fmt!("rc={rc},inner={}", rt::rd64(base + 8) as i64))
}
fn multicall_list_hole(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_multicall, HOLE, 2, 0, 0, 0))
}
fn multicall_nr_huge(_: &mut Env) -> Out {
    Out::num(call(HYPERVISOR_multicall, HOLE, 0x7fff_ffff, 0, 0, 0))
}
fn multicall_bad_op(_: &mut Env) -> Out {
    let (rc, base) = multicall(1, |_| (64, [0, 0, 0]));
    Out::text(fmt!("rc={rc},res={}", rt::rd64(base + 8) as i64))
}
fn multicall_96_versions(_: &mut Env) -> Out {
    let n = 96;
    let (rc, base) = multicall(n, |_| (HYPERVISOR_xen_version, [0, 0, 0]));
    let bad = (0..n).filter(|&i| rt::rd64(base + i as u64 * 64 + 8) != 0x4_0011).count();
    Out::text(fmt!("rc={rc},bad={bad}"))
}

// ---------------------------------------------------------------------------------------
// PSCI and SMCCC (arch/arm/vsmc.c, arch/arm/vpsci.c)

fn psci_version(_: &mut Env) -> Out {
    Out::text(fmt!("{:#x}", hc::smccc_hvc(hc::PSCI_VERSION, 0, 0, 0)[0]))
}
fn psci_features_unknown(_: &mut Env) -> Out {
    Out::num(hc::smccc_hvc(hc::PSCI_FEATURES, 0xc400_0fff, 0, 0)[0] as i64)
}
fn smc_unknown_fid(_: &mut Env) -> Out {
    Out::num(hc::smccc_smc(0x8200_ffff, 0, 0, 0)[0] as i64)
}
fn smc_trusted_os_fid(_: &mut Env) -> Out {
    Out::num(hc::smccc_smc(0xb200_0000, 0, 0, 0)[0] as i64)
}
fn hvc_unknown_hyp_fid(_: &mut Env) -> Out {
    Out::num(hc::smccc_hvc(0xc600_1234, 0, 0, 0)[0] as i64)
}
fn smc_imm_1(_: &mut Env) -> Out {
    Out::str(probe!("smc #1", 0, options(nostack)).word())
}
fn psci_migrate(_: &mut Env) -> Out {
    Out::num(hc::smccc_hvc(hc::PSCI_MIGRATE, 0, 0, 0)[0] as i64)
}
fn psci_cpu_on_bad_target(_: &mut Env) -> Out {
    Out::num(hc::cpu_on(0xf, boot::secondary_entry_addr(), 0))
}
fn psci_cpu_on_aff1(_: &mut Env) -> Out {
    Out::num(hc::cpu_on(0x100, boot::secondary_entry_addr(), 0))
}
fn psci_cpu_on_thumb_entry(_: &mut Env) -> Out {
    Out::num(hc::cpu_on(1, boot::secondary_entry_addr() | 1, 0))
}
fn psci_cpu_on_self(_: &mut Env) -> Out {
    Out::num(hc::cpu_on(0, boot::secondary_entry_addr(), 0))
}
fn starts() -> u64 {
    cpu1::get(|m: &Mbox| &m.starts)
}
fn start_cpu1() -> (i64, bool) {
    let s0 = starts();
    let rc = hc::cpu_on(1, boot::secondary_entry_addr(), 0x77);
    let up = rc == 0 && rt::wait_for(5000, || starts() > s0);
    (rc, up)
}
fn psci_cpu_on_ok(e: &mut Env) -> Out {
    let (rc, up) = start_cpu1();
    e.cpu1_up = up;
    Out::text(fmt!("{rc},{}", if up { "up" } else { "NOT-UP" }))
}
/// PSCI leaves the other registers of a started vCPU UNKNOWN; they must at least not be
/// someone else's (Xen zeroes the context).
fn cpu_on_gprs_zero(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    let g = cpu1::get(|m: &Mbox| &m.entry_gprs);
    Out::text(if g == 0 { fmt!("zero") } else { fmt!("{g:#x}") })
}
fn psci_cpu_on_running(_: &mut Env) -> Out {
    Out::num(hc::cpu_on(1, boot::secondary_entry_addr(), 0))
}
fn affinity(target: u64, level: u64) -> i64 {
    hc::smccc_hvc(hc::PSCI_AFFINITY_INFO, target, level, 0)[0] as i32 as i64
}
fn psci_affinity_on(_: &mut Env) -> Out {
    Out::num(affinity(1, 0))
}
fn psci_affinity_nonexistent(_: &mut Env) -> Out {
    Out::num(affinity(0xf, 0))
}
fn psci_affinity_level1(_: &mut Env) -> Out {
    Out::num(affinity(0, 1))
}
fn psci_affinity_level9(_: &mut Env) -> Out {
    Out::num(affinity(0, 9))
}
/// vCPU 1 off and on again, several times: its physical CPU is given back and taken again.
fn cpu1_restart() -> Result<(), &'static str> {
    if !cpu1::command(cpu1::CMD_CPU_OFF, 0, 3000) {
        return Err("no-ack");
    }
    if !rt::wait_for(5000, || affinity(1, 0) == 1) {
        return Err("not-off");
    }
    let (rc, up) = start_cpu1();
    if rc != 0 {
        return Err("cpu_on");
    }
    if !up {
        return Err("not-up");
    }
    Ok(())
}
fn vcpu_restart_cycles(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    for i in 0..5 {
        if let Err(why) = cpu1_restart() {
            e.cpu1_up = false;
            return Out::judged(fmt!("failed@{i}:{why}"), false);
        }
    }
    Out::str("5")
}

// ---------------------------------------------------------------------------------------
// Trapped system registers (arch/arm/arm64/vsysreg.c) and state left on a physical CPU

fn sysreg_icc_sgi0r(_: &mut Env) -> Out {
    Out::str(gic::write_sgi0r(gic::sgi1r(1, 1, 0)).word())
}
fn sysreg_icc_asgi1r(_: &mut Env) -> Out {
    Out::str(gic::write_asgi1r(gic::sgi1r(1, 1, 0)).word())
}
fn sysreg_cntp_ctl_read(_: &mut Env) -> Out {
    let p = probe!("mrs {v}, cntp_ctl_el0", 0, options(nostack));
    Out::text(if p.faulted() { fmt!("{}", p.word()) } else { fmt!("{}", p.val) })
}
/// Xen emulates the EL1 physical timer for guests (vtimer.c): CVAL reads back.
fn sysreg_cntp_cval_rw(_: &mut Env) -> Out {
    let w = probe!("msr cntp_cval_el0, {v}", 0x1234_5678, options(nostack));
    let r = probe!("mrs {v}, cntp_cval_el0", 0, options(nostack));
    let _ = probe!("msr cntp_cval_el0, {v}", 0, options(nostack));
    Out::text(if w.faulted() || r.faulted() { fmt!("{},{}", w.word(), r.word()) } else { fmt!("{:#x}", r.val) })
}
/// PMU registers are RAZ/WI for Xen guests (MDCR_EL2.TPM/TPMCR).
fn sysreg_pmcr_el0(_: &mut Env) -> Out {
    let p = probe!("mrs {v}, pmcr_el0", 0, options(nostack));
    Out::text(if p.faulted() { fmt!("{}", p.word()) } else { fmt!("{:#x}", p.val) })
}
fn sysreg_actlr_el1_read(_: &mut Env) -> Out {
    Out::str(probe!("mrs {v}, actlr_el1", 0, options(nostack)).word())
}
/// Implementation-defined registers (here Cortex-A57's CPUACTLR_EL1): Xen sets
/// HCR_EL2.TIDCP so they would be UNDEFINED, but QEMU 7.2 does not implement that trap, so
/// under QEMU the read reaches the (emulated) register for Xen as well: `ok`.
fn sysreg_impdef_read(_: &mut Env) -> Out {
    Out::str(probe!("mrs {v}, s3_1_c15_c2_0", 0, options(nostack)).word())
}
fn sysreg_el2_register(_: &mut Env) -> Out {
    Out::str(probe!("mrs {v}, vbar_el2", 0, options(nostack)).word())
}
/// Debug registers are RAZ/WI for Xen guests (MDCR_EL2.TDA): what we write is not what we
/// read.
fn sysreg_dbg_passthrough(_: &mut Env) -> Out {
    let w = probe!("msr s2_0_c0_c1_4, {v}", cpu1::MAGIC_BVR, options(nostack));
    let r = probe!("mrs {v}, s2_0_c0_c1_4", 0, options(nostack));
    let _ = probe!("msr s2_0_c0_c1_4, {v}", 0, options(nostack));
    Out::text(if w.faulted() || r.faulted() { fmt!("{},{}", w.word(), r.word()) } else { fmt!("{:#x}", r.val) })
}
/// vCPU 1 writes debug and PMU registers, goes off and comes back on the same physical
/// CPU: it must not find what was there (a different domain could have been there).
fn sysreg_stale_after_restart(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    if !cpu1::command(cpu1::CMD_WRITE_STATE, 0, 3000) {
        return Out::judged(fmt!("no-ack"), false);
    }
    if let Err(why) = cpu1_restart() {
        e.cpu1_up = false;
        return Out::judged(fmt!("restart:{why}"), false);
    }
    if !cpu1::command(cpu1::CMD_READ_STATE, 0, 3000) {
        return Out::judged(fmt!("no-ack"), false);
    }
    let r = |i: usize| cpu1::get(move |m: &Mbox| &m.res[i]);
    Out::text(fmt!("bvr={:#x},wvr={:#x},pmev={:#x}", r(0), r(1), r(2)))
}

// ---------------------------------------------------------------------------------------
// The vGIC (arch/arm/vgic-v3.c, vgic.c)

fn irqs() -> u64 {
    cpu1::get(|m: &Mbox| &m.irqs)
}
fn cpu1_irqs_on(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    gic::dist_on();
    let ok = cpu1::command(cpu1::CMD_IRQ_ON, 0, 3000);
    let before = irqs();
    let p = gic::write_sgi1r(gic::sgi1r(2, 1 << 1, 0));
    let got = rt::wait_for(3000, || irqs() > before);
    Out::judged(fmt!("{},{},{}", if ok { "ack" } else { "no-ack" }, p.word(), if got { "recv" } else { "NOT-RECEIVED" }), ok && got && !p.faulted())
}
fn sgi_nonexistent_vcpu(_: &mut Env) -> Out {
    Out::str(gic::write_sgi1r(gic::sgi1r(3, 1 << 15, 0)).word())
}
fn sgi_nonexistent_affinity(_: &mut Env) -> Out {
    let v = gic::sgi1r(3, 0xffff, 7) | (3 << 32) | (1 << 48);
    Out::str(gic::write_sgi1r(v).word())
}
fn sgi_range_selector(_: &mut Env) -> Out {
    Out::str(gic::write_sgi1r(gic::sgi1r(3, 1, 0) | (15 << 44)).word())
}
fn sgi_broadcast(e: &mut Env) -> Out {
    let before = irqs();
    let p = gic::write_sgi1r(gic::sgi1r(4, 0, 0) | (1 << 40));
    let got = e.cpu1_up && rt::wait_for(3000, || irqs() > before);
    Out::text(fmt!("{},{}", p.word(), if got { "recv" } else { "not-received" }))
}
fn sgi_storm(e: &mut Env) -> Out {
    let before = irqs();
    let mut faults = 0;
    for _ in 0..20_000 {
        if gic::write_sgi1r(gic::sgi1r(5, 1 << 1, 0)).faulted() {
            faults += 1;
        }
    }
    let got = e.cpu1_up && rt::wait_for(3000, || irqs() > before);
    let n = irqs() - before;
    Out::judged(fmt!("faults={faults},received={n}"), faults == 0 && got)
}

/// One SGI at a time to vCPU 1, each waited for (up to 1 s): none may be lost. On the first
/// loss, vCPU 1's SGI state as its redistributor reports it, and whether the next SGI
/// gets through.
fn sgi_round_trips(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    let n = 300;
    for i in 0..n {
        let before = irqs();
        let _ = gic::write_sgi1r(gic::sgi1r(7, 1 << 1, 0));
        if !rt::wait_for(1000, || irqs() > before) {
            let sgi = gic::gicr_sgi(1);
            let (en, pend, act) = (
                rt::read32(sgi + gic::GICR_ISENABLER0).val,
                rt::read32(sgi + 0x200).val,
                rt::read32(sgi + 0x300).val,
            );
            let b2 = irqs();
            let _ = gic::write_sgi1r(gic::sgi1r(8, 1 << 1, 0));
            let next = rt::wait_for(1000, || irqs() > b2);
            return Out::text(fmt!("LOST@{i}:en={en:#x},pend={pend:#x},act={act:#x},late={},next={}", irqs() > before, next));
        }
    }
    Out::text(fmt!("{n}_delivered"))
}
fn sgi_round_trips_after_sweeps(e: &mut Env) -> Out {
    sgi_round_trips(e)
}

/// Every 32-bit register of [base, base+len): written with `v` (or read), counting aborts.
fn sweep(base: u64, len: u64, v: Option<u32>) -> (u64, u64) {
    let (mut n, mut aborts) = (0, 0);
    let mut off = 0;
    while off < len {
        let p = match v {
            Some(v) => rt::write32(base + off, v),
            None => rt::read32(base + off),
        };
        n += 1;
        if p.faulted() {
            aborts += 1;
        }
        off += 4;
    }
    (n, aborts)
}
fn survived(what: (u64, u64)) -> Out {
    Out::judged(fmt!("survived,accesses={},aborts={}", what.0, what.1), true)
}
fn gicd_sweep_write(_: &mut Env) -> Out {
    survived(sweep(gic::GICD, 0x1_0000, Some(0xffff_ffff)))
}
fn gicd_sweep_read(_: &mut Env) -> Out {
    survived(sweep(gic::GICD, 0x1_0000, None))
}
fn gicd_priority_bytes(_: &mut Env) -> Out {
    let mut aborts = 0;
    for i in 0..0x400 {
        if rt::write8(gic::GICD + 0x400 + i, 0xff).faulted() {
            aborts += 1;
        }
    }
    survived((0x400, aborts))
}
fn gicd_irouter_absurd(_: &mut Env) -> Out {
    let mut aborts = 0;
    for i in 32..1020u64 {
        if rt::write64(gic::GICD + 0x6000 + i * 8, u64::MAX).faulted() {
            aborts += 1;
        }
    }
    survived((988, aborts))
}
/// Back to a quiet state for vCPU `v`: every SGI/PPI disabled, not pending, not active.
fn gicr_quiesce(v: u64) {
    let sgi = gic::gicr_sgi(v);
    let _ = rt::write32(sgi + gic::GICR_ICENABLER0, 0xffff_ffff);
    let _ = rt::write32(sgi + gic::GICR_ICPENDR0, 0xffff_ffff);
    let _ = rt::write32(sgi + gic::GICR_ICACTIVER0, 0xffff_ffff);
}
fn gicr_sweep_own(_: &mut Env) -> Out {
    let a = sweep(gic::gicr(0), 0x2_0000, Some(0xffff_ffff));
    gicr_quiesce(0);
    survived(a)
}
fn gicr_sweep_other_vcpu(_: &mut Env) -> Out {
    let a = sweep(gic::gicr(1), 0x2_0000, Some(0xffff_ffff));
    gicr_quiesce(1);
    for i in 0..16 {
        gic::enable_private(1, i);
    }
    survived(a)
}
/// vCPU 1's redistributor swept while vCPU 1 takes interrupts, ten times; an SGI must
/// still get through after each round (the first failure is described).
fn gicr_sweep_repeat(e: &mut Env) -> Out {
    for round in 0..10 {
        let _ = gicr_sweep_other_vcpu(e);
        let o = gic_still_works(e);
        if o.text.as_str() != "gicv3,sgi" {
            return Out::text(fmt!("round{round}:{}", o.text.as_str()));
        }
    }
    Out::str("10_rounds")
}
fn gicr_beyond_last_vcpu(_: &mut Env) -> Out {
    let r = rt::read32(gic::gicr(2) + 8);
    let w = rt::write32(gic::gicr_sgi(2) + gic::GICR_ISENABLER0, 0xffff_ffff);
    Out::text(fmt!("{},{}", r.word(), w.word()))
}
fn gicd_ldp(_: &mut Env) -> Out {
    Out::str(probe!("ldp {v}, {t2}, [{a}]", 0, a = in(reg) gic::GICD, t2 = out(reg) _, options(nostack)).word())
}
/// A post-indexed load has no instruction syndrome; Xen 4.17 decodes it (io.c
/// try_decode_instruction) and emulates it.
fn gicd_ldr_postindex(_: &mut Env) -> Out {
    let mut a = gic::GICD_TYPER;
    let p = probe!("ldr {v:w}, [{a}], #4", 0, a = inout(reg) a, options(nostack));
    Out::text(fmt!("{},advanced={}", p.word(), a == gic::GICD_TYPER + 4))
}
/// Cache maintenance on an emulated region is ignored by Xen (io.c INSTR_CACHE). (QEMU
/// does no stage-2 lookup for DC CIVAC at all, so neither this nor the hole below traps.)
fn dc_civac_gicd(_: &mut Env) -> Out {
    Out::str(probe!("dc civac, {a}", 0, a = in(reg) gic::GICD, options(nostack)).word())
}
fn dc_civac_hole(_: &mut Env) -> Out {
    Out::str(probe!("dc civac, {a}", 0, a = in(reg) HOLE, options(nostack)).word())
}
/// After all that, the GIC still delivers an SGI to vCPU 1 (on failure, the state of
/// vCPU 1's SGIs follows: enabled, pending, active rows, SGI 6's priority, whether vCPU 1's
/// loop still runs).
fn gic_still_works(e: &mut Env) -> Out {
    let pidr2 = rt::read32(gic::GICD_PIDR2);
    let arch = (pidr2.val >> 4) & 0xf;
    let before = irqs();
    let _ = gic::write_sgi1r(gic::sgi1r(6, 1 << 1, 0));
    let got = e.cpu1_up && rt::wait_for(3000, || irqs() > before);
    if got {
        return Out::text(fmt!("gicv{arch},sgi"));
    }
    let sgi = gic::gicr_sgi(1);
    let alive = cpu1::get(|m: &Mbox| &m.alive);
    rt::wait_for(10, || false);
    let alive2 = cpu1::get(|m: &Mbox| &m.alive);
    Out::text(fmt!(
        "gicv{arch},NO-SGI:ctlr={:#x},en={:#x},pend={:#x},act={:#x},prio={:#x},loop={}",
        rt::read32(gic::GICD_CTLR).val,
        rt::read32(sgi + gic::GICR_ISENABLER0).val,
        rt::read32(sgi + 0x200).val,
        rt::read32(sgi + 0x300).val,
        rt::read32(sgi + gic::GICR_IPRIORITYR + 4).val,
        alive2 > alive
    ))
}

// ---------------------------------------------------------------------------------------
// IPA holes and MMIO nobody emulates (arch/arm/traps.c do_trap_stage2_abort_guest)

fn read_ipa_hole(_: &mut Env) -> Out {
    Out::str(rt::read64(HOLE).word())
}
fn write_ipa_hole(_: &mut Env) -> Out {
    Out::str(rt::write64(HOLE, 1).word())
}
fn exec_ipa_hole(_: &mut Env) -> Out {
    Out::str(rt::exec(HOLE).word())
}
fn read_ram_end(e: &mut Env) -> Out {
    Out::str(rt::read64(e.ram_end).word())
}
fn read_high_ipa(_: &mut Env) -> Out {
    Out::str(rt::read64(0xff_0000_0000).word())
}
fn read_host_uart(_: &mut Env) -> Out {
    Out::str(rt::read32(0x0900_0000).word())
}
fn read_gnttab_window_unmapped(_: &mut Env) -> Out {
    Out::str(rt::read64(GUEST_GNTTAB_BASE + 0x80_0000).word())
}
fn read_magic_unpopulated(_: &mut Env) -> Out {
    Out::str(rt::read64(GUEST_MAGIC_BASE + 0x10_0000).word())
}
fn read_gic_gap(_: &mut Env) -> Out {
    Out::str(rt::read32(gic::GICD + 0x1_0000 + 0x100).word())
}

// ---------------------------------------------------------------------------------------
// Time, sleep, load

/// WFI with IRQs masked must still wake when the virtual timer fires.
fn wfi_masked_vtimer(_: &mut Env) -> Out {
    gic::dist_on();
    gic::cpu_if_on();
    gic::enable_private(0, GUEST_TIMER_VIRT_PPI as u64);
    let deadline = rt::now() + rt::ms(20);
    // SAFETY: this vCPU's virtual timer: fire in 20 ms.
    unsafe {
        core::arch::asm!("msr cntv_cval_el0, {c}", "msr cntv_ctl_el0, {e}", "isb",
            c = in(reg) deadline, e = in(reg) 1u64, options(nostack));
    }
    let give_up = rt::now() + rt::ms(3000);
    let mut fired = false;
    while rt::now() < give_up {
        // SAFETY: sleep until an interrupt is pending (taken or not: IRQs stay masked).
        unsafe { core::arch::asm!("wfi", options(nostack)) };
        let ctl: u64;
        // SAFETY: reads the timer's status.
        unsafe { core::arch::asm!("mrs {}, cntv_ctl_el0", out(reg) ctl, options(nostack)) };
        if ctl & 4 != 0 {
            fired = true;
            break;
        }
    }
    // SAFETY: timer off.
    unsafe { core::arch::asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 0u64, options(nostack)) };
    // Take and end the timer interrupt if it is pending.
    let mut acked = 0;
    for _ in 0..4 {
        let i = gic::iar1() & 0xff_ffff;
        if i >= 1020 {
            break;
        }
        gic::eoir1(i);
        acked += 1;
    }
    gicr_quiesce(0);
    Out::judged(fmt!("{},acked={acked}", if fired { "woke" } else { "NEVER-FIRED" }), fired)
}
fn hypercall_storm(_: &mut Env) -> Out {
    let n = 50_000;
    let t = rt::now();
    let mut bad = 0;
    for _ in 0..n {
        if hc::xen_version(XENVER_version, 0) != 0x4_0011 {
            bad += 1;
        }
    }
    let ns = (rt::now() - t) * 1_000_000_000 / rt::freq() / n;
    Out::judged(fmt!("calls={n},bad={bad},{ns}ns_each"), bad == 0)
}

macro_rules! cases {
    ($($f:ident => $e:literal),* $(,)?) => {
        &[$(Case { name: stringify!($f), expect: $e, run: $f }),*]
    };
}

/// The main boot's cases, in order (numbers are positions from 1).
pub static MAIN: &[Case] = cases![
    ram_zeroed => "zero",
    gnttab_map_clean => "0,clean",
    shared_info_map => "0",
    own_domid => "domid",
    // hypercall numbers
    hc_nr_64 => "-38",
    hc_nr_max => "-38",
    hc_nr_pv_only => "-38",
    hc_nr_deprecated => "-38",
    hc_xsm_op => "-38",
    hvc_imm_1 => "undef",
    hvc_imm_ea2 => "undef",
    // xen_version
    ver_bad_cmd => "-38",
    ver_buf_hole => "-14",
    ver_buf_mmio => "-14",
    ver_buf_straddles_ram_end => "-14",
    ver_buf_upper_va => "-14",
    ver_buf_unaligned => "0",
    ver_commandline_denied => "0,<denied>",
    ver_pagesize_nonnull => "-22",
    // memory_op
    mem_bad_op => "-38",
    mem_populate_dom0 => "0",
    mem_decrease_victim => "0",
    mem_populate_nonexistent => "0",
    mem_reservation_arg_hole => "0",
    mem_populate_order_10 => "0",
    mem_populate_order_63 => "0",
    mem_populate_gfn_beyond_ipa => "0",
    mem_populate_nr_huge => "0",
    mem_populate_list_hole => "0",
    mem_populate_slack => "0<n<512,zeroed,back=n",
    mem_decrease_hole => "0",
    mem_current_reservation_dom0 => "-1",
    mem_current_reservation_nonexistent => "-3",
    mem_maximum_gpfn_victim => "-1",
    mem_atp_foreign_space => "-38",
    mem_atp_bad_space => "-38",
    mem_atp_shared_info_idx1 => "-22",
    mem_atp_dom0 => "-1",
    mem_atp_nonexistent => "-3",
    mem_foreign_map_dom0 => "rc=0,err=-1,intact",
    mem_foreign_map_victim => "rc=0,err=-1,intact",
    mem_foreign_map_nonexistent => "rc=0,err=-3,intact",
    mem_foreign_map_self => "rc=0,err=-22,intact",
    mem_batch_into_victim => "-1",
    mem_remove_victim_page => "-1",
    mem_remove_dom0_page => "-1",
    mem_remove_unpopulated => "-2",
    mem_claim_pages => "-1",
    mem_acquire_resource_victim => "-1",
    // grant tables
    gnt_bad_cmd => "-38",
    gnt_opaque_bits => "-22",
    gnt_count_negative => "-22",
    gnt_map_uop_hole => "-14",
    gnt_map_domid_self => "st=-2,intact",
    gnt_map_nonexistent => "st=-2,intact",
    gnt_map_dom0_ref_oob => "st=-3,intact",
    gnt_map_dom0_ref0 => "st=-1,intact",
    gnt_map_victim_console => "st=-8,intact",
    gnt_map_victim_xenstore => "st=-8,intact",
    gnt_map_no_flags => "st=-3,intact",
    gnt_map_device_map => "st=-1,intact",
    gnt_map_self_grant => "st=0,same,unmap=0,abort,again=-4",
    gnt_unmap_bad_handle => "st=-4",
    gnt_unmap_unused_handle => "st=-4",
    gnt_copy_self_overlap => "st=0",
    gnt_copy_len_4097 => "st=-10",
    gnt_copy_offset_overflow => "st=-10",
    gnt_copy_dom0_gmfn => "st=-8,intact",
    gnt_copy_victim_gref0 => "st=-8,intact",
    gnt_copy_nonexistent_gref => "st=-2",
    gnt_copy_src_hole_gmfn => "st=-9",
    gnt_copy_dst_victim_gref0 => "st=-8",
    gnt_setup_count2 => "-22",
    gnt_setup_victim => "rc=0,st=-8",
    gnt_setup_too_many => "rc=0,st=-1",
    gnt_query_size_victim => "rc=0,st=-8,frames=0",
    gnt_set_version_2 => "-38",
    gnt_set_version_3 => "-22",
    gnt_atp_frame_huge => "-22",
    gnt_atp_status_frame => "-22",
    // event channels
    ev_bad_cmd => "-38",
    ev_send_oob => "-22",
    ev_send_port0 => "-22",
    ev_send_closed => "-22",
    ev_close_twice => "0,-22",
    ev_close_port0 => "-22",
    ev_alloc_unbound_dom0 => "-1",
    ev_alloc_unbound_victim => "-1",
    ev_alloc_unbound_nonexistent => "-3",
    ev_alloc_unbound_remote_victim => "-1",
    ev_bind_dom0_ports => "einval=63,other=0,BOUND=0",
    ev_bind_victim_ports => "einval=63,other=0,BOUND=0",
    ev_bind_nonexistent => "-3",
    ev_bind_oob_port => "-22",
    ev_double_bind => "0,-22",
    ev_bind_virq_oob => "-22",
    ev_bind_virq_global_vcpu1 => "-22",
    ev_bind_virq_bad_vcpu => "-2",
    ev_bind_virq_twice => "0,-17",
    ev_bind_ipi_bad_vcpu => "-2",
    ev_bind_vcpu_bad => "-2",
    ev_unmask_oob => "-22",
    ev_status_dom0 => "-1",
    ev_status_nonexistent => "-3",
    ev_status_unaligned_arg => "0,status=1",
    ev_reset_dom0 => "-1",
    ev_reset_victim => "-1",
    ev_set_priority_2l => "-38",
    ev_expand_array_2l => "-95",
    ev_init_control_bad_offset => "-22",
    ev_init_control_hole => "-22",
    ev_port_exhaustion => "max_port=1023,err=-28",
    ev_storm_loopback => "sent=100000,errors=0",
    ev_storm_ipi => "sent=100000,errors=0",
    // sched_op, vcpu_op, hvm_op, console_io, vm_assist, platform, physdev, domctl, sysctl
    sched_bad_cmd => "-38",
    sched_remote_shutdown_victim => "-1",
    sched_remote_shutdown_dom0 => "-1",
    sched_remote_shutdown_nonexistent => "-3",
    sched_poll_too_many => "-22",
    vcpu_op_bad_vcpu => "-2",
    vcpu_op_bad_cmd => "-22",
    vcpu_info_register => "0",
    vcpu_info_twice => "-22",
    vcpu_info_offset_oob => "-6",
    vcpu_info_misaligned => "-6",
    hvm_bad_op => "-38",
    hvm_get_param_oob => "-22",
    hvm_set_own_console_pfn => "-1",
    hvm_get_param_dom0 => "-1",
    hvm_get_param_nonexistent => "-3",
    hvm_set_param_victim => "-1",
    console_write_domu => "-1",
    console_write_bad_ptr => "-1",
    console_bad_cmd => "-1",
    vm_assist_bad_type => "-22",
    vm_assist_bad_cmd => "-38",
    platform_op_domu => "-1",
    physdev_op => "-38",
    domctl_destroy_victim => "-1",
    domctl_pause_dom0 => "-1",
    domctl_getdomaininfo_dom0 => "-1",
    domctl_createdomain => "-1",
    domctl_pause_nonexistent => "-3",
    domctl_bad_version => "-13",
    sysctl_physinfo => "-1",
    sysctl_readconsole => "-1",
    sysctl_bad_version => "-13",
    multicall_nested => "rc=0,inner=-22",
    multicall_list_hole => "-14",
    multicall_nr_huge => "-14",
    multicall_bad_op => "rc=0,res=-38",
    multicall_96_versions => "rc=0,bad=0",
    // PSCI and SMCCC
    psci_version => "0x10001",
    psci_features_unknown => "-1",
    smc_unknown_fid => "-1",
    smc_trusted_os_fid => "-1",
    hvc_unknown_hyp_fid => "-1",
    smc_imm_1 => "undef",
    psci_migrate => "-1",
    psci_cpu_on_bad_target => "-2",
    psci_cpu_on_aff1 => "-2",
    psci_cpu_on_thumb_entry => "-9",
    psci_cpu_on_self => "-4",
    psci_cpu_on_ok => "0,up",
    cpu_on_gprs_zero => "zero",
    psci_cpu_on_running => "-4",
    psci_affinity_on => "0",
    psci_affinity_nonexistent => "1",
    psci_affinity_level1 => "0",
    psci_affinity_level9 => "-2",
    vcpu_info_other_running => "-22",
    vcpu_restart_cycles => "5",
    // system registers
    sysreg_icc_sgi0r => "undef",
    sysreg_icc_asgi1r => "undef",
    sysreg_cntp_ctl_read => "0",
    sysreg_cntp_cval_rw => "0x12345678",
    sysreg_pmcr_el0 => "0x0",
    sysreg_actlr_el1_read => "ok",
    sysreg_impdef_read => "ok",
    sysreg_el2_register => "undef",
    sysreg_dbg_passthrough => "0x0",
    sysreg_stale_after_restart => "bvr=0x0,wvr=0x0,pmev=0x0",
    // vGIC
    cpu1_irqs_on => "ack,ok,recv",
    sgi_nonexistent_vcpu => "ok",
    sgi_nonexistent_affinity => "ok",
    sgi_range_selector => "ok",
    sgi_broadcast => "ok,recv",
    sgi_storm => "faults=0,received>0",
    sgi_round_trips => "300_delivered",
    gicd_sweep_write => "survived",
    gicd_sweep_read => "survived",
    gicd_priority_bytes => "survived",
    gicd_irouter_absurd => "survived",
    gicr_sweep_own => "survived",
    gicr_sweep_other_vcpu => "survived",
    gicr_sweep_repeat => "10_rounds",
    gicr_beyond_last_vcpu => "abort,abort",
    gicd_ldp => "abort",
    gicd_ldr_postindex => "ok,advanced=true",
    dc_civac_gicd => "ok",
    dc_civac_hole => "ok",
    gic_still_works => "gicv3,sgi",
    sgi_round_trips_after_sweeps => "300_delivered",
    // IPA holes
    read_ipa_hole => "abort",
    write_ipa_hole => "abort",
    exec_ipa_hole => "pabort",
    read_ram_end => "abort",
    read_high_ipa => "abort",
    read_host_uart => "abort",
    read_gnttab_window_unmapped => "abort",
    read_magic_unpopulated => "abort",
    read_gic_gap => "abort",
    // time and load
    wfi_masked_vtimer => "woke",
    hypercall_storm => "bad=0",
    dirty_ram => "filled",
    vcpu1_masked_spin => "ack",
];

/// Last: vCPU 1 spins with every exception masked; vCPU 0 then powers the domain off, which
/// must still take vCPU 1's physical CPU back (the harness checks the domain goes).
fn vcpu1_masked_spin(e: &mut Env) -> Out {
    if !e.cpu1_up {
        return Out::judged(fmt!("vcpu1_down"), false);
    }
    Out::str(if cpu1::command(cpu1::CMD_MASKED_SPIN, 0, 3000) { "ack" } else { "no-ack" })
}

/// The first cases of every later boot: nothing of the guests before may show in our RAM or
/// our vCPU's registers.
pub static KILL_PRELUDE: &[Case] = cases![
    ram_zeroed => "zero",
    sysreg_prev_domain => "bvr=0x0,wvr=0x0",
];

/// The debug registers of a vCPU of a new domain: the previous domain on this pCPU (the
/// main run) wrote recognisable values there; Xen makes them RAZ/WI.
fn sysreg_prev_domain(_: &mut Env) -> Out {
    let b = probe!("mrs {v}, s2_0_c0_c0_4", 0, options(nostack));
    let w = probe!("mrs {v}, s2_0_c0_c0_6", 0, options(nostack));
    Out::text(fmt!("bvr={:#x},wvr={:#x}", b.val, w.val))
}

