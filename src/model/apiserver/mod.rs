//! The kube-apiserver: admission of requests under in-flight limits, a watch
//! cache fed by etcd's watch, writes committed through etcd before they are
//! acknowledged or watched, and watches delivered over the network.

pub mod admission;
mod eviction;
pub mod immutable;
mod patch;
pub mod request;
mod server;
pub mod strategy;

pub use patch::merge_patch;
pub use server::{ApiServer, ApiServerConfig};
