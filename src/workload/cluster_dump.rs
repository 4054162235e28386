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
        "Service" => {
            remove_at(&mut doc, "spec.clusterIP");
            remove_at(&mut doc, "spec.clusterIPs");
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
