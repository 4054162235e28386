//! Namespace deletion as v1.34 does it: the apiserver only marks the
//! namespace Terminating and refuses new content in it; the namespace
//! controller empties it, waiting out pod grace periods, and finalizes it;
//! the finalize that empties `spec.finalizers` deletes it. Constant
//! latencies (1 ms network, 1 ms apiserver, 1 ms fsync), so times are exact
//! to a few milliseconds.

use crate::common;

use common::{run_full, scenario, secs, Ran};
use serde_json::Value;

/// A Deployment of two pods and a Service in `demo`; the pods' containers
/// ignore SIGTERM (stop latency 60 s), so the kubelet kills them at their
/// 30 s grace period. `{FAULTS}` is replaced with extra timeline entries.
const SCENARIO: &str = r#"
name: ns-delete
duration: DURATION
cluster:
  network: {latency: {constant: 1ms}}
  apiserver: {requestLatency: {constant: 1ms}}
  etcd: {walFsync: {constant: 1ms}}
  kubelet:
    containerStopLatency: {constant: 60s}
  nodePools:
    - {name: w, count: 1, capacity: {cpu: "8", memory: 16Gi}}
objects:
  - apiVersion: v1
    kind: Namespace
    metadata: {name: demo}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: demo}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, image: busybox}]}
  - apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: demo}
    spec:
      selector: {app: web}
      ports: [{port: 80}]
timeline:
FAULTS  - at: 30s
    delete: {kind: Namespace, name: demo}
  - at: 40s
    apply:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: late, namespace: demo}
      data: {k: v}
"#;

fn run(duration: &str, faults: &str) -> Ran {
    let yaml = SCENARIO
        .replace("DURATION", duration)
        .replace("FAULTS", faults);
    run_full(&scenario(&yaml), None)
}

/// When the object at `key` was deleted (its `delete` write).
fn deleted_at(ran: &Ran, key: &str) -> f64 {
    ran.writes(key)
        .filter(|w| w["key"] == key && w["verb"] == "delete")
        .map(secs)
        .next()
        .unwrap_or_else(|| panic!("{key} never deleted"))
}

/// Keys of every object in `ns` whose last write is not a deletion.
fn left_in(ran: &Ran, ns: &str) -> Vec<String> {
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let prefixes = ["Write", "Seed"];
    for r in ran
        .records
        .iter()
        .filter(|r| prefixes.contains(&r["event"].as_str().unwrap_or("")))
    {
        let key = r["key"].as_str().unwrap_or("");
        if key.split('/').nth(1) == Some(ns) && key.matches('/').count() == 2 {
            last.insert(
                key.to_string(),
                r["verb"].as_str().unwrap_or("").to_string(),
            );
        }
    }
    last.into_iter()
        .filter(|(_, v)| v != "delete")
        .map(|(k, _)| k)
        .collect()
}

/// The namespace controller's live GETs of `demo`: when its passes began.
fn passes(ran: &Ran) -> Vec<f64> {
    ran.events(Some("kube-apiserver"), "Request")
        .filter(|r| {
            r["client"] == "kube-controller-manager"
                && r["verb"] == "GET"
                && r["object"] == "Namespace/demo"
        })
        .map(|r| r["start"].as_u64().unwrap() as f64 / 1e9)
        .collect()
}

/// The namespace's committed versions: (time, verb, object).
fn namespace_writes(ran: &Ran) -> Vec<(f64, String, Value)> {
    ran.writes("Namespace/demo")
        .map(|w| {
            (
                secs(w),
                w["verb"].as_str().unwrap().to_string(),
                w["object"].clone(),
            )
        })
        .collect()
}

fn condition<'a>(ns: &'a Value, type_: &str) -> &'a Value {
    ns["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn near(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual:.3} s, expected {expected:.3} ± {tolerance} s"
    );
}

#[test]
fn deleting_a_namespace_empties_it_then_removes_it_after_the_pods_grace() {
    let ran = run("120s", "");
    let ns = namespace_writes(&ran);
    // The DELETE at 30 s only marks the namespace (1 ms there, 1 ms
    // handling, fsync and replication: 30.007 s): phase Terminating, the
    // `kubernetes` finalizer kept. (Before, the namespace was simply
    // deleted at 30 s with everything still in it.)
    let (t, verb, first) = &ns[1];
    near(*t, 30.007, 0.005, "namespace marked");
    assert_eq!(verb, "update");
    assert_eq!(first["status"]["phase"], "Terminating");
    assert_eq!(
        first["spec"]["finalizers"],
        serde_json::json!(["kubernetes"])
    );
    assert!(first["metadata"]["deletionTimestamp"].is_string());

    // Passes: 5 s after the marking is seen (35.01); 5 s after that pass's
    // own condition write (40.04, an update event, which wins over the
    // 16 s requeue); then estimate/2 + 1 = 30/2 + 1 = 16 s after each
    // pass while the pods are within 30 s of the deletion (56.05: 26 s in,
    // still 30 s; 72.05: 42 s in, the pods are gone).
    let p = passes(&ran);
    assert_eq!(p.len(), 5, "{p:?}");
    for (got, want) in p.iter().zip([35.01, 40.04, 56.05, 72.05, 72.07]) {
        near(*got, want, 0.01, "pass");
    }

    // The first pass deletes everything in the background: the Deployment,
    // ReplicaSet, Service and Endpoints go at once; the pods get their
    // 30 s grace, are killed at 35.02 + 30 = 65.02 and deleted by the
    // kubelet at grace 0 after it posts their final status (two round
    // trips through etcd, each a few milliseconds): 65.03-65.05.
    for key in [
        "Deployment/demo/web",
        "Service/demo/web",
        "Endpoints/demo/web",
    ] {
        near(deleted_at(&ran, key), 35.02, 0.01, key);
    }
    let pods: Vec<f64> = ran
        .writes("Pod/demo/")
        .filter(|w| w["verb"] == "delete")
        .map(secs)
        .collect();
    assert_eq!(pods.len(), 2);
    for t in pods {
        near(t, 65.04, 0.015, "pod deleted");
    }

    // While the pods terminate the namespace says so, as upstream words it.
    let (_, _, remaining) = &ns[2];
    let c = condition(remaining, "NamespaceContentRemaining");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "SomeResourcesRemain");
    assert_eq!(
        c["message"],
        "Some resources are remaining: pods. has 2 resource instances"
    );
    let ok = condition(remaining, "NamespaceDeletionContentFailure");
    assert_eq!(ok["status"], "False");
    assert_eq!(
        ok["message"],
        "All content successfully deleted, may be waiting on finalization"
    );

    // The 72.05 pass finds nothing: it writes ContentRemaining=False, its
    // finalize (sent with the version it read before that write) conflicts,
    // a fresh GET (the fifth "pass" above) and a second finalize empty
    // spec.finalizers, and that update deletes the namespace at 72.08.
    let (t, verb, last) = ns.last().unwrap();
    assert_eq!(verb, "delete");
    near(*t, 72.08, 0.01, "namespace deleted");
    assert_eq!(
        condition(last, "NamespaceContentRemaining")["status"],
        "False"
    );
    let finalizes: Vec<u64> = ran
        .events(Some("kube-apiserver"), "Request")
        .filter(|r| r["verb"] == "PUT finalize")
        .map(|r| r["code"].as_u64().unwrap())
        .collect();
    assert_eq!(finalizes, vec![409, 200]);
    assert_eq!(left_in(&ran, "demo"), Vec::<String>::new());
}

#[test]
fn nothing_new_may_be_created_in_a_terminating_namespace() {
    let ran = run("60s", "");
    // kubectl apply at 40 s: GET → 404, POST → 403 from NamespaceLifecycle.
    let r = ran
        .events(Some("kubectl"), "ActionResult")
        .find(|r| r["action"] == "apply ConfigMap demo/late")
        .expect("the apply's result");
    assert_eq!(
        r["result"],
        "failed: 403 Forbidden: configmaps \"late\" is forbidden: unable to create new content in namespace demo because it is being terminated"
    );
    assert_eq!(ran.writes("ConfigMap/demo/").count(), 0);
    // The ReplicaSet controller's replacement for a terminating pod is
    // refused the same way (it races the namespace controller's delete of
    // the ReplicaSet at 35.02 s).
    let refused_pods = ran
        .events(Some("kube-apiserver"), "Request")
        .filter(|r| r["verb"] == "POST" && r["object"] == "Pod/demo" && r["code"] == 403)
        .count();
    assert!(refused_pods >= 1, "a replacement pod was refused");
    assert_eq!(
        ran.writes("Pod/demo/")
            .filter(|w| w["verb"] == "create")
            .count(),
        2
    );
}

#[test]
fn deletion_waits_for_a_partitioned_controller_manager_and_completes_after_the_heal() {
    let faults = "  - {at: 25s, partition: [kube-controller-manager]}\n  - {at: 90s, heal: true}\n";
    let ran = run("180s", faults);
    // Partitioned from 25 s to 90 s, the controller-manager hears of the
    // deletion only after the heal and deletes nothing meanwhile.
    let during = ran
        .writes("")
        .filter(|w| w["key"].as_str().unwrap().contains("/demo/") && w["verb"] == "delete")
        .filter(|w| secs(w) < 90.0)
        .count();
    assert_eq!(during, 0);
    // After the heal it sees the Terminating namespace and passes 5 s
    // later (95.01): everything but the pods goes; the pods get 30 s of
    // grace (gone at 125.03). Their namespace was deleted 65 s before, more
    // than the 30 s estimate, so the remaining pods are an error
    // ("unexpected items still remain") and the pass is retried under the
    // namespace rate limiter, 5 ms doubling: after 5, 10, …, 10240 ms
    // (~20.5 s in all, ~115.6 s), then 20.48 s more: 136.1 s, when the
    // namespace is empty and finalized.
    let p = passes(&ran);
    near(p[0], 95.01, 0.02, "first pass after the heal");
    near(
        deleted_at(&ran, "Deployment/demo/web"),
        95.02,
        0.02,
        "deployment",
    );
    let ns = namespace_writes(&ran);
    let failing = ns
        .iter()
        .map(|(_, _, o)| condition(o, "NamespaceDeletionContentFailure"))
        .find(|c| c["status"] == "True")
        .expect("the content failure is reported");
    assert_eq!(
        failing["message"],
        "Failed to delete all resource types, 1 remaining: unexpected items still remain in namespace: demo for gvr: { v1 pods}"
    );
    let (t, verb, _) = ns.last().unwrap();
    assert_eq!(verb, "delete");
    near(*t, 136.1, 0.3, "namespace deleted");
    assert_eq!(left_in(&ran, "demo"), Vec::<String>::new());
}
