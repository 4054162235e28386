//! TaintToleration: the filter keeps pods off nodes with NoSchedule and
//! NoExecute taints they do not tolerate; the score counts the
//! PreferNoSchedule taints they do not tolerate, reversed by normalisation.

use crate::api::node::Taint;
use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::framework::{default_normalize_score, MAX_NODE_SCORE};
use crate::scheduler::queueing_hint::QueueingHint;

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

/// Queueing hint for Node/Add and Node/UpdateNodeTaint: queue when the
/// node's taints are tolerated now and were not before (a new node counts
/// as not tolerated before).
pub fn hint_after_node_change(tolerations: &[Toleration], ev: &QueuedEvent) -> QueueingHint {
    let Some(new) = ev.new_node() else {
        return QueueingHint::QueueSkip;
    };
    let was_untolerated = ev
        .old_node()
        .is_none_or(|o| filter(tolerations, &o.taints).is_some());
    QueueingHint::from_bool(was_untolerated && filter(tolerations, &new.taints).is_none())
}

/// Queueing hint for Pod/UpdatePodToleration: only the waiting pod's own
/// new tolerations can help it.
pub fn hint_after_pod_toleration_change(
    target: &crate::scheduler::pod_info::PodInfo,
    ev: &QueuedEvent,
) -> QueueingHint {
    QueueingHint::from_bool(
        ev.new_pod()
            .is_some_and(|(p, _)| p.name == target.name && p.namespace == target.namespace),
    )
}
