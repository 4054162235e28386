//! `kubesim calibrate` and the live-vs-simulated comparison, on simulated
//! runs (no containerd needed): a simulated kubelet traces its runtime
//! steps exactly as a live one does, so a run whose latencies are known
//! shows whether the fit and the comparison get them back.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubesim::report::compare::Comparison;

fn kubesim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kubesim"))
}

fn run(scenario: &str, dir: &Path, extra: &[&str]) {
    let out = kubesim()
        .args(["run", scenario, "--no-report", "--out"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("kubesim runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn calibrate(dir: &Path) -> String {
    let out = kubesim()
        .arg("calibrate")
        .arg(dir)
        .output()
        .expect("kubesim runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path().join(name);
    (t, d)
}

#[test]
fn calibrating_a_run_with_constant_latencies_gives_them_back_and_its_own_startup() {
    let (_t, dir) = temp("constant");
    run("tests/data/calibrate/constant.yaml", &dir, &[]);
    let text = calibrate(&dir);
    // 20 pods made a sandbox and started; the scale-down to 10 stopped 10.
    // Constant samples fit a log-normal of σ = 0: p99 = p50.
    for line in [
        "# from 20 sandbox creates\nsandboxCreateLatency: {logNormal: {p50: 300ms, p99: 300ms}}",
        "# from 20 container starts\ncontainerStartLatency: {logNormal: {p50: 50ms, p99: 50ms}}",
        "# from 10 container stops after SIGTERM\ncontainerStopLatency: {logNormal: {p50: 80ms, p99: 80ms}}",
    ] {
        assert!(text.contains(line), "{line}\n---\n{text}");
    }
    // The check simulates the run's own scenario and seed: as written it
    // is the run itself, and the calibrated constants are the scenario's,
    // so both give the "live" startup to the millisecond.
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("simulated,")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    for r in rows {
        assert!(r.contains("(+0% / +0% of live)"), "{r}");
    }
    assert!(text.contains("within 20% of live"), "{text}");
    // The block written loads as an include.
    let written = std::fs::read_to_string(dir.join("calibrated-kubelet.yaml")).unwrap();
    assert!(written.starts_with("# cluster.kubelet fitted by `kubesim calibrate"));
}

#[test]
fn calibration_recovers_a_log_normal_sandbox_latency() {
    let (_t, dir) = temp("lognormal");
    run("tests/data/calibrate/lognormal.yaml", &dir, &[]);
    let text = calibrate(&dir);
    let line = text
        .lines()
        .find(|l| l.starts_with("sandboxCreateLatency:"))
        .expect("a sandbox fit");
    let value = |key: &str| -> f64 {
        let rest = &line[line.find(key).unwrap() + key.len()..];
        let v = rest.split([',', '}']).next().unwrap().trim();
        kubesim::sim::parse_duration(v).unwrap().nanos() as f64 / 1e6
    };
    let (p50, p99) = (value("p50:"), value("p99:"));
    // Drawn from p50 200 ms, p99 800 ms: σ = ln 4 / 2.326 = 0.596. From 100
    // samples the fitted μ has a standard error of σ/√100 = 0.06, so p50
    // is within e^(±0.12) (±13%) at two standard errors; σ's own standard
    // error is σ/√200 = 0.042, which moves p99 by e^(2.326·0.084) = ±22%
    // more.
    assert!((p50 / 200.0 - 1.0).abs() < 0.13, "p50 {p50} ms: {line}");
    assert!((p99 / 800.0 - 1.0).abs() < 0.35, "p99 {p99} ms: {line}");
}

#[test]
fn the_comparison_sets_two_runs_side_by_side() {
    let (_t, a) = temp("a");
    let b = a.with_file_name("b");
    run("tests/data/calibrate/constant.yaml", &a, &[]);
    // The same scenario and seed with another sandbox latency: include a
    // block that changes only that.
    let scenario = a.with_file_name("slow.yaml");
    let text = std::fs::read_to_string("tests/data/calibrate/constant.yaml").unwrap();
    let kubelet = "  kubelet:\n    sandboxCreateLatency: {constant: 300ms}\n    containerStartLatency: {constant: 50ms}\n    containerStopLatency: {constant: 80ms}\n";
    assert!(text.contains(kubelet));
    std::fs::write(
        &scenario,
        text.replace(kubelet, "  kubelet: {include: slow-kubelet.yaml}\n"),
    )
    .unwrap();
    std::fs::write(
        a.with_file_name("slow-kubelet.yaml"),
        "sandboxCreateLatency: {constant: 900ms}\ncontainerStartLatency: {constant: 50ms}\ncontainerStopLatency: {constant: 80ms}\n",
    )
    .unwrap();
    run(scenario.to_str().unwrap(), &b, &[]);
    let c = Comparison::of_runs(&a, &b, 1).expect("compares");
    let sandbox = c.steps.iter().find(|s| s.name.contains("sandbox")).unwrap();
    // Every sandbox took 300 ms in one run and 900 ms in the other: the
    // CDFs do not overlap, KS 1.
    assert_eq!(
        (sandbox.live.p50, sandbox.simulated.p50),
        (Some(0.3), Some(0.9))
    );
    assert_eq!(sandbox.ks, Some(1.0));
    let start = c.steps.iter().find(|s| s.name.contains("start")).unwrap();
    assert_eq!(start.ks, Some(0.0), "the starts are alike");
    // 20 pods, matched by ReplicaSet and creation order; the slower
    // sandboxes cost each one 600 ms of startup.
    assert_eq!(c.pods.len(), 20);
    let row = &c.pods[0];
    let (l, s) = (row.live.as_ref().unwrap(), row.simulated.as_ref().unwrap());
    let started = |p: &kubesim::report::compare::PodSide| p.at[3].unwrap() - p.at[0].unwrap();
    assert!((started(s) - started(l) - 0.6).abs() < 0.05, "{row:?}");
    // The deployment controller scaled up to 20 and down to 10 in both.
    assert!(c.scaling.same, "{:?}", c.scaling);
    assert_eq!(c.scaling.live.len(), 2, "{:?}", c.scaling.live);
    c.write(&a).expect("writes");
    assert!(a.join("charts/compare.svg").exists());
    assert!(a.join("compare.json").exists());
}

#[test]
fn calibrate_names_what_it_cannot_read() {
    let (_t, dir) = temp("none");
    std::fs::create_dir_all(&dir).unwrap();
    let out = kubesim().arg("calibrate").arg(&dir).output().unwrap();
    // Exit 2, naming the missing file.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("summary.json"), "{err}");
}
