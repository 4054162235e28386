//! Resource lists (`cpu`, `memory`, `pods`, extended resources) and the pod's
//! effective request, computed as the kubelet and scheduler compute it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::quantity::{Quantity, QuantityError};

/// A map from resource name to quantity, in name order.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Parses an API resource list; on error returns the offending key.
pub fn parse_list(
    list: Option<&BTreeMap<String, ApiQuantity>>,
) -> Result<ResourceList, (String, QuantityError)> {
    let mut out = ResourceList::new();
    for (k, v) in list.into_iter().flatten() {
        let q = Quantity::parse(&v.0).map_err(|e| (k.clone(), e))?;
        out.insert(k.clone(), q);
    }
    Ok(out)
}

/// Adds `b` into `a`.
pub fn add_into(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        let e = a.entry(k.clone()).or_default();
        *e = e.plus(*v);
    }
}

/// Raises each entry of `a` to at least `b`'s.
pub fn max_into(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        let e = a.entry(k.clone()).or_default();
        if *v > *e {
            *e = *v;
        }
    }
}

/// Subtracts `b` from `a`.
pub fn sub_from(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        let e = a.entry(k.clone()).or_default();
        *e = e.minus(*v);
    }
}

/// The resources of `want` that do not fit in `free`, as `(name, wanted, free)`.
pub fn insufficient(want: &ResourceList, free: &ResourceList) -> Vec<(String, Quantity, Quantity)> {
    want.iter()
        .filter(|(_, q)| !q.is_zero())
        .filter_map(|(k, q)| {
            let have = free.get(k).copied().unwrap_or_default();
            (*q > have).then(|| (k.clone(), *q, have))
        })
        .collect()
}

/// Formats a list as `cpu=500m,memory=128Mi`.
pub fn display(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={}", v.canonical(k != "cpu")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `ValidateResourceRequirements` for the parts that matter here:
/// no quantity is negative (`ValidateNonnegativeQuantity`), and no request
/// exceeds its limit. Errors name `path.requests.cpu` and the like.
pub fn validate_requirements(
    requests: &ResourceList,
    limits: &ResourceList,
    path: &str,
) -> Result<(), (String, String)> {
    for (field, list) in [("limits", limits), ("requests", requests)] {
        if let Some((k, q)) = list.iter().find(|(_, q)| q.is_negative()) {
            return Err((
                format!("{path}.{field}.{k}"),
                format!(
                    "Invalid value: \"{}\": must be greater than or equal to 0",
                    q.canonical(k != "cpu")
                ),
            ));
        }
    }
    for (k, q) in requests {
        if let Some(limit) = limits.get(k).filter(|l| q > *l) {
            return Err((
                format!("{path}.requests.{k}"),
                format!(
                    "Invalid value: \"{}\": must be less than or equal to {k} limit of {}",
                    q.canonical(k != "cpu"),
                    limit.canonical(k != "cpu")
                ),
            ));
        }
    }
    Ok(())
}
