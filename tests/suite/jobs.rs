//! The Job controller's v1.34 failure and success handling end to end:
//! `podFailurePolicy` (FailJob, Ignore), `successPolicy`,
//! `backoffLimitPerIndex` with `maxFailedIndexes`, load-time validation,
//! and pod tracking with the `batch.kubernetes.io/job-tracking` finalizer
//! across a controller-manager partition.

use crate::common;

use common::{run_full, scenario, Ran};
use kubesim::scenario::load_str;
use serde_json::Value;

const CLUSTER: &str = r#"
cluster:
  nodePools: [{name: n, count: 1, capacity: {cpu: "8", memory: 16Gi, pods: "110"}}]
"#;

fn with_cluster(head: &str, rest: &str) -> String {
    format!("{head}{CLUSTER}{rest}")
}

/// Names of the pods the Job controller created for `job`, in order.
fn created(ran: &Ran, job: &str) -> Vec<String> {
    ran.events(Some("kube-controller-manager"), "Event")
        .filter(|e| e["source"] == "job-controller" && e["reason"] == "SuccessfulCreate")
        .filter_map(|e| e["message"].as_str()?.strip_prefix("Created pod: "))
        .filter(|n| n.starts_with(&format!("{job}-")))
        .map(String::from)
        .collect()
}

/// The Job as last written.
fn last_job(ran: &Ran, job: &str) -> Value {
    ran.writes(&format!("Job/default/{job}"))
        .last()
        .expect("the Job was written")["object"]
        .clone()
}

/// (type, reason, message) of the Job's conditions.
fn conditions(job: &Value) -> Vec<(String, String, String)> {
    job["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
                    (s("type"), s("reason"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The last written state of a pod.
fn last_pod(ran: &Ran, name: &str) -> Value {
    ran.writes(&format!("Pod/default/{name}"))
        .filter(|w| w["verb"] != "delete")
        .last()
        .expect("the pod was written")["object"]
        .clone()
}

#[test]
fn pod_failure_policy_fails_the_job_on_a_matching_exit_code_and_ignores_another() {
    let yaml = with_cluster(
        "name: pfp\nduration: 3m\n",
        r#"
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: fatal, namespace: default}
    spec:
      backoffLimit: 6
      podFailurePolicy:
        rules:
          - action: FailJob
            onExitCodes: {containerName: c, operator: In, values: [3]}
      template:
        metadata:
          annotations: {kubesim.io/run-for: 2s, kubesim.io/exit-code: "3"}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: ignored, namespace: default}
    spec:
      backoffLimit: 0
      podFailurePolicy:
        rules:
          - action: Ignore
            onExitCodes: {operator: In, values: [42]}
      template:
        metadata:
          annotations: {kubesim.io/run-for: 2s, kubesim.io/exit-code: "42"}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"#,
    );
    let ran = run_full(&scenario(&yaml), None);
    // FailJob: the first failure ends the Job. Before, backoffLimit 6 let
    // it retry at 10 s, 20 s, 40 s, 80 s of back-off: 5 pods in 3 minutes.
    let fatal = created(&ran, "fatal");
    assert_eq!(fatal.len(), 1, "{fatal:?}");
    let job = last_job(&ran, "fatal");
    let msg = format!(
        "Container c for pod default/{} failed with exit code 3 matching FailJob rule at index 0",
        fatal[0]
    );
    let want = |t: &str| (t.to_string(), "PodFailurePolicy".to_string(), msg.clone());
    assert_eq!(conditions(&job), [want("FailureTarget"), want("Failed")]);
    assert_eq!(job["status"]["failed"], 1, "the one pod, counted");
    // Ignore: exit code 42 never counts, so backoffLimit 0 is never
    // exceeded. Before, the first failure failed the Job (1 pod). The
    // back-off still applies (ignored failures count for it): pods at
    // about 0, 2+10, 14+20, 36+40, 78+80 s: 5 within 3 m, at least 4.
    let ignored = created(&ran, "ignored");
    assert!(ignored.len() >= 4, "{ignored:?}");
    let job = last_job(&ran, "ignored");
    // `failed` is omitempty: never counted, never written.
    assert_eq!(job["status"]["failed"].as_i64().unwrap_or(0), 0);
    assert!(conditions(&job).is_empty(), "{:?}", conditions(&job));
    // The kubelet's exit code is what the policy matched.
    let pod = last_pod(&ran, &ignored[0]);
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        42
    );
}

#[test]
fn pod_failure_policy_needs_restart_policy_never() {
    let yaml = with_cluster(
        "name: bad\nduration: 1m\n",
        r#"
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: bad, namespace: default}
    spec:
      podFailurePolicy:
        rules: [{action: FailJob, onExitCodes: {operator: In, values: [1]}}]
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
"#,
    );
    let errs = load_str("bad.yaml", &yaml, std::path::Path::new(".")).expect_err("rejected");
    let text: String = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.contains("spec.template.spec.restartPolicy")
            && text.contains("only \"Never\" is supported when podFailurePolicy is specified"),
        "{text}"
    );
}

#[test]
fn success_policy_completes_an_indexed_job_early() {
    let yaml = with_cluster(
        "name: sp\nduration: 2m\n",
        r#"
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: leader, namespace: default}
    spec:
      completionMode: Indexed
      completions: 4
      parallelism: 2
      successPolicy:
        rules: [{succeededCount: 1}]
      template:
        metadata:
          annotations: {kubesim.io/run-for: 10s}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"#,
    );
    let ran = run_full(&scenario(&yaml), None);
    // Indexes 0 and 1 start together; the first success meets the rule,
    // so indexes 2 and 3 are never created. Before: 4 pods.
    let pods = created(&ran, "leader");
    assert_eq!(pods.len(), 2, "{pods:?}");
    let job = last_job(&ran, "leader");
    let c = conditions(&job);
    let types: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    for (_, reason, message) in &c {
        assert_eq!(reason, "SuccessPolicy");
        assert_eq!(message, "Matched rules at index 0");
    }
    let done = job["status"]["completedIndexes"].as_str().unwrap();
    assert!(done == "0" || done == "1" || done == "0,1", "{done}");
    assert!(job["status"]["completionTime"].is_string());
}

#[test]
fn backoff_limit_per_index_fails_indexes_then_the_job() {
    let yaml = with_cluster(
        "name: bpi\nduration: 3m\n",
        r#"
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: shards, namespace: default}
    spec:
      completionMode: Indexed
      completions: 3
      parallelism: 3
      backoffLimitPerIndex: 1
      template:
        metadata:
          annotations: {kubesim.io/run-for: 2s, kubesim.io/exit-code: "1"}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: strict, namespace: default}
    spec:
      completionMode: Indexed
      completions: 3
      parallelism: 1
      backoffLimitPerIndex: 0
      maxFailedIndexes: 0
      template:
        metadata:
          annotations: {kubesim.io/run-for: 2s, kubesim.io/exit-code: "1"}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"#,
    );
    let ran = run_full(&scenario(&yaml), None);
    // backoffLimitPerIndex 1: each index gets its first pod (failure
    // count 0) and one replacement 10 s after that failure (count 1);
    // the replacement's failure fails the index. 3 × 2 = 6 pods; before,
    // the global backoffLimit 6 made it 7.
    let pods = created(&ran, "shards");
    assert_eq!(pods.len(), 6, "{pods:?}");
    let counts: Vec<String> = pods
        .iter()
        .map(|p| {
            let a = &last_pod(&ran, p)["metadata"]["annotations"];
            let ix = a["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap();
            let n = a["batch.kubernetes.io/job-index-failure-count"]
                .as_str()
                .unwrap();
            format!("{ix}:{n}")
        })
        .collect();
    let mut sorted = counts.clone();
    sorted.sort();
    assert_eq!(sorted, ["0:0", "0:1", "1:0", "1:1", "2:0", "2:1"]);
    let job = last_job(&ran, "shards");
    assert_eq!(job["status"]["failedIndexes"], "0-2");
    assert_eq!(job["status"]["failed"], 6);
    let c = conditions(&job);
    let want = |t: &str| {
        (
            t.to_string(),
            "FailedIndexes".into(),
            "Job has failed indexes".into(),
        )
    };
    assert_eq!(c, [want("FailureTarget"), want("Failed")]);
    // maxFailedIndexes 0: index 0's first failure (count 0 ≥ limit 0)
    // fails it, one failed index exceeds 0, the Job fails; indexes 1 and
    // 2 never start (parallelism 1).
    assert_eq!(created(&ran, "strict").len(), 1);
    let job = last_job(&ran, "strict");
    assert_eq!(job["status"]["failedIndexes"], "0");
    let c = conditions(&job);
    assert_eq!(c.last().unwrap().0, "Failed");
    assert_eq!(c.last().unwrap().1, "MaxFailedIndexesExceeded");
    assert_eq!(
        c.last().unwrap().2,
        "Job has exceeded the specified maximal number of failed indexes"
    );
}

/// Three 20 s pods; the controller-manager is cut off from 5 s to 60 s,
/// so it sees none of them finish; at 40 s a user deletes one of the
/// succeeded pods (`{delete}` is filled in by the caller).
fn tracking_scenario(delete: &str) -> String {
    with_cluster(
        "name: tracking\nduration: 3m\n",
        &format!(
            r#"
objects:
  - apiVersion: batch/v1
    kind: Job
    metadata: {{name: count, namespace: default}}
    spec:
      completions: 3
      parallelism: 3
      template:
        metadata:
          annotations: {{kubesim.io/run-for: 20s}}
        spec:
          restartPolicy: Never
          containers: [{{name: c, image: busybox}}]
timeline:
  - {{at: 5s, partition: [kube-controller-manager]}}
{delete}
  - {{at: 60s, heal: true}}
"#
        ),
    )
}

#[test]
fn tracking_finalizer_counts_a_pod_deleted_while_the_controller_was_away_exactly_once() {
    // A first run names the pods (the apiserver's generated suffixes are
    // the same in the second run: nothing differs before 40 s).
    let first = run_full(&scenario(&tracking_scenario("")), None);
    let pods = created(&first, "count");
    assert_eq!(pods.len(), 3);
    let victim = &pods[0];
    let delete = format!("  - {{at: 40s, delete: {{kind: Pod, name: {victim}}}}}");
    let ran = run_full(&scenario(&tracking_scenario(&delete)), None);
    assert_eq!(created(&ran, "count"), pods, "the same three pods");
    // Every pod carried the finalizer, so the deleted one was still there
    // (terminating) when the controller came back at 60 s and counted it.
    // Before, it vanished at 40 s; the controller saw 2 successes and
    // made a fourth pod.
    let job = last_job(&ran, "count");
    assert_eq!(job["status"]["succeeded"], 3);
    assert_eq!(
        job["status"]["uncountedTerminatedPods"],
        serde_json::json!({})
    );
    let types: Vec<String> = conditions(&job).into_iter().map(|c| c.0).collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    // Exactly once: no write ever showed more than 3, and a UID was in
    // uncountedTerminatedPods before its finalizer went.
    let max = ran
        .writes("Job/default/count")
        .filter_map(|w| w["object"]["status"]["succeeded"].as_i64())
        .max();
    assert_eq!(max, Some(3));
    let uncounted_first = ran.writes("Job/default/count").any(|w| {
        w["object"]["status"]["uncountedTerminatedPods"]["succeeded"]
            .as_array()
            .is_some_and(|a| a.len() == 3)
    });
    assert!(
        uncounted_first,
        "the three UIDs were recorded before counting"
    );
    for p in &pods {
        // A deleted pod whose finalizer the controller removed is gone: its
        // DELETED event carries the last stored state (finalizer and all),
        // as etcd's prevKV does upstream.
        let gone = ran
            .writes(&format!("Pod/default/{p}"))
            .last()
            .is_some_and(|w| w["verb"] == "delete");
        if gone {
            continue;
        }
        let pod = last_pod(&ran, p);
        let fins = pod["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !fins.iter().any(|f| f == "batch.kubernetes.io/job-tracking"),
            "{p} keeps the finalizer: {fins:?}"
        );
    }
    // The victim was deleted while the controller was away: a finished pod
    // has no grace (upstream's CheckGracefulDelete gives it 0), so it stays
    // only for its finalizer, and goes once the controller counted it.
    let deleted = last_pod(&ran, victim);
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 0);
    let key = format!("Pod/default/{victim}");
    let gone = ran.writes(&key).last().unwrap();
    assert_eq!(gone["verb"], "delete", "removed after its finalizer went");
}
