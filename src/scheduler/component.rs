//! kube-scheduler as a component: reflectors fill its cache of nodes, pods
//! and the objects default spreading and preemption read (Services,
//! ReplicationControllers, ReplicaSets, StatefulSets,
//! PodDisruptionBudgets); one pod per cycle is filtered and scored with its
//! profile, assumed in the cache and bound through the binding subresource.
//! When nothing fits, DefaultPreemption picks victims, deletes them and
//! nominates the node. Each cycle takes modelled time (a base plus a cost
//! per node evaluated), so throughput under load behaves like the real
//! scheduler's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::config::SchedulerConfiguration;
use super::default_selector::OwnerCache;
use super::pod_info::PodInfo;
use super::preemption::{preempt, Candidate, Pdb};
use super::profile::{image_spread, schedule, AffinityCounts, CycleInput, Decision, NodeSnapshot};
use super::queue::SchedulingQueue;
use crate::api::pod::Condition;
use crate::api::Kind;
use crate::api::{Object, ObjectKey};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, EventType, PatchOp, Verb};
use crate::model::client::{ApiClient, Dispatch, SCHEDULER};
use crate::model::msg::{Message, Payload, Timer};
use crate::model::reflector::{Delivery, Reflector};
use crate::model::world::World;
use crate::sim::{Actor, ComponentId, Ctx, SimDuration, SimTime, TraceLevel};

/// The scheduler's own timing.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Fixed cost of a scheduling cycle.
    pub cycle_base: SimDuration,
    /// Added per node the filters evaluate (and scores, for feasible ones).
    pub per_node: SimDuration,
    /// Profiles and queue back-off (a KubeSchedulerConfiguration).
    pub configuration: SchedulerConfiguration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        // scheduler_perf's SchedulingBasic at 5,000 nodes runs at roughly
        // 680 pods/s with 500 nodes evaluated a cycle: about 1.5 ms a cycle.
        SchedulerConfig {
            cycle_base: SimDuration::from_micros(200),
            per_node: SimDuration::from_nanos(2_500),
            configuration: SchedulerConfiguration::default(),
        }
    }
}

const TAG_LIST_NODES: u64 = 1;
const TAG_LIST_PODS: u64 = 2;
const TAG_STATUS: u64 = 3;
const TAG_DELETE: u64 = 4;
/// LIST tags of the extra reflectors: `TAG_EXTRA + index`.
const TAG_EXTRA: u64 = 16;
const TAG_BIND: u64 = 1 << 32;

/// Kinds the scheduler watches besides nodes and pods.
const EXTRA_KINDS: [Kind; 5] = [
    Kind::Service,
    Kind::ReplicationController,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::PodDisruptionBudget,
];

struct CachedPod {
    obj: Arc<Object>,
    info: Arc<PodInfo>,
    /// The node it is accounted on (bound, or assumed).
    node: Option<String>,
}

/// The pod whose cycle is running: its decision, and the preemption the
/// cycle chose if nothing fit.
struct Cycle {
    key: ObjectKey,
    /// When the pod was popped: the scheduling cycle's span starts here.
    started: SimTime,
    decision: Decision,
    preemption: Option<Result<Candidate, String>>,
}

pub struct Scheduler {
    name: String,
    cfg: SchedulerConfig,
    client: ApiClient,
    nodes_reflector: Reflector,
    pods_reflector: Reflector,
    extra_reflectors: Vec<Reflector>,
    /// Services, controllers and PodDisruptionBudgets.
    owners: OwnerCache,
    /// Nodes by name order; `node_index` maps a name to its slot.
    nodes: Vec<NodeSnapshot>,
    node_index: BTreeMap<String, usize>,
    pods: BTreeMap<ObjectKey, CachedPod>,
    queue: SchedulingQueue,
    cycle: Option<Cycle>,
    /// Pending pods nominated to a node by preemption, by node name.
    nominated: BTreeMap<String, Vec<Arc<PodInfo>>>,
    /// Pods held back by scheduling gates.
    gated: BTreeSet<ObjectKey>,
    next_start: usize,
    /// Bind request tags → pod.
    binds: BTreeMap<u64, ObjectKey>,
    next_bind: u64,
    /// A cluster event arrived while the current cycle ran.
    moved_during_cycle: bool,
    /// On how many nodes each image is, rebuilt when nodes change.
    image_spread: BTreeMap<String, i64>,
    /// Placed pods with affinity terms, kept as pods are accounted.
    affinity_counts: AffinityCounts,
}

impl Scheduler {
    pub fn new(apiserver: ComponentId, cfg: SchedulerConfig) -> Self {
        let queue = Self::new_queue(&cfg);
        Scheduler {
            name: "kube-scheduler".into(),
            cfg,
            client: ApiClient::new(apiserver, SCHEDULER, SimDuration::from_secs(30)),
            nodes_reflector: Reflector::new(Kind::Node, TAG_LIST_NODES),
            pods_reflector: Reflector::new(Kind::Pod, TAG_LIST_PODS),
            extra_reflectors: EXTRA_KINDS
                .iter()
                .enumerate()
                .map(|(i, k)| Reflector::new(*k, TAG_EXTRA + i as u64))
                .collect(),
            owners: OwnerCache::default(),
            nodes: Vec::new(),
            node_index: BTreeMap::new(),
            pods: BTreeMap::new(),
            queue,
            cycle: None,
            nominated: BTreeMap::new(),
            gated: BTreeSet::new(),
            next_start: 0,
            binds: BTreeMap::new(),
            next_bind: 0,
            moved_during_cycle: false,
            image_spread: BTreeMap::new(),
            affinity_counts: AffinityCounts::default(),
        }
    }

    fn new_queue(cfg: &SchedulerConfig) -> SchedulingQueue {
        let c = &cfg.configuration;
        SchedulingQueue::with_backoff(
            SimDuration::from_secs(c.initial_backoff_seconds.max(1) as u64),
            SimDuration::from_secs(c.max_backoff_seconds.max(1) as u64),
        )
    }

    fn rebuild_index(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        self.node_index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
    }

    /// Adds or updates a node; returns whether anything scheduling reads
    /// changed (a heartbeat-only status update changes nothing), which is
    /// what decides whether unschedulable pods are worth retrying, as
    /// upstream's queueing hints decide.
    fn upsert_node(&mut self, obj: &Object) -> bool {
        let Some(mut snap) = NodeSnapshot::from_object(obj) else {
            return false;
        };
        match self.node_index.get(&snap.name) {
            Some(&i) => {
                let changed = self.nodes[i].differs_for_scheduling(&snap);
                // Keep the pods on it; take the rest from the API.
                snap.take_pods_from(&mut self.nodes[i]);
                self.nodes[i] = snap;
                changed
            }
            None => {
                // Pods already bound to it (seen before the node) count.
                for p in self.pods.values() {
                    if p.node.as_deref() == Some(&snap.name) {
                        snap.add_pod(p.info.clone());
                    }
                }
                self.nodes.push(snap);
                self.rebuild_index();
                self.affinity_counts = AffinityCounts::scan(&self.nodes);
                true
            }
        }
    }

    fn remove_node(&mut self, name: &str) {
        if self.node_index.contains_key(name) {
            self.nodes.retain(|n| n.name != name);
            self.rebuild_index();
            self.affinity_counts = AffinityCounts::scan(&self.nodes);
        }
    }

    fn account(&mut self, key: &ObjectKey, node: Option<String>) {
        let Some(p) = self.pods.get_mut(key) else {
            return;
        };
        if p.node == node {
            return;
        }
        let (aff, anti) = (
            !p.info.affinity.is_empty() as usize,
            !p.info.affinity.required_anti_affinity.is_empty() as usize,
        );
        let counts = &mut self.affinity_counts;
        if let Some(old) = p.node.take() {
            if let Some(&i) = self.node_index.get(&old) {
                if self.nodes[i].remove_pod(&key.namespace, &key.name) {
                    counts.with_affinity -= aff;
                    counts.with_required_anti_affinity -= anti;
                }
            }
        }
        if let Some(new) = &node {
            if let Some(&i) = self.node_index.get(new) {
                self.nodes[i].add_pod(p.info.clone());
                counts.with_affinity += aff;
                counts.with_required_anti_affinity += anti;
            }
        }
        p.node = node;
    }

    /// Whether the cached PodInfo of a pod must be rebuilt for `new`.
    fn info_stale(old: &Object, new: &Object) -> bool {
        let (Some(a), Some(b)) = (old.as_pod(), new.as_pod()) else {
            return true;
        };
        !Arc::ptr_eq(&a.spec, &b.spec)
            || old.meta.labels != new.meta.labels
            || old.meta.deletion.is_some() != new.meta.deletion.is_some()
            || a.status.nominated_node_name != b.status.nominated_node_name
            || a.status.start_time != b.status.start_time
    }

    /// Keeps `nominated` in step with the pod's nomination.
    fn update_nomination(&mut self, key: &ObjectKey) {
        for list in self.nominated.values_mut() {
            list.retain(|p| !(p.name == key.name && p.namespace == key.namespace));
        }
        self.nominated.retain(|_, l| !l.is_empty());
        let Some(p) = self.pods.get(key) else { return };
        let unbound = p.obj.as_pod().is_some_and(|b| b.node_name.is_none());
        if let (true, None, Some(node)) = (unbound, &p.obj.meta.deletion, &p.info.nominated_node) {
            self.nominated
                .entry(node.clone())
                .or_default()
                .push(p.info.clone());
        }
    }

    /// Adds or updates a pod; returns whether the change may help pods
    /// waiting as unschedulable (it freed room, or it is a pod their
    /// affinity or spreading counts).
    fn upsert_pod(&mut self, ctx: &mut Ctx<'_, Payload, World>, obj: Arc<Object>) -> bool {
        let Some(body) = obj.as_pod() else {
            return false;
        };
        let key = obj.key();
        // Terminal pods free their resources, as the scheduler's cache does.
        let on_node = if body.is_terminal() {
            None
        } else {
            body.node_name.clone()
        };
        let binding = self.binds.values().any(|k| *k == key);
        let assumed = self
            .pods
            .get(&key)
            .and_then(|p| p.node.clone())
            .filter(|_| body.node_name.is_none() && binding);
        let target = on_node.clone().or(assumed);
        let was_on = self.pods.get(&key).and_then(|p| p.node.clone());
        match self.pods.get_mut(&key) {
            None => {
                self.pods.insert(
                    key.clone(),
                    CachedPod {
                        info: Arc::new(PodInfo::new(&obj)),
                        obj: obj.clone(),
                        node: None,
                    },
                );
            }
            Some(p) => {
                let stale = Self::info_stale(&p.obj, &obj);
                p.obj = obj.clone();
                if stale {
                    self.account(&key, None);
                    if let Some(p) = self.pods.get_mut(&key) {
                        p.info = Arc::new(PodInfo::new(&obj));
                    }
                }
            }
        }
        // An assumed pod keeps its node until the bind answers.
        self.account(&key, target.clone());
        self.update_nomination(&key);
        let Some(info) = self.pods.get(&key).map(|p| p.info.clone()) else {
            return false;
        };
        let profile = self.cfg.configuration.profile(&body.spec.scheduler_name);
        let pending = body.node_name.is_none()
            && obj.meta.deletion.is_none()
            && profile.is_some()
            && !binding
            && self.cycle.as_ref().is_none_or(|c| c.key != key);
        if pending {
            if profile.is_some_and(|p| p.scheduling_gates) && !info.gates.is_empty() {
                self.gated.insert(key);
            } else {
                self.gated.remove(&key);
                self.queue.add(key, body.spec.priority, ctx.now);
            }
        } else if body.node_name.is_some() {
            self.queue.done(&key);
            self.gated.remove(&key);
        }
        // Room freed on a node, or a newly placed pod others may count.
        let freed = was_on.is_some() && on_node.is_none();
        let placed = on_node.is_some() && was_on.is_none() && !self.queue.is_empty();
        freed || (placed && self.counts_for_waiting(&info))
    }

    /// Whether a newly placed pod matters to a waiting pod's required pod
    /// affinity or topology spreading (upstream's queueing hints for
    /// InterPodAffinity and PodTopologySpread).
    fn counts_for_waiting(&self, placed: &PodInfo) -> bool {
        self.queue.unschedulable_keys().any(|k| {
            self.pods.get(k).is_some_and(|w| {
                w.info
                    .affinity
                    .required_affinity
                    .iter()
                    .any(|t| t.matches(placed))
                    || w.info.spread.iter().any(|c| {
                        placed.namespace == w.info.namespace
                            && c.selector
                                .as_ref()
                                .is_some_and(|s| s.matches(&placed.labels))
                    })
            })
        })
    }

    fn remove_pod(&mut self, key: &ObjectKey) {
        self.account(key, None);
        self.pods.remove(key);
        self.update_nomination(key);
        self.queue.remove(key);
        self.gated.remove(key);
    }

    fn apply_events(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        events: Vec<crate::model::apiserver::request::WatchEvent>,
    ) {
        let mut cluster_changed = false;
        for ev in events {
            let Some(obj) = ev.object else { continue };
            match (obj.kind, ev.type_) {
                (Kind::Node, EventType::Deleted) => {
                    self.remove_node(&obj.meta.name);
                    self.image_spread = image_spread(&self.nodes);
                }
                (Kind::Node, _) => {
                    let relevant = self.upsert_node(&obj);
                    if relevant {
                        self.image_spread = image_spread(&self.nodes);
                    }
                    cluster_changed |= relevant;
                }
                (Kind::Pod, EventType::Deleted) => {
                    self.remove_pod(&obj.key());
                    cluster_changed = true;
                }
                (Kind::Pod, _) => cluster_changed |= self.upsert_pod(ctx, obj),
                (k, EventType::Deleted) if OwnerCache::wants(k) => {
                    self.owners.objects.remove(&obj.key());
                }
                (k, _) if OwnerCache::wants(k) => {
                    self.owners.objects.insert(obj.key(), obj);
                }
                _ => {}
            }
        }
        if cluster_changed {
            self.queue.move_all_unschedulable(ctx.now);
            self.moved_during_cycle |= self.cycle.is_some();
        }
        self.maybe_start_cycle(ctx);
    }

    fn synced(&self) -> bool {
        self.nodes_reflector.synced
            && self.pods_reflector.synced
            && self.extra_reflectors.iter().all(|r| r.synced)
    }

    fn pdbs(&self) -> Vec<Pdb> {
        let start = ObjectKey {
            kind: Kind::PodDisruptionBudget,
            namespace: String::new(),
            name: String::new(),
        };
        self.owners
            .objects
            .range(start..)
            .take_while(|(k, _)| k.kind == Kind::PodDisruptionBudget)
            .filter_map(|(_, o)| Pdb::from_object(o))
            .collect()
    }

    fn maybe_start_cycle(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if self.cycle.is_some() || !self.synced() {
            return;
        }
        while let Some(key) = self.queue.pop() {
            let Some(p) = self.pods.get(&key) else {
                continue;
            };
            let Some(body) = p.obj.as_pod() else { continue };
            if body.node_name.is_some() || p.obj.meta.deletion.is_some() {
                self.queue.done(&key);
                continue;
            }
            let Some(profile) = self.cfg.configuration.profile(&body.spec.scheduler_name) else {
                self.queue.done(&key);
                continue;
            };
            let default_selector = self.owners.default_selector(&p.info);
            let input = CycleInput {
                pod: &p.info,
                spec: &body.spec.api,
                nodes: &self.nodes,
                image_spread: &self.image_spread,
                default_selector: default_selector.as_ref(),
                nominated: &self.nominated,
                counts: self.affinity_counts,
            };
            // A pod nominated by an earlier preemption tries that node first.
            let nominated = p.info.nominated_node.as_ref().and_then(|n| {
                let &i = self.node_index.get(n)?;
                let state = super::profile::prefilter(profile, &input);
                super::profile::filter(profile, &input, &state, &self.nodes[i]).ok()?;
                Some(Decision {
                    selected: Some(n.clone()),
                    evaluated: 1,
                    feasible: 1,
                    total: self.nodes.len(),
                    ..Decision::default()
                })
            });
            let d = match nominated {
                Some(d) => d,
                None => {
                    let (d, next) = schedule(profile, &input, self.next_start, ctx.rng);
                    self.next_start = next;
                    d
                }
            };
            let mut evaluated = d.evaluated as u64;
            let preemption = (d.selected.is_none() && profile.preemption.is_some()).then(|| {
                evaluated += d.resolvable.len() as u64;
                preempt(profile, &input, &d, &self.pdbs(), ctx.rng)
            });
            let cost = self.cfg.cycle_base + self.cfg.per_node.saturating_mul(evaluated);
            // Assume at once, so the next cycle sees the node as used.
            if let Some(node) = &d.selected {
                self.account(&key, Some(node.clone()));
            }
            self.cycle = Some(Cycle {
                key,
                started: ctx.now,
                decision: d,
                preemption,
            });
            self.moved_during_cycle = false;
            ctx.timer(cost, Payload::Timer(Timer::SchedulerCycle));
            return;
        }
    }

    fn finish_cycle(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let Some(Cycle {
            key,
            started,
            decision: d,
            preemption,
        }) = self.cycle.take()
        else {
            return;
        };
        let pod = format!("{}/{}", key.namespace, key.name);
        match &d.selected {
            Some(node) => {
                let (evaluated, feasible) = (d.evaluated as u64, d.feasible as u64);
                let ranking = d.ranking_text(&self.nodes);
                ctx.trace
                    .record(TraceLevel::Events, ctx.now, &self.name, "Scheduled", |r| {
                        r.str("pod", &pod)
                            .str("node", node)
                            .u64("evaluated", evaluated)
                            .u64("feasible", feasible)
                            .u64("start", started.0);
                        if !ranking.is_empty() {
                            r.str("ranking", &ranking);
                        }
                    });
                let mut req = ApiRequest::new(Verb::Bind, Kind::Pod, &key.namespace, &key.name);
                req.target = Some(node.clone());
                self.next_bind += 1;
                let tag = TAG_BIND + self.next_bind;
                self.binds.insert(tag, key);
                self.client.request(ctx, req, tag);
            }
            None => {
                let mut message = d.failure_message();
                let mut nominate = None;
                match preemption {
                    Some(Ok(c)) => nominate = Some(self.carry_out_preemption(ctx, &key, c)),
                    Some(Err(why)) => message = format!("{message} preemption: {why}"),
                    None => {}
                }
                ctx.trace.record(
                    TraceLevel::Events,
                    ctx.now,
                    &self.name,
                    "FailedScheduling",
                    |r| {
                        r.str("pod", &pod)
                            .str("message", &message)
                            .u64("start", started.0);
                    },
                );
                // If the cluster changed while this cycle ran, the pod may fit
                // now: back off instead of waiting for another event, as
                // upstream's moveRequestCycle arranges.
                if self.moved_during_cycle {
                    self.queue.error(&key, ctx.now);
                } else {
                    self.queue.unschedulable(&key, ctx.now);
                }
                self.report_unschedulable(ctx, &key, message, nominate);
            }
        }
        self.maybe_start_cycle(ctx);
    }

    /// Evicts the victims of a chosen preemption (DisruptionTarget, then a
    /// graceful delete), clears lower-priority nominations on the node, and
    /// nominates the node for the preemptor. Returns the node.
    fn carry_out_preemption(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        preemptor: &ObjectKey,
        c: Candidate,
    ) -> String {
        let node = self.nodes[c.node].name.clone();
        let pod = format!("{}/{}", preemptor.namespace, preemptor.name);
        let priority = self.pods.get(preemptor).map_or(0, |p| p.info.priority);
        let victims: Vec<String> = c
            .victims
            .iter()
            .map(|v| format!("{}/{}", v.namespace, v.name))
            .collect();
        let (n_victims, violations) = (victims.len() as u64, c.pdb_violations as u64);
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &self.name, "Preempting", |r| {
                r.str("pod", &pod)
                    .str("node", &node)
                    .u64("victims", n_victims)
                    .u64("pdbViolations", violations)
                    .str("evicts", &victims.join(","));
            });
        for v in &c.victims {
            let vname = format!("{}/{}", v.namespace, v.name);
            ctx.trace
                .record(TraceLevel::Events, ctx.now, &self.name, "Preempted", |r| {
                    r.str("pod", &vname)
                        .str("message", &format!("Preempted by pod {pod} on node {node}"));
                });
            let message = format!(
                "{}: preempting to accommodate a higher priority pod",
                self.name
            );
            self.patch_condition(
                ctx,
                &v.namespace,
                &v.name,
                ("DisruptionTarget", true, "PreemptionByScheduler", message),
                None,
            );
            let req = ApiRequest::new(Verb::Delete, Kind::Pod, &v.namespace, &v.name);
            self.client.request(ctx, req, TAG_DELETE);
        }
        // Lower-priority pods nominated to this node lose the nomination.
        let lower: Vec<Arc<PodInfo>> = self
            .nominated
            .get(&node)
            .map(|l| {
                l.iter()
                    .filter(|p| p.priority < priority)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for p in lower {
            let message = "nominated node taken by a higher priority pod".to_string();
            self.patch_condition(
                ctx,
                &p.namespace,
                &p.name,
                ("PodScheduled", false, "Unschedulable", message),
                Some(None),
            );
        }
        // Nominate in memory at once, so later cycles keep the room.
        if let Some(p) = self.pods.get_mut(preemptor) {
            let mut info = (*p.info).clone();
            info.nominated_node = Some(node.clone());
            p.info = Arc::new(info);
        }
        self.update_nomination(preemptor);
        node
    }

    /// Patches one condition (type, status, reason, message) of a pod, and
    /// its nominated node when `nominated` is `Some`.
    fn patch_condition(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        namespace: &str,
        name: &str,
        (type_, status, reason, message): (&'static str, bool, &str, String),
        nominated: Option<Option<String>>,
    ) {
        let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, namespace, name);
        req.patch = Some(PatchOp::PodCondition {
            condition: Condition {
                type_,
                status,
                last_transition: ctx.now,
                reason: Some(reason.to_string()),
                message: Some(message),
            },
            nominated_node: nominated,
        });
        self.client.request(ctx, req, TAG_STATUS);
    }

    /// Sets PodScheduled=False with the reasons (and the nominated node,
    /// after a preemption), as the scheduler does.
    fn report_unschedulable(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        key: &ObjectKey,
        message: String,
        nominate: Option<String>,
    ) {
        let Some(p) = self.pods.get(key) else { return };
        let Some(body) = p.obj.as_pod() else { return };
        let unchanged = body
            .status
            .condition("PodScheduled")
            .is_some_and(|c| !c.status && c.message.as_deref() == Some(message.as_str()));
        if unchanged && nominate.is_none() {
            return;
        }
        self.patch_condition(
            ctx,
            &key.namespace,
            &key.name,
            ("PodScheduled", false, "Unschedulable", message),
            nominate.map(Some),
        );
    }

    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        tag: u64,
        resp: Option<&ApiResponse>,
    ) {
        match tag {
            TAG_LIST_NODES | TAG_LIST_PODS => {
                let reflector = if tag == TAG_LIST_NODES {
                    &mut self.nodes_reflector
                } else {
                    &mut self.pods_reflector
                };
                match reflector.on_list(resp, &mut self.client, ctx) {
                    Some(items) => {
                        if tag == TAG_LIST_NODES {
                            self.nodes.clear();
                            self.node_index.clear();
                            for o in &items {
                                self.upsert_node(o);
                            }
                            self.queue.move_all_unschedulable(ctx.now);
                            self.image_spread = image_spread(&self.nodes);
                            self.affinity_counts = AffinityCounts::scan(&self.nodes);
                        } else {
                            let keys: Vec<ObjectKey> = self.pods.keys().cloned().collect();
                            for k in keys {
                                self.remove_pod(&k);
                            }
                            for o in items {
                                self.upsert_pod(ctx, o);
                            }
                        }
                        self.maybe_start_cycle(ctx);
                    }
                    None => {
                        let r = if tag == TAG_LIST_NODES {
                            &mut self.nodes_reflector
                        } else {
                            &mut self.pods_reflector
                        };
                        r.list(&mut self.client, ctx);
                    }
                }
            }
            t if (TAG_EXTRA..TAG_EXTRA + EXTRA_KINDS.len() as u64).contains(&t) => {
                let i = (t - TAG_EXTRA) as usize;
                let kind = EXTRA_KINDS[i];
                match self.extra_reflectors[i].on_list(resp, &mut self.client, ctx) {
                    Some(items) => {
                        self.owners.objects.retain(|k, _| k.kind != kind);
                        for o in items {
                            self.owners.objects.insert(o.key(), o);
                        }
                        self.maybe_start_cycle(ctx);
                    }
                    None => self.extra_reflectors[i].list(&mut self.client, ctx),
                }
            }
            t if t > TAG_BIND => {
                let Some(key) = self.binds.remove(&t) else {
                    return;
                };
                if resp.is_some_and(|r| r.ok()) {
                    self.queue.done(&key);
                } else {
                    // Forget the assumption; try again after a back-off.
                    self.account(&key, None);
                    self.queue.error(&key, ctx.now);
                }
            }
            _ => {}
        }
    }
}

impl Actor<Payload, World> for Scheduler {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.nodes_reflector.list(&mut self.client, ctx);
        self.pods_reflector.list(&mut self.client, ctx);
        for r in &mut self.extra_reflectors {
            r.list(&mut self.client, ctx);
        }
        ctx.timer(
            SimDuration::from_secs(1),
            Payload::Timer(Timer::SchedulerFlush),
        );
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        let payload = match self.client.dispatch(ctx, payload) {
            Dispatch::Other(p) => p,
            Dispatch::Handled => return,
            Dispatch::Finished(tag, resp) => return self.on_response(ctx, tag, resp.as_deref()),
        };
        match payload {
            Payload::Timer(Timer::SchedulerCycle) => self.finish_cycle(ctx),
            Payload::Timer(Timer::SchedulerFlush) => {
                ctx.timer(
                    SimDuration::from_secs(1),
                    Payload::Timer(Timer::SchedulerFlush),
                );
                self.queue.flush(ctx.now);
                self.maybe_start_cycle(ctx);
            }
            Payload::Msg {
                msg: Message::Watch(b),
                ..
            } => {
                let b = *b;
                let delivery = if self.nodes_reflector.owns(&b) {
                    self.nodes_reflector.on_batch(b, &mut self.client, ctx)
                } else if self.pods_reflector.owns(&b) {
                    self.pods_reflector.on_batch(b, &mut self.client, ctx)
                } else if let Some(r) = self.extra_reflectors.iter_mut().find(|r| r.owns(&b)) {
                    r.on_batch(b, &mut self.client, ctx)
                } else {
                    Delivery::Stale
                };
                if let Delivery::Events(evs) = delivery {
                    self.apply_events(ctx, evs);
                }
            }
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        self.client.reset();
        self.nodes_reflector.synced = false;
        self.pods_reflector.synced = false;
        for r in &mut self.extra_reflectors {
            r.synced = false;
        }
        self.owners.objects.clear();
        self.nodes.clear();
        self.node_index.clear();
        self.pods.clear();
        self.affinity_counts = AffinityCounts::default();
        self.queue = Self::new_queue(&self.cfg);
        self.cycle = None;
        self.nominated.clear();
        self.gated.clear();
        self.binds.clear();
    }
}
