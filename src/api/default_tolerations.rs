//! The DefaultTolerationSeconds admission plugin: a pod that does not
//! tolerate the `not-ready` and `unreachable` NoExecute taints gets a
//! 300-second toleration for each, so taint-based eviction waits five
//! minutes after its node goes away.

use k8s_openapi::api::core::v1 as core;

use super::Object;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
pub const DEFAULT_SECONDS: i64 = 300;

/// The pod with the default tolerations added where missing.
pub fn admit_pod(pod: &Object) -> Result<Object, String> {
    let Some(body) = pod.as_pod() else {
        return Ok(pod.clone());
    };
    let mut api: core::PodSpec = (*body.spec.api).clone();
    if admit_spec(&mut api) {
        super::pod::with_spec(pod, &api)
    } else {
        Ok(pod.clone())
    }
}

/// Adds the default tolerations missing from `api`; returns whether any was.
pub fn admit_spec(api: &mut core::PodSpec) -> bool {
    let tolerations = api.tolerations.as_deref().unwrap_or(&[]);
    let covers = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or("");
            let e = t.effect.as_deref().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let missing: Vec<&str> = [NOT_READY, UNREACHABLE]
        .into_iter()
        .filter(|k| !covers(k))
        .collect();
    if missing.is_empty() {
        return false;
    }
    let list = api.tolerations.get_or_insert_with(Vec::new);
    for key in missing {
        list.push(core::Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(DEFAULT_SECONDS),
            value: None,
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};

    #[test]
    fn adds_both_unless_tolerated() {
        let plain = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: c, image: busybox}]\n";
        let pod = &load_manifests("t.yaml", plain, &mut FieldReport::default()).unwrap()[0];
        let out = admit_pod(pod).unwrap();
        let t = out.as_pod().unwrap().spec.api.tolerations.clone().unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.toleration_seconds == Some(300)));
        let tolerant = format!("{plain}  tolerations: [{{operator: Exists}}]\n");
        let pod = &load_manifests("t.yaml", &tolerant, &mut FieldReport::default()).unwrap()[0];
        let out = admit_pod(pod).unwrap();
        assert_eq!(
            out.as_pod()
                .unwrap()
                .spec
                .api
                .tolerations
                .as_ref()
                .unwrap()
                .len(),
            1
        );
    }
}
