//! Live mode's containerd layer against a real containerd (issue 17).
//!
//! These tests need root and Debian's containerd, runc and busybox-static
//! (scripts/test-deps.sh installs them); without them they fail saying so.
//! Each test has its own run directory and node names, because a node's
//! cgroups live at /kubesim/<node> and tests run in parallel.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kubesim::live::cleanup::{cleanup, count_leftovers};
use kubesim::live::daemon::NodePaths;
use kubesim::live::events::TaskEvent;
use kubesim::live::image::{self, ImageSource};
use kubesim::live::import::ImageRef;
use kubesim::live::procfs;
use kubesim::live::spec::{runtime_spec, sandbox_args, PodNamespaces, Resources, SpecInput};
use kubesim::live::task::ExecOutcome;
use kubesim::live::{NodeClient, NodeDaemon};

const APT: &str = "apt-get install -y containerd runc busybox-static";

/// Fails with the install line when this machine cannot run live tests.
fn require_live() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "live containerd tests run as root (they start containerd and runc)"
    );
    for program in ["containerd", "runc", "containerd-shim-runc-v2"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{program} is not installed; run: {APT} (or scripts/test-deps.sh)"
        );
    }
    assert!(
        Path::new(image::BUSYBOX).is_file(),
        "{} is missing; run: {APT}",
        image::BUSYBOX
    );
}

fn run_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ksl")
        .tempdir_in("/tmp")
        .expect("a temp dir")
}

fn busybox(name: &str) -> image::BuiltImage {
    image::build(name, &ImageSource::Busybox).expect("busybox image")
}

fn spec(
    node: &str,
    pod: &str,
    id: &str,
    args: &[&str],
    ns: PodNamespaces,
    res: Resources,
) -> serde_json::Value {
    runtime_spec(&SpecInput {
        node: node.into(),
        pod_uid: pod.into(),
        container_id: id.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        resources: res,
        namespaces: ns,
    })
}

/// A pod's sandbox running: returns its init pid.
async fn run_sandbox(c: &NodeClient, img: &ImageRef, node: &str, pod: &str) -> u32 {
    let id = format!("{pod}-sandbox");
    let args: Vec<String> = sandbox_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = spec(
        node,
        pod,
        &id,
        &args,
        PodNamespaces::Sandbox {
            hostname: pod.into(),
        },
        Resources::default(),
    );
    c.create_container(&id, img, &s)
        .await
        .expect("sandbox container");
    c.create_task(&id, None).await.expect("sandbox task");
    c.start_task(&id).await.expect("sandbox start")
}

/// A pod whose sandbox runs on a node.
struct Pod<'a> {
    c: &'a NodeClient,
    img: &'a ImageRef,
    node: &'a str,
    uid: &'a str,
    sandbox_pid: u32,
}

/// An app container of the pod, created and started; (create, start) took.
async fn run_app(
    pod: &Pod<'_>,
    id: &str,
    args: &[&str],
    res: Resources,
    log: Option<&Path>,
) -> (Duration, Duration) {
    let s = spec(
        pod.node,
        pod.uid,
        id,
        args,
        PodNamespaces::Join {
            sandbox_pid: pod.sandbox_pid,
        },
        res,
    );
    let t0 = Instant::now();
    pod.c
        .create_container(id, pod.img, &s)
        .await
        .expect("create container");
    let created = t0.elapsed();
    let t1 = Instant::now();
    pod.c.create_task(id, log).await.expect("create task");
    pod.c.start_task(id).await.expect("start task");
    (created, t1.elapsed())
}

async fn remove(c: &NodeClient, id: &str) {
    c.delete_task(id).await.expect("delete task");
    c.delete_container(id).await.expect("delete container");
}

async fn node_with_image(dir: &Path, node: &str) -> (NodeDaemon, NodeClient, ImageRef) {
    let d = NodeDaemon::start(dir, node)
        .await
        .expect("containerd starts");
    let c = d.client().await.expect("client");
    let img = busybox("busybox-live");
    let r = image::import_into(std::slice::from_ref(&c), &img)
        .await
        .expect("import")
        .remove(0);
    (d, c, r)
}

/// Socket inodes the process holds that /proc/net/tcp{,6} lists as LISTEN (state 0A).
fn tcp_listeners(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let l = std::fs::read_link(e.ok()?.path()).ok()?;
                let l = l.to_string_lossy();
                l.strip_prefix("socket:[")?
                    .strip_suffix(']')
                    .map(String::from)
            })
            .collect()
        })
        .unwrap_or_default();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(3) == Some(&"0A") && f.get(9).is_some_and(|i| inodes.iter().any(|x| x == i))
        })
        .count()
}

#[tokio::test]
async fn two_nodes_from_one_run_dir_import_the_same_deterministic_image() {
    require_live();
    let dir = run_dir();
    let mut a = NodeDaemon::start(dir.path(), "ksl-two-a")
        .await
        .expect("node a");
    let mut b = NodeDaemon::start(dir.path(), "ksl-two-b")
        .await
        .expect("node b");
    for d in [&a, &b] {
        let p = d.paths().expect("ours");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&p.dir).expect("dir").permissions(),
        );
        assert_eq!(mode & 0o777, 0o700, "{}", p.dir.display());
        // The config leaves debug and metrics addresses empty: no TCP at all.
        assert_eq!(tcp_listeners(d.pid().expect("running")), 0);
        assert!(d
            .client()
            .await
            .expect("client")
            .version()
            .await
            .expect("version")
            .starts_with("1."));
    }
    let first = busybox("busybox-live");
    let second = busybox("busybox-live");
    // Same inputs, fixed mtimes and key order: byte-identical archives.
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert_eq!(first.archive, second.archive);
    let clients = vec![a.client().await.expect("a"), b.client().await.expect("b")];
    let refs = image::import_into(&clients, &first)
        .await
        .expect("import into both");
    assert_eq!(refs[0], refs[1], "both nodes see the same image");
    assert_eq!(refs[0].manifest_digest, first.manifest_digest);
    assert_eq!(refs[0].name, "docker.io/library/busybox-live:latest");
    // Importing again is a no-op that yields the same ref.
    let again = image::import_into(&clients[..1], &second)
        .await
        .expect("reimport");
    assert_eq!(again[0], refs[0]);
    let read_back = clients[1]
        .image(&refs[0].name)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read_back, refs[1]);
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
}

#[tokio::test]
async fn a_container_exits_with_its_code_and_writes_its_log() {
    require_live();
    let dir = run_dir();
    let node = "ksl-exit";
    let (mut d, c, img) = node_with_image(dir.path(), node).await;
    let sb = run_sandbox(&c, &img, node, "pod-exit").await;
    let log = dir.path().join("app.log");
    let (created, started) = run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-exit",
            sandbox_pid: sb,
        },
        "app",
        &["sh", "-c", "echo hi; exit 3"],
        Resources::default(),
        Some(&log),
    )
    .await;
    let exit = c.wait_task("app").await.expect("wait");
    eprintln!("latency: container create {created:?}, task create+start {started:?}");
    // `exit 3` is the container's exit status.
    assert_eq!(exit.code, 3);
    assert!(exit.exited_at > std::time::UNIX_EPOCH);
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "hi\n");
    remove(&c, "app").await;
    d.stop().await.expect("stop");
}

#[tokio::test]
async fn a_memory_limited_dd_is_oom_killed_and_reported() {
    require_live();
    let dir = run_dir();
    let node = "ksl-oom";
    let (mut d, c, img) = node_with_image(dir.path(), node).await;
    let mut events = c.subscribe_task_events().await.expect("subscribe");
    let sb = run_sandbox(&c, &img, node, "pod-oom").await;
    // 20 MB limit; dd holds a 100 MB block in memory.
    let res = Resources {
        memory_limit_bytes: Some(20_000_000),
        ..Default::default()
    };
    run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-oom",
            sandbox_pid: sb,
        },
        "hog",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
        res,
        None,
    )
    .await;
    let (mut oom, mut exit) = (false, None);
    while exit.is_none() {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("an event in 20 s")
            .expect("stream")
            .expect("open");
        match ev {
            TaskEvent::Oom { container_id } if container_id == "hog" => oom = true,
            TaskEvent::Exit {
                container_id, code, ..
            } if container_id == "hog" => exit = Some(code),
            _ => {}
        }
    }
    assert!(oom, "the OOM event for hog came before its exit");
    // SIGKILL by the OOM killer: 128 + 9.
    assert_eq!(exit, Some(137));
    assert_eq!(c.wait_task("hog").await.expect("wait").code, 137);
    remove(&c, "hog").await;
    d.stop().await.expect("stop");
}

#[tokio::test]
async fn exec_returns_its_exit_code_and_times_out() {
    require_live();
    let dir = run_dir();
    let node = "ksl-exec";
    let (mut d, c, img) = node_with_image(dir.path(), node).await;
    let sb = run_sandbox(&c, &img, node, "pod-exec").await;
    run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-exec",
            sandbox_pid: sb,
        },
        "srv",
        &["sleep", "1000"],
        Resources::default(),
        None,
    )
    .await;
    let t = Instant::now();
    let code = c
        .exec(
            "srv",
            "probe-1",
            &["sh".into(), "-c".into(), "exit 7".into()],
            Duration::from_secs(5),
        )
        .await
        .expect("exec");
    eprintln!("latency: exec {:?}", t.elapsed());
    assert_eq!(code, ExecOutcome::Exited(7));
    // The app container shares the sandbox's UTS namespace: its hostname.
    let named = c
        .exec(
            "srv",
            "probe-2",
            &[
                "sh".into(),
                "-c".into(),
                "test \"$(hostname)\" = pod-exec".into(),
            ],
            Duration::from_secs(5),
        )
        .await
        .expect("exec");
    assert_eq!(named, ExecOutcome::Exited(0));
    // A second container of the pod serves on the sandbox's loopback; the
    // first reaches it at 127.0.0.1: one network namespace, lo up, no CNI.
    run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-exec",
            sandbox_pid: sb,
        },
        "web",
        &["httpd", "-f", "-p", "8080", "-h", "/etc"],
        Resources::default(),
        None,
    )
    .await;
    let fetch = "for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/hosts | grep -q localhost && exit 0; sleep 0.1; done; exit 1";
    let reached = c
        .exec(
            "srv",
            "probe-web",
            &["sh".into(), "-c".into(), fetch.into()],
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
    assert_eq!(reached, ExecOutcome::Exited(0));
    let slow = c
        .exec(
            "srv",
            "probe-3",
            &["sleep".into(), "30".into()],
            Duration::from_millis(300),
        )
        .await
        .expect("exec");
    assert_eq!(slow, ExecOutcome::TimedOut);
    d.stop().await.expect("stop");
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_at_the_grace_period() {
    require_live();
    let dir = run_dir();
    let node = "ksl-stop";
    let (mut d, c, img) = node_with_image(dir.path(), node).await;
    let sb = run_sandbox(&c, &img, node, "pod-stop").await;
    let polite = "trap 'exit 0' TERM; while true; do sleep 0.05; done";
    run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-stop",
            sandbox_pid: sb,
        },
        "polite",
        &["sh", "-c", polite],
        Resources::default(),
        None,
    )
    .await;
    // PID 1 without a TERM handler: the kernel drops SIGTERM.
    run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-stop",
            sandbox_pid: sb,
        },
        "stubborn",
        &["sleep", "1000"],
        Resources::default(),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // let sh install its trap
    let t = Instant::now();
    let p = c
        .stop_task("polite", Duration::from_secs(10))
        .await
        .expect("stop polite");
    let polite_took = t.elapsed();
    // The trap exits 0 on SIGTERM, well inside the grace period.
    assert_eq!((p.exit.code, p.killed), (0, false));
    assert!(polite_took < Duration::from_secs(5), "{polite_took:?}");
    let t = Instant::now();
    let s = c
        .stop_task("stubborn", Duration::from_millis(500))
        .await
        .expect("stop stubborn");
    let stubborn_took = t.elapsed();
    eprintln!("latency: stop on SIGTERM {polite_took:?}, stop at a 500 ms grace {stubborn_took:?}");
    // SIGKILL after the 500 ms grace: 128 + 9, and not before the grace ended.
    assert_eq!((s.exit.code, s.killed), (137, true));
    assert!(stubborn_took >= Duration::from_millis(500));
    remove(&c, "polite").await;
    remove(&c, "stubborn").await;
    d.stop().await.expect("stop");
}

#[tokio::test]
async fn a_killed_node_leaves_nothing_running_and_restarts_with_its_image() {
    require_live();
    let dir = run_dir();
    let node = "ksl-crash";
    let (mut d, c, img) = node_with_image(dir.path(), node).await;
    let sb = run_sandbox(&c, &img, node, "pod-crash").await;
    run_app(
        &Pod {
            c: &c,
            img: &img,
            node,
            uid: "pod-crash",
            sandbox_pid: sb,
        },
        "web",
        &["httpd", "-f", "-p", "8080"],
        Resources::default(),
        None,
    )
    .await;
    let p: NodePaths = d.paths().expect("ours");
    let report = d.kill().expect("kill");
    // One daemon, two shims (sandbox, web), at least two task processes,
    // two rootfs mounts.
    assert_eq!((report.daemons, report.shims), (1, 2), "{report:?}");
    assert!(report.tasks >= 2 && report.mounts >= 2, "{report:?}");
    assert!(procfs::daemons_with_config(&p.config).is_empty());
    assert!(procfs::shims_for(&p.socket).is_empty());
    assert!(procfs::node_cgroups(node).is_empty());
    assert!(procfs::mounts_under(&p.dir).is_empty());
    assert!(
        !procfs::alive(sb as i32),
        "the sandbox process died with the node"
    );
    d.restart().await.expect("restart");
    let c = d.client().await.expect("client");
    // root/ kept the image and the container records; state/ (tasks) went.
    assert_eq!(c.image(&img.name).await.expect("get"), Some(img.clone()));
    assert_eq!(
        c.list_containers().await.expect("list"),
        vec!["pod-crash-sandbox".to_string(), "web".to_string()]
    );
    assert!(c.list_tasks().await.expect("tasks").is_empty());
    // The kubelet's reconcile: remove the dead containers, run the pod again.
    for id in ["web", "pod-crash-sandbox"] {
        c.delete_container(id).await.expect("delete");
    }
    let sb = run_sandbox(&c, &img, node, "pod-crash").await;
    assert!(sb > 0);
    d.stop().await.expect("stop");
    assert_eq!(count_leftovers(dir.path()).await.expect("count").total(), 0);
}

/// The environment variable that makes `holder_process` hold a live run.
const HOLDER_ENV: &str = "KUBESIM_LIVE_HOLDER_DIR";

/// Spawned by `kill_9_then_cleanup_leaves_nothing` (which then `kill -9`s it):
/// two nodes, each with a running pod, then it waits to be killed.
#[tokio::test]
#[ignore = "a helper process: kill_9_then_cleanup_leaves_nothing runs it and kills it"]
async fn holder_process() {
    let dir = PathBuf::from(
        std::env::var(HOLDER_ENV)
            .expect("run by kill_9_then_cleanup_leaves_nothing, with KUBESIM_LIVE_HOLDER_DIR"),
    );
    let mut held = Vec::new();
    for node in ["ksl-k9-a", "ksl-k9-b"] {
        let (d, c, img) = node_with_image(&dir, node).await;
        let sb = run_sandbox(&c, &img, node, "pod-k9").await;
        run_app(
            &Pod {
                c: &c,
                img: &img,
                node,
                uid: "pod-k9",
                sandbox_pid: sb,
            },
            "app",
            &["sleep", "1000"],
            Resources::default(),
            None,
        )
        .await;
        assert_eq!(c.list_tasks().await.expect("tasks").len(), 2);
        held.push(d);
    }
    std::fs::write(dir.join("ready"), "").expect("ready");
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop(held);
}

#[tokio::test]
async fn kill_9_then_cleanup_leaves_nothing() {
    require_live();
    let dir = run_dir();
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "holder_process",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ])
        .env(HOLDER_ENV, dir.path())
        .spawn()
        .expect("holder");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("ready").exists() {
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the holder exited early"
        );
        assert!(
            Instant::now() < deadline,
            "the holder was not ready in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9"); // std's kill is SIGKILL
    child.wait().expect("reap");
    let before = count_leftovers(dir.path()).await.expect("count before");
    eprintln!("after kill -9: {before}");
    // Per node: its daemon; a sandbox and an app, each a shim, a task, a
    // container with an active rootfs snapshot and a mounted rootfs. Two nodes.
    assert_eq!(
        (
            before.daemons,
            before.shims,
            before.containers,
            before.snapshots,
            before.mounts
        ),
        (2, 4, 4, 4, 4),
        "{before}"
    );
    assert!(before.tasks >= 4 && before.cgroups >= 2 * 4, "{before}");
    let report = cleanup(dir.path()).await.expect("cleanup");
    assert_eq!(report.len(), 2);
    assert_eq!(report[0].found.containers + report[1].found.containers, 4);
    let after = count_leftovers(dir.path()).await.expect("count after");
    eprintln!("after cleanup: {after}");
    assert_eq!(after.total(), 0, "{after}");
}
