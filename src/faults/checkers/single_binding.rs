//! A pod is bound at most once and never to two nodes: in the committed
//! history a pod's `spec.nodeName`, once set, never changes or clears
//! (the binding subresource refuses a bound pod, and nodeName is immutable
//! after), and no two kubelets hold the same pod (by uid) at once.
//!
//! A kubelet holds a pod from its admission until it releases it; a node's
//! crash or restart releases everything its kubelet held (the machine's
//! containers died with it).

use std::collections::BTreeMap;

use super::read::{key_of, write_ref};
use super::Checker;
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::sim::SimTime;

const NAME: &str = "single-binding";

#[derive(Default)]
pub struct SingleBinding {
    /// Pod uid → the node its committed history bound it to.
    bound: BTreeMap<String, String>,
    /// Pod uid → the kubelet (node) holding it.
    held: BTreeMap<String, String>,
}

impl SingleBinding {
    fn committed(
        &mut self,
        at: SimTime,
        c: &crate::model::etcd::store::WatchedChange,
        out: &mut Vec<Violation>,
    ) {
        let Some(obj) = c.value.as_deref().or(c.prev.as_deref()) else {
            return;
        };
        let Some(pod) = obj.as_pod() else { return };
        let uid = obj.meta.uid.as_str();
        if c.value.is_none() {
            self.bound.remove(uid);
            return;
        }
        let before = self.bound.get(uid);
        let broken = match (before, &pod.node_name) {
            (Some(a), Some(b)) if a != b => Some(format!("bound to {a}, then rebound to {b}")),
            (Some(a), None) => Some(format!("bound to {a}, then its nodeName was cleared")),
            _ => None,
        };
        if let Some(what) = broken {
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![c.key.to_string()],
                message: format!("pod {} was {what}", c.key),
                records: vec![write_ref(at, &c.key, c.revision)],
            });
        } else if before.is_none() {
            if let Some(n) = &pod.node_name {
                self.bound.insert(uid.to_string(), n.clone());
            }
        }
    }

    fn admitted(
        &mut self,
        at: SimTime,
        node: &str,
        pod: &crate::api::Object,
        out: &mut Vec<Violation>,
    ) {
        match self.held.get(pod.meta.uid.as_str()) {
            Some(other) if other != node => {
                let key = key_of(pod);
                out.push(Violation {
                    checker: NAME,
                    at,
                    objects: vec![key.clone(), format!("node {other}"), format!("node {node}")],
                    message: format!("pod {key} (uid {}) admitted by kubelet/{node} while kubelet/{other} holds it", pod.meta.uid),
                    records: vec![RecordRef {
                        at,
                        event: "PodAdmitted",
                        key: Some(key),
                        rv: None,
                    }],
                });
            }
            Some(_) => {}
            None => {
                self.held.insert(pod.meta.uid.clone(), node.to_string());
            }
        }
    }
}

impl Checker for SingleBinding {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::Committed(c) if c.key.kind == crate::api::Kind::Pod => {
                self.committed(at, c, out)
            }
            Observation::PodAdmitted { node, pod, .. } => self.admitted(at, node, pod, out),
            Observation::PodReleased { node, pod }
                if self
                    .held
                    .get(pod.meta.uid.as_str())
                    .is_some_and(|n| n == node) =>
            {
                self.held.remove(pod.meta.uid.as_str());
            }
            Observation::Fault { event, target } if machine_lost(event) => {
                self.held.retain(|_, n| n != target);
            }
            _ => {}
        }
    }
}

/// A fault after which a node's kubelet holds nothing: the machine died or
/// booted again.
pub fn machine_lost(event: &str) -> bool {
    matches!(event, "NodeCrash" | "NodeRestart")
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{bound, change, pod};
    use super::*;

    #[test]
    fn a_rebinding_is_caught_and_a_status_write_after_binding_is_not() {
        let mut c = SingleBinding::default();
        let mut out = Vec::new();
        let p = pod("web", 100, None);
        let on_a = bound(p.clone(), "a");
        let on_b = bound(p.clone(), "b");
        let t = SimTime(1);
        c.observe(
            t,
            &Observation::Committed(&change(5, None, Some(&p))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(6, Some(&p), Some(&on_a))),
            &mut out,
        );
        // The kubelet's status write keeps nodeName: legal.
        c.observe(
            t,
            &Observation::Committed(&change(7, Some(&on_a), Some(&on_a))),
            &mut out,
        );
        assert!(out.is_empty());
        c.observe(
            t,
            &Observation::Committed(&change(8, Some(&on_a), Some(&on_b))),
            &mut out,
        );
        // One violation, naming the Write at rv 8.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].records[0].rv, Some(8));
        assert_eq!(
            out[0].message,
            "pod Pod/default/web was bound to a, then rebound to b"
        );
    }

    #[test]
    fn two_kubelets_holding_one_pod_is_caught_unless_the_first_node_crashed() {
        let mut c = SingleBinding::default();
        let mut out = Vec::new();
        let p = pod("web", 100, None);
        let alloc = Default::default();
        let admit = |node| Observation::PodAdmitted {
            node,
            pod: &p,
            allocatable: &alloc,
        };
        c.observe(SimTime(1), &admit("a"), &mut out);
        c.observe(SimTime(2), &admit("a"), &mut out); // re-admitted after a relist: same node
        c.observe(
            SimTime(3),
            &Observation::Fault {
                event: "NodeCrash",
                target: "a",
            },
            &mut out,
        );
        c.observe(SimTime(4), &admit("b"), &mut out);
        assert!(out.is_empty());
        c.observe(SimTime(5), &admit("c"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].objects[1], "node b");
    }
}
