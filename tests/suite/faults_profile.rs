//! Faults drawn from the seed (`faults:`): each kind on its own stream,
//! every fault inside the window and healed by its end, the concurrency cap
//! held at every instant, located errors for bad profiles, a repro that
//! reruns to the same digest, and a cluster that converges after `until`.

use crate::common;

use std::path::Path;

use common::kubesim;
use kubesim::api::Kind;
use kubesim::faults::profile::FaultKind;
use kubesim::faults::{draw, repro, FaultProfile, Schedule};
use kubesim::scenario::run::{run, Finished, RunOptions};
use kubesim::scenario::{load_file, Scenario};
use kubesim::sim::TraceLevel;

const EXAMPLE: &str = "scenarios/fuzz-failover.yaml";

fn example() -> Scenario {
    load_file(Path::new(EXAMPLE)).expect("the example loads")
}

fn profile() -> FaultProfile {
    example().faults.expect("the example has faults:")
}

fn of_kind(s: &Schedule, k: FaultKind) -> Vec<String> {
    s.faults
        .iter()
        .filter(|f| f.kind == k)
        .map(|f| format!("{f} at {}", f.start.nanos()))
        .collect()
}

#[test]
fn adding_a_kind_leaves_the_other_kinds_draws_alone() {
    // With a cap no schedule reaches, acceptance refuses nothing for being
    // busy, so what a kind draws is all that decides its faults.
    let mut with = profile();
    with.max_concurrent = 1000;
    let mut without = with.clone();
    without.kinds.retain(|k| k.kind == FaultKind::NodeCrash);
    let mut partitions = 0;
    for seed in 1..=20 {
        let (a, b) = (draw(&with, seed), draw(&without, seed));
        assert_eq!(
            of_kind(&a, FaultKind::NodeCrash),
            of_kind(&b, FaultKind::NodeCrash),
            "seed {seed}"
        );
        assert!(
            !of_kind(&b, FaultKind::NodeCrash).is_empty(),
            "seed {seed}: 6 min at a mean of 1 min draws crashes"
        );
        partitions += of_kind(&a, FaultKind::Partition).len();
    }
    // Six minutes at a mean of 2 min is ~3 partitions a seed, minus the
    // ones an active partition refuses: far more than none in 20 seeds.
    assert!(partitions > 20, "{partitions} partitions");
}

#[test]
fn every_fault_is_inside_the_window_and_healed_by_until() {
    let p = profile();
    for seed in 1..=200 {
        for f in draw(&p, seed).faults {
            assert!(
                f.start >= p.from && f.start < f.end && f.end <= p.until,
                "seed {seed}: {f}"
            );
        }
    }
}

#[test]
fn max_concurrent_holds_at_every_instant() {
    let p = profile();
    assert_eq!(p.max_concurrent, 2);
    let mut reached_cap = 0;
    let mut skipped = 0;
    for seed in 1..=200 {
        let s = draw(&p, seed);
        skipped += s.skipped;
        // The count can only rise at a start; faults are active over
        // [start, end).
        for f in &s.faults {
            let active = s
                .faults
                .iter()
                .filter(|g| g.start <= f.start && f.start < g.end)
                .count();
            assert!(active <= 2, "seed {seed}: {active} active at {f}");
            reached_cap += usize::from(active == 2);
        }
        // A partition never overlaps another: `heal` heals every one.
        let parts: Vec<_> = s
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::Partition)
            .collect();
        for w in parts.windows(2) {
            assert!(
                w[0].end <= w[1].start,
                "seed {seed}: {} overlaps {}",
                w[0],
                w[1]
            );
        }
    }
    // Three kinds at means of 1, 2 and 3 min over 6 min offer ~11 faults a
    // seed: the cap must bind often for the check above to mean anything.
    assert!(
        reached_cap > 100 && skipped > 100,
        "{reached_cap} at the cap, {skipped} skipped"
    );
}

#[test]
fn the_repro_reruns_to_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mut digests = std::collections::BTreeSet::new();
    for seed in 1..=20u64 {
        let seed_s = seed.to_string();
        let repro = dir.path().join(format!("r{seed}/repro.yaml"));
        let out = dir.path().join(format!("run{seed}"));
        let (code, stdout, stderr) = kubesim(&[
            "run",
            EXAMPLE,
            "--seed",
            &seed_s,
            "--no-report",
            "--out",
            out.to_str().unwrap(),
            "--write-repro",
            repro.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains(&format!("drawn from seed {seed}")),
            "{stdout}"
        );
        let text = std::fs::read_to_string(&repro).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("faults:")),
            "faults: is commented out"
        );
        assert!(
            text.contains("fault: "),
            "the drawn faults are timeline entries"
        );
        // The repro sets its seed: it reruns without --seed.
        let again = dir.path().join(format!("again{seed}"));
        let (code2, stdout2, stderr2) = kubesim(&[
            "run",
            repro.to_str().unwrap(),
            "--no-report",
            "--out",
            again.to_str().unwrap(),
        ]);
        assert_eq!(code2, 0, "{stderr2}");
        assert!(
            !stdout2.contains("drawn from seed"),
            "the repro has no faults: left"
        );
        assert_eq!(
            common::digest_of(&stdout),
            common::digest_of(&stdout2),
            "seed {seed}"
        );
        digests.insert(common::digest_of(&stdout));
    }
    // Each seed draws its own faults, so the runs differ.
    assert_eq!(digests.len(), 20);
}

/// The run directory alone reruns a faulted run: its `rerun` line names the
/// repro written beside the copied scenario, and that copy, moved anywhere,
/// gives the same digest (the seed is inside the repro).
#[test]
fn a_faulted_run_directory_reruns_from_its_own_repro() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stdout, stderr) = kubesim(&[
        "run",
        EXAMPLE,
        "--seed",
        "5",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let repro = out.join("scenario/fuzz-failover.repro.yaml");
    assert!(
        stdout.contains(&format!("rerun    kubesim run {}", repro.display())),
        "{stdout}"
    );
    // summary.json says what the text summary's `faults` line says.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let f = &summary["faults"];
    assert_eq!(f["seed"], 5);
    let line = format!(
        "faults   {} drawn from seed 5 ({} skipped",
        f["drawn"], f["skipped"]
    );
    assert!(
        f["drawn"].as_u64().unwrap() > 0 && stdout.contains(&line),
        "{stdout}"
    );
    // Move the whole directory: nothing in it may point back at the original.
    let moved = dir.path().join("moved");
    std::fs::rename(&out, &moved).unwrap();
    let again = dir.path().join("again");
    let (code2, stdout2, stderr2) = kubesim(&[
        "run",
        moved
            .join("scenario/fuzz-failover.repro.yaml")
            .to_str()
            .unwrap(),
        "--no-report",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code2, 0, "{stderr2}");
    assert!(
        !stdout2.contains("drawn from seed"),
        "the repro has no faults: left"
    );
    assert_eq!(common::digest_of(&stdout), common::digest_of(&stdout2));
}

#[test]
fn a_repro_written_elsewhere_still_finds_its_includes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("manifests")).unwrap();
    std::fs::copy(
        "scenarios/manifests/web-pods.yaml",
        src.join("manifests/web-pods.yaml"),
    )
    .unwrap();
    let scenario = "name: inc\nduration: 4m\ncluster:\n  nodePools:\n    - {name: worker, count: 3, capacity: {cpu: \"4\", memory: 16Gi}}\nobjects:\n  - {include: manifests/web-pods.yaml}\nfaults:\n  window: {from: 30s, until: 3m}\n  nodeCrash: {meanTimeBetween: 40s, duration: {min: 5s, max: 30s}, pools: [worker]}\n";
    std::fs::write(src.join("s.yaml"), scenario).unwrap();
    let repro = dir.path().join("elsewhere/deeper/repro.yaml");
    let s = src.join("s.yaml");
    let (code, stdout, stderr) = kubesim(&[
        "run",
        s.to_str().unwrap(),
        "--seed",
        "3",
        "--no-report",
        "--out",
        dir.path().join("o1").to_str().unwrap(),
        "--write-repro",
        repro.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&repro).unwrap();
    // From elsewhere/deeper/ the manifests are two levels up, then src/.
    assert!(
        text.contains(r#"{include: "../../src/manifests/web-pods.yaml"}"#),
        "{text}"
    );
    let (code2, stdout2, stderr2) = kubesim(&[
        "run",
        repro.to_str().unwrap(),
        "--no-report",
        "--out",
        dir.path().join("o2").to_str().unwrap(),
    ]);
    assert_eq!(code2, 0, "{stderr2}");
    assert_eq!(common::digest_of(&stdout), common::digest_of(&stdout2));
}

#[test]
fn bad_profiles_are_located_errors_and_exit_2() {
    let base = "name: t\nduration: 5m\ncluster:\n  nodePools:\n    - {name: worker, count: 3, capacity: {cpu: \"2\", memory: 4Gi}}\nfaults:\n  window: {from: 1m, until: 4m}\n";
    let node = |extra: &str| {
        format!("  nodeCrash: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, pools: [worker]{extra}}}\n")
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown field",
            format!("{base}  nodeCrash: {{meanTimeBetwen: 1m, duration: {{min: 5s, max: 30s}}, pools: [worker]}}\n"),
            vec!["bad.yaml:8:15", "faults.nodeCrash", "unknown field `meanTimeBetwen`", "meanTimeBetween"],
        ),
        (
            "min above max",
            format!("{base}  nodeCrash: {{meanTimeBetween: 1m, duration: {{min: 2m, max: 30s}}, pools: [worker]}}\n"),
            vec!["bad.yaml:8:", "faults.nodeCrash.duration", "min (2m) is above max (30s)"],
        ),
        (
            "zero rate",
            format!("{base}  nodeCrash: {{meanTimeBetween: 0s, duration: {{min: 5s, max: 30s}}, pools: [worker]}}\n"),
            vec!["bad.yaml:8:", "faults.nodeCrash.meanTimeBetween", "below the minimum of 1s"],
        ),
        (
            "unknown pool",
            format!("{base}  nodeCrash: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, pools: [workr]}}\n"),
            vec!["bad.yaml:8:", "faults.nodeCrash.pools[0]", "unknown node pool `workr`", "did you mean `worker`"],
        ),
        (
            "window past the run",
            format!("name: t\nduration: 5m\ncluster:\n  nodePools:\n    - {{name: worker, count: 3, capacity: {{cpu: \"2\", memory: 4Gi}}}}\nfaults:\n  window: {{from: 1m, until: 6m}}\n{}", node("")),
            vec!["bad.yaml:7:", "faults.window.until", "after the run (5m)"],
        ),
        (
            "cap of zero",
            format!("{base}  maxConcurrent: 0\n{}", node("")),
            vec!["bad.yaml:8:", "faults.maxConcurrent", "at least 1"],
        ),
        (
            "unknown etcd member",
            format!("{base}  etcdCrash: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, members: [etcd-7]}}\n"),
            vec!["bad.yaml:8:", "faults.etcdCrash.members[0]", "unknown etcd member `etcd-7`"],
        ),
        (
            "unknown partition target",
            format!("{base}  partition: {{meanTimeBetween: 1m, duration: {{min: 5s, max: 30s}}, targets: [kube-schedular]}}\n"),
            vec!["bad.yaml:8:", "faults.partition.targets[0]", "did you mean `kube-scheduler`"],
        ),
        (
            "no kind",
            base.to_string(),
            vec!["faults", "name at least one fault kind"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    for (case, text, want) in cases {
        std::fs::write(&bad, &text).unwrap();
        for cmd in ["validate", "run"] {
            let (code, _, stderr) = kubesim(&[cmd, bad.to_str().unwrap()]);
            assert_eq!(code, 2, "{case} ({cmd}): {stderr}");
            for w in &want {
                assert!(
                    stderr.contains(w),
                    "{case} ({cmd}): want `{w}` in:\n{stderr}"
                );
            }
        }
    }
    // --write-repro needs something to write out.
    let (code, _, stderr) = kubesim(&[
        "run",
        "scenarios/node-crash.yaml",
        "--write-repro",
        "x.yaml",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("has no `faults:` section"), "{stderr}");
}

/// (nodes Ready, the Deployment's ready replicas).
fn end_state(f: &Finished) -> (usize, i64) {
    let etcd = &f.engine.shared.etcd;
    let (mut ready_nodes, mut replicas) = (0, -1);
    for k in etcd.keys() {
        let o = etcd.get(k).unwrap().to_json();
        match k.kind {
            Kind::Node => {
                let ready = o["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                ready_nodes += usize::from(ready);
            }
            Kind::Deployment => replicas = o["status"]["readyReplicas"].as_i64().unwrap_or(0),
            _ => {}
        }
    }
    (ready_nodes, replicas)
}

fn run_quiet(s: &Scenario, seed: u64) -> Finished {
    let opts = RunOptions {
        seed: Some(seed),
        trace_level: TraceLevel::Faults,
        ..RunOptions::default()
    };
    run(s, opts, |_| {}).expect("runs")
}

#[test]
fn the_cluster_converges_after_the_window_closes() {
    let loaded = example();
    for seed in [1, 2, 3, 5, 8] {
        let m = repro::materialize(Path::new(EXAMPLE), &loaded, Some(seed))
            .expect("materializes")
            .expect("has faults");
        assert!(
            m.schedule.faults.len() >= 3,
            "seed {seed}: {:?}",
            m.schedule
        );
        let f = run_quiet(&m.scenario, seed);
        // Three minutes after the last heal (7m): all 20 nodes Ready and
        // the Deployment back at its 40 replicas.
        assert_eq!(
            end_state(&f),
            (20, 40),
            "seed {seed}: {:?}",
            m.schedule.faults
        );
    }
}

#[test]
fn a_scenario_run_as_loaded_plays_its_drawn_faults() {
    // `run` on the scenario as loaded (what a sweep does) merges the drawn
    // steps into the timeline too: two more actions per fault than the same
    // scenario without `faults:`.
    let seed = 5;
    let faulted = example();
    let drawn = draw(faulted.faults.as_ref().unwrap(), seed).faults.len();
    let mut plain = example();
    plain.faults = None;
    let (with, without) = (run_quiet(&faulted, seed), run_quiet(&plain, seed));
    assert!(drawn > 0);
    assert_eq!(
        with.summary.actions.len(),
        without.summary.actions.len() + 2 * drawn
    );
}
