//! The Job controller (`pkg/controller/job`): runs `parallelism` pods at a
//! time until `completions` of them succeed (or, with no completions, until
//! one has and the rest finish); an Indexed Job runs one pod per completion
//! index. Failed pods are replaced after an exponential back-off until more
//! than `backoffLimit` have failed (`backoff`), or, with
//! `backoffLimitPerIndex`, until an index has failed that often
//! (`indexes`); a `podFailurePolicy` can fail the Job, fail an index or
//! ignore a failure at once, and a `successPolicy` can declare an Indexed
//! Job done early. Every pod is counted exactly once through the tracking
//! finalizer (`tracking`, `flush`). As in v1.34 the interim `FailureTarget`
//! / `SuccessCriteriaMet` condition comes first, the terminal `Failed` /
//! `Complete` one once no pod is left running or uncounted.

pub mod backoff;
mod flush;
pub mod indexes;
pub mod pod_failure_policy;
pub mod spec;
pub mod success_policy;
mod sync;
pub mod tracking;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::expectations::Expectations;
use super::workload::{
    body_path, controller_of, controller_ref, key_of, split_key, template_json, Template,
};
use super::workqueue::WorkQueue;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::{SimDuration, SimTime};

pub use backoff::{failure_backoff, MAX_POD_FAILURE_BACKOFF, POD_FAILURE_BACKOFF};
use spec::JobParams;
pub use spec::DEFAULT_BACKOFF_LIMIT;
use tracking::{has_finalizer, FinalizerExpectations, Flush};

/// `MaxPodCreateDeletePerSync`.
pub const MAX_CREATE_DELETE_PER_SYNC: usize = 500;
/// `syncJobBatchPeriod`: pod events and status-only Job updates are batched.
pub const SYNC_BATCH_PERIOD: SimDuration = SimDuration::from_secs(1);
/// Work-queue keys of orphan pods whose tracking finalizer must go.
const ORPHAN_PREFIX: &str = "orphan:";

/// A Job's template and spec as read for one generation.
struct Parsed {
    uid: String,
    generation: i64,
    template: Arc<Template>,
    params: Arc<JobParams>,
}

#[derive(Default)]
pub struct JobController {
    expectations: Expectations,
    finalizers: FinalizerExpectations,
    parsed: BTreeMap<String, Parsed>,
    backoff: BTreeMap<String, backoff::BackoffRecord>,
    /// Tracking work in flight, per Job key.
    flushes: BTreeMap<String, Flush>,
}

fn find_condition<'a>(job: &'a Object, type_: &str) -> Option<&'a Json> {
    body_path(job, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
}

/// Whether the Job has reached `Complete` or `Failed`.
pub fn finished(job: &Object) -> Option<&'static str> {
    if find_condition(job, "Complete").is_some() {
        Some("Complete")
    } else if find_condition(job, "Failed").is_some() {
        Some("Failed")
    } else {
        None
    }
}

fn condition(type_: &str, reason: &str, message: &str, now: SimTime) -> Json {
    json!({"type": type_, "status": "True", "lastProbeTime": now.rfc3339(),
           "lastTransitionTime": now.rfc3339(), "reason": reason, "message": message})
}

/// A condition of another type with `c`'s reason and message
/// (`newFailedConditionForFailureTarget`, and Complete after SuccessCriteriaMet).
fn successor(c: &Json, type_: &str, now: SimTime) -> Json {
    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
    condition(type_, &s("reason"), &s("message"), now)
}

fn cond_type(c: &Json) -> &str {
    c["type"].as_str().unwrap_or("")
}

impl JobController {
    fn parsed(&mut self, job: &Object) -> Result<(Arc<Template>, Arc<JobParams>), String> {
        let key = key_of(job);
        if let Some(p) = self.parsed.get(&key) {
            if p.uid == job.meta.uid && p.generation == job.meta.generation {
                return Ok((p.template.clone(), p.params.clone()));
            }
        }
        let json = template_json(job).ok_or("no spec.template")?;
        let t = Template::from_json(json)?;
        if t.spec.restart_policy == crate::api::pod::RestartPolicy::Always {
            return Err("spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"".into());
        }
        let params = Arc::new(JobParams::read(job)?);
        let template = Arc::new(t);
        self.parsed.insert(
            key,
            Parsed {
                uid: job.meta.uid.clone(),
                generation: job.meta.generation,
                template: template.clone(),
                params: params.clone(),
            },
        );
        Ok((template, params))
    }

    fn forget(&mut self, key: &str) {
        self.expectations.delete(key);
        self.finalizers.delete(key);
        self.parsed.remove(key);
        self.backoff.remove(key);
        self.flushes.remove(key);
    }

    /// `cleanupPodFinalizers`: the Job is gone or finished, so its pods'
    /// finalizers go through the orphan queue.
    fn cleanup_pod_finalizers(job: &Object, cache: &Cache, queue: &mut WorkQueue) {
        for p in cache.controlled_by(Kind::Pod, &job.meta.namespace, &job.meta.uid) {
            if has_finalizer(p) {
                queue.add(&format!("{ORPHAN_PREFIX}{}", key_of(p)));
            }
        }
    }

    fn on_job_event(
        &mut self,
        ev: &CacheEvent,
        cache: &Cache,
        queue: &mut WorkQueue,
        now: SimTime,
    ) {
        let job = ev.object();
        let k = key_of(job);
        match (&ev.old, &ev.new) {
            (_, None) => {
                self.forget(&k);
                queue.add(&k);
                Self::cleanup_pod_finalizers(job, cache, queue);
            }
            (Some(o), Some(n)) => {
                if o.meta.generation == n.meta.generation {
                    queue.add_after(&k, SYNC_BATCH_PERIOD, now);
                } else {
                    queue.add(&k);
                }
                if finished(n).is_some() {
                    Self::cleanup_pod_finalizers(n, cache, queue);
                }
            }
            (None, Some(_)) => queue.add(&k),
        }
    }

    /// `addPod` / `updatePod` / `deletePod`.
    fn on_pod_event(
        &mut self,
        ev: &CacheEvent,
        cache: &Cache,
        queue: &mut WorkQueue,
        now: SimTime,
    ) {
        let pod = ev.object();
        let holds = ev.new.as_deref().is_some_and(has_finalizer);
        let leaving = ev.new.is_none() || pod.meta.deletion.is_some();
        let orphan = format!("{ORPHAN_PREFIX}{}", key_of(pod));
        let job = match controller_of(cache, pod, Kind::Job) {
            Some(j) if !(leaving && finished(j).is_some()) => j,
            Some(_) => {
                if holds {
                    queue.add(&orphan);
                }
                return;
            }
            None => {
                if holds && (leaving || controller_ref(pod).is_none()) {
                    queue.add(&orphan);
                }
                return;
            }
        };
        let k = key_of(job);
        self.expectations.observe_pod(&k, ev);
        if !holds {
            self.finalizers.observed(&k, &pod.meta.uid);
        }
        queue.add_after(&k, SYNC_BATCH_PERIOD, now);
    }

    /// `syncOrphanPod`: removes the finalizer of a pod no unfinished Job owns.
    fn sync_orphan(&mut self, pod_key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(pod_key);
        let Some(pod) = cx.cache.get(Kind::Pod, ns, name).cloned() else {
            return;
        };
        if !has_finalizer(&pod) {
            return;
        }
        if let Some(r) = controller_ref(&pod) {
            if r.kind != "Job" {
                return;
            }
            let owner = cx.cache.get(Kind::Job, ns, &r.name);
            if owner.is_some_and(|j| j.meta.uid == r.uid && finished(j).is_none()) {
                return;
            }
        }
        cx.send(tracking::removal(&pod));
    }

    fn on_pod_response(
        &mut self,
        key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let ok = resp.is_some_and(|r| r.ok());
        let gone = resp.is_some_and(|r| r.code == 404);
        let (ns, name) = split_key(key);
        let job = cx.cache.get(Kind::Job, ns, name).cloned();
        let err = || {
            resp.map(|r| r.message.clone())
                .unwrap_or_else(|| "the request timed out".into())
        };
        match req.verb {
            Verb::Create => {
                if let Some(job) = &job {
                    match resp.filter(|r| r.ok()) {
                        Some(r) => {
                            let pod = r.object.as_ref().map(|o| o.meta.name.clone());
                            let msg = format!("Created pod: {}", pod.unwrap_or_default());
                            cx.event(job, "Normal", "SuccessfulCreate", msg);
                        }
                        None => {
                            let msg = format!("Error creating: {}", err());
                            cx.event(job, "Warning", "FailedCreate", msg);
                        }
                    }
                }
                if !ok {
                    self.expectations.lower_creations(key, 1);
                    cx.failed = true;
                }
            }
            Verb::Delete => {
                if let (Some(job), true) = (&job, ok) {
                    let msg = format!("Deleted pod: {}", req.name);
                    cx.event(job, "Normal", "SuccessfulDelete", msg);
                }
                if !ok {
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{}", req.name));
                    cx.failed |= !gone;
                }
            }
            Verb::Patch => {
                if !self.finalizer_removed(key, &req.name, ok || gone, cx) && !ok && !gone {
                    cx.failed = true;
                }
            }
            _ => cx.failed |= !ok,
        }
    }
}

impl Controller for JobController {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        match ev.kind {
            Kind::Job => self.on_job_event(ev, cache, queue, now),
            Kind::Pod => self.on_pod_event(ev, cache, queue, now),
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        if let Some(pod_key) = key.strip_prefix(ORPHAN_PREFIX) {
            return self.sync_orphan(pod_key, cx);
        }
        let (ns, name) = split_key(key);
        let Some(job) = cx.cache.get(Kind::Job, ns, name).cloned() else {
            self.forget(key);
            return;
        };
        self.flushes.remove(key);
        if finished(&job).is_some() {
            self.backoff.remove(key);
            return;
        }
        match self.parsed(&job) {
            Ok((template, params)) => self.sync_job(key, job, &template, params, cx),
            Err(e) => {
                cx.event(
                    &job,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
            }
        }
    }

    fn on_response(
        &mut self,
        key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        match req.kind {
            Kind::Pod => self.on_pod_response(key, req, resp, cx),
            Kind::Job => self.status_written(key, resp, cx),
            _ => cx.failed |= !resp.is_some_and(|r| r.ok()),
        }
    }

    fn reset(&mut self) {
        self.expectations.clear();
        self.finalizers.clear();
        self.parsed.clear();
        self.backoff.clear();
        self.flushes.clear();
    }
}
