//! The virtual GICv3 under random guest MMIO (distributor and
//! redistributors, any offset/size/value), injections, SGIs, hardware
//! mappings, and flush/run/sync cycles in which the "hardware" moves list
//! registers through their states as a guest acknowledging and completing
//! interrupts would (or arbitrarily).
//!
//! Checked: nothing panics; reads fit their size and malformed ones read 0;
//! kicks name existing vCPUs; `flush` fills `lrs[..used]` with valid,
//! group-1, distinct, existing vINTIDs (HW ones never pending+active) and
//! zeroes the rest; UIE/NPIE only as documented; an SPI is never in two
//! vCPUs' loaded list registers at once; physical-IRQ callbacks only for
//! mapped SPIs and existing vCPUs.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use hv_arm::vgic::{lr, Kick, PhysIrq, Vgic, VgicConfig, MAX_LRS, REDIST_STRIDE};
use libfuzzer_sys::fuzz_target;

struct Phys {
    nr_vcpus: usize,
    mapped: BTreeSet<u32>,
}

impl PhysIrq for Phys {
    fn set_enabled(&mut self, pintid: u32, _enabled: bool) {
        assert!(self.mapped.contains(&pintid), "set_enabled({pintid}) not mapped");
    }
    fn set_edge(&mut self, pintid: u32, _edge: bool) {
        assert!(self.mapped.contains(&pintid), "set_edge({pintid}) not mapped");
    }
    fn route_to_vcpu(&mut self, pintid: u32, vcpu: usize) {
        assert!(self.mapped.contains(&pintid), "route_to_vcpu({pintid}) not mapped");
        assert!(vcpu < self.nr_vcpus, "route to vCPU {vcpu}");
    }
    fn deactivate(&mut self, pintid: u32) {
        assert!(self.mapped.contains(&pintid), "deactivate({pintid}) not mapped");
    }
}

const DIST_REGS: &[u64] = &[
    0x0, 0x4, 0x8, 0x80, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0x800, 0xC00, 0xD00,
    0xE00, 0xF00, 0x6100, 0xFFE8, 0x6000,
];
const REDIST_REGS: &[u64] = &[
    0x0, 0x4, 0x8, 0xC, 0x14, 0xFFE8, 0x10080, 0x10100, 0x10180, 0x10200, 0x10280, 0x10300,
    0x10380, 0x10400, 0x10C00, 0x10C04, 0x10D00,
];

#[derive(Arbitrary, Debug)]
enum Op {
    DistRead { reg: u8, idx: u16, size: u8, vcpu: u8 },
    DistWrite { reg: u8, idx: u16, size: u8, vcpu: u8, value: u64 },
    RedistRead { frame: u8, reg: u8, idx: u8, size: u8 },
    RedistWrite { frame: u8, reg: u8, idx: u8, size: u8, value: u64 },
    Inject { vcpu: u8, intid: u16 },
    SetLevel { vcpu: u8, intid: u16, level: bool },
    Sgi { sender: u8, sgi1r: u64 },
    MapHw { intid: u16, pintid: u16 },
    Flush { vcpu: u8, nr_lrs: u8 },
    /// The vCPU runs: each loaded LR goes through a transition, then sync.
    Run { vcpu: u8, moves: Vec<u8> },
    Query { vcpu: u8, intid: u16 },
}

fn size(s: u8) -> u8 {
    match s % 8 {
        0..=3 => 4,
        4 => 8,
        5 => 1,
        6 => 2,
        _ => s,
    }
}

fn intid(i: u16, nr_lines: u32) -> u32 {
    if i & 0x8000 != 0 {
        u32::from(i & 0x7fff)
    } else {
        u32::from(i) % (nr_lines + 8)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((nv, ns, weird_aff)) = <(u8, u16, bool)>::arbitrary(&mut u) else { return };
    let nr_vcpus = 1 + usize::from(nv % 5);
    let nr_spis = u32::from(ns % 1000);
    let vcpu_mpidr = if weird_aff {
        (0..nr_vcpus as u64).map(|i| i * 0x1_0101 + (i << 32)).collect()
    } else {
        Vec::new()
    };
    let mut g = Vgic::new(VgicConfig { nr_vcpus, nr_spis, vcpu_mpidr });
    let nr_vcpus = g.nr_vcpus();
    let nr_lines = 32 + g.nr_spis();
    let mut phys = Phys { nr_vcpus, mapped: BTreeSet::new() };
    // LRs each vCPU has loaded (flushed, not yet synced).
    let mut loaded: Vec<Option<Vec<u64>>> = vec![None; nr_vcpus];
    let all = if nr_vcpus == 64 { u64::MAX } else { (1u64 << nr_vcpus) - 1 };
    let kick_ok = |k: Kick| assert_eq!(k.0 & !all, 0, "kick {k:?} beyond {nr_vcpus} vCPUs");

    let mut steps = 0;
    while !u.is_empty() && steps < 200 {
        steps += 1;
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if ferrovisor_fuzz::debug() {
            eprintln!("{op:?}");
        }
        match op {
            Op::DistRead { reg, idx, size: s, vcpu } => {
                let off = DIST_REGS[usize::from(reg) % DIST_REGS.len()] + u64::from(idx % 256) * 4
                    + if reg >= 200 { u64::from(idx) } else { 0 };
                let s = size(s);
                let v = g.dist_read(usize::from(vcpu) % (nr_vcpus + 1), off, s);
                check_read(v, s, off);
            }
            Op::DistWrite { reg, idx, size: s, vcpu, value } => {
                let off = DIST_REGS[usize::from(reg) % DIST_REGS.len()] + u64::from(idx % 256) * 4
                    + if reg >= 200 { u64::from(idx) } else { 0 };
                kick_ok(g.dist_write(usize::from(vcpu) % (nr_vcpus + 1), off, size(s), value, &mut phys));
            }
            Op::RedistRead { frame, reg, idx, size: s } => {
                let off = u64::from(frame % 6) * REDIST_STRIDE
                    + REDIST_REGS[usize::from(reg) % REDIST_REGS.len()]
                    + u64::from(idx % 16) * 4;
                let s = size(s);
                let v = g.redist_read(0, off, s);
                check_read(v, s, off);
            }
            Op::RedistWrite { frame, reg, idx, size: s, value } => {
                let off = u64::from(frame % 6) * REDIST_STRIDE
                    + REDIST_REGS[usize::from(reg) % REDIST_REGS.len()]
                    + u64::from(idx % 16) * 4;
                kick_ok(g.redist_write(0, off, size(s), value, &mut phys));
            }
            Op::Inject { vcpu, intid: i } => kick_ok(g.inject(usize::from(vcpu) % (nr_vcpus + 1), intid(i, nr_lines))),
            Op::SetLevel { vcpu, intid: i, level } => {
                kick_ok(g.set_level(usize::from(vcpu) % (nr_vcpus + 1), intid(i, nr_lines), level))
            }
            Op::Sgi { sender, sgi1r } => kick_ok(g.send_sgi(usize::from(sender) % nr_vcpus, sgi1r)),
            Op::MapHw { intid: i, pintid } => {
                let (v, p) = (intid(i, nr_lines), u32::from(pintid % 1100));
                if g.map_hw(v, p) {
                    assert!((16..1020).contains(&p) && (16..nr_lines).contains(&v));
                    phys.mapped.insert(p);
                }
            }
            Op::Flush { vcpu, nr_lrs } => {
                let v = usize::from(vcpu) % (nr_vcpus + 1);
                let mut lrs = vec![0xdead_beefu64; usize::from(nr_lrs % 20)];
                let out = g.flush(v, &mut lrs);
                let cap = lrs.len().min(MAX_LRS);
                assert!(out.used <= cap, "{out:?} with {} LRs", lrs.len());
                assert!(lrs[out.used..].iter().all(|&l| l == 0), "unused LRs not zeroed");
                let mut seen = BTreeSet::new();
                for &l in &lrs[..out.used] {
                    let d = lr::Lr::decode(l);
                    assert_ne!(d.state, lr::State::Invalid, "listed LR invalid: {l:#x}");
                    assert!(d.group1);
                    assert!(d.vintid < nr_lines, "vINTID {} of {nr_lines}", d.vintid);
                    assert!(seen.insert(d.vintid), "vINTID {} listed twice", d.vintid);
                    if let Some(p) = d.pintid {
                        assert!(phys.mapped.contains(&p), "HW LR with unmapped pINTID {p}");
                        assert_ne!(d.state, lr::State::PendingActive, "HW LR pending+active");
                    }
                }
                if out.uie {
                    assert!(out.overflow && out.used >= 2, "{out:?}");
                }
                if out.npie {
                    assert!(out.overflow && lrs[..out.used].iter().any(|&l| lr::state(l).is_pending()), "{out:?}");
                }
                if v < nr_vcpus {
                    loaded[v] = Some(lrs[..out.used].to_vec());
                } else {
                    assert_eq!(out.used, 0);
                }
            }
            Op::Run { vcpu, moves } => {
                let v = usize::from(vcpu) % nr_vcpus;
                let Some(mut lrs) = loaded[v].take() else {
                    kick_ok(g.sync(v, &[]));
                    continue;
                };
                for (l, &m) in lrs.iter_mut().zip(moves.iter().chain(std::iter::repeat(&0))) {
                    let st = lr::state(*l);
                    let new = match m % 8 {
                        0 => st, // untouched
                        // Acknowledge: pending -> active.
                        1 | 2 => match st {
                            lr::State::Pending => lr::State::Active,
                            lr::State::PendingActive => lr::State::PendingActive,
                            s => s,
                        },
                        // Complete: active -> invalid (or pending again).
                        3 | 4 => match st {
                            lr::State::Active => lr::State::Invalid,
                            lr::State::PendingActive => lr::State::Pending,
                            s => s,
                        },
                        // Ack and complete in one run.
                        5 => lr::State::Invalid,
                        // Anything at all.
                        _ => lr::State::from_bits(u64::from(m >> 3)),
                    };
                    *l = (*l & !(3 << lr::STATE_SHIFT)) | new.bits() << lr::STATE_SHIFT;
                }
                let short = moves.len() % 3 == 2 && !lrs.is_empty();
                let k = g.sync(v, if short { &lrs[..lrs.len() - 1] } else { &lrs });
                kick_ok(k);
            }
            Op::Query { vcpu, intid: i } => {
                let v = usize::from(vcpu) % (nr_vcpus + 1);
                let _ = g.is_enabled(v, intid(i, nr_lines));
                let _ = g.has_pending(v);
            }
        }
        // An SPI is never in two vCPUs' loaded LRs.
        let mut spis = BTreeSet::new();
        for (v, l) in loaded.iter().enumerate() {
            for &x in l.iter().flatten() {
                let id = lr::vintid(x);
                if id >= 32 {
                    assert!(spis.insert(id), "SPI {id} loaded on two vCPUs (again on {v})");
                }
            }
        }
    }
});

fn check_read(v: u64, size: u8, off: u64) {
    match size {
        1 | 2 | 4 => assert_eq!(v >> (8 * u32::from(size)), 0, "{size}-byte read at {off:#x} = {v:#x}"),
        8 => {}
        _ => assert_eq!(v, 0, "{size}-byte read at {off:#x} = {v:#x}"),
    }
}
