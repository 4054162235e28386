//! The selector PodTopologySpread's default constraints spread a pod by:
//! the selectors of the Services that select it, merged with the selector
//! of the ReplicationController, ReplicaSet or StatefulSet controlling it.
//! A pod none of them selects gets no default spreading.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::object::Body;
use crate::api::selector::Selector;
use crate::api::{Kind, Object, ObjectKey};
use crate::scheduler::pod_info::PodInfo;

/// The objects default spreading reads, as the scheduler's informers hold them.
#[derive(Default, Debug)]
pub struct OwnerCache {
    pub objects: BTreeMap<ObjectKey, Arc<Object>>,
}

fn spec_field<'a>(obj: &'a Object, field: &str) -> Option<&'a serde_json::Value> {
    match &obj.body {
        Body::Json(m) => m.get("spec").and_then(|s| s.get(field)),
        _ => None,
    }
}

fn plain_map(v: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    v.and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn label_selector(v: Option<&serde_json::Value>) -> Option<Selector> {
    let s: LabelSelector = serde_json::from_value(v?.clone()).ok()?;
    Selector::from_api(&s).ok()
}

impl OwnerCache {
    /// Whether the scheduler keeps objects of `kind` here.
    pub fn wants(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Service | Kind::ReplicationController | Kind::ReplicaSet | Kind::StatefulSet
        )
    }

    /// The default selector for `pod`; `None` when nothing selects it.
    pub fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let services = ObjectKey {
            kind: Kind::Service,
            namespace: pod.namespace.clone(),
            name: String::new(),
        };
        for (k, svc) in self.objects.range(services..) {
            if k.kind != Kind::Service || k.namespace != pod.namespace {
                break;
            }
            let sel = plain_map(spec_field(svc, "selector"));
            // A Service without a selector selects no pods.
            if !sel.is_empty() && Selector::from_map(&sel).matches(&pod.labels) {
                labels.extend(sel);
            }
        }
        let mut selector = Selector::from_map(&labels);
        if let Some((kind, name)) = &pod.controller {
            let kind = match kind.as_str() {
                "ReplicationController" => Some(Kind::ReplicationController),
                "ReplicaSet" => Some(Kind::ReplicaSet),
                "StatefulSet" => Some(Kind::StatefulSet),
                _ => None,
            };
            let owner = kind.and_then(|kind| {
                self.objects.get(&ObjectKey {
                    kind,
                    namespace: pod.namespace.clone(),
                    name: name.clone(),
                })
            });
            if let Some(o) = owner {
                if o.kind == Kind::ReplicationController {
                    labels.extend(plain_map(spec_field(o, "selector")));
                    selector = Selector::from_map(&labels);
                } else if let Some(s) = label_selector(spec_field(o, "selector")) {
                    selector.requirements.extend(s.requirements);
                }
            }
        }
        selector.requirements.dedup_by(|a, b| a == b);
        (!selector.is_empty()).then_some(selector)
    }
}
