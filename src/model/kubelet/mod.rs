//! The kubelet: registers its Node, renews its Lease, reports node status, and
//! runs the pods bound to it through their lifecycle, all through the apiserver.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::apiserver::request::{ApiRequest, ApiResponse, EventType, PatchOp, Verb, WatchBatch};
use super::client::{ApiClient, Dispatch, KUBELET};
use super::msg::{Message, Payload, Timer};
use super::world::World;
use crate::api::lease::LeaseBody;
use crate::api::node::{NodeBody, NodeCondition, NodeImage};
use crate::api::object::{Body, Meta};
use crate::api::pod::{
    ContainerState, ContainerStatus, PodPhase, PodSpecModel, PodStatus, RestartPolicy,
};
use crate::api::resources::{add_into, insufficient, ResourceList};
use crate::api::{Kind, Object, ObjectKey};
use crate::faults::Observation;
use crate::sim::{Actor, ComponentId, Ctx, LatencyDist, SimDuration, SimTime, TraceLevel};

mod backoff;
mod container_crash;
mod dra;
mod image_backoff;
mod images;
mod kill;
mod live;
mod node_status;
mod own_status;
mod pod_workers;
mod prober;
pub mod runtime;
mod startup_tracker;
mod status_manager;
mod step_spans;

use own_status::OwnStatus;
use status_manager::STATUS_SYNC_PERIOD;

/// Kubelet timing and the node it runs on.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// Lease renewal: `leaseDuration * 0.25` = 10 s for the 40 s default.
    pub lease_renew: SimDuration,
    pub lease_duration_seconds: i32,
    /// `nodeStatusUpdateFrequency` (10 s): how often status is computed.
    pub status_update: SimDuration,
    /// `nodeStatusReportFrequency` (5 min): post unchanged status this often.
    pub status_report: SimDuration,
    pub sandbox_create: LatencyDist,
    pub container_start: LatencyDist,
    /// Image pull: fixed cost plus size over bandwidth (bytes/s).
    pub pull_overhead: LatencyDist,
    pub pull_bandwidth: u64,
    /// Container stop after SIGTERM when the app exits promptly.
    pub container_stop: LatencyDist,
    pub image_sizes: Arc<BTreeMap<String, u64>>,
    pub default_image_size: u64,
    /// The container runtime: simulated, or a real one (live mode).
    pub runtime: runtime::Runtime,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            lease_renew: SimDuration::from_secs(10),
            lease_duration_seconds: 40,
            status_update: SimDuration::from_secs(10),
            status_report: SimDuration::from_secs(300),
            sandbox_create: LatencyDist::log_normal(
                SimDuration::from_millis(200),
                SimDuration::from_millis(800),
            ),
            container_start: LatencyDist::log_normal(
                SimDuration::from_millis(100),
                SimDuration::from_millis(400),
            ),
            pull_overhead: LatencyDist::log_normal(
                SimDuration::from_millis(500),
                SimDuration::from_secs(2),
            ),
            pull_bandwidth: 50 * 1024 * 1024,
            container_stop: LatencyDist::log_normal(
                SimDuration::from_millis(100),
                SimDuration::from_millis(500),
            ),
            image_sizes: Arc::new(BTreeMap::new()),
            default_image_size: 50 * 1024 * 1024,
            runtime: runtime::Runtime::Simulated,
        }
    }
}

/// Tags of the kubelet's API requests.
const TAG_REGISTER: u64 = 1;
const TAG_LEASE_CREATE: u64 = 2;
const TAG_LEASE_RENEW: u64 = 3;
const TAG_STATUS: u64 = 4;
const TAG_LIST: u64 = 5;
const TAG_STATUS_GET: u64 = 6;
const TAG_SLICE: u64 = 7;
const TAG_NODE_GET: u64 = 8;
/// A claim's GET before a pod's sandbox: `TAG_CLAIM_GET | slot`.
const TAG_CLAIM_GET: u64 = 1 << 34;
const TAG_POD: u64 = 1 << 32;
/// The final delete of a pod (grace 0), by slot.
const TAG_POD_DELETE: u64 = 1 << 33;

/// What a [`Timer::KubeletRetry`] retries, with upstream's backoff: node
/// registration 100 ms doubling to 7 s; the lease controller's ensure-lease
/// 200 ms doubling to 7 s; the pod reflector's relist 800 ms doubling to 30 s.
const RETRY_REGISTER: u8 = 0;
const RETRY_LEASE: u8 = 1;
const RETRY_LIST: u8 = 2;

fn backoff(what: u8, failures: u32) -> SimDuration {
    let (first_ms, cap_ms): (u64, u64) = match what {
        RETRY_REGISTER => (100, 7_000),
        RETRY_LEASE => (200, 7_000),
        _ => (800, 30_000),
    };
    let ms = first_ms
        .saturating_mul(1u64 << failures.min(16))
        .min(cap_ms);
    SimDuration::from_millis(ms)
}

/// Where a pod is in its life on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Sandbox,
    Init(usize),
    StartApps,
    Running,
    Terminating,
    Done,
}

struct PodRuntime {
    key: ObjectKey,
    obj: Arc<Object>,
    stage: Stage,
    gen: u32,
    status: OwnStatus,
    /// The own status's version when it last compared equal to the pod
    /// cache's copy; cleared when the watch brings a new copy.
    in_sync: Option<u64>,
    /// Per app container, then per init container (for sidecars): when
    /// started, which instance (probe timers of an older one are stale),
    /// consecutive probe successes and failures, consecutive liveness
    /// failures, restarts, the crash-loop back-off entry, the kill in
    /// progress and its timer generation.
    started: Vec<Option<SimTime>>,
    instance: Vec<u32>,
    probe_ok: Vec<u32>,
    probe_fail: Vec<u32>,
    live_fail: Vec<u32>,
    restarts: Vec<u32>,
    backoff: Vec<Option<backoff::BackOffEntry>>,
    kills: Vec<Option<kill::Kill>>,
    kill_gen: Vec<u32>,
    /// Per app container: when its back-off ends and it is started again.
    restart_at: Vec<Option<SimTime>>,
    /// Status writes in flight / wanted.
    posting: bool,
    dirty: bool,
    /// The resourceVersion of the last status write the apiserver acknowledged.
    acked_rv: u64,
    deleted_sent: bool,
    /// The pod is done and deleted; its DELETE waits for the final status.
    delete_pending: bool,
    /// Live: the runtime could not make the sandbox; the next step tries
    /// again rather than moving on.
    retry_sandbox: bool,
    /// The armed pod step is this runtime step, begun then: traced as a
    /// `RuntimeStep` span when it fires ([`step_spans`]).
    timed_step: Option<(step_spans::StepKind, SimTime)>,
}

pub struct Kubelet {
    name: String,
    node_name: String,
    cfg: Arc<KubeletConfig>,
    client: ApiClient,
    node_template: NodeBody,
    labels: Arc<BTreeMap<String, String>>,
    pods: Vec<Option<PodRuntime>>,
    by_key: BTreeMap<ObjectKey, u32>,
    images: BTreeSet<String>,
    pulling: Option<String>,
    pull_waiters: BTreeMap<String, Vec<u32>>,
    /// The pod startup SLI's moments per pod (in memory: gone with a crash or restart).
    startup: startup_tracker::StartupTracker,
    pull_queue: Vec<String>,
    /// The pull in progress will fail (the registry refused it).
    pull_fails: bool,
    /// The image manager's back-off, per pod and image.
    pull_backoff: images::PullBackOffs,
    last_status_post: Option<SimTime>,
    /// When the current node status sync started (its timer fired).
    status_sync_started: SimTime,
    posted_conditions: Vec<NodeCondition>,
    watch_id: u64,
    watch_seq: u64,
    watch_rv: u64,
    registered: bool,
    /// The pod watch is established (not listing or waiting to relist).
    pod_watch_open: bool,
    /// Consecutive failures per retry kind, for backoff.
    failures: [u32; 3],
    /// Planted bug (`planted-bugs`): "the kubelet does not re-check pods
    /// deleted while it was partitioned". Set when the pod watch broke or
    /// relisted; while set, the relist's items and the resumed stream's
    /// first batch (what it missed) are taken without their deletions, so
    /// a pod deleted meanwhile stays Terminating with its containers up
    /// (`missed`: those pods, whose deletion is never acted on after).
    #[cfg(feature = "planted-bugs")]
    catching_up: bool,
    #[cfg(feature = "planted-bugs")]
    missed: BTreeSet<ObjectKey>,
    /// A restarted kubelet process has not yet listed the pods it finds
    /// running (see [`Actor::restarted_in_place`]).
    adopting: bool,
    /// The node's modelled DRA drivers (`nodePools[].devices`).
    drivers: Arc<Vec<crate::dra::driver::DriverSpec>>,
    /// Pods whose claims are being checked before their sandbox.
    preparing: BTreeMap<u32, dra::Preparing>,
}

impl Kubelet {
    pub fn new(
        node_name: &str,
        apiserver: ComponentId,
        node: NodeBody,
        labels: BTreeMap<String, String>,
        cfg: Arc<KubeletConfig>,
    ) -> Self {
        Kubelet {
            name: format!("kubelet/{node_name}"),
            node_name: node_name.to_string(),
            client: ApiClient::new(apiserver, KUBELET, cfg.status_update),
            cfg,
            // Images listed on the node template are on its disk already.
            images: node
                .images
                .iter()
                .flat_map(|i| i.names.iter().cloned())
                .collect(),
            node_template: node,
            labels: Arc::new(labels),
            pods: Vec::new(),
            by_key: BTreeMap::new(),
            pulling: None,
            pull_waiters: BTreeMap::new(),
            startup: startup_tracker::StartupTracker::default(),
            pull_queue: Vec::new(),
            pull_fails: false,
            pull_backoff: BTreeMap::new(),
            last_status_post: None,
            status_sync_started: SimTime::ZERO,
            posted_conditions: Vec::new(),
            watch_id: 0,
            watch_seq: 0,
            watch_rv: 0,
            registered: false,
            pod_watch_open: false,
            failures: [0; 3],
            #[cfg(feature = "planted-bugs")]
            catching_up: false,
            #[cfg(feature = "planted-bugs")]
            missed: BTreeSet::new(),
            adopting: false,
            drivers: Arc::new(Vec::new()),
            preparing: BTreeMap::new(),
        }
    }

    /// The node's DRA drivers, whose slices it publishes.
    pub fn with_drivers(mut self, drivers: Arc<Vec<crate::dra::driver::DriverSpec>>) -> Self {
        self.drivers = drivers;
        self
    }

    /// Planted bug: see `catching_up`. The watch broke or is relisting.
    fn mark_catching_up(&mut self) {
        #[cfg(feature = "planted-bugs")]
        {
            self.catching_up = true;
        }
    }

    /// Planted bug: whether a deletion of `key` seen now is ignored (see
    /// `catching_up`).
    fn ignores_missed_deletion(&mut self, _key: &ObjectKey) -> bool {
        #[cfg(feature = "planted-bugs")]
        {
            if self.catching_up {
                self.missed.insert(_key.clone());
            }
            self.missed.contains(_key)
        }
        #[cfg(not(feature = "planted-bugs"))]
        false
    }

    fn trace(&self, ctx: &mut Ctx<'_, Payload, World>, event: &str, pod: &ObjectKey, detail: &str) {
        let name = &self.name;
        let p = format!("{}/{}", pod.namespace, pod.name);
        ctx.trace
            .record(TraceLevel::Events, ctx.now, name, event, |r| {
                r.str("pod", &p);
                if !detail.is_empty() {
                    r.str("detail", detail);
                }
            });
    }

    /// An Event about the pod, as the kubelet's recorder reports it (the
    /// same record the controller manager writes for its Events; the
    /// kubelet's events are traced, not posted to the apiserver).
    fn event(
        &self,
        ctx: &mut Ctx<'_, Payload, World>,
        pod: &ObjectKey,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let object = format!("Pod/{}/{}", pod.namespace, pod.name);
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &self.name, "Event", |r| {
                r.str("type", type_)
                    .str("reason", reason)
                    .str("object", &object)
                    .str("message", message)
                    .str("source", "kubelet");
            });
    }

    fn retry_later(&mut self, ctx: &mut Ctx<'_, Payload, World>, what: u8) {
        let n = &mut self.failures[what as usize];
        let wait = backoff(what, *n);
        *n += 1;
        ctx.timer(wait, Payload::Timer(Timer::KubeletRetry { what }));
    }

    /// Upstream's `onRepeatedHeartbeatFailure` (`closeAllConns`): when the
    /// node status update fails again within one `updateNodeStatus` (its
    /// five tries are back to back, so a period whose try failed stands for
    /// them), the kubelet closes every connection to the apiserver. A watch
    /// over a dead connection would otherwise look healthy until the
    /// apiserver's next bookmark; closed, the pod reflector re-lists with its
    /// backoff and catches up as soon as the apiserver is reachable.
    fn on_repeated_heartbeat_failure(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if !self.pod_watch_open {
            return;
        }
        let name = self.name.clone();
        ctx.trace.record(
            TraceLevel::Events,
            ctx.now,
            &name,
            "ConnectionsClosed",
            |r| {
                r.str(
                    "detail",
                    "node status update failed: closing all connections",
                );
            },
        );
        // The closed watch is re-established by a relist, as a broken one is.
        ctx.shared.stats.watch_relists += 1;
        self.watch_id += 1;
        self.mark_catching_up();
        self.list_pods(ctx);
    }

    fn list_pods(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.pod_watch_open = false;
        let mut req = ApiRequest::new(Verb::List, Kind::Pod, "", "");
        req.node_filter = Some(self.node_name.clone());
        self.client.request(ctx, req, TAG_LIST);
    }

    fn watch_pods(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.pod_watch_open = true;
        self.watch_id += 1;
        self.watch_seq = 0;
        let mut req = ApiRequest::new(Verb::Watch, Kind::Pod, "", "");
        req.node_filter = Some(self.node_name.clone());
        req.resource_version = self.watch_rv;
        req.watch_id = self.watch_id;
        self.client.request(ctx, req, 0);
    }

    fn on_watch(&mut self, ctx: &mut Ctx<'_, Payload, World>, b: WatchBatch) {
        if b.watch_id != self.watch_id {
            return;
        }
        if b.closed {
            // The stream ended (its connection broke): resume from the last
            // revision seen, as the reflector behind the pod config does.
            ctx.shared.stats.watch_restarts += 1;
            self.mark_catching_up();
            return self.watch_pods(ctx);
        }
        if b.gone || b.seq != self.watch_seq + 1 {
            // The stream broke or is too old: relist, as a reflector does.
            ctx.shared.stats.watch_relists += 1;
            self.watch_id += 1;
            self.mark_catching_up();
            return self.list_pods(ctx);
        }
        self.watch_seq = b.seq;
        let delivered = Observation::WatchDelivered {
            consumer: ctx.me,
            watch_id: b.watch_id,
            filtered: true,
            events: &b.events,
        };
        ctx.shared.observe(ctx.now, delivered);
        for ev in b.events {
            self.watch_rv = self.watch_rv.max(ev.resource_version);
            if let Some(obj) = ev.object {
                if ev.type_ == EventType::Deleted {
                    if !self.ignores_missed_deletion(&obj.key()) {
                        self.forget(ctx, obj.key());
                    }
                } else {
                    self.observe(ctx, obj);
                }
            }
        }
        #[cfg(feature = "planted-bugs")]
        {
            self.catching_up = false;
        }
    }

    fn forget(&mut self, ctx: &mut Ctx<'_, Payload, World>, key: ObjectKey) {
        if let Some(slot) = self.by_key.remove(&key) {
            if let Some(rt) = self.pods[slot as usize].take() {
                self.startup.forget(&rt.obj.meta.uid);
                let released = Observation::PodReleased {
                    node: &self.node_name,
                    pod: &rt.obj,
                };
                ctx.shared.observe(ctx.now, released);
                self.submit(ctx, runtime::RuntimeOp::RemovePod { pod: rt.obj });
            }
        }
    }

    /// Reacts to the current state of a pod bound to this node.
    fn observe(&mut self, ctx: &mut Ctx<'_, Payload, World>, obj: Arc<Object>) {
        if let Some(sli) = self.startup.observed_on_watch(&obj, ctx.now) {
            let stats = &mut ctx.shared.stats;
            stats
                .latencies(obj.meta.creation)
                .pod_startup_sli
                .record(sli);
        }
        let key = obj.key();
        if let Some(&slot) = self.by_key.get(&key) {
            let deleting = obj.meta.deletion.is_some() && !self.ignores_missed_deletion(&key);
            let rt = self.pods[slot as usize]
                .as_mut()
                .expect("indexed pods exist");
            rt.obj = obj;
            rt.in_sync = None;
            if deleting && !matches!(rt.stage, Stage::Terminating | Stage::Done) {
                self.begin_termination(ctx, slot);
            } else if deleting && rt.stage == Stage::Done && !rt.deleted_sent {
                self.finalize_delete(ctx, slot);
            }
            return;
        }
        let Some(pod) = obj.as_pod() else { return };
        if pod.is_terminal() {
            return;
        }
        let slot = self
            .pods
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                self.pods.push(None);
                self.pods.len() - 1
            }) as u32;
        let n = pod.spec.containers.len();
        let all = n + pod.spec.init_containers.len();
        let status = pod.status.clone();
        self.by_key.insert(key.clone(), slot);
        self.pods[slot as usize] = Some(PodRuntime {
            key: key.clone(),
            obj: obj.clone(),
            stage: Stage::Sandbox,
            gen: 0,
            status: OwnStatus::new(status),
            in_sync: None,
            // App containers, then init containers (sidecars use theirs).
            started: vec![None; all],
            instance: vec![0; all],
            probe_ok: vec![0; all],
            probe_fail: vec![0; all],
            live_fail: vec![0; all],
            restarts: vec![0; all],
            backoff: vec![None; all],
            kills: vec![None; all],
            kill_gen: vec![0; all],
            restart_at: vec![None; n],
            posting: false,
            dirty: false,
            acked_rv: 0,
            deleted_sent: false,
            delete_pending: false,
            retry_sandbox: false,
            timed_step: None,
        });
        self.admit(ctx, slot);
    }

    /// The first list after a kubelet restart: every pod still bound here
    /// whose containers run is adopted (nothing restarts), with new probe
    /// workers ([`Self::adopt_probes`]); a changed readiness is written.
    fn adopt_running(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        for slot in 0..self.pods.len() as u32 {
            let Some(rt) = self.pods[slot as usize].as_ref() else {
                continue;
            };
            let running: Vec<usize> = (0..rt.started.len())
                .filter(|&i| rt.started[i].is_some() && rt.kills[i].is_none())
                .collect();
            let mut changed = false;
            for i in running {
                changed |= self.adopt_probes(ctx, slot, i);
            }
            if changed {
                self.refresh_pod_phase(ctx, slot);
                self.post_status(ctx, slot);
            }
        }
    }

    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        tag: u64,
        resp: Option<&ApiResponse>,
    ) {
        let ok = resp.is_some_and(|r| r.ok() || r.code == 409 && tag == TAG_REGISTER);
        match tag {
            TAG_REGISTER => {
                if ok {
                    self.after_register(ctx, resp);
                    self.failures[RETRY_REGISTER as usize] = 0;
                    self.registered = true;
                    self.last_status_post = Some(ctx.now);
                    self.posted_conditions = self.conditions(ctx.now);
                    self.create_lease(ctx);
                    self.list_pods(ctx);
                } else {
                    self.retry_later(ctx, RETRY_REGISTER);
                }
            }
            TAG_LEASE_CREATE => match resp {
                Some(r) if r.ok() => self.failures[RETRY_LEASE as usize] = 0,
                // Already there (a restart): take it over by renewing.
                Some(r) if r.code == 409 => self.renew_lease(ctx),
                _ => self.retry_later(ctx, RETRY_LEASE),
            },
            TAG_LEASE_RENEW => match resp {
                Some(r) if r.ok() => self.failures[RETRY_LEASE as usize] = 0,
                // The lease is gone: ensure it exists again.
                Some(r) if r.code == 404 => self.create_lease(ctx),
                // Otherwise the next renewal interval tries again.
                _ => {}
            },
            TAG_STATUS_GET => {
                // A failed read skips this period, as upstream's loop moves
                // on to the next tick after its retries.
                match resp.filter(|r| r.ok()).and_then(|r| r.object.clone()) {
                    Some(live) => self.patch_status_if_needed(ctx, &live),
                    None => self.on_repeated_heartbeat_failure(ctx),
                }
            }
            TAG_STATUS if !ok => self.on_repeated_heartbeat_failure(ctx),
            TAG_LIST => match resp {
                Some(r) if r.ok() => {
                    self.watch_rv = r.resource_version;
                    let seen: BTreeSet<ObjectKey> = r.items.iter().map(|o| o.key()).collect();
                    let gone: Vec<ObjectKey> = self
                        .by_key
                        .keys()
                        .filter(|k| !seen.contains(k))
                        .cloned()
                        .collect();
                    for k in gone {
                        if !self.ignores_missed_deletion(&k) {
                            self.forget(ctx, k);
                        }
                    }
                    if std::mem::take(&mut self.adopting) {
                        self.adopt_running(ctx);
                    }
                    for o in r.items.clone() {
                        self.observe(ctx, o);
                    }
                    self.failures[RETRY_LIST as usize] = 0;
                    self.watch_pods(ctx);
                }
                _ => self.retry_later(ctx, RETRY_LIST),
            },
            TAG_NODE_GET => {
                if let Some(uid) = resp
                    .filter(|r| r.ok())
                    .and_then(|r| r.object.as_ref())
                    .map(|o| o.meta.uid.clone())
                {
                    self.publish_slices(ctx, &uid);
                }
            }
            // Published, or there already (409); a failure is retried when
            // the kubelet next registers (its restart).
            TAG_SLICE => {}
            t if t & TAG_CLAIM_GET != 0 => {
                let slot = (t & 0xffff_ffff) as u32;
                self.on_claim_get(ctx, slot, ((t >> 35) & 0x3f) as usize, resp);
            }
            t if t & TAG_POD_DELETE != 0 => {
                // A delete that failed (not a 404: the pod is gone) goes
                // again on the next status sync, as upstream's
                // `needsUpdate` keeps a pod that `canBeDeleted` in every
                // `syncBatch` until it is gone.
                let slot = (t & 0xffff_ffff) as u32;
                let gone = resp.is_some_and(|r| r.ok() || r.code == 404);
                if let Some(rt) = self.pods.get_mut(slot as usize).and_then(Option::as_mut) {
                    if !gone {
                        rt.deleted_sent = false;
                    }
                }
            }
            t if t & TAG_POD != 0 => {
                let slot = (t & 0xffff_ffff) as u32;
                if let Some(rt) = self.pods.get_mut(slot as usize).and_then(Option::as_mut) {
                    rt.posting = false;
                    if let Some(r) = resp.filter(|r| r.ok()) {
                        let rv = r
                            .object
                            .as_ref()
                            .map_or(r.resource_version, |o| o.meta.resource_version);
                        rt.acked_rv = rt.acked_rv.max(rv);
                        if let Some(pod) = r.object.as_deref().and_then(Object::as_pod) {
                            self.startup.status_updated(&rt.obj.meta.uid, pod, ctx.now);
                        }
                    }
                    if rt.dirty || !ok {
                        self.post_status(ctx, slot);
                    } else if rt.delete_pending {
                        self.finalize_delete(ctx, slot);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Actor<Payload, World> for Kubelet {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.runtime_node(true, Some(ctx));
        self.register(ctx);
        let jitter = SimDuration(ctx.rng.range_inclusive(0, self.cfg.lease_renew.nanos()));
        ctx.timer(jitter, Payload::Timer(Timer::LeaseRenew));
        ctx.timer(jitter, Payload::Timer(Timer::NodeStatus));
        // The status manager's ticker starts with the kubelet, unjittered.
        ctx.timer(STATUS_SYNC_PERIOD, Payload::Timer(Timer::PodStatusSync));
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        let payload = match self.client.dispatch(ctx, payload) {
            Dispatch::Other(p) => p,
            Dispatch::Handled => return,
            Dispatch::Finished(tag, resp) => return self.on_response(ctx, tag, resp.as_deref()),
        };
        match payload {
            Payload::Timer(Timer::LeaseRenew) => {
                ctx.timer(self.cfg.lease_renew, Payload::Timer(Timer::LeaseRenew));
                if self.registered {
                    self.renew_lease(ctx);
                }
            }
            Payload::Timer(Timer::PodStatusSync) => {
                ctx.timer(STATUS_SYNC_PERIOD, Payload::Timer(Timer::PodStatusSync));
                self.sync_pod_statuses(ctx);
            }
            Payload::Timer(Timer::NodeStatus) => {
                ctx.timer(self.cfg.status_update, Payload::Timer(Timer::NodeStatus));
                self.sync_status(ctx);
            }
            Payload::Timer(Timer::DraPrepare { slot, gen, retry }) => {
                self.on_prepare_timer(ctx, slot, gen, retry);
            }
            Payload::Timer(Timer::PodStep { slot, gen }) => {
                let Some(rt) = self.pods.get(slot as usize).and_then(Option::as_ref) else {
                    return;
                };
                if rt.gen == gen {
                    self.end_timed_step(ctx, slot);
                    self.advance(ctx, slot);
                }
            }
            Payload::Timer(Timer::ContainerExit { slot }) => {
                let running = self
                    .pods
                    .get(slot as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|rt| rt.stage == Stage::Running);
                if running {
                    self.on_container_exits(ctx, slot);
                }
            }
            Payload::Timer(Timer::Probe {
                slot,
                container,
                gen,
            }) => self.on_probe(ctx, slot, container as usize, gen),
            Payload::Timer(Timer::LivenessProbe {
                slot,
                container,
                gen,
            }) => self.on_liveness_probe(ctx, slot, container as usize, gen),
            Payload::Timer(Timer::ContainerKill {
                slot,
                container,
                gen,
            }) => self.on_kill_step(ctx, slot, container as usize, gen),
            Payload::Timer(Timer::PullDone { .. }) => self.on_pull_done(ctx),
            Payload::Timer(Timer::KubeletRetry { what }) => match what {
                RETRY_REGISTER => self.register(ctx),
                RETRY_LEASE => self.create_lease(ctx),
                _ => self.list_pods(ctx),
            },
            Payload::Msg {
                msg: Message::Watch(b),
                ..
            } => self.on_watch(ctx, *b),
            Payload::Msg {
                msg: Message::ContainerCrash(c),
                ..
            } => self.on_container_crash(ctx, &c),
            Payload::Msg {
                msg: Message::Runtime(a),
                ..
            } => self.on_runtime_answer(ctx, *a),
            _ => {}
        }
    }

    /// The kubelet process was restarted on a node that kept running
    /// (`crashKubelet` then `restartKubelet`): containers kept running, so
    /// every pod's runtime state stays (the new process reads it back from
    /// the container runtime, as upstream's kubelet does on start, and
    /// adopts the containers rather than restarting them), while what the
    /// old process held in memory is gone: its connections and requests,
    /// its registration, the pod watch, probe counts, crash-loop back-off
    /// entries and the status manager's view of what it wrote. It registers
    /// again (a 409 means the Node is there), takes its Lease over and
    /// relists its pods; the tickers of the node's timers go on.
    fn restarted_in_place(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.client.reset();
        self.registered = false;
        self.pod_watch_open = false;
        self.failures = [0; 3];
        self.watch_id += 1;
        self.watch_rv = 0;
        self.last_status_post = None;
        self.posted_conditions.clear();
        self.startup = startup_tracker::StartupTracker::default();
        self.adopting = true;
        for rt in self.pods.iter_mut().flatten() {
            // The old process's probe workers are gone with it.
            rt.instance.iter_mut().for_each(|g| *g += 1);
            rt.probe_ok.iter_mut().for_each(|n| *n = 0);
            rt.probe_fail.iter_mut().for_each(|n| *n = 0);
            rt.live_fail.iter_mut().for_each(|n| *n = 0);
            rt.backoff.iter_mut().for_each(|b| *b = None);
            rt.posting = false;
            rt.dirty = false;
            rt.acked_rv = 0;
            rt.deleted_sent = false;
            rt.delete_pending = false;
        }
        // Claim checks in flight died with the old process: the new one
        // checks those pods' claims again.
        for (slot, p) in std::mem::take(&mut self.preparing) {
            let t = Timer::DraPrepare {
                slot,
                gen: p.gen,
                retry: true,
            };
            ctx.timer(SimDuration::ZERO, Payload::Timer(t));
        }
        self.register(ctx);
    }

    fn crash(&mut self, _now: SimTime) {
        self.runtime_node(false, None);
        self.adopting = false;
        // Containers die with the node; the image cache on disk survives.
        self.pods.clear();
        self.by_key.clear();
        self.preparing.clear();
        self.pulling = None;
        self.pull_waiters.clear();
        self.startup = startup_tracker::StartupTracker::default();
        self.pull_queue.clear();
        self.pull_fails = false;
        self.pull_backoff.clear();
        self.client.reset();
        self.registered = false;
        self.pod_watch_open = false;
        self.failures = [0; 3];
        self.watch_id += 1;
        self.watch_rv = 0;
        #[cfg(feature = "planted-bugs")]
        {
            self.catching_up = false;
            self.missed.clear();
        }
    }
}
