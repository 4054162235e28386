//! The files a scenario reads, and their copy into a run directory, so
//! whoever gets the directory can run it again: `kubesim run
//! DIR/scenario/<name>.yaml` reads the same bytes and gives the same digest.
//!
//! A scenario reads other files through `include:` (manifests under
//! `objects:` and `apply:`, a KubeSchedulerConfiguration) and through
//! `empirical: {file: …}` latencies, each relative to the scenario's
//! directory. The copy keeps the files' layout relative to the directory
//! that holds them all, so every relative path still resolves.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::api::yaml::{parse_documents, Node, Value};

/// Paths (as written) of every file `node` refers to.
fn references(node: &Node, under_empirical: bool, out: &mut Vec<String>) {
    match &node.value {
        Value::Map(pairs) => {
            for (k, v) in pairs {
                let key = k.as_str().unwrap_or("");
                let names_file = key == "include" || (under_empirical && key == "file");
                match v.as_str() {
                    Some(path) if names_file => out.push(path.to_string()),
                    _ => references(v, key == "empirical", out),
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| references(i, false, out)),
        Value::Scalar { .. } => {}
    }
}

/// The scenario file and every file it reads, directly or through an
/// included YAML file, as absolute paths, the scenario first.
pub fn files_of(scenario: &Path) -> Result<Vec<PathBuf>, String> {
    let canon = |p: &Path| {
        std::fs::canonicalize(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let root = canon(scenario)?;
    let base = root.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut out = vec![root.clone()];
    let mut todo = vec![root.clone()];
    seen.insert(root);
    while let Some(file) = todo.pop() {
        let Ok(text) = crate::api::source::read_source(&file) else {
            continue; // not text (a samples file read elsewhere): nothing to follow
        };
        let mut refs = Vec::new();
        for doc in parse_documents(&text).unwrap_or_default() {
            references(&doc, false, &mut refs);
        }
        for r in refs {
            // The loader resolves every path against the scenario's directory.
            let full = canon(&base.join(&r))?;
            if seen.insert(full.clone()) {
                out.push(full.clone());
                todo.push(full);
            }
        }
    }
    Ok(out)
}

/// The deepest directory holding every one of `files`.
fn common_dir(files: &[PathBuf]) -> PathBuf {
    let mut dir = files[0].parent().map(Path::to_path_buf).unwrap_or_default();
    for f in &files[1..] {
        while !f.starts_with(&dir) {
            if !dir.pop() {
                break;
            }
        }
    }
    dir
}

/// Copies the scenario and every file it reads under `into`, keeping their
/// relative layout; returns the copied scenario's path.
pub fn copy_into(scenario: &Path, into: &Path) -> Result<PathBuf, String> {
    let files = files_of(scenario)?;
    let root = common_dir(&files);
    if into.exists() {
        std::fs::remove_dir_all(into)
            .map_err(|e| format!("removing the old {}: {e}", into.display()))?;
    }
    let mut copied = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        // Only normal components: a copy never lands outside `into`.
        let rel: PathBuf = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let to = into.join(rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::copy(f, &to)
            .map_err(|e| format!("copying {} to {}: {e}", f.display(), to.display()))?;
        copied.push(to);
    }
    Ok(copied.swap_remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_includes_and_empirical_files_and_copies_them_in_their_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("s/m")).unwrap();
        std::fs::create_dir_all(d.join("shared")).unwrap();
        std::fs::write(
            d.join("s/x.yaml"),
            "name: x\nobjects:\n  - include: m/a.yaml\ncluster:\n  network: {latency: {empirical: {file: ../shared/l.csv}}}\ntimeline:\n  - {at: 1s, apply: {include: m/a.yaml}}\n",
        )
        .unwrap();
        std::fs::write(d.join("s/m/a.yaml"), "kind: Pod\n").unwrap();
        std::fs::write(d.join("shared/l.csv"), "1ms\n").unwrap();
        let files = files_of(&d.join("s/x.yaml")).unwrap();
        // The scenario, its manifest (named twice, copied once), the samples.
        assert_eq!(files.len(), 3, "{files:?}");
        let out = d.join("run/scenario");
        let copy = copy_into(&d.join("s/x.yaml"), &out).unwrap();
        // `../shared` from `s/` must still resolve: the layout is kept from
        // the common directory `d`.
        assert_eq!(copy, out.join("s/x.yaml"));
        assert!(out.join("s/m/a.yaml").is_file());
        assert!(out.join("shared/l.csv").is_file());
    }
}
