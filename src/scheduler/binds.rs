//! The scheduler's bindings in flight: which pod each bind request's tag
//! is for, and which pods have one outstanding.
//!
//! A pod whose bind has not answered is assumed on its node and is not
//! queued again, so every pod event asks "is this pod binding?". Under a
//! client rate limit (kube-scheduler's default is 50 requests a second)
//! tens of thousands of binds can wait at once at scale; the question is
//! answered from an index by pod rather than by scanning every tag.

use std::collections::BTreeMap;

use crate::api::ObjectKey;

#[derive(Default)]
pub struct Binds {
    by_tag: BTreeMap<u64, ObjectKey>,
    /// Outstanding binds per pod (one in practice; counted so that the
    /// answer stays exact if a pod ever had two).
    by_pod: BTreeMap<ObjectKey, u32>,
}

impl Binds {
    pub fn insert(&mut self, tag: u64, key: ObjectKey) {
        *self.by_pod.entry(key.clone()).or_default() += 1;
        if let Some(old) = self.by_tag.insert(tag, key) {
            self.forget(&old);
        }
    }

    /// The pod the bind tagged `tag` was for, no longer in flight.
    pub fn remove(&mut self, tag: u64) -> Option<ObjectKey> {
        let key = self.by_tag.remove(&tag)?;
        self.forget(&key);
        Some(key)
    }

    pub fn is_binding(&self, key: &ObjectKey) -> bool {
        self.by_pod.contains_key(key)
    }

    pub fn clear(&mut self) {
        self.by_tag.clear();
        self.by_pod.clear();
    }

    fn forget(&mut self, key: &ObjectKey) {
        if let Some(n) = self.by_pod.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.by_pod.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    fn pod(name: &str) -> ObjectKey {
        ObjectKey {
            kind: Kind::Pod,
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_pod_is_binding_until_its_last_bind_answers() {
        let mut b = Binds::default();
        b.insert(1, pod("a"));
        b.insert(2, pod("a"));
        b.insert(3, pod("b"));
        assert!(b.is_binding(&pod("a")) && b.is_binding(&pod("b")));
        assert_eq!(b.remove(1), Some(pod("a")));
        // One of a's two binds is still out.
        assert!(b.is_binding(&pod("a")));
        assert_eq!(b.remove(2), Some(pod("a")));
        assert!(!b.is_binding(&pod("a")));
        assert_eq!(b.remove(2), None, "an answer is taken once");
        assert!(b.is_binding(&pod("b")));
        b.clear();
        assert!(!b.is_binding(&pod("b")));
    }

    #[test]
    fn a_reused_tag_replaces_its_pod() {
        let mut b = Binds::default();
        b.insert(7, pod("a"));
        b.insert(7, pod("b"));
        assert!(!b.is_binding(&pod("a")));
        assert_eq!(b.remove(7), Some(pod("b")));
    }
}
