//! `public/io/xs_wire.h`: the xenstore wire protocol (message types and
//! header) and the shared ring page between a domain and xenstored.
//!
//! A message is an [`XsdSockmsg`] header followed by `len` payload bytes
//! (at most `XENSTORE_PAYLOAD_MAX`). Errors are replied as `XS_ERROR` with
//! the errno *name* plus NUL as payload (see [`XSD_ERRORS`]).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::errno;

// `enum xsd_sockmsg_type` (`xsd_sockmsg.type`).
pub const XS_CONTROL: u32 = 0;
pub const XS_DEBUG: u32 = XS_CONTROL;
pub const XS_DIRECTORY: u32 = 1;
pub const XS_READ: u32 = 2;
pub const XS_GET_PERMS: u32 = 3;
pub const XS_WATCH: u32 = 4;
pub const XS_UNWATCH: u32 = 5;
pub const XS_TRANSACTION_START: u32 = 6;
pub const XS_TRANSACTION_END: u32 = 7;
pub const XS_INTRODUCE: u32 = 8;
pub const XS_RELEASE: u32 = 9;
pub const XS_GET_DOMAIN_PATH: u32 = 10;
pub const XS_WRITE: u32 = 11;
pub const XS_MKDIR: u32 = 12;
pub const XS_RM: u32 = 13;
pub const XS_SET_PERMS: u32 = 14;
pub const XS_WATCH_EVENT: u32 = 15;
pub const XS_ERROR: u32 = 16;
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
pub const XS_RESUME: u32 = 18;
pub const XS_SET_TARGET: u32 = 19;
// 20 was XS_RESTRICT (removed).
pub const XS_RESET_WATCHES: u32 = XS_SET_TARGET + 2;
pub const XS_DIRECTORY_PART: u32 = 22;
/// Number of message types (one past the last).
pub const XS_TYPE_COUNT: u32 = 23;
pub const XS_INVALID: u32 = 0xffff;

// Legacy `XS_WRITE` flag strings.
pub const XS_WRITE_NONE: &str = "NONE";
pub const XS_WRITE_CREATE: &str = "CREATE";
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// One entry of the `xsd_errors` table: errno value and its name, which is
/// the `XS_ERROR` payload.
#[doc(alias = "xsd_errors")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsdError {
    pub errnum: i32,
    pub errstring: &'static str,
}

/// `xsd_errors[]`: the errors xenstore may report, in the header's order
/// (new entries are only ever appended).
pub const XSD_ERRORS: [XsdError; 16] = [
    XsdError {
        errnum: errno::EINVAL,
        errstring: "EINVAL",
    },
    XsdError {
        errnum: errno::EACCES,
        errstring: "EACCES",
    },
    XsdError {
        errnum: errno::EEXIST,
        errstring: "EEXIST",
    },
    XsdError {
        errnum: errno::EISDIR,
        errstring: "EISDIR",
    },
    XsdError {
        errnum: errno::ENOENT,
        errstring: "ENOENT",
    },
    XsdError {
        errnum: errno::ENOMEM,
        errstring: "ENOMEM",
    },
    XsdError {
        errnum: errno::ENOSPC,
        errstring: "ENOSPC",
    },
    XsdError {
        errnum: errno::EIO,
        errstring: "EIO",
    },
    XsdError {
        errnum: errno::ENOTEMPTY,
        errstring: "ENOTEMPTY",
    },
    XsdError {
        errnum: errno::ENOSYS,
        errstring: "ENOSYS",
    },
    XsdError {
        errnum: errno::EROFS,
        errstring: "EROFS",
    },
    XsdError {
        errnum: errno::EBUSY,
        errstring: "EBUSY",
    },
    XsdError {
        errnum: errno::EAGAIN,
        errstring: "EAGAIN",
    },
    XsdError {
        errnum: errno::EISCONN,
        errstring: "EISCONN",
    },
    XsdError {
        errnum: errno::E2BIG,
        errstring: "E2BIG",
    },
    XsdError {
        errnum: errno::EPERM,
        errstring: "EPERM",
    },
];

/// Message header (16 bytes), followed by `len` payload bytes.
#[doc(alias = "xsd_sockmsg")]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XsdSockmsg {
    /// `XS_*` (C name `type`).
    #[doc(alias = "type")]
    pub type_: u32,
    /// Request id, echoed in the reply.
    pub req_id: u32,
    /// Transaction id (0 = none), echoed in the reply.
    pub tx_id: u32,
    /// Payload length in bytes.
    pub len: u32,
}
layout!(XsdSockmsg, 16, 4; type_ @ 0, req_id @ 4, tx_id @ 8, len @ 12);

// `enum xs_watch_type`: NUL-separated fields of an `XS_WATCH_EVENT` payload.
pub const XS_WATCH_PATH: u32 = 0;
pub const XS_WATCH_TOKEN: u32 = 1;

/// Size of each of the `req` and `rsp` rings.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_RING_IDX`: free-running index, masked with `XENSTORE_RING_SIZE - 1`.
pub type XenstoreRingIdx = u32;

/// The xenstore ring page (2076 bytes used).
#[doc(alias = "xenstore_domain_interface")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Requests to xenstored.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events from xenstored.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    pub req_cons: XenstoreRingIdx,
    pub req_prod: XenstoreRingIdx,
    pub rsp_cons: XenstoreRingIdx,
    pub rsp_prod: XenstoreRingIdx,
    /// `XENSTORE_SERVER_FEATURE_*` (written by the server).
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*` (written by the server).
    pub error: u32,
}
layout!(XenstoreDomainInterface, 2076, 4; req @ 0, rsp @ 1024, req_cons @ 2048,
        req_prod @ 2052, rsp_cons @ 2056, rsp_prod @ 2060, server_features @ 2064,
        connection @ 2068, error @ 2072);

/// Maximum payload of one message.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// Maximum length of an absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Maximum length of a relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

// `server_features` bits.
/// The `connection` field is supported.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// The `error` field is supported.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;

// `connection` values.
pub const XENSTORE_CONNECTED: u32 = 0;
pub const XENSTORE_RECONNECT: u32 = 1;

// `error` values.
pub const XENSTORE_ERROR_NONE: u32 = 0;
pub const XENSTORE_ERROR_COMM: u32 = 1;
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
pub const XENSTORE_ERROR_PROTO: u32 = 3;
