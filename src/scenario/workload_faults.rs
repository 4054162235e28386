//! The driver's workload faults: a container that crashes with an exit
//! code, and image pulls that fail for a while.
//!
//! `crashContainer` names a workload and a pod index, not a pod: the pod
//! names a run gives are not known when the scenario (or a drawn fault) is
//! written. At the step the driver LISTs the namespace's pods, as `kubectl
//! get pods -l …` would, keeps the running ones the workload's selector
//! selects, in name order, and takes the one at the index modulo their
//! count, so the choice depends only on what the driver's own read showed.
//! The kubelet of that pod's node then hears from the container runtime
//! that the container exited ([`crate::model::msg::Message::ContainerCrash`])
//! and applies the pod's restartPolicy and its crash-loop back-off.
//!
//! `failImagePulls` is an outage of the registry outside the cluster
//! ([`crate::model::registry`]): pulls that start while it lasts fail, and
//! the kubelet reports `ErrImagePull`, then `ImagePullBackOff` while its
//! image back-off (10 s doubling to 300 s per pod and image) runs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::driver::{ScenarioDriver, Then};
use super::Action;
use crate::api::pod::PodPhase;
use crate::api::selector::Selector;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, Verb};
use crate::model::msg::{ContainerCrashed, Message, Payload};
use crate::model::registry::PullOutage;
use crate::model::world::World;
use crate::sim::{Ctx, TraceLevel};

/// `crashContainer:` resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCrash {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// The workload's pod selector; `None` when `kind` is Pod (the pod
    /// named `name`).
    pub selector: Option<Selector>,
    /// Which running pod, in name order, modulo how many there are.
    pub pod: u32,
    /// `None`: the first app container.
    pub container: Option<String>,
    pub exit_code: i32,
}

impl ContainerCrash {
    fn selects(&self, pod: &Object) -> bool {
        match &self.selector {
            None => pod.meta.name == self.name,
            Some(s) => s.matches(&pod.meta.labels),
        }
    }
}

impl fmt::Display for ContainerCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.container.as_deref().unwrap_or("the first container");
        write!(f, "crash {c} of ")?;
        if self.selector.is_some() {
            write!(f, "pod {} of ", self.pod)?;
        }
        write!(
            f,
            "{} {}/{} with exit code {}",
            self.kind.name(),
            self.namespace,
            self.name,
            self.exit_code
        )
    }
}

/// `failImagePulls:` / `restoreImagePulls:` resolved.
pub type ImagePullFault = PullOutage;

impl fmt::Display for PullOutage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.image {
            Some(i) => write!(f, "image {i}")?,
            None => f.write_str("every image")?,
        }
        if !self.nodes.is_empty() {
            write!(f, " on {}", self.nodes.join(", "))?;
        }
        Ok(())
    }
}

/// The running pods `c` selects among `items`, in name order.
fn candidates<'a>(c: &ContainerCrash, items: &'a [Arc<Object>]) -> Vec<&'a Arc<Object>> {
    let mut pods: Vec<&Arc<Object>> = items
        .iter()
        .filter(|o| o.kind == Kind::Pod && o.meta.namespace == c.namespace)
        .filter(|o| o.meta.deletion.is_none() && c.selects(o))
        .filter(|o| {
            o.as_pod()
                .is_some_and(|p| p.node_name.is_some() && p.status.phase == PodPhase::Running)
        })
        .collect();
    pods.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    pods
}

impl ScenarioDriver {
    /// Plays one of this file's actions; `false` when `action` is not one.
    pub(super) fn workload_fault(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: &str,
        action: &Action,
    ) -> bool {
        match action {
            Action::CrashContainer(c) => {
                let req = ApiRequest::new(Verb::List, Kind::Pod, &c.namespace, "");
                self.send_then(
                    ctx,
                    step,
                    what.to_string(),
                    req,
                    Then::CrashContainer(c.clone()),
                );
            }
            Action::FailImagePulls(o) => {
                let already = !ctx.shared.registry.fail(o.clone());
                self.fault(ctx, step, what, "ImagePullsFail", &o.to_string(), already);
            }
            Action::RestoreImagePulls(o) => {
                let already = !ctx.shared.registry.restore(o);
                self.fault(
                    ctx,
                    step,
                    what,
                    "ImagePullsRestore",
                    &o.to_string(),
                    already,
                );
            }
            _ => return false,
        }
        true
    }

    /// The LIST of a `crashContainer` came back: crash the chosen pod's
    /// container. `Err` is the reason nothing crashed.
    pub(super) fn crash_listed(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        step: Option<u32>,
        what: &str,
        c: &ContainerCrash,
        items: &[Arc<Object>],
    ) -> Result<(), String> {
        let pods = candidates(c, items);
        if pods.is_empty() {
            return Err(format!(
                "no running pod of {} {}/{}",
                c.kind.name(),
                c.namespace,
                c.name
            ));
        }
        let pod = pods[c.pod as usize % pods.len()];
        let node = pod
            .as_pod()
            .and_then(|p| p.node_name.clone())
            .unwrap_or_default();
        let kubelet = *self
            .nodes
            .get(&node)
            .ok_or_else(|| format!("pod {} is on unknown node {node}", pod.meta.name))?;
        if !ctx.is_alive(kubelet) {
            return Err(format!("node {node} is down"));
        }
        let msg = Message::ContainerCrash(Box::new(ContainerCrashed {
            namespace: c.namespace.clone(),
            pod: pod.meta.name.clone(),
            container: c.container.clone(),
            exit_code: c.exit_code,
        }));
        let from = ctx.me;
        ctx.deliver_at(kubelet, ctx.now, Payload::Msg { from, msg });
        let target = format!("{}/{}", c.namespace, pod.meta.name);
        let line = step.map(|i| self.steps_line(i)).unwrap_or(0) as u64;
        ctx.trace.record(
            TraceLevel::Faults,
            ctx.now,
            "kubectl",
            "ContainerCrash",
            |r| {
                r.u64("line", line)
                    .str("target", &target)
                    .i64("exitCode", c.exit_code as i64);
            },
        );
        let result = format!("ok: {target} on {node}, exit code {}", c.exit_code);
        self.outcome(ctx, step, what, result);
        Ok(())
    }
}

/// What selects a workload's pods: its selector (a plain map for a
/// ReplicationController), or, where the manifest leaves it to the
/// apiserver to generate (a Job's), its template's labels.
pub fn pod_selector(kind: Kind, obj: &Object) -> Option<Selector> {
    let path = |p: &[&str]| crate::controllers::workload::body_path(obj, p).cloned();
    let map = |v: Option<serde_json::Value>| {
        v.and_then(|v| serde_json::from_value::<BTreeMap<String, String>>(v).ok())
            .filter(|m| !m.is_empty())
            .map(|m| Selector::from_map(&m))
    };
    if kind == Kind::ReplicationController {
        return map(path(&["spec", "selector"]))
            .or_else(|| map(path(&["spec", "template", "metadata", "labels"])));
    }
    crate::controllers::workload::selector(obj)
        .filter(|s| !s.is_empty())
        .or_else(|| map(path(&["spec", "template", "metadata", "labels"])))
}
