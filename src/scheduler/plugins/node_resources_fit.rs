//! NodeResourcesFit: the filter (does the pod fit in what is left?) and the
//! score with its three strategies, LeastAllocated (the default),
//! MostAllocated (bin packing) and RequestedToCapacityRatio (a shape).

use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::framework::{ResourceWeight, MAX_NODE_SCORE};
use crate::scheduler::queueing_hint::QueueingHint;
use std::borrow::Cow;

use crate::scheduler::resources::{
    is_scalar, NodeResources, PodRequests, CPU, EPHEMERAL_STORAGE, MEMORY,
};

/// How NodeResourcesFit scores.
#[derive(Clone, Debug, PartialEq)]
pub enum ScoringStrategy {
    LeastAllocated,
    MostAllocated,
    /// Points of (utilization 0..=100, score 0..=10), utilizations increasing.
    RequestedToCapacityRatio {
        shape: Vec<(i64, i64)>,
    },
}

/// (allocatable, requested after placing the pod) of `resource` on `node`,
/// or `None` when the resource does not count: the pod asks for none of a
/// scalar resource, or the node has none of it.
pub fn allocatable_and_requested(
    resource: &str,
    pod: &PodRequests,
    node: &NodeResources,
    use_requested: bool,
) -> Option<(i64, i64)> {
    let pod_req = pod.for_scoring(resource, use_requested);
    if is_scalar(resource) && pod_req == 0 {
        return None;
    }
    let alloc = node.allocatable(resource);
    if alloc == 0 {
        return None;
    }
    Some((
        alloc,
        node.requested_for_scoring(resource, use_requested) + pod_req,
    ))
}

/// The node's score under `strategy` for the weighted `resources`.
pub fn score(
    strategy: &ScoringStrategy,
    resources: &[ResourceWeight],
    pod: &PodRequests,
    node: &NodeResources,
) -> i64 {
    let pairs: Vec<(i64, i64, i64)> = resources
        .iter()
        .filter_map(|r| {
            allocatable_and_requested(&r.name, pod, node, false)
                .map(|(alloc, req)| (alloc, req, r.weight))
        })
        .collect();
    match strategy {
        ScoringStrategy::LeastAllocated => weighted_floor(&pairs, |alloc, req| {
            if req > alloc {
                0
            } else {
                (alloc - req) * MAX_NODE_SCORE / alloc
            }
        }),
        ScoringStrategy::MostAllocated => {
            weighted_floor(&pairs, |alloc, req| req.min(alloc) * MAX_NODE_SCORE / alloc)
        }
        ScoringStrategy::RequestedToCapacityRatio { shape } => {
            let scaled: Vec<(i64, i64)> = shape
                .iter()
                .map(|(u, s)| (*u, s * (MAX_NODE_SCORE / 10)))
                .collect();
            let (mut sum, mut weights) = (0i64, 0i64);
            for (alloc, req, w) in pairs {
                let s = if req > alloc {
                    broken_linear(&scaled, 100)
                } else {
                    broken_linear(&scaled, req * 100 / alloc)
                };
                if s > 0 {
                    sum += s * w;
                    weights += w;
                }
            }
            if weights == 0 {
                0
            } else {
                (sum as f64 / weights as f64).round() as i64
            }
        }
    }
}

/// Σ score·weight / Σ weight, floored; 0 without weights.
fn weighted_floor(pairs: &[(i64, i64, i64)], per: impl Fn(i64, i64) -> i64) -> i64 {
    let (mut sum, mut weights) = (0i64, 0i64);
    for &(alloc, req, w) in pairs {
        sum += per(alloc, req) * w;
        weights += w;
    }
    if weights == 0 {
        0
    } else {
        sum / weights
    }
}

/// The piecewise-linear function through `shape` (utilization, score),
/// flat before the first point and after the last, integer arithmetic.
pub fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            if i == 0 {
                return s;
            }
            let (u0, s0) = shape[i - 1];
            return s0 + (s - s0) * (p - u0) / (u - u0);
        }
    }
    shape.last().map(|&(_, s)| s).unwrap_or(0)
}

/// The filter: upstream's reasons for every resource that does not fit,
/// `Too many pods` first, then cpu, memory, ephemeral storage, extended.
pub fn insufficient(pod: &PodRequests, node: &NodeResources) -> Vec<Cow<'static, str>> {
    let mut reasons = Vec::new();
    if node.allocatable.has_pods && node.pods + 1 > node.allocatable.pods {
        reasons.push(Cow::Borrowed("Too many pods"));
    }
    for (resource, want) in pod.plain.entries() {
        if want == 0 {
            continue;
        }
        let free = node.allocatable.get(resource) - node.requested.get(resource);
        if want > free {
            reasons.push(insufficient_reason(resource));
        }
    }
    reasons
}

/// `Insufficient <resource>`; the common resources' texts are static, so a
/// cycle that rejects thousands of full nodes allocates no message per node.
fn insufficient_reason(resource: &str) -> Cow<'static, str> {
    match resource {
        CPU => Cow::Borrowed("Insufficient cpu"),
        MEMORY => Cow::Borrowed("Insufficient memory"),
        EPHEMERAL_STORAGE => Cow::Borrowed("Insufficient ephemeral-storage"),
        other => Cow::Owned(format!("Insufficient {other}")),
    }
}

/// Queueing hint for Pod/Delete: a deleted pod frees room only if it was
/// on a node or nominated to one (`isSchedulableAfterPodEvent`); any such
/// deletion may help, whatever it requested.
pub fn hint_after_pod_event(ev: &QueuedEvent) -> QueueingHint {
    match (ev.old_pod(), ev.new_pod()) {
        (Some((deleted, node)), None) => {
            QueueingHint::from_bool(node.is_some() || deleted.nominated_node.is_some())
        }
        _ => QueueingHint::QueueSkip,
    }
}

/// Queueing hint for Node/Add and Node/UpdateNodeAllocatable
/// (`isSchedulableAfterNodeChange`): skip unless the pod would fit the node
/// empty, and, for an update, unless the allowed pod count or the
/// allocatable of a resource the pod requests grew.
pub fn hint_after_node_change(pod: &PodRequests, ev: &QueuedEvent) -> QueueingHint {
    let Some(new) = ev.new_node() else {
        return QueueingHint::QueueSkip;
    };
    let empty = NodeResources {
        allocatable: new.resources.allocatable.clone(),
        ..NodeResources::default()
    };
    if !insufficient(pod, &empty).is_empty() {
        return QueueingHint::QueueSkip;
    }
    let Some(old) = ev.old_node() else {
        return QueueingHint::Queue;
    };
    let (a, b) = (&old.resources.allocatable, &new.resources.allocatable);
    let allowed = |r: &crate::scheduler::resources::Res| if r.has_pods { r.pods } else { i64::MAX };
    if allowed(b) > allowed(a) {
        return QueueingHint::Queue;
    }
    let grew = pod
        .plain
        .entries()
        .any(|(resource, want)| want > 0 && b.get(resource) > a.get(resource));
    QueueingHint::from_bool(grew)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_linear_is_flat_outside_its_points() {
        let shape = [(10, 1), (90, 9)];
        assert_eq!(broken_linear(&shape, -10), 1);
        assert_eq!(broken_linear(&shape, 19), 1);
        assert_eq!(broken_linear(&shape, 20), 2);
        assert_eq!(broken_linear(&shape, 110), 9);
    }
}
