//! NodeName: a pod that names a node fits only there.

use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::queueing_hint::QueueingHint;

/// Upstream's reason when it does not.
pub const REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(wanted: Option<&str>, node: &str) -> Option<&'static str> {
    match wanted {
        Some(w) if !w.is_empty() && w != node => Some(REASON),
        _ => None,
    }
}

/// Queueing hint for Node/Add: only the node the pod names can help.
pub fn hint_after_node_add(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    ev: &QueuedEvent,
) -> QueueingHint {
    let wanted = spec.node_name.as_deref();
    QueueingHint::from_bool(
        ev.new_node()
            .is_some_and(|n| wanted == Some(n.name.as_str())),
    )
}
