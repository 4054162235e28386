//! `kubesim explain`: why the default profile would put a pod where it
//! would, from a snapshot of real objects (Nodes with their status, Pods
//! with and without `spec.nodeName`). Every node's filter verdict and
//! reasons, each score plugin's raw, normalised and weighted score, the
//! total, and the node selected.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::pod_info::PodInfo;
use super::profile::{explain, image_spread, NodeSnapshot};
use crate::api::manifest::{load_manifests, FieldReport, LoadError};
use crate::api::{Kind, Object};

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ScoreOut {
    pub raw: i64,
    pub normalized: i64,
    pub weighted: i64,
}

#[derive(Serialize, Clone, Debug)]
pub struct NodeOut {
    pub name: String,
    pub feasible: bool,
    pub reasons: Vec<String>,
    pub scores: BTreeMap<String, ScoreOut>,
    pub total: i64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Explanation {
    pub pod: String,
    pub nodes: Vec<NodeOut>,
    /// `None` when no node is feasible.
    pub selected: Option<String>,
    /// Other nodes with the selected node's total: a run picks among them
    /// with the scheduler's seeded stream; `selected` is the first by name.
    pub tied_with: Vec<String>,
}

/// Explains the scheduling of the pod named `pod` (or the one pod without
/// a node) in the snapshot at `file` with contents `text`.
pub fn explain_snapshot(
    file: &str,
    text: &str,
    pod: Option<&str>,
) -> Result<Explanation, Vec<LoadError>> {
    let objects = load_manifests(file, text, &mut FieldReport::default())?;
    let err = |msg: String| vec![LoadError::new(file, None, "", msg)];
    let mut nodes: Vec<NodeSnapshot> = objects
        .iter()
        .filter_map(NodeSnapshot::from_object)
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    if nodes.is_empty() {
        return Err(err("the snapshot has no Nodes".into()));
    }
    let pods: Vec<&Object> = objects.iter().filter(|o| o.kind == Kind::Pod).collect();
    let index: BTreeMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    // Pods already placed take their share of their nodes.
    for p in &pods {
        let body = p.as_pod().expect("a Pod");
        if let Some(n) = &body.node_name {
            if !body.is_terminal() {
                if let Some(&i) = index.get(n) {
                    nodes[i]
                        .resources
                        .add_pod(&PodInfo::new(&body.spec).requests);
                }
            }
        }
    }
    let target = match pod {
        Some(name) => pods
            .iter()
            .find(|p| {
                p.meta.name == name || format!("{}/{}", p.meta.namespace, p.meta.name) == name
            })
            .ok_or_else(|| err(format!("no pod named `{name}` in the snapshot")))?,
        None => {
            let unplaced: Vec<&&Object> = pods
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
    let body = target.as_pod().expect("a Pod");
    let info = PodInfo::new(&body.spec);
    let spread = image_spread(&nodes);
    let verdicts = explain(&info, &body.spec.api, &nodes, &spread);
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
                        weighted: s.weighted,
                    };
                    (k.to_string(), s)
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
    Ok(Explanation {
        pod: format!("{}/{}", target.meta.namespace, target.meta.name),
        nodes: out,
        selected: winners.first().cloned(),
        tied_with: winners.iter().skip(1).cloned().collect(),
    })
}

impl Explanation {
    /// The table a person reads first.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let plugins: Vec<&str> = super::profile::SCORE_PLUGINS
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let short = ["Taint", "Affinity", "Fit", "Balanced", "Image"];
        let _ = writeln!(s, "pod {}", self.pod);
        let _ = write!(s, "{:<24} {:<8}", "NODE", "FEASIBLE");
        for h in short {
            let _ = write!(s, " {h:>12}");
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
                for p in &plugins {
                    let sc = &n.scores[*p];
                    let _ = write!(
                        s,
                        " {:>12}",
                        format!("{}→{}×={}", sc.raw, sc.normalized, sc.weighted)
                    );
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
        s
    }
}
