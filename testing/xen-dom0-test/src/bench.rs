//! `--bench`: time-boxed micro-benchmarks of the same paths the checks exercise. Each metric
//! runs `BATCHES` batches of at least `BATCH` each and reports the median batch's cost per
//! operation, as `XB-RESULT <metric> <value>` (or `XB-FAIL <metric>: <reason>`).

use std::time::{Duration, Instant};

use xen_abi::version::XENVER_version;

use xen_sys::{Evtchn, Gntalloc, Gntdev, Privcmd};

const BATCHES: usize = 9;
const BATCH: Duration = Duration::from_millis(150);
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
const DOM0: u16 = 0;

pub type Bench = fn() -> Result<String, String>;

/// (metric, benchmark returning the value as text).
pub const BENCHES: &[(&str, Bench)] = &[
    ("null_syscall_ns", null_syscall),
    ("null_hypercall_ns", null_hypercall),
    ("evtchn_rtt_ns", evtchn_rtt),
    ("grant_map_unmap_us", grant_map_unmap),
];

/// Median over batches of the time per `op` call; `chunk` calls run between clock reads.
fn measure(chunk: u32, mut op: impl FnMut() -> Result<(), String>) -> Result<Duration, String> {
    for _ in 0..chunk {
        op()?; // warm-up: first-touch faults, caches
    }
    let mut per_op = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < BATCH {
            for _ in 0..chunk {
                op()?;
            }
            n += chunk;
        }
        per_op.push(start.elapsed() / n);
    }
    per_op.sort();
    Ok(per_op[BATCHES / 2])
}

fn ns(d: Duration) -> String {
    format!("{}", d.as_nanos())
}

/// Baseline: `getppid()`, dom0's cheapest syscall (no hypervisor involved), so that the
/// hypercall's own share of `null_hypercall_ns` can be told apart.
fn null_syscall() -> Result<String, String> {
    let d = measure(64, || {
        // SAFETY: getppid has no preconditions.
        std::hint::black_box(unsafe { libc::getppid() });
        Ok(())
    })?;
    Ok(ns(d))
}

/// `xen_version(XENVER_version, NULL)` through privcmd: syscall + hypercall round trip.
fn null_hypercall() -> Result<String, String> {
    let pc = Privcmd::open().map_err(|e| e.to_string())?;
    let d = measure(64, || {
        pc.xen_version_noarg(XENVER_version).map(drop).map_err(|e| format!("xen_version(XENVER_version): {e}"))
    })?;
    Ok(ns(d))
}

fn expect(ch: &Evtchn, port: u32) -> Result<(), String> {
    let got = ch.wait(EVENT_TIMEOUT).map_err(|e| e.to_string())?;
    if got.is_empty() {
        return Err(format!("no event on port {port} within {} s", EVENT_TIMEOUT.as_secs()));
    }
    ch.unmask(&got).map_err(|e| e.to_string())?;
    if got != [port] {
        return Err(format!("read ports {got:?}, expected [{port}]"));
    }
    Ok(())
}

/// Ping-pong between this process (port A) and a forked child (port B) over one interdomain
/// channel of dom0 to itself: notify, the peer's read wakes, it unmasks and notifies back.
fn evtchn_rtt() -> Result<String, String> {
    let a = Evtchn::open().map_err(|e| e.to_string())?;
    let b = Evtchn::open().map_err(|e| e.to_string())?;
    let pa = a.bind_unbound_port(DOM0).map_err(|e| e.to_string())?;
    let pb = b.bind_interdomain(DOM0, pa).map_err(|e| e.to_string())?;
    b.drain(Duration::from_millis(300)).map_err(|e| e.to_string())?;
    a.drain(Duration::ZERO).map_err(|e| e.to_string())?;

    crate::isolate::flush();
    // SAFETY: single-threaded process: the child may run arbitrary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(a);
        // Echo until the parent stops pinging (it kills us) or goes silent.
        while expect(&b, pb).is_ok() && b.notify(pb).is_ok() {}
        // SAFETY: ends the echo child without unwinding into the parent's code.
        unsafe { libc::_exit(0) };
    }
    drop(b);
    let r = measure(8, || {
        a.notify(pa).map_err(|e| e.to_string())?;
        expect(&a, pa)
    });
    // SAFETY: `pid` is our own child, not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    let _ = a.unbind(pa);
    Ok(ns(r?))
}

/// One page granted by gntalloc, then gntdev map + mmap + touch + munmap + unmap per cycle.
fn grant_map_unmap() -> Result<String, String> {
    let alloc = Gntalloc::open().map_err(|e| e.to_string())?;
    let dev = Gntdev::open().map_err(|e| e.to_string())?;
    let grant = alloc.alloc(DOM0, true).map_err(|e| e.to_string())?;
    let r = measure(4, || {
        let index = dev.map_grant_ref(DOM0, grant.gref).map_err(|e| e.to_string())?;
        let m = dev.mmap(index, true).map_err(|e| e.to_string())?;
        m.write(0, m.read(0).wrapping_add(1));
        m.unmap().map_err(|e| e.to_string())?;
        dev.unmap_grant_ref(index).map_err(|e| e.to_string())
    });
    let _ = alloc.dealloc(grant);
    Ok(format!("{:.2}", r?.as_nanos() as f64 / 1000.0))
}
