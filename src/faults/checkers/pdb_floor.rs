//! Voluntary evictions never take a PodDisruptionBudget below its floor.
//!
//! Judged from the committed history, not the apiserver's cache: when an
//! eviction decides on a pod that is healthy in etcd (Ready, not
//! terminating, not finished), every budget selecting it must keep at
//! least its floor of healthy pods after the pod goes, counting as gone
//! the pods earlier evictions accepted whose deletion etcd has not
//! committed yet. The decision is the budget write that spends a
//! disruption (the pod added to `disruptedPods`, upstream's
//! `checkAndDecrement`) or, for an eviction no budget paid for, its point
//! of no return before the delete: a pod that goes unready between the
//! spend and the delete does not make the spend wrong.
//!
//! The floor is `minAvailable` when it is an integer; for a percentage or
//! `maxUnavailable` it is the `desiredHealthy` the disruption controller
//! last wrote (that needs the owners' scale, which a budget's own fields
//! do not give).
//!
//! Involuntary disruptions are tolerated: when a pod a budget selects
//! goes from healthy to not healthy without an accepted eviction (a node
//! died, a probe failed, something deleted it), the budget's status no
//! longer accounts for it and it is not judged until the disruption
//! controller writes its status again (a write that is not the eviction
//! API spending a disruption).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::read::{is_ready, key_of};
use super::Checker;
use crate::api::disruption_budget::DisruptionBudget;
use crate::api::int_or_percent::IntOrPercent;
use crate::api::{Kind, Object};
use crate::faults::observe::{Observation, RecordRef, Violation};
use crate::model::etcd::store::WatchedChange;
use crate::sim::SimTime;

const NAME: &str = "pdb-floor";

struct Budget {
    b: DisruptionBudget,
    /// A selected pod went unhealthy involuntarily since the last status.
    involuntary: bool,
}

#[derive(Default)]
pub struct PdbFloor {
    /// Pod uid → the pod as committed.
    pods: BTreeMap<String, Arc<Object>>,
    budgets: BTreeMap<String, Budget>,
    /// Pods an eviction accepted whose deletion is not committed yet.
    evicting: BTreeSet<String>,
}

impl PdbFloor {
    fn pod_written(&mut self, c: &WatchedChange) {
        let Some(obj) = c.value.as_ref().or(c.prev.as_ref()) else {
            return;
        };
        let uid = obj.meta.uid.as_str();
        let was = self.pods.get(uid).is_some_and(|p| is_ready(p));
        let now = c.value.as_deref().is_some_and(is_ready);
        let evicted = self.evicting.contains(uid);
        if was && !now && !evicted {
            for b in self.budgets.values_mut() {
                if b.b.selects(obj) {
                    b.involuntary = true;
                }
            }
        }
        if !now && evicted {
            self.evicting.remove(uid);
        }
        match &c.value {
            Some(v) => match self.pods.get_mut(uid) {
                Some(slot) => *slot = v.clone(),
                None => {
                    self.pods.insert(uid.to_string(), v.clone());
                }
            },
            None => {
                self.pods.remove(uid);
            }
        }
    }

    fn budget_written(&mut self, at: SimTime, c: &WatchedChange, out: &mut Vec<Violation>) {
        let name = c.key.to_string();
        let Some(v) = c.value.as_deref().and_then(DisruptionBudget::read) else {
            self.budgets.remove(&name);
            return;
        };
        // The eviction API spends a disruption by adding its pod to
        // `disruptedPods`; the names this write added are its evictions.
        let added: Vec<String> = match self.budgets.get(&name) {
            Some(old) => v
                .status
                .disrupted_pods
                .keys()
                .filter(|p| !old.b.status.disrupted_pods.contains_key(*p))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let spent = !added.is_empty();
        let involuntary = spent && self.budgets.get(&name).is_some_and(|o| o.involuntary);
        let namespace = v.namespace.clone();
        self.budgets.insert(name, Budget { b: v, involuntary });
        for pod in added {
            let found = self
                .pods
                .values()
                .find(|p| p.meta.namespace == namespace && p.meta.name == pod)
                .cloned();
            if let Some(p) = found {
                self.judge(at, &p, out);
            }
        }
    }

    /// The eviction's pod delete. An eviction that spent a budget was
    /// judged when it spent it (upstream's `checkAndDecrement`, the
    /// decision); what happens to other pods between that write and this
    /// delete is not the eviction's doing.
    fn accepted(&mut self, at: SimTime, pod: &Object, out: &mut Vec<Violation>) {
        if self.evicting.contains(pod.meta.uid.as_str()) {
            return;
        }
        self.judge(at, pod, out);
    }

    /// Counts `pod` as going and checks every budget selecting it keeps its
    /// floor.
    fn judge(&mut self, at: SimTime, pod: &Object, out: &mut Vec<Violation>) {
        let uid = pod.meta.uid.as_str();
        let Some(committed) = self.pods.get(uid).cloned() else {
            return;
        };
        let healthy_now = is_ready(&committed) && !self.evicting.contains(uid);
        self.evicting.insert(uid.to_string());
        if !healthy_now {
            return;
        }
        for (name, b) in &self.budgets {
            if b.involuntary || !b.b.selects(&committed) {
                continue;
            }
            let healthy = self
                .pods
                .iter()
                .filter(|(u, p)| is_ready(p) && b.b.selects(p) && !self.evicting.contains(*u))
                .count() as i64;
            let floor = match &b.b.min_available {
                Some(IntOrPercent::Int(n)) => *n,
                _ => b.b.status.desired_healthy,
            };
            // `healthy` no longer counts the evicted pod.
            if healthy < floor {
                let key = key_of(pod);
                out.push(Violation {
                    checker: NAME,
                    at,
                    objects: vec![name.clone(), key.clone()],
                    message: format!(
                        "evicting {key} leaves {healthy} healthy pods under {name}, below its floor of {floor}"
                    ),
                    records: vec![RecordRef {
                        at,
                        event: "Request",
                        key: Some(key),
                        rv: Some(pod.meta.resource_version),
                    }],
                });
            }
        }
    }
}

impl Checker for PdbFloor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::Committed(c) if c.key.kind == Kind::Pod => self.pod_written(c),
            Observation::Committed(c) if c.key.kind == Kind::PodDisruptionBudget => {
                self.budget_written(at, c, out)
            }
            Observation::EvictionAccepted { pod } => self.accepted(at, pod, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{change, json_object, pod, ready};
    use super::*;
    use serde_json::json;

    fn budget(min: i64) -> Object {
        json_object(
            Kind::PodDisruptionBudget,
            "web",
            json!({"spec": {"minAvailable": min, "selector": {"matchLabels": {"app": "web"}}},
                   "status": {"desiredHealthy": min, "observedGeneration": 1}}),
        )
    }

    fn web(name: &str) -> Object {
        let mut p = ready(pod(name, 1, None), true, SimTime(0));
        p.meta.labels = Arc::new([("app".to_string(), "web".to_string())].into());
        p
    }

    #[test]
    fn an_eviction_below_min_available_is_caught_and_one_above_it_is_not() {
        let mut c = PdbFloor::default();
        let mut out = Vec::new();
        let pods = [web("a"), web("b"), web("d")];
        let mut rv = 1;
        for p in &pods {
            rv += 1;
            c.observe(
                SimTime(1),
                &Observation::Committed(&change(rv, None, Some(p))),
                &mut out,
            );
        }
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(9, None, Some(&budget(2)))),
            &mut out,
        );
        // 3 healthy, floor 2: evicting a leaves 2.
        c.observe(
            SimTime(2),
            &Observation::EvictionAccepted { pod: &pods[0] },
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // a's deletion not yet committed: evicting b leaves 1 < 2.
        c.observe(
            SimTime(3),
            &Observation::EvictionAccepted { pod: &pods[1] },
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.contains("leaves 1 healthy pods"),
            "{}",
            out[0]
        );
    }

    #[test]
    fn an_involuntary_loss_suspends_the_budget_until_its_status_is_written() {
        let mut c = PdbFloor::default();
        let mut out = Vec::new();
        let pods = [web("a"), web("b"), web("d")];
        for (i, p) in pods.iter().enumerate() {
            c.observe(
                SimTime(1),
                &Observation::Committed(&change(2 + i as u64, None, Some(p))),
                &mut out,
            );
        }
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(9, None, Some(&budget(2)))),
            &mut out,
        );
        // d loses readiness on its own: 2 healthy; evicting a leaves 1, but
        // the budget's status has not seen d go.
        let d_down = ready(pods[2].clone(), false, SimTime(2));
        c.observe(
            SimTime(2),
            &Observation::Committed(&change(10, Some(&pods[2]), Some(&d_down))),
            &mut out,
        );
        c.observe(
            SimTime(3),
            &Observation::EvictionAccepted { pod: &pods[0] },
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // The controller writes the status; now evicting b (1 healthy left
        // after it: b is the only one, a is being evicted) is judged.
        let b = budget(2);
        c.observe(
            SimTime(4),
            &Observation::Committed(&change(11, Some(&b), Some(&b))),
            &mut out,
        );
        c.observe(
            SimTime(5),
            &Observation::EvictionAccepted { pod: &pods[1] },
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(
            out[0].message.contains("leaves 0 healthy pods"),
            "{}",
            out[0]
        );
    }

    fn spent_on(min: i64, pod: &str) -> Object {
        json_object(
            Kind::PodDisruptionBudget,
            "web",
            json!({"spec": {"minAvailable": min, "selector": {"matchLabels": {"app": "web"}}},
                   "status": {"desiredHealthy": min, "observedGeneration": 1,
                              "disruptedPods": {pod: "2025-01-01T00:00:00Z"}}}),
        )
    }

    /// fuzz-everything seeds 252 and 414: the eviction API spent the
    /// budget on a with 3 healthy (2 left, the floor); before the delete,
    /// d went unready on its own and the disruption controller rewrote the
    /// status. Judged at the delete, 1 healthy was left (b): a violation
    /// before the fix. Judged at the spend, 2 were: none.
    #[test]
    fn an_eviction_is_judged_when_it_spends_the_budget_not_at_its_delete() {
        let mut c = PdbFloor::default();
        let mut out = Vec::new();
        let pods = [web("a"), web("b"), web("d")];
        for (i, p) in pods.iter().enumerate() {
            c.observe(
                SimTime(1),
                &Observation::Committed(&change(2 + i as u64, None, Some(p))),
                &mut out,
            );
        }
        let fresh = budget(2);
        c.observe(
            SimTime(1),
            &Observation::Committed(&change(9, None, Some(&fresh))),
            &mut out,
        );
        // The spend: a joins disruptedPods; 3 healthy − a = 2 = floor.
        let spent = spent_on(2, "a");
        c.observe(
            SimTime(2),
            &Observation::Committed(&change(10, Some(&fresh), Some(&spent))),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // d goes unready; the controller writes the status again (a still
        // listed, so nothing spent): the involuntary loss is accounted for.
        let d_down = ready(pods[2].clone(), false, SimTime(3));
        c.observe(
            SimTime(3),
            &Observation::Committed(&change(11, Some(&pods[2]), Some(&d_down))),
            &mut out,
        );
        c.observe(
            SimTime(3),
            &Observation::Committed(&change(12, Some(&spent), Some(&spent))),
            &mut out,
        );
        // a's delete: already judged at the spend.
        c.observe(
            SimTime(4),
            &Observation::EvictionAccepted { pod: &pods[0] },
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // A spend that does go below the floor is still caught: b now, with
        // a evicting and d unready, leaves 0 of a floor of 2.
        let mut both = spent_on(2, "a");
        if let crate::api::object::Body::Json(m) = &mut both.body {
            let m = std::sync::Arc::make_mut(m);
            m["status"]["disruptedPods"]["b"] = json!("2025-01-01T00:00:04Z");
        }
        c.observe(
            SimTime(5),
            &Observation::Committed(&change(13, Some(&spent), Some(&both))),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].message.contains("leaves 0 healthy pods"),
            "{}",
            out[0]
        );
    }
}
