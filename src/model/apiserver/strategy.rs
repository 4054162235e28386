//! The registry strategies' status rules for kinds with a status
//! subresource: a create starts from an empty status and an update of the
//! main resource keeps the stored one; only `UpdateStatus` writes it.
//!
//! Upstream's `PrepareForCreate` / `PrepareForUpdate` do this per kind
//! (`deployment.Status = apps.DeploymentStatus{}`, `newPod.Status =
//! oldPod.Status`, …). Without it a `kubectl get -o yaml` dump applied as a
//! scenario object would report "successfully rolled out" before any pod
//! exists. Nodes keep what they are created with (the kubelet registers
//! its Node with status), and objects without a status subresource are
//! stored as sent.

use std::sync::Arc;

use crate::api::object::Body;
use crate::api::{Kind, Object};

/// Kinds whose status only the status subresource writes.
fn has_status_subresource(kind: Kind) -> bool {
    if let Kind::Custom(c) = kind {
        return c.info().status_subresource;
    }
    matches!(
        kind,
        Kind::Pod
            | Kind::Service
            | Kind::PersistentVolumeClaim
            | Kind::PersistentVolume
            | Kind::ReplicationController
            | Kind::ResourceQuota
            | Kind::Deployment
            | Kind::ReplicaSet
            | Kind::StatefulSet
            | Kind::DaemonSet
            | Kind::Job
            | Kind::CronJob
            | Kind::PodDisruptionBudget
            | Kind::HorizontalPodAutoscaler
            | Kind::Ingress
    )
}

/// `PrepareForCreate`: the status a new object starts with (a pod's is
/// Pending; the others' empty).
pub fn prepare_for_create(obj: &mut Object) {
    if !has_status_subresource(obj.kind) {
        return;
    }
    match &mut obj.body {
        Body::Pod(p) => p.status = Default::default(),
        Body::Json(m) if m.contains_key("status") => {
            let mut m2 = (**m).clone();
            m2.remove("status");
            *m = Arc::new(m2);
        }
        _ => {}
    }
}

/// `PrepareForUpdate` of the main resource: the stored status stands.
pub fn prepare_for_update(obj: &mut Object, old: &Object) {
    if !has_status_subresource(obj.kind) {
        return;
    }
    match (&mut obj.body, &old.body) {
        (Body::Pod(p), Body::Pod(o)) => p.status = o.status.clone(),
        (Body::Json(m), Body::Json(o)) => {
            if m.get("status") == o.get("status") {
                return;
            }
            let mut m2 = (**m).clone();
            match o.get("status") {
                Some(s) => m2.insert("status".into(), s.clone()),
                None => m2.remove("status"),
            };
            *m = Arc::new(m2);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::Meta;
    use serde_json::json;

    fn deployment(status: serde_json::Value) -> Object {
        let mut m = serde_json::Map::new();
        m.insert("spec".into(), json!({"replicas": 3}));
        m.insert("status".into(), status);
        Object {
            kind: Kind::Deployment,
            meta: Meta::default(),
            body: Body::Json(Arc::new(m)),
        }
    }

    #[test]
    fn a_created_deployment_starts_without_the_status_it_was_sent_with() {
        let mut d = deployment(json!({"readyReplicas": 3, "updatedReplicas": 3}));
        prepare_for_create(&mut d);
        assert!(d.to_json()["status"].is_null());
    }

    #[test]
    fn an_update_keeps_the_stored_status() {
        let old = deployment(json!({"readyReplicas": 1}));
        let mut new = deployment(json!({"readyReplicas": 3}));
        prepare_for_update(&mut new, &old);
        assert_eq!(new.to_json()["status"]["readyReplicas"], 1);
    }

    #[test]
    fn a_namespace_or_configmap_is_stored_as_sent() {
        let mut cm = deployment(json!({"x": 1}));
        cm.kind = Kind::ConfigMap;
        prepare_for_create(&mut cm);
        assert_eq!(cm.to_json()["status"]["x"], 1);
    }
}
