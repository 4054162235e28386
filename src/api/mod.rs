//! Kubernetes objects: reading real manifests strictly, and the compact
//! internal types the simulation works with.
pub mod crd;
pub mod custom_kind;
pub mod custom_resource;
pub mod default_tolerations;
pub mod disruption_budget;
pub mod int_or_percent;
pub mod job_validation;
pub mod kinds;
pub mod lease;
pub mod limits;
pub mod manifest;
pub mod namespace;
pub mod node;
pub mod object;
pub mod pod;
pub mod priority;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod secret;
pub mod selector;
pub mod source;
pub mod workload_validation;
pub mod yaml;

pub use kinds::Kind;
pub use object::{Body, Meta, Object, ObjectKey};
