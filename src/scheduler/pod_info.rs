//! What the scheduler reads of a pod, computed once when the pod enters its
//! cache: identity and labels, requests, tolerations, images, host ports,
//! inter-pod affinity terms and topology spread constraints.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;

use crate::api::pod::PodSpecModel;
use crate::api::{Object, ObjectKey};
use crate::scheduler::plugins::node_ports::HostPort;
use crate::scheduler::plugins::pod_affinity_term::AffinityTerm;
use crate::scheduler::plugins::pod_topology_spread::SpreadConstraint;
use crate::scheduler::plugins::taint_toleration::Toleration;
use crate::scheduler::resources::{container_amounts, Amounts, PodRequests};
use crate::sim::SimTime;

/// A pod's inter-pod affinity, parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodAffinity {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Weighted terms (`weight` set on each).
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
}

impl PodAffinity {
    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
    }
}

/// The scheduler's view of one pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: Arc<BTreeMap<String, String>>,
    pub requests: PodRequests,
    pub tolerations: Vec<Toleration>,
    /// Images of init and app containers, in spec order.
    pub images: Vec<String>,
    pub priority: i32,
    /// `preemptionPolicy: Never`: the pod waits rather than evicting others.
    pub never_preempts: bool,
    pub host_ports: Vec<HostPort>,
    pub affinity: PodAffinity,
    /// `topologySpreadConstraints` as written (system defaults are added
    /// per cycle by the profile).
    pub spread: Vec<SpreadConstraint>,
    /// Being deleted: topology spread does not count it.
    pub terminating: bool,
    /// When it started (or was created), for choosing between victims.
    pub start_time: SimTime,
    /// Names of `spec.schedulingGates` still present.
    pub gates: Vec<String>,
    /// `status.nominatedNodeName`: where an earlier preemption made room.
    pub nominated_node: Option<String>,
    /// The controller owning it (`kind`, `name`), for default spreading.
    pub controller: Option<(String, String)>,
}

impl PodInfo {
    /// From a Pod object.
    pub fn new(obj: &Object) -> PodInfo {
        let mut info = match obj.as_pod() {
            Some(body) => {
                let mut i = PodInfo::from_spec(&body.spec, &obj.meta.namespace, &obj.meta.labels);
                i.start_time = body.status.start_time.unwrap_or(obj.meta.creation);
                i.nominated_node = body.status.nominated_node_name.clone();
                i
            }
            None => PodInfo::default(),
        };
        info.namespace = obj.meta.namespace.clone();
        info.name = obj.meta.name.clone();
        info.labels = obj.meta.labels.clone();
        info.terminating = obj.meta.deletion.is_some();
        info.controller = obj
            .meta
            .owner_references
            .iter()
            .find(|o| o.controller)
            .map(|o| (o.kind.clone(), o.name.clone()));
        info
    }

    /// The pod's key in the scheduler's cache.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: crate::api::Kind::Pod,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// From a spec alone, in `namespace` with `labels`.
    pub fn from_spec(
        spec: &PodSpecModel,
        namespace: &str,
        labels: &Arc<BTreeMap<String, String>>,
    ) -> PodInfo {
        let apps: Vec<Amounts> = spec
            .containers
            .iter()
            .map(|c| container_amounts(&c.requests))
            .collect();
        let inits: Vec<Amounts> = spec
            .init_containers
            .iter()
            .map(|c| container_amounts(&c.requests))
            .collect();
        let api = &spec.api;
        let overhead = api
            .overhead
            .as_ref()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, q)| {
                        crate::api::quantity::Quantity::parse(&q.0)
                            .ok()
                            .map(|q| (k.clone(), crate::scheduler::resources::amount(k, &q)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tolerations = api
            .tolerations
            .iter()
            .flatten()
            .map(Toleration::from_api)
            .collect();
        let images = spec
            .init_containers
            .iter()
            .chain(&spec.containers)
            .map(|c| c.image.clone())
            .collect();
        PodInfo {
            namespace: namespace.to_string(),
            labels: labels.clone(),
            requests: PodRequests::from_containers(&apps, &inits, &overhead),
            tolerations,
            images,
            priority: spec.priority,
            never_preempts: api.preemption_policy.as_deref() == Some("Never"),
            host_ports: HostPort::of_pod(api),
            affinity: parse_affinity(api, namespace, labels),
            spread: SpreadConstraint::of_pod(api, labels),
            gates: api
                .scheduling_gates
                .iter()
                .flatten()
                .map(|g| g.name.clone())
                .collect(),
            ..PodInfo::default()
        }
    }

    /// A pod with only requests (benchmarks and tests).
    pub fn with_requests(requests: PodRequests) -> PodInfo {
        PodInfo {
            requests,
            ..PodInfo::default()
        }
    }
}

fn parse_affinity(
    spec: &core::PodSpec,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> PodAffinity {
    let mut out = PodAffinity::default();
    let Some(a) = &spec.affinity else { return out };
    let term = |t: &core::PodAffinityTerm, weight: i32| {
        AffinityTerm::from_api(t, weight, namespace, labels)
    };
    if let Some(pa) = &a.pod_affinity {
        out.required_affinity = pa
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|t| term(t, 0))
            .collect();
        out.preferred_affinity = pa
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|w| term(&w.pod_affinity_term, w.weight))
            .collect();
    }
    if let Some(pa) = &a.pod_anti_affinity {
        out.required_anti_affinity = pa
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|t| term(t, 0))
            .collect();
        out.preferred_anti_affinity = pa
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|w| term(&w.pod_affinity_term, w.weight))
            .collect();
    }
    out
}
