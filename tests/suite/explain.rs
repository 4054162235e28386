//! `kubesim explain`: per-node verdicts and per-plugin scores for one pod of
//! a snapshot, as a table and as JSON; clear errors otherwise.

use crate::common;

use common::kubesim;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scenarios/snapshots/gpu-and-web.yaml"
);

#[test]
fn json_shows_every_node_and_plugin_and_the_selection() {
    let (code, out, err) = kubesim(&["explain", SNAPSHOT, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let x: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(x["pod"], "default/web-2");
    assert_eq!(x["selected"], "small-2");
    let nodes = x["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let gpu = nodes.iter().find(|n| n["name"] == "gpu-1").unwrap();
    assert_eq!(gpu["feasible"], false);
    assert_eq!(
        gpu["reasons"][0],
        "node(s) had untolerated taint {nvidia.com/gpu: present}"
    );
    let small2 = nodes.iter().find(|n| n["name"] == "small-2").unwrap();
    // small-2 has 1 of 2 CPUs and 2 of 4 GiB used by `cache`; web-2 adds
    // 0.5 CPU and 1 GiB: LeastAllocated (25 + 25) / 2 = 25.
    assert_eq!(small2["scores"]["NodeResourcesFit"]["raw"], 25);
    // The preferred zone-b term (weight 10) is the best match: 100, × 2.
    assert_eq!(small2["scores"]["NodeAffinity"]["normalized"], 100);
    assert_eq!(small2["scores"]["NodeAffinity"]["weighted"], 200);
    let sum: i64 = small2["scores"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["weighted"].as_i64().unwrap())
        .sum();
    assert_eq!(small2["total"], sum);
}

#[test]
fn the_table_names_reasons_and_the_winner() {
    let (code, out, _) = kubesim(&["explain", SNAPSHOT]);
    assert_eq!(code, 0);
    assert!(out.contains("gpu-1") && out.contains("untolerated taint"));
    assert!(out.lines().last().unwrap().contains("selected: small-2"));
    // A placed pod can be explained by name too.
    let (code, out, _) = kubesim(&["explain", SNAPSHOT, "--pod", "cache"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pod default/cache"));
}

#[test]
fn bad_snapshots_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    let ps = p.to_str().unwrap();
    for (text, want) in [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n", "no Nodes"),
        ("apiVersion: v1\nkind: Node\nmetadata: {name: n}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, image: x}]}\n", "2 pods have no node"),
        ("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {allocatable: {cpu: lots}}\n", "status.allocatable.cpu"),
    ] {
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = kubesim(&["explain", ps]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!err.contains("panicked"));
    }
    let (code, _, err) = kubesim(&["explain", SNAPSHOT, "--pod", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no pod named `nope`"));
}

#[test]
fn an_unschedulable_pod_shows_what_preemption_would_evict() {
    let snap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/snapshots/preemption.yaml"
    );
    let (code, out, err) = kubesim(&["explain", snap, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["selected"], serde_json::Value::Null);
    assert!(v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["reasons"][0] == "Insufficient cpu"));
    // The budget protects the db pods on node-a: the reports on node-b go.
    assert_eq!(v["preemption"]["node"], "node-b");
    assert_eq!(
        v["preemption"]["victims"],
        serde_json::json!(["default/report-0", "default/report-1"])
    );
    let (_, table, _) = kubesim(&["explain", snap]);
    assert!(table.contains("preemption: would evict default/report-0, default/report-1 on node-b"));
}

#[test]
fn every_score_shows_its_weight_in_the_json_and_the_table() {
    let (code, out, err) = kubesim(&["explain", SNAPSHOT, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let x: serde_json::Value = serde_json::from_str(&out).unwrap();
    let small2 = x["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "small-2")
        .unwrap();
    // The default profile's weights (upstream's getDefaultPlugins):
    // TaintToleration 3, NodeAffinity 2, PodTopologySpread 2,
    // InterPodAffinity 2, NodeResourcesFit 1, BalancedAllocation 1,
    // ImageLocality 1.
    for (plugin, weight) in [
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
        ("NodeResourcesFit", 1),
        ("NodeResourcesBalancedAllocation", 1),
        ("ImageLocality", 1),
    ] {
        let s = &small2["scores"][plugin];
        assert_eq!(s["weight"], weight, "{plugin}");
        assert_eq!(
            s["weighted"].as_i64().unwrap(),
            s["normalized"].as_i64().unwrap() * weight,
            "{plugin}"
        );
    }
    // The table spells each cell raw→normalized×weight=weighted: no taint
    // to tolerate is raw 0, normalised to 100, × 3 = 300; the zone-b
    // preference (weight 10) is raw 10, the best, so 100, × 2 = 200.
    let (code, table, _) = kubesim(&["explain", SNAPSHOT]);
    assert_eq!(code, 0);
    let row = table.lines().find(|l| l.starts_with("small-2")).unwrap();
    assert!(row.contains("0→100×3=300"), "{row}");
    assert!(row.contains("10→100×2=200"), "{row}");
    // Cells never run into each other: every cell is its own word.
    assert_eq!(
        row.split_whitespace().filter(|w| w.contains('×')).count(),
        7
    );
}

#[test]
fn a_configured_weight_reaches_the_explanation() {
    // NodeResourcesFit enabled again with weight 5 replaces its default 1
    // (upstream's plugin-set merge keeps the default's position).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    let text = std::fs::read_to_string(SNAPSHOT).unwrap()
        + "---\napiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
           profiles:\n  - schedulerName: default-scheduler\n    plugins:\n      score:\n        \
           enabled: [{name: NodeResourcesFit, weight: 5}]\n";
    std::fs::write(&p, text).unwrap();
    let (code, out, err) = kubesim(&["explain", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let x: serde_json::Value = serde_json::from_str(&out).unwrap();
    let node = |name: &str| {
        x["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()
            .clone()
    };
    // small-2's fit is 25 (see above): 25 × 5 = 125; small-1's is 50 → 250.
    assert_eq!(node("small-2")["scores"]["NodeResourcesFit"]["weight"], 5);
    assert_eq!(
        node("small-2")["scores"]["NodeResourcesFit"]["weighted"],
        125
    );
    assert_eq!(
        node("small-1")["scores"]["NodeResourcesFit"]["weighted"],
        250
    );
    // Totals: small-1 450 - 50 + 250 = 650; small-2 625 - 25 + 125 = 725.
    assert_eq!(node("small-1")["total"], 650);
    assert_eq!(node("small-2")["total"], 725);
    let (_, table, _) = kubesim(&["explain", p.to_str().unwrap()]);
    assert!(table.contains("25→25×5=125"), "{table}");
}
