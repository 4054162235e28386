//! client-go's rate-limited work queue, in virtual time.
//!
//! A key is queued at most once (`dirty`); a key being processed is not
//! handed to a second worker, and if it is added meanwhile it is queued again
//! when the first worker calls [`WorkQueue::done`]. Failed keys come back
//! through [`WorkQueue::add_rate_limited`], delayed by the default controller
//! rate limiter: the larger of a per-item exponential back-off (5 ms doubling
//! to 1000 s) and an overall token bucket (10 qps, burst 100).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::sim::{SimDuration, SimTime};

/// `workqueue.DefaultControllerRateLimiter()`.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    base: SimDuration,
    max: SimDuration,
    failures: BTreeMap<String, u32>,
    qps: f64,
    burst: f64,
    tokens: f64,
    refilled_at: SimTime,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            base: SimDuration::from_millis(5),
            max: SimDuration::from_secs(1000),
            failures: BTreeMap::new(),
            qps: 10.0,
            burst: 100.0,
            tokens: 100.0,
            refilled_at: SimTime::ZERO,
        }
    }
}

impl RateLimiter {
    /// How long `key` waits before its next try (and counts the failure).
    pub fn when(&mut self, key: &str, now: SimTime) -> SimDuration {
        let n = self.failures.entry(key.to_string()).or_insert(0);
        let exp = *n;
        *n += 1;
        let backoff = if exp >= 40 {
            self.max
        } else {
            let ns = (self.base.0 as u128) << exp;
            SimDuration(ns.min(self.max.0 as u128) as u64)
        };
        // The bucket: a reservation that may go negative, like rate.Limiter.
        let elapsed = now.since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.refilled_at = now;
        self.tokens -= 1.0;
        let bucket = if self.tokens >= 0.0 {
            SimDuration::ZERO
        } else {
            SimDuration((-self.tokens / self.qps * 1e9).ceil() as u64)
        };
        backoff.max(bucket)
    }

    pub fn forget(&mut self, key: &str) {
        self.failures.remove(key);
    }

    pub fn requeues(&self, key: &str) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }
}

#[derive(Clone, Debug, Default)]
pub struct WorkQueue {
    queue: VecDeque<String>,
    dirty: BTreeSet<String>,
    processing: BTreeSet<String>,
    /// Delayed adds: (due, seq) → key, and each key's earliest due time.
    delayed: BTreeMap<(SimTime, u64), String>,
    due: BTreeMap<String, SimTime>,
    seq: u64,
    pub limiter: RateLimiter,
}

impl WorkQueue {
    pub fn add(&mut self, key: &str) {
        if self.dirty.contains(key) {
            return;
        }
        self.dirty.insert(key.to_string());
        if !self.processing.contains(key) {
            self.queue.push_back(key.to_string());
        }
    }

    /// The next key for a worker, now marked as being processed.
    pub fn get(&mut self) -> Option<String> {
        let key = self.queue.pop_front()?;
        self.dirty.remove(&key);
        self.processing.insert(key.clone());
        Some(key)
    }

    /// The worker finished `key`; if it was added meanwhile it goes back in.
    pub fn done(&mut self, key: &str) {
        self.processing.remove(key);
        if self.dirty.contains(key) {
            self.queue.push_back(key.to_string());
        }
    }

    /// Adds `key` after `delay`; returns the instant a timer must fire at, if
    /// the add was delayed.
    pub fn add_after(&mut self, key: &str, delay: SimDuration, now: SimTime) -> Option<SimTime> {
        if delay == SimDuration::ZERO {
            self.add(key);
            return None;
        }
        let at = now.after(delay);
        if let Some(prev) = self.due.get(key) {
            if *prev <= at {
                return None;
            }
            let prev = *prev;
            self.delayed.retain(|(t, _), k| !(*t == prev && k == key));
        }
        self.seq += 1;
        self.delayed.insert((at, self.seq), key.to_string());
        self.due.insert(key.to_string(), at);
        Some(at)
    }

    /// Adds `key` after the rate limiter's delay for it.
    pub fn add_rate_limited(&mut self, key: &str, now: SimTime) -> Option<SimTime> {
        let delay = self.limiter.when(key, now);
        self.add_after(key, delay, now)
    }

    pub fn forget(&mut self, key: &str) {
        self.limiter.forget(key);
    }

    /// Moves delayed keys that are due into the queue.
    pub fn release_due(&mut self, now: SimTime) {
        while let Some(((t, _), _)) = self.delayed.first_key_value() {
            if *t > now {
                break;
            }
            let (_, key) = self.delayed.pop_first().expect("checked first");
            self.due.remove(&key);
            self.add(&key);
        }
    }

    /// When the earliest delayed key is due.
    pub fn next_due(&self) -> Option<SimTime> {
        self.delayed.first_key_value().map(|((t, _), _)| *t)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn is_processing(&self, key: &str) -> bool {
        self.processing.contains(key)
    }

    /// A queue whose per-item back-off stops at `max` instead of 1000 s.
    pub fn with_max_delay(max: SimDuration) -> WorkQueue {
        let mut q = WorkQueue::default();
        q.limiter.max = max;
        q
    }

    /// Forgets everything (the process restarted) but how it was configured.
    pub fn clear(&mut self) {
        let max = self.limiter.max;
        *self = WorkQueue::with_max_delay(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_queued_once_and_requeued_after_done_if_added_while_processing() {
        let mut q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().as_deref(), Some("a"));
        q.add("a");
        assert_eq!(q.get().as_deref(), Some("b"));
        assert_eq!(q.get(), None, "a is processing, not handed out twice");
        q.done("a");
        assert_eq!(q.get().as_deref(), Some("a"));
    }

    #[test]
    fn default_rate_limiter_doubles_from_5ms_and_caps_at_1000s() {
        let mut r = RateLimiter::default();
        let t = SimTime::ZERO;
        let delays: Vec<u64> = (0..4).map(|_| r.when("k", t).0 / 1_000_000).collect();
        assert_eq!(delays, vec![5, 10, 20, 40]);
        for _ in 0..40 {
            r.when("k", t);
        }
        assert_eq!(r.when("k", t), SimDuration::from_secs(1000));
        r.forget("k");
        assert_eq!(r.requeues("k"), 0);
    }

    #[test]
    fn the_overall_bucket_allows_100_then_10_per_second() {
        let mut r = RateLimiter::default();
        let t = SimTime::ZERO;
        for i in 0..100 {
            assert_eq!(r.when(&format!("k{i}"), t), SimDuration::from_millis(5));
        }
        // The 101st distinct key waits for a token: 100 ms at 10 qps.
        assert_eq!(r.when("k100", t), SimDuration::from_millis(100));
        assert_eq!(r.when("k101", t), SimDuration::from_millis(200));
    }

    #[test]
    fn delayed_adds_keep_the_earliest_and_release_in_order() {
        let mut q = WorkQueue::default();
        let t0 = SimTime::ZERO;
        assert!(q.add_after("a", SimDuration::from_secs(5), t0).is_some());
        assert!(q.add_after("a", SimDuration::from_secs(9), t0).is_none());
        assert!(q.add_after("b", SimDuration::from_secs(2), t0).is_some());
        q.release_due(t0.after(SimDuration::from_secs(3)));
        assert_eq!(q.get().as_deref(), Some("b"));
        assert_eq!(q.get(), None);
        q.release_due(t0.after(SimDuration::from_secs(5)));
        assert_eq!(q.get().as_deref(), Some("a"));
    }
}
