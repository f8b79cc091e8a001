//! The host device tree is untrusted input: the defensive reader, the boot
//! facts taken from it, dom0's DTB built from it and the pass-through list
//! derived from that. Malformed input must give `DtError`, never a panic,
//! and the results must keep the properties the modules document.
#![no_main]

use hv_core::bootinfo::BootInfo;
use hv_core::dt::reader::{cells, parse_pairs, read_cells, str_list};
use hv_core::dt::{build_dom0_dtb, dom0_passthrough, Dom0DtConfig, Fdt, HypervisorNode, Passthrough};
use hv_core::mem::Range;
use libfuzzer_sys::fuzz_target;

const GICR_FRAME: u64 = 0x2_0000;

fuzz_target!(|data: &[u8]| {
    walk(data);
    // The pass-through scan also runs on whatever it is given.
    if let Ok(pt) = dom0_passthrough(data, &[]) {
        check_passthrough(&pt, &[]);
    }
    let Ok(bi) = BootInfo::parse(data) else {
        return;
    };
    let _ = (bi.kernel(), bi.ramdisk());
    for w in bi.ram.windows(2) {
        assert!(w[0].start <= w[1].start, "RAM banks not sorted: {:?}", bi.ram);
    }
    assert!(bi.ram.iter().all(|r| !r.is_empty()));
    let Some(gic) = bi.gic.as_ref() else {
        return;
    };
    let _ = gic;

    // What hv/src/dom0.rs does: one bank of dom0 RAM, vCPUs, the initrd.
    let bank = bi.ram.first().map_or(Range::new(0x4000_0000, 0x2000_0000), |r| {
        Range::new(r.start & !0x1f_ffff, r.size.min(0x2000_0000).max(0x20_0000))
    });
    let nr_vcpus = (bi.cpus.len() as u32).clamp(1, hv_core::dt::MAX_DOM0_VCPUS);
    let initrd = bi.ramdisk().map(|m| m.range);
    let hide = ["/hide-me", "/chosen", "/"];
    let cfg = Dom0DtConfig {
        host_dtb: data,
        mem_banks: core::slice::from_ref(&bank),
        nr_vcpus,
        bootargs: bi.dom0_cmdline,
        initrd,
        gicr_size: u64::from(nr_vcpus) * GICR_FRAME,
        hide_paths: &hide,
        hypervisor: Some(HypervisorNode {
            grant_table: Range::new(0x3800_0000, 64 * 4096),
            extended: Vec::new(),
            evtchn_ppi_intid: 31,
        }),
    };
    let Ok(dtb) = build_dom0_dtb(&cfg) else {
        return;
    };
    // Our own output must read back.
    let t = Fdt::parse(&dtb).expect("dom0 DTB does not parse");
    walk(&dtb);
    assert!(t.find_path("/hypervisor").is_some(), "no /hypervisor in dom0 DTB");
    let mut exclude: Vec<Range> = bi.ram.clone();
    if let Some(u) = &bi.uart {
        exclude.push(Range::new(u.base & !0xfff, 0x1000));
    }
    if let Ok(pt) = dom0_passthrough(&dtb, &exclude) {
        check_passthrough(&pt, &exclude);
        // Never the GIC.
        for r in &pt.mmio {
            assert!(!r.overlaps(&gic.dist), "GICD {:?} passed through as {r:?}", gic.dist);
        }
    }
});

/// Every query of the reader on every node.
fn walk(data: &[u8]) {
    let Ok(t) = Fdt::parse(data) else {
        return;
    };
    assert!(!t.is_empty());
    for id in t.ids() {
        let n = t.node(id);
        let _ = n.base_name();
        let p = t.path(id);
        assert!(p.starts_with('/'));
        let _ = t.find_path(&p);
        let _ = t.resolve_path_or_alias(&p);
        let _ = t.resolve_path_or_alias(n.name);
        let _ = (t.is_available(id), t.phandle(id), t.first_compatible(id));
        let _ = (t.address_cells(id), t.size_cells(id), t.interrupt_cells(id), t.interrupt_parent(id));
        if let Ok(regs) = t.reg(id) {
            if ferrovisor_fuzz::debug() {
                eprintln!("{p}: reg {regs:x?} raw {:x?} avail {}", t.reg_raw(id), t.is_available(id));
            }
            for r in regs {
                let _ = t.translate(id, r);
            }
        }
        let _ = t.reg_raw(id);
        for p in &n.props {
            let _ = str_list(p.value).count();
            let _ = cells(p.value).count();
            for (ac, sc) in [(1, 1), (2, 2), (2, 1), (0, 0), (3, 2), (u32::MAX, 1)] {
                let _ = parse_pairs(p.value, ac, sc);
            }
            for (at, n) in [(0, 1), (0, 2), (1, 2), (0, 3), (u32::MAX, 2)] {
                let _ = read_cells(p.value, at, n);
            }
        }
        if let Some(ph) = t.phandle(id) {
            assert!(t.by_phandle(ph).is_some());
        }
    }
}

/// [`dom0_passthrough`]'s documented output: page-aligned, sorted, merged
/// MMIO that never overlaps `exclude`; sorted SPI INTIDs.
fn check_passthrough(pt: &Passthrough, exclude: &[Range]) {
    for r in &pt.mmio {
        assert!(!r.is_empty(), "{:?}", pt.mmio);
        assert_eq!(r.start % 4096, 0, "{:?}", pt.mmio);
        assert!(r.size % 4096 == 0 || r.end().is_none(), "{:?}", pt.mmio);
        for e in exclude.iter().filter(|e| !e.is_empty()) {
            assert!(!r.overlaps(e), "{r:?} overlaps excluded {e:?}");
        }
    }
    for w in pt.mmio.windows(2) {
        let end = w[0].end().expect("a range that runs to 2^64 must be last");
        assert!(end < w[1].start, "MMIO not sorted/merged: {:?}", pt.mmio);
    }
    for w in pt.spis.windows(2) {
        assert!(w[0].0 < w[1].0, "SPIs not sorted: {:?}", pt.spis);
    }
    for &(intid, _) in &pt.spis {
        assert!((32..1020).contains(&intid), "SPI INTID {intid}");
    }
}
