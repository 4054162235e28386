//! Nodes named under `objects:` (a Node manifest, as a cluster dump has
//! them) become simulated nodes with a kubelet, which registers the Node
//! itself with the manifest's labels, taints, capacity, allocatable and
//! images; the driver does not create them as kubelet-less objects (which
//! would be NotReady forever). A Node applied later in the timeline stays
//! an API object only, as one created by hand would.

use std::collections::BTreeSet;

use super::Loader;
use crate::api::object::Body;
use crate::api::quantity::Quantity;
use crate::api::{Kind, Object};
use crate::scenario::NodePlan;

impl Loader<'_> {
    /// Takes the Nodes out of `objects` and adds them to `nodes`.
    pub(super) fn node_objects(&mut self, objects: &mut Vec<Object>, nodes: &mut Vec<NodePlan>) {
        if !objects.iter().any(|o| o.kind == Kind::Node) {
            return;
        }
        let mut names: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let mut kept = Vec::with_capacity(objects.len());
        for o in objects.drain(..) {
            let Body::Node(body) = &o.body else {
                kept.push(o);
                continue;
            };
            let name = o.meta.name.clone();
            if names.len() as u64 >= crate::api::limits::MAX_NODES {
                self.error("objects", crate::api::limits::too_many("nodes", names.len() as i64 + 1, crate::api::limits::MAX_NODES as i64, "kubesim simulates up to four times the 5,000 nodes Kubernetes is tested at"));
                break;
            }
            if !names.insert(name.clone()) {
                self.error(
                    "objects",
                    format!("Node `{name}` is named twice (by a pool, a trace or objects:)"),
                );
                continue;
            }
            let mut body = body.clone();
            if body.capacity.is_empty() {
                body.capacity = body.allocatable.clone();
            }
            for r in ["cpu", "memory"] {
                if !body.capacity.contains_key(r) {
                    self.error(
                        "objects",
                        format!("Node `{name}`: Required value: status.capacity.{r} (or allocatable): a Node under objects: becomes a simulated node with a kubelet"),
                    );
                }
            }
            for m in [&mut body.capacity, &mut body.allocatable] {
                m.entry("pods".to_string())
                    .or_insert(Quantity::from_units(110));
            }
            let index = nodes.len();
            body.pod_cidr = body.pod_cidr.or_else(|| Some(super::pod_cidr(index)));
            body.conditions.clear();
            body.addresses = super::node_addresses(index, &name);
            if body.kubelet_version.is_empty() {
                body.kubelet_version = "v1.34.0".into();
            }
            // The manifest's own values win over the kubelet's defaults.
            let mut labels = super::kubelet_labels(&name);
            labels.extend(o.meta.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            nodes.push(NodePlan {
                name,
                pool: "objects".into(),
                labels,
                body,
                join_at: None,
                price_per_hour: 0.0,
                standby: false,
                drivers: Default::default(),
            });
        }
        *objects = kept;
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::load_str;

    #[test]
    fn a_node_manifest_becomes_a_node_with_a_kubelet_and_leaves_the_objects() {
        let yaml = "name: x\nobjects:\n  - apiVersion: v1\n    kind: Node\n    metadata: {name: dumped-1, labels: {team: ml}}\n    spec: {taints: [{key: gpu, effect: NoSchedule}]}\n    status: {capacity: {cpu: '8', memory: 32Gi}, allocatable: {cpu: 7500m, memory: 30Gi}}\n";
        let s = load_str("x.yaml", yaml, std::path::Path::new(".")).unwrap();
        assert!(s.objects.iter().all(|o| o.meta.name != "dumped-1"));
        let n = s.nodes.iter().find(|n| n.name == "dumped-1").unwrap();
        assert_eq!(n.labels["team"], "ml");
        assert_eq!(n.labels["kubernetes.io/hostname"], "dumped-1");
        assert_eq!(n.body.allocatable["cpu"].milli_value(), 7500);
        assert_eq!(n.body.capacity["pods"].value(), 110);
        assert_eq!(n.body.taints[0].key, "gpu");
    }

    #[test]
    fn a_node_manifest_without_capacity_is_an_error() {
        let yaml = "name: x\nobjects:\n  - {apiVersion: v1, kind: Node, metadata: {name: bare}}\n";
        let e = load_str("x.yaml", yaml, std::path::Path::new(".")).unwrap_err();
        assert!(e[0].to_string().contains("status.capacity.cpu"), "{}", e[0]);
    }
}
