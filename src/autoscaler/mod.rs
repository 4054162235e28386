//! The cluster autoscaler and the cloud it scales.
//!
//! Two components, as in a real cluster: the cloud provider
//! ([`cloud::CloudProvider`]) owns the machines of each node group and
//! answers the node-group API (target sizes, instances, IncreaseSize,
//! DeleteNodes) over the network; the cluster autoscaler
//! ([`cluster_autoscaler::ClusterAutoscaler`]) is a controller in its own
//! process that watches Pods, Nodes and PodDisruptionBudgets through the
//! apiserver, asks the cloud for the groups on every scan, and decides
//! with the scheduler's own filters. Neither reads the other's state.
//!
//! Files: [`config`] the options and their upstream defaults; [`cloud_api`]
//! the calls and answers; [`cloud`] the provider; [`view`] the
//! autoscaler's incremental cluster snapshot; [`scale_up`] pending pods,
//! the binpacking estimator; [`expander`] choosing a group; [`scale_down`]
//! utilisation, drainability and unneeded nodes; [`actuation`] taint,
//! drain and delete.

pub mod actuation;
pub mod cloud;
pub mod cloud_api;
pub mod cluster_autoscaler;
pub mod config;
pub mod expander;
pub mod scale_down;
pub mod scale_up;
pub mod view;

pub use config::{AutoscalerConfig, Autoscaling, Expander, NodeGroupPlan};
