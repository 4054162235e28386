//! Scale-down planning: which nodes are unneeded.
//!
//! A node of an autoscaled group is unneeded when its utilisation (the
//! larger of its CPU and memory requests over allocatable; GPUs alone on a
//! GPU node) is under the threshold, every pod that would have to move may
//! be moved (upstream's drainability rules), and each of them fits on some
//! other node with the scheduler's filters. Pods placed in this way stay
//! placed for the rest of the loop, so two unneeded nodes never count on
//! the same free room.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::view::{ClusterView, PodRef};
use crate::api::disruption_budget::DisruptionBudget;
use crate::api::{Kind, Object};
use crate::controllers::cache::Cache;
use crate::scheduler::profile::NodeSnapshot;
use crate::sim::{SimDuration, SimTime};

pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
pub const SAFE_TO_EVICT_LOCAL_VOLUMES: &str =
    "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";
pub const GPU: &str = "nvidia.com/gpu";

/// Why a pod keeps its node: upstream's `BlockingPodReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocker {
    NotReplicated,
    UnmovableKubeSystemPod,
    LocalStorageRequested,
    NotSafeToEvictAnnotation,
    NotEnoughPdb,
}

impl Blocker {
    pub fn as_str(self) -> &'static str {
        match self {
            Blocker::NotReplicated => "NotReplicated",
            Blocker::UnmovableKubeSystemPod => "UnmovableKubeSystemPod",
            Blocker::LocalStorageRequested => "LocalStorageRequested",
            Blocker::NotSafeToEvictAnnotation => "NotSafeToEvictAnnotation",
            Blocker::NotEnoughPdb => "NotEnoughPdb",
        }
    }
}

/// The requested share of the node, as the autoscaler measures it.
pub fn utilization(node: &NodeSnapshot) -> f64 {
    let r = &node.resources;
    let share = |used: i64, alloc: i64| match alloc {
        a if a > 0 => used as f64 / a as f64,
        _ => 0.0,
    };
    let gpus = r.allocatable.get(GPU);
    if gpus > 0 {
        return share(r.requested.get(GPU), gpus);
    }
    share(r.requested.cpu, r.allocatable.cpu).max(share(r.requested.memory, r.allocatable.memory))
}

/// The pods a node's removal would move, and the DaemonSet pods evicted
/// with it (best effort, `--daemonset-eviction-for-occupied-nodes`).
#[derive(Default)]
pub struct PodsToMove {
    pub movable: Vec<PodRef>,
    pub daemon_set: Vec<Arc<Object>>,
    /// The budgets the move would spend (one entry per disruption).
    spends: Vec<usize>,
}

/// The budgets of the cluster, with what the loop has already spent.
pub struct Budgets {
    pdbs: Vec<DisruptionBudget>,
    left: Vec<i64>,
}

impl Budgets {
    pub fn new(cache: &Cache) -> Budgets {
        let pdbs: Vec<DisruptionBudget> = cache
            .list_all(Kind::PodDisruptionBudget)
            .filter_map(|o| DisruptionBudget::read(o))
            .collect();
        let left = pdbs.iter().map(|p| p.status.disruptions_allowed).collect();
        Budgets { pdbs, left }
    }

    /// Spends what a planned removal's moves take from the budgets.
    pub fn spend(&mut self, pods: &PodsToMove) {
        for &b in &pods.spends {
            self.left[b] -= 1;
        }
    }

    fn covering(&self, pod: &Object) -> Vec<usize> {
        (0..self.pdbs.len())
            .filter(|&i| self.pdbs[i].selects(pod))
            .collect()
    }
}

/// Which pods of `node` would move, or why the node must stay (a budget
/// counts what earlier removals of the loop spent).
pub fn pods_to_move(
    node: &NodeSnapshot,
    cache: &Cache,
    budgets: &Budgets,
    cfg: &super::config::AutoscalerConfig,
    now: SimTime,
) -> Result<PodsToMove, (Blocker, String)> {
    let (skip_system, skip_local_storage) = (
        cfg.skip_nodes_with_system_pods,
        cfg.skip_nodes_with_local_storage,
    );
    let mut out = PodsToMove::default();
    for info in &node.pods {
        let Some(obj) = cache.get(Kind::Pod, &info.namespace, &info.name) else {
            continue;
        };
        let Some(body) = obj.as_pod() else { continue };
        let who = format!("{}/{}", info.namespace, info.name);
        if obj
            .meta
            .annotations
            .contains_key("kubernetes.io/config.mirror")
            || body.is_terminal()
            || long_terminating(obj, now)
        {
            continue;
        }
        let owner = crate::controllers::workload::controller_ref(obj);
        if owner.is_some_and(|o| o.kind == "DaemonSet") {
            out.daemon_set.push(obj.clone());
            continue;
        }
        let annotation = obj.meta.annotations.get(SAFE_TO_EVICT).map(String::as_str);
        let covering = budgets.covering(obj);
        if annotation != Some("true") {
            let replicated = owner.is_some_and(|o| {
                matches!(
                    o.kind.as_str(),
                    "ReplicationController" | "Job" | "ReplicaSet" | "StatefulSet"
                )
            });
            if !replicated {
                return Err((Blocker::NotReplicated, who));
            }
            if skip_system && info.namespace == "kube-system" && covering.is_empty() {
                return Err((Blocker::UnmovableKubeSystemPod, who));
            }
            if skip_local_storage && has_local_storage(obj, &body.spec.api) {
                return Err((Blocker::LocalStorageRequested, who));
            }
            if annotation == Some("false") {
                return Err((Blocker::NotSafeToEvictAnnotation, who));
            }
        }
        for &b in &covering {
            let already = out.spends.iter().filter(|&&s| s == b).count() as i64;
            if budgets.left[b] - already < 1 {
                return Err((Blocker::NotEnoughPdb, who));
            }
            out.spends.push(b);
        }
        out.movable.extend(PodRef::new(obj));
    }
    Ok(out)
}

/// A pod still terminating 30 s past its grace period
/// (`PodLongTerminatingExtraThreshold`): its node is gone or stuck, and
/// the autoscaler no longer counts it as a pod to move.
fn long_terminating(pod: &Object, now: SimTime) -> bool {
    let grace = pod.meta.deletion_grace_seconds.unwrap_or(0).max(0) as u64;
    pod.meta
        .deletion
        .is_some_and(|d| d.after(SimDuration::from_secs(grace + 30)) < now)
}

/// HostPath and disk-backed emptyDir volumes, unless the pod names them
/// in `safe-to-evict-local-volumes`.
fn has_local_storage(obj: &Object, spec: &k8s_openapi::api::core::v1::PodSpec) -> bool {
    let allowed: Vec<&str> = obj
        .meta
        .annotations
        .get(SAFE_TO_EVICT_LOCAL_VOLUMES)
        .map(|s| s.split(',').map(str::trim).collect())
        .unwrap_or_default();
    spec.volumes.iter().flatten().any(|v| {
        let local = v.host_path.is_some()
            || v.empty_dir
                .as_ref()
                .is_some_and(|e| e.medium.as_deref() != Some("Memory"));
        local && !allowed.contains(&v.name.as_str())
    })
}

/// A node that could go, and what going would move.
pub struct Removable {
    pub node: String,
    pub utilization: f64,
    pub pods: PodsToMove,
}

/// Tries the removal of node `i`: every movable pod onto another node of
/// `destinations`. The placements stay (for the loop) if it succeeds.
pub fn simulate_removal(
    view: &mut ClusterView,
    profile: &crate::scheduler::config::Profile,
    i: usize,
    pods: PodsToMove,
    destinations: &[usize],
) -> Result<Removable, String> {
    let mark = view.mark();
    let node = view.nodes()[i].name.clone();
    let util = utilization(&view.nodes()[i]);
    let mut hint = None;
    for pod in &pods.movable {
        let others = destinations.iter().copied().filter(|&d| d != i);
        match view.find_fit(profile, pod, others, hint) {
            Some(d) if d != i => {
                view.place(pod, d);
                hint = Some(d);
            }
            _ => {
                view.revert_to(mark);
                return Err(format!(
                    "pod {}/{} can't be rescheduled",
                    pod.info.namespace, pod.info.name
                ));
            }
        }
    }
    Ok(Removable {
        node,
        utilization: util,
        pods,
    })
}

/// When each currently unneeded node became so.
#[derive(Default)]
pub struct Unneeded {
    since: BTreeMap<String, SimTime>,
}

impl Unneeded {
    /// Replaces the set with `now_unneeded`, keeping earlier start times.
    pub fn update(&mut self, now_unneeded: &[String], now: SimTime) {
        let mut next = BTreeMap::new();
        for n in now_unneeded {
            next.insert(n.clone(), self.since.get(n).copied().unwrap_or(now));
        }
        self.since = next;
    }

    pub fn since(&self, node: &str) -> Option<SimTime> {
        self.since.get(node).copied()
    }

    pub fn contains(&self, node: &str) -> bool {
        self.since.contains_key(node)
    }

    pub fn remove(&mut self, node: &str) {
        self.since.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::pod_info::PodInfo;
    use crate::scheduler::resources::{PodRequests, Res};

    fn node(alloc: &[(&str, i64)], used: &[(&str, i64)]) -> NodeSnapshot {
        let a = alloc.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut n = NodeSnapshot::new("n", Default::default(), a);
        let u = used.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let requests = PodRequests {
            plain: Res::from_amounts(&u),
            ..Default::default()
        };
        n.add_pod(Arc::new(PodInfo::with_requests(requests)));
        n
    }

    #[test]
    fn utilization_is_the_larger_share_and_gpus_alone_on_a_gpu_node() {
        // 1 of 4 CPUs, 6 of 8 GiB: memory's 0.75 decides.
        let n = node(
            &[("cpu", 4000), ("memory", 8 << 30)],
            &[("cpu", 1000), ("memory", 6 << 30)],
        );
        assert_eq!(utilization(&n), 0.75);
        // A GPU node counts its GPUs only: 1 of 4, however busy its CPUs.
        let g = node(
            &[("cpu", 4000), ("memory", 8 << 30), (GPU, 4)],
            &[("cpu", 4000), (GPU, 1)],
        );
        assert_eq!(utilization(&g), 0.25);
    }

    #[test]
    fn unneeded_keeps_when_a_node_first_became_so() {
        let (t1, t2) = (SimTime(1), SimTime(2));
        let mut u = Unneeded::default();
        u.update(&["a".into(), "b".into()], t1);
        u.update(&["a".into()], t2);
        assert_eq!((u.since("a"), u.since("b")), (Some(t1), None));
        u.update(&["a".into(), "b".into()], t2);
        assert_eq!(u.since("b"), Some(t2));
    }
}
