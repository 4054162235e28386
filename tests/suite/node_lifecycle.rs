//! The node lifecycle controller against v1.34: a lost node is tainted
//! NoExecute in the monitor pass that marks it Unknown (kubernetes#120816,
//! in v1.34.0-alpha.1), not one node-monitor-period later; its NoSchedule
//! taint follows the Node update at once; a node that never posted Ready
//! has `nodeStartupGracePeriod` (60 s) from its creation.

use crate::common;

use common::{run_full, scenario, secs, Ran};
use serde_json::Value;

const CRASH: &str = r#"
name: node-crash
duration: 3m
cluster:
  nodePools:
    - name: worker
      count: 3
      capacity: {cpu: "4", memory: 16Gi, pods: "110"}
      zones: [zone-a, zone-b, zone-c]
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api, namespace: default}
    spec:
      replicas: 3
      selector: {matchLabels: {app: api}}
      template:
        metadata: {labels: {app: api}}
        spec:
          containers: [{name: api, image: nginx}]
timeline:
  - at: 30s
    crashNode: worker-2
  - at: 2m
    restartNode: worker-2
"#;

/// The first Node write at or after `from` whose object satisfies `pred`.
fn node_write<'a>(
    ran: &'a Ran,
    node: &str,
    from: f64,
    pred: impl Fn(&Value) -> bool,
) -> Option<&'a Value> {
    let key = format!("Node/{node}");
    ran.events(Some("kube-apiserver"), "Write")
        .filter(|w| w["key"] == key.as_str() && secs(w) >= from)
        .find(|w| pred(&w["object"]))
}

fn has_taint(o: &Value, key: &str, effect: &str) -> bool {
    o["spec"]["taints"]
        .as_array()
        .is_some_and(|ts| ts.iter().any(|t| t["key"] == key && t["effect"] == effect))
}

fn ready(o: &Value) -> String {
    o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map_or("none".into(), |c| c["status"].as_str().unwrap().to_string())
}

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

#[test]
fn a_crashed_node_is_tainted_in_the_pass_that_marks_it_unknown() {
    let ran = run_full(&scenario(CRASH), None);
    // The kubelet renews its Lease every 10 s; the last renewal committed
    // before the crash at 30 s is the last thing the controller heard.
    let w = ran
        .writes("Lease/kube-node-lease/worker-2")
        .map(secs)
        .filter(|t| *t < 30.0)
        .last()
        .expect("worker-2 renewed its lease");
    let pass = ran
        .events(None, "Event")
        .find(|e| e["reason"] == "NodeNotReady")
        .map(secs)
        .expect("worker-2 marked NotReady");
    // Unknown at the first 5 s monitor pass strictly after the renewal
    // (as the informer saw it, a few ms after the commit) + 50 s grace:
    // pass - (w + 50) in (0, 5] plus that watch delay.
    let late = pass - (w + 50.0);
    assert!(
        late > 0.0 && late <= 5.05,
        "renewed {w}s, Unknown pass {pass}s"
    );
    let unknown = node_write(&ran, "worker-2", pass, |o| ready(o) == "Unknown").unwrap();
    assert!(
        secs(unknown) - pass < 0.1,
        "status written {}s",
        secs(unknown)
    );
    // NoExecute: queued in that same pass, applied by the next 100 ms
    // tainting tick (pass + 0.1 s) plus one PATCH round trip. Before
    // v1.34 semantics (and in kubesim before this change) it waited for
    // the next monitor pass: pass + 5 s.
    let ne = node_write(&ran, "worker-2", pass, |o| {
        has_taint(o, UNREACHABLE, "NoExecute")
    })
    .map(secs)
    .unwrap();
    assert!(
        (pass + 0.1..pass + 0.3).contains(&ne),
        "NoExecute at {ne}s, pass {pass}s"
    );
    // NoSchedule: on the Node update the informer delivers, no rate
    // limit: within one watch delay and one PATCH of the status write.
    let ns = node_write(&ran, "worker-2", pass, |o| {
        has_taint(o, UNREACHABLE, "NoSchedule")
    })
    .map(secs)
    .unwrap();
    assert!(ns - pass < 0.3, "NoSchedule at {ns}s, pass {pass}s");
    // Recovery: restarted at 120 s, the kubelet posts Ready within its
    // 10 s status period; the NoSchedule taint goes on that update, the
    // NoExecute one at the next 5 s monitor pass: both by 120 + 10 + 5.
    let back = node_write(&ran, "worker-2", 120.0, |o| ready(o) == "True")
        .map(secs)
        .expect("Ready again");
    assert!(back <= 130.5, "Ready again at {back}s");
    let clean = node_write(&ran, "worker-2", back, |o| {
        !has_taint(o, UNREACHABLE, "NoExecute") && !has_taint(o, UNREACHABLE, "NoSchedule")
    })
    .map(secs)
    .expect("taints removed");
    assert!(
        clean - back <= 5.3,
        "untainted at {clean}s, Ready at {back}s"
    );
}

const GHOST: &str = r#"
name: ghost-node
duration: 2m
cluster:
  nodePools:
    - name: worker
      count: 2
      capacity: {cpu: "4", memory: 16Gi, pods: "110"}
timeline:
  - at: 20s
    apply:
      apiVersion: v1
      kind: Node
      metadata: {name: ghost}
"#;

#[test]
fn a_node_that_never_posted_ready_has_the_startup_grace_period() {
    let ran = run_full(&scenario(GHOST), None);
    let created = ran
        .writes("Node/ghost")
        .find(|w| w["verb"] == "create")
        .map(secs)
        .expect("ghost registered");
    assert!((20.0..21.0).contains(&created), "created {created}s");
    // Nothing touches it for nodeStartupGracePeriod (60 s) from its
    // creation (stamped when the apiserver took the POST, between the
    // apply at 20 s and the commit): no Unknown, no taint. (kubesim before this change read a
    // node without conditions as Unknown and tainted it unreachable at
    // its first monitor pass, ~25 s.)
    let first_change = ran
        .writes("Node/ghost")
        .find(|w| w["verb"] != "create")
        .map(secs)
        .expect("marked eventually");
    assert!(first_change > 20.0 + 60.0, "changed at {first_change}s");
    // Then, at the first 5 s pass past created + 60 s: the four monitored
    // conditions Unknown, "Kubelet never posted node status."
    let unknown = node_write(&ran, "ghost", 0.0, |o| ready(o) == "Unknown").unwrap();
    let t = secs(unknown);
    assert!(t > 20.0 + 60.0 && t <= created + 65.1, "Unknown at {t}s");
    let conds = unknown["object"]["status"]["conditions"]
        .as_array()
        .unwrap();
    assert_eq!(conds.len(), 4, "{conds:?}");
    assert!(conds
        .iter()
        .all(|c| c["status"] == "Unknown" && c["reason"] == "NodeStatusNeverUpdated"));
    // No kubelet ever said Ready, so no NodeNotReady event; the NoExecute
    // taint still follows in the same pass (+0.1 s tick).
    assert!(ran
        .events(None, "Event")
        .all(|e| e["reason"] != "NodeNotReady"));
    let ne = node_write(&ran, "ghost", t, |o| has_taint(o, UNREACHABLE, "NoExecute"))
        .map(secs)
        .unwrap();
    assert!(ne - t < 0.3, "NoExecute at {ne}s, Unknown at {t}s");
}
