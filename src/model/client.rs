//! The client side of the API: client-go's token-bucket rate limiter, request
//! ids, and deadlines. Embedded in every component that talks to the apiserver.

use std::collections::{BTreeMap, VecDeque};

use super::apiserver::request::{ApiRequest, ApiResponse, Verb, WatchBatch};
use super::msg::{Message, Payload, Timer};
use super::network::{connection_lost, send};
use super::world::World;
use crate::api::Kind;
use crate::faults::Observation;
use crate::sim::{ComponentId, Ctx, SimDuration, SimTime};

/// Per-client QPS and burst, with client-go's semantics: a full bucket at
/// start, one token per request, requests wait (in order) for their token.
#[derive(Clone, Copy, Debug, PartialEq)]
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

/// The reflector's back-off after a refused watch: client-go's
/// `NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)`.
const WATCH_BACKOFF_INITIAL: SimDuration = SimDuration::from_millis(800);
const WATCH_BACKOFF_CAP: SimDuration = SimDuration::from_secs(30);
const WATCH_BACKOFF_RESET: SimDuration = SimDuration::from_secs(120);

/// A watch stream this client opened: what it watches (a newer watch of the
/// same resource replaces it, as on the apiserver) and the ids to tell it by.
struct OpenWatch {
    kind: Kind,
    node_filter: Option<String>,
    watch_id: u64,
    req: u64,
}

/// client-go's `wait.Backoff` stepped by an exponential back-off manager:
/// the step doubles up to the cap and resets after a quiet 2 minutes; each
/// wait is jittered by up to 100%.
#[derive(Clone, Copy)]
struct WatchBackoff {
    next: SimDuration,
    last: Option<SimTime>,
}

impl WatchBackoff {
    fn new() -> Self {
        WatchBackoff {
            next: WATCH_BACKOFF_INITIAL,
            last: None,
        }
    }

    fn step(&mut self, now: SimTime, unit: f64) -> SimDuration {
        if self
            .last
            .is_some_and(|t| now.since(t) > WATCH_BACKOFF_RESET)
        {
            self.next = WATCH_BACKOFF_INITIAL;
        }
        self.last = Some(now);
        let d = self.next;
        self.next = (d + d).min(WATCH_BACKOFF_CAP);
        d + SimDuration((unit * d.nanos() as f64) as u64)
    }
}

struct Outstanding {
    /// The caller's tag, returned with the response.
    tag: u64,
    /// When the current attempt was sent, for latency.
    sent: SimTime,
    /// The current attempt's deadline; older deadline timers are ignored.
    deadline: SimTime,
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
    /// Watch streams: a WATCH has no answer to wait for, only batches, so
    /// it leaves `inflight` once sent and is remembered here until its
    /// stream ends.
    watches: Vec<OpenWatch>,
    /// One back-off per watched resource (kind and node filter), as each
    /// upstream Reflector has its own `backoffManager`: one shared by all
    /// of kube-controller-manager's informers reached its 30 s cap within
    /// the first second of an apiserver restart, and left them 30-60 s
    /// stale after a 7 s outage.
    watch_backoff: BTreeMap<(Kind, Option<String>), WatchBackoff>,
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
            watches: Vec::new(),
            watch_backoff: BTreeMap::new(),
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
        self.watches.clear();
        self.watch_backoff.clear();
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
        if req.verb == Verb::Watch {
            self.watches
                .retain(|w| !(w.kind == req.kind && w.node_filter == req.node_filter));
            self.watches.push(OpenWatch {
                kind: req.kind,
                node_filter: req.node_filter.clone(),
                watch_id: req.watch_id,
                req: id,
            });
        }
        self.inflight.insert(
            id,
            Outstanding {
                tag,
                sent: ctx.now,
                deadline: SimTime::MAX,
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
        if o.req.verb == Verb::Watch {
            // A stream, not a request: no deadline; its end is seen as a
            // closed batch (connection lost) or a refusal.
            let o = self.inflight.remove(&id).expect("present");
            send(ctx, self.apiserver, Message::Api(Box::new(o.req)), id);
            return;
        }
        o.deadline = ctx.now.after(self.timeout);
        let mut req = Box::new(o.req.clone());
        req.deadline = o.deadline;
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
        if !self.inflight.contains_key(&resp.id) {
            // Only a watch the server refused (429 while its cache starts)
            // is answered after it left `inflight`: its stream ends.
            self.on_refused(ctx, resp.id);
            return None;
        }
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
        if resp.ok() && o.req.verb.is_mutating() {
            let acked = Observation::Acked {
                client: ctx.me,
                req: &o.req,
                resp,
            };
            ctx.shared.observe(ctx.now, acked);
        } else if resp.code >= 500 && o.req.verb.is_mutating() {
            let unanswered = Observation::Unanswered {
                client: ctx.me,
                req: &o.req,
                code: resp.code,
            };
            ctx.shared.observe(ctx.now, unanswered);
        }
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

    /// The connection was refused: the request failed at once. A refused
    /// watch ends its stream after the reflector's back-off, so the watcher
    /// tries again then (client-go backs off on a refused watch).
    pub fn on_refused(&mut self, ctx: &mut Ctx<'_, Payload, World>, id: u64) -> Option<u64> {
        if let Some(o) = self.inflight.remove(&id) {
            return Some(o.tag);
        }
        if let Some(i) = self.watches.iter().position(|w| w.req == id) {
            let w = self.watches.remove(i);
            let wait = self
                .watch_backoff
                .entry((w.kind, w.node_filter.clone()))
                .or_insert_with(WatchBackoff::new)
                .step(ctx.now, ctx.rng.unit());
            self.end_stream(ctx, w.watch_id, wait);
        }
        None
    }

    /// The connection to the apiserver broke: requests on the wire fail now
    /// (each through its deadline path, so owners see a timeout), and every
    /// watch stream ends; watchers resume at once, as a reflector does when
    /// its result channel closes.
    pub fn on_connection_lost(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        for (&id, o) in self.inflight.iter_mut() {
            // Requests waiting for a token or a Retry-After are not on the wire.
            if o.deadline != SimTime::MAX {
                o.deadline = ctx.now;
                ctx.timer(
                    SimDuration::ZERO,
                    Payload::Timer(Timer::ClientDeadline { req: id }),
                );
            }
        }
        for w in std::mem::take(&mut self.watches) {
            self.end_stream(ctx, w.watch_id, SimDuration::ZERO);
        }
    }

    /// Hands the owner the end of stream `watch_id` after `wait`.
    fn end_stream(&self, ctx: &mut Ctx<'_, Payload, World>, watch_id: u64, wait: SimDuration) {
        let batch = WatchBatch {
            watch_id,
            seq: 0,
            events: Vec::new(),
            gone: false,
            closed: true,
        };
        ctx.deliver_at(
            ctx.me,
            ctx.now.after(wait),
            Payload::Msg {
                from: self.apiserver,
                msg: Message::Watch(Box::new(batch)),
            },
        );
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
            } => finished(self.on_refused(ctx, req), None),
            Payload::Msg {
                from,
                msg: Message::ConnectionLost { stall },
            } if from == self.apiserver => {
                if connection_lost(ctx, from, stall) {
                    self.on_connection_lost(ctx);
                }
                Dispatch::Handled
            }
            other => Dispatch::Other(other),
        }
    }
}
