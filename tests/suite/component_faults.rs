//! Control-plane and process faults, each on its own with a recovery
//! check (fault, heal, convergence: nodes Ready, the Deployment's ready
//! count, no pod stuck terminating), and the `faults:` kinds that draw
//! them: own streams, located errors, a repro that reruns to the same
//! digest.

use crate::common;

use std::path::Path;

use common::{kubesim, run_at, scenario, secs, Ran};
use kubesim::api::Kind;
use kubesim::faults::profile::FaultKind;
use kubesim::faults::{draw, repro};
use kubesim::scenario::load_str;
use kubesim::sim::TraceLevel;

/// Three workers, a 3-replica Deployment; `timeline` is appended.
fn cluster(extra_cluster: &str, timeline: &str) -> String {
    format!(
        r#"
name: component-faults
duration: 5m
cluster:
  images: {{nginx:1.27: 70Mi}}
  nodePools: [{{name: worker, count: 3, capacity: {{cpu: "4", memory: 8Gi}}, preloadedImages: [nginx:1.27]}}]
{extra_cluster}
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: default}}
    spec:
      replicas: 3
      selector: {{matchLabels: {{app: web}}}}
      template:
        metadata: {{labels: {{app: web}}}}
        spec: {{containers: [{{name: web, image: "nginx:1.27"}}]}}
timeline:
{timeline}"#
    )
}

/// What the cluster ends as, read from etcd.
#[derive(Debug, PartialEq)]
struct End {
    nodes_ready: usize,
    deployment_ready: i64,
    pods: usize,
    terminating: usize,
}

fn end(r: &Ran) -> End {
    let etcd = &r.finished.engine.shared.etcd;
    let mut e = End {
        nodes_ready: 0,
        deployment_ready: -1,
        pods: 0,
        terminating: 0,
    };
    for k in etcd.keys() {
        let o = etcd.get(k).unwrap().to_json();
        match k.kind {
            Kind::Node => {
                let ready = o["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                e.nodes_ready += usize::from(ready);
            }
            Kind::Deployment => {
                e.deployment_ready = o["status"]["readyReplicas"].as_i64().unwrap_or(0)
            }
            Kind::Pod => {
                e.pods += 1;
                e.terminating += usize::from(!o["metadata"]["deletionTimestamp"].is_null());
            }
            _ => {}
        }
    }
    e
}

fn converged(replicas: i64) -> End {
    End {
        nodes_ready: 3,
        deployment_ready: replicas,
        pods: replicas as usize,
        terminating: 0,
    }
}

fn run(yaml: &str) -> Ran {
    run_at(&scenario(yaml), None, TraceLevel::Spans)
}

/// The `result` of the action on timeline line `line`.
fn result_at(r: &Ran, line: u64) -> String {
    r.events(Some("kubectl"), "ActionResult")
        .find(|a| a["line"] == line)
        .map(|a| a["result"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The line of the timeline entry containing `text`.
fn line_of(yaml: &str, text: &str) -> u64 {
    yaml.lines().position(|l| l.contains(text)).unwrap() as u64 + 1
}

#[test]
fn a_restarted_apiserver_serves_again_and_every_client_recovers() {
    let yaml = cluster(
        "",
        "  - {at: 30s, crashComponent: kube-apiserver}\n  - {at: 40s, scale: {kind: Deployment, name: web, replicas: 4}}\n  - {at: 60s, restartComponent: kube-apiserver}\n  - {at: 70s, scale: {kind: Deployment, name: web, replicas: 6}}\n",
    );
    let r = run(&yaml);
    // While it is down, kubectl's connection is refused ...
    let refused = result_at(&r, line_of(&yaml, "replicas: 4}"));
    assert!(refused.contains("connection refused"), "{refused}");
    // ... and after the restart it serves again: the scale at 70 s reaches
    // six ready pods, every node is Ready (30 s without heartbeats is
    // inside the 40 s grace), nothing is left terminating.
    let scaled = result_at(&r, line_of(&yaml, "replicas: 6}"));
    assert!(scaled.starts_with("ok"), "{scaled}");
    assert_eq!(end(&r), converged(6));
    // Every client lost its streams at 30 s and came back through a relist
    // (the rebuilt cache's history starts at etcd's revision: 410 Gone);
    // no watch skipped an event and every acknowledged write was watched.
    let st = &r.finished.engine.shared.stats;
    assert!(st.watch_relists > 0);
    assert_eq!(st.watch_gaps, 0);
    assert!(common::unseen_acks(&r.records).is_empty());
    // Every kubelet renewed its Lease after the restart: three nodes every
    // 10 s over the last 230 s is ~69 renewals.
    let renewals = r.writes("Lease/").filter(|w| secs(w) > 61.0).count();
    assert!(renewals >= 60, "{renewals}");
}

/// Seconds at which each pod named like `web-` got its `spec.nodeName`
/// (its binding's Write), for pods created after `after` seconds.
fn bind_times(r: &Ran, after: f64) -> Vec<f64> {
    r.events(Some("kube-scheduler"), "Scheduled")
        .filter(|s| secs(s) > after)
        .map(secs)
        .collect()
}

#[test]
fn a_restarted_scheduler_relists_and_binds_what_waited() {
    let yaml = cluster(
        "",
        "  - {at: 30s, crashComponent: kube-scheduler}\n  - {at: 40s, scale: {kind: Deployment, name: web, replicas: 6}}\n  - {at: 100s, restartComponent: kube-scheduler}\n",
    );
    let r = run(&yaml);
    // The three new pods wait unbound while no scheduler runs; the new
    // process lists them and binds all three after 100 s.
    let binds = bind_times(&r, 30.0);
    assert_eq!(binds.len(), 3, "{binds:?}");
    assert!(binds.iter().all(|t| *t >= 100.0), "{binds:?}");
    assert_eq!(end(&r), converged(6));
}

#[test]
fn a_restarted_controller_manager_creates_each_missing_pod_once() {
    let yaml = cluster(
        "",
        "  - {at: 30s, crashComponent: kube-controller-manager}\n  - {at: 40s, scale: {kind: Deployment, name: web, replicas: 6}}\n  - {at: 100s, restartComponent: kube-controller-manager}\n",
    );
    let r = run(&yaml);
    // Nobody acts on the scale until the new process has relisted: every
    // pod create after the crash comes after 100 s, and with empty
    // expectations rebuilt from the list it creates exactly the 3 missing
    // (6 pods in all at the end, none extra).
    let creates: Vec<f64> = r
        .records
        .iter()
        .filter(|x| {
            x["event"] == "Request"
                && x["verb"] == "POST"
                && x["client"] == "kube-controller-manager"
        })
        .filter(|x| x["object"].as_str().unwrap_or("").starts_with("Pod/"))
        .filter(|x| secs(x) > 30.0)
        .map(secs)
        .collect();
    assert_eq!(creates.len(), 3, "{creates:?}");
    assert!(creates.iter().all(|t| *t >= 100.0), "{creates:?}");
    assert_eq!(end(&r), converged(6));
}

/// Pods that started containers on `node` at or after `t` seconds.
fn starts_on(r: &Ran, node: &str, t: f64) -> Vec<String> {
    let component = format!("kubelet/{node}");
    r.events(Some(&component), "ContainersStarted")
        .filter(|s| secs(s) >= t)
        .map(|s| s["pod"].as_str().unwrap().to_string())
        .collect()
}

fn node_not_ready_between(r: &Ran, node: &str, from: f64, to: f64) -> bool {
    let object = format!("Node/{node}");
    r.events(None, "Event").any(|e| {
        e["reason"] == "NodeNotReady" && e["object"] == object.as_str() && {
            let t = secs(e);
            t > from && t < to
        }
    })
}

#[test]
fn a_restarted_kubelet_adopts_its_running_containers() {
    let yaml = cluster(
        "",
        "  - {at: 30s, crashKubelet: worker-1}\n  - {at: 100s, restartKubelet: worker-1}\n",
    );
    let r = run(&yaml);
    let before = starts_on(&r, "worker-1", 0.0);
    assert!(!before.is_empty(), "spreading put a pod on worker-1");
    // 70 s without heartbeats is past the 40 s grace: the node goes
    // NotReady while its kubelet is down ...
    assert!(node_not_ready_between(&r, "worker-1", 30.0, 100.0));
    // ... but its containers kept running: the new kubelet starts none
    // (the old code had no kubelet-only crash: crashNode kills them, and
    // the pods are started again after the reboot).
    assert_eq!(starts_on(&r, "worker-1", 30.0), Vec::<String>::new());
    let restarts: i64 = pod_restarts(&r);
    assert_eq!(restarts, 0);
    assert_eq!(end(&r), converged(3));
}

/// (seconds, Ready condition) of each write of pods on `node`.
fn readiness_on(r: &Ran, node: &str) -> Vec<(f64, bool)> {
    r.writes("Pod/")
        .filter(|w| w["object"]["spec"]["nodeName"] == node)
        .map(|w| {
            let ready = w["object"]["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            (secs(w), ready)
        })
        .collect()
}

#[test]
fn a_restarted_kubelet_reports_probed_containers_unready_until_their_new_probe_passes() {
    // v1.34 (ChangeContainerStatusOnKubeletRestart on): a new kubelet's
    // readiness worker starts at Failure, so a container with a readiness
    // probe is not ready until that worker's first probe passes, which
    // runs within one period (10 s) of the restart.
    let yaml = cluster("", "  - {at: 30s, crashKubelet: worker-1}\n  - {at: 100s, restartKubelet: worker-1}\n").replace(
        r#"spec: {containers: [{name: web, image: "nginx:1.27"}]}"#,
        r#"spec: {containers: [{name: web, image: "nginx:1.27", readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 10}}]}"#,
    );
    let r = run_at(&scenario(&yaml), None, TraceLevel::Full);
    let writes = readiness_on(&r, "worker-1");
    let after: Vec<&(f64, bool)> = writes.iter().filter(|(t, _)| *t > 100.0).collect();
    // Ready before the crash; after the restart first not ready (the new
    // kubelet's first status write, after its relist), then ready again
    // by 100 s + the 10 s period + a write's round trip.
    assert!(
        writes.iter().any(|(t, ready)| *t < 30.0 && *ready),
        "{writes:?}"
    );
    assert!(matches!(after.first(), Some((_, false))), "{after:?}");
    let back = after.iter().find(|(_, ready)| *ready).map(|(t, _)| *t);
    assert!(back.is_some_and(|t| t < 111.0), "{after:?}");
    // The containers were adopted, not restarted.
    assert_eq!(starts_on(&r, "worker-1", 30.0), Vec::<String>::new());
    assert_eq!(end(&r), converged(3));
}

fn pod_restarts(r: &Ran) -> i64 {
    let etcd = &r.finished.engine.shared.etcd;
    etcd.keys()
        .filter(|k| k.kind == Kind::Pod)
        .map(|k| {
            let o = etcd.get(k).unwrap().to_json();
            o["status"]["containerStatuses"].as_array().map_or(0, |cs| {
                cs.iter()
                    .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                    .sum()
            })
        })
        .sum()
}

#[test]
fn a_crashed_node_restarts_its_containers_unlike_a_crashed_kubelet() {
    // The contrast: the machine dies, so after its reboot the pods still
    // bound to it (NoExecute eviction waits 300 s) are started again.
    let yaml = cluster(
        "",
        "  - {at: 30s, crashNode: worker-1}\n  - {at: 100s, restartNode: worker-1}\n",
    );
    let r = run(&yaml);
    assert!(!starts_on(&r, "worker-1", 100.0).is_empty());
}

#[test]
fn a_hung_kubelet_stops_heartbeating_and_resumes_where_it_was() {
    let yaml = cluster(
        "",
        "  - {at: 30s, hangKubelet: worker-1}\n  - {at: 40s, scale: {kind: Deployment, name: web, replicas: 6}}\n  - {at: 100s, resumeKubelet: worker-1}\n",
    );
    let r = run(&yaml);
    // Heartbeats stop: no Lease renewal from worker-1 in (30 s, 100 s), so
    // the node goes NotReady (last renewal ≤ 30 s, + 40 s grace, + the 5 s
    // monitor period: before 80 s) ...
    let renewed = r
        .writes("Lease/kube-node-lease/worker-1")
        .filter(|w| secs(w) > 30.5 && secs(w) < 100.0)
        .count();
    assert_eq!(renewed, 0);
    assert!(node_not_ready_between(&r, "worker-1", 30.0, 100.0));
    // ... its running pods are untouched (no container started again for a
    // pod it had), and on resume it handles what waited: a pod bound to it
    // during the hang starts after 100 s.
    let before: Vec<String> = starts_on(&r, "worker-1", 0.0)
        .into_iter()
        .filter(|p| !starts_on(&r, "worker-1", 30.0).contains(p))
        .collect();
    assert!(!before.is_empty());
    let after = starts_on(&r, "worker-1", 30.0);
    assert!(after.iter().all(|p| !before.contains(p)), "{after:?}");
    assert_eq!(pod_restarts(&r), 0);
    assert_eq!(end(&r), converged(6));
}

#[test]
fn a_slow_disk_slows_every_commit_until_it_heals() {
    let yaml = cluster(
        "  etcd: {members: 1}",
        "  - {at: 30s, slowDisk: {member: etcd-0, fsync: 800ms}}\n  - {at: 35s, scale: {kind: Deployment, name: web, replicas: 6}}\n  - {at: 60s, healDisk: etcd-0}\n",
    );
    let r = run(&yaml);
    // (proposed at, in s; commit latency, in ns)
    let commits: Vec<(f64, u64)> = r
        .events(None, "Commit")
        .map(|c| {
            let start = c["start"].as_u64().unwrap();
            (start as f64 / 1e9, c["t"].as_u64().unwrap() - start)
        })
        .collect();
    // One member: a commit waits for the leader's own fsync, which takes
    // at least 800 ms from 30 s to 60 s.
    let stalled: Vec<u64> = commits
        .iter()
        .filter(|(s, _)| *s >= 30.0 && *s < 59.0)
        .map(|(_, d)| *d)
        .collect();
    assert!(
        stalled.len() >= 6,
        "the scale's writes at least: {stalled:?}"
    );
    assert!(stalled.iter().all(|d| *d >= 800_000_000), "{stalled:?}");
    // Healed: once the last slow fsync (started by 60 s) is done, commits
    // are back to milliseconds.
    let healed: Vec<u64> = commits
        .iter()
        .filter(|(s, _)| *s >= 61.0)
        .map(|(_, d)| *d)
        .collect();
    assert!(!healed.is_empty());
    assert!(healed.iter().all(|d| *d < 100_000_000), "{healed:?}");
    assert_eq!(end(&r), converged(6));
}

#[test]
fn timeline_faults_name_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let off = "  scheduler: {enabled: false}";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown component",
            cluster("", "  - {at: 30s, crashComponent: kube-schedular}\n"),
            vec![
                "timeline[0].crashComponent",
                "did you mean `kube-scheduler`",
            ],
        ),
        (
            "a component that does not run",
            cluster(off, "  - {at: 30s, restartComponent: kube-scheduler}\n"),
            vec![
                "timeline[0].restartComponent",
                "does not run in this scenario",
            ],
        ),
        (
            "unknown node",
            cluster("", "  - {at: 30s, hangKubelet: worker-9}\n"),
            vec!["timeline[0].hangKubelet", "no node named `worker-9`"],
        ),
        (
            "zero fsync",
            cluster("", "  - {at: 30s, slowDisk: {member: etcd-0, fsync: 0s}}\n"),
            vec!["timeline[0].slowDisk.fsync", "longer than zero"],
        ),
        (
            "unknown member",
            cluster("", "  - {at: 30s, healDisk: etcd-5}\n"),
            vec!["timeline[0].healDisk"],
        ),
    ];
    for (case, text, want) in cases {
        std::fs::write(&bad, &text).unwrap();
        let (code, _, stderr) = kubesim(&["validate", bad.to_str().unwrap()]);
        assert_eq!(code, 2, "{case}: {stderr}");
        // Located: file:line:col of the entry.
        assert!(stderr.contains("bad.yaml:"), "{case}: {stderr}");
        for w in want {
            assert!(stderr.contains(w), "{case}: want `{w}` in\n{stderr}");
        }
    }
}

const DRAWN: &str = r#"
name: drawn-process-faults
duration: 12m
traceLevel: faults
cluster:
  images: {nginx:1.27: 70Mi}
  nodePools: [{name: worker, count: 4, capacity: {cpu: "4", memory: 8Gi}, preloadedImages: [nginx:1.27]}]
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: default}
    spec:
      replicas: 6
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: "nginx:1.27"}]}
faults:
  window: {from: 1m, until: 7m}
  maxConcurrent: 2
  nodeCrash: {meanTimeBetween: 2m, duration: {min: 10s, max: 1m}, pools: [worker]}
  componentCrash: {meanTimeBetween: 2m, duration: {min: 5s, max: 40s}}
  kubeletCrash: {meanTimeBetween: 2m, duration: {min: 10s, max: 1m}, pools: [worker]}
  kubeletHang: {meanTimeBetween: 2m, duration: {min: 10s, max: 1m}, pools: [worker]}
  etcdSlowDisk: {meanTimeBetween: 2m, duration: {min: 5s, max: 30s}, fsync: 500ms}
"#;

fn drawn_profile() -> kubesim::faults::FaultProfile {
    scenario(DRAWN).faults.expect("faults:")
}

fn of_kind(s: &kubesim::faults::Schedule, k: &str) -> Vec<String> {
    s.faults
        .iter()
        .filter(|f| f.kind.name() == k)
        .map(|f| format!("{f} at {}", f.start.nanos()))
        .collect()
}

#[test]
fn each_new_kind_draws_on_its_own_stream() {
    let mut all = drawn_profile();
    all.max_concurrent = 1000;
    // Node kinds on disjoint nodes, so that no fault is refused for a node
    // another kind has down (that rule has its own test below): what each
    // kind draws is then all that decides its faults.
    for k in &mut all.kinds {
        let nodes: &[&str] = match k.kind {
            FaultKind::NodeCrash => &["worker-1", "worker-2"],
            FaultKind::KubeletCrash => &["worker-3"],
            FaultKind::KubeletHang => &["worker-4"],
            _ => continue,
        };
        k.targets = nodes.iter().map(|n| n.to_string()).collect();
    }
    let names = [
        "nodeCrash",
        "componentCrash",
        "kubeletCrash",
        "kubeletHang",
        "etcdSlowDisk",
    ];
    let mut drawn = 0;
    for seed in 1..=20 {
        let full = draw(&all, seed);
        for keep in names {
            // Alone, a kind draws exactly what it draws beside the others.
            let mut alone = all.clone();
            alone.kinds.retain(|k| k.kind.name() == keep);
            let solo = draw(&alone, seed);
            assert_eq!(
                of_kind(&solo, keep),
                of_kind(&full, keep),
                "seed {seed}: {keep}"
            );
            drawn += of_kind(&full, keep).len();
        }
    }
    // Five kinds at a mean of 2 min over 6 min: ~3 each a seed, fewer
    // where one target is still down; far more than 150 in 20 seeds.
    assert!(drawn > 150, "{drawn}");
}

#[test]
fn a_node_takes_one_node_fault_at_a_time() {
    let p = drawn_profile();
    let node_kinds = [
        FaultKind::NodeCrash,
        FaultKind::KubeletCrash,
        FaultKind::KubeletHang,
    ];
    for seed in 1..=100 {
        let s = draw(&p, seed);
        for f in &s.faults {
            assert!(f.start >= p.from && f.end <= p.until, "seed {seed}: {f}");
            let overlapping = s
                .faults
                .iter()
                .filter(|g| node_kinds.contains(&g.kind) && node_kinds.contains(&f.kind))
                .filter(|g| g.target == f.target && g.start < f.end && f.start < g.end)
                .count();
            // Only f itself.
            assert!(
                overlapping <= 1,
                "seed {seed}: {f} overlaps another fault of its node"
            );
        }
    }
}

#[test]
fn bad_profile_values_are_located_errors() {
    let base = "name: t\nduration: 5m\ncluster:\n  scheduler: {enabled: false}\n  nodePools:\n    - {name: worker, count: 3, capacity: {cpu: \"2\", memory: 4Gi}}\nfaults:\n  window: {from: 1m, until: 4m}\n";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "a component that does not run",
            format!("{base}  componentCrash: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, components: [kube-scheduler]}}\n"),
            vec!["bad.yaml:9:", "faults.componentCrash.components[0]", "unknown running component `kube-scheduler`"],
        ),
        (
            "unknown pool",
            format!("{base}  kubeletHang: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, pools: [workr]}}\n"),
            vec!["bad.yaml:9:", "faults.kubeletHang.pools[0]", "did you mean `worker`"],
        ),
        (
            "zero fsync",
            format!("{base}  etcdSlowDisk: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, fsync: 0s}}\n"),
            vec!["bad.yaml:9:", "faults.etcdSlowDisk.fsync", "longer than zero"],
        ),
        (
            "unknown member",
            format!("{base}  etcdSlowDisk: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, fsync: 1s, members: [etcd-3]}}\n"),
            vec!["bad.yaml:9:", "faults.etcdSlowDisk.members[0]", "unknown etcd member `etcd-3`"],
        ),
        (
            "unknown field",
            format!("{base}  kubeletCrash: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, pools: [worker], hang: true}}\n"),
            vec!["bad.yaml:9:", "unknown field `hang`"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    for (case, text, want) in cases {
        std::fs::write(&bad, &text).unwrap();
        let (code, _, stderr) = kubesim(&["run", bad.to_str().unwrap()]);
        assert_eq!(code, 2, "{case}: {stderr}");
        for w in &want {
            assert!(stderr.contains(w), "{case}: want `{w}` in:\n{stderr}");
        }
    }
}

#[test]
fn a_repro_of_the_new_kinds_reruns_to_the_same_digest_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drawn.yaml");
    std::fs::write(&file, DRAWN).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..=6u64 {
        let seed_s = seed.to_string();
        let repro = dir.path().join(format!("repro{seed}.yaml"));
        let out = dir.path().join(format!("run{seed}"));
        let (code, stdout, stderr) = kubesim(&[
            "run",
            file.to_str().unwrap(),
            "--seed",
            &seed_s,
            "--no-report",
            "--out",
            out.to_str().unwrap(),
            "--write-repro",
            repro.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        let text = std::fs::read_to_string(&repro).unwrap();
        for key in [
            "crashComponent:",
            "crashKubelet:",
            "hangKubelet:",
            "slowDisk:",
        ] {
            if text.contains(key) {
                seen.insert(key);
            }
        }
        // Rerun the repro at another trace level: the run digest does not
        // depend on it.
        let again = dir.path().join(format!("again{seed}"));
        let (code2, stdout2, stderr2) = kubesim(&[
            "run",
            repro.to_str().unwrap(),
            "--no-report",
            "--trace-level",
            "events",
            "--out",
            again.to_str().unwrap(),
        ]);
        assert_eq!(code2, 0, "{stderr2}");
        assert_eq!(
            common::digest_of(&stdout),
            common::digest_of(&stdout2),
            "seed {seed}"
        );
        // Five minutes after the window closes everything has recovered.
        let loaded = load_str("drawn.yaml", DRAWN, Path::new(".")).unwrap();
        let m = repro::materialize(&file, &loaded, Some(seed))
            .unwrap()
            .unwrap();
        let ran = run_at(&m.scenario, Some(seed), TraceLevel::Faults);
        let e = end(&ran);
        assert_eq!(
            (e.nodes_ready, e.deployment_ready, e.terminating),
            (4, 6, 0),
            "seed {seed}: {:?}",
            m.schedule.faults
        );
    }
    // Six seeds wrote every new kind out at least once.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn a_kubelet_that_crashed_mid_kill_finishes_the_kill_after_its_restart() {
    // fuzz-everything seed 305, by hand: the scale to 0 at 30 s deletes
    // every pod; each container takes 5 s to stop on SIGTERM (grace 30 s),
    // and worker-1's kubelet exits at 31 s, in the middle. Its container
    // stops at ~35 s all the same; the new kubelet (60 s) handles the
    // step that waited and sends the final delete. The old code took the
    // late step for a stale timer (due at ~35 s, handled at 60 s): the kill
    // never ended and the pod stayed Terminating to the horizon.
    let yaml = cluster(
        "  kubelet: {containerStopLatency: {constant: 5s}}",
        "  - {at: 30s, scale: {kind: Deployment, name: web, replicas: 0}}\n  - {at: 31s, crashKubelet: worker-1}\n  - {at: 60s, restartKubelet: worker-1}\n",
    );
    let r = run(&yaml);
    let on_worker_1: Vec<String> = starts_on(&r, "worker-1", 0.0);
    assert!(!on_worker_1.is_empty(), "spreading put a pod on worker-1");
    let deleted_at: Vec<f64> = r
        .writes("Pod/")
        .filter(|w| w["verb"] == "delete")
        .filter(|w| {
            let name = w["key"].as_str().unwrap().rsplit('/').next().unwrap();
            on_worker_1.iter().any(|p| p.ends_with(name))
        })
        .map(secs)
        .collect();
    // Removed once the new kubelet runs (60 s), not before (it was down
    // when its container stopped) and not never.
    assert_eq!(deleted_at.len(), on_worker_1.len(), "{deleted_at:?}");
    assert!(deleted_at.iter().all(|t| *t >= 60.0), "{deleted_at:?}");
    assert_eq!(end(&r), converged(0));
}

#[test]
fn a_final_delete_answered_5xx_is_sent_again_and_the_pod_goes() {
    // tests/data/regressions/final-delete-retried.yaml (fuzz-everything
    // seed 1406, shrunk): the kubelet's final DELETE (grace 0) of a
    // drained pod is answered 5xx (500 there, 504 now that the run differs
    // after the fix); the next status sync (10 s) deletes it
    // again, as upstream's syncBatch keeps a pod that canBeDeleted until
    // it is gone. Before, that DELETE was the pod's only one and the pod
    // stayed Terminating to the horizon.
    let s = scenario(include_str!(
        "../data/regressions/final-delete-retried.yaml"
    ));
    let r = run_at(&s, None, TraceLevel::Spans);
    let deletes: Vec<(&str, u64, f64)> = r
        .records
        .iter()
        .filter(|x| x["event"] == "Request" && x["verb"] == "DELETE")
        .filter(|x| x["client"].as_str().unwrap_or("").starts_with("kubelet/"))
        .map(|x| {
            (
                x["object"].as_str().unwrap(),
                x["code"].as_u64().unwrap(),
                secs(x),
            )
        })
        .collect();
    let failed: Vec<_> = deletes.iter().filter(|d| d.1 >= 500).collect();
    assert!(
        !failed.is_empty(),
        "a final DELETE still fails here: {deletes:?}"
    );
    for f in failed {
        // Sent again at the next 10 s sync, answered 200.
        let again = deletes
            .iter()
            .find(|d| d.0 == f.0 && d.1 == 200 && d.2 > f.2);
        assert!(
            again.is_some_and(|a| a.2 - f.2 <= 10.5),
            "{}: no DELETE within a sync period of the 5xx: {deletes:?}",
            f.0
        );
    }
    let etcd = &r.finished.engine.shared.etcd;
    let terminating = etcd
        .keys()
        .filter(|k| k.kind == Kind::Pod)
        .filter(|k| !etcd.get(k).unwrap().to_json()["metadata"]["deletionTimestamp"].is_null())
        .count();
    assert_eq!(terminating, 0);
}

#[test]
fn each_informer_backs_off_on_its_own_after_an_apiserver_restart() {
    // kube-apiserver is down 30-37 s. Each of kube-controller-manager's
    // reflectors has its own back-off (upstream's per-Reflector
    // backoffManager: 0.8 s doubling, jitter up to 100%), so each retries
    // after at most 1.6 + 3.2 + 6.4 + 12.8 = 24 s of waits from the first
    // refusal: every relist by 30 + 24 = 54 s, plus a request's latency.
    // The old client shared one back-off among all sixteen informers;
    // their refusals stepped it to the 30 s cap within the first second
    // and fuzz-everything seed 1063 relisted Pods 51 s after a 7 s outage
    // (a NotReady storm from a stale Lease informer followed).
    let yaml = cluster(
        "",
        "  - {at: 30s, crashComponent: kube-apiserver}\n  - {at: 37s, restartComponent: kube-apiserver}\n",
    );
    let r = run(&yaml);
    let relists: Vec<(String, f64)> = r
        .records
        .iter()
        .filter(|x| {
            x["event"] == "Request"
                && x["verb"] == "LIST"
                && x["client"] == "kube-controller-manager"
                && x["code"] == 200
        })
        .filter(|x| secs(x) > 37.0)
        .map(|x| (x["object"].as_str().unwrap().to_string(), secs(x)))
        .collect();
    let kinds: std::collections::BTreeSet<&str> = relists.iter().map(|l| l.0.as_str()).collect();
    assert!(
        kinds.contains("Pod") && kinds.contains("Node"),
        "{relists:?}"
    );
    assert!(kinds.len() >= 10, "{relists:?}");
    assert!(relists.iter().all(|l| l.1 <= 55.0), "{relists:?}");
}
