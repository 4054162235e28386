//! The apiserver refuses changes to fields upstream's update validation
//! makes immutable, with a 422 Invalid and upstream's message, for a
//! timeline patch, `setImage` and `apply` alike; allowed changes go through;
//! and the refusal is the same while etcd has no quorum and after it heals.

use crate::common;

use common::{run_full, scenario};

const SCENARIO: &str = r#"
name: immutability
duration: 90s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 2, capacity: {cpu: "4", memory: 8Gi}}
objects:
  - apiVersion: v1
    kind: Pod
    metadata: {name: web}
    spec:
      containers: [{name: web, image: nginx:1.27, ports: [{containerPort: 80}]}]
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api}
    spec:
      replicas: 1
      selector: {matchLabels: {app: api}}
      template:
        metadata: {labels: {app: api}}
        spec: {containers: [{name: api, image: api:1}]}
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: batch}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: work, image: work:1}]
  - apiVersion: v1
    kind: Service
    metadata: {name: api}
    spec:
      clusterIP: 10.96.0.20
      selector: {app: api}
      ports: [{port: 80}]
timeline:
  - {at: 10s, patch: {kind: Pod, name: web, patch: {spec: {containers: [{name: web, image: nginx:1.27, ports: [{containerPort: 8080}]}]}}}}
  - {at: 11s, setImage: {kind: Pod, name: web, container: web, image: "nginx:1.28"}}
  - {at: 12s, patch: {kind: Pod, name: web, patch: {spec: {activeDeadlineSeconds: 600}}}}
  - {at: 13s, patch: {kind: Deployment, name: api, patch: {spec: {selector: {matchLabels: {app: other}}, template: {metadata: {labels: {app: other}}}}}}}
  - {at: 14s, patch: {kind: Job, name: batch, patch: {spec: {template: {spec: {containers: [{name: work, image: work:2}]}}}}}}
  - {at: 15s, patch: {kind: Service, name: api, patch: {spec: {clusterIP: 10.96.0.21}}}}
  - {at: 16s, scale: {kind: Deployment, name: api, replicas: 2}}
  - {at: 20s, crashEtcd: etcd-0}
  - {at: 20s, crashEtcd: etcd-1}
  - {at: 25s, patch: {kind: Pod, name: web, patch: {spec: {restartPolicy: Never}}}}
  - {at: 50s, restartEtcd: crashed}
  - {at: 70s, patch: {kind: Pod, name: web, patch: {spec: {restartPolicy: Never}}}}
"#;

const POD_FORBIDDEN: &str = "failed: 422 Invalid: Pod \"web\" is invalid: spec: Forbidden: \
pod updates may not change fields other than `spec.containers[*].image`,\
`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` \
(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` \
(allow it to be set to 1 if it was previously negative)";

#[test]
fn immutable_fields_are_refused_with_a_422_and_mutable_ones_change() {
    let ran = run_full(&scenario(SCENARIO), None);
    // Every timeline action's result, by the second it was typed at. (Each
    // result comes within a second of its action: etcd commits in ms, and
    // the refusals are answered from the watch cache without etcd.)
    let result_at = |t: u64| -> String {
        ran.events(Some("kubectl"), "ActionResult")
            .find(|r| r["t"].as_u64().unwrap() / 1_000_000_000 == t)
            .unwrap_or_else(|| panic!("no result at {t}s"))["result"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // A container port is outside the fields a pod update may change.
    assert_eq!(result_at(10), POD_FORBIDDEN);
    // The image and a first activeDeadlineSeconds are allowed.
    assert!(result_at(11).starts_with("ok"), "{}", result_at(11));
    assert!(result_at(12).starts_with("ok"), "{}", result_at(12));
    let pod = ran
        .writes("Pod/default/web")
        .filter(|w| w["verb"] == "update")
        .count();
    assert!(pod >= 2, "the two allowed pod patches committed");
    // apps/v1 selectors never change.
    let deploy = result_at(13);
    assert!(
        deploy.starts_with(
            "failed: 422 Invalid: Deployment.apps \"api\" is invalid: spec.selector: \
             Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: field is immutable"
        ),
        "{deploy}"
    );
    // A Job's template is immutable (it is not suspended).
    let job = result_at(14);
    assert!(
        job.starts_with(
            "failed: 422 Invalid: Job.batch \"batch\" is invalid: spec.template: Invalid value: "
        ) && job.ends_with(": field is immutable"),
        "{job}"
    );
    // A Service's clusterIP, once set, stays.
    assert_eq!(
        result_at(15),
        "failed: 422 Invalid: Service \"api\" is invalid: spec.clusterIP: Invalid value: \
         \"10.96.0.21\": field is immutable"
    );
    // Replicas are mutable: the scale goes through.
    assert!(result_at(16).starts_with("ok"), "{}", result_at(16));
    // With two of three etcd members down, the refusal is the same 422
    // (validation reads the watch cache, not etcd) and nothing crashes …
    assert_eq!(result_at(25), POD_FORBIDDEN);
    // … and after the heal too.
    assert_eq!(result_at(70), POD_FORBIDDEN);
    // The stored objects kept their immutable fields.
    let store = &ran.finished.engine.shared.etcd;
    let get = |kind, ns: &str, name: &str| {
        store
            .get(&kubesim::api::ObjectKey {
                kind,
                namespace: ns.into(),
                name: name.into(),
            })
            .unwrap()
            .to_json()
    };
    let pod = get(kubesim::api::Kind::Pod, "default", "web");
    assert_eq!(
        pod["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.28");
    assert_eq!(pod["spec"]["activeDeadlineSeconds"], 600);
    let d = get(kubesim::api::Kind::Deployment, "default", "api");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "api");
    assert_eq!(d["spec"]["replicas"], 2);
    let svc = get(kubesim::api::Kind::Service, "default", "api");
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.20");
}

#[test]
fn the_narration_shows_the_refusal_as_kubectl_prints_it() {
    let ran = run_full(&scenario(SCENARIO), None);
    let refused = ran
        .events(Some("kubectl"), "ActionResult")
        .find(|r| r["t"].as_u64().unwrap() / 1_000_000_000 == 10)
        .unwrap();
    let line = kubesim::report::narrate::narrate(&refused.to_string()).expect("narrated");
    // kubectl prints the apiserver's message: `The Pod "web" is invalid: …`.
    assert!(
        line.text.contains(
            "422 Invalid: Pod \"web\" is invalid: spec: Forbidden: pod updates may not change"
        ),
        "{}",
        line.text
    );
}

/// `validate` warns of the refusals to come, at the patch's line, without
/// refusing the scenario: the 422 is what the run is meant to show.
#[test]
fn load_warns_of_each_patch_the_apiserver_will_refuse() {
    let s = scenario(SCENARIO);
    let refused: Vec<&String> = s
        .warnings
        .iter()
        .filter(|w| w.contains("will refuse this patch"))
        .collect();
    // Lines counted from the scenario text's first (empty) line: the pod's
    // port (39), the Deployment's selector (42), the Job's template (43),
    // the Service's clusterIP (44) and the pod's restartPolicy twice (48,
    // 50); the deadline (41) and the image are allowed.
    let lines: Vec<&str> = refused
        .iter()
        .map(|w| w.split(':').nth(1).unwrap())
        .collect();
    assert_eq!(lines, ["39", "42", "43", "44", "48", "50"], "{refused:#?}");
    assert!(refused[1].contains("field is immutable"), "{}", refused[1]);
}
