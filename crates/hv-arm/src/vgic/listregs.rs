//! List-register management: [`Vgic::flush`] before entering a vCPU and
//! [`Vgic::sync`] after leaving it.
//!
//! `flush` picks, without allocating, the best `min(nr_lrs, 16)` candidates
//! of the vCPU (active first, then pending-and-enabled; by priority, then
//! INTID) from its private word and the hot SPI words; it moves pending
//! latches into the list registers and records each slot. `sync` folds the
//! hardware state of those slots back: a still-pending LR gives its latch
//! back, the active bit follows the LR, an invalid LR means the guest
//! completed the interrupt. Pending state injected meanwhile is in the model
//! latch and is merged at the next `flush` (pending+active).

use super::{lr, Field, FlushOutcome, Kick, Slot, Vgic, MAX_LRS, NONE};

impl Vgic {
    /// Before entering `vcpu`: fill its list registers (`lrs.len()` = number
    /// of LRs, at most [`MAX_LRS`] used; any excess is zeroed) with its
    /// active interrupts first, then its pending-and-enabled ones, each group
    /// by priority (lower value first, ties by INTID). Unused LRs are zeroed.
    ///
    /// Must be paired with [`Vgic::sync`] after the vCPU ran; a second
    /// `flush` without `sync` assumes the previous LRs were never loaded.
    pub fn flush(&mut self, vcpu: usize, lrs: &mut [u64]) -> FlushOutcome {
        lrs.iter_mut().for_each(|l| *l = 0);
        if vcpu >= self.nr_vcpus {
            return FlushOutcome::default();
        }
        if self.cpus[vcpu].nr_slots != 0 {
            let written = self.cpus[vcpu].slots.map(|s| s.written);
            let n = usize::from(self.cpus[vcpu].nr_slots).min(MAX_LRS);
            let _ = self.sync(vcpu, &written[..n]);
        }
        let cap = lrs.len().min(MAX_LRS);
        let grp32 = if self.grp1 { u32::MAX } else { 0 };
        let grp64 = if self.grp1 { u64::MAX } else { 0 };
        let mut best = [0u32; MAX_LRS];
        let mut n = 0usize;
        let mut total = 0usize;

        let cpu = &self.cpus[vcpu];
        let active = cpu.bits[Field::Active as usize];
        let mut bits = (cpu.pending() & cpu.bits[Field::Enabled as usize] & grp32) | active;
        while bits != 0 {
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            insert(
                &mut best,
                &mut n,
                cap,
                sort_key(active >> i & 1 != 0, cpu.priority[i as usize], i),
            );
            total += 1;
        }

        let mut hot = self.spi.hot;
        while hot != 0 {
            let w = hot.trailing_zeros() as usize;
            hot &= hot - 1;
            let en = self.spi.bits[Field::Enabled as usize]
                .get(w)
                .copied()
                .unwrap_or(0);
            let act = self.spi.bits[Field::Active as usize]
                .get(w)
                .copied()
                .unwrap_or(0);
            let mut bits = (self.spi.pending_word(w) & en & grp64) | act;
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                let intid = (w * 64) as u32 + b;
                let Some(i) = self.spi_index(intid) else {
                    continue;
                };
                let owner = self.spi.owner.get(i).copied().unwrap_or(NONE);
                let d = if owner != NONE {
                    owner
                } else {
                    self.spi.target.get(i).copied().unwrap_or(NONE)
                };
                if usize::from(d) != vcpu {
                    continue;
                }
                let prio = self.spi.priority.get(i).copied().unwrap_or(0);
                insert(
                    &mut best,
                    &mut n,
                    cap,
                    sort_key(act >> b & 1 != 0, prio, intid),
                );
                total += 1;
            }
        }

        let mut out = FlushOutcome {
            used: n,
            overflow: total > n,
            uie: false,
            npie: false,
        };
        let mut any_pending = false;
        for (k, &key) in best[..n].iter().enumerate() {
            let intid = key & 0x3FF;
            let active = self.get(vcpu, intid, Field::Active);
            let pend = self.deliverable(vcpu, intid);
            let latch = self.get(vcpu, intid, Field::Latch);
            let pintid = self.hw(intid);
            let (state, latched) = match pintid {
                // The hardware holds the physical active state; a HW LR may
                // not be pending+active, so new pending state waits.
                Some(_) if active => {
                    out.overflow |= pend;
                    (lr::State::Active, false)
                }
                _ => (lr::State::from_flags(pend, active), pend && latch),
            };
            if latched {
                self.put(vcpu, intid, Field::Latch, false);
            }
            any_pending |= state.is_pending();
            let value = lr::Lr {
                vintid: intid,
                pintid,
                eoi: false,
                priority: self.priority(vcpu, intid),
                group1: true,
                state,
            }
            .encode();
            if let Some(l) = lrs.get_mut(k) {
                *l = value;
            }
            self.cpus[vcpu].slots[k] = Slot {
                intid: intid as u16,
                latched,
                written: value,
                ..Slot::default()
            };
            if intid >= 32 {
                self.set_spi_owner(intid, vcpu as u8);
            }
        }
        self.cpus[vcpu].nr_slots = n as u8;

        if out.overflow {
            if any_pending {
                out.npie = true;
            } else {
                // Only active interrupts listed: exit when the guest
                // deactivates one (EOI maintenance on software LRs).
                for (k, l) in lrs[..n].iter_mut().enumerate() {
                    if *l & lr::HW == 0 {
                        *l |= lr::EOI;
                        self.cpus[vcpu].slots[k].written = *l;
                    }
                }
            }
            out.uie = n >= 2;
        }
        out
    }

    /// After leaving `vcpu`: fold the list-register values read back from
    /// hardware (`lrs[i]` is the LR `flush` wrote at index `i`; a missing
    /// entry counts as unchanged) into the model: pending stays pending,
    /// active becomes active, invalid means the guest completed the
    /// interrupt (a level interrupt whose line is still high is pending
    /// again). Writes to the active or pending state made while the
    /// interrupt was listed (from another vCPU) take precedence over the
    /// list register. Returns the vCPUs to kick: targets of SPIs that this
    /// vCPU released after they were re-routed.
    pub fn sync(&mut self, vcpu: usize, lrs: &[u64]) -> Kick {
        let Some(cpu) = self.cpus.get_mut(vcpu) else {
            return Kick::NONE;
        };
        let n = usize::from(cpu.nr_slots).min(MAX_LRS);
        if n == 0 {
            return Kick::NONE;
        }
        cpu.nr_slots = 0;
        let slots = cpu.slots;
        let mut kick = Kick::NONE;
        for (i, slot) in slots[..n].iter().enumerate() {
            let state = lr::state(lrs.get(i).copied().unwrap_or(slot.written));
            let intid = u32::from(slot.intid);
            let pending = state.is_pending() && !slot.clear_pending;
            let active = (state.is_active() && !slot.clear_active) || slot.set_active;
            if pending && slot.latched {
                self.put(vcpu, intid, Field::Latch, true);
            }
            self.put(vcpu, intid, Field::Active, active);
            if intid >= 32 {
                if active {
                    self.set_spi_owner(intid, vcpu as u8);
                } else {
                    self.set_spi_owner(intid, NONE);
                    let t = self.spi_target(intid);
                    if usize::from(t) != vcpu && self.deliverable(vcpu, intid) {
                        kick |= Kick::vcpu(usize::from(t));
                    }
                }
            }
        }
        kick
    }
}

/// Sort key: active first, then priority, then INTID (< 1024).
const fn sort_key(active: bool, prio: u8, intid: u32) -> u32 {
    ((!active as u32) << 18) | ((prio as u32) << 10) | (intid & 0x3FF)
}

/// Keep the `cap` smallest keys in `best[..n]`, sorted.
fn insert(best: &mut [u32; MAX_LRS], n: &mut usize, cap: usize, key: u32) {
    let cap = cap.min(MAX_LRS);
    if cap == 0 {
        return;
    }
    let mut pos = if *n < cap {
        *n += 1;
        *n - 1
    } else if key < best[cap - 1] {
        cap - 1
    } else {
        return;
    };
    while pos > 0 && best[pos - 1] > key {
        best[pos] = best[pos - 1];
        pos -= 1;
    }
    best[pos] = key;
}
