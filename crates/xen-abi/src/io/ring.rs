//! `public/io/ring.h`: the generic shared ring (`DEFINE_RING_TYPES`) used by
//! the block, net and other split drivers. A shared ring page is a 64-byte
//! [`SringHeader`] followed by an array of request/response union slots; the
//! slot count is the largest power of two that fits.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `RING_IDX`: free-running index, masked with the ring size.
pub type RingIdx = u32;

/// Offset of `ring[0]` in a `<name>_sring` (the size of [`SringHeader`]).
pub const SRING_HEADER_SIZE: usize = 64;

/// The header of every `<name>_sring`.
#[doc(alias = "sring")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SringHeader {
    /// Written by the front end.
    pub req_prod: RingIdx,
    /// Written by the back end: notify when `req_prod` passes this.
    pub req_event: RingIdx,
    /// Written by the back end.
    pub rsp_prod: RingIdx,
    /// Written by the front end: notify when `rsp_prod` passes this.
    pub rsp_event: RingIdx,
    /// C union `pvt` (`netif.smartpoll_active`, `tapif_user.msg`, `pvt_pad[4]`).
    pub pvt: [u8; 4],
    /// C `__pad[44]`.
    pub __pad: [u8; 44],
}
layout!(SringHeader, SRING_HEADER_SIZE, 4; req_prod @ 0, req_event @ 4, rsp_prod @ 8,
        rsp_event @ 12, pvt @ 16, __pad @ 20);

/// `__CONST_RING_SIZE`: number of slots of `slot_size` bytes (the size of
/// the request/response union) that fit in a shared ring of `ring_bytes`
/// bytes, rounded down to a power of two.
pub const fn const_ring_size(ring_bytes: usize, slot_size: usize) -> u32 {
    let n = ((ring_bytes - SRING_HEADER_SIZE) / slot_size) as u32;
    if n == 0 {
        0
    } else {
        1 << (31 - n.leading_zeros())
    }
}
