//! `public/hvm/hvm_op.h`: `hvm_op(op, arg)` sub-ops. Arm 4.17 implements
//! `HVMOP_set_param`, `HVMOP_get_param` and `HVMOP_guest_request_vm_event`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::DomId;

/// IN: [`XenHvmParam`].
pub const HVMOP_set_param: u32 = 0;
/// IN/OUT: [`XenHvmParam`].
pub const HVMOP_get_param: u32 = 1;
/// Interface versions < 0x00040900 only (now a dm_op).
pub const HVMOP_set_pci_intx_level: u32 = 2;
/// Interface versions < 0x00040900 only (now a dm_op).
pub const HVMOP_set_isa_irq_level: u32 = 3;
/// Interface versions < 0x00040900 only (now a dm_op).
pub const HVMOP_set_pci_link_route: u32 = 4;
pub const HVMOP_flush_tlbs: u32 = 5;
pub const HVMOP_pagetable_dying: u32 = 9;
pub const HVMOP_get_time: u32 = 10;
pub const HVMOP_xentrace: u32 = 11;
/// Tools only.
pub const HVMOP_set_mem_access: u32 = 12;
/// Tools only.
pub const HVMOP_get_mem_access: u32 = 13;
pub const HVMOP_get_mem_type: u32 = 15;
/// x86 only.
pub const HVMOP_set_evtchn_upcall_vector: u32 = 23;
/// Argument NULL.
pub const HVMOP_guest_request_vm_event: u32 = 24;
pub const HVMOP_altp2m: u32 = 25;

/// Argument of `HVMOP_set_param` / `HVMOP_get_param`.
#[doc(alias = "xen_hvm_param")]
#[doc(alias = "xen_hvm_param_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenHvmParam {
    /// IN: domain (`DOMID_SELF` for the caller).
    pub domid: DomId,
    pub pad: u16,
    /// IN: `HVM_PARAM_*`.
    pub index: u32,
    /// IN (`set_param`) / OUT (`get_param`).
    pub value: u64,
}
layout!(XenHvmParam, 16, 8; domid @ 0, pad @ 2, index @ 4, value @ 8);
