//! Hardware the hypervisor owns: the only place with register access.
pub mod cache;
pub mod firmware;
pub mod gicv3;
pub mod mmio;
pub mod mmu;
pub mod phys;
pub mod pl011;
pub mod sysreg;
