//! The PV console ring page (`struct xencons_interface`, `public/io/console.h`): `out`
//! (2048 bytes, guest → backend) and `in` (1024 bytes, backend → guest), each with
//! free-running `u32` indices masked with the ring size.
//!
//! The guest may write anything into the page at any time, so every index is read once per
//! operation and checked, and every copy is bounded by the ring size: a producer more than
//! a ring ahead of its consumer is an [`BadIndices`] error, after which the ring is reset
//! (the consumer or producer this side owns is moved onto the other so that both agree the
//! ring is empty), never a panic or a long loop.

use core::fmt;
use core::mem::offset_of;

use xen_abi::io::console::{XenconsInterface as Iface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};
use xenstore::ring::SharedPage;

const IN_DATA: usize = offset_of!(Iface, in_);
const OUT_DATA: usize = offset_of!(Iface, out);
const IN_CONS: usize = offset_of!(Iface, in_cons);
const IN_PROD: usize = offset_of!(Iface, in_prod);
const OUT_CONS: usize = offset_of!(Iface, out_cons);
const OUT_PROD: usize = offset_of!(Iface, out_prod);

/// Indices a ring size or more apart (or the consumer ahead of the producer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadIndices {
    /// `"out"` or `"in"`.
    pub ring: &'static str,
    pub prod: u32,
    pub cons: u32,
}

impl fmt::Display for BadIndices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad console `{}` ring indices: prod {:#x} cons {:#x}", self.ring, self.prod, self.cons)
    }
}

impl std::error::Error for BadIndices {}

/// A console ring over a [`SharedPage`], seen from the backend (xenconsoled) or, for tests,
/// from the guest.
pub struct ConsoleRing<M> {
    page: M,
}

impl<M: SharedPage> ConsoleRing<M> {
    pub fn new(page: M) -> Self {
        ConsoleRing { page }
    }

    pub fn page(&self) -> &M {
        &self.page
    }

    /// Backend: appends every byte waiting in `out` to `sink` (at most a ring's worth) and
    /// consumes it. Bad indices reset the ring (pending bytes are discarded).
    pub fn drain_out(&mut self, sink: &mut Vec<u8>) -> Result<usize, BadIndices> {
        let prod = self.page.load_u32(OUT_PROD);
        let cons = self.page.load_u32(OUT_CONS);
        let used = prod.wrapping_sub(cons);
        if used as usize > XENCONS_OUT_SIZE {
            self.page.store_u32(OUT_CONS, prod);
            return Err(BadIndices { ring: "out", prod, cons });
        }
        copy_out(&self.page, OUT_DATA, XENCONS_OUT_SIZE, cons, used as usize, sink);
        self.page.store_u32(OUT_CONS, prod);
        Ok(used as usize)
    }

    /// Backend: room in `in`. Bad indices reset the ring (our producer onto the guest's
    /// consumer) and report the error; the ring is then empty.
    pub fn in_space(&mut self) -> Result<usize, BadIndices> {
        let (_, used) = self.in_indices()?;
        Ok(XENCONS_IN_SIZE - used as usize)
    }

    fn in_indices(&mut self) -> Result<(u32, u32), BadIndices> {
        let prod = self.page.load_u32(IN_PROD);
        let cons = self.page.load_u32(IN_CONS);
        let used = prod.wrapping_sub(cons);
        if used as usize > XENCONS_IN_SIZE {
            self.page.store_u32(IN_PROD, cons);
            return Err(BadIndices { ring: "in", prod, cons });
        }
        Ok((prod, used))
    }

    /// Backend: queues as much of `data` as fits into `in`; returns the bytes taken.
    pub fn push_in(&mut self, data: &[u8]) -> Result<usize, BadIndices> {
        let (prod, used) = self.in_indices()?;
        let n = (XENCONS_IN_SIZE - used as usize).min(data.len());
        copy_in(&mut self.page, IN_DATA, XENCONS_IN_SIZE, prod, &data[..n]);
        self.page.store_u32(IN_PROD, prod.wrapping_add(n as u32));
        Ok(n)
    }

    /// Guest (tests): writes as much of `data` as fits into `out`.
    pub fn guest_write(&mut self, data: &[u8]) -> usize {
        let prod = self.page.load_u32(OUT_PROD);
        let cons = self.page.load_u32(OUT_CONS);
        let used = (prod.wrapping_sub(cons) as usize).min(XENCONS_OUT_SIZE);
        let n = (XENCONS_OUT_SIZE - used).min(data.len());
        copy_in(&mut self.page, OUT_DATA, XENCONS_OUT_SIZE, prod, &data[..n]);
        self.page.store_u32(OUT_PROD, prod.wrapping_add(n as u32));
        n
    }

    /// Guest (tests): takes everything waiting in `in`.
    pub fn guest_read(&mut self) -> Vec<u8> {
        let prod = self.page.load_u32(IN_PROD);
        let cons = self.page.load_u32(IN_CONS);
        let used = (prod.wrapping_sub(cons) as usize).min(XENCONS_IN_SIZE);
        let mut v = Vec::new();
        copy_out(&self.page, IN_DATA, XENCONS_IN_SIZE, cons, used, &mut v);
        self.page.store_u32(IN_CONS, cons.wrapping_add(used as u32));
        v
    }

    /// Raw index access (tests: a hostile guest).
    pub fn set_index(&mut self, which: Index, value: u32) {
        self.page.store_u32(which.offset(), value);
    }

    pub fn index(&self, which: Index) -> u32 {
        self.page.load_u32(which.offset())
    }
}

/// The four indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    InCons,
    InProd,
    OutCons,
    OutProd,
}

impl Index {
    fn offset(self) -> usize {
        match self {
            Index::InCons => IN_CONS,
            Index::InProd => IN_PROD,
            Index::OutCons => OUT_CONS,
            Index::OutProd => OUT_PROD,
        }
    }
}

/// Appends `len` (≤ `size`) bytes of the ring at `data` from index `cons` to `sink`.
fn copy_out<M: SharedPage>(page: &M, data: usize, size: usize, cons: u32, len: usize, sink: &mut Vec<u8>) {
    let start = cons as usize % size;
    let first = len.min(size - start);
    let at = sink.len();
    sink.resize(at + len, 0);
    page.read(data + start, &mut sink[at..at + first]);
    page.read(data, &mut sink[at + first..at + len]);
}

/// Writes `bytes` (≤ `size`) into the ring at `data` from index `prod`.
fn copy_in<M: SharedPage>(page: &mut M, data: usize, size: usize, prod: u32, bytes: &[u8]) {
    let start = prod as usize % size;
    let first = bytes.len().min(size - start);
    page.write(data + start, &bytes[..first]);
    page.write(data, &bytes[first..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> ConsoleRing<Vec<u8>> {
        ConsoleRing::new(vec![0u8; 4096])
    }

    #[test]
    fn layout() {
        assert_eq!((IN_DATA, OUT_DATA, IN_CONS, IN_PROD, OUT_CONS, OUT_PROD), (0, 1024, 3072, 3076, 3080, 3084));
    }

    #[test]
    fn drains_everything_with_wraparound() {
        let mut r = ring();
        // Indices near u32 overflow and near the end of the ring.
        r.set_index(Index::OutCons, u32::MAX - 100);
        r.set_index(Index::OutProd, u32::MAX - 100);
        let mut all = Vec::new();
        let mut sent = Vec::new();
        for round in 0..20u32 {
            let chunk: Vec<u8> = (0..(700 + round * 37)).map(|i| (i * 7 + round) as u8).collect();
            let n = r.guest_write(&chunk);
            sent.extend_from_slice(&chunk[..n]);
            assert_eq!(r.drain_out(&mut all), Ok(n));
            assert_eq!(r.index(Index::OutCons), r.index(Index::OutProd));
        }
        assert_eq!(all, sent);
        // A full ring is drained whole.
        assert_eq!(r.guest_write(&[9; 3000]), 2048);
        assert_eq!(r.guest_write(&[9; 1]), 0);
        let mut v = Vec::new();
        assert_eq!(r.drain_out(&mut v), Ok(2048));
        assert_eq!(v, [9; 2048]);
        assert_eq!(r.drain_out(&mut v), Ok(0));
    }

    #[test]
    fn hostile_out_indices_reset_the_ring() {
        let mut r = ring();
        let mut v = Vec::new();
        for (cons, prod) in [(0, 2049), (5, 0), (0, u32::MAX), (0x8000_0000, 0)] {
            r.set_index(Index::OutCons, cons);
            r.set_index(Index::OutProd, prod);
            assert_eq!(r.drain_out(&mut v), Err(BadIndices { ring: "out", prod, cons }));
            assert!(v.is_empty());
            // Reset: empty from now on, and usable again.
            assert_eq!(r.drain_out(&mut v), Ok(0));
            assert_eq!(r.guest_write(b"ok"), 2);
            assert_eq!(r.drain_out(&mut v), Ok(2));
            assert_eq!(v, b"ok");
            v.clear();
        }
        // Exactly a ring's worth is fine.
        r.set_index(Index::OutCons, 10);
        r.set_index(Index::OutProd, 10 + 2048);
        assert_eq!(r.drain_out(&mut v), Ok(2048));
    }

    #[test]
    fn input_respects_space_and_wraps() {
        let mut r = ring();
        r.set_index(Index::InCons, u32::MAX - 3);
        r.set_index(Index::InProd, u32::MAX - 3);
        assert_eq!(r.in_space(), Ok(1024));
        assert_eq!(r.push_in(&[1; 1000]), Ok(1000));
        assert_eq!(r.in_space(), Ok(24));
        // A full ring takes no more.
        assert_eq!(r.push_in(&[2; 100]), Ok(24));
        assert_eq!(r.push_in(&[3; 5]), Ok(0));
        assert_eq!(r.in_space(), Ok(0));
        let got = r.guest_read();
        assert_eq!(got.len(), 1024);
        assert_eq!(&got[..1000], &[1; 1000][..]);
        assert_eq!(&got[1000..], &[2; 24][..]);
        assert_eq!(r.push_in(b"abc"), Ok(3));
        assert_eq!(r.guest_read(), b"abc");
    }

    #[test]
    fn hostile_in_indices_reset_the_ring() {
        let mut r = ring();
        r.set_index(Index::InCons, 3000);
        assert_eq!(r.push_in(b"x"), Err(BadIndices { ring: "in", prod: 0, cons: 3000 }));
        assert_eq!(r.index(Index::InProd), 3000);
        assert_eq!(r.in_space(), Ok(1024));
        assert_eq!(r.push_in(b"xy"), Ok(2));
        assert_eq!(r.guest_read(), b"xy");
    }

    #[test]
    fn small_pages_never_panic() {
        let mut r = ConsoleRing::new(vec![0u8; 100]);
        let mut v = Vec::new();
        assert_eq!(r.drain_out(&mut v), Ok(0));
        assert_eq!(r.push_in(b"abc"), Ok(3));
    }
}
