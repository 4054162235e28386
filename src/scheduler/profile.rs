//! One scheduling decision with the default profile: filter the nodes (up to
//! the number of feasible nodes the cluster size calls for, from a rotating
//! start), score the feasible ones with each plugin, normalise, weight, sum,
//! and pick the best, breaking ties with the scheduler's seeded stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;

use super::framework::{default_resources, num_feasible_nodes_to_find};
use super::plugins::image_locality::{self, ImageState};
use super::plugins::node_resources_fit::{self, ScoringStrategy};
use super::plugins::{
    balanced_allocation, node_affinity, node_name, node_unschedulable, taint_toleration,
};
use super::pod_info::PodInfo;
use super::resources::NodeResources;
use crate::api::node::Taint;
use crate::sim::RngStream;

impl NodeSnapshot {
    /// The scheduler's view of a Node object (no pods accounted yet).
    pub fn from_object(obj: &crate::api::Object) -> Option<NodeSnapshot> {
        let n = obj.as_node()?;
        let allocatable: super::resources::Amounts = n
            .allocatable
            .iter()
            .map(|(k, q)| (k.clone(), super::resources::amount(k, q)))
            .collect();
        let images = n
            .images
            .iter()
            .flat_map(|i| {
                i.names
                    .iter()
                    .map(move |name| (image_locality::normalized_image_name(name), i.size_bytes))
            })
            .collect();
        Some(NodeSnapshot {
            name: obj.meta.name.clone(),
            labels: obj.meta.labels.clone(),
            taints: n.taints.clone(),
            unschedulable: n.unschedulable,
            resources: NodeResources::new(allocatable),
            images,
        })
    }
}

/// A node as the scheduler's cache holds it.
#[derive(Clone, Debug)]
pub struct NodeSnapshot {
    pub name: String,
    pub labels: Arc<BTreeMap<String, String>>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub resources: NodeResources,
    /// Images on the node by normalised name, with sizes.
    pub images: BTreeMap<String, i64>,
}

/// Default-profile score weights.
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;
pub const WEIGHT_IMAGE_LOCALITY: i64 = 1;

/// The outcome of one cycle.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    pub selected: Option<String>,
    /// Nodes the filters looked at (for the cycle's cost and the next start).
    pub evaluated: usize,
    /// Per filter reason, on how many nodes it failed.
    pub reasons: BTreeMap<String, usize>,
    pub feasible: usize,
    /// Nodes in the cache when the decision was made.
    pub total: usize,
}

impl Decision {
    /// The scheduler's FailedScheduling message:
    /// `0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.`
    pub fn failure_message(&self) -> String {
        let total = self.total;
        if total == 0 {
            return "no nodes available to schedule pods".to_string();
        }
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        format!("0/{total} nodes are available: {}.", parts.join(", "))
    }
}

/// Filters `node` for the pod: `Ok` or every reason it fails.
fn filter(pod: &PodInfo, spec: &core::PodSpec, node: &NodeSnapshot) -> Result<(), Vec<String>> {
    if let Some(r) = node_unschedulable::filter(node.unschedulable, &pod.tolerations) {
        return Err(vec![r.to_string()]);
    }
    if let Some(r) = node_name::filter(spec.node_name.as_deref(), &node.name) {
        return Err(vec![r.to_string()]);
    }
    if let Some(r) = taint_toleration::filter(&pod.tolerations, &node.taints) {
        return Err(vec![r]);
    }
    if let Some(r) = node_affinity::filter(spec, &node.labels, &node.name) {
        return Err(vec![r.to_string()]);
    }
    let insufficient = node_resources_fit::insufficient(&pod.requests, &node.resources);
    if !insufficient.is_empty() {
        return Err(insufficient);
    }
    Ok(())
}

/// Runs one cycle over `nodes` (in a stable order), starting the filter
/// scan at `start`. Returns the decision and the next start index.
pub fn schedule(
    pod: &PodInfo,
    spec: &core::PodSpec,
    nodes: &[NodeSnapshot],
    image_spread: &BTreeMap<String, i64>,
    start: usize,
    rng: &mut RngStream,
) -> (Decision, usize) {
    let n = nodes.len();
    let mut d = Decision {
        total: n,
        ..Decision::default()
    };
    if n == 0 {
        return (d, 0);
    }
    let want = num_feasible_nodes_to_find(n, 0);
    let mut feasible: Vec<usize> = Vec::new();
    for k in 0..n {
        let i = (start + k) % n;
        d.evaluated += 1;
        match filter(pod, spec, &nodes[i]) {
            Ok(()) => {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(reasons) => {
                for r in reasons {
                    *d.reasons.entry(r).or_default() += 1;
                }
            }
        }
    }
    let next = (start + d.evaluated) % n;
    d.feasible = feasible.len();
    match feasible.len() {
        0 => return (d, next),
        1 => {
            d.selected = Some(nodes[feasible[0]].name.clone());
            return (d, next);
        }
        _ => {}
    }
    let totals = score(pod, spec, nodes, image_spread, &feasible);
    // Highest total wins; ties by reservoir sampling on the seeded stream.
    let mut best = i64::MIN;
    let mut seen = 0u64;
    let mut pick = feasible[0];
    for (&i, &t) in feasible.iter().zip(&totals) {
        if t > best {
            best = t;
            seen = 1;
            pick = i;
        } else if t == best {
            seen += 1;
            if rng.range_inclusive(0, seen - 1) == 0 {
                pick = i;
            }
        }
    }
    d.selected = Some(nodes[pick].name.clone());
    (d, next)
}

/// On how many nodes each image (by normalised name) is: the image states
/// the scheduler's snapshot keeps for ImageLocality.
pub fn image_spread(nodes: &[NodeSnapshot]) -> BTreeMap<String, i64> {
    let mut spread = BTreeMap::new();
    for node in nodes {
        for name in node.images.keys() {
            *spread.entry(name.clone()).or_default() += 1;
        }
    }
    spread
}

/// The score plugins of the default profile, in the order
/// [`score_breakdown`] reports them, with their weights.
pub const SCORE_PLUGINS: [(&str, i64); 5] = [
    ("TaintToleration", WEIGHT_TAINT_TOLERATION),
    ("NodeAffinity", WEIGHT_NODE_AFFINITY),
    ("NodeResourcesFit", WEIGHT_NODE_RESOURCES_FIT),
    (
        "NodeResourcesBalancedAllocation",
        WEIGHT_BALANCED_ALLOCATION,
    ),
    ("ImageLocality", WEIGHT_IMAGE_LOCALITY),
];

/// One plugin's score for one node: as computed, after normalisation, and
/// times the plugin's weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginScore {
    pub raw: i64,
    pub normalized: i64,
    pub weighted: i64,
}

/// Per feasible node (in `feasible` order), each score plugin's result in
/// [`SCORE_PLUGINS`] order.
pub fn score_breakdown(
    pod: &PodInfo,
    spec: &core::PodSpec,
    nodes: &[NodeSnapshot],
    spread: &BTreeMap<String, i64>,
    feasible: &[usize],
) -> Vec<[PluginScore; 5]> {
    let resources = default_resources();
    let taint_raw: Vec<i64> = feasible
        .iter()
        .map(|&i| taint_toleration::raw_score(&pod.tolerations, &nodes[i].taints))
        .collect();
    let mut taint = taint_raw.clone();
    taint_toleration::normalize(&mut taint);
    let affinity_raw: Vec<i64> = feasible
        .iter()
        .map(|&i| node_affinity::raw_score(spec, &nodes[i].labels, &nodes[i].name))
        .collect();
    let mut affinity = affinity_raw.clone();
    node_affinity::normalize(&mut affinity);
    let images: Vec<String> = pod
        .images
        .iter()
        .map(|img| image_locality::normalized_image_name(img))
        .collect();
    let total_nodes = nodes.len() as i64;
    let containers = pod.images.len();
    feasible
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let node = &nodes[i];
            let fit = node_resources_fit::score(
                &ScoringStrategy::LeastAllocated,
                &resources,
                &pod.requests,
                &node.resources,
            );
            let balanced =
                balanced_allocation::score(&resources, &pod.requests, &node.resources).unwrap_or(0);
            let held: BTreeMap<String, ImageState> = if node.images.is_empty() {
                BTreeMap::new()
            } else {
                images
                    .iter()
                    .filter_map(|name| {
                        node.images.get(name).map(|size| {
                            let st = ImageState {
                                size: *size,
                                num_nodes: spread.get(name).copied().unwrap_or(1),
                            };
                            (name.clone(), st)
                        })
                    })
                    .collect()
            };
            let image = image_locality::score(&pod.images, containers, &held, total_nodes);
            let scored = [
                (taint_raw[k], taint[k]),
                (affinity_raw[k], affinity[k]),
                (fit, fit),
                (balanced, balanced),
                (image, image),
            ];
            let mut out = [PluginScore::default(); 5];
            for (j, (raw, normalized)) in scored.into_iter().enumerate() {
                out[j] = PluginScore {
                    raw,
                    normalized,
                    weighted: normalized * SCORE_PLUGINS[j].1,
                };
            }
            out
        })
        .collect()
}

/// Weighted totals of the feasible nodes, in `feasible` order.
pub fn score(
    pod: &PodInfo,
    spec: &core::PodSpec,
    nodes: &[NodeSnapshot],
    spread: &BTreeMap<String, i64>,
    feasible: &[usize],
) -> Vec<i64> {
    score_breakdown(pod, spec, nodes, spread, feasible)
        .iter()
        .map(|per| per.iter().map(|p| p.weighted).sum())
        .collect()
}

/// Every node's verdict for one pod, as `kubesim explain` shows it.
#[derive(Clone, Debug)]
pub struct NodeVerdict {
    pub name: String,
    pub reasons: Vec<String>,
    /// Empty for infeasible nodes.
    pub scores: Vec<(&'static str, PluginScore)>,
    pub total: i64,
}

/// Filters and scores every node (no sampling), in node order.
pub fn explain(
    pod: &PodInfo,
    spec: &core::PodSpec,
    nodes: &[NodeSnapshot],
    spread: &BTreeMap<String, i64>,
) -> Vec<NodeVerdict> {
    let mut feasible = Vec::new();
    let mut out: Vec<NodeVerdict> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let reasons = match filter(pod, spec, n) {
                Ok(()) => {
                    feasible.push(i);
                    Vec::new()
                }
                Err(r) => r,
            };
            NodeVerdict {
                name: n.name.clone(),
                reasons,
                scores: Vec::new(),
                total: 0,
            }
        })
        .collect();
    let breakdown = score_breakdown(pod, spec, nodes, spread, &feasible);
    for (&i, per) in feasible.iter().zip(breakdown) {
        out[i].scores = SCORE_PLUGINS
            .iter()
            .map(|(name, _)| *name)
            .zip(per)
            .collect();
        out[i].total = per.iter().map(|p| p.weighted).sum();
    }
    out
}
