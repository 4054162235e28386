//! What a run came to over its whole length, not at its last instant: a
//! capacity planner's pool that finished its batch Job by the end looks
//! idle at the end even if 80 pods waited ten minutes at the peak.
//!
//! Fed by the same committed writes as [`super::pod_milestones`] (the
//! apiserver's view, so a pod is pending from its creation until a write
//! shows it bound), it keeps step functions' integrals exactly, in integer
//! nanoseconds: pods waiting for a node (peak, pod-seconds, longest wait),
//! resources requested by bound pods against the allocatable of every Node
//! that exists, node-hours, and cost at each node's price per hour.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::round3;

use crate::sim::{SimDuration, SimTime};

/// The resources utilisation is measured for: CPU (millicores), memory
/// (bytes), and GPUs as the NVIDIA device plugin advertises them.
pub const RESOURCES: [&str; 3] = ["cpu", "memory", "nvidia.com/gpu"];

/// Amounts of [`RESOURCES`], in their order.
pub type Amounts = [i64; 3];

/// One node as billed and counted.
#[derive(Clone, Copy, Debug)]
struct NodeSeen {
    allocatable: Amounts,
    price_per_hour: f64,
}

/// The integrals, advanced to `last` at every change.
#[derive(Clone, Default)]
pub struct OverTime {
    last: SimTime,
    /// Price per hour by node name, from the node pools (absent: free).
    prices: BTreeMap<String, f64>,
    nodes: BTreeMap<String, NodeSeen>,
    pending: u64,
    peak_pending: u64,
    peak_pending_at: SimTime,
    /// Pod-nanoseconds spent waiting for a node.
    pending_ns: u128,
    longest_wait: SimDuration,
    requested: Amounts,
    allocatable: Amounts,
    requested_ns: [u128; 3],
    allocatable_ns: [u128; 3],
    /// Highest requested/allocatable CPU seen at any instant.
    peak_cpu_fraction: f64,
    node_ns: u128,
    /// Sum of the prices of the nodes that exist now.
    price_rate: f64,
    cost: f64,
    peak_nodes: u64,
}

impl OverTime {
    /// Sets what each node of the scenario costs an hour.
    pub fn set_prices(&mut self, prices: BTreeMap<String, f64>) {
        self.prices = prices;
    }

    /// Brings every integral up to `now` under the values held since `last`.
    fn advance(&mut self, now: SimTime) {
        let dt = now.since(self.last).nanos() as u128;
        if dt == 0 {
            return;
        }
        self.pending_ns += self.pending as u128 * dt;
        for i in 0..RESOURCES.len() {
            self.requested_ns[i] += self.requested[i].max(0) as u128 * dt;
            self.allocatable_ns[i] += self.allocatable[i].max(0) as u128 * dt;
        }
        self.node_ns += self.nodes.len() as u128 * dt;
        self.cost += self.price_rate * (dt as f64 / 3.6e12);
        self.last = now;
    }

    /// A pod started or stopped waiting for a node.
    pub fn pending_changed(&mut self, now: SimTime, waiting: bool) {
        self.advance(now);
        if waiting {
            self.pending += 1;
            if self.pending > self.peak_pending {
                self.peak_pending = self.pending;
                self.peak_pending_at = now;
            }
        } else {
            self.pending = self.pending.saturating_sub(1);
        }
    }

    /// A pod waited `waited` for its node (or until it went away, or until
    /// the end of the run).
    pub fn waited(&mut self, waited: SimDuration) {
        self.longest_wait = self.longest_wait.max(waited);
    }

    /// A bound pod's requests start (`sign` 1) or stop (-1) counting.
    pub fn requests_changed(&mut self, now: SimTime, amounts: &Amounts, sign: i64) {
        self.advance(now);
        for (r, a) in self.requested.iter_mut().zip(amounts) {
            *r += sign * a;
        }
        self.note_cpu_peak();
    }

    /// A Node was written (`Some` allocatable) or deleted (`None`).
    pub fn node_written(&mut self, now: SimTime, name: &str, allocatable: Option<Amounts>) {
        self.advance(now);
        if let Some(old) = self.nodes.remove(name) {
            self.price_rate -= old.price_per_hour;
            for (a, o) in self.allocatable.iter_mut().zip(old.allocatable) {
                *a -= o;
            }
        }
        if let Some(allocatable) = allocatable {
            let price_per_hour = self.prices.get(name).copied().unwrap_or(0.0);
            self.price_rate += price_per_hour;
            for (a, n) in self.allocatable.iter_mut().zip(allocatable) {
                *a += n;
            }
            self.nodes.insert(
                name.to_string(),
                NodeSeen {
                    allocatable,
                    price_per_hour,
                },
            );
        }
        if self.nodes.is_empty() {
            // No float residue from adding and taking away prices.
            self.price_rate = 0.0;
        }
        self.peak_nodes = self.peak_nodes.max(self.nodes.len() as u64);
        self.note_cpu_peak();
    }

    fn note_cpu_peak(&mut self) {
        if self.allocatable[0] > 0 {
            let f = self.requested[0] as f64 / self.allocatable[0] as f64;
            self.peak_cpu_fraction = self.peak_cpu_fraction.max(f);
        }
    }

    /// The figures at `end`; `still_pending` are the creation times of the
    /// pods still waiting then (their wait so far counts).
    pub fn summary(&self, end: SimTime, still_pending: &[SimTime]) -> OverTimeSummary {
        let mut at_end = self.clone();
        at_end.advance(end.max(self.last));
        for &created in still_pending {
            at_end.waited(end.since(created));
        }
        let fraction = |i: usize| {
            if at_end.allocatable_ns[i] == 0 {
                0.0
            } else {
                round4(at_end.requested_ns[i] as f64 / at_end.allocatable_ns[i] as f64)
            }
        };
        OverTimeSummary {
            peak_pending_pods: at_end.peak_pending,
            peak_pending_at_s: round3(at_end.peak_pending_at.nanos() as f64 / 1e9),
            pending_pod_seconds: round3(at_end.pending_ns as f64 / 1e9),
            longest_wait_s: round3(at_end.longest_wait.as_secs_f64()),
            cpu_requested: fraction(0),
            memory_requested: fraction(1),
            gpu_requested: fraction(2),
            peak_cpu_requested: round4(at_end.peak_cpu_fraction),
            node_hours: round3(at_end.node_ns as f64 / 3.6e12),
            peak_nodes: at_end.peak_nodes,
            cost: (at_end.cost * 100.0).round() / 100.0,
        }
    }
}

/// The run's figures over its whole length (`summary.json`'s `over_time`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct OverTimeSummary {
    /// Most pods waiting for a node at one instant, and when first.
    pub peak_pending_pods: u64,
    pub peak_pending_at_s: f64,
    /// Time-integrated pending pods: every pod's wait for a node, summed.
    pub pending_pod_seconds: f64,
    /// The longest any pod waited for a node (pods still waiting at the end
    /// count with their wait so far).
    pub longest_wait_s: f64,
    /// Requested over allocatable, weighted by time (∫requested / ∫allocatable).
    pub cpu_requested: f64,
    pub memory_requested: f64,
    pub gpu_requested: f64,
    /// Highest requested/allocatable CPU at any instant.
    pub peak_cpu_requested: f64,
    pub node_hours: f64,
    pub peak_nodes: u64,
    /// Node-hours at each node pool's `pricePerHour`.
    pub cost: f64,
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SimTime {
        SimTime(s * 1_000_000_000)
    }

    #[test]
    fn pending_peak_integral_and_longest_wait() {
        let mut o = OverTime::default();
        // Pod a waits 0..10 s, pod b 5..30 s, pod c from 20 s to the end (40 s).
        o.pending_changed(at(0), true);
        o.pending_changed(at(5), true);
        o.pending_changed(at(10), false);
        o.waited(SimDuration::from_secs(10));
        o.pending_changed(at(20), true);
        o.pending_changed(at(30), false);
        o.waited(SimDuration::from_secs(25));
        let s = o.summary(at(40), &[at(20)]);
        assert_eq!(s.peak_pending_pods, 2);
        assert_eq!(s.peak_pending_at_s, 5.0);
        // 10 (a) + 25 (b) + 20 (c, 20..40) pod-seconds.
        assert_eq!(s.pending_pod_seconds, 55.0);
        // b's 25 s beats c's 20 s so far.
        assert_eq!(s.longest_wait_s, 25.0);
    }

    #[test]
    fn utilisation_is_weighted_by_time_and_cost_by_node_hours() {
        let mut o = OverTime::default();
        o.set_prices(BTreeMap::from([("n1".into(), 2.0), ("n2".into(), 4.0)]));
        o.node_written(at(0), "n1", Some([4000, 8 << 30, 0]));
        // A status write of the same node changes nothing.
        o.node_written(at(600), "n1", Some([4000, 8 << 30, 0]));
        // n2 joins at 30 min and is deleted at 60 min.
        o.node_written(at(1800), "n2", Some([4000, 8 << 30, 0]));
        o.requests_changed(at(1800), &[6000, 0, 0], 1);
        o.requests_changed(at(2700), &[6000, 0, 0], -1);
        o.node_written(at(3600), "n2", None);
        let s = o.summary(at(7200), &[]);
        // n1 2 h + n2 0.5 h.
        assert_eq!(s.node_hours, 2.5);
        assert_eq!(s.peak_nodes, 2);
        // 2 h × 2 + 0.5 h × 4.
        assert_eq!(s.cost, 6.0);
        // 6000m for 900 s over 4000m × 7200 s + 4000m × 1800 s: 0.15.
        assert_eq!(s.cpu_requested, 0.15);
        // 6000m of 8000m at 30 min.
        assert_eq!(s.peak_cpu_requested, 0.75);
        assert_eq!(s.gpu_requested, 0.0);
    }

    #[test]
    fn a_summary_taken_mid_run_leaves_the_run_going_on() {
        let mut o = OverTime::default();
        o.pending_changed(at(0), true);
        assert_eq!(o.summary(at(10), &[at(0)]).pending_pod_seconds, 10.0);
        o.pending_changed(at(20), false);
        assert_eq!(o.summary(at(30), &[]).pending_pod_seconds, 20.0);
    }
}
