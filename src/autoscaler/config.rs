//! The cluster autoscaler's options, with the defaults of upstream's
//! `cluster-autoscaler` flags in release 1.34 (kubernetes/autoscaler, `config/flags/flags.go`), and
//! the node groups a scenario gives it.

use std::sync::Arc;

use crate::api::node::Taint;
use crate::scheduler::resources::Amounts;
use crate::sim::dist::LatencyDist;
use crate::sim::SimDuration;

/// `--expander`: how a scale-up picks among the groups that would help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expander {
    /// Any of them, at random.
    Random,
    /// The one that leaves the least CPU and memory idle (the default
    /// since 1.31), ties at random.
    LeastWaste,
    /// The one that schedules the most pods.
    MostPods,
    /// The highest priority in the `cluster-autoscaler-priority-expander`
    /// ConfigMap, ties at random.
    Priority,
}

impl Expander {
    pub const NAMES: [&'static str; 4] = ["random", "least-waste", "most-pods", "priority"];

    pub fn parse(s: &str) -> Option<Expander> {
        Some(match s {
            "random" => Expander::Random,
            "least-waste" => Expander::LeastWaste,
            "most-pods" => Expander::MostPods,
            "priority" => Expander::Priority,
            _ => return None,
        })
    }
}

/// The autoscaler's flags that the model reads.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscalerConfig {
    /// `--scan-interval` (10 s).
    pub scan_interval: SimDuration,
    /// `--scale-down-enabled` (true).
    pub scale_down_enabled: bool,
    /// `--scale-down-delay-after-add` (10 min).
    pub delay_after_add: SimDuration,
    /// `--scale-down-delay-after-delete` (0).
    pub delay_after_delete: SimDuration,
    /// `--scale-down-delay-after-failure` (3 min).
    pub delay_after_failure: SimDuration,
    /// `--scale-down-unneeded-time` (10 min).
    pub unneeded_time: SimDuration,
    /// `--scale-down-unready-time` (20 min).
    pub unready_time: SimDuration,
    /// `--scale-down-utilization-threshold` (0.5).
    /// A Ready node is a scale-down candidate when its utilisation is at
    /// most this (`<=`, as 1.34.3 and later compare it; 1.34.0–2 refused
    /// a node exactly at the threshold).
    pub utilization_threshold: f64,
    /// `--max-node-provision-time` (15 min).
    pub max_node_provision_time: SimDuration,
    /// `--max-graceful-termination-sec` (600 s).
    pub max_graceful_termination: SimDuration,
    /// `--max-scale-down-parallelism` (10): nodes being deleted at once
    /// (it replaced `--max-empty-bulk-delete`).
    pub max_scale_down_parallelism: usize,
    /// `--max-drain-parallelism` (1): non-empty nodes drained at once.
    pub max_drain_parallelism: usize,
    /// `--max-pod-eviction-time` (2 min): how long an eviction is retried.
    pub max_pod_eviction_time: SimDuration,
    /// `--node-delete-delay-after-taint` (5 s).
    pub delete_delay_after_taint: SimDuration,
    /// `--max-bulk-soft-taint-count` (10): unneeded nodes given (or freed
    /// of) the `DeletionCandidateOfClusterAutoscaler` taint per loop.
    pub max_bulk_soft_taint: usize,
    /// `--scale-down-non-empty-candidates-count` (30).
    pub non_empty_candidates: usize,
    /// `--initial-node-group-backoff-duration` (5 min).
    pub backoff_initial: SimDuration,
    /// `--max-node-group-backoff-duration` (30 min).
    pub backoff_max: SimDuration,
    /// `--node-group-backoff-reset-timeout` (3 h).
    pub backoff_reset: SimDuration,
    /// `--skip-nodes-with-system-pods` (true).
    pub skip_nodes_with_system_pods: bool,
    /// `--skip-nodes-with-local-storage` (true).
    pub skip_nodes_with_local_storage: bool,
    /// `--max-nodes-total` (0: no limit).
    pub max_nodes_total: u32,
    pub expander: Expander,
}

impl Default for AutoscalerConfig {
    fn default() -> Self {
        AutoscalerConfig {
            scan_interval: SimDuration::from_secs(10),
            scale_down_enabled: true,
            delay_after_add: SimDuration::from_secs(600),
            delay_after_delete: SimDuration::ZERO,
            delay_after_failure: SimDuration::from_secs(180),
            unneeded_time: SimDuration::from_secs(600),
            unready_time: SimDuration::from_secs(1200),
            utilization_threshold: 0.5,
            max_node_provision_time: SimDuration::from_secs(900),
            max_graceful_termination: SimDuration::from_secs(600),
            max_scale_down_parallelism: 10,
            max_pod_eviction_time: SimDuration::from_secs(120),
            delete_delay_after_taint: SimDuration::from_secs(5),
            max_bulk_soft_taint: 10,
            max_drain_parallelism: 1,
            non_empty_candidates: 30,
            backoff_initial: SimDuration::from_secs(300),
            backoff_max: SimDuration::from_secs(1800),
            backoff_reset: SimDuration::from_secs(3 * 3600),
            skip_nodes_with_system_pods: true,
            skip_nodes_with_local_storage: true,
            max_nodes_total: 0,
            expander: Expander::LeastWaste,
        }
    }
}

/// The machine shape a group's instances boot with: what its template
/// node looks like to the estimator.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineShape {
    pub labels: std::collections::BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// In the scheduler's units (CPU in millicores).
    pub allocatable: Amounts,
    pub price_per_hour: f64,
}

/// One autoscaled node group (a node pool with `autoscaling:`): its
/// machines are pre-named slots `<pool>-1 … <pool>-<maxSize>`, the first
/// `initial` running from the start.
#[derive(Clone, Debug)]
pub struct NodeGroupPlan {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub initial: u32,
    /// From IncreaseSize until the kubelet starts.
    pub provisioning: LatencyDist,
    pub shape: Arc<MachineShape>,
    /// The slots' node names, in order.
    pub nodes: Vec<String>,
}

/// What a scenario gives the autoscaler: its flags and its node groups.
#[derive(Clone, Debug)]
pub struct Autoscaling {
    pub config: Arc<AutoscalerConfig>,
    pub groups: Vec<Arc<NodeGroupPlan>>,
}
