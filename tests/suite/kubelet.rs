//! The kubelet's pod lifecycle as the API shows it: phases and conditions in
//! order, at the times the configured latencies imply; and CrashLoopBackOff.

use crate::common;

use common::{run_full, scenario, secs};
use serde_json::Value;

/// Constant latencies everywhere, so that times can be checked exactly.
const TIMED: &str = r#"
name: lifecycle
duration: 60s
cluster:
  network: {latency: {constant: 1ms}}
  apiserver: {requestLatency: {constant: 1ms}}
  etcd: {walFsync: {constant: 1ms}}
  images: {app:1: 20Mi}
  kubelet:
    sandboxCreateLatency: {constant: 1s}
    containerStartLatency: {constant: 2s}
    imagePullOverhead: {constant: 500ms}
    imagePullBandwidth: 10Mi
  nodePools:
    - {name: w, count: 1, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - at: 10s
    apply:
      apiVersion: v1
      kind: Pod
      metadata: {name: app}
      spec:
        nodeName: w-1
        containers:
          - name: app
            image: app:1
            readinessProbe:
              exec: {command: [ready]}
              initialDelaySeconds: 4
              periodSeconds: 3
              successThreshold: 2
"#;

/// (time, phase, [(condition, status)...]) of one committed version of a pod.
type Version = (f64, String, Vec<(String, String)>);

/// Every committed version of the pod at `key`.
fn versions(ran: &common::Ran, key: &str) -> Vec<Version> {
    ran.writes(key)
        .map(|w| {
            let st = &w["object"]["status"];
            let conds = st["conditions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c: &Value| {
                            (
                                c["type"].as_str().unwrap().to_string(),
                                c["status"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                secs(w),
                st["phase"].as_str().unwrap_or("").to_string(),
                conds,
            )
        })
        .collect()
}

fn cond(v: &[(String, String)], t: &str) -> Option<String> {
    v.iter().find(|(k, _)| k == t).map(|(_, s)| s.clone())
}

/// First time at which `pred` holds over the pod's committed versions.
fn first(vs: &[Version], pred: impl Fn(&str, &[(String, String)]) -> bool) -> f64 {
    vs.iter()
        .find(|(_, p, c)| pred(p, c))
        .map(|v| v.0)
        .expect("state reached")
}

#[test]
fn pod_phases_and_conditions_follow_in_order_with_the_configured_latencies() {
    let ran = run_full(&scenario(TIMED), None);
    let vs = versions(&ran, "Pod/default/app");
    let created = vs[0].0;
    assert!((10.0..10.1).contains(&created), "created at {created}");
    assert_eq!(vs[0].1, "Pending");
    let t_init = first(&vs, |_, c| {
        cond(c, "Initialized").as_deref() == Some("True")
    });
    let t_sandbox = first(&vs, |_, c| {
        cond(c, "PodReadyToStartContainers").as_deref() == Some("True")
    });
    let t_running = first(&vs, |p, _| p == "Running");
    let t_ready = first(&vs, |_, c| cond(c, "Ready").as_deref() == Some("True"));
    // Admission and initialisation are immediate; the sandbox takes 1 s.
    assert!(t_init - created < 0.05, "initialized {t_init}");
    assert!(
        (t_sandbox - created - 1.0).abs() < 0.05,
        "sandbox at {t_sandbox}"
    );
    // Then the 20 MiB image at 10 MiB/s plus 0.5 s overhead, then 2 s start.
    let expected_running = created + 1.0 + 2.5 + 2.0;
    assert!(
        (t_running - expected_running).abs() < 0.05,
        "running at {t_running}, expected {expected_running}"
    );
    // Readiness: first probe 4 s after start, every 3 s, two successes needed.
    let expected_ready = expected_running + 4.0 + 3.0;
    assert!(
        (t_ready - expected_ready).abs() < 0.05,
        "ready at {t_ready}, expected {expected_ready}"
    );
    // ContainersReady and Ready turn True together, never before Running.
    let ready_version = vs
        .iter()
        .find(|v| cond(&v.2, "Ready").as_deref() == Some("True"))
        .unwrap();
    assert_eq!(
        cond(&ready_version.2, "ContainersReady").as_deref(),
        Some("True")
    );
    assert_eq!(ready_version.1, "Running");
    assert!(t_init <= t_sandbox && t_sandbox < t_running && t_running < t_ready);
    // The kubelet's own events come in lifecycle order.
    let order: Vec<&str> = ran
        .records
        .iter()
        .filter(|r| r["component"] == "kubelet/w-1")
        .filter_map(|r| r["event"].as_str())
        .filter(|e| ["PodAdmitted", "Pulling", "Pulled", "ContainersStarted"].contains(e))
        .collect();
    assert_eq!(
        order,
        ["PodAdmitted", "Pulling", "Pulled", "ContainersStarted"]
    );
    let s = &ran.finished.summary.pod_startup;
    assert_eq!(s.created_to_running.count, 1);
    assert!((s.created_to_ready.p50_ms / 1000.0 - (expected_ready - created)).abs() < 0.05);
}

#[test]
fn crash_loop_backoff_doubles_from_10s_to_5m() {
    let ran = run_full(
        &scenario(
            r#"
name: crashloop
duration: 30m
cluster:
  kubelet: {containerStartLatency: {constant: 0s}}
  nodePools:
    - {name: w, count: 1, capacity: {cpu: "2", memory: 4Gi}}
objects:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: flaky
      annotations: {kubesim.io/run-for: 5s, kubesim.io/exit-code: "1"}
    spec:
      nodeName: w-1
      containers: [{name: c, image: busybox}]
"#,
        ),
        None,
    );
    let starts: Vec<f64> = ran
        .events(Some("kubelet/w-1"), "ContainersStarted")
        .map(secs)
        .collect();
    let exits: Vec<f64> = ran
        .events(Some("kubelet/w-1"), "ContainersExited")
        .map(secs)
        .collect();
    // Each run lasts its scripted 5 s.
    for (s, e) in starts.iter().zip(&exits) {
        assert!((e - s - 5.0).abs() < 1e-6, "ran {s}..{e}");
    }
    // The wait between an exit and the next start: the first restart is
    // immediate, then 10 s doubling to the 5 min cap.
    let waits: Vec<f64> = exits
        .iter()
        .zip(starts.iter().skip(1))
        .map(|(e, s)| s - e)
        .collect();
    let expected = [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0];
    assert!(waits.len() >= expected.len(), "{waits:?}");
    for (w, x) in waits.iter().zip(expected) {
        assert!((w - x).abs() < 0.01, "waits {waits:?}");
    }
    // The API shows the restarts and the waiting reason.
    let last = ran.writes("Pod/default/flaky").last().unwrap();
    let cs = &last["object"]["status"]["containerStatuses"][0];
    assert!(cs["restartCount"].as_u64().unwrap() >= 8, "{cs}");
    let waiting = ran
        .writes("Pod/default/flaky")
        .filter_map(|w| {
            w["object"]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str()
        })
        .any(|r| r == "CrashLoopBackOff");
    assert!(waiting, "CrashLoopBackOff is reported while waiting");
}

/// The kubelet compares its status with the Node as the apiserver has it
/// (upstream's GET every nodeStatusUpdateFrequency), so a node the lifecycle
/// controller marked Unknown while it was cut off is Ready again within one
/// period of the partition healing, not after nodeStatusReportFrequency.
#[test]
fn a_node_marked_unknown_is_ready_again_one_status_period_after_a_partition_heals() {
    let s = common::scenario(
        r#"
name: partition-heal
duration: 2m
cluster:
  nodePools: [{name: worker, count: 2, capacity: {cpu: "2", memory: 4Gi}}]
timeline:
  - {at: 5s, partition: [worker-1]}
  - {at: 80s, heal: true}
"#,
    );
    let ran = common::run_full(&s, None);
    let ready: Vec<(f64, String)> = ran
        .writes("Node/worker-1")
        .filter_map(|w| {
            let c = w["object"]["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?;
            Some((common::secs(w), c["status"].as_str()?.to_string()))
        })
        .collect();
    let unknown = ready
        .iter()
        .find(|(t, st)| *t < 80.0 && st == "Unknown")
        .unwrap_or_else(|| panic!("marked Unknown while cut off: {ready:?}"));
    assert!(unknown.0 > 40.0, "{ready:?}");
    let back = ready
        .iter()
        .find(|(t, st)| *t > 80.0 && st == "True")
        .unwrap_or_else(|| panic!("Ready again after the heal: {ready:?}"));
    assert!(back.0 <= 80.0 + 10.5, "{ready:?}");
}

/// A pod whose one container exits with code 1 after `run_for`, every time.
fn crashing(run_for: &str, duration: &str) -> String {
    format!(
        r#"
name: crashloop
duration: {duration}
cluster:
  kubelet: {{containerStartLatency: {{constant: 0s}}}}
  nodePools:
    - {{name: w, count: 1, capacity: {{cpu: "2", memory: 4Gi}}}}
objects:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: flaky
      annotations: {{kubesim.io/run-for: {run_for}, kubesim.io/exit-code: "1"}}
    spec:
      nodeName: w-1
      containers: [{{name: c, image: busybox}}]
"#
    )
}

/// Seconds from each exit to the next start.
fn restart_waits(ran: &common::Ran) -> Vec<f64> {
    let starts: Vec<f64> = ran
        .events(Some("kubelet/w-1"), "ContainersStarted")
        .map(secs)
        .collect();
    ran.events(Some("kubelet/w-1"), "ContainersExited")
        .map(secs)
        .zip(starts.iter().skip(1))
        .map(|(e, s)| ((s - e) * 1000.0).round() / 1000.0)
        .collect()
}

/// flowcontrol.Backoff forgets a container that ran for more than
/// 2 × MaxContainerBackOff (600 s) since its last restart (`hasExpired`):
/// the restart is then immediate, as the first one is.
#[test]
fn crash_loop_backoff_resets_after_a_run_longer_than_10_minutes() {
    // Runs of 10m1s: 601 s > 600 s after every restart, so every restart is
    // immediate. Exits at 601, 1202, 1803 s, restarts at the same instants.
    // (Before the reset was modelled: waits 0, 10, 20.)
    let ran = run_full(&scenario(&crashing("10m1s", "32m")), None);
    assert_eq!(restart_waits(&ran), [0.0, 0.0, 0.0]);
    // Runs of exactly 10m: 600 s is not more than 600 s: no reset. Exit at
    // 600 (restart at once, entry 10 s), 1200 (+10), 1810 (+20).
    let ran = run_full(&scenario(&crashing("10m", "32m")), None);
    assert_eq!(restart_waits(&ran), [0.0, 10.0, 20.0]);
}

/// restartCount is the attempt number of the current container: it goes up
/// when the replacement is created, so a container that just died, or waits
/// in CrashLoopBackOff, still shows the count of its own attempt.
#[test]
fn restart_count_goes_up_when_the_next_container_is_created() {
    let ran = run_full(&scenario(&crashing("5s", "60s")), None);
    // (state, restartCount) of the container in each committed version.
    let seen: Vec<(String, u64)> = ran
        .writes("Pod/default/flaky")
        .filter_map(|w| {
            let cs = &w["object"]["status"]["containerStatuses"][0];
            let state = cs["state"].as_object()?.keys().next()?.clone();
            let reason = cs["state"][&state]["reason"].as_str().unwrap_or("");
            Some((format!("{state}/{reason}"), cs["restartCount"].as_u64()?))
        })
        .collect();
    // Runs start at 0+ε, exit 5 s later; restarts wait 0, 10, 20 s:
    // attempt 0 runs ~1..6 s, attempt 1 6..11, waits 10 s, attempt 2 21..26,
    // waits 20 s, attempt 3 46..51, waits 40 s past the end.
    let expected = [
        ("waiting/ContainerCreating", 0),
        ("running/", 0),
        ("terminated/Error", 0), // was 1 before: counted at the death
        ("running/", 1),
        ("waiting/CrashLoopBackOff", 1),
        ("running/", 2),
        ("waiting/CrashLoopBackOff", 2),
        ("running/", 3),
        ("waiting/CrashLoopBackOff", 3),
    ];
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(
        dedup,
        expected
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect::<Vec<_>>(),
        "{seen:?}"
    );
}

/// A sidecar (an init container with `restartPolicy: Always`) before an
/// ordinary init container and the app, with constant latencies.
const SIDECAR: &str = r#"
name: sidecar
duration: 60s
cluster:
  network: {latency: {constant: 1ms}}
  apiserver: {requestLatency: {constant: 1ms}}
  etcd: {walFsync: {constant: 1ms}}
  images: {proxy: 10Mi, setup: 10Mi, app: 10Mi}
  kubelet:
    sandboxCreateLatency: {constant: 1s}
    containerStartLatency: {constant: 2s}
    containerStopLatency: {constant: 0s}
    imagePullOverhead: {constant: 500ms}
    imagePullBandwidth: 10Mi
  nodePools:
    - {name: w, count: 1, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - at: 10s
    apply:
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        annotations: {kubesim.io/ready-after: 3s}
      spec:
        nodeName: w-1
        initContainers:
          - name: proxy
            image: proxy
            restartPolicy: Always
            startupProbe: {exec: {command: [ok]}, initialDelaySeconds: 2, periodSeconds: 2}
          - {name: setup, image: setup}
        containers: [{name: app, image: app}]
  - {at: 40s, delete: {kind: Pod, name: web}}
"#;

/// (time, status) of every committed version of `pod`.
fn statuses<'a>(ran: &'a common::Ran, pod: &'a str) -> impl Iterator<Item = (f64, &'a Value)> + 'a {
    ran.writes(pod).map(|w| (secs(w), &w["object"]["status"]))
}

#[test]
fn a_sidecar_starts_before_the_next_init_container_and_runs_beside_the_app() {
    let ran = run_full(&scenario(SIDECAR), None);
    let vs: Vec<(f64, &Value)> = statuses(&ran, "Pod/default/web").collect();
    let created = vs[0].0;
    let when = |pred: &dyn Fn(&Value) -> bool| {
        vs.iter()
            .find(|(_, s)| pred(s))
            .map(|v| v.0 - created)
            .expect("reached")
    };
    let init = |s: &Value, i: usize| s["initContainerStatuses"][i].clone();
    // Sandbox 1 s, pull proxy 0.5 + 1 s, create: running (started=false)
    // from 2.5 s, process up 2 s later at 4.5 s; startup probe 2 s after
    // that fails (up 2 s < ready-after 3 s), passes at +4 s: started at 8.5 s.
    let sidecar_started = when(&|s| init(s, 0)["started"] == true);
    assert!((sidecar_started - 8.5).abs() < 0.05, "{sidecar_started}");
    // Only then setup: pull 1.5 s → created at 10 s, then 2 s start + 1 s run.
    let setup_created = when(&|s| init(s, 1)["state"]["running"].is_object());
    assert!((setup_created - 10.0).abs() < 0.05, "{setup_created}");
    let initialized = when(&|s| {
        s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Initialized" && c["status"] == "True")
    });
    assert!((initialized - 13.0).abs() < 0.05, "{initialized}");
    // App: pull 1.5 s, start 2 s → running and Ready at 16.5 s.
    let ready = when(&|s| {
        s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    assert!((ready - 16.5).abs() < 0.05, "{ready}");
    // While the app runs (last version before the delete at 40 s), the
    // sidecar is running, started and ready, never restarted. (It used to
    // be Terminated/Completed 2 s after it was created.)
    let (_, during) = vs.iter().rev().find(|(t, _)| *t < 40.0).unwrap();
    let proxy = init(during, 0);
    assert!(proxy["state"]["running"].is_object(), "{proxy}");
    assert_eq!(
        (proxy["started"].clone(), proxy["ready"].clone()),
        (true.into(), true.into())
    );
    assert!(during["containerStatuses"][0]["state"]["running"].is_object());
    assert_eq!(
        init(during, 1)["state"]["terminated"]["reason"],
        "Completed"
    );
    // On deletion the app stops (promptly: 0 s stop latency), then the
    // sidecar; both terminated in the pod's final status, in that order.
    let (_, last) = vs
        .iter()
        .rev()
        .find(|(_, s)| s["containerStatuses"][0]["state"]["terminated"].is_object())
        .unwrap();
    let app_done = &last["containerStatuses"][0]["state"]["terminated"];
    let proxy_done = &init(last, 0)["state"]["terminated"];
    assert_eq!(proxy_done["reason"], "Completed", "{last}");
    assert!(proxy_done["finishedAt"].as_str() >= app_done["finishedAt"].as_str());
}
