//! The resourceclaim controller (`pkg/controller/resourceclaim`), as of
//! v1.34: it makes the ResourceClaim of each pod claim that names a
//! ResourceClaimTemplate (owned by the pod, `generateName`
//! `<pod>-<claim>-`) and records it in the pod's
//! `status.resourceClaimStatuses`; it drops reservations of pods that are
//! done or gone, deallocates a claim whose last reservation went, and
//! deletes a generated claim once its pod is done. It never allocates:
//! the scheduler does.
//!
//! Keys are `pod:<ns>/<name>` and `claim:<ns>/<name>`, as upstream's.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workqueue::WorkQueue;
use crate::api::object::{Body, Meta, OwnerRef};
use crate::api::{Kind, Object};
use crate::dra::claim::{pod_claim_names, status_update, Claim};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, PatchOp, Verb};
use crate::sim::SimTime;

/// The annotation naming the pod claim a generated claim is for.
pub const POD_CLAIM_NAME: &str = "resource.kubernetes.io/pod-claim-name";

#[derive(Default)]
pub struct ResourceClaimController {
    /// Claims created for a pod claim, answers not yet in the cache:
    /// (pod uid, pod claim) → claim name, so a status write can follow.
    created: BTreeMap<(String, String), String>,
}

fn split(key: &str) -> Option<(&str, &str, &str)> {
    let (what, rest) = key.split_once(':')?;
    let (ns, name) = rest.split_once('/')?;
    Some((what, ns, name))
}

/// `isPodDone`: terminal, or deleted before it reached a node.
fn pod_done(pod: &Object) -> bool {
    pod.as_pod()
        .is_some_and(|p| p.is_terminal() || (pod.meta.deletion.is_some() && p.node_name.is_none()))
}

/// The claim generated for `pod`'s claim `name`, found by owner and
/// annotation (after a create whose answer was lost).
fn generated_claim<'a>(
    cache: &'a Cache,
    pod: &'a Object,
    name: &'a str,
) -> Option<&'a Arc<Object>> {
    cache
        .controlled_by(Kind::ResourceClaim, &pod.meta.namespace, &pod.meta.uid)
        .find(|c| {
            c.meta
                .annotations
                .get(POD_CLAIM_NAME)
                .is_some_and(|n| n == name)
        })
}

/// `generateName`: `<pod>-<claim>-`, both cut in proportion past 57.
fn generate_name(pod: &str, claim: &str) -> String {
    let full = pod.len() + claim.len() + 1;
    if full <= 57 {
        return format!("{pod}-{claim}-");
    }
    let cut = |s: &str| -> String {
        let n = s.len() * 57 / full;
        s.chars().take(n).collect()
    };
    format!("{}-{}-", cut(pod), cut(claim))
}

impl ResourceClaimController {
    fn sync_pod(&mut self, ns: &str, name: &str, cx: &mut SyncCtx<'_>) {
        let Some(pod) = cx.cache.get(Kind::Pod, ns, name).cloned() else {
            return;
        };
        let Some(body) = pod.as_pod() else { return };
        // A pod being deleted or done needs no claims (`podNeedsWork`).
        if pod.meta.deletion.is_some() || pod_done(&pod) {
            return;
        }
        let Some(entries) = &body.spec.api.resource_claims else {
            return;
        };
        let mut statuses = body.status.resource_claim_statuses.clone();
        let mut changed = false;
        for e in entries {
            let Some(template) = &e.resource_claim_template_name else {
                continue;
            };
            let recorded = statuses
                .iter()
                .find(|(n, _)| *n == e.name)
                .and_then(|(_, c)| c.clone());
            let exists = recorded
                .as_ref()
                .and_then(|c| cx.cache.get(Kind::ResourceClaim, ns, c))
                .is_some_and(|c| {
                    c.meta
                        .owner_references
                        .iter()
                        .any(|r| r.uid == pod.meta.uid)
                });
            if exists {
                continue;
            }
            let found = generated_claim(cx.cache, &pod, &e.name)
                .map(|c| c.meta.name.clone())
                .or_else(|| {
                    self.created
                        .get(&(pod.meta.uid.clone(), e.name.clone()))
                        .cloned()
                });
            match found {
                Some(claim) => {
                    statuses.retain(|(n, _)| *n != e.name);
                    statuses.push((e.name.clone(), Some(claim)));
                    changed = true;
                }
                None => self.create(&pod, &e.name, template, cx),
            }
        }
        if changed {
            let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, ns, name);
            req.patch = Some(PatchOp::PodResourceClaimStatuses(statuses));
            cx.send(req);
        }
    }

    fn create(&mut self, pod: &Arc<Object>, claim: &str, template: &str, cx: &mut SyncCtx<'_>) {
        let ns = &pod.meta.namespace;
        let Some(t) = cx
            .cache
            .get(Kind::ResourceClaimTemplate, ns, template)
            .cloned()
        else {
            let msg = format!(
                "PodResourceClaim {claim}: resource claim template \"{template}\": resourceclaimtemplate.resource.k8s.io \"{template}\" not found"
            );
            cx.event(pod, "Warning", "FailedResourceClaimCreation", msg);
            cx.failed = true;
            return;
        };
        let tspec = match &t.body {
            Body::Json(m) => m.get("spec").cloned().unwrap_or(Json::Null),
            _ => Json::Null,
        };
        let meta_of = |k: &str| -> BTreeMap<String, String> {
            tspec
                .pointer(&format!("/metadata/{k}"))
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        };
        let mut annotations = meta_of("annotations");
        annotations.insert(POD_CLAIM_NAME.into(), claim.into());
        let meta = Meta {
            generate_name: generate_name(&pod.meta.name, claim),
            namespace: ns.clone(),
            labels: Arc::new(meta_of("labels")),
            annotations: Arc::new(annotations),
            owner_references: vec![OwnerRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod.meta.name.clone(),
                uid: pod.meta.uid.clone(),
                controller: true,
                block_owner_deletion: true,
            }],
            ..Default::default()
        };
        let mut body = serde_json::Map::new();
        body.insert(
            "spec".into(),
            tspec.get("spec").cloned().unwrap_or(json!({})),
        );
        let obj = Object {
            kind: Kind::ResourceClaim,
            meta,
            body: Body::Json(Arc::new(body)),
        };
        let mut req = ApiRequest::new(Verb::Create, Kind::ResourceClaim, ns, "");
        req.body = Some(Arc::new(obj));
        cx.send(req);
    }

    /// `syncClaim`: reservations of pods done or gone are dropped; the
    /// last one going deallocates; a generated claim of a done pod goes.
    fn sync_claim(&mut self, ns: &str, name: &str, cx: &mut SyncCtx<'_>) {
        let Some(obj) = cx.cache.get(Kind::ResourceClaim, ns, name).cloned() else {
            return;
        };
        let Ok(claim) = Claim::from_object(&obj) else {
            return;
        };
        let live = |pname: &str, uid: &str| {
            cx.cache
                .get(Kind::Pod, ns, pname)
                .filter(|p| p.meta.uid == uid && !pod_done(p))
                .is_some()
        };
        let keep: Vec<_> = claim
            .reserved_for
            .iter()
            .filter(|c| live(&c.name, &c.uid))
            .cloned()
            .collect();
        if keep.len() != claim.reserved_for.len() {
            let deallocate = keep.is_empty();
            let list: Vec<Json> = keep
                .iter()
                .map(|c| json!({"resource": "pods", "name": c.name, "uid": c.uid}))
                .collect();
            cx.send(status_update(&obj, |s| {
                if list.is_empty() {
                    s.remove("reservedFor");
                } else {
                    s.insert("reservedFor".into(), Json::Array(list));
                }
                if deallocate {
                    s.remove("allocation");
                }
            }));
            return;
        }
        if !claim.reserved_for.is_empty() || obj.meta.deletion.is_some() {
            return;
        }
        let owner = obj
            .meta
            .owner_references
            .iter()
            .find(|r| r.controller && r.kind == "Pod");
        let Some(owner) = owner else { return };
        let done = match cx.cache.get(Kind::Pod, ns, &owner.name) {
            Some(p) => p.meta.uid != owner.uid || pod_done(p),
            // Not in the cache: the garbage collector's (owner reference).
            None => false,
        };
        if done {
            cx.send(ApiRequest::new(Verb::Delete, Kind::ResourceClaim, ns, name));
        }
    }
}

fn pod_key(o: &Object) -> String {
    format!("pod:{}/{}", o.meta.namespace, o.meta.name)
}

impl Controller for ResourceClaimController {
    fn name(&self) -> &'static str {
        "resourceclaim-controller"
    }

    fn workers(&self) -> usize {
        // `--concurrent-resource-claim-syncs`... upstream starts 10.
        10
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        let o = ev.object();
        match ev.kind {
            Kind::Pod => {
                let has = o
                    .as_pod()
                    .and_then(|p| p.spec.api.resource_claims.as_ref())
                    .is_some_and(|l| !l.is_empty());
                if !has {
                    return;
                }
                if ev.new.is_some() && !pod_done(o) {
                    queue.add(&pod_key(o));
                }
                // A pod done or gone: its claims' reservations may go.
                if ev.new.is_none() || pod_done(o) {
                    for c in pod_claim_names(o).unwrap_or_default() {
                        queue.add(&format!("claim:{}/{c}", o.meta.namespace));
                    }
                }
            }
            Kind::ResourceClaim => {
                queue.add(&format!("claim:{}/{}", o.meta.namespace, o.meta.name));
                if let Some(r) = o
                    .meta
                    .owner_references
                    .iter()
                    .find(|r| r.controller && r.kind == "Pod")
                {
                    queue.add(&format!("pod:{}/{}", o.meta.namespace, r.name));
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        match split(key) {
            Some(("pod", ns, name)) => self.sync_pod(ns, name, cx),
            Some(("claim", ns, name)) => self.sync_claim(ns, name, cx),
            _ => {}
        }
    }

    fn on_response(
        &mut self,
        _key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let ok = resp.is_some_and(|r| r.ok());
        if req.verb == Verb::Create && req.kind == Kind::ResourceClaim {
            if let Some(o) = resp.filter(|_| ok).and_then(|r| r.object.as_ref()) {
                let owner = o.meta.owner_references.first().map(|r| r.uid.clone());
                let claim = o.meta.annotations.get(POD_CLAIM_NAME).cloned();
                if let (Some(uid), Some(claim)) = (owner, claim) {
                    self.created.insert((uid, claim), o.meta.name.clone());
                }
                // The pod's status is written by the next sync of the pod
                // (the claim's add event queues it).
                return;
            }
        }
        if req.verb == Verb::Patch && req.kind == Kind::Pod && ok {
            let uid = resp
                .and_then(|r| r.object.as_ref())
                .map(|o| o.meta.uid.clone());
            if let Some(uid) = uid {
                self.created.retain(|(u, _), _| *u != uid);
            }
        }
        if !ok && resp.is_none_or(|r| r.code != 404) {
            cx.failed = true;
        }
    }

    fn reset(&mut self) {
        self.created.clear();
    }
}
