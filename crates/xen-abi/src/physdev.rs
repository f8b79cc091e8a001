//! `public/physdev.h`: `physdev_op(cmd, arg)` sub-ops. On Arm only the PCI
//! device add/remove ops exist (with `CONFIG_HAS_PCI`); the rest are x86.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const PHYSDEVOP_irq_status_query: u32 = 5;
pub const PHYSDEVOP_set_iopl: u32 = 6;
pub const PHYSDEVOP_set_iobitmap: u32 = 7;
pub const PHYSDEVOP_apic_read: u32 = 8;
pub const PHYSDEVOP_apic_write: u32 = 9;
pub const PHYSDEVOP_alloc_irq_vector: u32 = 10;
pub const PHYSDEVOP_free_irq_vector: u32 = 11;
pub const PHYSDEVOP_eoi: u32 = 12;
pub const PHYSDEVOP_map_pirq: u32 = 13;
pub const PHYSDEVOP_unmap_pirq: u32 = 14;
pub const PHYSDEVOP_manage_pci_add: u32 = 15;
pub const PHYSDEVOP_manage_pci_remove: u32 = 16;
pub const PHYSDEVOP_pirq_eoi_gmfn_v1: u32 = 17;
pub const PHYSDEVOP_restore_msi: u32 = 19;
pub const PHYSDEVOP_manage_pci_add_ext: u32 = 20;
pub const PHYSDEVOP_setup_gsi: u32 = 21;
pub const PHYSDEVOP_get_free_pirq: u32 = 23;
pub const PHYSDEVOP_pci_mmcfg_reserved: u32 = 24;
/// IN: [`PhysdevPciDeviceAdd`].
pub const PHYSDEVOP_pci_device_add: u32 = 25;
/// IN: [`PhysdevPciDevice`].
pub const PHYSDEVOP_pci_device_remove: u32 = 26;
pub const PHYSDEVOP_restore_msi_ext: u32 = 27;
pub const PHYSDEVOP_pirq_eoi_gmfn_v2: u32 = 28;
pub const PHYSDEVOP_dbgp_op: u32 = 29;
pub const PHYSDEVOP_prepare_msix: u32 = 30;
pub const PHYSDEVOP_release_msix: u32 = 31;

// `physdev_pci_device_add.flags`.
/// Extended function (ARI).
pub const XEN_PCI_DEV_EXTFN: u32 = 0x1;
/// SR-IOV virtual function; `physfn` names its physical function.
pub const XEN_PCI_DEV_VIRTFN: u32 = 0x2;
/// `optarr[0]` holds the device's proximity (NUMA) domain.
pub const XEN_PCI_DEV_PXM: u32 = 0x4;

/// The `physfn` member of `physdev_pci_device_add`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevPciDeviceAddPhysfn {
    pub bus: u8,
    pub devfn: u8,
}
layout!(PhysdevPciDeviceAddPhysfn, 2, 1; bus @ 0, devfn @ 1);

/// `PHYSDEVOP_pci_device_add` (12 bytes), followed in guest memory by the
/// flexible array `uint32_t optarr[]` at offset 12.
#[doc(alias = "physdev_pci_device_add")]
#[doc(alias = "physdev_pci_device_add_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevPciDeviceAdd {
    /// IN: PCI segment.
    pub seg: u16,
    /// IN.
    pub bus: u8,
    /// IN.
    pub devfn: u8,
    /// IN: `XEN_PCI_DEV_*`.
    pub flags: u32,
    /// IN: the physical function (with `XEN_PCI_DEV_VIRTFN`).
    pub physfn: PhysdevPciDeviceAddPhysfn,
    /// Implicit C padding (before `optarr`).
    pub _pad0: u16,
}
layout!(PhysdevPciDeviceAdd, 12, 4; seg @ 0, bus @ 2, devfn @ 3, flags @ 4, physfn @ 8,
        physfn.devfn @ 9);

/// `PHYSDEVOP_pci_device_remove` (and other ops naming one device).
#[doc(alias = "physdev_pci_device")]
#[doc(alias = "physdev_pci_device_t")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevPciDevice {
    /// IN.
    pub seg: u16,
    /// IN.
    pub bus: u8,
    /// IN.
    pub devfn: u8,
}
layout!(PhysdevPciDevice, 4, 2; seg @ 0, bus @ 2, devfn @ 3);
