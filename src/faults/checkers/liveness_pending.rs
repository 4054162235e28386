//! Liveness: at the deadline no pending pod fits a node.
//!
//! A pod pending for more than [`MARGIN`] (unbound, not terminating, for
//! the default scheduler) fits a node, by this checker's own simple fit,
//! when the node has been Ready for [`MARGIN`], is not cordoned, matches
//! the pod's `nodeSelector`, has no `NoSchedule`/`NoExecute` taint the pod
//! does not tolerate, and has room: its allocatable cpu, memory and pod
//! count minus what the unfinished pods bound to it request.
//!
//! Pods this fit cannot judge are skipped: those with affinity, topology
//! spread constraints, host ports, PersistentVolumeClaims, or requests of
//! anything but cpu and memory (the scheduler's other filters decide
//! them).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::read::{is_active, objects_of, repelled, requests, write_ref, Requests};
use super::Checker;
use crate::api::pod::PodPhase;
use crate::api::{Kind, Object};
use crate::faults::observe::Violation;
use crate::model::etcd::EtcdStore;
use crate::model::world::World;
use crate::sim::{SimDuration, SimTime};

const NAME: &str = "liveness-pending";

/// How long a pod may stay pending, and a node must have been Ready,
/// before a fit counts: the scheduler's retry of an unschedulable pod
/// after a cluster change is seconds, its leftover flush 30 s.
pub const MARGIN: SimDuration = SimDuration::from_secs(60);

#[derive(Default)]
pub struct NoPendingThatFits;

/// Whether this checker's fit can judge `pod`.
fn judgeable(pod: &Object) -> bool {
    let Some(body) = pod.as_pod() else {
        return false;
    };
    let api = &body.spec.api;
    let host_port = api
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .any(|p| p.host_port.is_some_and(|h| h > 0));
    let claims = api
        .volumes
        .iter()
        .flatten()
        .any(|v| v.persistent_volume_claim.is_some() || v.ephemeral.is_some());
    let other_resources = body
        .spec
        .requests
        .keys()
        .any(|k| k != "cpu" && k != "memory");
    api.affinity.is_none()
        && api
            .topology_spread_constraints
            .as_ref()
            .is_none_or(Vec::is_empty)
        && !host_port
        && !claims
        && !other_resources
}

/// What is bound where: node → (requests, pods) of its unfinished pods.
fn bound_usage<'a>(pods: &[&'a Arc<Object>]) -> BTreeMap<&'a str, (Requests, i64)> {
    let mut used: BTreeMap<&str, (Requests, i64)> = BTreeMap::new();
    for p in pods {
        let Some(b) = p.as_pod() else { continue };
        let done = matches!(b.status.phase, PodPhase::Succeeded | PodPhase::Failed);
        if let (Some(n), false) = (&b.node_name, done) {
            let u = used.entry(n.as_str()).or_default();
            u.0 = u.0.plus(requests(&b.spec));
            u.1 += 1;
        }
    }
    used
}

/// The uids of unbound, active pods this checker can judge that fit no
/// node now: a workload short of Ready pods by these is short of room,
/// not of liveness (`liveness-workloads` does not count them against it).
///
/// Unlike the pending check, a node counts however recently it became
/// Ready: room there means the shortfall is not for want of room.
pub(super) fn unplaceable(store: &EtcdStore) -> std::collections::BTreeSet<String> {
    let pods: Vec<&Arc<Object>> = objects_of(store, Kind::Pod).collect();
    let used = bound_usage(&pods);
    let nodes: Vec<&Arc<Object>> = objects_of(store, Kind::Node).collect();
    pods.iter()
        .filter(|p| p.as_pod().is_some_and(|b| b.node_name.is_none()) && is_active(p))
        .filter(|p| judgeable(p))
        .filter(|p| {
            let want = p.as_pod().map(|b| requests(&b.spec)).unwrap_or_default();
            !nodes
                .iter()
                .any(|n| fits(p, want, n, used.get(n.meta.name.as_str()), SimTime::MAX))
        })
        .map(|p| p.meta.uid.clone())
        .collect()
}

impl NoPendingThatFits {
    fn check(&self, at: SimTime, store: &EtcdStore, out: &mut Vec<Violation>) {
        let pods: Vec<&Arc<Object>> = objects_of(store, Kind::Pod).collect();
        let used = bound_usage(&pods);
        let nodes: Vec<&Arc<Object>> = objects_of(store, Kind::Node).collect();
        for p in pods {
            let Some(b) = p.as_pod() else { continue };
            let pending = b.node_name.is_none()
                && is_active(p)
                && b.spec.scheduler_name == "default-scheduler"
                && p.meta.creation.after(MARGIN) <= at;
            if !pending || !judgeable(p) {
                continue;
            }
            let want = requests(&b.spec);
            let fit = nodes
                .iter()
                .find(|n| fits(p, want, n, used.get(n.meta.name.as_str()), at));
            if let Some(n) = fit {
                let key = p.key();
                out.push(Violation {
                    checker: NAME,
                    at,
                    objects: vec![key.to_string(), n.key().to_string()],
                    message: format!(
                        "{key} is pending at the liveness deadline but fits node {}",
                        n.meta.name
                    ),
                    records: vec![write_ref(at, &key, p.meta.resource_version)],
                });
            }
        }
    }
}

fn fits(
    pod: &Object,
    want: Requests,
    node: &Object,
    used: Option<&(Requests, i64)>,
    at: SimTime,
) -> bool {
    let (Some(n), Some(b)) = (node.as_node(), pod.as_pod()) else {
        return false;
    };
    let ready_since = n
        .condition("Ready")
        .filter(|c| c.status == "True")
        .map(|c| c.last_transition);
    if ready_since.is_none_or(|t| t.after(MARGIN) > at) || n.unschedulable {
        return false;
    }
    let api = &b.spec.api;
    let selected = api
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| node.meta.labels.get(k) == Some(v));
    let tolerations = api.tolerations.as_deref().unwrap_or(&[]);
    if !selected || repelled(tolerations, &n.taints) {
        return false;
    }
    let (reqs, count) = used.copied().unwrap_or_default();
    let milli = |k: &str| n.allocatable.get(k).map_or(0, |q| q.milli_value());
    reqs.cpu + want.cpu <= milli("cpu")
        && reqs.memory + want.memory <= milli("memory")
        && (count + 1) * 1000 <= milli("pods")
}

impl Checker for NoPendingThatFits {
    fn name(&self) -> &'static str {
        NAME
    }

    fn at_deadline(&mut self, at: SimTime, world: &World, out: &mut Vec<Violation>) {
        self.check(at, &world.etcd, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{bound, node, pod, store};
    use super::*;

    #[test]
    fn a_pending_pod_that_fits_is_caught_and_one_too_big_is_not() {
        let s = |secs: u64| SimTime(secs * 1_000_000_000);
        // Node a: 1000m, 600m used by a bound pod.
        let st = store(vec![
            node("a", 1000, true),
            node("down", 8000, false),
            bound(pod("running", 600, None), "a"),
            pod("small", 400, None),
            pod("big", 500, None),
        ]);
        let mut out = Vec::new();
        // small: 600 + 400 = 1000 ≤ 1000 fits a; big: 1100 > 1000, and
        // the 8-cpu node is not Ready.
        NoPendingThatFits.check(s(120), &st, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].objects, ["Pod/default/small", "Node/a"]);
        // At 30 s the pods are too fresh to judge.
        let mut out = Vec::new();
        NoPendingThatFits.check(s(30), &st, &mut out);
        assert!(out.is_empty());
    }
}
