//! Redistributor (`GICR_*`) MMIO emulation. vCPU n owns
//! `[n * 0x20000, (n + 1) * 0x20000)` of the region: the `RD_base` frame,
//! then the `SGI_base` frame at +0x10000. An access acts on the frame
//! owner's state, whoever the caller is.
//!
//! `RD_base`: CTLR RAZ/WI (no LPIs, RWP reads 0), IIDR 0x34C, TYPER (0x8,
//! 64-bit or halves), STATUSR and WAKER RAZ/WI (Linux's wake loop ends at
//! once), PROPBASER/PENDBASER RAZ/WI, PIDR2 0x30; all else RAZ/WI.
//!
//! `SGI_base`: IGROUPR0 RAZ/WI, I[SC]ENABLER0, I[SC]PENDR0, I[SC]ACTIVER0,
//! IPRIORITYR0..7 (0x400..0x41F, byte lanes), ICFGR0 (SGIs, reads edge, WI),
//! ICFGR1 (PPIs), IGRPMODR0 and NSACR RAZ/WI; all else RAZ/WI.

use super::{access_ok, lane, BitOp, Field, Kick, PhysIrq, Vgic, IIDR, PIDR2, REDIST_STRIDE};

const FRAME: u64 = 0x1_0000;

const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_TYPER_HI: u64 = 0x000C;
const GICR_PIDR2: u64 = 0xFFE8;

const ISENABLER0: u64 = 0x0100;
const ICENABLER0: u64 = 0x0180;
const ISPENDR0: u64 = 0x0200;
const ICPENDR0: u64 = 0x0280;
const ISACTIVER0: u64 = 0x0300;
const ICACTIVER0: u64 = 0x0380;
const IPRIORITYR0: u64 = 0x0400;
const IPRIORITYR_END: u64 = 0x0420;
const ICFGR0: u64 = 0x0C00;
const ICFGR1: u64 = 0x0C04;

/// `GICR_TYPER.Last`.
const TYPER_LAST: u64 = 1 << 4;

impl Vgic {
    /// `GICR_TYPER` of `vcpu`'s redistributor: affinity Aff3.Aff2.Aff1.Aff0
    /// in bits 63:32, Processor_Number = vCPU id in 23:8, Last (bit 4) on
    /// the final vCPU; no PLPIS/VLPIS/DirectLPI.
    pub(super) fn gicr_typer(&self, vcpu: usize) -> u64 {
        let Some(c) = self.cpus.get(vcpu) else {
            return 0;
        };
        let a = c.aff;
        let packed = (a & 0xFF_FFFF) | ((a >> 32) & 0xFF) << 24;
        let mut t = packed << 32 | ((vcpu as u64 & 0xFFFF) << 8);
        if vcpu + 1 == self.nr_vcpus {
            t |= TYPER_LAST;
        }
        t
    }

    /// Split a region offset into (owner vCPU, frame offset), if it lies in
    /// an existing vCPU's frames.
    fn redist_locate(&self, offset: u64) -> Option<(usize, u64)> {
        let owner = offset / REDIST_STRIDE;
        (owner < self.nr_vcpus as u64).then_some((owner as usize, offset % REDIST_STRIDE))
    }

    /// Redistributor region MMIO read: `offset` from the start of the region
    /// (see [`Vgic::redist_region_size`]), size 1, 2, 4 or 8. Malformed or
    /// out-of-region accesses read 0. `_vcpu` (the caller) does not matter:
    /// the frame's owner is addressed.
    pub fn redist_read(&mut self, _vcpu: usize, offset: u64, size: u8) -> u64 {
        if !access_ok(offset, size, self.redist_region_size()) {
            return 0;
        }
        let Some((owner, off)) = self.redist_locate(offset) else {
            return 0;
        };
        if size == 8 {
            let lo = u64::from(self.redist_read32(owner, off));
            let hi = u64::from(self.redist_read32(owner, off + 4));
            return lo | hi << 32;
        }
        let (mask, shift) = lane(off, size);
        u64::from((self.redist_read32(owner, off & !3) & mask) >> shift)
    }

    /// Redistributor region MMIO write. Malformed or out-of-region accesses
    /// are ignored.
    pub fn redist_write(
        &mut self,
        _vcpu: usize,
        offset: u64,
        size: u8,
        value: u64,
        phys: &mut dyn PhysIrq,
    ) -> Kick {
        if !access_ok(offset, size, self.redist_region_size()) {
            return Kick::NONE;
        }
        let Some((owner, off)) = self.redist_locate(offset) else {
            return Kick::NONE;
        };
        if size == 8 {
            let k = self.redist_write32(owner, off, value as u32, u32::MAX, phys);
            return k | self.redist_write32(owner, off + 4, (value >> 32) as u32, u32::MAX, phys);
        }
        let (mask, shift) = lane(off, size);
        self.redist_write32(owner, off & !3, (value as u32) << shift, mask, phys)
    }

    fn redist_read32(&self, owner: usize, off: u64) -> u32 {
        if off < FRAME {
            return match off {
                GICR_IIDR => IIDR,
                GICR_TYPER => self.gicr_typer(owner) as u32,
                GICR_TYPER_HI => (self.gicr_typer(owner) >> 32) as u32,
                GICR_PIDR2 => PIDR2,
                _ => 0, // CTLR, STATUSR, WAKER, PROPBASER, PENDBASER, ...
            };
        }
        match off - FRAME {
            ISENABLER0 | ICENABLER0 => self.read_row(owner, 0, Field::Enabled),
            ISPENDR0 | ICPENDR0 => self.read_row(owner, 0, Field::Latch),
            ISACTIVER0 | ICACTIVER0 => self.read_row(owner, 0, Field::Active),
            o @ IPRIORITYR0..IPRIORITYR_END => {
                self.read_priority_word(owner, (o - IPRIORITYR0) as u32)
            }
            ICFGR0 => self.read_icfgr(owner, 0),
            ICFGR1 => self.read_icfgr(owner, 1),
            _ => 0, // IGROUPR0, IGRPMODR0, NSACR, reserved
        }
    }

    fn redist_write32(
        &mut self,
        owner: usize,
        off: u64,
        val: u32,
        mask: u32,
        phys: &mut dyn PhysIrq,
    ) -> Kick {
        if off < FRAME {
            return Kick::NONE; // every RD_base register is RO or RAZ/WI here
        }
        let op = match off - FRAME {
            ISENABLER0 => BitOp::SetEnable,
            ICENABLER0 => BitOp::ClearEnable,
            ISPENDR0 => BitOp::SetPending,
            ICPENDR0 => BitOp::ClearPending,
            ISACTIVER0 => BitOp::SetActive,
            ICACTIVER0 => BitOp::ClearActive,
            o @ IPRIORITYR0..IPRIORITYR_END => {
                self.write_priority_word(owner, (o - IPRIORITYR0) as u32, val, mask);
                return Kick::NONE;
            }
            ICFGR1 => return self.write_icfgr(owner, 1, val, mask, phys),
            _ => return Kick::NONE, // ICFGR0 (SGIs: RO), IGROUPR0, IGRPMODR0, NSACR
        };
        self.write_row(owner, 0, val & mask, op, phys)
    }
}
