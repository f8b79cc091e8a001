//! Guest stage-1 walks with guest-built tables and guest-chosen registers.
//!
//! The tables are random descriptors in a FakeRam (mostly pointing back
//! into it), the registers random with sane fields most of the time. The
//! walker must never panic and:
//! - with the MMU off, IPA = VA (below 2^48);
//! - a translation keeps the VA's offset in its 4 KiB page;
//! - a successful write walk reports `writable`;
//! - without TCR.HA/HD nothing in guest memory changes, and the same walk
//!   gives the same answer twice;
//! - `for_each_page` hands out contiguous in-order pieces covering the
//!   buffer, each within one 4 KiB VA page, and the copies agree with it.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use hv_arm::s1walk::{copy_from_guest, copy_to_guest, for_each_page, translate, AccessError, S1Regs, PIECE_SIZE};
use hv_core::guest::fake::FakeRam;
use hv_core::guest::GuestMemory;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x4000_0000;
const LEN: usize = 256 << 10;

#[derive(Arbitrary, Debug)]
struct Regs {
    sctlr: u64,
    tcr: u64,
    ttbr: [u64; 2],
    mmu_on: bool,
    sane: bool,
    t0sz: u8,
    t1sz: u8,
    tg: u8,
    ips: u8,
    flags: u8,
    ttbr_slot: [u8; 2],
}

#[derive(Arbitrary, Debug)]
struct Desc {
    slot: u16,
    /// Output page inside RAM (table or page), or `raw` verbatim.
    page: u8,
    kind: u8,
    attrs: u16,
    raw: Option<u64>,
}

#[derive(Arbitrary, Debug)]
enum Probe {
    /// Write a plausible table chain for `va` (as the guest kernel would),
    /// then translate it: gets walks past the first levels.
    Plant { va: u64, low: bool, write: bool, kinds: [u8; 4], pages: [u8; 4], attrs: [u16; 4] },
    Translate { va: u64, write: bool, low: bool },
    Buffer { va: u64, len: u16, write: bool, low: bool },
}

fn regs(r: &Regs) -> S1Regs {
    let gran = |g: u8| [12u64, 14, 16][usize::from(g) % 3];
    if !r.sane {
        return S1Regs { sctlr_el1: r.sctlr, tcr_el1: r.tcr, ttbr0_el1: r.ttbr[0], ttbr1_el1: r.ttbr[1] };
    }
    let sizes = [16u64, 25, 28, 33, 39, 12, 42, 48];
    let tg0 = match gran(r.tg) { 12 => 0, 16 => 1, _ => 2 };
    let tg1 = match gran(r.tg >> 2) { 12 => 2, 14 => 1, _ => 3 };
    let mut tcr = sizes[usize::from(r.t0sz) % 8]
        | sizes[usize::from(r.t1sz) % 8] << 16
        | tg0 << 14
        | tg1 << 30
        | u64::from(r.ips % 7) << 32;
    // TBI0/1, HA, HD, HPD0/1, EPD0/1, E0PD0/1 from the flag bits.
    let f = u64::from(r.flags);
    tcr |= (f & 3) << 37 | (f >> 2 & 3) << 39 | (f >> 4 & 3) << 41;
    if f & 0x40 != 0 {
        tcr |= 1 << 7 | 1 << 55;
    }
    if f & 0x80 != 0 {
        tcr |= 1 << 23 | 1 << 56;
    }
    let ttbr = |i: usize| BASE + u64::from(r.ttbr_slot[i] % 4) * 0x1_0000 | (r.ttbr[i] & 0xffff_0000_0000_0001);
    S1Regs {
        sctlr_el1: if r.mmu_on { 1 | (r.sctlr & (1 << 25)) } else { 0 },
        tcr_el1: tcr,
        ttbr0_el1: ttbr(0),
        ttbr1_el1: ttbr(1),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(r) = Regs::arbitrary(&mut u) else { return };
    let regs = regs(&r);
    let mem = FakeRam::new(BASE, LEN);
    let Ok(descs) = Vec::<Desc>::arbitrary(&mut u) else { return };
    for d in descs.iter().take(256) {
        let v = d.raw.unwrap_or_else(|| {
            let out = BASE + u64::from(d.page % 64) * 0x1000 * if d.kind & 0x80 != 0 { 16 } else { 1 };
            let typ = match d.kind % 4 {
                0 => 0b11, // table / page
                1 => 0b01, // block
                2 => 0b00, // invalid
                _ => 0b10,
            };
            out | typ | u64::from(d.attrs & 0x0ffc) | (u64::from(d.attrs >> 12) << 51)
        });
        let off = u64::from(d.slot) * 8 % LEN as u64;
        mem.write_u64(BASE + off, v).unwrap();
    }
    let hw_flags = regs.tcr_el1 & (3 << 39) != 0;
    let Ok(probes) = Vec::<Probe>::arbitrary(&mut u) else { return };
    for p in probes.iter().take(32) {
        match *p {
            Probe::Plant { va, low, write, kinds, pages, attrs } => {
                let va = shape(va, low);
                plant(&regs, &mem, va, kinds, pages, attrs);
                let t = translate(&regs, &mem, va, write);
                if let Ok(t) = t {
                    assert_eq!(t.ipa & 0xfff, va & 0xfff, "va {va:#x} -> {t:?}");
                    assert!(!write || t.writable);
                }
            }
            Probe::Translate { va, write, low } => {
                let va = shape(va, low);
                let before = (!hw_flags).then(|| mem.bytes.borrow().clone());
                let t = translate(&regs, &mem, va, write);
                if let Some(b) = before {
                    assert!(*mem.bytes.borrow() == b, "walk without HA/HD wrote guest memory");
                    assert_eq!(translate(&regs, &mem, va, write), t, "walk not deterministic");
                }
                if let Ok(t) = t {
                    assert_eq!(t.ipa & 0xfff, va & 0xfff, "va {va:#x} -> {t:?}");
                    if write {
                        assert!(t.writable, "write walk of {va:#x} succeeded read-only: {t:?}");
                    }
                    if regs.sctlr_el1 & 1 == 0 {
                        assert_eq!(t.ipa, va);
                    }
                    assert!(t.ipa < 1 << 48);
                }
            }
            Probe::Buffer { va, len, write, low } => {
                let va = shape(va, low);
                let len = usize::from(len) % (3 * PIECE_SIZE + 17);
                let mut next = 0usize;
                let mut pieces = Vec::new();
                let r = for_each_page(&regs, &mem, va, len, write, |ipa, n, off| {
                    assert_eq!(off, next, "pieces out of order");
                    assert!(n > 0 && n <= PIECE_SIZE);
                    let cur = va + off as u64;
                    assert!((cur & 0xfff) as usize + n <= PIECE_SIZE, "piece crosses a page");
                    assert_eq!(ipa & 0xfff, cur & 0xfff);
                    next += n;
                    pieces.push((ipa, n));
                    Ok::<(), ()>(())
                });
                match r {
                    Ok(()) => assert_eq!(next, len),
                    Err(AccessError::Wrap) => assert!(va.checked_add(len as u64 - 1).is_none()),
                    Err(AccessError::TooLong) => panic!("len {len} too long"),
                    Err(_) => {}
                }
                if hw_flags {
                    continue;
                }
                if write {
                    let data: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                    let before = mem.bytes.borrow().clone();
                    let res = copy_to_guest(&regs, &mem, va, &data);
                    if r.is_err() {
                        // Refused by the first (translate-only) pass: untouched.
                        assert!(res.is_err(), "copy_to_guest succeeded where the walk failed");
                        assert!(*mem.bytes.borrow() == before, "refused copy_to_guest wrote the guest");
                    }
                } else {
                    let mut buf = vec![0u8; len];
                    if copy_from_guest(&regs, &mem, va, &mut buf).is_ok() {
                        assert!(r.is_ok());
                        let mut off = 0;
                        for &(ipa, n) in &pieces {
                            let mut b = vec![0; n];
                            mem.read(ipa, &mut b).unwrap();
                            assert_eq!(&buf[off..off + n], &b[..], "copy_from_guest disagrees with the walk");
                            off += n;
                        }
                    }
                }
            }
        }
    }
});

/// Mostly low (TTBR0) or high (TTBR1) canonical VAs in a small window.
fn shape(va: u64, low: bool) -> u64 {
    if va >> 60 == 0xf {
        return va;
    }
    let small = va & 0x3f_ffff_ffff;
    if low {
        small
    } else {
        !small & !0xfff | (va & 0xfff)
    }
}

/// Descriptors along `va`'s walk, following the architecture's indexing
/// for the range, granule and size the registers select.
fn plant(regs: &S1Regs, mem: &FakeRam, va: u64, kinds: [u8; 4], pages: [u8; 4], attrs: [u16; 4]) {
    let tcr = regs.tcr_el1;
    let upper = va & (1 << 55) != 0;
    let (txsz, shift, ttbr) = if upper {
        let s = match (tcr >> 30) & 3 { 1 => 14, 2 => 12, 3 => 16, _ => return };
        ((tcr >> 16) & 0x3f, s, regs.ttbr1_el1)
    } else {
        let s = match (tcr >> 14) & 3 { 0 => 12, 1 => 16, 2 => 14, _ => return };
        (tcr & 0x3f, s, regs.ttbr0_el1)
    };
    let va_bits = 64u32.saturating_sub(txsz as u32);
    if !(25..=52).contains(&va_bits) {
        return;
    }
    let stride = shift - 3;
    let nlevels = (va_bits - shift).div_ceil(stride);
    if nlevels > 4 {
        return;
    }
    let granule = 1u64 << shift;
    let nr_pages = LEN as u64 / granule;
    let mut table = ttbr & 0x0000_ffff_ffff_ffc0;
    for (k, level) in (4 - nlevels..=3).enumerate() {
        let ls = shift + (3 - level) * stride;
        let bits = if k == 0 { va_bits - ls } else { stride };
        let idx = (va >> ls) & ((1 << bits) - 1);
        let out = BASE + u64::from(pages[level as usize]) % nr_pages * granule;
        let a = u64::from(attrs[level as usize]);
        let leaf = level == 3 || kinds[level as usize] % 4 == 1;
        let desc = if leaf {
            let typ = if level == 3 { 0b11 } else { 0b01 };
            let oa = out & !((1u64 << ls) - 1) & 0x0000_ffff_ffff_ffff;
            oa | typ | (a & 0x0ffc) | (a >> 12) << 51 | if kinds[level as usize] & 0x10 == 0 { 1 << 10 } else { 0 }
        } else {
            out | 0b11 | (a >> 14) << 61
        };
        if mem.write_u64(table + idx * 8, desc).is_err() {
            return;
        }
        if leaf {
            return;
        }
        table = out;
    }
}
