//! A domain's memory as hypervisor logic sees it: accesses by guest
//! physical address (IPA), which the implementation checks against the
//! domain's stage-2 (RAM it owns, never MMIO or another domain's pages).
//! Guest addresses are allegations: every access can fail.

/// Why a guest memory access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestFault {
    /// Not RAM of this domain (unmapped, MMIO, or outside the IPA space).
    Unmapped(u64),
    /// Mapped read-only.
    ReadOnly(u64),
    /// Misaligned for an atomic access.
    Misaligned(u64),
}

/// Guest physical memory of one domain.
///
/// Byte accesses may straddle pages (each page is checked). Atomic accesses
/// must be naturally aligned and are single-copy atomic with respect to the
/// guest's own accesses (the guest may race with the hypervisor).
pub trait GuestMemory {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault>;
    fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault>;
    /// Atomically: if `*ipa == old` store `new`. Returns the value found.
    fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault>;
    /// Atomically OR `bits` into the u64 at `ipa`; returns the previous value.
    fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault>;
    /// Atomically AND `mask` into the u64 at `ipa`; returns the previous value.
    fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault>;

    fn read_u32(&self, ipa: u64) -> Result<u32, GuestFault> {
        let mut b = [0; 4];
        self.read(ipa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn write_u32(&self, ipa: u64, v: u32) -> Result<(), GuestFault> {
        self.write(ipa, &v.to_le_bytes())
    }

    fn read_u64(&self, ipa: u64) -> Result<u64, GuestFault> {
        let mut b = [0; 8];
        self.read(ipa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn write_u64(&self, ipa: u64, v: u64) -> Result<(), GuestFault> {
        self.write(ipa, &v.to_le_bytes())
    }
}

/// A test double: one flat RAM region `[base, base + len)`, with interior
/// mutability so it can be shared as `&` like real guest memory.
#[cfg(any(test, feature = "testing"))]
pub mod fake {
    use super::{GuestFault, GuestMemory};
    use core::cell::RefCell;

    pub struct FakeRam {
        pub base: u64,
        pub bytes: RefCell<alloc::vec::Vec<u8>>,
    }

    impl FakeRam {
        pub fn new(base: u64, len: usize) -> Self {
            FakeRam { base, bytes: RefCell::new(alloc::vec![0; len]) }
        }

        fn off(&self, ipa: u64, len: usize) -> Result<usize, GuestFault> {
            let off = ipa.checked_sub(self.base).ok_or(GuestFault::Unmapped(ipa))? as usize;
            let end = off.checked_add(len).ok_or(GuestFault::Unmapped(ipa))?;
            if end > self.bytes.borrow().len() {
                return Err(GuestFault::Unmapped(ipa));
            }
            Ok(off)
        }
    }

    impl GuestMemory for FakeRam {
        fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
            let o = self.off(ipa, buf.len())?;
            buf.copy_from_slice(&self.bytes.borrow()[o..o + buf.len()]);
            Ok(())
        }

        fn write(&self, ipa: u64, buf: &[u8]) -> Result<(), GuestFault> {
            let o = self.off(ipa, buf.len())?;
            self.bytes.borrow_mut()[o..o + buf.len()].copy_from_slice(buf);
            Ok(())
        }

        fn cmpxchg_u32(&self, ipa: u64, old: u32, new: u32) -> Result<u32, GuestFault> {
            if ipa % 4 != 0 {
                return Err(GuestFault::Misaligned(ipa));
            }
            let cur = self.read_u32(ipa)?;
            if cur == old {
                self.write_u32(ipa, new)?;
            }
            Ok(cur)
        }

        fn fetch_or_u64(&self, ipa: u64, bits: u64) -> Result<u64, GuestFault> {
            if ipa % 8 != 0 {
                return Err(GuestFault::Misaligned(ipa));
            }
            let cur = self.read_u64(ipa)?;
            self.write_u64(ipa, cur | bits)?;
            Ok(cur)
        }

        fn fetch_and_u64(&self, ipa: u64, mask: u64) -> Result<u64, GuestFault> {
            if ipa % 8 != 0 {
                return Err(GuestFault::Misaligned(ipa));
            }
            let cur = self.read_u64(ipa)?;
            self.write_u64(ipa, cur & mask)?;
            Ok(cur)
        }
    }
}
