//! `workload:` end to end: generators (arrival processes, templates and
//! drawn sizes) and the Alibaba GPU trace importer on its committed sample,
//! on the happy path and across an apiserver outage that heals: every
//! arrival is still created once, by the submitter's resends.

use crate::common;

use common::{run_full, scenario, Ran};

const CLUSTER: &str = r#"
cluster:
  images: {busybox:1.36: 4Mi}
  nodePools:
    - name: worker
      count: 3
      capacity: {cpu: "8", memory: 32Gi}
      preloadedImages: [busybox:1.36]
"#;

const POD: &str = r#"
        apiVersion: v1
        kind: Pod
        metadata: {name: t, namespace: default}
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox:1.36}]"#;

fn generators(body: &str, extra: &str) -> String {
    format!("name: gen\nseed: 4\nduration: 5m\n{CLUSTER}{extra}workload:\n  generators:\n{body}")
}

/// The pod creations the apiserver committed whose name starts `prefix`.
fn created(ran: &Ran, prefix: &str) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    for w in ran.writes("Pod/default/") {
        let key = w["key"].as_str().unwrap_or("");
        let name = key.rsplit('/').next().unwrap_or("");
        if w["verb"] == "create" && name.starts_with(prefix) {
            out.push((common::secs(w), name.to_string()));
        }
    }
    out
}

fn counts(ran: &Ran) -> kubesim::report::stats::WorkloadCounts {
    let w = ran.finished.summary.workload.as_ref();
    w.expect("the summary counts the workload's requests")
        .clone()
}

#[test]
fn bursts_and_a_constant_rate_arrive_when_stated_and_poisson_replays_by_seed() {
    let body = format!(
        "    - name: burst\n      arrival: {{bursts: [{{at: 1m, count: 5}}, {{at: 2m, count: 4, over: 20s}}]}}\n      template:{POD}\n      runFor: {{constant: 10s}}\n    - name: steady\n      arrival: {{constant: 6/m}}\n      start: 30s\n      count: 3\n      template:{POD}\n    - name: random\n      arrival: {{poisson: 1/s}}\n      stop: 4m\n      template:{POD}\n      cpu: {{uniform: {{min: 100m, max: 900m}}}}\n      runFor: {{exponential: {{mean: 20s}}}}\n"
    );
    let s = scenario(&generators(&body, ""));
    let ran = run_full(&s, None);
    let burst = created(&ran, "burst-");
    // Five at 60 s, then four at 120, 125, 130, 135 s (20 s / 4 apart); a
    // create commits within milliseconds of its arrival.
    assert_eq!(burst.len(), 9, "{burst:?}");
    let at: Vec<u64> = burst.iter().map(|(t, _)| *t as u64).collect();
    assert_eq!(at, [60, 60, 60, 60, 60, 120, 125, 130, 135]);
    // 6/m from 30 s, three of them: 30 s, 40 s, 50 s.
    let steady: Vec<u64> = created(&ran, "steady-")
        .iter()
        .map(|(t, _)| *t as u64)
        .collect();
    assert_eq!(steady, [30, 40, 50]);
    // Poisson at 1/s over 240 s: 240 expected, sd √240 ≈ 15.5.
    let random = created(&ran, "random-").len();
    assert!((190..=290).contains(&random), "{random}");
    let w = counts(&ran);
    assert_eq!(w.submitted, 9 + 3 + random as u64);
    assert_eq!((w.created, w.refused, w.retries), (w.submitted, 0, 0));
    // The same seed draws the same arrivals and sizes; another seed does not.
    assert_eq!(run_full(&s, None).digest(), ran.digest());
    assert_ne!(run_full(&s, Some(5)).digest(), ran.digest());
}

#[test]
fn a_job_generator_makes_jobs_whose_pods_run_for_the_drawn_time() {
    let body = "    - name: train\n      arrival: {bursts: [{at: 10s, count: 2}]}\n      template:\n        apiVersion: batch/v1\n        kind: Job\n        metadata: {name: t, namespace: default}\n        spec:\n          template:\n            spec:\n              restartPolicy: Never\n              containers: [{name: c, image: busybox:1.36}]\n      runFor: {constant: 30s}\n      cpu: {constant: 1500m}\n";
    let ran = run_full(&scenario(&generators(body, "")), None);
    let jobs: Vec<_> = ran
        .writes("Job/default/train-")
        .filter(|w| w["verb"] == "create")
        .collect();
    assert_eq!(jobs.len(), 2);
    let sum = &ran.finished.summary;
    // Each Job's one pod ran 30 s and succeeded; the Jobs completed.
    assert_eq!(
        sum.pods.by_phase.get("Succeeded"),
        Some(&2),
        "{:?}",
        sum.pods
    );
    let pods = created(&ran, "train-");
    assert_eq!(pods.len(), 2, "{pods:?}");
    let req = ran.writes("Pod/default/train-").find_map(|w| {
        w["object"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(req.as_deref(), Some("1500m"));
}

#[test]
fn arrivals_during_an_apiserver_outage_are_resent_and_each_created_once() {
    let body = format!("    - name: steady\n      arrival: {{constant: 1/s}}\n      stop: 60s\n      template:{POD}\n      runFor: {{constant: 5s}}\n");
    let timeline = "timeline:\n  - {at: 20s, crashComponent: kube-apiserver}\n  - {at: 35s, restartComponent: kube-apiserver}\n";
    let ran = run_full(&scenario(&generators(&body, timeline)), None);
    let w = counts(&ran);
    // One a second from 0 s to 59 s: 60 arrivals, those of 20..35 s sent
    // while the apiserver is down and resent after it is back.
    assert_eq!(w.submitted, 60);
    assert_eq!(w.created, 60, "{w:?}");
    assert!(w.retries >= 15, "{w:?}");
    // Each name was created by exactly one POST (a restarted apiserver's
    // cache lists the pods again, so Write records alone repeat them).
    let mut posted: Vec<&str> = ran
        .events(Some("kube-apiserver"), "Request")
        .filter(|r| r["client"] == "workload" && r["verb"] == "POST" && r["code"] == 201)
        .filter_map(|r| r["object"].as_str())
        .collect();
    posted.sort();
    let n = posted.len();
    posted.dedup();
    assert_eq!((n, posted.len()), (60, 60), "each created once");
    // All ran their 5 s and succeeded: converged after the heal.
    assert_eq!(
        ran.finished.summary.pods.by_phase.get("Succeeded"),
        Some(&60)
    );
}

const OPENB: &str = r#"name: openb
duration: 2h
traceLevel: events
cluster:
  nodePools:
    - {name: cpu, count: 1, capacity: {cpu: "16", memory: 64Gi}}
workload:
  imports:
    - alibabaGpuV2023:
        pods: scenarios/data/openb/openb_pod_list_6h.csv
        nodes: scenarios/data/openb/openb_node_list_sample.csv
        from: 12831438s
        until: 12838638s
        gpuPricePerHour: 2
"#;

#[test]
fn the_alibaba_sample_imports_its_machines_as_nodes_and_its_tasks_as_pods() {
    let s = scenario(OPENB);
    // One pool node and the sample's 14 machines, each with its GPUs.
    assert_eq!(s.nodes.len(), 15);
    let g3 = s
        .nodes
        .iter()
        .find(|n| n.labels.get("nvidia.com/gpu.product").map(String::as_str) == Some("G3"))
        .unwrap();
    assert_eq!(g3.body.capacity["nvidia.com/gpu"].value(), 8);
    assert_eq!(g3.body.capacity["cpu"].milli_value(), 128_000);
    // 8 GPUs at 2 an hour.
    assert_eq!(g3.price_per_hour, 16.0);
    let w = s.workload.as_ref().unwrap();
    let tasks = &w.imports[0].tasks;
    // Created in the first two hours of the sample (12831438 s + 7200 s).
    let want = std::fs::read_to_string("scenarios/data/openb/openb_pod_list_6h.csv").unwrap();
    let rows: Vec<Vec<&str>> = want
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let in_window: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|r| r[8].parse::<u64>().unwrap() < 12_838_638)
        .collect();
    assert_eq!(tasks.len(), in_window.len());
    let never_ran = in_window
        .iter()
        .filter(|r| r[10].is_empty() && !r[9].is_empty())
        .count();
    let ran = run_full(&s, None);
    let c = counts(&ran);
    assert_eq!(c.submitted, in_window.len() as u64);
    assert_eq!(c.created, c.submitted, "{c:?}");
    // Every task the trace's owner gave up on before it started is deleted.
    assert_eq!(c.deleted as usize, never_ran, "{c:?}");
    // GPU tasks went to GPU machines: the time-weighted GPU share is not 0.
    assert!(ran.finished.summary.over_time.gpu_requested > 0.0);
}

#[test]
fn a_bad_trace_cell_is_an_error_at_its_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pods.csv");
    std::fs::write(&csv, "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\na,1,1,0,0,,LS,Running,5,9,5\nb,1,1,0,1500,,LS,Running,5,9,5\n").unwrap();
    let yaml = format!(
        "name: x\nworkload:\n  imports:\n    - alibabaGpuV2023: {{pods: {}}}\n",
        csv.display()
    );
    let errs = kubesim::scenario::load_str("x.yaml", &yaml, dir.path()).unwrap_err();
    let e = errs[0].to_string();
    assert!(
        e.contains("pods.csv:3:1: gpu_milli: 1500 is more than one GPU"),
        "{e}"
    );
}

/// A Node manifest under `objects:` (as a cluster dump lists it) gets a
/// kubelet: it registers Ready with the manifest's labels and allocatable,
/// takes pods that select it, and after its machine crashes and restarts
/// it is Ready again.
const DUMPED_NODE: &str = r#"name: dumped
duration: 3m
objects:
  - apiVersion: v1
    kind: Node
    metadata: {name: dumped-1, labels: {team: ml}}
    status:
      capacity: {cpu: "8", memory: 32Gi}
      allocatable: {cpu: 7500m, memory: 30Gi}
  - apiVersion: v1
    kind: Pod
    metadata: {name: on-it, namespace: default}
    spec:
      nodeSelector: {team: ml}
      containers: [{name: c, image: busybox:1.36, resources: {requests: {cpu: "7"}}}]
timeline:
  - {at: 30s, crashNode: dumped-1}
  - {at: 90s, restartNode: dumped-1}
"#;

#[test]
fn a_dumped_node_gets_a_kubelet_and_recovers_after_a_crash() {
    let ran = run_full(&scenario(DUMPED_NODE), None);
    let sum = &ran.finished.summary;
    assert_eq!(
        (sum.nodes.total, sum.nodes.ready),
        (1, 1),
        "{:?}",
        sum.nodes
    );
    let node = ran
        .writes("Node/dumped-1")
        .find(|w| w["verb"] == "create")
        .expect("the kubelet registered the Node");
    assert_eq!(node["object"]["metadata"]["labels"]["team"], "ml");
    assert_eq!(node["object"]["status"]["allocatable"]["cpu"], "7500m");
    // The pod ran there, and runs there again after the restart.
    assert_eq!(sum.pods.ready, 1, "{:?}", sum.pods);
}

/// A `kubectl get … -o yaml` dump as the starting point: its Nodes run
/// with kubelets, its Deployment and bare pod are applied without status
/// and scheduled here; its ReplicaSet and the Deployment's pods are made
/// again by the controllers, not copied; its Event is left out.
#[test]
fn a_cluster_dump_becomes_the_scenario_s_nodes_and_workloads() {
    let yaml = "name: dump\nduration: 2m\nworkload:\n  imports:\n    - clusterDump: tests/data/cluster-dump.yaml\n";
    let s = scenario(yaml);
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["prod-a", "prod-b"]);
    let a = &s.nodes[0];
    assert_eq!(a.body.allocatable["pods"].value(), 58);
    assert_eq!(a.labels["node.kubernetes.io/instance-type"], "m6i.2xlarge");
    assert_eq!(a.body.pod_cidr.as_deref(), Some("10.244.7.0/24"));
    let kinds: Vec<String> = s
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.kind.name(), o.meta.name))
        .collect();
    assert_eq!(kinds, ["Deployment/web", "Pod/debug", "Service/web"]);
    let ran = run_full(&s, None);
    let sum = &ran.finished.summary;
    assert_eq!((sum.nodes.total, sum.nodes.ready), (2, 2));
    // Three web pods made by the ReplicaSet controller, plus `debug`
    // scheduled onto the tainted node it tolerates or the other.
    assert_eq!(sum.pods.total, 4, "{:?}", sum.pods);
    assert_eq!(sum.pods.ready, 4, "{:?}", sum.pods);
}
