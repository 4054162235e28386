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

use super::{plural, ApiServer};
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
    match kind.api_version().split_once('/') {
        Some((group, _)) => format!("{}.{group}", plural(kind)),
        None => plural(kind),
    }
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
pub(super) fn merge_status(to: &mut NamespaceBody, from: &NamespaceBody) {
    to.phase = from.phase;
    to.conditions = from.conditions.clone();
}
