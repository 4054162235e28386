//! The rules of `pkg/apis/apps/validation` (and the ReplicationController's
//! in core) for the workload fields kubesim's controllers compute with:
//! replica counts and rolling-update bounds. Checked on the stored JSON
//! body, so a manifest and a patched object are judged alike.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use serde_json::{Map, Value as Json};

use super::limits::{too_many, MAX_REPLICAS};
use super::selector::Selector;
use super::{Body, Kind, Object};

/// The first violated rule as (field path, upstream's message).
pub fn check(object: &Object) -> Result<(), (String, String)> {
    let Body::Json(body) = &object.body else {
        return Ok(());
    };
    let Some(spec) = body.get("spec").and_then(Json::as_object) else {
        return Ok(());
    };
    match object.kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::ReplicationController => {
            replicas(spec.get("replicas"), "spec.replicas")?;
        }
        Kind::HorizontalPodAutoscaler => replicas(spec.get("maxReplicas"), "spec.maxReplicas")?,
        _ => {}
    }
    match object.kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet => {
            selector_and_template(spec, object.kind)?;
        }
        Kind::Service => service_ports(spec)?,
        _ => {}
    }
    let rolling = |strategy: &str| {
        spec.get(strategy)
            .and_then(|s| s.get("rollingUpdate"))
            .and_then(Json::as_object)
    };
    match object.kind {
        Kind::Deployment => {
            if let Some(r) = rolling("strategy") {
                rolling_update(r, "spec.strategy.rollingUpdate", "25%", "25%")?;
            }
        }
        Kind::DaemonSet => {
            if let Some(r) = rolling("updateStrategy") {
                rolling_update(r, "spec.updateStrategy.rollingUpdate", "1", "0")?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `ValidateNonnegativeField` and kubesim's [`MAX_REPLICAS`].
pub fn replicas(v: Option<&Json>, path: &str) -> Result<(), (String, String)> {
    let Some(n) = v.and_then(Json::as_i64) else {
        return Ok(());
    };
    if n < 0 {
        return Err((
            path.into(),
            format!("Invalid value: {n}: must be greater than or equal to 0"),
        ));
    }
    if n > MAX_REPLICAS {
        return Err((
            path.into(),
            too_many(
                "replicas",
                n,
                MAX_REPLICAS,
                "kubesim simulates up to the 150,000 pods Kubernetes is tested at",
            ),
        ));
    }
    Ok(())
}

/// `ValidateRollingUpdateDeployment` (and the DaemonSet's twin): each bound
/// a non-negative integer or a percent string, not both zero,
/// maxUnavailable at most 100%. Unset bounds take their defaults.
fn rolling_update(
    r: &Map<String, Json>,
    path: &str,
    unavailable_default: &str,
    surge_default: &str,
) -> Result<(), (String, String)> {
    let at = |f: &str| format!("{path}.{f}");
    let mut values = [0i64; 2];
    for (slot, (field, default)) in [
        ("maxUnavailable", unavailable_default),
        ("maxSurge", surge_default),
    ]
    .into_iter()
    .enumerate()
    {
        values[slot] = match r.get(field) {
            None | Some(Json::Null) => default.trim_end_matches('%').parse().unwrap_or(0),
            Some(v) => int_or_percent(v).map_err(|m| (at(field), m))?,
        };
    }
    let [unavailable, surge] = values;
    if unavailable == 0 && surge == 0 {
        return Err((
            at("maxUnavailable"),
            "Invalid value: 0: may not be 0 when `maxSurge` is 0".into(),
        ));
    }
    if let Some(Json::String(s)) = r.get("maxUnavailable") {
        if unavailable > 100 {
            return Err((
                at("maxUnavailable"),
                format!("Invalid value: \"{s}\": must not be greater than 100%"),
            ));
        }
    }
    Ok(())
}

/// `ValidateDeploymentSpec` and its ReplicaSet, StatefulSet and DaemonSet
/// twins: an apps/v1 workload needs a non-empty selector and a template
/// whose labels it selects (`ValidatePodTemplateSpecForReplicaSet`).
/// Without this a controller would create pods it never counts as its own,
/// without end.
fn selector_and_template(spec: &Map<String, Json>, kind: Kind) -> Result<(), (String, String)> {
    let Some(raw) = spec.get("selector").filter(|v| !v.is_null()) else {
        return Err(("spec.selector".into(), "Required value".into()));
    };
    let api: ApiSelector = serde_json::from_value(raw.clone())
        .map_err(|e| ("spec.selector".to_string(), format!("Invalid value: {e}")))?;
    let selector = Selector::from_api(&api)
        .map_err(|m| ("spec.selector".to_string(), format!("Invalid value: {m}")))?;
    if selector.is_empty() {
        let name = kind.name().to_lowercase();
        return Err((
            "spec.selector".into(),
            format!("Invalid value: {raw}: empty selector is invalid for {name}"),
        ));
    }
    let Some(template) = spec.get("template").filter(|v| !v.is_null()) else {
        return Err(("spec.template".into(), "Required value".into()));
    };
    let labels: BTreeMap<String, String> = template
        .pointer("/metadata/labels")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    if !selector.matches(&labels) {
        return Err((
            "spec.template.metadata.labels".into(),
            format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                go_string_map(&labels)
            ),
        ));
    }
    Ok(())
}

/// A label map as Go's `%#v` prints it in a validation message:
/// `map[string]string{"app":"web"}`.
fn go_string_map(m: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// `ValidateService`'s port rules: `port` (and a numeric `targetPort` or
/// `nodePort`) in 1..=65535, as `validation.IsValidPortNum` checks.
fn service_ports(spec: &Map<String, Json>) -> Result<(), (String, String)> {
    let Some(ports) = spec.get("ports").and_then(Json::as_array) else {
        return Ok(());
    };
    for (i, p) in ports.iter().enumerate() {
        for field in ["port", "targetPort", "nodePort"] {
            let Some(n) = p.get(field).and_then(Json::as_i64) else {
                continue;
            };
            // An unset nodePort is 0 once defaulted; only a set one is checked.
            if field == "nodePort" && n == 0 {
                continue;
            }
            if !(1..=65535).contains(&n) {
                return Err((
                    format!("spec.ports[{i}].{field}"),
                    format!("Invalid value: {n}: must be between 1 and 65535, inclusive"),
                ));
            }
        }
    }
    Ok(())
}

/// `ValidatePositiveIntOrPercent`; the value `getIntOrPercentValue` reads.
fn int_or_percent(v: &Json) -> Result<i64, String> {
    match v {
        Json::Number(n) => match n.as_i64() {
            Some(i) if i >= 0 => Ok(i),
            _ => Err(format!(
                "Invalid value: {n}: must be greater than or equal to 0"
            )),
        },
        Json::String(s) => {
            let digits = s.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "Invalid value: \"{s}\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
                ));
            }
            Ok(digits.parse().unwrap_or(i64::MAX))
        }
        other => Err(format!(
            "Invalid value: {other}: must be an integer or percentage (e.g '5%')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Deployment with `spec` over a valid selector and template.
    fn deployment(spec: Json) -> Object {
        let mut full = json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}},
        });
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        let mut body = Map::new();
        body.insert("spec".into(), full);
        Object {
            kind: Kind::Deployment,
            meta: Default::default(),
            body: Body::Json(std::sync::Arc::new(body)),
        }
    }

    #[test]
    fn a_surge_string_without_percent_is_refused_as_upstream_refuses_it() {
        let e = check(&deployment(
            json!({"strategy": {"rollingUpdate": {"maxSurge": "1"}}}),
        ))
        .unwrap_err();
        assert_eq!(e.0, "spec.strategy.rollingUpdate.maxSurge");
        assert!(e.1.contains("a valid percent string"), "{}", e.1);
        // "1%" and 1 are fine; unset maxUnavailable defaults to 25%.
        for ok in [json!("1%"), json!(1), json!(0)] {
            let d = deployment(json!({"strategy": {"rollingUpdate": {"maxSurge": ok}}}));
            assert_eq!(check(&d), Ok(()));
        }
    }

    #[test]
    fn both_bounds_zero_and_unavailable_over_100_percent_are_refused() {
        let both = json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}});
        let e = check(&deployment(both)).unwrap_err();
        assert!(e.1.contains("may not be 0 when `maxSurge` is 0"), "{}", e.1);
        let over = json!({"strategy": {"rollingUpdate": {"maxUnavailable": "101%"}}});
        let e = check(&deployment(over)).unwrap_err();
        assert!(e.1.contains("must not be greater than 100%"), "{}", e.1);
    }

    #[test]
    fn replicas_are_non_negative_and_bounded() {
        assert!(check(&deployment(json!({"replicas": -1}))).is_err());
        // 150,000 is the bound itself; one more is refused.
        assert_eq!(check(&deployment(json!({"replicas": 150_000}))), Ok(()));
        let e = check(&deployment(json!({"replicas": 150_001}))).unwrap_err();
        assert!(
            e.1.contains("must be less than or equal to 150000"),
            "{}",
            e.1
        );
    }

    #[test]
    fn an_apps_workload_needs_a_selector_that_selects_its_template() {
        assert_eq!(check(&deployment(json!({}))), Ok(()));
        let none = deployment(json!({"selector": null}));
        assert_eq!(
            check(&none),
            Err(("spec.selector".into(), "Required value".into()))
        );
        let empty = check(&deployment(json!({"selector": {}}))).unwrap_err();
        assert_eq!(empty.0, "spec.selector");
        assert!(
            empty
                .1
                .ends_with("empty selector is invalid for deployment"),
            "{}",
            empty.1
        );
        let other = json!({"template": {"metadata": {"labels": {"app": "other"}}}});
        assert_eq!(
            check(&deployment(other)),
            Err((
                "spec.template.metadata.labels".into(),
                "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`".into()
            ))
        );
        let no_template = deployment(json!({"template": null}));
        assert_eq!(check(&no_template).unwrap_err().0, "spec.template");
    }

    #[test]
    fn service_ports_are_between_1_and_65535() {
        let svc = |ports: Json| {
            let mut body = Map::new();
            body.insert("spec".into(), json!({"ports": ports}));
            Object {
                kind: Kind::Service,
                meta: Default::default(),
                body: Body::Json(std::sync::Arc::new(body)),
            }
        };
        assert_eq!(
            check(&svc(json!([{"port": 80, "targetPort": "http"}]))),
            Ok(())
        );
        assert_eq!(check(&svc(json!([{"port": 65535, "nodePort": 0}]))), Ok(()));
        assert_eq!(
            check(&svc(json!([{"port": 80}, {"port": 99999}]))),
            Err((
                "spec.ports[1].port".into(),
                "Invalid value: 99999: must be between 1 and 65535, inclusive".into()
            ))
        );
        assert!(check(&svc(json!([{"port": 80, "targetPort": 0}]))).is_err());
    }
}
