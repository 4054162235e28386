//! A failing seed's directory: the seed replayed from its repro at trace
//! level `full`, with the report, the violations and the one command that
//! reproduces it; and the proof that the replay is the fuzzed run.
//!
//! The fuzzer ran the seed at level `faults` from the scenario with its
//! `faults:` section; the replay runs the written `repro.yaml` (the drawn
//! faults as explicit timeline entries) at level `full`. The run digest
//! folds every delivered event and not the trace, so the two must agree.
//! When they do not, both runs are repeated with the engine's event log
//! and the first event at which they part is named: a determinism bug
//! (some choice depends on the trace level, or on the repro's text),
//! reported as a violation of its own.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};

use super::observe::{RecordRef, Violation};
use super::swarm::SeedOutcome;
use crate::scenario::run::{run, Finished, RunOptions};
use crate::scenario::{load_file, Scenario};
use crate::sim::{Divergence, LoggedEvent, SimTime, TraceLevel, TraceSink};

/// The checker name a replay that diverged is reported under.
pub const DETERMINISM: &str = "determinism";

/// What the replay of a failing seed showed.
pub struct Replayed {
    pub dir: PathBuf,
    /// The command that reproduces the seed.
    pub command: String,
    /// The replay's violations (the fuzzed run's, when it is the same run).
    pub violations: Vec<Violation>,
    /// Set when the replay is not the fuzzed run.
    pub divergence: Option<String>,
}

/// Writes `dir` for `outcome`, a failing seed of the scenario at `path`
/// (loaded as `loaded`).
pub fn write_failing_seed(
    path: &Path,
    loaded: &Scenario,
    outcome: &SeedOutcome,
    dir: &Path,
) -> Result<Replayed, String> {
    let seed = outcome.seed;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let repro = dir.join("repro.yaml");
    let located = |errors: Vec<crate::api::manifest::LoadError>| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        lines.join("\n")
    };
    let (scenario, command) =
        match super::repro::materialize(path, loaded, Some(seed)).map_err(located)? {
            Some(m) => {
                let text = m.repro_for(dir)?;
                write(&repro, &text)?;
                write(&dir.join("scenario.yaml"), &text)?;
                let s = load_file(&repro).map_err(located)?;
                (s, format!("kubesim run {} --check", repro.display()))
            }
            None => {
                // No faults to write out: the scenario itself, at this seed.
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                write(&dir.join("scenario.yaml"), &text)?;
                let s = load_file(path).map_err(located)?;
                (
                    s,
                    format!("kubesim run {} --seed {seed} --check", path.display()),
                )
            }
        };
    let replay = replay_full(&scenario, seed, &dir.join("trace.jsonl"))?;
    let summary = serde_json::to_string_pretty(&replay.summary).expect("summary serialises");
    write(&dir.join("summary.json"), &(summary + "\n"))?;
    let divergence = (replay.summary.digest != outcome.digest)
        .then(|| describe_divergence(loaded, &scenario, seed))
        .transpose()?;
    let mut violations = replay.violations;
    if let Some(d) = &divergence {
        violations.push(Violation {
            checker: DETERMINISM,
            at: SimTime::ZERO,
            objects: Vec::new(),
            message: d.clone(),
            records: Vec::new(),
        });
    }
    crate::report::output::write_report(dir).map_err(|e| e.to_string())?;
    let shrink = format!("kubesim shrink {}", repro.display());
    let text = explain(
        outcome,
        &violations,
        &dir.join("trace.jsonl"),
        &command,
        &shrink,
    );
    write(&dir.join("violations.txt"), &text)?;
    write(&dir.join("command.txt"), &format!("{command}\n"))?;
    Ok(Replayed {
        dir: dir.to_path_buf(),
        command,
        violations,
        divergence,
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Runs `scenario` at `seed`, checked, with a full trace into `trace`.
fn replay_full(scenario: &Scenario, seed: u64, trace: &Path) -> Result<Finished, String> {
    let file = File::create(trace).map_err(|e| format!("creating {}: {e}", trace.display()))?;
    let opts = RunOptions {
        seed: Some(seed),
        trace_level: TraceLevel::Full,
        sink: TraceSink::Writer(Box::new(BufWriter::with_capacity(1 << 20, file))),
        checks: true,
        ..RunOptions::default()
    };
    run(scenario, opts, |_| {}).map_err(|e| format!("writing {}: {e}", trace.display()))
}

/// Runs the fuzzed form and the replayed form with event logs and says
/// where they part.
pub fn describe_divergence(
    fuzzed: &Scenario,
    replayed: &Scenario,
    seed: u64,
) -> Result<String, String> {
    let logged = |s: &Scenario, level| {
        let opts = RunOptions {
            seed: Some(seed),
            trace_level: level,
            checks: true,
            event_log: true,
            ..RunOptions::default()
        };
        run(s, opts, |_| {}).map_err(|e| e.to_string())
    };
    let a = logged(fuzzed, TraceLevel::Faults)?;
    let b = logged(replayed, TraceLevel::Full)?;
    let (la, lb) = (
        a.engine.event_log.as_ref().expect("event log on"),
        b.engine.event_log.as_ref().expect("event log on"),
    );
    Ok(match la.first_divergence(lb) {
        Some(d) => divergence_text(&d, &|e| a.engine.name_of(e.to).to_string(), &|e| {
            b.engine.name_of(e.to).to_string()
        }),
        // Same events, different digests: the totals differ.
        None => format!(
            "the replay delivered the same {} events but its digest differs ({} vs {})",
            la.events.len(),
            a.summary.digest,
            b.summary.digest
        ),
    })
}

fn divergence_text(
    d: &Divergence,
    name_a: &dyn Fn(&LoggedEvent) -> String,
    name_b: &dyn Fn(&LoggedEvent) -> String,
) -> String {
    let show = |e: Option<LoggedEvent>, name: &dyn Fn(&LoggedEvent) -> String| match e {
        Some(e) => format!(
            "{} to {} (incarnation {}) at {}, tag {:016x}",
            e.kind,
            name(&e),
            e.epoch,
            e.at,
            e.tag
        ),
        None => "nothing (the run had ended)".into(),
    };
    format!(
        "the replay at trace level full is not the fuzzed run: they part at event #{}: the fuzzed run delivered {}; the replay delivered {}",
        d.index,
        show(d.left, name_a),
        show(d.right, name_b)
    )
}

/// `violations.txt`: each violation with the trace lines that show it,
/// and the commands.
fn explain(
    outcome: &SeedOutcome,
    violations: &[Violation],
    trace: &Path,
    command: &str,
    shrink: &str,
) -> String {
    let mut s = format!(
        "seed {} ({} faults drawn, digest {})\n\n",
        outcome.seed, outcome.faults, outcome.digest
    );
    let lines = matching_lines(trace, violations);
    for (v, found) in violations.iter().zip(lines) {
        s += &format!("{v}\n");
        for line in found {
            s += &format!("    {line}\n");
        }
        s += "\n";
    }
    s += &format!("reproduce: {command}\nshrink:    {shrink}\n");
    s
}

/// At most this many trace lines are quoted per record a violation names.
const LINES_PER_RECORD: usize = 3;

/// For each violation, the trace lines its records point at (one pass
/// over the trace, a cheap substring test before any parsing).
fn matching_lines(trace: &Path, violations: &[Violation]) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = vec![Vec::new(); violations.len()];
    let Ok(file) = File::open(trace) else {
        return found;
    };
    let needles: Vec<Vec<(String, &RecordRef)>> = violations
        .iter()
        .map(|v| v.records.iter().map(|r| (needle(r), r)).collect())
        .collect();
    let mut counts: Vec<Vec<usize>> = needles.iter().map(|n| vec![0; n.len()]).collect();
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        for (vi, refs) in needles.iter().enumerate() {
            for (ri, (event, r)) in refs.iter().enumerate() {
                if counts[vi][ri] < LINES_PER_RECORD && matches(&line, event, r) {
                    counts[vi][ri] += 1;
                    found[vi].push(line.clone());
                }
            }
        }
    }
    found
}

fn needle(r: &RecordRef) -> String {
    format!("\"event\":\"{}\"", r.event)
}

fn matches(line: &str, event: &str, r: &RecordRef) -> bool {
    if !line.contains(event) {
        return false;
    }
    if let Some(k) = &r.key {
        if !line.contains(&format!("\"key\":\"{k}\"")) {
            return false;
        }
    }
    if let Some(rv) = r.rv {
        if !line.contains(&format!("\"rv\":{rv},")) && !line.contains(&format!("\"rv\":{rv}}}")) {
            return false;
        }
    }
    // Records without a key or rv are told apart by their time.
    r.key.is_some() || r.rv.is_some() || line.starts_with(&format!("{{\"t\":{},", r.at.0))
}
