//! The `faults:` section of a scenario: which faults a run draws from its
//! seed, how often, for how long, against what, and inside which window.
//!
//! The section is decoded by the same strict, position-marked deserializer
//! as the rest of the file (an unknown field is an error at its line and
//! column), then checked against the cluster the scenario builds: every
//! named pool, node, etcd member and component must exist, and every fault
//! must be able to heal by `window.until`, so a liveness check can follow.

use serde::Deserialize;

use crate::scenario::spec::Dur;
use crate::scenario::NodePlan;
use crate::sim::{SimDuration, SimTime};

/// `faults:` as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultsSpec {
    /// Every fault starts at or after `from` and is healed by `until`.
    pub window: WindowSpec,
    /// Faults active at one instant, across kinds (default 1).
    pub max_concurrent: Option<u32>,
    /// Let etcd crashes take down a majority of the members (default false:
    /// a crash that would lose quorum is not drawn).
    pub allow_quorum_loss: Option<bool>,
    /// A node's machine dies, then boots again.
    pub node_crash: Option<NodeCrashSpec>,
    /// An etcd member's process exits, then restarts.
    pub etcd_crash: Option<EtcdCrashSpec>,
    /// Whichever etcd member leads at that instant exits, then restarts.
    pub etcd_leader_kill: Option<KindSpec>,
    /// One component is cut off from every other, then the network heals.
    pub partition: Option<PartitionSpec>,
    /// A control-plane component's process exits, then restarts.
    pub component_crash: Option<super::process_kinds::ComponentCrashSpec>,
    /// A kubelet process exits (its containers keep running), then a new
    /// one adopts them.
    pub kubelet_crash: Option<super::process_kinds::KubeletFaultSpec>,
    /// A kubelet process hangs, then goes on.
    pub kubelet_hang: Option<super::process_kinds::KubeletFaultSpec>,
    /// An etcd member's disk stalls: its WAL fsyncs slow down, then heal.
    pub etcd_slow_disk: Option<super::process_kinds::SlowDiskSpec>,
    /// A component's links get extra delay and loss, then recover.
    pub link_degrade: Option<super::network_workload::LinkDegradeSpec>,
    /// A running pod's container exits with a code.
    pub container_crash: Option<super::network_workload::ContainerCrashSpec>,
    /// Pulls of an image fail, then the registry recovers.
    pub image_pull_failure: Option<super::network_workload::ImagePullFailureSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowSpec {
    pub from: Dur,
    pub until: Dur,
}

/// How long one fault lasts: uniform in `[min, max]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationRangeSpec {
    pub min: Dur,
    pub max: Dur,
}

/// A kind without targets of its own.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindSpec {
    /// The mean of the exponential time between two faults' starts.
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
}

/// `nodeCrash:`; `pools` are node pools whose nodes may crash.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCrashSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    pub pools: Vec<String>,
}

/// `etcdCrash:`; `members` are `etcd-0`…, absent for every member.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdCrashSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    pub members: Option<Vec<String>>,
}

/// `partition:`; `targets` are node pools (each of their nodes is a
/// candidate), nodes, etcd members or control-plane components.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    pub targets: Vec<String>,
    /// Cut only what the target sends (default false: both ways).
    pub one_way: Option<bool>,
    /// Cut the target from these only (default: from everyone).
    pub peers: Option<Vec<String>>,
}

/// The fault kinds, in the fixed order the schedule merges them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    NodeCrash,
    EtcdCrash,
    EtcdLeaderKill,
    Partition,
    ComponentCrash,
    KubeletCrash,
    KubeletHang,
    /// Carries the stalled fsync time every fault of the kind uses.
    EtcdSlowDisk {
        fsync: SimDuration,
    },
    LinkDegrade,
    ContainerCrash,
    ImagePullFailure,
}

impl FaultKind {
    /// The field name in `faults:`, also the name of the kind's RNG stream.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NodeCrash => "nodeCrash",
            FaultKind::EtcdCrash => "etcdCrash",
            FaultKind::EtcdLeaderKill => "etcdLeaderKill",
            FaultKind::Partition => "partition",
            FaultKind::ComponentCrash => "componentCrash",
            FaultKind::KubeletCrash => "kubeletCrash",
            FaultKind::KubeletHang => "kubeletHang",
            FaultKind::EtcdSlowDisk { .. } => "etcdSlowDisk",
            FaultKind::LinkDegrade => "linkDegrade",
            FaultKind::ContainerCrash => "containerCrash",
            FaultKind::ImagePullFailure => "imagePullFailure",
        }
    }
}

/// One kind, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct KindProfile {
    pub kind: FaultKind,
    pub mean_time_between: SimDuration,
    pub min: SimDuration,
    pub max: SimDuration,
    /// Node names, `etcd-N`, or component names; empty for the leader kill.
    pub targets: Vec<String>,
    /// Settings of the network and workload kinds beyond their targets.
    pub extra: super::network_workload::KindExtra,
}

/// `faults:` resolved against the cluster, every default filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultProfile {
    pub from: SimTime,
    pub until: SimTime,
    pub max_concurrent: u32,
    pub allow_quorum_loss: bool,
    pub etcd_members: u32,
    /// In [`FaultKind`] order.
    pub kinds: Vec<KindProfile>,
}

/// What the profile's names are checked against.
pub struct Cluster<'a> {
    pub nodes: &'a [NodePlan],
    pub etcd_members: u32,
    /// Control-plane components that run: kube-apiserver, and the
    /// scheduler and controller-manager when enabled.
    pub components: &'a [&'a str],
    pub duration: SimDuration,
    /// The scenario's objects, for the workloads a container crash names.
    pub objects: &'a [crate::api::Object],
}

/// Faults closer together than this are not a profile anyone means; the
/// floor also bounds how many faults a window can draw.
pub const MIN_MEAN_TIME_BETWEEN: SimDuration = SimDuration::from_secs(1);

/// Resolves and checks `spec`; each problem goes to `error(path, message)`
/// with a field path under `faults`. `None` when anything was wrong.
pub fn resolve(
    spec: &FaultsSpec,
    cluster: &Cluster<'_>,
    error: &mut dyn FnMut(&str, String),
) -> Option<FaultProfile> {
    let mut ok = true;
    let mut fail = |path: &str, msg: String| {
        ok = false;
        error(path, msg);
    };
    let (from, until) = (spec.window.from.0, spec.window.until.0);
    if from >= until {
        fail(
            "faults.window",
            format!("the window's `from` ({from}) must come before its `until` ({until})"),
        );
    }
    if until > cluster.duration {
        fail(
            "faults.window.until",
            format!(
                "the window ends at {until}, after the run ({}): every fault must heal inside the run",
                cluster.duration
            ),
        );
    }
    let max_concurrent = spec.max_concurrent.unwrap_or(1);
    if max_concurrent == 0 {
        fail(
            "faults.maxConcurrent",
            "at least 1: with 0 no fault could ever start".into(),
        );
    }
    let allow_quorum_loss = spec.allow_quorum_loss.unwrap_or(false);
    let mut kinds = Vec::new();
    if let Some(k) = &spec.node_crash {
        let targets = pool_nodes(&k.pools, "faults.nodeCrash.pools", cluster, from, &mut fail);
        kinds.push(kind(
            FaultKind::NodeCrash,
            k.mean_time_between,
            &k.duration,
            targets,
            &mut fail,
        ));
    }
    if let Some(k) = &spec.etcd_crash {
        let targets = etcd_targets(k.members.as_deref(), cluster, &mut fail);
        kinds.push(kind(
            FaultKind::EtcdCrash,
            k.mean_time_between,
            &k.duration,
            targets,
            &mut fail,
        ));
    }
    if let Some(k) = &spec.etcd_leader_kill {
        kinds.push(kind(
            FaultKind::EtcdLeaderKill,
            k.mean_time_between,
            &k.duration,
            Vec::new(),
            &mut fail,
        ));
    }
    if let Some(k) = &spec.partition {
        let targets = partition_targets(&k.targets, cluster, from, &mut fail);
        let mut p = kind(
            FaultKind::Partition,
            k.mean_time_between,
            &k.duration,
            targets,
            &mut fail,
        );
        p.extra = partition_options(k, cluster, from, &mut fail);
        kinds.push(p);
    }
    let process = super::process_kinds::ProcessKindSpecs {
        component_crash: spec.component_crash.as_ref(),
        kubelet_crash: spec.kubelet_crash.as_ref(),
        kubelet_hang: spec.kubelet_hang.as_ref(),
        etcd_slow_disk: spec.etcd_slow_disk.as_ref(),
    };
    super::process_kinds::resolve(process, cluster, from, &mut fail, &mut kinds);
    network_and_workload_kinds(spec, cluster, from, &mut kinds, &mut fail);
    let etcd_kind = spec.etcd_crash.is_some() || spec.etcd_leader_kill.is_some();
    if etcd_kind && cluster.etcd_members == 1 && !allow_quorum_loss {
        fail(
            "faults",
            "with one etcd member every etcd crash loses quorum: add members or set `allowQuorumLoss: true`".into(),
        );
    }
    if kinds.is_empty() {
        fail(
            "faults",
            "name at least one fault kind: nodeCrash, etcdCrash, etcdLeaderKill, partition, componentCrash, kubeletCrash, kubeletHang, etcdSlowDisk, linkDegrade, containerCrash or imagePullFailure"
                .into(),
        );
    }
    ok.then(|| FaultProfile {
        from: SimTime(from.nanos()),
        until: SimTime(until.nanos()),
        max_concurrent,
        allow_quorum_loss,
        etcd_members: cluster.etcd_members,
        kinds,
    })
}

pub(super) fn kind(
    kind: FaultKind,
    mean: Dur,
    duration: &DurationRangeSpec,
    targets: Vec<String>,
    fail: &mut dyn FnMut(&str, String),
) -> KindProfile {
    let at = format!("faults.{}", kind.name());
    if mean.0 < MIN_MEAN_TIME_BETWEEN {
        fail(
            &format!("{at}.meanTimeBetween"),
            format!("{} is below the minimum of {MIN_MEAN_TIME_BETWEEN}", mean.0),
        );
    }
    let (min, max) = (duration.min.0, duration.max.0);
    if min.is_zero() {
        fail(
            &format!("{at}.duration.min"),
            "a fault lasts longer than zero".into(),
        );
    }
    if min > max {
        fail(
            &format!("{at}.duration"),
            format!("min ({min}) is above max ({max})"),
        );
    }
    KindProfile {
        kind,
        mean_time_between: mean.0,
        min,
        max,
        targets,
        extra: Default::default(),
    }
}

/// The partition kind's `oneWay` and `peers`.
fn partition_options(
    k: &PartitionSpec,
    cluster: &Cluster<'_>,
    from: SimDuration,
    fail: &mut dyn FnMut(&str, String),
) -> super::network_workload::KindExtra {
    let one_way = k.one_way.unwrap_or(false);
    let peers = match &k.peers {
        Some(p) => named_targets(p, "faults.partition.peers", cluster, from, fail),
        None => Vec::new(),
    };
    super::network_workload::KindExtra::Partition { one_way, peers }
}

/// `profile` with the detail its kind's faults carry.
fn with_extra(mut profile: KindProfile, extra: super::network_workload::KindExtra) -> KindProfile {
    profile.extra = extra;
    profile
}

/// `linkDegrade`, `containerCrash` and `imagePullFailure`, resolved in
/// [`super::network_workload`], appended in [`FaultKind`] order.
fn network_and_workload_kinds(
    spec: &FaultsSpec,
    cluster: &Cluster<'_>,
    from: SimDuration,
    kinds: &mut Vec<KindProfile>,
    fail: &mut dyn FnMut(&str, String),
) {
    use super::network_workload as nw;
    if let Some(k) = &spec.link_degrade {
        let (targets, extra) = nw::link_degrade(k, fail, |t, path, fail| {
            named_targets(t, path, cluster, from, fail)
        });
        kinds.push(with_extra(
            kind(
                FaultKind::LinkDegrade,
                k.mean_time_between,
                &k.duration,
                targets,
                fail,
            ),
            extra,
        ));
    }
    if let Some(k) = &spec.container_crash {
        let (targets, extra) = nw::container_crash(k, cluster, fail);
        kinds.push(with_extra(
            kind(
                FaultKind::ContainerCrash,
                k.mean_time_between,
                &k.duration,
                targets,
                fail,
            ),
            extra,
        ));
    }
    if let Some(k) = &spec.image_pull_failure {
        let (targets, extra) = nw::image_pull_failure(
            k,
            |pools, path, fail| pool_nodes(pools, path, cluster, from, fail),
            fail,
        );
        kinds.push(with_extra(
            kind(
                FaultKind::ImagePullFailure,
                k.mean_time_between,
                &k.duration,
                targets,
                fail,
            ),
            extra,
        ));
    }
}

/// Every node of the named pools. A pool that joins after the window
/// opens is refused: restarting a node that never booted would make it
/// join early.
pub(super) fn pool_nodes(
    pools: &[String],
    path: &str,
    cluster: &Cluster<'_>,
    from: SimDuration,
    fail: &mut dyn FnMut(&str, String),
) -> Vec<String> {
    if pools.is_empty() {
        fail(path, "name at least one node pool".into());
    }
    let mut out = Vec::new();
    for (i, pool) in pools.iter().enumerate() {
        let nodes: Vec<&NodePlan> = cluster.nodes.iter().filter(|n| &n.pool == pool).collect();
        if nodes.is_empty() {
            fail(
                &format!("{path}[{i}]"),
                unknown("node pool", pool, &pool_names(cluster)),
            );
            continue;
        }
        if nodes
            .iter()
            .any(|n| n.join_at.is_some_and(|t| t.nanos() > from.nanos()))
        {
            fail(
                &format!("{path}[{i}]"),
                format!("pool `{pool}` joins after the fault window opens; start the window after its joinAt"),
            );
        }
        out.extend(nodes.iter().map(|n| n.name.clone()));
    }
    out
}

fn etcd_targets(
    members: Option<&[String]>,
    cluster: &Cluster<'_>,
    fail: &mut dyn FnMut(&str, String),
) -> Vec<String> {
    let all: Vec<String> = (0..cluster.etcd_members)
        .map(|i| format!("etcd-{i}"))
        .collect();
    let Some(members) = members else { return all };
    if members.is_empty() {
        fail(
            "faults.etcdCrash.members",
            "name at least one member, or leave the field out for all".into(),
        );
    }
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    for (i, m) in members.iter().enumerate() {
        if !all.contains(m) {
            fail(
                &format!("faults.etcdCrash.members[{i}]"),
                unknown("etcd member", m, &names),
            );
        }
    }
    members.to_vec()
}

fn partition_targets(
    targets: &[String],
    cluster: &Cluster<'_>,
    from: SimDuration,
    fail: &mut dyn FnMut(&str, String),
) -> Vec<String> {
    named_targets(targets, "faults.partition.targets", cluster, from, fail)
}

/// Pools (each of their nodes), nodes, etcd members or components, at `path`.
fn named_targets(
    targets: &[String],
    path: &str,
    cluster: &Cluster<'_>,
    from: SimDuration,
    fail: &mut dyn FnMut(&str, String),
) -> Vec<String> {
    if targets.is_empty() {
        fail(
            path,
            "name at least one pool, node, etcd member or component".into(),
        );
    }
    let pools = pool_names(cluster);
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let single = cluster.nodes.iter().any(|n| &n.name == t)
            || cluster.components.contains(&t.as_str())
            || (0..cluster.etcd_members).any(|m| *t == format!("etcd-{m}"));
        if single {
            out.push(t.clone());
        } else if pools.contains(&t.as_str()) {
            let one = std::slice::from_ref(t);
            out.extend(pool_nodes(
                one,
                &format!("{path}[{i}]"),
                cluster,
                from,
                fail,
            ));
        } else {
            let mut known = pools.clone();
            known.extend(cluster.components.iter().copied());
            fail(
                &format!("{path}[{i}]"),
                unknown("pool, node or component", t, &known),
            );
        }
    }
    out.dedup();
    out
}

fn pool_names<'a>(cluster: &Cluster<'a>) -> Vec<&'a str> {
    let mut names: Vec<&str> = cluster.nodes.iter().map(|n| n.pool.as_str()).collect();
    names.dedup();
    names
}

pub(super) fn unknown(what: &str, name: &str, known: &[&str]) -> String {
    let hint = crate::api::yaml::closest(name, known)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    format!("unknown {what} `{name}`{hint}")
}
