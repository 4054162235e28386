//! `persistentVolumeClaimRetentionPolicy` (GA in v1.32): which owner
//! references a pod's claims carry, so the garbage collector deletes them
//! when they should go (`claimOwnerMatchesSetAndPod` and
//! `updateClaimOwnerRefs` in `stateful_set_utils.go`). `whenDeleted:
//! Delete` makes the set an owner, `whenScaled: Delete` makes a condemned
//! pod (an ordinal past the replicas) the owner instead; `Retain` for both
//! (the default) leaves the claims unowned, to outlive everything.

use std::sync::Arc;

use serde_json::Value as Json;

use super::identity::{claim_name, ordinal};
use crate::api::object::OwnerRef;
use crate::api::{Kind, Object};
use crate::controllers::controller::SyncCtx;
use crate::controllers::workload::{body_path, body_str};
use crate::model::apiserver::request::{ApiRequest, Verb};

/// (whenDeleted, whenScaled), each true for `Delete`.
pub fn policy(set: &Object) -> (bool, bool) {
    let p = |field| {
        body_str(
            set,
            &["spec", "persistentVolumeClaimRetentionPolicy", field],
            "Retain",
        ) == "Delete"
    };
    (p("whenDeleted"), p("whenScaled"))
}

/// The reference `setOwnerRef` adds: neither controller nor blocking.
pub fn plain_ref(owner: &Object) -> OwnerRef {
    OwnerRef {
        api_version: owner.kind.api_version().to_string(),
        kind: owner.kind.name().to_string(),
        name: owner.meta.name.clone(),
        uid: owner.meta.uid.clone(),
        controller: false,
        block_owner_deletion: false,
    }
}

/// The names of the set's `volumeClaimTemplates`.
pub fn templates(set: &Object) -> Vec<String> {
    match body_path(set, &["spec", "volumeClaimTemplates"]) {
        Some(Json::Array(cs)) => cs
            .iter()
            .filter_map(|c| c.pointer("/metadata/name").and_then(Json::as_str))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Adds or removes `owner` in `refs` so that it is there iff `want`.
fn toggle(refs: &mut Vec<OwnerRef>, owner: &Object, want: bool) {
    let has = refs.iter().any(|r| r.uid == owner.meta.uid);
    if want && !has {
        refs.push(plain_ref(owner));
    } else if !want && has {
        refs.retain(|r| r.uid != owner.meta.uid);
    }
}

/// Brings the claims of each `(pod, condemned)` in line with the policy,
/// updating those that differ. A claim some other controller owns
/// (`hasUnexpectedController`) is left alone.
pub fn fix_claims(set: &Object, pods: &[(&Arc<Object>, bool)], cx: &mut SyncCtx<'_>) {
    let (when_deleted, when_scaled) = policy(set);
    let names = templates(set);
    let ns = &set.meta.namespace;
    for (pod, condemned) in pods {
        let Some(ord) = ordinal(&set.meta.name, &pod.meta.name) else {
            continue;
        };
        let scaled_away = when_scaled && *condemned;
        for t in &names {
            let name = claim_name(t, &set.meta.name, ord);
            let Some(claim) = cx.cache.get(Kind::PersistentVolumeClaim, ns, &name) else {
                continue;
            };
            let foreign = claim
                .meta
                .owner_references
                .iter()
                .any(|r| r.controller && r.uid != set.meta.uid && r.uid != pod.meta.uid);
            if foreign {
                continue;
            }
            let mut refs = claim.meta.owner_references.clone();
            toggle(&mut refs, set, when_deleted && !scaled_away);
            toggle(&mut refs, pod, scaled_away);
            if refs == claim.meta.owner_references {
                continue;
            }
            let mut updated = (**claim).clone();
            updated.meta.owner_references = refs;
            let mut req = ApiRequest::new(Verb::Update, Kind::PersistentVolumeClaim, ns, &name);
            req.resource_version = claim.meta.resource_version;
            req.body = Some(Arc::new(updated));
            cx.send(req);
        }
    }
}
