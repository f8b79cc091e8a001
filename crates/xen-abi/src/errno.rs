//! `public/errno.h`: Xen's errno values (the same numbers as Linux), as
//! positive constants. Hypercalls return them negated in x0.

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
/// Hypervisor-internal (`#ifdef __XEN__` in the header).
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const ENOEXEC: i32 = 8;
pub const EBADF: i32 = 9;
pub const ECHILD: i32 = 10;
pub const EAGAIN: i32 = 11;
pub const EWOULDBLOCK: i32 = 11;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EFAULT: i32 = 14;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EXDEV: i32 = 18;
pub const ENODEV: i32 = 19;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const ENFILE: i32 = 23;
pub const EMFILE: i32 = 24;
pub const ENOSPC: i32 = 28;
pub const EROFS: i32 = 30;
pub const EMLINK: i32 = 31;
pub const EDOM: i32 = 33;
pub const ERANGE: i32 = 34;
pub const EDEADLK: i32 = 35;
pub const EDEADLOCK: i32 = 35;
pub const ENAMETOOLONG: i32 = 36;
pub const ENOLCK: i32 = 37;
pub const ENOSYS: i32 = 38;
pub const ENOTEMPTY: i32 = 39;
pub const ENODATA: i32 = 61;
pub const ETIME: i32 = 62;
pub const EBADMSG: i32 = 74;
pub const EOVERFLOW: i32 = 75;
pub const EILSEQ: i32 = 84;
/// Hypervisor-internal (`#ifdef __XEN__`): "restart via continuation"; never
/// returned to a guest.
pub const ERESTART: i32 = 85;
pub const ENOTSOCK: i32 = 88;
pub const EMSGSIZE: i32 = 90;
pub const EOPNOTSUPP: i32 = 95;
pub const EADDRINUSE: i32 = 98;
pub const EADDRNOTAVAIL: i32 = 99;
pub const ENOBUFS: i32 = 105;
pub const EISCONN: i32 = 106;
pub const ENOTCONN: i32 = 107;
pub const ETIMEDOUT: i32 = 110;
pub const ECONNREFUSED: i32 = 111;

/// A Xen errno value (positive), as a type. The guest sees [`Errno::neg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Self = Self(EPERM);
    pub const ENOENT: Self = Self(ENOENT);
    pub const ESRCH: Self = Self(ESRCH);
    pub const EINTR: Self = Self(EINTR);
    pub const EIO: Self = Self(EIO);
    pub const ENXIO: Self = Self(ENXIO);
    pub const E2BIG: Self = Self(E2BIG);
    pub const ENOEXEC: Self = Self(ENOEXEC);
    pub const EBADF: Self = Self(EBADF);
    pub const ECHILD: Self = Self(ECHILD);
    pub const EAGAIN: Self = Self(EAGAIN);
    pub const EWOULDBLOCK: Self = Self(EWOULDBLOCK);
    pub const ENOMEM: Self = Self(ENOMEM);
    pub const EACCES: Self = Self(EACCES);
    pub const EFAULT: Self = Self(EFAULT);
    pub const EBUSY: Self = Self(EBUSY);
    pub const EEXIST: Self = Self(EEXIST);
    pub const EXDEV: Self = Self(EXDEV);
    pub const ENODEV: Self = Self(ENODEV);
    pub const ENOTDIR: Self = Self(ENOTDIR);
    pub const EISDIR: Self = Self(EISDIR);
    pub const EINVAL: Self = Self(EINVAL);
    pub const ENFILE: Self = Self(ENFILE);
    pub const EMFILE: Self = Self(EMFILE);
    pub const ENOSPC: Self = Self(ENOSPC);
    pub const EROFS: Self = Self(EROFS);
    pub const EMLINK: Self = Self(EMLINK);
    pub const EDOM: Self = Self(EDOM);
    pub const ERANGE: Self = Self(ERANGE);
    pub const EDEADLK: Self = Self(EDEADLK);
    pub const EDEADLOCK: Self = Self(EDEADLOCK);
    pub const ENAMETOOLONG: Self = Self(ENAMETOOLONG);
    pub const ENOLCK: Self = Self(ENOLCK);
    pub const ENOSYS: Self = Self(ENOSYS);
    pub const ENOTEMPTY: Self = Self(ENOTEMPTY);
    pub const ENODATA: Self = Self(ENODATA);
    pub const ETIME: Self = Self(ETIME);
    pub const EBADMSG: Self = Self(EBADMSG);
    pub const EOVERFLOW: Self = Self(EOVERFLOW);
    pub const EILSEQ: Self = Self(EILSEQ);
    pub const ERESTART: Self = Self(ERESTART);
    pub const ENOTSOCK: Self = Self(ENOTSOCK);
    pub const EMSGSIZE: Self = Self(EMSGSIZE);
    pub const EOPNOTSUPP: Self = Self(EOPNOTSUPP);
    pub const EADDRINUSE: Self = Self(EADDRINUSE);
    pub const EADDRNOTAVAIL: Self = Self(EADDRNOTAVAIL);
    pub const ENOBUFS: Self = Self(ENOBUFS);
    pub const EISCONN: Self = Self(EISCONN);
    pub const ENOTCONN: Self = Self(ENOTCONN);
    pub const ETIMEDOUT: Self = Self(ETIMEDOUT);
    pub const ECONNREFUSED: Self = Self(ECONNREFUSED);

    /// The positive errno value.
    pub const fn get(self) -> i32 {
        self.0
    }

    /// The hypercall return value for this error: `-errno`, sign-extended to
    /// a 64-bit register.
    #[allow(clippy::should_implement_trait)]
    pub const fn neg(self) -> i64 {
        -(self.0 as i64)
    }
}
