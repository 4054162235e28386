//! Pod priority as the Priority admission plugin resolves it: from the
//! pod's `priorityClassName`, else the global default PriorityClass (the
//! smallest value if several claim it), else zero; with the class's
//! `preemptionPolicy`. The two system classes always exist.

use k8s_openapi::api::core::v1 as core;

use super::object::Body;
use super::{Kind, Object};

pub const SYSTEM_CLUSTER_CRITICAL: i32 = 2_000_000_000;
pub const SYSTEM_NODE_CRITICAL: i32 = 2_000_001_000;

/// A PriorityClass: value, whether it is the global default, and its
/// preemption policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityClass {
    pub name: String,
    pub value: i32,
    pub global_default: bool,
    pub preemption_policy: String,
}

impl PriorityClass {
    pub fn from_object(o: &Object) -> Option<PriorityClass> {
        if o.kind != Kind::PriorityClass {
            return None;
        }
        let Body::Json(m) = &o.body else { return None };
        Some(PriorityClass {
            name: o.meta.name.clone(),
            value: m.get("value").and_then(|v| v.as_i64()).unwrap_or(0) as i32,
            global_default: m
                .get("globalDefault")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            preemption_policy: m
                .get("preemptionPolicy")
                .and_then(|v| v.as_str())
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        })
    }

    fn system(name: &str) -> Option<PriorityClass> {
        let value = match name {
            "system-cluster-critical" => SYSTEM_CLUSTER_CRITICAL,
            "system-node-critical" => SYSTEM_NODE_CRITICAL,
            _ => return None,
        };
        Some(PriorityClass {
            name: name.to_string(),
            value,
            global_default: false,
            preemption_policy: "PreemptLowerPriority".into(),
        })
    }
}

/// Resolves the priority of a pod being created, given the PriorityClasses
/// that exist. Returns the pod with `spec.priority` and
/// `spec.preemptionPolicy` set, or the admission error.
pub fn admit_pod<'a>(
    pod: &Object,
    classes: impl Iterator<Item = &'a Object>,
) -> Result<Object, String> {
    let Some(body) = pod.as_pod() else {
        return Ok(pod.clone());
    };
    let mut api: core::PodSpec = (*body.spec.api).clone();
    if admit_spec(pod, &mut api, classes)? {
        super::pod::with_spec(pod, &api)
    } else {
        Ok(pod.clone())
    }
}

/// [`admit_pod`] on `api`, a copy of the spec of `pod` as created, for a
/// chain of admission plugins that rebuilds the pod once at its end.
/// Returns whether it changed `api`.
pub fn admit_spec<'a>(
    pod: &Object,
    api: &mut core::PodSpec,
    classes: impl Iterator<Item = &'a Object>,
) -> Result<bool, String> {
    let Some(body) = pod.as_pod() else {
        return Ok(false);
    };
    let classes: Vec<PriorityClass> = classes.filter_map(PriorityClass::from_object).collect();
    let wanted = &body.spec.priority_class_name;
    let class = if wanted.is_empty() {
        classes
            .iter()
            .filter(|c| c.global_default)
            .min_by_key(|c| c.value)
            .cloned()
    } else {
        match PriorityClass::system(wanted)
            .or_else(|| classes.iter().find(|c| c.name == *wanted).cloned())
        {
            Some(c) => Some(c),
            None => {
                return Err(format!(
                    "pods \"{}\" is forbidden: no PriorityClass with name {wanted} was found",
                    pod.meta.name
                ))
            }
        }
    };
    let (value, policy, name) = match &class {
        Some(c) => (c.value, c.preemption_policy.clone(), c.name.clone()),
        None => (0, "PreemptLowerPriority".to_string(), String::new()),
    };
    if let Some(given) = body.spec.api.priority {
        if given != value {
            return Err(format!(
                "pods \"{}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name",
                pod.meta.name
            ));
        }
    }
    if body.spec.priority == value
        && body.spec.api.preemption_policy.as_deref() == Some(policy.as_str())
        && body.spec.priority_class_name == name
    {
        return Ok(false);
    }
    api.priority = Some(value);
    api.preemption_policy = Some(policy);
    if !name.is_empty() {
        api.priority_class_name = Some(name);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};

    fn load(text: &str) -> Vec<Object> {
        load_manifests("t.yaml", text, &mut FieldReport::default()).unwrap()
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: c, image: busybox}]\n";

    #[test]
    fn class_default_and_system_classes_resolve() {
        let classes = load("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\npreemptionPolicy: Never\n---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low-default}\nvalue: -5\nglobalDefault: true\n");
        let plain = &load(POD)[0];
        let p = admit_pod(plain, classes.iter()).unwrap();
        assert_eq!(p.as_pod().unwrap().spec.priority, -5);
        let high = &load(&format!("{POD}  priorityClassName: high\n"))[0];
        let p = admit_pod(high, classes.iter()).unwrap();
        let spec = &p.as_pod().unwrap().spec;
        assert_eq!(spec.priority, 1000);
        assert_eq!(spec.api.preemption_policy.as_deref(), Some("Never"));
        let sys = &load(&format!("{POD}  priorityClassName: system-node-critical\n"))[0];
        assert_eq!(
            admit_pod(sys, classes.iter())
                .unwrap()
                .as_pod()
                .unwrap()
                .spec
                .priority,
            SYSTEM_NODE_CRITICAL
        );
        let missing = &load(&format!("{POD}  priorityClassName: gold\n"))[0];
        let e = admit_pod(missing, classes.iter()).unwrap_err();
        assert!(
            e.contains("no PriorityClass with name gold was found"),
            "{e}"
        );
        assert_eq!(
            admit_pod(plain, std::iter::empty())
                .unwrap()
                .as_pod()
                .unwrap()
                .spec
                .priority,
            0
        );
    }
}
