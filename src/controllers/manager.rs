//! kube-controller-manager: one process, shared informers, and one work
//! queue, worker pool and rate-limited client per controller (upstream builds
//! each controller's clientset separately, so each has its own QPS budget).

use std::collections::BTreeMap;

use super::cache::Cache;
use super::controller::{Controller, RecordedEvent, SyncCtx, TraceNote};
use super::event_recorder::{EventCorrelator, EventNames};
use super::workqueue::WorkQueue;
use crate::api::{Kind, Object};
use crate::autoscaler::cloud_api::{CloudCall, CloudRequest};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, EventType};
use crate::model::client::{ApiClient, Dispatch, RateLimit, CONTROLLER_MANAGER};
use crate::model::msg::{Message, Payload, Timer};
use crate::model::reflector::{Delivery, Reflector};
use crate::model::world::World;
use crate::sim::{Actor, ComponentId, Ctx, SimDuration, SimTime, TraceLevel};

/// The kinds the shared informers watch.
pub const WATCHED: &[Kind] = &[
    Kind::Namespace,
    Kind::Pod,
    Kind::ReplicaSet,
    Kind::Deployment,
    Kind::Node,
    Kind::Lease,
    Kind::Service,
    Kind::StatefulSet,
    Kind::ControllerRevision,
    Kind::PersistentVolumeClaim,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
    Kind::Endpoints,
    Kind::HorizontalPodAutoscaler,
    Kind::PodDisruptionBudget,
    Kind::ReplicationController,
];

const ID_SHIFT: u32 = 40;
const INFORMER_CLIENT: u64 = 1;

struct Inflight {
    controller: usize,
    /// The work-queue key, or `None` for a tick's or an event's requests.
    key: Option<String>,
    outstanding: u32,
    failed: bool,
    requeue_after: Option<SimDuration>,
}

pub struct ControllerManager {
    name: String,
    apiserver: ComponentId,
    /// The cloud provider's API endpoint, for a process that calls it.
    cloud: Option<ComponentId>,
    informer_client: ApiClient,
    reflectors: Vec<Reflector>,
    cache: Cache,
    controllers: Vec<Box<dyn Controller>>,
    clients: Vec<ApiClient>,
    queues: Vec<WorkQueue>,
    active: Vec<usize>,
    timer_at: Vec<Option<SimTime>>,
    syncs: BTreeMap<u64, Inflight>,
    next_sync: u64,
    requests: BTreeMap<u64, (u64, ApiRequest)>,
    next_tag: u64,
    started: bool,
    /// Each controller's event correlator (upstream each builds its own
    /// broadcaster), and the Event names given at the current instant.
    recorders: Vec<EventCorrelator>,
    event_names: EventNames,
}

impl ControllerManager {
    pub fn new(
        apiserver: ComponentId,
        controllers: Vec<Box<dyn Controller>>,
        limit: RateLimit,
    ) -> Self {
        Self::process(
            "kube-controller-manager",
            WATCHED,
            apiserver,
            controllers,
            limit,
        )
    }

    /// A process of another name running `controllers` over informers of
    /// `watched` (a `kubectl … --watch` client is one).
    pub fn process(
        name: &str,
        watched: &[Kind],
        apiserver: ComponentId,
        controllers: Vec<Box<dyn Controller>>,
        limit: RateLimit,
    ) -> Self {
        let timeout = SimDuration::from_secs(60);
        let n = controllers.len();
        ControllerManager {
            name: name.into(),
            apiserver,
            cloud: None,
            informer_client: ApiClient::new(apiserver, CONTROLLER_MANAGER, timeout)
                .with_id_base(INFORMER_CLIENT << ID_SHIFT),
            reflectors: watched
                .iter()
                .enumerate()
                .map(|(i, k)| Reflector::new(*k, i as u64))
                .collect(),
            cache: Cache::default(),
            clients: controllers
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    ApiClient::new(apiserver, c.rate_limit(limit), timeout)
                        .with_id_base((i as u64 + 2) << ID_SHIFT)
                })
                .collect(),
            queues: controllers.iter().map(|c| c.work_queue()).collect(),
            controllers,
            active: vec![0; n],
            timer_at: vec![None; n],
            syncs: BTreeMap::new(),
            next_sync: 1,
            requests: BTreeMap::new(),
            next_tag: 1,
            started: false,
            recorders: (0..n).map(|_| EventCorrelator::default()).collect(),
            event_names: EventNames::default(),
        }
    }

    /// Lets the controllers call the cloud provider at `cloud`.
    pub fn with_cloud(mut self, cloud: ComponentId) -> Self {
        self.cloud = Some(cloud);
        self
    }

    fn synced(&self) -> bool {
        self.reflectors.iter().all(|r| r.synced)
    }

    /// Informer events to every controller's handlers, then work.
    fn deliver(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        events: Vec<super::cache::CacheEvent>,
    ) {
        for ev in &events {
            for (c, q) in self.controllers.iter_mut().zip(self.queues.iter_mut()) {
                c.on_event(ev, &self.cache, q, ctx.now);
            }
        }
        self.after_change(ctx);
    }

    fn after_change(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if !self.started && self.synced() {
            self.started = true;
            for ci in 0..self.controllers.len() {
                let mut cx = SyncCtx::new(ctx.now, &self.cache);
                self.controllers[ci].start(&mut cx);
                let out = Outputs::take(cx);
                self.carry_out(ctx, ci, None, out);
            }
        }
        if !self.started {
            return;
        }
        for ci in 0..self.controllers.len() {
            self.pump(ctx, ci);
            self.arm(ctx, ci);
        }
    }

    /// Sets the controller's queue timer for its earliest delayed key.
    fn arm(&mut self, ctx: &mut Ctx<'_, Payload, World>, ci: usize) {
        if let Some(due) = self.queues[ci].next_due() {
            if self.timer_at[ci].is_none_or(|t| due < t) {
                self.timer_at[ci] = Some(due);
                ctx.timer(
                    due.since(ctx.now),
                    Payload::Timer(Timer::ControllerQueue {
                        controller: ci as u8,
                    }),
                );
            }
        }
    }

    /// Hands queued keys to free workers.
    fn pump(&mut self, ctx: &mut Ctx<'_, Payload, World>, ci: usize) {
        while self.active[ci] < self.controllers[ci].workers() {
            let Some(key) = self.queues[ci].get() else {
                break;
            };
            let mut cx = SyncCtx::new(ctx.now, &self.cache);
            self.controllers[ci].sync(&key, &mut cx);
            let out = Outputs::take(cx);
            self.active[ci] += 1;
            self.carry_out(ctx, ci, Some(key), out);
        }
    }

    /// Sends a sync's requests and events; finishes it if nothing is outstanding.
    fn carry_out(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        ci: usize,
        key: Option<String>,
        out: Outputs,
    ) {
        let id = self.next_sync;
        self.next_sync += 1;
        self.syncs.insert(
            id,
            Inflight {
                controller: ci,
                key,
                outstanding: 0,
                failed: out.failed,
                requeue_after: out.requeue_after,
            },
        );
        self.send_outputs(ctx, id, out);
        self.maybe_finish(ctx, id);
    }

    fn send_outputs(&mut self, ctx: &mut Ctx<'_, Payload, World>, sync: u64, out: Outputs) {
        let Some(s) = self.syncs.get_mut(&sync) else {
            return;
        };
        let ci = s.controller;
        s.failed |= out.failed;
        if let Some(d) = out.requeue_after {
            s.requeue_after = Some(s.requeue_after.map_or(d, |r| r.min(d)));
        }
        s.outstanding += out.requests.len() as u32;
        let source = self.controllers[ci].name();
        for (after, what) in out.ticks {
            ctx.timer(
                after,
                Payload::Timer(Timer::ControllerTick {
                    controller: ci as u8,
                    what,
                }),
            );
        }
        for note in out.records {
            record_note(ctx, &self.name, &note);
        }
        if let Some(cloud) = self.cloud {
            for call in out.cloud {
                let req = CloudRequest {
                    controller: ci as u8,
                    call,
                };
                crate::model::network::send(ctx, cloud, Message::Cloud(Box::new(req)), 0);
            }
        }
        for ev in out.events {
            record_event(ctx, &self.name, source, &ev);
            let recorder = &mut self.recorders[ci];
            if let Some(req) = recorder.record(&mut self.event_names, &ev, source, ctx.now) {
                // Events are fire-and-forget: tag 0 is never looked up.
                self.clients[ci].request(ctx, req, 0);
            }
        }
        for req in out.requests {
            let tag = self.next_tag;
            self.next_tag += 1;
            self.requests.insert(tag, (sync, req.clone()));
            self.clients[ci].request(ctx, req, tag);
        }
    }

    fn maybe_finish(&mut self, ctx: &mut Ctx<'_, Payload, World>, sync: u64) {
        if self.syncs.get(&sync).is_none_or(|s| s.outstanding > 0) {
            return;
        }
        let s = self.syncs.remove(&sync).expect("checked above");
        let ci = s.controller;
        if let Some(key) = s.key {
            let q = &mut self.queues[ci];
            if s.failed {
                q.add_rate_limited(&key, ctx.now);
            } else {
                q.forget(&key);
            }
            if let Some(d) = s.requeue_after {
                q.add_after(&key, d, ctx.now);
            }
            q.done(&key);
            self.active[ci] -= 1;
        }
        self.pump(ctx, ci);
        self.arm(ctx, ci);
    }

    fn on_controller_response(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        tag: u64,
        resp: Option<&ApiResponse>,
    ) {
        let Some((sync, req)) = self.requests.remove(&tag) else {
            return;
        };
        let Some(s) = self.syncs.get_mut(&sync) else {
            return;
        };
        s.outstanding -= 1;
        let ci = s.controller;
        let key = s.key.clone().unwrap_or_default();
        let mut cx = SyncCtx::new(ctx.now, &self.cache);
        self.controllers[ci].on_response(&key, &req, resp, &mut cx);
        let out = Outputs::take(cx);
        self.send_outputs(ctx, sync, out);
        self.maybe_finish(ctx, sync);
    }

    fn on_informer_response(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        tag: u64,
        resp: Option<&ApiResponse>,
    ) {
        let i = tag as usize;
        if i >= self.reflectors.len() {
            return;
        }
        match self.reflectors[i].on_list(resp, &mut self.informer_client, ctx) {
            Some(items) => {
                let kind = self.reflectors[i].kind;
                #[cfg(feature = "planted-bugs")]
                if self.started {
                    self.controllers.iter_mut().for_each(|c| c.on_relist(kind));
                }
                let events = self.cache.replace(kind, items);
                self.deliver(ctx, events);
            }
            None => ctx.timer(
                SimDuration::from_secs(1),
                Payload::Timer(Timer::InformerRetry { informer: i as u8 }),
            ),
        }
    }

    fn client_index(id: u64) -> u64 {
        id >> ID_SHIFT
    }

    /// Routes client events by request id to the client that sent it.
    fn route(&mut self, ctx: &mut Ctx<'_, Payload, World>, payload: Payload) -> Option<Payload> {
        let id = match &payload {
            Payload::Timer(Timer::ClientRelease) => {
                self.informer_client.on_release(ctx);
                for c in &mut self.clients {
                    c.on_release(ctx);
                }
                return None;
            }
            Payload::Timer(Timer::ClientRetry { req })
            | Payload::Timer(Timer::ClientDeadline { req }) => *req,
            Payload::Msg {
                msg: Message::ApiResp(r),
                ..
            } => r.id,
            Payload::Msg {
                msg: Message::Refused { req },
                ..
            } => *req,
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } if *from != self.apiserver => {
                // Another peer (the cloud provider): a call lost with the
                // connection is asked again on the controller's next pass.
                crate::model::network::connection_lost(ctx, *from, *stall);
                return None;
            }
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } => {
                // One connection carries every client of the process.
                if crate::model::network::connection_lost(ctx, *from, *stall) {
                    self.informer_client.on_connection_lost(ctx);
                    for c in &mut self.clients {
                        c.on_connection_lost(ctx);
                    }
                }
                return None;
            }
            _ => return Some(payload),
        };
        let idx = Self::client_index(id);
        if idx == INFORMER_CLIENT {
            match self.informer_client.dispatch(ctx, payload) {
                Dispatch::Finished(tag, resp) => {
                    self.on_informer_response(ctx, tag, resp.as_deref())
                }
                Dispatch::Handled | Dispatch::Other(_) => {}
            }
        } else if let Some(c) = self.clients.get_mut(idx.wrapping_sub(2) as usize) {
            match c.dispatch(ctx, payload) {
                Dispatch::Finished(0, _) => {}
                Dispatch::Finished(tag, resp) => {
                    self.on_controller_response(ctx, tag, resp.as_deref())
                }
                Dispatch::Handled | Dispatch::Other(_) => {}
            }
        }
        None
    }
}

/// A sync's products, detached from the borrow of the cache.
struct Outputs {
    records: Vec<TraceNote>,
    requests: Vec<ApiRequest>,
    events: Vec<RecordedEvent>,
    ticks: Vec<(SimDuration, u32)>,
    cloud: Vec<CloudCall>,
    failed: bool,
    requeue_after: Option<SimDuration>,
}

impl Outputs {
    fn take(cx: SyncCtx<'_>) -> Outputs {
        Outputs {
            records: cx.records,
            requests: cx.requests,
            events: cx.events,
            ticks: cx.ticks,
            cloud: cx.cloud,
            failed: cx.failed,
            requeue_after: cx.requeue_after,
        }
    }
}

fn object_ref(o: &Object) -> String {
    if o.meta.namespace.is_empty() {
        format!("{}/{}", o.kind.name(), o.meta.name)
    } else {
        format!("{}/{}/{}", o.kind.name(), o.meta.namespace, o.meta.name)
    }
}

fn record_note(ctx: &mut Ctx<'_, Payload, World>, me: &str, note: &TraceNote) {
    ctx.trace
        .record(TraceLevel::Events, ctx.now, me, note.event, |r| {
            for (k, v) in &note.fields {
                r.str(k, v);
            }
        });
}

/// The trace line `kubectl get events` would show.
fn record_event(ctx: &mut Ctx<'_, Payload, World>, me: &str, source: &str, ev: &RecordedEvent) {
    let object = object_ref(&ev.object);
    ctx.trace
        .record(TraceLevel::Events, ctx.now, me, "Event", |r| {
            r.str("type", ev.type_)
                .str("reason", ev.reason)
                .str("object", &object)
                .str("message", &ev.message)
                .str("source", source);
        });
}

impl Actor<Payload, World> for ControllerManager {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        for r in &mut self.reflectors {
            r.list(&mut self.informer_client, ctx);
        }
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        let Some(payload) = self.route(ctx, payload) else {
            return;
        };
        match payload {
            Payload::Timer(Timer::InformerRetry { informer }) => {
                if let Some(r) = self.reflectors.get_mut(informer as usize) {
                    r.list(&mut self.informer_client, ctx);
                }
            }
            Payload::Timer(Timer::ControllerQueue { controller }) => {
                let ci = controller as usize;
                if ci < self.queues.len() {
                    self.timer_at[ci] = None;
                    self.queues[ci].release_due(ctx.now);
                    self.pump(ctx, ci);
                    self.arm(ctx, ci);
                }
            }
            Payload::Timer(Timer::ControllerTick { controller, what }) => {
                let ci = controller as usize;
                if ci < self.controllers.len() {
                    let mut cx = SyncCtx::new(ctx.now, &self.cache);
                    self.controllers[ci].tick(what, &mut cx, &mut self.queues[ci]);
                    let out = Outputs::take(cx);
                    self.carry_out(ctx, ci, None, out);
                    self.pump(ctx, ci);
                    self.arm(ctx, ci);
                }
            }
            Payload::Msg {
                msg: Message::CloudReply(reply),
                ..
            } => {
                let ci = reply.controller as usize;
                if self.started && ci < self.controllers.len() {
                    let mut cx = SyncCtx::new(ctx.now, &self.cache);
                    self.controllers[ci].on_cloud(&reply, &mut cx);
                    let out = Outputs::take(cx);
                    self.carry_out(ctx, ci, None, out);
                }
            }
            Payload::Msg {
                msg: Message::Watch(b),
                ..
            } => {
                let b = *b;
                let Some(i) = self.reflectors.iter().position(|r| r.owns(&b)) else {
                    return;
                };
                if let Delivery::Events(evs) =
                    self.reflectors[i].on_batch(b, &mut self.informer_client, ctx)
                {
                    let mut events = Vec::with_capacity(evs.len());
                    for ev in evs {
                        let Some(obj) = ev.object else { continue };
                        match ev.type_ {
                            EventType::Bookmark => {}
                            EventType::Deleted => events.push(self.cache.apply(obj, true)),
                            _ => events.push(self.cache.apply(obj, false)),
                        }
                    }
                    self.deliver(ctx, events);
                }
            }
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        self.informer_client.reset();
        for c in &mut self.clients {
            c.reset();
        }
        for r in &mut self.reflectors {
            r.synced = false;
        }
        self.cache.clear();
        for q in &mut self.queues {
            q.clear();
        }
        for c in &mut self.controllers {
            c.reset();
        }
        self.active.iter_mut().for_each(|a| *a = 0);
        self.timer_at.iter_mut().for_each(|t| *t = None);
        self.syncs.clear();
        self.requests.clear();
        self.started = false;
    }
}
