//! Shrinking a failing scenario: ddmin over its fault entries (a fault's
//! inject and heal as one unit), then its other timeline entries, then its
//! objects; then its numbers (workload replicas and node pool counts
//! halved toward 1, the horizon halved toward its floor). A step is kept
//! only if the run still fails the same way.
//!
//! Each candidate is the original text with items left out and numbers
//! rewritten ([`super::doc`]), loaded with `scenario::load_str` (one that
//! does not load, say an object whose namespace went, is rejected without
//! a run) and run at trace level `faults` with the checkers on.

use std::collections::BTreeMap;
use std::path::Path;

use super::ddmin;
use super::doc::{Doc, Edits};
use crate::api::manifest::{parse_yaml, LoadError};
use crate::scenario::run::{run, Finished, RunOptions};
use crate::scenario::{liveness_deadline, load_str, Action, Scenario, Step};
use crate::sim::{parse_duration, SimDuration, SimTime, TraceLevel, TraceSink};

/// How short the horizon may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Horizon {
    /// Not before the last timeline entry: a safety failure is seen when
    /// it happens.
    AfterLastEntry,
    /// Not before the liveness deadline (the last fault's heal plus the
    /// scenario's liveness bound): a liveness checker looks only then.
    AfterLivenessDeadline,
}

/// The measures of a scenario the report compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    pub timeline: usize,
    pub objects: usize,
    /// Replicas of the workloads, summed.
    pub replicas: u64,
    /// Nodes of the pools, summed.
    pub nodes: u64,
    pub duration: SimDuration,
}

/// What shrinking produced.
#[derive(Debug)]
pub struct Shrunk {
    /// The smallest failing scenario's text.
    pub text: String,
    pub before: Size,
    pub after: Size,
    /// Runs made (candidates that did not load are not runs).
    pub runs: u32,
}

#[derive(Debug)]
pub enum ShrinkError {
    /// The scenario does not load.
    Load(Vec<LoadError>),
    /// Its run does not fail (as asked); the checkers that did report.
    DoesNotFail(Vec<&'static str>),
}

/// A repro shrunk for one checker.
#[derive(Debug)]
pub struct ForChecker {
    pub checker: String,
    pub horizon: Horizon,
    pub shrunk: Shrunk,
}

/// Shrinks the scenario file `path` while `checker` (by default the first
/// that reports on its run) still reports a violation. The horizon keeps
/// the liveness deadline when that checker reported there.
pub fn shrink_file(path: &Path, checker: Option<&str>) -> Result<ForChecker, ShrinkError> {
    let file = path.display().to_string();
    let text = crate::api::source::read_source(path)
        .map_err(|e| ShrinkError::Load(vec![LoadError::new(&file, e.pos, "", e.to_string())]))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let loaded = load_str(&file, &text, &base).map_err(ShrinkError::Load)?;
    if loaded.faults.is_some() {
        let at = parse_yaml(&file, &text)
            .ok()
            .and_then(|d| d.first().and_then(|n| n.get("faults")).map(|f| f.pos));
        let why = "shrink takes a repro, whose faults are timeline entries: write one with \
                   `kubesim run FILE --seed N --write-repro repro.yaml`";
        return Err(ShrinkError::Load(vec![LoadError::new(
            &file, at, "faults", why,
        )]));
    }
    let first = run_checked(&loaded, TraceLevel::Faults).map_err(|e| {
        ShrinkError::Load(vec![LoadError::new(
            &file,
            None,
            "",
            format!("the run failed: {e}"),
        )])
    })?;
    let reported: Vec<&'static str> = first.violations.iter().map(|v| v.checker).collect();
    let chosen = match checker {
        Some(c) => reported.iter().find(|r| **r == c).copied(),
        None => reported.first().copied(),
    };
    let Some(chosen) = chosen else {
        let mut names = reported;
        names.dedup();
        return Err(ShrinkError::DoesNotFail(names));
    };
    let at_deadline = first
        .violations
        .iter()
        .filter(|v| v.checker == chosen)
        .all(|v| Some(v.at) == first.liveness_checked_at);
    let horizon = if at_deadline {
        Horizon::AfterLivenessDeadline
    } else {
        Horizon::AfterLastEntry
    };
    drop(first);
    let mut fails = |f: &Finished| f.violations.iter().any(|v| v.checker == chosen);
    let mut shrunk = shrink_scenario(&file, &text, &base, horizon, TraceLevel::Faults, &mut fails)?;
    // The run that chose the checker counts too.
    shrunk.runs += 1;
    Ok(ForChecker {
        checker: chosen.to_string(),
        horizon,
        shrunk,
    })
}

/// Tests candidates: render, load, run, ask; each text once.
struct Tester<'a> {
    file: &'a str,
    base: &'a Path,
    doc: &'a Doc,
    fails: &'a mut dyn FnMut(&Finished) -> bool,
    level: TraceLevel,
    memo: BTreeMap<String, bool>,
    runs: u32,
}

impl Tester<'_> {
    fn fails(&mut self, e: &Edits) -> bool {
        let text = self.doc.render(e);
        if let Some(&r) = self.memo.get(&text) {
            return r;
        }
        let r = match load_str(self.file, &text, self.base) {
            Err(_) => false,
            Ok(s) => {
                self.runs += 1;
                run_checked(&s, self.level).is_ok_and(|f| (self.fails)(&f))
            }
        };
        self.memo.insert(text, r);
        r
    }
}

/// A run as the fuzzer makes it: checks on, the trace at `level` (the
/// fuzzer's is `faults`, the cheapest), kept in memory above that for a
/// predicate that reads it.
pub fn run_checked(s: &Scenario, level: TraceLevel) -> std::io::Result<Finished> {
    let sink = if level > TraceLevel::Faults {
        TraceSink::Memory(Vec::new())
    } else {
        TraceSink::Discard
    };
    let opts = RunOptions {
        trace_level: level,
        sink,
        checks: true,
        ..RunOptions::default()
    };
    run(s, opts, |_| {})
}

/// Shrinks the scenario `text` (named `file`, its includes relative to
/// `base`) while `fails` holds of its run (traced at `level`).
pub fn shrink_scenario(
    file: &str,
    text: &str,
    base: &Path,
    horizon: Horizon,
    level: TraceLevel,
    fails: &mut dyn FnMut(&Finished) -> bool,
) -> Result<Shrunk, ShrinkError> {
    let loaded = load_str(file, text, base).map_err(ShrinkError::Load)?;
    let node = parse_yaml(file, text).map_err(ShrinkError::Load)?;
    let doc = Doc::new(text, &node[0])
        .map_err(|m| ShrinkError::Load(vec![LoadError::new(file, None, "", m)]))?;
    let steps = steps_of_items(&doc, &loaded);
    let mut t = Tester {
        file,
        base,
        doc: &doc,
        fails,
        level,
        memo: BTreeMap::new(),
        runs: 0,
    };
    let mut best = doc.unchanged();
    if !t.fails(&best) {
        return Err(ShrinkError::DoesNotFail(Vec::new()));
    }
    let before = size(&doc, &best, &steps);
    let (faults, others) = timeline_units(&steps);
    // Each pass to its fixpoint; the whole sequence again while it helps
    // (a shorter timeline can let fewer objects fail, and so on).
    for _round in 0..3 {
        let start = best.clone();
        reduce_units(&mut t, &mut best, &faults, Which::Timeline);
        reduce_units(&mut t, &mut best, &others, Which::Timeline);
        let objects: Vec<Vec<usize>> = (0..doc.objects.items.len()).map(|i| vec![i]).collect();
        reduce_units(&mut t, &mut best, &objects, Which::Objects);
        halve_replicas(&mut t, &mut best);
        halve_counts(&mut t, &mut best);
        shorten_horizon(&mut t, &mut best, &steps, loaded.liveness_bound, horizon);
        if best == start {
            break;
        }
    }
    Ok(Shrunk {
        text: doc.render(&best),
        after: size(&doc, &best, &steps),
        before,
        runs: t.runs,
    })
}

/// The loaded step of each timeline item (the one whose `at` line lies in
/// the item's span).
fn steps_of_items(doc: &Doc, s: &Scenario) -> Vec<Option<Step>> {
    doc.timeline
        .items
        .iter()
        .map(|span| {
            s.timeline
                .iter()
                .find(|st| (span.start..span.end).contains(&(st.line as usize).wrapping_sub(1)))
                .cloned()
        })
        .collect()
}

/// Timeline items grouped into units: each fault with the step that heals
/// it (by the drawn notes, `fault: K T for D` → `fault healed: K T`, else
/// by action: a crashed node's restart, a crashed member's restart, a
/// partition's next heal), then every other item alone.
fn timeline_units(steps: &[Option<Step>]) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut paired = vec![false; steps.len()];
    let mut faults = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let Some(s) = s else { continue };
        if paired[i] || !s.action.as_ref().is_some_and(is_inject) {
            continue;
        }
        paired[i] = true;
        let heal = (0..steps.len()).find(|&j| {
            !paired[j]
                && steps[j]
                    .as_ref()
                    .is_some_and(|h| h.at >= s.at && heals(s, h))
        });
        let mut unit = vec![i];
        if let Some(j) = heal {
            paired[j] = true;
            unit.push(j);
        }
        unit.sort_unstable();
        faults.push(unit);
    }
    let mut others = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if paired[i] {
            continue;
        }
        match s.as_ref().and_then(|s| s.action.as_ref()) {
            // A heal with nothing to heal is still a fault step.
            Some(a) if a.is_fault() => faults.push(vec![i]),
            _ => others.push(vec![i]),
        }
    }
    faults.sort();
    (faults, others)
}

/// A fault that a later step undoes (a container crash has no heal).
fn is_inject(a: &Action) -> bool {
    matches!(
        a,
        Action::CrashNode(_)
            | Action::CrashEtcd(_)
            | Action::Partition(_)
            | Action::PartitionOneWay { .. }
            | Action::PartitionBetween(_)
            | Action::CrashComponent(_)
            | Action::CrashKubelet(_)
            | Action::HangKubelet(_)
            | Action::SlowDisk { .. }
            | Action::DegradeLinks(_)
            | Action::FailImagePulls(_)
    )
}

/// Whether `heal` undoes the fault `inject` injects.
fn heals(inject: &Step, heal: &Step) -> bool {
    if let (Some(i), Some(h)) = (&inject.note, &heal.note) {
        if let Some(what) = i.strip_prefix("fault: ") {
            let what = what.rsplit_once(" for ").map_or(what, |(w, _)| w);
            if h.strip_prefix("fault healed: ") == Some(what) {
                return true;
            }
        }
    }
    use crate::scenario::EtcdTarget;
    match (inject.action.as_ref(), heal.action.as_ref()) {
        (Some(Action::CrashNode(a)), Some(Action::RestartNode(b))) => a == b,
        (Some(Action::CrashEtcd(EtcdTarget::Member(a))), Some(Action::RestartEtcd(b))) => {
            b.is_none_or(|b| b == *a)
        }
        (Some(Action::CrashEtcd(EtcdTarget::Leader)), Some(Action::RestartEtcd(_))) => true,
        (
            Some(
                Action::Partition(_) | Action::PartitionOneWay { .. } | Action::PartitionBetween(_),
            ),
            Some(Action::Heal),
        ) => true,
        (Some(Action::CrashComponent(a)), Some(Action::RestartComponent(b)))
        | (Some(Action::CrashKubelet(a)), Some(Action::RestartKubelet(b)))
        | (Some(Action::HangKubelet(a)), Some(Action::ResumeKubelet(b))) => a == b,
        (Some(Action::SlowDisk { member, .. }), Some(Action::HealDisk(m))) => member == m,
        (Some(Action::DegradeLinks(d)), Some(Action::RestoreLinks(t))) => {
            d.targets.iter().all(|x| t.contains(x))
        }
        (Some(Action::FailImagePulls(a)), Some(Action::RestoreImagePulls(b))) => a == b,
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Which {
    Timeline,
    Objects,
}

/// ddmin over the `units` still kept in `best` (the others stay as they are).
fn reduce_units(t: &mut Tester<'_>, best: &mut Edits, units: &[Vec<usize>], which: Which) {
    let live: Vec<Vec<usize>> = {
        let k = keep_of(best, which);
        units
            .iter()
            .filter(|u| u.iter().all(|&i| k[i]))
            .cloned()
            .collect()
    };
    if live.is_empty() {
        return;
    }
    let base = best.clone();
    let with = |sub: &[Vec<usize>]| -> Edits {
        let mut e = base.clone();
        let k = keep_of(&mut e, which);
        for u in &live {
            let on = sub.contains(u);
            u.iter().for_each(|&i| k[i] = on);
        }
        e
    };
    let m = ddmin(&live, |sub| t.fails(&with(sub)));
    *best = with(&m.items);
}

fn keep_of(e: &mut Edits, which: Which) -> &mut Vec<bool> {
    match which {
        Which::Timeline => &mut e.timeline,
        Which::Objects => &mut e.objects,
    }
}

fn halve_replicas(t: &mut Tester<'_>, best: &mut Edits) {
    for j in 0..best.replicas.len() {
        let object = t.doc.replicas[j].0;
        if !best.objects[object] {
            continue;
        }
        halve(t, best, 1, |e| &mut e.replicas[j]);
    }
}

/// Each pool's count halved, never below the highest `<pool>-<n>` a kept
/// timeline entry names.
fn halve_counts(t: &mut Tester<'_>, best: &mut Edits) {
    for j in 0..best.counts.len() {
        let pool = t.doc.counts[j].0.clone();
        let floor = named_ordinal(t.doc, best, &pool).max(1);
        halve(t, best, floor, |e| &mut e.counts[j]);
    }
}

/// `field`, a whole number, halved (not below `floor`) while it still fails.
fn halve(
    t: &mut Tester<'_>,
    best: &mut Edits,
    floor: u64,
    field: impl Fn(&mut Edits) -> &mut String,
) {
    loop {
        let Ok(v) = field(best).parse::<u64>() else {
            return;
        };
        let next = (v / 2).max(floor);
        if next >= v {
            return;
        }
        let mut e = best.clone();
        *field(&mut e) = next.to_string();
        if !t.fails(&e) {
            return;
        }
        *best = e;
    }
}

/// The highest `n` of a `<pool>-<n>` in the kept timeline entries' text.
fn named_ordinal(doc: &Doc, e: &Edits, pool: &str) -> u64 {
    let prefix = format!("{pool}-");
    let mut max = 0;
    for (span, _) in doc
        .timeline
        .items
        .iter()
        .zip(&e.timeline)
        .filter(|(_, k)| **k)
    {
        for line in &doc.lines[span.start..span.end] {
            let mut rest = line.as_str();
            while let Some(at) = rest.find(&prefix) {
                let before = rest[..at].chars().next_back();
                let tail = &rest[at + prefix.len()..];
                let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
                let after = tail[digits.len()..].chars().next();
                let bounded = !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char);
                if bounded {
                    max = max.max(digits.parse().unwrap_or(0));
                }
                rest = tail;
            }
        }
    }
    max
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// The horizon halved toward its floor, in whole seconds.
fn shorten_horizon(
    t: &mut Tester<'_>,
    best: &mut Edits,
    steps: &[Option<Step>],
    bound: SimDuration,
    horizon: Horizon,
) {
    let kept: Vec<Step> = steps
        .iter()
        .zip(&best.timeline)
        .filter(|(_, k)| **k)
        .filter_map(|(s, _)| s.clone())
        .collect();
    let last = kept.iter().map(|s| s.at).max().unwrap_or(SimTime::ZERO);
    let floor = match horizon {
        Horizon::AfterLastEntry => last,
        Horizon::AfterLivenessDeadline => liveness_deadline(&kept, bound).max(last),
    };
    const SEC: u64 = 1_000_000_000;
    loop {
        let Some(cur) = best
            .duration
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
        else {
            return;
        };
        let excess = cur.nanos().saturating_sub(floor.nanos());
        let next = floor.nanos() + excess / 2;
        let next = next.div_ceil(SEC) * SEC;
        if excess < 2 * SEC || next >= cur.nanos() {
            return;
        }
        let mut e = best.clone();
        e.duration = Some(SimDuration::from_nanos(next).to_string());
        if !t.fails(&e) {
            return;
        }
        *best = e;
    }
}

fn size(doc: &Doc, e: &Edits, _steps: &[Option<Step>]) -> Size {
    let num = |s: &str| s.parse::<u64>().unwrap_or(0);
    Size {
        timeline: e.timeline.iter().filter(|k| **k).count(),
        objects: e.objects.iter().filter(|k| **k).count(),
        replicas: doc
            .replicas
            .iter()
            .zip(&e.replicas)
            .filter(|((o, _), _)| e.objects[*o])
            .map(|(_, r)| num(r))
            .sum(),
        nodes: e.counts.iter().map(|c| num(c)).sum(),
        duration: e
            .duration
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: u64, note: &str, action: Action) -> Option<Step> {
        Some(Step {
            at: SimTime(at),
            note: (!note.is_empty()).then(|| note.to_string()),
            action: Some(action),
            line: 0,
        })
    }

    #[test]
    fn a_fault_and_its_heal_are_one_unit() {
        let steps = vec![
            None,
            step(
                1,
                "fault: nodeCrash worker-2 for 10s",
                Action::CrashNode("worker-2".into()),
            ),
            step(
                2,
                "fault: partition worker-1 for 5s",
                Action::Partition(vec!["worker-1".into()]),
            ),
            step(3, "fault healed: partition worker-1", Action::Heal),
            step(4, "", Action::CrashNode("worker-3".into())),
            step(
                5,
                "fault healed: nodeCrash worker-2",
                Action::RestartNode("worker-2".into()),
            ),
            step(6, "", Action::RestartNode("worker-3".into())),
            step(7, "", Action::Heal),
        ];
        let (faults, others) = timeline_units(&steps);
        // Notes pair 1 with 5 and 2 with 3; actions pair 4 with 6; the
        // heal at 7 has nothing left to heal and stands alone; item 0 (no
        // step) is not a fault.
        assert_eq!(faults, vec![vec![1, 5], vec![2, 3], vec![4, 6], vec![7]]);
        assert_eq!(others, vec![vec![0]]);
    }

    #[test]
    fn the_newer_fault_kinds_pair_with_their_heals() {
        let one_way = Action::PartitionOneWay {
            from: vec!["kube-scheduler".into()],
            to: vec!["kube-apiserver".into()],
        };
        let steps = vec![
            step(1, "fault: partition kube-scheduler for 40s", one_way),
            step(2, "", Action::CrashComponent("kube-scheduler".into())),
            step(3, "", Action::HangKubelet("worker-1".into())),
            step(4, "", Action::ResumeKubelet("worker-1".into())),
            step(5, "fault healed: partition kube-scheduler", Action::Heal),
            step(6, "", Action::RestartComponent("kube-scheduler".into())),
            step(
                7,
                "",
                Action::SlowDisk {
                    member: 1,
                    fsync: SimDuration::from_millis(800),
                },
            ),
            step(8, "", Action::HealDisk(1)),
        ];
        let (faults, others) = timeline_units(&steps);
        // The one-way cut pairs with its heal by note (1 with 5), the
        // others by action: the scheduler's crash with its restart (2
        // with 6), the hang with its resume (3 with 4), the disk with its
        // heal (7 with 8). Each was a unit of its own before, so ddmin
        // could drop a heal and keep its fault: a fault that never heals.
        assert_eq!(faults, vec![vec![0, 4], vec![1, 5], vec![2, 3], vec![6, 7]]);
        assert!(others.is_empty());
    }
}
