//! The Node: spec (taints, unschedulable) and the status the kubelet reports.

use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Map, Value as Json};

use super::resources::{self, ResourceList};
use crate::sim::SimTime;

/// A taint on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
    pub time_added: Option<SimTime>,
}

impl Taint {
    pub fn to_json(&self) -> Json {
        let mut v = json!({"key": self.key, "effect": self.effect});
        if !self.value.is_empty() {
            v["value"] = json!(self.value);
        }
        if let Some(t) = self.time_added {
            v["timeAdded"] = json!(t.rfc3339());
        }
        v
    }
}

/// One node condition with its heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCondition {
    pub type_: &'static str,
    /// "True", "False" or "Unknown".
    pub status: &'static str,
    pub last_heartbeat: SimTime,
    pub last_transition: SimTime,
    pub reason: &'static str,
    pub message: &'static str,
}

/// An image present on a node, as `status.images` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeImage {
    pub names: Vec<String>,
    pub size_bytes: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeBody {
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub pod_cidr: Option<String>,
    pub capacity: ResourceList,
    pub allocatable: ResourceList,
    pub conditions: Vec<NodeCondition>,
    pub addresses: Vec<(String, String)>,
    pub images: Vec<NodeImage>,
    pub kubelet_version: String,
}

impl NodeBody {
    /// Reads a Node manifest (for `kubesim explain` snapshots and scenarios
    /// that list Nodes explicitly).
    pub fn from_api(n: &core::Node) -> Result<NodeBody, (String, String)> {
        let spec = n.spec.clone().unwrap_or_default();
        let status = n.status.clone().unwrap_or_default();
        let capacity = resources::parse_list(status.capacity.as_ref())
            .map_err(|(k, e)| (format!("status.capacity.{k}"), e.0))?;
        let mut allocatable = resources::parse_list(status.allocatable.as_ref())
            .map_err(|(k, e)| (format!("status.allocatable.{k}"), e.0))?;
        if allocatable.is_empty() {
            allocatable = capacity.clone();
        }
        Ok(NodeBody {
            unschedulable: spec.unschedulable.unwrap_or(false),
            taints: spec
                .taints
                .iter()
                .flatten()
                .map(|t| Taint {
                    key: t.key.clone(),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.effect.clone(),
                    time_added: None,
                })
                .collect(),
            pod_cidr: spec.pod_cidr.clone(),
            capacity,
            allocatable,
            conditions: Vec::new(),
            addresses: status
                .addresses
                .iter()
                .flatten()
                .map(|a| (a.type_.clone(), a.address.clone()))
                .collect(),
            images: status
                .images
                .iter()
                .flatten()
                .map(|i| NodeImage {
                    names: i.names.clone().unwrap_or_default(),
                    size_bytes: i.size_bytes.unwrap_or(0),
                })
                .collect(),
            kubelet_version: status
                .node_info
                .map(|i| i.kubelet_version)
                .unwrap_or_default(),
        })
    }

    pub fn condition(&self, t: &str) -> Option<&NodeCondition> {
        self.conditions.iter().find(|c| c.type_ == t)
    }

    /// True when the Ready condition is True.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }

    pub(crate) fn write_json(&self, m: &mut Map<String, Json>) {
        let mut spec = Map::new();
        if let Some(c) = &self.pod_cidr {
            spec.insert("podCIDR".into(), json!(c));
        }
        if self.unschedulable {
            spec.insert("unschedulable".into(), json!(true));
        }
        if !self.taints.is_empty() {
            spec.insert(
                "taints".into(),
                Json::Array(self.taints.iter().map(Taint::to_json).collect()),
            );
        }
        m.insert("spec".into(), Json::Object(spec));
        let list = |l: &ResourceList| -> Json {
            Json::Object(
                l.iter()
                    .map(|(k, v)| (k.clone(), json!(v.canonical(k != "cpu" && k != "pods"))))
                    .collect(),
            )
        };
        let conditions: Vec<Json> = self
            .conditions
            .iter()
            .map(|c| {
                json!({"type": c.type_, "status": c.status, "lastHeartbeatTime": c.last_heartbeat.rfc3339(),
                       "lastTransitionTime": c.last_transition.rfc3339(), "reason": c.reason, "message": c.message})
            })
            .collect();
        let mut status = json!({
            "capacity": list(&self.capacity),
            "allocatable": list(&self.allocatable),
            "conditions": conditions,
            "addresses": self.addresses.iter().map(|(t, a)| json!({"type": t, "address": a})).collect::<Vec<_>>(),
            "nodeInfo": {"kubeletVersion": self.kubelet_version, "containerRuntimeVersion": "containerd://1.7.0",
                         "operatingSystem": "linux", "architecture": "amd64"},
        });
        if !self.images.is_empty() {
            status["images"] = Json::Array(
                self.images
                    .iter()
                    .map(|i| json!({"names": i.names, "sizeBytes": i.size_bytes}))
                    .collect(),
            );
        }
        m.insert("status".into(), status);
    }
}
