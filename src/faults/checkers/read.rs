//! What the checkers read off an object, written here rather than borrowed
//! from the components they check: a pod's effective request, its
//! controller, whether it is active or ready, a workload's spec fields, a
//! taint a toleration covers. Only the API layer's plain decoders
//! (`Object`, `Selector`, `Quantity`) are shared.

use k8s_openapi::api::core::v1 as core;
use serde_json::Value as Json;

use crate::api::node::Taint;
use crate::api::object::{Body, OwnerRef};
use crate::api::pod::{PodBody, PodPhase, PodSpecModel};
use crate::api::{Object, ObjectKey};
use crate::faults::observe::RecordRef;
use crate::sim::SimTime;

/// A pod's request of the resources the checkers judge, in milli-units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub cpu: i64,
    pub memory: i64,
}

impl Requests {
    pub fn plus(self, o: Requests) -> Requests {
        Requests {
            cpu: self.cpu + o.cpu,
            memory: self.memory + o.memory,
        }
    }

    pub fn minus(self, o: Requests) -> Requests {
        Requests {
            cpu: self.cpu - o.cpu,
            memory: self.memory - o.memory,
        }
    }

    fn max(self, o: Requests) -> Requests {
        Requests {
            cpu: self.cpu.max(o.cpu),
            memory: self.memory.max(o.memory),
        }
    }

    fn of(list: &crate::api::resources::ResourceList) -> Requests {
        let milli = |k: &str| list.get(k).map_or(0, |q| q.milli_value());
        Requests {
            cpu: milli("cpu"),
            memory: milli("memory"),
        }
    }
}

/// The pod's effective request, worked out from its containers as the
/// resource-requests KEP states it: app containers and sidecars summed,
/// raised to any init container's need (the sidecars started before it
/// plus itself). Pod overhead and pod-level resources are not counted, so
/// the checkers can only under-count a pod, never accuse a node falsely.
pub fn requests(spec: &PodSpecModel) -> Requests {
    let mut apps = Requests::default();
    for c in &spec.containers {
        apps = apps.plus(Requests::of(&c.requests));
    }
    let mut sidecars = Requests::default();
    let mut init_peak = Requests::default();
    for c in &spec.init_containers {
        let own = Requests::of(&c.requests);
        if c.sidecar {
            sidecars = sidecars.plus(own);
        } else {
            init_peak = init_peak.max(sidecars.plus(own));
        }
    }
    apps.plus(sidecars).max(init_peak)
}

/// The owner reference with `controller: true`.
pub fn controller_of(o: &Object) -> Option<&OwnerRef> {
    o.meta.owner_references.iter().find(|r| r.controller)
}

/// Controlled by an object of `kind` (`"ReplicaSet"`…): its uid.
pub fn controller_uid<'a>(o: &'a Object, kind: &str) -> Option<&'a str> {
    controller_of(o)
        .filter(|r| r.kind == kind)
        .map(|r| r.uid.as_str())
}

/// `FilterActivePods`: not terminating and not finished.
pub fn is_active(o: &Object) -> bool {
    o.meta.deletion.is_none() && o.as_pod().is_some_and(|p| !is_terminal(p))
}

fn is_terminal(p: &PodBody) -> bool {
    matches!(p.status.phase, PodPhase::Succeeded | PodPhase::Failed)
}

/// Active and Ready.
pub fn is_ready(o: &Object) -> bool {
    is_active(o) && o.as_pod().is_some_and(|p| p.status.is_ready())
}

/// Active, and Ready for at least `min_ready` seconds at `now`
/// (`IsPodAvailable`).
pub fn is_available(o: &Object, min_ready: u64, now: SimTime) -> bool {
    if !is_active(o) {
        return false;
    }
    let Some(ready) = o
        .as_pod()
        .and_then(|p| p.status.condition("Ready"))
        .filter(|c| c.status)
    else {
        return false;
    };
    min_ready == 0 || ready.last_transition.0 + min_ready * 1_000_000_000 <= now.0
}

/// A JSON-bodied object's field at `path` (`["spec", "replicas"]`).
pub fn field<'a>(o: &'a Object, path: &[&str]) -> Option<&'a Json> {
    let Body::Json(m) = &o.body else { return None };
    let mut v = m.get(*path.first()?)?;
    for p in &path[1..] {
        v = v.get(*p)?;
    }
    Some(v)
}

/// `spec.replicas`, defaulting to 1 as apps/v1 defaults it.
pub fn replicas(o: &Object) -> i64 {
    field(o, &["spec", "replicas"])
        .and_then(Json::as_i64)
        .unwrap_or(1)
}

/// Whether `t` tolerates `taint` (`ToleratesTaint`: an empty effect
/// matches every effect; `Exists` with an empty key matches every key).
pub fn tolerates(t: &core::Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    let exists = t.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists;
    }
    key == taint.key && (exists || t.value.as_deref().unwrap_or("") == taint.value)
}

/// Whether a taint that keeps pods off a node (`NoSchedule`, `NoExecute`)
/// is left untolerated by `tolerations`.
pub fn repelled(tolerations: &[core::Toleration], taints: &[Taint]) -> bool {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// The `Write` record of a `full` trace for `key` at `rv`. Its `at` is the
/// commit's time; the apiserver's record follows within its watch latency.
pub fn write_ref(at: SimTime, key: &ObjectKey, rv: u64) -> RecordRef {
    RecordRef {
        at,
        event: "Write",
        key: Some(key.to_string()),
        rv: Some(rv),
    }
}

/// `kind/namespace/name` of `o`, as trace keys read.
pub fn key_of(o: &Object) -> String {
    o.key().to_string()
}

/// Every stored object of `kind`, in key order.
pub fn objects_of(
    store: &crate::model::etcd::EtcdStore,
    kind: crate::api::Kind,
) -> impl Iterator<Item = &std::sync::Arc<Object>> {
    store
        .keys()
        .filter(move |k| k.kind == kind)
        .filter_map(|k| store.get(k))
}

#[cfg(test)]
pub mod fixtures {
    //! Objects for the checkers' unit tests.
    use std::sync::Arc;

    use crate::api::object::{Body, Meta, OwnerRef};
    use crate::api::pod::{Condition, PodBody, PodPhase, PodSpecModel};
    use crate::api::{Kind, Object};
    use crate::model::etcd::store::WatchedChange;
    use crate::sim::SimTime;

    /// A pod `name` (uid `u-name`) requesting `cpu_milli`, with `owner`'s
    /// controller reference (kind, uid) if given.
    pub fn pod(name: &str, cpu_milli: i64, owner: Option<(&str, &str)>) -> Object {
        let spec = serde_json::json!({"containers": [{"name": "c", "image": "nginx",
            "resources": {"requests": {"cpu": format!("{cpu_milli}m"), "memory": "1Mi"}}}]});
        let api: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(spec).expect("spec");
        let spec = PodSpecModel::from_api(&api, &Default::default()).expect("spec");
        let mut meta = Meta {
            name: name.into(),
            namespace: "default".into(),
            uid: format!("u-{name}"),
            ..Meta::default()
        };
        if let Some((kind, uid)) = owner {
            meta.owner_references.push(OwnerRef {
                api_version: "apps/v1".into(),
                kind: kind.into(),
                name: uid.into(),
                uid: uid.into(),
                controller: true,
                block_owner_deletion: true,
            });
        }
        Object {
            kind: Kind::Pod,
            meta,
            body: Body::Pod(PodBody::new(Arc::new(spec), None)),
        }
    }

    /// `p` bound to `node`.
    pub fn bound(mut p: Object, node: &str) -> Object {
        if let Body::Pod(b) = &mut p.body {
            b.node_name = Some(node.into());
        }
        p
    }

    /// `p` Running and Ready (since `since`) or not.
    pub fn ready(mut p: Object, ready: bool, since: SimTime) -> Object {
        if let Body::Pod(b) = &mut p.body {
            b.status.phase = PodPhase::Running;
            b.status.conditions = vec![Condition {
                type_: "Ready",
                status: ready,
                last_transition: since,
                reason: None,
                message: None,
            }];
        }
        p
    }

    /// `p` with a deletionTimestamp.
    pub fn terminating(mut p: Object, at: SimTime) -> Object {
        p.meta.deletion = Some(at);
        p
    }

    /// A JSON-bodied object of `kind` with `body` (everything but
    /// metadata), uid `u-name`.
    pub fn json_object(kind: Kind, name: &str, body: serde_json::Value) -> Object {
        let serde_json::Value::Object(m) = body else {
            panic!("a mapping")
        };
        Object {
            kind,
            meta: Meta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("u-{name}"),
                generation: 1,
                ..Meta::default()
            },
            body: Body::Json(Arc::new(m)),
        }
    }

    /// The change writing `value` over `prev` at `revision`.
    pub fn change(revision: u64, prev: Option<&Object>, value: Option<&Object>) -> WatchedChange {
        let mut value = value.cloned();
        if let Some(v) = &mut value {
            v.meta.resource_version = revision;
        }
        let key = value.as_ref().or(prev).expect("an object").key();
        WatchedChange {
            revision,
            key,
            value: value.map(Arc::new),
            prev: prev.cloned().map(Arc::new),
        }
    }

    /// A node `name` with `cpu_milli` allocatable (and 110 pods, 16Gi),
    /// Ready (since time zero) or not.
    pub fn node(name: &str, cpu_milli: i64, ready: bool) -> Object {
        use crate::api::node::{NodeBody, NodeCondition};
        use crate::api::quantity::Quantity;
        let alloc: crate::api::resources::ResourceList = [
            ("cpu".to_string(), Quantity::from_milli(cpu_milli)),
            ("memory".to_string(), Quantity::parse("16Gi").unwrap()),
            ("pods".to_string(), Quantity::from_units(110)),
        ]
        .into();
        let cond = NodeCondition {
            type_: "Ready",
            status: if ready { "True" } else { "False" },
            last_heartbeat: SimTime::ZERO,
            last_transition: SimTime::ZERO,
            reason: "",
            message: "",
        };
        Object {
            kind: Kind::Node,
            meta: Meta {
                name: name.into(),
                uid: format!("u-{name}"),
                ..Meta::default()
            },
            body: Body::Node(NodeBody {
                unschedulable: false,
                taints: Vec::new(),
                pod_cidr: None,
                capacity: alloc.clone(),
                allocatable: alloc,
                conditions: vec![cond],
                addresses: Vec::new(),
                images: Vec::new(),
                kubelet_version: String::new(),
            }),
        }
    }

    /// A store holding `objects` (a restored snapshot).
    pub fn store(objects: Vec<Object>) -> crate::model::etcd::EtcdStore {
        let mut s = crate::model::etcd::EtcdStore::new();
        s.seed(objects);
        s
    }
}
