//! The network and workload kinds of `faults:` (`partition` with `oneWay`
//! or `peers`, `linkDegrade`, `containerCrash`, `imagePullFailure`): each
//! on its own stream, inside the window, under the cap, never twice on a
//! busy target; written out by the repro, which reruns to the same run
//! digest at another trace level; located errors for bad values.

use crate::common;

use std::path::Path;

use common::kubesim;
use kubesim::faults::network_workload::FaultDetail;
use kubesim::faults::profile::FaultKind;
use kubesim::faults::{draw, FaultProfile, Schedule};
use kubesim::scenario::load_str;

/// A 4-node cluster with a Deployment; `partition` is the partition kind's
/// options.
fn text(partition: &str) -> String {
    format!(
        r#"name: drawn
duration: 8m
traceLevel: faults
cluster:
  images: {{app:1: 20Mi}}
  nodePools:
    - {{name: worker, count: 4, capacity: {{cpu: "4", memory: 8Gi}}, preloadedImages: [app:1]}}
    - {{name: spare, count: 1, capacity: {{cpu: "4", memory: 8Gi}}}}
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: default}}
    spec:
      replicas: 6
      selector: {{matchLabels: {{app: web}}}}
      template:
        metadata: {{labels: {{app: web}}}}
        spec:
          containers: [{{name: app, image: app:1}}]
faults:
  window: {{from: 1m, until: 5m}}
  maxConcurrent: 3
  nodeCrash: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, pools: [worker]}}
  partition: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, targets: [worker, kube-scheduler]{partition}}}
  linkDegrade: {{meanTimeBetween: 40s, duration: {{min: 10s, max: 40s}}, targets: [worker, kube-apiserver], extraLatency: 150ms, loss: 0.02}}
  containerCrash: {{meanTimeBetween: 30s, duration: {{min: 10s, max: 30s}}, workloads: [{{name: web}}], exitCode: 137}}
  imagePullFailure: {{meanTimeBetween: 1m, duration: {{min: 20s, max: 1m}}, images: [app:1], pools: [spare]}}
timeline:
  - at: 5m
    note: every drawn fault has healed
"#
    )
}

fn profile(partition: &str) -> FaultProfile {
    load_str("drawn.yaml", &text(partition), Path::new("."))
        .unwrap_or_else(|e| panic!("{e:?}"))
        .faults
        .expect("faults:")
}

fn of_kind(s: &Schedule, k: FaultKind) -> Vec<String> {
    s.faults
        .iter()
        .filter(|f| f.kind == k)
        .map(|f| format!("{f} at {} {:?}", f.start.nanos(), f.detail))
        .collect()
}

#[test]
fn each_new_kind_draws_on_its_own_stream() {
    let mut all = profile(", oneWay: true");
    all.max_concurrent = 1000;
    let kinds = [
        FaultKind::LinkDegrade,
        FaultKind::ContainerCrash,
        FaultKind::ImagePullFailure,
        FaultKind::NodeCrash,
    ];
    let mut drawn = [0; 4];
    for seed in 1..=20 {
        let a = draw(&all, seed);
        for (i, k) in kinds.iter().enumerate() {
            // The kind alone draws exactly what it draws among the others.
            let mut alone = all.clone();
            alone.kinds.retain(|p| p.kind == *k);
            assert_eq!(
                of_kind(&a, *k),
                of_kind(&draw(&alone, seed), *k),
                "seed {seed} {k:?}"
            );
            drawn[i] += of_kind(&a, *k).len();
        }
    }
    // 4 min at means of 40 s, 30 s, 1 min and 1 min: ~6, ~8, ~4 and ~4 a
    // seed before busy targets refuse some; far more than 20 in 20 seeds.
    assert!(drawn.iter().all(|&n| n > 20), "{drawn:?}");
}

#[test]
fn drawn_faults_respect_window_cap_and_busy_targets() {
    let p = profile(", peers: [kube-apiserver]");
    let mut crashes_seen = std::collections::BTreeSet::new();
    for seed in 1..=100 {
        let s = draw(&p, seed);
        for f in &s.faults {
            assert!(
                f.start >= p.from && f.end <= p.until && f.start < f.end,
                "{f}"
            );
            let active: Vec<_> = s
                .faults
                .iter()
                .filter(|g| g.start <= f.start && f.start < g.end)
                .collect();
            assert!(active.len() <= 3, "seed {seed}: {} at {f}", active.len());
            // A target is never faulted twice by one kind at once.
            let same = active
                .iter()
                .filter(|g| g.kind == f.kind && g.target == f.target)
                .count();
            assert_eq!(same, 1, "seed {seed}: {f} overlaps itself");
            match (&f.kind, &f.detail) {
                (FaultKind::Partition, FaultDetail::Partition { one_way, peers }) => {
                    assert!(!one_way);
                    assert_eq!(peers, &["kube-apiserver".to_string()]);
                }
                (FaultKind::ContainerCrash, FaultDetail::ContainerCrash(c)) => {
                    // A pod index among the Deployment's 6 replicas.
                    assert!(c.pod < 6 && c.exit_code == 137, "{c:?}");
                    crashes_seen.insert(c.pod);
                }
                (FaultKind::LinkDegrade, FaultDetail::LinkDegrade { extra_latency, .. }) => {
                    assert_eq!(extra_latency.nanos(), 150_000_000);
                }
                (FaultKind::ImagePullFailure, FaultDetail::ImagePull { nodes }) => {
                    assert_eq!(f.target, "app:1");
                    assert_eq!(nodes, &["spare-1".to_string()]);
                }
                (FaultKind::NodeCrash, FaultDetail::None) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Uniform picks over 6 pods reach every index in 100 seeds.
    assert_eq!(crashes_seen.len(), 6, "{crashes_seen:?}");
}

#[test]
fn a_partition_target_among_its_peers_is_cut_from_the_others() {
    // Targets worker-1..4 and kube-scheduler, peers kube-scheduler and
    // kube-apiserver: a worker is cut from both; kube-scheduler only from
    // kube-apiserver (before, its peers held itself too, and its repro
    // failed to load: "`kube-scheduler` is on both sides of the cut").
    let p = profile(", oneWay: true, peers: [kube-scheduler, kube-apiserver]");
    let both = vec!["kube-scheduler".to_string(), "kube-apiserver".to_string()];
    let mut scheduler_cuts = 0;
    for seed in 1..=100 {
        for f in draw(&p, seed).faults {
            let FaultDetail::Partition { one_way, peers } = &f.detail else {
                continue;
            };
            assert!(one_way);
            if f.target == "kube-scheduler" {
                assert_eq!(peers, &["kube-apiserver".to_string()], "seed {seed}");
                scheduler_cuts += 1;
            } else {
                assert_eq!(peers, &both, "seed {seed}: {f}");
            }
        }
    }
    // One target in five, ~4 partitions a seed: far more than 10 in 100.
    assert!(scheduler_cuts > 10, "{scheduler_cuts}");
}

#[test]
fn the_repro_of_the_new_kinds_reruns_to_the_same_digest_at_another_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut kinds_written = std::collections::BTreeSet::new();
    for (i, partition) in [", oneWay: true", ", peers: [kube-apiserver]"]
        .iter()
        .enumerate()
    {
        let src = dir.path().join(format!("s{i}.yaml"));
        std::fs::write(&src, text(partition)).unwrap();
        for seed in 1..=4u64 {
            let repro = dir.path().join(format!("r{i}-{seed}.yaml"));
            let out = dir.path().join(format!("o{i}-{seed}"));
            let (code, stdout, stderr) = kubesim(&[
                "run",
                src.to_str().unwrap(),
                "--seed",
                &seed.to_string(),
                "--no-report",
                "--out",
                out.to_str().unwrap(),
                "--write-repro",
                repro.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{stderr}");
            let written = std::fs::read_to_string(&repro).unwrap();
            for key in [
                "partitionOneWay:",
                "partitionBetween:",
                "degradeLinks:",
                "restoreLinks:",
                "crashContainer:",
                "failImagePulls:",
                "restoreImagePulls:",
            ] {
                if written.contains(key) {
                    kinds_written.insert(key);
                }
            }
            // Rerun at the full trace level: the run digest covers the
            // delivered events, not the trace, so it is the same run.
            let again = dir.path().join(format!("a{i}-{seed}"));
            let (code2, stdout2, stderr2) = kubesim(&[
                "run",
                repro.to_str().unwrap(),
                "--trace-level",
                "full",
                "--no-report",
                "--out",
                again.to_str().unwrap(),
            ]);
            assert_eq!(code2, 0, "{stderr2}\n{written}");
            assert_eq!(
                common::digest_of(&stdout),
                common::digest_of(&stdout2),
                "seed {seed}:\n{written}"
            );
        }
    }
    // Across the eight runs every new action was written out at least once.
    assert_eq!(kinds_written.len(), 7, "{kinds_written:?}");
}

#[test]
fn bad_values_are_located_errors_and_exit_2() {
    let base = "name: t\nduration: 5m\ncluster:\n  nodePools:\n    - {name: worker, count: 2, capacity: {cpu: \"2\", memory: 4Gi}}\nobjects:\n  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 2, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: app, image: app:1}]}}}}\n";
    let tl = |entry: &str| format!("{base}timeline:\n  - {entry}\n");
    let fa = |kind: &str| format!("{base}faults:\n  window: {{from: 1m, until: 4m}}\n  {kind}\n");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "one-way to a misspelt component",
            tl("{at: 1m, partitionOneWay: {from: [kube-apiservr]}}"),
            vec!["bad.yaml:9:", "timeline[0].partitionOneWay.from[0]", "did you mean `kube-apiserver`"],
        ),
        (
            "one group",
            tl("{at: 1m, partitionBetween: [[worker-1]]}"),
            vec!["bad.yaml:9:", "timeline[0].partitionBetween", "at least two groups"],
        ),
        (
            "a component in two groups",
            tl("{at: 1m, partitionBetween: [[worker-1], [worker-1, etcd-0]]}"),
            vec!["timeline[0].partitionBetween", "`worker-1` is in two groups"],
        ),
        (
            "loss of 1.5",
            tl("{at: 1m, degradeLinks: {targets: [worker-1], loss: 1.5}}"),
            vec!["bad.yaml:9:", "timeline[0].degradeLinks.loss", "below 1, not 1.5"],
        ),
        (
            "a degradation of nothing",
            tl("{at: 1m, degradeLinks: {targets: [worker-1]}}"),
            vec!["timeline[0].degradeLinks", "degrades nothing"],
        ),
        (
            "crash of an unknown workload",
            tl("{at: 1m, crashContainer: {name: wbe}}"),
            vec!["bad.yaml:9:", "timeline[0].crashContainer.name", "no Deployment default/wbe"],
        ),
        (
            "exit code 300",
            tl("{at: 1m, crashContainer: {name: web, exitCode: 300}}"),
            vec!["timeline[0].crashContainer.exitCode", "0 to 255, not 300"],
        ),
        (
            "unknown container",
            tl("{at: 1m, crashContainer: {name: web, container: ap}}"),
            vec!["timeline[0].crashContainer.container", "did you mean `app`"],
        ),
        (
            "image pulls on an unknown node",
            tl("{at: 1m, failImagePulls: {image: app:1, nodes: [worker-9]}}"),
            vec!["bad.yaml:9:", "timeline[0].failImagePulls.nodes[0]", "no node named `worker-9`"],
        ),
        (
            "drawn loss of 2",
            fa("linkDegrade: {meanTimeBetween: 1m, duration: {min: 5s, max: 30s}, targets: [worker], loss: 2}"),
            vec!["bad.yaml:10:", "faults.linkDegrade.loss", "below 1, not 2"],
        ),
        (
            "drawn degradation of a misspelt target",
            fa("linkDegrade: {meanTimeBetween: 1m, duration: {min: 5s, max: 30s}, targets: [wrker], extraLatency: 1s}"),
            vec!["faults.linkDegrade.targets[0]", "did you mean `worker`"],
        ),
        (
            "drawn crash of an unknown workload",
            fa("containerCrash: {meanTimeBetween: 1m, duration: {min: 5s, max: 30s}, workloads: [{name: wbe}]}"),
            vec!["bad.yaml:10:", "faults.containerCrash.workloads[0].name", "did you mean `web`"],
        ),
        (
            "drawn image failures on an unknown pool",
            fa("imagePullFailure: {meanTimeBetween: 1m, duration: {min: 5s, max: 30s}, pools: [workers]}"),
            vec!["faults.imagePullFailure.pools[0]", "unknown node pool `workers`"],
        ),
        (
            "partition peers misspelt",
            fa("partition: {meanTimeBetween: 1m, duration: {min: 5s, max: 30s}, targets: [worker], peers: [kube-apisrver]}"),
            vec!["faults.partition.peers[0]", "did you mean `kube-apiserver`"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    for (case, text, want) in cases {
        std::fs::write(&bad, &text).unwrap();
        let (code, _, stderr) = kubesim(&["validate", bad.to_str().unwrap()]);
        assert_eq!(code, 2, "{case}: {stderr}");
        for w in &want {
            assert!(stderr.contains(w), "{case}: want `{w}` in:\n{stderr}");
        }
    }
}
