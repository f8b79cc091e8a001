//! `public/arch-arm.h` (the arm64 parts a domU builder and the hypervisor
//! share): the vCPU context of `XEN_DOMCTL_{set,get}vcpucontext`, the initial
//! register values Xen's toolstack uses, and the fixed guest physical memory
//! map and interrupts. `xen_arch_domainconfig` lives in `domctl`.
//!
//! Also carries `GUEST_PHANDLE_GIC` (`public/device_tree_defs.h`), the
//! redistributor stride (Xen-internal) and libxenguest's magic-page offsets
//! (not hypervisor ABI); each says where it comes from.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// AArch64 core registers of a vCPU (312 bytes). Xen 4.17 declares each
/// `xN` as a union with its AArch32 banked-register alias and `cpsr` as
/// `uint64_t`; only the 64-bit names are modelled here.
#[doc(alias = "vcpu_guest_core_regs")]
#[doc(alias = "vcpu_guest_core_regs_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuGuestCoreRegs {
    /// x0..x30 (C names `x0`..`x30`).
    pub x: [u64; 31],
    /// Return address: the guest's PC on entry (`ELR_EL2`).
    pub pc64: u64,
    /// Guest PSTATE on entry (`SPSR_EL2`), e.g. `PSR_GUEST64_INIT`.
    pub cpsr: u64,
    /// `SPSR_EL1` (C: union with the AArch32 `spsr_svc`, u32).
    pub spsr_el1: u64,
    /// AArch32 guests only.
    pub spsr_fiq: u32,
    /// AArch32 guests only.
    pub spsr_irq: u32,
    /// AArch32 guests only.
    pub spsr_und: u32,
    /// AArch32 guests only.
    pub spsr_abt: u32,
    /// AArch64 guests only.
    pub sp_el0: u64,
    /// AArch64 guests only.
    pub sp_el1: u64,
    /// AArch64 guests only.
    pub elr_el1: u64,
}
layout!(VcpuGuestCoreRegs, 312, 8; x @ 0, pc64 @ 248, cpsr @ 256, spsr_el1 @ 264,
        spsr_fiq @ 272, spsr_irq @ 276, spsr_und @ 280, spsr_abt @ 284, sp_el0 @ 288,
        sp_el1 @ 296, elr_el1 @ 304);

pub const _VGCF_online: u32 = 0;
/// `vcpu_guest_context.flags`: the vCPU is brought online by
/// `setvcpucontext` (otherwise it stays down until e.g. PSCI `CPU_ON`).
pub const VGCF_online: u32 = 1 << _VGCF_online;

/// A vCPU's context for `XEN_DOMCTL_{set,get}vcpucontext` (352 bytes).
#[doc(alias = "vcpu_guest_context")]
#[doc(alias = "vcpu_guest_context_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuGuestContext {
    /// `VGCF_*`.
    pub flags: u32,
    /// Implicit C padding.
    pub _pad0: u32,
    /// Core CPU registers.
    pub user_regs: VcpuGuestCoreRegs,
    /// `SCTLR_EL1`, e.g. `SCTLR_GUEST_INIT`.
    pub sctlr: u64,
    /// `TCR_EL1`.
    pub ttbcr: u64,
    /// `TTBR0_EL1`.
    pub ttbr0: u64,
    /// `TTBR1_EL1`.
    pub ttbr1: u64,
}
layout!(VcpuGuestContext, 352, 8; flags @ 0, _pad0 @ 4, user_regs @ 8,
        user_regs.pc64 @ 256, user_regs.cpsr @ 264, sctlr @ 320, ttbcr @ 328, ttbr0 @ 336,
        ttbr1 @ 344);

// PSTATE bits and modes used to build the initial `cpsr`.
pub const PSR_FIQ_MASK: u32 = 1 << 6;
pub const PSR_IRQ_MASK: u32 = 1 << 7;
pub const PSR_ABT_MASK: u32 = 1 << 8;
/// arm64: debug exception mask (D).
pub const PSR_DBG_MASK: u32 = 1 << 9;
pub const PSR_MODE_EL1h: u32 = 0x05;
/// Initial PSTATE of an AArch64 guest: EL1h with A, I and F masked (0x1c5).
pub const PSR_GUEST64_INIT: u32 = PSR_ABT_MASK | PSR_FIQ_MASK | PSR_IRQ_MASK | PSR_MODE_EL1h;
/// Initial `SCTLR_EL1` of a guest vCPU (MMU and caches off, RES1 bits set).
pub const SCTLR_GUEST_INIT: u64 = 0x00c5_0078;

// Guest physical memory map (fixed for domUs).
/// GICv3 distributor.
pub const GUEST_GICV3_GICD_BASE: u64 = 0x0300_1000;
pub const GUEST_GICV3_GICD_SIZE: u64 = 0x0001_0000;
/// Number of redistributor regions in the guest's GICv3 DT node.
pub const GUEST_GICV3_RDIST_REGIONS: u32 = 1;
/// GICv3 redistributors of vCPU 0..127, `GUEST_GICV3_RDIST_STRIDE` apart.
pub const GUEST_GICV3_GICR0_BASE: u64 = 0x0302_0000;
pub const GUEST_GICV3_GICR0_SIZE: u64 = 0x0100_0000;
/// Bytes of redistributor per vCPU (RD_base + SGI_base frames, 2 × 64 KiB).
/// Not in the public header: Xen's internal `GICV3_GICR_SIZE`, which its
/// vGIC-v3 uses to lay out `GUEST_GICV3_GICR0_*`.
pub const GUEST_GICV3_RDIST_STRIDE: u64 = 0x0002_0000;
/// Grant-table frames are mapped here (`XENMAPSPACE_grant_table`); DT
/// `/hypervisor` `reg`.
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;
/// Toolstack "magic" pages (console, xenstore, ...): see `*_PFN_OFFSET`.
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
pub const GUEST_MAGIC_SIZE: u64 = 0x0100_0000;
/// Number of guest RAM banks.
pub const GUEST_RAM_BANKS: u32 = 2;
/// RAM bank 0: 3 GiB of low RAM at 1 GiB.
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;
pub const GUEST_RAM0_SIZE: u64 = 0xc000_0000;
/// RAM bank 1: 1016 GiB at 8 GiB.
pub const GUEST_RAM1_BASE: u64 = 0x02_0000_0000;
pub const GUEST_RAM1_SIZE: u64 = 0xfe_0000_0000;
/// Lowest guest RAM address.
pub const GUEST_RAM_BASE: u64 = GUEST_RAM0_BASE;
pub const GUEST_MAX_VCPUS: u32 = 128;

// Guest interrupts (PPIs, GIC INTIDs).
pub const GUEST_TIMER_VIRT_PPI: u32 = 27;
pub const GUEST_TIMER_PHYS_S_PPI: u32 = 29;
pub const GUEST_TIMER_PHYS_NS_PPI: u32 = 30;
/// Event-channel upcall.
pub const GUEST_EVTCHN_PPI: u32 = 31;

/// Phandle of the guest's GIC node (`public/device_tree_defs.h`).
pub const GUEST_PHANDLE_GIC: u32 = 65000;

// Magic pages at `GUEST_MAGIC_BASE`, in pages. These are the toolstack's
// choice (libxenguest's `xg_dom_arm.c`, which libxl uses), not hypervisor
// ABI: the guest learns the pfns from HVM params.
/// PV console ring (`HVM_PARAM_CONSOLE_PFN`).
pub const CONSOLE_PFN_OFFSET: u64 = 0;
/// xenstore ring (`HVM_PARAM_STORE_PFN`).
pub const XENSTORE_PFN_OFFSET: u64 = 1;
/// vm_event / mem-access ring.
pub const MEMACCESS_PFN_OFFSET: u64 = 2;
/// Emulated PL011 (vpl011) ring.
pub const VUART_PFN_OFFSET: u64 = 3;
/// Magic pages populated by the toolstack.
pub const NR_MAGIC_PAGES: u64 = 4;
