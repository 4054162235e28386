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

/// The keys that name a file under each parent key: an empirical
/// distribution's samples, and the files of each trace importer.
const FILE_KEYS: &[(&str, &[&str])] = &[
    ("empirical", &["file"]),
    ("alibabaGpuV2023", &["pods", "nodes"]),
];

/// Keys whose value is a list of files (the Borg trace's CSV parts).
const FILE_LISTS: &[&str] = &["taskEvents", "machineEvents"];

/// Paths (as written) of every file `node` refers to; `parent` is the key
/// `node` is the value of.
fn references(node: &Node, parent: &str, out: &mut Vec<String>) {
    let file_keys = FILE_KEYS
        .iter()
        .find(|(p, _)| *p == parent)
        .map_or(&[][..], |(_, keys)| keys);
    match &node.value {
        Value::Map(pairs) => {
            for (k, v) in pairs {
                let key = k.as_str().unwrap_or("");
                // The loader's rule: `{include: path}` is an entry of its
                // own (see `include_of`); an `include` key among others, as
                // in a ConfigMap's data, is just data.
                let names_file = (key == "include" && pairs.len() == 1) || file_keys.contains(&key);
                match v.as_str() {
                    Some(path) if names_file => out.push(path.to_string()),
                    _ => references(v, key, out),
                }
            }
        }
        Value::Seq(items) if FILE_LISTS.contains(&parent) => {
            out.extend(items.iter().filter_map(|i| i.as_str()).map(str::to_string))
        }
        Value::Seq(items) => items.iter().for_each(|i| references(i, "", out)),
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
        if !may_reference(&text) {
            continue;
        }
        let mut refs = Vec::new();
        for doc in parse_documents(&text).unwrap_or_default() {
            references(&doc, "", &mut refs);
        }
        for r in refs {
            // The loader resolves every path against the scenario's directory
            // and has already read each one it uses; a reference it did not
            // use (a string that only looks like one) is not copied.
            let Ok(full) = canon(&base.join(&r)) else {
                continue;
            };
            if !full.is_file() {
                continue;
            }
            if seen.insert(full.clone()) {
                out.push(full.clone());
                todo.push(full);
            }
        }
    }
    Ok(out)
}

/// Whether `text` can name a file at all: an `include` key, a `file` key
/// under `empirical`, or an importer's key, is spelt out in the text unless a double-quoted
/// escape writes it. A scenario without any is not parsed a second time
/// (a 150,000-entry timeline's tree is most of its load).
fn may_reference(text: &str) -> bool {
    text.contains("include")
        || (text.contains("empirical") && text.contains("file"))
        || FILE_KEYS[1..]
            .iter()
            .any(|(importer, _)| text.contains(importer))
        || text.contains('\\')
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
    // Rerunning the copy itself (the `rerun` line, from the same place):
    // it already is the copy, and clearing `into` would delete it.
    if let (Ok(s), Ok(i)) = (std::fs::canonicalize(scenario), std::fs::canonicalize(into)) {
        if s.starts_with(&i) {
            return Ok(scenario.to_path_buf());
        }
    }
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

    #[test]
    fn an_include_key_inside_data_is_not_a_file_and_does_not_stop_the_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // A ConfigMap whose data has an `include` key among others, and one
        // whose only key is `include` naming nothing on disk: neither is a
        // file the loader reads, so the copy holds just the scenario.
        std::fs::write(
            d.join("x.yaml"),
            "name: x\nobjects:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {include: a.txt, other: b}}\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}, data: {include: missing.txt}}\n",
        )
        .unwrap();
        std::fs::write(d.join("a.txt"), "not a manifest\n").unwrap();
        let files = files_of(&d.join("x.yaml")).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
    }

    #[test]
    fn only_text_that_spells_a_reference_out_is_parsed_for_one() {
        assert!(!may_reference(
            "name: x\ntimeline:\n  - {at: 1s, note: profile}\n"
        ));
        assert!(may_reference("objects:\n  - include: a.yaml\n"));
        assert!(may_reference("latency: {empirical: {file: l.csv}}\n"));
        // `"\x69nclude"` is `include` written with an escape.
        assert!(may_reference("objects:\n  - {\"\\x69nclude\": a.yaml}\n"));
        // And such an escaped key is found as the plain one is.
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(
            d.join("x.yaml"),
            "name: x\nobjects:\n  - {\"\\x69nclude\": a.yaml}\n",
        )
        .unwrap();
        std::fs::write(d.join("a.yaml"), "kind: Pod\n").unwrap();
        assert_eq!(files_of(&d.join("x.yaml")).unwrap().len(), 2);
    }

    #[test]
    fn rerunning_the_copy_into_its_own_directory_keeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("m")).unwrap();
        std::fs::write(
            d.join("x.yaml"),
            "name: x\nobjects:\n  - include: m/a.yaml\n",
        )
        .unwrap();
        std::fs::write(d.join("m/a.yaml"), "kind: Pod\n").unwrap();
        let out = d.join("run/scenario");
        let copy = copy_into(&d.join("x.yaml"), &out).unwrap();
        // The copy run into the same directory is left as it is.
        let again = copy_into(&copy, &out).unwrap();
        assert_eq!(again, copy);
        assert!(copy.is_file() && out.join("m/a.yaml").is_file());
    }
}
