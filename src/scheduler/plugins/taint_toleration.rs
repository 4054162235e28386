//! TaintToleration: the filter keeps pods off nodes with NoSchedule and
//! NoExecute taints they do not tolerate; the score counts the
//! PreferNoSchedule taints they do not tolerate, reversed by normalisation.

use crate::api::node::Taint;
use crate::scheduler::framework::{default_normalize_score, MAX_NODE_SCORE};

/// A pod's toleration.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Toleration {
    pub key: String,
    /// `Equal` (also when empty) or `Exists`.
    pub operator: String,
    pub value: String,
    /// Empty matches every effect.
    pub effect: String,
}

impl Toleration {
    pub fn from_api(t: &k8s_openapi::api::core::v1::Toleration) -> Toleration {
        Toleration {
            key: t.key.clone().unwrap_or_default(),
            operator: t.operator.clone().unwrap_or_default(),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.clone().unwrap_or_default(),
        }
    }

    /// Whether this toleration tolerates `taint`, as `ToleratesTaint` decides.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator.as_str() {
            "Exists" => true,
            "" | "Equal" => self.value == taint.value,
            _ => false,
        }
    }
}

/// The filter: `None` if the pod may go there, else upstream's reason.
pub fn filter(tolerations: &[Toleration], taints: &[Taint]) -> Option<String> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
        .map(|t| format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value))
}

/// The raw score: PreferNoSchedule taints not tolerated by the pod's
/// PreferNoSchedule (or effect-less) tolerations.
pub fn raw_score(tolerations: &[Toleration], taints: &[Taint]) -> i64 {
    let prefer: Vec<&Toleration> = tolerations
        .iter()
        .filter(|t| t.effect.is_empty() || t.effect == "PreferNoSchedule")
        .collect();
    taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !prefer.iter().any(|tol| tol.tolerates(t)))
        .count() as i64
}

/// Normalises raw scores over the feasible nodes: fewer untolerated taints
/// score higher.
pub fn normalize(scores: &mut [i64]) {
    default_normalize_score(MAX_NODE_SCORE, true, scores);
}
