//! NodeResourcesBalancedAllocation: prefer nodes whose resources stay evenly
//! used; one minus the standard deviation of the used fractions.

use super::node_resources_fit::allocatable_and_requested;
use crate::scheduler::framework::{ResourceWeight, MAX_NODE_SCORE};
use crate::scheduler::resources::{NodeResources, PodRequests};

/// `None` when the plugin skips the pod at PreScore: a best-effort pod
/// (requesting nothing) gives no balance to keep.
pub fn score(resources: &[ResourceWeight], pod: &PodRequests, node: &NodeResources) -> Option<i64> {
    if pod.is_best_effort() {
        return None;
    }
    let fractions: Vec<f64> = resources
        .iter()
        .filter_map(|r| allocatable_and_requested(&r.name, pod, node, true))
        .map(|(alloc, req)| (req as f64 / alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            let var = fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64;
            var.sqrt()
        }
    };
    Some(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
}
