//! AArch64 hypervisor logic that executes no privileged instruction: decoding
//! of trap syndromes, emulation state machines and table formats. Host-tested;
//! the EL2 binary (`hv`) supplies the registers and memory.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod esr;
pub mod mmio;
pub mod stage2;
pub mod psci;
pub mod s1walk;
pub mod vpl011;
pub mod vgic;
