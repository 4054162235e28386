//! At most one pod per StatefulSet identity runs at a time: for a pod
//! controlled by a StatefulSet, its identity is its namespace and name
//! (`web-0`); from the moment a kubelet starts its containers until that
//! kubelet releases it (it finished, terminated, or was forgotten after
//! its deletion), no other pod (another uid, or the same uid on another
//! node) of that identity may start. A node's crash or restart stops
//! every container on it (the machine died; its kubelet comes back with
//! nothing running).

use std::collections::BTreeMap;

use super::read::{controller_uid, key_of};
use super::single_binding::machine_lost;
use super::Checker;
use crate::api::Object;
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::sim::SimTime;

const NAME: &str = "statefulset-identity";

struct Running {
    uid: String,
    node: String,
}

#[derive(Default)]
pub struct StatefulSetIdentity {
    /// `namespace/name` → the pod running under it.
    running: BTreeMap<String, Running>,
}

fn identity(pod: &Object) -> Option<String> {
    controller_uid(pod, "StatefulSet")?;
    Some(format!("{}/{}", pod.meta.namespace, pod.meta.name))
}

impl StatefulSetIdentity {
    fn started(&mut self, at: SimTime, node: &str, pod: &Object, out: &mut Vec<Violation>) {
        let Some(id) = identity(pod) else { return };
        match self.running.get(&id) {
            Some(r) if r.uid == pod.meta.uid && r.node == node => {}
            Some(r) => {
                let key = key_of(pod);
                out.push(Violation {
                    checker: NAME,
                    at,
                    objects: vec![
                        key.clone(),
                        format!("node {}", r.node),
                        format!("node {node}"),
                    ],
                    message: format!(
                        "{id} started on {node} (uid {}) while uid {} runs on {}",
                        pod.meta.uid, r.uid, r.node
                    ),
                    records: vec![RecordRef {
                        at,
                        event: "ContainersStarted",
                        key: Some(key),
                        rv: None,
                    }],
                });
            }
            None => {
                let r = Running {
                    uid: pod.meta.uid.clone(),
                    node: node.to_string(),
                };
                self.running.insert(id, r);
            }
        }
    }

    fn released(&mut self, node: &str, pod: &Object) {
        let Some(id) = identity(pod) else { return };
        if self
            .running
            .get(&id)
            .is_some_and(|r| r.uid == pod.meta.uid && r.node == node)
        {
            self.running.remove(&id);
        }
    }
}

impl Checker for StatefulSetIdentity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::PodStarted { node, pod } => self.started(at, node, pod, out),
            Observation::PodReleased { node, pod } => self.released(node, pod),
            Observation::Fault { event, target } if machine_lost(event) => {
                self.running.retain(|_, r| r.node != target);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::pod;
    use super::*;

    #[test]
    fn a_second_web_0_while_the_first_runs_is_caught_not_after_it_stopped() {
        let mut c = StatefulSetIdentity::default();
        let mut out = Vec::new();
        let old = pod("web-0", 1, Some(("StatefulSet", "ss")));
        let mut new = old.clone();
        new.meta.uid = "u-web-0-again".into();
        let start = |node, pod| Observation::PodStarted { node, pod };
        c.observe(SimTime(1), &start("a", &old), &mut out);
        c.observe(SimTime(2), &start("a", &old), &mut out); // a container restart
        c.observe(
            SimTime(3),
            &Observation::PodReleased {
                node: "a",
                pod: &old,
            },
            &mut out,
        );
        c.observe(SimTime(4), &start("b", &new), &mut out);
        // A crash of b stops it; old starts on a again (legal).
        c.observe(
            SimTime(5),
            &Observation::Fault {
                event: "NodeCrash",
                target: "b",
            },
            &mut out,
        );
        c.observe(SimTime(6), &start("a", &old), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // new starts on c while old runs on a.
        c.observe(SimTime(7), &start("c", &new), &mut out);
        assert_eq!(out.len(), 1);
        // A pod without a StatefulSet owner is no identity.
        c.observe(SimTime(8), &start("c", &pod("web-0", 1, None)), &mut out);
        assert_eq!(out.len(), 1);
    }
}
