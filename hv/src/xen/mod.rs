//! The Xen 4.17 guest interface of a domain: its event channels, grant
//! table, shared_info page, console input, and the event-channel upcall
//! (a virtual PPI whose level follows `evtchn_upcall_pending` of the
//! vCPU's `vcpu_info`, re-sampled on every exit as Xen's vGIC does).
//!
//! Lock order: `Domain::s2` is innermost; `evtchn` and `grant` are never
//! held together.

pub mod control;
pub mod hypercall;
pub mod mem;

use crate::domain::Domain;
use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hv_core::evtchn::{EvtchnDomain, VcpuSet};
use hv_core::grant::{GrantLimits, GrantState};
use mem::TablePages;
use spin::Mutex;

/// INTID of the event-channel upcall PPI (the lowest PPI the host leaves free).
pub const EVTCHN_PPI: u32 = 16;
/// Grant-table frames a domain may have (Xen's default).
pub const MAX_GRANT_FRAMES: u32 = 64;
/// Console input kept for dom0 before it reads it.
const CONSOLE_IN_MAX: usize = 4096;

pub struct XenDom {
    pub evtchn: Mutex<EvtchnDomain>,
    pub grant: Mutex<GrantState<TablePages>>,
    /// Hypervisor page the guest maps with add_to_physmap(shared_info),
    /// and the guest frame it is mapped at (0: not yet).
    pub shared_info_pa: u64,
    pub shared_info_gfn: AtomicU64,
    /// IPA window for grant-table frames (the DT `/hypervisor` reg[0]).
    pub grant_window: hv_core::mem::Range,
    /// Per vCPU: host PA of its `vcpu_info` (0: none yet), and the upcall
    /// level last given to the vGIC.
    pub upcall_pa: alloc::vec::Vec<AtomicU64>,
    pub upcall_level: alloc::vec::Vec<AtomicBool>,
    /// Bytes typed on the console for dom0's hvc0 (console_io read).
    pub console_in: Mutex<VecDeque<u8>>,
}

impl XenDom {
    /// `max_port`: the highest event-channel port the domain may use.
    pub fn new(domid: u16, nr_vcpus: usize, grant_window: hv_core::mem::Range, max_port: u32) -> Option<XenDom> {
        let evtchn = EvtchnDomain::new(domid, nr_vcpus as u32, max_port).ok()?;
        let grant = GrantState::new(
            domid,
            TablePages { pages: alloc::vec::Vec::new() },
            GrantLimits { max_frames: MAX_GRANT_FRAMES, ..GrantLimits::default() },
        )
        .ok()?;
        Some(XenDom {
            evtchn: Mutex::new(evtchn),
            grant: Mutex::new(grant),
            shared_info_pa: mem::alloc_page()?,
            shared_info_gfn: AtomicU64::new(0),
            grant_window,
            upcall_pa: (0..nr_vcpus).map(|_| AtomicU64::new(0)).collect(),
            upcall_level: (0..nr_vcpus).map(|_| AtomicBool::new(false)).collect(),
            console_in: Mutex::new(VecDeque::new()),
        })
    }
}

/// Wall time (ns since the epoch) at physical counter 0, from dom0's
/// settime; 0 until dom0 sets the time.
static WALL0: AtomicU64 = AtomicU64::new(0);

pub fn set_wall_at_counter0(ns: u128) {
    WALL0.store(ns.min(u64::MAX as u128) as u64, Ordering::Release);
}

pub fn wall_at_counter0() -> Option<u128> {
    let v = WALL0.load(Ordering::Acquire);
    (v != 0).then_some(v as u128)
}

/// Make the vCPUs in `set` of `dom` re-sample their upcall (on their next
/// exit; the calling vCPU does so before it re-enters).
pub fn notify(dom: &Domain, set: VcpuSet) {
    let mut k = 0u64;
    for v in set.iter() {
        if v < 64 {
            k |= 1 << v;
        }
    }
    crate::run::kick(dom, hv_arm::vgic::Kick(k));
}

/// Follow `evtchn_upcall_pending` of `vcpu` with the event PPI's level.
/// Called before every guest entry.
pub fn sample_upcall(dom: &Domain, vcpu: usize) {
    let x = &dom.xen;
    let Some(pa) = x.upcall_pa.get(vcpu).map(|p| p.load(Ordering::Acquire)) else { return };
    let level = pa != 0 && {
        // SAFETY: `pa` is the host address of this vCPU's vcpu_info, checked
        // to be the domain's Normal RAM (or its shared_info page) when it
        // was registered; one byte is read.
        unsafe { core::ptr::read_volatile(pa as *const u8) != 0 }
    };
    if x.upcall_level[vcpu].swap(level, Ordering::AcqRel) != level {
        let k = dom.vgic.lock().set_level(vcpu, dom.evtchn_ppi, level);
        crate::run::kick(dom, k);
    }
}

/// A byte typed on the console: dom0's hvc0 gets it once it has bound
/// VIRQ_CONSOLE. Returns false if dom0 does not listen that way.
pub fn console_input(dom: &Domain, b: u8) -> bool {
    let mem = mem::DomMem(dom);
    let mut ev = dom.xen.evtchn.lock();
    if ev.virq_port(xen_abi::event_channel::VIRQ_CONSOLE, 0).is_none() {
        return false;
    }
    {
        let mut q = dom.xen.console_in.lock();
        if q.len() < CONSOLE_IN_MAX {
            q.push_back(b);
        }
    }
    let n = ev.raise_virq(&mem, xen_abi::event_channel::VIRQ_CONSOLE, 0);
    drop(ev);
    notify(dom, n.local);
    true
}
