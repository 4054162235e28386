//! The kubelet's container runtime on a live node: each call of
//! [`crate::model::kubelet::runtime`] carried out on the node's real
//! containerd, and its answer sent back through the wall clock's channel
//! ([`super::pacer`]) the moment it is known.
//!
//! Calls for one pod run in order, one at a time, on that pod's own task
//! (a start must not overtake the sandbox it joins; a removal must not
//! overtake a start). Probes and hooks run beside them, so a SIGKILL at a
//! grace period's end is not held up by a hook still running.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};

use super::netns_probe;
use super::node::LiveNode;
use super::pacer::{Answer, Answers};
use super::pod_spec::{container_input, sandbox_input};
use super::spec::runtime_spec;
use super::task::ExecOutcome;
use crate::api::Object;
use crate::model::kubelet::runtime::{
    ContainerRef, Handler, LiveRuntime, ReplyTo, RunFor, RuntimeAnswer, RuntimeOp, Signal,
};

/// What the kubelets submit; a tokio task hands each call to its node.
pub struct ContainerdRuntime {
    jobs: mpsc::UnboundedSender<Job>,
}

struct Job {
    node: String,
    reply: ReplyTo,
    op: RuntimeOp,
}

impl LiveRuntime for ContainerdRuntime {
    fn submit(&self, node: &str, reply: ReplyTo, op: RuntimeOp) {
        let job = Job {
            node: node.to_string(),
            reply,
            op,
        };
        // After the session ended nothing is listening; the run is over.
        let _ = self.jobs.send(job);
    }
}

impl ContainerdRuntime {
    /// Starts the dispatcher on `rt`, for `nodes`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        nodes: BTreeMap<String, Arc<LiveNode>>,
        answers: Answers,
    ) -> ContainerdRuntime {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let dispatcher = Dispatcher {
            nodes,
            answers,
            pods: BTreeMap::new(),
        };
        rt.spawn(async move {
            let mut d = dispatcher;
            while let Some(job) = rx.recv().await {
                d.dispatch(job).await;
            }
        });
        ContainerdRuntime { jobs: tx }
    }
}

/// One pod's queue of calls, and what its calls made.
struct PodQueue {
    calls: mpsc::UnboundedSender<(ReplyTo, RuntimeOp)>,
    state: Arc<Mutex<PodState>>,
}

/// The containers a pod has on its node.
#[derive(Default)]
pub(super) struct PodState {
    /// The sandbox's container id and the pid whose namespaces the pod's
    /// containers join.
    pub sandbox: Option<(String, u32)>,
    /// Per container index: the current container's id.
    pub containers: BTreeMap<usize, String>,
    /// Containers made so far, for fresh ids.
    pub attempts: u64,
}

struct Dispatcher {
    nodes: BTreeMap<String, Arc<LiveNode>>,
    answers: Answers,
    /// (node, pod uid) → its queue.
    pods: BTreeMap<(String, String), PodQueue>,
}

impl Dispatcher {
    async fn dispatch(&mut self, job: Job) {
        let Some(node) = self.nodes.get(&job.node).cloned() else {
            return;
        };
        match job.op {
            RuntimeOp::NodeDown => {
                self.pods.retain(|(n, _), _| n != &job.node);
                node.crash().await;
            }
            RuntimeOp::NodeUp => node.boot().await,
            RuntimeOp::Run {
                pod,
                handler,
                timeout,
                why,
            } => {
                let state = self.queue(&node, &pod).state.clone();
                let answers = self.answers.clone();
                tokio::spawn(async move {
                    let timeout = Duration::from_nanos(timeout.nanos());
                    let (ok, output) =
                        run_handler(&node, &state, &pod, why, &handler, timeout).await;
                    let a = RuntimeAnswer::Ran {
                        why,
                        pod_uid: pod.meta.uid.clone(),
                        ok,
                        output,
                    };
                    answers.send(job.reply, Answer::Runtime(a));
                });
            }
            op => {
                let pod = op_pod(&op).clone();
                let remove = matches!(op, RuntimeOp::RemovePod { .. });
                let q = self.queue(&node, &pod);
                let _ = q.calls.send((job.reply, op));
                if remove {
                    self.pods.remove(&(job.node.clone(), pod.meta.uid.clone()));
                }
            }
        }
    }

    /// The pod's queue, started on first use.
    fn queue(&mut self, node: &Arc<LiveNode>, pod: &Arc<Object>) -> &PodQueue {
        let key = (node.name().to_string(), pod.meta.uid.clone());
        self.pods.entry(key).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let state = Arc::new(Mutex::new(PodState::default()));
            let worker = PodWorker {
                node: node.clone(),
                state: state.clone(),
                answers: self.answers.clone(),
            };
            tokio::spawn(worker.serve(rx));
            PodQueue { calls: tx, state }
        })
    }
}

fn op_pod(op: &RuntimeOp) -> &Arc<Object> {
    match op {
        RuntimeOp::RunSandbox { pod, .. }
        | RuntimeOp::Start { pod, .. }
        | RuntimeOp::Signal { pod, .. }
        | RuntimeOp::Run { pod, .. }
        | RuntimeOp::RemovePod { pod } => pod,
        RuntimeOp::NodeDown | RuntimeOp::NodeUp => unreachable!("node calls have no pod"),
    }
}

/// Carries out one pod's calls in order.
struct PodWorker {
    node: Arc<LiveNode>,
    state: Arc<Mutex<PodState>>,
    answers: Answers,
}

impl PodWorker {
    async fn serve(self, mut calls: mpsc::UnboundedReceiver<(ReplyTo, RuntimeOp)>) {
        while let Some((reply, op)) = calls.recv().await {
            let done = matches!(op, RuntimeOp::RemovePod { .. });
            self.call(reply, op).await;
            if done {
                return;
            }
        }
    }

    async fn call(&self, reply: ReplyTo, op: RuntimeOp) {
        match op {
            RuntimeOp::RunSandbox { pod, then } => match self.run_sandbox(&pod).await {
                Ok(()) => self.answers.send(reply, Answer::Step(then)),
                Err(message) => self.failed(reply, &pod, None, message),
            },
            RuntimeOp::Start {
                pod,
                containers,
                then,
            } => {
                for c in containers {
                    if let Err(message) = self.start(reply, &pod, c).await {
                        return self.failed(reply, &pod, Some(c), message);
                    }
                }
                if let Some(t) = then {
                    self.answers.send(reply, Answer::Step(t));
                }
            }
            RuntimeOp::Signal {
                container, signal, ..
            } => {
                let id = self
                    .state
                    .lock()
                    .await
                    .containers
                    .get(&container.index)
                    .cloned();
                if let Some(id) = id {
                    let sig = match signal {
                        Signal::Term => libc::SIGTERM,
                        Signal::Kill => libc::SIGKILL,
                    };
                    let _ = self.node.client().await.kill_task(&id, sig).await;
                }
            }
            RuntimeOp::RemovePod { .. } => self.remove().await,
            RuntimeOp::Run { .. } | RuntimeOp::NodeDown | RuntimeOp::NodeUp => {}
        }
    }

    fn failed(
        &self,
        reply: ReplyTo,
        pod: &Object,
        container: Option<ContainerRef>,
        message: String,
    ) {
        let a = RuntimeAnswer::Failed {
            container,
            pod_uid: pod.meta.uid.clone(),
            message,
        };
        self.answers.send(reply, Answer::Runtime(a));
    }

    /// RunPodSandbox: the pod's "pause" process, whose network, IPC and
    /// UTS namespaces its containers join.
    async fn run_sandbox(&self, pod: &Object) -> Result<(), String> {
        if self.state.lock().await.sandbox.is_some() {
            return Ok(());
        }
        let id = format!("{}-sandbox", id_stem(pod));
        let input = sandbox_input(self.node.name(), pod, &id);
        let image = self.node.sandbox_image().map_err(|e| e.to_string())?;
        let c = self.node.client().await;
        c.create_container(&id, &image, &runtime_spec(&input))
            .await
            .map_err(|e| format!("failed to create pod sandbox: {e}"))?;
        c.create_task(&id, None)
            .await
            .map_err(|e| format!("failed to create pod sandbox: {e}"))?;
        let pid = c
            .start_task(&id)
            .await
            .map_err(|e| format!("failed to start pod sandbox: {e}"))?;
        self.state.lock().await.sandbox = Some((id, pid));
        Ok(())
    }

    /// CreateContainer + StartContainer for container `c`: the old
    /// container at that index goes first; a waiter reports the new one's
    /// exit.
    async fn start(
        &self,
        reply: ReplyTo,
        pod: &Arc<Object>,
        c: ContainerRef,
    ) -> Result<(), String> {
        let client = self.node.client().await;
        let (old, sandbox_pid, attempt) = {
            let mut s = self.state.lock().await;
            s.attempts += 1;
            let sandbox = s.sandbox.as_ref().map(|(_, pid)| *pid);
            (s.containers.remove(&c.index), sandbox, s.attempts)
        };
        if let Some(old) = old {
            let _ = client.delete_task(&old).await;
            let _ = client.delete_container(&old).await;
        }
        let sandbox_pid = sandbox_pid.ok_or("the pod has no sandbox")?;
        let id = format!("{}-{}-{attempt}", id_stem(pod), c.index);
        let (input, image) = container_input(&self.node, pod, c.index, &id, sandbox_pid)?;
        client
            .create_container(&id, &image, &runtime_spec(&input))
            .await
            .map_err(|e| format!("Error: failed to create containerd container: {e}"))?;
        let log = self.node.log_path(&id);
        client
            .create_task(&id, Some(&log))
            .await
            .map_err(|e| format!("Error: failed to create containerd task: {e}"))?;
        self.state
            .lock()
            .await
            .containers
            .insert(c.index, id.clone());
        self.watch_exit(reply, pod, c, &id);
        client
            .start_task(&id)
            .await
            .map_err(|e| format!("Error: failed to start containerd task: {e}"))?;
        Ok(())
    }

    /// Reports the exit of container `id` when it comes, with whether the
    /// OOM killer ended it.
    fn watch_exit(&self, reply: ReplyTo, pod: &Object, c: ContainerRef, id: &str) {
        let node = self.node.clone();
        let answers = self.answers.clone();
        let (id, pod_uid) = (id.to_string(), pod.meta.uid.clone());
        tokio::spawn(async move {
            let client = node.client().await;
            let Ok(exit) = client.wait_task(&id).await else {
                return; // The node crashed: nothing exits, it is gone.
            };
            let oom_killed = exit.code == 137 && node.was_oom_killed(&pod_uid, &id).await;
            let a = RuntimeAnswer::Exited {
                container: c,
                pod_uid,
                exit_code: exit.code as i32,
                oom_killed,
            };
            answers.send(reply, Answer::Runtime(a));
        });
    }

    /// KillPodSandbox and RemovePodSandbox: every container, then the
    /// sandbox.
    async fn remove(&self) {
        let client = self.node.client().await;
        let mut s = self.state.lock().await;
        let sandbox = s.sandbox.take().map(|(id, _)| id);
        let ids: Vec<String> = s.containers.values().cloned().chain(sandbox).collect();
        s.containers.clear();
        drop(s);
        for id in ids {
            let _ = client.kill_task(&id, libc::SIGKILL).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), client.wait_task(&id)).await;
            let _ = client.delete_task(&id).await;
            let _ = client.delete_container(&id).await;
        }
    }
}

/// A containerd id for the pod's containers: its name and uid, in the
/// characters containerd allows.
fn id_stem(pod: &Object) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let uid = clean(&pod.meta.uid);
    let tail = &uid[uid.len().saturating_sub(12)..];
    let name = clean(&pod.meta.name);
    format!("{}-{tail}", &name[..name.len().min(40)])
}

/// Runs a probe or hook against the pod's current container: an exec in
/// it, or a connection inside the pod's network namespace.
async fn run_handler(
    node: &LiveNode,
    state: &Mutex<PodState>,
    pod: &Object,
    why: RunFor,
    handler: &Handler,
    timeout: Duration,
) -> (bool, String) {
    let index = match why {
        RunFor::Probe { container, .. }
        | RunFor::Liveness { container, .. }
        | RunFor::PreStop { container, .. } => container.index,
    };
    let (id, sandbox_pid) = {
        let s = state.lock().await;
        (
            s.containers.get(&index).cloned(),
            s.sandbox.as_ref().map(|(_, p)| *p),
        )
    };
    let _ = pod;
    match handler {
        Handler::Exec(args) => {
            let Some(id) = id else {
                return (false, "container not running".into());
            };
            static EXEC: AtomicU64 = AtomicU64::new(0);
            let exec_id = format!("exec-{}", EXEC.fetch_add(1, Ordering::Relaxed));
            let out = node.exec_output_path(&exec_id);
            let client = node.client().await;
            let outcome = client
                .exec_capturing(&id, &exec_id, args, timeout, &out)
                .await;
            let output = read_exec_output(&out);
            let _ = std::fs::remove_file(&out);
            match outcome {
                Ok(ExecOutcome::Exited(0)) => (true, String::new()),
                // Upstream's exec prober: a failure reports what the
                // command printed (stdout and stderr combined).
                Ok(ExecOutcome::Exited(_)) => (false, output),
                Ok(ExecOutcome::TimedOut) => (
                    false,
                    format!("command {args:?} timed out after {}s", timeout.as_secs()),
                ),
                Err(e) => (false, e.to_string()),
            }
        }
        Handler::HttpGet { .. } | Handler::TcpSocket { .. } => {
            let Some(pid) = sandbox_pid else {
                return (false, "the pod has no sandbox".into());
            };
            let handler = handler.clone();
            tokio::task::spawn_blocking(move || netns_probe::probe(pid, &handler, timeout))
                .await
                .unwrap_or_else(|e| (false, format!("probe thread: {e}")))
        }
    }
}

/// `maxReadLength`: the upstream exec prober keeps the first 10 KiB of a
/// command's output.
const MAX_EXEC_OUTPUT: u64 = 10 * 1024;

/// The first [`MAX_EXEC_OUTPUT`] bytes an exec wrote to `path` (none if it
/// wrote nothing: the shim makes the file on first open).
fn read_exec_output(path: &std::path::Path) -> String {
    use std::io::Read;
    let mut data = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_EXEC_OUTPUT).read_to_end(&mut data);
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// The containers (`/tasks/oom`) the kernel's OOM killer ended on a node.
#[derive(Default)]
pub(super) struct OomLog(Mutex<BTreeSet<String>>);

impl OomLog {
    pub(super) async fn record(&self, id: String) {
        self.0.lock().await.insert(id);
    }

    /// Whether `id` was OOM-killed. containerd publishes `/tasks/oom`
    /// before the exit, but on another stream than our wait: an exit of
    /// 137 waits a moment for the event.
    pub(super) async fn was_killed(&self, id: &str) -> bool {
        for _ in 0..20 {
            if self.0.lock().await.contains(id) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}
