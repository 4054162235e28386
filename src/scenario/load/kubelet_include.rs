//! `cluster.kubelet: {include: file}`: the kubelet block kept in a file of
//! its own, as `kubesim calibrate` writes it, so one calibration serves
//! every scenario that includes it.
//!
//! The included file is one mapping, the block's fields. It is checked as
//! its own document first, so an error in it names that file, line and
//! field; then its mapping takes the place of the `{include: …}` entry and
//! the scenario loads as if it had been written inline. Paths inside it
//! (an `empirical:` samples file) resolve against the scenario's directory,
//! as every path a scenario reads does.

use std::path::Path;

use serde::Deserialize;

use super::{include_of, Loader};
use crate::api::manifest::{node_at, parse_yaml, FieldReport, LoadError};
use crate::api::source::read_source;
use crate::api::yaml::{from_node, join_path, Node, Value};
use crate::scenario::spec::KubeletSpec;

const PATH: &str = "cluster.kubelet";

/// Only the kubelet block, at the path it has in a scenario, so decoding
/// errors and unknown fields are named `cluster.kubelet.…`.
#[derive(Deserialize)]
struct Wrapped {
    cluster: WrappedCluster,
}

#[derive(Deserialize)]
struct WrappedCluster {
    kubelet: KubeletSpec,
}

/// `doc` with its `cluster.kubelet` include replaced by the included
/// block, or None when it has none.
pub(super) fn splice(file: &str, doc: &Node, base: &Path) -> Result<Option<Node>, Vec<LoadError>> {
    let Some(node) = node_at(doc, PATH) else {
        return Ok(None);
    };
    let rel = match include_of(node) {
        None => return Ok(None),
        Some(Ok(rel)) => rel,
        Some(Err(msg)) => return Err(vec![LoadError::new(file, Some(node.pos), PATH, msg)]),
    };
    let full = base.join(rel);
    let shown = full.display().to_string();
    let text = read_source(&full).map_err(|e| {
        let at = format!("{PATH}.include");
        match e.pos {
            Some(pos) => vec![LoadError::new(&shown, Some(pos), "", e.message)],
            None => vec![LoadError::new(
                file,
                Some(node.pos),
                &at,
                format!("cannot read `{shown}`: {e}"),
            )],
        }
    })?;
    let block = one_mapping(&shown, &text)?;
    check(&shown, &block, base)?;
    let mut spliced = doc.clone();
    *node_at_mut(&mut spliced, &["cluster", "kubelet"]).expect("found above") = block;
    Ok(Some(spliced))
}

/// The included file's one document, a mapping.
fn one_mapping(shown: &str, text: &str) -> Result<Node, Vec<LoadError>> {
    let docs = parse_yaml(shown, text)?;
    match docs.as_slice() {
        [one] if matches!(one.value, Value::Map(_)) => {
            if include_of(one).is_some() {
                return Err(vec![LoadError::new(
                    shown,
                    Some(one.pos),
                    PATH,
                    "an included kubelet block does not include another",
                )]);
            }
            Ok(one.clone())
        }
        _ => Err(vec![LoadError::new(
            shown,
            docs.first().map(|d| d.pos),
            PATH,
            "an included kubelet block is one mapping of cluster.kubelet's fields",
        )]),
    }
}

/// Decodes and resolves the block as a scenario's would be, errors named
/// in the included file.
fn check(shown: &str, block: &Node, base: &Path) -> Result<(), Vec<LoadError>> {
    let wrapped = wrap(block);
    let mut unknown = Vec::new();
    let decoded = from_node::<Wrapped>(&wrapped, &mut unknown);
    let mut errors: Vec<LoadError> = unknown
        .into_iter()
        .map(|u| {
            let hint = u
                .suggestion
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            LoadError::new(
                shown,
                Some(u.pos),
                join_path(&u.path),
                format!("unknown field `{}`{hint}", u.field),
            )
        })
        .collect();
    match decoded {
        Err(e) => errors.push(LoadError::new(shown, e.pos, e.path_string(), e.message)),
        Ok(w) => {
            let mut sub = Loader {
                file: shown,
                base,
                doc: &wrapped,
                errors: Vec::new(),
                report: FieldReport::default(),
                warnings: Vec::new(),
                pods: Default::default(),
                autoscaled: false,
                autoscaled_pools: Default::default(),
            };
            sub.kubelet(&w.cluster.kubelet);
            errors.append(&mut sub.errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `{cluster: {kubelet: block}}`, positioned at the block.
fn wrap(block: &Node) -> Node {
    let key = |k: &str| Node {
        pos: block.pos,
        value: Value::Scalar {
            text: k.into(),
            plain: true,
        },
    };
    let map = |k: &str, v: Node| Node {
        pos: block.pos,
        value: Value::Map(vec![(key(k), v)]),
    };
    map("cluster", map("kubelet", block.clone()))
}

fn node_at_mut<'a>(node: &'a mut Node, path: &[&str]) -> Option<&'a mut Node> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    let Value::Map(pairs) = &mut node.value else {
        return None;
    };
    let (_, v) = pairs.iter_mut().find(|(k, _)| {
        k.value
            == Value::Scalar {
                text: first.to_string(),
                plain: true,
            }
    })?;
    node_at_mut(v, rest)
}

#[cfg(test)]
mod tests {
    use crate::scenario::load::load_str;

    fn dir_with(kubelet: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("kubelet.yaml"), kubelet).unwrap();
        d
    }

    const SCENARIO: &str = "name: t\ncluster:\n  nodePools: [{name: w, capacity: {cpu: '1', memory: 1Gi, pods: '10'}}]\n  kubelet: {include: kubelet.yaml}\n";

    #[test]
    fn an_included_block_loads_as_if_inline() {
        let d = dir_with("sandboxCreateLatency: {constant: 42ms}\nnodeLeaseDurationSeconds: 20\n");
        let s = load_str("s.yaml", SCENARIO, d.path()).expect("loads");
        assert_eq!(
            s.kubelet.sandbox_create,
            crate::sim::LatencyDist::constant(crate::sim::SimDuration::from_millis(42))
        );
        // A 20 s lease is renewed every quarter of it: 5 s.
        assert_eq!(s.kubelet.lease_renew, crate::sim::SimDuration::from_secs(5));
    }

    #[test]
    fn an_error_in_the_included_block_names_that_file_line_and_field() {
        let d = dir_with("# fitted\nsandboxCreateLatency: {constant: 42ms}\ncontainerStartLatncy: {constant: 1ms}\n");
        let errors = load_str("s.yaml", SCENARIO, d.path()).unwrap_err();
        let e = &errors[0];
        assert!(e.file.ends_with("kubelet.yaml"), "{e:?}");
        assert_eq!(e.pos.map(|p| p.line), Some(3));
        assert!(
            e.message.contains("did you mean `containerStartLatency`"),
            "{e:?}"
        );
        let d = dir_with("sandboxCreateLatency: {constant: 1ms, uniform: {min: 1ms, max: 2ms}}\n");
        let errors = load_str("s.yaml", SCENARIO, d.path()).unwrap_err();
        assert!(errors[0].file.ends_with("kubelet.yaml"), "{:?}", errors[0]);
        assert_eq!(errors[0].field, "cluster.kubelet.sandboxCreateLatency");
    }

    #[test]
    fn a_missing_or_malformed_include_is_reported_in_the_scenario() {
        let d = tempfile::tempdir().unwrap();
        let errors = load_str("s.yaml", SCENARIO, d.path()).unwrap_err();
        assert_eq!(errors[0].file, "s.yaml");
        assert_eq!(errors[0].field, "cluster.kubelet.include");
        let d = dir_with("- a list\n");
        let errors = load_str("s.yaml", SCENARIO, d.path()).unwrap_err();
        assert!(errors[0].message.contains("one mapping"), "{:?}", errors[0]);
    }
}
