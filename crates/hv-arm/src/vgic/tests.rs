//! Host tests of the vGIC model (`cargo test -p hv-arm vgic`).

use super::lr::{self, Lr, State};
use super::*;
use alloc::vec::Vec;

/// Records every physical-GIC call.
#[derive(Default, Debug)]
struct Rec(Vec<(&'static str, u32, u64)>);

impl PhysIrq for Rec {
    fn set_enabled(&mut self, pintid: u32, enabled: bool) {
        self.0.push(("enable", pintid, enabled as u64));
    }
    fn set_edge(&mut self, pintid: u32, edge: bool) {
        self.0.push(("edge", pintid, edge as u64));
    }
    fn route_to_vcpu(&mut self, pintid: u32, vcpu: usize) {
        self.0.push(("route", pintid, vcpu as u64));
    }
    fn deactivate(&mut self, pintid: u32) {
        self.0.push(("deactivate", pintid, 0));
    }
}

/// Counts calls (for the fuzz loops; no allocation growth).
#[derive(Default)]
struct Count(u64);

impl PhysIrq for Count {
    fn set_enabled(&mut self, _: u32, _: bool) {
        self.0 += 1;
    }
    fn set_edge(&mut self, _: u32, _: bool) {
        self.0 += 1;
    }
    fn route_to_vcpu(&mut self, _: u32, vcpu: usize) {
        assert!(vcpu < 64);
        self.0 += 1;
    }
    fn deactivate(&mut self, _: u32) {
        self.0 += 1;
    }
}

/// 4 vCPUs: 0.0.0.0, 0.0.0.1, 0.0.1.0, 1.0.0.3 (Aff3.Aff2.Aff1.Aff0).
fn vgic4(nr_spis: u32) -> Vgic {
    Vgic::new(VgicConfig {
        nr_vcpus: 4,
        nr_spis,
        vcpu_mpidr: vec![0x0, 0x1, 0x100, 0x1_0000_0003],
    })
}

const SGI: u64 = 0x1_0000;

fn enable_grp1(g: &mut Vgic) {
    let k = g.dist_write(0, 0, 4, 2, &mut NoPhys);
    let _ = k;
}

/// Enable SPI `intid` through GICD_ISENABLER.
fn enable_spi(g: &mut Vgic, intid: u32) -> Kick {
    g.dist_write(
        0,
        0x100 + u64::from(intid / 32) * 4,
        4,
        1 << (intid % 32),
        &mut NoPhys,
    )
}

/// Enable private `intid` of `vcpu` through its GICR_ISENABLER0.
fn enable_private(g: &mut Vgic, vcpu: usize, intid: u32) -> Kick {
    g.redist_write(
        vcpu,
        vcpu as u64 * REDIST_STRIDE + SGI + 0x100,
        4,
        1 << intid,
        &mut NoPhys,
    )
}

fn set_prio(g: &mut Vgic, vcpu: usize, intid: u32, prio: u8) {
    if intid < 32 {
        g.redist_write(
            vcpu,
            vcpu as u64 * REDIST_STRIDE + SGI + 0x400 + u64::from(intid),
            1,
            prio.into(),
            &mut NoPhys,
        );
    } else {
        g.dist_write(vcpu, 0x400 + u64::from(intid), 1, prio.into(), &mut NoPhys);
    }
}

fn flush4(g: &mut Vgic, vcpu: usize) -> ([u64; 4], FlushOutcome) {
    let mut lrs = [0xdead_u64; 4];
    let out = g.flush(vcpu, &mut lrs);
    (lrs, out)
}

fn ids(lrs: &[u64]) -> Vec<u32> {
    lrs.iter()
        .filter(|&&l| lr::state(l) != State::Invalid)
        .map(|&l| lr::vintid(l))
        .collect()
}

/// Rewrite the state of an LR value (what the guest's CPU interface does).
fn with_state(l: u64, s: State) -> u64 {
    (l & !(3 << 62)) | (s.bits() << 62)
}

#[test]
fn vgic_dist_reset_and_id_registers() {
    let mut g = vgic4(64);
    assert_eq!(g.dist_read(0, 0x0, 4), 0x10, "CTLR: ARE_NS only");
    g.dist_write(0, 0x0, 4, 0xFFFF_FFFF, &mut NoPhys);
    assert_eq!(
        g.dist_read(0, 0x0, 4),
        0x12,
        "only EnableGrp1A writable, RWP reads 0"
    );
    g.dist_write(0, 0x0, 4, 0, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x0, 4), 0x10);
    // TYPER: ITLines 2, CPUNumber 3, IDbits 9.
    assert_eq!(g.dist_read(0, 0x4, 4), 2 | (3 << 5) | (9 << 19));
    assert_eq!(g.dist_read(0, 0x8, 4), 0x34C);
    assert_eq!(g.dist_read(0, 0xC, 4), 0, "TYPER2");
    assert_eq!(g.dist_read(0, 0xFFE8, 4), 0x30, "PIDR2");
    assert_eq!(g.dist_read(0, 0xFFE0, 4), 0);
    // IGROUPR, IGRPMODR, NSACR: RAZ/WI.
    for off in [0x80u64, 0x84, 0xD04, 0xE08] {
        g.dist_write(0, off, 4, 0xFFFF_FFFF, &mut NoPhys);
        assert_eq!(g.dist_read(0, off, 4), 0, "{off:#x}");
    }
    // SGI/PPI rows are RAZ/WI in the distributor (ARE = 1).
    for off in [0x100u64, 0x200, 0x300, 0x400, 0x41C, 0xC00, 0xC04] {
        g.dist_write(0, off, 4, 0xFFFF_FFFF, &mut NoPhys);
        assert_eq!(g.dist_read(0, off, 4), 0, "{off:#x}");
    }
    assert_eq!(
        g.redist_read(0, SGI + 0x100, 4),
        0,
        "the write above must not reach vCPU 0's SGIs"
    );
    // Rows beyond 32 + nr_spis (96) are RAZ/WI.
    g.dist_write(0, 0x10C, 4, 0xFFFF_FFFF, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x10C, 4), 0);
    g.dist_write(0, 0x400 + 96, 4, 0xFFFF_FFFF, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x400 + 96, 4), 0);
    g.dist_write(0, 0xC00 + 6 * 4, 4, 0xFFFF_FFFF, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0xC00 + 6 * 4, 4), 0);
    g.dist_write(0, 0x6000 + 8 * 96, 8, 1, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x6000 + 8 * 96, 8), 0);
    // IROUTER0..31 reserved.
    assert_eq!(g.dist_read(0, 0x6000 + 8 * 31, 8), 0);
    // IROUTER reset: vCPU 0's affinity.
    assert_eq!(g.dist_read(0, 0x6000 + 8 * 32, 8), 0);

    // CPUNumber saturates at 8; ITLinesNumber rounds up; nr_spis clamps.
    let g = Vgic::new(VgicConfig {
        nr_vcpus: 20,
        nr_spis: 5000,
        vcpu_mpidr: Vec::new(),
    });
    let mut g = g;
    assert_eq!(g.dist_read(0, 0x4, 4), 31 | (7 << 5) | (9 << 19));
    assert_eq!(g.nr_spis(), 988);
    assert_eq!(g.redist_region_size(), 20 * 0x20000);
    let g2 = Vgic::new(VgicConfig {
        nr_vcpus: 0,
        nr_spis: 0,
        vcpu_mpidr: Vec::new(),
    });
    assert_eq!(g2.nr_vcpus(), 1);
}

#[test]
fn vgic_redist_typer_affinity_last() {
    let mut g = vgic4(32);
    assert_eq!(g.redist_region_size(), 4 * 0x20000);
    let expect = [
        (0u64, 0u64),
        (1, 1 << 32),
        (2, 1 << 40),
        (3, (3 << 32) | (1 << 56)),
    ];
    for (v, aff) in expect {
        let base = v * REDIST_STRIDE;
        let last = if v == 3 { 1 << 4 } else { 0 };
        let typer = aff | (v << 8) | last;
        // Any caller reads the frame owner's register.
        assert_eq!(g.redist_read(0, base + 0x8, 8), typer, "vcpu {v}");
        assert_eq!(g.redist_read(2, base + 0x8, 4), typer & 0xFFFF_FFFF);
        assert_eq!(g.redist_read(2, base + 0xC, 4), typer >> 32);
        assert_eq!(g.redist_read(1, base + 0x4, 4), 0x34C);
        assert_eq!(g.redist_read(1, base + 0xFFE8, 4), 0x30);
        // CTLR, STATUSR, WAKER, PROPBASER, PENDBASER: RAZ/WI.
        for off in [0x0u64, 0x10, 0x14, 0x70, 0x78] {
            g.redist_write(1, base + off, 4, 0xFFFF_FFFF, &mut NoPhys);
            assert_eq!(g.redist_read(1, base + off, 4), 0, "{off:#x}");
        }
        g.redist_write(1, base + 0x8, 8, u64::MAX, &mut NoPhys);
        assert_eq!(g.redist_read(0, base + 0x8, 8), typer, "TYPER is RO");
        // SGI frame RAZ/WI registers.
        for off in [0x80u64, 0xD00, 0xE00, 0xC00] {
            g.redist_write(1, base + SGI + off, 4, 0x5555_5555, &mut NoPhys);
        }
        assert_eq!(g.redist_read(1, base + SGI + 0x80, 4), 0, "IGROUPR0");
        assert_eq!(g.redist_read(1, base + SGI + 0xD00, 4), 0, "IGRPMODR0");
        assert_eq!(g.redist_read(1, base + SGI + 0xE00, 4), 0, "NSACR");
        assert_eq!(
            g.redist_read(1, base + SGI + 0xC00, 4),
            0xAAAA_AAAA,
            "ICFGR0: SGIs edge, RO"
        );
    }
    // Beyond the region.
    assert_eq!(g.redist_read(0, 4 * REDIST_STRIDE + 0x8, 8), 0);
    // Linux's scan: match TYPER affinity to MPIDR, stop at Last.
    let mut found = None;
    for v in 0..8u64 {
        let t = g.redist_read(0, v * REDIST_STRIDE + 8, 8);
        if t >> 32 == ((1 << 24) | 3) {
            found = Some(v);
        }
        if t & (1 << 4) != 0 {
            break;
        }
    }
    assert_eq!(found, Some(3));
}

#[test]
fn vgic_enable_pending_active_priority_round_trips() {
    let mut g = vgic4(64);
    // SPI enable: word and byte accesses, set/clear views agree.
    g.dist_write(0, 0x104, 4, 0x8000_0001, &mut NoPhys); // INTIDs 32, 63
    g.dist_write(0, 0x108, 1, 0x80, &mut NoPhys); // INTID 71
    assert_eq!(g.dist_read(0, 0x104, 4), 0x8000_0001);
    assert_eq!(g.dist_read(0, 0x184, 4), 0x8000_0001);
    assert_eq!(g.dist_read(0, 0x108, 4), 0x80);
    assert_eq!(g.dist_read(0, 0x107, 1), 0x80, "byte lane 3 of row 1");
    assert_eq!(
        g.dist_read(0, 0x100, 8),
        0x8000_0001 << 32,
        "64-bit covers two rows"
    );
    assert_eq!(g.dist_read(0, 0x108, 8), 0x80);
    assert_eq!(g.dist_read(0, 0x104, 8), 0, "misaligned: RAZ");
    assert!(g.is_enabled(3, 63) && g.is_enabled(0, 32) && !g.is_enabled(0, 33));
    g.dist_write(0, 0x184, 2, 0x1, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x104, 4), 0x8000_0000);
    // Pending and active.
    g.dist_write(0, 0x204, 4, 0x6, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x204, 4), 0x6);
    g.dist_write(0, 0x284, 4, 0x2, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x284, 4), 0x4);
    g.dist_write(0, 0x304, 4, 0x10, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x304, 4), 0x10);
    g.dist_write(0, 0x384, 4, 0x10, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x304, 4), 0);
    // Priority: word then byte then halfword.
    g.dist_write(0, 0x420, 4, 0xA0B0_C0D0, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x420, 4), 0xA0B0_C0D0);
    g.dist_write(0, 0x421, 1, 0x11, &mut NoPhys);
    g.dist_write(0, 0x422, 2, 0x3322, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0x420, 4), 0x3322_11D0);
    assert_eq!(g.dist_read(0, 0x423, 1), 0x33);
    assert_eq!(
        g.dist_read(0, 0x420, 8),
        0x3322_11D0,
        "INTIDs 36..39 still 0"
    );
    // ICFGR: edge bits only (odd bits); SPIs 32..47 in ICFGR2.
    g.dist_write(0, 0xC08, 4, 0xFFFF_FFFF, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0xC08, 4), 0xAAAA_AAAA);
    g.dist_write(0, 0xC08, 1, 0x00, &mut NoPhys);
    assert_eq!(g.dist_read(0, 0xC08, 4), 0xAAAA_AA00);

    // Redistributor: vCPU 0 writes vCPU 2's frame.
    let f2 = 2 * REDIST_STRIDE + SGI;
    g.redist_write(0, f2 + 0x100, 4, 0x0800_0002, &mut NoPhys); // SGI 1, PPI 27
    assert_eq!(g.redist_read(2, f2 + 0x100, 4), 0x0800_0002);
    assert_eq!(g.redist_read(2, f2 + 0x180, 4), 0x0800_0002);
    assert!(g.is_enabled(2, 27) && !g.is_enabled(0, 27));
    assert_eq!(g.redist_read(0, SGI + 0x100, 4), 0, "vCPU 0 untouched");
    g.redist_write(0, f2 + 0x180, 4, 0x2, &mut NoPhys);
    assert_eq!(g.redist_read(2, f2 + 0x100, 4), 0x0800_0000);
    g.redist_write(2, f2 + 0x200, 4, 0x1_0001, &mut NoPhys);
    assert_eq!(g.redist_read(2, f2 + 0x200, 4), 0x1_0001);
    g.redist_write(2, f2 + 0x280, 4, 0x1, &mut NoPhys);
    assert_eq!(g.redist_read(2, f2 + 0x280, 4), 0x1_0000);
    g.redist_write(2, f2 + 0x300, 4, 0x4, &mut NoPhys);
    assert_eq!(g.redist_read(2, f2 + 0x300, 4), 0x4);
    g.redist_write(2, f2 + 0x380, 4, 0x4, &mut NoPhys);
    assert_eq!(g.redist_read(2, f2 + 0x300, 4), 0);
    for i in 0..32u64 {
        g.redist_write(0, f2 + 0x400 + i, 1, 0x80 + i, &mut NoPhys);
    }
    assert_eq!(g.redist_read(0, f2 + 0x400, 4), 0x8382_8180);
    assert_eq!(g.redist_read(0, f2 + 0x41C, 4), 0x9F9E_9D9C);
    assert_eq!(g.redist_read(0, f2 + 0x41A, 2), 0x9B9A);
    assert_eq!(g.redist_read(0, f2 + 0x420, 4), 0, "past IPRIORITYR7");
    // ICFGR1 (PPIs) writable, ICFGR0 not.
    g.redist_write(0, f2 + 0xC04, 4, 0x0080_0000, &mut NoPhys); // PPI 27 edge
    assert_eq!(g.redist_read(0, f2 + 0xC04, 4), 0x0080_0000);
    g.redist_write(0, f2 + 0xC00, 4, 0, &mut NoPhys);
    assert_eq!(g.redist_read(0, f2 + 0xC00, 4), 0xAAAA_AAAA);
}

#[test]
fn vgic_irouter_routing_and_phys_mirroring() {
    let mut g = vgic4(64);
    assert!(g.map_hw(40, 40));
    assert!(!g.map_hw(96, 96), "beyond nr_spis");
    assert!(!g.map_hw(5, 5), "SGIs cannot be HW");
    assert!(!g.map_hw(40, 1020));
    let mut rec = Rec::default();
    let ir = |n: u64| 0x6000 + 8 * n;
    // 64-bit write to vCPU 3 (1.0.0.3).
    g.dist_write(0, ir(40), 8, 0x1_0000_0003, &mut rec);
    assert_eq!(g.dist_read(0, ir(40), 8), 0x1_0000_0003);
    assert_eq!(rec.0, [("route", 40, 3)]);
    rec.0.clear();
    // Non-HW SPI: no mirroring. 32-bit halves.
    g.dist_write(0, ir(41), 4, 0x100, &mut rec);
    g.dist_write(0, ir(41) + 4, 4, 0, &mut rec);
    assert_eq!(g.dist_read(0, ir(41), 8), 0x100);
    assert_eq!(g.dist_read(0, ir(41) + 4, 4), 0);
    assert!(rec.0.is_empty());
    // Reserved bits are dropped; IRM kept.
    g.dist_write(0, ir(42), 8, u64::MAX, &mut rec);
    assert_eq!(g.dist_read(0, ir(42), 8), 0xFF_80FF_FFFF);

    enable_grp1(&mut g);
    // Deliveries follow the routing.
    enable_spi(&mut g, 41);
    assert_eq!(
        g.inject(0, 41),
        Kick::vcpu(2),
        "vcpu argument ignored for SPIs"
    );
    assert!(g.has_pending(2) && !g.has_pending(0));
    // IRM = 1: vCPU 0.
    g.dist_write(0, ir(41), 8, 1 << 31, &mut rec);
    assert!(g.has_pending(0) && !g.has_pending(2));
    // Affinity matching no vCPU: value kept, delivered nowhere, HW not re-routed.
    g.dist_write(0, ir(41), 8, 0x0505, &mut rec);
    g.dist_write(0, ir(40), 8, 0x0505, &mut rec);
    assert_eq!(g.dist_read(0, ir(41), 8), 0x0505);
    assert!(rec.0.is_empty());
    assert!((0..4).all(|v| !g.has_pending(v)));
    assert_eq!(flush4(&mut g, 0).1.used, 0);
    // Routing it back to a vCPU kicks that vCPU.
    assert_eq!(g.dist_write(0, ir(41), 8, 0x1, &mut rec), Kick::vcpu(1));
    assert_eq!(ids(&flush4(&mut g, 1).0), [41]);

    // Enable / ICFGR mirroring for the HW SPI only.
    rec.0.clear();
    g.dist_write(0, 0x104, 4, (1 << 8) | (1 << 9), &mut rec); // INTIDs 40, 41
    g.dist_write(0, 0x184, 4, 1 << 8, &mut rec);
    g.dist_write(0, 0xC08, 4, 0x3 << 16, &mut rec); // INTID 40 edge (41 untouched)
    g.dist_write(0, 0xC08, 4, 0, &mut rec);
    assert_eq!(
        rec.0,
        [
            ("enable", 40, 1),
            ("enable", 40, 0),
            ("edge", 40, 1),
            ("edge", 40, 0)
        ]
    );
}

#[test]
fn vgic_sgi_targetlist_and_irm() {
    let mut g = vgic4(32);
    enable_grp1(&mut g);
    for v in 0..4 {
        enable_private(&mut g, v, 3);
    }
    // TargetList bits 0,1 with Aff1=0..: vCPUs 0 and 1.
    assert_eq!(g.send_sgi(0, (3 << 24) | 0b11), Kick(0b0011));
    // Aff1 = 1, bit 0: vCPU 2 (0.0.1.0).
    assert_eq!(g.send_sgi(0, (3 << 24) | (1 << 16) | 1), Kick(0b0100));
    // Aff3 = 1, bit 3: vCPU 3 (1.0.0.3).
    assert_eq!(
        g.send_sgi(0, (3 << 24) | (1 << 48) | (1 << 3)),
        Kick(0b1000)
    );
    // Aff3 = 1 but Aff0 bit 0: nobody; RS = 1 moves Aff0 range to 16..31.
    assert_eq!(g.send_sgi(0, (3 << 24) | (1 << 48) | 1), Kick::NONE);
    assert_eq!(g.send_sgi(0, (3 << 24) | (1 << 44) | 0xFFFF), Kick::NONE);
    // Re-sending an SGI that is already pending kicks nobody.
    assert_eq!(g.send_sgi(0, (3 << 24) | 0b11), Kick::NONE);
    for v in 0..4 {
        let (lrs, _) = flush4(&mut g, v);
        assert_eq!(ids(&lrs), [3], "vcpu {v}");
        let _ = g.sync(v, &[0; 4]);
    }
    // IRM: everyone but the sender.
    assert_eq!(g.send_sgi(2, (1 << 40) | (3 << 24)), Kick(0b1011));
    assert!(!g.has_pending(2) && g.has_pending(0) && g.has_pending(3));
    // A disabled SGI is latched but kicks nobody.
    assert_eq!(g.send_sgi(0, (5 << 24) | 0b10), Kick::NONE);
    assert_eq!(
        g.redist_read(0, REDIST_STRIDE + SGI + 0x200, 4),
        (1 << 5) | (1 << 3)
    );
    assert_eq!(enable_private(&mut g, 1, 5), Kick::vcpu(1));
}

#[test]
fn vgic_flush_priority_order_and_overflow() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    // Five interrupts for vCPU 1, one for vCPU 0.
    let set = [
        (1u32, 0xA0u8),
        (27, 0x80),
        (33, 0x80),
        (34, 0x20),
        (60, 0xF0),
    ];
    for &(i, p) in &set {
        set_prio(&mut g, 1, i, p);
        if i >= 32 {
            g.dist_write(0, 0x6000 + 8 * u64::from(i), 8, 1, &mut NoPhys);
            enable_spi(&mut g, i);
        } else {
            enable_private(&mut g, 1, i);
        }
        assert_eq!(g.inject(1, i), Kick::vcpu(1));
    }
    enable_private(&mut g, 0, 2);
    g.inject(0, 2);
    assert!(g.has_pending(1));

    let (lrs, out) = flush4(&mut g, 1);
    assert_eq!(ids(&lrs), [34, 27, 33, 1], "priority, then INTID");
    assert_eq!(out.used, 4);
    assert!(out.overflow && out.npie && out.uie);
    assert_eq!(out.ich_hcr_el2(), ICH_HCR_EN | ICH_HCR_UIE | ICH_HCR_NPIE);
    for &l in &lrs {
        let d = Lr::decode(l);
        assert_eq!(d.state, State::Pending);
        assert!(d.group1 && d.pintid.is_none() && !d.eoi);
        assert_eq!(d.priority, set.iter().find(|s| s.0 == d.vintid).unwrap().1);
    }
    // Listed latches moved into the LRs; INTID 60 is still pending.
    assert_eq!(g.dist_read(1, 0x204, 4), 1 << 28);
    // The guest took 34 and 27; the rest are still pending.
    let back = [
        with_state(lrs[0], State::Active),
        with_state(lrs[1], State::Active),
        lrs[2],
        lrs[3],
    ];
    assert_eq!(g.sync(1, &back), Kick::NONE);
    let (lrs, out) = flush4(&mut g, 1);
    assert_eq!(ids(&lrs), [34, 27, 33, 1], "active first");
    assert_eq!(lr::state(lrs[0]), State::Active);
    assert!(out.overflow);
    // All completed: 60 gets listed, no overflow.
    g.sync(1, &[0; 4]);
    let (lrs, out) = flush4(&mut g, 1);
    assert_eq!(ids(&lrs), [60]);
    assert_eq!(
        out,
        FlushOutcome {
            used: 1,
            overflow: false,
            uie: false,
            npie: false
        }
    );
    assert_eq!(out.ich_hcr_el2(), ICH_HCR_EN);
    g.sync(1, &[0; 4]);
    assert!(!g.has_pending(1));
    assert_eq!(ids(&flush4(&mut g, 0).0), [2]);

    // Group 1 disabled: nothing pending is listed.
    g.inject(1, 27);
    g.dist_write(0, 0, 4, 0, &mut NoPhys);
    assert!(!g.has_pending(1));
    assert_eq!(flush4(&mut g, 1).1.used, 0);
    // Fewer LRs than candidates; more than MAX_LRS LRs are handled.
    enable_grp1(&mut g);
    let mut one = [0u64; 1];
    g.inject(1, 1);
    let out = g.flush(1, &mut one);
    assert_eq!(
        (
            lr::vintid(one[0]),
            out.used,
            out.overflow,
            out.uie,
            out.npie
        ),
        (27, 1, true, false, true)
    );
    let mut many = [7u64; 20];
    let out = g.flush(1, &mut many); // no sync in between: previous LRs never loaded
    assert_eq!(out.used, 2);
    assert_eq!(ids(&many), [27, 1]);
    assert!(many[2..].iter().all(|&l| l == 0));
    let mut none: [u64; 0] = [];
    let out = g.flush(1, &mut none);
    assert!(out.overflow && out.used == 0);
}

#[test]
fn vgic_flush_hot_path_is_clean() {
    let mut g = vgic4(960);
    enable_grp1(&mut g);
    let (lrs, out) = flush4(&mut g, 0);
    assert_eq!(lrs, [0; 4]);
    assert_eq!(out, FlushOutcome::default());
    assert_eq!(g.sync(0, &lrs), Kick::NONE);
    // Disabled pending SPIs do not make words hot.
    g.inject(0, 500);
    assert_eq!(g.spi.hot, 0);
    enable_spi(&mut g, 500);
    assert_eq!(g.spi.hot, 1 << (500 / 64));
    assert_eq!(ids(&flush4(&mut g, 0).0), [500]);
    assert_eq!(g.spi.hot, 0, "latch moved into the LR");
    g.sync(0, &[0; 4]);
    assert_eq!(g.spi.hot, 0);
}

#[test]
fn vgic_sync_eoi_active_pending_and_merge() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    enable_spi(&mut g, 50);
    enable_private(&mut g, 0, 16);
    g.inject(0, 50);
    g.inject(0, 16);
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(ids(&lrs), [16, 50]);
    // While the vCPU runs, another edge for 16 arrives: kick vCPU 0 (it is listed).
    assert_eq!(g.inject(1, 16), Kick::NONE, "PPI 16 of vCPU 1 is disabled");
    assert_eq!(g.inject(0, 16), Kick::vcpu(0));
    // Guest acknowledged 16 (active), left 50 pending.
    g.sync(0, &[with_state(lrs[0], State::Active), lrs[1]]);
    assert_eq!(g.redist_read(0, SGI + 0x300, 4), 1 << 16, "16 active");
    assert_eq!(g.dist_read(0, 0x204, 4), 1 << 18, "50 pending again");
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(ids(&lrs), [16, 50]);
    assert_eq!(
        lr::state(lrs[0]),
        State::PendingActive,
        "new edge merged behind the active one"
    );
    assert_eq!(lr::state(lrs[1]), State::Pending);
    // Guest EOIs 16 (its pending copy remains), and completes 50.
    g.sync(0, &[with_state(lrs[0], State::Pending), 0]);
    assert_eq!(g.redist_read(0, SGI + 0x300, 4), 0);
    assert_eq!(g.dist_read(0, 0x304, 4), 0);
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(ids(&lrs), [16]);
    g.sync(0, &[with_state(lrs[0], State::Invalid)]);
    assert!(!g.has_pending(0));
    assert_eq!(flush4(&mut g, 0).1.used, 0);
}

/// Another vCPU's ISACTIVER/ICACTIVER/ICPENDR writes to interrupts this vCPU
/// has listed (the attack guest's redistributor sweep): the write wins over
/// the list register at the next sync, so no never-acknowledged active
/// interrupt stays listed for good (filling every LR: a new SGI was then
/// never delivered, the intermittent `gic_still_works` failure).
#[test]
fn vgic_cross_vcpu_active_and_pending_writes_win_over_lrs() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    let rd1 = REDIST_STRIDE + SGI;
    // vCPU 0 sets every private interrupt of vCPU 1 active; vCPU 1 then
    // exits for some reason and lists four of them (active, never acked).
    g.redist_write(0, rd1 + 0x300, 4, 0xffff_ffff, &mut NoPhys);
    let (lrs, out) = flush4(&mut g, 1);
    assert_eq!(out.used, 4);
    assert!(lrs.iter().all(|&l| lr::state(l) == State::Active));
    // vCPU 0 clears them all again: vCPU 1 is kicked.
    let k = g.redist_write(0, rd1 + 0x380, 4, 0xffff_ffff, &mut NoPhys);
    assert!(k.contains(1));
    // vCPU 1's LRs still say active (its guest never saw these): the clear wins.
    g.sync(1, &lrs);
    assert_eq!(g.redist_read(1, rd1 + 0x300, 4), 0);
    // An SGI now reaches vCPU 1.
    enable_private(&mut g, 1, 6);
    let _ = g.send_sgi(0, 1 << 1 | 6 << 24);
    let (lrs, _) = flush4(&mut g, 1);
    assert_eq!(ids(&lrs), [6]);
    assert_eq!(lr::state(lrs[0]), State::Pending);
    // ICPENDR while listed: the pending state goes at the sync.
    let k = g.redist_write(0, rd1 + 0x280, 4, 1 << 6, &mut NoPhys);
    assert!(k.contains(1));
    g.sync(1, &lrs);
    assert_eq!(g.redist_read(1, rd1 + 0x200, 4) & (1 << 6), 0);
    assert_eq!(flush4(&mut g, 1).1.used, 0);
    // ISACTIVER while listed pending: pending+active at the next flush.
    let _ = g.send_sgi(0, 1 << 1 | 6 << 24);
    let (lrs, _) = flush4(&mut g, 1);
    g.redist_write(0, rd1 + 0x300, 4, 1 << 6, &mut NoPhys);
    g.sync(1, &lrs);
    let (lrs, _) = flush4(&mut g, 1);
    assert_eq!(ids(&lrs), [6]);
    assert_eq!(lr::state(lrs[0]), State::PendingActive);
    // The vCPU's own view after it acknowledged: a later sync without a
    // write in between follows the LR again.
    g.sync(1, &[with_state(lrs[0], State::Active)]);
    let (lrs, _) = flush4(&mut g, 1);
    assert_eq!(lr::state(lrs[0]), State::Active);
    g.sync(1, &[with_state(lrs[0], State::Invalid)]);
    assert_eq!(g.redist_read(1, rd1 + 0x300, 4), 0);
}

#[test]
fn vgic_level_reassertion() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    enable_spi(&mut g, 33); // level-sensitive (reset)
    assert_eq!(g.set_level(3, 33, true), Kick::vcpu(0));
    assert_eq!(g.set_level(3, 33, true), Kick::NONE, "already high");
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(ids(&lrs), [33]);
    // Acked, line still high: pending+active next time.
    g.sync(0, &[with_state(lrs[0], State::Active)]);
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(lr::state(lrs[0]), State::PendingActive);
    // Device handler lowers the line (after sync, before flush).
    g.sync(0, &lrs);
    g.set_level(0, 33, false);
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(lr::state(lrs[0]), State::Active);
    // EOI'd with the line low: gone.
    g.sync(0, &[0]);
    assert_eq!(flush4(&mut g, 0).1.used, 0);
    // Line high again; guest EOIs without clearing the device: pending again.
    g.set_level(0, 33, true);
    let (lrs, _) = flush4(&mut g, 0);
    g.sync(0, &[with_state(lrs[0], State::Invalid)]);
    assert!(g.has_pending(0));
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(lr::state(lrs[0]), State::Pending);
    // The line drops while the vCPU runs with it listed: kick to retract.
    assert_eq!(g.set_level(1, 33, false), Kick::vcpu(0));
    g.sync(0, &lrs);
    assert!(
        !g.has_pending(0),
        "a still-pending LR of a level line does not latch"
    );
    assert_eq!(flush4(&mut g, 0).1.used, 0);
    // ISPENDR on a level interrupt latches until acknowledged.
    g.dist_write(0, 0x204, 4, 0x2, &mut NoPhys);
    let (lrs, _) = flush4(&mut g, 0);
    g.sync(0, &lrs);
    assert!(g.has_pending(0));
    let (lrs, _) = flush4(&mut g, 0);
    g.sync(0, &[with_state(lrs[0], State::Active)]);
    assert!(!g.has_pending(0));
    // An edge-configured interrupt latches on a rising line.
    g.dist_write(0, 0xC08, 4, 0x8, &mut NoPhys); // INTID 33 edge
    g.sync(0, &[]);
    g.set_level(0, 33, true);
    g.set_level(0, 33, false);
    assert!(g.has_pending(0));
}

#[test]
fn vgic_hw_mapped_lrs() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    assert!(g.map_hw(27, 27));
    assert!(g.map_hw(45, 45));
    enable_private(&mut g, 2, 27);
    set_prio(&mut g, 2, 27, 0xA0);
    enable_spi(&mut g, 45);
    g.dist_write(0, 0x6000 + 8 * 45, 8, 0x100, &mut NoPhys); // vCPU 2
    set_prio(&mut g, 0, 45, 0xA0);
    g.inject(2, 27);
    g.inject(0, 45);
    let (lrs, out) = flush4(&mut g, 2);
    assert_eq!(out.used, 2);
    assert_eq!(
        Lr::decode(lrs[0]),
        Lr {
            vintid: 27,
            pintid: Some(27),
            eoi: false,
            priority: 0xA0,
            group1: true,
            state: State::Pending
        }
    );
    assert_eq!(
        lrs[1],
        (1 << 62) | lr::HW | lr::GROUP1 | (0xA0 << 48) | (45 << 32) | 45
    );
    // Guest acks 27; a new injection arrives: HW LRs are never pending+active.
    g.sync(2, &[with_state(lrs[0], State::Active), 0]);
    assert_eq!(g.inject(2, 27), Kick::vcpu(2));
    let (lrs, out) = flush4(&mut g, 2);
    assert_eq!(lr::state(lrs[0]), State::Active);
    assert!(
        out.overflow && !out.npie && !out.uie,
        "only one HW active LR: nothing safe to arm"
    );
    assert_eq!(lrs[0] & lr::EOI, 0, "no EOI bit on a HW LR");
    // Deactivated by the guest (and so physically): the new one is delivered.
    g.sync(2, &[0]);
    let (lrs, _) = flush4(&mut g, 2);
    assert_eq!(lr::state(lrs[0]), State::Pending);
    g.sync(2, &[0]);

    // ICPENDR on a pending, inactive HW SPI deactivates the physical one.
    let mut rec = Rec::default();
    g.inject(0, 45);
    g.dist_write(0, 0x284, 4, 1 << 13, &mut rec);
    assert_eq!(rec.0, [("deactivate", 45, 0)]);
    // ICACTIVER on an active HW SPI too; on an inactive one nothing happens.
    rec.0.clear();
    g.dist_write(0, 0x384, 4, 1 << 13, &mut rec);
    assert!(rec.0.is_empty());
    g.dist_write(0, 0x304, 4, 1 << 13, &mut rec);
    g.dist_write(0, 0x384, 4, 1 << 13, &mut rec);
    assert_eq!(rec.0, [("deactivate", 45, 0)]);
}

#[test]
fn vgic_eoi_maintenance_when_only_active_listed() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    for i in 0..3 {
        enable_private(&mut g, 0, i);
        set_prio(&mut g, 0, i, 0x10 * i as u8);
        g.inject(0, i);
    }
    let mut two = [0u64; 2];
    g.flush(0, &mut two);
    let acked = [
        with_state(two[0], State::Active),
        with_state(two[1], State::Active),
    ];
    g.sync(0, &acked);
    let out = g.flush(0, &mut two);
    assert!(out.overflow && out.uie && !out.npie);
    assert!(two
        .iter()
        .all(|l| l & lr::EOI != 0 && lr::state(*l) == State::Active));
    // Sync drops the EOI bit's meaning: completing one frees room for SGI 2.
    g.sync(0, &[0, two[1]]);
    let out = g.flush(0, &mut two);
    assert_eq!(ids(&two), [1, 2]);
    assert!(!out.overflow);
}

#[test]
fn vgic_spi_reroute_while_active() {
    let mut g = vgic4(64);
    enable_grp1(&mut g);
    enable_spi(&mut g, 40);
    g.inject(0, 40);
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(ids(&lrs), [40]);
    // Guest on vCPU 1 re-routes 40 to vCPU 1 while vCPU 0 has it listed.
    assert_eq!(
        g.dist_write(1, 0x6000 + 8 * 40, 8, 1, &mut NoPhys),
        Kick::NONE
    );
    g.inject(0, 40); // a new edge: goes to the owner (listed on vCPU 0)
    assert_eq!(flush4(&mut g, 1).1.used, 0, "never listed twice");
    // vCPU 0 acknowledged it: stays with vCPU 0 until deactivated.
    assert_eq!(g.sync(0, &[with_state(lrs[0], State::Active)]), Kick::NONE);
    assert_eq!(flush4(&mut g, 1).1.used, 0);
    let (lrs, _) = flush4(&mut g, 0);
    assert_eq!(lr::state(lrs[0]), State::PendingActive);
    // Deactivated on vCPU 0 (its pending copy unacknowledged): released; vCPU 1 is kicked.
    assert_eq!(
        g.sync(0, &[with_state(lrs[0], State::Pending)]),
        Kick::vcpu(1)
    );
    assert_eq!(flush4(&mut g, 0).1.used, 0);
    assert_eq!(ids(&flush4(&mut g, 1).0), [40]);
}

#[test]
fn vgic_kicks() {
    let mut g = vgic4(64);
    // Group disabled: pending but not deliverable.
    enable_spi(&mut g, 35);
    assert_eq!(g.inject(0, 35), Kick::NONE);
    assert_eq!(
        g.dist_write(0, 0, 4, 2, &mut NoPhys),
        Kick(0xF),
        "enabling Group 1 kicks everyone"
    );
    assert_eq!(g.dist_write(0, 0, 4, 2, &mut NoPhys), Kick::NONE);
    // ISPENDR / ISENABLER.
    assert_eq!(
        g.dist_write(0, 0x204, 4, 1 << 3, &mut NoPhys),
        Kick::NONE,
        "35 already pending"
    );
    assert_eq!(
        g.dist_write(0, 0x104, 4, 1 << 4, &mut NoPhys),
        Kick::NONE,
        "36 not pending"
    );
    assert_eq!(
        g.dist_write(0, 0x204, 4, 1 << 4, &mut NoPhys),
        Kick::vcpu(0)
    );
    assert_eq!(
        g.dist_write(0, 0x204, 4, 1 << 5, &mut NoPhys),
        Kick::NONE,
        "37 disabled"
    );
    assert_eq!(
        g.dist_write(0, 0x104, 4, 1 << 5, &mut NoPhys),
        Kick::vcpu(0)
    );
    assert_eq!(
        g.dist_write(0, 0x104, 4, 1 << 5, &mut NoPhys),
        Kick::NONE,
        "already enabled"
    );
    // Private ISPENDR through another vCPU's frame.
    enable_private(&mut g, 3, 20);
    assert_eq!(
        g.redist_write(0, 3 * REDIST_STRIDE + SGI + 0x200, 4, 1 << 20, &mut NoPhys),
        Kick::vcpu(3)
    );
    // Unknown INTIDs and vCPUs.
    assert_eq!(g.inject(9, 3), Kick::NONE);
    assert_eq!(g.inject(0, 96), Kick::NONE);
    assert_eq!(g.inject(0, 1023), Kick::NONE);
    assert_eq!(g.set_level(0, 2, true), Kick::NONE);
    assert!(!g.is_enabled(7, 20) && !g.is_enabled(0, 5000));
    assert!(!g.has_pending(64));
    let mut lrs = [1u64; 4];
    assert_eq!(g.flush(64, &mut lrs), FlushOutcome::default());
    assert_eq!(lrs, [0; 4]);
    assert_eq!(g.sync(64, &lrs), Kick::NONE);
}

/// Deterministic xorshift64.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Invariants that must hold whatever the guest did.
fn check_invariants(g: &mut Vgic) {
    for v in 0..g.nr_vcpus() {
        let mut lrs = [0u64; 4];
        let out = g.flush(v, &mut lrs);
        assert!(out.used <= 4);
        let listed = ids(&lrs);
        for (i, a) in listed.iter().enumerate() {
            assert!(*a < 32 + g.nr_spis());
            assert!(!listed[i + 1..].contains(a), "listed twice");
        }
        for l in &lrs[out.used..] {
            assert_eq!(*l, 0);
        }
        let _ = g.sync(v, &lrs);
    }
    // No SPI is listed on two vCPUs at once.
    let mut all = Vec::new();
    let mut sets = Vec::new();
    for v in 0..g.nr_vcpus() {
        let mut lrs = [0u64; 4];
        g.flush(v, &mut lrs);
        sets.push(lrs);
        all.extend(ids(&lrs).into_iter().filter(|&i| i >= 32));
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "SPI in two vCPUs' LRs");
    for (v, lrs) in sets.iter().enumerate() {
        let _ = g.sync(v, lrs);
    }
}

#[test]
fn vgic_hostile_every_offset_every_size() {
    let mut g = vgic4(64);
    g.map_hw(40, 40);
    g.map_hw(27, 27);
    let mut phys = Count::default();
    let vals = [u64::MAX, 0, 0x5555_5555_5555_5555];
    for size in [1u8, 2, 3, 4, 5, 8, 16, 0, 255] {
        for off in 0..0x1_0010u64 {
            let v = vals[(off as usize / 4) % vals.len()];
            let _ = g.dist_read(0, off, size);
            let _ = g.dist_write((off % 5) as usize, off, size, v, &mut phys);
        }
        let region = g.redist_region_size();
        for off in (0..region + 0x100).step_by(if size == 1 { 1 } else { 2 }) {
            let v = vals[(off as usize / 4) % vals.len()];
            let _ = g.redist_read(0, off, size);
            let _ = g.redist_write(7, off, size, v, &mut phys);
        }
    }
    for off in [u64::MAX, u64::MAX - 7, 1 << 63, 0x1_0000_0000] {
        assert_eq!(g.dist_read(0, off, 8), 0);
        assert_eq!(g.redist_read(0, off, 8), 0);
        g.dist_write(0, off, 8, u64::MAX, &mut phys);
        g.redist_write(0, off, 8, u64::MAX, &mut phys);
    }
    check_invariants(&mut g);
    // The ID registers survived.
    assert_eq!(g.dist_read(0, 0xFFE8, 4), 0x30);
    assert_eq!(
        g.redist_read(0, 3 * REDIST_STRIDE + 8, 8) & (1 << 4),
        1 << 4
    );
}

#[test]
fn vgic_hostile_fuzz() {
    for seed in 1..=4u64 {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ seed);
        let nr_spis = [0u32, 32, 100, 988][seed as usize - 1];
        let mut g = Vgic::new(VgicConfig {
            nr_vcpus: seed as usize,
            nr_spis,
            vcpu_mpidr: (0..seed).map(|i| i * 0x101).collect(),
        });
        g.map_hw(27, 27);
        for i in 32..32 + nr_spis.min(64) {
            g.map_hw(i, i);
        }
        let mut phys = Count::default();
        let mut lrs = [[0u64; 4]; 4];
        for _ in 0..40_000 {
            let r = rng.next();
            let v = (rng.next() % 6) as usize; // sometimes out of range
            let size = [1u8, 2, 4, 8, 3][(r % 5) as usize];
            let val = rng.next();
            // Bias offsets toward the interesting registers.
            let dist_off = match r >> 60 {
                0..=5 => 0x100 + (rng.next() % 0x400),
                6..=7 => 0x6000 + (rng.next() % 0x2000),
                8 => rng.next() % 0x1_0000,
                _ => rng.next() % 0x100,
            };
            let redist_off = (rng.next() % 5) * REDIST_STRIDE + 0x1_0000 + (rng.next() % 0x500);
            let intid = (rng.next() % 1100) as u32;
            match (r >> 8) % 12 {
                0 => drop(g.dist_read(v, dist_off, size)),
                1 | 2 => drop(g.dist_write(v, dist_off, size, val, &mut phys)),
                3 => drop(g.redist_read(v, redist_off, size)),
                4 | 5 => drop(g.redist_write(v, redist_off, size, val, &mut phys)),
                6 => drop(g.inject(v, intid)),
                7 => drop(g.set_level(v, intid, val & 1 != 0)),
                8 => drop(g.send_sgi(v, val)),
                9 => {
                    if v < 4 {
                        g.flush(v, &mut lrs[v]);
                    }
                }
                10 => {
                    if v < 4 {
                        // The guest moves LR states arbitrarily (never the vINTID).
                        let mut back = lrs[v];
                        for l in back.iter_mut() {
                            *l = with_state(*l, State::from_bits(rng.next()));
                        }
                        let k = g.sync(v, &back);
                        assert_eq!(k.0 >> g.nr_vcpus(), 0);
                    }
                }
                _ => {
                    let _ = g.has_pending(v);
                    let _ = g.is_enabled(v, intid);
                }
            }
        }
        for (v, l) in lrs.iter().enumerate().take(g.nr_vcpus()) {
            let _ = g.sync(v, l);
        }
        check_invariants(&mut g);
    }
}
