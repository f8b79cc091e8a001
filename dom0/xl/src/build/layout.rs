//! Guest physical placement of a domU (docs/domains.md, "Creating a domain"
//! steps 3 and 6): RAM from `GUEST_RAM0_BASE` up, the kernel at RAM base +
//! `text_offset`, the ramdisk 2 MiB-aligned above the kernel's `image_size`,
//! the device tree 2 MiB-aligned above the ramdisk. Everything must fit in
//! the populated RAM.

use std::fmt;

use xen_abi::arch_arm::{GUEST_RAM0_BASE, GUEST_RAM0_SIZE};

use super::image::Arm64Image;
use super::{align_up, MIB2, PAGE_SHIFT, PAGE_SIZE};

/// Largest device tree Linux accepts (`booting.rst`).
pub const MAX_DTB: u64 = 2 << 20;

/// `[addr, addr + len)` in guest physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub addr: u64,
    /// Bytes.
    pub len: u64,
}

impl Region {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr + self.len
    }

    /// Whether the two share a byte.
    pub fn overlaps(&self, o: &Region) -> bool {
        self.addr < o.end() && o.addr < self.end()
    }

    /// Whether `o` lies inside.
    pub fn contains(&self, o: &Region) -> bool {
        o.addr >= self.addr && o.end() <= self.end()
    }

    /// First guest frame.
    pub fn gfn(&self) -> u64 {
        self.addr >> PAGE_SHIFT
    }

    /// Frames touched (from the first to the last byte's).
    pub fn pages(&self) -> u64 {
        (self.end().div_ceil(PAGE_SIZE)) - self.gfn()
    }
}

/// Why the guest's images do not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// Less than 1 MiB of RAM requested.
    NoRam,
    /// More RAM than bank 0 holds (3 GiB).
    TooMuchRam(u64),
    /// Kernel, ramdisk and device tree need RAM up to this address.
    DoesNotFit {
        /// One past the last byte needed.
        need_end: u64,
        /// One past the last byte of RAM.
        ram_end: u64,
    },
    /// The device tree is 2 MiB or more.
    DtbTooLarge(u64),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::NoRam => f.write_str("ram size is 0"),
            LayoutError::TooMuchRam(kb) => write!(
                f,
                "memory of {} MiB is more than the {} MiB of guest RAM bank 0",
                kb / 1024,
                GUEST_RAM0_SIZE >> 20
            ),
            LayoutError::DoesNotFit { need_end, ram_end } => write!(
                f,
                "not enough memory for the kernel, ramdisk and device tree: they need {} MiB, \
                 the domain has {} MiB",
                (need_end - GUEST_RAM0_BASE).div_ceil(1 << 20),
                (ram_end - GUEST_RAM0_BASE) >> 20
            ),
            LayoutError::DtbTooLarge(n) => write!(f, "device tree of {n} bytes is over 2 MiB"),
        }
    }
}

/// The guest's RAM for `target_memkb`: libxl's `xc_dom_mem_init(mem_kb /
/// 1024)` counts whole MiB, all in bank 0.
pub fn ram(target_memkb: u64) -> Result<Region, LayoutError> {
    let bytes = (target_memkb / 1024) << 20;
    if bytes == 0 {
        return Err(LayoutError::NoRam);
    }
    if bytes > GUEST_RAM0_SIZE {
        return Err(LayoutError::TooMuchRam(target_memkb));
    }
    Ok(Region {
        addr: GUEST_RAM0_BASE,
        len: bytes,
    })
}

/// Where kernel and ramdisk go; the device tree's place follows from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The RAM.
    pub ram: Region,
    /// The kernel as loaded: file bytes at RAM base + `text_offset`, the
    /// region reserved up to `image_size` (at least the file).
    pub kernel: Region,
    /// Bytes of the kernel file (what is copied).
    pub kernel_file: u64,
    /// The ramdisk, if any.
    pub ramdisk: Option<Region>,
    /// Where the device tree goes (2 MiB aligned, after everything else).
    pub dtb_addr: u64,
}

/// Places the kernel and ramdisk in `ram`.
pub fn plan(
    ram: Region,
    img: &Arm64Image,
    kernel_file: u64,
    ramdisk_len: Option<u64>,
) -> Result<Plan, LayoutError> {
    let too_big = || LayoutError::DoesNotFit {
        need_end: u64::MAX,
        ram_end: ram.end(),
    };
    let kaddr = ram.addr.checked_add(img.text_offset).ok_or_else(too_big)?;
    let klen = img.image_size.max(kernel_file);
    let kernel = Region {
        addr: kaddr,
        len: klen,
    };
    kaddr.checked_add(klen).ok_or_else(too_big)?;
    let mut next = align_up(kernel.end(), MIB2).ok_or_else(too_big)?;
    let ramdisk = match ramdisk_len {
        Some(len) => {
            let r = Region { addr: next, len };
            next = next
                .checked_add(len)
                .and_then(|e| align_up(e, MIB2))
                .ok_or_else(too_big)?;
            Some(r)
        }
        None => None,
    };
    Ok(Plan {
        ram,
        kernel,
        kernel_file,
        ramdisk,
        dtb_addr: next,
    })
}

/// The final placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Kernel, ramdisk and RAM.
    pub plan: Plan,
    /// The device tree.
    pub dtb: Region,
}

impl Plan {
    /// Adds a device tree of `len` bytes and checks that all fits in RAM.
    pub fn with_dtb(self, len: u64) -> Result<Layout, LayoutError> {
        if len >= MAX_DTB {
            return Err(LayoutError::DtbTooLarge(len));
        }
        let dtb = Region {
            addr: self.dtb_addr,
            len,
        };
        if !self.ram.contains(&dtb) {
            return Err(LayoutError::DoesNotFit {
                need_end: dtb.end(),
                ram_end: self.ram.end(),
            });
        }
        Ok(Layout { plan: self, dtb })
    }
}

impl Layout {
    /// The regions written into guest memory: kernel file bytes, ramdisk,
    /// device tree.
    pub fn loaded(&self) -> Vec<Region> {
        let mut v = vec![Region {
            addr: self.plan.kernel.addr,
            len: self.plan.kernel_file,
        }];
        v.extend(self.plan.ramdisk);
        v.push(self.dtb);
        v
    }
}

/// Order of a 2 MiB extent (`PFN_2M_SHIFT`).
pub const ORDER_2M: u32 = 9;

/// The `populate_physmap` extents for `nr` frames from `gfn`: order 9 where
/// a 2 MiB-aligned run of 512 frames fits, order 0 for the rest. Each entry
/// is (order, first frames of its extents), in ascending address order;
/// together they cover exactly `[gfn, gfn + nr)`.
pub fn extents(gfn: u64, nr: u64) -> Vec<(u32, Vec<u64>)> {
    let big = 1u64 << ORDER_2M;
    let end = gfn + nr;
    let first_big = align_up(gfn, big).unwrap_or(end).min(end);
    let last_big = (end & !(big - 1)).max(first_big);
    let mut out = Vec::new();
    if first_big > gfn {
        out.push((0, (gfn..first_big).collect()));
    }
    if last_big > first_big {
        out.push((
            ORDER_2M,
            (first_big..last_big).step_by(big as usize).collect(),
        ));
    }
    if end > last_big {
        out.push((0, (last_big..end).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(text_offset: u64, image_size: u64) -> Arm64Image {
        Arm64Image {
            text_offset,
            image_size,
        }
    }

    #[test]
    fn ram_counts_whole_mib() {
        assert_eq!(ram(128 * 1024).unwrap().len, 128 << 20);
        assert_eq!(ram(128 * 1024 + 1023).unwrap().len, 128 << 20);
        assert_eq!(ram(1023), Err(LayoutError::NoRam));
        assert!(matches!(ram(4 << 20), Err(LayoutError::TooMuchRam(_))));
        assert_eq!(ram(3 << 20).unwrap().end(), 0x1_0000_0000);
    }

    /// Kernel, ramdisk and device tree never overlap, lie in RAM, are
    /// aligned as Linux requires, for many sizes.
    #[test]
    fn placements_are_sound() {
        let mut checked = 0;
        for mem_mb in [16u64, 64, 128, 512, 3072] {
            let r = ram(mem_mb * 1024).unwrap();
            for (off, isz) in [
                (0, 0),
                (0x8_0000, 0),
                (0, 0x20_0000),
                (0, 0x254_0000),
                (0x8_0000, 0x1f0_0000),
            ] {
                for klen in [0x1000u64, 0x1_2345, 0x150_0000] {
                    for rd in [
                        None,
                        Some(1u64),
                        Some(0x1f_ffff),
                        Some(0x20_0000),
                        Some(0x87_6543),
                    ] {
                        for dlen in [0x200u64, 0x1234, 0x1f_fff8] {
                            let Ok(p) = plan(r, &img(off, isz), klen, rd) else {
                                continue;
                            };
                            let Ok(l) = p.with_dtb(dlen) else {
                                continue;
                            };
                            checked += 1;
                            let k = l.plan.kernel;
                            assert_eq!(k.addr, r.addr + off);
                            assert!(k.len >= klen && k.len >= isz);
                            assert!(r.contains(&l.dtb));
                            assert_eq!(l.dtb.addr % MIB2, 0);
                            assert_eq!(l.dtb.addr % 8, 0);
                            assert!(l.dtb.len < MAX_DTB);
                            assert!(!k.overlaps(&l.dtb));
                            if let Some(rd) = l.plan.ramdisk {
                                assert!(r.contains(&rd));
                                assert_eq!(rd.addr % MIB2, 0);
                                assert!(rd.addr >= k.addr + isz);
                                assert!(!k.overlaps(&rd) && !rd.overlaps(&l.dtb));
                            }
                            assert!(r.contains(&k));
                        }
                    }
                }
            }
        }
        assert!(checked > 500, "{checked}");
    }

    #[test]
    fn too_small_and_too_big() {
        let r = ram(16 * 1024).unwrap();
        let p = plan(r, &img(0, 0x20_0000), 0x10_0000, Some(14 << 20)).unwrap();
        assert_eq!(
            p.with_dtb(0x1000),
            Err(LayoutError::DoesNotFit {
                need_end: 0x4000_0000 + (16 << 20) + 0x1000,
                ram_end: 0x4000_0000 + (16 << 20)
            })
        );
        let p = plan(r, &img(0, 0), 0x1000, None).unwrap();
        assert_eq!(p.with_dtb(MAX_DTB), Err(LayoutError::DtbTooLarge(MAX_DTB)));
        assert!(plan(r, &img(u64::MAX, 0), 1, None).is_err());
        let e = LayoutError::DoesNotFit {
            need_end: 0x4000_0000 + (17 << 20) + 1,
            ram_end: 0x4000_0000 + (16 << 20),
        };
        assert_eq!(
            e.to_string(),
            "not enough memory for the kernel, ramdisk and device tree: they need 18 MiB, the domain has 16 MiB"
        );
    }

    #[test]
    fn typical_debian_guest() {
        // 128 MiB, a 30 MiB kernel (bss to 32 MiB), a 5 MiB initrd.
        let r = ram(128 * 1024).unwrap();
        let l = plan(r, &img(0, 0x200_0000), 30 << 20, Some(5 << 20))
            .unwrap()
            .with_dtb(0x900)
            .unwrap();
        assert_eq!(l.plan.kernel.addr, 0x4000_0000);
        assert_eq!(l.plan.ramdisk.unwrap().addr, 0x4200_0000);
        assert_eq!(l.dtb.addr, 0x4260_0000);
        assert_eq!(l.loaded().len(), 3);
        assert_eq!(l.loaded()[0].len, 30 << 20);
    }

    #[test]
    fn extents_cover_exactly() {
        for (gfn, nr) in [
            (0x40000, 32768),
            (0x40000, 32768 + 5),
            (0x40001, 1030),
            (0x40000, 100),
            (0x401ff, 2),
        ] {
            let e = extents(gfn, nr);
            let mut covered = Vec::new();
            for (order, starts) in &e {
                for s in starts {
                    if *order == ORDER_2M {
                        assert_eq!(s % 512, 0);
                    }
                    covered.extend(*s..*s + (1 << order));
                }
            }
            assert_eq!(
                covered,
                (gfn..gfn + nr).collect::<Vec<_>>(),
                "{gfn:#x}+{nr}"
            );
        }
        let e = extents(0x40000, 32768 + 5);
        assert_eq!(e[0].0, 9);
        assert_eq!(e[0].1.len(), 64);
        assert_eq!(e[1], (0, (0x48000..0x48005).collect()));
    }
}
