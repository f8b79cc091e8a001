//! Domains and vCPUs as the EL2 binary holds them. Each vCPU is pinned to
//! the physical CPU of the same index (dom0 only, for now), so EL1 system
//! registers and list registers live in hardware and are never switched.
//!
//! Lock order: `Vcpu::power` -> `Domain::vgic`; `Domain::vuart` -> `Domain::vgic`.

use alloc::vec::Vec;
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
