//! NodeUnschedulable: cordoned nodes take no new pods, unless the pod
//! tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use super::taint_toleration::Toleration;
use crate::api::node::Taint;

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
