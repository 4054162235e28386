//! Scale-up: which pending pods need a new node, and how many nodes of a
//! group would take them.
//!
//! As upstream's orchestrator does: pending pods are grouped by owner and
//! spec (pods of one ReplicaSet are one question, asked once); those that
//! fit on a registered node or on an upcoming one (asked for, not yet
//! Ready) are left to the scheduler; for the rest, each group's binpacking
//! estimate places them, largest first, onto template nodes of the group's
//! machine shape, up to its maximum size.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::config::MachineShape;
use super::view::{ClusterView, PodRef};
use crate::api::Kind;
use crate::controllers::cache::Cache;
use crate::scheduler::config::Profile;
use crate::scheduler::profile::NodeSnapshot;
use crate::scheduler::resources::{CPU, MEMORY};

/// Pods alike for scheduling: the same controller and the same spec.
pub struct Equivalence {
    pub pods: Vec<PodRef>,
}

/// The pending pods the scheduler marked unschedulable, in equivalence
/// groups in the order their first pod sorts.
pub fn equivalence_groups(view: &ClusterView, cache: &Cache) -> Vec<Equivalence> {
    let mut out: Vec<Equivalence> = Vec::new();
    let mut by_key: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for key in view.unschedulable() {
        let Some(obj) = cache.get(Kind::Pod, &key.namespace, &key.name) else {
            continue;
        };
        let Some(pod) = PodRef::new(obj) else {
            continue;
        };
        let owner = crate::controllers::workload::controller_ref(obj)
            .map(|o| o.uid.clone())
            .unwrap_or_else(|| obj.meta.uid.clone());
        // Pods made from one template share one spec: the same allocation
        // means the same spec (a lookup key only; never iterated in its order).
        let k = (owner, Arc::as_ptr(&pod.spec) as usize);
        match by_key.get(&k) {
            Some(&g) => out[g].pods.push(pod),
            None => {
                by_key.insert(k, out.len());
                out.push(Equivalence { pods: vec![pod] });
            }
        }
    }
    out
}

/// Places what fits on `destinations` (registered and upcoming nodes) and
/// returns the pods that fit nowhere: upstream's `FilterOutSchedulable`.
/// Once one pod of a group fits nowhere, the rest of its group would not
/// either.
pub fn filter_out_schedulable(
    view: &mut ClusterView,
    profile: &Profile,
    groups: Vec<Equivalence>,
    destinations: &[usize],
) -> Vec<Equivalence> {
    let mut left = Vec::new();
    for g in groups {
        let mut hint = None;
        let mut rest = Vec::new();
        let mut pods = g.pods.into_iter();
        for pod in pods.by_ref() {
            match view.find_fit(profile, &pod, destinations.iter().copied(), hint) {
                Some(i) => {
                    view.place(&pod, i);
                    hint = Some(i);
                }
                None => {
                    rest.push(pod);
                    break;
                }
            }
        }
        rest.extend(pods);
        if !rest.is_empty() {
            left.push(Equivalence { pods: rest });
        }
    }
    left
}

/// The name every template node starts with.
pub const TEMPLATE_PREFIX: &str = "template-node-for-";

/// A template node of `group`'s shape, as the group's new machines would
/// register: `template-node-for-<group>-<use>` where `use` tells an
/// upcoming node (`upcoming-<n>`), the estimator's probe (`probe`) and its
/// new nodes (`e-<n>`) apart, so no two share a hostname (a topology
/// domain) within one loop.
pub fn template_node(shape: &MachineShape, group: &str, use_: &str) -> NodeSnapshot {
    let name = format!("{TEMPLATE_PREFIX}{group}-{use_}");
    let mut labels = shape.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), name.clone());
    let mut node = NodeSnapshot::new(&name, labels, shape.allocatable.clone());
    node.taints = shape.taints.clone();
    node
}

/// What one group would do for the pending pods.
pub struct ScaleUpOption {
    pub group: u32,
    pub nodes: u32,
    /// The pods the new nodes would take.
    pub pods: Vec<PodRef>,
}

/// The binpacking estimate of how many of `shape`'s nodes (at most
/// `limit`) the pending pods need, and which pods they take. Pods go
/// largest first (CPU and memory as shares of the machine), each onto
/// the newest template node, else an earlier one, else a new node.
pub fn estimate(
    view: &mut ClusterView,
    profile: &Profile,
    group: u32,
    group_name: &str,
    shape: &MachineShape,
    pending: &[Equivalence],
    limit: u32,
) -> Option<ScaleUpOption> {
    let mark = view.mark();
    let cpu = shape.allocatable.get(CPU).copied().unwrap_or(0).max(1) as f64;
    let mem = shape.allocatable.get(MEMORY).copied().unwrap_or(0).max(1) as f64;
    let score = |p: &PodRef| {
        let r = &p.info.requests.plain;
        r.cpu as f64 / cpu + r.memory as f64 / mem
    };
    let mut order: Vec<&Equivalence> = pending.iter().collect();
    // Stable: equal scores keep their order.
    order.sort_by(|a, b| score(&b.pods[0]).total_cmp(&score(&a.pods[0])));
    let mut new_nodes: Vec<usize> = Vec::new();
    let mut helped = Vec::new();
    for eq in order {
        // A pod that fits no empty template node is not this group's to help.
        let probe = view.add_template(template_node(shape, group_name, "probe"));
        let fits_empty = view.fits(profile, &eq.pods[0], probe);
        view.revert_to((view.mark().0, probe));
        if !fits_empty {
            continue;
        }
        for pod in &eq.pods {
            let last = new_nodes.last().copied();
            let at = match view.find_fit(profile, pod, new_nodes.iter().rev().copied(), last) {
                Some(i) => Some(i),
                None if (new_nodes.len() as u32) < limit => {
                    let use_ = format!("e-{}", new_nodes.len());
                    let i = view.add_template(template_node(shape, group_name, &use_));
                    new_nodes.push(i);
                    view.fits(profile, pod, i).then_some(i)
                }
                None => None,
            };
            match at {
                Some(i) => {
                    view.place(pod, i);
                    helped.push(pod.clone());
                }
                None => break,
            }
        }
    }
    // Only nodes that took a pod count (upstream's `newNodesWithPods`): a
    // node added for a pod that then did not fit it is not asked for.
    let used = new_nodes.iter().filter(|&&i| view.has_pods(i)).count() as u32;
    view.revert_to(mark);
    (used > 0 && !helped.is_empty()).then_some(ScaleUpOption {
        group,
        nodes: used,
        pods: helped,
    })
}
