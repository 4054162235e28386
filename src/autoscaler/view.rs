//! The autoscaler's cluster snapshot: every Node as the scheduler would see
//! it with the pods bound to it, and the pods the scheduler gave up on,
//! kept up to date from the informers' events (rebuilding it every 10 s
//! scan would cost a full pass over every pod of a large cluster).
//!
//! A loop tries placements on it, as upstream's `ClusterSnapshot` does
//! under `Fork`: [`ClusterView::place`] and [`ClusterView::add_template`]
//! record what they change, and [`ClusterView::revert`] undoes all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;

use crate::api::{Kind, Object, ObjectKey};
use crate::controllers::cache::CacheEvent;
use crate::scheduler::config::Profile;
use crate::scheduler::pod_info::PodInfo;
use crate::scheduler::profile::{self, AffinityCounts, CycleInput, NodeSnapshot};

/// A pod the loop reasons about.
#[derive(Clone)]
pub struct PodRef {
    pub object: Arc<Object>,
    pub info: Arc<PodInfo>,
    pub spec: Arc<core::PodSpec>,
}

impl PodRef {
    pub fn new(object: &Arc<Object>) -> Option<PodRef> {
        let body = object.as_pod()?;
        Some(PodRef {
            object: object.clone(),
            info: Arc::new(PodInfo::new(object)),
            spec: body.spec.api.clone(),
        })
    }
}

#[derive(Default)]
pub struct ClusterView {
    /// Registered nodes, then (during a loop) template nodes.
    nodes: Vec<NodeSnapshot>,
    index: BTreeMap<String, usize>,
    /// Every pod counted on a node: where, and as what.
    placed: BTreeMap<ObjectKey, (String, Arc<PodInfo>)>,
    /// Pods marked unschedulable by the scheduler, by key.
    unschedulable: BTreeSet<ObjectKey>,
    /// Trial placements of the current loop: (node index, pod).
    trial: Vec<(usize, Arc<PodInfo>)>,
    real: usize,
}

/// Whether the scheduler has given up on `pod` for now: unbound, not being
/// deleted, `PodScheduled=False` with reason `Unschedulable`.
pub fn is_unschedulable(pod: &Object) -> bool {
    let Some(body) = pod.as_pod() else {
        return false;
    };
    body.node_name.is_none()
        && pod.meta.deletion.is_none()
        && body.status.conditions.iter().any(|c| {
            c.type_ == "PodScheduled" && !c.status && c.reason.as_deref() == Some("Unschedulable")
        })
}

/// Whether `pod` takes room on its node: bound and not finished.
fn counted_on(pod: &Object) -> Option<&str> {
    let body = pod.as_pod()?;
    match body.is_terminal() {
        true => None,
        false => body.node_name.as_deref(),
    }
}

impl ClusterView {
    pub fn clear(&mut self) {
        *self = ClusterView::default();
    }

    pub fn on_event(&mut self, ev: &CacheEvent) {
        match ev.kind {
            Kind::Node => self.on_node(ev),
            Kind::Pod => self.on_pod(ev),
            _ => {}
        }
    }

    fn on_node(&mut self, ev: &CacheEvent) {
        debug_assert!(self.trial.is_empty(), "events arrive between loops");
        let name = &ev.object().meta.name;
        match ev.new.as_ref().and_then(|n| NodeSnapshot::from_object(n)) {
            Some(mut snap) => match self.index.get(name) {
                Some(&i) => {
                    snap.take_pods_from(&mut self.nodes[i]);
                    self.nodes[i] = snap;
                }
                None => {
                    for (node, info) in self.placed.values() {
                        if node == name {
                            snap.add_pod(info.clone());
                        }
                    }
                    self.index.insert(name.clone(), self.nodes.len());
                    self.nodes.push(snap);
                }
            },
            None => {
                if let Some(i) = self.index.remove(name) {
                    self.nodes.swap_remove(i);
                    if let Some(moved) = self.nodes.get(i) {
                        self.index.insert(moved.name.clone(), i);
                    }
                }
            }
        }
        self.real = self.nodes.len();
    }

    fn on_pod(&mut self, ev: &CacheEvent) {
        let obj = ev.object();
        let key = obj.key();
        let now = ev.new.as_deref();
        let want = now.and_then(counted_on);
        let had = self.placed.get(&key).map(|(n, _)| n.as_str());
        if want != had {
            if let Some((node, info)) = self.placed.remove(&key) {
                if let Some(&i) = self.index.get(&node) {
                    self.nodes[i].remove_pod(&info.namespace, &info.name);
                }
            }
            if let (Some(node), Some(pod)) = (want, now) {
                let info = Arc::new(PodInfo::new(pod));
                if let Some(&i) = self.index.get(node) {
                    self.nodes[i].add_pod(info.clone());
                }
                self.placed.insert(key.clone(), (node.to_string(), info));
            }
        }
        if now.is_some_and(is_unschedulable) {
            self.unschedulable.insert(key);
        } else {
            self.unschedulable.remove(&key);
        }
    }

    pub fn nodes(&self) -> &[NodeSnapshot] {
        &self.nodes
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn unschedulable(&self) -> impl Iterator<Item = &ObjectKey> {
        self.unschedulable.iter()
    }

    /// Whether `pod` passes the scheduler's filters on node `i`.
    pub fn fits(&self, profile: &Profile, pod: &PodRef, i: usize) -> bool {
        let spread = BTreeMap::new();
        let nominated = BTreeMap::new();
        let input = CycleInput {
            pod: &pod.info,
            spec: &pod.spec,
            nodes: &self.nodes,
            image_spread: &spread,
            default_selector: None,
            nominated: &nominated,
            counts: AffinityCounts::default(),
            fit_index: None,
            dra: None,
        };
        let input = CycleInput {
            counts: self.counts(&input),
            dra: None,
            ..input
        };
        let state = profile::prefilter(profile, &input);
        profile::filter(profile, &input, &state, &self.nodes[i]).is_ok()
    }

    /// The first node of `candidates` that `pod` fits, trying `hint` first.
    pub fn find_fit(
        &self,
        profile: &Profile,
        pod: &PodRef,
        candidates: impl Iterator<Item = usize>,
        hint: Option<usize>,
    ) -> Option<usize> {
        if let Some(h) = hint.filter(|&h| h < self.nodes.len() && self.fits(profile, pod, h)) {
            return Some(h);
        }
        candidates
            .filter(|&i| Some(i) != hint)
            .find(|&i| self.quick_fit(pod, i) && self.fits(profile, pod, i))
    }

    /// Whether the node has room for the pod's CPU, memory and pod count:
    /// a cheap test before the filters.
    fn quick_fit(&self, pod: &PodRef, i: usize) -> bool {
        let r = &self.nodes[i].resources;
        let want = &pod.info.requests.plain;
        (!r.allocatable.has_pods || r.pods < r.allocatable.pods)
            && r.requested.cpu + want.cpu <= r.allocatable.cpu
            && r.requested.memory + want.memory <= r.allocatable.memory
    }

    fn counts(&self, input: &CycleInput<'_>) -> AffinityCounts {
        // Only pods with affinity terms need the cluster-wide counts.
        if input.pod.affinity.is_empty() && self.nodes.iter().all(|n| n.pods_with_affinity == 0) {
            return AffinityCounts::default();
        }
        AffinityCounts::scan(&self.nodes)
    }

    /// Places `pod` on node `i` for the rest of the loop.
    pub fn place(&mut self, pod: &PodRef, i: usize) {
        self.nodes[i].add_pod(pod.info.clone());
        self.trial.push((i, pod.info.clone()));
    }

    /// Whether node `i` holds any pod (placed or trial).
    pub fn has_pods(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| !n.pods.is_empty())
    }

    /// Adds a template node for the rest of the loop; returns its index.
    pub fn add_template(&mut self, node: NodeSnapshot) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Where the trial stands, to come back to with [`Self::revert_to`].
    pub fn mark(&self) -> (usize, usize) {
        (self.trial.len(), self.nodes.len())
    }

    /// Undoes the trial placements and template nodes since `mark`.
    pub fn revert_to(&mut self, mark: (usize, usize)) {
        while self.trial.len() > mark.0 {
            let (i, info) = self.trial.pop().expect("longer than the mark");
            if i < mark.1 {
                self.nodes[i].remove_pod(&info.namespace, &info.name);
            }
        }
        self.nodes.truncate(mark.1.max(self.real));
    }

    /// Undoes every trial placement and template node of the loop.
    pub fn revert(&mut self) {
        self.revert_to((0, self.real));
    }
}
