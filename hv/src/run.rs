//! Running vCPUs on physical CPUs: the idle loop (which is also the
//! scheduler), vCPU start, pause and hand-back, and the list-register
//! hand-over around every guest exit.
//!
//! Scheduling follows Xen's `null` scheduler: an online vCPU owns one
//! physical CPU until it goes offline or its domain ends; there is no time
//! slicing, so EL1 state never has to be saved. dom0's vCPU n owns pCPU n;
//! the other pCPUs take domU vCPUs as they come online. A vCPU that starts
//! is given fully reset EL1 and FP/SIMD state, so nothing of a previous
//! owner of the CPU stays visible.

use crate::domain::{self, DomRef, Domain, Power, Vcpu, DOM0, NO_PCPU};
use crate::hw::{cache, gicv3, sysreg};
use crate::percpu;
use crate::trap::Frame;
use core::sync::atomic::Ordering;
use hv_arm::vgic::Kick;

/// SGI used to make another physical CPU re-evaluate its vCPU's interrupts.
pub const SGI_KICK: u32 = 0;

/// HCR_EL2 for guests: VM, SWIO, FMO, IMO, AMO, FB, BSU=inner, TSC, RW,
/// APK/API (pointer authentication keys and instructions are the guest's:
/// EL1 state is never switched while a vCPU owns its CPU).
const HCR_GUEST: u64 = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9) | (1 << 10) | (1 << 19) | (1 << 31) | (1 << 40) | (1 << 41);
/// SPSR for a vCPU's first instruction: EL1h, D/A/I/F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 at vCPU start: RES1 bits only (MMU and caches off).
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// The frame a vCPU starts from; per CPU so it never lies on the stack
/// `trap::run` resets.
static mut START_FRAME: [Frame; crate::boot::MAX_CPUS] = [Frame::ZERO; crate::boot::MAX_CPUS];

/// The vCPU a physical CPU runs. Slot n is written by CPU n only, in
/// `start_vcpu` and `idle_loop`, both of which then abandon the CPU's EL2
/// stack, so no reference handed out by `current` outlives the value.
/// Holding the domain here (and not in stack frames that a path which
/// never returns would abandon) is what lets a domain's last reference go.
struct CurrentSlot(core::cell::UnsafeCell<Option<(DomRef, usize)>>);

// SAFETY: each slot is only ever accessed by its own CPU (see above).
unsafe impl Sync for CurrentSlot {}

static CURRENT: [CurrentSlot; crate::boot::MAX_CPUS] =
    [const { CurrentSlot(core::cell::UnsafeCell::new(None)) }; crate::boot::MAX_CPUS];

/// The vCPU this physical CPU runs, if any.
pub fn current() -> Option<(&'static DomRef, usize)> {
    // SAFETY: this CPU's own slot; see `CurrentSlot`.
    let s = unsafe { &*CURRENT[percpu::this_cpu()].0.get() };
    s.as_ref().map(|(d, v)| (d, *v))
}

/// Replace this CPU's slot. Only `start_vcpu` and `idle_loop` call this,
/// right before they abandon the stack.
fn set_current(v: Option<(DomRef, usize)>) -> Option<(DomRef, usize)> {
    // SAFETY: this CPU's own slot; see `CurrentSlot`.
    unsafe { core::mem::replace(&mut *CURRENT[percpu::this_cpu()].0.get(), v) }
}

/// Idle this CPU: run the next vCPU that is ready for it. Never returns.
pub fn idle_loop() -> ! {
    let cpu = percpu::this_cpu();
    // Whatever ran here is gone; dropping it may free its domain.
    let old = set_current(None);
    drop(old);
    loop {
        domain::deliver_dom_exc();
        if let Some((dom, vid, entry, ctx)) = pick(cpu) {
            start_vcpu(dom, vid, entry, ctx);
        }
        sysreg::wfi();
        crate::irq::drain_idle();
    }
}

/// The vCPU this CPU should start: dom0's own one, or for the other CPUs
/// any domU vCPU waiting to come online.
fn pick(cpu: usize) -> Option<(DomRef, usize, u64, u64)> {
    let d0 = DOM0.get()?;
    if cpu < d0.vcpus.len() {
        let v = &d0.vcpus[cpu];
        let mut p = v.power.lock();
        if let Power::Starting { entry, ctx } = *p {
            *p = Power::On;
            v.pcpu.store(cpu, Ordering::Release);
            return Some((DomRef::Hw(d0), cpu, entry, ctx));
        }
        return None;
    }
    for d in domain::guests() {
        if !d.life.runnable() {
            continue;
        }
        for v in &d.vcpus {
            let mut p = v.power.lock();
            if let Power::Starting { entry, ctx } = *p {
                if v.pcpu.compare_exchange(NO_PCPU, cpu, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    *p = Power::On;
                    drop(p);
                    return Some((DomRef::Guest(d.clone()), v.id, entry, ctx));
                }
            }
        }
    }
    None
}

/// Wake the CPUs that may pick up a domU vCPU (one just became startable).
pub fn wake_idle() {
    let first = DOM0.get().map(|d| d.vcpus.len()).unwrap_or(0);
    for c in first..crate::boot::MAX_CPUS {
        if c != percpu::this_cpu() {
            if let Some(m) = percpu::mpidr(c) {
                gicv3::send_sgi(m, SGI_KICK);
            }
        }
    }
}

/// Reset every EL1 register a guest can read or write, and the FP/SIMD
/// registers, to architectural reset-like values.
fn reset_el1() {
    // SAFETY: the registers belong to the vCPU about to start on this CPU;
    // the hypervisor (EL2, soft-float) uses none of them. The encodings
    // are: FPCR, FPSR (S3_3_C4_C4_{0,1}); MOVI Vn.2D, #0 for n = 0..31
    // (0x6f00e400 + n), so no FP support is needed in the assembler.
    unsafe {
        core::arch::asm!(
            "msr ttbr0_el1, xzr", "msr ttbr1_el1, xzr", "msr tcr_el1, xzr",
            "msr mair_el1, xzr", "msr amair_el1, xzr", "msr vbar_el1, xzr",
            "msr contextidr_el1, xzr", "msr tpidr_el0, xzr", "msr tpidr_el1, xzr",
            "msr tpidrro_el0, xzr", "msr sp_el0, xzr", "msr sp_el1, xzr",
            "msr elr_el1, xzr", "msr spsr_el1, xzr", "msr esr_el1, xzr",
            "msr far_el1, xzr", "msr afsr0_el1, xzr", "msr afsr1_el1, xzr",
            "msr par_el1, xzr", "msr cpacr_el1, xzr", "msr cntkctl_el1, xzr",
            "msr csselr_el1, xzr", "msr mdscr_el1, xzr", "msr cntv_cval_el0, xzr",
            "msr S3_3_C4_C4_0, xzr", "msr S3_3_C4_C4_1, xzr",
            ".inst 0x6f00e400", ".inst 0x6f00e401", ".inst 0x6f00e402", ".inst 0x6f00e403",
            ".inst 0x6f00e404", ".inst 0x6f00e405", ".inst 0x6f00e406", ".inst 0x6f00e407",
            ".inst 0x6f00e408", ".inst 0x6f00e409", ".inst 0x6f00e40a", ".inst 0x6f00e40b",
            ".inst 0x6f00e40c", ".inst 0x6f00e40d", ".inst 0x6f00e40e", ".inst 0x6f00e40f",
            ".inst 0x6f00e410", ".inst 0x6f00e411", ".inst 0x6f00e412", ".inst 0x6f00e413",
            ".inst 0x6f00e414", ".inst 0x6f00e415", ".inst 0x6f00e416", ".inst 0x6f00e417",
            ".inst 0x6f00e418", ".inst 0x6f00e419", ".inst 0x6f00e41a", ".inst 0x6f00e41b",
            ".inst 0x6f00e41c", ".inst 0x6f00e41d", ".inst 0x6f00e41e", ".inst 0x6f00e41f",
            options(nostack, preserves_flags),
        );
    }
}

/// Program this CPU's EL2 and EL1 state for `v` and enter it at `entry`.
fn start_vcpu(dom: DomRef, vid: usize, entry: u64, ctx: u64) -> ! {
    let cpu = percpu::this_cpu();
    drop(set_current(Some((dom.clone(), vid))));
    let Some(v) = dom.vcpu(vid) else { idle_loop() };
    let boot = v.boot.lock().take();
    let pmcr_n = (sysreg::pmcr_el0::read() >> 11) & 0x1f;
    // Debug and PMU registers are not switched between domains: trap them
    // all (TPMCR, TPM, TDA, TDOSA, TDRA; exit.rs makes them RAZ/WI, as
    // Xen does), so no domain sees or sets what another left behind.
    let mdcr = pmcr_n | (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11);
    reset_el1();
    // SAFETY: these registers configure the guest this CPU is about to run:
    // stage-2 (the domain's own tables), traps (HCR_GUEST), the virtual ID
    // registers, the timer (EL1 physical timer trapped) and the GIC virtual
    // interface. The hypervisor's own EL2 translation is unaffected.
    unsafe {
        sysreg::vtcr_el2::write(dom.vtcr);
        sysreg::vttbr_el2::write(dom.vttbr);
        sysreg::hcr_el2::write(HCR_GUEST);
        sysreg::cptr_el2::write(0x33ff);
        sysreg::mdcr_el2::write(mdcr);
        sysreg::hstr_el2::write(0);
        sysreg::vpidr_el2::write(sysreg::midr_el1::read());
        sysreg::vmpidr_el2::write((1 << 31) | v.vaff);
        sysreg::cnthctl_el2::write(1); // EL1PCTEN: counter readable; CNTP_* trap
        sysreg::cntvoff_el2::write(dom.cntvoff);
        sysreg::sctlr_el1::write(boot.map(|b| b.sctlr | SCTLR_EL1_RESET).unwrap_or(SCTLR_EL1_RESET));
        if let Some(b) = &boot {
            sysreg::ttbr0_el1::write(b.ttbr0);
            sysreg::ttbr1_el1::write(b.ttbr1);
            sysreg::tcr_el1::write(b.tcr);
            sysreg::sp_el1::write(b.sp_el1);
        }
        sysreg::cntv_ctl_el0::write(0);
        // The EL1 physical timer the guest gets through trapped accesses
        // (exit.rs): off, nothing of the previous owner's left.
        sysreg::cntp_ctl_el0::write(0);
        sysreg::cntp_cval_el0::write(0);
        sysreg::icc_sre_el1::write(0x7);
        sysreg::ich_vmcr_el2::write(0);
        sysreg::isb();
    }
    // The VMID may have been another domain's: drop its translations here.
    cache::flush_guest_tlb();
    gicv3::set_private_enabled(cpu, crate::irq::VTIMER_PPI, true);
    gicv3::set_private_enabled(cpu, crate::irq::PTIMER_PPI, true);
    gicv3::set_private_enabled(cpu, crate::irq::MAINTENANCE_PPI, true);
    crate::log!(Debug, "d{}v{} starting at {:#x} on CPU{}", dom.id, vid, entry, cpu);
    reset_lrs();
    flush(&dom, vid);
    // SAFETY: START_FRAME[cpu] belongs to this CPU only; nothing else holds a reference.
    let frame = unsafe { &mut (*core::ptr::addr_of_mut!(START_FRAME))[cpu] };
    *frame = Frame::default();
    frame.spsr = SPSR_EL1H_MASKED;
    if let Some(b) = &boot {
        frame.x[..31].copy_from_slice(&b.x);
        // EL1h or EL1t, AArch64 only; DAIF as given.
        frame.spsr = (b.cpsr & 0x3c0) | if b.cpsr & 0xf == 4 { 4 } else { 5 };
    }
    frame.x[0] = ctx;
    frame.elr = entry;
    drop(dom);
    crate::trap::run(frame, crate::boot::stack_top(cpu))
}

/// After handling an exit of a domU vCPU: give the CPU back if the domain
/// ended, or hold the vCPU here while the domain is paused.
pub fn after_exit(dom: &Domain, vid: usize) {
    domain::deliver_dom_exc();
    if dom.is_hardware() {
        return;
    }
    if dom.life.ended() {
        leave(dom, vid);
    }
    if dom.life.paused.load(Ordering::Acquire) == 0 {
        return;
    }
    // Paused: no virtual interrupts (and no maintenance interrupts) until
    // the domain runs again; the final flush of the exit re-enables them.
    // SAFETY: only this CPU's virtual CPU interface changes.
    unsafe { sysreg::ich_hcr_el2::write(0) };
    SHADOW[percpu::this_cpu()].lock().hcr = 0;
    while dom.life.paused.load(Ordering::Acquire) != 0 {
        if dom.life.ended() {
            leave(dom, vid);
        }
        sysreg::wfi();
        if let Some(iar) = crate::irq::handle_guest(dom, vid) {
            gicv3::deactivate(iar);
        }
        domain::deliver_dom_exc();
    }
}

/// The vCPU stops running here for good (its domain ended or it went
/// offline): quiesce the CPU's guest state and idle.
fn leave(dom: &Domain, vid: usize) -> ! {
    let cpu = percpu::this_cpu();
    crate::log!(Debug, "d{}v{} leaves CPU{}", dom.id, vid, cpu);
    // SAFETY: the vCPU no longer runs here: its virtual interface, timer and
    // stage-2 are switched off (VM clear: nothing walks its tables, which
    // may be freed once this CPU drops its reference in `idle_loop`).
    unsafe {
        sysreg::ich_hcr_el2::write(0);
        sysreg::cntv_ctl_el0::write(0);
        sysreg::cntp_ctl_el0::write(0);
        sysreg::hcr_el2::write(HCR_GUEST & !1);
        sysreg::isb();
    }
    SHADOW[cpu].lock().hcr = 0;
    gicv3::set_private_enabled(cpu, crate::irq::VTIMER_PPI, false);
    gicv3::set_private_enabled(cpu, crate::irq::PTIMER_PPI, false);
    // A timer interrupt the vCPU had in flight (HW-mapped: active until the
    // guest deactivated it) must not block the next vCPU's timer here.
    gicv3::clear_private_active(cpu, crate::irq::VTIMER_PPI);
    gicv3::clear_private_active(cpu, crate::irq::PTIMER_PPI);
    if let Some(v) = dom.vcpu(vid) {
        if !dom.is_hardware() {
            v.pcpu.store(NO_PCPU, Ordering::Release);
        }
    }
    idle_loop()
}

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn nr_lrs() -> usize {
    ((sysreg::ich_vtr_el2::read() & 0x1f) as usize + 1).min(16)
}

/// What this CPU's list registers and ICH_HCR_EL2 hold, as last written or
/// read back, so a trap touches only the registers that change (each GIC
/// system-register access is costly, under emulation most of all).
/// Invariant: LRs at index >= `live` are zero in hardware.
struct LrShadow {
    lrs: [u64; 16],
    live: usize,
    hcr: u64,
    nr: usize,
}

static SHADOW: [spin::Mutex<LrShadow>; crate::boot::MAX_CPUS] =
    [const { spin::Mutex::new(LrShadow { lrs: [0; 16], live: 0, hcr: 0, nr: 0 }) }; crate::boot::MAX_CPUS];

/// Zero this CPU's list registers and enable its virtual CPU interface.
fn reset_lrs() {
    let mut sh = SHADOW[percpu::this_cpu()].lock();
    sh.nr = nr_lrs();
    for i in 0..sh.nr {
        sysreg::ich_lr::write(i, 0);
    }
    sh.lrs = [0; 16];
    sh.live = 0;
    sh.hcr = 1;
    // SAFETY: only the virtual CPU interface of the vCPU on this CPU changes.
    unsafe { sysreg::ich_hcr_el2::write(1) };
}

/// Fold the list registers back into the vGIC after an exit.
pub fn sync(dom: &Domain, vcpu: usize) {
    let mut sh = SHADOW[percpu::this_cpu()].lock();
    for i in 0..sh.live {
        sh.lrs[i] = sysreg::ich_lr::read(i);
    }
    let n = sh.nr;
    let k = dom.vgic.lock().sync(vcpu, &sh.lrs[..n]);
    drop(sh);
    kick(dom, k);
}

/// Load the list registers before re-entering the guest.
pub fn flush(dom: &Domain, vcpu: usize) {
    let mut sh = SHADOW[percpu::this_cpu()].lock();
    let n = sh.nr;
    let mut lrs = [0u64; 16];
    let out = dom.vgic.lock().flush(vcpu, &mut lrs[..n]);
    let mut live = 0;
    for (i, &lr) in lrs.iter().enumerate().take(n) {
        if lr != sh.lrs[i] {
            sysreg::ich_lr::write(i, lr);
            sh.lrs[i] = lr;
        }
        if lr != 0 {
            live = i + 1;
        }
    }
    sh.live = live;
    // En, plus UIE/NPIE when more interrupts wait than fit: the
    // maintenance interrupt then fires once the LRs drain and we refill.
    let hcr = out.ich_hcr_el2();
    if hcr != sh.hcr {
        // SAFETY: only the virtual CPU interface of the vCPU on this CPU changes.
        unsafe { sysreg::ich_hcr_el2::write(hcr) };
        sh.hcr = hcr;
    }
}

/// Make the physical CPUs running the vCPUs in `k` of `dom` (other than
/// this one) take an exit so they reload their list registers.
pub fn kick(dom: &Domain, k: Kick) {
    let me = percpu::this_cpu();
    let mut m = k.0;
    while m != 0 {
        let v = m.trailing_zeros() as usize;
        m &= m - 1;
        let p = if dom.is_hardware() { v } else { dom.vcpu(v).map(|v| v.pcpu.load(Ordering::Acquire)).unwrap_or(NO_PCPU) };
        if p != me && p != NO_PCPU {
            if let Some(mpidr) = percpu::mpidr(p) {
                gicv3::send_sgi(mpidr, SGI_KICK);
            }
        }
    }
}

/// Make every CPU running a vCPU of `dom` take an exit (to see it paused or ended).
pub fn kick_domain(dom: &Domain) {
    let all = if dom.vcpus.len() >= 64 { u64::MAX } else { (1u64 << dom.vcpus.len()) - 1 };
    kick(dom, Kick(all));
}

/// Power the calling vCPU off and idle this CPU until a vCPU starts here.
pub fn vcpu_off(dom: &Domain, v: &Vcpu) -> ! {
    *v.power.lock() = Power::Off;
    leave(dom, v.id)
}

/// A domU vCPU became startable: an idle CPU picks it up.
pub fn vcpu_startable(dom: &Domain, _v: &Vcpu) {
    if !dom.is_hardware() {
        wake_idle();
    }
}

