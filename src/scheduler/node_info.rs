//! A node as the scheduler's cache holds it: what the Node object says
//! (labels, taints, allocatable, images) and the pods accounted on it,
//! bound or assumed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::plugins::image_locality;
use super::plugins::node_ports::HostPort;
use super::pod_info::PodInfo;
use super::resources::{Amounts, NodeResources};
use crate::api::node::Taint;

#[derive(Clone, Debug)]
pub struct NodeSnapshot {
    pub name: String,
    pub labels: Arc<BTreeMap<String, String>>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub resources: NodeResources,
    /// Images on the node by normalised name, with sizes.
    pub images: BTreeMap<String, i64>,
    /// Pods accounted on the node, in the order they arrived.
    pub pods: Vec<Arc<PodInfo>>,
    /// How many of them carry inter-pod affinity or anti-affinity terms,
    /// so a cycle skips nodes where there is nothing to check.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// The lowest priority among the pods accounted here (`i32::MAX` with
    /// none): preemption's dry run passes over a node with no pod below the
    /// preemptor's priority without copying it.
    pub lowest_priority: i32,
}

impl Default for NodeSnapshot {
    fn default() -> Self {
        NodeSnapshot {
            name: String::new(),
            labels: Arc::default(),
            taints: Vec::new(),
            unschedulable: false,
            resources: NodeResources::default(),
            images: BTreeMap::new(),
            pods: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            lowest_priority: i32::MAX,
        }
    }
}

impl NodeSnapshot {
    /// An empty node with `labels` and `allocatable`.
    pub fn new(name: &str, labels: BTreeMap<String, String>, allocatable: Amounts) -> Self {
        NodeSnapshot {
            name: name.to_string(),
            labels: Arc::new(labels),
            resources: NodeResources::new(allocatable),
            ..NodeSnapshot::default()
        }
    }

    /// The scheduler's view of a Node object (no pods accounted yet).
    pub fn from_object(obj: &crate::api::Object) -> Option<NodeSnapshot> {
        let n = obj.as_node()?;
        let allocatable: Amounts = n
            .allocatable
            .iter()
            .map(|(k, q)| (k.clone(), super::resources::amount(k, q)))
            .collect();
        let images = n
            .images
            .iter()
            .flat_map(|i| {
                i.names
                    .iter()
                    .map(move |name| (image_locality::normalized_image_name(name), i.size_bytes))
            })
            .collect();
        Some(NodeSnapshot {
            name: obj.meta.name.clone(),
            labels: obj.meta.labels.clone(),
            taints: n.taints.clone(),
            unschedulable: n.unschedulable,
            resources: NodeResources::new(allocatable),
            images,
            ..NodeSnapshot::default()
        })
    }

    /// Whether the Node object's scheduling-relevant fields differ.
    pub fn differs_for_scheduling(&self, other: &NodeSnapshot) -> bool {
        self.labels != other.labels
            || self.taints != other.taints
            || self.unschedulable != other.unschedulable
            || self.resources.allocatable != other.resources.allocatable
            || self.images != other.images
    }

    /// The Node object's fields alone, with no pods accounted: what a
    /// cluster event carries for the queueing hints.
    pub fn without_pods(&self) -> NodeSnapshot {
        NodeSnapshot {
            name: self.name.clone(),
            labels: self.labels.clone(),
            taints: self.taints.clone(),
            unschedulable: self.unschedulable,
            resources: NodeResources {
                allocatable: self.resources.allocatable.clone(),
                ..NodeResources::default()
            },
            images: self.images.clone(),
            ..NodeSnapshot::default()
        }
    }

    /// Takes the pods accounted on `old` (a previous version of this node).
    pub fn take_pods_from(&mut self, old: &mut NodeSnapshot) {
        let allocatable = std::mem::take(&mut self.resources.allocatable);
        self.resources = std::mem::take(&mut old.resources);
        self.resources.allocatable = allocatable;
        self.pods = std::mem::take(&mut old.pods);
        self.pods_with_affinity = old.pods_with_affinity;
        self.pods_with_required_anti_affinity = old.pods_with_required_anti_affinity;
        self.lowest_priority = old.lowest_priority;
    }

    /// Accounts a pod placed on the node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.resources.add_pod(&pod.requests);
        if !pod.affinity.is_empty() {
            self.pods_with_affinity += 1;
        }
        if !pod.affinity.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.lowest_priority = self.lowest_priority.min(pod.priority);
        self.pods.push(pod);
    }

    /// Forgets the pod `namespace/name`; false if it was not here.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some(i) = self
            .pods
            .iter()
            .position(|p| p.name == name && p.namespace == namespace)
        else {
            return false;
        };
        let pod = self.pods.remove(i);
        self.resources.remove_pod(&pod.requests);
        if !pod.affinity.is_empty() {
            self.pods_with_affinity -= 1;
        }
        if !pod.affinity.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        if pod.priority == self.lowest_priority {
            self.lowest_priority = self
                .pods
                .iter()
                .map(|p| p.priority)
                .min()
                .unwrap_or(i32::MAX);
        }
        true
    }

    /// Host ports held by the pods on the node.
    pub fn used_ports(&self) -> impl Iterator<Item = &HostPort> {
        self.pods.iter().flat_map(|p| p.host_ports.iter())
    }
}
