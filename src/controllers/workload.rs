//! Reading and writing workload objects (stored as JSON bodies) in the typed
//! shapes controllers reason about, and the ownerReference helpers every
//! controller shares (`controller_ref_manager.go`'s rules).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use crate::api::object::{Body, OwnerRef, StringMap};
use crate::api::pod::{PodBody, PodSpecModel};
use crate::api::selector::Selector;
use crate::api::{Kind, Object};
use crate::sim::{SimDuration, SimTime};

/// The object's typed form (`apps::ReplicaSet`, …), or `None` if its JSON
/// does not read as that type.
pub fn typed<T: DeserializeOwned>(o: &Object) -> Option<T> {
    serde_json::from_value(o.to_json()).ok()
}

/// A copy of `o` with its JSON body changed by `f`.
pub fn edit_json(o: &Object, f: impl FnOnce(&mut Map<String, Json>)) -> Object {
    let mut out = o.clone();
    if let Body::Json(m) = &mut out.body {
        f(Arc::make_mut(m));
    }
    out
}

/// `spec.<field>` as an integer.
pub fn spec_i64(o: &Object, field: &str) -> Option<i64> {
    match &o.body {
        Body::Json(m) => m.get("spec")?.get(field)?.as_i64(),
        _ => None,
    }
}

pub fn status_i64(o: &Object, field: &str) -> i64 {
    match &o.body {
        Body::Json(m) => m
            .get("status")
            .and_then(|s| s.get(field))
            .and_then(Json::as_i64)
            .unwrap_or(0),
        _ => 0,
    }
}

pub fn json_body(o: &Object) -> Option<&Map<String, Json>> {
    match &o.body {
        Body::Json(m) => Some(m),
        _ => None,
    }
}

/// `spec.replicas`, defaulting to 1 as the API does.
pub fn replicas(o: &Object) -> i64 {
    spec_i64(o, "replicas").unwrap_or(1)
}

pub fn min_ready_seconds(o: &Object) -> i64 {
    spec_i64(o, "minReadySeconds").unwrap_or(0)
}

/// `spec.selector` of a workload; an unreadable one matches nothing.
pub fn selector(o: &Object) -> Option<Selector> {
    let s = json_body(o)?.get("spec")?.get("selector")?;
    let api: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(s.clone()).ok()?;
    Selector::from_api(&api).ok()
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(o: &Object) -> Option<&OwnerRef> {
    o.meta.owner_references.iter().find(|r| r.controller)
}

/// A controller reference to `owner`.
pub fn owner_ref_to(owner: &Object) -> OwnerRef {
    OwnerRef {
        api_version: owner.kind.api_version().to_string(),
        kind: owner.kind.name().to_string(),
        name: owner.meta.name.clone(),
        uid: owner.meta.uid.clone(),
        controller: true,
        block_owner_deletion: true,
    }
}

/// `ns/name`, the work-queue key of a namespaced object.
pub fn key_of(o: &Object) -> String {
    format!("{}/{}", o.meta.namespace, o.meta.name)
}

pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// `controller.IsPodActive`: not finished and not being deleted.
pub fn pod_active(o: &Object) -> bool {
    o.meta.deletion.is_none() && o.as_pod().is_some_and(|p| !p.is_terminal())
}

/// `podutil.IsPodAvailable`: ready for at least `min_ready` seconds.
pub fn pod_available(p: &PodBody, min_ready: i64, now: SimTime) -> bool {
    let Some(c) = p.status.condition("Ready").filter(|c| c.status) else {
        return false;
    };
    min_ready <= 0
        || c.last_transition
            .after(SimDuration::from_secs(min_ready as u64))
            < now
}

/// What a pod template turns into: a shared spec and the pods' metadata.
#[derive(Clone, Debug)]
pub struct Template {
    pub spec: Arc<PodSpecModel>,
    pub labels: StringMap,
    pub annotations: StringMap,
    /// The template as written, for comparisons and hashing.
    pub json: Json,
}

impl Template {
    /// Reads `spec.template` (or the given JSON) into a template.
    pub fn from_json(json: &Json) -> Result<Template, String> {
        let t: core::PodTemplateSpec =
            serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        let meta = t.metadata.unwrap_or_default();
        let labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
        let annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
        let spec = t.spec.ok_or("template has no spec")?;
        let model = PodSpecModel::from_api(&spec, &annotations)
            .map_err(|(path, msg)| format!("spec.template.spec.{path}: {msg}"))?;
        Ok(Template {
            spec: Arc::new(model),
            labels: Arc::new(labels),
            annotations: Arc::new(annotations),
            json: json.clone(),
        })
    }

    /// A pod of this template owned by `owner`, named by the apiserver from
    /// `generate_name`.
    pub fn pod(&self, owner: &Object, generate_name: &str) -> Object {
        Object {
            kind: Kind::Pod,
            meta: crate::api::object::Meta {
                generate_name: generate_name.to_string(),
                namespace: owner.meta.namespace.clone(),
                labels: self.labels.clone(),
                annotations: self.annotations.clone(),
                owner_references: vec![owner_ref_to(owner)],
                ..Default::default()
            },
            body: Body::Pod(PodBody::new(self.spec.clone(), None)),
        }
    }
}

/// `spec.template` of a workload as JSON.
pub fn template_json(o: &Object) -> Option<&Json> {
    json_body(o)?.get("spec")?.get("template")
}
