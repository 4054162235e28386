//! DefaultPreemption: when no node fits a pod, find nodes where evicting
//! lower-priority pods would make room, choose the victims on each as
//! upstream does (as few and as unimportant as possible, sparing pods a
//! PodDisruptionBudget protects where a choice exists), and pick the node
//! by upstream's ordered criteria.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::config::Profile;
use super::node_info::NodeSnapshot;
use super::pod_info::PodInfo;
use super::profile::{filter, prefilter, CycleInput, Decision};
use crate::api::selector::Selector;
use crate::api::Object;
use crate::sim::RngStream;

/// A PodDisruptionBudget as preemption reads it.
#[derive(Clone, Debug)]
pub struct Pdb {
    pub namespace: String,
    /// `None` (or empty) selects nothing.
    pub selector: Option<Selector>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i64,
    /// `status.disruptedPods`: already counted against the budget.
    pub disrupted: BTreeSet<String>,
}

impl Pdb {
    /// From a PodDisruptionBudget object (its status as the disruption
    /// controller last wrote it; none yet means no disruptions allowed).
    pub fn from_object(o: &Object) -> Option<Pdb> {
        let b = crate::api::disruption_budget::DisruptionBudget::read(o)?;
        Some(Pdb {
            namespace: b.namespace,
            selector: b.selector,
            disruptions_allowed: b.status.disruptions_allowed,
            disrupted: b.status.disrupted_pods.into_keys().collect(),
        })
    }
}

/// A node where preemption would let the pod in, and at what cost.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: usize,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

/// Why a pod may not preempt, in upstream's words; `None` if it may.
pub fn ineligible(pod: &PodInfo, nodes: &[NodeSnapshot]) -> Option<&'static str> {
    if pod.never_preempts {
        return Some("not eligible due to preemptionPolicy=Never.");
    }
    if let Some(nom) = &pod.nominated_node {
        if let Some(node) = nodes.iter().find(|n| n.name == *nom) {
            if node
                .pods
                .iter()
                .any(|p| p.priority < pod.priority && p.terminating)
            {
                return Some("not eligible due to a terminating pod on the nominated node.");
            }
        }
    }
    None
}

/// Whether the more important of two pods is `a`: higher priority, then
/// the one that started earlier.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.start_time.cmp(&b.start_time))
}

/// Splits `pods` into those whose eviction would break a budget and those
/// whose would not, spending the budgets in order.
fn split_by_pdb(pods: &[Arc<PodInfo>], pdbs: &[Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i64> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut breaks = false;
        for (i, pdb) in pdbs.iter().enumerate() {
            if pdb.namespace != p.namespace {
                continue;
            }
            let Some(sel) = &pdb.selector else { continue };
            if sel.is_empty() || !sel.matches(&p.labels) {
                continue;
            }
            if pdb.disrupted.contains(&p.name) {
                continue;
            }
            allowed[i] -= 1;
            if allowed[i] < 0 {
                breaks = true;
            }
        }
        if breaks {
            violating.push(p.clone());
        } else {
            fine.push(p.clone());
        }
    }
    (violating, fine)
}

/// Whether the pod passes the filters on `node` as modified, in a cluster
/// that otherwise is `input.nodes`.
fn fits(profile: &Profile, input: &CycleInput<'_>, index: usize, node: &NodeSnapshot) -> bool {
    let cross_node = !input.pod.spread.is_empty()
        || !input.pod.affinity.is_empty()
        || input
            .nodes
            .iter()
            .any(|n| n.pods_with_required_anti_affinity > 0);
    if cross_node {
        // Spread and affinity count pods across the cluster: recompute
        // their state with the node as modified.
        let mut nodes = input.nodes.to_vec();
        nodes[index] = node.clone();
        let changed = CycleInput {
            nodes: &nodes,
            fit_index: None,
            ..*input
        };
        let state = prefilter(profile, &changed);
        filter(profile, &changed, &state, node).is_ok()
    } else {
        let state = prefilter(profile, input);
        filter(profile, input, &state, node).is_ok()
    }
}

/// The victims on node `index`, or `None` if evicting every lower-priority
/// pod there would still not make room.
pub fn select_victims(
    profile: &Profile,
    input: &CycleInput<'_>,
    index: usize,
    pdbs: &[Pdb],
) -> Option<Candidate> {
    let pod = input.pod;
    if input.nodes[index].lowest_priority >= pod.priority {
        return None;
    }
    let mut potential: Vec<Arc<PodInfo>> = input.nodes[index]
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    // Upstream's SelectVictimsOnNode ends here too ("No preemption victims
    // found"); checking before the copy keeps a cluster of equal-priority
    // pods from paying a node copy per potential node.
    if potential.is_empty() {
        return None;
    }
    let mut node = input.nodes[index].clone();
    for p in &potential {
        node.remove_pod(&p.namespace, &p.name);
    }
    if !fits(profile, input, index, &node) {
        return None;
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, fine) = split_by_pdb(&potential, pdbs);
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (group, counts) in [(violating, true), (fine, false)] {
        for p in group {
            node.add_pod(p.clone());
            if !fits(profile, input, index, &node) {
                node.remove_pod(&p.namespace, &p.name);
                victims.push(p);
                if counts {
                    pdb_violations += 1;
                }
            }
        }
    }
    victims.sort_by(|a, b| more_important(a, b));
    Some(Candidate {
        node: index,
        victims,
        pdb_violations,
    })
}

/// Whether the scheduler's fit index shows no pod anywhere of lower
/// priority than the preemptor, so no node has a victim to offer.
fn nothing_lower(input: &CycleInput<'_>) -> bool {
    input
        .fit_index
        .is_some_and(|f| f.lowest_priority() >= input.pod.priority)
}

/// On how many of the potential nodes preemption's dry run gets as far as
/// the filters: those holding a pod of lower priority than the preemptor
/// (upstream's `SelectVictimsOnNode` returns before filtering anywhere
/// else), none if the pod may not preempt at all. This is what the dry run
/// costs the modelled scheduler.
pub fn dry_run_nodes(input: &CycleInput<'_>, potential: &[usize]) -> usize {
    if ineligible(input.pod, input.nodes).is_some() || nothing_lower(input) {
        return 0;
    }
    potential
        .iter()
        .filter(|&&i| input.nodes[i].lowest_priority < input.pod.priority)
        .count()
}

/// How many candidates a preemption looks for among `n` potential nodes.
pub fn num_candidates(profile: &Profile, n: usize) -> usize {
    let args = profile.preemption.clone().unwrap_or_default();
    let pct = (n as i64 * args.min_candidate_nodes_percentage / 100) as usize;
    pct.max(args.min_candidate_nodes_absolute as usize).min(n)
}

/// Orders candidates by upstream's criteria; the first is the choice.
fn better(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let highest = |c: &Candidate| c.victims.first().map_or(i32::MIN, |v| v.priority);
    let sum = |c: &Candidate| -> i128 {
        c.victims
            .iter()
            .map(|v| v.priority as i128 + i32::MAX as i128 + 1)
            .sum()
    };
    // Among the highest-priority victims, the earliest start; later is better.
    let earliest = |c: &Candidate| {
        let top = highest(c);
        c.victims
            .iter()
            .filter(|v| v.priority == top)
            .map(|v| v.start_time)
            .min()
    };
    a.pdb_violations
        .cmp(&b.pdb_violations)
        .then(highest(a).cmp(&highest(b)))
        .then(sum(a).cmp(&sum(b)))
        .then(a.victims.len().cmp(&b.victims.len()))
        .then(match (earliest(a), earliest(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
}

/// Runs preemption after a failed cycle: the chosen candidate, or why none.
pub fn preempt(
    profile: &Profile,
    input: &CycleInput<'_>,
    decision: &Decision,
    pdbs: &[Pdb],
    rng: &mut RngStream,
) -> Result<Candidate, String> {
    let potential = &decision.resolvable;
    if potential.is_empty() {
        return Err(diagnosis(decision.total, 0));
    }
    let offset = rng.range_inclusive(0, potential.len() as u64 - 1) as usize;
    preempt_from(profile, input, decision, pdbs, offset)
}

/// [`preempt`] with the dry run starting at `offset` among the potential
/// nodes (a run draws it from the scheduler's stream; `explain` uses 0).
pub fn preempt_from(
    profile: &Profile,
    input: &CycleInput<'_>,
    decision: &Decision,
    pdbs: &[Pdb],
    offset: usize,
) -> Result<Candidate, String> {
    if let Some(why) = ineligible(input.pod, input.nodes) {
        return Err(why.to_string());
    }
    let potential = &decision.resolvable;
    if potential.is_empty() {
        return Err(diagnosis(decision.total, 0));
    }
    if nothing_lower(input) {
        // Every node's SelectVictimsOnNode would find no victim.
        return Err(diagnosis(decision.total, potential.len()));
    }
    let want = num_candidates(profile, potential.len());
    let mut candidates: Vec<Candidate> = Vec::new();
    for k in 0..potential.len() {
        let i = potential[(offset + k) % potential.len()];
        if let Some(c) = select_victims(profile, input, i, pdbs) {
            candidates.push(c);
            if candidates.len() >= want {
                break;
            }
        }
    }
    // The first best in scan order wins ties, as upstream's stable pick does.
    let mut best: Option<Candidate> = None;
    for c in candidates {
        match &best {
            Some(b) if better(&c, b) != std::cmp::Ordering::Less => {}
            _ => best = Some(c),
        }
    }
    best.ok_or_else(|| diagnosis(decision.total, potential.len()))
}

/// Upstream's message when preemption finds no candidate: nodes no
/// eviction could help, and nodes where the victims would not be enough.
fn diagnosis(total: usize, resolvable: usize) -> String {
    let mut parts = Vec::new();
    if total > resolvable {
        parts.push(format!(
            "{} Preemption is not helpful for scheduling",
            total - resolvable
        ));
    }
    if resolvable > 0 {
        parts.push(format!(
            "{resolvable} No preemption victims found for incoming pod"
        ));
    }
    parts.sort();
    format!("0/{total} nodes are available: {}.", parts.join(", "))
}
