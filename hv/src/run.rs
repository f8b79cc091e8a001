//! Running vCPUs on physical CPUs: the idle loop, vCPU start, and the list
//! register hand-over around every guest exit.

use crate::domain::{Domain, Power, Vcpu, DOM0};
use crate::hw::{cache, gicv3, sysreg};
use crate::percpu;
use crate::trap::Frame;
use hv_arm::vgic::Kick;

/// SGI used to make another physical CPU re-evaluate its vCPU's interrupts.
pub const SGI_KICK: u32 = 0;

/// HCR_EL2 for guests: VM, SWIO, FMO, IMO, AMO, FB, BSU=inner, TSC, RW,
/// APK/API (pointer authentication keys and instructions are the guest's:
/// EL1 state is never switched on a pinned vCPU).
const HCR_GUEST: u64 = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9) | (1 << 10) | (1 << 19) | (1 << 31) | (1 << 40) | (1 << 41);
/// SPSR for a vCPU's first instruction: EL1h, D/A/I/F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 at vCPU start: RES1 bits only (MMU and caches off).
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// The frame a vCPU starts from; per CPU so it never lies on the stack
/// `trap::run` resets.
static mut START_FRAME: [Frame; crate::boot::MAX_CPUS] = [Frame::ZERO; crate::boot::MAX_CPUS];

/// The vCPU this physical CPU runs, if any.
pub fn current() -> Option<(&'static Domain, &'static Vcpu)> {
    let dom = DOM0.get()?;
    let v = dom.vcpu(percpu::this_cpu())?;
    Some((dom, v))
}

/// Wait for this CPU's vCPU to be started, then run it. Never returns.
pub fn idle_loop() -> ! {
    let cpu = percpu::this_cpu();
    loop {
        if let Some(dom) = DOM0.get() {
            if let Some(v) = dom.vcpu(cpu) {
                let start = {
                    let mut p = v.power.lock();
                    match *p {
                        Power::Starting { entry, ctx } => {
                            *p = Power::On;
                            Some((entry, ctx))
                        }
                        _ => None,
                    }
                };
                if let Some((entry, ctx)) = start {
                    start_vcpu(dom, v, entry, ctx);
                }
            }
        }
        sysreg::wfi();
        crate::irq::drain_idle();
    }
}

/// Program this CPU's EL2 and EL1 state for `v` and enter it at `entry`.
fn start_vcpu(dom: &Domain, v: &Vcpu, entry: u64, ctx: u64) -> ! {
    let cpu = percpu::this_cpu();
    let pmcr_n = (sysreg::pmcr_el0::read() >> 11) & 0x1f;
    // SAFETY: these registers configure the guest this CPU is about to run:
    // stage-2 (the domain's own tables), traps (HCR_GUEST), the virtual ID
    // registers, the timer (EL1 physical timer trapped) and the GIC virtual
    // interface. The hypervisor's own EL2 translation is unaffected.
    unsafe {
        sysreg::vtcr_el2::write(dom.vtcr);
        sysreg::vttbr_el2::write(dom.vttbr);
        sysreg::hcr_el2::write(HCR_GUEST);
        sysreg::cptr_el2::write(0x33ff);
        sysreg::mdcr_el2::write(pmcr_n);
        sysreg::hstr_el2::write(0);
        sysreg::vpidr_el2::write(sysreg::midr_el1::read());
        sysreg::vmpidr_el2::write((1 << 31) | v.vaff);
        sysreg::cnthctl_el2::write(1); // EL1PCTEN: counter readable; CNTP_* trap
        sysreg::cntvoff_el2::write(dom.cntvoff);
        sysreg::sctlr_el1::write(SCTLR_EL1_RESET);
        sysreg::cntv_ctl_el0::write(0);
        sysreg::icc_sre_el1::write(0x7);
        sysreg::ich_vmcr_el2::write(0);
        sysreg::isb();
    }
    cache::flush_guest_tlb();
    gicv3::set_private_enabled(cpu, crate::irq::VTIMER_PPI, true);
    gicv3::set_private_enabled(cpu, crate::irq::MAINTENANCE_PPI, true);
    crate::log!(Debug, "d{}v{} starting at {:#x}", dom.id, v.id, entry);
    reset_lrs();
    flush(dom, v.id);
    // SAFETY: START_FRAME[cpu] belongs to this CPU only; nothing else holds a reference.
    let frame = unsafe { &mut (*core::ptr::addr_of_mut!(START_FRAME))[cpu] };
    *frame = Frame::default();
    frame.x[0] = ctx;
    frame.elr = entry;
    frame.spsr = SPSR_EL1H_MASKED;
    crate::trap::run(frame, crate::boot::stack_top(cpu))
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
    kick(k);
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

/// Make the physical CPUs running the vCPUs in `k` (other than this one)
/// take an exit so they reload their list registers.
pub fn kick(k: Kick) {
    let me = percpu::this_cpu();
    let mut m = k.0;
    while m != 0 {
        let v = m.trailing_zeros() as usize;
        m &= m - 1;
        if v != me {
            if let Some(mpidr) = percpu::mpidr(v) {
                gicv3::send_sgi(mpidr, SGI_KICK);
            }
        }
    }
}

/// Power the calling vCPU off and idle this CPU until it is started again.
pub fn vcpu_off(v: &Vcpu) -> ! {
    *v.power.lock() = Power::Off;
    // SAFETY: stop the virtual CPU interface; the vCPU no longer runs here.
    unsafe { sysreg::ich_hcr_el2::write(0) };
    SHADOW[percpu::this_cpu()].lock().hcr = 0;
    idle_loop()
}
