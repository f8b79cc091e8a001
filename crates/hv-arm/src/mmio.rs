//! Turning a stage-2 data abort into an emulatable MMIO access.
//!
//! The hardware only describes the access (size, register, sign extension) when
//! `ISV` is set, i.e. for single-register loads/stores without writeback.
//! Everything else (LDP/STP, writeback forms, cache maintenance on an MMIO
//! address, faults on the guest's own page-table walk) is refused here; the
//! caller decides what to inject (Xen injects a data abort).

use crate::esr::{DataAbort, FaultKind};

/// One decoded guest MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Faulting intermediate physical address (see [`fault_ipa`]).
    pub ipa: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// `true` for a store.
    pub write: bool,
    /// Transfer register Rt, 0..=31; 31 is XZR (loads discard, stores write 0).
    pub reg: u8,
    /// Loaded value must be sign-extended (never set for stores).
    pub sign_extend: bool,
    /// Rt is a 64-bit X register (otherwise a W register: the upper 32 bits
    /// are written as zero on a load).
    pub sixty_four: bool,
}

/// Decode a lower-EL data abort at `ipa` into an MMIO access.
///
/// `None` when the syndrome carries no instruction information (`ISV = 0`),
/// or the abort is not a plain load/store the hypervisor can emulate: cache
/// maintenance / AT (`CM`), stage-2 fault on a stage-1 walk (`S1PTW`),
/// VNCR-relative access, an external abort, or a fault status other than
/// translation / access flag / permission.
pub fn decode(da: &DataAbort, ipa: u64) -> Option<MmioAccess> {
    if !da.isv || da.cm || da.s1ptw || da.vncr || da.ea {
        return None;
    }
    match da.fault() {
        FaultKind::Translation(_) | FaultKind::AccessFlag(_) | FaultKind::Permission(_) => {}
        _ => return None,
    }
    let size = 1u8 << (da.sas & 3);
    Some(MmioAccess {
        ipa,
        size,
        write: da.wnr,
        reg: da.srt & 0x1F,
        sign_extend: da.sse && !da.wnr,
        sixty_four: da.sf,
    })
}

#[inline]
const fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

impl MmioAccess {
    /// Mask selecting the accessed bytes (sizes other than 1/2/4 act as 8).
    #[inline]
    pub const fn mask(&self) -> u64 {
        size_mask(self.size)
    }

    /// The value to write into Rt for a load that returned `raw` from the
    /// device: truncated to the access size, sign-extended if requested, and
    /// limited to 32 bits for a W register. The caller must not write it
    /// anywhere when `reg == 31` (XZR).
    pub fn load_value(&self, raw: u64) -> u64 {
        let mask = self.mask();
        let mut v = raw & mask;
        if self.sign_extend && mask != u64::MAX {
            let sign = (mask >> 1) + 1;
            if v & sign != 0 {
                v |= !mask;
            }
        }
        if !self.sixty_four {
            v &= 0xFFFF_FFFF;
        }
        v
    }

    /// The value the device sees for a store, given the value of Rt (the
    /// caller passes 0 when `reg == 31`, XZR): truncated to the access size.
    #[inline]
    pub fn store_value(&self, reg_value: u64) -> u64 {
        reg_value & self.mask()
    }
}

/// Faulting IPA from `HPFAR_EL2` and `FAR_EL2`: HPFAR.FIPA (bits 43:4) holds
/// IPA bits 51:12; the page offset comes from FAR. HPFAR bit 63 (NS) and
/// RES0 bits are ignored. Valid for stage-2 translation, access flag and
/// permission faults; when `DataAbort::fnv` is set the page offset is UNKNOWN.
#[inline]
pub const fn fault_ipa(hpfar_el2: u64, far_el2: u64) -> u64 {
    ((hpfar_el2 & 0x0000_0FFF_FFFF_FFF0) << 8) | (far_el2 & 0xFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn da(isv: bool, sas: u8, sse: bool, srt: u8, sf: bool, wnr: bool) -> DataAbort {
        DataAbort {
            isv,
            sas,
            sse,
            srt,
            sf,
            ar: false,
            vncr: false,
            fnv: false,
            ea: false,
            cm: false,
            s1ptw: false,
            wnr,
            dfsc: 0x07,
        }
    }

    #[test]
    fn decode_basic() {
        let a = decode(&da(true, 2, false, 5, false, true), 0x0900_0000).unwrap();
        assert_eq!(
            a,
            MmioAccess {
                ipa: 0x0900_0000,
                size: 4,
                write: true,
                reg: 5,
                sign_extend: false,
                sixty_four: false
            }
        );
        let a = decode(&da(true, 3, false, 31, true, false), 8).unwrap();
        assert_eq!((a.size, a.reg, a.write, a.sixty_four), (8, 31, false, true));
        // SSE on a store is ignored.
        assert!(
            !decode(&da(true, 0, true, 1, false, true), 0)
                .unwrap()
                .sign_extend
        );
    }

    #[test]
    fn decode_refuses() {
        assert!(decode(&da(false, 2, false, 5, false, true), 0).is_none());
        let mut d = da(true, 2, false, 5, false, true);
        d.cm = true;
        assert!(decode(&d, 0).is_none());
        let mut d = da(true, 2, false, 5, false, true);
        d.s1ptw = true;
        assert!(decode(&d, 0).is_none());
        let mut d = da(true, 2, false, 5, false, true);
        d.ea = true;
        assert!(decode(&d, 0).is_none());
        let mut d = da(true, 2, false, 5, false, true);
        d.vncr = true;
        assert!(decode(&d, 0).is_none());
        let mut d = da(true, 2, false, 5, false, true);
        d.dfsc = 0x21; // alignment
        assert!(decode(&d, 0).is_none());
        d.dfsc = 0x10; // external abort
        assert!(decode(&d, 0).is_none());
        d.dfsc = 0x0D; // permission L1
        assert!(decode(&d, 0).is_some());
        d.dfsc = 0x09; // access flag L1
        assert!(decode(&d, 0).is_some());
    }

    #[test]
    fn load_values() {
        // LDRB w0: zero-extend.
        let a = decode(&da(true, 0, false, 0, false, false), 0).unwrap();
        assert_eq!(a.load_value(0xFFFF_FF80), 0x80);
        // LDRSB w0: sign-extend to 32 bits.
        let a = decode(&da(true, 0, true, 0, false, false), 0).unwrap();
        assert_eq!(a.load_value(0x80), 0xFFFF_FF80);
        assert_eq!(a.load_value(0x7F), 0x7F);
        // LDRSB x0: sign-extend to 64 bits.
        let a = decode(&da(true, 0, true, 0, true, false), 0).unwrap();
        assert_eq!(a.load_value(0x80), 0xFFFF_FFFF_FFFF_FF80);
        // LDRSH x0.
        let a = decode(&da(true, 1, true, 0, true, false), 0).unwrap();
        assert_eq!(a.load_value(0x1_8000), 0xFFFF_FFFF_FFFF_8000);
        // LDRSW x0.
        let a = decode(&da(true, 2, true, 0, true, false), 0).unwrap();
        assert_eq!(a.load_value(0xDEAD_8000_0000), 0xFFFF_FFFF_8000_0000);
        // LDR w0 from a device returning garbage in the high half.
        let a = decode(&da(true, 2, false, 0, false, false), 0).unwrap();
        assert_eq!(a.load_value(u64::MAX), 0xFFFF_FFFF);
        // LDR x0.
        let a = decode(&da(true, 3, false, 0, true, false), 0).unwrap();
        assert_eq!(a.load_value(u64::MAX), u64::MAX);
        // Inconsistent syndrome (64-bit access, W register, SSE): no panic.
        let a = decode(&da(true, 3, true, 0, false, false), 0).unwrap();
        assert_eq!(a.load_value(u64::MAX), 0xFFFF_FFFF);
    }

    #[test]
    fn store_values() {
        let a = decode(&da(true, 0, false, 0, false, true), 0).unwrap();
        assert_eq!(a.store_value(0x1234), 0x34);
        let a = decode(&da(true, 1, false, 0, false, true), 0).unwrap();
        assert_eq!(a.store_value(0xABCD_1234), 0x1234);
        let a = decode(&da(true, 2, false, 0, false, true), 0).unwrap();
        assert_eq!(a.store_value(u64::MAX), 0xFFFF_FFFF);
        let a = decode(&da(true, 3, false, 31, true, true), 0).unwrap();
        assert_eq!(a.store_value(0), 0);
        assert_eq!(a.store_value(u64::MAX), u64::MAX);
    }

    #[test]
    fn ipa() {
        // IPA 0x0900_1000 => HPFAR.FIPA = 0x09001 at bits 43:4.
        assert_eq!(fault_ipa(0x09001 << 4, 0xFFFF_0000_1234_5678), 0x0900_1678);
        // NS bit and RES0 bits ignored; top FIPA bit maps to IPA bit 51.
        assert_eq!(fault_ipa((1 << 63) | (1 << 43) | 0xF, 0), 1 << 51);
        assert_eq!(fault_ipa(u64::MAX, u64::MAX), (1 << 52) - 1);
    }
}
