//! What a sync reads of a Job's spec, with the API's defaults applied
//! (`SetDefaults_Job`): read once per generation.

use k8s_openapi::api::batch::v1 as batch;

use super::pod_failure_policy::PodFailurePolicy;
use super::success_policy::SuccessPolicy;
use crate::api::Object;
use crate::controllers::workload::typed;

/// `spec.backoffLimit`'s default without `backoffLimitPerIndex`.
pub const DEFAULT_BACKOFF_LIMIT: i64 = 6;

#[derive(Clone, Debug)]
pub struct JobParams {
    pub completions: Option<i64>,
    pub parallelism: i64,
    /// 6, or `MaxInt32` when `backoffLimitPerIndex` is set.
    pub backoff_limit: i64,
    pub backoff_limit_per_index: Option<i64>,
    pub max_failed_indexes: Option<i64>,
    pub indexed: bool,
    pub suspend: bool,
    pub active_deadline: Option<i64>,
    pub pod_failure_policy: Option<PodFailurePolicy>,
    pub success_policy: Option<SuccessPolicy>,
    /// `onlyReplaceFailedPods`: `podReplacementPolicy: Failed`, the default
    /// with a pod failure policy. Terminating pods are neither replaced nor
    /// counted as failed until they reach the Failed phase.
    pub only_replace_failed: bool,
    pub restart_on_failure: bool,
}

impl JobParams {
    pub fn read(job: &Object) -> Result<JobParams, String> {
        let j: batch::Job = typed(job).ok_or("the Job does not read as batch/v1")?;
        let s = j.spec.ok_or("no spec")?;
        let per_index = s.backoff_limit_per_index.map(i64::from);
        let backoff_limit = s
            .backoff_limit
            .map(i64::from)
            .unwrap_or(if per_index.is_some() {
                i64::from(i32::MAX)
            } else {
                DEFAULT_BACKOFF_LIMIT
            });
        let restart = s
            .template
            .spec
            .as_ref()
            .and_then(|p| p.restart_policy.clone());
        Ok(JobParams {
            completions: s.completions.map(i64::from),
            parallelism: s.parallelism.map(i64::from).unwrap_or(1).max(0),
            backoff_limit,
            backoff_limit_per_index: per_index,
            max_failed_indexes: s.max_failed_indexes.map(i64::from),
            indexed: s.completion_mode.as_deref() == Some("Indexed"),
            suspend: s.suspend == Some(true),
            active_deadline: s.active_deadline_seconds,
            only_replace_failed: s.pod_failure_policy.is_some()
                || s.pod_replacement_policy.as_deref() == Some("Failed"),
            pod_failure_policy: s
                .pod_failure_policy
                .as_ref()
                .map(PodFailurePolicy::from_api),
            success_policy: s.success_policy.as_ref().map(SuccessPolicy::from_api),
            restart_on_failure: restart.as_deref() == Some("OnFailure"),
        })
    }

    /// Completions of an Indexed Job (validation requires them).
    pub fn index_count(&self) -> i64 {
        self.completions.unwrap_or(0)
    }
}
