//! The apiserver component.

mod custom;
pub(super) mod namespace;
mod storage;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::admission::PodAdmission;
use super::eviction::{self, OnConflict, Plan, Stage};
use super::patch::{json_patch, merge_patch};
use super::request::{ApiRequest, ApiResponse, EventType, PatchOp, Verb, WatchBatch, WatchEvent};
use crate::api::object::Body;
use crate::api::{Kind, Object, ObjectKey};
use crate::model::etcd::store::{Expect, Proposal, Txn, TxnOp, TxnResult, WatchedChange};
use crate::model::msg::{Message, Payload, Timer};
use crate::model::network::send;
use crate::model::world::World;
use crate::sim::{Actor, ComponentId, Ctx, LatencyDist, SimDuration, SimTime, TraceLevel};

/// gRPC's base connection backoff: an etcd endpoint that refused a
/// connection is not redialled sooner.
const ETCD_RECONNECT: SimDuration = SimDuration::from_secs(1);

const ETCD_TIMEOUT_MESSAGE: &str =
    "Timeout: request did not complete within requested timeout - context deadline exceeded";

#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// `--max-requests-inflight` (400).
    pub max_readonly_inflight: u32,
    /// `--max-mutating-requests-inflight` (200).
    pub max_mutating_inflight: u32,
    /// Handling time of a request, excluding etcd.
    pub handling: LatencyDist,
    /// How long watch history is kept for watches resuming from a revision
    /// (the watch cache's event freshness window, 75 s).
    pub history_window: SimDuration,
    /// Bookmark period for watchers.
    pub bookmark_period: SimDuration,
    /// The etcd client's deadline for one request before failing over.
    pub etcd_deadline: SimDuration,
    /// `--etcd-compaction-interval` (5 m): how often the storage compactor
    /// compacts etcd to the revision it saw one interval before.
    pub compaction_interval: SimDuration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            max_readonly_inflight: 400,
            max_mutating_inflight: 200,
            handling: LatencyDist::log_normal(
                SimDuration::from_micros(300),
                SimDuration::from_millis(2),
            ),
            history_window: SimDuration::from_secs(75),
            bookmark_period: SimDuration::from_secs(60),
            etcd_deadline: SimDuration::from_secs(60),
            compaction_interval: SimDuration::from_secs(300),
        }
    }
}

/// What a `Request` span records of an answer.
#[derive(Clone, Copy)]
struct Span {
    received: SimTime,
    in_etcd: SimDuration,
    code: u16,
    /// The resourceVersion the answer carries (0: none).
    rv: u64,
}

impl Span {
    /// A request turned away at once with 429.
    fn refused(now: SimTime) -> Span {
        Span {
            received: now,
            in_etcd: SimDuration::ZERO,
            code: 429,
            rv: 0,
        }
    }
}

/// One retained watch event: when, revision, kind, the event, and the
/// object's previous state (for field-selector watches resuming from history).
type HistoryEntry = (SimTime, u64, Kind, WatchEvent, Option<Arc<Object>>);

struct Watcher {
    client: ComponentId,
    watch_id: u64,
    kind: Kind,
    node_filter: Option<String>,
    seq: u64,
}

struct InFlight {
    client: ComponentId,
    req: Box<ApiRequest>,
    /// GuaranteedUpdate attempts so far.
    attempts: u32,
    /// An eviction's progress.
    evict: Option<Stage>,
    /// When the request was admitted, and how long it has waited on etcd:
    /// the span the trace records when it is answered.
    received: SimTime,
    in_etcd: SimDuration,
}

pub struct ApiServer {
    name: String,
    cfg: ApiServerConfig,
    etcd_members: Vec<ComponentId>,
    endpoint: usize,
    cache: BTreeMap<ObjectKey, Arc<Object>>,
    revision: u64,
    history: VecDeque<HistoryEntry>,
    watchers: Vec<Watcher>,
    /// Indexes into `watchers`: unfiltered watches per kind, and pod watches
    /// per `spec.nodeName` filter.
    watch_by_kind: BTreeMap<Kind, Vec<usize>>,
    watch_by_node: BTreeMap<String, Vec<usize>>,
    slots: Vec<Option<InFlight>>,
    free_slots: Vec<u32>,
    inflight_ro: u32,
    inflight_mut: u32,
    /// etcd request id → slot.
    etcd_pending: BTreeMap<u64, (u32, SimTime)>,
    next_etcd_req: u64,
    uid_counter: u64,
    /// Per etcd endpoint: when it last refused a connection.
    refused_at: Vec<Option<SimTime>>,
    /// Requests waiting for an etcd endpoint: (slot, first proposed at).
    parked: Vec<(u32, SimTime)>,
    reconnect_armed: bool,
    /// Whether the watch cache holds etcd's state: false from a restart or
    /// a compacted resume until etcd's snapshot arrives.
    ready: bool,
    /// The revision the compactor saw at its last tick (0: none yet).
    compact_next: u64,
    /// The pod admission chain, with the specs it built lately.
    pod_admission: PodAdmission,
}

impl ApiServer {
    /// `initial` is what the apiserver's startup list of etcd returned.
    pub fn new(
        cfg: ApiServerConfig,
        etcd_members: Vec<ComponentId>,
        initial: Vec<Arc<Object>>,
    ) -> Self {
        let revision = initial
            .iter()
            .map(|o| o.meta.resource_version)
            .max()
            .unwrap_or(0);
        let cache = initial.into_iter().map(|o| (o.key(), o)).collect();
        ApiServer {
            name: "kube-apiserver".into(),
            cfg,
            refused_at: vec![None; etcd_members.len()],
            etcd_members,
            endpoint: 0,
            cache,
            revision,
            history: VecDeque::new(),
            watchers: Vec::new(),
            watch_by_kind: BTreeMap::new(),
            watch_by_node: BTreeMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            inflight_ro: 0,
            inflight_mut: 0,
            etcd_pending: BTreeMap::new(),
            next_etcd_req: 1,
            uid_counter: 0,
            parked: Vec::new(),
            reconnect_armed: false,
            ready: true,
            compact_next: 0,
            pod_admission: PodAdmission::default(),
        }
    }

    fn respond(ctx: &mut Ctx<'_, Payload, World>, client: ComponentId, resp: ApiResponse) {
        *ctx.shared.stats.api_codes.entry(resp.code).or_default() += 1;
        let id = resp.id;
        send(ctx, client, Message::ApiResp(Box::new(resp)), id);
    }

    fn success(
        id: u64,
        code: u16,
        object: Option<Arc<Object>>,
        resource_version: u64,
    ) -> ApiResponse {
        ApiResponse {
            id,
            code,
            reason: "",
            message: String::new(),
            cause: String::new(),
            retry_after: None,
            object,
            items: Vec::new(),
            resource_version,
        }
    }

    fn error(id: u64, code: u16, reason: &'static str, message: String) -> ApiResponse {
        ApiResponse {
            id,
            code,
            reason,
            message,
            cause: String::new(),
            retry_after: None,
            object: None,
            items: Vec::new(),
            resource_version: 0,
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, resp: ApiResponse) {
        if let Some(f) = self.slots[slot as usize].take() {
            if f.req.verb.is_mutating() {
                self.inflight_mut -= 1;
            } else {
                self.inflight_ro -= 1;
            }
            self.free_slots.push(slot);
            let span = Span {
                received: f.received,
                in_etcd: f.in_etcd,
                code: resp.code,
                rv: resp.resource_version,
            };
            Self::trace_request(ctx, f.client, &f.req, span);
            Self::respond(ctx, f.client, resp);
        }
    }

    /// The `Request` span (trace level spans): who asked what, the answer's
    /// code, when it arrived and how much of its time etcd took.
    fn trace_request(
        ctx: &mut Ctx<'_, Payload, World>,
        client: ComponentId,
        req: &ApiRequest,
        span: Span,
    ) {
        let Span {
            received,
            in_etcd,
            code,
            rv,
        } = span;
        // The summary's latency per verb is this span's, sample for sample
        // (429s are counted by code, not timed, as the charts do).
        if code != 429 {
            let took = ctx.now.since(received);
            let by_verb = &mut ctx.shared.stats.latencies(received).api_latency;
            by_verb
                .entry(req.verb.as_str().to_string())
                .or_default()
                .record(took);
        }
        if !ctx.trace.enabled(TraceLevel::Spans) {
            return;
        }
        let who = ctx.name_of(client).to_string();
        let mut object = String::with_capacity(64);
        object.push_str(req.kind.name());
        for part in [&req.namespace, &req.name] {
            if !part.is_empty() {
                object.push('/');
                object.push_str(part);
            }
        }
        ctx.trace.record(
            TraceLevel::Spans,
            ctx.now,
            "kube-apiserver",
            "Request",
            |r| {
                r.str("client", &who)
                    .str("verb", req.verb.as_str())
                    .str("object", &object)
                    .u64("code", code as u64)
                    .u64("start", received.0)
                    .u64("etcd", in_etcd.nanos());
                // An acknowledged write names the revision it committed, so
                // a checker can find it among the watch cache's writes.
                if req.verb.is_mutating() && code < 300 && rv > 0 {
                    r.u64("rv", rv);
                }
            },
        );
    }

    fn admit(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        client: ComponentId,
        req: Box<ApiRequest>,
    ) {
        if !self.ready {
            return self.not_ready(ctx, client, &req);
        }
        if req.verb == Verb::Watch {
            return self.start_watch(ctx, client, &req);
        }
        let mutating = req.verb.is_mutating();
        let (used, cap) = if mutating {
            (self.inflight_mut, self.cfg.max_mutating_inflight)
        } else {
            (self.inflight_ro, self.cfg.max_readonly_inflight)
        };
        if used >= cap {
            ctx.shared.stats.api_throttled += 1;
            let mut resp = Self::error(
                req.id,
                429,
                "TooManyRequests",
                "Too many requests, please try again later.".into(),
            );
            resp.retry_after = Some(1);
            Self::trace_request(ctx, client, &req, Span::refused(ctx.now));
            return Self::respond(ctx, client, resp);
        }
        if mutating {
            self.inflight_mut += 1;
        } else {
            self.inflight_ro += 1;
        }
        let f = InFlight {
            client,
            req,
            attempts: 0,
            evict: None,
            received: ctx.now,
            in_etcd: SimDuration::ZERO,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(f);
                s
            }
            None => {
                self.slots.push(Some(f));
                (self.slots.len() - 1) as u32
            }
        };
        let d = self.cfg.handling.sample(ctx.rng);
        ctx.timer(d, Payload::Timer(Timer::ApiHandled { slot }));
    }

    fn handle_request(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let Some(f) = self.slots[slot as usize].as_ref() else {
            return;
        };
        let req = f.req.clone();
        let key = ObjectKey {
            kind: req.kind,
            namespace: req.namespace.clone(),
            name: req.name.clone(),
        };
        let current = self.cache.get(&key).cloned();
        let not_found = || {
            Self::error(
                req.id,
                404,
                "NotFound",
                // apierrors.NewNotFound: the group-qualified resource.
                format!("{} \"{}\" not found", req.kind.group_resource(), req.name),
            )
        };
        match req.verb {
            Verb::Get => {
                let resp = match current {
                    Some(o) => Self::success(req.id, 200, Some(o.clone()), o.meta.resource_version),
                    None => not_found(),
                };
                self.finish(ctx, slot, resp);
            }
            Verb::List => {
                let items: Vec<Arc<Object>> = self
                    .cache
                    .range(
                        ObjectKey {
                            kind: req.kind,
                            namespace: String::new(),
                            name: String::new(),
                        }..,
                    )
                    .take_while(|(k, _)| k.kind == req.kind)
                    .filter(|(k, o)| {
                        (req.namespace.is_empty() || k.namespace == req.namespace)
                            && Self::node_matches(&req.node_filter, o)
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                let resp = ApiResponse {
                    id: req.id,
                    code: 200,
                    reason: "",
                    message: String::new(),
                    cause: String::new(),
                    retry_after: None,
                    object: None,
                    items,
                    resource_version: self.revision,
                };
                self.finish(ctx, slot, resp);
            }
            Verb::Create => {
                let Some(body) = req.body.clone() else {
                    return self.finish(
                        ctx,
                        slot,
                        Self::error(req.id, 400, "BadRequest", "no body".into()),
                    );
                };
                let mut obj = (*body).clone();
                if obj.meta.name.is_empty() && !obj.meta.generate_name.is_empty() {
                    let suffix: String = (0..5)
                        .map(|_| {
                            let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
                            alphabet[ctx.rng.range_inclusive(0, alphabet.len() as u64 - 1) as usize]
                                as char
                        })
                        .collect();
                    obj.meta.name = format!("{}{}", obj.meta.generate_name, suffix);
                }
                let name = if body.meta.name.is_empty() {
                    &body.meta.generate_name
                } else {
                    &body.meta.name
                };
                if let Some(r) = self.unserved_custom_kind(&req, obj.kind) {
                    return self.finish(ctx, slot, r);
                }
                if let Some(r) = self.namespace_lifecycle(&req, obj.kind, &obj.meta.namespace, name)
                {
                    return self.finish(ctx, slot, r);
                }
                namespace::prepare_create(&mut obj);
                let key = obj.key();
                if self.cache.contains_key(&key) {
                    let msg = format!(
                        "{} \"{}\" already exists",
                        obj.kind.name().to_lowercase(),
                        obj.meta.name
                    );
                    return self.finish(ctx, slot, Self::error(req.id, 409, "AlreadyExists", msg));
                }
                super::strategy::prepare_for_create(&mut obj);
                if obj.kind == Kind::Pod {
                    // The Priority admission plugin.
                    let classes = self
                        .cache
                        .range(
                            ObjectKey {
                                kind: Kind::PriorityClass,
                                namespace: String::new(),
                                name: String::new(),
                            }..,
                        )
                        .take_while(|(k, _)| k.kind == Kind::PriorityClass)
                        .map(|(_, o)| o.as_ref());
                    let admitted = self.pod_admission.admit(&obj, classes);
                    match admitted {
                        Ok(admitted) => obj = admitted,
                        Err(msg) => {
                            return self.finish(
                                ctx,
                                slot,
                                Self::error(req.id, 403, "Forbidden", msg),
                            )
                        }
                    }
                    // A gated pod says so in PodScheduled from the start.
                    if let Body::Pod(p) = &mut obj.body {
                        let gated = p.spec.api.scheduling_gates.as_ref();
                        if gated.is_some_and(|g| !g.is_empty()) {
                            p.status.conditions.push(crate::api::pod::Condition {
                                type_: "PodScheduled",
                                status: false,
                                last_transition: ctx.now,
                                reason: Some("SchedulingGated".into()),
                                message: Some(
                                    "Scheduling is blocked due to non-empty scheduling gates"
                                        .into(),
                                ),
                            });
                        }
                    }
                }
                self.uid_counter += 1;
                let r = ctx.rng.next_u64();
                obj.meta.uid = format!(
                    "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    (r >> 32) as u32,
                    (r >> 16) as u16,
                    r as u16 & 0xfff,
                    self.uid_counter >> 48 & 0xfff,
                    self.uid_counter & 0xffff_ffff_ffff
                );
                obj.meta.creation = ctx.now;
                obj.meta.generation = 1;
                obj.meta.resource_version = 0;
                self.propose_put(ctx, slot, key, Expect::Absent, obj);
            }
            Verb::Update | Verb::UpdateStatus | Verb::Finalize => {
                let (Some(cur), Some(body)) = (current, req.body.clone()) else {
                    return self.finish(ctx, slot, not_found());
                };
                if req.resource_version != 0 && req.resource_version != cur.meta.resource_version {
                    let msg = format!(
                        "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                        plural(req.kind), req.name
                    );
                    return self.finish(ctx, slot, Self::error(req.id, 409, "Conflict", msg));
                }
                let mut obj = (*body).clone();
                obj.meta.uid = cur.meta.uid.clone();
                obj.meta.creation = cur.meta.creation;
                obj.meta.generation = cur.meta.generation;
                if req.verb == Verb::UpdateStatus {
                    // The status subresource ignores spec and metadata changes.
                    // Metadata labels and annotations go through; spec does not.
                    let mut merged = (*cur).clone();
                    merge_status(&mut merged, &obj);
                    merged.meta.labels = obj.meta.labels.clone();
                    merged.meta.annotations = obj.meta.annotations.clone();
                    obj = merged;
                } else {
                    super::strategy::prepare_for_update(&mut obj, &cur);
                    if let Err(msg) = super::immutable::validate_update(&obj, &cur) {
                        return self.finish(ctx, slot, Self::error(req.id, 422, "Invalid", msg));
                    }
                    if obj.spec_differs(&cur) {
                        obj.meta.generation = cur.meta.generation + 1;
                    }
                }
                if cur.kind == Kind::Namespace {
                    namespace::prepare_update(req.verb, &mut obj, &cur);
                    if namespace::should_delete_during_update(&obj, &cur) {
                        return self.delete_during_update(ctx, slot, &cur);
                    }
                }
                let expect = Expect::ModRevision(cur.meta.resource_version);
                self.propose_put(ctx, slot, key, expect, obj);
            }
            Verb::Patch | Verb::Bind | Verb::Delete => match current {
                None => self.finish(ctx, slot, not_found()),
                Some(_) if req.verb == Verb::Bind && self.pod_subresource_refused(ctx, slot) => {}
                Some(cur) => self.guaranteed_update(ctx, slot, cur),
            },
            Verb::Evict if self.pod_subresource_refused(ctx, slot) => {}
            Verb::Evict => match current {
                None => self.finish(ctx, slot, not_found()),
                Some(pod) => self.evict(ctx, slot, pod),
            },
            Verb::Watch => {}
        }
    }

    /// Computes the new value of `cur` for a patch, bind or delete and proposes it.
    fn guaranteed_update(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        cur: Arc<Object>,
    ) {
        let Some(f) = self.slots[slot as usize].as_ref() else {
            return;
        };
        let req = f.req.clone();
        let key = cur.key();
        let expect = Expect::ModRevision(cur.meta.resource_version);
        match req.verb {
            Verb::Bind => {
                let mut obj = (*cur).clone();
                if let Body::Pod(p) = &mut obj.body {
                    if let Some(n) = &p.node_name {
                        let msg = format!("pod {} is already assigned to node \"{n}\"", req.name);
                        return self.finish(ctx, slot, Self::error(req.id, 409, "Conflict", msg));
                    }
                    p.node_name = req.target.clone();
                    p.status.set_condition("PodScheduled", true, ctx.now, None);
                }
                self.propose_put(ctx, slot, key, expect, obj);
            }
            Verb::Patch => {
                let mut obj = (*cur).clone();
                match req.patch.clone() {
                    Some(PatchOp::PodStatus(st)) => {
                        if let Body::Pod(p) = &mut obj.body {
                            let mut st = *st;
                            for c in &p.status.conditions {
                                if st.condition(c.type_).is_none() {
                                    st.conditions.push(c.clone());
                                }
                            }
                            st.nominated_node_name = p.status.nominated_node_name.take();
                            st.resource_claim_statuses =
                                std::mem::take(&mut p.status.resource_claim_statuses);
                            p.status = st;
                        }
                    }
                    Some(PatchOp::PodCondition {
                        condition,
                        nominated_node,
                    }) => {
                        if let Body::Pod(p) = &mut obj.body {
                            let conds = &mut p.status.conditions;
                            match conds.iter_mut().find(|c| c.type_ == condition.type_) {
                                Some(c) => {
                                    let since = if c.status == condition.status {
                                        c.last_transition
                                    } else {
                                        condition.last_transition
                                    };
                                    *c = condition;
                                    c.last_transition = since;
                                }
                                None => conds.push(condition),
                            }
                            if let Some(n) = nominated_node {
                                p.status.nominated_node_name = n;
                            }
                        }
                    }
                    Some(PatchOp::PodResourceClaimStatuses(list)) => {
                        if let Body::Pod(p) = &mut obj.body {
                            p.status.resource_claim_statuses = list;
                        }
                    }
                    Some(PatchOp::NodeStatus { conditions, images }) => {
                        if let Body::Node(n) = &mut obj.body {
                            n.conditions = conditions;
                            n.images = images;
                        }
                    }
                    Some(PatchOp::NodeTaints { add, remove }) => {
                        if let Body::Node(n) = &mut obj.body {
                            n.taints.retain(|t| {
                                !remove.iter().any(|(k, e)| *k == t.key && *e == t.effect)
                            });
                            for t in add {
                                if !n
                                    .taints
                                    .iter()
                                    .any(|x| x.key == t.key && x.effect == t.effect)
                                {
                                    n.taints.push(t);
                                }
                            }
                        }
                    }
                    Some(PatchOp::LeaseRenew {
                        holder,
                        renew,
                        duration_seconds,
                    }) => {
                        if let Body::Lease(l) = &mut obj.body {
                            l.holder_identity = Some(holder);
                            l.renew_time = Some(renew);
                            l.lease_duration_seconds = Some(duration_seconds);
                        }
                    }
                    Some(PatchOp::JsonPatch(ops)) => match json_patch(&cur, &ops) {
                        Ok(o) => obj = o,
                        Err(msg) => {
                            return self.finish(ctx, slot, Self::error(req.id, 422, "Invalid", msg))
                        }
                    },
                    Some(PatchOp::Merge(patch)) => match merge_patch(&cur, &patch) {
                        Ok(o) => obj = o,
                        Err(msg) => {
                            return self.finish(ctx, slot, Self::error(req.id, 422, "Invalid", msg))
                        }
                    },
                    None => {}
                }
                // A JSON or merge patch may reach any field: the registry's
                // update validation refuses immutable ones.
                if matches!(req.patch, Some(PatchOp::JsonPatch(_) | PatchOp::Merge(_))) {
                    if let Err(msg) = super::immutable::validate_update(&obj, &cur) {
                        return self.finish(ctx, slot, Self::error(req.id, 422, "Invalid", msg));
                    }
                }
                if obj.spec_differs(&cur) {
                    obj.meta.generation = cur.meta.generation + 1;
                }
                if cur.kind == Kind::Namespace {
                    namespace::prepare_update(Verb::Patch, &mut obj, &cur);
                }
                // The last finalizer of a deleted object is gone: it goes
                // (a pod only once its graceful termination is over, grace 0;
                // a namespace once `spec.finalizers` is empty too).
                if obj.meta.deletion.is_some()
                    && obj.meta.finalizers.is_empty()
                    && namespace::finalized(&obj)
                    && (obj.kind != Kind::Pod || obj.meta.deletion_grace_seconds.unwrap_or(0) == 0)
                {
                    return self.propose(
                        ctx,
                        slot,
                        Txn {
                            key,
                            expect,
                            op: TxnOp::Delete,
                        },
                    );
                }
                self.propose_put(ctx, slot, key, expect, obj);
            }
            Verb::Delete => self.delete(ctx, slot, &req, cur),
            Verb::Evict => self.evict_stage(ctx, slot, cur),
            _ => {}
        }
    }

    /// Deletes `cur` as a DELETE with `req`'s options would: gracefully
    /// (setting deletionTimestamp) for a pod bound to a node, through the
    /// garbage collector's finalizers for foreground and orphan
    /// propagation, at once otherwise.
    fn delete(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        req: &ApiRequest,
        cur: Arc<Object>,
    ) {
        if cur.kind == Kind::Namespace && self.delete_namespace(ctx, slot, req, &cur) {
            return;
        }
        let key = cur.key();
        let expect = Expect::ModRevision(cur.meta.resource_version);
        // Foreground and Orphan propagation: the garbage collector
        // finishes the deletion once it has dealt with the dependents.
        let gc_finalizer = match req.propagation {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if let Some(f) = gc_finalizer.filter(|_| cur.kind != Kind::Pod) {
            if cur.meta.deletion.is_none() {
                let mut obj = (*cur).clone();
                if !obj.meta.finalizers.iter().any(|x| x == f) {
                    obj.meta.finalizers.push(f.to_string());
                }
                obj.meta.deletion = Some(ctx.now);
                obj.meta.deletion_grace_seconds = Some(0);
                return self.propose_put(ctx, slot, key, expect, obj);
            }
        }
        // The pod strategy's CheckGracefulDelete: the request's grace, else
        // the pod's terminationGracePeriodSeconds; 0 for a pod that never
        // reached a node or has finished.
        let grace = match cur.as_pod() {
            Some(p) if p.node_name.is_none() || p.is_terminal() => Some(0),
            Some(p) => req
                .grace_seconds
                .or(Some(p.spec.termination_grace.as_secs_f64() as i64)),
            None => req.grace_seconds,
        };
        let graceful_pod = cur.as_pod().is_some() && grace.unwrap_or(0) > 0;
        if let Some(at) = cur.meta.deletion {
            return self.delete_again(ctx, slot, req, cur.clone(), at, grace);
        }
        if !cur.meta.finalizers.is_empty() || graceful_pod {
            let mut obj = (*cur).clone();
            let g = grace.unwrap_or(0).max(0);
            obj.meta.deletion = Some(ctx.now.after(SimDuration::from_secs(g as u64)));
            obj.meta.deletion_grace_seconds = Some(g);
            self.propose_put(ctx, slot, key, expect, obj);
        } else {
            self.propose(
                ctx,
                slot,
                Txn {
                    key,
                    expect,
                    op: TxnOp::Delete,
                },
            );
        }
    }

    /// A DELETE of an object already being deleted (rest.BeforeDelete): only
    /// a shorter grace period changes anything, moving deletionTimestamp
    /// earlier by the difference; at grace 0 with no finalizers left the
    /// object goes.
    fn delete_again(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        req: &ApiRequest,
        cur: Arc<Object>,
        at: SimTime,
        grace: Option<i64>,
    ) {
        let key = cur.key();
        let expect = Expect::ModRevision(cur.meta.resource_version);
        let old = cur.meta.deletion_grace_seconds.unwrap_or(0);
        let shorter = grace.map(|g| g.max(0)).filter(|g| *g < old);
        let Some(g) = shorter else {
            let resp = Self::success(req.id, 200, Some(cur.clone()), cur.meta.resource_version);
            return self.finish(ctx, slot, resp);
        };
        if g == 0 && cur.meta.finalizers.is_empty() {
            let op = TxnOp::Delete;
            return self.propose(ctx, slot, Txn { key, expect, op });
        }
        let mut obj = (*cur).clone();
        let start = SimTime(at.nanos().saturating_sub(old as u64 * 1_000_000_000));
        obj.meta.deletion = Some(start.after(SimDuration::from_secs(g as u64)));
        obj.meta.deletion_grace_seconds = Some(g);
        self.propose_put(ctx, slot, key, expect, obj);
    }

    /// Starts (or starts over) an eviction of `pod`.
    fn evict(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, pod: Arc<Object>) {
        let budgets: Vec<Arc<Object>> = self
            .cache
            .range(
                ObjectKey {
                    kind: Kind::PodDisruptionBudget,
                    namespace: pod.meta.namespace.clone(),
                    name: String::new(),
                }..,
            )
            .take_while(|(k, _)| {
                k.kind == Kind::PodDisruptionBudget && k.namespace == pod.meta.namespace
            })
            .map(|(_, o)| o.clone())
            .collect();
        let Some(f) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let id = f.req.id;
        match eviction::plan(&pod, &budgets, ctx.now) {
            Plan::Refuse(r) => self.finish(ctx, slot, r.response(id)),
            Plan::Spend { budget, updated } => {
                f.evict = Some(Stage::Spend);
                let expect = Expect::ModRevision(updated.meta.resource_version);
                self.propose_put(ctx, slot, budget, expect, *updated);
            }
            Plan::Delete {
                precondition,
                on_conflict,
            } => {
                f.evict = Some(Stage::Mark {
                    precondition,
                    on_conflict,
                });
                self.evict_stage(ctx, slot, pod);
            }
        }
    }

    /// Carries out the pod writes of an eviction against `cur`, the pod as
    /// it now is: the DisruptionTarget mark, then the delete.
    fn evict_stage(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, cur: Arc<Object>) {
        let Some(f) = self.slots[slot as usize].as_ref() else {
            return;
        };
        let req = f.req.clone();
        let (precondition, on_conflict) = match &f.evict {
            Some(Stage::Mark {
                precondition,
                on_conflict,
            })
            | Some(Stage::Delete {
                precondition,
                on_conflict,
            }) => (*precondition, on_conflict.clone()),
            _ => return,
        };
        if precondition.is_some_and(|rv| rv != cur.meta.resource_version) {
            return self.evict_conflict(ctx, slot, on_conflict);
        }
        if matches!(f.evict, Some(Stage::Mark { .. })) {
            let marked = eviction::mark(&cur, ctx.now);
            let expect = Expect::ModRevision(cur.meta.resource_version);
            return self.propose_put(ctx, slot, cur.key(), expect, marked);
        }
        let accepted = crate::faults::Observation::EvictionAccepted { pod: &cur };
        ctx.shared.observe(ctx.now, accepted);
        self.delete(ctx, slot, &req, cur);
    }

    /// The pod changed under an eviction's precondition.
    fn evict_conflict(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, on: OnConflict) {
        let Some(f) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let id = f.req.id;
        match on {
            OnConflict::TooManyRequests(budget) => {
                let resp = eviction::still_processing(&budget).response(id);
                self.finish(ctx, slot, resp);
            }
            OnConflict::Retry => self.evict_retry(ctx, slot),
        }
    }

    /// `EvictionsRetry`: start the eviction over after the interval, up to
    /// its number of tries.
    fn evict_retry(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32) {
        let Some(f) = self.slots[slot as usize].as_mut() else {
            return;
        };
        f.attempts += 1;
        f.evict = None;
        if f.attempts >= eviction::RETRY_STEPS {
            let msg = format!(
                "Operation cannot be fulfilled on pods \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                f.req.name
            );
            let resp = Self::error(f.req.id, 409, "Conflict", msg);
            return self.finish(ctx, slot, resp);
        }
        let base = eviction::RETRY_INTERVAL.nanos() as f64;
        let jitter = base * eviction::RETRY_JITTER * ctx.rng.unit();
        let wait = SimDuration::from_nanos((base + jitter) as u64);
        ctx.timer(wait, Payload::Timer(Timer::ApiHandled { slot }));
    }

    /// Proposes writing `obj` at `key` if `expect` holds.
    fn propose_put(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        slot: u32,
        key: ObjectKey,
        expect: Expect,
        obj: Object,
    ) {
        let op = TxnOp::Put(Arc::new(obj));
        self.propose(ctx, slot, Txn { key, expect, op });
    }

    fn propose(&mut self, ctx: &mut Ctx<'_, Payload, World>, slot: u32, txn: Txn) {
        let req = self.next_etcd_req;
        self.next_etcd_req += 1;
        self.etcd_pending.insert(req, (slot, ctx.now));
        let contact = self.etcd_members[self.endpoint];
        let p = Arc::new(Proposal {
            client: ctx.me,
            contact,
            req,
            txn,
        });
        send(ctx, contact, Message::EtcdPropose(p), req);
        ctx.timer(
            self.cfg.etcd_deadline,
            Payload::Timer(Timer::EtcdDeadline { req }),
        );
    }

    fn on_etcd_result(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        req: u64,
        result: Result<TxnResult, String>,
    ) {
        let Some((slot, sent)) = self.etcd_pending.remove(&req) else {
            return;
        };
        let Some(f) = self.slots[slot as usize].as_mut() else {
            return;
        };
        f.in_etcd = f.in_etcd + ctx.now.since(sent);
        let id = f.req.id;
        match result {
            Err(msg) => self.finish(ctx, slot, Self::error(id, 500, "InternalError", msg)),
            Ok(r)
                if r.succeeded
                    && f.evict.is_some()
                    && !matches!(f.evict, Some(Stage::Delete { .. })) =>
            {
                // The eviction's next write: after the budget, the mark; after
                // the mark, the delete (held to the version the mark made).
                let next_pod = match f.evict.take() {
                    Some(Stage::Mark {
                        precondition,
                        on_conflict,
                    }) => {
                        f.evict = Some(Stage::Delete {
                            precondition: precondition.map(|_| r.revision),
                            on_conflict,
                        });
                        r.current
                    }
                    _ => {
                        f.evict = Some(Stage::Mark {
                            precondition: None,
                            on_conflict: OnConflict::Retry,
                        });
                        let key = ObjectKey {
                            kind: Kind::Pod,
                            namespace: f.req.namespace.clone(),
                            name: f.req.name.clone(),
                        };
                        self.cache.get(&key).cloned()
                    }
                };
                match next_pod {
                    Some(pod) => self.evict_stage(ctx, slot, pod),
                    None => {
                        let msg = format!("pods \"{}\" not found", f.req.name);
                        self.finish(ctx, slot, Self::error(id, 404, "NotFound", msg))
                    }
                }
            }
            Ok(r) if r.succeeded => {
                let code = if matches!(f.req.verb, Verb::Create | Verb::Evict) {
                    201
                } else {
                    200
                };
                let resp = ApiResponse {
                    id,
                    code,
                    reason: "",
                    message: String::new(),
                    cause: String::new(),
                    retry_after: None,
                    resource_version: r.revision,
                    object: r.current,
                    items: Vec::new(),
                };
                self.finish(ctx, slot, resp);
            }
            Ok(r) => {
                if matches!(f.evict, Some(Stage::Spend)) {
                    // Someone else wrote the budget: read it again and retry.
                    return self.evict_retry(ctx, slot);
                }
                f.attempts += 1;
                let retry = matches!(
                    f.req.verb,
                    Verb::Patch | Verb::Delete | Verb::Bind | Verb::Evict
                ) && f.attempts < 10;
                match (retry, r.current) {
                    (true, Some(cur)) => self.guaranteed_update(ctx, slot, cur),
                    (_, None) if f.req.verb != Verb::Create => {
                        let msg = format!(
                            "{} \"{}\" not found",
                            f.req.kind.group_resource(),
                            f.req.name
                        );
                        self.finish(ctx, slot, Self::error(id, 404, "NotFound", msg))
                    }
                    _ => {
                        let (verb, kind, name) = (f.req.verb, f.req.kind, f.req.name.clone());
                        let (code, reason, msg) = if verb == Verb::Create {
                            (
                                409,
                                "AlreadyExists",
                                format!("{} \"{name}\" already exists", kind.name().to_lowercase()),
                            )
                        } else {
                            (409, "Conflict", format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", plural(kind)))
                        };
                        self.finish(ctx, slot, Self::error(id, code, reason, msg))
                    }
                }
            }
        }
    }

    fn node_matches(filter: &Option<String>, o: &Object) -> bool {
        match filter {
            None => true,
            Some(n) => o.as_pod().and_then(|p| p.node_name.as_ref()) == Some(n),
        }
    }

    fn on_etcd_watch(&mut self, ctx: &mut Ctx<'_, Payload, World>, changes: Vec<WatchedChange>) {
        // Watcher index → its events, in watcher order for a deterministic send order.
        let mut out: BTreeMap<usize, Vec<WatchEvent>> = BTreeMap::new();
        for c in changes {
            if c.revision <= self.revision {
                continue;
            }
            self.revision = c.revision;
            let prev = match &c.value {
                Some(v) => self.cache.insert(c.key.clone(), v.clone()),
                None => self.cache.remove(&c.key),
            };
            self.trace_write(ctx, &c, prev.is_some());
            let (type_, object) = match &c.value {
                Some(v) => (
                    if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    v.clone(),
                ),
                None => (
                    EventType::Deleted,
                    prev.clone()
                        .or(c.prev.clone())
                        .expect("deleted objects existed"),
                ),
            };
            let ev = WatchEvent {
                type_,
                object: Some(object),
                resource_version: c.revision,
            };
            for i in self.interested(&c, prev.as_deref()) {
                let w = &self.watchers[i];
                if let Some(e) = filtered_event(&w.node_filter, &ev, prev.as_deref()) {
                    out.entry(i).or_default().push(e);
                }
            }
            self.history
                .push_back((ctx.now, c.revision, c.key.kind, ev, prev));
        }
        let horizon = ctx
            .now
            .nanos()
            .saturating_sub(self.cfg.history_window.nanos());
        while self.history.len() > 100
            && self.history.front().is_some_and(|h| h.0.nanos() < horizon)
        {
            self.history.pop_front();
        }
        for (i, events) in out {
            self.send_batch(ctx, i, events, false);
        }
    }

    /// Watchers that may see change `c`: those of its kind without a node
    /// filter, and node-filtered ones for the node the pod is (or was) on.
    /// Upstream's watch cache indexes pod watchers by `spec.nodeName` for the
    /// same reason: a kubelet's watch must not cost every other write.
    fn interested(&self, c: &WatchedChange, prev: Option<&Object>) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .watch_by_kind
            .get(&c.key.kind)
            .cloned()
            .unwrap_or_default();
        if c.key.kind == Kind::Pod {
            let node_of =
                |o: Option<&Object>| o.and_then(|o| o.as_pod()).and_then(|p| p.node_name.clone());
            let nodes = [
                node_of(c.value.as_deref()),
                node_of(c.prev.as_deref()),
                node_of(prev),
            ];
            for n in nodes.iter().flatten() {
                if let Some(ws) = self.watch_by_node.get(n) {
                    v.extend_from_slice(ws);
                }
            }
            v.sort_unstable();
            v.dedup();
        }
        v
    }

    /// Rebuilds the watcher indexes after the watcher list changed.
    fn reindex_watchers(&mut self) {
        self.watch_by_kind.clear();
        self.watch_by_node.clear();
        for (i, w) in self.watchers.iter().enumerate() {
            match &w.node_filter {
                None => self.watch_by_kind.entry(w.kind).or_default().push(i),
                Some(n) => self.watch_by_node.entry(n.clone()).or_default().push(i),
            }
        }
    }

    fn trace_write(&self, ctx: &mut Ctx<'_, Payload, World>, c: &WatchedChange, existed: bool) {
        if matches!(c.key.kind, Kind::Pod | Kind::Node) {
            let key = c.key.to_string();
            let value = c.value.as_deref();
            let now = ctx.now;
            ctx.shared
                .stats
                .observe_write(ctx.trace, now, &key, value, !existed);
        }
        if !ctx.trace.enabled(TraceLevel::Events) {
            return;
        }
        let verb = match (&c.value, existed) {
            (None, _) => "delete",
            (Some(_), false) => "create",
            (Some(_), true) => "update",
        };
        let full = ctx.trace.enabled(TraceLevel::Full);
        let key = c.key.to_string();
        let obj = c.value.as_ref().or(c.prev.as_ref()).map(|o| o.to_json());
        ctx.trace
            .record(TraceLevel::Events, ctx.now, &self.name, "Write", |r| {
                r.str("verb", verb).str("key", &key).u64("rv", c.revision);
                // A pod's clock starts at its creationTimestamp, which the
                // object holds only to the second: the create says when.
                if let (Some(o), "create", Kind::Pod) = (&c.value, verb, c.key.kind) {
                    r.u64("created", o.meta.creation.0);
                }
                if full {
                    if let Some(o) = &obj {
                        r.json("object", o);
                    }
                }
            });
    }

    fn send_batch(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        i: usize,
        events: Vec<WatchEvent>,
        gone: bool,
    ) {
        let w = &mut self.watchers[i];
        w.seq += 1;
        ctx.shared.stats.watch_events_sent += events.len() as u64;
        let batch = WatchBatch {
            watch_id: w.watch_id,
            seq: w.seq,
            events,
            gone,
            closed: false,
        };
        let client = w.client;
        send(ctx, client, Message::Watch(Box::new(batch)), 0);
    }

    fn start_watch(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        client: ComponentId,
        req: &ApiRequest,
    ) {
        // A client re-watching the same resource replaces its old watch: the
        // old stream's connection is closed when the client opens a new one.
        let before = self.watchers.len();
        self.watchers.retain(|w| {
            !(w.client == client && w.kind == req.kind && w.node_filter == req.node_filter)
        });
        self.watchers.push(Watcher {
            client,
            watch_id: req.watch_id,
            kind: req.kind,
            node_filter: req.node_filter.clone(),
            seq: 0,
        });
        let i = self.watchers.len() - 1;
        if self.watchers.len() == before + 1 {
            // Nothing removed: extend the indexes instead of rebuilding them.
            match &req.node_filter {
                None => self.watch_by_kind.entry(req.kind).or_default().push(i),
                Some(n) => self.watch_by_node.entry(n.clone()).or_default().push(i),
            }
        } else {
            self.reindex_watchers();
        }
        let oldest = self
            .history
            .front()
            .map(|h| h.1)
            .unwrap_or(self.revision + 1);
        if req.resource_version + 1 < oldest && req.resource_version < self.revision {
            // 410 Gone: "too old resource version"; the client must relist.
            self.send_batch(ctx, i, Vec::new(), true);
            self.watchers.pop();
            self.reindex_watchers();
            return;
        }
        let replay: Vec<WatchEvent> = self
            .history
            .iter()
            .filter(|h| h.1 > req.resource_version && h.2 == req.kind)
            .filter_map(|h| filtered_event(&req.node_filter, &h.3, h.4.as_deref()))
            .collect();
        // The first batch (possibly empty) confirms the stream is open.
        self.send_batch(ctx, i, replay, false);
    }

    fn send_bookmarks(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        ctx.timer(self.cfg.bookmark_period, Payload::Timer(Timer::Bookmarks));
        let rv = self.revision;
        for i in 0..self.watchers.len() {
            let ev = WatchEvent {
                type_: EventType::Bookmark,
                object: None,
                resource_version: rv,
            };
            self.send_batch(ctx, i, vec![ev], false);
        }
    }

    /// Moves the etcd client to the next endpoint that has not refused a
    /// connection within [`ETCD_RECONNECT`], restarting the watch there.
    /// `refused` is the endpoint that just refused, if any. Returns `false`
    /// when every endpoint is backing off; a reconnect timer is then armed.
    fn fail_over(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        refused: Option<ComponentId>,
    ) -> bool {
        let now = ctx.now;
        if let Some(i) = refused.and_then(|id| self.etcd_members.iter().position(|m| *m == id)) {
            self.refused_at[i] = Some(now);
        }
        let n = self.etcd_members.len();
        let usable = |t: &Option<SimTime>| t.is_none_or(|t| now.since(t) >= ETCD_RECONNECT);
        let next = (1..=n)
            .map(|k| (self.endpoint + k) % n)
            .find(|&i| usable(&self.refused_at[i]));
        match next {
            Some(i) => {
                self.endpoint = i;
                let to = self.etcd_members[i];
                let rev = self.revision;
                send(ctx, to, Message::EtcdWatchStart { from_rev: rev }, 0);
                true
            }
            None => {
                if !self.reconnect_armed {
                    self.reconnect_armed = true;
                    let earliest = self
                        .refused_at
                        .iter()
                        .flatten()
                        .min()
                        .copied()
                        .unwrap_or(now);
                    let wait = earliest.after(ETCD_RECONNECT).since(now);
                    ctx.timer(wait, Payload::Timer(Timer::EtcdReconnect));
                }
                false
            }
        }
    }

    /// The reconnect backoff passed: redial, then resend parked requests or
    /// fail those that waited past the etcd client's deadline.
    fn reconnect(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        self.reconnect_armed = false;
        if !self.fail_over(ctx, None) {
            return;
        }
        for (slot, since) in std::mem::take(&mut self.parked) {
            if ctx.now.since(since) >= self.cfg.etcd_deadline {
                let id = self.slots[slot as usize]
                    .as_ref()
                    .map(|f| f.req.id)
                    .unwrap_or(0);
                self.finish(
                    ctx,
                    slot,
                    Self::error(id, 504, "Timeout", ETCD_TIMEOUT_MESSAGE.into()),
                );
            } else {
                self.handle_request(ctx, slot);
            }
        }
    }
}

/// How a watch with a node filter sees an event: objects entering the filter
/// are ADDED, leaving it DELETED, as the apiserver's field-selector watch does.
fn filtered_event(
    filter: &Option<String>,
    ev: &WatchEvent,
    prev: Option<&Object>,
) -> Option<WatchEvent> {
    let Some(node) = filter else {
        return Some(ev.clone());
    };
    let on = |o: Option<&Object>| {
        o.and_then(|o| o.as_pod())
            .and_then(|p| p.node_name.as_ref())
            == Some(node)
    };
    let now_in = ev.type_ != EventType::Deleted && on(ev.object.as_deref());
    let was_in = on(prev);
    let type_ = match (was_in, now_in, ev.type_) {
        (_, _, EventType::Deleted) if was_in || on(ev.object.as_deref()) => EventType::Deleted,
        (false, true, _) => EventType::Added,
        (true, true, _) => EventType::Modified,
        (true, false, _) => EventType::Deleted,
        _ => return None,
    };
    Some(WatchEvent {
        type_,
        ..ev.clone()
    })
}

fn plural(kind: Kind) -> String {
    kind.plural()
}

/// Copies the status of `from` onto `to` (the status subresource).
fn merge_status(to: &mut Object, from: &Object) {
    match (&mut to.body, &from.body) {
        (Body::Pod(a), Body::Pod(b)) => a.status = b.status.clone(),
        (Body::Node(a), Body::Node(b)) => {
            a.conditions = b.conditions.clone();
            a.images = b.images.clone();
            a.capacity = b.capacity.clone();
            a.allocatable = b.allocatable.clone();
            a.addresses = b.addresses.clone();
        }
        (Body::Namespace(a), Body::Namespace(b)) => namespace::merge_status(a, b),
        (Body::Json(a), Body::Json(b)) => {
            let mut m = (**a).clone();
            if let Some(s) = b.get("status") {
                m.insert("status".into(), s.clone());
            }
            *a = Arc::new(m);
        }
        _ => {}
    }
}

impl Actor<Payload, World> for ApiServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let to = self.etcd_members[self.endpoint];
        let rev = self.revision;
        send(ctx, to, Message::EtcdWatchStart { from_rev: rev }, 0);
        ctx.timer(self.cfg.bookmark_period, Payload::Timer(Timer::Bookmarks));
        if !self.cfg.compaction_interval.is_zero() {
            ctx.timer(
                self.cfg.compaction_interval,
                Payload::Timer(Timer::EtcdCompact),
            );
        }
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        match payload {
            Payload::Msg {
                from,
                msg: Message::Api(req),
            } => self.admit(ctx, from, req),
            Payload::Msg {
                msg: Message::EtcdResult { req, result },
                ..
            } => self.on_etcd_result(ctx, req, result),
            Payload::Msg {
                msg: Message::EtcdWatch(changes),
                ..
            } => self.on_etcd_watch(ctx, *changes),
            Payload::Msg {
                from,
                msg: Message::Refused { req },
            } => {
                // The etcd endpoint is down: switch endpoints and resend, or
                // park the request until an endpoint may be redialled.
                let ok = self.fail_over(ctx, Some(from));
                if let Some((slot, since)) = self.etcd_pending.remove(&req) {
                    if ok {
                        self.handle_request(ctx, slot);
                    } else {
                        self.parked.push((slot, since));
                    }
                }
            }
            Payload::Timer(Timer::ApiHandled { slot }) => self.handle_request(ctx, slot),
            Payload::Timer(Timer::EtcdDeadline { req }) => {
                if let Some((slot, _)) = self.etcd_pending.remove(&req) {
                    let id = self.slots[slot as usize]
                        .as_ref()
                        .map(|f| f.req.id)
                        .unwrap_or(0);
                    self.fail_over(ctx, None);
                    self.finish(
                        ctx,
                        slot,
                        Self::error(id, 504, "Timeout", ETCD_TIMEOUT_MESSAGE.into()),
                    );
                }
            }
            Payload::Msg {
                msg: Message::EtcdSnapshot { revision, objects },
                ..
            } => self.on_etcd_snapshot(ctx, revision, objects),
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } => self.on_connection_lost(ctx, from, stall),
            Payload::Timer(Timer::Bookmarks) => self.send_bookmarks(ctx),
            Payload::Timer(Timer::EtcdReconnect) => self.reconnect(ctx),
            Payload::Timer(Timer::EtcdCompact) => self.compact(ctx),
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        // The watch cache is memory: a restarted apiserver lists etcd again.
        self.cache.clear();
        self.revision = 0;
        self.history.clear();
        self.ready = false;
        self.compact_next = 0;
        self.parked.clear();
        self.reconnect_armed = false;
        self.watchers.clear();
        self.reindex_watchers();
        self.slots.clear();
        self.free_slots.clear();
        self.etcd_pending.clear();
        self.inflight_mut = 0;
        self.inflight_ro = 0;
        // Which etcd endpoints refused is the etcd client's memory too.
        self.refused_at.iter_mut().for_each(|t| *t = None);
    }
}
