//! The garbage collector (`pkg/controller/garbagecollector`), for the kinds
//! the shared informers watch: a dependent whose every owner is gone is
//! deleted in the background (after a live GET confirms the owner really is
//! gone, as upstream's `isDangling` does); an owner deleted with
//! `propagationPolicy: Foreground` keeps its `foregroundDeletion` finalizer
//! until its blocking dependents are gone; `Orphan` strips the owner
//! references from its dependents, then its `orphan` finalizer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workqueue::WorkQueue;
use crate::api::{Kind, Object, ObjectKey};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, PatchOp, Verb};
use crate::sim::SimTime;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

#[derive(Default)]
pub struct GarbageCollector {
    /// Owner uid → dependents that name it.
    dependents: BTreeMap<String, BTreeSet<ObjectKey>>,
}

/// Work-queue keys: `Kind/ns/name`.
fn key(o: &Object) -> String {
    o.key().to_string()
}

fn parse_key(k: &str) -> Option<ObjectKey> {
    let mut parts = k.splitn(3, '/');
    let kind = Kind::from_name(parts.next()?)?;
    let (a, b) = (parts.next()?, parts.next());
    Some(match b {
        Some(name) => ObjectKey {
            kind,
            namespace: a.to_string(),
            name: name.to_string(),
        },
        None => ObjectKey {
            kind,
            namespace: String::new(),
            name: a.to_string(),
        },
    })
}

impl GarbageCollector {
    fn index(&mut self, o: &Object, add: bool) {
        for r in &o.meta.owner_references {
            let set = self.dependents.entry(r.uid.clone()).or_default();
            if add {
                set.insert(o.key());
            } else {
                set.remove(&o.key());
                if set.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
    }

    fn dependents_of<'a>(&self, cache: &'a Cache, uid: &str) -> Vec<&'a Arc<Object>> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| cache.get_key(k))
            .filter(|d| d.meta.owner_references.iter().any(|r| r.uid == uid))
            .collect()
    }

    /// An owner being deleted with a finalizer this collector handles.
    fn sync_owner(&self, o: &Arc<Object>, cx: &mut SyncCtx<'_>) {
        let deps = self.dependents_of(cx.cache, &o.meta.uid);
        let has = |f: &str| o.meta.finalizers.iter().any(|x| x == f);
        if has(ORPHAN) {
            for d in &deps {
                let mut req = ApiRequest::new(Verb::Patch, d.kind, &d.meta.namespace, &d.meta.name);
                req.patch = Some(PatchOp::Merge(json!({"metadata": {"ownerReferences": d
                        .meta
                        .owner_references
                        .iter()
                        .filter(|r| r.uid != o.meta.uid)
                        .map(|r| r.to_json())
                        .collect::<Vec<_>>()}})));
                cx.send(req);
            }
            if deps.is_empty() {
                self.remove_finalizer(o, ORPHAN, cx);
            }
        } else if has(FOREGROUND) {
            let blocking: Vec<&&Arc<Object>> = deps
                .iter()
                .filter(|d| {
                    d.meta
                        .owner_references
                        .iter()
                        .any(|r| r.uid == o.meta.uid && r.block_owner_deletion)
                })
                .collect();
            for d in &blocking {
                if d.meta.deletion.is_none() {
                    let mut req =
                        ApiRequest::new(Verb::Delete, d.kind, &d.meta.namespace, &d.meta.name);
                    req.propagation = Some("Foreground");
                    cx.send(req);
                }
            }
            if blocking.is_empty() {
                self.remove_finalizer(o, FOREGROUND, cx);
            }
        }
    }

    fn remove_finalizer(&self, o: &Object, f: &str, cx: &mut SyncCtx<'_>) {
        let rest: Vec<&String> = o.meta.finalizers.iter().filter(|x| *x != f).collect();
        let mut req = ApiRequest::new(Verb::Patch, o.kind, &o.meta.namespace, &o.meta.name);
        req.patch = Some(PatchOp::Merge(json!({"metadata": {"finalizers": rest}})));
        cx.send(req);
    }
}

impl Controller for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector-controller"
    }

    fn workers(&self) -> usize {
        // `--concurrent-gc-syncs`.
        20
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        if let Some(old) = &ev.old {
            self.index(old, false);
        }
        match &ev.new {
            Some(o) => {
                self.index(o, true);
                let dangling = o
                    .meta
                    .owner_references
                    .iter()
                    .any(|r| cache.by_uid(&r.uid).is_none());
                if dangling {
                    queue.add(&key(o));
                }
                if o.meta.deletion.is_some()
                    && o.meta
                        .finalizers
                        .iter()
                        .any(|f| f == FOREGROUND || f == ORPHAN)
                {
                    queue.add(&key(o));
                }
                // A dependent changed: its owner waiting in the foreground may be done.
                for r in &o.meta.owner_references {
                    if let Some(owner) = cache.by_uid(&r.uid) {
                        if owner.meta.deletion.is_some() {
                            queue.add(&key(owner));
                        }
                    }
                }
            }
            None => {
                let gone = ev.object();
                for k in self.dependents.get(&gone.meta.uid).into_iter().flatten() {
                    queue.add(&k.to_string());
                }
                for r in &gone.meta.owner_references {
                    if let Some(owner) = cache.by_uid(&r.uid) {
                        if owner.meta.deletion.is_some() {
                            queue.add(&key(owner));
                        }
                    }
                }
            }
        }
    }

    fn sync(&mut self, k: &str, cx: &mut SyncCtx<'_>) {
        let Some(ok) = parse_key(k) else { return };
        let Some(o) = cx.cache.get_key(&ok).cloned() else {
            return;
        };
        if o.meta.deletion.is_some() {
            self.sync_owner(&o, cx);
        }
        if o.meta.owner_references.is_empty() {
            return;
        }
        // attemptToDeleteItem: owners absent from the cache are looked up live.
        let absent: Vec<_> = o
            .meta
            .owner_references
            .iter()
            .filter(|r| cx.cache.by_uid(&r.uid).is_none())
            .collect();
        if absent.len() < o.meta.owner_references.len() || o.meta.deletion.is_some() {
            return;
        }
        for r in absent {
            let Some(kind) = Kind::from_name(&r.kind) else {
                continue;
            };
            let ns = if kind.namespaced() {
                o.meta.namespace.as_str()
            } else {
                ""
            };
            cx.send(ApiRequest::new(Verb::Get, kind, ns, &r.name));
        }
    }

    fn on_response(
        &mut self,
        k: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        if req.verb != Verb::Get {
            if !resp.is_some_and(|r| r.ok() || r.code == 404) {
                cx.failed = true;
            }
            return;
        }
        let Some(ok) = parse_key(k) else { return };
        let Some(o) = cx.cache.get_key(&ok).cloned() else {
            return;
        };
        let owner_uid = o
            .meta
            .owner_references
            .iter()
            .find(|r| r.name == req.name && Kind::from_name(&r.kind) == Some(req.kind))
            .map(|r| r.uid.clone());
        let dangling = match resp {
            Some(r) if r.code == 404 => true,
            Some(r) if r.ok() => r.object.as_ref().map(|x| &x.meta.uid) != owner_uid.as_ref(),
            _ => {
                cx.failed = true;
                return;
            }
        };
        // Every owner must be gone: with one owner, this answer decides.
        if dangling && o.meta.owner_references.len() == 1 {
            let mut del = ApiRequest::new(Verb::Delete, o.kind, &o.meta.namespace, &o.meta.name);
            del.propagation = Some("Background");
            cx.send(del);
        }
    }

    fn reset(&mut self) {
        self.dependents.clear();
    }
}
