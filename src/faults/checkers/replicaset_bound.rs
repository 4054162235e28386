//! A ReplicaSet never over-creates: when etcd commits the create of a pod
//! a ReplicaSet controls, the ReplicaSet's active pods (not terminating,
//! not finished), the new one included, are at most the largest
//! `spec.replicas` it had over the [`LAG`] before.
//!
//! Why that bound: upstream's controller creates `replicas − active` pods
//! and raises its expectations by as many; it does not act on that
//! ReplicaSet again until its informer has seen every one of those
//! creates (or five minutes pass). So its creates never outrun the spec
//! it read, whose staleness is bounded by how old a create can be when the
//! apiserver handles it (one client timeout) plus how far the informer
//! can lag (one watch keepalive before a stalled stream breaks).
//! A controller that forgets its expectations (on a relist, say) counts
//! pods its cache has not seen yet and creates them again: more active
//! pods than any recent spec.
//!
//! One surplus is the controller's right: a create answered 5xx (the
//! apiserver lost its etcd connection mid-write, or timed out) may have
//! committed all the same, and upstream's `manageReplicas` then lowers its
//! expectations (`CreationObserved` for every create that did not
//! succeed) and creates again before its informer shows the first. Each
//! such answer for a ReplicaSet's pod, over the [`LAG`] before, allows one
//! pod more.

use std::collections::{BTreeMap, VecDeque};

use super::read::{controller_uid, is_active, replicas, write_ref};
use super::Checker;
use crate::api::Kind;
use crate::faults::observe::{Observation, Violation};
use crate::model::apiserver::request::{ApiRequest, Verb};
use crate::model::etcd::store::WatchedChange;
use crate::sim::{SimDuration, SimTime};

const NAME: &str = "replicaset-bound";

/// How stale the spec behind a create may be: client-go's 60 s request
/// timeout plus the 45 s HTTP/2 health check, rounded up.
pub const LAG: SimDuration = SimDuration::from_secs(120);

#[derive(Default)]
struct Set {
    /// (from when, spec.replicas), newest last; entries older than `LAG`
    /// that a newer one covers are dropped.
    specs: VecDeque<(SimTime, i64)>,
    active: i64,
    /// When a create of one of its pods was answered 5xx, oldest first.
    unanswered: VecDeque<SimTime>,
}

impl Set {
    fn max_spec(&self, now: SimTime) -> i64 {
        // An entry counts while it was current at some point of the window.
        let n = self.specs.len();
        self.specs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i + 1 == n || now.since(self.specs[i + 1].0) <= LAG)
            .map(|(_, s)| s.1)
            .max()
            .unwrap_or(0)
    }

    /// Creates answered 5xx over the [`LAG`] before `now`: each may have
    /// committed unseen by the controller.
    fn ambiguous(&mut self, now: SimTime) -> i64 {
        while self.unanswered.front().is_some_and(|t| now.since(*t) > LAG) {
            self.unanswered.pop_front();
        }
        self.unanswered.len() as i64
    }
}

#[derive(Default)]
pub struct ReplicaSetBound {
    sets: BTreeMap<String, Set>,
    /// Pod uid → (its ReplicaSet's uid, active).
    pods: BTreeMap<String, (String, bool)>,
}

impl ReplicaSetBound {
    /// A pod create a ReplicaSet sent that was answered 5xx.
    fn create_unanswered(&mut self, at: SimTime, req: &ApiRequest) {
        if req.kind != Kind::Pod || req.verb != Verb::Create {
            return;
        }
        let Some(rs) = req
            .body
            .as_deref()
            .and_then(|b| controller_uid(b, "ReplicaSet"))
        else {
            return;
        };
        if let Some(s) = self.sets.get_mut(rs) {
            s.unanswered.push_back(at);
        }
    }

    fn set_written(&mut self, at: SimTime, c: &WatchedChange) {
        let Some(o) = c.value.as_deref() else {
            if let Some(p) = &c.prev {
                self.sets.remove(p.meta.uid.as_str());
            }
            return;
        };
        let r = replicas(o);
        let s = match self.sets.get_mut(o.meta.uid.as_str()) {
            Some(s) => s,
            None => self.sets.entry(o.meta.uid.clone()).or_default(),
        };
        if s.specs.back().is_some_and(|b| b.1 == r) {
            return;
        }
        s.specs.push_back((at, r));
        while s.specs.len() > 1 && at.since(s.specs[1].0) > LAG {
            s.specs.pop_front();
        }
    }

    fn pod_written(&mut self, at: SimTime, c: &WatchedChange, out: &mut Vec<Violation>) {
        let Some(obj) = c.value.as_deref().or(c.prev.as_deref()) else {
            return;
        };
        let uid = obj.meta.uid.as_str();
        let active = c.value.as_deref().is_some_and(is_active);
        let owner = c
            .value
            .as_deref()
            .and_then(|v| controller_uid(v, "ReplicaSet"));
        // Take the old share off its set, put the new one on.
        if let Some((rs, was)) = self.pods.get(uid) {
            if *was {
                if let Some(s) = self.sets.get_mut(rs.as_str()) {
                    s.active -= 1;
                }
            }
        }
        let Some(rs) = owner else {
            self.pods.remove(uid);
            return;
        };
        match self.pods.get_mut(uid) {
            Some(e) => {
                if e.0 != rs {
                    e.0 = rs.to_string();
                }
                e.1 = active;
            }
            None => {
                self.pods.insert(uid.to_string(), (rs.to_string(), active));
            }
        }
        let Some(s) = self.sets.get_mut(rs) else {
            return;
        };
        if active {
            s.active += 1;
        }
        let created = c.prev.is_none() && c.value.is_some();
        let bound = s.max_spec(at) + s.ambiguous(at);
        if created && active && s.active > bound {
            out.push(Violation {
                checker: NAME,
                at,
                objects: vec![c.key.to_string()],
                message: format!(
                    "the create of {} gave its ReplicaSet {} active pods; its spec.replicas was at most {bound} over the last {LAG}",
                    c.key, s.active
                ),
                records: vec![write_ref(at, &c.key, c.revision)],
            });
        }
    }
}

impl Checker for ReplicaSetBound {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, at: SimTime, o: &Observation<'_>, out: &mut Vec<Violation>) {
        match *o {
            Observation::Committed(c) => match c.key.kind {
                Kind::ReplicaSet => self.set_written(at, c),
                Kind::Pod => self.pod_written(at, c, out),
                _ => {}
            },
            Observation::Unanswered { req, .. } => self.create_unanswered(at, req),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::fixtures::{change, json_object, pod, terminating};
    use super::*;
    use serde_json::json;

    fn rs(replicas: i64) -> crate::api::Object {
        json_object(
            Kind::ReplicaSet,
            "web",
            json!({"spec": {"replicas": replicas}}),
        )
    }

    #[test]
    fn a_create_beyond_every_recent_spec_is_caught_and_a_lagging_spec_explains_one() {
        let mut c = ReplicaSetBound::default();
        let mut out = Vec::new();
        let at = |s: u64| SimTime(s * 1_000_000_000);
        c.observe(
            at(0),
            &Observation::Committed(&change(2, None, Some(&rs(2)))),
            &mut out,
        );
        let pods: Vec<_> = ["a", "b", "d"]
            .iter()
            .map(|n| pod(n, 1, Some(("ReplicaSet", "u-web"))))
            .collect();
        let create = |i: usize, rv| change(rv, None, Some(&pods[i]));
        c.observe(at(1), &Observation::Committed(&create(0, 3)), &mut out);
        c.observe(at(1), &Observation::Committed(&create(1, 4)), &mut out);
        // Scaled to 1 at 10 s; b's replacement... a third create at 20 s
        // is within the lag of spec 2 but makes 3 active: over.
        c.observe(
            at(10),
            &Observation::Committed(&change(5, Some(&rs(2)), Some(&rs(1)))),
            &mut out,
        );
        assert!(out.is_empty());
        c.observe(at(20), &Observation::Committed(&create(2, 6)), &mut out);
        assert_eq!(out.len(), 1, "3 active > max(2, 1)");
        // a and b terminate; d alone is 1 active. A new pod at 200 s, when
        // spec 2 left the window 190 s ago: 2 active > 1.
        let a_gone = terminating(pods[0].clone(), at(30));
        let b_gone = terminating(pods[1].clone(), at(30));
        c.observe(
            at(30),
            &Observation::Committed(&change(7, Some(&pods[0]), Some(&a_gone))),
            &mut out,
        );
        c.observe(
            at(30),
            &Observation::Committed(&change(8, Some(&pods[1]), Some(&b_gone))),
            &mut out,
        );
        let e = pod("e", 1, Some(("ReplicaSet", "u-web")));
        c.observe(
            at(200),
            &Observation::Committed(&change(9, None, Some(&e))),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        // Scaled to 3: a fourth pod is 3 active, legal.
        c.observe(
            at(201),
            &Observation::Committed(&change(10, Some(&rs(1)), Some(&rs(3)))),
            &mut out,
        );
        let f = pod("f", 1, Some(("ReplicaSet", "u-web")));
        c.observe(
            at(202),
            &Observation::Committed(&change(11, None, Some(&f))),
            &mut out,
        );
        assert_eq!(out.len(), 2);
    }

    /// What `scenarios/fuzz-planted-relist.yaml` relies on: on a spec that
    /// only grows, the lag hides nothing, so the first create past the
    /// current spec is reported whenever it comes.
    #[test]
    fn on_a_growing_spec_one_create_past_it_is_caught_at_once() {
        let mut c = ReplicaSetBound::default();
        let mut out = Vec::new();
        let at = |s: u64| SimTime(s * 1_000_000_000);
        c.observe(
            at(0),
            &Observation::Committed(&change(2, None, Some(&rs(6)))),
            &mut out,
        );
        let pods: Vec<_> = (0..10)
            .map(|i| pod(&format!("p{i}"), 1, Some(("ReplicaSet", "u-web"))))
            .collect();
        for (i, p) in pods[..6].iter().enumerate() {
            let c6 = change(3 + i as u64, None, Some(p));
            c.observe(at(1), &Observation::Committed(&c6), &mut out);
        }
        // Scaled to 9 at 120 s (rv 9); its 3 creates at 200 s make 9
        // active, max(6, 9) = 9: within.
        c.observe(
            at(120),
            &Observation::Committed(&change(9, Some(&rs(6)), Some(&rs(9)))),
            &mut out,
        );
        for (i, p) in pods[6..9].iter().enumerate() {
            let c3 = change(10 + i as u64, None, Some(p));
            c.observe(at(200), &Observation::Committed(&c3), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // A fourth create 1 ms later (the sync that forgot its
        // expectations) is 10 active > 9, though the scale was 80 s ago,
        // inside the 120 s lag: an older spec, 6, cannot excuse it.
        let late = SimTime(at(200).0 + 1_000_000);
        c.observe(
            late,
            &Observation::Committed(&change(13, None, Some(&pods[9]))),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("10 active pods"), "{}", out[0]);
        assert!(out[0].message.contains("at most 9"), "{}", out[0]);
    }
    /// fuzz-everything seed 1409: etcd-0 crashed under a create, the
    /// apiserver answered 504 though the pod committed, and the controller
    /// created again before its informer showed the first (upstream does
    /// the same): one pod over the spec, which the controller then deletes.
    #[test]
    fn a_create_answered_5xx_allows_one_surplus_for_the_lag() {
        let mut c = ReplicaSetBound::default();
        let mut out = Vec::new();
        let at = |s: u64| SimTime(s * 1_000_000_000);
        c.observe(
            at(0),
            &Observation::Committed(&change(2, None, Some(&rs(2)))),
            &mut out,
        );
        let pods: Vec<_> = ["a", "b", "d", "e"]
            .iter()
            .map(|n| pod(n, 1, Some(("ReplicaSet", "u-web"))))
            .collect();
        let create = |i: usize, rv| change(rv, None, Some(&pods[i]));
        c.observe(at(1), &Observation::Committed(&create(0, 3)), &mut out);
        // b's create commits but its answer is a 504.
        c.observe(at(1), &Observation::Committed(&create(1, 4)), &mut out);
        let mut req = ApiRequest::new(Verb::Create, Kind::Pod, "default", "");
        req.body = Some(std::sync::Arc::new(pods[1].clone()));
        let client: crate::sim::ComponentId = 0;
        let unanswered = Observation::Unanswered {
            client,
            req: &req,
            code: 504,
        };
        c.observe(at(1), &unanswered, &mut out);
        // d, the controller's second try: 3 active ≤ spec 2 + 1 ambiguous.
        c.observe(at(1), &Observation::Committed(&create(2, 5)), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // e: 4 active > 2 + 1, caught.
        c.observe(at(2), &Observation::Committed(&create(3, 6)), &mut out);
        assert_eq!(out.len(), 1, "4 active > 3");
        assert!(out[0].message.contains("at most 3"), "{}", out[0]);
        // 121 s after the 504 its allowance is gone: a pod created after d
        // and e left makes 3 active (a, b, f) > 2 again.
        let d_gone = terminating(pods[2].clone(), at(3));
        let e_gone = terminating(pods[3].clone(), at(3));
        c.observe(
            at(3),
            &Observation::Committed(&change(7, Some(&pods[2]), Some(&d_gone))),
            &mut out,
        );
        c.observe(
            at(3),
            &Observation::Committed(&change(8, Some(&pods[3]), Some(&e_gone))),
            &mut out,
        );
        let f = pod("f", 1, Some(("ReplicaSet", "u-web")));
        c.observe(
            at(122),
            &Observation::Committed(&change(9, None, Some(&f))),
            &mut out,
        );
        assert_eq!(out.len(), 2, "3 active > 2 + 0 once the 504 is 121 s old");
    }
}
