//! An object made from a template: a Pod or Job manifest, with a name and
//! the values a generator or an importer drew for it (requests, run time)
//! written into the manifest, then decoded as any manifest is.
//!
//! Decoding each arrival's manifest (instead of patching a decoded
//! object's several views of its spec) keeps one path from YAML to object:
//! a generated pod is exactly the pod its manifest would be.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::api::manifest::{decode_object, FieldReport};
use crate::api::pod::ANNOTATION_RUN_FOR;
use crate::api::yaml::{Node, Pos};
use crate::api::{Kind, Object};
use crate::sim::SimDuration;

/// The values one arrival sets; `None` leaves the template's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Draw {
    /// Requests of the first container, by resource name, as quantities.
    pub requests: BTreeMap<String, String>,
    /// Set as limits too (extended resources such as `nvidia.com/gpu` may
    /// not be overcommitted: their limit must equal their request).
    pub limits: BTreeMap<String, String>,
    pub run_for: Option<SimDuration>,
    /// Extra annotations and labels on the pod.
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Required node affinity: the node label's key and its allowed values.
    pub node_in: Option<(String, Vec<String>)>,
}

/// A Pod or Job manifest to stamp out.
#[derive(Clone, Debug)]
pub struct Template {
    pub kind: Kind,
    pub namespace: String,
    manifest: Json,
}

impl Template {
    /// `manifest` must already have decoded as a Pod or a Job.
    pub fn new(kind: Kind, namespace: String, manifest: Json) -> Self {
        Template {
            kind,
            namespace,
            manifest,
        }
    }

    /// Whether the first container sets a limit on `resource`.
    pub fn first_container_limits(&self, resource: &str) -> bool {
        let spec = match self.kind {
            Kind::Job => &self.manifest["spec"]["template"]["spec"],
            _ => &self.manifest["spec"],
        };
        !spec["containers"][0]["resources"]["limits"][resource].is_null()
    }

    /// The object named `name` with `draw` written in; an error is a bug in
    /// what the loader checked (every drawn value is a valid quantity).
    pub fn make(&self, name: &str, draw: &Draw) -> Result<Object, String> {
        let mut m = self.manifest.clone();
        set(&mut m, &["metadata", "name"], Json::String(name.into()));
        let pod: &[&str] = match self.kind {
            Kind::Job => &["spec", "template"],
            _ => &[],
        };
        let meta = [pod, &["metadata"]].concat();
        for (k, v) in &draw.annotations {
            set(
                &mut m,
                &[&meta[..], &["annotations", k]].concat(),
                v.clone().into(),
            );
        }
        for (k, v) in &draw.labels {
            set(
                &mut m,
                &[&meta[..], &["labels", k]].concat(),
                v.clone().into(),
            );
        }
        if let Some(d) = draw.run_for {
            let v = Json::String(format!("{}ms", d.0 / 1_000_000));
            set(
                &mut m,
                &[&meta[..], &["annotations", ANNOTATION_RUN_FOR]].concat(),
                v,
            );
        }
        let spec = [pod, &["spec"]].concat();
        if let Some(c) = first_container(&mut m, &spec) {
            for (k, v) in &draw.requests {
                set(c, &["resources", "requests", k], v.clone().into());
            }
            for (k, v) in &draw.limits {
                set(c, &["resources", "limits", k], v.clone().into());
            }
        }
        if let Some((key, values)) = &draw.node_in {
            let term = serde_json::json!({"matchExpressions": [{"key": key, "operator": "In", "values": values}]});
            let path = [
                &spec[..],
                &[
                    "affinity",
                    "nodeAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    "nodeSelectorTerms",
                ],
            ]
            .concat();
            set(&mut m, &path, Json::Array(vec![term]));
        }
        let node = Node::from_json(&m, Pos::default());
        let mut report = FieldReport::default();
        let mut objs = decode_object("workload", &node, &mut report).map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        objs.pop()
            .ok_or_else(|| "the template decoded to nothing".to_string())
    }
}

/// Sets `path` in `v`, making the mappings on the way.
fn set(v: &mut Json, path: &[&str], value: Json) {
    let mut at = v;
    for key in &path[..path.len() - 1] {
        if !at.is_object() {
            *at = Json::Object(Map::new());
        }
        at = at
            .as_object_mut()
            .expect("just made a mapping")
            .entry(key.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
    }
    if !at.is_object() {
        *at = Json::Object(Map::new());
    }
    at.as_object_mut()
        .expect("just made a mapping")
        .insert(path[path.len() - 1].to_string(), value);
}

fn first_container<'a>(m: &'a mut Json, spec: &[&str]) -> Option<&'a mut Json> {
    let mut at = m;
    for key in spec {
        at = at.get_mut(*key)?;
    }
    at.get_mut("containers")?.get_mut(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::Body;

    fn job() -> Template {
        let m = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "x", "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox:1.36"}]}}}});
        Template::new(Kind::Job, "default".into(), m)
    }

    #[test]
    fn a_job_gets_its_name_requests_and_run_time_in_its_pod_template() {
        let mut d = Draw::default();
        d.requests.insert("cpu".into(), "250m".into());
        d.run_for = Some(SimDuration::from_secs(90));
        let o = job().make("train-7", &d).unwrap();
        assert_eq!(o.meta.name, "train-7");
        let Body::Json(spec) = &o.body else {
            panic!("a Job is stored as JSON")
        };
        let t = &spec["spec"]["template"];
        assert_eq!(t["metadata"]["annotations"][ANNOTATION_RUN_FOR], "90000ms");
        assert_eq!(
            t["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "250m"
        );
    }

    #[test]
    fn a_pod_gets_limits_and_a_required_node_affinity() {
        let m = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
        let t = Template::new(Kind::Pod, "default".into(), m);
        let mut d = Draw::default();
        d.requests.insert("nvidia.com/gpu".into(), "2".into());
        d.limits.insert("nvidia.com/gpu".into(), "2".into());
        d.node_in = Some(("nvidia.com/gpu.product".into(), vec!["T4".into()]));
        let o = t.make("p", &d).unwrap();
        let Body::Pod(p) = &o.body else {
            panic!("a Pod")
        };
        let gpu = p.spec.requests.get("nvidia.com/gpu").map(|q| q.value());
        assert_eq!(gpu, Some(2));
        let terms = &p.spec.json["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        assert_eq!(terms[0]["matchExpressions"][0]["values"][0], "T4");
    }
}
