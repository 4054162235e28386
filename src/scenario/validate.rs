//! `kubesim validate`: works out what a file is — a scenario, a plain stream
//! of manifests (what `kubectl apply -f` or `helm template` gives), or a
//! snapshot as `kubesim explain` reads it — and checks it as it would be
//! used, every error of the file in one pass.

use std::path::Path;

use crate::api::manifest::{decode_object, load_manifests, parse_yaml, FieldReport, LoadError};
use crate::api::yaml::{Node, Value};
use crate::api::Kind;
use crate::scheduler::config::{decode_configuration, is_configuration};

/// How a file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAs {
    Scenario,
    Manifests,
    Snapshot,
}

impl ReadAs {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadAs::Scenario => "scenario",
            ReadAs::Manifests => "manifests",
            ReadAs::Snapshot => "snapshot",
        }
    }
}

/// What validating a file found.
#[derive(Debug)]
pub struct Validated {
    pub read_as: ReadAs,
    /// One line on what the file holds.
    pub summary: String,
    /// The loader's notes: conversions, fields not simulated, kinds stored.
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// A scenario is one mapping without `apiVersion`/`kind`; a stream with a
/// Node or a KubeSchedulerConfiguration is a snapshot; other streams of
/// objects are manifests.
pub fn classify(docs: &[Node]) -> ReadAs {
    let is_object = |d: &Node| d.get("apiVersion").is_some() || d.get("kind").is_some();
    match docs {
        [one] if matches!(one.value, Value::Map(_)) && !is_object(one) => ReadAs::Scenario,
        _ if docs.iter().any(|d| {
            is_configuration(d) || d.get("kind").and_then(Node::as_str) == Some("Node")
        }) =>
        {
            ReadAs::Snapshot
        }
        _ if docs.iter().any(is_object) => ReadAs::Manifests,
        _ => ReadAs::Scenario,
    }
}

/// Validates the file at `path`.
pub fn validate_file(path: &Path) -> Result<Validated, Vec<LoadError>> {
    let file = path.display().to_string();
    let text = crate::api::source::read_source(path).map_err(|e| {
        vec![LoadError::new(
            &file,
            e.pos,
            "",
            format!("cannot read the file: {e}"),
        )]
    })?;
    let docs = parse_yaml(&file, &text)?;
    match classify(&docs) {
        ReadAs::Scenario => scenario(path),
        ReadAs::Manifests => manifests(&file, &text),
        ReadAs::Snapshot => snapshot(&file, &docs),
    }
}

fn scenario(path: &Path) -> Result<Validated, Vec<LoadError>> {
    let s = super::load::load_file(path)?;
    let applies = s.timeline.iter().filter(|st| st.action.is_some()).count();
    Ok(Validated {
        read_as: ReadAs::Scenario,
        summary: format!(
            "scenario `{}`, {} nodes, {} etcd members, {} objects, {} timeline actions, {} of virtual time",
            s.name,
            s.nodes.len(),
            s.etcd_members,
            s.objects.len(),
            applies,
            s.duration
        ),
        notes: s.report.lines(),
        warnings: s.warnings.clone(),
    })
}

fn manifests(file: &str, text: &str) -> Result<Validated, Vec<LoadError>> {
    let mut report = FieldReport::default();
    let objects = load_manifests(file, text, &mut report)?;
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for o in &objects {
        *kinds.entry(o.kind.name()).or_default() += 1;
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Ok(Validated {
        read_as: ReadAs::Manifests,
        summary: format!("{} objects ({})", objects.len(), list.join(", ")),
        notes: report.lines(),
        warnings: Vec::new(),
    })
}

fn snapshot(file: &str, docs: &[Node]) -> Result<Validated, Vec<LoadError>> {
    let mut report = FieldReport::default();
    report.crds.scan(docs);
    let mut errors = Vec::new();
    let mut objects = Vec::new();
    let mut configs = 0;
    for doc in docs {
        if is_configuration(doc) {
            configs += 1;
            if configs > 1 {
                errors.push(LoadError::new(
                    file,
                    Some(doc.pos),
                    "kind",
                    "a snapshot holds at most one KubeSchedulerConfiguration",
                ));
            } else if let Err(mut e) = decode_configuration(file, doc, "") {
                errors.append(&mut e);
            }
            continue;
        }
        match decode_object(file, doc, &mut report) {
            Ok(mut o) => objects.append(&mut o),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let nodes = objects.iter().filter(|o| o.kind == Kind::Node).count();
    if errors.is_empty() && nodes == 0 {
        errors.push(LoadError::new(file, None, "", "the snapshot has no Nodes"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let pods: Vec<_> = objects.iter().filter_map(|o| o.as_pod()).collect();
    let pending = pods.iter().filter(|p| p.node_name.is_none()).count();
    Ok(Validated {
        read_as: ReadAs::Snapshot,
        summary: format!(
            "{nodes} nodes, {} pods ({pending} without a node), {} other objects{}",
            pods.len(),
            objects.len() - nodes - pods.len(),
            if configs > 0 {
                ", a KubeSchedulerConfiguration"
            } else {
                ""
            }
        ),
        notes: report.lines(),
        warnings: Vec::new(),
    })
}
