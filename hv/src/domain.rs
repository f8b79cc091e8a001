//! Domains and vCPUs as the EL2 binary holds them. Each vCPU is pinned to
//! the physical CPU of the same index (dom0 only, for now), so EL1 system
//! registers and list registers live in hardware and are never switched.
//!
//! Lock order (outermost first): `Vcpu::power` -> `vgic`; `vuart` ->
//! {`vgic`, console, `xen.evtchn`}; `xen.evtchn` / `xen.grant` -> `s2` -> heap.
//! Nothing takes `vuart`, `evtchn` or `grant` while holding `s2` or the console.

use alloc::vec::Vec;
use hv_arm::stage2::Stage2;
use hv_core::mem::Range;
use hv_arm::vgic::Vgic;
use hv_arm::vpl011::Vpl011;
use spin::{Mutex, Once};

/// Power state of a vCPU as PSCI sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Power {
    Off,
    /// CPU_ON accepted; the owning physical CPU starts it at `entry` with x0 = `ctx`.
    Starting { entry: u64, ctx: u64 },
    On,
}

pub struct Vcpu {
    pub id: usize,
    /// Virtual MPIDR affinity (Aff0 = id % 16, Aff1 = id / 16).
    pub vaff: u64,
    pub power: Mutex<Power>,
}

/// An emulated MMIO window `[base, base + size)` in the guest's IPA space.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub base: u64,
    pub size: u64,
}

impl Window {
    pub fn offset(&self, ipa: u64) -> Option<u64> {
        ipa.checked_sub(self.base).filter(|o| *o < self.size)
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
    pub vttbr: u64,
    pub vtcr: u64,
    pub cntvoff: u64,
    /// Stage-2 tables (IPA -> PA), changed by ballooning, grant mapping and
    /// add_to_physmap while the domain runs.
    pub s2: Mutex<Stage2>,
    /// RAM the domain owns (for dom0: host frames, IPA == PA).
    pub ram: Vec<Range>,
    /// The domain's Xen interface: event channels, grants, shared_info.
    pub xen: crate::xen::XenDom,
}

impl Domain {
    pub fn vcpu(&self, id: usize) -> Option<&Vcpu> {
        self.vcpus.get(id)
    }

    /// vCPU whose virtual MPIDR affinity matches `mpidr` (PSCI target).
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<&Vcpu> {
        let aff = mpidr & 0xff_00ff_ffff;
        self.vcpus.iter().find(|v| v.vaff == aff)
    }
}

/// The hardware domain.
pub static DOM0: Once<Domain> = Once::new();

/// Nanoseconds of the domain's virtual counter (Xen's system time for it).
pub fn system_time_ns(dom: &Domain) -> u64 {
    let ticks = crate::hw::sysreg::cntpct_el0::read().wrapping_sub(dom.cntvoff);
    let freq = crate::hw::sysreg::cntfrq_el0::read().max(1);
    ((ticks as u128 * 1_000_000_000) / freq as u128) as u64
}

/// SCHEDOP_shutdown / remote_shutdown. The hardware domain's end is the
/// machine's, as with Xen.
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
    crate::log!(Info, "d{}: shutdown ({})", dom.id, what);
    if dom.id == 0 {
        crate::log!(Info, "Hardware domain {}: {} the machine", what, if reason == SHUTDOWN_reboot { "resetting" } else { "halting" });
        if reason == SHUTDOWN_reboot {
            crate::hw::firmware::system_reset();
        }
        crate::hw::firmware::system_off();
    }
}
