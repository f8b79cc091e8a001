//! The request engine: everything xenstored does except I/O.
//!
//! The daemon owns the connections (dom0's kernel via
//! `/dev/xen/xenbus_backend`, tools on the unix socket, guests on their
//! rings), decodes their bytes with [`crate::Decoder`], passes each message to
//! [`Server::handle`] and queues the returned messages (the reply plus watch
//! events, possibly for other connections). Requests that need the outside
//! world (`XS_INTRODUCE`, `XS_RELEASE`) leave [`Action`]s to collect with
//! [`Server::take_actions`].

use std::collections::BTreeMap;

use xen_abi::io::xs_wire::*;
use xen_abi::xen::{DOMID_FIRST_RESERVED, DOMID_SELF};

use crate::path::{self, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::perms::{Access, Caller, Perms, READ};
use crate::store::{Quotas, Store, View};
use crate::txn::Transaction;
use crate::watch::{self, Change, WatchList};
use crate::wire::{Message, Request};
use crate::{DomId, Errno};

/// Identifies a connection; chosen by the daemon.
pub type ConnId = u64;

/// Work for the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new domain: map its ring page (grant `GNTTAB_RESERVED_XENSTORE`, or
    /// a foreign mapping of `gfn`), bind `evtchn` interdomain, zero the ring
    /// indices, then register the ring with [`Server::connect`]. On failure,
    /// call [`Server::domain_gone`].
    MapDomain { domid: DomId, gfn: u64, evtchn: u32 },
    /// Re-introduction of a known domain: rebind its event channel to
    /// `evtchn` and zero the ring indices (its watches and transactions are
    /// already gone).
    Rebind { domid: DomId, evtchn: u32 },
    /// The domain was released: unmap its ring, unbind its port and stop
    /// reading it (its connections are already forgotten).
    ReleaseDomain { domid: DomId },
}

/// Per-connection state.
#[derive(Debug)]
struct Conn {
    domid: DomId,
    txns: BTreeMap<u32, Transaction>,
    last_tx: u32,
    watches: WatchList,
}

/// An introduced domain.
#[derive(Clone, Debug, Default)]
struct Domain {
    target: Option<DomId>,
    /// Its shutdown was seen (and announced with `@releaseDomain`); cleared
    /// by `XS_RESUME` and re-introduction.
    shutdown: bool,
}

/// What the hypervisor says about an introduced domain
/// (`XEN_SYSCTL_getdomaininfolist`), for [`Server::check_domains`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomState {
    /// Exists, neither shut down nor dying.
    Running,
    /// `XEN_DOMINF_shutdown` (a crash included), not yet dying.
    Shutdown,
    /// `XEN_DOMINF_dying`, or no longer exists.
    Dying,
}

/// The xenstore engine: store, connections, introduced domains.
#[derive(Debug)]
pub struct Server {
    store: Store,
    conns: BTreeMap<ConnId, Conn>,
    domains: BTreeMap<DomId, Domain>,
    actions: Vec<Action>,
}

type Out = Vec<(ConnId, Message)>;

const OK: &[u8] = b"OK\0";

impl Default for Server {
    fn default() -> Server {
        Server::new(Quotas::default())
    }
}

impl Server {
    /// A fresh store. Dom0 counts as introduced (xenstored's `dom0_init`).
    pub fn new(quotas: Quotas) -> Server {
        Server {
            store: Store::new(quotas),
            conns: BTreeMap::new(),
            domains: BTreeMap::from([(0, Domain::default())]),
            actions: Vec::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Direct store access (pre-population, inspection); fires no watches.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Registers a connection acting as `domid` (0 = dom0 and its tools).
    /// [`Server::handle`] does this implicitly for unknown ids.
    pub fn connect(&mut self, conn: ConnId, domid: DomId) {
        self.conns.entry(conn).or_insert_with(|| Conn {
            domid,
            txns: BTreeMap::new(),
            last_tx: 0,
            watches: WatchList::default(),
        });
    }

    /// Forgets a connection with its watches and transactions.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    pub fn is_introduced(&self, domid: DomId) -> bool {
        self.domains.contains_key(&domid)
    }

    /// The introduced domains, dom0 included, in ascending order.
    pub fn domains(&self) -> impl Iterator<Item = DomId> + '_ {
        self.domains.keys().copied()
    }

    /// The domain a connection acts as, if it is registered.
    pub fn conn_domid(&self, conn: ConnId) -> Option<DomId> {
        self.conns.get(&conn).map(|c| c.domid)
    }

    /// A connection stops being served (bad ring indices, protocol error):
    /// its watches and transactions go, as in xenstored's
    /// `ignore_connection`; it stays registered, so its domain stays
    /// introduced until it is released or dies.
    pub fn ignore(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.watches.clear();
            c.txns.clear();
        }
    }

    /// Watches registered by `domid`'s connections.
    pub fn watch_count(&self, domid: DomId) -> usize {
        self.conns
            .values()
            .filter(|c| c.domid == domid)
            .map(|c| c.watches.len())
            .sum()
    }

    /// Bytes `domid`'s connections hold in transactions and watches (what
    /// xenstored's per-domain memory quota counts besides nodes, whose
    /// number and size have quotas of their own).
    pub fn memory(&self, domid: DomId) -> usize {
        self.conns
            .values()
            .filter(|c| c.domid == domid)
            .map(|c| {
                let w: usize = c
                    .watches
                    .iter()
                    .map(|w| 32 + w.path.len() + w.token.len())
                    .sum();
                let t: usize = c.txns.values().map(Transaction::memory).sum();
                w + t
            })
            .sum()
    }

    /// Actions requested since the last call.
    pub fn take_actions(&mut self) -> Vec<Action> {
        core::mem::take(&mut self.actions)
    }

    /// The domain died or its ring could not be set up: like `XS_RELEASE`.
    pub fn domain_gone(&mut self, domid: DomId) -> Out {
        let mut out = Vec::new();
        if domid != 0 && self.domains.contains_key(&domid) {
            self.release(domid, &mut out);
        }
        out
    }

    /// A domain shut down (not yet dead): xenstored fires `@releaseDomain`
    /// so toolstacks look at it.
    pub fn domain_shutdown(&mut self) -> Out {
        let mut out = Vec::new();
        self.fire_special(RELEASE_DOMAIN, &mut out);
        out
    }

    /// xenstored's `check_domains`, run on each `VIRQ_DOM_EXC`: `state`
    /// says how each introduced domU is. A domain seen shut down for the
    /// first time (since introduction or `XS_RESUME`) makes one
    /// `@releaseDomain` for the whole pass; a dying or vanished domain is
    /// released as by `XS_RELEASE` (its connections and watches go, a
    /// [`Action::ReleaseDomain`] asks the daemon to unmap its page, and
    /// `@releaseDomain` fires for it; the pass's shutdown event is then not
    /// sent on top, as in xenstored).
    pub fn check_domains(&mut self, mut state: impl FnMut(DomId) -> DomState) -> Out {
        let mut out = Vec::new();
        let mut notify = false;
        let ids: Vec<DomId> = self.domains.keys().copied().filter(|&d| d != 0).collect();
        for d in ids {
            match state(d) {
                DomState::Running => {}
                DomState::Shutdown => {
                    if let Some(dom) = self.domains.get_mut(&d) {
                        if !dom.shutdown {
                            dom.shutdown = true;
                            notify = true;
                        }
                    }
                }
                DomState::Dying => {
                    self.release(d, &mut out);
                    notify = false;
                }
            }
        }
        if notify {
            self.fire_special(RELEASE_DOMAIN, &mut out);
        }
        out
    }

    /// Handles one request from `conn` (registered as `domid` if new).
    /// Returns the reply for `conn` first, then any watch events.
    pub fn handle(&mut self, conn: ConnId, domid: DomId, msg: &Message) -> Out {
        self.connect(conn, domid);
        let mut events = Vec::new();
        let reply = match self.dispatch(conn, msg, &mut events) {
            Ok(payload) => Message::reply(msg, payload),
            Err(e) => Message::error(msg, e),
        };
        let mut out = vec![(conn, reply)];
        out.extend(events);
        out
    }

    fn caller(&self, conn: ConnId) -> Caller {
        let domid = self.conns.get(&conn).map_or(DOMID_SELF, |c| c.domid);
        Self::caller_of(&self.domains, domid)
    }

    fn caller_of(domains: &BTreeMap<DomId, Domain>, domid: DomId) -> Caller {
        Caller {
            domid,
            privileged: domid == 0,
            target: domains.get(&domid).and_then(|d| d.target),
        }
    }

    fn conn(&mut self, conn: ConnId) -> Result<&mut Conn, Errno> {
        self.conns.get_mut(&conn).ok_or(Errno::EINVAL)
    }

    fn dispatch(&mut self, id: ConnId, msg: &Message, out: &mut Out) -> Result<Vec<u8>, Errno> {
        let caller = self.caller(id);
        let privileged_only = matches!(
            msg.ty,
            XS_CONTROL
                | XS_INTRODUCE
                | XS_RELEASE
                | XS_IS_DOMAIN_INTRODUCED
                | XS_RESUME
                | XS_SET_TARGET
        );
        let implemented =
            msg.ty < XS_TYPE_COUNT && !matches!(msg.ty, XS_WATCH_EVENT | XS_ERROR | 20);
        if !implemented {
            return Err(Errno::ENOSYS);
        }
        if privileged_only && !caller.privileged {
            return Err(Errno::EACCES);
        }
        // WATCH and UNWATCH ignore the transaction id; others need a valid one.
        let tx = if matches!(msg.ty, XS_WATCH | XS_UNWATCH) {
            0
        } else {
            msg.tx_id
        };
        if tx != 0 && !self.conn(id)?.txns.contains_key(&tx) {
            return Err(Errno::ENOENT);
        }
        let canon = |p: &str| path::canonicalize(caller.domid, p);

        match Request::parse(msg.ty, &msg.payload)? {
            Request::Control(args) => control(&args, &self.store.quotas),
            Request::Directory(p) => self.query(id, tx, |v| {
                Ok(v.get_node(&canon(p), READ)?.children_payload())
            }),
            Request::Read(p) => self.query(id, tx, |v| v.read(&canon(p))),
            Request::GetPerms(p) => {
                self.query(id, tx, |v| Ok(v.get_perms(&canon(p))?.to_payload()))
            }
            Request::DirectoryPart { path, offset } => {
                self.query(id, tx, |v| v.directory_part(&canon(path), offset))
            }
            Request::Write { path, value } => {
                self.mutate(id, tx, out, |v| v.write(&canon(path), value))
            }
            Request::Mkdir(p) => self.mutate(id, tx, out, |v| v.mkdir(&canon(p))),
            Request::Rm(p) => self.mutate(id, tx, out, |v| v.rm(&canon(p))),
            Request::SetPerms { path, perms } => {
                self.mutate(id, tx, out, |v| v.set_perms(&canon(path), perms))
            }
            Request::Watch { path, token } => self.watch(id, caller, path, token, out),
            Request::Unwatch { path, token } => {
                self.conn(id)?.watches.remove(&canon(path), token)?;
                Ok(OK.to_vec())
            }
            Request::TransactionStart => self.transaction_start(id, caller, tx),
            Request::TransactionEnd(commit) => {
                let t = self.conn(id)?.txns.remove(&tx).ok_or(Errno::ENOENT)?;
                if commit {
                    let changes = t.commit(&mut self.store, &caller)?;
                    self.fire(&changes, out);
                }
                Ok(OK.to_vec())
            }
            Request::ResetWatches => {
                let c = self.conn(id)?;
                c.watches.clear();
                c.txns.clear();
                Ok(OK.to_vec())
            }
            Request::GetDomainPath(d) => Ok(format!("{}\0", path::domain_path(d)).into_bytes()),
            Request::IsDomainIntroduced(d) => {
                let yes = d == DOMID_SELF || self.domains.contains_key(&d);
                Ok(if yes { b"T\0" } else { b"F\0" }.to_vec())
            }
            Request::Introduce { domid, gfn, evtchn } => {
                self.introduce(domid, gfn, evtchn, out)?;
                Ok(OK.to_vec())
            }
            Request::Release(d) => {
                self.known_domu(d)?;
                self.release(d, out);
                Ok(OK.to_vec())
            }
            Request::Resume(d) => {
                self.known_domu(d)?;
                if let Some(dom) = self.domains.get_mut(&d) {
                    dom.shutdown = false;
                }
                Ok(OK.to_vec())
            }
            Request::SetTarget { domid, target } => {
                if !self.domains.contains_key(&target) {
                    return Err(Errno::ENOENT);
                }
                self.domains.get_mut(&domid).ok_or(Errno::ENOENT)?.target = Some(target);
                Ok(OK.to_vec())
            }
        }
    }

    /// Runs a store operation for `id`, inside transaction `tx` if non-zero.
    fn query<T>(
        &mut self,
        id: ConnId,
        tx: u32,
        f: impl FnOnce(&mut View<'_>) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let caller = self.caller(id);
        let max_tx_nodes = self.store.quotas.max_tx_nodes;
        let conn = self.conns.get_mut(&id).ok_or(Errno::EINVAL)?;
        let txn = match tx {
            0 => None,
            _ => Some(conn.txns.get_mut(&tx).ok_or(Errno::ENOENT)?),
        };
        // Bounds what a transaction remembers; one operation adds at most a
        // path's depth of nodes beyond the limit.
        if txn.as_ref().is_some_and(|t| t.touched() >= max_tx_nodes) && !caller.privileged {
            return Err(Errno::ENOSPC);
        }
        f(&mut self.store.view(caller, txn))
    }

    /// xenstored's hard memory quota: an unprivileged domain holding more
    /// than `max_memory` bytes in transactions and watches gets `ENOMEM`
    /// for anything that could add more.
    fn check_memory(&self, caller: &Caller) -> Result<(), Errno> {
        if !caller.privileged && self.memory(caller.domid) >= self.store.quotas.max_memory {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// A store mutation: its changes fire now, or on commit.
    fn mutate(
        &mut self,
        id: ConnId,
        tx: u32,
        out: &mut Out,
        f: impl FnOnce(&mut View<'_>) -> Result<Vec<Change>, Errno>,
    ) -> Result<Vec<u8>, Errno> {
        if tx != 0 {
            self.check_memory(&self.caller(id))?;
        }
        let changes = self.query(id, tx, f)?;
        match self.conn(id)?.txns.get_mut(&tx) {
            Some(t) => t.events.extend(changes),
            None => self.fire(&changes, out),
        }
        Ok(OK.to_vec())
    }

    fn watch(
        &mut self,
        id: ConnId,
        caller: Caller,
        path: &str,
        token: &[u8],
        out: &mut Out,
    ) -> Result<Vec<u8>, Errno> {
        self.check_memory(&caller)?;
        let w = watch::new_watch(caller.domid, path, token, self.store.quotas.max_path_len)?;
        let max = self.store.quotas.max_watches;
        let domain_watches: usize = self
            .conns
            .values()
            .filter(|c| c.domid == caller.domid)
            .map(|c| c.watches.len())
            .sum();
        let conn = self.conn(id)?;
        if conn
            .watches
            .iter()
            .any(|x| x.path == w.path && x.token == w.token)
        {
            return Err(Errno::EEXIST);
        }
        if !caller.privileged && domain_watches >= max {
            return Err(Errno::E2BIG);
        }
        // The initial event, sent whether or not the path exists.
        out.extend(w.event(&w.path).map(|m| (id, m)));
        conn.watches.add(w)?;
        Ok(OK.to_vec())
    }

    fn transaction_start(&mut self, id: ConnId, caller: Caller, tx: u32) -> Result<Vec<u8>, Errno> {
        if tx != 0 {
            return Err(Errno::EBUSY);
        }
        self.check_memory(&caller)?;
        let max = self.store.quotas.max_transactions;
        let conn = self.conn(id)?;
        if !caller.privileged && conn.txns.len() >= max {
            return Err(Errno::ENOSPC);
        }
        let mut tid = conn.last_tx;
        loop {
            tid = tid.wrapping_add(1);
            if tid != 0 && !conn.txns.contains_key(&tid) {
                break;
            }
        }
        conn.last_tx = tid;
        conn.txns.insert(tid, Transaction::new());
        Ok(format!("{tid}\0").into_bytes())
    }

    fn introduce(
        &mut self,
        domid: DomId,
        gfn: u64,
        evtchn: u32,
        out: &mut Out,
    ) -> Result<(), Errno> {
        if domid >= DOMID_FIRST_RESERVED {
            return Err(Errno::EINVAL);
        }
        if let Some(dom) = self.domains.get_mut(&domid) {
            // xenstored's `domain_conn_reset`: the same connection, fresh.
            dom.shutdown = false;
            for c in self.conns.values_mut().filter(|c| c.domid == domid) {
                c.watches.clear();
                c.txns.clear();
            }
            self.actions.push(Action::Rebind { domid, evtchn });
            return Ok(());
        }
        self.domains.insert(domid, Domain::default());
        self.actions.push(Action::MapDomain { domid, gfn, evtchn });
        self.fire_special(INTRODUCE_DOMAIN, out);
        Ok(())
    }

    fn known_domu(&self, domid: DomId) -> Result<(), Errno> {
        if domid == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.domains.contains_key(&domid) {
            return Err(Errno::ENOENT);
        }
        Ok(())
    }

    fn release(&mut self, domid: DomId, out: &mut Out) {
        self.domains.remove(&domid);
        for d in self.domains.values_mut() {
            if d.target == Some(domid) {
                d.target = None;
            }
        }
        self.conns.retain(|_, c| c.domid != domid);
        self.store.forget_domain(domid);
        self.actions.push(Action::ReleaseDomain { domid });
        self.fire_special(RELEASE_DOMAIN, out);
    }

    fn fire_special(&mut self, name: &str, out: &mut Out) {
        let perms = self
            .store
            .special_perms(name)
            .cloned()
            .unwrap_or_else(|| Perms::new(0, Access::None));
        self.fire(&[Change::special(name, perms)], out);
    }

    fn fire(&self, changes: &[Change], out: &mut Out) {
        for (&id, conn) in &self.conns {
            let caller = Self::caller_of(&self.domains, conn.domid);
            for change in changes {
                out.extend(conn.watches.events(change, &caller).map(|m| (id, m)));
            }
        }
    }
}

/// `XS_CONTROL` (dom0 only): the few commands worth having without a
/// live-update machinery.
fn control(args: &[&[u8]], q: &Quotas) -> Result<Vec<u8>, Errno> {
    let text = match args.first().copied().unwrap_or_default() {
        b"check" | b"print" => return Ok(OK.to_vec()),
        b"help" => "check\nhelp\nprint <string>\nquota\n".to_owned(),
        b"quota" => format!(
            "nodes: {}\nnode size: {}\nwatches: {}\ntransactions: {}\nperms: {}\npath length: {}\ntransaction nodes: {}\noutstanding: {}\nmemory: {}\n",
            q.max_entries, q.max_node_size, q.max_watches, q.max_transactions, q.max_perms,
            q.max_path_len, q.max_tx_nodes, q.max_outstanding, q.max_memory
        ),
        _ => return Err(Errno::EINVAL),
    };
    Ok(format!("{text}\0").into_bytes())
}
