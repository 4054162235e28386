//! Outputs a user can trust: every controller Event reaches the apiserver
//! (none lost to a name collision), the summary's figures are what the
//! trace holds, a run directory is enough to rerun it, and `kubesim report`
//! refuses a trace it cannot read.

use crate::common;

use std::collections::BTreeMap;

use common::{run_full, Ran};
use kubesim::report::series::RunSeries;
use kubesim::report::stats::{LatencySummary, Samples};
use kubesim::scenario::load_file;
use kubesim::sim::SimDuration;
use serde_json::Value;

fn ran(path: &str) -> Ran {
    let s = load_file(std::path::Path::new(path)).expect("example loads");
    run_full(&s, None)
}

/// The final `count` of every Event object, from its last `Write`.
fn event_counts(r: &Ran) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for w in r.writes("Event/") {
        let key = w["key"].as_str().unwrap().to_string();
        if w["verb"] == "delete" {
            out.remove(&key);
        } else {
            out.insert(key, w["object"]["count"].as_u64().expect("count"));
        }
    }
    out
}

#[test]
fn every_controller_event_is_stored_or_counted() {
    // deployment-failover: at 1.026 s the ReplicaSet controller records
    // two `SuccessfulCreate` Events about its ReplicaSet at one instant (two
    // pod creates answered together); before, both were named
    // `<rs>.<same nanos>` and the second create got 409: 12 recorded, 11
    // stored. rolling-update: 47 recorded, 45 stored before
    // (and repeats of one message were separate objects, not counted).
    for (path, recorded) in [
        ("scenarios/deployment-failover.yaml", 12),
        ("scenarios/rolling-update.yaml", 47),
    ] {
        let r = ran(path);
        let events: Vec<&Value> = r.events(Some("kube-controller-manager"), "Event").collect();
        assert_eq!(events.len(), recorded, "{path}");
        let counts = event_counts(&r);
        // Each recorded Event is an object of its own or one more on the
        // count of the identical Event before it (client-go's correlator).
        let stored: u64 = counts.values().sum();
        assert_eq!(stored, recorded as u64, "{path}: {counts:?}");
        let conflicts = r
            .events(Some("kube-apiserver"), "Request")
            .filter(|q| q["object"].as_str().unwrap().starts_with("Event") && q["code"] == 409)
            .count();
        assert_eq!(conflicts, 0, "{path}: an Event create collided");
    }
}

/// Nearest-rank percentiles of nanosecond samples, as the summary takes them.
fn summary_of(ns: &[u64]) -> LatencySummary {
    let mut s = Samples::default();
    for v in ns {
        s.record(SimDuration::from_nanos(*v));
    }
    s.summary()
}

fn u(r: &Value, k: &str) -> u64 {
    r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"))
}

/// The final store, rebuilt from the trace's `Seed` and `Write` records.
fn final_objects(records: &[Value]) -> BTreeMap<String, Value> {
    let mut store = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r["event"] == "Seed" || r["event"] == "Write")
    {
        let key = r["key"].as_str().unwrap().to_string();
        if r["verb"] == "delete" {
            store.remove(&key);
        } else {
            store.insert(key, r["object"].clone());
        }
    }
    store
}

fn condition(o: &Value, type_: &str) -> bool {
    o["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// Pod latencies from the `Write` records: (bootstrap, run) samples of
/// created→bound, →Running and →Ready, split at `end` by creation.
fn pod_latencies(records: &[Value], end: u64) -> [[Vec<u64>; 3]; 2] {
    let mut out: [[Vec<u64>; 3]; 2] = Default::default();
    // key → (created, bound, running, ready)
    let mut seen: BTreeMap<String, (u64, bool, bool, bool)> = BTreeMap::new();
    for r in records.iter().filter(|r| r["event"] == "Write") {
        let key = r["key"].as_str().unwrap();
        if !key.starts_with("Pod/") {
            continue;
        }
        if r["verb"] == "delete" {
            seen.remove(key);
            continue;
        }
        let (t, o) = (u(r, "t"), &r["object"]);
        let old = seen.get(key).copied();
        let created = old.map_or(r["created"].as_u64().unwrap_or(t), |s| s.0);
        let mut s = old.unwrap_or((created, false, false, false));
        let into = &mut out[usize::from(created >= end)];
        if !s.1 && o["spec"]["nodeName"].is_string() {
            s.1 = true;
            if old.is_some() {
                into[0].push(t - created);
            }
        }
        if !s.2 && o["status"]["phase"] == "Running" {
            s.2 = true;
            into[1].push(t - created);
        }
        if !s.3 && condition(o, "Ready") {
            s.3 = true;
            into[2].push(t - created);
        }
        seen.insert(key.to_string(), s);
    }
    out
}

/// Every figure of the summary, worked out again from the trace alone.
fn check_summary_against_trace(path: &str) {
    let r = ran(path);
    let (s, recs) = (&r.finished.summary, &r.records);
    let count = |event: &str| recs.iter().filter(|x| x["event"] == event).count() as u64;
    // The run's totals.
    let end_rec = recs.last().unwrap();
    assert_eq!(end_rec["event"], "RunEnd", "{path}");
    assert_eq!(s.trace_records, recs.len() as u64, "{path}");
    assert_eq!(s.events, u(end_rec, "events"), "{path}");
    assert_eq!(s.etcd.revision, u(end_rec, "etcd_revision"), "{path}");
    assert_eq!(s.network.messages, u(end_rec, "messages"), "{path}");
    assert_eq!(s.etcd.leader_changes, count("RaftLeaderElected"), "{path}");
    assert_eq!(s.etcd.request_timeouts, count("ProposalTimeout"), "{path}");
    // The bootstrap's end splits every latency.
    let boot: Vec<&Value> = r.events(Some("kubesim"), "BootstrapEnd").collect();
    assert_eq!(boot.len(), 1, "{path}: one BootstrapEnd");
    let end = u(boot[0], "t");
    let b = &s.bootstrap;
    assert_eq!(b.end_s, Some(end as f64 / 1e9), "{path}");
    assert_eq!(
        b.etcd_leader_s,
        Some(u(boot[0], "etcdLeader") as f64 / 1e9),
        "{path}"
    );
    assert_eq!(b.nodes, u(boot[0], "nodes"), "{path}");
    // etcd commits: the `Commit` spans, t - start.
    let (mut boot_commits, mut run_commits) = (Vec::new(), Vec::new());
    for c in r.events(None, "Commit") {
        let (t, start) = (u(c, "t"), u(c, "start"));
        if start < end {
            &mut boot_commits
        } else {
            &mut run_commits
        }
        .push(t - start);
    }
    assert_eq!(s.etcd.commit, summary_of(&run_commits), "{path}");
    assert_eq!(b.etcd_commit, summary_of(&boot_commits), "{path}");
    assert_eq!(
        (s.etcd.commit.count + b.etcd_commit.count) as u64,
        count("Commit"),
        "{path}: every Commit span is counted once"
    );
    // apiserver: codes over every `Request`, latency per verb after the bootstrap.
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut by_verb: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut boot_api = Vec::new();
    for q in r.events(Some("kube-apiserver"), "Request") {
        let code = u(q, "code") as u16;
        *codes.entry(code).or_default() += 1;
        let (t, start) = (u(q, "t"), u(q, "start"));
        if code == 429 {
            continue;
        }
        if start < end {
            boot_api.push(t - start);
        } else {
            let verb = q["verb"].as_str().unwrap().to_string();
            by_verb.entry(verb).or_default().push(t - start);
        }
    }
    assert_eq!(s.apiserver.requests_by_code, codes, "{path}");
    let by_verb: BTreeMap<String, LatencySummary> = by_verb
        .iter()
        .map(|(k, v)| (k.clone(), summary_of(v)))
        .collect();
    assert_eq!(s.apiserver.latency_by_verb, by_verb, "{path}");
    assert_eq!(b.api, summary_of(&boot_api), "{path}");
    // Pods: the `Write` records' milestones.
    let [boot_pods, run_pods] = pod_latencies(recs, end);
    assert_eq!(s.scheduling, summary_of(&run_pods[0]), "{path}");
    assert_eq!(
        s.pod_startup.created_to_running,
        summary_of(&run_pods[1]),
        "{path}"
    );
    assert_eq!(
        s.pod_startup.created_to_ready,
        summary_of(&run_pods[2]),
        "{path}"
    );
    assert_eq!(b.scheduling, summary_of(&boot_pods[0]), "{path}");
    assert_eq!(
        b.pod_startup.created_to_running,
        summary_of(&boot_pods[1]),
        "{path}"
    );
    // The charts read the same samples (bootstrap and run together).
    let text: String = recs.iter().map(|x| x.to_string() + "\n").collect();
    let series = RunSeries::from_trace(&text).unwrap();
    assert_eq!(
        series.to_running.len(),
        run_pods[1].len() + boot_pods[1].len(),
        "{path}"
    );
    assert_eq!(
        series.scheduling.len(),
        run_pods[0].len() + boot_pods[0].len(),
        "{path}"
    );
    // The end state: nodes, pods and objects of the store the trace rebuilds.
    let store = final_objects(recs);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for o in store.values() {
        *kinds
            .entry(o["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(s.objects, kinds, "{path}");
    let nodes: Vec<&Value> = store.values().filter(|o| o["kind"] == "Node").collect();
    assert_eq!(s.nodes.total, nodes.len() as u64, "{path}");
    let ready = nodes.iter().filter(|n| condition(n, "Ready")).count() as u64;
    assert_eq!(
        (s.nodes.ready, s.nodes.not_ready),
        (ready, nodes.len() as u64 - ready),
        "{path}"
    );
    let pods: Vec<&Value> = store.values().filter(|o| o["kind"] == "Pod").collect();
    assert_eq!(s.pods.total, pods.len() as u64, "{path}");
    let mut phases: BTreeMap<String, u64> = BTreeMap::new();
    for p in &pods {
        let phase = p["status"]["phase"]
            .as_str()
            .unwrap_or("Pending")
            .to_string();
        *phases.entry(phase).or_default() += 1;
    }
    assert_eq!(s.pods.by_phase, phases, "{path}");
    let n = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as u64;
    assert_eq!(s.pods.ready, n(&|p| condition(p, "Ready")), "{path}");
    assert_eq!(
        s.pods.unscheduled,
        n(&|p| !p["spec"]["nodeName"].is_string()),
        "{path}"
    );
    assert_eq!(
        s.pods.terminating,
        n(&|p| p["metadata"]["deletionTimestamp"].is_string()),
        "{path}"
    );
}

#[test]
fn the_summary_is_what_the_trace_holds() {
    for path in [
        "scenarios/three-node.yaml",
        // faults: a leader crash, then quorum lost (proposal timeouts).
        "scenarios/etcd-leader-loss.yaml",
        // the scheduler binds, controllers create and delete pods.
        "scenarios/rolling-update.yaml",
        "scenarios/deployment-failover.yaml",
    ] {
        check_summary_against_trace(path);
    }
}

fn kubesim_ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = common::kubesim(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
}

fn digest_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .expect("a digest line")
        .to_string()
}

#[test]
fn a_run_directory_reruns_to_the_same_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = kubesim_ok(&[
        "run",
        "scenarios/three-node.yaml",
        "--out",
        a.to_str().unwrap(),
    ]);
    // three-node includes manifests/web-pods.yaml: both are in the copy,
    // in the same layout, and the copy is what `rerun` names.
    let copy = a.join("scenario/three-node.yaml");
    assert!(a.join("scenario/manifests/web-pods.yaml").is_file());
    assert!(
        first.contains(&format!("rerun    kubesim run {}", copy.display())),
        "{first}"
    );
    // The original may move or change: the copy alone runs the same.
    let again = kubesim_ok(&["run", copy.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert_eq!(digest_of(&first), digest_of(&again));
    // The `rerun` line into the same directory (kubesim's default `--out`
    // when run from where the first run was): the copy it runs is kept, not
    // cleared before it is read.
    let in_place = kubesim_ok(&["run", copy.to_str().unwrap(), "--out", a.to_str().unwrap()]);
    assert_eq!(digest_of(&first), digest_of(&in_place));
    assert!(copy.is_file() && a.join("scenario/manifests/web-pods.yaml").is_file());
}

#[test]
fn no_report_removes_the_report_of_an_earlier_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    kubesim_ok(&[
        "run",
        "scenarios/three-node.yaml",
        "--out",
        d,
        "--until",
        "30s",
    ]);
    let report = [
        "report.html",
        "timeseries.csv",
        "trace.perfetto.json",
        "charts",
    ];
    for f in report {
        assert!(dir.join(f).exists(), "{f} written");
    }
    kubesim_ok(&[
        "run",
        "scenarios/three-node.yaml",
        "--out",
        d,
        "--until",
        "20s",
        "--no-report",
    ]);
    for f in report {
        assert!(
            !dir.join(f).exists(),
            "{f} of the 30 s run left beside the 20 s run"
        );
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["simulated_s"], 20.0);
}

#[test]
fn until_says_which_timeline_actions_it_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    let out = kubesim_ok(&[
        "run",
        "scenarios/three-node.yaml",
        "--out",
        d,
        "--until",
        "90s",
    ]);
    // three-node's timeline: actions at 3m (line 58) and 4m (line 60) lie
    // past 90 s; everything before is issued.
    assert!(
        out.contains("until    the run ended at 1m30s: 2 timeline actions not reached"),
        "{out}"
    );
    assert!(
        out.contains("  at 3m00s (line 58): delete Pod shop/web-2"),
        "{out}"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let cut = summary["not_reached"].as_array().unwrap();
    let lines: Vec<u64> = cut.iter().map(|a| a["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![58, 60]);
    assert_eq!(cut[1]["at_s"], 240.0);
    // The whole run reaches everything: no such list.
    kubesim_ok(&[
        "run",
        "scenarios/three-node.yaml",
        "--out",
        d,
        "--no-report",
    ]);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary.get("not_reached").is_none());
}

#[test]
fn report_refuses_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    kubesim_ok(&[
        "run",
        "scenarios/three-node.yaml",
        "--out",
        good.to_str().unwrap(),
        "--until",
        "20s",
        "--no-report",
    ]);
    let trace = std::fs::read_to_string(good.join("trace.jsonl")).unwrap();
    let without_end: String = trace
        .lines()
        .take(trace.lines().count() - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    let cut_mid_line = &trace[..trace.len() - 10];
    // A record in the middle replaced by a broken one (line 5 of many).
    let corrupt_inside: String = trace
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 4 {
                "{\"t\":1,\"garbage\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    // (case, trace.jsonl or None for no file, what stderr says)
    let cases: [(&str, Option<&str>, &str); 6] = [
        ("corrupt inside", Some(&corrupt_inside), "not JSON"),
        ("no trace", None, "trace.jsonl: No such file"),
        ("empty", Some(""), "is empty"),
        (
            "garbage",
            Some("hello\nworld\n"),
            "line 1 is not a kubesim trace record",
        ),
        (
            "cut mid-line",
            Some(cut_mid_line),
            "cut off: its last line is incomplete",
        ),
        ("no RunEnd", Some(&without_end), "without the RunEnd record"),
    ];
    for (case, text, says) in cases {
        let dir = tmp.path().join(case.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(t) = text {
            std::fs::write(dir.join("trace.jsonl"), t).unwrap();
        }
        let (code, _, stderr) = common::kubesim(&["report", dir.to_str().unwrap()]);
        assert_eq!(code, 2, "{case}: {stderr}");
        assert!(stderr.contains(says), "{case}: {stderr}");
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert!(!dir.join("report.html").exists(), "{case}: nothing written");
    }
    // The trace file named instead of its directory: said so, exit 2.
    let (code, _, stderr) =
        common::kubesim(&["report", good.join("trace.jsonl").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("takes the run directory"), "{stderr}");
    let missing = tmp.path().join("nowhere");
    let (code, _, stderr) = common::kubesim(&["report", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no such run directory"), "{stderr}");
    // The whole trace reports.
    kubesim_ok(&["report", good.to_str().unwrap()]);
    assert!(good.join("report.html").is_file());
}

#[test]
fn run_help_lists_every_trace_level() {
    let help = kubesim_ok(&["run", "--help"]);
    for level in ["full:", "spans:", "events:", "faults:"] {
        assert!(
            help.contains(&format!("- {level}")),
            "{level} missing:\n{help}"
        );
    }
}
