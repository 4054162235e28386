//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's, and the anti-affinity of pods already placed) as a filter;
//! preferred terms, both ways, and existing pods' required affinity as a
//! score credited to topology domains.

use std::collections::BTreeMap;

use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::framework::MAX_NODE_SCORE;
use crate::scheduler::node_info::NodeSnapshot;
use crate::scheduler::plugins::pod_affinity_term::AffinityTerm;
use crate::scheduler::pod_info::PodInfo;
use crate::scheduler::queueing_hint::QueueingHint;

pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

/// The default `hardPodAffinityWeight`.
pub const DEFAULT_HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Counts per topology domain: topology key → value → count. Keyed by
/// key first so a node's lookups borrow its labels instead of cloning them.
type Domains = BTreeMap<String, BTreeMap<String, i64>>;

/// The count of the domain `node` is in for `key` (0 when the node lacks
/// the label or the domain has no entry).
fn count_at(map: &Domains, node: &NodeSnapshot, key: &str) -> i64 {
    node.labels
        .get(key)
        .and_then(|v| map.get(key).and_then(|vals| vals.get(v)))
        .copied()
        .unwrap_or(0)
}

/// What the filter precomputes once per cycle, as matching pods per
/// topology domain.
#[derive(Debug, Default)]
pub struct FilterState {
    /// Domains where an existing pod's required anti-affinity selects the
    /// incoming pod.
    existing_anti: Domains,
    /// Domains holding pods that match all the incoming pod's required
    /// affinity terms.
    affinity: Domains,
    /// Domains holding pods that one of its anti-affinity terms selects.
    anti: Domains,
}

fn credit(map: &mut Domains, node: &NodeSnapshot, key: &str, by: i64) {
    if let Some(v) = node.labels.get(key) {
        *map.entry(key.to_string())
            .or_default()
            .entry(v.clone())
            .or_default() += by;
    }
}

/// Pre-filter: `None` when there is nothing to check (the pod has no
/// required terms and no placed pod has required anti-affinity, which
/// `existing` says).
pub fn prefilter(pod: &PodInfo, nodes: &[NodeSnapshot], existing: bool) -> Option<FilterState> {
    let a = &pod.affinity;
    let own = !a.required_affinity.is_empty() || !a.required_anti_affinity.is_empty();
    if !own && !existing {
        return None;
    }
    let mut s = FilterState::default();
    for node in nodes {
        if node.pods_with_required_anti_affinity > 0 {
            for p in &node.pods {
                for t in &p.affinity.required_anti_affinity {
                    if t.matches(pod) {
                        credit(&mut s.existing_anti, node, &t.topology_key, 1);
                    }
                }
            }
        }
        if !own {
            continue;
        }
        for p in &node.pods {
            if !a.required_affinity.is_empty() && a.required_affinity.iter().all(|t| t.matches(p)) {
                for t in &a.required_affinity {
                    credit(&mut s.affinity, node, &t.topology_key, 1);
                }
            }
            for t in &a.required_anti_affinity {
                if t.matches(p) {
                    credit(&mut s.anti, node, &t.topology_key, 1);
                }
            }
        }
    }
    Some(s)
}

fn in_domain(map: &Domains, node: &NodeSnapshot, key: &str) -> bool {
    count_at(map, node, key) > 0
}

/// The filter: `Err((reason, unresolvable))` when a rule keeps the pod off
/// `node`.
pub fn filter(
    s: &FilterState,
    pod: &PodInfo,
    node: &NodeSnapshot,
) -> Result<(), (&'static str, bool)> {
    if s.existing_anti
        .keys()
        .any(|key| in_domain(&s.existing_anti, node, key))
    {
        return Err((REASON_EXISTING_ANTI_AFFINITY, false));
    }
    let terms = &pod.affinity.required_affinity;
    if !terms.is_empty() {
        let mut all_exist = true;
        for t in terms {
            if !node.labels.contains_key(&t.topology_key) {
                return Err((REASON_AFFINITY, true));
            }
            if !in_domain(&s.affinity, node, &t.topology_key) {
                all_exist = false;
            }
        }
        // The first pod of a group with affinity to itself may go anywhere
        // that has the topology labels.
        let first_of_group = s.affinity.is_empty() && terms.iter().all(|t| t.matches(pod));
        if !all_exist && !first_of_group {
            return Err((REASON_AFFINITY, true));
        }
    }
    for t in &pod.affinity.required_anti_affinity {
        if in_domain(&s.anti, node, &t.topology_key) {
            return Err((REASON_ANTI_AFFINITY, false));
        }
    }
    Ok(())
}

/// Whether scoring has anything to do: the pod has preferred terms, or a
/// placed pod has affinity terms (`existing`).
pub fn scores_anything(pod: &PodInfo, existing: bool) -> bool {
    !pod.affinity.preferred_affinity.is_empty()
        || !pod.affinity.preferred_anti_affinity.is_empty()
        || existing
}

/// Raw scores of the `feasible` nodes, and whether any domain got a score
/// (normalisation is skipped otherwise).
pub fn score(
    pod: &PodInfo,
    nodes: &[NodeSnapshot],
    feasible: &[usize],
    hard_pod_affinity_weight: i64,
    ignore_preferred_terms_of_existing_pods: bool,
) -> (Vec<i64>, bool) {
    let mut topo = Domains::new();
    let own = !pod.affinity.preferred_affinity.is_empty()
        || !pod.affinity.preferred_anti_affinity.is_empty();
    // Credits each of `terms` that selects `target` to the node's domain:
    // the term's weight (or `fixed`), negated for anti-affinity.
    let mut add = |node: &NodeSnapshot,
                   terms: &[AffinityTerm],
                   target: &PodInfo,
                   sign: i64,
                   fixed: Option<i64>| {
        for t in terms.iter().filter(|t| t.matches(target)) {
            credit(
                &mut topo,
                node,
                &t.topology_key,
                sign * fixed.unwrap_or(t.weight as i64),
            );
        }
    };
    for node in nodes {
        if node.labels.is_empty() || (!own && node.pods_with_affinity == 0) {
            continue;
        }
        for p in &node.pods {
            add(node, &pod.affinity.preferred_affinity, p, 1, None);
            add(node, &pod.affinity.preferred_anti_affinity, p, -1, None);
            if hard_pod_affinity_weight > 0 {
                add(
                    node,
                    &p.affinity.required_affinity,
                    pod,
                    1,
                    Some(hard_pod_affinity_weight),
                );
            }
            if !ignore_preferred_terms_of_existing_pods {
                add(node, &p.affinity.preferred_affinity, pod, 1, None);
                add(node, &p.affinity.preferred_anti_affinity, pod, -1, None);
            }
        }
    }
    let raw = feasible
        .iter()
        .map(|&i| topo.keys().map(|key| count_at(&topo, &nodes[i], key)).sum())
        .collect();
    (raw, !topo.is_empty())
}

/// Scales to 0..=100 between the lowest and highest score; skipped when
/// no domain got a score.
pub fn normalize(scores: &mut [i64], any: bool) {
    if !any || scores.is_empty() {
        return;
    }
    let min = *scores.iter().min().unwrap_or(&0);
    let max = *scores.iter().max().unwrap_or(&0);
    let diff = max - min;
    for s in scores.iter_mut() {
        let f = if diff > 0 {
            MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)
        } else {
            0.0
        };
        *s = f as i64;
    }
}

/// All the terms select `p` (false without terms).
fn matches_all(terms: &[AffinityTerm], p: &PodInfo) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(p))
}

fn matches_any(terms: &[AffinityTerm], p: &PodInfo) -> bool {
    terms.iter().any(|t| t.matches(p))
}

/// Queueing hint for Pod/Add, Pod/UpdatePodLabel and Pod/Delete
/// (`isSchedulableAfterPodChange`): unscheduled pods never count. Queue
/// when an added pod satisfies all the waiting pod's required affinity
/// terms; when an update makes it satisfy them, or stop matching an
/// anti-affinity term; when a deleted pod matched an anti-affinity term,
/// or its own required anti-affinity selected the waiting pod.
pub fn hint_after_pod_change(target: &PodInfo, ev: &QueuedEvent) -> QueueingHint {
    let (old, new) = (ev.old_pod(), ev.new_pod());
    if old.is_some_and(|(_, n)| n.is_none()) || new.is_some_and(|(_, n)| n.is_none()) {
        return QueueingHint::QueueSkip;
    }
    let terms = &target.affinity.required_affinity;
    let anti = &target.affinity.required_anti_affinity;
    QueueingHint::from_bool(match (old, new) {
        (Some((o, _)), Some((n, _))) => {
            (!matches_all(terms, o) && matches_all(terms, n))
                || (matches_any(anti, o) && !matches_any(anti, n))
        }
        (None, Some((n, _))) => matches_all(terms, n),
        (Some((o, _)), None) => {
            matches_any(anti, o) || matches_any(&o.affinity.required_anti_affinity, target)
        }
        (None, None) => false,
    })
}

/// Queueing hint for Node/Add and Node/UpdateNodeLabel
/// (`isSchedulableAfterNodeChange`): queue when a node gains an affinity
/// term's topology key or changes its value; for anti-affinity, on any new
/// node, or when a node loses a term's key or changes its value.
pub fn hint_after_node_change(target: &PodInfo, ev: &QueuedEvent) -> QueueingHint {
    let Some(new) = ev.new_node() else {
        return QueueingHint::QueueSkip;
    };
    let old = ev.old_node();
    let value = |n: &NodeSnapshot, key: &str| n.labels.get(key).cloned();
    let affinity = target.affinity.required_affinity.iter().any(|t| {
        let after = value(new, &t.topology_key);
        match old {
            None => after.is_some(),
            Some(o) => after.is_some() && value(o, &t.topology_key) != after,
        }
    });
    let anti = target
        .affinity
        .required_anti_affinity
        .iter()
        .any(|t| match old {
            None => true,
            Some(o) => {
                let before = value(o, &t.topology_key);
                before.is_some() && before != value(new, &t.topology_key)
            }
        });
    QueueingHint::from_bool(affinity || anti)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::selector::{Requirement, Selector};
    use std::sync::Arc;

    fn term(app: &str, key: &str) -> AffinityTerm {
        AffinityTerm {
            namespaces: vec!["ns".into()],
            namespace_selector: None,
            selector: Some(Selector {
                requirements: vec![Requirement::In("app".into(), vec![app.into()])],
            }),
            topology_key: key.into(),
            weight: 0,
        }
    }

    fn pod(name: &str, app: &str) -> PodInfo {
        PodInfo {
            name: name.into(),
            namespace: "ns".into(),
            labels: Arc::new([("app".to_string(), app.to_string())].into()),
            ..PodInfo::default()
        }
    }

    fn node(name: &str, zone: &str) -> NodeSnapshot {
        let labels = [
            ("zone".to_string(), zone.to_string()),
            ("host".to_string(), name.to_string()),
        ];
        NodeSnapshot::new(name, labels.into(), Default::default())
    }

    #[test]
    fn required_affinity_follows_the_group_and_lets_the_first_in() {
        let mut web = pod("web", "web");
        web.affinity.required_affinity = vec![term("web", "zone")];
        let mut nodes = vec![node("a", "z1"), node("b", "z2")];
        // No pod of the group yet, and the pod matches its own term.
        let st = prefilter(&web, &nodes, false).unwrap();
        assert_eq!(filter(&st, &web, &nodes[0]), Ok(()));
        nodes[1].add_pod(Arc::new(pod("web-0", "web")));
        let st = prefilter(&web, &nodes, false).unwrap();
        assert_eq!(filter(&st, &web, &nodes[0]), Err((REASON_AFFINITY, true)));
        assert_eq!(filter(&st, &web, &nodes[1]), Ok(()));
    }

    #[test]
    fn anti_affinity_both_ways() {
        let mut cache = pod("cache-0", "cache");
        cache.affinity.required_anti_affinity = vec![term("cache", "host")];
        let mut nodes = vec![node("a", "z1"), node("b", "z1")];
        nodes[0].add_pod(Arc::new(cache.clone()));
        // The placed pod's anti-affinity keeps another cache pod off "a".
        let plain = pod("cache-1", "cache");
        let st = prefilter(&plain, &nodes, true).unwrap();
        assert_eq!(
            filter(&st, &plain, &nodes[0]),
            Err((REASON_EXISTING_ANTI_AFFINITY, false))
        );
        assert_eq!(filter(&st, &plain, &nodes[1]), Ok(()));
        // The incoming pod's own anti-affinity, against a plain placed pod.
        let mut nodes = vec![node("a", "z1"), node("b", "z1")];
        nodes[0].add_pod(Arc::new(pod("x", "cache")));
        let mut picky = pod("cache-2", "cache");
        picky.affinity.required_anti_affinity = vec![term("cache", "host")];
        let st = prefilter(&picky, &nodes, false).unwrap();
        assert_eq!(
            filter(&st, &picky, &nodes[0]),
            Err((REASON_ANTI_AFFINITY, false))
        );
        assert!(prefilter(&pod("y", "web"), &[node("c", "z")], false).is_none());
    }
}
