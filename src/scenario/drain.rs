//! `kubectl drain NODE`, step by step as kubectl takes it: read the node and
//! cordon it, list the pods bound to it, refuse or skip the ones drain does
//! not touch (DaemonSet-managed, mirror, local storage, unreplicated), then
//! evict every other pod at once, retrying each eviction the disruption
//! budget refuses every five seconds, and poll each evicted pod every second
//! until it is gone. The lines kubectl prints are what the trace records.
//!
//! A [`DrainRun`] is a state machine: the scenario driver feeds it answers
//! and timer firings, and carries out the [`Step`]s it returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::pod::PodPhase;
use crate::api::{Kind, Object};
use crate::controllers::workload::controller_ref;
use crate::model::apiserver::request::{ApiRequest, ApiResponse, PatchOp, Verb};
use crate::sim::{SimDuration, SimTime};

/// How long kubectl waits before retrying an eviction a budget refused.
pub const EVICTION_RETRY: SimDuration = SimDuration::from_secs(5);
/// How often kubectl checks whether an evicted pod is gone.
pub const DELETE_POLL: SimDuration = SimDuration::from_secs(1);

/// The pod annotation that marks a static pod's mirror.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// `kubectl drain`'s flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DrainOptions {
    pub node: String,
    /// `--ignore-daemonsets`.
    pub ignore_daemonsets: bool,
    /// `--delete-emptydir-data`.
    pub delete_emptydir_data: bool,
    /// `--force`: also delete pods no controller will replace.
    pub force: bool,
    /// `--grace-period`; `None` means each pod's own.
    pub grace_seconds: Option<i64>,
    /// `--timeout`; `None` waits forever.
    pub timeout: Option<SimDuration>,
    /// `--disable-eviction`: DELETE the pods, bypassing their budgets.
    pub disable_eviction: bool,
}

impl std::fmt::Display for DrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "drain node {}", self.node)?;
        if self.ignore_daemonsets {
            f.write_str(" --ignore-daemonsets")?;
        }
        if self.delete_emptydir_data {
            f.write_str(" --delete-emptydir-data")?;
        }
        if self.force {
            f.write_str(" --force")?;
        }
        if let Some(g) = self.grace_seconds {
            write!(f, " --grace-period={g}")?;
        }
        if let Some(t) = self.timeout {
            write!(f, " --timeout={}s", t.as_secs_f64())?;
        }
        if self.disable_eviction {
            f.write_str(" --disable-eviction")?;
        }
        Ok(())
    }
}

/// Which request an answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    ReadNode,
    Cordon,
    List,
    /// The eviction (or delete) of pod `i`.
    Evict(u32),
    /// The check whether pod `i` is gone.
    Poll(u32),
}

/// What the driver does for a drain.
#[derive(Debug)]
pub enum Step {
    Send(Box<ApiRequest>, Stage),
    /// Call [`DrainRun::on_timer`] with this pod index after the delay.
    Wake(SimDuration, u32),
    /// A line kubectl prints.
    Say(String),
    /// The command ended: `Ok` or kubectl's error.
    Finish(Result<String, String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodState {
    Evicting,
    Waiting,
    Gone,
    Failed,
}

#[derive(Clone, Debug)]
struct DrainPod {
    namespace: String,
    name: String,
    uid: String,
    state: PodState,
}

/// One `kubectl drain` in progress.
#[derive(Debug)]
pub struct DrainRun {
    pub opts: DrainOptions,
    started: SimTime,
    pods: Vec<DrainPod>,
    errors: Vec<String>,
    pub finished: bool,
}

/// What drain's filters decide for the pods on a node.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    /// Pods to evict, in list order.
    pub evict: Vec<Arc<Object>>,
    /// `Warning: …` lines.
    pub warnings: Vec<String>,
    /// Reasons drain refuses to go on.
    pub errors: Vec<String>,
}

/// kubectl's filters (`daemonSetFilter`, `mirrorPodFilter`,
/// `localStorageFilter`, `unreplicatedFilter`), in its order; messages
/// grouped as kubectl groups them.
pub fn select_pods(pods: &[Arc<Object>], opts: &DrainOptions) -> Selection {
    let mut warn: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut err: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut evict = Vec::new();
    for pod in pods {
        let Some(p) = pod.as_pod() else { continue };
        let id = format!("{}/{}", pod.meta.namespace, pod.meta.name);
        let finished = matches!(p.status.phase, PodPhase::Succeeded | PodPhase::Failed);
        let controller = controller_ref(pod);
        if controller.is_some_and(|r| r.kind == "DaemonSet") {
            if opts.ignore_daemonsets {
                warn.entry("ignoring DaemonSet-managed Pods")
                    .or_default()
                    .push(id);
            } else {
                err.entry(
                    "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)",
                )
                .or_default()
                .push(id);
            }
            continue;
        }
        if pod.meta.annotations.contains_key(MIRROR_ANNOTATION) {
            continue;
        }
        let local = p
            .spec
            .api
            .volumes
            .iter()
            .flatten()
            .any(|v| v.empty_dir.is_some());
        if local && !finished {
            if opts.delete_emptydir_data {
                warn.entry("deleting Pods with local storage")
                    .or_default()
                    .push(id.clone());
            } else {
                err.entry("cannot delete Pods with local storage (use --delete-emptydir-data to override)")
                    .or_default()
                    .push(id);
                continue;
            }
        }
        if controller.is_none() && !finished {
            if opts.force {
                warn.entry("deleting Pods that declare no controller")
                    .or_default()
                    .push(id);
            } else {
                err.entry(
                    "cannot delete Pods that declare no controller (use --force to override)",
                )
                .or_default()
                .push(id);
                continue;
            }
        }
        evict.push(pod.clone());
    }
    let lines = |m: BTreeMap<&str, Vec<String>>| {
        m.into_iter()
            .map(|(msg, ids)| format!("{msg}: {}", ids.join(", ")))
            .collect::<Vec<_>>()
    };
    Selection {
        evict,
        warnings: lines(warn),
        errors: lines(err),
    }
}

impl DrainRun {
    /// Starts a drain: kubectl first reads the node.
    pub fn start(opts: DrainOptions, now: SimTime) -> (DrainRun, Vec<Step>) {
        let read = ApiRequest::new(Verb::Get, Kind::Node, "", &opts.node);
        let run = DrainRun {
            opts,
            started: now,
            pods: Vec::new(),
            errors: Vec::new(),
            finished: false,
        };
        (run, vec![Step::Send(Box::new(read), Stage::ReadNode)])
    }

    fn fail(&mut self, msg: String) -> Vec<Step> {
        self.finished = true;
        vec![Step::Finish(Err(format!(
            "unable to drain node {:?} due to error: {msg}, continuing command...",
            self.opts.node
        )))]
    }

    fn evict_request(&self, i: u32) -> ApiRequest {
        let p = &self.pods[i as usize];
        let verb = if self.opts.disable_eviction {
            Verb::Delete
        } else {
            Verb::Evict
        };
        let mut req = ApiRequest::new(verb, Kind::Pod, &p.namespace, &p.name);
        req.grace_seconds = self.opts.grace_seconds.filter(|g| *g >= 0);
        req
    }

    fn poll_request(&self, i: u32) -> ApiRequest {
        let p = &self.pods[i as usize];
        ApiRequest::new(Verb::Get, Kind::Pod, &p.namespace, &p.name)
    }

    /// An answer (`None`: lost, no answer in time or connection refused).
    pub fn on_response(
        &mut self,
        stage: Stage,
        resp: Option<&ApiResponse>,
        now: SimTime,
    ) -> Vec<Step> {
        if self.finished {
            return Vec::new();
        }
        let describe = |r: Option<&ApiResponse>| match r {
            Some(r) => r.message.clone(),
            None => "the request got no answer".to_string(),
        };
        match stage {
            Stage::ReadNode => {
                let Some(node) = resp.filter(|r| r.ok()).and_then(|r| r.object.clone()) else {
                    return self.fail(describe(resp));
                };
                let cordoned = node.as_node().is_some_and(|n| n.unschedulable);
                if cordoned {
                    let mut out = vec![Step::Say(format!(
                        "node/{} already cordoned",
                        self.opts.node
                    ))];
                    out.push(self.list());
                    return out;
                }
                let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &self.opts.node);
                req.patch = Some(PatchOp::Merge(
                    serde_json::json!({"spec": {"unschedulable": true}}),
                ));
                vec![Step::Send(Box::new(req), Stage::Cordon)]
            }
            Stage::Cordon => {
                if !resp.is_some_and(|r| r.ok()) {
                    return self.fail(describe(resp));
                }
                vec![
                    Step::Say(format!("node/{} cordoned", self.opts.node)),
                    self.list(),
                ]
            }
            Stage::List => {
                let Some(r) = resp.filter(|r| r.ok()) else {
                    return self.fail(describe(resp));
                };
                let sel = select_pods(&r.items, &self.opts);
                let mut out: Vec<Step> = sel
                    .warnings
                    .iter()
                    .map(|w| Step::Say(format!("Warning: {w}")))
                    .collect();
                if !sel.errors.is_empty() {
                    let msg = sel.errors.join(", ");
                    out.push(Step::Say(format!(
                        "There are pending nodes to be drained:\n {}\n{}",
                        self.opts.node,
                        sel.errors.join("\n")
                    )));
                    out.extend(self.fail(msg));
                    return out;
                }
                self.pods = sel
                    .evict
                    .iter()
                    .map(|o| DrainPod {
                        namespace: o.meta.namespace.clone(),
                        name: o.meta.name.clone(),
                        uid: o.meta.uid.clone(),
                        state: PodState::Evicting,
                    })
                    .collect();
                let verb = if self.opts.disable_eviction {
                    "deleting"
                } else {
                    "evicting"
                };
                for i in 0..self.pods.len() as u32 {
                    let p = &self.pods[i as usize];
                    out.push(Step::Say(format!("{verb} pod {}/{}", p.namespace, p.name)));
                    out.push(Step::Send(Box::new(self.evict_request(i)), Stage::Evict(i)));
                }
                out.extend(self.maybe_done(now));
                out
            }
            Stage::Evict(i) => {
                let p = &self.pods[i as usize];
                let code = resp.map(|r| r.code);
                match code {
                    Some(c) if (200..300).contains(&c) => {
                        self.pods[i as usize].state = PodState::Waiting;
                        vec![Step::Send(Box::new(self.poll_request(i)), Stage::Poll(i))]
                    }
                    Some(404) => {
                        self.pods[i as usize].state = PodState::Gone;
                        self.maybe_done(now)
                    }
                    Some(429) => vec![
                        Step::Say(format!(
                            "error when evicting pods/{:?} -n {:?} (will retry after 5s): {}",
                            p.name,
                            p.namespace,
                            describe(resp)
                        )),
                        Step::Wake(EVICTION_RETRY, i),
                    ],
                    _ => {
                        let e = format!(
                            "error when evicting pods/{:?} -n {:?}: {}",
                            p.name,
                            p.namespace,
                            describe(resp)
                        );
                        self.pod_failed(i, e, now)
                    }
                }
            }
            Stage::Poll(i) => {
                let p = &self.pods[i as usize];
                let gone = match resp {
                    Some(r) if r.code == 404 => true,
                    Some(r) if r.ok() => r.object.as_ref().is_some_and(|o| o.meta.uid != p.uid),
                    _ => {
                        let e = format!(
                            "error when waiting for pod {:?} in namespace {:?} to terminate: {}",
                            p.name,
                            p.namespace,
                            describe(resp)
                        );
                        return self.pod_failed(i, e, now);
                    }
                };
                if !gone {
                    return vec![Step::Wake(DELETE_POLL, i)];
                }
                let verb = if self.opts.disable_eviction {
                    "deleted"
                } else {
                    "evicted"
                };
                let line = format!("pod/{} {verb}", p.name);
                self.pods[i as usize].state = PodState::Gone;
                let mut out = vec![Step::Say(line)];
                out.extend(self.maybe_done(now));
                out
            }
        }
    }

    /// Pod `i` cannot be drained: kubectl reports `error` at the end.
    fn pod_failed(&mut self, i: u32, error: String, now: SimTime) -> Vec<Step> {
        self.pods[i as usize].state = PodState::Failed;
        self.errors.push(error);
        self.maybe_done(now)
    }

    fn list(&self) -> Step {
        let mut req = ApiRequest::new(Verb::List, Kind::Pod, "", "");
        req.node_filter = Some(self.opts.node.clone());
        Step::Send(Box::new(req), Stage::List)
    }

    /// A wake-up for pod `i`: retry its eviction, or look again.
    pub fn on_timer(&mut self, i: u32) -> Vec<Step> {
        if self.finished {
            return Vec::new();
        }
        match self.pods.get(i as usize).map(|p| p.state) {
            Some(PodState::Evicting) => {
                vec![Step::Send(Box::new(self.evict_request(i)), Stage::Evict(i))]
            }
            Some(PodState::Waiting) => {
                vec![Step::Send(Box::new(self.poll_request(i)), Stage::Poll(i))]
            }
            _ => Vec::new(),
        }
    }

    /// `--timeout` ran out.
    pub fn on_timeout(&mut self) -> Vec<Step> {
        if self.finished {
            return Vec::new();
        }
        let t = self.opts.timeout.map(|d| d.as_secs_f64()).unwrap_or(0.0);
        for p in &mut self.pods {
            if matches!(p.state, PodState::Evicting | PodState::Waiting) {
                p.state = PodState::Failed;
                self.errors.push(format!(
                    "error when evicting pods/{:?} -n {:?}: global timeout reached: {t}s",
                    p.name, p.namespace
                ));
            }
        }
        let msg = self.errors.join(", ");
        self.fail(msg)
    }

    fn maybe_done(&mut self, now: SimTime) -> Vec<Step> {
        let busy = self
            .pods
            .iter()
            .any(|p| matches!(p.state, PodState::Evicting | PodState::Waiting));
        if busy {
            return Vec::new();
        }
        if !self.errors.is_empty() {
            let mut out = vec![Step::Say(format!(
                "There are pending pods in node {:?} when an error occurred: {}",
                self.opts.node,
                self.errors.join("\n")
            ))];
            let msg = self.errors.join(", ");
            out.extend(self.fail(msg));
            return out;
        }
        self.finished = true;
        let took = now.since(self.started).as_secs_f64();
        vec![
            Step::Say(format!("node/{} drained", self.opts.node)),
            Step::Finish(Ok(format!(
                "drained: {} pods evicted in {took:.1}s",
                self.pods.len()
            ))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};

    fn pods(yaml: &str) -> Vec<Arc<Object>> {
        load_manifests("t.yaml", yaml, &mut FieldReport::default())
            .expect("valid manifests")
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    const NODE_PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: agent-x
  namespace: kube-system
  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: u1, controller: true}]
spec: {containers: [{name: c, image: a}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: etcd-n1
  namespace: kube-system
  annotations: {kubernetes.io/config.mirror: abc}
spec: {containers: [{name: c, image: etcd}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: cache-0
  namespace: default
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: cache, uid: u2, controller: true}]
spec:
  containers: [{name: c, image: redis}]
  volumes: [{name: scratch, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: default}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: default
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-abc, uid: u3, controller: true}]
spec: {containers: [{name: c, image: nginx}]}
"#;

    fn names(sel: &Selection) -> Vec<&str> {
        sel.evict.iter().map(|p| p.meta.name.as_str()).collect()
    }

    #[test]
    fn kubectl_defaults_refuse_daemonset_local_storage_and_bare_pods() {
        let opts = DrainOptions {
            node: "n1".into(),
            ..Default::default()
        };
        let sel = select_pods(&pods(NODE_PODS), &opts);
        assert_eq!(
            sel.errors,
            vec![
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/agent-x",
                "cannot delete Pods that declare no controller (use --force to override): default/debug",
                "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-0",
            ]
        );
        // The mirror pod is skipped silently.
        assert!(!names(&sel).contains(&"etcd-n1"));
    }

    #[test]
    fn flags_turn_refusals_into_warnings() {
        let opts = DrainOptions {
            node: "n1".into(),
            ignore_daemonsets: true,
            delete_emptydir_data: true,
            force: true,
            ..Default::default()
        };
        let sel = select_pods(&pods(NODE_PODS), &opts);
        assert!(sel.errors.is_empty());
        assert_eq!(names(&sel), vec!["cache-0", "debug", "web-1"]);
        assert_eq!(
            sel.warnings,
            vec![
                "deleting Pods that declare no controller: default/debug",
                "deleting Pods with local storage: default/cache-0",
                "ignoring DaemonSet-managed Pods: kube-system/agent-x",
            ]
        );
    }

    #[test]
    fn a_refused_eviction_waits_five_seconds_and_a_gone_pod_finishes() {
        let opts = DrainOptions {
            node: "n1".into(),
            ..Default::default()
        };
        let (mut run, steps) = DrainRun::start(opts, SimTime::ZERO);
        assert!(matches!(steps[0], Step::Send(_, Stage::ReadNode)));
        let listed = ApiResponse {
            id: 1,
            code: 200,
            reason: "",
            message: String::new(),
            cause: String::new(),
            retry_after: None,
            object: None,
            items: pods(NODE_PODS).into_iter().skip(4).collect(),
            resource_version: 1,
        };
        let steps = run.on_response(Stage::List, Some(&listed), SimTime::ZERO);
        assert!(matches!(&steps[1], Step::Send(r, Stage::Evict(0)) if r.verb == Verb::Evict));
        let refused = ApiResponse {
            code: 429,
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            items: Vec::new(),
            ..listed.clone()
        };
        let steps = run.on_response(Stage::Evict(0), Some(&refused), SimTime::ZERO);
        assert!(matches!(steps[1], Step::Wake(d, 0) if d == EVICTION_RETRY));
        assert!(matches!(
            &run.on_timer(0)[0],
            Step::Send(_, Stage::Evict(0))
        ));
        let accepted = ApiResponse {
            code: 201,
            ..refused.clone()
        };
        let steps = run.on_response(Stage::Evict(0), Some(&accepted), SimTime::ZERO);
        assert!(matches!(&steps[0], Step::Send(r, Stage::Poll(0)) if r.verb == Verb::Get));
        let gone = ApiResponse {
            code: 404,
            ..refused
        };
        let t = SimTime::ZERO.after(SimDuration::from_secs(12));
        let steps = run.on_response(Stage::Poll(0), Some(&gone), t);
        let said: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Say(l) => Some(l.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(said, vec!["pod/web-1 evicted", "node/n1 drained"]);
        assert!(
            matches!(steps.last(), Some(Step::Finish(Ok(m))) if m == "drained: 1 pods evicted in 12.0s")
        );
        assert!(run.finished);
    }
}
