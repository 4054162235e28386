//! Scenarios: a YAML file describing a cluster, the objects in it and a
//! timeline of actions, loaded strictly ([`load`]), wired into an engine
//! ([`build`]) and played by a kubectl-like driver component ([`driver`]).

pub mod build;
pub mod component_faults;
pub mod drain;
pub mod driver;
pub mod leader_wait;
pub mod load;
pub mod network_faults;
pub mod objective;
pub mod recommend;
pub mod run;
pub mod sources;
pub mod spec;
pub mod sweep;
pub mod validate;
pub mod workload_faults;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::api::manifest::FieldReport;
use crate::api::node::NodeBody;
use crate::api::{Kind, Object};
use crate::model::apiserver::ApiServerConfig;
use crate::model::etcd::EtcdConfig;
use crate::model::kubelet::KubeletConfig;
use crate::model::network::LinkModel;
use crate::scheduler::component::SchedulerConfig;
use crate::sim::{SimDuration, SimTime, TraceLevel};

pub use build::{build, Layout};
pub use load::{load_file, load_str};

/// Namespaces every cluster starts with.
pub const BUILTIN_NAMESPACES: [&str; 4] =
    ["default", "kube-node-lease", "kube-public", "kube-system"];

/// A loaded scenario, every default filled in.
#[derive(Debug)]
pub struct Scenario {
    pub file: String,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub duration: SimDuration,
    pub trace_level: TraceLevel,
    pub etcd_members: u32,
    pub etcd: EtcdConfig,
    pub apiserver: ApiServerConfig,
    pub link: LinkModel,
    pub kubelet: Arc<KubeletConfig>,
    /// `None` when the scenario runs without a scheduler.
    pub scheduler: Option<SchedulerConfig>,
    /// `None` when the scenario runs without kube-controller-manager.
    pub controller_manager: Option<crate::controllers::ControllerManagerConfig>,
    /// The timeline driver's client rate limit (`cluster.kubectl`).
    pub kubectl: crate::model::client::RateLimit,
    pub nodes: Vec<NodePlan>,
    /// Applied by the driver at time zero, namespaces first.
    pub objects: Vec<Object>,
    pub timeline: Vec<Step>,
    /// Conversions made and fields accepted but not simulated.
    pub report: FieldReport,
    /// Things that will not go as the author may expect, but are not errors.
    pub warnings: Vec<String>,
    /// What the run should achieve (for sweeps).
    pub objective: objective::Objective,
    /// Faults to draw from the run's seed (`faults:`), merged into the
    /// timeline the driver plays ([`crate::faults::timeline`]).
    pub faults: Option<crate::faults::FaultProfile>,
    /// How long after the last fault heals the liveness checkers wait
    /// (`checks.liveness`, default 10 minutes).
    pub liveness_bound: SimDuration,
    /// `live:`: what `kubesim live` needs beyond the simulation.
    pub live: spec::LiveSpec,
    /// `workload:`: generators and imported traces, submitted during the
    /// run by [`crate::workload::submitter`]; `None` when there are none.
    pub workload: Option<Arc<crate::workload::Workload>>,
    /// The cluster autoscaler and its node groups, when a pool autoscales.
    pub autoscaling: Option<Arc<crate::autoscaler::Autoscaling>>,
}

impl Scenario {
    /// Whether the run needs DRA's informers and controller: a pool with
    /// devices, or a DRA object or a pod with claims anywhere. A scenario
    /// without keeps its requests, and its digest, as before DRA.
    pub fn uses_dra(&self) -> bool {
        let applied = self.timeline.iter().flat_map(|s| match &s.action {
            Some(Action::Apply(objs)) => objs.as_slice(),
            _ => &[],
        });
        self.nodes.iter().any(|n| !n.drivers.is_empty())
            || self.objects.iter().any(crate::dra::involves_dra)
            || applied.into_iter().any(|o| crate::dra::involves_dra(o))
    }
}

/// The liveness bound when a scenario does not set one.
pub const DEFAULT_LIVENESS_BOUND: SimDuration = SimDuration::from_secs(600);

/// One node to start: its name, pool, labels and the Node its kubelet registers.
#[derive(Clone, Debug)]
pub struct NodePlan {
    pub name: String,
    pub pool: String,
    pub labels: BTreeMap<String, String>,
    pub body: NodeBody,
    /// When its kubelet first starts, if not at the beginning.
    pub join_at: Option<SimTime>,
    /// Its pool's `pricePerHour` (0 when not given).
    pub price_per_hour: f64,
    /// A slot of an autoscaled group whose machine does not exist yet: its
    /// kubelet starts when the cloud provider boots it.
    pub standby: bool,
    /// Its pool's DRA drivers (`nodePools[].devices`).
    pub drivers: Arc<Vec<crate::dra::driver::DriverSpec>>,
}

/// One timeline entry.
#[derive(Clone, Debug)]
pub struct Step {
    pub at: SimTime,
    pub note: Option<String>,
    pub action: Option<Action>,
    /// Line of the entry in the scenario file, for the narrated timeline.
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdTarget {
    /// Whichever member leads at that instant.
    Leader,
    Member(u32),
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Create each object, or merge it into the existing one (`kubectl apply`).
    Apply(Vec<Arc<Object>>),
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        grace_seconds: Option<i64>,
        /// `propagationPolicy` from `--cascade`.
        propagation: Option<&'static str>,
    },
    Scale {
        kind: Kind,
        namespace: String,
        name: String,
        replicas: u32,
    },
    Patch {
        kind: Kind,
        namespace: String,
        name: String,
        patch: Json,
    },
    /// `kubectl set image`: GET, then a patch of the container's image.
    SetImage {
        kind: Kind,
        namespace: String,
        name: String,
        container: String,
        image: String,
    },
    /// `kubectl rollout …` on a Deployment.
    Rollout {
        op: RolloutOp,
        namespace: String,
        name: String,
        to_revision: Option<i64>,
    },
    /// A node of a pool with `joinAt` boots and registers.
    JoinNode(String),
    /// `kubectl cordon` (true) or `uncordon` (false).
    Cordon(String, bool),
    /// `kubectl drain`.
    Drain(drain::DrainOptions),
    CrashNode(String),
    RestartNode(String),
    CrashEtcd(EtcdTarget),
    /// `None`: every member that is down.
    RestartEtcd(Option<u32>),
    Partition(Vec<String>),
    Heal,
    /// A control-plane process (`kube-apiserver`, `kube-scheduler`,
    /// `kube-controller-manager`) exits; see [`component_faults`].
    CrashComponent(String),
    RestartComponent(String),
    /// A node's kubelet process exits; its containers keep running.
    CrashKubelet(String),
    /// A new kubelet process starts and adopts the running containers.
    RestartKubelet(String),
    /// A node's kubelet process stops handling anything (hangs) ...
    HangKubelet(String),
    /// ... and goes on.
    ResumeKubelet(String),
    /// etcd member `member`'s disk stalls: each WAL fsync takes `fsync`.
    SlowDisk {
        member: u32,
        fsync: SimDuration,
    },
    /// The member's disk is back to its usual speed.
    HealDisk(u32),
    /// What `from` sends to `to` (every other component when empty) is
    /// lost; the other way still carries ([`crate::model::network::one_way`]).
    PartitionOneWay {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// Every pair of components in two different groups is cut, both ways.
    PartitionBetween(Vec<Vec<String>>),
    /// The links of some components get extra delay and loss.
    DegradeLinks(network_faults::LinkDegrade),
    /// Ends every degradation of these components.
    RestoreLinks(Vec<String>),
    /// A running pod's container exits with a code.
    CrashContainer(workload_faults::ContainerCrash),
    /// Pulls of an image (or every image), on some nodes (or all), fail.
    FailImagePulls(workload_faults::ImagePullFault),
    /// Ends the `FailImagePulls` with the same image and nodes.
    RestoreImagePulls(workload_faults::ImagePullFault),
}

impl Action {
    /// A fault or its heal: what the liveness deadline counts from.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::CrashNode(_)
                | Action::RestartNode(_)
                | Action::CrashEtcd(_)
                | Action::RestartEtcd(_)
                | Action::Partition(_)
                | Action::Heal
                | Action::CrashComponent(_)
                | Action::RestartComponent(_)
                | Action::CrashKubelet(_)
                | Action::RestartKubelet(_)
                | Action::HangKubelet(_)
                | Action::ResumeKubelet(_)
                | Action::SlowDisk { .. }
                | Action::HealDisk(_)
                | Action::PartitionOneWay { .. }
                | Action::PartitionBetween(_)
                | Action::DegradeLinks(_)
                | Action::RestoreLinks(_)
                | Action::CrashContainer(_)
                | Action::FailImagePulls(_)
                | Action::RestoreImagePulls(_)
        )
    }
}

/// When the liveness checkers look: `bound` after the last fault or heal
/// in `steps` (after time zero when there is none).
pub fn liveness_deadline(steps: &[Step], bound: SimDuration) -> SimTime {
    let last = steps
        .iter()
        .filter(|s| s.action.as_ref().is_some_and(Action::is_fault))
        .map(|s| s.at)
        .max()
        .unwrap_or(SimTime::ZERO);
    last.after(bound)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutOp {
    Undo,
    Pause,
    Resume,
    Restart,
}

impl RolloutOp {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutOp::Undo => "undo",
            RolloutOp::Pause => "pause",
            RolloutOp::Resume => "resume",
            RolloutOp::Restart => "restart",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let obj = |kind: &Kind, ns: &str, name: &str| {
            if ns.is_empty() {
                format!("{} {name}", kind.name())
            } else {
                format!("{} {ns}/{name}", kind.name())
            }
        };
        match self {
            Action::Apply(objs) => {
                let names: Vec<String> = objs
                    .iter()
                    .map(|o| obj(&o.kind, &o.meta.namespace, &o.meta.name))
                    .collect();
                write!(f, "apply {}", names.join(", "))
            }
            Action::Delete {
                kind,
                namespace,
                name,
                ..
            } => write!(f, "delete {}", obj(kind, namespace, name)),
            Action::Scale {
                kind,
                namespace,
                name,
                replicas,
            } => write!(f, "scale {} to {replicas}", obj(kind, namespace, name)),
            Action::Patch {
                kind,
                namespace,
                name,
                patch,
            } => write!(f, "patch {} with {patch}", obj(kind, namespace, name)),
            Action::SetImage {
                kind,
                namespace,
                name,
                container,
                image,
            } => write!(
                f,
                "set image {} {container}={image}",
                obj(kind, namespace, name)
            ),
            Action::Rollout {
                op,
                namespace,
                name,
                to_revision,
            } => {
                write!(
                    f,
                    "rollout {} {}",
                    op.as_str(),
                    obj(&Kind::Deployment, namespace, name)
                )?;
                match to_revision {
                    Some(r) => write!(f, " --to-revision={r}"),
                    None => Ok(()),
                }
            }
            Action::Cordon(n, true) => write!(f, "cordon node {n}"),
            Action::Cordon(n, false) => write!(f, "uncordon node {n}"),
            Action::Drain(opts) => write!(f, "{opts}"),
            Action::JoinNode(n) => write!(f, "node {n} joins"),
            Action::CrashNode(n) => write!(f, "crash node {n}"),
            Action::RestartNode(n) => write!(f, "restart node {n}"),
            Action::CrashEtcd(EtcdTarget::Leader) => f.write_str("crash the etcd leader"),
            Action::CrashEtcd(EtcdTarget::Member(i)) => write!(f, "crash etcd-{i}"),
            Action::RestartEtcd(Some(i)) => write!(f, "restart etcd-{i}"),
            Action::RestartEtcd(None) => f.write_str("restart every crashed etcd member"),
            Action::Partition(names) => write!(f, "partition {} from the rest", names.join(", ")),
            Action::Heal => f.write_str("heal all partitions"),
            Action::CrashComponent(c) => write!(f, "crash {c}"),
            Action::RestartComponent(c) => write!(f, "restart {c}"),
            Action::CrashKubelet(n) => write!(f, "crash the kubelet on {n}"),
            Action::RestartKubelet(n) => write!(f, "restart the kubelet on {n}"),
            Action::HangKubelet(n) => write!(f, "hang the kubelet on {n}"),
            Action::ResumeKubelet(n) => write!(f, "resume the kubelet on {n}"),
            Action::SlowDisk { member, fsync } => {
                write!(f, "slow etcd-{member}'s disk: fsync takes {fsync}")
            }
            Action::HealDisk(m) => write!(f, "heal etcd-{m}'s disk"),
            Action::PartitionOneWay { from, to } if to.is_empty() => {
                write!(f, "cut what {} sends to the rest", from.join(", "))
            }
            Action::PartitionOneWay { from, to } => {
                write!(f, "cut what {} sends to {}", from.join(", "), to.join(", "))
            }
            Action::PartitionBetween(groups) => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| format!("[{}]", g.join(", ")))
                    .collect();
                write!(f, "partition {}", groups.join(" from "))
            }
            Action::DegradeLinks(d) => write!(f, "{d}"),
            Action::RestoreLinks(names) => write!(f, "restore the links of {}", names.join(", ")),
            Action::CrashContainer(c) => write!(f, "{c}"),
            Action::FailImagePulls(p) => write!(f, "fail pulls of {p}"),
            Action::RestoreImagePulls(p) => write!(f, "restore pulls of {p}"),
        }
    }
}
