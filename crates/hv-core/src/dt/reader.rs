//! A defensive flattened-device-tree reader.
//!
//! The `fdt` crate panics on malformed blobs (it `unwrap`s and `assert`s while
//! walking the structure block), so untrusted boot DTBs are parsed here
//! instead: every offset is bounds-checked, every loop consumes input, and
//! nesting depth is capped. The whole tree is indexed up front into a node
//! arena; property values and names borrow from the blob.

use super::DtError;
use crate::mem::Range;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;

/// Maximum node nesting accepted (as libfdt's FDT_MAX_DEPTH). Also bounds the
/// recursion of the dom0 builder.
pub const MAX_DEPTH: usize = 32;
/// Maximum number of `/memreserve/` entries accepted.
pub const MAX_MEM_RESERVE: usize = 256;
/// Cells beyond this in `#address-cells` / `#size-cells` are rejected.
pub const MAX_CELLS: u32 = 4;

/// Index of a node in [`Fdt`]'s arena. The root is always 0.
pub type NodeId = usize;

#[derive(Clone, Copy, Debug)]
pub struct Prop<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

#[derive(Clone, Debug)]
pub struct Node<'a> {
    /// Full node name including any unit address (`""` for the root).
    pub name: &'a str,
    pub parent: Option<NodeId>,
    pub depth: usize,
    pub props: Vec<Prop<'a>>,
    pub children: Vec<NodeId>,
}

impl<'a> Node<'a> {
    /// Name without the `@unit-address` part.
    pub fn base_name(&self) -> &'a str {
        self.name.split('@').next().unwrap_or(self.name)
    }
}

/// A parsed, validated device tree.
#[derive(Clone, Debug)]
pub struct Fdt<'a> {
    nodes: Vec<Node<'a>>,
    phandles: BTreeMap<u32, NodeId>,
    /// The `/memreserve/` block (empty entries dropped).
    pub mem_reserve: Vec<Range>,
    pub boot_cpuid_phys: u32,
}

fn be32(data: &[u8], off: usize) -> Result<u32, DtError> {
    let end = off.checked_add(4).ok_or(DtError::Truncated)?;
    let b = data.get(off..end).ok_or(DtError::Truncated)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(data: &[u8], off: usize) -> Result<u64, DtError> {
    Ok((u64::from(be32(data, off)?) << 32)
        | u64::from(be32(data, off.checked_add(4).ok_or(DtError::Truncated)?)?))
}

/// NUL-terminated string at the start of `data` (the NUL must be present).
fn cstr(data: &[u8]) -> Result<&str, DtError> {
    let n = data
        .iter()
        .position(|&b| b == 0)
        .ok_or(DtError::Malformed("unterminated string"))?;
    core::str::from_utf8(&data[..n]).map_err(|_| DtError::Malformed("string is not UTF-8"))
}

fn align4(x: usize) -> Option<usize> {
    x.checked_add(3).map(|v| v & !3)
}

impl<'a> Fdt<'a> {
    /// Parse and validate a DTB. Trailing bytes after `totalsize` are ignored.
    pub fn parse(data: &'a [u8]) -> Result<Self, DtError> {
        if data.len() < HEADER_LEN {
            return Err(DtError::Truncated);
        }
        if be32(data, 0)? != FDT_MAGIC {
            return Err(DtError::BadMagic);
        }
        let totalsize = be32(data, 4)? as usize;
        let off_struct = be32(data, 8)? as usize;
        let off_strings = be32(data, 12)? as usize;
        let off_rsv = be32(data, 16)? as usize;
        let version = be32(data, 20)?;
        let last_comp = be32(data, 24)?;
        let boot_cpuid_phys = be32(data, 28)?;
        let size_strings = be32(data, 32)? as usize;
        if version < 16 || last_comp > 17 {
            return Err(DtError::BadVersion);
        }
        if totalsize < HEADER_LEN {
            return Err(DtError::BadHeader);
        }
        if totalsize > data.len() {
            return Err(DtError::Truncated);
        }
        let data = &data[..totalsize];
        let size_struct = if version >= 17 {
            be32(data, 36)? as usize
        } else {
            totalsize
                .checked_sub(off_struct)
                .ok_or(DtError::BadHeader)?
        };
        let in_bounds =
            |off: usize, len: usize| off.checked_add(len).is_some_and(|e| e <= totalsize);
        if !off_struct.is_multiple_of(4)
            || off_struct < HEADER_LEN
            || off_rsv < HEADER_LEN
            || !in_bounds(off_struct, size_struct)
            || !in_bounds(off_strings, size_strings)
            || off_rsv > totalsize
        {
            return Err(DtError::BadHeader);
        }
        let structs = &data[off_struct..off_struct + size_struct];
        let strings = &data[off_strings..off_strings + size_strings];

        // Memory reservation block: (address, size) pairs up to a (0, 0) entry.
        let mut mem_reserve = Vec::new();
        let mut off = off_rsv;
        let mut terminated = false;
        for _ in 0..=MAX_MEM_RESERVE {
            let addr = be64(data, off)?;
            let size = be64(data, off.checked_add(8).ok_or(DtError::Truncated)?)?;
            off = off.checked_add(16).ok_or(DtError::Truncated)?;
            if addr == 0 && size == 0 {
                terminated = true;
                break;
            }
            if size != 0 {
                mem_reserve.push(Range::new(addr, size));
            }
        }
        if !terminated {
            return Err(DtError::Malformed("memory reservation block too long"));
        }

        let mut fdt = Fdt {
            nodes: Vec::new(),
            phandles: BTreeMap::new(),
            mem_reserve,
            boot_cpuid_phys,
        };
        let mut stack: Vec<NodeId> = Vec::new();
        let mut pos = 0usize;
        let mut root_done = false;
        loop {
            let tok = be32(structs, pos)?;
            pos += 4;
            match tok {
                FDT_BEGIN_NODE => {
                    if root_done {
                        return Err(DtError::Malformed("second root node"));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(DtError::TooDeep);
                    }
                    let name = cstr(structs.get(pos..).ok_or(DtError::Truncated)?)?;
                    pos = align4(pos + name.len() + 1).ok_or(DtError::Truncated)?;
                    let id = fdt.nodes.len();
                    let parent = stack.last().copied();
                    fdt.nodes.push(Node {
                        name,
                        parent,
                        depth: stack.len(),
                        props: Vec::new(),
                        children: Vec::new(),
                    });
                    if let Some(p) = parent {
                        fdt.nodes[p].children.push(id);
                    }
                    stack.push(id);
                }
                FDT_END_NODE => {
                    stack
                        .pop()
                        .ok_or(DtError::Malformed("unbalanced END_NODE"))?;
                    if stack.is_empty() {
                        root_done = true;
                    }
                }
                FDT_PROP => {
                    let cur = *stack
                        .last()
                        .ok_or(DtError::Malformed("property outside a node"))?;
                    let len = be32(structs, pos)? as usize;
                    let nameoff = be32(structs, pos + 4)? as usize;
                    pos += 8;
                    let end = pos.checked_add(len).ok_or(DtError::Truncated)?;
                    let value = structs.get(pos..end).ok_or(DtError::Truncated)?;
                    let name = cstr(
                        strings
                            .get(nameoff..)
                            .ok_or(DtError::Malformed("bad property name offset"))?,
                    )?;
                    pos = align4(end).ok_or(DtError::Truncated)?;
                    fdt.nodes[cur].props.push(Prop { name, value });
                }
                FDT_NOP => {}
                FDT_END => {
                    if !root_done || !stack.is_empty() {
                        return Err(DtError::Malformed("END before the root node closed"));
                    }
                    break;
                }
                _ => return Err(DtError::Malformed("unknown structure token")),
            }
        }
        if fdt.nodes.is_empty() {
            return Err(DtError::Malformed("no root node"));
        }
        for id in 0..fdt.nodes.len() {
            if let Some(ph) = fdt.phandle(id) {
                // First definition wins; duplicates are a firmware bug we tolerate.
                fdt.phandles.entry(ph).or_insert(id);
            }
        }
        Ok(fdt)
    }

    pub fn root(&self) -> NodeId {
        0
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id]
    }

    /// All node ids in document (depth-first) order.
    pub fn ids(&self) -> core::ops::Range<NodeId> {
        0..self.nodes.len()
    }

    /// Look a node up by absolute path. A path component without `@` also
    /// matches a node named `component@unit` (libfdt semantics); the first
    /// match wins.
    pub fn find_path(&self, path: &str) -> Option<NodeId> {
        let rest = path.strip_prefix('/')?;
        let mut cur = self.root();
        for comp in rest.split('/').filter(|c| !c.is_empty()) {
            let exact = self.nodes[cur]
                .children
                .iter()
                .copied()
                .find(|&c| self.nodes[c].name == comp);
            cur = match exact {
                Some(c) => c,
                None if !comp.contains('@') => self.nodes[cur]
                    .children
                    .iter()
                    .copied()
                    .find(|&c| self.nodes[c].base_name() == comp)?,
                None => return None,
            };
        }
        Some(cur)
    }

    /// Resolve a path or an `/aliases` name (optionally followed by `/subpath`).
    pub fn resolve_path_or_alias(&self, s: &str) -> Option<NodeId> {
        if s.starts_with('/') {
            return self.find_path(s);
        }
        let (alias, sub) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let aliases = self.find_path("/aliases")?;
        let target = self.prop_str(aliases, alias)?;
        if !target.starts_with('/') {
            return None; // no alias chains
        }
        match sub {
            None => self.find_path(target),
            Some(sub) => {
                let mut p = String::from(target);
                p.push('/');
                p.push_str(sub);
                self.find_path(&p)
            }
        }
    }

    /// Absolute path of a node.
    pub fn path(&self, id: NodeId) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur {
            if self.nodes[c].parent.is_some() {
                parts.push(self.nodes[c].name);
            }
            cur = self.nodes[c].parent;
        }
        if parts.is_empty() {
            return String::from("/");
        }
        let mut s = String::new();
        for p in parts.iter().rev() {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    pub fn prop(&self, id: NodeId, name: &str) -> Option<&'a [u8]> {
        self.nodes[id]
            .props
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value)
    }

    pub fn has_prop(&self, id: NodeId, name: &str) -> bool {
        self.prop(id, name).is_some()
    }

    /// First cell of a property (needs at least 4 bytes).
    pub fn prop_u32(&self, id: NodeId, name: &str) -> Option<u32> {
        let v = self.prop(id, name)?;
        be32(v, 0).ok()
    }

    /// A string property (must be NUL-terminated UTF-8).
    pub fn prop_str(&self, id: NodeId, name: &str) -> Option<&'a str> {
        cstr(self.prop(id, name)?).ok()
    }

    /// Whether a string-list property contains `s`.
    pub fn prop_list_has(&self, id: NodeId, name: &str, s: &str) -> bool {
        self.prop(id, name)
            .is_some_and(|v| str_list(v).any(|x| x == s))
    }

    pub fn is_compatible(&self, id: NodeId, compat: &str) -> bool {
        self.prop_list_has(id, "compatible", compat)
    }

    /// The first `compatible` string, if any.
    pub fn first_compatible(&self, id: NodeId) -> Option<&'a str> {
        str_list(self.prop(id, "compatible")?).next()
    }

    /// `status` absent, `"okay"` or `"ok"`.
    pub fn is_available(&self, id: NodeId) -> bool {
        match self.prop(id, "status") {
            None => true,
            Some(_) => matches!(self.prop_str(id, "status"), Some("okay" | "ok")),
        }
    }

    /// `phandle` or legacy `linux,phandle`.
    pub fn phandle(&self, id: NodeId) -> Option<u32> {
        self.prop_u32(id, "phandle")
            .or_else(|| self.prop_u32(id, "linux,phandle"))
    }

    pub fn by_phandle(&self, ph: u32) -> Option<NodeId> {
        self.phandles.get(&ph).copied()
    }

    /// `#address-cells` that applies to `id`'s children: the node's own
    /// property, else inherited from ancestors (as Linux and Xen do), else 2.
    pub fn address_cells(&self, id: NodeId) -> Result<u32, DtError> {
        self.inherited_cells(id, "#address-cells", 2)
    }

    /// `#size-cells` for `id`'s children (own, else inherited, else 1).
    pub fn size_cells(&self, id: NodeId) -> Result<u32, DtError> {
        self.inherited_cells(id, "#size-cells", 1)
    }

    fn inherited_cells(&self, id: NodeId, name: &str, default: u32) -> Result<u32, DtError> {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if let Some(v) = self.prop(c, name) {
                let n = be32(v, 0).map_err(|_| DtError::Malformed("bad #cells property"))?;
                if n > MAX_CELLS {
                    return Err(DtError::Malformed("#cells too large"));
                }
                return Ok(n);
            }
            cur = self.nodes[c].parent;
        }
        Ok(default)
    }

    /// `#interrupt-cells` of an interrupt controller / nexus (not inherited).
    pub fn interrupt_cells(&self, id: NodeId) -> Option<u32> {
        self.prop_u32(id, "#interrupt-cells")
            .filter(|&n| n <= MAX_CELLS)
    }

    /// The interrupt parent of `id`: `interrupt-parent` on the node or the
    /// nearest ancestor, resolved by phandle.
    pub fn interrupt_parent(&self, id: NodeId) -> Option<NodeId> {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if let Some(ph) = self.prop_u32(c, "interrupt-parent") {
                return self.by_phandle(ph);
            }
            cur = self.nodes[c].parent;
        }
        None
    }

    /// Raw `reg` entries of `id` in its parent's address space.
    pub fn reg_raw(&self, id: NodeId) -> Result<Vec<Range>, DtError> {
        let Some(v) = self.prop(id, "reg") else {
            return Ok(Vec::new());
        };
        let parent = self.nodes[id]
            .parent
            .ok_or(DtError::Malformed("reg on the root node"))?;
        let ac = self.address_cells(parent)?;
        let sc = self.size_cells(parent)?;
        parse_pairs(v, ac, sc)
    }

    /// `reg` entries translated to CPU physical addresses through the
    /// ancestors' `ranges`. Entries that cannot be translated (a parent with
    /// no `ranges`, or an address outside every `ranges` window) are dropped.
    pub fn reg(&self, id: NodeId) -> Result<Vec<Range>, DtError> {
        let raw = self.reg_raw(id)?;
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            if let Some(t) = self.translate(id, r)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Translate a range expressed in `id`'s parent bus space to a CPU address.
    pub fn translate(&self, id: NodeId, r: Range) -> Result<Option<Range>, DtError> {
        let mut bus = match self.nodes[id].parent {
            Some(p) => p,
            None => return Ok(Some(r)),
        };
        let mut r = r;
        // Each step moves one level up, so this terminates after <= depth steps.
        while let Some(up) = self.nodes[bus].parent {
            let Some(ranges) = self.prop(bus, "ranges") else {
                return Ok(None);
            };
            if !ranges.is_empty() {
                let cac = self.address_cells(bus)?;
                let csc = self.size_cells(bus)?;
                let pac = self.address_cells(up)?;
                if cac > 2 || pac > 2 {
                    return Ok(None); // e.g. PCI child address spaces: not translated here
                }
                let stride = ((cac + pac + csc) * 4) as usize;
                if stride == 0 || ranges.len() % stride != 0 {
                    return Err(DtError::Malformed("bad ranges length"));
                }
                let mut hit = None;
                for e in ranges.chunks_exact(stride) {
                    let child = read_cells(e, 0, cac)?;
                    let parent = read_cells(e, cac, pac)?;
                    let size = read_cells(e, cac + pac, csc)?;
                    let win = Range::new(child, size);
                    if win.contains_range(&r) || (r.size == 0 && win.contains(r.start)) {
                        hit = Some(
                            parent
                                .checked_add(r.start - child)
                                .map(|s| Range::new(s, r.size)),
                        );
                        break;
                    }
                }
                match hit {
                    Some(Some(t)) => r = t,
                    _ => return Ok(None),
                }
            }
            bus = up;
        }
        Ok(Some(r))
    }
}

/// Iterate a NUL-separated string list, skipping non-UTF-8 entries.
pub fn str_list(v: &[u8]) -> impl Iterator<Item = &str> {
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    v.split(|&b| b == 0)
        .filter_map(|s| core::str::from_utf8(s).ok())
}

/// Read `n` (<= 2 significant) big-endian cells starting at cell index `at`.
/// More than two cells are accepted only if the extra high cells are zero.
pub fn read_cells(v: &[u8], at: u32, n: u32) -> Result<u64, DtError> {
    let mut acc: u64 = 0;
    for i in 0..n {
        let off = (at as usize + i as usize) * 4;
        let c = be32(v, off)?;
        if acc >> 32 != 0 {
            return Err(DtError::Malformed("value wider than 64 bits"));
        }
        acc = (acc << 32) | u64::from(c);
    }
    Ok(acc)
}

/// Split a property into `(address, size)` pairs of `ac` / `sc` cells.
pub fn parse_pairs(v: &[u8], ac: u32, sc: u32) -> Result<Vec<Range>, DtError> {
    // Checked: callers pass `#cells` from the tree (found by fuzzing).
    let stride = (ac as usize + sc as usize) * 4;
    if stride == 0 || !v.len().is_multiple_of(stride) {
        return Err(DtError::Malformed(
            "reg length is not a multiple of its cells",
        ));
    }
    let mut out = Vec::with_capacity(v.len() / stride);
    for e in v.chunks_exact(stride) {
        out.push(Range::new(read_cells(e, 0, ac)?, read_cells(e, ac, sc)?));
    }
    Ok(out)
}

/// Big-endian cells of a property as u32s (trailing partial cell ignored).
pub fn cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz regression (dt_reader): absurd cell counts overflowed the stride.
    #[test]
    fn parse_pairs_huge_cell_counts() {
        assert!(parse_pairs(&[0; 8], u32::MAX, 1).is_err());
        assert!(parse_pairs(&[0; 8], u32::MAX, u32::MAX).is_err());
        assert!(parse_pairs(&[], u32::MAX, 1).unwrap().is_empty());
        assert!(read_cells(&[0; 8], u32::MAX, 2).is_err());
    }
}
