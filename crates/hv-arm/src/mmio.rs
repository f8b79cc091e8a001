//! Turning a stage-2 data abort into an emulatable MMIO access.
//!
//! The hardware only describes the access (size, register, sign extension) when
//! `ISV` is set, i.e. for single-register loads/stores without writeback.
//! Of the rest, only what Xen 4.17 decodes from the instruction itself
//! (`LDR`/`STR` immediate post-indexed: [`decode_post_indexed`]) is
//! emulated; everything else (LDP/STP, other writeback forms, cache
//! maintenance on an MMIO address, faults on the guest's own page-table
//! walk) is refused here; the caller decides what to inject (Xen injects a
//! data abort).

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

/// A load/store whose syndrome carried no instruction information, decoded
/// from the instruction itself as Xen 4.17 does (`decode_arm64`): only
/// `LDR`/`STR` (immediate, post-indexed) of an integer register, any size,
/// zero-extending. The access goes to the faulting address; afterwards the
/// base register `rn` (31: the stack pointer of the guest's mode) grows by
/// `imm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostIndexed {
    pub access: MmioAccess,
    /// Base register; 31 is SP (not XZR) here.
    pub rn: u8,
    /// Signed offset added to the base after the access (imm9).
    pub imm: i64,
}

/// Whether a data abort without a valid syndrome may be decoded from the
/// instruction (Xen's `try_decode_instruction`): a stage-2 translation
/// fault of an ordinary access — not on the guest's own page-table walk
/// (`S1PTW`), not cache maintenance (`CM`), no external abort, and a valid
/// FAR (the page offset of the IPA comes from it).
pub fn needs_instruction(da: &DataAbort) -> bool {
    !da.isv
        && !da.cm
        && !da.s1ptw
        && !da.vncr
        && !da.ea
        && !da.fnv
        && matches!(da.fault(), FaultKind::Translation(_))
}

/// Bits of `LDR/STR (immediate, post-indexed)` that are fixed, and their value.
const POST_INDEX_FIXED_MASK: u32 = 0x3B20_0C00;
const POST_INDEX_FIXED_VALUE: u32 = 0x3800_0400;

/// Decode the A64 instruction `instr` that faulted at `ipa` (see
/// [`needs_instruction`]). `None` for anything but an integer `LDR`/`STR`
/// (immediate, post-indexed) — signed loads, SIMD/FP registers, and
/// `Rn == Rt` (other than 31, which is CONSTRAINED UNPREDICTABLE) included:
/// the caller then injects a data abort, as Xen does.
pub fn decode_post_indexed(instr: u32, ipa: u64) -> Option<PostIndexed> {
    let rt = (instr & 0x1f) as u8;
    let rn = ((instr >> 5) & 0x1f) as u8;
    if rn == rt && rn != 31 {
        return None;
    }
    if instr & POST_INDEX_FIXED_MASK != POST_INDEX_FIXED_VALUE {
        return None;
    }
    if (instr >> 26) & 1 != 0 {
        return None; // V: SIMD/FP register
    }
    let write = match (instr >> 22) & 3 {
        0 => true,
        1 => false,
        _ => return None, // LDRS*: not decoded by Xen either
    };
    let size = (instr >> 30) as u8 & 3;
    // imm9 (bits 20:12), sign-extended.
    let imm = (((instr >> 12) & 0x1ff) as i64) << 55 >> 55;
    Some(PostIndexed {
        access: MmioAccess {
            ipa,
            size: 1 << size,
            write,
            reg: rt,
            sign_extend: false,
            sixty_four: size == 3,
        },
        rn,
        imm,
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

    #[test]
    fn post_indexed_loads_and_stores() {
        // ldr w0, [x1], #4
        let d = decode_post_indexed(0xb840_4420, 0x800_0004).unwrap();
        assert_eq!((d.access.size, d.access.write, d.access.reg, d.access.sixty_four), (4, false, 0, false));
        assert_eq!((d.rn, d.imm, d.access.ipa), (1, 4, 0x800_0004));
        assert!(!d.access.sign_extend);
        // ldr x2, [x3], #-8
        let d = decode_post_indexed(0xf85f_8462, 0).unwrap();
        assert_eq!((d.access.size, d.access.write, d.access.reg, d.access.sixty_four), (8, false, 2, true));
        assert_eq!((d.rn, d.imm), (3, -8));
        // strb w5, [sp], #1 (Rn 31 is SP)
        let d = decode_post_indexed(0x3800_17e5, 0).unwrap();
        assert_eq!((d.access.size, d.access.write, d.access.reg), (1, true, 5));
        assert_eq!((d.rn, d.imm), (31, 1));
        // strh wzr, [x0], #255
        let d = decode_post_indexed(0x780f_f41f, 0).unwrap();
        assert_eq!((d.access.size, d.access.write, d.access.reg, d.rn, d.imm), (2, true, 31, 0, 255));
        // ldr x1, [x1], #8: Rn == Rt, refused.
        assert_eq!(decode_post_indexed(0xf840_8421, 0), None);
        // ldr xzr.. with Rn = Rt = 31 is allowed by the check (Xen too).
        assert!(decode_post_indexed(0xf840_87ff, 0).is_some());
        // Pre-indexed (bits 11:10 = 11), unsigned offset, register offset: no.
        assert_eq!(decode_post_indexed(0xb840_4c20, 0), None); // ldr w0, [x1, #4]!
        assert_eq!(decode_post_indexed(0xb940_0420, 0), None); // ldr w0, [x1, #4]
        assert_eq!(decode_post_indexed(0xb861_6820, 0), None); // ldr w0, [x1, x1]
        // ldrsw x0, [x1], #4 (opc 2), ldr s0, [x1], #4 (V), ldp: no.
        assert_eq!(decode_post_indexed(0xb880_4420, 0), None);
        assert_eq!(decode_post_indexed(0xbc40_4420, 0), None);
        assert_eq!(decode_post_indexed(0xa9c0_0420, 0), None);
        // Every word either decodes consistently or is refused (no panic).
        let mut x = 0x1234_5678u32;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            for w in [x, (x & !POST_INDEX_FIXED_MASK) | POST_INDEX_FIXED_VALUE] {
                if let Some(d) = decode_post_indexed(w, 0) {
                    assert!(matches!(d.access.size, 1 | 2 | 4 | 8));
                    assert!((-256..=255).contains(&d.imm));
                    assert!(d.rn < 32 && d.access.reg < 32);
                }
            }
        }
    }

    #[test]
    fn only_translation_faults_without_syndrome_are_decoded() {
        let mut a = da(false, 0, false, 0, false, false);
        a.dfsc = 0b000101; // translation fault, level 1
        assert!(needs_instruction(&a));
        a.isv = true;
        assert!(!needs_instruction(&a));
        a.isv = false;
        for f in [|a: &mut DataAbort| a.s1ptw = true, |a: &mut DataAbort| a.cm = true, |a: &mut DataAbort| a.fnv = true, |a: &mut DataAbort| a.ea = true] {
            let mut b = a;
            f(&mut b);
            assert!(!needs_instruction(&b));
        }
        a.dfsc = 0b001101; // permission fault
        assert!(!needs_instruction(&a));
    }

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
