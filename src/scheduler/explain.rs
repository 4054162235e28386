//! `kubesim explain`: why a profile would put a pod where it would, from a
//! snapshot of real objects (Nodes with their status, Pods with and
//! without `spec.nodeName`, and optionally PriorityClasses, Services,
//! controllers, PodDisruptionBudgets and a KubeSchedulerConfiguration).
//! Every node's filter verdict and reasons, each score plugin's raw,
//! normalised and weighted score, the total, and the node selected; when
//! nothing fits, what preemption would do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::config::{decode_configuration, is_configuration, SchedulerConfiguration};
use super::default_selector::OwnerCache;
use super::pod_info::PodInfo;
use super::preemption::{preempt_from, Pdb};
use super::profile::{explain, image_spread, schedule, AffinityCounts, CycleInput, NodeSnapshot};
use crate::api::manifest::{decode_object, parse_yaml, FieldReport, LoadError};
use crate::api::priority::admit_pod;
use crate::api::{Kind, Object};
use crate::sim::RngStream;

/// One plugin's score on one node: `raw → normalized × weight = weighted`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ScoreOut {
    pub raw: i64,
    pub normalized: i64,
    /// The plugin's weight in the profile (upstream's `Plugin.Weight`).
    pub weight: i64,
    pub weighted: i64,
}

impl ScoreOut {
    /// The table's cell: `0→100×3=300`.
    pub fn cell(&self) -> String {
        format!(
            "{}→{}×{}={}",
            self.raw, self.normalized, self.weight, self.weighted
        )
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct NodeOut {
    pub name: String,
    pub feasible: bool,
    pub reasons: Vec<String>,
    pub scores: BTreeMap<String, ScoreOut>,
    pub total: i64,
}

/// What preemption would do for an unschedulable pod.
#[derive(Serialize, Clone, Debug)]
pub struct PreemptionOut {
    /// The node it would nominate, or `None` with `reason`.
    pub node: Option<String>,
    pub victims: Vec<String>,
    #[serde(rename = "pdbViolations")]
    pub pdb_violations: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Explanation {
    pub pod: String,
    /// The profile (`schedulerName`) that schedules it.
    pub profile: String,
    pub nodes: Vec<NodeOut>,
    /// `None` when no node is feasible.
    pub selected: Option<String>,
    /// Other nodes with the selected node's total: a run picks among them
    /// with the scheduler's seeded stream; `selected` is the first by name.
    pub tied_with: Vec<String>,
    /// Score plugins in the profile's order, with weights.
    #[serde(skip)]
    pub plugins: Vec<(&'static str, &'static str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption: Option<PreemptionOut>,
}

/// Explains the scheduling of the pod named `pod` (or the one pod without
/// a node) in the snapshot at `file` with contents `text`.
pub fn explain_snapshot(
    file: &str,
    text: &str,
    pod: Option<&str>,
) -> Result<Explanation, Vec<LoadError>> {
    let docs = parse_yaml(file, text)?;
    let mut objects = Vec::new();
    let mut config: Option<SchedulerConfiguration> = None;
    let mut errors = Vec::new();
    let mut report = FieldReport::default();
    for doc in &docs {
        if is_configuration(doc) {
            if config.is_some() {
                errors.push(LoadError::new(
                    file,
                    Some(doc.pos),
                    "kind",
                    "a snapshot holds at most one KubeSchedulerConfiguration",
                ));
                continue;
            }
            match decode_configuration(file, doc, "") {
                Ok(c) => config = Some(c),
                Err(mut e) => errors.append(&mut e),
            }
            continue;
        }
        match decode_object(file, doc, &mut report) {
            Ok(mut o) => objects.append(&mut o),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let config = config.unwrap_or_default();
    let err = |msg: String| vec![LoadError::new(file, None, "", msg)];
    let mut nodes: Vec<NodeSnapshot> = objects
        .iter()
        .filter_map(NodeSnapshot::from_object)
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    if nodes.is_empty() {
        return Err(err("the snapshot has no Nodes".into()));
    }
    // Pods get their priority as the Priority admission plugin gives it.
    let classes: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == Kind::PriorityClass)
        .collect();
    let mut pods: Vec<Object> = Vec::new();
    for p in objects.iter().filter(|o| o.kind == Kind::Pod) {
        match admit_pod(p, classes.iter().copied()) {
            Ok(admitted) => pods.push(admitted),
            Err(msg) => return Err(err(msg)),
        }
    }
    let mut owners = OwnerCache::default();
    let mut pdbs = Vec::new();
    for o in &objects {
        if OwnerCache::wants(o.kind) {
            owners.objects.insert(o.key(), Arc::new(o.clone()));
        }
        if let Some(p) = Pdb::from_object(o) {
            pdbs.push(p);
        }
    }
    let index: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    let target = match pod {
        Some(name) => pods
            .iter()
            .find(|p| {
                p.meta.name == name || format!("{}/{}", p.meta.namespace, p.meta.name) == name
            })
            .ok_or_else(|| err(format!("no pod named `{name}` in the snapshot")))?,
        None => {
            let unplaced: Vec<&Object> = pods
                .iter()
                .filter(|p| p.as_pod().is_some_and(|b| b.node_name.is_none()))
                .collect();
            match unplaced.as_slice() {
                [one] => *one,
                [] => {
                    return Err(err(
                        "every pod in the snapshot has a node; name one with --pod".into(),
                    ))
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|p| p.meta.name.as_str()).collect();
                    return Err(err(format!(
                        "{} pods have no node ({}); choose one with --pod",
                        many.len(),
                        names.join(", ")
                    )));
                }
            }
        }
    };
    // Pods already placed (other than the one explained) take their share.
    for p in &pods {
        let body = p.as_pod().expect("a Pod");
        if std::ptr::eq(p, target) || body.is_terminal() {
            continue;
        }
        if let Some(&i) = body.node_name.as_ref().and_then(|n| index.get(n)) {
            nodes[i].add_pod(Arc::new(PodInfo::new(p)));
        }
    }
    let body = target.as_pod().expect("a Pod");
    let profile = config.profile(&body.spec.scheduler_name).ok_or_else(|| {
        err(format!(
            "pod {} asks for schedulerName `{}`, which no profile of the configuration has",
            target.meta.name, body.spec.scheduler_name
        ))
    })?;
    let info = PodInfo::new(target);
    let spread = image_spread(&nodes);
    let default_selector = owners.default_selector(&info);
    let nominated = BTreeMap::new();
    let input = CycleInput {
        pod: &info,
        spec: &body.spec.api,
        nodes: &nodes,
        image_spread: &spread,
        default_selector: default_selector.as_ref(),
        nominated: &nominated,
        counts: AffinityCounts::scan(&nodes),
        fit_index: None,
        dra: None,
    };
    let verdicts = explain(profile, &input);
    let out: Vec<NodeOut> = verdicts
        .into_iter()
        .map(|v| NodeOut {
            feasible: v.reasons.is_empty(),
            name: v.name,
            reasons: v.reasons,
            scores: v
                .scores
                .into_iter()
                .map(|(k, s)| {
                    let s = ScoreOut {
                        raw: s.raw,
                        normalized: s.normalized,
                        weight: s.weight,
                        weighted: s.weighted,
                    };
                    (k.name().to_string(), s)
                })
                .collect(),
            total: v.total,
        })
        .collect();
    let best = out.iter().filter(|n| n.feasible).map(|n| n.total).max();
    let winners: Vec<String> = out
        .iter()
        .filter(|n| n.feasible && Some(n.total) == best)
        .map(|n| n.name.clone())
        .collect();
    let preemption = if winners.is_empty() && profile.preemption.is_some() {
        // Every node evaluated, as a cycle with no feasible node does.
        let mut rng = RngStream::derive(0, "explain");
        let (d, _) = schedule(profile, &input, 0, &mut rng);
        Some(match preempt_from(profile, &input, &d, &pdbs, 0) {
            Ok(c) => PreemptionOut {
                node: Some(nodes[c.node].name.clone()),
                victims: c
                    .victims
                    .iter()
                    .map(|v| format!("{}/{}", v.namespace, v.name))
                    .collect(),
                pdb_violations: c.pdb_violations,
                reason: None,
            },
            Err(why) => PreemptionOut {
                node: None,
                victims: Vec::new(),
                pdb_violations: 0,
                reason: Some(why),
            },
        })
    } else {
        None
    };
    Ok(Explanation {
        pod: format!("{}/{}", target.meta.namespace, target.meta.name),
        profile: profile.scheduler_name.clone(),
        nodes: out,
        selected: winners.first().cloned(),
        tied_with: winners.iter().skip(1).cloned().collect(),
        plugins: profile
            .scores
            .iter()
            .map(|(p, _)| (p.name(), p.short()))
            .collect(),
        preemption,
    })
}

impl Explanation {
    /// The table a person reads first.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "pod {} (profile {})", self.pod, self.profile);
        let _ = write!(s, "{:<24} {:<8}", "NODE", "FEASIBLE");
        // Each plugin's column is as wide as its widest cell.
        let widths: Vec<usize> = self
            .plugins
            .iter()
            .map(|(p, short)| {
                self.nodes
                    .iter()
                    .filter_map(|n| n.scores.get(*p))
                    .map(|sc| sc.cell().chars().count())
                    .chain([short.len(), 12])
                    .max()
                    .unwrap_or(12)
            })
            .collect();
        for ((_, short), w) in self.plugins.iter().zip(&widths) {
            let _ = write!(s, " {short:>w$}");
        }
        let _ = writeln!(s, " {:>6}", "TOTAL");
        for n in &self.nodes {
            let _ = write!(
                s,
                "{:<24} {:<8}",
                n.name,
                if n.feasible { "yes" } else { "no" }
            );
            if n.feasible {
                for ((p, _), w) in self.plugins.iter().zip(&widths) {
                    let _ = write!(s, " {:>w$}", n.scores[*p].cell());
                }
                let _ = writeln!(s, " {:>6}", n.total);
            } else {
                let _ = writeln!(s, " {}", n.reasons.join("; "));
            }
        }
        let _ = writeln!(s, "(each score: raw→normalized×weight=weighted)");
        match &self.selected {
            Some(sel) if self.tied_with.is_empty() => {
                let _ = writeln!(s, "selected: {sel}");
            }
            Some(sel) => {
                let _ = writeln!(
                    s,
                    "selected: {sel} (tied with {}; a run breaks the tie with its seed)",
                    self.tied_with.join(", ")
                );
            }
            None => {
                let _ = writeln!(s, "selected: none, the pod is unschedulable");
            }
        }
        if let Some(p) = &self.preemption {
            match &p.node {
                Some(node) => {
                    let _ = writeln!(
                        s,
                        "preemption: would evict {} on {node} ({} PodDisruptionBudget violation(s)) and nominate it",
                        p.victims.join(", "),
                        p.pdb_violations
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "preemption: {}",
                        p.reason.as_deref().unwrap_or("not possible")
                    );
                }
            }
        }
        s
    }
}
