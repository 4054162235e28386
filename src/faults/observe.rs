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

use crate::api::resources::ResourceList;
use crate::api::Object;
use crate::model::apiserver::request::{ApiRequest, ApiResponse, WatchEvent};
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
    /// A client was answered 2xx to a mutating request (the request as it
    /// sent it, the answer as it arrived).
    Acked {
        client: ComponentId,
        req: &'a ApiRequest,
        resp: &'a ApiResponse,
    },
    /// A client was answered 5xx to a mutating request: the outcome is
    /// unknown to it (the apiserver lost etcd mid-write, or timed out), so
    /// the write may have committed although the client counts it failed.
    Unanswered {
        client: ComponentId,
        req: &'a ApiRequest,
        code: u16,
    },
    /// A watch stream's batch, in sequence, that its owner goes on to apply:
    /// `consumer` and `watch_id` name the stream (a new id is a new stream);
    /// `filtered` when it carries only part of the kind (a node's pods).
    WatchDelivered {
        consumer: ComponentId,
        watch_id: u64,
        filtered: bool,
        events: &'a [WatchEvent],
    },
    /// A kubelet admitted a pod: its requests count against the node's
    /// `allocatable` until [`PodReleased`](Self::PodReleased).
    PodAdmitted {
        node: &'a str,
        pod: &'a Object,
        allocatable: &'a ResourceList,
    },
    /// A kubelet started the pod's containers (first start or a restart).
    PodStarted { node: &'a str, pod: &'a Object },
    /// A kubelet is done with the pod: its containers have stopped (it
    /// finished, terminated, or was forgotten after its deletion).
    PodReleased { node: &'a str, pod: &'a Object },
    /// The eviction subresource passed the point of no return for `pod`
    /// (the pod as the apiserver read it): the pod's delete goes next.
    EvictionAccepted { pod: &'a Object },
    /// The scenario driver injected a fault: its trace event (`NodeCrash`,
    /// `Partition`…) and target, as its `faults` record names them.
    Fault { event: &'a str, target: &'a str },
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
        write!(f, "{} at {}: {}", self.checker, self.at, self.message)?;
        if !self.objects.is_empty() {
            write!(f, " [{}]", self.objects.join(", "))?;
        }
        Ok(())
    }
}
