//! What `kubectl rollout status -w` and `kubectl get endpoints -w` print,
//! as trace records: a client process watching Deployments, StatefulSets
//! and DaemonSets through the apiserver (so it sees what a person at a
//! terminal would, as late as they would) and writing a `RolloutStatus`
//! record each time the line kubectl would print changes, and a
//! `ServiceEndpoints` record each time a Service's ready address count does.
//! The messages are kubectl's status viewers' (`rollout_status.go`).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workload::{body_path, body_str, replicas};
use super::workqueue::WorkQueue;
use crate::api::{Kind, Object};
use crate::sim::SimTime;

/// The kinds the watcher needs.
pub const WATCHED: &[Kind] = &[
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Endpoints,
];

/// The process name in the trace.
pub const PROCESS: &str = "kubectl-watch";

#[derive(Default)]
pub struct RolloutStatusWatcher {
    /// Last line written per object key, so only changes are recorded.
    last: BTreeMap<String, String>,
}

fn st(o: &Object, field: &str) -> i64 {
    body_path(o, &["status", field])
        .and_then(Json::as_i64)
        .unwrap_or(0)
}

/// kubectl's line for a Deployment, and whether the rollout is done.
pub fn deployment_status(d: &Object) -> (String, bool) {
    let name = &d.meta.name;
    if d.meta.generation > st(d, "observedGeneration") {
        return (
            "Waiting for deployment spec update to be observed...".into(),
            false,
        );
    }
    let timed_out = body_path(d, &["status", "conditions"])
        .and_then(Json::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        });
    if timed_out {
        return (
            format!("error: deployment \"{name}\" exceeded its progress deadline"),
            true,
        );
    }
    let want = replicas(d);
    let (updated, total, available) = (
        st(d, "updatedReplicas"),
        st(d, "replicas"),
        st(d, "availableReplicas"),
    );
    if updated < want {
        return (format!("Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated..."), false);
    }
    if total > updated {
        return (format!("Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...", total - updated), false);
    }
    if available < updated {
        return (format!("Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."), false);
    }
    (
        format!("deployment \"{name}\" successfully rolled out"),
        true,
    )
}

pub fn statefulset_status(s: &Object) -> (String, bool) {
    if body_str(s, &["spec", "updateStrategy", "type"], "RollingUpdate") != "RollingUpdate" {
        return (
            "rollout status is only available for RollingUpdate strategy type".into(),
            true,
        );
    }
    let observed = st(s, "observedGeneration");
    if observed == 0 || s.meta.generation > observed {
        return (
            "Waiting for statefulset spec update to be observed...".into(),
            false,
        );
    }
    let want = replicas(s);
    let ready = st(s, "readyReplicas");
    if ready < want {
        return (
            format!("Waiting for {} pods to be ready...", want - ready),
            false,
        );
    }
    let updated = st(s, "updatedReplicas");
    if let Some(p) = body_path(s, &["spec", "updateStrategy", "rollingUpdate", "partition"])
        .and_then(Json::as_i64)
    {
        if updated < want - p {
            return (format!("Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...", want - p), false);
        }
        return (
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
            true,
        );
    }
    let update_rev = body_str(s, &["status", "updateRevision"], "");
    let current_rev = body_str(s, &["status", "currentRevision"], "");
    if update_rev != current_rev {
        return (format!("waiting for statefulset rolling update to complete {updated} pods at revision {update_rev}..."), false);
    }
    (
        format!(
            "statefulset rolling update complete {} pods at revision {current_rev}...",
            st(s, "currentReplicas")
        ),
        true,
    )
}

pub fn daemonset_status(d: &Object) -> (String, bool) {
    let name = &d.meta.name;
    if body_str(d, &["spec", "updateStrategy", "type"], "RollingUpdate") != "RollingUpdate" {
        return (
            "rollout status is only available for RollingUpdate strategy type".into(),
            true,
        );
    }
    if d.meta.generation > st(d, "observedGeneration") {
        return (
            "Waiting for daemon set spec update to be observed...".into(),
            false,
        );
    }
    let desired = st(d, "desiredNumberScheduled");
    let updated = st(d, "updatedNumberScheduled");
    if updated < desired {
        return (format!("Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."), false);
    }
    let available = st(d, "numberAvailable");
    if available < desired {
        return (format!("Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."), false);
    }
    (
        format!("daemon set \"{name}\" successfully rolled out"),
        true,
    )
}

/// Ready and not-ready addresses of an Endpoints object.
pub fn endpoint_counts(e: &Object) -> (usize, usize) {
    let mut ready = 0;
    let mut not_ready = 0;
    for s in body_path(e, &["subsets"])
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        ready += s["addresses"].as_array().map_or(0, Vec::len);
        not_ready += s["notReadyAddresses"].as_array().map_or(0, Vec::len);
    }
    (ready, not_ready)
}

impl Controller for RolloutStatusWatcher {
    fn name(&self) -> &'static str {
        PROCESS
    }

    fn workers(&self) -> usize {
        1
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        let o = ev.object();
        queue.add(&format!(
            "{}/{}/{}",
            o.kind.name(),
            o.meta.namespace,
            o.meta.name
        ));
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let mut parts = key.splitn(3, '/');
        let (Some(kind), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let Some(kind) = Kind::from_name(kind) else {
            return;
        };
        let Some(o) = cx.cache.get(kind, ns, name) else {
            self.last.remove(key);
            return;
        };
        if kind == Kind::Endpoints {
            let (ready, not_ready) = endpoint_counts(o);
            let line = format!("{ready} ready, {not_ready} not ready");
            if self.last.get(key) != Some(&line) {
                self.last.insert(key.to_string(), line);
                cx.record(
                    "ServiceEndpoints",
                    vec![
                        ("service", format!("{ns}/{name}")),
                        ("ready", ready.to_string()),
                        ("notReady", not_ready.to_string()),
                    ],
                );
            }
            return;
        }
        let (line, done) = match kind {
            Kind::Deployment => deployment_status(o),
            Kind::StatefulSet => statefulset_status(o),
            Kind::DaemonSet => daemonset_status(o),
            _ => return,
        };
        if self.last.get(key) != Some(&line) {
            self.last.insert(key.to_string(), line.clone());
            cx.record(
                "RolloutStatus",
                vec![
                    ("object", format!("{}/{ns}/{name}", kind.name())),
                    ("message", line),
                    ("done", done.to_string()),
                ],
            );
        }
    }

    fn reset(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};

    fn obj(y: &str) -> Object {
        load_manifests("t.yaml", y, &mut FieldReport::default()).unwrap()[0].clone()
    }

    #[test]
    fn deployment_lines_follow_kubectl() {
        let base = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  replicas: 10\n  selector: {matchLabels: {app: web}}\n  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: i}]}}\n";
        let with = |status: &str| {
            let mut o = obj(&format!("{base}status: {status}\n"));
            o.meta.generation = 2;
            o
        };
        let d =
            with("{observedGeneration: 2, replicas: 13, updatedReplicas: 5, availableReplicas: 8}");
        assert_eq!(
            deployment_status(&d).0,
            "Waiting for deployment \"web\" rollout to finish: 5 out of 10 new replicas have been updated..."
        );
        let d = with(
            "{observedGeneration: 2, replicas: 12, updatedReplicas: 10, availableReplicas: 9}",
        );
        assert_eq!(
            deployment_status(&d).0,
            "Waiting for deployment \"web\" rollout to finish: 2 old replicas are pending termination..."
        );
        let d = with(
            "{observedGeneration: 2, replicas: 10, updatedReplicas: 10, availableReplicas: 9}",
        );
        assert_eq!(
            deployment_status(&d).0,
            "Waiting for deployment \"web\" rollout to finish: 9 of 10 updated replicas are available..."
        );
        let d = with(
            "{observedGeneration: 2, replicas: 10, updatedReplicas: 10, availableReplicas: 10}",
        );
        assert_eq!(
            deployment_status(&d),
            ("deployment \"web\" successfully rolled out".into(), true)
        );
        let d = with("{observedGeneration: 1}");
        assert_eq!(
            deployment_status(&d).0,
            "Waiting for deployment spec update to be observed..."
        );
    }
}
