//! The node's container runtime as the kubelet sees it (upstream's CRI
//! seam, `kuberuntime`). In a simulated run every runtime call takes a
//! latency drawn from [`super::KubeletConfig`]'s distributions, and a
//! container's exit is scripted by its `kubesim.io/` annotations. In live
//! mode (`src/live`) the calls go to a real containerd; each answer comes
//! back as an event at the instant it arrives, addressed to the kubelet
//! incarnation that asked (a crashed kubelet's answers are dropped like
//! its timers). The kubelet's pod workers are the same code either way:
//! a runtime step ends with the same [`Timer::PodStep`] whether a timer or
//! containerd delivered it, so a live trace has the records a simulated
//! one has.
//!
//! This module only defines the seam; `model` knows nothing of
//! containerd, and `src/live` implements [`LiveRuntime`].

use std::fmt;
use std::sync::Arc;

use crate::api::Object;
use crate::model::msg::Timer;
use crate::sim::{ComponentId, SimDuration};

/// Which container runtime a kubelet drives.
#[derive(Clone, Default)]
pub enum Runtime {
    /// The simulation's: latencies drawn, exits scripted.
    #[default]
    Simulated,
    /// A real containerd behind `src/live`.
    Live(Arc<dyn LiveRuntime>),
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Runtime::Simulated => f.write_str("Simulated"),
            Runtime::Live(_) => f.write_str("Live"),
        }
    }
}

/// A real container runtime. `submit` must not block: it queues the call
/// and returns; the answer comes later through the live run's pacer.
pub trait LiveRuntime: Send + Sync {
    fn submit(&self, node: &str, reply: ReplyTo, op: RuntimeOp);
}

/// The kubelet incarnation an answer goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    pub to: ComponentId,
    pub epoch: u32,
}

/// One container of a pod: `index` into the app containers, or `n + j`
/// for init container `j` (the kubelet's own numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    pub slot: u32,
    pub index: usize,
}

/// A signal the kubelet sends a container's main process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: the start of a graceful stop.
    Term,
    /// SIGKILL: the grace period ran out, or the container crash fault.
    Kill,
}

/// How a probe or hook is run against a live container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `exec.command`, run in the container through the runtime.
    Exec(Vec<String>),
    /// `httpGet`: a GET of `path` on `port` inside the pod's network
    /// namespace; 200..400 passes.
    HttpGet { port: u16, path: String },
    /// `tcpSocket`: a connect to `port` inside the pod's network namespace.
    TcpSocket { port: u16 },
}

/// What an [`RuntimeOp::Run`] result is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFor {
    /// A readiness or startup probe of the container's instance `gen`.
    Probe { container: ContainerRef, gen: u32 },
    /// A liveness probe of the container's instance `gen`.
    Liveness { container: ContainerRef, gen: u32 },
    /// The container's preStop hook, for its kill of generation `gen`.
    PreStop { container: ContainerRef, gen: u32 },
}

/// A call the kubelet makes of a live runtime.
#[derive(Clone, Debug)]
pub enum RuntimeOp {
    /// Create and start the pod's sandbox (its network namespace); answer
    /// `then` when it runs.
    RunSandbox { pod: Arc<Object>, then: Timer },
    /// Create and start these containers (a new instance each: the old
    /// one, if any, is removed first); answer `then`, if any, once all run.
    /// Each one's exit comes later as [`RuntimeAnswer::Exited`].
    Start {
        pod: Arc<Object>,
        containers: Vec<ContainerRef>,
        then: Option<Timer>,
    },
    /// Signal a container's main process.
    Signal {
        pod: Arc<Object>,
        container: ContainerRef,
        signal: Signal,
    },
    /// Run a probe or hook; answer [`RuntimeAnswer::Ran`].
    Run {
        pod: Arc<Object>,
        handler: Handler,
        timeout: SimDuration,
        why: RunFor,
    },
    /// The pod left this node: remove its containers and sandbox.
    RemovePod { pod: Arc<Object> },
    /// The machine crashed: every container and the runtime die with it.
    NodeDown,
    /// The machine (re)started: the runtime runs, with no containers.
    NodeUp,
}

/// What a live runtime reports besides `then` timers, as
/// [`crate::model::msg::Message::Runtime`].
#[derive(Clone, Debug)]
pub enum RuntimeAnswer {
    /// A container's main process exited (upstream's PLEG sees it).
    Exited {
        container: ContainerRef,
        pod_uid: String,
        exit_code: i32,
        /// The kernel's OOM killer ended it: reason `OOMKilled`.
        oom_killed: bool,
    },
    /// A probe or hook ran: `ok` is its verdict, `output` what it said.
    Ran {
        why: RunFor,
        pod_uid: String,
        ok: bool,
        output: String,
    },
    /// A sandbox or container could not be created or started.
    Failed {
        container: Option<ContainerRef>,
        pod_uid: String,
        message: String,
    },
}
