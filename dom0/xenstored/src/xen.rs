//! The real [`Platform`]: Linux's Xen devices through [`xen_sys`].
//!
//! A guest's xenstore page is mapped by foreign mapping of the gfn `XS_INTRODUCE` names
//! (privcmd's `IOCTL_PRIVCMD_MMAPBATCH_V2`); if that fails, through its reserved grant
//! `GNTTAB_RESERVED_XENSTORE` (gntdev), which is what C xenstored 4.17 uses. Either mapping
//! holds a reference on the guest's page: dropping the [`RingPage`] removes it, which is
//! what lets the hypervisor free a destroyed domain.

use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use xen_abi::domctl::XenDomctlGetdomaininfo;
use xen_abi::grant_table::GNTTAB_RESERVED_XENSTORE;
use xen_abi::xen::DOMID_FIRST_RESERVED;
use xen_sys::{ctx, Evtchn, Gntdev, HypercallDev, Privcmd};
use xenstore::ring::SharedPage;
use xenstore::DomId;
use zerocopy::FromBytes;

use crate::engine::Platform;

/// A mapped ring page (a foreign mapping, a grant mapping, or dom0's own page from
/// `/dev/xen/xenbus_backend`); unmapped on drop.
pub struct RingPage {
    page: Option<xen_sys::Page>,
    grant: Option<(Rc<Gntdev>, u64)>,
}

impl RingPage {
    /// A page that needs only unmapping.
    pub fn new(page: xen_sys::Page) -> Self {
        RingPage { page: Some(page), grant: None }
    }

    /// A grant mapping: gntdev's `index` is released after the page is unmapped.
    pub fn granted(page: xen_sys::Page, gntdev: Rc<Gntdev>, index: u64) -> Self {
        RingPage { page: Some(page), grant: Some((gntdev, index)) }
    }

    /// Whether this is a grant mapping.
    pub fn is_grant(&self) -> bool {
        self.grant.is_some()
    }
}

impl Drop for RingPage {
    fn drop(&mut self) {
        if let Some(p) = self.page.take() {
            if let Err(e) = p.unmap() {
                crate::log!("unmapping a ring page: {e}");
            }
        }
        if let Some((g, index)) = self.grant.take() {
            if let Err(e) = g.unmap_grant_ref(index) {
                crate::log!("releasing a grant mapping: {e}");
            }
        }
    }
}

/// Indices are accessed as atomics, data bytes with volatile accesses; out-of-range
/// accesses are ignored ([`xen_sys::Page`]).
impl SharedPage for RingPage {
    fn load_u32(&self, offset: usize) -> u32 {
        self.page.as_ref().map_or(0, |p| p.load_u32(offset))
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        if let Some(p) = &self.page {
            p.store_u32(offset, value);
        }
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        match &self.page {
            Some(p) => p.read_bytes(offset, buf),
            None => buf.fill(0),
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        if let Some(p) = &self.page {
            p.write_bytes(offset, data);
        }
    }
}

/// The event-channel device (also polled by the daemon; absent when xenstored serves its
/// socket only, without Xen), with privcmd, gntdev and the hypercall-buffer device opened
/// when first needed.
pub struct XenPlatform {
    pub evtchn: Option<Evtchn>,
    privcmd: Option<Privcmd>,
    gntdev: Option<Rc<Gntdev>>,
    bufdev: Option<HypercallDev>,
}

impl XenPlatform {
    pub fn new(evtchn: Option<Evtchn>) -> Self {
        XenPlatform { evtchn, privcmd: None, gntdev: None, bufdev: None }
    }

    pub fn evtchn(&self) -> io::Result<&Evtchn> {
        self.evtchn.as_ref().ok_or_else(|| io::Error::other(format!("no event channel device ({})", xen_sys::EVTCHN)))
    }

    fn privcmd(&mut self) -> io::Result<&Privcmd> {
        if self.privcmd.is_none() {
            self.privcmd = Some(Privcmd::open()?);
            self.bufdev = HypercallDev::open().ok();
        }
        Ok(self.privcmd.as_ref().expect("just opened"))
    }

    fn gntdev(&mut self) -> io::Result<Rc<Gntdev>> {
        if self.gntdev.is_none() {
            self.gntdev = Some(Rc::new(Gntdev::open()?));
        }
        Ok(self.gntdev.clone().expect("just opened"))
    }
}

impl Platform for XenPlatform {
    type Page = RingPage;

    fn map_ring(&mut self, domid: DomId, gfn: u64) -> io::Result<RingPage> {
        let foreign = self.privcmd().and_then(|p| p.map_foreign(domid, gfn));
        let ferr = match foreign {
            Ok(page) => return Ok(RingPage::new(page)),
            Err(e) => e,
        };
        let grant = self.gntdev().and_then(|g| g.map(domid, GNTTAB_RESERVED_XENSTORE).map(|(p, i)| (p, i, g)));
        match grant {
            Ok((page, index, g)) => Ok(RingPage::granted(page, g, index)),
            Err(gerr) => Err(ctx(format_args!("grant fallback: {gerr}"))(ferr)),
        }
    }

    fn bind_interdomain(&mut self, domid: DomId, remote_port: u32) -> io::Result<u32> {
        self.evtchn()?.bind_interdomain(domid, remote_port)
    }

    fn unbind(&mut self, port: u32) -> io::Result<()> {
        self.evtchn()?.unbind(port)
    }

    fn notify(&mut self, port: u32) -> io::Result<()> {
        self.evtchn()?.notify(port)
    }

    fn domain_flags(&mut self) -> io::Result<BTreeMap<DomId, u32>> {
        self.privcmd()?;
        let list = domain_list(self.privcmd.as_ref().expect("opened"), self.bufdev.as_ref())?;
        Ok(list.into_iter().map(|d| (d.domain, d.flags)).collect())
    }
}

/// Every domain, through `XEN_SYSCTL_getdomaininfolist` in batches (as
/// `xc_domain_getinfolist`).
pub fn domain_list(privcmd: &Privcmd, bufdev: Option<&HypercallDev>) -> io::Result<Vec<XenDomctlGetdomaininfo>> {
    const BATCH: u32 = 64;
    let mut all: Vec<XenDomctlGetdomaininfo> = Vec::new();
    let mut first: DomId = 0;
    loop {
        let batch = privcmd.getdomaininfolist(first, BATCH, bufdev)?;
        let n = batch.len();
        for raw in &batch {
            let info = XenDomctlGetdomaininfo::read_from_bytes(&raw[..]).expect("xen-sys returns whole elements");
            if info.domain >= first {
                all.push(info);
            }
        }
        match all.last() {
            Some(last) if n as u32 == BATCH && last.domain >= first && last.domain + 1 < DOMID_FIRST_RESERVED => {
                first = last.domain + 1;
            }
            _ => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xen-sys spells out the sysctl numbers and sizes without xen-abi's `tools` feature.
    #[test]
    fn xen_sys_sysctl_constants() {
        use xen_abi::sysctl::*;
        assert_eq!(xen_sys::SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_INTERFACE_VERSION);
        assert_eq!(xen_sys::SYSCTL_GETDOMAININFOLIST, XEN_SYSCTL_getdomaininfolist);
        assert_eq!(xen_sys::SYSCTL_READCONSOLE, XEN_SYSCTL_readconsole);
        assert_eq!(xen_sys::SYSCTL_SIZE, size_of::<XenSysctl>());
        assert_eq!(xen_sys::DOMAININFO_SIZE, size_of::<XenDomctlGetdomaininfo>());
        assert_eq!(core::mem::offset_of!(XenSysctlGetdomaininfolist, buffer), 8);
        assert_eq!(core::mem::offset_of!(XenSysctlGetdomaininfolist, num_domains), 16);
        assert_eq!(xen_sys::IOCTL_EVTCHN_BIND_VIRQ, 0x0004_4500);
    }
}
