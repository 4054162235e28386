//! PodDisruptionBudgets, the eviction API and `kubectl drain` end to end:
//! a drain under a budget never takes more pods down than the budget
//! allows, retries refused evictions every five seconds, leaves DaemonSet
//! pods, and refuses (or, with `--force`, deletes) pods no controller
//! replaces; the disruption controller's status says what it should.

use crate::common;

use std::collections::BTreeMap;

use common::{run_full, scenario, secs, Ran};
use serde_json::Value;

/// Lines `kubectl drain` printed, with their times.
fn drain_output(ran: &Ran) -> Vec<(f64, String)> {
    ran.events(Some("kubectl"), "Drain")
        .map(|r| (secs(r), r["output"].as_str().unwrap().to_string()))
        .collect()
}

fn action_results(ran: &Ran) -> Vec<String> {
    ran.events(Some("kubectl"), "ActionResult")
        .map(|r| r["result"].as_str().unwrap().to_string())
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Ready, not-terminating pods whose name starts with `prefix`, after every
/// committed pod write: (time, count, pods by node).
fn serving(ran: &Ran, prefix: &str) -> Vec<(f64, usize, BTreeMap<String, String>)> {
    let mut pods: BTreeMap<String, Value> = BTreeMap::new();
    let mut out = Vec::new();
    for w in ran.writes("Pod/") {
        let name = w["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        if w["verb"] == "delete" {
            pods.remove(&name);
        } else {
            pods.insert(name, w["object"].clone());
        }
        let up: BTreeMap<String, String> = pods
            .iter()
            .filter(|(n, p)| {
                n.starts_with(prefix) && ready(p) && p["metadata"]["deletionTimestamp"].is_null()
            })
            .map(|(n, p)| {
                (
                    n.clone(),
                    p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.push((secs(w), up.len(), up));
    }
    out
}

fn last_object(ran: &Ran, key: &str) -> Value {
    ran.writes(key)
        .filter(|w| w["key"] == key)
        .last()
        .map(|w| w["object"].clone())
        .expect("written")
}

#[test]
fn drain_under_a_budget_takes_one_pod_at_a_time() {
    let text = std::fs::read_to_string("scenarios/drain.yaml").unwrap();
    let ran = run_full(&scenario(&text), None);
    let out = drain_output(&ran);
    let lines: Vec<&str> = out.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines[0], "node/worker-1 cordoned");
    assert!(lines[1]
        .starts_with("Warning: ignoring DaemonSet-managed Pods: kube-system/log-collector-"));
    let evicting = lines
        .iter()
        .filter(|l| l.starts_with("evicting pod default/web-"))
        .count();
    assert!(
        evicting >= 2,
        "worker-1 held at least two web pods: {lines:?}"
    );
    let evicted = lines.iter().filter(|l| l.ends_with(" evicted")).count();
    assert_eq!(evicted, evicting, "every pod evicted: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.")),
        "the budget refused at least one eviction: {lines:?}"
    );
    assert_eq!(*lines.last().unwrap(), "node/worker-1 drained");
    assert!(action_results(&ran)
        .iter()
        .any(|r| r.starts_with("ok: drained: ") && r.contains(" pods evicted in ")));

    // Retries come 5 s apart (plus the request's own latency).
    let retries: Vec<f64> = out
        .iter()
        .filter(|(_, l)| l.contains("will retry after 5s"))
        .map(|(t, _)| *t)
        .collect();
    for w in retries.windows(2) {
        assert!(w[1] - w[0] >= 5.0, "retries at {retries:?}");
    }

    // maxUnavailable 1 of 6: once all six served, never fewer than five.
    let series = serving(&ran, "web-");
    let full = series
        .iter()
        .position(|(_, n, _)| *n == 6)
        .expect("six ready");
    let low = series[full..].iter().map(|(_, n, _)| *n).min().unwrap();
    assert_eq!(low, 5, "the budget allows exactly one pod down");
    // At the end: six web pods serving, none on the drained node.
    let (_, n, by_node) = series.last().unwrap();
    assert_eq!(*n, 6);
    assert!(
        by_node.values().all(|node| node != "worker-1"),
        "{by_node:?}"
    );

    // The collector stays on worker-1.
    let pods = ran.writes("Pod/kube-system/log-collector-");
    let mut collectors: BTreeMap<String, String> = BTreeMap::new();
    for w in pods {
        let name = w["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        if w["verb"] == "delete" {
            collectors.remove(&name);
        } else if let Some(node) = w["object"]["spec"]["nodeName"].as_str() {
            collectors.insert(name, node.to_string());
        }
    }
    assert!(collectors.values().any(|n| n == "worker-1"));

    // The disruption controller's last word: 6 expected, 5 needed, 6 healthy.
    let pdb = last_object(&ran, "PodDisruptionBudget/default/web");
    let st = &pdb["status"];
    assert_eq!(st["expectedPods"], 6);
    assert_eq!(st["desiredHealthy"], 5);
    assert_eq!(st["currentHealthy"], 6);
    assert_eq!(st["disruptionsAllowed"], 1);
    assert!(st["disruptedPods"].is_null(), "evictions confirmed: {st}");
    assert_eq!(st["observedGeneration"], pdb["metadata"]["generation"]);
    let cond = &st["conditions"][0];
    assert_eq!(cond["type"], "DisruptionAllowed");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "SufficientPods");

    // Evicted pods carry the DisruptionTarget condition before they go.
    let marked = ran.writes("Pod/default/web-").any(|w| {
        w["object"]["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["type"] == "DisruptionTarget"
                        && c["reason"] == "EvictionByEvictionAPI"
                        && c["message"] == "Eviction API: evicting"
                })
            })
    });
    assert!(marked);
}

const BASE: &str = r#"
name: drain-cases
seed: 9
duration: DURATION
cluster:
  images: {nginx:1.27: 70Mi}
  nodePools:
    - name: worker
      count: 2
      capacity: {cpu: "8", memory: 32Gi, pods: "110"}
      preloadedImages: [nginx:1.27]
objects:
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: agent, namespace: default}
    spec:
      selector: {matchLabels: {app: agent}}
      template:
        metadata: {labels: {app: agent}}
        spec:
          containers: [{name: a, image: "nginx:1.27"}]
  - apiVersion: v1
    kind: Pod
    metadata: {name: lonely, namespace: default, labels: {app: lonely}}
    spec:
      nodeName: worker-1
      containers: [{name: a, image: "nginx:1.27"}]
EXTRA
timeline:
  - at: 30s
    drain: DRAIN
"#;

/// Two web pods on worker-1 under a budget that needs both: no eviction
/// is ever allowed.
const GUARDED_WEB: &str = r#"  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: default}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          nodeSelector: {kubernetes.io/hostname: worker-1}
          containers: [{name: a, image: "nginx:1.27"}]
  - apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: {name: web, namespace: default}
    spec:
      minAvailable: 2
      selector: {matchLabels: {app: web}}"#;

fn case(drain: &str, extra: &str, duration: &str) -> Ran {
    let yaml = BASE
        .replace("DRAIN", drain)
        .replace("EXTRA", extra)
        .replace("DURATION", duration);
    run_full(&scenario(&yaml), None)
}

#[test]
fn drain_refuses_daemonset_and_unreplicated_pods_without_flags() {
    let ran = case("{node: worker-1}", "", "1m");
    let out: Vec<String> = drain_output(&ran).into_iter().map(|(_, l)| l).collect();
    assert_eq!(out[0], "node/worker-1 cordoned");
    let all = out.join("\n");
    assert!(all.contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-"), "{all}");
    assert!(all.contains("cannot delete Pods that declare no controller (use --force to override): default/lonely"), "{all}");
    assert!(!all.contains("evicting pod"), "{all}");
    let results = action_results(&ran);
    let last = results.last().unwrap();
    assert!(
        last.starts_with("failed: unable to drain node \"worker-1\" due to error: "),
        "{last}"
    );
    assert!(last.ends_with(", continuing command..."), "{last}");
    // The node stays cordoned and the pods stay.
    let node = last_object(&ran, "Node/worker-1");
    assert_eq!(node["spec"]["unschedulable"], true);
    assert!(ran
        .writes("Pod/default/lonely")
        .all(|w| w["verb"] != "delete"));
}

#[test]
fn force_deletes_the_unreplicated_pod_and_ignores_the_daemonset() {
    let ran = case(
        "{node: worker-1, ignoreDaemonSets: true, force: true, gracePeriodSeconds: 0}",
        "",
        "1m",
    );
    let out: Vec<String> = drain_output(&ran).into_iter().map(|(_, l)| l).collect();
    let all = out.join("\n");
    assert!(
        all.contains("Warning: deleting Pods that declare no controller: default/lonely"),
        "{all}"
    );
    assert!(
        all.contains("Warning: ignoring DaemonSet-managed Pods: default/agent-"),
        "{all}"
    );
    assert!(
        out.contains(&"evicting pod default/lonely".to_string()),
        "{all}"
    );
    assert!(out.contains(&"pod/lonely evicted".to_string()), "{all}");
    assert_eq!(out.last().unwrap(), "node/worker-1 drained");
    assert!(ran
        .writes("Pod/default/lonely")
        .any(|w| w["verb"] == "delete"));
}

#[test]
fn a_budget_that_allows_nothing_blocks_until_the_timeout() {
    let ran = case(
        "{node: worker-1, ignoreDaemonSets: true, force: true, timeout: 20s}",
        GUARDED_WEB,
        "2m",
    );
    let out = drain_output(&ran);
    let refusals: Vec<f64> = out
        .iter()
        .filter(|(_, l)| {
            l.starts_with("error when evicting pods/\"web-") && l.contains("will retry after 5s")
        })
        .map(|(t, _)| *t)
        .collect();
    // Two pods, each refused about every 5 s for 20 s.
    assert!(refusals.len() >= 6, "{out:?}");
    let last = action_results(&ran).last().unwrap().clone();
    assert!(
        last.starts_with("failed: unable to drain node \"worker-1\""),
        "{last}"
    );
    assert!(last.contains("global timeout reached: 20s"), "{last}");
    // The unreplicated pod, which no budget covers, went at once.
    assert!(
        out.iter().any(|(_, l)| l == "pod/lonely evicted"),
        "{out:?}"
    );
    // Both web pods still run.
    let series = serving(&ran, "web-");
    assert_eq!(series.last().unwrap().1, 2);
    let pdb = last_object(&ran, "PodDisruptionBudget/default/web");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert_eq!(pdb["status"]["conditions"][0]["reason"], "InsufficientPods");
}

#[test]
fn disable_eviction_deletes_past_the_budget() {
    let ran = case(
        "{node: worker-1, ignoreDaemonSets: true, force: true, disableEviction: true}",
        GUARDED_WEB,
        "1m",
    );
    let out: Vec<String> = drain_output(&ran).into_iter().map(|(_, l)| l).collect();
    assert!(
        out.iter()
            .any(|l| l.starts_with("deleting pod default/web-")),
        "{out:?}"
    );
    assert_eq!(out.last().unwrap(), "node/worker-1 drained");
    assert!(
        !out.iter().any(|l| l.contains("disruption budget")),
        "{out:?}"
    );
}
