//! Which pods a ReplicaSet deletes first when it scales down
//! (`controller.ActivePodsWithRanks`): the least useful pod sorts first.
//! With LogarithmicScaleDown (on by default since v1.22) ready and creation
//! times compare by power-of-two age buckets, ties by UID, so scale-down does
//! not always pick the very newest pod.

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
///
/// Upstream's `Less` is not a strict weak order: two ready pods whose ready
/// times differ compare by age bucket and UID, while equal ready times fall
/// through to restarts and creation, so A < B < C < A can happen. Go's sort
/// accepts that; the standard library's sort may panic on it (it did, on a
/// plain scale-down from 100 to 50). A merge sort only ever asks whether
/// the right-hand pod goes first, so it finishes on any answers.
pub fn sort_for_deletion(pods: &mut [(RankedPod, usize)], now: SimTime) {
    merge_sort(pods, &mut |a, b| less(&a.0, &b.0, now));
}

/// A stable top-down merge sort by `less`.
fn merge_sort<T: Clone>(v: &mut [T], less: &mut impl FnMut(&T, &T) -> bool) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let mid = n / 2;
    merge_sort(&mut v[..mid], less);
    merge_sort(&mut v[mid..], less);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if less(&v[j], &v[i]) {
            merged.push(v[j].clone());
            j += 1;
        } else {
            merged.push(v[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..]);
    v.clone_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    /// Ready pods with ready times in few distinct values (so some are
    /// equal and fall through to creation, others compare by bucket and
    /// UID), a few Pending: an intransitive mix.
    fn mix(n: usize) -> Vec<(RankedPod, usize)> {
        let mut x: u64 = 12345;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        (0..n)
            .map(|i| {
                let pending = next() % 10 == 0;
                let pod = RankedPod {
                    node: "n1".into(),
                    phase: if pending { 0 } else { 2 },
                    ready: !pending,
                    ready_since: (!pending).then(|| 1_000_000_000 * (next() % 4) as i64),
                    restarts: (next() % 2) as u32,
                    created: Some((next() % 3_000_000_000) as i64),
                    uid: format!("{:04}", next() % 10_000),
                    ..RankedPod::default()
                };
                (pod, i)
            })
            .collect()
    }

    #[test]
    fn an_intransitive_ranking_sorts_without_panicking_and_keeps_the_top_keys() {
        for n in [2, 13, 50, 100, 257] {
            let mut pods = mix(n);
            sort_for_deletion(&mut pods, SimTime(10_000_000_000));
            // Every pod once.
            let mut seen: Vec<usize> = pods.iter().map(|p| p.1).collect();
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            // Phase is a consistent key: every Pending pod goes first.
            let first_running = pods.iter().position(|p| p.0.phase == 2).unwrap_or(n);
            assert!(pods[first_running..].iter().all(|p| p.0.phase == 2));
        }
    }

    #[test]
    fn a_consistent_ranking_sorts_as_a_stable_sort_does() {
        // Only creation times, all in distinct buckets: a total order, so
        // the merge sort agrees with the standard library's stable sort.
        let mut pods: Vec<(RankedPod, usize)> = [3u32, 30, 1, 20, 9]
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let created = Some(1_000_000_000 * (100 - i64::from(s)));
                (
                    RankedPod {
                        node: "n".into(),
                        created,
                        ..RankedPod::default()
                    },
                    i,
                )
            })
            .collect();
        let mut expected = pods.clone();
        let now = SimTime(100_000_000_000);
        expected.sort_by(
            |a, b| match (less(&a.0, &b.0, now), less(&b.0, &a.0, now)) {
                (true, _) => Ordering::Less,
                (_, true) => Ordering::Greater,
                _ => Ordering::Equal,
            },
        );
        sort_for_deletion(&mut pods, now);
        let order = |v: &[(RankedPod, usize)]| v.iter().map(|p| p.1).collect::<Vec<_>>();
        assert_eq!(order(&pods), order(&expected));
        // The newest (smallest age: 1 s, index 2) goes first.
        assert_eq!(order(&pods)[0], 2);
    }
}
