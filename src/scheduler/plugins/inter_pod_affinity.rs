//! InterPodAffinity: required pod affinity and anti-affinity (the incoming
//! pod's, and the anti-affinity of pods already placed) as a filter;
//! preferred terms, both ways, and existing pods' required affinity as a
//! score credited to topology domains.

use std::collections::BTreeMap;

use crate::scheduler::framework::MAX_NODE_SCORE;
use crate::scheduler::node_info::NodeSnapshot;
use crate::scheduler::plugins::pod_affinity_term::AffinityTerm;
use crate::scheduler::pod_info::PodInfo;

pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

/// The default `hardPodAffinityWeight`.
pub const DEFAULT_HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type Pair = (String, String);

/// What the filter precomputes once per cycle, as matching pods per
/// topology domain.
#[derive(Debug, Default)]
pub struct FilterState {
    /// Domains where an existing pod's required anti-affinity selects the
    /// incoming pod.
    existing_anti: BTreeMap<Pair, i64>,
    /// Domains holding pods that match all the incoming pod's required
    /// affinity terms.
    affinity: BTreeMap<Pair, i64>,
    /// Domains holding pods that one of its anti-affinity terms selects.
    anti: BTreeMap<Pair, i64>,
}

fn credit(map: &mut BTreeMap<Pair, i64>, node: &NodeSnapshot, key: &str, by: i64) {
    if let Some(v) = node.labels.get(key) {
        *map.entry((key.to_string(), v.clone())).or_default() += by;
    }
}

/// Pre-filter: `None` when there is nothing to check (the pod has no
/// required terms and no placed pod has required anti-affinity).
pub fn prefilter(pod: &PodInfo, nodes: &[NodeSnapshot]) -> Option<FilterState> {
    let a = &pod.affinity;
    let own = !a.required_affinity.is_empty() || !a.required_anti_affinity.is_empty();
    let existing = nodes.iter().any(|n| n.pods_with_required_anti_affinity > 0);
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

fn in_domain(map: &BTreeMap<Pair, i64>, node: &NodeSnapshot, key: &str) -> bool {
    node.labels.get(key).is_some_and(|v| {
        map.get(&(key.to_string(), v.clone()))
            .is_some_and(|n| *n > 0)
    })
}

/// The filter: `Err((reason, unresolvable))` when a rule keeps the pod off
/// `node`.
pub fn filter(
    s: &FilterState,
    pod: &PodInfo,
    node: &NodeSnapshot,
) -> Result<(), (&'static str, bool)> {
    if !s.existing_anti.is_empty() {
        for (key, value) in node.labels.iter() {
            if s.existing_anti
                .get(&(key.clone(), value.clone()))
                .is_some_and(|n| *n > 0)
            {
                return Err((REASON_EXISTING_ANTI_AFFINITY, false));
            }
        }
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
/// placed pod has affinity terms.
pub fn scores_anything(pod: &PodInfo, nodes: &[NodeSnapshot]) -> bool {
    !pod.affinity.preferred_affinity.is_empty()
        || !pod.affinity.preferred_anti_affinity.is_empty()
        || nodes.iter().any(|n| n.pods_with_affinity > 0)
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
    let mut topo: BTreeMap<Pair, i64> = BTreeMap::new();
    let own = !pod.affinity.preferred_affinity.is_empty()
        || !pod.affinity.preferred_anti_affinity.is_empty();
    let add = |topo: &mut BTreeMap<Pair, i64>, node: &NodeSnapshot, t: &AffinityTerm, w: i64| {
        if let Some(v) = node.labels.get(&t.topology_key) {
            *topo.entry((t.topology_key.clone(), v.clone())).or_default() += w;
        }
    };
    for node in nodes {
        if node.labels.is_empty() || (!own && node.pods_with_affinity == 0) {
            continue;
        }
        for p in &node.pods {
            for t in &pod.affinity.preferred_affinity {
                if t.matches(p) {
                    add(&mut topo, node, t, t.weight as i64);
                }
            }
            for t in &pod.affinity.preferred_anti_affinity {
                if t.matches(p) {
                    add(&mut topo, node, t, -(t.weight as i64));
                }
            }
            if hard_pod_affinity_weight > 0 {
                for t in &p.affinity.required_affinity {
                    if t.matches(pod) {
                        add(&mut topo, node, t, hard_pod_affinity_weight);
                    }
                }
            }
            if !ignore_preferred_terms_of_existing_pods {
                for t in &p.affinity.preferred_affinity {
                    if t.matches(pod) {
                        add(&mut topo, node, t, t.weight as i64);
                    }
                }
                for t in &p.affinity.preferred_anti_affinity {
                    if t.matches(pod) {
                        add(&mut topo, node, t, -(t.weight as i64));
                    }
                }
            }
        }
    }
    let raw = feasible
        .iter()
        .map(|&i| {
            nodes[i]
                .labels
                .iter()
                .filter_map(|(k, v)| topo.get(&(k.clone(), v.clone())))
                .sum()
        })
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
