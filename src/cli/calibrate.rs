//! `kubesim calibrate LIVE_DIR`: fits the kubelet's latency distributions
//! from a live run ([`kubesim::live::calibrate`]), writes them as a
//! `cluster.kubelet` block, and checks the fit: the live run's scenario is
//! simulated with the same seed and length, with the scenario's own kubelet
//! and with the fitted one, and their pod-startup p50 and p90 are set
//! against the live run's.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kubesim::live::calibrate::Calibration;
use kubesim::live::session::{preload_images, ImageImport, IMPORTS_FILE};
use kubesim::report::compare::distribution::Quantiles;
use kubesim::report::compare::interval;
use kubesim::report::compare::lifecycle::RunLives;
use kubesim::report::summary::Summary;
use kubesim::scenario::run::{run, RunOptions};
use kubesim::scenario::{load_file, Scenario};
use kubesim::sim::{SimDuration, TraceLevel, TraceSink};

/// How far from live a calibrated startup percentile may be.
const WITHIN: f64 = 0.20;

pub fn calibrate_cmd(dir: &Path, out: Option<PathBuf>, check: bool) -> ExitCode {
    match calibrate(dir, out, check) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn input(message: String) -> Failure {
    (2, message)
}

fn calibrate(dir: &Path, out: Option<PathBuf>, check: bool) -> Result<(), Failure> {
    let summary: Summary = read_json(&dir.join("summary.json")).map_err(input)?;
    let live = RunLives::read(&dir.join("trace.jsonl")).map_err(input)?;
    let imports_path = dir.join(IMPORTS_FILE);
    let imports: Vec<ImageImport> = if imports_path.exists() {
        read_json(&imports_path).map_err(input)?
    } else {
        Vec::new()
    };
    if live.steps.is_empty() && imports.is_empty() {
        return Err(input(format!(
            "{}: no RuntimeStep records and no {IMPORTS_FILE}: calibrate reads a `kubesim live` run at trace level spans or above",
            dir.display()
        )));
    }
    let calibration = Calibration::fit(&live.steps, &imports);
    let out = out.unwrap_or_else(|| dir.join("calibrated-kubelet.yaml"));
    let yaml = calibration.yaml(&dir.display().to_string());
    std::fs::write(&out, &yaml).map_err(|e| (1, format!("writing {}: {e}", out.display())))?;
    print!("{yaml}");
    println!("calibrate wrote {}", out.display());
    if check {
        check_fit(dir, &summary, &live, &calibration)?;
    }
    Ok(())
}

/// A JSON file of a run directory, its path in the error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The scenario as the live run ran it: the copy in `DIR/scenario/` whose
/// bytes are `DIR/scenario.yaml`'s (its includes beside it).
fn scenario_of(dir: &Path) -> Result<PathBuf, Failure> {
    let as_run = std::fs::read(dir.join("scenario.yaml"))
        .map_err(|e| input(format!("{}: {e}", dir.join("scenario.yaml").display())))?;
    let mut todo = vec![dir.join("scenario")];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                todo.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b == as_run) {
                return Ok(p);
            }
        }
    }
    Err(input(format!(
        "{}: no copy of the scenario under scenario/ (not a kubesim run directory?)",
        dir.display()
    )))
}

/// Simulates the live run's scenario with `calibration` (or its own
/// kubelet) into `into`, and reads it back.
fn simulate(
    path: &Path,
    summary: &Summary,
    calibration: Option<&Calibration>,
    into: &Path,
) -> Result<RunLives, Failure> {
    let mut scenario = load(path)?;
    preload_images(&mut scenario);
    if let Some(c) = calibration {
        let mut cfg = (*scenario.kubelet).clone();
        c.apply(&mut cfg);
        scenario.kubelet = std::sync::Arc::new(cfg);
    }
    std::fs::create_dir_all(into).map_err(|e| (1, format!("{}: {e}", into.display())))?;
    let trace = into.join("trace.jsonl");
    let file = File::create(&trace).map_err(|e| (1, format!("{}: {e}", trace.display())))?;
    let opts = RunOptions {
        seed: Some(summary.seed),
        until: Some(SimDuration((summary.simulated_s * 1e9).round() as u64)),
        trace_level: TraceLevel::Full,
        sink: TraceSink::Writer(Box::new(BufWriter::new(file))),
        ..RunOptions::default()
    };
    let finished =
        run(&scenario, opts, |_| {}).map_err(|e| (1, format!("{}: {e}", trace.display())))?;
    drop(finished);
    RunLives::read(&trace).map_err(|e| (1, e))
}

fn load(path: &Path) -> Result<Scenario, Failure> {
    load_file(path).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        input(lines.join("\n"))
    })
}

/// Pod startup (created → all containers running) of every pod.
fn startup(lives: &RunLives) -> Quantiles {
    Quantiles::of(interval(lives, 0, 3))
}

fn check_fit(
    dir: &Path,
    summary: &Summary,
    live: &RunLives,
    calibration: &Calibration,
) -> Result<(), Failure> {
    let path = scenario_of(dir)?;
    let before = simulate(&path, summary, None, &dir.join("calibrate/before"))?;
    let after = simulate(
        &path,
        summary,
        Some(calibration),
        &dir.join("calibrate/after"),
    )?;
    let (l, b, a) = (startup(live), startup(&before), startup(&after));
    println!(
        "calibrate pod startup (created → started), {} pods live:",
        l.n
    );
    println!("          {:<22} {:>9} {:>9}", "", "p50", "p90");
    let row = |name: &str, q: &Quantiles| {
        let ms = |v: Option<f64>| v.map_or("-".into(), |s| format!("{:.0} ms", s * 1e3));
        let off = |v: Option<f64>, l: Option<f64>| match (v, l) {
            (Some(v), Some(l)) if l > 0.0 => format!("{:+.0}%", (v / l - 1.0) * 100.0),
            _ => "-".into(),
        };
        println!(
            "          {name:<22} {:>9} {:>9}   ({} / {} of live)",
            ms(q.p50),
            ms(q.p90),
            off(q.p50, l.p50),
            off(q.p90, l.p90)
        );
    };
    row("live", &l);
    row("simulated, as written", &b);
    row("simulated, calibrated", &a);
    let within = |v: Option<f64>, l: Option<f64>| match (v, l) {
        (Some(v), Some(l)) => (v / l - 1.0).abs() <= WITHIN,
        _ => false,
    };
    if within(a.p50, l.p50) && within(a.p90, l.p90) {
        println!("calibrate the calibrated p50 and p90 are within 20% of live");
    } else {
        println!("calibrate the calibrated p50 or p90 is more than 20% from live: the rest of the startup path (scheduling, status writes, the control plane) is not what the kubelet's latencies can fit");
    }
    Ok(())
}
