//! Every manifest from Kubernetes' own documentation (../shared/realworld)
//! must load: older API versions converted, unmodelled fields reported.

use std::path::PathBuf;

use kubesim::api::manifest::{load_manifests, FieldReport};

fn realworld_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/realworld")
}

#[test]
fn every_documented_manifest_loads() {
    let dir = realworld_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 66, "INDEX.md lists 66 files");
    let mut report = FieldReport::default();
    let mut docs = 0;
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        match load_manifests(&f.display().to_string(), &text, &mut report) {
            Ok(objs) => docs += objs.len(),
            Err(errs) => failures.extend(errs.iter().map(|e| e.to_string())),
        }
    }
    assert!(
        failures.is_empty(),
        "failed to load:\n{}",
        failures.join("\n")
    );
    assert_eq!(docs, 81, "INDEX.md counts 81 documents");
    assert!(report
        .converted
        .iter()
        .any(|c| c.contains("CronJob: converted from batch/v1beta1")));
    assert!(report.not_simulated.contains_key("Pod"));
}
