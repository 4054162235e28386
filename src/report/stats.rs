//! Measurements gathered during a run, for `summary.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sim::{SimDuration, SimTime};

/// Samples of a latency, kept exactly for percentiles.
#[derive(Default, Clone, Debug)]
pub struct Samples {
    values: Vec<u64>,
}

impl Samples {
    pub fn record(&mut self, d: SimDuration) {
        self.values.push(d.nanos());
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.values.extend_from_slice(&other.values);
    }

    /// The nearest-rank `q` quantile in milliseconds of these samples and
    /// `unfinished` more that never ended (each longer than any sample):
    /// None when the rank falls among the unfinished ones.
    pub fn quantile_with_unfinished(&self, q: f64, unfinished: u64) -> Option<f64> {
        let total = self.values.len() + unfinished as usize;
        if total == 0 {
            return Some(0.0);
        }
        let rank = ((q * total as f64).ceil() as usize).clamp(1, total);
        if rank > self.values.len() {
            return None;
        }
        let mut v = self.values.clone();
        v.sort_unstable();
        Some(round3(v[rank - 1] as f64 / 1e6))
    }

    /// Nearest-rank percentiles in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let mut v = self.values.clone();
        v.sort_unstable();
        let pick = |q: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            round3(v[rank - 1] as f64 / 1e6)
        };
        LatencySummary {
            count: v.len(),
            p50_ms: pick(0.50),
            p90_ms: pick(0.90),
            p99_ms: pick(0.99),
            max_ms: v.last().map(|x| round3(*x as f64 / 1e6)).unwrap_or(0.0),
        }
    }
}

/// `x` to three decimal places, as the summary shows its figures.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The latencies a run measures, each sample attributed by when it began
/// (a proposal's arrival, a request's admission, a pod's creation) to the
/// bootstrap or to the run after it (see [`super::bootstrap`]).
#[derive(Default)]
pub struct Latencies {
    /// etcd: proposal arrival to commit and apply on the member that took
    /// it, per committed proposal: exactly the trace's `Commit` span.
    pub etcd_commit: Samples,
    /// Per verb: the apiserver's admission to answer, exactly the trace's
    /// `Request` span (upstream's `apiserver_request_duration_seconds`).
    pub api_latency: BTreeMap<String, Samples>,
    /// Pod creation to the first committed write with a node, Running, and
    /// Ready=True (the trace's `Write` records; see [`super::pod_milestones`]).
    pub pod_scheduling: Samples,
    pub pod_created_to_running: Samples,
    pub pod_created_to_ready: Samples,
    /// The kubelet's pod startup SLI (`kubelet_pod_start_sli_duration_seconds`):
    /// created to all containers started and observed on watch, less the
    /// time spent pulling images (see `model::kubelet::startup_tracker`).
    pub pod_startup_sli: Samples,
}

/// Everything a run measures.
#[derive(Default)]
pub struct Stats {
    pub wal_fsync: Samples,
    pub etcd_timeouts: u64,
    pub leader_changes: u64,
    /// Per HTTP status code, every answer (bootstrap included).
    pub api_codes: BTreeMap<u16, u64>,
    pub api_throttled: u64,
    /// Latencies of what began after the bootstrap ended.
    pub run: Latencies,
    /// When the cluster came up, and the latencies of what began before.
    pub bootstrap: super::bootstrap::Bootstrap,
    /// Which pods have been seen bound, Running and Ready.
    pub pods: super::pod_milestones::PodMilestones,
    /// Pending pods, utilisation, node-hours and cost over the whole run.
    pub over_time: super::over_time::OverTime,
    pub watch_relists: u64,
    /// Watch streams resumed from their last revision after they ended.
    pub watch_restarts: u64,
    /// Batches that arrived out of sequence on a stream: TCP forbids it, so
    /// any count is a bug in the model.
    pub watch_gaps: u64,
    pub watch_events_sent: u64,
    /// What the scenario driver did and what came of it, in order.
    pub actions: Vec<ActionOutcome>,
    /// What the workload submitter sent and what came of it.
    pub workload: WorkloadCounts,
    /// The cloud provider's machines for the cluster autoscaler.
    pub autoscaler: AutoscalerCounts,
}

/// What the cloud provider did for the cluster autoscaler
/// ([`crate::autoscaler::cloud`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoscalerCounts {
    /// IncreaseSize calls accepted, and the machines they asked for.
    pub scale_ups: u64,
    pub nodes_added: u64,
    /// Machines terminated by DeleteNodes (scale-down, or provisioning
    /// that ran past the max node provision time).
    pub nodes_removed: u64,
    /// Standby slots whose machine is off now: their kubelets are down
    /// because no machine exists, not because anything failed.
    #[serde(skip)]
    pub machines_off: u64,
    #[serde(skip)]
    pub enabled: bool,
}

/// The workload submitter's requests ([`crate::workload::submitter`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadCounts {
    /// Objects made and sent to be created.
    pub submitted: u64,
    pub created: u64,
    /// Refused for good (a 4xx other than a resend's AlreadyExists).
    pub refused: u64,
    /// Requests sent again after no answer or a 5xx.
    pub retries: u64,
    /// Tasks deleted at their trace's deletion time.
    pub deleted: u64,
}

impl Stats {
    /// The latencies a sample that began at `start` belongs to.
    pub fn latencies(&mut self, start: SimTime) -> &mut Latencies {
        if self.bootstrap.during(start) {
            &mut self.bootstrap.latencies
        } else {
            &mut self.run
        }
    }
}

/// One timeline action (or one object of an apply) and its result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ActionOutcome {
    /// Virtual seconds at which the action was issued.
    pub at_s: f64,
    /// Line of the timeline entry in the scenario file (0 for `objects:`).
    pub line: u32,
    pub action: String,
    /// `ok: <detail>` or `failed: <reason>`.
    pub result: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_counts_the_unfinished_as_longest() {
        let mut s = Samples::default();
        for ms in 1..=98 {
            s.record(SimDuration::from_millis(ms));
        }
        // 98 samples and 2 unfinished: the p99 is the 99th of 100, unfinished.
        assert_eq!(s.quantile_with_unfinished(0.99, 2), None);
        // 1 unfinished: ceil(0.99 × 99) = 99 > 98 samples, unfinished.
        assert_eq!(s.quantile_with_unfinished(0.99, 1), None);
        // None unfinished: ceil(0.99 × 98) = 98th, 98 ms.
        assert_eq!(s.quantile_with_unfinished(0.99, 0), Some(98.0));
        // The median of 98 + 2: the 50th, 50 ms.
        assert_eq!(s.quantile_with_unfinished(0.5, 2), Some(50.0));
        assert_eq!(
            Samples::default().quantile_with_unfinished(0.99, 0),
            Some(0.0)
        );
    }
}
