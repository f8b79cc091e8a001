//! What the hypervisor learns from the host DTB at boot: RAM, reservations,
//! command lines, boot modules (Xen's `docs/misc/arm/device-tree/booting.txt`
//! rules), console UART, GICv3, timer, PSCI and CPUs.
//!
//! The DTB is untrusted: malformed input yields [`DtError`], never a panic.

use crate::cmdline::XenCmdline;
use crate::dt::reader::{cells, read_cells, Fdt, NodeId};
use crate::dt::{DtError, IrqSpec};
use crate::mem::Range;
use alloc::string::String;
use alloc::vec::Vec;

/// Type of a `/chosen` boot module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    Kernel,
    Ramdisk,
    XsmPolicy,
    DeviceTree,
    /// Third or later untyped module (Xen gives it no special treatment).
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootModule<'a> {
    pub kind: ModuleKind,
    /// Physical location of the module image.
    pub range: Range,
    /// The module node's own `bootargs`, if any.
    pub bootargs: Option<&'a str>,
}

/// Where the console UART choice came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartSource {
    /// The `dtuart=` option.
    Dtuart,
    /// `/chosen/stdout-path` (no `dtuart=`, or it named no node: log that).
    StdoutPath,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UartInfo<'a> {
    /// Absolute DT path of the UART node.
    pub path: String,
    pub base: u64,
    pub size: u64,
    /// Its GIC interrupt (normally an SPI), if it has one.
    pub irq: Option<IrqSpec>,
    /// First `compatible` string (e.g. `arm,pl011`).
    pub compatible: Option<&'a str>,
    /// Options after `:` in `dtuart=` / `stdout-path` (e.g. `115200n8`).
    pub options: Option<&'a str>,
    pub source: UartSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GicV3Info {
    pub path: String,
    pub phandle: Option<u32>,
    /// GICD.
    pub dist: Range,
    /// Redistributor regions (`#redistributor-regions`, default 1).
    pub redist: Vec<Range>,
    /// ITS frames (child nodes compatible `arm,gic-v3-its`).
    pub its: Vec<Range>,
    /// Maintenance interrupt (the node's own `interrupts`), normally PPI 9 = INTID 25.
    pub maintenance: Option<IrqSpec>,
}

/// Architected timer PPIs, in binding order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerInfo {
    pub sec_phys: Option<IrqSpec>,
    pub phys: Option<IrqSpec>,
    pub virt: Option<IrqSpec>,
    pub hyp_phys: Option<IrqSpec>,
    pub hyp_virt: Option<IrqSpec>,
    pub clock_frequency: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Smc,
    Hvc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsciInfo<'a> {
    pub method: PsciConduit,
    /// First `compatible` string (`arm,psci-1.0`, `arm,psci-0.2` or `arm,psci`).
    pub compatible: &'a str,
}

/// Everything Ferrovisor takes from the host DTB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo<'a> {
    /// RAM banks, sorted by address, empty banks dropped.
    pub ram: Vec<Range>,
    /// `/memreserve/` entries and `/reserved-memory` children with `reg`.
    pub reserved: Vec<Range>,
    /// Xen's command line as selected by the booting.txt rules ("" if none).
    pub xen_cmdline: &'a str,
    /// `xen_cmdline`, parsed.
    pub cmdline: XenCmdline<'a>,
    /// dom0's command line: kernel module `bootargs`, else
    /// `xen,dom0-bootargs`, else `/chosen/bootargs` when Xen did not take it.
    pub dom0_cmdline: &'a str,
    /// All dom0 boot modules under `/chosen`, in DT order.
    pub modules: Vec<BootModule<'a>>,
    pub uart: Option<UartInfo<'a>>,
    pub gic: Option<GicV3Info>,
    pub timer: Option<TimerInfo>,
    pub psci: Option<PsciInfo<'a>>,
    /// MPIDR affinity (`reg`) of every available `/cpus/cpu@*`, in DT order.
    pub cpus: Vec<u64>,
}

/// A string property: `Ok(None)` if absent, an error if present but not a
/// NUL-terminated UTF-8 string.
fn str_prop<'a>(t: &Fdt<'a>, id: NodeId, name: &str) -> Result<Option<&'a str>, DtError> {
    match t.prop(id, name) {
        None => Ok(None),
        Some(_) => t
            .prop_str(id, name)
            .map(Some)
            .ok_or(DtError::Malformed("bad string property")),
    }
}

fn gic_specs(v: &[u8]) -> Result<Vec<Option<IrqSpec>>, DtError> {
    if !v.len().is_multiple_of(12) {
        return Err(DtError::Malformed("interrupts not a multiple of 3 cells"));
    }
    let c: Vec<u32> = cells(v).collect();
    Ok(c.chunks_exact(3)
        .map(|e| IrqSpec::from_gic_cells(e[0], e[1], e[2]))
        .collect())
}

fn parse_modules<'a>(t: &Fdt<'a>, chosen: NodeId) -> Result<Vec<BootModule<'a>>, DtError> {
    let ac = t.address_cells(chosen)?;
    let sc = t.size_cells(chosen)?;
    let mut mods = Vec::new();
    let mut untyped = 0u32;
    for &id in &t.node(chosen).children {
        let is_module =
            t.is_compatible(id, "multiboot,module") || t.is_compatible(id, "xen,multiboot-module");
        if !is_module {
            continue;
        }
        let reg = t
            .prop(id, "reg")
            .ok_or(DtError::Malformed("boot module without reg"))?;
        let stride = ((ac + sc) * 4) as usize;
        if stride == 0 || reg.len() < stride {
            return Err(DtError::Malformed("boot module reg too short"));
        }
        let range = Range::new(read_cells(reg, 0, ac)?, read_cells(reg, ac, sc)?);
        if range.end().is_none() {
            return Err(DtError::Malformed("boot module range overflows"));
        }
        let kind =
            if t.is_compatible(id, "multiboot,kernel") || t.is_compatible(id, "xen,linux-zimage") {
                ModuleKind::Kernel
            } else if t.is_compatible(id, "multiboot,ramdisk")
                || t.is_compatible(id, "xen,linux-initrd")
            {
                ModuleKind::Ramdisk
            } else if t.is_compatible(id, "xen,xsm-policy") {
                ModuleKind::XsmPolicy
            } else if t.is_compatible(id, "multiboot,device-tree") {
                ModuleKind::DeviceTree
            } else {
                // Xen: first untyped = kernel, second = ramdisk (XSM magic not checked here).
                untyped += 1;
                match untyped {
                    1 => ModuleKind::Kernel,
                    2 => ModuleKind::Ramdisk,
                    _ => ModuleKind::Unknown,
                }
            };
        mods.push(BootModule {
            kind,
            range,
            bootargs: str_prop(t, id, "bootargs")?,
        });
    }
    Ok(mods)
}

/// `linux,initrd-start` / `-end` in /chosen (u32 or u64 each).
fn chosen_initrd(t: &Fdt, chosen: NodeId) -> Result<Option<Range>, DtError> {
    let read = |name| -> Result<Option<u64>, DtError> {
        match t.prop(chosen, name) {
            None => Ok(None),
            Some(v) if v.len() == 4 => Ok(Some(read_cells(v, 0, 1)?)),
            Some(v) if v.len() == 8 => Ok(Some(read_cells(v, 0, 2)?)),
            Some(_) => Err(DtError::Malformed("bad linux,initrd-* length")),
        }
    };
    match (read("linux,initrd-start")?, read("linux,initrd-end")?) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(DtError::Malformed("linux,initrd-start without -end")),
        (Some(s), Some(e)) => Range::from_bounds(s, e)
            .filter(|r| !r.is_empty())
            .map(Some)
            .ok_or(DtError::Malformed("linux,initrd-end not above -start")),
    }
}

fn parse_uart<'a>(
    t: &Fdt<'a>,
    chosen: Option<NodeId>,
    cmd: &XenCmdline<'a>,
    gic: Option<NodeId>,
) -> Result<Option<UartInfo<'a>>, DtError> {
    let mut found = None;
    if let Some(d) = cmd.dtuart {
        if let Some(id) = t.resolve_path_or_alias(d.path) {
            found = Some((id, d.options, UartSource::Dtuart));
        }
    }
    if found.is_none() {
        if let Some(sp) = chosen
            .map(|c| str_prop(t, c, "stdout-path"))
            .transpose()?
            .flatten()
        {
            let (p, opts) = match sp.split_once(':') {
                Some((p, o)) => (p, Some(o)),
                None => (sp, None),
            };
            if let Some(id) = t.resolve_path_or_alias(p) {
                found = Some((id, opts, UartSource::StdoutPath));
            }
        }
    }
    let Some((id, options, source)) = found else {
        return Ok(None);
    };
    let reg = *t
        .reg(id)?
        .first()
        .ok_or(DtError::Malformed("console UART has no usable reg"))?;
    let irq = match (gic, t.prop(id, "interrupts")) {
        (Some(g), Some(v)) if t.interrupt_parent(id) == Some(g) => {
            gic_specs(v)?.into_iter().flatten().next()
        }
        _ => None,
    };
    Ok(Some(UartInfo {
        path: t.path(id),
        base: reg.start,
        size: reg.size,
        irq,
        compatible: t.first_compatible(id),
        options,
        source,
    }))
}

fn parse_gic(t: &Fdt, id: NodeId) -> Result<GicV3Info, DtError> {
    let reg = t.reg(id)?;
    let nr = t.prop_u32(id, "#redistributor-regions").unwrap_or(1) as usize;
    if nr == 0 || reg.len() < 1 + nr {
        return Err(DtError::Malformed(
            "GICv3 reg lacks GICD or redistributor regions",
        ));
    }
    let mut its = Vec::new();
    for &c in &t.node(id).children {
        if t.is_compatible(c, "arm,gic-v3-its") && t.is_available(c) {
            its.extend(t.reg(c)?.first().copied());
        }
    }
    let maintenance = match t.prop(id, "interrupts") {
        Some(v) => gic_specs(v)?.into_iter().flatten().next(),
        None => None,
    };
    Ok(GicV3Info {
        path: t.path(id),
        phandle: t.phandle(id),
        dist: reg[0],
        redist: reg[1..=nr].to_vec(),
        its,
        maintenance,
    })
}

fn parse_timer(t: &Fdt, id: NodeId) -> Result<TimerInfo, DtError> {
    let specs = match t.prop(id, "interrupts") {
        Some(v) => gic_specs(v)?,
        None => Vec::new(),
    };
    let get = |i: usize| specs.get(i).copied().flatten();
    Ok(TimerInfo {
        sec_phys: get(0),
        phys: get(1),
        virt: get(2),
        hyp_phys: get(3),
        hyp_virt: get(4),
        clock_frequency: t.prop_u32(id, "clock-frequency"),
    })
}

impl<'a> BootInfo<'a> {
    /// Parse the host DTB.
    pub fn parse(dtb: &'a [u8]) -> Result<Self, DtError> {
        let t = Fdt::parse(dtb)?;
        let root = t.root();

        let mut ram = Vec::new();
        let mut reserved = t.mem_reserve.clone();
        for &id in &t.node(root).children {
            let n = t.node(id);
            let is_mem =
                t.prop_str(id, "device_type") == Some("memory") || n.base_name() == "memory";
            if is_mem && t.is_available(id) {
                ram.extend(t.reg(id)?.into_iter().filter(|r| !r.is_empty()));
            } else if n.name == "reserved-memory" {
                for &c in &n.children {
                    if t.is_available(c) {
                        reserved.extend(t.reg(c)?.into_iter().filter(|r| !r.is_empty()));
                    }
                }
            }
        }
        if ram.iter().any(|r| !r.is_valid()) || reserved.iter().any(|r| !r.is_valid()) {
            return Err(DtError::Malformed("memory range overflows"));
        }
        if ram.is_empty() {
            return Err(DtError::Missing("RAM (memory nodes)"));
        }
        ram.sort_unstable();

        let chosen = t.find_path("/chosen");
        let mut modules = match chosen {
            Some(c) => parse_modules(&t, c)?,
            None => Vec::new(),
        };
        if let Some(c) = chosen {
            if let Some(rd) = chosen_initrd(&t, c)? {
                if !modules.iter().any(|m| m.kind == ModuleKind::Ramdisk) {
                    modules.push(BootModule {
                        kind: ModuleKind::Ramdisk,
                        range: rd,
                        bootargs: None,
                    });
                }
            }
        }

        // Command lines (booting.txt "Command lines").
        let chosen_str = |name| -> Result<Option<&'a str>, DtError> {
            match chosen {
                Some(c) => str_prop(&t, c, name),
                None => Ok(None),
            }
        };
        let xen_bootargs = chosen_str("xen,xen-bootargs")?;
        let dom0_bootargs = chosen_str("xen,dom0-bootargs")?;
        let bootargs = chosen_str("bootargs")?;
        let kernel_args = modules
            .iter()
            .find(|m| m.kind == ModuleKind::Kernel)
            .and_then(|m| m.bootargs)
            .filter(|s| !s.is_empty());
        let xen_cmdline = match xen_bootargs {
            Some(x) => x,
            None if dom0_bootargs.is_some() || kernel_args.is_some() => bootargs.unwrap_or(""),
            None => "",
        };
        let dom0_cmdline = kernel_args.or(dom0_bootargs).or(bootargs).unwrap_or("");
        let cmdline = XenCmdline::parse(xen_cmdline);

        let gic_id = t
            .ids()
            .find(|&id| t.is_compatible(id, "arm,gic-v3") && t.is_available(id));
        let gic = gic_id.map(|g| parse_gic(&t, g)).transpose()?;
        let uart = parse_uart(&t, chosen, &cmdline, gic_id)?;
        let timer = t
            .ids()
            .find(|&id| {
                t.is_compatible(id, "arm,armv8-timer") || t.is_compatible(id, "arm,armv7-timer")
            })
            .map(|id| parse_timer(&t, id))
            .transpose()?;
        let psci = match t.ids().find(|&id| {
            t.is_compatible(id, "arm,psci-1.0")
                || t.is_compatible(id, "arm,psci-0.2")
                || t.is_compatible(id, "arm,psci")
        }) {
            None => None,
            Some(id) => {
                let method = match t.prop_str(id, "method") {
                    Some("smc") => PsciConduit::Smc,
                    Some("hvc") => PsciConduit::Hvc,
                    _ => return Err(DtError::Malformed("PSCI method is neither smc nor hvc")),
                };
                let compatible = t.first_compatible(id).unwrap_or("arm,psci");
                Some(PsciInfo { method, compatible })
            }
        };

        let mut cpus = Vec::new();
        if let Some(cn) = t.find_path("/cpus") {
            let ac = t.address_cells(cn)?;
            if ac == 0 || ac > 2 {
                return Err(DtError::Malformed("/cpus #address-cells must be 1 or 2"));
            }
            for &c in &t.node(cn).children {
                let is_cpu =
                    t.prop_str(c, "device_type") == Some("cpu") || t.node(c).base_name() == "cpu";
                if !is_cpu || !t.is_available(c) {
                    continue;
                }
                let reg = t
                    .prop(c, "reg")
                    .ok_or(DtError::Malformed("cpu node without reg"))?;
                cpus.push(read_cells(reg, 0, ac)?);
            }
        }

        Ok(BootInfo {
            ram,
            reserved,
            xen_cmdline,
            cmdline,
            dom0_cmdline,
            modules,
            uart,
            gic,
            timer,
            psci,
            cpus,
        })
    }

    /// The dom0 kernel (first kernel module).
    pub fn kernel(&self) -> Option<&BootModule<'a>> {
        self.modules.iter().find(|m| m.kind == ModuleKind::Kernel)
    }

    /// The dom0 ramdisk (first ramdisk module).
    pub fn ramdisk(&self) -> Option<&BootModule<'a>> {
        self.modules.iter().find(|m| m.kind == ModuleKind::Ramdisk)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cmdline::Dom0Mem;
    use vm_fdt::FdtWriter;

    pub(crate) const QEMU_VIRT: &[u8] = include_bytes!("testdata/qemu-virt-gicv3.dtb");
    const M: u64 = 1 << 20;

    #[test]
    fn qemu_virt_fixture() {
        let b = BootInfo::parse(QEMU_VIRT).unwrap();
        assert_eq!(b.ram, [Range::new(0x4000_0000, 0x8000_0000)]);
        assert!(b.reserved.is_empty());
        assert_eq!(
            b.xen_cmdline,
            "dom0_mem=512M,max:512M dom0_max_vcpus=2 console=dtuart dtuart=serial0 loglvl=all guest_loglvl=all",
            "the kernel module has bootargs, so /chosen/bootargs is Xen's"
        );
        assert_eq!(b.dom0_cmdline, "console=hvc0 earlycon=xenboot rdinit=/init");
        assert_eq!(
            b.cmdline.dom0_mem,
            Some(Dom0Mem {
                size: Some(512 * M),
                min: None,
                max: Some(512 * M)
            })
        );
        assert_eq!(
            b.cmdline
                .dom0_max_vcpus
                .unwrap()
                .resolve(b.cpus.len() as u32, 128),
            2
        );
        assert!(b.cmdline.has_console("dtuart"));
        assert!(b.cmdline.unknown.is_empty() && b.cmdline.invalid.is_empty());

        let k = b.kernel().unwrap();
        assert_eq!(k.range, Range::new(0x4900_0000, 0x1000));
        assert_eq!(
            k.bootargs,
            Some("console=hvc0 earlycon=xenboot rdinit=/init")
        );
        let r = b.ramdisk().unwrap();
        assert_eq!(
            (r.range, r.bootargs),
            (Range::new(0x5000_0000, 0x2000), None)
        );
        assert_eq!(b.modules.len(), 2);

        // QEMU 7.2 has no /aliases, so dtuart=serial0 falls back to stdout-path.
        let u = b.uart.as_ref().unwrap();
        assert_eq!(u.path, "/pl011@9000000");
        assert_eq!((u.base, u.size), (0x900_0000, 0x1000));
        assert_eq!(
            u.irq,
            Some(IrqSpec {
                intid: 33,
                flags: 4
            })
        );
        assert_eq!(u.compatible, Some("arm,pl011"));
        assert_eq!(u.source, UartSource::StdoutPath);

        let g = b.gic.as_ref().unwrap();
        assert_eq!(g.path, "/intc@8000000");
        assert_eq!(g.phandle, Some(0x8003));
        assert_eq!(g.dist, Range::new(0x800_0000, 0x1_0000));
        assert_eq!(g.redist, [Range::new(0x80a_0000, 0xf6_0000)]);
        assert_eq!(g.its, [Range::new(0x808_0000, 0x2_0000)]);
        assert_eq!(g.maintenance.map(|m| m.intid), Some(25));

        let t = b.timer.unwrap();
        assert_eq!(t.sec_phys.map(|s| s.intid), Some(29));
        assert_eq!(t.phys.map(|s| s.intid), Some(30));
        assert_eq!(
            t.virt,
            Some(IrqSpec {
                intid: 27,
                flags: 4
            })
        );
        assert_eq!(t.hyp_phys.map(|s| s.intid), Some(26));
        assert_eq!(t.hyp_virt, None);

        assert_eq!(
            b.psci,
            Some(PsciInfo {
                method: PsciConduit::Smc,
                compatible: "arm,psci-1.0"
            })
        );
        assert_eq!(b.cpus, [0, 1]);
    }

    /// A small host tree: root 2/2 cells, one RAM bank, GIC, PL011, /chosen
    /// filled by `chosen`.
    pub(crate) fn host_dtb(chosen: impl FnOnce(&mut FdtWriter)) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_u32("interrupt-parent", 1).unwrap();
        let a = w.begin_node("aliases").unwrap();
        w.property_string("serial1", "/soc/uart@1000").unwrap();
        w.end_node(a).unwrap();
        let m = w.begin_node("memory@80000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[0x8000_0000, 0x4000_0000, 0x8_8000_0000, 0])
            .unwrap();
        w.end_node(m).unwrap();
        let rm = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        let r = w.begin_node("tz@80000000").unwrap();
        w.property_array_u64("reg", &[0x8000_0000, 0x20_0000])
            .unwrap();
        w.end_node(r).unwrap();
        let r = w.begin_node("pool").unwrap();
        w.property_u64("size", 0x100_0000).unwrap();
        w.end_node(r).unwrap();
        w.end_node(rm).unwrap();
        let g = w.begin_node("interrupt-controller@2f000000").unwrap();
        w.property_string("compatible", "arm,gic-v3").unwrap();
        w.property_u32("#interrupt-cells", 3).unwrap();
        w.property_null("interrupt-controller").unwrap();
        w.property_u32("#redistributor-regions", 2).unwrap();
        w.property_array_u64(
            "reg",
            &[
                0x2f00_0000,
                0x1_0000,
                0x2f10_0000,
                0x10_0000,
                0x3000_0000,
                0x4_0000,
            ],
        )
        .unwrap();
        w.property_u32("phandle", 1).unwrap();
        w.end_node(g).unwrap();
        let s = w.begin_node("soc").unwrap();
        w.property_string("compatible", "simple-bus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_array_u32("ranges", &[0, 0, 0x1c00_0000, 0x10_0000])
            .unwrap();
        let u = w.begin_node("uart@1000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        w.property_array_u32("reg", &[0x1000, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, 5, 4]).unwrap();
        w.end_node(u).unwrap();
        w.end_node(s).unwrap();
        let c = w.begin_node("chosen").unwrap();
        chosen(&mut w);
        w.end_node(c).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    fn module(w: &mut FdtWriter, name: &str, compat: &[&str], reg: &[u32], bootargs: Option<&str>) {
        let n = w.begin_node(name).unwrap();
        let mut c = Vec::new();
        for s in compat {
            c.extend_from_slice(s.as_bytes());
            c.push(0);
        }
        w.property("compatible", &c).unwrap();
        w.property_array_u32("reg", reg).unwrap();
        if let Some(b) = bootargs {
            w.property_string("bootargs", b).unwrap();
        }
        w.end_node(n).unwrap();
    }

    fn cmdlines(dtb: &[u8]) -> (String, String) {
        let b = BootInfo::parse(dtb).unwrap();
        (String::from(b.xen_cmdline), String::from(b.dom0_cmdline))
    }

    #[test]
    fn command_line_precedence() {
        let s = |a: &str, b: &str| (String::from(a), String::from(b));
        // All three properties: each goes where its name says.
        let d = host_dtb(|w| {
            w.property_string("xen,xen-bootargs", "X").unwrap();
            w.property_string("xen,dom0-bootargs", "D").unwrap();
            w.property_string("bootargs", "B").unwrap();
        });
        assert_eq!(cmdlines(&d), s("X", "D"));
        // No Xen-specific properties: bootargs is dom0's.
        let d = host_dtb(|w| w.property_string("bootargs", "B").unwrap());
        assert_eq!(cmdlines(&d), s("", "B"));
        // xen,dom0-bootargs without xen,xen-bootargs: bootargs is Xen's.
        let d = host_dtb(|w| {
            w.property_string("xen,dom0-bootargs", "D").unwrap();
            w.property_string("bootargs", "B").unwrap();
        });
        assert_eq!(cmdlines(&d), s("B", "D"));
        // xen,xen-bootargs without xen,dom0-bootargs: bootargs is dom0's.
        let d = host_dtb(|w| {
            w.property_string("xen,xen-bootargs", "X").unwrap();
            w.property_string("bootargs", "B").unwrap();
        });
        assert_eq!(cmdlines(&d), s("X", "B"));
        // Kernel module with bootargs: top-level bootargs is Xen's, module's wins for dom0.
        let d = host_dtb(|w| {
            w.property_string("bootargs", "B").unwrap();
            w.property_string("xen,dom0-bootargs", "D").unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 1).unwrap();
            module(
                w,
                "module@90000000",
                &["multiboot,kernel", "multiboot,module"],
                &[0x9000_0000, 0x1000],
                Some("K"),
            );
        });
        assert_eq!(cmdlines(&d), s("B", "K"));
        // An empty module bootargs does not count.
        let d = host_dtb(|w| {
            w.property_string("bootargs", "B").unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 1).unwrap();
            module(
                w,
                "module@90000000",
                &["multiboot,module"],
                &[0x9000_0000, 0x1000],
                Some(""),
            );
        });
        assert_eq!(cmdlines(&d), s("", "B"));
        // No /chosen properties at all.
        assert_eq!(cmdlines(&host_dtb(|_| {})), s("", ""));
    }

    #[test]
    fn modules_legacy_and_untyped() {
        let d = host_dtb(|w| {
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 1).unwrap();
            module(w, "m0", &["multiboot,module"], &[0x9000_0000, 0x100], None);
            module(
                w,
                "m1",
                &["xen,multiboot-module"],
                &[0x9100_0000, 0x200],
                None,
            );
            module(w, "m2", &["multiboot,module"], &[0x9200_0000, 0x300], None);
            module(
                w,
                "m3",
                &["xen,xsm-policy", "multiboot,module"],
                &[0x9300_0000, 0x400],
                None,
            );
            module(
                w,
                "m4",
                &["xen,linux-zimage", "xen,multiboot-module"],
                &[0x9400_0000, 0x500],
                None,
            );
            module(
                w,
                "m5",
                &["multiboot,device-tree", "multiboot,module"],
                &[0x9500_0000, 0x600],
                None,
            );
            module(w, "not-a-module", &["vendor,thing"], &[1, 2], None);
        });
        let b = BootInfo::parse(&d).unwrap();
        let kinds: Vec<_> = b.modules.iter().map(|m| m.kind).collect();
        use ModuleKind::*;
        assert_eq!(
            kinds,
            [Kernel, Ramdisk, Unknown, XsmPolicy, Kernel, DeviceTree]
        );
        assert_eq!(b.kernel().unwrap().range, Range::new(0x9000_0000, 0x100));
        assert_eq!(b.ramdisk().unwrap().range, Range::new(0x9100_0000, 0x200));
    }

    #[test]
    fn memory_reserved_uart_alias_initrd() {
        let d = host_dtb(|w| {
            w.property_string("xen,xen-bootargs", "dtuart=serial1:115200n8 console=dtuart")
                .unwrap();
            w.property_u32("linux,initrd-start", 0x8800_0000).unwrap();
            w.property_u64("linux,initrd-end", 0x8810_0000).unwrap();
        });
        let b = BootInfo::parse(&d).unwrap();
        assert_eq!(
            b.ram,
            [Range::new(0x8000_0000, 0x4000_0000)],
            "empty bank dropped"
        );
        assert_eq!(
            b.reserved,
            [Range::new(0x8000_0000, 0x20_0000)],
            "size-only pool has no reg"
        );
        let u = b.uart.as_ref().unwrap();
        assert_eq!(u.path, "/soc/uart@1000");
        assert_eq!(
            (u.base, u.size),
            (0x1c00_1000, 0x1000),
            "translated through /soc ranges"
        );
        assert_eq!(u.options, Some("115200n8"));
        assert_eq!(u.source, UartSource::Dtuart);
        assert_eq!(u.irq.unwrap().intid, 37);
        let g = b.gic.as_ref().unwrap();
        assert_eq!(
            g.redist,
            [
                Range::new(0x2f10_0000, 0x10_0000),
                Range::new(0x3000_0000, 0x4_0000)
            ]
        );
        assert_eq!(
            b.ramdisk().unwrap().range,
            Range::new(0x8800_0000, 0x10_0000)
        );
        assert!(b.psci.is_none() && b.timer.is_none() && b.cpus.is_empty());

        // dtuart by path.
        let d = host_dtb(|w| {
            w.property_string("xen,xen-bootargs", "dtuart=/soc/uart@1000")
                .unwrap()
        });
        assert_eq!(
            BootInfo::parse(&d).unwrap().uart.unwrap().source,
            UartSource::Dtuart
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let bad = [
            host_dtb(|w| {
                let n = w.begin_node("module@0").unwrap();
                w.property_string("compatible", "multiboot,module").unwrap();
                w.end_node(n).unwrap();
            }),
            host_dtb(|w| module(w, "module@0", &["multiboot,module"], &[0x9000_0000], None)),
            host_dtb(|w| {
                module(
                    w,
                    "module@0",
                    &["multiboot,module"],
                    &[u32::MAX, u32::MAX, u32::MAX, u32::MAX],
                    None,
                )
            }),
            host_dtb(|w| w.property_u32("linux,initrd-start", 5).unwrap()),
            host_dtb(|w| {
                w.property_u32("linux,initrd-start", 5).unwrap();
                w.property_u32("linux,initrd-end", 5).unwrap();
            }),
            host_dtb(|w| w.property("bootargs", b"\xff\xfe\0").unwrap()),
            host_dtb(|w| w.property("bootargs", b"no-nul").unwrap()),
        ];
        for (i, d) in bad.iter().enumerate() {
            assert!(BootInfo::parse(d).is_err(), "case {i}");
        }
        // No memory at all.
        let mut w = FdtWriter::new().unwrap();
        let r = w.begin_node("").unwrap();
        w.end_node(r).unwrap();
        assert!(matches!(
            BootInfo::parse(&w.finish().unwrap()),
            Err(DtError::Missing(_))
        ));
        // Bad PSCI method.
        let mut w = FdtWriter::new().unwrap();
        let r = w.begin_node("").unwrap();
        let m = w.begin_node("memory").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0, 0x8000_0000, 0x1000_0000])
            .unwrap();
        w.end_node(m).unwrap();
        let p = w.begin_node("psci").unwrap();
        w.property_string("compatible", "arm,psci-0.2").unwrap();
        w.property_string("method", "magic").unwrap();
        w.end_node(p).unwrap();
        w.end_node(r).unwrap();
        assert!(BootInfo::parse(&w.finish().unwrap()).is_err());
    }
}
