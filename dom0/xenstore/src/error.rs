//! Errors reported to clients: an errno whose *name* is the `XS_ERROR` payload.

use core::fmt;

use xen_abi::errno;
use xen_abi::io::xs_wire::XSD_ERRORS;

/// An errno from xenstore's reply set (`xsd_errors[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    pub const EINVAL: Errno = Errno(errno::EINVAL);
    pub const EACCES: Errno = Errno(errno::EACCES);
    pub const EEXIST: Errno = Errno(errno::EEXIST);
    pub const EISDIR: Errno = Errno(errno::EISDIR);
    pub const ENOENT: Errno = Errno(errno::ENOENT);
    pub const ENOMEM: Errno = Errno(errno::ENOMEM);
    pub const ENOSPC: Errno = Errno(errno::ENOSPC);
    pub const EIO: Errno = Errno(errno::EIO);
    pub const ENOTEMPTY: Errno = Errno(errno::ENOTEMPTY);
    pub const ENOSYS: Errno = Errno(errno::ENOSYS);
    pub const EROFS: Errno = Errno(errno::EROFS);
    pub const EBUSY: Errno = Errno(errno::EBUSY);
    pub const EAGAIN: Errno = Errno(errno::EAGAIN);
    pub const EISCONN: Errno = Errno(errno::EISCONN);
    pub const E2BIG: Errno = Errno(errno::E2BIG);
    pub const EPERM: Errno = Errno(errno::EPERM);

    /// The name sent in an `XS_ERROR` payload. Like xenstored, an errno outside
    /// the table is reported as `EINVAL`.
    pub fn name(self) -> &'static str {
        XSD_ERRORS
            .iter()
            .find(|e| e.errnum == self.0)
            .map_or("EINVAL", |e| e.errstring)
    }

    /// Parses an `XS_ERROR` payload (with or without its trailing NUL).
    pub fn from_name(name: &[u8]) -> Option<Errno> {
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        XSD_ERRORS
            .iter()
            .find(|e| e.errstring.as_bytes() == name)
            .map(|e| Errno(e.errnum))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for Errno {}
