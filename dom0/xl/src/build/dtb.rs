//! The domU device tree, node for node as libxl_arm.c's `libxl__prepare_dtb`
//! builds it for a GICv3 arm64 guest (with its placeholders already filled
//! in the way `libxl__arch_domain_finalise_hw_description` fills them).
//!
//! Differences from libxl, per docs/domains.md: the timer lists the
//! hypervisor timer PPI too (4 interrupts); the GIC node has
//! `#address-cells`/`#size-cells` 2 and `redistributor-regions`, and its
//! redistributor region covers exactly one 128 KiB frame pair per vCPU;
//! `/hypervisor` `reg` is the grant-table window only (no extended regions).

use vm_fdt::{Error, FdtWriter};
use xen_abi::arch_arm::*;

/// `DT_IRQ_TYPE_LEVEL_LOW`.
const LEVEL_LOW: u32 = 8;
/// PSCI 0.2 function ids libxl gives (`PSCI_cpu_off`, `PSCI_cpu_on`).
pub const PSCI_CPU_OFF: u32 = 0x8400_0002;
/// `PSCI_cpu_on` (SMC64).
pub const PSCI_CPU_ON: u32 = 0xc400_0003;
/// `GUEST_ROOT_ADDRESS_CELLS` / `GUEST_ROOT_SIZE_CELLS`.
const ROOT_CELLS: u32 = 2;
/// The hypervisor timer PPI (not in Xen's public header).
pub const GUEST_TIMER_HYP_PPI: u32 = 26;

/// What the device tree describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtbParams<'a> {
    /// Xen major.minor, for `model` and the compatibles.
    pub xen_version: (u32, u32),
    /// `max_vcpus`: one `cpu@` node each.
    pub vcpus: u32,
    /// RAM bank 0: base and size.
    pub ram: (u64, u64),
    /// `/chosen/bootargs`.
    pub cmdline: Option<&'a str>,
    /// `linux,initrd-start` / `-end` (end exclusive).
    pub initrd: Option<(u64, u64)>,
    /// `/chosen/rng-seed` (libxl gives 128 random bytes); empty = none.
    pub rng_seed: &'a [u8],
    /// The timer's `clock-frequency` from `createdomain` (0 = absent).
    pub clock_frequency: u32,
}

/// MPIDR affinity of vCPU `n` (`libxl__compute_mpdir`).
pub fn mpidr(n: u32) -> u32 {
    ((n / 16) << 8) | (n % 16)
}

/// A GIC interrupt specifier (libxl's `set_interrupt`): PPIs from 16, SPIs
/// from 32, all-CPU mask, `flags` the trigger type.
fn interrupt(irq: u32, flags: u32) -> [u32; 3] {
    let ppi = irq < 32;
    [
        u32::from(ppi),
        irq - if ppi { 16 } else { 32 },
        (0xf << 8) | flags,
    ]
}

/// `reg` cells for (base, size) pairs with 2 + 2 cells.
fn regs(pairs: &[(u64, u64)]) -> Vec<u64> {
    pairs.iter().flat_map(|&(b, s)| [b, s]).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Builds the device tree blob.
pub fn build(p: &DtbParams) -> Result<Vec<u8>, Error> {
    let mut f = FdtWriter::new()?;
    let root = f.begin_node("")?;
    let (maj, min) = p.xen_version;
    f.property_string("model", &format!("XENVM-{maj}.{min}"))?;
    f.property_string_list(
        "compatible",
        vec![format!("xen,xenvm-{maj}.{min}"), "xen,xenvm".into()],
    )?;
    f.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    f.property_u32("#address-cells", ROOT_CELLS)?;
    f.property_u32("#size-cells", ROOT_CELLS)?;
    chosen(&mut f, p)?;
    cpus(&mut f, p.vcpus)?;
    psci(&mut f)?;
    memory(&mut f, p.ram)?;
    gic(&mut f, p.vcpus)?;
    timer(&mut f, p.clock_frequency)?;
    hypervisor(&mut f, p.xen_version)?;
    f.end_node(root)?;
    f.finish()
}

fn chosen(f: &mut FdtWriter, p: &DtbParams) -> Result<(), Error> {
    let n = f.begin_node("chosen")?;
    if let Some(c) = p.cmdline {
        f.property_string("bootargs", c)?;
    }
    if let Some((start, end)) = p.initrd {
        f.property_u64("linux,initrd-start", start)?;
        f.property_u64("linux,initrd-end", end)?;
    }
    if !p.rng_seed.is_empty() {
        f.property("rng-seed", p.rng_seed)?;
    }
    f.end_node(n)
}

fn cpus(f: &mut FdtWriter, vcpus: u32) -> Result<(), Error> {
    let n = f.begin_node("cpus")?;
    f.property_u32("#address-cells", 1)?;
    f.property_u32("#size-cells", 0)?;
    for i in 0..vcpus {
        let aff = mpidr(i);
        let c = f.begin_node(&format!("cpu@{aff:x}"))?;
        f.property_string("device_type", "cpu")?;
        f.property_string_list("compatible", strings(&["arm,armv8"]))?;
        f.property_string("enable-method", "psci")?;
        f.property_u32("reg", aff)?;
        f.end_node(c)?;
    }
    f.end_node(n)
}

fn psci(f: &mut FdtWriter) -> Result<(), Error> {
    let n = f.begin_node("psci")?;
    f.property_string_list(
        "compatible",
        strings(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]),
    )?;
    f.property_string("method", "hvc")?;
    f.property_u32("cpu_off", PSCI_CPU_OFF)?;
    f.property_u32("cpu_on", PSCI_CPU_ON)?;
    f.end_node(n)
}

fn memory(f: &mut FdtWriter, (base, size): (u64, u64)) -> Result<(), Error> {
    let n = f.begin_node(&format!("memory@{base:x}"))?;
    f.property_string("device_type", "memory")?;
    f.property_array_u64("reg", &regs(&[(base, size)]))?;
    f.end_node(n)
}

fn gic(f: &mut FdtWriter, vcpus: u32) -> Result<(), Error> {
    let n = f.begin_node(&format!("interrupt-controller@{GUEST_GICV3_GICD_BASE:x}"))?;
    f.property_string_list("compatible", strings(&["arm,gic-v3"]))?;
    f.property_u32("#interrupt-cells", 3)?;
    f.property_u32("#address-cells", ROOT_CELLS)?;
    f.property_u32("#size-cells", ROOT_CELLS)?;
    f.property_null("interrupt-controller")?;
    f.property_u32("redistributor-regions", GUEST_GICV3_RDIST_REGIONS)?;
    let gicr = GUEST_GICV3_RDIST_STRIDE * u64::from(vcpus);
    f.property_array_u64(
        "reg",
        &regs(&[
            (GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE),
            (GUEST_GICV3_GICR0_BASE, gicr),
        ]),
    )?;
    f.property_u32("linux,phandle", GUEST_PHANDLE_GIC)?;
    f.property_u32("phandle", GUEST_PHANDLE_GIC)?;
    f.end_node(n)
}

fn timer(f: &mut FdtWriter, clock_frequency: u32) -> Result<(), Error> {
    let n = f.begin_node("timer")?;
    f.property_string_list("compatible", strings(&["arm,armv8-timer"]))?;
    let ints: Vec<u32> = [
        GUEST_TIMER_PHYS_S_PPI,
        GUEST_TIMER_PHYS_NS_PPI,
        GUEST_TIMER_VIRT_PPI,
        GUEST_TIMER_HYP_PPI,
    ]
    .iter()
    .flat_map(|&irq| interrupt(irq, LEVEL_LOW))
    .collect();
    f.property_array_u32("interrupts", &ints)?;
    f.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    if clock_frequency != 0 {
        f.property_u32("clock-frequency", clock_frequency)?;
    }
    f.end_node(n)
}

fn hypervisor(f: &mut FdtWriter, (maj, min): (u32, u32)) -> Result<(), Error> {
    let n = f.begin_node("hypervisor")?;
    f.property_string_list(
        "compatible",
        vec![format!("xen,xen-{maj}.{min}"), "xen,xen".into()],
    )?;
    f.property_array_u64("reg", &regs(&[(GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE)]))?;
    f.property_array_u32("interrupts", &interrupt(GUEST_EVTCHN_PPI, LEVEL_LOW))?;
    f.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    f.end_node(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdt::Fdt;

    fn params<'a>(
        vcpus: u32,
        cmdline: Option<&'a str>,
        initrd: Option<(u64, u64)>,
    ) -> DtbParams<'a> {
        DtbParams {
            xen_version: (4, 17),
            vcpus,
            ram: (0x4000_0000, 128 << 20),
            cmdline,
            initrd,
            rng_seed: &[7; 128],
            clock_frequency: 0,
        }
    }

    fn cells(b: &[u8]) -> Vec<u32> {
        b.chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn prop<'a>(f: &'a Fdt, node: &str, name: &str) -> &'a [u8] {
        f.find_node(node)
            .unwrap_or_else(|| panic!("no {node}"))
            .property(name)
            .unwrap_or_else(|| panic!("no {node} {name}"))
            .value
    }

    fn strs(b: &[u8]) -> Vec<&str> {
        b.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect()
    }

    #[test]
    fn root_chosen_memory() {
        let blob = build(&params(
            1,
            Some("root=/dev/xvda console=hvc0"),
            Some((0x4200_0000, 0x4250_0000)),
        ))
        .unwrap();
        let f = Fdt::new(&blob).unwrap();
        assert_eq!(
            strs(prop(&f, "/", "compatible")),
            ["xen,xenvm-4.17", "xen,xenvm"]
        );
        assert_eq!(strs(prop(&f, "/", "model")), ["XENVM-4.17"]);
        assert_eq!(cells(prop(&f, "/", "#address-cells")), [2]);
        assert_eq!(cells(prop(&f, "/", "#size-cells")), [2]);
        assert_eq!(cells(prop(&f, "/", "interrupt-parent")), [65000]);
        assert_eq!(f.chosen().bootargs(), Some("root=/dev/xvda console=hvc0"));
        assert_eq!(
            prop(&f, "/chosen", "linux,initrd-start"),
            0x4200_0000u64.to_be_bytes()
        );
        assert_eq!(
            prop(&f, "/chosen", "linux,initrd-end"),
            0x4250_0000u64.to_be_bytes()
        );
        assert_eq!(prop(&f, "/chosen", "rng-seed"), [7; 128]);
        assert_eq!(
            strs(prop(&f, "/memory@40000000", "device_type")),
            ["memory"]
        );
        let mem: Vec<_> = f
            .memory()
            .regions()
            .map(|r| (r.starting_address as u64, r.size))
            .collect();
        assert_eq!(mem, [(0x4000_0000, Some(128 << 20))]);
        // Without cmdline and ramdisk: neither property.
        let blob = build(&params(1, None, None)).unwrap();
        let f = Fdt::new(&blob).unwrap();
        let c = f.find_node("/chosen").unwrap();
        assert!(c.property("bootargs").is_none() && c.property("linux,initrd-start").is_none());
    }

    #[test]
    fn cpus_psci() {
        let blob = build(&params(18, None, None)).unwrap();
        let f = Fdt::new(&blob).unwrap();
        assert_eq!(cells(prop(&f, "/cpus", "#address-cells")), [1]);
        assert_eq!(cells(prop(&f, "/cpus", "#size-cells")), [0]);
        let names: Vec<&str> = f
            .find_node("/cpus")
            .unwrap()
            .children()
            .map(|c| c.name)
            .collect();
        assert_eq!(names.len(), 18);
        assert_eq!(names[1], "cpu@1");
        assert_eq!(names[15], "cpu@f");
        assert_eq!(names[16], "cpu@100");
        assert_eq!(cells(prop(&f, "/cpus/cpu@101", "reg")), [0x101]);
        assert_eq!(strs(prop(&f, "/cpus/cpu@0", "device_type")), ["cpu"]);
        assert_eq!(strs(prop(&f, "/cpus/cpu@0", "compatible")), ["arm,armv8"]);
        assert_eq!(strs(prop(&f, "/cpus/cpu@0", "enable-method")), ["psci"]);
        assert_eq!(
            strs(prop(&f, "/psci", "compatible")),
            ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
        );
        assert_eq!(strs(prop(&f, "/psci", "method")), ["hvc"]);
        assert_eq!(cells(prop(&f, "/psci", "cpu_off")), [0x8400_0002]);
        assert_eq!(cells(prop(&f, "/psci", "cpu_on")), [0xc400_0003]);
        assert_eq!(
            (mpidr(0), mpidr(15), mpidr(16), mpidr(37)),
            (0, 15, 0x100, 0x205)
        );
    }

    #[test]
    fn gic_timer_hypervisor() {
        let blob = build(&params(2, None, None)).unwrap();
        let f = Fdt::new(&blob).unwrap();
        let gic = "/interrupt-controller@3001000";
        assert_eq!(strs(prop(&f, gic, "compatible")), ["arm,gic-v3"]);
        assert_eq!(cells(prop(&f, gic, "#interrupt-cells")), [3]);
        assert_eq!(cells(prop(&f, gic, "#address-cells")), [2]);
        assert_eq!(cells(prop(&f, gic, "#size-cells")), [2]);
        assert_eq!(prop(&f, gic, "interrupt-controller"), b"");
        assert_eq!(cells(prop(&f, gic, "redistributor-regions")), [1]);
        assert_eq!(
            cells(prop(&f, gic, "reg")),
            [0, 0x0300_1000, 0, 0x1_0000, 0, 0x0302_0000, 0, 0x4_0000]
        );
        assert_eq!(cells(prop(&f, gic, "phandle")), [65000]);
        assert_eq!(cells(prop(&f, gic, "linux,phandle")), [65000]);
        assert_eq!(strs(prop(&f, "/timer", "compatible")), ["arm,armv8-timer"]);
        assert_eq!(
            cells(prop(&f, "/timer", "interrupts")),
            [1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08]
        );
        assert_eq!(cells(prop(&f, "/timer", "interrupt-parent")), [65000]);
        assert!(f
            .find_node("/timer")
            .unwrap()
            .property("clock-frequency")
            .is_none());
        assert_eq!(
            strs(prop(&f, "/hypervisor", "compatible")),
            ["xen,xen-4.17", "xen,xen"]
        );
        assert_eq!(
            cells(prop(&f, "/hypervisor", "reg")),
            [0, 0x3800_0000, 0, 0x100_0000]
        );
        assert_eq!(cells(prop(&f, "/hypervisor", "interrupts")), [1, 15, 0xf08]);
        assert_eq!(cells(prop(&f, "/hypervisor", "interrupt-parent")), [65000]);
        let mut p = params(1, None, None);
        p.clock_frequency = 62_500_000;
        let blob = build(&p).unwrap();
        let f = Fdt::new(&blob).unwrap();
        assert_eq!(cells(prop(&f, "/timer", "clock-frequency")), [62_500_000]);
    }

    /// The biggest guest still gets a small tree.
    #[test]
    fn size_bounds() {
        let cmd = "x".repeat(4000);
        let blob = build(&params(128, Some(&cmd), Some((1, 2)))).unwrap();
        assert!(blob.len() < 64 * 1024, "{}", blob.len());
        assert!(Fdt::new(&blob).is_ok());
    }
}
