//! Which nodes a DaemonSet runs on (`NodeShouldRunDaemonPod`) and the pod it
//! makes for one node: the template plus the tolerations every daemon pod
//! gets (`AddOrUpdateDaemonPodTolerations`) and a required node affinity to
//! that node's name (`ReplaceDaemonSetPodNodeNameNodeAffinity`), so
//! kube-scheduler places it there and nowhere else.

use k8s_openapi::api::core::v1 as core;

use crate::api::node::Taint;
use crate::api::Object;
use crate::scheduler::plugins::node_affinity;
use crate::scheduler::plugins::taint_toleration::Toleration;

/// The tolerations a daemon pod always has: it keeps running through
/// not-ready and unreachable nodes and lands on cordoned and pressured ones.
pub fn daemon_tolerations(host_network: bool) -> Vec<core::Toleration> {
    let t = |key: &str, effect: &str| core::Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".into()),
        effect: Some(effect.to_string()),
        ..Default::default()
    };
    let mut out = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out
}

/// The template's spec as a daemon pod for `node`.
pub fn daemon_pod_spec(template: &core::PodSpec, node: &str) -> core::PodSpec {
    let mut spec = template.clone();
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for add in daemon_tolerations(spec.host_network == Some(true)) {
        // Replaces a toleration with the same key and effect.
        tolerations.retain(|t| !(t.key == add.key && t.effect == add.effect));
        tolerations.push(add);
    }
    let field = core::NodeSelectorRequirement {
        key: "metadata.name".into(),
        operator: "In".into(),
        values: Some(vec![node.to_string()]),
    };
    let affinity = spec.affinity.get_or_insert_with(Default::default);
    let node_affinity = affinity.node_affinity.get_or_insert_with(Default::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(Default::default);
    if required.node_selector_terms.is_empty() {
        required.node_selector_terms.push(core::NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![field]),
        });
    } else {
        for term in &mut required.node_selector_terms {
            term.match_fields = Some(vec![field.clone()]);
        }
    }
    spec
}

/// `NodeShouldRunDaemonPod`: whether a daemon pod should be placed on the
/// node, and whether one already there should keep running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    pub should_run: bool,
    pub should_continue_running: bool,
}

pub fn node_fit(template: &core::PodSpec, node: &Object) -> Fit {
    let no = Fit {
        should_run: false,
        should_continue_running: false,
    };
    let Some(body) = node.as_node() else {
        return no;
    };
    if template
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node.meta.name)
    {
        return no;
    }
    if node_affinity::filter(template, &node.meta.labels, &node.meta.name).is_some() {
        return no;
    }
    let mut tolerations: Vec<Toleration> = template
        .tolerations
        .iter()
        .flatten()
        .map(Toleration::from_api)
        .collect();
    tolerations.extend(
        daemon_tolerations(template.host_network == Some(true))
            .iter()
            .map(Toleration::from_api),
    );
    let untolerated = |effect: &str| {
        body.taints
            .iter()
            .filter(|t: &&Taint| t.effect == effect)
            .any(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
    };
    let no_execute = untolerated("NoExecute");
    Fit {
        should_run: !no_execute && !untolerated("NoSchedule"),
        should_continue_running: !no_execute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::node::NodeBody;
    use crate::api::object::{Body, Meta};
    use crate::api::Kind;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Object {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut body = NodeBody::from_api(&core::Node::default()).unwrap();
        body.taints = taints
            .iter()
            .map(|(k, e)| Taint {
                key: k.to_string(),
                value: String::new(),
                effect: e.to_string(),
                time_added: None,
            })
            .collect();
        Object {
            kind: Kind::Node,
            meta: Meta {
                name: name.into(),
                labels: Arc::new(labels),
                ..Default::default()
            },
            body: Body::Node(body),
        }
    }

    #[test]
    fn runs_where_selector_and_taints_allow() {
        let mut spec = core::PodSpec {
            node_selector: Some(BTreeMap::from([("role".into(), "edge".into())])),
            ..Default::default()
        };
        let edge = node("a", &[("role", "edge")], &[]);
        let other = node("b", &[("role", "core")], &[]);
        assert!(node_fit(&spec, &edge).should_run);
        assert!(!node_fit(&spec, &other).should_run);
        // A control-plane taint keeps it off; a cordon or not-ready does not.
        let tainted = node(
            "c",
            &[("role", "edge")],
            &[("node-role.kubernetes.io/control-plane", "NoSchedule")],
        );
        let f = node_fit(&spec, &tainted);
        assert!(!f.should_run && f.should_continue_running);
        let notready = node(
            "d",
            &[("role", "edge")],
            &[
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ],
        );
        assert!(node_fit(&spec, &notready).should_run);
        let evicting = node("e", &[("role", "edge")], &[("dedicated", "NoExecute")]);
        assert_eq!(
            node_fit(&spec, &evicting),
            Fit {
                should_run: false,
                should_continue_running: false
            }
        );
        spec.node_selector = None;
        let pinned = daemon_pod_spec(&spec, "b");
        let terms = &pinned
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
        assert_eq!(
            terms[0].match_fields.as_ref().unwrap()[0].values,
            Some(vec!["b".to_string()])
        );
        assert_eq!(pinned.tolerations.unwrap().len(), 6);
    }
}
