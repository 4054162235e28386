//! The run's figures over its whole length (`summary.overTime`) and the
//! pod-startup SLI, on the happy path and across a fault that heals: pods
//! created while the scheduler is cut off wait for a node until the
//! partition heals, then start; the waits, the integral and the cost come
//! out of the run's committed writes.

use crate::common;

/// Two priced workers; at 20 s a Deployment of three pods whose image must
/// be pulled (40 MiB at the kubelet's 50 MiB/s, plus a pull overhead) is
/// applied while kube-scheduler is partitioned (10 s to 80 s).
const CUT_OFF: &str = r#"name: over-time
seed: 5
duration: 5m
cluster:
  images: {app:2: 40Mi}
  nodePools:
    - name: worker
      count: 2
      capacity: {cpu: "4", memory: 16Gi}
      pricePerHour: 0.5
timeline:
  - {at: 10s, partition: [kube-scheduler]}
  - at: 20s
    apply:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: app, namespace: default}
      spec:
        replicas: 3
        selector: {matchLabels: {app: app}}
        template:
          metadata: {labels: {app: app}}
          spec:
            containers:
              - name: app
                image: app:2
                resources: {requests: {cpu: "1", memory: 1Gi}}
  - {at: 80s, heal: true}
"#;

#[test]
fn pods_that_waited_out_a_partition_are_counted_over_the_run_and_the_sli_leaves_out_pulls() {
    let s = common::scenario(CUT_OFF);
    let ran = common::run_full(&s, None);
    let sum = &ran.finished.summary;
    let o = &sum.over_time;
    // Healed: every pod bound and running by the end.
    assert_eq!(sum.pods.unscheduled, 0);
    assert_eq!(sum.pod_startup.never_started, 0);
    assert_eq!(o.peak_pending_pods, 3, "{o:?}");
    // Created at ~20 s, bound after the heal at 80 s (plus the scheduler's
    // watch coming back): each waited 60 s and some.
    assert!(o.longest_wait_s >= 60.0 && o.longest_wait_s < 90.0, "{o:?}");
    assert!(
        o.pending_pod_seconds >= 180.0 && o.pending_pod_seconds < 270.0,
        "{o:?}"
    );
    // The integral is the sum of the pods' own waits, read from the trace:
    // creation to the first committed write with a node.
    let mut created = std::collections::BTreeMap::new();
    let mut waited = 0.0;
    for w in ran.writes("Pod/") {
        let key = w["key"].as_str().unwrap().to_string();
        let bound = !w["object"]["spec"]["nodeName"].is_null();
        if w["verb"] == "create" {
            created.insert(key.clone(), common::secs(w));
        }
        if bound {
            if let Some(c) = created.remove(&key) {
                waited += common::secs(w) - c;
            }
        }
    }
    assert!(
        (waited - o.pending_pod_seconds).abs() < 0.01,
        "{waited} vs {o:?}"
    );
    // Two nodes for ~5 minutes at 0.5 an hour: 2 × 5/60 = 0.1667 node-hours
    // less the second before the kubelets register; cost = node-hours × 0.5.
    assert!(o.node_hours > 0.16 && o.node_hours <= 0.167, "{o:?}");
    assert!((o.cost - (o.node_hours * 0.5 * 100.0).round() / 100.0).abs() < 0.011);
    assert_eq!(o.peak_nodes, 2);
    // 3 CPUs of 8 requested from ~80 s on: about 3/8 × 220/300 = 27.5% of
    // the run; at the peak 37.5%.
    assert_eq!(o.peak_cpu_requested, 0.375);
    assert!(o.cpu_requested > 0.25 && o.cpu_requested < 0.29, "{o:?}");
    // The SLI excludes the pull (0.8 s at 40 MiB / 50 MiB/s, plus the
    // overhead) that created→Running includes: its worst case is shorter by
    // at least that.
    let st = &sum.pod_startup;
    assert_eq!(st.sli.count, 3, "{st:?}");
    assert!(
        st.created_to_running.max_ms - st.sli.max_ms >= 800.0,
        "{st:?}"
    );
    assert!(st.sli_p99_all_ms.is_some());
}

#[test]
fn pods_still_waiting_at_the_end_count_as_never_started_and_with_their_wait_so_far() {
    // The partition never heals.
    let text = CUT_OFF.replace("  - {at: 80s, heal: true}\n", "");
    let s = common::scenario(&text);
    let ran = common::run_full(&s, None);
    let sum = &ran.finished.summary;
    assert_eq!(sum.pods.unscheduled, 3);
    assert_eq!(sum.pod_startup.never_started, 3);
    // Three pods of three never started: the p99 is one of them.
    assert_eq!(sum.pod_startup.sli_p99_all_ms, None);
    let unmet = s.objective.unmet(sum);
    assert!(
        unmet
            .iter()
            .any(|u| u.contains("never reached: 3 pods of 3 never started")),
        "{unmet:?}"
    );
    // Waiting from ~20 s to the end at 300 s: ~280 s each.
    let o = &sum.over_time;
    assert!(
        o.longest_wait_s > 275.0 && o.longest_wait_s < 281.0,
        "{o:?}"
    );
    assert!(
        o.pending_pod_seconds > 825.0 && o.pending_pod_seconds < 843.0,
        "{o:?}"
    );
}
