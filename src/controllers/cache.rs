//! The shared informers' store: every object of the kinds kube-controller-
//! manager watches, as its watches last delivered them. Controllers read only
//! this; it can be stale, and that is the point.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::{Kind, Object, ObjectKey};
use crate::controllers::workload::controller_ref;

/// One change the informers delivered: `new` is `None` for a deletion.
pub struct CacheEvent {
    pub kind: Kind,
    pub old: Option<Arc<Object>>,
    pub new: Option<Arc<Object>>,
}

impl CacheEvent {
    /// The object as it now is, or as it last was if deleted.
    pub fn object(&self) -> &Arc<Object> {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .expect("an event has an object")
    }
}

#[derive(Default)]
pub struct Cache {
    objects: BTreeMap<ObjectKey, Arc<Object>>,
    by_uid: BTreeMap<String, ObjectKey>,
    /// Objects by their controller's uid, as the informers' controller-uid
    /// index keeps them: a Job or ReplicaSet finds its pods without
    /// scanning its namespace.
    by_controller: BTreeMap<String, BTreeSet<ObjectKey>>,
}

fn key(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

impl Cache {
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Object>> {
        self.objects.get(&key(kind, namespace, name))
    }

    pub fn get_key(&self, k: &ObjectKey) -> Option<&Arc<Object>> {
        self.objects.get(k)
    }

    pub fn by_uid(&self, uid: &str) -> Option<&Arc<Object>> {
        self.by_uid.get(uid).and_then(|k| self.objects.get(k))
    }

    /// Objects of `kind` in `namespace`, in name order.
    pub fn list<'a, 'n>(
        &'a self,
        kind: Kind,
        namespace: &'n str,
    ) -> impl Iterator<Item = &'a Arc<Object>> + 'n
    where
        'a: 'n,
    {
        self.objects
            .range(key(kind, namespace, "")..)
            .take_while(move |(k, _)| k.kind == kind && k.namespace == namespace)
            .map(|(_, o)| o)
    }

    /// Objects of `kind` in `namespace` whose controller reference has
    /// `uid`, in name order: the same objects, in the same order, as
    /// filtering [`list`](Self::list) by controller.
    pub fn controlled_by<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        uid: &str,
    ) -> impl Iterator<Item = &'a Arc<Object>> + 'a {
        self.by_controller
            .get(uid)
            .into_iter()
            .flatten()
            .filter(move |k| k.kind == kind && k.namespace == namespace)
            .filter_map(|k| self.objects.get(k))
    }

    fn index(&mut self, o: &Object, k: &ObjectKey) {
        if let Some(r) = controller_ref(o) {
            self.by_controller
                .entry(r.uid.clone())
                .or_default()
                .insert(k.clone());
        }
    }

    fn unindex(&mut self, o: &Object, k: &ObjectKey) {
        let Some(r) = controller_ref(o) else {
            return;
        };
        if let Some(set) = self.by_controller.get_mut(&r.uid) {
            set.remove(k);
            if set.is_empty() {
                self.by_controller.remove(&r.uid);
            }
        }
    }

    /// Objects of `kind` in every namespace.
    pub fn list_all(&self, kind: Kind) -> impl Iterator<Item = &Arc<Object>> + '_ {
        self.objects
            .range(key(kind, "", "")..)
            .take_while(move |(k, _)| k.kind == kind)
            .map(|(_, o)| o)
    }

    /// Applies one watch event; returns the event for the handlers.
    pub fn apply(&mut self, obj: Arc<Object>, deleted: bool) -> CacheEvent {
        let k = obj.key();
        let kind = obj.kind;
        if deleted {
            let old = self.objects.remove(&k);
            if let Some(o) = &old {
                self.by_uid.remove(&o.meta.uid);
                self.unindex(o, &k);
            }
            CacheEvent {
                kind,
                old: old.or(Some(obj)),
                new: None,
            }
        } else {
            // An update replaces its entry in place; the uid index changes
            // only when the name now holds another object.
            let old = match self.objects.get_mut(&k) {
                Some(slot) => Some(std::mem::replace(slot, obj.clone())),
                None => {
                    self.objects.insert(k.clone(), obj.clone());
                    None
                }
            };
            if old.as_ref().is_none_or(|o| o.meta.uid != obj.meta.uid) {
                if let Some(o) = &old {
                    self.by_uid.remove(&o.meta.uid);
                }
                self.by_uid.insert(obj.meta.uid.clone(), k.clone());
            }
            // Most updates (a status write) keep the controller: the index
            // entry stands as it is.
            let uid = controller_ref(&obj).map(|r| &r.uid);
            if old
                .as_deref()
                .is_none_or(|o| controller_ref(o).map(|r| &r.uid) != uid)
            {
                if let Some(o) = &old {
                    self.unindex(o, &k);
                }
                self.index(&obj, &k);
            }
            CacheEvent {
                kind,
                old,
                new: Some(obj),
            }
        }
    }

    /// Replaces every object of `kind` with a fresh list; returns the events
    /// a relist implies (deletions of vanished objects, then upserts).
    pub fn replace(&mut self, kind: Kind, items: Vec<Arc<Object>>) -> Vec<CacheEvent> {
        let fresh: BTreeMap<ObjectKey, Arc<Object>> =
            items.into_iter().map(|o| (o.key(), o)).collect();
        let gone: Vec<Arc<Object>> = self
            .list_all(kind)
            .filter(|o| !fresh.contains_key(&o.key()))
            .cloned()
            .collect();
        let mut events: Vec<CacheEvent> = gone.into_iter().map(|o| self.apply(o, true)).collect();
        for (_, o) in fresh {
            let unchanged = self
                .objects
                .get(&o.key())
                .is_some_and(|c| c.meta.resource_version == o.meta.resource_version);
            if !unchanged {
                events.push(self.apply(o, false));
            }
        }
        events
    }

    pub fn clear(&mut self) {
        self.objects.clear();
        self.by_uid.clear();
        self.by_controller.clear();
    }
}
