//! One scheduling decision under a profile: pre-filter, filter the nodes
//! (up to the number of feasible nodes the cluster size calls for, from a
//! rotating start), score the feasible ones with each score plugin,
//! normalise, weight, sum, and pick the best, breaking ties with the
//! scheduler's seeded stream.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;

use super::config::{FilterPlugin, Profile, ScorePlugin, SpreadDefaulting};
use super::fit_index::FitIndex;
use super::framework::num_feasible_nodes_to_find;
use super::plain_fit::{self, PlainAsk};
use super::plugins::dynamic_resources::DraCycle;
use super::plugins::image_locality;
use super::plugins::pod_topology_spread::{self as spread, SpreadConstraint};
use super::plugins::{
    balanced_allocation, inter_pod_affinity, node_affinity, node_name, node_ports,
    node_resources_fit, node_unschedulable, taint_toleration,
};
use super::pod_info::PodInfo;
use crate::api::selector::Selector;
use crate::sim::RngStream;

pub use super::node_info::NodeSnapshot;

/// Everything one cycle reads.
#[derive(Clone, Copy)]
pub struct CycleInput<'a> {
    pub pod: &'a PodInfo,
    pub spec: &'a core::PodSpec,
    pub nodes: &'a [NodeSnapshot],
    /// On how many nodes each image is ([`image_spread`]).
    pub image_spread: &'a BTreeMap<String, i64>,
    /// The selector default spreading uses (Services and the controller
    /// selecting the pod); `None` when nothing selects it.
    pub default_selector: Option<&'a Selector>,
    /// Pods nominated to a node by an earlier preemption (by node name):
    /// those of at least this pod's priority keep their room.
    pub nominated: &'a BTreeMap<String, Vec<Arc<PodInfo>>>,
    /// How many placed pods carry affinity terms, cluster-wide.
    pub counts: AffinityCounts,
    /// The nodes' free rooms, kept by the scheduler's cache as `nodes`
    /// change, for the cycle that fits a plain pod nowhere; `None` scans.
    pub fit_index: Option<&'a FitIndex>,
    /// DynamicResources' PreFilter state, for a pod with claims.
    pub dra: Option<&'a DraCycle>,
}

/// Cluster-wide counts of placed pods with inter-pod affinity terms, so a
/// cycle skips InterPodAffinity's scans when there is nothing to find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AffinityCounts {
    pub with_affinity: usize,
    pub with_required_anti_affinity: usize,
}

impl AffinityCounts {
    /// Counts by scanning `nodes` (the component keeps them incrementally).
    pub fn scan(nodes: &[NodeSnapshot]) -> AffinityCounts {
        AffinityCounts {
            with_affinity: nodes.iter().map(|n| n.pods_with_affinity).sum(),
            with_required_anti_affinity: nodes
                .iter()
                .map(|n| n.pods_with_required_anti_affinity)
                .sum(),
        }
    }
}

/// The outcome of one cycle.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    pub selected: Option<String>,
    /// Nodes the filters looked at (for the cycle's cost and the next start).
    pub evaluated: usize,
    /// Per filter reason, on how many nodes it failed.
    pub reasons: BTreeMap<Cow<'static, str>, usize>,
    pub feasible: usize,
    /// Nodes in the cache when the decision was made.
    pub total: usize,
    /// Nodes (by index) that failed only in ways preemption may fix.
    pub resolvable: Vec<usize>,
    /// The filter plugins that rejected a node (upstream's
    /// `Diagnosis.UnschedulablePlugins`): only their queueing hints decide
    /// when the pod is worth retrying.
    pub rejectors: BTreeSet<FilterPlugin>,
    /// The best-scoring feasible nodes (up to three, by name) and their
    /// totals, highest first: why the pod went where it did. Names, not
    /// indices: the cycle's record is written after its latency, when a
    /// Node that registered meanwhile has shifted the cache's indices.
    pub ranking: Vec<(String, i64)>,
}

impl Decision {
    /// `node=total` for the ranking, as the trace shows it.
    pub fn ranking_text(&self) -> String {
        self.ranking
            .iter()
            .map(|(n, t)| format!("{n}={t}"))
            .collect::<Vec<_>>()
            .join(",")
    }
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

/// Why a node was filtered out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reasons: Vec<Cow<'static, str>>,
    /// No preemption on this node can help (`UnschedulableAndUnresolvable`).
    pub unresolvable: bool,
    /// The plugin that rejected the node.
    pub plugin: FilterPlugin,
}

impl Failure {
    fn new(
        plugin: FilterPlugin,
        reason: impl Into<Cow<'static, str>>,
        unresolvable: bool,
    ) -> Failure {
        Failure {
            reasons: vec![reason.into()],
            unresolvable,
            plugin,
        }
    }
}

/// What pre-filter computes once per cycle for the filters.
#[derive(Default)]
pub struct CycleState {
    spread: Option<spread::FilterState>,
    inter_pod: Option<inter_pod_affinity::FilterState>,
}

impl CycleState {
    /// Whether a filter of this cycle counts pods on other nodes (hard
    /// spread constraints, inter-pod terms): then no node's verdict is its
    /// own resources alone.
    pub fn crosses_nodes(&self) -> bool {
        self.spread.is_some() || self.inter_pod.is_some()
    }
}

/// The spread constraints of `pod` under `profile`: its own of the wanted
/// kind (`hard` = DoNotSchedule), or, if it has none, the defaults.
pub fn spread_constraints(
    profile: &Profile,
    pod: &PodInfo,
    default_selector: Option<&Selector>,
    hard: bool,
) -> Vec<SpreadConstraint> {
    if !pod.spread.is_empty() {
        return pod
            .spread
            .iter()
            .filter(|c| c.hard == hard)
            .cloned()
            .collect();
    }
    let Some(sel) = default_selector else {
        return Vec::new();
    };
    match &profile.spread_defaulting {
        SpreadDefaulting::System if !hard => spread::system_default_constraints(sel),
        SpreadDefaulting::System => Vec::new(),
        SpreadDefaulting::List(list) => list
            .iter()
            .filter(|(_, _, h)| *h == hard)
            .map(|(key, skew, h)| {
                let mut c = SpreadConstraint::default_with(key, *skew, sel.clone());
                c.hard = *h;
                c
            })
            .collect(),
    }
}

/// Pre-filter: what the spread and inter-pod affinity filters need.
pub fn prefilter(profile: &Profile, input: &CycleInput<'_>) -> CycleState {
    let mut st = CycleState::default();
    if profile.filters.contains(&FilterPlugin::PodTopologySpread) {
        let hard = spread_constraints(profile, input.pod, input.default_selector, true);
        st.spread = spread::prefilter(input.pod, input.spec, hard, input.nodes);
    }
    if profile.filters.contains(&FilterPlugin::InterPodAffinity) {
        st.inter_pod = inter_pod_affinity::prefilter(
            input.pod,
            input.nodes,
            input.counts.with_required_anti_affinity > 0,
        );
    }
    st
}

/// Runs the profile's filters on `node`: `Ok` or why not. The first
/// failing plugin decides, as in the framework; NodeResourcesFit reports
/// every resource that is short.
pub fn filter(
    profile: &Profile,
    input: &CycleInput<'_>,
    state: &CycleState,
    node: &NodeSnapshot,
) -> Result<(), Failure> {
    let pod = input.pod;
    // Most cycles run with no nominations at all: skip the per-node lookup.
    let nominated: Vec<&Arc<PodInfo>> = (!input.nominated.is_empty())
        .then(|| input.nominated.get(&node.name))
        .flatten()
        .map(|v| {
            v.iter()
                .filter(|p| {
                    p.priority >= pod.priority
                        && !(p.name == pod.name && p.namespace == pod.namespace)
                })
                .collect()
        })
        .unwrap_or_default();
    for f in &profile.filters {
        match f {
            FilterPlugin::NodeUnschedulable => {
                if let Some(r) = node_unschedulable::filter(node.unschedulable, &pod.tolerations) {
                    return Err(Failure::new(*f, r, true));
                }
            }
            FilterPlugin::NodeName => {
                if let Some(r) = node_name::filter(input.spec.node_name.as_deref(), &node.name) {
                    return Err(Failure::new(*f, r, true));
                }
            }
            FilterPlugin::TaintToleration => {
                if let Some(r) = taint_toleration::filter(&pod.tolerations, &node.taints) {
                    return Err(Failure::new(*f, r, true));
                }
            }
            FilterPlugin::NodeAffinity => {
                if let Some(added) = &profile.added_affinity {
                    if let Some(r) = node_affinity::added_filter(added, &node.labels, &node.name) {
                        return Err(Failure::new(*f, r, true));
                    }
                }
                if let Some(r) = node_affinity::filter(input.spec, &node.labels, &node.name) {
                    return Err(Failure::new(*f, r, true));
                }
            }
            FilterPlugin::NodePorts => {
                let used = node
                    .used_ports()
                    .chain(nominated.iter().flat_map(|p| p.host_ports.iter()));
                if let Some(r) = node_ports::filter(&pod.host_ports, used) {
                    return Err(Failure::new(*f, r, false));
                }
            }
            FilterPlugin::NodeResourcesFit => {
                let short = if nominated.is_empty() {
                    node_resources_fit::insufficient(&pod.requests, &node.resources)
                } else {
                    let mut with = node.resources.clone();
                    for p in &nominated {
                        with.add_pod(&p.requests);
                    }
                    node_resources_fit::insufficient(&pod.requests, &with)
                };
                if !short.is_empty() {
                    return Err(Failure {
                        reasons: short,
                        unresolvable: false,
                        plugin: *f,
                    });
                }
            }
            FilterPlugin::PodTopologySpread => {
                if let Some(s) = &state.spread {
                    if let Err((r, unresolvable)) = spread::filter(s, pod, node) {
                        return Err(Failure::new(*f, r, unresolvable));
                    }
                }
            }
            FilterPlugin::InterPodAffinity => {
                if let Some(s) = &state.inter_pod {
                    if let Err((r, unresolvable)) = inter_pod_affinity::filter(s, pod, node) {
                        return Err(Failure::new(*f, r, unresolvable));
                    }
                }
            }
            FilterPlugin::DynamicResources => {}
        }
    }
    // DynamicResources comes after the default filters (its place in the
    // v1.34 MultiPoint list, after VolumeZone and the volume plugins).
    if let Some(d) = input.dra {
        if let Err((r, unresolvable)) = d.filter(node) {
            return Err(Failure::new(
                FilterPlugin::DynamicResources,
                r,
                unresolvable,
            ));
        }
    }
    Ok(())
}

/// The reasons counted on every node, when the fit index shows a plain
/// pod fits on none and nothing else (a nomination) could change a verdict.
fn rejected_everywhere(input: &CycleInput<'_>, plain: Option<&PlainAsk>) -> Option<[usize; 4]> {
    let (ask, index) = (plain?, input.fit_index?);
    debug_assert_eq!(index, &FitIndex::scan(input.nodes), "fit index out of date");
    if !input.nominated.is_empty() {
        return None;
    }
    index.rejects_everywhere(ask, input.nodes.len())
}

/// Runs one cycle, starting the filter scan at `start`. Returns the
/// decision and the next start index.
pub fn schedule(
    profile: &Profile,
    input: &CycleInput<'_>,
    start: usize,
    rng: &mut RngStream,
) -> (Decision, usize) {
    let nodes = input.nodes;
    let n = nodes.len();
    let mut d = Decision {
        total: n,
        ..Decision::default()
    };
    if n == 0 {
        return (d, 0);
    }
    let state = prefilter(profile, input);
    let want = num_feasible_nodes_to_find(n, profile.percentage_of_nodes_to_score);
    let plain = PlainAsk::of(profile, input, &state);
    if let Some(counts) = rejected_everywhere(input, plain.as_ref()) {
        // What the scan below would find: every node evaluated, each
        // short of something, all of them resolvable in scan order.
        d.evaluated = n;
        d.resolvable = (0..n).map(|k| (start + k) % n).collect();
        if counts.iter().any(|&c| c > 0) {
            d.rejectors.insert(FilterPlugin::NodeResourcesFit);
        }
        for (r, count) in plain_fit::reasons(&counts) {
            *d.reasons.entry(r).or_default() += count;
        }
        return (d, (start + n) % n);
    }
    let mut short_counts = [0usize; 4];
    let mut feasible: Vec<usize> = Vec::new();
    for k in 0..n {
        let i = (start + k) % n;
        d.evaluated += 1;
        if let Some(ask) = plain.filter(|a| a.covers(&nodes[i], input)) {
            let short = ask.shortfall(&nodes[i].resources);
            if short.is_empty() {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            } else {
                d.resolvable.push(i);
                short.count_into(&mut short_counts);
            }
            continue;
        }
        match filter(profile, input, &state, &nodes[i]) {
            Ok(()) => {
                feasible.push(i);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(f) => {
                if !f.unresolvable {
                    d.resolvable.push(i);
                }
                d.rejectors.insert(f.plugin);
                for r in f.reasons {
                    *d.reasons.entry(r).or_default() += 1;
                }
            }
        }
    }
    if short_counts.iter().any(|&c| c > 0) {
        d.rejectors.insert(FilterPlugin::NodeResourcesFit);
    }
    for (r, count) in plain_fit::reasons(&short_counts) {
        *d.reasons.entry(r).or_default() += count;
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
    let totals = score(profile, input, &feasible);
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
    // The top three for the trace: the pick first, then by total and name.
    let mut top: Vec<(usize, i64)> = Vec::with_capacity(4);
    for (&i, &t) in feasible.iter().zip(&totals) {
        if i == pick {
            continue;
        }
        top.push((i, t));
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(2);
    }
    d.ranking = std::iter::once((pick, best))
        .chain(top)
        .map(|(i, t)| (nodes[i].name.clone(), t))
        .collect();
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

/// One plugin's score for one node: as computed, after normalisation, the
/// plugin's weight in the profile, and the product that enters the total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginScore {
    pub raw: i64,
    pub normalized: i64,
    pub weight: i64,
    pub weighted: i64,
}

/// Raw and normalised scores of one plugin over the feasible nodes.
fn plugin_scores(
    plugin: ScorePlugin,
    profile: &Profile,
    input: &CycleInput<'_>,
    feasible: &[usize],
) -> (Vec<i64>, Vec<i64>) {
    let pod = input.pod;
    let nodes = input.nodes;
    let per_node = |f: &dyn Fn(&NodeSnapshot) -> i64| -> Vec<i64> {
        feasible.iter().map(|&i| f(&nodes[i])).collect()
    };
    match plugin {
        ScorePlugin::TaintToleration => {
            let raw = per_node(&|n| taint_toleration::raw_score(&pod.tolerations, &n.taints));
            let mut norm = raw.clone();
            taint_toleration::normalize(&mut norm);
            (raw, norm)
        }
        ScorePlugin::NodeAffinity => {
            let raw = per_node(&|n| {
                let added = profile
                    .added_affinity
                    .as_ref()
                    .map_or(0, |a| node_affinity::preferred_score(a, &n.labels, &n.name));
                added + node_affinity::raw_score(input.spec, &n.labels, &n.name)
            });
            let mut norm = raw.clone();
            node_affinity::normalize(&mut norm);
            (raw, norm)
        }
        ScorePlugin::NodeResourcesFit => {
            let raw = per_node(&|n| {
                node_resources_fit::score(
                    &profile.fit_strategy,
                    &profile.fit_resources,
                    &pod.requests,
                    &n.resources,
                )
            });
            (raw.clone(), raw)
        }
        ScorePlugin::NodeResourcesBalancedAllocation => {
            let raw = per_node(&|n| {
                balanced_allocation::score(&profile.balanced_resources, &pod.requests, &n.resources)
                    .unwrap_or(0)
            });
            (raw.clone(), raw)
        }
        ScorePlugin::ImageLocality => {
            // Each of the pod's images with the number of nodes holding it,
            // looked up once per cycle.
            let images: Vec<(String, i64)> = image_locality::unique_normalized(&pod.images)
                .into_iter()
                .map(|name| {
                    let spread = input.image_spread.get(&name).copied().unwrap_or(1);
                    (name, spread)
                })
                .collect();
            let total_nodes = nodes.len() as i64;
            let raw = per_node(&|node| {
                if node.images.is_empty() {
                    return 0;
                }
                let sum = images
                    .iter()
                    .filter_map(|(name, spread)| {
                        let size = node.images.get(name)?;
                        Some(image_locality::scaled_size(*size, *spread, total_nodes))
                    })
                    .sum();
                image_locality::node_score(sum, pod.images.len())
            });
            (raw.clone(), raw)
        }
        ScorePlugin::PodTopologySpread => {
            let constraints = spread_constraints(profile, pod, input.default_selector, false);
            if constraints.is_empty() {
                return (vec![0; feasible.len()], vec![0; feasible.len()]);
            }
            let require_all =
                !pod.spread.is_empty() || profile.spread_defaulting != SpreadDefaulting::System;
            let (raw, ignored) =
                spread::score(pod, input.spec, &constraints, require_all, nodes, feasible);
            let mut norm = raw.clone();
            spread::normalize(&mut norm, &ignored);
            (raw, norm)
        }
        ScorePlugin::InterPodAffinity => {
            if !inter_pod_affinity::scores_anything(pod, input.counts.with_affinity > 0) {
                return (vec![0; feasible.len()], vec![0; feasible.len()]);
            }
            let (raw, any) = inter_pod_affinity::score(
                pod,
                nodes,
                feasible,
                profile.hard_pod_affinity_weight,
                profile.ignore_preferred_terms_of_existing_pods,
            );
            let mut norm = raw.clone();
            inter_pod_affinity::normalize(&mut norm, any);
            (raw, norm)
        }
    }
}

/// Per feasible node (in `feasible` order), each of the profile's score
/// plugins' results, in the profile's order.
pub fn score_breakdown(
    profile: &Profile,
    input: &CycleInput<'_>,
    feasible: &[usize],
) -> Vec<Vec<PluginScore>> {
    let mut out = vec![Vec::with_capacity(profile.scores.len()); feasible.len()];
    for &(plugin, weight) in &profile.scores {
        let (raw, norm) = plugin_scores(plugin, profile, input, feasible);
        for (k, per) in out.iter_mut().enumerate() {
            per.push(PluginScore {
                raw: raw[k],
                normalized: norm[k],
                weight,
                weighted: norm[k] * weight,
            });
        }
    }
    out
}

/// Weighted totals of the feasible nodes, in `feasible` order.
pub fn score(profile: &Profile, input: &CycleInput<'_>, feasible: &[usize]) -> Vec<i64> {
    let mut totals = vec![0i64; feasible.len()];
    for &(plugin, weight) in &profile.scores {
        let (_, norm) = plugin_scores(plugin, profile, input, feasible);
        for (t, s) in totals.iter_mut().zip(norm) {
            *t += s * weight;
        }
    }
    totals
}

/// Every node's verdict for one pod, as `kubesim explain` shows it.
#[derive(Clone, Debug)]
pub struct NodeVerdict {
    pub name: String,
    pub reasons: Vec<String>,
    /// Empty for infeasible nodes.
    pub scores: Vec<(ScorePlugin, PluginScore)>,
    pub total: i64,
}

/// Filters and scores every node (no sampling), in node order.
pub fn explain(profile: &Profile, input: &CycleInput<'_>) -> Vec<NodeVerdict> {
    let state = prefilter(profile, input);
    let mut feasible = Vec::new();
    let mut out: Vec<NodeVerdict> = input
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let reasons = match filter(profile, input, &state, n) {
                Ok(()) => {
                    feasible.push(i);
                    Vec::new()
                }
                Err(f) => f.reasons.into_iter().map(Cow::into_owned).collect(),
            };
            NodeVerdict {
                name: n.name.clone(),
                reasons,
                scores: Vec::new(),
                total: 0,
            }
        })
        .collect();
    let breakdown = score_breakdown(profile, input, &feasible);
    for (&i, per) in feasible.iter().zip(breakdown) {
        out[i].total = per.iter().map(|p| p.weighted).sum();
        out[i].scores = profile.scores.iter().map(|(p, _)| *p).zip(per).collect();
    }
    out
}
