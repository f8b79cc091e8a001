//! Decoding of `ESR_EL2`, the syndrome of a synchronous exception taken to
//! EL2 (Arm ARM D17.2.37 "ESR_EL2").
//!
//! Layout: `EC` bits 31:26, `IL` bit 25, `ISS` bits 24:0. Every field is taken
//! from hardware state the guest provoked, so every bit pattern decodes to
//! something: unknown classes become [`Exit::Other`].

/// Exception class values (`ESR_EL2.EC`) this hypervisor cares about.
pub mod ec {
    /// Unknown reason (e.g. an UNDEFINED instruction).
    pub const UNKNOWN: u8 = 0x00;
    /// Trapped WFI/WFE (HCR_EL2.TWI/TWE).
    pub const WFX: u8 = 0x01;
    /// Trapped MCR/MRC to CP15 (AArch32).
    pub const CP15_32: u8 = 0x03;
    /// Trapped MCRR/MRRC to CP15 (AArch32).
    pub const CP15_64: u8 = 0x04;
    /// Trapped access to SIMD/FP (CPTR_EL2.TFP).
    pub const FP_SIMD: u8 = 0x07;
    /// Illegal execution state.
    pub const ILLEGAL_STATE: u8 = 0x0E;
    /// SVC from AArch32.
    pub const SVC32: u8 = 0x11;
    /// HVC from AArch32.
    pub const HVC32: u8 = 0x12;
    /// SMC from AArch32.
    pub const SMC32: u8 = 0x13;
    /// SVC from AArch64.
    pub const SVC64: u8 = 0x15;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64 (trapped by HCR_EL2.TSC).
    pub const SMC64: u8 = 0x17;
    /// Trapped MSR/MRS/system instruction (AArch64).
    pub const SYS64: u8 = 0x18;
    /// Trapped SVE access.
    pub const SVE: u8 = 0x19;
    /// Instruction abort from a lower exception level.
    pub const IABT_LOWER: u8 = 0x20;
    /// Instruction abort taken without a change of exception level.
    pub const IABT_CUR: u8 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u8 = 0x22;
    /// Data abort from a lower exception level.
    pub const DABT_LOWER: u8 = 0x24;
    /// Data abort taken without a change of exception level.
    pub const DABT_CUR: u8 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u8 = 0x26;
    /// Trapped floating-point exception (AArch64).
    pub const FP_EXC64: u8 = 0x2C;
    /// SError interrupt.
    pub const SERROR: u8 = 0x2F;
    /// Breakpoint from a lower exception level.
    pub const BREAKPT_LOWER: u8 = 0x30;
    /// Software step from a lower exception level.
    pub const SOFTSTP_LOWER: u8 = 0x32;
    /// Watchpoint from a lower exception level.
    pub const WATCHPT_LOWER: u8 = 0x34;
    /// BRK instruction (AArch64).
    pub const BRK64: u8 = 0x3C;
}

/// The `EC` field of an `ESR_EL2` value.
#[inline]
pub const fn ec(esr: u64) -> u8 {
    ((esr >> 26) & 0x3F) as u8
}

/// The `IL` bit: `true` for a 32-bit trapped instruction (always the case for
/// AArch64 state), `false` for a 16-bit T32 instruction. The PC is advanced by
/// 4 or 2 accordingly when an instruction is emulated.
#[inline]
pub const fn il(esr: u64) -> bool {
    esr & (1 << 25) != 0
}

/// The `ISS` field (bits 24:0).
#[inline]
pub const fn iss(esr: u64) -> u32 {
    (esr & 0x01FF_FFFF) as u32
}

/// Number of bytes to advance ELR_EL2 by to skip the trapped instruction.
#[inline]
pub const fn instr_len(esr: u64) -> u64 {
    if il(esr) {
        4
    } else {
        2
    }
}

/// A trapped `MRS`/`MSR`/system instruction (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// Op0 (ISS 21:20).
    pub op0: u8,
    /// Op1 (ISS 16:14).
    pub op1: u8,
    /// CRn (ISS 13:10).
    pub crn: u8,
    /// CRm (ISS 4:1).
    pub crm: u8,
    /// Op2 (ISS 19:17).
    pub op2: u8,
    /// Transfer register (ISS 9:5); 31 means XZR.
    pub rt: u8,
    /// `true` for a read (`MRS`, Direction = 1), `false` for a write (`MSR`).
    pub read: bool,
}

impl SysRegAccess {
    /// Key identifying a system register independent of Rt and direction.
    /// Layout follows the `MRS` instruction encoding (op0 bits 20:19, op1
    /// 18:16, CRn 15:12, CRm 11:8, op2 7:5), as Linux's `sys_reg()` does.
    /// Out-of-range arguments are masked to their field width.
    #[inline]
    pub const fn encoding(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> u32 {
        ((op0 as u32 & 0x3) << 19)
            | ((op1 as u32 & 0x7) << 16)
            | ((crn as u32 & 0xF) << 12)
            | ((crm as u32 & 0xF) << 8)
            | ((op2 as u32 & 0x7) << 5)
    }

    /// This access's register key, comparable with the `*_EL*` constants of
    /// this module.
    #[inline]
    pub const fn key(&self) -> u32 {
        Self::encoding(self.op0, self.op1, self.crn, self.crm, self.op2)
    }

    /// Decode the ISS of an EC 0x18 syndrome.
    #[inline]
    pub const fn from_iss(iss: u32) -> Self {
        SysRegAccess {
            op0: ((iss >> 20) & 0x3) as u8,
            op2: ((iss >> 17) & 0x7) as u8,
            op1: ((iss >> 14) & 0x7) as u8,
            crn: ((iss >> 10) & 0xF) as u8,
            rt: ((iss >> 5) & 0x1F) as u8,
            crm: ((iss >> 1) & 0xF) as u8,
            read: iss & 1 != 0,
        }
    }
}

/// `ICC_SGI1R_EL1` (3,0,12,11,5): generate a Group 1 SGI.
pub const ICC_SGI1R_EL1: u32 = SysRegAccess::encoding(3, 0, 12, 11, 5);
/// `ICC_ASGI1R_EL1` (3,1,12,11,6): generate an alias Group 1 SGI.
pub const ICC_ASGI1R_EL1: u32 = SysRegAccess::encoding(3, 1, 12, 11, 6);
/// `ICC_SGI0R_EL1` (3,2,12,11,7): generate a Group 0 SGI.
pub const ICC_SGI0R_EL1: u32 = SysRegAccess::encoding(3, 2, 12, 11, 7);
/// `CNTP_TVAL_EL0` (3,3,14,2,0).
pub const CNTP_TVAL_EL0: u32 = SysRegAccess::encoding(3, 3, 14, 2, 0);
/// `CNTP_CTL_EL0` (3,3,14,2,1).
pub const CNTP_CTL_EL0: u32 = SysRegAccess::encoding(3, 3, 14, 2, 1);
/// `CNTP_CVAL_EL0` (3,3,14,2,2).
pub const CNTP_CVAL_EL0: u32 = SysRegAccess::encoding(3, 3, 14, 2, 2);
/// `ICC_SRE_EL1` (3,0,12,12,5).
pub const ICC_SRE_EL1: u32 = SysRegAccess::encoding(3, 0, 12, 12, 5);
/// `ICC_DIR_EL1` (3,0,12,11,1).
pub const ICC_DIR_EL1: u32 = SysRegAccess::encoding(3, 0, 12, 11, 1);

/// A data abort from a lower exception level (EC 0x24).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// Instruction syndrome valid (bit 24): SAS/SSE/SRT/SF/AR hold data.
    pub isv: bool,
    /// Syndrome access size (bits 23:22): size = 1 << sas bytes.
    pub sas: u8,
    /// Syndrome sign extend (bit 21).
    pub sse: bool,
    /// Syndrome register transfer (bits 20:16): Rt, 31 = XZR.
    pub srt: u8,
    /// Sixty-four bit register (bit 15): Rt is an X register.
    pub sf: bool,
    /// Acquire/release semantics (bit 14).
    pub ar: bool,
    /// Fault came from a VNCR_EL2-relative access (bit 13).
    pub vncr: bool,
    /// FAR not valid (bit 10).
    pub fnv: bool,
    /// External abort type (bit 9).
    pub ea: bool,
    /// Cache maintenance / address translation instruction (bit 8).
    pub cm: bool,
    /// Stage-2 fault on a stage-1 translation table walk (bit 7).
    pub s1ptw: bool,
    /// Write not read (bit 6).
    pub wnr: bool,
    /// Data fault status code (bits 5:0).
    pub dfsc: u8,
}

/// Kind of fault in a DFSC/IFSC status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Address size fault at the given level (0..=3).
    AddressSize(u8),
    /// Translation fault at the given level (0..=3).
    Translation(u8),
    /// Access flag fault at the given level (0..=3).
    AccessFlag(u8),
    /// Permission fault at the given level (0..=3).
    Permission(u8),
    /// Synchronous external abort (not on a table walk).
    SyncExternal,
    /// Alignment fault.
    Alignment,
    /// TLB conflict abort.
    TlbConflict,
    /// Anything else (external aborts on walks, parity/ECC, ...).
    Other(u8),
}

impl FaultKind {
    /// Classify a 6-bit DFSC/IFSC.
    pub const fn from_fsc(fsc: u8) -> Self {
        let fsc = fsc & 0x3F;
        let level = fsc & 0x3;
        match fsc >> 2 {
            0b0000 => FaultKind::AddressSize(level),
            0b0001 => FaultKind::Translation(level),
            0b0010 => FaultKind::AccessFlag(level),
            0b0011 => FaultKind::Permission(level),
            _ => match fsc {
                0b01_0000 => FaultKind::SyncExternal,
                0b10_0001 => FaultKind::Alignment,
                0b11_0000 => FaultKind::TlbConflict,
                _ => FaultKind::Other(fsc),
            },
        }
    }
}

impl DataAbort {
    /// Decode the ISS of an EC 0x24/0x25 syndrome.
    pub const fn from_iss(iss: u32) -> Self {
        DataAbort {
            isv: iss & (1 << 24) != 0,
            sas: ((iss >> 22) & 0x3) as u8,
            sse: iss & (1 << 21) != 0,
            srt: ((iss >> 16) & 0x1F) as u8,
            sf: iss & (1 << 15) != 0,
            ar: iss & (1 << 14) != 0,
            vncr: iss & (1 << 13) != 0,
            fnv: iss & (1 << 10) != 0,
            ea: iss & (1 << 9) != 0,
            cm: iss & (1 << 8) != 0,
            s1ptw: iss & (1 << 7) != 0,
            wnr: iss & (1 << 6) != 0,
            dfsc: (iss & 0x3F) as u8,
        }
    }

    /// Classification of [`DataAbort::dfsc`].
    pub const fn fault(&self) -> FaultKind {
        FaultKind::from_fsc(self.dfsc)
    }
}

/// Decoded reason for a synchronous exit to EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// WFI (`wfe == false`) or WFE; WFIT/WFET are reported with the same flag.
    Wfx {
        /// `true` for WFE/WFET.
        wfe: bool,
    },
    /// `HVC #imm` from AArch64. ELR_EL2 already points after the instruction.
    Hvc64 {
        /// The immediate.
        imm: u16,
    },
    /// `SMC #imm` from AArch64, trapped by HCR_EL2.TSC. ELR_EL2 points *at*
    /// the instruction: advance it by [`instr_len`] when emulated.
    Smc64 {
        /// The immediate.
        imm: u16,
    },
    /// Trapped system register access.
    SysReg(SysRegAccess),
    /// Data abort from EL1/EL0 (stage-2 fault, e.g. MMIO).
    DataAbortLower(DataAbort),
    /// Instruction abort from EL1/EL0.
    InstrAbortLower {
        /// Instruction fault status code (ISS 5:0).
        ifsc: u8,
        /// Stage-2 fault during a stage-1 table walk.
        s1ptw: bool,
    },
    /// Trapped SIMD/FP access.
    FpSimd,
    /// Anything else.
    Other {
        /// Exception class.
        ec: u8,
        /// Instruction-specific syndrome.
        iss: u32,
    },
}

impl Exit {
    /// Decode a raw `ESR_EL2` value. Total: every input yields a variant.
    pub const fn decode(esr: u64) -> Exit {
        let iss = iss(esr);
        match ec(esr) {
            ec::WFX => Exit::Wfx { wfe: iss & 1 != 0 },
            ec::HVC64 => Exit::Hvc64 { imm: iss as u16 },
            ec::SMC64 => Exit::Smc64 { imm: iss as u16 },
            ec::SYS64 => Exit::SysReg(SysRegAccess::from_iss(iss)),
            ec::DABT_LOWER => Exit::DataAbortLower(DataAbort::from_iss(iss)),
            ec::IABT_LOWER => Exit::InstrAbortLower {
                ifsc: (iss & 0x3F) as u8,
                s1ptw: iss & (1 << 7) != 0,
            },
            ec::FP_SIMD => Exit::FpSimd,
            other => Exit::Other { ec: other, iss },
        }
    }
}

/// Decode a raw `ESR_EL2` value; same as [`Exit::decode`].
#[inline]
pub const fn decode(esr: u64) -> Exit {
    Exit::decode(esr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(ec: u8, iss: u32) -> u64 {
        ((ec as u64) << 26) | (1 << 25) | (iss as u64 & 0x1FF_FFFF)
    }

    #[test]
    fn helpers() {
        let e = esr(0x24, 0x123);
        assert_eq!(ec(e), 0x24);
        assert!(il(e));
        assert_eq!(instr_len(e), 4);
        assert_eq!(instr_len(e & !(1 << 25)), 2);
        assert_eq!(iss(e), 0x123);
        // Bits above 31 (ISS2) are ignored.
        assert_eq!(ec(e | (0x1F << 32)), 0x24);
    }

    #[test]
    fn wfx_hvc_smc() {
        assert_eq!(decode(esr(0x01, 0)), Exit::Wfx { wfe: false });
        assert_eq!(Exit::decode(esr(0x01, 1)), Exit::Wfx { wfe: true });
        assert_eq!(Exit::decode(esr(0x01, 3)), Exit::Wfx { wfe: true });
        assert_eq!(Exit::decode(esr(0x16, 0xEA1)), Exit::Hvc64 { imm: 0xEA1 });
        assert_eq!(Exit::decode(esr(0x17, 0)), Exit::Smc64 { imm: 0 });
        assert_eq!(Exit::decode(esr(0x07, 0x1E00000)), Exit::FpSimd);
        assert_eq!(
            Exit::decode(esr(0x3C, 0x42)),
            Exit::Other {
                ec: 0x3C,
                iss: 0x42
            }
        );
    }

    fn sysreg_iss(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32, rt: u32, read: bool) -> u32 {
        (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | read as u32
    }

    #[test]
    fn sysreg() {
        let e = esr(0x18, sysreg_iss(3, 0, 12, 11, 5, 7, false));
        let Exit::SysReg(a) = Exit::decode(e) else {
            panic!()
        };
        assert_eq!(a.key(), ICC_SGI1R_EL1);
        assert_eq!(a.rt, 7);
        assert!(!a.read);
        let e = esr(0x18, sysreg_iss(3, 3, 14, 2, 1, 31, true));
        let Exit::SysReg(a) = Exit::decode(e) else {
            panic!()
        };
        assert_eq!(a.key(), CNTP_CTL_EL0);
        assert_eq!(a.rt, 31);
        assert!(a.read);
        let all = [
            ICC_SGI1R_EL1,
            ICC_ASGI1R_EL1,
            ICC_SGI0R_EL1,
            CNTP_TVAL_EL0,
            CNTP_CTL_EL0,
            CNTP_CVAL_EL0,
            ICC_SRE_EL1,
            ICC_DIR_EL1,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Same as the MRS encoding Linux uses: sys_reg(3,3,14,2,1) = 0x1be221.
        assert_eq!(CNTP_CTL_EL0 >> 5, 0x1be221 >> 5);
    }

    #[test]
    fn data_abort() {
        // ISV, SAS=2 (word), SSE, SRT=3, SF, WnR, DFSC=translation L3.
        let iss = (1 << 24) | (2 << 22) | (1 << 21) | (3 << 16) | (1 << 15) | (1 << 6) | 0x07;
        let Exit::DataAbortLower(d) = Exit::decode(esr(0x24, iss)) else {
            panic!()
        };
        assert!(d.isv && d.sse && d.sf && d.wnr);
        assert!(!d.ar && !d.cm && !d.s1ptw && !d.ea && !d.fnv && !d.vncr);
        assert_eq!(d.sas, 2);
        assert_eq!(d.srt, 3);
        assert_eq!(d.fault(), FaultKind::Translation(3));
        let all = Exit::decode(esr(0x24, 0x1FF_FFFF));
        let Exit::DataAbortLower(d) = all else {
            panic!()
        };
        assert!(d.isv && d.ar && d.vncr && d.fnv && d.ea && d.cm && d.s1ptw && d.wnr);
        assert_eq!(d.srt, 31);
        assert_eq!(d.dfsc, 0x3F);
    }

    #[test]
    fn instr_abort() {
        assert_eq!(
            Exit::decode(esr(0x20, (1 << 7) | 0x0E)),
            Exit::InstrAbortLower {
                ifsc: 0x0E,
                s1ptw: true
            }
        );
    }

    #[test]
    fn fault_kinds() {
        assert_eq!(FaultKind::from_fsc(0x05), FaultKind::Translation(1));
        assert_eq!(FaultKind::from_fsc(0x0A), FaultKind::AccessFlag(2));
        assert_eq!(FaultKind::from_fsc(0x0F), FaultKind::Permission(3));
        assert_eq!(FaultKind::from_fsc(0x00), FaultKind::AddressSize(0));
        assert_eq!(FaultKind::from_fsc(0x10), FaultKind::SyncExternal);
        assert_eq!(FaultKind::from_fsc(0x21), FaultKind::Alignment);
        assert_eq!(FaultKind::from_fsc(0x30), FaultKind::TlbConflict);
        assert_eq!(FaultKind::from_fsc(0x14), FaultKind::Other(0x14));
    }

    #[test]
    fn total_decode() {
        // Every EC with assorted ISS values decodes without panicking.
        for ec in 0..64u64 {
            for iss in [0u64, 1, 0x1FF_FFFF, 0x155_5555, 0xAA_AAAA] {
                let _ = Exit::decode((ec << 26) | iss | (u64::MAX << 32));
            }
        }
    }
}
