//! kube-scheduler: the pure core (resource accounting in [`resources`],
//! the framework's score rules in [`framework`], the plugins in
//! [`plugins`], one decision under a [`config::Profile`] in [`profile`],
//! victim selection in [`preemption`]) and the component that runs it
//! inside the simulation ([`component`]: informers, queue, binding).

pub mod binds;
pub mod cluster_event;
pub mod component;
pub mod config;
pub mod default_selector;
pub mod explain;
pub mod fit_index;
pub mod framework;
pub mod node_info;
pub mod plain_fit;
pub mod plugins;
pub mod pod_info;
pub mod preemption;
pub mod profile;
pub mod queue;
pub mod queueing_hint;
pub mod resources;
