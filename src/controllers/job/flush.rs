//! The tracking flush of one sync (`trackJobStatusAndRemoveFinalizers`,
//! `flushUncountedAndRemoveFinalizers`, `enactJobFinished`) as a chain of
//! API round trips: write the new uncounted UIDs, remove those pods'
//! finalizers, then write the counters and, once nothing is left
//! uncounted or terminating, the terminal condition.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::indexes;
use super::pod_failure_policy::Verdict;
use super::sync::{is_pod_failed, JobCtx};
use super::tracking::{self, clean_uncounted, has_finalizer, Flush, Stage, Uncounted};
use super::{cond_type, successor, JobController};
use crate::api::pod::PodPhase;
use crate::api::Object;
use crate::controllers::controller::SyncCtx;
use crate::controllers::workload::{json_body, update_status};
use crate::model::apiserver::request::ApiResponse;

fn phase(p: &Object) -> Option<PodPhase> {
    p.as_pod().map(|b| b.status.phase)
}

fn status_of(job: &Object) -> Map<String, Json> {
    json_body(job)
        .and_then(|m| m.get("status"))
        .and_then(|s| s.as_object().cloned())
        .unwrap_or_default()
}

/// `canRemoveFinalizer`: always once the Job is deleted or finishing and
/// for a succeeded pod; for a failed one unless it is the pod an index's
/// replacement will take its failure count from.
fn can_remove(ctx: &JobCtx, p: &Object, failed: bool) -> bool {
    if ctx.job.meta.deletion.is_some()
        || ctx.finished.is_some()
        || phase(p) == Some(PodPhase::Succeeded)
    {
        return true;
    }
    if !failed {
        return false;
    }
    let delayed = indexes::index_of(p)
        .and_then(|ix| ctx.delayed.get(&ix))
        .is_some_and(|d| d.meta.uid == p.meta.uid);
    !(ctx.params.backoff_limit_per_index.is_some() && delayed)
}

impl JobController {
    /// Decides which pods are counted and which finalizers go, then starts
    /// the flush.
    pub(super) fn track(&mut self, key: &str, mut ctx: JobCtx, cx: &mut SyncCtx<'_>) {
        let with_finalizer: BTreeSet<String> = ctx
            .pods
            .iter()
            .filter(|p| has_finalizer(p) && !ctx.expected_rm.contains(&p.meta.uid))
            .map(|p| p.meta.uid.clone())
            .collect();
        let mut status = std::mem::take(&mut ctx.status);
        clean_uncounted(&mut status, &with_finalizer);
        let mut u = Uncounted::read(&status);
        let (remove, new_indexes, reached_max) = Self::select(&ctx, &mut u);
        u.write(&mut status);
        if ctx.params.indexed {
            let mut done = ctx.succeeded_indexes.clone();
            done.extend(new_indexes);
            status.insert("succeeded".into(), json!(done.len()));
            status.insert("completedIndexes".into(), json!(indexes::format(&done)));
            if let Some(f) = &ctx.failed_indexes {
                status.insert("failedIndexes".into(), json!(indexes::format(f)));
            }
        }
        let finished = Self::interim_condition(&ctx, &mut status, cx);
        let flush = Flush {
            stage: Stage::Adding,
            job: ctx.job.clone(),
            status,
            remove,
            outstanding: 0,
            with_finalizer,
            removal_failed: false,
            finished,
            terminating: ctx.terminating,
            reached_max,
            backoff: ctx.backoff,
        };
        self.start_flush(key, flush, cx);
    }

    /// The pods whose finalizer goes this sync, the UIDs they add to
    /// `uncounted`, and the Indexed Job's newly succeeded indexes.
    fn select(ctx: &JobCtx, u: &mut Uncounted) -> (Vec<Arc<Object>>, BTreeSet<i64>, bool) {
        let mut pods: Vec<&Arc<Object>> = ctx.pods.iter().collect();
        if ctx.params.indexed {
            pods.sort_by_key(|p| indexes::index_of(p).unwrap_or(-1));
        }
        let c = ctx.params.index_count();
        let failing_all = ctx
            .finished
            .as_ref()
            .is_some_and(|f| cond_type(f) != "SuccessCriteriaMet");
        let (mut remove, mut new_indexes) = (Vec::new(), BTreeSet::new());
        for p in pods {
            let uid = &p.meta.uid;
            if !has_finalizer(p) || ctx.expected_rm.contains(uid) {
                continue;
            }
            let failed = is_pod_failed(p, &ctx.params);
            if !can_remove(ctx, p, failed) {
                continue;
            }
            remove.push(p.clone());
            let ix = indexes::index_of(p).filter(|i| *i < c);
            if phase(p) == Some(PodPhase::Succeeded) && !u.failed.contains(uid) {
                if !ctx.params.indexed {
                    if !u.succeeded.contains(uid) {
                        u.succeeded.push(uid.clone());
                    }
                } else if let Some(i) = ix.filter(|i| !ctx.prev_succeeded.contains(i)) {
                    new_indexes.insert(i);
                }
            } else if (failed || failing_all)
                && !u.failed.contains(uid)
                && (!ctx.params.indexed || ix.is_some())
            {
                let verdict = ctx.params.pod_failure_policy.as_ref().map(|f| f.check(p));
                if verdict.is_none_or(|v: Verdict| v.counts) {
                    u.failed.push(uid.clone());
                }
            }
            if new_indexes.len() + u.len() >= tracking::MAX_UNCOUNTED_PODS {
                return (remove, new_indexes, true);
            }
        }
        (remove, new_indexes, false)
    }

    /// Writes an interim condition into `status` and returns the terminal
    /// one it leads to.
    fn interim_condition(
        ctx: &JobCtx,
        status: &mut Map<String, Json>,
        cx: &SyncCtx<'_>,
    ) -> Option<Json> {
        let f = ctx.finished.clone()?;
        let mut conditions: Vec<Json> = status
            .get("conditions")
            .and_then(|c| c.as_array().cloned())
            .unwrap_or_default();
        let next = match cond_type(&f) {
            "FailureTarget" => {
                conditions.push(f.clone());
                successor(&f, "Failed", cx.now)
            }
            "SuccessCriteriaMet" => {
                if !conditions
                    .iter()
                    .any(|c| cond_type(c) == "SuccessCriteriaMet" && c["status"] == "True")
                {
                    conditions.push(f.clone());
                }
                successor(&f, "Complete", cx.now)
            }
            _ => f,
        };
        status.insert("conditions".into(), Json::Array(conditions));
        Some(next)
    }

    /// Step 1: make the new uncounted UIDs durable (if anything changed).
    fn start_flush(&mut self, key: &str, mut flush: Flush, cx: &mut SyncCtx<'_>) {
        if status_of(&flush.job) != flush.status {
            update_status(cx, &flush.job, Json::Object(flush.status.clone()));
            flush.stage = Stage::Adding;
            self.flushes.insert(key.to_string(), flush);
        } else {
            self.remove_finalizers(key, flush, cx);
        }
    }

    /// Step 2: the finalizers of the pods now recorded go.
    fn remove_finalizers(&mut self, key: &str, mut flush: Flush, cx: &mut SyncCtx<'_>) {
        if flush.remove.is_empty() {
            return self.close(key, flush, cx);
        }
        for p in &flush.remove {
            self.finalizers.expect(key, &p.meta.uid);
            cx.send(tracking::removal(p));
        }
        flush.outstanding = flush.remove.len();
        flush.stage = Stage::Removing;
        self.flushes.insert(key.to_string(), flush);
    }

    /// A finalizer patch of the flush answered. Returns whether the patch
    /// belonged to the flush.
    pub(super) fn finalizer_removed(
        &mut self,
        key: &str,
        pod: &str,
        ok: bool,
        cx: &mut SyncCtx<'_>,
    ) -> bool {
        let Some(flush) = self
            .flushes
            .get_mut(key)
            .filter(|f| f.stage == Stage::Removing)
        else {
            return false;
        };
        let Some(i) = flush.remove.iter().position(|p| p.meta.name == pod) else {
            return false;
        };
        let p = flush.remove.remove(i);
        if ok {
            flush.with_finalizer.remove(&p.meta.uid);
        } else {
            flush.removal_failed = true;
            self.finalizers.observed(key, &p.meta.uid);
        }
        flush.outstanding -= 1;
        if flush.outstanding == 0 {
            let flush = self.flushes.remove(key).expect("looked up above");
            self.close(key, flush, cx);
        }
        true
    }

    /// Step 3: counters for the pods whose finalizer is gone, and the
    /// terminal condition once nothing is uncounted or terminating.
    fn close(&mut self, key: &str, mut flush: Flush, cx: &mut SyncCtx<'_>) {
        clean_uncounted(&mut flush.status, &flush.with_finalizer);
        let uncounted = Uncounted::read(&flush.status);
        let mut finished = None;
        if let Some(c) = flush.finished.clone() {
            if !flush.reached_max && uncounted.is_empty() && flush.terminating == 0 {
                ensure_condition(&mut flush.status, &c);
                if cond_type(&c) == "Complete" {
                    flush
                        .status
                        .insert("completionTime".into(), c["lastTransitionTime"].clone());
                }
                finished = Some(c);
            }
        }
        if flush.removal_failed {
            cx.failed = true;
        }
        if status_of(&flush.job) == flush.status {
            return;
        }
        update_status(cx, &flush.job, Json::Object(flush.status.clone()));
        if let Some(c) = finished {
            record_finished(&flush.job, &flush.status, &c, cx);
        }
        flush.stage = Stage::Closing;
        self.flushes.insert(key.to_string(), flush);
    }

    /// A status write of a flush answered.
    pub(super) fn status_written(
        &mut self,
        key: &str,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let Some(mut flush) = self.flushes.remove(key) else {
            cx.failed |= !resp.is_some_and(|r| r.ok());
            return;
        };
        let written = resp.filter(|r| r.ok()).and_then(|r| r.object.clone());
        match (flush.stage, written) {
            (Stage::Adding, Some(job)) => {
                self.backoff.insert(key.to_string(), flush.backoff);
                flush.status = status_of(&job);
                flush.job = job;
                self.remove_finalizers(key, flush, cx);
            }
            (Stage::Closing, Some(_)) => {}
            _ => cx.failed = true,
        }
    }
}

/// `ensureJobConditionStatus` for a True condition.
fn ensure_condition(status: &mut Map<String, Json>, c: &Json) {
    let mut conditions: Vec<Json> = status
        .get("conditions")
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default();
    let same = |x: &Json| {
        x["status"] == c["status"] && x["reason"] == c["reason"] && x["message"] == c["message"]
    };
    match conditions.iter_mut().find(|x| x["type"] == c["type"]) {
        Some(x) if same(x) => {}
        Some(x) => *x = c.clone(),
        None => conditions.push(c.clone()),
    }
    status.insert("conditions".into(), Json::Array(conditions));
}

/// `recordJobFinished`: the Event for the terminal condition.
fn record_finished(job: &Arc<Object>, status: &Map<String, Json>, c: &Json, cx: &mut SyncCtx<'_>) {
    if cond_type(c) == "Complete" {
        let completions = crate::controllers::workload::spec_i64(job, "completions");
        if completions.is_some_and(|n| tracking::counter(status, "succeeded") > n) {
            let msg = "Too many succeeded pods running after completion count reached".to_string();
            cx.event(job, "Warning", "TooManySucceededPods", msg);
        }
        cx.event(job, "Normal", "Completed", "Job completed".into());
        return;
    }
    let reason: &'static str = match c["reason"].as_str().unwrap_or("") {
        "BackoffLimitExceeded" => "BackoffLimitExceeded",
        "DeadlineExceeded" => "DeadlineExceeded",
        "PodFailurePolicy" => "PodFailurePolicy",
        "FailedIndexes" => "FailedIndexes",
        "MaxFailedIndexesExceeded" => "MaxFailedIndexesExceeded",
        _ => "JobFailed",
    };
    let message = c["message"].as_str().unwrap_or("").to_string();
    cx.event(job, "Warning", reason, message);
}
