//! NodeUnschedulable: cordoned nodes take no new pods, unless the pod
//! tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use super::taint_toleration::Toleration;
use crate::api::node::Taint;
use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::queueing_hint::QueueingHint;

pub const REASON: &str = "node(s) were unschedulable";

pub fn filter(unschedulable: bool, tolerations: &[Toleration]) -> Option<&'static str> {
    if !unschedulable {
        return None;
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        value: String::new(),
        effect: "NoSchedule".into(),
        time_added: None,
    };
    if tolerations.iter().any(|t| t.tolerates(&taint)) {
        None
    } else {
        Some(REASON)
    }
}

/// Queueing hint for Node/Add and Node/UpdateNodeTaint: queue only when
/// the node turned schedulable (added uncordoned, or uncordoned).
pub fn hint_after_node_change(ev: &QueuedEvent) -> QueueingHint {
    let Some(new) = ev.new_node() else {
        return QueueingHint::QueueSkip;
    };
    let was = ev.old_node().is_some_and(|o| !o.unschedulable);
    QueueingHint::from_bool(!was && !new.unschedulable)
}
