//! Guest memory as the hypercall layer touches it: every IPA is checked
//! against the domain's stage-2 (Normal memory only; writes need a
//! read-write mapping), then accessed through the EL2 identity map. Also
//! the hypervisor-owned pages behind grant tables and shared_info.

use crate::domain::Domain;
use crate::platform::HeapTables;
use alloc::alloc::{alloc_zeroed, Layout};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use hv_arm::stage2::{Access, MemType};
use hv_core::grant::{OutOfMemory, TableFrames};
use hv_core::guest::{GuestFault, GuestMemory};

const PAGE: u64 = 4096;

/// A zeroed, page-aligned page from the heap (never freed while its owner lives).
pub fn alloc_page() -> Option<u64> {
    let layout = Layout::from_size_align(PAGE as usize, PAGE as usize).ok()?;
    // SAFETY: non-zero size.
    let p = unsafe { alloc_zeroed(layout) };
    (!p.is_null()).then_some(p as u64)
}

/// Give back a page from `alloc_page` (0 is ignored).
pub fn free_page(pa: u64) {
    if pa == 0 {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(PAGE as usize, PAGE as usize) {
        // SAFETY: `pa` came from `alloc_page` with this layout and its
        // owner (a domain being dropped) no longer uses it.
        unsafe { alloc::alloc::dealloc(pa as *mut u8, layout) };
    }
}

/// `dom`'s RAM, by IPA.
pub struct DomMem<'a>(pub &'a Domain);

impl DomMem<'_> {
    /// Host PA of `ipa` if it is Normal memory of the domain (and writable if asked).
    pub fn pa(&self, ipa: u64, write: bool) -> Result<u64, GuestFault> {
        let s2 = self.0.s2.lock();
        match s2.translate(&HeapTables, ipa) {
            Some((pa, MemType::Normal, acc)) => {
                if write && acc == Access::ReadOnly {
                    Err(GuestFault::ReadOnly(ipa))
                } else {
                    Ok(pa)
                }
            }
            _ => Err(GuestFault::Unmapped(ipa)),
        }
    }

    /// Apply `f` to each page-sized piece of `[ipa, ipa + len)` as (pa, offset in buffer, length).
    fn pieces(&self, ipa: u64, len: usize, write: bool, mut f: impl FnMut(u64, usize, usize)) -> Result<(), GuestFault> {
        let mut done = 0usize;
        // Translate everything first so a fault leaves memory untouched.
        let mut parts: [(u64, usize, usize); 4] = [(0, 0, 0); 4];
        let mut n = 0;
        while done < len {
            let a = ipa.checked_add(done as u64).ok_or(GuestFault::Unmapped(ipa))?;
            let chunk = ((PAGE - (a % PAGE)) as usize).min(len - done);
            let pa = self.pa(a, write)?;
            if n == parts.len() {
                return Err(GuestFault::Unmapped(a)); // accesses are at most a few pages
            }
            parts[n] = (pa, done, chunk);
            n += 1;
            done += chunk;
        }
        for &(pa, off, l) in &parts[..n] {
            f(pa, off, l);
        }
        Ok(())
    }
}

/// Copy `len` bytes from `src`'s IPA `src_ipa` to `dst`'s IPA `dst_ipa`, each
/// span inside one page (a grant copy's; anything else is refused), straight
/// between the two host pages. Overlap (one page of one domain) behaves like
/// `memmove`.
pub fn copy_page_span(src: &DomMem, src_ipa: u64, dst: &DomMem, dst_ipa: u64, len: usize) -> Result<(), GuestFault> {
    let within = |ipa: u64| (ipa % PAGE) as usize + len <= PAGE as usize;
    if !within(src_ipa) {
        return Err(GuestFault::Unmapped(src_ipa));
    }
    if !within(dst_ipa) {
        return Err(GuestFault::Unmapped(dst_ipa));
    }
    let from = src.pa(src_ipa, false)?;
    let to = dst.pa(dst_ipa, true)?;
    // SAFETY: both spans are Normal RAM their domains' stage-2 tables map
    // (readable, and writable for `to`), reached through the identity map,
    // and stay inside their pages; `ptr::copy` allows them to overlap.
    unsafe { core::ptr::copy(from as *const u8, to as *mut u8, len) };
    Ok(())
}

impl GuestMemory for DomMem<'_> {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let len = buf.len();
        self.pieces(ipa, len, false, |pa, off, l| {
            // SAFETY: `pa` is Normal RAM the domain's stage-2 maps, reached
            // through the identity map; `l` stays inside its page.
            unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf[off..].as_mut_ptr(), l) };
        })
    }

    fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
        self.pieces(ipa, buf.len(), true, |pa, off, l| {
            // SAFETY: as for `read`, and the mapping is writable.
            unsafe { core::ptr::copy_nonoverlapping(buf[off..].as_ptr(), pa as *mut u8, l) };
        })
    }

    fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
        if ipa % 4 != 0 {
            return Err(GuestFault::Misaligned(ipa));
        }
        let pa = self.pa(ipa, true)?;
        Ok(atomic32(pa).compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|v| v))
    }

    fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault> {
        if ipa % 8 != 0 {
            return Err(GuestFault::Misaligned(ipa));
        }
        Ok(atomic64(self.pa(ipa, true)?).fetch_or(bits, Ordering::AcqRel))
    }

    fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault> {
        if ipa % 8 != 0 {
            return Err(GuestFault::Misaligned(ipa));
        }
        Ok(atomic64(self.pa(ipa, true)?).fetch_and(mask, Ordering::AcqRel))
    }
}

fn atomic32(pa: u64) -> &'static AtomicU32 {
    // SAFETY: `pa` is 4-aligned Normal RAM (checked by the caller) that
    // lives as long as the hypervisor; guests access it concurrently, which
    // is what atomics are for.
    unsafe { AtomicU32::from_ptr(pa as *mut u32) }
}

fn atomic64(pa: u64) -> &'static AtomicU64 {
    // SAFETY: as for `atomic32`, 8-aligned.
    unsafe { AtomicU64::from_ptr(pa as *mut u64) }
}

/// Grant-table frames: hypervisor heap pages, offset-addressed.
pub struct TablePages {
    pub pages: Vec<u64>,
}

impl TablePages {
    fn pa(&self, off: u64, len: usize) -> Result<u64, GuestFault> {
        let page = self.pages.get((off / PAGE) as usize).ok_or(GuestFault::Unmapped(off))?;
        if (off % PAGE) as usize + len > PAGE as usize {
            return Err(GuestFault::Unmapped(off)); // entries never straddle frames
        }
        Ok(page + off % PAGE)
    }
}

impl GuestMemory for TablePages {
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let pa = self.pa(off, buf.len())?;
        // SAFETY: inside one of our own heap pages.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&self, off: u64, buf: &[u8]) -> Result<(), GuestFault> {
        let pa = self.pa(off, buf.len())?;
        // SAFETY: inside one of our own heap pages.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), pa as *mut u8, buf.len()) };
        Ok(())
    }

    fn cmpxchg_u32(&self, off: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
        if off % 4 != 0 {
            return Err(GuestFault::Misaligned(off));
        }
        Ok(atomic32(self.pa(off, 4)?).compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire).unwrap_or_else(|v| v))
    }

    fn fetch_or_u64(&self, off: u64, bits: u64) -> Result<u64, GuestFault> {
        if off % 8 != 0 {
            return Err(GuestFault::Misaligned(off));
        }
        Ok(atomic64(self.pa(off, 8)?).fetch_or(bits, Ordering::AcqRel))
    }

    fn fetch_and_u64(&self, off: u64, mask: u64) -> Result<u64, GuestFault> {
        if off % 8 != 0 {
            return Err(GuestFault::Misaligned(off));
        }
        Ok(atomic64(self.pa(off, 8)?).fetch_and(mask, Ordering::AcqRel))
    }
}

impl TableFrames for TablePages {
    fn grow(&mut self, nr: u32) -> Result<(), OutOfMemory> {
        let mut new = Vec::new();
        new.try_reserve(nr as usize).map_err(|_| OutOfMemory)?;
        while self.pages.len() + new.len() < nr as usize {
            new.push(alloc_page().ok_or(OutOfMemory)?);
        }
        self.pages.extend(new);
        Ok(())
    }
}
