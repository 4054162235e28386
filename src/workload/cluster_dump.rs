//! A dump of a live cluster (`kubectl get nodes,deployments,statefulsets,
//! daemonsets,jobs,services,pods,… -o yaml`, one `List` or a stream of
//! documents) as a scenario's starting point: its Nodes become simulated
//! nodes with kubelets (see the loader's `node_objects`), and its
//! workloads are re-applied as a person would apply their manifests:
//! without status and without what the apiserver and the controllers wrote.
//!
//! What is left out: objects a controller owns (ReplicaSets of a
//! Deployment, a Job's or ReplicaSet's pods: their controllers make them
//! again), and what only the control plane writes (Events, Endpoints,
//! EndpointSlices, Leases, ControllerRevisions). What is cleared: `status`
//! (but a Node's, which carries its capacity), the server's metadata
//! (uid, resourceVersion, creationTimestamp, generation, managedFields), a
//! pod's `spec.nodeName` (the simulated scheduler places it) and a
//! Service's allocated cluster IPs.

use crate::api::manifest::remove_at;
use crate::api::yaml::{Node, Resolved, Value};

/// Kinds only the control plane writes.
const CONTROL_PLANE_KINDS: &[&str] = &[
    "Event",
    "Endpoints",
    "EndpointSlice",
    "Lease",
    "ControllerRevision",
];

/// Server-written metadata fields.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// What the dump held and what was kept of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpCounts {
    pub kept: u64,
    /// Owned by a controller, which makes them again.
    pub owned: u64,
    /// Written by the control plane only.
    pub control_plane: u64,
}

/// The documents to apply, from the dump's documents.
pub fn sanitise(docs: Vec<Node>) -> (Vec<Node>, DumpCounts) {
    let mut out = Vec::new();
    let mut counts = DumpCounts::default();
    for doc in docs.into_iter().flat_map(items) {
        let kind = scalar(&doc, "kind").unwrap_or_default();
        if CONTROL_PLANE_KINDS.contains(&kind.as_str()) {
            counts.control_plane += 1;
            continue;
        }
        if controlled(&doc) {
            counts.owned += 1;
            continue;
        }
        out.push(strip(doc, &kind));
        counts.kept += 1;
    }
    (out, counts)
}

/// A `List`'s items, or the document itself.
fn items(doc: Node) -> Vec<Node> {
    if scalar(&doc, "kind").as_deref() != Some("List") {
        return vec![doc];
    }
    match doc.get("items").map(|n| n.value.clone()) {
        Some(Value::Seq(items)) => items,
        _ => Vec::new(),
    }
}

fn scalar(doc: &Node, key: &str) -> Option<String> {
    doc.get(key).and_then(|n| n.as_str()).map(str::to_string)
}

/// Whether an owner reference says `controller: true`.
fn controlled(doc: &Node) -> bool {
    let Some(Value::Seq(refs)) = doc
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .map(|n| &n.value)
    else {
        return false;
    };
    refs.iter()
        .any(|r| r.get("controller").and_then(Node::resolve) == Some(Resolved::Bool(true)))
}

/// Labels the Job controller sets on a Job and its pod template.
const JOB_CONTROLLER_LABELS: &[&str] = &[
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
];

/// The scalar at `path`, if there is one.
fn scalar_at(doc: &Node, path: &[&str]) -> Option<String> {
    let mut at = doc;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().map(str::to_string)
}

/// The node at a dotted `path` of mapping keys, for editing.
fn node_at_mut<'a>(doc: &'a mut Node, path: &str) -> Option<&'a mut Node> {
    let mut at = doc;
    for key in path.split('.') {
        let Value::Map(pairs) = &mut at.value else {
            return None;
        };
        at = pairs
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)?;
    }
    Some(at)
}

fn strip(mut doc: Node, kind: &str) -> Node {
    if kind != "Node" {
        remove_at(&mut doc, "status");
    }
    for f in SERVER_METADATA {
        remove_at(&mut doc, &format!("metadata.{f}"));
    }
    match kind {
        "Pod" => {
            remove_at(&mut doc, "spec.nodeName");
        }
        // An allocated address is the apiserver's; `None` (headless) is
        // the author's and stays.
        "Service" if scalar_at(&doc, &["spec", "clusterIP"]).as_deref() != Some("None") => {
            remove_at(&mut doc, "spec.clusterIP");
            remove_at(&mut doc, "spec.clusterIPs");
        }
        // The Job controller's selector and labels: a create that carries
        // them without `manualSelector` is refused, so they go, as
        // `kubectl get job -o yaml | kubectl apply` users strip them.
        "Job" if scalar_at(&doc, &["spec", "manualSelector"]).as_deref() != Some("true") => {
            remove_at(&mut doc, "spec.selector");
            for path in ["metadata.labels", "spec.template.metadata.labels"] {
                if let Some(labels) = node_at_mut(&mut doc, path) {
                    if let Value::Map(pairs) = &mut labels.value {
                        pairs.retain(|(k, _)| {
                            !JOB_CONTROLLER_LABELS.contains(&k.as_str().unwrap_or(""))
                        });
                    }
                }
            }
        }
        // The taints the node lifecycle controller wrote (not-ready,
        // unreachable, …): the simulated one writes its own.
        "Node" => {
            if let Some(taints) = node_at_mut(&mut doc, "spec.taints") {
                if let Value::Seq(items) = &mut taints.value {
                    items.retain(|t| {
                        !t.get("key")
                            .and_then(Node::as_str)
                            .is_some_and(|k| k.starts_with("node.kubernetes.io/"))
                    });
                }
            }
        }
        _ => {}
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::yaml::parse_documents;

    #[test]
    fn a_headless_service_keeps_none_and_a_job_loses_its_controller_selector() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: h}, spec: {clusterIP: None, selector: {a: b}}}\n- {apiVersion: batch/v1, kind: Job, metadata: {name: j, labels: {controller-uid: u, team: x}}, spec: {selector: {matchLabels: {controller-uid: u}}, template: {metadata: {labels: {controller-uid: u, batch.kubernetes.io/job-name: j, app: a}}, spec: {containers: []}}}}\n- {apiVersion: v1, kind: Node, metadata: {name: n}, spec: {taints: [{key: node.kubernetes.io/unreachable, effect: NoExecute}, {key: gpu, effect: NoSchedule}]}}\n";
        let (docs, _) = sanitise(parse_documents(text).unwrap());
        assert_eq!(
            scalar_at(&docs[0], &["spec", "clusterIP"]).as_deref(),
            Some("None")
        );
        let job = &docs[1];
        assert!(job.get("spec").unwrap().get("selector").is_none());
        let labels = job
            .get("spec")
            .unwrap()
            .get("template")
            .unwrap()
            .get("metadata")
            .unwrap()
            .get("labels")
            .unwrap();
        assert!(labels.get("controller-uid").is_none() && labels.get("app").is_some());
        assert_eq!(
            scalar_at(job, &["metadata", "labels", "team"]).as_deref(),
            Some("x")
        );
        let Value::Seq(taints) = &docs[2].get("spec").unwrap().get("taints").unwrap().value else {
            panic!()
        };
        assert_eq!(taints.len(), 1);
    }

    #[test]
    fn owned_and_control_plane_objects_go_and_server_fields_are_cleared() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: web-1, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u, controller: true}]}}\n- {apiVersion: v1, kind: Event, metadata: {name: e}}\n- {apiVersion: v1, kind: Pod, metadata: {name: p, uid: x, resourceVersion: '9'}, spec: {nodeName: n1, containers: []}, status: {phase: Running}}\n";
        let (docs, counts) = sanitise(parse_documents(text).unwrap());
        assert_eq!(
            counts,
            DumpCounts {
                kept: 1,
                owned: 1,
                control_plane: 1
            }
        );
        let p = &docs[0];
        assert!(p.get("status").is_none());
        assert!(p.get("metadata").unwrap().get("uid").is_none());
        assert!(p.get("spec").unwrap().get("nodeName").is_none());
    }
}
