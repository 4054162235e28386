//! The kubelet's status manager after a fault heals: pods the node lifecycle
//! controller marked NotReady while their node was unreachable are posted
//! Ready again by the kubelet's periodic reconciliation.

use crate::common;

use std::collections::BTreeMap;

use common::{run_full, scenario, secs, Ran};

/// Ready pods among the latest versions of pods under `prefix` at time `t`.
fn ready_at(ran: &Ran, prefix: &str, t: f64) -> usize {
    let mut latest: BTreeMap<String, bool> = BTreeMap::new();
    for w in ran.writes(prefix).filter(|w| secs(w) <= t) {
        let key = w["key"].as_str().unwrap().to_string();
        if w["verb"] == "delete" {
            latest.remove(&key);
            continue;
        }
        let ready = w["object"]["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .is_some_and(|c| c["status"] == "True");
        latest.insert(key, ready);
    }
    latest.values().filter(|r| **r).count()
}

#[test]
fn pods_marked_not_ready_during_a_partition_are_ready_one_status_sync_after_the_heal() {
    let ran = run_full(
        &scenario(
            r#"
name: partition-pods
duration: 4m
cluster:
  network: {latency: {constant: 1ms}}
  apiserver: {requestLatency: {constant: 1ms}}
  etcd: {walFsync: {constant: 1ms}}
  nodePools: [{name: worker, count: 1, capacity: {cpu: "8", memory: 16Gi}}]
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 6
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: nginx, resources: {requests: {cpu: 100m}}}]
timeline:
  - {at: 30s, partition: [worker-1]}
  - {at: 130s, heal: true}
"#,
        ),
        None,
    );
    let pods = "Pod/default/web-";
    assert_eq!(
        ready_at(&ran, pods, 30.0),
        6,
        "all six Ready before the cut"
    );
    // nodeMonitorGracePeriod 50 s after the last heartbeat before 30 s, seen
    // on the next 5 s monitor pass: Unknown, and the pods NotReady, by 85 s.
    assert_eq!(ready_at(&ran, pods, 86.0), 0, "MarkPodsNotReady");

    // The first node status GET after the cut times out after the kubelet's
    // 10 s client deadline: the kubelet closes its connections and relists.
    let closed = ran
        .events(Some("kubelet/worker-1"), "ConnectionsClosed")
        .map(secs)
        .next()
        .expect("connections closed after the failed heartbeat");
    assert!((40.0..=50.0).contains(&closed), "closed at {closed}");
    // Past the heartbeat failure the kubelet relists every 10 s timeout plus
    // its back-off (0.8 s doubling to 30 s); across the partition each LIST
    // waits as a dial on the broken connection and is cancelled when its
    // 10 s timeout passes (HTTP/2 resets the stream), so none reaches the
    // apiserver late. The first LIST after the heal at 130 s is the
    // kubelet's next attempt: within one timeout plus the 30 s cap of the
    // heal, 153.0 s in this run.
    let relisted = ran
        .events(Some("kube-apiserver"), "Request")
        .filter(|r| r["client"] == "kubelet/worker-1" && r["verb"] == "LIST" && r["code"] == 200)
        .map(secs)
        .find(|t| *t > 130.0)
        .expect("relisted after the heal");
    assert!(
        relisted <= 130.0 + 10.0 + 30.0,
        "first LIST answered at {relisted}"
    );

    // The status manager's 10 s ticker (from the kubelet's start at 0) finds
    // the cached pods NotReady and its own Ready on its next tick, and posts.
    let reconciled: Vec<f64> = ran
        .events(Some("kubelet/worker-1"), "PodStatusReconcile")
        .map(secs)
        .collect();
    let tick = reconciled[0];
    assert_eq!(tick, (relisted / 10.0).ceil() * 10.0, "the next 10 s tick");
    assert_eq!(
        reconciled,
        vec![tick; 6],
        "one reconcile per pod, on the tick"
    );
    // Six patches at 1 ms network + 1 ms handling + 1 ms fsync each way.
    assert_eq!(ready_at(&ran, pods, tick - 0.001), 0);
    assert_eq!(ready_at(&ran, pods, tick + 0.1), 6, "6/6 Ready at {tick}+");
    // Worst case: heal + 10 s timeout + 30 s back-off + 10 s tick = 180 s,
    // well before the 240 s end (160 s in this run). Before the status manager reconciled,
    // this run ended with 0 of 6 Ready.
    assert!(tick <= 180.0, "ready at {tick}");
    assert_eq!(ran.finished.summary.pods.ready, 6);
    // Nothing else needed reconciling: no write of the kubelet's was lost.
    assert_eq!(
        ran.events(Some("kubelet/worker-1"), "ConnectionsClosed")
            .count(),
        1
    );
}

/// The example whose etcd loses quorum for a minute: the node lifecycle
/// controller marks api-1 NotReady when the write path comes back at 6 m;
/// the kubelet's next status sync makes it Ready again. It used to end with
/// `1 Running, 0 Ready`.
#[test]
fn etcd_leader_loss_ends_with_its_pods_ready() {
    let text = std::fs::read_to_string("scenarios/etcd-leader-loss.yaml").unwrap();
    let ran = run_full(&scenario(&text), None);
    let not_ready = ran
        .writes("Pod/default/api-1")
        .filter(|w| {
            w["object"]["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .is_some_and(|c| c["status"] == "False")
        })
        .map(secs)
        .last()
        .expect("marked NotReady");
    let reconciled = ran
        .events(Some("kubelet/worker-1"), "PodStatusReconcile")
        .map(secs)
        .find(|t| *t > not_ready)
        .expect("the kubelet re-posts");
    // The next tick of the 10 s ticker after the NotReady write.
    assert!(
        reconciled - not_ready <= 10.0,
        "{not_ready} -> {reconciled}"
    );
    assert_eq!(ready_at(&ran, "Pod/default/api-1", 480.0), 1);
    assert_eq!(ran.finished.summary.pods.ready, 1);
}

/// Upstream's kubelet config defaulting: an explicit
/// nodeStatusUpdateFrequency is also nodeStatusReportFrequency when that is
/// not set, so an unchanged status is posted every update period.
#[test]
fn node_status_report_frequency_defaults_to_an_explicit_update_frequency() {
    let ran = run_full(
        &scenario(
            r#"
name: report-frequency
duration: 2m
cluster:
  kubelet: {nodeStatusUpdateFrequency: 20s}
  nodePools: [{name: w, count: 1, capacity: {cpu: "2", memory: 4Gi}}]
"#,
        ),
        None,
    );
    let posts: Vec<f64> = ran
        .events(Some("kube-apiserver"), "Request")
        .filter(|r| r["client"] == "kubelet/w-1" && r["verb"] == "PATCH")
        .filter(|r| r["object"] == "Node/w-1" && r["code"] == 200)
        .map(secs)
        .collect();
    // Registered at ~0 s; status ticks at j, j+20, ... (j < 10 s); each tick
    // 20 s or more after the last post posts: j+20, j+40, ..., j+100, and
    // j+120 only if j is 0. With the 5 min report frequency (the old
    // default here) there were none in 2 minutes.
    assert!((5..=6).contains(&posts.len()), "{posts:?}");
    for w in posts.windows(2) {
        assert!((w[1] - w[0] - 20.0).abs() < 0.5, "{posts:?}");
    }
}
