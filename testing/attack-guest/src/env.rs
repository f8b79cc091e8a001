//! What every case may use: the domains to aim at, the guest's RAM and image, scratch pages,
//! and result helpers.

use core::ptr::addr_of;

use crate::console::Buf;
use crate::fmt;

/// A domain that does not exist (below DOMID_FIRST_RESERVED).
pub const NO_DOMAIN: u16 = 30000;
/// An IPA no domU has anything at (between the GIC and the grant-table window).
pub const HOLE: u64 = 0x2000_0000;
/// A guest-physical frame in the RAM window above a 64 MiB guest's RAM.
pub const ABOVE_RAM_GFN: u64 = 0x48000;

pub struct Env {
    pub victim: u16,
    /// Our own domid (learnt from an unbound port's status); DOMID_SELF if unknown.
    pub me: u16,
    pub ram_base: u64,
    pub ram_end: u64,
    pub dtb: (u64, u64),
    pub image: (u64, u64),
    /// Our grant-table frame 0 (mapped by the case that maps it; 0 before).
    pub gnttab: u64,
    pub cpu1_up: bool,
}

#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

pub const NR_SCRATCH: usize = 12;
pub static mut SCRATCH: [Page; NR_SCRATCH] = [const { Page([0; 4096]) }; NR_SCRATCH];
/// Where shared_info is mapped (replacing this page of RAM).
pub static mut SHINFO: Page = Page([0; 4096]);

/// Address of scratch page `i`.
pub fn scratch(i: usize) -> u64 {
    // SAFETY: only the address is taken.
    unsafe { addr_of!(SCRATCH[i]) as u64 }
}

pub fn gfn(addr: u64) -> u64 {
    addr >> 12
}

/// A case's result: its text, and whether it is as expected when the case judges itself
/// (`None`: the text must equal the expectation).
pub struct Out {
    pub text: Buf,
    pub ok: Option<bool>,
}

impl Out {
    pub fn num(v: i64) -> Out {
        Out { text: fmt!("{v}"), ok: None }
    }
    pub fn text(b: Buf) -> Out {
        Out { text: b, ok: None }
    }
    pub fn str(s: &str) -> Out {
        Out { text: fmt!("{s}"), ok: None }
    }
    pub fn judged(b: Buf, ok: bool) -> Out {
        Out { text: b, ok: Some(ok) }
    }
}

pub struct Case {
    pub name: &'static str,
    pub expect: &'static str,
    pub run: fn(&mut Env) -> Out,
}
