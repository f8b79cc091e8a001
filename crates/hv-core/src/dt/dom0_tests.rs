//! dom0 DTB round trip (checked with the independent `fdt` crate),
//! passthrough lists, and robustness of every DTB consumer against
//! truncated, corrupted and garbage blobs.

use super::reader::{cells, Fdt};
use super::*;
use crate::bootinfo::tests::{host_dtb, QEMU_VIRT};
use crate::bootinfo::BootInfo;
use crate::mem::Range;
use alloc::vec;
use alloc::vec::Vec;

const M: u64 = 1 << 20;

fn cfg<'a>(
    host: &'a [u8],
    banks: &'a [Range],
    hide: &'a [&'a str],
    nr_vcpus: u32,
) -> Dom0DtConfig<'a> {
    Dom0DtConfig {
        host_dtb: host,
        mem_banks: banks,
        nr_vcpus,
        bootargs: "console=hvc0 earlycon=xenboot",
        initrd: Some(Range::new(0x7c00_0000, 0x2000)),
        gicr_size: u64::from(nr_vcpus) * 0x2_0000,
        hide_paths: hide,
        hypervisor: Some(HypervisorNode {
            grant_table: Range::new(0x4020_0000, 0x4_0000),
            extended: vec![Range::new(0x1_0000_0000, 0x40_0000_0000)],
            evtchn_ppi_intid: 31,
        }),
    }
}

fn u32s(v: &[u8]) -> Vec<u32> {
    cells(v).collect()
}

fn prop<'a>(f: &'a fdt::Fdt<'a>, path: &str, name: &str) -> Option<&'a [u8]> {
    f.find_node(path)?.property(name).map(|p| p.value)
}

#[test]
fn dom0_tree_round_trip() {
    let banks = [Range::new(0x6000_0000, 512 * M)];
    let hide = ["/gpio-keys", "/does/not/exist"];
    let out = build_dom0_dtb(&cfg(QEMU_VIRT, &banks, &hide, 2)).unwrap();
    let f = fdt::Fdt::new(&out).unwrap();
    let names: Vec<&str> = f
        .find_node("/")
        .unwrap()
        .children()
        .map(|n| n.name)
        .collect();

    // Root keeps its interrupt-parent and other properties.
    assert_eq!(u32s(prop(&f, "/", "interrupt-parent").unwrap()), [0x8003]);
    assert_eq!(prop(&f, "/", "model").unwrap(), b"linux,dummy-virt\0");

    // Memory: exactly one regenerated node.
    let mem: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("memory"))
        .collect();
    assert_eq!(mem, ["memory@60000000"]);
    assert_eq!(
        prop(&f, "/memory@60000000", "device_type").unwrap(),
        b"memory\0"
    );
    assert_eq!(
        u32s(prop(&f, "/memory@60000000", "reg").unwrap()),
        [0, 0x6000_0000, 0, 0x2000_0000]
    );

    // CPUs.
    assert_eq!(u32s(prop(&f, "/cpus", "#address-cells").unwrap()), [1]);
    assert_eq!(u32s(prop(&f, "/cpus", "#size-cells").unwrap()), [0]);
    let cpus: Vec<&str> = f
        .find_node("/cpus")
        .unwrap()
        .children()
        .map(|n| n.name)
        .collect();
    assert_eq!(cpus, ["cpu@0", "cpu@1"], "cpu-map and host cpus gone");
    assert_eq!(u32s(prop(&f, "/cpus/cpu@1", "reg").unwrap()), [1]);
    assert_eq!(
        prop(&f, "/cpus/cpu@1", "compatible").unwrap(),
        b"arm,armv8\0"
    );
    assert_eq!(prop(&f, "/cpus/cpu@1", "enable-method").unwrap(), b"psci\0");
    assert_eq!(prop(&f, "/cpus/cpu@1", "device_type").unwrap(), b"cpu\0");

    // PSCI: regenerated, HVC conduit.
    assert_eq!(names.iter().filter(|n| **n == "psci").count(), 1);
    assert_eq!(
        prop(&f, "/psci", "compatible").unwrap(),
        b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0"
    );
    assert_eq!(prop(&f, "/psci", "method").unwrap(), b"hvc\0");
    assert_eq!(u32s(prop(&f, "/psci", "cpu_off").unwrap()), [0x8400_0002]);
    assert_eq!(u32s(prop(&f, "/psci", "cpu_on").unwrap()), [0xc400_0003]);
    assert!(prop(&f, "/psci", "migrate").is_none());

    // /chosen.
    let chosen = f.find_node("/chosen").unwrap();
    assert_eq!(chosen.children().count(), 0, "boot modules removed");
    assert_eq!(
        prop(&f, "/chosen", "bootargs").unwrap(),
        b"console=hvc0 earlycon=xenboot\0"
    );
    assert_eq!(
        prop(&f, "/chosen", "linux,initrd-start").unwrap(),
        0x7c00_0000u64.to_be_bytes()
    );
    assert_eq!(
        prop(&f, "/chosen", "linux,initrd-end").unwrap(),
        0x7c00_2000u64.to_be_bytes()
    );
    assert_eq!(
        prop(&f, "/chosen", "stdout-path").unwrap(),
        b"/pl011@9000000\0"
    );
    assert!(
        prop(&f, "/chosen", "kaslr-seed").is_some() && prop(&f, "/chosen", "rng-seed").is_some()
    );
    assert!(chosen.properties().all(|p| !p.name.starts_with("xen,")));

    // GIC: GICD + one redistributor region sized for dom0, no maintenance IRQ, no ITS.
    assert_eq!(
        u32s(prop(&f, "/intc@8000000", "reg").unwrap()),
        [0, 0x800_0000, 0, 0x1_0000, 0, 0x80a_0000, 0, 0x4_0000]
    );
    assert_eq!(
        u32s(prop(&f, "/intc@8000000", "#redistributor-regions").unwrap()),
        [1]
    );
    assert_eq!(
        u32s(prop(&f, "/intc@8000000", "phandle").unwrap()),
        [0x8003]
    );
    assert!(prop(&f, "/intc@8000000", "interrupts").is_none());
    assert!(prop(&f, "/intc@8000000", "interrupt-controller").is_some());
    assert_eq!(f.find_node("/intc@8000000").unwrap().children().count(), 0);

    // Timer: guest PPIs 13/14/11 with the host's flags, hypervisor PPI dropped.
    assert_eq!(
        u32s(prop(&f, "/timer", "interrupts").unwrap()),
        [1, 13, 4, 1, 14, 4, 1, 11, 4]
    );
    assert!(prop(&f, "/timer", "always-on").is_some());

    // Removed nodes and properties.
    for gone in ["pmu", "gpio-keys", "flash", "platform-bus"] {
        let present = names.iter().any(|n| n.split('@').next() == Some(gone));
        assert_eq!(present, matches!(gone, "flash" | "platform-bus"), "{gone}");
    }
    for n in f.all_nodes() {
        for p in n.properties() {
            assert!(
                !matches!(p.name, "msi-parent" | "msi-map" | "msi-map-mask"),
                "{} on {}",
                p.name,
                n.name
            );
        }
        assert_ne!(
            n.compatible().and_then(|c| c.all().next()),
            Some("arm,gic-v3-its")
        );
    }
    assert!(prop(&f, "/pcie@10000000", "interrupt-map").is_some());
    assert!(
        prop(&f, "/pl011@9000000", "reg").is_some(),
        "UART stays (emulated PL011)"
    );

    // /hypervisor.
    assert_eq!(names.iter().filter(|n| **n == "hypervisor").count(), 1);
    assert_eq!(
        prop(&f, "/hypervisor", "compatible").unwrap(),
        b"xen,xen-4.17\0xen,xen\0"
    );
    assert_eq!(
        u32s(prop(&f, "/hypervisor", "reg").unwrap()),
        [0, 0x4020_0000, 0, 0x4_0000, 1, 0, 0x40, 0]
    );
    assert_eq!(
        u32s(prop(&f, "/hypervisor", "interrupts").unwrap()),
        [1, 15, 0xf08]
    );
    assert_eq!(
        u32s(prop(&f, "/hypervisor", "interrupt-parent").unwrap()),
        [0x8003]
    );

    // Our own reader agrees and the result is a fixpoint-friendly input:
    // rebuilding from the dom0 tree gives the same tree.
    let again = build_dom0_dtb(&cfg(&out, &banks, &hide, 2)).unwrap();
    assert_eq!(again, out);
    assert_eq!(Fdt::parse(&out).unwrap().len(), f.all_nodes().count());
}

#[test]
fn dom0_tree_many_vcpus_and_options() {
    let banks = [
        Range::new(0x6000_0000, 256 * M),
        Range::new(0x1_0000_0000, 256 * M),
    ];
    let mut c = cfg(QEMU_VIRT, &banks, &[], 18);
    c.initrd = None;
    c.hypervisor = None;
    c.bootargs = "";
    let out = build_dom0_dtb(&c).unwrap();
    let f = fdt::Fdt::new(&out).unwrap();
    let cpus: Vec<&str> = f
        .find_node("/cpus")
        .unwrap()
        .children()
        .map(|n| n.name)
        .collect();
    assert_eq!(cpus.len(), 18);
    assert_eq!(cpus[15], "cpu@f");
    assert_eq!(cpus[16], "cpu@100");
    assert_eq!(u32s(prop(&f, "/cpus/cpu@101", "reg").unwrap()), [0x101]);
    assert_eq!(
        u32s(prop(&f, "/memory@60000000", "reg").unwrap()),
        [0, 0x6000_0000, 0, 0x1000_0000, 1, 0, 0, 0x1000_0000]
    );
    assert!(f.find_node("/hypervisor").is_none());
    for p in ["bootargs", "linux,initrd-start", "linux,initrd-end"] {
        assert!(prop(&f, "/chosen", p).is_none(), "{p}");
    }
    assert!(f.find_node("/gpio-keys").is_some());
    assert_eq!(
        u32s(prop(&f, "/intc@8000000", "reg").unwrap())[4..],
        [0, 0x80a_0000, 0, 18 * 0x2_0000]
    );
}

#[test]
fn dom0_config_errors() {
    let banks = [Range::new(0x6000_0000, 512 * M)];
    let base = || cfg(QEMU_VIRT, &banks, &[], 2);
    let mut c = base();
    c.nr_vcpus = 0;
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    c.nr_vcpus = MAX_DOM0_VCPUS + 1;
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    let mut c = base();
    c.mem_banks = &[];
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    let mut c = base();
    c.hypervisor.as_mut().unwrap().evtchn_ppi_intid = 32;
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    let mut c = base();
    c.initrd = Some(Range::new(u64::MAX, 2));
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    let mut c = base();
    c.gicr_size = 0;
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    let mut c = base();
    c.bootargs = "a\0b";
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::BadConfig(_))));
    // Root with #address-cells = 1 cannot describe RAM above 4 GiB.
    let host = {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let r = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        let g = w.begin_node("gic").unwrap();
        w.property_string("compatible", "arm,gic-v3").unwrap();
        w.property_array_u32("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000])
            .unwrap();
        w.end_node(g).unwrap();
        w.end_node(r).unwrap();
        w.finish().unwrap()
    };
    let high = [Range::new(0x1_0000_0000, M)];
    let mut c = cfg(&host, &high, &[], 1);
    c.hypervisor = None;
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::CellOverflow)));
    c.mem_banks = &banks;
    assert!(build_dom0_dtb(&c).is_ok());
    // Without a GIC phandle there is nothing for /hypervisor's interrupt-parent.
    c.hypervisor = base().hypervisor;
    assert!(matches!(build_dom0_dtb(&c), Err(DtError::Missing(_))));
    // No GICv3 at all.
    let synth = host_dtb(|_| {});
    let c = cfg(&synth, &banks, &[], 1);
    assert!(
        build_dom0_dtb(&c).is_ok(),
        "synthetic host has a GICv3 with a phandle"
    );
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let r = w.begin_node("").unwrap();
    w.end_node(r).unwrap();
    let nogic = w.finish().unwrap();
    assert!(matches!(
        build_dom0_dtb(&cfg(&nogic, &banks, &[], 1)),
        Err(DtError::Missing(_))
    ));
}

fn covers(mmio: &[Range], r: Range) -> bool {
    mmio.iter().any(|m| m.contains_range(&r))
}

fn touches(mmio: &[Range], r: Range) -> bool {
    mmio.iter().any(|m| m.overlaps(&r))
}

#[test]
fn passthrough_of_qemu_virt() {
    let banks = [Range::new(0x6000_0000, 512 * M)];
    let dom0 = build_dom0_dtb(&cfg(QEMU_VIRT, &banks, &[], 2)).unwrap();
    let uart = Range::new(0x900_0000, 0x1000);
    let host_ram = Range::new(0x4000_0000, 0x8000_0000);
    let p = dom0_passthrough(&dom0, &[uart, host_ram]).unwrap();

    // Page-aligned, sorted, merged.
    for w in p.mmio.windows(2) {
        assert!(w[0].end().unwrap() < w[1].start);
    }
    assert!(p
        .mmio
        .iter()
        .all(|r| r.start % 4096 == 0 && r.size % 4096 == 0));

    assert!(covers(&p.mmio, Range::new(0x901_0000, 0x1000)), "PL031 RTC");
    assert!(covers(&p.mmio, Range::new(0x902_0000, 0x1000)), "fw-cfg");
    assert!(covers(&p.mmio, Range::new(0x903_0000, 0x1000)), "PL061");
    assert!(
        covers(&p.mmio, Range::new(0xa00_0000, 0x4000)),
        "32 virtio-mmio slots"
    );
    assert!(
        covers(&p.mmio, Range::new(0, 0x800_0000)),
        "both flash banks"
    );
    assert!(
        covers(&p.mmio, Range::new(0x40_1000_0000, 0x1000_0000)),
        "PCIe ECAM"
    );
    assert!(
        covers(&p.mmio, Range::new(0x3eff_0000, 0x1_0000)),
        "PCIe I/O window"
    );
    assert!(
        covers(&p.mmio, Range::new(0x1000_0000, 0x2eff_0000)),
        "PCIe 32-bit MMIO window"
    );
    assert!(
        covers(&p.mmio, Range::new(0x80_0000_0000, 0x80_0000_0000)),
        "PCIe 64-bit MMIO window"
    );

    assert!(!touches(&p.mmio, uart), "hypervisor UART");
    assert!(!touches(&p.mmio, Range::new(0x800_0000, 0x1_0000)), "GICD");
    assert!(!touches(&p.mmio, Range::new(0x808_0000, 0x2_0000)), "ITS");
    assert!(!touches(&p.mmio, Range::new(0x80a_0000, 0xf6_0000)), "GICR");
    assert!(!touches(&p.mmio, host_ram), "RAM");
    assert!(
        !touches(&p.mmio, Range::new(0x4020_0000, 0x4_0000)),
        "grant-table window"
    );

    let spi = |i: u32| p.spis.iter().find(|s| s.0 == i).map(|s| s.1);
    assert_eq!(spi(33), None, "UART SPI stays with the hypervisor");
    assert_eq!(spi(34), Some(false), "PL031 level");
    assert_eq!(spi(39), Some(false), "PL061 level");
    for i in 48..80 {
        assert_eq!(spi(i), Some(true), "virtio-mmio {i} edge");
    }
    for i in 35..39 {
        assert_eq!(spi(i), Some(false), "PCI INTx {i}");
    }
    assert!(p.spis.iter().all(|s| (32..1020).contains(&s.0)));
    assert_eq!(p.spis.len(), 1 + 1 + 32 + 4);
    for w in p.spis.windows(2) {
        assert!(w[0].0 < w[1].0);
    }

    // On the raw host tree too (GIC subtree incl. ITS skipped, memory excluded).
    let h = dom0_passthrough(QEMU_VIRT, &[uart]).unwrap();
    assert!(!touches(&h.mmio, Range::new(0x808_0000, 0x2_0000)));
    assert!(!touches(&h.mmio, host_ram));
    assert_eq!(h.spis, p.spis);
}

#[test]
fn passthrough_translates_simple_bus() {
    let host = host_dtb(|_| {});
    let p = dom0_passthrough(&host, &[]).unwrap();
    assert_eq!(p.mmio, [Range::new(0x1c00_1000, 0x1000)]);
    assert_eq!(p.spis, [(37, false)]);
    let p = dom0_passthrough(&host, &[Range::new(0x1c00_1800, 4)]).unwrap();
    assert!(p.mmio.is_empty() && p.spis.is_empty());
}

/// Fuzz regression (dt_reader): device `reg`s that together cover the whole
/// 64-bit space merged into a range clamped one byte short of 2^64, so the
/// pass-through list was no longer page-aligned.
#[test]
fn passthrough_covering_the_whole_address_space_stays_page_aligned() {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    let g = w.begin_node("interrupt-controller@2f000000").unwrap();
    w.property_string("compatible", "arm,gic-v3").unwrap();
    w.property_u32("#interrupt-cells", 3).unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_array_u64("reg", &[0x2f00_0000, 0x1_0000, 0x2f10_0000, 0x20_0000]).unwrap();
    w.property_u32("phandle", 1).unwrap();
    w.end_node(g).unwrap();
    let d = w.begin_node("low@0").unwrap();
    w.property_array_u64("reg", &[0, 0x1000]).unwrap();
    w.end_node(d).unwrap();
    // Starts at 4 KiB and wraps past 2^64: covered up to the top.
    let d = w.begin_node("wraps@1000").unwrap();
    w.property_array_u64("reg", &[0x1000, u64::MAX]).unwrap();
    w.end_node(d).unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    let p = dom0_passthrough(&blob, &[]).unwrap();
    assert!(!p.mmio.is_empty());
    for r in &p.mmio {
        assert_eq!(r.start % 0x1000, 0, "{:x?}", p.mmio);
        assert_eq!(r.size % 0x1000, 0, "{:x?}", p.mmio);
        assert!(!r.overlaps(&Range::new(0x2f00_0000, 0x1_0000)), "{:x?}", p.mmio);
    }
    assert_eq!(p.mmio.last().unwrap().last(), Some(u64::MAX - 0x1000), "{:x?}", p.mmio);
}

/// Feed every consumer; it may fail but must not panic or hang.
fn consume_all(blob: &[u8]) {
    let _ = Fdt::parse(blob);
    let _ = BootInfo::parse(blob);
    let banks = [Range::new(0x6000_0000, 512 * M)];
    let _ = build_dom0_dtb(&cfg(blob, &banks, &["/pl061@9030000"], 2));
    let _ = dom0_passthrough(blob, &[Range::new(0x900_0000, 0x1000)]);
}

#[test]
fn truncated_fixture_never_panics() {
    for len in 0..QEMU_VIRT.len() {
        let blob = &QEMU_VIRT[..len];
        assert!(Fdt::parse(blob).is_err(), "len {len}");
        consume_all(blob);
        // Also with the header patched to claim the truncated size, so the
        // parser gets past the size check into the blocks.
        if len >= 40 {
            let mut b = blob.to_vec();
            b[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            consume_all(&b);
        }
    }
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[test]
fn corrupted_fixture_never_panics() {
    // Token-aligned overwrites with interesting values across the whole blob.
    let vals: [u32; 6] = [0, 1, 2, 3, 9, 0xffff_ffff];
    for off in (0..QEMU_VIRT.len() - 4).step_by(4) {
        for (i, v) in vals.iter().enumerate() {
            if (off / 4 + i) % 3 != 0 {
                continue; // keep the run time reasonable in debug builds
            }
            let mut b = QEMU_VIRT.to_vec();
            b[off..off + 4].copy_from_slice(&v.to_be_bytes());
            consume_all(&b);
        }
    }
    // Random multi-byte mutations.
    let mut s = 0x1234_5678_9abc_def1u64;
    for _ in 0..1500 {
        let mut b = QEMU_VIRT.to_vec();
        for _ in 0..(xorshift(&mut s) % 8 + 1) {
            let off = (xorshift(&mut s) % b.len() as u64) as usize;
            b[off] = xorshift(&mut s) as u8;
        }
        consume_all(&b);
    }
}

#[test]
fn garbage_never_panics() {
    consume_all(&[]);
    consume_all(&[0; 64]);
    consume_all(&0xd00d_feedu32.to_be_bytes());
    let mut s = 42u64;
    for len in [40usize, 41, 100, 1000, 8192] {
        for _ in 0..50 {
            let mut b: Vec<u8> = (0..len).map(|_| xorshift(&mut s) as u8).collect();
            // A plausible header so parsing goes beyond the magic check.
            b[0..4].copy_from_slice(&0xd00d_feedu32.to_be_bytes());
            b[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            b[20..24].copy_from_slice(&17u32.to_be_bytes());
            b[24..28].copy_from_slice(&16u32.to_be_bytes());
            consume_all(&b);
        }
    }
}

/// A hand-made header + structure block with `depth` nested nodes.
fn nested(depth: usize) -> Vec<u8> {
    let mut st = Vec::new();
    for _ in 0..depth {
        st.extend_from_slice(&1u32.to_be_bytes());
        st.extend_from_slice(b"n\0\0\0");
    }
    for _ in 0..depth {
        st.extend_from_slice(&2u32.to_be_bytes());
    }
    st.extend_from_slice(&9u32.to_be_bytes());
    let off_rsv = 40u32;
    let off_struct = off_rsv + 16;
    let off_strings = off_struct + st.len() as u32;
    let total = off_strings;
    let mut b = Vec::new();
    for v in [
        0xd00d_feed,
        total,
        off_struct,
        off_strings,
        off_rsv,
        17,
        16,
        0,
        0,
        st.len() as u32,
    ] {
        b.extend_from_slice(&u32::to_be_bytes(v));
    }
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&st);
    b
}

#[test]
fn nesting_depth_is_bounded() {
    assert!(Fdt::parse(&nested(10)).is_ok());
    assert!(matches!(Fdt::parse(&nested(10_000)), Err(DtError::TooDeep)));
    consume_all(&nested(10_000));
    consume_all(&nested(reader::MAX_DEPTH));
}

#[test]
fn reader_paths_and_aliases() {
    let t = Fdt::parse(QEMU_VIRT).unwrap();
    let u = t.find_path("/pl011@9000000").unwrap();
    assert_eq!(t.find_path("/pl011"), Some(u), "unit-less match");
    assert_eq!(t.path(u), "/pl011@9000000");
    assert_eq!(t.path(t.root()), "/");
    assert_eq!(t.find_path("/"), Some(t.root()));
    assert_eq!(t.find_path("pl011"), None);
    assert_eq!(t.find_path("/pl011@1"), None);
    assert_eq!(
        t.resolve_path_or_alias("serial0"),
        None,
        "no /aliases in QEMU 7.2"
    );
    let its = t.find_path("/intc@8000000/its@8080000").unwrap();
    assert_eq!(t.by_phandle(0x8004), Some(its));
    assert_eq!(
        t.reg(its).unwrap(),
        [Range::new(0x808_0000, 0x2_0000)],
        "GIC `ranges;` is identity"
    );
    assert!(t.mem_reserve.is_empty());
}
