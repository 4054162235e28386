//! kube-controller-manager's controllers. Each acts only from the shared
//! informers' cache and only through API requests: the same staleness,
//! conflicts and rate limits a real controller-manager lives with.

pub mod cache;
pub mod controller;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod event_recorder;
pub mod expectations;
pub mod garbage_collector;
pub mod history;
pub mod hpa;
pub mod job;
pub mod manager;
pub mod namespace;
pub mod node_lifecycle;
pub mod pod_gc;
pub mod replicaset;
pub mod resource_claim;
pub mod rollout_status;
pub mod statefulset;
pub mod taint_eviction;
pub mod workload;
pub mod workqueue;

pub use manager::ControllerManager;

use controller::Controller;

use crate::model::client::{RateLimit, CONTROLLER_MANAGER};
use crate::sim::SimDuration;

/// kube-controller-manager's flags that kubesim reads.
#[derive(Clone, Debug)]
pub struct ControllerManagerConfig {
    pub node_monitor_period: SimDuration,
    pub node_monitor_grace_period: SimDuration,
    /// `--node-startup-grace-period`: how long a node that never posted a
    /// Ready condition has, from its creation, before it is marked Unknown.
    pub node_startup_grace_period: SimDuration,
    pub api: RateLimit,
    /// `--terminated-pod-gc-threshold`: terminated pods kept before the
    /// pod garbage collector deletes the oldest (0: never).
    pub terminated_pod_gc_threshold: u32,
    /// The scenario's offered load, the source of the HPA's CPU metrics.
    pub load: Vec<crate::model::load::LoadProfile>,
}

impl Default for ControllerManagerConfig {
    fn default() -> Self {
        ControllerManagerConfig {
            node_monitor_period: SimDuration::from_secs(5),
            // The API types are v1.34's, so the controller-manager is too.
            node_monitor_grace_period: SimDuration::from_secs(50),
            node_startup_grace_period: SimDuration::from_secs(60),
            api: CONTROLLER_MANAGER,
            terminated_pod_gc_threshold: pod_gc::DEFAULT_TERMINATED_POD_GC_THRESHOLD,
            load: Vec::new(),
        }
    }
}

/// The controllers a stock kube-controller-manager runs that kubesim models.
pub fn default_controllers(cfg: &ControllerManagerConfig) -> Vec<Box<dyn Controller>> {
    vec![
        Box::new(deployment::DeploymentController::default()),
        Box::new(replicaset::ReplicaSetController::default()),
        Box::new(statefulset::StatefulSetController::default()),
        Box::new(daemonset::DaemonSetController::default()),
        Box::new(job::JobController::default()),
        Box::new(cronjob::CronJobController::default()),
        Box::new(endpoints::EndpointsController),
        Box::new(disruption::DisruptionController),
        Box::new(hpa::HorizontalPodAutoscalerController::new(
            cfg.load.clone(),
        )),
        Box::new(garbage_collector::GarbageCollector::default()),
        Box::new(namespace::NamespaceController::default()),
        Box::new(node_lifecycle::NodeLifecycleController::new(
            cfg.node_monitor_period,
            cfg.node_monitor_grace_period,
            cfg.node_startup_grace_period,
        )),
        Box::new(taint_eviction::TaintEvictionController::default()),
        Box::new(pod_gc::PodGcController::new(
            cfg.terminated_pod_gc_threshold,
        )),
    ]
}
