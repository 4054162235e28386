//! StatefulSet against v1.34: a Parallel set's rolling update still
//! replaces one pod at a time (maxUnavailable is behind the alpha
//! MaxUnavailableStatefulSet gate, off in v1.34, so upstream's
//! `updateStatefulSet` waits on any unhealthy pod, and a terminating pod
//! is unhealthy); `persistentVolumeClaimRetentionPolicy` decides which
//! claims the garbage collector removes on scale-in and on deletion.

use crate::common;

use std::collections::BTreeMap;

use common::{run_full, scenario, secs};
use serde_json::Value;

fn set(name: &str, policy: &str, extra: &str) -> String {
    format!(
        r#"
  - apiVersion: apps/v1
    kind: StatefulSet
    metadata: {{name: {name}, namespace: default}}
    spec:
      serviceName: {name}
      replicas: 3
      {extra}
      {policy}
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata:
          labels: {{app: {name}}}
          annotations: {{kubesim.io/ready-after: 5s}}
        spec:
          terminationGracePeriodSeconds: 3
          containers:
            - name: c
              image: nginx:1.27
              readinessProbe: {{exec: {{command: [ok]}}, periodSeconds: 1}}
      volumeClaimTemplates:
        - metadata: {{name: data}}
          spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}"#
    )
}

const HEAD: &str = r#"
name: sts
duration: 4m
cluster:
  nodePools:
    - name: w
      count: 3
      capacity: {cpu: "8", memory: 16Gi, pods: "110"}
objects:"#;

#[test]
fn a_parallel_rolling_update_has_at_most_one_pod_down() {
    let yaml = format!(
        "{HEAD}{}\ntimeline:\n  - at: 40s\n    setImage: {{kind: StatefulSet, name: web, container: c, image: \"nginx:1.28\"}}\n",
        set("web", "", "podManagementPolicy: Parallel")
    );
    let ran = run_full(&scenario(&yaml), None);
    // Replay pod writes; after each, count the ordinals that are not
    // serving: missing, terminating or not Ready.
    let mut pods: BTreeMap<String, Value> = BTreeMap::new();
    let mut worst = 0;
    let mut updated = 0;
    for w in ran.writes("Pod/default/web-") {
        let key = w["key"].as_str().unwrap().to_string();
        if w["verb"] == "delete" {
            pods.remove(&key);
        } else {
            pods.insert(key, w["object"].clone());
        }
        if secs(w) < 40.0 {
            continue;
        }
        let serving = pods
            .values()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count();
        worst = worst.max(3 - serving);
        updated = pods
            .values()
            .filter(|p| p["spec"]["containers"][0]["image"] == "nginx:1.28")
            .count();
    }
    // maxUnavailable 1: one pod down at a time. (Before, a Parallel set
    // deleted the next pod while the last was still terminating: 2 or 3.)
    assert_eq!(worst, 1, "at most one of three down during the update");
    assert_eq!(updated, 3, "all three replaced");
}

const RETAIN_DELETE: &str =
    "persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Delete}";

#[test]
fn claims_follow_the_retention_policy_on_scale_in_and_deletion() {
    let yaml = format!(
        "{HEAD}{}{}\ntimeline:
  - at: 60s
    scale: {{kind: StatefulSet, name: web, replicas: 1}}
  - at: 60s
    scale: {{kind: StatefulSet, name: keep, replicas: 1}}
  - at: 150s
    delete: {{kind: StatefulSet, name: web}}
  - at: 150s
    delete: {{kind: StatefulSet, name: keep}}
",
        set("web", RETAIN_DELETE, ""),
        set("keep", "", "")
    );
    let ran = run_full(&scenario(&yaml), None);
    let deleted = |claim: &str| {
        ran.writes(&format!("PersistentVolumeClaim/default/{claim}"))
            .find(|w| w["verb"] == "delete")
            .map(secs)
    };
    let pod_gone = |pod: &str| {
        ran.writes(&format!("Pod/default/{pod}"))
            .filter(|w| w["verb"] == "delete")
            .map(secs)
            .last()
            .unwrap()
    };
    // whenScaled: Delete: scaling 3 -> 1 at 60 s condemns web-2, then
    // web-1 (OrderedReady, each after the one above is gone; 3 s grace
    // each); their claims get the pod as owner and the garbage collector
    // removes each after its pod is gone, before the set is deleted.
    for ord in [1, 2] {
        let claim = deleted(&format!("data-web-{ord}")).expect("scaled-in claim deleted");
        let pod = pod_gone(&format!("web-{ord}"));
        assert!(
            claim > pod && claim < 150.0,
            "data-web-{ord} at {claim}s, pod at {pod}s"
        );
    }
    // whenDeleted: Delete: data-web-0 goes with the set after 150 s.
    let last = deleted("data-web-0").expect("claim of the deleted set");
    assert!(last > 150.0, "data-web-0 at {last}s");
    // Retain/Retain (the default): all three claims of `keep` outlive
    // the scale-in and the set.
    for ord in 0..3 {
        assert_eq!(
            deleted(&format!("data-keep-{ord}")),
            None,
            "data-keep-{ord}"
        );
    }
}
