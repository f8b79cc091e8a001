//! The PV console: the `out` ring of `struct xencons_interface` at the page
//! HVM_PARAM_CONSOLE_PFN names, kicked through HVM_PARAM_CONSOLE_EVTCHN. Only vCPU 0 prints.
//! Also `Buf`, a fixed-size `fmt::Write` string for case results.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::hc;
use crate::rt;
use xen_abi::hvm_op::{XenHvmParam, HVMOP_get_param};
use xen_abi::hvm_params::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use xen_abi::io::console::XENCONS_OUT_SIZE;
use xen_abi::xen::DOMID_SELF;

/// Offsets in `struct xencons_interface`.
const OUT: u64 = 1024;
const OUT_CONS: u64 = 3080;
const OUT_PROD: u64 = 3084;

static RING: AtomicU64 = AtomicU64::new(0);
static PORT: AtomicU64 = AtomicU64::new(0);

fn param(index: u32) -> Option<u64> {
    let mut p = XenHvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    (hc::hvm_op(HVMOP_get_param, hc::ptr(&mut p)) == 0).then_some(p.value)
}

/// Finds the ring and its port; false if the toolstack gave none.
pub fn init() -> bool {
    let (Some(pfn), Some(port)) = (param(HVM_PARAM_CONSOLE_PFN), param(HVM_PARAM_CONSOLE_EVTCHN)) else {
        return false;
    };
    if pfn == 0 {
        return false;
    }
    RING.store(pfn << 12, Ordering::Relaxed);
    PORT.store(port, Ordering::Relaxed);
    true
}

pub fn port() -> u32 {
    PORT.load(Ordering::Relaxed) as u32
}

fn putc(b: u8) {
    let ring = RING.load(Ordering::Relaxed);
    if ring == 0 {
        return;
    }
    let prod = rt::rd32(ring + OUT_PROD);
    // Wait for room (xenconsoled drains the ring); kick it meanwhile.
    let mut spins = 0u64;
    while prod.wrapping_sub(rt::rd32(ring + OUT_CONS)) as usize >= XENCONS_OUT_SIZE {
        if spins.is_multiple_of(1024) {
            hc::send(port());
            hc::sched_op(xen_abi::sched::SCHEDOP_yield, 0);
        }
        spins += 1;
    }
    rt::wr8(ring + OUT + (prod as u64 % XENCONS_OUT_SIZE as u64), b);
    rt::dsb();
    rt::wr32(ring + OUT_PROD, prod.wrapping_add(1));
}

pub fn write_str(s: &str) {
    for b in s.bytes() {
        putc(b);
    }
    rt::dsb();
    hc::send(port());
}

/// Waits (up to `timeout_ms`) until the backend has consumed everything written: the
/// domain's end must not race xenconsoled for the last lines.
pub fn drain(timeout_ms: u64) {
    let ring = RING.load(Ordering::Relaxed);
    if ring == 0 {
        return;
    }
    rt::wait_for(timeout_ms, || {
        hc::send(port());
        rt::rd32(ring + OUT_CONS) == rt::rd32(ring + OUT_PROD)
    });
}

pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            putc(b);
        }
        Ok(())
    }
}

/// Prints one line (and kicks the backend).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::console::Console, $($arg)*);
        $crate::console::write_str("\n");
    }};
}

/// A short string built with `write!`; longer text is cut.
#[derive(Clone, Copy)]
pub struct Buf {
    b: [u8; 96],
    n: usize,
}

impl Buf {
    pub const fn new() -> Buf {
        Buf { b: [0; 96], n: 0 }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.b[..self.n]).unwrap_or("?")
    }
}

impl Default for Buf {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &c in s.as_bytes() {
            if self.n < self.b.len() {
                // Results are one word: spaces would split the line's fields.
                self.b[self.n] = if c == b' ' { b'_' } else { c };
                self.n += 1;
            }
        }
        Ok(())
    }
}

/// `format!` into a [`Buf`].
#[macro_export]
macro_rules! fmt {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut b = $crate::console::Buf::new();
        let _ = write!(b, $($arg)*);
        b
    }};
}
