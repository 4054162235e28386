//! Timeline entries for the network and workload faults: `partitionOneWay`,
//! `partitionBetween`, `degradeLinks`/`restoreLinks`, `crashContainer`,
//! `failImagePulls`/`restoreImagePulls`. Each bad value is an error at its
//! own field, as the other actions' are.

use std::sync::Arc;

use super::super::network_faults::LinkDegrade;
use super::super::spec::{CrashContainerSpec, ImagePullsSpec, TimelineSpec};
use super::super::workload_faults::{ContainerCrash, ImagePullFault};
use super::super::Action;
use super::Loader;
use crate::api::{Kind, Object};
use crate::sim::SimDuration;

/// The names a timeline may cut, slow or crash, as the loader knows them.
pub(super) struct Names<'a> {
    pub nodes: &'a [&'a str],
    pub components: &'a [&'a str],
}

impl Loader<'_> {
    /// The entry's network and workload fault actions, checked.
    pub(super) fn network_and_workload_faults(
        &mut self,
        at: &str,
        e: &TimelineSpec,
        names: &Names<'_>,
        known: &[Arc<Object>],
    ) -> Vec<(&'static str, Action)> {
        let mut out = Vec::new();
        if let Some(o) = &e.partition_one_way {
            let from_ok = self.components(&format!("{at}.partitionOneWay.from"), &o.from, names);
            let to = o.to.clone().unwrap_or_default();
            let to_ok =
                o.to.is_none() || self.components(&format!("{at}.partitionOneWay.to"), &to, names);
            if let Some(both) = o.from.iter().find(|n| to.contains(n)) {
                self.error(
                    &format!("{at}.partitionOneWay"),
                    format!("`{both}` is on both sides of the cut"),
                );
            } else if from_ok && to_ok {
                let from = o.from.clone();
                out.push(("partitionOneWay", Action::PartitionOneWay { from, to }));
            }
        }
        if let Some(groups) = &e.partition_between {
            let path = format!("{at}.partitionBetween");
            let mut ok = groups.len() >= 2;
            if !ok {
                self.error(
                    &path,
                    "name at least two groups to cut apart: [[a, b], [c]]",
                );
            }
            for (i, g) in groups.iter().enumerate() {
                ok &= self.components(&format!("{path}[{i}]"), g, names);
            }
            let mut seen: Vec<&String> = Vec::new();
            for n in groups.iter().flatten() {
                if seen.contains(&n) {
                    self.error(&path, format!("`{n}` is in two groups"));
                    ok = false;
                }
                seen.push(n);
            }
            if ok {
                out.push(("partitionBetween", Action::PartitionBetween(groups.clone())));
            }
        }
        if let Some(d) = &e.degrade_links {
            let path = format!("{at}.degradeLinks");
            let mut ok = self.components(&format!("{path}.targets"), &d.targets, names);
            let peers = d.peers.clone().unwrap_or_default();
            if d.peers.is_some() {
                ok &= self.components(&format!("{path}.peers"), &peers, names);
            }
            let loss = d.loss.unwrap_or(0.0);
            if !(0.0..1.0).contains(&loss) {
                self.error(
                    &format!("{path}.loss"),
                    format!("a loss probability is at least 0 and below 1, not {loss}"),
                );
                ok = false;
            }
            let extra_latency = d.extra_latency.map_or(SimDuration::ZERO, |x| x.0);
            if extra_latency.is_zero() && loss == 0.0 {
                self.error(
                    &path,
                    "set extraLatency, loss or both: this degrades nothing",
                );
                ok = false;
            }
            if ok {
                let targets = d.targets.clone();
                let l = LinkDegrade {
                    targets,
                    peers,
                    extra_latency,
                    loss,
                };
                out.push(("degradeLinks", Action::DegradeLinks(l)));
            }
        }
        if let Some(r) = &e.restore_links {
            if self.components(&format!("{at}.restoreLinks"), r, names) {
                out.push(("restoreLinks", Action::RestoreLinks(r.clone())));
            }
        }
        if let Some(c) = &e.crash_container {
            if let Some(c) = self.crash_container(&format!("{at}.crashContainer"), c, known) {
                out.push(("crashContainer", Action::CrashContainer(c)));
            }
        }
        for (field, spec, fail) in [
            ("failImagePulls", &e.fail_image_pulls, true),
            ("restoreImagePulls", &e.restore_image_pulls, false),
        ] {
            let Some(p) = spec else { continue };
            if let Some(o) = self.image_pulls(&format!("{at}.{field}"), p, names) {
                let a = if fail {
                    Action::FailImagePulls(o)
                } else {
                    Action::RestoreImagePulls(o)
                };
                out.push((field, a));
            }
        }
        out
    }

    /// Every name in `list` is a node or a control-plane component, and
    /// there is at least one.
    fn components(&mut self, path: &str, list: &[String], names: &Names<'_>) -> bool {
        if list.is_empty() {
            self.error(path, "name at least one component");
            return false;
        }
        let mut known: Vec<&str> = names.nodes.to_vec();
        known.extend(names.components.iter().copied());
        let mut ok = true;
        for (j, n) in list.iter().enumerate() {
            ok &= self.known_name(&format!("{path}[{j}]"), "component", n, &known);
        }
        ok
    }

    fn crash_container(
        &mut self,
        path: &str,
        c: &CrashContainerSpec,
        known: &[Arc<Object>],
    ) -> Option<ContainerCrash> {
        let kind_name = c.kind.as_deref().unwrap_or("Deployment");
        let (kind, namespace) = self.object_ref(path, kind_name, &c.namespace)?;
        let workloads = [
            Kind::Deployment,
            Kind::ReplicaSet,
            Kind::StatefulSet,
            Kind::DaemonSet,
            Kind::Job,
            Kind::ReplicationController,
        ];
        if kind != Kind::Pod && !workloads.contains(&kind) {
            self.error(
                &format!("{path}.kind"),
                format!("{} has no pods; crash a Pod's container or a workload's (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController)", kind.name()),
            );
            return None;
        }
        let Some(obj) = known
            .iter()
            .rev()
            .find(|o| o.kind == kind && o.meta.namespace == namespace && o.meta.name == c.name)
        else {
            self.error(
                &format!("{path}.name"),
                format!(
                    "no {} {namespace}/{} among the scenario's objects by this entry",
                    kind.name(),
                    c.name
                ),
            );
            return None;
        };
        let selector = if kind == Kind::Pod {
            None
        } else {
            let Some(s) = super::super::workload_faults::pod_selector(kind, obj) else {
                self.error(
                    &format!("{path}.name"),
                    format!("{} {namespace}/{} has neither a selector nor template labels to find its pods by", kind.name(), c.name),
                );
                return None;
            };
            Some(s)
        };
        let exit_code = c.exit_code.unwrap_or(1);
        if !(0..=255).contains(&exit_code) {
            self.error(
                &format!("{path}.exitCode"),
                format!("an exit code is 0 to 255, not {exit_code}"),
            );
            return None;
        }
        let pointer = if kind == Kind::Pod {
            "/spec/containers"
        } else {
            "/spec/template/spec/containers"
        };
        let containers = obj
            .to_json()
            .pointer(pointer)
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        if let Some(name) = &c.container {
            let names: Vec<&str> = containers
                .iter()
                .filter_map(|x| x["name"].as_str())
                .collect();
            if !self.known_name(&format!("{path}.container"), "container", name, &names) {
                return None;
            }
        }
        Some(ContainerCrash {
            kind,
            namespace,
            name: c.name.clone(),
            selector,
            pod: c.pod.unwrap_or(0),
            container: c.container.clone(),
            exit_code,
        })
    }

    fn image_pulls(
        &mut self,
        path: &str,
        p: &ImagePullsSpec,
        names: &Names<'_>,
    ) -> Option<ImagePullFault> {
        if p.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            self.error(
                &format!("{path}.image"),
                "name an image, or leave the field out for every image",
            );
            return None;
        }
        let nodes = p.nodes.clone().unwrap_or_default();
        if p.nodes.is_some() {
            if nodes.is_empty() {
                self.error(
                    &format!("{path}.nodes"),
                    "name at least one node, or leave the field out for every node",
                );
                return None;
            }
            let mut ok = true;
            for (j, n) in nodes.iter().enumerate() {
                ok &= self.known_name(&format!("{path}.nodes[{j}]"), "node", n, names.nodes);
            }
            if !ok {
                return None;
            }
        }
        Some(ImagePullFault {
            image: p.image.clone(),
            nodes,
        })
    }
}
