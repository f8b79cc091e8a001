//! The node tree, its permission checks and per-domain quotas, following
//! C xenstored (`xenstored_core.c`):
//!
//! - Dom0 may do anything. Other domains get the access the node's perms give
//!   them ([`Perms::access`]).
//! - A missing node is reported as `ENOENT` only if the nearest existing
//!   ancestor grants the requested access, else `EACCES` (no information leak).
//! - Writes create missing parents; new nodes copy their parent's perms, and
//!   an unprivileged creator becomes their owner.
//! - Unprivileged domains are limited in nodes owned, node size, ACL length.
//!
//! Operations run through a `View`: the committed tree, or a transaction's
//! overlay on it. Each mutation returns the [`Change`]s that fire watches.

use std::collections::HashMap;

use xen_abi::io::xs_wire::{XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX};

use crate::path::{self, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::perms::{Access, Caller, Perms, OWNER, READ, WRITE};
use crate::txn::Transaction;
use crate::watch::Change;
use crate::{DomId, Errno};

/// Limits (xenstored's defaults and option names in parentheses). They apply to
/// unprivileged callers only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (1000, `-E`); beyond: `ENOSPC`.
    pub max_entries: i64,
    /// Bytes of a node record: 24 + 8 per perm + value + child names
    /// (2048, `-S`); at or beyond: `ENOSPC`.
    pub max_node_size: usize,
    /// Watches per domain (128, `-W`); beyond: `E2BIG`.
    pub max_watches: usize,
    /// Open transactions per connection (10, `-t`); beyond: `ENOSPC`.
    pub max_transactions: usize,
    /// ACL entries per node (5, `-A`); beyond: `ENOSPC`.
    pub max_perms: usize,
    /// Path length after `/local/domain/<id>/` (2048, `-M`); beyond: `EINVAL`.
    /// Applies to everybody.
    pub max_path_len: usize,
    /// Nodes one transaction may touch (1024); beyond: `ENOSPC`.
    pub max_tx_nodes: usize,
    /// Requests of a domain whose replies it has not taken off its ring yet
    /// (20, `-Q outstanding=`); at the limit xenstored reads no more of its
    /// requests. Enforced by the daemon, which owns the rings.
    pub max_outstanding: usize,
    /// Bytes a domain may hold in transactions and watches (2.5 MiB,
    /// xenstored's hard `-Q memory=`); at or beyond: `ENOMEM` for new
    /// transactions, watches and transactional writes.
    pub max_memory: usize,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            max_entries: 1000,
            max_node_size: 2048,
            max_watches: 128,
            max_transactions: 10,
            max_perms: 5,
            max_path_len: XENSTORE_REL_PATH_MAX,
            max_tx_nodes: 1024,
            max_outstanding: 20,
            max_memory: 2 * 1024 * 1024 + 512 * 1024,
        }
    }
}

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Perms,
    /// Child names in creation order.
    pub children: Vec<String>,
    /// Changes whenever the node is written (value, perms or children);
    /// transactions compare it at commit.
    pub gen: u64,
}

impl Node {
    fn new(value: Vec<u8>, perms: Perms) -> Node {
        Node {
            value,
            perms,
            children: Vec::new(),
            gen: 0,
        }
    }

    /// Size as xenstored accounts it (`xs_tdb_record_hdr` + perms + data).
    pub fn record_size(&self) -> usize {
        24 + 8 * self.perms.len()
            + self.value.len()
            + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
    }

    /// Child names, each NUL-terminated (`XS_DIRECTORY` reply).
    pub fn children_payload(&self) -> Vec<u8> {
        self.children
            .iter()
            .flat_map(|c| c.bytes().chain([0]))
            .collect()
    }
}

/// The whole store: committed nodes, generation counter, node counts per
/// owner and the perms of the special watch paths.
#[derive(Debug)]
pub struct Store {
    pub(crate) nodes: HashMap<String, Node>,
    gen: u64,
    entries: HashMap<DomId, i64>,
    special: [(&'static str, Perms); 2],
    pub quotas: Quotas,
}

impl Default for Store {
    fn default() -> Store {
        Store::new(Quotas::default())
    }
}

impl Store {
    /// A fresh store as xenstored creates it: `/`, `/tool`, `/tool/xenstored`,
    /// all `n0`; the special paths are readable by dom0 only.
    pub fn new(quotas: Quotas) -> Store {
        let n0 = Perms::new(0, Access::None);
        let mut s = Store {
            nodes: HashMap::new(),
            gen: 0,
            entries: HashMap::new(),
            special: [(INTRODUCE_DOMAIN, n0.clone()), (RELEASE_DOMAIN, n0.clone())],
            quotas,
        };
        s.nodes.insert("/".into(), Node::new(Vec::new(), n0));
        s.entries.insert(0, 1);
        for p in ["/tool", "/tool/xenstored"] {
            // Cannot fail: dom0 creating below an existing root.
            let _ = s.mkdir(&Caller::DOM0, p);
        }
        s
    }

    pub(crate) fn view<'a>(
        &'a mut self,
        caller: Caller,
        tx: Option<&'a mut Transaction>,
    ) -> View<'a> {
        View {
            store: self,
            tx,
            caller,
        }
    }

    pub(crate) fn next_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    /// A committed node, without permission checks.
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// All committed nodes, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (p.as_str(), n))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Nodes owned by `domid`.
    pub fn entries(&self, domid: DomId) -> i64 {
        self.entries.get(&domid).copied().unwrap_or(0)
    }

    pub(crate) fn add_entries(&mut self, domid: DomId, delta: i64) {
        *self.entries.entry(domid).or_insert(0) += delta;
    }

    /// Perms of a special path (`@introduceDomain`, `@releaseDomain`).
    pub fn special_perms(&self, name: &str) -> Option<&Perms> {
        self.special
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
    }

    /// Forgets a released domain in every node's perms (see [`Perms::forget`]).
    pub(crate) fn forget_domain(&mut self, domid: DomId) {
        let mut moved = 0;
        for node in self.nodes.values_mut() {
            let owned = node.perms.owner() == domid;
            if node.perms.forget(domid) && owned {
                moved += 1;
            }
        }
        for (_, p) in &mut self.special {
            p.forget(domid);
        }
        self.add_entries(domid, -moved);
        self.add_entries(0, moved);
        self.entries.retain(|_, n| *n != 0);
    }

    // Direct operations on the committed tree (no transaction, no watches
    // fired): for pre-populating and inspecting a store.

    pub fn read(&mut self, caller: &Caller, path: &str) -> Result<Vec<u8>, Errno> {
        self.view(*caller, None).read(path)
    }

    pub fn write(
        &mut self,
        caller: &Caller,
        path: &str,
        value: &[u8],
    ) -> Result<Vec<Change>, Errno> {
        self.view(*caller, None).write(path, value)
    }

    pub fn mkdir(&mut self, caller: &Caller, path: &str) -> Result<Vec<Change>, Errno> {
        self.view(*caller, None).mkdir(path)
    }

    pub fn rm(&mut self, caller: &Caller, path: &str) -> Result<Vec<Change>, Errno> {
        self.view(*caller, None).rm(path)
    }

    pub fn directory(&mut self, caller: &Caller, path: &str) -> Result<Vec<String>, Errno> {
        self.view(*caller, None)
            .get_node(path, READ)
            .map(|n| n.children)
    }

    pub fn get_perms(&mut self, caller: &Caller, path: &str) -> Result<Perms, Errno> {
        self.view(*caller, None).get_perms(path)
    }

    pub fn set_perms(
        &mut self,
        caller: &Caller,
        path: &str,
        perms: Perms,
    ) -> Result<Vec<Change>, Errno> {
        self.view(*caller, None).set_perms(path, perms)
    }
}

/// The store as one caller sees it, optionally through a transaction.
pub(crate) struct View<'a> {
    store: &'a mut Store,
    tx: Option<&'a mut Transaction>,
    caller: Caller,
}

impl View<'_> {
    /// Reads a node, recording the access in the transaction.
    fn node(&mut self, path: &str) -> Option<&Node> {
        match self.tx.as_deref_mut() {
            None => self.store.nodes.get(path),
            Some(tx) => {
                tx.note_access(path, &self.store.nodes);
                if tx.changes.contains_key(path) {
                    return tx.changes.get(path).and_then(Option::as_ref);
                }
                self.store.nodes.get(path)
            }
        }
    }

    /// Reads a node without recording it (watch permission data only).
    fn peek(&self, path: &str) -> Option<&Node> {
        match self.tx.as_deref().and_then(|tx| tx.changes.get(path)) {
            Some(n) => n.as_ref(),
            None => self.store.nodes.get(path),
        }
    }

    fn put(&mut self, path: &str, mut node: Node) {
        match self.tx.as_deref_mut() {
            None => {
                node.gen = self.store.next_gen();
                self.store.nodes.insert(path.to_owned(), node);
            }
            Some(tx) => {
                tx.note_access(path, &self.store.nodes);
                tx.changes.insert(path.to_owned(), Some(node));
            }
        }
    }

    fn del(&mut self, path: &str) {
        match self.tx.as_deref_mut() {
            None => {
                self.store.nodes.remove(path);
            }
            Some(tx) => {
                tx.note_access(path, &self.store.nodes);
                tx.changes.insert(path.to_owned(), None);
            }
        }
    }

    fn entries(&self, domid: DomId) -> i64 {
        let delta = self.tx.as_deref().map_or(0, |tx| tx.entry_delta(domid));
        self.store.entries(domid) + delta
    }

    fn add_entries(&mut self, domid: DomId, delta: i64) {
        match self.tx.as_deref_mut() {
            None => self.store.add_entries(domid, delta),
            Some(tx) => tx.add_entry_delta(domid, delta),
        }
    }

    fn check_path(&self, path: &str) -> Result<(), Errno> {
        if path::is_valid(path, self.store.quotas.max_path_len) {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }

    fn check_size(&self, node: &Node) -> Result<(), Errno> {
        if !self.caller.privileged && node.record_size() >= self.store.quotas.max_node_size {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    /// Access bits of the nearest existing ancestor (`ask_parents`).
    fn ancestor_access(&mut self, path: &str) -> u8 {
        let caller = self.caller;
        let mut p = path;
        loop {
            p = path::parent(p);
            if let Some(n) = self.node(p) {
                return n.perms.access(&caller);
            }
            if p == "/" {
                return 0;
            }
        }
    }

    /// xenstored's `get_node`: the node if `caller` has all of `want`;
    /// otherwise `EACCES`, or `ENOENT` when it is missing and the nearest
    /// ancestor grants some of `want` (`errno_from_parents`).
    pub(crate) fn get_node(&mut self, path: &str, want: u8) -> Result<Node, Errno> {
        self.check_path(path)?;
        let caller = self.caller;
        let err = match self.node(path) {
            Some(n) if n.perms.access(&caller) & want == want => return Ok(n.clone()),
            Some(_) => Errno::EACCES,
            None => Errno::ENOENT,
        };
        if self.ancestor_access(path) & want != 0 {
            Err(err)
        } else {
            Err(Errno::EACCES)
        }
    }

    /// A change event for `path` whose watchers need read access to one of
    /// `perms` or to the parent.
    fn change(&self, path: &str, exact: bool, mut perms: Vec<Perms>) -> Change {
        if let Some(parent) = self.peek(path::parent(path)) {
            perms.push(parent.perms.clone());
        }
        Change {
            path: path.to_owned(),
            exact,
            perms,
        }
    }

    pub(crate) fn read(&mut self, path: &str) -> Result<Vec<u8>, Errno> {
        self.get_node(path, READ).map(|n| n.value)
    }

    pub(crate) fn get_perms(&mut self, path: &str) -> Result<Perms, Errno> {
        self.get_node(path, READ).map(|n| n.perms)
    }

    /// `XS_DIRECTORY_PART` reply: generation, then as many child names from
    /// byte `offset` of the NUL-separated list as fit; an empty string ends
    /// the list once it is complete.
    pub(crate) fn directory_part(&mut self, path: &str, offset: usize) -> Result<Vec<u8>, Errno> {
        let node = self.get_node(path, READ)?;
        let children = node.children_payload();
        let mut out = format!("{}\0", node.gen).into_bytes();
        if offset >= children.len() {
            out.push(0);
            return Ok(out);
        }
        let max = XENSTORE_PAYLOAD_MAX - out.len() - 1;
        let rest = &children[offset..];
        let mut len = 0;
        while let Some(name_len) = rest[len..].iter().position(|&b| b == 0) {
            if len + name_len >= max {
                break;
            }
            len += name_len + 1;
            if len == rest.len() {
                break;
            }
        }
        out.extend_from_slice(&rest[..len]);
        if len == rest.len() {
            out.push(0);
        }
        Ok(out)
    }

    pub(crate) fn write(&mut self, path: &str, value: &[u8]) -> Result<Vec<Change>, Errno> {
        match self.get_node(path, WRITE) {
            Ok(mut node) => {
                node.value = value.to_vec();
                self.check_size(&node)?;
                let perms = node.perms.clone();
                self.put(path, node);
                Ok(vec![self.change(path, false, vec![perms])])
            }
            Err(Errno::ENOENT) => self.create(path, value),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn mkdir(&mut self, path: &str) -> Result<Vec<Change>, Errno> {
        match self.get_node(path, WRITE) {
            Ok(_) => Ok(Vec::new()),
            Err(Errno::ENOENT) => self.create(path, b""),
            Err(e) => Err(e),
        }
    }

    /// Creates `path` and any missing ancestors, all-or-nothing. The caller
    /// has checked (via `get_node`) that the nearest ancestor is writable.
    fn create(&mut self, path: &str, value: &[u8]) -> Result<Vec<Change>, Errno> {
        let mut missing = vec![path];
        let mut cur = path;
        let mut base = loop {
            cur = path::parent(cur);
            if let Some(n) = self.node(cur) {
                break n.clone();
            }
            if cur == "/" {
                return Err(Errno::EIO); // no root: cannot happen
            }
            missing.push(cur);
        };
        let base_path = cur;

        let mut perms = base.perms.clone();
        if !self.caller.privileged {
            perms.set_owner(self.caller.domid);
            if self.entries(self.caller.domid) + missing.len() as i64
                > self.store.quotas.max_entries
            {
                return Err(Errno::ENOSPC);
            }
        }

        // Build top-down: each new node has the next one as its only child.
        let mut new = Vec::with_capacity(missing.len());
        for (i, p) in missing.iter().enumerate().rev() {
            let mut node = Node::new(Vec::new(), perms.clone());
            if i == 0 {
                node.value = value.to_vec();
            } else {
                node.children
                    .push(path::basename(missing[i - 1]).to_owned());
            }
            self.check_size(&node)?;
            new.push((*p, node));
        }
        let top = missing.last().copied().unwrap_or(path);
        base.children.push(path::basename(top).to_owned());
        self.check_size(&base)?;

        self.put(base_path, base);
        for (p, node) in new {
            self.put(p, node);
        }
        self.add_entries(perms.owner(), missing.len() as i64);
        Ok(vec![self.change(path, false, vec![perms])])
    }

    pub(crate) fn rm(&mut self, path: &str) -> Result<Vec<Change>, Errno> {
        match self.get_node(path, WRITE) {
            Ok(_) if path == "/" => Err(Errno::EINVAL),
            Ok(_) => self.rm_tree(path),
            // Removing a missing node is fine if its parent exists.
            Err(Errno::ENOENT) => match self.node(path::parent(path)) {
                Some(_) => Ok(Vec::new()),
                None => Err(Errno::ENOENT),
            },
            Err(e) => Err(e),
        }
    }

    fn rm_tree(&mut self, path: &str) -> Result<Vec<Change>, Errno> {
        let parent_path = path::parent(path);
        let mut parent = self.node(parent_path).cloned().ok_or(Errno::EINVAL)?;

        // Pre-order walk, then reversed: descendants before their parents.
        let mut doomed = Vec::new();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.node(&p) else { continue };
            stack.extend(n.children.iter().map(|c| path::join(&p, c)));
            let perms = n.perms.clone();
            doomed.push((p, perms));
        }
        doomed.reverse();

        // Events first, while parents (and their perms) still exist. The
        // removed node's own watchers and its ancestors' match non-exactly;
        // descendants' watchers exactly.
        let changes = doomed
            .iter()
            .map(|(p, perms)| self.change(p, p != path, vec![perms.clone()]))
            .collect();
        for (p, perms) in &doomed {
            self.del(p);
            self.add_entries(perms.owner(), -1);
        }
        let name = path::basename(path);
        parent.children.retain(|c| c != name);
        self.put(parent_path, parent);
        Ok(changes)
    }

    pub(crate) fn set_perms(&mut self, path: &str, perms: Perms) -> Result<Vec<Change>, Errno> {
        let caller = self.caller;
        if !caller.privileged && perms.len() > self.store.quotas.max_perms {
            return Err(Errno::ENOSPC);
        }
        if path::is_special(path) {
            let slot = self
                .store
                .special
                .iter_mut()
                .find(|(n, _)| *n == path)
                .ok_or(Errno::EINVAL)?;
            if slot.1.access(&caller) & (WRITE | OWNER) != WRITE | OWNER {
                return Err(Errno::EACCES);
            }
            slot.1 = perms;
            return Ok(Vec::new());
        }
        let mut node = self.get_node(path, WRITE | OWNER)?;
        if !caller.privileged && perms.owner() != node.perms.owner() {
            return Err(Errno::EPERM);
        }
        let old = core::mem::replace(&mut node.perms, perms.clone());
        self.check_size(&node)?;
        self.add_entries(old.owner(), -1);
        self.add_entries(perms.owner(), 1);
        self.put(path, node);
        Ok(vec![self.change(path, false, vec![perms, old])])
    }
}
