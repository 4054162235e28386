//! Faults drawn from a run's seed, and (later) the invariants a faulted
//! run is checked against.
//!
//! What lives here: `profile` (the scenario's `faults:` section, decoded
//! strictly and checked against the cluster), `schedule` (the faults one
//! seed draws, on one RNG stream per kind, as ordinary timeline steps) and
//! `repro` (the scenario with the drawn faults written out as explicit
//! timeline entries, which reruns to the same trace). Invariant checkers
//! for `kubesim fuzz` go here too, one file per invariant.
//!
//! What must not: injecting a fault. The drawn steps are the same
//! `crashNode`/`partition`/… actions a hand-written timeline holds, played
//! by the scenario driver; nothing here touches the engine, the network or
//! a component.

pub mod checkers;
pub mod network_workload;
pub mod observe;
pub mod process_kinds;
pub mod profile;
pub mod replay;
pub mod repro;
pub mod schedule;
pub mod shrink;
pub mod swarm;

pub use checkers::Checks;
pub use observe::{Observation, RecordRef, Violation};
pub use profile::{FaultKind, FaultProfile};
pub use schedule::{draw, DrawnFault, Schedule};

use crate::scenario::{Scenario, Step};

/// The timeline `scenario` plays with `seed`: its own steps, and, when it
/// has a `faults:` section, the drawn faults' steps after them, ordered by
/// time and then by that sequence (the order the loader gives a repro's
/// entries, which follow the scenario's own).
pub fn timeline(scenario: &Scenario, seed: u64) -> Vec<Step> {
    let mut steps = scenario.timeline.clone();
    if let Some(profile) = &scenario.faults {
        steps.extend(draw(profile, seed).steps());
        steps.sort_by_key(|s| s.at);
    }
    steps
}
