//! The Job controller (`pkg/controller/job`): runs `parallelism` pods at a
//! time until `completions` of them succeed (or, with no completions, until
//! one has and the rest finish); an Indexed Job runs one pod per completion
//! index. Failed pods are replaced after an exponential back-off (10 s,
//! doubling, at most 10 min) until more than `backoffLimit` have failed; a
//! Job active longer than `activeDeadlineSeconds` fails too. As in v1.34
//! the interim `FailureTarget` / `SuccessCriteriaMet` condition comes first,
//! the terminal `Failed` / `Complete` one once no pod is left running.

pub mod indexes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::expectations::Expectations;
use super::workload::controller_of;
use super::workload::{
    body_path, body_str, controlled_by, json_body, key_of, split_key, template_json, update_status,
    Template,
};
use super::workqueue::WorkQueue;
use crate::api::pod::PodPhase;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::{SimDuration, SimTime};

/// `DefaultJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: SimDuration = SimDuration::from_secs(10);
/// `MaxJobPodFailureBackOff`.
pub const MAX_POD_FAILURE_BACKOFF: SimDuration = SimDuration::from_secs(600);
/// `MaxPodCreateDeletePerSync`.
pub const MAX_CREATE_DELETE_PER_SYNC: usize = 500;
/// `spec.backoffLimit`'s default.
pub const DEFAULT_BACKOFF_LIMIT: i64 = 6;

/// The delay before replacing a pod after `failures` consecutive failures.
pub fn failure_backoff(failures: u32) -> SimDuration {
    if failures == 0 {
        return SimDuration::ZERO;
    }
    let shift = (failures - 1).min(16);
    SimDuration::from_nanos(
        POD_FAILURE_BACKOFF
            .nanos()
            .saturating_mul(1 << shift)
            .min(MAX_POD_FAILURE_BACKOFF.nanos()),
    )
}

/// Failures since the last success, and when the last one was seen.
#[derive(Clone, Copy, Debug, Default)]
struct BackoffRecord {
    failures: u32,
    last_failure: SimTime,
}

#[derive(Default)]
pub struct JobController {
    expectations: Expectations,
    templates: BTreeMap<String, (String, i64, Arc<Template>)>,
    backoff: BTreeMap<String, BackoffRecord>,
}

fn phase(p: &Object) -> Option<PodPhase> {
    p.as_pod().map(|b| b.status.phase)
}

fn index_of(p: &Object) -> Option<i64> {
    p.meta
        .annotations
        .get(indexes::COMPLETION_INDEX)?
        .parse()
        .ok()
}

fn has_condition(job: &Object, type_: &str) -> Option<Json> {
    body_path(job, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .cloned()
}

/// Whether the Job has reached `Complete` or `Failed`.
pub fn finished(job: &Object) -> Option<&'static str> {
    if has_condition(job, "Complete").is_some() {
        Some("Complete")
    } else if has_condition(job, "Failed").is_some() {
        Some("Failed")
    } else {
        None
    }
}

fn condition(type_: &str, reason: &str, message: &str, now: SimTime) -> Json {
    json!({"type": type_, "status": "True", "lastProbeTime": now.rfc3339(),
           "lastTransitionTime": now.rfc3339(), "reason": reason, "message": message})
}

impl JobController {
    fn template(&mut self, job: &Object) -> Result<Arc<Template>, String> {
        let key = key_of(job);
        if let Some((uid, gen, t)) = self.templates.get(&key) {
            if *uid == job.meta.uid && *gen == job.meta.generation {
                return Ok(t.clone());
            }
        }
        let json = template_json(job).ok_or("no spec.template")?;
        let t = Template::from_json(json)?;
        if t.spec.restart_policy == crate::api::pod::RestartPolicy::Always {
            return Err("spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"".into());
        }
        let t = Arc::new(t);
        self.templates
            .insert(key, (job.meta.uid.clone(), job.meta.generation, t.clone()));
        Ok(t)
    }

    /// A pod for the Job, for `index` if it is Indexed.
    fn new_pod(job: &Object, t: &Template, index: Option<i64>) -> Object {
        let generate = match index {
            Some(i) => format!("{}-{i}-", job.meta.name),
            None => format!("{}-", job.meta.name),
        };
        let mut pod = t.pod(job, &generate);
        let mut labels = (*pod.meta.labels).clone();
        labels.insert(
            "batch.kubernetes.io/controller-uid".into(),
            job.meta.uid.clone(),
        );
        labels.insert("batch.kubernetes.io/job-name".into(), job.meta.name.clone());
        labels.insert("controller-uid".into(), job.meta.uid.clone());
        labels.insert("job-name".into(), job.meta.name.clone());
        if let Some(i) = index {
            labels.insert(indexes::COMPLETION_INDEX.into(), i.to_string());
            let mut ann = (*pod.meta.annotations).clone();
            ann.insert(indexes::COMPLETION_INDEX.into(), i.to_string());
            pod.meta.annotations = Arc::new(ann);
        }
        pod.meta.labels = Arc::new(labels);
        pod
    }
}

impl Controller for JobController {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        match ev.kind {
            Kind::Job => {
                let k = key_of(ev.object());
                if ev.new.is_none() {
                    self.expectations.delete(&k);
                    self.templates.remove(&k);
                    self.backoff.remove(&k);
                }
                queue.add(&k);
            }
            Kind::Pod => {
                let pod = ev.object();
                let Some(job) = controller_of(cache, pod, Kind::Job) else {
                    return;
                };
                let k = key_of(job);
                self.expectations.observe_pod(&k, ev);
                if let (Some(o), Some(n)) = (&ev.old, &ev.new) {
                    let was = phase(o);
                    match phase(n) {
                        Some(PodPhase::Failed) if was != Some(PodPhase::Failed) => {
                            let r = self.backoff.entry(k.clone()).or_default();
                            r.failures += 1;
                            r.last_failure = now;
                        }
                        Some(PodPhase::Succeeded) if was != Some(PodPhase::Succeeded) => {
                            self.backoff.remove(&k);
                        }
                        _ => {}
                    }
                }
                queue.add(&k);
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(job) = cx.cache.get(Kind::Job, ns, name).cloned() else {
            self.expectations.delete(key);
            self.templates.remove(key);
            self.backoff.remove(key);
            return;
        };
        if job.meta.deletion.is_some() || finished(&job).is_some() {
            return;
        }
        let template = match self.template(&job) {
            Ok(t) => t,
            Err(e) => {
                cx.event(
                    &job,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                return;
            }
        };
        let now = cx.now;
        let pods: Vec<&Arc<Object>> = cx
            .cache
            .list(Kind::Pod, ns)
            .filter(|p| controlled_by(p, &job.meta.uid))
            .collect();
        let is_active = |p: &Object| {
            p.meta.deletion.is_none()
                && !matches!(phase(p), Some(PodPhase::Succeeded | PodPhase::Failed))
        };
        let active: Vec<&Arc<Object>> = pods.iter().copied().filter(|p| is_active(p)).collect();
        let terminating = pods
            .iter()
            .filter(|p| {
                p.meta.deletion.is_some()
                    && !matches!(phase(p), Some(PodPhase::Succeeded | PodPhase::Failed))
            })
            .count() as i64;
        let ready = active
            .iter()
            .filter(|p| p.as_pod().is_some_and(|b| b.status.is_ready()))
            .count() as i64;
        let failed = pods
            .iter()
            .filter(|p| phase(p) == Some(PodPhase::Failed))
            .count() as i64;
        let indexed = body_str(&job, &["spec", "completionMode"], "NonIndexed") == "Indexed";
        let completions = body_path(&job, &["spec", "completions"]).and_then(Json::as_i64);
        let parallelism = body_path(&job, &["spec", "parallelism"])
            .and_then(Json::as_i64)
            .unwrap_or(1)
            .max(0);
        let completed: BTreeSet<i64> = pods
            .iter()
            .filter(|p| phase(p) == Some(PodPhase::Succeeded))
            .filter_map(|p| index_of(p))
            .filter(|i| completions.is_none_or(|c| *i < c))
            .collect();
        let succeeded = if indexed {
            completed.len() as i64
        } else {
            pods.iter()
                .filter(|p| phase(p) == Some(PodPhase::Succeeded))
                .count() as i64
        };
        let suspended = body_path(&job, &["spec", "suspend"]).and_then(Json::as_bool) == Some(true);
        let start = body_path(&job, &["status", "startTime"])
            .and_then(Json::as_str)
            .and_then(SimTime::parse_rfc3339);
        let start = if suspended {
            start
        } else {
            Some(start.unwrap_or(now))
        };
        let backoff_limit = body_path(&job, &["spec", "backoffLimit"])
            .and_then(Json::as_i64)
            .unwrap_or(DEFAULT_BACKOFF_LIMIT);
        let deadline = body_path(&job, &["spec", "activeDeadlineSeconds"]).and_then(Json::as_i64);

        let mut status: Map<String, Json> = json_body(&job)
            .and_then(|m| m.get("status"))
            .and_then(|s| s.as_object().cloned())
            .unwrap_or_default();
        let mut conditions: Vec<Json> = status
            .get("conditions")
            .and_then(|c| c.as_array().cloned())
            .unwrap_or_default();
        let mut terminal: Option<(&'static str, String, String)> = None;

        let failure_target = has_condition(&job, "FailureTarget");
        let success_met = has_condition(&job, "SuccessCriteriaMet");
        let failure = if let Some(c) = &failure_target {
            Some((
                c["reason"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            ))
        } else if success_met.is_some() {
            None
        } else if failed > backoff_limit {
            Some((
                "BackoffLimitExceeded".to_string(),
                "Job has reached the specified backoff limit".to_string(),
            ))
        } else if let (Some(d), Some(s)) = (deadline, start) {
            (now.since(s) >= SimDuration::from_secs(d.max(0) as u64)).then(|| {
                (
                    "DeadlineExceeded".to_string(),
                    "Job was active longer than specified deadline".to_string(),
                )
            })
        } else {
            None
        };
        let success = failure.is_none()
            && (success_met.is_some()
                || match completions {
                    Some(c) => succeeded >= c,
                    None => succeeded > 0 && active.is_empty(),
                });

        let mut to_delete: Vec<&Arc<Object>> = Vec::new();
        let mut to_create: Vec<Option<i64>> = Vec::new();
        if let Some((reason, message)) = &failure {
            if failure_target.is_none() {
                conditions.push(condition("FailureTarget", reason, message, now));
            }
            to_delete.extend(active.iter().copied());
            if active.is_empty() && terminating == 0 {
                conditions.push(condition("Failed", reason, message, now));
                terminal = Some(("Warning", reason.clone(), message.clone()));
            }
        } else if success {
            if success_met.is_none() {
                let reason = if completions.is_some() {
                    "CompletionsReached"
                } else {
                    ""
                };
                conditions.push(condition(
                    "SuccessCriteriaMet",
                    reason,
                    "Reached expected number of succeeded pods",
                    now,
                ));
            }
            to_delete.extend(active.iter().copied());
            if active.is_empty() && terminating == 0 {
                let reason = if completions.is_some() {
                    "CompletionsReached"
                } else {
                    ""
                };
                conditions.push(condition(
                    "Complete",
                    reason,
                    "Reached expected number of succeeded pods",
                    now,
                ));
                status.insert("completionTime".into(), json!(now.rfc3339()));
                terminal = Some(("Normal", "Completed".into(), "Job completed".into()));
            }
        } else if self.expectations.satisfied(key, now) {
            let want = if suspended {
                0
            } else {
                match completions {
                    Some(c) => (c - succeeded).clamp(0, parallelism),
                    None if succeeded > 0 => active.len() as i64,
                    None => parallelism,
                }
            };
            let have = active.len() as i64;
            if indexed {
                // Extra pods for one index go; missing indexes are created in order.
                let mut seen: BTreeSet<i64> = BTreeSet::new();
                for p in &active {
                    match index_of(p) {
                        Some(i)
                            if completions.is_some_and(|c| i < c)
                                && !completed.contains(&i)
                                && seen.insert(i) => {}
                        _ => to_delete.push(p),
                    }
                }
                let room = (want - seen.len() as i64).max(0) as usize;
                let c = completions.unwrap_or(0);
                to_create.extend(
                    (0..c)
                        .filter(|i| !completed.contains(i) && !seen.contains(i))
                        .take(room)
                        .map(Some),
                );
            } else if have > want {
                // Not-ready pods first, then the newest.
                let mut victims: Vec<&Arc<Object>> = active.clone();
                victims.sort_by(|a, b| {
                    let ra = a.as_pod().is_some_and(|p| p.status.is_ready());
                    let rb = b.as_pod().is_some_and(|p| p.status.is_ready());
                    ra.cmp(&rb)
                        .then(b.meta.creation.cmp(&a.meta.creation))
                        .then(a.meta.name.cmp(&b.meta.name))
                });
                to_delete.extend(victims.into_iter().take((have - want) as usize));
            } else if have < want {
                to_create.extend(std::iter::repeat_n(None, (want - have) as usize));
            }
            if !to_create.is_empty() {
                let rec = self.backoff.get(key).copied().unwrap_or_default();
                let wait = failure_backoff(rec.failures);
                let ready_at = rec.last_failure.after(wait);
                if rec.failures > 0 && ready_at > now {
                    to_create.clear();
                    cx.requeue_after(ready_at.since(now));
                }
            }
            to_create.truncate(MAX_CREATE_DELETE_PER_SYNC);
            to_delete.truncate(MAX_CREATE_DELETE_PER_SYNC);
            let doomed: BTreeSet<String> = to_delete.iter().map(|p| key_of(p)).collect();
            if !to_create.is_empty() || !doomed.is_empty() {
                self.expectations
                    .expect(key, to_create.len() as i64, doomed, now);
            }
        }
        for p in &to_delete {
            cx.send(ApiRequest::new(Verb::Delete, Kind::Pod, ns, &p.meta.name));
        }
        for index in &to_create {
            let mut req = ApiRequest::new(Verb::Create, Kind::Pod, ns, "");
            req.body = Some(Arc::new(Self::new_pod(&job, &template, *index)));
            cx.send(req);
        }
        if let (Some(d), Some(s), None) = (deadline, start, &terminal) {
            let at = s.after(SimDuration::from_secs(d.max(0) as u64));
            if at > now {
                cx.requeue_after(at.since(now));
            }
        }

        let active_after =
            active.len() as i64 - to_delete.iter().filter(|p| is_active(p)).count() as i64;
        status.insert("active".into(), json!(active_after.max(0)));
        status.insert("ready".into(), json!(ready));
        status.insert("succeeded".into(), json!(succeeded));
        status.insert("failed".into(), json!(failed));
        status.insert("terminating".into(), json!(terminating));
        status.insert("uncountedTerminatedPods".into(), json!({}));
        if let Some(s) = start {
            status
                .entry("startTime")
                .or_insert_with(|| json!(s.rfc3339()));
        }
        if indexed {
            status.insert(
                "completedIndexes".into(),
                json!(indexes::format(&completed)),
            );
        }
        if !conditions.is_empty() {
            status.insert("conditions".into(), Json::Array(conditions));
        }
        let status = Json::Object(status);
        update_status(cx, &job, status);
        if let Some((type_, reason, message)) = terminal {
            let reason: &'static str = match reason.as_str() {
                "BackoffLimitExceeded" => "BackoffLimitExceeded",
                "DeadlineExceeded" => "DeadlineExceeded",
                "Completed" => "Completed",
                _ => "JobFailed",
            };
            cx.event(
                &job,
                if type_ == "Normal" {
                    "Normal"
                } else {
                    "Warning"
                },
                reason,
                message,
            );
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
        let job = cx.cache.get(Kind::Job, ns, name).cloned();
        let err = || {
            resp.map(|r| r.message.clone())
                .unwrap_or_else(|| "the request timed out".into())
        };
        match (req.verb, req.kind) {
            (Verb::Create, Kind::Pod) => {
                if let Some(job) = &job {
                    match resp.filter(|r| r.ok()) {
                        Some(r) => {
                            let pod = r
                                .object
                                .as_ref()
                                .map(|o| o.meta.name.clone())
                                .unwrap_or_default();
                            cx.event(
                                job,
                                "Normal",
                                "SuccessfulCreate",
                                format!("Created pod: {pod}"),
                            );
                        }
                        None => cx.event(
                            job,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {}", err()),
                        ),
                    }
                }
                if !ok {
                    self.expectations.lower_creations(key, 1);
                    cx.failed = true;
                }
            }
            (Verb::Delete, Kind::Pod) => {
                if let Some(job) = &job {
                    if ok {
                        cx.event(
                            job,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted pod: {}", req.name),
                        );
                    }
                }
                if !ok {
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
        self.backoff.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_backoff_doubles_from_ten_seconds_to_ten_minutes() {
        let secs = |n| failure_backoff(n).nanos() / 1_000_000_000;
        assert_eq!(secs(0), 0);
        assert_eq!(secs(1), 10);
        assert_eq!(secs(2), 20);
        assert_eq!(secs(3), 40);
        assert_eq!(secs(6), 320);
        assert_eq!(secs(7), 600);
        assert_eq!(secs(40), 600);
    }
}
