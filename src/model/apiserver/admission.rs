//! The mutating admission chain a pod passes on create: Priority, then
//! DefaultTolerationSeconds (the order of upstream's recommended plugin
//! list). Each plugin edits one copy of the typed spec and the pod is
//! rebuilt into the model once at the end, not once per plugin: rebuilding
//! re-derives every container and re-serialises the spec, a large part of
//! what creating a pod costs the simulator.
//!
//! Pods made from one template (a Job's, a ReplicaSet's) come out of the
//! chain with equal specs, so the chain keeps the last few models it built
//! and hands an equal one out again: every such pod then shares one spec in
//! the store, the watch cache and every informer, instead of holding its
//! own copy of the typed spec, its JSON and its derived containers (about
//! 12 KB a pod, half the heap of a 30,000-pod run).

use std::collections::VecDeque;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;

use crate::api::object::StringMap;
use crate::api::pod::PodSpecModel;
use crate::api::{default_tolerations, pod, priority, Object};

/// How many admitted specs are kept for reuse: enough for the templates a
/// burst of creates interleaves (controllers create a Job's or a
/// ReplicaSet's pods in one burst), small enough that a miss costs little.
const RECENT_SPECS: usize = 8;

/// The admission chain for pods, with the specs it recently built.
#[derive(Default)]
pub struct PodAdmission {
    /// Newest last: the annotations a model was built with (a model reads
    /// the `kubesim.io/` ones) and the model.
    recent: VecDeque<(StringMap, Arc<PodSpecModel>)>,
}

impl PodAdmission {
    /// The pod as admitted, or the message of the plugin that refused it.
    pub fn admit<'a>(
        &mut self,
        obj: &Object,
        classes: impl Iterator<Item = &'a Object>,
    ) -> Result<Object, String> {
        let Some(body) = obj.as_pod() else {
            return Ok(obj.clone());
        };
        let mut api: core::PodSpec = (*body.spec.api).clone();
        let prioritised = priority::admit_spec(obj, &mut api, classes)?;
        let tolerated = default_tolerations::admit_spec(&mut api);
        if !(prioritised || tolerated) {
            return Ok(obj.clone());
        }
        let annotations = &obj.meta.annotations;
        let same = |(a, m): &(StringMap, Arc<PodSpecModel>)| {
            (Arc::ptr_eq(a, annotations) || a == annotations) && *m.api == api
        };
        if let Some((_, model)) = self.recent.iter().rev().find(|e| same(e)) {
            return Ok(pod::with_shared_spec(obj, model.clone()));
        }
        let admitted = pod::with_spec(obj, &api)?;
        if let Some(p) = admitted.as_pod() {
            if self.recent.len() == RECENT_SPECS {
                self.recent.pop_front();
            }
            self.recent.push_back((annotations.clone(), p.spec.clone()));
        }
        Ok(admitted)
    }
}

/// [`PodAdmission::admit`] without reuse, for one pod.
pub fn admit_pod<'a>(
    obj: &Object,
    classes: impl Iterator<Item = &'a Object>,
) -> Result<Object, String> {
    PodAdmission::default().admit(obj, classes)
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

    /// Pods of one template share the admitted spec; a pod whose spec or
    /// annotations differ gets its own, equal to what admitting it alone
    /// gives.
    #[test]
    fn equal_specs_are_shared_and_different_ones_are_not() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\nspec:\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: default}\nspec:\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: default, annotations: {kubesim.io/run-for: 5s}}\nspec:\n  containers: [{name: c, image: busybox}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: default}\nspec:\n  containers: [{name: c, image: nginx}]\n";
        let objs = load_manifests("t.yaml", yaml, &mut FieldReport::default()).unwrap();
        let mut chain = PodAdmission::default();
        let out: Vec<Object> = objs
            .iter()
            .map(|o| chain.admit(o, std::iter::empty()).unwrap())
            .collect();
        let spec = |i: usize| out[i].as_pod().unwrap().spec.clone();
        assert!(Arc::ptr_eq(&spec(0), &spec(1)));
        assert!(!Arc::ptr_eq(&spec(0), &spec(2)), "annotations differ");
        assert!(!Arc::ptr_eq(&spec(0), &spec(3)), "images differ");
        for (o, admitted) in objs.iter().zip(&out) {
            let alone = admit_pod(o, std::iter::empty()).unwrap();
            assert_eq!(format!("{admitted:?}"), format!("{alone:?}"));
        }
        // The run-for annotation reached the model of `c` only.
        assert_ne!(spec(2).containers[0].run_for, spec(0).containers[0].run_for);
    }
}
