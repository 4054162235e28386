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

/// The applied key space of the etcd group.
#[derive(Default)]
pub struct EtcdStore {
    revision: u64,
    kv: BTreeMap<ObjectKey, Arc<Object>>,
    applied_index: u64,
    /// Outcomes of recently applied indices, for members applying them later.
    outcomes: VecDeque<(u64, TxnResult, Option<WatchedChange>)>,
    /// How many outcomes to keep (members further behind get a snapshot).
    pub outcome_window: usize,
    pub txns_failed: u64,
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
        out
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
    pub fn apply(
        &mut self,
        index: u64,
        txn: Option<&Txn>,
    ) -> Option<(TxnResult, Option<WatchedChange>)> {
        if index <= self.applied_index {
            // Indices increase along the window (no-op entries leave gaps).
            return self
                .outcomes
                .binary_search_by_key(&index, |(i, _, _)| *i)
                .ok()
                .map(|at| {
                    let (_, r, c) = &self.outcomes[at];
                    (r.clone(), c.clone())
                });
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
        self.outcomes
            .push_back((index, out.0.clone(), out.1.clone()));
        while self.outcomes.len() > self.outcome_window {
            self.outcomes.pop_front();
        }
        Some(out)
    }
}
