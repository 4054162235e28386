//! Live mode (issue 17): the modelled control plane on the wall clock,
//! its kubelets driving real containerd nodes over containerd's gRPC API.
//! The control plane stays in the engine; what lives here is the wall
//! clock and what a kubelet's container runtime does on a real machine.
//!
//! - `pacer`: the wall clock the engine sleeps on, and the channel real
//!   runtimes answer through.
//! - `session`, `node`, `runtime`, `pod_spec`, `netns_probe`: a live run's
//!   nodes, and the kubelet's runtime calls carried out on them.
//! - `daemon`: one private containerd per node inside the run directory, and
//!   the crash of a node (every daemon, shim and task process killed).
//! - `client`: a typed façade over containerd's services for one node's
//!   namespace: containers, `task` (create, start, wait, kill, exec),
//!   `events` (task exits and OOM kills), `import` (an OCI archive through
//!   content, diff, snapshots and images).
//! - `spec`: the OCI runtime spec a pod's sandbox and containers run with,
//!   resources computed as the kubelet does.
//! - `image`: deterministic OCI archives from Debian's busybox-static or a
//!   user's static binary.
//! - `cleanup`: what a `kill -9` of a live run leaves, counted and removed.
//! - `procfs`: what the kernel says (processes, mounts, cgroups), because a
//!   crashed node's containerd can no longer be asked.

pub mod calibrate;
pub mod cleanup;
pub mod client;
pub mod daemon;
pub mod error;
pub mod events;
pub mod image;
pub mod import;
pub mod netns_probe;
pub mod node;
pub mod pacer;
pub mod pod_spec;
pub mod procfs;
pub mod runtime;
pub mod session;
pub mod spec;
pub mod task;

pub use client::NodeClient;
pub use daemon::NodeDaemon;
pub use error::LiveError;
