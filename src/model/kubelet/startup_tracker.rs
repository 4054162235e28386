//! The kubelet's pod startup latency tracker (upstream
//! `pkg/kubelet/util/pod_startup_latency_tracker.go`), the source of
//! `kubelet_pod_start_sli_duration_seconds`: the pod-startup SLI of
//! sig-scalability, which leaves out the time spent pulling images.
//!
//! A pod is tracked only if the kubelet first sees it on watch before it
//! acknowledged it (no `status.startTime`), so pods adopted after a kubelet
//! restart are not measured. Image pulls mark the first start and the last
//! finish of pulling for the pod; the first status write that shows every
//! container running marks it started; the sample is taken the next time
//! the watch brings the pod back with every container running:
//! `(observed on watch − created) − (last pull finished − first pull started)`.
//! The state lives in the kubelet's memory and goes with a crash.

use std::collections::BTreeMap;

use crate::api::pod::{ContainerState, PodBody};
use crate::api::Object;
use crate::sim::{SimDuration, SimTime};

#[derive(Clone, Copy, Default)]
struct PerPod {
    first_started_pulling: Option<SimTime>,
    last_finished_pulling: Option<SimTime>,
    observed_running: Option<SimTime>,
    recorded: bool,
}

/// Per pod UID, what startup has shown so far.
#[derive(Default)]
pub(super) struct StartupTracker {
    pods: BTreeMap<String, PerPod>,
}

/// Upstream's `hasPodStartedSLO`: every container has started at least once
/// and runs. A status without container statuses (kubesim's before the
/// kubelet's first sync; upstream always lists them) has not started.
fn has_started(pod: &PodBody) -> bool {
    let statuses = &pod.status.container_statuses;
    !statuses.is_empty()
        && statuses
            .iter()
            .all(|c| matches!(c.state, ContainerState::Running { .. }))
}

impl StartupTracker {
    /// The pod came on watch at `now`; returns the SLI sample when this is
    /// the observation that completes its startup.
    pub(super) fn observed_on_watch(&mut self, obj: &Object, now: SimTime) -> Option<SimDuration> {
        let pod = obj.as_pod()?;
        if pod.is_terminal() {
            self.pods.remove(&obj.meta.uid);
            return None;
        }
        let Some(state) = self.pods.get_mut(&obj.meta.uid) else {
            if pod.status.start_time.is_none() {
                self.pods.insert(obj.meta.uid.clone(), PerPod::default());
            }
            return None;
        };
        if state.observed_running.is_none() || state.recorded || !has_started(pod) {
            return None;
        }
        state.recorded = true;
        let starting = now.since(obj.meta.creation);
        let pulling = match (state.first_started_pulling, state.last_finished_pulling) {
            (Some(first), Some(last)) => last.since(first),
            _ => SimDuration::ZERO,
        };
        Some(SimDuration(
            starting.nanos().saturating_sub(pulling.nanos()),
        ))
    }

    pub(super) fn started_pulling(&mut self, uid: &str, now: SimTime) {
        if let Some(state) = self.pods.get_mut(uid) {
            state.first_started_pulling.get_or_insert(now);
        }
    }

    pub(super) fn finished_pulling(&mut self, uid: &str, now: SimTime) {
        if let Some(state) = self.pods.get_mut(uid) {
            state.last_finished_pulling = Some(now);
        }
    }

    /// The status manager's write of `pod` succeeded at `now`.
    pub(super) fn status_updated(&mut self, uid: &str, pod: &PodBody, now: SimTime) {
        if let Some(state) = self.pods.get_mut(uid) {
            if !state.recorded && state.observed_running.is_none() && has_started(pod) {
                state.observed_running = Some(now);
            }
        }
    }

    /// The pod is gone from the kubelet.
    pub(super) fn forget(&mut self, uid: &str) {
        self.pods.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::Body;
    use crate::api::pod::{ContainerStatus, PodPhase};

    fn at(ms: u64) -> SimTime {
        SimTime(ms * 1_000_000)
    }

    /// A pod created at 0 with one container, `running` or waiting, and
    /// `status.startTime` once the kubelet acknowledged it.
    fn pod(running: bool, acknowledged: bool) -> Object {
        let docs = crate::api::manifest::parse_yaml(
            "t.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, uid: u1}\nspec:\n  containers: [{name: c, image: app:1}]\n",
        )
        .expect("yaml");
        let mut report = Default::default();
        let mut o = crate::api::manifest::decode_object("t.yaml", &docs[0], &mut report)
            .expect("manifest")
            .remove(0);
        o.meta.uid = "u1".into();
        o.meta.creation = at(0);
        if let Body::Pod(p) = &mut o.body {
            p.status.start_time = acknowledged.then_some(at(100));
            p.status.container_statuses = vec![ContainerStatus {
                name: "c".into(),
                image: "app:1".into(),
                state: if running {
                    p.status.phase = PodPhase::Running;
                    ContainerState::Running { started: at(3000) }
                } else {
                    ContainerState::Waiting {
                        reason: "ContainerCreating",
                        message: String::new(),
                    }
                },
                last_state: None,
                ready: running,
                started: running,
                restart_count: 0,
            }];
        }
        o
    }

    #[test]
    fn the_sli_leaves_out_the_time_spent_pulling() {
        let mut t = StartupTracker::default();
        // Seen on watch at 50 ms before the kubelet acknowledged it: tracked.
        assert_eq!(t.observed_on_watch(&pod(false, false), at(50)), None);
        // Pulling from 200 ms to 2,200 ms, running by the write at 3,000 ms.
        t.started_pulling("u1", at(200));
        t.started_pulling("u1", at(900)); // a second image: the first start stays
        t.finished_pulling("u1", at(2200));
        let running = pod(true, true);
        t.status_updated("u1", running.as_pod().unwrap(), at(3000));
        // Observed on watch at 3,010 ms: 3,010 − (2,200 − 200) = 1,010 ms.
        assert_eq!(
            t.observed_on_watch(&running, at(3010)),
            Some(SimDuration::from_millis(1010))
        );
        // Recorded once.
        assert_eq!(t.observed_on_watch(&running, at(4000)), None);
    }

    #[test]
    fn pods_acknowledged_before_the_kubelet_saw_them_and_forgotten_ones_are_not_measured() {
        let mut t = StartupTracker::default();
        // A pod adopted after a kubelet restart already has a startTime.
        assert_eq!(t.observed_on_watch(&pod(false, true), at(10)), None);
        let running = pod(true, true);
        t.status_updated("u1", running.as_pod().unwrap(), at(20));
        assert_eq!(t.observed_on_watch(&running, at(30)), None);
        // Tracked, then forgotten (deleted) before it ran.
        let mut t = StartupTracker::default();
        t.observed_on_watch(&pod(false, false), at(10));
        t.forget("u1");
        t.status_updated("u1", running.as_pod().unwrap(), at(20));
        assert_eq!(t.observed_on_watch(&running, at(30)), None);
    }

    #[test]
    fn a_status_write_before_every_container_runs_does_not_start_the_clock() {
        let mut t = StartupTracker::default();
        t.observed_on_watch(&pod(false, false), at(10));
        t.status_updated("u1", pod(false, true).as_pod().unwrap(), at(500));
        // Seen running on watch before the kubelet's own write said so.
        assert_eq!(t.observed_on_watch(&pod(true, true), at(600)), None);
        t.status_updated("u1", pod(true, true).as_pod().unwrap(), at(700));
        // No pull: 800 ms from creation.
        assert_eq!(
            t.observed_on_watch(&pod(true, true), at(800)),
            Some(SimDuration::from_millis(800))
        );
    }
}
