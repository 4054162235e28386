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
use crate::api::pod::{ContainerState, ContainerStatus, PodPhase, PodStatus, RestartPolicy};
use crate::api::resources::{add_into, insufficient, ResourceList};
use crate::api::{Kind, Object, ObjectKey};
use crate::sim::{Actor, ComponentId, Ctx, LatencyDist, SimDuration, SimTime, TraceLevel};

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
const TAG_POD: u64 = 1 << 32;

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
    status: PodStatus,
    /// Per app container: when started, consecutive probe successes, restarts.
    started: Vec<Option<SimTime>>,
    probe_ok: Vec<u32>,
    restarts: Vec<u32>,
    /// Status writes in flight / wanted.
    posting: bool,
    dirty: bool,
    deleted_sent: bool,
    ever_ready: bool,
    first_start: bool,
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
    pull_queue: Vec<String>,
    last_status_post: Option<SimTime>,
    posted_conditions: Vec<NodeCondition>,
    watch_id: u64,
    watch_seq: u64,
    watch_rv: u64,
    registered: bool,
    /// Consecutive failures per retry kind, for backoff.
    failures: [u32; 3],
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
            pull_queue: Vec::new(),
            last_status_post: None,
            posted_conditions: Vec::new(),
            watch_id: 0,
            watch_seq: 0,
            watch_rv: 0,
            registered: false,
            failures: [0; 3],
        }
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

    fn conditions(&self, now: SimTime) -> Vec<NodeCondition> {
        let keep = |t: &'static str, status: &'static str| {
            self.posted_conditions
                .iter()
                .find(|c| c.type_ == t && c.status == status)
                .map(|c| c.last_transition)
                .unwrap_or(now)
        };
        let c = |type_, status, reason, message| NodeCondition {
            type_,
            status,
            last_heartbeat: now,
            last_transition: keep(type_, status),
            reason,
            message,
        };
        vec![
            c(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            c(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            c(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            c(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]
    }

    fn node_images(&self) -> Vec<NodeImage> {
        self.images
            .iter()
            .map(|i| NodeImage {
                names: vec![i.clone()],
                size_bytes: self.image_size(i) as i64,
            })
            .collect()
    }

    fn image_size(&self, image: &str) -> u64 {
        self.cfg
            .image_sizes
            .get(image)
            .copied()
            .unwrap_or(self.cfg.default_image_size)
    }

    fn register(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let mut body = self.node_template.clone();
        body.conditions = self.conditions(ctx.now);
        body.images = self.node_images();
        let mut meta = Meta {
            name: self.node_name.clone(),
            labels: self.labels.clone(),
            ..Default::default()
        };
        meta.annotations = Arc::new(BTreeMap::from([(
            "node.alpha.kubernetes.io/ttl".to_string(),
            "0".to_string(),
        )]));
        let node = Object {
            kind: Kind::Node,
            meta,
            body: Body::Node(body),
        };
        let mut req = ApiRequest::new(Verb::Create, Kind::Node, "", &self.node_name);
        req.body = Some(Arc::new(node));
        self.client.request(ctx, req, TAG_REGISTER);
    }

    fn create_lease(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let meta = Meta {
            name: self.node_name.clone(),
            namespace: "kube-node-lease".into(),
            ..Default::default()
        };
        let lease = LeaseBody {
            holder_identity: Some(self.node_name.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration_seconds),
            acquire_time: Some(ctx.now),
            renew_time: Some(ctx.now),
            lease_transitions: None,
        };
        let mut req = ApiRequest::new(
            Verb::Create,
            Kind::Lease,
            "kube-node-lease",
            &self.node_name,
        );
        req.body = Some(Arc::new(Object {
            kind: Kind::Lease,
            meta,
            body: Body::Lease(lease),
        }));
        self.client.request(ctx, req, TAG_LEASE_CREATE);
    }

    fn renew_lease(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let mut req = ApiRequest::new(Verb::Patch, Kind::Lease, "kube-node-lease", &self.node_name);
        req.patch = Some(PatchOp::LeaseRenew {
            holder: self.node_name.clone(),
            renew: ctx.now,
            duration_seconds: self.cfg.lease_duration_seconds,
        });
        self.client.request(ctx, req, TAG_LEASE_RENEW);
    }

    /// Every `nodeStatusUpdateFrequency`: read the Node as the apiserver has
    /// it (upstream's GET with resourceVersion 0, served from the watch
    /// cache), then patch the status if it differs from what the kubelet
    /// sees or the report interval has passed. Comparing with the live
    /// object, not with what was last posted, is what brings a node back to
    /// Ready within one period after the node lifecycle controller set it
    /// Unknown.
    fn sync_status(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if !self.registered {
            return;
        }
        let req = ApiRequest::new(Verb::Get, Kind::Node, "", &self.node_name);
        self.client.request(ctx, req, TAG_STATUS_GET);
    }

    fn patch_status_if_needed(&mut self, ctx: &mut Ctx<'_, Payload, World>, live: &Object) {
        let conditions = self.conditions(ctx.now);
        let live = live
            .as_node()
            .map(|n| n.conditions.as_slice())
            .unwrap_or(&[]);
        let changed = conditions.len() != live.len()
            || conditions.iter().any(|c| {
                live.iter()
                    .find(|l| l.type_ == c.type_)
                    .is_none_or(|l| l.status != c.status)
            });
        let due = self
            .last_status_post
            .is_none_or(|t| ctx.now.since(t) >= self.cfg.status_report);
        if !(changed || due) {
            return;
        }
        self.last_status_post = Some(ctx.now);
        self.posted_conditions = conditions.clone();
        let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &self.node_name);
        req.patch = Some(PatchOp::NodeStatus {
            conditions,
            images: self.node_images(),
        });
        self.client.request(ctx, req, TAG_STATUS);
    }

    fn retry_later(&mut self, ctx: &mut Ctx<'_, Payload, World>, what: u8) {
        let n = &mut self.failures[what as usize];
        let wait = backoff(what, *n);
        *n += 1;
        ctx.timer(wait, Payload::Timer(Timer::KubeletRetry { what }));
    }

    fn list_pods(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let mut req = ApiRequest::new(Verb::List, Kind::Pod, "", "");
        req.node_filter = Some(self.node_name.clone());
        self.client.request(ctx, req, TAG_LIST);
    }

    fn watch_pods(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
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
        if b.gone || b.seq != self.watch_seq + 1 {
            // The stream broke or is too old: relist, as a reflector does.
            ctx.shared.stats.watch_relists += 1;
            self.watch_id += 1;
            return self.list_pods(ctx);
        }
        self.watch_seq = b.seq;
        for ev in b.events {
            self.watch_rv = self.watch_rv.max(ev.resource_version);
            if let Some(obj) = ev.object {
                if ev.type_ == EventType::Deleted {
                    self.forget(obj.key());
                } else {
                    self.observe(ctx, obj);
                }
            }
        }
    }

    fn forget(&mut self, key: ObjectKey) {
        if let Some(slot) = self.by_key.remove(&key) {
            self.pods[slot as usize] = None;
        }
    }

    /// Reacts to the current state of a pod bound to this node.
    fn observe(&mut self, ctx: &mut Ctx<'_, Payload, World>, obj: Arc<Object>) {
        let key = obj.key();
        if let Some(&slot) = self.by_key.get(&key) {
            let rt = self.pods[slot as usize]
                .as_mut()
                .expect("indexed pods exist");
            let deleting = obj.meta.deletion.is_some();
            rt.obj = obj;
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
        let status = pod.status.clone();
        self.by_key.insert(key.clone(), slot);
        self.pods[slot as usize] = Some(PodRuntime {
            key: key.clone(),
            obj: obj.clone(),
            stage: Stage::Sandbox,
            gen: 0,
            status,
            started: vec![None; n],
            probe_ok: vec![0; n],
            restarts: vec![0; n],
            posting: false,
            dirty: false,
            deleted_sent: false,
            // A pod that ran before (on this node before a reboot) is not
            // starting up: its startup latency was measured the first time.
            ever_ready: pod.status.start_time.is_some(),
            first_start: pod.status.start_time.is_none(),
        });
        self.admit(ctx, slot);
    }

    fn admitted_requests(&self, except: u32) -> ResourceList {
        let mut used = ResourceList::new();
        let mut count = 0;
        for (i, rt) in self.pods.iter().enumerate() {
            if let Some(rt) = rt {
                if i as u32 != except && rt.stage != Stage::Done {
                    if let Some(p) = rt.obj.as_pod() {
                        add_into(&mut used, &p.spec.requests);
                        count += 1;
                    }
                }
            }
        }
        used.insert(
            "pods".into(),
            crate::api::quantity::Quantity::from_units(count),
        );
        used
    }

    fn admit(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let used = self.admitted_requests(slot);
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let pod = rt.obj.as_pod().expect("pod");
        let mut free = self.node_template.allocatable.clone();
        crate::api::resources::sub_from(&mut free, &used);
        let mut want = pod.spec.requests.clone();
        want.insert("pods".into(), crate::api::quantity::Quantity::from_units(1));
        let short = insufficient(&want, &free);
        let key = rt.key.clone();
        if let Some((res, q, _)) = short.first() {
            let alloc = self
                .node_template
                .allocatable
                .get(res)
                .copied()
                .unwrap_or_default();
            let in_use = used.get(res).copied().unwrap_or_default();
            let msg = format!(
                "Pod was rejected: Node didn't have enough resource: {res}, requested: {}, used: {}, capacity: {}",
                q.milli_value() / if res == "cpu" { 1 } else { 1000 },
                in_use.milli_value() / if res == "cpu" { 1 } else { 1000 },
                alloc.milli_value() / if res == "cpu" { 1 } else { 1000 }
            );
            rt.status.phase = PodPhase::Failed;
            rt.status.reason = Some(format!("OutOf{res}"));
            rt.status.message = Some(msg.clone());
            rt.stage = Stage::Done;
            self.trace(ctx, "PodRejected", &key, &msg);
            return self.post_status(ctx, slot);
        }
        let now = ctx.now;
        rt.status.phase = PodPhase::Pending;
        rt.status.start_time = Some(now);
        rt.status.host_ip = self
            .node_template
            .addresses
            .iter()
            .find(|(t, _)| t == "InternalIP")
            .map(|(_, a)| a.clone());
        // The CNI's host-local IPAM: an address of the node's pod CIDR per
        // sandbox (host parts 2..254, reused as slots free up).
        rt.status.pod_ip = self.node_template.pod_cidr.as_deref().and_then(|cidr| {
            let base = cidr.split('/').next()?.rsplit_once('.')?.0;
            Some(format!("{base}.{}", slot % 253 + 2))
        });
        rt.status
            .set_condition("PodReadyToStartContainers", false, now, None);
        rt.status.set_condition(
            "Initialized",
            pod.spec.init_containers.is_empty(),
            now,
            None,
        );
        rt.status
            .set_condition("Ready", false, now, Some("ContainersNotReady"));
        rt.status
            .set_condition("ContainersReady", false, now, Some("ContainersNotReady"));
        rt.status.set_condition("PodScheduled", true, now, None);
        let waiting = |c: &crate::api::pod::ContainerModel, reason| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            state: ContainerState::Waiting {
                reason,
                message: String::new(),
            },
            last_state: None,
            ready: false,
            started: false,
            restart_count: 0,
        };
        rt.status.init_container_statuses = pod
            .spec
            .init_containers
            .iter()
            .map(|c| waiting(c, "PodInitializing"))
            .collect();
        let reason = if pod.spec.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        rt.status.container_statuses = pod
            .spec
            .containers
            .iter()
            .map(|c| waiting(c, reason))
            .collect();
        self.trace(ctx, "PodAdmitted", &key, "");
        self.post_status(ctx, slot);
        let d = self.cfg.sandbox_create.sample(ctx.rng);
        self.step_after(ctx, slot, d);
    }

    fn step_after(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, d: SimDuration) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.gen += 1;
        let gen = rt.gen;
        ctx.timer(d, Payload::Timer(Timer::PodStep { slot, gen }));
    }

    /// Ensures `image` is present; returns false and queues the pod if a pull is needed.
    fn ensure_image(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, image: &str) -> bool {
        if self.images.contains(image) {
            return true;
        }
        self.pull_waiters
            .entry(image.to_string())
            .or_default()
            .push(slot);
        if self.pulling.as_deref() != Some(image) && !self.pull_queue.iter().any(|i| i == image) {
            self.pull_queue.push(image.to_string());
        }
        self.next_pull(ctx);
        false
    }

    /// Pulls one image at a time (`serializeImagePulls: true`, the default).
    fn next_pull(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if self.pulling.is_some() || self.pull_queue.is_empty() {
            return;
        }
        let image = self.pull_queue.remove(0);
        let size = self.image_size(&image);
        let d = self.cfg.pull_overhead.sample(ctx.rng)
            + SimDuration((size as f64 / self.cfg.pull_bandwidth as f64 * 1e9) as u64);
        let name = self.name.clone();
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &name, "Pulling", |r| {
                r.str("image", &image).str("expected", &d.to_string());
            });
        self.pulling = Some(image);
        ctx.timer(d, Payload::Timer(Timer::PullDone { image: 0 }));
    }

    fn on_pull_done(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let Some(image) = self.pulling.take() else {
            return;
        };
        let name = self.name.clone();
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &name, "Pulled", |r| {
                r.str("image", &image);
            });
        self.images.insert(image.clone());
        for slot in self.pull_waiters.remove(&image).unwrap_or_default() {
            if self.pods.get(slot as usize).is_some_and(Option::is_some) {
                self.advance(ctx, slot);
            }
        }
        self.next_pull(ctx);
    }

    /// Moves a pod to its next lifecycle stage.
    fn advance(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let Some(rt) = self.pods[slot as usize].as_mut() else {
            return;
        };
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let now = ctx.now;
        match rt.stage {
            Stage::Sandbox => {
                rt.status
                    .set_condition("PodReadyToStartContainers", true, now, None);
                rt.stage = if spec.init_containers.is_empty() {
                    Stage::StartApps
                } else {
                    Stage::Init(0)
                };
                self.post_status(ctx, slot);
                self.advance(ctx, slot);
            }
            Stage::Init(i) => {
                let Some(c) = spec.init_containers.get(i).cloned() else {
                    rt.status.set_condition("Initialized", true, now, None);
                    rt.stage = Stage::StartApps;
                    for cs in &mut rt.status.container_statuses {
                        cs.state = ContainerState::Waiting {
                            reason: "ContainerCreating",
                            message: String::new(),
                        };
                    }
                    self.post_status(ctx, slot);
                    return self.advance(ctx, slot);
                };
                if !self.ensure_image(ctx, slot, &c.image) {
                    return;
                }
                let rt = self.pods[slot as usize].as_mut().expect("slot");
                let st = &mut rt.status.init_container_statuses[i];
                match st.state {
                    ContainerState::Waiting { .. } => {
                        st.state = ContainerState::Running { started: now };
                        st.started = true;
                        self.post_status(ctx, slot);
                        let d = self.cfg.container_start.sample(ctx.rng)
                            + c.run_for.unwrap_or_default();
                        self.step_after(ctx, slot, d);
                    }
                    ContainerState::Running { started } => {
                        st.state = ContainerState::Terminated {
                            exit_code: 0,
                            reason: "Completed",
                            started,
                            finished: now,
                        };
                        st.started = false;
                        rt.stage = Stage::Init(i + 1);
                        self.post_status(ctx, slot);
                        self.advance(ctx, slot);
                    }
                    ContainerState::Terminated { .. } => {}
                }
            }
            Stage::StartApps => {
                for c in &spec.containers {
                    if !self.ensure_image(ctx, slot, &c.image) {
                        return;
                    }
                }
                let d = self.cfg.container_start.sample(ctx.rng);
                let rt = self.pods[slot as usize].as_mut().expect("slot");
                rt.stage = Stage::Running;
                self.step_after(ctx, slot, d);
            }
            Stage::Running => self.start_containers(ctx, slot),
            Stage::Terminating => self.finish_termination(ctx, slot),
            Stage::Done => {}
        }
    }

    fn start_containers(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let mut first_run = false;
        for (i, c) in spec.containers.iter().enumerate() {
            if rt.started[i].is_some() {
                continue;
            }
            let st = &mut rt.status.container_statuses[i];
            if let ContainerState::Terminated { .. } = st.state {
                if !should_restart(spec.restart_policy, &st.state) {
                    continue;
                }
            }
            rt.started[i] = Some(now);
            rt.probe_ok[i] = 0;
            let last = std::mem::replace(&mut st.state, ContainerState::Running { started: now });
            if matches!(last, ContainerState::Terminated { .. }) {
                st.last_state = Some(last);
            }
            st.started = c.startup.is_none();
            st.ready = c.readiness.is_none() && c.startup.is_none();
            let gen = rt.gen;
            if let Some(p) = c.readiness.as_ref().or(c.startup.as_ref()) {
                ctx.timer(
                    p.initial_delay.max_nonzero(p.period),
                    Payload::Timer(Timer::Probe {
                        slot,
                        container: i as u16,
                        gen,
                    }),
                );
            }
            if let Some(run) = c.run_for {
                ctx.timer(run, Payload::Timer(Timer::ContainerExit { slot }));
            }
            first_run |= rt.restarts[i] == 0;
        }
        if first_run && rt.first_start {
            rt.first_start = false;
            let created = rt.obj.meta.creation;
            ctx.shared
                .stats
                .pod_created_to_running
                .record(now.since(created));
        }
        let key = rt.key.clone();
        self.refresh_pod_phase(ctx, slot);
        self.trace(ctx, "ContainersStarted", &key, "");
        self.post_status(ctx, slot);
    }

    /// Containers whose run time ended exit now; others keep running.
    fn on_container_exits(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let mut restart_in: Option<SimDuration> = None;
        for (i, c) in spec.containers.iter().enumerate() {
            let (Some(started), Some(run)) = (rt.started[i], c.run_for) else {
                continue;
            };
            if now.since(started) < run {
                continue;
            }
            rt.started[i] = None;
            let exit_code = if c.failure_rate > 0.0 && ctx.rng.chance(c.failure_rate) {
                if c.exit_code == 0 {
                    1
                } else {
                    c.exit_code
                }
            } else if c.failure_rate > 0.0 {
                0
            } else {
                c.exit_code
            };
            let st = &mut rt.status.container_statuses[i];
            let reason = if exit_code == 0 { "Completed" } else { "Error" };
            st.state = ContainerState::Terminated {
                exit_code,
                reason,
                started,
                finished: now,
            };
            st.ready = false;
            st.started = false;
            if should_restart(spec.restart_policy, &st.state) {
                rt.restarts[i] += 1;
                st.restart_count = rt.restarts[i];
                // kubelet's crash-loop back-off: restart at once the first
                // time, then 10 s doubling to 5 min.
                let n = rt.restarts[i];
                let delay = if n <= 1 {
                    SimDuration::ZERO
                } else {
                    SimDuration::from_secs((10u64 << (n - 2).min(5)).min(300))
                };
                if !delay.is_zero() {
                    st.state = ContainerState::Waiting {
                        reason: "CrashLoopBackOff",
                        message: format!(
                            "back-off {} restarting failed container={} pod={}",
                            delay, c.name, rt.key.name
                        ),
                    };
                    st.last_state = Some(ContainerState::Terminated {
                        exit_code,
                        reason,
                        started,
                        finished: now,
                    });
                }
                restart_in = Some(restart_in.map_or(delay, |d: SimDuration| d.min(delay)));
            }
        }
        let key = rt.key.clone();
        self.refresh_pod_phase(ctx, slot);
        self.trace(ctx, "ContainersExited", &key, "");
        self.post_status(ctx, slot);
        if let Some(d) = restart_in {
            // After the back-off the container is created and started again,
            // which takes the same start latency as the first time.
            let rt = self.pods[slot as usize].as_mut().expect("slot");
            rt.stage = Stage::StartApps;
            self.step_after(ctx, slot, d);
        }
    }

    fn on_probe(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, i: usize, gen: u32) {
        let now = ctx.now;
        let Some(rt) = self.pods[slot as usize].as_mut() else {
            return;
        };
        if rt.gen != gen || rt.stage == Stage::Terminating {
            return;
        }
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let c = &spec.containers[i];
        let Some(started) = rt.started[i] else { return };
        let Some(probe) = c.readiness.as_ref().or(c.startup.as_ref()) else {
            return;
        };
        // The app answers its probe once it has warmed up.
        if now.since(started) >= spec.ready_after {
            rt.probe_ok[i] += 1;
        } else {
            rt.probe_ok[i] = 0;
        }
        let st = &mut rt.status.container_statuses[i];
        let mut changed = false;
        if rt.probe_ok[i] >= probe.success_threshold {
            if !st.started {
                st.started = true;
                changed = true;
            }
            if !st.ready {
                st.ready = true;
                changed = true;
            }
        }
        if c.readiness.is_some() {
            ctx.timer(
                probe.period,
                Payload::Timer(Timer::Probe {
                    slot,
                    container: i as u16,
                    gen,
                }),
            );
        }
        if changed {
            self.refresh_pod_phase(ctx, slot);
            self.post_status(ctx, slot);
        }
    }

    fn refresh_pod_phase(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let statuses = rt.status.container_statuses.clone();
        let all_ready = statuses.iter().all(|s| s.ready);
        let any_running = statuses
            .iter()
            .any(|s| matches!(s.state, ContainerState::Running { .. }));
        let all_done = statuses
            .iter()
            .all(|s| matches!(s.state, ContainerState::Terminated { .. }));
        let was_ready = rt.status.is_ready();
        rt.status.set_condition(
            "ContainersReady",
            all_ready,
            now,
            (!all_ready).then_some("ContainersNotReady"),
        );
        rt.status.set_condition(
            "Ready",
            all_ready,
            now,
            (!all_ready).then_some("ContainersNotReady"),
        );
        if all_ready && !was_ready && !rt.ever_ready {
            // Startup latency counts the first time only, not each recovery.
            rt.ever_ready = true;
            let created = rt.obj.meta.creation;
            ctx.shared
                .stats
                .pod_created_to_ready
                .record(now.since(created));
        }
        let restartable = statuses
            .iter()
            .any(|s| should_restart(spec.restart_policy, &s.state));
        rt.status.phase = if all_done && !restartable {
            if statuses
                .iter()
                .all(|s| matches!(s.state, ContainerState::Terminated { exit_code: 0, .. }))
            {
                PodPhase::Succeeded
            } else {
                PodPhase::Failed
            }
        } else if any_running || statuses.iter().any(|s| s.restart_count > 0) {
            PodPhase::Running
        } else {
            PodPhase::Pending
        };
        if matches!(rt.status.phase, PodPhase::Succeeded | PodPhase::Failed) {
            rt.stage = Stage::Done;
        }
    }

    fn begin_termination(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.stage = Stage::Terminating;
        let spec = rt.obj.as_pod().expect("pod").spec.clone();
        let grace =
            SimDuration::from_secs(rt.obj.meta.deletion_grace_seconds.unwrap_or(30).max(0) as u64);
        let key = rt.key.clone();
        self.trace(ctx, "Killing", &key, &format!("grace period {grace}"));
        // The app exits on SIGTERM after its stop time, or is SIGKILLed at the grace period.
        let stop = self.cfg.container_stop.sample(ctx.rng) + spec.stop_after;
        self.step_after(ctx, slot, stop.min(grace));
    }

    fn finish_termination(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let now = ctx.now;
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        let grace =
            SimDuration::from_secs(rt.obj.meta.deletion_grace_seconds.unwrap_or(30).max(0) as u64);
        let killed = rt.obj.meta.deletion.is_some_and(|d| now >= d) && !grace.is_zero();
        for (i, st) in rt.status.container_statuses.iter_mut().enumerate() {
            if let ContainerState::Running { started } = st.state {
                let (exit_code, reason) = if killed {
                    (137, "Error")
                } else {
                    (0, "Completed")
                };
                st.state = ContainerState::Terminated {
                    exit_code,
                    reason,
                    started,
                    finished: now,
                };
            }
            st.ready = false;
            rt.started[i] = None;
        }
        rt.status
            .set_condition("Ready", false, now, Some("PodCompleted"));
        rt.status
            .set_condition("ContainersReady", false, now, Some("PodCompleted"));
        rt.stage = Stage::Done;
        self.post_status(ctx, slot);
        self.finalize_delete(ctx, slot);
    }

    fn finalize_delete(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        rt.deleted_sent = true;
        let mut req = ApiRequest::new(Verb::Delete, Kind::Pod, &rt.key.namespace, &rt.key.name);
        req.grace_seconds = Some(0);
        self.client.request(ctx, req, TAG_POD | slot as u64);
    }

    /// The status manager: one status write per pod in flight, the latest wins.
    fn post_status(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let rt = self.pods[slot as usize].as_mut().expect("slot");
        if rt.posting {
            rt.dirty = true;
            return;
        }
        rt.posting = true;
        rt.dirty = false;
        let mut req = ApiRequest::new(Verb::Patch, Kind::Pod, &rt.key.namespace, &rt.key.name);
        req.patch = Some(PatchOp::PodStatus(Box::new(rt.status.clone())));
        self.client.request(ctx, req, TAG_POD | slot as u64);
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
                if let Some(live) = resp.filter(|r| r.ok()).and_then(|r| r.object.clone()) {
                    self.patch_status_if_needed(ctx, &live);
                }
            }
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
                        self.forget(k);
                    }
                    for o in r.items.clone() {
                        self.observe(ctx, o);
                    }
                    self.failures[RETRY_LIST as usize] = 0;
                    self.watch_pods(ctx);
                }
                _ => self.retry_later(ctx, RETRY_LIST),
            },
            t if t & TAG_POD != 0 => {
                let slot = (t & 0xffff_ffff) as u32;
                if let Some(rt) = self.pods.get_mut(slot as usize).and_then(Option::as_mut) {
                    rt.posting = false;
                    if rt.dirty || !ok {
                        self.post_status(ctx, slot);
                    }
                }
            }
            _ => {}
        }
    }
}

fn should_restart(policy: RestartPolicy, state: &ContainerState) -> bool {
    match (policy, state) {
        (RestartPolicy::Always, ContainerState::Terminated { .. }) => true,
        (RestartPolicy::OnFailure, ContainerState::Terminated { exit_code, .. }) => *exit_code != 0,
        _ => false,
    }
}

trait NonZero {
    fn max_nonzero(self, fallback: SimDuration) -> SimDuration;
}

impl NonZero for SimDuration {
    /// The first probe runs after `initialDelaySeconds`, or one period when that is zero.
    fn max_nonzero(self, fallback: SimDuration) -> SimDuration {
        if self.is_zero() {
            fallback.min(SimDuration::from_secs(1))
        } else {
            self
        }
    }
}

impl Actor<Payload, World> for Kubelet {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.register(ctx);
        let jitter = SimDuration(ctx.rng.range_inclusive(0, self.cfg.lease_renew.nanos()));
        ctx.timer(jitter, Payload::Timer(Timer::LeaseRenew));
        ctx.timer(jitter, Payload::Timer(Timer::NodeStatus));
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
            Payload::Timer(Timer::NodeStatus) => {
                ctx.timer(self.cfg.status_update, Payload::Timer(Timer::NodeStatus));
                self.sync_status(ctx);
            }
            Payload::Timer(Timer::PodStep { slot, gen }) => {
                let Some(rt) = self.pods.get(slot as usize).and_then(Option::as_ref) else {
                    return;
                };
                if rt.gen == gen {
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
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        // Containers die with the node; the image cache on disk survives.
        self.pods.clear();
        self.by_key.clear();
        self.pulling = None;
        self.pull_waiters.clear();
        self.pull_queue.clear();
        self.client.reset();
        self.registered = false;
        self.failures = [0; 3];
        self.watch_id += 1;
        self.watch_rv = 0;
    }
}
