//! The CronJob controller (`cronjob_controllerv2.go`): at each scheduled
//! time it creates a Job named `<cronjob>-<minutes since the Unix epoch>`
//! from `jobTemplate`, honouring `concurrencyPolicy` (Allow, Forbid,
//! Replace), `startingDeadlineSeconds` and `suspend`; it keeps
//! `successfulJobsHistoryLimit` finished Jobs (3) and
//! `failedJobsHistoryLimit` failed ones (1), deleting the oldest. It wakes
//! for the next scheduled time on the virtual clock.

pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::job;
use super::workload::controller_key;
use super::workload::{
    body_path, body_str, controlled_by, json_body, json_object, key_of, owner_ref_to, split_key,
    update_status,
};
use super::workqueue::WorkQueue;
use crate::api::object::Meta;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::time::EPOCH_UNIX_SECS;
use crate::sim::{SimDuration, SimTime};
use schedule::Schedule;

/// `batch.kubernetes.io/cronjob-scheduled-timestamp`.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// `nextScheduleDelta`: how long after a scheduled time the controller wakes.
const NEXT_SCHEDULE_DELTA: SimDuration = SimDuration::from_millis(100);

#[derive(Default)]
pub struct CronJobController {
    schedules: BTreeMap<String, (String, Result<Schedule, String>)>,
    /// Jobs whose completion has been reported, until they are deleted (the
    /// status that drops them from `active` may not be back yet).
    reported: BTreeSet<String>,
}

/// The Job name for a scheduled time (`getJobName`).
pub fn job_name(cronjob: &str, scheduled: SimTime) -> String {
    let unix = EPOCH_UNIX_SECS + scheduled.nanos() / 1_000_000_000;
    format!("{cronjob}-{}", unix / 60)
}

/// `mostRecentScheduleTime`: the latest activation in `(since, now]`, and
/// how many were missed in all.
pub fn most_recent(s: &Schedule, since: SimTime, now: SimTime) -> (Option<SimTime>, u64) {
    let mut last = None;
    let mut missed = 0;
    let mut t = since;
    while let Some(next) = s.next_after(t) {
        if next > now {
            break;
        }
        last = Some(next);
        missed += 1;
        t = next;
        if missed > 10_000 {
            break;
        }
    }
    (last, missed)
}

fn scheduled_time(job: &Object) -> Option<SimTime> {
    job.meta
        .annotations
        .get(SCHEDULED_TIMESTAMP)
        .and_then(|s| SimTime::parse_rfc3339(s))
}

fn job_ref(job: &Object) -> Json {
    json!({"apiVersion": "batch/v1", "kind": "Job", "name": job.meta.name,
           "namespace": job.meta.namespace, "uid": job.meta.uid,
           "resourceVersion": job.meta.resource_version.to_string()})
}

impl CronJobController {
    fn schedule(&mut self, cj: &Object) -> Result<Schedule, String> {
        let text = body_str(cj, &["spec", "schedule"], "").to_string();
        let key = key_of(cj);
        match self.schedules.get(&key) {
            Some((t, s)) if *t == text => s.clone(),
            _ => {
                let s = Schedule::parse(&text);
                self.schedules.insert(key, (text, s.clone()));
                s
            }
        }
    }

    /// The status a sync would write: active children, last schedule and
    /// last success.
    fn status(cj: &Object, children: &[&Arc<Object>], last_schedule: Option<SimTime>) -> Json {
        let mut status: Map<String, Json> = json_body(cj)
            .and_then(|m| m.get("status"))
            .and_then(|s| s.as_object().cloned())
            .unwrap_or_default();
        let active: Vec<Json> = children
            .iter()
            .filter(|j| job::finished(j).is_none() && j.meta.deletion.is_none())
            .map(|j| job_ref(j))
            .collect();
        if active.is_empty() {
            status.remove("active");
        } else {
            status.insert("active".into(), Json::Array(active));
        }
        if let Some(t) = last_schedule {
            status.insert("lastScheduleTime".into(), json!(t.rfc3339()));
        }
        let last_success = children
            .iter()
            .filter(|j| job::finished(j) == Some("Complete"))
            .filter_map(|j| {
                body_path(j, &["status", "completionTime"])
                    .and_then(Json::as_str)
                    .and_then(SimTime::parse_rfc3339)
            })
            .max();
        if let Some(t) = last_success {
            status.insert("lastSuccessfulTime".into(), json!(t.rfc3339()));
        }
        Json::Object(status)
    }

    fn delete_job(cj: &Object, job: &Object, cx: &mut SyncCtx<'_>) {
        let mut req = ApiRequest::new(Verb::Delete, Kind::Job, &cj.meta.namespace, &job.meta.name);
        req.propagation = Some("Background");
        cx.send(req);
    }
}

impl Controller for CronJobController {
    fn name(&self) -> &'static str {
        "cronjob-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        match ev.kind {
            Kind::CronJob => {
                if ev.new.is_none() {
                    self.schedules.remove(&key_of(ev.object()));
                }
                queue.add(&key_of(ev.object()));
            }
            Kind::Job => {
                let j = ev.object();
                if ev.new.is_none() {
                    self.reported.remove(&j.meta.uid);
                }
                if let Some(k) = controller_key(j, Kind::CronJob) {
                    queue.add(&k);
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(cj) = cx.cache.get(Kind::CronJob, ns, name).cloned() else {
            self.schedules.remove(key);
            return;
        };
        let now = cx.now;
        let cache = cx.cache;
        let mut children: Vec<&Arc<Object>> = cache
            .list(Kind::Job, ns)
            .filter(|j| controlled_by(j, &cj.meta.uid))
            .collect();
        children.sort_by_key(|j| {
            (
                scheduled_time(j).unwrap_or(j.meta.creation),
                j.meta.name.clone(),
            )
        });
        let recorded = body_path(&cj, &["status", "lastScheduleTime"])
            .and_then(Json::as_str)
            .and_then(SimTime::parse_rfc3339);
        let mut last_schedule =
            recorded.max(children.iter().filter_map(|j| scheduled_time(j)).max());

        // Finished children seen for the first time.
        let active_before: Vec<String> = body_path(&cj, &["status", "active"])
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for j in &children {
            if let Some(cond) = job::finished(j) {
                if active_before.contains(&j.meta.name) && self.reported.insert(j.meta.uid.clone())
                {
                    cx.event(
                        &cj,
                        "Normal",
                        "SawCompletedJob",
                        format!("Saw completed job: {}, condition: {cond}", j.meta.name),
                    );
                }
            }
        }
        for gone in active_before
            .iter()
            .filter(|n| !children.iter().any(|j| &j.meta.name == *n))
        {
            cx.event(
                &cj,
                "Normal",
                "MissingJob",
                format!("Active job went missing: {gone}"),
            );
        }

        // History limits: the oldest finished Jobs beyond each limit go.
        let limit = |field: &str, default: i64| {
            body_path(&cj, &["spec", field])
                .and_then(Json::as_i64)
                .unwrap_or(default)
                .max(0) as usize
        };
        for (cond, keep) in [
            ("Complete", limit("successfulJobsHistoryLimit", 3)),
            ("Failed", limit("failedJobsHistoryLimit", 1)),
        ] {
            let done: Vec<&&Arc<Object>> = children
                .iter()
                .filter(|j| job::finished(j) == Some(cond) && j.meta.deletion.is_none())
                .collect();
            if done.len() > keep {
                for j in &done[..done.len() - keep] {
                    Self::delete_job(&cj, j, cx);
                }
            }
        }

        if cj.meta.deletion.is_some() {
            return;
        }
        let sched = match self.schedule(&cj) {
            Ok(s) => s,
            Err(e) => {
                cx.event(
                    &cj,
                    "Warning",
                    "UnparseableSchedule",
                    format!(
                        "unparseable schedule: {:?} : {e}",
                        body_str(&cj, &["spec", "schedule"], "")
                    ),
                );
                return;
            }
        };
        let tz = body_str(&cj, &["spec", "timeZone"], "UTC");
        if !matches!(
            tz,
            "UTC" | "Etc/UTC" | "Etc/Universal" | "Universal" | "Zulu"
        ) {
            cx.event(
                &cj,
                "Warning",
                "UnknownTimeZone",
                format!("invalid timeZone: {tz:?}: kubesim evaluates schedules in UTC only"),
            );
            return;
        }
        let suspended = body_path(&cj, &["spec", "suspend"]).and_then(Json::as_bool) == Some(true);
        let since = last_schedule.unwrap_or(cj.meta.creation);
        let mut create: Option<SimTime> = None;
        if !suspended {
            let (recent, missed) = most_recent(&sched, since, now);
            if missed > 100 {
                cx.event(
                    &cj,
                    "Warning",
                    "TooManyMissedTimes",
                    format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
                );
            }
            if let Some(t) = recent {
                let deadline =
                    body_path(&cj, &["spec", "startingDeadlineSeconds"]).and_then(Json::as_i64);
                let too_late = deadline
                    .is_some_and(|d| t.after(SimDuration::from_secs(d.max(0) as u64)) < now);
                let name_t = job_name(name, t);
                let exists = children.iter().any(|j| j.meta.name == name_t);
                let active: Vec<&&Arc<Object>> = children
                    .iter()
                    .filter(|j| job::finished(j).is_none() && j.meta.deletion.is_none())
                    .collect();
                let policy = body_str(&cj, &["spec", "concurrencyPolicy"], "Allow");
                if too_late {
                    cx.event(
                        &cj,
                        "Warning",
                        "MissSchedule",
                        format!("Missed scheduled time to start a job: {}", t.rfc3339()),
                    );
                    last_schedule = Some(t);
                } else if exists {
                    last_schedule = last_schedule.max(Some(t));
                } else if policy == "Forbid" && !active.is_empty() {
                    cx.event(
                        &cj,
                        "Normal",
                        "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                    );
                } else {
                    if policy == "Replace" {
                        for j in &active {
                            Self::delete_job(&cj, j, cx);
                        }
                    }
                    create = Some(t);
                }
            }
        }
        match create {
            Some(t) => {
                let template = body_path(&cj, &["spec", "jobTemplate"])
                    .cloned()
                    .unwrap_or(json!({}));
                let labels = template
                    .pointer("/metadata/labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                let mut annotations: BTreeMap<String, String> = template
                    .pointer("/metadata/annotations")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                annotations.insert(SCHEDULED_TIMESTAMP.into(), t.rfc3339());
                let job = json_object(
                    Kind::Job,
                    Meta {
                        name: job_name(name, t),
                        namespace: ns.to_string(),
                        labels: Arc::new(labels),
                        annotations: Arc::new(annotations),
                        owner_references: vec![owner_ref_to(&cj)],
                        ..Default::default()
                    },
                    json!({"spec": template.get("spec").cloned().unwrap_or(json!({}))}),
                );
                let mut req = ApiRequest::new(Verb::Create, Kind::Job, ns, "");
                req.body = Some(Arc::new(job));
                cx.send(req);
                // The status follows the creation, with the new Job in it.
            }
            None => update_status(cx, &cj, Self::status(&cj, &children, last_schedule)),
        }
        if !suspended {
            if let Some(next) = sched.next_after(now.max(since)) {
                cx.requeue_after(next.after(NEXT_SCHEDULE_DELTA).since(now));
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
        let ok = resp.is_some_and(|r| r.ok());
        let (ns, name) = split_key(key);
        let Some(cj) = cx.cache.get(Kind::CronJob, ns, name).cloned() else {
            return;
        };
        match (req.verb, req.kind) {
            (Verb::Create, Kind::Job) => {
                let job_name = req
                    .body
                    .as_ref()
                    .map(|b| b.meta.name.clone())
                    .unwrap_or_default();
                match resp.filter(|r| r.ok()).and_then(|r| r.object.clone()) {
                    Some(created) => {
                        cx.event(
                            &cj,
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created job {job_name}"),
                        );
                        let cache = cx.cache;
                        let mut children: Vec<&Arc<Object>> = cache
                            .list(Kind::Job, ns)
                            .filter(|j| {
                                controlled_by(j, &cj.meta.uid) && j.meta.name != created.meta.name
                            })
                            .collect();
                        children.push(&created);
                        let t = scheduled_time(&created);
                        let recorded = body_path(&cj, &["status", "lastScheduleTime"])
                            .and_then(Json::as_str)
                            .and_then(SimTime::parse_rfc3339);
                        let status = Self::status(&cj, &children, recorded.max(t));
                        update_status(cx, &cj, status);
                    }
                    None => {
                        if resp.is_some_and(|r| r.code == 409) {
                            // Already made for this time (a stale cache).
                            return;
                        }
                        let msg = resp
                            .map(|r| r.message.clone())
                            .unwrap_or_else(|| "the request timed out".into());
                        cx.event(
                            &cj,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating job: {msg}"),
                        );
                        cx.failed = true;
                    }
                }
            }
            (Verb::Delete, Kind::Job) => {
                if ok {
                    cx.event(
                        &cj,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted job {}", req.name),
                    );
                } else if resp.is_none_or(|r| r.code != 404) {
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
        self.schedules.clear();
        self.reported.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_count_minutes_since_the_unix_epoch() {
        let t = SimTime::parse_rfc3339("2025-01-01T00:05:00Z").unwrap();
        assert_eq!(
            job_name("hello", t),
            format!("hello-{}", (1_735_689_600 + 300) / 60)
        );
    }

    #[test]
    fn most_recent_finds_the_latest_missed_time() {
        let s = Schedule::parse("*/1 * * * *").unwrap();
        let (t, n) = most_recent(
            &s,
            SimTime::ZERO,
            SimTime(SimDuration::from_secs(185).nanos()),
        );
        assert_eq!(t.unwrap().rfc3339(), "2025-01-01T00:03:00Z");
        assert_eq!(n, 3);
    }
}
