//! The end of a domain or of the hypervisor, with the registers on the console.

use crate::domain::Domain;
use crate::hw::{firmware, sysreg};
use crate::trap::{Frame, Kind};

fn dump(frame: &Frame) {
    crate::log!(Error, "  pc {:#018x}  spsr {:#010x}  esr_el2 {:#010x}  far_el2 {:#x}  hpfar {:#x}",
        frame.elr, frame.spsr, sysreg::esr_el2::read(), sysreg::far_el2::read(), sysreg::hpfar_el2::read());
    for i in (0..31).step_by(3) {
        match i {
            30 => crate::log!(Error, "  x30 {:#018x}", frame.x[30]),
            _ => crate::log!(Error, "  x{:<2} {:#018x}  x{:<2} {:#018x}  x{:<2} {:#018x}",
                i, frame.x[i], i + 1, frame.x[i + 1], i + 2, frame.x[i + 2]),
        }
    }
    crate::log!(Error, "  elr_el1 {:#x}  esr_el1 {:#x}  far_el1 {:#x}  sctlr_el1 {:#x}  vbar_el1 {:#x}",
        sysreg::elr_el1::read(), sysreg::esr_el1::read(), sysreg::far_el1::read(),
        sysreg::sctlr_el1::read(), sysreg::vbar_el1::read());
}

/// A guest did something the hypervisor cannot continue from: report it
/// and end the domain. Dom0's end is the machine's, as with Xen.
pub fn crash_domain(dom: &Domain, vcpu: usize, frame: &Frame, why: &str) -> ! {
    crate::log!(Error, "d{}v{}: {}; domain crashed", dom.id, vcpu, why);
    dump(frame);
    if dom.id == 0 {
        crate::log!(Error, "Hardware domain (dom0) crashed: halting the machine");
        firmware::system_off();
    }
    crate::domain::shutdown(dom, xen_abi::sched::SHUTDOWN_crash);
    crate::run::vcpu_off(dom, &dom.vcpus[vcpu])
}

/// An exception the hypervisor took itself: a bug. Report and halt.
pub fn hypervisor_fault(frame: &Frame, kind: Kind) -> ! {
    crate::console::emergency(format_args!("(FV) <E> hypervisor fault ({:?}) on CPU{}", kind, crate::percpu::this_cpu()));
    dump(frame);
    firmware::system_off();
}
