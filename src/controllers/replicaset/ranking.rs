//! Which pods a ReplicaSet deletes first when it scales down
//! (`controller.ActivePodsWithRanks`): the least useful pod sorts first.
//! With LogarithmicScaleDown (on by default since v1.22) ready and creation
//! times compare by power-of-two age buckets, ties by UID, so scale-down does
//! not always pick the very newest pod.

use std::cmp::Ordering;

use crate::api::Object;
use crate::sim::SimTime;

/// What the ranking reads of one pod.
#[derive(Clone, Debug, Default)]
pub struct RankedPod {
    pub node: String,
    /// Pending 0, Unknown 1, Running 2 (`podPhaseToOrdinal`).
    pub phase: u8,
    pub ready: bool,
    /// The Ready condition's transition time, when ready (`None` = zero time).
    pub ready_since: Option<i64>,
    pub restarts: u32,
    /// Creation time in ns (`None` = zero time).
    pub created: Option<i64>,
    /// `controller.kubernetes.io/pod-deletion-cost`.
    pub deletion_cost: i32,
    pub uid: String,
    /// Active related pods on the same node.
    pub rank: usize,
}

pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

impl RankedPod {
    pub fn of(o: &Object) -> RankedPod {
        let p = o.as_pod().expect("ranking pods");
        let ready = p.status.is_ready();
        RankedPod {
            node: p.node_name.clone().unwrap_or_default(),
            phase: match p.status.phase {
                crate::api::pod::PodPhase::Pending => 0,
                crate::api::pod::PodPhase::Running => 2,
                _ => 1,
            },
            ready,
            ready_since: ready
                .then(|| {
                    p.status
                        .condition("Ready")
                        .map(|c| c.last_transition.nanos() as i64)
                })
                .flatten(),
            restarts: p
                .status
                .container_statuses
                .iter()
                .map(|c| c.restart_count)
                .max()
                .unwrap_or(0),
            created: Some(o.meta.creation.nanos() as i64),
            deletion_cost: o
                .meta
                .annotations
                .get(DELETION_COST)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            uid: o.meta.uid.clone(),
            rank: 0,
        }
    }
}

/// `logarithmicRankDiff`: floor(log2(age in ns)) of each, subtracted.
fn log_rank_diff(t1: i64, t2: i64, now: i64) -> i64 {
    let r = |t: i64| {
        let d = now - t;
        if d <= 0 {
            -1
        } else {
            libm::log2(d as f64) as i64
        }
    };
    r(t1) - r(t2)
}

/// `afterOrZero`: a zero time sorts first, else the later one does.
fn after_or_zero(t1: Option<i64>, t2: Option<i64>) -> bool {
    match (t1, t2) {
        (None, _) | (_, None) => t1.is_none(),
        (Some(a), Some(b)) => a > b,
    }
}

fn by_age(t1: Option<i64>, t2: Option<i64>, a: &RankedPod, b: &RankedPod, now: i64) -> bool {
    match (t1, t2) {
        (Some(x), Some(y)) => {
            let d = log_rank_diff(x, y, now);
            if d == 0 {
                a.uid < b.uid
            } else {
                d < 0
            }
        }
        _ => after_or_zero(t1, t2),
    }
}

/// `ActivePodsWithRanks.Less`: whether `a` should be deleted before `b`.
pub fn less(a: &RankedPod, b: &RankedPod, now: SimTime) -> bool {
    let now = now.nanos() as i64;
    if a.node != b.node && (a.node.is_empty() || b.node.is_empty()) {
        return a.node.is_empty();
    }
    if a.phase != b.phase {
        return a.phase < b.phase;
    }
    if a.ready != b.ready {
        return !a.ready;
    }
    if a.deletion_cost != b.deletion_cost {
        return a.deletion_cost < b.deletion_cost;
    }
    if a.rank != b.rank {
        return a.rank > b.rank;
    }
    if a.ready && b.ready && a.ready_since != b.ready_since {
        return by_age(a.ready_since, b.ready_since, a, b, now);
    }
    if a.restarts != b.restarts {
        return a.restarts > b.restarts;
    }
    if a.created != b.created {
        return by_age(a.created, b.created, a, b, now);
    }
    false
}

/// Sorts so the first pods are the ones to delete (a stable sort, as Go's
/// `sort.Sort` is not but the ranking makes ties rare; ties keep list order).
pub fn sort_for_deletion(pods: &mut [(RankedPod, usize)], now: SimTime) {
    pods.sort_by(|(a, _), (b, _)| {
        if less(a, b, now) {
            Ordering::Less
        } else if less(b, a, now) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
}
