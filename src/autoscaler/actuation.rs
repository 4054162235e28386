//! Scale-down actuation: taint, drain, delete, as upstream's actuator
//! does. A node to delete is first tainted `ToBeDeletedByClusterAutoscaler`
//! (value: the Unix time, effect NoSchedule) and cordoned; 5 s later an
//! empty node goes to the cloud's DeleteNodes at once, while an occupied
//! one has each pod evicted through the eviction API, an eviction the
//! budgets refuse being retried every 10 s for up to 2 minutes, then waits
//! (polling every 5 s, up to the longest grace period plus 30 s) for the
//! pods to be gone before the delete. A drain that fails untaints and
//! uncordons the node and records `ScaleDownFailed`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::config::AutoscalerConfig;
use super::scale_down::PodsToMove;
use crate::api::{Kind, Object};
use crate::controllers::cache::Cache;
use crate::controllers::controller::SyncCtx;
use crate::model::apiserver::request::{ApiRequest, ApiResponse, PatchOp, Verb};
use crate::sim::time::EPOCH_UNIX_SECS;
use crate::sim::{SimDuration, SimTime};

pub const TO_BE_DELETED: &str = "ToBeDeletedByClusterAutoscaler";
pub const DELETION_CANDIDATE: &str = "DeletionCandidateOfClusterAutoscaler";

/// `DefaultEvictionRetryTime`.
const EVICTION_RETRY: SimDuration = SimDuration::from_secs(10);
/// `DefaultPodEvictionHeadroom`.
const EVICTION_HEADROOM: SimDuration = SimDuration::from_secs(30);
/// How often actuation looks at its drains (upstream sleeps 5 s between
/// checks that the evicted pods are gone).
pub const POLL: SimDuration = SimDuration::from_secs(5);
/// `MaxCloudProviderNodeDeletionTime`: how long a DeleteNodes may take.
const CLOUD_DELETION_TIME: SimDuration = SimDuration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Tainting,
    /// Tainted; acting from this instant.
    Tainted(SimTime),
    Evicting,
    /// Every pod evicted; gone by this deadline.
    Waiting(SimTime),
    /// DeleteNodes asked of the cloud then.
    Deleting(SimTime),
}

struct Eviction {
    pod: Arc<Object>,
    grace: i64,
    /// Whether it is to be waited for (DaemonSet pods are evicted best-effort).
    wait: bool,
    done: bool,
    in_flight: bool,
    next_try: SimTime,
}

struct Deletion {
    group: u32,
    empty: bool,
    started: SimTime,
    stage: Stage,
    evictions: Vec<Eviction>,
    /// The node's taints before the autoscaler's, to restore on failure.
    taints_before: Vec<Json>,
}

/// How a deletion ended.
pub struct Finished {
    pub node: String,
    pub ok: bool,
    /// It failed at its first step (tainting): the loop's
    /// `lastScaleDownFailTime`.
    pub immediate: bool,
}

#[derive(Default)]
pub struct Actuator {
    deletions: BTreeMap<String, Deletion>,
}

/// The taints of `node` as JSON, without the autoscaler's own.
fn taints_without_ours(node: &Object) -> Vec<Json> {
    node.as_node()
        .map(|n| {
            n.taints
                .iter()
                .filter(|t| t.key != TO_BE_DELETED && t.key != DELETION_CANDIDATE)
                .map(|t| t.to_json())
                .collect()
        })
        .unwrap_or_default()
}

fn taint_patch(node: &str, taints: Vec<Json>, cordon: bool) -> ApiRequest {
    let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", node);
    let unschedulable = if cordon { json!(true) } else { Json::Null };
    req.patch = Some(PatchOp::Merge(
        json!({"spec": {"taints": taints, "unschedulable": unschedulable}}),
    ));
    req
}

/// Takes the autoscaler's taints and its cordon off `node`.
pub fn untaint(node: &Object) -> ApiRequest {
    taint_patch(&node.meta.name, taints_without_ours(node), false)
}

/// The soft taint on (or off) an unneeded node, keeping its others (the
/// callers skip nodes being deleted).
pub fn soft_taint(node: &Object, on: bool, now: SimTime) -> ApiRequest {
    let mut taints = taints_without_ours(node);
    if on {
        taints.push(
            json!({"key": DELETION_CANDIDATE, "value": unix(now), "effect": "PreferNoSchedule"}),
        );
    }
    let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &node.meta.name);
    req.patch = Some(PatchOp::Merge(json!({"spec": {"taints": taints}})));
    req
}

fn unix(now: SimTime) -> String {
    (EPOCH_UNIX_SECS + now.0 / 1_000_000_000).to_string()
}

impl Actuator {
    pub fn clear(&mut self) {
        self.deletions.clear();
    }

    pub fn contains(&self, node: &str) -> bool {
        self.deletions.contains_key(node)
    }

    /// Deletions under way: all of them, and those draining pods.
    pub fn in_progress(&self) -> (usize, usize) {
        let drains = self.deletions.values().filter(|d| !d.empty).count();
        (self.deletions.len(), drains)
    }

    /// Deletions under way in `group`.
    pub fn in_group(&self, group: u32) -> u32 {
        self.deletions.values().filter(|d| d.group == group).count() as u32
    }

    pub fn busy(&self) -> bool {
        !self.deletions.is_empty()
    }

    /// Starts deleting `node`: taints and cordons it.
    pub fn start(
        &mut self,
        node: &Object,
        group: u32,
        pods: PodsToMove,
        cfg: &AutoscalerConfig,
        cx: &mut SyncCtx<'_>,
    ) {
        let max_grace = cfg.max_graceful_termination.0 as i64 / 1_000_000_000;
        let grace = |p: &Object| {
            let g = p
                .as_pod()
                .map_or(30, |b| b.spec.termination_grace.0 as i64 / 1_000_000_000);
            g.min(max_grace)
        };
        let empty = pods.movable.is_empty();
        let mut evictions: Vec<Eviction> = Vec::new();
        for p in &pods.movable {
            evictions.push(Eviction {
                pod: p.object.clone(),
                grace: grace(&p.object),
                wait: true,
                done: false,
                in_flight: false,
                next_try: SimTime::ZERO,
            });
        }
        if !empty {
            for p in &pods.daemon_set {
                evictions.push(Eviction {
                    pod: p.clone(),
                    grace: grace(p),
                    wait: false,
                    done: false,
                    in_flight: false,
                    next_try: SimTime::ZERO,
                });
            }
        }
        let before = taints_without_ours(node);
        let mut taints = before.clone();
        taints.push(json!({"key": TO_BE_DELETED, "value": unix(cx.now), "effect": "NoSchedule"}));
        cx.send(taint_patch(&node.meta.name, taints, true));
        self.deletions.insert(
            node.meta.name.clone(),
            Deletion {
                group,
                empty,
                started: cx.now,
                stage: Stage::Tainting,
                evictions,
                taints_before: before,
            },
        );
    }

    /// An answer to one of actuation's requests: the deletions it ended,
    /// and whether it was a node's taint landing.
    pub fn on_response(
        &mut self,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
        cfg: &AutoscalerConfig,
    ) -> (Vec<Finished>, bool) {
        let done = self.answered(req, resp, cx, cfg);
        let tainted = req.verb == Verb::Patch
            && self.deletions.get(&req.name).is_some_and(|d| matches!(d.stage, Stage::Tainted(t) if t == cx.now.after(cfg.delete_delay_after_taint)));
        (done, tainted)
    }

    fn answered(
        &mut self,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
        cfg: &AutoscalerConfig,
    ) -> Vec<Finished> {
        let code = resp.map_or(0, |r| r.code);
        let ok = (200..300).contains(&code);
        match (req.verb, req.kind) {
            (Verb::Patch, Kind::Node) => {
                let Some(d) = self.deletions.get_mut(&req.name) else {
                    return Vec::new();
                };
                if d.stage != Stage::Tainting {
                    return Vec::new();
                }
                if ok {
                    d.stage = Stage::Tainted(cx.now.after(cfg.delete_delay_after_taint));
                    return Vec::new();
                }
                let d = self.deletions.remove(&req.name).expect("looked up above");
                // The taint may have landed with its answer lost: take it
                // off again rather than leave the node unusable.
                if !matches!(resp, Some(r) if (400..500).contains(&r.code) && r.code != 409) {
                    cx.send(taint_patch(&req.name, d.taints_before, false));
                }
                let node = cx.cache.get(Kind::Node, "", &req.name).cloned();
                if let Some(n) = node {
                    let why = resp
                        .map(|r| r.message.clone())
                        .unwrap_or_else(|| "no answer".into());
                    cx.event(
                        &n,
                        "Warning",
                        "ScaleDownFailed",
                        format!("failed to mark the node as toBeDeleted/unschedulable: {why}"),
                    );
                }
                vec![Finished {
                    node: req.name.clone(),
                    ok: false,
                    immediate: true,
                }]
            }
            (Verb::Evict, Kind::Pod) => {
                for d in self.deletions.values_mut() {
                    let Some(e) = d.evictions.iter_mut().find(|e| {
                        e.in_flight
                            && e.pod.meta.name == req.name
                            && e.pod.meta.namespace == req.namespace
                    }) else {
                        continue;
                    };
                    e.in_flight = false;
                    // Evicted, or gone already.
                    e.done = ok || code == 404 || !e.wait;
                    e.next_try = cx.now.after(EVICTION_RETRY);
                    if e.done && e.wait {
                        cx.event(
                            &e.pod,
                            "Normal",
                            "ScaleDown",
                            "deleting pod for node scale down".into(),
                        );
                    }
                    break;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Steps every deletion (called every [`POLL`]).
    pub fn step(&mut self, cx: &mut SyncCtx<'_>, cfg: &AutoscalerConfig) -> Vec<Finished> {
        let (mut failed, mut deleted) = (Vec::new(), Vec::new());
        let now = cx.now;
        for (name, d) in self.deletions.iter_mut() {
            match d.stage {
                Stage::Tainted(at) if at <= now => {
                    if d.empty {
                        cx.cloud(super::cloud_api::CloudCall::DeleteNodes {
                            group: d.group,
                            nodes: vec![name.clone()],
                        });
                        d.stage = Stage::Deleting(now);
                    } else {
                        d.stage = Stage::Evicting;
                        d.started = now;
                        send_evictions(d, cx);
                    }
                }
                Stage::Evicting => {
                    if d.evictions.iter().all(|e| e.done) {
                        let longest = d.evictions.iter().map(|e| e.grace).max().unwrap_or(0);
                        d.stage = Stage::Waiting(
                            now.after(SimDuration::from_secs(longest as u64))
                                .after(EVICTION_HEADROOM),
                        );
                    } else if now.since(d.started) > cfg.max_pod_eviction_time {
                        failed.push((
                            name.clone(),
                            "failed to evict pods within the max pod eviction time".to_string(),
                        ));
                    } else {
                        send_evictions(d, cx);
                    }
                }
                Stage::Waiting(deadline) => {
                    if all_gone(d, name, cx.cache) {
                        cx.cloud(super::cloud_api::CloudCall::DeleteNodes {
                            group: d.group,
                            nodes: vec![name.clone()],
                        });
                        d.stage = Stage::Deleting(now);
                    } else if now >= deadline {
                        failed.push((name.clone(), "pods remaining after timeout".to_string()));
                    }
                }
                // The cloud's answer was lost (a partition): after
                // `MaxCloudProviderNodeDeletionTime` the Node's absence
                // says the machine went; its presence, that it did not.
                Stage::Deleting(at) if now.since(at) >= CLOUD_DELETION_TIME => {
                    match cx.cache.get(Kind::Node, "", name) {
                        None => deleted.push(name.clone()),
                        Some(_) => failed.push((
                            name.clone(),
                            "the cloud did not delete the node".to_string(),
                        )),
                    }
                }
                _ => {}
            }
        }
        let mut out: Vec<Finished> = deleted
            .into_iter()
            .map(|n| {
                self.deletions.remove(&n);
                Finished {
                    node: n,
                    ok: true,
                    immediate: false,
                }
            })
            .collect();
        out.extend(
            failed
                .into_iter()
                .map(|(n, why)| self.fail(&n, &format!("Failed to drain node {n}: {why}"), cx)),
        );
        out
    }

    /// The cloud's answer to a DeleteNodes.
    pub fn on_deleted(
        &mut self,
        nodes: &[String],
        result: &Result<(), String>,
        cx: &mut SyncCtx<'_>,
    ) -> Vec<Finished> {
        let mut out = Vec::new();
        for n in nodes {
            if self
                .deletions
                .get(n)
                .is_none_or(|d| !matches!(d.stage, Stage::Deleting(_)))
            {
                continue;
            }
            match result {
                Ok(()) => {
                    self.deletions.remove(n);
                    if let Some(obj) = cx.cache.get(Kind::Node, "", n).cloned() {
                        cx.event(
                            &obj,
                            "Normal",
                            "ScaleDown",
                            "nodes removed by cluster autoscaler".into(),
                        );
                    }
                    out.push(Finished {
                        node: n.clone(),
                        ok: true,
                        immediate: false,
                    });
                }
                Err(why) => out.push(self.fail(n, why, cx)),
            }
        }
        out
    }

    /// Gives up on `node`: untaint, uncordon, record why.
    fn fail(&mut self, node: &str, why: &str, cx: &mut SyncCtx<'_>) -> Finished {
        let d = self.deletions.remove(node).expect("a deletion in progress");
        cx.send(taint_patch(node, d.taints_before, false));
        if let Some(obj) = cx.cache.get(Kind::Node, "", node).cloned() {
            let what = if d.empty {
                "failed to delete empty node"
            } else {
                "failed to drain and delete node"
            };
            cx.event(&obj, "Warning", "ScaleDownFailed", format!("{what}: {why}"));
        }
        Finished {
            node: node.to_string(),
            ok: false,
            immediate: false,
        }
    }
}

fn send_evictions(d: &mut Deletion, cx: &mut SyncCtx<'_>) {
    let now = cx.now;
    for e in d
        .evictions
        .iter_mut()
        .filter(|e| !e.done && !e.in_flight && e.next_try <= now)
    {
        let mut req = ApiRequest::new(
            Verb::Evict,
            Kind::Pod,
            &e.pod.meta.namespace,
            &e.pod.meta.name,
        );
        req.grace_seconds = Some(e.grace);
        e.in_flight = true;
        cx.send(req);
    }
}

/// Whether every waited-for pod is gone from the node: deleted, or bound
/// to another node (a StatefulSet's pod comes back under its own name).
fn all_gone(d: &Deletion, node: &str, cache: &Cache) -> bool {
    d.evictions.iter().filter(|e| e.wait).all(|e| {
        cache
            .get(Kind::Pod, &e.pod.meta.namespace, &e.pod.meta.name)
            .and_then(|p| p.as_pod())
            .is_none_or(|b| b.node_name.as_deref() != Some(node))
    })
}
