//! A Deployment's own scaling stays within its rolling-update bounds.
//!
//! **Upper:** when the Deployment controller scales one of its ReplicaSets
//! *up*, and it has observed the latest generation
//! (`status.observedGeneration ≥ metadata.generation`; before that a spec
//! change may still be unapplied), the `spec.replicas` of the ReplicaSets
//! it controls sum to at most `replicas + maxSurge`. Only scale-ups are
//! judged: after the Deployment is scaled down its old ReplicaSets ask for
//! more than the new bound until the controller scales them, and the
//! controller sends its status (with the new observedGeneration) in the
//! same sync as those updates, so the status may commit first. (Its pods
//! follow their ReplicaSets' specs, which `replicaset-bound` checks; a
//! pod the ReplicaSet controller is still deleting after a scale-down may
//! legitimately coexist with its replacement for a moment, so pods are not
//! summed here.)
//!
//! **Lower:** `replicas − maxUnavailable` of its pods stay available
//! (Ready for `minReadySeconds`, not terminating, not finished), unless an
//! involuntary disruption happened. The check is armed once the Deployment
//! is fully available (at least `replicas` available pods); it is disarmed
//! when `replicas` grows (the new floor is not reached yet) and by an
//! involuntary disruption, until the Deployment is fully available again.
//!
//! **Involuntary**, precisely: a pod of the Deployment (controlled by one
//! of its ReplicaSets) that was active and
//! - loses readiness while staying active, or
//! - finishes (Succeeded/Failed), or
//! - is marked for deletion or deleted while its ReplicaSet had no more
//!   active pods than its `spec.replicas`: the ReplicaSet controller
//!   deletes only a surplus, so any other deletion was someone else's
//!   (an eviction, the taint manager, a person, the garbage collector).
//!
//! `maxSurge` rounds up and `maxUnavailable` down; both zero means one
//! unavailable, as upstream resolves the fenceposts. `Recreate` has no
//! surge and no floor.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::read::{controller_uid, field, is_active, is_available, is_ready, replicas, write_ref};
use super::Checker;
use crate::api::int_or_percent::{scaled_value, IntOrPercent};
use crate::api::{Kind, Object};
use crate::faults::observe::{Observation, Violation};
use crate::model::etcd::store::WatchedChange;
use crate::sim::SimTime;

const NAME: &str = "deployment-bounds";

#[derive(Default)]
struct Dep {
    key: String,
    replicas: i64,
    surge: i64,
    unavailable: i64,
    min_ready: u64,
    generation: i64,
    observed: i64,
    armed: bool,
    /// Pod uid → (its ReplicaSet's uid, the pod as committed).
    pods: BTreeMap<String, (String, Arc<Object>)>,
}

impl Dep {
    fn read(o: &Object) -> Dep {
        let replicas = replicas(o);
        let strategy = |k: &str| field(o, &["spec", "strategy", "rollingUpdate", k]);
        let recreate =
            field(o, &["spec", "strategy", "type"]).and_then(|t| t.as_str()) == Some("Recreate");
        let surge = scaled_value(
            &IntOrPercent::from_json(strategy("maxSurge"), "25%"),
            replicas,
            true,
        )
        .unwrap_or(0);
        let unav = scaled_value(
            &IntOrPercent::from_json(strategy("maxUnavailable"), "25%"),
            replicas,
            false,
        )
        .unwrap_or(0);
        let (surge, unavailable) = match (recreate, surge, unav) {
            (true, _, _) => (0, replicas),
            (false, 0, 0) => (0, 1),
            (false, s, u) => (s, u),
        };
        Dep {
            key: o.key().to_string(),
            replicas,
            surge,
            unavailable,
            min_ready: field(o, &["spec", "minReadySeconds"])
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            generation: o.meta.generation,
            observed: field(o, &["status", "observedGeneration"])
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            ..Dep::default()
        }
    }
}

#[derive(Default)]
pub struct DeploymentBounds {
    deps: BTreeMap<String, Dep>,
    /// ReplicaSet uid → (its Deployment's uid, spec.replicas).
    sets: BTreeMap<String, (String, i64)>,
}

impl DeploymentBounds {
    fn deployment_written(&mut self, c: &WatchedChange) {
        let Some(o) = c.value.as_deref() else {
            if let Some(p) = &c.prev {
                self.deps.remove(p.meta.uid.as_str());
            }
            return;
        };
        let new = Dep::read(o);
        let uid = o.meta.uid.as_str();
        match self.deps.get_mut(uid) {
            Some(d) => {
                let grew = new.replicas > d.replicas;
                let pods = std::mem::take(&mut d.pods);
                let armed = d.armed && !grew;
                *d = Dep { pods, armed, ..new };
            }
            None => {
                self.deps.insert(uid.to_string(), new);
            }
        }
    }

    fn set_written(&mut self, at: SimTime, c: &WatchedChange, out: &mut Vec<Violation>) {
        let Some(o) = c.value.as_deref() else {
            if let Some(p) = &c.prev {
                self.sets.remove(p.meta.uid.as_str());
            }
            return;
        };
        let Some(dep) = controller_uid(o, "Deployment") else {
            return;
        };
        let r = replicas(o);
        let before = match self.sets.get_mut(o.meta.uid.as_str()) {
            Some(e) => std::mem::replace(&mut e.1, r),
            None => {
                self.sets.insert(o.meta.uid.clone(), (dep.to_string(), r));
                0
            }
        };
        if r > before {
            let dep = dep.to_string();
            self.check_upper(at, &dep, c, out);
        }
    }

    fn check_upper(&self, at: SimTime, dep: &str, c: &WatchedChange, out: &mut Vec<Violation>) {
        let Some(d) = self.deps.get(dep) else { return };
        if d.observed < d.generation {
            return;
        }
        let total: i64 = self.sets.values().filter(|s| s.0 == dep).map(|s| s.1).sum();
        if total > d.replicas + d.surge {
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![d.key.clone(), c.key.to_string()],
                message: format!(
                    "{}'s ReplicaSets ask for {total} replicas, over replicas {} + maxSurge {}",
                    d.key, d.replicas, d.surge
                ),
                records: vec![write_ref(at, &c.key, c.revision)],
            });
        }
    }

    fn pod_written(&mut self, at: SimTime, c: &WatchedChange, out: &mut Vec<Violation>) {
        let Some(obj) = c.value.as_deref().or(c.prev.as_deref()) else {
            return;
        };
        let Some(rs) = controller_uid(obj, "ReplicaSet") else {
            return;
        };
        let Some((dep_uid, rs_spec)) = self.sets.get(rs) else {
            return;
        };
        let Some(d) = self.deps.get_mut(dep_uid.as_str()) else {
            return;
        };
        let uid = obj.meta.uid.as_str();
        let old = d.pods.get(uid).map(|p| p.1.clone());
        if let Some(old) = old.as_deref().filter(|o| is_active(o)) {
            let new = c.value.as_deref();
            let rs_active = d
                .pods
                .values()
                .filter(|p| p.0 == rs && is_active(&p.1))
                .count() as i64;
            let involuntary = match new {
                Some(n) if is_active(n) => is_ready(old) && !is_ready(n),
                Some(n) if n.meta.deletion.is_none() => true, // finished
                _ => rs_active <= *rs_spec,
            };
            if involuntary {
                d.armed = false;
            }
        }
        match &c.value {
            Some(v) => {
                d.pods.insert(uid.to_string(), (rs.to_string(), v.clone()));
            }
            None => {
                d.pods.remove(uid);
            }
        }
        let available = d
            .pods
            .values()
            .filter(|p| is_available(&p.1, d.min_ready, at))
            .count() as i64;
        let floor = d.replicas - d.unavailable;
        if d.armed && available < floor {
            d.armed = false;
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![d.key.clone(), c.key.to_string()],
                message: format!(
                    "{} has {available} available pods, under replicas {} − maxUnavailable {}, with no involuntary disruption",
                    d.key, d.replicas, d.unavailable
                ),
                records: vec![write_ref(at, &c.key, c.revision)],
            });
        } else if available >= d.replicas {
            d.armed = true;
        }
    }
}

impl Checker for DeploymentBounds {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        if let Observation::Committed(c) = *o {
            match c.key.kind {
                Kind::Deployment => self.deployment_written(c),
                Kind::ReplicaSet => self.set_written(at, c, out),
                Kind::Pod => self.pod_written(at, c, out),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{change, json_object, pod, ready, terminating};
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i64, observed: i64) -> Object {
        json_object(
            Kind::Deployment,
            "web",
            json!({"spec": {"replicas": replicas, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}},
                   "status": {"observedGeneration": observed}}),
        )
    }

    fn rs(name: &str, replicas: i64) -> Object {
        let mut o = json_object(
            Kind::ReplicaSet,
            name,
            json!({"spec": {"replicas": replicas}}),
        );
        let owner = pod("x", 1, Some(("Deployment", "u-web")))
            .meta
            .owner_references;
        o.meta.owner_references = owner;
        o
    }

    #[test]
    fn replica_sets_over_replicas_plus_surge_are_caught_once_observed() {
        let mut c = DeploymentBounds::default();
        let mut out = Vec::new();
        let t = SimTime(1);
        // Generation 1 not yet observed: 3 + 2 = 5 > 3 + 1 is not judged.
        c.observe(
            t,
            &Observation::Committed(&change(2, None, Some(&deployment(3, 0)))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(3, None, Some(&rs("old", 3)))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(4, None, Some(&rs("new", 2)))),
            &mut out,
        );
        assert!(out.is_empty());
        // Observed, new at 1 (a scale-down, not judged; then 3 + 1 = 4 =
        // 3 + 1 anyway); new scaled up to 2: 5 > 4.
        c.observe(
            t,
            &Observation::Committed(&change(5, None, Some(&rs("new", 1)))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(6, None, Some(&deployment(3, 1)))),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        c.observe(
            t,
            &Observation::Committed(&change(7, None, Some(&rs("new", 2)))),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("ask for 5 replicas"), "{}", out[0]);
    }

    #[test]
    fn a_voluntary_drop_under_the_floor_is_caught_and_an_involuntary_one_is_not() {
        let mut c = DeploymentBounds::default();
        let mut out = Vec::new();
        let t = SimTime(1);
        c.observe(
            t,
            &Observation::Committed(&change(2, None, Some(&deployment(3, 1)))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(3, None, Some(&rs("old", 3)))),
            &mut out,
        );
        let pods: Vec<Object> = ["a", "b", "d"]
            .iter()
            .map(|n| ready(pod(n, 1, Some(("ReplicaSet", "u-old"))), true, SimTime(0)))
            .collect();
        for (i, p) in pods.iter().enumerate() {
            c.observe(
                t,
                &Observation::Committed(&change(4 + i as u64, None, Some(p))),
                &mut out,
            );
        }
        // Armed at 3 available. a loses readiness on its own (involuntary):
        // 2 available; then b terminates with the set at spec (not a
        // scale-down): 1 < 3 − 1, but disarmed.
        let a_down = ready(pods[0].clone(), false, SimTime(2));
        c.observe(
            t,
            &Observation::Committed(&change(8, Some(&pods[0]), Some(&a_down))),
            &mut out,
        );
        let b_gone = terminating(pods[1].clone(), SimTime(3));
        c.observe(
            t,
            &Observation::Committed(&change(9, Some(&pods[1]), Some(&b_gone))),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // Back to 3 available (a ready, a new e): armed again. The set is
        // scaled to 2 and d, e both go as its surplus... 3 active > 2 makes
        // d's deletion the ReplicaSet's own: 2 available ≥ 2; then e's
        // too (2 active ≤ 2 would be involuntary) — so scale to 1 first.
        let e = ready(pod("e", 1, Some(("ReplicaSet", "u-old"))), true, SimTime(4));
        c.observe(
            t,
            &Observation::Committed(&change(10, Some(&a_down), Some(&pods[0]))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(11, None, Some(&e))),
            &mut out,
        );
        c.observe(
            t,
            &Observation::Committed(&change(12, None, Some(&rs("old", 1)))),
            &mut out,
        );
        let d_gone = terminating(pods[2].clone(), SimTime(5));
        c.observe(
            t,
            &Observation::Committed(&change(13, Some(&pods[2]), Some(&d_gone))),
            &mut out,
        );
        assert!(out.is_empty(), "2 available = floor 2: {out:?}");
        let e_gone = terminating(e.clone(), SimTime(5));
        c.observe(
            t,
            &Observation::Committed(&change(14, Some(&e), Some(&e_gone))),
            &mut out,
        );
        // 2 active > spec 1: the set's own scale-down, 1 available < 2.
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("1 available pods"), "{}", out[0]);
    }
}
