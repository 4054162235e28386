//! The Endpoints controller (`pkg/controller/endpoint`): for every Service
//! with a selector, an Endpoints object of the same name listing the
//! matching pods' IPs, ready ones under `addresses` and the rest under
//! `notReadyAddresses`, with each Service port resolved against the pod's
//! container ports. This is what kube-proxy routes to, so it is what says
//! how much of a Service was serving during a rollout or a node failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workload::{json_body, json_object, key_of, split_key, typed};
use super::workqueue::WorkQueue;
use crate::api::object::Meta;
use crate::api::pod::PodPhase;
use crate::api::selector::Selector;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, Verb};
use crate::sim::SimTime;

/// `maxCapacity`: addresses beyond this are truncated.
pub const MAX_CAPACITY: usize = 1000;
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

#[derive(Default)]
pub struct EndpointsController;

/// The Service's selector, if it has one (`nil` selects nothing: those
/// Endpoints are managed by hand).
fn service_selector(svc: &Object) -> Option<Selector> {
    let s = json_body(svc)?.get("spec")?.get("selector")?.as_object()?;
    let labels: BTreeMap<String, String> = s
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    Some(Selector::from_map(&labels))
}

/// `podutil.FindPort`: the container port a Service port targets on `pod`.
fn find_port(spec: &core::PodSpec, port: &core::ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name)
                    && p.protocol.as_deref().unwrap_or("TCP")
                        == port.protocol.as_deref().unwrap_or("TCP")
            })
            .map(|p| p.container_port),
    }
}

/// One subset being built: its ports, and (ip, address) ready and not.
type Subset = (Json, Vec<(String, Json)>, Vec<(String, Json)>);

/// The Endpoints `subsets` for a Service over the pods it selects.
pub fn subsets(svc: &core::Service, pods: &[&Arc<Object>]) -> (Vec<Json>, bool) {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let ports = spec.ports.unwrap_or_default();
    // Pods grouped by the ports they resolve to (`RepackSubsets`).
    let mut groups: BTreeMap<String, Subset> = BTreeMap::new();
    let mut total = 0;
    for p in pods {
        let Some(body) = p.as_pod() else { continue };
        let Some(ip) = body.status.pod_ip.as_deref() else {
            continue;
        };
        if matches!(body.status.phase, PodPhase::Succeeded | PodPhase::Failed) {
            continue;
        }
        if p.meta.deletion.is_some() && !publish_not_ready {
            continue;
        }
        let resolved: Vec<Json> = ports
            .iter()
            .filter_map(|sp| {
                let n = find_port(&body.spec.api, sp)?;
                let mut e = json!({"port": n, "protocol": sp.protocol.as_deref().unwrap_or("TCP")});
                if let Some(name) = &sp.name {
                    e["name"] = json!(name);
                }
                Some(e)
            })
            .collect();
        let addr = json!({
            "ip": ip,
            "nodeName": body.node_name,
            "targetRef": {"kind": "Pod", "namespace": p.meta.namespace, "name": p.meta.name, "uid": p.meta.uid},
        });
        let ports_json = Json::Array(resolved);
        let entry = groups
            .entry(ports_json.to_string())
            .or_insert_with(|| (ports_json, Vec::new(), Vec::new()));
        total += 1;
        if total > MAX_CAPACITY {
            continue;
        }
        if body.status.is_ready() || publish_not_ready {
            entry.1.push((ip.to_string(), addr));
        } else {
            entry.2.push((ip.to_string(), addr));
        }
    }
    let out = groups
        .into_values()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by(|a, b| a.0.cmp(&b.0));
            not_ready.sort_by(|a, b| a.0.cmp(&b.0));
            let mut s = serde_json::Map::new();
            if !ready.is_empty() {
                s.insert(
                    "addresses".into(),
                    Json::Array(ready.into_iter().map(|x| x.1).collect()),
                );
            }
            if !not_ready.is_empty() {
                s.insert(
                    "notReadyAddresses".into(),
                    Json::Array(not_ready.into_iter().map(|x| x.1).collect()),
                );
            }
            if ports.as_array().is_some_and(|a| !a.is_empty()) {
                s.insert("ports".into(), ports);
            }
            Json::Object(s)
        })
        .collect();
    (out, total > MAX_CAPACITY)
}

impl Controller for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoints-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        match ev.kind {
            Kind::Service => queue.add(&key_of(ev.object())),
            Kind::Pod => {
                // Every Service that selected the pod before or after.
                let objs = [ev.old.as_ref(), ev.new.as_ref()];
                let ns = &ev.object().meta.namespace;
                for svc in cache.list(Kind::Service, ns) {
                    let Some(sel) = service_selector(svc) else {
                        continue;
                    };
                    if objs.iter().flatten().any(|p| sel.matches(&p.meta.labels)) {
                        queue.add(&key_of(svc));
                    }
                }
            }
            // Someone else deleted it: put it back as it should be.
            Kind::Endpoints if ev.new.is_none() => queue.add(&key_of(ev.object())),
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let current = cx.cache.get(Kind::Endpoints, ns, name).cloned();
        let Some(svc) = cx.cache.get(Kind::Service, ns, name).cloned() else {
            if current.is_some() {
                cx.send(ApiRequest::new(Verb::Delete, Kind::Endpoints, ns, name));
            }
            return;
        };
        let Some(sel) = service_selector(&svc) else {
            return;
        };
        let Some(api) = typed::<core::Service>(&svc) else {
            return;
        };
        let pods: Vec<&Arc<Object>> = cx
            .cache
            .list(Kind::Pod, ns)
            .filter(|p| sel.matches(&p.meta.labels))
            .collect();
        let (subsets, truncated) = subsets(&api, &pods);
        let mut labels: BTreeMap<String, String> = (*svc.meta.labels).clone();
        if api.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
            labels.insert("service.kubernetes.io/headless".into(), String::new());
        }
        let mut annotations = BTreeMap::new();
        if truncated {
            annotations.insert(OVER_CAPACITY.to_string(), "truncated".to_string());
        }
        let body = json!({ "subsets": subsets });
        if let Some(cur) = &current {
            let same_body = json_body(cur).and_then(|m| m.get("subsets")) == Some(&body["subsets"]);
            if same_body && *cur.meta.labels == labels {
                return;
            }
        }
        let meta = Meta {
            name: name.to_string(),
            namespace: ns.to_string(),
            labels: Arc::new(labels),
            annotations: Arc::new(annotations),
            ..current.as_ref().map(|c| c.meta.clone()).unwrap_or_default()
        };
        let obj = json_object(Kind::Endpoints, meta, body);
        let mut req = match &current {
            Some(cur) => {
                let mut r = ApiRequest::new(Verb::Update, Kind::Endpoints, ns, name);
                r.resource_version = cur.meta.resource_version;
                r
            }
            None => ApiRequest::new(Verb::Create, Kind::Endpoints, ns, ""),
        };
        req.body = Some(Arc::new(obj));
        cx.send(req);
    }

    fn reset(&mut self) {}
}
