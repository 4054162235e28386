//! ResourceSlices as the allocator reads them: a driver's pool of devices,
//! each with typed attributes and capacities. Attribute and capacity names
//! without a domain belong to the driver's (upstream qualifies them so:
//! `model` of driver `gpu.example.com` is `gpu.example.com/model`).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::api::object::Body;
use crate::api::quantity::Quantity;
use crate::api::Object;

/// A device attribute's value (`DeviceAttribute`: exactly one of these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// A semantic version (`version:`), compared as semver.
    Version(String),
}

impl AttrValue {
    /// From the `{"int": 4}` shape; `Err` names what is wrong.
    pub fn from_json(v: &Json) -> Result<AttrValue, String> {
        let m = v.as_object().ok_or("must be an object")?;
        if m.len() != 1 {
            return Err("exactly one of bool, int, string or version must be set".into());
        }
        let (k, v) = m.iter().next().expect("one entry");
        match (k.as_str(), v) {
            ("bool", Json::Bool(b)) => Ok(AttrValue::Bool(*b)),
            ("int", Json::Number(n)) => n
                .as_i64()
                .map(AttrValue::Int)
                .ok_or_else(|| "int: must be a 64-bit integer".into()),
            ("string", Json::String(s)) => Ok(AttrValue::Str(s.clone())),
            ("version", Json::String(s)) => {
                super::cel::Semver::parse(s).map_err(|e| format!("version: {e}"))?;
                Ok(AttrValue::Version(s.clone()))
            }
            (k @ ("bool" | "int" | "string" | "version"), _) => Err(format!("{k}: wrong type")),
            (k, _) => Err(format!("unknown field {k:?}")),
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            AttrValue::Bool(b) => serde_json::json!({ "bool": b }),
            AttrValue::Int(i) => serde_json::json!({ "int": i }),
            AttrValue::Str(s) => serde_json::json!({ "string": s }),
            AttrValue::Version(s) => serde_json::json!({ "version": s }),
        }
    }
}

/// One device of a slice. Names are fully qualified (`domain/name`).
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub name: String,
    pub attributes: BTreeMap<String, AttrValue>,
    pub capacity: BTreeMap<String, Quantity>,
}

/// A ResourceSlice: part of a driver's pool, local to one node or not.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub name: String,
    pub driver: String,
    pub pool: String,
    pub generation: i64,
    pub slice_count: i64,
    /// `spec.nodeName`: the devices are on this node only.
    pub node: Option<String>,
    /// `spec.allNodes`: reachable from every node.
    pub all_nodes: bool,
    pub devices: Vec<Device>,
}

/// `name` qualified with `driver`'s domain unless it has one.
pub fn qualify(driver: &str, name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("{driver}/{name}")
    }
}

fn spec_of(o: &Object) -> Option<&serde_json::Map<String, Json>> {
    match &o.body {
        Body::Json(m) => m.get("spec")?.as_object(),
        _ => None,
    }
}

impl Slice {
    /// Reads a ResourceSlice object; `Err` is `(field path, message)`.
    pub fn from_object(o: &Object) -> Result<Slice, (String, String)> {
        let spec = spec_of(o).ok_or(("spec".to_string(), "is required".to_string()))?;
        let s = |k: &str| spec.get(k).and_then(Json::as_str).unwrap_or_default();
        let driver = s("driver").to_string();
        if driver.is_empty() {
            return Err(("spec.driver".into(), "Required value".into()));
        }
        let pool = spec.get("pool").and_then(Json::as_object);
        let pool_name = pool
            .and_then(|p| p.get("name"))
            .and_then(Json::as_str)
            .unwrap_or_default();
        if pool_name.is_empty() {
            return Err(("spec.pool.name".into(), "Required value".into()));
        }
        let int = |k: &str| pool.and_then(|p| p.get(k)).and_then(Json::as_i64);
        let node = spec
            .get("nodeName")
            .and_then(Json::as_str)
            .map(String::from);
        let all_nodes = spec.get("allNodes").and_then(Json::as_bool) == Some(true);
        let devices = spec
            .get("devices")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if devices.len() > MAX_DEVICES_PER_SLICE {
            let msg = format!("must have at most {MAX_DEVICES_PER_SLICE} items");
            return Err(("spec.devices".into(), msg));
        }
        let devices = devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                device(&driver, d).map_err(|(f, m)| (format!("spec.devices[{i}].{f}"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Slice {
            name: o.meta.name.clone(),
            pool: pool_name.to_string(),
            generation: int("generation").unwrap_or(0),
            slice_count: int("resourceSliceCount").unwrap_or(1),
            node,
            all_nodes,
            devices,
            driver,
        })
    }

    /// Whether a pod on `node` can use this slice's devices.
    pub fn reachable_from(&self, node: &str) -> bool {
        self.all_nodes || self.node.as_deref() == Some(node)
    }
}

/// `ResourceSliceMaxDevices` in v1.
pub const MAX_DEVICES_PER_SLICE: usize = 128;
/// `ResourceSliceMaxAttributesAndCapacitiesPerDevice`.
pub const MAX_ATTRIBUTES_AND_CAPACITIES: usize = 32;

fn device(driver: &str, d: &Json) -> Result<Device, (String, String)> {
    let name = d.get("name").and_then(Json::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err(("name".into(), "Required value".into()));
    }
    let empty = serde_json::Map::new();
    let map = |k: &str| d.get(k).and_then(Json::as_object).unwrap_or(&empty);
    let (attrs, caps) = (map("attributes"), map("capacity"));
    if attrs.len() + caps.len() > MAX_ATTRIBUTES_AND_CAPACITIES {
        let msg = format!("the total number of attributes and capacities must not exceed {MAX_ATTRIBUTES_AND_CAPACITIES}");
        return Err(("attributes".into(), msg));
    }
    let mut attributes = BTreeMap::new();
    for (k, v) in attrs {
        let v = AttrValue::from_json(v).map_err(|m| (format!("attributes[{k}]"), m))?;
        attributes.insert(qualify(driver, k), v);
    }
    let mut capacity = BTreeMap::new();
    for (k, v) in caps {
        let text = v.get("value").and_then(Json::as_str);
        let q = text
            .ok_or_else(|| "value: Required value".to_string())
            .and_then(|t| Quantity::parse(t).map_err(|e| format!("value: {e}")))
            .map_err(|m| (format!("capacity[{k}]"), m))?;
        capacity.insert(qualify(driver, k), q);
    }
    Ok(Device {
        name: name.to_string(),
        attributes,
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_take_exactly_one_type() {
        assert_eq!(
            AttrValue::from_json(&serde_json::json!({"int": 4})),
            Ok(AttrValue::Int(4))
        );
        assert!(AttrValue::from_json(&serde_json::json!({"int": 4, "bool": true})).is_err());
        assert!(AttrValue::from_json(&serde_json::json!({"version": "one"})).is_err());
        assert!(AttrValue::from_json(&serde_json::json!({"string": 3})).is_err());
    }

    #[test]
    fn names_without_a_domain_take_the_driver_s() {
        assert_eq!(qualify("gpu.example.com", "model"), "gpu.example.com/model");
        assert_eq!(qualify("gpu.example.com", "x.io/model"), "x.io/model");
    }
}
