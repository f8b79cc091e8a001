//! The daemon's connections and domains, over a [`Platform`] (the real one maps pages and
//! binds ports through Linux's Xen devices, see [`crate::xen`]; tests use a fake): rings
//! (dom0's kernel ring and every introduced domU's) and byte streams (the tools' unix socket
//! connections, whose I/O stays with the daemon), all in front of one [`xenstore::Server`].
//!
//! Guests are not trusted. A ring is read in bounded steps, with indices checked on every
//! access ([`DomainRing`]); impossible indices or a malformed message put the connection
//! aside as C xenstored's `ignore_connection` does (the page's `error` field set, its
//! watches and transactions dropped, nothing read from it again until it is re-introduced,
//! released or dies). An unprivileged domain with `max_outstanding` replies it has not
//! taken off its ring yet is not read from until it takes some (C xenstored's
//! `quota_req_outstanding`), and a connection's queued output is bounded ([`OutQueue`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use xen_abi::domctl::{XEN_DOMINF_dying, XEN_DOMINF_shutdown};
use xen_abi::io::xs_wire::{
    XENSTORE_CONNECTED, XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX, XENSTORE_RECONNECT, XS_INTRODUCE, XS_WATCH_EVENT,
};
use xen_abi::xen::DOMID_FIRST_RESERVED;
use xenstore::ring::{DomainRing, SharedPage};
use xenstore::{Action, ConnId, Decoder, DomId, DomState, Errno, Message, Request, Server};

use crate::queue::OutQueue;

/// What the engine needs from the hypervisor.
pub trait Platform {
    /// A mapped ring page; dropping it unmaps it.
    type Page: SharedPage;
    /// Maps domain `domid`'s xenstore page (`gfn`, as `XS_INTRODUCE` gives it).
    fn map_ring(&mut self, domid: DomId, gfn: u64) -> io::Result<Self::Page>;
    /// Binds a local port to `domid`'s `remote_port`; returns the local port.
    fn bind_interdomain(&mut self, domid: DomId, remote_port: u32) -> io::Result<u32>;
    fn unbind(&mut self, port: u32) -> io::Result<()>;
    fn notify(&mut self, port: u32) -> io::Result<()>;
    /// `XEN_DOMINF_*` flags of every existing domain (`XEN_SYSCTL_getdomaininfolist`).
    fn domain_flags(&mut self) -> io::Result<BTreeMap<DomId, u32>>;
}

/// Ring bytes read at once.
const RING_CHUNK: usize = 1024;
/// Steps (each: output moved, one request read and handled) per ring and wake-up; a ring
/// with more to do is revisited ([`Engine::has_work`]) after the others had their turn.
const RING_STEPS: usize = 32;

struct Ring<M> {
    ring: DomainRing<M>,
    /// Local port bound to the domain's.
    port: u32,
    /// Put aside after bad indices or a protocol error.
    ignored: bool,
}

enum Io<M> {
    /// A tools' socket: the daemon does the I/O through [`Engine::stream_input`] and
    /// [`Engine::out_queue`].
    Stream,
    Ring(Ring<M>),
}

struct Conn<M> {
    domid: DomId,
    io: Io<M>,
    dec: Decoder,
    out: OutQueue,
}

/// A domU page mapped and its port bound for an `XS_INTRODUCE` being handled.
struct Premapped<M> {
    domid: DomId,
    page: M,
    port: u32,
}

pub struct Engine<P: Platform> {
    pub server: Server,
    pub platform: P,
    conns: BTreeMap<ConnId, Conn<P::Page>>,
    ports: HashMap<u32, ConnId>,
    next_id: ConnId,
    virq_port: Option<u32>,
    busy: BTreeSet<ConnId>,
    premapped: Option<Premapped<P::Page>>,
    /// Log every request.
    pub verbose: bool,
}

impl<P: Platform> Engine<P> {
    pub fn new(server: Server, platform: P) -> Self {
        Engine {
            server,
            platform,
            conns: BTreeMap::new(),
            ports: HashMap::new(),
            next_id: 1,
            virq_port: None,
            busy: BTreeSet::new(),
            premapped: None,
            verbose: false,
        }
    }

    /// Events on `port` (bound to `VIRQ_DOM_EXC`) make the engine look at all domains.
    pub fn set_virq_port(&mut self, port: u32) {
        self.virq_port = Some(port);
    }

    fn new_id(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Serves a ring that is already set up (dom0's kernel ring: its indices are kept, the
    /// kernel may have queued requests before the daemon came).
    pub fn add_ring(&mut self, domid: DomId, page: P::Page, port: u32) -> ConnId {
        let id = self.new_id();
        self.server.connect(id, domid);
        let ring = Ring { ring: DomainRing::new(page), port, ignored: false };
        self.conns.insert(id, Conn { domid, io: Io::Ring(ring), dec: Decoder::new(), out: OutQueue::new() });
        self.ports.insert(port, id);
        self.service_ring(id);
        id
    }

    /// A new byte-stream connection acting as `domid`.
    pub fn add_stream(&mut self, domid: DomId) -> ConnId {
        let id = self.new_id();
        self.server.connect(id, domid);
        self.conns.insert(id, Conn { domid, io: Io::Stream, dec: Decoder::new(), out: OutQueue::new() });
        id
    }

    /// Bytes received on a stream; an error means the stream must be closed.
    pub fn stream_input(&mut self, id: ConnId, data: &[u8]) -> Result<(), String> {
        let Some(c) = self.conns.get_mut(&id) else { return Err("no such connection".into()) };
        let mut msgs = Vec::new();
        c.dec.push(data, &mut msgs).map_err(|e| e.to_string())?;
        let domid = c.domid;
        self.dispatch(id, domid, msgs);
        Ok(())
    }

    /// Whether a stream may be read from (its output is not backed up).
    pub fn stream_wants_input(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| !c.out.is_full())
    }

    /// A connection's queued output.
    pub fn out_queue(&mut self, id: ConnId) -> Option<&mut OutQueue> {
        self.conns.get_mut(&id).map(|c| &mut c.out)
    }

    /// Forgets a stream connection with its watches and transactions.
    pub fn close(&mut self, id: ConnId) {
        self.server.disconnect(id);
        self.conns.remove(&id);
        self.busy.remove(&id);
    }

    /// The ring connection of `domid`.
    pub fn ring_of(&self, domid: DomId) -> Option<ConnId> {
        self.conns.iter().find(|(_, c)| c.domid == domid && matches!(c.io, Io::Ring(_))).map(|(&id, _)| id)
    }

    /// Local port of `domid`'s ring.
    pub fn ring_port(&self, domid: DomId) -> Option<u32> {
        self.ring_of(domid).and_then(|id| match &self.conns[&id].io {
            Io::Ring(r) => Some(r.port),
            Io::Stream => None,
        })
    }

    /// Whether `domid`'s ring was put aside.
    pub fn is_ignored(&self, domid: DomId) -> bool {
        self.ring_of(domid).is_some_and(|id| matches!(&self.conns[&id].io, Io::Ring(r) if r.ignored))
    }

    /// An event arrived on local `port` (already unmasked by the caller).
    pub fn event(&mut self, port: u32) {
        if Some(port) == self.virq_port {
            self.check_domains();
            return;
        }
        match self.ports.get(&port) {
            Some(&id) => self.service_ring(id),
            None => crate::log!("event on unknown port {port}"),
        }
    }

    /// Rings have work left from an earlier wake-up.
    pub fn has_work(&self) -> bool {
        !self.busy.is_empty()
    }

    /// Gives each ring with work left its next turn.
    pub fn run_busy(&mut self) {
        let ids: Vec<ConnId> = self.busy.iter().copied().collect();
        for id in ids {
            self.service_ring(id);
        }
    }

    /// Moves queued output onto every ring that has some.
    pub fn flush_rings(&mut self) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.out.is_empty() && matches!(&c.io, Io::Ring(r) if !r.ignored))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.service_ring(id);
        }
    }

    /// Moves bytes both ways on a ring, in bounded steps.
    fn service_ring(&mut self, id: ConnId) {
        self.busy.remove(&id);
        for _ in 0..RING_STEPS {
            if !self.ring_step(id) {
                return;
            }
        }
        self.busy.insert(id);
    }

    /// One step: queued output into the response ring, one request out of the request ring
    /// (quota permitting) and handled. True if bytes moved.
    fn ring_step(&mut self, id: ConnId) -> bool {
        let max_outstanding = self.server.store().quotas.max_outstanding;
        let Some(c) = self.conns.get_mut(&id) else { return false };
        let Io::Ring(r) = &mut c.io else { return false };
        if r.ignored {
            return false;
        }
        let mut moved = false;
        let mut bad = None;
        let mut msgs = Vec::new();
        match c.out.drain_into(|b| r.ring.write_responses(b)) {
            Ok(n) => moved |= n > 0,
            Err(e) => bad = Some((XENSTORE_ERROR_RINGIDX, e.to_string())),
        }
        // One message at most per step, so that the outstanding quota holds per message.
        let privileged = c.domid == 0;
        if bad.is_none() && !c.out.is_full() && (privileged || c.out.replies() < max_outstanding) {
            let mut buf = [0u8; RING_CHUNK];
            while msgs.is_empty() {
                let want = c.dec.needed().clamp(1, RING_CHUNK);
                match r.ring.read_requests(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => {
                        moved = true;
                        if let Err(e) = c.dec.push(&buf[..n], &mut msgs) {
                            bad = Some((XENSTORE_ERROR_PROTO, e.to_string()));
                            break;
                        }
                    }
                    Err(e) => {
                        bad = Some((XENSTORE_ERROR_RINGIDX, e.to_string()));
                        break;
                    }
                }
            }
        }
        let (port, domid) = (r.port, c.domid);
        if moved {
            if let Err(e) = self.platform.notify(port) {
                crate::log!("domain {domid}: {e}");
            }
        }
        // Whole messages before a bad one are still answered (their replies go nowhere if
        // the ring is then put aside).
        self.dispatch(id, domid, msgs);
        if let Some((code, why)) = bad {
            self.ignore_ring(id, code, &why);
            return false;
        }
        moved
    }

    fn ignore_ring(&mut self, id: ConnId, code: u32, why: &str) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let Io::Ring(r) = &mut c.io else { return };
        crate::log!("domain {} ring: {why}; ignoring it from now on", c.domid);
        r.ring.set_error(code);
        r.ignored = true;
        c.out.clear();
        c.dec = Decoder::new();
        self.server.ignore(id);
        self.busy.remove(&id);
    }

    /// Handles requests of connection `id` and queues what they produce.
    fn dispatch(&mut self, id: ConnId, domid: DomId, msgs: Vec<Message>) {
        for m in msgs {
            if self.verbose {
                crate::log!(
                    "conn {id} (dom{domid}) type {} req {} tx {} {:?}",
                    m.ty,
                    m.req_id,
                    m.tx_id,
                    String::from_utf8_lossy(&m.payload)
                );
            }
            if let Err(e) = self.premap(domid, &m) {
                self.route(vec![(id, Message::error(&m, e))]);
                continue;
            }
            let mut out = self.server.handle(id, domid, &m);
            if let Err(e) = self.run_actions(&mut out) {
                if m.ty == XS_INTRODUCE {
                    if let Some(first) = out.iter_mut().find(|(c, r)| *c == id && r.req_id == m.req_id) {
                        first.1 = Message::error(&m, e);
                    }
                }
            }
            // Mapped for a request the server then refused (e.g. a bad transaction id).
            if let Some(p) = self.premapped.take() {
                self.discard(p);
            }
            self.route(out);
        }
    }

    /// For an `XS_INTRODUCE` of a new domain from dom0: maps its page and binds its port
    /// before the server accepts the domain, so that a failure is the reply and nothing
    /// fires (C xenstored's `introduce_domain` order).
    fn premap(&mut self, caller: DomId, m: &Message) -> Result<(), Errno> {
        if m.ty != XS_INTRODUCE || caller != 0 {
            return Ok(());
        }
        let Ok(Request::Introduce { domid, gfn, evtchn }) = Request::parse(m.ty, &m.payload) else { return Ok(()) };
        if domid >= DOMID_FIRST_RESERVED || self.server.is_introduced(domid) {
            return Ok(());
        }
        let page = self.platform.map_ring(domid, gfn).map_err(|e| {
            crate::log!("introduce domain {domid} (gfn {gfn:#x}, port {evtchn}) failed: {e}");
            xs_errno(&e)
        })?;
        let port = self.platform.bind_interdomain(domid, evtchn).map_err(|e| {
            crate::log!("introduce domain {domid} (gfn {gfn:#x}, port {evtchn}) failed: {e}");
            xs_errno(&e)
        })?;
        self.premapped = Some(Premapped { domid, page, port });
        Ok(())
    }

    fn discard(&mut self, p: Premapped<P::Page>) {
        if let Err(e) = self.platform.unbind(p.port) {
            crate::log!("domain {}: {e}", p.domid);
        }
        drop(p.page);
    }

    fn route(&mut self, out: Vec<(ConnId, Message)>) {
        for (id, msg) in out {
            let Some(c) = self.conns.get_mut(&id) else { continue };
            if matches!(&c.io, Io::Ring(r) if r.ignored) {
                continue;
            }
            if msg.ty == XS_WATCH_EVENT {
                if !c.out.push_event(&msg) && c.out.dropped().is_power_of_two() {
                    crate::log!(
                        "connection {id} (dom{}): output queue full, {} watch event(s) dropped",
                        c.domid,
                        c.out.dropped()
                    );
                }
            } else {
                c.out.push_reply(&msg);
            }
        }
    }

    /// Carries out the server's actions (and any they lead to); returns the first failure.
    fn run_actions(&mut self, out: &mut Vec<(ConnId, Message)>) -> Result<(), Errno> {
        let mut result = Ok(());
        loop {
            let actions = self.server.take_actions();
            if actions.is_empty() {
                return result;
            }
            for a in actions {
                if let Err(e) = self.act(&a, out) {
                    result = result.and(Err(e));
                }
            }
        }
    }

    /// Carries out an [`Action`]; on failure returns the errno to report.
    fn act(&mut self, a: &Action, out: &mut Vec<(ConnId, Message)>) -> Result<(), Errno> {
        match *a {
            Action::MapDomain { domid, .. } => match self.premapped.take() {
                Some(p) if p.domid == domid => {
                    self.connect_domain(p);
                    Ok(())
                }
                other => {
                    if let Some(p) = other {
                        self.discard(p);
                    }
                    crate::log!("introduce domain {domid}: no ring mapped for it");
                    out.extend(self.server.domain_gone(domid));
                    Err(Errno::EIO)
                }
            },
            Action::Rebind { domid, evtchn } => self.rebind(domid, evtchn).map_err(|e| {
                crate::log!("re-introduce domain {domid} (port {evtchn}) failed: {e}");
                xs_errno(&e)
            }),
            Action::ReleaseDomain { domid } => {
                self.release(domid);
                Ok(())
            }
        }
    }

    /// A freshly introduced domain's ring: indices zeroed (`domain_conn_reset`), a guest
    /// waiting for a reconnection told it is connected.
    fn connect_domain(&mut self, p: Premapped<P::Page>) {
        let Premapped { domid, page, port } = p;
        let mut ring = DomainRing::new(page);
        ring.reset();
        let reconnect = ring.connection() == XENSTORE_RECONNECT;
        if reconnect {
            ring.set_connection(XENSTORE_CONNECTED);
        }
        let id = self.new_id();
        self.server.connect(id, domid);
        let ring = Ring { ring, port, ignored: false };
        self.conns.insert(id, Conn { domid, io: Io::Ring(ring), dec: Decoder::new(), out: OutQueue::new() });
        self.ports.insert(port, id);
        if reconnect {
            let _ = self.platform.notify(port);
        }
        crate::log!("domain {domid}: ring mapped, its port bound as local port {port}");
    }

    fn rebind(&mut self, domid: DomId, evtchn: u32) -> io::Result<()> {
        let id = self.ring_of(domid).ok_or_else(|| io::Error::other(format!("domain {domid} has no ring")))?;
        let c = self.conns.get_mut(&id).expect("found above");
        let Io::Ring(r) = &mut c.io else { unreachable!("ring_of finds rings") };
        let _ = self.platform.unbind(r.port);
        self.ports.remove(&r.port);
        let port = self.platform.bind_interdomain(domid, evtchn)?;
        r.port = port;
        r.ring.reset();
        r.ignored = false;
        if r.ring.connection() == XENSTORE_RECONNECT {
            r.ring.set_connection(XENSTORE_CONNECTED);
            let _ = self.platform.notify(port);
        }
        c.dec = Decoder::new();
        c.out.clear();
        self.ports.insert(port, id);
        self.busy.remove(&id);
        Ok(())
    }

    /// Unbinds and unmaps a released domain's ring (the server forgot it already).
    fn release(&mut self, domid: DomId) {
        if domid == 0 {
            return;
        }
        while let Some(id) = self.ring_of(domid) {
            let Some(c) = self.conns.remove(&id) else { break };
            self.busy.remove(&id);
            self.server.disconnect(id);
            if let Io::Ring(r) = c.io {
                self.ports.remove(&r.port);
                if let Err(e) = self.platform.unbind(r.port) {
                    crate::log!("release domain {domid}: {e}");
                }
                drop(r.ring);
            }
            crate::log!("domain {domid}: released, its ring unmapped");
        }
    }

    /// C xenstored's `check_domains` (on `VIRQ_DOM_EXC`): announces domains newly shut
    /// down, releases dying and vanished ones (unmapping their pages, which lets the
    /// hypervisor free them).
    pub fn check_domains(&mut self) {
        let flags = match self.platform.domain_flags() {
            Ok(f) => f,
            Err(e) => {
                crate::log!("listing domains: {e}");
                return;
            }
        };
        let mut out = self.server.check_domains(|d| match flags.get(&d) {
            None => DomState::Dying,
            Some(f) if f & XEN_DOMINF_dying != 0 => DomState::Dying,
            Some(f) if f & XEN_DOMINF_shutdown != 0 => DomState::Shutdown,
            Some(_) => DomState::Running,
        });
        let _ = self.run_actions(&mut out);
        self.route(out);
    }
}

/// The xenstore errno for a failed system call (EIO when xenstore has no name for it).
pub fn xs_errno(e: &io::Error) -> Errno {
    match xen_sys::errno(e) {
        Some(n) if Errno(n).name() != "EINVAL" || n == libc::EINVAL => Errno(n),
        _ => Errno::EIO,
    }
}
