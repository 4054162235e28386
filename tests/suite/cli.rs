//! The `kubesim` binary: broken scenarios give one clear error each (file,
//! line, column, field path) and exit 2 without a panic; a good scenario runs
//! and prints its digest.

use crate::common;

use common::kubesim;
use std::path::Path;

const BASE: &str = "name: t\nduration: 1m\ncluster:\n  nodePools:\n    - {name: w, count: 2, capacity: {cpu: \"2\", memory: 4Gi}}\n";

/// (case, scenario text, what stderr must contain).
fn broken() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "bad indentation",
            "name: t\ncluster:\n  nodePools:\n    - name: w\n   count: 2\n".into(),
            vec!["bad.yaml:5:", "YAML syntax error"],
        ),
        (
            "unknown field",
            format!("{BASE}timeline:\n  - at: 10s\n    crashNod: w-1\n"),
            vec!["bad.yaml:8:5", "timeline[0].crashNod", "unknown field `crashNod`", "did you mean `crashNode`"],
        ),
        (
            "unknown field in a manifest",
            format!("{BASE}objects:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {{name: p}}\n    spec:\n      containers: [{{name: c, image: x, imagePullPolice: Always}}]\n"),
            vec!["bad.yaml:11:", "objects[0].spec.containers[0]", "imagePullPolice", "imagePullPolicy"],
        ),
        (
            "wrong type",
            "name: t\ncluster:\n  etcd: {members: three}\n".into(),
            vec!["bad.yaml:3:19", "cluster.etcd.members", "expected"],
        ),
        (
            "bad quantity",
            "name: t\ncluster:\n  nodePools:\n    - {name: w, capacity: {cpu: 2cores, memory: 4Gi}}\n".into(),
            vec!["bad.yaml:4:", "cluster.nodePools[0].capacity.cpu", "2cores"],
        ),
        (
            "negative duration",
            "name: t\nduration: -5m\n".into(),
            vec!["bad.yaml:2:11", "duration", "negative"],
        ),
        (
            "unknown node in an action",
            format!("{BASE}timeline:\n  - {{at: 10s, crashNode: w-9}}\n"),
            vec!["bad.yaml:7:", "timeline[0].crashNode", "no node named `w-9`", "w-1"],
        ),
        (
            "unknown etcd member",
            format!("{BASE}timeline:\n  - {{at: 10s, crashEtcd: etcd-7}}\n"),
            vec!["timeline[0].crashEtcd", "etcd-7"],
        ),
        (
            "two actions in one entry",
            format!("{BASE}timeline:\n  - {{at: 10s, crashNode: w-1, heal: true}}\n"),
            vec!["timeline[0]", "one action per timeline entry"],
        ),
        (
            "missing include",
            format!("{BASE}objects:\n  - include: nowhere.yaml\n"),
            vec!["objects[0].include", "nowhere.yaml"],
        ),
        (
            // BASE is 5 lines; `objects:` line 6, the entry on line 7 (the
            // error points at the entry's value, column 14).
            "misspelt include",
            format!("{BASE}objects:\n  - incldue: nowhere.yaml\n"),
            vec!["bad.yaml:7:14", "objects[0].incldue", "did you mean `include`"],
        ),
        (
            // Four fields: refused at create, as ValidateCronJobSpec does.
            "unparseable cron schedule",
            format!("{BASE}objects:\n  - {{apiVersion: batch/v1, kind: CronJob, metadata: {{name: c}}, spec: {{schedule: \"*/1 * * *\", jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: x}}]}}}}}}}}}}}}\n"),
            vec!["bad.yaml:7:", "objects[0].spec.schedule", "Invalid value: \"*/1 * * *\""],
        ),
        (
            "a tab for indentation",
            format!("{BASE}objects:\n\t- include: x.yaml\n"),
            vec!["bad.yaml:7:", "indented with a tab"],
        ),
        (
            "refused API version",
            format!("{BASE}objects:\n  - {{apiVersion: extensions/v1beta1, kind: Ingress, metadata: {{name: i}}}}\n"),
            vec!["bad.yaml:7:", "apiVersion", "refused"],
        ),
        (
            "a timeline client with no rate",
            "name: t\ncluster:\n  kubectl: {qps: 0}\n  nodePools:\n    - {name: w, count: 1, capacity: {cpu: \"2\", memory: 4Gi}}\n".into(),
            vec!["bad.yaml:3:", "cluster.kubectl", "must be positive"],
        ),
        ("not a mapping", "- just\n- a list\n".into(), vec!["bad.yaml:1:1", "a scenario is a mapping"]),
        ("empty file", "".into(), vec!["bad.yaml", "empty"]),
        ("cut-off escape", "\"\\".into(), vec!["bad.yaml:1:", "YAML syntax error"]),
        (
            "binary garbage",
            "name: \u{0}\u{1}\u{2}\n".into(),
            vec!["bad.yaml"],
        ),
    ]
}

#[test]
fn broken_scenarios_exit_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let p = path.to_str().unwrap();
    for (case, text, wants) in broken() {
        std::fs::write(&path, &text).unwrap();
        for cmd in [
            vec!["validate", p],
            vec!["run", p, "--out", dir.path().to_str().unwrap()],
        ] {
            let (code, _, err) = kubesim(&cmd);
            assert_eq!(code, 2, "{case} ({}): exit {code}\n{err}", cmd[0]);
            assert!(!err.contains("panicked"), "{case}: {err}");
            for w in &wants {
                assert!(err.contains(w), "{case}: stderr lacks `{w}`:\n{err}");
            }
        }
    }
}

#[test]
fn bad_flags_exit_2() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/three-node.yaml");
    for args in [
        vec!["run", scenario, "--until", "-1s"],
        vec!["run", scenario, "--trace-level", "loud"],
        vec!["run", scenario, "--seed", "x"],
        vec!["run", "/nonexistent/scenario.yaml"],
    ] {
        let (code, _, err) = kubesim(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn run_prints_a_summary_and_digest_and_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/three-node.yaml");
    let (code, stdout, err) = kubesim(&[
        "run",
        scenario,
        "--until",
        "2m",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let digest_line = stdout.lines().last().unwrap();
    let digest = digest_line
        .strip_prefix("digest: ")
        .expect("last line is the digest");
    // The run digest: 128 bits of the event fold, as 32 hex digits.
    assert_eq!(digest.len(), 32);
    let trace_digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("trace digest: "))
        .expect("the trace's own digest is printed too");
    assert_eq!(trace_digest.len(), 64);
    assert!(stdout.contains("pods "));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["digest"], digest);
    assert_eq!(summary["trace_digest"], trace_digest);
    assert!(
        summary["pod_startup"]["created_to_running"]["count"]
            .as_u64()
            .unwrap()
            >= 4
    );
    // Every trace line is a JSON object with the required fields, in order.
    let trace = std::fs::read_to_string(out.join("trace.jsonl")).unwrap();
    let mut last = (0u64, None::<u64>);
    for line in trace.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let (t, seq) = (r["t"].as_u64().unwrap(), r["seq"].as_u64().unwrap());
        assert!(t >= last.0 && last.1.is_none_or(|s| seq == s + 1));
        assert!(r["component"].is_string() && r["event"].is_string());
        last = (t, Some(seq));
    }
    // The trace digest is of exactly these bytes.
    assert_eq!(
        blake3::hash(trace.as_bytes()).to_hex().as_str(),
        trace_digest
    );
    // Same run again: same digest.
    let (_, again, _) = kubesim(&[
        "run",
        scenario,
        "--until",
        "2m",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.lines().last().unwrap(), digest_line);
}

#[test]
fn every_example_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            let (code, out, err) = kubesim(&["validate", p.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {err}", p.display());
            assert!(out.contains(": ok:"));
        }
    }
}

/// `kubesim live` checks every image the run will need against
/// `live.images` before it starts a node: the objects', a timeline
/// `apply:`'s and a `setImage`'s. A scenario's mistake is exit 2 on any
/// machine (the machine's own checks, root and containerd, come after).
#[test]
fn live_names_every_unmapped_image_before_starting_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let text = format!(
        "{BASE}live:\n  images: {{\"nginx:1.27\": busybox}}\nobjects:\n  - {{apiVersion: apps/v1, kind: Deployment, metadata: {{name: web}}, spec: {{replicas: 1, selector: {{matchLabels: {{app: web}}}}, template: {{metadata: {{labels: {{app: web}}}}, spec: {{containers: [{{name: web, image: \"nginx:1.27\"}}]}}}}}}}}\ntimeline:\n  - at: 10s\n    apply: {{apiVersion: v1, kind: Pod, metadata: {{name: cache}}, spec: {{containers: [{{name: c, image: \"redis:7\"}}]}}}}\n  - {{at: 20s, setImage: {{name: web, container: web, image: \"nginx:1.28\"}}}}\n"
    );
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("run");
    let (code, _, err) = kubesim(&[
        "live",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("live.images: no local image for nginx:1.28, redis:7"),
        "{err}"
    );
    // Nothing was started: no node directory.
    assert!(!out.join("nodes").exists());
}
