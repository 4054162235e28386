//! The modelled DRA driver of a node pool: its kubelet plugin publishes
//! the node's devices as one ResourceSlice (a pool named after the node,
//! generation 1, one slice), owned by the Node so the garbage collector
//! removes it with the node, and prepares a pod's claims before its
//! sandbox starts (`NodePrepareResources`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::device::{AttrValue, MAX_ATTRIBUTES_AND_CAPACITIES, MAX_DEVICES_PER_SLICE};
use crate::api::object::{Body, Meta, OwnerRef};
use crate::api::quantity::Quantity;
use crate::api::{Kind, Object};
use crate::sim::SimDuration;

/// One driver on a pool's nodes: `count` identical devices.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverSpec {
    pub driver: String,
    pub count: u32,
    /// Unqualified names take the driver's domain; `index` is added per
    /// device unless given.
    pub attributes: BTreeMap<String, AttrValue>,
    pub capacity: BTreeMap<String, Quantity>,
    /// How long `NodePrepareResources` takes for one pod.
    pub prepare: SimDuration,
}

/// kubesim's default for `NodePrepareResources` (a local gRPC call that
/// writes CDI specs: milliseconds).
pub const DEFAULT_PREPARE: SimDuration = SimDuration::from_millis(20);

impl DriverSpec {
    /// Checks the API's limits; `Err` is (field, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.count as usize > MAX_DEVICES_PER_SLICE {
            let msg =
                format!("must be at most {MAX_DEVICES_PER_SLICE} (devices in one ResourceSlice)");
            return Err(("count".into(), msg));
        }
        let index = usize::from(!self.attributes.contains_key("index"));
        if self.attributes.len() + self.capacity.len() + index > MAX_ATTRIBUTES_AND_CAPACITIES {
            let msg = format!("attributes and capacity must total at most {MAX_ATTRIBUTES_AND_CAPACITIES} per device");
            return Err(("attributes".into(), msg));
        }
        Ok(())
    }

    /// The slice's name: `<node>-<driver>` (upstream's helper generates
    /// one; a fixed name lets a restarted kubelet find its own).
    pub fn slice_name(&self, node: &str) -> String {
        format!("{node}-{}", self.driver.replace('/', "-"))
    }

    /// The ResourceSlice this driver publishes for `node` (uid `node_uid`).
    pub fn resource_slice(&self, node: &str, node_uid: &str) -> Object {
        let devices: Vec<Json> = (0..self.count)
            .map(|i| {
                let mut attrs = Map::new();
                if !self.attributes.contains_key("index") {
                    attrs.insert("index".into(), AttrValue::Int(i as i64).to_json());
                }
                for (k, v) in &self.attributes {
                    attrs.insert(k.clone(), v.to_json());
                }
                let caps: Map<String, Json> = self
                    .capacity
                    .iter()
                    .map(|(k, q)| (k.clone(), json!({ "value": q.canonical(true) })))
                    .collect();
                json!({"name": format!("{}-{i}", device_prefix(&self.driver)), "attributes": attrs, "capacity": caps})
            })
            .collect();
        let mut body = Map::new();
        body.insert(
            "spec".into(),
            json!({
                "driver": self.driver,
                "nodeName": node,
                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": devices,
            }),
        );
        let meta = Meta {
            name: self.slice_name(node),
            owner_references: vec![OwnerRef {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node.into(),
                uid: node_uid.into(),
                controller: true,
                block_owner_deletion: false,
            }],
            ..Default::default()
        };
        Object {
            kind: Kind::ResourceSlice,
            meta,
            body: Body::Json(Arc::new(body)),
        }
    }
}

/// Device names: the driver's first label (`gpu` for `gpu.example.com`).
fn device_prefix(driver: &str) -> &str {
    driver
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("device")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dra::device::Slice;

    #[test]
    fn the_published_slice_reads_back_with_qualified_names() {
        let d = DriverSpec {
            driver: "gpu.example.com".into(),
            count: 2,
            attributes: [("model".to_string(), AttrValue::Str("T4".into()))]
                .into_iter()
                .collect(),
            capacity: [("memory".to_string(), Quantity::parse("16Gi").unwrap())]
                .into_iter()
                .collect(),
            prepare: DEFAULT_PREPARE,
        };
        let o = d.resource_slice("n1", "uid-1");
        assert_eq!(o.meta.name, "n1-gpu.example.com");
        let s = Slice::from_object(&o).unwrap();
        assert_eq!(s.node.as_deref(), Some("n1"));
        assert_eq!(s.devices.len(), 2);
        assert_eq!(s.devices[1].name, "gpu-1");
        assert_eq!(
            s.devices[1].attributes["gpu.example.com/index"],
            AttrValue::Int(1)
        );
        assert_eq!(
            s.devices[0].capacity["gpu.example.com/memory"],
            Quantity::parse("16Gi").unwrap()
        );
    }
}
