//! Event channels (`HYPERVISOR_event_channel_op`, Xen 4.17 ABI): one
//! domain's port table and the two delivery ABIs, 2-level and FIFO.
//!
//! # Model
//!
//! [`EvtchnDomain`] is everything one domain knows about its ports. The EL2
//! binary keeps one per domain behind a lock; every operation here is plain
//! `&mut self` code with no locking of its own. Guest memory (shared_info,
//! vcpu_info, FIFO control blocks and event array) is reached only through
//! [`GuestMemory`] by IPA: nothing is pinned or mapped, so every access may
//! fault (the guest may balloon a page out under us). A fault while *raising*
//! an event drops that event (counted in [`EvtchnDomain::guest_faults`]);
//! operations that register guest memory probe it first and fail like Xen
//! (`-EINVAL`).
//!
//! # What the caller does
//!
//! - Operations that make a vCPU's `evtchn_upcall_pending` go 0→1 return a
//!   [`Notify`]: inject the event PPI into each vCPU in `local` (this
//!   domain) and `peer` (the [`Peer`] domain passed in). Injecting is the
//!   binary's job; this module never touches the GIC. Because the guest
//!   treats the PPI as level-triggered, the binary should also re-inject
//!   after EOI while [`EvtchnDomain::upcall_pending`] stays true.
//! - Interdomain operations need the other domain's state. They take a
//!   [`Peer`]: `Peer::None` if only this domain is locked, or
//!   `Peer::Other(&mut peer_state, &peer_memory)` with both locked (lock in
//!   domid order to avoid deadlock). If a port turns out to lead to a domain
//!   that was not passed, the operation changes nothing and returns
//!   [`Error::NeedPeer`]`(domid)`: lock that one too and call again (bounded
//!   retries; the port can be rebound in between). Loopback (a domain bound
//!   to itself, e.g. xenbus in dom0) never needs a peer. [`EvtchnDomain::peer_of`]
//!   lets the caller lock the right pair up front.
//! - Domain lookup (`-ESRCH`), `DOMID_SELF` resolution of the *target* domain,
//!   copying argument structs from/to the guest (`-EFAULT`), and the "reset
//!   another domain only if it is paused" rule stay with the hypercall
//!   dispatcher; privilege is passed in where Xen checks it.
//!
//! Ports are numbered from 1 (port 0 is reserved). The table grows in buckets
//! of 64 as ports are allocated; a port beyond the table is invalid
//! (`-EINVAL`), a free port inside it reports `EVTCHNSTAT_closed`, as in Xen.
//! Sending on a bound port is O(1): no allocation, no scan.

mod fifo;
mod two_level;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

use xen_abi::errno::Errno;
use xen_abi::event_channel::{
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_unbound, EVTCHNSTAT_virq,
    EvtchnStatus, EvtchnStatusInterdomain, EvtchnStatusU, EVTCHN_2L_NR_CHANNELS,
    EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_NR_CHANNELS, EVTCHN_FIFO_PRIORITY_DEFAULT, NR_VIRQS,
    VIRQ_DEBUG, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU,
};
use xen_abi::xen::{DomId, DOMID_SELF};

use crate::guest::{GuestFault, GuestMemory};

/// An event-channel port number (`evtchn_port_t`).
pub type Port = u32;

/// Most vCPUs a domain may have here (the width of [`VcpuSet`]).
pub const MAX_VCPUS: u32 = 128;

/// Ports are added to the table in buckets of this many.
const BUCKET: usize = 64;

const PAGE_SIZE: u64 = 4096;

/// `sizeof(vcpu_info)` on arm64.
pub const VCPU_INFO_SIZE: usize = 48;

/// A set of vCPU ids (`0..MAX_VCPUS`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VcpuSet(u128);

impl VcpuSet {
    pub const EMPTY: Self = Self(0);

    /// The set holding only `vcpu` (empty if `vcpu >= MAX_VCPUS`).
    pub const fn single(vcpu: u32) -> Self {
        if vcpu < MAX_VCPUS {
            Self(1 << vcpu)
        } else {
            Self(0)
        }
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn contains(self, vcpu: u32) -> bool {
        vcpu < MAX_VCPUS && (self.0 >> vcpu) & 1 != 0
    }

    pub const fn bits(self) -> u128 {
        self.0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The vCPU ids, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        let mut m = self.0;
        core::iter::from_fn(move || {
            if m == 0 {
                return None;
            }
            let v = m.trailing_zeros();
            m &= m - 1;
            Some(v)
        })
    }
}

impl core::fmt::Debug for VcpuSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// vCPUs whose event upcall became pending: inject the event PPI into them.
#[must_use = "vCPUs in a Notify must get the event PPI"]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Notify {
    /// vCPUs of the domain the operation was called on.
    pub local: VcpuSet,
    /// vCPUs of the [`Peer`] domain passed to the operation.
    pub peer: VcpuSet,
}

impl Notify {
    pub const NONE: Self = Self {
        local: VcpuSet::EMPTY,
        peer: VcpuSet::EMPTY,
    };

    pub const fn local(set: VcpuSet) -> Self {
        Self {
            local: set,
            peer: VcpuSet::EMPTY,
        }
    }

    pub const fn is_empty(&self) -> bool {
        self.local.is_empty() && self.peer.is_empty()
    }
}

/// Failure of an operation that may involve another domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Return `-errno` to the guest.
    Errno(Errno),
    /// Nothing was changed: the port is connected to this domain, which was
    /// not passed as [`Peer::Other`]. Lock it too and call again.
    NeedPeer(DomId),
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::Errno(e)
    }
}

/// The other domain of an interdomain operation, locked by the caller.
pub enum Peer<'a> {
    /// Only the called domain is locked.
    None,
    /// The other domain's state and memory.
    Other(&'a mut EvtchnDomain, &'a dyn GuestMemory),
}

impl Peer<'_> {
    fn get(&mut self, dom: DomId) -> Option<(&mut EvtchnDomain, &dyn GuestMemory)> {
        match self {
            Peer::Other(d, m) if d.domid == dom => Some((&mut **d, *m)),
            _ => None,
        }
    }
}

/// Which delivery ABI the domain uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    TwoLevel,
    Fifo,
}

/// What `EVTCHNOP_status` reports for a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// `EVTCHNSTAT_*`.
    pub status: u32,
    /// vCPU notified.
    pub vcpu: u32,
    /// The `u` union, as the ABI lays it out.
    pub u: EvtchnStatusU,
}

impl PortStatus {
    /// Fill the OUT fields of the guest's `evtchn_status`.
    pub fn write_to(&self, out: &mut EvtchnStatus) {
        out.status = self.status;
        out.vcpu = self.vcpu;
        out.u = self.u;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    /// Port 0.
    Reserved,
    Unbound {
        remote: DomId,
    },
    Interdomain {
        dom: DomId,
        port: Port,
    },
    Virq(u32),
    Ipi,
}

#[derive(Clone, Copy, Debug)]
struct Chan {
    state: State,
    notify_vcpu: u32,
    /// FIFO priority (0..=15).
    priority: u8,
    /// Raised while it could not be made visible (2-level: shared_info not
    /// mapped yet; FIFO: event array page missing); replayed later.
    saved_pending: bool,
    /// The FIFO queue (vCPU, priority) this port was last linked on.
    last_vcpu: u32,
    last_prio: u8,
}

impl Chan {
    const FREE: Chan = Chan {
        state: State::Free,
        notify_vcpu: 0,
        priority: EVTCHN_FIFO_PRIORITY_DEFAULT as u8,
        saved_pending: false,
        last_vcpu: 0,
        last_prio: 0,
    };

    /// Bound to something a guest may use (Xen's `evtchn_usable`).
    fn usable(&self) -> bool {
        !matches!(self.state, State::Free | State::Reserved)
    }
}

#[derive(Clone, Debug)]
struct Vcpu {
    /// `vcpu_info` registered with `VCPUOP_register_vcpu_info`.
    info: Option<u64>,
    /// Selector bits and upcall flag set while the vCPU had no visible
    /// `vcpu_info`; flushed when it gets one.
    shadow_sel: u64,
    shadow_upcall: bool,
    /// Port bound to each VIRQ (0 = none). Global VIRQs live in vCPU0's.
    virq: [Port; NR_VIRQS as usize],
    /// FIFO control block IPA.
    control_block: Option<u64>,
    /// FIFO queue tails (0 = empty / unknown).
    tail: [Port; EVTCHN_FIFO_MAX_QUEUES],
}

impl Vcpu {
    fn new() -> Self {
        Vcpu {
            info: None,
            shadow_sel: 0,
            shadow_upcall: false,
            virq: [0; NR_VIRQS as usize],
            control_block: None,
            tail: [0; EVTCHN_FIFO_MAX_QUEUES],
        }
    }
}

/// Xen's `virq_is_global` on Arm (`arch_virq_is_global` is true).
pub const fn virq_is_global(virq: u32) -> bool {
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// One domain's event channels.
#[derive(Debug)]
pub struct EvtchnDomain {
    domid: DomId,
    /// Highest port number that may be allocated (Xen's `max_evtchn_port`).
    max_port: Port,
    chans: Vec<Chan>,
    vcpus: Vec<Vcpu>,
    /// IPA of the shared_info page, once the guest placed it.
    shared_info: Option<u64>,
    /// FIFO ABI: IPAs of the event array pages (1024 words each), in order.
    fifo: Option<Vec<u64>>,
    faults: u64,
}

impl EvtchnDomain {
    /// A domain with `nr_vcpus` vCPUs whose ports may go up to `max_port`
    /// (xl's default for a domU is 1023; dom0 usually `u32::MAX`, limited
    /// by the ABI to 4095 or 131071). Starts in the 2-level ABI with no
    /// shared_info.
    pub fn new(domid: DomId, nr_vcpus: u32, max_port: Port) -> Result<Self, Errno> {
        if nr_vcpus == 0 || nr_vcpus > MAX_VCPUS {
            return Err(Errno::EINVAL);
        }
        let mut chans = Vec::new();
        chans.try_reserve_exact(BUCKET).map_err(|_| Errno::ENOMEM)?;
        chans.resize(BUCKET, Chan::FREE);
        chans[0].state = State::Reserved;
        let mut vcpus = Vec::new();
        vcpus
            .try_reserve_exact(nr_vcpus as usize)
            .map_err(|_| Errno::ENOMEM)?;
        vcpus.resize(nr_vcpus as usize, Vcpu::new());
        Ok(EvtchnDomain {
            domid,
            max_port,
            chans,
            vcpus,
            shared_info: None,
            fifo: None,
            faults: 0,
        })
    }

    pub fn domid(&self) -> DomId {
        self.domid
    }

    pub fn nr_vcpus(&self) -> u32 {
        self.vcpus.len() as u32
    }

    pub fn abi(&self) -> Abi {
        if self.fifo.is_some() {
            Abi::Fifo
        } else {
            Abi::TwoLevel
        }
    }

    /// Guest memory faults met while delivering events (events dropped).
    pub fn guest_faults(&self) -> u64 {
        self.faults
    }

    /// The domain at the other end of `port` if it is an interdomain port
    /// to *another* domain (what [`Error::NeedPeer`] would ask for).
    pub fn peer_of(&self, port: Port) -> Option<DomId> {
        match self.chan(port)?.state {
            State::Interdomain { dom, .. } if dom != self.domid => Some(dom),
            _ => None,
        }
    }

    /// Port bound to `virq` for `vcpu` (global VIRQs: any `vcpu`), if any.
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> Option<Port> {
        if virq >= NR_VIRQS {
            return None;
        }
        let v = if virq_is_global(virq) { 0 } else { vcpu };
        let p = self.vcpus.get(v as usize)?.virq[virq as usize];
        (p != 0).then_some(p)
    }

    // ---------------------------------------------------------------------
    // Shared memory placement.

    /// The guest placed the shared_info page at `ipa`
    /// (`XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`; may be called again
    /// when the guest moves it). Events raised before the first placement
    /// are made visible now (2-level); vCPU0 uses `shared_info.vcpu_info[0]`
    /// until it registers its own.
    pub fn set_shared_info(&mut self, mem: &dyn GuestMemory, ipa: u64) -> Result<Notify, Errno> {
        if !ipa.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        probe(mem, ipa)?;
        let first = self.shared_info.is_none();
        self.shared_info = Some(ipa);
        let mut n = VcpuSet::EMPTY;
        if first {
            if self.vcpus[0].info.is_none() {
                n = n.union(self.flush_shadow(mem, 0));
            }
            if self.fifo.is_none() {
                n = n.union(self.replay_2l(mem));
            }
        }
        Ok(Notify::local(n))
    }

    /// `VCPUOP_register_vcpu_info`, event part: `vcpu`'s `vcpu_info` now
    /// lives at `ipa`. As Xen does: the old contents are carried over
    /// (vCPU0's shared_info slot, zeros otherwise), then every selector bit
    /// and the upcall flag are set so nothing raised meanwhile is lost — a
    /// spurious upcall by design, hence the returned notification.
    ///
    /// Errors as Xen: `-ENOENT` no such vCPU, `-ENXIO` not 8-aligned,
    /// `-EINVAL` already registered or not writable guest RAM. The caller
    /// checks Xen's other rules (offset in page, target is the caller or
    /// offline); a page-straddling `vcpu_info` is accepted here.
    pub fn register_vcpu_info(
        &mut self,
        mem: &dyn GuestMemory,
        vcpu: u32,
        ipa: u64,
    ) -> Result<Notify, Errno> {
        let v = self.vcpus.get(vcpu as usize).ok_or(Errno::ENOENT)?;
        if !ipa.is_multiple_of(8) {
            return Err(Errno::ENXIO);
        }
        if v.info.is_some() {
            return Err(Errno::EINVAL);
        }
        let last = ipa
            .checked_add(VCPU_INFO_SIZE as u64 - 8)
            .ok_or(Errno::EINVAL)?;
        probe(mem, ipa)?;
        probe(mem, last)?;
        let mut old = [0u8; VCPU_INFO_SIZE];
        if let (0, Some(si)) = (vcpu, self.shared_info) {
            if mem.read(si, &mut old).is_err() {
                old = [0; VCPU_INFO_SIZE];
            }
        }
        mem.write(ipa, &old).map_err(|_| Errno::EINVAL)?;
        let v = &mut self.vcpus[vcpu as usize];
        v.info = Some(ipa);
        v.shadow_sel = 0;
        v.shadow_upcall = false;
        let r1 = mem.fetch_or_u64(ipa + 8, !0);
        let r2 = mem.fetch_or_u64(ipa, 1);
        if r1.is_err() || r2.is_err() {
            self.faults += 1;
        }
        Ok(Notify::local(VcpuSet::single(vcpu)))
    }

    /// Where `vcpu`'s `vcpu_info` is, if the guest can see one.
    pub fn vcpu_info_ipa(&self, vcpu: u32) -> Option<u64> {
        let v = self.vcpus.get(vcpu as usize)?;
        match v.info {
            Some(i) => Some(i),
            None if vcpu == 0 => self.shared_info,
            None => None,
        }
    }

    /// `evtchn_upcall_pending` of `vcpu` as the guest sees it (for level
    /// re-injection of the event PPI).
    pub fn upcall_pending(&self, mem: &dyn GuestMemory, vcpu: u32) -> bool {
        match self.vcpu_info_ipa(vcpu) {
            Some(ipa) => {
                let mut b = [0u8; 1];
                mem.read(ipa, &mut b).is_ok() && b[0] != 0
            }
            None => self
                .vcpus
                .get(vcpu as usize)
                .is_some_and(|v| v.shadow_upcall),
        }
    }

    // ---------------------------------------------------------------------
    // EVTCHNOP_*

    /// [`Self::alloc_unbound_checked`] for a remote domain that exists.
    pub fn alloc_unbound(
        &mut self,
        mem: &dyn GuestMemory,
        caller: DomId,
        caller_privileged: bool,
        remote_dom: DomId,
    ) -> Result<Port, Errno> {
        self.alloc_unbound_checked(mem, caller, caller_privileged, remote_dom, true)
    }

    /// `EVTCHNOP_alloc_unbound` in this (the target) domain. `caller` is the
    /// calling domain; `remote_dom == DOMID_SELF` means the caller, and
    /// `remote_exists` says whether the remote domain exists. Xen's order
    /// (with SILO): a free port (`-ENOSPC`), the remote domain (`-ESRCH`),
    /// no channel between two domUs (`-EPERM`, [`crate::xsm`]), then the
    /// caller must be this domain or privileged (`-EPERM`).
    pub fn alloc_unbound_checked(
        &mut self,
        mem: &dyn GuestMemory,
        caller: DomId,
        caller_privileged: bool,
        remote_dom: DomId,
        remote_exists: bool,
    ) -> Result<Port, Errno> {
        let port = self.get_free_port(mem)?;
        let remote = if remote_dom == DOMID_SELF {
            caller
        } else {
            remote_dom
        };
        if !remote_exists {
            return Err(Errno::ESRCH);
        }
        if !crate::xsm::silo_allows(caller, self.domid, remote) {
            return Err(Errno::EPERM);
        }
        if caller != self.domid && !caller_privileged {
            return Err(Errno::EPERM);
        }
        self.claim(port, State::Unbound { remote }, 0)?;
        Ok(port)
    }

    /// `EVTCHNOP_bind_interdomain`: connect a new local port to
    /// `remote_port` of `remote_dom` (`DOMID_SELF` or this domain's id for
    /// loopback), which must be unbound and accept this domain. The new
    /// port is set pending (events sent to the unbound end were dropped).
    pub fn bind_interdomain(
        &mut self,
        mem: &dyn GuestMemory,
        remote_dom: DomId,
        remote_port: Port,
        mut peer: Peer<'_>,
    ) -> Result<(Port, Notify), Error> {
        let rdom = if remote_dom == DOMID_SELF {
            self.domid
        } else {
            remote_dom
        };
        let me = self.domid;
        let loopback = rdom == me;
        if !loopback && peer.get(rdom).is_none() {
            return Err(Error::NeedPeer(rdom));
        }
        let lport = self.get_free_port(mem)?;
        let accepts = |c: Option<&Chan>| matches!(c, Some(Chan { state: State::Unbound { remote }, .. }) if *remote == me);
        if loopback {
            if !accepts(self.chan(remote_port)) {
                return Err(Errno::EINVAL.into());
            }
            self.claim(
                lport,
                State::Interdomain {
                    dom: me,
                    port: remote_port,
                },
                0,
            )?;
            self.chans[remote_port as usize].state = State::Interdomain {
                dom: me,
                port: lport,
            };
        } else {
            let Some((pd, _)) = peer.get(rdom) else {
                return Err(Error::NeedPeer(rdom));
            };
            if !accepts(pd.chan(remote_port)) {
                return Err(Errno::EINVAL.into());
            }
            // Xen's xsm_evtchn_interdomain under SILO (after the port checks).
            if !crate::xsm::silo_allows(me, me, rdom) {
                return Err(Errno::EPERM.into());
            }
            self.claim(
                lport,
                State::Interdomain {
                    dom: rdom,
                    port: remote_port,
                },
                0,
            )?;
            if let Some((pd, _)) = peer.get(rdom) {
                pd.chans[remote_port as usize].state = State::Interdomain {
                    dom: me,
                    port: lport,
                };
            }
        }
        let v = self.chans[lport as usize].notify_vcpu;
        let n = self.raise(mem, lport, v);
        Ok((lport, Notify::local(n)))
    }

    /// `EVTCHNOP_bind_virq`: `-EINVAL` bad VIRQ or a global VIRQ on a vCPU
    /// other than 0, `-ENOENT` no such vCPU, `-EEXIST` already bound.
    pub fn bind_virq(
        &mut self,
        mem: &dyn GuestMemory,
        virq: u32,
        vcpu: u32,
    ) -> Result<Port, Errno> {
        if virq >= NR_VIRQS || (virq_is_global(virq) && vcpu != 0) {
            return Err(Errno::EINVAL);
        }
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        if self.vcpus[vcpu as usize].virq[virq as usize] != 0 {
            return Err(Errno::EEXIST);
        }
        let port = self.get_free_port(mem)?;
        self.claim(port, State::Virq(virq), vcpu)?;
        self.vcpus[vcpu as usize].virq[virq as usize] = port;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`: `-ENOENT` no such vCPU.
    pub fn bind_ipi(&mut self, mem: &dyn GuestMemory, vcpu: u32) -> Result<Port, Errno> {
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        let port = self.get_free_port(mem)?;
        self.claim(port, State::Ipi, vcpu)?;
        Ok(port)
    }

    /// `EVTCHNOP_close`: `-EINVAL` invalid or not bound. Closing an
    /// interdomain port returns the other end to unbound (accepting this
    /// domain again).
    pub fn close(
        &mut self,
        mem: &dyn GuestMemory,
        port: Port,
        mut peer: Peer<'_>,
    ) -> Result<(), Error> {
        let c = *self.chan(port).ok_or(Errno::EINVAL)?;
        let me = self.domid;
        match c.state {
            State::Free | State::Reserved => return Err(Errno::EINVAL.into()),
            State::Unbound { .. } | State::Ipi => {}
            State::Virq(virq) => {
                let v = if virq_is_global(virq) {
                    0
                } else {
                    c.notify_vcpu
                };
                if let Some(slot) = self
                    .vcpus
                    .get_mut(v as usize)
                    .and_then(|v| v.virq.get_mut(virq as usize))
                {
                    if *slot == port {
                        *slot = 0;
                    }
                }
            }
            State::Interdomain { dom, port: rport } => {
                let back = State::Interdomain { dom: me, port };
                if dom == me {
                    if let Some(r) = self.chan_mut(rport) {
                        if r.state == back {
                            r.state = State::Unbound { remote: me };
                        }
                    }
                } else {
                    let (pd, _) = peer.get(dom).ok_or(Error::NeedPeer(dom))?;
                    if let Some(r) = pd.chan_mut(rport) {
                        if r.state == back {
                            r.state = State::Unbound { remote: me };
                        }
                    }
                }
            }
        }
        self.free(mem, port);
        Ok(())
    }

    /// `EVTCHNOP_send`: IPI → raise locally; interdomain → raise the other
    /// end (in `peer`, or locally for loopback); unbound → dropped silently
    /// (`Ok`); anything else `-EINVAL`.
    pub fn send(
        &mut self,
        mem: &dyn GuestMemory,
        port: Port,
        mut peer: Peer<'_>,
    ) -> Result<Notify, Error> {
        let c = *self.chan(port).ok_or(Errno::EINVAL)?;
        match c.state {
            State::Ipi => Ok(Notify::local(self.raise(mem, port, c.notify_vcpu))),
            State::Unbound { .. } => Ok(Notify::NONE),
            State::Interdomain { dom, port: rport } => {
                let back = State::Interdomain {
                    dom: self.domid,
                    port,
                };
                if dom == self.domid {
                    match self.chan(rport) {
                        Some(r) if r.state == back => {
                            let v = r.notify_vcpu;
                            Ok(Notify::local(self.raise(mem, rport, v)))
                        }
                        _ => Ok(Notify::NONE),
                    }
                } else {
                    let (pd, pm) = peer.get(dom).ok_or(Error::NeedPeer(dom))?;
                    match pd.chan(rport) {
                        Some(r) if r.state == back => {
                            let v = r.notify_vcpu;
                            Ok(Notify {
                                local: VcpuSet::EMPTY,
                                peer: pd.raise(pm, rport, v),
                            })
                        }
                        _ => Ok(Notify::NONE),
                    }
                }
            }
            _ => Err(Errno::EINVAL.into()),
        }
    }

    /// `EVTCHNOP_status` of a port of this domain, asked by `caller`:
    /// `-EINVAL` invalid port, `-EPERM` another domain without privilege.
    pub fn status(
        &self,
        port: Port,
        caller: DomId,
        caller_privileged: bool,
    ) -> Result<PortStatus, Errno> {
        let c = self.chan(port).ok_or(Errno::EINVAL)?;
        if caller != self.domid && !caller_privileged {
            return Err(Errno::EPERM);
        }
        let (status, u) = match c.state {
            State::Free | State::Reserved => (EVTCHNSTAT_closed, EvtchnStatusU::default()),
            State::Unbound { remote } => (
                EVTCHNSTAT_unbound,
                EvtchnStatusU::from_interdomain(EvtchnStatusInterdomain {
                    dom: remote,
                    _pad0: 0,
                    port: 0,
                }),
            ),
            State::Interdomain { dom, port } => (
                EVTCHNSTAT_interdomain,
                EvtchnStatusU::from_interdomain(EvtchnStatusInterdomain {
                    dom,
                    _pad0: 0,
                    port,
                }),
            ),
            State::Virq(v) => (EVTCHNSTAT_virq, EvtchnStatusU::from_u32(v)),
            State::Ipi => (EVTCHNSTAT_ipi, EvtchnStatusU::default()),
        };
        Ok(PortStatus {
            status,
            vcpu: c.notify_vcpu,
            u,
        })
    }

    /// `EVTCHNOP_bind_vcpu`: only unbound, interdomain and global-VIRQ
    /// ports may move (`-EINVAL` otherwise); `-ENOENT` no such vCPU.
    /// Pending state stays where it is; the guest re-raises with unmask.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32) -> Result<(), Errno> {
        if vcpu >= self.nr_vcpus() {
            return Err(Errno::ENOENT);
        }
        let c = self.chan_mut(port).ok_or(Errno::EINVAL)?;
        match c.state {
            State::Virq(v) if virq_is_global(v) => c.notify_vcpu = vcpu,
            State::Unbound { .. } | State::Interdomain { .. } => c.notify_vcpu = vcpu,
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// `EVTCHNOP_unmask`: clear the mask and deliver if pending.
    /// `-EINVAL` invalid port; unbound-but-valid ports are a no-op.
    pub fn unmask(&mut self, mem: &dyn GuestMemory, port: Port) -> Result<Notify, Errno> {
        let c = *self.chan(port).ok_or(Errno::EINVAL)?;
        if !c.usable() {
            return Ok(Notify::NONE);
        }
        let n = if self.fifo.is_some() {
            self.fifo_unmask(mem, port, c.notify_vcpu)
        } else {
            self.unmask_2l(mem, port, c.notify_vcpu)
        };
        Ok(Notify::local(n))
    }

    /// `EVTCHNOP_reset` (and domain teardown): close every port, then go
    /// back to the 2-level ABI. Ports to other domains are closed only if
    /// that domain is `peer`; otherwise the rest is closed and
    /// [`Error::NeedPeer`] names a domain still connected — call again with
    /// it (each call closes all ports to the given peer, so this ends).
    pub fn reset(&mut self, mem: &dyn GuestMemory, mut peer: Peer<'_>) -> Result<(), Error> {
        let mut missing = None;
        for port in 1..self.chans.len() as Port {
            let c = self.chans[port as usize];
            if !c.usable() {
                continue;
            }
            match self.close(mem, port, reborrow(&mut peer)) {
                Ok(()) => {}
                Err(Error::NeedPeer(d)) => {
                    missing.get_or_insert(d);
                }
                Err(Error::Errno(_)) => {}
            }
        }
        if let Some(d) = missing {
            return Err(Error::NeedPeer(d));
        }
        if self.fifo.take().is_some() {
            for v in &mut self.vcpus {
                v.control_block = None;
                v.tail = [0; EVTCHN_FIFO_MAX_QUEUES];
            }
            for c in &mut self.chans {
                c.last_vcpu = 0;
                c.last_prio = 0;
                c.saved_pending = false;
            }
        }
        Ok(())
    }

    /// `EVTCHNOP_set_priority` (FIFO): `-EINVAL` invalid port or priority
    /// above 15, `-ENOSYS` in the 2-level ABI, `-EACCES` unbound port.
    pub fn set_priority(&mut self, port: Port, priority: u32) -> Result<(), Errno> {
        let fifo = self.fifo.is_some();
        let c = self.chan_mut(port).ok_or(Errno::EINVAL)?;
        if !fifo {
            return Err(Errno::ENOSYS);
        }
        if !c.usable() {
            return Err(Errno::EACCES);
        }
        if priority > xen_abi::event_channel::EVTCHN_FIFO_PRIORITY_MIN {
            return Err(Errno::EINVAL);
        }
        c.priority = priority as u8;
        Ok(())
    }

    // `init_control` and `expand_array` are in `fifo.rs`.

    /// Hypervisor side: raise `virq` (per-vCPU VIRQs on `vcpu`, global ones
    /// on the port's notify vCPU). Nothing happens if it is not bound.
    pub fn raise_virq(&mut self, mem: &dyn GuestMemory, virq: u32, vcpu: u32) -> Notify {
        let Some(port) = self.virq_port(virq, vcpu) else {
            return Notify::NONE;
        };
        let Some(c) = self.chan(port) else {
            return Notify::NONE;
        };
        if c.state != State::Virq(virq) {
            return Notify::NONE;
        }
        let target = if virq_is_global(virq) {
            c.notify_vcpu
        } else {
            vcpu
        };
        Notify::local(self.raise(mem, port, target))
    }

    // ---------------------------------------------------------------------
    // Internals.

    /// Highest port number + 1 of the current ABI.
    fn abi_ports(&self) -> u32 {
        if self.fifo.is_some() {
            EVTCHN_FIFO_NR_CHANNELS
        } else {
            EVTCHN_2L_NR_CHANNELS
        }
    }

    fn chan(&self, port: Port) -> Option<&Chan> {
        if port >= self.abi_ports() {
            return None;
        }
        self.chans.get(port as usize)
    }

    fn chan_mut(&mut self, port: Port) -> Option<&mut Chan> {
        if port >= self.abi_ports() {
            return None;
        }
        self.chans.get_mut(port as usize)
    }

    /// Lowest allocatable port (Xen's `get_free_port`): `-ENOSPC` if none.
    /// A free FIFO port still LINKED in the guest's array is skipped.
    fn get_free_port(&self, mem: &dyn GuestMemory) -> Result<Port, Errno> {
        let end = self.abi_ports().min(self.max_port.saturating_add(1));
        for port in 1..end {
            match self.chans.get(port as usize) {
                None => return Ok(port),
                Some(c) if c.state == State::Free && !self.fifo_is_busy(mem, port) => {
                    return Ok(port)
                }
                Some(_) => {}
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Bind `port` (from `get_free_port`), growing the table as needed.
    fn claim(&mut self, port: Port, state: State, vcpu: u32) -> Result<(), Errno> {
        let p = port as usize;
        if p >= self.chans.len() {
            let want = (p / BUCKET + 1) * BUCKET;
            self.chans
                .try_reserve_exact(want - self.chans.len())
                .map_err(|_| Errno::ENOMEM)?;
            self.chans.resize(want, Chan::FREE);
        }
        let c = &mut self.chans[p];
        c.state = state;
        c.notify_vcpu = vcpu;
        c.priority = EVTCHN_FIFO_PRIORITY_DEFAULT as u8;
        c.saved_pending = false;
        Ok(())
    }

    /// Unbind `port`: clear its pending bit, back to vCPU0.
    fn free(&mut self, mem: &dyn GuestMemory, port: Port) {
        if self.fifo.is_some() {
            self.fifo_clear_pending(mem, port);
        } else {
            self.clear_pending_2l(mem, port);
        }
        let c = &mut self.chans[port as usize];
        c.state = State::Free;
        c.notify_vcpu = 0;
        c.saved_pending = false;
    }

    /// Set `port` pending for `vcpu` in the current ABI.
    fn raise(&mut self, mem: &dyn GuestMemory, port: Port, vcpu: u32) -> VcpuSet {
        if self.chan(port).is_none_or(|c| !c.usable()) || vcpu >= self.nr_vcpus() {
            return VcpuSet::EMPTY;
        }
        if self.fifo.is_some() {
            self.fifo_set_pending(mem, port, vcpu)
        } else {
            self.set_pending_2l(mem, port, vcpu)
        }
    }

    fn fault(&mut self, _f: GuestFault) {
        self.faults = self.faults.wrapping_add(1);
    }

    /// Set `evtchn_upcall_pending` of `vcpu`; true if it went 0→1 (inject).
    fn mark_upcall(&mut self, mem: &dyn GuestMemory, vcpu: u32) -> VcpuSet {
        match self.vcpu_info_ipa(vcpu) {
            None => {
                if let Some(v) = self.vcpus.get_mut(vcpu as usize) {
                    v.shadow_upcall = true;
                }
                VcpuSet::EMPTY
            }
            // Byte 0 of the 8-aligned vcpu_info; bytes 1..7 are padding.
            Some(ipa) => match mem.fetch_or_u64(ipa, 1) {
                Ok(old) if old & 0xff == 0 => VcpuSet::single(vcpu),
                Ok(_) => VcpuSet::EMPTY,
                Err(f) => {
                    self.fault(f);
                    VcpuSet::EMPTY
                }
            },
        }
    }

    /// Set selector bit `word` of `vcpu`; true if it was clear.
    fn set_selector(&mut self, mem: &dyn GuestMemory, vcpu: u32, word: u32) -> bool {
        let bit = 1u64 << (word % 64);
        match self.vcpu_info_ipa(vcpu) {
            None => match self.vcpus.get_mut(vcpu as usize) {
                Some(v) => {
                    let was = v.shadow_sel & bit != 0;
                    v.shadow_sel |= bit;
                    !was
                }
                None => false,
            },
            Some(ipa) => match mem.fetch_or_u64(ipa + 8, bit) {
                Ok(old) => old & bit == 0,
                Err(f) => {
                    self.fault(f);
                    false
                }
            },
        }
    }

    /// `vcpu` just got a visible `vcpu_info`: publish what was set meanwhile.
    fn flush_shadow(&mut self, mem: &dyn GuestMemory, vcpu: u32) -> VcpuSet {
        let Some(ipa) = self.vcpu_info_ipa(vcpu) else {
            return VcpuSet::EMPTY;
        };
        let v = &mut self.vcpus[vcpu as usize];
        let (sel, up) = (v.shadow_sel, v.shadow_upcall);
        v.shadow_sel = 0;
        v.shadow_upcall = false;
        if sel != 0 {
            if let Err(f) = mem.fetch_or_u64(ipa + 8, sel) {
                self.fault(f);
            }
        }
        if up {
            self.mark_upcall(mem, vcpu)
        } else {
            VcpuSet::EMPTY
        }
    }
}

/// Reborrow a `Peer` for one call inside a loop.
fn reborrow<'a>(p: &'a mut Peer<'_>) -> Peer<'a> {
    match p {
        Peer::None => Peer::None,
        Peer::Other(d, m) => Peer::Other(d, *m),
    }
}

/// Xen's `map_guest_page` check: `ipa` must be writable guest RAM.
fn probe(mem: &dyn GuestMemory, ipa: u64) -> Result<(), Errno> {
    mem.fetch_or_u64(ipa & !7, 0)
        .map(|_| ())
        .map_err(|_| Errno::EINVAL)
}
