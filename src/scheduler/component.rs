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

use super::binds::Binds;
use super::cluster_event::{
    dra_event, node_update_events, Involved, QueuedEvent, Resource, ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE_LABEL, NODE_ADD, NODE_DELETE,
    POD_GENERATED_RESOURCE_CLAIM,
};
use super::config::{FilterPlugin, SchedulerConfiguration};
use super::default_selector::OwnerCache;
use super::fit_index::FitIndex;
use super::plugins::dynamic_resources::{self, DraCache, DraCycle};
use super::pod_info::PodInfo;
use super::preemption::{preempt, Candidate, Pdb};
use super::profile::{
    image_spread, schedule, spread_constraints, AffinityCounts, CycleInput, Decision, NodeSnapshot,
};
use super::queue::{SchedulingQueue, Scope, BACKOFF_WINDOW, LEFTOVER_FLUSH_PERIOD};
use super::queueing_hint::{self, QueueingHint, Target};
use crate::api::pod::Condition;
use crate::api::Kind;
use crate::api::{Object, ObjectKey};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, EventType, PatchOp, Verb};
use crate::model::client::{ApiClient, Dispatch};
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
        // Calibrated on scheduler_perf (parallelism 16, so `per_node` is the
        // wall cost of a node with 16 workers filtering):
        // SchedulingBasic/5000Nodes evaluates 500 nodes a cycle (10%), and
        // upstream reports ~1,300 pods/s on a developer machine (0.77 ms a
        // pod) and 300+ on CI (3.3 ms; the test's floor is 270/s); the
        // model's 200 µs + 500 × 2.5 µs = 1.45 ms (690 pods/s) sits between.
        // At 500 nodes (230 evaluated) it gives 0.78 ms, 1,290 pods/s, near
        // the ~1,000/s upstream measured there. A pod that fits nowhere
        // among 5,000 nodes costs 12.7 ms; upstream's Unschedulable case
        // (5k nodes, 10k pods at 260 pods/s on CI) leaves 25-30 ms for each
        // unschedulable attempt with its preemption. Preemption adds only
        // the nodes its dry run filters (`preemption::dry_run_nodes`).
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
/// PreBind's claim writes: `TAG_CLAIM + n`.
const TAG_CLAIM: u64 = 1 << 31;
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
    /// PreBind's writes to the pod's claims, before the bind.
    claim_writes: Vec<ApiRequest>,
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
    /// Bind requests in flight.
    binds: Binds,
    next_bind: u64,
    /// On how many nodes each image is, rebuilt when nodes change.
    image_spread: BTreeMap<String, i64>,
    /// A node change since `image_spread` was built.
    image_spread_stale: bool,
    /// Placed pods with affinity terms, kept as pods are accounted.
    affinity_counts: AffinityCounts,
    /// The nodes' free rooms, kept with `nodes`: a cycle that fits a plain
    /// pod nowhere reads its verdict from here.
    fit_index: FitIndex,
    /// DynamicResources' informers, in a scenario that uses DRA.
    dra: Option<DraCache>,
    /// PreBind claim writes in flight: tag → (pod, claim, node).
    prebinds: BTreeMap<u64, (ObjectKey, ObjectKey, String)>,
    /// Pods whose claim writes are in flight: how many are left.
    prebind_left: BTreeMap<ObjectKey, usize>,
}

impl Scheduler {
    pub fn new(apiserver: ComponentId, cfg: SchedulerConfig) -> Self {
        let queue = Self::new_queue(&cfg);
        let limit = cfg.configuration.client;
        Scheduler {
            name: "kube-scheduler".into(),
            cfg,
            client: ApiClient::new(apiserver, limit, SimDuration::from_secs(30)),
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
            binds: Binds::default(),
            next_bind: 0,
            image_spread: BTreeMap::new(),
            image_spread_stale: false,
            affinity_counts: AffinityCounts::default(),
            fit_index: FitIndex::default(),
            dra: None,
            prebinds: BTreeMap::new(),
            prebind_left: BTreeMap::new(),
        }
    }

    /// Runs DynamicResources: informers of ResourceClaims, ResourceSlices
    /// and DeviceClasses after the others (so a scenario without DRA keeps
    /// its requests, and digest, unchanged).
    pub fn with_dra(mut self) -> Self {
        for (j, k) in dynamic_resources::KINDS.iter().enumerate() {
            let tag = TAG_EXTRA + (EXTRA_KINDS.len() + j) as u64;
            self.extra_reflectors.push(Reflector::new(*k, tag));
        }
        self.dra = Some(DraCache::default());
        self
    }

    fn extra_kind(i: usize) -> Kind {
        EXTRA_KINDS
            .get(i)
            .copied()
            .unwrap_or_else(|| dynamic_resources::KINDS[i - EXTRA_KINDS.len()])
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

    /// Adds or updates a node; returns the cluster events it raises (a
    /// heartbeat-only status update raises none), which the queue hands to
    /// the queueing hints of the plugins that rejected each waiting pod.
    fn upsert_node(&mut self, obj: &Object) -> Vec<QueuedEvent> {
        let Some(mut snap) = NodeSnapshot::from_object(obj) else {
            return Vec::new();
        };
        match self.node_index.get(&snap.name) {
            Some(&i) => {
                let old = Arc::new(self.nodes[i].without_pods());
                if old.differs_for_scheduling(&snap) {
                    self.image_spread_stale = true;
                }
                let new = Arc::new(snap.without_pods());
                let events = node_update_events(&old, &new)
                    .into_iter()
                    .map(|event| QueuedEvent {
                        event,
                        old: Some(Involved::Node(old.clone())),
                        new: Some(Involved::Node(new.clone())),
                    })
                    .collect();
                // Keep the pods on it; take the rest from the API.
                self.fit_index.remove(&self.nodes[i]);
                snap.take_pods_from(&mut self.nodes[i]);
                self.nodes[i] = snap;
                self.fit_index.add(&self.nodes[i]);
                events
            }
            None => {
                self.image_spread_stale = true;
                let event = QueuedEvent {
                    event: NODE_ADD,
                    old: None,
                    new: Some(Involved::Node(Arc::new(snap.without_pods()))),
                };
                // Pods already bound to it (seen before the node) count.
                for p in self.pods.values() {
                    if p.node.as_deref() == Some(&snap.name) {
                        snap.add_pod(p.info.clone());
                    }
                }
                self.fit_index.add(&snap);
                self.nodes.push(snap);
                self.rebuild_index();
                self.affinity_counts = AffinityCounts::scan(&self.nodes);
                vec![event]
            }
        }
    }

    /// Forgets a node; returns its Node/Delete event.
    fn remove_node(&mut self, name: &str) -> Option<QueuedEvent> {
        let &i = self.node_index.get(name)?;
        let old = Arc::new(self.nodes[i].without_pods());
        self.fit_index.remove(&self.nodes[i]);
        self.nodes.remove(i);
        self.rebuild_index();
        self.affinity_counts = AffinityCounts::scan(&self.nodes);
        self.image_spread_stale = true;
        Some(QueuedEvent {
            event: NODE_DELETE,
            old: Some(Involved::Node(old)),
            new: None,
        })
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
                self.fit_index.remove(&self.nodes[i]);
                if self.nodes[i].remove_pod(&key.namespace, &key.name) {
                    counts.with_affinity -= aff;
                    counts.with_required_anti_affinity -= anti;
                }
                self.fit_index.add(&self.nodes[i]);
            }
        }
        if let Some(new) = &node {
            if let Some(&i) = self.node_index.get(new) {
                self.fit_index.remove(&self.nodes[i]);
                self.nodes[i].add_pod(p.info.clone());
                self.fit_index.add(&self.nodes[i]);
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

    /// Adds or updates a pod; returns the cluster events it raises: an
    /// assigned pod's deletion when it stops holding room (it ended, or an
    /// assumption was dropped), its addition when it is first seen bound,
    /// a label update of a bound pod.
    fn upsert_pod(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        obj: Arc<Object>,
    ) -> Vec<(QueuedEvent, Precheck)> {
        let Some(body) = obj.as_pod() else {
            return Vec::new();
        };
        let key = obj.key();
        let before = self.pods.get(&key).map(|p| {
            let bound = p.obj.as_pod().is_some_and(|b| b.node_name.is_some());
            (p.info.clone(), bound)
        });
        let claims_changed = self.dra.is_some()
            && self.pods.get(&key).is_some_and(|p| {
                p.obj.as_pod().map(|b| &b.status.resource_claim_statuses)
                    != Some(&body.status.resource_claim_statuses)
            });
        // Terminal pods free their resources, as the scheduler's cache does.
        let on_node = if body.is_terminal() {
            None
        } else {
            body.node_name.clone()
        };
        let binding = self.binds.is_binding(&key);
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
            return Vec::new();
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
        let mut events = Vec::new();
        if claims_changed && pending {
            events.push((
                QueuedEvent {
                    event: POD_GENERATED_RESOURCE_CLAIM,
                    old: None,
                    new: Some(Involved::Pod(info.clone(), None)),
                },
                Precheck::All,
            ));
        }
        let old_info = before.as_ref().map(|(i, _)| i.clone());
        // Room freed on a node: the scheduler's cache no longer holds it.
        if let (Some(node), None, Some(old)) = (&was_on, &on_node, &old_info) {
            events.push((
                QueuedEvent {
                    event: ASSIGNED_POD_DELETE,
                    old: Some(Involved::Pod(old.clone(), Some(node.clone()))),
                    new: None,
                },
                Precheck::All,
            ));
        }
        let was_bound = before.as_ref().is_some_and(|(_, b)| *b);
        if let Some(node) = on_node.filter(|_| !self.queue.is_empty()) {
            let new = Some(Involved::Pod(info.clone(), Some(node.clone())));
            let cross = Precheck::CrossTopology(info.clone());
            match old_info.filter(|_| was_bound) {
                None => events.push((
                    QueuedEvent {
                        event: ASSIGNED_POD_ADD,
                        old: None,
                        new,
                    },
                    cross,
                )),
                Some(old) if old.labels != info.labels => events.push((
                    QueuedEvent {
                        event: ASSIGNED_POD_UPDATE_LABEL,
                        old: Some(Involved::Pod(old, Some(node))),
                        new,
                    },
                    cross,
                )),
                Some(_) => {}
            }
        }
        events
    }

    /// Forgets a pod; returns the event its deletion raises: an assigned
    /// (or assumed) pod's room is freed; a pending pod nominated to a node
    /// frees the room lower- or equal-priority pods kept for it; any other
    /// pending pod's deletion helps nobody.
    fn remove_pod(&mut self, key: &ObjectKey) -> Option<(QueuedEvent, Precheck)> {
        let node = self.pods.get(key).and_then(|p| p.node.clone());
        let info = self.pods.get(key).map(|p| p.info.clone());
        self.account(key, None);
        self.pods.remove(key);
        self.update_nomination(key);
        self.queue.remove(key);
        self.gated.remove(key);
        let info = info?;
        let precheck = match (&node, &info.nominated_node) {
            (Some(_), _) => Precheck::All,
            (None, Some(_)) => Precheck::PriorityAtMost(info.priority),
            (None, None) => return None,
        };
        let event = QueuedEvent {
            event: ASSIGNED_POD_DELETE,
            old: Some(Involved::Pod(info, node)),
            new: None,
        };
        Some((event, precheck))
    }

    /// A rejected pod goes back to the queue; the events seen during its
    /// attempt are asked about with its rejectors' hints.
    fn requeue_unschedulable(
        &mut self,
        key: &ObjectKey,
        rejectors: BTreeSet<FilterPlugin>,
        now: SimTime,
    ) {
        let conf = &self.cfg.configuration;
        let (pods, owners) = (&self.pods, &self.owners);
        let affinity_terms = pods
            .get(key)
            .is_some_and(|p| !p.info.affinity.required_affinity.is_empty());
        let mut hint = |k: &ObjectKey, plugin: FilterPlugin, ev: &QueuedEvent| {
            hint_for(pods, conf, owners, k, plugin, ev)
        };
        self.queue
            .unschedulable(key, rejectors, affinity_terms, now, &mut hint);
    }

    /// Hands a cluster event to the queue (`MoveAllToActiveOrBackoffQueue`
    /// and its pre-checks): unless no enabled plugin registers it, every
    /// unschedulable pod the pre-check admits is asked about.
    fn fire(&mut self, ev: QueuedEvent, precheck: Precheck, now: SimTime) {
        let conf = &self.cfg.configuration;
        if !queueing_hint::of_interest(&conf.profiles, &ev.event) {
            return;
        }
        let (pods, owners) = (&self.pods, &self.owners);
        let admit = |k: &ObjectKey, rejectors: &BTreeSet<FilterPlugin>| {
            pods.get(k)
                .is_some_and(|w| precheck.admits(&w.info, rejectors))
        };
        let mut hint = |k: &ObjectKey, plugin: FilterPlugin, ev: &QueuedEvent| {
            hint_for(pods, conf, owners, k, plugin, ev)
        };
        let scope = match precheck {
            Precheck::CrossTopology(_) => Scope::CrossTopology,
            Precheck::All | Precheck::PriorityAtMost(_) => Scope::All,
        };
        self.queue
            .on_event(Arc::new(ev), now, scope, &admit, &mut hint);
    }

    fn apply_events(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        events: Vec<crate::model::apiserver::request::WatchEvent>,
    ) {
        for ev in events {
            let Some(obj) = ev.object else { continue };
            self.apply_event(ctx, ev.type_, obj);
        }
        self.maybe_start_cycle(ctx);
    }

    /// One watched change: the cache takes it, then the queue hears the
    /// cluster events it raised.
    fn apply_event(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        type_: EventType,
        obj: Arc<Object>,
    ) {
        let now = ctx.now;
        match (obj.kind, type_) {
            (Kind::Node, EventType::Deleted) => {
                if let Some(ev) = self.remove_node(&obj.meta.name) {
                    self.fire(ev, Precheck::All, now);
                }
            }
            (Kind::Node, _) => {
                for ev in self.upsert_node(&obj) {
                    self.fire(ev, Precheck::All, now);
                }
            }
            (Kind::Pod, EventType::Deleted) => {
                if let Some((ev, pre)) = self.remove_pod(&obj.key()) {
                    self.fire(ev, pre, now);
                }
            }
            (Kind::Pod, _) => {
                for (ev, pre) in self.upsert_pod(ctx, obj) {
                    self.fire(ev, pre, now);
                }
            }
            (Kind::ResourceClaim | Kind::ResourceSlice | Kind::DeviceClass, t) => {
                let Some(dra) = self.dra.as_mut() else { return };
                let resource = match obj.kind {
                    Kind::ResourceClaim => Resource::ResourceClaim,
                    Kind::ResourceSlice => Resource::ResourceSlice,
                    _ => Resource::DeviceClass,
                };
                dra.apply(obj, t == EventType::Deleted);
                if t != EventType::Deleted {
                    let event = dra_event(resource, t == EventType::Added);
                    let ev = QueuedEvent {
                        event,
                        old: None,
                        new: None,
                    };
                    self.fire(ev, Precheck::All, now);
                }
            }
            (k, EventType::Deleted) if OwnerCache::wants(k) => {
                self.owners.objects.remove(&obj.key());
            }
            (k, _) if OwnerCache::wants(k) => {
                self.owners.objects.insert(obj.key(), obj);
            }
            _ => {}
        }
        if std::mem::take(&mut self.image_spread_stale) {
            self.image_spread = image_spread(&self.nodes);
        }
    }

    /// A relist: what the cache holds and the list lacks is deleted, the
    /// rest added or updated, as an informer's Replace delivers it.
    fn replace(&mut self, ctx: &mut Ctx<'_, Payload, World>, kind: Kind, items: Vec<Arc<Object>>) {
        let listed: BTreeSet<ObjectKey> = items.iter().map(|o| o.key()).collect();
        if kind == Kind::Node {
            let gone: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| !listed.iter().any(|k| k.name == n.name))
                .map(|n| n.name.clone())
                .collect();
            for name in gone {
                if let Some(ev) = self.remove_node(&name) {
                    self.fire(ev, Precheck::All, ctx.now);
                }
            }
        } else {
            let gone: Vec<Arc<Object>> = self
                .pods
                .iter()
                .filter(|(k, _)| !listed.contains(*k))
                .map(|(_, p)| p.obj.clone())
                .collect();
            for obj in gone {
                self.apply_event(ctx, EventType::Deleted, obj);
            }
        }
        for obj in items {
            self.apply_event(ctx, EventType::Modified, obj);
        }
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
            // DynamicResources' PreEnqueue and PreFilter: a pod whose claims
            // are not there (or not allocatable at all) waits for a DRA event.
            let dra = match self.dra.as_ref().map(|d| d.prefilter(&p.obj)) {
                Some(Err(message)) => {
                    self.dra_rejected(ctx, &key, message);
                    continue;
                }
                Some(Ok(c)) => c,
                None => None,
            };
            let Some(p) = self.pods.get(&key) else {
                continue;
            };
            let Some(body) = p.obj.as_pod() else { continue };
            let default_selector = self.owners.default_selector(&p.info);
            let input = CycleInput {
                pod: &p.info,
                spec: &body.spec.api,
                nodes: &self.nodes,
                image_spread: &self.image_spread,
                default_selector: default_selector.as_ref(),
                nominated: &self.nominated,
                counts: self.affinity_counts,
                fit_index: Some(&self.fit_index),
                dra: dra.as_ref(),
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
                evaluated += super::preemption::dry_run_nodes(&input, &d.resolvable) as u64;
                preempt(profile, &input, &d, &self.pdbs(), ctx.rng)
            });
            let cost = self.cfg.cycle_base + self.cfg.per_node.saturating_mul(evaluated);
            let pod_obj = p.obj.clone();
            // Assume at once, so the next cycle sees the node as used.
            let mut claim_writes = Vec::new();
            if let Some(node) = &d.selected {
                self.account(&key, Some(node.clone()));
                if let Some(c) = &dra {
                    claim_writes = self.dra_reserve(c, node, &pod_obj);
                }
            }
            self.cycle = Some(Cycle {
                key,
                claim_writes,
                started: ctx.now,
                decision: d,
                preemption,
            });
            ctx.timer(cost, Payload::Timer(Timer::SchedulerCycle));
            return;
        }
    }

    fn finish_cycle(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let Some(Cycle {
            key,
            claim_writes,
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
                let ranking = d.ranking_text();
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
                if claim_writes.is_empty() {
                    self.send_bind(ctx, key, node.clone());
                } else {
                    // PreBind: the claims' allocations and reservations
                    // first; the bind once every one is written.
                    self.prebind_left.insert(key.clone(), claim_writes.len());
                    for req in claim_writes {
                        let claim = ObjectKey {
                            kind: Kind::ResourceClaim,
                            namespace: req.namespace.clone(),
                            name: req.name.clone(),
                        };
                        self.next_bind += 1;
                        let tag = TAG_CLAIM + self.next_bind;
                        self.prebinds
                            .insert(tag, (key.clone(), claim, node.clone()));
                        self.client.request(ctx, req, tag);
                    }
                }
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
                if d.total == 0 {
                    // ErrNoNodesAvailable is an error, not a rejection: the
                    // pod backs off in the error backoffQ.
                    self.queue.error(&key, ctx.now);
                } else {
                    self.requeue_unschedulable(&key, d.rejectors.clone(), ctx.now);
                }
                self.report_unschedulable(ctx, &key, message, nominate);
            }
        }
        self.maybe_start_cycle(ctx);
    }

    fn send_bind(&mut self, ctx: &mut Ctx<'_, Payload, World>, key: ObjectKey, node: String) {
        let mut req = ApiRequest::new(Verb::Bind, Kind::Pod, &key.namespace, &key.name);
        req.target = Some(node);
        self.next_bind += 1;
        let tag = TAG_BIND + self.next_bind;
        self.binds.insert(tag, key);
        self.client.request(ctx, req, tag);
    }

    /// A pod DynamicResources' PreEnqueue or PreFilter turned away: it waits
    /// as unschedulable until a claim, slice or class event, or its own
    /// generated claim, may help.
    fn dra_rejected(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        key: &ObjectKey,
        message: String,
    ) {
        let pod = format!("{}/{}", key.namespace, key.name);
        // PreEnqueue's rejections (no claim yet) raise no event upstream.
        let pre_enqueue = message.ends_with("ResourceClaim not created yet")
            || message.starts_with("could not find ResourceClaim");
        let rejectors: BTreeSet<FilterPlugin> = [FilterPlugin::DynamicResources].into();
        self.requeue_unschedulable(key, rejectors, ctx.now);
        if pre_enqueue {
            return;
        }
        let total = self.nodes.len();
        let message = format!("0/{total} nodes are available: {message}.");
        ctx.trace.record(
            TraceLevel::Events,
            ctx.now,
            &self.name,
            "FailedScheduling",
            |r| {
                r.str("pod", &pod)
                    .str("message", &message)
                    .u64("start", ctx.now.0);
            },
        );
        self.report_unschedulable(ctx, key, message, None);
    }

    /// Reserve: the claims' allocations on `node` go in flight; returns
    /// PreBind's writes (every claim not yet reserved for the pod).
    fn dra_reserve(&mut self, c: &DraCycle, node: &str, pod: &Object) -> Vec<ApiRequest> {
        let Some(dra) = self.dra.as_mut() else {
            return Vec::new();
        };
        let allocations: BTreeMap<ObjectKey, crate::dra::claim::Allocation> =
            c.reserve(node).into_iter().collect();
        let mut writes = Vec::new();
        for (key, obj, claim) in &c.claims {
            let allocation = allocations.get(key);
            if let Some(a) = allocation {
                dra.in_flight.insert(key.clone(), a.clone());
            } else if claim.allocation.is_none() || claim.reserved_for_pod(&pod.meta.uid) {
                continue;
            }
            writes.push(crate::dra::claim::reserve_request(obj, allocation, pod));
        }
        writes
    }

    /// A PreBind claim write answered: the bind goes once all have; a
    /// failure unreserves (the allocations in flight are dropped) and the
    /// pod backs off.
    fn on_claim_written(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        tag: u64,
        resp: Option<&ApiResponse>,
    ) {
        let Some((pod, claim, node)) = self.prebinds.remove(&tag) else {
            return;
        };
        let ok = resp.is_some_and(|r| r.ok());
        if let Some(d) = self.dra.as_mut() {
            match resp.and_then(|r| r.object.clone()).filter(|_| ok) {
                Some(obj) => d.assume(obj),
                None => {
                    d.in_flight.remove(&claim);
                }
            }
        }
        let Some(left) = self.prebind_left.get_mut(&pod) else {
            return;
        };
        if ok {
            *left -= 1;
            if *left == 0 {
                self.prebind_left.remove(&pod);
                self.send_bind(ctx, pod, node);
            }
            return;
        }
        self.prebind_left.remove(&pod);
        let in_flight: Vec<ObjectKey> = self
            .prebinds
            .values()
            .filter(|(p, _, _)| *p == pod)
            .map(|(_, c, _)| c.clone())
            .collect();
        if let Some(d) = self.dra.as_mut() {
            for c in in_flight {
                d.in_flight.remove(&c);
            }
        }
        self.prebinds.retain(|_, (p, _, _)| *p != pod);
        let was_on = self.pods.get(&pod).and_then(|p| p.node.clone());
        self.account(&pod, None);
        self.queue.error(&pod, ctx.now);
        if let (Some(node), Some(p)) = (was_on, self.pods.get(&pod)) {
            let ev = QueuedEvent {
                event: ASSIGNED_POD_DELETE,
                old: Some(Involved::Pod(p.info.clone(), Some(node))),
                new: None,
            };
            self.fire(ev, Precheck::All, ctx.now);
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
                        let kind = if tag == TAG_LIST_NODES {
                            Kind::Node
                        } else {
                            Kind::Pod
                        };
                        self.replace(ctx, kind, items);
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
            t if (TAG_EXTRA..TAG_EXTRA + self.extra_reflectors.len() as u64).contains(&t) => {
                let i = (t - TAG_EXTRA) as usize;
                let kind = Self::extra_kind(i);
                match self.extra_reflectors[i].on_list(resp, &mut self.client, ctx) {
                    Some(items) if i >= EXTRA_KINDS.len() => {
                        if let Some(d) = self.dra.as_mut() {
                            d.replace(kind, items);
                        }
                        let ev = QueuedEvent {
                            event: dra_event(Resource::ResourceSlice, true),
                            old: None,
                            new: None,
                        };
                        self.fire(ev, Precheck::All, ctx.now);
                        self.maybe_start_cycle(ctx);
                    }
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
            t if (TAG_CLAIM..TAG_BIND).contains(&t) => self.on_claim_written(ctx, t, resp),
            t if t > TAG_BIND => {
                let Some(key) = self.binds.remove(t) else {
                    return;
                };
                if resp.is_some_and(|r| r.ok()) {
                    self.queue.done(&key);
                } else {
                    // Forget the assumption and back off; the room it held
                    // is free again (AssignedPodDelete, as upstream's
                    // handleBindingCycleError raises after the requeue).
                    #[cfg(not(feature = "planted-bugs"))]
                    let node = {
                        let node = self.pods.get(&key).and_then(|p| p.node.clone());
                        self.account(&key, None);
                        node
                    };
                    // Planted bug (`planted-bugs`): "the scheduler's cache
                    // keeps an assumed pod after a failed bind". The pod is
                    // unlinked from its node but the node's NodeInfo keeps
                    // its requests: room that stays reserved for nobody.
                    #[cfg(feature = "planted-bugs")]
                    let node: Option<String> = {
                        if let Some(p) = self.pods.get_mut(&key) {
                            p.node = None;
                        }
                        None
                    };
                    self.queue.error(&key, ctx.now);
                    if let (Some(node), Some(p)) = (node, self.pods.get(&key)) {
                        let ev = QueuedEvent {
                            event: ASSIGNED_POD_DELETE,
                            old: Some(Involved::Pod(p.info.clone(), Some(node))),
                            new: None,
                        };
                        self.fire(ev, Precheck::All, ctx.now);
                    }
                    self.maybe_start_cycle(ctx);
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
        // The backoffQ flush ticks on whole seconds (its ordering windows);
        // the leftover flush every 30 s from the start.
        let into_window = ctx.now.0 % BACKOFF_WINDOW.nanos();
        ctx.timer(
            SimDuration::from_nanos(BACKOFF_WINDOW.nanos() - into_window),
            Payload::Timer(Timer::SchedulerFlush),
        );
        ctx.timer(
            LEFTOVER_FLUSH_PERIOD,
            Payload::Timer(Timer::SchedulerFlushLeftover),
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
                ctx.timer(BACKOFF_WINDOW, Payload::Timer(Timer::SchedulerFlush));
                self.queue.flush_backoff(ctx.now);
                self.maybe_start_cycle(ctx);
            }
            Payload::Timer(Timer::SchedulerFlushLeftover) => {
                ctx.timer(
                    LEFTOVER_FLUSH_PERIOD,
                    Payload::Timer(Timer::SchedulerFlushLeftover),
                );
                self.queue.flush_leftover(ctx.now);
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
        self.fit_index.clear();
        self.node_index.clear();
        self.pods.clear();
        self.affinity_counts = AffinityCounts::default();
        self.queue = Self::new_queue(&self.cfg);
        self.cycle = None;
        self.nominated.clear();
        self.gated.clear();
        self.binds.clear();
        if let Some(d) = self.dra.as_mut() {
            d.clear();
        }
        self.prebinds.clear();
        self.prebind_left.clear();
    }
}

/// Which unschedulable pods an event is offered to (upstream's
/// `PreEnqueueCheck` and the assigned-pod pre-filters).
enum Precheck {
    All,
    /// An assigned pod's add or label update: only pods rejected by
    /// PodTopologySpread in its namespace, or whose required affinity
    /// selects it (`getUnschedulablePodsWithCrossTopologyTerm`).
    CrossTopology(Arc<PodInfo>),
    /// A nominated pod's deletion: pods of at most its priority.
    PriorityAtMost(i32),
}

impl Precheck {
    fn admits(&self, waiting: &PodInfo, rejectors: &BTreeSet<FilterPlugin>) -> bool {
        match self {
            Precheck::All => true,
            Precheck::CrossTopology(pod) => {
                (rejectors.contains(&FilterPlugin::PodTopologySpread)
                    && pod.namespace == waiting.namespace)
                    || waiting
                        .affinity
                        .required_affinity
                        .iter()
                        .any(|t| t.matches(pod))
            }
            Precheck::PriorityAtMost(p) => waiting.priority <= *p,
        }
    }
}

/// The hint of `plugin` for the waiting pod `key` after `ev`.
fn hint_for(
    pods: &BTreeMap<ObjectKey, CachedPod>,
    conf: &SchedulerConfiguration,
    owners: &OwnerCache,
    key: &ObjectKey,
    plugin: FilterPlugin,
    ev: &QueuedEvent,
) -> Option<QueueingHint> {
    let p = pods.get(key)?;
    let body = p.obj.as_pod()?;
    let profile = conf.profile(&body.spec.scheduler_name)?;
    let spread = || {
        let selector = owners.default_selector(&p.info);
        let mut all = spread_constraints(profile, &p.info, selector.as_ref(), true);
        all.extend(spread_constraints(
            profile,
            &p.info,
            selector.as_ref(),
            false,
        ));
        all
    };
    let target = Target {
        pod: &p.info,
        spec: &body.spec.api,
        profile,
        spread: &spread,
    };
    queueing_hint::hint(plugin, &target, ev)
}
