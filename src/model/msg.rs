//! The closed vocabulary of everything that travels between components or
//! fires as a timer. No `Box<dyn Any>`: every event is one of these variants,
//! matched exhaustively by its receiver.

use std::sync::Arc;

use super::apiserver::request::{ApiRequest, ApiResponse, WatchBatch};
use super::etcd::raft::RaftMsg;
use super::etcd::store::{Proposal, TxnResult, WatchedChange};
use crate::sim::ComponentId;

/// The engine's payload type for kubesim.
pub enum Payload {
    /// A message that crossed the network from `from`.
    Msg { from: ComponentId, msg: Message },
    /// A timer the receiver set for itself.
    Timer(Timer),
}

/// Messages between components.
pub enum Message {
    Api(Box<ApiRequest>),
    ApiResp(Box<ApiResponse>),
    Watch(Box<WatchBatch>),
    Raft(Box<RaftMsg>),
    /// apiserver → etcd member: a transaction to commit.
    EtcdPropose(Arc<Proposal>),
    /// etcd member → apiserver: the outcome of a proposal.
    EtcdResult {
        req: u64,
        result: Result<TxnResult, String>,
    },
    /// etcd member → apiserver: committed changes, in revision order.
    EtcdWatch(Box<Vec<WatchedChange>>),
    /// apiserver → etcd member: (re)start the watch after `from_rev`.
    EtcdWatchStart {
        from_rev: u64,
    },
    /// etcd member → apiserver: the watch could not resume at the asked
    /// revision (compacted, or never seen): the current key space at
    /// `revision`, what the apiserver's relist of etcd returns; the watch
    /// streams from `revision + 1`.
    EtcdSnapshot {
        revision: u64,
        objects: Vec<Arc<crate::api::Object>>,
    },
    /// apiserver → etcd member: compact history up to `revision`.
    EtcdCompact {
        revision: u64,
    },
    /// The connection to the sender may have ended: `stall` is 0 when the
    /// sender's process closed it, else the id of the partition stall whose
    /// keepalive ran out (ask [`crate::model::network::connection_lost`]).
    ConnectionLost {
        stall: u64,
    },
    /// The connection to the receiver was refused (it is down); carries the
    /// request id the sender had used, so it can fail over at once.
    Refused {
        req: u64,
    },
}

/// Timers, per component family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Raft's logical clock.
    RaftTick,
    /// A WAL fsync covering log entries up to `upto` finished.
    FsyncDone { upto: u64 },
    /// apiserver: a request finished its handling latency.
    ApiHandled { slot: u32 },
    /// apiserver: send bookmarks to watchers.
    Bookmarks,
    /// apiserver: the etcd client's per-request deadline.
    EtcdDeadline { req: u64 },
    /// apiserver: the storage compactor's period passed.
    EtcdCompact,
    /// apiserver: redial etcd after every endpoint refused.
    EtcdReconnect,
    /// client: a rate-limited request may now be sent.
    ClientRelease,
    /// client: resend a request the apiserver throttled.
    ClientRetry { req: u64 },
    /// client: a request's deadline passed.
    ClientDeadline { req: u64 },
    /// client: try listing/watching again after a failure.
    InformerRetry { informer: u8 },
    /// kubelet: retry a failed registration, lease write or pod list.
    KubeletRetry { what: u8 },
    /// kubelet: renew the node Lease.
    LeaseRenew,
    /// kubelet: compute (and maybe post) node status.
    NodeStatus,
    /// kubelet: the status manager's sync ticker (compare every pod's status).
    PodStatusSync,
    /// kubelet: a pod's lifecycle step is due.
    PodStep { slot: u32, gen: u32 },
    /// kubelet: a container's scripted run time may have ended.
    ContainerExit { slot: u32 },
    /// kubelet: a probe period elapsed (`gen`: the container's instance).
    Probe { slot: u32, container: u16, gen: u32 },
    /// kubelet: a liveness probe period elapsed.
    LivenessProbe { slot: u32, container: u16, gen: u32 },
    /// kubelet: a container being killed reached its next step (preStop
    /// hook done, exited), or a sidecar's restart back-off ended.
    ContainerKill { slot: u32, container: u16, gen: u32 },
    /// kubelet: the image puller finished the current pull.
    PullDone { image: u32 },
    /// scheduler: the current scheduling cycle's work is done.
    SchedulerCycle,
    /// scheduler: move pods whose backoff ended to activeQ (every second,
    /// on the second).
    SchedulerFlush,
    /// scheduler: move pods unschedulable for over 5 minutes (every 30 s).
    SchedulerFlushLeftover,
    /// controller-manager: delayed work-queue items of this controller are due.
    ControllerQueue { controller: u8 },
    /// controller-manager: a controller's periodic pass (`what` is its own).
    ControllerTick { controller: u8, what: u32 },
    /// scenario driver: the timeline action at this index is due.
    Action { index: u32 },
    /// scenario driver: a drain's pod is due another eviction or check.
    DrainWake { drain: u32, pod: u32 },
    /// scenario driver: a drain's `--timeout` ran out.
    DrainTimeout { drain: u32 },
    /// scenario driver: a `crashEtcd: leader` waiting out an election
    /// looks for a leader again.
    LeaderWait { wait: u32 },
}
