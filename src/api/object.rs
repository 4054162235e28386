//! The internal object: metadata every kind shares, and a body that is compact
//! for the kinds kubesim simulates and plain JSON for the rest.
//!
//! Objects are converted at the edges, as Kubernetes converts between versioned
//! and internal types: manifests come in through [`crate::api::manifest`], and
//! [`Object::to_json`] gives back the Kubernetes JSON shape for traces.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Map, Value as Json};

use super::kinds::Kind;
use super::lease::LeaseBody;
use super::namespace::NamespaceBody;
use super::node::NodeBody;
use super::pod::PodBody;
use crate::sim::SimTime;

/// Labels and annotations; shared between the pods of one template.
pub type StringMap = Arc<BTreeMap<String, String>>;

/// A reference to an owning object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: bool,
    pub block_owner_deletion: bool,
}

impl OwnerRef {
    /// The reference in the Kubernetes JSON shape.
    pub fn to_json(&self) -> Json {
        json!({"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid,
               "controller": self.controller, "blockOwnerDeletion": self.block_owner_deletion})
    }
}

/// `metadata`, compactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub name: String,
    pub generate_name: String,
    pub namespace: String,
    pub uid: String,
    pub labels: StringMap,
    pub annotations: StringMap,
    pub owner_references: Vec<OwnerRef>,
    pub finalizers: Vec<String>,
    pub resource_version: u64,
    pub generation: i64,
    pub creation: SimTime,
    pub deletion: Option<SimTime>,
    pub deletion_grace_seconds: Option<i64>,
}

impl Meta {
    pub fn from_api(m: &ObjectMeta) -> Meta {
        Meta {
            name: m.name.clone().unwrap_or_default(),
            generate_name: m.generate_name.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            uid: String::new(),
            labels: Arc::new(m.labels.clone().unwrap_or_default()),
            annotations: Arc::new(m.annotations.clone().unwrap_or_default()),
            owner_references: m
                .owner_references
                .iter()
                .flatten()
                .map(|o| OwnerRef {
                    api_version: o.api_version.clone(),
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    uid: o.uid.clone(),
                    controller: o.controller.unwrap_or(false),
                    block_owner_deletion: o.block_owner_deletion.unwrap_or(false),
                })
                .collect(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
            resource_version: 0,
            generation: 0,
            creation: SimTime::ZERO,
            deletion: None,
            deletion_grace_seconds: None,
        }
    }

    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if !self.generate_name.is_empty() {
            m.insert("generateName".into(), json!(self.generate_name));
        }
        if !self.namespace.is_empty() {
            m.insert("namespace".into(), json!(self.namespace));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        m.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        if self.generation > 0 {
            m.insert("generation".into(), json!(self.generation));
        }
        m.insert("creationTimestamp".into(), json!(self.creation.rfc3339()));
        if let Some(d) = self.deletion {
            m.insert("deletionTimestamp".into(), json!(d.rfc3339()));
        }
        if let Some(g) = self.deletion_grace_seconds {
            m.insert("deletionGracePeriodSeconds".into(), json!(g));
        }
        if !self.labels.is_empty() {
            m.insert("labels".into(), json!(*self.labels));
        }
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(*self.annotations));
        }
        if !self.owner_references.is_empty() {
            let refs: Vec<Json> = self
                .owner_references
                .iter()
                .map(OwnerRef::to_json)
                .collect();
            m.insert("ownerReferences".into(), Json::Array(refs));
        }
        if !self.finalizers.is_empty() {
            m.insert("finalizers".into(), json!(self.finalizers));
        }
        Json::Object(m)
    }
}

/// The kind-specific part of an object.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Namespace(NamespaceBody),
    Node(NodeBody),
    Pod(PodBody),
    Lease(LeaseBody),
    /// A kind kubesim stores but does not simulate yet: everything but
    /// `apiVersion`, `kind` and `metadata`, as JSON.
    Json(Arc<Map<String, Json>>),
}

/// An object as the apiserver stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub kind: Kind,
    pub meta: Meta,
    pub body: Body,
}

/// Identifies an object: kind, namespace (empty for cluster-scoped), name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind.name(), self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind.name(), self.namespace, self.name)
        }
    }
}

impl Object {
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: self.kind,
            namespace: self.meta.namespace.clone(),
            name: self.meta.name.clone(),
        }
    }

    pub fn as_pod(&self) -> Option<&PodBody> {
        match &self.body {
            Body::Pod(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_node(&self) -> Option<&NodeBody> {
        match &self.body {
            Body::Node(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_namespace(&self) -> Option<&NamespaceBody> {
        match &self.body {
            Body::Namespace(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_lease(&self) -> Option<&LeaseBody> {
        match &self.body {
            Body::Lease(l) => Some(l),
            _ => None,
        }
    }

    /// The object in the Kubernetes JSON shape, as `kubectl get -o json` shows it.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("apiVersion".into(), json!(self.kind.api_version()));
        m.insert("kind".into(), json!(self.kind.name()));
        m.insert("metadata".into(), self.meta.to_json());
        match &self.body {
            Body::Namespace(n) => n.write_json(&mut m),
            Body::Node(n) => n.write_json(&mut m),
            Body::Pod(p) => p.write_json(&mut m),
            Body::Lease(l) => l.write_json(&mut m),
            Body::Json(rest) => {
                for (k, v) in rest.iter() {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        Json::Object(m)
    }

    /// Whether a change from `old` to `self` is a spec change (bumps
    /// `metadata.generation`), as opposed to a status or metadata change.
    pub fn spec_differs(&self, old: &Object) -> bool {
        match (&self.body, &old.body) {
            (Body::Pod(a), Body::Pod(b)) => !Arc::ptr_eq(&a.spec, &b.spec) && a.spec != b.spec,
            (Body::Node(a), Body::Node(b)) => {
                a.unschedulable != b.unschedulable || a.taints != b.taints
            }
            (Body::Json(a), Body::Json(b)) => a.get("spec") != b.get("spec"),
            _ => false,
        }
    }
}
