//! DeviceClasses and ResourceClaims as the allocator and the components
//! read them, and the allocation result the scheduler writes into a
//! claim's status.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::cel::{compile, Selector};
use crate::api::object::Body;
use crate::api::Object;

/// `ResourceClaimMaxRequests`.
pub const MAX_REQUESTS: usize = 32;
/// `DeviceSelectorsMaxSize`.
pub const MAX_SELECTORS: usize = 32;
/// `AllocationResultsMaxSize`: devices one claim may be allocated.
pub const MAX_ALLOCATED_DEVICES: usize = 32;
/// `ResourceClaimReservedForMaxSize`.
pub const MAX_RESERVED_FOR: usize = 256;

/// Field path and message of a refused object.
pub type Invalid = (String, String);

/// A DeviceClass: the selectors every request for it adds.
#[derive(Debug)]
pub struct DeviceClass {
    pub name: String,
    pub selectors: Vec<Selector>,
}

/// How many devices a request wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    ExactCount(u32),
    /// Every matching device of the node's pools (fails if one is in use).
    All,
}

/// One `spec.devices.requests[]` entry (`exactly`).
#[derive(Debug)]
pub struct Request {
    pub name: String,
    pub class: String,
    pub selectors: Vec<Selector>,
    pub mode: Mode,
}

/// One allocated device (`status.allocation.devices.results[]`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceResult {
    pub request: String,
    pub driver: String,
    pub pool: String,
    pub device: String,
}

/// `status.allocation`: the devices and the node they are reachable from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub results: Vec<DeviceResult>,
    /// The node of node-local devices (the allocation's node selector).
    pub node: Option<String>,
}

/// A pod a claim is reserved for (`status.reservedFor[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub name: String,
    pub uid: String,
}

/// A ResourceClaim: its requests, and its status.
#[derive(Debug)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: u64,
    pub requests: Vec<Request>,
    pub allocation: Option<Allocation>,
    pub reserved_for: Vec<Consumer>,
    pub deleting: bool,
}

fn body(o: &Object) -> Option<&serde_json::Map<String, Json>> {
    match &o.body {
        Body::Json(m) => Some(m),
        _ => None,
    }
}

/// `selectors[]` of a class or a request: each `cel.expression` compiled.
fn selectors(list: Option<&Json>, path: &str) -> Result<Vec<Selector>, Invalid> {
    let list = list
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.len() > MAX_SELECTORS {
        return Err((
            path.into(),
            format!("must have at most {MAX_SELECTORS} items"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let at = format!("{path}[{i}].cel.expression");
            let expr = s
                .pointer("/cel/expression")
                .and_then(Json::as_str)
                .ok_or_else(|| (at.clone(), "Required value".to_string()))?;
            compile(expr).map_err(|m| (at, m))
        })
        .collect()
}

impl DeviceClass {
    pub fn from_object(o: &Object) -> Result<DeviceClass, Invalid> {
        let sel = body(o)
            .and_then(|b| b.get("spec"))
            .and_then(|s| s.get("selectors"));
        Ok(DeviceClass {
            name: o.meta.name.clone(),
            selectors: selectors(sel, "spec.selectors")?,
        })
    }
}

/// Reads `spec.devices` of a claim (or of a template's `spec.spec`):
/// the requests kubesim allocates. Constraints, `firstAvailable`
/// alternatives, `adminAccess` and device config are refused rather than
/// silently ignored.
pub fn requests(devices: Option<&Json>, path: &str) -> Result<Vec<Request>, Invalid> {
    let Some(devices) = devices else {
        return Ok(Vec::new());
    };
    for unmodelled in ["constraints", "config"] {
        if devices
            .get(unmodelled)
            .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            let msg = "kubesim does not model DRA device constraints or config yet".to_string();
            return Err((format!("{path}.{unmodelled}"), msg));
        }
    }
    let list = devices
        .get("requests")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.len() > MAX_REQUESTS {
        let msg = format!("must have at most {MAX_REQUESTS} items");
        return Err((format!("{path}.requests"), msg));
    }
    let mut out: Vec<Request> = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let at = format!("{path}.requests[{i}]");
        let name = r.get("name").and_then(Json::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err((format!("{at}.name"), "Required value".into()));
        }
        if out.iter().any(|o| o.name == name) {
            return Err((format!("{at}.name"), format!("Duplicate value: {name:?}")));
        }
        if r.get("firstAvailable").is_some() {
            let msg = "kubesim does not model firstAvailable alternatives yet".to_string();
            return Err((format!("{at}.firstAvailable"), msg));
        }
        let exactly = r.get("exactly").ok_or_else(|| {
            (
                format!("{at}.exactly"),
                "Required value: exactly one of exactly or firstAvailable is required".into(),
            )
        })?;
        out.push(exact_request(name, exactly, &format!("{at}.exactly"))?);
    }
    Ok(out)
}

fn exact_request(name: &str, e: &Json, at: &str) -> Result<Request, Invalid> {
    let class = e
        .get("deviceClassName")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if class.is_empty() {
        return Err((format!("{at}.deviceClassName"), "Required value".into()));
    }
    if e.get("adminAccess").and_then(Json::as_bool) == Some(true) {
        let msg = "kubesim does not model adminAccess yet".to_string();
        return Err((format!("{at}.adminAccess"), msg));
    }
    let mode = match e
        .get("allocationMode")
        .and_then(Json::as_str)
        .unwrap_or("ExactCount")
    {
        "ExactCount" => {
            let count = e.get("count").map_or(Some(1), Json::as_i64);
            match count {
                Some(c) if (1..=MAX_ALLOCATED_DEVICES as i64).contains(&c) => {
                    Mode::ExactCount(c as u32)
                }
                _ => {
                    let msg = format!("must be in the range 1 to {MAX_ALLOCATED_DEVICES}");
                    return Err((format!("{at}.count"), msg));
                }
            }
        }
        "All" => Mode::All,
        other => {
            let msg =
                format!("Unsupported value: {other:?}: supported values: \"All\", \"ExactCount\"");
            return Err((format!("{at}.allocationMode"), msg));
        }
    };
    Ok(Request {
        name: name.to_string(),
        class: class.to_string(),
        selectors: selectors(e.get("selectors"), &format!("{at}.selectors"))?,
        mode,
    })
}

impl Claim {
    pub fn from_object(o: &Object) -> Result<Claim, Invalid> {
        let b = body(o).ok_or(("spec".to_string(), "is required".to_string()))?;
        let devices = b.get("spec").and_then(|s| s.get("devices"));
        let status = b.get("status");
        let allocation = status
            .and_then(|s| s.get("allocation"))
            .filter(|a| !a.is_null())
            .map(allocation_from_json);
        let reserved_for = status
            .and_then(|s| s.get("reservedFor"))
            .and_then(Json::as_array)
            .map(|l| {
                l.iter()
                    .map(|c| Consumer {
                        name: c
                            .get("name")
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .into(),
                        uid: c
                            .get("uid")
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Claim {
            namespace: o.meta.namespace.clone(),
            name: o.meta.name.clone(),
            uid: o.meta.uid.clone(),
            resource_version: o.meta.resource_version,
            requests: requests(devices, "spec.devices")?,
            allocation,
            reserved_for,
            deleting: o.meta.deletion.is_some(),
        })
    }

    pub fn reserved_for_pod(&self, uid: &str) -> bool {
        self.reserved_for.iter().any(|c| c.uid == uid)
    }
}

fn allocation_from_json(a: &Json) -> Allocation {
    let s = |v: &Json, k: &str| {
        v.get(k)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let results = a
        .pointer("/devices/results")
        .and_then(Json::as_array)
        .map(|l| {
            l.iter()
                .map(|r| DeviceResult {
                    request: s(r, "request"),
                    driver: s(r, "driver"),
                    pool: s(r, "pool"),
                    device: s(r, "device"),
                })
                .collect()
        })
        .unwrap_or_default();
    let node = a
        .pointer("/nodeSelector/nodeSelectorTerms/0/matchFields/0/values/0")
        .and_then(Json::as_str)
        .map(String::from);
    Allocation { results, node }
}

impl Allocation {
    /// `status.allocation` as upstream's allocator writes it: node-local
    /// devices give a node selector on the node's name.
    pub fn to_json(&self) -> Json {
        let results: Vec<Json> = self
            .results
            .iter()
            .map(|r| json!({"request": r.request, "driver": r.driver, "pool": r.pool, "device": r.device}))
            .collect();
        let mut a = json!({ "devices": { "results": results } });
        if let Some(n) = &self.node {
            a["nodeSelector"] = json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [n]}
            ]}]});
        }
        a
    }
}

/// The claims a pod's `spec.resourceClaims` names, resolved to claim
/// names: a `resourceClaimName` as written, a template's through
/// `status.resourceClaimStatuses`. `Err` names the first that has no
/// claim yet (the resourceclaim controller has not created it).
pub fn pod_claim_names(pod: &Object) -> Result<Vec<String>, String> {
    let Some(p) = pod.as_pod() else {
        return Ok(Vec::new());
    };
    let Some(list) = &p.spec.api.resource_claims else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|c| {
            if let Some(n) = &c.resource_claim_name {
                return Ok(n.clone());
            }
            p.status
                .resource_claim_statuses
                .iter()
                .find(|(name, _)| *name == c.name)
                .and_then(|(_, claim)| claim.clone())
                .ok_or_else(|| c.name.clone())
        })
        .collect()
}

/// Whether a pod uses DRA at all.
pub fn pod_has_claims(pod: &Object) -> bool {
    pod.as_pod()
        .and_then(|p| p.spec.api.resource_claims.as_ref())
        .is_some_and(|l| !l.is_empty())
}

/// `obj` (a ResourceClaim) with its `status` changed by `f`, as an
/// UpdateStatus conditioned on the version it was read at.
pub fn status_update(
    obj: &Object,
    f: impl FnOnce(&mut serde_json::Map<String, Json>),
) -> crate::model::apiserver::request::ApiRequest {
    use crate::model::apiserver::request::{ApiRequest, Verb};
    let mut body = match &obj.body {
        Body::Json(m) => (**m).clone(),
        _ => serde_json::Map::new(),
    };
    let status = body.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    f(status.as_object_mut().expect("made an object above"));
    let mut o = obj.clone();
    o.body = Body::Json(Arc::new(body));
    let kind = crate::api::Kind::ResourceClaim;
    let mut req = ApiRequest::new(
        Verb::UpdateStatus,
        kind,
        &obj.meta.namespace,
        &obj.meta.name,
    );
    req.resource_version = obj.meta.resource_version;
    req.body = Some(Arc::new(o));
    req
}

/// The scheduler's PreBind write: the allocation (when it made one) and
/// the pod appended to `reservedFor`, in one UpdateStatus.
pub fn reserve_request(
    obj: &Object,
    allocation: Option<&Allocation>,
    pod: &Object,
) -> crate::model::apiserver::request::ApiRequest {
    status_update(obj, |s| {
        if let Some(a) = allocation {
            s.insert("allocation".into(), a.to_json());
        }
        let list = s.entry("reservedFor").or_insert_with(|| json!([]));
        if let Some(l) = list.as_array_mut() {
            l.push(json!({"resource": "pods", "name": pod.meta.name, "uid": pod.meta.uid}));
        }
    })
}
