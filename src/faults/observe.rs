//! What the invariant checkers see of a run: [`Observation`]s handed to
//! them at fixed points in the model (a committed write, an election, an
//! acknowledged request, a watch delivery, a pod admitted…).
//!
//! Why observations and not the trace: a fuzzer runs at the cheapest trace
//! level, where the trace holds little, and a checker needs the objects
//! themselves; an observation passes a reference, costs nothing when no
//! checker runs (one branch on [`World::checks`]) and never reaches back
//! into the component that made it. Checkers only read what they are
//! handed and the world's final etcd state at their deadlines.
//!
//! [`World::checks`]: crate::model::world::World::checks

use crate::model::etcd::store::WatchedChange;
use crate::sim::{ComponentId, SimTime};

/// One thing that happened, as a checker sees it.
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    /// etcd applied a change for the first time (the group's history:
    /// every revision once, in order).
    Committed(&'a WatchedChange),
    /// A member won an election.
    LeaderElected { member: ComponentId, term: u64 },
}

/// A trace record a violation points at, found again in a `full` replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef {
    pub at: SimTime,
    /// The record's `event` (`Write`, `RaftLeaderElected`, `Request`…).
    pub event: &'static str,
    /// Its `key` field (an object key), when it has one.
    pub key: Option<String>,
    /// Its `rv` field, when it has one.
    pub rv: Option<u64>,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name (the file it lives in).
    pub checker: &'static str,
    /// Virtual time the invariant was seen broken.
    pub at: SimTime,
    /// The objects involved, as keys (`pods/default/web-0`) or component names.
    pub objects: Vec<String>,
    /// What was wrong, in a sentence.
    pub message: String,
    /// The records of a `full` trace that show it.
    pub records: Vec<RecordRef>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {}: {}",
            self.checker,
            self.at,
            self.message
        )?;
        if !self.objects.is_empty() {
            write!(f, " [{}]", self.objects.join(", "))?;
        }
        Ok(())
    }
}
