//! `kubesim live` end to end, on real containerd nodes (root, containerd,
//! runc and busybox-static; `scripts/test-deps.sh` installs them). Each
//! test runs the CLI on a scenario of `tests/data/live/` whose node pool
//! has a name of its own: a live node's cgroups are named after it, so two
//! runs at once must not share node names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn kubesim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kubesim"))
}

/// Fails with what to install when the machine cannot run live nodes.
fn require_live_machine() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the live tests run as root");
    for bin in ["/usr/bin/containerd", "/usr/sbin/runc", "/bin/busybox"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: apt-get install -y containerd runc busybox-static"
        );
    }
}

/// A fresh run directory with a short path (containerd's socket path must
/// fit in 108 bytes).
fn run_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/kslive-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn live(scenario: &str, dir: &Path, extra: &[&str]) -> Output {
    let out = kubesim()
        .args(["live", scenario, "--no-report", "--out"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("kubesim runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubesim live {scenario}: {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Every run ends with every container and daemon gone.
    assert!(text.contains("nothing left (daemons 0, shims 0, tasks 0, containers 0, snapshots 0, mounts 0, cgroups 0)"), "{text}");
    out
}

fn summary(dir: &Path) -> Value {
    let s = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&s).expect("JSON")
}

fn trace(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("trace.jsonl"))
        .expect("trace.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn events<'a>(t: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    t.iter().filter(move |r| r["event"] == name)
}

/// The container logs a live run wrote: one per container it started.
fn container_logs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for node in std::fs::read_dir(dir.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(node.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

#[test]
fn a_deployment_rolls_out_on_real_containers() {
    require_live_machine();
    let dir = run_dir("rollout");
    live("tests/data/live/rollout.yaml", &dir, &[]);
    let s = summary(&dir);
    // 2 replicas of web:2 at the end, both Running and Ready (their httpGet
    // probes answered by httpd inside each pod's network namespace).
    assert_eq!(s["pods"]["ready"], 2, "{s}");
    assert_eq!(s["pods"]["by_phase"]["Running"], 2, "{s}");
    let t = trace(&dir);
    // Two pods of web:1, then two of web:2 (maxSurge 1, maxUnavailable 0):
    // four pods' containers started for real, each with its log file.
    assert_eq!(events(&t, "ContainersStarted").count(), 4);
    assert_eq!(container_logs(&dir).len(), 4, "{:?}", container_logs(&dir));
    // The rollout's steps, as in a simulated run: the new ReplicaSet up
    // one at a time, the old one down one at a time.
    let scaling: Vec<String> = t
        .iter()
        .filter(|r| r["event"] == "Event" && r["reason"] == "ScalingReplicaSet")
        .map(|r| r["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(scaling.len(), 5, "{scaling:?}");
    assert!(
        scaling[1].contains("Scaled up replica set") && scaling[1].contains("from 0 to 1"),
        "{scaling:?}"
    );
    assert!(
        scaling.last().unwrap().contains("Scaled down replica set")
            && scaling.last().unwrap().contains("from 1 to 0"),
        "{scaling:?}"
    );
    // The old pods were stopped with SIGTERM: httpd exits on it (143).
    assert_eq!(events(&t, "KillContainer").count(), 2);
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed_and_backs_off() {
    require_live_machine();
    let dir = run_dir("oom");
    live("tests/data/live/oom.yaml", &dir, &[]);
    let t = trace(&dir);
    let exits: Vec<&str> = events(&t, "ContainersExited")
        .filter_map(|r| r["detail"].as_str())
        .collect();
    // Started at ~1.4 s, killed at once; restarted after 10 s and 20 s of
    // back-off (~11.6 s, ~31.8 s): three OOM kills in 40 s.
    assert!(exits.len() >= 3, "{exits:?}");
    assert!(
        exits.iter().all(|d| *d == "hog OOMKilled with code 137"),
        "{exits:?}"
    );
    // The status the kubelet wrote says so, as `kubectl get pod` shows it.
    let statuses: Vec<&Value> = t
        .iter()
        .filter(|r| {
            r["event"] == "Write"
                && r["key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("default/hog"))
        })
        .filter_map(|r| r["object"]["status"]["containerStatuses"].get(0))
        .collect();
    let oom_last = statuses.iter().any(|c| {
        c["lastState"]["terminated"]["reason"] == "OOMKilled"
            && c["lastState"]["terminated"]["exitCode"] == 137
            && c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    assert!(
        oom_last,
        "no status with an OOMKilled lastState in CrashLoopBackOff"
    );
    let restarts = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_u64())
        .max();
    assert!(restarts >= Some(2), "{restarts:?}");
}

#[test]
fn a_crashed_node_s_pods_are_replaced_on_the_other_node() {
    require_live_machine();
    let dir = run_dir("crash");
    live("tests/data/live/crash.yaml", &dir, &[]);
    let s = summary(&dir);
    let t = trace(&dir);
    // cr-1's containerd was killed at 10 s with everything it ran; the
    // node went NotReady after the node monitor's grace period, its pods'
    // 5 s tolerations ran out, and the taint eviction deleted them. All 4
    // replicas run again, Ready, on cr-2 by 90 s.
    assert_eq!(s["pods"]["ready"], 4, "{s}");
    let evicted = t
        .iter()
        .filter(|r| r["event"] == "Event" && r["reason"] == "TaintManagerEviction")
        .count();
    assert!(evicted >= 1, "no taint eviction");
    let node_of_ready: Vec<&str> = t
        .iter()
        .filter(|r| r["event"] == "ContainersStarted" && r["component"] == "kubelet/cr-2")
        .filter_map(|r| r["pod"].as_str())
        .collect();
    assert!(node_of_ready.len() >= 4, "{node_of_ready:?}");
}

#[test]
fn a_killed_live_run_is_cleaned_up_to_nothing() {
    require_live_machine();
    let dir = run_dir("kill9");
    let mut child = kubesim()
        .args([
            "live",
            "tests/data/live/rollout.yaml",
            "--no-report",
            "--until",
            "60s",
            "--out",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("kubesim live starts");
    // Wait until both replicas' containers run, then SIGKILL the run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while container_logs(&dir).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no container started within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let out = kubesim()
        .args(["live", "cleanup"])
        .arg(&dir)
        .output()
        .expect("cleanup runs");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the killed run left, per node: its daemon, the shims and tasks of
    // a sandbox and a web container, their containers and snapshots.
    assert!(text.contains("ro-1: found   daemons 1"), "{text}");
    assert!(text.contains("2 node(s) clean"), "{text}");
}
