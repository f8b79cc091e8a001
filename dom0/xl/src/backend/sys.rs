//! xl's `unsafe` code: the one `/dev/xen/privcmd` hypercall (whose memory safety rests on
//! [`check`]) and `uname(2)`. The device files and hypercall buffers are [`xen_sys`]'s.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_works() {
        let n = uname().unwrap();
        assert!(!n.release.is_empty() && !n.machine.is_empty());
    }
}
