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

use std::collections::BTreeMap;

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
}

/// Every live pod's milestones, by `namespace/name`.
#[derive(Default)]
pub struct PodMilestones {
    pods: BTreeMap<String, Seen>,
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
                self.pods.pods.remove(pod);
            }
            return;
        };
        match &o.body {
            Body::Node(n) => self
                .bootstrap
                .node_written(trace, &o.meta.name, n.is_ready(), now),
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
                self.pods.pods.insert(name.to_string(), seen);
            }
            _ => {}
        }
    }
}
