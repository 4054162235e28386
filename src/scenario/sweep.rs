//! What-if sweeps: one scenario, some of its settings varied
//! (`--set cluster.nodePools.worker.count=2..10:2`), every variant run to its
//! horizon on all cores, each outcome checked against the scenario's
//! objective.
//!
//! A variant is the scenario's YAML tree with values replaced, loaded as the
//! file itself would be, so an impossible value is reported against the
//! file, line and field it replaces. Runs are independent and each is
//! deterministic, so the table does not depend on the number of threads.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::load::load_node;
use super::run::{run, RunOptions};
use super::Scenario;
use crate::api::manifest::{parse_yaml, LoadError};
use crate::api::yaml::{Node, Pos, Value};
use crate::report::summary::Summary;
use crate::sim::{SimDuration, TraceLevel, TraceSink};

/// One varied setting: a path into the scenario and the values it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<String>,
}

/// Reads `PATH=VALUES`. VALUES is `a,b,c`, or an integer range
/// `FROM..TO` (inclusive) with an optional step: `10..50:10` or
/// `10..50 step 10`.
pub fn parse_set(arg: &str) -> Result<Axis, String> {
    let (path, values) = arg.split_once('=').ok_or_else(|| {
        format!("--set `{arg}`: write PATH=VALUES, e.g. cluster.nodePools.worker.count=2..8")
    })?;
    let path = path.trim();
    if path.is_empty() {
        return Err(format!("--set `{arg}`: the path is empty"));
    }
    let values = values.trim();
    let list = match values.split_once("..") {
        Some((from, rest)) => {
            let (to, step) = match rest.split_once(':').or_else(|| rest.split_once(" step ")) {
                Some((to, step)) => (to, Some(step)),
                None => (rest, None),
            };
            let int = |s: &str, what: &str| {
                s.trim().parse::<i64>().map_err(|_| {
                    format!(
                        "--set `{arg}`: the range's {what} `{}` is not an integer",
                        s.trim()
                    )
                })
            };
            let (from, to) = (int(from, "start")?, int(to, "end")?);
            let step = match step {
                Some(s) => int(s, "step")?,
                None => 1,
            };
            if step <= 0 {
                return Err(format!("--set `{arg}`: the step must be positive"));
            }
            if to < from {
                return Err(format!("--set `{arg}`: the range ends before it starts"));
            }
            let count = (to - from) / step + 1;
            if count > 10_000 {
                return Err(format!(
                    "--set `{arg}`: {count} values are too many for one sweep"
                ));
            }
            (0..count).map(|i| (from + i * step).to_string()).collect()
        }
        None => values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>(),
    };
    if list.is_empty() {
        return Err(format!("--set `{arg}`: no values"));
    }
    Ok(Axis {
        path: path.to_string(),
        values: list,
    })
}

/// Splits `a.b[2].c` into `a`, `b`, `2`, `c`.
fn segments(path: &str) -> Vec<String> {
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn scalar(text: &str, pos: Pos) -> Node {
    Node {
        pos,
        value: Value::Scalar {
            text: text.to_string(),
            plain: true,
        },
    }
}

/// Sets `path` in `doc` to the plain scalar `value` (read as YAML reads it:
/// `3` is a number, `LeastAllocated` a string). In a list, a segment is an
/// index or the `name` of an entry; missing mapping keys are added.
pub fn set_path(doc: &mut Node, path: &str, value: &str) -> Result<(), String> {
    let segs = segments(path);
    let mut node = doc;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let here = segs[..=i].join(".");
        let pos = node.pos;
        if node.is_null() {
            // `key:` with nothing under it, or a key just added.
            node.value = Value::Map(Vec::new());
        }
        node = match &mut node.value {
            Value::Map(pairs) => {
                let at = pairs.iter().position(|(k, _)| k.as_str() == Some(seg));
                let at = match at {
                    Some(at) => at,
                    None => {
                        let empty = Node {
                            pos,
                            value: Value::Map(Vec::new()),
                        };
                        pairs.push((scalar(seg, pos), empty));
                        pairs.len() - 1
                    }
                };
                &mut pairs[at].1
            }
            Value::Seq(items) => {
                let at = match seg.parse::<usize>() {
                    Ok(n) if n < items.len() => n,
                    Ok(n) => {
                        return Err(format!(
                            "`{here}`: the list has {} entries, there is no [{n}]",
                            items.len()
                        ))
                    }
                    Err(_) => items
                        .iter()
                        .position(|it| it.get("name").and_then(Node::as_str) == Some(seg))
                        .ok_or_else(|| {
                            format!("`{here}`: no entry of the list is named `{seg}`")
                        })?,
                };
                &mut items[at]
            }
            Value::Scalar { .. } => {
                let parent = segs[..i].join(".");
                return Err(format!(
                    "`{parent}` is a single value, not a mapping or list"
                ));
            }
        };
        if last {
            let pos = node.pos;
            *node = scalar(value, pos);
        }
    }
    if segs.is_empty() {
        return Err("the path is empty".into());
    }
    Ok(())
}

/// One point of the sweep: its settings and the scenario they make.
pub struct Variant {
    /// (path, value) per axis.
    pub settings: Vec<(String, String)>,
    pub scenario: Scenario,
}

impl Variant {
    /// `count=4` or `count=4, scoringStrategy=MostAllocated`: the last
    /// path segment names a setting well enough in a table.
    pub fn label(&self) -> String {
        self.settings
            .iter()
            .map(|(p, v)| format!("{}={v}", segments(p).last().map_or(p.as_str(), |s| s)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every combination of the axes' values (the first axis varies slowest),
/// each loaded and checked.
pub fn variants(
    file: &str,
    text: &str,
    base: &Path,
    axes: &[Axis],
) -> Result<Vec<Variant>, Vec<LoadError>> {
    let docs = parse_yaml(file, text)?;
    let [doc] = docs.as_slice() else {
        return Err(vec![LoadError::new(
            file,
            None,
            "",
            "a scenario is one YAML document",
        )]);
    };
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.path.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let mut out = Vec::with_capacity(combos.len());
    let mut errors = Vec::new();
    for settings in combos {
        let mut d = doc.clone();
        for (path, value) in &settings {
            if let Err(e) = set_path(&mut d, path, value) {
                return Err(vec![LoadError::new(
                    file,
                    None,
                    path,
                    format!("--set: {e}"),
                )]);
            }
        }
        match load_node(file, &d, base) {
            Ok(scenario) => out.push(Variant { settings, scenario }),
            Err(es) => {
                let what: Vec<String> = settings.iter().map(|(p, v)| format!("{p}={v}")).collect();
                for mut e in es {
                    e.message = format!("with {}: {}", what.join(", "), e.message);
                    errors.push(e);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// What one variant's run came to.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub label: String,
    pub settings: Vec<(String, String)>,
    pub summary: Summary,
    /// The objective's clauses the run missed; empty when it met it.
    pub unmet: Vec<String>,
}

impl Outcome {
    pub fn meets(&self) -> bool {
        self.unmet.is_empty()
    }
}

/// Runs every variant, `jobs` at a time, and returns the outcomes in
/// variant order. `done` is told after each run finishes.
pub fn run_all(
    variants: &[Variant],
    seed: Option<u64>,
    until: Option<SimDuration>,
    jobs: usize,
    done: &(dyn Fn(usize, &Outcome) + Sync),
) -> Result<Vec<Outcome>, String> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Outcome, String>>>> =
        Mutex::new((0..variants.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(variants.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(v) = variants.get(i) else { break };
                let opts = RunOptions {
                    seed,
                    until,
                    trace_level: TraceLevel::Faults,
                    sink: TraceSink::Discard,
                    ..RunOptions::default()
                };
                let outcome = run(&v.scenario, opts, |_| {})
                    .map(|f| {
                        let unmet = v.scenario.objective.unmet(&f.summary);
                        Outcome {
                            label: v.label(),
                            settings: v.settings.clone(),
                            summary: f.summary,
                            unmet,
                        }
                    })
                    .map_err(|e| format!("{}: {e}", v.label()));
                if let Ok(o) = &outcome {
                    done(i, o);
                }
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("a run did not finish".into())))
        .collect()
}

/// The first outcome, in sweep order, that meets the objective: with
/// ascending values, the smallest setting that is enough.
pub fn smallest_meeting(outcomes: &[Outcome]) -> Option<&Outcome> {
    outcomes.iter().find(|o| o.meets())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_lists_or_inclusive_ranges() {
        assert_eq!(
            parse_set("a.b=10..50:10").unwrap().values,
            vec!["10", "20", "30", "40", "50"]
        );
        assert_eq!(parse_set("a=2..4").unwrap().values, vec!["2", "3", "4"]);
        assert_eq!(
            parse_set("a=1..7 step 3").unwrap().values,
            vec!["1", "4", "7"]
        );
        assert_eq!(
            parse_set("s=LeastAllocated, MostAllocated").unwrap().values,
            vec!["LeastAllocated", "MostAllocated"]
        );
        assert!(parse_set("novalue").unwrap_err().contains("PATH=VALUES"));
        assert!(parse_set("a=5..1").unwrap_err().contains("ends before"));
        assert!(parse_set("a=1..5:0").unwrap_err().contains("positive"));
        assert!(parse_set("a=x..5").unwrap_err().contains("not an integer"));
    }

    #[test]
    fn paths_reach_into_lists_by_index_or_name_and_add_keys() {
        let text = "cluster:\n  nodePools:\n    - name: web\n      count: 2\n    - name: gpu\n      count: 1\n";
        let mut doc = parse_yaml("f", text).unwrap().remove(0);
        set_path(&mut doc, "cluster.nodePools.gpu.count", "4").unwrap();
        set_path(&mut doc, "cluster.nodePools[0].count", "9").unwrap();
        set_path(&mut doc, "cluster.apiserver.maxRequestsInflight", "10").unwrap();
        let j = doc.to_json();
        assert_eq!(j["cluster"]["nodePools"][1]["count"], 4);
        assert_eq!(j["cluster"]["nodePools"][0]["count"], 9);
        assert_eq!(j["cluster"]["apiserver"]["maxRequestsInflight"], 10);
        assert!(set_path(&mut doc, "cluster.nodePools.cpu.count", "1")
            .unwrap_err()
            .contains("no entry of the list is named `cpu`"));
        assert!(set_path(&mut doc, "cluster.nodePools.web.count.x", "1")
            .unwrap_err()
            .contains("is a single value"));
        assert!(set_path(&mut doc, "cluster.nodePools[7]", "1")
            .unwrap_err()
            .contains("no [7]"));
    }
}
