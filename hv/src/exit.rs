//! Guest exits: decode the syndrome and emulate. Every path either returns
//! to the same vCPU (after updating its frame) or ends the domain.

use crate::domain::Domain;
use crate::hw::sysreg;
use crate::run;
use crate::trap::{Frame, Kind};
use hv_arm::esr::{self, Exit};
use hv_arm::mmio::{self, MmioAccess};

/// Entry from the vectors for every exception taken to EL2.
pub fn handle(frame: &mut Frame, kind: Kind) {
    let Some((dref, vid)) = run::current() else {
        crate::fatal::hypervisor_fault(frame, kind);
    };
    let dom: &Domain = dref;
    match kind {
        Kind::LowerSync | Kind::LowerIrq | Kind::Lower32 => {}
        Kind::LowerFiq | Kind::LowerSError => {
            crate::fatal::crash_domain(dom, vid, frame, "unexpected exception from guest");
        }
        _ => crate::fatal::hypervisor_fault(frame, kind),
    }
    run::sync(dom, vid);
    let mut maintenance = None;
    if kind == Kind::LowerIrq {
        maintenance = crate::irq::handle_guest(dom, vid);
    } else {
        sync_exit(dref, vid, frame);
    }
    crate::xen::sample_upcall(dom, vid);
    run::after_exit(dom, vid);
    run::flush(dom, vid);
    if let Some(iar) = maintenance {
        crate::hw::gicv3::deactivate(iar);
    }
}

fn sync_exit(dref: &crate::domain::DomRef, vcpu: usize, frame: &mut Frame) {
    let dom: &Domain = dref;
    let esr = sysreg::esr_el2::read();
    match esr::decode(esr) {
        Exit::Hvc64 { imm: 0 } => crate::psci::handle(dom, vcpu, frame),
        Exit::Hvc64 { imm: 0xea1 } => crate::xen::hypercall::handle(dref, vcpu, frame),
        Exit::Hvc64 { .. } => {
            frame.elr -= 4; // UNDEFINED is taken at the HVC, not after it
            crate::inject::undef(frame);
        }
        Exit::Smc64 { imm: 0 } => {
            crate::psci::handle(dom, vcpu, frame);
            frame.elr += 4;
        }
        Exit::Smc64 { .. } => crate::inject::undef(frame),
        Exit::SysReg(acc) => {
            sysreg_access(dom, vcpu, frame, &acc);
        }
        Exit::Wfx { .. } => frame.elr += 4,
        Exit::DataAbortLower(da) => {
            let ipa = mmio::fault_ipa(sysreg::hpfar_el2::read(), sysreg::far_el2::read());
            if transient(da.fault()) && mapped_now(dom, ipa) {
                return; // raced with a break-before-make update: retry
            }
            match mmio::decode(&da, ipa) {
                Some(acc) => {
                    if emulate_mmio(dom, vcpu, frame, &acc) {
                        frame.elr += esr::instr_len(esr); // 2 for a 16-bit T32 access
                    } else {
                        crate::glog!(Warning, "d{}v{}: unhandled MMIO {} at IPA {:#x}, pc {:#x}",
                            dom.id, vcpu, if acc.write { "write" } else { "read" }, ipa, frame.elr);
                        crate::inject::data_abort(frame, sysreg::far_el2::read());
                    }
                }
                // No syndrome: decode the instruction, as Xen 4.17 does for
                // LDR/STR (immediate, post-indexed) from AArch64.
                None if mmio::needs_instruction(&da) && frame.spsr & 0b10000 == 0 => {
                    match fetch_instr(dom, frame.elr).and_then(|i| mmio::decode_post_indexed(i, ipa)) {
                        Some(pi) if emulate_mmio(dom, vcpu, frame, &pi.access) => {
                            if !post_increment(frame, pi.rn, pi.imm) {
                                crate::fatal::crash_domain(dom, vcpu, frame, "post-indexed MMIO access from an unknown mode");
                            }
                            frame.elr += 4;
                        }
                        _ => {
                            crate::glog!(Warning, "d{}v{}: undecodable data abort at IPA {:#x} (ESR {:#x}), pc {:#x}",
                                dom.id, vcpu, ipa, esr, frame.elr);
                            crate::inject::data_abort(frame, sysreg::far_el2::read());
                        }
                    }
                }
                None => {
                    crate::glog!(Warning, "d{}v{}: undecodable data abort at IPA {:#x} (ESR {:#x}), pc {:#x}",
                        dom.id, vcpu, ipa, esr, frame.elr);
                    crate::inject::data_abort(frame, sysreg::far_el2::read());
                }
            }
        }
        Exit::InstrAbortLower { ifsc, .. }
            if transient(esr::FaultKind::from_fsc(ifsc))
                && mapped_now(dom, mmio::fault_ipa(sysreg::hpfar_el2::read(), sysreg::far_el2::read())) => {}
        Exit::InstrAbortLower { .. } => {
            crate::glog!(Warning, "d{}v{}: instruction abort at IPA {:#x}, pc {:#x}", dom.id, vcpu,
                mmio::fault_ipa(sysreg::hpfar_el2::read(), sysreg::far_el2::read()), frame.elr);
            crate::inject::prefetch_abort(frame, sysreg::far_el2::read());
        }
        // AArch32 user code (e.g. CP15 timer accesses): UNDEFINED, as on Xen.
        _ if frame.spsr & 0b10000 != 0 => crate::inject::undef(frame),
        _ => crate::fatal::crash_domain(dom, vcpu, frame, "unhandled trap"),
    }
}

/// The A64 instruction at the guest's `pc`, read through the vCPU's own
/// stage-1 translation (its EL1 registers are live on this CPU) and the
/// domain's stage-2; `None` if it does not map or is misaligned.
fn fetch_instr(dom: &Domain, pc: u64) -> Option<u32> {
    if pc % 4 != 0 {
        return None;
    }
    let regs = hv_arm::s1walk::S1Regs {
        sctlr_el1: sysreg::sctlr_el1::read(),
        tcr_el1: sysreg::tcr_el1::read(),
        ttbr0_el1: sysreg::ttbr0_el1::read(),
        ttbr1_el1: sysreg::ttbr1_el1::read(),
    };
    let mut b = [0u8; 4];
    hv_arm::s1walk::copy_from_guest(&regs, &crate::xen::mem::DomMem(dom), pc, &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

/// After an emulated post-indexed access: base register `rn` += `imm`.
/// Register 31 is the stack pointer of the mode the guest was in (SP_EL1
/// in EL1h, SP_EL0 in EL1t/EL0t); false for any other mode.
fn post_increment(frame: &mut Frame, rn: u8, imm: i64) -> bool {
    if rn < 31 {
        frame.set_reg(rn, frame.reg(rn).wrapping_add(imm as u64));
        return true;
    }
    match frame.spsr & 0b1111 {
        // SAFETY: SP_EL1 is the guest's own stack pointer; the hypervisor
        // runs on SP_EL2 and never uses it.
        0b0101 => unsafe { sysreg::sp_el1::write(sysreg::sp_el1::read().wrapping_add(imm as u64)) },
        // SAFETY: as above, for SP_EL0 (the hypervisor keeps nothing there).
        0b0100 | 0b0000 => unsafe { sysreg::sp_el0::write(sysreg::sp_el0::read().wrapping_add(imm as u64)) },
        _ => return false,
    }
    true
}

/// Faults a break-before-make window can cause (not permission faults,
/// which persist and get an abort).
fn transient(f: esr::FaultKind) -> bool {
    matches!(f, esr::FaultKind::Translation(_) | esr::FaultKind::AccessFlag(_))
}

/// Whether `ipa` is mapped in the domain's stage-2 by the time we look: a
/// vCPU that touched a block while another CPU was splitting it
/// (break-before-make) faults on the transient invalid entry. Taking the
/// stage-2 lock waits for the update to finish.
fn mapped_now(dom: &Domain, ipa: u64) -> bool {
    dom.s2.lock().translate(&crate::platform::HeapTables, ipa).is_some()
}

/// Trapped system-register accesses: SGI generation, the EL1 physical
/// timer, and the debug and PMU registers (RAZ/WI). Anything else is
/// UNDEFINED for the guest.
fn sysreg_access(dom: &Domain, vcpu: usize, frame: &mut Frame, acc: &esr::SysRegAccess) {
    use hv_arm::esr as sr;
    let key = acc.key();
    if key == sr::ICC_SGI1R_EL1 {
        if !acc.read {
            let k = dom.vgic.lock().send_sgi(vcpu, frame.reg(acc.rt));
            run::kick(dom, k);
        }
    } else if key == sr::ICC_SGI0R_EL1 || key == sr::ICC_ASGI1R_EL1 {
        // Group-0 / alternate-group SGIs do not exist for a non-secure guest.
    } else if key == sr::CNTP_CTL_EL0 || key == sr::CNTP_CVAL_EL0 || key == sr::CNTP_TVAL_EL0 {
        ptimer_access(key, acc.read, frame, acc.rt);
    } else if debug_or_pmu(acc) {
        // Not offered (the debug and PMU registers trap through MDCR_EL2):
        // read as zero, writes ignored.
        if acc.read {
            frame.set_reg(acc.rt, 0);
        }
    } else {
        crate::glog!(Warning, "d{}v{}: unhandled system register {:?} at pc {:#x}", dom.id, vcpu, acc, frame.elr);
        crate::inject::undef(frame);
        return;
    }
    frame.elr += 4;
}

/// The EL1 physical timer, as Xen emulates it for guests (vtimer.c): a
/// per-vCPU timer whose CTL/CVAL/TVAL read back what was written and which
/// raises PPI 30 when it expires. The vCPU owns this physical CPU, so its
/// timer is the CPU's own EL1 physical timer, which the guest reaches only
/// through these trapped accesses (CNTHCTL_EL2.EL1PCEN = 0) and which
/// `run::start_vcpu` resets; the PPI is forwarded hardware-mapped, as the
/// virtual timer's. CTL.ISTATUS is read-only, as Xen's PENDING bit is to
/// the guest.
fn ptimer_access(key: u32, read: bool, frame: &mut Frame, rt: u8) {
    use hv_arm::esr as sr;
    if read {
        let v = match key {
            sr::CNTP_CTL_EL0 => sysreg::cntp_ctl_el0::read() & 0b111,
            sr::CNTP_CVAL_EL0 => sysreg::cntp_cval_el0::read(),
            _ => sysreg::cntp_tval_el0::read() & 0xffff_ffff,
        };
        frame.set_reg(rt, v);
        return;
    }
    let v = frame.reg(rt);
    // SAFETY: the EL1 physical timer belongs to the vCPU on this CPU; the
    // hypervisor does not use it. Its interrupt is handled in irq.rs.
    unsafe {
        match key {
            sr::CNTP_CTL_EL0 => sysreg::cntp_ctl_el0::write(v & 0b11),
            sr::CNTP_CVAL_EL0 => sysreg::cntp_cval_el0::write(v),
            _ => sysreg::cntp_tval_el0::write(v & 0xffff_ffff),
        }
    }
    sysreg::isb();
}

/// The debug registers (op0 = 2: breakpoints, watchpoints, MDSCR, OS lock)
/// and the PMU registers (op0 = 3, op1 = 3: CRn 9 CRm 12-14, CRn 14 CRm 8-15).
fn debug_or_pmu(acc: &esr::SysRegAccess) -> bool {
    acc.op0 == 2 || (acc.op0 == 3 && acc.op1 == 3 && ((acc.crn == 9 && (12..=14).contains(&acc.crm)) || (acc.crn == 14 && acc.crm >= 8)))
}

/// Emulated MMIO: the vGIC distributor and redistributors and the vPL011.
/// Returns false when nothing is emulated at the address.
fn emulate_mmio(dom: &Domain, vcpu: usize, frame: &mut Frame, acc: &MmioAccess) -> bool {
    let wval = acc.store_value(frame.reg(acc.reg));
    let rval;
    if let Some(off) = dom.gicd.offset(acc.ipa) {
        let mut g = dom.vgic.lock();
        if acc.write {
            let k = g.dist_write(vcpu, off, acc.size, wval, &mut crate::platform::PhysGic);
            drop(g);
            run::kick(dom, k);
            return true;
        }
        rval = g.dist_read(vcpu, off, acc.size);
    } else if let Some(off) = dom.gicr.offset(acc.ipa) {
        let mut g = dom.vgic.lock();
        if acc.write {
            let k = g.redist_write(vcpu, off, acc.size, wval, &mut crate::platform::PhysGic);
            drop(g);
            run::kick(dom, k);
            return true;
        }
        rval = g.redist_read(vcpu, off, acc.size);
    } else if let Some(off) = dom.uart.offset(acc.ipa) {
        let mut u = dom.vuart.lock();
        if acc.write {
            if let Some(b) = u.write(off, acc.size, wval) {
                crate::console::guest_putc(b);
            }
            rval = 0;
        } else {
            rval = u.read(off, acc.size);
        }
        let level = u.irq_level();
        let k = dom.vgic.lock().set_level(vcpu, dom.uart_intid, level);
        drop(u);
        run::kick(dom, k);
        if acc.write {
            return true;
        }
    } else {
        return false;
    }
    frame.set_reg(acc.reg, acc.load_value(rval));
    true
}
