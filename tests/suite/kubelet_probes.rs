//! Liveness and readiness probe failures (scripted by the `kubesim.io/`
//! probe annotations) and preStop hooks, at the times upstream's prober and
//! `killContainer` imply.

use crate::common;

use common::{run_full, scenario, secs, Ran};
use serde_json::Value;

/// One node, constant latencies: containers start and stop at once.
fn cluster(duration: &str, pod: &str, timeline: &str) -> String {
    format!(
        r#"
name: probes
duration: {duration}
cluster:
  network: {{latency: {{constant: 1ms}}}}
  apiserver: {{requestLatency: {{constant: 1ms}}}}
  etcd: {{walFsync: {{constant: 1ms}}}}
  kubelet:
    sandboxCreateLatency: {{constant: 1s}}
    containerStartLatency: {{constant: 0s}}
    containerStopLatency: {{constant: 0s}}
  nodePools:
    - {{name: w, count: 1, capacity: {{cpu: "2", memory: 4Gi}}}}
objects:
  - {pod}
timeline: {timeline}
"#
    )
}

/// The kubelet's Events with `reason`: (time, message).
fn events(ran: &Ran, reason: &str) -> Vec<(f64, String)> {
    ran.events(Some("kubelet/w-1"), "Event")
        .filter(|r| r["reason"] == reason)
        .map(|r| (secs(r), r["message"].as_str().unwrap().to_string()))
        .collect()
}

fn times(ran: &Ran, event: &str) -> Vec<f64> {
    ran.events(Some("kubelet/w-1"), event).map(secs).collect()
}

/// Differences between consecutive instants, to the millisecond.
fn gaps(ts: &[f64]) -> Vec<f64> {
    ts.windows(2)
        .map(|w| ((w[1] - w[0]) * 1000.0).round() / 1000.0)
        .collect()
}

fn last_status(ran: &Ran, key: &str) -> Value {
    ran.writes(key).last().expect("written")["object"]["status"].clone()
}

const LIVENESS_POD: &str = r#"apiVersion: v1
    kind: Pod
    metadata:
      name: web
      annotations: {kubesim.io/liveness-fails-after: 0s}
    spec:
      nodeName: w-1
      containers:
        - name: app
          image: busybox
          livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 5, periodSeconds: 10}"#;

#[test]
fn a_failing_liveness_probe_restarts_the_container_with_the_crash_loop_back_off() {
    let ran = run_full(&scenario(&cluster("3m", LIVENESS_POD, "[]")), None);
    let starts = times(&ran, "ContainersStarted");
    // Each container fails every probe: probes at 5, 15, 25 s after its
    // start (initialDelaySeconds, then periodSeconds); the third failure
    // (failureThreshold 3) kills it at 5 + 2 × 10 = 25 s; it stops at once
    // (stop latency 0, no preStop) and restarts after the back-off 0, 10,
    // 20, 40 s: starts 25, 35, 45, 65 s apart. (Before: the liveness probe
    // was never run, one start only.)
    assert_eq!(gaps(&starts)[..4], [25.0, 35.0, 45.0, 65.0], "{starts:?}");
    let unhealthy = events(&ran, "Unhealthy");
    assert_eq!(
        unhealthy[0].1,
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
    );
    // Three Unhealthy events per container, 10 s apart, from start + 5 s.
    let t0 = starts[0];
    let first: Vec<f64> = unhealthy[..3].iter().map(|e| e.0 - t0).collect();
    assert_eq!(gaps(&first), [10.0, 10.0]);
    assert!((first[0] - 5.0).abs() < 1e-6, "{first:?}");
    let killing = events(&ran, "Killing");
    assert_eq!(
        killing[0].1,
        "Container app failed liveness probe, will be restarted"
    );
    // One kill per container, each 25 s after its start.
    for (k, s) in killing.iter().zip(&starts) {
        assert!((k.0 - s - 25.0).abs() < 1e-6, "{killing:?} {starts:?}");
    }
    // In 3 min: starts at t0, +25, +60, +105, +170 s: four restarts. The
    // API shows restartCount 4 and the last kill as the last state,
    // exited 0 on SIGTERM (the app stops at once).
    let cs = &last_status(&ran, "Pod/default/web")["containerStatuses"][0];
    assert_eq!(starts.len(), 5, "{starts:?}");
    assert_eq!(cs["restartCount"], 4, "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Completed", "{cs}");
}

#[test]
fn with_restart_policy_never_a_liveness_failure_ends_the_container() {
    let pod = LIVENESS_POD.replace("nodeName: w-1", "nodeName: w-1\n      restartPolicy: Never");
    let ran = run_full(&scenario(&cluster("2m", &pod, "[]")), None);
    // Killed 25 s after its start, not restarted: the pod succeeds (the
    // app exited 0 on SIGTERM), and the message does not promise a restart.
    assert_eq!(times(&ran, "ContainersStarted").len(), 1);
    let killing = events(&ran, "Killing");
    assert_eq!(killing.len(), 1);
    assert_eq!(killing[0].1, "Container app failed liveness probe");
    assert_eq!(last_status(&ran, "Pod/default/web")["phase"], "Succeeded");
}

/// (time, Ready status) at each change of the pod's Ready condition.
fn ready_changes(ran: &Ran, key: &str) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for w in ran.writes(key) {
        let Some(c) = w["object"]["status"]["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == "Ready"))
        else {
            continue;
        };
        let st = c["status"].as_str().unwrap().to_string();
        if out.last().is_none_or(|(_, s)| *s != st) {
            out.push((secs(w), st));
        }
    }
    out
}

#[test]
fn a_readiness_probe_failing_for_a_while_makes_the_pod_unready_then_ready() {
    let pod = r#"apiVersion: v1
    kind: Pod
    metadata:
      name: web
      annotations: {kubesim.io/readiness-fails-after: 20s, kubesim.io/readiness-fails-for: 15s}
    spec:
      nodeName: w-1
      containers:
        - name: app
          image: busybox
          readinessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 5, periodSeconds: 5, failureThreshold: 2}"#;
    let ran = run_full(&scenario(&cluster("90s", pod, "[]")), None);
    let t0 = times(&ran, "ContainersStarted")[0];
    let changes: Vec<(f64, String)> = ready_changes(&ran, "Pod/default/web")
        .into_iter()
        .map(|(t, s)| (((t - t0) * 100.0).round() / 100.0, s))
        .collect();
    // Probes every 5 s from start + 5 s. Ready at the first pass (5 s).
    // Failing in [20 s, 35 s): probes at 20 and 25 fail, the second
    // (failureThreshold 2) makes it unready at 25 s; 30 fails; 35 passes
    // (successThreshold 1): Ready again at 35 s. (Before: Ready from 5 s on.)
    let expected = [
        (-1.0, "False".to_string()),
        (5.0, "True".into()),
        (25.0, "False".into()),
        (35.0, "True".into()),
    ];
    assert_eq!(changes.len(), 4, "{changes:?}");
    for ((t, s), (xt, xs)) in changes.iter().zip(&expected).skip(1) {
        assert!((t - xt).abs() < 0.05 && s == xs, "{changes:?}");
    }
    let unhealthy = events(&ran, "Unhealthy");
    let at: Vec<f64> = unhealthy.iter().map(|e| (e.0 - t0).round()).collect();
    assert_eq!(at, [20.0, 25.0, 30.0]);
    let ip = last_status(&ran, "Pod/default/web")["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        unhealthy[0].1,
        format!("Readiness probe failed: dial tcp {ip}:8080: connect: connection refused")
    );
}

/// A pod that takes `stop-after` to exit on SIGTERM, with a preStop hook,
/// deleted at 20 s.
fn pre_stop_pod(hook: &str, annotations: &str, grace: u32) -> String {
    format!(
        r#"apiVersion: v1
    kind: Pod
    metadata:
      name: web
      annotations: {{{annotations}}}
    spec:
      nodeName: w-1
      terminationGracePeriodSeconds: {grace}
      containers:
        - name: app
          image: busybox
          lifecycle: {{preStop: {hook}}}"#
    )
}

const DELETE_AT_20S: &str = "[{at: 20s, delete: {kind: Pod, name: web}}]";

/// Seconds from the kubelet's `Killing` to the container's finishedAt, and
/// how it ended.
fn stopped_after_kill(ran: &Ran) -> (f64, Value) {
    let kill = times(ran, "Killing")[0];
    let (finished, term) = ran
        .writes("Pod/default/web")
        .filter_map(|w| {
            let t = &w["object"]["status"]["containerStatuses"][0]["state"]["terminated"];
            t.is_object()
                .then(|| (t["finishedAt"].as_str().unwrap().to_string(), t.clone()))
        })
        .last()
        .expect("terminated");
    // finishedAt is RFC 3339 to the second: compare whole seconds.
    let sec: f64 = finished[17..19].parse().unwrap();
    let min: f64 = finished[14..16].parse().unwrap();
    (((min * 60.0 + sec) - kill.floor()).round(), term)
}

#[test]
fn a_pre_stop_sleep_holds_sigterm_inside_the_grace_period() {
    let pod = pre_stop_pod("{sleep: {seconds: 5}}", "kubesim.io/stop-after: 3s", 30);
    let ran = run_full(&scenario(&cluster("60s", &pod, DELETE_AT_20S)), None);
    // The hook sleeps 5 s, then SIGTERM; the app exits 3 s later: stopped
    // 8 s after the kill, within the 30 s grace, exit 0. (Before: 3 s.)
    let (after, term) = stopped_after_kill(&ran);
    assert_eq!(after, 8.0);
    assert_eq!(term["exitCode"], 0);
    assert_eq!(events(&ran, "Killing")[0].1, "Stopping container app");
    assert!(events(&ran, "FailedPreStopHook").is_empty());
    // The pod object goes once the kubelet deleted it (grace 0) after that.
    let gone = ran
        .writes("Pod/default/web")
        .last()
        .map(|w| w["verb"].clone());
    assert_eq!(gone, Some(Value::from("delete")), "{gone:?}");
}

#[test]
fn a_pre_stop_hook_longer_than_the_grace_period_is_cut_off_at_the_deadline() {
    let pod = pre_stop_pod(
        "{exec: {command: [drain]}}",
        "kubesim.io/prestop-duration: 60s, kubesim.io/stop-after: 5s",
        10,
    );
    let ran = run_full(&scenario(&cluster("60s", &pod, DELETE_AT_20S)), None);
    // The 60 s hook is abandoned at the 10 s grace; SIGTERM then with
    // minimumGracePeriodInSeconds = 2 s left; the app needs 5 s, so it is
    // SIGKILLed at 10 + 2 = 12 s: exit 137. The exec dies with it:
    // FailedPreStopHook at 12 s. (Before: stopped 5 s after the kill, exit 0.)
    let (after, term) = stopped_after_kill(&ran);
    assert_eq!(after, 12.0);
    assert_eq!(term["exitCode"], 137);
    let failed = events(&ran, "FailedPreStopHook");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1, "PreStopHook failed");
    let kill = times(&ran, "Killing")[0];
    assert!((failed[0].0 - kill - 12.0).abs() < 1e-6);
}

#[test]
fn a_sidecar_that_fails_liveness_is_restarted_beside_the_running_app() {
    let pod = r#"apiVersion: v1
    kind: Pod
    metadata:
      name: web
      annotations: {kubesim.io/liveness-fails-after: 30s}
    spec:
      nodeName: w-1
      initContainers:
        - name: proxy
          image: busybox
          restartPolicy: Always
          livenessProbe: {exec: {command: [ok]}, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 1, terminationGracePeriodSeconds: 3}
      containers: [{name: app, image: busybox}]"#;
    let ran = run_full(
        &scenario(
            &cluster("2m", pod, "[]")
                .replace("StopLatency: {constant: 0s}", "StopLatency: {constant: 5s}"),
        ),
        None,
    );
    let starts = times(&ran, "SidecarStarted");
    // Probes at 10, 20, 30 s after the sidecar's start; failing from 30 s
    // with failureThreshold 1: killed at 30 s. It takes 5 s to stop but
    // the probe's own terminationGracePeriodSeconds (3 s) cuts it off:
    // SIGKILL at 33 s, restarted at once (back-off 0). The next one dies
    // at 30 + 3 s again and waits 10 s: starts 33, 43 s apart. (Before:
    // sidecars were never restarted.)
    assert_eq!(gaps(&starts)[..2], [33.0, 43.0], "{starts:?}");
    assert_eq!(
        events(&ran, "Killing")[0].1,
        "Container proxy failed liveness probe, will be restarted"
    );
    let st = last_status(&ran, "Pod/default/web");
    let proxy = &st["initContainerStatuses"][0];
    assert_eq!(
        proxy["restartCount"].as_u64(),
        Some(starts.len() as u64 - 1)
    );
    assert_eq!(proxy["lastState"]["terminated"]["exitCode"], 137, "{proxy}");
    // The app ran on untouched.
    let app = &st["containerStatuses"][0];
    assert_eq!(app["restartCount"], 0);
    assert!(app["state"]["running"].is_object(), "{app}");
    assert_eq!(times(&ran, "ContainersStarted").len(), 1);
}

#[test]
fn liveness_restarts_go_on_while_the_node_is_cut_off_and_the_status_catches_up() {
    let timeline = "[{at: 30s, partition: [w-1]}, {at: 150s, heal: true}]";
    let ran = run_full(&scenario(&cluster("4m", LIVENESS_POD, timeline)), None);
    let starts = times(&ran, "ContainersStarted");
    // Starts at t0 ≈ 3.6 s (sandbox 1 s, image pull), then +25, +35, +45,
    // +65 s: 28.6, 63.6, 108.6, 173.6 s (the next, +105 s, is past the
    // 4 min end). Those at 63.6 and 108.6 s are inside the partition
    // (30..150 s): the kubelet restarts locally without the apiserver.
    let during = starts.iter().filter(|t| (30.0..150.0).contains(*t)).count();
    assert_eq!(during, 2, "{starts:?}");
    assert_eq!(gaps(&starts), [25.0, 35.0, 45.0, 65.0], "{starts:?}");
    // Nothing the kubelet writes reaches the apiserver while cut off: the
    // writes then (the node lifecycle controller's Ready=False at ~75 s)
    // still show the restartCount of 28.6 s, 1...
    let during: Vec<u64> = ran
        .writes("Pod/default/web")
        .filter(|w| (31.0..150.0).contains(&secs(w)))
        .map(|w| {
            w["object"]["status"]["containerStatuses"][0]["restartCount"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        !during.is_empty() && during.iter().all(|&n| n == 1),
        "{during:?}"
    );
    // ...and within a second of the heal the API catches up: the writes
    // held on the stalled connection go in order, the last of them shows
    // the kubelet's state at 150 s: the container started at 108.6 s
    // (restartCount 3) was killed at 133.6 s and waits out its 40 s
    // back-off (restart at 173.6 s)...
    let healed = ran
        .writes("Pod/default/web")
        .filter(|w| (150.0..151.0).contains(&secs(w)))
        .last()
        .expect("written after the heal");
    let cs = &healed["object"]["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 3, "{cs}");
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff", "{cs}");
    let finished = cs["lastState"]["terminated"]["finishedAt"].as_str();
    assert_eq!(finished, Some("2025-01-01T00:02:13Z"), "{cs}");
    // ...and at the end: the fifth container (started 173.6 s, restartCount
    // 4) was killed at 198.6 s and waits out its 80 s back-off.
    let cs = &last_status(&ran, "Pod/default/web")["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 4, "{cs}");
    assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff", "{cs}");
}
