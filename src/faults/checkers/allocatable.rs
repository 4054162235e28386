//! No node admits more than its allocatable: at every kubelet admission,
//! the requests of the pods the kubelet holds (admitted and not yet
//! released), the new one included, fit the node's allocatable cpu,
//! memory and pod count. Requests are this checker's own sum of the
//! containers' (see [`super::read::requests`]), not the kubelet's.

use std::collections::BTreeMap;

use super::read::{key_of, requests, Requests};
use super::single_binding::machine_lost;
use super::Checker;
use crate::api::resources::ResourceList;
use crate::api::Object;
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::sim::SimTime;

const NAME: &str = "allocatable";

#[derive(Default)]
struct NodeUse {
    /// Held pod uid → its requests.
    pods: BTreeMap<String, Requests>,
    sum: Requests,
}

#[derive(Default)]
pub struct Allocatable {
    nodes: BTreeMap<String, NodeUse>,
}

impl Allocatable {
    fn admitted(
        &mut self,
        at: SimTime,
        node: &str,
        pod: &Object,
        alloc: &ResourceList,
        out: &mut Vec<Violation>,
    ) {
        let Some(body) = pod.as_pod() else { return };
        if !self.nodes.contains_key(node) {
            self.nodes.insert(node.to_string(), NodeUse::default());
        }
        let u = self.nodes.get_mut(node).expect("inserted");
        if u.pods.contains_key(pod.meta.uid.as_str()) {
            return;
        }
        let r = requests(&body.spec);
        u.pods.insert(pod.meta.uid.clone(), r);
        u.sum = u.sum.plus(r);
        let milli = |k: &str| alloc.get(k).map(|q| q.milli_value());
        let count = u.pods.len() as i64 * 1000;
        let over = [
            ("cpu", u.sum.cpu),
            ("memory", u.sum.memory),
            ("pods", count),
        ]
        .into_iter()
        .find(|(k, used)| milli(k).is_some_and(|a| *used > a));
        if let Some((res, used)) = over {
            let key = key_of(pod);
            let have = milli(res).unwrap_or(0);
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![format!("node {node}"), key.clone()],
                message: format!(
                    "kubelet/{node} admitted {key}: its pods request {used}m {res}, allocatable is {have}m"
                ),
                records: vec![RecordRef {
                    at,
                    event: "PodAdmitted",
                    key: Some(key),
                    rv: None,
                }],
            });
        }
    }

    fn released(&mut self, node: &str, pod: &Object) {
        if let Some(u) = self.nodes.get_mut(node) {
            if let Some(r) = u.pods.remove(pod.meta.uid.as_str()) {
                u.sum = u.sum.minus(r);
            }
        }
    }
}

impl Checker for Allocatable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::PodAdmitted {
                node,
                pod,
                allocatable,
            } => self.admitted(at, node, pod, allocatable, out),
            Observation::PodReleased { node, pod } => self.released(node, pod),
            Observation::Fault { event, target } if machine_lost(event) => {
                self.nodes.remove(target);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::pod;
    use super::*;
    use crate::api::quantity::Quantity;

    #[test]
    fn admitting_past_allocatable_cpu_is_caught_and_a_released_pod_frees_its_share() {
        let mut c = Allocatable::default();
        let mut out = Vec::new();
        // 1 cpu, 1Gi, 110 pods allocatable; each pod asks 600m.
        let alloc: ResourceList = [
            ("cpu".to_string(), Quantity::from_milli(1000)),
            ("memory".to_string(), Quantity::parse("1Gi").unwrap()),
            ("pods".to_string(), Quantity::from_units(110)),
        ]
        .into();
        let (a, b, d) = (
            pod("a", 600, None),
            pod("b", 600, None),
            pod("d", 600, None),
        );
        let admit = |pod| Observation::PodAdmitted {
            node: "n",
            pod,
            allocatable: &alloc,
        };
        c.observe(SimTime(1), &admit(&a), &mut out);
        c.observe(
            SimTime(2),
            &Observation::PodReleased { node: "n", pod: &a },
            &mut out,
        );
        // 600m after a's release: fits.
        c.observe(SimTime(3), &admit(&b), &mut out);
        assert!(out.is_empty());
        // 600m + 600m = 1200m > 1000m.
        c.observe(SimTime(4), &admit(&d), &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.contains("1200m cpu, allocatable is 1000m"),
            "{}",
            out[0]
        );
    }
}
