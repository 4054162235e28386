//! ControllerRevisions (`pkg/controller/history`): StatefulSets and
//! DaemonSets record each pod template they have run as an immutable
//! ControllerRevision named `<owner>-<hash>`, numbered in order of use, so
//! pods can be labelled with the revision they were made from and old pods
//! can be recreated from the template they had.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::cache::Cache;
use super::controller::SyncCtx;
use super::deployment::util::pod_template_hash;
use super::workload::edit_json;
use super::workload::{body_path, controlled_by, json_object, owner_ref_to};
use crate::api::object::Meta;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, Verb};

/// The pod label naming the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The revisions `owner` controls, oldest revision number first.
pub fn owned<'a>(cache: &'a Cache, owner: &Object) -> Vec<&'a Arc<Object>> {
    let mut out: Vec<&Arc<Object>> = cache
        .list(Kind::ControllerRevision, &owner.meta.namespace)
        .filter(|r| controlled_by(r, &owner.meta.uid))
        .collect();
    out.sort_by(|a, b| {
        number(a)
            .cmp(&number(b))
            .then_with(|| a.meta.name.cmp(&b.meta.name))
    });
    out
}

/// `revision` of a ControllerRevision.
pub fn number(rev: &Object) -> i64 {
    body_path(rev, &["revision"])
        .and_then(Json::as_i64)
        .unwrap_or(0)
}

/// `status.collisionCount` of a StatefulSet or DaemonSet.
pub fn collision_count(owner: &Object) -> i64 {
    body_path(owner, &["status", "collisionCount"])
        .and_then(Json::as_i64)
        .unwrap_or(0)
}

/// The pod template a revision recorded.
pub fn template(rev: &Object) -> Option<&Json> {
    body_path(rev, &["data", "spec", "template"])
}

/// The hash naming a revision of `template` (with the owner's
/// `collisionCount`).
pub fn hash(template: &Json, collision_count: i64) -> String {
    pod_template_hash(template, (collision_count > 0).then_some(collision_count))
}

/// A new ControllerRevision of `owner` recording `template`.
pub fn new_revision(owner: &Object, template: &Json, name: &str, revision: i64) -> Object {
    let labels = owner
        .meta
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json_object(
        Kind::ControllerRevision,
        Meta {
            name: name.to_string(),
            namespace: owner.meta.namespace.clone(),
            labels: Arc::new(labels),
            owner_references: vec![owner_ref_to(owner)],
            ..Default::default()
        },
        json!({
            "data": {"spec": {"template": template}},
            "revision": revision,
        }),
    )
}

/// Makes sure revision `name` of `template` exists and is the newest:
/// creates it, or renumbers it when an old template comes back (a
/// rollback), as `ConstructNewRevision`/`UpdateControllerRevision` do.
pub fn ensure(
    cx: &mut SyncCtx<'_>,
    owner: &Object,
    revisions: &[&Arc<Object>],
    template: &Json,
    name: &str,
) {
    let ns = owner.meta.namespace.as_str();
    let max = revisions.last().map_or(0, |r| number(r));
    match revisions.iter().find(|r| r.meta.name == name) {
        None => {
            let mut req = ApiRequest::new(Verb::Create, Kind::ControllerRevision, ns, "");
            req.body = Some(Arc::new(new_revision(owner, template, name, max + 1)));
            cx.send(req);
        }
        Some(r) if number(r) < max => {
            let updated = edit_json(r, |m| {
                m.insert("revision".into(), json!(max + 1));
            });
            let mut req = ApiRequest::new(Verb::Update, Kind::ControllerRevision, ns, name);
            req.resource_version = r.meta.resource_version;
            req.body = Some(Arc::new(updated));
            cx.send(req);
        }
        Some(_) => {}
    }
}
