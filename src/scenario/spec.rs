//! The scenario file as written: serde types decoded strictly from YAML.
//!
//! Every field is optional unless the simulation cannot guess it, and every
//! default is the upstream default (etcd's, the apiserver's, the kubelet's), so
//! a scenario states only what differs from a stock cluster. Manifests
//! (`objects`, `apply`) and merge patches are left as YAML here and decoded by
//! [`crate::api::manifest`] against the Kubernetes types, where their own
//! positions and field paths are reported.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::api::quantity::Quantity;
use crate::sim::dist::LatencySpec;
use crate::sim::time::{parse_duration, SimDuration};

/// A duration written Go-style (`100ms`, `1m30s`); never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub SimDuration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 30s, 1m30s or 250ms")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(|e| E::custom(e.0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                if v == 0 {
                    return Ok(Dur(SimDuration::ZERO));
                }
                Err(E::custom(format!(
                    "a duration needs a unit: write `{v}s` or `{v}ms`, not `{v}`"
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                self.visit_i64(v as i64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write `{v}s`, not `{v}`"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A fraction written `80%` or `0.8`, within 0..=1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fraction(pub f64);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Fraction;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a fraction such as 80% or 0.8")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Fraction, E> {
                super::objective::parse_fraction(s)
                    .map(Fraction)
                    .map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Fraction, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Fraction, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Fraction, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// A resource quantity (`4`, `500m`, `16Gi`), parsed as Kubernetes does.
#[derive(Clone, Debug, PartialEq)]
pub struct Qty(pub Quantity);

impl<'de> Deserialize<'de> for Qty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Qty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity such as 4, 500m or 16Gi")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Qty, E> {
                Quantity::parse(s)
                    .map(Qty)
                    .map_err(|e| E::custom(format!("invalid quantity `{s}`: {}", e.0)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Qty, E> {
                Ok(Qty(Quantity::from_units(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Qty, E> {
                i64::try_from(v)
                    .map(|v| Qty(Quantity::from_units(v)))
                    .map_err(|_| E::custom("quantity too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Qty, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioSpec {
    pub name: String,
    /// One or two sentences a reader sees at the top of the summary.
    pub description: Option<String>,
    pub seed: Option<u64>,
    /// Virtual time to simulate (default 10m).
    pub duration: Option<Dur>,
    /// Default trace level for this scenario (`full`, `events`, `faults`);
    /// `--trace-level` overrides it.
    pub trace_level: Option<String>,
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Manifests, or `{include: file.yaml}` entries; decoded separately.
    pub objects: Option<IgnoredAny>,
    #[serde(default)]
    pub timeline: Vec<TimelineSpec>,
    /// Offered load on workloads, for CPU metrics (the HPA's input).
    #[serde(default)]
    pub load: Vec<LoadSpec>,
    /// What "enough" means: the bar `kubesim sweep` looks for.
    pub objective: Option<ObjectiveSpec>,
    /// Faults drawn from the run's seed; see [`crate::faults::profile`].
    pub faults: Option<crate::faults::profile::FaultsSpec>,
    /// What `kubesim fuzz` checks; see [`crate::faults::checkers`].
    pub checks: Option<ChecksSpec>,
    /// How `kubesim live` runs this scenario on real containerd nodes; a
    /// simulated run ignores it.
    #[serde(default)]
    pub live: LiveSpec,
    /// Generators and trace imports; see [`crate::workload`].
    pub workload: Option<crate::workload::spec::WorkloadSpec>,
}

/// What runs in place of a manifest's image: a local image's name, or one
/// with the program that stands for the image's own entrypoint (run when
/// the container names no `command` or `args`): `{image: busybox, command:
/// [httpd, -f, -p, "80"]}` for a web server image.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LiveImageSpec {
    Name(String),
    #[serde(rename_all = "camelCase")]
    With {
        image: String,
        #[serde(default)]
        command: Vec<String>,
    },
}

impl LiveImageSpec {
    /// The local image's name.
    pub fn image(&self) -> &str {
        match self {
            LiveImageSpec::Name(n) | LiveImageSpec::With { image: n, .. } => n,
        }
    }

    /// The program that stands for the image's entrypoint, if given.
    pub fn command(&self) -> &[String] {
        match self {
            LiveImageSpec::Name(_) => &[],
            LiveImageSpec::With { command, .. } => command,
        }
    }
}

/// `live:`: the real nodes of `kubesim live` (see [`crate::live`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSpec {
    /// Manifest image → the local image that runs in its place (built from
    /// Debian's busybox-static, or by `kubesim live image build`); there is
    /// no registry.
    #[serde(default)]
    pub images: BTreeMap<String, LiveImageSpec>,
    /// Node → the socket of a containerd already running for it; kubesim
    /// starts its own containerd for every node not named here.
    #[serde(default)]
    pub sockets: BTreeMap<String, String>,
}

/// `checks:`: how the invariant checkers judge a run.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChecksSpec {
    /// How long after the last fault heals the cluster has to converge
    /// (default 10m).
    pub liveness: Option<Dur>,
}

/// `objective:`: every clause optional; see [`crate::scenario::objective`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveSpec {
    pub max_pending_pods: Option<u64>,
    pub max_pending_pod_seconds: Option<f64>,
    pub max_pod_wait: Option<Dur>,
    pub pod_startup_p99: Option<Dur>,
    pub max_cpu_requested: Option<Fraction>,
    pub max_cost: Option<f64>,
    /// `kubesim sweep --seeds N`: the share of seeds that must meet it.
    pub seed_share: Option<Fraction>,
}

/// Requests per second on a workload over time, and what they cost.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSpec {
    pub target: LoadTargetSpec,
    /// CPU a ready pod uses with no traffic (default 0).
    pub idle_cpu: Option<Qty>,
    /// CPU per request per second (`2m`).
    pub cpu_per_request: Qty,
    /// Steps: from `at`, this many requests per second.
    pub requests_per_second: Vec<LoadStepSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadTargetSpec {
    /// Default `Deployment`.
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadStepSpec {
    pub at: Dur,
    pub value: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    #[serde(default)]
    pub etcd: EtcdSpec,
    #[serde(default)]
    pub apiserver: ApiServerSpec,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub kubelet: KubeletSpec,
    #[serde(default)]
    pub scheduler: SchedulerSpec,
    #[serde(default)]
    pub controller_manager: ControllerManagerSpec,
    /// The client the timeline plays through (`kubectl`).
    #[serde(default)]
    pub kubectl: KubectlSpec,
    /// Image sizes by reference, for pull times (`nginx:1.27: 70Mi`).
    #[serde(default)]
    pub images: BTreeMap<String, Qty>,
    #[serde(default)]
    pub node_pools: Vec<NodePoolSpec>,
    /// The cluster autoscaler's flags; it runs when a pool has `autoscaling`.
    pub autoscaler: Option<AutoscalerSpec>,
}

/// `cluster.autoscaler`: cluster-autoscaler's flags, by their names;
/// every one defaults to upstream's.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerSpec {
    pub scan_interval: Option<Dur>,
    pub scale_down_enabled: Option<bool>,
    pub scale_down_delay_after_add: Option<Dur>,
    pub scale_down_delay_after_delete: Option<Dur>,
    pub scale_down_delay_after_failure: Option<Dur>,
    pub scale_down_unneeded_time: Option<Dur>,
    pub scale_down_unready_time: Option<Dur>,
    pub scale_down_utilization_threshold: Option<f64>,
    pub max_node_provision_time: Option<Dur>,
    pub max_graceful_termination_sec: Option<u32>,
    pub max_scale_down_parallelism: Option<u32>,
    pub max_drain_parallelism: Option<u32>,
    pub max_nodes_total: Option<u32>,
    pub skip_nodes_with_system_pods: Option<bool>,
    pub skip_nodes_with_local_storage: Option<bool>,
    /// `random`, `least-waste` (the default), `most-pods` or `priority`.
    pub expander: Option<String>,
}

/// `nodePools[].autoscaling`: the pool is a node group the cluster
/// autoscaler sizes between `minSize` and `maxSize` (its `count` is the
/// size it starts at, `minSize` if not given).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    #[serde(default)]
    pub min_size: u32,
    pub max_size: u32,
    /// From the cloud's IncreaseSize to the kubelet starting (a kubesim
    /// default of log-normal p50 90 s, p99 4 min when not given).
    pub provisioning_delay: Option<LatencySpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdSpec {
    /// 1, 3 or 5 (default 3).
    pub members: Option<u32>,
    /// `--heartbeat-interval` (100ms).
    pub heartbeat_interval: Option<Dur>,
    /// `--election-timeout` (1s); a whole number of heartbeats.
    pub election_timeout: Option<Dur>,
    pub wal_fsync: Option<LatencySpec>,
    pub pre_vote: Option<bool>,
    pub check_quorum: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerSpec {
    /// `--max-requests-inflight` (400).
    pub max_requests_inflight: Option<u32>,
    /// `--max-mutating-requests-inflight` (200).
    pub max_mutating_requests_inflight: Option<u32>,
    /// Handling time per request, excluding etcd.
    pub request_latency: Option<LatencySpec>,
    /// How far back a watch may resume (75s).
    pub watch_cache_history: Option<Dur>,
    /// Bookmark period (60s).
    pub bookmark_interval: Option<Dur>,
    /// `--etcd-compaction-interval` (5m; 0 disables compaction).
    pub etcd_compaction_interval: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// One-way latency of every link (default log-normal, p50 100µs, p99 500µs).
    pub latency: Option<LatencySpec>,
    /// Probability that one segment is lost and retransmitted (default 0):
    /// TCP repairs it after a retransmission timeout; nothing is dropped.
    pub loss: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletSpec {
    /// `nodeLeaseDurationSeconds` (40); the lease is renewed every quarter of it.
    pub node_lease_duration_seconds: Option<u32>,
    /// `nodeStatusUpdateFrequency` (10s).
    pub node_status_update_frequency: Option<Dur>,
    /// `nodeStatusReportFrequency` (5m).
    pub node_status_report_frequency: Option<Dur>,
    pub sandbox_create_latency: Option<LatencySpec>,
    pub container_start_latency: Option<LatencySpec>,
    pub container_stop_latency: Option<LatencySpec>,
    pub image_pull_overhead: Option<LatencySpec>,
    /// Bytes per second (`50Mi`).
    pub image_pull_bandwidth: Option<Qty>,
    /// Size of an image not listed in `cluster.images` (`50Mi`).
    pub default_image_size: Option<Qty>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerSpec {
    /// Run kube-scheduler (default true).
    pub enabled: Option<bool>,
    /// Fixed cost of one scheduling cycle (200us).
    pub cycle_latency: Option<Dur>,
    /// Cost per node evaluated in a cycle (2.5us).
    pub per_node_latency: Option<Dur>,
    /// A KubeSchedulerConfiguration, inline or `{include: file}`; decoded
    /// by the loader.
    pub config: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerManagerSpec {
    /// Run kube-controller-manager (default true).
    pub enabled: Option<bool>,
    /// `--node-monitor-period` (5s).
    pub node_monitor_period: Option<Dur>,
    /// `--node-monitor-grace-period` (50s since v1.32; 40s before).
    pub node_monitor_grace_period: Option<Dur>,
    /// `--node-startup-grace-period` (60s).
    pub node_startup_grace_period: Option<Dur>,
    /// `--kube-api-qps` (20) and `--kube-api-burst` (30), per controller.
    pub kube_api_qps: Option<f64>,
    pub kube_api_burst: Option<u32>,
    /// `--terminated-pod-gc-threshold` (12500; 0 keeps every terminated pod).
    pub terminated_pod_gc_threshold: Option<i64>,
}

/// The timeline driver's client-side rate limit: kubectl's own (QPS 50,
/// burst 300) unless a planner's tooling applies faster (a CI job or a
/// GitOps controller with its own client settings).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubectlSpec {
    pub qps: Option<f64>,
    pub burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    pub name: String,
    /// The pool's size; for an autoscaled pool, its size at the start.
    pub count: Option<u32>,
    pub autoscaling: Option<AutoscalingSpec>,
    pub capacity: BTreeMap<String, Qty>,
    /// Defaults to `capacity`.
    pub allocatable: Option<BTreeMap<String, Qty>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<TaintSpec>,
    /// `topology.kubernetes.io/zone` for every node of the pool…
    pub zone: Option<String>,
    /// …or spread round-robin across these.
    pub zones: Option<Vec<String>>,
    /// Images already on the nodes' disks.
    #[serde(default)]
    pub preloaded_images: Vec<String>,
    /// The pool's nodes are off until then, when their kubelets start and
    /// register (a node added mid-run); absent means from the start.
    pub join_at: Option<Dur>,
    /// What one node costs an hour (any currency), for the run's cost:
    /// billed from the node's registration until its deletion.
    pub price_per_hour: Option<f64>,
    /// DRA drivers on every node of the pool, each publishing the node's
    /// devices as a ResourceSlice.
    #[serde(default)]
    pub devices: Vec<DeviceDriverSpec>,
}

/// `nodePools[].devices[]`: `count` identical devices of one driver.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceDriverSpec {
    pub driver: String,
    pub count: u32,
    /// As in a ResourceSlice: `model: {string: T4}`, `cores: {int: 8}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, DeviceAttributeSpec>,
    #[serde(default)]
    pub capacity: BTreeMap<String, Qty>,
    /// How long `NodePrepareResources` takes (default 20 ms).
    pub prepare: Option<Dur>,
}

/// A ResourceSlice's `DeviceAttribute`: exactly one of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceAttributeSpec {
    pub bool: Option<bool>,
    pub int: Option<i64>,
    pub string: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaintSpec {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: String,
}

/// One timeline entry: `at` plus exactly one action (or only a `note`).
/// Every action but the string-valued ones is boxed: a timeline holds one
/// of these per entry while it loads, and 150,000 entries of the unboxed
/// struct (1,352 bytes each) were 200 MB of `None`s.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineSpec {
    pub at: Dur,
    /// Narration recorded in the trace at that instant.
    pub note: Option<String>,
    /// A manifest, or `{include: file.yaml}`; decoded separately.
    pub apply: Option<IgnoredAny>,
    pub delete: Option<Box<ObjectRefSpec>>,
    pub scale: Option<Box<ScaleSpec>>,
    pub patch: Option<Box<PatchSpec>>,
    /// `kubectl set image`.
    pub set_image: Option<Box<SetImageSpec>>,
    /// `kubectl rollout undo|pause|resume|restart`.
    pub rollout: Option<Box<RolloutSpec>>,
    /// `kubectl cordon` / `uncordon` a node by name.
    pub cordon: Option<String>,
    pub uncordon: Option<String>,
    /// `kubectl drain`.
    pub drain: Option<Box<DrainSpec>>,
    pub crash_node: Option<String>,
    pub restart_node: Option<String>,
    /// `etcd-0`…, or `leader` for whichever member leads at that instant.
    pub crash_etcd: Option<String>,
    /// `etcd-0`…, or `crashed` for every member that is down.
    pub restart_etcd: Option<String>,
    /// Component names to cut off from everyone else.
    pub partition: Option<Vec<String>>,
    /// Heal every partition.
    pub heal: Option<bool>,
    /// `kube-apiserver`, `kube-scheduler` or `kube-controller-manager`:
    /// its process exits ...
    pub crash_component: Option<String>,
    /// ... and a new one starts.
    pub restart_component: Option<String>,
    /// A node's kubelet process exits; its containers keep running.
    pub crash_kubelet: Option<String>,
    /// A new kubelet process starts and adopts them.
    pub restart_kubelet: Option<String>,
    /// A node's kubelet process stops handling anything ...
    pub hang_kubelet: Option<String>,
    /// ... and goes on.
    pub resume_kubelet: Option<String>,
    /// An etcd member's disk stalls: `{member: etcd-1, fsync: 800ms}`.
    pub slow_disk: Option<Box<SlowDiskSpec>>,
    /// The member's disk is back to its usual speed.
    pub heal_disk: Option<String>,
    /// What `from` sends to `to` (everyone else when absent) is lost.
    pub partition_one_way: Option<Box<OneWaySpec>>,
    /// Groups of components cut from each other: `[[a, b], [c]]`.
    pub partition_between: Option<Vec<Vec<String>>>,
    /// Extra delay and loss on the links of some components.
    pub degrade_links: Option<Box<DegradeLinksSpec>>,
    /// Components whose degraded links are restored.
    pub restore_links: Option<Vec<String>>,
    /// A running pod's container exits with a code.
    pub crash_container: Option<Box<CrashContainerSpec>>,
    /// Pulls of an image (or every image), on some nodes (or all), fail.
    pub fail_image_pulls: Option<Box<ImagePullsSpec>>,
    /// Ends the `failImagePulls` with the same image and nodes.
    pub restore_image_pulls: Option<Box<ImagePullsSpec>>,
}

/// `partitionOneWay:`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OneWaySpec {
    pub from: Vec<String>,
    pub to: Option<Vec<String>>,
}

/// `degradeLinks:`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DegradeLinksSpec {
    pub targets: Vec<String>,
    /// Only the links to these; every link of the targets when absent.
    pub peers: Option<Vec<String>>,
    /// Added to every segment's latency (default 0).
    pub extra_latency: Option<Dur>,
    /// Probability that a segment is lost and retransmitted (default 0).
    pub loss: Option<f64>,
}

/// `crashContainer:`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrashContainerSpec {
    /// Default `Deployment`.
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    /// Which running pod, in name order, modulo their count (default 0).
    pub pod: Option<u32>,
    /// Default: the first app container.
    pub container: Option<String>,
    /// Default 1.
    pub exit_code: Option<i32>,
}

/// `failImagePulls:` / `restoreImagePulls:`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullsSpec {
    /// Every image when absent.
    pub image: Option<String>,
    /// Every node when absent.
    pub nodes: Option<Vec<String>>,
}

/// `slowDisk:`: every WAL fsync of `member` takes at least `fsync`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowDiskSpec {
    pub member: String,
    pub fsync: Dur,
}

/// `kubectl drain NODE` and its flags (kubectl's defaults when absent).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainSpec {
    pub node: String,
    #[serde(default)]
    pub ignore_daemon_sets: bool,
    #[serde(default)]
    pub delete_empty_dir_data: bool,
    #[serde(default)]
    pub force: bool,
    pub grace_period_seconds: Option<i64>,
    pub timeout: Option<Dur>,
    #[serde(default)]
    pub disable_eviction: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRefSpec {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// `--grace-period`; absent means the object's own.
    pub grace_period_seconds: Option<i64>,
    /// `--cascade`: `background` (default), `foreground` or `orphan`.
    pub cascade: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSpec {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub replicas: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchSpec {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// A JSON merge patch; decoded separately.
    pub patch: IgnoredAny,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetImageSpec {
    /// Default `Deployment`.
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub container: String,
    pub image: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// `undo`, `pause`, `resume` or `restart`.
    pub action: String,
    /// Default `Deployment`.
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    /// `undo --to-revision`; absent means the previous revision.
    pub to_revision: Option<i64>,
}
