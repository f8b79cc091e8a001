//! The hypervisor console: the physical UART, shared by hypervisor log lines
//! and guest output. Lines stay whole: a hypervisor line that interrupts a
//! partial guest line starts on a fresh line.

use crate::hw::pl011::Pl011;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};
use hv_core::log::Level;
use spin::Mutex;

struct Console {
    uart: Option<Pl011>,
    /// The last byte written was not a newline.
    mid_line: bool,
    /// Xen's console ring: every hypervisor log line, for `xl dmesg`
    /// (sysctl readconsole). `prod` and `cons` count bytes ever written;
    /// the ring holds `[max(cons, prod - RING), prod)`.
    ring: [u8; RING],
    prod: u32,
    cons: u32,
}

const RING: usize = 16 * 1024;

static CONSOLE: Mutex<Console> = Mutex::new(Console { uart: None, mid_line: false, ring: [0; RING], prod: 0, cons: 0 });
static LOGLVL: AtomicU8 = AtomicU8::new(Level::Debug as u8);
static GUEST_LOGLVL: AtomicU8 = AtomicU8::new(Level::Debug as u8);

/// Use the UART at `base` from now on.
///
/// # Safety
/// See [`Pl011::new`].
pub unsafe fn init(base: usize) {
    // SAFETY: forwarded from this function's contract.
    CONSOLE.lock().uart = Some(unsafe { Pl011::new(base) });
}

pub fn uart_rx_enable() {
    if let Some(u) = &CONSOLE.lock().uart {
        u.enable_rx_irq();
    }
}

/// Read one byte the UART received, if any.
pub fn getc() -> Option<u8> {
    CONSOLE.lock().uart.as_ref().and_then(|u| u.getc())
}

pub fn set_levels(hv: Level, guest: Level) {
    LOGLVL.store(hv as u8, Ordering::Relaxed);
    GUEST_LOGLVL.store(guest as u8, Ordering::Relaxed);
}

pub fn enabled(l: Level) -> bool {
    (l as u8) <= LOGLVL.load(Ordering::Relaxed)
}

pub fn guest_enabled(l: Level) -> bool {
    (l as u8) <= GUEST_LOGLVL.load(Ordering::Relaxed)
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.ring[self.prod as usize % RING] = b;
            self.prod = self.prod.wrapping_add(1);
        }
        // Keep `prod - cons <= RING` so the counters stay meaningful across wrap.
        if self.prod.wrapping_sub(self.cons) > RING as u32 {
            self.cons = self.prod.wrapping_sub(RING as u32);
        }
        if let Some(u) = &self.uart {
            for b in s.bytes() {
                if b == b'\n' {
                    u.putc(b'\r');
                }
                u.putc(b);
            }
        }
        Ok(())
    }
}

/// Guest console bytes, written as they come.
pub fn guest_putc(b: u8) {
    let mut c = CONSOLE.lock();
    if let Some(u) = &c.uart {
        if b == b'\n' {
            u.putc(b'\r');
        }
        u.putc(b);
    }
    c.mid_line = b != b'\n';
}

/// Guest console bytes (dom0's hvc0 via console_io), written as they come.
pub fn guest_write(bytes: &[u8]) {
    let mut c = CONSOLE.lock();
    if let Some(u) = &c.uart {
        for &b in bytes {
            if b == b'\n' {
                u.putc(b'\r');
            }
            u.putc(b);
        }
    }
    if let Some(&last) = bytes.last() {
        c.mid_line = last != b'\n';
    }
}

/// One hypervisor log line (prefix, message, newline), atomically.
pub fn log_line(level: Level, args: fmt::Arguments) {
    let mut c = CONSOLE.lock();
    if c.mid_line {
        let _ = c.write_str("\n");
        c.mid_line = false;
    }
    let _ = write!(c, "(FV) {}", if level <= Level::Warning { level.tag() } else { "" });
    let _ = c.write_fmt(args);
    let _ = c.write_str("\n");
}

/// sysctl readconsole: copy ring bytes from `index` (if `incremental` and
/// newer than the oldest kept) or the oldest kept, into `out`; returns
/// (bytes copied, index after them). `clear` drops everything read.
pub fn read_ring(index: u32, incremental: bool, clear: bool, out: &mut [u8]) -> (usize, u32) {
    let mut c = CONSOLE.lock();
    // Kept: the last min(prod - cons, RING) bytes before prod (wrapping counters).
    let kept = c.prod.wrapping_sub(c.cons).min(RING as u32);
    let oldest = c.prod.wrapping_sub(kept);
    let mut i = if incremental && index.wrapping_sub(oldest) <= kept { index } else { oldest };
    let mut n = 0;
    while i != c.prod && n < out.len() {
        out[n] = c.ring[i as usize % RING];
        i = i.wrapping_add(1);
        n += 1;
    }
    if clear {
        c.cons = i; // what was read, not what arrived meanwhile
    }
    (n, i)
}

/// Best effort output on a panic path, even if the lock is held elsewhere.
pub fn emergency(args: fmt::Arguments) {
    if CONSOLE.is_locked() {
        // SAFETY: a panic path may hold the lock; a forced unlock can only
        // interleave bytes on the UART, a plain register window.
        unsafe { CONSOLE.force_unlock() };
    }
    let mut c = CONSOLE.lock();
    let _ = c.write_str("\n");
    let _ = c.write_fmt(args);
    let _ = c.write_str("\n");
}

#[macro_export]
macro_rules! log {
    ($lvl:ident, $($arg:tt)*) => {
        if $crate::console::enabled(hv_core::log::Level::$lvl) {
            $crate::console::log_line(hv_core::log::Level::$lvl, format_args!($($arg)*));
        }
    };
}

/// Guest-caused messages allowed per window, and the window (as Xen's
/// printk_ratelimit: a burst of 10 every 5 s); the rest are dropped and
/// counted.
const GUEST_BURST: u32 = 10;
const GUEST_WINDOW_SECS: u64 = 5;

static GUEST_WINDOW: spin::Mutex<(u64, u32, u32)> = spin::Mutex::new((0, 0, 0));

/// Whether a guest-caused message may be printed now (rate limit), noting
/// how many were suppressed since the last one printed.
pub fn guest_ratelimit_ok() -> bool {
    let now = crate::hw::sysreg::cntpct_el0::read();
    let window = crate::hw::sysreg::cntfrq_el0::read().saturating_mul(GUEST_WINDOW_SECS);
    let mut w = GUEST_WINDOW.lock();
    let (start, count, dropped) = &mut *w;
    if now.wrapping_sub(*start) > window {
        let missed = *dropped;
        *start = now;
        *count = 0;
        *dropped = 0;
        drop(w);
        if missed > 0 {
            log_line(Level::Warning, format_args!("{} guest messages suppressed", missed));
        }
        w = GUEST_WINDOW.lock();
    }
    let (_, count, dropped) = &mut *w;
    if *count < GUEST_BURST {
        *count += 1;
        true
    } else {
        *dropped += 1;
        false
    }
}

/// Log a message caused by a guest, filtered by `guest_loglvl=` and
/// rate-limited (a guest must not be able to flood the console).
#[macro_export]
macro_rules! glog {
    ($lvl:ident, $($arg:tt)*) => {
        if $crate::console::guest_enabled(hv_core::log::Level::$lvl) && $crate::console::guest_ratelimit_ok() {
            $crate::console::log_line(hv_core::log::Level::$lvl, format_args!($($arg)*));
        }
    };
}
