//! What a run leaves for people to read: charts (SVG and PNG),
//! `timeseries.csv`, `trace.perfetto.json` and `report.html`, written after
//! every run and rebuilt byte for byte by `kubesim report DIR` from the saved
//! trace; the narration `--narrate` prints; the page in a headless browser.

use crate::common;

use std::path::Path;

use common::kubesim;
use kubesim::report::series::RunSeries;

/// `kubesim run SCENARIO --out DIR EXTRA...`, which must succeed; its stdout.
fn run_into(dir: &Path, scenario: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", scenario, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = kubesim(&args);
    assert_eq!(code, 0, "{scenario}: {stderr}");
    stdout
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    for f in ["timeseries.csv", "trace.perfetto.json", "report.html"] {
        out.push((f.into(), std::fs::read(dir.join(f)).unwrap()));
    }
    out.sort();
    out
}

#[test]
fn a_run_writes_its_charts_and_report_rebuilds_them_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let stdout = run_into(&dir, "scenarios/rolling-update.yaml", &[]);
    assert!(stdout.contains("report   "), "{stdout}");
    let first = files(&dir);
    let names: Vec<&str> = first.iter().map(|f| f.0.as_str()).collect();
    for stem in [
        "rollout-default-web",
        "pods",
        "nodes",
        "latency",
        "service-default-web",
        "etcd",
    ] {
        assert!(names.contains(&format!("{stem}.svg").as_str()), "{names:?}");
        assert!(names.contains(&format!("{stem}.png").as_str()), "{names:?}");
    }
    for (name, bytes) in &first {
        if name.ends_with(".svg") {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(
                text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
                "{name}"
            );
            assert!(text.contains("<text"), "{name} has labels");
        } else if name.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        }
    }
    let svg = &first
        .iter()
        .find(|f| f.0 == "rollout-default-web.svg")
        .unwrap()
        .1;
    let svg = std::str::from_utf8(svg).unwrap();
    for label in [
        "Deployment default/web: replicas",
        "available",
        "set image web web=nginx:1.28",
    ] {
        assert!(svg.contains(label), "missing {label:?}");
    }

    // `kubesim report DIR` from the trace alone gives the same bytes.
    std::fs::remove_dir_all(dir.join("charts")).unwrap();
    for f in ["timeseries.csv", "trace.perfetto.json", "report.html"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let (code, _, stderr) = kubesim(&["report", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(files(&dir), first);
}

#[test]
fn the_series_say_what_the_rollout_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run_into(&dir, "scenarios/rolling-update.yaml", &["--no-report"]);
    assert!(!dir.join("charts").exists());
    let text = std::fs::read_to_string(dir.join("trace.jsonl")).unwrap();
    let s = RunSeries::from_trace(&text).unwrap();
    let d = &s.deployments["default/web"];
    // 25% surge and unavailable on 10: two ReplicaSets, the new one ends at
    // 10 and the old at 0; availability never under 8 once it reached 10.
    assert_eq!(d.replica_sets.len(), 2);
    assert_eq!(d.replica_sets[0].1.last().unwrap().1, 0.0);
    assert_eq!(d.replica_sets[1].1.last().unwrap().1, 10.0);
    let full = d.available.iter().position(|p| p.1 == 10.0).unwrap();
    assert!(
        d.available[full..].iter().all(|p| p.1 >= 8.0),
        "{:?}",
        d.available
    );
    assert_eq!(s.actions.len(), 1);
    assert!((s.actions[0].t - 60.0).abs() < 1.0);
    assert_eq!(s.to_running.len(), 20);
    let csv = std::fs::read_to_string({
        kubesim(&["report", dir.to_str().unwrap()]);
        dir.join("timeseries.csv")
    })
    .unwrap();
    assert!(csv.starts_with("t_seconds,series,value\n"));
    assert!(csv.contains(",deployment/default/web/available,10\n"));
}

#[test]
fn report_of_a_missing_run_is_a_clear_error() {
    let (code, _, stderr) = kubesim(&["report", "no/such/run"]);
    // Bad input, as every other command answers it (issue 15): exit 2.
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no/such/run: no such run directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

/// Every example scenario runs and leaves its charts, its page and its
/// Perfetto trace (the 1,000-node hour too, at its own trace level).
#[test]
fn every_example_scenario_produces_its_charts_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let mut scenarios: Vec<std::path::PathBuf> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 15, "{scenarios:?}");
    for path in scenarios {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = tmp.path().join(&name);
        let (code, stdout, stderr) = kubesim(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.contains("report.html"), "{name}: {stdout}");
        let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let digest = summary["digest"].as_str().unwrap();
        assert!(page.contains(digest), "{name}: the page shows the digest");
        assert!(
            page.contains("<figure><figcaption>"),
            "{name}: a chart is inlined"
        );
        assert!(page.contains("The scenario as run"), "{name}");
        let perfetto: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("trace.perfetto.json")).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{name}: trace.perfetto.json is not JSON: {e}"));
        assert!(
            !perfetto["traceEvents"].as_array().unwrap().is_empty(),
            "{name}"
        );
        assert!(dir.join("charts").join("pods.svg").exists(), "{name}");
    }
}

#[test]
fn the_perfetto_export_shows_requests_commits_cycles_and_pod_phases() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run_into(
        &dir,
        "scenarios/rolling-update.yaml",
        &["--trace-level", "spans"],
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trace.perfetto.json")).unwrap())
            .unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let named = |pid: u64, name: &str| {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == pid && e["name"] == name)
            .count()
    };
    assert!(named(1, "PUT Lease") == 0, "renewals are PATCHes");
    assert!(named(1, "PATCH Lease") > 10);
    assert!(named(1, "POST Pod/binding") >= 20, "every pod is bound");
    assert!(named(2, "commit") > 100);
    assert_eq!(named(3, "schedule"), 20, "one cycle per pod");
    let process = |name: &str| {
        events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == name)
    };
    assert!(process("node worker-1") && process("etcd") && process("kube-scheduler"));
    // Spans on one track never overlap.
    let mut by_track: std::collections::BTreeMap<(u64, u64), Vec<(f64, f64)>> = Default::default();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let ts = e["ts"].as_f64().unwrap();
        by_track
            .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
            .or_default()
            .push((ts, ts + e["dur"].as_f64().unwrap()));
    }
    for (track, mut spans) in by_track {
        spans.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for w in spans.windows(2) {
            assert!(w[1].0 >= w[0].1 - 1e-3, "{track:?}: {w:?} overlap");
        }
    }
    // The page's apiserver and etcd charts are drawn from the same spans.
    for chart in ["apiserver.svg", "etcd.svg"] {
        let svg = std::fs::read_to_string(dir.join("charts").join(chart)).unwrap();
        assert!(svg.contains("latency"), "{chart}");
    }
    // At level events there are no spans, and no apiserver chart.
    let events_dir = tmp.path().join("events");
    let (code, _, _) = kubesim(&[
        "run",
        "scenarios/rolling-update.yaml",
        "--out",
        events_dir.to_str().unwrap(),
        "--trace-level",
        "events",
    ]);
    assert_eq!(code, 0);
    let trace = std::fs::read_to_string(events_dir.join("trace.jsonl")).unwrap();
    assert!(!trace.contains("\"event\":\"Request\""));
    assert!(!events_dir.join("charts").join("apiserver.svg").exists());
}

#[test]
fn narrate_prints_what_kubectl_would_with_virtual_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = kubesim(&[
        "run",
        "scenarios/rolling-update.yaml",
        "--out",
        tmp.path().join("run").to_str().unwrap(),
        "--narrate",
        "--no-report",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("0:0")).collect();
    for want in [
        "kubectl  set image Deployment default/web web=nginx:1.28",
        "event    Normal   ScalingReplicaSet  deployment/web  Scaled up replica set web-",
        "status   Waiting for deployment \"web\" rollout to finish: ",
        "of 10 updated replicas are available...",
        "status   service/web: 10 ready, 0 not ready endpoints",
        "status   deployment \"web\" successfully rolled out",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "missing {want:?} in\n{stdout}"
        );
    }
    // Virtual time never goes backwards, and the summary and digest follow.
    let times: Vec<&str> = lines.iter().map(|l| &l[..11]).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(stdout
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("digest: "));
}

/// The page in Debian's headless Chromium: it loads without a script error
/// and lays out every chart with a size. `.ci/run` installs the browser.
#[test]
fn the_html_report_loads_in_headless_chromium_and_shows_its_charts() {
    let browser = ["chromium-headless-shell", "chromium"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a headless Chromium (scripts/test-deps.sh installs chromium-headless-shell)");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run_into(&dir, "scenarios/drain.yaml", &[]);
    let page = dir.join("report.html");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1200,2000",
            "--virtual-time-budget=3000",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or_else(|| panic!("no body in the DOM: {dom}"));
    let attr = |name: &str| -> u64 {
        let key = format!("{name}=\"");
        let at = body
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in <body{body}>"))
            + key.len();
        body[at..].split('"').next().unwrap().parse().unwrap()
    };
    let charts = attr("data-charts");
    assert!(charts >= 5, "<body{body}>");
    assert_eq!(
        attr("data-charts-rendered"),
        charts,
        "every chart has a size"
    );
    assert_eq!(attr("data-errors"), 0, "<body{body}>");
    assert!(dom.contains("node/worker-1 drained") || dom.contains("drained"));
}
