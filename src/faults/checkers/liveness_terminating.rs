//! Liveness: at the deadline no pod is stuck Terminating. A pod's
//! `deletionTimestamp` is when its grace period ends; past that by more
//! than [`MARGIN`] (the kubelet's SIGKILL, its status write and its final
//! delete take a few seconds; a resync or relist a few more) it should
//! be gone from etcd.

use super::read::{objects_of, write_ref};
use super::Checker;
use crate::api::Kind;
use crate::faults::observe::Violation;
use crate::model::etcd::EtcdStore;
use crate::model::world::World;
use crate::sim::{SimDuration, SimTime};

const NAME: &str = "liveness-terminating";

pub const MARGIN: SimDuration = SimDuration::from_secs(60);

#[derive(Default)]
pub struct NoneStuckTerminating;

impl NoneStuckTerminating {
    fn check(&self, at: SimTime, store: &EtcdStore, out: &mut Vec<Violation>) {
        for p in objects_of(store, Kind::Pod) {
            let Some(d) = p.meta.deletion else { continue };
            if d.after(MARGIN) >= at {
                continue;
            }
            let key = p.key();
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![key.to_string()],
                message: format!(
                    "{key} is still Terminating {} after its grace period ended",
                    SimDuration(at.0 - d.0)
                ),
                records: vec![write_ref(at, &key, p.meta.resource_version)],
            });
        }
    }
}

impl Checker for NoneStuckTerminating {
    fn name(&self) -> &'static str {
        NAME
    }

    fn at_deadline(&mut self, at: SimTime, world: &World, out: &mut Vec<Violation>) {
        self.check(at, &world.etcd, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{pod, store, terminating};
    use super::*;

    #[test]
    fn a_pod_terminating_past_its_grace_and_margin_is_caught() {
        let s = |secs: u64| SimTime(secs * 1_000_000_000);
        let st = store(vec![
            terminating(pod("old", 1, None), s(10)),
            terminating(pod("recent", 1, None), s(50)),
            pod("live", 1, None),
        ]);
        let mut out = Vec::new();
        // At 100 s: old's grace ended 90 s ago (> 60 s), recent's 50 s ago.
        NoneStuckTerminating.check(s(100), &st, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].objects, ["Pod/default/old"]);
    }
}
