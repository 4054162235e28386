//! etcd's MVCC key space and the transactions the apiserver commits through Raft.
//!
//! Raft guarantees every member applies the same entries in the same order, so
//! the applied state is identical on all of them. The model therefore keeps one
//! applied store for the group, applied exactly once per log index by whichever
//! member applies that index first; members that apply it later read the
//! recorded outcome. Nothing outside the etcd members touches it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::api::{Object, ObjectKey};
use crate::sim::ComponentId;

/// The precondition of a transaction (etcd's `Compare` on mod revision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist (create).
    Absent,
    /// The key's mod revision must equal this (optimistic concurrency).
    ModRevision(u64),
}

#[derive(Clone, Debug)]
pub enum TxnOp {
    Put(Arc<Object>),
    Delete,
}

/// One transaction: compare, then put or delete.
#[derive(Clone, Debug)]
pub struct Txn {
    pub key: ObjectKey,
    pub expect: Expect,
    pub op: TxnOp,
}

/// A proposal as it travels: who asked, and what.
#[derive(Debug)]
pub struct Proposal {
    /// The apiserver that will receive the result.
    pub client: ComponentId,
    /// The member the apiserver sent it to, which answers it.
    pub contact: ComponentId,
    pub req: u64,
    pub txn: Txn,
}

/// The outcome of applying a transaction.
#[derive(Clone, Debug)]
pub struct TxnResult {
    pub succeeded: bool,
    /// The store's revision after this transaction.
    pub revision: u64,
    /// The current value (after a put; before, on failure) with its mod revision.
    pub current: Option<Arc<Object>>,
}

/// A committed change as etcd's watch delivers it.
#[derive(Clone, Debug)]
pub struct WatchedChange {
    pub revision: u64,
    pub key: ObjectKey,
    /// `None` for a delete; `prev` then holds the deleted value.
    pub value: Option<Arc<Object>>,
    pub prev: Option<Arc<Object>>,
}

/// The outcome of applying one entry: the transaction's result and the
/// change it made, if any.
pub type Applied = Arc<(TxnResult, Option<WatchedChange>)>;

/// The applied key space of the etcd group.
#[derive(Default)]
pub struct EtcdStore {
    revision: u64,
    kv: BTreeMap<ObjectKey, Arc<Object>>,
    applied_index: u64,
    /// Outcomes of recently applied indices, for members applying them later;
    /// shared, so a member applying an index costs a reference count.
    outcomes: VecDeque<(u64, Applied)>,
    /// How many outcomes to keep (members further behind get a snapshot).
    pub outcome_window: usize,
    pub txns_failed: u64,
    /// The newest revision whose change has left the outcome window.
    dropped_revision: u64,
    /// History at and below this revision is compacted away: a watch can
    /// no longer resume from before it.
    compacted: u64,
    /// Entries a member applied that differ from what another member applied
    /// at the same index: a Raft safety violation, which must stay zero.
    divergent: u64,
}

impl EtcdStore {
    pub fn new() -> Self {
        EtcdStore {
            outcome_window: 20_000,
            ..Default::default()
        }
    }

    /// Starts from a snapshot holding `objects` (the cluster's bootstrap
    /// namespaces), one revision each, as a restored etcd would.
    pub fn seed(&mut self, objects: Vec<Object>) -> Vec<Arc<Object>> {
        let mut out = Vec::new();
        for mut o in objects {
            self.revision += 1;
            o.meta.resource_version = self.revision;
            let o = Arc::new(o);
            self.kv.insert(o.key(), o.clone());
            out.push(o);
        }
        // A restored snapshot has no history to replay.
        self.dropped_revision = self.revision;
        out
    }

    /// Compacts history up to `revision` (etcd's `Compact`): watches that
    /// would resume from before it get the current state instead.
    pub fn compact(&mut self, revision: u64) {
        self.compacted = self.compacted.max(revision.min(self.revision));
    }

    /// The revision history was last compacted at.
    pub fn compacted_revision(&self) -> u64 {
        self.compacted
    }

    /// Every current object and the store's revision: what a range read of
    /// the whole key space returns.
    pub fn snapshot(&self) -> (u64, Vec<Arc<Object>>) {
        (self.revision, self.kv.values().cloned().collect())
    }

    /// Changes with a revision after `from_rev`, among the entries up to
    /// `upto_index` (what the asking member has applied): what an etcd watch
    /// resuming at `from_rev + 1` replays. `None` when history no longer
    /// reaches back that far (etcd's "required revision has been
    /// compacted"): the watcher must take a [`snapshot`](Self::snapshot).
    pub fn changes_since(&self, from_rev: u64, upto_index: u64) -> Option<Vec<WatchedChange>> {
        if from_rev < self.compacted || from_rev < self.dropped_revision {
            return None;
        }
        Some(
            self.outcomes
                .iter()
                .filter(|(i, _)| *i <= upto_index)
                .filter_map(|(_, a)| a.1.clone())
                .filter(|c| c.revision > from_rev)
                .collect(),
        )
    }

    /// Safety check: how many times a member applied, at an index already
    /// applied, an entry other than the one applied there first.
    pub fn divergent_applies(&self) -> u64 {
        self.divergent
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn len(&self) -> usize {
        self.kv.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kv.is_empty()
    }

    /// Every committed key, in key order (for tests' loss checks).
    pub fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.kv.keys()
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Arc<Object>> {
        self.kv.get(key)
    }

    /// Applies the entry at `index` (once), returning its outcome.
    pub fn apply(&mut self, index: u64, txn: Option<&Txn>) -> Option<Applied> {
        if index <= self.applied_index {
            // Indices increase along the window (no-op entries leave gaps).
            let found = self.outcomes.binary_search_by_key(&index, |(i, _)| *i).ok();
            return match found {
                Some(at) => {
                    let a = self.outcomes[at].1.clone();
                    if !same_entry(txn, a.1.as_ref(), &a.0) {
                        self.divergent += 1;
                    }
                    Some(a)
                }
                None => {
                    // A no-op at this index (or out of the window): a
                    // transaction here would be a divergence.
                    if txn.is_some() && self.outcomes.front().is_some_and(|f| f.0 < index) {
                        self.divergent += 1;
                    }
                    None
                }
            };
        }
        debug_assert_eq!(index, self.applied_index + 1, "entries apply in order");
        self.applied_index = index;
        let Some(txn) = txn else {
            // An empty entry (a new leader's no-op) changes nothing.
            return None;
        };
        let current = self.kv.get(&txn.key);
        let ok = match txn.expect {
            Expect::Absent => current.is_none(),
            Expect::ModRevision(r) => current.is_some_and(|c| c.meta.resource_version == r),
        };
        let out = if !ok {
            self.txns_failed += 1;
            (
                TxnResult {
                    succeeded: false,
                    revision: self.revision,
                    current: current.cloned(),
                },
                None,
            )
        } else {
            self.revision += 1;
            let rev = self.revision;
            match &txn.op {
                TxnOp::Put(obj) => {
                    let mut obj = (**obj).clone();
                    obj.meta.resource_version = rev;
                    let obj = Arc::new(obj);
                    let prev = self.kv.insert(txn.key.clone(), obj.clone());
                    let change = WatchedChange {
                        revision: rev,
                        key: txn.key.clone(),
                        value: Some(obj.clone()),
                        prev,
                    };
                    (
                        TxnResult {
                            succeeded: true,
                            revision: rev,
                            current: Some(obj),
                        },
                        Some(change),
                    )
                }
                TxnOp::Delete => {
                    let prev = self.kv.remove(&txn.key);
                    let change = WatchedChange {
                        revision: rev,
                        key: txn.key.clone(),
                        value: None,
                        prev: prev.clone(),
                    };
                    (
                        TxnResult {
                            succeeded: true,
                            revision: rev,
                            current: prev,
                        },
                        Some(change),
                    )
                }
            }
        };
        let out: Applied = Arc::new(out);
        self.outcomes.push_back((index, out.clone()));
        while self.outcomes.len() > self.outcome_window {
            if let Some((_, a)) = self.outcomes.pop_front() {
                if let Some(c) = &a.1 {
                    self.dropped_revision = c.revision;
                }
            }
        }
        Some(out)
    }
}

/// Whether `txn` is the entry whose outcome was recorded as (`change`, `result`).
fn same_entry(txn: Option<&Txn>, change: Option<&WatchedChange>, result: &TxnResult) -> bool {
    match (txn, change) {
        (None, _) => false,
        (Some(t), Some(c)) => {
            t.key == c.key
                && match (&t.op, &c.value) {
                    (TxnOp::Put(o), Some(v)) => {
                        Arc::ptr_eq(o, v) || (o.meta.uid == v.meta.uid && o.body == v.body)
                    }
                    (TxnOp::Delete, None) => true,
                    _ => false,
                }
        }
        // A failed precondition changed nothing; the same txn fails again.
        (Some(_), None) => !result.succeeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::{Body, Meta};
    use crate::api::Kind;

    fn put(name: &str, uid: &str) -> Txn {
        let obj = Object {
            kind: Kind::Namespace,
            meta: Meta {
                name: name.into(),
                uid: uid.into(),
                ..Default::default()
            },
            body: Body::Namespace(Default::default()),
        };
        Txn {
            key: obj.key(),
            expect: Expect::Absent,
            op: TxnOp::Put(Arc::new(obj)),
        }
    }

    #[test]
    fn members_applying_the_same_entry_agree_and_a_different_one_is_caught() {
        let mut s = EtcdStore::new();
        let a = put("a", "u1");
        let first = s.apply(1, Some(&a)).unwrap();
        assert!(first.0.succeeded && first.1.is_some());
        // A second member applying the same entry gets the same outcome.
        let again = s.apply(1, Some(&a)).unwrap();
        assert_eq!(again.0.revision, first.0.revision);
        assert_eq!(s.divergent_applies(), 0);
        // A member that applies something else at index 1 is a safety bug.
        s.apply(1, Some(&put("b", "u2")));
        assert_eq!(s.divergent_applies(), 1);
        // A no-op followed by a real entry: the no-op index holds nothing.
        assert!(s.apply(2, None).is_none());
        s.apply(3, Some(&put("c", "u3")));
        s.apply(2, Some(&put("d", "u4")));
        assert_eq!(s.divergent_applies(), 2);
    }

    #[test]
    fn a_resumed_watch_replays_what_the_member_applied_since_its_revision() {
        let mut s = EtcdStore::new();
        s.outcome_window = 3;
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            s.apply(i as u64 + 1, Some(&put(n, n)));
        }
        // Revisions 1..=4; the window keeps the last three entries.
        let revs = |v: Option<Vec<WatchedChange>>| {
            v.map(|v| v.iter().map(|c| c.revision).collect::<Vec<_>>())
        };
        assert_eq!(revs(s.changes_since(2, 4)), Some(vec![3, 4]));
        // A member that has applied only up to index 3 replays only that far.
        assert_eq!(revs(s.changes_since(1, 3)), Some(vec![2, 3]));
        assert_eq!(revs(s.changes_since(4, 4)), Some(vec![]));
        // Revision 1 has left the window: no replay, the watcher relists.
        assert_eq!(revs(s.changes_since(0, 4)), None);
        // Compaction at 3 cuts history the same way, even inside the window.
        s.compact(3);
        assert_eq!(revs(s.changes_since(2, 4)), None);
        assert_eq!(revs(s.changes_since(3, 4)), Some(vec![4]));
        let (rev, objects) = s.snapshot();
        assert_eq!((rev, objects.len()), (4, 4));
    }
}
