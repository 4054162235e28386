//! `cluster.kubectl`: the timeline driver's client rate limit. kubectl's
//! own (QPS 50, burst 300) stays the default; a planner whose tooling
//! applies faster sets it, and the creations keep that pace.

use crate::common;

use common::{run_at, scenario, secs};
use kubesim::sim::TraceLevel;

/// 400 bare Pods applied at 1 s (their images preloaded, one node with
/// room, the apiserver's mutating in-flight limit raised from 200 so no
/// create is refused with a 429), with `extra` spliced under `cluster:`.
fn burst(extra: &str) -> String {
    let mut y = format!(
        "name: rate\nduration: 30s\ncluster:\n{extra}  apiserver: {{maxMutatingRequestsInflight: 1000}}\n  images: {{busybox:1.36: 4Mi}}\n  nodePools:\n    \
         - {{name: w, count: 1, capacity: {{cpu: \"64\", memory: 256Gi, pods: \"500\"}}, preloadedImages: [busybox:1.36]}}\ntimeline:\n"
    );
    for i in 0..400 {
        y += &format!(
            "  - {{at: 1s, apply: {{apiVersion: v1, kind: Pod, metadata: {{name: p-{i}}}, spec: {{containers: [{{name: c, image: busybox:1.36}}]}}}}}}\n"
        );
    }
    y
}

/// When the last of the 400 Pod creations committed, in seconds.
fn last_create(extra: &str) -> f64 {
    let ran = run_at(&scenario(&burst(extra)), None, TraceLevel::Events);
    let creates: Vec<f64> = ran
        .writes("Pod/")
        .filter(|w| w["verb"] == "create")
        .map(secs)
        .collect();
    assert_eq!(creates.len(), 400);
    creates.into_iter().fold(0.0, f64::max)
}

#[test]
fn kubectl_defaults_hold_the_timeline_to_50_requests_a_second() {
    // Burst 300 goes at once; the other 100 wait for tokens at 50/s:
    // the last leaves at 1 s + 100/50 s = 3 s, and commits a few ms later.
    let t = last_create("");
    assert!((3.0..3.2).contains(&t), "last create at {t} s");
}

#[test]
fn a_faster_client_applies_the_burst_at_once() {
    // Burst 1000 covers all 400: every create leaves at 1 s, and the last
    // commits within the apiserver's and etcd's latency of it.
    let t = last_create("  kubectl: {qps: 1000, burst: 1000}\n");
    assert!((1.0..1.5).contains(&t), "last create at {t} s");
}
