//! Transactions (`XS_TRANSACTION_START` / `_END`), as in xenstored 4.17:
//! optimistic concurrency with generation counts.
//!
//! A transaction records the generation of every node it touches (reads,
//! failed lookups and writes alike; `None` = did not exist) and keeps its
//! writes in an overlay. At commit, if any recorded node's generation has
//! changed, the commit fails with `EAGAIN` and the client retries; otherwise
//! the overlay is applied and the queued watch events fire.

use std::collections::HashMap;

use crate::perms::Caller;
use crate::store::{Node, Store};
use crate::watch::Change;
use crate::{DomId, Errno};

/// One open transaction.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Generation of each touched node when first touched.
    pub(crate) accessed: HashMap<String, Option<u64>>,
    /// Written (`Some`) and deleted (`None`) nodes.
    pub(crate) changes: HashMap<String, Option<Node>>,
    /// Node-count changes per owner.
    entry_delta: HashMap<DomId, i64>,
    /// Watch events to fire on commit.
    pub(crate) events: Vec<Change>,
}

impl Transaction {
    pub fn new() -> Transaction {
        Transaction::default()
    }

    /// Number of nodes touched (bounded by `Quotas::max_tx_nodes`).
    pub fn touched(&self) -> usize {
        self.accessed.len()
    }

    /// Bytes this transaction holds (paths, overlay nodes, queued events),
    /// roughly as xenstored accounts them.
    pub fn memory(&self) -> usize {
        let accessed: usize = self.accessed.keys().map(|p| p.len() + 16).sum();
        let changes: usize = self
            .changes
            .iter()
            .map(|(p, n)| p.len() + 8 + n.as_ref().map_or(0, Node::record_size))
            .sum();
        let events: usize = self
            .events
            .iter()
            .map(|c| c.path.len() + 16 + 8 * c.perms.iter().map(|p| p.len()).sum::<usize>())
            .sum();
        accessed + changes + events
    }

    pub(crate) fn note_access(&mut self, path: &str, base: &HashMap<String, Node>) {
        if !self.accessed.contains_key(path) {
            self.accessed
                .insert(path.to_owned(), base.get(path).map(|n| n.gen));
        }
    }

    pub(crate) fn entry_delta(&self, domid: DomId) -> i64 {
        self.entry_delta.get(&domid).copied().unwrap_or(0)
    }

    pub(crate) fn add_entry_delta(&mut self, domid: DomId, delta: i64) {
        *self.entry_delta.entry(domid).or_insert(0) += delta;
    }

    /// Applies the transaction to `store`, or fails with `EAGAIN` if anything
    /// it touched changed meanwhile (or `ENOSPC` if concurrent commits
    /// pushed `caller` over its node quota). Returns the events to fire.
    pub fn commit(self, store: &mut Store, caller: &Caller) -> Result<Vec<Change>, Errno> {
        let conflict = self
            .accessed
            .iter()
            .any(|(path, gen)| store.node(path).map(|n| n.gen) != *gen);
        if conflict {
            return Err(Errno::EAGAIN);
        }
        let delta = self.entry_delta(caller.domid);
        if !caller.privileged
            && delta > 0
            && store.entries(caller.domid) + delta > store.quotas.max_entries
        {
            return Err(Errno::ENOSPC);
        }
        for (path, node) in self.changes {
            match node {
                Some(mut n) => {
                    n.gen = store.next_gen();
                    store.nodes.insert(path, n);
                }
                None => {
                    store.nodes.remove(&path);
                }
            }
        }
        for (domid, delta) in self.entry_delta {
            store.add_entries(domid, delta);
        }
        Ok(self.events)
    }
}
