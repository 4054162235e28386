//! The image manager's pull back-off (upstream pkg/kubelet/images,
//! `EnsureImageExists`): a `flowcontrol.Backoff` created with
//! `imageBackOffPeriod` = 10 s and `MaxImageBackOff` = 300 s
//! (pkg/kubelet/kubelet.go), keyed by pod UID and image, no jitter.
//!
//! A failed pull calls `Next`: the first failure (or one after the entry
//! expired, 2 × 300 s without an update) sets 10 s, each further one
//! doubles it, capped at 300 s. While `IsInBackOffSinceUpdate` holds (less
//! than the back-off since the last failure) the image manager does not
//! pull and reports `ImagePullBackOff`; a failed pull reports
//! `ErrImagePull`. The pod worker retries a sync that failed after
//! `backOffPeriod` (10 s) jittered by up to half (`wait.Jitter(10s, 0.5)`),
//! so the pull after a back-off of B goes at the first retry at least B
//! after the failure: 10 s, 20 s, 40 s, 80 s, 160 s, 300 s, 300 s … each
//! plus up to 15 s.

use crate::sim::{RngStream, SimDuration, SimTime};

/// `imageBackOffPeriod`.
pub(super) const INITIAL: SimDuration = SimDuration::from_secs(10);
/// `MaxImageBackOff`.
pub(super) const MAX: SimDuration = SimDuration::from_secs(300);
/// The pod worker's `backOffPeriod` after a failed sync.
const WORKER_BACKOFF: SimDuration = SimDuration::from_secs(10);
/// `workerBackOffPeriodJitterFactor`.
const WORKER_JITTER: f64 = 0.5;

/// One (pod, image) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PullBackOff {
    backoff: SimDuration,
    last_update: SimTime,
}

fn expired(e: &PullBackOff, now: SimTime) -> bool {
    now.since(e.last_update) > MAX + MAX
}

/// `Next`: a pull failed at `now`.
pub(super) fn next(entry: &mut Option<PullBackOff>, now: SimTime) {
    let backoff = match entry {
        Some(e) if !expired(e, now) => (e.backoff + e.backoff).min(MAX),
        _ => INITIAL,
    };
    *entry = Some(PullBackOff {
        backoff,
        last_update: now,
    });
}

/// `IsInBackOffSinceUpdate` at `now`.
pub(super) fn in_backoff(entry: Option<&PullBackOff>, now: SimTime) -> bool {
    entry.is_some_and(|e| !expired(e, now) && now.since(e.last_update) < e.backoff)
}

/// The current back-off of an entry.
#[cfg(test)]
pub(super) fn current(entry: Option<&PullBackOff>) -> SimDuration {
    entry.map_or(SimDuration::ZERO, |e| e.backoff)
}

/// `wait.Jitter(backOffPeriod, 0.5)`: when the pod worker syncs again after
/// a failed sync.
pub(super) fn worker_retry(rng: &mut RngStream) -> SimDuration {
    let base = WORKER_BACKOFF.nanos() as f64;
    SimDuration::from_nanos((base + rng.unit() * WORKER_JITTER * base) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(s))
    }

    #[test]
    fn back_off_doubles_from_10s_to_300s_and_expires_after_600s() {
        let mut e = None;
        let mut t = 0;
        let mut seen = Vec::new();
        for _ in 0..8 {
            next(&mut e, at(t));
            seen.push(current(e.as_ref()).nanos() / 1_000_000_000);
            // Just inside the back-off, then just at its end.
            let b = seen.last().copied().unwrap();
            assert!(in_backoff(e.as_ref(), at(t + b - 1)));
            assert!(!in_backoff(e.as_ref(), at(t + b)));
            t += b;
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
        // 601 s after the last failure the entry has expired: 10 s again.
        next(&mut e, at(t + 601));
        assert_eq!(current(e.as_ref()), INITIAL);
    }

    #[test]
    fn the_worker_retries_between_10_and_15_seconds() {
        let mut rng = RngStream::derive(3, "t");
        for _ in 0..1000 {
            let d = worker_retry(&mut rng);
            assert!(
                d >= SimDuration::from_secs(10) && d < SimDuration::from_secs(15),
                "{d}"
            );
        }
    }
}
