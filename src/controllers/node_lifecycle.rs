//! The node lifecycle controller (`pkg/controller/nodelifecycle`), as of
//! v1.34. Every node-monitor-period it checks when it last heard from each
//! node (a new Ready heartbeat or a Lease renewal); past
//! `nodeMonitorGracePeriod` (or `nodeStartupGracePeriod`, counted from the
//! node's creation, for a node that never posted a Ready condition) the
//! node's conditions go Unknown and its pods NotReady. In the same pass the
//! node is queued for the NoExecute taint that matches its Ready condition
//! as just computed (`not-ready` for False, `unreachable` for Unknown;
//! v1.34 passes the current, not the previously observed, condition to
//! `processTaintBaseEviction`, kubernetes#120816). The queue is drained
//! every `NodeEvictionPeriod` (100 ms) through a per-zone token bucket (0.1
//! per second, burst 1; slower or stopped when a zone is partially
//! disrupted, stopped when every zone is fully disrupted). NoSchedule
//! taints follow the node's conditions on every Node update, without a rate
//! limit (`doNoScheduleTaintingPass`, run by the node-update workers).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workqueue::WorkQueue;
use crate::api::default_tolerations::{NOT_READY, UNREACHABLE};
use crate::api::node::{NodeCondition, Taint};
use crate::api::object::Body;
use crate::api::pod::Condition;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};
use crate::sim::{SimDuration, SimTime};

const MONITOR: u32 = 0;
const TAINT_PASS: u32 = 1;
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// `scheduler.NodeEvictionPeriod`: how often the NoExecute queue is tried.
pub const NODE_EVICTION_PERIOD: SimDuration = SimDuration(100_000_000);
/// The conditions a lost node's are set Unknown for (NetworkUnavailable is
/// the control plane's, so it is left alone).
const MONITORED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// `nodeConditionToTaintKeyStatusMap`: the NoSchedule taint a condition in
/// a status calls for.
const CONDITION_TAINTS: [(&str, &str, &str); 6] = [
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

/// A zone's health (`ComputeZoneState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// `ComputeZoneState` from counts of Ready and not-Ready nodes.
pub fn zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= 0.55 {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Eviction (tainting) rate for a zone in `state` of `size` nodes.
pub fn zone_qps(state: ZoneState, size: usize) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => 0.1,
        ZoneState::PartialDisruption if size > 50 => 0.01,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// What the controller last heard from a node (`nodeHealthData`).
#[derive(Clone, Debug, Default)]
struct Health {
    /// When it last heard anything new: the grace period counts from here.
    probe: SimTime,
    heartbeat: Option<SimTime>,
    lease_renew: Option<SimTime>,
}

/// A zone's `RateLimitedTimedQueue` of nodes to taint NoExecute, with its
/// token bucket (burst 1).
#[derive(Debug)]
struct ZoneTainter {
    queue: VecDeque<String>,
    tokens: f64,
    at: SimTime,
    qps: f64,
}

impl ZoneTainter {
    fn new(now: SimTime) -> Self {
        ZoneTainter {
            queue: VecDeque::new(),
            tokens: 1.0,
            at: now,
            qps: 0.1,
        }
    }

    fn refill(&mut self, now: SimTime) {
        self.tokens = (self.tokens + now.since(self.at).as_secs_f64() * self.qps).min(1.0);
        self.at = now;
    }

    /// `SwapLimiter`: a new bucket, full unless the old one was empty.
    fn swap_limiter(&mut self, qps: f64, now: SimTime) {
        if qps == self.qps {
            return;
        }
        self.refill(now);
        self.tokens = if qps > 0.0 && self.tokens >= 1.0 {
            1.0
        } else {
            0.0
        };
        self.qps = qps;
    }

    /// When the next token is there, if the bucket fills at all.
    fn token_at(&self, now: SimTime) -> Option<SimTime> {
        if self.queue.is_empty() || self.qps <= 0.0 {
            return None;
        }
        if self.tokens >= 1.0 {
            return Some(now);
        }
        let wait = ((1.0 - self.tokens) / self.qps * 1e9).ceil() as u64;
        Some(now.after(SimDuration(wait)))
    }
}

pub struct NodeLifecycleController {
    period: SimDuration,
    grace: SimDuration,
    startup_grace: SimDuration,
    health: BTreeMap<String, Health>,
    zones: BTreeMap<String, ZoneTainter>,
    /// `zoneStates`, for the zones that have nodes.
    zone_states: BTreeMap<String, ZoneState>,
    queued: BTreeSet<String>,
    /// When the controller started: the 100 ms tainting passes fall on
    /// this instant plus multiples of the period, as `wait.Until` ticks.
    started_at: SimTime,
    taint_pass_at: Option<SimTime>,
}

fn ready_condition(n: &Object) -> Option<&NodeCondition> {
    n.as_node()
        .and_then(|b| b.conditions.iter().find(|c| c.type_ == "Ready"))
}

fn has_taint(n: &Object, key: &str, effect: &str) -> bool {
    n.as_node()
        .is_some_and(|b| b.taints.iter().any(|t| t.key == key && t.effect == effect))
}

/// A taint as `SwapNodeControllerTaint` adds it: stamped with the time.
fn taint(key: &str, effect: &str, now: SimTime) -> Taint {
    Taint {
        key: key.into(),
        value: String::new(),
        effect: effect.into(),
        time_added: Some(now),
    }
}

fn zone_of(n: &Object) -> String {
    n.meta.labels.get(ZONE_LABEL).cloned().unwrap_or_default()
}

/// `node.kubernetes.io/exclude-disruption`: left out of zone health.
fn excluded_from_disruption(n: &Object) -> bool {
    n.meta
        .labels
        .contains_key("node.kubernetes.io/exclude-disruption")
}

fn swap_taints(cx: &mut SyncCtx<'_>, node: &str, add: Vec<Taint>, remove: Vec<(String, String)>) {
    if add.is_empty() && remove.is_empty() {
        return;
    }
    let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", node);
    req.patch = Some(PatchOp::NodeTaints { add, remove });
    cx.send(req);
}

/// The node with its monitored conditions set Unknown, as
/// `tryUpdateNodeHealth` writes it, or `None` if Ready is Unknown already
/// (nothing to write).
fn marked_unknown(n: &Object, now: SimTime) -> Option<Object> {
    if ready_condition(n).is_some_and(|c| c.status == "Unknown") {
        return None;
    }
    let mut o = n.clone();
    let Body::Node(b) = &mut o.body else {
        return None;
    };
    for type_ in MONITORED_CONDITIONS {
        match b.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown";
                c.reason = "NodeStatusUnknown";
                c.message = "Kubelet stopped posting node status.";
                c.last_transition = now;
            }
            Some(_) => {}
            None => b.conditions.push(NodeCondition {
                type_,
                status: "Unknown",
                last_heartbeat: n.meta.creation,
                last_transition: now,
                reason: "NodeStatusNeverUpdated",
                message: "Kubelet never posted node status.",
            }),
        }
    }
    Some(o)
}

impl NodeLifecycleController {
    pub fn new(period: SimDuration, grace: SimDuration, startup_grace: SimDuration) -> Self {
        NodeLifecycleController {
            period,
            grace,
            startup_grace,
            health: BTreeMap::new(),
            zones: BTreeMap::new(),
            zone_states: BTreeMap::new(),
            queued: BTreeSet::new(),
            started_at: SimTime::ZERO,
            taint_pass_at: None,
        }
    }

    /// The health record of `n`, made on first sight: a node that never
    /// posted Ready counts from its creation, any other from now.
    fn health_of(&mut self, n: &Object, now: SimTime) -> &mut Health {
        let probe = if ready_condition(n).is_some() {
            now
        } else {
            n.meta.creation
        };
        self.health
            .entry(n.meta.name.clone())
            .or_insert_with(|| Health {
                probe,
                ..Default::default()
            })
    }

    /// `tryUpdateNodeHealth` and the NotReady bookkeeping after it: returns
    /// the node's Ready status as it is after this pass (`None` while it
    /// never posted one and is still in its startup grace period).
    fn check_health(&mut self, n: &Arc<Object>, cx: &mut SyncCtx<'_>) -> Option<&'static str> {
        let now = cx.now;
        let observed = ready_condition(n).map(|c| c.status);
        let grace = if observed.is_some() {
            self.grace
        } else {
            self.startup_grace
        };
        let h = self.health_of(n, now);
        // Strictly after, as `now.After(probe + grace)`: the first pass
        // past the last heartbeat (as observed) plus the grace period.
        if now.since(h.probe) <= grace {
            return observed;
        }
        let Some(updated) = marked_unknown(n, now) else {
            return observed;
        };
        // What we write is what we saw: our own write is no new heartbeat.
        h.heartbeat = ready_condition(&updated).map(|c| c.last_heartbeat);
        let mut req = ApiRequest::new(Verb::UpdateStatus, Kind::Node, "", &n.meta.name);
        req.resource_version = n.meta.resource_version;
        req.body = Some(Arc::new(updated));
        cx.send(req);
        if observed == Some("True") {
            cx.event(
                n,
                "Normal",
                "NodeNotReady",
                format!("Node {} status is now: NodeNotReady", n.meta.name),
            );
            Self::mark_pods_not_ready(&n.meta.name, cx);
        }
        Some("Unknown")
    }

    /// `MarkPodsNotReady`.
    fn mark_pods_not_ready(node: &str, cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        let pods: Vec<_> = cx
            .cache
            .list_all(Kind::Pod)
            .filter(|p| {
                p.as_pod()
                    .is_some_and(|b| b.node_name.as_deref() == Some(node) && b.status.is_ready())
            })
            .cloned()
            .collect();
        for p in pods {
            let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, &p.meta.namespace, &p.meta.name);
            req.patch = Some(PatchOp::PodCondition {
                condition: Condition {
                    type_: "Ready",
                    status: false,
                    last_transition: now,
                    reason: None,
                    message: None,
                },
                nominated_node: None,
            });
            cx.send(req);
        }
    }

    /// `processTaintBaseEviction` with the Ready status this pass ended on.
    fn process_taint_based_eviction(&mut self, n: &Object, ready: &str, cx: &mut SyncCtx<'_>) {
        let (want, other) = match ready {
            "False" => (NOT_READY, UNREACHABLE),
            "Unknown" => (UNREACHABLE, NOT_READY),
            _ => return self.mark_reachable(n, cx),
        };
        if has_taint(n, other, "NoExecute") {
            // Already tainted the other way: swap at once, no rate limit.
            let add = vec![taint(want, "NoExecute", cx.now)];
            let remove = vec![(other.to_string(), "NoExecute".to_string())];
            return swap_taints(cx, &n.meta.name, add, remove);
        }
        if !has_taint(n, want, "NoExecute") && self.queued.insert(n.meta.name.clone()) {
            let now = cx.now;
            self.zones
                .entry(zone_of(n))
                .or_insert_with(|| ZoneTainter::new(now))
                .queue
                .push_back(n.meta.name.clone());
        }
    }

    /// `markNodeAsReachable`: both NoExecute taints off, out of the queue.
    fn mark_reachable(&mut self, n: &Object, cx: &mut SyncCtx<'_>) {
        let remove: Vec<(String, String)> = [NOT_READY, UNREACHABLE]
            .into_iter()
            .filter(|k| has_taint(n, k, "NoExecute"))
            .map(|k| (k.to_string(), "NoExecute".to_string()))
            .collect();
        swap_taints(cx, &n.meta.name, Vec::new(), remove);
        if self.queued.remove(&n.meta.name) {
            for t in self.zones.values_mut() {
                t.queue.retain(|x| *x != n.meta.name);
            }
        }
    }

    /// `handleDisruption`: zone states from this pass's Ready statuses,
    /// and the tainting rate each zone gets.
    fn handle_disruption(
        &mut self,
        current: &[(Arc<Object>, Option<&'static str>)],
        cx: &mut SyncCtx<'_>,
    ) {
        let now = cx.now;
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (n, ready) in current {
            if excluded_from_disruption(n) {
                continue;
            }
            let e = counts.entry(zone_of(n)).or_default();
            if *ready == Some("True") {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let new: BTreeMap<String, ZoneState> = counts
            .iter()
            .map(|(z, (r, nr))| (z.clone(), zone_state(*r, *nr)))
            .collect();
        let all_are = new.values().all(|s| *s == ZoneState::FullDisruption);
        self.zone_states.retain(|z, _| new.contains_key(z));
        let all_were = self
            .zone_states
            .values()
            .all(|s| *s == ZoneState::FullDisruption)
            && new.keys().all(|z| self.zone_states.contains_key(z));
        for z in new.keys() {
            self.zones
                .entry(z.clone())
                .or_insert_with(|| ZoneTainter::new(now));
        }
        if all_are && all_were {
            return;
        }
        if all_are {
            // Every zone down: the control plane is the likelier culprit.
            for (n, _) in current {
                self.mark_reachable(n, cx);
            }
            for t in self.zones.values_mut() {
                t.swap_limiter(0.0, now);
            }
        } else {
            if all_were {
                for h in self.health.values_mut() {
                    h.probe = now;
                }
            }
            for (z, state) in &new {
                if all_were || self.zone_states.get(z) != Some(state) {
                    let size = counts[z].0 + counts[z].1;
                    if let Some(t) = self.zones.get_mut(z) {
                        t.swap_limiter(zone_qps(*state, size), now);
                    }
                }
            }
        }
        self.zone_states = new;
    }

    fn monitor(&mut self, cx: &mut SyncCtx<'_>) {
        let nodes: Vec<Arc<Object>> = cx.cache.list_all(Kind::Node).cloned().collect();
        let mut current = Vec::with_capacity(nodes.len());
        for n in nodes {
            let ready = self.check_health(&n, cx);
            if let Some(r) = ready {
                self.process_taint_based_eviction(&n, r, cx);
            }
            current.push((n, ready));
        }
        self.handle_disruption(&current, cx);
        self.schedule_taint_pass(cx);
    }

    /// `doNoExecuteTaintingPass`: each zone's queue, as far as its tokens
    /// go; a node Ready again by now (in the cache) is dropped.
    fn taint_pass(&mut self, cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        for t in self.zones.values_mut() {
            t.refill(now);
            while !t.queue.is_empty() && t.qps > 0.0 && t.tokens >= 1.0 {
                t.tokens -= 1.0;
                let name = t.queue.pop_front().expect("not empty");
                self.queued.remove(&name);
                let Some(n) = cx.cache.get(Kind::Node, "", &name) else {
                    continue;
                };
                let (want, other) = match ready_condition(n).map(|c| c.status) {
                    Some("False") => (NOT_READY, UNREACHABLE),
                    Some("Unknown") => (UNREACHABLE, NOT_READY),
                    _ => continue,
                };
                let add = vec![taint(want, "NoExecute", now)];
                let remove = vec![(other.to_string(), "NoExecute".to_string())];
                swap_taints(cx, &name, add, remove);
            }
        }
        self.schedule_taint_pass(cx);
    }

    /// Asks for the first 100 ms tick at which some zone has a node queued
    /// and a token for it.
    fn schedule_taint_pass(&mut self, cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        let Some(due) = self.zones.values().filter_map(|t| t.token_at(now)).min() else {
            return;
        };
        let p = NODE_EVICTION_PERIOD.nanos();
        let since = due
            .max(now.after(SimDuration(1)))
            .since(self.started_at)
            .nanos();
        let at = self.started_at.after(SimDuration(since.div_ceil(p) * p));
        if self.taint_pass_at.is_some_and(|t| t > now && t <= at) {
            return;
        }
        self.taint_pass_at = Some(at);
        cx.tick_after(at.since(now), TAINT_PASS);
    }

    /// `doNoScheduleTaintingPass`: the NoSchedule taints the node's
    /// conditions call for, and no others of those keys.
    fn no_schedule_pass(n: &Object, cx: &mut SyncCtx<'_>) {
        let Some(b) = n.as_node() else { return };
        let want: Vec<&str> = CONDITION_TAINTS
            .iter()
            .filter(|(t, s, _)| b.conditions.iter().any(|c| c.type_ == *t && c.status == *s))
            .map(|(_, _, k)| *k)
            .collect();
        let add = want
            .iter()
            .filter(|k| !has_taint(n, k, "NoSchedule"))
            .map(|k| taint(k, "NoSchedule", cx.now))
            .collect();
        let remove = b
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule")
            .filter(|t| CONDITION_TAINTS.iter().any(|(_, _, k)| *k == t.key))
            .filter(|t| !want.contains(&t.key.as_str()))
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect();
        swap_taints(cx, &n.meta.name, add, remove);
    }
}

impl Controller for NodeLifecycleController {
    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    /// `nodeUpdateWorkerSize`.
    fn workers(&self) -> usize {
        8
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        let Some(o) = &ev.new else {
            if ev.kind == Kind::Node {
                self.health.remove(&ev.object().meta.name);
            }
            return;
        };
        match o.kind {
            Kind::Node => {
                let hb = ready_condition(o).map(|c| c.last_heartbeat);
                let h = self.health_of(o, now);
                if hb.is_some() && hb != h.heartbeat {
                    h.heartbeat = hb;
                    h.probe = now;
                }
                queue.add(&o.meta.name);
            }
            Kind::Lease if o.meta.namespace == "kube-node-lease" => {
                let renew = o.as_lease().and_then(|l| l.renew_time);
                if let Some(h) = self.health.get_mut(&o.meta.name) {
                    if renew.is_some() && renew > h.lease_renew {
                        h.lease_renew = renew;
                        h.probe = now;
                    }
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        if let Some(n) = cx.cache.get(Kind::Node, "", key).cloned() {
            Self::no_schedule_pass(&n, cx);
        }
    }

    fn start(&mut self, cx: &mut SyncCtx<'_>) {
        self.started_at = cx.now;
        cx.tick_after(self.period, MONITOR);
    }

    fn tick(&mut self, what: u32, cx: &mut SyncCtx<'_>, _queue: &mut WorkQueue) {
        match what {
            MONITOR => {
                cx.tick_after(self.period, MONITOR);
                self.monitor(cx);
            }
            _ => {
                if self.taint_pass_at == Some(cx.now) {
                    self.taint_pass_at = None;
                }
                self.taint_pass(cx);
            }
        }
    }

    fn reset(&mut self) {
        self.health.clear();
        self.zones.clear();
        self.zone_states.clear();
        self.queued.clear();
        self.taint_pass_at = None;
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_states_match_upstream_table() {
        let cases = [
            (10, 0, ZoneState::Normal),
            (0, 3, ZoneState::FullDisruption),
            (1, 2, ZoneState::Normal),
            (2, 3, ZoneState::PartialDisruption),
            (3, 3, ZoneState::Normal),
            (45, 55, ZoneState::PartialDisruption),
        ];
        for (r, nr, want) in cases {
            assert_eq!(zone_state(r, nr), want, "ready {r} notReady {nr}");
        }
        assert_eq!(zone_qps(ZoneState::PartialDisruption, 51), 0.01);
        assert_eq!(zone_qps(ZoneState::PartialDisruption, 50), 0.0);
    }
}
