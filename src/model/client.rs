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

/// client-go retries an answer that carries a Retry-After header (the
/// apiserver's in-flight limiter's 429 says 1 s) after that long, at most
/// ten times.
const MAX_THROTTLE_RETRIES: u32 = 10;

struct Outstanding {
    /// The caller's tag, returned with the response.
    tag: u64,
    /// When the current attempt was sent, for latency.
    sent: SimTime,
    /// The current attempt's deadline; older deadline timers are ignored.
    deadline: SimTime,
    label: &'static str,
    /// Kept to resend after a 429.
    req: ApiRequest,
    retries: u32,
}

/// What [`ApiClient::dispatch`] made of an event.
pub enum Dispatch {
    /// Not a client event: the owner handles it.
    Other(Payload),
    /// The client dealt with it; nothing for the owner.
    Handled,
    /// A request finished: its tag, and the response (`None` when it timed
    /// out or the connection was refused).
    Finished(u64, Option<Box<ApiResponse>>),
}

pub struct ApiClient {
    pub apiserver: ComponentId,
    limit: RateLimit,
    tokens: f64,
    refilled_at: SimTime,
    next_id: u64,
    timeout: SimDuration,
    /// Requests waiting for their token, with their release time.
    waiting: VecDeque<(SimTime, u64)>,
    inflight: BTreeMap<u64, Outstanding>,
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

    /// Numbers this client's request ids from `base`, so that several clients
    /// in one process (kube-controller-manager gives each controller its own)
    /// never share an id and answers can be routed back by id.
    pub fn with_id_base(mut self, base: u64) -> Self {
        self.next_id = base.max(1);
        self
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
        self.inflight.insert(
            id,
            Outstanding {
                tag,
                sent: ctx.now,
                deadline: SimTime::MAX,
                label,
                req,
                retries: 0,
            },
        );
        self.throttle(ctx, id);
        id
    }

    /// Takes a token for request `id` (going negative is a wait) and sends it
    /// now or when its token comes.
    fn throttle(&mut self, ctx: &mut Ctx<'_, Payload, World>, id: u64) {
        let elapsed = ctx.now.since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.qps).min(self.limit.burst as f64);
        self.refilled_at = ctx.now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 && self.waiting.is_empty() {
            self.transmit(ctx, id);
        } else {
            let wait = SimDuration((-self.tokens / self.limit.qps * 1e9).ceil() as u64);
            let at = ctx.now.after(wait);
            self.waiting.push_back((at, id));
            ctx.timer(wait, Payload::Timer(Timer::ClientRelease));
        }
    }

    fn transmit(&mut self, ctx: &mut Ctx<'_, Payload, World>, id: u64) {
        let Some(o) = self.inflight.get_mut(&id) else {
            return;
        };
        o.sent = ctx.now;
        o.deadline = ctx.now.after(self.timeout);
        let req = Box::new(o.req.clone());
        ctx.timer(
            self.timeout,
            Payload::Timer(Timer::ClientDeadline { req: id }),
        );
        send(ctx, self.apiserver, Message::Api(req), id);
    }

    /// Sends waiting requests whose token has come.
    pub fn on_release(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        while let Some((at, _)) = self.waiting.front() {
            if *at > ctx.now {
                break;
            }
            let (_, id) = self.waiting.pop_front().expect("checked front");
            self.transmit(ctx, id);
        }
    }

    /// Matches a response to its request: `Some(tag)` for the caller, `None`
    /// if it was abandoned or is being retried after a 429.
    pub fn on_response(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        resp: &ApiResponse,
    ) -> Option<u64> {
        let o = self.inflight.get_mut(&resp.id)?;
        if let Some(secs) = resp
            .retry_after
            .filter(|_| o.retries < MAX_THROTTLE_RETRIES)
        {
            o.retries += 1;
            o.deadline = SimTime::MAX;
            ctx.timer(
                SimDuration::from_secs(secs as u64),
                Payload::Timer(Timer::ClientRetry { req: resp.id }),
            );
            return None;
        }
        let o = self.inflight.remove(&resp.id)?;
        ctx.shared
            .stats
            .api_latency
            .entry(o.label.to_string())
            .or_default()
            .record(ctx.now.since(o.sent));
        Some(o.tag)
    }

    /// The Retry-After of a throttled request passed: send it again.
    pub fn on_retry(&mut self, ctx: &mut Ctx<'_, Payload, World>, id: u64) {
        if self.inflight.contains_key(&id) {
            self.throttle(ctx, id);
        }
    }

    /// A deadline passed: `Some(tag)` if the request's current attempt was
    /// still outstanding.
    pub fn on_deadline(&mut self, now: SimTime, id: u64) -> Option<u64> {
        match self.inflight.get(&id) {
            Some(o) if o.deadline <= now => self.inflight.remove(&id).map(|o| o.tag),
            _ => None,
        }
    }

    /// The connection was refused: the request failed at once.
    pub fn on_refused(&mut self, id: u64) -> Option<u64> {
        self.inflight.remove(&id).map(|o| o.tag)
    }

    /// Routes the client's own timers and the answers to its requests;
    /// anything else comes back as [`Dispatch::Other`].
    pub fn dispatch(&mut self, ctx: &mut Ctx<'_, Payload, World>, payload: Payload) -> Dispatch {
        let finished = |tag: Option<u64>, resp| match tag {
            Some(tag) => Dispatch::Finished(tag, resp),
            None => Dispatch::Handled,
        };
        match payload {
            Payload::Timer(Timer::ClientRelease) => {
                self.on_release(ctx);
                Dispatch::Handled
            }
            Payload::Timer(Timer::ClientRetry { req }) => {
                self.on_retry(ctx, req);
                Dispatch::Handled
            }
            Payload::Timer(Timer::ClientDeadline { req }) => {
                finished(self.on_deadline(ctx.now, req), None)
            }
            Payload::Msg {
                msg: Message::ApiResp(resp),
                ..
            } => {
                let tag = self.on_response(ctx, &resp);
                finished(tag, Some(resp))
            }
            Payload::Msg {
                msg: Message::Refused { req },
                ..
            } => finished(self.on_refused(req), None),
            other => Dispatch::Other(other),
        }
    }
}
