//! Every manifest from Kubernetes' own documentation (copied from the
//! project's shared material into tests/data/realworld, so a clean clone has them)
//! must load: older API versions converted, unmodelled fields reported.

use std::path::PathBuf;

use kubesim::api::manifest::{load_manifests, FieldReport};

fn realworld_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/realworld")
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

/// All of them at once, as `objects:` includes of one scenario, applied
/// through the apiserver: loading and a short run must both succeed.
#[test]
fn every_documented_manifest_loads_into_a_scenario_and_runs() {
    let dir = realworld_dir();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut yaml = String::from(
        "name: realworld\nduration: 60s\ncluster:\n  nodePools:\n    - {name: w, count: 3, capacity: {cpu: \"8\", memory: 32Gi}}\nobjects:\n",
    );
    for f in &files {
        yaml.push_str(&format!("  - include: {f}\n"));
    }
    let s = kubesim::scenario::load_str("realworld.yaml", &yaml, &dir).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert!(s.objects.len() >= 66);
    let done = kubesim::scenario::run::run(&s, Default::default(), |_| {}).unwrap();
    // Every object was sent; those refused are refused by the apiserver for
    // a stated reason: a namespace the manifests assume exists, a
    // PriorityClass (`high`) the Priority admission plugin cannot find, or
    // upstream's update validation: several manifests share a kind and
    // name (StatefulSet `web` three times, Pod `nginx` five times,
    // Deployment `nginx-deployment` twice with different selectors), and
    // kubectl apply of a later one over the first changes fields the
    // registry keeps immutable (podManagementPolicy, volumeClaimTemplates;
    // a pod's affinity, nodeSelector, nodeName; a Deployment's selector),
    // a 422 Invalid.
    assert_eq!(done.summary.actions.len(), s.objects.len());
    let mut created = std::collections::BTreeSet::new();
    let mut immutable_refusals = Vec::new();
    for a in &done.summary.actions {
        if a.result.starts_with("ok: created") {
            created.insert(a.action.clone());
        }
        let immutable = a.result.contains("Forbidden") || a.result.contains("field is immutable");
        if a.result.contains("422 Invalid") && immutable {
            assert!(
                created.contains(&a.action),
                "{a:?} refused before any create"
            );
            immutable_refusals.push(a.action.clone());
            continue;
        }
        assert!(
            a.result.starts_with("ok")
                || a.result.contains("not found")
                || a.result
                    .contains("no PriorityClass with name high was found"),
            "{a:?}"
        );
    }
    // The two later `web` StatefulSets (Parallel pods; a storageClassName)
    // and at least the `nginx` pod with required affinity are refused.
    let sts = immutable_refusals
        .iter()
        .filter(|a| *a == "apply StatefulSet default/web")
        .count();
    assert_eq!(sts, 2, "{immutable_refusals:?}");
    for want in [
        "apply Pod default/nginx",
        "apply Deployment default/nginx-deployment",
    ] {
        assert!(
            immutable_refusals.iter().any(|a| a == want),
            "{want}: {immutable_refusals:?}"
        );
    }
}

/// policy/v1beta1 read an empty PodDisruptionBudget selector as selecting
/// nothing; policy/v1 reads it as selecting every pod. Converting keeps the
/// old meaning and says so.
#[test]
fn v1beta1_budget_with_an_empty_selector_keeps_selecting_nothing() {
    use kubesim::api::disruption_budget::DisruptionBudget;
    let text = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: b, namespace: default}\nspec: {minAvailable: 1, selector: {}}\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: c, namespace: default}\nspec: {minAvailable: 1, selector: {}}\n";
    let mut report = FieldReport::default();
    let objs = load_manifests("pdb.yaml", text, &mut report).expect("loads");
    let old = DisruptionBudget::read(&objs[0]).unwrap();
    let new = DisruptionBudget::read(&objs[1]).unwrap();
    assert!(old.selector.is_none());
    assert!(new.selector.as_ref().is_some_and(|s| s.is_empty()));
    assert!(report.converted.iter().any(|c| c.contains(
        "PodDisruptionBudget: converted from policy/v1beta1 to policy/v1 (dropping spec.selector when empty"
    )));
}
