//! dom0's device tree (Xen 4.17 `arch/arm/domain_build.c` behaviour) and the
//! host resources dom0 is given 1:1.
//!
//! The host tree is copied node by node with raw property bytes (phandles
//! kept), except:
//! - `/chosen`: boot-module children and `xen,*` / `linux,uefi-*` /
//!   `linux,initrd-*` / `bootargs` properties are dropped; `bootargs` and
//!   (if an initrd is given) u64 `linux,initrd-start/end` are written anew.
//!   `stdout-path`, `kaslr-seed`, `rng-seed` are kept (Xen drops `stdout-path`;
//!   we keep it because dom0 sees an emulated PL011 at the host UART address).
//! - memory nodes, `/cpus`, PSCI nodes: removed and regenerated at the end of
//!   the root; an existing `/hypervisor` is removed and, if configured,
//!   regenerated per the guest binding.
//! - removed like Xen: PMU nodes, `arm,armv7-timer-mem`, any device using a
//!   PPI, IOMMUs (`#iommu-cells`) with every `iommus` / `iommu-map*`
//!   property, GICv3 ITS nodes with every `msi-parent` / `msi-map` /
//!   `msi-map-mask` referring to them, and `cfg.hide_paths`.
//! - `xen,*` properties are dropped everywhere; a node carrying
//!   `xen,passthrough` gets `status = "disabled"`.
//! - the GICv3 node's `reg` becomes GICD + one redistributor region
//!   (`#redistributor-regions = <1>`), its maintenance `interrupts` go;
//!   the architected timer gets the three guest PPIs (13, 14, 11) with the
//!   host's flags.

use super::reader::{cells, parse_pairs, str_list, Fdt, NodeId};
use super::{vcpuid_to_vaffinity, DtError, IrqSpec};
use crate::mem::{merge_ranges, subtract_ranges, Range};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;
use vm_fdt::FdtWriter;

/// Most vCPUs dom0 may be given (Xen's GICv3 vGIC limit).
pub const MAX_DOM0_VCPUS: u32 = 128;

const PAGE: u64 = 4096;

/// Input for [`build_dom0_dtb`].
pub struct Dom0DtConfig<'a> {
    /// The host DTB as the firmware/bootloader passed it.
    pub host_dtb: &'a [u8],
    /// dom0's RAM banks (1:1, IPA == PA).
    pub mem_banks: &'a [Range],
    pub nr_vcpus: u32,
    /// dom0's kernel command line (`bootargs`); empty = none written.
    pub bootargs: &'a str,
    /// Where the initrd was placed in dom0 memory (written as u64
    /// `linux,initrd-start` / `linux,initrd-end`).
    pub initrd: Option<Range>,
    /// Size of dom0's redistributor region: `nr_vcpus * 0x20000`.
    pub gicr_size: u64,
    /// Absolute paths of host nodes (with their subtrees) to hide from dom0.
    pub hide_paths: &'a [&'a str],
    pub hypervisor: Option<HypervisorNode>,
}

/// Contents of dom0's `/hypervisor` node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HypervisorNode {
    /// `reg[0]`: where dom0 maps grant frames (must not be RAM dom0 owns).
    pub grant_table: Range,
    /// `reg[1..]`: extended regions (unused PA space for foreign mappings).
    pub extended: Vec<Range>,
    /// Event-channel upcall PPI as a GIC INTID (16..=31).
    pub evtchn_ppi_intid: u32,
}

/// What dom0 gets 1:1 from the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passthrough {
    /// MMIO ranges, page-aligned, sorted and merged.
    pub mmio: Vec<Range>,
    /// SPIs as `(INTID, edge-triggered)`, sorted by INTID.
    pub spis: Vec<(u32, bool)>,
}

fn is_psci(t: &Fdt, id: NodeId) -> bool {
    t.is_compatible(id, "arm,psci")
        || t.is_compatible(id, "arm,psci-0.2")
        || t.is_compatible(id, "arm,psci-1.0")
}

fn is_pmu(t: &Fdt, id: NodeId) -> bool {
    t.prop(id, "compatible").is_some_and(|v| {
        str_list(v)
            .any(|c| c == "arm,armv8-pmuv3" || (c.starts_with("arm,") && c.ends_with("-pmu")))
    })
}

fn is_memory(t: &Fdt, id: NodeId) -> bool {
    let n = t.node(id);
    t.prop_str(id, "device_type") == Some("memory") || (n.depth == 1 && n.base_name() == "memory")
}

fn is_timer(t: &Fdt, id: NodeId) -> bool {
    t.is_compatible(id, "arm,armv8-timer") || t.is_compatible(id, "arm,armv7-timer")
}

fn is_pci_bus(t: &Fdt, id: NodeId) -> bool {
    matches!(t.prop_str(id, "device_type"), Some("pci" | "pciex"))
}

fn is_boot_module(t: &Fdt, id: NodeId) -> bool {
    t.prop(id, "compatible")
        .is_some_and(|v| str_list(v).any(|c| c.starts_with("xen,") || c.starts_with("multiboot,")))
}

/// The GIC interrupts (3-cell specifiers) of a node: `interrupts` when its
/// interrupt parent is `gic`, plus `interrupts-extended` entries that target it.
/// Specifiers for other controllers are skipped.
fn gic_irqs(t: &Fdt, id: NodeId, gic: NodeId) -> Result<Vec<IrqSpec>, DtError> {
    let mut out = Vec::new();
    if let Some(v) = t.prop(id, "interrupts") {
        if t.interrupt_parent(id) == Some(gic) {
            if v.len() % 12 != 0 {
                return Err(DtError::Malformed(
                    "GIC interrupts not a multiple of 3 cells",
                ));
            }
            let c: Vec<u32> = cells(v).collect();
            for e in c.chunks_exact(3) {
                if let Some(s) = IrqSpec::from_gic_cells(e[0], e[1], e[2]) {
                    out.push(s);
                }
            }
        }
    }
    if let Some(v) = t.prop(id, "interrupts-extended") {
        let c: Vec<u32> = cells(v).collect();
        let mut i = 0;
        while i < c.len() {
            let ctrl = t
                .by_phandle(c[i])
                .ok_or(DtError::Malformed("interrupts-extended: unknown phandle"))?;
            let n = t.interrupt_cells(ctrl).ok_or(DtError::Malformed(
                "interrupts-extended: no #interrupt-cells",
            ))? as usize;
            let spec = c
                .get(i + 1..i + 1 + n)
                .ok_or(DtError::Malformed("interrupts-extended truncated"))?;
            if ctrl == gic && n == 3 {
                if let Some(s) = IrqSpec::from_gic_cells(spec[0], spec[1], spec[2]) {
                    out.push(s);
                }
            }
            i += 1 + n;
        }
    }
    Ok(out)
}

/// First node compatible with `arm,gic-v3`.
fn find_gicv3(t: &Fdt) -> Option<NodeId> {
    t.ids().find(|&id| t.is_compatible(id, "arm,gic-v3"))
}

/// Append `v` as `n` big-endian cells.
fn push_cells(buf: &mut Vec<u8>, v: u64, n: u32) -> Result<(), DtError> {
    match n {
        0 if v == 0 => {}
        1 => buf.extend_from_slice(
            &u32::try_from(v)
                .map_err(|_| DtError::CellOverflow)?
                .to_be_bytes(),
        ),
        2..=4 => {
            for _ in 2..n {
                buf.extend_from_slice(&[0; 4]);
            }
            buf.extend_from_slice(&v.to_be_bytes());
        }
        _ => return Err(DtError::CellOverflow),
    }
    Ok(())
}

fn encode_reg(ranges: &[Range], ac: u32, sc: u32) -> Result<Vec<u8>, DtError> {
    let mut buf = Vec::new();
    for r in ranges {
        push_cells(&mut buf, r.start, ac)?;
        push_cells(&mut buf, r.size, sc)?;
    }
    Ok(buf)
}

fn gic_cells(ty: u32, num: u32, flags: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&ty.to_be_bytes());
    b[4..8].copy_from_slice(&num.to_be_bytes());
    b[8..12].copy_from_slice(&flags.to_be_bytes());
    b
}

enum Kind {
    Skip,
    Copy,
    Chosen,
    Gic,
    Timer,
}

struct Builder<'t, 'a, 'c> {
    t: &'t Fdt<'a>,
    cfg: &'c Dom0DtConfig<'c>,
    gic: NodeId,
    hidden: Vec<bool>,
    /// Phandles of removed MSI controllers (ITS).
    its: Vec<u32>,
    chosen: Option<NodeId>,
}

impl Builder<'_, '_, '_> {
    fn kind(&self, id: NodeId) -> Result<Kind, DtError> {
        let t = self.t;
        let n = t.node(id);
        if id == t.root() {
            return Ok(Kind::Copy);
        }
        if self.hidden[id] {
            return Ok(Kind::Skip);
        }
        if id == self.gic {
            return Ok(Kind::Gic);
        }
        if Some(id) == self.chosen {
            return Ok(Kind::Chosen);
        }
        if n.parent == self.chosen && is_boot_module(t, id) {
            return Ok(Kind::Skip);
        }
        if n.depth == 1 && matches!(n.base_name(), "cpus" | "hypervisor" | "psci") {
            return Ok(Kind::Skip);
        }
        if is_memory(t, id)
            || is_psci(t, id)
            || is_pmu(t, id)
            || t.is_compatible(id, "xen,xen")
            || t.is_compatible(id, "arm,armv7-timer-mem")
            || t.is_compatible(id, "arm,gic-v3-its")
            || t.has_prop(id, "#iommu-cells")
        {
            return Ok(Kind::Skip);
        }
        if is_timer(t, id) {
            return Ok(Kind::Timer);
        }
        // The vGIC cannot route hardware PPIs: hide any device using one.
        if gic_irqs(t, id, self.gic)?.iter().any(IrqSpec::is_ppi) {
            return Ok(Kind::Skip);
        }
        Ok(Kind::Copy)
    }

    /// Whether an `msi-parent` value refers to a removed (or unknown) controller.
    fn msi_parent_removed(&self, v: &[u8]) -> bool {
        let c: Vec<u32> = cells(v).collect();
        if c.is_empty() || !v.len().is_multiple_of(4) {
            return true;
        }
        let mut i = 0;
        while i < c.len() {
            let Some(ctrl) = self.t.by_phandle(c[i]) else {
                return true;
            };
            if self.its.contains(&c[i]) || self.hidden[ctrl] {
                return true;
            }
            let n = self.t.prop_u32(ctrl, "#msi-cells").unwrap_or(0) as usize;
            i = i.saturating_add(1).saturating_add(n);
        }
        false
    }

    /// Whether an `msi-map` value (4-cell entries) refers to a removed controller.
    fn msi_map_removed(&self, v: &[u8]) -> bool {
        if v.is_empty() || !v.len().is_multiple_of(16) {
            return true;
        }
        let c: Vec<u32> = cells(v).collect();
        c.chunks_exact(4).any(|e| match self.t.by_phandle(e[1]) {
            None => true,
            Some(ctrl) => self.its.contains(&e[1]) || self.hidden[ctrl],
        })
    }

    /// Copy the generic-filtered properties of `id`, skipping names in `also_skip`.
    fn copy_props(&self, w: &mut FdtWriter, id: NodeId, also_skip: &[&str]) -> Result<(), DtError> {
        let t = self.t;
        let drop_msi_map = t
            .prop(id, "msi-map")
            .is_some_and(|v| self.msi_map_removed(v));
        let passthrough = t.has_prop(id, "xen,passthrough");
        for p in &t.node(id).props {
            let name = p.name;
            if name.starts_with("xen,")
                || also_skip.contains(&name)
                || matches!(name, "iommus" | "iommu-map" | "iommu-map-mask")
                || (name == "msi-parent" && self.msi_parent_removed(p.value))
                || (drop_msi_map && matches!(name, "msi-map" | "msi-map-mask"))
                || (passthrough && name == "status")
            {
                continue;
            }
            w.property(name, p.value)?;
        }
        if passthrough {
            w.property_string("status", "disabled")?;
        }
        Ok(())
    }

    fn emit_children(&self, w: &mut FdtWriter, id: NodeId) -> Result<(), DtError> {
        for &c in &self.t.node(id).children {
            self.emit(w, c)?;
        }
        Ok(())
    }

    fn emit(&self, w: &mut FdtWriter, id: NodeId) -> Result<(), DtError> {
        let t = self.t;
        let kind = self.kind(id)?;
        if let Kind::Skip = kind {
            return Ok(());
        }
        let node = w.begin_node(t.node(id).name)?;
        match kind {
            Kind::Skip => {}
            Kind::Copy => {
                self.copy_props(w, id, &[])?;
                self.emit_children(w, id)?;
                if id == t.root() {
                    self.emit_generated(w)?;
                }
            }
            Kind::Chosen => {
                self.copy_props(
                    w,
                    id,
                    &["bootargs", "linux,initrd-start", "linux,initrd-end"],
                )?;
                self.write_chosen_props(w, id)?;
                self.emit_children(w, id)?;
            }
            Kind::Gic => {
                self.copy_props(
                    w,
                    id,
                    &[
                        "reg",
                        "#redistributor-regions",
                        "redistributor-stride",
                        "interrupts",
                    ],
                )?;
                let parent = t
                    .node(id)
                    .parent
                    .ok_or(DtError::Malformed("GIC is the root"))?;
                let (ac, sc) = (t.address_cells(parent)?, t.size_cells(parent)?);
                let host = t.reg_raw(id)?;
                if host.len() < 2 {
                    return Err(DtError::Malformed("GICv3 reg lacks a redistributor region"));
                }
                let gicr = Range::new(host[1].start, self.cfg.gicr_size);
                if !gicr.is_valid() {
                    return Err(DtError::BadConfig("redistributor region overflows"));
                }
                w.property("reg", &encode_reg(&[host[0], gicr], ac, sc)?)?;
                w.property_u32("#redistributor-regions", 1)?;
                self.emit_children(w, id)?;
            }
            Kind::Timer => {
                self.copy_props(w, id, &["interrupts", "interrupt-names"])?;
                let host: Vec<u32> = t
                    .prop(id, "interrupts")
                    .map(|v| cells(v).collect())
                    .unwrap_or_default();
                let flags = |i: usize| host.get(i * 3 + 2).copied().unwrap_or(0xf08);
                let mut v = Vec::with_capacity(36);
                // Secure phys (PPI 13 = INTID 29), non-secure phys (14 = 30), virtual (11 = 27).
                for (i, ppi) in [13u32, 14, 11].into_iter().enumerate() {
                    v.extend_from_slice(&gic_cells(1, ppi, flags(i)));
                }
                w.property("interrupts", &v)?;
                self.emit_children(w, id)?;
            }
        }
        w.end_node(node)?;
        Ok(())
    }

    fn write_chosen_props(&self, w: &mut FdtWriter, _id: NodeId) -> Result<(), DtError> {
        if !self.cfg.bootargs.is_empty() {
            w.property_string("bootargs", self.cfg.bootargs)?;
        }
        if let Some(rd) = self.cfg.initrd.filter(|r| !r.is_empty()) {
            let end = rd.end().ok_or(DtError::BadConfig("initrd overflows"))?;
            w.property_u64("linux,initrd-start", rd.start)?;
            w.property_u64("linux,initrd-end", end)?;
        }
        Ok(())
    }

    /// Nodes appended at the end of the root: chosen (if the host had none),
    /// memory, cpus, psci, hypervisor.
    fn emit_generated(&self, w: &mut FdtWriter) -> Result<(), DtError> {
        let t = self.t;
        let cfg = self.cfg;
        let root = t.root();
        let (ac, sc) = (t.address_cells(root)?, t.size_cells(root)?);

        if self.chosen.is_none() {
            let n = w.begin_node("chosen")?;
            self.write_chosen_props(w, root)?;
            w.end_node(n)?;
        }

        let n = w.begin_node(&format!("memory@{:x}", cfg.mem_banks[0].start))?;
        w.property_string("device_type", "memory")?;
        w.property("reg", &encode_reg(cfg.mem_banks, ac, sc)?)?;
        w.end_node(n)?;

        let cpus = w.begin_node("cpus")?;
        w.property_u32("#address-cells", 1)?;
        w.property_u32("#size-cells", 0)?;
        for i in 0..cfg.nr_vcpus {
            let aff = vcpuid_to_vaffinity(i);
            let c = w.begin_node(&format!("cpu@{aff:x}"))?;
            w.property_string("device_type", "cpu")?;
            w.property_string("compatible", "arm,armv8")?;
            w.property_string("enable-method", "psci")?;
            // Fits: affinity uses at most 16 bits for MAX_DOM0_VCPUS.
            w.property_u32("reg", aff as u32)?;
            w.end_node(c)?;
        }
        w.end_node(cpus)?;

        let psci = w.begin_node("psci")?;
        w.property("compatible", b"arm,psci-1.0\0arm,psci-0.2\0arm,psci\0")?;
        w.property_string("method", "hvc")?;
        w.property_u32("cpu_off", 0x8400_0002)?;
        w.property_u32("cpu_on", 0xc400_0003)?;
        w.end_node(psci)?;

        if let Some(h) = &cfg.hypervisor {
            let ph = t
                .phandle(self.gic)
                .ok_or(DtError::Missing("GIC phandle (for /hypervisor)"))?;
            let mut regs = Vec::with_capacity(1 + h.extended.len());
            regs.push(h.grant_table);
            regs.extend_from_slice(&h.extended);
            let n = w.begin_node("hypervisor")?;
            w.property("compatible", b"xen,xen-4.17\0xen,xen\0")?;
            w.property("reg", &encode_reg(&regs, ac, sc)?)?;
            w.property("interrupts", &gic_cells(1, h.evtchn_ppi_intid - 16, 0xf08))?;
            w.property_u32("interrupt-parent", ph)?;
            w.end_node(n)?;
        }
        Ok(())
    }
}

fn validate(cfg: &Dom0DtConfig) -> Result<(), DtError> {
    if cfg.nr_vcpus == 0 || cfg.nr_vcpus > MAX_DOM0_VCPUS {
        return Err(DtError::BadConfig("nr_vcpus out of range"));
    }
    if cfg.mem_banks.is_empty() || !cfg.mem_banks.iter().all(Range::is_valid) {
        return Err(DtError::BadConfig("dom0 memory banks empty or invalid"));
    }
    if cfg.gicr_size == 0 {
        return Err(DtError::BadConfig("gicr_size is 0"));
    }
    if cfg.bootargs.contains('\0') {
        return Err(DtError::BadConfig("bootargs contains NUL"));
    }
    if let Some(rd) = cfg.initrd {
        if !rd.is_empty() && rd.end().is_none() {
            return Err(DtError::BadConfig("initrd overflows"));
        }
    }
    if let Some(h) = &cfg.hypervisor {
        if !(16..32).contains(&h.evtchn_ppi_intid) {
            return Err(DtError::BadConfig(
                "event-channel PPI must be INTID 16..=31",
            ));
        }
        if !h.grant_table.is_valid() || !h.extended.iter().all(Range::is_valid) {
            return Err(DtError::BadConfig("hypervisor node ranges invalid"));
        }
    }
    Ok(())
}

/// Build dom0's DTB from the host DTB (see the module docs for the rules).
pub fn build_dom0_dtb(cfg: &Dom0DtConfig) -> Result<Vec<u8>, DtError> {
    validate(cfg)?;
    let t = Fdt::parse(cfg.host_dtb)?;
    let gic = find_gicv3(&t).ok_or(DtError::Missing("an arm,gic-v3 interrupt controller"))?;

    let mut hidden = alloc::vec![false; t.len()];
    for p in cfg.hide_paths {
        if let Some(id) = t.find_path(p) {
            if id != t.root() {
                hidden[id] = true;
            }
        }
    }
    let its: Vec<u32> = t
        .ids()
        .filter(|&id| t.is_compatible(id, "arm,gic-v3-its"))
        .filter_map(|id| t.phandle(id))
        .collect();
    let chosen = t
        .node(t.root())
        .children
        .iter()
        .copied()
        .find(|&c| t.node(c).name == "chosen");

    let b = Builder {
        t: &t,
        cfg,
        gic,
        hidden,
        its,
        chosen,
    };
    let mut w = FdtWriter::new()?;
    b.emit(&mut w, t.root())?;
    Ok(w.finish()?)
}

/// Cover `r` with whole pages; ranges running past 2^64 are clamped to the top.
fn page_cover(r: &Range) -> Option<Range> {
    if r.is_empty() {
        return None;
    }
    let start = r.start & !(PAGE - 1);
    let last = r.last().unwrap_or(u64::MAX) | (PAGE - 1);
    Some(Range::new(start, (last - start).saturating_add(1)))
}

/// Host MMIO ranges and SPIs that dom0 (described by `dom0_dtb`, the output
/// of [`build_dom0_dtb`]) must get 1:1.
///
/// MMIO: every translated `reg` of every available device node, plus the
/// ECAM `reg` and `ranges` windows (CPU side) of PCI host bridges; memory
/// nodes, `/reserved-memory`, `/chosen`, `/cpus`, PSCI, `/hypervisor` and the
/// GIC (emulated) are left out, and so is every node with a `reg` overlapping
/// `exclude` (pass the hypervisor's UART and all host RAM). Results are
/// page-aligned, merged, and never overlap `exclude`, the GIC or memory.
///
/// SPIs: from those nodes' `interrupts` / `interrupts-extended` and PCI
/// bridges' `interrupt-map` entries targeting the GIC.
pub fn dom0_passthrough(dom0_dtb: &[u8], exclude: &[Range]) -> Result<Passthrough, DtError> {
    let t = Fdt::parse(dom0_dtb)?;
    let gic = find_gicv3(&t).ok_or(DtError::Missing("an arm,gic-v3 interrupt controller"))?;

    // skip[id]: node and subtree contribute nothing.
    let mut skip = alloc::vec![false; t.len()];
    let mut holes: Vec<Range> = exclude.iter().filter_map(page_cover).collect();
    for id in t.ids() {
        let n = t.node(id);
        if let Some(p) = n.parent {
            if skip[p] || is_pci_bus(&t, p) {
                skip[id] = true;
                continue;
            }
        }
        if id == t.root() {
            continue;
        }
        let special = (n.depth == 1
            && matches!(
                n.base_name(),
                "chosen" | "cpus" | "hypervisor" | "reserved-memory" | "aliases" | "__symbols__"
            ))
            || is_psci(&t, id);
        if id == gic || is_memory(&t, id) {
            // Never hand these out, even if another node claims them.
            for r in t.reg(id)? {
                holes.extend(page_cover(&r));
            }
            skip[id] = true;
        } else if special || !t.is_available(id) {
            skip[id] = true;
        }
    }

    let mut mmio: Vec<Range> = Vec::new();
    let mut spis: BTreeMap<u32, bool> = BTreeMap::new();
    for id in t.ids() {
        if skip[id] || id == t.root() {
            continue;
        }
        let mut regs = t.reg(id)?;
        let mut irqs = gic_irqs(&t, id, gic)?;
        if is_pci_bus(&t, id) {
            regs.extend(pci_windows(&t, id)?);
            irqs.extend(pci_interrupt_map(&t, id, gic)?);
        }
        if regs.iter().any(|r| exclude.iter().any(|e| e.overlaps(r))) {
            continue;
        }
        mmio.extend(regs.iter().filter_map(page_cover));
        for s in irqs.iter().filter(|s| s.is_spi()) {
            spis.entry(s.intid).or_insert(s.is_edge());
        }
    }
    merge_ranges(&mut mmio);
    let mut mmio = subtract_ranges(&mmio, &holes);
    // A range covering all of [0, 2^64) is not representable and merging
    // clamps it one byte short: drop that partial top page (found by fuzzing).
    for r in &mut mmio {
        r.size &= !(PAGE - 1);
    }
    mmio.retain(|r| !r.is_empty());
    Ok(Passthrough {
        mmio,
        spis: spis.into_iter().collect(),
    })
}

/// CPU-side windows of a PCI host bridge's `ranges` (child address = 3 cells).
fn pci_windows(t: &Fdt, id: NodeId) -> Result<Vec<Range>, DtError> {
    let Some(v) = t.prop(id, "ranges") else {
        return Ok(Vec::new());
    };
    let parent = t
        .node(id)
        .parent
        .ok_or(DtError::Malformed("PCI bridge at the root"))?;
    let cac = t.address_cells(id)?;
    let csc = t.size_cells(id)?;
    let pac = t.address_cells(parent)?;
    let stride = ((cac + pac + csc) * 4) as usize;
    if cac < 1 || stride == 0 || v.len() % stride != 0 {
        return Err(DtError::Malformed("bad PCI ranges"));
    }
    let mut out = Vec::new();
    for e in v.chunks_exact(stride) {
        // Skip the child address; parent (CPU) address and size follow.
        let tail = &e[(cac * 4) as usize..];
        let r = parse_pairs(tail, pac, csc)?;
        for r in r {
            if let Some(t) = t.translate(id, r)? {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// GIC specifiers from a PCI bridge's `interrupt-map`.
fn pci_interrupt_map(t: &Fdt, id: NodeId, gic: NodeId) -> Result<Vec<IrqSpec>, DtError> {
    let Some(v) = t.prop(id, "interrupt-map") else {
        return Ok(Vec::new());
    };
    let c: Vec<u32> = cells(v).collect();
    let child = (t.address_cells(id)?
        + t.interrupt_cells(id)
            .ok_or(DtError::Malformed("interrupt-map without #interrupt-cells"))?)
        as usize;
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < c.len() {
        let ph = *c
            .get(i + child)
            .ok_or(DtError::Malformed("interrupt-map truncated"))?;
        let ctrl = t
            .by_phandle(ph)
            .ok_or(DtError::Malformed("interrupt-map: unknown phandle"))?;
        // The parent unit address uses the parent's own #address-cells (default 0).
        let pac = t.prop_u32(ctrl, "#address-cells").unwrap_or(0) as usize;
        let pic = t.interrupt_cells(ctrl).ok_or(DtError::Malformed(
            "interrupt-map parent without #interrupt-cells",
        ))? as usize;
        if pac > 4 {
            return Err(DtError::Malformed(
                "interrupt-map parent #address-cells too large",
            ));
        }
        let start = i + child + 1 + pac;
        let spec = c
            .get(start..start + pic)
            .ok_or(DtError::Malformed("interrupt-map truncated"))?;
        if ctrl == gic && pic == 3 {
            if let Some(s) = IrqSpec::from_gic_cells(spec[0], spec[1], spec[2]) {
                out.push(s);
            }
        }
        i = start + pic;
    }
    Ok(out)
}
