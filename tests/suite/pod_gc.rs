//! The pod garbage collector end to end: terminated pods past
//! `terminatedPodGcThreshold` are force-deleted oldest first (also across a
//! kube-controller-manager crash), and the pods of a deleted node are marked
//! Failed and force-deleted after the 40 s quarantine. Before PodGC every
//! one of these pods stayed in etcd for the rest of the run.

use crate::common;

use std::collections::BTreeMap;

use common::{run_full, scenario, secs, Ran};
use kubesim::api::Kind;

/// One worker pool; a Job of 12 pods (3 at a time, 5 s each) and the
/// collector keeping 5 terminated pods.
fn batch(timeline: &str) -> String {
    format!(
        r#"
name: pod-gc
duration: 3m
cluster:
  images: {{busybox:1.36: 4Mi}}
  nodePools:
    - {{name: worker, count: 2, capacity: {{cpu: "4", memory: 16Gi}}, preloadedImages: [busybox:1.36]}}
  controllerManager:
    terminatedPodGcThreshold: 5
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {{name: work, namespace: default}}
    spec:
      completions: 12
      parallelism: 3
      template:
        metadata:
          annotations: {{kubesim.io/run-for: 5s}}
        spec:
          restartPolicy: Never
          containers:
            - name: work
              image: busybox:1.36
              resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
timeline:
  - at: 0s
    note: the Job starts
{timeline}"#
    )
}

/// Every pod the run created: name → creationTimestamp (whole seconds, as
/// the object holds it and as PodGC sorts).
fn created(ran: &Ran) -> BTreeMap<String, u64> {
    ran.writes("Pod/")
        .filter(|w| w["verb"] == "create")
        .map(|w| {
            let key = w["key"].as_str().unwrap();
            let name = key.rsplit('/').next().unwrap().to_string();
            (name, w["created"].as_u64().unwrap() / 1_000_000_000)
        })
        .collect()
}

/// Pods left in etcd at the end: name → phase.
fn stored_pods(ran: &Ran) -> BTreeMap<String, String> {
    let etcd = &ran.finished.engine.shared.etcd;
    etcd.keys()
        .filter(|k| k.kind == Kind::Pod)
        .map(|k| {
            let p = etcd.get(k).unwrap();
            let phase = p.as_pod().unwrap().status.phase.as_str().to_string();
            (k.name.clone(), phase)
        })
        .collect()
}

fn job_succeeded(ran: &Ran) -> i64 {
    let etcd = &ran.finished.engine.shared.etcd;
    let k = etcd.keys().find(|k| k.kind == Kind::Job).unwrap();
    etcd.get(k).unwrap().to_json()["status"]["succeeded"]
        .as_i64()
        .unwrap_or(0)
}

/// The threshold holds at the end and the survivors are the newest.
fn assert_threshold_kept(ran: &Ran) {
    let all = created(ran);
    // 12 completions and no failures: the Job created exactly 12 pods,
    // and counted every one although 7 of them were collected.
    assert_eq!(all.len(), 12, "pods created: {all:?}");
    assert_eq!(job_succeeded(ran), 12);
    let left = stored_pods(ran);
    // 12 terminated - threshold 5 = 7 deleted: exactly 5 remain, all
    // Succeeded (before PodGC all 12 stayed).
    assert_eq!(left.len(), 5, "left: {left:?}");
    assert!(left.values().all(|p| p == "Succeeded"), "{left:?}");
    // Oldest first (creationTimestamp, then name): the 5 that remain are
    // the last 5 in that order.
    let mut order: Vec<(u64, &String)> = all.iter().map(|(n, c)| (*c, n)).collect();
    order.sort();
    let newest: Vec<&String> = order[7..].iter().map(|(_, n)| *n).collect();
    let kept: Vec<&String> = left.keys().collect();
    let mut newest_sorted = newest.clone();
    newest_sorted.sort();
    assert_eq!(kept, newest_sorted, "order {order:?}");
}

/// Pods removed from etcd (`Write` verb delete), in time order: nothing
/// but PodGC deletes a pod in these runs.
fn pod_deletes(ran: &Ran) -> Vec<(f64, String)> {
    ran.writes("Pod/")
        .filter(|w| w["verb"] == "delete")
        .map(|w| (secs(w), w["key"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn terminated_pods_over_the_threshold_are_collected_oldest_first() {
    let ran = run_full(&scenario(&batch("")), None);
    assert_threshold_kept(&ran);
    // 7 deletions, each on a 20 s pass: the first pass runs once the
    // informers have synced (just after 0 s) and each next one 20 s after
    // the last ended (a few ms of requests later), so every deletion falls
    // within half a second after a multiple of 20 s.
    let deletes = pod_deletes(&ran);
    assert_eq!(deletes.len(), 7, "{deletes:?}");
    assert!(deletes.iter().all(|(t, _)| t % 20.0 < 0.5), "{deletes:?}");
}

#[test]
fn the_threshold_holds_across_a_controller_manager_crash() {
    let timeline = "  - {at: 15s, crashComponent: kube-controller-manager}\n  - {at: 45s, restartComponent: kube-controller-manager}\n";
    let ran = run_full(&scenario(&batch(timeline)), None);
    // The new process lists again and runs its first pass once synced;
    // the end is the same: 5 newest kept, 7 collected.
    assert_threshold_kept(&ran);
    let deletes = pod_deletes(&ran);
    assert_eq!(deletes.len(), 7, "{deletes:?}");
    // Nothing is collected while no controller-manager runs (15 s – 45 s).
    assert!(
        deletes.iter().all(|(t, _)| !(15.5..45.0).contains(t)),
        "{deletes:?}"
    );
}

#[test]
fn a_zero_threshold_keeps_every_terminated_pod() {
    let yaml = batch("").replace("terminatedPodGcThreshold: 5", "terminatedPodGcThreshold: 0");
    let ran = run_full(&scenario(&yaml), None);
    // 0 turns gcTerminated off: all 12 Succeeded pods stay.
    assert_eq!(stored_pods(&ran).len(), 12);
}

#[test]
fn a_negative_threshold_is_a_located_error() {
    let yaml = batch("").replace(
        "terminatedPodGcThreshold: 5",
        "terminatedPodGcThreshold: -1",
    );
    let Err(errs) = kubesim::scenario::load_str("t.yaml", &yaml, std::path::Path::new(".")) else {
        panic!("a negative threshold loaded");
    };
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(
            |e| e.contains("cluster.controllerManager.terminatedPodGcThreshold")
                && e.contains("t.yaml:")
        ),
        "{text:?}"
    );
}

const ORPHANS: &str = r#"
name: pod-gc-orphans
duration: 3m
cluster:
  images: {nginx:1.27: 70Mi}
  nodePools:
    - {name: worker, count: 2, capacity: {cpu: "4", memory: 16Gi}, preloadedImages: [nginx:1.27]}
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: default}
    spec:
      replicas: 4
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: "nginx:1.27"}]}
timeline:
  - {at: 30s, crashNode: worker-2}
  - {at: 40s, delete: {kind: Node, name: worker-2}}
"#;

#[test]
fn pods_of_a_deleted_node_are_marked_failed_and_deleted_after_quarantine() {
    let ran = run_full(&scenario(ORPHANS), None);
    let node_gone = ran
        .writes("Node/worker-2")
        .find(|w| w["verb"] == "delete")
        .map(secs)
        .expect("node deleted");
    // Pods bound to worker-2 by a status write or the bind.
    let on_w2: Vec<String> = ran
        .writes("Pod/")
        .filter(|w| w["object"]["spec"]["nodeName"] == "worker-2")
        .map(|w| w["key"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(!on_w2.is_empty(), "the spread put pods on worker-2");
    for key in &on_w2 {
        let failed = ran
            .writes(key)
            .find(|w| {
                w["object"]["status"]["phase"] == "Failed"
                    && w["object"]["status"]["conditions"]
                        .as_array()
                        .is_some_and(|cs| {
                            cs.iter().any(|c| {
                                c["type"] == "DisruptionTarget"
                                    && c["reason"] == "DeletionByPodGC"
                                    && c["message"] == "PodGC: node no longer exists"
                            })
                        })
            })
            .map(secs)
            .unwrap_or_else(|| panic!("{key} marked Failed by PodGC"));
        let deleted = ran
            .writes(key)
            .find(|w| w["verb"] == "delete")
            .map(secs)
            .unwrap_or_else(|| panic!("{key} deleted"));
        // The first pass to miss the node queues it (within 20 s of the
        // delete); 40 s of quarantine; the pass after that GETs it (404),
        // so: node gone + 40 s <= marked <= node gone + 20 + 40 + 20 s
        // (and a little for the requests).
        assert!(
            failed >= node_gone + 40.0 && failed <= node_gone + 81.0,
            "{key}: node gone {node_gone}s, failed {failed}s"
        );
        assert!(
            deleted >= failed && deleted <= failed + 1.0,
            "{key}: {deleted}s"
        );
    }
    // The end: no pod names worker-2, and the Deployment's 4 run on worker-1
    // (before PodGC the orphans stayed Running in etcd: taint eviction
    // needs the Node object, which is gone).
    let etcd = &ran.finished.engine.shared.etcd;
    let nodes: Vec<Option<String>> = etcd
        .keys()
        .filter(|k| k.kind == Kind::Pod)
        .map(|k| etcd.get(k).unwrap().as_pod().unwrap().node_name.clone())
        .collect();
    assert_eq!(nodes.len(), 4, "{nodes:?}");
    assert!(
        nodes.iter().all(|n| n.as_deref() == Some("worker-1")),
        "{nodes:?}"
    );
}
