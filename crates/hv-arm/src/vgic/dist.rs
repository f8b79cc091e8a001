//! Distributor (`GICD_*`) MMIO emulation, 64 KiB frame, affinity routing
//! always enabled (`GICD_CTLR.ARE_NS` = 1), so the SGI/PPI rows of the
//! per-INTID registers are RAZ/WI (the redistributors own them) and
//! `ITARGETSR`, `SGIR`, `CPENDSGIR`, `SPENDSGIR` are RAZ/WI.
//!
//! Register map (IHI 0069, "The GIC Distributor register map"):
//!
//! | offset          | register                                      |
//! |-----------------|-----------------------------------------------|
//! | 0x0000          | CTLR: ARE_NS (4) = 1, EnableGrp1A (1) RW, RWP (31) = 0 |
//! | 0x0004          | TYPER                                         |
//! | 0x0008          | IIDR = 0x34C                                  |
//! | 0x000C          | TYPER2 = 0                                    |
//! | 0x0080-0x00FC   | IGROUPR: RAZ/WI (as Xen)                      |
//! | 0x0100/0x0180   | ISENABLER / ICENABLER                         |
//! | 0x0200/0x0280   | ISPENDR / ICPENDR                             |
//! | 0x0300/0x0380   | ISACTIVER / ICACTIVER                         |
//! | 0x0400-0x07FB   | IPRIORITYR (byte lanes)                       |
//! | 0x0C00-0x0CFC   | ICFGR                                         |
//! | 0x0D00, 0x0E00  | IGRPMODR, NSACR: RAZ/WI                       |
//! | 0x6100-0x7FDF   | IROUTER<32..1019> (64-bit, or 32-bit halves)  |
//! | 0xFFE8          | PIDR2 = 0x30                                  |
//!
//! Everything else (STATUSR, SETSPI/CLRSPI, other ID registers, reserved
//! and IMPLEMENTATION DEFINED space) is RAZ/WI.

use super::{access_ok, lane, BitOp, Field, Kick, PhysIrq, Vgic, DIST_SIZE, IIDR, PIDR2};

const CTLR: u64 = 0x0000;
const TYPER: u64 = 0x0004;
const IIDR_OFF: u64 = 0x0008;
const ISENABLER: u64 = 0x0100;
const ICENABLER: u64 = 0x0180;
const ISPENDR: u64 = 0x0200;
const ICPENDR: u64 = 0x0280;
const ISACTIVER: u64 = 0x0300;
const ICACTIVER: u64 = 0x0380;
const IPRIORITYR: u64 = 0x0400;
const IPRIORITYR_END: u64 = 0x07FC;
const ICFGR: u64 = 0x0C00;
const ICFGR_END: u64 = 0x0D00;
const IROUTER: u64 = 0x6000;
const IROUTER_END: u64 = 0x6000 + 8 * 1020;
const PIDR2_OFF: u64 = 0xFFE8;

const CTLR_ENABLE_GRP1A: u32 = 1 << 1;
const CTLR_ARE_NS: u32 = 1 << 4;

impl Vgic {
    /// `GICD_TYPER`: ITLinesNumber = ceil(nr_spis / 32), CPUNumber =
    /// min(nr_vcpus, 8) - 1, IDbits = 9 (10 INTID bits); no LPIs, MBIS,
    /// ESPI, A3V.
    pub(super) fn gicd_typer(&self) -> u32 {
        let lines = self.nr_spis.div_ceil(32) & 0x1F;
        let cpus = (self.nr_vcpus.min(8) as u32 - 1) << 5;
        lines | cpus | (9 << 19)
    }

    /// Distributor MMIO read (64 KiB frame): `offset` within the frame, size
    /// 1, 2, 4 or 8. Malformed accesses read 0.
    pub fn dist_read(&mut self, vcpu: usize, offset: u64, size: u8) -> u64 {
        if !access_ok(offset, size, DIST_SIZE) {
            return 0;
        }
        if (IROUTER..IROUTER_END).contains(&offset) {
            let intid = ((offset - IROUTER) / 8) as u32;
            let shift = (offset & 7) * 8;
            let v = if intid >= 32 {
                self.read_irouter(intid)
            } else {
                0
            };
            return (v >> shift) & size_mask(size);
        }
        if size == 8 {
            let lo = u64::from(self.dist_read32(vcpu, offset));
            let hi = u64::from(self.dist_read32(vcpu, offset + 4));
            return lo | hi << 32;
        }
        let (mask, shift) = lane(offset, size);
        u64::from((self.dist_read32(vcpu, offset & !3) & mask) >> shift)
    }

    /// Distributor MMIO write. Malformed accesses are ignored.
    pub fn dist_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: u8,
        value: u64,
        phys: &mut dyn PhysIrq,
    ) -> Kick {
        if !access_ok(offset, size, DIST_SIZE) {
            return Kick::NONE;
        }
        if (IROUTER..IROUTER_END).contains(&offset) {
            let intid = ((offset - IROUTER) / 8) as u32;
            if intid < 32 {
                return Kick::NONE;
            }
            let shift = (offset & 7) * 8;
            let mask = size_mask(size) << shift;
            let old = self.read_irouter(intid);
            let new = (old & !mask) | ((value << shift) & mask);
            return self.write_irouter(intid, new, phys);
        }
        if size == 8 {
            let k = self.dist_write32(vcpu, offset, value as u32, u32::MAX, phys);
            return k | self.dist_write32(vcpu, offset + 4, (value >> 32) as u32, u32::MAX, phys);
        }
        let (mask, shift) = lane(offset, size);
        self.dist_write32(vcpu, offset & !3, (value as u32) << shift, mask, phys)
    }

    /// One aligned 32-bit distributor register.
    fn dist_read32(&self, vcpu: usize, off: u64) -> u32 {
        match off {
            CTLR => CTLR_ARE_NS | if self.grp1 { CTLR_ENABLE_GRP1A } else { 0 },
            TYPER => self.gicd_typer(),
            IIDR_OFF => IIDR,
            ISENABLER..=0x01FC => self.dist_row(vcpu, off, ISENABLER, Field::Enabled),
            ISPENDR..=0x02FC => self.dist_row(vcpu, off, ISPENDR, Field::Latch),
            ISACTIVER..=0x03FC => self.dist_row(vcpu, off, ISACTIVER, Field::Active),
            IPRIORITYR..IPRIORITYR_END => {
                let intid = (off - IPRIORITYR) as u32;
                if intid < 32 {
                    0
                } else {
                    self.read_priority_word(vcpu, intid)
                }
            }
            ICFGR..ICFGR_END => {
                let n = ((off - ICFGR) / 4) as u32;
                if n < 2 {
                    0
                } else {
                    self.read_icfgr(vcpu, n)
                }
            }
            PIDR2_OFF => PIDR2,
            _ => 0,
        }
    }

    /// Set/clear register pairs share the read value (the set view).
    fn dist_row(&self, vcpu: usize, off: u64, base: u64, f: Field) -> u32 {
        let row = (((off - base) % 0x80) / 4) as u32;
        if row == 0 {
            0 // SGIs/PPIs live in the redistributors (ARE = 1)
        } else {
            self.read_row(vcpu, row, f)
        }
    }

    fn dist_write32(
        &mut self,
        vcpu: usize,
        off: u64,
        val: u32,
        mask: u32,
        phys: &mut dyn PhysIrq,
    ) -> Kick {
        let bits = val & mask;
        let row = |base: u64| ((off - base) / 4) as u32;
        let op = match off {
            CTLR => {
                return if mask & CTLR_ENABLE_GRP1A != 0 {
                    self.set_grp1(val & CTLR_ENABLE_GRP1A != 0)
                } else {
                    Kick::NONE
                };
            }
            ISENABLER..=0x017C => (row(ISENABLER), BitOp::SetEnable),
            ICENABLER..=0x01FC => (row(ICENABLER), BitOp::ClearEnable),
            ISPENDR..=0x027C => (row(ISPENDR), BitOp::SetPending),
            ICPENDR..=0x02FC => (row(ICPENDR), BitOp::ClearPending),
            ISACTIVER..=0x037C => (row(ISACTIVER), BitOp::SetActive),
            ICACTIVER..=0x03FC => (row(ICACTIVER), BitOp::ClearActive),
            IPRIORITYR..IPRIORITYR_END => {
                let intid = (off - IPRIORITYR) as u32;
                if intid >= 32 {
                    self.write_priority_word(vcpu, intid, val, mask);
                }
                return Kick::NONE;
            }
            ICFGR..ICFGR_END => {
                let n = ((off - ICFGR) / 4) as u32;
                return if n < 2 {
                    Kick::NONE
                } else {
                    self.write_icfgr(vcpu, n, val, mask, phys)
                };
            }
            _ => return Kick::NONE,
        };
        let (row, op) = op;
        if row == 0 {
            return Kick::NONE;
        }
        self.write_row(vcpu, row, bits, op, phys)
    }
}

/// All-ones in the low `size` bytes.
pub(super) fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}
