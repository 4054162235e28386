//! Liveness: at the deadline every node of the scenario that has joined is
//! registered and Ready (its Node's `Ready` condition is `True` in etcd).

use super::read::write_ref;
use super::Checker;
use crate::api::{Kind, ObjectKey};
use crate::faults::observe::Violation;
use crate::model::etcd::EtcdStore;
use crate::model::world::World;
use crate::sim::SimTime;

const NAME: &str = "liveness-nodes";

pub struct NodesReady {
    /// (node name, when it joins).
    nodes: Vec<(String, SimTime)>,
}

impl NodesReady {
    pub fn new(nodes: Vec<(String, SimTime)>) -> Self {
        NodesReady { nodes }
    }

    fn check(&self, at: SimTime, store: &EtcdStore, out: &mut Vec<Violation>) {
        for (name, joins) in &self.nodes {
            if *joins > at {
                continue;
            }
            let key = ObjectKey {
                kind: Kind::Node,
                namespace: String::new(),
                name: name.clone(),
            };
            let node = store.get(&key);
            let ready = node.and_then(|n| n.as_node()).is_some_and(|n| n.is_ready());
            if ready {
                continue;
            }
            let why = if node.is_some() {
                "is not Ready"
            } else {
                "never registered"
            };
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![key.to_string()],
                message: format!("node {name} {why} at the liveness deadline"),
                records: node
                    .map(|n| write_ref(at, &key, n.meta.resource_version))
                    .into_iter()
                    .collect(),
            });
        }
    }
}

impl Checker for NodesReady {
    fn name(&self) -> &'static str {
        NAME
    }

    fn at_deadline(&mut self, at: SimTime, world: &World, out: &mut Vec<Violation>) {
        self.check(at, &world.etcd, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{node, store};
    use super::*;

    #[test]
    fn a_node_not_ready_or_missing_is_caught_and_one_joining_later_is_not() {
        let s = store(vec![node("a", 1000, true), node("b", 1000, false)]);
        let nodes = ["a", "b", "c", "late"].map(|n| (n.to_string(), SimTime::ZERO));
        let mut nodes = nodes.to_vec();
        nodes[3].1 = SimTime(100);
        let mut out = Vec::new();
        NodesReady::new(nodes).check(SimTime(50), &s, &mut out);
        // b not Ready, c never registered; a fine, late not joined yet.
        let msgs: Vec<_> = out.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "node b is not Ready at the liveness deadline",
                "node c never registered at the liveness deadline"
            ]
        );
    }
}
