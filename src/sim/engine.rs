//! The engine: components as actors, driven by one event queue.
//!
//! The engine knows nothing of Kubernetes. It owns the queue, one RNG stream
//! per component, the trace, and each component's liveness. A component sees
//! the world only through the [`Ctx`] it is handed for one event: the clock,
//! its own RNG stream, the trace, the shared services `S` (the network model),
//! and the ability to schedule events. Crashes bump a component's *epoch*;
//! timers and messages addressed to an older epoch are dropped, which is how a
//! crashed kubelet's pending timers die with it without tombstone sets.

use super::digest::{EventLog, EventTag, LoggedEvent, RunDigest};
use super::queue::EventQueue;
use super::rng::RngStream;
use super::time::{SimDuration, SimTime};
use super::trace::Trace;

/// Index of a component in the engine; stable for the whole run.
pub type ComponentId = u32;

/// An event addressed to one incarnation of one component.
pub struct Envelope<P> {
    pub to: ComponentId,
    pub epoch: u32,
    pub payload: P,
}

/// Something that reacts to events.
pub trait Actor<P, S> {
    /// Stable name, used for RNG derivation and in the trace (`kubelet/node-1`).
    fn name(&self) -> &str;
    /// Called once at time zero, and again when a crashed component restarts.
    fn start(&mut self, ctx: &mut Ctx<'_, P, S>);
    /// Handles one event.
    fn handle(&mut self, payload: P, ctx: &mut Ctx<'_, P, S>);
    /// The component's process died: drop everything held in memory.
    fn crash(&mut self, now: SimTime);
    /// The component's process was restarted on a host that kept running
    /// ([`Lifecycle::ContinueRestarted`]): drop what the old process held
    /// in memory and start again, while the host's own work (what the
    /// deferred events carry on) goes on. The default crashes and starts
    /// it, for a component with no such split; one whose deferred timers
    /// would then run twice (tickers) overrides it.
    fn restarted_in_place(&mut self, ctx: &mut Ctx<'_, P, S>) {
        self.crash(ctx.now);
        self.start(ctx);
    }
}

/// A liveness change requested by a component (the scenario driver), applied
/// by the engine after the current event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Crash(ComponentId),
    Restart(ComponentId),
    /// SIGSTOP: the component stays alive (messages to it are accepted,
    /// as a stopped process's kernel still takes TCP segments) but handles
    /// nothing; its events wait, in order, until it continues.
    Stop(ComponentId),
    /// SIGCONT: a stopped component handles what waited, at this instant
    /// and in arrival order, then goes on.
    Continue(ComponentId),
    /// A stopped component's process is replaced by a new one
    /// ([`Actor::restarted_in_place`]), then what waited is handled.
    ContinueRestarted(ComponentId),
}

/// What a component may touch while handling one event.
pub struct Ctx<'a, P, S> {
    pub now: SimTime,
    pub me: ComponentId,
    pub rng: &'a mut RngStream,
    pub trace: &'a mut Trace,
    pub shared: &'a mut S,
    queue: &'a mut EventQueue<Envelope<P>>,
    epochs: &'a [u32],
    alive: &'a [bool],
    stopped: &'a [Option<Vec<Envelope<P>>>],
    names: &'a [String],
    lifecycle: &'a mut Vec<Lifecycle>,
}

impl<P, S> Ctx<'_, P, S> {
    /// Schedules a timer for this component's current incarnation.
    #[inline]
    pub fn timer(&mut self, after: SimDuration, payload: P) {
        let epoch = self.epochs[self.me as usize];
        self.queue.push(
            self.now.after(after),
            Envelope {
                to: self.me,
                epoch,
                payload,
            },
        );
    }

    /// Delivers `payload` to `to` at `at`, addressed to its current
    /// incarnation: if `to` crashes in between, the event is dropped, as a
    /// TCP connection to a dead process would be.
    #[inline]
    pub fn deliver_at(&mut self, to: ComponentId, at: SimTime, payload: P) {
        let epoch = self.epochs[to as usize];
        self.queue.push(at, Envelope { to, epoch, payload });
    }

    /// The incarnation handling this event: what an answer from outside
    /// the engine is addressed to ([`External`]).
    pub fn epoch(&self) -> u32 {
        self.epochs[self.me as usize]
    }

    /// Whether `id` is running now.
    pub fn is_alive(&self, id: ComponentId) -> bool {
        self.alive[id as usize]
    }

    /// Whether `id` is alive but stopped ([`Lifecycle::Stop`]).
    pub fn is_stopped(&self, id: ComponentId) -> bool {
        self.stopped[id as usize].is_some()
    }

    /// The name `id` goes by: what a server learns of a caller from its
    /// connection (the apiserver's user agent in its request spans).
    pub fn name_of(&self, id: ComponentId) -> &str {
        &self.names[id as usize]
    }

    /// Asks the engine to crash or restart a component after this event.
    pub fn lifecycle(&mut self, op: Lifecycle) {
        self.lifecycle.push(op);
    }
}

/// Counters the engine keeps about itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineStats {
    pub events_delivered: u64,
    pub events_dropped: u64,
}

/// A discrete-event engine over payload type `P` and shared services `S`.
pub struct Engine<P, S> {
    queue: EventQueue<Envelope<P>>,
    actors: Vec<Box<dyn Actor<P, S>>>,
    rngs: Vec<RngStream>,
    epochs: Vec<u32>,
    alive: Vec<bool>,
    /// Per component: the events that waited while it was stopped.
    stopped: Vec<Option<Vec<Envelope<P>>>>,
    /// Each component's name, fixed when it is added.
    names: Vec<String>,
    lifecycle: Vec<Lifecycle>,
    pub shared: S,
    pub trace: Trace,
    seed: u64,
    clock: SimTime,
    started: bool,
    pub stats: EngineStats,
    /// Every delivered event folded in: the same for the same run at any
    /// trace level.
    pub digest: RunDigest,
    /// When set, one entry per delivered event (first-divergence checks).
    pub event_log: Option<EventLog>,
}

impl<P, S> Engine<P, S> {
    pub fn new(seed: u64, shared: S, trace: Trace) -> Self {
        Engine {
            queue: EventQueue::new(),
            actors: Vec::new(),
            rngs: Vec::new(),
            epochs: Vec::new(),
            alive: Vec::new(),
            stopped: Vec::new(),
            names: Vec::new(),
            lifecycle: Vec::new(),
            shared,
            trace,
            seed,
            clock: SimTime::ZERO,
            started: false,
            stats: EngineStats::default(),
            digest: RunDigest::default(),
            event_log: None,
        }
    }

    /// Adds a component; its RNG stream derives from its name.
    pub fn add(&mut self, actor: Box<dyn Actor<P, S>>) -> ComponentId {
        let id = self.actors.len() as ComponentId;
        self.rngs.push(RngStream::derive(self.seed, actor.name()));
        self.names.push(actor.name().to_string());
        self.actors.push(actor);
        self.epochs.push(0);
        self.alive.push(true);
        self.stopped.push(None);
        id
    }

    /// Adds a component that is off until a [`Lifecycle::Restart`] starts it
    /// (a machine that joins later).
    pub fn add_down(&mut self, actor: Box<dyn Actor<P, S>>) -> ComponentId {
        let id = self.add(actor);
        self.alive[id as usize] = false;
        id
    }

    /// The current virtual time: the last event delivered, or the horizon a
    /// run stopped at.
    pub fn now(&self) -> SimTime {
        self.clock
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn component_count(&self) -> usize {
        self.actors.len()
    }

    pub fn name_of(&self, id: ComponentId) -> &str {
        &self.names[id as usize]
    }

    pub fn is_alive(&self, id: ComponentId) -> bool {
        self.alive[id as usize]
    }

    /// Schedules an event from outside any component (tests, the harness).
    pub fn inject(&mut self, at: SimTime, to: ComponentId, payload: P) {
        let epoch = self.epochs[to as usize];
        self.queue.push(at, Envelope { to, epoch, payload });
    }

    fn ctx_call(
        &mut self,
        id: ComponentId,
        f: impl FnOnce(&mut dyn Actor<P, S>, &mut Ctx<'_, P, S>),
    ) {
        let i = id as usize;
        let now = self.clock;
        let mut ctx = Ctx {
            now,
            me: id,
            rng: &mut self.rngs[i],
            trace: &mut self.trace,
            shared: &mut self.shared,
            queue: &mut self.queue,
            epochs: &self.epochs,
            alive: &self.alive,
            stopped: &self.stopped,
            names: &self.names,
            lifecycle: &mut self.lifecycle,
        };
        f(self.actors[i].as_mut(), &mut ctx);
    }

    fn start_all(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for id in 0..self.actors.len() as ComponentId {
            if !self.alive[id as usize] {
                continue;
            }
            self.ctx_call(id, |a, ctx| a.start(ctx));
            self.apply_lifecycle();
        }
    }

    fn apply_lifecycle(&mut self) {
        while !self.lifecycle.is_empty() {
            let ops = std::mem::take(&mut self.lifecycle);
            for op in ops {
                match op {
                    Lifecycle::Crash(id) if self.alive[id as usize] => {
                        self.alive[id as usize] = false;
                        self.stopped[id as usize] = None;
                        self.epochs[id as usize] += 1;
                        let now = self.clock;
                        self.actors[id as usize].crash(now);
                    }
                    Lifecycle::Restart(id) if !self.alive[id as usize] => {
                        self.alive[id as usize] = true;
                        self.epochs[id as usize] += 1;
                        self.ctx_call(id, |a, ctx| a.start(ctx));
                    }
                    Lifecycle::Stop(id)
                        if self.alive[id as usize] && self.stopped[id as usize].is_none() =>
                    {
                        self.stopped[id as usize] = Some(Vec::new());
                    }
                    Lifecycle::Continue(id) => self.resume(id, false),
                    Lifecycle::ContinueRestarted(id) => self.resume(id, true),
                    _ => {}
                }
            }
        }
    }

    /// Continues a stopped component (a new process first when
    /// `restarted`): what waited goes back on the queue at this instant, in
    /// the order it arrived, behind nothing else already due now.
    fn resume(&mut self, id: ComponentId, restarted: bool) {
        let Some(waited) = self.stopped[id as usize].take() else {
            return;
        };
        if restarted {
            self.ctx_call(id, |a, ctx| a.restarted_in_place(ctx));
        }
        let now = self.clock;
        for env in waited {
            self.queue.push(now, env);
        }
    }

    /// Runs until the queue is empty or the next event is after `until`.
    /// `progress` is called every `1 << 16` events with the current time.
    /// May be called again with a later `until` to go on.
    pub fn run_until(&mut self, until: SimTime, mut progress: impl FnMut(SimTime))
    where
        P: EventTag,
    {
        self.start_all();
        let mut n: u64 = 0;
        while let Some((t, seq, env)) = self.queue.pop() {
            if t > until {
                self.queue.unpop(t, seq, env);
                self.clock = self.clock.max(until);
                break;
            }
            self.deliver(t, env);
            n += 1;
            if n & 0xFFFF == 0 {
                progress(self.clock);
            }
        }
    }

    /// Runs on the wall clock a [`Pacer`] keeps, until real time reaches
    /// `until` (live mode: virtual time is real time). Each event is
    /// handled once its instant has come; what arrives from outside (a
    /// container runtime's answer) is queued at the real instant it
    /// arrived, addressed to the incarnation that asked, so an answer to a
    /// crashed kubelet is dropped like any of its timers.
    pub fn run_paced(&mut self, until: SimTime, pacer: &mut dyn Pacer<P>)
    where
        P: EventTag,
    {
        self.start_all();
        loop {
            let next = self.queue.peek_time();
            let now = pacer.now();
            if let Some(t) = next.filter(|t| *t <= now && *t <= until) {
                let (t2, _, env) = self.queue.pop().expect("peeked");
                debug_assert_eq!(t, t2);
                self.deliver(t2, env);
                continue;
            }
            if now >= until || pacer.interrupted() {
                self.clock = self.clock.max(now.min(until));
                return;
            }
            let deadline = next.map_or(until, |t| t.min(until));
            for e in pacer.wait(deadline) {
                let at = pacer.now().max(self.clock);
                self.queue.push(
                    at,
                    Envelope {
                        to: e.to,
                        epoch: e.epoch,
                        payload: e.payload,
                    },
                );
            }
        }
    }

    /// Hands one due event to its component (or drops it, for a crashed
    /// or replaced incarnation; or holds it, for a stopped one).
    fn deliver(&mut self, t: SimTime, env: Envelope<P>)
    where
        P: EventTag,
    {
        self.clock = t;
        let i = env.to as usize;
        if !self.alive[i] || env.epoch != self.epochs[i] {
            self.stats.events_dropped += 1;
            return;
        }
        if let Some(waiting) = &mut self.stopped[i] {
            waiting.push(env);
            return;
        }
        self.stats.events_delivered += 1;
        let tag = env.payload.tag();
        self.digest.event(t, env.to, env.epoch, tag);
        if let Some(log) = &mut self.event_log {
            log.events.push(LoggedEvent {
                at: t,
                to: env.to,
                epoch: env.epoch,
                tag,
                kind: env.payload.kind(),
            });
        }
        self.ctx_call(env.to, |a, ctx| a.handle(env.payload, ctx));
        if !self.lifecycle.is_empty() {
            self.apply_lifecycle();
        }
    }
}

/// Something from outside the engine for one component incarnation: what
/// a [`Pacer`] hands back.
pub struct External<P> {
    pub to: ComponentId,
    pub epoch: u32,
    pub payload: P,
}

/// The wall clock of a live run (src/live): the only place real time
/// enters the engine. A simulated run never has one.
pub trait Pacer<P> {
    /// Real time since the run began, as virtual time.
    fn now(&mut self) -> SimTime;
    /// Blocks until real time reaches `deadline` or something arrives from
    /// outside, whichever is first; returns what arrived (maybe nothing).
    /// It may return early with nothing (to let the run look at
    /// [`Pacer::interrupted`]).
    fn wait(&mut self, deadline: SimTime) -> Vec<External<P>>;
    /// The run is to end now (Ctrl-C), before its horizon.
    fn interrupted(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::trace::{TraceLevel, TraceSink};

    impl EventTag for u32 {
        fn tag(&self) -> u64 {
            u64::from(*self)
        }
        fn kind(&self) -> &'static str {
            "n"
        }
    }

    impl EventTag for () {
        fn tag(&self) -> u64 {
            0
        }
        fn kind(&self) -> &'static str {
            "unit"
        }
    }

    struct Pinger {
        name: String,
        peer: ComponentId,
        got: u32,
    }

    impl Actor<u32, Vec<String>> for Pinger {
        fn name(&self) -> &str {
            &self.name
        }
        fn start(&mut self, ctx: &mut Ctx<'_, u32, Vec<String>>) {
            if self.name == "a" {
                let at = ctx.now.after(SimDuration::from_millis(1));
                ctx.deliver_at(self.peer, at, 1);
            }
        }
        fn handle(&mut self, n: u32, ctx: &mut Ctx<'_, u32, Vec<String>>) {
            self.got += 1;
            ctx.shared
                .push(format!("{}@{}:{}", self.name, ctx.now.0, n));
            if n < 5 {
                let d = SimDuration(1 + ctx.rng.range_inclusive(0, 1000));
                let at = ctx.now.after(d);
                ctx.deliver_at(self.peer, at, n + 1);
            }
        }
        fn crash(&mut self, _now: SimTime) {
            self.got = 0;
        }
    }

    fn run(seed: u64) -> Vec<String> {
        let trace = Trace::new(TraceLevel::Faults, TraceSink::Discard);
        let mut e: Engine<u32, Vec<String>> = Engine::new(seed, Vec::new(), trace);
        e.add(Box::new(Pinger {
            name: "a".into(),
            peer: 1,
            got: 0,
        }));
        e.add(Box::new(Pinger {
            name: "b".into(),
            peer: 0,
            got: 0,
        }));
        e.run_until(SimTime::MAX, |_| {});
        e.shared
    }

    #[test]
    fn same_seed_same_history_other_seed_differs() {
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert_eq!(run(1).len(), 5);
    }

    #[test]
    fn timers_of_a_crashed_incarnation_are_dropped() {
        struct T(u32);
        impl Actor<(), u32> for T {
            fn name(&self) -> &str {
                "t"
            }
            fn start(&mut self, ctx: &mut Ctx<'_, (), u32>) {
                ctx.timer(SimDuration::from_secs(1), ());
                if self.0 == 0 {
                    ctx.lifecycle(Lifecycle::Crash(ctx.me));
                }
            }
            fn handle(&mut self, _: (), ctx: &mut Ctx<'_, (), u32>) {
                *ctx.shared += 1;
            }
            fn crash(&mut self, _now: SimTime) {}
        }
        let trace = Trace::new(TraceLevel::Faults, TraceSink::Discard);
        let mut e: Engine<(), u32> = Engine::new(0, 0, trace);
        e.add(Box::new(T(0)));
        e.run_until(SimTime::MAX, |_| {});
        assert_eq!(e.shared, 0);
        assert_eq!(e.stats.events_dropped, 1);
    }

    /// A ticker every second, and a controller that stops it at 2.5 s and
    /// continues it at 5.5 s (restarting it in place when `restart`).
    struct Ticker;

    impl Actor<u32, Vec<(u64, u32)>> for Ticker {
        fn name(&self) -> &str {
            "ticker"
        }
        fn start(&mut self, ctx: &mut Ctx<'_, u32, Vec<(u64, u32)>>) {
            ctx.timer(SimDuration::from_secs(1), 0);
        }
        fn handle(&mut self, n: u32, ctx: &mut Ctx<'_, u32, Vec<(u64, u32)>>) {
            ctx.shared.push((ctx.now.0 / 100_000_000, n));
            ctx.timer(SimDuration::from_secs(1), n + 1);
        }
        fn crash(&mut self, _now: SimTime) {}
        fn restarted_in_place(&mut self, ctx: &mut Ctx<'_, u32, Vec<(u64, u32)>>) {
            ctx.shared.push((ctx.now.0 / 100_000_000, RESTARTED));
        }
    }

    struct Signaller {
        target: ComponentId,
        restart: bool,
    }

    impl Actor<u32, Vec<(u64, u32)>> for Signaller {
        fn name(&self) -> &str {
            "signaller"
        }
        fn start(&mut self, ctx: &mut Ctx<'_, u32, Vec<(u64, u32)>>) {
            ctx.timer(SimDuration::from_millis(2500), 0);
            ctx.timer(SimDuration::from_millis(5500), 1);
        }
        fn handle(&mut self, n: u32, ctx: &mut Ctx<'_, u32, Vec<(u64, u32)>>) {
            let t = self.target;
            ctx.lifecycle(match (n, self.restart) {
                (0, _) => Lifecycle::Stop(t),
                (_, false) => Lifecycle::Continue(t),
                (_, true) => Lifecycle::ContinueRestarted(t),
            });
        }
        fn crash(&mut self, _now: SimTime) {}
    }

    const RESTARTED: u32 = 999;

    fn stopped_run(restart: bool) -> Vec<(u64, u32)> {
        let trace = Trace::new(TraceLevel::Faults, TraceSink::Discard);
        let mut e: Engine<u32, Vec<(u64, u32)>> = Engine::new(0, Vec::new(), trace);
        let t = e.add(Box::new(Ticker));
        e.add(Box::new(Signaller { target: t, restart }));
        e.run_until(SimTime::ZERO.after(SimDuration::from_millis(7200)), |_| {});
        assert!(e.is_alive(t));
        e.shared
    }

    #[test]
    fn a_stopped_component_handles_what_waited_when_it_continues() {
        // Ticks at 1 s and 2 s; the 3 s tick waits through the stop and is
        // handled at 5.5 s, and the ticker goes on a second after that:
        // 6.5 s, then nothing more before 7.2 s. In tenths of a second:
        let ticks = stopped_run(false);
        assert_eq!(ticks, vec![(10, 0), (20, 1), (55, 2), (65, 3)]);
        // Restarted in place: the new process starts at 5.5 s first, then
        // the waiting events still come (they are the host's; the
        // component decides what its new process drops).
        let again = stopped_run(true);
        assert_eq!(
            again,
            vec![(10, 0), (20, 1), (55, RESTARTED), (55, 2), (65, 3)]
        );
    }

    /// A wall clock under the test's control: `wait` jumps to the deadline
    /// or to the next scripted arrival, whichever is first.
    struct ScriptedClock {
        now: SimTime,
        arrivals: Vec<(SimTime, u32)>,
        waits: u32,
    }

    impl Pacer<u32> for ScriptedClock {
        fn now(&mut self) -> SimTime {
            self.now
        }
        fn wait(&mut self, deadline: SimTime) -> Vec<External<u32>> {
            self.waits += 1;
            match self.arrivals.first() {
                Some(&(at, n)) if at <= deadline => {
                    self.arrivals.remove(0);
                    self.now = at;
                    vec![External {
                        to: 0,
                        epoch: 0,
                        payload: n,
                    }]
                }
                _ => {
                    self.now = deadline;
                    Vec::new()
                }
            }
        }
    }

    #[test]
    fn a_paced_run_handles_timers_when_due_and_arrivals_when_they_come() {
        // The ticker's timers are due at 1 s and 2 s; an answer from
        // outside arrives at 1.5 s and is handled then, between them; the
        // run stops at 2.2 s with the 3 s tick still queued.
        let trace = Trace::new(TraceLevel::Faults, TraceSink::Discard);
        let mut e: Engine<u32, Vec<(u64, u32)>> = Engine::new(0, Vec::new(), trace);
        e.add(Box::new(Ticker));
        let mut clock = ScriptedClock {
            now: SimTime::ZERO,
            arrivals: vec![(SimTime::ZERO.after(SimDuration::from_millis(1500)), 77)],
            waits: 0,
        };
        let until = SimTime::ZERO.after(SimDuration::from_millis(2200));
        e.run_paced(until, &mut clock);
        // In tenths of a second: tick 0 at 1 s; the arrival (77) at 1.5 s,
        // which the ticker also answers with a timer a second later (2.5 s,
        // after the horizon); tick 1 at 2 s.
        assert_eq!(e.shared, vec![(10, 0), (15, 77), (20, 1)]);
        assert_eq!(e.now(), until);
        // Waits: to 1 s, to 1.5 s (arrival, before the 2 s tick), to 2 s,
        // to 2.2 s: four.
        assert_eq!(clock.waits, 4);
        assert_eq!(e.pending(), 2);
    }
}
