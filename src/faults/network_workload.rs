//! The network and workload fault kinds of `faults:`: `linkDegrade`,
//! `containerCrash`, `imagePullFailure`, and the `partition` kind's
//! `oneWay` and `peers` options. Each kind draws on its own stream like
//! the others ([`super::schedule`]); this file resolves their settings,
//! decides what a candidate takes given what is active, and turns a drawn
//! fault into the same timeline actions a person would write.

use serde::Deserialize;

use super::profile::{Cluster, DurationRangeSpec, FaultKind, KindProfile};
use super::schedule::{pick_one, DrawnFault};
use crate::api::{Kind, Object};
use crate::scenario::network_faults::LinkDegrade;
use crate::scenario::spec::Dur;
use crate::scenario::workload_faults::{pod_selector, ContainerCrash, ImagePullFault};
use crate::scenario::Action;
use crate::sim::SimDuration;

/// `linkDegrade:`: a target's links get extra delay and loss.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDegradeSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    /// Nodes, node pools, etcd members or control-plane components.
    pub targets: Vec<String>,
    /// Only the target's links to these (default: all its links).
    pub peers: Option<Vec<String>>,
    pub extra_latency: Option<Dur>,
    pub loss: Option<f64>,
}

/// `containerCrash:`: a running pod of one of the workloads crashes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCrashSpec {
    pub mean_time_between: Dur,
    /// How long the workload counts as busy (no second crash drawn on it).
    pub duration: DurationRangeSpec,
    pub workloads: Vec<WorkloadRefSpec>,
    /// Default 1.
    pub exit_code: Option<i32>,
}

/// A workload named by kind (default `Deployment`), name and namespace:
/// the same reference a load profile's `target` is.
pub type WorkloadRefSpec = crate::scenario::spec::LoadTargetSpec;

/// `imagePullFailure:`: pulls of one of the images fail for a while.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullFailureSpec {
    pub mean_time_between: Dur,
    pub duration: DurationRangeSpec,
    /// Default: one outage of every image.
    pub images: Option<Vec<String>>,
    /// Node pools whose pulls fail (default: every node).
    pub pools: Option<Vec<String>>,
}

/// What a kind's faults share beyond their targets.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum KindExtra {
    #[default]
    None,
    Partition {
        one_way: bool,
        peers: Vec<String>,
    },
    LinkDegrade {
        peers: Vec<String>,
        extra_latency: SimDuration,
        loss: f64,
    },
    /// Per target (in `targets` order): the workload, and how many pods it
    /// asks for (the range of the drawn pod index).
    ContainerCrash {
        workloads: Vec<(ContainerCrash, u32)>,
    },
    ImagePull {
        nodes: Vec<String>,
    },
}

/// What one drawn fault of these kinds carries beyond kind and target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FaultDetail {
    #[default]
    None,
    /// A partition of the target: one way (its sends) or both, from
    /// `peers` (everyone else when empty).
    Partition {
        one_way: bool,
        peers: Vec<String>,
    },
    LinkDegrade {
        peers: Vec<String>,
        extra_latency: SimDuration,
        /// The loss probability's bits (exact, and `Eq`).
        loss_bits: u64,
    },
    ContainerCrash(ContainerCrash),
    ImagePull {
        nodes: Vec<String>,
    },
}

/// Whether `kind` is one of this file's (the schedule asks it).
pub fn owns(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::LinkDegrade | FaultKind::ContainerCrash | FaultKind::ImagePullFailure
    )
}

/// The detail a partition of `target` carries: none for the plain
/// symmetric cut from everyone. A target among the `peers` is cut from
/// the others (as `linkDegrade` leaves a target out of its own peers), so
/// `targets: [a, b]` with `peers: [a, b]` cuts either direction between
/// them; `None` when the target is its only peer (nothing to cut from).
pub fn partition_detail(kind: &KindProfile, target: &str) -> Option<FaultDetail> {
    Some(match &kind.extra {
        KindExtra::Partition { one_way, peers } if *one_way || !peers.is_empty() => {
            let others: Vec<String> = peers.iter().filter(|p| *p != target).cloned().collect();
            if others.is_empty() && !peers.is_empty() {
                return None;
            }
            FaultDetail::Partition {
                one_way: *one_way,
                peers: others,
            }
        }
        _ => FaultDetail::None,
    })
}

/// The target and detail a candidate of one of this file's kinds takes,
/// given the faults `active`: a target with an active fault of the same
/// kind is busy (its heal would end both).
pub fn accept(
    kind: &KindProfile,
    active: &[DrawnFault],
    pick: u64,
) -> Option<(String, FaultDetail)> {
    let free: Vec<(usize, &String)> = kind
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            !active
                .iter()
                .any(|f| f.kind == kind.kind && &f.target == *t)
        })
        .collect();
    let refs: Vec<&(usize, &String)> = free.iter().collect();
    let (i, target) = *pick_one(&refs, pick)?;
    let detail = match &kind.extra {
        KindExtra::LinkDegrade {
            peers,
            extra_latency,
            loss,
        } => FaultDetail::LinkDegrade {
            peers: peers.iter().filter(|p| *p != target).cloned().collect(),
            extra_latency: *extra_latency,
            loss_bits: loss.to_bits(),
        },
        KindExtra::ContainerCrash { workloads } => {
            let (crash, replicas) = &workloads[i];
            // The pick's low half, independent of the high bits that chose
            // the workload, scaled to the pod count.
            let pod = ((pick & 0xffff_ffff) * u64::from((*replicas).max(1))) >> 32;
            FaultDetail::ContainerCrash(ContainerCrash {
                pod: pod as u32,
                ..crash.clone()
            })
        }
        KindExtra::ImagePull { nodes } => FaultDetail::ImagePull {
            nodes: nodes.clone(),
        },
        _ => FaultDetail::None,
    };
    Some((target.clone(), detail))
}

/// The inject and heal actions of a drawn fault of these kinds (and of a
/// partition with options); the heal of a container crash is `None` (a
/// note: the crash heals itself through the kubelet's restart).
pub fn actions(f: &DrawnFault) -> Option<(Action, Option<Action>)> {
    let one = |t: &str| vec![t.to_string()];
    Some(match (&f.kind, &f.detail) {
        (
            FaultKind::Partition,
            FaultDetail::Partition {
                one_way: true,
                peers,
            },
        ) => (
            Action::PartitionOneWay {
                from: one(&f.target),
                to: peers.clone(),
            },
            Some(Action::Heal),
        ),
        (FaultKind::Partition, FaultDetail::Partition { peers, .. }) => (
            Action::PartitionBetween(vec![one(&f.target), peers.clone()]),
            Some(Action::Heal),
        ),
        (
            FaultKind::LinkDegrade,
            FaultDetail::LinkDegrade {
                peers,
                extra_latency,
                loss_bits,
            },
        ) => (
            Action::DegradeLinks(LinkDegrade {
                targets: one(&f.target),
                peers: peers.clone(),
                extra_latency: *extra_latency,
                loss: f64::from_bits(*loss_bits),
            }),
            Some(Action::RestoreLinks(one(&f.target))),
        ),
        (FaultKind::ContainerCrash, FaultDetail::ContainerCrash(c)) => {
            (Action::CrashContainer(c.clone()), None)
        }
        (FaultKind::ImagePullFailure, FaultDetail::ImagePull { nodes }) => {
            let o = ImagePullFault {
                image: (f.target != EVERY_IMAGE).then(|| f.target.clone()),
                nodes: nodes.clone(),
            };
            (
                Action::FailImagePulls(o.clone()),
                Some(Action::RestoreImagePulls(o)),
            )
        }
        _ => return None,
    })
}

/// The target of an outage of every image.
pub const EVERY_IMAGE: &str = "*";

/// `linkDegrade:` resolved: targets as the partition kind names them.
pub fn link_degrade(
    k: &LinkDegradeSpec,
    fail: &mut dyn FnMut(&str, String),
    targets: impl Fn(&[String], &str, &mut dyn FnMut(&str, String)) -> Vec<String>,
) -> (Vec<String>, KindExtra) {
    const AT: &str = "faults.linkDegrade";
    let t = targets(&k.targets, &format!("{AT}.targets"), fail);
    let peers = match &k.peers {
        Some(p) => targets(p, &format!("{AT}.peers"), fail),
        None => Vec::new(),
    };
    let loss = k.loss.unwrap_or(0.0);
    if !(0.0..1.0).contains(&loss) {
        fail(
            &format!("{AT}.loss"),
            format!("a loss probability is at least 0 and below 1, not {loss}"),
        );
    }
    let extra_latency = k.extra_latency.map_or(SimDuration::ZERO, |d| d.0);
    if extra_latency.is_zero() && loss == 0.0 {
        fail(
            AT,
            "set extraLatency, loss or both: this degrades nothing".into(),
        );
    }
    (
        t,
        KindExtra::LinkDegrade {
            peers,
            extra_latency,
            loss,
        },
    )
}

/// `containerCrash:` resolved against the scenario's objects.
pub fn container_crash(
    k: &ContainerCrashSpec,
    cluster: &Cluster<'_>,
    fail: &mut dyn FnMut(&str, String),
) -> (Vec<String>, KindExtra) {
    const AT: &str = "faults.containerCrash";
    if k.workloads.is_empty() {
        fail(
            &format!("{AT}.workloads"),
            "name at least one workload".into(),
        );
    }
    let exit_code = k.exit_code.unwrap_or(1);
    if !(0..=255).contains(&exit_code) {
        fail(
            &format!("{AT}.exitCode"),
            format!("an exit code is 0 to 255, not {exit_code}"),
        );
    }
    let mut targets = Vec::new();
    let mut workloads = Vec::new();
    for (i, w) in k.workloads.iter().enumerate() {
        let path = format!("{AT}.workloads[{i}]");
        let Some((crash, replicas)) = workload(w, &path, cluster, exit_code, fail) else {
            continue;
        };
        targets.push(format!(
            "{}/{}/{}",
            crash.kind.name(),
            crash.namespace,
            crash.name
        ));
        workloads.push((crash, replicas));
    }
    (targets, KindExtra::ContainerCrash { workloads })
}

fn workload(
    w: &WorkloadRefSpec,
    path: &str,
    cluster: &Cluster<'_>,
    exit_code: i32,
    fail: &mut dyn FnMut(&str, String),
) -> Option<(ContainerCrash, u32)> {
    let kind_name = w.kind.as_deref().unwrap_or("Deployment");
    let Some(kind) = Kind::from_name(kind_name) else {
        fail(
            &format!("{path}.kind"),
            format!("unknown kind `{kind_name}`"),
        );
        return None;
    };
    let namespace = w.namespace.clone().unwrap_or_else(|| "default".into());
    let found: Option<&Object> = cluster
        .objects
        .iter()
        .find(|o| o.kind == kind && o.meta.namespace == namespace && o.meta.name == w.name);
    let Some(obj) = found else {
        let names: Vec<&str> = cluster
            .objects
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| o.meta.name.as_str())
            .collect();
        let hint = crate::api::yaml::closest(&w.name, &names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        fail(
            &format!("{path}.name"),
            format!(
                "no {kind_name} {namespace}/{} among the scenario's objects{hint}",
                w.name
            ),
        );
        return None;
    };
    let selector = match kind {
        Kind::Pod => None,
        _ => match pod_selector(kind, obj) {
            Some(s) => Some(s),
            None => {
                fail(
                    &format!("{path}.kind"),
                    format!("{kind_name} {namespace}/{} has no pods to crash", w.name),
                );
                return None;
            }
        },
    };
    let replicas = match kind {
        Kind::Pod => 1,
        Kind::DaemonSet => cluster.nodes.len() as u32,
        _ => crate::controllers::workload::replicas(obj).clamp(1, i64::from(u32::MAX)) as u32,
    };
    let crash = ContainerCrash {
        kind,
        namespace,
        name: w.name.clone(),
        selector,
        pod: 0,
        container: None,
        exit_code,
    };
    Some((crash, replicas))
}

/// `imagePullFailure:` resolved: targets are images (or [`EVERY_IMAGE`]).
pub fn image_pull_failure(
    k: &ImagePullFailureSpec,
    nodes_of_pools: impl Fn(&[String], &str, &mut dyn FnMut(&str, String)) -> Vec<String>,
    fail: &mut dyn FnMut(&str, String),
) -> (Vec<String>, KindExtra) {
    const AT: &str = "faults.imagePullFailure";
    let targets = match &k.images {
        None => vec![EVERY_IMAGE.to_string()],
        Some(images) => {
            if images.is_empty() {
                fail(
                    &format!("{AT}.images"),
                    "name at least one image, or leave the field out for every image".into(),
                );
            }
            for (i, im) in images.iter().enumerate() {
                if im.trim().is_empty() || im == EVERY_IMAGE {
                    fail(
                        &format!("{AT}.images[{i}]"),
                        format!("`{im}` is not an image reference"),
                    );
                }
            }
            images.clone()
        }
    };
    let nodes = match &k.pools {
        Some(pools) => nodes_of_pools(pools, &format!("{AT}.pools"), fail),
        None => Vec::new(),
    };
    (targets, KindExtra::ImagePull { nodes })
}

/// Whether [`repro_entry`] writes `a`.
pub fn owns_action(a: &Action) -> bool {
    matches!(
        a,
        Action::PartitionOneWay { .. }
            | Action::PartitionBetween(_)
            | Action::DegradeLinks(_)
            | Action::RestoreLinks(_)
            | Action::CrashContainer(_)
            | Action::FailImagePulls(_)
            | Action::RestoreImagePulls(_)
    )
}

/// `a` as the flow-mapping key and value of a repro timeline entry, which
/// the loader reads back to the same action.
pub fn repro_entry(a: &Action) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|n| q(n)).collect();
        format!("[{}]", items.join(", "))
    };
    match a {
        Action::PartitionOneWay { from, to } if to.is_empty() => {
            format!("partitionOneWay: {{from: {}}}", list(from))
        }
        Action::PartitionOneWay { from, to } => {
            format!(
                "partitionOneWay: {{from: {}, to: {}}}",
                list(from),
                list(to)
            )
        }
        Action::PartitionBetween(groups) => {
            let gs: Vec<String> = groups.iter().map(|g| list(g)).collect();
            format!("partitionBetween: [{}]", gs.join(", "))
        }
        Action::DegradeLinks(d) => {
            let mut fields = vec![format!("targets: {}", list(&d.targets))];
            if !d.peers.is_empty() {
                fields.push(format!("peers: {}", list(&d.peers)));
            }
            fields.push(format!("extraLatency: {}", duration(d.extra_latency)));
            fields.push(format!("loss: {:?}", d.loss));
            format!("degradeLinks: {{{}}}", fields.join(", "))
        }
        Action::RestoreLinks(names) => format!("restoreLinks: {}", list(names)),
        Action::CrashContainer(c) => {
            let mut fields = vec![
                format!("kind: {}", c.kind.name()),
                format!("namespace: {}", q(&c.namespace)),
                format!("name: {}", q(&c.name)),
                format!("pod: {}", c.pod),
            ];
            if let Some(container) = &c.container {
                fields.push(format!("container: {}", q(container)));
            }
            fields.push(format!("exitCode: {}", c.exit_code));
            format!("crashContainer: {{{}}}", fields.join(", "))
        }
        Action::FailImagePulls(o) | Action::RestoreImagePulls(o) => {
            let key = if matches!(a, Action::FailImagePulls(_)) {
                "failImagePulls"
            } else {
                "restoreImagePulls"
            };
            let mut fields = Vec::new();
            if let Some(i) = &o.image {
                fields.push(format!("image: {}", q(i)));
            }
            if !o.nodes.is_empty() {
                fields.push(format!("nodes: {}", list(&o.nodes)));
            }
            format!("{key}: {{{}}}", fields.join(", "))
        }
        other => unreachable!("not a network or workload fault: {other:?}"),
    }
}

/// A duration the loader parses back to exactly `d`.
fn duration(d: SimDuration) -> String {
    let shown = d.to_string();
    if crate::sim::parse_duration(&shown) == Ok(d) {
        shown
    } else {
        format!("{}ns", d.nanos())
    }
}
