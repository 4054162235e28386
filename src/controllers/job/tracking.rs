//! Pod tracking with the `batch.kubernetes.io/job-tracking` finalizer
//! (`trackJobStatusAndRemoveFinalizers`): every pod the controller creates
//! carries the finalizer, so it cannot vanish before it is counted. A
//! finished pod is counted in three durable steps: its UID is written to
//! `status.uncountedTerminatedPods`, then its finalizer is removed, then
//! the UID moves into `status.succeeded` / `status.failed`. A crash between
//! any two steps leaves enough behind for the next sync to finish the job,
//! and never to count the pod twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use crate::api::Object;
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};

use super::backoff::BackoffRecord;

/// `batch.JobTrackingFinalizer`.
pub const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// `MaxUncountedPods`: how many UIDs one sync adds to the status at most.
pub const MAX_UNCOUNTED_PODS: usize = 500;

pub fn has_finalizer(p: &Object) -> bool {
    p.meta.finalizers.iter().any(|f| f == FINALIZER)
}

/// The patch that removes the tracking finalizer and keeps any other
/// (upstream sends `$deleteFromPrimitiveList/finalizers`).
pub fn removal(p: &Object) -> ApiRequest {
    let rest: Vec<&String> = p
        .meta
        .finalizers
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let mut req = ApiRequest::new(Verb::Patch, p.kind, &p.meta.namespace, &p.meta.name);
    req.patch = Some(PatchOp::Merge(json!({"metadata": {"finalizers": rest}})));
    req
}

/// `status.uncountedTerminatedPods`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uncounted {
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
}

impl Uncounted {
    pub fn read(status: &Map<String, Json>) -> Uncounted {
        let list = |k: &str| -> Vec<String> {
            status
                .get("uncountedTerminatedPods")
                .and_then(|u| u.get(k))
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        Uncounted {
            succeeded: list("succeeded"),
            failed: list("failed"),
        }
    }

    pub fn write(&self, status: &mut Map<String, Json>) {
        let mut m = Map::new();
        if !self.succeeded.is_empty() {
            m.insert("succeeded".into(), json!(self.succeeded));
        }
        if !self.failed.is_empty() {
            m.insert("failed".into(), json!(self.failed));
        }
        status.insert("uncountedTerminatedPods".into(), Json::Object(m));
    }

    pub fn len(&self) -> usize {
        self.succeeded.len() + self.failed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn counter(status: &Map<String, Json>, field: &str) -> i64 {
    status.get(field).and_then(Json::as_i64).unwrap_or(0)
}

/// `cleanUncountedPodsWithoutFinalizers`: UIDs whose pod no longer has the
/// finalizer (or is gone) move from the uncounted lists to the counters.
/// Returns whether the status changed.
pub fn clean_uncounted(status: &mut Map<String, Json>, with_finalizer: &BTreeSet<String>) -> bool {
    let mut u = Uncounted::read(status);
    let (s_keep, s_done): (Vec<String>, Vec<String>) = u
        .succeeded
        .drain(..)
        .partition(|uid| with_finalizer.contains(uid));
    let (f_keep, f_done): (Vec<String>, Vec<String>) = u
        .failed
        .drain(..)
        .partition(|uid| with_finalizer.contains(uid));
    if s_done.is_empty() && f_done.is_empty() {
        return false;
    }
    let succeeded = counter(status, "succeeded") + s_done.len() as i64;
    let failed = counter(status, "failed") + f_done.len() as i64;
    status.insert("succeeded".into(), json!(succeeded));
    status.insert("failed".into(), json!(failed));
    Uncounted {
        succeeded: s_keep,
        failed: f_keep,
    }
    .write(status);
    true
}

/// `uidTrackingExpectations`: pods whose finalizer removal is in flight,
/// per Job, so a sync before the informer catches up skips them.
#[derive(Clone, Debug, Default)]
pub struct FinalizerExpectations {
    by_job: BTreeMap<String, BTreeSet<String>>,
}

impl FinalizerExpectations {
    pub fn expected(&self, job: &str) -> BTreeSet<String> {
        self.by_job.get(job).cloned().unwrap_or_default()
    }

    pub fn expect(&mut self, job: &str, uid: &str) {
        self.by_job
            .entry(job.to_string())
            .or_default()
            .insert(uid.to_string());
    }

    pub fn observed(&mut self, job: &str, uid: &str) {
        if let Some(s) = self.by_job.get_mut(job) {
            s.remove(uid);
            if s.is_empty() {
                self.by_job.remove(job);
            }
        }
    }

    pub fn delete(&mut self, job: &str) {
        self.by_job.remove(job);
    }

    pub fn clear(&mut self) {
        self.by_job.clear();
    }
}

/// Where a flush (`flushUncountedAndRemoveFinalizers` and the status write
/// after it) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The status with the new uncounted UIDs is being written.
    Adding,
    /// Finalizer patches are in flight.
    Removing,
    /// The status with the counters (and perhaps the terminal condition)
    /// is being written.
    Closing,
}

/// One sync's tracking work that spans several API round trips.
#[derive(Clone, Debug)]
pub struct Flush {
    pub stage: Stage,
    /// The Job as last written (its resourceVersion guards the next write).
    pub job: Arc<Object>,
    pub status: Map<String, Json>,
    /// Pods whose finalizer goes once the uncounted UIDs are durable.
    pub remove: Vec<Arc<Object>>,
    pub outstanding: usize,
    /// UIDs of pods that still hold the finalizer.
    pub with_finalizer: BTreeSet<String>,
    pub removal_failed: bool,
    /// The terminal condition (`Complete` or `Failed`) to add once no pod
    /// is uncounted or terminating.
    pub finished: Option<Json>,
    pub terminating: i64,
    /// The sync stopped at `MAX_UNCOUNTED_PODS`: not finished yet.
    pub reached_max: bool,
    /// The back-off record to keep once the first write is durable.
    pub backoff: BackoffRecord,
}
