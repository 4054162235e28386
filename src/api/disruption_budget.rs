//! A PodDisruptionBudget as its three readers see it: the disruption
//! controller (which computes its status), the apiserver's eviction
//! subresource (which spends it) and the scheduler's preemption (which
//! prefers not to break it). One reading of the spec and status, and one
//! writer of the status JSON, so the three cannot drift apart.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use super::int_or_percent::IntOrPercent;
use super::object::Body;
use super::selector::Selector;
use super::{Kind, Object};
use crate::sim::{SimDuration, SimTime};

/// How long an eviction's entry in `status.disruptedPods` holds a pod out of
/// the healthy count before the controller decides it was never deleted
/// (`DeletionTimeout`).
pub const DELETION_TIMEOUT: SimDuration = SimDuration::from_secs(120);

/// Past this many unconfirmed evictions the eviction API refuses more
/// (`MaxDisruptedPodSize`).
pub const MAX_DISRUPTED_PODS: usize = 2000;

/// The condition type the controller and the eviction API maintain.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";

/// `spec` and `status` of a PodDisruptionBudget.
#[derive(Clone, Debug, PartialEq)]
pub struct DisruptionBudget {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// `None` selects nothing (a null selector); an empty one selects every
    /// pod of the namespace, as policy/v1 defines it.
    pub selector: Option<Selector>,
    pub min_available: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
    /// `unhealthyPodEvictionPolicy: AlwaysAllow`: a pod that is not ready
    /// may always be evicted (the default, `IfHealthyBudget`, allows it only
    /// while the budget is met).
    pub always_allow_unhealthy: bool,
    pub status: BudgetStatus,
}

/// `status` as last written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BudgetStatus {
    pub observed_generation: i64,
    pub disruptions_allowed: i64,
    pub current_healthy: i64,
    pub desired_healthy: i64,
    pub expected_pods: i64,
    /// Pods the eviction API approved and the controller has not yet seen
    /// go, with when.
    pub disrupted_pods: BTreeMap<String, SimTime>,
    /// `conditions`, kept as written (their transition times matter).
    pub conditions: Vec<Json>,
}

impl DisruptionBudget {
    /// Reads a PodDisruptionBudget object; `None` for any other kind.
    pub fn read(o: &Object) -> Option<DisruptionBudget> {
        let Body::Json(m) = &o.body else { return None };
        if o.kind != Kind::PodDisruptionBudget {
            return None;
        }
        let spec = m.get("spec");
        let at = |k: &str| spec.and_then(|s| s.get(k));
        let selector = at("selector")
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .and_then(|s| Selector::from_api(&s).ok());
        let status = m.get("status");
        let int = |k: &str| {
            status
                .and_then(|s| s.get(k))
                .and_then(Json::as_i64)
                .unwrap_or(0)
        };
        let disrupted_pods = status
            .and_then(|s| s.get("disruptedPods"))
            .and_then(Json::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), SimTime::parse_rfc3339(v.as_str()?)?)))
                    .collect()
            })
            .unwrap_or_default();
        let conditions = status
            .and_then(|s| s.get("conditions"))
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        Some(DisruptionBudget {
            namespace: o.meta.namespace.clone(),
            name: o.meta.name.clone(),
            generation: o.meta.generation,
            selector,
            // The API defaults an empty budget to `minAvailable: 1`.
            min_available: IntOrPercent::read(at("minAvailable")).or_else(|| {
                at("maxUnavailable")
                    .filter(|v| !v.is_null())
                    .is_none()
                    .then_some(IntOrPercent::Int(1))
            }),
            max_unavailable: IntOrPercent::read(at("maxUnavailable")),
            always_allow_unhealthy: at("unhealthyPodEvictionPolicy").and_then(Json::as_str)
                == Some("AlwaysAllow"),
            status: BudgetStatus {
                observed_generation: int("observedGeneration"),
                disruptions_allowed: int("disruptionsAllowed"),
                current_healthy: int("currentHealthy"),
                desired_healthy: int("desiredHealthy"),
                expected_pods: int("expectedPods"),
                disrupted_pods,
                conditions,
            },
        })
    }

    /// Whether the budget covers `pod` (same namespace, selector matches).
    pub fn selects(&self, pod: &Object) -> bool {
        pod.meta.namespace == self.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.meta.labels))
    }
}

impl BudgetStatus {
    /// Sets the DisruptionAllowed condition from `disruptions_allowed`
    /// (`UpdateDisruptionAllowedCondition`): True with SufficientPods while
    /// any disruption is allowed, else False with InsufficientPods. The
    /// transition time moves only when the status flips.
    pub fn update_allowed_condition(&mut self, now: SimTime) {
        let (status, reason) = if self.disruptions_allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        self.set_condition(status, reason, "", now);
    }

    /// `meta.SetStatusCondition` for the DisruptionAllowed condition.
    pub fn set_condition(&mut self, status: &str, reason: &str, message: &str, now: SimTime) {
        let mut cond = json!({
            "type": DISRUPTION_ALLOWED,
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": now.rfc3339(),
        });
        let existing = self
            .conditions
            .iter_mut()
            .find(|c| c["type"] == DISRUPTION_ALLOWED);
        match existing {
            Some(c) => {
                if c["status"] == status {
                    cond["lastTransitionTime"] = c["lastTransitionTime"].clone();
                }
                *c = cond;
            }
            None => self.conditions.push(cond),
        }
    }

    /// Whether the condition says what `disruptions_allowed` implies
    /// (`ConditionsAreUpToDate`).
    pub fn conditions_up_to_date(&self) -> bool {
        let want = if self.disruptions_allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        self.conditions.iter().any(|c| {
            c["type"] == DISRUPTION_ALLOWED
                && c["status"] == want.0
                && c["reason"] == want.1
                && c["observedGeneration"] == self.observed_generation
        })
    }

    /// The `status` object as the API serialises it.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("observedGeneration".into(), json!(self.observed_generation));
        if !self.disrupted_pods.is_empty() {
            let pods: Map<String, Json> = self
                .disrupted_pods
                .iter()
                .map(|(k, t)| (k.clone(), json!(t.rfc3339())))
                .collect();
            m.insert("disruptedPods".into(), Json::Object(pods));
        }
        m.insert("disruptionsAllowed".into(), json!(self.disruptions_allowed));
        m.insert("currentHealthy".into(), json!(self.current_healthy));
        m.insert("desiredHealthy".into(), json!(self.desired_healthy));
        m.insert("expectedPods".into(), json!(self.expected_pods));
        if !self.conditions.is_empty() {
            m.insert("conditions".into(), Json::Array(self.conditions.clone()));
        }
        Json::Object(m)
    }
}

impl IntOrPercent {
    /// An optional `IntOrString` field: `None` if absent or null.
    pub fn read(v: Option<&Json>) -> Option<IntOrPercent> {
        match v? {
            Json::Number(n) => Some(IntOrPercent::Int(n.as_i64().unwrap_or(0))),
            Json::String(s) => Some(IntOrPercent::Str(s.clone())),
            _ => None,
        }
    }
}

/// Checks `spec` as the API's validation does; `Err((field, message))`.
pub fn validate_spec(spec: &Json) -> Result<(), (String, String)> {
    let min = spec.get("minAvailable").filter(|v| !v.is_null());
    let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
    if min.is_some() && max.is_some() {
        return Err((
            "spec".into(),
            "minAvailable and maxUnavailable cannot be both set".into(),
        ));
    }
    for (field, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        let path = format!("spec.{field}");
        match v {
            Some(Json::Number(n)) if n.as_i64().is_some_and(|i| i < 0) => {
                return Err((path, "must be greater than or equal to 0".into()))
            }
            Some(Json::String(s)) => {
                let pct = s.strip_suffix('%').and_then(|p| p.parse::<u64>().ok());
                match pct {
                    None => {
                        return Err((
                            path,
                            format!("{s:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%')"),
                        ))
                    }
                    Some(p) if p > 100 => {
                        return Err((path, "must not be greater than 100%".into()))
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if let Some(p) = spec
        .get("unhealthyPodEvictionPolicy")
        .and_then(Json::as_str)
    {
        if !matches!(p, "IfHealthyBudget" | "AlwaysAllow") {
            return Err((
                "spec.unhealthyPodEvictionPolicy".into(),
                format!("Unsupported value: {p:?}: supported values: \"AlwaysAllow\", \"IfHealthyBudget\""),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::Meta;
    use std::sync::Arc;

    fn budget(spec: Json, status: Json) -> Object {
        let mut m = Map::new();
        m.insert("spec".into(), spec);
        m.insert("status".into(), status);
        Object {
            kind: Kind::PodDisruptionBudget,
            meta: Meta {
                name: "web".into(),
                namespace: "default".into(),
                generation: 2,
                ..Default::default()
            },
            body: Body::Json(Arc::new(m)),
        }
    }

    fn pod(labels: &[(&str, &str)]) -> Object {
        let mut o = budget(json!({}), json!({}));
        o.kind = Kind::Pod;
        o.meta.labels = Arc::new(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        o
    }

    #[test]
    fn reads_spec_and_status() {
        let o = budget(
            json!({"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}},
                   "unhealthyPodEvictionPolicy": "AlwaysAllow"}),
            json!({"observedGeneration": 2, "disruptionsAllowed": 1, "currentHealthy": 4,
                   "desiredHealthy": 3, "expectedPods": 4,
                   "disruptedPods": {"web-1": "2025-01-01T00:01:00Z"}}),
        );
        let b = DisruptionBudget::read(&o).unwrap();
        assert_eq!(b.max_unavailable, Some(IntOrPercent::Str("25%".into())));
        assert_eq!(b.min_available, None);
        assert!(b.always_allow_unhealthy);
        assert_eq!(b.status.disruptions_allowed, 1);
        assert_eq!(
            b.status.disrupted_pods["web-1"],
            SimTime::ZERO.after(SimDuration::from_secs(60))
        );
        assert!(b.selects(&pod(&[("app", "web")])));
        assert!(!b.selects(&pod(&[("app", "db")])));
        // The status reads back as written.
        let again = budget(json!({}), b.status.to_json());
        assert_eq!(DisruptionBudget::read(&again).unwrap().status, b.status);
    }

    #[test]
    fn null_selector_selects_nothing_and_empty_selects_all() {
        let none = DisruptionBudget::read(&budget(json!({"minAvailable": 1}), json!({}))).unwrap();
        assert!(!none.selects(&pod(&[("app", "web")])));
        let all = DisruptionBudget::read(&budget(json!({"selector": {}}), json!({}))).unwrap();
        assert!(all.selects(&pod(&[("app", "web")])));
        assert!(all.selects(&pod(&[])));
    }

    #[test]
    fn condition_keeps_its_transition_time_until_it_flips() {
        let t = |s| SimTime::ZERO.after(SimDuration::from_secs(s));
        let mut st = BudgetStatus {
            disruptions_allowed: 1,
            ..Default::default()
        };
        st.update_allowed_condition(t(10));
        assert!(st.conditions_up_to_date());
        st.update_allowed_condition(t(20));
        assert_eq!(st.conditions[0]["lastTransitionTime"], t(10).rfc3339());
        st.disruptions_allowed = 0;
        assert!(!st.conditions_up_to_date());
        st.update_allowed_condition(t(30));
        assert_eq!(st.conditions[0]["status"], "False");
        assert_eq!(st.conditions[0]["reason"], "InsufficientPods");
        assert_eq!(st.conditions[0]["lastTransitionTime"], t(30).rfc3339());
    }

    #[test]
    fn validation_matches_the_api() {
        assert!(validate_spec(&json!({"minAvailable": 2})).is_ok());
        assert!(validate_spec(&json!({"maxUnavailable": "50%"})).is_ok());
        let both = validate_spec(&json!({"minAvailable": 1, "maxUnavailable": 1}));
        assert_eq!(both.unwrap_err().0, "spec");
        assert_eq!(
            validate_spec(&json!({"minAvailable": "150%"}))
                .unwrap_err()
                .1,
            "must not be greater than 100%"
        );
        assert_eq!(
            validate_spec(&json!({"maxUnavailable": "half"}))
                .unwrap_err()
                .0,
            "spec.maxUnavailable"
        );
        assert!(validate_spec(&json!({"unhealthyPodEvictionPolicy": "Never"})).is_err());
    }
}
