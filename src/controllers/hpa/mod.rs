//! The HorizontalPodAutoscaler controller (`pkg/controller/podautoscaler`):
//! every 15 s it reads the CPU use of the target's pods, asks the replica
//! calculator for a count, passes it through the behavior's stabilisation
//! windows and rate limits, and scales the target (a Deployment,
//! StatefulSet or ReplicaSet) when the answer differs.
//!
//! CPU use comes from the scenario's load profiles, sampled at
//! metrics-server's 15 s scrape instants: a pod has a sample once it has
//! been running since the last scrape, and a ready pod's use is its share
//! of the offered load. A target without a load profile has no metrics,
//! and the HPA says so as upstream's does.

pub mod behavior;
pub mod replicas;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workload::{body_path, json_body, key_of, selector, split_key, update_status};
use super::workqueue::WorkQueue;
use crate::api::pod::PodPhase;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, PatchOp, Verb};
use crate::model::load::LoadProfile;
use crate::sim::{SimDuration, SimTime};
use behavior::{History, Rules};
use replicas::{PodSample, Target};

/// `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: SimDuration = SimDuration::from_secs(15);
/// metrics-server's `--metric-resolution`.
pub const SCRAPE_INTERVAL: SimDuration = SimDuration::from_secs(15);
/// The target utilisation when an HPA lists no metrics.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

pub struct HorizontalPodAutoscalerController {
    load: Vec<LoadProfile>,
    history: BTreeMap<String, History>,
}

impl HorizontalPodAutoscalerController {
    pub fn new(load: Vec<LoadProfile>) -> Self {
        HorizontalPodAutoscalerController {
            load,
            history: BTreeMap::new(),
        }
    }

    /// The latest scrape instant at or before `now`.
    fn scrape_at(now: SimTime) -> SimTime {
        let n = SCRAPE_INTERVAL.nanos();
        SimTime(now.nanos() / n * n)
    }

    /// What the resource metrics API reports for the target's pods.
    fn samples(&self, target: &Object, pods: &[&Arc<Object>], now: SimTime) -> Vec<PodSample> {
        let profile = self
            .load
            .iter()
            .find(|p| p.targets(target.kind, &target.meta.namespace, &target.meta.name));
        let scrape = Self::scrape_at(now);
        let ready_now = pods
            .iter()
            .filter(|p| {
                p.meta.deletion.is_none() && p.as_pod().is_some_and(|b| b.status.is_ready())
            })
            .count();
        pods.iter()
            .filter_map(|p| {
                let b = p.as_pod()?;
                let request_milli: i64 = b
                    .spec
                    .containers
                    .iter()
                    .map(|c| c.requests.get("cpu").map_or(0, |q| q.milli_value()))
                    .sum();
                let running_since_scrape = b.status.phase == PodPhase::Running
                    && b.status.start_time.is_some_and(|s| s <= scrape);
                let usage = match (profile, running_since_scrape) {
                    (Some(prof), true) => {
                        let serving = b.status.is_ready();
                        let u = if serving {
                            prof.pod_cpu_milli(scrape, ready_now)
                        } else {
                            prof.idle_cpu_milli
                        };
                        Some((u, scrape))
                    }
                    _ => None,
                };
                Some(PodSample {
                    name: p.meta.name.clone(),
                    ignored: p.meta.deletion.is_some() || b.status.phase == PodPhase::Failed,
                    pending: b.status.phase == PodPhase::Pending,
                    request_milli,
                    usage,
                    start: b.status.start_time,
                    ready: b
                        .status
                        .condition("Ready")
                        .map(|c| (c.status, c.last_transition)),
                })
            })
            .collect()
    }
}

/// The CPU targets of an HPA (v2 `metrics`, or v1's percentage).
fn cpu_targets(hpa: &Object) -> Result<Vec<Target>, String> {
    let spec = body_path(hpa, &["spec"]).cloned().unwrap_or(json!({}));
    if let Some(p) = spec
        .get("targetCPUUtilizationPercentage")
        .and_then(Json::as_i64)
    {
        return Ok(vec![Target::Utilization(p)]);
    }
    let metrics = spec
        .get("metrics")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    if metrics.is_empty() {
        return Ok(vec![Target::Utilization(DEFAULT_CPU_UTILIZATION)]);
    }
    let mut out = Vec::new();
    for m in &metrics {
        let type_ = m["type"].as_str().unwrap_or("");
        if type_ != "Resource" || m["resource"]["name"] != "cpu" {
            return Err(format!(
                "metric type {type_} ({}) is not simulated: kubesim models CPU resource metrics from load profiles",
                m["resource"]["name"].as_str().unwrap_or("-")
            ));
        }
        let t = &m["resource"]["target"];
        match t["type"].as_str() {
            Some("Utilization") => out.push(Target::Utilization(
                t["averageUtilization"]
                    .as_i64()
                    .unwrap_or(DEFAULT_CPU_UTILIZATION),
            )),
            Some("AverageValue") => {
                let q = crate::api::quantity::Quantity::parse(
                    t["averageValue"].as_str().unwrap_or("0"),
                )
                .map_err(|_| "averageValue is not a quantity".to_string())?;
                out.push(Target::AverageValue(q.milli_value() as f64));
            }
            other => {
                return Err(format!(
                    "target type {other:?} is not supported for a resource metric"
                ))
            }
        }
    }
    Ok(out)
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: SimTime,
    old: Option<&Json>,
) -> Json {
    let status_s = if status { "True" } else { "False" };
    let since = old
        .and_then(|o| o.as_array())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == type_ && c["status"] == status_s)
        })
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
        .unwrap_or_else(|| now.rfc3339());
    json!({"type": type_, "status": status_s, "lastTransitionTime": since, "reason": reason, "message": message})
}

impl Controller for HorizontalPodAutoscalerController {
    fn name(&self) -> &'static str {
        "horizontal-pod-autoscaler"
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        if ev.kind == Kind::HorizontalPodAutoscaler {
            let k = key_of(ev.object());
            if ev.new.is_none() {
                self.history.remove(&k);
            }
            // Only a new object or a spec change triggers a sync between
            // the periodic ones.
            let spec_changed = match (&ev.old, &ev.new) {
                (Some(o), Some(n)) => o.meta.generation != n.meta.generation,
                _ => true,
            };
            if spec_changed {
                queue.add(&k);
            }
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(hpa) = cx
            .cache
            .get(Kind::HorizontalPodAutoscaler, ns, name)
            .cloned()
        else {
            self.history.remove(key);
            return;
        };
        cx.requeue_after(SYNC_PERIOD);
        let now = cx.now;
        let old_status = json_body(&hpa).and_then(|m| m.get("status")).cloned();
        let old_conditions = old_status.as_ref().and_then(|s| s.get("conditions"));
        let spec = body_path(&hpa, &["spec"]).cloned().unwrap_or(json!({}));
        let min = spec["minReplicas"].as_i64().unwrap_or(1);
        let max = spec["maxReplicas"].as_i64().unwrap_or(min);
        let target_kind = spec["scaleTargetRef"]["kind"].as_str().unwrap_or("");
        let target_name = spec["scaleTargetRef"]["name"].as_str().unwrap_or("");
        let mut conditions: Vec<Json> = Vec::new();
        let mut status: Map<String, Json> = old_status
            .as_ref()
            .and_then(|s| s.as_object().cloned())
            .unwrap_or_default();
        status.insert("observedGeneration".into(), json!(hpa.meta.generation));

        let target = Kind::from_name(target_kind)
            .filter(|k| matches!(k, Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet))
            .and_then(|k| cx.cache.get(k, ns, target_name))
            .cloned();
        let Some(target) = target else {
            let msg = format!("the HPA controller was unable to get the target's current scale: {target_kind} {ns}/{target_name} not found");
            cx.event(&hpa, "Warning", "FailedGetScale", msg.clone());
            conditions.push(condition(
                "AbleToScale",
                false,
                "FailedGetScale",
                &msg,
                now,
                old_conditions,
            ));
            return self.write_status(&hpa, status, conditions, cx);
        };
        let current = body_path(&target, &["spec", "replicas"])
            .and_then(Json::as_i64)
            .unwrap_or(1);
        status.insert(
            "currentReplicas".into(),
            json!(body_path(&target, &["status", "replicas"])
                .and_then(Json::as_i64)
                .unwrap_or(0)),
        );
        if current == 0 && min != 0 {
            conditions.push(condition(
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
                old_conditions,
            ));
            status.insert("desiredReplicas".into(), json!(0));
            return self.write_status(&hpa, status, conditions, cx);
        }
        let reason: String;
        let mut limited: Option<(&str, &str)> = None;
        let desired = if current > max {
            reason = "Current number of replicas above Spec.MaxReplicas".into();
            max
        } else if current < min {
            reason = "Current number of replicas below Spec.MinReplicas".into();
            min
        } else {
            let targets = match cpu_targets(&hpa) {
                Ok(t) => t,
                Err(e) => {
                    cx.event(&hpa, "Warning", "FailedGetResourceMetric", e.clone());
                    conditions.push(condition(
                        "ScalingActive",
                        false,
                        "FailedGetResourceMetric",
                        &e,
                        now,
                        old_conditions,
                    ));
                    return self.write_status(&hpa, status, conditions, cx);
                }
            };
            let sel = selector(&target);
            let pods: Vec<&Arc<Object>> = match &sel {
                Some(s) => cx
                    .cache
                    .list(Kind::Pod, ns)
                    .filter(|p| s.matches(&p.meta.labels))
                    .collect(),
                None => Vec::new(),
            };
            let samples = self.samples(&target, &pods, now);
            let mut best: Option<i64> = None;
            let mut metrics = Vec::new();
            for t in &targets {
                match replicas::calculate(&samples, *t, current, now) {
                    Ok(r) => {
                        best = Some(best.map_or(r.replicas, |b| b.max(r.replicas)));
                        metrics.push(match t {
                            Target::Utilization(_) => json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": r.current as i64}}}),
                            Target::AverageValue(_) => json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": format!("{}m", r.current as i64)}}}),
                        });
                    }
                    Err(e) => {
                        let msg = format!("failed to get cpu utilization: unable to get metrics for resource cpu: {e}");
                        cx.event(&hpa, "Warning", "FailedGetResourceMetric", msg.clone());
                        conditions.push(condition(
                            "ScalingActive",
                            false,
                            "FailedGetResourceMetric",
                            &format!("the HPA was unable to compute the replica count: {msg}"),
                            now,
                            old_conditions,
                        ));
                        return self.write_status(&hpa, status, conditions, cx);
                    }
                }
            }
            status.insert("currentMetrics".into(), Json::Array(metrics));
            conditions.push(condition("ScalingActive", true, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)", now, old_conditions));
            let metric_desired = best.unwrap_or(current);
            reason = if metric_desired > current {
                "cpu resource utilization (percentage of request) above target".into()
            } else {
                "All metrics below target".into()
            };
            let behavior = &spec["behavior"];
            let rules =
                Rules::from_json(behavior.get("scaleUp"), Rules::default_up()).and_then(|up| {
                    Ok((
                        up,
                        Rules::from_json(behavior.get("scaleDown"), Rules::default_down())?,
                    ))
                });
            let (up, down) = match rules {
                Ok(r) => r,
                Err(e) => {
                    cx.event(
                        &hpa,
                        "Warning",
                        "InvalidBehavior",
                        format!("spec.behavior: {e}"),
                    );
                    (Rules::default_up(), Rules::default_down())
                }
            };
            let h = self.history.entry(key.to_string()).or_default();
            let n = behavior::normalize(h, &up, &down, min, max, current, metric_desired, now);
            limited = n.limited;
            if n.replicas != current {
                behavior::record(h, current, n.replicas, &up, &down, now);
            }
            n.replicas
        };
        match limited {
            Some((r, m)) => {
                conditions.push(condition("ScalingLimited", true, r, m, now, old_conditions))
            }
            None => conditions.push(condition(
                "ScalingLimited",
                false,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
                now,
                old_conditions,
            )),
        }
        status.insert("desiredReplicas".into(), json!(desired));
        if desired != current {
            let mut req = ApiRequest::new(Verb::Patch, target.kind, ns, target_name);
            req.patch = Some(PatchOp::Merge(json!({"spec": {"replicas": desired}})));
            cx.send(req);
            cx.event(
                &hpa,
                "Normal",
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {reason}"),
            );
            status.insert("lastScaleTime".into(), json!(now.rfc3339()));
            conditions.insert(
                0,
                condition(
                    "AbleToScale",
                    true,
                    "SucceededRescale",
                    &format!("the HPA controller was able to update the target scale to {desired}"),
                    now,
                    old_conditions,
                ),
            );
        } else {
            conditions.insert(
                0,
                condition(
                    "AbleToScale",
                    true,
                    "ReadyForNewScale",
                    "recommended size matches current size",
                    now,
                    old_conditions,
                ),
            );
        }
        self.write_status(&hpa, status, conditions, cx);
    }

    fn reset(&mut self) {
        self.history.clear();
    }
}

impl HorizontalPodAutoscalerController {
    fn write_status(
        &self,
        hpa: &Object,
        mut status: Map<String, Json>,
        conditions: Vec<Json>,
        cx: &mut SyncCtx<'_>,
    ) {
        status.insert("conditions".into(), Json::Array(conditions));
        let status = Json::Object(status);
        update_status(cx, hpa, status);
    }
}
