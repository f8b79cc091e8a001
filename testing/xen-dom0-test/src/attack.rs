//! The `attack` test's helpers (testing/init-attack.sh, testing/victim-init.sh):
//!
//! - `--victim [MiB]` (in a domU): fills MiB (default 16) of memory with a pattern derived
//!   from each word's index, then re-checks all of it every second forever, printing
//!   `VICTIM-ALIVE <n> ok` after each clean pass and `VICTIM-CORRUPT <n> ...` on a mismatch
//!   (then it refills and goes on, so later passes still report).
//! - `--free-pages` (in dom0): `XEN_SYSCTL_physinfo`'s `free_pages`, exact (where `xl info`
//!   rounds to MiB), as `FREE-PAGES <n>`.

use std::io::Write;
use std::time::{Duration, Instant};

use xen_abi::sysctl::{XenSysctlPhysinfo, XEN_SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_physinfo};
use xen_abi::xen::HYPERVISOR_sysctl;
use xen_sys::{HypercallBuf, Privcmd};
use zerocopy::FromBytes;

const SEED: u64 = 0x7f4a_7c15_9e37_79b9;

fn pattern(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ SEED ^ ((i as u64) << 17)
}

fn fill(buf: &mut [u64]) {
    for (i, w) in buf.iter_mut().enumerate() {
        *w = pattern(i);
    }
}

/// The first mismatch: (index, value found).
fn check(buf: &[u64]) -> Option<(usize, u64)> {
    buf.iter().enumerate().find(|(i, &w)| w != pattern(*i)).map(|(i, &w)| (i, w))
}

pub fn victim(mib: usize) -> ! {
    let words = mib * (1 << 20) / 8;
    let mut buf = vec![0u64; words];
    // The volatile-free loop is fine: the buffer is ours; a change from outside is exactly
    // what the check looks for, and `black_box` keeps the compiler from assuming none.
    fill(&mut buf);
    println!("VICTIM-READY {mib} MiB at {:p}", buf.as_ptr());
    let mut n = 0u64;
    loop {
        let t = Instant::now();
        n += 1;
        match check(std::hint::black_box(&buf)) {
            None => println!("VICTIM-ALIVE {n} ok"),
            Some((i, v)) => {
                println!("VICTIM-CORRUPT {n} word {i} (offset {:#x}) is {v:#018x}, expected {:#018x}", i * 8, pattern(i));
                fill(&mut buf);
            }
        }
        let _ = std::io::stdout().flush();
        if let Some(rest) = Duration::from_secs(1).checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

pub fn free_pages() -> Result<u64, String> {
    let pc = Privcmd::open().map_err(|e| e.to_string())?;
    let mut buf = HypercallBuf::new(4096, None).map_err(|e| format!("hypercall buffer: {e}"))?;
    {
        let b = buf.as_mut_slice();
        b[0..4].copy_from_slice(&XEN_SYSCTL_physinfo.to_le_bytes());
        b[4..8].copy_from_slice(&XEN_SYSCTL_INTERFACE_VERSION.to_le_bytes());
    }
    // SAFETY: Xen reads and writes the 136-byte `xen_sysctl` at the start of `buf`, which is
    // mapped, writable and not borrowed during the call.
    unsafe { pc.hypercall(HYPERVISOR_sysctl, [buf.addr(), 0, 0, 0, 0]) }
        .map_err(|e| format!("XEN_SYSCTL_physinfo: {e}"))?;
    let p = XenSysctlPhysinfo::read_from_prefix(&buf.as_slice()[8..]).map_err(|_| "short physinfo".to_string())?.0;
    Ok(p.free_pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_checked() {
        let mut b = vec![0u64; 4096];
        fill(&mut b);
        assert_eq!(check(&b), None);
        b[1234] ^= 1;
        assert_eq!(check(&b).map(|c| c.0), Some(1234));
    }
}
