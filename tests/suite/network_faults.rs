//! Network faults beyond the symmetric partition: a one-way cut (the cut
//! direction held, the open one carrying until the connection breaks at
//! its keepalive), a cut between two chosen groups, and degraded links
//! (extra delay, packet loss), each healed and followed to convergence.

use crate::common;

use common::{run_full, scenario, secs, Ran};

/// One or two nodes, constant latencies so times can be read exactly.
fn cluster(nodes: u32, timeline: &str) -> String {
    format!(
        r#"
name: net
duration: 4m
cluster:
  network: {{latency: {{constant: 1ms}}}}
  apiserver: {{requestLatency: {{constant: 1ms}}}}
  etcd: {{walFsync: {{constant: 1ms}}}}
  kubelet:
    sandboxCreateLatency: {{constant: 1s}}
    containerStartLatency: {{constant: 1s}}
  nodePools:
    - {{name: worker, count: {nodes}, capacity: {{cpu: "2", memory: 4Gi}}, preloadedImages: [app:1]}}
timeline:
{timeline}"#
    )
}

/// Times (s) of the committed Lease renewals of `node`.
fn lease_writes(ran: &Ran, node: &str) -> Vec<f64> {
    ran.writes(&format!("Lease/kube-node-lease/{node}"))
        .map(secs)
        .collect()
}

fn within(ts: &[f64], from: f64, to: f64) -> usize {
    ts.iter().filter(|&&t| t > from && t < to).count()
}

/// The Ready condition of every Node in etcd at the end.
fn nodes_ready(ran: &Ran) -> usize {
    let etcd = &ran.finished.engine.shared.etcd;
    etcd.keys()
        .filter(|k| k.kind == kubesim::api::Kind::Node)
        .filter(|k| {
            let o = etcd.get(k).unwrap().to_json();
            o["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .count()
}

/// First time the pod `name` was committed Running.
fn running_at(ran: &Ran, name: &str) -> Option<f64> {
    ran.writes(&format!("Pod/default/{name}"))
        .find(|w| w["object"]["status"]["phase"] == "Running")
        .map(secs)
}

const POD_AT_40S: &str = r#"  - at: 40s
    apply:
      apiVersion: v1
      kind: Pod
      metadata: {name: late}
      spec:
        nodeName: worker-1
        containers: [{name: app, image: app:1}]
"#;

#[test]
fn a_one_way_cut_carries_the_open_direction_until_the_keepalive_breaks_it() {
    // The apiserver's messages to worker-1 are lost from 30 s to 150 s; the
    // kubelet's reach the apiserver.
    let one_way = scenario(&cluster(
        1,
        &format!(
            "  - {{at: 30s, partitionOneWay: {{from: [kube-apiserver], to: [worker-1]}}}}\n{POD_AT_40S}  - {{at: 150s, heal: true}}\n"
        ),
    ));
    let symmetric = scenario(&cluster(
        1,
        &format!(
            "  - {{at: 30s, partition: [worker-1]}}\n{POD_AT_40S}  - {{at: 150s, heal: true}}\n"
        ),
    ));
    let (a, b) = (run_full(&one_way, None), run_full(&symmetric, None));
    let (la, lb) = (lease_writes(&a, "worker-1"), lease_writes(&b, "worker-1"));
    // Renewals go every 10 s. Until the connection breaks (it stalled at
    // 30 s, the kubelet's client-go keepalive is 45 s: 75 s) the renewals
    // still arrive and commit one way, though their answers are held:
    // those at ~40, 50, 60 and 70 s.
    assert!(within(&la, 30.5, 75.0) >= 4, "{la:?}");
    // Symmetric: nothing of worker-1 gets through from 30 s.
    assert_eq!(within(&lb, 30.5, 150.0), 0, "{lb:?}");
    // Broken at 75 s: a new connection's SYN-ACK would cross the cut, so
    // nothing more crosses either way until the heal.
    assert_eq!(within(&la, 75.5, 150.0), 0, "{la:?}");
    // The cut direction stalled from the start: the pod bound to worker-1
    // at 40 s reaches its kubelet's watch only after the heal, then starts
    // (sandbox 1 s + container 1 s), within the kubelet's relist back-off.
    for ran in [&a, &b] {
        let t = running_at(ran, "late").expect("the pod runs after the heal");
        assert!(t > 150.0 && t < 190.0, "Running at {t}");
        // Healed: renewals resume and the node is Ready at 4 m.
        assert!(within(&lease_writes(ran, "worker-1"), 150.0, 240.0) >= 5);
        assert_eq!(nodes_ready(ran), 1);
    }
}

#[test]
fn a_cut_between_groups_leaves_everyone_else_connected() {
    // worker-1 and kube-controller-manager are cut from kube-apiserver;
    // worker-2 is in neither group and keeps talking.
    let s = scenario(&cluster(
        2,
        "  - {at: 30s, partitionBetween: [[worker-1, kube-controller-manager], [kube-apiserver]]}\n  - {at: 120s, heal: true}\n",
    ));
    let ran = run_full(&s, None);
    let (w1, w2) = (
        lease_writes(&ran, "worker-1"),
        lease_writes(&ran, "worker-2"),
    );
    // 30 s to 120 s is nine renewal periods of 10 s.
    assert_eq!(within(&w1, 30.5, 120.0), 0, "{w1:?}");
    assert!(within(&w2, 30.5, 120.0) >= 8, "{w2:?}");
    // After the heal worker-1 renews again; both nodes Ready at the end.
    assert!(within(&w1, 120.0, 240.0) >= 10, "{w1:?}");
    assert_eq!(nodes_ready(&ran), 2);
    let faults: Vec<_> = ran.events(Some("kubectl"), "PartitionBetween").collect();
    assert_eq!(faults.len(), 1);
    assert_eq!(
        faults[0]["target"],
        "worker-1,kube-controller-manager|kube-apiserver"
    );
}

/// Offsets (ms, within the 10 s renewal period) of worker-1's lease writes
/// in `(from, to)`.
fn offsets(ts: &[f64], from: f64, to: f64) -> Vec<i64> {
    ts.iter()
        .filter(|&&t| t > from && t < to)
        .map(|t| ((t * 1000.0).round() as i64) % 10_000)
        .collect()
}

#[test]
fn degraded_links_add_their_delay_and_loss_until_restored() {
    let s = scenario(&cluster(
        1,
        "  - {at: 60s, degradeLinks: {targets: [worker-1], extraLatency: 500ms}}\n  - {at: 120s, restoreLinks: [worker-1]}\n",
    ));
    let ran = run_full(&s, None);
    let w = lease_writes(&ran, "worker-1");
    let before = offsets(&w, 20.0, 60.0);
    let during = offsets(&w, 61.0, 120.0);
    let after = offsets(&w, 122.0, 240.0);
    assert!(!before.is_empty() && !during.is_empty() && !after.is_empty());
    // Every renewal leaves at the same instant of its 10 s period; with
    // constant latencies its write lands at a constant offset. The
    // degraded link delays the request by exactly 500 ms on its way in.
    let base = before[0];
    assert!(before.iter().all(|&o| o == base), "{before:?}");
    assert!(
        during.iter().all(|&o| o == base + 500),
        "{base} vs {during:?}"
    );
    // Restored: back to the old offset.
    assert!(after.iter().all(|&o| o == base), "{after:?}");
    assert_eq!(ran.finished.engine.shared.net.retransmitted, 0);

    // Loss: 30% of segments retransmitted (TCP repairs them: nothing is
    // lost), only while degraded; the node stays Ready (a renewal is late
    // by 200 ms, 400 ms … never by the 40 s lease).
    let lossy = scenario(&cluster(
        1,
        "  - {at: 60s, degradeLinks: {targets: [worker-1], peers: [kube-apiserver], loss: 0.3}}\n  - {at: 120s, restoreLinks: [worker-1]}\n",
    ));
    let ran = run_full(&lossy, None);
    assert!(ran.finished.engine.shared.net.retransmitted > 0);
    let late = offsets(&lease_writes(&ran, "worker-1"), 61.0, 120.0);
    let base_l = offsets(&lease_writes(&ran, "worker-1"), 20.0, 60.0)[0];
    // Each loss costs at least the 200 ms RTO floor: some renewals land
    // ≥ 200 ms late, none early.
    assert!(late.iter().all(|&o| o >= base_l), "{late:?}");
    assert!(
        late.iter().any(|&o| o >= base_l + 200),
        "{base_l} vs {late:?}"
    );
    assert_eq!(nodes_ready(&ran), 1);
}

#[test]
fn a_restore_of_links_never_degraded_changes_nothing() {
    let s = scenario(&cluster(
        1,
        "  - {at: 30s, restoreLinks: [kube-apiserver]}\n",
    ));
    let ran = run_full(&s, None);
    let r: Vec<_> = ran.events(Some("kubectl"), "ActionResult").collect();
    assert!(
        r[0]["result"].as_str().unwrap().contains("nothing to do"),
        "{:?}",
        r[0]
    );
}

/// fuzz-everything seed 390, shrunk: kube-controller-manager's sends to
/// kube-apiserver are cut, kube-apiserver exits (its FIN reaches the
/// manager, which ends its watches and dials again into the cut), the cut
/// heals 0.2 s later, and kube-apiserver starts again 36 s after that.
/// The dials to the dead apiserver across the cut used to vanish: the
/// watches, which have no deadline, never answered, so the manager's
/// informers stayed at 4m16s forever (its status writes 409, nodes marked
/// NotReady over and over, 0 of 20 pods Ready at the deadline). Now the
/// dial waits for the heal, is refused (the process is still gone), the
/// reflectors back off and watch again, and a scale-up after the restart
/// is carried out.
#[test]
fn dials_into_a_cut_to_a_crashed_apiserver_are_refused_at_the_heal() {
    let yaml = r#"
name: cut-then-crash
seed: 390
duration: 6m
traceLevel: faults
cluster:
  images: {app:1: 10Mi}
  nodePools:
    - {name: worker, count: 2, capacity: {cpu: "4", memory: 8Gi}, preloadedImages: [app:1]}
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api, namespace: default}
    spec:
      replicas: 1
      selector: {matchLabels: {app: api}}
      template:
        metadata: {labels: {app: api}}
        spec:
          containers:
            - {name: api, image: "app:1", resources: {requests: {cpu: 500m, memory: 256Mi}}}
checks:
  liveness: 2m
timeline:
  - {at: 1m, partitionOneWay: {from: [kube-controller-manager], to: [kube-apiserver]}}
  - {at: 1m14.3s, crashComponent: kube-apiserver}
  - {at: 1m14.5s, heal: true}
  - {at: 1m50s, restartComponent: kube-apiserver}
  - {at: 2m30s, scale: {kind: Deployment, name: api, replicas: 3}}
"#;
    let s = scenario(yaml);
    let opts = kubesim::scenario::run::RunOptions {
        seed: None,
        trace_level: kubesim::sim::TraceLevel::Faults,
        checks: true,
        ..Default::default()
    };
    let done = kubesim::scenario::run::run(&s, opts, |_| {}).expect("runs");
    // The liveness checkers look 2m after the last fault (2m30s scale is
    // not a fault; the restart at 1m50s is): at 3m50s all 3 replicas of
    // the scale-up must be Ready. Before the fix: liveness-workloads,
    // Deployment/default/api 0 of 3 and its ReplicaSet 0 of 1 (the
    // manager's informers never resumed, so nothing it wrote took).
    assert!(done.liveness_checked_at.is_some());
    let found: Vec<String> = done.violations.iter().map(|v| v.to_string()).collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}
