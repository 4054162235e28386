//! The workload submitter: one API client outside the cluster (a batch
//! front end, a trace replayer) that creates each generated or imported
//! object at its arrival time, through the modelled apiserver with its own
//! rate limit, and deletes the imported tasks their owners gave up on.
//!
//! It keeps one timer per source, for that source's next arrival, so a
//! trace of 10⁶ tasks is never 10⁶ queued arrivals (a task its owner gave
//! up on gets its deletion timer when it is created). A create that gets no
//! answer (timeout, refused connection, 5xx) is sent again after a capped
//! exponential back-off, as a submitter that must not lose work does; an
//! `AlreadyExists` on a resend means the first attempt was committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::arrival::Arrivals;
use super::{generator::Generator, TaskImport, Workload};
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::model::client::{ApiClient, Dispatch};
use crate::model::msg::{Payload, Timer};
use crate::model::world::World;
use crate::sim::{Actor, ComponentId, Ctx, SimDuration, SimTime, TraceLevel};

/// The submitter's component name (its RNG stream and trace lines).
pub const NAME: &str = "workload";

/// Request timeout: the apiserver's own 60 s.
const REQUEST_TIMEOUT: SimDuration = SimDuration::from_secs(60);
/// Back-off of a resent create: 1 s doubling to 32 s.
const RETRY_FIRST: SimDuration = SimDuration::from_secs(1);
const RETRY_CAP: SimDuration = SimDuration::from_secs(32);

/// Where one source is.
enum SourceRun {
    Generator {
        gen: Arc<Generator>,
        arrivals: Arrivals,
        made: u64,
        /// The arrival the pending timer is for.
        next: Option<SimTime>,
    },
    Tasks {
        import: Arc<TaskImport>,
        next: usize,
    },
}

/// A request in flight.
struct Pending {
    verb: Verb,
    namespace: String,
    name: String,
    /// What a create sends.
    body: Option<Arc<Object>>,
    attempts: u32,
}

pub struct WorkloadSubmitter {
    client: ApiClient,
    sources: Vec<SourceRun>,
    pending: BTreeMap<u64, Pending>,
    /// Creates waiting out their back-off.
    retrying: BTreeMap<u64, Pending>,
    next_tag: u64,
}

impl WorkloadSubmitter {
    pub fn new(apiserver: ComponentId, workload: &Workload) -> Self {
        let mut sources = Vec::new();
        for g in &workload.generators {
            sources.push(SourceRun::Generator {
                gen: g.clone(),
                arrivals: g.arrivals(),
                made: 0,
                next: None,
            });
        }
        for i in &workload.imports {
            sources.push(SourceRun::Tasks {
                import: i.clone(),
                next: 0,
            });
        }
        WorkloadSubmitter {
            client: ApiClient::new(apiserver, workload.client, REQUEST_TIMEOUT),
            sources,
            pending: BTreeMap::new(),
            retrying: BTreeMap::new(),
            next_tag: 1,
        }
    }

    /// Arms source `s`'s timer for its next arrival, if it has one.
    fn arm(&mut self, ctx: &mut Ctx<'_, Payload, World>, s: usize) {
        let at = match &mut self.sources[s] {
            SourceRun::Generator {
                gen,
                arrivals,
                made,
                next,
            } => {
                *next = arrivals.next(ctx.rng).filter(|t| gen.wants(*t, *made));
                *next
            }
            SourceRun::Tasks { import, next } => import.tasks.get(*next).map(|t| t.at),
        };
        if let Some(at) = at {
            let source = s as u32;
            ctx.timer(
                at.max(ctx.now).since(ctx.now),
                Payload::Timer(Timer::WorkloadArrival { source }),
            );
        }
    }

    /// Source `s`'s arrival is due: create what arrived (every task due at
    /// this instant), then arm the next.
    fn on_arrival(&mut self, ctx: &mut Ctx<'_, Payload, World>, s: usize) {
        let mut made = Vec::new();
        match &mut self.sources[s] {
            SourceRun::Generator { gen, made: n, .. } => {
                *n += 1;
                let draw = gen.draw(ctx.rng);
                made.push((gen.template.make(&gen.object_name(*n), &draw), None));
            }
            SourceRun::Tasks { import, next } => {
                while let Some(t) = import.tasks.get(*next).filter(|t| t.at <= ctx.now) {
                    let obj = import
                        .template
                        .make(import.tasks.name(*next), &import.tasks.draw(*next));
                    made.push((obj, t.delete_at.map(|d| (d, *next as u32))));
                    *next += 1;
                }
            }
        }
        for (obj, delete) in made {
            match obj {
                Ok(o) => self.create(ctx, Arc::new(o)),
                Err(why) => self.failed(ctx, "make", &why),
            }
            if let Some((at, task)) = delete {
                let source = s as u32;
                let wait = at.max(ctx.now).since(ctx.now);
                ctx.timer(wait, Payload::Timer(Timer::WorkloadDelete { source, task }));
            }
        }
        self.arm(ctx, s);
    }

    fn create(&mut self, ctx: &mut Ctx<'_, Payload, World>, object: Arc<Object>) {
        ctx.shared.stats.workload.submitted += 1;
        let p = Pending {
            verb: Verb::Create,
            namespace: object.meta.namespace.clone(),
            name: object.meta.name.clone(),
            body: Some(object),
            attempts: 0,
        };
        self.send(ctx, p);
    }

    fn send(&mut self, ctx: &mut Ctx<'_, Payload, World>, mut p: Pending) {
        let kind = p.body.as_ref().map_or(Kind::Pod, |o| o.kind);
        let mut req = ApiRequest::new(p.verb, kind, &p.namespace, &p.name);
        req.body = p.body.clone();
        p.attempts += 1;
        let tag = self.next_tag;
        self.next_tag += 1;
        self.client.request(ctx, req, tag);
        self.pending.insert(tag, p);
    }

    /// Task `task` of source `s` reached its deletion time.
    fn on_delete(&mut self, ctx: &mut Ctx<'_, Payload, World>, s: usize, task: usize) {
        let SourceRun::Tasks { import, .. } = &self.sources[s] else {
            return;
        };
        let p = Pending {
            verb: Verb::Delete,
            namespace: import.template.namespace.clone(),
            name: import.tasks.name(task).to_string(),
            body: None,
            attempts: 0,
        };
        self.send(ctx, p);
    }

    fn on_finished(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        tag: u64,
        resp: Option<Box<ApiResponse>>,
    ) {
        let Some(p) = self.pending.remove(&tag) else {
            return;
        };
        let code = resp.as_ref().map_or(0, |r| r.code);
        let stats = &mut ctx.shared.stats.workload;
        match (p.verb, code) {
            (Verb::Create, 200..=299) => stats.created += 1,
            // A resend of a create the apiserver had committed.
            (Verb::Create, 409) if p.attempts > 1 => stats.created += 1,
            (Verb::Delete, 200..=299) => stats.deleted += 1,
            // Deleted already (it finished, or PodGC took it).
            (Verb::Delete, 404) => {}
            // No answer, a 5xx, or a 429 the client's own retries did not
            // get past: the work must not be lost.
            (_, 0) | (_, 429) | (_, 500..) => {
                stats.retries += 1;
                let wait = backoff(p.attempts);
                self.retrying.insert(tag, p);
                ctx.timer(wait, Payload::Timer(Timer::WorkloadRetry { tag }));
            }
            (verb, _) => {
                let why = resp
                    .map(|r| format!("{} {}: {}", r.code, r.reason, r.message))
                    .unwrap_or_default();
                self.failed(ctx, verb.as_str(), &why);
            }
        }
    }

    fn failed(&mut self, ctx: &mut Ctx<'_, Payload, World>, what: &str, why: &str) {
        ctx.shared.stats.workload.refused += 1;
        ctx.trace
            .record(TraceLevel::Events, ctx.now, NAME, "SubmitFailed", |r| {
                r.str("request", what).str("reason", why);
            });
    }
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 32 s.
fn backoff(attempts: u32) -> SimDuration {
    let shift = attempts.saturating_sub(1).min(5);
    SimDuration(RETRY_FIRST.0 << shift).min(RETRY_CAP)
}

impl Actor<Payload, World> for WorkloadSubmitter {
    fn name(&self) -> &str {
        NAME
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        for s in 0..self.sources.len() {
            self.arm(ctx, s);
        }
    }

    fn handle(&mut self, payload: Payload, ctx: &mut Ctx<'_, Payload, World>) {
        let payload = match self.client.dispatch(ctx, payload) {
            Dispatch::Handled => return,
            Dispatch::Finished(tag, resp) => return self.on_finished(ctx, tag, resp),
            Dispatch::Other(p) => p,
        };
        match payload {
            Payload::Timer(Timer::WorkloadArrival { source }) => {
                self.on_arrival(ctx, source as usize)
            }
            Payload::Timer(Timer::WorkloadDelete { source, task }) => {
                self.on_delete(ctx, source as usize, task as usize)
            }
            Payload::Timer(Timer::WorkloadRetry { tag }) => {
                if let Some(p) = self.retrying.remove(&tag) {
                    self.send(ctx, p);
                }
            }
            _ => {}
        }
    }

    fn crash(&mut self, _now: SimTime) {
        // The submitter stands outside the cluster and is never crashed.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_back_off_from_one_second_to_thirty_two() {
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a).0 / 1_000_000_000).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 32, 32]);
    }
}
