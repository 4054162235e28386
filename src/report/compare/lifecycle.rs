//! What a trace says of each pod's life, read for a comparison of two runs
//! of one scenario: the instants of its milestones, the runtime steps the
//! kubelets traced, and the deployment controller's scaling steps.
//!
//! Pods of two runs have different names (a ReplicaSet's pods get random
//! suffixes), so a pod is known by its controller and the order in which
//! that controller created it: the third pod `ReplicaSet/default/web-5f6c`
//! made is the same pod in both runs. A ReplicaSet's own name is the pod
//! template's hash, the same in both.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

/// The lifecycle milestones compared, in the order a pod reaches them.
pub const MILESTONES: [&str; 6] = [
    "created",
    "scheduled",
    "sandboxReady",
    "started",
    "ready",
    "deleted",
];

/// One pod's life in one run: nanoseconds since the run's start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodLife {
    /// `ReplicaSet/default/web-5f6c#3`, or the pod's own key if it has no
    /// controller.
    pub identity: String,
    pub name: String,
    pub node: Option<String>,
    /// Per milestone of [`MILESTONES`], the first committed write that
    /// showed it.
    pub at: [Option<u64>; 6],
}

/// What one run's trace holds for a comparison.
#[derive(Debug, Default)]
pub struct RunLives {
    /// By identity.
    pub pods: BTreeMap<String, PodLife>,
    /// `RuntimeStep` durations by step (`sandbox`, `start`, `stop`), in
    /// nanoseconds, in trace order.
    pub steps: BTreeMap<String, Vec<u64>>,
    /// The deployment controller's `ScalingReplicaSet` events, in order:
    /// `Deployment/default/web: Scaled up replica set web-5f6c from 0 to 3`.
    pub scaling: Vec<String>,
}

impl RunLives {
    /// Reads `trace.jsonl`; it must be at `full` trace level (the pod
    /// milestones are read from the objects written).
    pub fn read(trace: &Path) -> Result<RunLives, String> {
        let file = std::fs::File::open(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
        let mut lives = Reader::default();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| format!("{}: {e}", trace.display()))?;
            let record: Value = serde_json::from_str(&line)
                .map_err(|e| format!("{}:{}: not a trace record: {e}", trace.display(), i + 1))?;
            lives.record(&record);
        }
        if lives.writes_without_objects > 0 && lives.out.pods.is_empty() {
            return Err(format!(
                "{}: the trace has no objects (trace level below full); run at `traceLevel: full`",
                trace.display()
            ));
        }
        Ok(lives.out)
    }
}

#[derive(Default)]
struct Reader {
    out: RunLives,
    /// Pod key → identity, for the pods alive now.
    identity_of: BTreeMap<String, String>,
    /// Controller → pods it has created so far.
    created_by: BTreeMap<String, u32>,
    writes_without_objects: u64,
}

impl Reader {
    fn record(&mut self, r: &Value) {
        let t = r["t"].as_u64().unwrap_or(0);
        match (r["component"].as_str(), r["event"].as_str()) {
            (Some("kube-apiserver"), Some("Write")) => self.write(t, r),
            (Some(c), Some("RuntimeStep")) if c.starts_with("kubelet") => {
                let step = r["step"].as_str().unwrap_or("").to_string();
                let took = r["took"].as_u64().unwrap_or(0);
                self.out.steps.entry(step).or_default().push(took);
            }
            (Some("kube-controller-manager"), Some("Event"))
                if r["reason"] == "ScalingReplicaSet" =>
            {
                let object = r["object"].as_str().unwrap_or("");
                let message = r["message"].as_str().unwrap_or("");
                self.out.scaling.push(format!("{object}: {message}"));
            }
            _ => {}
        }
    }

    fn write(&mut self, t: u64, r: &Value) {
        let Some(key) = r["key"].as_str().and_then(|k| k.strip_prefix("Pod/")) else {
            return;
        };
        let object = &r["object"];
        if object.is_null() {
            self.writes_without_objects += 1;
            return;
        }
        let verb = r["verb"].as_str().unwrap_or("");
        if verb == "create" || !self.identity_of.contains_key(key) {
            let identity = self.identity(key, object);
            let created = r["created"].as_u64().unwrap_or(t);
            let mut life = PodLife {
                identity: identity.clone(),
                name: key.to_string(),
                ..PodLife::default()
            };
            life.at[0] = Some(created);
            self.out.pods.insert(identity.clone(), life);
            self.identity_of.insert(key.to_string(), identity);
        }
        let identity = &self.identity_of[key];
        let life = self.out.pods.get_mut(identity).expect("inserted above");
        if verb == "delete" {
            life.at[5].get_or_insert(t);
            self.identity_of.remove(key);
            return;
        }
        observe(life, t, object);
    }

    /// The pod's controller and its creation ordinal, or its own key.
    fn identity(&mut self, key: &str, pod: &Value) -> String {
        let owners = pod["metadata"]["ownerReferences"].as_array();
        let controller = owners
            .into_iter()
            .flatten()
            .find(|o| o["controller"] == true);
        let Some(o) = controller else {
            return format!("Pod/{key}");
        };
        let namespace = key.split('/').next().unwrap_or("");
        let owner = format!(
            "{}/{namespace}/{}",
            o["kind"].as_str().unwrap_or(""),
            o["name"].as_str().unwrap_or("")
        );
        let n = self.created_by.entry(owner.clone()).or_default();
        *n += 1;
        format!("{owner}#{n}")
    }
}

/// Records the milestones `pod` (the object after a write at `t`) shows
/// for the first time.
fn observe(life: &mut PodLife, t: u64, pod: &Value) {
    if let Some(node) = pod["spec"]["nodeName"].as_str() {
        life.node.get_or_insert_with(|| node.to_string());
        life.at[1].get_or_insert(t);
    }
    let status = &pod["status"];
    if condition(status, "PodReadyToStartContainers") {
        life.at[2].get_or_insert(t);
    }
    let containers = status["containerStatuses"].as_array();
    let all_running = containers
        .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["state"]["running"].is_object()));
    if all_running {
        life.at[3].get_or_insert(t);
    }
    if condition(status, "Ready") {
        life.at[4].get_or_insert(t);
    }
}

fn condition(status: &Value, kind: &str) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>, conditions: &[&str], running: bool) -> Value {
        let conditions: Vec<Value> = conditions
            .iter()
            .map(|c| serde_json::json!({"type": c, "status": "True"}))
            .collect();
        let state = if running {
            serde_json::json!({"running": {"startedAt": "2025-01-01T00:00:01Z"}})
        } else {
            serde_json::json!({"waiting": {"reason": "ContainerCreating"}})
        };
        serde_json::json!({
            "metadata": {"name": name, "ownerReferences": [
                {"kind": "ReplicaSet", "name": "web-5f6c", "controller": true}]},
            "spec": {"nodeName": node},
            "status": {"conditions": conditions, "containerStatuses": [{"state": state}]}
        })
    }

    fn write(t: u64, verb: &str, name: &str, object: Value) -> Value {
        serde_json::json!({"t": t, "component": "kube-apiserver", "event": "Write",
            "verb": verb, "key": format!("Pod/default/{name}"), "created": 5, "object": object})
    }

    #[test]
    fn milestones_are_the_first_writes_that_show_them_and_pods_are_known_by_owner_order() {
        let mut r = Reader::default();
        r.record(&write(
            10,
            "create",
            "web-5f6c-aaaaa",
            pod("a", None, &[], false),
        ));
        r.record(&write(
            12,
            "create",
            "web-5f6c-bbbbb",
            pod("b", None, &[], false),
        ));
        r.record(&write(
            20,
            "update",
            "web-5f6c-aaaaa",
            pod("a", Some("n1"), &[], false),
        ));
        r.record(&write(
            30,
            "update",
            "web-5f6c-aaaaa",
            pod("a", Some("n1"), &["PodReadyToStartContainers"], false),
        ));
        r.record(&write(
            40,
            "update",
            "web-5f6c-aaaaa",
            pod("a", Some("n1"), &["PodReadyToStartContainers"], true),
        ));
        let ready = &["PodReadyToStartContainers", "Ready"];
        r.record(&write(
            50,
            "update",
            "web-5f6c-aaaaa",
            pod("a", Some("n1"), ready, true),
        ));
        // A later write that shows them again moves nothing.
        r.record(&write(
            55,
            "update",
            "web-5f6c-aaaaa",
            pod("a", Some("n2"), ready, true),
        ));
        r.record(&write(
            60,
            "delete",
            "web-5f6c-aaaaa",
            pod("a", Some("n1"), ready, true),
        ));
        let a = &r.out.pods["ReplicaSet/default/web-5f6c#1"];
        // created is the creationTimestamp the create carries (5), not the
        // write's instant (10).
        assert_eq!(
            a.at,
            [Some(5), Some(20), Some(30), Some(40), Some(50), Some(60)]
        );
        assert_eq!(a.node.as_deref(), Some("n1"));
        assert_eq!(a.name, "default/web-5f6c-aaaaa");
        let b = &r.out.pods["ReplicaSet/default/web-5f6c#2"];
        assert_eq!(b.at, [Some(5), None, None, None, None, None]);
    }

    #[test]
    fn runtime_steps_and_scaling_events_are_collected_in_order() {
        let mut r = Reader::default();
        let step = |s: &str, took: u64| {
            serde_json::json!({"t": 1, "component": "kubelet/n1", "event": "RuntimeStep",
                "pod": "default/a", "step": s, "start": 0, "took": took})
        };
        r.record(&step("sandbox", 7));
        r.record(&step("start", 3));
        r.record(&step("sandbox", 9));
        r.record(
            &serde_json::json!({"t": 2, "component": "kube-controller-manager",
            "event": "Event", "reason": "ScalingReplicaSet", "object": "Deployment/default/web",
            "message": "Scaled up replica set web-5f6c from 0 to 3"}),
        );
        r.record(
            &serde_json::json!({"t": 3, "component": "kube-controller-manager",
            "event": "Event", "reason": "SuccessfulCreate", "object": "ReplicaSet/default/web-5f6c",
            "message": "Created pod: web-5f6c-aaaaa"}),
        );
        assert_eq!(r.out.steps["sandbox"], vec![7, 9]);
        assert_eq!(r.out.steps["start"], vec![3]);
        assert_eq!(
            r.out.scaling,
            vec!["Deployment/default/web: Scaled up replica set web-5f6c from 0 to 3"]
        );
    }
}
