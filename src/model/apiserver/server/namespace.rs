//! Namespaces in the apiserver: the registry's create, update, finalize and
//! delete rules (`pkg/registry/core/namespace`) and the NamespaceLifecycle
//! admission plugin.
//!
//! A namespace is created with `kubernetes` in `spec.finalizers` and phase
//! Active. Its first DELETE only marks it: deletionTimestamp and phase
//! Terminating, answered 200. Nothing new may then be created in it, and
//! the namespace controller empties it and removes its finalizer through
//! the `finalize` subresource (ordinary updates cannot change
//! `spec.finalizers`); the update that leaves both finalizer lists empty
//! deletes it (`ShouldDeleteNamespaceDuringUpdate`).

use std::sync::Arc;

use super::ApiServer;
use crate::api::namespace::{NamespaceBody, NamespacePhase, FINALIZER_KUBERNETES};
use crate::api::object::Body;
use crate::api::{Kind, Object, ObjectKey};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::model::etcd::store::{Expect, Txn, TxnOp};
use crate::model::msg::Payload;
use crate::model::world::World;
use crate::sim::Ctx;

/// The namespaces NamespaceLifecycle never lets go.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// `resource.group` as `schema.GroupResource.String()` writes it.
fn group_resource(kind: Kind) -> String {
    kind.group_resource()
}

/// `apierrors.NewForbidden`'s 403.
fn forbidden(req: &ApiRequest, kind: Kind, name: &str, why: &str) -> ApiResponse {
    let message = format!("{} \"{name}\" is forbidden: {why}", group_resource(kind));
    ApiServer::error(req.id, 403, "Forbidden", message)
}

/// `PrepareForCreate`: status Active, and `kubernetes` among the finalizers.
pub(super) fn prepare_create(obj: &mut Object) {
    if let Body::Namespace(n) = &mut obj.body {
        n.phase = NamespacePhase::Active;
        n.conditions.clear();
        if !n.finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
            n.finalizers.push(FINALIZER_KUBERNETES.to_string());
        }
    }
}

/// What an update of `verb` may change of a namespace: an ordinary update
/// neither `spec.finalizers` nor status, `finalize` only `spec.finalizers`
/// (status comes from `cur`); no update moves deletionTimestamp.
pub(super) fn prepare_update(verb: Verb, obj: &mut Object, cur: &Object) {
    obj.meta.deletion = cur.meta.deletion;
    obj.meta.deletion_grace_seconds = cur.meta.deletion_grace_seconds;
    let (Body::Namespace(new), Body::Namespace(old)) = (&mut obj.body, &cur.body) else {
        return;
    };
    match verb {
        Verb::Finalize => {
            new.phase = old.phase;
            new.conditions = old.conditions.clone();
        }
        Verb::UpdateStatus => new.finalizers = old.finalizers.clone(),
        _ => *new = old.clone(),
    }
}

/// Whether `obj`'s `spec.finalizers` no longer hold it (always, for other kinds).
pub(super) fn finalized(obj: &Object) -> bool {
    obj.as_namespace().is_none_or(|n| n.finalizers.is_empty())
}

/// `ShouldDeleteNamespaceDuringUpdate`: a deleted namespace whose update
/// leaves no finalizer of either kind goes.
pub(super) fn should_delete_during_update(obj: &Object, cur: &Object) -> bool {
    finalized(obj)
        && obj.meta.finalizers.is_empty()
        && cur.meta.deletion.is_some()
        && cur.meta.deletion_grace_seconds.unwrap_or(0) == 0
}

impl ApiServer {
    /// NamespaceLifecycle on a create (`pods/binding` and `pods/eviction`
    /// are creates too): refused in a namespace that does not exist or is
    /// terminating. `name` falls back to generateName, then `Unknown`, as
    /// admission names the object before the registry generates a name.
    pub(super) fn namespace_lifecycle(
        &self,
        req: &ApiRequest,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Option<ApiResponse> {
        if !kind.namespaced() {
            return None;
        }
        let key = ObjectKey {
            kind: Kind::Namespace,
            namespace: String::new(),
            name: namespace.to_string(),
        };
        let Some(ns) = self.cache.get(&key) else {
            let msg = format!("namespaces \"{namespace}\" not found");
            return Some(Self::error(req.id, 404, "NotFound", msg));
        };
        let terminating = ns
            .as_namespace()
            .is_some_and(|n| n.phase == NamespacePhase::Terminating);
        if !terminating {
            return None;
        }
        let name = if name.is_empty() { "Unknown" } else { name };
        let why = format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        );
        let mut resp = forbidden(req, kind, name, &why);
        // The NamespaceTerminating cause that controllers look for.
        resp.cause = format!("namespace {namespace} is being terminated");
        Some(resp)
    }

    /// NamespaceLifecycle on `pods/binding` and `pods/eviction` (creates of
    /// a subresource): answers the request and returns `true` if refused.
    pub(super) fn pod_subresource_refused(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
    ) -> bool {
        let Some(f) = self.slots[slot as usize].as_ref() else {
            return false;
        };
        let req = f.req.clone();
        match self.namespace_lifecycle(&req, Kind::Pod, &req.namespace, &req.name) {
            Some(resp) => {
                self.finish(ctx, slot, resp);
                true
            }
            None => false,
        }
    }

    /// The namespace registry's DELETE (`REST.Delete`). Returns `false`
    /// when the ordinary delete should go on: the namespace is already
    /// terminating and nothing holds it in `spec.finalizers`.
    pub(super) fn delete_namespace(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        req: &ApiRequest,
        cur: &Arc<Object>,
    ) -> bool {
        if IMMORTAL.contains(&cur.meta.name.as_str()) {
            let resp = forbidden(
                req,
                Kind::Namespace,
                &cur.meta.name,
                "this namespace may not be deleted",
            );
            self.finish(ctx, slot, resp);
            return true;
        }
        if cur.meta.deletion.is_some() {
            if finalized(cur) {
                return false;
            }
            let resp = Self::success(req.id, 200, Some(cur.clone()), cur.meta.resource_version);
            self.finish(ctx, slot, resp);
            return true;
        }
        // The first DELETE: mark it, and let the garbage collector's
        // finalizers follow the propagation policy, as upstream's
        // shouldHaveOrphanFinalizer / shouldHaveDeleteDependentsFinalizer.
        let mut obj = (**cur).clone();
        obj.meta.deletion = Some(ctx.now);
        if let Body::Namespace(n) = &mut obj.body {
            n.phase = NamespacePhase::Terminating;
        }
        if let Some(p) = req.propagation {
            let f = &mut obj.meta.finalizers;
            f.retain(|x| x != "orphan" && x != "foregroundDeletion");
            match p {
                "Orphan" => f.push("orphan".into()),
                "Foreground" => f.push("foregroundDeletion".into()),
                _ => {}
            }
        }
        let expect = Expect::ModRevision(cur.meta.resource_version);
        self.propose_put(ctx, slot, cur.key(), expect, obj);
        true
    }

    /// Deletes a namespace whose update left it without finalizers.
    pub(super) fn delete_during_update(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        cur: &Object,
    ) {
        let txn = Txn {
            key: cur.key(),
            expect: Expect::ModRevision(cur.meta.resource_version),
            op: TxnOp::Delete,
        };
        self.propose(ctx, slot, txn);
    }
}

/// Copies a namespace's status (the status subresource).
pub(in crate::model::apiserver) fn merge_status(to: &mut NamespaceBody, from: &NamespaceBody) {
    to.phase = from.phase;
    to.conditions = from.conditions.clone();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::Meta;
    use crate::model::apiserver::ApiServerConfig;

    fn server_with(phase: NamespacePhase) -> ApiServer {
        let ns = Object {
            kind: Kind::Namespace,
            meta: Meta {
                name: "demo".into(),
                ..Default::default()
            },
            body: Body::Namespace(NamespaceBody {
                phase,
                ..Default::default()
            }),
        };
        ApiServer::new(ApiServerConfig::default(), Vec::new(), vec![Arc::new(ns)])
    }

    #[test]
    fn lifecycle_names_the_resource_and_falls_back_to_unknown() {
        let req = ApiRequest::new(Verb::Create, Kind::Deployment, "demo", "");
        let active = server_with(NamespacePhase::Active);
        assert!(active
            .namespace_lifecycle(&req, Kind::Deployment, "demo", "web")
            .is_none());
        let missing = active
            .namespace_lifecycle(&req, Kind::Pod, "nope", "p")
            .unwrap();
        assert_eq!(
            (missing.code, missing.message.as_str()),
            (404, "namespaces \"nope\" not found")
        );

        let s = server_with(NamespacePhase::Terminating);
        // A generateName stands in for the name admission cannot know yet.
        let r = s
            .namespace_lifecycle(&req, Kind::Deployment, "demo", "web-")
            .unwrap();
        assert_eq!((r.code, r.reason), (403, "Forbidden"));
        assert_eq!(
            r.message,
            "deployments.apps \"web-\" is forbidden: unable to create new content in namespace demo because it is being terminated"
        );
        assert_eq!(r.cause, "namespace demo is being terminated");
        let r = s
            .namespace_lifecycle(&req, Kind::Endpoints, "demo", "")
            .unwrap();
        assert!(
            r.message
                .starts_with("endpoints \"Unknown\" is forbidden: "),
            "{}",
            r.message
        );
        // Cluster-scoped kinds are never held back.
        assert!(s
            .namespace_lifecycle(&req, Kind::PriorityClass, "", "x")
            .is_none());
    }

    #[test]
    fn only_finalize_changes_spec_finalizers_and_an_empty_one_deletes() {
        let mut cur = Object {
            kind: Kind::Namespace,
            meta: Meta {
                name: "demo".into(),
                deletion: Some(crate::sim::SimTime(1)),
                ..Default::default()
            },
            body: Body::Namespace(NamespaceBody {
                phase: NamespacePhase::Terminating,
                ..Default::default()
            }),
        };
        let mut emptied = cur.clone();
        if let Body::Namespace(n) = &mut emptied.body {
            n.finalizers.clear();
            n.phase = NamespacePhase::Active;
        }
        let mut update = emptied.clone();
        prepare_update(Verb::Update, &mut update, &cur);
        assert_eq!(
            update.as_namespace(),
            cur.as_namespace(),
            "an update keeps both"
        );
        assert!(!should_delete_during_update(&update, &cur));
        let mut fin = emptied.clone();
        prepare_update(Verb::Finalize, &mut fin, &cur);
        let n = fin.as_namespace().unwrap();
        assert!(n.finalizers.is_empty());
        assert_eq!(
            n.phase,
            NamespacePhase::Terminating,
            "finalize keeps status"
        );
        assert!(should_delete_during_update(&fin, &cur));
        // A metadata finalizer still holds it.
        cur.meta.finalizers.push("foregroundDeletion".into());
        fin.meta.finalizers.push("foregroundDeletion".into());
        assert!(!should_delete_during_update(&fin, &cur));
    }
}
