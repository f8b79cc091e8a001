//! Physical interrupts taken at EL2: kicks and maintenance (just cause an
//! exit), the virtual timer and dom0's pass-through SPIs (forwarded as
//! hardware-mapped virtual interrupts: the guest's deactivation deactivates
//! the physical one), and the console UART (fed to the guest's vPL011).

use crate::domain::Domain;
use crate::hw::gicv3;
use crate::run;

pub const MAINTENANCE_PPI: u32 = 25;
pub const VTIMER_PPI: u32 = 27;
/// The EL1 physical timer (non-secure), emulated for guests on the real one.
pub const PTIMER_PPI: u32 = 30;

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
            // Hardware-mapped: the physical interrupt stays active until the
            // guest deactivates the virtual one. If the guest has it disabled
            // (e.g. a CPU coming up programs its timer before enabling the
            // PPI), it stays pending in the vGIC and is delivered once
            // enabled; masking the timer instead would lose the event.
            VTIMER_PPI | PTIMER_PPI => {
                let k = dom.vgic.lock().inject(vcpu, intid);
                run::kick(dom, k);
            }
            // SPIs are dom0's whichever vCPU this CPU runs.
            i if i == uart && uart != 0 => {
                if let Some(d0) = crate::domain::DOM0.get() {
                    uart_rx(d0);
                }
                gicv3::deactivate(iar);
            }
            i if i >= 32 && dom.is_hardware() => {
                // A dom0 pass-through SPI (mapped 1:1, HW=1), kept pending in
                // the vGIC until the guest enables and completes it.
                let k = dom.vgic.lock().inject(vcpu, i);
                run::kick(dom, k);
            }
            i if i >= 32 => {
                if let Some(d0) = crate::domain::DOM0.get() {
                    let k = d0.vgic.lock().inject(0, i);
                    run::kick(d0, k);
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
    run::kick(dom, k);
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
        if intid == VTIMER_PPI || intid == PTIMER_PPI {
            // The timer of a vCPU that is off: silence it until the vCPU
            // starts again (start_vcpu re-enables the PPI).
            gicv3::set_private_enabled(crate::percpu::this_cpu(), intid, false);
        } else if intid >= 32 {
            if let Some(dom) = crate::domain::DOM0.get() {
                if intid == UART_INTID.load(core::sync::atomic::Ordering::Relaxed) {
                    uart_rx(dom);
                } else {
                    // A dom0 pass-through SPI (HW-mapped): the guest
                    // deactivates it once delivered.
                    let k = dom.vgic.lock().inject(0, intid);
                    run::kick(dom, k);
                    continue;
                }
            }
        }
        gicv3::deactivate(iar);
    }
}
