//! The checks: each returns Ok or the reason it failed. Lines starting with `# ` are details
//! for the reader of the console log, not results.

use std::time::Duration;

use std::io;

use xen_abi::version::{XENFEAT_dom0, XENVER_pagesize, XENVER_version};
use xen_abi::xen::HYPERVISOR_xen_version;

use xen_sys::{Evtchn, Gntalloc, Gntdev, Page, Privcmd};

/// Dom0's own domain id: every "remote" end below is dom0 itself.
const DOM0: u16 = 0;
/// Xen 4.17: `(major << 16) | minor`.
const XEN_VERSION: i64 = 0x0004_0011;
/// The longest any single event may take to arrive.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

pub type Check = fn() -> Result<(), String>;

pub const CHECKS: &[(&str, Check)] =
    &[("sysfs", sysfs), ("xenfs", xenfs), ("privcmd", privcmd), ("evtchn", evtchn), ("gnt", gnt)];

fn read_trimmed(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).map_err(|e| format!("{path}: {e}"))
}

fn expect_file(path: &str, want: &str) -> Result<(), String> {
    let got = read_trimmed(path)?;
    if got != want {
        return Err(format!("{path} is {got:?}, expected {want:?}"));
    }
    Ok(())
}

/// `/sys/hypervisor` (CONFIG_XEN_SYS_HYPERVISOR): type and version.
fn sysfs() -> Result<(), String> {
    expect_file("/sys/hypervisor/type", "xen")?;
    expect_file("/sys/hypervisor/version/major", "4")?;
    expect_file("/sys/hypervisor/version/minor", "17")?;
    if let Ok(extra) = read_trimmed("/sys/hypervisor/version/extra") {
        println!("# sysfs: version 4.17{extra}");
    }
    Ok(())
}

/// xenfs on /proc/xen: Linux sees itself as the control domain.
fn xenfs() -> Result<(), String> {
    let caps = read_trimmed("/proc/xen/capabilities")?;
    if !caps.split_whitespace().any(|c| c == "control_d") {
        return Err(format!("/proc/xen/capabilities is {caps:?}, expected control_d (xenfs mounted on /proc/xen?)"));
    }
    Ok(())
}

/// Requires `r` to be the error `errno` (what Xen's `-errno` becomes through the driver).
fn expect_errno<T: std::fmt::Debug>(r: io::Result<T>, errno: i32, what: &str) -> Result<(), String> {
    match r {
        Err(e) if xen_sys::errno(&e) == Some(errno) => Ok(()),
        Err(e) => Err(format!("{what}: failed with {e}, expected errno {errno} ({})", io::Error::from_raw_os_error(errno))),
        Ok(v) => Err(format!("{what}: succeeded ({v:?}), expected errno {errno} ({})", io::Error::from_raw_os_error(errno))),
    }
}

/// privcmd's hypercall ioctl: `xen_version` without and with a buffer, and Xen's answer to
/// calls it does not know.
fn privcmd() -> Result<(), String> {
    let pc = Privcmd::open().map_err(|e| e.to_string())?;
    let v = pc.xen_version_noarg(XENVER_version).map_err(|e| format!("xen_version(XENVER_version): {e}"))?;
    println!("# privcmd: xen_version(XENVER_version) = {v:#x}");
    if v != XEN_VERSION {
        return Err(format!("xen_version(XENVER_version) = {v:#x}, expected {XEN_VERSION:#x}"));
    }
    let f = pc.get_features(0).map_err(|e| format!("xen_version(XENVER_get_features, submap 0): {e}"))?;
    println!("# privcmd: XENVER_get_features submap 0 = {f:#010x}");
    if f & (1 << XENFEAT_dom0) == 0 {
        return Err(format!("XENVER_get_features submap 0 = {f:#010x}: XENFEAT_dom0 (bit {XENFEAT_dom0}) is clear"));
    }
    let page = pc.xen_version_noarg(XENVER_pagesize).map_err(|e| format!("xen_version(XENVER_pagesize): {e}"))?;
    if page != 4096 {
        return Err(format!("xen_version(XENVER_pagesize) = {page}, expected 4096"));
    }
    // SAFETY: an unknown xen_version sub-op with a NULL argument: Xen touches no memory.
    let r = unsafe { pc.hypercall(HYPERVISOR_xen_version, [0x7fff, 0, 0, 0, 0]) };
    expect_errno(r, libc::ENOSYS, "xen_version(0x7fff, NULL)")?;
    // SAFETY: hypercall 63 does not exist: Xen rejects it before reading any argument.
    let r = unsafe { pc.hypercall(63, [0; 5]) };
    expect_errno(r, libc::ENOSYS, "hypercall 63")?;
    Ok(())
}

/// Waits for exactly `port` on `ch` and re-enables it.
fn expect_event(ch: &Evtchn, port: u32, what: &str) -> Result<(), String> {
    let got = ch.wait(EVENT_TIMEOUT).map_err(|e| format!("{what}: {e}"))?;
    if got.is_empty() {
        return Err(format!("{what}: no event on port {port} within {} s", EVENT_TIMEOUT.as_secs()));
    }
    ch.unmask(&got).map_err(|e| format!("{what}: {e}"))?;
    if got != [port] {
        return Err(format!("{what}: read ports {got:?}, expected [{port}]"));
    }
    Ok(())
}

/// An interdomain channel from dom0 to itself, through two opens of /dev/xen/evtchn.
fn evtchn() -> Result<(), String> {
    let a = Evtchn::open().map_err(|e| e.to_string())?;
    let b = Evtchn::open().map_err(|e| e.to_string())?;
    let pa = a.bind_unbound_port(DOM0).map_err(|e| e.to_string())?;
    let pb = b.bind_interdomain(DOM0, pa).map_err(|e| e.to_string())?;
    println!("# evtchn: unbound port {pa} on fd A, interdomain port {pb} on fd B");
    // Only an unbound port can be bound to: not one out of range, nor one already connected.
    expect_errno(b.bind_interdomain(DOM0, 0xfff0), libc::EINVAL, "bind_interdomain to port 0xfff0")?;
    expect_errno(b.bind_interdomain(DOM0, pa), libc::EINVAL, "bind_interdomain to the already bound port")?;
    // Xen raises the new local port once on an interdomain bind (events the unbound end
    // may have missed): not part of the check, but shown.
    let spurious_b = b.drain(Duration::from_millis(300)).map_err(|e| e.to_string())?;
    let spurious_a = a.drain(Duration::ZERO).map_err(|e| e.to_string())?;
    println!("# evtchn: pending after bind: A {spurious_a:?}, B {spurious_b:?}");

    for round in 1..=2 {
        a.notify(pa).map_err(|e| e.to_string())?;
        expect_event(&b, pb, &format!("A->B #{round}"))?;
        b.notify(pb).map_err(|e| e.to_string())?;
        expect_event(&a, pa, &format!("B->A #{round}"))?;
    }
    // Nothing else may be pending.
    let extra = a.wait(Duration::from_millis(100)).map_err(|e| e.to_string())?;
    if !extra.is_empty() {
        return Err(format!("unexpected events on A after the exchange: {extra:?}"));
    }
    b.unbind(pb).map_err(|e| e.to_string())?;
    a.unbind(pa).map_err(|e| e.to_string())?;
    Ok(())
}

/// Fills `m` with a pattern that depends on `seed` and the offset.
fn fill(m: &Page, seed: u8) {
    for i in 0..m.len() {
        m.write(i, pattern(seed, i));
    }
}

fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8
}

fn verify(m: &Page, seed: u8, what: &str) -> Result<(), String> {
    for i in 0..m.len() {
        let (got, want) = (m.read(i), pattern(seed, i));
        if got != want {
            return Err(format!("{what}: byte {i:#x} is {got:#04x}, expected {want:#04x}"));
        }
    }
    Ok(())
}

/// A page granted by gntalloc and mapped back through gntdev: both views share it.
fn gnt() -> Result<(), String> {
    let alloc = Gntalloc::open().map_err(|e| e.to_string())?;
    let dev = Gntdev::open().map_err(|e| e.to_string())?;
    let grant = alloc.alloc(DOM0, true).map_err(|e| e.to_string())?;
    println!("# gnt: gntalloc gref {} at offset {:#x}", grant.gref, grant.index);
    let granted = alloc.mmap(grant).map_err(|e| e.to_string())?;
    let index = dev.map_grant_ref(DOM0, grant.gref).map_err(|e| e.to_string())?;
    let mapped = dev.mmap(index, true).map_err(|e| e.to_string())?;

    fill(&granted, 0x5a);
    verify(&mapped, 0x5a, "gntalloc -> gntdev")?;
    fill(&mapped, 0xa5);
    verify(&granted, 0xa5, "gntdev -> gntalloc")?;

    mapped.unmap().map_err(|e| format!("gntdev {e}"))?;
    dev.unmap_grant_ref(index).map_err(|e| e.to_string())?;
    granted.unmap().map_err(|e| format!("gntalloc {e}"))?;
    alloc.dealloc(grant).map_err(|e| e.to_string())?;
    gnt_readonly_and_invalid(&alloc)
}

/// A read-only grant maps read-only but not read-write; a grant that does not exist does
/// not map at all.
fn gnt_readonly_and_invalid(alloc: &Gntalloc) -> Result<(), String> {
    let grant = alloc.alloc(DOM0, false).map_err(|e| e.to_string())?;
    let granted = alloc.mmap(grant).map_err(|e| e.to_string())?;
    fill(&granted, 0x3c);
    {
        // Failed maps leave gntdev state behind: a separate open, closed at the end.
        let dev = Gntdev::open().map_err(|e| e.to_string())?;
        let index = dev.map_grant_ref(DOM0, grant.gref).map_err(|e| e.to_string())?;
        // Xen refuses the map (GNTST_* < 0) and gntdev's mmap fails with EINVAL.
        expect_errno(dev.mmap(index, true), libc::EINVAL, "read-write map of a read-only grant")?;
        let bogus = dev.map_grant_ref(DOM0, 0xf_fff0).map_err(|e| e.to_string())?;
        expect_errno(dev.mmap(bogus, false), libc::EINVAL, "map of grant ref 0xffff0 (never granted)")?;
    }
    let dev = Gntdev::open().map_err(|e| e.to_string())?;
    let index = dev.map_grant_ref(DOM0, grant.gref).map_err(|e| e.to_string())?;
    let ro = dev.mmap(index, false).map_err(|e| format!("read-only grant: {e}"))?;
    verify(&ro, 0x3c, "read-only grant, gntalloc -> gntdev")?;
    ro.unmap().map_err(|e| format!("gntdev {e}"))?;
    dev.unmap_grant_ref(index).map_err(|e| e.to_string())?;
    granted.unmap().map_err(|e| format!("gntalloc {e}"))?;
    alloc.dealloc(grant).map_err(|e| e.to_string())?;
    Ok(())
}
