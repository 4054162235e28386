//! The pod garbage collector (`pkg/controller/podgc`), as of v1.34. Every
//! `gcCheckPeriod` (20 s, counted from the end of the previous pass, as
//! `wait.UntilWithContext` slides) it lists pods and nodes from the shared
//! informers and, in upstream's order:
//!
//! 1. `gcTerminated`: past `--terminated-pod-gc-threshold` terminated pods
//!    (phase Succeeded or Failed), force-deletes the excess, evicted pods
//!    first, then the oldest (0 turns this off);
//! 2. `gcTerminating`: terminating pods on a NotReady node tainted
//!    `node.kubernetes.io/out-of-service`;
//! 3. `gcOrphaned`: pods bound to a node the informer does not hold are
//!    quarantined for 40 s; a node still absent then and confirmed gone by a
//!    live GET (404) has its pods marked Failed with DisruptionTarget
//!    (`DeletionByPodGC`) and force-deleted;
//! 4. `gcUnscheduledTerminating`: terminating pods that never reached a
//!    node.
//!
//! Every deletion is `markFailedAndDeletePod`: a status patch to Failed
//! unless the pod is terminal already, then a DELETE with grace 0. Stages 1
//! and 2 send their deletions at once and wait for all (upstream's
//! goroutines and WaitGroup); 3 and 4 go one pod at a time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workqueue::WorkQueue;
use crate::api::pod::{Condition, PodPhase, PodStatus};
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, PatchOp, Verb};
use crate::sim::{SimDuration, SimTime};

/// `gcCheckPeriod`.
pub const GC_CHECK_PERIOD: SimDuration = SimDuration(20_000_000_000);
/// `quarantineTime`: how long a missing node may take to show up in the
/// informer before a live GET checks it.
pub const QUARANTINE_TIME: SimDuration = SimDuration(40_000_000_000);
/// `--terminated-pod-gc-threshold`'s default.
pub const DEFAULT_TERMINATED_POD_GC_THRESHOLD: u32 = 12_500;
/// `v1.TaintNodeOutOfService`.
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";
const GC_PASS: u32 = 0;

/// One stage of a pass, in the order `gc` runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Terminated,
    Terminating,
    DiscoverDeletedNodes,
    Orphaned,
    UnscheduledTerminating,
}

/// One unit of a stage's work.
enum Work {
    /// `markFailedAndDeletePodWithCondition`.
    Delete {
        pod: Arc<Object>,
        condition: Option<Condition>,
    },
    /// `checkIfNodeExists`.
    GetNode(String),
}

/// A pass in progress: the pods and node names listed at its start.
struct Pass {
    pods: Vec<Arc<Object>>,
    nodes: BTreeSet<String>,
    stage: Stage,
    todo: VecDeque<Work>,
    outstanding: usize,
    deleted_nodes: BTreeSet<String>,
}

pub struct PodGcController {
    /// 0 turns `gcTerminated` off.
    threshold: usize,
    /// `nodeQueue`, a delaying queue: names waiting out their quarantine
    /// (ready at) ...
    waiting: BTreeMap<String, SimTime>,
    /// ... and names whose quarantine is over, drained by the next pass.
    ready: BTreeSet<String>,
    pass: Option<Pass>,
}

impl PodGcController {
    pub fn new(threshold: u32) -> Self {
        PodGcController {
            threshold: threshold as usize,
            waiting: BTreeMap::new(),
            ready: BTreeSet::new(),
            pass: None,
        }
    }
}

/// `isPodTerminated`: any phase but Pending, Running and Unknown.
pub fn is_terminated(p: &Object) -> bool {
    p.as_pod()
        .is_some_and(|b| matches!(b.status.phase, PodPhase::Succeeded | PodPhase::Failed))
}

/// `eviction.PodIsEvicted`: Failed with reason `Evicted`.
pub fn is_evicted(p: &Object) -> bool {
    p.as_pod().is_some_and(|b| {
        b.status.phase == PodPhase::Failed && b.status.reason.as_deref() == Some("Evicted")
    })
}

/// `byEvictionAndCreationTimestamp`: evicted first, then older, then by
/// name. A creationTimestamp reaches the informer as RFC 3339 with whole
/// seconds, so pods created within one second tie and go by name
/// (namespace after that, so the order is total).
fn gc_order(p: &Object) -> (bool, u64, &str, &str) {
    let created_secs = p.meta.creation.nanos() / 1_000_000_000;
    (
        !is_evicted(p),
        created_secs,
        &p.meta.name,
        &p.meta.namespace,
    )
}

/// `gcTerminated`'s choice: with more terminated pods than `threshold`,
/// the excess in `byEvictionAndCreationTimestamp` order.
pub fn terminated_to_delete(pods: &[Arc<Object>], threshold: usize) -> Vec<Arc<Object>> {
    let mut terminated: Vec<&Arc<Object>> = pods.iter().filter(|p| is_terminated(p)).collect();
    let delete_count = terminated.len().saturating_sub(threshold);
    if threshold == 0 || delete_count == 0 {
        return Vec::new();
    }
    terminated.sort_by(|a, b| gc_order(a).cmp(&gc_order(b)));
    terminated.into_iter().take(delete_count).cloned().collect()
}

fn node_of(p: &Object) -> Option<&str> {
    p.as_pod()
        .and_then(|b| b.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// `gcTerminating`'s choice: terminating pods on a node that is not Ready
/// and carries the out-of-service taint (any effect).
fn terminating_to_delete(pods: &[Arc<Object>], cache: &Cache) -> Vec<Arc<Object>> {
    let out_of_service = |name: &str| {
        cache
            .get(Kind::Node, "", name)
            .and_then(|n| n.as_node())
            .is_some_and(|n| {
                let ready = n
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                !ready && n.taints.iter().any(|t| t.key == OUT_OF_SERVICE)
            })
    };
    let mut v: Vec<&Arc<Object>> = pods
        .iter()
        .filter(|p| p.meta.deletion.is_some())
        .filter(|p| node_of(p).is_some_and(out_of_service))
        .collect();
    v.sort_by(|a, b| gc_order(a).cmp(&gc_order(b)));
    v.into_iter().cloned().collect()
}

/// `apipod.UpdatePodCondition`: set by type, keeping the transition time
/// when the status is unchanged.
fn update_condition(status: &mut PodStatus, mut c: Condition) {
    match status.conditions.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) => {
            if x.status == c.status {
                c.last_transition = x.last_transition;
            }
            *x = c;
        }
        None => status.conditions.push(c),
    }
}

/// The DisruptionTarget condition `gcOrphaned` sets.
fn orphaned_condition(now: SimTime) -> Condition {
    Condition {
        type_: "DisruptionTarget",
        status: true,
        last_transition: now,
        reason: Some("DeletionByPodGC".into()),
        message: Some("PodGC: node no longer exists".into()),
    }
}

fn force_delete(p: &Object) -> ApiRequest {
    let mut req = ApiRequest::new(Verb::Delete, Kind::Pod, &p.meta.namespace, &p.meta.name);
    req.grace_seconds = Some(0);
    req
}

/// The first request of `markFailedAndDeletePodWithCondition`: the status
/// patch to Failed (from the status the informer holds, as upstream's
/// two-way patch is computed from it), or the DELETE for a terminal pod.
fn mark_failed_or_delete(p: &Object, condition: Option<Condition>) -> ApiRequest {
    let Some(b) = p.as_pod().filter(|b| !b.is_terminal()) else {
        return force_delete(p);
    };
    let mut st = b.status.clone();
    st.phase = PodPhase::Failed;
    if let Some(c) = condition {
        update_condition(&mut st, c);
    }
    let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, &p.meta.namespace, &p.meta.name);
    req.patch = Some(PatchOp::PodStatus(Box::new(st)));
    req
}

impl PodGcController {
    /// `gc`: lists, then runs the first stage.
    fn begin_pass(&mut self, cx: &mut SyncCtx<'_>) {
        let pass = Pass {
            pods: cx.cache.list_all(Kind::Pod).cloned().collect(),
            nodes: cx
                .cache
                .list_all(Kind::Node)
                .map(|n| n.meta.name.clone())
                .collect(),
            stage: Stage::Terminated,
            todo: VecDeque::new(),
            outstanding: 0,
            deleted_nodes: BTreeSet::new(),
        };
        self.pass = Some(pass);
        self.run_stage(cx);
    }

    /// Fills the current stage's work; moves on while a stage has none;
    /// ends the pass (and asks for the next) after the last.
    fn run_stage(&mut self, cx: &mut SyncCtx<'_>) {
        while let Some(stage) = self.pass.as_ref().map(|p| p.stage) {
            let work = self.stage_work(stage, cx);
            let pass = self.pass.as_mut().expect("checked above");
            pass.todo = work.into();
            let parallel = matches!(stage, Stage::Terminated | Stage::Terminating);
            let n = if parallel { pass.todo.len() } else { 1 };
            for _ in 0..n {
                self.send_next(cx);
            }
            if self.pass.as_ref().is_some_and(|p| p.outstanding > 0) {
                return;
            }
            self.advance(cx);
        }
    }

    /// The stage after the current one, or the pass's end: the next pass
    /// is due a period after this one finished.
    fn advance(&mut self, cx: &mut SyncCtx<'_>) {
        let Some(pass) = self.pass.as_mut() else {
            return;
        };
        pass.stage = match pass.stage {
            Stage::Terminated => Stage::Terminating,
            Stage::Terminating => Stage::DiscoverDeletedNodes,
            Stage::DiscoverDeletedNodes => Stage::Orphaned,
            Stage::Orphaned => Stage::UnscheduledTerminating,
            Stage::UnscheduledTerminating => {
                self.pass = None;
                cx.tick_after(GC_CHECK_PERIOD, GC_PASS);
                return;
            }
        };
    }

    fn stage_work(&mut self, stage: Stage, cx: &SyncCtx<'_>) -> Vec<Work> {
        let pass = self.pass.as_ref().expect("a pass is running");
        let delete = |pods: Vec<Arc<Object>>, condition: Option<Condition>| {
            pods.into_iter()
                .map(|pod| Work::Delete {
                    pod,
                    condition: condition.clone(),
                })
                .collect::<Vec<_>>()
        };
        match stage {
            Stage::Terminated if self.threshold > 0 => {
                delete(terminated_to_delete(&pass.pods, self.threshold), None)
            }
            Stage::Terminated => Vec::new(),
            Stage::Terminating => delete(terminating_to_delete(&pass.pods, cx.cache), None),
            Stage::DiscoverDeletedNodes => self.quarantine(cx.now),
            Stage::Orphaned => {
                let pods = pass
                    .pods
                    .iter()
                    .filter(|p| node_of(p).is_some_and(|n| pass.deleted_nodes.contains(n)))
                    .cloned()
                    .collect();
                delete(pods, Some(orphaned_condition(cx.now)))
            }
            Stage::UnscheduledTerminating => {
                let pods = pass
                    .pods
                    .iter()
                    .filter(|p| p.meta.deletion.is_some() && node_of(p).is_none())
                    .cloned()
                    .collect();
                delete(pods, None)
            }
        }
    }

    /// `gcOrphaned`'s quarantine and `discoverDeletedNodes`: names whose
    /// 40 s are over leave the waiting list; every node a pod names that
    /// the informer lacks waits (again) from now; the names out of
    /// quarantine and still missing get a live GET.
    fn quarantine(&mut self, now: SimTime) -> Vec<Work> {
        let pass = self.pass.as_ref().expect("a pass is running");
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for n in due {
            self.waiting.remove(&n);
            self.ready.insert(n);
        }
        for p in &pass.pods {
            if let Some(n) = node_of(p).filter(|n| !pass.nodes.contains(*n)) {
                let at = now.after(QUARANTINE_TIME);
                let e = self.waiting.entry(n.to_string()).or_insert(at);
                *e = (*e).min(at);
            }
        }
        std::mem::take(&mut self.ready)
            .into_iter()
            .filter(|n| !pass.nodes.contains(n))
            .map(Work::GetNode)
            .collect()
    }

    /// Sends the first request of the next unit of work, if any.
    fn send_next(&mut self, cx: &mut SyncCtx<'_>) {
        let Some(pass) = self.pass.as_mut() else {
            return;
        };
        let Some(w) = pass.todo.pop_front() else {
            return;
        };
        pass.outstanding += 1;
        match w {
            Work::Delete { pod, condition } => cx.send(mark_failed_or_delete(&pod, condition)),
            Work::GetNode(n) => cx.send(ApiRequest::new(Verb::Get, Kind::Node, "", &n)),
        }
    }

    /// One unit of work finished: the next one of a one-at-a-time stage,
    /// or the next stage once none is left.
    fn work_done(&mut self, cx: &mut SyncCtx<'_>) {
        let Some(pass) = self.pass.as_mut() else {
            return;
        };
        pass.outstanding = pass.outstanding.saturating_sub(1);
        if pass.outstanding > 0 {
            return;
        }
        if pass.todo.is_empty() {
            self.advance(cx);
            self.run_stage(cx);
        } else {
            self.send_next(cx);
        }
    }
}

impl Controller for PodGcController {
    fn name(&self) -> &'static str {
        "pod-garbage-collector-controller"
    }

    fn workers(&self) -> usize {
        1
    }

    /// The collector lists on its own schedule; informer events queue nothing.
    fn on_event(&mut self, _: &CacheEvent, _: &Cache, _: &mut WorkQueue, _: SimTime) {}

    fn sync(&mut self, _key: &str, _cx: &mut SyncCtx<'_>) {}

    /// `wait.UntilWithContext` runs the first pass at once.
    fn start(&mut self, cx: &mut SyncCtx<'_>) {
        self.begin_pass(cx);
    }

    fn tick(&mut self, _what: u32, cx: &mut SyncCtx<'_>, _queue: &mut WorkQueue) {
        if self.pass.is_none() {
            self.begin_pass(cx);
        }
    }

    /// A failed patch ends that pod's deletion (upstream returns the error
    /// and tries again next pass); a delete's 404 is as good as done; a GET
    /// answered 404 confirms the node is gone, any other error leaves it
    /// for the next pass.
    fn on_response(
        &mut self,
        _key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let ok = resp.is_some_and(|r| r.ok());
        match req.verb {
            Verb::Get if resp.is_some_and(|r| r.code == 404) => {
                if let Some(p) = self.pass.as_mut() {
                    p.deleted_nodes.insert(req.name.clone());
                }
            }
            Verb::Patch if ok => {
                let mut del = ApiRequest::new(Verb::Delete, Kind::Pod, &req.namespace, &req.name);
                del.grace_seconds = Some(0);
                cx.send(del);
                return;
            }
            _ => {}
        }
        self.work_done(cx);
    }

    fn reset(&mut self) {
        self.waiting.clear();
        self.ready.clear();
        self.pass = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::node::NodeBody;
    use crate::api::object::{Body, Meta};
    use crate::api::pod::{PodBody, PodSpecModel};

    fn pod(name: &str, created_ms: u64, phase: PodPhase, node: Option<&str>) -> Arc<Object> {
        let spec = serde_json::json!({"containers": [{"name": "c", "image": "busybox"}]});
        let api: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(spec).expect("spec");
        let spec = PodSpecModel::from_api(&api, &Default::default()).expect("spec");
        let mut body = PodBody::new(Arc::new(spec), node.map(str::to_string));
        body.status.phase = phase;
        Arc::new(Object {
            kind: Kind::Pod,
            meta: Meta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("u-{name}"),
                creation: SimTime(created_ms * 1_000_000),
                ..Meta::default()
            },
            body: Body::Pod(body),
        })
    }

    fn evicted(name: &str, created_ms: u64) -> Arc<Object> {
        let mut p = (*pod(name, created_ms, PodPhase::Failed, Some("n1"))).clone();
        if let Body::Pod(b) = &mut p.body {
            b.status.reason = Some("Evicted".into());
        }
        Arc::new(p)
    }

    fn names(v: &[Arc<Object>]) -> Vec<&str> {
        v.iter().map(|p| p.meta.name.as_str()).collect()
    }

    #[test]
    fn the_excess_over_the_threshold_goes_oldest_first() {
        use PodPhase::*;
        let pods = vec![
            pod("t1", 1_000, Succeeded, Some("n1")),
            pod("t2", 2_000, Failed, Some("n1")),
            pod("t3", 3_000, Succeeded, Some("n1")),
            pod("t4", 4_000, Succeeded, Some("n1")),
            pod("t5", 5_000, Succeeded, Some("n1")),
            pod("r0", 0, Running, Some("n1")),
            pod("p0", 0, Pending, None),
        ];
        // 5 terminated, threshold 3: 5 - 3 = 2 go, the two oldest (t1 at
        // 1 s, t2 at 2 s); the Running and Pending pods, older still, are
        // not terminated and never count.
        assert_eq!(names(&terminated_to_delete(&pods, 3)), ["t1", "t2"]);
        // At or under the threshold nothing goes; 0 turns gcTerminated off.
        assert!(terminated_to_delete(&pods, 5).is_empty());
        assert!(terminated_to_delete(&pods, 9).is_empty());
        assert!(terminated_to_delete(&pods, 0).is_empty());
    }

    #[test]
    fn evicted_pods_go_first_whatever_their_age() {
        use PodPhase::*;
        let pods = vec![
            pod("old", 1_000, Succeeded, Some("n1")),
            pod("mid", 2_000, Failed, Some("n1")),
            evicted("ev-new", 9_000),
            evicted("ev-older", 8_000),
            pod("new", 10_000, Succeeded, Some("n1")),
        ];
        // 5 terminated, threshold 2: 3 go. Evicted first (ev-older at 8 s
        // before ev-new at 9 s), then the oldest of the rest (old, 1 s).
        assert_eq!(
            names(&terminated_to_delete(&pods, 2)),
            ["ev-older", "ev-new", "old"]
        );
    }

    #[test]
    fn pods_created_in_the_same_second_go_by_name() {
        use PodPhase::*;
        // creationTimestamp has whole seconds: 5.9 s and 5.1 s are both 5 s,
        // so "a" (created later within the second) sorts before "b".
        let pods = vec![
            pod("b", 5_100, Succeeded, Some("n1")),
            pod("a", 5_900, Succeeded, Some("n1")),
            pod("c", 4_999, Succeeded, Some("n1")),
        ];
        // 3 terminated, threshold 1: 2 go: c (4 s), then a before b.
        assert_eq!(names(&terminated_to_delete(&pods, 1)), ["c", "a"]);
    }

    #[test]
    fn a_running_pod_is_marked_failed_before_a_forced_delete() {
        let run = pod("r", 0, PodPhase::Running, Some("gone"));
        let req = mark_failed_or_delete(&run, Some(orphaned_condition(SimTime(7))));
        assert_eq!(req.verb, Verb::Patch);
        let Some(PatchOp::PodStatus(st)) = &req.patch else {
            panic!("a status patch: {:?}", req.patch);
        };
        assert_eq!(st.phase, PodPhase::Failed);
        let c = st.condition("DisruptionTarget").expect("condition");
        assert!(c.status);
        assert_eq!(c.reason.as_deref(), Some("DeletionByPodGC"));
        assert_eq!(c.message.as_deref(), Some("PodGC: node no longer exists"));
        // A terminal pod needs no patch: the DELETE with grace 0 at once.
        let done = pod("d", 0, PodPhase::Succeeded, Some("gone"));
        let req = mark_failed_or_delete(&done, None);
        assert_eq!((req.verb, req.grace_seconds), (Verb::Delete, Some(0)));
    }

    fn node(name: &str) -> Arc<Object> {
        Arc::new(Object {
            kind: Kind::Node,
            meta: Meta {
                name: name.into(),
                uid: format!("u-{name}"),
                ..Meta::default()
            },
            body: Body::Node(NodeBody {
                unschedulable: false,
                taints: Vec::new(),
                pod_cidr: None,
                capacity: Default::default(),
                allocatable: Default::default(),
                conditions: Vec::new(),
                addresses: Vec::new(),
                images: Vec::new(),
                kubelet_version: String::new(),
            }),
        })
    }

    fn answer(code: u16) -> ApiResponse {
        ApiResponse {
            id: 0,
            code,
            reason: "",
            message: String::new(),
            cause: String::new(),
            retry_after: None,
            object: None,
            items: Vec::new(),
            resource_version: 0,
        }
    }

    /// Runs a tick (or the start) at `secs` and returns what it sent.
    fn pass_at(gc: &mut PodGcController, cache: &Cache, secs: u64) -> Vec<ApiRequest> {
        let mut cx = SyncCtx::new(SimTime(secs * 1_000_000_000), cache);
        gc.tick(GC_PASS, &mut cx, &mut WorkQueue::default());
        cx.requests
    }

    fn respond<'a>(
        gc: &mut PodGcController,
        cache: &'a Cache,
        req: &ApiRequest,
        code: u16,
    ) -> SyncCtx<'a> {
        let mut cx = SyncCtx::new(SimTime(40_000_000_000), cache);
        gc.on_response("", req, Some(&answer(code)), &mut cx);
        cx
    }

    #[test]
    fn an_orphaned_pod_waits_out_the_quarantine_then_a_404() {
        let mut cache = Cache::default();
        cache.apply(node("n1"), false);
        cache.apply(pod("kept", 0, PodPhase::Running, Some("n1")), false);
        cache.apply(pod("orphan", 0, PodPhase::Running, Some("gone")), false);
        let mut gc = PodGcController::new(DEFAULT_TERMINATED_POD_GC_THRESHOLD);
        // Passes at 0 s and 20 s: "gone" is in quarantine until 0 + 40 s.
        assert!(pass_at(&mut gc, &cache, 0).is_empty());
        assert!(pass_at(&mut gc, &cache, 20).is_empty());
        // At 40 s its quarantine is over: a live GET of the node.
        let sent = pass_at(&mut gc, &cache, 40);
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].verb, sent[0].kind), (Verb::Get, Kind::Node));
        assert_eq!(sent[0].name, "gone");
        // 404: the orphan (not "kept") is marked Failed, then deleted.
        let cx = respond(&mut gc, &cache, &sent[0], 404);
        assert_eq!(cx.requests.len(), 1);
        assert_eq!(cx.requests[0].verb, Verb::Patch);
        assert_eq!(cx.requests[0].name, "orphan");
        let patch = cx.requests[0].clone();
        let cx = respond(&mut gc, &cache, &patch, 200);
        assert_eq!(cx.requests.len(), 1);
        let del = &cx.requests[0];
        assert_eq!((del.verb, del.grace_seconds), (Verb::Delete, Some(0)));
        // The delete answered, the pass is over: the next is 20 s away.
        let del = del.clone();
        let cx = respond(&mut gc, &cache, &del, 200);
        assert!(cx.requests.is_empty());
        assert_eq!(cx.ticks, [(GC_CHECK_PERIOD, GC_PASS)]);
    }

    #[test]
    fn a_node_that_answers_the_get_keeps_its_pods() {
        let mut cache = Cache::default();
        cache.apply(pod("p", 0, PodPhase::Running, Some("late")), false);
        let mut gc = PodGcController::new(0);
        assert!(pass_at(&mut gc, &cache, 0).is_empty());
        let sent = pass_at(&mut gc, &cache, 40);
        assert_eq!(sent.len(), 1, "the GET of node late");
        // 200: the node exists (the informer is behind); nothing deleted.
        let cx = respond(&mut gc, &cache, &sent[0], 200);
        assert!(cx.requests.is_empty());
        assert_eq!(cx.ticks.len(), 1, "the pass ended");
    }

    #[test]
    fn unscheduled_terminating_and_out_of_service_pods_are_force_deleted() {
        let mut cache = Cache::default();
        let mut n = (*node("oos")).clone();
        if let Body::Node(b) = &mut n.body {
            b.taints.push(crate::api::node::Taint {
                key: OUT_OF_SERVICE.into(),
                value: "nodeshutdown".into(),
                effect: "NoExecute".into(),
                time_added: None,
            });
        }
        cache.apply(Arc::new(n), false);
        for (name, node) in [("unsched", None), ("on-oos", Some("oos"))] {
            let mut p = (*pod(name, 0, PodPhase::Running, node)).clone();
            p.meta.deletion = Some(SimTime(1));
            cache.apply(Arc::new(p), false);
        }
        cache.apply(pod("live", 0, PodPhase::Running, Some("oos")), false);
        let mut gc = PodGcController::new(0);
        // gcTerminating first: the terminating pod on the NotReady,
        // out-of-service node (not "live", which is not terminating).
        let sent = pass_at(&mut gc, &cache, 0);
        assert_eq!(names_of(&sent), ["on-oos"]);
        assert_eq!(sent[0].verb, Verb::Patch);
        let cx = respond(&mut gc, &cache, &sent[0], 200);
        let del = cx.requests[0].clone();
        // Then gcUnscheduledTerminating: the one that never had a node.
        let cx = respond(&mut gc, &cache, &del, 200);
        assert_eq!(names_of(&cx.requests), ["unsched"]);
    }

    fn names_of(v: &[ApiRequest]) -> Vec<&str> {
        v.iter().map(|r| r.name.as_str()).collect()
    }
}
