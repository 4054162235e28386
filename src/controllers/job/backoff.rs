//! Pod failure back-off (`backoff_utils.go`): a failed pod is replaced
//! after 10 s × 2ⁿ⁻¹ (at most 10 min) from its finish, where n counts the
//! failures since the last success; with `backoffLimitPerIndex` the count
//! and the finish come from the index's last failed pod instead.

use crate::api::pod::ContainerState;
use crate::api::Object;
use crate::sim::{SimDuration, SimTime};

use super::indexes;

/// `DefaultJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: SimDuration = SimDuration::from_secs(10);
/// `MaxJobPodFailureBackOff`.
pub const MAX_POD_FAILURE_BACKOFF: SimDuration = SimDuration::from_secs(600);

/// The delay before replacing a pod after `failures` consecutive failures.
pub fn failure_backoff(failures: u32) -> SimDuration {
    if failures == 0 {
        return SimDuration::ZERO;
    }
    let shift = (failures - 1).min(16);
    SimDuration::from_nanos(
        POD_FAILURE_BACKOFF
            .nanos()
            .saturating_mul(1 << shift)
            .min(MAX_POD_FAILURE_BACKOFF.nanos()),
    )
}

/// Failures since the last success, and when the last one finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures: u32,
    pub last_failure: Option<SimTime>,
}

impl BackoffRecord {
    /// `newBackoffRecord`: this record moved on by the pods that finished
    /// since it was written. A success resets it; failures after the last
    /// success count from there.
    pub fn next(self, succeeded: &[&Object], failed: &[&Object]) -> BackoffRecord {
        let mut failed_at: Vec<SimTime> = failed.iter().map(|p| finished_time(p)).collect();
        failed_at.sort();
        let last_success = succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None if failed_at.is_empty() => self,
            None => BackoffRecord {
                failures: self.failures + failed_at.len() as u32,
                last_failure: failed_at.last().copied(),
            },
            Some(s) => {
                let after: Vec<SimTime> = failed_at.into_iter().filter(|t| *t > s).collect();
                BackoffRecord {
                    failures: after.len() as u32,
                    last_failure: after.last().copied(),
                }
            }
        }
    }

    /// `getRemainingTime`: how long pod creation must still wait.
    pub fn remaining(&self, now: SimTime) -> SimDuration {
        remaining(self.failures, self.last_failure, now)
    }
}

fn remaining(failures: u32, last: Option<SimTime>, now: SimTime) -> SimDuration {
    let (Some(last), true) = (last, failures > 0) else {
        return SimDuration::ZERO;
    };
    let wait = failure_backoff(failures);
    let elapsed = now.since(last);
    if wait < elapsed {
        SimDuration::ZERO
    } else {
        SimDuration::from_nanos(wait.nanos() - elapsed.nanos())
    }
}

/// `getRemainingTimePerIndex`: the wait before replacing `last_failed`, the
/// index's latest failed pod, counting its own failure on top of those its
/// annotations carry.
pub fn remaining_for_index(last_failed: Option<&Object>, now: SimTime) -> SimDuration {
    let Some(p) = last_failed else {
        return SimDuration::ZERO;
    };
    let failures = indexes::absolute_failure_count(p) as u32 + 1;
    remaining(failures, Some(finished_time(p)), now)
}

/// `getFinishedTime`: the last container's finish; else when Ready turned
/// False; else the deletion instant less its grace; else the creation.
pub fn finished_time(p: &Object) -> SimTime {
    let Some(body) = p.as_pod() else {
        return p.meta.creation;
    };
    let st = &body.status;
    let from_containers = st
        .container_statuses
        .iter()
        .map(|c| match c.state {
            ContainerState::Terminated { finished, .. } => Some(finished),
            _ => None,
        })
        .collect::<Option<Vec<SimTime>>>()
        .and_then(|v| v.into_iter().max());
    if let Some(t) = from_containers {
        return t;
    }
    if let Some(c) = st.condition("Ready").filter(|c| !c.status) {
        return c.last_transition;
    }
    if let Some(d) = p.meta.deletion {
        let grace = p.meta.deletion_grace_seconds.unwrap_or(0).max(0) as u64;
        return SimTime(d.nanos().saturating_sub(grace * 1_000_000_000));
    }
    p.meta.creation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_backoff_doubles_from_ten_seconds_to_ten_minutes() {
        let secs = |n| failure_backoff(n).nanos() / 1_000_000_000;
        assert_eq!(secs(0), 0);
        assert_eq!(secs(1), 10);
        assert_eq!(secs(2), 20);
        assert_eq!(secs(3), 40);
        assert_eq!(secs(6), 320);
        assert_eq!(secs(7), 600);
        assert_eq!(secs(40), 600);
    }

    #[test]
    fn remaining_counts_from_the_last_failure() {
        // Two failures: 20 s from the last one at t=100 s; at t=105 s, 15 s remain.
        let r = BackoffRecord {
            failures: 2,
            last_failure: Some(SimTime(100_000_000_000)),
        };
        let now = SimTime(105_000_000_000);
        assert_eq!(r.remaining(now), SimDuration::from_secs(15));
        assert_eq!(BackoffRecord::default().remaining(now), SimDuration::ZERO);
    }
}
