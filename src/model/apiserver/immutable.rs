//! Update validation of fields upstream's registry refuses to change once an
//! object exists (`ValidatePodUpdate`, `ValidateJobUpdate`,
//! `ValidateServiceUpdate`, the apps/v1 workloads' `Validate*Update`). A
//! refused update or patch is a 422 Invalid with upstream's message form,
//! `Pod "x" is invalid: spec: Forbidden: …`; values are printed as compact
//! JSON where Go prints its `%#v`.

use serde_json::{Map, Value as Json};

use crate::api::{Body, Kind, Object};

/// The message of a pod update that changes more than upstream allows.
const POD_FORBIDDEN: &str = "pod updates may not change fields other than \
`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
`spec.tolerations` (only additions to existing tolerations),\
`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const STATEFULSET_FORBIDDEN: &str = "updates to statefulset spec for fields other than \
'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' \
and 'minReadySeconds' are forbidden";

/// `Ok` when `new` may replace `old`; otherwise the 422 message.
pub fn validate_update(new: &Object, old: &Object) -> Result<(), String> {
    let errors = match (&new.body, &old.body) {
        (Body::Pod(a), Body::Pod(b)) => {
            if std::sync::Arc::ptr_eq(&a.spec, &b.spec) && a.node_name == b.node_name {
                return Ok(());
            }
            pod_errors(&pod_spec(new), &pod_spec(old))
        }
        (Body::Json(a), Body::Json(b)) => {
            let (Some(na), Some(ob)) = (a.get("spec"), b.get("spec")) else {
                return Ok(());
            };
            if na == ob {
                return Ok(());
            }
            json_errors(new.kind, na, ob, b)
        }
        _ => Vec::new(),
    };
    if errors.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} \"{}\" is invalid: {}",
        qualified_kind(new.kind),
        new.meta.name,
        errors.join(", ")
    ))
}

/// `Job.batch`, `Deployment.apps`, `Pod`: how upstream's StatusError names a kind.
fn qualified_kind(kind: Kind) -> String {
    match kind.api_version().split_once('/') {
        Some((group, _)) => format!("{}.{group}", kind.name()),
        None => kind.name().to_string(),
    }
}

/// A pod's spec as JSON, with `nodeName`.
fn pod_spec(o: &Object) -> Json {
    let mut m = Map::new();
    o.as_pod().expect("a Pod").write_json(&mut m);
    m.remove("spec").unwrap_or(Json::Null)
}

fn immutable(path: &str, value: Option<&Json>) -> String {
    let v = value.map_or("null".to_string(), |v| v.to_string());
    format!("{path}: Invalid value: {v}: field is immutable")
}

/// Upstream's ValidatePodUpdate: copy onto the new spec what may change,
/// when it changed as allowed, and refuse if anything else differs.
fn pod_errors(new: &Json, old: &Json) -> Vec<String> {
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    let mut munged = n.clone();
    for list in ["containers", "initContainers"] {
        let (Some(Json::Array(nc)), Some(Json::Array(oc))) = (munged.get_mut(list), o.get(list))
        else {
            continue;
        };
        if nc.len() != oc.len() {
            continue;
        }
        for (c, was) in nc.iter_mut().zip(oc) {
            if let (Some(c), Some(img)) = (c.as_object_mut(), was.get("image")) {
                c.insert("image".into(), img.clone());
            }
        }
    }
    // activeDeadlineSeconds may be set, or lowered, never removed or raised.
    let deadline = |m: &Map<String, Json>| m.get("activeDeadlineSeconds").and_then(Json::as_i64);
    match (deadline(n), deadline(o)) {
        (Some(_), None) => copy(&mut munged, o, "activeDeadlineSeconds"),
        (Some(a), Some(b)) if a <= b => copy(&mut munged, o, "activeDeadlineSeconds"),
        (Some(a), Some(b)) => {
            errors.push(format!(
                "spec.activeDeadlineSeconds: Invalid value: {a}: must be less than or equal to previous value {b}"
            ));
            copy(&mut munged, o, "activeDeadlineSeconds");
        }
        (None, Some(_)) => {
            errors.push(
                "spec.activeDeadlineSeconds: Invalid value: \"null\": must not update from a positive integer to nil value".into(),
            );
            copy(&mut munged, o, "activeDeadlineSeconds");
        }
        (None, None) => {}
    }
    // Tolerations: only additions.
    let tolerations =
        |m: &Map<String, Json>| m.get("tolerations").and_then(Json::as_array).cloned();
    let (nt, ot) = (
        tolerations(n).unwrap_or_default(),
        tolerations(o).unwrap_or_default(),
    );
    if ot.iter().all(|t| nt.contains(t)) {
        copy(&mut munged, o, "tolerations");
    }
    // terminationGracePeriodSeconds: only from a negative value to 1.
    let grace = |m: &Map<String, Json>| {
        m.get("terminationGracePeriodSeconds")
            .and_then(Json::as_i64)
    };
    if matches!((grace(n), grace(o)), (Some(1), Some(g)) if g < 0) {
        copy(&mut munged, o, "terminationGracePeriodSeconds");
    }
    // schedulingGates: only removals; while gated, nodeSelector additions.
    let gates = |m: &Map<String, Json>| m.get("schedulingGates").and_then(Json::as_array).cloned();
    let (ng, og) = (gates(n).unwrap_or_default(), gates(o).unwrap_or_default());
    if ng.iter().all(|g| og.contains(g)) {
        copy(&mut munged, o, "schedulingGates");
    } else {
        errors.push("spec.schedulingGates: Forbidden: only deletion is allowed, but found new scheduling gate".into());
        copy(&mut munged, o, "schedulingGates");
    }
    if !og.is_empty() {
        let sel = |m: &Map<String, Json>| m.get("nodeSelector").and_then(Json::as_object).cloned();
        let (ns, os) = (sel(n).unwrap_or_default(), sel(o).unwrap_or_default());
        if os.iter().all(|(k, v)| ns.get(k) == Some(v)) {
            copy(&mut munged, o, "nodeSelector");
        }
    }
    if &munged != o {
        errors.push(format!("spec: Forbidden: {POD_FORBIDDEN}"));
    }
    errors
}

/// Sets `key` of `to` to `from`'s (or removes it when `from` has none).
fn copy(to: &mut Map<String, Json>, from: &Map<String, Json>, key: &str) {
    match from.get(key) {
        Some(v) => to.insert(key.into(), v.clone()),
        None => to.remove(key),
    };
}

/// The immutable fields of the kinds stored as JSON.
fn json_errors(kind: Kind, new: &Json, old: &Json, old_body: &Map<String, Json>) -> Vec<String> {
    let field = |s: &Json, k: &str| s.get(k).cloned();
    let changed = |k: &str| field(new, k) != field(old, k);
    let mut errors = Vec::new();
    match kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet if changed("selector") => {
            errors.push(immutable("spec.selector", new.get("selector")));
        }
        Kind::StatefulSet => {
            let strip = |s: &Json| {
                let mut m = s.as_object().cloned().unwrap_or_default();
                for k in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ] {
                    m.remove(k);
                }
                m
            };
            if strip(new) != strip(old) {
                errors.push(format!("spec: Forbidden: {STATEFULSET_FORBIDDEN}"));
            }
        }
        Kind::Job => errors = job_errors(new, old, old_body),
        Kind::Service => {
            let external = |s: &Json| s.get("type").and_then(Json::as_str) == Some("ExternalName");
            let set = |s: &Json| {
                s.get("clusterIP")
                    .and_then(Json::as_str)
                    .is_some_and(|ip| !ip.is_empty())
            };
            if !external(new) && !external(old) && set(old) {
                if changed("clusterIP") {
                    errors.push(immutable("spec.clusterIP", new.get("clusterIP")));
                }
                if old.get("clusterIPs").is_some() && changed("clusterIPs") {
                    let v = new
                        .get("clusterIPs")
                        .map_or("null".into(), |v| v.to_string());
                    errors.push(format!(
                        "spec.clusterIPs[0]: Invalid value: {v}: may not change once set"
                    ));
                }
            }
        }
        _ => {}
    }
    errors
}

/// ValidateJobSpecUpdate: the selector never changes; the template only in
/// its scheduling directives, and only while the Job is suspended and has
/// never started; completions only with parallelism for an Indexed Job
/// (elastic Indexed Jobs).
fn job_errors(new: &Json, old: &Json, old_body: &Map<String, Json>) -> Vec<String> {
    let mut errors = Vec::new();
    if new.get("selector") != old.get("selector") {
        errors.push(immutable("spec.selector", new.get("selector")));
    }
    let suspended = old.get("suspend").and_then(Json::as_bool) == Some(true);
    let started = old_body
        .get("status")
        .and_then(|s| s.get("startTime"))
        .is_some_and(|t| !t.is_null());
    let template = |s: &Json, mutable: bool| {
        let mut t = s.get("template").cloned().unwrap_or(Json::Null);
        if mutable {
            if let Some(m) = t.get_mut("metadata").and_then(Json::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
            if let Some(sp) = t.get_mut("spec").and_then(Json::as_object_mut) {
                for k in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
                    sp.remove(k);
                }
            }
        }
        t
    };
    let mutable = suspended && !started;
    if template(new, mutable) != template(old, mutable) {
        errors.push(immutable("spec.template", new.get("template")));
    }
    if new.get("completions") != old.get("completions") {
        let indexed = old.get("completionMode").and_then(Json::as_str) == Some("Indexed");
        let elastic = indexed
            && new.get("completions") == new.get("parallelism")
            && old.get("completions") == old.get("parallelism");
        if !elastic {
            errors.push(immutable("spec.completions", new.get("completions")));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_may_change_images_add_tolerations_and_lower_its_deadline_only() {
        let old = json!({"containers": [{"name": "c", "image": "a:1", "ports": [{"containerPort": 80}]}],
                         "tolerations": [{"key": "k", "operator": "Exists"}],
                         "activeDeadlineSeconds": 100});
        let mut ok = old.clone();
        ok["containers"][0]["image"] = json!("a:2");
        ok["tolerations"] =
            json!([{"key": "k", "operator": "Exists"}, {"key": "j", "operator": "Exists"}]);
        ok["activeDeadlineSeconds"] = json!(50);
        assert!(pod_errors(&ok, &old).is_empty());
        // A port change is outside the allowed set.
        let mut port = old.clone();
        port["containers"][0]["ports"][0]["containerPort"] = json!(81);
        assert_eq!(
            pod_errors(&port, &old),
            vec![format!("spec: Forbidden: {POD_FORBIDDEN}")]
        );
        // Removing a toleration is not an addition.
        let mut fewer = old.clone();
        fewer["tolerations"] = json!([]);
        assert_eq!(pod_errors(&fewer, &old).len(), 1);
        // Raising the deadline: 200 > 100.
        let mut later = old.clone();
        later["activeDeadlineSeconds"] = json!(200);
        assert_eq!(
            pod_errors(&later, &old),
            vec!["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value 100".to_string()]
        );
    }

    #[test]
    fn a_suspended_never_started_job_may_change_its_scheduling_directives() {
        let old = json!({"suspend": true, "selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}},
                                      "spec": {"containers": [{"name": "c", "image": "x"}]}}});
        let mut new = old.clone();
        new["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        let body = Map::new();
        assert!(job_errors(&new, &old, &body).is_empty());
        // Once started, the same change is refused.
        let started: Map<String, Json> =
            serde_json::from_value(json!({"status": {"startTime": "2025-01-01T00:00:00Z"}}))
                .unwrap();
        assert_eq!(job_errors(&new, &old, &started).len(), 1);
        // The image is never a scheduling directive.
        let mut image = old.clone();
        image["template"]["spec"]["containers"][0]["image"] = json!("y");
        assert!(job_errors(&image, &old, &body)[0].starts_with("spec.template: Invalid value: "));
    }
}
