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

/// Reads `PATH=VALUES`. VALUES is `a,b,c`, or a range `FROM..TO`
/// (inclusive, integers or decimals) with an optional step: `10..50:10`,
/// `10..50 step 10`, `0.5..2:0.5`.
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
            range(arg, from.trim(), to.trim(), step.map(str::trim))?
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

/// A decimal as an integer of `scale` decimal places: `0.25` at scale 3 is 250.
fn scaled(text: &str, scale: u32) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !ok(int) || !ok(frac) || frac.len() > scale as usize {
        return None;
    }
    let padded = format!("{int}{frac:0<width$}", width = scale as usize);
    let v: i64 = padded.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Decimal places written in `text`.
fn places(text: &str) -> u32 {
    text.split_once('.').map_or(0, |(_, f)| f.len() as u32)
}

/// `FROM..TO[:STEP]`, inclusive, integers or decimals (`0.5..2:0.25`): the
/// values are computed in fixed point at the most decimal places written,
/// so `0.1..0.3:0.1` is exactly 0.1, 0.2, 0.3.
fn range(arg: &str, from: &str, to: &str, step: Option<&str>) -> Result<Vec<String>, String> {
    let scale = places(from).max(places(to)).max(step.map_or(0, places));
    if scale > 9 {
        return Err(format!("--set `{arg}`: at most 9 decimal places"));
    }
    let num = |s: &str, what: &str| {
        scaled(s, scale)
            .ok_or_else(|| format!("--set `{arg}`: the range's {what} `{s}` is not a number"))
    };
    let (lo, hi) = (num(from, "start")?, num(to, "end")?);
    let step = match step {
        Some(s) => num(s, "step")?,
        None => 10i64.pow(scale),
    };
    if step <= 0 {
        return Err(format!("--set `{arg}`: the step must be positive"));
    }
    if hi < lo {
        return Err(format!("--set `{arg}`: the range ends before it starts"));
    }
    let count = (hi - lo) / step + 1;
    if count > 10_000 {
        return Err(format!(
            "--set `{arg}`: {count} values are too many for one sweep"
        ));
    }
    let unit = 10i64.pow(scale);
    let show = |v: i64| {
        if scale == 0 {
            return v.to_string();
        }
        let sign = if v < 0 { "-" } else { "" };
        let a = v.unsigned_abs();
        format!(
            "{sign}{}.{:0w$}",
            a / unit as u64,
            a % unit as u64,
            w = scale as usize
        )
    };
    Ok((0..count).map(|i| show(lo + i * step)).collect())
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

/// What a list entry is called: its `name` (node pools, containers) or,
/// for a manifest under `objects:`, its `metadata.name`.
fn entry_name(item: &Node) -> Option<&str> {
    item.get("name")
        .or_else(|| item.get("metadata").and_then(|m| m.get("name")))
        .and_then(Node::as_str)
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
/// index or the name of an entry (`name`, or a manifest's `metadata.name`:
/// `objects.web.spec.replicas`); missing mapping keys are added.
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
                        .position(|it| entry_name(it) == Some(seg.as_str()))
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

/// Runs every variant under every one of `seeds` (`[None]`: the
/// scenario's own), `jobs` at a time, and returns the outcomes variant by
/// variant, each variant's in seed order. `done` is told after each run.
pub fn run_all(
    variants: &[Variant],
    seeds: &[Option<u64>],
    until: Option<SimDuration>,
    jobs: usize,
    done: &(dyn Fn(usize, &Outcome) + Sync),
) -> Result<Vec<Outcome>, String> {
    let per = seeds.len().max(1);
    let total = variants.len() * per;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Outcome, String>>>> =
        Mutex::new((0..total).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(total.max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(v) = variants.get(i / per) else {
                    break;
                };
                let opts = RunOptions {
                    seed: seeds.get(i % per).copied().flatten(),
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
        assert!(parse_set("a=x..5").unwrap_err().contains("not a number"));
        assert_eq!(
            parse_set("p=0.1..0.3:0.1").unwrap().values,
            vec!["0.1", "0.2", "0.3"]
        );
        assert_eq!(
            parse_set("p=0.5..2:0.25").unwrap().values,
            vec!["0.50", "0.75", "1.00", "1.25", "1.50", "1.75", "2.00"]
        );
        assert_eq!(parse_set("p=-1..1").unwrap().values, vec!["-1", "0", "1"]);
        assert_eq!(
            parse_set("p=-0.5..0.5:0.5").unwrap().values,
            vec!["-0.5", "0.0", "0.5"]
        );
        assert!(parse_set("p=1..2:0.0000000001")
            .unwrap_err()
            .contains("9 decimal"));
        assert!(parse_set("p=1.5.2..3")
            .unwrap_err()
            .contains("not a number"));
    }

    #[test]
    fn paths_reach_into_lists_by_index_or_name_and_add_keys() {
        let text = "cluster:\n  nodePools:\n    - name: web\n      count: 2\n    - name: gpu\n      count: 1\n";
        let mut doc = parse_yaml("f", text).unwrap().remove(0);
        set_path(&mut doc, "cluster.nodePools.gpu.count", "4").unwrap();
        set_path(&mut doc, "cluster.nodePools[0].count", "9").unwrap();
        set_path(&mut doc, "cluster.apiserver.maxRequestsInflight", "10").unwrap();
        let objects =
            "objects:\n  - kind: Deployment\n    metadata: {name: web}\n    spec: {replicas: 2}\n";
        let mut objs = parse_yaml("f", objects).unwrap().remove(0);
        set_path(&mut objs, "objects.web.spec.replicas", "7").unwrap();
        assert_eq!(objs.to_json()["objects"][0]["spec"]["replicas"], 7);
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
