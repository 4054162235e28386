//! The DaemonSet controller (`pkg/controller/daemon`): one pod on every node
//! the template fits (node selector, required node affinity, taints), pinned
//! there by a node-name affinity and scheduled by kube-scheduler like any
//! pod. Nodes that join later get theirs when their Node is seen; pods on
//! nodes that no longer fit are deleted. A template change rolls out node
//! by node within `maxUnavailable` and `maxSurge`.

pub mod placement;
pub mod update;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::deployment::util::IntOrPercent;
use super::expectations::Expectations;
use super::history::{self, REVISION_LABEL};
use super::workload::{
    body_path, body_str, claim_pods, key_of, min_ready_seconds, pod_available, selector, split_key,
    template_json, update_status, Template,
};
use super::workload::{controller_key, controller_of};
use super::workqueue::WorkQueue;
use crate::api::object::Body;
use crate::api::pod::{PodBody, PodPhase, PodSpecModel};
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::sim::{SimDuration, SimTime};
use placement::{daemon_pod_spec, node_fit};
use update::NodeSlot;

/// `pod-template-generation`, the label older controllers matched on.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

#[derive(Default)]
pub struct DaemonSetController {
    expectations: Expectations,
    templates: BTreeMap<String, (String, Arc<Template>)>,
}

fn node_of(p: &Object) -> Option<&str> {
    let body = p.as_pod()?;
    if let Some(n) = &body.node_name {
        return Some(n);
    }
    // Not yet bound: the node its affinity pins it to.
    let terms = body
        .spec
        .api
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    terms.node_selector_terms.iter().find_map(|t| {
        t.match_fields
            .iter()
            .flatten()
            .find(|f| f.key == "metadata.name" && f.operator == "In")
            .and_then(|f| f.values.as_ref()?.first().map(String::as_str))
    })
}

impl DaemonSetController {
    fn template(&mut self, ds: &Object, hash: &str, json: &Json) -> Result<Arc<Template>, String> {
        let key = key_of(ds);
        if let Some((h, t)) = self.templates.get(&key) {
            if h == hash {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(Template::from_json(json)?);
        self.templates.insert(key, (hash.to_string(), t.clone()));
        Ok(t)
    }

    /// The daemon pod for `node`.
    fn new_pod(ds: &Object, t: &Template, hash: &str, node: &str) -> Result<Object, String> {
        let spec = daemon_pod_spec(&t.spec.api, node);
        let model = PodSpecModel::from_api(&spec, &t.annotations)
            .map_err(|(path, msg)| format!("spec.template.spec.{path}: {msg}"))?;
        let mut pod = t.pod(ds, &format!("{}-", ds.meta.name));
        let mut labels = (*pod.meta.labels).clone();
        labels.insert(REVISION_LABEL.into(), hash.to_string());
        labels.insert(
            TEMPLATE_GENERATION_LABEL.into(),
            ds.meta.generation.to_string(),
        );
        pod.meta.labels = Arc::new(labels);
        pod.body = Body::Pod(PodBody::new(Arc::new(model), None));
        Ok(pod)
    }
}

impl Controller for DaemonSetController {
    fn name(&self) -> &'static str {
        "daemonset-controller"
    }

    fn workers(&self) -> usize {
        2
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        match ev.kind {
            Kind::DaemonSet => {
                if ev.new.is_none() {
                    self.expectations.delete(&key_of(ev.object()));
                    self.templates.remove(&key_of(ev.object()));
                }
                queue.add(&key_of(ev.object()));
            }
            Kind::Node => {
                let changed = match (&ev.old, &ev.new) {
                    (Some(o), Some(n)) => {
                        o.meta.labels != n.meta.labels
                            || o.as_node().map(|b| &b.taints) != n.as_node().map(|b| &b.taints)
                    }
                    _ => true,
                };
                if changed {
                    for ds in cache.list_all(Kind::DaemonSet) {
                        queue.add(&key_of(ds));
                    }
                }
            }
            Kind::Pod => {
                let pod = ev.object();
                let Some(ds) = controller_of(cache, pod, Kind::DaemonSet) else {
                    return;
                };
                let k = key_of(ds);
                self.expectations.observe_pod(&k, ev);
                queue.add(&k);
                let min_ready = min_ready_seconds(ds);
                let became_ready = ev
                    .old
                    .as_ref()
                    .is_none_or(|o| !o.as_pod().is_some_and(|b| b.status.is_ready()))
                    && ev
                        .new
                        .as_ref()
                        .is_some_and(|n| n.as_pod().is_some_and(|b| b.status.is_ready()));
                if became_ready && min_ready > 0 {
                    queue.add_after(&k, SimDuration::from_secs(min_ready as u64 + 1), now);
                }
            }
            Kind::ControllerRevision => {
                if let Some(k) = controller_key(ev.object(), Kind::DaemonSet) {
                    queue.add(&k);
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(ds) = cx.cache.get(Kind::DaemonSet, ns, name).cloned() else {
            self.expectations.delete(key);
            self.templates.remove(key);
            return;
        };
        if ds.meta.deletion.is_some() {
            return;
        }
        let Some(sel) = selector(&ds) else {
            return;
        };
        let Some(tjson) = template_json(&ds).cloned() else {
            return;
        };
        let collisions = history::collision_count(&ds);
        let hash = history::hash(&tjson, collisions);
        let revisions = history::owned(cx.cache, &ds);
        history::ensure(cx, &ds, &revisions, &tjson, &format!("{name}-{hash}"));
        let template = match self.template(&ds, &hash, &tjson) {
            Ok(t) => t,
            Err(e) => {
                cx.event(
                    &ds,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                return;
            }
        };
        let spec: &core::PodSpec = &template.spec.api;
        let now = cx.now;
        let min_ready = min_ready_seconds(&ds);

        let pods = claim_pods(cx, &ds, &sel, |_| true);
        let mut by_node: BTreeMap<&str, Vec<&Arc<Object>>> = BTreeMap::new();
        for p in &pods {
            if let Some(n) = node_of(p) {
                by_node.entry(n).or_default().push(p);
            }
        }
        for list in by_node.values_mut() {
            list.sort_by(|a, b| {
                a.meta
                    .creation
                    .cmp(&b.meta.creation)
                    .then(a.meta.name.cmp(&b.meta.name))
            });
        }
        let is_new = |p: &Object| p.meta.labels.get(REVISION_LABEL) == Some(&hash);
        let available = |p: &Object| p.as_pod().is_some_and(|b| pod_available(b, min_ready, now));
        let surge_spec = IntOrPercent::from_json(
            body_path(
                &ds,
                &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
            ),
            "0",
        );
        let unavail_spec = IntOrPercent::from_json(
            body_path(
                &ds,
                &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
            ),
            "1",
        );
        let rolling =
            body_str(&ds, &["spec", "updateStrategy", "type"], "RollingUpdate") == "RollingUpdate";

        let nodes: Vec<&Arc<Object>> = cx.cache.list_all(Kind::Node).collect();
        let mut fits: BTreeMap<&str, placement::Fit> = BTreeMap::new();
        for n in &nodes {
            fits.insert(&n.meta.name, node_fit(spec, n));
        }
        let desired = fits.values().filter(|f| f.should_run).count() as i64;
        let (max_surge, max_unavailable) = update::bounds(&surge_spec, &unavail_spec, desired);
        let surge = rolling && max_surge > 0;

        let mut create_on: Vec<String> = Vec::new();
        let mut delete: Vec<(String, bool)> = Vec::new(); // (pod, failed)
        let mut slots: Vec<NodeSlot> = Vec::new();
        for n in &nodes {
            let node = n.meta.name.as_str();
            let fit = fits[node];
            let here: &[&Arc<Object>] = by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if fit.should_run && here.is_empty() {
                create_on.push(node.to_string());
            } else if fit.should_continue_running {
                let mut running: Vec<&Arc<Object>> = Vec::new();
                for p in here {
                    if p.meta.deletion.is_some() {
                        continue;
                    }
                    if p.as_pod()
                        .is_some_and(|b| b.status.phase == PodPhase::Failed)
                    {
                        delete.push((p.meta.name.clone(), true));
                        continue;
                    }
                    running.push(p);
                }
                if surge {
                    // Keep the oldest of each revision; the old one goes
                    // once the new one is available.
                    let (new, old): (Vec<_>, Vec<_>) = running.into_iter().partition(|p| is_new(p));
                    for extra in new.iter().skip(1).chain(old.iter().skip(1)) {
                        delete.push((extra.meta.name.clone(), false));
                    }
                    if let (Some(nw), Some(o)) = (new.first(), old.first()) {
                        if available(nw) {
                            delete.push((o.meta.name.clone(), false));
                        }
                    }
                } else if running.len() > 1 {
                    for extra in &running[1..] {
                        delete.push((extra.meta.name.clone(), false));
                    }
                }
            } else {
                for p in here.iter().filter(|p| p.meta.deletion.is_none()) {
                    delete.push((p.meta.name.clone(), false));
                }
            }
            if fit.should_run {
                let live: Vec<&&Arc<Object>> =
                    here.iter().filter(|p| p.meta.deletion.is_none()).collect();
                let news: Vec<_> = live.iter().filter(|p| is_new(p)).collect();
                let olds: Vec<_> = live.iter().filter(|p| !is_new(p)).collect();
                slots.push(NodeSlot {
                    node: node.to_string(),
                    new: news.first().map(|p| (p.meta.name.clone(), available(p))),
                    old: olds.first().map(|p| (p.meta.name.clone(), available(p))),
                    duplicate: news.len() > 1 || olds.len() > 1,
                });
            }
        }

        if self.expectations.satisfied(key, now) {
            for (pod, failed) in &delete {
                if *failed {
                    let node = pods
                        .iter()
                        .find(|p| &p.meta.name == pod)
                        .and_then(|p| node_of(p))
                        .unwrap_or("");
                    cx.event(
                        &ds,
                        "Warning",
                        "FailedDaemonPod",
                        format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it"),
                    );
                }
            }
            let mut deletes: Vec<String> = delete.into_iter().map(|(p, _)| p).collect();
            if rolling {
                let plan = update::plan(&slots, max_surge, max_unavailable);
                deletes.extend(plan.delete);
                create_on.extend(plan.create_on);
            }
            let mut seen = BTreeSet::new();
            deletes.retain(|p| seen.insert(p.clone()));
            let doomed: BTreeSet<String> = deletes.iter().map(|p| format!("{ns}/{p}")).collect();
            if !create_on.is_empty() || !doomed.is_empty() {
                self.expectations
                    .expect(key, create_on.len() as i64, doomed, now);
            }
            for node in &create_on {
                match Self::new_pod(&ds, &template, &hash, node) {
                    Ok(pod) => {
                        let mut req = ApiRequest::new(Verb::Create, Kind::Pod, ns, "");
                        req.body = Some(Arc::new(pod));
                        cx.send(req);
                    }
                    Err(e) => {
                        self.expectations.lower_creations(key, 1);
                        cx.event(
                            &ds,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                    }
                }
            }
            for p in &deletes {
                cx.send(ApiRequest::new(Verb::Delete, Kind::Pod, ns, p));
            }
        }

        // Status (`updateDaemonSetStatus`).
        let (mut current, mut misscheduled, mut ready, mut avail, mut updated) = (0, 0, 0, 0, 0);
        for n in &nodes {
            let node = n.meta.name.as_str();
            let Some(here) = by_node.get(node).filter(|h| !h.is_empty()) else {
                continue;
            };
            if fits[node].should_run {
                current += 1;
                let first = here[0];
                if first.as_pod().is_some_and(|b| b.status.is_ready()) {
                    ready += 1;
                    if available(first) {
                        avail += 1;
                    }
                }
                if here.iter().any(|p| is_new(p)) {
                    updated += 1;
                }
            } else {
                misscheduled += 1;
            }
        }
        let mut status = json!({
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": ds.meta.generation,
            "updatedNumberScheduled": updated,
            "numberAvailable": avail,
        });
        if desired - avail > 0 {
            status["numberUnavailable"] = json!(desired - avail);
        }
        if collisions > 0 {
            status["collisionCount"] = json!(collisions);
        }
        update_status(cx, &ds, status);
        if min_ready > 0 && ready > avail {
            cx.requeue_after(SimDuration::from_secs(min_ready as u64));
        }
    }

    fn on_response(
        &mut self,
        key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let ok = resp.is_some_and(|r| r.ok());
        let (ns, name) = split_key(key);
        let ds = cx.cache.get(Kind::DaemonSet, ns, name).cloned();
        let err = || {
            resp.map(|r| r.message.clone())
                .unwrap_or_else(|| "the request timed out".into())
        };
        match (req.verb, req.kind) {
            (Verb::Create, Kind::Pod) => {
                if let Some(ds) = &ds {
                    match resp.filter(|r| r.ok()) {
                        Some(r) => {
                            let pod = r
                                .object
                                .as_ref()
                                .map(|o| o.meta.name.clone())
                                .unwrap_or_default();
                            cx.event(
                                ds,
                                "Normal",
                                "SuccessfulCreate",
                                format!("Created pod: {pod}"),
                            );
                        }
                        None => cx.event(
                            ds,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {}", err()),
                        ),
                    }
                }
                if !ok {
                    self.expectations.lower_creations(key, 1);
                    cx.failed = true;
                }
            }
            (Verb::Delete, Kind::Pod) => {
                if let Some(ds) = &ds {
                    if ok {
                        cx.event(
                            ds,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted pod: {}", req.name),
                        );
                    } else if resp.is_none_or(|r| r.code != 404) {
                        cx.event(
                            ds,
                            "Warning",
                            "FailedDelete",
                            format!("Error deleting: {}", err()),
                        );
                    }
                }
                if !ok {
                    self.expectations
                        .deletion_observed(key, &format!("{ns}/{}", req.name));
                    cx.failed |= resp.is_none_or(|r| r.code != 404);
                }
            }
            (Verb::Create, Kind::ControllerRevision) => {
                if !ok && resp.is_none_or(|r| r.code != 409) {
                    cx.failed = true;
                }
            }
            _ => {
                if !ok {
                    cx.failed = true;
                }
            }
        }
    }

    fn reset(&mut self) {
        self.expectations.clear();
        self.templates.clear();
    }
}
