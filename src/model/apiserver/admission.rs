//! The mutating admission chain a pod passes on create: Priority, then
//! DefaultTolerationSeconds (the order of upstream's recommended plugin
//! list). Each plugin edits one copy of the typed spec and the pod is
//! rebuilt into the model once at the end, not once per plugin: rebuilding
//! re-derives every container and re-serialises the spec, a large part of
//! what creating a pod costs the simulator.

use k8s_openapi::api::core::v1 as core;

use crate::api::{default_tolerations, pod, priority, Object};

/// The pod as admitted, or the message of the plugin that refused it.
pub fn admit_pod<'a>(
    obj: &Object,
    classes: impl Iterator<Item = &'a Object>,
) -> Result<Object, String> {
    let Some(body) = obj.as_pod() else {
        return Ok(obj.clone());
    };
    let mut api: core::PodSpec = (*body.spec.api).clone();
    let prioritised = priority::admit_spec(obj, &mut api, classes)?;
    let tolerated = default_tolerations::admit_spec(&mut api);
    if prioritised || tolerated {
        pod::with_spec(obj, &api)
    } else {
        Ok(obj.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};

    /// The chain gives what the plugins one after the other give.
    #[test]
    fn one_rebuild_is_the_two_in_turn() {
        let yaml = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  priorityClassName: high\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: default}\nspec:\n  tolerations: [{operator: Exists}]\n  containers: [{name: c, image: busybox}]\n";
        let objs = load_manifests("t.yaml", yaml, &mut FieldReport::default()).unwrap();
        let class = &objs[0];
        for pod in &objs[1..] {
            let chained = priority::admit_pod(pod, std::iter::once(class))
                .and_then(|o| default_tolerations::admit_pod(&o))
                .unwrap();
            let once = admit_pod(pod, std::iter::once(class)).unwrap();
            assert_eq!(format!("{once:?}"), format!("{chained:?}"));
        }
        let p = admit_pod(&objs[1], std::iter::once(class)).unwrap();
        let spec = &p.as_pod().unwrap().spec;
        // The class's value, and both 300 s tolerations added.
        assert_eq!(spec.priority, 1000);
        assert_eq!(spec.api.tolerations.as_ref().map(Vec::len), Some(2));
    }
}
