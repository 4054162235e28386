//! Running a loaded scenario to its horizon and summarising it.

use std::io;

use super::build::{build, Layout};
use super::Scenario;
use crate::faults::{Checks, Violation};
use crate::model::msg::Payload;
use crate::model::world::World;
use crate::report::summary::{NotReached, RunFacts, Summary};
use crate::sim::{
    Engine, EventLog, Pacer, SimDuration, SimTime, Trace, TraceLevel, TraceObserver, TraceSink,
};

/// How to run: overrides of the scenario's own settings.
pub struct RunOptions {
    pub seed: Option<u64>,
    pub until: Option<SimDuration>,
    pub trace_level: TraceLevel,
    pub sink: TraceSink,
    /// Sees each trace line as it is written (the narrator).
    pub observer: Option<TraceObserver>,
    /// Run the invariant checkers ([`crate::faults::checkers`]).
    pub checks: bool,
    /// Keep one entry per delivered event, to find where two runs part.
    pub event_log: bool,
    /// Live mode: run on this wall clock instead of as fast as possible
    /// (the scenario's kubelets then drive a real runtime; `src/live`).
    pub pacer: Option<Box<dyn Pacer<Payload>>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: None,
            until: None,
            trace_level: TraceLevel::Full,
            sink: TraceSink::Discard,
            observer: None,
            checks: false,
            event_log: false,
            pacer: None,
        }
    }
}

/// A finished run: its summary, and the engine for whoever wants to look
/// at the final state (tests, reports).
pub struct Finished {
    pub summary: Summary,
    pub engine: Engine<Payload, World>,
    pub layout: Layout,
    /// What the checkers found, in the order found (empty unless checked).
    pub violations: Vec<Violation>,
    /// When the liveness checkers looked; `None` when the run ended first.
    pub liveness_checked_at: Option<SimTime>,
}

/// The timeline actions after `end`: the engine runs events at or before
/// it, so these were never issued.
fn not_reached(scenario: &Scenario, end: SimTime) -> Vec<NotReached> {
    scenario
        .timeline
        .iter()
        .filter(|s| s.at > end)
        .filter_map(|s| {
            Some(NotReached {
                at_s: s.at.0 as f64 / 1e9,
                line: s.line,
                action: s.action.as_ref()?.to_string(),
            })
        })
        .collect()
}

/// Runs `scenario`; `progress` is called now and then with virtual time.
pub fn run(
    scenario: &Scenario,
    opts: RunOptions,
    progress: impl FnMut(SimTime),
) -> io::Result<Finished> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let horizon = opts.until.unwrap_or(scenario.duration);
    let mut trace = Trace::new(opts.trace_level, opts.sink);
    if let Some(o) = opts.observer {
        trace.observe(o);
    }
    let (mut engine, layout) = build(scenario, seed, trace);
    let until = SimTime::ZERO.after(horizon);
    if opts.event_log {
        engine.event_log = Some(EventLog::default());
    }
    let mut liveness_checked_at = None;
    let mut progress = progress;
    if opts.checks {
        engine.shared.checks = Some(Box::new(Checks::for_scenario(scenario)));
        let steps = crate::faults::timeline(scenario, seed);
        let deadline = super::liveness_deadline(&steps, scenario.liveness_bound);
        if deadline <= until {
            engine.run_until(deadline, &mut progress);
            if let Some(c) = &mut engine.shared.checks {
                // Taken out and put back: the checkers read the world.
                let mut c = std::mem::replace(c, Box::new(Checks::with(Vec::new())));
                c.at_deadline(deadline, &engine.shared);
                engine.shared.checks = Some(c);
            }
            liveness_checked_at = Some(deadline);
        }
    }
    let until = match opts.pacer {
        Some(mut pacer) => {
            engine.run_paced(until, pacer.as_mut());
            // Interrupted (Ctrl-C), a live run ends where it was.
            engine.now()
        }
        None => {
            engine.run_until(until, &mut progress);
            until
        }
    };
    let violations = match engine.shared.checks.take() {
        Some(c) => c.finish(until, &engine.shared),
        None => Vec::new(),
    };
    // A closing record of the run's totals, at every level: even a trace
    // that keeps only faults then has a digest that moves when anything in
    // the run does.
    let events = engine.stats.events_delivered;
    let world = &engine.shared;
    let (revision, messages) = (world.etcd.revision(), world.net.sent);
    let requests: u64 = world.stats.api_codes.values().sum();
    engine
        .trace
        .record(TraceLevel::Faults, until, "kubesim", "RunEnd", |r| {
            r.u64("events", events)
                .u64("etcd_revision", revision)
                .u64("messages", messages)
                .u64("api_responses", requests);
        });
    engine.trace.finish()?;
    let kubelets_down = (layout
        .kubelets
        .values()
        .filter(|id| !engine.is_alive(**id))
        .count() as u64)
        .saturating_sub(engine.shared.stats.autoscaler.machines_off);
    let facts = RunFacts {
        scenario: &scenario.name,
        description: &scenario.description,
        seed,
        simulated_s: horizon.as_secs_f64(),
        end: until,
        digest: engine.digest.hex(),
        trace_digest: engine.trace.digest(),
        trace_records: engine.trace.records(),
        events: engine.stats.events_delivered,
        etcd_members: scenario.etcd_members,
        kubelets_down,
        network_messages: engine.shared.net.sent,
        network_lost: engine.shared.net.dropped,
        network_retransmitted: engine.shared.net.retransmitted,
        report: &scenario.report,
        warnings: &scenario.warnings,
        not_reached: not_reached(scenario, until),
    };
    let mut summary = Summary::new(facts, &engine.shared.stats, &engine.shared.etcd);
    if opts.checks {
        summary.violations = Some(violations.iter().map(|v| v.to_string()).collect());
    }
    Ok(Finished {
        summary,
        engine,
        layout,
        violations,
        liveness_checked_at,
    })
}
