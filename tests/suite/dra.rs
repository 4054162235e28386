//! Dynamic Resource Allocation end to end: a pool's driver publishes each
//! node's devices as a ResourceSlice, the resourceclaim controller makes a
//! claim per pod from its template, the scheduler's DynamicResources plugin
//! allocates devices (CEL selectors of the class and the request) and
//! writes allocation and reservation before binding, the kubelet checks
//! the claim before the sandbox, and the controller deallocates and
//! deletes the claim once its pod is done. After a node crash and a
//! scheduler crash every pod still runs, and no device is ever held by two
//! claims at once.

use std::collections::BTreeMap;

use crate::common;

use common::{run_at, scenario, secs, Ran};
use kubesim::sim::TraceLevel;
use serde_json::Value;

fn gpu_job(completions: u32, run_for: &str) -> String {
    format!(
        r#"name: dra
seed: 1
duration: 20m
cluster:
  nodePools:
    - name: gpu
      count: 2
      capacity: {{cpu: "8", memory: 32Gi}}
      devices:
        - driver: gpu.example.com
          count: 2
          attributes:
            model: {{string: T4}}
          capacity:
            memory: 16Gi
objects:
  - apiVersion: resource.k8s.io/v1
    kind: DeviceClass
    metadata: {{name: gpu.example.com}}
    spec:
      selectors:
        - cel: {{expression: 'device.driver == "gpu.example.com"'}}
  - apiVersion: resource.k8s.io/v1
    kind: ResourceClaimTemplate
    metadata: {{name: one-t4, namespace: default}}
    spec:
      spec:
        devices:
          requests:
            - name: gpu
              exactly:
                deviceClassName: gpu.example.com
                selectors:
                  - cel: {{expression: 'device.attributes["gpu.example.com"].model == "T4" && device.capacity["gpu.example.com"].memory.compareTo(quantity("16Gi")) >= 0'}}
  - apiVersion: batch/v1
    kind: Job
    metadata: {{name: train, namespace: default}}
    spec:
      completions: {completions}
      parallelism: {completions}
      backoffLimit: 20
      template:
        metadata:
          annotations: {{kubesim.io/run-for: {run_for}}}
        spec:
          restartPolicy: Never
          resourceClaims:
            - name: gpu
              resourceClaimTemplateName: one-t4
          containers:
            - name: train
              image: busybox:1.36
              resources:
                requests: {{cpu: "1", memory: 1Gi}}
                claims:
                  - name: gpu
"#
    )
}

fn succeeded(s: &kubesim::report::summary::Summary) -> u64 {
    s.pods.by_phase.get("Succeeded").copied().unwrap_or(0)
}

fn run(yaml: &str) -> Ran {
    run_at(&scenario(yaml), None, TraceLevel::Full)
}

/// Devices held over the run, from the claims' writes: panics if one is
/// ever held by two claims; returns (claims ever allocated, most at once).
fn device_holdings(ran: &Ran) -> (usize, usize) {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut by_claim: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut ever, mut most) = (0, 0);
    for w in ran.writes("ResourceClaim/") {
        let key = w["key"].as_str().unwrap().to_string();
        let results = w
            .pointer("/object/status/allocation/devices/results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let now: Vec<String> = if w["verb"] == "delete" {
            Vec::new()
        } else {
            results
                .iter()
                .map(|r| format!("{}/{}/{}", r["driver"], r["pool"], r["device"]))
                .collect()
        };
        for d in by_claim.remove(&key).unwrap_or_default() {
            held.remove(&d);
        }
        if !now.is_empty() {
            ever += 1;
        }
        for d in &now {
            if let Some(other) = held.insert(d.clone(), key.clone()) {
                panic!("device {d} held by {other} and {key}");
            }
        }
        by_claim.insert(key, now);
        most = most.max(held.len());
    }
    (ever, most)
}

#[test]
fn pods_wait_for_free_devices_and_claims_go_when_their_pods_are_done() {
    let ran = run(&gpu_job(6, "2m"));
    let s = &ran.finished.summary;
    assert_eq!(succeeded(s), 6, "{}", s.render());
    // Two nodes of two T4s: four claims allocated at once, never more;
    // six allocations in all (each claim once), each freed again.
    let (ever, most) = device_holdings(&ran);
    assert_eq!((ever, most), (6, 4));
    // The two pods without a device wait for the first to finish (run for
    // 2 minutes): "cannot allocate all claims" on both nodes.
    let failed: Vec<&Value> = ran
        .events(Some("kube-scheduler"), "FailedScheduling")
        .collect();
    assert!(failed.iter().all(|r| r["message"]
        .as_str()
        .unwrap()
        .starts_with("0/2 nodes are available: 2 cannot allocate all claims.")));
    let bound: Vec<f64> = ran
        .events(Some("kube-scheduler"), "Scheduled")
        .map(secs)
        .collect();
    assert_eq!(bound.len(), 6);
    assert!(bound[4] >= 120.0 && bound[5] >= 120.0, "{bound:?}");
    // Each claim was made from the template for its pod, and deleted by
    // the controller after the pod succeeded.
    let created = ran
        .writes("ResourceClaim/")
        .filter(|w| w["verb"] == "create")
        .count();
    let deleted = ran
        .writes("ResourceClaim/")
        .filter(|w| w["verb"] == "delete")
        .count();
    assert_eq!((created, deleted), (6, 6));
    let slices = ran
        .writes("ResourceSlice/")
        .filter(|w| w["verb"] == "create")
        .count();
    assert_eq!(slices, 2);
    assert_eq!(run(&gpu_job(6, "2m")).digest(), ran.digest());
}

#[test]
fn after_a_node_crash_and_a_scheduler_crash_every_pod_gets_a_device() {
    let faults = "timeline:\n  - at: 1402ms\n    crashComponent: kube-scheduler\n  - at: 5s\n    restartComponent: kube-scheduler\n  - at: 30s\n    crashNode: gpu-1\n  - at: 12m\n    restartNode: gpu-1\n";
    let ran = run(&format!("{}{faults}", gpu_job(4, "1m")));
    let s = &ran.finished.summary;
    // gpu-1's two pods fail with the node (evicted 300 s after it goes
    // NotReady); the Job makes new ones whose claims wait for devices, and
    // gpu-2's free once its own pods finish.
    assert!(succeeded(s) >= 4, "{}", s.render());
    let (ever, _) = device_holdings(&ran);
    assert!(ever >= 6, "{ever}");
    assert_eq!(
        (s.nodes.ready, s.pods.unscheduled),
        (2, 0),
        "{}",
        s.render()
    );
}

#[test]
fn a_pod_bound_by_hand_without_an_allocation_waits_in_container_creating() {
    // spec.nodeName skips the scheduler: the claim is never allocated or
    // reserved, and the kubelet refuses to prepare it, every 10 s.
    let head = gpu_job(1, "1m");
    let head = &head[..head.find("  - apiVersion: batch/v1").unwrap()];
    let yaml = format!(
        r#"{head}  - apiVersion: resource.k8s.io/v1
    kind: ResourceClaim
    metadata: {{name: shared, namespace: default}}
    spec:
      devices:
        requests:
          - name: gpu
            exactly: {{deviceClassName: gpu.example.com}}
  - apiVersion: v1
    kind: Pod
    metadata: {{name: pinned, namespace: default}}
    spec:
      nodeName: gpu-1
      resourceClaims:
        - name: gpu
          resourceClaimName: shared
      containers:
        - name: c
          image: busybox:1.36
          resources:
            claims:
              - name: gpu
"#
    );
    let ran = run(&yaml.replace("duration: 20m", "duration: 1m"));
    let fails: Vec<&Value> = ran
        .events(Some("kubelet/gpu-1"), "Event")
        .filter(|r| r["reason"] == "FailedPrepareDynamicResources")
        .collect();
    let times: Vec<f64> = fails.iter().map(|r| secs(r)).collect();
    assert!(times.len() >= 4, "{times:?}");
    assert!(
        times.windows(2).all(|w| (w[1] - w[0] - 10.0).abs() < 1.0),
        "{times:?}"
    );
    let msg = fails[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "Failed to prepare dynamic resources: prepare dynamic resources: pod pinned ("
        ) && msg.contains(") is not allowed to use ResourceClaim shared ("),
        "{msg}"
    );
    assert_eq!(ran.finished.summary.pods.ready, 0);
}

#[test]
fn bad_dra_fields_are_named() {
    let errs =
        |yaml: &str| match kubesim::scenario::load_str("t.yaml", yaml, std::path::Path::new(".")) {
            Ok(_) => panic!("loaded"),
            Err(e) => e
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        };
    let base = gpu_job(1, "1m");
    let e = errs(&base.replace(
        r#"'device.driver == "gpu.example.com"'"#,
        r#"'device.driver =='"#,
    ));
    assert!(
        e.contains("t.yaml:")
            && e.contains("spec.selectors[0].cel.expression")
            && e.contains("compilation failed"),
        "{e}"
    );
    let e = errs(&base.replace("model: {string: T4}", "model: {string: T4, int: 4}"));
    assert!(
        e.contains("cluster.nodePools[0].devices[0].attributes.model"),
        "{e}"
    );
    let e = errs(&base.replace(
        "count: 2\n          attributes",
        "count: 200\n          attributes",
    ));
    assert!(
        e.contains("cluster.nodePools[0].devices[0].count") && e.contains("at most 128"),
        "{e}"
    );
    let e = errs(&base.replace(
        "deviceClassName: gpu.example.com\n",
        "deviceClassName: gpu.example.com\n                adminAccess: true\n",
    ));
    assert!(
        e.contains("spec.spec.devices.requests[0].exactly.adminAccess"),
        "{e}"
    );
}
