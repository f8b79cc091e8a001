//! Just enough of the flattened device tree xl gives the guest: `/chosen/bootargs` and the
//! first `/memory*` node's `reg` (two cells of address, two of size, as libxl writes them).
//! Byte reads only (the DTB may sit anywhere; Device memory wants aligned accesses).

use crate::rt::rd8;

fn be32(a: u64) -> u32 {
    u32::from_be_bytes([rd8(a), rd8(a + 1), rd8(a + 2), rd8(a + 3)])
}

fn be64(a: u64) -> u64 {
    ((be32(a) as u64) << 32) | be32(a + 4) as u64
}

pub struct Dtb {
    pub base: u64,
    pub size: u64,
}

pub struct Facts {
    /// `/chosen/bootargs` as (address, length) in the DTB.
    pub bootargs: Option<(u64, usize)>,
    /// The first RAM bank.
    pub mem: Option<(u64, u64)>,
}

impl Dtb {
    pub fn at(base: u64) -> Option<Dtb> {
        if base == 0 || !base.is_multiple_of(8) || be32(base) != 0xd00d_feed {
            return None;
        }
        let size = be32(base + 4) as u64;
        (40..(2 << 20)).contains(&size).then_some(Dtb { base, size })
    }

    fn name_eq(&self, at: u64, s: &[u8]) -> bool {
        for (i, &c) in s.iter().enumerate() {
            if rd8(at + i as u64) != c {
                return false;
            }
        }
        rd8(at + s.len() as u64) == 0
    }

    fn starts(&self, at: u64, s: &[u8]) -> bool {
        s.iter().enumerate().all(|(i, &c)| rd8(at + i as u64) == c)
    }

    pub fn facts(&self) -> Facts {
        let b = self.base;
        let off_struct = b + be32(b + 8) as u64;
        let off_strings = b + be32(b + 12) as u64;
        let end = b + self.size;
        let mut facts = Facts { bootargs: None, mem: None };
        let mut p = off_struct;
        // Node at depth 1 we are in: 1 = chosen, 2 = memory, 0 = other.
        let mut depth = 0u32;
        let mut which = 0u32;
        while p + 4 <= end {
            let tok = be32(p);
            p += 4;
            match tok {
                1 => {
                    // FDT_BEGIN_NODE: NUL-terminated name, padded to 4.
                    depth += 1;
                    if depth == 2 {
                        which = if self.name_eq(p, b"chosen") {
                            1
                        } else if self.starts(p, b"memory") {
                            2
                        } else {
                            0
                        };
                    }
                    let mut n = 0;
                    while rd8(p + n) != 0 {
                        n += 1;
                    }
                    p += (n + 1 + 3) & !3;
                }
                2 => {
                    // FDT_END_NODE
                    depth = depth.saturating_sub(1);
                    if depth < 2 {
                        which = 0;
                    }
                }
                3 => {
                    // FDT_PROP: len, nameoff, value
                    let len = be32(p) as u64;
                    let name = off_strings + be32(p + 4) as u64;
                    let val = p + 8;
                    if depth == 2 && which == 1 && self.name_eq(name, b"bootargs") && len > 0 {
                        facts.bootargs = Some((val, (len - 1) as usize));
                    }
                    if depth == 2 && which == 2 && facts.mem.is_none() && self.name_eq(name, b"reg") && len >= 16 {
                        facts.mem = Some((be64(val), be64(val + 8)));
                    }
                    p = val + ((len + 3) & !3);
                }
                4 => {}       // FDT_NOP
                _ => break,   // FDT_END or garbage
            }
        }
        facts
    }
}

/// The value of `key=` in the command line at (addr, len), copied to `out`.
pub fn arg<'a>(cmdline: (u64, usize), key: &str, out: &'a mut [u8; 64]) -> Option<&'a str> {
    let (a, len) = cmdline;
    let mut line = [0u8; 512];
    let n = len.min(line.len());
    for (i, c) in line.iter_mut().enumerate().take(n) {
        *c = rd8(a + i as u64);
    }
    let s = core::str::from_utf8(&line[..n]).ok()?;
    for w in s.split_ascii_whitespace() {
        if let Some(v) = w.strip_prefix(key).and_then(|v| v.strip_prefix('=')) {
            let m = v.len().min(out.len());
            out[..m].copy_from_slice(&v.as_bytes()[..m]);
            return core::str::from_utf8(&out[..m]).ok();
        }
    }
    None
}
