//! Scheduling throughput of the default profile's cycle: 10,000 pods onto
//! 5,000 nodes, each placed pod accounted on its node before the next cycle,
//! as the scheduler's assume step does. Compare with upstream
//! scheduler_perf's SchedulingBasic at 5,000 nodes (threshold 680 pods/s);
//! this measures the algorithm alone, without the modelled API round trips.
//!
//! The queue benchmark runs a whole scenario instead: 2,000 pods that fit
//! nowhere wait while pending pods come and go, which is where the
//! scheduling queue's handling of cluster events decides the cost.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use k8s_openapi::api::core::v1 as core;
use kubesim::scenario::run::{run, RunOptions};
use kubesim::scheduler::config::Profile;
use kubesim::scheduler::pod_info::PodInfo;
use kubesim::scheduler::profile::{
    image_spread, schedule, AffinityCounts, CycleInput, NodeSnapshot,
};
use kubesim::scheduler::resources::{Amounts, PodRequests};
use kubesim::sim::{RngStream, TraceLevel, TraceSink};

/// The allocator the `kubesim` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NODES: usize = 5_000;
const PODS: usize = 10_000;

fn nodes() -> Vec<NodeSnapshot> {
    (0..NODES)
        .map(|i| {
            let mut labels = BTreeMap::new();
            labels.insert("kubernetes.io/hostname".to_string(), format!("node-{i:05}"));
            labels.insert(
                "topology.kubernetes.io/zone".to_string(),
                format!("zone-{}", i % 3),
            );
            let allocatable: Amounts = [("cpu", 32_000), ("memory", 128 << 30), ("pods", 110)]
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect();
            NodeSnapshot::new(&format!("node-{i:05}"), labels, allocatable)
        })
        .collect()
}

fn pod(i: usize) -> PodInfo {
    let c: Amounts = [
        ("cpu", 100 + (i % 10) as i64 * 100),
        ("memory", (256 + (i % 8) as i64 * 128) << 20),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    PodInfo {
        namespace: "default".into(),
        name: format!("pod-{i}"),
        images: vec!["registry.example/app:1".to_string()],
        ..PodInfo::with_requests(PodRequests::from_containers(&[c], &[], &Amounts::new()))
    }
}

fn schedule_10k_on_5k(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PODS as u64));
    let pods: Vec<Arc<PodInfo>> = (0..PODS).map(|i| Arc::new(pod(i))).collect();
    let spec = core::PodSpec::default();
    let profile = Profile::default();
    let nominated = BTreeMap::new();
    g.bench_function("default_profile/10000_pods_5000_nodes", |b| {
        b.iter(|| {
            let mut cluster = nodes();
            let index: BTreeMap<String, usize> = cluster
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name.clone(), i))
                .collect();
            let mut rng = RngStream::derive(1, "kube-scheduler");
            let spread = image_spread(&cluster);
            let mut start = 0;
            for p in &pods {
                let input = CycleInput {
                    pod: p,
                    spec: &spec,
                    nodes: &cluster,
                    image_spread: &spread,
                    default_selector: None,
                    nominated: &nominated,
                    counts: AffinityCounts::default(),
                    fit_index: None,
                    dra: None,
                };
                let (d, next) = schedule(&profile, &input, start, &mut rng);
                start = next;
                let node = d.selected.expect("room for every pod");
                cluster[index[&node]].add_pod(p.clone());
            }
        });
    });
    g.finish();
}

/// 20 nodes of 4 CPUs each hold a 3.5-CPU filler; 2,000 pods asking for
/// 8 CPUs fit nowhere (NodeResourcesFit). Every 2 s for 200 s a small
/// pending pod is created (it fits nowhere either: 0.5 CPU is left per
/// node) and deleted a second later. Deleting a pod that was never on a
/// node cannot free anything, so upstream's queueing hints leave the 2,000
/// waiting; requeueing them on every deletion costs 2,000 cycles each time.
fn many_pending_scenario() -> kubesim::scenario::Scenario {
    let pod = |name: &str, cpu: &str| {
        format!(
            "  - apiVersion: v1\n    kind: Pod\n    metadata: {{name: {name}}}\n    spec:\n      \
             containers: [{{name: c, image: x, resources: {{requests: {{cpu: \"{cpu}\"}}}}}}]\n"
        )
    };
    let mut y = String::from(
        "name: many-pending\nduration: 4m\ncluster:\n  nodePools:\n    \
         - {name: w, count: 20, capacity: {cpu: \"4\", memory: 16Gi}}\nobjects:\n",
    );
    for i in 0..20 {
        y += &pod(&format!("filler-{i}"), "3500m");
    }
    for i in 0..2000 {
        y += &pod(&format!("big-{i}"), "8");
    }
    y += "timeline:\n";
    for i in 0..100 {
        let at = 20 + 2 * i;
        y += &format!(
            "  - at: {at}s\n    apply: {{apiVersion: v1, kind: Pod, metadata: {{name: probe-{i}}}, \
             spec: {{containers: [{{name: c, image: x, resources: {{requests: {{cpu: \"1\"}}}}}}]}}}}\n"
        );
        y += &format!(
            "  - at: {}s\n    delete: {{kind: Pod, name: probe-{i}}}\n",
            at + 1
        );
    }
    kubesim::scenario::load_str("many-pending.yaml", &y, std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("bench scenario loads: {}", e[0]))
}

fn queue_with_many_pending(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduling_queue");
    g.sample_size(10);
    let s = many_pending_scenario();
    g.bench_function("2000_pending_100_pod_deletions", |b| {
        b.iter(|| {
            let opts = RunOptions {
                seed: None,
                until: None,
                trace_level: TraceLevel::Faults,
                sink: TraceSink::Discard,
                ..RunOptions::default()
            };
            run(&s, opts, |_| {}).expect("runs")
        });
    });
    g.finish();
}

/// One cycle of a pod that fits nowhere, with many pending: 5,000 nodes
/// each full (16 pods of 2 CPUs on 32), the pod asking 1 CPU. Every node is
/// evaluated and rejected (`0/5000 nodes are available: 5000 Insufficient
/// cpu.`), then preemption's dry run passes over every node (no pod has a
/// lower priority). This is the cycle a waiting pod repeats each time an
/// assigned pod's end requeues it, so its cost bounds how fast a saturated
/// cluster can be simulated.
fn unschedulable_cycle_on_5k_full(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler");
    g.sample_size(20);
    let mut cluster = nodes();
    let filler: Amounts = [("cpu", 2_000), ("memory", 1 << 30)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    for (i, node) in cluster.iter_mut().enumerate() {
        for k in 0..16 {
            node.add_pod(Arc::new(PodInfo {
                namespace: "default".into(),
                name: format!("filler-{i}-{k}"),
                ..PodInfo::with_requests(PodRequests::from_containers(
                    std::slice::from_ref(&filler),
                    &[],
                    &Amounts::new(),
                ))
            }));
        }
    }
    let waiting = pod(0);
    let spec = core::PodSpec::default();
    let profile = Profile::default();
    let (nominated, spread) = (BTreeMap::new(), image_spread(&cluster));
    let input = CycleInput {
        pod: &waiting,
        spec: &spec,
        nodes: &cluster,
        image_spread: &spread,
        default_selector: None,
        nominated: &nominated,
        counts: AffinityCounts::default(),
        fit_index: None,
        dra: None,
    };
    let mut rng = RngStream::derive(1, "kube-scheduler");
    g.bench_function("unschedulable_pod_5000_full_nodes", |b| {
        b.iter(|| {
            let (d, _) = schedule(&profile, &input, 0, &mut rng);
            assert!(d.selected.is_none() && d.evaluated == NODES);
            let p = kubesim::scheduler::preemption::preempt(&profile, &input, &d, &[], &mut rng);
            assert!(p.is_err());
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    schedule_10k_on_5k,
    unschedulable_cycle_on_5k_full,
    queue_with_many_pending
);
criterion_main!(benches);
