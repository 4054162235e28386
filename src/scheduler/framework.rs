//! The scheduling framework's rules that sit between plugins: score bounds,
//! normalisation, weights, and how many feasible nodes a cycle looks for.

/// Scores lie in `[MIN_NODE_SCORE, MAX_NODE_SCORE]` after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;
pub const MIN_NODE_SCORE: i64 = 0;

/// A cycle stops filtering once it has found this many feasible nodes…
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// …or this percentage of the cluster, whichever is larger.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// How many feasible nodes a cycle looks for among `all` nodes, given
/// `percentageOfNodesToScore` (0 = the adaptive default: 50% shrinking by
/// one point per 125 nodes, never below 5%).
pub fn num_feasible_nodes_to_find(all: usize, percentage: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let pct = if percentage == 0 {
        50usize
            .saturating_sub(all / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    } else {
        percentage
    };
    if pct >= 100 {
        return all;
    }
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// The framework's default normalisation: scale so the best node gets
/// `max_priority`, flooring; `reverse` turns a penalty into a score.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max_priority);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = max_priority * *s / max;
        *s = if reverse { max_priority - v } else { v };
    }
}

/// A resource and its weight in a resource scorer's average.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceWeight {
    pub name: String,
    pub weight: i64,
}

impl ResourceWeight {
    pub fn new(name: &str, weight: i64) -> Self {
        ResourceWeight {
            name: name.to_string(),
            weight,
        }
    }
}

/// The default `resources` of NodeResourcesFit and BalancedAllocation.
pub fn default_resources() -> Vec<ResourceWeight> {
    vec![
        ResourceWeight::new("cpu", 1),
        ResourceWeight::new("memory", 1),
    ]
}

/// Checks `resources` as the scheduler's config validation does: each
/// weight in 1..=100; returns the index of the first bad one.
pub fn validate_resource_weights(resources: &[ResourceWeight]) -> Result<(), (usize, String)> {
    for (i, r) in resources.iter().enumerate() {
        if !(1..=100).contains(&r.weight) {
            return Err((
                i,
                format!(
                    "resource weight of {} should be in the range [1, 100]",
                    r.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_percentage_shrinks_with_cluster_size() {
        assert_eq!(num_feasible_nodes_to_find(10, 0), 10);
        assert_eq!(num_feasible_nodes_to_find(1000, 0), 420);
        assert_eq!(num_feasible_nodes_to_find(5000, 0), 500);
        assert_eq!(num_feasible_nodes_to_find(150, 10), 100);
    }
}
