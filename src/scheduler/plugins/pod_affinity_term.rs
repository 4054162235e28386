//! One inter-pod affinity term, resolved against the pod that carries it:
//! which namespaces it looks in, which pods it selects, over which topology.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;

use crate::api::selector::{Requirement, Selector};
use crate::scheduler::pod_info::PodInfo;

/// The label every namespace carries with its own name; kubesim matches a
/// `namespaceSelector` against it (other namespace labels are not cached).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Clone, Debug, PartialEq)]
pub struct AffinityTerm {
    /// Namespaces listed, or the carrier's own when neither a list nor a
    /// selector is given.
    pub namespaces: Vec<String>,
    /// `None` when absent (matches no namespace by itself).
    pub namespace_selector: Option<Selector>,
    /// `None` when absent: a term without a selector matches no pod.
    pub selector: Option<Selector>,
    pub topology_key: String,
    /// The preferred term's weight (0 for required terms).
    pub weight: i32,
}

impl AffinityTerm {
    /// Resolves `t`, carried by a pod in `namespace` with `labels`
    /// (`matchLabelKeys` and `mismatchLabelKeys` take their values from them).
    pub fn from_api(
        t: &core::PodAffinityTerm,
        weight: i32,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> AffinityTerm {
        let mut selector = t
            .label_selector
            .as_ref()
            .and_then(|s| Selector::from_api(s).ok());
        if let Some(sel) = &mut selector {
            for k in t.match_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    sel.requirements
                        .push(Requirement::In(k.clone(), vec![v.clone()]));
                }
            }
            for k in t.mismatch_label_keys.iter().flatten() {
                if let Some(v) = labels.get(k) {
                    sel.requirements
                        .push(Requirement::NotIn(k.clone(), vec![v.clone()]));
                }
            }
        }
        let namespace_selector = t
            .namespace_selector
            .as_ref()
            .and_then(|s| Selector::from_api(s).ok());
        let mut namespaces = t.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.push(namespace.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: t.topology_key.clone(),
            weight,
        }
    }

    /// Whether the term selects `pod`.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        let Some(sel) = &self.selector else {
            return false;
        };
        let in_namespace = self.namespaces.contains(&pod.namespace)
            || self.namespace_selector.as_ref().is_some_and(|s| {
                let mut l = BTreeMap::new();
                l.insert(NAMESPACE_NAME_LABEL.to_string(), pod.namespace.clone());
                s.matches(&l)
            });
        in_namespace && sel.matches(&pod.labels)
    }
}
