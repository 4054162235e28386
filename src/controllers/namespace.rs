//! The namespace controller (`pkg/controller/namespace`): empties a deleted
//! namespace and then releases it.
//!
//! A namespace with a deletionTimestamp is queued 5 s after each event
//! (`namespaceDeletionGracePeriod`, so that every apiserver's admission has
//! seen the deletion). One pass (`namespacedResourcesDeleter.Delete`) reads
//! the namespace live, sets phase Terminating if needed, then for every
//! namespaced kind lists what is left, deletes it in the background and
//! lists again. Pods that are still terminating give an estimate (the
//! longest terminationGracePeriodSeconds of unfinished pods, 0 once that
//! long has passed since the namespace's deletion); objects held by
//! finalizers 15 s. The pass writes the deletion conditions when they
//! change, then: content remains → again after estimate/2 + 1 s; a failure
//! → again under the controller's rate limiter (5 ms doubling to 60 s);
//! empty → `finalize` without `kubernetes`, retried after a fresh GET on a
//! conflict, and the apiserver deletes the namespace.
//!
//! Upstream deletes a whole collection per resource with one
//! `deletecollection`; kubesim's apiserver has no such verb, so the pass
//! takes upstream's fallback (`deleteEachItem`): a DELETE per listed item.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cache::{Cache, CacheEvent};
use super::controller::{Controller, SyncCtx};
use super::workqueue::WorkQueue;
use crate::api::kinds::KINDS;
use crate::api::namespace::{NamespaceCondition, NamespacePhase, FINALIZER_KUBERNETES};
use crate::api::object::Body;
use crate::api::{Kind, Object};
use crate::model::apiserver::request::{ApiRequest, ApiResponse, Verb};
use crate::model::client::RateLimit;
use crate::sim::{SimDuration, SimTime};

/// `namespaceDeletionGracePeriod`.
pub const DELETION_GRACE: SimDuration = SimDuration::from_secs(5);
/// `finalizerEstimateSeconds`: the wait for objects held by finalizers.
const FINALIZER_ESTIMATE: i64 = 15;

/// The condition types the deleter maintains, in upstream's order, with
/// the reason and message of their "all is well" form.
const CONDITIONS: &[(&str, &str, &str)] = &[
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
];

/// Where a pass stands with one kind.
#[derive(Default)]
struct KindPass {
    /// The first LIST answered; DELETEs still out.
    listed: bool,
    deletes_left: u32,
    done: bool,
    error: Option<String>,
    remaining: usize,
    finalizers: BTreeMap<String, usize>,
    estimate: i64,
}

/// Where a pass stands with the namespace itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Get,
    Phase,
    Content,
    Conditions,
    Finalize,
    /// The finalize conflicted: a fresh GET, then finalize again.
    FinalizeGet,
}

/// One `namespacedResourcesDeleter.Delete` in progress.
struct Pass {
    stage: Stage,
    /// The namespace as the pass last read it (GET or phase update).
    ns: Option<Arc<Object>>,
    kinds: BTreeMap<Kind, KindPass>,
    /// The longest grace of the namespace's unfinished pods (0 when that
    /// long has passed since its deletion).
    pod_estimate: i64,
}

#[derive(Default)]
pub struct NamespaceController {
    passes: BTreeMap<String, Pass>,
}

/// The namespaced kinds kubesim stores: what discovery would list.
fn content_kinds() -> impl Iterator<Item = Kind> {
    KINDS.iter().filter(|k| k.namespaced).map(|k| k.kind)
}

/// `schema.GroupVersionResource`'s parts: (group, version, resource).
fn gvr(kind: Kind) -> (&'static str, &'static str, String) {
    let (group, version) = kind.api_version().split_once('/').unwrap_or(("", "v1"));
    let n = kind.name().to_lowercase();
    let resource = if kind == Kind::Endpoints {
        n
    } else if n.ends_with('s') {
        format!("{n}es")
    } else if let Some(stem) = n.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{n}s")
    };
    (group, version, resource)
}

fn error_text(resp: Option<&ApiResponse>) -> String {
    match resp {
        Some(r) => r.message.clone(),
        None => "context deadline exceeded".to_string(),
    }
}

/// Whole seconds since `at` as `time.Since` sees a `metav1.Time` (which
/// keeps whole seconds).
fn since_secs(now: SimTime, at: SimTime) -> u64 {
    now.nanos()
        .saturating_sub(at.nanos() / 1_000_000_000 * 1_000_000_000)
        / 1_000_000_000
}

impl NamespaceController {
    /// Reads the namespace live and goes on from it.
    fn get(&mut self, key: &str, stage: Stage, cx: &mut SyncCtx<'_>) {
        if let Some(p) = self.passes.get_mut(key) {
            p.stage = stage;
        }
        cx.send(ApiRequest::new(Verb::Get, Kind::Namespace, "", key));
    }

    fn end(&mut self, key: &str) {
        self.passes.remove(key);
    }

    fn fail(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        cx.failed = true;
        self.end(key);
    }

    /// The latest namespace: phase Terminating first, then its content.
    fn on_namespace(&mut self, key: &str, ns: Arc<Object>, cx: &mut SyncCtx<'_>) {
        let Some(body) = ns.as_namespace() else {
            return self.end(key);
        };
        if ns.meta.deletion.is_none() {
            return self.end(key);
        }
        if body.phase != NamespacePhase::Terminating {
            let mut obj = (*ns).clone();
            if let Body::Namespace(n) = &mut obj.body {
                n.phase = NamespacePhase::Terminating;
            }
            let mut req = ApiRequest::new(Verb::UpdateStatus, Kind::Namespace, "", key);
            req.resource_version = ns.meta.resource_version;
            req.body = Some(Arc::new(obj));
            let p = self.passes.get_mut(key).expect("a pass");
            p.stage = Stage::Phase;
            return cx.send(req);
        }
        // Already finalized by this controller.
        if body.finalizers.is_empty() {
            return self.end(key);
        }
        let p = self.passes.get_mut(key).expect("a pass");
        p.stage = Stage::Content;
        p.ns = Some(ns);
        p.kinds.clear();
        for kind in content_kinds() {
            p.kinds.insert(kind, KindPass::default());
            cx.send(ApiRequest::new(Verb::List, kind, key, ""));
        }
    }

    /// A LIST of one kind answered: the first deletes what it finds, the
    /// second counts what is left.
    fn on_list(&mut self, key: &str, kind: Kind, resp: Option<&ApiResponse>, cx: &mut SyncCtx<'_>) {
        let now = cx.now;
        let Some(p) = self.passes.get_mut(key) else {
            return;
        };
        let deleted = p.ns.as_ref().and_then(|n| n.meta.deletion).unwrap_or(now);
        let Some(k) = p.kinds.get_mut(&kind) else {
            return;
        };
        let items = match resp {
            Some(r) if r.ok() => &r.items,
            _ => {
                k.error = Some(error_text(resp));
                k.done = true;
                return self.after_kind(key, cx);
            }
        };
        if k.listed {
            Self::count_remaining(k, kind, items, p.pod_estimate, key);
            return self.after_kind(key, cx);
        }
        k.listed = true;
        if kind == Kind::Pod {
            p.pod_estimate = pod_estimate(items, since_secs(now, deleted));
        }
        if items.is_empty() {
            k.done = true;
            return self.after_kind(key, cx);
        }
        for o in items.iter().filter(|o| o.meta.deletion.is_none()) {
            let mut req = ApiRequest::new(Verb::Delete, kind, key, &o.meta.name);
            req.propagation = Some("Background");
            cx.send(req);
            k.deletes_left += 1;
        }
        if k.deletes_left == 0 {
            cx.send(ApiRequest::new(Verb::List, kind, key, ""));
        }
    }

    /// `deleteAllContentForGroupVersionResource`'s verdict on what is left.
    fn count_remaining(k: &mut KindPass, kind: Kind, items: &[Arc<Object>], pods: i64, ns: &str) {
        k.done = true;
        k.remaining = items.len();
        if items.is_empty() {
            return;
        }
        for o in items {
            for f in &o.meta.finalizers {
                *k.finalizers.entry(f.clone()).or_default() += 1;
            }
        }
        let estimate = if kind == Kind::Pod { pods } else { 0 };
        if estimate != 0 {
            k.estimate = estimate;
        } else if !k.finalizers.is_empty() {
            k.estimate = FINALIZER_ESTIMATE;
        } else {
            let (group, version, resource) = gvr(kind);
            k.error = Some(format!(
                "unexpected items still remain in namespace: {ns} for gvr: {{{group} {version} {resource}}}"
            ));
        }
    }

    fn on_delete(
        &mut self,
        key: &str,
        kind: Kind,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let Some(k) = self
            .passes
            .get_mut(key)
            .and_then(|p| p.kinds.get_mut(&kind))
        else {
            return;
        };
        k.deletes_left -= 1;
        if !resp.is_some_and(|r| r.ok() || r.code == 404) && k.error.is_none() {
            k.error = Some(error_text(resp));
        }
        if k.deletes_left > 0 {
            return;
        }
        if k.error.is_some() {
            k.done = true;
            return self.after_kind(key, cx);
        }
        cx.send(ApiRequest::new(Verb::List, kind, key, ""));
    }

    /// Every kind done: write the conditions if they changed.
    fn after_kind(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let Some(p) = self.passes.get_mut(key) else {
            return;
        };
        if p.stage != Stage::Content || !p.kinds.values().all(|k| k.done) {
            return;
        }
        let Some(ns) = p.ns.clone() else { return };
        let Some(body) = ns.as_namespace() else {
            return;
        };
        let wanted = wanted_conditions(&p.kinds);
        let Some(conditions) = updated_conditions(&body.conditions, &wanted, cx.now) else {
            return self.after_conditions(key, cx);
        };
        let mut obj = (*ns).clone();
        if let Body::Namespace(n) = &mut obj.body {
            n.conditions = conditions;
        }
        let mut req = ApiRequest::new(Verb::UpdateStatus, Kind::Namespace, "", key);
        req.resource_version = ns.meta.resource_version;
        req.body = Some(Arc::new(obj));
        p.stage = Stage::Conditions;
        cx.send(req);
    }

    /// After the conditions: fail, wait for what remains, or finalize.
    fn after_conditions(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        let Some(p) = self.passes.get(key) else {
            return;
        };
        if p.kinds.values().any(|k| k.error.is_some()) {
            return self.fail(key, cx);
        }
        let estimate = p.kinds.values().map(|k| k.estimate).max().unwrap_or(0);
        if estimate > 0 {
            // ResourcesRemainingError: the worker waits estimate/2 + 1 s.
            cx.requeue_after(SimDuration::from_secs(estimate as u64 / 2 + 1));
            return self.end(key);
        }
        let Some(ns) = p.ns.clone() else { return };
        self.finalize(key, &ns, cx);
    }

    /// `finalizeNamespace`: the namespace's spec.finalizers without ours.
    fn finalize(&mut self, key: &str, ns: &Object, cx: &mut SyncCtx<'_>) {
        let mut obj = ns.clone();
        if let Body::Namespace(n) = &mut obj.body {
            let mut rest: Vec<String> = n
                .finalizers
                .iter()
                .filter(|f| *f != FINALIZER_KUBERNETES)
                .cloned()
                .collect();
            rest.sort();
            rest.dedup();
            n.finalizers = rest;
        }
        let mut req = ApiRequest::new(Verb::Finalize, Kind::Namespace, "", key);
        req.resource_version = ns.meta.resource_version;
        req.body = Some(Arc::new(obj));
        if let Some(p) = self.passes.get_mut(key) {
            p.stage = Stage::Finalize;
        }
        cx.send(req);
    }

    /// An answer about the namespace itself, by stage.
    fn on_namespace_response(
        &mut self,
        key: &str,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        let Some(stage) = self.passes.get(key).map(|p| p.stage) else {
            return;
        };
        let code = resp.map(|r| r.code);
        let object = resp.filter(|r| r.ok()).and_then(|r| r.object.clone());
        match (stage, code, object) {
            // Gone already: nothing to do.
            (_, Some(404), _) => self.end(key),
            // The status write's outcome does not matter (upstream logs it).
            (Stage::Conditions, _, _) => self.after_conditions(key, cx),
            (Stage::Finalize, Some(c), _) if (200..300).contains(&c) => self.end(key),
            (Stage::Phase | Stage::Finalize, Some(409), _) => {
                let next = if stage == Stage::Phase {
                    Stage::Get
                } else {
                    Stage::FinalizeGet
                };
                self.get(key, next, cx)
            }
            (Stage::Get | Stage::Phase, _, Some(ns)) => self.on_namespace(key, ns, cx),
            (Stage::FinalizeGet, _, Some(ns)) => {
                let before = self.passes.get(key).and_then(|p| p.ns.clone());
                if before.is_some_and(|b| b.meta.uid != ns.meta.uid) {
                    // "namespace uid has changed across retries"
                    return self.fail(key, cx);
                }
                if let Some(p) = self.passes.get_mut(key) {
                    p.ns = Some(ns.clone());
                }
                self.finalize(key, &ns, cx)
            }
            _ => self.fail(key, cx),
        }
    }
}

/// `estimateGracefulTerminationForPods`, then the check against the time
/// since the namespace's deletion.
fn pod_estimate(pods: &[Arc<Object>], since_deletion_secs: u64) -> i64 {
    let estimate = pods
        .iter()
        .filter_map(|o| o.as_pod())
        .filter(|p| !p.is_terminal())
        .map(|p| p.spec.termination_grace.as_secs_f64() as i64)
        .max()
        .unwrap_or(0);
    if since_deletion_secs >= estimate.max(0) as u64 {
        0
    } else {
        estimate
    }
}

/// The failing conditions a pass's totals call for (`ProcessContentTotals`
/// and `makeDeleteContentCondition`): (type, reason, message).
fn wanted_conditions(
    kinds: &BTreeMap<Kind, KindPass>,
) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    let mut errors: Vec<&str> = kinds.values().filter_map(|k| k.error.as_deref()).collect();
    if !errors.is_empty() {
        errors.sort();
        let msg = format!(
            "Failed to delete all resource types, {} remaining: {}",
            errors.len(),
            errors.join(", ")
        );
        out.push((
            "NamespaceDeletionContentFailure",
            "ContentDeletionFailed",
            msg,
        ));
    }
    let mut remaining: Vec<String> = Vec::new();
    let mut finalizers: BTreeMap<&str, usize> = BTreeMap::new();
    for (kind, k) in kinds.iter().filter(|(_, k)| k.remaining > 0) {
        let (group, _, resource) = gvr(*kind);
        remaining.push(format!(
            "{resource}.{group} has {} resource instances",
            k.remaining
        ));
        for (f, n) in &k.finalizers {
            *finalizers.entry(f).or_default() += n;
        }
    }
    if !remaining.is_empty() {
        remaining.sort();
        let msg = format!("Some resources are remaining: {}", remaining.join(", "));
        out.push(("NamespaceContentRemaining", "SomeResourcesRemain", msg));
    }
    if !finalizers.is_empty() {
        let mut by: Vec<String> = finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        by.sort();
        let msg = format!("Some finalizers are remaining: {}", by.join(", "));
        out.push(("NamespaceFinalizersRemaining", "SomeFinalizerRemain", msg));
    }
    out
}

/// `updateConditions`: every maintained type present, failing or in its
/// "all is well" form; `None` when nothing changed.
fn updated_conditions(
    old: &[NamespaceCondition],
    wanted: &[(&'static str, &'static str, String)],
    now: SimTime,
) -> Option<Vec<NamespaceCondition>> {
    let mut out = old.to_vec();
    let mut changed = false;
    for (type_, ok_reason, ok_message) in CONDITIONS {
        let (status, reason, message) = match wanted.iter().find(|w| w.0 == *type_) {
            Some((_, r, m)) => (true, r.to_string(), m.clone()),
            None => (false, ok_reason.to_string(), ok_message.to_string()),
        };
        match out.iter_mut().find(|c| c.type_ == *type_) {
            None => {
                changed = true;
                out.push(NamespaceCondition {
                    type_,
                    status,
                    last_transition: now,
                    reason,
                    message,
                });
            }
            Some(c) if c.status != status || c.reason != reason || c.message != message => {
                changed = true;
                if c.status != status {
                    c.last_transition = now;
                }
                c.status = status;
                c.reason = reason;
                c.message = message;
            }
            Some(_) => {}
        }
    }
    changed.then_some(out)
}

impl Controller for NamespaceController {
    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    fn workers(&self) -> usize {
        // `--concurrent-namespace-syncs`.
        10
    }

    fn rate_limit(&self, process: RateLimit) -> RateLimit {
        // "the namespace cleanup controller is very chatty": its client
        // gets 20 times the QPS and 100 times the burst.
        RateLimit {
            qps: process.qps * 20.0,
            burst: process.burst * 100,
        }
    }

    fn work_queue(&self) -> WorkQueue {
        // nsControllerRateLimiter: retried at least every minute.
        WorkQueue::with_max_delay(SimDuration::from_secs(60))
    }

    fn on_event(&mut self, ev: &CacheEvent, _cache: &Cache, queue: &mut WorkQueue, now: SimTime) {
        if ev.kind != Kind::Namespace {
            return;
        }
        if let Some(ns) = ev.new.as_ref().filter(|n| n.meta.deletion.is_some()) {
            queue.add_after(&ns.meta.name, DELETION_GRACE, now);
        }
    }

    fn sync(&mut self, key: &str, cx: &mut SyncCtx<'_>) {
        // "Namespace has been deleted": nothing left to do.
        if cx.cache.get(Kind::Namespace, "", key).is_none() {
            return;
        }
        let pass = Pass {
            stage: Stage::Get,
            ns: None,
            kinds: BTreeMap::new(),
            pod_estimate: 0,
        };
        self.passes.insert(key.to_string(), pass);
        self.get(key, Stage::Get, cx);
    }

    fn on_response(
        &mut self,
        key: &str,
        req: &ApiRequest,
        resp: Option<&ApiResponse>,
        cx: &mut SyncCtx<'_>,
    ) {
        match (req.verb, req.kind) {
            (_, Kind::Namespace) => self.on_namespace_response(key, resp, cx),
            (Verb::List, kind) => self.on_list(key, kind, resp, cx),
            (Verb::Delete, kind) => self.on_delete(key, kind, resp, cx),
            _ => {}
        }
    }

    fn reset(&mut self) {
        self.passes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_named_as_discovery_names_them() {
        assert_eq!(gvr(Kind::Pod), ("", "v1", "pods".to_string()));
        assert_eq!(
            gvr(Kind::Deployment),
            ("apps", "v1", "deployments".to_string())
        );
        assert_eq!(gvr(Kind::Endpoints), ("", "v1", "endpoints".to_string()));
        assert_eq!(
            gvr(Kind::NetworkPolicy),
            ("networking.k8s.io", "v1", "networkpolicies".to_string())
        );
    }

    #[test]
    fn conditions_start_in_upstream_order_and_change_only_when_they_differ() {
        let t0 = SimTime::ZERO;
        let wanted = vec![(
            "NamespaceContentRemaining",
            "SomeResourcesRemain",
            "Some resources are remaining: pods. has 2 resource instances".to_string(),
        )];
        let first = updated_conditions(&[], &wanted, t0).expect("all five are new");
        let types: Vec<&str> = first.iter().map(|c| c.type_).collect();
        assert_eq!(types, CONDITIONS.iter().map(|c| c.0).collect::<Vec<_>>());
        assert!(first[3].status && !first[4].status);
        assert_eq!(updated_conditions(&first, &wanted, t0), None);
        // Content gone: ContentRemaining flips to False, its time moves.
        let t1 = SimTime::ZERO.after(SimDuration::from_secs(16));
        let done = updated_conditions(&first, &[], t1).expect("one flipped");
        assert_eq!(done[3].message, "All content successfully removed");
        assert_eq!(done[3].last_transition, t1);
        assert_eq!(done[0].last_transition, t0);
    }

    #[test]
    fn time_since_deletion_counts_from_the_whole_second_metav1_time_keeps() {
        // Deleted at 0.9 s (stored as 0 s), read at 30.5 s: 30 whole seconds,
        // so a 30 s pod estimate has lapsed.
        assert_eq!(
            since_secs(SimTime(30_500_000_000), SimTime(900_000_000)),
            30
        );
        assert_eq!(
            since_secs(SimTime(29_999_999_999), SimTime(900_000_000)),
            29
        );
    }
}
