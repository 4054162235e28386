//! NodeAffinity: `nodeSelector` and required node affinity as a filter,
//! preferred node affinity as a score (sum of the weights of the matching
//! terms, normalised so the best node gets 100).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;

use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::framework::{default_normalize_score, MAX_NODE_SCORE};
use crate::scheduler::queueing_hint::QueueingHint;

pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether one node selector requirement holds for `labels` (or, for
/// `matchFields`, the node's name under `metadata.name`).
fn requirement_matches(r: &core::NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A term matches when all its requirements do; an empty term matches nothing.
pub fn term_matches(
    term: &core::NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let v = (r.key == "metadata.name").then_some(node_name);
            requirement_matches(r, v)
        })
}

/// The filter: `nodeSelector` labels all present, and at least one required
/// term matching (terms are ORed).
pub fn filter(
    spec: &core::PodSpec,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> Option<&'static str> {
    if let Some(sel) = &spec.node_selector {
        if sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return Some(REASON);
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(req) = required {
        if !req
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, node_name))
        {
            return Some(REASON);
        }
    }
    None
}

/// The raw score: the summed weights of matching preferred terms.
pub fn raw_score(spec: &core::PodSpec, labels: &BTreeMap<String, String>, node_name: &str) -> i64 {
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .map(|n| preferred_score(n, labels, node_name))
        .unwrap_or(0)
}

/// Why a node fails the profile's `addedAffinity`.
pub const REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";

/// The profile's `addedAffinity` as a filter: its required terms must hold
/// for every pod.
pub fn added_filter(
    added: &core::NodeAffinity,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> Option<&'static str> {
    let req = added
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    (!req
        .node_selector_terms
        .iter()
        .any(|t| term_matches(t, labels, node_name)))
    .then_some(REASON_ENFORCED)
}

/// The summed weights of the preferred terms of `affinity` matching the node.
pub fn preferred_score(
    affinity: &core::NodeAffinity,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> i64 {
    affinity
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .map(|terms| {
            terms
                .iter()
                .filter(|t| t.weight != 0 && term_matches(&t.preference, labels, node_name))
                .map(|t| t.weight as i64)
                .sum()
        })
        .unwrap_or(0)
}

pub fn normalize(scores: &mut [i64]) {
    default_normalize_score(MAX_NODE_SCORE, false, scores);
}

/// Queueing hint for Node/Add and Node/UpdateNodeLabel: queue when the
/// node now matches the pod's selector, required affinity and the
/// profile's `addedAffinity`, and (for an update) did not before.
pub fn hint_after_node_change(
    profile: &crate::scheduler::config::Profile,
    spec: &core::PodSpec,
    ev: &QueuedEvent,
) -> QueueingHint {
    let matches = |n: &crate::scheduler::node_info::NodeSnapshot| {
        profile
            .added_affinity
            .as_ref()
            .is_none_or(|a| added_filter(a, &n.labels, &n.name).is_none())
            && filter(spec, &n.labels, &n.name).is_none()
    };
    let Some(new) = ev.new_node() else {
        return QueueingHint::QueueSkip;
    };
    if !matches(new) {
        return QueueingHint::QueueSkip;
    }
    QueueingHint::from_bool(ev.old_node().is_none_or(|o| !matches(o)))
}
