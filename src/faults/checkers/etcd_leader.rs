//! etcd's election safety: at most one leader per term, and no two members
//! applying different entries at the same index (Raft's State Machine
//! Safety, which the group's store counts as divergent applies).

use std::collections::BTreeMap;

use super::Checker;
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::model::world::World;
use crate::sim::{ComponentId, SimTime};

#[derive(Default)]
pub struct OneLeaderPerTerm {
    /// Term → the member elected in it.
    leaders: BTreeMap<u64, ComponentId>,
}

const NAME: &str = "etcd-leader";

impl Checker for OneLeaderPerTerm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        let Observation::LeaderElected { member, term } = *o else {
            return;
        };
        match self.leaders.insert(term, member) {
            Some(other) if other != member => out.push(Violation {
                checker: NAME,
                at,
                objects: vec![format!("component {other}"), format!("component {member}")],
                message: format!("two etcd members won term {term}"),
                records: vec![RecordRef {
                    at,
                    event: "RaftLeaderElected",
                    key: None,
                    rv: None,
                }],
            }),
            _ => {}
        }
    }

    fn finish(&mut self, at: SimTime, world: &World, out: &mut Vec<Violation>) {
        let divergent = world.etcd.divergent_applies();
        if divergent > 0 {
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec!["etcd".into()],
                message: format!(
                    "{divergent} entries were applied differently by two members at the same index"
                ),
                records: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_leader_in_a_term_is_a_violation() {
        let mut c = OneLeaderPerTerm::default();
        let mut out = Vec::new();
        let won = |member, term| Observation::LeaderElected { member, term };
        c.observe(SimTime(1), &won(0, 2), &mut out);
        c.observe(SimTime(2), &won(0, 2), &mut out); // the same leader again: fine
        c.observe(SimTime(3), &won(1, 3), &mut out);
        assert!(out.is_empty());
        c.observe(SimTime(4), &won(2, 3), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, "two etcd members won term 3");
    }
}
