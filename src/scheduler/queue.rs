//! The scheduling queue, as upstream's `PriorityQueue` (v1.34) keeps it:
//! activeQ ordered as PrioritySort orders it (higher priority first, then
//! the earlier timestamp: when the pod was added or last failed); the
//! backoffQ, split into the pods rejected by plugins (ordered by backoff
//! expiry in whole-second windows, then as activeQ) and the pods that hit
//! an error (ordered by expiry); and the unschedulable pods, which go back
//! when a cluster event that the plugins that rejected them say may help
//! arrives, or when they have waited longer than 5 minutes.
//!
//! With `SchedulerPopFromBackoffQ` (on since 1.33) a pop with activeQ
//! empty takes the head of the rejected-pods backoffQ before its backoff
//! ends. Pods being scheduled are in flight: the events that arrive
//! meanwhile are kept, and replayed against the pod's rejectors when its
//! attempt fails (`determineSchedulingHintForInFlightPod`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::cluster_event::{QueuedEvent, UNSCHEDULABLE_TIMEOUT};
use super::config::FilterPlugin;
use super::queueing_hint::QueueingHint;
use crate::api::ObjectKey;
use crate::sim::{SimDuration, SimTime};

pub const INITIAL_BACKOFF: SimDuration = SimDuration::from_secs(1);
pub const MAX_BACKOFF: SimDuration = SimDuration::from_secs(10);
/// `DefaultPodMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: SimDuration = SimDuration::from_secs(300);
/// `backoffQOrderingWindowDuration`, also the backoffQ flush period.
pub const BACKOFF_WINDOW: SimDuration = SimDuration::from_secs(1);
/// How often `flushUnschedulablePodsLeftover` runs.
pub const LEFTOVER_FLUSH_PERIOD: SimDuration = SimDuration::from_secs(30);

/// activeQ order: priority descending, then timestamp, then arrival.
type ActiveKey = (Reverse<i32>, SimTime, u64);
/// podBackoffQ order: backoff window, then as activeQ.
type BackoffKey = (SimTime, Reverse<i32>, SimTime, u64);
/// podErrorBackoffQ order: backoff expiry, then arrival.
type ErrorKey = (SimTime, u64);

/// Where the queue sends a pod (upstream's `queueingStrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    Skip,
    AfterBackoff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active(ActiveKey),
    Backoff(BackoffKey),
    ErrorBackoff(ErrorKey),
    Unschedulable,
    /// Popped: being scheduled or bound.
    InFlight,
}

#[derive(Clone, Debug)]
struct Entry {
    priority: i32,
    /// When it was added or last failed: activeQ order, backoff start and
    /// the 5-minute leftover clock.
    timestamp: SimTime,
    attempts: u32,
    unschedulable_count: u32,
    consecutive_errors: u32,
    /// The plugins that rejected it in its last attempt.
    rejectors: BTreeSet<FilterPlugin>,
    /// Whether an assigned pod's add or label change can concern it while
    /// unschedulable (see [`Scope::CrossTopology`]).
    cross_topology: bool,
    place: Place,
}

/// Which unschedulable pods a cluster event is offered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only pods rejected by PodTopologySpread or holding required
    /// inter-pod affinity terms: the only ones upstream's
    /// `getUnschedulablePodsWithCrossTopologyTerm` can return. An assigned
    /// pod's add or label change is offered to these alone, so the many
    /// pods waiting for room are not walked on every bind.
    CrossTopology,
}

/// One entry of the in-flight log: a pod that was popped, or an event.
#[derive(Clone, Debug)]
enum Logged {
    Pod,
    Event(Arc<QueuedEvent>),
}

/// Asked per (pod, rejecting plugin, event): the plugin's hint, or `None`
/// when the plugin does not register the event.
pub type HintFn<'a> =
    dyn FnMut(&ObjectKey, FilterPlugin, &QueuedEvent) -> Option<QueueingHint> + 'a;

pub struct SchedulingQueue {
    entries: BTreeMap<ObjectKey, Entry>,
    active: BTreeMap<ActiveKey, ObjectKey>,
    backoff: BTreeMap<BackoffKey, ObjectKey>,
    error_backoff: BTreeMap<ErrorKey, ObjectKey>,
    unschedulable: BTreeSet<ObjectKey>,
    /// The unschedulable pods in [`Scope::CrossTopology`].
    cross_topology: BTreeSet<ObjectKey>,
    /// In-flight pods and the events seen since each was popped, in order.
    log: BTreeMap<u64, Logged>,
    in_flight: BTreeMap<ObjectKey, u64>,
    seq: u64,
    initial_backoff: SimDuration,
    max_backoff: SimDuration,
}

impl Default for SchedulingQueue {
    fn default() -> Self {
        SchedulingQueue::with_backoff(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

/// `t` truncated to its backoff ordering window.
fn window(t: SimTime) -> SimTime {
    SimTime(t.0 - t.0 % BACKOFF_WINDOW.nanos())
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
            error_backoff: BTreeMap::new(),
            unschedulable: BTreeSet::new(),
            cross_topology: BTreeSet::new(),
            log: BTreeMap::new(),
            in_flight: BTreeMap::new(),
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

    /// The pods waiting as unschedulable.
    pub fn unschedulable_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        self.unschedulable.iter()
    }

    /// The backoff after `count` failures: initial × 2^(count−1), capped.
    pub fn backoff_for(&self, count: u32) -> SimDuration {
        if count == 0 {
            return SimDuration::ZERO;
        }
        let mut d = self.initial_backoff;
        for _ in 1..count {
            if d >= self.max_backoff {
                break;
            }
            d = d + d;
        }
        d.min(self.max_backoff)
    }

    /// When the pod's backoff ends, aligned to its window (`getBackoffTime`):
    /// counted by consecutive errors if the last attempts erred, else by
    /// unschedulable attempts. `None` for a pod never rejected.
    fn backoff_expiry(&self, e: &Entry) -> Option<SimTime> {
        let count = if e.consecutive_errors > 0 {
            e.consecutive_errors
        } else {
            e.unschedulable_count
        };
        (count > 0).then(|| window(e.timestamp.after(self.backoff_for(count))))
    }

    /// Still backing off: its window is the current one or later.
    fn backing_off(&self, e: &Entry, now: SimTime) -> bool {
        self.backoff_expiry(e).is_some_and(|t| t >= window(now))
    }

    /// Takes the pod out of wherever it sits.
    fn detach(&mut self, key: &ObjectKey) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        match std::mem::replace(&mut e.place, Place::InFlight) {
            Place::Active(k) => {
                self.active.remove(&k);
            }
            Place::Backoff(k) => {
                self.backoff.remove(&k);
            }
            Place::ErrorBackoff(k) => {
                self.error_backoff.remove(&k);
            }
            Place::Unschedulable => {
                self.unschedulable.remove(key);
                self.cross_topology.remove(key);
            }
            Place::InFlight => {}
        }
    }

    fn push_active(&mut self, key: ObjectKey) {
        self.detach(&key);
        self.seq += 1;
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        let at = (Reverse(e.priority), e.timestamp, self.seq);
        e.place = Place::Active(at);
        self.active.insert(at, key);
    }

    fn push_backoff(&mut self, key: ObjectKey) {
        self.detach(&key);
        self.seq += 1;
        let Some(e) = self.entries.get(&key) else {
            return;
        };
        let until = self.backoff_expiry(e).unwrap_or(e.timestamp);
        let place = if e.rejectors.is_empty() {
            let at = (until, self.seq);
            self.error_backoff.insert(at, key.clone());
            Place::ErrorBackoff(at)
        } else {
            let at = (until, Reverse(e.priority), e.timestamp, self.seq);
            self.backoff.insert(at, key.clone());
            Place::Backoff(at)
        };
        if let Some(e) = self.entries.get_mut(&key) {
            e.place = place;
        }
    }

    fn push_unschedulable(&mut self, key: ObjectKey) {
        self.detach(&key);
        if let Some(e) = self.entries.get_mut(&key) {
            e.place = Place::Unschedulable;
            if e.cross_topology {
                self.cross_topology.insert(key.clone());
            }
            self.unschedulable.insert(key);
        }
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
                timestamp: now,
                attempts: 0,
                unschedulable_count: 0,
                consecutive_errors: 0,
                rejectors: BTreeSet::new(),
                cross_topology: false,
                place: Place::InFlight,
            },
        );
        self.push_active(key);
    }

    /// The pod is gone (deleted, or bound by someone else).
    pub fn remove(&mut self, key: &ObjectKey) {
        self.detach(key);
        self.entries.remove(key);
        self.finish_flight(key);
    }

    /// The next pod to schedule: the head of activeQ, or with activeQ
    /// empty the head of the rejected pods' backoffQ, backoff or not
    /// (never an erring pod's). The pod is in flight until it fails or
    /// is done.
    pub fn pop(&mut self) -> Option<ObjectKey> {
        let key = match self.active.first_key_value() {
            Some((_, k)) => k.clone(),
            None => self.backoff.first_key_value()?.1.clone(),
        };
        self.detach(&key);
        if let Some(e) = self.entries.get_mut(&key) {
            e.attempts += 1;
            e.rejectors.clear();
        }
        self.seq += 1;
        self.log.insert(self.seq, Logged::Pod);
        self.in_flight.insert(key.clone(), self.seq);
        Some(key)
    }

    /// How many times the pod was popped.
    pub fn attempts(&self, key: &ObjectKey) -> u32 {
        self.entries.get(key).map_or(0, |e| e.attempts)
    }

    /// Whether the pod waits as unschedulable.
    pub fn is_unschedulable(&self, key: &ObjectKey) -> bool {
        self.unschedulable.contains(key)
    }

    /// Whether the pod sits in a backoffQ.
    pub fn is_backing_off(&self, key: &ObjectKey) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| matches!(e.place, Place::Backoff(_) | Place::ErrorBackoff(_)))
    }

    /// The pod's attempt is over: it leaves the in-flight log, and the
    /// events only it was waiting on are dropped.
    fn finish_flight(&mut self, key: &ObjectKey) {
        let Some(seq) = self.in_flight.remove(key) else {
            return;
        };
        self.log.remove(&seq);
        while let Some(e) = self.log.first_entry() {
            if matches!(e.get(), Logged::Pod) {
                break;
            }
            e.remove();
        }
    }

    /// A popped pod was rejected by `rejectors` (`AddUnschedulableIfNotPresent`):
    /// the events seen while it was in flight decide whether it waits as
    /// unschedulable or goes back after its backoff. `affinity_terms`:
    /// the pod has required inter-pod affinity terms.
    pub fn unschedulable(
        &mut self,
        key: &ObjectKey,
        rejectors: BTreeSet<FilterPlugin>,
        affinity_terms: bool,
        now: SimTime,
        hint: &mut HintFn<'_>,
    ) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.unschedulable_count += 1;
        e.consecutive_errors = 0;
        e.timestamp = now;
        e.cross_topology = affinity_terms || rejectors.contains(&FilterPlugin::PodTopologySpread);
        e.rejectors = rejectors;
        let strategy = self.hint_for_in_flight(key, hint);
        self.finish_flight(key);
        self.requeue(key.clone(), strategy, now);
    }

    /// A popped pod hit an error (a failed bind): no plugin rejected it, so
    /// it goes to the error backoffQ.
    pub fn error(&mut self, key: &ObjectKey, now: SimTime) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.consecutive_errors += 1;
        e.timestamp = now;
        e.rejectors.clear();
        self.finish_flight(key);
        self.requeue(key.clone(), Strategy::AfterBackoff, now);
    }

    /// The pod was scheduled and bound: it leaves the queue.
    pub fn done(&mut self, key: &ObjectKey) {
        self.remove(key);
    }

    /// Replays the events seen since the pod was popped.
    fn hint_for_in_flight(&self, key: &ObjectKey, hint: &mut HintFn<'_>) -> Strategy {
        let Some(e) = self.entries.get(key) else {
            return Strategy::Skip;
        };
        if e.rejectors.is_empty() {
            return Strategy::AfterBackoff;
        }
        let Some(&from) = self.in_flight.get(key) else {
            return Strategy::AfterBackoff;
        };
        let worth = self.log.range(from + 1..).any(|(_, l)| match l {
            Logged::Event(ev) => worth_requeuing(key, &e.rejectors, ev, hint) != Strategy::Skip,
            Logged::Pod => false,
        });
        if worth {
            Strategy::AfterBackoff
        } else {
            Strategy::Skip
        }
    }

    /// `requeuePodWithQueueingStrategy`.
    fn requeue(&mut self, key: ObjectKey, strategy: Strategy, now: SimTime) {
        let Some(e) = self.entries.get(&key) else {
            return;
        };
        match strategy {
            Strategy::Skip => self.push_unschedulable(key),
            Strategy::AfterBackoff if self.backing_off(e, now) => self.push_backoff(key),
            Strategy::AfterBackoff => self.push_active(key),
        }
    }

    /// A cluster event: each unschedulable pod in `scope` that `precheck`
    /// admits goes back if a plugin that rejected it says the event may
    /// help; the event is kept for the pods in flight. Returns how many
    /// pods moved. `precheck` must admit no pod outside `scope`.
    pub fn on_event(
        &mut self,
        ev: Arc<QueuedEvent>,
        now: SimTime,
        scope: Scope,
        precheck: &dyn Fn(&ObjectKey, &BTreeSet<FilterPlugin>) -> bool,
        hint: &mut HintFn<'_>,
    ) -> usize {
        let mut moved = Vec::new();
        let candidates = match scope {
            Scope::All => &self.unschedulable,
            Scope::CrossTopology => &self.cross_topology,
        };
        for key in candidates {
            let rejectors = &self.entries[key].rejectors;
            if !precheck(key, rejectors) {
                continue;
            }
            if worth_requeuing(key, rejectors, &ev, hint) != Strategy::Skip {
                moved.push(key.clone());
            }
        }
        let n = moved.len();
        for key in moved {
            self.requeue(key, Strategy::AfterBackoff, now);
        }
        if !self.in_flight.is_empty() {
            self.seq += 1;
            self.log.insert(self.seq, Logged::Event(ev));
        }
        n
    }

    /// `flushBackoffQCompleted`, every second on the window boundary: pods
    /// whose backoff window has passed become active.
    pub fn flush_backoff(&mut self, now: SimTime) {
        // Both queues are ordered by backoff expiry: stop at the first pod
        // still backing off.
        let ready = |k: &&ObjectKey| !self.backing_off(&self.entries[*k], now);
        let done: Vec<ObjectKey> = (self.backoff.values().take_while(ready))
            .chain(self.error_backoff.values().take_while(ready))
            .cloned()
            .collect();
        for key in done {
            self.push_active(key);
        }
    }

    /// `flushUnschedulablePodsLeftover`, every 30 s: pods unschedulable for
    /// longer than 5 minutes (strictly) go back, as after a wildcard event.
    pub fn flush_leftover(&mut self, now: SimTime) -> usize {
        let stale: Vec<ObjectKey> = self
            .unschedulable
            .iter()
            .filter(|k| now.since(self.entries[*k].timestamp) > MAX_UNSCHEDULABLE)
            .cloned()
            .collect();
        if stale.is_empty() {
            return 0;
        }
        let n = stale.len();
        for k in stale {
            self.requeue(k, Strategy::AfterBackoff, now);
        }
        if !self.in_flight.is_empty() {
            self.seq += 1;
            let ev = QueuedEvent {
                event: UNSCHEDULABLE_TIMEOUT,
                old: None,
                new: None,
            };
            self.log.insert(self.seq, Logged::Event(Arc::new(ev)));
        }
        n
    }
}

/// `isPodWorthRequeuing`: a pod no plugin rejected, or any wildcard event,
/// goes back after its backoff; otherwise some rejecting plugin that
/// registers the event must answer Queue.
fn worth_requeuing(
    key: &ObjectKey,
    rejectors: &BTreeSet<FilterPlugin>,
    ev: &QueuedEvent,
    hint: &mut HintFn<'_>,
) -> Strategy {
    if rejectors.is_empty() || ev.event.is_wildcard() {
        return Strategy::AfterBackoff;
    }
    let queue = rejectors
        .iter()
        .any(|p| hint(key, *p, ev) == Some(QueueingHint::Queue));
    if queue {
        Strategy::AfterBackoff
    } else {
        Strategy::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;
    use crate::scheduler::cluster_event::{ASSIGNED_POD_ADD, ASSIGNED_POD_DELETE, NODE_ADD};

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

    fn ms(ms: u64) -> SimTime {
        SimTime(SimDuration::from_millis(ms).nanos())
    }

    fn fit() -> BTreeSet<FilterPlugin> {
        [FilterPlugin::NodeResourcesFit].into_iter().collect()
    }

    fn event(e: crate::scheduler::cluster_event::ClusterEvent) -> Arc<QueuedEvent> {
        Arc::new(QueuedEvent {
            event: e,
            old: None,
            new: None,
        })
    }

    /// Every registered plugin answers Queue.
    fn always(_: &ObjectKey, _: FilterPlugin, _: &QueuedEvent) -> Option<QueueingHint> {
        Some(QueueingHint::Queue)
    }

    fn never(_: &ObjectKey, _: FilterPlugin, _: &QueuedEvent) -> Option<QueueingHint> {
        Some(QueueingHint::QueueSkip)
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
    fn backoff_doubles_from_1s_to_10s_in_whole_second_windows() {
        let got: Vec<u64> = (1..=6)
            .map(|a| SchedulingQueue::new().backoff_for(a).nanos() / 1_000_000_000)
            .collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(0));
        q.pop();
        // Errs at 10.3 s: 1 s of backoff ends at 11.3 s, window 11 s; the
        // pod is still backing off while now's window is 11 s, so the
        // flush at 12 s is the first to move it.
        q.error(&key("a"), ms(10_300));
        assert!(q.is_backing_off(&key("a")));
        q.flush_backoff(t(11));
        q.flush_backoff(ms(11_900));
        assert_eq!(q.pop(), None, "an erring pod is never popped early");
        q.flush_backoff(t(12));
        assert_eq!(q.pop(), Some(key("a")));
    }

    #[test]
    fn an_empty_active_queue_pops_the_backoff_head_before_its_backoff_ends() {
        let mut q = SchedulingQueue::new();
        q.add(key("low"), 0, t(0));
        q.add(key("high"), 5, t(0));
        for k in ["high", "low"] {
            assert_eq!(q.pop(), Some(key(k)));
            q.unschedulable(&key(k), fit(), false, t(10), &mut always);
        }
        // At 10.5 s a node is added; both were rejected at 10 s with 1 s
        // of backoff (window 11 s), so both go to backoffQ, not activeQ.
        q.on_event(
            event(NODE_ADD),
            ms(10_500),
            Scope::All,
            &|_, _| true,
            &mut always,
        );
        assert!(q.is_backing_off(&key("low")) && q.is_backing_off(&key("high")));
        // activeQ is empty: pop takes backoffQ's head at once, 0.5 s early;
        // same window, so priority decides.
        assert_eq!(q.pop(), Some(key("high")));
        assert_eq!(q.pop(), Some(key("low")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn events_move_only_pods_whose_rejectors_say_queue() {
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(0));
        q.pop();
        q.unschedulable(&key("a"), fit(), false, t(0), &mut always);
        assert_eq!(
            q.on_event(event(NODE_ADD), t(5), Scope::All, &|_, _| true, &mut never),
            0
        );
        assert!(q.is_unschedulable(&key("a")));
        assert_eq!(
            q.on_event(event(NODE_ADD), t(5), Scope::All, &|_, _| true, &mut always),
            1
        );
        // Rejected at 0 s with 1 s of backoff: at 5 s it is active.
        assert_eq!(q.pop(), Some(key("a")));
    }

    #[test]
    fn events_during_the_attempt_are_replayed_when_it_fails() {
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(0));
        q.add(key("b"), 0, t(1));
        assert_eq!(q.pop(), Some(key("a")));
        // A pod is deleted while a is being scheduled: nobody waits yet.
        q.on_event(
            event(ASSIGNED_POD_DELETE),
            t(1),
            Scope::All,
            &|_, _| true,
            &mut always,
        );
        q.unschedulable(&key("a"), fit(), false, t(2), &mut always);
        assert!(
            !q.is_unschedulable(&key("a")),
            "the deletion may have helped"
        );
        // b's attempt sees no event: it waits.
        assert_eq!(q.pop(), Some(key("b")));
        q.unschedulable(&key("b"), fit(), false, t(3), &mut always);
        assert!(q.is_unschedulable(&key("b")));
        // The log emptied as the attempts ended.
        assert!(q.log.is_empty());
    }

    #[test]
    fn leftovers_go_back_only_after_strictly_more_than_five_minutes() {
        let mut q = SchedulingQueue::new();
        q.add(key("a"), 0, t(0));
        q.pop();
        q.unschedulable(&key("a"), fit(), false, t(30), &mut always);
        // Exactly 300 s later it has not stayed longer than 5 minutes.
        assert_eq!(q.flush_leftover(t(330)), 0);
        assert_eq!(q.flush_leftover(ms(330_001)), 1);
        assert_eq!(q.pop(), Some(key("a")));
    }

    #[test]
    fn a_cross_topology_event_is_offered_only_to_spread_or_affinity_pods() {
        let mut q = SchedulingQueue::new();
        let spread: BTreeSet<FilterPlugin> = [FilterPlugin::PodTopologySpread].into();
        for k in ["fit", "spread", "affinity"] {
            q.add(key(k), 0, t(0));
        }
        for (k, rejectors, terms) in [
            ("fit", fit(), false),
            ("spread", spread, false),
            ("affinity", fit(), true),
        ] {
            assert_eq!(q.pop(), Some(key(k)));
            q.unschedulable(&key(k), rejectors, terms, t(1), &mut always);
        }
        let offered = std::cell::RefCell::new(Vec::new());
        let precheck = |k: &ObjectKey, _: &BTreeSet<FilterPlugin>| {
            offered.borrow_mut().push(k.name.clone());
            false
        };
        q.on_event(
            event(ASSIGNED_POD_ADD),
            t(2),
            Scope::CrossTopology,
            &precheck,
            &mut always,
        );
        // In key order; "fit" waits only for room and is never walked.
        assert_eq!(*offered.borrow(), ["affinity", "spread"]);
        assert_eq!(q.cross_topology.len(), 2);
        // A pod leaving the unschedulable pods leaves the scope with them.
        q.remove(&key("spread"));
        assert_eq!(q.cross_topology.len(), 1);
        let moved = q.on_event(
            event(ASSIGNED_POD_ADD),
            t(3),
            Scope::All,
            &|_, _| true,
            &mut always,
        );
        assert_eq!(moved, 2);
        assert!(q.cross_topology.is_empty());
    }
}
