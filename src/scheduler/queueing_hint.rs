//! QueueingHints (GA in v1.34): each filter plugin registers the cluster
//! events that can make a pod it rejected schedulable, each with a hint
//! function that looks at the event's objects and says `Queue` or
//! `QueueSkip`. The scheduling queue asks only the plugins that rejected
//! the pod, so an event moves only the pods it may help.

use k8s_openapi::api::core::v1 as core;

use super::cluster_event::{ActionType, ClusterEvent, QueuedEvent, Resource};
use super::config::{FilterPlugin, Profile};
use super::plugins::pod_topology_spread::SpreadConstraint;
use super::plugins::{
    inter_pod_affinity, node_affinity, node_name, node_ports, node_resources_fit,
    node_unschedulable, pod_topology_spread, taint_toleration,
};
use super::pod_info::PodInfo;

/// A hint function's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueingHint {
    Queue,
    QueueSkip,
}

impl QueueingHint {
    pub fn from_bool(queue: bool) -> QueueingHint {
        if queue {
            QueueingHint::Queue
        } else {
            QueueingHint::QueueSkip
        }
    }
}

const fn node(action: ActionType) -> ClusterEvent {
    ClusterEvent::new(Resource::Node, action, "")
}

const fn pod(action: ActionType) -> ClusterEvent {
    ClusterEvent::new(Resource::Pod, action, "")
}

const ADD: ActionType = ActionType::ADD;
const DELETE: ActionType = ActionType::DELETE;

const TAINT: ActionType = ActionType::UPDATE_NODE_TAINT;
const LABEL: ActionType = ActionType::UPDATE_NODE_LABEL;
const POD_LABEL: ActionType = ActionType::UPDATE_POD_LABEL;

const NODE_ADD_OR_TAINT: ClusterEvent = node(ADD.or(TAINT));
const POD_TOLERATION: ClusterEvent = pod(ActionType::UPDATE_POD_TOLERATION);
const NODE_ADD: ClusterEvent = node(ADD);
const NODE_ADD_OR_LABEL: ClusterEvent = node(ADD.or(LABEL));
const POD_DELETE: ClusterEvent = pod(DELETE);
const NODE_ADD_OR_ALLOCATABLE: ClusterEvent = node(ADD.or(ActionType::UPDATE_NODE_ALLOCATABLE));
const POD_ADD_LABEL_DELETE: ClusterEvent = pod(ADD.or(POD_LABEL).or(DELETE));
const NODE_ADD_DELETE_LABEL_TAINT: ClusterEvent = node(ADD.or(DELETE).or(LABEL).or(TAINT));

/// Each plugin's `EventsToRegister` with QueueingHints on (so without the
/// extra Node updates the preCheck era needed).
pub fn events_to_register(plugin: FilterPlugin) -> &'static [ClusterEvent] {
    match plugin {
        FilterPlugin::NodeUnschedulable => &[NODE_ADD_OR_TAINT, POD_TOLERATION],
        FilterPlugin::NodeName => &[NODE_ADD],
        FilterPlugin::TaintToleration => &[NODE_ADD_OR_TAINT, POD_TOLERATION],
        FilterPlugin::NodeAffinity => &[NODE_ADD_OR_LABEL],
        FilterPlugin::NodePorts => &[POD_DELETE, NODE_ADD],
        // Pod/UpdatePodScaleDown too upstream (in-place resize), which
        // kubesim does not model: no pod's requests ever shrink.
        FilterPlugin::NodeResourcesFit => &[POD_DELETE, NODE_ADD_OR_ALLOCATABLE],
        FilterPlugin::PodTopologySpread => &[POD_ADD_LABEL_DELETE, NODE_ADD_DELETE_LABEL_TAINT],
        FilterPlugin::InterPodAffinity => &[POD_ADD_LABEL_DELETE, NODE_ADD_OR_LABEL],
        FilterPlugin::DynamicResources => &DRA_EVENTS,
    }
}

const ADD_OR_UPDATE: ActionType = ADD.or(ActionType::UPDATE);

/// DynamicResources' registrations (v1.34, QueueingHints on).
const DRA_EVENTS: [ClusterEvent; 5] = [
    node(ADD.or(LABEL).or(ActionType::UPDATE_NODE_ALLOCATABLE)),
    ClusterEvent::new(Resource::ResourceClaim, ADD_OR_UPDATE, ""),
    pod(ActionType::UPDATE_POD_GENERATED_RESOURCE_CLAIM),
    ClusterEvent::new(Resource::DeviceClass, ADD_OR_UPDATE, ""),
    ClusterEvent::new(Resource::ResourceSlice, ADD_OR_UPDATE, ""),
];

/// Whether `event` is one of DynamicResources' (a plugin not listed in
/// profiles: it runs whenever the scheduler watches the DRA kinds).
fn dra_interest(event: &ClusterEvent) -> bool {
    DRA_EVENTS.iter().skip(1).any(|r| r.matches(event))
}

/// Whether any enabled plugin of any profile registers `event`
/// (`isEventOfInterest`): if none does, the queue is not even scanned.
pub fn of_interest(profiles: &[Profile], event: &ClusterEvent) -> bool {
    event.is_wildcard()
        || dra_interest(event)
        || profiles.iter().any(|p| {
            p.filters
                .iter()
                .any(|f| events_to_register(*f).iter().any(|r| r.matches(event)))
        })
}

/// The pod a hint is asked about.
pub struct Target<'a> {
    pub pod: &'a PodInfo,
    pub spec: &'a core::PodSpec,
    pub profile: &'a Profile,
    /// Its topology spread constraints (its own, or the defaults), built
    /// only when PodTopologySpread is asked.
    pub spread: &'a dyn Fn() -> Vec<SpreadConstraint>,
}

/// `plugin`'s hint for `target` after `ev`, or `None` when the plugin does
/// not register the event (or is not enabled in the pod's profile).
pub fn hint(plugin: FilterPlugin, target: &Target<'_>, ev: &QueuedEvent) -> Option<QueueingHint> {
    if !target.profile.filters.contains(&plugin) && plugin != FilterPlugin::DynamicResources {
        return None;
    }
    let registered = events_to_register(plugin)
        .iter()
        .find(|r| r.matches(&ev.event))?;
    let on_node = registered.resource == Resource::Node;
    let pod = target.pod;
    Some(match (plugin, on_node) {
        (FilterPlugin::NodeUnschedulable, true) => node_unschedulable::hint_after_node_change(ev),
        (FilterPlugin::NodeUnschedulable | FilterPlugin::TaintToleration, false) => {
            taint_toleration::hint_after_pod_toleration_change(pod, ev)
        }
        (FilterPlugin::NodeName, _) => node_name::hint_after_node_add(target.spec, ev),
        (FilterPlugin::TaintToleration, true) => {
            taint_toleration::hint_after_node_change(&pod.tolerations, ev)
        }
        (FilterPlugin::NodeAffinity, _) => {
            node_affinity::hint_after_node_change(target.profile, target.spec, ev)
        }
        // NodePorts registers Node/Add without a hint function: always Queue.
        (FilterPlugin::NodePorts, true) => QueueingHint::Queue,
        (FilterPlugin::NodePorts, false) => node_ports::hint_after_pod_deleted(pod, ev),
        (FilterPlugin::NodeResourcesFit, true) => {
            node_resources_fit::hint_after_node_change(&pod.requests, ev)
        }
        (FilterPlugin::NodeResourcesFit, false) => node_resources_fit::hint_after_pod_event(ev),
        (FilterPlugin::PodTopologySpread, true) => {
            pod_topology_spread::hint_after_node_change(&(target.spread)(), ev)
        }
        (FilterPlugin::PodTopologySpread, false) => {
            pod_topology_spread::hint_after_pod_change(pod, &(target.spread)(), ev)
        }
        (FilterPlugin::InterPodAffinity, true) => {
            inter_pod_affinity::hint_after_node_change(pod, ev)
        }
        (FilterPlugin::InterPodAffinity, false) => {
            inter_pod_affinity::hint_after_pod_change(pod, ev)
        }
        // Its own pod's generated claim: only that pod may now pass.
        (FilterPlugin::DynamicResources, false) if registered.resource == Resource::Pod => {
            QueueingHint::from_bool(
                ev.new_pod()
                    .is_some_and(|(p, _)| p.name == pod.name && p.namespace == pod.namespace),
            )
        }
        // Claims, slices and classes (upstream's claim hint refines this:
        // a claim this pod does not use and that freed nothing is skipped).
        (FilterPlugin::DynamicResources, _) => QueueingHint::Queue,
    })
}
