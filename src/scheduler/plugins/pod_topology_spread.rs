//! PodTopologySpread: `DoNotSchedule` constraints as a filter (the skew a
//! placement would create must stay within `maxSkew`), `ScheduleAnyway`
//! constraints, or the cluster's default constraints, as a score that
//! favours the less crowded domains.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;

use crate::api::selector::{Requirement, Selector};
use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::framework::MAX_NODE_SCORE;
use crate::scheduler::node_info::NodeSnapshot;
use crate::scheduler::plugins::{node_affinity, taint_toleration};
use crate::scheduler::pod_info::PodInfo;
use crate::scheduler::queueing_hint::QueueingHint;

pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

pub const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";

/// One constraint, with its selector resolved against the pod.
#[derive(Clone, Debug, PartialEq)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (the default).
    pub hard: bool,
    /// `None`: the constraint has no selector and counts no pods.
    pub selector: Option<Selector>,
    pub min_domains: Option<i32>,
    /// `nodeAffinityPolicy: Honor` (the default): only nodes the pod's
    /// node affinity admits count.
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore): only nodes whose taints
    /// the pod tolerates count.
    pub honor_node_taints: bool,
}

impl SpreadConstraint {
    /// The pod's own constraints; `matchLabelKeys` adds the pod's values.
    pub fn of_pod(
        spec: &core::PodSpec,
        labels: &BTreeMap<String, String>,
    ) -> Vec<SpreadConstraint> {
        spec.topology_spread_constraints
            .iter()
            .flatten()
            .map(|c| {
                let mut selector = c
                    .label_selector
                    .as_ref()
                    .and_then(|s| Selector::from_api(s).ok());
                if let Some(sel) = &mut selector {
                    for k in c.match_label_keys.iter().flatten() {
                        if let Some(v) = labels.get(k) {
                            sel.requirements
                                .push(Requirement::In(k.clone(), vec![v.clone()]));
                        }
                    }
                }
                SpreadConstraint {
                    max_skew: c.max_skew,
                    topology_key: c.topology_key.clone(),
                    hard: c.when_unsatisfiable != "ScheduleAnyway",
                    selector,
                    min_domains: c.min_domains,
                    honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                }
            })
            .collect()
    }

    /// A default constraint (`ScheduleAnyway`) with `selector`.
    pub fn default_with(key: &str, max_skew: i32, selector: Selector) -> SpreadConstraint {
        SpreadConstraint {
            max_skew,
            topology_key: key.to_string(),
            hard: false,
            selector: Some(selector),
            min_domains: None,
            honor_node_affinity: true,
            honor_node_taints: false,
        }
    }

    /// Whether `node` takes part in counting for this constraint.
    fn includes(&self, pod: &PodInfo, spec: &core::PodSpec, node: &NodeSnapshot) -> bool {
        (!self.honor_node_affinity
            || node_affinity::filter(spec, &node.labels, &node.name).is_none())
            && (!self.honor_node_taints
                || taint_toleration::filter(&pod.tolerations, &node.taints).is_none())
    }

    /// Pods on `node` this constraint counts: same namespace as the
    /// incoming pod, selected, and not being deleted.
    pub fn count_on(&self, namespace: &str, node: &NodeSnapshot) -> i64 {
        let Some(sel) = &self.selector else { return 0 };
        node.pods
            .iter()
            .filter(|p| !p.terminating && p.namespace == namespace && sel.matches(&p.labels))
            .count() as i64
    }
}

/// The cluster's default constraints when `defaultingType: System`.
pub fn system_default_constraints(selector: &Selector) -> Vec<SpreadConstraint> {
    vec![
        SpreadConstraint::default_with(HOSTNAME_KEY, 3, selector.clone()),
        SpreadConstraint::default_with(ZONE_KEY, 5, selector.clone()),
    ]
}

fn has_all_keys(node: &NodeSnapshot, constraints: &[SpreadConstraint]) -> bool {
    constraints
        .iter()
        .all(|c| node.labels.contains_key(&c.topology_key))
}

/// What the filter precomputes once per cycle: matching pods per domain
/// and, per constraint, the smallest count over its domains.
#[derive(Debug, Default)]
pub struct FilterState {
    constraints: Vec<SpreadConstraint>,
    /// (constraint index, domain value) → matching pods.
    counts: BTreeMap<(usize, String), i64>,
    /// Per constraint: the smallest count and the number of domains.
    min_and_domains: Vec<(i64, usize)>,
}

/// Pre-filter over the pod's `DoNotSchedule` `constraints`: `None` when
/// there are none.
pub fn prefilter(
    pod: &PodInfo,
    spec: &core::PodSpec,
    constraints: Vec<SpreadConstraint>,
    nodes: &[NodeSnapshot],
) -> Option<FilterState> {
    if constraints.is_empty() {
        return None;
    }
    let mut counts: BTreeMap<(usize, String), i64> = BTreeMap::new();
    for node in nodes {
        if !has_all_keys(node, &constraints) {
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if !c.includes(pod, spec, node) {
                continue;
            }
            let value = node.labels[&c.topology_key].clone();
            *counts.entry((i, value)).or_default() += c.count_on(&pod.namespace, node);
        }
    }
    let min_and_domains = (0..constraints.len())
        .map(|i| {
            let mut min = i64::MAX;
            let mut domains = 0;
            for (_, n) in counts
                .range((i, String::new())..)
                .take_while(|((j, _), _)| *j == i)
            {
                min = min.min(*n);
                domains += 1;
            }
            (if domains == 0 { 0 } else { min }, domains)
        })
        .collect();
    Some(FilterState {
        constraints,
        counts,
        min_and_domains,
    })
}

/// The filter: `Err((reason, unresolvable))` when placing the pod on
/// `node` would break a constraint.
pub fn filter(
    state: &FilterState,
    pod: &PodInfo,
    node: &NodeSnapshot,
) -> Result<(), (&'static str, bool)> {
    for (i, c) in state.constraints.iter().enumerate() {
        let Some(value) = node.labels.get(&c.topology_key) else {
            return Err((REASON_MISSING_LABEL, true));
        };
        let (mut min, domains) = state.min_and_domains[i];
        if c.min_domains.is_some_and(|m| (domains as i64) < m as i64) {
            min = 0;
        }
        let self_match = c.selector.as_ref().is_some_and(|s| s.matches(&pod.labels)) as i64;
        let here = state.counts.get(&(i, value.clone())).copied().unwrap_or(0);
        if here + self_match - min > c.max_skew as i64 {
            return Err((REASON, false));
        }
    }
    Ok(())
}

/// Raw scores of the `feasible` nodes (in order), and which of them are
/// ignored (missing a topology key when every key is required).
/// `constraints` are the pod's `ScheduleAnyway` ones or the defaults.
pub fn score(
    pod: &PodInfo,
    spec: &core::PodSpec,
    constraints: &[SpreadConstraint],
    require_all_topologies: bool,
    nodes: &[NodeSnapshot],
    feasible: &[usize],
) -> (Vec<i64>, Vec<bool>) {
    let mut ignored = vec![false; feasible.len()];
    // Domains of the candidate nodes, per constraint (hostname counts per node).
    let mut domain_counts: BTreeMap<(usize, &str), i64> = BTreeMap::new();
    let mut sizes = vec![0usize; constraints.len()];
    for (k, &i) in feasible.iter().enumerate() {
        let node = &nodes[i];
        if require_all_topologies && !has_all_keys(node, constraints) {
            ignored[k] = true;
            continue;
        }
        for (j, c) in constraints.iter().enumerate() {
            if c.topology_key == HOSTNAME_KEY {
                continue;
            }
            let value = node.labels.get(&c.topology_key).map_or("", String::as_str);
            if domain_counts.insert((j, value), 0).is_none() {
                sizes[j] += 1;
            }
        }
    }
    let candidates = feasible.len() - ignored.iter().filter(|x| **x).count();
    let weights: Vec<f64> = constraints
        .iter()
        .zip(&sizes)
        .map(|(c, &s)| {
            let size = if c.topology_key == HOSTNAME_KEY {
                candidates
            } else {
                s
            };
            libm::log((size + 2) as f64)
        })
        .collect();
    // Matching pods over every node whose domain holds a candidate.
    for node in nodes {
        if require_all_topologies && !has_all_keys(node, constraints) {
            continue;
        }
        for (j, c) in constraints.iter().enumerate() {
            if c.topology_key == HOSTNAME_KEY || !c.includes(pod, spec, node) {
                continue;
            }
            let value = node.labels.get(&c.topology_key).map_or("", String::as_str);
            if let Some(n) = domain_counts.get_mut(&(j, value)) {
                *n += c.count_on(&pod.namespace, node);
            }
        }
    }
    let raw = feasible
        .iter()
        .zip(&ignored)
        .map(|(&i, &ign)| {
            if ign {
                return 0;
            }
            let node = &nodes[i];
            let mut s = 0f64;
            for (j, c) in constraints.iter().enumerate() {
                let Some(value) = node.labels.get(&c.topology_key) else {
                    continue;
                };
                let cnt = if c.topology_key == HOSTNAME_KEY {
                    c.count_on(&pod.namespace, node)
                } else {
                    domain_counts
                        .get(&(j, value.as_str()))
                        .copied()
                        .unwrap_or(0)
                };
                s += cnt as f64 * weights[j] + (c.max_skew - 1) as f64;
            }
            s.round() as i64
        })
        .collect();
    (raw, ignored)
}

/// Fewer matching pods score higher; ignored nodes get 0.
pub fn normalize(scores: &mut [i64], ignored: &[bool]) {
    let mut min = i64::MAX;
    let mut max = 0i64;
    for (s, ign) in scores.iter().zip(ignored) {
        if !ign {
            min = min.min(*s);
            max = max.max(*s);
        }
    }
    for (s, ign) in scores.iter_mut().zip(ignored) {
        *s = if *ign {
            0
        } else if max == 0 {
            MAX_NODE_SCORE
        } else {
            MAX_NODE_SCORE * (max + min - *s) / max
        };
    }
}

fn same_pod(a: &PodInfo, b: &PodInfo) -> bool {
    a.name == b.name && a.namespace == b.namespace
}

/// Queueing hint for Pod/Add, Pod/UpdatePodLabel and Pod/Delete
/// (`isSchedulableAfterPodChange`): only the waiting pod itself, or a pod
/// on a node in its namespace, counts; queue when a constraint's selector
/// matches the added or deleted pod, or matched before and not after (or
/// the reverse) for a label update.
pub fn hint_after_pod_change(
    target: &PodInfo,
    constraints: &[SpreadConstraint],
    ev: &QueuedEvent,
) -> QueueingHint {
    let involved = |(p, node): (&PodInfo, Option<&str>)| {
        same_pod(p, target) || (node.is_some() && p.namespace == target.namespace)
    };
    let (old, new) = (ev.old_pod(), ev.new_pod());
    if old.is_some_and(|p| !involved(p)) || new.is_some_and(|p| !involved(p)) {
        return QueueingHint::QueueSkip;
    }
    let selects = |c: &SpreadConstraint, p: &PodInfo| {
        c.selector.as_ref().is_some_and(|s| s.matches(&p.labels))
    };
    match (old, new) {
        (Some((o, _)), Some((n, _))) => {
            if same_pod(o, target) {
                return QueueingHint::Queue;
            }
            if o.labels == n.labels {
                return QueueingHint::QueueSkip;
            }
            QueueingHint::from_bool(constraints.iter().any(|c| selects(c, o) != selects(c, n)))
        }
        (Some((p, _)), None) | (None, Some((p, _))) => {
            QueueingHint::from_bool(constraints.iter().any(|c| selects(c, p)))
        }
        (None, None) => QueueingHint::QueueSkip,
    }
}

/// Queueing hint for Node/Add, Node/Delete, Node/UpdateNodeLabel and
/// Node/UpdateNodeTaint (`isSchedulableAfterNodeChange`): a node counts
/// when it carries every constraint's topology key; queue when an added or
/// deleted node counts, when an update makes it count or stop counting,
/// or changes a key's value or the taints of a node that counts.
pub fn hint_after_node_change(constraints: &[SpreadConstraint], ev: &QueuedEvent) -> QueueingHint {
    let counts = |n: &NodeSnapshot| has_all_keys(n, constraints);
    match (ev.old_node(), ev.new_node()) {
        (Some(o), Some(n)) => {
            if counts(o) != counts(n) {
                return QueueingHint::Queue;
            }
            let key_changed = constraints
                .iter()
                .any(|c| o.labels.get(&c.topology_key) != n.labels.get(&c.topology_key));
            QueueingHint::from_bool(counts(n) && (key_changed || o.taints != n.taints))
        }
        (None, Some(n)) | (Some(n), None) => QueueingHint::from_bool(counts(n)),
        (None, None) => QueueingHint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn node(name: &str, zone: &str, pods: usize) -> NodeSnapshot {
        let mut labels = BTreeMap::new();
        labels.insert(HOSTNAME_KEY.to_string(), name.to_string());
        labels.insert(ZONE_KEY.to_string(), zone.to_string());
        let mut n = NodeSnapshot::new(name, labels, Default::default());
        for i in 0..pods {
            n.add_pod(Arc::new(PodInfo {
                name: format!("{name}-{i}"),
                namespace: "ns".into(),
                labels: Arc::new([("app".to_string(), "web".to_string())].into()),
                ..PodInfo::default()
            }));
        }
        n
    }

    #[test]
    fn the_filter_keeps_skew_within_max_and_needs_the_label() {
        let sel = Selector {
            requirements: vec![Requirement::In("app".into(), vec!["web".into()])],
        };
        let mut c = SpreadConstraint::default_with(ZONE_KEY, 1, sel);
        c.hard = true;
        let pod = PodInfo {
            namespace: "ns".into(),
            labels: Arc::new([("app".to_string(), "web".to_string())].into()),
            spread: vec![c.clone()],
            ..PodInfo::default()
        };
        // zone-a holds 2, zone-b 1: only zone-b keeps the skew at 1.
        let nodes = vec![
            node("a1", "zone-a", 1),
            node("a2", "zone-a", 1),
            node("b1", "zone-b", 1),
        ];
        let spec = core::PodSpec::default();
        let st = prefilter(&pod, &spec, vec![c.clone()], &nodes).unwrap();
        assert_eq!(filter(&st, &pod, &nodes[0]), Err((REASON, false)));
        assert_eq!(filter(&st, &pod, &nodes[2]), Ok(()));
        let bare = NodeSnapshot::new("x", BTreeMap::new(), Default::default());
        assert_eq!(filter(&st, &pod, &bare), Err((REASON_MISSING_LABEL, true)));
        // minDomains above the domain count makes the global minimum 0.
        let mut c3 = c;
        c3.min_domains = Some(3);
        let st = prefilter(&pod, &spec, vec![c3], &nodes).unwrap();
        assert_eq!(filter(&st, &pod, &nodes[2]), Err((REASON, false)));
    }
}
