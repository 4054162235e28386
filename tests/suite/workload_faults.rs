//! Workload faults: a container that crashes with an exit code (restart
//! count, last state, crash-loop back-off, restartPolicy), and image pulls
//! that fail for a while (`ErrImagePull`, then `ImagePullBackOff` with the
//! image back-off of 10 s doubling to 300 s, the pod starting at its next
//! retry after the heal).

use crate::common;

use common::{run_full, scenario, secs, Ran};
use serde_json::Value;

const CLUSTER: &str = r#"
  network: {latency: {constant: 1ms}}
  apiserver: {requestLatency: {constant: 1ms}}
  etcd: {walFsync: {constant: 1ms}}
  images: {app:1: 20Mi}
  kubelet:
    sandboxCreateLatency: {constant: 1s}
    containerStartLatency: {constant: 2s}
    imagePullOverhead: {constant: 500ms}
    imagePullBandwidth: 10Mi
"#;

fn web(timeline: &str) -> String {
    format!(
        r#"
name: crash
duration: 3m
cluster:{CLUSTER}  nodePools:
    - {{name: worker, count: 2, capacity: {{cpu: "4", memory: 8Gi}}, preloadedImages: [app:1]}}
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web}}
    spec:
      replicas: 2
      selector: {{matchLabels: {{app: web}}}}
      template:
        metadata: {{labels: {{app: web}}}}
        spec:
          containers: [{{name: app, image: app:1}}]
timeline:
{timeline}"#
    )
}

/// The container status of `pod`'s first container in each committed write.
fn statuses<'a>(ran: &'a Ran, pod: &'a str) -> impl Iterator<Item = (f64, &'a Value)> + 'a {
    ran.writes(pod).filter_map(|w| {
        let cs = w["object"]["status"]["containerStatuses"].get(0)?;
        Some((secs(w), cs))
    })
}

#[test]
fn a_crashed_container_restarts_with_its_exit_code_and_back_off() {
    let s = scenario(&web(
        "  - {at: 60s, crashContainer: {name: web, pod: 1, exitCode: 137}}\n  - {at: 100s, crashContainer: {name: web, pod: 1, exitCode: 137}}\n",
    ));
    let ran = run_full(&s, None);
    let crashes: Vec<&Value> = ran.events(Some("kubectl"), "ContainerCrash").collect();
    assert_eq!(crashes.len(), 2);
    // Both name the same pod: index 1 of the two running pods in name order.
    let target = crashes[0]["target"].as_str().unwrap().to_string();
    assert_eq!(crashes[1]["target"], target.as_str());
    let key = format!("Pod/{target}");
    let mut pods: Vec<String> = ran
        .writes("Pod/default/web-")
        .map(|w| w["key"].as_str().unwrap().to_string())
        .collect();
    pods.sort();
    pods.dedup();
    assert_eq!(
        pods.len(),
        2,
        "no replacement pod: the container restarts in place"
    );
    assert_eq!(pods[1], key, "the second in name order");
    let (t1, t2) = (secs(crashes[0]), secs(crashes[1]));
    let st: Vec<(f64, &Value)> = statuses(&ran, &key).collect();
    // The first exit restarts at once (no back-off entry yet): Running
    // again after the 2 s container start, restartCount 1, lastState the
    // crash with its exit code.
    let first = st
        .iter()
        .find(|(_, c)| c["restartCount"] == 1 && c["state"]["running"].is_object())
        .expect("restarted once");
    assert!((first.0 - (t1 + 2.0)).abs() < 0.01, "{} vs {t1}", first.0);
    assert_eq!(first.1["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(first.1["lastState"]["terminated"]["reason"], "Error");
    // The second exit waits its 10 s back-off in CrashLoopBackOff, then
    // starts (2 s): restartCount 2 at t2 + 12 s.
    assert!(st.iter().any(|(t, c)| *t >= t2
        && *t < t2 + 10.0
        && c["state"]["waiting"]["reason"] == "CrashLoopBackOff"));
    let second = st
        .iter()
        .find(|(_, c)| c["restartCount"] == 2 && c["state"]["running"].is_object())
        .expect("restarted twice");
    assert!(
        (second.0 - (t2 + 12.0)).abs() < 0.01,
        "{} vs {t2}",
        second.0
    );
    // The other pod was never touched; the Deployment is back at 2 ready.
    assert!(statuses(&ran, &pods[0]).all(|(_, c)| c["restartCount"] == 0));
    let d = ran.writes("Deployment/default/web").last().unwrap();
    assert_eq!(d["object"]["status"]["readyReplicas"], 2);
}

#[test]
fn a_crash_under_restart_policy_never_fails_the_pod_with_its_code() {
    let text = format!(
        r#"
name: never
duration: 1m
cluster:{CLUSTER}  nodePools:
    - {{name: worker, count: 1, capacity: {{cpu: "4", memory: 8Gi}}, preloadedImages: [app:1]}}
objects:
  - apiVersion: v1
    kind: Pod
    metadata: {{name: once}}
    spec:
      restartPolicy: Never
      containers: [{{name: app, image: app:1}}]
timeline:
  - {{at: 20s, crashContainer: {{kind: Pod, name: once, container: app, exitCode: 3}}}}
"#
    );
    let ran = run_full(&scenario(&text), None);
    let last = ran.writes("Pod/default/once").last().unwrap();
    assert_eq!(last["object"]["status"]["phase"], "Failed");
    let c = &last["object"]["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["terminated"]["exitCode"], 3);
    assert_eq!(c["restartCount"], 0);
}

#[test]
fn image_pulls_fail_with_upstreams_back_off_and_recover_after_the_heal() {
    // app:1 is not on the node; its pulls fail from 5 s to 1300 s.
    let text = format!(
        r#"
name: pulls
duration: 1700s
cluster:{CLUSTER}  nodePools:
    - {{name: worker, count: 1, capacity: {{cpu: "4", memory: 8Gi}}}}
timeline:
  - {{at: 5s, failImagePulls: {{image: "app:1"}}}}
  - at: 10s
    apply:
      apiVersion: v1
      kind: Pod
      metadata: {{name: p}}
      spec:
        containers: [{{name: app, image: app:1}}]
  - {{at: 1300s, restoreImagePulls: {{image: "app:1"}}}}
"#
    );
    let ran = run_full(&scenario(&text), None);
    let failed: Vec<f64> = ran
        .events(Some("kubelet/worker-1"), "PullFailed")
        .map(secs)
        .collect();
    assert!(failed.len() >= 8, "{failed:?}");
    // After a failure the back-off B holds the next pull back (10 s, then
    // doubling: 20, 40, 80, 160, then the 300 s cap); the pod worker
    // retries a failed sync every 10–15 s (`wait.Jitter(10s, 0.5)`), so the
    // next pull starts at the first retry at least B later (< B + 15 s)
    // and fails 0.5 s (the pull overhead) after it starts.
    let backoff = [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0];
    for (k, b) in backoff.iter().enumerate() {
        let gap = failed[k + 1] - failed[k];
        assert!(
            gap >= b + 0.5 && gap < b + 15.5,
            "gap {k}: {gap} s after a back-off of {b} s ({failed:?})"
        );
    }
    // The status: ErrImagePull on each failure, ImagePullBackOff with
    // upstream's message on the retries inside the back-off.
    let st: Vec<(f64, &Value)> = statuses(&ran, "Pod/default/p").collect();
    let reason = |c: &Value| c["state"]["waiting"]["reason"].as_str().map(str::to_string);
    assert!(st
        .iter()
        .any(|(_, c)| reason(c).as_deref() == Some("ErrImagePull")));
    let back: Vec<&Value> = st
        .iter()
        .filter(|(_, c)| reason(c).as_deref() == Some("ImagePullBackOff"))
        .map(|(_, c)| *c)
        .collect();
    assert!(!back.is_empty());
    assert_eq!(
        back[0]["state"]["waiting"]["message"],
        "Back-off pulling image \"app:1\""
    );
    // Healed at 1300 s: the last failure came before it, and the pull that
    // succeeds is the next one its 300 s back-off lets through (the run
    // lasts 1700 s: 1300 s + 300 s + 15 s + the pull and start fit): pulled
    // (0.5 s + 20Mi at 10Mi/s = 2.5 s), started (2 s) and Running.
    let last = *failed.last().unwrap();
    assert!(last < 1300.0);
    let pulled = ran
        .events(Some("kubelet/worker-1"), "Pulled")
        .map(secs)
        .next()
        .expect("pulled after the heal");
    assert!(pulled > 1300.0, "{pulled}");
    assert!(
        pulled >= last + 300.0 + 2.5 && pulled < last + 300.0 + 15.0 + 2.5,
        "{pulled} after {last}"
    );
    let running = st
        .iter()
        .find(|(_, c)| c["state"]["running"].is_object())
        .map(|(t, _)| *t)
        .expect("Running");
    assert!(
        (running - (pulled + 2.0)).abs() < 0.01,
        "{running} vs {pulled}"
    );
}
