//! Virtual GICv3: distributor, redistributors and list-register management
//! for one domain, as Xen 4.17 emulates it (`xen/arch/arm/vgic-v3.c`; our
//! `docs/xen-arm-abi.md` §5.3; GICv3 architecture specification IHI 0069).
//!
//! The EL2 binary keeps one [`Vgic`] per domain behind a lock and calls it
//! from trap handlers on any physical CPU:
//!
//! * MMIO traps on the distributor / redistributor frames go to
//!   [`Vgic::dist_read`], [`Vgic::dist_write`], [`Vgic::redist_read`],
//!   [`Vgic::redist_write`]; trapped `ICC_SGI1R_EL1` writes to
//!   [`Vgic::send_sgi`]; devices and physical interrupts use
//!   [`Vgic::inject`] and [`Vgic::set_level`].
//! * On every exit the binary calls [`Vgic::sync`] with the list registers it
//!   read back, and before every entry [`Vgic::flush`] to get the values to
//!   load. Between `sync` and `flush` the model alone holds the state.
//! * Every mutator returns a [`Kick`]: the vCPUs that must exit (IPI) to
//!   reload their list registers.
//!
//! # Model
//!
//! Per interrupt: enable, edge-latched pending ("latch"), input line level
//! ("level", for level-sensitive lines of emulated devices), active, and
//! edge/level configuration, all kept as bitmaps (a `u32` per vCPU for
//! SGIs/PPIs, `u64` words for SPIs) plus priority bytes. Effective pending is
//! `latch | (level & !edge)`. SGIs are always edge; the source vCPU of an SGI
//! is not tracked.
//!
//! When `flush` lists an interrupt as pending, ownership of its latch moves
//! into the list register (the model latch is cleared and the slot remembers
//! it); `sync` gives it back if the list register is still pending. New
//! pending state that arrives meanwhile lands in the (now clear) latch and is
//! merged, so the next `flush` lists it pending+active. An SPI is owned by at
//! most one vCPU at a time (the one listing it, or holding it active), so a
//! re-routed SPI is never in two vCPUs' list registers; the old owner keeps an
//! active SPI until the guest deactivates it, then `sync` kicks the new target.
//!
//! # Hostile input
//!
//! No offset, size, value, vCPU index or INTID panics or loops unboundedly:
//! invalid accesses (size not 1/2/4/8, misaligned, outside the frame) are
//! RAZ/WI (Xen would inject a data abort; this API has no channel for that),
//! reserved and unimplemented registers are RAZ/WI, per-INTID registers beyond
//! `32 + nr_spis` are RAZ/WI. Sub-word accesses to 32-bit registers act on the
//! addressed byte lanes; 64-bit accesses to 32-bit registers act on the pair.
//!
//! # Hot path
//!
//! `flush` with nothing pending or active costs a few word operations (a
//! private-interrupt word and a 16-bit summary of SPI words that hold a
//! pending-and-enabled or active interrupt); `sync` with no list register in
//! use returns at once. Neither allocates.

pub mod lr;

mod dist;
mod listregs;
mod redist;
#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;

/// Most vCPUs a domain may have (a [`Kick`] is a 64-bit mask).
pub const MAX_VCPUS: usize = 64;
/// Most SPIs (INTIDs 32..=1019).
pub const MAX_SPIS: u32 = 988;
/// Most list registers the model uses (`ICH_VTR_EL2.ListRegs` allows 16).
pub const MAX_LRS: usize = 16;
/// Size of the distributor frame.
pub const DIST_SIZE: u64 = 0x1_0000;
/// Redistributor stride per vCPU: `RD_base` then `SGI_base` frames.
pub const REDIST_STRIDE: u64 = 0x2_0000;
/// `GICD_IIDR` / `GICR_IIDR` value (Xen's: implementer 0x43B, ARM).
pub const IIDR: u32 = 0x34C;
/// `GICD_PIDR2` / `GICR_PIDR2`: ArchRev 3 (GICv3).
pub const PIDR2: u32 = 0x30;
/// MPIDR affinity bits: Aff3 39:32, Aff2 23:16, Aff1 15:8, Aff0 7:0.
pub const MPIDR_AFF_MASK: u64 = 0xFF_00FF_FFFF;
/// `GICD_IROUTER.Interrupt_Routing_Mode`: any participating PE.
pub const IROUTER_IRM: u64 = 1 << 31;
/// Writable `GICD_IROUTER` bits (affinity and IRM).
const IROUTER_MASK: u64 = MPIDR_AFF_MASK | IROUTER_IRM;

/// `ICH_HCR_EL2.En`.
pub const ICH_HCR_EN: u64 = 1 << 0;
/// `ICH_HCR_EL2.UIE`: maintenance interrupt when at most one LR is valid.
pub const ICH_HCR_UIE: u64 = 1 << 1;
/// `ICH_HCR_EL2.NPIE`: maintenance interrupt when no LR is pending.
pub const ICH_HCR_NPIE: u64 = 1 << 3;

const NONE: u8 = u8::MAX;
const NO_HW: u16 = 0;

/// Domain-wide vGIC configuration.
#[derive(Clone, Debug, Default)]
pub struct VgicConfig {
    /// Number of vCPUs, 1..=64 (clamped).
    pub nr_vcpus: usize,
    /// Number of SPIs (INTIDs 32..32+nr_spis), at most 988 (clamped).
    /// `GICD_TYPER.ITLinesNumber` is `ceil(nr_spis / 32)`.
    pub nr_spis: u32,
    /// Affinity (MPIDR Aff3..Aff0 bits; other bits ignored) per vCPU. A
    /// missing entry defaults to Xen's layout: Aff0 = id % 16, Aff1 = id / 16.
    pub vcpu_mpidr: Vec<u64>,
}

/// Operations on the physical GIC for hardware-mapped (pass-through) SPIs;
/// the EL2 binary implements it. `pintid` is always a mapped SPI.
pub trait PhysIrq {
    /// Guest `ISENABLER`/`ICENABLER` write to a mapped SPI.
    fn set_enabled(&mut self, pintid: u32, enabled: bool);
    /// Guest `ICFGR` write to a mapped SPI (`edge` = edge-triggered).
    fn set_edge(&mut self, pintid: u32, edge: bool);
    /// Guest `IROUTER` write that routes a mapped SPI to `vcpu` (not called
    /// when the affinity matches no vCPU).
    fn route_to_vcpu(&mut self, pintid: u32, vcpu: usize);
    /// The guest discarded the virtual state (`ICPENDR` on a pending, not
    /// active, or `ICACTIVER` on an active mapped SPI): the physical
    /// interrupt, which the hypervisor left active when it injected it, must
    /// be deactivated or it never fires again.
    fn deactivate(&mut self, _pintid: u32) {}
}

/// A [`PhysIrq`] that does nothing (domains without pass-through).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPhys;

impl PhysIrq for NoPhys {
    fn set_enabled(&mut self, _pintid: u32, _enabled: bool) {}
    fn set_edge(&mut self, _pintid: u32, _edge: bool) {}
    fn route_to_vcpu(&mut self, _pintid: u32, _vcpu: usize) {}
}

/// Bitmask of vCPU ids whose deliverable interrupt set changed and that must
/// re-flush their list registers (the binary IPIs them if they run on another
/// CPU).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Kick(pub u64);

impl Kick {
    /// Nobody.
    pub const NONE: Kick = Kick(0);

    /// Just `vcpu` (nobody if it is out of range).
    pub const fn vcpu(vcpu: usize) -> Kick {
        if vcpu < MAX_VCPUS {
            Kick(1 << vcpu)
        } else {
            Kick(0)
        }
    }

    /// Whether `vcpu` is in the mask.
    pub const fn contains(self, vcpu: usize) -> bool {
        vcpu < MAX_VCPUS && self.0 >> vcpu & 1 != 0
    }

    /// Whether the mask is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl core::ops::BitOr for Kick {
    type Output = Kick;
    fn bitor(self, rhs: Kick) -> Kick {
        Kick(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Kick {
    fn bitor_assign(&mut self, rhs: Kick) {
        self.0 |= rhs.0;
    }
}

/// Result of [`Vgic::flush`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct FlushOutcome {
    /// Valid list registers written (`lrs[..used]`; the rest were zeroed).
    pub used: usize,
    /// Some deliverable interrupt was not listed (more than fit, or a new
    /// pending state of a hardware interrupt waits behind its active state).
    pub overflow: bool,
    /// Request `ICH_HCR_EL2.UIE`: set only with `overflow` and at least two
    /// valid LRs, so it cannot fire at once.
    pub uie: bool,
    /// Request `ICH_HCR_EL2.NPIE`: set only with `overflow` and at least one
    /// LR pending, so it fires once the guest acknowledged all listed ones.
    pub npie: bool,
}

impl FlushOutcome {
    /// The `ICH_HCR_EL2` value to load: `En` plus the requested maintenance
    /// enables (all other fields zero).
    pub const fn ich_hcr_el2(&self) -> u64 {
        ICH_HCR_EN
            | if self.uie { ICH_HCR_UIE } else { 0 }
            | if self.npie { ICH_HCR_NPIE } else { 0 }
    }
}

/// Per-interrupt state bits, each kept as a bitmap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Enabled = 0,
    Latch = 1,
    Level = 2,
    Active = 3,
    /// 1 = edge-triggered, 0 = level-sensitive.
    Edge = 4,
}

const NR_FIELDS: usize = 5;

/// One list register `flush` filled.
#[derive(Clone, Copy, Default, Debug)]
struct Slot {
    intid: u16,
    /// The pending state came from the latch (which `flush` cleared).
    latched: bool,
    /// The value written, for a `flush` not preceded by `sync`.
    written: u64,
    /// Register writes (from another vCPU, while this one runs with the
    /// interrupt listed) that the next `sync` applies on top of what the
    /// list register says: the LR cannot be changed from here, and without
    /// these a clear-active or clear-pending would be undone by the fold
    /// (an active interrupt the guest never acknowledged then stays listed
    /// for good, and can fill every list register).
    clear_active: bool,
    set_active: bool,
    clear_pending: bool,
}

/// Per-vCPU state: SGIs and PPIs (INTIDs 0..32) and the list-register slots.
#[derive(Clone, Debug)]
struct Cpu {
    /// Affinity (MPIDR_AFF_MASK bits).
    aff: u64,
    bits: [u32; NR_FIELDS],
    priority: [u8; 32],
    nr_slots: u8,
    slots: [Slot; MAX_LRS],
}

impl Cpu {
    fn new(aff: u64) -> Cpu {
        let mut bits = [0; NR_FIELDS];
        bits[Field::Edge as usize] = 0xFFFF; // SGIs: always edge
        Cpu {
            aff,
            bits,
            priority: [0; 32],
            nr_slots: 0,
            slots: [Slot::default(); MAX_LRS],
        }
    }

    fn pending(&self) -> u32 {
        let b = &self.bits;
        b[Field::Latch as usize] | (b[Field::Level as usize] & !b[Field::Edge as usize])
    }

    fn listed(&self, intid: u32) -> bool {
        self.slots[..usize::from(self.nr_slots).min(MAX_LRS)]
            .iter()
            .any(|s| u32::from(s.intid) == intid)
    }
}

/// SPI state, indexed by INTID (bits for INTIDs below 32 stay zero).
#[derive(Clone, Debug)]
struct Spis {
    bits: [Vec<u64>; NR_FIELDS],
    /// Indexed by INTID - 32.
    priority: Vec<u8>,
    irouter: Vec<u64>,
    /// Routed vCPU, or NONE.
    target: Vec<u8>,
    /// vCPU listing it or holding it active, or NONE.
    owner: Vec<u8>,
    /// Physical INTID, or NO_HW.
    hw: Vec<u16>,
    /// Bit w: word w has an interrupt that is pending-and-enabled or active.
    hot: u32,
}

impl Spis {
    fn pending_word(&self, w: usize) -> u64 {
        let b = &self.bits;
        let get = |f: Field| b[f as usize].get(w).copied().unwrap_or(0);
        get(Field::Latch) | (get(Field::Level) & !get(Field::Edge))
    }

    fn refresh_hot(&mut self, w: usize) {
        if w >= 32 {
            return;
        }
        let en = self.bits[Field::Enabled as usize]
            .get(w)
            .copied()
            .unwrap_or(0);
        let act = self.bits[Field::Active as usize]
            .get(w)
            .copied()
            .unwrap_or(0);
        if (self.pending_word(w) & en) | act != 0 {
            self.hot |= 1 << w;
        } else {
            self.hot &= !(1 << w);
        }
    }
}

/// Per-INTID operations of the set/clear register pairs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BitOp {
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

/// The virtual GICv3 of one domain.
#[derive(Clone, Debug)]
pub struct Vgic {
    nr_vcpus: usize,
    nr_spis: u32,
    /// 32 + nr_spis: INTIDs below this exist.
    nr_lines: u32,
    /// `GICD_CTLR.EnableGrp1A`.
    grp1: bool,
    cpus: Vec<Cpu>,
    spi: Spis,
    /// Physical INTID per PPI (index INTID - 16), shared by every vCPU.
    ppi_hw: [u16; 16],
}

/// Xen's default virtual affinity for vCPU `id` (16 per Aff1 cluster).
const fn default_affinity(id: usize) -> u64 {
    ((id as u64 / 16) << 8) | (id as u64 % 16)
}

impl Vgic {
    /// Build the reset state: everything disabled, inactive, not pending,
    /// priority 0, SPIs level-sensitive and routed to vCPU 0 (`IROUTER` reads
    /// vCPU 0's affinity), `GICD_CTLR.EnableGrp1A` clear.
    pub fn new(cfg: VgicConfig) -> Vgic {
        let nr_vcpus = cfg.nr_vcpus.clamp(1, MAX_VCPUS);
        let nr_spis = cfg.nr_spis.min(MAX_SPIS);
        let nr_lines = 32 + nr_spis;
        let cpus: Vec<Cpu> = (0..nr_vcpus)
            .map(|i| {
                Cpu::new(
                    cfg.vcpu_mpidr
                        .get(i)
                        .map_or(default_affinity(i), |m| m & MPIDR_AFF_MASK),
                )
            })
            .collect();
        let words = (nr_lines as usize).div_ceil(64);
        let n = nr_spis as usize;
        let aff0 = cpus[0].aff;
        let spi = Spis {
            bits: core::array::from_fn(|_| vec![0u64; words]),
            priority: vec![0; n],
            irouter: vec![aff0; n],
            target: vec![0; n],
            owner: vec![NONE; n],
            hw: vec![NO_HW; n],
            hot: 0,
        };
        Vgic {
            nr_vcpus,
            nr_spis,
            nr_lines,
            grp1: false,
            cpus,
            spi,
            ppi_hw: [NO_HW; 16],
        }
    }

    /// Number of vCPUs.
    pub fn nr_vcpus(&self) -> usize {
        self.nr_vcpus
    }

    /// Number of SPIs.
    pub fn nr_spis(&self) -> u32 {
        self.nr_spis
    }

    /// Size of the redistributor region: `nr_vcpus * 0x20000`.
    pub fn redist_region_size(&self) -> u64 {
        self.nr_vcpus as u64 * REDIST_STRIDE
    }

    /// Make virtual INTID `intid` hardware-backed by physical `pintid` (dom0
    /// SPIs 1:1, and the virtual-timer PPI 27 on every vCPU). Its list
    /// registers get HW = 1 and pINTID, so the guest's deactivation
    /// deactivates the physical interrupt. Returns false (and changes
    /// nothing) unless `intid` is a PPI or an existing SPI and `pintid` is a
    /// PPI or SPI (16..1020).
    pub fn map_hw(&mut self, intid: u32, pintid: u32) -> bool {
        if !(16..1020).contains(&pintid) {
            return false;
        }
        if (16..32).contains(&intid) {
            self.ppi_hw[(intid - 16) as usize] = pintid as u16;
            true
        } else if let Some(slot) = self.spi_index(intid).and_then(|i| self.spi.hw.get_mut(i)) {
            *slot = pintid as u16;
            true
        } else {
            false
        }
    }

    /// Edge-style injection (latch pending). SGIs/PPIs target `vcpu`; SPIs go
    /// to their routed vCPU (`IROUTER`) and `vcpu` is ignored. Unknown INTIDs
    /// are ignored.
    pub fn inject(&mut self, vcpu: usize, intid: u32) -> Kick {
        if !self.exists(vcpu, intid) {
            return Kick::NONE;
        }
        self.change(vcpu, intid, |s| s.put(vcpu, intid, Field::Latch, true))
    }

    /// Level-sensitive line from an emulated device (e.g. the virtual PL011
    /// SPI): while the line is high and the interrupt is configured
    /// level-sensitive, it is pending. A rising edge on an interrupt the guest
    /// configured edge-triggered latches it pending instead. SGIs have no line.
    pub fn set_level(&mut self, vcpu: usize, intid: u32, level: bool) -> Kick {
        if intid < 16 || !self.exists(vcpu, intid) {
            return Kick::NONE;
        }
        self.change(vcpu, intid, |s| {
            let rising = level && !s.get(vcpu, intid, Field::Level);
            s.put(vcpu, intid, Field::Level, level);
            if rising && s.get(vcpu, intid, Field::Edge) {
                s.put(vcpu, intid, Field::Latch, true);
            }
        })
    }

    /// Guest write to `ICC_SGI1R_EL1` (trapped) from `sender`: TargetList
    /// 15:0, Aff1 23:16, INTID 27:24, Aff2 39:32, IRM 40 (all but self), RS
    /// 47:44 (Aff0 = RS * 16 + TargetList bit), Aff3 55:48. Targets that match
    /// no vCPU are ignored.
    pub fn send_sgi(&mut self, sender: usize, sgi1r: u64) -> Kick {
        let intid = ((sgi1r >> 24) & 0xF) as u32;
        let mut kick = Kick::NONE;
        if sgi1r & (1 << 40) != 0 {
            for v in 0..self.nr_vcpus {
                if v != sender {
                    kick |= self.inject(v, intid);
                }
            }
            return kick;
        }
        let list = sgi1r & 0xFFFF;
        if list == 0 {
            return kick;
        }
        let rs = (sgi1r >> 44) & 0xF;
        let upper = ((sgi1r >> 16) & 0xFF) << 8
            | ((sgi1r >> 32) & 0xFF) << 16
            | ((sgi1r >> 48) & 0xFF) << 32;
        for v in 0..self.nr_vcpus {
            let aff = self.cpus[v].aff;
            let aff0 = aff & 0xFF;
            if aff & !0xFF == upper && aff0 >> 4 == rs && list >> (aff0 & 0xF) & 1 != 0 {
                kick |= self.inject(v, intid);
            }
        }
        kick
    }

    /// Whether `intid` is enabled for `vcpu` (the binary drops a HW interrupt
    /// the guest has disabled). False for unknown INTIDs or vCPUs.
    pub fn is_enabled(&self, vcpu: usize, intid: u32) -> bool {
        self.exists(vcpu, intid) && self.get(vcpu, intid, Field::Enabled)
    }

    /// Whether an interrupt is pending and enabled (and Group 1 enabled) for
    /// `vcpu`: used to wake a blocked vCPU. Priority masking is the guest's
    /// CPU interface's business and is not considered.
    pub fn has_pending(&self, vcpu: usize) -> bool {
        let Some(cpu) = self.cpus.get(vcpu) else {
            return false;
        };
        if !self.grp1 {
            return false;
        }
        if cpu.pending() & cpu.bits[Field::Enabled as usize] != 0 {
            return true;
        }
        let mut hot = self.spi.hot;
        while hot != 0 {
            let w = hot.trailing_zeros() as usize;
            hot &= hot - 1;
            let mut bits = self.spi.pending_word(w) & self.spi.bits[Field::Enabled as usize][w];
            while bits != 0 {
                let intid = (w * 64) as u32 + bits.trailing_zeros();
                bits &= bits - 1;
                if self.dest(vcpu, intid) == Some(vcpu) {
                    return true;
                }
            }
        }
        false
    }

    // ---- internal state access -------------------------------------------

    /// Whether `intid` exists for `vcpu` (private INTIDs need a valid vCPU).
    fn exists(&self, vcpu: usize, intid: u32) -> bool {
        if intid < 32 {
            vcpu < self.nr_vcpus
        } else {
            intid < self.nr_lines
        }
    }

    fn spi_index(&self, intid: u32) -> Option<usize> {
        (32..self.nr_lines)
            .contains(&intid)
            .then(|| (intid - 32) as usize)
    }

    fn get(&self, vcpu: usize, intid: u32, f: Field) -> bool {
        if intid < 32 {
            self.cpus
                .get(vcpu)
                .is_some_and(|c| c.bits[f as usize] >> intid & 1 != 0)
        } else {
            let w = (intid / 64) as usize;
            self.spi.bits[f as usize]
                .get(w)
                .is_some_and(|x| x >> (intid % 64) & 1 != 0)
        }
    }

    fn put(&mut self, vcpu: usize, intid: u32, f: Field, val: bool) {
        if intid < 32 {
            if f == Field::Edge && intid < 16 {
                return; // SGIs are always edge
            }
            if let Some(c) = self.cpus.get_mut(vcpu) {
                let m = 1u32 << intid;
                let w = &mut c.bits[f as usize];
                *w = if val { *w | m } else { *w & !m };
            }
        } else if intid < self.nr_lines {
            let w = (intid / 64) as usize;
            if let Some(x) = self.spi.bits[f as usize].get_mut(w) {
                let m = 1u64 << (intid % 64);
                *x = if val { *x | m } else { *x & !m };
            }
            self.spi.refresh_hot(w);
        }
    }

    fn pending(&self, vcpu: usize, intid: u32) -> bool {
        self.get(vcpu, intid, Field::Latch)
            || (self.get(vcpu, intid, Field::Level) && !self.get(vcpu, intid, Field::Edge))
    }

    /// Pending, enabled, Group 1 enabled.
    fn deliverable(&self, vcpu: usize, intid: u32) -> bool {
        self.grp1 && self.get(vcpu, intid, Field::Enabled) && self.pending(vcpu, intid)
    }

    fn priority(&self, vcpu: usize, intid: u32) -> u8 {
        if intid < 32 {
            self.cpus
                .get(vcpu)
                .map_or(0, |c| c.priority[intid as usize])
        } else {
            self.spi_index(intid)
                .and_then(|i| self.spi.priority.get(i).copied())
                .unwrap_or(0)
        }
    }

    fn set_priority(&mut self, vcpu: usize, intid: u32, prio: u8) {
        if intid < 32 {
            if let Some(c) = self.cpus.get_mut(vcpu) {
                c.priority[intid as usize] = prio;
            }
        } else if let Some(p) = self
            .spi_index(intid)
            .and_then(|i| self.spi.priority.get_mut(i))
        {
            *p = prio;
        }
    }

    /// Physical INTID backing `intid`, if mapped.
    fn hw(&self, intid: u32) -> Option<u32> {
        let p = if intid < 16 {
            NO_HW
        } else if intid < 32 {
            self.ppi_hw[(intid - 16) as usize]
        } else {
            self.spi_index(intid)
                .and_then(|i| self.spi.hw.get(i).copied())
                .unwrap_or(NO_HW)
        };
        (p != NO_HW).then_some(u32::from(p))
    }

    /// Physical INTID backing `intid` if it is a mapped SPI (the only kind
    /// mirrored through [`PhysIrq`]).
    fn hw_spi(&self, intid: u32) -> Option<u32> {
        if intid >= 32 {
            self.hw(intid)
        } else {
            None
        }
    }

    fn spi_owner(&self, intid: u32) -> u8 {
        self.spi_index(intid)
            .and_then(|i| self.spi.owner.get(i).copied())
            .unwrap_or(NONE)
    }

    fn set_spi_owner(&mut self, intid: u32, owner: u8) {
        if let Some(o) = self
            .spi_index(intid)
            .and_then(|i| self.spi.owner.get_mut(i))
        {
            *o = owner;
        }
    }

    fn spi_target(&self, intid: u32) -> u8 {
        self.spi_index(intid)
            .and_then(|i| self.spi.target.get(i).copied())
            .unwrap_or(NONE)
    }

    /// The vCPU the interrupt is delivered to now: for private interrupts
    /// `vcpu`; for SPIs the owner (listing it or holding it active), else
    /// the routed target.
    fn dest(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid < 32 {
            return (vcpu < self.nr_vcpus).then_some(vcpu);
        }
        let o = self.spi_owner(intid);
        let d = if o != NONE { o } else { self.spi_target(intid) };
        (usize::from(d) < self.nr_vcpus).then_some(usize::from(d))
    }

    fn listed(&self, vcpu: usize, intid: u32) -> bool {
        self.cpus.get(vcpu).is_some_and(|c| c.listed(intid))
    }

    fn snapshot(&self, vcpu: usize, intid: u32) -> u8 {
        let mut s = 0;
        for f in [
            Field::Enabled,
            Field::Latch,
            Field::Level,
            Field::Active,
            Field::Edge,
        ] {
            s = s << 1 | u8::from(self.get(vcpu, intid, f));
        }
        s
    }

    /// Run `op` on one interrupt and work out whom to kick: the delivering
    /// vCPU if the interrupt became deliverable, or if its state changed
    /// while that vCPU has it in a list register (so it can be retracted or
    /// merged).
    fn change(&mut self, vcpu: usize, intid: u32, op: impl FnOnce(&mut Self)) -> Kick {
        let before = self.snapshot(vcpu, intid);
        let was = self.deliverable(vcpu, intid);
        op(self);
        let now = self.deliverable(vcpu, intid);
        let after = self.snapshot(vcpu, intid);
        match self.dest(vcpu, intid) {
            Some(d) if (now && !was) || (before != after && self.listed(d, intid)) => Kick::vcpu(d),
            _ => Kick::NONE,
        }
    }

    /// Run `f` on the list-register slot of `intid` on the vCPU it is
    /// delivered to, if that vCPU has it listed now; that vCPU is then to be
    /// kicked (so it syncs soon) if `f` says the slot changed.
    fn mark_listed(&mut self, vcpu: usize, intid: u32, f: impl FnOnce(&mut Slot) -> bool) -> Kick {
        let Some(d) = self.dest(vcpu, intid) else {
            return Kick::NONE;
        };
        let Some(c) = self.cpus.get_mut(d) else {
            return Kick::NONE;
        };
        let n = usize::from(c.nr_slots).min(MAX_LRS);
        match c.slots[..n].iter_mut().find(|s| u32::from(s.intid) == intid) {
            Some(sl) => {
                if f(sl) {
                    Kick::vcpu(d)
                } else {
                    Kick::NONE
                }
            }
            None => Kick::NONE,
        }
    }

    /// Apply a set/clear register operation to one interrupt.
    fn apply(&mut self, vcpu: usize, intid: u32, op: BitOp, phys: &mut dyn PhysIrq) -> Kick {
        if !self.exists(vcpu, intid) {
            return Kick::NONE;
        }
        let hw = self.hw_spi(intid);
        // A listed interrupt's state lives in a list register until the
        // next sync: record what this write changes there (the kick from
        // `change` makes that vCPU sync soon).
        let active = self.get(vcpu, intid, Field::Active);
        let mut deactivate = false;
        let listed_kick = match op {
            BitOp::ClearActive => self.mark_listed(vcpu, intid, |sl| {
                let changed = !sl.clear_active;
                sl.clear_active = true;
                sl.set_active = false;
                // Possibly acknowledged since the flush (the model does not
                // know yet): the physical side of a HW SPI goes too, as the
                // model path below does for a known active one.
                deactivate = changed && !active;
                changed
            }),
            BitOp::SetActive => self.mark_listed(vcpu, intid, |sl| {
                let changed = !sl.set_active;
                sl.set_active = true;
                sl.clear_active = false;
                changed
            }),
            BitOp::ClearPending => self.mark_listed(vcpu, intid, |sl| {
                let changed = sl.latched && !sl.clear_pending;
                sl.clear_pending |= sl.latched;
                // As for a latch cleared below: a HW SPI whose pending
                // state goes must not stay active physically.
                deactivate = changed && !active;
                changed
            }),
            _ => Kick::NONE,
        };
        if let (Some(p), true) = (hw, deactivate) {
            phys.deactivate(p);
        }
        listed_kick | self.change(vcpu, intid, |s| match op {
            BitOp::SetEnable | BitOp::ClearEnable => {
                let en = op == BitOp::SetEnable;
                s.put(vcpu, intid, Field::Enabled, en);
                if let Some(p) = hw {
                    phys.set_enabled(p, en);
                }
            }
            BitOp::SetPending => s.put(vcpu, intid, Field::Latch, true),
            BitOp::ClearPending => {
                if s.get(vcpu, intid, Field::Latch) {
                    s.put(vcpu, intid, Field::Latch, false);
                    if let Some(p) = hw {
                        if !s.get(vcpu, intid, Field::Active) {
                            phys.deactivate(p);
                        }
                    }
                }
            }
            BitOp::SetActive => {
                s.put(vcpu, intid, Field::Active, true);
                if intid >= 32 && s.spi_owner(intid) == NONE {
                    let t = s.spi_target(intid);
                    s.set_spi_owner(intid, t);
                }
            }
            BitOp::ClearActive => {
                if s.get(vcpu, intid, Field::Active) {
                    s.put(vcpu, intid, Field::Active, false);
                    if let Some(p) = hw {
                        phys.deactivate(p);
                    }
                }
                if intid >= 32 {
                    let o = s.spi_owner(intid);
                    if o != NONE && !s.listed(usize::from(o), intid) {
                        s.set_spi_owner(intid, NONE);
                    }
                }
            }
        })
    }

    /// Mask of the INTIDs of 32-INTID row `row` (INTIDs 32*row..) that exist.
    fn row_mask(&self, row: u32) -> u32 {
        let base = row.saturating_mul(32);
        if base >= self.nr_lines {
            0
        } else {
            let n = self.nr_lines - base;
            if n >= 32 {
                u32::MAX
            } else {
                (1u32 << n) - 1
            }
        }
    }

    /// Read one field of a 32-INTID row: row 0 from `vcpu`'s private state,
    /// others from the SPIs.
    fn read_row(&self, vcpu: usize, row: u32, f: Field) -> u32 {
        if row == 0 {
            let Some(c) = self.cpus.get(vcpu) else {
                return 0;
            };
            if f == Field::Latch {
                c.pending()
            } else {
                c.bits[f as usize]
            }
        } else {
            let mask = self.row_mask(row);
            if mask == 0 {
                return 0;
            }
            let w = (row / 2) as usize;
            let word = if f == Field::Latch {
                self.spi.pending_word(w)
            } else {
                self.spi.bits[f as usize].get(w).copied().unwrap_or(0)
            };
            (word >> (32 * (row % 2))) as u32 & mask
        }
    }

    /// Apply `op` to every set bit of `bits` in row `row` (bounded: 32).
    fn write_row(
        &mut self,
        vcpu: usize,
        row: u32,
        bits: u32,
        op: BitOp,
        phys: &mut dyn PhysIrq,
    ) -> Kick {
        let mut bits = bits
            & if row == 0 {
                u32::MAX
            } else {
                self.row_mask(row)
            };
        let mut kick = Kick::NONE;
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            kick |= self.apply(vcpu, row * 32 + b, op, phys);
        }
        kick
    }

    /// Four priority bytes starting at `intid` (non-existent ones read 0).
    fn read_priority_word(&self, vcpu: usize, intid: u32) -> u32 {
        let mut v = 0;
        for i in 0..4 {
            let n = intid + i;
            if self.exists(vcpu, n) {
                v |= u32::from(self.priority(vcpu, n)) << (8 * i);
            }
        }
        v
    }

    /// Write the priority bytes selected by byte-lane `mask`.
    fn write_priority_word(&mut self, vcpu: usize, intid: u32, val: u32, mask: u32) {
        for i in 0..4 {
            let n = intid + i;
            if mask >> (8 * i) & 0xFF != 0 && self.exists(vcpu, n) {
                self.set_priority(vcpu, n, (val >> (8 * i)) as u8);
            }
        }
    }

    /// `ICFGR<n>` value for INTIDs 16n..16n+16: bit 2k+1 = edge.
    fn read_icfgr(&self, vcpu: usize, n: u32) -> u32 {
        let mut v = 0;
        for k in 0..16 {
            let intid = n * 16 + k;
            if self.exists(vcpu, intid) && self.get(vcpu, intid, Field::Edge) {
                v |= 2 << (2 * k);
            }
        }
        v
    }

    /// Write `ICFGR<n>` fields selected by `mask` (SGIs stay edge; mapped
    /// SPIs are mirrored).
    fn write_icfgr(
        &mut self,
        vcpu: usize,
        n: u32,
        val: u32,
        mask: u32,
        phys: &mut dyn PhysIrq,
    ) -> Kick {
        let mut kick = Kick::NONE;
        for k in 0..16 {
            let intid = n * 16 + k;
            if intid < 16 || mask >> (2 * k + 1) & 1 == 0 || !self.exists(vcpu, intid) {
                continue;
            }
            let edge = val >> (2 * k + 1) & 1 != 0;
            kick |= self.change(vcpu, intid, |s| s.put(vcpu, intid, Field::Edge, edge));
            if let Some(p) = self.hw_spi(intid) {
                phys.set_edge(p, edge);
            }
        }
        kick
    }

    /// `GICD_CTLR.EnableGrp1A` write.
    fn set_grp1(&mut self, en: bool) -> Kick {
        if en == self.grp1 {
            return Kick::NONE;
        }
        self.grp1 = en;
        // Rare: every vCPU re-evaluates.
        Kick(if self.nr_vcpus >= 64 {
            u64::MAX
        } else {
            (1u64 << self.nr_vcpus) - 1
        })
    }

    /// The vCPU an `IROUTER` value selects: IRM = 1 ("any PE") means vCPU 0
    /// (as Xen); an affinity matching no vCPU selects none.
    fn resolve_route(&self, irouter: u64) -> u8 {
        if irouter & IROUTER_IRM != 0 {
            return 0;
        }
        let aff = irouter & MPIDR_AFF_MASK;
        self.cpus
            .iter()
            .position(|c| c.aff == aff)
            .map_or(NONE, |v| v as u8)
    }

    fn read_irouter(&self, intid: u32) -> u64 {
        self.spi_index(intid)
            .and_then(|i| self.spi.irouter.get(i).copied())
            .unwrap_or(0)
    }

    /// Store an `IROUTER` value and re-route. The value is kept as written
    /// (writable bits only) even when it matches no vCPU; the interrupt is
    /// then delivered nowhere (it stays pending) until routed to a vCPU.
    fn write_irouter(&mut self, intid: u32, val: u64, phys: &mut dyn PhysIrq) -> Kick {
        let Some(i) = self.spi_index(intid) else {
            return Kick::NONE;
        };
        let val = val & IROUTER_MASK;
        let t = self.resolve_route(val);
        if let (Some(r), Some(tg)) = (self.spi.irouter.get_mut(i), self.spi.target.get_mut(i)) {
            *r = val;
            *tg = t;
        }
        if t != NONE {
            if let Some(p) = self.hw_spi(intid) {
                phys.route_to_vcpu(p, usize::from(t));
            }
        }
        if self.deliverable(0, intid) && self.spi_owner(intid) == NONE && t != NONE {
            Kick::vcpu(usize::from(t))
        } else {
            Kick::NONE
        }
    }
}

/// Whether an access is well formed: size 1, 2, 4 or 8, naturally aligned,
/// inside a frame of `limit` bytes.
fn access_ok(offset: u64, size: u8, limit: u64) -> bool {
    matches!(size, 1 | 2 | 4 | 8) && offset.is_multiple_of(u64::from(size)) && offset < limit
}

/// For an access of `size` <= 4 at `offset`: the byte-lane mask within the
/// containing 32-bit word and the lane shift.
fn lane(offset: u64, size: u8) -> (u32, u32) {
    let shift = ((offset & 3) * 8) as u32;
    let bits = u32::from(size.min(4)) * 8;
    let mask = if bits >= 32 {
        u32::MAX
    } else {
        ((1u32 << bits) - 1) << shift
    };
    (mask, shift)
}
