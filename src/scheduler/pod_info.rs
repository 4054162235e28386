//! What the scheduler reads of a pod, computed once when the pod enters its
//! cache: requests, tolerations, images.

use crate::api::pod::PodSpecModel;
use crate::scheduler::plugins::taint_toleration::Toleration;
use crate::scheduler::resources::{container_amounts, Amounts, PodRequests};

/// The scheduler's view of one pod's spec.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    pub requests: PodRequests,
    pub tolerations: Vec<Toleration>,
    /// Images of init and app containers, in spec order.
    pub images: Vec<String>,
    pub priority: i32,
}

impl PodInfo {
    pub fn new(spec: &PodSpecModel) -> PodInfo {
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
        let overhead = spec
            .api
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
        let tolerations = spec
            .api
            .tolerations
            .iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.clone().unwrap_or_default(),
                operator: t.operator.clone().unwrap_or_default(),
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.clone().unwrap_or_default(),
            })
            .collect();
        let images = spec
            .init_containers
            .iter()
            .chain(&spec.containers)
            .map(|c| c.image.clone())
            .collect();
        PodInfo {
            requests: PodRequests::from_containers(&apps, &inits, &overhead),
            tolerations,
            images,
            priority: spec.priority,
        }
    }
}
