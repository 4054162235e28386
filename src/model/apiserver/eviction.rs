//! The eviction subresource (`POST pods/NAME/eviction`): a delete that first
//! asks the pod's PodDisruptionBudget. The apiserver answers from what it
//! holds: a pod that is Pending, finished or already terminating goes
//! without asking; otherwise the one budget covering it must allow a
//! disruption, which the eviction spends (a status write the disruption
//! controller later confirms) before the pod is marked with the
//! `DisruptionTarget` condition and deleted. A budget that allows nothing
//! answers `429`, which `kubectl drain` retries every five seconds.
//!
//! This file decides; `server.rs` carries the writes out through etcd.

use std::sync::Arc;

use super::request::ApiResponse;
use crate::api::disruption_budget::{DisruptionBudget, MAX_DISRUPTED_PODS};
use crate::api::object::Body;
use crate::api::pod::{Condition, PodPhase};
use crate::api::{Object, ObjectKey};
use crate::sim::{SimDuration, SimTime};

/// `EvictionsRetry`: 20 tries, 500 ms apart, 10% jitter.
pub const RETRY_STEPS: u32 = 20;
pub const RETRY_INTERVAL: SimDuration = SimDuration::from_millis(500);
pub const RETRY_JITTER: f64 = 0.1;

/// The message of every refusal on a budget's account.
pub const VIOLATES_BUDGET: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

/// What to do when the pod's resourceVersion precondition fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// Start the eviction over (after the retry interval).
    Retry,
    /// Answer 429 naming this budget, so the client retries.
    TooManyRequests(String),
}

/// The decision for one eviction attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Mark and delete the pod; if `precondition` is set, only while the
    /// pod is still at that resourceVersion.
    Delete {
        precondition: Option<u64>,
        on_conflict: OnConflict,
    },
    /// Write the budget with one disruption spent, then delete the pod.
    Spend {
        budget: ObjectKey,
        updated: Box<Object>,
    },
    Refuse(Refusal),
}

/// An eviction refused: HTTP code, reason, message, the cause detail, and
/// the Retry-After seconds if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub cause: String,
    pub retry_after: Option<u32>,
}

impl Refusal {
    /// The answer to request `id`.
    pub fn response(self, id: u64) -> ApiResponse {
        ApiResponse {
            id,
            code: self.code,
            reason: self.reason,
            message: self.message,
            cause: self.cause,
            retry_after: self.retry_after,
            object: None,
            items: Vec::new(),
            resource_version: 0,
        }
    }
}

/// Where an eviction in flight stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// The budget's status write is in flight.
    Spend,
    /// The pod's DisruptionTarget condition write is in flight or next.
    Mark {
        precondition: Option<u64>,
        on_conflict: OnConflict,
    },
    /// The pod's deletion is in flight or next.
    Delete {
        precondition: Option<u64>,
        on_conflict: OnConflict,
    },
}

/// `canIgnorePDB`: a pod that is Pending, finished, or already being
/// deleted has nothing left for a budget to protect.
pub fn can_ignore_budget(pod: &Object) -> bool {
    pod.meta.deletion.is_some()
        || pod.as_pod().is_some_and(|p| {
            matches!(
                p.status.phase,
                PodPhase::Pending | PodPhase::Succeeded | PodPhase::Failed
            )
        })
}

/// The 429 for a budget whose status the controller has not caught up with.
pub fn still_processing(budget: &str) -> Refusal {
    Refusal {
        code: 429,
        reason: "TooManyRequests",
        message: VIOLATES_BUDGET.into(),
        cause: format!("The disruption budget {budget} is still being processed by the server."),
        retry_after: Some(10),
    }
}

/// Decides an eviction of `pod` given the budgets of its namespace.
pub fn plan(pod: &Object, budgets: &[Arc<Object>], now: SimTime) -> Plan {
    let running = pod
        .as_pod()
        .is_some_and(|p| !matches!(p.status.phase, PodPhase::Succeeded | PodPhase::Failed));
    if can_ignore_budget(pod) {
        // A Pending pod could turn ready under us: hold it to this version.
        let enforce = running && pod.meta.deletion.is_none();
        return Plan::Delete {
            precondition: enforce.then_some(pod.meta.resource_version),
            on_conflict: OnConflict::Retry,
        };
    }
    let covering: Vec<(&Arc<Object>, DisruptionBudget)> = budgets
        .iter()
        .filter_map(|o| Some((o, DisruptionBudget::read(o)?)))
        .filter(|(_, b)| b.selects(pod))
        .collect();
    if covering.len() > 1 {
        return Plan::Refuse(Refusal {
            code: 500,
            reason: "InternalError",
            message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
            cause: String::new(),
            retry_after: None,
        });
    }
    let Some((obj, b)) = covering.into_iter().next() else {
        return Plan::Delete {
            precondition: None,
            on_conflict: OnConflict::Retry,
        };
    };
    let ready = pod.as_pod().is_some_and(|p| p.status.is_ready());
    if !ready
        && (b.always_allow_unhealthy
            || (b.status.current_healthy >= b.status.desired_healthy
                && b.status.desired_healthy > 0))
    {
        // An unready pod counts for nothing: evict it without spending,
        // unless it turned ready meanwhile.
        return Plan::Delete {
            precondition: Some(pod.meta.resource_version),
            on_conflict: OnConflict::TooManyRequests(b.name.clone()),
        };
    }
    // `checkAndDecrement`.
    if b.status.observed_generation < b.generation {
        return Plan::Refuse(still_processing(&b.name));
    }
    let forbidden = |why: &str| {
        Plan::Refuse(Refusal {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "poddisruptionbudgets.policy {:?} is forbidden: {why}",
                b.name
            ),
            cause: String::new(),
            retry_after: None,
        })
    };
    if b.status.disruptions_allowed < 0 {
        return forbidden("pdb disruptions allowed is negative");
    }
    if b.status.disrupted_pods.len() > MAX_DISRUPTED_PODS {
        return forbidden(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        );
    }
    if b.status.disruptions_allowed == 0 {
        return Plan::Refuse(Refusal {
            code: 429,
            reason: "TooManyRequests",
            message: VIOLATES_BUDGET.into(),
            cause: format!(
                "The disruption budget {} needs {} healthy pods and has {} currently",
                b.name, b.status.desired_healthy, b.status.current_healthy
            ),
            retry_after: None,
        });
    }
    let mut status = b.status.clone();
    status.disruptions_allowed -= 1;
    if status.disruptions_allowed == 0 {
        status.update_allowed_condition(now);
    }
    status.disrupted_pods.insert(pod.meta.name.clone(), now);
    let mut updated = (**obj).clone();
    if let Body::Json(m) = &mut updated.body {
        Arc::make_mut(m).insert("status".into(), status.to_json());
    }
    Plan::Spend {
        budget: obj.key(),
        updated: Box::new(updated),
    }
}

/// The pod with the `DisruptionTarget` condition the eviction sets.
pub fn mark(pod: &Object, now: SimTime) -> Object {
    let mut out = pod.clone();
    if let Body::Pod(p) = &mut out.body {
        let cond = Condition {
            type_: "DisruptionTarget",
            status: true,
            last_transition: now,
            reason: Some("EvictionByEvictionAPI".into()),
            message: Some("Eviction API: evicting".into()),
        };
        match p
            .status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == cond.type_)
        {
            Some(c) => {
                let since = if c.status { c.last_transition } else { now };
                *c = cond;
                c.last_transition = since;
            }
            None => p.status.conditions.push(cond),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::manifest::{load_manifests, FieldReport};
    use crate::api::Kind;

    fn objects(yaml: &str) -> Vec<Object> {
        load_manifests("t.yaml", yaml, &mut FieldReport::default()).expect("valid manifests")
    }

    /// A pod labelled app=web in `phase`, ready or not, at resourceVersion 7.
    fn pod(phase: PodPhase, ready: bool) -> Object {
        let mut o = objects(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: default, labels: {app: web}}\nspec:\n  containers: [{name: c, image: nginx}]\n",
        )
        .remove(0);
        o.meta.resource_version = 7;
        if let Body::Pod(p) = &mut o.body {
            p.status.phase = phase;
            p.status.set_condition("Ready", ready, SimTime::ZERO, None);
        }
        o
    }

    fn budget(name: &str, status: &str) -> Arc<Object> {
        let mut o = objects(&format!(
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: {name}, namespace: default}}\nspec: {{maxUnavailable: 1, selector: {{matchLabels: {{app: web}}}}}}\n"
        ))
        .remove(0);
        o.meta.generation = 1;
        o.meta.resource_version = 3;
        if let Body::Json(m) = &mut o.body {
            Arc::make_mut(m).insert("status".into(), serde_json::from_str(status).unwrap());
        }
        Arc::new(o)
    }

    const ALLOWS_TWO: &str = r#"{"observedGeneration": 1, "disruptionsAllowed": 2, "currentHealthy": 6, "desiredHealthy": 4, "expectedPods": 6}"#;
    const ALLOWS_NONE: &str = r#"{"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 5, "desiredHealthy": 5, "expectedPods": 6}"#;

    fn refused(p: Plan) -> (u16, String, Option<u32>) {
        match p {
            Plan::Refuse(r) => (r.code, r.cause, r.retry_after),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn pods_with_nothing_to_protect_go_without_asking() {
        let none = [budget("web", ALLOWS_NONE)];
        let pending = plan(&pod(PodPhase::Pending, false), &none, SimTime::ZERO);
        assert_eq!(
            pending,
            Plan::Delete {
                precondition: Some(7),
                on_conflict: OnConflict::Retry
            }
        );
        for phase in [PodPhase::Succeeded, PodPhase::Failed] {
            let p = plan(&pod(phase, false), &none, SimTime::ZERO);
            assert!(matches!(
                p,
                Plan::Delete {
                    precondition: None,
                    ..
                }
            ));
        }
        let mut deleting = pod(PodPhase::Running, true);
        deleting.meta.deletion = Some(SimTime::ZERO);
        let p = plan(&deleting, &none, SimTime::ZERO);
        assert!(matches!(
            p,
            Plan::Delete {
                precondition: None,
                ..
            }
        ));
    }

    #[test]
    fn a_budget_with_room_is_spent_and_records_the_pod() {
        let now = SimTime::ZERO.after(SimDuration::from_secs(90));
        let p = plan(
            &pod(PodPhase::Running, true),
            &[budget("web", ALLOWS_TWO)],
            now,
        );
        let Plan::Spend {
            budget: key,
            updated,
        } = p
        else {
            panic!("expected the budget to be spent, got {p:?}")
        };
        assert_eq!(key.kind, Kind::PodDisruptionBudget);
        let b = DisruptionBudget::read(&updated).unwrap();
        assert_eq!(b.status.disruptions_allowed, 1);
        assert_eq!(b.status.disrupted_pods.get("web-1"), Some(&now));
        // Still allowing one: the condition is left to the controller.
        assert!(b.status.conditions.is_empty());
    }

    #[test]
    fn spending_the_last_disruption_flips_the_condition() {
        let one = r#"{"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 6, "desiredHealthy": 5, "expectedPods": 6}"#;
        let p = plan(
            &pod(PodPhase::Running, true),
            &[budget("web", one)],
            SimTime::ZERO,
        );
        let Plan::Spend { updated, .. } = p else {
            panic!()
        };
        let b = DisruptionBudget::read(&updated).unwrap();
        assert_eq!(b.status.disruptions_allowed, 0);
        assert_eq!(b.status.conditions[0]["reason"], "InsufficientPods");
    }

    #[test]
    fn refusals_say_what_upstream_says() {
        let running = pod(PodPhase::Running, true);
        let (code, cause, retry) =
            refused(plan(&running, &[budget("web", ALLOWS_NONE)], SimTime::ZERO));
        assert_eq!(code, 429);
        assert_eq!(
            cause,
            "The disruption budget web needs 5 healthy pods and has 5 currently"
        );
        assert_eq!(retry, None, "kubectl, not client-go, retries this one");

        let stale = r#"{"observedGeneration": 0, "disruptionsAllowed": 3}"#;
        let (code, cause, retry) = refused(plan(&running, &[budget("web", stale)], SimTime::ZERO));
        assert_eq!(code, 429);
        assert_eq!(
            cause,
            "The disruption budget web is still being processed by the server."
        );
        assert_eq!(retry, Some(10));

        let negative = r#"{"observedGeneration": 1, "disruptionsAllowed": -1}"#;
        let (code, ..) = refused(plan(&running, &[budget("web", negative)], SimTime::ZERO));
        assert_eq!(code, 403);

        let two = [budget("a", ALLOWS_TWO), budget("b", ALLOWS_TWO)];
        let (code, ..) = refused(plan(&running, &two, SimTime::ZERO));
        assert_eq!(code, 500);
    }

    #[test]
    fn an_unready_pod_goes_free_while_the_budget_is_met() {
        let unready = pod(PodPhase::Running, false);
        // currentHealthy 5 >= desiredHealthy 5 > 0: no need to spend.
        let p = plan(&unready, &[budget("web", ALLOWS_NONE)], SimTime::ZERO);
        assert_eq!(
            p,
            Plan::Delete {
                precondition: Some(7),
                on_conflict: OnConflict::TooManyRequests("web".into())
            }
        );
        // Below the budget, the unready pod must wait like any other.
        let short = r#"{"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 4, "desiredHealthy": 5}"#;
        let (code, ..) = refused(plan(&unready, &[budget("web", short)], SimTime::ZERO));
        assert_eq!(code, 429);
    }

    #[test]
    fn marking_keeps_other_conditions() {
        let marked = mark(&pod(PodPhase::Running, true), SimTime::ZERO);
        let st = &marked.as_pod().unwrap().status;
        assert!(st.is_ready());
        let c = st.condition("DisruptionTarget").unwrap();
        assert!(c.status);
        assert_eq!(c.reason.as_deref(), Some("EvictionByEvictionAPI"));
    }
}
