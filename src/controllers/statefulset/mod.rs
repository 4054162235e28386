//! The StatefulSet controller (`pkg/controller/statefulset`): pods with
//! stable names `<set>-<ordinal>`, each with its own PersistentVolumeClaims
//! made from `volumeClaimTemplates` that outlive the pod. With
//! `OrderedReady` management it creates pods one at a time in ordinal order,
//! each waiting for the one before to be running and ready, and removes
//! them in reverse; with `Parallel` it does all at once. A `RollingUpdate`
//! replaces pods from the highest ordinal down to `partition`, one at a
//! time, each after the rest are healthy. Templates are recorded as
//! ControllerRevisions, and each pod carries the revision it was made from.

pub mod identity;
pub mod retention;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::expectations::Expectations;
use super::history::{self, REVISION_LABEL};
use super::workload::{
    body_path, body_str, claim_pods, controller_ref, json_object, key_of, min_ready_seconds,
    pod_available, replicas, selector, split_key, template_json, update_status, Template,
};
use super::workload::{controller_key, controller_of};
use super::workqueue::WorkQueue;
use crate::api::object::Meta;
use crate::api::pod::PodPhase;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::{SimDuration, SimTime};
use identity::{claim_name, ordinal, pod_name, POD_INDEX_LABEL, POD_NAME_LABEL};

#[derive(Default)]
pub struct StatefulSetController {
    expectations: Expectations,
    /// Parsed templates by revision name.
    templates: BTreeMap<String, Arc<Template>>,
}

fn running_and_ready(p: &Object) -> bool {
    p.as_pod()
        .is_some_and(|b| b.status.phase == PodPhase::Running && b.status.is_ready())
}

fn running_and_available(p: &Object, min_ready: i64, now: SimTime) -> bool {
    p.as_pod()
        .is_some_and(|b| b.status.phase == PodPhase::Running && pod_available(b, min_ready, now))
}

fn terminating(p: &Object) -> bool {
    p.meta.deletion.is_some()
}

fn finished(p: &Object) -> bool {
    p.as_pod().is_some_and(|b| b.is_terminal())
}

fn revision_of(p: &Object) -> &str {
    p.meta
        .labels
        .get(REVISION_LABEL)
        .map(String::as_str)
        .unwrap_or("")
}

/// What one pass decided to do.
enum Step {
    /// Nothing blocks: go on to the next phase.
    Continue,
    /// A monotonic set waits for this pod (or acted and waits for the result).
    Wait,
}

impl StatefulSetController {
    /// The parsed template of revision `name` in `ns`.
    fn template(&mut self, ns: &str, name: &str, json: &Json) -> Result<Arc<Template>, String> {
        let key = format!("{ns}/{name}");
        if let Some(t) = self.templates.get(&key) {
            return Ok(t.clone());
        }
        let t = Arc::new(Template::from_json(json)?);
        self.templates.insert(key, t.clone());
        Ok(t)
    }

    /// `newVersionedStatefulSetPod`: the pod for `ord` from `template`.
    fn new_pod(set: &Object, template: &Template, revision: &str, ord: i64) -> Object {
        let mut pod = template.pod(set, "");
        pod.meta.name = pod_name(&set.meta.name, ord);
        let mut labels = (*pod.meta.labels).clone();
        labels.insert(POD_NAME_LABEL.into(), pod.meta.name.clone());
        labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
        labels.insert(REVISION_LABEL.into(), revision.to_string());
        pod.meta.labels = Arc::new(labels);
        pod
    }

    /// Creates the claims pod `ord` lacks (`createPersistentVolumeClaims`).
    fn create_claims(set: &Arc<Object>, ord: i64, cx: &mut SyncCtx<'_>) {
        let Some(Json::Array(claims)) = body_path(set, &["spec", "volumeClaimTemplates"]) else {
            return;
        };
        let ns = &set.meta.namespace;
        let delete_with_set = body_str(
            set,
            &[
                "spec",
                "persistentVolumeClaimRetentionPolicy",
                "whenDeleted",
            ],
            "Retain",
        ) == "Delete";
        let match_labels: BTreeMap<String, String> =
            body_path(set, &["spec", "selector", "matchLabels"])
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or_default();
        for c in claims {
            let Some(tname) = c.pointer("/metadata/name").and_then(Json::as_str) else {
                continue;
            };
            let name = claim_name(tname, &set.meta.name, ord);
            if cx
                .cache
                .get(Kind::PersistentVolumeClaim, ns, &name)
                .is_some()
            {
                continue;
            }
            let mut labels: BTreeMap<String, String> = c
                .pointer("/metadata/labels")
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or_default();
            labels.extend(match_labels.clone());
            let owners = if delete_with_set {
                vec![retention::plain_ref(set)]
            } else {
                Vec::new()
            };
            let claim = json_object(
                Kind::PersistentVolumeClaim,
                Meta {
                    name,
                    namespace: ns.clone(),
                    labels: Arc::new(labels),
                    owner_references: owners,
                    ..Default::default()
                },
                json!({ "spec": c.get("spec").cloned().unwrap_or(json!({})) }),
            );
            let mut req = ApiRequest::new(Verb::Create, Kind::PersistentVolumeClaim, ns, "");
            req.body = Some(Arc::new(claim));
            cx.send(req);
        }
    }

    fn delete_pod(&mut self, key: &str, set: &Object, pod: &Object, cx: &mut SyncCtx<'_>) {
        self.expectations
            .expect_deletions(key, BTreeSet::from([key_of(pod)]), cx.now);
        cx.send(ApiRequest::new(
            Verb::Delete,
            Kind::Pod,
            &set.meta.namespace,
            &pod.meta.name,
        ));
    }
}

impl Controller for StatefulSetController {
    fn name(&self) -> &'static str {
        "statefulset-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        match ev.kind {
            Kind::StatefulSet => {
                if ev.new.is_none() {
                    self.expectations.delete(&key_of(ev.object()));
                }
                queue.add(&key_of(ev.object()));
            }
            Kind::Pod => {
                let pod = ev.object();
                let owner = controller_of(cache, pod, Kind::StatefulSet).or_else(|| {
                    ev.old
                        .as_deref()
                        .and_then(|o| controller_of(cache, o, Kind::StatefulSet))
                });
                let Some(set) = owner else {
                    if controller_ref(pod).is_none() && ev.new.is_some() {
                        for s in cache.list(Kind::StatefulSet, &pod.meta.namespace) {
                            if selector(s)
                                .is_some_and(|sel| !sel.is_empty() && sel.matches(&pod.meta.labels))
                            {
                                queue.add(&key_of(s));
                            }
                        }
                    }
                    return;
                };
                let k = key_of(set);
                self.expectations.observe_pod(&k, ev);
                queue.add(&k);
                let min_ready = min_ready_seconds(set);
                let became_ready = ev.old.as_ref().is_none_or(|o| !running_and_ready(o))
                    && ev.new.as_ref().is_some_and(|n| running_and_ready(n));
                if became_ready && min_ready > 0 {
                    queue.add_after(&k, SimDuration::from_secs(min_ready as u64 + 1), now);
                }
            }
            Kind::ControllerRevision | Kind::PersistentVolumeClaim => {
                if let Some(k) = controller_key(ev.object(), Kind::StatefulSet) {
                    queue.add(&k);
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(set) = cx.cache.get(Kind::StatefulSet, ns, name).cloned() else {
            self.expectations.delete(key);
            return;
        };
        if set.meta.deletion.is_some() {
            return;
        }
        let Some(sel) = selector(&set) else {
            return;
        };
        let Some(update_json) = template_json(&set).cloned() else {
            return;
        };

        // Revisions: the set's template is the update revision; the current
        // one is what status last said, if it still exists.
        let revisions = history::owned(cx.cache, &set);
        let collisions = history::collision_count(&set);
        let update_rev = format!("{}-{}", name, history::hash(&update_json, collisions));
        history::ensure(cx, &set, &revisions, &update_json, &update_rev);
        let status_current = body_str(&set, &["status", "currentRevision"], "").to_string();
        let current = revisions
            .iter()
            .find(|r| r.meta.name == status_current && status_current != update_rev)
            .and_then(|r| history::template(r).map(|t| (r.meta.name.clone(), t.clone())));
        let update_t = match self.template(ns, &update_rev, &update_json) {
            Ok(t) => t,
            Err(e) => {
                cx.event(
                    &set,
                    "Warning",
                    "FailedCreate",
                    format!("create Pod failed error: {e}"),
                );
                return;
            }
        };
        let (current_rev, current_t) = match current {
            Some((n, j)) => match self.template(ns, &n, &j) {
                Ok(t) => (n, t),
                Err(_) => (update_rev.clone(), update_t.clone()),
            },
            None => (update_rev.clone(), update_t.clone()),
        };

        // Pods by ordinal: in range, or condemned.
        let pods = claim_pods(cx, &set, &sel, |_| true);
        let want = replicas(&set).max(0);
        let start = body_path(&set, &["spec", "ordinals", "start"])
            .and_then(Json::as_i64)
            .unwrap_or(0);
        let mut slots: Vec<Option<&Arc<Object>>> = vec![None; want as usize];
        let mut condemned: Vec<(i64, &Arc<Object>)> = Vec::new();
        for p in &pods {
            let Some(o) = ordinal(name, &p.meta.name) else {
                continue;
            };
            if o >= start && o < start + want {
                slots[(o - start) as usize] = Some(p);
            } else {
                condemned.push((o, p));
            }
        }
        condemned.sort_by_key(|(o, _)| *o);
        let min_ready = min_ready_seconds(&set);
        let now = cx.now;
        // `isHealthy`: a terminating pod is not, however ready it still is,
        // so a Parallel set's rolling update waits for it like any other.
        let healthy = |p: &Object| {
            !terminating(p) && running_and_ready(p) && running_and_available(p, min_ready, now)
        };
        let monotonic =
            body_str(&set, &["spec", "podManagementPolicy"], "OrderedReady") != "Parallel";

        // Status from the pods as they are.
        let (mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0);
        for p in &pods {
            if terminating(p) || finished(p) {
                continue;
            }
            if running_and_ready(p) {
                ready += 1;
                if running_and_available(p, min_ready, now) {
                    available += 1;
                }
            }
            if revision_of(p) == current_rev {
                cur += 1;
            }
            if revision_of(p) == update_rev {
                upd += 1;
            }
        }
        let count = pods
            .iter()
            .filter(|p| !terminating(p) && !finished(p))
            .count() as i64;

        if self.expectations.satisfied(key, now) {
            let in_range = slots.iter().flatten().map(|p| (*p, false));
            let owned: Vec<(&Arc<Object>, bool)> = in_range
                .chain(condemned.iter().map(|(_, p)| (*p, true)))
                .collect();
            retention::fix_claims(&set, &owned, cx);
            let mut step = Step::Continue;
            // Replicas in ordinal order: replace finished pods, create
            // missing ones, and (monotonic) wait on any not yet healthy.
            for (i, slot) in slots.iter().enumerate() {
                let ord = start + i as i64;
                match *slot {
                    Some(p) if finished(p) && !terminating(p) => {
                        self.delete_pod(key, &set, p, cx);
                        if monotonic {
                            step = Step::Wait;
                            break;
                        }
                    }
                    None => {
                        let (rev, t) = if current_rev != update_rev
                            && (i as i64)
                                < body_path(
                                    &set,
                                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                                )
                                .and_then(Json::as_i64)
                                .unwrap_or(0)
                        {
                            (&current_rev, &current_t)
                        } else {
                            (&update_rev, &update_t)
                        };
                        Self::create_claims(&set, ord, cx);
                        let pod = Self::new_pod(&set, t, rev, ord);
                        self.expectations.expect_creations(key, 1, now);
                        let mut req = ApiRequest::new(Verb::Create, Kind::Pod, ns, "");
                        req.body = Some(Arc::new(pod));
                        cx.send(req);
                        if monotonic {
                            step = Step::Wait;
                            break;
                        }
                    }
                    Some(p) if monotonic && (terminating(p) || !healthy(p)) => {
                        step = Step::Wait;
                        if running_and_ready(p) && !terminating(p) {
                            cx.requeue_after(SimDuration::from_secs(min_ready.max(1) as u64));
                        }
                        break;
                    }
                    Some(_) => {}
                }
            }
            // Condemned pods, highest ordinal first.
            if matches!(step, Step::Continue) {
                let first_unhealthy = slots
                    .iter()
                    .flatten()
                    .chain(condemned.iter().map(|(_, p)| p))
                    .find(|p| !healthy(p))
                    .map(|p| p.meta.name.clone());
                for (_, p) in condemned.iter().rev() {
                    if terminating(p) {
                        if monotonic {
                            step = Step::Wait;
                            break;
                        }
                        continue;
                    }
                    if monotonic
                        && !healthy(p)
                        && first_unhealthy.as_deref() != Some(p.meta.name.as_str())
                    {
                        step = Step::Wait;
                        break;
                    }
                    self.delete_pod(key, &set, p, cx);
                    if monotonic {
                        step = Step::Wait;
                        break;
                    }
                }
            }
            // Rolling update, highest ordinal first, down to the partition.
            let rolling = body_str(&set, &["spec", "updateStrategy", "type"], "RollingUpdate")
                == "RollingUpdate";
            if matches!(step, Step::Continue) && rolling {
                let partition = body_path(
                    &set,
                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                )
                .and_then(Json::as_i64)
                .unwrap_or(0)
                .max(0) as usize;
                for i in (partition..want as usize).rev() {
                    // A pod missing or created in this pass is not healthy
                    // yet: wait for it, as upstream's replicas[] holds it.
                    let Some(p) = slots[i] else { break };
                    if revision_of(p) != update_rev && !terminating(p) {
                        self.delete_pod(key, &set, p, cx);
                        break;
                    }
                    if !healthy(p) {
                        break;
                    }
                }
            }
        }

        // `completeRollingUpdate`: every pod updated and ready.
        let rolling =
            body_str(&set, &["spec", "updateStrategy", "type"], "RollingUpdate") == "RollingUpdate";
        let (status_cur_rev, status_cur) =
            if rolling && upd == count && ready == count && count == want {
                (update_rev.clone(), upd)
            } else {
                (current_rev.clone(), cur)
            };
        let status = json!({
            "observedGeneration": set.meta.generation,
            "replicas": count,
            "readyReplicas": ready,
            "availableReplicas": available,
            "currentReplicas": status_cur,
            "updatedReplicas": upd,
            "currentRevision": status_cur_rev,
            "updateRevision": update_rev,
            "collisionCount": collisions,
        });
        update_status(cx, &set, status);
    }

    fn on_response(
        &mut self,
        key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let ok = resp.is_some_and(|r| r.ok());
        let (ns, name) = split_key(key);
        let set = cx.cache.get(Kind::StatefulSet, ns, name).cloned();
        let err = || {
            resp.map(|r| r.message.clone())
                .unwrap_or_else(|| "the request timed out".into())
        };
        match (req.verb, req.kind) {
            (Verb::Create, Kind::Pod) => {
                let pod = req
                    .body
                    .as_ref()
                    .map(|b| b.meta.name.clone())
                    .unwrap_or_default();
                if let Some(set) = &set {
                    if ok {
                        cx.event(
                            set,
                            "Normal",
                            "SuccessfulCreate",
                            format!("create Pod {pod} in StatefulSet {name} successful"),
                        );
                    } else {
                        cx.event(
                            set,
                            "Warning",
                            "FailedCreate",
                            format!(
                                "create Pod {pod} in StatefulSet {name} failed error: {}",
                                err()
                            ),
                        );
                    }
                }
                if !ok {
                    self.expectations.lower_creations(key, 1);
                    cx.failed = true;
                }
            }
            (Verb::Create, Kind::PersistentVolumeClaim) => {
                let claim = req
                    .body
                    .as_ref()
                    .map(|b| b.meta.name.clone())
                    .unwrap_or_default();
                if let Some(set) = &set {
                    if ok {
                        cx.event(
                            set,
                            "Normal",
                            "SuccessfulCreate",
                            format!("create Claim {claim} in StatefulSet {name} success"),
                        );
                    } else if resp.is_none_or(|r| r.code != 409) {
                        cx.event(
                            set,
                            "Warning",
                            "FailedCreate",
                            format!(
                                "create Claim {claim} for StatefulSet {name} failed error: {}",
                                err()
                            ),
                        );
                        cx.failed = true;
                    }
                }
            }
            (Verb::Delete, Kind::Pod) => {
                if let Some(set) = &set {
                    if ok {
                        cx.event(
                            set,
                            "Normal",
                            "SuccessfulDelete",
                            format!("delete Pod {} in StatefulSet {name} successful", req.name),
                        );
                    } else if resp.is_none_or(|r| r.code != 404) {
                        cx.event(
                            set,
                            "Warning",
                            "FailedDelete",
                            format!(
                                "delete Pod {} in StatefulSet {name} failed error: {}",
                                req.name,
                                err()
                            ),
                        );
                    }
                }
                if !ok {
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{}", req.name));
                    cx.failed |= resp.is_none_or(|r| r.code != 404);
                }
            }
            (Verb::Create, Kind::ControllerRevision) => {
                // Already there (a stale cache) is as good as made.
                if !ok && resp.is_none_or(|r| r.code != 409) {
                    cx.failed = true;
                }
            }
            _ => {
                if !ok {
                    cx.failed = true;
                }
            }
        }
    }

    fn reset(&mut self) {
        self.expectations.clear();
        self.templates.clear();
    }
}
