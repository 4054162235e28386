//! The invariant checkers over the real code: the fuzzing examples over
//! 30 and 10 seeds, and the failover and rollout examples, with every checker on,
//! find nothing.

use kubesim::scenario;
use kubesim::scenario::run::RunOptions;
use kubesim::sim::TraceLevel;

fn checked(path: &str, seed: Option<u64>) -> (Vec<String>, bool) {
    let s = scenario::load_file(std::path::Path::new(path)).expect("loads");
    let opts = RunOptions {
        seed,
        trace_level: TraceLevel::Faults,
        checks: true,
        ..RunOptions::default()
    };
    let done = scenario::run::run(&s, opts, |_| {}).expect("runs");
    let found = done.violations.iter().map(|v| v.to_string()).collect();
    (found, done.liveness_checked_at.is_some())
}

#[test]
fn fuzz_failover_seeds_1_to_30_break_no_invariant() {
    let mut broken = Vec::new();
    for seed in 1..=30 {
        let (found, looked) = checked("scenarios/fuzz-failover.yaml", Some(seed));
        // checks.liveness 3m: every fault heals by 7m, so the liveness
        // checkers look by 10m in every seed.
        assert!(
            looked,
            "seed {seed}: the liveness deadline fell after the horizon"
        );
        broken.extend(found.into_iter().map(|v| format!("seed {seed}: {v}")));
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn fuzz_everything_seeds_1_to_10_break_no_invariant() {
    // Every drawn fault kind over a rolling update, a drain, a StatefulSet
    // and a Job; seed 452 of it once overflowed the stack in the
    // disruption controller's same-instant recheck.
    let mut broken = Vec::new();
    for seed in (1..=10).chain([452]) {
        let (found, looked) = checked("scenarios/fuzz-everything.yaml", Some(seed));
        // checks.liveness 4m: every fault heals by 7m, so the liveness
        // checkers look by 11m, the horizon, in every seed.
        assert!(
            looked,
            "seed {seed}: the liveness deadline fell after the horizon"
        );
        broken.extend(found.into_iter().map(|v| format!("seed {seed}: {v}")));
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn failover_and_rollout_examples_break_no_invariant() {
    for path in [
        "scenarios/deployment-failover.yaml",
        "scenarios/rolling-update.yaml",
        "scenarios/etcd-leader-loss.yaml",
    ] {
        let (found, _) = checked(path, None);
        assert!(found.is_empty(), "{path}:\n{}", found.join("\n"));
    }
}

#[test]
fn a_node_left_down_past_the_liveness_bound_is_a_liveness_violation() {
    // worker-2 crashes at 30s and never comes back; the checkers look 1m
    // later (90s). By then its Lease (40 s) has expired and the node
    // lifecycle controller has set it NotReady; its pod is NotReady too,
    // and not replaced before the 300 s taint eviction.
    let yaml = r#"
name: left-down
seed: 1
duration: 3m
traceLevel: faults
cluster:
  nodePools:
    - name: worker
      count: 2
      capacity: {cpu: "4", memory: 16Gi}
objects:
  - apiVersion: v1
    kind: Pod
    metadata: {name: cache, labels: {app: cache}}
    spec:
      nodeName: worker-2
      containers:
        - name: redis
          image: redis:7.2
checks:
  liveness: 1m
timeline:
  - at: 30s
    crashNode: worker-2
"#;
    let s = kubesim::scenario::load_str("left-down.yaml", yaml, std::path::Path::new("."))
        .expect("loads");
    let opts = RunOptions {
        trace_level: TraceLevel::Faults,
        checks: true,
        ..RunOptions::default()
    };
    let done = scenario::run::run(&s, opts, |_| {}).expect("runs");
    // The deadline: the last fault (30s) + 1m = 90s.
    assert_eq!(done.liveness_checked_at.map(|t| t.0), Some(90_000_000_000));
    let nodes: Vec<_> = done
        .violations
        .iter()
        .filter(|v| v.checker == "liveness-nodes")
        .collect();
    assert_eq!(nodes.len(), 1, "{:?}", done.violations);
    assert_eq!(
        nodes[0].message,
        "node worker-2 is not Ready at the liveness deadline"
    );
    assert_eq!(nodes[0].objects, ["Node/worker-2"]);
    // Safety held throughout: every violation is a liveness one.
    assert!(done
        .violations
        .iter()
        .all(|v| v.checker.starts_with("liveness-")));
}

#[test]
fn a_zero_liveness_bound_is_refused_where_it_is_written() {
    let yaml = "name: x\nduration: 1m\ncluster:\n  nodePools: [{name: w, count: 1, capacity: {cpu: '1', memory: 1Gi}}]\nchecks:\n  liveness: 0s\n";
    let Err(errs) = kubesim::scenario::load_str("x.yaml", yaml, std::path::Path::new(".")) else {
        panic!("a zero bound loads")
    };
    let text = errs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("checks.liveness"), "{text}");
    assert!(text.contains("must be positive"), "{text}");
}
