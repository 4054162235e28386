//! `coordination.k8s.io/v1` Lease: the kubelet's heartbeat.

use k8s_openapi::api::coordination::v1 as coordination;
use serde_json::{json, Map, Value as Json};

use crate::sim::SimTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseBody {
    pub holder_identity: Option<String>,
    pub lease_duration_seconds: Option<i32>,
    pub acquire_time: Option<SimTime>,
    pub renew_time: Option<SimTime>,
    pub lease_transitions: Option<i32>,
}

impl LeaseBody {
    pub fn from_api(l: &coordination::Lease) -> LeaseBody {
        let spec = l.spec.clone().unwrap_or_default();
        LeaseBody {
            holder_identity: spec.holder_identity,
            lease_duration_seconds: spec.lease_duration_seconds,
            // Times in a manifest refer to wall-clock instants outside the run.
            acquire_time: None,
            renew_time: None,
            lease_transitions: spec.lease_transitions,
        }
    }

    pub(crate) fn write_json(&self, m: &mut Map<String, Json>) {
        let mut spec = Map::new();
        if let Some(h) = &self.holder_identity {
            spec.insert("holderIdentity".into(), json!(h));
        }
        if let Some(d) = self.lease_duration_seconds {
            spec.insert("leaseDurationSeconds".into(), json!(d));
        }
        if let Some(t) = self.acquire_time {
            spec.insert("acquireTime".into(), json!(t.rfc3339_micro()));
        }
        if let Some(t) = self.renew_time {
            spec.insert("renewTime".into(), json!(t.rfc3339_micro()));
        }
        if let Some(n) = self.lease_transitions {
            spec.insert("leaseTransitions".into(), json!(n));
        }
        m.insert("spec".into(), Json::Object(spec));
    }
}
