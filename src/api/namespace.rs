//! A Namespace's spec and status: `spec.finalizers`, which hold a deleted
//! namespace until the namespace controller has emptied it (the apiserver
//! puts `kubernetes` there on create), and the phase and deletion
//! conditions the controller reports while it works.

use serde_json::{json, Map, Value as Json};

use crate::sim::SimTime;

/// The finalizer the namespace controller owns (`v1.FinalizerKubernetes`).
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespacePhase {
    Active,
    Terminating,
}

impl NamespacePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespacePhase::Active => "Active",
            NamespacePhase::Terminating => "Terminating",
        }
    }
}

/// One `status.conditions[]` entry (`v1.NamespaceCondition`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceCondition {
    pub type_: &'static str,
    pub status: bool,
    pub last_transition: SimTime,
    pub reason: String,
    pub message: String,
}

/// What a Namespace holds besides its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceBody {
    pub finalizers: Vec<String>,
    pub phase: NamespacePhase,
    pub conditions: Vec<NamespaceCondition>,
}

impl Default for NamespaceBody {
    /// A namespace as the apiserver creates it: `kubernetes` in its
    /// finalizers, Active.
    fn default() -> Self {
        NamespaceBody {
            finalizers: vec![FINALIZER_KUBERNETES.to_string()],
            phase: NamespacePhase::Active,
            conditions: Vec::new(),
        }
    }
}

impl NamespaceBody {
    /// From a manifest: its `spec.finalizers` as written; status is the
    /// server's, so it starts Active.
    pub fn from_api(n: &k8s_openapi::api::core::v1::Namespace) -> Self {
        NamespaceBody {
            finalizers: n
                .spec
                .as_ref()
                .and_then(|s| s.finalizers.clone())
                .unwrap_or_default(),
            phase: NamespacePhase::Active,
            conditions: Vec::new(),
        }
    }

    pub fn condition(&self, type_: &str) -> Option<&NamespaceCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn write_json(&self, m: &mut Map<String, Json>) {
        let mut spec = Map::new();
        if !self.finalizers.is_empty() {
            spec.insert("finalizers".into(), json!(self.finalizers));
        }
        m.insert("spec".into(), Json::Object(spec));
        let mut status = Map::new();
        status.insert("phase".into(), json!(self.phase.as_str()));
        if !self.conditions.is_empty() {
            let conds: Vec<Json> = self
                .conditions
                .iter()
                .map(|c| {
                    json!({
                        "type": c.type_,
                        "status": if c.status { "True" } else { "False" },
                        "lastTransitionTime": c.last_transition.rfc3339(),
                        "reason": c.reason,
                        "message": c.message,
                    })
                })
                .collect();
            status.insert("conditions".into(), Json::Array(conds));
        }
        m.insert("status".into(), Json::Object(status));
    }
}
