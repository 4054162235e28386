//! A rendered Helm chart loads and runs: sealed-secrets 2.18.5 as
//! `helm template --include-crds` writes it (tests/data/helm/README.md),
//! with a CRD, its custom resources and the RBAC, Secret, ConfigMap,
//! Ingress, IngressClass, NetworkPolicy and webhook objects kubesim stores
//! without simulating.

use crate::common;

use std::path::{Path, PathBuf};

use common::{kubesim, run_full};
use kubesim::scenario::load::load_file;
use kubesim::scenario::load_str;

fn helm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/helm")
}

#[test]
fn the_rendered_chart_loads_and_its_deployment_runs() {
    let s = load_file(&helm_dir().join("scenario.yaml")).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    // 21 documents in the chart and the scenario's own Namespace.
    assert_eq!(s.objects.len(), 22);
    assert_eq!(
        s.report.custom["SealedSecret"],
        ("bitnami.com/v1alpha1".to_string(), 2)
    );
    assert_eq!(s.report.stored["ConfigMap"], 2);
    assert_eq!(s.report.stored["Role"], 2);
    let ran = run_full(&s, None);
    let sum = &ran.finished.summary;
    // Every object applied without a refusal.
    assert_eq!(sum.actions.len(), 22);
    assert!(
        sum.actions.iter().all(|a| a.result.starts_with("ok")),
        "{:?}",
        sum.actions
    );
    // Stored as etcd holds them at the end: the CRs, the ConfigMaps, the
    // kinds kubesim does not list a controller for.
    for (kind, n) in [
        ("SealedSecret", 2),
        ("ConfigMap", 2),
        ("CustomResourceDefinition", 1),
        ("IngressClass", 1),
        ("ValidatingWebhookConfiguration", 1),
        ("Secret", 1),
    ] {
        assert_eq!(
            sum.objects.get(kind).copied(),
            Some(n),
            "{kind}: {:?}",
            sum.objects
        );
    }
    // The Deployment's one replica is scheduled, Running and Ready.
    assert_eq!(sum.pods.total, 1);
    assert_eq!(sum.pods.by_phase.get("Running").copied(), Some(1));
    assert_eq!(sum.pods.ready, 1);
    assert_eq!(sum.pods.unscheduled, 0);
    assert!(sum
        .loading
        .not_simulated
        .iter()
        .any(|l| l.contains("SealedSecret") && l.contains("nothing reconciles")));
}

#[test]
fn custom_resources_are_stored_at_their_storage_version_with_their_scope() {
    let s = load_file(&helm_dir().join("scenario.yaml")).unwrap();
    let ran = run_full(&s, None);
    let created: Vec<_> = ran
        .writes("SealedSecret/")
        .filter(|r| r["verb"] == "create")
        .collect();
    let keys: Vec<&str> = created.iter().map(|r| r["key"].as_str().unwrap()).collect();
    // Namespaced, as the CRD's spec.scope says; one in kube-system, one in
    // the monitoring namespace the scenario creates.
    assert_eq!(
        keys,
        vec![
            "SealedSecret/kube-system/registry-credentials",
            "SealedSecret/monitoring/grafana-admin"
        ]
    );
    let obj = &created[0]["object"];
    assert_eq!(obj["apiVersion"], "bitnami.com/v1alpha1");
    assert!(
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // template.metadata preserves unknown fields, so kubeseal's
    // creationTimestamp: null stays.
    assert!(obj["spec"]["template"]["metadata"]
        .as_object()
        .unwrap()
        .contains_key("creationTimestamp"));
    // The CRD is created before its CRs (Helm applies crds/ first).
    let crd_rv = ran.writes("CustomResourceDefinition/").next().unwrap()["rv"]
        .as_u64()
        .unwrap();
    assert!(created.iter().all(|r| r["rv"].as_u64().unwrap() > crd_rv));
    // The Secret's stringData is merged into data ("timeoutSeconds: 5\n
    // failurePolicy: Ignore\n" base64-encoded), as the apiserver stores it.
    let secret = &ran.writes("Secret/kube-system/").next().unwrap()["object"];
    assert!(secret.get("stringData").is_none());
    assert_eq!(
        secret["data"]["webhook.yaml"],
        "dGltZW91dFNlY29uZHM6IDUKZmFpbHVyZVBvbGljeTogSWdub3JlCg=="
    );
}

/// A custom resource applied again with a change is patched three ways like
/// any object: read back against the stored kind, a new resourceVersion.
#[test]
fn a_custom_resource_is_patched_by_a_later_apply() {
    let dir = helm_dir();
    let yaml = "name: helm-patch\nduration: 60s\ncluster:\n  nodePools:\n    - {name: w, count: 1, capacity: {cpu: \"4\", memory: 16Gi}, labels: {kubernetes.io/os: linux}}\nobjects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: monitoring}}\n  - include: sealed-secrets-2.18.5.yaml\ntimeline:\n  - at: 30s\n    apply:\n      apiVersion: bitnami.com/v1alpha1\n      kind: SealedSecret\n      metadata: {name: registry-credentials, namespace: kube-system, labels: {team: infra}}\n      spec:\n        encryptedData: {password: AgBnew}\n";
    let s = load_str("patch.yaml", yaml, &dir).unwrap_or_else(|e| panic!("{e:?}"));
    let ran = run_full(&s, None);
    let writes: Vec<_> = ran
        .writes("SealedSecret/kube-system/registry-credentials")
        .collect();
    // One create at install, one update from the 30 s apply.
    assert_eq!(
        writes
            .iter()
            .map(|w| w["verb"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["create", "update"]
    );
    let after = &writes[1]["object"];
    assert_eq!(after["metadata"]["labels"]["team"], "infra");
    assert_eq!(after["spec"]["encryptedData"]["password"], "AgBnew");
    assert!(writes[1]["rv"].as_u64() > writes[0]["rv"].as_u64());
    assert!(
        ran.finished
            .summary
            .actions
            .iter()
            .all(|a| a.result.starts_with("ok")),
        "{:?}",
        ran.finished.summary.actions
    );
}

#[test]
fn validate_reads_a_plain_manifest_file_and_says_so() {
    let chart = helm_dir().join("sealed-secrets-2.18.5.yaml");
    let (code, out, err) = kubesim(&["validate", chart.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok: read as manifests: 21 objects"), "{out}");
    assert!(
        out.contains("stored, not simulated: ClusterRole 1, ClusterRoleBinding 1, ConfigMap 2"),
        "{out}"
    );
    assert!(out.contains("SealedSecret (bitnami.com/v1alpha1): 2 custom resources stored; nothing reconciles them"), "{out}");
    // The Deployment's pod template gets the notes a bare Pod would; its
    // containers' args are what a live run runs, and said so.
    assert!(
        out.contains("Deployment: not simulated, run by `kubesim live`: spec.template.spec.containers[].args"),
        "{out}"
    );
    assert!(
        out.contains("Deployment: accepted, not simulated: ")
            && !out.contains("accepted, not simulated: spec.template.spec.containers[].args"),
        "{out}"
    );
    // nodeSelector and priorityClassName are honoured: not in any note.
    assert!(
        !out.contains("nodeSelector") && !out.contains("priorityClassName"),
        "{out}"
    );
}

#[test]
fn validate_reads_a_snapshot_and_says_so() {
    let snap = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/snapshots/preemption.yaml");
    let (code, out, err) = kubesim(&["validate", snap.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(": ok: read as snapshot: 2 nodes, 5 pods (1 without a node)"),
        "{out}"
    );
}

/// A broken file reports every independent error in one `validate`.
#[test]
fn validate_reports_every_error_of_a_broken_file_at_once() {
    let dir = std::env::temp_dir().join(format!("kubesim-onepass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("broken.yaml");
    std::fs::write(
        &f,
        "name: broken\nduration: 2 minutes\ncluster:\n  nodePools:\n    - {name: w, count: 1, capacity: {cpu: \"4\", memory: 16Gi}}\nobjects:\n  - apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec:\n      replicas: three\n      selector: {matchLabels: {app: web}}\n      template:\n        metadata: {labels: {app: web}}\n        spec:\n          containers: [{name: c, image: nginx, resources: {requests: {cpu: 2 cores}}}]\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg}, data: {a: b}, extra: field}\n  - {apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}\n",
    )
    .unwrap();
    let (code, _, err) = kubesim(&["validate", f.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 2);
    // Five independent errors: the scenario's duration (line 2), the
    // Deployment's replicas (11) and cpu (16), the ConfigMap's unknown
    // field (17) and the CR without a CRD (18).
    for (line, what) in [
        (2, "duration: invalid duration"),
        (11, "objects[0].spec.replicas"),
        (
            16,
            "objects[0].spec.template.spec.containers[0].resources.requests.cpu",
        ),
        (17, "unknown field \"extra\" in ConfigMap"),
        (
            18,
            "no matches for kind \"Widget\" in version \"example.com/v1\"",
        ),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("broken.yaml:{line}:")) && l.contains(what)),
            "line {line} `{what}` missing:\n{err}"
        );
    }
    assert!(err.contains("5 errors found"), "{err}");
}

/// Crashes the apiserver's process at 40 s and starts it again at 45 s.
struct Restarter {
    apiserver: kubesim::sim::ComponentId,
}

impl kubesim::sim::Actor<kubesim::model::msg::Payload, kubesim::model::world::World> for Restarter {
    fn name(&self) -> &str {
        "restarter"
    }
    fn start(
        &mut self,
        ctx: &mut kubesim::sim::Ctx<'_, kubesim::model::msg::Payload, kubesim::model::world::World>,
    ) {
        use kubesim::model::msg::{Payload, Timer};
        use kubesim::sim::SimDuration;
        ctx.timer(
            SimDuration::from_secs(40),
            Payload::Timer(Timer::Action { index: 0 }),
        );
        ctx.timer(
            SimDuration::from_secs(45),
            Payload::Timer(Timer::Action { index: 1 }),
        );
    }
    fn handle(
        &mut self,
        payload: kubesim::model::msg::Payload,
        ctx: &mut kubesim::sim::Ctx<'_, kubesim::model::msg::Payload, kubesim::model::world::World>,
    ) {
        use kubesim::model::msg::{Payload, Timer};
        use kubesim::sim::Lifecycle;
        match payload {
            Payload::Timer(Timer::Action { index: 0 }) => {
                kubesim::model::network::close_connections(ctx, self.apiserver, true);
                ctx.lifecycle(Lifecycle::Crash(self.apiserver));
            }
            Payload::Timer(Timer::Action { .. }) => {
                ctx.lifecycle(Lifecycle::Restart(self.apiserver))
            }
            _ => {}
        }
    }
    fn crash(&mut self, _now: kubesim::sim::SimTime) {}
}

/// After an apiserver restart (its watch cache rebuilt from etcd's
/// snapshot) the custom resources are still served: a later apply reads
/// the stored SealedSecret and patches it.
#[test]
fn custom_resources_survive_an_apiserver_restart() {
    use kubesim::sim::{SimDuration, SimTime, Trace, TraceLevel, TraceSink};
    let yaml = "name: helm-restart\nduration: 90s\ncluster:\n  nodePools:\n    - {name: w, count: 1, capacity: {cpu: \"4\", memory: 16Gi}, labels: {kubernetes.io/os: linux}}\nobjects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: monitoring}}\n  - include: sealed-secrets-2.18.5.yaml\ntimeline:\n  - at: 60s\n    apply:\n      apiVersion: bitnami.com/v1alpha1\n      kind: SealedSecret\n      metadata: {name: grafana-admin, namespace: monitoring, labels: {rotated: \"yes\"}}\n      spec:\n        encryptedData: {admin-password: AgBrotated}\n";
    let s = load_str("restart.yaml", yaml, &helm_dir()).unwrap_or_else(|e| panic!("{e:?}"));
    let (mut e, layout) = kubesim::scenario::build(
        &s,
        1,
        Trace::new(TraceLevel::Full, TraceSink::Memory(Vec::new())),
    );
    let id = e.add(Box::new(Restarter {
        apiserver: layout.apiserver,
    }));
    e.shared.net.add_endpoint(id, 1, "restarter");
    e.run_until(SimTime::ZERO.after(SimDuration::from_secs(90)), |_| {});
    let records = common::records_of(&e.trace);
    let updates: Vec<_> = records
        .iter()
        .filter(|r| {
            r["event"] == "Write"
                && r["key"] == "SealedSecret/monitoring/grafana-admin"
                && r["verb"] == "update"
        })
        .collect();
    // The 60 s apply, after the 45 s restart, patched the stored CR once.
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(common::secs(updates[0]) >= 60.0);
    assert_eq!(updates[0]["object"]["metadata"]["labels"]["rotated"], "yes");
    // etcd holds both CRs and the patched value; no watch gap.
    let etcd = &e.shared.etcd;
    let crs: Vec<String> = etcd
        .keys()
        .map(|k| k.to_string())
        .filter(|k| k.starts_with("SealedSecret/"))
        .collect();
    assert_eq!(
        crs,
        vec![
            "SealedSecret/kube-system/registry-credentials",
            "SealedSecret/monitoring/grafana-admin"
        ]
    );
    assert_eq!(e.shared.stats.watch_gaps, 0);
    assert!(common::unseen_acks(&records).is_empty());
}

/// With its CRD deleted, a custom kind is no longer served: a create of a
/// new SealedSecret is answered 404 as the apiserver answers a resource
/// with no handler.
#[test]
fn a_custom_resource_is_refused_once_its_crd_is_deleted() {
    let yaml = "name: helm-crd-gone\nduration: 60s\ncluster:\n  nodePools:\n    - {name: w, count: 1, capacity: {cpu: \"4\", memory: 16Gi}, labels: {kubernetes.io/os: linux}}\nobjects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: monitoring}}\n  - include: sealed-secrets-2.18.5.yaml\ntimeline:\n  - {at: 20s, delete: {kind: CustomResourceDefinition, name: sealedsecrets.bitnami.com}}\n  - at: 30s\n    apply:\n      apiVersion: bitnami.com/v1alpha1\n      kind: SealedSecret\n      metadata: {name: late, namespace: kube-system}\n      spec:\n        encryptedData: {k: AgB}\n";
    let s = load_str("gone.yaml", yaml, &helm_dir()).unwrap_or_else(|e| panic!("{e:?}"));
    let ran = run_full(&s, None);
    let actions = &ran.finished.summary.actions;
    // 22 installs, the delete and the late apply.
    assert_eq!(actions.len(), 24);
    assert!(actions[22].result.starts_with("ok"), "{:?}", actions[22]);
    assert!(
        actions[23]
            .result
            .contains("could not find the requested resource"),
        "{:?}",
        actions[23]
    );
    assert_eq!(ran.writes("SealedSecret/kube-system/late").count(), 0);
}
