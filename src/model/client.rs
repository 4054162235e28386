//! The client side of the API: client-go's token-bucket rate limiter, request
//! ids, and deadlines. Embedded in every component that talks to the apiserver.

use std::collections::{BTreeMap, VecDeque};

use super::apiserver::request::{ApiRequest, ApiResponse};
use super::msg::{Message, Payload, Timer};
use super::network::send;
use super::world::World;
use crate::sim::{ComponentId, Ctx, SimDuration, SimTime};

/// Per-client QPS and burst, with client-go's semantics: a full bucket at
/// start, one token per request, requests wait (in order) for their token.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
}

/// kube-controller-manager's `--kube-api-qps`/`--kube-api-burst`.
pub const CONTROLLER_MANAGER: RateLimit = RateLimit {
    qps: 20.0,
    burst: 30,
};
/// kube-scheduler's client defaults.
pub const SCHEDULER: RateLimit = RateLimit {
    qps: 50.0,
    burst: 100,
};
/// The kubelet's `kubeAPIQPS`/`kubeAPIBurst`.
pub const KUBELET: RateLimit = RateLimit {
    qps: 50.0,
    burst: 100,
};

pub struct ApiClient {
    pub apiserver: ComponentId,
    limit: RateLimit,
    tokens: f64,
    refilled_at: SimTime,
    next_id: u64,
    timeout: SimDuration,
    /// Requests waiting for their token, with their release time.
    waiting: VecDeque<(SimTime, Box<ApiRequest>)>,
    /// id → (caller's tag, sent at, label for latency stats).
    inflight: BTreeMap<u64, (u64, SimTime, &'static str)>,
}

impl ApiClient {
    pub fn new(apiserver: ComponentId, limit: RateLimit, timeout: SimDuration) -> Self {
        ApiClient {
            apiserver,
            limit,
            tokens: limit.burst as f64,
            refilled_at: SimTime::ZERO,
            next_id: 1,
            timeout,
            waiting: VecDeque::new(),
            inflight: BTreeMap::new(),
        }
    }

    /// Forgets everything in flight (the process restarted).
    pub fn reset(&mut self) {
        self.tokens = self.limit.burst as f64;
        self.waiting.clear();
        self.inflight.clear();
    }

    /// Sends `req` as soon as the rate limiter allows; `tag` comes back with
    /// the response. Returns the request id.
    pub fn request(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        mut req: ApiRequest,
        tag: u64,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        req.id = id;
        let label = req.verb.as_str();
        self.inflight.insert(id, (tag, ctx.now, label));
        // Refill, then reserve one token (going negative is a wait).
        let elapsed = ctx.now.since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.qps).min(self.limit.burst as f64);
        self.refilled_at = ctx.now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 && self.waiting.is_empty() {
            self.transmit(ctx, Box::new(req));
        } else {
            let wait = SimDuration((-self.tokens / self.limit.qps * 1e9).ceil() as u64);
            let at = ctx.now.after(wait);
            self.waiting.push_back((at, Box::new(req)));
            ctx.timer(wait, Payload::Timer(Timer::ClientRelease));
        }
        id
    }

    fn transmit(&mut self, ctx: &mut Ctx<'_, Payload, World>, req: Box<ApiRequest>) {
        let id = req.id;
        ctx.timer(
            self.timeout,
            Payload::Timer(Timer::ClientDeadline { req: id }),
        );
        if let Some(e) = self.inflight.get_mut(&id) {
            e.1 = ctx.now;
        }
        send(ctx, self.apiserver, Message::Api(req), id);
    }

    /// Sends waiting requests whose token has come.
    pub fn on_release(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        while let Some((at, _)) = self.waiting.front() {
            if *at > ctx.now {
                break;
            }
            let (_, req) = self.waiting.pop_front().expect("checked front");
            self.transmit(ctx, req);
        }
    }

    /// Matches a response to its request; `None` if it was abandoned.
    pub fn on_response(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        resp: &ApiResponse,
    ) -> Option<u64> {
        let (tag, sent, label) = self.inflight.remove(&resp.id)?;
        ctx.shared
            .stats
            .api_latency
            .entry(label.to_string())
            .or_default()
            .record(ctx.now.since(sent));
        Some(tag)
    }

    /// A deadline passed: `Some(tag)` if the request was still outstanding.
    pub fn on_deadline(&mut self, id: u64) -> Option<u64> {
        self.inflight.remove(&id).map(|(tag, _, _)| tag)
    }

    /// The connection was refused: like a deadline, at once.
    pub fn on_refused(&mut self, id: u64) -> Option<u64> {
        self.on_deadline(id)
    }
}
