//! `kubesim shrink` on a scenario whose "failure" is a synthetic
//! predicate: every reduction (fault pairs, other entries, objects,
//! replicas, node counts, horizon) is exercised on the real loader and
//! runs, and the exit codes of the command.

use crate::common;

use std::path::Path;

use kubesim::faults::shrink::{shrink_scenario, Horizon};
use kubesim::scenario::load_str;
use kubesim::scenario::run::Finished;
use kubesim::sim::{SimDuration, TraceLevel};

const TEXT: &str = r#"name: shrink-me
seed: 3
duration: 5m
cluster:
  nodePools:
    - name: worker
      count: 8
      capacity: {cpu: "4", memory: 8Gi, pods: "110"}
objects:
  # the namespace the app lives in
  - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      replicas: 12
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: nginx:1.27}]
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: extra, namespace: default}}
timeline:
  - {at: 10s, scale: {kind: Deployment, name: web, namespace: shop, replicas: 6}}
  - {at: 20s, crashNode: "worker-1", note: "fault: nodeCrash worker-1 for 10s"}
  - {at: 30s, restartNode: "worker-1", note: "fault healed: nodeCrash worker-1"}
  - {at: 40s, crashNode: "worker-3", note: "fault: nodeCrash worker-3 for 20s"}
  - {at: 50s, partition: ["worker-2"], note: "fault: partition worker-2 for 10s"}
  - {at: 60s, heal: true, note: "fault healed: partition worker-2"}
  - {at: 60s, restartNode: "worker-3", note: "fault healed: nodeCrash worker-3"}
  - at: 70s
    note: just a note
"#;

/// "Fails" when worker-3 crashed and at least one pod of web ran (the
/// Deployment stays, with at least one replica; its namespace with it).
fn fails(f: &Finished) -> bool {
    let crashed = f
        .summary
        .actions
        .iter()
        .any(|a| a.action == "crash node worker-3" && a.result.starts_with("ok"));
    let web = f.engine.shared.etcd.keys().any(|k| {
        k.namespace == "shop" && k.name.starts_with("web-") && k.kind == kubesim::api::Kind::Pod
    });
    crashed && web
}

#[test]
fn shrinks_to_the_fault_pair_and_the_objects_that_matter() {
    let mut pred = fails;
    let s = shrink_scenario(
        "shrink.yaml",
        TEXT,
        Path::new("."),
        Horizon::AfterLastEntry,
        TraceLevel::Faults,
        &mut pred,
    )
    .expect("the scenario fails");
    // Kept: the worker-3 crash and its restart (one unit); every other
    // fault, the scale and the note go.
    assert_eq!(s.before.timeline, 8);
    assert_eq!(s.after.timeline, 2, "{}", s.text);
    assert!(s.text.contains("crashNode: \"worker-3\""));
    assert!(s.text.contains("restartNode: \"worker-3\""));
    // Kept: the Namespace (the Deployment needs it: without it the
    // candidate does not load) and the Deployment; the ConfigMap goes.
    assert_eq!((s.before.objects, s.after.objects), (3, 2));
    assert!(
        s.text.contains("# the namespace the app lives in"),
        "comments stay"
    );
    // Replicas 12 → 6 → 3 → 1: a single pod still runs.
    assert_eq!((s.before.replicas, s.after.replicas), (12, 1));
    // Nodes 8 → 4 → 3: worker-3 is named, so never below 3.
    assert_eq!((s.before.nodes, s.after.nodes), (8, 3));
    // Duration 5m toward the last kept entry (60s), in whole seconds:
    // 180s, 120s, 90s, 75s, 68s, 64s, 62s while a pod still exists; it
    // ends between 60s and 5m, and shorter than it began.
    assert!(s.after.duration < SimDuration::from_secs(300));
    assert!(s.after.duration >= SimDuration::from_secs(60));
    // min.yaml loads and still fails.
    let loaded = load_str("min.yaml", &s.text, Path::new(".")).expect("min.yaml loads");
    let f = kubesim::faults::shrink::scenario::run_checked(&loaded, TraceLevel::Faults).unwrap();
    assert!(fails(&f));
    assert!(s.runs > 0);
}

#[test]
fn shrink_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    // A scenario no checker fails: exit 1, said so.
    let ok = dir.path().join("ok.yaml");
    std::fs::write(&ok, TEXT).unwrap();
    let (code, _, err) = common::kubesim(&["shrink", ok.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not fail"), "{err}");
    assert!(!dir.path().join("min.yaml").exists());
    // Bad input: a located error, exit 2.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nduration: 5q\n").unwrap();
    let (code, _, err) = common::kubesim(&["shrink", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.yaml:2:"), "{err}");
    // A scenario with `faults:` is not a repro: exit 2 at the section.
    let faulted = dir.path().join("faulted.yaml");
    let text = TEXT.replace(
        "timeline:\n",
        "faults:\n  window: {from: 1m, until: 2m}\n  nodeCrash: {meanTimeBetween: 1m, duration: {min: 5s, max: 10s}, pools: [worker]}\ntimeline:\n",
    );
    std::fs::write(&faulted, text).unwrap();
    let (code, _, err) = common::kubesim(&["shrink", faulted.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("faulted.yaml:") && err.contains("repro"),
        "{err}"
    );
}
