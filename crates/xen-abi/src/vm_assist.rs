//! `vm_assist(cmd, type)` constants (`VMASST_*`, from `public/xen.h`).
//! Arm 4.17 accepts only `VMASST_TYPE_runstate_update_flag`.

pub const VMASST_CMD_enable: u32 = 0;
pub const VMASST_CMD_disable: u32 = 1;

/// x86-32 PV only.
pub const VMASST_TYPE_4gb_segments: u32 = 0;
/// x86-32 PV only.
pub const VMASST_TYPE_4gb_segments_notify: u32 = 1;
/// x86 PV only.
pub const VMASST_TYPE_writable_pagetables: u32 = 2;
/// x86-32 PV only.
pub const VMASST_TYPE_pae_extended_cr3: u32 = 3;
/// x86 PV only.
pub const VMASST_TYPE_architectural_iopl: u32 = 4;
/// Xen sets `XEN_RUNSTATE_UPDATE` in the runstate area's `state_entry_time`
/// while updating it.
pub const VMASST_TYPE_runstate_update_flag: u32 = 5;
/// x86-64 PV only.
pub const VMASST_TYPE_m2p_strict: u32 = 32;
