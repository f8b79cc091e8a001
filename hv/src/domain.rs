//! Domains and vCPUs as the EL2 binary holds them, and the domain table.
//!
//! dom0 is a static (`DOM0`); domUs are reference counted (`Arc`). A domU
//! lives while the table, a physical CPU running one of its vCPUs, or a
//! foreign mapping in dom0 holds it; its memory, stage-2 tables and VMID go
//! back when the last reference drops (`Drop`), so no CPU can still run on
//! or map what is freed.
//!
//! Lock order (outermost first): `TABLE`; `Vcpu::power` -> `vgic`; `vuart` ->
//! {`vgic`, console, `xen.evtchn`}; `xen.evtchn` (lower domid first when two
//! are held) / `xen.grant` -> `foreign` -> `s2` -> `owned` -> `pins` -> `FRAMES` -> heap.
//! Nothing takes `vuart`, `evtchn` or `grant` while holding `s2` or the console.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use hv_arm::stage2::Stage2;
use hv_arm::vgic::Vgic;
use hv_arm::vpl011::Vpl011;
use hv_core::frames::FrameAllocator;
use hv_core::mem::Range;
use hv_core::p2m::OwnedMap;
use spin::{Mutex, Once};

/// Power state of a vCPU as PSCI sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Power {
    Off,
    /// CPU_ON accepted; the owning physical CPU starts it at `entry` with x0 = `ctx`.
    Starting { entry: u64, ctx: u64 },
    On,
}

/// Registers beyond PC and x0 a toolstack gave with setvcpucontext.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootRegs {
    pub x: [u64; 31],
    pub cpsr: u64,
    pub sctlr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub sp_el1: u64,
}

/// No physical CPU owns the vCPU.
pub const NO_PCPU: usize = usize::MAX;

pub struct Vcpu {
    pub id: usize,
    /// Virtual MPIDR affinity (Aff0 = id % 16, Aff1 = id / 16).
    pub vaff: u64,
    pub power: Mutex<Power>,
    /// The physical CPU this vCPU runs on while it is online (`NO_PCPU`
    /// otherwise). dom0's vCPU n always uses pCPU n.
    pub pcpu: AtomicUsize,
    /// Set by setvcpucontext; used (and cleared) when the vCPU next starts.
    pub boot: Mutex<Option<BootRegs>>,
}

impl Vcpu {
    pub fn new(id: usize, vaff: u64, power: Power) -> Vcpu {
        Vcpu { id, vaff, power: Mutex::new(power), pcpu: AtomicUsize::new(NO_PCPU), boot: Mutex::new(None) }
    }
}

/// An emulated MMIO window `[base, base + size)` in the guest's IPA space.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub base: u64,
    pub size: u64,
}

impl Window {
    pub const NONE: Window = Window { base: 0, size: 0 };

    pub fn offset(&self, ipa: u64) -> Option<u64> {
        ipa.checked_sub(self.base).filter(|o| *o < self.size)
    }
}

/// Lifecycle of a domain, as getdomaininfo reports it.
pub struct Life {
    /// Pause count (domctl pause/unpause; created domains start at 1).
    pub paused: AtomicU32,
    /// 0: running; else SHUTDOWN_* reason + 1.
    pub shutdown: AtomicU32,
    /// Destroyed: waiting for the last reference to go.
    pub dying: AtomicBool,
}

impl Life {
    pub const fn new(paused: u32) -> Life {
        Life { paused: AtomicU32::new(paused), shutdown: AtomicU32::new(0), dying: AtomicBool::new(false) }
    }

    pub fn shutdown_reason(&self) -> Option<u32> {
        self.shutdown.load(Ordering::Acquire).checked_sub(1)
    }

    /// Whether the domain's vCPUs may run now.
    pub fn runnable(&self) -> bool {
        self.paused.load(Ordering::Acquire) == 0 && self.shutdown.load(Ordering::Acquire) == 0 && !self.dying.load(Ordering::Acquire)
    }

    /// Whether the domain's vCPUs must give their physical CPUs back.
    pub fn ended(&self) -> bool {
        self.shutdown.load(Ordering::Acquire) != 0 || self.dying.load(Ordering::Acquire)
    }
}

/// A foreign page mapped into this domain's stage-2 (dom0 building or
/// serving a domU): it keeps the owner alive until unmapped.
pub struct ForeignMap {
    owner: DomRef,
    /// The owner's guest frame, pinned while mapped (None: a grant-table
    /// frame, which only goes with the owner itself).
    gfn: Option<u64>,
}

impl ForeignMap {
    pub fn new(owner: DomRef, gfn: Option<u64>) -> ForeignMap {
        owner.mapped_by_others.fetch_add(1, Ordering::AcqRel);
        if let Some(g) = gfn {
            *owner.pins.lock().entry(g).or_insert(0) += 1;
        }
        ForeignMap { owner, gfn }
    }
}

impl Drop for ForeignMap {
    fn drop(&mut self) {
        if let Some(g) = self.gfn {
            let mut p = self.owner.pins.lock();
            if let Some(n) = p.get_mut(&g) {
                *n -= 1;
                if *n == 0 {
                    p.remove(&g);
                }
            }
        }
        let left = self.owner.mapped_by_others.fetch_sub(1, Ordering::AcqRel) - 1;
        if self.owner.life.dying.load(Ordering::Acquire) {
            crate::log!(Debug, "d{}: a mapping of it went, {} left", self.owner.id, left);
        }
    }
}

pub struct Domain {
    pub id: u16,
    pub vcpus: Vec<Vcpu>,
    pub vgic: Mutex<Vgic>,
    pub gicd: Window,
    pub gicr: Window,
    /// The console UART the domain sees (an emulated PL011) and its SPI.
    pub vuart: Mutex<Vpl011>,
    pub uart: Window,
    pub uart_intid: u32,
    /// INTID of the event-channel upcall PPI.
    pub evtchn_ppi: u32,
    pub vmid: u16,
    pub vttbr: u64,
    pub vtcr: u64,
    pub cntvoff: u64,
    /// Stage-2 tables (IPA -> PA), changed by ballooning, grant mapping and
    /// add_to_physmap while the domain runs.
    pub s2: Mutex<Stage2>,
    /// dom0: its 1:1 RAM bank (host frames, IPA == PA). domU: the guest
    /// physical windows RAM may be populated in.
    pub ram: Vec<Range>,
    /// domU: the host frames it owns, by guest frame (dom0: unused).
    pub owned: Mutex<OwnedMap>,
    /// Most pages the domain may own (XEN_DOMCTL_max_mem).
    pub max_pages: AtomicU64,
    /// Foreign pages mapped into this domain, by guest frame.
    pub foreign: Mutex<BTreeMap<u64, ForeignMap>>,
    /// Pages of this domain mapped into other domains (foreign or grant).
    pub mapped_by_others: AtomicUsize,
    /// Guest frames of this domain mapped elsewhere, with their map
    /// counts: such a page is not given back (ballooned out) while mapped,
    /// so it can never reach another owner under someone's mapping.
    pub pins: Mutex<BTreeMap<u64, u32>>,
    pub life: Life,
    /// HVM_PARAM_* values the toolstack set (index < HVM_NR_PARAMS).
    pub hvm_params: Mutex<[u64; HVM_NR_PARAMS]>,
    pub handle: Mutex<[u8; 16]>,
    /// The domain's Xen interface: event channels, grants, shared_info.
    pub xen: crate::xen::XenDom,
}

pub const HVM_NR_PARAMS: usize = 40;

impl Domain {
    pub fn vcpu(&self, id: usize) -> Option<&Vcpu> {
        self.vcpus.get(id)
    }

    /// vCPU whose virtual MPIDR affinity matches `mpidr` (PSCI target).
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<&Vcpu> {
        let aff = mpidr & 0xff_00ff_ffff;
        self.vcpus.iter().find(|v| v.vaff == aff)
    }

    pub fn is_hardware(&self) -> bool {
        self.id == 0
    }

    /// Pages the domain holds (tot_pages).
    pub fn tot_pages(&self) -> u64 {
        if self.is_hardware() {
            self.ram.iter().map(|r| r.size / 4096).sum()
        } else {
            self.owned.lock().pages()
        }
    }
}

impl Drop for Domain {
    /// The last reference is gone: no CPU runs the domain and nothing maps
    /// its memory. Give everything back.
    fn drop(&mut self) {
        let runs = self.owned.get_mut().take_all();
        let mut pages = 0;
        if let Some(f) = FRAMES.get() {
            let mut f = f.lock();
            for (pa, order) in runs {
                pages += 1u64 << order;
                if f.free(pa, order).is_err() {
                    crate::log!(Error, "d{}: frame {:#x} (order {}) not freeable", self.id, pa, order);
                }
            }
        }
        let s2 = core::mem::replace(self.s2.get_mut(), Stage2::empty());
        s2.destroy(&mut crate::platform::HeapTables);
        crate::xen::mem::free_page(self.xen.shared_info_pa);
        for &p in &self.xen.grant.get_mut().table.frames().pages {
            crate::xen::mem::free_page(p);
        }
        release_vmid(self.vmid);
        crate::log!(Info, "d{}: destroyed, {} pages freed", self.id, pages);
        DOM_EXC_PENDING.store(true, Ordering::Release);
    }
}

/// A domain reference: the static dom0 or a counted domU.
#[derive(Clone)]
pub enum DomRef {
    Hw(&'static Domain),
    Guest(Arc<Domain>),
}

impl core::ops::Deref for DomRef {
    type Target = Domain;
    fn deref(&self) -> &Domain {
        match self {
            DomRef::Hw(d) => d,
            DomRef::Guest(d) => d,
        }
    }
}

/// The hardware domain.
pub static DOM0: Once<Domain> = Once::new();

/// Host frames no domain owns (domU RAM comes from here).
pub static FRAMES: Once<Mutex<FrameAllocator>> = Once::new();

/// Most domains at once (domids 1..MAX_DOMAINS).
pub const MAX_DOMAINS: usize = 64;

enum Slot {
    Free,
    Live(Arc<Domain>),
    /// Destroyed, still referenced (its id stays taken).
    Dying(Weak<Domain>),
}

static TABLE: Mutex<[Slot; MAX_DOMAINS]> = Mutex::new([const { Slot::Free }; MAX_DOMAINS]);

/// A live domain by id (dom0 included).
pub fn get(domid: u16) -> Option<DomRef> {
    if domid == 0 {
        return DOM0.get().map(DomRef::Hw);
    }
    match TABLE.lock().get(domid as usize)? {
        Slot::Live(d) => Some(DomRef::Guest(d.clone())),
        _ => None,
    }
}

/// A domain by id, live or dying (getdomaininfo still reports the latter).
pub fn get_any(domid: u16) -> Option<DomRef> {
    if domid == 0 {
        return DOM0.get().map(DomRef::Hw);
    }
    match TABLE.lock().get(domid as usize)? {
        Slot::Live(d) => Some(DomRef::Guest(d.clone())),
        Slot::Dying(w) => w.upgrade().map(DomRef::Guest),
        Slot::Free => None,
    }
}

/// Every domain, live or dying, by id, from `first` on.
pub fn list(first: u16) -> Vec<DomRef> {
    let mut v = Vec::new();
    if first == 0 {
        if let Some(d) = DOM0.get() {
            v.push(DomRef::Hw(d));
        }
    }
    let t = TABLE.lock();
    for (i, s) in t.iter().enumerate().skip((first as usize).max(1)) {
        let _ = i;
        match s {
            Slot::Live(d) => v.push(DomRef::Guest(d.clone())),
            Slot::Dying(w) => {
                if let Some(d) = w.upgrade() {
                    v.push(DomRef::Guest(d));
                }
            }
            Slot::Free => {}
        }
    }
    v
}

/// Live domUs (the scheduler's view).
pub fn guests() -> Vec<Arc<Domain>> {
    TABLE.lock().iter().filter_map(|s| if let Slot::Live(d) = s { Some(d.clone()) } else { None }).collect()
}

/// Where the search for the next free domain id starts (Xen's rover:
/// ids are handed out in increasing order, wrapping, so a restarted
/// domain gets a new one).
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A free domain id: `want` if free and valid, else the next free one
/// after the last handed out.
pub fn reserve_id(want: u16) -> Option<u16> {
    let t = TABLE.lock();
    let free = |i: usize| match &t[i] {
        Slot::Free => true,
        Slot::Dying(w) => w.strong_count() == 0,
        Slot::Live(_) => false,
    };
    if want != 0 && (want as usize) < MAX_DOMAINS {
        return free(want as usize).then_some(want);
    }
    let start = NEXT_ID.load(Ordering::Relaxed).clamp(1, MAX_DOMAINS - 1);
    let id = (start..MAX_DOMAINS).chain(1..start).find(|&i| free(i))?;
    NEXT_ID.store(if id + 1 >= MAX_DOMAINS { 1 } else { id + 1 }, Ordering::Relaxed);
    Some(id as u16)
}

/// Put a new domain in the table; fails if its id was taken meanwhile.
pub fn insert(d: Arc<Domain>) -> Result<(), Arc<Domain>> {
    let mut t = TABLE.lock();
    let i = d.id as usize;
    let ok = match t.get(i) {
        Some(Slot::Free) => true,
        Some(Slot::Dying(w)) => w.strong_count() == 0,
        _ => false,
    };
    if !ok || i == 0 {
        return Err(d);
    }
    t[i] = Slot::Live(d);
    Ok(())
}

/// Take a live domU out of the table (it becomes dying); returns it.
pub fn remove(domid: u16) -> Option<Arc<Domain>> {
    let mut t = TABLE.lock();
    let s = t.get_mut(domid as usize)?;
    if let Slot::Live(d) = s {
        let d = d.clone();
        *s = Slot::Dying(Arc::downgrade(&d));
        return Some(d);
    }
    None
}

// --- VMIDs: 1 is dom0's; domUs get 2..=255 (8-bit VMIDs).

static VMIDS: Mutex<[u64; 4]> = Mutex::new([0b11, 0, 0, 0]);

pub fn alloc_vmid() -> Option<u16> {
    let mut m = VMIDS.lock();
    for i in 2..256usize {
        if m[i / 64] & (1 << (i % 64)) == 0 {
            m[i / 64] |= 1 << (i % 64);
            return Some(i as u16);
        }
    }
    None
}

/// A freed VMID may hold stale TLB entries: every CPU flushes its guest TLB
/// for the VMID when it starts a vCPU (`run::start_vcpu`), before using it.
fn release_vmid(vmid: u16) {
    if (2..256).contains(&vmid) {
        VMIDS.lock()[vmid as usize / 64] &= !(1 << (vmid % 64));
    }
}

/// A domain changed state (shut down or gone): dom0 gets VIRQ_DOM_EXC at the
/// next safe point (`deliver_dom_exc`), never from inside a lock.
pub static DOM_EXC_PENDING: AtomicBool = AtomicBool::new(false);

/// Raise VIRQ_DOM_EXC in dom0 if a domain changed state. Call with no locks held.
pub fn deliver_dom_exc() {
    if !DOM_EXC_PENDING.swap(false, Ordering::AcqRel) {
        return;
    }
    if let Some(d0) = DOM0.get() {
        let mem = crate::xen::mem::DomMem(d0);
        let n = d0.xen.evtchn.lock().raise_virq(&mem, xen_abi::event_channel::VIRQ_DOM_EXC, 0);
        crate::xen::notify(d0, n.local);
    }
}

/// Nanoseconds of the domain's virtual counter (Xen's system time for it).
pub fn system_time_ns(dom: &Domain) -> u64 {
    let ticks = crate::hw::sysreg::cntpct_el0::read().wrapping_sub(dom.cntvoff);
    let freq = crate::hw::sysreg::cntfrq_el0::read().max(1);
    ((ticks as u128 * 1_000_000_000) / freq as u128) as u64
}

/// SCHEDOP_shutdown / remote_shutdown / PSCI SYSTEM_OFF. The hardware
/// domain's end is the machine's, as with Xen; a domU stops running and
/// dom0 hears of it through VIRQ_DOM_EXC.
#[allow(non_upper_case_globals)] // Xen's constant names
pub fn shutdown(dom: &Domain, reason: u32) {
    use xen_abi::sched::*;
    let what = match reason {
        SHUTDOWN_poweroff => "powered off",
        SHUTDOWN_reboot => "rebooted",
        SHUTDOWN_crash => "crashed",
        SHUTDOWN_watchdog => "watchdog timeout",
        _ => return, // suspend / soft_reset: not offered
    };
    if dom.id == 0 {
        crate::log!(Info, "d0: shutdown ({})", what);
        crate::log!(Info, "Hardware domain {}: {} the machine", what, if reason == SHUTDOWN_reboot { "resetting" } else { "halting" });
        if reason == SHUTDOWN_reboot {
            crate::hw::firmware::system_reset();
        }
        crate::hw::firmware::system_off();
    }
    // The first reason sticks, as in Xen.
    if dom.life.shutdown.compare_exchange(0, reason + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        crate::log!(Info, "d{}: shutdown ({})", dom.id, what);
        crate::run::kick_domain(dom);
        DOM_EXC_PENDING.store(true, Ordering::Release);
    }
}
