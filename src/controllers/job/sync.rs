//! One Job sync (`syncJob` and `manageJob`): count the pods, decide whether
//! the Job has failed or succeeded, create or delete pods, and hand the
//! counting to the tracking flush.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::backoff::{self, BackoffRecord};
use super::indexes::{self, index_of};
use super::spec::JobParams;
use super::success_policy;
use super::tracking::{has_finalizer, Uncounted};
use super::{condition, find_condition, successor, JobController, MAX_CREATE_DELETE_PER_SYNC};
use super::{Template, SYNC_BATCH_PERIOD};
use crate::api::pod::PodPhase;
use crate::api::{Kind, Object};
use crate::controllers::controller::SyncCtx;
use crate::controllers::workload::{json_body, key_of};
use crate::model::apiserver::request::{ApiRequest, Verb};
use crate::sim::{SimDuration, SimTime};

fn phase(p: &Object) -> Option<PodPhase> {
    p.as_pod().map(|b| b.status.phase)
}

fn terminal(p: &Object) -> bool {
    matches!(phase(p), Some(PodPhase::Succeeded | PodPhase::Failed))
}

fn ready(p: &Object) -> bool {
    p.as_pod().is_some_and(|b| b.status.is_ready())
}

/// `isPodFailed`: the Failed phase, or (unless only failed pods are
/// replaced) deleted before succeeding, which counts orphans that never
/// reach a phase.
pub(super) fn is_pod_failed(p: &Object, params: &JobParams) -> bool {
    phase(p) == Some(PodPhase::Failed)
        || (!params.only_replace_failed
            && p.meta.deletion.is_some()
            && phase(p) != Some(PodPhase::Succeeded))
}

/// What one sync knows (`syncJobCtx`).
pub(super) struct JobCtx {
    pub job: Arc<Object>,
    pub params: Arc<JobParams>,
    pub pods: Vec<Arc<Object>>,
    pub active: Vec<Arc<Object>>,
    pub ready: i64,
    pub terminating: i64,
    pub expected_rm: BTreeSet<String>,
    pub succeeded: i64,
    pub failed: i64,
    pub prev_succeeded: BTreeSet<i64>,
    pub succeeded_indexes: BTreeSet<i64>,
    pub failed_indexes: Option<BTreeSet<i64>>,
    /// Per index, the failed pod kept until its replacement exists.
    pub delayed: BTreeMap<i64, Arc<Object>>,
    /// The condition the Job is heading for (interim or final).
    pub finished: Option<Json>,
    pub backoff: BackoffRecord,
    pub status: Map<String, Json>,
}

impl JobCtx {
    fn valid_index(&self, p: &Object) -> Option<i64> {
        index_of(p).filter(|i| *i < self.params.index_count())
    }

    /// `getValidPodsWithFilter`: pods still holding the finalizer, not in
    /// `uncounted`, and (Indexed) with a valid index.
    fn uncounted_pods(&self, uncounted: &[String], f: impl Fn(&Object) -> bool) -> Vec<&Object> {
        self.pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter(|p| !uncounted.contains(&p.meta.uid) && !self.expected_rm.contains(&p.meta.uid))
            .filter(|p| !self.params.indexed || self.valid_index(p).is_some())
            .filter(|p| f(p))
            .map(|p| p.as_ref())
            .collect()
    }

    /// `isIndexFailed`.
    fn index_failed(&self, p: &Object) -> bool {
        if !is_pod_failed(p, &self.params) {
            return false;
        }
        let counts = match &self.params.pod_failure_policy {
            Some(pfp) => {
                let v = pfp.check(p);
                if v.action == Some(super::pod_failure_policy::Action::FailIndex) {
                    return true;
                }
                v.counts
            }
            None => true,
        };
        let limit = self.params.backoff_limit_per_index.unwrap_or(0);
        counts && indexes::failure_count(p) >= limit
    }
}

impl JobController {
    pub(super) fn sync_job(
        &mut self,
        key: &str,
        job: Arc<Object>,
        template: &Template,
        params: Arc<JobParams>,
        cx: &mut SyncCtx<'_>,
    ) {
        let now = cx.now;
        let satisfied = self.expectations.satisfied(key, now);
        let mut ctx = self.job_ctx(key, job, params, now);
        self.finish_conditions(key, &mut ctx, cx);
        if ctx.params.indexed {
            Self::index_conditions(&mut ctx, now);
        }
        let mut active = ctx.active.len() as i64;
        if ctx.finished.is_some() {
            // `deleteActivePods`: the finalizers stay until they are counted.
            for p in &ctx.active {
                cx.send(ApiRequest::new(
                    Verb::Delete,
                    Kind::Pod,
                    &p.meta.namespace,
                    &p.meta.name,
                ));
            }
            ctx.terminating += active;
            ctx.ready -= ctx.active.iter().filter(|p| ready(p)).count() as i64;
            active = 0;
            if !satisfied {
                ctx.finished = None;
            }
        } else {
            if satisfied && ctx.job.meta.deletion.is_none() {
                active = self.manage_job(key, &mut ctx, template, cx);
            }
            let complete = match ctx.params.completions {
                None => ctx.succeeded > 0 && active == 0,
                Some(c) => ctx.succeeded >= c && active == 0,
            };
            if complete {
                let reason = if ctx.params.completions.is_some() {
                    "CompletionsReached"
                } else {
                    ""
                };
                let msg = "Reached expected number of succeeded pods";
                ctx.finished = Some(condition("SuccessCriteriaMet", reason, msg, now));
            }
        }
        ctx.status.insert("active".into(), json!(active));
        ctx.status.insert("ready".into(), json!(ctx.ready));
        ctx.status
            .insert("terminating".into(), json!(ctx.terminating));
        self.track(key, ctx, cx);
    }

    fn job_ctx(&self, key: &str, job: Arc<Object>, params: Arc<JobParams>, now: SimTime) -> JobCtx {
        let mut status: Map<String, Json> = json_body(&job)
            .and_then(|m| m.get("status"))
            .and_then(|s| s.as_object().cloned())
            .unwrap_or_default();
        if status.get("startTime").is_none() && !params.suspend {
            status.insert("startTime".into(), json!(now.rfc3339()));
        }
        JobCtx {
            job,
            params,
            pods: Vec::new(),
            active: Vec::new(),
            ready: 0,
            terminating: 0,
            expected_rm: self.finalizers.expected(key),
            succeeded: 0,
            failed: 0,
            prev_succeeded: BTreeSet::new(),
            succeeded_indexes: BTreeSet::new(),
            failed_indexes: None,
            delayed: BTreeMap::new(),
            finished: None,
            backoff: BackoffRecord::default(),
            status,
        }
    }
}

impl JobController {
    /// Fills the pod lists and counters of `ctx` from the cache.
    fn count_pods(&self, key: &str, ctx: &mut JobCtx, cx: &SyncCtx<'_>) {
        let ns = &ctx.job.meta.namespace;
        ctx.pods = cx
            .cache
            .controlled_by(Kind::Pod, ns, &ctx.job.meta.uid)
            .cloned()
            .collect();
        ctx.active = ctx
            .pods
            .iter()
            .filter(|p| p.meta.deletion.is_none() && !terminal(p))
            .cloned()
            .collect();
        ctx.ready = ctx.active.iter().filter(|p| ready(p)).count() as i64;
        ctx.terminating = ctx
            .pods
            .iter()
            .filter(|p| p.meta.deletion.is_some() && !terminal(p))
            .count() as i64;
        let u = Uncounted::read(&ctx.status);
        let params = ctx.params.clone();
        let new_succeeded =
            ctx.uncounted_pods(&u.succeeded, |p| phase(p) == Some(PodPhase::Succeeded));
        let new_failed = ctx.uncounted_pods(&u.failed, |p| is_pod_failed(p, &params));
        let counted_failures = match &params.pod_failure_policy {
            Some(pfp) => new_failed.iter().filter(|p| pfp.check(p).counts).count(),
            None => new_failed.len(),
        };
        let status = &ctx.status;
        let succeeded = super::tracking::counter(status, "succeeded")
            + (new_succeeded.len() + u.succeeded.len()) as i64;
        let failed =
            super::tracking::counter(status, "failed") + (counted_failures + u.failed.len()) as i64;
        let record = self.backoff.get(key).copied().unwrap_or_default();
        let backoff = record.next(&new_succeeded, &new_failed);
        ctx.succeeded = succeeded;
        ctx.failed = failed;
        ctx.backoff = backoff;
    }

    /// The failure and success checks that do not depend on indexes.
    fn finish_conditions(&mut self, key: &str, ctx: &mut JobCtx, cx: &mut SyncCtx<'_>) {
        self.count_pods(key, ctx, cx);
        let now = cx.now;
        let job = ctx.job.clone();
        ctx.finished = find_condition(&job, "SuccessCriteriaMet").cloned();
        if ctx.finished.is_none() {
            if let Some(ft) = find_condition(&job, "FailureTarget") {
                ctx.finished = Some(successor(ft, "Failed", now));
            } else if let Some(msg) = fail_job_message(ctx) {
                ctx.finished = Some(condition("FailureTarget", "PodFailurePolicy", &msg, now));
            }
        }
        if ctx.finished.is_some() {
            return;
        }
        let start = ctx
            .status
            .get("startTime")
            .and_then(Json::as_str)
            .and_then(SimTime::parse_rfc3339);
        if ctx.failed > ctx.params.backoff_limit || past_backoff_limit_on_failure(ctx) {
            let msg = "Job has reached the specified backoff limit";
            ctx.finished = Some(condition("FailureTarget", "BackoffLimitExceeded", msg, now));
        } else if let (Some(d), Some(s), false) =
            (ctx.params.active_deadline, start, ctx.params.suspend)
        {
            let at = s.after(SimDuration::from_secs(d.max(0) as u64));
            if now >= at {
                let msg = "Job was active longer than specified deadline";
                ctx.finished = Some(condition("FailureTarget", "DeadlineExceeded", msg, now));
            } else {
                cx.requeue_after(at.since(now));
            }
        }
    }

    /// Completed and failed indexes, and the checks that read them.
    fn index_conditions(ctx: &mut JobCtx, now: SimTime) {
        let c = ctx.params.index_count();
        let read = |field: &str| {
            ctx.status
                .get(field)
                .and_then(Json::as_str)
                .map(|s| indexes::parse(s, c))
        };
        ctx.prev_succeeded = read("completedIndexes").unwrap_or_default();
        let prev_failed = read("failedIndexes").unwrap_or_default();
        let mut done = ctx.prev_succeeded.clone();
        for p in ctx
            .pods
            .iter()
            .filter(|p| phase(p) == Some(PodPhase::Succeeded) && has_finalizer(p))
        {
            done.extend(ctx.valid_index(p));
        }
        ctx.succeeded_indexes = done;
        ctx.succeeded = ctx.succeeded_indexes.len() as i64;
        if ctx.params.backoff_limit_per_index.is_some() {
            let mut failed = prev_failed;
            for p in ctx
                .pods
                .iter()
                .filter(|p| has_finalizer(p) && ctx.index_failed(p))
            {
                failed.extend(ctx.valid_index(p));
            }
            let total = failed.len() as i64;
            if ctx.finished.is_none() {
                if ctx.params.max_failed_indexes.is_some_and(|m| total > m) {
                    let msg = "Job has exceeded the specified maximal number of failed indexes";
                    ctx.finished = Some(condition(
                        "FailureTarget",
                        "MaxFailedIndexesExceeded",
                        msg,
                        now,
                    ));
                } else if total > 0 && total + ctx.succeeded >= c {
                    let msg = "Job has failed indexes";
                    ctx.finished = Some(condition("FailureTarget", "FailedIndexes", msg, now));
                }
            }
            ctx.failed_indexes = Some(failed);
            ctx.delayed = delayed_deletions(ctx);
        }
        if ctx.finished.is_none() {
            if let Some(sp) = &ctx.params.success_policy {
                if let Some(msg) = sp.met(c, &ctx.succeeded_indexes) {
                    ctx.finished = Some(condition(
                        "SuccessCriteriaMet",
                        success_policy::REASON,
                        &msg,
                        now,
                    ));
                }
            }
        }
    }
}

/// `getFailJobMessage`: the message of the first failed pod a `FailJob`
/// rule matches.
fn fail_job_message(ctx: &JobCtx) -> Option<String> {
    let pfp = ctx.params.pod_failure_policy.as_ref()?;
    ctx.pods
        .iter()
        .filter(|p| is_pod_failed(p, &ctx.params))
        .find_map(|p| pfp.check(p).fail_job)
}

/// `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure` the
/// kubelet's restarts of running and pending pods count as failures.
fn past_backoff_limit_on_failure(ctx: &JobCtx) -> bool {
    if !ctx.params.restart_on_failure {
        return false;
    }
    let restarts: i64 = ctx
        .pods
        .iter()
        .filter(|p| matches!(phase(p), Some(PodPhase::Running | PodPhase::Pending)))
        .filter_map(|p| p.as_pod())
        .flat_map(|b| {
            b.status
                .init_container_statuses
                .iter()
                .chain(&b.status.container_statuses)
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    if ctx.params.backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= ctx.params.backoff_limit
    }
}

/// `getPodsWithDelayedDeletionPerIndex`: for each index neither done,
/// failed nor running, its latest failed pod, whose finalizer stays until
/// the replacement carries its failure count on.
fn delayed_deletions(ctx: &JobCtx) -> BTreeMap<i64, Arc<Object>> {
    let active: BTreeSet<i64> = ctx.active.iter().filter_map(|p| index_of(p)).collect();
    let failed = ctx.failed_indexes.clone().unwrap_or_default();
    let mut out: BTreeMap<i64, Arc<Object>> = BTreeMap::new();
    for p in &ctx.pods {
        if !has_finalizer(p)
            || ctx.expected_rm.contains(&p.meta.uid)
            || !is_pod_failed(p, &ctx.params)
        {
            continue;
        }
        let Some(ix) = ctx.valid_index(p) else {
            continue;
        };
        if ctx.succeeded_indexes.contains(&ix) || failed.contains(&ix) || active.contains(&ix) {
            continue;
        }
        let later = |last: &Object| {
            indexes::absolute_failure_count(last) <= indexes::absolute_failure_count(p)
                && backoff::finished_time(p) >= backoff::finished_time(last)
        };
        match out.get(&ix) {
            Some(last) if !later(last) => {}
            _ => {
                out.insert(ix, p.clone());
            }
        }
    }
    out
}

/// Whether a pod is further from running, so deleted first
/// (`controller.ActivePods`): unscheduled, pending, not ready, more
/// restarts, newer.
fn deletion_rank(
    p: &Object,
) -> (
    bool,
    u8,
    bool,
    std::cmp::Reverse<u32>,
    std::cmp::Reverse<SimTime>,
) {
    let body = p.as_pod();
    let scheduled = body.is_some_and(|b| b.node_name.is_some());
    let phase_rank = match phase(p) {
        Some(PodPhase::Pending) => 0,
        Some(PodPhase::Running) => 2,
        _ => 1,
    };
    let restarts = body
        .map(|b| {
            b.status
                .container_statuses
                .iter()
                .map(|c| c.restart_count)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    (
        scheduled,
        phase_rank,
        ready(p),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(p.meta.creation),
    )
}

impl JobController {
    /// `manageJob`: returns the number of active pods after its creations
    /// and deletions.
    fn manage_job(
        &mut self,
        key: &str,
        ctx: &mut JobCtx,
        template: &Template,
        cx: &mut SyncCtx<'_>,
    ) -> i64 {
        let now = cx.now;
        let p = ctx.params.clone();
        let active = ctx.active.len() as i64;
        if p.suspend {
            let all = ctx.active.clone();
            return active - self.delete_job_pods(key, ctx, &all, cx);
        }
        let want = match p.completions {
            None if ctx.succeeded > 0 => active,
            None => p.parallelism,
            Some(c) => (c - ctx.succeeded).clamp(0, p.parallelism),
        };
        let mut doomed = pods_for_removal(ctx, (active - want).max(0) as usize);
        doomed.truncate(MAX_CREATE_DELETE_PER_SYNC);
        if !doomed.is_empty() {
            return active - self.delete_job_pods(key, ctx, &doomed, cx);
        }
        let terminating = if p.only_replace_failed {
            ctx.terminating
        } else {
            0
        };
        let diff = want - terminating - active;
        if diff <= 0 {
            return active;
        }
        if p.backoff_limit_per_index.is_none() {
            let wait = ctx.backoff.remaining(now);
            if !wait.is_zero() {
                // Upstream reports no active pods while it waits.
                cx.requeue_after(wait.max(SYNC_BATCH_PERIOD));
                return 0;
            }
        }
        let diff = (diff as usize).min(MAX_CREATE_DELETE_PER_SYNC);
        let mut to_create: Vec<Option<i64>> = vec![None; diff];
        if p.indexed {
            let pending = first_pending_indexes(ctx, diff);
            let (ready_now, wait) = if p.backoff_limit_per_index.is_some() {
                indexes_ready(ctx, pending, now)
            } else {
                (pending, SimDuration::ZERO)
            };
            if !wait.is_zero() {
                cx.requeue_after(wait.max(SYNC_BATCH_PERIOD));
                return 0;
            }
            to_create = ready_now.into_iter().map(Some).collect();
        }
        self.expectations
            .expect(key, to_create.len() as i64, BTreeSet::new(), now);
        for index in &to_create {
            let mut req = ApiRequest::new(Verb::Create, Kind::Pod, &ctx.job.meta.namespace, "");
            req.body = Some(Arc::new(new_pod(ctx, template, *index)));
            cx.send(req);
        }
        active + to_create.len() as i64
    }

    /// `deleteJobPods`: the finalizer goes first (a pod removed for scaling
    /// is not a failure), then the pod. Returns how many.
    fn delete_job_pods(
        &mut self,
        key: &str,
        ctx: &mut JobCtx,
        pods: &[Arc<Object>],
        cx: &mut SyncCtx<'_>,
    ) -> i64 {
        let keys: BTreeSet<String> = pods.iter().map(|p| key_of(p)).collect();
        self.expectations.expect(key, 0, keys, cx.now);
        for p in pods {
            if has_finalizer(p) {
                cx.send(super::tracking::removal(p));
            }
            cx.send(ApiRequest::new(
                Verb::Delete,
                Kind::Pod,
                &p.meta.namespace,
                &p.meta.name,
            ));
        }
        let n = pods.len() as i64;
        ctx.terminating += n;
        ctx.ready -= pods.iter().filter(|p| ready(p)).count() as i64;
        n
    }
}

/// `activePodsForRemoval`: for an Indexed Job, pods without a valid index
/// and all but the best of each duplicated index; then the least advanced.
fn pods_for_removal(ctx: &JobCtx, at_least: usize) -> Vec<Arc<Object>> {
    let mut rm: Vec<Arc<Object>> = Vec::new();
    let mut left: Vec<Arc<Object>> = Vec::new();
    if ctx.params.indexed {
        let mut by_index: BTreeMap<i64, Vec<Arc<Object>>> = BTreeMap::new();
        for p in &ctx.active {
            match ctx.valid_index(p) {
                Some(i) => by_index.entry(i).or_default().push(p.clone()),
                None => rm.push(p.clone()),
            }
        }
        for (_, mut same) in by_index {
            same.sort_by_key(|p| deletion_rank(p));
            let keep = same.pop().expect("grouped pods are never empty");
            rm.extend(same);
            left.push(keep);
        }
    } else {
        left = ctx.active.clone();
    }
    if rm.len() < at_least {
        left.sort_by(|a, b| {
            deletion_rank(a)
                .cmp(&deletion_rank(b))
                .then(a.meta.name.cmp(&b.meta.name))
        });
        rm.extend(left.into_iter().take(at_least - rm.len()));
    }
    rm
}

/// `firstPendingIndexes`: the lowest indexes not done, running, failed
/// or (with only failed pods replaced) still terminating.
fn first_pending_indexes(ctx: &JobCtx, count: usize) -> Vec<i64> {
    let mut taken: BTreeSet<i64> = ctx.succeeded_indexes.clone();
    taken.extend(ctx.active.iter().filter_map(|p| index_of(p)));
    if ctx.params.only_replace_failed {
        let terminating = ctx
            .pods
            .iter()
            .filter(|p| p.meta.deletion.is_some() && !terminal(p));
        taken.extend(terminating.filter_map(|p| index_of(p)));
    }
    if let Some(f) = &ctx.failed_indexes {
        taken.extend(f.iter().copied());
    }
    (0..ctx.params.index_count())
        .filter(|i| !taken.contains(i))
        .take(count)
        .collect()
}

/// `getPodCreationInfoForIndependentIndexes`: the indexes whose own
/// back-off has passed, or, if none has, the shortest wait.
fn indexes_ready(ctx: &JobCtx, pending: Vec<i64>, now: SimTime) -> (Vec<i64>, SimDuration) {
    let mut ready_now = Vec::new();
    let mut min_wait: Option<SimDuration> = None;
    for ix in pending {
        let wait = backoff::remaining_for_index(ctx.delayed.get(&ix).map(|p| p.as_ref()), now);
        if wait.is_zero() {
            ready_now.push(ix);
        } else {
            min_wait = Some(min_wait.map_or(wait, |m| m.min(wait)));
        }
    }
    if ready_now.is_empty() {
        (ready_now, min_wait.unwrap_or(SimDuration::ZERO))
    } else {
        (ready_now, SimDuration::ZERO)
    }
}

/// A pod for the Job, for `index` if it is Indexed, holding the tracking
/// finalizer; with `backoffLimitPerIndex` it carries the index's failure
/// counts on from the pod it replaces.
fn new_pod(ctx: &JobCtx, t: &Template, index: Option<i64>) -> Object {
    let job = &ctx.job;
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
        if ctx.params.backoff_limit_per_index.is_some() {
            let (counted, ignored) = failure_counts(ctx, ctx.delayed.get(&i));
            ann.insert(indexes::INDEX_FAILURE_COUNT.into(), counted.to_string());
            if ignored > 0 {
                ann.insert(
                    indexes::INDEX_IGNORED_FAILURE_COUNT.into(),
                    ignored.to_string(),
                );
            }
        }
        pod.meta.annotations = Arc::new(ann);
    }
    pod.meta.labels = Arc::new(labels);
    pod.meta.finalizers.push(super::tracking::FINALIZER.into());
    pod
}

/// `getNewIndexFailureCounts`: the replaced pod's counts plus its own failure.
fn failure_counts(ctx: &JobCtx, replaced: Option<&Arc<Object>>) -> (i64, i64) {
    let Some(p) = replaced else { return (0, 0) };
    let counted = indexes::failure_count(p);
    let ignored = indexes::absolute_failure_count(p) - counted;
    let counts = ctx
        .params
        .pod_failure_policy
        .as_ref()
        .is_none_or(|f| f.check(p).counts);
    if counts {
        (counted + 1, ignored)
    } else {
        (counted, ignored + 1)
    }
}
