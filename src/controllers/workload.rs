//! Reading and writing workload objects (stored as JSON bodies) in the typed
//! shapes controllers reason about, and the ownerReference helpers every
//! controller shares (`controller_ref_manager.go`'s rules).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::cache::Cache;
use super::controller::SyncCtx;
use crate::api::object::{Body, OwnerRef, StringMap};
use crate::api::pod::{PodBody, PodSpecModel};
use crate::api::selector::Selector;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};
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

/// The JSON at `path` under the object's body (`["spec", "updateStrategy", "type"]`).
pub fn body_path<'a>(o: &'a Object, path: &[&str]) -> Option<&'a Json> {
    let mut at = json_body(o)?.get(*path.first()?)?;
    for p in &path[1..] {
        at = at.get(*p)?;
    }
    Some(at)
}

/// A string at `path`, or `default`.
pub fn body_str<'a>(o: &'a Object, path: &[&str], default: &'a str) -> &'a str {
    body_path(o, path).and_then(Json::as_str).unwrap_or(default)
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

/// The object of `kind` that controls `o`, as the cache has it (same name
/// and uid as the controller reference).
pub fn controller_of<'a>(cache: &'a Cache, o: &Object, kind: Kind) -> Option<&'a Arc<Object>> {
    let r = controller_ref(o).filter(|r| r.kind == kind.name())?;
    cache
        .get(kind, &o.meta.namespace, &r.name)
        .filter(|c| c.meta.uid == r.uid)
}

/// The work-queue key of `o`'s controller if it is of `kind`, whether or
/// not the cache holds it.
pub fn controller_key(o: &Object, kind: Kind) -> Option<String> {
    let r = controller_ref(o).filter(|r| r.kind == kind.name())?;
    Some(format!("{}/{}", o.meta.namespace, r.name))
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

/// `ClaimPods`: the pods of `owner`'s namespace that `include` accepts and
/// that it controls and its selector matches, plus orphans the selector
/// matches, which it adopts by patching in a controller reference; pods it
/// controls that stopped matching are released by patching it out.
pub fn claim_pods<'a>(
    cx: &mut SyncCtx<'a>,
    owner: &Object,
    sel: &Selector,
    include: impl Fn(&Object) -> bool,
) -> Vec<&'a Arc<Object>> {
    let cache = cx.cache;
    let ns = owner.meta.namespace.as_str();
    let mut pods = Vec::new();
    let patch_refs = |pod: &Object, refs: Vec<Json>| {
        let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, ns, &pod.meta.name);
        req.patch = Some(PatchOp::Merge(
            serde_json::json!({"metadata": {"ownerReferences": refs}}),
        ));
        req
    };
    for p in cache.list(Kind::Pod, ns).filter(|p| include(p)) {
        match controller_ref(p) {
            Some(r) if r.uid == owner.meta.uid => {
                if sel.matches(&p.meta.labels) {
                    pods.push(p);
                } else if owner.meta.deletion.is_none() {
                    let refs = p
                        .meta
                        .owner_references
                        .iter()
                        .filter(|o| o.uid != owner.meta.uid)
                        .map(|o| o.to_json())
                        .collect();
                    cx.send(patch_refs(p, refs));
                }
            }
            Some(_) => {}
            None => {
                if owner.meta.deletion.is_none() && !sel.is_empty() && sel.matches(&p.meta.labels) {
                    let mut refs: Vec<Json> = p
                        .meta
                        .owner_references
                        .iter()
                        .map(|o| o.to_json())
                        .collect();
                    refs.push(owner_ref_to(owner).to_json());
                    cx.send(patch_refs(p, refs));
                    pods.push(p);
                }
            }
        }
    }
    pods
}

/// Writes `status` to `o` (a `PUT …/status` guarded by the cached
/// resourceVersion, so a stale cache gets a 409), unless it is unchanged.
pub fn update_status(cx: &mut SyncCtx<'_>, o: &Object, status: Json) {
    if json_body(o).and_then(|m| m.get("status")) == Some(&status) {
        return;
    }
    let updated = edit_json(o, |m| {
        m.insert("status".into(), status);
    });
    let mut req = ApiRequest::new(Verb::UpdateStatus, o.kind, &o.meta.namespace, &o.meta.name);
    req.resource_version = o.meta.resource_version;
    req.body = Some(Arc::new(updated));
    cx.send(req);
}

/// Whether `o` is controlled by the object with `uid`.
pub fn controlled_by(o: &Object, uid: &str) -> bool {
    controller_ref(o).is_some_and(|r| r.uid == uid)
}

/// A new object of `kind` with a JSON body.
pub fn json_object(kind: Kind, meta: crate::api::object::Meta, body: Json) -> Object {
    let map = match body {
        Json::Object(m) => m,
        _ => Map::new(),
    };
    Object {
        kind,
        meta,
        body: Body::Json(Arc::new(map)),
    }
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
