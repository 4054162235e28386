//! The scheduling queue: activeQ ordered as PrioritySort orders it (higher
//! priority first, then earlier enqueue), backoffQ for pods that failed
//! (1 s doubling to 10 s per attempt), and the unschedulable pods, which go
//! back when a cluster event could help them or after 5 minutes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::api::ObjectKey;
use crate::sim::{SimDuration, SimTime};

pub const INITIAL_BACKOFF: SimDuration = SimDuration::from_secs(1);
pub const MAX_BACKOFF: SimDuration = SimDuration::from_secs(10);
/// `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: SimDuration = SimDuration::from_secs(300);

/// activeQ order: priority descending, then enqueue time, then arrival.
type ActiveKey = (Reverse<i32>, SimTime, u64);

#[derive(Clone, Debug)]
struct Entry {
    priority: i32,
    /// When the pod was first queued (its position in activeQ).
    queued: SimTime,
    attempts: u32,
    /// When the last attempt failed.
    failed_at: Option<SimTime>,
    /// Where it sits in activeQ or backoffQ, if there.
    active_at: Option<ActiveKey>,
    backoff_at: Option<(SimTime, u64)>,
}

pub struct SchedulingQueue {
    entries: BTreeMap<ObjectKey, Entry>,
    active: BTreeMap<ActiveKey, ObjectKey>,
    /// (backoff expiry, arrival) → pod.
    backoff: BTreeMap<(SimTime, u64), ObjectKey>,
    unschedulable: BTreeSet<ObjectKey>,
    seq: u64,
    initial_backoff: SimDuration,
    max_backoff: SimDuration,
}

impl Default for SchedulingQueue {
    fn default() -> Self {
        SchedulingQueue::with_backoff(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

impl SchedulingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue with `podInitialBackoffSeconds` and `podMaxBackoffSeconds`.
    pub fn with_backoff(initial: SimDuration, max: SimDuration) -> Self {
        SchedulingQueue {
            entries: BTreeMap::new(),
            active: BTreeMap::new(),
            backoff: BTreeMap::new(),
            unschedulable: BTreeSet::new(),
            seq: 0,
            initial_backoff: initial,
            max_backoff: max,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.entries.contains_key(key)
    }

    fn push_active(&mut self, key: ObjectKey) {
        self.seq += 1;
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        let at = (Reverse(e.priority), e.queued, self.seq);
        e.active_at = Some(at);
        self.active.insert(at, key);
    }

    fn push_backoff(&mut self, key: ObjectKey, until: SimTime) {
        self.seq += 1;
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        let at = (until, self.seq);
        e.backoff_at = Some(at);
        self.backoff.insert(at, key);
    }

    /// A new pending pod.
    pub fn add(&mut self, key: ObjectKey, priority: i32, now: SimTime) {
        if self.entries.contains_key(&key) {
            return;
        }
        self.entries.insert(
            key.clone(),
            Entry {
                priority,
                queued: now,
                attempts: 0,
                failed_at: None,
                active_at: None,
                backoff_at: None,
            },
        );
        self.push_active(key);
    }

    /// The pod is gone (deleted, or bound by someone else).
    pub fn remove(&mut self, key: &ObjectKey) {
        if let Some(e) = self.entries.remove(key) {
            if let Some(at) = e.active_at {
                self.active.remove(&at);
            }
            if let Some(at) = e.backoff_at {
                self.backoff.remove(&at);
            }
            self.unschedulable.remove(key);
        }
    }

    /// The next pod to schedule, if any is active.
    pub fn pop(&mut self) -> Option<ObjectKey> {
        let (_, key) = self.active.pop_first()?;
        if let Some(e) = self.entries.get_mut(&key) {
            e.active_at = None;
        }
        Some(key)
    }

    /// The pod's back-off after `attempts` failures.
    pub fn backoff_for(&self, attempts: u32) -> SimDuration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            d = d + d;
            if d >= self.max_backoff {
                return self.max_backoff;
            }
        }
        d.min(self.max_backoff)
    }

    /// A popped pod could not be placed: it waits in the unschedulable set
    /// until an event may help it.
    pub fn unschedulable(&mut self, key: &ObjectKey, now: SimTime) {
        if let Some(e) = self.entries.get_mut(key) {
            e.attempts += 1;
            e.failed_at = Some(now);
            self.unschedulable.insert(key.clone());
        }
    }

    /// A popped pod hit an error (a failed bind): it backs off.
    pub fn error(&mut self, key: &ObjectKey, now: SimTime) {
        let until = match self.entries.get_mut(key) {
            Some(e) => {
                e.attempts += 1;
                e.failed_at = Some(now);
                let attempts = e.attempts;
                now.after(self.backoff_for(attempts))
            }
            None => return,
        };
        self.push_backoff(key.clone(), until);
    }

    /// The pod was scheduled and bound: it leaves the queue.
    pub fn done(&mut self, key: &ObjectKey) {
        self.remove(key);
    }

    /// A cluster event (node added or changed, pod deleted) may make
    /// unschedulable pods fit: each goes to backoffQ if its back-off has not
    /// run out, else to activeQ.
    pub fn move_all_unschedulable(&mut self, now: SimTime) {
        for key in std::mem::take(&mut self.unschedulable) {
            self.requeue(key, now);
        }
    }

    fn requeue(&mut self, key: ObjectKey, now: SimTime) {
        let Some(e) = self.entries.get(&key) else {
            return;
        };
        let until = e
            .failed_at
            .map(|t| t.after(self.backoff_for(e.attempts)))
            .unwrap_or(now);
        if until > now {
            self.push_backoff(key, until);
        } else {
            self.push_active(key);
        }
    }

    /// Periodic work: backoffQ pods whose back-off ran out become active;
    /// pods unschedulable for 5 minutes are retried.
    pub fn flush(&mut self, now: SimTime) {
        while let Some((&(until, _), _)) = self.backoff.first_key_value() {
            if until > now {
                break;
            }
            let (_, key) = self.backoff.pop_first().expect("checked");
            if let Some(e) = self.entries.get_mut(&key) {
                e.backoff_at = None;
            }
            self.push_active(key);
        }
        let stale: Vec<ObjectKey> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.entries[*k]
                    .failed_at
                    .is_some_and(|t| now.since(t) >= MAX_UNSCHEDULABLE)
            })
            .cloned()
            .collect();
        for k in stale {
            self.unschedulable.remove(&k);
            self.requeue(k, now);
        }
    }

    /// The pods waiting as unschedulable.
    pub fn unschedulable_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.unschedulable.iter()
    }

    /// When the earliest backoffQ pod becomes ready, if any.
    pub fn next_backoff_expiry(&self) -> Option<SimTime> {
        self.backoff.first_key_value().map(|((t, _), _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    fn key(n: &str) -> ObjectKey {
        ObjectKey {
            kind: Kind::Pod,
            namespace: "default".into(),
            name: n.into(),
        }
    }

    fn t(s: u64) -> SimTime {
        SimTime(SimDuration::from_secs(s).nanos())
    }

    #[test]
    fn higher_priority_first_then_first_come() {
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(1));
        q.add(key("b"), 10, t(2));
        q.add(key("c"), 0, t(0));
        assert_eq!(q.pop(), Some(key("b")));
        assert_eq!(q.pop(), Some(key("c")));
        assert_eq!(q.pop(), Some(key("a")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn backoff_doubles_from_1s_to_10s() {
        let got: Vec<u64> = (1..=6)
            .map(|a| SchedulingQueue::new().backoff_for(a).nanos() / 1_000_000_000)
            .collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(0));
        q.pop();
        q.error(&key("a"), t(10));
        q.flush(t(10));
        assert_eq!(q.pop(), None, "still backing off");
        assert_eq!(q.next_backoff_expiry(), Some(t(11)));
        q.flush(t(11));
        assert_eq!(q.pop(), Some(key("a")));
    }

    #[test]
    fn unschedulable_pods_return_on_events_or_after_five_minutes() {
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(0));
        q.add(key("b"), 0, t(0));
        q.pop();
        q.pop();
        q.unschedulable(&key("a"), t(0));
        q.unschedulable(&key("b"), t(0));
        q.flush(t(100));
        assert_eq!(q.pop(), None, "nothing changed yet");
        // A node was added: both go back (their 1 s back-off is over).
        q.move_all_unschedulable(t(100));
        assert_eq!(q.pop(), Some(key("a")));
        q.unschedulable(&key("a"), t(100));
        assert_eq!(q.pop(), Some(key("b")));
        q.unschedulable(&key("b"), t(100));
        q.flush(t(399));
        assert_eq!(q.pop(), None);
        q.flush(t(400));
        assert_eq!(q.pop(), Some(key("a")));
        assert_eq!(q.pop(), Some(key("b")));
    }
}
