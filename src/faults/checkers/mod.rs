//! The invariant checkers of `kubesim fuzz`, one file per invariant.
//!
//! A checker is an observer: it is handed [`Observation`]s as the run makes
//! them, and the world (for the etcd group's applied state) at its
//! deadlines, and records [`Violation`]s. It never calls into, or changes,
//! the component it checks: a checker that shares code with the checked
//! component would agree with its bugs.
//!
//! Safety checkers look at every observation; liveness checkers look once,
//! at the liveness deadline (the last fault's heal plus the bound).
//!
//! Safety: `single_binding`, `allocatable`, `revisions` (resourceVersions
//! grow, watch streams in order), `acked_writes`, `statefulset_identity`,
//! `pdb_floor`, `deployment_bounds`, `replicaset_bound`, `etcd_leader`.
//! Liveness: `liveness_nodes`, `liveness_workloads`,
//! `liveness_terminating`, `liveness_pending`. `read` holds what they read
//! off objects, written for them.

pub mod acked_writes;
pub mod allocatable;
pub mod deployment_bounds;
pub mod etcd_leader;
pub mod liveness_nodes;
pub mod liveness_pending;
pub mod liveness_terminating;
pub mod liveness_workloads;
pub mod pdb_floor;
pub mod read;
pub mod replicaset_bound;
pub mod revisions;
pub mod single_binding;
pub mod statefulset_identity;

use super::observe::{Observation, Violation};
use crate::model::world::World;
use crate::scenario::Scenario;
use crate::sim::SimTime;

/// At most this many violations are kept per checker: the first one is
/// what a person reads, the rest only show it repeats.
pub const KEEP_PER_CHECKER: usize = 8;

/// One invariant.
pub trait Checker {
    /// The checker's name, as the fuzz table and a violation show it.
    fn name(&self) -> &'static str;
    /// Sees one observation; pushes what it finds broken.
    fn observe(&mut self, _at: SimTime, _o: &Observation<'_>, _out: &mut Vec<Violation>) {}
    /// The liveness deadline has come: every fault healed a bound ago.
    fn at_deadline(&mut self, _at: SimTime, _world: &World, _out: &mut Vec<Violation>) {}
    /// The run ended at `at`.
    fn finish(&mut self, _at: SimTime, _world: &World, _out: &mut Vec<Violation>) {}
}

/// Every checker of a run, and what they found.
pub struct Checks {
    checkers: Vec<Box<dyn Checker>>,
    found: Vec<Violation>,
    scratch: Vec<Violation>,
}

impl Checks {
    /// The checkers for `scenario`.
    pub fn for_scenario(scenario: &Scenario) -> Self {
        let nodes = scenario
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.join_at.unwrap_or(SimTime::ZERO)))
            .collect();
        Checks::with(vec![
            Box::new(single_binding::SingleBinding::default()),
            Box::new(allocatable::Allocatable::default()),
            Box::new(revisions::Revisions::default()),
            Box::new(acked_writes::AckedWrites::default()),
            Box::new(statefulset_identity::StatefulSetIdentity::default()),
            Box::new(pdb_floor::PdbFloor::default()),
            Box::new(deployment_bounds::DeploymentBounds::default()),
            Box::new(replicaset_bound::ReplicaSetBound::default()),
            Box::new(etcd_leader::OneLeaderPerTerm::default()),
            Box::new(liveness_nodes::NodesReady::new(nodes)),
            Box::new(liveness_workloads::WorkloadsReady),
            Box::new(liveness_terminating::NoneStuckTerminating),
            Box::new(liveness_pending::NoPendingThatFits),
        ])
    }

    pub fn with(checkers: Vec<Box<dyn Checker>>) -> Self {
        Checks {
            checkers,
            found: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The checkers' names, in the order they run.
    pub fn names(&self) -> Vec<&'static str> {
        self.checkers.iter().map(|c| c.name()).collect()
    }

    /// Hands `o` to every checker.
    #[inline]
    pub fn observe(&mut self, at: SimTime, o: Observation<'_>) {
        for c in &mut self.checkers {
            c.observe(at, &o, &mut self.scratch);
        }
        if !self.scratch.is_empty() {
            self.keep();
        }
    }

    pub fn at_deadline(&mut self, at: SimTime, world: &World) {
        for c in &mut self.checkers {
            c.at_deadline(at, world, &mut self.scratch);
        }
        self.keep();
    }

    /// Ends the run's checks; the violations in the order they were found.
    pub fn finish(mut self, at: SimTime, world: &World) -> Vec<Violation> {
        for c in &mut self.checkers {
            c.finish(at, world, &mut self.scratch);
        }
        self.keep();
        self.found
    }

    fn keep(&mut self) {
        for v in self.scratch.drain(..) {
            let same = self.found.iter().filter(|f| f.checker == v.checker);
            if same.count() < KEEP_PER_CHECKER {
                self.found.push(v);
            }
        }
    }
}
