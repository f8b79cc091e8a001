//! `--disk-bench DEV [MiB]`: the `bench io` disk figures of a block device, with O_DIRECT so
//! that the page cache of the machine running it is out of the way: sequential write and read
//! in 1 MiB requests over the first MiB of the device, then 4 KiB reads at random 4 KiB-aligned
//! offsets in that span for a fixed time.
//!
//! Output: `IO-BENCH seq_write_mibs=W seq_read_mibs=R randread_iops=I` (or `IO-BENCH-FAIL why`).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;
const BLOCK: usize = 4096;
const RANDOM_FOR: Duration = Duration::from_secs(3);

/// A 4 KiB-aligned buffer (O_DIRECT wants the memory aligned too).
struct Aligned {
    buf: Vec<u8>,
    off: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let buf = vec![0u8; len + BLOCK];
        let off = buf.as_ptr().align_offset(BLOCK);
        Aligned { buf, off }
    }
    fn get(&mut self, len: usize) -> &mut [u8] {
        &mut self.buf[self.off..self.off + len]
    }
}

pub fn run(dev: &str, mib: u64) -> Result<String, String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)
        .map_err(|e| format!("open {dev}: {e}"))?;
    let mut buf = Aligned::new(CHUNK);
    // A pattern that is not all zeros (a sparse or compressing backing must not matter).
    for (i, b) in buf.get(CHUNK).iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    let t = Instant::now();
    for i in 0..mib {
        f.write_all_at(buf.get(CHUNK), i * CHUNK as u64).map_err(|e| format!("write at {i} MiB: {e}"))?;
    }
    f.sync_all().map_err(|e| format!("fsync: {e}"))?;
    let write = mib as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..mib {
        f.read_exact_at(buf.get(CHUNK), i * CHUNK as u64).map_err(|e| format!("read at {i} MiB: {e}"))?;
    }
    let read = mib as f64 / t.elapsed().as_secs_f64();
    // xorshift: deterministic offsets, the same on every machine.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let blocks = mib * (CHUNK / BLOCK) as u64;
    let (t, mut n) = (Instant::now(), 0u64);
    while t.elapsed() < RANDOM_FOR {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % blocks) * BLOCK as u64;
        f.read_exact_at(buf.get(BLOCK), off).map_err(|e| format!("4 KiB read at {off}: {e}"))?;
        n += 1;
    }
    let iops = n as f64 / t.elapsed().as_secs_f64();
    Ok(format!("IO-BENCH seq_write_mibs={write:.1} seq_read_mibs={read:.1} randread_iops={iops:.0}"))
}
