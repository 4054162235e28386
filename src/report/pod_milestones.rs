//! Pod scheduling and startup latencies, measured where the trace sees
//! them: on the apiserver's committed writes (each one a `Write` record).
//!
//! A pod's clock starts at its `creationTimestamp` (the apiserver's
//! admission of the create, which the pod's create `Write` carries as
//! `created`, in nanoseconds) and each milestone is the first committed
//! write that shows it: a node (created → bound; pods created with a node
//! are not scheduled), phase Running, condition Ready=True. The series
//! reader applies the same rule to the same records, so the summary's
//! percentiles and the charts' CDFs are of the same samples.
//!
//! The same writes feed [`super::over_time`]: a pod waits for a node from
//! its creation until a write shows it bound (or it ends or goes), and its
//! requests count against the cluster while it is bound and not terminal.

use std::collections::BTreeMap;

use super::over_time::{Amounts, RESOURCES};
use super::stats::Stats;
use crate::api::object::Body;
use crate::api::Object;
use crate::sim::{SimTime, Trace};

/// What has been seen of one live pod.
#[derive(Clone, Copy)]
struct Seen {
    created: SimTime,
    bound: bool,
    running: bool,
    ready: bool,
    /// Waiting for a node: no node yet, not ended.
    pending: bool,
    /// Its requests, while they count (bound, not terminal).
    counted: Option<Amounts>,
}

impl Seen {
    /// Pods waiting for a node at `end`, by creation time.
    fn pending_since(&self) -> Option<SimTime> {
        self.pending.then_some(self.created)
    }
}

/// Every live pod's milestones, by `namespace/name`.
#[derive(Default)]
pub struct PodMilestones {
    pods: BTreeMap<String, Seen>,
}

impl PodMilestones {
    /// The creation times of the pods waiting for a node now.
    pub fn pending_since(&self) -> Vec<SimTime> {
        self.pods.values().filter_map(Seen::pending_since).collect()
    }

    /// Live pods that have not yet reached Running and have not ended.
    pub fn not_started(&self) -> u64 {
        self.pods
            .values()
            .filter(|s| !s.running && (s.pending || s.counted.is_some()))
            .count() as u64
    }
}

/// What `o`'s containers request of each of [`RESOURCES`].
fn requests_of(o: &Object) -> Amounts {
    let req = crate::scheduler::pod_info::PodInfo::new(o).requests;
    RESOURCES.map(|r| req.get(r))
}

/// A node's allocatable of each of [`RESOURCES`].
fn allocatable_of(n: &crate::api::node::NodeBody) -> Amounts {
    RESOURCES.map(|r| {
        n.allocatable
            .get(r)
            .map_or(0, |q| crate::scheduler::resources::amount(r, q))
    })
}

impl Stats {
    /// The apiserver committed a change of `key` (`Kind/namespace/name`):
    /// `value` is the object after it (None for a delete); `created` is
    /// whether the write created it.
    pub fn observe_write(
        &mut self,
        trace: &mut Trace,
        now: SimTime,
        key: &str,
        value: Option<&Object>,
        created: bool,
    ) {
        let Some(o) = value else {
            if let Some(pod) = key.strip_prefix("Pod/") {
                if let Some(gone) = self.pods.pods.remove(pod) {
                    self.pod_gone(now, &gone);
                }
            } else if let Some(node) = key.strip_prefix("Node/") {
                self.over_time.node_written(now, node, None);
            }
            return;
        };
        match &o.body {
            Body::Node(n) => {
                self.over_time
                    .node_written(now, &o.meta.name, Some(allocatable_of(n)));
                self.bootstrap
                    .node_written(trace, &o.meta.name, n.is_ready(), now)
            }
            Body::Pod(p) => {
                let name = key.strip_prefix("Pod/").unwrap_or(key);
                let old = self.pods.pods.get(name).copied();
                let start = match (old, created) {
                    (Some(s), _) => s.created,
                    (None, true) => o.meta.creation,
                    (None, false) => now,
                };
                let mut seen = old.unwrap_or(Seen {
                    created: start,
                    bound: false,
                    running: false,
                    ready: false,
                    pending: false,
                    counted: None,
                });
                let waited = now.since(start);
                let into = self.latencies(start);
                if !seen.bound && p.node_name.is_some() {
                    seen.bound = true;
                    if old.is_some() {
                        into.pod_scheduling.record(waited);
                    }
                }
                if !seen.running && p.status.phase.as_str() == "Running" {
                    seen.running = true;
                    into.pod_created_to_running.record(waited);
                }
                if !seen.ready && p.status.is_ready() {
                    seen.ready = true;
                    into.pod_created_to_ready.record(waited);
                }
                self.pod_over_time(now, &mut seen, o, p.is_terminal());
                self.pods.pods.insert(name.to_string(), seen);
            }
            _ => {}
        }
    }
}

impl Stats {
    /// Moves `seen` between waiting, counted and ended as `o` now shows it.
    fn pod_over_time(&mut self, now: SimTime, seen: &mut Seen, o: &Object, terminal: bool) {
        let pending = !seen.bound && !terminal;
        if pending != seen.pending {
            self.over_time.pending_changed(now, pending);
            if !pending {
                self.over_time.waited(now.since(seen.created));
            }
            seen.pending = pending;
        }
        let counts = seen.bound && !terminal;
        match (seen.counted, counts) {
            (None, true) => {
                let amounts = requests_of(o);
                self.over_time.requests_changed(now, &amounts, 1);
                seen.counted = Some(amounts);
            }
            (Some(amounts), false) => {
                self.over_time.requests_changed(now, &amounts, -1);
                seen.counted = None;
            }
            _ => {}
        }
    }

    /// A pod was deleted: it stops waiting and its requests stop counting.
    fn pod_gone(&mut self, now: SimTime, gone: &Seen) {
        if gone.pending {
            self.over_time.pending_changed(now, false);
            self.over_time.waited(now.since(gone.created));
        }
        if let Some(amounts) = gone.counted {
            self.over_time.requests_changed(now, &amounts, -1);
        }
    }
}
