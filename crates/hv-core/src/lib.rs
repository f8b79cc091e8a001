//! Arch-neutral hypervisor logic. Builds and unit-tests on the host; the EL2
//! binary (`hv`) links it. No unsafe, no hardware access.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod bootinfo;
pub mod cmdline;
pub mod dt;
pub mod evtchn;
pub mod frames;
pub mod grant;
pub mod guest;
pub mod log;
pub mod mem;
pub mod p2m;
pub mod xsm;
