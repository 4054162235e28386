//! Cluster events as the scheduling queue sees them (upstream's
//! `fwk.ClusterEvent`): a resource and an action type, plus the objects
//! before and after, which the plugins' queueing hints read to decide
//! whether the event may make a pod they rejected schedulable.

use std::sync::Arc;

use super::node_info::NodeSnapshot;
use super::pod_info::PodInfo;

/// What an event is about. Plugins register `Pod`, which matches both
/// `AssignedPod` and `UnscheduledPod` events, as upstream's
/// `MatchClusterEvents` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Node,
    Pod,
    AssignedPod,
    UnscheduledPod,
    ResourceClaim,
    ResourceSlice,
    DeviceClass,
    WildCard,
}

/// A set of actions (upstream's `fwk.ActionType` bit flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionType(pub u32);

impl ActionType {
    pub const ADD: ActionType = ActionType(1);
    pub const DELETE: ActionType = ActionType(1 << 1);
    pub const UPDATE_NODE_ALLOCATABLE: ActionType = ActionType(1 << 2);
    pub const UPDATE_NODE_LABEL: ActionType = ActionType(1 << 3);
    pub const UPDATE_NODE_TAINT: ActionType = ActionType(1 << 4);
    pub const UPDATE_NODE_CONDITION: ActionType = ActionType(1 << 5);
    pub const UPDATE_NODE_ANNOTATION: ActionType = ActionType(1 << 6);
    pub const UPDATE_POD_LABEL: ActionType = ActionType(1 << 7);
    pub const UPDATE_POD_SCALE_DOWN: ActionType = ActionType(1 << 8);
    pub const UPDATE_POD_TOLERATION: ActionType = ActionType(1 << 9);
    pub const UPDATE_POD_SCHEDULING_GATES_ELIMINATED: ActionType = ActionType(1 << 10);
    /// `status.resourceClaimStatuses` changed (the claim of a template made).
    pub const UPDATE_POD_GENERATED_RESOURCE_CLAIM: ActionType = ActionType(1 << 11);
    /// Any update of a DRA object.
    pub const UPDATE: ActionType = ActionType(1 << 12);
    pub const ALL: ActionType = ActionType(u32::MAX);

    pub const fn or(self, other: ActionType) -> ActionType {
        ActionType(self.0 | other.0)
    }

    pub fn intersects(self, other: ActionType) -> bool {
        self.0 & other.0 != 0
    }
}

/// One kind of event: what and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterEvent {
    pub resource: Resource,
    pub action: ActionType,
    /// Upstream's label (metrics and logs): `NodeAdd`, `AssignedPodDelete`, …
    pub label: &'static str,
}

impl ClusterEvent {
    pub const fn new(resource: Resource, action: ActionType, label: &'static str) -> Self {
        ClusterEvent {
            resource,
            action,
            label,
        }
    }

    /// Whether an event registered as `self` covers `incoming`.
    pub fn matches(&self, incoming: &ClusterEvent) -> bool {
        let resource = match (self.resource, incoming.resource) {
            (Resource::WildCard, _) => true,
            (Resource::Pod, Resource::AssignedPod | Resource::UnscheduledPod) => true,
            (a, b) => a == b,
        };
        resource && self.action.intersects(incoming.action)
    }

    pub fn is_wildcard(&self) -> bool {
        self.resource == Resource::WildCard
    }
}

pub const NODE_ADD: ClusterEvent = ClusterEvent::new(Resource::Node, ActionType::ADD, "NodeAdd");
pub const NODE_DELETE: ClusterEvent =
    ClusterEvent::new(Resource::Node, ActionType::DELETE, "NodeDelete");
pub const ASSIGNED_POD_ADD: ClusterEvent =
    ClusterEvent::new(Resource::AssignedPod, ActionType::ADD, "AssignedPodAdd");
pub const ASSIGNED_POD_DELETE: ClusterEvent = ClusterEvent::new(
    Resource::AssignedPod,
    ActionType::DELETE,
    "AssignedPodDelete",
);
pub const ASSIGNED_POD_UPDATE_LABEL: ClusterEvent = ClusterEvent::new(
    Resource::AssignedPod,
    ActionType::UPDATE_POD_LABEL,
    "AssignedPodUpdate",
);
pub const POD_GENERATED_RESOURCE_CLAIM: ClusterEvent = ClusterEvent::new(
    Resource::UnscheduledPod,
    ActionType::UPDATE_POD_GENERATED_RESOURCE_CLAIM,
    "UpdatePodGeneratedResourceClaim",
);

/// An add or update of a DRA object of `resource`.
pub const fn dra_event(resource: Resource, add: bool) -> ClusterEvent {
    let (action, label) = match (resource, add) {
        (Resource::ResourceClaim, true) => (ActionType::ADD, "ResourceClaimAdd"),
        (Resource::ResourceClaim, false) => (ActionType::UPDATE, "ResourceClaimUpdate"),
        (Resource::ResourceSlice, true) => (ActionType::ADD, "ResourceSliceAdd"),
        (Resource::ResourceSlice, false) => (ActionType::UPDATE, "ResourceSliceUpdate"),
        (_, true) => (ActionType::ADD, "DeviceClassAdd"),
        (_, false) => (ActionType::UPDATE, "DeviceClassUpdate"),
    };
    ClusterEvent::new(resource, action, label)
}

/// The 5-minute leftover flush: a wildcard, so it moves every pod.
pub const UNSCHEDULABLE_TIMEOUT: ClusterEvent =
    ClusterEvent::new(Resource::WildCard, ActionType::ALL, "UnschedulableTimeout");

/// An object an event involves, as the scheduler's cache holds it.
#[derive(Clone, Debug)]
pub enum Involved {
    /// The Node's fields (no pods accounted).
    Node(Arc<NodeSnapshot>),
    /// A pod and the node it is (or was) on.
    Pod(Arc<PodInfo>, Option<String>),
}

impl Involved {
    pub fn node(&self) -> Option<&NodeSnapshot> {
        match self {
            Involved::Node(n) => Some(n),
            Involved::Pod(..) => None,
        }
    }

    pub fn pod(&self) -> Option<(&PodInfo, Option<&str>)> {
        match self {
            Involved::Pod(p, n) => Some((p, n.as_deref())),
            Involved::Node(_) => None,
        }
    }
}

/// One event with the objects before and after (`None` for an add's old
/// object and a delete's new one).
#[derive(Clone, Debug)]
pub struct QueuedEvent {
    pub event: ClusterEvent,
    pub old: Option<Involved>,
    pub new: Option<Involved>,
}

impl QueuedEvent {
    pub fn old_node(&self) -> Option<&NodeSnapshot> {
        self.old.as_ref().and_then(Involved::node)
    }

    pub fn new_node(&self) -> Option<&NodeSnapshot> {
        self.new.as_ref().and_then(Involved::node)
    }

    pub fn old_pod(&self) -> Option<(&PodInfo, Option<&str>)> {
        self.old.as_ref().and_then(Involved::pod)
    }

    pub fn new_pod(&self) -> Option<(&PodInfo, Option<&str>)> {
        self.new.as_ref().and_then(Involved::pod)
    }
}

/// The events a Node update raises, as `NodeSchedulingPropertiesChange`
/// lists them: uncordoning counts as a taint change; allocatable, labels
/// and taints each their own. A heartbeat changes none of them.
pub fn node_update_events(old: &NodeSnapshot, new: &NodeSnapshot) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    let update = |a, l| ClusterEvent::new(Resource::Node, a, l);
    if old.unschedulable != new.unschedulable && !new.unschedulable {
        out.push(update(
            ActionType::UPDATE_NODE_TAINT,
            "NodeSpecUnschedulableChange",
        ));
    }
    if old.resources.allocatable != new.resources.allocatable {
        out.push(update(
            ActionType::UPDATE_NODE_ALLOCATABLE,
            "NodeAllocatableChange",
        ));
    }
    if old.labels != new.labels {
        out.push(update(ActionType::UPDATE_NODE_LABEL, "NodeLabelChange"));
    }
    if old.taints != new.taints {
        out.push(update(ActionType::UPDATE_NODE_TAINT, "NodeTaintChange"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_registrations_match_assigned_and_unscheduled_pod_events() {
        let reg = ClusterEvent::new(Resource::Pod, ActionType::DELETE.or(ActionType::ADD), "x");
        assert!(reg.matches(&ASSIGNED_POD_DELETE));
        assert!(reg.matches(&ASSIGNED_POD_ADD));
        assert!(!reg.matches(&ASSIGNED_POD_UPDATE_LABEL));
        assert!(!reg.matches(&NODE_ADD));
        let node = ClusterEvent::new(Resource::Node, ActionType::ADD, "x");
        assert!(node.matches(&NODE_ADD));
        assert!(!node.matches(&NODE_DELETE));
    }
}
