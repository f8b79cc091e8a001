//! Physical interrupts taken at EL2: kicks and maintenance (just cause an
//! exit), the virtual timer and dom0's pass-through SPIs (forwarded as
//! hardware-mapped virtual interrupts: the guest's deactivation deactivates
//! the physical one), and the console UART (fed to the guest's vPL011).

use crate::domain::Domain;
use crate::hw::{gicv3, sysreg};
use crate::run;

pub const MAINTENANCE_PPI: u32 = 25;
pub const VTIMER_PPI: u32 = 27;

/// The console UART's SPI, owned by the hypervisor (0 until known).
static UART_INTID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

pub fn set_uart_intid(intid: u32) {
    UART_INTID.store(intid, core::sync::atomic::Ordering::Relaxed);
}

/// Handle every pending physical interrupt while a vCPU of `dom` runs here.
/// Returns the maintenance interrupt's IAR if it fired: the caller
/// deactivates it only after the next `flush` rewrote ICH_HCR_EL2, or the
/// still-asserted level would fire it again at once.
pub fn handle_guest(dom: &Domain, vcpu: usize) -> Option<u32> {
    let uart = UART_INTID.load(core::sync::atomic::Ordering::Relaxed);
    let mut maintenance = None;
    loop {
        let iar = gicv3::ack();
        let intid = iar & 0xff_ffff;
        if intid >= gicv3::SPURIOUS {
            break;
        }
        gicv3::eoi(iar);
        match intid {
            MAINTENANCE_PPI => maintenance = Some(iar),
            VTIMER_PPI => {
                if dom.vgic.lock().is_enabled(vcpu, VTIMER_PPI) {
                    let k = dom.vgic.lock().inject(vcpu, VTIMER_PPI);
                    run::kick(k);
                } else {
                    // The guest does not want it: mask the timer output so
                    // the level-triggered PPI does not fire again at once.
                    let ctl = sysreg::cntv_ctl_el0::read();
                    // SAFETY: setting IMASK only silences the guest's own timer.
                    unsafe { sysreg::cntv_ctl_el0::write(ctl | 2) };
                    gicv3::deactivate(iar);
                }
            }
            i if i == uart && uart != 0 => {
                uart_rx(dom);
                gicv3::deactivate(iar);
            }
            i if i >= 32 => {
                // A dom0 pass-through SPI (the vGIC maps it 1:1, HW=1).
                let mut g = dom.vgic.lock();
                if g.is_enabled(vcpu, i) {
                    let k = g.inject(vcpu, i);
                    drop(g);
                    run::kick(k);
                } else {
                    drop(g);
                    gicv3::deactivate(iar);
                }
            }
            _ => gicv3::deactivate(iar),
        }
    }
    maintenance
}

/// Move received console bytes into the guest's vPL011.
fn uart_rx(dom: &Domain) {
    let mut u = dom.vuart.lock();
    // Bounded: at most a FIFO's worth per interrupt. Dom0's hvc0 gets the
    // bytes once it listens (VIRQ_CONSOLE), else its emulated PL011.
    for _ in 0..64 {
        match crate::console::getc() {
            Some(b) => {
                if !crate::xen::console_input(dom, b) && !u.push_rx(b) {
                    break;
                }
            }
            None => break,
        }
    }
    let level = u.irq_level();
    let k = dom.vgic.lock().set_level(0, dom.uart_intid, level);
    drop(u);
    run::kick(k);
}

/// Interrupts that arrive while this CPU idles: only kicks matter (the
/// idle loop re-checks its vCPU); anything else is acknowledged and dropped,
/// or forwarded to dom0 if it is its SPI.
pub fn drain_idle() {
    loop {
        let iar = gicv3::ack();
        let intid = iar & 0xff_ffff;
        if intid >= gicv3::SPURIOUS {
            break;
        }
        gicv3::eoi(iar);
        if intid >= 32 {
            if let Some(dom) = crate::domain::DOM0.get() {
                if intid == UART_INTID.load(core::sync::atomic::Ordering::Relaxed) {
                    uart_rx(dom);
                } else {
                    let mut g = dom.vgic.lock();
                    if g.is_enabled(0, intid) {
                        let k = g.inject(0, intid);
                        drop(g);
                        run::kick(k);
                        continue; // the guest deactivates it
                    }
                }
            }
        }
        gicv3::deactivate(iar);
    }
}
