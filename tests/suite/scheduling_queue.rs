//! The scheduling queue in a running cluster, as upstream's v1.34 queue
//! behaves: QueueingHints decide which cluster events move which
//! unschedulable pods, a pop with activeQ empty takes the backoffQ's head
//! early (SchedulerPopFromBackoffQ), leftovers are flushed every 30 s once
//! they have waited more than 5 minutes, and scheduling recovers after the
//! scheduler is cut off from the apiserver.

use crate::common;

use common::{run_full, scenario, secs, Ran};

/// FailedScheduling times of pods whose name starts with `prefix`.
fn failures(ran: &Ran, prefix: &str) -> Vec<f64> {
    ran.events(Some("kube-scheduler"), "FailedScheduling")
        .filter(|r| {
            r["pod"]
                .as_str()
                .unwrap()
                .starts_with(&format!("default/{prefix}"))
        })
        .map(secs)
        .collect()
}

fn pod(name: &str, cpu: &str) -> String {
    format!(
        "  - apiVersion: v1\n    kind: Pod\n    metadata: {{name: {name}}}\n    spec:\n      \
         containers: [{{name: c, image: x, resources: {{requests: {{cpu: \"{cpu}\"}}}}}}]\n"
    )
}

#[test]
fn only_deletions_that_free_room_requeue_pods_rejected_for_resources() {
    // Two 2-CPU nodes each hold a 1.5-CPU filler; ten 1-CPU pods fit
    // nowhere (0.5 CPU free per node): NodeResourcesFit rejects them. A
    // pending probe pod is created at 30 s and deleted at 40 s; at 60 s
    // filler-0 is deleted and its node has 2 CPUs free.
    let mut y = String::from(
        "name: hints\nduration: 90s\ncluster:\n  nodePools:\n    \
         - {name: w, count: 2, capacity: {cpu: \"2\", memory: 4Gi}}\nobjects:\n",
    );
    y += &pod("filler-0", "1500m");
    y += &pod("filler-1", "1500m");
    for i in 0..10 {
        y += &pod(&format!("big-{i}"), "1");
    }
    y += "timeline:\n  - at: 30s\n    apply: {apiVersion: v1, kind: Pod, metadata: {name: probe}, \
          spec: {containers: [{name: c, image: x, resources: {requests: {cpu: \"1\"}}}]}}\n  \
          - {at: 40s, delete: {kind: Pod, name: probe}}\n  \
          - {at: 60s, delete: {kind: Pod, name: filler-0}}\n";
    let ran = run_full(&scenario(&y), None);
    let big = failures(&ran, "big-");
    let between = |a: f64, b: f64| big.iter().filter(|t| **t >= a && **t < b).count();
    // Each big pod fails once as it arrives.
    assert_eq!(between(0.0, 30.0), 10, "{big:?}");
    // The probe was never on a node nor nominated: its deletion frees
    // nothing, NodeResourcesFit's hint says QueueSkip, and no big pod is
    // retried. (Before queueing hints every deletion moved all ten: 10.)
    assert_eq!(between(30.0, 60.0), 0, "{big:?}");
    // filler-0 was on a node: its deletion may help (the hint does not
    // weigh how much it frees), so all ten are retried; 2 CPUs free take
    // two of them and the other eight fail again.
    assert_eq!(between(60.0, 75.0), 8, "{big:?}");
    let placed_late = ran
        .events(Some("kube-scheduler"), "Scheduled")
        .filter(|r| r["pod"].as_str().unwrap().starts_with("default/big-") && secs(r) > 60.0)
        .count();
    assert_eq!(placed_late, 2);
}

#[test]
fn with_active_q_empty_a_backing_off_pod_is_popped_before_its_backoff_ends() {
    // `wait` (1 CPU) arrives at 10 s; the only node has 0.5 CPU left, so
    // NodeResourcesFit rejects it at about 10.0 s: its 1 s backoff ends in
    // the 11 s window. At 10.3 s a tainted 4-CPU node joins: Node/Add, and
    // NodeResourcesFit's hint says Queue (the pod fits the empty node), so
    // the pod goes to backoffQ. activeQ is empty, so it is popped at once
    // and fails on the taint at about 10.3 s, before 11 s. Without
    // SchedulerPopFromBackoffQ it would wait for the 11 s flush.
    let mut y = String::from(
        "name: pop-backoff\nduration: 30s\ncluster:\n  nodePools:\n    \
         - {name: w, count: 1, capacity: {cpu: \"2\", memory: 4Gi}}\n    \
         - {name: t, count: 1, capacity: {cpu: \"4\", memory: 8Gi}, joinAt: 10300ms, \
         taints: [{key: dedicated, value: infra, effect: NoSchedule}]}\nobjects:\n",
    );
    y += &pod("filler", "1500m");
    y += "timeline:\n  - at: 10s\n    apply: {apiVersion: v1, kind: Pod, metadata: {name: wait}, \
          spec: {containers: [{name: c, image: x, resources: {requests: {cpu: \"1\"}}}]}}\n";
    let ran = run_full(&scenario(&y), None);
    let tries = failures(&ran, "wait");
    assert!(tries.len() >= 2, "{tries:?}");
    assert!(tries[0] >= 10.0 && tries[0] < 10.3, "{tries:?}");
    assert!(
        tries[1] > 10.3 && tries[1] < 11.0,
        "retried from backoffQ before its backoff ended: {tries:?}"
    );
    // Nothing else can help (the taint stays): no third attempt in 30 s.
    assert_eq!(tries.len(), 2, "{tries:?}");
}

#[test]
fn a_leftover_pod_is_retried_by_the_30_second_flush_after_more_than_five_minutes() {
    // `huge` fails at about 1.4 s (once the scheduler's caches synced).
    // The leftover flush runs every 30 s from the scheduler's start (0 s):
    // at 300 s it has waited 298.6 s, not more than 5 minutes; at 330 s
    // 328.6 s > 300 s. Its second failure ends that cycle 0.2 ms after
    // the 330 s flush, so at 630 s it has waited 299.9998 s, not more than
    // 5 minutes, and the third comes at 660 s. (A 1 s flush with `>=` retried it at ~302 s and
    // ~603 s.)
    let mut y = String::from(
        "name: leftover\nduration: 700s\ncluster:\n  nodePools:\n    \
         - {name: w, count: 3, capacity: {cpu: \"2\", memory: 4Gi}}\nobjects:\n",
    );
    y += &pod("huge", "16");
    let ran = run_full(&scenario(&y), None);
    let tries = failures(&ran, "huge");
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(tries[0] > 1.0 && tries[0] < 2.0, "{tries:?}");
    assert!(tries[1] >= 330.0 && tries[1] < 331.0, "{tries:?}");
    assert!(tries[2] >= 660.0 && tries[2] < 661.0, "{tries:?}");
}

#[test]
fn pods_created_while_the_scheduler_is_cut_off_are_all_bound_after_it_heals() {
    // The scheduler is partitioned from everyone at 10 s; five pods are
    // created at 15-19 s; the partition heals at 40 s. Its watches broke,
    // so it relists, finds the five pending pods and binds every one.
    let mut y = String::from(
        "name: partition\nduration: 90s\ncluster:\n  nodePools:\n    \
         - {name: w, count: 3, capacity: {cpu: \"4\", memory: 8Gi}}\nobjects:\n",
    );
    y += &pod("before", "500m");
    y += "timeline:\n  - {at: 10s, partition: [kube-scheduler]}\n";
    for i in 0..5 {
        y += &format!(
            "  - at: {}s\n    apply: {{apiVersion: v1, kind: Pod, metadata: {{name: late-{i}}}, \
             spec: {{containers: [{{name: c, image: x, resources: {{requests: {{cpu: \"1\"}}}}}}]}}}}\n",
            15 + i
        );
    }
    y += "  - {at: 40s, heal: true}\n";
    let ran = run_full(&scenario(&y), None);
    let store = &ran.finished.engine.shared.etcd;
    let mut bound = 0;
    for k in store.keys().filter(|k| k.kind == kubesim::api::Kind::Pod) {
        let p = store.get(k).unwrap().as_pod().unwrap();
        assert!(p.node_name.is_some(), "{k} bound after the heal");
        bound += 1;
    }
    // `before` and the five late pods.
    assert_eq!(bound, 6);
    // None of the late pods was scheduled while the scheduler was cut off.
    let late: Vec<f64> = ran
        .events(Some("kube-scheduler"), "Scheduled")
        .filter(|r| r["pod"].as_str().unwrap().starts_with("default/late-"))
        .map(secs)
        .collect();
    assert_eq!(late.len(), 5, "each bound once: {late:?}");
    assert!(late.iter().all(|t| *t >= 40.0), "{late:?}");
}
