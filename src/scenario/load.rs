//! Loading a scenario file: strict decoding, defaults, and the checks that
//! need the whole file (node names in actions, etcd member names, includes).
//!
//! Every error names the file, line, column and field path, and suggests the
//! closest known field or name for a misspelling. Loading collects all the
//! errors it can rather than stopping at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use super::drain::DrainOptions;
use super::objective::Objective;
use super::spec::{ClusterSpec, Dur, KubeletSpec, NodePoolSpec, Qty, ScenarioSpec, TimelineSpec};
use super::{Action, EtcdTarget, NodePlan, RolloutOp, Scenario, Step};
use crate::api::limits::{too_many, MAX_NODES};
use crate::api::manifest::{load_manifests, node_at, parse_yaml, validate_dns_name};
use crate::api::manifest::{FieldReport, LoadError};
use crate::api::node::{NodeBody, NodeImage, Taint};
use crate::api::quantity::Quantity;
use crate::api::source::read_source;
use crate::api::yaml::{closest, from_node, join_path, Node, Pos, Value};
use crate::api::{Kind, Object};
use crate::model::apiserver::ApiServerConfig;
use crate::model::etcd::EtcdConfig;
use crate::model::kubelet::KubeletConfig;
use crate::model::network::datacenter_link;
use crate::scheduler::component::SchedulerConfig;
use crate::scheduler::config::{decode_configuration, is_configuration, SchedulerConfiguration};
use crate::sim::dist::LatencySpec;
use crate::sim::{SimDuration, SimTime, TraceLevel};

mod autoscaling;
mod fault_actions;
mod kubelet_include;
mod node_objects;
mod pod_memo;
mod workload;

/// Default virtual time to simulate.
pub const DEFAULT_DURATION: SimDuration = SimDuration::from_secs(600);

/// Reads and loads the scenario at `path`.
pub fn load_file(path: &Path) -> Result<Scenario, Vec<LoadError>> {
    let file = path.display().to_string();
    let text = read_source(path).map_err(|e| {
        vec![LoadError::new(
            &file,
            e.pos,
            "",
            format!("cannot read the scenario: {e}"),
        )]
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&file, &text, &base)
}

/// Loads scenario text; `base` anchors relative includes.
pub fn load_str(file: &str, text: &str, base: &Path) -> Result<Scenario, Vec<LoadError>> {
    let docs = parse_yaml(file, text)?;
    let doc = match docs.as_slice() {
        [one] if matches!(one.value, Value::Map(_)) => one,
        [one] => {
            return Err(vec![LoadError::new(
                file,
                Some(one.pos),
                "",
                format!(
                    "a scenario is a mapping with name, cluster, objects and timeline; found {}",
                    one.describe()
                ),
            )])
        }
        [] => {
            return Err(vec![LoadError::new(
                file,
                None,
                "",
                "the file is empty: a scenario needs at least `name`",
            )])
        }
        [_, second, ..] => {
            return Err(vec![LoadError::new(
                file,
                Some(second.pos),
                "",
                "a scenario is one YAML document; put manifests under `objects:` or in an included file",
            )])
        }
    };
    load_node(file, doc, base)
}

/// Loads a scenario already parsed into a YAML tree (what `kubesim sweep`
/// does after setting a value in it): errors still point into `file`.
pub fn load_node(file: &str, doc: &Node, base: &Path) -> Result<Scenario, Vec<LoadError>> {
    let spliced = kubelet_include::splice(file, doc, base)?;
    let doc = spliced.as_ref().unwrap_or(doc);
    Loader {
        file,
        base,
        doc,
        errors: Vec::new(),
        report: FieldReport::default(),
        warnings: Vec::new(),
        pods: pod_memo::PodMemo::default(),
        autoscaled: false,
        autoscaled_pools: BTreeSet::new(),
    }
    .load()
}

/// The control-plane components a fault can name.
const CONTROL_PLANE: [&str; 4] = [
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
    crate::autoscaler::cluster_autoscaler::PROCESS,
];

/// Whether a pool autoscales (then the cluster autoscaler runs).
fn autoscales(spec: &ScenarioSpec) -> bool {
    spec.cluster
        .node_pools
        .iter()
        .any(|p| p.autoscaling.is_some())
}

/// The control-plane components `spec` runs: the apiserver, and the
/// scheduler and controller-manager unless disabled.
fn running_components(spec: &ScenarioSpec) -> Vec<&'static str> {
    let mut components = vec!["kube-apiserver"];
    if spec.cluster.scheduler.enabled != Some(false) {
        components.push("kube-scheduler");
    }
    if spec.cluster.controller_manager.enabled != Some(false) {
        components.push("kube-controller-manager");
    }
    if autoscales(spec) {
        components.push(crate::autoscaler::cluster_autoscaler::PROCESS);
    }
    components
}

struct Loader<'a> {
    file: &'a str,
    base: &'a Path,
    doc: &'a Node,
    errors: Vec<LoadError>,
    report: FieldReport,
    warnings: Vec<String>,
    /// Bare Pods already decoded, by shape (a long timeline of them).
    pods: pod_memo::PodMemo,
    /// A pool autoscales: the autoscaler and the cloud are fault targets.
    autoscaled: bool,
    /// Pools whose machines the cloud provider owns (`autoscaling:`).
    autoscaled_pools: BTreeSet<String>,
}

impl Loader<'_> {
    fn pos(&self, path: &str) -> Option<Pos> {
        node_at(self.doc, path)
            .map(|n| n.pos)
            .or(Some(self.doc.pos))
    }

    fn error(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.pos(path);
        self.errors
            .push(LoadError::new(self.file, pos, path, message));
    }

    fn load(mut self) -> Result<Scenario, Vec<LoadError>> {
        let mut unknown = Vec::new();
        let spec: Result<ScenarioSpec, _> = from_node(self.doc, &mut unknown);
        if spec.is_err() {
            return Err(self.spec_errors(unknown));
        }
        for u in unknown {
            let hint = u
                .suggestion
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            self.errors.push(LoadError::new(
                self.file,
                Some(u.pos),
                join_path(&u.path),
                format!("unknown field `{}`{hint}", u.field),
            ));
        }
        let spec = match spec {
            Ok(s) => s,
            Err(e) => {
                self.errors
                    .push(LoadError::new(self.file, e.pos, e.path_string(), e.message));
                return Err(self.finish_errors());
            }
        };
        self.autoscaled = autoscales(&spec);
        self.autoscaled_pools = spec
            .cluster
            .node_pools
            .iter()
            .filter(|p| p.autoscaling.is_some())
            .map(|p| p.name.clone())
            .collect();
        if spec.name.trim().is_empty() {
            self.error("name", "Required value: the scenario needs a name");
        }
        let duration = spec.duration.map(|d| d.0).unwrap_or(DEFAULT_DURATION);
        if duration.is_zero() {
            self.error("duration", "the duration must be longer than zero");
        }
        let trace_level = match spec.trace_level.as_deref() {
            None => TraceLevel::Full,
            Some(l) => match l.parse() {
                Ok(level) => level,
                Err(e) => {
                    self.error("traceLevel", e);
                    TraceLevel::Full
                }
            },
        };
        let objective = self.objective(spec.objective.as_ref());
        let mut cluster = self.cluster(&spec.cluster);
        let mut dumped = Vec::new();
        let workload = spec.workload.as_ref().map(|w| {
            let first = cluster.as_ref().map_or(0, |c| c.4 .1.len());
            let (w, imported, objects) = self.workload(w, duration, first);
            if let Some(c) = &mut cluster {
                self.add_imported_nodes(&mut c.4 .1, imported);
            }
            dumped = objects;
            w
        });
        // A cluster dump's objects come first, then the scenario's own.
        let mut objects = dumped;
        objects.extend(self.objects());
        if let Some(c) = &mut cluster {
            self.node_objects(&mut objects, &mut c.4 .1);
        }
        let timeline = match &cluster {
            Some(c) => self.timeline(&spec.timeline, &c.4 .1, c.0, duration, &objects),
            None => Vec::new(),
        };
        self.check_component_targets(&spec);
        let faults = match (&spec.faults, &cluster) {
            (Some(f), Some(c)) => self.faults(f, &spec, &c.4 .1, c.0, duration, &objects),
            _ => None,
        };
        if !self.errors.is_empty() {
            return Err(self.finish_errors());
        }
        let (etcd_members, etcd, apiserver, link, (kubelet, nodes)) =
            cluster.expect("no errors, so the cluster resolved");
        let s = &spec.cluster.scheduler;
        let scheduler = (s.enabled != Some(false)).then(|| {
            let mut cfg = SchedulerConfig::default();
            if let Some(Dur(d)) = s.cycle_latency {
                cfg.cycle_base = d;
            }
            if let Some(Dur(d)) = s.per_node_latency {
                cfg.per_node = d;
            }
            cfg
        });
        let scheduler = match (scheduler, self.scheduler_configuration()) {
            (Some(mut cfg), Some(c)) => {
                cfg.configuration = c;
                Some(cfg)
            }
            (s, _) => s,
        };
        let c = &spec.cluster.controller_manager;
        if let Some(Dur(d)) = c.node_monitor_period {
            self.at_least(
                "cluster.controllerManager.nodeMonitorPeriod",
                d,
                SimDuration::from_secs(1),
                "the node lifecycle controller compares Node heartbeat times, which have one-second resolution",
            );
        }
        if c.terminated_pod_gc_threshold
            .is_some_and(|t| !(0..=i32::MAX as i64).contains(&t))
        {
            self.error(
                "cluster.controllerManager.terminatedPodGcThreshold",
                "must be between 0 and 2147483647 (an int32; 0 turns the terminated-pod collection off)",
            );
        }
        let controller_manager = (c.enabled != Some(false)).then(|| {
            let mut cfg = crate::controllers::ControllerManagerConfig::default();
            if let Some(Dur(d)) = c.node_monitor_period {
                cfg.node_monitor_period = d;
            }
            if let Some(Dur(d)) = c.node_monitor_grace_period {
                cfg.node_monitor_grace_period = d;
            }
            if let Some(Dur(d)) = c.node_startup_grace_period {
                cfg.node_startup_grace_period = d;
            }
            if let Some(q) = c.kube_api_qps {
                cfg.api.qps = q;
            }
            if let Some(b) = c.kube_api_burst {
                cfg.api.burst = b;
            }
            if let Some(t) = c
                .terminated_pod_gc_threshold
                .and_then(|t| u32::try_from(t).ok())
            {
                cfg.terminated_pod_gc_threshold = t;
            }
            cfg
        });
        let load = self.load_profiles(&spec.load);
        let controller_manager = controller_manager.map(|mut c| {
            c.load = load;
            c
        });
        if controller_manager
            .as_ref()
            .is_some_and(|c| !(c.api.qps > 0.0 && c.api.burst > 0 && c.node_monitor_period.0 > 0))
        {
            self.error(
                "cluster.controllerManager",
                "kubeApiQps, kubeApiBurst and nodeMonitorPeriod must be positive",
            );
        }
        let kubectl = crate::model::client::RateLimit {
            qps: spec
                .cluster
                .kubectl
                .qps
                .unwrap_or(super::driver::KUBECTL.qps),
            burst: spec
                .cluster
                .kubectl
                .burst
                .unwrap_or(super::driver::KUBECTL.burst),
        };
        if !(kubectl.qps > 0.0 && kubectl.qps.is_finite() && kubectl.burst > 0) {
            self.error(
                "cluster.kubectl",
                "qps and burst must be positive (kubectl's defaults are 50 and 300)",
            );
        }
        if spec
            .checks
            .as_ref()
            .and_then(|c| c.liveness.as_ref())
            .is_some_and(|Dur(d)| d.is_zero())
        {
            self.error(
                "checks.liveness",
                "must be positive: the cluster needs time to converge after the last fault",
            );
        }
        let autoscaling = self.autoscaling(&spec.cluster, &nodes);
        for node in spec.live.sockets.keys() {
            if !nodes.iter().any(|n| &n.name == node) {
                self.error(
                    &format!("live.sockets.{node}"),
                    "names no node of the cluster (nodes are <pool>-<n>, e.g. worker-1)",
                );
            }
        }
        if !self.errors.is_empty() {
            return Err(self.finish_errors());
        }
        let workload_namespaces: Vec<String> = workload
            .iter()
            .flat_map(|w| {
                let g = w.generators.iter().map(|g| g.template.namespace.clone());
                g.chain(w.imports.iter().map(|i| i.template.namespace.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        self.check_namespaces(&objects, &timeline, &workload_namespaces);
        let liveness_bound = spec
            .checks
            .as_ref()
            .and_then(|c| c.liveness)
            .map_or(super::DEFAULT_LIVENESS_BOUND, |Dur(d)| d);
        Ok(Scenario {
            file: self.file.to_string(),
            name: spec.name,
            description: spec.description.unwrap_or_default(),
            seed: spec.seed.unwrap_or(1),
            duration,
            trace_level,
            etcd_members,
            etcd,
            apiserver,
            link,
            kubelet: Arc::new(kubelet),
            scheduler,
            controller_manager,
            kubectl,
            nodes,
            objects,
            timeline,
            report: self.report,
            warnings: self.warnings,
            objective,
            faults,
            liveness_bound,
            live: spec.live,
            workload: workload.filter(|w| !w.is_empty()).map(Arc::new),
            autoscaling,
        })
    }

    /// Adds a trace's machines to the pools' nodes; a name twice is an error.
    fn add_imported_nodes(&mut self, nodes: &mut Vec<NodePlan>, imported: Vec<NodePlan>) {
        let mut names: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        for n in imported {
            if !names.insert(n.name.clone()) {
                self.error(
                    "workload.imports",
                    format!("node `{}` is named twice (by a pool or a trace)", n.name),
                );
                return;
            }
            if names.len() as u64 > MAX_NODES {
                self.error("workload.imports", too_many("nodes", names.len() as i64, MAX_NODES as i64, "kubesim simulates up to four times the 5,000 nodes Kubernetes is tested at"));
                return;
            }
            nodes.push(n);
        }
    }

    /// `nodePools[].devices`: each driver's devices, checked against the
    /// ResourceSlice limits.
    fn device_drivers(
        &mut self,
        at: &str,
        specs: &[super::spec::DeviceDriverSpec],
    ) -> Vec<crate::dra::driver::DriverSpec> {
        use crate::dra::device::AttrValue;
        let mut out = Vec::new();
        for (i, d) in specs.iter().enumerate() {
            let here = format!("{at}.devices[{i}]");
            let mut ok = true;
            if d.driver.is_empty() || !d.driver.contains('.') {
                self.error(
                    &format!("{here}.driver"),
                    "a driver name is a DNS subdomain (`gpu.example.com`)",
                );
                ok = false;
            }
            let mut attributes = std::collections::BTreeMap::new();
            for (k, a) in &d.attributes {
                let set = [
                    a.bool.is_some(),
                    a.int.is_some(),
                    a.string.is_some(),
                    a.version.is_some(),
                ];
                let v = match (a.bool, a.int, &a.string, &a.version) {
                    _ if set.iter().filter(|s| **s).count() != 1 => None,
                    (Some(b), ..) => Some(AttrValue::Bool(b)),
                    (_, Some(n), ..) => Some(AttrValue::Int(n)),
                    (_, _, Some(s), _) => Some(AttrValue::Str(s.clone())),
                    (_, _, _, Some(v)) => crate::dra::cel::Semver::parse(v)
                        .ok()
                        .map(|_| AttrValue::Version(v.clone())),
                    _ => None,
                };
                match v {
                    Some(v) => {
                        attributes.insert(k.clone(), v);
                    }
                    None => {
                        self.error(&format!("{here}.attributes.{k}"), "exactly one of bool, int, string or version (a semantic version) must be set");
                        ok = false;
                    }
                }
            }
            let driver = crate::dra::driver::DriverSpec {
                driver: d.driver.clone(),
                count: d.count,
                attributes,
                capacity: d.capacity.iter().map(|(k, q)| (k.clone(), q.0)).collect(),
                prepare: d
                    .prepare
                    .as_ref()
                    .map_or(crate::dra::driver::DEFAULT_PREPARE, |p| p.0),
            };
            if let Err((f, m)) = driver.validate() {
                self.error(&format!("{here}.{f}"), m);
                ok = false;
            }
            if ok {
                out.push(driver);
            }
        }
        out
    }

    /// Whether `node` may be started by a fault: not when its machine
    /// belongs to the cloud provider (an autoscaled pool's slot may have
    /// no machine at that instant; only the cloud boots one).
    fn not_a_cloud_machine(&mut self, path: &str, node: &str, nodes: &[NodePlan]) -> bool {
        let pool = nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.pool.as_str());
        match pool {
            Some(p) if self.autoscaled_pools.contains(p) => {
                let msg = format!(
                    "node {node} is a machine of autoscaled pool {p}: only the cloud provider starts its machines (crash it, and the autoscaler replaces it)"
                );
                self.error(path, &msg);
                false
            }
            _ => true,
        }
    }

    /// The timeline's control-plane and process faults (see
    /// [`super::component_faults`]), each checked against what it names.
    fn component_fault_actions(
        &mut self,
        at: &str,
        e: &TimelineSpec,
        (node_names, nodes): (&[&str], &[NodePlan]),
        etcd_names: &[String],
    ) -> Vec<(&'static str, Action)> {
        let mut out = Vec::new();
        for (field, value, crash) in [
            ("crashComponent", &e.crash_component, true),
            ("restartComponent", &e.restart_component, false),
        ] {
            if let Some(c) = value {
                if self.known_name(&format!("{at}.{field}"), "component", c, &CONTROL_PLANE) {
                    out.push(if crash {
                        (field, Action::CrashComponent(c.clone()))
                    } else {
                        (field, Action::RestartComponent(c.clone()))
                    });
                }
            }
        }
        type Make = fn(String) -> Action;
        let kubelet: [(&'static str, &Option<String>, Make); 4] = [
            ("crashKubelet", &e.crash_kubelet, Action::CrashKubelet),
            ("restartKubelet", &e.restart_kubelet, Action::RestartKubelet),
            ("hangKubelet", &e.hang_kubelet, Action::HangKubelet),
            ("resumeKubelet", &e.resume_kubelet, Action::ResumeKubelet),
        ];
        for (field, value, make) in kubelet {
            if let Some(n) = value {
                let path = format!("{at}.{field}");
                let starts = field == "restartKubelet";
                if self.known_name(&path, "node", n, node_names)
                    && (!starts || self.not_a_cloud_machine(&path, n, nodes))
                {
                    out.push((field, make(n.clone())));
                }
            }
        }
        if let Some(d) = &e.slow_disk {
            let member = self.etcd_member(&format!("{at}.slowDisk.member"), &d.member, etcd_names);
            if d.fsync.0.is_zero() {
                self.error(
                    &format!("{at}.slowDisk.fsync"),
                    "a stalled fsync takes longer than zero",
                );
            } else if let Some(member) = member {
                out.push((
                    "slowDisk",
                    Action::SlowDisk {
                        member,
                        fsync: d.fsync.0,
                    },
                ));
            }
        }
        if let Some(m) = &e.heal_disk {
            if let Some(member) = self.etcd_member(&format!("{at}.healDisk"), m, etcd_names) {
                out.push(("healDisk", Action::HealDisk(member)));
            }
        }
        out
    }

    /// A `crashComponent`/`restartComponent` must name a component this
    /// scenario runs (the scheduler and controller-manager can be off).
    fn check_component_targets(&mut self, spec: &ScenarioSpec) {
        let running = running_components(spec);
        for (i, e) in spec.timeline.iter().enumerate() {
            for (field, value) in [
                ("crashComponent", &e.crash_component),
                ("restartComponent", &e.restart_component),
            ] {
                match value {
                    Some(c)
                        if CONTROL_PLANE.contains(&c.as_str())
                            && !running.contains(&c.as_str()) =>
                    {
                        self.error(
                            &format!("timeline[{i}].{field}"),
                            format!(
                                "{c} does not run in this scenario (it is disabled under cluster:)"
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// `faults:` checked against the cluster (see [`crate::faults::profile`]).
    fn faults(
        &mut self,
        f: &crate::faults::profile::FaultsSpec,
        spec: &ScenarioSpec,
        nodes: &[NodePlan],
        etcd_members: u32,
        duration: SimDuration,
        objects: &[Object],
    ) -> Option<crate::faults::FaultProfile> {
        let components = running_components(spec);
        let cluster = crate::faults::profile::Cluster {
            nodes,
            etcd_members,
            components: &components,
            duration,
            objects,
        };
        crate::faults::profile::resolve(f, &cluster, &mut |path, msg| self.error(path, msg))
    }

    /// Whether `d` is at least `min`; if not, an error at `path` giving
    /// the floor and `why`. Periods far below these make a run take hours
    /// of wall time or exhaust memory for no behaviour a cluster can show.
    fn at_least(&mut self, path: &str, d: SimDuration, min: SimDuration, why: &str) -> bool {
        if d >= min {
            return true;
        }
        self.error(path, format!("{d} is below the minimum of {min}: {why}"));
        false
    }

    /// Every error of a scenario whose spec does not decode, in one pass:
    /// serde stops at the first bad field, so each round drops that field
    /// and decodes again; the objects are still decoded for their errors.
    fn spec_errors(mut self, first_unknown: Vec<crate::api::yaml::UnknownField>) -> Vec<LoadError> {
        let mut work = self.doc.clone();
        let mut unknown = first_unknown;
        for round in 0..16 {
            for u in unknown.drain(..) {
                let hint = u
                    .suggestion
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let e = LoadError::new(
                    self.file,
                    Some(u.pos),
                    join_path(&u.path),
                    format!("unknown field `{}`{hint}", u.field),
                );
                if !self.errors.contains(&e) {
                    self.errors.push(e);
                }
            }
            let Err(e) = from_node::<ScenarioSpec>(&work, &mut unknown) else {
                break;
            };
            let path = e.path_string();
            let maybe_ours = round > 0 && e.message.contains("missing field");
            if maybe_ours
                || self
                    .errors
                    .iter()
                    .any(|x| x.field == path && x.pos == e.pos)
            {
                break;
            }
            self.errors
                .push(LoadError::new(self.file, e.pos, path.clone(), e.message));
            if path.is_empty() || !crate::api::manifest::remove_at(&mut work, &path) {
                break;
            }
        }
        self.objects();
        self.finish_errors()
    }

    fn objective(&mut self, spec: Option<&super::spec::ObjectiveSpec>) -> Objective {
        let mut o = Objective::default();
        let Some(spec) = spec else { return o };
        if let Some(n) = spec.max_pending_pods {
            o.max_pending_pods = n;
        }
        if let Some(d) = &spec.pod_startup_p99 {
            o.pod_startup_p99 = Some(d.0);
        }
        o.max_pod_wait = spec.max_pod_wait.as_ref().map(|d| d.0);
        o.max_cpu_requested = spec.max_cpu_requested.map(|f| f.0);
        o.max_pending_pod_seconds = self.non_negative(
            "objective.maxPendingPodSeconds",
            spec.max_pending_pod_seconds,
        );
        o.max_cost = self.non_negative("objective.maxCost", spec.max_cost);
        if let Some(share) = spec.seed_share {
            if share.0 > 0.0 {
                o.seed_share = share.0;
            } else {
                self.error(
                    "objective.seedShare",
                    "the share of seeds must be more than 0%",
                );
            }
        }
        o
    }

    /// A limit that is a number of zero or more.
    fn non_negative(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        let v = v?;
        if v.is_finite() && v >= 0.0 {
            return Some(v);
        }
        self.error(
            path,
            format!("the limit is a number of zero or more, not {v}"),
        );
        None
    }

    fn finish_errors(&mut self) -> Vec<LoadError> {
        let mut errors = std::mem::take(&mut self.errors);
        errors.sort_by(|a, b| (a.file.as_str(), a.pos).cmp(&(b.file.as_str(), b.pos)));
        errors.dedup();
        errors
    }

    fn latency(
        &mut self,
        path: &str,
        spec: &Option<LatencySpec>,
        default: crate::sim::LatencyDist,
    ) -> crate::sim::LatencyDist {
        match spec {
            None => default,
            Some(s) => match s.resolve(self.base) {
                Ok(d) => d,
                Err(e) => {
                    self.error(path, e);
                    default
                }
            },
        }
    }

    #[allow(clippy::type_complexity)]
    fn cluster(
        &mut self,
        c: &ClusterSpec,
    ) -> Option<(
        u32,
        EtcdConfig,
        ApiServerConfig,
        crate::model::network::LinkModel,
        (KubeletConfig, Vec<NodePlan>),
    )> {
        let before = self.errors.len();
        // etcd
        let members = c.etcd.members.unwrap_or(3);
        if ![1, 3, 5].contains(&members) {
            self.error(
                "cluster.etcd.members",
                format!("an etcd group here has 1, 3 or 5 members, not {members}"),
            );
        }
        let mut etcd = EtcdConfig::default();
        if let Some(Dur(h)) = c.etcd.heartbeat_interval {
            if self.at_least(
                "cluster.etcd.heartbeatInterval",
                h,
                SimDuration::from_millis(1),
                "etcd's --heartbeat-interval is a whole number of milliseconds",
            ) {
                etcd.heartbeat_interval = h;
            }
        }
        let election = c
            .etcd
            .election_timeout
            .map(|d| d.0)
            .unwrap_or(SimDuration::from_secs(1));
        let tick = etcd.heartbeat_interval.nanos().max(1);
        // etcd refuses an election timeout under five heartbeats.
        if election.nanos() < 5 * tick {
            self.error(
                "cluster.etcd.electionTimeout",
                format!(
                    "--election-timeout ({election}) must be at least 5 times --heartbeat-interval ({})",
                    etcd.heartbeat_interval
                ),
            );
        }
        // etcd's maxElectionMs.
        if election > SimDuration::from_secs(50) {
            self.error(
                "cluster.etcd.electionTimeout",
                format!(
                    "--election-timeout ({election}) is too long, and should be set less than 50s"
                ),
            );
        }
        etcd.election_ticks = (election.nanos() / tick).clamp(1, u64::from(u32::MAX)) as u32;
        let fsync_default = etcd.wal_fsync.clone();
        etcd.wal_fsync = self.latency("cluster.etcd.walFsync", &c.etcd.wal_fsync, fsync_default);
        if let Some(b) = c.etcd.pre_vote {
            etcd.pre_vote = b;
        }
        if let Some(b) = c.etcd.check_quorum {
            etcd.check_quorum = b;
        }
        // apiserver
        let mut api = ApiServerConfig::default();
        if let Some(n) = c.apiserver.max_requests_inflight {
            api.max_readonly_inflight = n;
        }
        if let Some(n) = c.apiserver.max_mutating_requests_inflight {
            api.max_mutating_inflight = n;
        }
        let handling = api.handling.clone();
        api.handling = self.latency(
            "cluster.apiserver.requestLatency",
            &c.apiserver.request_latency,
            handling,
        );
        if let Some(Dur(d)) = c.apiserver.watch_cache_history {
            api.history_window = d;
        }
        if let Some(Dur(d)) = c.apiserver.bookmark_interval {
            if self.at_least(
                "cluster.apiserver.bookmarkInterval",
                d,
                SimDuration::from_secs(1),
                "the watch cache sends bookmarks about once a minute; more often than every second only multiplies watch events",
            ) {
                api.bookmark_period = d;
            }
        }
        if let Some(Dur(d)) = c.apiserver.etcd_compaction_interval {
            if !d.is_zero() && d < SimDuration::from_secs(1) {
                self.error(
                    "cluster.apiserver.etcdCompactionInterval",
                    "the compaction interval is 0 (no compaction) or at least 1s",
                );
            } else {
                api.compaction_interval = d;
            }
        }
        // network
        let mut link = datacenter_link();
        let lat = link.latency.clone();
        link.latency = self.latency("cluster.network.latency", &c.network.latency, lat);
        if let Some(loss) = c.network.loss {
            if !(0.0..1.0).contains(&loss) {
                self.error(
                    "cluster.network.loss",
                    format!("loss is a probability in [0, 1), not {loss}"),
                );
            } else {
                link.loss = loss;
            }
        }
        let mut kubelet = self.kubelet(&c.kubelet);
        let mut sizes = BTreeMap::new();
        for (image, Qty(q)) in &c.images {
            match non_negative_bytes(q) {
                Some(b) => {
                    sizes.insert(image.clone(), b);
                }
                None => self.error(
                    &format!("cluster.images.{image}"),
                    "an image size is a non-negative number of bytes",
                ),
            }
        }
        kubelet.image_sizes = Arc::new(sizes);
        let nodes = self.node_pools(&c.node_pools, &kubelet);
        (self.errors.len() == before).then_some((members, etcd, api, link, (kubelet, nodes)))
    }

    /// `cluster.kubelet`, over the kubelet's defaults.
    fn kubelet(&mut self, k: &KubeletSpec) -> KubeletConfig {
        let mut kubelet = KubeletConfig::default();
        if let Some(secs) = k.node_lease_duration_seconds {
            if secs == 0 {
                self.error(
                    "cluster.kubelet.nodeLeaseDurationSeconds",
                    "the lease duration must be at least 1 second",
                );
            }
            kubelet.lease_duration_seconds = secs as i32;
            // The kubelet renews at a quarter of the lease duration.
            kubelet.lease_renew = SimDuration(SimDuration::from_secs(secs as u64).nanos() / 4);
        }
        for (field, value, slot) in [
            (
                "nodeStatusUpdateFrequency",
                k.node_status_update_frequency,
                &mut kubelet.status_update,
            ),
            (
                "nodeStatusReportFrequency",
                k.node_status_report_frequency,
                &mut kubelet.status_report,
            ),
        ] {
            if let Some(Dur(d)) = value {
                if self.at_least(
                    &format!("cluster.kubelet.{field}"),
                    d,
                    SimDuration::from_secs(1),
                    "Node heartbeat times have one-second resolution (metav1.Time)",
                ) {
                    *slot = d;
                }
            }
        }
        // Upstream's KubeletConfiguration defaulting: for backward
        // compatibility an explicit nodeStatusUpdateFrequency is also the
        // report frequency when that is not set (5 min only when neither is).
        if let (Some(_), None) = (
            k.node_status_update_frequency,
            k.node_status_report_frequency,
        ) {
            kubelet.status_report = kubelet.status_update;
        }
        let d = kubelet.sandbox_create.clone();
        kubelet.sandbox_create = self.latency(
            "cluster.kubelet.sandboxCreateLatency",
            &k.sandbox_create_latency,
            d,
        );
        let d = kubelet.container_start.clone();
        kubelet.container_start = self.latency(
            "cluster.kubelet.containerStartLatency",
            &k.container_start_latency,
            d,
        );
        let d = kubelet.container_stop.clone();
        kubelet.container_stop = self.latency(
            "cluster.kubelet.containerStopLatency",
            &k.container_stop_latency,
            d,
        );
        let d = kubelet.pull_overhead.clone();
        kubelet.pull_overhead = self.latency(
            "cluster.kubelet.imagePullOverhead",
            &k.image_pull_overhead,
            d,
        );
        if let Some(Qty(q)) = &k.image_pull_bandwidth {
            match positive_bytes(q) {
                Some(b) => kubelet.pull_bandwidth = b,
                None => self.error(
                    "cluster.kubelet.imagePullBandwidth",
                    "the bandwidth must be a positive number of bytes per second",
                ),
            }
        }
        if let Some(Qty(q)) = &k.default_image_size {
            match non_negative_bytes(q) {
                Some(b) => kubelet.default_image_size = b,
                None => self.error(
                    "cluster.kubelet.defaultImageSize",
                    "an image size is a non-negative number of bytes",
                ),
            }
        }
        kubelet
    }

    fn node_pools(&mut self, pools: &[NodePoolSpec], kubelet: &KubeletConfig) -> Vec<NodePlan> {
        let mut nodes = Vec::new();
        let mut seen = BTreeSet::new();
        let mut total: u64 = 0;
        for (i, pool) in pools.iter().enumerate() {
            let at = format!("cluster.nodePools[{i}]");
            let (slots, initial) = self.pool_size(pool, &at);
            total += u64::from(slots);
            if total > MAX_NODES {
                self.error(
                    &format!("{at}.count"),
                    too_many(
                        "nodes in all pools",
                        total as i64,
                        MAX_NODES as i64,
                        "kubesim simulates up to four times the 5,000 nodes Kubernetes is tested at",
                    ),
                );
                return nodes;
            }
            if let Err(why) = validate_dns_name(&pool.name, true) {
                self.error(&format!("{at}.name"), format!("`{}`: {why}", pool.name));
                continue;
            }
            if !seen.insert(pool.name.clone()) {
                self.error(
                    &format!("{at}.name"),
                    format!("two node pools are named `{}`", pool.name),
                );
                continue;
            }
            let price_per_hour = match pool.price_per_hour {
                Some(p) if !(p.is_finite() && p >= 0.0) => {
                    self.error(
                        &format!("{at}.pricePerHour"),
                        format!("a price per hour is a number of zero or more, not {p}"),
                    );
                    0.0
                }
                p => p.unwrap_or(0.0),
            };
            let mut capacity = BTreeMap::new();
            for (k, Qty(q)) in &pool.capacity {
                if q.is_negative() {
                    self.error(
                        &format!("{at}.capacity.{k}"),
                        format!(
                            "capacity must not be negative, found {}",
                            q.canonical(false)
                        ),
                    );
                }
                capacity.insert(k.clone(), *q);
            }
            for required in ["cpu", "memory"] {
                if !capacity.contains_key(required) {
                    self.error(
                        &format!("{at}.capacity"),
                        format!("Required value: capacity.{required}"),
                    );
                }
            }
            capacity
                .entry("pods".to_string())
                .or_insert(Quantity::from_units(110));
            let allocatable = match &pool.allocatable {
                None => capacity.clone(),
                Some(a) => {
                    let mut out = capacity.clone();
                    for (k, Qty(q)) in a {
                        match capacity.get(k) {
                            Some(cap) if q > cap => self.error(
                                &format!("{at}.allocatable.{k}"),
                                format!(
                                    "allocatable {} exceeds capacity {}",
                                    q.canonical(false),
                                    cap.canonical(false)
                                ),
                            ),
                            _ => {}
                        }
                        out.insert(k.clone(), *q);
                    }
                    out
                }
            };
            let mut taints = Vec::new();
            for (j, t) in pool.taints.iter().enumerate() {
                if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
                    let hint = closest(&t.effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"])
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    self.error(
                        &format!("{at}.taints[{j}].effect"),
                        format!(
                            "Unsupported value: `{}`: supported values: NoSchedule, PreferNoSchedule, NoExecute{hint}",
                            t.effect
                        ),
                    );
                }
                taints.push(Taint {
                    key: t.key.clone(),
                    value: t.value.clone(),
                    effect: t.effect.clone(),
                    time_added: None,
                });
            }
            let zones: Vec<String> = match (&pool.zone, &pool.zones) {
                (Some(_), Some(_)) => {
                    self.error(&format!("{at}.zones"), "give `zone` or `zones`, not both");
                    Vec::new()
                }
                (Some(z), None) => vec![z.clone()],
                (None, Some(zs)) => zs.clone(),
                (None, None) => Vec::new(),
            };
            let images: Vec<NodeImage> = pool
                .preloaded_images
                .iter()
                .map(|name| NodeImage {
                    names: vec![name.clone()],
                    size_bytes: kubelet
                        .image_sizes
                        .get(name)
                        .copied()
                        .unwrap_or(kubelet.default_image_size)
                        as i64,
                })
                .collect();
            let drivers = Arc::new(self.device_drivers(&at, &pool.devices));
            for n in 0..slots {
                let name = format!("{}-{}", pool.name, n + 1);
                let mut labels = kubelet_labels(&name);
                if !zones.is_empty() {
                    labels.insert(
                        "topology.kubernetes.io/zone".to_string(),
                        zones[n as usize % zones.len()].clone(),
                    );
                }
                labels.extend(pool.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                nodes.push(NodePlan {
                    name: name.clone(),
                    pool: pool.name.clone(),
                    labels,
                    body: NodeBody {
                        unschedulable: false,
                        taints: taints.clone(),
                        // node-ipam-controller's /24 per node from the
                        // cluster CIDR, and a node IP from the machine network.
                        pod_cidr: Some(pod_cidr(nodes.len())),
                        capacity: capacity.clone(),
                        allocatable: allocatable.clone(),
                        conditions: Vec::new(),
                        addresses: node_addresses(nodes.len(), &name),
                        images: images.clone(),
                        kubelet_version: "v1.34.0".into(),
                    },
                    join_at: pool.join_at.as_ref().map(|d| SimTime(d.0.nanos())),
                    price_per_hour,
                    standby: n >= initial,
                    drivers: drivers.clone(),
                });
            }
        }
        nodes
    }

    /// Decodes `cluster.scheduler.config`: a KubeSchedulerConfiguration
    /// inline or in an included file.
    fn scheduler_configuration(&mut self) -> Option<SchedulerConfiguration> {
        const PATH: &str = "cluster.scheduler.config";
        let node = node_at(self.doc, PATH)?;
        if node.is_null() {
            return None;
        }
        let result = match include_of(node) {
            Some(Err(msg)) => {
                self.error(PATH, msg);
                return None;
            }
            Some(Ok(rel)) => {
                let full: PathBuf = self.base.join(rel);
                let shown = full.display().to_string();
                let text = self.read_included(&format!("{PATH}.include"), &full)?;
                let docs = match parse_yaml(&shown, &text) {
                    Ok(d) => d,
                    Err(mut e) => {
                        self.errors.append(&mut e);
                        return None;
                    }
                };
                match docs.iter().find(|d| is_configuration(d)) {
                    Some(doc) => decode_configuration(&shown, doc, ""),
                    None => {
                        self.error(
                            &format!("{PATH}.include"),
                            format!("`{shown}` holds no KubeSchedulerConfiguration document"),
                        );
                        return None;
                    }
                }
            }
            None => decode_configuration(self.file, node, PATH),
        };
        match result {
            Ok(c) => Some(c),
            Err(mut e) => {
                self.errors.append(&mut e);
                None
            }
        }
    }

    /// Decodes `objects:`: inline manifests and `{include: file}` entries.
    fn objects(&mut self) -> Vec<Object> {
        let Some(list) = self.doc.get("objects") else {
            return Vec::new();
        };
        let items = match &list.value {
            Value::Seq(items) => items,
            _ if list.is_null() => return Vec::new(),
            _ => {
                self.error(
                    "objects",
                    format!(
                        "expected a list of manifests or `include:` entries, found {}",
                        list.describe()
                    ),
                );
                return Vec::new();
            }
        };
        self.scan_crds(items);
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.extend(self.manifests_at(&format!("objects[{i}]"), item));
        }
        out
    }

    /// Registers every CRD among `objects:` and its includes before any
    /// object is decoded, so a custom resource may come before its CRD
    /// (the decoding pass reports whatever does not read).
    fn scan_crds(&mut self, items: &[Node]) {
        for item in items {
            match include_of(item) {
                Some(Ok(rel)) => {
                    let full = self.base.join(rel);
                    let shown = full.display().to_string();
                    // Through `read_source`: an include of a FIFO or a
                    // device must not block or fill memory here either; the
                    // decoding pass reports why it could not be read.
                    if let Ok(docs) = read_source(&full)
                        .map_err(|_| ())
                        .and_then(|t| parse_yaml(&shown, &t).map_err(|_| ()))
                    {
                        self.report.crds.scan(&docs);
                    }
                }
                Some(Err(_)) => {}
                None => self.report.crds.scan(std::slice::from_ref(item)),
            }
        }
    }

    /// One manifest, a `List`, or `{include: path}` at `path`.
    fn manifests_at(&mut self, path: &str, item: &Node) -> Vec<Object> {
        if let Some(inc) = include_of(item) {
            return match inc {
                Ok(rel) => self.include(path, rel),
                Err(msg) => {
                    self.error(path, msg);
                    Vec::new()
                }
            };
        }
        if let Some(typo) = misspelt_include(item) {
            self.error(
                &format!("{path}.{typo}"),
                format!("unknown field `{typo}` (did you mean `include`?)"),
            );
            return Vec::new();
        }
        match self.pods.decode(self.file, item, &mut self.report) {
            Ok(objs) => objs,
            Err(errs) => {
                for mut e in errs {
                    e.field = if e.field.is_empty() {
                        path.to_string()
                    } else {
                        format!("{path}.{}", e.field)
                    };
                    self.errors.push(e);
                }
                Vec::new()
            }
        }
    }

    fn include(&mut self, path: &str, rel: &str) -> Vec<Object> {
        let full: PathBuf = self.base.join(rel);
        let shown = full.display().to_string();
        match self.read_included(&format!("{path}.include"), &full) {
            None => Vec::new(),
            Some(text) => match load_manifests(&shown, &text, &mut self.report) {
                Ok(objs) => {
                    if objs.is_empty() {
                        self.warnings
                            .push(format!("{path}: `{shown}` holds no manifests"));
                    }
                    objs
                }
                Err(errs) => {
                    self.errors.extend(errs);
                    Vec::new()
                }
            },
        }
    }

    /// The text of an included file; an error is reported at `field`, or at
    /// the place in the included file where its text stops being UTF-8.
    fn read_included(&mut self, field: &str, full: &Path) -> Option<String> {
        let shown = full.display().to_string();
        match read_source(full) {
            Ok(text) => Some(text),
            Err(e) if e.pos.is_some() => {
                self.errors
                    .push(LoadError::new(&shown, e.pos, "", e.message));
                None
            }
            Err(e) => {
                self.error(field, format!("cannot read `{shown}`: {e}"));
                None
            }
        }
    }

    fn load_profiles(
        &mut self,
        specs: &[super::spec::LoadSpec],
    ) -> Vec<crate::model::load::LoadProfile> {
        let mut out = Vec::new();
        for (i, l) in specs.iter().enumerate() {
            let at = format!("load[{i}]");
            let kind_name = l.target.kind.as_deref().unwrap_or("Deployment");
            let kind = match Kind::from_name(kind_name) {
                Some(k @ (Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet)) => k,
                _ => {
                    self.error(
                        &format!("{at}.target.kind"),
                        format!(
                            "`{kind_name}`: load goes to a Deployment, StatefulSet or ReplicaSet"
                        ),
                    );
                    continue;
                }
            };
            let mut steps = Vec::new();
            for (j, s) in l.requests_per_second.iter().enumerate() {
                if !(s.value >= 0.0 && s.value.is_finite()) {
                    self.error(
                        &format!("{at}.requestsPerSecond[{j}].value"),
                        format!("{} is not a request rate (zero or more)", s.value),
                    );
                }
                steps.push((SimTime(s.at.0.nanos()), s.value));
            }
            if steps.windows(2).any(|w| w[0].0 > w[1].0) {
                self.error(
                    &format!("{at}.requestsPerSecond"),
                    "steps must be in time order",
                );
            }
            out.push(crate::model::load::LoadProfile {
                kind,
                namespace: l
                    .target
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                name: l.target.name.clone(),
                idle_cpu_milli: l
                    .idle_cpu
                    .as_ref()
                    .map_or(0.0, |q| q.0.milli_value() as f64),
                cpu_per_request_milli: l.cpu_per_request.0.milli_value() as f64,
                steps,
            });
        }
        out
    }

    fn timeline(
        &mut self,
        entries: &[TimelineSpec],
        nodes: &[NodePlan],
        etcd_members: u32,
        duration: SimDuration,
        objects: &[Object],
    ) -> Vec<Step> {
        // What exists by each entry, for checking patches against it.
        let mut known: Vec<Arc<Object>> = objects.iter().cloned().map(Arc::new).collect();
        let node_names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let etcd_names: Vec<String> = (0..etcd_members).map(|i| format!("etcd-{i}")).collect();
        let mut steps = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let at = format!("timeline[{i}]");
            let mut actions: Vec<(&str, Action)> = Vec::new();
            if e.apply.is_some() {
                // The tree outlives the loader: no copy of the entry.
                let doc: &Node = self.doc;
                if let Some(node) = node_at(doc, &format!("{at}.apply")) {
                    let objs: Vec<Arc<Object>> = self
                        .manifests_at(&format!("{at}.apply"), node)
                        .into_iter()
                        .map(Arc::new)
                        .collect();
                    known.extend(objs.iter().cloned());
                    actions.push(("apply", Action::Apply(objs)));
                }
            }
            if let Some(d) = &e.delete {
                if let Some((kind, ns)) =
                    self.object_ref(&format!("{at}.delete"), &d.kind, &d.namespace)
                {
                    if let Some(g) = d.grace_period_seconds {
                        if g < 0 {
                            self.error(
                                &format!("{at}.delete.gracePeriodSeconds"),
                                format!("a grace period is zero or more seconds, not {g}"),
                            );
                        }
                    }
                    let propagation = match d.cascade.as_deref() {
                        None | Some("background") => None,
                        Some("foreground") => Some("Foreground"),
                        Some("orphan") => Some("Orphan"),
                        Some(other) => {
                            self.error(
                                &format!("{at}.delete.cascade"),
                                format!("unknown cascade `{other}`: use background, foreground or orphan"),
                            );
                            None
                        }
                    };
                    actions.push((
                        "delete",
                        Action::Delete {
                            kind,
                            namespace: ns,
                            name: d.name.clone(),
                            grace_seconds: d.grace_period_seconds,
                            propagation,
                        },
                    ));
                }
            }
            if let Some(s) = &e.scale {
                if let Some((kind, ns)) =
                    self.object_ref(&format!("{at}.scale"), &s.kind, &s.namespace)
                {
                    if !matches!(
                        kind,
                        Kind::Deployment
                            | Kind::ReplicaSet
                            | Kind::StatefulSet
                            | Kind::ReplicationController
                    ) {
                        self.error(
                            &format!("{at}.scale.kind"),
                            format!(
                                "{} has no scale subresource; scale a Deployment, ReplicaSet, StatefulSet or ReplicationController",
                                kind.name()
                            ),
                        );
                    }
                    if let Err((_, msg)) = crate::api::workload_validation::replicas(
                        Some(&Json::from(s.replicas)),
                        "replicas",
                    ) {
                        self.error(&format!("{at}.scale.replicas"), msg);
                    }
                    actions.push((
                        "scale",
                        Action::Scale {
                            kind,
                            namespace: ns,
                            name: s.name.clone(),
                            replicas: s.replicas,
                        },
                    ));
                }
            }
            if let Some(p) = &e.patch {
                if let Some((kind, ns)) =
                    self.object_ref(&format!("{at}.patch"), &p.kind, &p.namespace)
                {
                    let patch = node_at(self.doc, &format!("{at}.patch.patch"))
                        .map(Node::to_json)
                        .unwrap_or(Json::Null);
                    if !patch.is_object() {
                        self.error(
                            &format!("{at}.patch.patch"),
                            "a merge patch is a mapping, such as {spec: {replicas: 3}}",
                        );
                    } else {
                        let target = known.iter().rev().find(|o| {
                            o.kind == kind && o.meta.namespace == ns && o.meta.name == p.name
                        });
                        if let Some(target) = target.cloned() {
                            self.check_patch(&format!("{at}.patch.patch"), &target, &patch);
                        }
                    }
                    actions.push((
                        "patch",
                        Action::Patch {
                            kind,
                            namespace: ns,
                            name: p.name.clone(),
                            patch,
                        },
                    ));
                }
            }
            if let Some(si) = &e.set_image {
                let kind_name = si.kind.as_deref().unwrap_or("Deployment");
                if let Some((kind, ns)) =
                    self.object_ref(&format!("{at}.setImage"), kind_name, &si.namespace)
                {
                    if !matches!(
                        kind,
                        Kind::Deployment
                            | Kind::ReplicaSet
                            | Kind::StatefulSet
                            | Kind::DaemonSet
                            | Kind::Pod
                    ) {
                        self.error(
                            &format!("{at}.setImage.kind"),
                            format!("{} has no containers to set an image on", kind.name()),
                        );
                    }
                    actions.push((
                        "setImage",
                        Action::SetImage {
                            kind,
                            namespace: ns,
                            name: si.name.clone(),
                            container: si.container.clone(),
                            image: si.image.clone(),
                        },
                    ));
                }
            }
            if let Some(r) = &e.rollout {
                let op = match r.action.as_str() {
                    "undo" => Some(RolloutOp::Undo),
                    "pause" => Some(RolloutOp::Pause),
                    "resume" => Some(RolloutOp::Resume),
                    "restart" => Some(RolloutOp::Restart),
                    other => {
                        self.error(
                            &format!("{at}.rollout.action"),
                            format!("unknown rollout action `{other}`: use undo, pause, resume or restart"),
                        );
                        None
                    }
                };
                let kind_name = r.kind.as_deref().unwrap_or("Deployment");
                if kind_name != "Deployment" {
                    self.error(
                        &format!("{at}.rollout.kind"),
                        format!(
                            "kubesim rolls out Deployments; `{kind_name}` is not supported yet"
                        ),
                    );
                }
                if r.to_revision.is_some() && op != Some(RolloutOp::Undo) {
                    self.error(
                        &format!("{at}.rollout.toRevision"),
                        "toRevision only applies to `undo`",
                    );
                }
                if let (Some(op), Some((_, ns))) = (
                    op,
                    self.object_ref(&format!("{at}.rollout"), "Deployment", &r.namespace),
                ) {
                    actions.push((
                        "rollout",
                        Action::Rollout {
                            op,
                            namespace: ns,
                            name: r.name.clone(),
                            to_revision: r.to_revision,
                        },
                    ));
                }
            }
            for (field, value, on) in [
                ("cordon", &e.cordon, true),
                ("uncordon", &e.uncordon, false),
            ] {
                if let Some(n) = value {
                    if self.known_name(&format!("{at}.{field}"), "node", n, &node_names) {
                        actions.push((field, Action::Cordon(n.clone(), on)));
                    }
                }
            }
            if let Some(d) = &e.drain {
                if self.known_name(&format!("{at}.drain.node"), "node", &d.node, &node_names) {
                    actions.push((
                        "drain",
                        Action::Drain(DrainOptions {
                            node: d.node.clone(),
                            ignore_daemonsets: d.ignore_daemon_sets,
                            delete_emptydir_data: d.delete_empty_dir_data,
                            force: d.force,
                            grace_seconds: d.grace_period_seconds,
                            timeout: d.timeout.as_ref().map(|t| t.0).filter(|t| !t.is_zero()),
                            disable_eviction: d.disable_eviction,
                        }),
                    ));
                }
            }
            for (field, value, crash) in [
                ("crashNode", &e.crash_node, true),
                ("restartNode", &e.restart_node, false),
            ] {
                if let Some(n) = value {
                    let path = format!("{at}.{field}");
                    if self.known_name(&path, "node", n, &node_names)
                        && (crash || self.not_a_cloud_machine(&path, n, nodes))
                    {
                        let action = if crash {
                            Action::CrashNode(n.clone())
                        } else {
                            Action::RestartNode(n.clone())
                        };
                        actions.push((field, action));
                    }
                }
            }
            if let Some(m) = &e.crash_etcd {
                if m == "leader" {
                    actions.push(("crashEtcd", Action::CrashEtcd(EtcdTarget::Leader)));
                } else if let Some(idx) =
                    self.etcd_member(&format!("{at}.crashEtcd"), m, &etcd_names)
                {
                    actions.push(("crashEtcd", Action::CrashEtcd(EtcdTarget::Member(idx))));
                }
            }
            if let Some(m) = &e.restart_etcd {
                if m == "crashed" {
                    actions.push(("restartEtcd", Action::RestartEtcd(None)));
                } else if m == "leader" {
                    self.error(
                        &format!("{at}.restartEtcd"),
                        "restart a member by name (etcd-0…) or every crashed one (`crashed`); `leader` only makes sense for crashEtcd",
                    );
                } else if let Some(idx) =
                    self.etcd_member(&format!("{at}.restartEtcd"), m, &etcd_names)
                {
                    actions.push(("restartEtcd", Action::RestartEtcd(Some(idx))));
                }
            }
            if let Some(names) = &e.partition {
                let mut known: Vec<String> = node_names.iter().map(|s| s.to_string()).collect();
                known.extend(etcd_names.iter().cloned());
                known.push("kube-apiserver".into());
                known.push("kube-scheduler".into());
                known.push("kube-controller-manager".into());
                if self.autoscaled {
                    // The autoscaler, and the cloud API it calls.
                    known.push(crate::autoscaler::cluster_autoscaler::PROCESS.into());
                    known.push(crate::autoscaler::cloud::NAME.into());
                }
                let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
                let mut ok = true;
                for (j, n) in names.iter().enumerate() {
                    ok &= self.known_name(
                        &format!("{at}.partition[{j}]"),
                        "component",
                        n,
                        &known_refs,
                    );
                }
                if names.is_empty() {
                    self.error(
                        &format!("{at}.partition"),
                        "name at least one component to cut off",
                    );
                } else if ok {
                    actions.push(("partition", Action::Partition(names.clone())));
                }
            }
            actions.extend(self.component_fault_actions(&at, e, (&node_names, nodes), &etcd_names));
            {
                let mut components: Vec<&str> = etcd_names.iter().map(String::as_str).collect();
                components.extend([
                    "kube-apiserver",
                    "kube-scheduler",
                    "kube-controller-manager",
                ]);
                if self.autoscaled {
                    components.push(crate::autoscaler::cluster_autoscaler::PROCESS);
                }
                let names = fault_actions::Names {
                    nodes: &node_names,
                    components: &components,
                };
                let more = self.network_and_workload_faults(&at, e, &names, &known);
                actions.extend(more);
            }
            match e.heal {
                Some(true) => actions.push(("heal", Action::Heal)),
                Some(false) => self.error(
                    &format!("{at}.heal"),
                    "write `heal: true` to heal every partition, or leave it out",
                ),
                None => {}
            }
            if actions.is_empty() && already_reported_for(&self.errors, &at) {
                continue;
            }
            if actions.len() > 1 {
                let names: Vec<&str> = actions.iter().map(|(n, _)| *n).collect();
                self.error(
                    &at,
                    format!(
                        "one action per timeline entry, found {}: split them into entries with the same `at`",
                        names.join(", ")
                    ),
                );
                continue;
            }
            if actions.is_empty() && e.note.is_none() {
                self.error(
                    &at,
                    "an entry needs an action (apply, delete, scale, patch, setImage, rollout, cordon, uncordon, drain, crashNode, restartNode, crashEtcd, restartEtcd, partition, partitionOneWay, partitionBetween, heal, degradeLinks, restoreLinks, crashContainer, failImagePulls, restoreImagePulls, crashComponent, restartComponent, crashKubelet, restartKubelet, hangKubelet, resumeKubelet, slowDisk, healDisk) or a note",
                );
                continue;
            }
            if e.at.0 > duration {
                self.warnings.push(format!(
                    "{}: {at} at {} is after the end of the run ({duration}) and will not happen",
                    self.file, e.at.0
                ));
            }
            steps.push(Step {
                at: SimTime(e.at.0.nanos()),
                note: e.note.clone(),
                action: actions.pop().map(|(_, a)| a),
                line: self.pos(&at).map(|p| p.line).unwrap_or(0),
            });
        }
        for n in nodes {
            if let Some(at) = n.join_at {
                steps.push(Step {
                    at,
                    note: None,
                    action: Some(Action::JoinNode(n.name.clone())),
                    line: 0,
                });
            }
        }
        // Stable: entries at the same instant keep their file order.
        steps.sort_by_key(|s| s.at);
        steps
    }

    /// Applies a timeline patch to the object the scenario created, and
    /// checks the result as the apiserver would check the patched object
    /// (it answers 422 Invalid at run time): the error points into the patch
    /// at the field it names, else at the patch.
    fn check_patch(&mut self, at: &str, target: &Object, patch: &Json) {
        let msg = match crate::model::apiserver::merge_patch(target, patch) {
            // A patch of an immutable field (a Deployment's selector) is a
            // legal action the apiserver answers with a 422 at run time, as
            // kubectl shows it (a lesson may want exactly that): a warning
            // here, not an error.
            Ok(patched) => {
                let refused = crate::model::apiserver::immutable::validate_update(&patched, target);
                if let Err(msg) = refused {
                    let line = self.pos(at).map_or(0, |p| p.line);
                    self.warnings.push(format!(
                        "{}:{line}: {at}: the apiserver will refuse this patch of the object as \
                         applied (422 Invalid): {msg}",
                        self.file
                    ));
                }
                return;
            }
            Err(msg) => msg,
        };
        // merge_patch reports `field: message; …`.
        let field = msg.split(": ").next().unwrap_or("");
        let inside = node_at(self.doc, at)
            .and_then(|p| node_at(p, field))
            .is_some();
        let path = if inside && !field.is_empty() {
            format!("{at}.{field}")
        } else {
            at.to_string()
        };
        self.error(
            &path,
            format!("the patched {} would be refused: {msg}", target.kind.name()),
        );
    }

    fn object_ref(
        &mut self,
        at: &str,
        kind: &str,
        namespace: &Option<String>,
    ) -> Option<(Kind, String)> {
        let Some(k) = Kind::from_name(kind) else {
            let names: Vec<&str> = crate::api::kinds::KINDS.iter().map(|k| k.name).collect();
            let hint = closest(kind, &names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            self.error(
                &format!("{at}.kind"),
                format!("unknown kind `{kind}`{hint}"),
            );
            return None;
        };
        let ns = match (k.namespaced(), namespace) {
            (true, Some(ns)) => ns.clone(),
            (true, None) => "default".to_string(),
            (false, None) => String::new(),
            (false, Some(_)) => {
                self.error(
                    &format!("{at}.namespace"),
                    format!("{kind} is cluster-scoped and has no namespace"),
                );
                return None;
            }
        };
        Some((k, ns))
    }

    fn known_name(&mut self, at: &str, what: &str, name: &str, known: &[&str]) -> bool {
        if known.contains(&name) {
            return true;
        }
        let hint = closest(name, known)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let listed = if known.len() <= 8 {
            known.join(", ")
        } else {
            format!("{}, … ({} in all)", known[..6].join(", "), known.len())
        };
        let listed = if listed.is_empty() {
            "none: the cluster has no node pools".to_string()
        } else {
            listed
        };
        self.error(
            at,
            format!("no {what} named `{name}`{hint}; known: {listed}"),
        );
        false
    }

    fn etcd_member(&mut self, at: &str, name: &str, names: &[String]) -> Option<u32> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        if self.known_name(at, "etcd member", name, &refs) {
            names.iter().position(|n| n == name).map(|i| i as u32)
        } else {
            None
        }
    }

    /// Objects created into a namespace that nothing creates fail at run time,
    /// as they would against a real apiserver; say so up front.
    fn check_namespaces(
        &mut self,
        objects: &[Object],
        timeline: &[Step],
        workload_namespaces: &[String],
    ) {
        let mut known: BTreeSet<&str> = super::BUILTIN_NAMESPACES.iter().copied().collect();
        let applied = timeline.iter().filter_map(|s| match &s.action {
            Some(Action::Apply(objs)) => Some(objs.iter().map(|o| o.as_ref())),
            _ => None,
        });
        let all: Vec<&Object> = objects.iter().chain(applied.flatten()).collect();
        for o in &all {
            if o.kind == Kind::Namespace {
                known.insert(o.meta.name.as_str());
            }
        }
        let mut missing = BTreeSet::new();
        for o in &all {
            if o.kind.namespaced() && !known.contains(o.meta.namespace.as_str()) {
                missing.insert(o.meta.namespace.clone());
            }
        }
        // Where the workload submitter creates its objects.
        for ns in workload_namespaces {
            if !known.contains(ns.as_str()) {
                missing.insert(ns.clone());
            }
        }
        for ns in missing {
            self.warnings.push(format!(
                "{}: namespace `{ns}` is not created by this scenario: objects in it will be refused with 404 NotFound",
                self.file
            ));
        }
    }
}

/// Whether an error was already reported inside timeline entry `at`.
fn already_reported_for(errors: &[LoadError], at: &str) -> bool {
    let prefix = format!("{at}.");
    errors.iter().any(|x| x.field.starts_with(&prefix))
}

/// `Some(Ok(path))` for `{include: path}`, `Some(Err(..))` for a malformed one.
/// The key of a one-key entry that is neither a manifest nor an include but
/// reads as a misspelt `include:` (`incldue: x.yaml`): without this the
/// error would be the manifest's missing `apiVersion`.
fn misspelt_include(item: &Node) -> Option<&str> {
    let Value::Map(pairs) = &item.value else {
        return None;
    };
    let [(key, _)] = pairs.as_slice() else {
        return None;
    };
    let key = key.as_str()?;
    (key != "include" && closest(key, &["include"]).is_some()).then_some(key)
}

fn include_of(item: &Node) -> Option<Result<&str, String>> {
    let Value::Map(pairs) = &item.value else {
        return None;
    };
    let inc = item.get("include")?;
    if pairs.len() != 1 {
        return Some(Err(
            "an `include:` entry has no other fields; put manifests in the included file".into(),
        ));
    }
    match inc.as_str() {
        Some(s) if !s.is_empty() => Some(Ok(s)),
        _ => Some(Err(format!(
            "include: expected a file path, found {}",
            inc.describe()
        ))),
    }
}

fn positive_bytes(q: &Quantity) -> Option<u64> {
    let v = q.value();
    (v > 0).then_some(v as u64)
}

fn non_negative_bytes(q: &Quantity) -> Option<u64> {
    let v = q.value();
    (v >= 0).then_some(v as u64)
}

/// The pod CIDR of the `i`th node: a /24 of 10.64.0.0/10.
pub fn pod_cidr(i: usize) -> String {
    format!("10.{}.{}.0/24", 64 + (i / 256) % 64, i % 256)
}

/// The labels every kubelet sets on its Node (`kubernetes.io/arch`,
/// `hostname`, `os`), whatever the node's origin: a pool, a trace, a manifest.
pub fn kubelet_labels(name: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/arch".to_string(), "amd64".to_string());
    labels.insert("kubernetes.io/hostname".to_string(), name.to_string());
    labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
    labels
}

/// The addresses the kubelet of the `i`-th node reports.
pub fn node_addresses(i: usize, name: &str) -> Vec<(String, String)> {
    vec![
        ("InternalIP".to_string(), node_ip(i)),
        ("Hostname".to_string(), name.to_string()),
    ]
}

/// The InternalIP of the `i`th node, in 10.0.0.0/16.
pub fn node_ip(i: usize) -> String {
    format!("10.0.{}.{}", (i / 250) % 256, i % 250 + 1)
}
