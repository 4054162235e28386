//! ReplicaSet expectations (`UIDTrackingControllerExpectations`): after a
//! sync asks for N creations and a set of deletions, the controller does not
//! act on that ReplicaSet again until its informer has seen them, or five
//! minutes pass. Without this a stale cache makes it create twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::sim::{SimDuration, SimTime};

/// `ExpectationsTimeout`.
pub const EXPECTATIONS_TIMEOUT: SimDuration = SimDuration::from_secs(300);

#[derive(Clone, Debug)]
struct Expected {
    add: i64,
    /// Keys (`ns/name`) of pods whose deletion has not been observed yet.
    deleting: BTreeSet<String>,
    set_at: SimTime,
}

#[derive(Clone, Debug, Default)]
pub struct Expectations {
    by_controller: BTreeMap<String, Expected>,
}

impl Expectations {
    /// Whether the controller `key` may sync: nothing pending, or the record expired.
    pub fn satisfied(&self, key: &str, now: SimTime) -> bool {
        match self.by_controller.get(key) {
            None => true,
            Some(e) => {
                (e.add <= 0 && e.deleting.is_empty()) || now.since(e.set_at) > EXPECTATIONS_TIMEOUT
            }
        }
    }

    pub fn expect_creations(&mut self, key: &str, n: i64, now: SimTime) {
        self.by_controller.insert(
            key.to_string(),
            Expected {
                add: n,
                deleting: BTreeSet::new(),
                set_at: now,
            },
        );
    }

    pub fn expect_deletions(&mut self, key: &str, pods: BTreeSet<String>, now: SimTime) {
        self.by_controller.insert(
            key.to_string(),
            Expected {
                add: 0,
                deleting: pods,
                set_at: now,
            },
        );
    }

    /// Both at once (`SetExpectations(key, adds, deletes)`).
    pub fn expect(&mut self, key: &str, add: i64, pods: BTreeSet<String>, now: SimTime) {
        self.by_controller.insert(
            key.to_string(),
            Expected {
                add,
                deleting: pods,
                set_at: now,
            },
        );
    }

    pub fn creation_observed(&mut self, key: &str) {
        if let Some(e) = self.by_controller.get_mut(key) {
            e.add -= 1;
        }
    }

    pub fn deletion_observed(&mut self, key: &str, pod: &str) {
        if let Some(e) = self.by_controller.get_mut(key) {
            e.deleting.remove(pod);
        }
    }

    /// Planted bug (`planted-bugs`): "the ReplicaSet controller forgets its
    /// expectations on a relist". A fresh list is taken for the whole
    /// truth, so creations and deletions still in flight are forgotten and
    /// the next sync, on a cache that cannot show them yet, asks again.
    #[cfg(feature = "planted-bugs")]
    pub fn forget_on_relist(&mut self) {
        self.by_controller.clear();
    }

    /// Updates `key`'s expectations from one informer event for a pod it
    /// owns: a new pod is an observed creation, a pod gone or newly
    /// terminating an observed deletion (as the pod handlers of the
    /// ReplicaSet, StatefulSet, DaemonSet and Job controllers do).
    pub fn observe_pod(&mut self, key: &str, ev: &super::cache::CacheEvent) {
        let pod_key = |p: &crate::api::Object| format!("{}/{}", p.meta.namespace, p.meta.name);
        match (&ev.old, &ev.new) {
            (None, Some(p)) if p.meta.deletion.is_none() => self.creation_observed(key),
            (None, Some(p)) => self.deletion_observed(key, &pod_key(p)),
            (_, None) => self.deletion_observed(key, &pod_key(ev.object())),
            (Some(o), Some(n)) if o.meta.deletion.is_none() && n.meta.deletion.is_some() => {
                self.deletion_observed(key, &pod_key(n))
            }
            _ => {}
        }
    }

    /// A creation the controller expected failed or was skipped.
    pub fn lower_creations(&mut self, key: &str, n: i64) {
        if let Some(e) = self.by_controller.get_mut(key) {
            e.add -= n;
        }
    }

    pub fn delete(&mut self, key: &str) {
        self.by_controller.remove(key);
    }

    pub fn clear(&mut self) {
        self.by_controller.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_when_observed_or_expired() {
        let mut e = Expectations::default();
        let t0 = SimTime::ZERO;
        assert!(e.satisfied("ns/rs", t0));
        e.expect_creations("ns/rs", 2, t0);
        assert!(!e.satisfied("ns/rs", t0));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs", t0));
        e.lower_creations("ns/rs", 1);
        assert!(e.satisfied("ns/rs", t0));
        e.expect_deletions("ns/rs", ["ns/p1".to_string()].into(), t0);
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs", t0));
        assert!(e.satisfied("ns/rs", t0.after(SimDuration::from_secs(301))));
        e.deletion_observed("ns/rs", "ns/p1");
        assert!(e.satisfied("ns/rs", t0));
    }
}
