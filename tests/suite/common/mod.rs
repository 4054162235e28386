//! Helpers shared by the integration tests: load a scenario from text, run
//! it with an in-memory trace, and read the trace back as JSON records.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use kubesim::scenario::run::{run, Finished, RunOptions};
use kubesim::scenario::{load_str, Scenario};
use kubesim::sim::{TraceLevel, TraceSink};
use serde_json::Value;

/// Loads scenario YAML, panicking with the loader's errors if it is invalid.
pub fn scenario(yaml: &str) -> Scenario {
    match load_str("test.yaml", yaml, Path::new(".")) {
        Ok(s) => s,
        Err(errs) => panic!(
            "scenario does not load:\n{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// A finished run and its trace records.
pub struct Ran {
    pub finished: Finished,
    pub records: Vec<Value>,
}

impl Ran {
    pub fn digest(&self) -> &str {
        &self.finished.summary.digest
    }

    /// Records of `event` (and of `component`, when given), in trace order.
    pub fn events<'a>(
        &'a self,
        component: Option<&'a str>,
        event: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.records
            .iter()
            .filter(move |r| r["event"] == event && component.is_none_or(|c| r["component"] == c))
    }

    /// Committed writes (the apiserver's `Write` records) to keys starting with `prefix`.
    pub fn writes<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events(Some("kube-apiserver"), "Write")
            .filter(move |r| r["key"].as_str().unwrap_or("").starts_with(prefix))
    }
}

/// Seconds of virtual time of a record.
pub fn secs(r: &Value) -> f64 {
    r["t"].as_u64().expect("t") as f64 / 1e9
}

/// Runs `s` with `seed` (or its own), tracing everything in memory.
pub fn run_full(s: &Scenario, seed: Option<u64>) -> Ran {
    run_at(s, seed, TraceLevel::Full)
}

/// Runs `s` with `seed` (or its own), tracing at `level` in memory.
pub fn run_at(s: &Scenario, seed: Option<u64>, level: TraceLevel) -> Ran {
    let finished = run(
        s,
        RunOptions {
            seed,
            until: None,
            trace_level: level,
            sink: TraceSink::Memory(Vec::new()),
            observer: None,
            ..RunOptions::default()
        },
        |_| {},
    )
    .expect("in-memory trace cannot fail");
    let records = records_of(&finished.engine.trace);
    Ran { finished, records }
}

/// The JSON records of an in-memory trace.
pub fn records_of(trace: &kubesim::sim::Trace) -> Vec<Value> {
    let bytes = trace.memory().expect("memory sink").to_vec();
    String::from_utf8(bytes)
        .expect("trace is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each trace line is JSON"))
        .collect()
}

/// Revisions the apiserver acknowledged to a writer (a `Request` span's
/// `rv`) that no `Write` record (the watch cache receiving the change)
/// ever showed. An answer in the run's last 2 s may be ahead of its watch
/// event, still on the wire.
pub fn unseen_acks(records: &[Value]) -> Vec<u64> {
    let end = records
        .iter()
        .filter_map(|r| r["t"].as_u64())
        .max()
        .unwrap_or(0);
    let settled = end.saturating_sub(2_000_000_000);
    let written: std::collections::BTreeSet<u64> = records
        .iter()
        .filter(|r| r["event"] == "Write")
        .filter_map(|r| r["rv"].as_u64())
        .collect();
    records
        .iter()
        .filter(|r| r["event"] == "Request" && r["t"].as_u64() < Some(settled))
        .filter_map(|r| r["rv"].as_u64())
        .filter(|rv| !written.contains(rv))
        .collect()
}

/// Runs the `kubesim` binary: (exit code, stdout, stderr).
pub fn kubesim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run digest a `kubesim run` printed (its `digest:` line).
pub fn digest_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_string()
}
