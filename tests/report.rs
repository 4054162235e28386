//! What a run leaves for people to read: charts (SVG and PNG) and
//! `timeseries.csv`, written after every run and rebuilt byte for byte by
//! `kubesim report DIR` from the saved trace.

mod common;

use std::path::Path;

use common::kubesim;
use kubesim::report::series::RunSeries;

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
    out.push((
        "timeseries.csv".into(),
        std::fs::read(dir.join("timeseries.csv")).unwrap(),
    ));
    out.sort();
    out
}

#[test]
fn a_run_writes_its_charts_and_report_rebuilds_them_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let (code, stdout, stderr) = kubesim(&[
        "run",
        "scenarios/rolling-update.yaml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
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
    std::fs::remove_file(dir.join("timeseries.csv")).unwrap();
    let (code, _, stderr) = kubesim(&["report", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(files(&dir), first);
}

#[test]
fn the_series_say_what_the_rollout_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let (code, _, stderr) = kubesim(&[
        "run",
        "scenarios/rolling-update.yaml",
        "--out",
        dir.to_str().unwrap(),
        "--no-report",
    ]);
    assert_eq!(code, 0, "{stderr}");
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
    assert_eq!(code, 1);
    assert!(stderr.contains("no/such/run/trace.jsonl"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}
