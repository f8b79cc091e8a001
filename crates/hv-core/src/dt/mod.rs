//! Device trees: a defensive reader for the (untrusted) host DTB, the dom0
//! device-tree builder, and the list of host resources dom0 gets 1:1.

pub mod dom0;
#[cfg(test)]
mod dom0_tests;
pub mod reader;

pub use dom0::{
    build_dom0_dtb, dom0_passthrough, Dom0DtConfig, HypervisorNode, Passthrough, MAX_DOM0_VCPUS,
};
pub use reader::{Fdt, NodeId};

use core::fmt;

/// Errors from reading or writing a device tree. Malformed input always ends
/// up here; nothing in this module panics on bad data.
#[derive(Debug)]
pub enum DtError {
    /// The blob (or a block/property inside it) ends early.
    Truncated,
    BadMagic,
    /// Unsupported FDT version (need 16 or 17 compatible).
    BadVersion,
    /// Header offsets/sizes are inconsistent.
    BadHeader,
    /// Nodes nested deeper than [`reader::MAX_DEPTH`].
    TooDeep,
    /// Structurally valid FDT with invalid contents.
    Malformed(&'static str),
    /// A required node is missing (e.g. no GICv3).
    Missing(&'static str),
    /// Bad value in the builder's configuration.
    BadConfig(&'static str),
    /// A value does not fit the `#address-cells` / `#size-cells` it must be written with.
    CellOverflow,
    /// The FDT writer rejected the output (e.g. an invalid host node name).
    Writer(vm_fdt::Error),
}

impl From<vm_fdt::Error> for DtError {
    fn from(e: vm_fdt::Error) -> Self {
        DtError::Writer(e)
    }
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtError::Truncated => f.write_str("device tree truncated"),
            DtError::BadMagic => f.write_str("not a device tree (bad magic)"),
            DtError::BadVersion => f.write_str("unsupported device tree version"),
            DtError::BadHeader => f.write_str("inconsistent device tree header"),
            DtError::TooDeep => f.write_str("device tree nested too deep"),
            DtError::Malformed(w) => write!(f, "malformed device tree: {w}"),
            DtError::Missing(w) => write!(f, "device tree lacks {w}"),
            DtError::BadConfig(w) => write!(f, "invalid configuration: {w}"),
            DtError::CellOverflow => f.write_str("value does not fit in its device-tree cells"),
            DtError::Writer(e) => write!(f, "device tree writer: {e}"),
        }
    }
}

/// A GIC interrupt from a 3-cell specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqSpec {
    /// GIC INTID: SPI n → n + 32, PPI n → n + 16.
    pub intid: u32,
    /// The specifier's third cell (trigger type in bits 3:0, PPI CPU mask in 15:8).
    pub flags: u32,
}

impl IrqSpec {
    /// Decode `<type number flags>`; `None` for types other than SPI (0) / PPI (1)
    /// or numbers out of range.
    pub fn from_gic_cells(ty: u32, num: u32, flags: u32) -> Option<Self> {
        let intid = match ty {
            0 if num < 988 => num + 32,
            1 if num < 16 => num + 16,
            _ => return None,
        };
        Some(IrqSpec { intid, flags })
    }

    pub fn is_spi(&self) -> bool {
        (32..1020).contains(&self.intid)
    }

    pub fn is_ppi(&self) -> bool {
        (16..32).contains(&self.intid)
    }

    /// Edge-triggered (flags 1 = rising, 2 = falling) rather than level (4 = high, 8 = low).
    pub fn is_edge(&self) -> bool {
        self.flags & 0x3 != 0
    }
}

/// Xen's `vcpuid_to_vaffinity`: virtual MPIDR affinity of vCPU `vcpu`
/// (Aff0 = id % 16, Aff1 = id / 16; Aff2/Aff3 = 0). Used for the DT `cpu@`
/// `reg`, `VMPIDR_EL2` (OR in bit 31) and the vGIC's `GICR_TYPER` / `IROUTER`.
pub const fn vcpuid_to_vaffinity(vcpu: u32) -> u64 {
    let aff0 = (vcpu & 0xf) as u64;
    let aff1 = ((vcpu >> 4) & 0xff) as u64;
    (aff1 << 8) | aff0
}

/// Inverse of [`vcpuid_to_vaffinity`] for affinities it can produce.
pub const fn vaffinity_to_vcpuid(aff: u64) -> Option<u32> {
    let aff0 = aff & 0xff;
    let aff1 = (aff >> 8) & 0xff;
    if aff0 >= 16 || aff & !0xffff != 0 {
        return None;
    }
    Some((aff1 * 16 + aff0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaffinity() {
        assert_eq!(vcpuid_to_vaffinity(0), 0);
        assert_eq!(vcpuid_to_vaffinity(15), 0xf);
        assert_eq!(vcpuid_to_vaffinity(16), 0x100);
        assert_eq!(vcpuid_to_vaffinity(127), 0x70f);
        for v in 0..4096 {
            assert_eq!(vaffinity_to_vcpuid(vcpuid_to_vaffinity(v)), Some(v));
        }
        assert_eq!(vaffinity_to_vcpuid(0x10), None);
        assert_eq!(vaffinity_to_vcpuid(0x1_0000), None);
    }

    #[test]
    fn irqspec() {
        let s = IrqSpec::from_gic_cells(0, 1, 4).unwrap();
        assert_eq!(s.intid, 33);
        assert!(s.is_spi() && !s.is_edge());
        let p = IrqSpec::from_gic_cells(1, 14, 0xf08).unwrap();
        assert_eq!(p.intid, 30);
        assert!(p.is_ppi());
        assert!(IrqSpec::from_gic_cells(0, 16, 1).unwrap().is_edge());
        assert_eq!(IrqSpec::from_gic_cells(1, 16, 0), None);
        assert_eq!(IrqSpec::from_gic_cells(2, 0, 0), None);
        assert_eq!(IrqSpec::from_gic_cells(0, u32::MAX, 0), None);
    }
}
