//! `public/io/console.h`: the PV console ring page.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XENCONS_RING_IDX`: free-running index, masked with the ring size.
pub type XenconsRingIdx = u32;

/// Size of `xencons_interface.in`.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of `xencons_interface.out`.
pub const XENCONS_OUT_SIZE: usize = 2048;

/// The console ring page (3088 bytes used). The guest produces into `out`
/// and consumes from `in`; the backend does the opposite.
#[doc(alias = "xencons_interface")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenconsInterface {
    /// Backend → guest bytes (C name `in`).
    #[doc(alias = "in")]
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Guest → backend bytes.
    pub out: [u8; XENCONS_OUT_SIZE],
    /// Guest-written consumer index of `in`.
    pub in_cons: XenconsRingIdx,
    /// Backend-written producer index of `in`.
    pub in_prod: XenconsRingIdx,
    /// Backend-written consumer index of `out`.
    pub out_cons: XenconsRingIdx,
    /// Guest-written producer index of `out`.
    pub out_prod: XenconsRingIdx,
}
layout!(XenconsInterface, 3088, 4; in_ @ 0, out @ 1024, in_cons @ 3072, in_prod @ 3076,
        out_cons @ 3080, out_prod @ 3084);
