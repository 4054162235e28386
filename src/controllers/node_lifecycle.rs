//! The node lifecycle controller (`pkg/controller/nodelifecycle`): every
//! node-monitor-period it checks when it last saw each node's heartbeat (a
//! Ready heartbeat or a Lease renewal); past the grace period the node's
//! conditions go Unknown and its pods NotReady. NoExecute taints follow the
//! Ready condition (`not-ready` for False, `unreachable` for Unknown), added
//! through a per-zone token bucket (0.1 per second, burst 1; slower or
//! stopped when a zone is partially disrupted, stopped when every zone is
//! fully disrupted). NoSchedule taints follow without a rate limit.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workqueue::WorkQueue;
use crate::api::default_tolerations::{NOT_READY, UNREACHABLE};
use crate::api::node::Taint;
use crate::api::pod::Condition;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};
use crate::sim::{SimDuration, SimTime};

const MONITOR: u32 = 0;
const TAINT_PASS: u32 = 1;
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

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

#[derive(Clone, Debug, Default)]
struct Health {
    probe: SimTime,
    heartbeat: Option<SimTime>,
    lease_renew: Option<SimTime>,
}

#[derive(Debug, Default)]
struct ZoneTainter {
    queue: VecDeque<String>,
    tokens: f64,
    at: SimTime,
}

pub struct NodeLifecycleController {
    period: SimDuration,
    grace: SimDuration,
    health: BTreeMap<String, Health>,
    zones: BTreeMap<String, ZoneTainter>,
    queued: BTreeSet<String>,
    taint_pass_at: Option<SimTime>,
}

impl NodeLifecycleController {
    pub fn new(period: SimDuration, grace: SimDuration) -> Self {
        NodeLifecycleController {
            period,
            grace,
            health: BTreeMap::new(),
            zones: BTreeMap::new(),
            queued: BTreeSet::new(),
            taint_pass_at: None,
        }
    }

    fn ready_status(n: &Object) -> &'static str {
        n.as_node()
            .and_then(|b| b.conditions.iter().find(|c| c.type_ == "Ready"))
            .map_or("Unknown", |c| c.status)
    }

    fn zone_of(n: &Object) -> String {
        n.meta.labels.get(ZONE_LABEL).cloned().unwrap_or_default()
    }

    fn has_taint(n: &Object, key: &str, effect: &str) -> bool {
        n.as_node()
            .is_some_and(|b| b.taints.iter().any(|t| t.key == key && t.effect == effect))
    }

    fn taint(key: &str, effect: &str, now: SimTime) -> Taint {
        Taint {
            key: key.into(),
            value: String::new(),
            effect: effect.into(),
            time_added: (effect == "NoExecute").then_some(now),
        }
    }

    /// Brings NoSchedule taints in line with Ready at once, and queues the
    /// NoExecute change behind the zone's rate limit.
    fn reconcile_taints(&mut self, n: &Object, cx: &mut SyncCtx<'_>, all_disrupted: bool) {
        let ready = Self::ready_status(n);
        let want = match ready {
            "False" => Some(NOT_READY),
            "Unknown" => Some(UNREACHABLE),
            _ => None,
        };
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for key in [NOT_READY, UNREACHABLE] {
            let wanted = want == Some(key);
            if wanted && !Self::has_taint(n, key, "NoSchedule") {
                add.push(Self::taint(key, "NoSchedule", cx.now));
            }
            if !wanted && Self::has_taint(n, key, "NoSchedule") {
                remove.push((key.to_string(), "NoSchedule".to_string()));
            }
            // Back to Ready (or every zone down): NoExecute goes at once.
            if (!wanted || all_disrupted) && Self::has_taint(n, key, "NoExecute") {
                remove.push((key.to_string(), "NoExecute".to_string()));
            }
        }
        if !add.is_empty() || !remove.is_empty() {
            let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &n.meta.name);
            req.patch = Some(PatchOp::NodeTaints { add, remove });
            cx.send(req);
        }
        if let Some(key) = want {
            if !all_disrupted
                && !Self::has_taint(n, key, "NoExecute")
                && self.queued.insert(n.meta.name.clone())
            {
                self.zones
                    .entry(Self::zone_of(n))
                    .or_insert_with(|| ZoneTainter {
                        tokens: 1.0,
                        ..Default::default()
                    })
                    .queue
                    .push_back(n.meta.name.clone());
            }
        }
    }

    /// (Ready, not Ready) node counts per zone, and whether every zone is
    /// fully disrupted.
    fn zones(cache: &Cache) -> (BTreeMap<String, (usize, usize)>, bool) {
        let mut by_zone: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for n in cache.list_all(Kind::Node) {
            let e = by_zone.entry(Self::zone_of(n)).or_default();
            if Self::ready_status(n) == "True" {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let all = !by_zone.is_empty()
            && by_zone
                .values()
                .all(|(r, nr)| zone_state(*r, *nr) == ZoneState::FullDisruption);
        (by_zone, all)
    }

    fn monitor(&mut self, cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        let nodes: Vec<_> = cx.cache.list_all(Kind::Node).cloned().collect();
        for n in &nodes {
            let h = self
                .health
                .entry(n.meta.name.clone())
                .or_insert_with(|| Health {
                    probe: now,
                    ..Default::default()
                });
            if now.since(h.probe) <= self.grace {
                continue;
            }
            let Some(body) = n.as_node() else { continue };
            if body.conditions.iter().all(|c| c.status == "Unknown") && !body.conditions.is_empty()
            {
                continue;
            }
            // Kubelet stopped posting node status.
            let mut updated = (**n).clone();
            if let crate::api::object::Body::Node(b) = &mut updated.body {
                for c in b.conditions.iter_mut() {
                    if c.status != "Unknown" {
                        c.status = "Unknown";
                        c.last_transition = now;
                        c.reason = "NodeStatusUnknown";
                        c.message = "Kubelet stopped posting node status.";
                    }
                }
            }
            let mut req = ApiRequest::new(Verb::UpdateStatus, Kind::Node, "", &n.meta.name);
            req.resource_version = n.meta.resource_version;
            req.body = Some(std::sync::Arc::new(updated));
            cx.send(req);
            cx.event(
                n,
                "Normal",
                "NodeNotReady",
                format!("Node {} status is now: NodeNotReady", n.meta.name),
            );
            // MarkPodsNotReady.
            for p in cx.cache.list_all(Kind::Pod) {
                let on_node = p
                    .as_pod()
                    .is_some_and(|b| b.node_name.as_deref() == Some(&n.meta.name));
                if on_node && p.as_pod().is_some_and(|b| b.status.is_ready()) {
                    let mut req =
                        ApiRequest::new(Verb::Patch, Kind::Pod, &p.meta.namespace, &p.meta.name);
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
        }
        // Zone states over what the cache says now.
        let (by_zone, all_disrupted) = Self::zones(cx.cache);
        for n in &nodes {
            self.reconcile_taints(n, cx, all_disrupted);
        }
        self.taint_pass(cx, &by_zone, all_disrupted);
    }

    /// Takes tokens from each zone's bucket and taints the nodes due.
    fn taint_pass(
        &mut self,
        cx: &mut SyncCtx<'_>,
        by_zone: &BTreeMap<String, (usize, usize)>,
        all_disrupted: bool,
    ) {
        let now = cx.now;
        let mut next: Option<SimTime> = None;
        for (zone, t) in self.zones.iter_mut() {
            let (r, nr) = by_zone.get(zone).copied().unwrap_or((0, 0));
            let qps = if all_disrupted {
                0.0
            } else {
                zone_qps(zone_state(r, nr), r + nr)
            };
            t.tokens = (t.tokens + now.since(t.at).as_secs_f64() * qps).min(1.0);
            t.at = now;
            while let Some(name) = t.queue.front().cloned() {
                if qps <= 0.0 {
                    break;
                }
                if t.tokens < 1.0 {
                    let wait = SimDuration(((1.0 - t.tokens) / qps * 1e9).ceil() as u64);
                    let at = now.after(wait);
                    next = Some(next.map_or(at, |n: SimTime| n.min(at)));
                    break;
                }
                t.queue.pop_front();
                self.queued.remove(&name);
                let Some(n) = cx.cache.get(Kind::Node, "", &name).cloned() else {
                    continue;
                };
                let key = match Self::ready_status(&n) {
                    "False" => NOT_READY,
                    "Unknown" => UNREACHABLE,
                    _ => continue,
                };
                t.tokens -= 1.0;
                let other = if key == NOT_READY {
                    UNREACHABLE
                } else {
                    NOT_READY
                };
                let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &name);
                req.patch = Some(PatchOp::NodeTaints {
                    add: vec![Self::taint(key, "NoExecute", now)],
                    remove: vec![(other.to_string(), "NoExecute".to_string())],
                });
                cx.send(req);
            }
        }
        if let Some(at) = next {
            if self.taint_pass_at.is_none_or(|t| t <= now || at < t) {
                self.taint_pass_at = Some(at);
                cx.tick_after(at.since(now), TAINT_PASS);
            }
        }
    }
}

impl Controller for NodeLifecycleController {
    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, _queue: &mut WorkQueue, now: SimTime) {
        let Some(o) = &ev.new else {
            if ev.kind == Kind::Node {
                self.health.remove(&ev.object().meta.name);
            }
            return;
        };
        match o.kind {
            Kind::Node => {
                let hb = o
                    .as_node()
                    .and_then(|b| b.conditions.iter().find(|c| c.type_ == "Ready"))
                    .map(|c| c.last_heartbeat);
                let h = self
                    .health
                    .entry(o.meta.name.clone())
                    .or_insert_with(|| Health {
                        probe: now,
                        ..Default::default()
                    });
                if hb.is_some() && hb != h.heartbeat {
                    h.heartbeat = hb;
                    h.probe = now;
                }
            }
            Kind::Lease if o.meta.namespace == "kube-node-lease" => {
                let renew = o.as_lease().and_then(|l| l.renew_time);
                if let Some(h) = self.health.get_mut(&o.meta.name) {
                    if renew.is_some() && renew != h.lease_renew {
                        h.lease_renew = renew;
                        h.probe = now;
                    }
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, _key: &str, _cx: &mut SyncCtx<'_>) {}

    fn start(&mut self, cx: &mut SyncCtx<'_>) {
        cx.tick_after(self.period, MONITOR);
    }

    fn tick(&mut self, what: u32, cx: &mut SyncCtx<'_>, _queue: &mut WorkQueue) {
        match what {
            MONITOR => {
                cx.tick_after(self.period, MONITOR);
                self.monitor(cx);
            }
            _ => {
                self.taint_pass_at = None;
                let (by_zone, all) = Self::zones(cx.cache);
                self.taint_pass(cx, &by_zone, all);
            }
        }
    }

    fn reset(&mut self) {
        self.health.clear();
        self.zones.clear();
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
