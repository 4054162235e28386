//! The disruption controller (`pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status true to the pods it covers — how many are
//! expected, how many must stay healthy, how many are, and so how many
//! disruptions the eviction API may approve now. It also expires the
//! eviction API's `disruptedPods` entries whose pods were never deleted.
//!
//! Upstream records `NoPods` and `CalculateExpectedPodCountFailed` on every
//! sync and lets the event recorder's correlator fold the repeats; kubesim
//! posts Events without a correlator, so it records them only when the
//! status it writes changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workload::{controller_of, controller_ref, key_of, replicas, split_key, update_status};
use super::workqueue::WorkQueue;
use crate::api::disruption_budget::{BudgetStatus, DisruptionBudget, DELETION_TIMEOUT};
use crate::api::int_or_percent::{scaled_value, IntOrPercent};
use crate::api::{Kind, Object};
use crate::sim::{SimDuration, SimTime};

#[derive(Default)]
pub struct DisruptionController;

/// The first budget (by name) that covers `pod` (`getPdbForPod`).
fn budget_for_pod(cache: &Cache, pod: &Object) -> Option<String> {
    cache
        .list(Kind::PodDisruptionBudget, &pod.meta.namespace)
        .find(|o| DisruptionBudget::read(o).is_some_and(|b| b.selects(pod)))
        .map(|o| key_of(o))
}

/// The scale of the controller of `pod` and that controller's uid (the
/// finders: ReplicationController, Deployment through its ReplicaSet, a
/// ReplicaSet of its own, StatefulSet). `None` if it has none of these.
fn controller_scale(cache: &Cache, pod: &Object) -> Option<(String, i64)> {
    let r = controller_ref(pod)?;
    match r.kind.as_str() {
        "ReplicaSet" => {
            let rs = controller_of(cache, pod, Kind::ReplicaSet)?;
            match controller_ref(rs) {
                Some(d) if d.kind == "Deployment" => {
                    let dep = controller_of(cache, rs, Kind::Deployment)?;
                    Some((dep.meta.uid.clone(), replicas(dep)))
                }
                _ => Some((rs.meta.uid.clone(), replicas(rs))),
            }
        }
        "ReplicationController" | "StatefulSet" => {
            let kind = if r.kind == "StatefulSet" {
                Kind::StatefulSet
            } else {
                Kind::ReplicationController
            };
            let c = controller_of(cache, pod, kind)?;
            Some((c.meta.uid.clone(), replicas(c)))
        }
        _ => None,
    }
}

/// `getExpectedScale`: the sum of the scales of the pods' controllers;
/// pods without a controller are listed apart. A pod whose controller has
/// no scale (a DaemonSet, a Job) is an error.
fn expected_scale(cache: &Cache, pods: &[&Arc<Object>]) -> Result<(i64, Vec<String>), String> {
    let mut scales: BTreeMap<String, i64> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for p in pods {
        if controller_ref(p).is_none() {
            unmanaged.push(p.meta.name.clone());
            continue;
        }
        match controller_scale(cache, p) {
            Some((uid, n)) => {
                scales.insert(uid, n);
            }
            None => return Err(format!("found no controllers for pod {:?}", p.meta.name)),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

/// `getExpectedPodCount`: (expected pods, desired healthy, unmanaged pods).
pub fn expected_pod_count(
    budget: &DisruptionBudget,
    scale: impl FnOnce() -> Result<(i64, Vec<String>), String>,
    selected: i64,
) -> Result<(i64, i64, Vec<String>), String> {
    if let Some(max) = &budget.max_unavailable {
        let (expected, unmanaged) = scale()?;
        let max = scaled_value(max, expected, true)?;
        return Ok((expected, (expected - max).max(0), unmanaged));
    }
    match &budget.min_available {
        Some(IntOrPercent::Int(n)) => Ok((selected, *n, Vec::new())),
        Some(min) => {
            let (expected, unmanaged) = scale()?;
            Ok((expected, scaled_value(min, expected, true)?, unmanaged))
        }
        None => Ok((0, 0, Vec::new())),
    }
}

/// `buildDisruptedPodMap`: the entries still pending (their pods exist, are
/// not yet being deleted, and the two minutes are not up), the pods whose
/// time ran out, and when the next entry expires.
pub fn disrupted_pods(
    old: &BTreeMap<String, SimTime>,
    pods: &[&Arc<Object>],
    now: SimTime,
) -> (BTreeMap<String, SimTime>, Vec<String>, Option<SimTime>) {
    let mut kept = BTreeMap::new();
    let mut expired = Vec::new();
    let mut recheck: Option<SimTime> = None;
    for p in pods {
        if p.meta.deletion.is_some() {
            continue;
        }
        let Some(at) = old.get(&p.meta.name) else {
            continue;
        };
        let due = at.after(DELETION_TIMEOUT);
        if due < now {
            expired.push(p.meta.name.clone());
        } else {
            recheck = Some(recheck.map_or(due, |r| r.min(due)));
            kept.insert(p.meta.name.clone(), *at);
        }
    }
    (kept, expired, recheck)
}

/// How long until the recheck of a `disruptedPods` entry due at `due`
/// (`enqueuePdbForRecheck(pdb, nextRecheckTime.Sub(now))`). Upstream expires
/// an entry once `expectedDeletion.Before(currentTime)`; on a real clock the
/// recheck runs a moment after `due`, so it finds the entry expired. On the
/// virtual clock a recheck at `due` itself would keep the entry and ask for a
/// recheck after zero, which the work queue adds at once: the same sync at
/// the same instant, forever. The recheck is due one nanosecond after `due`,
/// the first instant upstream's comparison expires the entry.
pub fn recheck_delay(due: SimTime, now: SimTime) -> SimDuration {
    due.since(now) + SimDuration::from_nanos(1)
}

/// `countHealthyPods`: ready pods not being deleted and not already
/// promised to an eviction.
pub fn healthy_pods(
    pods: &[&Arc<Object>],
    disrupted: &BTreeMap<String, SimTime>,
    now: SimTime,
) -> i64 {
    pods.iter()
        .filter(|p| p.meta.deletion.is_none())
        .filter(|p| {
            disrupted
                .get(&p.meta.name)
                .is_none_or(|at| at.after(DELETION_TIMEOUT) <= now)
        })
        .filter(|p| p.as_pod().is_some_and(|b| b.status.is_ready()))
        .count() as i64
}

impl Controller for DisruptionController {
    fn name(&self) -> &'static str {
        "disruption-controller"
    }

    /// Upstream runs one worker.
    fn workers(&self) -> usize {
        1
    }

    fn on_event(&mut self, ev: &CacheEvent, cache: &Cache, queue: &mut WorkQueue, _now: SimTime) {
        match ev.kind {
            Kind::PodDisruptionBudget => queue.add(&key_of(ev.object())),
            Kind::Pod => {
                if let Some(k) = budget_for_pod(cache, ev.object()) {
                    queue.add(&k);
                }
            }
            _ => {}
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let (ns, name) = split_key(key);
        let Some(obj) = cx.cache.get(Kind::PodDisruptionBudget, ns, name).cloned() else {
            return;
        };
        let Some(budget) = DisruptionBudget::read(&obj) else {
            return;
        };
        let now = cx.now;
        let pods: Vec<&Arc<Object>> = cx
            .cache
            .list(Kind::Pod, ns)
            .filter(|p| budget.selects(p))
            .collect();
        let counted = expected_pod_count(
            &budget,
            || expected_scale(cx.cache, &pods),
            pods.len() as i64,
        );
        let (expected, desired, unmanaged) = match counted {
            Ok(c) => c,
            Err(msg) => {
                // `failSafe`: allow no disruption and say why.
                let mut st = budget.status.clone();
                st.disruptions_allowed = 0;
                st.set_condition("False", "SyncFailed", &msg, now);
                if st != budget.status {
                    cx.event(
                        &obj,
                        "Warning",
                        "CalculateExpectedPodCountFailed",
                        format!("Failed to calculate the number of expected pods: {msg}"),
                    );
                    update_status(cx, &obj, st.to_json());
                }
                cx.failed = true;
                return;
            }
        };
        let (disrupted, expired, recheck) =
            disrupted_pods(&budget.status.disrupted_pods, &pods, now);
        let healthy = healthy_pods(&pods, &disrupted, now);
        let allowed = if expected <= 0 {
            0
        } else {
            (healthy - desired).max(0)
        };
        let old = &budget.status;
        let unchanged = old.current_healthy == healthy
            && old.desired_healthy == desired
            && old.expected_pods == expected
            && old.disruptions_allowed == allowed
            && old.disrupted_pods == disrupted
            && old.observed_generation == budget.generation
            && old.conditions_up_to_date();
        if let Some(at) = recheck {
            cx.requeue_after(recheck_delay(at, now));
        }
        if unchanged {
            return;
        }
        if pods.is_empty() {
            cx.event(&obj, "Normal", "NoPods", "No matching pods found".into());
        }
        if !unmanaged.is_empty() {
            cx.event(
                &obj,
                "Warning",
                "UnmanagedPods",
                "Pods selected by this PodDisruptionBudget were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.".into(),
            );
        }
        for pod in &expired {
            if let Some(p) = cx.cache.get(Kind::Pod, ns, pod).cloned() {
                // Upstream's message names the budget's namespace twice.
                cx.event(
                    &p,
                    "Warning",
                    "NotDeleted",
                    format!("Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't"),
                );
            }
        }
        let mut st = BudgetStatus {
            observed_generation: budget.generation,
            disruptions_allowed: allowed,
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: expected,
            disrupted_pods: disrupted,
            conditions: old.conditions.clone(),
        };
        st.update_allowed_condition(now);
        update_status(cx, &obj, st.to_json());
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::disruption_budget::BudgetStatus;

    fn budget(min: Option<IntOrPercent>, max: Option<IntOrPercent>) -> DisruptionBudget {
        DisruptionBudget {
            namespace: "default".into(),
            name: "web".into(),
            generation: 1,
            selector: None,
            min_available: min,
            max_unavailable: max,
            always_allow_unhealthy: false,
            status: BudgetStatus::default(),
        }
    }

    #[test]
    fn expected_count_follows_the_spec_form() {
        use IntOrPercent::{Int, Str};
        let scale = || Ok((10, Vec::new()));
        // An integer minAvailable counts the selected pods, not the controllers.
        let b = budget(Some(Int(7)), None);
        assert_eq!(expected_pod_count(&b, scale, 9).unwrap(), (9, 7, vec![]));
        // A percentage rounds up against the controllers' scale.
        let b = budget(Some(Str("55%".into())), None);
        assert_eq!(expected_pod_count(&b, scale, 9).unwrap(), (10, 6, vec![]));
        // maxUnavailable: 25% of 10 rounds up to 3, so 7 must stay healthy.
        let b = budget(None, Some(Str("25%".into())));
        assert_eq!(expected_pod_count(&b, scale, 9).unwrap(), (10, 7, vec![]));
        let b = budget(None, Some(Int(12)));
        assert_eq!(expected_pod_count(&b, scale, 9).unwrap(), (10, 0, vec![]));
        let failing = || Err("found no controllers for pod \"x\"".to_string());
        assert!(expected_pod_count(&b, failing, 9).is_err());
    }

    #[test]
    fn disrupted_entries_expire_after_two_minutes() {
        let t = |s| SimTime::ZERO.after(SimDuration::from_secs(s));
        let mk = |name: &str| {
            let mut o = crate::controllers::workload::json_object(
                Kind::Pod,
                Default::default(),
                serde_json::json!({}),
            );
            o.meta.name = name.into();
            Arc::new(o)
        };
        let (a, b) = (mk("a"), mk("b"));
        let pods = vec![&a, &b];
        let old: BTreeMap<String, SimTime> = [
            ("a".to_string(), t(0)),
            ("b".to_string(), t(100)),
            ("gone".to_string(), t(100)),
        ]
        .into_iter()
        .collect();
        let (kept, expired, recheck) = disrupted_pods(&old, &pods, t(121));
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(expired, vec!["a".to_string()]);
        assert_eq!(recheck, Some(t(220)));
    }

    /// One object from a manifest, as the informers would cache it.
    fn object(yaml: &str) -> Arc<Object> {
        let docs = crate::api::manifest::parse_yaml("t.yaml", yaml).expect("yaml");
        let mut report = Default::default();
        let mut objs =
            crate::api::manifest::decode_object("t.yaml", &docs[0], &mut report).expect("manifest");
        Arc::new(objs.remove(0))
    }

    /// A pod the eviction API approved at 0s was never deleted (its delete
    /// was lost with a crashed apiserver). Its entry is due at 2m; the
    /// recheck must run after that instant and expire it. Before the fix
    /// the sync at exactly 2m kept the entry and asked for a recheck after
    /// 0 s, which the work queue adds at once: the manager synced the
    /// budget again at the same instant, recursively, until the stack
    /// overflowed (fuzz-everything seed 452).
    #[test]
    fn an_entry_due_now_is_rechecked_after_now_and_expires() {
        let mut cache = Cache::default();
        cache.apply(
            object(
                "apiVersion: policy/v1\nkind: PodDisruptionBudget\n\
                 metadata: {name: web, namespace: default}\n\
                 spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}\n\
                 status: {disruptedPods: {web-a: \"2025-01-01T00:00:00Z\"}}\n",
            ),
            false,
        );
        cache.apply(
            object(
                "apiVersion: v1\nkind: Pod\n\
                 metadata: {name: web-a, namespace: default, labels: {app: web}}\n\
                 spec: {containers: [{name: web, image: nginx}]}\n",
            ),
            false,
        );
        let due = SimTime::ZERO.after(DELETION_TIMEOUT);
        let mut c = DisruptionController;
        // At 2m exactly the entry is not yet past due (upstream's
        // `expectedDeletion.Before(now)` is false): kept, recheck 1 ns on.
        let mut cx = SyncCtx::new(due, &cache);
        c.sync("default/web", &mut cx);
        assert_eq!(cx.requeue_after, Some(SimDuration::from_nanos(1)));
        // 1 ns later it is past due: the status written drops it.
        let mut cx = SyncCtx::new(due.after(SimDuration::from_nanos(1)), &cache);
        c.sync("default/web", &mut cx);
        assert_eq!(cx.requeue_after, None);
        let written = cx.requests.last().expect("a status write");
        let budget = DisruptionBudget::read(written.body.as_ref().unwrap()).unwrap();
        assert!(budget.status.disrupted_pods.is_empty());
    }

    #[test]
    fn recheck_delay_is_never_zero() {
        let t = |s| SimTime::ZERO.after(SimDuration::from_secs(s));
        // Due in 100 s: 100 s and 1 ns.
        assert_eq!(
            recheck_delay(t(220), t(120)),
            SimDuration::from_secs(100) + SimDuration::from_nanos(1)
        );
        // Due now: 1 ns, not 0 (an immediate re-add at the same instant).
        assert_eq!(recheck_delay(t(120), t(120)), SimDuration::from_nanos(1));
    }
}
