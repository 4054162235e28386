//! Measurements gathered during a run, for `summary.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sim::SimDuration;

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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Everything a run measures.
#[derive(Default)]
pub struct Stats {
    pub wal_fsync: Samples,
    /// apiserver → etcd → apiserver, per successful proposal.
    pub etcd_commit: Samples,
    pub etcd_timeouts: u64,
    pub leader_changes: u64,
    /// Per `verb kind`: client-observed request latency.
    pub api_latency: BTreeMap<String, Samples>,
    /// Per HTTP status code.
    pub api_codes: BTreeMap<u16, u64>,
    pub api_throttled: u64,
    /// Pod creation to its binding to a node (set by the scheduler).
    pub pod_scheduling: Samples,
    pub pod_created_to_running: Samples,
    pub pod_created_to_ready: Samples,
    pub watch_relists: u64,
    /// Watch streams resumed from their last revision after they ended.
    pub watch_restarts: u64,
    /// Batches that arrived out of sequence on a stream: TCP forbids it, so
    /// any count is a bug in the model.
    pub watch_gaps: u64,
    pub watch_events_sent: u64,
    /// What the scenario driver did and what came of it, in order.
    pub actions: Vec<ActionOutcome>,
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
