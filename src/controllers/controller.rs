//! What a controller is to kube-controller-manager: event handlers that turn
//! informer events into work-queue keys, and a sync that turns one key into
//! API requests. A sync never blocks: it returns its requests, the manager
//! sends them through the controller's own rate-limited client, hands each
//! answer back through [`Controller::on_response`] (which may send more), and
//! calls the key done when nothing of it is outstanding.

use std::sync::Arc;

use super::cache::{Cache, CacheEvent};
use super::workqueue::WorkQueue;
use crate::api::Object;
use crate::model::apiserver::request::{ApiRequest, ApiResponse};
use crate::model::client::RateLimit;
use crate::sim::{SimDuration, SimTime};

/// An Event a controller records (`kubectl get events` shows these).
#[derive(Clone, Debug)]
pub struct RecordedEvent {
    pub object: Arc<Object>,
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// What a sync (or a response handler, or a tick) produces.
pub struct SyncCtx<'a> {
    pub now: SimTime,
    pub cache: &'a Cache,
    pub(crate) requests: Vec<ApiRequest>,
    /// Add the key again after this long (a minReadySeconds check, a
    /// progress deadline).
    pub requeue_after: Option<SimDuration>,
    /// The sync failed: the key is retried under the rate limiter.
    pub failed: bool,
    pub(crate) events: Vec<RecordedEvent>,
    /// Periodic passes to schedule: (after, what).
    pub(crate) ticks: Vec<(SimDuration, u32)>,
    /// Trace records to write: (event, fields).
    pub(crate) records: Vec<TraceNote>,
    /// Calls to the cloud provider's API (the cluster autoscaler's).
    pub(crate) cloud: Vec<crate::autoscaler::cloud_api::CloudCall>,
}

/// A trace record a controller (or a watching client) writes directly.
#[derive(Clone, Debug)]
pub struct TraceNote {
    pub event: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

impl<'a> SyncCtx<'a> {
    pub fn new(now: SimTime, cache: &'a Cache) -> Self {
        SyncCtx {
            now,
            cache,
            requests: Vec::new(),
            requeue_after: None,
            failed: false,
            events: Vec::new(),
            ticks: Vec::new(),
            records: Vec::new(),
            cloud: Vec::new(),
        }
    }

    /// Calls the cloud provider (answered through [`Controller::on_cloud`]).
    pub fn cloud(&mut self, call: crate::autoscaler::cloud_api::CloudCall) {
        self.cloud.push(call);
    }

    /// Writes a trace record under the process's name.
    pub fn record(&mut self, event: &'static str, fields: Vec<(&'static str, String)>) {
        self.records.push(TraceNote { event, fields });
    }

    pub fn send(&mut self, req: ApiRequest) {
        self.requests.push(req);
    }

    pub fn event(
        &mut self,
        object: &Arc<Object>,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        self.events.push(RecordedEvent {
            object: object.clone(),
            type_,
            reason,
            message,
        });
    }

    /// Requeue after `d`, keeping the earliest of several asks.
    pub fn requeue_after(&mut self, d: SimDuration) {
        self.requeue_after = Some(self.requeue_after.map_or(d, |r| r.min(d)));
    }

    pub fn tick_after(&mut self, d: SimDuration, what: u32) {
        self.ticks.push((d, what));
    }
}

pub trait Controller {
    /// The name upstream gives it (`deployment-controller`).
    fn name(&self) -> &'static str;

    /// Concurrent syncs (`--concurrent-deployment-syncs` and friends).
    fn workers(&self) -> usize {
        5
    }

    /// Its client's rate limit, given the process's `--kube-api-qps` and
    /// `--kube-api-burst` (most controllers use those as they are).
    fn rate_limit(&self, process: RateLimit) -> RateLimit {
        process
    }

    /// Its work queue (most use client-go's default rate limiter).
    fn work_queue(&self) -> WorkQueue {
        WorkQueue::default()
    }

    /// Informer event handler: add keys to `queue`.
    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, now: SimTime);

    /// Reconciles one key.
    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>);

    /// One of this controller's requests finished (`resp` is `None` on a
    /// timeout). The default marks the sync failed on any error.
    fn on_response(
        &mut self,
        _key: &str,
        _req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        if !resp.is_some_and(|r| r.ok()) {
            cx.failed = true;
        }
    }

    /// The cloud provider answered one of this controller's calls.
    fn on_cloud(
        &mut self,
        _reply: &crate::autoscaler::cloud_api::CloudReply,
        _cx: &mut SyncCtx<'_>,
    ) {
    }

    /// Called once when every informer has synced.
    fn start(&mut self, _cx: &mut SyncCtx<'_>) {}

    /// A periodic pass it asked for with [`SyncCtx::tick_after`].
    fn tick(&mut self, _what: u32, _cx: &mut SyncCtx<'_>, _queue: &mut WorkQueue) {}

    /// The process restarted: forget everything.
    fn reset(&mut self);

    /// An informer of `kind` relisted (its cache was replaced by a fresh
    /// list). Only the planted bugs (`planted-bugs`) listen.
    #[cfg(feature = "planted-bugs")]
    fn on_relist(&mut self, _kind: crate::api::Kind) {}
}
