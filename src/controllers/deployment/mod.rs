//! The Deployment controller (`pkg/controller/deployment`): one ReplicaSet
//! per pod template, named by its hash; RollingUpdate grows the new one and
//! shrinks the old ones within maxSurge/maxUnavailable, Recreate empties the
//! old ones first; a resize mid-rollout is shared out proportionally; status
//! carries the Available and Progressing conditions, the latter timing out
//! after progressDeadlineSeconds without progress.
//!
//! Upstream's sync is sequential calls; here one sync computes the same
//! steps against local copies of the ReplicaSets and sends the resulting
//! writes together (updates carry the cached resourceVersion, so a stale
//! cache still ends in a 409 and a rate-limited retry, as upstream).

pub mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workload::{
    controller_ref, edit_json, json_body, key_of, owner_ref_to, selector, spec_i64, split_key,
    status_i64,
};
use super::workqueue::WorkQueue;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::{SimDuration, SimTime};
use util::*;

pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Deployment annotations not copied onto its ReplicaSets (and kept by
/// `kubectl rollout undo`).
pub const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// One owned ReplicaSet during a sync.
#[derive(Clone)]
struct Set {
    obj: Arc<Object>,
    state: RsState,
    template: Json,
    annotations: BTreeMap<String, String>,
    min_ready: i64,
    /// To be created by this sync.
    create: bool,
}

impl Set {
    fn of(o: &Arc<Object>) -> Set {
        let ann = &o.meta.annotations;
        Set {
            obj: o.clone(),
            state: RsState {
                name: o.meta.name.clone(),
                created: o.meta.creation,
                replicas: spec_i64(o, "replicas").unwrap_or(1),
                actual: status_i64(o, "replicas"),
                ready: status_i64(o, "readyReplicas"),
                available: status_i64(o, "availableReplicas"),
                max_replicas: ann.get(MAX_REPLICAS).and_then(|v| v.parse().ok()),
                desired: ann.get(DESIRED_REPLICAS).and_then(|v| v.parse().ok()),
            },
            template: json_body(o)
                .and_then(|m| m.get("spec")?.get("template").cloned())
                .unwrap_or(Json::Null),
            annotations: (*o.meta.annotations).clone(),
            min_ready: spec_i64(o, "minReadySeconds").unwrap_or(0),
            create: false,
        }
    }

    fn revision(&self) -> i64 {
        self.annotations
            .get(REVISION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// `EqualIgnoreHash`: templates equal once the hash label is dropped.
fn equal_ignore_hash(a: &Json, b: &Json) -> bool {
    let strip = |t: &Json| {
        let mut t = t.clone();
        if let Some(l) = t
            .get_mut("metadata")
            .and_then(|m| m.get_mut("labels"))
            .and_then(Json::as_object_mut)
        {
            l.remove(TEMPLATE_HASH_LABEL);
            if l.is_empty() {
                t["metadata"].as_object_mut().map(|m| m.remove("labels"));
            }
        }
        t
    };
    strip(a) == strip(b)
}

fn condition<'a>(status: &'a Map<String, Json>, type_: &str) -> Option<&'a Json> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: SimTime) -> Json {
    json!({"type": type_, "status": status, "lastUpdateTime": now.rfc3339(),
           "lastTransitionTime": now.rfc3339(), "reason": reason, "message": message})
}

/// `SetDeploymentCondition`: same status and reason is no change; same
/// status keeps the transition time.
fn set_condition(status: &mut Map<String, Json>, mut c: Json) {
    let type_ = c["type"].clone();
    if let Some(cur) = condition(status, type_.as_str().unwrap_or("")) {
        if cur["status"] == c["status"] && cur["reason"] == c["reason"] {
            return;
        }
        if cur["status"] == c["status"] {
            c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, type_.as_str().unwrap_or(""));
    status
        .entry("conditions")
        .or_insert_with(|| Json::Array(Vec::new()))
        .as_array_mut()
        .expect("conditions is a list")
        .push(c);
}

fn remove_condition(status: &mut Map<String, Json>, type_: &str) {
    if let Some(Json::Array(cs)) = status.get_mut("conditions") {
        cs.retain(|c| c["type"] != type_);
    }
}

fn counts(status: &Map<String, Json>) -> Counts {
    let g = |k: &str| status.get(k).and_then(Json::as_i64).unwrap_or(0);
    Counts {
        replicas: g("replicas"),
        updated: g("updatedReplicas"),
        ready: g("readyReplicas"),
        available: g("availableReplicas"),
        observed_generation: g("observedGeneration"),
    }
}

/// Everything one sync of one Deployment works on.
struct Work {
    d: Arc<Object>,
    spec: DeploySpec,
    paused: bool,
    min_ready: i64,
    history_limit: Option<i64>,
    progress_deadline: Option<i64>,
    template: Json,
    collision_count: Option<i64>,
    sets: Vec<Set>,
    new: Option<usize>,
    annotations: BTreeMap<String, String>,
    status: Map<String, Json>,
    delete_sets: Vec<String>,
}

impl Work {
    fn read(d: &Arc<Object>, cache: &Cache) -> Option<Work> {
        let body = json_body(d)?;
        let spec = body.get("spec")?;
        let strategy = match spec
            .get("strategy")
            .and_then(|s| s.get("type"))
            .and_then(Json::as_str)
        {
            Some("Recreate") => Strategy::Recreate,
            _ => {
                let ru = spec.get("strategy").and_then(|s| s.get("rollingUpdate"));
                Strategy::RollingUpdate {
                    max_surge: IntOrPercent::from_json(ru.and_then(|r| r.get("maxSurge")), "25%"),
                    max_unavailable: IntOrPercent::from_json(
                        ru.and_then(|r| r.get("maxUnavailable")),
                        "25%",
                    ),
                }
            }
        };
        let status = body
            .get("status")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let mut sets: Vec<Set> = cache
            .list(Kind::ReplicaSet, &d.meta.namespace)
            .filter(|rs| controller_ref(rs).is_some_and(|r| r.uid == d.meta.uid))
            .map(Set::of)
            .collect();
        sets.sort_by(|a, b| {
            (a.state.created, &a.state.name).cmp(&(b.state.created, &b.state.name))
        });
        let template = spec.get("template").cloned().unwrap_or(Json::Null);
        let new = sets
            .iter()
            .position(|s| equal_ignore_hash(&s.template, &template));
        Some(Work {
            spec: DeploySpec {
                replicas: spec.get("replicas").and_then(Json::as_i64).unwrap_or(1),
                strategy,
                status_replicas: status.get("replicas").and_then(Json::as_i64).unwrap_or(0),
            },
            paused: spec.get("paused").and_then(Json::as_bool).unwrap_or(false),
            min_ready: spec
                .get("minReadySeconds")
                .and_then(Json::as_i64)
                .unwrap_or(0),
            history_limit: Some(
                spec.get("revisionHistoryLimit")
                    .and_then(Json::as_i64)
                    .unwrap_or(10),
            ),
            progress_deadline: Some(
                spec.get("progressDeadlineSeconds")
                    .and_then(Json::as_i64)
                    .unwrap_or(600),
            )
            .filter(|s| *s != i32::MAX as i64),
            template,
            collision_count: status.get("collisionCount").and_then(Json::as_i64),
            sets,
            new,
            annotations: (*d.meta.annotations).clone(),
            status,
            delete_sets: Vec::new(),
            d: d.clone(),
        })
    }

    fn name(&self) -> &str {
        &self.d.meta.name
    }

    fn states(&self) -> Vec<RsState> {
        self.sets.iter().map(|s| s.state.clone()).collect()
    }

    /// Old ReplicaSets (indices), oldest first.
    fn old(&self) -> Vec<usize> {
        (0..self.sets.len())
            .filter(|i| Some(*i) != self.new)
            .collect()
    }

    fn set_replica_annotations(&mut self, i: usize) {
        let desired = self.spec.replicas;
        let max = desired + max_surge(&self.spec);
        let s = &mut self.sets[i];
        s.annotations
            .insert(DESIRED_REPLICAS.into(), desired.to_string());
        s.annotations.insert(MAX_REPLICAS.into(), max.to_string());
        s.state.desired = Some(desired);
        s.state.max_replicas = Some(max);
    }

    /// `scaleReplicaSetAndRecordEvent`: only when the size changes.
    fn scale(&mut self, i: usize, to: i64) -> bool {
        if self.sets[i].state.replicas == to {
            return false;
        }
        self.sets[i].state.replicas = to;
        self.set_replica_annotations(i);
        true
    }

    /// `getAllReplicaSetsAndSyncRevision` / `getNewReplicaSet`.
    fn sync_revision(&mut self, create: bool, now: SimTime) {
        let max_old = self
            .old()
            .iter()
            .map(|i| self.sets[*i].revision())
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let copied: Vec<(String, String)> = self
            .annotations
            .iter()
            .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(n) = self.new {
            let s = &mut self.sets[n];
            for (k, v) in &copied {
                s.annotations.insert(k.clone(), v.clone());
            }
            let old_rev = s.annotations.get(REVISION).cloned();
            let old_int = old_rev
                .as_deref()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            if old_int < new_revision {
                s.annotations
                    .insert(REVISION.into(), new_revision.to_string());
                if let Some(prev) = old_rev.filter(|v| !v.is_empty()) {
                    // Rolling back to this set: remember the revisions it had.
                    let hist = s
                        .annotations
                        .get(REVISION_HISTORY)
                        .cloned()
                        .unwrap_or_default();
                    let joined = if hist.is_empty() {
                        prev
                    } else {
                        format!("{hist},{prev}")
                    };
                    s.annotations.insert(REVISION_HISTORY.into(), joined);
                }
            }
            s.min_ready = self.min_ready;
            let rev = s.annotations.get(REVISION).cloned().unwrap_or_default();
            self.set_deployment_revision(&rev);
            if self.progress_deadline.is_some() && condition(&self.status, "Progressing").is_none()
            {
                let name = self.sets[n].state.name.clone();
                let c = new_condition(
                    "Progressing",
                    "True",
                    FOUND_NEW_RS,
                    format!("Found new replica set {name:?}"),
                    now,
                );
                set_condition(&mut self.status, c);
            }
            return;
        }
        if !create {
            return;
        }
        let hash = pod_template_hash(&self.template, self.collision_count);
        let mut template = self.template.clone();
        template["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(hash);
        let name = format!("{}-{}", self.name(), hash);
        let mut annotations: BTreeMap<String, String> = copied.into_iter().collect();
        annotations.insert(REVISION.into(), new_revision.to_string());
        let obj = new_replica_set(&self.d, &name, &hash, &template, self.min_ready, now);
        let mut set = Set::of(&Arc::new(obj));
        set.annotations = annotations;
        set.create = true;
        set.state.replicas = 0;
        set.template = template;
        self.sets.push(set);
        let n = self.sets.len() - 1;
        self.new = Some(n);
        let all = self.states();
        let replicas = new_rs_new_replicas(&self.spec, &all, &self.sets[n].state);
        self.sets[n].state.replicas = replicas;
        self.set_replica_annotations(n);
        self.set_deployment_revision(&new_revision.to_string());
        if self.progress_deadline.is_some() {
            let c = new_condition(
                "Progressing",
                "True",
                NEW_RS_CREATED,
                format!("Created new replica set {name:?}"),
                now,
            );
            set_condition(&mut self.status, c);
        }
    }

    fn set_deployment_revision(&mut self, rev: &str) {
        if !rev.is_empty() && self.annotations.get(REVISION).map(String::as_str) != Some(rev) {
            self.annotations.insert(REVISION.into(), rev.to_string());
        }
    }

    /// `dc.scale` through [`proportional_scale`].
    fn scale_proportionally(&mut self) {
        let states = self.states();
        let active_new = self.new;
        if let Some(sizes) = proportional_scale(&self.spec, active_new, &states) {
            for (i, n) in sizes.into_iter().enumerate() {
                if self.sets[i].state.replicas != n {
                    self.scale(i, n);
                } else if self.sets[i].state.replicas > 0 {
                    // Annotations follow the Deployment's size.
                    let desired = self.spec.replicas;
                    if self.sets[i].state.desired != Some(desired) {
                        self.set_replica_annotations(i);
                    }
                }
            }
        }
    }

    fn is_scaling_event(&self) -> bool {
        self.sets
            .iter()
            .filter(|s| s.state.replicas > 0)
            .any(|s| s.state.desired != Some(self.spec.replicas))
    }

    /// `cleanupDeployment`: delete the oldest empty ReplicaSets beyond the
    /// revision history limit.
    fn cleanup(&mut self) {
        let Some(limit) = self.history_limit else {
            return;
        };
        let old: Vec<&Set> = self
            .old()
            .into_iter()
            .map(|i| &self.sets[i])
            .filter(|s| !s.create)
            .collect();
        let candidates: Vec<util::CleanupCandidate> = old
            .iter()
            .map(|s| util::CleanupCandidate {
                revision: s.revision(),
                created: s.state.created,
                replicas: s.state.replicas,
                actual: s.state.actual,
                stale: s.obj.meta.generation > status_i64(&s.obj, "observedGeneration"),
                deleting: s.obj.meta.deletion.is_some(),
            })
            .collect();
        for i in util::cleanup_deployment(&candidates, limit) {
            self.delete_sets.push(old[i].state.name.clone());
        }
    }

    /// `calculateStatus` and `syncRolloutStatus`; returns the requeue delay
    /// a stuck rollout needs.
    fn rollout_status(&mut self, now: SimTime, with_progress: bool) -> Option<SimDuration> {
        let old_counts = counts(&self.status);
        let old_progressing = condition(&self.status, "Progressing").cloned();
        let spec_total: i64 = self.sets.iter().map(|s| s.state.replicas).sum();
        let available: i64 = self.sets.iter().map(|s| s.state.available).sum();
        let mut st = self.status.clone();
        let new_counts = Counts {
            replicas: self.sets.iter().map(|s| s.state.actual).sum(),
            updated: self.new.map_or(0, |n| self.sets[n].state.actual),
            ready: self.sets.iter().map(|s| s.state.ready).sum(),
            available,
            observed_generation: self.d.meta.generation,
        };
        st.insert(
            "observedGeneration".into(),
            json!(new_counts.observed_generation),
        );
        st.insert("replicas".into(), json!(new_counts.replicas));
        st.insert("updatedReplicas".into(), json!(new_counts.updated));
        st.insert("readyReplicas".into(), json!(new_counts.ready));
        st.insert("availableReplicas".into(), json!(available));
        st.insert(
            "unavailableReplicas".into(),
            json!((spec_total - available).max(0)),
        );
        if available >= self.spec.replicas - max_unavailable(&self.spec) {
            set_condition(
                &mut st,
                new_condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.".into(),
                    now,
                ),
            );
        } else {
            set_condition(
                &mut st,
                new_condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.".into(),
                    now,
                ),
            );
        }
        if self.progress_deadline.is_none() {
            remove_condition(&mut st, "Progressing");
        }
        let current_reason = old_progressing
            .as_ref()
            .and_then(|c| c["reason"].as_str().map(str::to_string))
            .unwrap_or_default();
        let complete_already =
            new_counts.replicas == new_counts.updated && current_reason == NEW_RS_AVAILABLE;
        let rs_name = self.new.map(|n| self.sets[n].state.name.clone());
        let what = |verb: &str| match &rs_name {
            Some(n) => format!("ReplicaSet {n:?} {verb}"),
            None => format!("Deployment {:?} {verb}", self.name()),
        };
        let desired = self.spec.replicas;
        let generation = self.d.meta.generation;
        if with_progress && self.progress_deadline.is_some() && !complete_already {
            if deployment_complete(desired, generation, &new_counts) {
                set_condition(
                    &mut st,
                    new_condition(
                        "Progressing",
                        "True",
                        NEW_RS_AVAILABLE,
                        what("has successfully progressed."),
                        now,
                    ),
                );
            } else if deployment_progressing(&old_counts, &new_counts) {
                let mut c = new_condition(
                    "Progressing",
                    "True",
                    RS_UPDATED,
                    what("is progressing."),
                    now,
                );
                if let Some(cur) = &old_progressing {
                    if cur["status"] == "True" {
                        c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    remove_condition(&mut st, "Progressing");
                }
                set_condition(&mut st, c);
            } else {
                let (reason, last) = progressing_times(condition(&st, "Progressing"));
                if timed_out(self.progress_deadline, &reason, last.unwrap_or(now), now)
                    && last.is_some()
                {
                    set_condition(
                        &mut st,
                        new_condition(
                            "Progressing",
                            "False",
                            TIMED_OUT,
                            what("has timed out progressing."),
                            now,
                        ),
                    );
                }
            }
        }
        if st == self.status {
            // requeueStuckDeployment.
            let (reason, last) = progressing_times(old_progressing.as_ref());
            let deadline = self.progress_deadline?;
            let last = last?;
            if deployment_complete(desired, generation, &new_counts) || reason == TIMED_OUT {
                return None;
            }
            let due = last.after(SimDuration::from_secs(deadline.max(0) as u64));
            let after = due.since(now);
            return Some(if after < SimDuration::from_secs(1) {
                SimDuration::from_secs(1)
            } else {
                SimDuration(after.0 + 1_000_000_000)
            });
        }
        self.status = st;
        None
    }
}

fn progressing_times(c: Option<&Json>) -> (String, Option<SimTime>) {
    match c {
        None => (String::new(), None),
        Some(c) => (
            c["reason"].as_str().unwrap_or("").to_string(),
            c["lastUpdateTime"]
                .as_str()
                .and_then(SimTime::parse_rfc3339),
        ),
    }
}

/// The ReplicaSet a Deployment creates for its current template.
fn new_replica_set(
    d: &Object,
    name: &str,
    hash: &str,
    template: &Json,
    min_ready: i64,
    _now: SimTime,
) -> Object {
    let mut sel = json_body(d)
        .and_then(|m| m.get("spec")?.get("selector").cloned())
        .unwrap_or_else(|| json!({}));
    sel["matchLabels"][TEMPLATE_HASH_LABEL] = json!(hash);
    let labels: BTreeMap<String, String> = template["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut body = Map::new();
    body.insert(
        "spec".into(),
        json!({"replicas": 0, "minReadySeconds": min_ready, "selector": sel, "template": template}),
    );
    Object {
        kind: Kind::ReplicaSet,
        meta: crate::api::object::Meta {
            name: name.to_string(),
            namespace: d.meta.namespace.clone(),
            labels: Arc::new(labels),
            owner_references: vec![owner_ref_to(d)],
            ..Default::default()
        },
        body: crate::api::object::Body::Json(Arc::new(body)),
    }
}

#[derive(Default)]
pub struct DeploymentController {
    /// (deployment key, ReplicaSet, new size) → old size, for the event
    /// recorded once the update succeeds.
    scaling: BTreeMap<(String, String, i64), i64>,
}

fn deployment_of<'a>(cache: &'a Cache, rs: &Object) -> Option<&'a Arc<Object>> {
    let r = controller_ref(rs)?;
    if r.kind != "Deployment" {
        return None;
    }
    cache
        .get(Kind::Deployment, &rs.meta.namespace, &r.name)
        .filter(|d| d.meta.uid == r.uid)
}

impl DeploymentController {
    fn emit(&mut self, key: &str, w: &Work, cx: &mut SyncCtx<'_>) {
        let ns = &w.d.meta.namespace;
        for s in &w.sets {
            let replicas = s.state.replicas;
            if s.create {
                let obj = edit_json(&s.obj, |m| {
                    m["spec"]["replicas"] = json!(replicas);
                });
                let mut obj = obj;
                obj.meta.annotations = Arc::new(s.annotations.clone());
                let mut req = ApiRequest::new(Verb::Create, Kind::ReplicaSet, ns, "");
                req.body = Some(Arc::new(obj));
                self.scaling
                    .insert((key.to_string(), s.state.name.clone(), replicas), 0);
                cx.send(req);
                continue;
            }
            let orig = Set::of(&s.obj);
            let changed = orig.state.replicas != replicas
                || orig.annotations != s.annotations
                || orig.min_ready != s.min_ready;
            if !changed {
                continue;
            }
            let min_ready = s.min_ready;
            let mut obj = edit_json(&s.obj, |m| {
                m["spec"]["replicas"] = json!(replicas);
                m["spec"]["minReadySeconds"] = json!(min_ready);
            });
            obj.meta.annotations = Arc::new(s.annotations.clone());
            let mut req = ApiRequest::new(Verb::Update, Kind::ReplicaSet, ns, &s.state.name);
            req.resource_version = s.obj.meta.resource_version;
            req.body = Some(Arc::new(obj));
            if orig.state.replicas != replicas {
                self.scaling.insert(
                    (key.to_string(), s.state.name.clone(), replicas),
                    orig.state.replicas,
                );
            }
            cx.send(req);
        }
        for name in &w.delete_sets {
            cx.send(ApiRequest::new(Verb::Delete, Kind::ReplicaSet, ns, name));
        }
        let cur_status = json_body(&w.d)
            .and_then(|m| m.get("status"))
            .and_then(Json::as_object);
        let status_changed =
            cur_status != Some(&w.status) && !(cur_status.is_none() && w.status.is_empty());
        if status_changed || *w.d.meta.annotations != w.annotations {
            let status = Json::Object(w.status.clone());
            let mut obj = edit_json(&w.d, |m| {
                m.insert("status".into(), status);
            });
            obj.meta.annotations = Arc::new(w.annotations.clone());
            let mut req = ApiRequest::new(Verb::UpdateStatus, Kind::Deployment, ns, &w.d.meta.name);
            req.resource_version = w.d.meta.resource_version;
            req.body = Some(Arc::new(obj));
            cx.send(req);
        }
    }

    fn rollout_rolling(w: &mut Work, now: SimTime) -> Option<SimDuration> {
        w.sync_revision(true, now);
        let n = w.new.expect("created above");
        let all = w.states();
        if let Some(to) = reconcile_new(&w.spec, &all, &w.sets[n].state) {
            w.scale(n, to);
            return w.rollout_status(now, true);
        }
        let old: Vec<usize> = w
            .old()
            .into_iter()
            .filter(|i| w.sets[*i].state.replicas > 0)
            .collect();
        let mut old_states: Vec<RsState> = old.iter().map(|i| w.sets[*i].state.clone()).collect();
        let new_state = w.sets[n].state.clone();
        let down = reconcile_old(&w.spec, &all, &mut old_states, Some(&new_state));
        if down > 0 {
            for (i, s) in old.iter().zip(old_states) {
                w.scale(*i, s.replicas);
            }
            return w.rollout_status(now, true);
        }
        if deployment_complete(w.spec.replicas, w.d.meta.generation, &counts(&w.status)) {
            w.cleanup();
        }
        w.rollout_status(now, true)
    }

    fn rollout_recreate(w: &mut Work, cache: &Cache, now: SimTime) -> Option<SimDuration> {
        w.sync_revision(false, now);
        let mut scaled = false;
        for i in w.old() {
            if w.sets[i].state.replicas > 0 {
                scaled |= w.scale(i, 0);
            }
        }
        if scaled {
            return w.rollout_status(now, true);
        }
        // oldPodsRunning.
        let old_uids: BTreeSet<String> = w
            .old()
            .iter()
            .map(|i| w.sets[*i].obj.meta.uid.clone())
            .collect();
        let old_actual: i64 = w.old().iter().map(|i| w.sets[*i].state.actual).sum();
        let running = old_actual > 0
            || cache.list(Kind::Pod, &w.d.meta.namespace).any(|p| {
                controller_ref(p).is_some_and(|r| old_uids.contains(&r.uid))
                    && p.as_pod().is_some_and(|b| !b.is_terminal())
            });
        if running {
            return w.rollout_status(now, true);
        }
        if w.new.is_none() {
            w.sync_revision(true, now);
        }
        let n = w.new.expect("created above");
        if w.scale(n, w.spec.replicas) {
            return w.rollout_status(now, true);
        }
        if deployment_complete(w.spec.replicas, w.d.meta.generation, &counts(&w.status)) {
            w.cleanup();
        }
        w.rollout_status(now, true)
    }
}

impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        match ev.kind {
            Kind::Deployment => queue.add(&key_of(ev.object())),
            Kind::ReplicaSet => {
                let rs = ev.object();
                if let Some(old) = &ev.old {
                    if let (Some(new), true) = (&ev.new, controller_ref(old) != controller_ref(rs))
                    {
                        let _ = new;
                        if let Some(d) = deployment_of(cache, old) {
                            queue.add(&key_of(d));
                        }
                    }
                }
                match deployment_of(cache, rs) {
                    Some(d) => queue.add(&key_of(d)),
                    None if controller_ref(rs).is_none() && ev.new.is_some() => {
                        for d in cache.list(Kind::Deployment, &rs.meta.namespace) {
                            if selector(d)
                                .is_some_and(|s| !s.is_empty() && s.matches(&rs.meta.labels))
                            {
                                queue.add(&key_of(d));
                            }
                        }
                    }
                    None => {}
                }
            }
            Kind::Pod if ev.new.is_none() => {
                // Recreate waits for old pods to be gone.
                let pod = ev.object();
                let rs = controller_ref(pod)
                    .and_then(|r| cache.get(Kind::ReplicaSet, &pod.meta.namespace, &r.name));
                if let Some(d) = rs.and_then(|rs| deployment_of(cache, rs)) {
                    let recreate = json_body(d)
                        .and_then(|m| {
                            m.get("spec")?
                                .get("strategy")?
                                .get("type")?
                                .as_str()
                                .map(|s| s == "Recreate")
                        })
                        .unwrap_or(false);
                    if recreate {
                        queue.add(&key_of(d));
                    }
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(d) = cx.cache.get(Kind::Deployment, ns, name).cloned() else {
            return;
        };
        let Some(mut w) = Work::read(&d, cx.cache) else {
            return;
        };
        if selector(&d).is_none_or(|s| s.is_empty()) {
            cx.event(
                &d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            if d.meta.generation > counts(&w.status).observed_generation {
                w.status
                    .insert("observedGeneration".into(), json!(d.meta.generation));
                self.emit(key, &w, cx);
            }
            return;
        }
        let now = cx.now;
        if d.meta.deletion.is_some() {
            w.sync_revision(false, now);
            w.rollout_status(now, false);
            return self.emit(key, &w, cx);
        }
        // checkPausedConditions.
        if w.progress_deadline.is_some() {
            let reason = condition(&w.status, "Progressing")
                .and_then(|c| c["reason"].as_str())
                .unwrap_or("")
                .to_string();
            if reason != TIMED_OUT {
                if w.paused && reason != PAUSED {
                    set_condition(
                        &mut w.status,
                        new_condition(
                            "Progressing",
                            "Unknown",
                            PAUSED,
                            "Deployment is paused".into(),
                            now,
                        ),
                    );
                } else if !w.paused && reason == PAUSED {
                    set_condition(
                        &mut w.status,
                        new_condition(
                            "Progressing",
                            "Unknown",
                            RESUMED,
                            "Deployment is resumed".into(),
                            now,
                        ),
                    );
                }
            }
        }
        let requeue = if w.paused || w.is_scaling_event() {
            // sync: scale, clean up when paused, status without progress.
            w.sync_revision(false, now);
            w.scale_proportionally();
            if w.paused {
                w.cleanup();
            }
            w.rollout_status(now, false);
            None
        } else {
            match w.spec.strategy {
                Strategy::Recreate => Self::rollout_recreate(&mut w, cx.cache, now),
                Strategy::RollingUpdate { .. } => Self::rollout_rolling(&mut w, now),
            }
        };
        if let Some(after) = requeue {
            cx.requeue_after(after);
        }
        self.emit(key, &w, cx);
    }

    fn on_response(
        &mut self,
        key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let ok = resp.is_some_and(|r| r.ok());
        if req.kind == Kind::ReplicaSet && matches!(req.verb, Verb::Create | Verb::Update) {
            let body = req.body.as_ref();
            let name = body.map(|b| b.meta.name.clone()).unwrap_or_default();
            let to = body.and_then(|b| spec_i64(b, "replicas")).unwrap_or(0);
            let from = self.scaling.remove(&(key.to_string(), name.clone(), to));
            let (ns, dname) = split_key(key);
            if let (true, Some(from), Some(d)) =
                (ok, from, cx.cache.get(Kind::Deployment, ns, dname).cloned())
            {
                if from != to {
                    let dir = if from < to { "up" } else { "down" };
                    cx.event(
                        &d,
                        "Normal",
                        "ScalingReplicaSet",
                        format!("Scaled {dir} replica set {name} from {from} to {to}"),
                    );
                }
            }
            if !ok && req.verb == Verb::Create {
                if let (Some(r), Some(d)) =
                    (resp, cx.cache.get(Kind::Deployment, ns, dname).cloned())
                {
                    if r.code != 409 {
                        cx.event(
                            &d,
                            "Warning",
                            "FailedCreate",
                            format!("Failed to create new replica set {name:?}: {}", r.message),
                        );
                    }
                }
            }
        }
        let gone = req.verb == Verb::Delete && resp.is_some_and(|r| r.code == 404);
        if !(ok || gone) {
            cx.failed = true;
        }
    }

    fn reset(&mut self) {
        self.scaling.clear();
    }
}
