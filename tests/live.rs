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
    // The two old pods were killed. `exec httpd` makes httpd its
    // container's PID 1, which has no SIGTERM handler, and the kernel
    // delivers no unhandled signal to a namespace's init: SIGTERM does
    // nothing, and SIGKILL ends each at the 3 s grace (137), as it would
    // on a real cluster.
    assert_eq!(events(&t, "KillContainer").count(), 2);
    // No container stopped on SIGTERM by itself: no `stop` runtime step.
    assert_eq!(
        events(&t, "RuntimeStep")
            .filter(|r| r["step"] == "stop")
            .count(),
        0
    );
}

/// `--compare` simulates the live run's scenario and seed beside it and
/// sets the two side by side; `kubesim calibrate` fits the kubelet's
/// latencies from the live run and checks them. On `rollout.yaml`: two
/// pods of web:1, then two of web:2, on two real nodes.
#[test]
fn a_live_run_is_compared_with_its_simulation_and_calibrated() {
    require_live_machine();
    let dir = run_dir("compare");
    let out = live("tests/data/live/rollout.yaml", &dir, &["--compare"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("compare  controller steps: the same 5 ScalingReplicaSet steps"),
        "{text}"
    );
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    // The four pods in both runs, matched by ReplicaSet and creation
    // order, each created, scheduled, with a sandbox, started and Ready in
    // both (milestones 0..=4; the two old ones deleted too).
    let pods = c["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 4, "{c}");
    for p in pods {
        for side in ["live", "simulated"] {
            let at = p[side]["at"].as_array().unwrap_or_else(|| panic!("{p}"));
            assert!(at[..5].iter().all(|t| t.is_number()), "{side}: {p}");
        }
    }
    let deleted = |side: &str| pods.iter().filter(|p| p[side]["at"][5].is_number()).count();
    assert_eq!((deleted("live"), deleted("simulated")), (2, 2), "{c}");
    // Every runtime step measured on both sides: 4 sandboxes, 4 starts.
    for step in &c["steps"].as_array().unwrap()[..2] {
        assert_eq!(
            (step["live"]["n"].as_u64(), step["simulated"]["n"].as_u64()),
            (Some(4), Some(4)),
            "{step}"
        );
        assert!(step["ks"].is_number(), "{step}");
    }
    assert!(dir.join("charts/compare.svg").exists());
    assert!(dir.join("sim/trace.jsonl").exists());
    let cal = kubesim().arg("calibrate").arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&cal.stdout);
    assert!(
        cal.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&cal.stderr)
    );
    assert!(
        text.contains("# from 4 sandbox creates\nsandboxCreateLatency: {logNormal: {p50: "),
        "{text}"
    );
    assert!(text.contains("# from 2 image imports"), "{text}");
    assert!(text.contains("simulated, calibrated"), "{text}");
    // The block it wrote loads into a scenario.
    let block = dir.join("calibrated-kubelet.yaml");
    let scenario = dir.join("with-block.yaml");
    std::fs::write(&scenario, format!(
        "name: t\ncluster:\n  nodePools: [{{name: w, capacity: {{cpu: '1', memory: 1Gi, pods: '10'}}}}]\n  kubelet: {{include: {}}}\n",
        block.display()
    )).unwrap();
    let v = kubesim().arg("validate").arg(&scenario).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
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

/// A trace record's instant, in seconds of the run.
fn secs(r: &Value) -> f64 {
    r["t"].as_f64().unwrap_or(f64::NAN) / 1e9
}

/// The committed writes of pod `name` (trace level full records each
/// object), in order.
fn pod_writes<'a>(t: &'a [Value], name: &str) -> Vec<&'a Value> {
    let key = format!("Pod/default/{name}");
    t.iter()
        .filter(|r| r["event"] == "Write" && r["key"] == key.as_str())
        .collect()
}

/// The names of the pods whose writes say they are bound to `node`.
fn pods_on<'a>(t: &'a [Value], node: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = t
        .iter()
        .filter(|r| r["event"] == "Write" && r["object"]["spec"]["nodeName"] == node)
        .filter_map(|r| r["object"]["metadata"]["name"].as_str())
        .collect();
    out.dedup();
    out.sort();
    out.dedup();
    out
}

/// A pod write's first container status.
fn container(w: &Value) -> &Value {
    &w["object"]["status"]["containerStatuses"][0]
}

/// The instant of the first record of `event` for pod `name` (`pod` or
/// `key` field), if any.
fn first_event(t: &[Value], event: &str, name: &str) -> Option<f64> {
    let pod = format!("default/{name}");
    t.iter()
        .find(|r| r["event"] == event && r["pod"] == pod.as_str())
        .map(secs)
}

/// The `Event`s (the API's) with `reason` whose message holds `text`.
fn api_events<'a>(t: &'a [Value], reason: &'a str, text: &'a str) -> Vec<&'a Value> {
    t.iter()
        .filter(|r| r["event"] == "Event" && r["reason"] == reason)
        .filter(|r| r["message"].as_str().is_some_and(|m| m.contains(text)))
        .collect()
}

/// The log of the one container of pod `name` the run started on `node`.
fn log_of(dir: &Path, node: &str, name: &str) -> String {
    let logs: Vec<PathBuf> = container_logs(dir)
        .into_iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with(node)))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("{name}-")))
        })
        .collect();
    assert_eq!(logs.len(), 1, "{name}: {logs:?}");
    std::fs::read_to_string(&logs[0]).expect("log")
}

/// The node's Ready condition in a Node write.
fn node_ready(w: &Value) -> Option<&str> {
    w["object"]["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?["status"]
        .as_str()
}

#[test]
fn a_restarted_node_finishes_its_evicted_pod_and_runs_new_ones() {
    require_live_machine();
    let dir = run_dir("restart");
    live("tests/data/live/restart.yaml", &dir, &[]);
    let s = summary(&dir);
    let t = trace(&dir);
    // Spreading put one of the 2 replicas on each node at ~1.4 s.
    let before: Vec<&str> = t
        .iter()
        .filter(|r| secs(r) < 4.0 && r["event"] == "ContainersStarted")
        .filter(|r| r["component"] == "kubelet/rn-1")
        .filter_map(|r| r["pod"].as_str()?.strip_prefix("default/"))
        .collect();
    assert_eq!(before.len(), 1, "{before:?}");
    let old = before[0];
    // rn-1 crashed at 4 s, its Lease last renewed at most 2 s before: the
    // node monitor (1 s period) finds it 6 s stale at 4..10 s and marks
    // the node Unknown; the unreachable NoExecute taint follows, and the
    // pod's 2 s toleration runs out 2 s later: evicted by ~12 s, before
    // the restart at 16 s.
    let node_writes: Vec<&Value> = t
        .iter()
        .filter(|r| r["event"] == "Write" && r["key"] == "Node/rn-1")
        .collect();
    let unknown = node_writes
        .iter()
        .find(|w| node_ready(w) == Some("Unknown"))
        .map(|w| secs(w));
    assert!(
        unknown.is_some_and(|u| (4.0..10.5).contains(&u)),
        "{unknown:?}"
    );
    let writes = pod_writes(&t, old);
    let evicted = writes
        .iter()
        .find(|w| w["object"]["metadata"]["deletionTimestamp"].is_string())
        .map(|w| secs(w));
    assert!(
        evicted.is_some_and(|e| (6.0..13.0).contains(&e)),
        "{evicted:?}"
    );
    assert!(!api_events(&t, "TaintManagerEviction", old).is_empty());
    // The kubelet that came back at 16 s found the pod still bound to it,
    // terminating: it ran nothing of it (its containers died with the
    // machine) and made the final delete at once, not after the pod's 2 s
    // grace period.
    let last = writes.last().expect("writes");
    assert_eq!(last["verb"], "delete", "{last}");
    assert!((16.0..17.0).contains(&secs(last)), "{}", secs(last));
    let restarted = t
        .iter()
        .filter(|r| r["event"] == "ContainersStarted" && r["component"] == "kubelet/rn-1")
        .filter(|r| r["pod"] == format!("default/{old}").as_str())
        .count();
    assert_eq!(restarted, 1, "the evicted pod ran again");
    // The node is Ready again after the restart: its kubelet posts status
    // every 2 s, so by ~18 s; the taints go once the controller sees it.
    let ready_again = node_writes
        .iter()
        .filter(|w| secs(w) > 16.0)
        .find(|w| node_ready(w) == Some("True"))
        .map(|w| secs(w));
    assert!(ready_again.is_some_and(|r| r < 19.0), "{ready_again:?}");
    let untainted = node_writes
        .iter()
        .filter(|w| secs(w) > 16.0)
        .find(|w| w["object"]["spec"]["taints"].is_null());
    assert!(untainted.is_some_and(|w| secs(w) < 21.0), "taints stay");
    // The replacement ran on rn-2; the scale-up to 3 at 21 s went to
    // rn-1 (it has no pod, rn-2 has two) and runs there, Ready at ~22 s
    // (one 1 s readiness period after its start).
    let on_rn1 = pods_on(&t, "rn-1");
    let new: Vec<&&str> = on_rn1.iter().filter(|p| **p != old).collect();
    assert_eq!(new.len(), 1, "{on_rn1:?}");
    let started = first_event(&t, "ContainersStarted", new[0]);
    assert!(started.is_some_and(|s| s > 21.0), "{started:?}");
    let ready = pod_writes(&t, new[0])
        .into_iter()
        .find(|w| container(w)["ready"] == true)
        .map(secs);
    assert!(ready.is_some_and(|r| r < 23.5), "{ready:?}");
    assert_eq!(pods_on(&t, "rn-2").len(), 2);
    assert_eq!(s["pods"]["ready"], 3, "{s}");
    assert_eq!(s["pods"]["total"], 3, "{s}");
    // One container per pod run: the old pod's and the new one's on rn-1.
    assert_eq!(container_logs(&dir).len(), 4, "{:?}", container_logs(&dir));
}

#[test]
fn prestop_hooks_run_before_sigterm_and_are_cut_at_the_grace_period() {
    require_live_machine();
    let dir = run_dir("prestop");
    live("tests/data/live/prestop.yaml", &dir, &[]);
    let t = trace(&dir);
    // Both pods deleted at 6 s: the kubelet starts each kill at once.
    let kill_at = |name| {
        t.iter()
            .find(|r| r["event"] == "KillContainer" && r["pod"] == format!("default/{name}"))
            .map(secs)
            .expect("a kill")
    };
    let exited = |name| {
        pod_writes(&t, name)
            .into_iter()
            .find(|w| container(w)["state"]["terminated"].is_object())
            .expect("a terminated status")
    };
    // quick (grace 10 s): the hook logs, sleeps 1 s, then SIGTERM; its
    // shell traps it, logs and exits 0 within its 0.1 s sleep. So the
    // container ends 1 s + the exec's start (~50 ms) + ≤ 0.1 s after the
    // kill began: not before the hook's 1 s, long before the 10 s grace.
    assert_eq!(log_of(&dir, "ps-1", "quick"), "start\nbye\nterm\n");
    let k = kill_at("quick");
    let w = exited("quick");
    let took = secs(w) - k;
    assert!(
        (1.0..2.0).contains(&took),
        "quick stopped {took:.3} s after its kill"
    );
    assert_eq!(container(w)["state"]["terminated"]["exitCode"], 0, "{w}");
    // slow (grace 3 s): its 30 s hook is cut at 3 s, SIGTERM then (logged
    // by the trap, not obeyed), and after the 2 s minimum grace SIGKILL:
    // exit 137 at 3 + 2 = 5 s after the kill began, and the pod is gone
    // just after, 25 s before the hook would have ended.
    assert_eq!(log_of(&dir, "ps-1", "slow"), "start\nhook\nterm\n");
    let k = kill_at("slow");
    let w = exited("slow");
    let took = secs(w) - k;
    assert!(
        (5.0..5.8).contains(&took),
        "slow stopped {took:.3} s after its kill"
    );
    assert_eq!(container(w)["state"]["terminated"]["exitCode"], 137, "{w}");
    // The cut hook's exec died with the container: upstream's hook
    // goroutine records that failure then, without the hook's output
    // (before, live recorded none: its exec was cut at 3 s and its end
    // ignored once SIGTERM had gone). quick's hook succeeded: no event.
    let failed = api_events(&t, "FailedPreStopHook", "");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["message"], "PreStopHook failed");
    assert_eq!(failed[0]["object"], "Pod/default/slow");
    let at = secs(failed[0]) - k;
    assert!(
        (5.0..5.8).contains(&at),
        "FailedPreStopHook {at:.3} s after the kill"
    );
    for name in ["quick", "slow"] {
        let last = *pod_writes(&t, name).last().expect("writes");
        assert_eq!(last["verb"], "delete", "{name}: {last}");
    }
    let gone = secs(pod_writes(&t, "slow").last().unwrap()) - k;
    assert!(gone < 6.0, "slow gone {gone:.3} s after its kill");
    assert_eq!(summary(&dir)["pods"]["total"], 0);
}

#[test]
fn exec_probes_gate_readiness_and_restart_a_failing_container() {
    require_live_machine();
    let dir = run_dir("probes");
    live("tests/data/live/probes.yaml", &dir, &[]);
    let t = trace(&dir);
    // late: running from S, not ready; `cat /tmp/ready` runs at S+1, S+2
    // (failing: the file comes at S+3) and S+3 (a race with the file),
    // then passes at S+3 or S+4, each run a period after the previous
    // one's answer (~30 ms of exec each): Ready at S+3..S+4.2.
    let s = first_event(&t, "ContainersStarted", "late").expect("late started");
    let writes = pod_writes(&t, "late");
    let ready = writes
        .iter()
        .find(|w| container(w)["ready"] == true)
        .map(|w| secs(w))
        .expect("late never Ready");
    assert!(
        (s + 3.0..s + 4.2).contains(&ready),
        "started {s:.3}, ready {ready:.3}"
    );
    let running_unready = writes
        .iter()
        .filter(|w| secs(w) < ready && container(w)["state"]["running"].is_object())
        .all(|w| container(w)["ready"] == false);
    assert!(running_unready);
    let unhealthy = api_events(&t, "Unhealthy", "Readiness probe failed");
    assert!(
        (2..=3).contains(&unhealthy.len()),
        "{} readiness failures",
        unhealthy.len()
    );
    assert!(unhealthy.iter().all(|e| secs(e) < ready));
    // They say what the command printed (its stdout and stderr, as
    // upstream's exec prober reports; before, a made-up "exited with 1").
    // The shim's copy of an exec's output sometimes loses it (then the
    // message is upstream's for a command that printed nothing), so not
    // every one is held to it.
    let cat_said = |e: &&Value, file: &str| {
        let said = format!("probe failed: cat: can't open '{file}': No such file or directory");
        e["message"].as_str().is_some_and(|m| m.ends_with(&said))
    };
    assert!(
        unhealthy.iter().any(|e| cat_said(e, "/tmp/ready")),
        "{unhealthy:?}"
    );
    // sick: running from S; `cat /tmp/alive` passes at S+1..S+3, the file
    // goes at S+4, so the runs at ~S+4.1 and ~S+5.2 fail (or S+5.2 and
    // S+6.2 if the first one won the race; a failed run's answer may wait
    // up to 0.2 s more for the command's output): failureThreshold 2
    // reached, the kill at S+5..S+7.
    let s = first_event(&t, "ContainersStarted", "sick").expect("sick started");
    let kills = api_events(&t, "Killing", "failed liveness probe, will be restarted");
    assert_eq!(kills.len(), 2, "{kills:?}");
    let k = secs(kills[0]);
    assert!(
        (s + 5.0..s + 7.0).contains(&k),
        "started {s:.3}, killed {k:.3}"
    );
    let failed_before = api_events(&t, "Unhealthy", "Liveness probe failed")
        .into_iter()
        .filter(|e| secs(e) <= k)
        .count();
    assert_eq!(failed_before, 2);
    let said = api_events(&t, "Unhealthy", "Liveness probe failed");
    assert_eq!(said.len(), 4, "2 failures before each of the 2 kills");
    assert!(said.iter().any(|e| cat_said(e, "/tmp/alive")), "{said:?}");
    // SIGTERM ends it (its trap exits 0 within its 0.1 s sleep) and, the
    // first restart having no back-off, the next container runs at once
    // (~0.2 s measured; < 1 s, well before SIGKILL's 2 s or a 10 s
    // back-off): restartCount 1, its last state the exit 0.
    let writes = pod_writes(&t, "sick");
    let rerun = writes
        .iter()
        .find(|w| container(w)["restartCount"] == 1 && container(w)["state"]["running"].is_object())
        .expect("no restarted container");
    assert!(
        secs(rerun) - k < 1.0,
        "rerun {:.3} after the kill",
        secs(rerun) - k
    );
    let last = &container(rerun)["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 0, "{rerun}");
    // The new container removes its file 4 s after it starts too: killed
    // again 5..7 s after the rerun, and now the back-off is 10 s, past
    // the run's 15 s end: restartCount stays 1.
    let k2 = secs(kills[1]);
    assert!(
        (secs(rerun) + 5.0..secs(rerun) + 7.0).contains(&k2),
        "{k2:.3}"
    );
    let backoff = writes.iter().find(|w| {
        container(w)["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("back-off 10s"))
    });
    assert!(backoff.is_some_and(|w| container(w)["restartCount"] == 1));
    let max_restarts = writes
        .iter()
        .filter_map(|w| container(w)["restartCount"].as_u64())
        .max();
    assert_eq!(max_restarts, Some(1));
    // Two containers of sick (the first and the rerun), one of late.
    assert_eq!(container_logs(&dir).len(), 3, "{:?}", container_logs(&dir));
}
