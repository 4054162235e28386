//! `kubesim fuzz`: the swarm's results do not depend on the thread count,
//! the run digest does not depend on the trace level, a failing seed's
//! directory replays it, and a replay that is not the fuzzed run is caught
//! with the first event where the two part.

use crate::common;

use std::path::Path;

use common::kubesim;
use kubesim::faults::replay::{describe_divergence, write_failing_seed};
use kubesim::faults::swarm::{fuzz, run_seed, SeedRange};
use kubesim::faults::Violation;
use kubesim::scenario::run::{run, RunOptions};
use kubesim::scenario::{load_file, load_str, Scenario};
use kubesim::sim::{SimTime, TraceLevel};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/fuzz-failover.yaml");

fn example() -> Scenario {
    load_file(Path::new(EXAMPLE)).expect("the example loads")
}

fn digest_at(s: &Scenario, seed: u64, level: TraceLevel) -> String {
    let opts = RunOptions {
        seed: Some(seed),
        trace_level: level,
        ..RunOptions::default()
    };
    run(s, opts, |_| {}).expect("runs").summary.digest
}

#[test]
fn jobs_do_not_change_the_results_or_their_order() {
    let s = example();
    let seeds: SeedRange = "1..12".parse().unwrap();
    let one = fuzz(&s, seeds, 1, &|| false, &|_| {}).unwrap();
    let two = fuzz(&s, seeds, 2, &|| false, &|_| {}).unwrap();
    let key = |c: &kubesim::faults::swarm::Campaign| {
        c.outcomes
            .iter()
            .map(|o| (o.seed, o.digest.clone(), o.violations.len(), o.events))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&one), key(&two));
    // Seeds 1..12, both ends included, in seed order.
    let order: Vec<u64> = one.outcomes.iter().map(|o| o.seed).collect();
    assert_eq!(order, (1..=12).collect::<Vec<u64>>());
    // Twelve seeds draw different faults: no two runs are the same run.
    let mut digests: Vec<&str> = one.outcomes.iter().map(|o| o.digest.as_str()).collect();
    digests.dedup();
    assert_eq!(digests.len(), 12);
}

#[test]
fn the_run_digest_is_the_same_at_every_trace_level() {
    let s = example();
    for seed in [1, 2] {
        let faults = digest_at(&s, seed, TraceLevel::Faults);
        for level in [TraceLevel::Events, TraceLevel::Spans, TraceLevel::Full] {
            assert_eq!(
                digest_at(&s, seed, level),
                faults,
                "seed {seed} at {level:?}"
            );
        }
        // And checkers only observe: a checked run is the same run.
        assert_eq!(run_seed(&s, seed).unwrap().digest, faults);
    }
}

#[test]
fn a_failing_seeds_directory_replays_it_at_full() {
    let s = example();
    let mut outcome = run_seed(&s, 3).unwrap();
    // Stand in for a checker's finding: the directory is written for any
    // failing seed, and the replay must be the fuzzed run.
    outcome.violations.push(Violation {
        checker: "test",
        at: SimTime(1),
        objects: vec![],
        message: "planted by the test".into(),
        records: vec![],
    });
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed-3");
    let r = write_failing_seed(Path::new(EXAMPLE), &s, &outcome, &seed_dir).unwrap();
    assert_eq!(r.divergence, None, "the replay at full is the fuzzed run");
    for f in [
        "repro.yaml",
        "scenario.yaml",
        "trace.jsonl",
        "summary.json",
        "report.html",
        "violations.txt",
        "command.txt",
    ] {
        assert!(seed_dir.join(f).is_file(), "{f} is written");
    }
    // The repro has no `faults:` left and the seed inside it: the command
    // needs no flags, and its run is the fuzzed run.
    let repro = load_file(&seed_dir.join("repro.yaml")).unwrap();
    assert!(repro.faults.is_none());
    assert_eq!(repro.seed, 3);
    assert_eq!(digest_at(&repro, 3, TraceLevel::Faults), outcome.digest);
    assert_eq!(
        r.command,
        format!(
            "kubesim run {} --check",
            seed_dir.join("repro.yaml").display()
        )
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(seed_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["digest"], outcome.digest.as_str());
}

#[test]
fn a_replay_that_is_another_run_names_the_first_differing_event() {
    let yaml = |extra: &str| {
        format!(
            "name: d\nduration: 1m\ncluster:\n  nodePools:\n    - name: w\n      count: 2\n      capacity: {{cpu: \"2\", memory: 4Gi}}\n\
             timeline:\n  - at: 30s\n    crashNode: w-1\n{extra}"
        )
    };
    let a = load_str("a.yaml", &yaml(""), Path::new(".")).unwrap();
    let b = load_str(
        "b.yaml",
        &yaml("  - at: 40s\n    restartNode: w-1\n"),
        Path::new("."),
    )
    .unwrap();
    let text = describe_divergence(&a, &b, 1).unwrap();
    // The two runs agree until the driver's second action fires at 40 s.
    assert!(text.contains("they part at event #"), "{text}");
    assert!(text.contains("at 40s"), "{text}");
    assert!(
        text.contains("kubectl"),
        "the driver's timer is the first difference: {text}"
    );
}

#[test]
fn the_command_prints_the_table_and_exits_by_what_it_found() {
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, err) = kubesim(&[
        "fuzz",
        EXAMPLE,
        "--seeds",
        "1..4",
        "--jobs",
        "2",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("seeds    4 run, 0 failing"), "{stdout}");
    assert!(
        stdout.contains("etcd-leader"),
        "every checker is listed: {stdout}"
    );
    let (code, _, err) = kubesim(&["fuzz", EXAMPLE, "--seeds", "9..2"]);
    assert_eq!(code, 2);
    assert!(err.contains("ends before it starts"), "{err}");
}

#[test]
fn run_check_runs_the_checkers_on_the_same_run() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let args = ["run", EXAMPLE, "--seed", "5", "--no-report", "--out", dir];
    let (code, plain, err) = kubesim(&args);
    assert_eq!(code, 0, "{err}");
    let (code, checked, err) = kubesim(&[&args[..], &["--check"]].concat());
    assert_eq!(code, 0, "{checked}{err}");
    assert!(checked.contains("checks   0 violations"), "{checked}");
    // The checkers only observe: the same run digest with and without them.
    let digest = |s: &str| s.lines().last().unwrap().to_string();
    assert_eq!(digest(&plain), digest(&checked));
    assert!(
        !plain.contains("checks "),
        "unchecked runs say nothing of checks"
    );
}

#[test]
fn a_sweep_variant_with_drawn_faults_is_the_run_of_its_repro() {
    // A sweep plays drawn faults from the loaded scenario, `run` from the
    // repro text: different line numbers in the trace, the same events.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (code, _, err) = kubesim(&["sweep", EXAMPLE, "--set", "seed=4..4", "--out", dir]);
    assert_eq!(code, 0, "{err}");
    let csv = std::fs::read_to_string(out.path().join("sweep.csv")).unwrap();
    let swept = csv
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .to_string();
    let run_dir = out.path().join("run");
    let (code, stdout, err) = kubesim(&[
        "run",
        EXAMPLE,
        "--seed",
        "4",
        "--no-report",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.lines().last().unwrap(), format!("digest: {swept}"));
}
