//! Scheduling profiles and the KubeSchedulerConfiguration that defines them.
//!
//! A profile is the set of filter and score plugins a scheduler name runs,
//! with score weights and plugin arguments. The default profile is
//! upstream's; a `kubescheduler.config.k8s.io/v1` document replaces it,
//! merged with the defaults the way kube-scheduler merges (a plugin
//! re-enabled keeps its place with the new weight, `disabled: [{name: "*"}]`
//! drops the defaults of an extension point).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1 as core;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::framework::{default_resources, validate_resource_weights, ResourceWeight};
use super::plugins::inter_pod_affinity::DEFAULT_HARD_POD_AFFINITY_WEIGHT;
use super::plugins::node_resources_fit::ScoringStrategy;
use crate::api::manifest::{node_at, LoadError};
use crate::api::yaml::{closest, from_node, join_path, Node, Value};
use crate::model::client::{RateLimit, SCHEDULER};

/// A filter plugin kubesim runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FilterPlugin {
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    PodTopologySpread,
    InterPodAffinity,
    /// Never in a profile's list: it runs when the scheduler watches the
    /// DRA kinds (a scenario that uses DRA) and the pod has claims.
    DynamicResources,
}

/// A score plugin kubesim runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScorePlugin {
    TaintToleration,
    NodeAffinity,
    NodeResourcesFit,
    PodTopologySpread,
    InterPodAffinity,
    NodeResourcesBalancedAllocation,
    ImageLocality,
}

impl ScorePlugin {
    pub fn name(self) -> &'static str {
        match self {
            ScorePlugin::TaintToleration => "TaintToleration",
            ScorePlugin::NodeAffinity => "NodeAffinity",
            ScorePlugin::NodeResourcesFit => "NodeResourcesFit",
            ScorePlugin::PodTopologySpread => "PodTopologySpread",
            ScorePlugin::InterPodAffinity => "InterPodAffinity",
            ScorePlugin::NodeResourcesBalancedAllocation => "NodeResourcesBalancedAllocation",
            ScorePlugin::ImageLocality => "ImageLocality",
        }
    }

    /// A short column heading for tables.
    pub fn short(self) -> &'static str {
        match self {
            ScorePlugin::TaintToleration => "Taint",
            ScorePlugin::NodeAffinity => "NodeAff",
            ScorePlugin::NodeResourcesFit => "Fit",
            ScorePlugin::PodTopologySpread => "Spread",
            ScorePlugin::InterPodAffinity => "PodAff",
            ScorePlugin::NodeResourcesBalancedAllocation => "Balanced",
            ScorePlugin::ImageLocality => "Image",
        }
    }
}

/// Upstream's in-tree plugins: name, filter, score. Plugins that act on
/// things kubesim does not model in the scheduler (volumes, dynamic
/// resources) are known by name and pass every node.
const IN_TREE: &[(&str, Option<FilterPlugin>, Option<ScorePlugin>)] = &[
    ("SchedulingGates", None, None),
    ("PrioritySort", None, None),
    (
        "NodeUnschedulable",
        Some(FilterPlugin::NodeUnschedulable),
        None,
    ),
    ("NodeName", Some(FilterPlugin::NodeName), None),
    (
        "TaintToleration",
        Some(FilterPlugin::TaintToleration),
        Some(ScorePlugin::TaintToleration),
    ),
    (
        "NodeAffinity",
        Some(FilterPlugin::NodeAffinity),
        Some(ScorePlugin::NodeAffinity),
    ),
    ("NodePorts", Some(FilterPlugin::NodePorts), None),
    (
        "NodeResourcesFit",
        Some(FilterPlugin::NodeResourcesFit),
        Some(ScorePlugin::NodeResourcesFit),
    ),
    ("VolumeRestrictions", None, None),
    ("NodeVolumeLimits", None, None),
    ("EBSLimits", None, None),
    ("GCEPDLimits", None, None),
    ("AzureDiskLimits", None, None),
    ("VolumeBinding", None, None),
    ("VolumeZone", None, None),
    (
        "PodTopologySpread",
        Some(FilterPlugin::PodTopologySpread),
        Some(ScorePlugin::PodTopologySpread),
    ),
    (
        "InterPodAffinity",
        Some(FilterPlugin::InterPodAffinity),
        Some(ScorePlugin::InterPodAffinity),
    ),
    ("DefaultPreemption", None, None),
    (
        "NodeResourcesBalancedAllocation",
        None,
        Some(ScorePlugin::NodeResourcesBalancedAllocation),
    ),
    ("ImageLocality", None, Some(ScorePlugin::ImageLocality)),
    ("DefaultBinder", None, None),
    ("DynamicResources", None, None),
];

/// Plugins removed from the configuration API, with what replaced them.
const REMOVED: &[(&str, &str)] = &[
    (
        "NodeResourcesLeastAllocated",
        "use NodeResourcesFit with scoringStrategy type LeastAllocated",
    ),
    (
        "NodeResourcesMostAllocated",
        "use NodeResourcesFit with scoringStrategy type MostAllocated",
    ),
    (
        "RequestedToCapacityRatio",
        "use NodeResourcesFit with scoringStrategy type RequestedToCapacityRatio",
    ),
    (
        "SelectorSpread",
        "use PodTopologySpread (its system default constraints spread by owner)",
    ),
    ("NodePreferAvoidPods", "it was removed in v1.24"),
    ("ServiceAffinity", "use InterPodAffinity"),
    ("NodeLabel", "use NodeAffinity"),
];

/// The default profile in upstream's multi-point order, with weights.
const DEFAULT_PLUGINS: &[(&str, i32)] = &[
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// How PodTopologySpread picks constraints for pods that have none.
#[derive(Clone, Debug, PartialEq)]
pub enum SpreadDefaulting {
    /// hostname maxSkew 3 and zone maxSkew 5, ScheduleAnyway.
    System,
    /// The configured list (`defaultingType: List`): (key, maxSkew, hard).
    List(Vec<(String, i32, bool)>),
}

/// DefaultPreemption's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreemptionArgs {
    pub min_candidate_nodes_percentage: i64,
    pub min_candidate_nodes_absolute: i64,
}

impl Default for PreemptionArgs {
    fn default() -> Self {
        PreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

/// One scheduling profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    /// Filters in the order they run.
    pub filters: Vec<FilterPlugin>,
    /// Score plugins in order, with weights.
    pub scores: Vec<(ScorePlugin, i64)>,
    pub fit_strategy: ScoringStrategy,
    pub fit_resources: Vec<ResourceWeight>,
    pub balanced_resources: Vec<ResourceWeight>,
    pub spread_defaulting: SpreadDefaulting,
    pub hard_pod_affinity_weight: i64,
    pub ignore_preferred_terms_of_existing_pods: bool,
    /// NodeAffinity's `addedAffinity`, applied to every pod.
    pub added_affinity: Option<core::NodeAffinity>,
    /// 0 = the adaptive default.
    pub percentage_of_nodes_to_score: usize,
    /// `None` when DefaultPreemption is disabled.
    pub preemption: Option<PreemptionArgs>,
    /// Whether the SchedulingGates plugin holds gated pods back.
    pub scheduling_gates: bool,
}

impl Default for Profile {
    fn default() -> Self {
        let empty = PluginSetDoc::default();
        build_profile("default-scheduler", None, &empty_plugins(), &empty)
            .expect("the default profile is valid")
    }
}

impl Profile {
    pub fn weight(&self, plugin: ScorePlugin) -> Option<i64> {
        self.scores
            .iter()
            .find(|(p, _)| *p == plugin)
            .map(|(_, w)| *w)
    }
}

/// Every profile of a configuration, looked up by `schedulerName`.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfiguration {
    pub profiles: Vec<Profile>,
    /// `podInitialBackoffSeconds` and `podMaxBackoffSeconds`.
    pub initial_backoff_seconds: i64,
    pub max_backoff_seconds: i64,
    /// `clientConnection.qps` and `.burst`: the scheduler's own API client
    /// (50 and 100). At thousands of nodes they bound the bind rate: a
    /// default scheduler binds at most 50 pods a second however fast its
    /// cycles run, which is why large clusters raise them.
    pub client: RateLimit,
}

impl Default for SchedulerConfiguration {
    fn default() -> Self {
        SchedulerConfiguration {
            profiles: vec![Profile::default()],
            initial_backoff_seconds: 1,
            max_backoff_seconds: 10,
            client: SCHEDULER,
        }
    }
}

impl SchedulerConfiguration {
    pub fn profile(&self, scheduler_name: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.scheduler_name == scheduler_name)
    }
}

#[derive(Debug, Default, Deserialize, Clone)]
struct PluginDoc {
    name: String,
    weight: Option<i32>,
}

#[derive(Debug, Default, Deserialize, Clone)]
struct PluginSetDoc {
    enabled: Option<Vec<PluginDoc>>,
    disabled: Option<Vec<PluginDoc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginsDoc {
    pre_enqueue: Option<PluginSetDoc>,
    queue_sort: Option<PluginSetDoc>,
    pre_filter: Option<PluginSetDoc>,
    filter: Option<PluginSetDoc>,
    post_filter: Option<PluginSetDoc>,
    pre_score: Option<PluginSetDoc>,
    score: Option<PluginSetDoc>,
    reserve: Option<PluginSetDoc>,
    permit: Option<PluginSetDoc>,
    pre_bind: Option<PluginSetDoc>,
    bind: Option<PluginSetDoc>,
    post_bind: Option<PluginSetDoc>,
    multi_point: Option<PluginSetDoc>,
}

fn empty_plugins() -> PluginsDoc {
    PluginsDoc::default()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginConfigDoc {
    name: String,
    #[allow(dead_code)]
    args: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileDoc {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<i32>,
    plugins: Option<PluginsDoc>,
    plugin_config: Option<Vec<PluginConfigDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ConfigDoc {
    api_version: String,
    kind: String,
    percentage_of_nodes_to_score: Option<i32>,
    pod_initial_backoff_seconds: Option<i64>,
    pod_max_backoff_seconds: Option<i64>,
    profiles: Option<Vec<ProfileDoc>>,
    client_connection: Option<ClientConnectionDoc>,
    // Accepted; they tune the process, not scheduling decisions.
    parallelism: Option<IgnoredAny>,
    leader_election: Option<IgnoredAny>,
    health_z_bind_address: Option<IgnoredAny>,
    metrics_bind_address: Option<IgnoredAny>,
    enable_profiling: Option<IgnoredAny>,
    enable_contention_profiling: Option<IgnoredAny>,
    extenders: Option<IgnoredAny>,
    delay_cache_until_active: Option<IgnoredAny>,
}

/// component-base's ClientConnectionConfiguration.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ClientConnectionDoc {
    qps: Option<f64>,
    burst: Option<i64>,
    // Accepted; the modelled client has no kubeconfig or content types.
    kubeconfig: Option<IgnoredAny>,
    accept_content_types: Option<IgnoredAny>,
    content_type: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapePointDoc {
    utilization: i64,
    score: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RtcrDoc {
    shape: Vec<ShapePointDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDoc {
    name: String,
    weight: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScoringStrategyDoc {
    #[serde(rename = "type")]
    type_: Option<String>,
    resources: Option<Vec<ResourceDoc>>,
    requested_to_capacity_ratio: Option<RtcrDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct FitArgsDoc {
    api_version: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    ignored_resources: Option<IgnoredAny>,
    ignored_resource_groups: Option<IgnoredAny>,
    scoring_strategy: Option<ScoringStrategyDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct BalancedArgsDoc {
    api_version: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    resources: Option<Vec<ResourceDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SpreadArgsDoc {
    api_version: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    default_constraints: Option<Vec<core::TopologySpreadConstraint>>,
    defaulting_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct InterPodArgsDoc {
    api_version: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    hard_pod_affinity_weight: Option<i64>,
    ignore_preferred_terms_of_existing_pods: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct NodeAffinityArgsDoc {
    api_version: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    added_affinity: Option<core::NodeAffinity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PreemptionArgsDoc {
    api_version: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    min_candidate_nodes_percentage: Option<i64>,
    min_candidate_nodes_absolute: Option<i64>,
}

/// The args of one profile, decoded.
#[derive(Default)]
struct Args {
    fit: Option<FitArgsDoc>,
    balanced: Option<BalancedArgsDoc>,
    spread: Option<SpreadArgsDoc>,
    inter_pod: Option<InterPodArgsDoc>,
    node_affinity: Option<NodeAffinityArgsDoc>,
    preemption: Option<PreemptionArgsDoc>,
}

/// Collects errors with the file and the field path of a document.
struct Errors<'a> {
    file: &'a str,
    doc: &'a Node,
    /// Prefix of every path (where the document sits in a larger file).
    prefix: String,
    out: Vec<LoadError>,
}

impl Errors<'_> {
    fn at(&mut self, path: &str, message: impl Into<String>) {
        let pos = node_at(self.doc, path)
            .map(|n| n.pos)
            .or(Some(self.doc.pos));
        let field = if self.prefix.is_empty() {
            path.to_string()
        } else if path.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}.{path}", self.prefix)
        };
        self.out
            .push(LoadError::new(self.file, pos, field, message));
    }

    fn decode<'n, T: Deserialize<'n>>(&mut self, node: &'n Node, path: &str) -> Option<T> {
        let mut unknown = Vec::new();
        let r: Result<T, _> = from_node(node, &mut unknown);
        for u in unknown {
            let sub = join_path(&u.path);
            let full = if path.is_empty() {
                sub
            } else {
                format!("{path}.{sub}")
            };
            let hint = u
                .suggestion
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            let pos = Some(u.pos);
            let field = if self.prefix.is_empty() {
                full
            } else {
                format!("{}.{full}", self.prefix)
            };
            self.out.push(LoadError::new(
                self.file,
                pos,
                field,
                format!("unknown field `{}`{hint}", u.field),
            ));
        }
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let sub = e.path_string();
                let full = match (path.is_empty(), sub.is_empty()) {
                    (true, _) => sub,
                    (false, true) => path.to_string(),
                    (false, false) => format!("{path}.{sub}"),
                };
                let field = if self.prefix.is_empty() {
                    full
                } else {
                    format!("{}.{full}", self.prefix)
                };
                self.out.push(LoadError::new(
                    self.file,
                    e.pos.or(Some(node.pos)),
                    field,
                    e.message,
                ));
                None
            }
        }
    }
}

/// The scheduler's client limits, defaulted as upstream's v1 defaults do
/// (a zero `qps` or `burst` means the default) and validated as
/// component-base validates them (`burst` non-negative). A negative `qps`
/// turns client-go's limiter off; kubesim's client always has one, so it is
/// refused with the way out.
fn client_connection(errs: &mut Errors<'_>, doc: Option<&ClientConnectionDoc>) -> RateLimit {
    let mut limit = SCHEDULER;
    let Some(doc) = doc else { return limit };
    match doc.qps {
        Some(q) if q.is_nan() || q < 0.0 => errs.at(
            "clientConnection.qps",
            "a negative qps (client-go's \"no limit\") is not modelled; give a large positive qps instead",
        ),
        Some(q) if q.is_infinite() => errs.at("clientConnection.qps", "must be finite"),
        Some(q) if q > 0.0 => limit.qps = q,
        _ => {}
    }
    match doc.burst {
        Some(b) if b < 0 => errs.at("clientConnection.burst", "must be non-negative"),
        Some(b) if b > 0 => limit.burst = u32::try_from(b).unwrap_or(u32::MAX),
        _ => {}
    }
    limit
}

/// Decodes a KubeSchedulerConfiguration document (`doc`, in `file`, found
/// at `prefix` in it: empty for a document of its own).
pub fn decode_configuration(
    file: &str,
    doc: &Node,
    prefix: &str,
) -> Result<SchedulerConfiguration, Vec<LoadError>> {
    let mut errs = Errors {
        file,
        doc,
        prefix: prefix.to_string(),
        out: Vec::new(),
    };
    let api_version = doc.get("apiVersion").and_then(Node::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("");
    if kind != "KubeSchedulerConfiguration" {
        errs.at(
            "kind",
            format!("expected kind KubeSchedulerConfiguration, found `{kind}`"),
        );
        return Err(errs.out);
    }
    match api_version {
        "kubescheduler.config.k8s.io/v1" => {}
        "kubescheduler.config.k8s.io/v1beta3" => {
            // Same shape as v1 (served until v1.29); read as v1.
        }
        "kubescheduler.config.k8s.io/v1beta2"
        | "kubescheduler.config.k8s.io/v1beta1"
        | "kubescheduler.config.k8s.io/v1alpha1"
        | "kubescheduler.config.k8s.io/v1alpha2" => {
            errs.at(
                "apiVersion",
                format!("{api_version} is refused: it is no longer served and its plugin names and weights differ; rewrite it as kubescheduler.config.k8s.io/v1"),
            );
            return Err(errs.out);
        }
        other => {
            errs.at(
                "apiVersion",
                format!("`{other}` is not a KubeSchedulerConfiguration version; use kubescheduler.config.k8s.io/v1"),
            );
            return Err(errs.out);
        }
    }
    let Some(cfg) = errs.decode::<ConfigDoc>(doc, "") else {
        return Err(errs.out);
    };
    let mut out = SchedulerConfiguration {
        profiles: Vec::new(),
        initial_backoff_seconds: cfg.pod_initial_backoff_seconds.unwrap_or(1),
        max_backoff_seconds: cfg.pod_max_backoff_seconds.unwrap_or(10),
        client: client_connection(&mut errs, cfg.client_connection.as_ref()),
    };
    if out.initial_backoff_seconds <= 0 {
        errs.at("podInitialBackoffSeconds", "must be greater than 0");
    }
    if out.max_backoff_seconds < out.initial_backoff_seconds {
        errs.at(
            "podMaxBackoffSeconds",
            "must be greater than or equal to podInitialBackoffSeconds",
        );
    }
    let global_pct = cfg.percentage_of_nodes_to_score;
    if let Some(p) = global_pct {
        if !(0..=100).contains(&p) {
            errs.at("percentageOfNodesToScore", "not in valid range [0-100]");
        }
    }
    let profiles = cfg.profiles.unwrap_or_default();
    let mut names = BTreeSet::new();
    let docs: Vec<ProfileDoc> = if profiles.is_empty() {
        vec![ProfileDoc {
            scheduler_name: None,
            percentage_of_nodes_to_score: None,
            plugins: None,
            plugin_config: None,
        }]
    } else {
        profiles
    };
    for (i, p) in docs.iter().enumerate() {
        let path = format!("profiles[{i}]");
        let name = p
            .scheduler_name
            .clone()
            .unwrap_or_else(|| "default-scheduler".into());
        if name.is_empty() {
            errs.at(&format!("{path}.schedulerName"), "Required value");
        }
        if !names.insert(name.clone()) {
            errs.at(
                &format!("{path}.schedulerName"),
                format!("Duplicate value: \"{name}\""),
            );
        }
        let pct = p.percentage_of_nodes_to_score.or(global_pct);
        if let Some(v) = p.percentage_of_nodes_to_score {
            if !(0..=100).contains(&v) {
                errs.at(
                    &format!("{path}.percentageOfNodesToScore"),
                    "not in valid range [0-100]",
                );
            }
        }
        let args = decode_args(&mut errs, doc, &path, p);
        let plugins = p.plugins.as_ref();
        check_plugin_names(&mut errs, &path, plugins);
        let empty = empty_plugins();
        let mp = plugins
            .and_then(|x| x.multi_point.clone())
            .unwrap_or_default();
        match build_profile(&name, Some(args), plugins.unwrap_or(&empty), &mp) {
            Ok(mut prof) => {
                prof.percentage_of_nodes_to_score = pct.unwrap_or(0).clamp(0, 100) as usize;
                out.profiles.push(prof);
            }
            Err((field, msg)) => errs.at(&format!("{path}.{field}"), msg),
        }
    }
    if errs.out.is_empty() {
        Ok(out)
    } else {
        Err(errs.out)
    }
}

fn check_plugin_names(errs: &mut Errors<'_>, path: &str, plugins: Option<&PluginsDoc>) {
    let Some(p) = plugins else { return };
    let sets: [(&str, &Option<PluginSetDoc>); 13] = [
        ("preEnqueue", &p.pre_enqueue),
        ("queueSort", &p.queue_sort),
        ("preFilter", &p.pre_filter),
        ("filter", &p.filter),
        ("postFilter", &p.post_filter),
        ("preScore", &p.pre_score),
        ("score", &p.score),
        ("reserve", &p.reserve),
        ("permit", &p.permit),
        ("preBind", &p.pre_bind),
        ("bind", &p.bind),
        ("postBind", &p.post_bind),
        ("multiPoint", &p.multi_point),
    ];
    let known: Vec<&str> = IN_TREE.iter().map(|(n, _, _)| *n).collect();
    for (point, set) in sets {
        let Some(set) = set else { continue };
        for (list, entries) in [("enabled", &set.enabled), ("disabled", &set.disabled)] {
            for (j, e) in entries.iter().flatten().enumerate() {
                let at = format!("{path}.plugins.{point}.{list}[{j}].name");
                if e.name == "*" && list == "disabled" {
                    continue;
                }
                if known.contains(&e.name.as_str()) {
                    let scored = point == "score" || point == "multiPoint";
                    if let Some(w) = e.weight.filter(|w| scored && *w < 0) {
                        errs.at(
                            &format!("{path}.plugins.{point}.{list}[{j}].weight"),
                            format!("Invalid value: {w}: score plugin weight must be a positive integer"),
                        );
                    }
                    continue;
                }
                if let Some((_, why)) = REMOVED.iter().find(|(n, _)| *n == e.name) {
                    errs.at(
                        &at,
                        format!("plugin `{}` was removed from the scheduler: {why}", e.name),
                    );
                } else {
                    let hint = closest(&e.name, &known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    errs.at(
                        &at,
                        format!("`{}` is not an in-tree scheduler plugin (out-of-tree plugins cannot run in kubesim){hint}", e.name),
                    );
                }
            }
        }
    }
}

fn decode_args(errs: &mut Errors<'_>, doc: &Node, path: &str, p: &ProfileDoc) -> Args {
    let mut args = Args::default();
    for (j, pc) in p.plugin_config.iter().flatten().enumerate() {
        let at = format!("{path}.pluginConfig[{j}].args");
        let Some(node) = node_at(doc, &at) else {
            continue;
        };
        if node.is_null() {
            continue;
        }
        match pc.name.as_str() {
            "NodeResourcesFit" => args.fit = errs.decode(node, &at),
            "NodeResourcesBalancedAllocation" => args.balanced = errs.decode(node, &at),
            "PodTopologySpread" => args.spread = errs.decode(node, &at),
            "InterPodAffinity" => args.inter_pod = errs.decode(node, &at),
            "NodeAffinity" => args.node_affinity = errs.decode(node, &at),
            "DefaultPreemption" => args.preemption = errs.decode(node, &at),
            "VolumeBinding" | "NodeVolumeLimits" | "DynamicResources" => {}
            other => errs.at(
                &format!("{path}.pluginConfig[{j}].name"),
                format!("`{other}` takes no arguments kubesim knows"),
            ),
        }
    }
    args
}

fn resource_weights(list: &[ResourceDoc]) -> Vec<ResourceWeight> {
    list.iter()
        .map(|r| ResourceWeight::new(&r.name, r.weight.unwrap_or(1)))
        .collect()
}

/// Upstream's merge of a default plugin set with a custom one.
fn merge_set(
    defaults: &[(String, i32)],
    custom: &PluginSetDoc,
) -> (Vec<(String, i32)>, BTreeSet<String>) {
    let disabled: BTreeSet<String> = custom
        .disabled
        .iter()
        .flatten()
        .map(|p| p.name.clone())
        .collect();
    let enabled = custom.enabled.clone().unwrap_or_default();
    let mut replaced = BTreeSet::new();
    let mut out = Vec::new();
    if !disabled.contains("*") {
        for (name, w) in defaults {
            if disabled.contains(name) {
                continue;
            }
            match enabled.iter().position(|e| e.name == *name) {
                Some(i) => {
                    replaced.insert(i);
                    out.push((name.clone(), enabled[i].weight.unwrap_or(0)));
                }
                None => out.push((name.clone(), *w)),
            }
        }
    }
    for (i, e) in enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            out.push((e.name.clone(), e.weight.unwrap_or(0)));
        }
    }
    (out, disabled)
}

/// Plugins at one extension point: those re-listed there (in their order),
/// then the multi-point ones not disabled there, then the rest listed there.
fn expand(multi: &[(String, i32)], point: Option<&PluginSetDoc>) -> Vec<(String, i32)> {
    let empty = PluginSetDoc::default();
    let point = point.unwrap_or(&empty);
    let disabled: BTreeSet<&str> = point
        .disabled
        .iter()
        .flatten()
        .map(|p| p.name.as_str())
        .collect();
    let enabled = point.enabled.clone().unwrap_or_default();
    let in_multi = |n: &str| multi.iter().any(|(m, _)| m == n);
    let mut out: Vec<(String, i32)> = Vec::new();
    for e in enabled.iter().filter(|e| in_multi(&e.name)) {
        let w = e
            .weight
            .or_else(|| multi.iter().find(|(m, _)| *m == e.name).map(|(_, w)| *w))
            .unwrap_or(0);
        out.push((e.name.clone(), w));
    }
    if !disabled.contains("*") {
        for (n, w) in multi {
            if !disabled.contains(n.as_str()) && !out.iter().any(|(o, _)| o == n) {
                out.push((n.clone(), *w));
            }
        }
    }
    for e in enabled.iter().filter(|e| !in_multi(&e.name)) {
        if !out.iter().any(|(o, _)| *o == e.name) {
            out.push((e.name.clone(), e.weight.unwrap_or(0)));
        }
    }
    out
}

fn build_profile(
    name: &str,
    args: Option<Args>,
    plugins: &PluginsDoc,
    multi_point: &PluginSetDoc,
) -> Result<Profile, (String, String)> {
    let defaults: Vec<(String, i32)> = DEFAULT_PLUGINS
        .iter()
        .map(|(n, w)| (n.to_string(), *w))
        .collect();
    let (multi, _) = merge_set(&defaults, multi_point);
    let lookup = |n: &str| IN_TREE.iter().find(|(m, _, _)| *m == n);
    let filters: Vec<FilterPlugin> = expand(&multi, plugins.filter.as_ref())
        .iter()
        .filter_map(|(n, _)| lookup(n).and_then(|(_, f, _)| *f))
        .collect();
    let scores: Vec<(ScorePlugin, i64)> = expand(&multi, plugins.score.as_ref())
        .iter()
        .filter_map(|(n, w)| {
            lookup(n)
                .and_then(|(_, _, s)| *s)
                .map(|s| (s, if *w == 0 { 1 } else { *w as i64 }))
        })
        .collect();
    let post_filter = expand(&multi, plugins.post_filter.as_ref());
    let pre_enqueue = expand(&multi, plugins.pre_enqueue.as_ref());
    let mut p = Profile {
        scheduler_name: name.to_string(),
        filters,
        scores,
        fit_strategy: ScoringStrategy::LeastAllocated,
        fit_resources: default_resources(),
        balanced_resources: default_resources(),
        spread_defaulting: SpreadDefaulting::System,
        hard_pod_affinity_weight: DEFAULT_HARD_POD_AFFINITY_WEIGHT,
        ignore_preferred_terms_of_existing_pods: false,
        added_affinity: None,
        percentage_of_nodes_to_score: 0,
        preemption: post_filter
            .iter()
            .any(|(n, _)| n == "DefaultPreemption")
            .then(PreemptionArgs::default),
        scheduling_gates: pre_enqueue.iter().any(|(n, _)| n == "SchedulingGates"),
    };
    let Some(args) = args else { return Ok(p) };
    if let Some(fit) = args.fit.and_then(|f| f.scoring_strategy) {
        if let Some(r) = &fit.resources {
            p.fit_resources = resource_weights(r);
            validate_resource_weights(&p.fit_resources).map_err(|(i, m)| {
                (
                    format!("pluginConfig.args.scoringStrategy.resources[{i}].weight"),
                    m,
                )
            })?;
        }
        p.fit_strategy = match fit.type_.as_deref().unwrap_or("LeastAllocated") {
            "LeastAllocated" => ScoringStrategy::LeastAllocated,
            "MostAllocated" => ScoringStrategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape: Vec<(i64, i64)> = fit
                    .requested_to_capacity_ratio
                    .map(|r| r.shape.iter().map(|s| (s.utilization, s.score)).collect())
                    .unwrap_or_default();
                if shape.is_empty() {
                    return Err((
                        "pluginConfig.args.scoringStrategy.requestedToCapacityRatio.shape".into(),
                        "Required value: at least one point must be specified".into(),
                    ));
                }
                for (i, w) in shape.windows(2).enumerate() {
                    if w[1].0 <= w[0].0 {
                        return Err((
                            format!("pluginConfig.args.scoringStrategy.requestedToCapacityRatio.shape[{}].utilization", i + 1),
                            "Invalid value: utilization values must be sorted in increasing order".into(),
                        ));
                    }
                }
                for (i, (u, s)) in shape.iter().enumerate() {
                    if !(0..=100).contains(u) || !(0..=10).contains(s) {
                        return Err((
                            format!("pluginConfig.args.scoringStrategy.requestedToCapacityRatio.shape[{i}]"),
                            "Invalid value: utilization must be in [0, 100] and score in [0, 10]".into(),
                        ));
                    }
                }
                ScoringStrategy::RequestedToCapacityRatio { shape }
            }
            other => {
                return Err((
                    "pluginConfig.args.scoringStrategy.type".into(),
                    format!("Unsupported value: \"{other}\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""),
                ))
            }
        };
    }
    if let Some(r) = args.balanced.and_then(|b| b.resources) {
        p.balanced_resources = resource_weights(&r);
        validate_resource_weights(&p.balanced_resources)
            .map_err(|(i, m)| (format!("pluginConfig.args.resources[{i}].weight"), m))?;
    }
    if let Some(s) = args.spread {
        let list = s.default_constraints.unwrap_or_default();
        p.spread_defaulting = match s.defaulting_type.as_deref().unwrap_or("System") {
            "System" if !list.is_empty() => {
                return Err((
                    "pluginConfig.args.defaultConstraints".into(),
                    "Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty".into(),
                ))
            }
            "System" => SpreadDefaulting::System,
            "List" => {
                for (i, c) in list.iter().enumerate() {
                    if c.label_selector.is_some() {
                        return Err((
                            format!("pluginConfig.args.defaultConstraints[{i}].labelSelector"),
                            "Forbidden: constraint must not define a selector, as they deduced for each pod".into(),
                        ));
                    }
                    if c.max_skew <= 0 {
                        return Err((
                            format!("pluginConfig.args.defaultConstraints[{i}].maxSkew"),
                            "Invalid value: must be greater than zero".into(),
                        ));
                    }
                }
                SpreadDefaulting::List(
                    list.iter()
                        .map(|c| (c.topology_key.clone(), c.max_skew, c.when_unsatisfiable != "ScheduleAnyway"))
                        .collect(),
                )
            }
            other => {
                return Err((
                    "pluginConfig.args.defaultingType".into(),
                    format!("Unsupported value: \"{other}\": supported values: \"System\", \"List\""),
                ))
            }
        };
    }
    if let Some(a) = args.inter_pod {
        if let Some(w) = a.hard_pod_affinity_weight {
            if !(0..=100).contains(&w) {
                return Err((
                    "pluginConfig.args.hardPodAffinityWeight".into(),
                    "Invalid value: not in valid range [0-100]".into(),
                ));
            }
            p.hard_pod_affinity_weight = w;
        }
        p.ignore_preferred_terms_of_existing_pods =
            a.ignore_preferred_terms_of_existing_pods.unwrap_or(false);
    }
    if let Some(a) = args.node_affinity {
        p.added_affinity = a.added_affinity;
    }
    if let (Some(a), Some(pre)) = (args.preemption, p.preemption.as_mut()) {
        if let Some(v) = a.min_candidate_nodes_percentage {
            if !(0..=100).contains(&v) {
                return Err((
                    "pluginConfig.args.minCandidateNodesPercentage".into(),
                    "Invalid value: not in valid range [0, 100]".into(),
                ));
            }
            pre.min_candidate_nodes_percentage = v;
        }
        if let Some(v) = a.min_candidate_nodes_absolute {
            if v < 0 {
                return Err((
                    "pluginConfig.args.minCandidateNodesAbsolute".into(),
                    "Invalid value: not in valid range [0, inf)".into(),
                ));
            }
            pre.min_candidate_nodes_absolute = v;
        }
        if pre.min_candidate_nodes_percentage == 0 && pre.min_candidate_nodes_absolute == 0 {
            return Err((
                "pluginConfig.args".into(),
                "Invalid value: both minCandidateNodesPercentage and minCandidateNodesAbsolute cannot be zero".into(),
            ));
        }
    }
    Ok(p)
}

/// Whether `doc` is a KubeSchedulerConfiguration document.
pub fn is_configuration(doc: &Node) -> bool {
    matches!(doc.value, Value::Map(_))
        && doc.get("kind").and_then(Node::as_str) == Some("KubeSchedulerConfiguration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::yaml::parse_documents;

    fn decode(text: &str) -> Result<SchedulerConfiguration, Vec<LoadError>> {
        let docs = parse_documents(text).unwrap();
        decode_configuration("c.yaml", &docs[0], "")
    }

    #[test]
    fn the_default_profile_has_upstreams_composition_and_weights() {
        let p = Profile::default();
        use FilterPlugin as F;
        use ScorePlugin as S;
        assert_eq!(
            p.filters,
            vec![
                F::NodeUnschedulable,
                F::NodeName,
                F::TaintToleration,
                F::NodeAffinity,
                F::NodePorts,
                F::NodeResourcesFit,
                F::PodTopologySpread,
                F::InterPodAffinity
            ]
        );
        assert_eq!(
            p.scores,
            vec![
                (S::TaintToleration, 3),
                (S::NodeAffinity, 2),
                (S::NodeResourcesFit, 1),
                (S::PodTopologySpread, 2),
                (S::InterPodAffinity, 2),
                (S::NodeResourcesBalancedAllocation, 1),
                (S::ImageLocality, 1)
            ]
        );
        assert!(p.preemption.is_some() && p.scheduling_gates);
        assert_eq!(p.spread_defaulting, SpreadDefaulting::System);
    }

    #[test]
    fn a_bin_packing_profile_reweights_and_disables() {
        let c = decode(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: NodeResourcesFit
        weight: 5
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 2}, {name: memory, weight: 1}]
- schedulerName: no-preemption
  plugins:
    postFilter:
      disabled: [{name: "*"}]
"#,
        )
        .unwrap();
        let p = &c.profiles[0];
        assert_eq!(p.fit_strategy, ScoringStrategy::MostAllocated);
        assert_eq!(p.weight(ScorePlugin::NodeResourcesFit), Some(5));
        assert_eq!(p.weight(ScorePlugin::NodeResourcesBalancedAllocation), None);
        // A re-listed plugin comes first at its extension point.
        assert_eq!(p.scores[0], (ScorePlugin::NodeResourcesFit, 5));
        assert_eq!(p.fit_resources[0], ResourceWeight::new("cpu", 2));
        assert!(c.profile("no-preemption").unwrap().preemption.is_none());
    }

    #[test]
    fn client_connection_sets_the_schedulers_client_limits() {
        let head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
        // Absent, and zero, both mean upstream's defaults: 50 and 100.
        assert_eq!(decode(head).unwrap().client, SCHEDULER);
        let zero = decode(&format!("{head}clientConnection: {{qps: 0, burst: 0}}\n")).unwrap();
        assert_eq!(zero.client, SCHEDULER);
        let raised = decode(&format!(
            "{head}clientConnection: {{qps: 500, burst: 1000, kubeconfig: /etc/k.conf}}\n"
        ))
        .unwrap();
        assert_eq!(
            raised.client,
            RateLimit {
                qps: 500.0,
                burst: 1000
            }
        );
        let e = decode(&format!("{head}clientConnection: {{burst: -1}}\n")).unwrap_err();
        assert_eq!(e[0].field, "clientConnection.burst");
        assert_eq!(e[0].pos.map(|p| p.line), Some(3));
        let e = decode(&format!("{head}clientConnection: {{qps: -1}}\n")).unwrap_err();
        assert!(
            e[0].message.contains("large positive qps"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let e = decode(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- plugins:\n    score:\n      enabled:\n      - name: NodeResourcesLeastAllocated\n",
        )
        .unwrap_err();
        assert!(
            e[0].to_string()
                .contains("profiles[0].plugins.score.enabled[0].name"),
            "{}",
            e[0]
        );
        assert!(e[0].message.contains("scoringStrategy"));
        let e = decode("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofile: []\n").unwrap_err();
        assert!(e[0].message.contains("did you mean `profiles`"), "{}", e[0]);
        assert_eq!(e[0].pos.unwrap().line, 3);
        let e = decode(
            "apiVersion: kubescheduler.config.k8s.io/v1beta2\nkind: KubeSchedulerConfiguration\n",
        )
        .unwrap_err();
        assert!(e[0].message.contains("refused"));
    }
}
