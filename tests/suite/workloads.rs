//! StatefulSet, DaemonSet, Job, CronJob, HPA and Endpoints end to end, each
//! from an example scenario's trace: the order StatefulSet pods come and go
//! in, a DaemonSet covering a node that joins mid-run, a flaky Job's retries
//! and back-off, CronJob firing times, an HPA's rate-limited scale-up and
//! stabilised scale-down, and what `kubectl rollout status` printed.

use crate::common;

use std::collections::BTreeMap;

use common::{run_full, scenario, secs, Ran};
use serde_json::Value;

fn file(path: &str) -> String {
    std::fs::read_to_string(path).expect("scenario file")
}

/// (time, reason, message) of the Events a controller recorded.
fn events(ran: &Ran, source: &str) -> Vec<(f64, String, String)> {
    ran.events(Some("kube-controller-manager"), "Event")
        .filter(|e| e["source"] == source)
        .map(|e| {
            (
                secs(e),
                e["reason"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Last written state of each pod, and when each became Ready first.
fn pods(ran: &Ran) -> (BTreeMap<String, Value>, BTreeMap<String, f64>) {
    let mut last = BTreeMap::new();
    let mut ready_at = BTreeMap::new();
    for w in ran.writes("Pod/") {
        let name = w["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let ready = w["object"]["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready {
            ready_at.entry(name.clone()).or_insert(secs(w));
        }
        if w["verb"] == "delete" {
            last.remove(&name);
        } else {
            last.insert(name, w["object"].clone());
        }
    }
    (last, ready_at)
}

#[test]
fn statefulset_creates_in_order_updates_in_reverse_and_keeps_claims() {
    let ran = run_full(
        &scenario(&file("scenarios/statefulset-rolling-update.yaml")),
        None,
    );
    let ev = events(&ran, "statefulset-controller");
    let created: Vec<(f64, &str)> = ev
        .iter()
        .filter(|(_, r, m)| r == "SuccessfulCreate" && m.starts_with("create Pod"))
        .map(|(t, _, m)| (*t, m.split_whitespace().nth(2).unwrap()))
        .collect();
    // OrderedReady: db-0, db-1, db-2, each after the one before was ready.
    let first: Vec<&str> = created.iter().take(3).map(|c| c.1).collect();
    assert_eq!(first, ["db-0", "db-1", "db-2"]);
    let (_, ready_at) = pods(&ran);
    assert!(created[1].0 > ready_at["db-0"], "db-1 waits for db-0");
    assert!(created[2].0 > ready_at["db-1"], "db-2 waits for db-1");
    // The update deletes highest first: db-2, db-1 behind the partition,
    // then db-0 once the partition drops at 3 m; scale-in removes db-2 then db-1.
    let deleted: Vec<(f64, &str)> = ev
        .iter()
        .filter(|(_, r, _)| r == "SuccessfulDelete")
        .map(|(t, _, m)| (*t, m.split_whitespace().nth(2).unwrap()))
        .collect();
    let names: Vec<&str> = deleted.iter().map(|d| d.1).collect();
    assert_eq!(names, ["db-2", "db-1", "db-0", "db-2", "db-1"]);
    assert!(
        deleted[1].0 < 180.0 && deleted[2].0 >= 180.0,
        "db-0 waits for the partition"
    );
    // Every claim made, none deleted with the pods.
    let claims: Vec<String> = ran
        .writes("PersistentVolumeClaim/")
        .filter(|w| w["verb"] == "create")
        .map(|w| w["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(claims.len(), 3, "{claims:?}");
    assert!(ran
        .writes("PersistentVolumeClaim/")
        .all(|w| w["verb"] != "delete"));
    // kubectl saw the partitioned rollout finish, then the full one.
    let status: Vec<String> = ran
        .events(None, "RolloutStatus")
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    assert!(status
        .iter()
        .any(|m| m == "partitioned roll out complete: 2 new pods have been updated..."));
    assert!(status
        .iter()
        .any(|m| m == "partitioned roll out complete: 3 new pods have been updated..."));
}

#[test]
fn daemonset_covers_a_joining_node_and_rolls_one_node_at_a_time() {
    let ran = run_full(&scenario(&file("scenarios/daemonset-rollout.yaml")), None);
    let (last, _) = pods(&ran);
    let mut nodes: Vec<&str> = last
        .values()
        .filter(|p| p["metadata"]["labels"]["app"] == "log-collector")
        .map(|p| p["spec"]["nodeName"].as_str().unwrap_or(""))
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        ["late-1", "worker-1", "worker-2"],
        "one per worker, none on the control plane"
    );
    let joined = ran
        .events(None, "NodeJoin")
        .map(secs)
        .next()
        .expect("late-1 joins");
    let ev = events(&ran, "daemonset-controller");
    let created: Vec<f64> = ev
        .iter()
        .filter(|e| e.1 == "SuccessfulCreate")
        .map(|e| e.0)
        .collect();
    assert!(
        created.iter().any(|t| *t > joined && *t < joined + 10.0),
        "late-1's pod follows its registration"
    );
    // The rollout: never two nodes without an old or new pod at once.
    let deletes: Vec<f64> = ev
        .iter()
        .filter(|e| e.1 == "SuccessfulDelete")
        .map(|e| e.0)
        .collect();
    assert_eq!(deletes.len(), 3);
    assert!(
        deletes.windows(2).all(|w| w[1] - w[0] > 2.0),
        "one node at a time: {deletes:?}"
    );
    assert!(last
        .values()
        .filter(|p| p["metadata"]["labels"]["app"] == "log-collector")
        .all(|p| p["spec"]["containers"][0]["image"] == "fluent-bit:3.1"));
}

#[test]
fn flaky_job_retries_with_backoff_and_completes() {
    let ran = run_full(&scenario(&file("scenarios/batch.yaml")), None);
    let (last, _) = pods(&ran);
    let flaky: Vec<&Value> = last
        .values()
        .filter(|p| p["metadata"]["labels"]["job-name"] == "flaky")
        .collect();
    let ok = flaky
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    let failed = flaky
        .iter()
        .filter(|p| p["status"]["phase"] == "Failed")
        .count();
    assert_eq!(ok, 6, "six completions");
    assert!(
        (1..=4).contains(&failed),
        "{failed} failures, within backoffLimit 4"
    );
    let ev = events(&ran, "job-controller");
    assert!(ev
        .iter()
        .any(|e| e.1 == "Completed" && e.2 == "Job completed"));
    // The Indexed Job made one pod per index.
    let mut shards: Vec<&str> = last
        .values()
        .filter(|p| p["metadata"]["labels"]["job-name"] == "shards")
        .map(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
        })
        .collect();
    shards.sort();
    assert_eq!(shards, ["0", "1", "2", "3"]);
    let job = ran
        .writes("Job/default/shards")
        .last()
        .expect("shards status");
    assert_eq!(job["object"]["status"]["completedIndexes"], "0-3");
}

#[test]
fn a_job_over_its_backoff_limit_fails() {
    let yaml = r#"
name: doomed
duration: 6m
cluster:
  nodePools: [{name: n, count: 1, capacity: {cpu: "4", memory: 8Gi, pods: "110"}}]
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: doomed, namespace: default}
    spec:
      backoffLimit: 2
      template:
        metadata:
          annotations: {kubesim.io/run-for: 2s, kubesim.io/exit-code: "3"}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"#;
    let ran = run_full(&scenario(yaml), None);
    let ev = events(&ran, "job-controller");
    let created: Vec<f64> = ev
        .iter()
        .filter(|e| e.1 == "SuccessfulCreate")
        .map(|e| e.0)
        .collect();
    assert_eq!(created.len(), 3, "the first try and two retries");
    // Back-off before each retry: 10 s, then 20 s after the failure.
    assert!(created[1] - created[0] >= 10.0, "{created:?}");
    assert!(created[2] - created[1] >= 20.0, "{created:?}");
    let failed = ev
        .iter()
        .find(|e| e.1 == "BackoffLimitExceeded")
        .expect("job fails");
    assert_eq!(failed.2, "Job has reached the specified backoff limit");
    let last = ran.writes("Job/default/doomed").last().unwrap();
    let types: Vec<&str> = last["object"]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["FailureTarget", "Failed"]);
}

#[test]
fn cronjob_fires_on_schedule_forbids_overlap_and_trims_history() {
    let ran = run_full(&scenario(&file("scenarios/batch.yaml")), None);
    let ev = events(&ran, "cronjob-controller");
    let created: Vec<(f64, &str)> = ev
        .iter()
        .filter(|e| e.1 == "SuccessfulCreate")
        .map(|e| (e.0, e.2.rsplit(' ').next().unwrap()))
        .collect();
    // The first firing is at 00:02 (+100 ms); the name counts minutes since 1970.
    let start_minute = 1_735_689_600 / 60;
    assert!((created[0].0 - 120.1).abs() < 0.05, "{created:?}");
    assert_eq!(created[0].1, format!("report-{}", start_minute + 2));
    // Runs take 150 s, so Forbid skips the 00:04 slot until the first ends,
    // then starts it late (upstream's behaviour without a starting deadline).
    assert!(ev
        .iter()
        .any(|e| e.1 == "JobAlreadyActive" && (e.0 - 240.1).abs() < 0.05));
    assert_eq!(created[1].1, format!("report-{}", start_minute + 4));
    assert!(created[1].0 > 270.0);
    // successfulJobsHistoryLimit 2: the oldest finished Job goes.
    assert!(ev
        .iter()
        .any(|e| e.1 == "SuccessfulDelete"
            && e.2 == format!("Deleted job report-{}", start_minute + 2)));
}

#[test]
fn hpa_scales_up_at_the_policy_rate_and_down_after_the_window() {
    let ran = run_full(&scenario(&file("scenarios/hpa-load-step.yaml")), None);
    let rescales: Vec<(f64, String)> = events(&ran, "horizontal-pod-autoscaler")
        .into_iter()
        .filter(|e| e.1 == "SuccessfulRescale")
        .map(|e| (e.0, e.2))
        .collect();
    let sizes: Vec<&str> = rescales
        .iter()
        .map(|(_, m)| {
            m.trim_start_matches("New size: ")
                .split(';')
                .next()
                .unwrap()
        })
        .collect();
    // 2 → 6 (4 pods per 15 s beats 100 %), then → 12 (100 % beats 4 pods).
    assert_eq!(sizes, ["6", "12", "2"], "{rescales:?}");
    assert!(rescales[0].0 > 60.0 && rescales[0].0 < 76.0);
    assert!(rescales[1].0 - rescales[0].0 >= 15.0);
    // Load drops at 6 m: nothing for the 300 s window after the last high
    // recommendation, then straight down (100 % per 15 s allows it).
    assert!(
        rescales[2].0 > 360.0 + 285.0 && rescales[2].0 < 360.0 + 300.0 + 16.0,
        "{rescales:?}"
    );
    assert!(rescales[2].1.contains("All metrics below target"));
}

#[test]
fn endpoints_track_ready_pods_through_a_rolling_update() {
    let ran = run_full(&scenario(&file("scenarios/rolling-update.yaml")), None);
    let ready: Vec<(f64, u64)> = ran
        .events(None, "ServiceEndpoints")
        .map(|r| (secs(r), r["ready"].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(ready.last().unwrap().1, 10);
    for (t, n) in ready.iter().filter(|(t, _)| *t > 60.0) {
        assert!(*n >= 8, "only {n} ready endpoints at {t}s");
    }
    let status: Vec<&str> = ran
        .events(None, "RolloutStatus")
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        *status.last().unwrap(),
        "deployment \"web\" successfully rolled out"
    );
}

#[test]
fn a_crashing_release_hits_its_deadline_and_undo_restores_it() {
    let ran = run_full(&scenario(&file("scenarios/rollback.yaml")), None);
    let status: Vec<(f64, String)> = ran
        .events(None, "RolloutStatus")
        .map(|r| (secs(r), r["message"].as_str().unwrap().to_string()))
        .collect();
    let deadline = status
        .iter()
        .find(|(_, m)| m == "error: deployment \"web\" exceeded its progress deadline")
        .expect("the rollout times out");
    // progressDeadlineSeconds 60 after the rollout began at 30 s.
    assert!(deadline.0 >= 90.0 && deadline.0 < 100.0, "{deadline:?}");
    let done = status
        .iter()
        .rfind(|(_, m)| m == "deployment \"web\" successfully rolled out")
        .unwrap();
    assert!(done.0 > 150.0);
    // The Service kept at least six ready endpoints throughout.
    for r in ran
        .events(None, "ServiceEndpoints")
        .filter(|r| secs(r) > 30.0)
    {
        let n: u64 = r["ready"].as_str().unwrap().parse().unwrap();
        assert!(n >= 6, "{n} ready at {}", secs(r));
    }
}
