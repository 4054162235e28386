//! kube-scheduler's scoring and filtering, plugin for plugin, with
//! upstream's integer arithmetic. This first part is the pure core: resource
//! accounting as the scheduler sees it ([`resources`]), the framework's
//! score rules ([`framework`]) and the plugins ([`plugins`]). The scheduler
//! component (informers, queue, binding) builds on it.

pub mod component;
pub mod explain;
pub mod framework;
pub mod plugins;
pub mod pod_info;
pub mod profile;
pub mod queue;
pub mod resources;
