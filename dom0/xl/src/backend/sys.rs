//! xl's `unsafe` code: the one `/dev/xen/privcmd` hypercall (whose memory safety rests on
//! [`check`]), `uname(2)`, and the ioctls of the PV devices' backing: loop devices
//! (`/dev/loop-control`, `LOOP_SET_FD`, `LOOP_SET_STATUS64`, `LOOP_CLR_FD`) and network
//! interfaces (`SIOCBRADDIF`/`SIOCBRDELIF`, `SIOCGIFFLAGS`/`SIOCSIFFLAGS`, `SIOCGIFMTU`/`SIOCSIFMTU`,
//! `if_nametoindex`). The device files and hypercall buffers are [`xen_sys`]'s.
//!
//! Buffers are whole pages, as libxencall makes them ([`xen_sys::HypercallBuf`]): from
//! `/dev/xen/hypercall` when the kernel has it, else locked anonymous pages. Xen on Arm
//! takes the user virtual address directly (privcmd passes the ioctl's arguments through
//! unchanged).

use std::io;

use xen_sys::{HypercallBuf, HypercallDev};

use super::xencall::{check, Buf, Errno, GuestMem, Mem, Xencall};
use crate::format::NodeInfo;

/// `/dev/xen/privcmd` and this process's hypercall buffers.
pub struct Privcmd {
    fd: xen_sys::Privcmd,
    bufdev: Option<HypercallDev>,
    bufs: Vec<Option<HypercallBuf>>,
}

impl Privcmd {
    /// Opens `/dev/xen/privcmd` (and `/dev/xen/hypercall` if present), as
    /// libxencall's `xencall_open`.
    pub fn open() -> io::Result<Privcmd> {
        let fd = xen_sys::Privcmd::open_plain()?;
        Ok(Privcmd {
            fd,
            bufdev: HypercallDev::open().ok(),
            bufs: Vec::new(),
        })
    }

    fn buf(&self, b: Buf) -> &HypercallBuf {
        self.bufs[b.0].as_ref().expect("live buffer")
    }
}

impl Mem for Privcmd {
    fn get(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.bufs.iter().flatten().find_map(|p| {
            let off = usize::try_from(addr.checked_sub(p.addr())?).ok()?;
            p.as_slice().get(off..off.checked_add(len)?)
        })
    }
}

impl Xencall for Privcmd {
    fn alloc(&mut self, len: usize) -> Result<Buf, Errno> {
        let p = HypercallBuf::new(len, self.bufdev.as_ref())
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        match self.bufs.iter().position(Option::is_none) {
            Some(i) => {
                self.bufs[i] = Some(p);
                Ok(Buf(i))
            }
            None => {
                self.bufs.push(Some(p));
                Ok(Buf(self.bufs.len() - 1))
            }
        }
    }

    fn free(&mut self, b: Buf) {
        self.bufs[b.0] = None;
    }

    fn addr(&self, b: Buf) -> u64 {
        self.buf(b).addr()
    }

    fn bytes(&self, b: Buf) -> &[u8] {
        self.buf(b).as_slice()
    }

    fn bytes_mut(&mut self, b: Buf) -> &mut [u8] {
        self.bufs[b.0].as_mut().expect("live buffer").as_mut_slice()
    }

    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> Result<i64, Errno> {
        check(op, &args, self)?;
        // SAFETY: Xen accesses only what `check` has just verified lies inside this
        // object's mapped, writable buffers, which no Rust reference borrows now
        // (`&mut self`).
        let r = unsafe { self.fd.hypercall(op, args) };
        r.map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl GuestMem for Privcmd {
    fn write_guest(&mut self, domid: u32, gfn: u64, data: &[u8]) -> Result<(), Errno> {
        let page = xen_sys::XEN_PAGE_SIZE;
        let chunk = xen_sys::FOREIGN_BATCH_MAX * page;
        let domid = u16::try_from(domid).map_err(|_| libc::EINVAL)?;
        for (i, part) in data.chunks(chunk).enumerate() {
            let first = gfn + (i * xen_sys::FOREIGN_BATCH_MAX) as u64;
            let gfns: Vec<u64> = (first..).take(part.len().div_ceil(page)).collect();
            let map = self
                .fd
                .map_foreign_batch(domid, &gfns)
                .map_err(|e| xen_sys::errno(&e).unwrap_or(libc::EIO))?;
            map.copy_in(0, part);
            // Unmapped here (remove_from_physmap of each page) before the next chunk.
            drop(map);
        }
        Ok(())
    }

    fn write_grant_table(&mut self, domid: u32, offset: usize, data: &[u8]) -> Result<(), Errno> {
        use xen_abi::memory::{XENMEM_resource_grant_table, XENMEM_resource_grant_table_id_shared};
        let domid = u16::try_from(domid).map_err(|_| libc::EINVAL)?;
        let ty = u32::from(XENMEM_resource_grant_table);
        let map = self
            .fd
            .map_resource(domid, ty, XENMEM_resource_grant_table_id_shared, 0, 1)
            .map_err(|e| xen_sys::errno(&e).unwrap_or(libc::EIO))?;
        if offset + data.len() > map.len() {
            return Err(libc::EINVAL);
        }
        map.copy_in(offset, data);
        Ok(())
    }
}

/// `uname(2)`: dom0's node facts, as xl's `output_nodeinfo`.
pub fn uname() -> io::Result<NodeInfo> {
    // SAFETY: utsname is plain C data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the call.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    Ok(NodeInfo {
        host: s(&u.nodename),
        release: s(&u.release),
        version: s(&u.version),
        machine: s(&u.machine),
    })
}

/// `LOOP_SET_FD` (`<linux/loop.h>`; the loop ioctls carry no size).
const LOOP_SET_FD: u32 = 0x4C00;
/// `LOOP_CLR_FD`
const LOOP_CLR_FD: u32 = 0x4C01;
/// `LOOP_SET_STATUS64`
const LOOP_SET_STATUS64: u32 = 0x4C04;
/// `LOOP_CTL_GET_FREE`
const LOOP_CTL_GET_FREE: u32 = 0x4C82;
/// `LO_FLAGS_READ_ONLY`
const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_NAME_SIZE`
const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// An ioctl whose argument is an integer (or none).
fn ioctl_int(f: &std::fs::File, req: u32, arg: libc::c_ulong) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: `req` is one of the loop ioctls above, which take an integer argument (an fd
    // or nothing) and access no memory of this process.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as libc::Ioctl, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_rw(path: &str, write: bool) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// What `losetup [-r] -f FILE` does: binds `file` to the first free loop device (read-only
/// if asked: the backing file is then opened read-only, which makes the device read-only)
/// and records the file's name; returns `/dev/loopN`.
pub fn loop_attach(file: &str, read_only: bool) -> io::Result<String> {
    use std::os::fd::AsRawFd;
    let backing = open_rw(file, !read_only)?;
    let ctl = open_rw("/dev/loop-control", true)?;
    let mut last = io::Error::from_raw_os_error(libc::EBUSY);
    // Another process may take the free device between asking and binding.
    for _ in 0..16 {
        let n = ioctl_int(&ctl, LOOP_CTL_GET_FREE, 0)?;
        let path = format!("/dev/loop{n}");
        let dev = open_rw(&path, true)?;
        match ioctl_int(&dev, LOOP_SET_FD, backing.as_raw_fd() as libc::c_ulong) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = e;
                continue;
            }
            Err(e) => return Err(e),
        }
        let mut info = LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: if read_only { LO_FLAGS_READ_ONLY } else { 0 },
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        };
        let name = file.as_bytes();
        let len = name.len().min(LO_NAME_SIZE - 1);
        info.lo_file_name[..len].copy_from_slice(&name[..len]);
        // SAFETY: LOOP_SET_STATUS64 reads one `struct loop_info64`, which `LoopInfo64` lays
        // out exactly (232 bytes, checked in the tests); `info` lives across the call.
        let r = unsafe {
            libc::ioctl(
                dev.as_raw_fd(),
                LOOP_SET_STATUS64 as libc::Ioctl,
                &mut info as *mut LoopInfo64,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            let _ = ioctl_int(&dev, LOOP_CLR_FD, 0);
            return Err(e);
        }
        return Ok(path);
    }
    Err(last)
}

/// What `losetup -d DEV` does. A device no longer bound (`ENXIO`) is fine.
pub fn loop_detach(dev: &str) -> io::Result<()> {
    let f = open_rw(dev, false)?;
    match ioctl_int(&f, LOOP_CLR_FD, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()),
        r => r.map(drop),
    }
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: true if taken, false if someone else holds it. Closing
/// the file releases it.
pub fn try_flock(f: &std::fs::File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor this `File` owns; no memory is passed.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// `if_nametoindex(3)`.
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// `struct ifreq`: the name, then a union of which the calls here use an int or a short.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        r.name[..b.len()].copy_from_slice(b);
        Ok(r)
    }
    fn int(&self) -> i32 {
        i32::from_ne_bytes(self.data[..4].try_into().expect("4 bytes"))
    }
    fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
    fn short(&self) -> i16 {
        i16::from_ne_bytes(self.data[..2].try_into().expect("2 bytes"))
    }
    fn set_short(&mut self, v: i16) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }
}

/// A socket for interface ioctls, as `ip`/`brctl` open one.
fn ifsock() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// One `struct ifreq` ioctl.
fn ifioctl(req: libc::c_ulong, r: &mut IfReq) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let s = ifsock()?;
    // SAFETY: every request used here (SIOC{G,S}IF{FLAGS,MTU}, SIOCBR{ADD,DEL}IF) takes a
    // pointer to one `struct ifreq` (40 bytes on LP64, as `IfReq`), which lives across the
    // call and is exclusively borrowed.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), req as libc::Ioctl, r as *mut IfReq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ip link show DEV`'s MTU.
pub fn netif_mtu(name: &str) -> io::Result<u32> {
    let mut r = IfReq::new(name)?;
    ifioctl(libc::SIOCGIFMTU as libc::c_ulong, &mut r)?;
    Ok(r.int() as u32)
}

/// `ip link set dev DEV [mtu M] up`.
pub fn netif_up(name: &str, mtu: Option<u32>) -> io::Result<()> {
    if let Some(m) = mtu {
        let mut r = IfReq::new(name)?;
        r.set_int(m as i32);
        ifioctl(libc::SIOCSIFMTU as libc::c_ulong, &mut r)?;
    }
    let mut r = IfReq::new(name)?;
    ifioctl(libc::SIOCGIFFLAGS as libc::c_ulong, &mut r)?;
    let flags = r.short() | libc::IFF_UP as i16;
    r.set_short(flags);
    ifioctl(libc::SIOCSIFFLAGS as libc::c_ulong, &mut r)
}

/// `brctl addif BRIDGE DEV` (`add`) or `brctl delif BRIDGE DEV`.
pub fn bridge_port(bridge: &str, name: &str, add: bool) -> io::Result<()> {
    let index = if_index(name).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    let mut r = IfReq::new(bridge)?;
    r.set_int(index as i32);
    // <linux/sockios.h>
    const SIOCBRADDIF: libc::c_ulong = 0x89a2;
    const SIOCBRDELIF: libc::c_ulong = 0x89a3;
    ifioctl(if add { SIOCBRADDIF } else { SIOCBRDELIF }, &mut r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_structs_have_the_kernels_layout() {
        assert_eq!(size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_flags), 52);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_file_name), 56);
        assert_eq!(size_of::<IfReq>(), 40);
    }

    #[test]
    fn flock_excludes() {
        let p = std::env::temp_dir().join(format!("xl-flock-{}", std::process::id()));
        let a = std::fs::File::create(&p).unwrap();
        let b = std::fs::File::open(&p).unwrap();
        assert!(try_flock(&a).unwrap());
        assert!(!try_flock(&b).unwrap());
        drop(a);
        assert!(try_flock(&b).unwrap());
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn no_such_interface() {
        assert_eq!(if_index("no-such-if0"), None);
        assert!(bridge_port("no-such-br0", "no-such-if0", true).is_err());
        assert!(IfReq::new("a-name-much-too-long-for-linux").is_err());
    }

    #[test]
    fn uname_works() {
        let n = uname().unwrap();
        assert!(!n.release.is_empty() && !n.machine.is_empty());
    }
}
