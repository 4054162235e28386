//! The ReplicaSet controller (`pkg/controller/replicaset`): keeps
//! `spec.replicas` active pods matching the selector, adopting orphans and
//! releasing pods that stopped matching; creates in slow-start batches
//! (1, 2, 4, …) at most 500 per sync; deletes the least useful pods first;
//! reports replicas, ready and available (after minReadySeconds) in status.

pub mod ranking;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::expectations::Expectations;
use super::workload::{
    claim_pods, controller_of, controller_ref, key_of, min_ready_seconds, pod_active,
    pod_available, replicas, selector, split_key, template_json, update_status, Template,
};
use super::workqueue::WorkQueue;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::{SimDuration, SimTime};
use ranking::{sort_for_deletion, RankedPod};

/// `BurstReplicas`: creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;
/// `SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// The batch sizes slow start uses for `count` creations: 1, 2, 4, … and
/// the remainder (when every call succeeds).
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut remaining = count;
    let mut batch = initial.min(remaining);
    while batch > 0 {
        out.push(batch);
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    out
}

/// Slow start in progress for one ReplicaSet.
struct SlowStart {
    pod: Arc<Object>,
    remaining: usize,
    batch: usize,
    outstanding: usize,
    failed: bool,
}

#[derive(Default)]
pub struct ReplicaSetController {
    expectations: Expectations,
    /// Each ReplicaSet's template, rebuilt when its generation changes.
    templates: BTreeMap<String, (String, i64, Arc<Template>)>,
    slow_start: BTreeMap<String, SlowStart>,
}

/// The ReplicaSets whose selector matches an orphan pod.
fn matching_sets<'a>(cache: &'a Cache, pod: &'a Object) -> impl Iterator<Item = &'a Arc<Object>> {
    cache
        .list(Kind::ReplicaSet, &pod.meta.namespace)
        .filter(move |rs| {
            selector(rs).is_some_and(|s| !s.is_empty() && s.matches(&pod.meta.labels))
        })
}

/// The pods related to `rs` for ranking: with a Deployment owner, the pods of
/// every ReplicaSet it owns (`getIndirectlyRelatedPods`).
fn related_pods<'a>(cache: &'a Cache, rs: &'a Object) -> Vec<&'a Arc<Object>> {
    let sets: Vec<&Arc<Object>> = match controller_ref(rs) {
        Some(d) => cache
            .list(Kind::ReplicaSet, &rs.meta.namespace)
            .filter(|o| controller_ref(o).is_some_and(|r| r.uid == d.uid))
            .collect(),
        None => cache
            .get(Kind::ReplicaSet, &rs.meta.namespace, &rs.meta.name)
            .into_iter()
            .collect(),
    };
    // Through the controller-uid index, merged back into name order (the
    // order a namespace scan gives).
    let mut pods: Vec<&Arc<Object>> = sets
        .iter()
        .flat_map(|s| cache.controlled_by(Kind::Pod, &rs.meta.namespace, &s.meta.uid))
        .collect();
    pods.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    pods.dedup_by(|a, b| Arc::ptr_eq(a, b));
    pods
}

impl ReplicaSetController {
    fn template(&mut self, rs: &Object) -> Result<Arc<Template>, String> {
        let key = key_of(rs);
        if let Some((uid, gen, t)) = self.templates.get(&key) {
            if *uid == rs.meta.uid && *gen == rs.meta.generation {
                return Ok(t.clone());
            }
        }
        let json = template_json(rs).ok_or("no spec.template")?;
        let t = Arc::new(Template::from_json(json)?);
        self.templates
            .insert(key, (rs.meta.uid.clone(), rs.meta.generation, t.clone()));
        Ok(t)
    }

    fn send_batch(key: &str, s: &mut SlowStart, cx: &mut SyncCtx<'_>) {
        s.batch = s.batch.min(s.remaining);
        s.outstanding = s.batch;
        s.remaining -= s.batch;
        for _ in 0..s.batch {
            let (ns, _) = split_key(key);
            let mut req = ApiRequest::new(Verb::Create, Kind::Pod, ns, "");
            req.body = Some(s.pod.clone());
            cx.send(req);
        }
    }

    fn pod_deleted(&mut self, cache: &Cache, pod: &Object, queue: &mut WorkQueue) {
        if let Some(rs) = controller_of(cache, pod, Kind::ReplicaSet) {
            let k = key_of(rs);
            self.expectations.deletion_observed(&k, &key_of(pod));
            queue.add(&k);
        }
    }

    /// The status a sync reports (`calculateStatus`).
    fn status(
        rs: &Object,
        pods: &[&Arc<Object>],
        template: &Template,
        now: SimTime,
    ) -> serde_json::Value {
        let min_ready = min_ready_seconds(rs);
        let mut fully_labeled = 0;
        let mut ready = 0;
        let mut available = 0;
        for p in pods {
            if template
                .labels
                .iter()
                .all(|(k, v)| p.meta.labels.get(k) == Some(v))
            {
                fully_labeled += 1;
            }
            let body = p.as_pod().expect("pods");
            if body.status.is_ready() {
                ready += 1;
                if pod_available(body, min_ready, now) {
                    available += 1;
                }
            }
        }
        json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs.meta.generation,
        })
    }
}

impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        match ev.kind {
            Kind::ReplicaSet => {
                let rs = ev.object();
                if ev.new.is_none() {
                    self.expectations.delete(&key_of(rs));
                    self.templates.remove(&key_of(rs));
                }
                queue.add(&key_of(rs));
            }
            Kind::Pod => match (&ev.old, &ev.new) {
                (_, None) => self.pod_deleted(cache, ev.object(), queue),
                (None, Some(pod)) => {
                    if pod.meta.deletion.is_some() {
                        return self.pod_deleted(cache, pod, queue);
                    }
                    if let Some(rs) = controller_of(cache, pod, Kind::ReplicaSet) {
                        let k = key_of(rs);
                        self.expectations.creation_observed(&k);
                        queue.add(&k);
                    } else if controller_ref(pod).is_none() {
                        for rs in matching_sets(cache, pod) {
                            queue.add(&key_of(rs));
                        }
                    }
                }
                (Some(old), Some(new)) => {
                    if old.meta.resource_version == new.meta.resource_version {
                        return;
                    }
                    if new.meta.deletion.is_some() {
                        self.pod_deleted(cache, new, queue);
                        if old.meta.labels != new.meta.labels {
                            self.pod_deleted(cache, old, queue);
                        }
                        return;
                    }
                    let ref_changed = controller_ref(old) != controller_ref(new);
                    if ref_changed {
                        if let Some(rs) = controller_of(cache, old, Kind::ReplicaSet) {
                            queue.add(&key_of(rs));
                        }
                    }
                    if let Some(rs) = controller_of(cache, new, Kind::ReplicaSet) {
                        queue.add(&key_of(rs));
                        let became_ready = !old.as_pod().is_some_and(|p| p.status.is_ready())
                            && new.as_pod().is_some_and(|p| p.status.is_ready());
                        let min_ready = min_ready_seconds(rs);
                        if became_ready && min_ready > 0 {
                            // Checked again once it has been ready long enough.
                            queue.add_after(
                                &key_of(rs),
                                SimDuration::from_secs(min_ready as u64 + 1),
                                _now,
                            );
                        }
                    } else if (ref_changed || old.meta.labels != new.meta.labels)
                        && controller_ref(new).is_none()
                    {
                        for rs in matching_sets(cache, new) {
                            queue.add(&key_of(rs));
                        }
                    }
                }
            },
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(rs) = cx.cache.get(Kind::ReplicaSet, ns, name).cloned() else {
            self.expectations.delete(key);
            self.templates.remove(key);
            return;
        };
        let needs_sync = self.expectations.satisfied(key, cx.now);
        let Some(sel) = selector(&rs) else {
            return;
        };
        let template = match self.template(&rs) {
            Ok(t) => t,
            Err(e) => {
                cx.event(
                    &rs,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                return;
            }
        };
        let pods = claim_pods(cx, &rs, &sel, pod_active);
        if needs_sync && rs.meta.deletion.is_none() {
            let want = replicas(&rs).max(0) as usize;
            if pods.len() < want {
                let n = (want - pods.len()).min(BURST_REPLICAS);
                self.expectations.expect_creations(key, n as i64, cx.now);
                let pod = Arc::new(template.pod(&rs, &format!("{}-", rs.meta.name)));
                let mut s = SlowStart {
                    pod,
                    remaining: n,
                    batch: SLOW_START_INITIAL_BATCH,
                    outstanding: 0,
                    failed: false,
                };
                Self::send_batch(key, &mut s, cx);
                self.slow_start.insert(key.to_string(), s);
            } else if pods.len() > want {
                let n = (pods.len() - want).min(BURST_REPLICAS);
                let mut victims: Vec<usize> = (0..pods.len()).collect();
                if n < pods.len() {
                    let related = related_pods(cx.cache, &rs);
                    let mut on_node: BTreeMap<&str, usize> = BTreeMap::new();
                    for p in related.iter().filter(|p| pod_active(p)) {
                        let node = p
                            .as_pod()
                            .and_then(|b| b.node_name.as_deref())
                            .unwrap_or("");
                        *on_node.entry(node).or_default() += 1;
                    }
                    let mut ranked: Vec<(RankedPod, usize)> = pods
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            let mut r = RankedPod::of(p);
                            r.rank = on_node.get(r.node.as_str()).copied().unwrap_or(0);
                            (r, i)
                        })
                        .collect();
                    sort_for_deletion(&mut ranked, cx.now);
                    victims = ranked.into_iter().map(|(_, i)| i).collect();
                }
                victims.truncate(n);
                let doomed: BTreeSet<String> = victims.iter().map(|i| key_of(pods[*i])).collect();
                self.expectations.expect_deletions(key, doomed, cx.now);
                for i in victims {
                    let req = ApiRequest::new(Verb::Delete, Kind::Pod, ns, &pods[i].meta.name);
                    cx.send(req);
                }
            }
        }
        let status = Self::status(&rs, &pods, &template, cx.now);
        update_status(cx, &rs, status.clone());
        let min_ready = min_ready_seconds(&rs);
        let ready = status["readyReplicas"].as_i64().unwrap_or(0);
        let available = status["availableReplicas"].as_i64().unwrap_or(0);
        let want = replicas(&rs);
        if min_ready > 0 && ready == want && available != want {
            cx.requeue_after(SimDuration::from_secs(min_ready as u64));
        }
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
        let rs = cx.cache.get(Kind::ReplicaSet, ns, name).cloned();
        match (req.verb, req.kind) {
            (Verb::Create, Kind::Pod) => {
                if let Some(rs) = &rs {
                    match resp {
                        Some(r) if r.ok() => {
                            let pod = r
                                .object
                                .as_ref()
                                .map(|o| o.meta.name.clone())
                                .unwrap_or_default();
                            cx.event(
                                rs,
                                "Normal",
                                "SuccessfulCreate",
                                format!("Created pod: {pod}"),
                            );
                        }
                        Some(r) => cx.event(
                            rs,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {}", r.message),
                        ),
                        None => cx.event(
                            rs,
                            "Warning",
                            "FailedCreate",
                            "Error creating: the request timed out".into(),
                        ),
                    }
                }
                if !ok {
                    // The pod will never be observed.
                    self.expectations.lower_creations(key, 1);
                    cx.failed = true;
                }
                let Some(s) = self.slow_start.get_mut(key) else {
                    return;
                };
                s.outstanding -= 1;
                s.failed |= !ok;
                if s.outstanding > 0 {
                    return;
                }
                if s.failed || s.remaining == 0 {
                    let skipped = s.remaining as i64;
                    self.slow_start.remove(key);
                    if skipped > 0 {
                        self.expectations.lower_creations(key, skipped);
                    }
                    return;
                }
                s.batch *= 2;
                Self::send_batch(key, s, cx);
            }
            (Verb::Delete, Kind::Pod) => {
                if let Some(rs) = &rs {
                    if ok {
                        cx.event(
                            rs,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted pod: {}", req.name),
                        );
                    } else if resp.is_some_and(|r| r.code != 404) || resp.is_none() {
                        let msg = resp
                            .map(|r| r.message.clone())
                            .unwrap_or_else(|| "timed out".into());
                        cx.event(
                            rs,
                            "Warning",
                            "FailedDelete",
                            format!("Error deleting: {msg}"),
                        );
                    }
                }
                if !ok {
                    // Not deleted: do not wait for it.
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{}", req.name));
                    cx.failed |= resp.is_none_or(|r| r.code != 404);
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
        self.slow_start.clear();
    }

    /// Planted bug (`planted-bugs`): expectations forgotten on a relist of
    /// pods or ReplicaSets ([`Expectations::forget_on_relist`]).
    #[cfg(feature = "planted-bugs")]
    fn on_relist(&mut self, kind: Kind) {
        if matches!(kind, Kind::Pod | Kind::ReplicaSet) {
            self.expectations.forget_on_relist();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_batches_double_from_one() {
        assert_eq!(slow_start_batches(10, 1), vec![1, 2, 4, 3]);
        assert_eq!(
            slow_start_batches(500, 1),
            vec![1, 2, 4, 8, 16, 32, 64, 128, 245]
        );
        assert!(slow_start_batches(0, 1).is_empty());
    }
}
