//! The control-plane and process fault kinds of `faults:`:
//! `componentCrash` (kube-apiserver, kube-scheduler or
//! kube-controller-manager exits and restarts), `kubeletCrash` (a kubelet
//! process exits and a new one adopts the running containers),
//! `kubeletHang` (a kubelet process stops handling anything, then goes on)
//! and `etcdSlowDisk` (a member's WAL fsync stalls). Each draws on its own
//! stream like every kind; this file resolves their settings and says
//! which targets a new fault of theirs may take.

use serde::Deserialize;

use super::profile::{
    kind, pool_nodes, unknown, Cluster, DurationRangeSpec, FaultKind, KindProfile,
};
use super::schedule::DrawnFault;
use crate::scenario::spec::Dur;
use crate::sim::SimDuration;

/// `componentCrash:`; `components` default to every control-plane
/// component the scenario runs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentCrashSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    pub components: Option<Vec<String>>,
}

/// `kubeletCrash:` and `kubeletHang:`; `pools` are node pools whose
/// kubelets may fail.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletFaultSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    pub pools: Vec<String>,
}

/// `etcdSlowDisk:`; `members` default to every member; while a stall
/// lasts each WAL fsync of its member takes at least `fsync`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowDiskSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    pub members: Option<Vec<String>>,
    pub fsync: Dur,
}

/// The `faults:` fields of these kinds, borrowed from the section.
pub struct ProcessKindSpecs<'a> {
    pub component_crash: Option<&'a ComponentCrashSpec>,
    pub kubelet_crash: Option<&'a KubeletFaultSpec>,
    pub kubelet_hang: Option<&'a KubeletFaultSpec>,
    pub etcd_slow_disk: Option<&'a SlowDiskSpec>,
}

/// Resolves the kinds present, in [`FaultKind`] order, onto `kinds`.
pub fn resolve(
    specs: ProcessKindSpecs<'_>,
    cluster: &Cluster<'_>,
    from: SimDuration,
    fail: &mut dyn FnMut(&str, String),
    kinds: &mut Vec<KindProfile>,
) {
    if let Some(k) = specs.component_crash {
        let targets = components(k.components.as_deref(), cluster, fail);
        let d = &k.duration;
        kinds.push(kind(
            FaultKind::ComponentCrash,
            k.mean_time_between,
            d,
            targets,
            fail,
        ));
    }
    for (fk, spec) in [
        (FaultKind::KubeletCrash, specs.kubelet_crash),
        (FaultKind::KubeletHang, specs.kubelet_hang),
    ] {
        if let Some(k) = spec {
            let path = format!("faults.{}.pools", fk.name());
            let targets = pool_nodes(&k.pools, &path, cluster, from, fail);
            kinds.push(kind(fk, k.mean_time_between, &k.duration, targets, fail));
        }
    }
    if let Some(k) = specs.etcd_slow_disk {
        if k.fsync.0.is_zero() {
            fail(
                "faults.etcdSlowDisk.fsync",
                "a stalled fsync takes longer than zero".into(),
            );
        }
        let targets = members(k.members.as_deref(), cluster, fail);
        let fk = FaultKind::EtcdSlowDisk { fsync: k.fsync.0 };
        kinds.push(kind(fk, k.mean_time_between, &k.duration, targets, fail));
    }
}

fn components(
    named: Option<&[String]>,
    cluster: &Cluster<'_>,
    fail: &mut dyn FnMut(&str, String),
) -> Vec<String> {
    const PATH: &str = "faults.componentCrash.components";
    let Some(named) = named else {
        return cluster.components.iter().map(|c| c.to_string()).collect();
    };
    if named.is_empty() {
        fail(
            PATH,
            "name at least one component, or leave the field out for all".into(),
        );
    }
    for (i, c) in named.iter().enumerate() {
        if !cluster.components.contains(&c.as_str()) {
            fail(
                &format!("{PATH}[{i}]"),
                unknown("running component", c, cluster.components),
            );
        }
    }
    named.to_vec()
}

fn members(
    named: Option<&[String]>,
    cluster: &Cluster<'_>,
    fail: &mut dyn FnMut(&str, String),
) -> Vec<String> {
    const PATH: &str = "faults.etcdSlowDisk.members";
    let all: Vec<String> = (0..cluster.etcd_members)
        .map(|i| format!("etcd-{i}"))
        .collect();
    let Some(named) = named else { return all };
    if named.is_empty() {
        fail(
            PATH,
            "name at least one member, or leave the field out for all".into(),
        );
    }
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    for (i, m) in named.iter().enumerate() {
        if !all.contains(m) {
            fail(&format!("{PATH}[{i}]"), unknown("etcd member", m, &names));
        }
    }
    named.to_vec()
}

/// Whether `node` is already down or failing: its machine crashed, or its
/// kubelet crashed or hangs. One node takes one of these at a time (a
/// kubelet restart on a crashed machine would mean nothing).
pub fn node_busy(active: &[DrawnFault], node: &str) -> bool {
    active.iter().any(|f| {
        matches!(
            f.kind,
            FaultKind::NodeCrash | FaultKind::KubeletCrash | FaultKind::KubeletHang
        ) && f.target == node
    })
}

/// The targets a new fault of `kind` (one of this file's kinds) may take:
/// those not already failing in the same way (a node: in any of the ways
/// [`node_busy`] counts).
pub fn free_targets<'a>(kind: &'a KindProfile, active: &[DrawnFault]) -> Vec<&'a String> {
    kind.targets
        .iter()
        .filter(|t| match kind.kind {
            FaultKind::KubeletCrash | FaultKind::KubeletHang => !node_busy(active, t),
            k => !active.iter().any(|f| f.kind == k && &f.target == *t),
        })
        .collect()
}
