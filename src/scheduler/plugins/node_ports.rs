//! NodePorts: a pod asking for a host port cannot go where another pod
//! already holds the same port and protocol on an overlapping address.

use crate::scheduler::cluster_event::QueuedEvent;
use crate::scheduler::queueing_hint::QueueingHint;
use k8s_openapi::api::core::v1 as core;

pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// One `hostPort` a container asks for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    pub protocol: String,
    /// `0.0.0.0` when not given: every address.
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// The host ports of a pod's app containers (and sidecars), with the
    /// API's defaults (TCP, every address).
    pub fn of_pod(spec: &core::PodSpec) -> Vec<HostPort> {
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        spec.containers
            .iter()
            .chain(sidecars)
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| HostPort {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port: p.host_port.unwrap_or(0),
            })
            .collect()
    }

    /// Two claims collide on the same port and protocol when either is on
    /// every address or both are on the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == "0.0.0.0" || other.ip == "0.0.0.0" || self.ip == other.ip)
    }
}

/// The filter: any of `wanted` collides with a port in `used`.
pub fn filter<'a>(
    wanted: &[HostPort],
    mut used: impl Iterator<Item = &'a HostPort>,
) -> Option<&'static str> {
    if wanted.is_empty() {
        return None;
    }
    used.any(|u| wanted.iter().any(|w| w.conflicts(u)))
        .then_some(REASON)
}

/// Queueing hint for Pod/Delete (`isSchedulableAfterPodDeleted`): queue
/// when the deleted pod was on a node and held a port the waiting pod wants.
pub fn hint_after_pod_deleted(
    target: &crate::scheduler::pod_info::PodInfo,
    ev: &QueuedEvent,
) -> QueueingHint {
    match (ev.old_pod(), ev.new_pod()) {
        (Some((deleted, Some(_))), None) => {
            QueueingHint::from_bool(filter(&target.host_ports, deleted.host_ports.iter()).is_some())
        }
        _ => QueueingHint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(proto: &str, ip: &str, port: i32) -> HostPort {
        HostPort {
            protocol: proto.into(),
            ip: ip.into(),
            port,
        }
    }

    #[test]
    fn conflicts_follow_address_and_protocol() {
        assert!(hp("TCP", "0.0.0.0", 80).conflicts(&hp("TCP", "10.0.0.1", 80)));
        assert!(hp("TCP", "10.0.0.1", 80).conflicts(&hp("TCP", "10.0.0.1", 80)));
        assert!(!hp("TCP", "10.0.0.1", 80).conflicts(&hp("TCP", "10.0.0.2", 80)));
        assert!(!hp("TCP", "0.0.0.0", 80).conflicts(&hp("UDP", "0.0.0.0", 80)));
        assert!(!hp("TCP", "0.0.0.0", 80).conflicts(&hp("TCP", "0.0.0.0", 81)));
        let used = [hp("UDP", "0.0.0.0", 53)];
        assert_eq!(
            filter(&[hp("UDP", "127.0.0.1", 53)], used.iter()),
            Some(REASON)
        );
        assert_eq!(filter(&[], used.iter()), None);
    }
}
