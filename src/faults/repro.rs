//! The scenario with its drawn faults written out: the `faults:` section
//! commented out (a reader still sees the profile that drew them), `seed:`
//! set to the run's seed, and each fault's inject and heal steps appended to
//! the timeline as explicit entries. The rest of the text is kept as
//! written, except that relative `include:` and `file:` paths are rewritten
//! for the directory the file is written to.
//!
//! `kubesim run` on a scenario with `faults:` runs this text (rendered for
//! the scenario's own directory), so every `line` in its trace points into
//! the repro, and running the repro with the same seed is the same run:
//! the same trace, the same digest.

use std::path::{Component, Path, PathBuf};

use super::schedule::Schedule;
use crate::api::manifest::{parse_yaml, LoadError};
use crate::api::source::read_source;
use crate::api::yaml::{Node, Pos, Value};
use crate::scenario::{load_str, Action, EtcdTarget, Scenario, Step};
use crate::sim::parse_duration;

/// A faulted scenario turned into its repro.
pub struct Materialized {
    /// The drawn faults.
    pub schedule: Schedule,
    pub seed: u64,
    /// The repro loaded as the run's scenario (no `faults:` left).
    pub scenario: Scenario,
    text: String,
    doc: Node,
    dir: PathBuf,
}

impl Materialized {
    /// The repro text exactly as the run ran it: include paths as the
    /// scenario wrote them, for a file beside a copy of the scenario.
    pub fn repro_as_run(&self) -> Result<String, String> {
        render(&self.text, &self.doc, &self.schedule, self.seed, None)
    }

    /// The repro text for a file written into `dir`.
    pub fn repro_for(&self, dir: &Path) -> Result<String, String> {
        render(
            &self.text,
            &self.doc,
            &self.schedule,
            self.seed,
            Some((&self.dir, dir)),
        )
    }
}

/// Reads the scenario at `path` (already loaded as `loaded`); if it has
/// `faults:`, draws them for `seed` (the scenario's own when `None`) and
/// loads the repro text in its place. `Ok(None)` when it has no faults.
pub fn materialize(
    path: &Path,
    loaded: &Scenario,
    seed: Option<u64>,
) -> Result<Option<Materialized>, Vec<LoadError>> {
    let Some(profile) = &loaded.faults else {
        return Ok(None);
    };
    let file = path.display().to_string();
    let fail = |msg: String| vec![LoadError::new(&file, None, "faults", msg)];
    let text = read_source(path).map_err(|e| fail(format!("cannot read the scenario: {e}")))?;
    let doc = parse_yaml(&file, &text)?
        .into_iter()
        .next()
        .ok_or_else(|| fail("empty".into()))?;
    let seed = seed.unwrap_or(loaded.seed);
    let schedule = super::schedule::draw(profile, seed);
    let rendered = render(&text, &doc, &schedule, seed, None).map_err(fail)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let scenario = load_str(&file, &rendered, &dir)?;
    Ok(Some(Materialized {
        schedule,
        seed,
        scenario,
        text,
        doc,
        dir,
    }))
}

/// The repro text of `text` (parsed as `doc`). `rewrite` is (the
/// original's directory, the repro's directory) when they differ.
pub fn render(
    text: &str,
    doc: &Node,
    schedule: &Schedule,
    seed: u64,
    rewrite: Option<(&Path, &Path)>,
) -> Result<String, String> {
    let Value::Map(entries) = &doc.value else {
        return Err("a scenario is a mapping".into());
    };
    if entries.iter().any(|(k, _)| k.pos.col != 1) {
        return Err(
            "writing a repro needs the scenario's top level in block style (`key: value` lines)"
                .into(),
        );
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some((from, to)) = rewrite {
        rewrite_paths(&mut lines, doc, from, to);
    }
    let key_line = |name: &str| entries.iter().position(|(k, _)| k.as_str() == Some(name));
    // The last line (0-based, exclusive) of top-level entry `i`'s block.
    let block_end = |i: usize| {
        entries
            .get(i + 1)
            .map(|(k, _)| k.pos.line as usize - 1)
            .unwrap_or(lines.len())
    };
    // Edits are made bottom-up, so earlier line numbers stay valid.
    let mut edits: Vec<(usize, Edit)> = Vec::new();
    let entries_text = timeline_entries(&schedule.steps());
    match key_line("timeline") {
        Some(i) => {
            let (key, value) = &entries[i];
            let start = key.pos.line as usize - 1;
            let end = block_end(i);
            match &value.value {
                Value::Seq(items) if !items.is_empty() && value.pos.line != key.pos.line => {
                    let first = &items[0];
                    let dash = dash_column(&lines[first.pos.line as usize - 1], first.pos.col);
                    let last = (start..end)
                        .rev()
                        .find(|&l| !is_blank_or_comment(&lines[l]))
                        .unwrap_or(start);
                    let indent = " ".repeat(dash);
                    let new: Vec<String> = entries_text
                        .iter()
                        .map(|e| format!("{indent}- {e}"))
                        .collect();
                    edits.push((last + 1, Edit::Insert(new)));
                }
                Value::Seq(items) if items.is_empty() => {
                    edits.push((start, Edit::Replace(timeline_block(&entries_text))));
                }
                _ if value.is_null() => {
                    edits.push((start, Edit::Replace(timeline_block(&entries_text))))
                }
                _ => {
                    return Err(
                        "writing a repro needs the timeline as a block list (`- at: …` lines)"
                            .into(),
                    )
                }
            }
        }
        None => edits.push((lines.len(), Edit::Insert(timeline_block(&entries_text)))),
    }
    if let Some(i) = key_line("faults") {
        let start = entries[i].0.pos.line as usize - 1;
        edits.push((start, Edit::CommentOut(block_end(i) - start, seed)));
    }
    let seed_line = format!("seed: {seed}");
    match key_line("seed") {
        Some(i) => edits.push((
            entries[i].0.pos.line as usize - 1,
            Edit::Replace(vec![seed_line]),
        )),
        None => edits.push((
            entries[0].0.pos.line as usize - 1,
            Edit::Insert(vec![seed_line]),
        )),
    }
    edits.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, edit) in edits {
        match edit {
            Edit::Insert(new) => {
                lines.splice(at..at, new);
            }
            Edit::Replace(new) => {
                lines.splice(at..at + 1, new);
            }
            Edit::CommentOut(n, seed) => {
                for l in &mut lines[at..at + n] {
                    *l = format!("# {l}");
                }
                let header = format!("# The faults below were drawn from seed {seed} into the timeline's last entries.");
                lines.insert(at, header);
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

enum Edit {
    Insert(Vec<String>),
    /// Replace one line with these.
    Replace(Vec<String>),
    /// Comment out this many lines, under a header naming the seed.
    CommentOut(usize, u64),
}

fn timeline_block(entries: &[String]) -> Vec<String> {
    let mut out = vec!["timeline:".to_string()];
    out.extend(entries.iter().map(|e| format!("  - {e}")));
    out
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The column (0-based, in characters) of the `-` that opens the item whose
/// content starts at `content_col` (1-based).
fn dash_column(line: &str, content_col: u32) -> usize {
    let before: Vec<char> = line.chars().take(content_col as usize - 1).collect();
    before.iter().rposition(|c| *c == '-').unwrap_or(0)
}

/// One flow-mapping line per step: `{at: 1m23.456s, crashNode: "worker-3", note: "…"}`.
fn timeline_entries(steps: &[Step]) -> Vec<String> {
    steps.iter().map(entry).collect()
}

pub(super) fn entry(step: &Step) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let at = exact(crate::sim::SimDuration::from_nanos(step.at.nanos()));
    let action = match step.action.as_ref() {
        None => String::new(),
        Some(a) if super::network_workload::owns_action(a) => {
            format!("{}, ", super::network_workload::repro_entry(a))
        }
        Some(Action::CrashNode(n)) => format!("crashNode: {}", q(n)),
        Some(Action::RestartNode(n)) => format!("restartNode: {}", q(n)),
        Some(Action::CrashEtcd(EtcdTarget::Leader)) => "crashEtcd: leader".into(),
        Some(Action::CrashEtcd(EtcdTarget::Member(i))) => format!("crashEtcd: etcd-{i}"),
        Some(Action::RestartEtcd(Some(i))) => format!("restartEtcd: etcd-{i}"),
        Some(Action::RestartEtcd(None)) => "restartEtcd: crashed".into(),
        Some(Action::Partition(names)) => {
            let names: Vec<String> = names.iter().map(|n| q(n)).collect();
            format!("partition: [{}]", names.join(", "))
        }
        Some(Action::Heal) => "heal: true".into(),
        Some(Action::CrashComponent(c)) => format!("crashComponent: {}", q(c)),
        Some(Action::RestartComponent(c)) => format!("restartComponent: {}", q(c)),
        Some(Action::CrashKubelet(n)) => format!("crashKubelet: {}", q(n)),
        Some(Action::RestartKubelet(n)) => format!("restartKubelet: {}", q(n)),
        Some(Action::HangKubelet(n)) => format!("hangKubelet: {}", q(n)),
        Some(Action::ResumeKubelet(n)) => format!("resumeKubelet: {}", q(n)),
        Some(Action::SlowDisk { member, fsync }) => {
            format!(
                "slowDisk: {{member: etcd-{member}, fsync: {}}}",
                exact(*fsync)
            )
        }
        Some(Action::HealDisk(m)) => format!("healDisk: etcd-{m}"),
        other => unreachable!("a drawn fault is a fault action, not {other:?}"),
    };
    let action = if action.is_empty() || action.ends_with(", ") {
        action
    } else {
        format!("{action}, ")
    };
    let note = step
        .note
        .as_deref()
        .map(|n| format!("note: {}", q(n)))
        .unwrap_or_default();
    let body = format!("{action}{note}");
    format!("{{at: {at}, {}}}", body.trim_end_matches(", "))
}

/// `d` as a duration that parses back to exactly `d`.
fn exact(d: crate::sim::SimDuration) -> String {
    let shown = d.to_string();
    if parse_duration(&shown) == Ok(d) {
        shown
    } else {
        format!("{}ns", d.nanos())
    }
}

/// Rewrites every relative `include:` and `file:` path scalar so that it
/// names the same file from `to` as it did from `from`.
fn rewrite_paths(lines: &mut [String], doc: &Node, from: &Path, to: &Path) {
    let mut found: Vec<(Pos, String)> = Vec::new();
    collect_paths(doc, &mut found);
    // Right to left on a line, so earlier columns stay valid.
    found.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
    for (pos, rel) in found {
        if Path::new(&rel).is_absolute() {
            continue;
        }
        let target = relative_path(&absolute(&from.join(&rel)), &absolute(to));
        let new =
            serde_json::to_string(&target.display().to_string()).expect("a string serialises");
        let Some(line) = lines.get_mut(pos.line as usize - 1) else {
            continue;
        };
        let chars: Vec<char> = line.chars().collect();
        let start = pos.col as usize - 1;
        let Some(end) = scalar_end(&chars, start, &rel) else {
            continue;
        };
        let mut out: String = chars[..start].iter().collect();
        out.push_str(&new);
        out.extend(chars[end..].iter());
        *line = out;
    }
}

fn collect_paths(node: &Node, out: &mut Vec<(Pos, String)>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let is_path = matches!(k.as_str(), Some("include") | Some("file"));
                match (&v.value, is_path) {
                    (Value::Scalar { text, .. }, true) => out.push((v.pos, text.clone())),
                    _ => collect_paths(v, out),
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| collect_paths(i, out)),
        Value::Scalar { .. } => {}
    }
}

/// Where the scalar token starting at `start` ends: after its closing
/// quote, or after `text` for a plain scalar. `None` if the line does not
/// hold it there (a multi-line scalar), which is then left alone.
fn scalar_end(chars: &[char], start: usize, text: &str) -> Option<usize> {
    match chars.get(start)? {
        q @ ('"' | '\'') => {
            let mut i = start + 1;
            while i < chars.len() {
                if chars[i] == '\\' && *q == '"' {
                    i += 2;
                    continue;
                }
                if chars[i] == *q {
                    if *q == '\'' && chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(i + 1);
                }
                i += 1;
            }
            None
        }
        _ => {
            let n = text.chars().count();
            let token: String = chars.get(start..start + n)?.iter().collect();
            (token == text).then_some(start + n)
        }
    }
}

/// `p` made absolute against the working directory, `.` and `..` folded.
fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The path from directory `base` to `target`, both absolute.
fn relative_path(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}
