//! The Pod: a shared, immutable spec model plus per-pod placement and status.
//!
//! Replicas of one template share one `Arc<PodSpecModel>`, so 150,000 pods
//! cost their status and metadata, not 150,000 copies of a spec.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Map, Value as Json};

use super::quantity::Quantity;
use super::resources::{self, add_into, max_into, ResourceList};
use crate::sim::{parse_duration, SimDuration, SimTime};

/// Annotation: app containers exit after this long running (`30s`).
pub const ANNOTATION_RUN_FOR: &str = "kubesim.io/run-for";
/// Annotation: exit code when they do (default 0).
pub const ANNOTATION_EXIT_CODE: &str = "kubesim.io/exit-code";
/// Annotation: readiness probes start passing this long after the container starts.
/// The chance (0 to 1) that each run of a main container fails, exiting with
/// `exit-code` (1 if that is 0): flaky batch work, drawn from the kubelet's
/// seeded stream.
pub const ANNOTATION_FAILURE_RATE: &str = "kubesim.io/failure-rate";
pub const ANNOTATION_READY_AFTER: &str = "kubesim.io/ready-after";
/// Annotation: how long the app takes to exit after SIGTERM (default 0s);
/// the kubelet kills it at the grace period regardless.
pub const ANNOTATION_STOP_AFTER: &str = "kubesim.io/stop-after";
/// Annotation: init containers run this long each (default 1s).
pub const ANNOTATION_INIT_RUN_FOR: &str = "kubesim.io/init-run-for";
/// Annotation: the liveness probe of every container that has one (app
/// containers and sidecars) fails from this long after the container
/// started; the kubelet restarts it, and the new container fails again.
pub const ANNOTATION_LIVENESS_FAILS_AFTER: &str = "kubesim.io/liveness-fails-after";
/// Annotation: the chance (0 to 1) that each liveness probe run fails.
pub const ANNOTATION_LIVENESS_FAILURE_RATE: &str = "kubesim.io/liveness-failure-rate";
/// Annotation: readiness probes fail from this long after the container
/// started, for `readiness-fails-for` (default: for good).
pub const ANNOTATION_READINESS_FAILS_AFTER: &str = "kubesim.io/readiness-fails-after";
pub const ANNOTATION_READINESS_FAILS_FOR: &str = "kubesim.io/readiness-fails-for";
/// Annotation: the chance (0 to 1) that each readiness probe run fails.
pub const ANNOTATION_READINESS_FAILURE_RATE: &str = "kubesim.io/readiness-failure-rate";
/// Annotation: how long an `exec` or `httpGet` preStop hook runs (default 0s).
pub const ANNOTATION_PRESTOP_DURATION: &str = "kubesim.io/prestop-duration";
/// Annotation: `"true"`: `exec` and `httpGet` preStop hooks fail (a non-zero
/// exit, an HTTP error), which the kubelet reports as `FailedPreStopHook`.
pub const ANNOTATION_PRESTOP_FAILS: &str = "kubesim.io/prestop-fails";

/// How a probe or hook reaches the container, for the failure messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeHandler {
    Exec,
    HttpGet { port: String },
    TcpSocket { port: String },
    Grpc { port: i32 },
}

impl ProbeHandler {
    fn of_probe(p: &core::Probe) -> ProbeHandler {
        let port = |p: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString| match p {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
        };
        if let Some(h) = &p.http_get {
            ProbeHandler::HttpGet {
                port: port(&h.port),
            }
        } else if let Some(t) = &p.tcp_socket {
            ProbeHandler::TcpSocket {
                port: port(&t.port),
            }
        } else if let Some(g) = &p.grpc {
            ProbeHandler::Grpc { port: g.port }
        } else {
            ProbeHandler::Exec
        }
    }
}

/// A container's `lifecycle.preStop` handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreStopModel {
    /// `exec` or `httpGet`: runs `kubesim.io/prestop-duration`, and fails
    /// when `kubesim.io/prestop-fails` says so.
    Run { duration: SimDuration, fails: bool },
    /// `sleep.seconds` (PodLifecycleSleepAction, GA in 1.34): never fails.
    Sleep(SimDuration),
    /// `tcpSocket`: accepted by validation for compatibility only; the
    /// handler runner refuses it at once ("Cannot run handler").
    Unsupported,
}

/// A probe's timing, with Kubernetes' defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeModel {
    pub initial_delay: SimDuration,
    pub period: SimDuration,
    pub timeout: SimDuration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe-level `terminationGracePeriodSeconds` (liveness, startup).
    pub termination_grace: Option<SimDuration>,
    pub handler: ProbeHandler,
}

/// Which of a container's probes: validation differs by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeKind {
    Readiness,
    Liveness,
    Startup,
}

impl ProbeKind {
    fn field(self) -> &'static str {
        match self {
            ProbeKind::Readiness => "readinessProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Startup => "startupProbe",
        }
    }
}

impl ProbeModel {
    /// Upstream's `validateProbe` and the container checks beside it, then
    /// `SetDefaults_Probe`: a zero (unset, as Go's omitempty sees it)
    /// timeout is 1 s, period 10 s, success threshold 1, failure threshold
    /// 3. Without the defaulting a `periodSeconds: 0` probe would be re-run
    /// at the same instant for ever.
    fn from_api(
        p: &core::Probe,
        kind: ProbeKind,
        container: &str,
    ) -> Result<ProbeModel, SpecError> {
        let at = |f: &str| format!("{container}.{}.{f}", kind.field());
        for (f, v) in [
            ("initialDelaySeconds", p.initial_delay_seconds),
            ("timeoutSeconds", p.timeout_seconds),
            ("periodSeconds", p.period_seconds),
            ("successThreshold", p.success_threshold),
            ("failureThreshold", p.failure_threshold),
        ] {
            if let Some(v) = v.filter(|v| *v < 0) {
                return Err((
                    at(f),
                    format!("Invalid value: {v}: must be greater than or equal to 0"),
                ));
            }
        }
        let or_default = |v: Option<i32>, d: i32| v.filter(|v| *v != 0).unwrap_or(d);
        let success = or_default(p.success_threshold, 1);
        if kind != ProbeKind::Readiness && success != 1 {
            return Err((
                at("successThreshold"),
                format!("Invalid value: {success}: must be 1"),
            ));
        }
        if let Some(g) = p.termination_grace_period_seconds {
            if kind == ProbeKind::Readiness {
                return Err((
                    at("terminationGracePeriodSeconds"),
                    format!("Invalid value: {g}: must not be set for readinessProbes"),
                ));
            }
            if g <= 0 {
                return Err((
                    at("terminationGracePeriodSeconds"),
                    format!("Invalid value: {g}: must be greater than 0"),
                ));
            }
        }
        let secs = |v: i32| SimDuration::from_secs(v as u64);
        Ok(ProbeModel {
            initial_delay: secs(p.initial_delay_seconds.unwrap_or(0)),
            period: secs(or_default(p.period_seconds, 10)),
            timeout: secs(or_default(p.timeout_seconds, 1)),
            success_threshold: success as u32,
            failure_threshold: or_default(p.failure_threshold, 3) as u32,
            termination_grace: p
                .termination_grace_period_seconds
                .map(|g| SimDuration::from_secs(g as u64)),
            handler: ProbeHandler::of_probe(p),
        })
    }
}

/// What the simulation needs of one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerModel {
    pub name: String,
    pub image: String,
    pub requests: ResourceList,
    pub limits: ResourceList,
    pub readiness: Option<ProbeModel>,
    pub startup: Option<ProbeModel>,
    pub liveness: Option<ProbeModel>,
    pub pre_stop: Option<PreStopModel>,
    /// Runs this long, then exits; `None` runs until stopped.
    pub run_for: Option<SimDuration>,
    pub exit_code: i32,
    /// Chance that a run fails instead (exiting with `exit_code`, or 1).
    pub failure_rate: f64,
    /// A sidecar: an init container with `restartPolicy: Always`.
    pub sidecar: bool,
}

/// When probes fail, from the pod's `kubesim.io/` annotations: a probe
/// run fails if the container has run for `*_fails_after` (and, for
/// readiness, not yet `*_fails_after + readiness_fails_for`), or with the
/// given chance, drawn from the kubelet's seeded stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeFaults {
    pub liveness_fails_after: Option<SimDuration>,
    pub liveness_failure_rate: f64,
    pub readiness_fails_after: Option<SimDuration>,
    pub readiness_fails_for: Option<SimDuration>,
    pub readiness_failure_rate: f64,
}

/// The pod spec as the simulation reads it, plus the original for output.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSpecModel {
    pub containers: Vec<ContainerModel>,
    pub init_containers: Vec<ContainerModel>,
    pub restart_policy: RestartPolicy,
    pub termination_grace: SimDuration,
    pub scheduler_name: String,
    pub priority: i32,
    pub priority_class_name: String,
    /// Effective request for admission and scheduling.
    pub requests: ResourceList,
    pub ready_after: SimDuration,
    pub stop_after: SimDuration,
    /// When and how often probes fail (the `kubesim.io/` probe annotations).
    pub faults: ProbeFaults,
    /// The spec as written (with defaults applied), for the trace.
    pub json: Arc<Json>,
    /// The typed spec, for the scheduler's plugins.
    pub api: Arc<core::PodSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }
}

/// `pod` with its spec replaced by `api`, rebuilt into the model (what an
/// admission plugin that mutates the spec produces).
pub fn with_spec(pod: &super::Object, api: &core::PodSpec) -> Result<super::Object, String> {
    let body = pod.as_pod().ok_or("not a pod")?;
    let spec = PodSpecModel::from_api(api, &pod.meta.annotations)
        .map_err(|(path, msg)| format!("spec.{path}: {msg}"))?;
    let mut out = pod.clone();
    out.body = super::object::Body::Pod(PodBody {
        spec: Arc::new(spec),
        ..body.clone()
    });
    Ok(out)
}

/// `pod` with its spec replaced by an already built model (a spec equal to
/// one admitted before, shared rather than rebuilt).
pub fn with_shared_spec(pod: &super::Object, spec: Arc<PodSpecModel>) -> super::Object {
    let mut out = pod.clone();
    if let super::object::Body::Pod(body) = &mut out.body {
        body.spec = spec;
    }
    out
}

/// Where a spec field failed validation: a path below `spec` and a message.
pub type SpecError = (String, String);

impl PodSpecModel {
    /// Builds the model from an API spec and the pod's annotations.
    pub fn from_api(
        spec: &core::PodSpec,
        annotations: &BTreeMap<String, String>,
    ) -> Result<PodSpecModel, SpecError> {
        let dur = |key: &str| -> Result<Option<SimDuration>, SpecError> {
            match annotations.get(key) {
                None => Ok(None),
                Some(v) => parse_duration(v)
                    .map(Some)
                    .map_err(|e| (format!("metadata.annotations.{key}"), e.0)),
            }
        };
        let run_for = dur(ANNOTATION_RUN_FOR)?;
        let init_run_for = dur(ANNOTATION_INIT_RUN_FOR)?.unwrap_or(SimDuration::from_secs(1));
        let ready_after = dur(ANNOTATION_READY_AFTER)?.unwrap_or_default();
        let stop_after = dur(ANNOTATION_STOP_AFTER)?.unwrap_or_default();
        let exit_code = match annotations.get(ANNOTATION_EXIT_CODE) {
            None => 0,
            Some(v) => v.trim().parse::<i32>().map_err(|_| {
                (
                    format!("metadata.annotations.{ANNOTATION_EXIT_CODE}"),
                    format!("`{v}` is not an integer exit code"),
                )
            })?,
        };
        let rate = |key: &str| -> Result<f64, SpecError> {
            match annotations.get(key) {
                None => Ok(0.0),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                    _ => Err((
                        format!("metadata.annotations.{key}"),
                        format!("`{v}` is not a probability between 0 and 1"),
                    )),
                },
            }
        };
        let failure_rate = rate(ANNOTATION_FAILURE_RATE)?;
        let faults = ProbeFaults {
            liveness_fails_after: dur(ANNOTATION_LIVENESS_FAILS_AFTER)?,
            liveness_failure_rate: rate(ANNOTATION_LIVENESS_FAILURE_RATE)?,
            readiness_fails_after: dur(ANNOTATION_READINESS_FAILS_AFTER)?,
            readiness_fails_for: dur(ANNOTATION_READINESS_FAILS_FOR)?,
            readiness_failure_rate: rate(ANNOTATION_READINESS_FAILURE_RATE)?,
        };
        let hook_run = PreStopModel::Run {
            duration: dur(ANNOTATION_PRESTOP_DURATION)?.unwrap_or_default(),
            fails: match annotations.get(ANNOTATION_PRESTOP_FAILS).map(|v| v.trim()) {
                None | Some("false") => false,
                Some("true") => true,
                Some(v) => {
                    return Err((
                        format!("metadata.annotations.{ANNOTATION_PRESTOP_FAILS}"),
                        format!("`{v}` is not \"true\" or \"false\""),
                    ))
                }
            },
        };
        let pre_stop = |c: &core::Container| -> Option<PreStopModel> {
            let h = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
            Some(if let Some(s) = &h.sleep {
                PreStopModel::Sleep(SimDuration::from_secs(s.seconds.max(0) as u64))
            } else if h.exec.is_some() || h.http_get.is_some() {
                hook_run.clone()
            } else {
                PreStopModel::Unsupported
            })
        };
        let container =
            |c: &core::Container, path: String, init: bool| -> Result<ContainerModel, SpecError> {
                let res = c.resources.as_ref();
                let requests = resources::parse_list(res.and_then(|r| r.requests.as_ref()))
                    .map_err(|(k, e)| (format!("{path}.resources.requests.{k}"), e.0))?;
                let limits = resources::parse_list(res.and_then(|r| r.limits.as_ref()))
                    .map_err(|(k, e)| (format!("{path}.resources.limits.{k}"), e.0))?;
                resources::validate_requirements(&requests, &limits, &format!("{path}.resources"))?;
                // A container with limits and no requests requests its limits.
                let mut eff = limits.clone();
                for (k, v) in &requests {
                    eff.insert(k.clone(), *v);
                }
                let sidecar = init && c.restart_policy.as_deref() == Some("Always");
                let probe = |p: Option<&core::Probe>, kind| {
                    p.map(|p| ProbeModel::from_api(p, kind, &path)).transpose()
                };
                Ok(ContainerModel {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    requests: eff,
                    limits,
                    readiness: probe(c.readiness_probe.as_ref(), ProbeKind::Readiness)?,
                    startup: probe(c.startup_probe.as_ref(), ProbeKind::Startup)?,
                    // Ordinary init containers run no probes (validation
                    // forbids them); sidecars and app containers do.
                    liveness: if init && !sidecar {
                        None
                    } else {
                        probe(c.liveness_probe.as_ref(), ProbeKind::Liveness)?
                    },
                    pre_stop: if init && !sidecar { None } else { pre_stop(c) },
                    run_for: if init && !sidecar {
                        Some(init_run_for)
                    } else if init {
                        None
                    } else {
                        run_for
                    },
                    exit_code: if init { 0 } else { exit_code },
                    failure_rate: if init { 0.0 } else { failure_rate },
                    sidecar,
                })
            };
        let containers = spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| container(c, format!("spec.containers[{i}]"), false))
            .collect::<Result<Vec<_>, _>>()?;
        let init_containers = spec
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| container(c, format!("spec.initContainers[{i}]"), true))
            .collect::<Result<Vec<_>, _>>()?;
        let restart_policy = match spec.restart_policy.as_deref() {
            None | Some("Always") => RestartPolicy::Always,
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            Some(other) => {
                return Err((
                    "spec.restartPolicy".into(),
                    format!("Unsupported value: \"{other}\": supported values: \"Always\", \"OnFailure\", \"Never\""),
                ))
            }
        };
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        if grace < 0 {
            return Err((
                "spec.terminationGracePeriodSeconds".into(),
                "must be greater than or equal to 0".into(),
            ));
        }
        if let Some(d) = spec
            .active_deadline_seconds
            .filter(|d| !(1..=i64::from(i32::MAX)).contains(d))
        {
            return Err((
                "spec.activeDeadlineSeconds".into(),
                format!("Invalid value: {d}: must be between 1 and 2147483647, inclusive"),
            ));
        }
        let requests = effective_requests(&containers, &init_containers, spec)?;
        let mut json = serde_json::to_value(spec).unwrap_or(Json::Null);
        if let Json::Object(m) = &mut json {
            // The defaults the apiserver fills in, so the trace shows what a
            // real cluster would store.
            m.entry("restartPolicy")
                .or_insert(json!(restart_policy.as_str()));
            m.entry("terminationGracePeriodSeconds")
                .or_insert(json!(grace));
            m.entry("schedulerName")
                .or_insert(json!("default-scheduler"));
            m.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
            m.entry("enableServiceLinks").or_insert(json!(true));
            m.entry("preemptionPolicy")
                .or_insert(json!("PreemptLowerPriority"));
            m.entry("priority")
                .or_insert(json!(spec.priority.unwrap_or(0)));
        }
        Ok(PodSpecModel {
            containers,
            init_containers,
            restart_policy,
            termination_grace: SimDuration::from_secs(grace as u64),
            scheduler_name: spec
                .scheduler_name
                .clone()
                .unwrap_or_else(|| "default-scheduler".into()),
            priority: spec.priority.unwrap_or(0),
            priority_class_name: spec.priority_class_name.clone().unwrap_or_default(),
            requests,
            ready_after,
            stop_after,
            faults,
            json: Arc::new(json),
            api: Arc::new(spec.clone()),
        })
    }
}

/// The pod's effective request: the larger of the app containers' sum (plus
/// sidecars) and each init container's request (plus the sidecars started
/// before it), plus overhead; replaced by pod-level `spec.resources` where set.
fn effective_requests(
    containers: &[ContainerModel],
    init: &[ContainerModel],
    spec: &core::PodSpec,
) -> Result<ResourceList, SpecError> {
    let mut sum = ResourceList::new();
    for c in containers {
        add_into(&mut sum, &c.requests);
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in init {
        if c.sidecar {
            add_into(&mut sidecars, &c.requests);
        } else {
            let mut need = sidecars.clone();
            add_into(&mut need, &c.requests);
            max_into(&mut init_max, &need);
        }
    }
    add_into(&mut sum, &sidecars);
    max_into(&mut sum, &init_max);
    let overhead = resources::parse_list(spec.overhead.as_ref())
        .map_err(|(k, e)| (format!("spec.overhead.{k}"), e.0))?;
    add_into(&mut sum, &overhead);
    if let Some(pod_level) = spec.resources.as_ref() {
        let requests = resources::parse_list(pod_level.requests.as_ref())
            .map_err(|(k, e)| (format!("spec.resources.requests.{k}"), e.0))?;
        let limits = resources::parse_list(pod_level.limits.as_ref())
            .map_err(|(k, e)| (format!("spec.resources.limits.{k}"), e.0))?;
        resources::validate_requirements(&requests, &limits, "spec.resources")?;
        for (k, v) in limits.iter().chain(requests.iter()) {
            sum.insert(k.clone(), *v);
        }
    }
    sum.retain(|_, v| !v.is_zero());
    Ok(sum)
}

/// `status.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl PodPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }
}

/// A container's state as the kubelet reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Waiting {
        reason: &'static str,
        message: String,
    },
    Running {
        started: SimTime,
    },
    Terminated {
        exit_code: i32,
        reason: &'static str,
        started: SimTime,
        finished: SimTime,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub last_state: Option<ContainerState>,
    pub ready: bool,
    pub started: bool,
    pub restart_count: u32,
}

/// One entry of `status.conditions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: bool,
    pub last_transition: SimTime,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodStatus {
    pub phase: PodPhase,
    pub conditions: Vec<Condition>,
    pub init_container_statuses: Vec<ContainerStatus>,
    pub container_statuses: Vec<ContainerStatus>,
    pub host_ip: Option<String>,
    pub pod_ip: Option<String>,
    pub start_time: Option<SimTime>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Set by the scheduler after preempting pods on that node for this one.
    pub nominated_node_name: Option<String>,
    /// `resourceClaimStatuses`: (pod claim name, generated ResourceClaim
    /// name), written by the resourceclaim controller for template claims.
    pub resource_claim_statuses: Vec<(String, Option<String>)>,
}

impl Default for PodStatus {
    fn default() -> Self {
        PodStatus {
            phase: PodPhase::Pending,
            conditions: Vec::new(),
            init_container_statuses: Vec::new(),
            container_statuses: Vec::new(),
            host_ip: None,
            pod_ip: None,
            start_time: None,
            reason: None,
            message: None,
            nominated_node_name: None,
            resource_claim_statuses: Vec::new(),
        }
    }
}

impl PodStatus {
    pub fn condition(&self, t: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == t)
    }

    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status)
    }

    /// Sets a condition, keeping its transition time when the status is unchanged.
    pub fn set_condition(
        &mut self,
        type_: &'static str,
        status: bool,
        now: SimTime,
        reason: Option<&str>,
    ) {
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.status = status;
                    c.last_transition = now;
                }
                c.reason = reason.map(str::to_string);
            }
            None => self.conditions.push(Condition {
                type_,
                status,
                last_transition: now,
                reason: reason.map(str::to_string),
                message: None,
            }),
        }
    }
}

/// A pod's kind-specific body.
#[derive(Clone, Debug)]
pub struct PodBody {
    pub spec: Arc<PodSpecModel>,
    pub node_name: Option<String>,
    pub status: PodStatus,
}

/// Field by field, as derived, except that one shared spec is equal to
/// itself without a walk through it: a pod's spec is shared by every copy
/// of the pod (the store, the watch cache, each informer), and comparing
/// it deeply on every write was a few percent of a large run.
impl PartialEq for PodBody {
    fn eq(&self, other: &PodBody) -> bool {
        (Arc::ptr_eq(&self.spec, &other.spec) || self.spec == other.spec)
            && self.node_name == other.node_name
            && self.status == other.status
    }
}

impl PodBody {
    pub fn new(spec: Arc<PodSpecModel>, node_name: Option<String>) -> Self {
        PodBody {
            spec,
            node_name,
            status: PodStatus::default(),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self.status.phase, PodPhase::Succeeded | PodPhase::Failed)
    }

    pub(crate) fn write_json(&self, m: &mut Map<String, Json>) {
        let mut spec = (*self.spec.json).clone();
        if let (Json::Object(s), Some(n)) = (&mut spec, &self.node_name) {
            s.insert("nodeName".into(), json!(n));
        }
        m.insert("spec".into(), spec);
        m.insert("status".into(), status_json(&self.status));
    }
}

fn state_json(s: &ContainerState) -> Json {
    match s {
        ContainerState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        ContainerState::Running { started } => json!({"running": {"startedAt": started.rfc3339()}}),
        ContainerState::Terminated {
            exit_code,
            reason,
            started,
            finished,
        } => json!({"terminated": {
            "exitCode": exit_code, "reason": reason,
            "startedAt": started.rfc3339(), "finishedAt": finished.rfc3339()}}),
    }
}

fn container_status_json(c: &ContainerStatus) -> Json {
    let mut v = json!({
        "name": c.name, "image": c.image, "imageID": "", "ready": c.ready, "started": c.started,
        "restartCount": c.restart_count, "state": state_json(&c.state),
    });
    v["lastState"] = c.last_state.as_ref().map(state_json).unwrap_or(json!({}));
    v
}

fn status_json(s: &PodStatus) -> Json {
    let mut m = Map::new();
    m.insert("phase".into(), json!(s.phase.as_str()));
    if !s.conditions.is_empty() {
        let cs: Vec<Json> = s
            .conditions
            .iter()
            .map(|c| {
                let mut v = json!({"type": c.type_, "status": if c.status {"True"} else {"False"},
                                   "lastTransitionTime": c.last_transition.rfc3339(), "lastProbeTime": null});
                if let Some(r) = &c.reason {
                    v["reason"] = json!(r);
                }
                if let Some(msg) = &c.message {
                    v["message"] = json!(msg);
                }
                v
            })
            .collect();
        m.insert("conditions".into(), Json::Array(cs));
    }
    if let Some(ip) = &s.host_ip {
        m.insert("hostIP".into(), json!(ip));
    }
    if let Some(ip) = &s.pod_ip {
        m.insert("podIP".into(), json!(ip));
    }
    if let Some(t) = s.start_time {
        m.insert("startTime".into(), json!(t.rfc3339()));
    }
    if let Some(r) = &s.reason {
        m.insert("reason".into(), json!(r));
    }
    if let Some(r) = &s.message {
        m.insert("message".into(), json!(r));
    }
    if let Some(n) = &s.nominated_node_name {
        m.insert("nominatedNodeName".into(), json!(n));
    }
    if !s.resource_claim_statuses.is_empty() {
        let list: Vec<Json> = s
            .resource_claim_statuses
            .iter()
            .map(|(name, claim)| match claim {
                Some(c) => json!({"name": name, "resourceClaimName": c}),
                None => json!({ "name": name }),
            })
            .collect();
        m.insert("resourceClaimStatuses".into(), Json::Array(list));
    }
    if !s.init_container_statuses.is_empty() {
        m.insert(
            "initContainerStatuses".into(),
            Json::Array(
                s.init_container_statuses
                    .iter()
                    .map(container_status_json)
                    .collect(),
            ),
        );
    }
    if !s.container_statuses.is_empty() {
        m.insert(
            "containerStatuses".into(),
            Json::Array(
                s.container_statuses
                    .iter()
                    .map(container_status_json)
                    .collect(),
            ),
        );
    }
    Json::Object(m)
}

/// Total requests of `pods`, plus their count as the `pods` resource.
pub fn sum_requests<'a>(pods: impl Iterator<Item = &'a PodSpecModel>) -> ResourceList {
    let mut total = ResourceList::new();
    let mut n = 0i64;
    for p in pods {
        add_into(&mut total, &p.requests);
        n += 1;
    }
    total.insert("pods".into(), Quantity::from_units(n));
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(v: serde_json::Value) -> core::Probe {
        serde_json::from_value(v).expect("a probe")
    }

    #[test]
    fn zero_probe_fields_take_upstream_defaults() {
        // SetDefaults_Probe: 0 is unset, so period 10 s, timeout 1 s,
        // success 1, failure 3. The old model kept a 0 s period, and the
        // prober re-ran at the same instant for ever.
        let p = probe(
            serde_json::json!({"tcpSocket": {"port": 80}, "periodSeconds": 0,
            "timeoutSeconds": 0, "successThreshold": 0, "failureThreshold": 0}),
        );
        let m = ProbeModel::from_api(&p, ProbeKind::Liveness, "spec.containers[0]").unwrap();
        assert_eq!(m.period, SimDuration::from_secs(10));
        assert_eq!(m.timeout, SimDuration::from_secs(1));
        assert_eq!((m.success_threshold, m.failure_threshold), (1, 3));
    }

    #[test]
    fn negative_probe_fields_and_liveness_success_above_one_are_refused() {
        let p = probe(serde_json::json!({"exec": {}, "periodSeconds": -1}));
        let (path, msg) =
            ProbeModel::from_api(&p, ProbeKind::Readiness, "spec.containers[0]").unwrap_err();
        assert_eq!(path, "spec.containers[0].readinessProbe.periodSeconds");
        assert_eq!(msg, "Invalid value: -1: must be greater than or equal to 0");
        // Readiness may need 2 successes; liveness and startup must say 1.
        let p = probe(serde_json::json!({"exec": {}, "successThreshold": 2}));
        assert!(ProbeModel::from_api(&p, ProbeKind::Readiness, "c").is_ok());
        let (_, msg) = ProbeModel::from_api(&p, ProbeKind::Startup, "c").unwrap_err();
        assert_eq!(msg, "Invalid value: 2: must be 1");
    }

    #[test]
    fn negative_requests_and_requests_over_limits_are_refused() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        let requests: ResourceList = [("cpu".to_string(), q("2"))].into();
        let limits: ResourceList = [("cpu".to_string(), q("1"))].into();
        let (path, msg) =
            resources::validate_requirements(&requests, &limits, "c.resources").unwrap_err();
        assert_eq!(path, "c.resources.requests.cpu");
        assert!(
            msg.contains("must be less than or equal to cpu limit of 1"),
            "{msg}"
        );
        let negative: ResourceList = [("memory".to_string(), q("-1Mi"))].into();
        let (path, _) =
            resources::validate_requirements(&negative, &ResourceList::new(), "c").unwrap_err();
        assert_eq!(path, "c.requests.memory");
    }
}
