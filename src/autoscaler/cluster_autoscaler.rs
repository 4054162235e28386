//! The cluster autoscaler's loop (upstream's `StaticAutoscaler.RunOnce`),
//! run every scan interval in its own process:
//!
//! 1. ask the cloud for every group's target size and instances;
//! 2. delete instances that did not become Ready nodes within the max node
//!    provision time, and back their group off (5 min, doubling to 30);
//! 3. put template nodes for the upcoming instances in the snapshot, drop
//!    the pending pods that fit on a registered or upcoming node, and, if
//!    any remain, estimate each group's scale-up, let the expander pick
//!    one, and IncreaseSize it (the loop ends there);
//! 4. otherwise find the unneeded nodes, mark them with the soft taint,
//!    and, out of cooldown, start deleting those unneeded long enough.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::actuation::{self, Actuator, Finished, DELETION_CANDIDATE, TO_BE_DELETED};
use super::cloud_api::{CloudAnswer, CloudCall, CloudReply, GroupStatus, InstanceState};
use super::config::AutoscalerConfig;
use super::expander;
use super::scale_down::{self, Budgets, Unneeded, SCALE_DOWN_DISABLED};
use super::scale_up::{self, ScaleUpOption};
use super::view::ClusterView;
use crate::api::{Kind, Object};
use crate::controllers::cache::{Cache, CacheEvent};
use crate::controllers::controller::{Controller, SyncCtx};
use crate::controllers::workqueue::WorkQueue;
use crate::model::apiserver::request::{ApiRequest, ApiResponse};
use crate::model::client::RateLimit;
use crate::scheduler::config::Profile;
use crate::sim::{RngStream, SimDuration, SimTime};

/// The process's name, and the Events' source.
pub const PROCESS: &str = "cluster-autoscaler";

/// What the process watches.
pub const WATCHED: &[Kind] = &[
    Kind::Node,
    Kind::Pod,
    Kind::PodDisruptionBudget,
    Kind::ConfigMap,
];

/// `--kube-client-qps` and `--kube-client-burst`.
pub const CLIENT: RateLimit = RateLimit {
    qps: 5.0,
    burst: 10,
};

const LOOP: u32 = 0;
/// Actuation's 5 s poll.
const ACTUATE: u32 = 1;
/// Actuation's step when a node's delay after tainting ends.
const ACTUATE_NOW: u32 = 2;

/// A group's scale-up back-off.
#[derive(Clone, Copy)]
struct Backoff {
    duration: SimDuration,
    until: SimTime,
    last_failure: SimTime,
}

pub struct ClusterAutoscaler {
    cfg: Arc<AutoscalerConfig>,
    profile: Profile,
    seed: u64,
    rng: RngStream,
    view: ClusterView,
    pass: u64,
    last_scale_up: Option<SimTime>,
    last_delete: Option<SimTime>,
    last_fail: Option<SimTime>,
    unneeded: Unneeded,
    backoff: BTreeMap<u32, Backoff>,
    actuator: Actuator,
    actuate_armed: bool,
    /// Pods the last loop could not help, so the trace notes a change only.
    not_helped: usize,
    /// Instances (name, request time) whose provisioning timed out, so a
    /// timeout backs the group off once, not on every loop until deleted.
    timed_out: BTreeSet<(String, SimTime)>,
}

impl ClusterAutoscaler {
    pub fn new(cfg: Arc<AutoscalerConfig>, seed: u64) -> Self {
        ClusterAutoscaler {
            cfg,
            profile: Profile::default(),
            seed,
            rng: RngStream::derive(seed, PROCESS),
            view: ClusterView::default(),
            pass: 0,
            last_scale_up: None,
            last_delete: None,
            last_fail: None,
            unneeded: Unneeded::default(),
            backoff: BTreeMap::new(),
            actuator: Actuator::default(),
            actuate_armed: false,
            not_helped: 0,
            timed_out: BTreeSet::new(),
        }
    }

    fn backed_off(&self, g: u32, now: SimTime) -> bool {
        self.backoff.get(&g).is_some_and(|b| b.until > now)
    }

    fn back_off(&mut self, g: u32, now: SimTime) {
        let cfg = &self.cfg;
        let duration = match self.backoff.get(&g) {
            Some(b) if now.since(b.last_failure) < cfg.backoff_reset => {
                (b.duration + b.duration).min(cfg.backoff_max)
            }
            _ => cfg.backoff_initial,
        };
        self.backoff.insert(
            g,
            Backoff {
                duration,
                until: now.after(duration),
                last_failure: now,
            },
        );
    }

    fn arm_actuation(&mut self, cx: &mut SyncCtx<'_>) {
        if self.actuator.busy() && !self.actuate_armed {
            self.actuate_armed = true;
            cx.tick_after(actuation::POLL, ACTUATE);
        }
    }

    fn finished(&mut self, done: Vec<Finished>, cx: &mut SyncCtx<'_>) {
        for f in done {
            if f.ok {
                self.last_delete = Some(cx.now);
            } else if f.immediate {
                self.last_fail = Some(cx.now);
            }
            self.unneeded.remove(&f.node);
            let outcome = if f.ok { "ScaleDown" } else { "ScaleDownFailed" };
            cx.record(outcome, vec![("node", f.node)]);
        }
    }

    /// One loop, on the cloud's answer to its refresh.
    fn run_once(&mut self, groups: &[GroupStatus], cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        let members = membership(groups);
        self.provision_timeouts(groups, cx);
        self.untaint_orphans(groups, cx);
        let mut destinations: Vec<usize> = (0..self.view.nodes().len()).collect();
        for g in groups {
            // Those past the max provision time are not coming.
            for n in 0..upcoming(g, cx.cache, now, &self.cfg) {
                let node = scale_up::template_node(&g.shape, &g.name, &format!("upcoming-{n}"));
                destinations.push(self.view.add_template(node));
            }
        }
        let pending = scale_up::equivalence_groups(&self.view, cx.cache);
        let left =
            scale_up::filter_out_schedulable(&mut self.view, &self.profile, pending, &destinations);
        if !left.is_empty() && self.scale_up(groups, &left, cx) {
            self.view.revert();
            self.last_scale_up = Some(now);
            return;
        }
        self.view.revert();
        if self.cfg.scale_down_enabled {
            self.scale_down(groups, &members, cx);
        }
    }

    /// Instances that have not registered within the max node provision
    /// time (upstream's `removeOldUnregisteredNodes`): delete them, at most
    /// down to the group's min size, and back the group off once per
    /// request that timed out. A node that registered and later went
    /// NotReady is not a provisioning failure: scale-down's unready path
    /// (20 minutes unneeded) is what removes it.
    fn provision_timeouts(&mut self, groups: &[GroupStatus], cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        let live: BTreeSet<(String, SimTime)> = groups
            .iter()
            .flat_map(|g| g.instances.iter().map(|i| (i.name.clone(), i.requested)))
            .collect();
        self.timed_out.retain(|k| live.contains(k));
        for g in groups {
            let registered = |n: &str| cx.cache.get(Kind::Node, "", n).is_some();
            let late: Vec<&crate::autoscaler::cloud_api::Instance> = g
                .instances
                .iter()
                .filter(|i| i.requested > SimTime::ZERO && !registered(&i.name))
                .filter(|i| now.since(i.requested) >= self.cfg.max_node_provision_time)
                .take(g.target.saturating_sub(g.min) as usize)
                .collect();
            if late.is_empty() {
                continue;
            }
            let fresh = late
                .iter()
                .any(|i| self.timed_out.insert((i.name.clone(), i.requested)));
            let nodes: Vec<String> = late.iter().map(|i| i.name.clone()).collect();
            if fresh {
                cx.record(
                    "ScaleUpTimedOut",
                    vec![("group", g.name.clone()), ("nodes", nodes.join(","))],
                );
                self.back_off(g.id, now);
            }
            cx.cloud(CloudCall::DeleteNodes { group: g.id, nodes });
        }
    }

    /// Nodes of running instances that carry `ToBeDeletedByClusterAutoscaler`
    /// with no deletion in progress: left by a restarted autoscaler (what
    /// upstream's `cleanUpIfRequired` sweeps on start), a taint whose answer
    /// was lost, or a machine slot reused before its old Node was deleted.
    /// Their taint and cordon come off, so no paid-for node stays unusable.
    fn untaint_orphans(&self, groups: &[GroupStatus], cx: &mut SyncCtx<'_>) {
        let running = groups
            .iter()
            .flat_map(|g| g.instances.iter())
            .filter(|i| i.state == InstanceState::Running);
        let mut reqs = Vec::new();
        for i in running {
            if self.actuator.contains(&i.name) {
                continue;
            }
            if let Some(o) = cx.cache.get(Kind::Node, "", &i.name) {
                if being_deleted(o) {
                    reqs.push(actuation::untaint(o));
                }
            }
        }
        for r in reqs {
            cx.send(r);
        }
    }

    /// Estimates every group, picks one, and asks for its nodes.
    fn scale_up(
        &mut self,
        groups: &[GroupStatus],
        left: &[scale_up::Equivalence],
        cx: &mut SyncCtx<'_>,
    ) -> bool {
        // Registered nodes plus those still coming (upstream counts ready
        // and upcoming nodes): group members are in both `target` and the
        // view, so each is counted once through its group.
        let members = membership(groups);
        let others = self
            .view
            .nodes()
            .iter()
            .filter(|n| {
                !n.name.starts_with(scale_up::TEMPLATE_PREFIX) && !members.contains_key(&n.name)
            })
            .count() as u32;
        let total: u32 = groups.iter().map(|g| g.target).sum::<u32>() + others;
        let mut options: Vec<ScaleUpOption> = Vec::new();
        for g in groups {
            if g.target >= g.max || self.backed_off(g.id, cx.now) {
                continue;
            }
            let mut limit = g.max - g.target;
            if self.cfg.max_nodes_total > 0 {
                limit = limit.min(self.cfg.max_nodes_total.saturating_sub(total));
            }
            if limit == 0 {
                continue;
            }
            options.extend(scale_up::estimate(
                &mut self.view,
                &self.profile,
                g.id,
                &g.name,
                &g.shape,
                left,
                limit,
            ));
        }
        let waiting: usize = left.iter().map(|e| e.pods.len()).sum();
        let Some(best) =
            expander::choose(self.cfg.expander, &options, groups, cx.cache, &mut self.rng)
        else {
            if waiting != self.not_helped {
                self.not_helped = waiting;
                cx.record("NotTriggerScaleUp", vec![("pods", waiting.to_string())]);
            }
            return false;
        };
        self.not_helped = 0;
        let g = &groups[best.group as usize];
        let to = g.target + best.nodes;
        cx.cloud(CloudCall::IncreaseSize {
            group: g.id,
            delta: best.nodes,
        });
        cx.record(
            "ScaleUp",
            vec![
                ("group", g.name.clone()),
                ("from", g.target.to_string()),
                ("to", to.to_string()),
                ("pods", best.pods.len().to_string()),
                ("waiting", waiting.to_string()),
            ],
        );
        let message = format!(
            "pod triggered scale-up: [{{{} {}->{} (max: {})}}]",
            g.name, g.target, to, g.max
        );
        for p in &best.pods {
            cx.event(&p.object, "Normal", "TriggeredScaleUp", message.clone());
        }
        true
    }

    fn scale_down(
        &mut self,
        groups: &[GroupStatus],
        members: &BTreeMap<String, u32>,
        cx: &mut SyncCtx<'_>,
    ) {
        let now = cx.now;
        let mut budgets = Budgets::new(cx.cache);
        let nodes = self.view.nodes().len();
        let node_obj =
            |i: usize, c: &Cache| c.get(Kind::Node, "", &self.view.nodes()[i].name).cloned();
        // Candidates: nodes of a group, not being deleted, not opted out.
        let mut candidates: Vec<(usize, bool)> = Vec::new();
        for i in 0..nodes {
            let name = &self.view.nodes()[i].name;
            let Some(obj) = node_obj(i, cx.cache) else {
                continue;
            };
            if !members.contains_key(name) || self.actuator.contains(name) || being_deleted(&obj) {
                continue;
            }
            if obj
                .meta
                .annotations
                .get(SCALE_DOWN_DISABLED)
                .is_some_and(|v| v == "true")
            {
                continue;
            }
            let is_ready = obj.as_node().is_some_and(|n| n.is_ready());
            if is_ready
                && scale_down::utilization(&self.view.nodes()[i]) > self.cfg.utilization_threshold
            {
                continue;
            }
            candidates.push((i, is_ready));
        }
        // Those unneeded before first, then the emptiest.
        candidates.sort_by(|a, b| {
            let ua = self.unneeded.contains(&self.view.nodes()[a.0].name);
            let ub = self.unneeded.contains(&self.view.nodes()[b.0].name);
            ub.cmp(&ua).then(
                scale_down::utilization(&self.view.nodes()[a.0])
                    .total_cmp(&scale_down::utilization(&self.view.nodes()[b.0])),
            )
        });
        let mut removable: Vec<(scale_down::Removable, bool)> = Vec::new();
        let mut excluded: Vec<usize> = Vec::new();
        let mut non_empty = 0;
        for (i, is_ready) in candidates {
            let node = self.view.nodes()[i].clone();
            let Ok(pods) = scale_down::pods_to_move(&node, cx.cache, &budgets, &self.cfg, now)
            else {
                continue;
            };
            let empty = pods.movable.is_empty();
            if !empty && non_empty >= self.cfg.non_empty_candidates {
                continue;
            }
            excluded.push(i);
            let destinations: Vec<usize> = (0..nodes)
                .filter(|d| !excluded.contains(d) && self.destination(*d, cx.cache))
                .collect();
            match scale_down::simulate_removal(
                &mut self.view,
                &self.profile,
                i,
                pods,
                &destinations,
            ) {
                Ok(r) => {
                    budgets.spend(&r.pods);
                    non_empty += usize::from(!empty);
                    removable.push((r, is_ready));
                }
                Err(_) => {
                    excluded.pop();
                }
            }
        }
        self.view.revert();
        let names: Vec<String> = removable.iter().map(|(r, _)| r.node.clone()).collect();
        self.unneeded.update(&names, now);
        self.soft_taints(&names, cx);
        if self.in_cooldown(now) {
            return;
        }
        self.start_deletions(groups, members, removable, cx);
    }

    /// Whether node `i` can take pods moved from a removed node.
    fn destination(&self, i: usize, cache: &Cache) -> bool {
        let name = &self.view.nodes()[i].name;
        !self.actuator.contains(name)
            && cache
                .get(Kind::Node, "", name)
                .is_some_and(|o| ready(cache, name) && !being_deleted(o))
    }

    fn in_cooldown(&self, now: SimTime) -> bool {
        let within = |t: Option<SimTime>, d: SimDuration| t.is_some_and(|t| now < t.after(d));
        within(self.last_scale_up, self.cfg.delay_after_add)
            || within(self.last_delete, self.cfg.delay_after_delete)
            || within(self.last_fail, self.cfg.delay_after_failure)
    }

    /// Starts deleting the nodes unneeded (or unready) long enough, empty
    /// ones first, within the parallelism budgets and the groups' minimums.
    fn start_deletions(
        &mut self,
        groups: &[GroupStatus],
        members: &BTreeMap<String, u32>,
        mut removable: Vec<(scale_down::Removable, bool)>,
        cx: &mut SyncCtx<'_>,
    ) {
        let now = cx.now;
        removable.sort_by_key(|(r, _)| !r.pods.movable.is_empty());
        let (mut total, mut drains) = self.actuator.in_progress();
        let mut starting: BTreeMap<u32, u32> = BTreeMap::new();
        for (r, is_ready) in removable {
            let wait = if is_ready {
                self.cfg.unneeded_time
            } else {
                self.cfg.unready_time
            };
            if self
                .unneeded
                .since(&r.node)
                .is_none_or(|s| now.since(s) < wait)
            {
                continue;
            }
            let empty = r.pods.movable.is_empty();
            if total >= self.cfg.max_scale_down_parallelism
                || (!empty && drains >= self.cfg.max_drain_parallelism)
            {
                continue;
            }
            let g = members[&r.node];
            let group = &groups[g as usize];
            let going = self.actuator.in_group(g) + starting.get(&g).copied().unwrap_or(0);
            if group.target <= group.min + going {
                continue;
            }
            let Some(obj) = cx.cache.get(Kind::Node, "", &r.node).cloned() else {
                continue;
            };
            cx.record(
                "ScaleDownStart",
                vec![
                    ("node", r.node.clone()),
                    ("utilization", format!("{:.3}", r.utilization)),
                    ("pods", r.pods.movable.len().to_string()),
                ],
            );
            cx.event(
                &obj,
                "Normal",
                "ScaleDown",
                "marked the node as toBeDeleted/unschedulable".into(),
            );
            self.actuator.start(&obj, g, r.pods, &self.cfg, cx);
            *starting.entry(g).or_default() += 1;
            total += 1;
            drains += usize::from(!empty);
        }
        self.arm_actuation(cx);
    }

    /// `DeletionCandidateOfClusterAutoscaler` on newly unneeded nodes and
    /// off those needed again, at most `--max-bulk-soft-taint-count` a loop.
    fn soft_taints(&self, unneeded: &[String], cx: &mut SyncCtx<'_>) {
        let mut budget = self.cfg.max_bulk_soft_taint;
        let has = |o: &Object| {
            o.as_node()
                .is_some_and(|n| n.taints.iter().any(|t| t.key == DELETION_CANDIDATE))
        };
        let mut reqs: Vec<ApiRequest> = Vec::new();
        for n in unneeded {
            if let Some(o) = cx.cache.get(Kind::Node, "", n) {
                if !has(o) && !being_deleted(o) && !self.actuator.contains(n) && budget > 0 {
                    budget -= 1;
                    reqs.push(actuation::soft_taint(o, true, cx.now));
                }
            }
        }
        for o in cx.cache.list_all(Kind::Node) {
            let ours = self.actuator.contains(&o.meta.name);
            if budget > 0
                && has(o)
                && !unneeded.contains(&o.meta.name)
                && !being_deleted(o)
                && !ours
            {
                budget -= 1;
                reqs.push(actuation::soft_taint(o, false, cx.now));
            }
        }
        for r in reqs {
            cx.send(r);
        }
    }
}

/// Node name → group id, for every instance.
fn membership(groups: &[GroupStatus]) -> BTreeMap<String, u32> {
    groups
        .iter()
        .flat_map(|g| g.instances.iter().map(move |i| (i.name.clone(), g.id)))
        .collect()
}

fn ready(cache: &Cache, node: &str) -> bool {
    cache
        .get(Kind::Node, "", node)
        .and_then(|o| o.as_node())
        .is_some_and(|n| n.is_ready())
}

fn being_deleted(node: &Object) -> bool {
    node.as_node()
        .is_some_and(|n| n.taints.iter().any(|t| t.key == TO_BE_DELETED))
}

/// Instances asked for that are not yet Ready nodes (booting, or
/// registered and not started), within the max node provision time.
fn upcoming(g: &GroupStatus, cache: &Cache, now: SimTime, cfg: &AutoscalerConfig) -> u32 {
    g.instances
        .iter()
        .filter(|i| {
            i.state == InstanceState::Creating
                || (i.requested > SimTime::ZERO && !ready(cache, &i.name))
        })
        .filter(|i| {
            i.requested == SimTime::ZERO || now.since(i.requested) < cfg.max_node_provision_time
        })
        .count() as u32
}

impl Controller for ClusterAutoscaler {
    fn name(&self) -> &'static str {
        PROCESS
    }

    fn rate_limit(&self, _process: RateLimit) -> RateLimit {
        CLIENT
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, _queue: &mut WorkQueue, _now: SimTime) {
        self.view.on_event(ev);
    }

    fn sync(&mut self, _key: &str, _cx: &mut SyncCtx<'_>) {}

    fn start(&mut self, cx: &mut SyncCtx<'_>) {
        cx.tick_after(SimDuration::ZERO, LOOP);
    }

    fn tick(&mut self, what: u32, cx: &mut SyncCtx<'_>, _queue: &mut WorkQueue) {
        match what {
            LOOP => {
                self.pass += 1;
                cx.cloud(CloudCall::Refresh { pass: self.pass });
                cx.tick_after(self.cfg.scan_interval, LOOP);
            }
            _ => {
                self.actuate_armed &= what != ACTUATE;
                let done = self.actuator.step(cx, &self.cfg);
                self.finished(done, cx);
                self.arm_actuation(cx);
            }
        }
    }

    fn on_cloud(&mut self, reply: &CloudReply, cx: &mut SyncCtx<'_>) {
        match &reply.answer {
            CloudAnswer::Groups { pass, groups } if *pass == self.pass => self.run_once(groups, cx),
            CloudAnswer::Groups { .. } => {}
            CloudAnswer::Increased {
                result: Err(why),
                group,
                ..
            } => {
                cx.record(
                    "FailedToScaleUpGroup",
                    vec![("group", group.to_string()), ("reason", why.clone())],
                );
                self.back_off(*group, cx.now);
            }
            CloudAnswer::Increased { .. } => {}
            CloudAnswer::Deleted { nodes, result, .. } => {
                let done = self.actuator.on_deleted(nodes, result, cx);
                self.finished(done, cx);
            }
        }
    }

    fn on_response(
        &mut self,
        _key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let (done, tainted) = self.actuator.on_response(req, resp, cx, &self.cfg);
        if tainted {
            cx.tick_after(self.cfg.delete_delay_after_taint, ACTUATE_NOW);
        }
        self.finished(done, cx);
    }

    fn reset(&mut self) {
        // A restarted autoscaler keeps nothing: its unneeded timers, back-
        // offs and cooldowns start again (upstream keeps them in memory).
        *self = ClusterAutoscaler::new(self.cfg.clone(), self.seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_backs_off_5_minutes_doubling_to_30_and_resets_after_3_hours() {
        let mut ca = ClusterAutoscaler::new(Arc::new(AutoscalerConfig::default()), 1);
        let min = |m: u64| SimTime(m * 60 * 1_000_000_000);
        let mut seen = Vec::new();
        for t in [0, 10, 30, 70, 150, 200] {
            ca.back_off(0, min(t));
            seen.push(ca.backoff[&0].duration.0 / 60_000_000_000);
        }
        assert_eq!(seen, [5, 10, 20, 30, 30, 30]);
        assert!(ca.backed_off(0, min(229)) && !ca.backed_off(0, min(230)));
        // Three quiet hours after the last failure: back to 5 minutes.
        ca.back_off(0, min(200 + 180));
        assert_eq!(ca.backoff[&0].duration.0 / 60_000_000_000, 5);
    }
}
