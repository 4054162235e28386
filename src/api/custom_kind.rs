//! A kind that a CustomResourceDefinition adds to the API.
//!
//! [`Kind`](super::Kind) is a small `Copy` value that keys every store and
//! cache, so a custom kind is a handle to interned, immutable facts read from
//! its CRD: the API version it is stored at, its kind and plural, its scope and
//! whether it has a status subresource. Handles compare by those facts, never
//! by address or interning order, so two runs that meet the same CRDs in any
//! order (or on other threads) order their objects the same way.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// What the apiserver knows of a custom kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomKindInfo {
    /// `group/version` of the CRD's storage version.
    pub api_version: String,
    pub kind: String,
    /// `spec.names.plural`: the resource name (`sealedsecrets`).
    pub plural: String,
    /// `spec.scope: Namespaced`.
    pub namespaced: bool,
    /// `subresources.status` on the storage version.
    pub status_subresource: bool,
}

/// A handle to an interned [`CustomKindInfo`].
#[derive(Clone, Copy)]
pub struct CustomKind(&'static CustomKindInfo);

/// Every custom kind met by this process. Entries are never removed: a handle
/// must stay valid as long as any object holds it, and the set grows only by
/// the distinct CRDs read (each a few hundred bytes).
static INTERNED: Mutex<BTreeSet<&'static CustomKindInfo>> = Mutex::new(BTreeSet::new());

impl CustomKind {
    /// The handle for `info`, the same one for equal facts.
    pub fn intern(info: CustomKindInfo) -> CustomKind {
        let mut set = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = set.get(&info) {
            return CustomKind(found);
        }
        let leaked: &'static CustomKindInfo = Box::leak(Box::new(info));
        set.insert(leaked);
        CustomKind(leaked)
    }

    pub fn info(self) -> &'static CustomKindInfo {
        self.0
    }

    /// The API group (`bitnami.com`).
    pub fn group(self) -> &'static str {
        self.0.api_version.split_once('/').map_or("", |(g, _)| g)
    }
}

impl PartialEq for CustomKind {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for CustomKind {}
impl PartialOrd for CustomKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CustomKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(other.0)
    }
}
impl std::hash::Hash for CustomKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}
impl std::fmt::Debug for CustomKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.0.kind, self.0.api_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: &str) -> CustomKindInfo {
        CustomKindInfo {
            api_version: "example.com/v1".into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
            namespaced: true,
            status_subresource: false,
        }
    }

    #[test]
    fn handles_compare_by_facts_not_by_interning_order() {
        // Interned B then A: A still sorts first (by kind name), and a
        // second intern of A is the same handle.
        let b = CustomKind::intern(info("Beta"));
        let a = CustomKind::intern(info("Alpha"));
        assert!(a < b);
        assert_eq!(CustomKind::intern(info("Alpha")), a);
        assert!(std::ptr::eq(
            CustomKind::intern(info("Alpha")).info(),
            a.info()
        ));
        assert_eq!(a.group(), "example.com");
    }
}
