//! Dynamic Resource Allocation (resource.k8s.io/v1, GA in v1.34): the
//! device model the scheduler, the resourceclaim controller and the
//! kubelet share.
//!
//! - [`device`]: ResourceSlices as the allocator reads them (a pool's
//!   devices with their attributes and capacity);
//! - [`claim`]: DeviceClasses, ResourceClaims and their allocation results;
//! - [`cel`]: the selectors' CEL environment (`device.driver`,
//!   `device.attributes`, `device.capacity`, Kubernetes' quantity and
//!   semver functions);
//! - [`allocator`]: upstream's structured allocator for one node;
//! - [`driver`]: the modelled DRA driver that publishes a node's slice.
//!
//! Nothing here talks to the apiserver: the components that do parse the
//! objects their informers hold with these types.

pub mod allocator;
pub mod cel;
pub mod claim;
pub mod device;
pub mod driver;

/// The API group's version, in the `apiVersion` of the objects it writes.
pub const API_VERSION: &str = "resource.k8s.io/v1";

use crate::api::{Kind, Object};

/// Validates a DRA object as the apiserver would, as far as kubesim reads
/// it (selectors compile, limits hold, unmodelled fields are refused):
/// `Err` is (field path, message).
pub fn validate(o: &Object) -> Result<(), claim::Invalid> {
    match o.kind {
        Kind::DeviceClass => claim::DeviceClass::from_object(o).map(drop),
        Kind::ResourceClaim => claim::Claim::from_object(o).map(drop),
        Kind::ResourceSlice => device::Slice::from_object(o).map(drop),
        Kind::ResourceClaimTemplate => {
            let devices = match &o.body {
                crate::api::object::Body::Json(m) => {
                    m.get("spec").and_then(|s| s.pointer("/spec/devices"))
                }
                _ => None,
            };
            claim::requests(devices, "spec.spec.devices").map(drop)
        }
        _ => Ok(()),
    }
}

/// Whether `o` is a DRA object or runs pods that use claims.
pub fn involves_dra(o: &Object) -> bool {
    if matches!(
        o.kind,
        Kind::DeviceClass | Kind::ResourceClaim | Kind::ResourceClaimTemplate | Kind::ResourceSlice
    ) {
        return true;
    }
    if claim::pod_has_claims(o) {
        return true;
    }
    let crate::api::object::Body::Json(m) = &o.body else {
        return false;
    };
    let spec = serde_json::Value::Object((**m).clone());
    [
        "/spec/template/spec/resourceClaims",
        "/spec/jobTemplate/spec/template/spec/resourceClaims",
    ]
    .iter()
    .any(|p| {
        spec.pointer(p)
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty())
    })
}
