//! `kubesim sweep`: variants of one scenario run in parallel, the table, the
//! chart, the smallest setting meeting the objective, and errors that name
//! the file and the field.

use crate::common;

use common::kubesim;

const SCENARIO: &str = "scenarios/capacity-sweep.yaml";

fn sweep(out: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "sweep",
        SCENARIO,
        "--set",
        "cluster.nodePools.worker.count=7..10",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kubesim(&args)
}

#[test]
fn a_sweep_names_the_smallest_pool_that_meets_the_objective_on_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let (code, stdout, stderr) = sweep(&one, &["--jobs", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("4 variants on 1 threads; objective: at most 0 pending pods, pod startup p99 <= 5s, CPU requested <= 80%"),
        "{stdout}"
    );
    // 7 workers leave a pod pending, 8 run at 82% of allocatable CPU.
    assert!(stdout.contains("count=7   1 "), "{stdout}");
    assert!(
        stdout.contains("no: CPU requested 82.2% of allocatable (at most 80.0%)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("smallest setting that meets the objective: count=9"),
        "{stdout}"
    );
    let (code, _, stderr) = sweep(&two, &["--jobs", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let csv = std::fs::read_to_string(one.join("sweep.csv")).unwrap();
    assert_eq!(
        csv,
        std::fs::read_to_string(two.join("sweep.csv")).unwrap(),
        "the thread count changes nothing"
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0].starts_with("cluster.nodePools.worker.count,pods,pending_pods,"));
    assert!(
        rows[3].starts_with("9,") && rows[3].contains(",true,"),
        "{}",
        rows[3]
    );
    let svg = std::fs::read_to_string(one.join("sweep.svg")).unwrap();
    assert!(svg.contains("the smallest setting that meets the objective is count=9"));
    assert_eq!(
        &std::fs::read(one.join("sweep.png")).unwrap()[..4],
        b"\x89PNG"
    );
    // Each variant is the scenario run as written with the value replaced:
    // the 9-node variant's digest is that of a 9-node run.
    let run_dir = tmp.path().join("run9");
    let (code, stdout, _) = kubesim(&[
        "run",
        "scenarios/capacity-sweep.yaml",
        "--out",
        run_dir.to_str().unwrap(),
        "--no-report",
        "--trace-level",
        "faults",
    ]);
    assert_eq!(code, 0);
    let six = stdout
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("digest: ");
    assert!(
        !csv.contains(six),
        "the scenario as written has 6 nodes, not 7..10"
    );
}

#[test]
fn sweep_errors_name_the_file_and_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let (code, _, stderr) = kubesim(&[
        "sweep",
        SCENARIO,
        "--set",
        "cluster.nodePools.gpu.count=1..2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("capacity-sweep.yaml"), "{stderr}");
    assert!(
        stderr.contains("no entry of the list is named `gpu`"),
        "{stderr}"
    );
    let (code, _, stderr) = kubesim(&[
        "sweep",
        SCENARIO,
        "--set",
        "cluster.nodePools.worker.count=two",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("capacity-sweep.yaml:")
            && stderr.contains("with cluster.nodePools.worker.count=two"),
        "{stderr}"
    );
    let (code, _, stderr) = kubesim(&["sweep", SCENARIO, "--set", "count"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("PATH=VALUES"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn an_objective_out_of_range_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    for (body, field, says) in [
        (
            "maxCpuRequested: 150%",
            "objective.maxCpuRequested",
            "outside 0%..100%",
        ),
        (
            "maxCpuRequested: most",
            "objective.maxCpuRequested",
            "not a fraction",
        ),
        (
            "podStartupP99: 5",
            "objective.podStartupP99",
            "needs a unit",
        ),
    ] {
        let f = tmp.path().join("bad.yaml");
        std::fs::write(&f, format!("name: bad\nobjective:\n  {body}\n")).unwrap();
        let (code, _, stderr) = kubesim(&["validate", f.to_str().unwrap()]);
        assert_eq!(code, 2, "{body}");
        assert!(stderr.contains("bad.yaml:3:"), "{stderr}");
        assert!(
            stderr.contains(field) && stderr.contains(says),
            "{body}: {stderr}"
        );
    }
}
