//! Liveness: at the deadline every workload has its desired count of
//! Ready pods (active, `Ready` true), counted from the pods in etcd by
//! their controller references, not from the workloads' status:
//!
//! - a ReplicaSet or StatefulSet: `spec.replicas`;
//! - a Deployment: `spec.replicas`, over the pods of the ReplicaSets it
//!   controls (a paused Deployment is not judged: it may be mid-rollout on
//!   purpose);
//! - a DaemonSet: one per Ready node its pods can go to: the template's
//!   `nodeSelector` matches the node's labels and every `NoSchedule` or
//!   `NoExecute` taint is tolerated, by the template or by the tolerations
//!   the DaemonSet controller adds to every daemon pod. A DaemonSet whose
//!   template has affinity is not judged (this checker does not evaluate
//!   affinity) and is said so in no violation: it is skipped.
//!
//! Pods a workload controls that are pending and fit no node (by
//! `liveness-pending`'s own fit) count as present: a cluster too small for
//! its workloads is a capacity plan, not a stuck control plane, and a
//! shrinker must not take "fewer nodes than replicas" for the failure it
//! was shrinking. A pending pod that does fit is `liveness-pending`'s.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;

use super::read::{controller_of, field, is_ready, objects_of, repelled, replicas, write_ref};
use super::Checker;
use crate::api::{Kind, Object};
use crate::faults::observe::Violation;
use crate::model::etcd::EtcdStore;
use crate::model::world::World;
use crate::sim::SimTime;

const NAME: &str = "liveness-workloads";

/// The tolerations `AddOrUpdateDaemonPodTolerations` gives daemon pods.
const DAEMON_TOLERATED: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

#[derive(Default)]
pub struct WorkloadsReady;

impl WorkloadsReady {
    fn check(&self, at: SimTime, store: &EtcdStore, out: &mut Vec<Violation>) {
        // Owner uid → Ready pods it controls.
        let mut ready: BTreeMap<&str, i64> = BTreeMap::new();
        let no_room = super::liveness_pending::unplaceable(store);
        let counted = |p: &Object| is_ready(p) || no_room.contains(&p.meta.uid);
        for p in objects_of(store, Kind::Pod).filter(|p| counted(p)) {
            if let Some(o) = controller_of(p) {
                *ready.entry(o.uid.as_str()).or_default() += 1;
            }
        }
        let count = |uid: &str| ready.get(uid).copied().unwrap_or(0);
        let mut by_deployment: BTreeMap<&str, i64> = BTreeMap::new();
        for rs in objects_of(store, Kind::ReplicaSet) {
            if let Some(d) = controller_of(rs).filter(|o| o.kind == "Deployment") {
                *by_deployment.entry(d.uid.as_str()).or_default() += count(&rs.meta.uid);
            }
        }
        let mut judge = |o: &Object, have: i64, want: i64| {
            if have < want {
                let key = o.key();
                out.push(Violation {
                    checker: NAME,
                    at,
                    objects: vec![key.to_string()],
                    message: format!(
                        "{key} has {have} of {want} pods Ready (or pending with no room) at the liveness deadline"
                    ),
                    records: vec![write_ref(at, &key, o.meta.resource_version)],
                });
            }
        };
        for kind in [Kind::ReplicaSet, Kind::StatefulSet] {
            for o in objects_of(store, kind) {
                judge(o, count(&o.meta.uid), replicas(o));
            }
        }
        for d in objects_of(store, Kind::Deployment) {
            if field(d, &["spec", "paused"]).and_then(|v| v.as_bool()) != Some(true) {
                let have = by_deployment.get(d.meta.uid.as_str()).copied().unwrap_or(0);
                judge(d, have, replicas(d));
            }
        }
        for ds in objects_of(store, Kind::DaemonSet) {
            if let Some(want) = daemon_nodes(ds, store) {
                judge(ds, count(&ds.meta.uid), want);
            }
        }
    }
}

/// How many Ready nodes the DaemonSet's pods can go to; `None` when its
/// template has affinity.
fn daemon_nodes(ds: &Object, store: &EtcdStore) -> Option<i64> {
    let spec = field(ds, &["spec", "template", "spec"])?;
    if spec.get("affinity").is_some_and(|a| !a.is_null()) {
        return None;
    }
    let selector: BTreeMap<String, String> = spec
        .get("nodeSelector")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut tolerations: Vec<core::Toleration> = spec
        .get("tolerations")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    tolerations.extend(DAEMON_TOLERATED.iter().map(|(k, e)| core::Toleration {
        key: Some(k.to_string()),
        operator: Some("Exists".into()),
        effect: Some(e.to_string()),
        ..Default::default()
    }));
    let fits = |n: &&std::sync::Arc<Object>| {
        let Some(body) = n.as_node() else {
            return false;
        };
        body.is_ready()
            && selector
                .iter()
                .all(|(k, v)| n.meta.labels.get(k) == Some(v))
            && !repelled(&tolerations, &body.taints)
    };
    Some(objects_of(store, Kind::Node).filter(fits).count() as i64)
}

impl Checker for WorkloadsReady {
    fn name(&self) -> &'static str {
        NAME
    }

    fn at_deadline(&mut self, at: SimTime, world: &World, out: &mut Vec<Violation>) {
        self.check(at, &world.etcd, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{json_object, node, pod, ready, store};
    use super::*;
    use crate::api::node::Taint;
    use crate::api::object::Body;
    use serde_json::json;

    #[test]
    fn a_deployment_short_of_ready_pods_is_caught_and_a_full_daemonset_is_not() {
        let t0 = SimTime::ZERO;
        let dep = json_object(Kind::Deployment, "web", json!({"spec": {"replicas": 2}}));
        let mut rs = json_object(Kind::ReplicaSet, "web-1", json!({"spec": {"replicas": 2}}));
        rs.meta.owner_references = pod("x", 1, Some(("Deployment", "u-web")))
            .meta
            .owner_references;
        let ds = json_object(
            Kind::DaemonSet,
            "agent",
            json!({"spec": {"template": {"spec": {}}}}),
        );
        // Node b is tainted NoSchedule (untolerated): the daemon wants a only.
        let mut b = node("b", 1000, true);
        if let Body::Node(n) = &mut b.body {
            n.taints.push(Taint {
                key: "gpu".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
                time_added: None,
            });
        }
        let st = store(vec![
            dep,
            rs,
            ds,
            node("a", 1000, true),
            b,
            ready(pod("web-1-a", 1, Some(("ReplicaSet", "u-web-1"))), true, t0),
            ready(
                pod("web-1-b", 1, Some(("ReplicaSet", "u-web-1"))),
                false,
                t0,
            ),
            ready(pod("agent-a", 1, Some(("DaemonSet", "u-agent"))), true, t0),
        ]);
        let mut out = Vec::new();
        WorkloadsReady.check(SimTime(1), &st, &mut out);
        // 1 of 2 Ready: the ReplicaSet and its Deployment; the DaemonSet
        // has its 1 of 1.
        let msgs: Vec<_> = out.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "ReplicaSet/default/web-1 has 1 of 2 pods Ready (or pending with no room) at the liveness deadline",
                "Deployment/default/web has 1 of 2 pods Ready (or pending with no room) at the liveness deadline"
            ]
        );
    }
}
