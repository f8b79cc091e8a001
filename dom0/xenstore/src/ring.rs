//! The xenstore ring page (`xenstore_domain_interface`): a 1024-byte request
//! ring (guest → xenstored) and a 1024-byte response ring, each with
//! free-running `u32` producer/consumer indices masked with the ring size.
//!
//! The page is shared with a possibly hostile guest, so every index is read
//! once per operation and checked: a producer more than a ring size ahead of
//! its consumer is a [`RingError`], after which xenstored should set the
//! page's `error` field ([`DomainRing::set_error`]) and ignore the connection.

use core::fmt;
use core::mem::offset_of;

use xen_abi::io::xs_wire::{
    XenstoreDomainInterface as Iface, XenstoreRingIdx, XENSTORE_ERROR_RINGIDX, XENSTORE_RING_SIZE,
};

/// Access to the shared page. xenstored implements it over a page mapped
/// from the guest (gntdev or a foreign mapping) with atomic index accesses;
/// tests use a `Vec<u8>`.
///
/// Out-of-range accesses must not panic: reads give zeros, writes are dropped.
pub trait SharedPage {
    /// One load of an index, with acquire ordering (data written by the other
    /// side before it published the index is visible afterwards).
    fn load_u32(&self, offset: usize) -> u32;
    /// Store of an index, with release ordering (data written before is
    /// visible to the other side once it sees the index).
    fn store_u32(&mut self, offset: usize, value: u32);
    fn read(&self, offset: usize, buf: &mut [u8]);
    fn write(&mut self, offset: usize, data: &[u8]);
}

impl SharedPage for Vec<u8> {
    fn load_u32(&self, offset: usize) -> u32 {
        let mut b = [0; 4];
        self.read(offset, &mut b);
        u32::from_ne_bytes(b)
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        self.write(offset, &value.to_ne_bytes());
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        match self.get(offset..offset.saturating_add(buf.len())) {
            Some(src) => buf.copy_from_slice(src),
            None => buf.fill(0),
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        if let Some(dst) = self.get_mut(offset..offset.saturating_add(data.len())) {
            dst.copy_from_slice(data);
        }
    }
}

/// A producer is more than a ring size ahead of its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingError {
    pub prod: XenstoreRingIdx,
    pub cons: XenstoreRingIdx,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad xenstore ring indices: prod {:#x} cons {:#x}",
            self.prod, self.cons
        )
    }
}

impl std::error::Error for RingError {}

/// Page size needed by [`DomainRing`] (the used part of the interface).
pub const INTERFACE_LEN: usize = core::mem::size_of::<Iface>();

/// One of the two rings: data offset and index offsets in the page.
#[derive(Clone, Copy)]
struct Dir {
    data: usize,
    cons: usize,
    prod: usize,
}

const REQ: Dir = Dir {
    data: offset_of!(Iface, req),
    cons: offset_of!(Iface, req_cons),
    prod: offset_of!(Iface, req_prod),
};
const RSP: Dir = Dir {
    data: offset_of!(Iface, rsp),
    cons: offset_of!(Iface, rsp_cons),
    prod: offset_of!(Iface, rsp_prod),
};
const SIZE: u32 = XENSTORE_RING_SIZE as u32;

/// A domain's xenstore ring over a [`SharedPage`]. The xenstored side reads
/// requests and writes responses; the guest side (for tests and in-guest
/// clients) does the opposite. Callers notify the event channel after any
/// call that moved data.
pub struct DomainRing<M> {
    page: M,
}

impl<M: SharedPage> DomainRing<M> {
    pub fn new(page: M) -> DomainRing<M> {
        DomainRing { page }
    }

    pub fn page(&self) -> &M {
        &self.page
    }

    pub fn page_mut(&mut self) -> &mut M {
        &mut self.page
    }

    pub fn into_page(self) -> M {
        self.page
    }

    /// xenstored: copies pending request bytes into `buf`.
    pub fn read_requests(&mut self, buf: &mut [u8]) -> Result<usize, RingError> {
        self.consume(REQ, buf)
    }

    /// xenstored: copies as much of `data` as fits into the response ring.
    pub fn write_responses(&mut self, data: &[u8]) -> Result<usize, RingError> {
        self.produce(RSP, data)
    }

    /// Guest: queues request bytes.
    pub fn write_requests(&mut self, data: &[u8]) -> Result<usize, RingError> {
        self.produce(REQ, data)
    }

    /// Guest: takes response bytes.
    pub fn read_responses(&mut self, buf: &mut [u8]) -> Result<usize, RingError> {
        self.consume(RSP, buf)
    }

    /// Records a fatal condition for the guest (`XENSTORE_ERROR_*`), e.g.
    /// [`XENSTORE_ERROR_RINGIDX`] after a [`RingError`].
    pub fn set_error(&mut self, code: u32) {
        self.page.store_u32(offset_of!(Iface, error), code);
    }

    /// Error code for a [`RingError`].
    pub const RING_INDEX_ERROR: u32 = XENSTORE_ERROR_RINGIDX;

    /// Advertises `XENSTORE_SERVER_FEATURE_*` bits.
    pub fn set_server_features(&mut self, features: u32) {
        self.page
            .store_u32(offset_of!(Iface, server_features), features);
    }

    /// The page's `error` field.
    pub fn error(&self) -> u32 {
        self.page.load_u32(offset_of!(Iface, error))
    }

    /// The page's `connection` field (`XENSTORE_CONNECTED` / `_RECONNECT`).
    pub fn connection(&self) -> u32 {
        self.page.load_u32(offset_of!(Iface, connection))
    }

    pub fn set_connection(&mut self, state: u32) {
        self.page.store_u32(offset_of!(Iface, connection), state);
    }

    /// Request bytes waiting (checked indices).
    pub fn pending_requests(&self) -> Result<usize, RingError> {
        self.indices(REQ).map(|(_, used)| used as usize)
    }

    /// Zeroes all four indices (xenstored does this on (re)introduction).
    pub fn reset(&mut self) {
        for d in [REQ, RSP] {
            self.page.store_u32(d.cons, 0);
            self.page.store_u32(d.prod, 0);
        }
    }

    /// Reads both indices once and checks them; returns (cons, used bytes).
    fn indices(&self, d: Dir) -> Result<(u32, u32), RingError> {
        let prod = self.page.load_u32(d.prod);
        let cons = self.page.load_u32(d.cons);
        let used = prod.wrapping_sub(cons);
        if used > SIZE {
            return Err(RingError { prod, cons });
        }
        Ok((cons, used))
    }

    fn consume(&mut self, d: Dir, buf: &mut [u8]) -> Result<usize, RingError> {
        let (cons, used) = self.indices(d)?;
        let n = (used as usize).min(buf.len());
        let start = (cons % SIZE) as usize;
        let first = n.min(XENSTORE_RING_SIZE - start);
        self.page.read(d.data + start, &mut buf[..first]);
        self.page.read(d.data, &mut buf[first..n]);
        self.page.store_u32(d.cons, cons.wrapping_add(n as u32));
        Ok(n)
    }

    fn produce(&mut self, d: Dir, data: &[u8]) -> Result<usize, RingError> {
        let (cons, used) = self.indices(d)?;
        let prod = cons.wrapping_add(used);
        let n = ((SIZE - used) as usize).min(data.len());
        let start = (prod % SIZE) as usize;
        let first = n.min(XENSTORE_RING_SIZE - start);
        self.page.write(d.data + start, &data[..first]);
        self.page.write(d.data, &data[first..n]);
        self.page.store_u32(d.prod, prod.wrapping_add(n as u32));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> DomainRing<Vec<u8>> {
        DomainRing::new(vec![0; 4096])
    }

    #[test]
    fn round_trip_with_wrap() {
        let mut r = ring();
        let mut buf = [0u8; 2048];
        // Move the indices close to u32 overflow and to the end of the ring.
        for d in [REQ, RSP] {
            r.page.store_u32(d.cons, u32::MAX - 9);
            r.page.store_u32(d.prod, u32::MAX - 9);
        }
        for round in 0..5u8 {
            let data: Vec<u8> = (0..700).map(|i| (i as u8).wrapping_add(round)).collect();
            assert_eq!(r.write_requests(&data), Ok(700));
            assert_eq!(r.read_requests(&mut buf), Ok(700));
            assert_eq!(&buf[..700], &data[..]);
            assert_eq!(r.write_responses(&data), Ok(700));
            assert_eq!(r.read_responses(&mut buf[..300]), Ok(300));
            assert_eq!(r.read_responses(&mut buf[300..]), Ok(400));
            assert_eq!(&buf[..700], &data[..]);
        }
    }

    #[test]
    fn full_ring_and_partial_writes() {
        let mut r = ring();
        assert_eq!(r.write_requests(&[1; 1000]), Ok(1000));
        assert_eq!(r.write_requests(&[2; 100]), Ok(24));
        assert_eq!(r.write_requests(&[3; 1]), Ok(0));
        let mut buf = [0u8; 2000];
        assert_eq!(r.read_requests(&mut buf), Ok(1024));
        assert_eq!(r.read_requests(&mut buf), Ok(0));
    }

    #[test]
    fn hostile_indices() {
        let mut r = ring();
        r.page.store_u32(REQ.prod, 1025);
        let mut buf = [0u8; 16];
        assert_eq!(
            r.read_requests(&mut buf),
            Err(RingError {
                prod: 1025,
                cons: 0
            })
        );
        // Consumer ahead of producer is the same as a huge distance.
        r.page.store_u32(RSP.cons, 5);
        assert!(r.write_responses(b"x").is_err());
        r.set_error(DomainRing::<Vec<u8>>::RING_INDEX_ERROR);
        assert_eq!(
            r.page.load_u32(offset_of!(Iface, error)),
            XENSTORE_ERROR_RINGIDX
        );
        r.reset();
        assert_eq!(r.read_requests(&mut buf), Ok(0));
        // A too-small page never panics.
        let mut tiny = DomainRing::new(vec![0u8; 3]);
        assert_eq!(tiny.read_requests(&mut buf), Ok(0));
        assert_eq!(tiny.write_responses(b"abc"), Ok(3));
    }
}
