//! Requests and responses between API clients and the apiserver, and watch batches.

use std::sync::Arc;

use crate::api::node::{NodeCondition, NodeImage};
use crate::api::pod::{Condition, PodStatus};
use crate::api::{Kind, Object};
use crate::sim::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    UpdateStatus,
    Patch,
    Delete,
    /// `pods/binding`.
    Bind,
    /// `pods/eviction`: a delete that honours PodDisruptionBudgets.
    Evict,
    /// `namespaces/finalize`: the update that may change `spec.finalizers`.
    Finalize,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::UpdateStatus => "PUT status",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::Bind => "POST binding",
            Verb::Evict => "POST eviction",
            Verb::Finalize => "PUT finalize",
        }
    }

    /// Counts against `--max-mutating-requests-inflight`.
    pub fn is_mutating(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// A change applied server-side against the current object (the apiserver's
/// GuaranteedUpdate loop): retried on conflict, unlike a plain update.
#[derive(Clone, Debug)]
pub enum PatchOp {
    /// JSON merge patch (RFC 7386) of the object's JSON form.
    Merge(serde_json::Value),
    /// RFC 6902 `replace` operations (path, value), as `kubectl rollout undo`
    /// and `kubectl set image` send them; a missing last key is added.
    JsonPatch(Vec<(String, serde_json::Value)>),
    /// The kubelet's pod status patch: conditions it does not set (the
    /// scheduler's) and `nominatedNodeName` are kept, as a strategic merge
    /// patch keeps them.
    PodStatus(Box<PodStatus>),
    /// One pod condition set by type, and optionally `nominatedNodeName`
    /// (`Some(None)` clears it): how the scheduler reports.
    PodCondition {
        condition: Condition,
        nominated_node: Option<Option<String>>,
    },
    /// The resourceclaim controller's `status.resourceClaimStatuses`.
    PodResourceClaimStatuses(Vec<(String, Option<String>)>),
    /// The kubelet's node status patch.
    NodeStatus {
        conditions: Vec<NodeCondition>,
        images: Vec<NodeImage>,
    },
    /// The node lifecycle controller's taint swap: remove (key, effect)
    /// pairs, then add taints not already present.
    NodeTaints {
        add: Vec<crate::api::node::Taint>,
        remove: Vec<(String, String)>,
    },
    /// The kubelet renewing its Lease.
    LeaseRenew {
        holder: String,
        renew: SimTime,
        duration_seconds: i32,
    },
}

#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub id: u64,
    pub verb: Verb,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub body: Option<Arc<Object>>,
    pub patch: Option<PatchOp>,
    /// `fieldSelector=spec.nodeName=X` for pods (the kubelet's watch).
    pub node_filter: Option<String>,
    /// Watch: start after this revision. Update: the precondition.
    pub resource_version: u64,
    /// Delete: `gracePeriodSeconds`; `Some(0)` deletes at once.
    pub grace_seconds: Option<i64>,
    /// Bind: the target node.
    pub target: Option<String>,
    /// Delete: `propagationPolicy` (`Foreground`, `Background`, `Orphan`).
    pub propagation: Option<&'static str>,
    /// Watch: the client's stream id, echoed in every batch.
    pub watch_id: u64,
    /// When the client gives up on this attempt (its request timeout). A
    /// request still held on a stalled connection then is cancelled (HTTP/2
    /// resets the stream) and never reaches the server.
    pub deadline: SimTime,
}

impl ApiRequest {
    pub fn new(verb: Verb, kind: Kind, namespace: &str, name: &str) -> Self {
        ApiRequest {
            id: 0,
            verb,
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            body: None,
            patch: None,
            node_filter: None,
            resource_version: 0,
            grace_seconds: None,
            target: None,
            propagation: None,
            watch_id: 0,
            deadline: SimTime::MAX,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub id: u64,
    /// HTTP status: 200, 201, 404, 409, 410, 422, 429, 500, 504.
    pub code: u16,
    /// Kubernetes `Status.reason` (`Conflict`, `NotFound`, `AlreadyExists`, …).
    pub reason: &'static str,
    pub message: String,
    /// `Status.details.causes[0].message`: why, in more words (the budget
    /// an eviction would break).
    pub cause: String,
    /// The `Retry-After` header, in seconds: client-go waits that long and
    /// retries a 429 that carries one, and hands back one that does not.
    pub retry_after: Option<u32>,
    pub object: Option<Arc<Object>>,
    pub items: Vec<Arc<Object>>,
    pub resource_version: u64,
}

impl ApiResponse {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
}

#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub type_: EventType,
    pub object: Option<Arc<Object>>,
    pub resource_version: u64,
}

/// A batch of watch events on one stream. `seq` numbers batches so a client
/// can tell that one went missing (the stream broke) and relist.
#[derive(Clone, Debug)]
pub struct WatchBatch {
    pub watch_id: u64,
    pub seq: u64,
    pub events: Vec<WatchEvent>,
    /// The server ended the stream (`410 Gone` on a too-old revision).
    pub gone: bool,
    /// The stream ended without an error (the connection closed, or the
    /// apiserver terminated its watchers): the watcher resumes from the
    /// last revision it saw.
    pub closed: bool,
}
