//! `public/event_channel.h`: `event_channel_op(cmd, arg)` sub-ops, their
//! argument structs, the FIFO ABI, and the `VIRQ_*` numbers from `xen.h`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::{DomId, XenUlong};

/// `evtchn_port_t`.
pub type EvtchnPort = u32;

pub const EVTCHNOP_bind_interdomain: u32 = 0;
pub const EVTCHNOP_bind_virq: u32 = 1;
pub const EVTCHNOP_bind_pirq: u32 = 2;
pub const EVTCHNOP_close: u32 = 3;
pub const EVTCHNOP_send: u32 = 4;
pub const EVTCHNOP_status: u32 = 5;
pub const EVTCHNOP_alloc_unbound: u32 = 6;
pub const EVTCHNOP_bind_ipi: u32 = 7;
pub const EVTCHNOP_bind_vcpu: u32 = 8;
pub const EVTCHNOP_unmask: u32 = 9;
pub const EVTCHNOP_reset: u32 = 10;
pub const EVTCHNOP_init_control: u32 = 11;
pub const EVTCHNOP_expand_array: u32 = 12;
pub const EVTCHNOP_set_priority: u32 = 13;
/// Hypervisor-internal continuation of `EVTCHNOP_reset` (`#ifdef __XEN__`).
pub const EVTCHNOP_reset_cont: u32 = 14;

// `VIRQ_*` (from `xen.h`), for `evtchn_bind_virq.virq`.
// V = per-vCPU, G = global (bound on vCPU0).
/// V: timebase update and/or requested timeout.
pub const VIRQ_TIMER: u32 = 0;
/// V: request guest to dump debug info.
pub const VIRQ_DEBUG: u32 = 1;
/// G (dom0): bytes received on the emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// G (dom0): exceptional event for some domain.
pub const VIRQ_DOM_EXC: u32 = 3;
/// G (dom0): trace buffer has records available.
pub const VIRQ_TBUF: u32 = 4;
/// G (dom0): a domain has paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// V: XenOprofile sample available.
pub const VIRQ_XENOPROF: u32 = 7;
/// G (dom0): bytes received on the console.
pub const VIRQ_CON_RING: u32 = 8;
/// G (dom0): pCPU state changed.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// G (dom0): a memory event has occurred.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// G: Argo interdomain message notification.
pub const VIRQ_ARGO: u32 = 11;
/// G (dom0): low on heap memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// V: PMC interrupt.
pub const VIRQ_XENPMU: u32 = 13;
pub const VIRQ_ARCH_0: u32 = 16;
pub const VIRQ_ARCH_1: u32 = 17;
pub const VIRQ_ARCH_2: u32 = 18;
pub const VIRQ_ARCH_3: u32 = 19;
pub const VIRQ_ARCH_4: u32 = 20;
pub const VIRQ_ARCH_5: u32 = 21;
pub const VIRQ_ARCH_6: u32 = 22;
pub const VIRQ_ARCH_7: u32 = 23;
pub const NR_VIRQS: u32 = 24;

/// `EVTCHNOP_alloc_unbound`: allocate a port in `dom` for `remote_dom` to bind.
#[doc(alias = "evtchn_alloc_unbound")]
#[doc(alias = "evtchn_alloc_unbound_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnAllocUnbound {
    /// IN: domain to allocate in (`DOMID_SELF` unless privileged).
    pub dom: DomId,
    /// IN: domain allowed to bind the port.
    pub remote_dom: DomId,
    /// OUT: the new port.
    pub port: EvtchnPort,
}
layout!(EvtchnAllocUnbound, 8, 4; dom @ 0, remote_dom @ 2, port @ 4);

/// `EVTCHNOP_bind_interdomain`: connect to an unbound remote port.
#[doc(alias = "evtchn_bind_interdomain")]
#[doc(alias = "evtchn_bind_interdomain_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindInterdomain {
    /// IN.
    pub remote_dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// IN.
    pub remote_port: EvtchnPort,
    /// OUT.
    pub local_port: EvtchnPort,
}
layout!(EvtchnBindInterdomain, 12, 4; remote_dom @ 0, remote_port @ 4, local_port @ 8);

/// `EVTCHNOP_bind_virq`.
#[doc(alias = "evtchn_bind_virq")]
#[doc(alias = "evtchn_bind_virq_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: vCPU to notify.
    pub vcpu: u32,
    /// OUT.
    pub port: EvtchnPort,
}
layout!(EvtchnBindVirq, 12, 4; virq @ 0, vcpu @ 4, port @ 8);

/// `evtchn_bind_pirq.flags`: the PIRQ may be shared.
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

/// `EVTCHNOP_bind_pirq` (not used on Arm).
#[doc(alias = "evtchn_bind_pirq")]
#[doc(alias = "evtchn_bind_pirq_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindPirq {
    /// IN.
    pub pirq: u32,
    /// IN: `BIND_PIRQ__*`.
    pub flags: u32,
    /// OUT.
    pub port: EvtchnPort,
}
layout!(EvtchnBindPirq, 12, 4; pirq @ 0, flags @ 4, port @ 8);

/// `EVTCHNOP_bind_ipi`.
#[doc(alias = "evtchn_bind_ipi")]
#[doc(alias = "evtchn_bind_ipi_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindIpi {
    /// IN.
    pub vcpu: u32,
    /// OUT.
    pub port: EvtchnPort,
}
layout!(EvtchnBindIpi, 8, 4; vcpu @ 0, port @ 4);

/// `EVTCHNOP_close`.
#[doc(alias = "evtchn_close")]
#[doc(alias = "evtchn_close_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnClose {
    /// IN.
    pub port: EvtchnPort,
}
layout!(EvtchnClose, 4, 4; port @ 0);

/// `EVTCHNOP_send`.
#[doc(alias = "evtchn_send")]
#[doc(alias = "evtchn_send_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnSend {
    /// IN.
    pub port: EvtchnPort,
}
layout!(EvtchnSend, 4, 4; port @ 0);

// `evtchn_status.status`.
pub const EVTCHNSTAT_closed: u32 = 0;
pub const EVTCHNSTAT_unbound: u32 = 1;
pub const EVTCHNSTAT_interdomain: u32 = 2;
pub const EVTCHNSTAT_pirq: u32 = 3;
pub const EVTCHNSTAT_virq: u32 = 4;
pub const EVTCHNSTAT_ipi: u32 = 5;

/// The `interdomain` member of `evtchn_status.u` (its `dom` is also
/// `unbound.dom`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnStatusInterdomain {
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    pub port: EvtchnPort,
}
layout!(EvtchnStatusInterdomain, 8, 4; dom @ 0, port @ 4);

/// The union `evtchn_status.u` (8 bytes): `unbound { dom }`,
/// `interdomain { dom, port }`, `pirq`, `virq`; all start at offset 0.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnStatusU(pub [u32; 2]);
layout!(EvtchnStatusU, 8, 4);

impl EvtchnStatusU {
    /// `u.interdomain` (`EVTCHNSTAT_interdomain`).
    pub const fn interdomain(self) -> EvtchnStatusInterdomain {
        zerocopy::transmute!(self)
    }
    /// `u.unbound.dom` (`EVTCHNSTAT_unbound`).
    pub const fn unbound_dom(self) -> DomId {
        self.interdomain().dom
    }
    /// `u.virq` (`EVTCHNSTAT_virq`).
    pub const fn virq(self) -> u32 {
        self.0[0]
    }
    /// `u.pirq` (`EVTCHNSTAT_pirq`).
    pub const fn pirq(self) -> u32 {
        self.0[0]
    }
    /// The union holding `interdomain` (or, with `port == 0`, `unbound`).
    pub const fn from_interdomain(v: EvtchnStatusInterdomain) -> Self {
        zerocopy::transmute!(v)
    }
    /// The union holding `virq` or `pirq`.
    pub const fn from_u32(v: u32) -> Self {
        Self([v, 0])
    }
}

/// `EVTCHNOP_status`.
#[doc(alias = "evtchn_status")]
#[doc(alias = "evtchn_status_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnStatus {
    /// IN.
    pub dom: DomId,
    /// Implicit C padding.
    pub _pad0: u16,
    /// IN.
    pub port: EvtchnPort,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: vCPU to notify.
    pub vcpu: u32,
    /// OUT: depends on `status`.
    pub u: EvtchnStatusU,
}
layout!(EvtchnStatus, 24, 4; dom @ 0, port @ 4, status @ 8, vcpu @ 12, u @ 16);

/// `EVTCHNOP_bind_vcpu`: change the vCPU notified for a port.
#[doc(alias = "evtchn_bind_vcpu")]
#[doc(alias = "evtchn_bind_vcpu_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindVcpu {
    /// IN.
    pub port: EvtchnPort,
    /// IN.
    pub vcpu: u32,
}
layout!(EvtchnBindVcpu, 8, 4; port @ 0, vcpu @ 4);

/// `EVTCHNOP_unmask`.
#[doc(alias = "evtchn_unmask")]
#[doc(alias = "evtchn_unmask_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnUnmask {
    /// IN.
    pub port: EvtchnPort,
}
layout!(EvtchnUnmask, 4, 4; port @ 0);

/// `EVTCHNOP_reset`: close all of a domain's ports.
#[doc(alias = "evtchn_reset")]
#[doc(alias = "evtchn_reset_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnReset {
    /// IN.
    pub dom: DomId,
}
layout!(EvtchnReset, 2, 2; dom @ 0);

/// `EVTCHNOP_init_control`: register a vCPU's FIFO control block (and switch
/// the domain to the FIFO ABI).
#[doc(alias = "evtchn_init_control")]
#[doc(alias = "evtchn_init_control_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnInitControl {
    /// IN: GFN of the page holding the control block.
    pub control_gfn: u64,
    /// IN: byte offset of the control block in that page.
    pub offset: u32,
    /// IN.
    pub vcpu: u32,
    /// OUT: `EVTCHN_FIFO_LINK_BITS`.
    pub link_bits: u8,
    pub _pad: [u8; 7],
}
layout!(EvtchnInitControl, 24, 8; control_gfn @ 0, offset @ 8, vcpu @ 12, link_bits @ 16,
        _pad @ 17);

/// `EVTCHNOP_expand_array`: add one page to the FIFO event array.
#[doc(alias = "evtchn_expand_array")]
#[doc(alias = "evtchn_expand_array_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnExpandArray {
    /// IN: GFN of the new event-array page.
    pub array_gfn: u64,
}
layout!(EvtchnExpandArray, 8, 8; array_gfn @ 0);

/// `EVTCHNOP_set_priority` (FIFO only).
#[doc(alias = "evtchn_set_priority")]
#[doc(alias = "evtchn_set_priority_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnSetPriority {
    /// IN.
    pub port: EvtchnPort,
    /// IN: `EVTCHN_FIFO_PRIORITY_MAX ..= EVTCHN_FIFO_PRIORITY_MIN`.
    pub priority: u32,
}
layout!(EvtchnSetPriority, 8, 4; port @ 0, priority @ 4);

/// 2-level ABI: number of ports (`sizeof(xen_ulong_t)^2 * 64` = 4096 on arm64).
pub const EVTCHN_2L_NR_CHANNELS: u32 =
    (core::mem::size_of::<XenUlong>() * core::mem::size_of::<XenUlong>() * 64) as u32;

// FIFO ABI.
/// Highest priority.
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// Lowest priority.
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
pub const EVTCHN_FIFO_MAX_QUEUES: usize = EVTCHN_FIFO_PRIORITY_MIN as usize + 1;

/// `event_word_t`: one FIFO event-array entry (1024 per 4 KiB page).
#[doc(alias = "event_word_t")]
pub type EventWord = u32;

// Bit numbers in an `event_word_t`.
pub const EVTCHN_FIFO_PENDING: u32 = 31;
pub const EVTCHN_FIFO_MASKED: u32 = 30;
pub const EVTCHN_FIFO_LINKED: u32 = 29;
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// Width of the LINK field (bits 16..0).
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// FIFO ABI: number of ports (131072).
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;

/// Per-vCPU FIFO control block (72 bytes), registered with
/// `EVTCHNOP_init_control`.
#[doc(alias = "evtchn_fifo_control_block")]
#[doc(alias = "evtchn_fifo_control_block_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnFifoControlBlock {
    /// Bit `q` set = queue `q` is non-empty (set by Xen, cleared by the guest).
    pub ready: u32,
    pub _rsvd: u32,
    /// First port of each priority queue.
    pub head: [EvtchnPort; EVTCHN_FIFO_MAX_QUEUES],
}
layout!(EvtchnFifoControlBlock, 72, 4; ready @ 0, _rsvd @ 4, head @ 8);
